//! Training in the loop through the device protocol, in process: the virtual device behind the
//! serial backend's host code over an in-memory link. Bit-identical to training on the emulated
//! chip directly, and resumable through the protocol (the noise position travels with it).
//! The same over a pseudo-terminal, with `spikeloop device` as a separate process, is in
//! `crates/cli/tests/device.rs`.

use spikeloop_emulator::{EmulatorBackend, EmulatorConfig};
use spikeloop_tests::{small_config, small_data};
use spikeloop_trainer::Model;
use spikeloop_trainer::train::{self, Checkpoint, Silent};
use spikeloop_transport::host::InProcessBackend;
use spikeloop_transport::{DeviceBackend, DeviceConfig, HostConfig};

fn chip(chip_seed: u64) -> EmulatorBackend {
    EmulatorBackend::new(EmulatorConfig {
        chip_seed,
        ..EmulatorConfig::default()
    })
    .expect("emulator")
}

fn device(chip_seed: u64) -> InProcessBackend {
    DeviceBackend::in_process(
        chip(chip_seed),
        DeviceConfig::default(),
        HostConfig::default(),
    )
    .expect("virtual device")
}

fn flat(model: &Model) -> Vec<u64> {
    model.weight_bits()
}

#[test]
fn training_through_the_protocol_resumes_to_the_identical_result() {
    // Removed when the test ends, passed or failed.
    let scratch = tempfile::Builder::new()
        .prefix("spikeloop-device-resume-")
        .tempdir()
        .expect("temp dir");
    let dir = scratch.path().to_path_buf();
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ckpt = dir.join("checkpoint.json");
    let config = small_config(3, 8);
    let data = small_data(&config, 300);

    let state = train::start(
        &config,
        &data,
        spikeloop_backend::Substrate::new("emulator", "emulator"),
    )
    .expect("start");
    let in_process = train::run(state, &data, &mut chip(6), None, &mut Silent).expect("train");

    let state = train::start(
        &config,
        &data,
        spikeloop_backend::Substrate::new("device", "device"),
    )
    .expect("start");
    let straight = train::run(state, &data, &mut device(6), None, &mut Silent).expect("train");
    assert_eq!(flat(&straight.model), flat(&in_process.model));
    assert_eq!(straight.test_accuracy, in_process.test_accuracy);

    let mut short = config.clone();
    short.training.epochs = 1;
    let state = train::start(
        &short,
        &data,
        spikeloop_backend::Substrate::new("device", "device"),
    )
    .expect("start");
    train::run(state, &data, &mut device(6), Some(&ckpt), &mut Silent).expect("first part");
    let mut state = Checkpoint::load(&ckpt).expect("checkpoint");
    assert!(
        state.noise_position.is_some(),
        "the device reports its noise position"
    );
    state.config.training.epochs = 3;
    // A fresh device, as after a reconnect: the checkpoint brings the noise position back.
    let resumed =
        train::run(state, &data, &mut device(6), Some(&ckpt), &mut Silent).expect("resume");
    assert_eq!(flat(&straight.model), flat(&resumed.model));
    assert_eq!(straight.test_accuracy, resumed.test_accuracy);
    std::fs::remove_dir_all(&dir).ok();
}
