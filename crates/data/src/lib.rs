//! Data sets for spikeloop, generated bit-identically to their reference generators.
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
mod error;
pub mod mt19937;
pub mod yin_yang;

pub use dataset::{Dataset, DatasetKind, Split};
pub use error::DataError;
pub use yin_yang::{yin_yang, yin_yang_with};
