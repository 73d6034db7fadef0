//! F6 `width`: how far the weights move, against width.

use drift_analysis::query::{deviation_at_levels, rel_change_fit, LevelDeviation, RelChangeFit};

use super::regimes::mean_std_series;
use super::*;

/// F6: the mean |Δw| of every width at the train-loss levels claim 6 compares, and the log–log
/// fit of rel_change against width.
pub struct Width {
    pub levels: Vec<LevelDeviation>,
    pub rel: RelChangeFit,
    caption: String,
}

/// F6 from every run; `None` with fewer than two widths.
pub fn width(runs: &[&RunTables]) -> Option<Width> {
    if by_width(runs).len() < 2 {
        return None;
    }
    let levels = deviation_at_levels(runs);
    let rel = rel_change_fit(runs);
    let caption = format!(
        "F6 width: mean |Δw| at {} train-loss levels and rel_change against width (slope {})",
        levels.len(),
        rel.slope().map_or("undefined".into(), |s| format!("{s:.3}"))
    );
    Some(Width { levels, rel, caption })
}

impl Width {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root = title(root, "F6  Width: how far the weights move, against width")?;
        let (left, right) = root.split_horizontally(800);
        let widths =
            self.rel.points.iter().map(|p| p.0).chain(self.levels.iter().flat_map(|l| l.1.iter().map(|p| p.0 as f64)));
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
            .build_cartesian_2d(log_axis(x.clone()), log_axis(span(self.rel.points.iter().map(|p| p.1), true)))?;
        axes(&mut chart, "width W (units, log)", "rel_change (log)", 12)?;
        chart
            .draw_series(self.rel.points.iter().map(|&p| Circle::new(p, 4, TRAIN.filled())))?
            .label("runs (non-diverged)")
            .legend(|(x, y)| Circle::new((x + 9, y), 4, TRAIN.filled()));
        if let Some(fit) = self.rel.line {
            let slope = fit.0;
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
figure!(Width, |_f| (1600, 700));
