//! `spikeloop relay`: a noisy serial line between a host and a device, as a process of its own.
//!
//! The relay offers a host a pseudo-terminal of its own (like `spikeloop device`), opens the
//! device's terminal or serial port, and carries frames both ways, damaging a set fraction of
//! them from a seeded generator (bit flips, lost, inserted and duplicated bytes, lost frames)
//! and disturbing others without damage (frames repeated, cut into pieces, stalls of the line).
//! It tests a host or a firmware the way a bad cable would, between two real processes, and
//! reproducibly. The one idea: faults are decided frame by frame (a frame is a run of bytes up
//! to a 0x00 delimiter), by the same [`LineFaults`] as the in-process faulty link, so the frame
//! damage rate is exactly what is asked for and what is reported.

use std::io::{ErrorKind, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serialport::TTYPort;
use spikeloop_transport::conformance::fault::{
    Delivery, Fault, FaultConfig, FaultCounts, LineFaults,
};

use crate::pty::{HostRead, IDLE_POLL, Terminal, read_host};

/// Options of `spikeloop relay`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// The device to relay to: its serial port, or the path `spikeloop device` prints.
    #[arg(long, value_name = "PATH")]
    device: PathBuf,
    /// Fraction of frames damaged (their bytes changed or lost), per frame and direction,
    /// 0 to 1.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "FRACTION",
        default_value_t = 0.01
    )]
    damage: f64,
    /// Fraction of frames disturbed without damage (repeated, cut into pieces, or held back by
    /// a stall of the line), per frame and direction, 0 to 1.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "FRACTION",
        default_value_t = 0.005
    )]
    disturb: f64,
    /// Longest stall of the line, milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    max_stall_ms: u64,
    /// Seed of the fault generator.
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// Also make the relay's terminal reachable under this path (see `spikeloop device`).
    #[arg(long, value_name = "PATH")]
    link: Option<PathBuf>,
}

/// The faults of one direction: first damage, then disturbances.
struct Direction {
    damage: LineFaults,
    disturb: LineFaults,
}

/// What the relay did, both directions together: damage and disturbances counted apart, so
/// that frames are counted once.
#[derive(Clone, Default)]
struct Tally {
    damage: Arc<Mutex<FaultCounts>>,
    disturb: Arc<Mutex<FaultCounts>>,
}

impl Tally {
    fn counts(&self) -> FaultCounts {
        let mut c = self.damage.lock().map(|c| *c).unwrap_or_default();
        if let Ok(d) = self.disturb.lock() {
            c.duplicated_frames = d.duplicated_frames;
            c.split_frames = d.split_frames;
            c.delayed_frames = d.delayed_frames;
        }
        c
    }
}

impl Direction {
    fn new(args: &RelayArgs, stream: u64, tally: &Tally) -> Direction {
        let config = |rate, kinds: &[Fault]| FaultConfig {
            rate,
            seed: args.seed,
            max_delay: Duration::from_millis(args.max_stall_ms),
            kinds: kinds.to_vec(),
        };
        Direction {
            damage: LineFaults::new(
                config(args.damage, &Fault::DAMAGING),
                stream,
                Arc::clone(&tally.damage),
            ),
            disturb: LineFaults::new(
                config(args.disturb, &Fault::DISTURBING),
                stream ^ 0x000D_157B,
                Arc::clone(&tally.disturb),
            ),
        }
    }

    /// Sends one frame through both stages of faults to `to`.
    fn carry(&mut self, frame: &mut Vec<u8>, to: &mut TTYPort) -> std::io::Result<()> {
        // The damaging stage changes the frame's bytes in place or loses the frame.
        if self.damage.pass(frame) == Delivery::Drop {
            return Ok(());
        }
        match self.disturb.pass(frame) {
            Delivery::Send => to.write_all(frame),
            Delivery::SendTwice => {
                to.write_all(frame)?;
                to.write_all(frame)
            }
            Delivery::Drop => Ok(()),
            Delivery::Split(lengths) => {
                let mut rest: &[u8] = frame;
                for n in lengths {
                    let (piece, tail) = rest.split_at(n.min(rest.len()));
                    to.write_all(piece)?;
                    std::thread::sleep(Duration::from_micros(200));
                    rest = tail;
                }
                Ok(())
            }
            Delivery::Delay(d) => {
                std::thread::sleep(d);
                to.write_all(frame)
            }
        }
    }
}

fn check_fraction(name: &str, x: f64) -> anyhow::Result<()> {
    if !(x.is_finite() && (0.0..=1.0).contains(&x)) {
        bail!("--{name} {x}: must be a fraction from 0 to 1 (0.01 = 1 % of frames)");
    }
    Ok(())
}

/// Opens the device's terminal or serial port for reading and writing: raw 8N1 without flow
/// control, exclusive access.
fn open_device(path: &std::path::Path) -> anyhow::Result<TTYPort> {
    let name = path.to_string_lossy();
    let context = || {
        format!(
            "could not open the device at {} (the path `spikeloop device` prints, or a serial port)",
            path.display()
        )
    };
    let mut port = serialport::new(name, 115_200)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        // Reads wait for the device this long before looking again.
        .timeout(Duration::from_secs(1))
        .open_native()
        .with_context(context)?;
    // Set here rather than trusted to a library default: another program on the line would
    // take the device's answers.
    port.set_exclusive(true).with_context(context)?;
    Ok(port)
}

/// Splits what arrives into frames (up to and including each 0x00) and hands each to `emit`.
fn frames(bytes: &[u8], partial: &mut Vec<u8>, mut emit: impl FnMut(&mut Vec<u8>)) {
    for &b in bytes {
        partial.push(b);
        if b == 0 {
            emit(partial);
            partial.clear();
        }
    }
}

pub fn run(args: RelayArgs) -> anyhow::Result<()> {
    check_fraction("damage", args.damage)?;
    check_fraction("disturb", args.disturb)?;
    let device = open_device(&args.device)?;
    let tally = Tally::default();
    let report = tally.clone();
    let terminal = Terminal::open(args.link.as_deref(), move || {
        errln!("relay stopped: {}", report.counts());
    })?;
    outln!("{}", terminal.path.display());
    std::io::stdout().flush().ok();
    errln!(
        "relaying {} to {}: {:.2} % of frames damaged, {:.2} % disturbed per direction, stalls up to {} ms, seed {}; use it with --device {} (stop with Ctrl-C)",
        terminal.path.display(),
        args.device.display(),
        100.0 * args.damage,
        100.0 * args.disturb,
        args.max_stall_ms,
        args.seed,
        terminal.name().display()
    );

    // Device to host, on a thread of its own.
    let mut from_device = device
        .try_clone_native()
        .context("could not duplicate the device")?;
    let mut to_host = terminal.controller()?;
    let mut upstream = Direction::new(&args, 0xAAAA_AAAA, &tally);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut partial = Vec::new();
        loop {
            let n = match from_device.read(&mut buf) {
                Ok(0) => {
                    std::thread::sleep(IDLE_POLL);
                    continue;
                }
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::TimedOut) => {
                    continue;
                }
                Err(e) => {
                    errln!("relay: the device's line failed: {e}");
                    std::process::exit(1);
                }
            };
            // Bytes for a host that is gone are lost, as on a real line.
            frames(&buf[..n], &mut partial, |f| {
                let _ = upstream.carry(f, &mut to_host);
            });
        }
    });

    // Host to device, here.
    let mut from_host = terminal.controller()?;
    let mut to_device = device;
    let mut downstream = Direction::new(&args, 0x5555_5555, &tally);
    let mut buf = vec![0u8; 1 << 16];
    let mut partial = Vec::new();
    let mut connected = false;
    loop {
        match read_host(&mut from_host, &mut buf)? {
            HostRead::Data(n) => {
                connected = true;
                let mut failed = None;
                frames(&buf[..n], &mut partial, |f| {
                    if let Err(e) = downstream.carry(f, &mut to_device) {
                        failed = Some(e);
                    }
                });
                match failed {
                    // A device that takes nothing for a while (busy answering a host that does
                    // not read) loses the frame, as a stalled line would; the host retries.
                    Some(e) if e.kind() == ErrorKind::TimedOut => {
                        errln!("relay: the device took no byte in time; a frame to it was lost");
                    }
                    Some(e) => return Err(e).context("could not write to the device"),
                    None => {}
                }
            }
            HostRead::NoHost => {
                if connected {
                    connected = false;
                    partial.clear();
                    errln!(
                        "relay: the host closed the terminal; so far {}",
                        tally.counts()
                    );
                }
                std::thread::sleep(IDLE_POLL);
            }
        }
    }
}
