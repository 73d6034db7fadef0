//! F3 and F4: the final weight and the deviation against the initial weight.

use super::*;

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
