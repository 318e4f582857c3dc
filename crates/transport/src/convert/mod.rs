//! Conversions between protocol messages and the `spikeloop-backend` types, for both ends of
//! the link.
//!
//! The one idea: everything that could make a frame too large is split here, where the sizes
//! are known, and everything a peer declares (sample counts, layer sizes, trace lengths) is
//! checked against what actually arrived *before* memory is reserved for it. The host side turns
//! a [`Network`](spikeloop_backend::Network) into a chunked configure sequence
//! ([`configure_messages`]), an input batch into run requests that each fit a frame
//! ([`run_requests`]) and result pages back into a
//! [`RunOutput`](spikeloop_backend::RunOutput) ([`RunResultAssembler`]); the device side does the
//! reverse ([`NetworkAssembler`], [`batch_from_request`], [`EncodedRun`]).
//!
//! Times in runs travel as clock ticks (see [`crate::timecode`]); the device receives ticks and
//! never a float time, so input times are quantised (within half a tick) and spike times come
//! back as exact multiples of a tick. Network parameters (weights, bias times, neuron
//! parameters) travel as IEEE doubles in model units and round-trip exactly.

mod codes;
mod errors;
mod handshake;
mod membrane;
mod network;
mod run;

pub use codes::{
    CIRCUIT_CODES_LEN, checked_writes, circuit_codes, codes_of, entries_per_frame, write_requests,
};
pub use errors::{MAX_ERROR_NAME_LEN, backend_error, error_from_backend, fit_error};
pub use handshake::{
    DeviceInfo, first_request_id, hello, negotiate_version, session_nonce, window_ticks,
};
pub use membrane::{EncodedTrace, TraceAssembler, membrane_request, membrane_request_from};
pub use network::{
    AssemblyLimits, NetworkAssembler, WeightCodes, configure_messages, network_from_messages,
    neuron_message, update_messages,
};
pub use run::{
    EncodedRun, RunResultAssembler, batch_from_request, decode_inputs, largest_spike_code,
    one_sample_page_bound, recorded_layers, run_requests, stats_from_message, stats_message,
};

use crate::frame::MIN_FRAME_LEN;
use crate::messages::pb;
use crate::timecode::TimeCodeError;

/// Why a conversion failed. Each variant maps onto a protocol error
/// ([`ConvertError::to_error_message`]) for a device to answer with, and onto a
/// [`BackendError`](spikeloop_backend::BackendError) ([`ConvertError::into_backend_error`]) for a
/// host to report.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// A field holds a value outside its allowed range.
    #[error("{field} = {value} is out of range{}", range_text(*min, *max))]
    OutOfRange {
        /// The field, as named in the `.proto` files, with an index where useful.
        field: String,
        /// The offending value.
        value: f64,
        /// Smallest allowed value, where there is one.
        min: Option<f64>,
        /// Largest allowed value, where there is one.
        max: Option<f64>,
    },
    /// A time of a run or a recording outside what the device accepts.
    #[error(
        "{field} (sample {sample}, input {channel}) is a time of {ticks} ticks, outside {why}: allowed {min} to {max} ticks"
    )]
    TimeOutOfRange {
        /// The entry, as named in the `.proto` files with its index (`input_codes[7]`).
        field: String,
        /// The sample it belongs to.
        sample: usize,
        /// Its input channel.
        channel: usize,
        /// The time it decodes to, ticks.
        ticks: f64,
        /// Earliest allowed time, ticks.
        min: i64,
        /// Latest allowed time, ticks.
        max: i64,
        /// What bounds it ("the sample window" or "the protocol's range").
        why: &'static str,
    },
    /// The network is inconsistent or incomplete.
    #[error("invalid network: {0}")]
    InvalidNetwork(String),
    /// The inputs of a run do not form a valid batch.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The network needs more of a resource than the receiver has.
    #[error("network needs {needed} {resource}, {available} available ({detail})")]
    DoesNotFit {
        /// A short name of the resource, for example "neurons" or "synapse rows per chip half".
        resource: String,
        /// How many are needed.
        needed: u64,
        /// How many there are.
        available: u64,
        /// Where it runs out and how the need was counted.
        detail: String,
    },
    /// The message is not allowed now (for example a chunk before `ConfigureBegin`).
    #[error("{0}")]
    BadState(String),
    /// The host's and the device's protocol version ranges do not overlap.
    #[error(
        "protocol versions do not overlap: host speaks {host_min}..={host_max}, device {device_min}..={device_max}; update the older side"
    )]
    UnsupportedVersion {
        /// Oldest version the host speaks.
        host_min: u32,
        /// Newest version the host speaks.
        host_max: u32,
        /// Oldest version the device speaks.
        device_min: u32,
        /// Newest version the device speaks.
        device_max: u32,
    },
    /// Not even the smallest unit (one chunk value, one sample, one trace value) fits a frame.
    #[error(
        "{what} needs a frame of {needed} bytes but the receiver accepts at most {limit}; raise its max frame size"
    )]
    FrameTooSmall {
        /// What did not fit.
        what: &'static str,
        /// Frame size it needs, in bytes.
        needed: usize,
        /// The receiver's limit.
        limit: usize,
    },
    /// The peer's answer contradicts the request or the protocol.
    #[error("device answered inconsistently: {0}")]
    BadReply(String),
    /// A time or time code could not be converted.
    #[error(transparent)]
    Time(#[from] TimeCodeError),
}

fn range_text(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) if a == b => format!("; must be {a}"),
        (Some(a), Some(b)) => format!("; allowed {a} to {b}"),
        (Some(a), None) => format!("; must be at least {a}"),
        (None, Some(b)) => format!("; must be at most {b}"),
        (None, None) => String::new(),
    }
}

impl From<spikeloop_backend::FitError> for ConvertError {
    fn from(e: spikeloop_backend::FitError) -> Self {
        ConvertError::DoesNotFit {
            resource: e.resource.into(),
            needed: e.needed as u64,
            available: e.available as u64,
            detail: e.detail,
        }
    }
}

/// Longest `Error.message` in bytes.
pub const MAX_ERROR_MESSAGE_LEN: usize = 200;

/// `text` cut to at most `max` bytes at a character boundary.
pub(crate) fn truncate_utf8(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

impl ConvertError {
    /// A shorthand for [`ConvertError::OutOfRange`].
    pub fn out_of_range(
        field: impl Into<String>,
        value: impl Into<f64>,
        min: Option<f64>,
        max: Option<f64>,
    ) -> ConvertError {
        ConvertError::OutOfRange {
            field: field.into(),
            value: value.into(),
            min,
            max,
        }
    }

    /// The protocol `Error` a device answers with; `request_type` is the refused request's
    /// header type byte, `state` the device's state (used for `BAD_STATE`).
    pub fn to_error_message(&self, request_type: u8, state: pb::DeviceState) -> pb::Error {
        let text = match self {
            ConvertError::InvalidNetwork(m) | ConvertError::InvalidInput(m) => m.clone(),
            other => other.to_string(),
        };
        let mut e = pb::Error {
            message: truncate_utf8(&text, MAX_ERROR_MESSAGE_LEN),
            request_type: u32::from(request_type),
            ..Default::default()
        };
        let code = match self {
            ConvertError::OutOfRange {
                field,
                value,
                min,
                max,
            } => {
                e.field = field.clone();
                e.value = Some(*value);
                e.min = *min;
                e.max = *max;
                pb::ErrorCode::OutOfRange
            }
            ConvertError::TimeOutOfRange {
                field,
                ticks,
                min,
                max,
                ..
            } => {
                e.field = field.clone();
                e.value = Some(*ticks);
                e.min = Some(*min as f64);
                e.max = Some(*max as f64);
                pb::ErrorCode::OutOfRange
            }
            ConvertError::InvalidNetwork(_) => pb::ErrorCode::InvalidNetwork,
            ConvertError::InvalidInput(_) => pb::ErrorCode::OutOfRange,
            ConvertError::DoesNotFit {
                resource,
                needed,
                available,
                detail,
            } => {
                e.message = truncate_utf8(detail, MAX_ERROR_MESSAGE_LEN);
                e.resource = resource.clone();
                e.needed = *needed;
                e.available = *available;
                pb::ErrorCode::DoesNotFit
            }
            ConvertError::BadState(_) => {
                e.state = state as i32;
                pb::ErrorCode::BadState
            }
            ConvertError::UnsupportedVersion {
                device_min,
                device_max,
                ..
            } => {
                e.min = Some(f64::from(*device_min));
                e.max = Some(f64::from(*device_max));
                pb::ErrorCode::UnsupportedVersion
            }
            ConvertError::FrameTooSmall { what, needed, .. } => {
                e.field = format!("max frame size ({what})");
                e.value = Some(*needed as f64);
                e.min = Some(*needed as f64);
                pb::ErrorCode::OutOfRange
            }
            ConvertError::BadReply(_) => pb::ErrorCode::Internal,
            ConvertError::Time(_) => pb::ErrorCode::OutOfRange,
        };
        e.code = code as i32;
        e
    }

    /// The error as a host reports it through the `Backend` trait.
    pub fn into_backend_error(self, backend: &str) -> spikeloop_backend::BackendError {
        use spikeloop_backend::BackendError as B;
        match self {
            ConvertError::InvalidNetwork(m) => B::InvalidNetwork(m),
            ConvertError::DoesNotFit {
                resource,
                needed,
                available,
                detail,
            } => B::DoesNotFit {
                backend: backend.to_string(),
                resource,
                needed: usize::try_from(needed).unwrap_or(usize::MAX),
                available: usize::try_from(available).unwrap_or(usize::MAX),
                detail,
            },
            e @ (ConvertError::InvalidInput(_)
            | ConvertError::OutOfRange { .. }
            | ConvertError::TimeOutOfRange { .. }
            | ConvertError::Time(_)) => B::InvalidInput(e.to_string()),
            e => B::Device {
                backend: backend.to_string(),
                message: e.to_string(),
            },
        }
    }
}

/// Payload bytes a frame of `max_frame_size` bytes leaves room for.
pub fn payload_budget(max_frame_size: usize) -> usize {
    max_frame_size.saturating_sub(MIN_FRAME_LEN)
}

/// Bytes a packed repeated field with `body` bytes of content adds to a message (tag, length,
/// content); 0 for an empty field, which protobuf omits.
pub(crate) fn packed_field_len(body: usize) -> usize {
    if body == 0 {
        0
    } else {
        1 + prost::encoding::encoded_len_varint(body as u64) + body
    }
}

/// `usize` to `u32`, or an out-of-range error naming the field.
pub(crate) fn to_u32(field: &str, value: usize) -> Result<u32, ConvertError> {
    u32::try_from(value)
        .map_err(|_| ConvertError::out_of_range(field, value as f64, None, Some(u32::MAX as f64)))
}
