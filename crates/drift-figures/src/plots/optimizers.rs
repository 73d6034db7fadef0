//! F9 `optimizers`: do the optimisers stay as near their initial weights at matched train loss?
//! Per optimiser against width: the hidden→hidden rel_change with the line of the rule, the mean
//! |Δw| of all weights, and the stable rank of ΔW — what the report's comparison is judged on.

use drift_analysis::optimizers::{OptimizerComparison, PerWidth, NEAR};

use super::*;

/// One optimiser's points: every matched run's value, and the median over seeds per width.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerCurve {
    /// `adam (lr 0.001)`.
    pub name: String,
    /// `(width, value)` of every matched run, and the medians over seeds, per quantity:
    /// hidden→hidden rel_change, mean |Δw|, stable rank of ΔW.
    pub runs: [Vec<(f64, f64)>; 3],
    pub medians: [PerWidth; 3],
}

/// F9: the optimisers of one comparison.
pub struct Optimizers {
    pub target: f64,
    pub curves: Vec<OptimizerCurve>,
    /// The stable rank of W0 per width (the same initial weights for every optimiser), for scale.
    pub w0_rank: PerWidth,
    caption: String,
}

/// The panels' titles and axis names, in the order of [`OptimizerCurve::runs`].
const PANELS: [(&str, &str); 3] = [
    ("hidden→hidden rel_change ‖ΔW‖_F / ‖W0‖_F (dashed: the rule's limit)", "rel_change (log)"),
    ("mean |Δw| of all weights", "mean |Δw| (log)"),
    ("stable rank of the hidden→hidden ΔW (dotted: W0's)", "stable rank (log)"),
];

/// F9 from a comparison; `None` when no optimiser has a matched run.
pub fn optimizers(c: &OptimizerComparison) -> Option<Optimizers> {
    let quantities: [fn(&drift_analysis::optimizers::MatchedRun) -> Option<f64>; 3] =
        [|r| Some(r.rel_change), |r| Some(r.mean_abs), |r| r.stable_rank];
    let curves: Vec<OptimizerCurve> = c
        .optimizers
        .iter()
        .filter(|o| !o.matched.is_empty())
        .map(|o| OptimizerCurve {
            name: format!("{} (lr {})", o.optimizer, o.lr),
            runs: quantities.map(|f| o.matched.iter().filter_map(|r| Some((r.width as f64, f(r)?))).collect()),
            medians: quantities.map(|f| o.median(f)),
        })
        .collect();
    if curves.is_empty() {
        return None;
    }
    let w0_rank = c.optimizers.iter().find(|o| !o.matched.is_empty()).map(|o| o.median(|r| r.stable_rank_w0));
    let largest: Vec<String> = curves
        .iter()
        .map(|k| {
            let top = k.medians[0].iter().map(|p| p.1).fold(f64::NAN, f64::max);
            format!("{} {top:.2}", k.name)
        })
        .collect();
    let caption = format!(
        "F9 optimizers at train loss {}: largest median hidden→hidden rel_change over widths: {}",
        c.target,
        largest.join(", ")
    );
    Some(Optimizers { target: c.target, curves, w0_rank: w0_rank.unwrap_or_default(), caption })
}

impl Optimizers {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root =
            title(root, &format!("F9  Optimisers at matched train loss ({}): how far the weights moved", self.target))?;
        let panels = root.split_evenly((1, 3));
        let widths = self.curves.iter().flat_map(|k| k.runs[0].iter().map(|p| p.0));
        let x = span(widths, true);
        let colour = |i: usize| viridis(0.85 * i as f64 / self.curves.len().max(2).saturating_sub(1) as f64);
        for (q, ((caption, y_desc), area)) in PANELS.iter().zip(&panels).enumerate() {
            let mut values: Vec<f64> = self.curves.iter().flat_map(|k| k.runs[q].iter().map(|p| p.1)).collect();
            match q {
                0 => values.push(NEAR),
                2 => values.extend(self.w0_rank.iter().map(|p| p.1)),
                _ => {}
            }
            let mut chart = ChartBuilder::on(area)
                .caption(*caption, (FONT, 14))
                .margin(8)
                .x_label_area_size(40)
                .y_label_area_size(64)
                .build_cartesian_2d(log_axis(x.clone()), log_axis(span(values.into_iter(), true)))?;
            axes(&mut chart, "width W (units, log)", *y_desc, 12)?;
            for (i, k) in self.curves.iter().enumerate() {
                let c = colour(i);
                let line: Vec<(f64, f64)> = k.medians[q].iter().map(|&(w, v)| (w as f64, v)).collect();
                chart
                    .draw_series(LineSeries::new(line, c.stroke_width(2)))?
                    .label(format!("{} (median)", k.name))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                chart.draw_series(k.runs[q].iter().map(|&p| Circle::new(p, 3, c.filled())))?;
            }
            if q == 0 {
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(x.start, NEAR), (x.end, NEAR)],
                        6,
                        4,
                        GREY.stroke_width(2),
                    ))?
                    .label(format!("rule: stays near if ≤ {NEAR}"))
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], GREY.stroke_width(2)));
            }
            if q == 2 && !self.w0_rank.is_empty() {
                let w0: Vec<(f64, f64)> = self.w0_rank.iter().map(|&(w, v)| (w as f64, v)).collect();
                chart
                    .draw_series(DashedLineSeries::new(w0, 2, 4, GREY.stroke_width(2)))?
                    .label("W0")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], GREY.stroke_width(2)));
            }
            legend(&mut chart, 11)?;
        }
        Ok(())
    }
}
figure!(Optimizers, |_f| (1800, 620));
