//! Yin-Yang splits against the reference generator (expected values printed by numpy running
//! github.com/lkriener/yin_yang_data_set's `YinYangDataset`).

use spikeloop_data::{Dataset, Split, yin_yang, yin_yang_with};

/// FNV-1a over the little-endian bytes of every feature's bit pattern, in storage order.
fn feature_hash(data: &Dataset) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for value in &data.features {
        for byte in value.to_bits().to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// FNV-1a over the little-endian bytes of every label (as `u32`), in order.
fn label_hash(data: &Dataset) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for label in &data.labels {
        for byte in label.to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

fn bits(sample: &[f64]) -> Vec<u64> {
    sample.iter().map(|v| v.to_bits()).collect()
}

struct Expected {
    split: Split,
    len: usize,
    class_counts: [usize; 3],
    /// First, second and last sample: feature bit patterns and label.
    samples: [(usize, [u64; 4], u32); 3],
    feature_hash: u64,
    label_hash: u64,
}

const EXPECTED: [Expected; 3] = [
    Expected {
        split: Split::Train,
        len: 5000,
        class_counts: [1681, 1702, 1617],
        samples: [
            (
                0,
                [
                    0x3fe5c51450ae9de0,
                    0x3fdcd4fad08539c4,
                    0x3fd475d75ea2c440,
                    0x3fe1958297bd631e,
                ],
                2,
            ),
            (
                1,
                [
                    0x3fb9010a27637b70,
                    0x3fe5e53ca8f6cf61,
                    0x3fecdfdebb139092,
                    0x3fd43586ae12613e,
                ],
                1,
            ),
            (
                4999,
                [
                    0x3fe89c4d1458e203,
                    0x3fe2d3ac2bedbf80,
                    0x3fcd8ecbae9c77f4,
                    0x3fda58a7a8248100,
                ],
                2,
            ),
        ],
        feature_hash: 0x7fedfab26921fc08,
        label_hash: 0xbe58e3908f2fd297,
    },
    Expected {
        split: Split::Validation,
        len: 1000,
        class_counts: [316, 336, 348],
        samples: [
            (
                0,
                [
                    0x3fe5c740742f33be,
                    0x3fd48ad3fd6a1ea2,
                    0x3fd4717f17a19884,
                    0x3fe5ba96014af0af,
                ],
                0,
            ),
            (
                1,
                [
                    0x3fe5647b12cfd86a,
                    0x3fed5bbb9755f423,
                    0x3fd53709da604f2c,
                    0x3fb5222345505ee8,
                ],
                1,
            ),
            (
                999,
                [
                    0x3fe6be16840556a5,
                    0x3fe9c06028ff6098,
                    0x3fd283d2f7f552b6,
                    0x3fc8fe7f5c027da0,
                ],
                1,
            ),
        ],
        feature_hash: 0x223a18b10d36e632,
        label_hash: 0xd351198f354d3305,
    },
    Expected {
        split: Split::Test,
        len: 1000,
        class_counts: [350, 316, 334],
        samples: [
            (
                0,
                [
                    0x3fcdf6e0fe77e0e4,
                    0x3fd9b5dcab9967b6,
                    0x3fe88247c06207c7,
                    0x3fe32511aa334c25,
                ],
                2,
            ),
            (
                1,
                [
                    0x3fe80ae3293af921,
                    0x3fddf7af78b6999c,
                    0x3fcfd4735b141b7c,
                    0x3fe1042843a4b332,
                ],
                2,
            ),
            (
                999,
                [
                    0x3fd5038850813b78,
                    0x3fd8f57b6ece295c,
                    0x3fe57e3bd7bf6244,
                    0x3fe385424898eb52,
                ],
                1,
            ),
        ],
        feature_hash: 0x679bae5273777e19,
        label_hash: 0xef59f791cd185e15,
    },
];

#[test]
fn splits_have_the_published_sizes_and_class_counts() {
    for expected in &EXPECTED {
        let data = yin_yang(expected.split);
        assert_eq!(data.len(), expected.len, "{}", expected.split);
        assert_eq!(
            data.class_counts(),
            expected.class_counts,
            "{}",
            expected.split
        );
    }
}

#[test]
fn first_and_last_samples_are_bit_identical_to_numpy() {
    for expected in &EXPECTED {
        let data = yin_yang(expected.split);
        for (index, features, label) in expected.samples {
            assert_eq!(
                bits(data.sample(index)),
                features,
                "{} #{index}",
                expected.split
            );
            assert_eq!(data.labels[index], label, "{} #{index}", expected.split);
        }
    }
}

#[test]
fn every_feature_and_label_is_bit_identical_to_numpy() {
    for expected in &EXPECTED {
        let data = yin_yang(expected.split);
        assert_eq!(
            feature_hash(&data),
            expected.feature_hash,
            "{}",
            expected.split
        );
        assert_eq!(label_hash(&data), expected.label_hash, "{}", expected.split);
    }
}

#[test]
fn first_training_sample_has_the_published_coordinates() {
    let train = yin_yang(Split::Train);
    assert_eq!(
        train.sample(0)[..2],
        [0.6803075385877797, 0.450499251969543]
    );
    assert_eq!(
        train.sample(1)[..2],
        [0.09767211400638387, 0.6842330265121569]
    );
}

#[test]
fn splits_are_the_reference_generator_with_their_seeds() {
    assert_eq!(yin_yang(Split::Test), yin_yang_with(1000, 40, 0.1, 0.5));
    let data = yin_yang_with(10, 7, 0.1, 0.5);
    assert_eq!((data.len(), data.features.len()), (10, 40));
    assert_eq!(data.class_names, ["yin", "yang", "dot"]);
}

#[test]
fn mirrored_features_are_one_minus_the_coordinates() {
    let data = yin_yang(Split::Validation);
    for i in 0..data.len() {
        let s = data.sample(i);
        assert_eq!((s[2], s[3]), (1.0 - s[0], 1.0 - s[1]));
    }
}

#[test]
fn empty_data_set_is_valid() {
    let data = yin_yang_with(0, 1, 0.1, 0.5);
    assert!(data.is_empty());
    assert_eq!(data.class_counts(), [0, 0, 0]);
    assert!(data.validate().is_ok());
}

#[test]
fn validate_reports_what_does_not_fit() {
    let mut data = yin_yang_with(3, 1, 0.1, 0.5);
    data.labels[2] = 3;
    let message = data.validate().map_err(|e| e.to_string()).err();
    assert_eq!(
        message.as_deref(),
        Some(r#"data set "yin-yang" is malformed: label of sample 2 is 3, not below 3 classes"#)
    );
    let mut data = yin_yang_with(3, 1, 0.1, 0.5);
    data.features[[1, 1]] = 1.5;
    let message = data.validate().map_err(|e| e.to_string()).err();
    assert_eq!(
        message.as_deref(),
        Some(r#"data set "yin-yang" is malformed: feature 1 of sample 1 is 1.5, outside [0, 1]"#)
    );
    let mut data = yin_yang_with(3, 1, 0.1, 0.5);
    data.features = data.features.slice(ndarray::s![..2, ..]).to_owned();
    assert!(data.validate().is_err());
}

#[test]
#[should_panic(expected = "need 0 < r_small < r_big")]
fn impossible_geometry_is_refused() {
    yin_yang_with(1, 1, 0.5, 0.5);
}
