//! IDX files and the image data sets: what a file states is what is read, plain or gzip; a
//! missing, truncated, mistyped or mismatched file is refused naming the file and what was
//! expected; the embedded digits split as documented.

use std::io::Write;
use std::path::{Path, PathBuf};

use spikeloop_data::images::{self, Resolution};
use spikeloop_data::{Split, digits, idx};

/// An IDX file of unsigned bytes with `shape` and `values`.
fn idx_bytes(shape: &[u32], values: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, shape.len() as u8];
    for d in shape {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(values);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

fn message(r: Result<impl std::fmt::Debug, spikeloop_data::DataError>) -> String {
    match r {
        Ok(v) => panic!("accepted: {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn idx_files_read_back_plain_or_gzip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pixels: Vec<u8> = (0..3 * 28 * 28).map(|i| (i % 251) as u8).collect();
    let plain = idx_bytes(&[3, 28, 28], &pixels);
    for (name, bytes) in [("a", plain.clone()), ("b.gz", gzip(&plain))] {
        let images = idx::read_images(&write(dir.path(), name, &bytes)).expect("reads");
        assert_eq!((images.count, images.rows, images.columns), (3, 28, 28));
        assert_eq!(images.pixels, pixels);
    }
    // A directory of the four MNIST files, some compressed.
    let labels = idx_bytes(&[3], &[7, 0, 9]);
    write(dir.path(), "train-images-idx3-ubyte.gz", &gzip(&plain));
    write(dir.path(), "train-labels-idx1-ubyte", &labels);
    write(dir.path(), "t10k-images-idx3-ubyte", &plain);
    write(dir.path(), "t10k-labels-idx1-ubyte.gz", &gzip(&labels));
    let ((train, train_labels), (test, _)) =
        images::read_mnist_dir(dir.path(), 10).expect("reads the directory");
    assert_eq!((train.count, test.count), (3, 3));
    let data = images::dataset(
        "mnist",
        &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        &train,
        &train_labels,
        1..3,
        Resolution::Full,
    )
    .expect("a data set");
    assert_eq!((data.len(), data.n_features()), (2, 784));
    assert_eq!(data.labels, vec![0, 9]);
    // The study's encoding: feature 1 - p/256.
    assert_eq!(data.sample(0)[0], 1.0 - f64::from(pixels[784]) / 256.0);
    let small = images::dataset(
        "mnist",
        &["a"; 10],
        &train,
        &train_labels,
        0..3,
        Resolution::Down16,
    )
    .expect("down-scaled");
    assert_eq!(small.n_features(), 256);
}

#[test]
fn bad_idx_files_are_named_with_what_was_expected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let full = idx_bytes(&[2, 28, 28], &[1; 2 * 784]);
    let m = message(idx::read_images(&write(d, "cut", &full[..1000])));
    assert!(
        m.contains("cut") && m.contains("truncated") && m.contains("1568 values"),
        "{m}"
    );
    let packed = gzip(&full);
    let m = message(idx::read_images(&write(
        d,
        "cut.gz",
        &packed[..packed.len() / 2],
    )));
    assert!(m.contains("cannot be decompressed"), "{m}");
    let m = message(idx::read_images(&write(
        d,
        "labels",
        &idx_bytes(&[2], &[1, 2]),
    )));
    assert!(
        m.contains("1 dimensions") && m.contains("images are type 0x08"),
        "{m}"
    );
    let m = message(idx::read_images(&write(d, "text", b"hello, world")));
    assert!(m.contains("not an IDX file"), "{m}");
    let m = message(idx::read_labels(
        &write(d, "big", &idx_bytes(&[2], &[3, 12])),
        10,
    ));
    assert!(m.contains("label 1 is 12; labels are 0..10"), "{m}");
    let images = write(d, "images", &full);
    let labels = write(d, "three", &idx_bytes(&[3], &[1, 2, 3]));
    let m = message(idx::read_pair(&images, &labels, 10));
    assert!(m.contains("3 labels") && m.contains("2 images"), "{m}");
    let m = message(images::read_mnist_dir(&d.join("nowhere"), 10));
    assert!(
        m.contains("train-images-idx3-ubyte") && m.contains("missing"),
        "{m}"
    );
}

#[test]
fn the_digits_split_as_documented() {
    let sizes: Vec<usize> = [Split::Train, Split::Validation, Split::Test]
        .iter()
        .map(|&s| digits(s).expect("digits").len())
        .collect();
    assert_eq!(sizes, vec![1257, 180, 360]);
    let test = digits(Split::Test).expect("digits");
    assert_eq!((test.n_features(), test.n_classes), (64, 10));
    // Every class is in every split, and the features are the study's `1 - p/256`.
    for s in [Split::Train, Split::Validation, Split::Test] {
        let d = digits(s).expect("digits");
        for c in 0..10 {
            assert!(d.labels.contains(&c), "{s:?} lacks class {c}");
        }
    }
    assert!(test.features.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert_eq!(
        "digits".parse::<spikeloop_data::DatasetKind>().ok(),
        Some(spikeloop_data::DatasetKind::Digits)
    );
}
