//! F7 `phase`: the phase diagram over width × learning rate.

use drift_analysis::regimes::{phase_map, PhaseMap, Regime, HIGH};

use super::*;

/// F7: the phase map of a setting, drawn cell by cell.
pub struct Phase {
    pub map: PhaseMap,
    /// The setting, as the report names it.
    setting: String,
    caption: String,
}

/// Colour of a regime: green for high trainability, amber for low, red for untrainable.
pub fn regime_colour(regime: Regime) -> RGBColor {
    match regime {
        Regime::High => RGBColor(120, 198, 121),
        Regime::Low => RGBColor(254, 217, 118),
        Regime::Untrainable => RGBColor(215, 48, 39),
    }
}

/// F7 from the unmasked runs of one setting; `None` without them.
pub fn phase(runs: &[&RunTables], setting: &str) -> Option<Phase> {
    let map = phase_map(runs)?;
    let untrainable = map.cells.iter().filter(|c| c.regime == Regime::Untrainable).count();
    let caption = format!(
        "F7 phase diagram of {setting}: {} widths × {} learning rates, {untrainable} of {} cells untrainable",
        map.widths.len(),
        map.lrs.len(),
        map.cells.len()
    );
    Some(Phase { map, setting: setting.to_string(), caption })
}

impl Phase {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root = title(root, &format!("F7  Phase diagram: {}", self.setting))?;
        let (grid, key) = root.split_vertically(root.dim_in_pixel().1.saturating_sub(96));
        let (nw, nl) = (self.map.widths.len(), self.map.lrs.len());
        let mut chart = ChartBuilder::on(&grid)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..nw as f64, 0.0..nl as f64)?;
        let (widths, lrs) = (&self.map.widths, &self.map.lrs);
        // Ticks every half cell, so that the categories' labels fall on the cell centres.
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(2 * nw + 1)
            .y_labels(2 * nl + 1)
            .x_label_formatter(&|x| label_at(*x, widths, |w| w.to_string()))
            .y_label_formatter(&|y| label_at(*y, lrs, |lr| lr.to_string()))
            .x_desc("hidden width W")
            .y_desc("learning rate")
            .label_style((FONT, 14))
            .draw()?;
        for cell in &self.map.cells {
            let i = widths.iter().position(|&w| w == cell.width).expect("a width of the map") as f64;
            let j = lrs.iter().position(|&l| l == cell.lr).expect("a learning rate of the map") as f64;
            let square = [(i + 0.02, j + 0.02), (i + 0.98, j + 0.98)];
            chart.draw_series([Rectangle::new(square, regime_colour(cell.regime).filled())])?;
            let lines = [
                (cell.regime.as_str().to_string(), 15),
                (format!("{}/{} diverged, {} crossover", cell.diverged, cell.seeds, cell.crossovers), 13),
                (format!("median min loss {}", num(&cell.median_min_train)), 13),
            ];
            for (k, (line, size)) in lines.into_iter().enumerate() {
                let at = (i + 0.06, j + 0.8 - 0.24 * k as f64);
                chart.draw_series([Text::new(line, at, (FONT, size).into_font().color(&BLACK))])?;
            }
        }
        // The key: the three regimes and the rules behind them.
        let ln_c = (self.map.classes.max(2) as f64).ln();
        let entries = [
            (
                Regime::High,
                format!("high trainability: median minimum train loss ≤ {HIGH} · ln C = {}", num(&(HIGH * ln_c))),
            ),
            (Regime::Low, "low trainability: above that".to_string()),
            (Regime::Untrainable, "untrainable: at least half of the seeds diverged and did not recover".to_string()),
        ];
        for (k, (regime, text)) in entries.iter().enumerate() {
            let y = 4 + 20 * k as i32;
            key.draw(&Rectangle::new([(20, y), (40, y + 14)], regime_colour(*regime).filled()))?;
            key.draw(&Text::new(text.clone(), (48, y), (FONT, 13).into_font().color(&BLACK)))?;
        }
        key.draw(&Text::new(
            format!(
                "mean ‖x‖² of the training inputs {:.1}; crossover: learned first, then diverged without dying",
                self.map.sq_norm
            ),
            (20, 66),
            (FONT, 13).into_font().color(&GREY),
        ))?;
        Ok(())
    }
}
figure!(Phase, |f| (250 * f.map.widths.len().max(3) as u32 + 120, 100 * f.map.lrs.len().max(2) as u32 + 220));

/// The label of the category whose centre is at `x` (`i + 0.5`), empty elsewhere.
fn label_at<T: Copy>(x: f64, values: &[T], show: impl Fn(T) -> String) -> String {
    let i = (x - 0.5).round();
    if (x - 0.5 - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    values.get(i as usize).map_or(String::new(), |&v| show(v))
}
