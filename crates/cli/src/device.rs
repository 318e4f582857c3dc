//! `spikeloop device`: the emulated chip behind the wire protocol on a pseudo-terminal (the
//! virtual device), `spikeloop ports` and `spikeloop conformance`.
//!
//! The virtual device is a separate process that looks to a host exactly like a chip's firmware
//! on a USB serial port: it opens a pseudo-terminal, prints the path of its terminal side, and
//! serves whatever host opens that path, one after another, until it is killed. Its state (the
//! network, the noise position) stays across hosts like a powered board's; a host's `Hello`
//! resets the protocol as on a real device.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use nix::sys::termios;
use spikeloop_emulator::EmulatorBackend;
use spikeloop_transport::DeviceConfig;
use spikeloop_transport::device::VirtualDevice;

use crate::backend::EmulatorArgs;

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
}

/// How long the device waits before looking again when no host has the terminal open.
const IDLE_POLL: Duration = Duration::from_millis(10);

/// The virtual device's configuration for `chip`: its identity names the chip and run seeds (so
/// a run started on one chip is not resumed on another), its timing is the chip's.
pub fn device_config(chip: &EmulatorBackend, max_frame_size: usize) -> DeviceConfig {
    let c = chip.config();
    DeviceConfig {
        device_id: format!(
            "spikeloop-virtual-device (emulator chip seed {}, run seed {})",
            c.chip_seed, c.run_seed
        ),
        max_frame_size,
        sample_window_us: c.timing.sample_window_tau * c.timing.tau_s_us,
        batch_overhead_us: c.timing.batch_overhead_us,
        synapse_rows: Some(512),
        ..DeviceConfig::default()
    }
}

pub fn run(args: DeviceArgs) -> anyhow::Result<()> {
    let chip = args.emulator.build()?;
    let description = args.emulator.describe()?;
    let config = device_config(&chip, args.max_frame_size);
    let device_id = config.device_id.clone();
    let mut device = VirtualDevice::new(chip, config)?;

    let pty = nix::pty::openpty(None, None).context("could not open a pseudo-terminal")?;
    // Raw mode from the start: no echo, no line editing, no XON/XOFF (0x11 and 0x13 occur in
    // frames), so that even a host that does not set it up sees the device's bytes unchanged.
    let mut mode = termios::tcgetattr(&pty.slave).context("could not read the terminal mode")?;
    termios::cfmakeraw(&mut mode);
    termios::tcsetattr(&pty.slave, termios::SetArg::TCSANOW, &mode)
        .context("could not put the terminal in raw mode")?;
    let path = nix::unistd::ttyname(&pty.slave).context("could not name the terminal")?;
    // The device keeps only the controller side: a host closing the terminal is then visible
    // (reads fail until the next host opens it) and the terminal's exclusive-access flag is
    // cleared with the host's last descriptor.
    drop(pty.slave);
    if let Some(link) = &args.link {
        make_link(link, &path)?;
        let (link, target) = (link.clone(), path.clone());
        ctrlc::set_handler(move || {
            remove_link(&link, &target);
            std::process::exit(130);
        })
        .context("could not install the handler that removes the link on exit")?;
    }
    println!("{}", path.display());
    std::io::stdout().flush().ok();
    eprintln!(
        "serving the {description} as device \"{device_id}\" on {}; use it with --device {} (stop with Ctrl-C)",
        path.display(),
        args.link.as_deref().unwrap_or(&path).display()
    );

    let served = serve_terminal(&mut device, File::from(pty.master));
    if let Some(link) = &args.link {
        remove_link(link, &path);
    }
    served
}

/// Serves hosts on the controller side of the pseudo-terminal, one after another, until an
/// I/O error other than "no host has the terminal open".
fn serve_terminal<B: spikeloop_backend::Backend>(
    device: &mut VirtualDevice<B>,
    mut reader: File,
) -> anyhow::Result<()> {
    let mut writer = reader
        .try_clone()
        .context("could not duplicate the terminal")?;
    let mut out = Vec::new();
    device.boot(&mut out);
    writer.write_all(&out)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut connected = false;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => std::thread::sleep(IDLE_POLL),
            Ok(n) => {
                if !connected {
                    tracing::info!("a host opened the terminal");
                    connected = true;
                }
                out.clear();
                device.receive(&buf[..n], &mut out);
                if !out.is_empty() {
                    writer
                        .write_all(&out)
                        .context("could not write to the terminal")?;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // EIO: no host has the terminal open.
            Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => {
                if connected {
                    tracing::info!("the host closed the terminal");
                    connected = false;
                    device.line_reset();
                }
                std::thread::sleep(IDLE_POLL);
            }
            Err(e) => return Err(e).context("could not read from the terminal"),
        }
    }
}

/// Where the symbolic link at `link` points, if it is one.
fn link_target(link: &Path) -> Option<PathBuf> {
    let meta = link.symlink_metadata().ok()?;
    meta.file_type()
        .is_symlink()
        .then(|| std::fs::read_link(link).ok())
        .flatten()
}

/// Links `link` to the terminal `path`. An existing `link` is replaced only when it is a
/// symbolic link into `/dev/pts/` whose terminal no longer exists (left by a device that was
/// killed); a live terminal, a regular file or any other link is refused, naming what it is.
fn make_link(link: &Path, path: &Path) -> anyhow::Result<()> {
    if link.symlink_metadata().is_ok() {
        let Some(target) = link_target(link) else {
            bail!(
                "--link {}: the path exists and is not a symbolic link; refusing to replace it (choose another --link path)",
                link.display()
            );
        };
        if !target.starts_with("/dev/pts/") {
            bail!(
                "--link {}: it is a symbolic link to {}, not to a pseudo-terminal; refusing to replace it (choose another --link path)",
                link.display(),
                target.display()
            );
        }
        if target.exists() {
            bail!(
                "--link {}: it links to {}, a terminal that is still open (another `spikeloop device`, or a program that took the number of a stopped one); stop that device, or remove the link (rm {}) if it is stale",
                link.display(),
                target.display(),
                link.display()
            );
        }
        std::fs::remove_file(link)
            .with_context(|| format!("could not replace the stale link {}", link.display()))?;
    }
    std::os::unix::fs::symlink(path, link)
        .with_context(|| format!("could not link {} to {}", link.display(), path.display()))
}

/// Removes `link` if it still points at `target` (nobody replaced it meanwhile).
fn remove_link(link: &Path, target: &Path) {
    if link_target(link).as_deref() == Some(target) {
        let _ = std::fs::remove_file(link);
    }
}

/// `spikeloop ports`.
pub fn ports() -> anyhow::Result<()> {
    let ports = spikeloop_transport::serial::available_ports()
        .map_err(|e| anyhow::anyhow!("could not list serial ports: {e}"))?;
    if ports.is_empty() {
        println!(
            "no serial ports found (a device on USB shows up as /dev/ttyACM* or /dev/ttyUSB*; `spikeloop device` prints its own pseudo-terminal's path)"
        );
    }
    for p in ports {
        println!("{}\t{}", p.path, p.description);
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
    #[arg(long, value_name = "N", default_value_t = 115_200, value_parser = clap::value_parser!(u32).range(1..))]
    baud: u32,
}

/// `spikeloop conformance`: prints the report; fails when any check failed.
pub fn conformance(args: ConformanceArgs) -> anyhow::Result<()> {
    let report = spikeloop_transport::serial::conformance_on_port(&args.device, args.baud)
        .with_context(|| format!("could not check the device at {}", args.device))?;
    println!("{report}");
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
