//! Choosing a backend from the command line.

use clap::{Args, ValueEnum};
use spikeloop_backend::{Backend, IdealBackend};

/// The substrates the command line can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// The exact neuron model: float weights, no noise.
    Ideal,
}

/// Options shared by every command that runs a network.
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Substrate that runs the forward passes.
    #[arg(long, value_enum, default_value = "ideal")]
    pub backend: BackendKind,
}

impl BackendArgs {
    /// Builds the chosen backend.
    pub fn build(&self) -> anyhow::Result<Box<dyn Backend>> {
        Ok(match self.backend {
            BackendKind::Ideal => Box::new(IdealBackend::new()),
        })
    }
}
