//! The host side of the protocol over any [`Link`]: sessions, handshake, deadlines, retries,
//! and the `Backend` operations as request sequences.
//!
//! The one idea: **a call is retried only when it cannot have gone wrong in a visible way.** A
//! request is sent again, with the *same* request id and the byte-identical frame, exactly when
//! no intact answer came: an answer arrived damaged (bad CRC, bad COBS, a frame too large), the
//! device reported a damaged frame (`FRAME_DAMAGED`, `FRAME_TOO_LARGE`: retry at once), or the
//! attempt's timeout passed; the device's replay cache makes that safe. Every answer that
//! arrives intact is final: a refusal becomes a typed error, a contradiction a
//! [`HostError::BadReply`], and nothing is retried on a guess. Answers to other request ids
//! (late replays of earlier calls) are discarded, so an answer is never taken for the wrong
//! question; each connection is a session of its own (a random nonce in `Hello`, request ids
//! starting at a random point), so neither is an answer meant for an earlier host.
//!
//! Timeouts: each attempt but the last waits what this link's measured round trips for that
//! kind of request suggest (RFC 6298: `SRTT + 4 RTTVAR`, at least
//! [`HostConfig::min_retry_timeout`], doubling after each timeout); the last waits the
//! specification's deadline (`firmware-interface/README.md`, timing and deadlines), so that a
//! slow but healthy device is never given up on:
//!
//! ```text
//! deadline = transmit(request) + transmit(largest answer) + expected + command_timeout_ms + margin
//! transmit(n) = n * 10 / baud seconds;  expected = 2 * (batch_overhead_us + n * sample_window_us)
//! ```
//!
//! Before anything is sent, a request is checked against what the device announced (neurons,
//! fit rules, sample window, the page bound of one sample), so an impossible one fails without
//! traffic. A read that reports the end of the stream or an I/O error is a disconnect
//! ([`HostError::Disconnected`]); an answer `BAD_STATE` in state POWER_ON means the device
//! restarted and lost its network ([`HostError::DeviceReset`]). Both are reported, not hidden:
//! the caller reconnects (and a trainer resumes from its checkpoint).
//!
//! [`HostCore`] is asynchronous; [`DeviceBackend`] drives it from the
//! synchronous `Backend` trait.

use std::collections::VecDeque;
use std::time::Duration;

use spikeloop_backend::{
    InputBatch, MembraneRequest, MembraneTrace, Network, NeuronCodes, Record, RunOutput, RunStats,
    SpikeTimes,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::convert::{
    ConvertError, DeviceInfo, RunResultAssembler, TraceAssembler, backend_error,
    configure_messages, hello, membrane_request, run_requests, update_messages,
};
use crate::frame::{Flags, Frame, FrameDecoder, FrameError, max_wire_len};
use crate::link::Link;
use crate::messages::{
    Message, MessageError, MessageType, PROTOCOL_VERSION, decode_message, encode_message, pb,
};

/// Bytes the host reserves for answers that are not pages (acknowledgements, statistics,
/// errors): every such answer fits.
const SMALL_ANSWER: usize = 512;
/// Longest membrane trace a host accepts, values.
const MAX_TRACE_VALUES: usize = 1 << 24;

mod backend;
mod error;
mod ports;
mod requests;
mod timing;

pub use backend::{DeviceBackend, InProcessBackend};
use error::refusal_text;
pub use error::{HostConfig, HostError, LinkCounts};
pub use ports::{OpenError, PortInfo, PortProblem, available_ports, open_port, runtime};
use timing::RoundTrips;

enum Attempt {
    Answer(Box<Message>),
    /// The deadline passed without an intact answer.
    TimedOut,
    /// A damaged frame, or the device's notice of one: retry at once.
    Damaged,
}

/// The host's protocol engine over a link: one request in flight at a time.
#[derive(Debug)]
pub struct HostCore<L> {
    link: L,
    config: HostConfig,
    info: DeviceInfo,
    decoder: FrameDecoder,
    pending: VecDeque<Result<Frame, FrameError>>,
    read_buf: Vec<u8>,
    next_id: u32,
    session_nonce: u64,
    counts: LinkCounts,
    round_trips: RoundTrips,
    network: Option<Network>,
    noise_position: Option<u64>,
}

impl<L: Link> HostCore<L> {
    /// Connects to the device at the other end of `link`: discards stale input, sends a 0x00
    /// (ending any partial frame at the device), then `Hello` until the device answers (at
    /// most `config.handshake_attempts` times) and checks the answer.
    pub async fn connect(mut link: L, config: HostConfig) -> Result<HostCore<L>, HostError> {
        link.discard_input().map_err(|e| HostError::Disconnected {
            reason: format!("could not flush stale input: {e}"),
        })?;
        let mut core = HostCore {
            link,
            decoder: FrameDecoder::new(config.max_frame_size as usize),
            info: placeholder_info(),
            config,
            pending: VecDeque::new(),
            read_buf: vec![0u8; 1 << 16],
            next_id: 1,
            session_nonce: crate::convert::session_nonce(),
            counts: LinkCounts::default(),
            round_trips: RoundTrips::default(),
            network: None,
            noise_position: None,
        };
        core.next_id = crate::convert::first_request_id(core.session_nonce);
        core.write(&[0]).await?;
        core.handshake().await?;
        Ok(core)
    }

    async fn handshake(&mut self) -> Result<(), HostError> {
        let id = self.take_id();
        let message = Message::Hello(hello(
            &self.config.host_name,
            self.config.max_frame_size,
            self.session_nonce,
        ));
        let wire = encode_message(id, &message, crate::frame::MIN_MAX_FRAME_SIZE)?;
        self.counts.requests += 1;
        let attempts = self.config.handshake_attempts.max(1);
        for attempt in 0..attempts {
            if attempt > 0 {
                self.counts.retries += 1;
            }
            self.write(&wire).await?;
            let deadline = Instant::now() + self.config.handshake_timeout;
            let answer = match self.attempt(id, MessageType::Hello, deadline).await {
                Ok(Attempt::Answer(m)) => match *m {
                    // An answer to another session's Hello (left on the line by an earlier
                    // host): not ours.
                    Message::HelloReply(r) if r.session_nonce != self.session_nonce => {
                        self.counts.stale_frames += 1;
                        continue;
                    }
                    m => m,
                },
                Ok(Attempt::TimedOut | Attempt::Damaged) => continue,
                Err(HostError::Refused { error, .. })
                    if error.code == pb::ErrorCode::UnsupportedVersion as i32 =>
                {
                    return Err(HostError::IncompatibleVersion {
                        device_min: error.min.map_or(0, |v| v as u32),
                        device_max: error.max.map_or(0, |v| v as u32),
                    });
                }
                Err(e) => return Err(e),
            };
            let Message::HelloReply(reply) = answer else {
                return Err(HostError::BadReply(format!(
                    "Hello was answered with {}",
                    answer.message_type()
                )));
            };
            if reply.max_version < PROTOCOL_VERSION || reply.min_version > PROTOCOL_VERSION {
                return Err(HostError::IncompatibleVersion {
                    device_min: reply.min_version,
                    device_max: reply.max_version,
                });
            }
            self.info = DeviceInfo::from_hello_reply(&reply)?;
            self.noise_position = self.info.noise_position;
            if self.info.capabilities.features.parameter_codes {
                let (chip_id, settle_us) = self.read_chip_id().await?;
                self.info.chip_id = chip_id;
                self.info.capabilities.parameter_settle_us = settle_us;
            }
            return Ok(());
        }
        Err(HostError::Unreachable {
            request: MessageType::Hello,
            attempts,
            deadline_ms: self.config.handshake_timeout.as_millis() as u64,
            damaged: 0,
        })
    }

    /// What the device said about itself in the handshake.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The host's configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// What happened on the link so far.
    pub fn counts(&self) -> LinkCounts {
        self.counts
    }

    /// The device's noise position as last reported (handshake, runs, recordings, or
    /// [`HostCore::set_noise_position`]); `None` without the feature.
    pub fn noise_position(&self) -> Option<u64> {
        self.noise_position
    }

    /// This connection's session nonce (sent in `Hello`, echoed by the device).
    pub fn session_nonce(&self) -> u64 {
        self.session_nonce
    }

    /// The network last configured successfully.
    pub fn network(&self) -> Option<&Network> {
        self.network.as_ref()
    }

    /// The link, for tests that inspect it.
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), HostError> {
        let disconnected = |e: std::io::Error| HostError::Disconnected {
            reason: format!("write failed: {e}"),
        };
        self.link.write_all(bytes).await.map_err(disconnected)?;
        self.link.flush().await.map_err(disconnected)?;
        self.counts.bytes_sent += bytes.len() as u64;
        Ok(())
    }

    /// The next decoder item, or `None` when `deadline` passes first.
    async fn next_item(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<Result<Frame, FrameError>>, HostError> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Ok(Some(item));
            }
            let read = tokio::time::timeout_at(deadline, self.link.read(&mut self.read_buf)).await;
            match read {
                Err(_) => {
                    let late = Instant::now().saturating_duration_since(deadline);
                    if late > Duration::from_millis(1) {
                        self.counts.deadline_overruns += 1;
                    }
                    return Ok(None);
                }
                Ok(Ok(0)) => {
                    return Err(HostError::Disconnected {
                        reason: "the line was closed (end of stream)".into(),
                    });
                }
                Ok(Ok(n)) => {
                    self.counts.bytes_received += n as u64;
                    let mut items = Vec::new();
                    self.decoder.push(&self.read_buf[..n], &mut items);
                    self.pending.extend(items);
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => {
                    return Err(HostError::Disconnected {
                        reason: format!("read failed: {e}"),
                    });
                }
            }
        }
    }

    /// Waits for the answer to request `id` of type `ty` until `deadline`.
    async fn attempt(
        &mut self,
        id: u32,
        ty: MessageType,
        deadline: Instant,
    ) -> Result<Attempt, HostError> {
        let mut damaged = false;
        loop {
            if damaged && self.pending.is_empty() {
                // A damaged frame may have been the answer, and nothing intact followed it in
                // what has arrived: ask again at once rather than wait for the deadline.
                return Ok(Attempt::Damaged);
            }
            let Some(item) = self.next_item(deadline).await? else {
                self.counts.timeouts += 1;
                return Ok(Attempt::TimedOut);
            };
            let frame = match item {
                Ok(f) => f,
                Err(e) => {
                    tracing::debug!(request = %ty, "damaged frame from the device: {e}");
                    self.counts.damaged_frames += 1;
                    damaged = true;
                    continue;
                }
            };
            let h = frame.header;
            if !h.flags.contains(Flags::RESPONSE) {
                // Not from a device (an echo of a request): never an answer.
                self.counts.stale_frames += 1;
                continue;
            }
            if h.request_id == 0 && h.message_type == MessageType::Error.byte() {
                if let Ok(Message::Error(e)) = decode_message(&frame) {
                    if e.code == pb::ErrorCode::FrameTooLarge as i32 {
                        // The device discarded a frame, possibly this request: send it again.
                        self.counts.frame_too_large += 1;
                        return Ok(Attempt::Damaged);
                    }
                    if e.code == pb::ErrorCode::FrameDamaged as i32 {
                        // The device received a damaged frame, possibly this request: a
                        // negative acknowledgement, so send it again at once.
                        self.counts.frame_damaged += 1;
                        return Ok(Attempt::Damaged);
                    }
                    tracing::warn!("device notice: {}", refusal_text(&e));
                }
                continue;
            }
            if h.request_id != id {
                self.counts.stale_frames += 1;
                continue;
            }
            let message = decode_message(&frame).map_err(|e| {
                HostError::BadReply(format!("the answer to {ty} is not a valid message: {e}"))
            })?;
            return match message {
                Message::Error(error) => {
                    if error.code == pb::ErrorCode::Busy as i32 {
                        self.counts.busy += 1;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        return Ok(Attempt::Damaged);
                    }
                    if error.code == pb::ErrorCode::BadState as i32
                        && error.state == pb::DeviceState::PowerOn as i32
                        && ty != MessageType::Hello
                    {
                        self.network = None;
                        return Err(HostError::DeviceReset { request: ty });
                    }
                    Err(HostError::Refused {
                        request: ty,
                        error: Box::new(error),
                    })
                }
                m if Some(m.message_type()) == ty.reply_type() => Ok(Attempt::Answer(Box::new(m))),
                m => Err(HostError::BadReply(format!(
                    "{ty} was answered with {}",
                    m.message_type()
                ))),
            };
        }
    }

    /// Transmission time of `n` bytes at the configured baud rate (8N1).
    fn transmit(&self, n: usize) -> Duration {
        Duration::from_secs_f64(n as f64 * 10.0 / f64::from(self.config.baud.max(1)))
    }

    /// The deadline of one attempt of a request of `request_wire` bytes whose answer is at
    /// most `answer_frame` bytes and whose execution is expected to take `expected_us` of
    /// hardware time.
    pub fn attempt_budget(
        &self,
        request_wire: usize,
        answer_frame: usize,
        expected_us: f64,
    ) -> Duration {
        self.transmit(request_wire)
            + self.transmit(max_wire_len(answer_frame))
            + Duration::from_secs_f64(2.0 * expected_us.max(0.0) * 1e-6)
            + Duration::from_millis(u64::from(self.info.command_timeout_ms))
            + self.config.margin
    }

    /// Sends `request` and returns its answer, retrying after timeouts and damaged answers.
    pub async fn call(
        &mut self,
        request: &Message,
        expected_us: f64,
    ) -> Result<Message, HostError> {
        let id = self.take_id();
        let ty = request.message_type();
        let wire = encode_message(id, request, self.info.max_frame_size)?;
        let answer_frame = match ty {
            MessageType::RunRequest
            | MessageType::ReadRunResult
            | MessageType::MembraneRequest
            | MessageType::ReadMembraneTrace => self.config.max_frame_size as usize,
            _ => SMALL_ANSWER,
        };
        // The specification's deadline: long enough for a slow but healthy device. The last
        // attempt always waits this long; earlier ones wait what this link's round trips for
        // this kind of request suggest, doubling after each timeout (RFC 6298), so that a lost
        // frame costs a few round trips rather than a whole deadline.
        let budget = self.attempt_budget(wire.len(), answer_frame, expected_us);
        let key = RoundTrips::key(ty, wire.len());
        self.counts.requests += 1;
        let attempts = self.config.retries + 1;
        let (mut damaged, mut backoff) = (0u64, 1u32);
        for attempt in 0..attempts {
            if attempt > 0 {
                self.counts.retries += 1;
                tracing::debug!(request = %ty, id, attempt, "retrying");
            }
            let wait = if attempt + 1 == attempts {
                budget
            } else {
                let rto = self
                    .round_trips
                    .timeout(key)
                    .unwrap_or(self.config.initial_retry_timeout)
                    .max(self.config.min_retry_timeout);
                rto.saturating_mul(backoff).min(budget)
            };
            self.write(&wire).await?;
            let sent = Instant::now();
            match self.attempt(id, ty, sent + wait).await? {
                Attempt::Answer(m) => {
                    if attempt == 0 {
                        self.round_trips.measured(key, sent.elapsed().as_secs_f64());
                    }
                    return Ok(*m);
                }
                Attempt::TimedOut => backoff = backoff.saturating_mul(2),
                Attempt::Damaged => damaged += 1,
            }
        }
        Err(HostError::Unreachable {
            request: ty,
            attempts,
            deadline_ms: budget.as_millis() as u64,
            damaged,
        })
    }

    /// Closes the connection and returns the link.
    pub fn into_link(self) -> L {
        self.link
    }
}

/// Device information before the handshake: nothing known, the protocol's minimum frame size.
fn placeholder_info() -> DeviceInfo {
    let scale = crate::conformance::golden::golden_scale();
    DeviceInfo {
        version: PROTOCOL_VERSION,
        min_version: PROTOCOL_VERSION,
        max_version: PROTOCOL_VERSION,
        device_id: String::new(),
        firmware_version: String::new(),
        capabilities: spikeloop_backend::Capabilities::unlimited("device"),
        scale,
        synapse_rows: None,
        max_frame_size: crate::frame::MIN_MAX_FRAME_SIZE,
        max_requests_in_flight: 1,
        max_samples_per_run: None,
        sample_window_us: 0.0,
        batch_overhead_us: 0.0,
        command_timeout_ms: 0,
        noise_position: None,
        session_nonce: 0,
        sample_window_ticks: 0,
        chip_id: None,
    }
}
