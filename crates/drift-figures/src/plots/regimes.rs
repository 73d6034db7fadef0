//! F2 `regimes`: loss curves, the phase diagram against width and the minimum losses.

use super::*;

/// F2: one loss curve per width and the statistics of each width over its seeds.
pub struct Regimes {
    /// `(width, losses of its representative run)`, ascending by width.
    pub curves: Vec<(i64, Losses)>,
    pub widths: Vec<i64>,
    /// Per width: (min train epoch, min test epoch, divergence epoch, min train, min test), each
    /// as values over seeds.
    pub stats: Vec<(i64, [Vec<f64>; 5])>,
    caption: String,
}

/// F2 from every run; `None` without runs.
pub fn regimes(runs: &[&RunTables]) -> Option<Regimes> {
    let groups = by_width(runs);
    if groups.is_empty() {
        return None;
    }
    let widths: Vec<i64> = groups.keys().copied().collect();
    let curves = groups.iter().map(|(&w, g)| (w, Losses::of(representative(g)))).collect();
    let stats = groups
        .iter()
        .map(|(&w, g)| {
            let col = |f: &dyn Fn(&RunTables) -> Option<f64>| g.iter().filter_map(|r| f(r)).collect::<Vec<f64>>();
            (
                w,
                [
                    col(&|r| Some(f64::from(r.run.epoch_min_train_loss))),
                    col(&|r| Some(f64::from(r.run.epoch_min_test_loss))),
                    col(&|r| r.run.divergence_epoch.map(f64::from)),
                    col(&|r| Some(r.run.min_train_loss)),
                    col(&|r| Some(r.run.min_test_loss)),
                ],
            )
        })
        .collect();
    let seeds = runs.iter().map(|r| r.run.seed).collect::<std::collections::BTreeSet<_>>().len();
    let lrs = drift_analysis::setting::learning_rates(runs);
    Some(Regimes {
        curves,
        widths,
        stats,
        caption: format!(
            "F2 regimes: widths {widths:?}, {seeds} seed(s), lr {} (statistics over seeds and learning rates; curves: one run per width, a run that diverged where there is one)",
            drift_analysis::setting::lr_range(&lrs),
            widths = groups.keys().collect::<Vec<_>>()
        ),
    })
}

/// Mean ± std markers and a line through the means, on a chart with log x.
pub(super) fn mean_std_series<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    points: &[(f64, Vec<f64>)],
    colour: RGBColor,
    label: &str,
) -> Result
where
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let means: Vec<(f64, f64, f64)> = points
        .iter()
        .filter(|p| !p.1.is_empty())
        .map(|(x, v)| {
            let (m, s) = mean_std(v);
            (*x, m, s)
        })
        .collect();
    chart
        .draw_series(LineSeries::new(means.iter().map(|p| (p.0, p.1)), colour.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
    chart.draw_series(means.iter().map(|p| Circle::new((p.0, p.1), 4, colour.filled())))?;
    chart.draw_series(
        means
            .iter()
            .filter(|p| p.2 > 0.0)
            .map(|p| PathElement::new(vec![(p.0, p.1 - p.2), (p.0, p.1 + p.2)], colour.stroke_width(2))),
    )?;
    Ok(())
}

impl Regimes {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root = title(root, "F2  Regimes: loss curves per width, phase diagram, minimum losses")?;
        let panels = root.split_evenly((2, 2));
        let max_epoch = self.curves.iter().map(|c| c.1.epochs()).fold(1.0, f64::max);
        for (k, (panel, name)) in panels.iter().take(2).zip(["train loss", "test loss"]).enumerate() {
            let series = |losses: &Losses| losses.drawable()[k].0.clone();
            let values: Vec<f64> =
                self.curves.iter().flat_map(|c| [&c.1.train, &c.1.test][k].iter().map(|p| p.1)).collect();
            let y = span(values.into_iter(), true);
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("{name} against epochs (one run per width)"), (FONT, 16))
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..max_epoch, log_axis(y))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(format!("{name} (nats)"))
                .x_label_formatter(&num)
                .y_label_formatter(&num)
                .label_style((FONT, 12))
                .draw()?;
            for (width, losses) in &self.curves {
                let colour = width_colour(*width, &self.widths);
                chart
                    .draw_series(LineSeries::new(series(losses), colour.stroke_width(2)))?
                    .label(format!("W = {width}"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            }
            legend(&mut chart, 12)?;
        }
        let w_range = span(self.widths.iter().map(|&w| w as f64), true);
        let xs = |i: usize| self.stats.iter().map(|(w, s)| (*w as f64, s[i].clone())).collect::<Vec<_>>();
        let epochs = self.stats.iter().flat_map(|(_, s)| s[0].iter().chain(&s[1]).chain(&s[2]).copied());
        let mut chart = ChartBuilder::on(&panels[2])
            .caption("phase diagram: epochs of minimum losses and of divergence (mean ± std over seeds)", (FONT, 15))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(log_axis(w_range.clone()), span(epochs.chain([0.0]), false))?;
        axes(&mut chart, "width W (units, log)", "epoch", 12)?;
        mean_std_series(&mut chart, &xs(0), TRAIN, "minimum train loss")?;
        mean_std_series(&mut chart, &xs(1), TEST, "minimum test loss")?;
        mean_std_series(&mut chart, &xs(2), BLACK, "divergence (runs that diverged)")?;
        legend(&mut chart, 12)?;
        let losses = self.stats.iter().flat_map(|(_, s)| s[3].iter().chain(&s[4]).copied());
        let mut chart = ChartBuilder::on(&panels[3])
            .caption("minimum train and test loss against width (mean ± std over seeds)", (FONT, 15))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(log_axis(w_range), log_axis(span(losses, true)))?;
        axes(&mut chart, "width W (units, log)", "loss (nats, log)", 12)?;
        mean_std_series(&mut chart, &xs(3), TRAIN, "minimum train loss")?;
        mean_std_series(&mut chart, &xs(4), TEST, "minimum test loss")?;
        legend(&mut chart, 12)?;
        Ok(())
    }
}
figure!(Regimes, |_f| (1600, 1100));
