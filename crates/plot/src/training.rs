//! Training curves: loss and accuracy of one run over epochs, side by side,
//! and below them, when recorded, the learning rate and the stabilisers
//! (bumped batches, chopped gradients), with the selected epoch marked in
//! every panel.
//!
//! Loss goes on a logarithmic axis because its interesting part, the slow
//! late improvement, is invisible on a linear one; if any loss value is zero
//! or negative the axis falls back to linear rather than dropping points.
//! Accuracy is drawn in percent on a linear axis, the unit readers quote.
//! Missing values (NaN or infinite) break a curve instead of being bridged,
//! so a gap in the record stays visible.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use plotters::coord::Shift;

use crate::axis::{self, Axis};
use crate::output::{self, Figure, render_error};
use crate::{PlotError, style};

/// Width and height in pixels of the figure [`write_training_curves`] writes
/// for loss and accuracy alone; the schedule and stabiliser panels add
/// [`TRAINING_SCHEDULE_HEIGHT`] below them.
pub const TRAINING_CURVES_SIZE: (u32, u32) = (1600, 600);

/// Height in pixels of the second row (learning rate, stabilisers).
pub const TRAINING_SCHEDULE_HEIGHT: u32 = 460;

/// Curves draw a marker on every point when they have at most this many.
const MAX_POINTS_WITH_MARKERS: usize = 40;

/// One training run's per-epoch history. Index 0 is the state before
/// training (epoch 0) where present.
///
/// Every series has one value per entry of `epochs`, or is empty when it was
/// not recorded (it is then left out of the figure and its legend). NaN and
/// infinite values are skipped and leave a gap in their curve.
#[derive(Debug, Clone, Copy)]
pub struct TrainingCurves<'a> {
    /// Figure title, e.g. the data set and the backend. May be empty.
    pub title: &'a str,
    /// A smaller second line under the title, e.g. the seeds and the
    /// substrate. May be empty.
    pub subtitle: &'a str,
    /// The epoch whose weights were kept, marked in every panel.
    pub selected_epoch: Option<f64>,
    /// The x values: epoch numbers (fractional epochs are fine).
    pub epochs: &'a [f64],
    /// Mean loss on the training set.
    pub train_loss: &'a [f64],
    /// Mean loss on the validation set.
    pub validation_loss: &'a [f64],
    /// Training accuracy as a fraction in 0..=1; drawn as percent.
    pub train_accuracy: &'a [f64],
    /// Validation accuracy as a fraction in 0..=1; drawn as percent.
    pub validation_accuracy: &'a [f64],
    /// Learning rate used during each epoch.
    pub learning_rate: &'a [f64],
    /// Batches of each epoch skipped for weight bumping.
    pub bumped_batches: &'a [f64],
    /// Weight gradients of each epoch dropped by the gradient chop.
    pub chopped_gradients: &'a [f64],
}

impl TrainingCurves<'_> {
    fn validate(&self) -> Result<(), PlotError> {
        let epochs = self.epochs.len();
        let series = [
            ("train_loss", self.train_loss),
            ("validation_loss", self.validation_loss),
            ("train_accuracy", self.train_accuracy),
            ("validation_accuracy", self.validation_accuracy),
            ("learning_rate", self.learning_rate),
            ("bumped_batches", self.bumped_batches),
            ("chopped_gradients", self.chopped_gradients),
        ];
        for (field, values) in series {
            if !values.is_empty() && values.len() != epochs {
                return Err(PlotError::LengthMismatch {
                    field,
                    len: values.len(),
                    epochs,
                });
            }
        }
        let accuracies = [
            ("train_accuracy", self.train_accuracy),
            ("validation_accuracy", self.validation_accuracy),
        ];
        for (field, values) in accuracies {
            let outside = values
                .iter()
                .enumerate()
                .find(|(_, v)| v.is_finite() && !(-1e-9..=1.0 + 1e-9).contains(*v));
            if let Some((index, &value)) = outside {
                return Err(PlotError::AccuracyNotFraction {
                    field,
                    index,
                    value,
                });
            }
        }
        Ok(())
    }

    /// Whether the second row (learning rate, stabilisers) is drawn.
    fn has_schedule(&self) -> bool {
        [
            self.learning_rate,
            self.bumped_batches,
            self.chopped_gradients,
        ]
        .iter()
        .any(|s| !s.is_empty())
    }

    /// Width and height in pixels of the figure: [`TRAINING_CURVES_SIZE`],
    /// taller by [`TRAINING_SCHEDULE_HEIGHT`] when the learning rate or a
    /// stabiliser was recorded.
    pub fn size_px(&self) -> (u32, u32) {
        let (width, height) = TRAINING_CURVES_SIZE;
        if self.has_schedule() {
            (width, height + TRAINING_SCHEDULE_HEIGHT)
        } else {
            (width, height)
        }
    }
}

/// Writes `curves` as a PNG or SVG (by the extension of `path`) of
/// [`TrainingCurves::size_px`]: loss on a logarithmic axis on the left,
/// accuracy in percent on the right, training and validation in each; below
/// them the learning rate and the stabilisers when recorded. Legends quote
/// the last value of every curve and the best validation accuracy with its
/// epoch; a grey vertical line marks the selected epoch.
///
/// The file is replaced atomically. Fails with
/// [`PlotError::LengthMismatch`] when a recorded series does not have one
/// value per epoch, with [`PlotError::AccuracyNotFraction`] when an
/// accuracy looks like a percentage, and with [`PlotError::UnknownFormat`]
/// for another extension.
pub fn write_training_curves(path: &Path, curves: &TrainingCurves<'_>) -> Result<(), PlotError> {
    curves.validate()?;
    let x = epoch_axis(curves.epochs);
    let mut panels = vec![
        scaled_panel(
            "Loss",
            "Loss",
            curves,
            &[
                ("Training", curves.train_loss),
                ("Validation", curves.validation_loss),
            ],
            x.clone(),
            Summary::Last,
            LOSS_CORNERS,
        ),
        accuracy_panel(curves, x.clone()),
    ];
    if curves.has_schedule() {
        panels.push(scaled_panel(
            "Learning rate",
            "Learning rate",
            curves,
            &[("Learning rate", curves.learning_rate)],
            x.clone(),
            Summary::Last,
            LOSS_CORNERS,
        ));
        panels.push(count_panel(curves, x));
    }
    output::write_figure(path, &TrainingFigure { curves, panels })
}

/// The figure as drawn: its input and its panels in reading order.
struct TrainingFigure<'a> {
    curves: &'a TrainingCurves<'a>,
    panels: Vec<Panel>,
}

impl Figure for TrainingFigure<'_> {
    fn size(&self) -> (u32, u32) {
        self.curves.size_px()
    }

    fn draw<DB: DrawingBackend>(
        &self,
        canvas: &DrawingArea<DB, Shift>,
        path: &Path,
    ) -> Result<(), PlotError> {
        let body = output::below_titles(canvas, self.curves.title, self.curves.subtitle, path)?;
        let rows: Vec<DrawingArea<DB, Shift>> = if self.panels.len() > 2 {
            let (_, height) = body.dim_in_pixel();
            let top = height * TRAINING_CURVES_SIZE.1
                / (TRAINING_CURVES_SIZE.1 + TRAINING_SCHEDULE_HEIGHT);
            let (upper, lower) = body.split_vertically(top);
            vec![upper, lower]
        } else {
            vec![body]
        };
        let areas = rows.iter().flat_map(|row| row.split_evenly((1, 2)));
        for (area, panel) in areas.zip(&self.panels) {
            draw_panel(&area, panel, self.curves.selected_epoch, path)?;
        }
        Ok(())
    }
}

/// What a curve's legend entry quotes.
#[derive(Clone, Copy)]
enum Summary {
    /// The last finite value.
    Last,
    /// The sum over all epochs (for counts).
    Total,
}

const LOSS_CORNERS: [SeriesLabelPosition; 4] = [
    SeriesLabelPosition::UpperRight,
    SeriesLabelPosition::LowerLeft,
    SeriesLabelPosition::UpperLeft,
    SeriesLabelPosition::LowerRight,
];

/// One side of the figure, ready to draw: axes and curves in plot space.
struct Panel {
    caption: &'static str,
    y_description: String,
    x: Axis,
    y: Axis,
    curves: Vec<Curve>,
    /// Corners to put the legend in, most natural first; the one the curves
    /// cross least wins.
    legend_corners: [SeriesLabelPosition; 4],
}

/// One drawable curve: its legend text and its unbroken runs of points.
struct Curve {
    label: String,
    color: RGBColor,
    runs: Vec<Vec<(f64, f64)>>,
}

impl Curve {
    fn point_count(&self) -> usize {
        self.runs.iter().map(Vec::len).sum()
    }
}

fn epoch_axis(epochs: &[f64]) -> Axis {
    match axis::finite_extent(epochs.iter().copied()) {
        Some((first, last)) => {
            let whole = epochs
                .iter()
                .filter(|e| e.is_finite())
                .all(|e| e.fract() == 0.0);
            let (low, high) = if last > first {
                axis::pad(first, last, 0.02)
            } else {
                (first - 1.0, last + 1.0)
            };
            Axis::linear(low, high, 10, whole)
        }
        None => Axis::linear(0.0, 1.0, 5, false),
    }
}

/// A panel of positive quantities on a logarithmic axis (linear when a value
/// is zero or negative), e.g. loss or learning rate.
fn scaled_panel(
    caption: &'static str,
    quantity: &'static str,
    curves: &TrainingCurves<'_>,
    series: &[(&'static str, &[f64])],
    x: Axis,
    summary: Summary,
    legend_corners: [SeriesLabelPosition; 4],
) -> Panel {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, values)| paired(curves.epochs, values))
        .map(|(_, v)| v)
        .filter(|v| v.is_finite())
        .collect();
    let extent = axis::finite_extent(values.iter().copied());
    let all_positive = values.iter().all(|v| *v > 0.0);
    let (y, log) = match extent {
        Some((low, high)) if all_positive => {
            let (low, high) = axis::pad_log(low, high, 0.06);
            (Axis::logarithmic(low, high), true)
        }
        Some((low, high)) => {
            let (low, high) = axis::pad(low, high, 0.05);
            (Axis::linear(low, high, 8, false), false)
        }
        None => (Axis::linear(0.0, 1.0, 5, false), false),
    };
    Panel {
        caption,
        y_description: if log {
            format!("{quantity} (log scale)")
        } else {
            quantity.to_string()
        },
        curves: series_curves(curves.epochs, series, &y, summary),
        x,
        y,
        legend_corners,
    }
}

/// The stabilisers' counts per epoch on a linear axis from zero.
fn count_panel(curves: &TrainingCurves<'_>, x: Axis) -> Panel {
    let series: [(&'static str, &[f64]); 2] = [
        ("Bumped batches", curves.bumped_batches),
        ("Chopped gradients", curves.chopped_gradients),
    ];
    let highest = series
        .iter()
        .flat_map(|(_, values)| values.iter())
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let top = if highest > 0.0 { highest * 1.08 } else { 1.0 };
    let y = Axis::linear(-top * 0.02, top, 8, highest >= 8.0);
    Panel {
        caption: "Stabilisers",
        y_description: "Count per epoch".into(),
        curves: series_curves(curves.epochs, &series, &y, Summary::Total),
        x,
        y,
        legend_corners: LOSS_CORNERS,
    }
}

/// The recorded series as curves in plot space, labelled with their name and
/// `summary`.
fn series_curves(
    epochs: &[f64],
    series: &[(&'static str, &[f64])],
    y: &Axis,
    summary: Summary,
) -> Vec<Curve> {
    series
        .iter()
        .zip(style::PALETTE)
        .filter(|((_, values), _)| !values.is_empty())
        .map(|((name, values), color)| {
            let runs = runs(epochs, values, 1.0, y);
            let label = match (summary, last_point(&runs)) {
                (_, None) => format!("{name} (no finite values)"),
                (Summary::Last, Some((_, value))) => {
                    let value = y.data_value(value);
                    let value = axis::typeset(&axis::format_digits(value, 3));
                    format!("{name} (last {value})")
                }
                (Summary::Total, Some(_)) => {
                    let total: f64 = values.iter().filter(|v| v.is_finite()).sum();
                    format!("{name} (total {})", axis::format_significant(total))
                }
            };
            Curve { label, color, runs }
        })
        .collect()
}

fn accuracy_panel(curves: &TrainingCurves<'_>, x: Axis) -> Panel {
    let recorded = [curves.train_accuracy, curves.validation_accuracy];
    let lowest = recorded
        .iter()
        .flat_map(|series| paired(curves.epochs, series))
        .map(|(_, v)| v * 100.0)
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    // Whole tens below the data up to a full 100 %, with a sliver of room so
    // curves at 0 % or 100 % do not merge with the frame.
    let bottom = if lowest.is_finite() {
        ((lowest - 2.0) / 10.0).floor().max(0.0) * 10.0
    } else {
        0.0
    };
    let margin = (100.0 - bottom) * 0.015;
    let y = Axis::linear(bottom - margin, 100.0 + margin, 10, false);

    let series = [
        ("Training", curves.train_accuracy),
        ("Validation", curves.validation_accuracy),
    ];
    let curves_drawn = series
        .iter()
        .zip(style::PALETTE)
        .filter(|((_, values), _)| !values.is_empty())
        .map(|((name, values), color)| {
            let runs = runs(curves.epochs, values, 100.0, &y);
            let label = match last_point(&runs) {
                None => format!("{name} (no finite values)"),
                Some((_, last)) => {
                    let mut label = format!("{name} (last {last:.1} %");
                    if *name == "Validation"
                        && let Some((epoch, best)) = best_point(&runs)
                    {
                        let epoch = axis::format_significant(epoch);
                        label.push_str(&format!(", best {best:.1} % at epoch {epoch}"));
                    }
                    label.push(')');
                    label
                }
            };
            Curve { label, color, runs }
        })
        .collect();
    Panel {
        caption: "Accuracy",
        y_description: "Accuracy (%)".into(),
        x,
        y,
        curves: curves_drawn,
        legend_corners: [
            SeriesLabelPosition::LowerRight,
            SeriesLabelPosition::UpperLeft,
            SeriesLabelPosition::LowerLeft,
            SeriesLabelPosition::UpperRight,
        ],
    }
}

/// (epoch, value) pairs of a series; an empty series yields nothing.
fn paired<'a>(epochs: &'a [f64], values: &'a [f64]) -> impl Iterator<Item = (f64, f64)> + 'a {
    epochs
        .iter()
        .zip(values)
        .filter(|(e, _)| e.is_finite())
        .map(|(e, v)| (*e, *v))
}

/// Splits a series into runs of drawable points, in plot space. Values are
/// multiplied by `scale` first (100 for percent).
fn runs(epochs: &[f64], values: &[f64], scale: f64, y: &Axis) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut current = Vec::new();
    for (epoch, value) in epochs.iter().zip(values) {
        let value = value * scale;
        if epoch.is_finite() && y.accepts(value) {
            current.push((*epoch, y.plot_value(value)));
        } else if !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

fn last_point(runs: &[Vec<(f64, f64)>]) -> Option<(f64, f64)> {
    runs.last().and_then(|run| run.last()).copied()
}

/// The highest point; the earliest one if several tie.
fn best_point(runs: &[Vec<(f64, f64)>]) -> Option<(f64, f64)> {
    runs.iter()
        .flatten()
        .copied()
        .fold(None, |best: Option<(f64, f64)>, p| match best {
            Some(b) if b.1 >= p.1 => Some(b),
            _ => Some(p),
        })
}

/// The legend corner that hides the least of the curves. The legend's size
/// is estimated from its text (about ten pixels per character, 26 pixels per
/// line) against the plotting area of a 1600 x 600 figure, about 650 x 400.
fn legend_position(panel: &Panel) -> SeriesLabelPosition {
    let longest = panel
        .curves
        .iter()
        .map(|c| c.label.chars().count())
        .max()
        .unwrap_or(0);
    let width = ((longest as f64 * 10.0 + 70.0) / 650.0).min(1.0);
    let height = ((panel.curves.len() as f64 * 26.0 + 30.0) / 400.0).min(1.0);

    // Points along every curve, in 0..1 across the plotting area, with a few
    // samples between neighbours so sparse curves still count as crossing.
    let x_span = panel.x.high - panel.x.low;
    let y_span = panel.y.high - panel.y.low;
    let mut samples = Vec::new();
    for run in panel.curves.iter().flat_map(|c| &c.runs) {
        let normalised: Vec<(f64, f64)> = run
            .iter()
            .map(|(x, y)| ((x - panel.x.low) / x_span, (y - panel.y.low) / y_span))
            .collect();
        samples.extend(normalised.iter().copied());
        for pair in normalised.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            samples.extend((1..8).map(|k| {
                let t = f64::from(k) / 8.0;
                (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
            }));
        }
    }

    let covered = |corner: &SeriesLabelPosition| {
        let (right, top) = match corner {
            SeriesLabelPosition::UpperLeft => (false, true),
            SeriesLabelPosition::LowerLeft => (false, false),
            SeriesLabelPosition::LowerRight => (true, false),
            _ => (true, true),
        };
        samples
            .iter()
            .filter(|(x, y)| {
                let in_x = if right {
                    *x >= 1.0 - width
                } else {
                    *x <= width
                };
                let in_y = if top {
                    *y >= 1.0 - height
                } else {
                    *y <= height
                };
                in_x && in_y
            })
            .count()
    };
    let mut best = panel.legend_corners[0].clone();
    let mut fewest = usize::MAX;
    for corner in &panel.legend_corners {
        let count = covered(corner);
        if count < fewest {
            fewest = count;
            best = corner.clone();
        }
    }
    best
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    selected_epoch: Option<f64>,
    path: &Path,
) -> Result<(), PlotError> {
    let err = render_error(path);
    let mut chart = ChartBuilder::on(area)
        .caption(panel.caption, style::panel_caption())
        .margin(12)
        .margin_right(36)
        .x_label_area_size(58)
        .y_label_area_size(panel.y.label_area_px())
        .build_cartesian_2d(panel.x.clone(), panel.y.clone())
        .map_err(&err)?;

    axis::draw_mesh(
        &mut chart,
        (&panel.x, &panel.y),
        ("Epoch", panel.y_description.as_str()),
        path,
    )?;

    if let Some(epoch) =
        selected_epoch.filter(|e| e.is_finite() && (panel.x.low..=panel.x.high).contains(e))
    {
        let marker = style::MUTED_TEXT.stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                [(epoch, panel.y.low), (epoch, panel.y.high)],
                marker,
            ))
            .map_err(&err)?
            .label(format!(
                "Selected epoch {}",
                axis::format_significant(epoch)
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 26, y)], marker));
    }

    for curve in &panel.curves {
        let line = curve.color.stroke_width(2);
        let with_markers = curve.point_count() <= MAX_POINTS_WITH_MARKERS;
        let mut first = true;
        for run in &curve.runs {
            let drawn = chart
                .draw_series(LineSeries::new(run.iter().copied(), line))
                .map_err(&err)?;
            if first {
                let color = curve.color;
                drawn.label(curve.label.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 26, y)], color.stroke_width(3))
                });
                first = false;
            }
            if with_markers || run.len() == 1 {
                chart
                    .draw_series(run.iter().map(|p| Circle::new(*p, 4, curve.color.filled())))
                    .map_err(&err)?;
            }
        }
        if first {
            // Recorded but nothing drawable: keep the entry so the legend says so.
            let color = curve.color;
            chart
                .draw_series(LineSeries::new(std::iter::empty::<(f64, f64)>(), line))
                .map_err(&err)?
                .label(curve.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 26, y)], color.stroke_width(3))
                });
        }
    }

    if panel.curves.iter().all(|c| c.point_count() == 0) {
        let note = if panel.curves.is_empty() {
            "not recorded"
        } else {
            "no finite values to plot"
        };
        let centre = (
            (panel.x.low + panel.x.high) / 2.0,
            (panel.y.low + panel.y.high) / 2.0,
        );
        let note_style =
            style::text(24, style::MUTED_TEXT).pos(Pos::new(HPos::Center, VPos::Center));
        chart
            .plotting_area()
            .draw(&Text::new(note, centre, note_style))
            .map_err(&err)?;
    }

    if !panel.curves.is_empty() {
        chart
            .configure_series_labels()
            .position(legend_position(panel))
            .margin(14)
            .label_font(style::legend())
            .background_style(WHITE.mix(0.9))
            .border_style(style::GRID)
            .draw()
            .map_err(&err)?;
    }
    Ok(())
}
