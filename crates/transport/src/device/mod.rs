//! The device side of the protocol: any [`Backend`] served behind the wire protocol, exactly as a
//! firmware serves its chip. This is the *virtual device*: the stand-in firmware of the tests,
//! the demos and `spikeloop device`.
//!
//! The one idea: the server is a pure state machine over bytes ([`VirtualDevice::receive`]: bytes
//! in, bytes out), with no I/O, threads or clocks of its own; its one serve loop ([`serve`])
//! carries it over a pseudo-terminal, an in-memory pipe and a faulty line alike, and every one
//! of them behaves exactly as `firmware-interface/README.md` specifies:
//!
//! * **Receiving**: frames that fail COBS, length, CRC or version checks are dropped unexecuted,
//!   counted and answered at once with `FRAME_DAMAGED` (request id 0), a negative
//!   acknowledgement that lets the host retry without waiting; an oversized frame is discarded
//!   with memory bounded by the device's `max_frame_size` and answered once with
//!   `FRAME_TOO_LARGE` (request id 0).
//! * **Replay**: every answer is cached under `(request id, type, CRC of the request frame)`;
//!   a duplicate request gets the cached bytes again and is not executed again, so a retried run
//!   does not advance the noise and a retried chunk is not written twice.
//! * **State machine**: POWER_ON, READY, CONFIGURING, CONFIGURED, with `BAD_STATE` naming the
//!   state for a request that is not allowed in it.
//! * **Errors**: unknown types, contradicting flags, malformed payloads and out-of-range values
//!   are typed `Error` answers that name the field and the allowed range.
//!
//! Times in runs arrive as ticks and are handed to the backend as `k * tick` model units, which
//! is exactly where the emulated chip would have released them itself, so a run through the
//! virtual device gives bit for bit the spikes of the same run in process (given the same
//! backend state and one `RunRequest` per batch).

mod config;
mod requests;
mod serve;

use std::collections::VecDeque;
use std::time::Instant;

use spikeloop_backend::{Backend, BackendError, Network, Record};

pub use config::{Defects, DeviceConfig, DeviceCounters, DeviceError};
pub use serve::{Hangup, serve};

use crate::convert::{
    AssemblyLimits, ConvertError, DeviceInfo, EncodedRun, EncodedTrace, NetworkAssembler,
    batch_from_request, error_from_backend, membrane_request_from, negotiate_version,
    one_sample_page_bound,
};
use crate::frame::{Frame, FrameDecoder, FrameError, MIN_MAX_FRAME_SIZE, crc32};
use crate::messages::{Message, MessageType, PROTOCOL_VERSION, decode_message, encode_message, pb};
use crate::timecode::TickScale;

/// A cached answer: replayed to a request of the same id, type and frame CRC.
struct CacheEntry {
    request_id: u32,
    message_type: u8,
    crc: u32,
    is_error: bool,
    answer: Vec<u8>,
}

/// The shape of the configured network, as far as runs need it.
#[derive(Clone, Debug)]
struct Loaded {
    n_inputs: usize,
    layer_sizes: Vec<usize>,
}

/// A [`Backend`] behind the spikeloop wire protocol. See the module documentation.
pub struct VirtualDevice<B> {
    backend: B,
    info: DeviceInfo,
    scale: TickScale,
    max_weight: Option<f64>,
    replay_cache_len: usize,
    defects: Defects,
    state: pb::DeviceState,
    host_max_frame_size: usize,
    decoder: FrameDecoder,
    assembler: NetworkAssembler,
    loaded: Option<Loaded>,
    /// The loaded network as committed, which a weight update starts from.
    committed: Option<Network>,
    run: Option<EncodedRun>,
    trace: Option<EncodedTrace>,
    cache: VecDeque<CacheEntry>,
    counters: DeviceCounters,
    started: Instant,
}

impl<B: Backend> std::fmt::Debug for VirtualDevice<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualDevice")
            .field("device_id", &self.info.device_id)
            .field("state", &self.state)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

type Answer = Result<Message, Box<pb::Error>>;

fn error(code: pb::ErrorCode, request_type: u8, message: impl Into<String>) -> Box<pb::Error> {
    Box::new(pb::Error {
        code: code as i32,
        message: crate::convert::truncate_utf8(
            &message.into(),
            crate::convert::MAX_ERROR_MESSAGE_LEN,
        ),
        request_type: u32::from(request_type),
        ..Default::default()
    })
}

fn state_name(state: pb::DeviceState) -> &'static str {
    match state {
        pb::DeviceState::PowerOn => "POWER_ON",
        pb::DeviceState::Ready => "READY",
        pb::DeviceState::Configuring => "CONFIGURING",
        pb::DeviceState::Configured => "CONFIGURED",
        pb::DeviceState::Unspecified => "UNSPECIFIED",
    }
}

impl<B: Backend> VirtualDevice<B> {
    /// A device in state POWER_ON serving `backend` as `config` describes.
    pub fn new(backend: B, config: DeviceConfig) -> Result<Self, DeviceError> {
        let invalid = |field, value: String, allowed| {
            Err(DeviceError::InvalidConfig {
                field,
                value,
                allowed,
            })
        };
        if config.max_frame_size < MIN_MAX_FRAME_SIZE || config.max_frame_size > u32::MAX as usize {
            return invalid(
                "max_frame_size",
                config.max_frame_size.to_string(),
                "allowed 256 to 4294967295 bytes",
            );
        }
        if config.max_requests_in_flight == 0 {
            return invalid("max_requests_in_flight", "0".into(), "must be at least 1");
        }
        for (field, v) in [
            ("sample_window_us", config.sample_window_us),
            ("batch_overhead_us", config.batch_overhead_us),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return invalid(field, v.to_string(), "must be finite and not negative");
            }
        }
        let caps = backend.capabilities().clone();
        let tick_ns = config.tick_ns.or(caps.time_resolution_ns).unwrap_or(8.0);
        let tau_s_us = config.tau_s_us.or(caps.tau_s_us).unwrap_or(6.0);
        let scale = TickScale::new(tick_ns, tau_s_us)?;
        let mut capabilities = caps.clone();
        capabilities.name = crate::convert::truncate_utf8(&config.device_id, 64);
        capabilities.time_resolution_ns = Some(tick_ns);
        capabilities.tau_s_us = Some(tau_s_us);
        // The device takes weight updates whatever it serves: only the weights cross the line.
        capabilities.features.weight_update = true;
        // Circuits are numbered by max_neurons on the wire: without it, no codes.
        capabilities.features.parameter_codes =
            caps.features.parameter_codes && caps.max_neurons.is_some();
        let noise_position = backend.noise_position();
        let info = DeviceInfo {
            version: PROTOCOL_VERSION,
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            device_id: capabilities.name.clone(),
            firmware_version: crate::convert::truncate_utf8(&config.firmware_version, 64),
            capabilities,
            scale,
            synapse_rows: config.synapse_rows,
            max_frame_size: config.max_frame_size,
            max_requests_in_flight: config.max_requests_in_flight,
            max_samples_per_run: (config.max_samples_per_run > 0)
                .then_some(config.max_samples_per_run),
            sample_window_us: config.sample_window_us,
            batch_overhead_us: config.batch_overhead_us,
            command_timeout_ms: config.command_timeout_ms,
            noise_position,
            session_nonce: 0,
            sample_window_ticks: caps
                .sample_window
                .map_or(0, |w| crate::convert::window_ticks(w, &scale)),
            chip_id: backend
                .chip_id()
                .map(|id| crate::convert::truncate_utf8(&id, 64)),
        };
        let limits = AssemblyLimits {
            max_neurons: caps.max_neurons,
            geometry: caps
                .geometry
                .filter(|_| !config.defects.fit_checked_at_commit),
            weight_codes: crate::convert::WeightCodes::of(&caps),
            ..AssemblyLimits::default()
        };
        Ok(VirtualDevice {
            backend,
            info,
            scale,
            max_weight: caps.max_weight,
            replay_cache_len: config.replay_cache_len,
            defects: config.defects,
            state: pb::DeviceState::PowerOn,
            host_max_frame_size: MIN_MAX_FRAME_SIZE,
            decoder: FrameDecoder::new(config.max_frame_size),
            assembler: NetworkAssembler::new(limits),
            loaded: None,
            committed: None,
            run: None,
            trace: None,
            cache: VecDeque::new(),
            counters: DeviceCounters::default(),
            started: Instant::now(),
        })
    }

    /// The backend behind the protocol.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// What the device announces in its `HelloReply`.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The protocol state.
    pub fn state(&self) -> pb::DeviceState {
        self.state
    }

    /// The counters since the device was made.
    pub fn counters(&self) -> DeviceCounters {
        self.counters
    }

    /// The bytes a device sends right after it boots: one 0x00, which ends any partial frame
    /// the host's receiver holds.
    pub fn boot(&mut self, out: &mut Vec<u8>) {
        out.push(0);
    }

    /// Forgets a partial frame (the host went away in the middle of one). The protocol state,
    /// the network and the replay cache stay, as on a device that stays powered.
    pub fn line_reset(&mut self) {
        self.decoder.reset();
    }

    /// Consumes bytes from the line and appends the device's answers to `out`.
    pub fn receive(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        for &b in bytes {
            if let Some(item) = self.decoder.push_byte(b) {
                self.handle_item(item, out);
            }
        }
    }

    fn handle_item(&mut self, item: Result<Frame, FrameError>, out: &mut Vec<u8>) {
        match item {
            Err(FrameError::TooLarge { limit }) => {
                self.counters.frames_rejected += 1;
                let e = error(
                    pb::ErrorCode::FrameTooLarge,
                    0,
                    format!(
                        "a frame exceeded the device's max_frame_size of {limit} bytes and was discarded"
                    ),
                );
                self.send(0, Message::Error(*e), 0, out);
            }
            Err(e) => {
                self.counters.frames_rejected += 1;
                if self.defects.count_damaged_as_received {
                    self.counters.frames_received += 1;
                }
                if !self.defects.silent_on_damage {
                    // A negative acknowledgement: the host need not wait for its deadline.
                    let e = error(
                        pb::ErrorCode::FrameDamaged,
                        0,
                        format!("a frame arrived damaged and was dropped unexecuted: {e}"),
                    );
                    self.send(0, Message::Error(*e), 0, out);
                }
            }
            Ok(frame) => {
                self.counters.frames_received += 1;
                self.handle_frame(&frame, out);
            }
        }
    }

    /// Encodes `message`, the answer to a request of type byte `request_type`, for the host;
    /// returns the wire bytes it appended. An `Error` is first fitted to the host's frame limit
    /// (its fields bounded, its message shortened), so that it always arrives with its code and
    /// request type.
    fn send(
        &mut self,
        request_id: u32,
        message: Message,
        request_type: u8,
        out: &mut Vec<u8>,
    ) -> Vec<u8> {
        let limit = self.host_max_frame_size;
        let fit = |m: Message, defects: Defects| match m {
            Message::Error(mut e) => {
                defects.damage_error(&mut e);
                if !defects.unbounded_errors {
                    crate::convert::fit_error(&mut e, limit);
                }
                Message::Error(e)
            }
            m => m,
        };
        let message = fit(message, self.defects);
        let mut is_error = matches!(message, Message::Error(_));
        let wire = match encode_message(request_id, &message, limit) {
            Ok(w) => w,
            Err(e) => {
                // Pages are sized to fit, so this is a firmware bug: report it, never send an
                // oversized frame.
                is_error = true;
                let err = error(
                    pb::ErrorCode::Internal,
                    request_type,
                    format!("answer could not be encoded: {e}"),
                );
                let err = fit(Message::Error(*err), Defects::default());
                encode_message(request_id, &err, limit).unwrap_or_default()
            }
        };
        if is_error {
            self.counters.errors_sent += 1;
        }
        out.extend_from_slice(&wire);
        wire
    }

    fn handle_frame(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        let header = frame.header;
        let crc = frame_crc(frame);
        // A Hello opens a session and is always executed: answering it from the cache would
        // let a new host inherit the last one's state and answers.
        let is_hello = header.message_type == MessageType::Hello.byte();
        let cacheable = !is_hello || self.defects.replay_hello;
        let hit = self.cache.iter().find(|e| {
            cacheable
                && e.request_id == header.request_id
                && e.message_type == header.message_type
                && e.crc == crc
        });
        if let Some(entry) = hit {
            out.extend_from_slice(&entry.answer);
            self.counters.requests_replayed += 1;
            if entry.is_error {
                self.counters.errors_sent += 1;
            }
            return;
        }
        self.counters.requests_executed += 1;
        let answer = match self.execute(frame) {
            Ok(m) => m,
            Err(e) => Message::Error(*e),
        };
        let is_error = matches!(answer, Message::Error(_));
        let wire = self.send(header.request_id, answer, header.message_type, out);
        if self.replay_cache_len > 0 && cacheable {
            while self.cache.len() >= self.replay_cache_len {
                self.cache.pop_front();
            }
            self.cache.push_back(CacheEntry {
                request_id: header.request_id,
                message_type: header.message_type,
                crc,
                is_error,
                answer: wire,
            });
        }
    }

    fn bad_state(&self, ty: MessageType) -> Box<pb::Error> {
        let mut e = error(
            pb::ErrorCode::BadState,
            ty.byte(),
            format!(
                "{} is not allowed in state {}",
                ty.name(),
                state_name(self.state)
            ),
        );
        e.state = self.state as i32;
        e
    }

    fn convert_error(&self, e: &ConvertError, ty: MessageType) -> Box<pb::Error> {
        Box::new(e.to_error_message(ty.byte(), self.state))
    }

    /// The answer to a page read: the page, the reason it cannot be cut, or BAD_STATE when
    /// there is nothing to page through.
    fn page_answer<P>(
        &self,
        page: Option<Result<P, ConvertError>>,
        wrap: fn(P) -> Message,
        ty: MessageType,
    ) -> Result<Message, Box<pb::Error>> {
        match page {
            Some(Ok(p)) => Ok(wrap(p)),
            Some(Err(e)) => Err(self.convert_error(&e, ty)),
            None => Err(self.bad_state(ty)),
        }
    }
}

/// CRC-32 of a received frame (equal to its trailer, which the decoder has checked).
fn frame_crc(frame: &Frame) -> u32 {
    let len = u32::try_from(frame.payload.len()).unwrap_or(u32::MAX);
    let mut raw = Vec::with_capacity(frame.len());
    if let Ok(h) = frame.header.to_bytes(len) {
        raw.extend_from_slice(&h);
    }
    raw.extend_from_slice(&frame.payload);
    crc32(&raw)
}
