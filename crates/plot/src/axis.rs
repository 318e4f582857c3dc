//! Axis ranges, tick positions and tick labels. plotters' own logarithmic
//! axis only ticks at powers of ten, which leaves a loss curve spanning less
//! than a decade with no labels at all, so this module picks every tick
//! itself. A logarithmic axis is drawn as a linear axis over `log10(value)`;
//! [`Axis::plot_value`] maps data into that space and the labels map back.
//! `Axis` is itself a plotters coordinate, so the ticks drawn are exactly the
//! ones chosen here.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// One axis: its range and ticks in plot space (`log10` of the data on a
/// logarithmic axis), with a label for every tick.
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) log: bool,
    /// Labelled ticks, each with its grid line.
    pub(crate) ticks: Vec<(f64, String)>,
    /// Unlabelled minor grid lines (2..9 between decades on a log axis).
    pub(crate) minor: Vec<f64>,
}

impl Axis {
    /// A linear axis over `low..high` with about `target` ticks. Ticks are
    /// whole numbers when `integer_steps` is set (epochs).
    /// A categorical axis with one labelled slot per entry, centred at
    /// 0.5, 1.5, ...; used for bars.
    pub(crate) fn categories(labels: impl IntoIterator<Item = String>) -> Self {
        let ticks: Vec<(f64, String)> = labels
            .into_iter()
            .enumerate()
            .map(|(i, label)| (i as f64 + 0.5, label))
            .collect();
        Self {
            low: 0.0,
            high: ticks.len().max(1) as f64,
            log: false,
            ticks,
            minor: Vec::new(),
        }
    }

    pub(crate) fn linear(low: f64, high: f64, target: usize, integer_steps: bool) -> Self {
        let (low, high) = widen_if_flat(low, high);
        let (low, high) = if (high - low).is_finite() {
            (low, high)
        } else {
            // Only reachable with values near f64::MAX; draw something sane.
            (0.0, 1.0)
        };
        let step = nice_step((high - low) / target.max(1) as f64, integer_steps);
        let decimals = decimals_for_step(step);
        let first = (low / step).ceil() as i64;
        let last = (high / step).floor() as i64;
        let ticks = if last.saturating_sub(first) <= 1000 {
            (first..=last)
                .map(|k| {
                    let value = k as f64 * step;
                    (value, typeset(&format_fixed(value, decimals)))
                })
                .collect()
        } else {
            Vec::new()
        };
        Self {
            low,
            high,
            log: false,
            ticks,
            minor: Vec::new(),
        }
    }

    /// A logarithmic axis covering the positive data range `low..high`
    /// (already padded by the caller).
    pub(crate) fn logarithmic(low: f64, high: f64) -> Self {
        let (low, high) = if high > low {
            (low, high)
        } else {
            (low / 2.0, high * 2.0)
        };
        let first_decade = low.log10().floor() as i32;
        let last_decade = high.log10().ceil() as i32;
        let decades = first_decade..=last_decade;
        let in_range = |v: f64| v >= low * (1.0 - 1e-9) && v <= high * (1.0 + 1e-9);
        let with_mantissas = |mantissas: &[f64]| -> Vec<f64> {
            decades
                .clone()
                .flat_map(|d| mantissas.iter().map(move |m| m * 10f64.powi(d)))
                .filter(|v| in_range(*v))
                .collect()
        };

        // Coarsest set of "round" values that still gives a few labels.
        let candidates: [&[f64]; 3] = [
            &[1.0],
            &[1.0, 2.0, 5.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        ];
        let mut chosen = None;
        for (level, mantissas) in candidates.iter().enumerate() {
            let values = with_mantissas(mantissas);
            if values.len() >= 3 {
                chosen = Some((level, values));
                break;
            }
        }
        let Some((level, mut values)) = chosen else {
            // Less than a factor of about two: round linear steps read best.
            let linear = Self::linear(low, high, 5, false);
            return Self {
                low: low.log10(),
                high: high.log10(),
                log: true,
                ticks: linear
                    .ticks
                    .into_iter()
                    .filter(|(v, _)| *v > 0.0 && in_range(*v))
                    .map(|(v, label)| (v.log10(), label))
                    .collect(),
                minor: Vec::new(),
            };
        };
        // Many decades: label every n-th decade only.
        if level == 0 && values.len() > 8 {
            let stride = values.len().div_ceil(8);
            values = values.into_iter().step_by(stride).collect();
        }
        let minor = if level == 0 && last_decade - first_decade <= 8 {
            with_mantissas(&[2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
                .into_iter()
                .map(f64::log10)
                .collect()
        } else {
            Vec::new()
        };
        Self {
            low: low.log10(),
            high: high.log10(),
            log: true,
            ticks: values
                .into_iter()
                .map(|v| (v.log10(), typeset(&format_significant(v))))
                .collect(),
            minor,
        }
    }

    /// Maps a data value into plot space.
    pub(crate) fn plot_value(&self, value: f64) -> f64 {
        if self.log { value.log10() } else { value }
    }

    /// Maps a plot-space value back to data.
    pub(crate) fn data_value(&self, value: f64) -> f64 {
        if self.log { 10f64.powf(value) } else { value }
    }

    /// Room in pixels that tick labels and the axis description need to the
    /// left of a vertical axis (about eleven pixels per character of tick
    /// label text).
    pub(crate) fn label_area_px(&self) -> u32 {
        let widest = self
            .ticks
            .iter()
            .map(|(_, label)| label.chars().count())
            .max()
            .unwrap_or(1);
        u32::try_from(widest).unwrap_or(20).min(20) * 11 + 46
    }

    /// Whether a data value can be placed on this axis.
    pub(crate) fn accepts(&self, value: f64) -> bool {
        value.is_finite() && (!self.log || value > 0.0)
    }

    /// The tick positions in plot space.
    pub(crate) fn tick_positions(&self) -> Vec<f64> {
        self.ticks.iter().map(|(v, _)| *v).collect()
    }

    /// Label for a plot-space value that plotters hands back to the
    /// formatter; it is always one of our ticks.
    pub(crate) fn label(&self, value: f64) -> String {
        let tolerance = (self.high - self.low).abs() * 1e-9;
        self.ticks
            .iter()
            .find(|(v, _)| (v - value).abs() <= tolerance)
            .map(|(_, label)| label.clone())
            .unwrap_or_default()
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let fraction = (value - self.low) / (self.high - self.low);
        let pixels = f64::from(limit.1 - limit.0) * fraction;
        // Float-to-int casts saturate, so wild values cannot wrap around.
        limit.0 + (pixels + 1e-3).floor() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.tick_positions()
        }
    }

    fn range(&self) -> Range<f64> {
        self.low..self.high
    }
}

/// A range with some room: `fraction` of the span on each side.
pub(crate) fn pad(low: f64, high: f64, fraction: f64) -> (f64, f64) {
    let (low, high) = widen_if_flat(low, high);
    let margin = (high - low) * fraction;
    let padded = (low - margin, high + margin);
    if padded.0.is_finite() && padded.1.is_finite() {
        padded
    } else {
        (low, high)
    }
}

/// A positive range padded by `fraction` of its extent in log space.
pub(crate) fn pad_log(low: f64, high: f64, fraction: f64) -> (f64, f64) {
    let (low, high) = if high > low {
        (low, high)
    } else {
        (low / 2.0, high * 2.0)
    };
    let factor = (high / low).powf(fraction);
    let padded = (low / factor, high * factor);
    if padded.0 > 0.0 && padded.1.is_finite() {
        padded
    } else {
        (low.max(f64::MIN_POSITIVE), high.min(f64::MAX))
    }
}

/// Typographic minus signs for labels: `−0.02` rather than `-0.02`.
pub(crate) fn typeset(label: &str) -> String {
    label.replace('-', "\u{2212}")
}

/// Smallest and largest finite value, if any.
pub(crate) fn finite_extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Gives a single value or an empty range some extent so it can be drawn.
fn widen_if_flat(low: f64, high: f64) -> (f64, f64) {
    if high > low {
        (low, high)
    } else {
        let half = if low == 0.0 { 1.0 } else { low.abs() * 0.1 };
        (low - half, low + half)
    }
}

/// The first of 1, 2, 2.5, 5 (times a power of ten) not smaller than `raw`.
fn nice_step(raw: f64, integer_steps: bool) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude);
    if integer_steps {
        step.max(1.0).round()
    } else {
        step
    }
}

/// Decimal places needed to write every multiple of `step` exactly.
fn decimals_for_step(step: f64) -> usize {
    (0..=12)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(12)
}

fn format_fixed(value: f64, decimals: usize) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-4..1e6).contains(&magnitude) {
        return format_significant(value);
    }
    // Avoid "-0" for values that are zero up to rounding.
    let text = format!("{value:.decimals$}");
    if text
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        text.trim_start_matches('-').to_string()
    } else {
        text
    }
}

/// A short label with up to four significant digits: `0.05`, `1.5`, `2e-5`.
pub(crate) fn format_significant(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let rounded: f64 = format!("{value:.3e}").parse().unwrap_or(value);
    let magnitude = rounded.abs();
    if (1e-4..1e6).contains(&magnitude) {
        format!("{rounded}")
    } else {
        format!("{rounded:e}")
    }
}

/// `value` with `digits` significant digits, for numbers quoted in legends.
pub(crate) fn format_digits(value: f64, digits: usize) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    if !(-4..6).contains(&magnitude) {
        return format!("{value:.*e}", digits.saturating_sub(1));
    }
    format!("{value:.decimals$}")
}

/// Draws the grid, ticks and axis descriptions of a chart on two [`Axis`] coordinates in the
/// crate's style (labelled ticks, major and minor grid lines); `path` is for errors.
pub(crate) fn draw_mesh<DB: plotters::prelude::DrawingBackend>(
    chart: &mut plotters::chart::ChartContext<
        '_,
        DB,
        plotters::coord::cartesian::Cartesian2d<Axis, Axis>,
    >,
    (x, y): (&Axis, &Axis),
    (x_desc, y_desc): (&str, &str),
    path: &std::path::Path,
) -> Result<(), crate::PlotError> {
    use crate::style;
    let x_label = |v: &f64| x.label(*v);
    let y_label = |v: &f64| y.label(*v);
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style(style::tick_label())
        .axis_desc_style(style::axis_description())
        .bold_line_style(style::GRID)
        .light_line_style(style::MINOR_GRID)
        .axis_style(style::AXIS)
        .draw()
        .map_err(crate::output::render_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(axis: &Axis) -> Vec<String> {
        axis.ticks.iter().map(|(_, l)| l.clone()).collect()
    }

    #[test]
    fn linear_ticks_are_round() {
        let axis = Axis::linear(0.0, 100.0, 10, false);
        assert_eq!(labels(&axis)[..3], ["0", "10", "20"]);
        let axis = Axis::linear(0.0, 1.0, 4, false);
        assert_eq!(labels(&axis), ["0.00", "0.25", "0.50", "0.75", "1.00"]);
    }

    #[test]
    fn epoch_ticks_are_whole_numbers() {
        let axis = Axis::linear(0.0, 3.0, 10, true);
        assert_eq!(labels(&axis), ["0", "1", "2", "3"]);
    }

    #[test]
    fn flat_range_is_widened() {
        let axis = Axis::linear(5.0, 5.0, 5, false);
        assert!(axis.low < 5.0 && axis.high > 5.0);
        assert!(!axis.ticks.is_empty());
    }

    #[test]
    fn log_ticks_over_several_decades_are_powers_of_ten() {
        let axis = Axis::logarithmic(0.001, 10.0);
        assert_eq!(labels(&axis), ["0.001", "0.01", "0.1", "1", "10"]);
        assert!(!axis.minor.is_empty());
    }

    #[test]
    fn log_ticks_within_a_decade_still_exist() {
        let axis = Axis::logarithmic(0.25, 1.1);
        assert_eq!(
            labels(&axis),
            ["0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"]
        );
        let axis = Axis::logarithmic(0.05, 1.1);
        assert_eq!(labels(&axis), ["0.05", "0.1", "0.2", "0.5", "1"]);
    }

    #[test]
    fn narrow_log_range_falls_back_to_linear_steps() {
        let axis = Axis::logarithmic(0.41, 0.47);
        assert!(axis.ticks.len() >= 3, "{:?}", axis.ticks);
    }

    #[test]
    fn extreme_ranges_do_not_explode() {
        let axis = Axis::linear(-f64::MAX, f64::MAX, 10, false);
        assert!(axis.ticks.len() <= 1001);
        let axis = Axis::logarithmic(f64::MIN_POSITIVE, f64::MAX);
        assert!(
            axis.ticks.len() <= 8 && !axis.ticks.is_empty(),
            "{:?}",
            axis.ticks
        );
        let (low, high) = pad_log(1e-300, 1e300, 0.06);
        assert!(low > 0.0 && high.is_finite());
    }

    #[test]
    fn negative_labels_use_a_real_minus_sign() {
        let axis = Axis::linear(-1.0, 1.0, 2, false);
        assert_eq!(labels(&axis), ["\u{2212}1", "0", "1"]);
    }

    #[test]
    fn significant_formatting() {
        assert_eq!(format_significant(0.30000000000000004), "0.3");
        assert_eq!(format_significant(2e-5), "2e-5");
        assert_eq!(format_digits(0.123456, 3), "0.123");
        assert_eq!(format_digits(94.1234, 3), "94.1");
    }
}
