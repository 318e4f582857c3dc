//! The Yin-Yang data set (Kriener, Goeltz and Petrovici 2022, arXiv 2102.08211).
//!
//! Points in the unit square, inside a big circle, labelled by the yin-yang symbol: "yin", "yang"
//! and the two "dots". A linear classifier reaches about 64 %, a small hidden layer about 98 %,
//! which makes the set a quick and telling test for spiking networks.
//!
//! The samples are drawn exactly as the reference generator (github.com/lkriener/yin_yang_data_set)
//! draws them with `numpy.random.RandomState(seed)`: per sample a goal class from `randint(3)`,
//! then candidate points from `rand(2)` until one lies in the big circle and has the goal class.
//! Every arithmetic step is the reference's, in the same order, so the splits are bit-identical
//! to the published ones. The one deliberate difference is that squares are computed as `v * v`
//! (correctly rounded everywhere) where the reference writes `v**2` (a call to the platform's
//! `pow`); on the published splits, and on 60 further seeds of 1000 samples checked against numpy,
//! the two give the same samples.

use crate::mt19937::Mt19937;
use crate::{Dataset, Split};

/// Radius of the two dots in the reference geometry.
pub const R_SMALL: f64 = 0.1;
/// Radius of the big circle in the reference geometry; points are drawn in `[0, 2 R_BIG)^2`.
pub const R_BIG: f64 = 0.5;
/// Class names, indexed by label.
pub const CLASS_NAMES: [&str; 3] = ["yin", "yang", "dot"];
/// Number of features per sample: `[x, y, 1 - x, 1 - y]`.
pub const N_FEATURES: usize = 4;
/// Name of the data set, as [`DatasetKind::YinYang`](crate::DatasetKind::YinYang) displays it.
pub const NAME: &str = "yin-yang";

/// Size and generator seed of a published split: train 5000 samples (seed 42), validation 1000
/// (seed 41), test 1000 (seed 40).
pub fn split_size_and_seed(split: Split) -> (usize, u32) {
    match split {
        Split::Train => (5000, 42),
        Split::Validation => (1000, 41),
        Split::Test => (1000, 40),
    }
}

/// The class of point `(x, y)`: 0 (yin), 1 (yang) or 2 (dot), with the reference's comparisons.
///
/// Points outside the big circle also get a class; the generator rejects them before asking.
pub fn which_class(x: f64, y: f64, r_small: f64, r_big: f64) -> u32 {
    let d_right = distance(x, y, 1.5 * r_big, r_big);
    let d_left = distance(x, y, 0.5 * r_big, r_big);
    let criterion1 = d_right <= r_small;
    let criterion2 = d_left > r_small && d_left <= 0.5 * r_big;
    let criterion3 = y > r_big && d_right > 0.5 * r_big;
    let is_yin = criterion1 || criterion2 || criterion3;
    let is_circles = d_right < r_small || d_left < r_small;
    if is_circles { 2 } else { u32::from(is_yin) }
}

/// Euclidean distance as the reference computes it: `sqrt((x - cx)^2 + (y - cy)^2)`.
fn distance(x: f64, y: f64, cx: f64, cy: f64) -> f64 {
    let dx = x - cx;
    let dy = y - cy;
    (dx * dx + dy * dy).sqrt()
}

/// A published split of the Yin-Yang data set, bit-identical to the reference generator's.
///
/// ```
/// use spikeloop_data::{yin_yang, Split};
///
/// let train = yin_yang(Split::Train);
/// assert_eq!(train.class_counts(), [1681, 1702, 1617]);
/// assert_eq!(train.sample(0)[..2], [0.6803075385877797, 0.450499251969543]);
/// ```
pub fn yin_yang(split: Split) -> Dataset {
    let (size, seed) = split_size_and_seed(split);
    yin_yang_with(size, seed, R_SMALL, R_BIG)
}

/// `size` Yin-Yang samples drawn with `numpy.random.RandomState(seed)` and the given geometry,
/// as the reference's `YinYangDataset(r_small, r_big, size, seed)`.
///
/// Features are `[x, y, 1 - x, 1 - y]` with `x, y` in `[0, 2 r_big)`; with the reference
/// `r_big = 0.5` they lie in `[0, 1]`.
///
/// # Panics
///
/// Panics unless `0 < r_small < r_big` and both are finite: otherwise some class has no area
/// and rejection sampling would never finish.
pub fn yin_yang_with(size: usize, seed: u32, r_small: f64, r_big: f64) -> Dataset {
    assert!(
        r_small.is_finite() && r_big.is_finite() && r_small > 0.0 && r_small < r_big,
        "yin_yang_with: need 0 < r_small < r_big (finite), got r_small = {r_small}, r_big = {r_big}"
    );
    let mut rng = Mt19937::new(seed);
    let mut features = Vec::with_capacity(size * N_FEATURES);
    let mut labels = Vec::with_capacity(size);
    for _ in 0..size {
        // Drawing the goal first keeps the classes balanced despite their different areas.
        let goal = rng.randint(3);
        let (x, y, class) = loop {
            // The reference computes `rand(2) * 2. * r_big`, left to right.
            let x = rng.random_sample() * 2.0 * r_big;
            let y = rng.random_sample() * 2.0 * r_big;
            if distance(x, y, r_big, r_big) > r_big {
                continue;
            }
            let class = which_class(x, y, r_small, r_big);
            if u64::from(class) == goal {
                break (x, y, class);
            }
        };
        features.extend_from_slice(&[x, y, 1.0 - x, 1.0 - y]);
        labels.push(class);
    }
    let features = ndarray::Array2::from_shape_vec((size, N_FEATURES), features)
        .unwrap_or_else(|_| unreachable!("{N_FEATURES} features were drawn for each sample"));
    Dataset {
        name: NAME.to_owned(),
        n_classes: CLASS_NAMES.len(),
        class_names: CLASS_NAMES.iter().map(|&name| name.to_owned()).collect(),
        features,
        labels,
    }
}
