//! Figures for spikeloop, as PNG or SVG: training curves of a run, bar
//! charts that compare runs (ideal training, weights copied to a chip,
//! training in the loop), before-and-after distributions (a calibration's
//! spread across circuits) and heatmaps (a robustness matrix).
//!
//! The one design decision a reader needs: every figure must build and render
//! on a bare machine with nothing but a Rust toolchain, so nothing here links
//! against system libraries. Drawing goes through `plotters` without its
//! default features (its `ttf` feature would load fonts through the system's
//! fontconfig and freetype); text is laid out and rasterised in pure Rust with
//! `ab_glyph` from DejaVu Sans, which is embedded in the binary (see
//! `assets/LICENSE-DejaVu.txt` for its licence). Because cargo unifies
//! features, a crate elsewhere in the build that turns on plotters' `ttf`
//! feature would switch text back to system fonts; keep plotters'
//! default features off everywhere.
//!
//! Figures are written atomically: each is rendered to a temporary file in
//! the destination directory and renamed over the destination, so a reader
//! never sees a half-written PNG, even when a long training run is stopped
//! while it redraws its curves.
//!
//! ```no_run
//! use spikeloop_plot::{Bar, BarChart, ReferenceLine, write_bar_chart};
//!
//! let chips = [81.0, 84.5, 79.9];
//! let bars = [
//!     Bar { label: "ideal training", value: 96.1, error: None, points: &[] },
//!     Bar { label: "copied to chip", value: 81.8, error: Some(2.3), points: &chips },
//!     Bar { label: "in the loop", value: 95.2, error: Some(0.6), points: &[] },
//! ];
//! let chart = BarChart {
//!     title: "Test accuracy",
//!     subtitle: "error bars: SD over n = 3 chips",
//!     y_label: "Accuracy (%)",
//!     bars: &bars,
//!     y_range: Some((30.0, 100.0)),
//!     reference_lines: &[ReferenceLine { value: 100.0 / 3.0, label: "chance 33.3 %" }],
//! };
//! write_bar_chart(std::path::Path::new("accuracy.svg"), &chart)?;
//! # Ok::<(), spikeloop_plot::PlotError>(())
//! ```

mod axis;
mod backend;
mod bars;
mod distributions;
mod error;
mod font;
mod heatmap;
mod output;
mod profile;
mod raster;
mod style;
mod training;

pub use bars::{BAR_CHART_HEIGHT, Bar, BarChart, ReferenceLine, write_bar_chart};
pub use distributions::{DistributionPanel, Distributions, write_distributions};
pub use error::PlotError;
pub use heatmap::{Cell, Heatmap, write_heatmap};
pub use profile::{DepthProfile, ProfilePanel, ProfileSeries, write_depth_profile};
pub use raster::{Raster, write_raster};
pub use training::{
    TRAINING_CURVES_SIZE, TRAINING_SCHEDULE_HEIGHT, TrainingCurves, write_training_curves,
};
