//! F1 `mask`: mask persistence.

use drift_analysis::query::VISIBLE;
use drift_analysis::read::{read_weight_matrix, Matrix};

use super::*;

/// One masked run: its losses, the hidden→hidden |w| at four snapshots (pooled to at most
/// 128 × 128 cells) and the mask contrast at every snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskRow {
    pub run_id: String,
    pub width: i64,
    pub lr: f64,
    pub seed: u64,
    pub mask: String,
    pub divergence: Option<i32>,
    pub losses: Losses,
    /// `(epoch, pooled |w|, contrast at that epoch)`.
    pub images: Vec<(i32, Matrix, f64)>,
    pub trace: Vec<MaskPoint>,
}

/// F1: the widest stable masked run and the widest diverged one.
pub struct Mask {
    pub rows: Vec<MaskRow>,
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

/// For a diverged run: the first snapshot, the last before the divergence, the first at or
/// after it, and the last.
fn around(epochs: &[u32], divergence: u32) -> Vec<u32> {
    let mut picked: Vec<u32> = [
        epochs.first().copied(),
        epochs.iter().rev().find(|&&e| e < divergence).copied(),
        epochs.iter().find(|&&e| e >= divergence).copied(),
        epochs.last().copied(),
    ]
    .into_iter()
    .flatten()
    .collect();
    picked.dedup();
    picked
}

/// F1 from the widest masked run that kept training and, if one exists, the widest masked run
/// that diverged. `None` without a masked run.
pub fn mask(
    runs: &[&RunTables],
    masks: &BTreeMap<String, Vec<MaskPoint>>,
) -> std::result::Result<Option<Mask>, FigureError> {
    let masked: Vec<&&RunTables> = runs.iter().filter(|r| masks.contains_key(&r.run_id)).collect();
    // The unstable row prefers the study's crossover (learned, then diverged) to an early collapse.
    let crossover = |r: &RunTables| classify_run(r).is_some_and(|d| d.is_crossover());
    let pick = |want_diverged: bool| {
        masked
            .iter()
            .filter(|r| diverged(r) == want_diverged)
            .max_by_key(|r| (crossover(r), r.run.width, std::cmp::Reverse(r.run.seed)))
            .copied()
    };
    let mut rows = Vec::new();
    for run in [pick(false), pick(true)].into_iter().flatten() {
        let mut images = Vec::new();
        let trace = masks[&run.run_id].clone();
        let epochs = run.dir.snapshot_epochs();
        let shown = match run.run.divergence_epoch {
            Some(d) => around(&epochs, d as u32),
            None => four_epochs(&epochs),
        };
        for epoch in shown {
            let m = read_weight_matrix(&run.dir.snapshot_path(epoch), HIDDEN_LAYER)?;
            let v = trace.iter().find(|p| p.epoch == epoch as i32).map_or(f64::NAN, |p| p.visibility);
            images.push((epoch as i32, pool_abs(&m, 128), v));
        }
        let r = &run.run;
        rows.push(MaskRow {
            run_id: run.run_id.clone(),
            width: r.width,
            lr: r.lr,
            seed: r.seed,
            mask: r.mask.clone().unwrap_or_default(),
            divergence: r.divergence_epoch,
            losses: Losses::of(run),
            images,
            trace,
        });
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let caption = rows
        .iter()
        .map(|r| format!("run {} (W = {}, lr {}, seed {}, mask '{}')", r.run_id, r.width, r.lr, r.seed, r.mask))
        .collect::<Vec<_>>()
        .join(" and ");
    Ok(Some(Mask { rows, caption: format!("F1 mask persistence: {caption}") }))
}

impl Mask {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root = title(root, "F1  Mask persistence: |w| of the hidden→hidden matrix and the losses")?;
        let rows = root.split_evenly((self.rows.len(), 1));
        for (row, area) in self.rows.iter().zip(&rows) {
            let (left, right) = area.split_horizontally(470);
            let (loss_area, contrast_area) = left.split_vertically(area.dim_in_pixel().1 * 3 / 5);
            let r = row;
            let state = if r.divergence.is_some() { "diverged" } else { "stable" };
            let mut marks: Vec<(f64, RGBColor, &str)> = Vec::new();
            if let Some(d) = r.divergence {
                marks.push((f64::from(d), BLACK, "divergence"));
            }
            let caption = format!("{state}: W = {}, lr {}, seed {}, mask '{}'", r.width, r.lr, r.seed, r.mask);
            loss_panel(&loss_area, &r.losses, &caption, &marks)?;
            // Mask contrast against epochs.
            let mut chart = ChartBuilder::on(&contrast_area)
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..row.losses.epochs(), -0.1..1.05)?;
            axes(&mut chart, "epoch", "mask contrast", 12)?;
            chart.draw_series(LineSeries::new(
                row.trace.iter().map(|p| (f64::from(p.epoch), p.visibility)),
                TRAIN.stroke_width(2),
            ))?;
            chart.draw_series(
                row.trace.iter().map(|p| Circle::new((f64::from(p.epoch), p.visibility), 3, TRAIN.filled())),
            )?;
            chart.draw_series(DashedLineSeries::new(
                vec![(0.0, VISIBLE), (row.losses.epochs(), VISIBLE)],
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
figure!(Mask, |f| (1700, 480 * f.rows.len() as u32 + 40));
