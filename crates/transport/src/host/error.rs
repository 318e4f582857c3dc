//! How a host is configured, what it counts on its link, and why a call failed.

use super::*;

/// How a host talks to a device.
#[derive(Clone, Debug, PartialEq)]
pub struct HostConfig {
    /// Name sent in `Hello` (at most 64 bytes).
    pub host_name: String,
    /// Largest frame the host accepts, bytes; at least 256.
    pub max_frame_size: u32,
    /// Line rate in baud, for the transmission time in deadlines (8N1: 10 bits per byte).
    pub baud: u32,
    /// Retries after a timeout, a damaged answer or a `FRAME_DAMAGED` notice, per request.
    pub retries: u32,
    /// Margin added to every deadline.
    pub margin: Duration,
    /// Shortest wait for an answer before a retry, however fast the link has been.
    pub min_retry_timeout: Duration,
    /// Wait for the answer to the first request of a kind, before the link's round trip for it
    /// has been measured (RFC 6298's initial 1 s).
    pub initial_retry_timeout: Duration,
    /// How long to wait for each `HelloReply` (before the device has told its timing).
    pub handshake_timeout: Duration,
    /// How many times to send `Hello` before giving up (a board that resets when the port
    /// opens needs a moment to boot).
    pub handshake_attempts: u32,
}

impl Default for HostConfig {
    /// 65536-byte frames, 115200 baud, 8 retries, 100 ms margin, retry timeouts of 50 ms at
    /// least and 1 s before a round trip was measured, 5 handshakes of 1 s each.
    fn default() -> Self {
        HostConfig {
            host_name: format!("spikeloop {}", env!("CARGO_PKG_VERSION")),
            max_frame_size: 65536,
            baud: 115_200,
            retries: 8,
            margin: Duration::from_millis(100),
            min_retry_timeout: Duration::from_millis(50),
            initial_retry_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(1),
            handshake_attempts: 5,
        }
    }
}

/// Why a call to a device failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The link ended or failed: the device was unplugged, powered off or its port closed.
    #[error("the device disconnected ({reason}); reconnect it, then start again")]
    Disconnected {
        /// What the link reported.
        reason: String,
    },
    /// No intact answer arrived, however often the request was sent.
    #[error("{}", unreachable_text(*request, *attempts, *deadline_ms, *damaged))]
    Unreachable {
        /// The request that went unanswered.
        request: MessageType,
        /// How often it was sent.
        attempts: u32,
        /// The deadline of the last attempt, milliseconds.
        deadline_ms: u64,
        /// Frames of this call that arrived damaged or that the device reported damaged
        /// (`FRAME_DAMAGED`, `FRAME_TOO_LARGE`): more than none means a noisy line rather than
        /// a silent device.
        damaged: u64,
    },
    /// The device answered in state POWER_ON: it restarted and lost its network.
    #[error(
        "the device restarted (it answered {request} in state POWER_ON: power loss, watchdog or a DTR reset) and lost its network; reconnect, then start again"
    )]
    DeviceReset {
        /// The request that found the device restarted.
        request: MessageType,
    },
    /// The device speaks no protocol version this host speaks.
    #[error(
        "protocol versions do not overlap: this host speaks {PROTOCOL_VERSION}..={PROTOCOL_VERSION}, the device {device_min}..={device_max}; update the older side"
    )]
    IncompatibleVersion {
        /// Oldest version the device speaks.
        device_min: u32,
        /// Newest version the device speaks.
        device_max: u32,
    },
    /// The device refused a request with an `Error`.
    #[error("the device refused {request}: {}", refusal_text(.error))]
    Refused {
        /// The refused request.
        request: MessageType,
        /// The device's error.
        error: Box<pb::Error>,
    },
    /// An intact answer contradicts the request or the protocol.
    #[error("the device answered inconsistently: {0}")]
    BadReply(String),
    /// A run or recording was asked for before a network was configured.
    #[error("no network configured: call configure() before run()")]
    NotConfigured,
    /// A request could not be built or an answer not converted.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// A request could not be encoded.
    #[error(transparent)]
    Message(#[from] MessageError),
}

fn unreachable_text(request: MessageType, attempts: u32, deadline_ms: u64, damaged: u64) -> String {
    if damaged > 0 {
        format!(
            "{request} got no intact answer in {attempts} attempts: {damaged} frames arrived damaged or were reported damaged by the device: the line is noisy (a loose connector, a long or unshielded cable, a baud rate at the edge of what the line carries); raise the retry budget or fix the line"
        )
    } else {
        format!(
            "the device did not answer {request} ({attempts} attempts, the last one waiting {deadline_ms} ms); check the port, the cable, the baud rate and that the firmware runs"
        )
    }
}

pub(super) fn refusal_text(e: &pb::Error) -> String {
    let code = pb::ErrorCode::try_from(e.code)
        .map_or("unknown error code", |c| c.as_str_name())
        .trim_start_matches("ERROR_CODE_")
        .to_string();
    format!("{code}: {}", e.message)
}

impl HostError {
    /// The error as the `Backend` trait reports it for backend `name`: refusals map as the
    /// specification says (`DOES_NOT_FIT` to `DoesNotFit`, `OUT_OF_RANGE` to `InvalidInput`,
    /// ...), conversion errors to what they mean, and everything about the link (disconnects,
    /// resets, timeouts, contradictions) to `BackendError::Disconnected`, `Restarted` or
    /// `Device` with this error's text.
    pub fn into_backend_error(self, name: &str) -> spikeloop_backend::BackendError {
        match self {
            HostError::Refused { error, .. } => backend_error(&error, name),
            HostError::Convert(e) => e.into_backend_error(name),
            HostError::NotConfigured => spikeloop_backend::BackendError::NotConfigured,
            HostError::Disconnected { reason } => spikeloop_backend::BackendError::Disconnected {
                backend: name.to_string(),
                reason,
            },
            HostError::DeviceReset { request } => spikeloop_backend::BackendError::Restarted {
                backend: name.to_string(),
                detail: format!(
                    "it answered {request} in state POWER_ON: power loss, watchdog or a DTR reset"
                ),
            },
            other => spikeloop_backend::BackendError::Device {
                backend: name.to_string(),
                message: other.to_string(),
            },
        }
    }
}

/// What happened on the link since a host connected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounts {
    /// Requests sent (not counting retries).
    pub requests: u64,
    /// Requests sent again with the same id.
    pub retries: u64,
    /// Attempts whose deadline passed without an intact answer.
    pub timeouts: u64,
    /// Damaged frames received (bad CRC, bad COBS, too short, too large, bad version or length).
    pub damaged_frames: u64,
    /// Intact frames discarded because they answer another request (late replays).
    pub stale_frames: u64,
    /// `FRAME_TOO_LARGE` notices from the device (a request frame was damaged into garbage).
    pub frame_too_large: u64,
    /// `FRAME_DAMAGED` notices from the device (it received a damaged frame).
    pub frame_damaged: u64,
    /// `BUSY` answers.
    pub busy: u64,
    /// Bytes written.
    pub bytes_sent: u64,
    /// Bytes read.
    pub bytes_received: u64,
    /// Attempts that waited past their deadline by more than a millisecond (never expected).
    pub deadline_overruns: u64,
}
