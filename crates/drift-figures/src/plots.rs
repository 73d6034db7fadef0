//! The six figures. Each is a plain struct holding exactly the numbers it draws (picked from the
//! tables by a constructor), and a `draw` generic over the plotters backend.

use std::collections::BTreeMap;
use std::ops::Range;

use plotters::coord::combinators::{BindKeyPoints, LogCoord, WithKeyPoints};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use drift_analysis::claims::{
    by_width, deviation_at_levels, diverged, largest_jump, last_conditional, layer_weights, mean_std, rel_change_slope,
    LevelDeviation, MaskPoint, HIDDEN_LAYER, VISIBLE,
};
use drift_analysis::read::{read_weight_matrix, snapshot_epochs, Matrix, RunTables};
use drift_analysis::RunWriter;

use crate::text::Texted;
use crate::viridis;

type Area<DB> = DrawingArea<DB, Shift>;
type Result<T = ()> = anyhow::Result<T>;

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

/// The run that stands for a width in per-width panels: unmasked before masked, lowest seed.
fn representative<'a>(group: &[&'a RunTables]) -> &'a RunTables {
    group.iter().min_by_key(|r| (r.run.mask.is_some(), r.run.seed)).copied().expect("a non-empty group")
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

fn epochs_of(run: &RunTables) -> f64 {
    run.history.iter().map(|h| h.epoch).max().unwrap_or(1).max(1) as f64
}

/// Train and test loss against epochs (log loss axis), with vertical markers.
fn loss_panel<DB: DrawingBackend>(
    area: &Area<DB>,
    run: &RunTables,
    caption: &str,
    marks: &[(f64, RGBColor, &str)],
) -> Result
where
    DB::ErrorType: 'static,
{
    let losses = run.history.iter().flat_map(|h| [h.train_loss, h.test_loss]);
    let y = span(losses, true);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 16))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..epochs_of(run), log_axis(y.clone()))?;
    axes(&mut chart, "epoch", "loss (nats)", 12)?;
    for (values, colour, label) in [
        (run.history.iter().map(|h| (h.epoch as f64, h.train_loss)).collect::<Vec<_>>(), TRAIN, "train loss"),
        (run.history.iter().map(|h| (h.epoch as f64, h.test_loss)).collect(), TEST, "test loss"),
    ] {
        let finite: Vec<_> = values.into_iter().filter(|p| p.1.is_finite() && p.1 > 0.0).collect();
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

// ---------------------------------------------------------------------------------------------
// F1 mask persistence

/// One masked run: its losses, the hidden→hidden |w| at four snapshots (pooled to at most
/// 128 × 128 cells) and the mask contrast at every snapshot.
pub struct MaskRun {
    run: RunTables,
    images: Vec<(i32, Matrix, f64)>,
    trace: Vec<MaskPoint>,
}

pub struct MaskPersistence {
    rows: Vec<MaskRun>,
    caption: String,
}

/// Mean |w| over blocks of a matrix, so at most `cells × cells` values remain.
fn pool_abs(m: &Matrix, cells: usize) -> Matrix {
    let (r, c) = (m.rows.min(cells), m.cols.min(cells));
    let mut sum = vec![0.0f64; r * c];
    let mut count = vec![0u32; r * c];
    for i in 0..m.rows {
        for j in 0..m.cols {
            let k = (i * r / m.rows) * c + j * c / m.cols;
            sum[k] += f64::from(m.values[i * m.cols + j].abs());
            count[k] += 1;
        }
    }
    let values = sum.iter().zip(&count).map(|(s, &n)| (s / f64::from(n.max(1))) as f32).collect();
    Matrix { rows: r, cols: c, values }
}

/// Four snapshot epochs spread over those available: the first, the last and two between.
fn four_epochs(epochs: &[u32]) -> Vec<u32> {
    if epochs.len() <= 4 {
        return epochs.to_vec();
    }
    let n = epochs.len() - 1;
    let mut picked: Vec<u32> = [0, n / 3, (2 * n) / 3, n].iter().map(|&i| epochs[i]).collect();
    picked.dedup();
    picked
}

/// F1 from the widest masked run that kept training and, if one exists, the widest masked run
/// that diverged. `None` without a masked run.
pub fn mask_persistence(
    runs: &[&RunTables],
    masks: &BTreeMap<String, Vec<MaskPoint>>,
) -> anyhow::Result<Option<MaskPersistence>> {
    let masked: Vec<&&RunTables> = runs.iter().filter(|r| masks.contains_key(&r.run_id)).collect();
    let pick = |want_diverged: bool| {
        masked
            .iter()
            .filter(|r| diverged(r) == want_diverged)
            .max_by_key(|r| (r.run.width, std::cmp::Reverse(r.run.seed)))
            .copied()
    };
    let mut rows = Vec::new();
    for run in [pick(false), pick(true)].into_iter().flatten() {
        let mut images = Vec::new();
        let trace = masks[&run.run_id].clone();
        for epoch in four_epochs(&snapshot_epochs(&run.dir)) {
            let m = read_weight_matrix(&RunWriter::snapshot_path(&run.dir, epoch), HIDDEN_LAYER)?;
            let v = trace.iter().find(|p| p.epoch == epoch as i32).map_or(f64::NAN, |p| p.visibility);
            images.push((epoch as i32, pool_abs(&m, 128), v));
        }
        rows.push(MaskRun { run: (*run).clone(), images, trace });
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let caption = rows
        .iter()
        .map(|r| {
            format!(
                "run {} (W = {}, seed {}, mask '{}')",
                r.run.run_id,
                r.run.run.width,
                r.run.run.seed,
                r.run.run.mask.clone().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(" and ");
    Ok(Some(MaskPersistence { rows, caption: format!("F1 mask persistence: {caption}") }))
}

impl MaskPersistence {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root = title(root, "F1  Mask persistence: |w| of the hidden→hidden matrix and the losses")?;
        let rows = root.split_evenly((self.rows.len(), 1));
        for (row, area) in self.rows.iter().zip(&rows) {
            let (left, right) = area.split_horizontally(470);
            let (loss_area, contrast_area) = left.split_vertically(area.dim_in_pixel().1 * 3 / 5);
            let r = &row.run.run;
            let state = if diverged(&row.run) { "diverged" } else { "stable" };
            let mut marks: Vec<(f64, RGBColor, &str)> = Vec::new();
            if let Some(d) = r.divergence_epoch {
                marks.push((f64::from(d), BLACK, "divergence"));
            }
            loss_panel(
                &loss_area,
                &row.run,
                &format!("{state}: W = {}, seed {}, mask '{}'", r.width, r.seed, r.mask.clone().unwrap_or_default()),
                &marks,
            )?;
            // Mask contrast against epochs.
            let mut chart = ChartBuilder::on(&contrast_area)
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..epochs_of(&row.run), -0.1..1.05)?;
            axes(&mut chart, "epoch", "mask contrast", 12)?;
            chart.draw_series(LineSeries::new(
                row.trace.iter().map(|p| (f64::from(p.epoch), p.visibility)),
                TRAIN.stroke_width(2),
            ))?;
            chart.draw_series(
                row.trace.iter().map(|p| Circle::new((f64::from(p.epoch), p.visibility), 3, TRAIN.filled())),
            )?;
            chart.draw_series(DashedLineSeries::new(
                vec![(0.0, VISIBLE), (epochs_of(&row.run), VISIBLE)],
                5,
                4,
                GREY.stroke_width(1),
            ))?;
            // The matrix at four snapshots, on one colour scale (|w| / the Glorot limit).
            let limit = (6.0 / (2.0 * r.width as f64)).sqrt();
            let panels = right.split_evenly((1, row.images.len().max(1)));
            for ((epoch, m, v), panel) in row.images.iter().zip(panels) {
                let (pw, ph) = panel.dim_in_pixel();
                let side = pw.min(ph) as i32;
                let panel = panel.shrink((0, (ph as i32 - side).max(0) / 2), (pw as i32, side));
                let caption = format!("epoch {epoch} · contrast {v:.2}");
                let mut chart = ChartBuilder::on(&panel)
                    .caption(caption, (FONT, 15))
                    .margin(6)
                    .x_label_area_size(24)
                    .y_label_area_size(30)
                    .build_cartesian_2d(0.0..r.width as f64, r.width as f64..0.0)?;
                chart
                    .configure_mesh()
                    .disable_mesh()
                    .x_labels(3)
                    .y_labels(3)
                    .x_label_formatter(&num)
                    .y_label_formatter(&num)
                    .label_style((FONT, 11))
                    .draw()?;
                let (sx, sy) = (r.width as f64 / m.cols as f64, r.width as f64 / m.rows as f64);
                chart.draw_series((0..m.rows).flat_map(|i| (0..m.cols).map(move |j| (i, j))).map(|(i, j)| {
                    let t = f64::from(m.values[i * m.cols + j]) / (0.6 * limit);
                    let grey = (255.0 * (1.0 - t.clamp(0.0, 1.0))) as u8;
                    let (x, y) = (j as f64 * sx, i as f64 * sy);
                    Rectangle::new([(x, y), (x + sx, y + sy)], RGBColor(grey, grey, grey).filled())
                }))?;
            }
        }
        Ok(())
    }
}
figure!(MaskPersistence, |f| (1700, 480 * f.rows.len() as u32 + 40));

// ---------------------------------------------------------------------------------------------
// F2 regimes

pub struct Regimes {
    curves: Vec<RunTables>,
    widths: Vec<i64>,
    /// Per width: (min train epoch, min test epoch, divergence epoch, min train, min test), each
    /// as values over seeds.
    stats: Vec<(i64, [Vec<f64>; 5])>,
    caption: String,
}

/// F2 from every run; `None` without runs.
pub fn regimes(runs: &[&RunTables]) -> Option<Regimes> {
    let groups = by_width(runs);
    if groups.is_empty() {
        return None;
    }
    let widths: Vec<i64> = groups.keys().copied().collect();
    let curves = groups.values().map(|g| representative(g).clone()).collect();
    let stats = groups
        .iter()
        .map(|(&w, g)| {
            let col = |f: &dyn Fn(&RunTables) -> Option<f64>| g.iter().filter_map(|r| f(r)).collect::<Vec<f64>>();
            (
                w,
                [
                    col(&|r| Some(f64::from(r.run.epoch_min_train_loss))),
                    col(&|r| Some(f64::from(r.run.epoch_min_test_loss))),
                    col(&|r| r.run.divergence_epoch.map(f64::from)),
                    col(&|r| Some(r.run.min_train_loss)),
                    col(&|r| Some(r.run.min_test_loss)),
                ],
            )
        })
        .collect();
    let seeds = runs.iter().map(|r| r.run.seed).collect::<std::collections::BTreeSet<_>>().len();
    Some(Regimes {
        curves,
        widths,
        stats,
        caption: format!("F2 regimes: widths {widths:?}, {seeds} seed(s)", widths = groups.keys().collect::<Vec<_>>()),
    })
}

/// Mean ± std markers and a line through the means, on a chart with log x.
fn mean_std_series<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    points: &[(f64, Vec<f64>)],
    colour: RGBColor,
    label: &str,
) -> Result
where
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let means: Vec<(f64, f64, f64)> = points
        .iter()
        .filter(|p| !p.1.is_empty())
        .map(|(x, v)| {
            let (m, s) = mean_std(v);
            (*x, m, s)
        })
        .collect();
    chart
        .draw_series(LineSeries::new(means.iter().map(|p| (p.0, p.1)), colour.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
    chart.draw_series(means.iter().map(|p| Circle::new((p.0, p.1), 4, colour.filled())))?;
    chart.draw_series(
        means
            .iter()
            .filter(|p| p.2 > 0.0)
            .map(|p| PathElement::new(vec![(p.0, p.1 - p.2), (p.0, p.1 + p.2)], colour.stroke_width(2))),
    )?;
    Ok(())
}

impl Regimes {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root = title(root, "F2  Regimes: loss curves per width, phase diagram, minimum losses")?;
        let panels = root.split_evenly((2, 2));
        let max_epoch = self.curves.iter().map(epochs_of).fold(1.0, f64::max);
        for (k, (panel, name)) in panels.iter().take(2).zip(["train loss", "test loss"]).enumerate() {
            let values = self
                .curves
                .iter()
                .flat_map(|r| r.history.iter().map(move |h| if k == 0 { h.train_loss } else { h.test_loss }));
            let y = span(values, true);
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("{name} against epochs (one seed per width)"), (FONT, 16))
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..max_epoch, log_axis(y))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(format!("{name} (nats)"))
                .x_label_formatter(&num)
                .y_label_formatter(&num)
                .label_style((FONT, 12))
                .draw()?;
            for run in &self.curves {
                let colour = width_colour(run.run.width, &self.widths);
                let points: Vec<(f64, f64)> = run
                    .history
                    .iter()
                    .map(|h| (h.epoch as f64, if k == 0 { h.train_loss } else { h.test_loss }))
                    .filter(|p| p.1.is_finite() && p.1 > 0.0)
                    .collect();
                chart
                    .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                    .label(format!("W = {}", run.run.width))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            }
            legend(&mut chart, 12)?;
        }
        let w_range = span(self.widths.iter().map(|&w| w as f64), true);
        let xs = |i: usize| self.stats.iter().map(|(w, s)| (*w as f64, s[i].clone())).collect::<Vec<_>>();
        let epochs = self.stats.iter().flat_map(|(_, s)| s[0].iter().chain(&s[1]).chain(&s[2]).copied());
        let mut chart = ChartBuilder::on(&panels[2])
            .caption("phase diagram: epochs of minimum losses and of divergence (mean ± std over seeds)", (FONT, 15))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(log_axis(w_range.clone()), span(epochs.chain([0.0]), false))?;
        axes(&mut chart, "width W (units, log)", "epoch", 12)?;
        mean_std_series(&mut chart, &xs(0), TRAIN, "minimum train loss")?;
        mean_std_series(&mut chart, &xs(1), TEST, "minimum test loss")?;
        mean_std_series(&mut chart, &xs(2), BLACK, "divergence (runs that diverged)")?;
        legend(&mut chart, 12)?;
        let losses = self.stats.iter().flat_map(|(_, s)| s[3].iter().chain(&s[4]).copied());
        let mut chart = ChartBuilder::on(&panels[3])
            .caption("minimum train and test loss against width (mean ± std over seeds)", (FONT, 15))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(log_axis(w_range), log_axis(span(losses, true)))?;
        axes(&mut chart, "width W (units, log)", "loss (nats, log)", 12)?;
        mean_std_series(&mut chart, &xs(3), TRAIN, "minimum train loss")?;
        mean_std_series(&mut chart, &xs(4), TEST, "minimum test loss")?;
        legend(&mut chart, 12)?;
        Ok(())
    }
}
figure!(Regimes, |_f| (1600, 1100));

// ---------------------------------------------------------------------------------------------
// F3 final against initial weight

pub struct FinalVsInitial {
    run: RunTables,
    epoch: i32,
    caption: String,
}

/// F3 from the widest run that did not diverge (lowest seed), at its last snapshot.
pub fn final_vs_initial(runs: &[&RunTables]) -> Option<FinalVsInitial> {
    let run = runs
        .iter()
        .filter(|r| !diverged(r) && !last_conditional(r).is_empty())
        .max_by_key(|r| (r.run.width, r.run.mask.is_none(), std::cmp::Reverse(r.run.seed)))?;
    let epoch = last_conditional(run)[0].epoch;
    let caption = format!(
        "F3 w against w0: run {} (W = {}, seed {}), hidden→hidden layer, epoch {epoch}",
        run.run_id, run.run.width, run.run.seed
    );
    Some(FinalVsInitial { run: (*run).clone(), epoch, caption })
}

impl FinalVsInitial {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let r = &self.run.run;
        let root = title(
            root,
            &format!(
                "F3  Final against initial weight: W = {}, seed {}, hidden→hidden layer, epoch {}",
                r.width, r.seed, self.epoch
            ),
        )?;
        let (main, side) = root.split_horizontally(1000);
        let (main, bar) = main.split_horizontally(880);
        let cells: Vec<_> =
            self.run.hist2d.iter().filter(|h| h.epoch == self.epoch && h.layer == HIDDEN_LAYER).collect();
        let cond: Vec<_> =
            last_conditional(&self.run).into_iter().filter(|c| c.count > 0 && c.w_quantiles.is_some()).collect();
        let x = span(cells.iter().flat_map(|c| [c.w0_lo, c.w0_hi]), false);
        let y = span(cells.iter().flat_map(|c| [c.w_lo, c.w_hi]), false);
        let max_count = cells.iter().map(|c| c.count).max().unwrap_or(1) as f64;
        let mut chart = ChartBuilder::on(&main)
            .caption("2-D histogram of (w0, w), log colour; median, 25–75% and 2–98% bands of w given w0", (FONT, 15))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x.clone(), y.clone())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("initial weight w0")
            .y_desc("weight w at the last snapshot")
            .x_label_formatter(&num)
            .y_label_formatter(&num)
            .label_style((FONT, 12))
            .draw()?;
        chart.draw_series(cells.iter().map(|c| {
            let t = (c.count as f64).ln() / max_count.ln().max(1e-9);
            Rectangle::new([(c.w0_lo, c.w_lo), (c.w0_hi, c.w_hi)], viridis(t).filled())
        }))?;
        let centre = |c: &drift_analysis::tables::ConditionalRow| 0.5 * (c.w0_lo + c.w0_hi);
        let q = |c: &drift_analysis::tables::ConditionalRow, i: usize| c.w_quantiles.expect("filtered")[i];
        let band = |lo: usize, hi: usize| {
            let mut pts: Vec<(f64, f64)> = cond.iter().map(|c| (centre(c), q(c, lo))).collect();
            pts.extend(cond.iter().rev().map(|c| (centre(c), q(c, hi))));
            pts
        };
        chart.draw_series([Polygon::new(band(0, 1), WHITE.mix(0.18)), Polygon::new(band(3, 4), WHITE.mix(0.18))])?;
        chart
            .draw_series([Polygon::new(band(1, 3), WHITE.mix(0.35))])?
            .label("25–75% of w (2–25%, 75–98% lighter)")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], RGBColor(200, 200, 200).filled()));
        chart
            .draw_series(LineSeries::new(cond.iter().map(|c| (centre(c), q(c, 2))), RED.stroke_width(2)))?
            .label("median of w")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2)));
        chart
            .draw_series(DashedLineSeries::new(vec![(x.start, x.start), (x.end, x.end)], 6, 4, WHITE.stroke_width(1)))?
            .label("w = w0")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        legend(&mut chart, 12)?;
        colour_bar(&bar, max_count)?;
        // w histograms in three narrow w0 slices: both edges and the centre.
        let bins: Vec<i32> = {
            let mut b: Vec<i32> = cells.iter().map(|c| c.w0_bin).collect();
            b.sort_unstable();
            b.dedup();
            b
        };
        if bins.is_empty() {
            return Ok(());
        }
        let picks = [bins[0], bins[bins.len() / 2], bins[bins.len() - 1]];
        for (panel, bin) in side.split_evenly((3, 1)).iter().zip(picks) {
            let slice: Vec<_> = cells.iter().filter(|c| c.w0_bin == bin).collect();
            let (w0_lo, w0_hi) = (slice[0].w0_lo, slice[0].w0_hi);
            let total: i64 = slice.iter().map(|c| c.count).sum();
            let top = slice.iter().map(|c| c.count as f64 / total as f64).fold(0.0, f64::max);
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("w0 in [{w0_lo:.4}, {w0_hi:.4}), {total} weights"), (FONT, 14))
                .margin(8)
                .x_label_area_size(34)
                .y_label_area_size(50)
                .build_cartesian_2d(y.clone(), 0.0..top * 1.1)?;
            axes(&mut chart, "w", "share", 11)?;
            chart.draw_series(
                slice
                    .iter()
                    .map(|c| Rectangle::new([(c.w_lo, 0.0), (c.w_hi, c.count as f64 / total as f64)], TRAIN.filled())),
            )?;
            let mid = 0.5 * (w0_lo + w0_hi);
            chart.draw_series(DashedLineSeries::new(vec![(mid, 0.0), (mid, top * 1.1)], 5, 3, RED.stroke_width(1)))?;
        }
        Ok(())
    }
}
figure!(FinalVsInitial, |_f| (1500, 820));

/// A vertical colour bar for log-scaled counts from 1 to `max`.
fn colour_bar<DB: DrawingBackend>(area: &Area<DB>, max: f64) -> Result
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(48)
        .margin_right(8)
        .y_label_area_size(0)
        .right_y_label_area_size(56)
        .build_cartesian_2d(0.0..1.0, log_axis(1.0..max.max(2.0)))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc("weights per cell (log)")
        .x_label_formatter(&num)
        .y_label_formatter(&num)
        .label_style((FONT, 11))
        .draw()?;
    let steps = 64;
    chart.draw_series((0..steps).map(|i| {
        let (a, b) = (i as f64 / steps as f64, (i + 1) as f64 / steps as f64);
        let (lo, hi) = (max.max(2.0).powf(a), max.max(2.0).powf(b));
        Rectangle::new([(0.0, lo), (1.0, hi)], viridis(a).filled())
    }))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// F4 moments and peak of Δw against w0

/// One column of the conditional table, as F4 plots it.
type Stat = fn(&drift_analysis::tables::ConditionalRow) -> Option<f64>;

pub struct Moments {
    run: RunTables,
    epoch: i32,
    caption: String,
}

/// F4 from the run of F3 (widest non-diverged, lowest seed), every layer, last snapshot.
pub fn deviation_vs_w0(runs: &[&RunTables]) -> Option<Moments> {
    let f3 = final_vs_initial(runs)?;
    let caption = format!(
        "F4 moments of Δw against w0: run {} (W = {}), every layer, epoch {}",
        f3.run.run_id, f3.run.run.width, f3.epoch
    );
    Some(Moments { run: f3.run, epoch: f3.epoch, caption })
}

impl Moments {
    fn layers(&self) -> Vec<i32> {
        let mut l: Vec<i32> = self.run.conditional.iter().map(|c| c.layer).collect();
        l.sort_unstable();
        l.dedup();
        l
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let r = &self.run.run;
        let root = title(
            root,
            &format!(
                "F4  Moments and peak of Δw = w − w0 in bins of w0 (≥ 20 weights): W = {}, seed {}, epoch {}",
                r.width, r.seed, self.epoch
            ),
        )?;
        let layers = self.layers();
        let panels = root.split_evenly((layers.len(), 5));
        let stats: [(&str, Stat); 5] = [
            ("mean Δw", |c| c.mean_dw),
            ("std Δw", |c| c.std_dw),
            ("skewness of Δw", |c| c.skew_dw),
            ("excess kurtosis of Δw", |c| c.kurt_dw),
            ("mode (peak) of Δw", |c| c.mode_dw),
        ];
        for (row, &l) in layers.iter().enumerate() {
            let name = match l {
                1 => format!("layer {l} (input → hidden)"),
                l if i64::from(l) == r.depth + 1 => format!("layer {l} (hidden → output)"),
                l => format!("layer {l} (hidden → hidden)"),
            };
            let rows: Vec<_> = self
                .run
                .conditional
                .iter()
                .filter(|c| c.epoch == self.epoch && c.layer == l && c.count >= 20)
                .collect();
            for (col, (stat_name, stat)) in stats.iter().enumerate() {
                let points: Vec<(f64, f64)> =
                    rows.iter().filter_map(|c| Some((0.5 * (c.w0_lo + c.w0_hi), stat(c)?))).collect();
                let x = span(rows.iter().flat_map(|c| [c.w0_lo, c.w0_hi]), false);
                let y = span(points.iter().map(|p| p.1).chain([0.0]), false);
                let mut chart = ChartBuilder::on(&panels[row * 5 + col])
                    .caption(format!("{name}: {stat_name}"), (FONT, 13))
                    .margin(6)
                    .x_label_area_size(34)
                    .y_label_area_size(58)
                    .build_cartesian_2d(x.clone(), y)?;
                chart
                    .configure_mesh()
                    .x_labels(5)
                    .x_desc("initial weight w0")
                    .x_label_formatter(&num)
                    .y_label_formatter(&num)
                    .label_style((FONT, 11))
                    .draw()?;
                chart.draw_series(LineSeries::new(vec![(x.start, 0.0), (x.end, 0.0)], GREY.stroke_width(1)))?;
                chart.draw_series(LineSeries::new(points.iter().copied(), TRAIN.stroke_width(2)))?;
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 2, TRAIN.filled())))?;
            }
        }
        Ok(())
    }
}
figure!(Moments, |f| (1800, 300 * f.layers().len() as u32 + 40));

// ---------------------------------------------------------------------------------------------
// F5 evolution

pub struct Evolution {
    runs: Vec<RunTables>,
    caption: String,
}

impl Evolution {
    /// F5: one panel per width (the width's representative run).
    pub fn new(runs: &[&RunTables]) -> Option<Evolution> {
        let groups = by_width(runs);
        if groups.is_empty() {
            return None;
        }
        let runs: Vec<RunTables> = groups.values().map(|g| representative(g).clone()).collect();
        Some(Evolution {
            caption: format!("F5 evolution of the hidden→hidden deviations next to the losses, {} widths", runs.len()),
            runs,
        })
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root =
            title(root, "F5  Evolution: deviations of the hidden→hidden weights (left, log) and losses (right, log)")?;
        let cols = self.runs.len().min(3);
        let rows = self.runs.len().div_ceil(cols);
        for (run, panel) in self.runs.iter().zip(root.split_evenly((rows, cols)).iter()) {
            let dev = layer_weights(run, HIDDEN_LAYER);
            let mean_abs: Vec<(f64, f64)> = dev.iter().map(|d| (f64::from(d.epoch), d.mean_abs)).collect();
            let rel: Vec<(f64, f64)> = dev.iter().filter_map(|d| Some((f64::from(d.epoch), d.rel_change?))).collect();
            let tail: Vec<(f64, f64)> =
                dev.iter().map(|d| (f64::from(d.epoch), d.quantiles[0].abs().max(d.quantiles[6].abs()))).collect();
            let y = span(mean_abs.iter().chain(&rel).chain(&tail).map(|p| p.1), true);
            let losses = span(run.history.iter().flat_map(|h| [h.train_loss, h.test_loss]), true);
            let x = 0.0..epochs_of(run);
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("W = {}, seed {}", run.run.width, run.run.seed), (FONT, 16))
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(64)
                .right_y_label_area_size(56)
                .build_cartesian_2d(x.clone(), log_axis(y.clone()))?
                .set_secondary_coord(x, log_axis(losses));
            axes(&mut chart, "epoch", "deviation", 11)?;
            chart
                .configure_secondary_axes()
                .y_desc("loss (nats)")
                .x_label_formatter(&num)
                .y_label_formatter(&num)
                .label_style((FONT, 11))
                .draw()?;
            for (points, colour, label) in [
                (mean_abs, viridis(0.0), "mean |Δw|"),
                (rel, viridis(0.45), "rel_change ‖W−W0‖/‖W0‖"),
                (tail, viridis(0.8), "max(|p01|, |p99|) of Δw"),
            ] {
                let points: Vec<_> = points.into_iter().filter(|p| p.1 > 0.0).collect();
                chart
                    .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            }
            for (values, colour, label) in [
                (run.history.iter().map(|h| (h.epoch as f64, h.train_loss)).collect::<Vec<_>>(), TRAIN, "train loss"),
                (run.history.iter().map(|h| (h.epoch as f64, h.test_loss)).collect(), TEST, "test loss"),
            ] {
                let values: Vec<_> = values.into_iter().filter(|p| p.1.is_finite() && p.1 > 0.0).collect();
                chart
                    .draw_secondary_series(DashedLineSeries::new(values, 5, 3, colour.stroke_width(1)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
            }
            if let Some((epoch, _)) = largest_jump(run) {
                let e = f64::from(epoch);
                chart
                    .draw_series(LineSeries::new(vec![(e, y.start), (e, y.end)], GREY.stroke_width(2)))?
                    .label("largest jump of mean |Δw| after epoch 1")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], GREY.stroke_width(2)));
            }
            if let Some(d) = run.run.divergence_epoch {
                let e = f64::from(d);
                chart
                    .draw_series(LineSeries::new(vec![(e, y.start), (e, y.end)], BLACK.stroke_width(2)))?
                    .label("divergence epoch")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
            }
            if !std::ptr::eq(run, &self.runs[0]) {
                continue; // one legend for all panels
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font((FONT, 10))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }
        Ok(())
    }
}
figure!(Evolution, |f| (1650, 520 * f.runs.len().div_ceil(3) as u32 + 40));

// ---------------------------------------------------------------------------------------------
// F6 width

pub struct WidthScaling {
    levels: Vec<LevelDeviation>,
    rel: Vec<(f64, f64)>,
    slope: Option<f64>,
    caption: String,
}

/// F6 from every run; `None` with fewer than two widths.
pub fn width_scaling(runs: &[&RunTables]) -> Option<WidthScaling> {
    if by_width(runs).len() < 2 {
        return None;
    }
    let levels = deviation_at_levels(runs);
    let (slope, rel) = rel_change_slope(runs);
    let caption = format!(
        "F6 width: mean |Δw| at {} train-loss levels and rel_change against width (slope {})",
        levels.len(),
        slope.map_or("undefined".into(), |s| format!("{s:.3}"))
    );
    Some(WidthScaling { levels, rel, slope, caption })
}

impl WidthScaling {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root = title(root, "F6  Width: how far the weights move, against width")?;
        let (left, right) = root.split_horizontally(800);
        let widths =
            self.rel.iter().map(|p| p.0).chain(self.levels.iter().flat_map(|l| l.1.iter().map(|p| p.0 as f64)));
        let x = span(widths, true);
        let values = self.levels.iter().flat_map(|l| l.1.iter().flat_map(|p| p.1.iter().copied()));
        let mut chart = ChartBuilder::on(&left)
            .caption("mean |Δw| (all weights) at the first epoch with train loss ≤ level", (FONT, 15))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(log_axis(x.clone()), log_axis(span(values, true)))?;
        axes(&mut chart, "width W (units, log)", "mean |Δw| (log)", 12)?;
        if self.levels.is_empty() {
            chart.draw_series([Text::new(
                "no train-loss level is reached by three widths",
                (x.start * 1.1, 0.5),
                (FONT, 14),
            )])?;
        }
        for (i, (level, per_width)) in self.levels.iter().enumerate() {
            let colour = viridis(0.85 * i as f64 / self.levels.len().max(2).saturating_sub(1) as f64);
            let points: Vec<(f64, Vec<f64>)> = per_width.iter().map(|(w, v)| (*w as f64, v.clone())).collect();
            mean_std_series(&mut chart, &points, colour, &format!("train loss ≤ {level}"))?;
        }
        legend(&mut chart, 12)?;
        let mut chart = ChartBuilder::on(&right)
            .caption("rel_change ‖W−W0‖/‖W0‖ of the hidden→hidden layer at the last epoch", (FONT, 15))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(log_axis(x.clone()), log_axis(span(self.rel.iter().map(|p| p.1), true)))?;
        axes(&mut chart, "width W (units, log)", "rel_change (log)", 12)?;
        chart
            .draw_series(self.rel.iter().map(|&p| Circle::new(p, 4, TRAIN.filled())))?
            .label("runs (non-diverged)")
            .legend(|(x, y)| Circle::new((x + 9, y), 4, TRAIN.filled()));
        if let (Some(slope), Some(fit)) = (self.slope, {
            let lx: Vec<f64> = self.rel.iter().map(|p| p.0.ln()).collect();
            let ly: Vec<f64> = self.rel.iter().map(|p| p.1.ln()).collect();
            drift_analysis::claims::fit_line(&lx, &ly)
        }) {
            let line = |w: f64| (w, (fit.1 + fit.0 * w.ln()).exp());
            chart
                .draw_series(LineSeries::new(vec![line(x.start), line(x.end)], TEST.stroke_width(2)))?
                .label(format!("fit: slope {slope:.3} (lazy training: −0.5)"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], TEST.stroke_width(2)));
        }
        legend(&mut chart, 12)?;
        Ok(())
    }
}
figure!(WidthScaling, |_f| (1600, 700));
