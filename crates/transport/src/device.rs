//! The device side of the protocol: any [`Backend`] served behind the wire protocol, exactly as a
//! firmware serves its chip. This is the *virtual device*: the stand-in firmware of the tests,
//! the demos and `spikeloop device`.
//!
//! The one idea: the server is a pure state machine over bytes ([`VirtualDevice::receive`]: bytes
//! in, bytes out), with no I/O, threads or clocks of its own, so that one implementation serves a
//! pseudo-terminal from a blocking loop ([`serve_blocking`]), an in-memory pipe from a task
//! ([`serve`]) and a faulty line in the fault-injection tests, and every one of them behaves
//! exactly as `firmware-interface/README.md` specifies:
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

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Instant;

use spikeloop_backend::{Backend, BackendError, Record};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::convert::{
    AssemblyLimits, ConvertError, DeviceInfo, EncodedRun, EncodedTrace, NetworkAssembler,
    batch_from_request, error_from_backend, membrane_request_from, negotiate_version,
    one_sample_page_bound,
};
use crate::frame::{Frame, FrameDecoder, FrameError, MIN_MAX_FRAME_SIZE, crc32};
use crate::messages::{Message, MessageType, PROTOCOL_VERSION, decode_message, encode_message, pb};
use crate::timecode::{TickScale, TimeCodeError};

/// How a virtual device presents its backend on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceConfig {
    /// The device's identifier (at most 64 bytes); the host's backend name.
    pub device_id: String,
    /// Firmware name and version (at most 64 bytes).
    pub firmware_version: String,
    /// Largest frame the device accepts, bytes (header + payload + CRC); at least 256. The host
    /// splits a batch into several runs only when it does not fit one frame, so a large limit
    /// keeps one batch one run (on a device with pseudo-random noise the split would change
    /// which noise a sample sees).
    pub max_frame_size: usize,
    /// Requests the host may have outstanding; at least 1. The device executes requests in the
    /// order they arrive and never answers `BUSY`.
    pub max_requests_in_flight: u32,
    /// Answers kept for replay; at least `max_requests_in_flight`. 0 disables replay, which
    /// violates the specification (a retried request is executed again): only for testing the
    /// conformance suite against a broken device.
    pub replay_cache_len: usize,
    /// Longest time to answer a request other than a run or a recording, milliseconds. It must
    /// also cover the time the backend needs beyond the hardware time it announces (an emulator
    /// computes rather than waits).
    pub command_timeout_ms: u32,
    /// Tick of the wire's time codes, ns; `None` takes the backend's time resolution, or 8 ns
    /// (the BrainScaleS-2 FPGA clock) when its times are exact.
    pub tick_ns: Option<f64>,
    /// Hardware duration of one model time unit, us; `None` takes the backend's, or 6 us.
    pub tau_s_us: Option<f64>,
    /// Hardware time per sample, us (the host's run deadlines derive from it).
    pub sample_window_us: f64,
    /// Hardware time per run on top of its samples, us.
    pub batch_overhead_us: f64,
    /// Most samples per `RunRequest`; 0 for no limit besides the frame size.
    pub max_samples_per_run: u32,
    /// Synapse rows to announce (informative).
    pub synapse_rows: Option<u32>,
    /// Deliberate violations of the specification; all off in a conforming device. Only for
    /// showing that the conformance suite catches them.
    pub defects: Defects,
}

/// Defects a firmware might have, each reproducible on the virtual device so that the tests can
/// show the conformance suite failing against it. A conforming device has none
/// (`Defects::default()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defects {
    /// Looks `Hello` up in the replay cache like any request, so that a new host session whose
    /// `Hello` is byte-identical to the last one's is answered from the cache, nothing is reset
    /// and later requests get the previous session's answers.
    pub replay_hello: bool,
    /// Executes `Hello` but keeps the replay cache, so that a new session's request that is
    /// byte-identical to one of the last session's is answered with the old answer.
    pub keep_cache_on_hello: bool,
    /// Runs a `RunRequest` before deciding that one sample's results may not fit the host's
    /// frames, so that a refused run still advances the run counter and the noise.
    pub run_before_page_check: bool,
    /// Sends errors with unbounded fields, so that one can exceed the host's smallest frame
    /// and arrive as `INTERNAL` without its code and request type.
    pub unbounded_errors: bool,
    /// Names fields in a free form (`input_codes (entries)`) and leaves value, min and max off
    /// errors about time codes.
    pub legacy_error_fields: bool,
    /// Leaves the fit rules to the substrate, so that a network they refuse is accepted at
    /// `ConfigureBegin` and refused only at `ConfigureCommit`, after all its weights were sent.
    pub fit_checked_at_commit: bool,
    /// Leaves the sample window to the substrate instead of checking input times and
    /// durations against it.
    pub window_unchecked: bool,
    /// Drops damaged frames without the `FRAME_DAMAGED` notice, so that the host must wait
    /// for its deadline before it retries.
    pub silent_on_damage: bool,
    /// Counts damaged frames in `frames_received` too (the counter's definition is intact
    /// frames only).
    pub count_damaged_as_received: bool,
}

impl Default for DeviceConfig {
    /// A device of the emulated chip's timing (48 us per sample, 100 us per run), frames up to
    /// 256 KiB, one request in flight, 16 cached answers, 10 s command timeout.
    fn default() -> Self {
        DeviceConfig {
            device_id: "spikeloop-virtual-device".into(),
            firmware_version: format!("spikeloop-virtual-device {}", env!("CARGO_PKG_VERSION")),
            max_frame_size: 1 << 18,
            max_requests_in_flight: 1,
            replay_cache_len: 16,
            command_timeout_ms: 10_000,
            tick_ns: None,
            tau_s_us: None,
            sample_window_us: 48.0,
            batch_overhead_us: 100.0,
            max_samples_per_run: 0,
            synapse_rows: None,
            defects: Defects::default(),
        }
    }
}

impl DeviceConfig {
    /// The configuration of a virtual device serving `backend`: the protocol defaults, with the
    /// timing (sample window and per-run overhead) and the synapse rows the backend describes
    /// in its capabilities, so that the device announces what it serves.
    pub fn serving(backend: &dyn Backend) -> Self {
        let caps = backend.capabilities();
        let defaults = Self::default();
        let tau_s_us = caps.tau_s_us.unwrap_or(6.0);
        Self {
            sample_window_us: caps
                .sample_window
                .map_or(defaults.sample_window_us, |w| w * tau_s_us),
            batch_overhead_us: caps.batch_overhead_us.unwrap_or(defaults.batch_overhead_us),
            synapse_rows: caps
                .geometry
                .and_then(|g| u32::try_from(g.rows_per_half * g.halves).ok()),
            ..defaults
        }
    }
}

/// Why a virtual device could not be set up.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// A configuration value is outside what the protocol allows.
    #[error("invalid device configuration: {field} = {value}; {allowed}")]
    InvalidConfig {
        /// The field of [`DeviceConfig`].
        field: &'static str,
        /// Its value, as text.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// The tick or the model time unit is unusable.
    #[error("invalid device time base: {0}")]
    TimeBase(#[from] TimeCodeError),
}

/// Counters of a virtual device since it was made (what `DeviceStats` reports).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DeviceCounters {
    /// Frames received with a valid CRC.
    pub frames_received: u64,
    /// Frames dropped before they could be answered (bad COBS, CRC, length, version, size).
    pub frames_rejected: u64,
    /// Duplicate requests answered from the replay cache.
    pub requests_replayed: u64,
    /// Error frames sent.
    pub errors_sent: u64,
    /// Runs executed.
    pub runs: u64,
    /// Samples run.
    pub samples: u64,
    /// First spikes recorded.
    pub spikes: u64,
    /// Hardware time of all runs, us.
    pub hardware_time_us: f64,
    /// Input events lost.
    pub lost_events: u64,
    /// Spikes after a neuron's first.
    pub later_spikes: u64,
    /// Requests executed (not replayed), answered or refused.
    pub requests_executed: u64,
}

struct CacheEntry {
    request_id: u32,
    message_type: u8,
    crc: u32,
    is_error: bool,
    answer: Vec<u8>,
}

impl Defects {
    /// Rewrites an error the way a device with these defects would send it.
    fn damage_error(&self, e: &mut pb::Error) {
        if self.legacy_error_fields && e.code == pb::ErrorCode::OutOfRange as i32 {
            if e.field == "input_codes" {
                e.field = "input_codes (entries)".into();
            } else if e.field.starts_with("input_codes[") {
                e.field = "input_codes".into();
                (e.value, e.min, e.max) = (None, None, None);
            }
        }
        if self.unbounded_errors && e.code == pb::ErrorCode::DoesNotFit as i32 {
            e.resource = format!("{} ({})", e.resource, e.message);
            e.message = format!(
                "network does not fit: needs {} {}, {} available",
                e.needed, e.resource, e.available
            );
        }
    }
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
        };
        let limits = AssemblyLimits {
            max_neurons: caps.max_neurons,
            geometry: caps
                .geometry
                .filter(|_| !config.defects.fit_checked_at_commit),
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

    fn execute(&mut self, frame: &Frame) -> Answer {
        let byte = frame.header.message_type;
        let ty = match MessageType::from_byte(byte) {
            Some(t) if t.is_request() => t,
            _ => {
                return Err(error(
                    pb::ErrorCode::UnknownMessageType,
                    byte,
                    format!(
                        "message type {byte:#04x} is not a request; requests are 0x01, 0x10-0x12, 0x20, 0x22, 0x30, 0x32, 0x40, 0x50, 0x60"
                    ),
                ));
            }
        };
        if frame.header.request_id == 0 {
            let mut e = error(
                pb::ErrorCode::OutOfRange,
                byte,
                "request id 0 is reserved for device frames; use 1 to 4294967295",
            );
            e.field = "request_id".into();
            e.value = Some(0.0);
            e.min = Some(1.0);
            e.max = Some(f64::from(u32::MAX));
            return Err(e);
        }
        let message = decode_message(frame).map_err(|e| {
            error(
                e.error_code(),
                byte,
                crate::convert::truncate_utf8(&e.to_string(), 200),
            )
        })?;
        use pb::DeviceState as S;
        match (self.state, message) {
            (_, Message::Hello(h)) => self.hello(&h, ty),
            (S::PowerOn, _) => Err(self.bad_state(ty)),
            (_, Message::StatsRequest(_)) => Ok(Message::DeviceStats(self.stats())),
            (_, Message::ResetRequest(_)) => {
                self.reset();
                self.cache.clear();
                Ok(Message::ResetReply(pb::ResetReply {
                    state: self.state as i32,
                }))
            }
            (_, Message::SetNoisePosition(m)) => self.set_noise_position(m.position, ty),
            (_, Message::ConfigureBegin(m)) => {
                self.drop_network();
                let ack = self
                    .assembler
                    .begin(&m)
                    .map_err(|e| self.convert_error(&e, ty))?;
                self.state = S::Configuring;
                Ok(Message::ConfigureAck(ack))
            }
            (S::Configuring, Message::ConfigureChunk(m)) => self
                .assembler
                .chunk(&m)
                .map(Message::ConfigureAck)
                .map_err(|e| self.convert_error(&e, ty)),
            (S::Configuring, Message::ConfigureCommit(m)) => self.commit(&m, ty),
            (S::Configured, Message::RunRequest(m)) => self.run(&m, ty),
            (S::Configured, Message::ReadRunResult(m)) if self.run.is_some() => {
                let page = self
                    .run
                    .as_ref()
                    .map(|r| r.page(m.first_sample, self.host_max_frame_size));
                self.page_answer(page, Message::RunResult, ty)
            }
            (S::Configured, Message::MembraneRequest(m)) => self.record(&m, ty),
            (S::Configured, Message::ReadMembraneTrace(m)) if self.trace.is_some() => {
                let page = self
                    .trace
                    .as_ref()
                    .map(|t| t.page(m.first_value, self.host_max_frame_size));
                self.page_answer(page, Message::MembraneTrace, ty)
            }
            _ => Err(self.bad_state(ty)),
        }
    }

    fn drop_network(&mut self) {
        self.assembler.abort();
        self.loaded = None;
        self.run = None;
        self.trace = None;
        if self.state != pb::DeviceState::PowerOn {
            self.state = pb::DeviceState::Ready;
        }
    }

    fn reset(&mut self) {
        self.drop_network();
        self.state = pb::DeviceState::Ready;
    }

    fn hello(&mut self, h: &pb::Hello, ty: MessageType) -> Answer {
        let version = negotiate_version(h, self.info.min_version, self.info.max_version)
            .map_err(|e| self.convert_error(&e, ty))?;
        if (h.host_max_frame_size as usize) < MIN_MAX_FRAME_SIZE {
            return Err(self.convert_error(
                &ConvertError::out_of_range(
                    "host_max_frame_size",
                    h.host_max_frame_size,
                    Some(MIN_MAX_FRAME_SIZE as f64),
                    Some(f64::from(u32::MAX)),
                ),
                ty,
            ));
        }
        if h.session_nonce == 0 {
            return Err(self.convert_error(
                &ConvertError::out_of_range("session_nonce", 0, Some(1.0), Some(u64::MAX as f64)),
                ty,
            ));
        }
        self.reset();
        if !self.defects.keep_cache_on_hello {
            self.cache.clear();
        }
        self.host_max_frame_size = h.host_max_frame_size as usize;
        self.info.version = version;
        self.info.noise_position = self.backend.noise_position();
        self.info.session_nonce = h.session_nonce;
        Ok(Message::HelloReply(self.info.to_hello_reply()))
    }

    fn stats(&self) -> pb::DeviceStats {
        let c = &self.counters;
        pb::DeviceStats {
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            state: self.state as i32,
            frames_received: c.frames_received,
            frames_rejected: c.frames_rejected,
            requests_replayed: c.requests_replayed,
            errors_sent: c.errors_sent,
            runs: c.runs,
            samples: c.samples,
            spikes: c.spikes,
            hardware_time_us: c.hardware_time_us,
            lost_events: c.lost_events,
            later_spikes: c.later_spikes,
            noise_position: self.backend.noise_position(),
        }
    }

    fn unsupported(&self, ty: MessageType, feature: &str) -> Box<pb::Error> {
        let mut e = error(
            pb::ErrorCode::UnsupportedFeature,
            ty.byte(),
            format!("{feature} is not supported by {}", self.info.device_id),
        );
        e.feature = feature.into();
        e
    }

    fn set_noise_position(&mut self, position: u64, ty: MessageType) -> Answer {
        if !self.info.capabilities.features.noise_position {
            return Err(self.unsupported(ty, "noise position"));
        }
        self.backend
            .set_noise_position(position)
            .map_err(|e| Box::new(error_from_backend(&e, ty.byte())))?;
        Ok(Message::NoisePosition(pb::NoisePosition {
            position: self.backend.noise_position().unwrap_or(position),
        }))
    }

    fn commit(&mut self, m: &pb::ConfigureCommit, ty: MessageType) -> Answer {
        let (network, mut ack) = self
            .assembler
            .commit(m)
            .map_err(|e| self.convert_error(&e, ty))?;
        if let Err(e) = self.backend.configure(&network) {
            // The configuration is consumed; the host starts again with ConfigureBegin.
            self.state = pb::DeviceState::Ready;
            return Err(Box::new(error_from_backend(&e, ty.byte())));
        }
        ack.clipped_weights = self.max_weight.map_or(0, |max| {
            network
                .layers
                .iter()
                .flat_map(|l| &l.weights)
                .filter(|w| w.abs() > max)
                .count() as u64
        });
        self.loaded = Some(Loaded {
            n_inputs: network.n_inputs,
            layer_sizes: network.layer_sizes(),
        });
        self.state = pb::DeviceState::Configured;
        Ok(Message::ConfigureAck(ack))
    }

    fn loaded(&self, ty: MessageType) -> Result<Loaded, Box<pb::Error>> {
        self.loaded.clone().ok_or_else(|| self.bad_state(ty))
    }

    fn run(&mut self, m: &pb::RunRequest, ty: MessageType) -> Answer {
        let loaded = self.loaded(ty)?;
        if let Some(max) = self
            .info
            .max_samples_per_run
            .filter(|&max| m.n_samples > max)
        {
            return Err(self.convert_error(
                &ConvertError::out_of_range(
                    "n_samples",
                    m.n_samples,
                    Some(1.0),
                    Some(f64::from(max)),
                ),
                ty,
            ));
        }
        let window = self.checked_window();
        let (batch, record) = batch_from_request(m, &self.scale, window, loaded.n_inputs)
            .map_err(|e| self.convert_error(&e, ty))?;
        let sizes = match record {
            Record::AllLayers => loaded.layer_sizes.clone(),
            Record::OutputOnly => loaded.layer_sizes.last().copied().into_iter().collect(),
        };
        // A refused request leaves the state unchanged: decide whether one sample's page fits
        // the host's frames before anything runs (the noise must not move for a refusal).
        let needed = one_sample_page_bound(&sizes, window);
        let too_large = needed > self.host_max_frame_size;
        if too_large && !self.defects.run_before_page_check {
            return Err(self.frame_too_small(needed, ty));
        }
        self.run = None;
        self.trace = None;
        let output = self
            .backend
            .run(&batch, record)
            .map_err(|e| self.backend_error(&e, ty))?;
        let c = &mut self.counters;
        c.runs += 1;
        if too_large {
            // Only a device with the defect gets here.
            return Err(self.frame_too_small(needed, ty));
        }
        c.samples += output.stats.samples as u64;
        c.spikes += output.stats.spikes;
        c.hardware_time_us += output.stats.hardware_time_us.unwrap_or(0.0);
        c.lost_events += output.stats.lost_events;
        c.later_spikes += output.stats.later_spikes;
        let encoded = EncodedRun::new(&output, &sizes, &self.scale, self.backend.noise_position())
            .map_err(|e| self.convert_error(&e, ty))?;
        let page = encoded
            .page(0, self.host_max_frame_size)
            .map_err(|e| self.convert_error(&e, ty))?;
        self.run = Some(encoded);
        Ok(Message::RunResult(page))
    }

    /// The sample window the device checks times against, in ticks (0: none).
    fn checked_window(&self) -> u64 {
        if self.defects.window_unchecked {
            0
        } else {
            self.info.sample_window_ticks
        }
    }

    /// `OUT_OF_RANGE` on `host_max_frame_size`: an answer needs `needed`-byte frames.
    fn frame_too_small(&self, needed: usize, ty: MessageType) -> Box<pb::Error> {
        let mut e = error(
            pb::ErrorCode::OutOfRange,
            ty.byte(),
            format!(
                "one sample of the recorded layers may need a {needed}-byte RunResult frame; the host accepts {} (Hello.host_max_frame_size): raise it, or record the output layer only",
                self.host_max_frame_size
            ),
        );
        e.field = "host_max_frame_size".into();
        e.value = Some(self.host_max_frame_size as f64);
        e.min = Some(needed as f64);
        e.max = Some(f64::from(u32::MAX));
        e
    }

    fn backend_error(&self, e: &BackendError, ty: MessageType) -> Box<pb::Error> {
        match e {
            BackendError::NotConfigured => self.bad_state(ty),
            // Every input the device documents as valid has been checked against the sample
            // window already; a substrate that still refuses one contradicts the device.
            BackendError::InvalidInput(m) => error(
                pb::ErrorCode::Internal,
                ty.byte(),
                format!("the substrate refused inputs the device accepted: {m}"),
            ),
            other => Box::new(error_from_backend(other, ty.byte())),
        }
    }

    fn record(&mut self, m: &pb::MembraneRequest, ty: MessageType) -> Answer {
        let loaded = self.loaded(ty)?;
        if !self.backend.capabilities().features.membrane_recording {
            return Err(self.unsupported(ty, "membrane recording"));
        }
        let mut request =
            membrane_request_from(m, &self.scale, self.checked_window(), loaded.n_inputs)
                .map_err(|e| self.convert_error(&e, ty))?;
        // W ticks may exceed the window by a rounding error; the recording is the whole window.
        if let Some(w) = self.info.capabilities.sample_window {
            request.duration = request.duration.min(w);
        }
        let n_layers = loaded.layer_sizes.len();
        let Some(&size) = loaded.layer_sizes.get(request.layer) else {
            return Err(self.convert_error(
                &ConvertError::out_of_range(
                    "layer",
                    m.layer,
                    Some(0.0),
                    Some(n_layers.saturating_sub(1) as f64),
                ),
                ty,
            ));
        };
        if request.neuron >= size {
            return Err(self.convert_error(
                &ConvertError::out_of_range("neuron", m.neuron, Some(0.0), Some((size - 1) as f64)),
                ty,
            ));
        }
        self.run = None;
        self.trace = None;
        let trace = self
            .backend
            .record_membrane(&request)
            .map_err(|e| self.backend_error(&e, ty))?;
        let encoded = EncodedTrace::new(&trace, self.backend.noise_position());
        let page = encoded
            .page(0, self.host_max_frame_size)
            .map_err(|e| self.convert_error(&e, ty))?;
        self.trace = Some(encoded);
        Ok(Message::MembraneTrace(page))
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

/// Serves `device` over a blocking byte stream until the stream ends (a read returns 0 bytes):
/// sends the boot byte, then answers whatever arrives. Interrupted reads are retried; any other
/// I/O error ends the loop and is returned.
pub fn serve_blocking<B: Backend, R: Read, W: Write>(
    device: &mut VirtualDevice<B>,
    mut reader: R,
    mut writer: W,
) -> io::Result<()> {
    let mut out = Vec::new();
    device.boot(&mut out);
    writer.write_all(&out)?;
    writer.flush()?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.clear();
        device.receive(&buf[..n], &mut out);
        if !out.is_empty() {
            writer.write_all(&out)?;
            writer.flush()?;
        }
    }
}

/// Serves `device` over an asynchronous byte stream until it ends (see [`serve_blocking`]).
/// The backend runs on the calling task: a run blocks the task for as long as it computes.
pub async fn serve<B: Backend, S: AsyncRead + AsyncWrite + Unpin>(
    device: &mut VirtualDevice<B>,
    stream: &mut S,
) -> io::Result<()> {
    let mut out = Vec::new();
    device.boot(&mut out);
    stream.write_all(&out).await?;
    stream.flush().await?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.clear();
        device.receive(&buf[..n], &mut out);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            stream.flush().await?;
        }
    }
}
