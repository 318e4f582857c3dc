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
//! [`HostCore`] is asynchronous; [`crate::serial::SerialBackend`] drives it from the
//! synchronous `Backend` trait.

use std::collections::VecDeque;
use std::time::Duration;

use spikeloop_backend::{
    InputBatch, MembraneRequest, MembraneTrace, Network, Record, RunOutput, RunStats, SpikeTimes,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::convert::{
    ConvertError, DeviceInfo, RunResultAssembler, TraceAssembler, backend_error,
    configure_messages, hello, membrane_request, run_requests,
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

fn refusal_text(e: &pb::Error) -> String {
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

enum Attempt {
    Answer(Box<Message>),
    /// The deadline passed without an intact answer.
    TimedOut,
    /// A damaged frame, or the device's notice of one: retry at once.
    Damaged,
}

/// Smoothed round-trip time and its variation of one kind of request (RFC 6298), seconds.
#[derive(Clone, Copy, Debug)]
struct RoundTrip {
    srtt: f64,
    rttvar: f64,
}

/// Measured round trips, by request type and the size class (power of two) of the request
/// frame, so that a large run and a small acknowledgement each get a timeout of their own.
#[derive(Debug, Default)]
struct RoundTrips {
    estimates: std::collections::HashMap<(u8, u32), RoundTrip>,
}

impl RoundTrips {
    fn key(ty: MessageType, wire_len: usize) -> (u8, u32) {
        (ty.byte(), usize::BITS - wire_len.leading_zeros())
    }

    /// Takes one measured round trip of an attempt that was answered without a retry (Karn's
    /// rule: a retried request's answer cannot be matched to one of its sendings).
    fn measured(&mut self, key: (u8, u32), seconds: f64) {
        self.estimates
            .entry(key)
            .and_modify(|e| {
                e.rttvar = 0.75 * e.rttvar + 0.25 * (e.srtt - seconds).abs();
                e.srtt = 0.875 * e.srtt + 0.125 * seconds;
            })
            .or_insert(RoundTrip {
                srtt: seconds,
                rttvar: seconds / 2.0,
            });
    }

    /// RFC 6298's retransmission timeout, `SRTT + 4 RTTVAR`, for a measured kind.
    fn timeout(&self, key: (u8, u32)) -> Option<Duration> {
        self.estimates
            .get(&key)
            .map(|e| Duration::from_secs_f64(e.srtt + 4.0 * e.rttvar))
    }
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
        // Request ids start at a point drawn with the session's nonce, so that ids do not
        // repeat from one host session to the next (a late answer meant for an earlier host is
        // then discarded as stale, never taken for an answer).
        core.next_id = ((core.session_nonce >> 32) as u32 ^ core.session_nonce as u32).max(1);
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

    /// Loads `network`: `ConfigureBegin`, chunks sized for the device's frames, `ConfigureCommit`.
    pub async fn configure(&mut self, network: &Network) -> Result<(), HostError> {
        self.network = None;
        self.check_fits(network)?;
        let messages = configure_messages(network, self.info.max_frame_size)?;
        let expected = messages
            .iter()
            .filter(|m| matches!(m, Message::ConfigureChunk(_)))
            .map(|m| match m {
                Message::ConfigureChunk(c) => c.values.len() as u64,
                _ => 0,
            })
            .sum::<u64>();
        for message in &messages {
            let answer = self.call(message, 0.0).await?;
            let Message::ConfigureAck(ack) = answer else {
                return Err(HostError::BadReply(format!(
                    "{} was answered with {}",
                    message.message_type(),
                    answer.message_type()
                )));
            };
            if ack.values_expected != expected {
                return Err(HostError::BadReply(format!(
                    "the device expects {} values for a network of {expected}",
                    ack.values_expected
                )));
            }
            if let Message::ConfigureCommit(_) = message {
                if !ack.committed || ack.values_received != expected {
                    return Err(HostError::BadReply(format!(
                        "ConfigureCommit was acknowledged with committed = {}, {} of {expected} values",
                        ack.committed, ack.values_received
                    )));
                }
                if ack.clipped_weights > 0 {
                    tracing::debug!(
                        clipped = ack.clipped_weights,
                        "device clipped weights to its largest weight"
                    );
                }
            }
        }
        self.network = Some(network.clone());
        Ok(())
    }

    /// Refuses, before anything is sent, a network the device's announced limits reject: more
    /// neurons than `max_neurons`, or a shape its fit rules cannot place.
    fn check_fits(&self, network: &Network) -> Result<(), HostError> {
        let caps = &self.info.capabilities;
        let neurons = network.n_neurons();
        if let Some(max) = caps.max_neurons.filter(|&max| neurons > max) {
            return Err(ConvertError::DoesNotFit {
                resource: "neurons".into(),
                needed: neurons as u64,
                available: max as u64,
                detail: format!("layer sizes {:?}", network.layer_sizes()),
            }
            .into());
        }
        if let Some(geometry) = &caps.geometry {
            let shape: Vec<(usize, usize)> = network
                .layers
                .iter()
                .map(|l| (l.size, l.bias_times.len()))
                .collect();
            geometry
                .place(network.n_inputs, &shape)
                .map_err(ConvertError::from)?;
        }
        Ok(())
    }

    /// Refuses, before anything is sent, run requests whose input times the device's sample
    /// window rejects: the very check the device makes ([`crate::convert::decode_inputs`]),
    /// with samples counted over the whole batch.
    fn check_requests(&self, requests: &[pb::RunRequest]) -> Result<(), HostError> {
        let mut scratch = Vec::new();
        let mut first = 0;
        for r in requests {
            scratch.clear();
            let n = r.n_inputs as usize;
            if let Err(e) = crate::convert::decode_inputs(
                &r.input_codes,
                n,
                &self.info.scale,
                self.info.sample_window_ticks,
                &mut scratch,
            ) {
                let tick = self.info.scale.tick();
                return Err(HostError::Convert(ConvertError::InvalidInput(match e {
                    ConvertError::TimeOutOfRange {
                        sample,
                        channel,
                        ticks,
                        min,
                        max,
                        why,
                        ..
                    } => format!(
                        "sample {}, input {channel}: time {} tau_s ({ticks} ticks of {} ns) lies outside {why} of {}: allowed {} to {} tau_s",
                        first + sample,
                        ticks * tick,
                        self.info.scale.tick_ns(),
                        self.info.device_id,
                        min as f64 * tick,
                        max as f64 * tick,
                    ),
                    other => other.to_string(),
                })));
            }
            first += r.n_samples as usize;
        }
        Ok(())
    }

    /// Runs `batch` and reads every page of its results.
    pub async fn run(
        &mut self,
        batch: &InputBatch,
        record: Record,
    ) -> Result<RunOutput, HostError> {
        let started = std::time::Instant::now();
        let Some(network) = self.network.clone() else {
            return Err(HostError::NotConfigured);
        };
        let requests = run_requests(
            batch,
            record,
            &self.info.scale,
            self.info.max_frame_size,
            self.info.max_samples_per_run,
        )?;
        let (layers, sizes) = crate::convert::recorded_layers(&network, record);
        self.check_requests(&requests)?;
        let needed = crate::convert::one_sample_page_bound(&sizes, self.info.sample_window_ticks);
        if needed > self.config.max_frame_size as usize {
            return Err(ConvertError::FrameTooSmall {
                what: "a RunResult with one sample of the recorded layers",
                needed,
                limit: self.config.max_frame_size as usize,
            }
            .into());
        }
        let mut data = Vec::with_capacity(batch.len() * sizes.iter().sum::<usize>());
        let mut stats = RunStats::default();
        let mut hardware = None::<f64>;
        for req in requests {
            let n = req.n_samples as usize;
            let expected = self.info.expected_run_time_us(n);
            let mut assembler =
                RunResultAssembler::new(n, layers.clone(), sizes.clone(), self.info.scale);
            let mut answer = self.call(&Message::RunRequest(req), expected).await?;
            loop {
                let Message::RunResult(page) = &answer else {
                    return Err(HostError::BadReply(format!(
                        "a run was answered with {}",
                        answer.message_type()
                    )));
                };
                assembler.add_page(page)?;
                let Some(first_sample) = assembler.next_sample() else {
                    break;
                };
                answer = self
                    .call(
                        &Message::ReadRunResult(pb::ReadRunResult { first_sample }),
                        0.0,
                    )
                    .await?;
            }
            if let Some(p) = assembler.noise_position() {
                self.noise_position = Some(p);
            }
            let out = assembler.finish()?;
            data.extend_from_slice(out.spikes.as_slice());
            stats.samples += out.stats.samples;
            stats.spikes += out.stats.spikes;
            stats.lost_events += out.stats.lost_events;
            stats.later_spikes += out.stats.later_spikes;
            if let Some(h) = out.stats.hardware_time_us {
                *hardware.get_or_insert(0.0) += h;
            }
        }
        stats.hardware_time_us = hardware;
        stats.wall_time = started.elapsed();
        let spikes =
            SpikeTimes::new(layers, sizes, data).map_err(|e| HostError::BadReply(e.to_string()))?;
        Ok(RunOutput { spikes, stats })
    }

    /// Records one neuron's membrane during one sample and reads every page of the trace.
    pub async fn record_membrane(
        &mut self,
        request: &MembraneRequest,
    ) -> Result<MembraneTrace, HostError> {
        let msg = membrane_request(request, &self.info.scale)?;
        // The device's own check of inputs and duration against its window, before sending.
        crate::convert::membrane_request_from(
            &msg,
            &self.info.scale,
            self.info.sample_window_ticks,
            msg.input_codes.len(),
        )?;
        let expected = self.info.expected_run_time_us(1);
        let mut assembler = TraceAssembler::new(MAX_TRACE_VALUES);
        let mut answer = self.call(&Message::MembraneRequest(msg), expected).await?;
        loop {
            let Message::MembraneTrace(page) = &answer else {
                return Err(HostError::BadReply(format!(
                    "a recording was answered with {}",
                    answer.message_type()
                )));
            };
            assembler.add_page(page)?;
            if page.noise_position.is_some() {
                self.noise_position = page.noise_position;
            }
            let Some(first_value) = assembler.next_value() else {
                break;
            };
            answer = self
                .call(
                    &Message::ReadMembraneTrace(pb::ReadMembraneTrace { first_value }),
                    0.0,
                )
                .await?;
        }
        Ok(assembler.finish()?)
    }

    /// Moves the device's trial-to-trial noise to `position`.
    pub async fn set_noise_position(&mut self, position: u64) -> Result<u64, HostError> {
        let answer = self
            .call(
                &Message::SetNoisePosition(pb::SetNoisePosition { position }),
                0.0,
            )
            .await?;
        match answer {
            Message::NoisePosition(p) => {
                self.noise_position = Some(p.position);
                Ok(p.position)
            }
            m => Err(HostError::BadReply(format!(
                "SetNoisePosition was answered with {}",
                m.message_type()
            ))),
        }
    }

    /// The device's counters.
    pub async fn stats(&mut self) -> Result<pb::DeviceStats, HostError> {
        match self
            .call(&Message::StatsRequest(pb::StatsRequest {}), 0.0)
            .await?
        {
            Message::DeviceStats(s) => Ok(s),
            m => Err(HostError::BadReply(format!(
                "StatsRequest was answered with {}",
                m.message_type()
            ))),
        }
    }

    /// Returns the device to READY (its network is dropped).
    pub async fn reset(&mut self) -> Result<(), HostError> {
        self.network = None;
        match self
            .call(&Message::ResetRequest(pb::ResetRequest {}), 0.0)
            .await?
        {
            Message::ResetReply(_) => Ok(()),
            m => Err(HostError::BadReply(format!(
                "ResetRequest was answered with {}",
                m.message_type()
            ))),
        }
    }

    /// Closes the connection and returns the link.
    pub fn into_link(self) -> L {
        self.link
    }
}

/// Device information before the handshake: nothing known, the protocol's minimum frame size.
fn placeholder_info() -> DeviceInfo {
    let scale = crate::golden::golden_scale();
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
    }
}
