//! The in-memory data set the trainer consumes, and the names that select one.

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, s};

use crate::DataError;

/// A labelled data set held in memory: one row of features per sample.
///
/// Features are an `n_samples x n_features` matrix in standard (row-major) layout, so a sample
/// is a plain slice ([`sample`](Self::sample)). By convention every feature lies in `[0, 1]`,
/// ready to be encoded as spike times; [`validate`](Self::validate) checks this and the other
/// invariants.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Name of the data set, e.g. `"yin-yang"`.
    pub name: String,
    /// Number of classes; labels lie in `0..n_classes`.
    pub n_classes: usize,
    /// Human-readable class names, indexed by label.
    pub class_names: Vec<String>,
    /// Features, one row per sample, values in `[0, 1]`.
    pub features: Array2<f64>,
    /// One label per sample.
    pub labels: Vec<u32>,
}

impl Dataset {
    /// The first `n` samples (all of them if there are fewer).
    pub fn head(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            name: self.name.clone(),
            n_classes: self.n_classes,
            class_names: self.class_names.clone(),
            features: self.features.slice(ndarray::s![..n, ..]).to_owned(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Number of features per sample.
    pub fn n_features(&self) -> usize {
        self.features.ncols()
    }

    /// Keeps only the first `n` samples (all of them when there are fewer).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len()).min(self.features.nrows());
        self.features = self.features.slice(s![..n, ..]).to_owned();
        self.labels.truncate(n);
    }

    /// Whether the data set holds no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The features of sample `i`.
    ///
    /// # Panics
    ///
    /// Panics if `i` is not below [`len`](Self::len) (or the features have fewer rows than
    /// [`validate`](Self::validate) requires). Empty for features not in standard layout, which
    /// [`validate`](Self::validate) refuses.
    pub fn sample(&self, i: usize) -> &[f64] {
        self.features.row(i).to_slice().unwrap_or_default()
    }

    /// Number of samples per class, indexed by label (length `n_classes`).
    ///
    /// Labels outside `0..n_classes`, which [`validate`](Self::validate) rejects, are not counted.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_classes];
        for &label in &self.labels {
            if let Some(count) = usize::try_from(label)
                .ok()
                .and_then(|label| counts.get_mut(label))
            {
                *count += 1;
            }
        }
        counts
    }

    /// Checks that the parts fit together: one name per class, one row of features per label
    /// (in standard layout), every feature in `[0, 1]` and every label below `n_classes`.
    pub fn validate(&self) -> Result<(), DataError> {
        let malformed = |reason: String| DataError::Malformed {
            name: self.name.clone(),
            reason,
        };
        if self.class_names.len() != self.n_classes {
            return Err(malformed(format!(
                "{} class names for {} classes",
                self.class_names.len(),
                self.n_classes
            )));
        }
        if self.features.nrows() != self.len() {
            return Err(malformed(format!(
                "{} feature values for {} samples of {} features",
                self.features.len(),
                self.len(),
                self.n_features()
            )));
        }
        if !self.features.is_standard_layout() {
            return Err(malformed(
                "the features are not in row-major (standard) layout".into(),
            ));
        }
        if let Some(((sample, feature), value)) = self
            .features
            .indexed_iter()
            .find(|(_, value)| !(0.0..=1.0).contains(*value))
        {
            return Err(malformed(format!(
                "feature {feature} of sample {sample} is {value}, outside [0, 1]"
            )));
        }
        if let Some((index, label)) = self
            .labels
            .iter()
            .enumerate()
            .find(|&(_, &label)| usize::try_from(label).map_or(true, |l| l >= self.n_classes))
        {
            return Err(malformed(format!(
                "label of sample {index} is {label}, not below {} classes",
                self.n_classes
            )));
        }
        Ok(())
    }
}

/// Which part of a data set: training, validation or test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The part the weights are fitted on.
    Train,
    /// The part used to choose hyperparameters and stop early.
    Validation,
    /// The held-out part for the reported accuracy.
    Test,
}

impl Split {
    /// All splits, in the order train, validation, test.
    pub const ALL: &'static [Split] = &[Split::Train, Split::Validation, Split::Test];

    /// Names accepted by [`FromStr`], listed in errors.
    const ACCEPTED: &'static [&'static str] = &["train", "validation", "val", "test"];

    /// The canonical lowercase name, as serde and [`Display`](fmt::Display) write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = DataError;

    /// Parses `train`, `validation` (or `val`) and `test`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "validation" | "val" => Ok(Split::Validation),
            "test" => Ok(Split::Test),
            _ => Err(DataError::UnknownSplit {
                name: s.to_owned(),
                allowed: Self::ACCEPTED,
            }),
        }
    }
}

/// The data sets spikeloop knows how to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// The Yin-Yang data set: 4 features, 3 classes (see [`yin_yang`](crate::yin_yang())).
    YinYang,
    /// The 8x8 UCI handwritten digits: 64 features, 10 classes (see [`digits`](crate::digits())).
    Digits,
    /// MNIST from IDX files in [`DataOptions::dir`]: 784 features (256 down-scaled), 10 classes.
    Mnist,
    /// Fashion-MNIST from IDX files in [`DataOptions::dir`], or where Debian's
    /// `dataset-fashion-mnist` installs them: 784 features (256 down-scaled), 10 classes.
    FashionMnist,
}

/// Where image data sets are read from and how (for the data sets read from files; a
/// configuration of Yin-Yang or the digits that sets any of it is refused).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataOptions {
    /// Directory of the IDX files (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte`,
    /// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<std::path::PathBuf>,
    /// Down-scale 28x28 images to 16x16 (centre 24x24 crop, then area resize).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub downscale_16: bool,
    /// Training images kept for validation (default: the study's last 10,000 of 60,000, or the
    /// last sixth of a smaller file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<usize>,
}

impl DataOptions {
    /// True when nothing is set (as for every data set that is not read from files).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl DatasetKind {
    /// Features per sample (the network's inputs before encoding repeats them), given how the
    /// images are read.
    pub fn n_features(self, options: &DataOptions) -> usize {
        self.image_side(options).map_or(4, |side| side * side)
    }

    /// Side of the square images the features are (row by row), or `None` for a data set that
    /// is not made of images.
    pub fn image_side(self, options: &DataOptions) -> Option<usize> {
        match self {
            DatasetKind::YinYang => None,
            DatasetKind::Digits => Some(8),
            DatasetKind::Mnist | DatasetKind::FashionMnist if options.downscale_16 => Some(16),
            DatasetKind::Mnist | DatasetKind::FashionMnist => Some(28),
        }
    }

    /// Whether the data set is read from files ([`DataOptions`] apply to it), rather than
    /// generated or built in.
    pub fn reads_files(self) -> bool {
        matches!(self, DatasetKind::Mnist | DatasetKind::FashionMnist)
    }

    /// Classes of the data set (the network's output neurons).
    pub fn n_classes(self) -> usize {
        match self {
            DatasetKind::YinYang => 3,
            DatasetKind::Digits | DatasetKind::Mnist | DatasetKind::FashionMnist => 10,
        }
    }

    /// Every data set kind.
    pub const ALL: &'static [DatasetKind] = &[
        DatasetKind::YinYang,
        DatasetKind::Digits,
        DatasetKind::Mnist,
        DatasetKind::FashionMnist,
    ];

    /// Names accepted by [`FromStr`], listed in errors.
    const ACCEPTED: &'static [&'static str] = &[
        "yin-yang",
        "yinyang",
        "yin_yang",
        "digits",
        "mnist",
        "fashion-mnist",
    ];

    /// The canonical names of the data sets that `keep` accepts, comma-separated (for messages
    /// that list where an option applies, e.g. `mnist, fashion-mnist`).
    pub fn names_where(keep: impl Fn(DatasetKind) -> bool) -> String {
        let names: Vec<&str> = Self::ALL
            .iter()
            .filter(|k| keep(**k))
            .map(|k| k.as_str())
            .collect();
        names.join(", ")
    }

    /// The canonical name, as serde and [`Display`](fmt::Display) write it.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::YinYang => "yin-yang",
            DatasetKind::Digits => "digits",
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// Produces the given split of this data set (an image data set from the default
    /// location, at full resolution).
    pub fn load(&self, split: Split) -> Result<Dataset, DataError> {
        self.load_with(split, &DataOptions::default())
    }

    /// Produces the given split of this data set as `options` say.
    pub fn load_with(&self, split: Split, options: &DataOptions) -> Result<Dataset, DataError> {
        match self {
            DatasetKind::YinYang => Ok(crate::yin_yang(split)),
            DatasetKind::Digits => crate::digits(split),
            DatasetKind::Mnist | DatasetKind::FashionMnist => {
                crate::images::load_split(*self, split, options)
            }
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;

    /// Parses `yin-yang` (also `yinyang`, `yin_yang`), `digits`, `mnist` or `fashion-mnist`,
    /// ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "yin-yang" | "yinyang" | "yin_yang" => Ok(DatasetKind::YinYang),
            "digits" => Ok(DatasetKind::Digits),
            "mnist" => Ok(DatasetKind::Mnist),
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" => Ok(DatasetKind::FashionMnist),
            _ => Err(DataError::UnknownDataset {
                name: s.to_owned(),
                allowed: Self::ACCEPTED,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stated_class_counts_are_those_of_the_data() {
        for kind in [DatasetKind::YinYang, DatasetKind::Digits] {
            let data = kind.load(Split::Test).expect("built-in data set");
            assert_eq!(kind.n_classes(), data.n_classes, "{kind}");
            assert_eq!(
                kind.n_features(&DataOptions::default()),
                data.n_features(),
                "{kind}"
            );
        }
    }
}
