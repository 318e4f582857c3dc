//! Parsing and printing of data set and split names.

use spikeloop_data::{DataError, DatasetKind, Split};

#[test]
fn splits_parse_from_their_names_and_aliases() {
    for (text, split) in [
        ("train", Split::Train),
        ("validation", Split::Validation),
        ("val", Split::Validation),
        ("test", Split::Test),
        ("Test", Split::Test),
    ] {
        assert_eq!(text.parse::<Split>().ok(), Some(split), "{text}");
    }
}

#[test]
fn splits_display_their_canonical_names_which_parse_back() {
    for &split in Split::ALL {
        assert_eq!(split.to_string().parse::<Split>().ok(), Some(split));
    }
    assert_eq!(Split::Validation.to_string(), "validation");
}

#[test]
fn unknown_split_names_the_bad_value_and_the_allowed_ones() {
    let error = "training".parse::<Split>().err();
    assert!(matches!(&error, Some(DataError::UnknownSplit { name, .. }) if name == "training"));
    let message = error.map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        message,
        r#"unknown split "training"; allowed: train, validation, val, test"#
    );
}

#[test]
fn dataset_kinds_parse_from_their_spellings() {
    for text in ["yin-yang", "yinyang", "yin_yang", "Yin-Yang"] {
        assert_eq!(
            text.parse::<DatasetKind>().ok(),
            Some(DatasetKind::YinYang),
            "{text}"
        );
    }
    assert_eq!(DatasetKind::YinYang.to_string(), "yin-yang");
}

#[test]
fn unknown_dataset_names_the_bad_value_and_the_allowed_ones() {
    let error = "cifar".parse::<DatasetKind>().err();
    assert!(matches!(&error, Some(DataError::UnknownDataset { name, .. }) if name == "cifar"));
    let message = error.map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        message,
        r#"unknown data set "cifar"; allowed: yin-yang, yinyang, yin_yang, digits, mnist, fashion-mnist"#
    );
}

#[test]
fn every_built_in_kind_loads_every_split_as_a_valid_data_set() {
    // MNIST and Fashion-MNIST are read from files (tests in images.rs).
    for &kind in [DatasetKind::YinYang, DatasetKind::Digits].iter() {
        for &split in Split::ALL {
            let data = kind.load(split).expect("built-in data sets load");
            assert_eq!(data.name, kind.to_string());
            data.validate().expect("built-in data sets are valid");
        }
    }
}
