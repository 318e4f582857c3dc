//! The backend conformance suite through the protocol: the virtual device serving the emulated
//! chip in this process, driven by the same host code as a serial device.

use spikeloop_backend_testkit::backend_conformance;
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig, NoiseConfig};
use spikeloop_transport::{DeviceBackend, DeviceConfig, HostConfig};

fn device(noise: NoiseConfig) -> DeviceBackend<tokio::io::DuplexStream> {
    let chip = EmulatorBackend::new(EmulatorConfig {
        noise,
        ..EmulatorConfig::default()
    })
    .unwrap_or_else(|e| panic!("emulator: {e}"));
    DeviceBackend::in_process(chip, DeviceConfig::default(), HostConfig::default())
        .unwrap_or_else(|e| panic!("in-process device: {e}"))
}

backend_conformance!(noise_free_device, noise_free: true, device(NoiseConfig::none()));
backend_conformance!(default_device, noise_free: false, device(NoiseConfig::default()));
