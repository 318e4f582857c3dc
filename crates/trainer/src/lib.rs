//! Training first-spike networks with the forward pass on a backend and exact gradients on the
//! host.
//!
//! The trainer never computes a forward pass itself: it sends the current weights to a
//! [`spikeloop_backend::Backend`], takes the spike times the backend *measured* as the truth,
//! and evaluates the exact time-to-first-spike gradients at those times. Against the ideal
//! backend this is ordinary exact training; against an emulated or real chip it is
//! hardware-in-the-loop training, which learns around the substrate's imperfections because
//! every gradient is taken where the substrate actually is. The host keeps float "shadow"
//! weights and an Adam optimiser; a substrate with discrete weights rounds them on its side.
//!
//! Everything random derives from one training seed, and the run writes a checkpoint after
//! every epoch from which it resumes to the bit-identical result.

pub mod analysis;
pub mod config;
pub mod eval;
mod flat;
pub mod grad;
pub mod loss;
pub mod model;
pub mod optim;
pub mod seeds;
pub mod train;

use std::path::PathBuf;

pub use config::{Dale, Preset, TrainConfig};
pub use eval::{Evaluation, evaluate};
pub use model::{Model, Provenance};
pub use train::{Checkpoint, DataSplits, EpochMetrics, Observer, TrainOutcome};

/// The kinds of file spikeloop writes, told apart by their `format` field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A trained model (`model.json` of a run).
    Model,
    /// A run's checkpoint (`checkpoint.json`), from which the run continues.
    Checkpoint,
    /// An inference report.
    Inference,
    /// A comparison report.
    Comparison,
    /// A chip's calibration (`spikeloop calibrate`).
    Calibration,
    /// A document of another, named format.
    Other(String),
}

impl FileKind {
    /// The kind of a document whose `format` field is `format`.
    pub fn of_format(format: &str) -> Self {
        match format {
            crate::model::MODEL_FORMAT => Self::Model,
            crate::train::CHECKPOINT_FORMAT => Self::Checkpoint,
            "spikeloop-inference" => Self::Inference,
            "spikeloop-compare" => Self::Comparison,
            "spikeloop-calibration" => Self::Calibration,
            other => Self::Other(other.to_string()),
        }
    }

    /// What the kind is, as a noun phrase ("a checkpoint (checkpoint.json of a run)").
    pub fn describe(&self) -> String {
        match self {
            Self::Model => "a model (model.json of a run)".into(),
            Self::Checkpoint => "a checkpoint (checkpoint.json of a run)".into(),
            Self::Inference => "an inference report".into(),
            Self::Comparison => "a comparison report".into(),
            Self::Calibration => "a calibration (written by spikeloop calibrate)".into(),
            Self::Other(f) => format!("a file of format \"{f}\""),
        }
    }
}

/// Why training, evaluation or a model file operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A model is invalid or does not fit the data.
    #[error("invalid model: {0}")]
    Model(String),
    /// A checkpoint cannot be used.
    #[error("cannot resume: {0}")]
    Checkpoint(String),
    /// A file that spikeloop wrote, of another kind than the one asked for (a checkpoint given
    /// as a model, say).
    #[error("{}: this is {}, not a {wanted} file", path.display(), found.describe())]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// What it is.
        found: FileKind,
        /// What was asked for (`model`, `checkpoint`).
        wanted: &'static str,
    },
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] spikeloop_backend::BackendError),
    /// A data set could not be loaded.
    #[error(transparent)]
    Data(#[from] spikeloop_data::DataError),
    /// The training diverged: the loss or a weight stopped being a finite number.
    #[error(
        "training diverged at epoch {epoch}, batch {batch}: {what} (learning rate {learning_rate:e}); lower the learning rate (training.learning_rate), or raise the gradient chop's strictness (training.max_dw_norm)"
    )]
    Diverged {
        /// The epoch (1-based).
        epoch: u32,
        /// The batch within the epoch (1-based).
        batch: usize,
        /// What stopped being finite.
        what: String,
        /// The learning rate in force.
        learning_rate: f64,
    },
    /// The run was asked to stop (Ctrl-C) and did, between two batches, after writing its
    /// checkpoint; the state it stopped in is here, with the best epoch so far.
    #[error(
        "stopped after epoch {} and {} batches of the next, as asked; the checkpoint is written",
        .0.epoch,
        .0.partial.as_ref().map_or(0, |p| p.batches_done)
    )]
    Interrupted(Box<crate::train::Checkpoint>),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] spikeloop_files::FileError),
}

/// Loads the train, validation and test splits of the configured data set.
pub fn load_data(config: &TrainConfig) -> Result<DataSplits, TrainError> {
    use spikeloop_data::Split;
    Ok(DataSplits {
        train: config.dataset.load_with(Split::Train, &config.data)?,
        validation: config.dataset.load_with(Split::Validation, &config.data)?,
        test: config.dataset.load_with(Split::Test, &config.data)?,
    })
}
