//! Heatmaps: a table of numbers as coloured cells, each with its value printed in it. Made
//! for a robustness matrix (conditions down, severities across, accuracy in each cell), where
//! the colour shows where a network breaks and the numbers say by how much.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::{self, Axis};
use crate::output::{self, Figure, render_error};
use crate::{PlotError, style};

/// Pixels per cell.
const CELL_PX: (u32, u32) = (150, 62);
/// Room for the row labels, pixels.
const ROW_LABEL_PX: u32 = 330;

/// One cell: a value and, optionally, its spread (printed as `value ± spread`). `None` leaves
/// the cell empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// The value; its colour runs over the figure's `range`.
    pub value: f64,
    /// Its spread (an SD), printed beside it.
    pub spread: Option<f64>,
}

/// A heatmap: `rows.len() x columns.len()` cells, row by row.
#[derive(Debug, Clone, Copy)]
pub struct Heatmap<'a> {
    /// Figure title. May be empty.
    pub title: &'a str,
    /// A smaller second line under the title (what a cell shows). May be empty.
    pub subtitle: &'a str,
    /// Row labels, top to bottom.
    pub rows: &'a [String],
    /// Column labels, left to right.
    pub columns: &'a [String],
    /// The cells, row-major.
    pub cells: &'a [Option<Cell>],
    /// Values mapped to the ends of the colour scale (low: pale red, high: deep blue).
    pub range: (f64, f64),
    /// Decimals printed.
    pub decimals: usize,
}

impl Heatmap<'_> {
    /// Width and height in pixels of the figure [`write_heatmap`] writes.
    pub fn size_px(&self) -> (u32, u32) {
        let cols = u32::try_from(self.columns.len().max(1))
            .unwrap_or(64)
            .min(64);
        let rows = u32::try_from(self.rows.len().max(1))
            .unwrap_or(200)
            .min(200);
        (
            (ROW_LABEL_PX + CELL_PX.0 * cols + 40).max(700),
            CELL_PX.1 * rows + 200,
        )
    }
}

/// Writes `map` as a PNG or SVG (by the extension of `path`), replacing any existing file
/// atomically. Fails with [`PlotError::CellCount`] when the cells do not fill the grid, and
/// with [`PlotError::InvalidRange`] for an unusable range.
pub fn write_heatmap(path: &Path, map: &Heatmap<'_>) -> Result<(), PlotError> {
    let want = map.rows.len() * map.columns.len();
    if map.cells.len() != want || want == 0 {
        return Err(PlotError::CellCount {
            cells: map.cells.len(),
            rows: map.rows.len(),
            columns: map.columns.len(),
        });
    }
    let (low, high) = map.range;
    if !(low.is_finite() && high.is_finite() && low < high) {
        return Err(PlotError::InvalidRange { low, high });
    }
    output::write_figure(path, map)
}

/// The colour of a value at `f` (0..=1) along the scale: pale red through pale yellow to deep
/// blue, so that a failing cell stands out.
fn colour(f: f64) -> RGBColor {
    let stops = [
        (215.0, 96.0, 77.0),
        (250.0, 240.0, 190.0),
        (44.0, 105.0, 176.0),
    ];
    let f = f.clamp(0.0, 1.0) * 2.0;
    let (a, b, t) = if f < 1.0 {
        (stops[0], stops[1], f)
    } else {
        (stops[1], stops[2], f - 1.0)
    };
    let mix = |x: f64, y: f64| (x + (y - x) * t).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

impl Figure for Heatmap<'_> {
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
        let x = Axis::categories(self.columns.iter().cloned());
        // Rows top to bottom: the first row at the top of the plot.
        let y = Axis::categories(self.rows.iter().rev().cloned());
        let mut chart = ChartBuilder::on(&body)
            .margin(16)
            .margin_right(30)
            .x_label_area_size(60)
            .y_label_area_size(ROW_LABEL_PX)
            .build_cartesian_2d(x.clone(), y.clone())
            .map_err(&err)?;
        let x_label = |v: &f64| x.label(*v);
        let y_label = |v: &f64| y.label(*v);
        chart
            .configure_mesh()
            .disable_mesh()
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_label_style(style::text(18, style::TEXT))
            .y_label_style(style::text(18, style::TEXT))
            .axis_style(style::AXIS)
            .draw()
            .map_err(&err)?;
        let (low, high) = self.range;
        let n_rows = self.rows.len();
        let n_cols = self.columns.len();
        for (i, cell) in self.cells.iter().enumerate() {
            let (r, c) = (i / n_cols, i % n_cols);
            let (x0, y0) = (c as f64, (n_rows - 1 - r) as f64);
            let corners = [(x0 + 0.02, y0 + 0.04), (x0 + 0.98, y0 + 0.96)];
            let Some(cell) = cell.filter(|c| c.value.is_finite()) else {
                chart
                    .draw_series([Rectangle::new(corners, style::GRID.filled())])
                    .map_err(&err)?;
                continue;
            };
            let f = (cell.value - low) / (high - low);
            let fill = colour(f);
            let ink = if f > 0.8 { WHITE } else { style::TEXT };
            let decimals = self.decimals;
            let text = match cell.spread {
                Some(s) if s.is_finite() => {
                    format!("{:.decimals$} ± {s:.decimals$}", cell.value)
                }
                _ => format!("{:.decimals$}", cell.value),
            };
            chart
                .draw_series([Rectangle::new(corners, fill.filled())])
                .map_err(&err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    axis::typeset(&text),
                    (x0 + 0.5, y0 + 0.5),
                    style::text(19, ink).pos(Pos::new(HPos::Center, VPos::Center)),
                )))
                .map_err(&err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_runs_from_red_through_yellow_to_blue() {
        assert_eq!(colour(0.0), RGBColor(215, 96, 77));
        assert_eq!(colour(0.5), RGBColor(250, 240, 190));
        assert_eq!(colour(1.0), RGBColor(44, 105, 176));
        assert_eq!(colour(7.0), colour(1.0));
    }
}
