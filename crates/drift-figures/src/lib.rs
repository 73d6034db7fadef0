//! drift-figures: the six figures of the study and the phase diagram, drawn from the saved tables of a sweep (never
//! from a live run), as PNG and SVG.
//!
//! | id | shows |
//! |---|---|
//! | F1 | mask persistence: losses of a masked run and its hidden→hidden matrix at four snapshots |
//! | F2 | regimes: loss curves per width, the phase diagram, minimum losses against width |
//! | F3 | `w` against `w0` (2-D histogram, median and percentile bands, three slices) |
//! | F4 | moments and peak of `Δw` against `w0`, per layer |
//! | F5 | deviation statistics and losses against epochs, one panel per width |
//! | F6 | mean `|Δw|` at given train losses and `rel_change` against width (log–log, fitted slope) |
//! | F7 | the phase diagram: the regime of every width × learning rate, with the seeds that diverged |
//!
//! Text is measured and drawn with a bundled DejaVu Sans (see [`text`]), so a figure looks the
//! same on every machine and needs no system fonts.

mod plots;
pub mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use drift_analysis::claims::{comparable, MaskPoint};
use drift_analysis::setting::{reference_runs, SettingRuns};

pub use plots::{
    deviation_vs_w0, final_vs_initial, mask_persistence, phase_diagram, regime_colour, regimes, width_scaling,
    Evolution, Figure, FinalVsInitial, MaskPersistence, Moments, PhaseDiagram, Regimes, WidthScaling,
};

/// A figure written to disk in both formats.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// `F1` … `F6`.
    pub id: &'static str,
    pub png: PathBuf,
    pub svg: PathBuf,
    /// One line saying what the figure shows (for the report).
    pub caption: String,
}

/// Draws `figure` as `DIR/STEM.png` and `DIR/STEM.svg`, each written to a temporary name first.
pub fn save(figure: &dyn Figure, dir: &Path, stem: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let size = figure.size();
    let (png, svg) = (dir.join(format!("{stem}.png")), dir.join(format!("{stem}.svg")));
    let (png_tmp, svg_tmp) = (dir.join(format!(".{stem}.tmp.png")), dir.join(format!(".{stem}.tmp.svg")));
    {
        let root = text::Texted { inner: BitMapBackend::new(&png_tmp, size), raster: true }.into_drawing_area();
        root.fill(&WHITE)?;
        figure.draw_bitmap(&root)?;
        root.present()?;
    }
    {
        let root = text::Texted { inner: SVGBackend::new(&svg_tmp, size), raster: false }.into_drawing_area();
        root.fill(&WHITE)?;
        figure.draw_svg(&root)?;
        root.present()?;
    }
    std::fs::rename(&png_tmp, &png)?;
    std::fs::rename(&svg_tmp, &svg)?;
    Ok((png, svg))
}

/// A figure's id, file-name part and the figure, if the runs have what it draws.
type Candidate = (&'static str, &'static str, Option<Box<dyn Figure>>);

/// Every figure the runs of one setting support, into `dir` (file names carry the setting's
/// tag): F1 from the masked runs, F2, F5 and F7 from the unmasked runs of every learning rate,
/// F3, F4 and F6 from those at the setting's reference learning rate (see
/// [`drift_analysis::setting::reference_runs`]). Figures without data (no masked run for F1,
/// say) are skipped and listed in the second return value with the reason.
pub fn draw_all(
    setting: &SettingRuns,
    masks: &BTreeMap<String, Vec<MaskPoint>>,
    dir: &Path,
) -> anyhow::Result<(Vec<Written>, Vec<String>)> {
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    let (all, tag) = (&setting.runs[..], &setting.tag);
    let runs = &comparable(all)[..];
    let (_, reference) = reference_runs(runs);
    fn boxed<F: Figure + 'static>(f: Option<F>) -> Option<Box<dyn Figure>> {
        f.map(|f| Box::new(f) as Box<dyn Figure>)
    }
    let figures: [Candidate; 7] = [
        ("F1", "mask", boxed(mask_persistence(all, masks)?)),
        ("F2", "regimes", boxed(regimes(runs))),
        ("F3", "w-vs-w0", boxed(final_vs_initial(&reference))),
        ("F4", "moments", boxed(deviation_vs_w0(&reference))),
        ("F5", "evolution", boxed(Evolution::new(runs))),
        ("F6", "width", boxed(width_scaling(&reference))),
        ("F7", "phase", boxed(phase_diagram(runs, &setting.name))),
    ];
    for (id, name, figure) in figures {
        match figure {
            Some(figure) => {
                let (png, svg) = save(figure.as_ref(), dir, &format!("{id}-{name}-{tag}"))?;
                written.push(Written { id, png, svg, caption: figure.caption() });
            }
            None => skipped.push(format!("{id} ({tag}): the runs have nothing to draw")),
        }
    }
    Ok((written, skipped))
}

/// A perceptually ordered colour for `t` in [0, 1] (viridis, interpolated from 11 stops).
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 11] = [
        (0.267, 0.005, 0.329),
        (0.283, 0.141, 0.458),
        (0.254, 0.265, 0.530),
        (0.207, 0.372, 0.553),
        (0.164, 0.471, 0.558),
        (0.128, 0.567, 0.551),
        (0.135, 0.659, 0.518),
        (0.267, 0.749, 0.441),
        (0.478, 0.821, 0.317),
        (0.741, 0.873, 0.150),
        (0.993, 0.906, 0.144),
    ];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 } * 10.0;
    let i = (t.floor() as usize).min(9);
    let f = t - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: f64, y: f64| ((x + (y - x) * f) * 255.0).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}
