//! The nine figures, one module each, named as its files are (`F4-moments-…`: [`moments`]).
//! Each is a plain struct holding exactly the numbers it draws (the series, points and bins,
//! computed from the tables by a function of the figure's name), and a `draw` generic over the
//! plotters backend that reads nothing else.

use std::collections::BTreeMap;
use std::ops::Range;

use plotters::coord::combinators::{BindKeyPoints, LogCoord, WithKeyPoints};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::{CoordTranslate, Shift};
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;

use drift_analysis::query::{by_width, diverged, last_conditional, MaskPoint, HIDDEN_LAYER};
use drift_analysis::read::RunTables;
use drift_analysis::regimes::classify_run;
use drift_analysis::stats::mean_std;

use crate::text::Texted;
use crate::{viridis, FigureError};

type Area<DB> = DrawingArea<DB, Shift>;
type Result<T = ()> = std::result::Result<T, DrawError>;

/// Plotters failed to draw: its error type differs by backend, so the message is kept, and
/// [`crate::save`] adds the file it was drawing ([`crate::FigureError::Draw`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DrawError(pub(crate) String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        DrawError(e.to_string())
    }
}

/// A figure of fixed pixel size that can draw itself on the two backends we write.
pub trait Figure {
    fn size(&self) -> (u32, u32);
    /// One line saying what is drawn, with the run(s) it comes from.
    fn caption(&self) -> String;
    fn draw_bitmap(&self, root: &Area<Texted<BitMapBackend<'_>>>) -> Result;
    fn draw_svg(&self, root: &Area<Texted<SVGBackend<'_>>>) -> Result;
}

macro_rules! figure {
    ($t:ty, |$s:ident| $size:expr) => {
        impl Figure for $t {
            fn size(&self) -> (u32, u32) {
                let $s = self;
                $size
            }
            fn caption(&self) -> String {
                self.caption.clone()
            }
            fn draw_bitmap(&self, root: &Area<Texted<BitMapBackend<'_>>>) -> Result {
                self.draw(root)
            }
            fn draw_svg(&self, root: &Area<Texted<SVGBackend<'_>>>) -> Result {
                self.draw(root)
            }
        }
    };
}

const FONT: &str = "sans-serif";
const TRAIN: RGBColor = RGBColor(31, 119, 180);
const TEST: RGBColor = RGBColor(214, 39, 40);
const GREY: RGBColor = RGBColor(120, 120, 120);

fn title<DB: DrawingBackend>(area: &Area<DB>, text: &str) -> Result<Area<DB>>
where
    DB::ErrorType: 'static,
{
    Ok(area.titled(text, (FONT, 22))?)
}

/// The run that stands for a width in per-width panels: unmasked before masked, a run that
/// learned and then diverged (the crossover the figures are to show) before one that did not,
/// then the lowest learning rate and seed.
fn representative<'a>(group: &[&'a RunTables]) -> &'a RunTables {
    let crossover = |r: &RunTables| classify_run(r).is_some_and(|d| d.is_crossover());
    group
        .iter()
        .min_by(|a, b| {
            let key = |r: &RunTables| (r.run.mask.is_some(), !crossover(r), r.run.seed);
            key(a).cmp(&key(b)).then(a.run.lr.total_cmp(&b.run.lr)).then(a.run.seed.cmp(&b.run.seed))
        })
        .copied()
        .expect("a non-empty group")
}

/// Colour of a width among `widths`, by its log position (narrow: dark, wide: bright).
fn width_colour(width: i64, widths: &[i64]) -> RGBColor {
    let (lo, hi) = (widths.iter().min().copied().unwrap_or(1) as f64, widths.iter().max().copied().unwrap_or(1) as f64);
    let t = if hi > lo { ((width as f64).ln() - lo.ln()) / (hi.ln() - lo.ln()) } else { 0.5 };
    viridis(0.9 * t)
}

/// A range that contains `values` with a margin; `log`: a positive range padded by factors.
fn span(values: impl Iterator<Item = f64>, log: bool) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return if log { 0.1..1.0 } else { 0.0..1.0 };
    }
    if log {
        (lo / 1.3)..(hi * 1.3)
    } else if hi > lo {
        let pad = 0.05 * (hi - lo);
        (lo - pad)..(hi + pad)
    } else {
        (lo - 0.5)..(hi + 0.5)
    }
}

/// Tick labels: integers without a fraction, other values with three significant digits.
fn num(v: &f64) -> String {
    let v = *v;
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    if v.abs() >= 1.0 && (v - v.round()).abs() < 1e-9 {
        return format!("{v:.0}");
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 8) as usize;
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
    if text == "-0" {
        "0".into()
    } else {
        text
    }
}

/// A log axis over `range` with readable ticks: powers of ten, or 1-2-5 steps, or every digit,
/// whichever first gives at least four ticks.
fn log_axis(range: Range<f64>) -> WithKeyPoints<LogCoord<f64>> {
    let (lo, hi) = (range.start, range.end);
    let mut keys = Vec::new();
    for steps in [&[1.0][..], &[1.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]] {
        keys = (lo.log10().floor() as i32..=hi.log10().ceil() as i32)
            .flat_map(|k| steps.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| *v >= lo && *v <= hi)
            .collect();
        if keys.len() >= 4 {
            break;
        }
    }
    if keys.len() < 2 {
        keys = vec![lo, (lo * hi).sqrt(), hi];
    }
    let coord: LogCoord<f64> = range.log_scale().into();
    coord.with_key_points(keys)
}

/// A chart's series legend, in the style of every figure.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(chart: &mut ChartContext<'a, DB, CT>, size: u32) -> Result
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .label_font((FONT, size))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Grid, tick labels ([`num`]) and axis descriptions of a chart.
fn axes<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x_desc: impl Into<String>,
    y_desc: impl Into<String>,
    size: u32,
) -> Result
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&num)
        .y_label_formatter(&num)
        .label_style((FONT, size))
        .draw()?;
    Ok(())
}

/// A series of points with its colour and legend label.
type Labelled = (Vec<(f64, f64)>, RGBColor, &'static str);

/// The train and test loss of a run against epochs, as its history holds them (every row,
/// epoch 0 included; the drawing leaves out what a log axis cannot show).
#[derive(Clone, Debug, PartialEq)]
pub struct Losses {
    pub train: Vec<(f64, f64)>,
    pub test: Vec<(f64, f64)>,
}

impl Losses {
    pub fn of(run: &RunTables) -> Losses {
        let series = |f: fn(&drift_analysis::tables::HistoryRow) -> f64| {
            run.history.iter().map(|h| (f64::from(h.epoch), f(h))).collect()
        };
        Losses { train: series(|h| h.train_loss), test: series(|h| h.test_loss) }
    }

    /// The last epoch (at least 1, so that an axis over it is not empty).
    fn epochs(&self) -> f64 {
        self.train.iter().map(|p| p.0).fold(1.0, f64::max)
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.train.iter().chain(&self.test).map(|p| p.1)
    }

    /// The two series with their colours and labels, only the points a log axis can show.
    fn drawable(&self) -> [Labelled; 2] {
        let keep = |s: &[(f64, f64)]| s.iter().copied().filter(|p| p.1.is_finite() && p.1 > 0.0).collect();
        [(keep(&self.train), TRAIN, "train loss"), (keep(&self.test), TEST, "test loss")]
    }
}

/// Train and test loss against epochs (log loss axis), with vertical markers.
fn loss_panel<DB: DrawingBackend>(
    area: &Area<DB>,
    losses: &Losses,
    caption: &str,
    marks: &[(f64, RGBColor, &str)],
) -> Result
where
    DB::ErrorType: 'static,
{
    let y = span(losses.values(), true);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 16))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..losses.epochs(), log_axis(y.clone()))?;
    axes(&mut chart, "epoch", "loss (nats)", 12)?;
    for (finite, colour, label) in losses.drawable() {
        chart
            .draw_series(LineSeries::new(finite, colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    for &(epoch, colour, label) in marks {
        chart
            .draw_series(DashedLineSeries::new(vec![(epoch, y.start), (epoch, y.end)], 6, 4, colour.stroke_width(1)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
    }
    legend(&mut chart, 12)?;
    Ok(())
}

// The figures; after `figure!`, which they use.
mod evolution;
mod mask;
mod moments;
mod optimizers;
mod phase;
mod regimes;
mod spectrum;
mod w_vs_w0;
mod width;

pub use evolution::{evolution, Evolution, EvolutionPanel};
pub use mask::{mask, Mask, MaskRow};
pub use moments::{moments, Moments};
pub use optimizers::{optimizers, OptimizerCurve, Optimizers};
pub use phase::{phase, regime_colour, Phase};
pub use regimes::{regimes, Regimes};
pub use spectrum::{spectrum, Spectrum, SpectrumCurve};
pub use w_vs_w0::{w_vs_w0, Slice, WVsW0};
pub use width::{width, Width};
