//! F5 `evolution`: the deviations next to the losses.

use drift_analysis::query::{deviation_jump, layer_weights, Statistic};

use super::*;

/// One width's panel: the hidden→hidden deviation statistics and the losses of its
/// representative run against epochs, and the epochs of the jump and the divergence.
#[derive(Clone, Debug, PartialEq)]
pub struct EvolutionPanel {
    pub run_id: String,
    pub width: i64,
    pub lr: f64,
    pub seed: u64,
    /// `(epoch, mean |Δw|)`.
    pub mean_abs: Vec<(f64, f64)>,
    /// `(epoch, rel_change)` where it is defined.
    pub rel_change: Vec<(f64, f64)>,
    /// `(epoch, max(|p01|, |p99|))`.
    pub tail: Vec<(f64, f64)>,
    pub losses: Losses,
    /// The jump of mean |Δw| ([`deviation_jump`]).
    pub jump: Option<i32>,
    pub divergence: Option<i32>,
}

/// F5: one panel per width.
pub struct Evolution {
    pub panels: Vec<EvolutionPanel>,
    caption: String,
}

fn panel(run: &RunTables) -> EvolutionPanel {
    let dev = layer_weights(run, HIDDEN_LAYER);
    EvolutionPanel {
        run_id: run.run_id.clone(),
        width: run.run.width,
        lr: run.run.lr,
        seed: run.run.seed,
        mean_abs: dev.iter().map(|d| (f64::from(d.epoch), d.mean_abs)).collect(),
        rel_change: dev.iter().filter_map(|d| Some((f64::from(d.epoch), d.rel_change?))).collect(),
        tail: dev.iter().map(|d| (f64::from(d.epoch), d.quantiles[0].abs().max(d.quantiles[6].abs()))).collect(),
        losses: Losses::of(run),
        jump: deviation_jump(run, Statistic::MeanAbs).map(|j| j.0),
        divergence: run.run.divergence_epoch,
    }
}

/// F5: one panel per width (the width's representative run); `None` without runs.
pub fn evolution(runs: &[&RunTables]) -> Option<Evolution> {
    let groups = by_width(runs);
    if groups.is_empty() {
        return None;
    }
    let panels: Vec<EvolutionPanel> = groups.values().map(|g| panel(representative(g))).collect();
    Some(Evolution {
        caption: format!("F5 evolution of the hidden→hidden deviations next to the losses, {} widths", panels.len()),
        panels,
    })
}

impl Evolution {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root =
            title(root, "F5  Evolution: deviations of the hidden→hidden weights (left, log) and losses (right, log)")?;
        let cols = self.panels.len().min(3);
        let rows = self.panels.len().div_ceil(cols);
        for (p, area) in self.panels.iter().zip(root.split_evenly((rows, cols)).iter()) {
            let y = span(p.mean_abs.iter().chain(&p.rel_change).chain(&p.tail).map(|p| p.1), true);
            let losses = span(p.losses.values(), true);
            let x = 0.0..p.losses.epochs();
            let mut chart = ChartBuilder::on(area)
                .caption(format!("W = {}, lr {}, seed {}", p.width, p.lr, p.seed), (FONT, 16))
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
                (&p.mean_abs, viridis(0.0), "mean |Δw|"),
                (&p.rel_change, viridis(0.45), "rel_change ‖W−W0‖/‖W0‖"),
                (&p.tail, viridis(0.8), "max(|p01|, |p99|) of Δw"),
            ] {
                let points: Vec<_> = points.iter().copied().filter(|p| p.1 > 0.0).collect();
                chart
                    .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            }
            for (values, colour, label) in p.losses.drawable() {
                chart
                    .draw_secondary_series(DashedLineSeries::new(values, 5, 3, colour.stroke_width(1)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
            }
            if let Some(epoch) = p.jump {
                let e = f64::from(epoch);
                chart
                    .draw_series(LineSeries::new(vec![(e, y.start), (e, y.end)], GREY.stroke_width(2)))?
                    .label("jump of mean |Δw| (largest step against the 5 before)")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], GREY.stroke_width(2)));
            }
            if let Some(d) = p.divergence {
                let e = f64::from(d);
                chart
                    .draw_series(LineSeries::new(vec![(e, y.start), (e, y.end)], BLACK.stroke_width(2)))?
                    .label("divergence epoch")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
            }
            if !std::ptr::eq(p, &self.panels[0]) {
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
figure!(Evolution, |f| (1650, 520 * f.panels.len().div_ceil(3) as u32 + 40));
