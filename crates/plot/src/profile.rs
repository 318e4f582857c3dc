//! Profiles over depth: one value per layer for a few networks, drawn as lines across the layers,
//! one panel per measure, so that how a measure changes from layer to layer (a pulse packet that
//! spreads and re-converges, classes that separate) and how learning changes it are seen at
//! once. A reference series (a published network's values) is drawn dashed and may leave layers
//! out.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::axis::{self, Axis};
use crate::output::{self, Figure, render_error};
use crate::{PlotError, style};

/// Fraction of the data's range left free above it for the legend.
const LEGEND_ROOM: f64 = 0.4;

/// Width and height in pixels of one panel.
const PANEL_PX: (u32, u32) = (640, 520);

/// One network's values over the layers.
#[derive(Debug, Clone, Copy)]
pub struct ProfileSeries<'a> {
    /// Legend text.
    pub label: &'a str,
    /// One value per layer; a non-finite value leaves that layer out.
    pub values: &'a [f64],
    /// Drawn dashed with hollow markers: a reference rather than a measurement of this run.
    pub reference: bool,
}

/// One measure: its axis label and the series.
#[derive(Debug, Clone, Copy)]
pub struct ProfilePanel<'a> {
    /// Panel caption, e.g. `50 % window`.
    pub caption: &'a str,
    /// Y axis description with its unit.
    pub y_label: &'a str,
    /// The series, drawn in this order.
    pub series: &'a [ProfileSeries<'a>],
}

/// Profiles of several measures over the same layers.
#[derive(Debug, Clone, Copy)]
pub struct DepthProfile<'a> {
    /// Figure title.
    pub title: &'a str,
    /// Line under the title (data set, substrate).
    pub subtitle: &'a str,
    /// Name of each layer, first to last.
    pub layers: &'a [&'a str],
    /// The panels, left to right.
    pub panels: &'a [ProfilePanel<'a>],
}

impl DepthProfile<'_> {
    /// Width and height of the figure in pixels.
    pub fn size_px(&self) -> (u32, u32) {
        (
            PANEL_PX.0 * self.panels.len().max(1) as u32,
            PANEL_PX.1 + 90,
        )
    }
}

/// Writes `profile` as a PNG or SVG (by the extension of `path`), replacing any existing file
/// atomically. Fails with [`PlotError::NoPanels`] for a figure without panels.
pub fn write_depth_profile(path: &Path, profile: &DepthProfile<'_>) -> Result<(), PlotError> {
    if profile.panels.is_empty() {
        return Err(PlotError::NoPanels);
    }
    output::write_figure(path, profile)
}

impl Figure for DepthProfile<'_> {
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
        let areas = body.split_evenly((1, self.panels.len()));
        for (area, panel) in areas.iter().zip(self.panels) {
            let values = panel.series.iter().flat_map(|s| s.values.iter().copied());
            let (low, high) = axis::finite_extent(values.chain([0.0])).unwrap_or((0.0, 1.0));
            let (low, high) = axis::pad(low, high, 0.06);
            // Room above the data for the legend.
            let high = high + LEGEND_ROOM * (high - low);
            let x = Axis::categories(self.layers.iter().map(|l| l.to_string()));
            let y = Axis::linear(low, high, 6, false);
            let mut chart = ChartBuilder::on(area)
                .caption(panel.caption, style::panel_caption())
                .margin(12)
                .margin_right(24)
                .x_label_area_size(52)
                .y_label_area_size(y.label_area_px())
                .build_cartesian_2d(x.clone(), y.clone())
                .map_err(&err)?;
            axis::draw_mesh(&mut chart, (&x, &y), ("", panel.y_label), path)?;
            for (k, series) in panel.series.iter().enumerate() {
                let color = if series.reference {
                    style::MUTED_TEXT
                } else {
                    style::PALETTE[k % style::PALETTE.len()]
                };
                let points: Vec<(f64, f64)> = series
                    .values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(l, &v)| (l as f64 + 0.5, v))
                    .collect();
                let line_style = color.stroke_width(3);
                if series.reference {
                    chart
                        .draw_series(DashedLineSeries::new(points.clone(), 8, 6, line_style))
                        .map_err(&err)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(points.clone(), line_style))
                        .map_err(&err)?;
                }
                let marker = if series.reference {
                    ShapeStyle::from(color).stroke_width(2)
                } else {
                    color.filled()
                };
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 5, marker)))
                    .map_err(&err)?
                    .label(series.label)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(style::legend())
                .background_style(WHITE.mix(0.85))
                .border_style(style::GRID)
                .draw()
                .map_err(&err)?;
        }
        Ok(())
    }
}
