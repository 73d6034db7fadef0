//! F5: evolution of the deviations next to the losses.

use super::*;

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
                .caption(format!("W = {}, lr {}, seed {}", run.run.width, run.run.lr, run.run.seed), (FONT, 16))
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
            if let Some((epoch, _)) = deviation_jump(run, Statistic::MeanAbs) {
                let e = f64::from(epoch);
                chart
                    .draw_series(LineSeries::new(vec![(e, y.start), (e, y.end)], GREY.stroke_width(2)))?
                    .label("jump of mean |Δw| (largest step against the 5 before)")
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
