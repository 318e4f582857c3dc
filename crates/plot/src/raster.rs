//! Spike rasters: one sample's spikes through every layer of a network, one panel per network
//! (the untrained one beside the trained one), neurons stacked layer above layer, one colour per
//! layer, so that a volley's spread and re-convergence with depth is seen at a glance.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::axis::{self, Axis};
use crate::output::{self, Figure, render_error};
use crate::{PlotError, style};

/// Width and height in pixels of one panel.
const PANEL_PX: (u32, u32) = (720, 760);

/// One sample's spikes of one or more networks of the same layer sizes.
#[derive(Debug, Clone, Copy)]
pub struct Raster<'a> {
    /// Figure title.
    pub title: &'a str,
    /// Line under the title (data set, substrate).
    pub subtitle: &'a str,
    /// Name of each layer, first to last.
    pub layer_names: &'a [&'a str],
    /// Per panel: its caption and each layer's spike times, one per neuron (non-finite: silent).
    pub panels: &'a [(&'a str, &'a [Vec<f64>])],
}

impl Raster<'_> {
    /// Width and height of the figure in pixels.
    pub fn size_px(&self) -> (u32, u32) {
        (
            PANEL_PX.0 * self.panels.len().max(1) as u32,
            PANEL_PX.1 + 90,
        )
    }
}

/// Writes `raster` as a PNG or SVG (by the extension of `path`), replacing any existing file
/// atomically. Fails with [`PlotError::NoPanels`] for a raster without panels.
pub fn write_raster(path: &Path, raster: &Raster<'_>) -> Result<(), PlotError> {
    if raster.panels.is_empty() {
        return Err(PlotError::NoPanels);
    }
    output::write_figure(path, raster)
}

impl Figure for Raster<'_> {
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
        let all = self
            .panels
            .iter()
            .flat_map(|(_, layers)| layers.iter().flatten().copied());
        let (low, high) = axis::finite_extent(all.chain([0.0])).unwrap_or((0.0, 1.0));
        let (low, high) = axis::pad(low, high.max(low + 1e-3), 0.04);
        for (area, (caption, layers)) in areas.iter().zip(self.panels) {
            let total: usize = layers.iter().map(Vec::len).sum();
            let x = Axis::linear(low, high, 5, false);
            let y = Axis::linear(0.0, total.max(1) as f64, 5, true);
            let mut chart = ChartBuilder::on(area)
                .caption(*caption, style::panel_caption())
                .margin(12)
                .margin_right(24)
                .x_label_area_size(52)
                .y_label_area_size(y.label_area_px())
                .build_cartesian_2d(x.clone(), y.clone())
                .map_err(&err)?;
            axis::draw_mesh(
                &mut chart,
                (&x, &y),
                ("spike time (tau_s)", "neuron (layers stacked)"),
                path,
            )?;
            let mut base = 0usize;
            for (l, times) in layers.iter().enumerate() {
                let color = style::PALETTE[l % style::PALETTE.len()];
                let name = self.layer_names.get(l).copied().unwrap_or("layer");
                let silent = times.iter().filter(|t| !t.is_finite()).count();
                chart
                    .draw_series(times.iter().enumerate().filter(|(_, t)| t.is_finite()).map(
                        |(j, &t)| Circle::new((t, (base + j) as f64 + 0.5), 2, color.filled()),
                    ))
                    .map_err(&err)?
                    .label(format!("{name} ({silent} silent)"))
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
                base += times.len();
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
