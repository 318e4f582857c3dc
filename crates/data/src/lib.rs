//! Data sets for spikeloop: Yin-Yang generated bit-identically to its reference generator, the
//! 8x8 UCI digits embedded, and MNIST-style IDX image files read from disk ([`idx`],
//! [`images`]).
//!
//! An accuracy is only comparable with a published number if it is measured on the same samples.
//! This crate therefore does not merely draw data "like" the references: it reproduces their
//! generators step for step, down to the random number stream ([`mt19937`], numpy's legacy
//! `RandomState`) and the order of floating point operations, so every sample equals the
//! reference's bit for bit. All randomness comes from explicit seeds.
//!
//! A data set is handed to the trainer as a [`Dataset`]: rows of features in `[0, 1]` with one
//! label each. [`DatasetKind`] and [`Split`] name what to load, e.g. from the command line:
//!
//! ```
//! use spikeloop_data::{DatasetKind, Split};
//!
//! let kind: DatasetKind = "yin-yang".parse()?;
//! let test = kind.load("test".parse::<Split>()?)?;
//! assert_eq!((test.len(), test.n_features(), test.n_classes), (1000, 4, 3));
//! # Ok::<(), spikeloop_data::DataError>(())
//! ```

mod dataset;
pub mod digits;
mod error;
pub mod idx;
pub mod images;
pub mod mt19937;
pub mod yin_yang;

pub use dataset::{DataOptions, Dataset, DatasetKind, Split};
pub use digits::digits;
pub use error::DataError;
pub use yin_yang::{yin_yang, yin_yang_with};
