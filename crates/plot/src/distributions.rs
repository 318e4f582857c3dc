//! Before-and-after distributions: one panel per quantity, two overlaid histograms on shared
//! bins (before in grey, after in colour), a dashed line at the target. Made for a
//! calibration's spread of every parameter across a chip's circuits, where the reader wants to
//! see at a glance that the after-distribution is narrow and sits on its target.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::axis::{self, Axis};
use crate::output::{self, Figure, render_error};
use crate::{PlotError, style};

/// Width and height in pixels of one panel.
const PANEL_PX: (u32, u32) = (620, 420);
/// Panels per row.
const COLUMNS: usize = 3;
/// Bins per histogram.
const BINS: usize = 40;

/// One quantity's two distributions.
#[derive(Debug, Clone, Copy)]
pub struct DistributionPanel<'a> {
    /// Panel caption (`threshold`).
    pub caption: &'a str,
    /// The x axis's description with its unit (`mV`).
    pub x_label: &'a str,
    /// Values before (non-finite values are left out and counted in the legend).
    pub before: &'a [f64],
    /// Values after.
    pub after: &'a [f64],
    /// Where the values should be, drawn as a dashed line.
    pub target: Option<f64>,
}

/// A figure of before-and-after distributions, three panels per row.
#[derive(Debug, Clone, Copy)]
pub struct Distributions<'a> {
    /// Figure title. May be empty.
    pub title: &'a str,
    /// A smaller second line under the title. May be empty.
    pub subtitle: &'a str,
    /// Legend text of the two distributions (`uncalibrated`, `calibrated`).
    pub labels: (&'a str, &'a str),
    /// What the histograms count (the y axis), e.g. "Circuits".
    pub count_label: &'a str,
    /// The panels, in reading order.
    pub panels: &'a [DistributionPanel<'a>],
}

impl Distributions<'_> {
    /// Width and height in pixels of the figure [`write_distributions`] writes.
    pub fn size_px(&self) -> (u32, u32) {
        let n = self.panels.len().max(1);
        let columns = n.min(COLUMNS) as u32;
        let rows = n.div_ceil(COLUMNS) as u32;
        (PANEL_PX.0 * columns, PANEL_PX.1 * rows + 90)
    }
}

/// Writes `figure` as a PNG or SVG (by the extension of `path`), replacing any existing file
/// atomically. Fails with [`PlotError::NoPanels`] for a figure without panels.
pub fn write_distributions(path: &Path, figure: &Distributions<'_>) -> Result<(), PlotError> {
    if figure.panels.is_empty() {
        return Err(PlotError::NoPanels);
    }
    output::write_figure(path, figure)
}

/// Counts of `values` in `BINS` bins of `low..high` (the last bin holds `high`).
fn counts(values: &[f64], low: f64, high: f64) -> Vec<usize> {
    let mut counts = vec![0; BINS];
    let width = (high - low) / BINS as f64;
    for &v in values.iter().filter(|v| v.is_finite()) {
        let bin = (((v - low) / width).floor().max(0.0) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    counts
}

impl Figure for Distributions<'_> {
    fn size(&self) -> (u32, u32) {
        self.size_px()
    }

    fn draw<DB: DrawingBackend>(
        &self,
        canvas: &DrawingArea<DB, Shift>,
        path: &Path,
    ) -> Result<(), PlotError> {
        let err = render_error(path);
        let body = output::below_titles(canvas, self.title, self.subtitle, path)?;
        let rows = self.panels.len().div_ceil(COLUMNS);
        let columns = self.panels.len().min(COLUMNS);
        let areas = body.split_evenly((rows, columns));
        for (area, panel) in areas.iter().zip(self.panels) {
            let finite = panel.before.iter().chain(panel.after).copied();
            let Some((low, high)) = axis::finite_extent(finite.chain(panel.target)) else {
                continue;
            };
            let (low, high) = axis::pad(low, high, 0.04);
            let before = counts(panel.before, low, high);
            let after = counts(panel.after, low, high);
            let top = before
                .iter()
                .chain(&after)
                .copied()
                .max()
                .unwrap_or(1)
                .max(1);
            let x = Axis::linear(low, high, 5, false);
            let y = Axis::linear(0.0, top as f64 * 1.15, 5, true);
            let mut chart = ChartBuilder::on(area)
                .caption(panel.caption, style::panel_caption())
                .margin(12)
                .margin_right(24)
                .x_label_area_size(52)
                .y_label_area_size(y.label_area_px())
                .build_cartesian_2d(x.clone(), y.clone())
                .map_err(&err)?;
            axis::draw_mesh(
                &mut chart,
                (&x, &y),
                (panel.x_label, self.count_label),
                path,
            )?;
            let width = (high - low) / BINS as f64;
            let unmeasured = |v: &[f64]| v.iter().filter(|x| !x.is_finite()).count();
            for (values, counts, color, label) in [
                (panel.before, &before, style::MUTED_TEXT, self.labels.0),
                (panel.after, &after, style::PALETTE[0], self.labels.1),
            ] {
                let missing = unmeasured(values);
                let legend = if missing > 0 {
                    format!("{label} ({missing} unmeasured)")
                } else {
                    label.to_string()
                };
                chart
                    .draw_series(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(
                        |(i, &c)| {
                            let x0 = low + i as f64 * width;
                            Rectangle::new(
                                [(x0, 0.0), (x0 + width, c as f64)],
                                color.mix(0.55).filled(),
                            )
                        },
                    ))
                    .map_err(&err)?
                    .label(legend)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.mix(0.55).filled())
                    });
            }
            if let Some(t) = panel.target.filter(|t| t.is_finite()) {
                let dash = style::TEXT.stroke_width(2);
                let segments = 24;
                let step = y.high / segments as f64;
                chart
                    .draw_series((0..segments).step_by(2).map(|k| {
                        let y0 = k as f64 * step;
                        PathElement::new(vec![(t, y0), (t, y0 + step)], dash)
                    }))
                    .map_err(&err)?
                    .label("target")
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], dash));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(style::legend())
                .background_style(WHITE.mix(0.85))
                .border_style(style::GRID)
                .draw()
                .map_err(&err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_into_their_bins_and_the_top_value_into_the_last() {
        let c = counts(&[0.0, 0.5, 1.0, f64::NAN, 0.999], 0.0, 1.0);
        assert_eq!(c.iter().sum::<usize>(), 4);
        assert_eq!(c[0], 1);
        assert_eq!(c[BINS / 2], 1);
        assert_eq!(c[BINS - 1], 2);
    }
}
