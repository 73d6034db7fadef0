//! F4 `moments`: the moments and peak of the deviation against the initial weight.

use drift_analysis::query::{bin_centre, populated, MIN_BIN_COUNT};
use drift_analysis::tables::ConditionalRow;

use super::w_vs_w0::shown_run;
use super::*;

/// One column of the conditional table, as F4 plots it.
type Stat = fn(&ConditionalRow) -> Option<f64>;

/// F4: per layer, the bins of w0 at the last snapshot that hold at least [`MIN_BIN_COUNT`]
/// weights (the bins claims 3 and 4 are judged on), with the moments and peak of Δw in each.
pub struct Moments {
    pub run_id: String,
    pub width: i64,
    pub seed: u64,
    pub depth: i64,
    pub epoch: i32,
    /// `(layer, its populated bins in bin order)`, ascending by layer; every layer of the run,
    /// with or without populated bins.
    pub layers: Vec<(i32, Vec<ConditionalRow>)>,
    caption: String,
}

/// F4 from the run of F3 (widest non-diverged, lowest seed), every layer, last snapshot.
pub fn moments(runs: &[&RunTables]) -> Option<Moments> {
    let (run, epoch) = shown_run(runs)?;
    let caption =
        format!("F4 moments of Δw against w0: run {} (W = {}), every layer, epoch {epoch}", run.run_id, run.run.width);
    let mut numbers: Vec<i32> = run.conditional.iter().map(|c| c.layer).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let layers = numbers
        .into_iter()
        .map(|l| {
            let at = run.conditional.iter().filter(|c| c.epoch == epoch && c.layer == l);
            (l, populated(at).into_iter().cloned().collect())
        })
        .collect();
    Some(Moments {
        run_id: run.run_id.clone(),
        width: run.run.width,
        seed: run.run.seed,
        depth: run.run.depth,
        epoch,
        layers,
        caption,
    })
}

impl Moments {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root = title(
            root,
            &format!(
                "F4  Moments and peak of Δw = w − w0 in bins of w0 (≥ {MIN_BIN_COUNT} weights): W = {}, seed {}, epoch {}",
                self.width, self.seed, self.epoch
            ),
        )?;
        let panels = root.split_evenly((self.layers.len(), 5));
        let stats: [(&str, Stat); 5] = [
            ("mean Δw", |c| c.mean_dw),
            ("std Δw", |c| c.std_dw),
            ("skewness of Δw", |c| c.skew_dw),
            ("excess kurtosis of Δw", |c| c.kurt_dw),
            ("mode (peak) of Δw", |c| c.mode_dw),
        ];
        for (row, (l, rows)) in self.layers.iter().enumerate() {
            let name = match *l {
                1 => format!("layer {l} (input → hidden)"),
                l if i64::from(l) == self.depth + 1 => format!("layer {l} (hidden → output)"),
                l => format!("layer {l} (hidden → hidden)"),
            };
            for (col, (stat_name, stat)) in stats.iter().enumerate() {
                let points: Vec<(f64, f64)> = rows.iter().filter_map(|c| Some((bin_centre(c), stat(c)?))).collect();
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
figure!(Moments, |f| (1800, 300 * f.layers.len() as u32 + 40));
