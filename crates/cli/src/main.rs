//! The `spikeloop` command line: it only parses arguments and wires the crates together.
//!
//! `train` trains a network in the loop against a backend (by default an emulated chip) and
//! writes the model, metrics, a checkpoint and a picture of the training curves; `infer` runs a
//! model over a data set split on any backend and writes every layer's spike times; `compare`
//! measures what a chip costs and what training in the loop recovers; `bench` measures
//! throughput; `config` prints the default configuration; `device` serves the emulated chip
//! behind the device protocol on a pseudo-terminal; `relay` puts a noisy line between a host and a device; `ports` lists serial ports;
//! `conformance`
//! checks a device against the protocol specification. Logs go to stderr through `tracing` (set `RUST_LOG`).

/// Writes a line to stdout. A closed stdout (`spikeloop infer ... | head -1`) is not an error
/// of the run: the line is dropped and the work goes on, so the run's files are never lost
/// because a terminal or a pipe went away.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Writes to stdout without a newline, like [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// Writes a line to stderr; a closed stderr drops it, like [`outln!`].
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod analyze;
mod backend;
mod bench;
mod calibrate;
mod compare;
mod device;
mod infer;
mod plan;
mod progress;
mod pty;
mod relay;
mod robustness;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Train spiking neural networks in the loop with analog neuromorphic hardware.
///
/// The forward pass runs on a backend (the exact model, an emulated chip, or a device) and its
/// measured first-spike times drive exact time-to-first-spike gradients on the host.
#[derive(Debug, Parser)]
#[command(
    name = "spikeloop",
    version,
    about,
    long_about,
    propagate_version = true
)]
struct Cli {
    /// Worker threads for simulation and gradients (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a network in the loop: on the emulated chip by default, on the exact model with
    /// --backend ideal, on a device with --device PATH.
    Train(train::TrainArgs),
    /// Run a trained model over a data set split and write every layer's spike times as JSON.
    Infer(infer::InferArgs),
    /// Calibrate every neuron circuit of a chip (an emulated chip, or a device with --device)
    /// and write the calibration file, a report and a figure of the spreads before and after.
    Calibrate(calibrate::CalibrateArgs),
    /// Compare ideal training, that network copied onto emulated chips, and training in the loop.
    Compare(compare::CompareArgs),
    /// Evaluate a trained model under a matrix of conditions (other chips, stale calibrations,
    /// drift, noise, fewer weight bits, each also after in-the-loop fine-tuning) and write a
    /// table (Markdown, CSV, JSON) and a heatmap; `robustness merge` joins the parts of a
    /// matrix split with --shard.
    Robustness(robustness::RobustnessArgs),
    /// Measure forward and forward+backward throughput and the time per training epoch.
    Bench(bench::BenchArgs),
    /// Synchronisation and semantisation layer by layer: pulse packets, class pathways,
    /// separability, for a trained model and its untrained initialisation side by side; writes
    /// a report (Markdown, JSON) and figures (PNG, SVG).
    Analyze(analyze::AnalyzeArgs),
    /// Split a network larger than one chip into parts that fit the substrate (the emulated chip
    /// by default, or a device) and print the parts, the circuits and rows they use, the runs
    /// per sample and the hardware time per sample.
    Plan(plan::PlanArgs),
    /// Serve the emulated chip behind the device protocol on a pseudo-terminal (a virtual
    /// device): prints the terminal's path, then serves until killed.
    Device(device::DeviceArgs),
    /// Relay between a host and a device over a noisy line: offers a pseudo-terminal of its
    /// own, damages a set fraction of the frames (seeded) and reports what it did.
    Relay(relay::RelayArgs),
    /// List the serial ports of this machine.
    Ports,
    /// Check a device against the protocol specification (handshake, configuration, runs,
    /// damaged, oversized, unknown and duplicated frames, out-of-range values) and print a
    /// pass/fail report.
    Conformance(device::ConformanceArgs),
    /// Print a training configuration preset as TOML (a starting point for --config), or the
    /// emulated chip's configuration (a starting point for --emulator-config).
    Config {
        /// Which preset.
        #[arg(long, value_enum, default_value = "chip")]
        preset: backend::PresetArg,
        /// Print the emulated chip's default configuration instead (noise magnitudes, timing,
        /// weight scale, with their documented defaults).
        #[arg(long)]
        emulator: bool,
    },
}

/// Most worker threads `--threads` accepts.
const MAX_THREADS: usize = 1024;

/// Stderr for logs: a closed stderr drops the log lines instead of failing the run.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(|| LossyStderr)
        // Colour codes only for a terminal, not in a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some(n) = cli.threads {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if n == 0 || n > MAX_THREADS {
            errln!(
                "error: --threads {n}: allowed 1 to {MAX_THREADS} (this machine has {cores} cores; more threads than cores gain nothing)"
            );
            return ExitCode::from(2);
        }
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
        {
            errln!("error: could not start {n} worker threads: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Infer(args) => infer::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Robustness(args) => robustness::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Device(args) => device::run(args),
        Command::Relay(args) => relay::run(args),
        Command::Ports => device::ports(),
        Command::Conformance(args) => device::conformance(args),
        Command::Config { preset, emulator } => {
            if emulator {
                out!(
                    "{}",
                    spikeloop_emulator::EmulatorConfig::default().to_toml_string()
                );
            } else {
                out!(
                    "{}",
                    spikeloop_trainer::Preset::from(preset).config().to_toml()
                );
            }
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<train::Stopped>().is_some() => {
            errln!("{e}");
            ExitCode::from(130)
        }
        Err(e) => {
            let text = describe(&e);
            errln!("error: {text}");
            // A network the chip cannot hold at once (the backends' DoesNotFit wording).
            if text.contains("does not fit on") && !text.contains("partitioned") {
                errln!(
                    "hint: a network larger than the chip runs in parts with --partitioned; `spikeloop plan` with the same network options shows the parts"
                );
            }
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause that an outer message already
/// quotes (many errors print their source themselves; the OS's text is said once).
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.contains(&c) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&c);
    }
    text
}
