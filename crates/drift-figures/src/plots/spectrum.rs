//! F8 `spectrum`: is the weight change low-rank? The singular values of ΔW against those of W0,
//! and the stable rank of ΔW against epochs, per width.

use drift_analysis::query::{last_spectrum, stable_ranks};

use super::*;

/// The spectra of one width's representative run.
#[derive(Clone, Debug, PartialEq)]
pub struct SpectrumCurve {
    pub width: i64,
    pub run_id: String,
    /// The last epoch with a spectrum, where `dw` is taken.
    pub epoch: i32,
    /// Singular values of ΔW and of W0, largest first.
    pub dw: Vec<f64>,
    pub w0: Vec<f64>,
    /// (epoch, stable rank of ΔW) at every snapshot epoch after the start.
    pub stable_rank: Vec<(f64, f64)>,
    /// The stable rank of W0, for scale.
    pub w0_stable_rank: Option<f64>,
}

/// F8: one curve per width, of the hidden→hidden layer (of layer 1 in depth-1 runs).
pub struct Spectrum {
    pub layer: i32,
    pub curves: Vec<SpectrumCurve>,
    caption: String,
}

/// F8 from the runs (one representative per width, as in the other per-width figures); `None`
/// when no run has a spectrum (a run written before `spectrum.parquet`: `drift analyze` adds it).
pub fn spectrum(runs: &[&RunTables]) -> Option<Spectrum> {
    let layer = if runs.iter().all(|r| r.run.depth >= 2) { HIDDEN_LAYER } else { 1 };
    let curves: Vec<SpectrumCurve> = by_width(runs)
        .into_iter()
        .filter_map(|(width, group)| {
            let run = representative(&group);
            let (epoch, dw) = last_spectrum(run, layer, "dw")?;
            let (_, w0) = last_spectrum(run, layer, "w0")?;
            let stable_rank = stable_ranks(run, layer, "dw").into_iter().map(|(e, r)| (f64::from(e), r)).collect();
            let w0_stable_rank = stable_ranks(run, layer, "w0").first().map(|&(_, r)| r);
            Some(SpectrumCurve { width, run_id: run.run_id.clone(), epoch, dw, w0, stable_rank, w0_stable_rank })
        })
        .collect();
    if curves.is_empty() {
        return None;
    }
    let ranks: Vec<String> = curves
        .iter()
        .map(|c| match c.stable_rank.last() {
            Some(&(_, rank)) => format!("W={} {rank:.2}", c.width),
            None => format!("W={} –", c.width),
        })
        .collect();
    let caption = format!(
        "F8 spectrum: singular values of ΔW and W0 of layer {layer} at the last snapshot; stable rank of ΔW there: {}",
        ranks.join(", ")
    );
    Some(Spectrum { layer, curves, caption })
}

impl Spectrum {
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result
    where
        DB::ErrorType: 'static,
    {
        let root = title(root, &format!("F8  Spectrum of the weight change ΔW = W − W0, layer {}", self.layer))?;
        let (left, right) = root.split_horizontally(800);
        let widths: Vec<i64> = self.curves.iter().map(|c| c.width).collect();
        let positive = |v: &[f64]| v.iter().copied().filter(|s| *s > 0.0).collect::<Vec<_>>();
        let count = self.curves.iter().map(|c| c.w0.len().max(c.dw.len())).max().unwrap_or(1) as f64;
        let sigmas = self.curves.iter().flat_map(|c| positive(&c.dw).into_iter().chain(positive(&c.w0)));
        let mut chart = ChartBuilder::on(&left)
            .caption("singular values at the last snapshot: ΔW (solid), W0 (dashed)", (FONT, 15))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(log_axis(1.0..count.max(2.0)), log_axis(span(sigmas, true)))?;
        axes(&mut chart, "index of the singular value, from 1 (log)", "σ (log)", 12)?;
        for c in &self.curves {
            let colour = width_colour(c.width, &widths);
            let points = |v: &[f64]| -> Vec<(f64, f64)> {
                v.iter().enumerate().filter(|(_, s)| **s > 0.0).map(|(i, &s)| ((i + 1) as f64, s)).collect()
            };
            chart
                .draw_series(LineSeries::new(points(&c.dw), colour.stroke_width(2)))?
                .label(format!("W = {} (epoch {})", c.width, c.epoch))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            chart.draw_series(DashedLineSeries::new(points(&c.w0), 5, 4, colour.stroke_width(1)))?;
        }
        legend(&mut chart, 12)?;
        let epochs = self.curves.iter().flat_map(|c| c.stable_rank.iter().map(|p| p.0));
        let ranks =
            self.curves.iter().flat_map(|c| c.stable_rank.iter().map(|p| p.1).chain(c.w0_stable_rank)).chain([1.0]);
        let mut chart = ChartBuilder::on(&right)
            .caption("stable rank ‖ΔW‖²_F / σ₁² against epochs (dashed: W0's)", (FONT, 15))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(log_axis(span(epochs, true)), log_axis(span(ranks, true)))?;
        axes(&mut chart, "epoch (log)", "stable rank (log)", 12)?;
        let x = chart.x_range();
        for c in &self.curves {
            let colour = width_colour(c.width, &widths);
            chart
                .draw_series(LineSeries::new(c.stable_rank.clone(), colour.stroke_width(2)))?
                .label(format!("W = {}", c.width))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            chart.draw_series(c.stable_rank.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            if let Some(rank) = c.w0_stable_rank {
                chart.draw_series(DashedLineSeries::new(
                    vec![(x.start, rank), (x.end, rank)],
                    5,
                    4,
                    colour.stroke_width(1),
                ))?;
            }
        }
        legend(&mut chart, 12)?;
        Ok(())
    }
}
figure!(Spectrum, |_f| (1600, 700));
