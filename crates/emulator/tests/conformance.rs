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

/// A chip too small for the fixture network (3 inputs -> 8 -> 2) in one piece: 2 halves of 4
/// circuits and 8 rows (4 sources per circuit), so the hidden layer is one part and the output
/// layer (9 sources, 3 merged circuits per neuron) another.
fn small_chip(noise: NoiseConfig) -> spikeloop_backend::PartitionedBackend {
    let mut config = EmulatorConfig {
        noise,
        ..EmulatorConfig::default()
    };
    config.geometry.neurons_per_half = 4;
    config.geometry.rows_per_half = 8;
    config.geometry.max_merged_circuits = 4;
    let chip = EmulatorBackend::new(config).unwrap_or_else(|e| panic!("emulator: {e}"));
    spikeloop_backend::PartitionedBackend::new(
        Box::new(chip),
        spikeloop_backend::PartitionRules::BRAINSCALES2,
    )
    .unwrap_or_else(|e| panic!("partitioned: {e}"))
}

backend_conformance!(
    partitioned_noise_free_chip,
    noise_free: true,
    small_chip(NoiseConfig::none())
);
backend_conformance!(
    partitioned_default_chip,
    noise_free: false,
    small_chip(NoiseConfig::default())
);

#[test]
fn the_fixture_network_runs_in_two_parts_on_the_small_chip() {
    use spikeloop_backend::Backend;
    let mut b = small_chip(NoiseConfig::none());
    b.configure(&spikeloop_backend_testkit::network())
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = b.plan().unwrap_or_else(|| panic!("planned"));
    assert_eq!(plan.runs_per_sample(), 2);
    assert_eq!(plan.parts[1].layers[0].circuits_per_neuron, 3);
}
