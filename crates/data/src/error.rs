//! Errors of data set loading and parsing.

/// What went wrong while naming, loading or checking a data set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// An unknown data set name; the message lists the allowed names.
    #[error("unknown data set {name:?}; allowed: {}", .allowed.join(", "))]
    UnknownDataset {
        /// The name as given.
        name: String,
        /// The accepted names.
        allowed: &'static [&'static str],
    },
    /// An unknown split name; the message lists the allowed names.
    #[error("unknown split {name:?}; allowed: {}", .allowed.join(", "))]
    UnknownSplit {
        /// The name as given.
        name: String,
        /// The accepted names.
        allowed: &'static [&'static str],
    },
    /// A data file that is missing, unreadable or not what it should be.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// A split that the data set's files cannot give (more validation images than the training
    /// file holds, say); the message names the option and the allowed values.
    #[error("{name}: {reason}")]
    Split {
        /// Name of the data set.
        name: String,
        /// What does not fit, with the allowed values.
        reason: String,
    },
    /// A data set whose parts do not fit together (see [`Dataset::validate`](crate::Dataset::validate)).
    #[error("data set {name:?} is malformed: {reason}")]
    Malformed {
        /// Name of the data set.
        name: String,
        /// What does not fit, with the offending numbers.
        reason: String,
    },
}
