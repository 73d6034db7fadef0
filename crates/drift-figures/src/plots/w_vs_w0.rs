//! F3 `w-vs-w0`: the final weight against the initial weight.

use drift_analysis::query::bin_centre;
use drift_analysis::tables::Hist2dRow;

use super::*;

/// The run F3 and F4 show: the widest that did not diverge and has snapshots of its
/// hidden→hidden layer (unmasked before masked, then the lowest seed), and its last snapshot
/// epoch.
pub(super) fn shown_run<'a>(runs: &[&'a RunTables]) -> Option<(&'a RunTables, i32)> {
    let run = runs
        .iter()
        .filter(|r| !diverged(r) && !last_conditional(r).is_empty())
        .max_by_key(|r| (r.run.width, r.run.mask.is_none(), std::cmp::Reverse(r.run.seed)))?;
    Some((run, last_conditional(run)[0].epoch))
}

/// The histogram of `w` in one narrow slice of w0 (one w0 bin of the 2-D histogram).
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    pub w0_lo: f64,
    pub w0_hi: f64,
    /// Weights in the slice.
    pub total: i64,
    /// `(w_lo, w_hi, share of the slice)` per non-empty cell.
    pub bars: Vec<(f64, f64, f64)>,
}

/// F3: the 2-D histogram of `(w0, w)` of the hidden→hidden layer at the last snapshot, the
/// quantiles of `w` per bin of w0, and `w` in three slices of w0 (both edges and the centre).
pub struct WVsW0 {
    pub run_id: String,
    pub width: i64,
    pub seed: u64,
    pub epoch: i32,
    /// The non-empty cells of the hidden→hidden layer at `epoch`.
    pub cells: Vec<Hist2dRow>,
    /// `(centre of the w0 bin, quantiles p02, p25, p50, p75, p98 of w)` per non-empty bin.
    pub bands: Vec<(f64, [f64; 5])>,
    pub slices: Vec<Slice>,
    caption: String,
}

/// The slices at the first, middle and last w0 bin that has cells.
fn slices(cells: &[Hist2dRow]) -> Vec<Slice> {
    let mut bins: Vec<i32> = cells.iter().map(|c| c.w0_bin).collect();
    bins.sort_unstable();
    bins.dedup();
    if bins.is_empty() {
        return vec![];
    }
    [bins[0], bins[bins.len() / 2], bins[bins.len() - 1]]
        .into_iter()
        .map(|bin| {
            let slice: Vec<_> = cells.iter().filter(|c| c.w0_bin == bin).collect();
            let total: i64 = slice.iter().map(|c| c.count).sum();
            let bars = slice.iter().map(|c| (c.w_lo, c.w_hi, c.count as f64 / total as f64)).collect();
            Slice { w0_lo: slice[0].w0_lo, w0_hi: slice[0].w0_hi, total, bars }
        })
        .collect()
}

/// F3 from the widest run that did not diverge (lowest seed), at its last snapshot.
pub fn w_vs_w0(runs: &[&RunTables]) -> Option<WVsW0> {
    let (run, epoch) = shown_run(runs)?;
    let caption = format!(
        "F3 w against w0: run {} (W = {}, seed {}), hidden→hidden layer, epoch {epoch}",
        run.run_id, run.run.width, run.run.seed
    );
    let cells: Vec<Hist2dRow> =
        run.hist2d.iter().filter(|h| h.epoch == epoch && h.layer == HIDDEN_LAYER).cloned().collect();
    let bands = last_conditional(run)
        .into_iter()
        .filter(|c| c.count > 0)
        .filter_map(|c| Some((bin_centre(c), c.w_quantiles?)))
        .collect();
    Some(WVsW0 {
        run_id: run.run_id.clone(),
        width: run.run.width,
        seed: run.run.seed,
        epoch,
        slices: slices(&cells),
        cells,
        bands,
        caption,
    })
}

impl WVsW0 {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root = title(
            root,
            &format!(
                "F3  Final against initial weight: W = {}, seed {}, hidden→hidden layer, epoch {}",
                self.width, self.seed, self.epoch
            ),
        )?;
        let (main, side) = root.split_horizontally(1000);
        let (main, bar) = main.split_horizontally(880);
        let cells = &self.cells;
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
        let band = |lo: usize, hi: usize| {
            let mut pts: Vec<(f64, f64)> = self.bands.iter().map(|(x, q)| (*x, q[lo])).collect();
            pts.extend(self.bands.iter().rev().map(|(x, q)| (*x, q[hi])));
            pts
        };
        chart.draw_series([Polygon::new(band(0, 1), WHITE.mix(0.18)), Polygon::new(band(3, 4), WHITE.mix(0.18))])?;
        chart
            .draw_series([Polygon::new(band(1, 3), WHITE.mix(0.35))])?
            .label("25–75% of w (2–25%, 75–98% lighter)")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], RGBColor(200, 200, 200).filled()));
        chart
            .draw_series(LineSeries::new(self.bands.iter().map(|(x, q)| (*x, q[2])), RED.stroke_width(2)))?
            .label("median of w")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2)));
        chart
            .draw_series(DashedLineSeries::new(vec![(x.start, x.start), (x.end, x.end)], 6, 4, WHITE.stroke_width(1)))?
            .label("w = w0")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        legend(&mut chart, 12)?;
        colour_bar(&bar, max_count)?;
        // w histograms in three narrow w0 slices: both edges and the centre.
        for (panel, slice) in side.split_evenly((3, 1)).iter().zip(&self.slices) {
            let top = slice.bars.iter().map(|b| b.2).fold(0.0, f64::max);
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("w0 in [{:.4}, {:.4}), {} weights", slice.w0_lo, slice.w0_hi, slice.total), (FONT, 14))
                .margin(8)
                .x_label_area_size(34)
                .y_label_area_size(50)
                .build_cartesian_2d(y.clone(), 0.0..top * 1.1)?;
            axes(&mut chart, "w", "share", 11)?;
            chart.draw_series(
                slice.bars.iter().map(|&(lo, hi, share)| Rectangle::new([(lo, 0.0), (hi, share)], TRAIN.filled())),
            )?;
            let mid = 0.5 * (slice.w0_lo + slice.w0_hi);
            chart.draw_series(DashedLineSeries::new(vec![(mid, 0.0), (mid, top * 1.1)], 5, 3, RED.stroke_width(1)))?;
        }
        Ok(())
    }
}
figure!(WVsW0, |_f| (1500, 820));

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
