//! `spikeloop device`: the emulated chip behind the wire protocol on a pseudo-terminal (the
//! virtual device), `spikeloop ports` and `spikeloop conformance`.
//!
//! The virtual device is a separate process that looks to a host exactly like a chip's firmware
//! on a USB serial port: it opens a pseudo-terminal, prints the path of its terminal side, and
//! serves whatever host opens that path, one after another, until it is killed. Its state (the
//! network, the noise position) stays across hosts like a powered board's; a host's `Hello`
//! resets the protocol as on a real device.

use std::io::Write;

use anyhow::Context;
use clap::Args;
use spikeloop_backend::Backend;
use spikeloop_emulator::EmulatorBackend;
use spikeloop_transport::DeviceConfig;
use spikeloop_transport::device::{Hangup, VirtualDevice, serve};

use crate::backend::EmulatorArgs;
use crate::pty::{Controller, IDLE_POLL, Terminal};

/// Options of `spikeloop device`.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// The emulated chip the device serves.
    #[command(flatten)]
    emulator: EmulatorArgs,
    /// Largest frame the device accepts, bytes (at least 256). A batch that does not fit one
    /// frame is sent as several runs, which draw different trial noise than one run would.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 18)]
    max_frame_size: usize,
    /// Also make the terminal reachable under this path: a symbolic link, removed again when
    /// the device stops (Ctrl-C, SIGTERM, SIGHUP). An existing path is replaced only when it is
    /// such a link left behind by a device that was killed (its terminal is gone); anything
    /// else is refused.
    #[arg(long, value_name = "PATH")]
    link: Option<std::path::PathBuf>,
    /// Calibration file of the served chip (written by `spikeloop calibrate`), applied before
    /// the device starts serving, as a board's firmware loads its calibration at power-up; a
    /// host may write other codes later [default: uncalibrated, until a host calibrates it].
    #[arg(long, value_name = "FILE")]
    calibration: Option<std::path::PathBuf>,
}

/// The virtual device's configuration for `chip`: its timing and rows are the chip's own (the
/// device derives them from the backend it serves), its identity names the chip, run seed and
/// noise preset, and its firmware version carries the fingerprint of the chip's complete
/// configuration (so a run started on one chip set-up is not resumed on another).
pub fn device_config(
    chip: &EmulatorBackend,
    max_frame_size: usize,
    calibration: Option<&spikeloop_calibration::CalibrationFile>,
) -> DeviceConfig {
    let c = chip.config();
    DeviceConfig {
        device_id: format!(
            "spikeloop-virtual-device (chip {}, run seed {}, noise {})",
            c.chip_seed,
            c.run_seed,
            c.noise_preset().unwrap_or("custom")
        ),
        firmware_version: format!(
            "virtual {} config {}{}",
            env!("CARGO_PKG_VERSION"),
            chip.substrate().fingerprint(),
            calibration
                .and_then(|f| f.checksum.as_deref())
                .map_or_else(String::new, |crc| format!(" calibration {crc}"))
        ),
        max_frame_size,
        ..DeviceConfig::serving(chip)
    }
}

pub fn run(args: DeviceArgs) -> anyhow::Result<()> {
    let mut chip = args.emulator.build()?;
    let calibration = match &args.calibration {
        Some(path) => {
            let file = spikeloop_calibration::CalibrationFile::load(path)?;
            file.apply(&mut chip, spikeloop_calibration::ChipCheck::SameChip, path)?;
            Some(file)
        }
        None => None,
    };
    let description = format!(
        "{}{}",
        chip.config().summary(),
        if calibration.is_some() {
            ", calibrated"
        } else {
            ""
        }
    );
    let config = device_config(&chip, args.max_frame_size, calibration.as_ref());
    let device_id = config.device_id.clone();
    let mut device = VirtualDevice::new(chip, config)?;

    let terminal = Terminal::open(args.link.as_deref(), || {})?;
    outln!("{}", terminal.path.display());
    std::io::stdout().flush().ok();
    errln!(
        "serving the {description} as device \"{device_id}\" on {}; use it with --device {} (stop with Ctrl-C)",
        terminal.path.display(),
        terminal.name().display()
    );
    // Hosts come and go on the terminal; the device serves one after another until it is
    // stopped, as a board that stays powered.
    let runtime = spikeloop_transport::host::runtime()?;
    let _entered = runtime.enter();
    let mut controller = Controller::new(&terminal)?;
    runtime
        .block_on(serve(
            &mut device,
            &mut controller,
            Hangup::AwaitNextHost { poll: IDLE_POLL },
        ))
        .context("could not serve the terminal")
}

/// `spikeloop ports`.
pub fn ports() -> anyhow::Result<()> {
    let ports = spikeloop_transport::host::available_ports()
        .map_err(|e| anyhow::anyhow!("could not list serial ports: {e}"))?;
    if ports.is_empty() {
        outln!(
            "no serial ports found (a device on USB shows up as /dev/ttyACM* or /dev/ttyUSB*; `spikeloop device` prints its own pseudo-terminal's path)"
        );
    }
    for p in ports {
        outln!("{}\t{}", p.path, p.description);
    }
    Ok(())
}

/// Options of `spikeloop conformance`.
#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// Serial port of the device to check (or the path `spikeloop device` prints).
    #[arg(long, value_name = "PATH")]
    device: String,
    /// Baud rate of the device's serial line (UART bridges; USB CDC devices ignore it).
    #[arg(long, value_name = "N", default_value_t = crate::backend::DEFAULT_BAUD, value_parser = clap::value_parser!(u32).range(1..))]
    baud: u32,
}

/// `spikeloop conformance`: prints the report; fails when any check failed.
pub fn conformance(args: ConformanceArgs) -> anyhow::Result<()> {
    let report = spikeloop_transport::conformance::run_on_port(&args.device, args.baud)
        .map_err(|e| crate::backend::open_error(e, &args.device))?;
    outln!("{report}");
    if report.unanswered() {
        anyhow::bail!(
            "nothing answered at {}: not one byte came back to the suite's Hellos; is the device running and on this port (`spikeloop ports` lists the serial ports), and for a UART bridge at this baud rate (--baud {})?",
            args.device,
            args.baud
        );
    }
    if report.line.is_some_and(|line| !line.clean()) {
        anyhow::bail!(
            "{} of {} checks failed at {}, but the line itself did not carry plain requests cleanly (see the line: above): run the suite on a clean line before taking the failures for the device's",
            report.failed(),
            report.checks.len(),
            args.device
        );
    }
    if !report.all_passed() {
        anyhow::bail!(
            "the device at {} does not conform: {} of {} checks failed (see the FAIL lines above)",
            args.device,
            report.failed(),
            report.checks.len()
        );
    }
    Ok(())
}
