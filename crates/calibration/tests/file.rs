//! Calibration files: what is saved loads back and sets the chip's codes; a file for another
//! chip, of another version or kind, damaged, truncated, unsealed or out of range is refused
//! with a message that says which.

use std::path::{Path, PathBuf};

use spikeloop_backend::Backend;
use spikeloop_calibration::{
    CalibrationFile, CalibrationFileError, ChipCheck, Options, Targets, calibrate,
};
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig};

fn small_chip(seed: u64) -> EmulatorBackend {
    let mut config = EmulatorConfig {
        chip_seed: seed,
        ..EmulatorConfig::default()
    };
    config.geometry.neurons_per_half = 4;
    EmulatorBackend::new(config).expect("emulator")
}

fn quick() -> Options {
    Options {
        threshold_repeats: 2,
        tau_repeats: 1,
        report_repeats: 1,
        ..Options::default()
    }
}

/// A calibration of chip `seed`, saved in `dir`.
fn saved(dir: &Path, seed: u64) -> (PathBuf, CalibrationFile) {
    let mut chip = small_chip(seed);
    let cal = calibrate(&mut chip, &Targets::default(), &quick()).expect("calibrates");
    let file = CalibrationFile::new(
        &cal,
        &chip.capabilities().name,
        &Targets::default(),
        &quick(),
    );
    let path = dir.join(format!("chip{seed}.json"));
    file.save(&path).expect("saves");
    (path, file)
}

fn json(file: &CalibrationFile) -> serde_json::Value {
    let mut v = serde_json::to_value(file).expect("serialises");
    v.as_object_mut().map(|o| o.remove("checksum"));
    v
}

fn refusal(path: &Path) -> String {
    match CalibrationFile::load(path) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_saved_calibration_loads_back_and_sets_its_chip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, file) = saved(dir.path(), 1);
    let loaded = CalibrationFile::load(&path).expect("loads");
    assert_eq!(json(&loaded), json(&file));
    assert!(loaded.checksum.is_some());
    let mut chip = small_chip(1);
    loaded
        .apply(&mut chip, ChipCheck::SameChip, &path)
        .expect("applies to its own chip");
    for c in &loaded.codes {
        assert_eq!(
            chip.parameter_codes(c.circuit).expect("reads"),
            Some(c.codes)
        );
    }
}

#[test]
fn another_chip_is_refused_unless_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, file) = saved(dir.path(), 1);
    let mut other = small_chip(2);
    match file.apply(&mut other, ChipCheck::SameChip, &path) {
        Err(e @ CalibrationFileError::OtherChip { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("emulator chip 1") && m.contains("emulator chip 2"),
                "{m}"
            );
        }
        other => panic!("expected OtherChip, got {other:?}"),
    }
    assert_eq!(
        other.parameter_codes(0).expect("reads"),
        None,
        "nothing written"
    );
    file.apply(&mut other, ChipCheck::AnyChip, &path)
        .expect("a stale calibration on purpose");
    assert_eq!(
        other.parameter_codes(file.codes[0].circuit).expect("reads"),
        Some(file.codes[0].codes)
    );
}

#[test]
fn damaged_truncated_and_foreign_files_are_refused_by_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, file) = saved(dir.path(), 3);
    let text = std::fs::read_to_string(&path).expect("reads");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("writes");
        p
    };
    // A changed digit in a code.
    let changed = text.replacen("\"leak\": ", "\"leak\": 1", 1);
    assert!(refusal(&write("changed.json", &changed)).contains("checksum"));
    // Cut off half way.
    let cut = &text[..text.len() / 2];
    assert!(refusal(&write("cut.json", cut)).contains("not JSON"));
    // Another version, another kind, no checksum.
    let v2 = text.replacen("\"version\": 1", "\"version\": 2", 1);
    assert!(refusal(&write("v2.json", &v2)).contains("version 2 is not supported"));
    let model = text.replacen("spikeloop-calibration", "spikeloop-model", 1);
    assert!(refusal(&write("model.json", &model)).contains("\"spikeloop-model\""));
    let mut bare = serde_json::to_value(&file).expect("serialises");
    bare.as_object_mut().map(|o| o.remove("checksum"));
    let unsealed = write("unsealed.json", &bare.to_string());
    assert!(refusal(&unsealed).contains("no checksum"));
    // NaN is not JSON; a target the checksum covers but no calibration can have.
    let nan = text.replacen("\"tau_m_us\": 6.0", "\"tau_m_us\": NaN", 1);
    assert!(refusal(&write("nan.json", &nan)).contains("not JSON"));
    let mut bad = file.clone();
    bad.targets.tau_m_us = -6.0;
    let sealed = spikeloop_files::seal(&bad).expect("seals");
    let negative = write(
        "negative.json",
        &serde_json::to_string(&sealed).expect("serialises"),
    );
    assert!(refusal(&negative).contains("tau_m_us = -6"));
    let mut bad = file.clone();
    bad.codes[1].codes.tau_s = 1024;
    let sealed = spikeloop_files::seal(&bad).expect("seals");
    let out_of_range = write(
        "range.json",
        &serde_json::to_string(&sealed).expect("serialises"),
    );
    let m = refusal(&out_of_range);
    let range = format!("0..={}", spikeloop_backend::analog::CODE_MAX);
    assert!(m.contains("tau_s code 1024") && m.contains(&range), "{m}");
    // Every message names the file.
    assert!(refusal(&out_of_range).contains("range.json"));
}

#[test]
fn a_failed_save_keeps_the_file_that_was_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, file) = saved(dir.path(), 1);
    let before = std::fs::read(&path).expect("reads");
    let missing = dir.path().join("no such dir").join("c.json");
    assert!(file.save(&missing).is_err());
    assert_eq!(std::fs::read(&path).expect("reads"), before);
}

#[test]
fn the_repository_s_targets_file_holds_the_default_targets() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../calibration/targets.toml"
    );
    let text = std::fs::read_to_string(path).expect("calibration/targets.toml");
    let targets: Targets = toml::from_str(&text).expect("valid targets");
    assert_eq!(targets, Targets::default());
}
