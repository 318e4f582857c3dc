//! Choosing and building a backend from the command line.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use spikeloop_backend::{Backend, IdealBackend};
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig, NoiseConfig};
use spikeloop_trainer::Preset;
use spikeloop_transport::{DeviceBackend, HostConfig};

/// The substrates the command line can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// The emulated BrainScaleS-2-style analog chip (6-bit weights, fixed-pattern and temporal
    /// noise, 8 ns timestamps).
    Emulator,
    /// The exact neuron model: float weights, no noise.
    Ideal,
    /// A device behind a serial port (--device PATH): a chip's firmware, or `spikeloop device`.
    Device,
}

/// Which set of training defaults to start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// The reference set-up for exact simulation.
    Software,
    /// The reference's set-up for an analog chip (inputs fed 5 times, smaller initial weights).
    Chip,
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Self {
        match p {
            PresetArg::Software => Preset::Software,
            PresetArg::Chip => Preset::Chip,
        }
    }
}

/// Imperfections of the emulated chip, by preset; finer control through --emulator-config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NoisePreset {
    /// Realistic fixed-pattern and temporal noise (the documented defaults).
    Default,
    /// Only trial-to-trial effects (threshold noise, jitter, 8 ns clock, readout offset, event
    /// loss); every circuit ideal.
    Temporal,
    /// No noise at all: ideal circuits, exact timestamps (still 6-bit weights and the general
    /// solver).
    None,
}

/// Options of the emulated chip.
#[derive(Clone, Debug, Default, Args)]
pub struct EmulatorArgs {
    /// Which emulated chip: every chip seed is a different chip (its fixed-pattern noise).
    /// At most 9223372036854775807 (the largest integer a TOML file holds).
    #[arg(long, value_name = "N", value_parser = seed_parser())]
    pub chip_seed: Option<u64>,
    /// Seed of the emulated chip's trial-to-trial noise (at most 9223372036854775807).
    #[arg(long, value_name = "N", value_parser = seed_parser())]
    pub run_seed: Option<u64>,
    /// Emulator configuration TOML (noise magnitudes, timing, weight scale); flags override it.
    #[arg(long, value_name = "FILE")]
    pub emulator_config: Option<PathBuf>,
    /// Noise of the emulated chip.
    #[arg(long, value_enum, value_name = "PRESET")]
    pub noise: Option<NoisePreset>,
    /// Make each emulated run take its hardware time in wall-clock time, like a real device.
    #[arg(long)]
    pub pace: bool,
}

/// The baud rate of a device's serial line unless `--baud` says otherwise.
pub const DEFAULT_BAUD: u32 = 115_200;

/// Options shared by every command that runs a network.
#[derive(Clone, Debug, Args)]
pub struct BackendArgs {
    /// Substrate that runs the forward passes (default: the emulator, or the device when
    /// --device is given).
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// The emulated chip.
    #[command(flatten)]
    pub emulator: EmulatorArgs,
    /// Serial port of a device to run on (e.g. /dev/ttyACM0, or the path `spikeloop device`
    /// prints); selects the device backend.
    #[arg(long, value_name = "PATH")]
    pub device: Option<String>,
    /// Baud rate of the device's serial line (UART bridges; USB CDC devices ignore it).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BAUD, value_parser = clap::value_parser!(u32).range(1..))]
    pub baud: u32,
    /// How often a request to a device is sent again after a damaged or missing answer before
    /// the call fails (a noisy line needs more).
    #[arg(long, value_name = "N", default_value_t = HostConfig::default().retries, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub retries: u32,
    /// Run networks larger than the chip part by part (partitioned execution: each part one
    /// hardware run of its own configuration, the recorded spikes of a layer fed to the next;
    /// `spikeloop plan` shows the parts). On the emulated chip or a device.
    #[arg(long)]
    pub partitioned: bool,
}

/// `backend` itself, or (when `partitioned`) wrapped to run networks larger than its chip in
/// parts.
pub fn partitioned_if(
    backend: Box<dyn Backend>,
    partitioned: bool,
) -> anyhow::Result<Box<dyn Backend>> {
    if !partitioned {
        return Ok(backend);
    }
    let wrapped = spikeloop_backend::PartitionedBackend::new(
        backend,
        spikeloop_backend::PartitionRules::BRAINSCALES2,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "--partitioned: {e}; partitioned execution is for the emulated chip and devices"
        )
    })?;
    Ok(Box::new(wrapped))
}

/// Seeds as the files that record them can hold: 0 to `i64::MAX`, the largest TOML integer.
pub fn seed_parser() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(0..=i64::MAX as u64)
}

impl BackendArgs {
    /// These options as command-line words again (those given, and the device line's where not
    /// the default), for a command the user can run to continue on the same substrate.
    pub fn flags(&self) -> Vec<String> {
        let mut words = Vec::new();
        let mut push = |flag: &str, value: Option<String>| {
            words.push(flag.to_string());
            words.extend(value);
        };
        let name = |v: Option<clap::builder::PossibleValue>| v.map(|p| p.get_name().to_string());
        if let Some(kind) = self.backend {
            push("--backend", name(kind.to_possible_value()));
        }
        let e = &self.emulator;
        if let Some(s) = e.chip_seed {
            push("--chip-seed", Some(s.to_string()));
        }
        if let Some(s) = e.run_seed {
            push("--run-seed", Some(s.to_string()));
        }
        if let Some(path) = &e.emulator_config {
            push("--emulator-config", Some(path.display().to_string()));
        }
        if let Some(noise) = e.noise {
            push("--noise", name(noise.to_possible_value()));
        }
        if e.pace {
            push("--pace", None);
        }
        if let Some(path) = &self.device {
            push("--device", Some(path.clone()));
            if self.baud != DEFAULT_BAUD {
                push("--baud", Some(self.baud.to_string()));
            }
            if self.retries != HostConfig::default().retries {
                push("--retries", Some(self.retries.to_string()));
            }
        }
        if self.partitioned {
            push("--partitioned", None);
        }
        words
    }
}

impl EmulatorArgs {
    /// True when any emulator option was given.
    fn any(&self) -> bool {
        self.chip_seed.is_some()
            || self.run_seed.is_some()
            || self.emulator_config.is_some()
            || self.noise.is_some()
            || self.pace
    }

    /// The emulator configuration these options describe.
    pub fn emulator_config(&self) -> anyhow::Result<EmulatorConfig> {
        let mut config = match &self.emulator_config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("could not read the emulator config file {}", path.display())
                })?;
                EmulatorConfig::from_toml_str(&text).with_context(|| {
                    format!("invalid emulator configuration in {}", path.display())
                })?
            }
            None => EmulatorConfig::default(),
        };
        if let Some(s) = self.chip_seed {
            config.chip_seed = s;
        }
        if let Some(s) = self.run_seed {
            config.run_seed = s;
        }
        match self.noise {
            Some(NoisePreset::Default) => config.noise = NoiseConfig::default(),
            Some(NoisePreset::Temporal) => config.noise = NoiseConfig::temporal_only(),
            Some(NoisePreset::None) => config.noise = NoiseConfig::none(),
            None => {}
        }
        if self.pace {
            config.timing.pacing = true;
        }
        Ok(config)
    }

    /// The emulated chip these options describe.
    pub fn build(&self) -> anyhow::Result<EmulatorBackend> {
        EmulatorBackend::new(self.emulator_config()?).context("invalid emulator configuration")
    }
}

/// An error opening a device as the command line says it: a port problem with the
/// transport's advice and, where it helps, the command that lists the ports; anything later
/// (the handshake) as a failure to connect to `place`.
pub fn open_error(e: spikeloop_transport::OpenError, place: &str) -> anyhow::Error {
    use spikeloop_transport::host::PortProblem;
    match e {
        spikeloop_transport::OpenError::Port {
            port,
            reason,
            problem,
        } => {
            let list = match problem {
                PortProblem::Missing | PortProblem::NotAPort | PortProblem::NoDevice => {
                    "; `spikeloop ports` lists the serial ports"
                }
                _ => "",
            };
            anyhow::anyhow!(
                "could not open serial port {port}: {reason}{}{list}",
                problem.advice()
            )
        }
        e => anyhow::Error::new(e).context(format!("could not connect to the device at {place}")),
    }
}

/// One backend the command line builds: which options it takes and how it is made.
struct Constructor {
    kind: BackendKind,
    /// Takes --device PATH, and needs it.
    device: bool,
    /// Why the emulated chip's options are refused, for a backend that does not take them.
    refuses_emulator_options: Option<&'static str>,
    build: fn(&BackendArgs) -> anyhow::Result<Box<dyn Backend>>,
}

/// Every backend of the command line. A new backend is one more row (and a [`BackendKind`]).
const CONSTRUCTORS: [Constructor; 3] = [
    Constructor {
        kind: BackendKind::Emulator,
        device: false,
        refuses_emulator_options: None,
        build: |args| Ok(Box::new(args.emulator.build()?)),
    },
    Constructor {
        kind: BackendKind::Ideal,
        device: false,
        refuses_emulator_options: Some(
            "do nothing with --backend ideal (the exact model has no chip and no noise); drop them, or drop --backend ideal",
        ),
        build: |_| Ok(Box::new(IdealBackend::new())),
    },
    Constructor {
        kind: BackendKind::Device,
        device: true,
        refuses_emulator_options: Some(
            "for a device they go to `spikeloop device` (or the firmware)",
        ),
        build: |args| {
            let mut device = args.open_device()?;
            // A device's pseudo-random trial noise goes on from wherever the last host left
            // it; every command starts it where a freshly made emulated chip starts, so that a
            // command gives the same result on the device as in process.
            if device.noise_position().is_some_and(|p| p != 0) {
                device
                    .set_noise_position(0)
                    .context("could not rewind the device's trial noise")?;
            }
            Ok(Box::new(device))
        },
    },
];

impl BackendArgs {
    /// The backend kind these options select.
    pub fn kind(&self) -> BackendKind {
        match (self.backend, &self.device) {
            (Some(kind), _) => kind,
            (None, Some(_)) => BackendKind::Device,
            (None, None) => BackendKind::Emulator,
        }
    }

    /// Builds the chosen backend (for a device: opens the port and shakes hands), after
    /// refusing options the backend does not take.
    pub fn build(&self) -> anyhow::Result<Box<dyn Backend>> {
        let kind = self.kind();
        let Some(c) = CONSTRUCTORS.iter().find(|c| c.kind == kind) else {
            bail!("the {kind:?} backend has no constructor");
        };
        let name = kind
            .to_possible_value()
            .map_or_else(|| format!("{kind:?}"), |v| v.get_name().to_string());
        match (&self.device, c.device) {
            (None, true) => {
                bail!(
                    "--backend {name} needs --device PATH (`spikeloop ports` lists the serial ports)"
                )
            }
            (Some(path), false) => {
                bail!("--device {path} selects the device backend; drop --backend {name}")
            }
            _ => {}
        }
        if let Some(why) = c.refuses_emulator_options.filter(|_| self.emulator.any()) {
            bail!(
                "--chip-seed, --run-seed, --noise, --emulator-config and --pace set up the emulated chip; {why}"
            );
        }
        partitioned_if((c.build)(self)?, self.partitioned)
    }

    /// Opens the device named by --device and shakes hands with it.
    pub fn open_device(&self) -> anyhow::Result<DeviceBackend> {
        let Some(path) = self.device.as_deref() else {
            bail!("no --device PATH given (`spikeloop ports` lists the serial ports)");
        };
        let place = match std::fs::read_link(path) {
            Ok(target) => format!(
                "{path} (a link to {}; a link left by a stopped `spikeloop device` may point at another program's terminal)",
                target.display()
            ),
            Err(_) => path.to_string(),
        };
        let config = HostConfig {
            retries: self.retries,
            ..HostConfig::default()
        };
        DeviceBackend::open(path, self.baud, config).map_err(|e| open_error(e, &place))
    }
}
