//! Image data sets as the founding study used them: MNIST and Fashion-MNIST from IDX files,
//! and the 8x8 UCI handwritten digits that ship with this crate.
//!
//! Pixels become features so that the trainer's linear encoding `t = early + (late - early) v`
//! with `early = 0.15` and `late = 2.0` is the study's `t = 0.15 + 1.85 (1 - p/256) tau_s`:
//! a pixel of intensity `p` (0..=255) is the feature `v = 1 - p/256`, so the brightest pixels
//! spike first and every pixel spikes. Down-scaling to 16x16, as the reference hardware
//! experiments did, crops the centre 24x24 pixels and averages each output pixel's 1.5 x 1.5
//! input pixels by their overlap (an area resize).

use std::ops::Range;
use std::path::Path;

use ndarray::Array2;

use crate::idx::{self, Images};
use crate::{DataError, DataOptions, Dataset, DatasetKind, Split};

/// The class names of Fashion-MNIST, by label.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Where Debian's `dataset-fashion-mnist` package puts its IDX files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// The study's training images: of a training file of 60,000 images the first 50,000 train and
/// the last 10,000 validate.
const STUDY_TRAIN: usize = 50_000;

/// How images become features.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resolution {
    /// Every pixel of the file.
    #[default]
    Full,
    /// The centre 24x24 pixels resized to 16x16 (for 28x28 images).
    Down16,
}

/// The training and validation ranges of a training file of `n` images: the study's 50,000 and
/// 10,000 for 60,000 images; otherwise the last `validation` images (a sixth by default)
/// validate.
pub fn training_split(
    n: usize,
    validation: Option<usize>,
) -> Result<(Range<usize>, Range<usize>), String> {
    let v = match validation {
        Some(v) => v,
        None if n == 60_000 => n - STUDY_TRAIN,
        None => n / 6,
    };
    if v == 0 || v >= n {
        let allowed = if n < 2 {
            "too few to split into training and validation".to_owned()
        } else {
            format!("allowed 1 to {} (at least one image must train)", n - 1)
        };
        return Err(match validation {
            Some(v) => format!(
                "data.validation = {v} (--validation), but the training file holds {n} images: {allowed}"
            ),
            None => format!(
                "the training file holds {n} images, too few to keep a sixth for validation: give data.validation (--validation N), {allowed}"
            ),
        });
    }
    Ok((0..n - v, n - v..n))
}

/// The 16x16 image of a 28x28 (or larger) one: centre 24x24 crop, then area resize; pixel
/// intensities as averages (0..=255).
pub fn down16(image: &[u8], rows: usize, columns: usize) -> Vec<f64> {
    const CROP: usize = 24;
    const OUT: usize = 16;
    let (top, left) = ((rows - CROP) / 2, (columns - CROP) / 2);
    let scale = CROP as f64 / OUT as f64;
    // Overlap of output cell [k, k+1) * scale with input pixel [i, i+1), per axis.
    let overlap = |k: usize, i: usize| {
        let (a, b) = (k as f64 * scale, (k + 1) as f64 * scale);
        (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0)
    };
    let mut out = vec![0.0; OUT * OUT];
    for (oy, row) in out.chunks_mut(OUT).enumerate() {
        for (ox, cell) in row.iter_mut().enumerate() {
            let mut sum = 0.0;
            for iy in (oy * 3 / 2)..((oy + 1) * 3).div_ceil(2) {
                let wy = overlap(oy, iy);
                for ix in (ox * 3 / 2)..((ox + 1) * 3).div_ceil(2) {
                    let p = f64::from(image[(top + iy) * columns + left + ix]);
                    sum += wy * overlap(ox, ix) * p;
                }
            }
            *cell = sum / (scale * scale);
        }
    }
    out
}

/// The feature of a blank pixel (intensity 0): what a shifted image is filled with.
pub const BLANK: f64 = 1.0;

/// `image` (features of a `side` x `side` image, row by row) translated by `dx` columns to the
/// right and `dy` rows down, appended to `out`; pixels shifted in from outside are blank.
/// A shift of `side` or more in either direction leaves a blank image.
pub fn shift_into(image: &[f64], side: usize, dx: isize, dy: isize, out: &mut Vec<f64>) {
    debug_assert_eq!(image.len(), side * side);
    let source = |i: usize, d: isize| i.checked_add_signed(-d).filter(|&j| j < side);
    for y in 0..side {
        let row = source(y, dy);
        out.extend((0..side).map(|x| match (row, source(x, dx)) {
            (Some(sy), Some(sx)) => image[sy * side + sx],
            _ => BLANK,
        }));
    }
}

/// The features of an image of intensities `p` (0..=255): `1 - p/256`.
fn features(intensities: impl Iterator<Item = f64>) -> impl Iterator<Item = f64> {
    intensities.map(|p| 1.0 - p / 256.0)
}

/// A data set of the images `range` of `images` with their `labels`.
pub fn dataset(
    name: &str,
    class_names: &[&str],
    images: &Images,
    labels: &[u8],
    range: Range<usize>,
    resolution: Resolution,
) -> Result<Dataset, DataError> {
    let n_features = match resolution {
        Resolution::Full => images.rows * images.columns,
        Resolution::Down16 => {
            if images.rows < 24 || images.columns < 24 {
                return Err(DataError::Malformed {
                    name: name.into(),
                    reason: format!(
                        "{}x{} images cannot be down-scaled to 16x16 (a 24x24 centre crop is needed)",
                        images.rows, images.columns
                    ),
                });
            }
            256
        }
    };
    let mut values = Vec::with_capacity(range.len() * n_features);
    for i in range.clone() {
        let image = images.image(i);
        match resolution {
            Resolution::Full => values.extend(features(image.iter().map(|&p| f64::from(p)))),
            Resolution::Down16 => values.extend(features(
                down16(image, images.rows, images.columns).into_iter(),
            )),
        }
    }
    let features = Array2::from_shape_vec((range.len(), n_features), values).map_err(|e| {
        DataError::Malformed {
            name: name.into(),
            reason: e.to_string(),
        }
    })?;
    let data = Dataset {
        name: name.into(),
        n_classes: class_names.len(),
        class_names: class_names.iter().map(|c| (*c).to_string()).collect(),
        features,
        labels: labels[range].iter().map(|&l| u32::from(l)).collect(),
    };
    data.validate()?;
    Ok(data)
}

/// Images with one label each.
pub type Labelled = (Images, Vec<u8>);

/// The training and test files of an MNIST-style directory:
/// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
/// `t10k-labels-idx1-ubyte`, each plain or `.gz`.
pub fn read_mnist_dir(dir: &Path, classes: usize) -> Result<(Labelled, Labelled), DataError> {
    let pair = |prefix: &str| {
        idx::read_pair(
            &idx::find(dir, &format!("{prefix}-images-idx3-ubyte"))?,
            &idx::find(dir, &format!("{prefix}-labels-idx1-ubyte"))?,
            classes,
        )
    };
    Ok((pair("train")?, pair("t10k")?))
}

/// The class names of MNIST, by label.
const DIGIT_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The directory an image data set is read from: the options' `dir`, or for Fashion-MNIST
/// Debian's location when it holds the files.
fn directory(kind: DatasetKind, options: &DataOptions) -> Result<std::path::PathBuf, DataError> {
    if let Some(d) = &options.dir {
        return Ok(d.clone());
    }
    let debian = Path::new(DEBIAN_FASHION_MNIST);
    if kind == DatasetKind::FashionMnist && debian.is_dir() {
        return Ok(debian.to_path_buf());
    }
    let hint = if kind == DatasetKind::FashionMnist {
        format!(
            "give --data-dir DIR, or install Debian's dataset-fashion-mnist (it puts them in {DEBIAN_FASHION_MNIST})"
        )
    } else {
        "give --data-dir DIR (MNIST is a file set users bring)".to_string()
    };
    Err(DataError::File {
        path: std::path::PathBuf::from(kind.as_str()),
        reason: format!(
            "no directory of IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte): {hint}"
        ),
    })
}

/// A split of MNIST or Fashion-MNIST as `options` say: the training file gives train and
/// validation ([`training_split`]), the `t10k` file the test split.
pub fn load_split(
    kind: DatasetKind,
    split: Split,
    options: &DataOptions,
) -> Result<Dataset, DataError> {
    let dir = directory(kind, options)?;
    let classes: &[&str] = if kind == DatasetKind::FashionMnist {
        &FASHION_CLASSES
    } else {
        &DIGIT_CLASSES
    };
    let prefix = if split == Split::Test {
        "t10k"
    } else {
        "train"
    };
    let (images, labels) = idx::read_pair(
        &idx::find(&dir, &format!("{prefix}-images-idx3-ubyte"))?,
        &idx::find(&dir, &format!("{prefix}-labels-idx1-ubyte"))?,
        classes.len(),
    )?;
    let range =
        match split {
            Split::Test => 0..images.count,
            _ => {
                let (train, validation) = training_split(images.count, options.validation)
                    .map_err(|reason| DataError::Split {
                        name: kind.as_str().into(),
                        reason,
                    })?;
                if split == Split::Train {
                    train
                } else {
                    validation
                }
            }
        };
    let resolution = if options.downscale_16 {
        Resolution::Down16
    } else {
        Resolution::Full
    };
    dataset(kind.as_str(), classes, &images, &labels, range, resolution)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_study_split_and_a_sixth_otherwise() {
        assert_eq!(
            training_split(60_000, None),
            Ok((0..50_000, 50_000..60_000))
        );
        assert_eq!(training_split(600, None), Ok((0..500, 500..600)));
        assert_eq!(training_split(600, Some(100)), Ok((0..500, 500..600)));
        let e = training_split(5, None).expect_err("a sixth of 5");
        assert!(e.contains("--validation N") && e.contains("1 to 4"), "{e}");
        let e = training_split(10, Some(10)).expect_err("all of them");
        assert!(
            e.contains("data.validation = 10") && e.contains("1 to 9"),
            "{e}"
        );
        assert!(
            training_split(1, Some(1))
                .expect_err("one")
                .contains("too few")
        );
    }

    #[test]
    fn down_scaling_averages_the_centre_by_area() {
        // A uniform image stays uniform; the 2-pixel border is cropped away.
        let mut image = vec![100u8; 28 * 28];
        image[..28].fill(255); // the top row, outside the crop
        let small = down16(&image, 28, 28);
        assert_eq!(small.len(), 256);
        assert!(small.iter().all(|&v| (v - 100.0).abs() < 1e-9), "{small:?}");
        // One bright input pixel at the crop's corner: output (0, 0) covers it fully
        // (1.5 x 1.5 cell, overlap 1 x 1), so it holds 255 / 2.25.
        let mut image = vec![0u8; 28 * 28];
        image[2 * 28 + 2] = 255;
        let small = down16(&image, 28, 28);
        assert!((small[0] - 255.0 / 2.25).abs() < 1e-9);
        assert!(small[1..].iter().all(|&v| v == 0.0));
        // The pixel shared by two cells (input 1 of the crop) splits half and half.
        let mut image = vec![0u8; 28 * 28];
        image[2 * 28 + 3] = 255;
        let small = down16(&image, 28, 28);
        assert!((small[0] - 0.5 * 255.0 / 2.25).abs() < 1e-9);
        assert!((small[1] - 0.5 * 255.0 / 2.25).abs() < 1e-9);
    }

    #[test]
    fn shifted_images_move_and_fill_with_blank() {
        // 3 x 3 image with features 0..9.
        let image: Vec<f64> = (0..9).map(f64::from).collect();
        let shifted = |dx, dy| {
            let mut out = Vec::new();
            shift_into(&image, 3, dx, dy, &mut out);
            out
        };
        assert_eq!(shifted(0, 0), image);
        let b = BLANK;
        assert_eq!(shifted(1, 0), [b, 0.0, 1.0, b, 3.0, 4.0, b, 6.0, 7.0]);
        assert_eq!(shifted(0, -1), [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, b, b, b]);
        assert_eq!(shifted(-2, 1), [b, b, b, 2.0, b, b, 5.0, b, b]);
        assert_eq!(shifted(3, 0), [b; 9]);
    }
}
