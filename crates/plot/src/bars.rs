//! Bar charts with error bars, for comparing a handful of conditions, such
//! as accuracy after ideal training, after copying those weights to a chip,
//! and after training in the loop. Every bar carries its number printed above
//! it, because readers of such a figure ask for the numbers anyway.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use plotters::coord::Shift;

use crate::axis::{self, Axis};
use crate::output::{self, Figure, render_error};
use crate::{PlotError, style};

/// Height in pixels of every bar chart; the width grows with the number of
/// bars and their label lengths, see [`BarChart::size_px`].
pub const BAR_CHART_HEIGHT: u32 = 600;

/// Labels longer than this many characters are shortened with an ellipsis.
const MAX_LABEL_CHARS: usize = 36;

/// Bar width as a fraction of the space each bar gets.
const BAR_WIDTH: f64 = 0.62;

/// One bar: a condition, its value and optionally an error (drawn
/// symmetrically, value ± error: a standard deviation or a confidence
/// half-width, whichever the chart's `subtitle` says) and the individual
/// measurements behind it, drawn as dots.
#[derive(Debug, Clone, Copy)]
pub struct Bar<'a> {
    /// Text under the bar.
    pub label: &'a str,
    /// Height of the bar; must be finite.
    pub value: f64,
    /// Half-length of the error bar; must be finite and not negative.
    pub error: Option<f64>,
    /// The individual measurements (e.g. one per chip), drawn as dots over
    /// the bar; non-finite values are left out.
    pub points: &'a [f64],
}

/// A labelled horizontal line across a bar chart: chance level, a
/// published result.
#[derive(Debug, Clone, Copy)]
pub struct ReferenceLine<'a> {
    /// Where the line is, in the chart's unit.
    pub value: f64,
    /// Text at the line's right end.
    pub label: &'a str,
}

/// A bar chart: bars in the given order, each in its own colour.
#[derive(Debug, Clone, Copy)]
pub struct BarChart<'a> {
    /// Figure title. May be empty.
    pub title: &'a str,
    /// A smaller second line under the title, e.g. what the error bars
    /// show (`error bars: SD over n = 5 chips`). May be empty.
    pub subtitle: &'a str,
    /// Description of the y axis with its unit, e.g. `Accuracy (%)`.
    pub y_label: &'a str,
    /// The bars, left to right.
    pub bars: &'a [Bar<'a>],
    /// Fixed y axis range `(low, high)`; `None` fits the bars and their
    /// errors, always including zero.
    pub y_range: Option<(f64, f64)>,
    /// Dashed horizontal lines with labels, drawn behind the bars' numbers.
    pub reference_lines: &'a [ReferenceLine<'a>],
}

impl BarChart<'_> {
    /// Width and height in pixels of the figure [`write_bar_chart`] writes: at
    /// least 900 wide, wider when many bars or long labels need the room,
    /// and [`BAR_CHART_HEIGHT`] high.
    pub fn size_px(&self) -> (u32, u32) {
        let longest = self
            .bars
            .iter()
            .map(|b| b.label.chars().count().min(MAX_LABEL_CHARS + 1))
            .max()
            .unwrap_or(0);
        // About ten pixels per character of label text, plus a gap.
        let slot = (longest as u32 * 10 + 40).clamp(160, 420);
        let bars = u32::try_from(self.bars.len()).unwrap_or(u32::MAX);
        let width = slot
            .saturating_mul(bars)
            .saturating_add(150)
            .clamp(900, 4000);
        (width, BAR_CHART_HEIGHT)
    }

    fn validate(&self) -> Result<(), PlotError> {
        if self.bars.is_empty() {
            return Err(PlotError::NoBars);
        }
        for (index, bar) in self.bars.iter().enumerate() {
            let problem = if !bar.value.is_finite() {
                Some(format!(
                    "value is {}; bar values must be finite numbers",
                    bar.value
                ))
            } else {
                match bar.error {
                    Some(e) if !(e.is_finite() && e >= 0.0) => Some(format!(
                        "error is {e}; an error is a half-width and must be finite and at least 0 \
                         (use None for no error bar)"
                    )),
                    _ => None,
                }
            };
            if let Some(problem) = problem {
                return Err(PlotError::InvalidBar {
                    index,
                    label: bar.label.to_string(),
                    problem,
                });
            }
        }
        if let Some((low, high)) = self.y_range
            && !(low.is_finite() && high.is_finite() && low < high)
        {
            return Err(PlotError::InvalidRange { low, high });
        }
        Ok(())
    }

    /// The y range: as given, or the bars with their errors, zero and some
    /// headroom for the printed values.
    fn value_range(&self) -> (f64, f64) {
        if let Some(range) = self.y_range {
            return range;
        }
        let (mut low, mut high) = (0.0_f64, 0.0_f64);
        for bar in self.bars {
            let error = bar.error.unwrap_or(0.0);
            low = low.min(bar.value - error);
            high = high.max(bar.value + error);
        }
        if high - low <= 0.0 {
            return (0.0, 1.0);
        }
        let room = (high - low) * 0.12;
        if high > 0.0 {
            high += room;
        }
        if low < 0.0 {
            low -= room;
        }
        (low, high)
    }
}

/// Writes `chart` as a PNG or SVG (by the extension of `path`) of
/// [`BarChart::size_px`] to `path`, replacing any existing file atomically.
///
/// Fails with [`PlotError::NoBars`] for an empty chart, with
/// [`PlotError::InvalidBar`] for a non-finite value or a negative or
/// non-finite error, and with [`PlotError::InvalidRange`] for an unusable
/// `y_range`, and with [`PlotError::UnknownFormat`] for another extension.
/// Bars, dots and lines reaching past a fixed `y_range` are cut at its edge.
pub fn write_bar_chart(path: &Path, chart: &BarChart<'_>) -> Result<(), PlotError> {
    chart.validate()?;
    output::write_figure(path, chart)
}

impl Figure for BarChart<'_> {
    fn size(&self) -> (u32, u32) {
        self.size_px()
    }

    fn draw<DB: DrawingBackend>(
        &self,
        canvas: &DrawingArea<DB, Shift>,
        path: &Path,
    ) -> Result<(), PlotError> {
        let chart = self;
        let (low, high) = chart.value_range();
        let y = Axis::linear(low, high, 8, false);
        let labels: Vec<String> = chart.bars.iter().map(|b| shorten(b.label)).collect();
        let largest = chart.bars.iter().map(|b| b.value.abs()).fold(0.0, f64::max);
        let err = render_error(path);
        let body = output::below_titles(canvas, chart.title, chart.subtitle, path)?;

        let count = chart.bars.len();
        let x = Axis::categories(labels.iter().cloned());
        let centres = x.tick_positions();
        let mut plot = ChartBuilder::on(&body)
            .margin(16)
            .margin_right(30)
            .margin_top(34)
            .x_label_area_size(50)
            .y_label_area_size(y.label_area_px())
            .build_cartesian_2d(x.clone(), y.clone())
            .map_err(&err)?;

        let x_label = |v: &f64| x.label(*v);
        let y_label = |v: &f64| y.label(*v);
        plot.configure_mesh()
            .disable_x_mesh()
            .y_desc(chart.y_label)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_label_style(style::text(21, style::TEXT))
            .y_label_style(style::tick_label())
            .axis_desc_style(style::axis_description())
            .bold_line_style(style::GRID)
            .axis_style(style::AXIS)
            .draw()
            .map_err(&err)?;

        let clamp = |v: f64| v.clamp(y.low, y.high);
        let base = clamp(0.0);
        let half = BAR_WIDTH / 2.0;
        for ((bar, centre), color) in chart
            .bars
            .iter()
            .zip(&centres)
            .zip(style::PALETTE.iter().cycle())
        {
            let corners = [(centre - half, base), (centre + half, clamp(bar.value))];
            plot.draw_series([
                Rectangle::new(corners, color.mix(0.8).filled()),
                Rectangle::new(corners, color.stroke_width(2)),
            ])
            .map_err(&err)?;
        }

        // Individual measurements: dots spread evenly across the middle of
        // the bar so that equal values stay countable.
        for ((bar, &centre), color) in chart
            .bars
            .iter()
            .zip(&centres)
            .zip(style::PALETTE.iter().cycle())
        {
            let points: Vec<f64> = bar
                .points
                .iter()
                .copied()
                .filter(|v| v.is_finite() && (y.low..=y.high).contains(v))
                .collect();
            let spread = half * 0.6;
            let step = if points.len() > 1 {
                2.0 * spread / (points.len() - 1) as f64
            } else {
                0.0
            };
            let dot_color = RGBColor(
                color.0.saturating_sub(70),
                color.1.saturating_sub(70),
                color.2.saturating_sub(70),
            );
            plot.draw_series(points.iter().enumerate().map(|(i, v)| {
                let offset = if points.len() > 1 {
                    -spread + step * i as f64
                } else {
                    0.0
                };
                EmptyElement::at((centre + offset, *v))
                    + Circle::new((0, 0), 6, dot_color.filled())
                    + Circle::new((0, 0), 6, WHITE.stroke_width(1))
            }))
            .map_err(&err)?;
        }

        for line in chart.reference_lines {
            if !(line.value.is_finite() && line.value > y.low && line.value < y.high) {
                continue;
            }
            let dash = style::MUTED_TEXT.stroke_width(2);
            let segments = 60;
            let width = count as f64 / segments as f64;
            plot.draw_series((0..segments).step_by(2).map(|k| {
                let start = k as f64 * width;
                PathElement::new(vec![(start, line.value), (start + width, line.value)], dash)
            }))
            .map_err(&err)?;
            // The label sits on a pale box so that it stays readable over a bar.
            let label = axis::typeset(line.label);
            let width = i32::try_from(label.chars().count()).unwrap_or(200) * 9 + 10;
            plot.draw_series(std::iter::once(
                EmptyElement::at((count as f64, line.value))
                    + Rectangle::new([(-width - 4, -27), (-2, -3)], WHITE.mix(0.85).filled())
                    + Text::new(
                        label,
                        (-8, -5),
                        style::text(18, style::MUTED_TEXT).pos(Pos::new(HPos::Right, VPos::Bottom)),
                    ),
            ))
            .map_err(&err)?;
        }

        if base > y.low && base < y.high {
            plot.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, base), (count as f64, base)],
                style::AXIS.stroke_width(1),
            )))
            .map_err(&err)?;
        }

        let whisker = style::TEXT.stroke_width(2);
        for (bar, &centre) in chart.bars.iter().zip(&centres) {
            let error = bar.error.unwrap_or(0.0);
            let (bottom, top) = (bar.value - error, bar.value + error);
            if error > 0.0 && top > y.low && bottom < y.high {
                plot.draw_series(std::iter::once(PathElement::new(
                    vec![(centre, clamp(bottom)), (centre, clamp(top))],
                    whisker,
                )))
                .map_err(&err)?;
                for end in [bottom, top] {
                    if end >= y.low && end <= y.high {
                        let cap = EmptyElement::at((centre, end))
                            + PathElement::new(vec![(-11, 0), (11, 0)], whisker);
                        plot.draw_series(std::iter::once(cap)).map_err(&err)?;
                    }
                }
            }

            let text = axis::typeset(&measurement(bar.value, bar.error, largest));
            let value_style = style::text(20, style::TEXT);
            let annotation = if bar.value >= 0.0 {
                EmptyElement::at((centre, clamp(top)))
                    + Text::new(
                        text,
                        (0, -8),
                        value_style.pos(Pos::new(HPos::Center, VPos::Bottom)),
                    )
            } else {
                EmptyElement::at((centre, clamp(bottom)))
                    + Text::new(
                        text,
                        (0, 8),
                        value_style.pos(Pos::new(HPos::Center, VPos::Top)),
                    )
            };
            plot.draw_series(std::iter::once(annotation))
                .map_err(&err)?;
        }
        Ok(())
    }
}

/// Decimals for printed values: three significant digits of the largest
/// magnitude, so accuracies near 95 print as `94.3` and fractions as
/// `0.943`; errors use the same number of decimals.
fn decimals_for(largest: f64) -> usize {
    if !(largest.is_finite() && largest > 0.0) {
        return 2;
    }
    (2.0 - largest.log10().floor()).clamp(0.0, 6.0) as usize
}

/// A bar's printed value, `value ± error`, to three significant digits of
/// the largest bar; in scientific notation when that is very large or small.
fn measurement(value: f64, error: Option<f64>, largest: f64) -> String {
    let scientific = largest > 0.0 && !(1e-3..1e6).contains(&largest);
    let decimals = decimals_for(largest);
    let format = |v: f64| {
        if scientific {
            format!("{v:.2e}")
        } else {
            format!("{v:.decimals$}")
        }
    };
    match error {
        Some(e) => format!("{} ± {}", format(value), format(e)),
        None => format(value),
    }
}

fn shorten(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_string()
    } else {
        let kept: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        format!("{}…", kept.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_decimals_give_three_significant_digits() {
        assert_eq!(decimals_for(96.1), 1);
        assert_eq!(decimals_for(100.0), 0);
        assert_eq!(decimals_for(0.943), 3);
        assert_eq!(decimals_for(0.031), 4);
        assert_eq!(decimals_for(0.0), 2);
    }

    #[test]
    fn measurements_read_naturally() {
        assert_eq!(measurement(96.1, Some(0.4), 96.1), "96.1 ± 0.4");
        assert_eq!(measurement(0.9, None, 0.943), "0.900");
        assert_eq!(measurement(1e12, None, 1e12), "1.00e12");
        assert_eq!(measurement(-3e-7, Some(1e-7), 3e-7), "-3.00e-7 ± 1.00e-7");
    }

    #[test]
    fn long_labels_are_shortened() {
        let long = "a".repeat(80);
        assert_eq!(shorten(&long).chars().count(), MAX_LABEL_CHARS);
        assert_eq!(shorten("in the loop"), "in the loop");
    }
}
