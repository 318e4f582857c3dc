//! Serial ports: opening one for the protocol (raw 8N1, no flow control, exclusive access),
//! why one would not open, and which ones this machine has.

use std::io;

use tokio::runtime::Runtime;

use super::HostError;
use crate::device::DeviceError;

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
