//! drift-figures: the six figures of the study, the phase diagram, the spectrum of the weight change and the optimiser comparison, drawn from the saved tables of a sweep (never
//! from a live run), as PNG and SVG.
//!
//! Each figure has one name, from its module to its function, its data struct and its files
//! (`F4-moments-<setting>.png`): the function computes the struct, the numbers it draws, from
//! the tables, and the struct draws itself.
//!
//! | id | name | shows | claim |
//! |---|---|---|---|
//! | F1 | `mask` | mask persistence: losses of a masked run and its hidden→hidden matrix at four snapshots | 1 |
//! | F2 | `regimes` | loss curves per width, the phase diagram, minimum losses against width | 2 |
//! | F3 | `w-vs-w0` | `w` against `w0` (2-D histogram, median and percentile bands, three slices) | 3 |
//! | F4 | `moments` | moments and peak of `Δw` against `w0`, per layer | 4 |
//! | F5 | `evolution` | deviation statistics and losses against epochs, one panel per width | 5 |
//! | F6 | `width` | mean `|Δw|` at given train losses and `rel_change` against width (log–log, fitted slope) | 6 |
//! | F7 | `phase` | the phase diagram: the regime of every width × learning rate, with the seeds that diverged | 2 |
//! | F8 | `spectrum` | singular values of `ΔW` against `W0`'s at the last snapshot, and the stable rank of `ΔW` against epochs, per width | — |
//! | F9 | `optimizers` | per optimiser trained to one target loss: hidden→hidden `rel_change`, mean `|Δw|` and the stable rank of `ΔW` there, against width | — |
//!
//! Text is measured and drawn with a bundled DejaVu Sans (see [`text`]), so a figure looks the
//! same on every machine and needs no system fonts.
//!
//! Failures are [`FigureError`]s that name the file or folder; [`FigureError::is_bad_input`]
//! tells an output folder that cannot be made or written (or tables that cannot be read) from a
//! failure while drawing.

mod plots;
pub mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use drift_analysis::query::{comparable, MaskPoint};
use drift_analysis::setting::{reference_runs, SettingRuns};

pub use plots::{
    evolution, mask, moments, optimizers, phase, regime_colour, regimes, spectrum, w_vs_w0, width, DrawError,
    Evolution, EvolutionPanel, Figure, Losses, Mask, MaskRow, Moments, OptimizerCurve, Optimizers, Phase, Regimes,
    Slice, Spectrum, SpectrumCurve, WVsW0, Width,
};

/// A figure written to disk in both formats.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// `F1` … `F8`.
    pub id: &'static str,
    pub png: PathBuf,
    pub svg: PathBuf,
    /// One line saying what the figure shows (for the report).
    pub caption: String,
}

/// Everything that can go wrong drawing figures; each variant names the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// The folder the figures go to cannot be made or written: a fault of the path the user
    /// gave (see [`FigureError::is_bad_input`]).
    #[error("{}: {reason}", path.display())]
    Output { path: PathBuf, reason: String },
    /// A table of a run (a snapshot, say) could not be read.
    #[error(transparent)]
    Table(#[from] drift_analysis::AnalysisError),
    /// Plotters failed while drawing or writing `path`.
    #[error("{}: cannot draw the figure: {source}", path.display())]
    Draw { path: PathBuf, source: DrawError },
    /// A finished figure could not be renamed into place.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl FigureError {
    /// Whether the error is about what the user gave (the output folder, or the tables of the
    /// sweep folder), rather than a failure of drift or the machine.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, FigureError::Output { .. } | FigureError::Table(_))
    }
}

/// Makes `dir` (and its parents) and checks that a file can be written in it, so that a bad
/// `--out` is refused before any drawing with a message that says what is wrong with it, not
/// a bare "File exists".
pub fn prepare_output(dir: &Path) -> Result<(), FigureError> {
    let refuse = |reason: String| Err(FigureError::Output { path: dir.to_path_buf(), reason });
    if let Err(e) = std::fs::create_dir_all(dir) {
        return refuse(why_not_a_folder(dir, &e));
    }
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => {
            refuse(format!("cannot write into this folder ({e}); expected a folder drift can write the figures into"))
        }
    }
}

/// Why `dir` could not be made a folder: it, or the first of its parents that exists, is a
/// file or a dangling symbolic link; else the system's reason.
fn why_not_a_folder(dir: &Path, error: &std::io::Error) -> String {
    let found = dir.ancestors().filter(|p| !p.as_os_str().is_empty()).enumerate().find_map(|(i, path)| {
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some((i == 0, path, meta.file_type().is_symlink() && !path.exists()))
    });
    let Some((itself, path, dangling)) = found else {
        return format!("cannot make the folder for the figures: {error}");
    };
    let what = if dangling {
        let target = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
        format!("a symbolic link to {target}, which does not exist")
    } else if !path.is_dir() {
        "a file, not a folder".to_string()
    } else {
        return format!("cannot make the folder for the figures: {error}");
    };
    if itself {
        format!("{what}; expected a folder for the figures (or a path where one can be made)")
    } else {
        format!("cannot be made: {} is {what}", path.display())
    }
}

/// Draws `figure` as `DIR/STEM.png` and `DIR/STEM.svg`, each written to a temporary name first;
/// `DIR` is made if needed ([`prepare_output`]).
pub fn save(figure: &dyn Figure, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), FigureError> {
    prepare_output(dir)?;
    let size = figure.size();
    let (png, svg) = (dir.join(format!("{stem}.png")), dir.join(format!("{stem}.svg")));
    let (png_tmp, svg_tmp) = (dir.join(format!(".{stem}.tmp.png")), dir.join(format!(".{stem}.tmp.svg")));
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FigureError::Draw { path, source }
    };
    let bitmap = || -> Result<(), DrawError> {
        let root = text::Texted { inner: BitMapBackend::new(&png_tmp, size), raster: true }.into_drawing_area();
        root.fill(&WHITE)?;
        figure.draw_bitmap(&root)?;
        Ok(root.present()?)
    };
    bitmap().map_err(at(&png))?;
    let vector = || -> Result<(), DrawError> {
        let root = text::Texted { inner: SVGBackend::new(&svg_tmp, size), raster: false }.into_drawing_area();
        root.fill(&WHITE)?;
        figure.draw_svg(&root)?;
        Ok(root.present()?)
    };
    vector().map_err(at(&svg))?;
    for (tmp, path) in [(&png_tmp, &png), (&svg_tmp, &svg)] {
        std::fs::rename(tmp, path).map_err(|source| FigureError::Io { path: path.clone(), source })?;
    }
    Ok((png, svg))
}

/// A figure's id, file-name part, the figure if the runs have what it draws, and why not.
type Candidate = (&'static str, &'static str, Option<Box<dyn Figure>>, &'static str);

/// Every figure the runs of one setting support, into `dir` (file names carry the setting's
/// tag): F1 from the masked runs, F2, F5 and F7 from the unmasked runs of every learning rate,
/// F3, F4, F6 and F8 from those at the setting's reference learning rate (see
/// [`drift_analysis::setting::reference_runs`]). Figures without data (no masked run for F1,
/// say) are skipped and listed in the second return value with the reason.
pub fn draw_all(
    setting: &SettingRuns,
    masks: &BTreeMap<String, Vec<MaskPoint>>,
    dir: &Path,
) -> Result<(Vec<Written>, Vec<String>), FigureError> {
    prepare_output(dir)?;
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    let (all, tag) = (&setting.runs[..], &setting.tag);
    let runs = &comparable(all)[..];
    let (_, reference) = reference_runs(runs);
    fn boxed<F: Figure + 'static>(f: Option<F>) -> Option<Box<dyn Figure>> {
        f.map(|f| Box::new(f) as Box<dyn Figure>)
    }
    const NOTHING: &str = "the runs have nothing to draw";
    let figures: [Candidate; 8] = [
        ("F1", "mask", boxed(mask(all, masks)?), "no run has a mask"),
        ("F2", "regimes", boxed(regimes(runs)), NOTHING),
        ("F3", "w-vs-w0", boxed(w_vs_w0(&reference)), NOTHING),
        ("F4", "moments", boxed(moments(&reference)), NOTHING),
        ("F5", "evolution", boxed(evolution(runs)), NOTHING),
        ("F6", "width", boxed(width(&reference)), NOTHING),
        ("F7", "phase", boxed(phase(runs, &setting.name)), NOTHING),
        ("F8", "spectrum", boxed(spectrum(&reference)), NOTHING),
    ];
    for (id, name, figure, why_not) in figures {
        match figure {
            Some(figure) => {
                let (png, svg) = save(figure.as_ref(), dir, &format!("{id}-{name}-{tag}"))?;
                written.push(Written { id, png, svg, caption: figure.caption() });
            }
            None => skipped.push(format!("{id} ({tag}): {why_not}")),
        }
    }
    Ok((written, skipped))
}

/// F9 of one optimiser comparison into `dir` (`F9-optimizers-<tag>`); `None` when no optimiser
/// has a run that reached the target.
pub fn draw_comparison(
    comparison: &drift_analysis::optimizers::OptimizerComparison,
    dir: &Path,
) -> Result<Option<Written>, FigureError> {
    let Some(figure) = optimizers(comparison) else { return Ok(None) };
    prepare_output(dir)?;
    let (png, svg) = save(&figure, dir, &format!("F9-optimizers-{}", comparison.tag))?;
    Ok(Some(Written { id: "F9", png, svg, caption: figure.caption() }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::coord::Shift;
    use std::fs;

    /// A figure that draws nothing: enough to exercise the files `save` writes.
    struct Blank;

    impl Figure for Blank {
        fn size(&self) -> (u32, u32) {
            (40, 30)
        }
        fn caption(&self) -> String {
            "blank".into()
        }
        fn draw_bitmap(&self, _: &DrawingArea<text::Texted<BitMapBackend<'_>>, Shift>) -> Result<(), DrawError> {
            Ok(())
        }
        fn draw_svg(&self, _: &DrawingArea<text::Texted<SVGBackend<'_>>, Shift>) -> Result<(), DrawError> {
            Ok(())
        }
    }

    fn output_error(dir: &Path) -> FigureError {
        let e = save(&Blank, dir, "F0").unwrap_err();
        assert!(e.is_bad_input(), "{e}");
        assert!(matches!(&e, FigureError::Output { path, .. } if path == dir), "{e:?}");
        e
    }

    #[test]
    fn save_makes_the_folder_and_leaves_only_the_figures() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let (png, svg) = save(&Blank, &dir, "F0").unwrap();
        assert_eq!((png, svg), (dir.join("F0.png"), dir.join("F0.svg")));
        let mut names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["F0.png", "F0.svg"]);
    }

    #[test]
    fn an_output_path_that_is_a_file_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("figs");
        fs::write(&file, "").unwrap();
        let e = output_error(&file).to_string();
        let want = format!("{}: a file, not a folder; expected a folder for the figures", file.display());
        assert!(e.starts_with(&want), "{e}");
    }

    #[test]
    fn an_output_path_under_a_file_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("notes.txt");
        fs::write(&file, "").unwrap();
        let dir = file.join("figs/F");
        let e = output_error(&dir).to_string();
        assert_eq!(e, format!("{}: cannot be made: {} is a file, not a folder", dir.display(), file.display()));
    }

    #[test]
    fn a_dangling_symbolic_link_as_the_folder_names_its_target() {
        let tmp = tempfile::tempdir().unwrap();
        let (link, target) = (tmp.path().join("figs"), tmp.path().join("gone"));
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = output_error(&link).to_string();
        let want = format!(
            "{}: a symbolic link to {}, which does not exist; expected a folder",
            link.display(),
            target.display()
        );
        assert!(e.starts_with(&want), "{e}");
        // Under a dangling link, the link is named.
        let below = link.join("F");
        let e = output_error(&below).to_string();
        assert!(
            e.starts_with(&format!("{}: cannot be made: {} is a symbolic link to ", below.display(), link.display())),
            "{e}"
        );
    }

    #[test]
    fn a_read_only_folder_is_refused_before_drawing() {
        use std::os::unix::fs::PermissionsExt;
        // A folder nobody can write into, not even root.
        let proc = Path::new("/proc/self");
        if proc.is_dir() {
            let e = output_error(proc).to_string();
            assert!(e.starts_with("/proc/self: cannot write into this folder ("), "{e}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ro");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
        if fs::write(dir.join("probe"), "").is_ok() {
            eprintln!("skipping part of a_read_only_folder_is_refused_before_drawing: this user (root?) writes into read-only folders");
            return;
        }
        let e = output_error(&dir).to_string();
        assert!(e.starts_with(&format!("{}: cannot write into this folder (", dir.display())), "{e}");
        assert!(e.ends_with("expected a folder drift can write the figures into"), "{e}");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn only_path_and_table_errors_are_bad_input() {
        let draw = FigureError::Draw { path: "F0.png".into(), source: DrawError("backend error".into()) };
        assert_eq!(draw.to_string(), "F0.png: cannot draw the figure: backend error");
        assert!(!draw.is_bad_input());
        let io = FigureError::Io { path: "F0.png".into(), source: std::io::Error::other("disk full") };
        assert!(!io.is_bad_input());
        let table = drift_analysis::AnalysisError::Read { path: "s.parquet".into(), message: "bad".into() };
        assert!(FigureError::from(table).is_bad_input());
    }
}
