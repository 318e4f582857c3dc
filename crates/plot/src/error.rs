//! The crate's error type. Every message names the offending input and what
//! would be accepted instead.

use std::path::PathBuf;

/// Why a figure could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// A per-epoch series does not have one value per entry of `epochs`.
    #[error(
        "`{field}` has {len} values but `epochs` has {epochs}; give one value per epoch, \
         or an empty slice if the series was not recorded"
    )]
    LengthMismatch {
        /// Name of the series, e.g. `validation_loss`.
        field: &'static str,
        /// Number of values in that series.
        len: usize,
        /// Number of epochs.
        epochs: usize,
    },

    /// An accuracy lies outside 0..=1, most likely because it was given in
    /// percent.
    #[error(
        "`{field}[{index}]` is {value}, but accuracies must be fractions in 0..=1 \
         (0.94 for 94 %); they are drawn as percent"
    )]
    AccuracyNotFraction {
        /// Name of the series, e.g. `train_accuracy`.
        field: &'static str,
        /// Index of the offending value.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// A figure of panels was asked for without any.
    #[error("the figure has no panels; pass at least one")]
    NoPanels,

    /// A heatmap's cells do not fill its grid.
    #[error(
        "the heatmap has {cells} cells for {rows} rows and {columns} columns; give rows x columns cells, at least one"
    )]
    CellCount {
        /// Cells given.
        cells: usize,
        /// Rows.
        rows: usize,
        /// Columns.
        columns: usize,
    },

    /// A bar chart was asked for without any bars.
    #[error("the bar chart has no bars; pass at least one `Bar`")]
    NoBars,

    /// A bar's value or error cannot be drawn.
    #[error("bar {index} (\"{label}\"): {problem}")]
    InvalidBar {
        /// Position of the bar in `bars`.
        index: usize,
        /// The bar's label.
        label: String,
        /// What is wrong and what is allowed.
        problem: String,
    },

    /// An explicit axis range is unusable.
    #[error("y_range ({low}, {high}) is unusable: both ends must be finite and low < high")]
    InvalidRange {
        /// Lower end as given.
        low: f64,
        /// Upper end as given.
        high: f64,
    },

    /// The output path does not name a file.
    #[error("`{}` does not name a file; pass a path such as `figures/accuracy.png`", path.display())]
    InvalidPath {
        /// The path as given.
        path: PathBuf,
    },

    /// The output path's extension names no format this crate writes.
    #[error("`{}`: a figure is written as .png or .svg; name the file with one of these extensions", path.display())]
    UnknownFormat {
        /// The path as given.
        path: PathBuf,
    },

    /// The directory the figure should go into does not exist.
    #[error("cannot write `{}`: the directory `{}` does not exist; create it first", path.display(), directory.display())]
    MissingDirectory {
        /// The figure's path as given.
        path: PathBuf,
        /// The directory that is missing.
        directory: PathBuf,
    },

    /// The file system refused to create, write or rename the figure.
    #[error("cannot write `{}`: {source}", path.display())]
    Io {
        /// The figure's path as given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Drawing or PNG encoding failed.
    #[error("cannot render `{}`: {message}", path.display())]
    Render {
        /// The figure's path as given.
        path: PathBuf,
        /// What the drawing library reported.
        message: String,
    },

    /// The embedded font could not be parsed; this is a build defect, not a
    /// usage error.
    #[error(
        "the embedded DejaVu Sans font could not be loaded (the crate was built from a damaged copy)"
    )]
    Font,
}
