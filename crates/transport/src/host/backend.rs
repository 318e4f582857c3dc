//! `DeviceBackend`: a device behind a serial port (or any other [`Link`]) as a spikeloop
//! [`Backend`].
//!
//! The one idea: the `Backend` trait is synchronous and the protocol engine ([`HostCore`]) is
//! asynchronous, so the backend owns a small single-threaded runtime and blocks on each call.
//! Everything about the line (deadlines, retries, replay, disconnects, resets) lives in the
//! engine, which is the same for a USB device, a pseudo-terminal and the in-memory pipe of the
//! tests ([`DeviceBackend::in_process`]).
//!
//! Opening a port ([`DeviceBackend::open`]): raw mode (no echo, no line editing, no XON/XOFF),
//! 8N1 without flow control, exclusive access, stale input discarded, a 0x00 to end any partial
//! frame at the device, then the handshake. A board that resets when the port opens (DTR) is
//! given `HostConfig::handshake_attempts` chances to answer.

use spikeloop_backend::{
    Backend, BackendError, Capabilities, InputBatch, MembraneRequest, MembraneTrace, Network,
    NeuronCodes, Record, RunOutput, Substrate,
};
use tokio::io::DuplexStream;
use tokio::runtime::Runtime;

use super::{HostConfig, HostCore, HostError, LinkCounts, OpenError, open_port, runtime};
use crate::convert::DeviceInfo;
use crate::device::{DeviceConfig, Hangup, VirtualDevice, serve};
use crate::link::{Link, memory_link};
use crate::messages::pb;

/// A device behind a serial port (by default) or any other link, as a [`Backend`].
pub struct DeviceBackend<L: Link = tokio_serial::SerialStream> {
    runtime: Runtime,
    core: HostCore<L>,
    capabilities: Capabilities,
    port: String,
}

impl<L: Link> std::fmt::Debug for DeviceBackend<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBackend")
            .field("port", &self.port)
            .field("device", &self.capabilities.name)
            .finish_non_exhaustive()
    }
}

impl DeviceBackend {
    /// Opens the serial port at `path` (`baud` for UART bridges; USB CDC devices ignore it) and
    /// connects to the device on it.
    pub fn open(path: &str, baud: u32, config: HostConfig) -> Result<Self, OpenError> {
        let runtime = runtime()?;
        let port = open_port(&runtime, path, baud)?;
        let config = HostConfig { baud, ..config };
        Self::connect(runtime, port, config, path)
    }
}

/// A virtual device in this process behind the host code ([`DeviceBackend::in_process`]).
pub type InProcessBackend = DeviceBackend<DuplexStream>;

impl DeviceBackend<DuplexStream> {
    /// A virtual device serving `backend` in this process over an in-memory link, driven by the
    /// same host code as a serial device: for tests, and for checking the protocol end to end.
    pub fn in_process<B: Backend + 'static>(
        backend: B,
        device: DeviceConfig,
        host: HostConfig,
    ) -> Result<Self, OpenError> {
        let runtime = runtime()?;
        let (host_end, mut device_end) = memory_link();
        let mut device = VirtualDevice::new(backend, device)?;
        runtime.spawn(async move {
            if let Err(e) = serve(&mut device, &mut device_end, Hangup::Stop).await {
                tracing::warn!("in-process device stopped: {e}");
            }
        });
        Self::connect(runtime, host_end, host, "in-process")
    }
}

impl<L: Link> DeviceBackend<L> {
    /// `Unsupported` unless the device announced parameter codes.
    fn needs_codes(&self) -> Result<(), BackendError> {
        if self.capabilities.features.parameter_codes {
            Ok(())
        } else {
            Err(BackendError::Unsupported {
                backend: self.capabilities.name.clone(),
                feature: "parameter codes",
            })
        }
    }

    /// Connects to the device at the other end of `link`, driving it with `runtime` (which
    /// may also run the device's side, as for an in-process device). `port` names the link in
    /// messages.
    pub fn connect(
        runtime: Runtime,
        link: L,
        config: HostConfig,
        port: &str,
    ) -> Result<Self, OpenError> {
        let core = runtime
            .block_on(HostCore::connect(link, config))
            .map_err(Box::new)?;
        let capabilities = core.info().capabilities.clone();
        tracing::info!(
            device = %capabilities.name,
            firmware = %core.info().firmware_version,
            port,
            "connected"
        );
        Ok(DeviceBackend {
            runtime,
            core,
            capabilities,
            port: port.to_string(),
        })
    }

    /// What the device said about itself in the handshake.
    pub fn info(&self) -> &DeviceInfo {
        self.core.info()
    }

    /// The port or link this backend talks over.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// What happened on the link so far (retries, timeouts, damaged frames, bytes).
    pub fn link_counts(&self) -> LinkCounts {
        self.core.counts()
    }

    /// The device's own counters.
    pub fn device_stats(&mut self) -> Result<pb::DeviceStats, BackendError> {
        let name = self.capabilities.name.clone();
        self.runtime
            .block_on(self.core.stats())
            .map_err(|e| e.into_backend_error(&name))
    }

    /// Returns the device to READY (the network must be configured again).
    pub fn reset(&mut self) -> Result<(), BackendError> {
        let name = self.capabilities.name.clone();
        self.runtime
            .block_on(self.core.reset())
            .map_err(|e| e.into_backend_error(&name))
    }

    fn block<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut HostCore<L>) -> Result<T, HostError>,
    ) -> Result<T, BackendError> {
        let result = self.runtime.block_on(f(&mut self.core));
        result.map_err(|e| e.into_backend_error(&self.capabilities.name))
    }
}

impl<L: Link> Drop for DeviceBackend<L> {
    fn drop(&mut self) {
        let c = self.core.counts();
        tracing::info!(
            port = %self.port,
            requests = c.requests,
            retries = c.retries,
            timeouts = c.timeouts,
            damaged_answers = c.damaged_frames,
            damage_notices = c.frame_damaged + c.frame_too_large,
            stale = c.stale_frames,
            "link summary"
        );
    }
}

impl<L: Link> Backend for DeviceBackend<L> {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn configure(&mut self, network: &Network) -> Result<(), BackendError> {
        network.validate()?;
        self.block(async |core| core.configure(network).await)
    }

    fn update_weights(&mut self, network: &Network) -> Result<(), BackendError> {
        network.validate()?;
        self.block(async |core| core.update_weights(network).await)
    }

    fn run(&mut self, inputs: &InputBatch, record: Record) -> Result<RunOutput, BackendError> {
        // Refused here with the message every backend gives, before anything is sent.
        if let Some(network) = self.core.network() {
            inputs.check_width(network.n_inputs)?;
        }
        self.block(async |core| core.run(inputs, record).await)
    }

    fn record_membrane(
        &mut self,
        request: &MembraneRequest,
    ) -> Result<MembraneTrace, BackendError> {
        if !self.capabilities.features.membrane_recording {
            return Err(BackendError::Unsupported {
                backend: self.capabilities.name.clone(),
                feature: "membrane recording",
            });
        }
        self.block(async |core| core.record_membrane(request).await)
    }

    fn noise_position(&self) -> Option<u64> {
        self.core.noise_position()
    }

    /// `device`, whichever device it is: a run directory stays the same when the device is
    /// replaced (its substrate, recorded inside, tells them apart).
    fn file_tag(&self) -> String {
        "device".into()
    }

    /// The device's identity (identifier, firmware, protocol version), its capabilities and its
    /// timing as the handshake reported them. Not the port: the same device may appear under
    /// another path.
    fn substrate(&self) -> Substrate {
        let info = self.core.info();
        Substrate::new(
            "device",
            format!("device {} ({})", info.device_id, info.firmware_version),
        )
        .with("device.id", &info.device_id)
        .with("device.firmware", &info.firmware_version)
        .with("device.protocol_version", info.version)
        .with("device.sample_window_us", info.sample_window_us)
        .with("device.batch_overhead_us", info.batch_overhead_us)
        .with_settings("capabilities", &self.capabilities)
    }

    fn chip_id(&self) -> Option<String> {
        self.core.info().chip_id.clone()
    }

    fn circuits(&mut self) -> Result<Vec<Vec<usize>>, BackendError> {
        self.needs_codes()?;
        self.block(async |core| core.circuits().await)
    }

    fn set_parameter_codes(
        &mut self,
        writes: &[(usize, Option<NeuronCodes>)],
    ) -> Result<(), BackendError> {
        self.needs_codes()?;
        self.block(async |core| core.write_parameter_codes(writes).await)
    }

    fn parameter_codes(&mut self, circuit: usize) -> Result<Option<NeuronCodes>, BackendError> {
        self.needs_codes()?;
        self.block(async |core| core.read_parameter_codes(circuit).await)
    }

    fn set_noise_position(&mut self, position: u64) -> Result<(), BackendError> {
        if !self.capabilities.features.noise_position {
            return Err(BackendError::Unsupported {
                backend: self.capabilities.name.clone(),
                feature: "restoring the noise position",
            });
        }
        self.block(async |core| core.set_noise_position(position).await)
            .map(|_| ())
    }
}
