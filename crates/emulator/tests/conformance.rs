//! The backend conformance suite on the emulated chip, noise-free and with its default noise.

use spikeloop_backend_testkit::backend_conformance;
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig, NoiseConfig};

fn chip(noise: NoiseConfig) -> EmulatorBackend {
    EmulatorBackend::new(EmulatorConfig {
        noise,
        ..EmulatorConfig::default()
    })
    .unwrap_or_else(|e| panic!("emulator: {e}"))
}

backend_conformance!(noise_free_chip, noise_free: true, chip(NoiseConfig::none()));
backend_conformance!(default_chip, noise_free: false, chip(NoiseConfig::default()));
