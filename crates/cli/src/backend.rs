//! Choosing and building a backend from the command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use spikeloop_backend::{Backend, IdealBackend};
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig, NoiseConfig};
use spikeloop_trainer::Preset;

/// The substrates the command line can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// The emulated BrainScaleS-2-style analog chip (6-bit weights, fixed-pattern and temporal
    /// noise, 8 ns timestamps).
    Emulator,
    /// The exact neuron model: float weights, no noise.
    Ideal,
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

/// Options shared by every command that runs a network.
#[derive(Clone, Debug, Args)]
pub struct BackendArgs {
    /// Substrate that runs the forward passes.
    #[arg(long, value_enum, default_value = "emulator")]
    pub backend: BackendKind,
    /// Which emulated chip: every chip seed is a different chip (its fixed-pattern noise).
    #[arg(long, value_name = "N")]
    pub chip_seed: Option<u64>,
    /// Seed of the emulated chip's trial-to-trial noise.
    #[arg(long, value_name = "N")]
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

impl BackendArgs {
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

    /// A one-line description that identifies the substrate (for run directories and
    /// checkpoints: a run resumes only on the substrate it started on).
    pub fn describe(&self) -> anyhow::Result<String> {
        Ok(match self.backend {
            BackendKind::Ideal => "ideal".into(),
            BackendKind::Emulator => {
                let c = self.emulator_config()?;
                format!(
                    "emulator (chip seed {}, run seed {})",
                    c.chip_seed, c.run_seed
                )
            }
        })
    }

    /// Builds the chosen backend.
    pub fn build(&self) -> anyhow::Result<Box<dyn Backend>> {
        Ok(match self.backend {
            BackendKind::Ideal => Box::new(IdealBackend::new()),
            BackendKind::Emulator => Box::new(
                EmulatorBackend::new(self.emulator_config()?)
                    .context("invalid emulator configuration")?,
            ),
        })
    }

    /// The training defaults that suit this backend: the chip preset for a chip, the software
    /// preset for the ideal backend.
    pub fn default_preset(&self) -> Preset {
        match self.backend {
            BackendKind::Emulator => Preset::Chip,
            BackendKind::Ideal => Preset::Software,
        }
    }

    /// The same options with another backend kind.
    pub fn with_kind(&self, backend: BackendKind) -> Self {
        Self {
            backend,
            ..self.clone()
        }
    }
}
