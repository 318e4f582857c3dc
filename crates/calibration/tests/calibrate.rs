//! Calibrating emulated chips through the Backend trait: the spread of every calibrated
//! parameter shrinks to the platform's acceptance criterion, the same seeds give the same
//! codes, and a backend without the abilities is refused by name.

use spikeloop_backend::{Backend, IdealBackend};
use spikeloop_calibration::{CalibrationError, Options, Targets, calibrate};
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig};

/// A small chip (2 x 16 circuits) with the default noise, so that the test stays fast.
fn small_chip(seed: u64) -> EmulatorBackend {
    let mut config = EmulatorConfig {
        chip_seed: seed,
        ..EmulatorConfig::default()
    };
    config.geometry.neurons_per_half = 16;
    EmulatorBackend::new(config).expect("emulator")
}

#[test]
fn calibrated_spread_is_at_most_three_tenths_of_the_uncalibrated() {
    for seed in [1, 2] {
        let mut chip = small_chip(seed);
        let cal =
            calibrate(&mut chip, &Targets::default(), &Options::default()).expect("calibrates");
        assert_eq!(cal.codes.len(), 32);
        assert_eq!(cal.parameters.len(), 6);
        assert_eq!(cal.chip_id, chip.chip_id());
        for p in &cal.parameters {
            let ratio = p.after.sd / p.before.sd;
            assert!(
                ratio <= 0.3,
                "chip {seed}, {}: SD {:.2} -> {:.2} mV (ratio {ratio:.2})",
                p.parameter.name(),
                p.before.sd,
                p.after.sd
            );
            assert!(
                (p.after.mean - p.target).abs() < 0.01 * p.target,
                "chip {seed}, {}: mean {:.1} mV, target {}",
                p.parameter.name(),
                p.after.mean,
                p.target
            );
        }
        assert!(cal.hardware_time_us > 0.0 && cal.writes > 0);
    }
}

#[test]
fn the_same_seeds_give_the_same_codes() {
    let run = || {
        let mut chip = small_chip(3);
        let options = Options {
            threshold_repeats: 2,
            report_repeats: 1,
            ..Options::default()
        };
        calibrate(&mut chip, &Targets::default(), &options)
            .expect("calibrates")
            .codes
    };
    assert_eq!(run(), run());
}

#[test]
fn through_the_device_protocol_the_calibration_is_the_same() {
    use spikeloop_transport::{DeviceBackend, DeviceConfig, HostConfig};
    let options = Options {
        threshold_repeats: 2,
        report_repeats: 1,
        ..Options::default()
    };
    let mut direct = small_chip(4);
    let in_process = calibrate(&mut direct, &Targets::default(), &options).expect("calibrates");
    let chip = small_chip(4);
    let config = DeviceConfig::serving(&chip);
    let mut device =
        DeviceBackend::in_process(chip, config, HostConfig::default()).expect("virtual device");
    let remote = calibrate(&mut device, &Targets::default(), &options).expect("calibrates");
    assert_eq!(remote.codes, in_process.codes);
    assert_eq!(remote.chip_id, in_process.chip_id);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (r, d) in remote.parameters.iter().zip(&in_process.parameters) {
        assert_eq!(
            bits(&r.achieved),
            bits(&d.achieved),
            "{}",
            r.parameter.name()
        );
    }
}

#[test]
fn a_backend_without_parameter_codes_is_refused_by_name() {
    let mut ideal = IdealBackend::new();
    match calibrate(&mut ideal, &Targets::default(), &Options::default()) {
        Err(e @ CalibrationError::Unsupported { .. }) => {
            assert!(e.to_string().contains("parameter codes"), "{e}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}
