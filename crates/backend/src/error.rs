//! Errors a backend reports: each names what was wrong, the value, and what is allowed.

/// Why a backend could not configure a network or run a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend does not offer this ability.
    #[error("{feature} is not supported by the {backend} backend")]
    Unsupported {
        /// The backend's name.
        backend: String,
        /// The ability that was asked for.
        feature: &'static str,
    },
    /// The network is inconsistent (wrong weight count, non-finite weight, bad neuron
    /// parameters, ...).
    #[error("invalid network: {0}")]
    InvalidNetwork(String),
    /// The network is consistent but larger than the substrate.
    #[error(
        "network does not fit on {backend}: needs {needed} {resource}, {available} available{}",
        if detail.is_empty() { String::new() } else { format!(" ({detail})") }
    )]
    DoesNotFit {
        /// The backend's name.
        backend: String,
        /// A short name of the resource that runs out (`neuron circuits`, `synapse rows per
        /// chip half`, ...).
        resource: String,
        /// How many the network needs.
        needed: usize,
        /// How many the substrate has.
        available: usize,
        /// Where it runs out and how the need was counted (may be empty).
        detail: String,
    },
    /// The input batch does not match the network or contains invalid times.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// `run` was called before a network was configured.
    #[error("no network configured: call configure() before run()")]
    NotConfigured,
    /// The device went away: unplugged, powered off, its port or process closed. Whatever it
    /// held is lost; a caller reconnects and starts again.
    #[error("{backend} disconnected ({reason})")]
    Disconnected {
        /// The backend's name.
        backend: String,
        /// What the link reported.
        reason: String,
    },
    /// The device restarted (power loss, watchdog, a reset line) and lost its configuration.
    #[error("{backend} restarted ({detail}) and lost its network")]
    Restarted {
        /// The backend's name.
        backend: String,
        /// How the restart showed.
        detail: String,
    },
    /// The substrate failed while running (a device error, a line too noisy to get an answer
    /// through, ...).
    #[error("{backend} failed: {message}")]
    Device {
        /// The backend's name.
        backend: String,
        /// What went wrong, as reported by the substrate or the transport.
        message: String,
    },
}
