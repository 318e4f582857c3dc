//! `SerialBackend`: a device behind a serial port (or any other [`Link`]) as a spikeloop
//! [`Backend`].
//!
//! The one idea: the `Backend` trait is synchronous and the protocol engine ([`HostCore`]) is
//! asynchronous, so the backend owns a small single-threaded runtime and blocks on each call.
//! Everything about the line (deadlines, retries, replay, disconnects, resets) lives in the
//! engine, which is the same for a USB device, a pseudo-terminal and the in-memory pipe of the
//! tests ([`SerialBackend::in_process`]).
//!
//! Opening a port ([`SerialBackend::open`]): raw mode (no echo, no line editing, no XON/XOFF),
//! 8N1 without flow control, exclusive access, stale input discarded, a 0x00 to end any partial
//! frame at the device, then the handshake. A board that resets when the port opens (DTR) is
//! given `HostConfig::handshake_attempts` chances to answer.

use std::io;

use spikeloop_backend::{
    Backend, BackendError, Capabilities, InputBatch, MembraneRequest, MembraneTrace, Network,
    Record, RunOutput, Substrate,
};
use tokio::io::DuplexStream;
use tokio::runtime::Runtime;

use crate::convert::DeviceInfo;
use crate::device::{DeviceConfig, DeviceError, VirtualDevice, serve};
use crate::host::{HostConfig, HostCore, HostError, LinkCounts};
use crate::link::{Link, memory_link};
use crate::messages::pb;

/// Why a device could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The serial port could not be opened.
    #[error("could not open serial port {port}: {reason}{}", problem.advice())]
    Port {
        /// The port's path.
        port: String,
        /// What the operating system said.
        reason: String,
        /// What kind of problem it is.
        problem: PortProblem,
    },
    /// The runtime that drives the link could not start.
    #[error("could not start the I/O runtime: {0}")]
    Runtime(io::Error),
    /// An in-process device could not be set up.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The handshake failed.
    #[error(transparent)]
    Host(#[from] Box<HostError>),
}

/// A device behind a serial port (by default) or any other link, as a [`Backend`].
pub struct SerialBackend<L: Link = tokio_serial::SerialStream> {
    runtime: Runtime,
    core: HostCore<L>,
    capabilities: Capabilities,
    port: String,
}

impl<L: Link> std::fmt::Debug for SerialBackend<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialBackend")
            .field("port", &self.port)
            .field("device", &self.capabilities.name)
            .finish_non_exhaustive()
    }
}

/// The single-threaded runtime a backend drives its link with.
pub fn runtime() -> Result<Runtime, OpenError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OpenError::Runtime)
}

/// What kind of problem kept a serial port from opening, so that a caller can add its own
/// advice (a command that lists the ports, say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortProblem {
    /// No such path.
    Missing,
    /// The path exists but is no serial port (a file, a directory, a non-terminal device).
    NotAPort,
    /// Another process holds the port.
    Busy,
    /// The user may not open it.
    Permission,
    /// The device behind the path is not there (unplugged).
    NoDevice,
    /// Anything else; the system's reason says what.
    Other,
}

impl PortProblem {
    /// What usually fixes it, as a clause to append to the reason ("" when nothing general
    /// helps).
    pub fn advice(self) -> &'static str {
        match self {
            Self::Busy => {
                "; it is in use by another process (another spikeloop, a terminal program, ModemManager: `sudo systemctl stop ModemManager`); `fuser` names it"
            }
            Self::Permission => {
                "; serial ports belong to the dialout group: `sudo usermod -aG dialout $USER`, then log in again"
            }
            Self::NotAPort => "; it is not a terminal device, so not a serial port",
            Self::Missing => "; no such port",
            Self::NoDevice => "; is the device plugged in?",
            Self::Other => "",
        }
    }

    fn of(kind: &tokio_serial::ErrorKind, reason: &str) -> Self {
        let r = reason.to_ascii_lowercase();
        if r.contains("exclusive") || r.contains("busy") || r.contains("temporarily unavailable") {
            Self::Busy
        } else if r.contains("permission") {
            Self::Permission
        } else if r.contains("typewriter") || r.contains("inappropriate ioctl") {
            Self::NotAPort
        } else if r.contains("no such file") {
            Self::Missing
        } else if matches!(kind, tokio_serial::ErrorKind::NoDevice) {
            Self::NoDevice
        } else {
            Self::Other
        }
    }
}

/// Refuses a path that cannot be a serial port before trying to open it: missing, a directory,
/// a regular file or another non-character file.
#[cfg(unix)]
fn check_port_path(path: &str) -> Result<(), OpenError> {
    use std::os::unix::fs::FileTypeExt;
    let refuse = |reason: &str, problem: PortProblem| {
        Err(OpenError::Port {
            port: path.to_string(),
            reason: reason.to_string(),
            problem,
        })
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            refuse("no such file", PortProblem::Missing)
        }
        Err(_) => Ok(()), // opening it names the problem
        Ok(m) if m.is_dir() => refuse("it is a directory", PortProblem::NotAPort),
        Ok(m) if m.file_type().is_char_device() => Ok(()),
        Ok(m) if m.is_file() => refuse(
            "it is a regular file (a serial port is a terminal device such as /dev/ttyACM0)",
            PortProblem::NotAPort,
        ),
        Ok(_) => refuse("it is not a character device", PortProblem::NotAPort),
    }
}

#[cfg(not(unix))]
fn check_port_path(_path: &str) -> Result<(), OpenError> {
    Ok(())
}

/// Opens the serial port at `path` for the protocol: 8N1, no flow control, raw mode, exclusive
/// access, registered with `runtime` (whose reactor then drives it).
pub fn open_port(
    runtime: &Runtime,
    path: &str,
    baud: u32,
) -> Result<tokio_serial::SerialStream, OpenError> {
    check_port_path(path)?;
    let _guard = runtime.enter();
    let builder = tokio_serial::new(path, baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(tokio_serial::FlowControl::None);
    let refused = |e: tokio_serial::Error| {
        let reason = e.description.clone();
        OpenError::Port {
            port: path.to_string(),
            problem: PortProblem::of(&e.kind, &reason),
            reason,
        }
    };
    #[allow(unused_mut)] // only Unix has exclusive access to set
    let mut port = tokio_serial::SerialStream::open(&builder).map_err(refused)?;
    // Exclusive access, set here rather than trusted to a library default: a second program
    // opening the port while a host talks to the device would steal its answers.
    #[cfg(unix)]
    port.set_exclusive(true).map_err(refused)?;
    Ok(port)
}

/// Runs the conformance suite ([`crate::conformance`]) against the device on the serial port at
/// `path`.
pub fn conformance_on_port(path: &str, baud: u32) -> Result<crate::conformance::Report, OpenError> {
    let runtime = runtime()?;
    let port = open_port(&runtime, path, baud)?;
    Ok(runtime.block_on(crate::conformance::run(port, baud)))
}

impl SerialBackend {
    /// Opens the serial port at `path` (`baud` for UART bridges; USB CDC devices ignore it) and
    /// connects to the device on it.
    pub fn open(path: &str, baud: u32, config: HostConfig) -> Result<Self, OpenError> {
        let runtime = runtime()?;
        let port = open_port(&runtime, path, baud)?;
        let config = HostConfig { baud, ..config };
        Self::connect(runtime, port, config, path)
    }
}

/// A virtual device in this process behind the host code ([`SerialBackend::in_process`]).
pub type InProcessBackend = SerialBackend<DuplexStream>;

impl SerialBackend<DuplexStream> {
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
            if let Err(e) = serve(&mut device, &mut device_end).await {
                tracing::warn!("in-process device stopped: {e}");
            }
        });
        Self::connect(runtime, host_end, host, "in-process")
    }
}

impl<L: Link> SerialBackend<L> {
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
        Ok(SerialBackend {
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

impl<L: Link> Drop for SerialBackend<L> {
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

impl<L: Link> Backend for SerialBackend<L> {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn configure(&mut self, network: &Network) -> Result<(), BackendError> {
        network.validate()?;
        self.block(async |core| core.configure(network).await)
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

/// A serial port the operating system reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// The port's path, e.g. `/dev/ttyACM0`.
    pub path: String,
    /// What kind of port it is, with the USB identity where known.
    pub description: String,
}

/// The serial ports of this machine (without libudev: on Linux from `/sys/class/tty`). May be
/// empty; a pseudo-terminal is never listed.
pub fn available_ports() -> Result<Vec<PortInfo>, String> {
    let ports = tokio_serial::available_ports().map_err(|e| e.description)?;
    Ok(ports
        .into_iter()
        .map(|p| {
            let description = match p.port_type {
                tokio_serial::SerialPortType::UsbPort(u) => {
                    let mut d = format!("USB {:04x}:{:04x}", u.vid, u.pid);
                    for s in [
                        u.manufacturer,
                        u.product,
                        u.serial_number.map(|s| format!("serial {s}")),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        d.push_str(", ");
                        d.push_str(&s);
                    }
                    d
                }
                tokio_serial::SerialPortType::PciPort => "PCI".into(),
                tokio_serial::SerialPortType::BluetoothPort => "Bluetooth".into(),
                tokio_serial::SerialPortType::Unknown => "unknown type".into(),
            };
            PortInfo {
                path: p.port_name,
                description,
            }
        })
        .collect())
}
