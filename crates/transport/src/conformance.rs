//! The conformance suite: does a device speak the protocol as `firmware-interface/README.md`
//! specifies?
//!
//! The one idea: the suite talks to the device frame by frame, below the host engine, so that it
//! can send what a correct host never sends (damaged, oversized, unknown, malformed and
//! duplicated frames) and check every answer byte for byte against the specification. Checks
//! that an answer is *absent* (a damaged frame must go unanswered) never wait for a timeout: the
//! suite sends a valid request right behind the damaged one, and since a device answers in
//! order, the first answer must be the valid request's. So the suite runs in well under a
//! second on a fast link, whatever the device's timeouts.
//!
//! [`run`] returns a [`Report`] with one line per check; it needs a device that holds the
//! 2-input 2-2-2 network of the golden frames (weights up to 2.0 threshold distances, times
//! within 2 `tau_s`). The suite leaves the device in state READY.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::convert::{DeviceInfo, configure_messages, hello, run_requests};
use crate::frame::{Flags, Frame, FrameDecoder, Header, MIN_MAX_FRAME_SIZE, encode_frame};
use crate::golden::{golden_batch, golden_network};
use crate::link::Link;
use crate::messages::{Message, MessageType, PROTOCOL_VERSION, decode_message, encode_message, pb};

/// The frame limit the suite announces: the protocol's minimum, so that paging is exercised.
const SUITE_FRAME_SIZE: u32 = MIN_MAX_FRAME_SIZE as u32;

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether the device behaved as specified.
    pub passed: bool,
    /// What was seen (for a failure: what was expected and what came instead).
    pub detail: String,
}

/// Every check of one run of the suite.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The device's identifier (empty when the handshake failed).
    pub device_id: String,
    /// The checks in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// Number of passed checks.
    pub fn passed(&self) -> usize {
        self.checks.iter().filter(|c| c.passed).count()
    }

    /// Number of failed checks.
    pub fn failed(&self) -> usize {
        self.checks.len() - self.passed()
    }

    /// True when every check passed.
    pub fn all_passed(&self) -> bool {
        self.failed() == 0 && !self.checks.is_empty()
    }

    fn add(&mut self, name: &'static str, result: Result<String, String>) -> bool {
        let passed = result.is_ok();
        let detail = match result {
            Ok(d) | Err(d) => d,
        };
        self.checks.push(Check {
            name,
            passed,
            detail,
        });
        passed
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.device_id.is_empty() {
            writeln!(f, "device {}", self.device_id)?;
        }
        for c in &self.checks {
            writeln!(
                f,
                "{} {}: {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            )?;
        }
        write!(
            f,
            "conformance: {} passed, {} failed",
            self.passed(),
            self.failed()
        )
    }
}

/// A frame-level client: sends raw bytes, receives decoded frames.
struct Client<L> {
    link: L,
    decoder: FrameDecoder,
    pending: VecDeque<Frame>,
    buf: Vec<u8>,
    next_id: u32,
    wait: Duration,
    /// The nonce of the session the suite is in.
    nonce: u64,
    /// `FRAME_DAMAGED` notices received so far.
    damaged_notices: u64,
}

/// True for the device's notice of a damaged frame (`FRAME_DAMAGED`, request id 0).
fn is_damage_notice(frame: &Frame) -> bool {
    frame.header.request_id == 0
        && code_of(frame).is_some_and(|e| e.code == pb::ErrorCode::FrameDamaged as i32)
}

type Outcome = Result<String, String>;

fn code_of(frame: &Frame) -> Option<pb::Error> {
    match decode_message(frame) {
        Ok(Message::Error(e)) => Some(e),
        _ => None,
    }
}

fn code_name(code: i32) -> &'static str {
    pb::ErrorCode::try_from(code).map_or("an unknown error code", |c| c.as_str_name())
}

fn describe(frame: &Frame) -> String {
    match decode_message(frame) {
        Ok(Message::Error(e)) => format!(
            "Error {} (\"{}\") with request id {}",
            code_name(e.code),
            e.message,
            frame.header.request_id
        ),
        Ok(m) => format!(
            "{} with request id {}",
            m.message_type(),
            frame.header.request_id
        ),
        Err(e) => format!("an undecodable frame ({e})"),
    }
}

impl<L: Link> Client<L> {
    fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.link
            .write_all(bytes)
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        self.link
            .flush()
            .await
            .map_err(|e| format!("write failed: {e}"))
    }

    /// The next intact frame, or an error after `self.wait` without one.
    async fn next_frame(&mut self) -> Result<Frame, String> {
        let deadline = Instant::now() + self.wait;
        loop {
            if let Some(f) = self.pending.pop_front() {
                return Ok(f);
            }
            match tokio::time::timeout_at(deadline, self.link.read(&mut self.buf)).await {
                Err(_) => {
                    return Err(format!("no answer within {} ms", self.wait.as_millis()));
                }
                Ok(Ok(0)) => return Err("the link was closed".into()),
                Ok(Ok(n)) => {
                    for item in self.decoder.decode(&self.buf[..n]) {
                        match item {
                            Ok(f) => self.pending.push_back(f),
                            Err(e) => {
                                return Err(format!("the device sent a damaged frame: {e}"));
                            }
                        }
                    }
                }
                Ok(Err(e)) => return Err(format!("read failed: {e}")),
            }
        }
    }

    /// Sends `wire` and returns the next frame that is not a `FRAME_DAMAGED` notice (the
    /// notices are counted in `self.damaged_notices`).
    async fn exchange_raw(&mut self, wire: &[u8]) -> Result<Frame, String> {
        self.send(wire).await?;
        loop {
            let frame = self.next_frame().await?;
            if is_damage_notice(&frame) {
                self.damaged_notices += 1;
                continue;
            }
            return Ok(frame);
        }
    }

    /// Sends `message` with a fresh id; returns the id, the wire bytes and the answer frame,
    /// which must carry that id.
    async fn request(&mut self, message: &Message) -> Result<(u32, Vec<u8>, Frame), String> {
        let id = self.id();
        let wire = encode_message(id, message, usize::MAX).map_err(|e| e.to_string())?;
        let frame = self.exchange_raw(&wire).await?;
        if frame.header.request_id != id {
            return Err(format!(
                "{} was answered by {} (expected request id {id})",
                message.message_type(),
                describe(&frame)
            ));
        }
        Ok((id, wire, frame))
    }

    /// Sends `message` and expects the answer of its type.
    async fn call(&mut self, message: &Message) -> Result<Message, String> {
        let (_, _, frame) = self.request(message).await?;
        let ty = message.message_type();
        match decode_message(&frame) {
            Ok(m) if Some(m.message_type()) == ty.reply_type() => Ok(m),
            _ => Err(format!("{ty} was answered by {}", describe(&frame))),
        }
    }

    /// Sends a frame and expects an `Error` of `code` echoing `id` and the request type.
    async fn expect_error(
        &mut self,
        wire: &[u8],
        id: u32,
        request_type: u8,
        code: pb::ErrorCode,
    ) -> Result<pb::Error, String> {
        let frame = self.exchange_raw(wire).await?;
        let Some(e) = code_of(&frame) else {
            return Err(format!(
                "expected Error {}, got {}",
                code.as_str_name(),
                describe(&frame)
            ));
        };
        if e.code != code as i32 || frame.header.request_id != id {
            return Err(format!(
                "expected Error {} with request id {id}, got {}",
                code.as_str_name(),
                describe(&frame)
            ));
        }
        if frame.header.flags.defined() != (Flags::RESPONSE | Flags::ERROR) {
            return Err(format!(
                "the Error frame carries flags {:?}, expected RESPONSE | ERROR",
                frame.header.flags
            ));
        }
        if id != 0 && e.request_type != u32::from(request_type) {
            return Err(format!(
                "the Error names request type {:#04x}, expected {request_type:#04x}",
                e.request_type
            ));
        }
        Ok(e)
    }

    /// Sends `message` under a fresh id and expects it refused with `code`; `what` describes
    /// the request in the failure.
    async fn refused(
        &mut self,
        message: &Message,
        code: pb::ErrorCode,
        what: &str,
    ) -> Result<pb::Error, String> {
        let id = self.id();
        let wire = encode_message(id, message, usize::MAX).map_err(|e| e.to_string())?;
        self.expect_error(&wire, id, message.message_type().byte(), code)
            .await
            .map_err(|e| format!("{what}: {e}"))
    }

    async fn stats(&mut self) -> Result<pb::DeviceStats, String> {
        match self
            .call(&Message::StatsRequest(pb::StatsRequest {}))
            .await?
        {
            Message::DeviceStats(s) => Ok(s),
            _ => Err("StatsRequest was not answered with DeviceStats".into()),
        }
    }
}

fn frame_of(ty: u8, id: u32, flags: Flags, payload: &[u8]) -> Vec<u8> {
    encode_frame(&Header::new(ty, id, flags), payload).unwrap_or_default()
}

/// Runs the whole suite against the device at the other end of `link` (a line of `baud` baud,
/// for the time frames take) and returns the report. Each answer is awaited for the device's
/// `command_timeout_ms` plus the transmission of the largest frames plus half a second (two
/// seconds for the handshake).
pub async fn run<L: Link>(link: L, baud: u32) -> Report {
    let mut client = Client {
        link,
        decoder: FrameDecoder::new(SUITE_FRAME_SIZE as usize),
        pending: VecDeque::new(),
        buf: vec![0u8; 1 << 16],
        next_id: 1,
        wait: Duration::from_secs(2),
        nonce: crate::convert::session_nonce(),
        damaged_notices: 0,
    };
    let mut report = Report::default();
    let _ = client.link.discard_input();
    let info = match handshake(&mut client).await {
        Ok(info) => {
            let transmit = |n: usize| {
                Duration::from_secs_f64(
                    crate::frame::max_wire_len(n) as f64 * 10.0 / f64::from(baud.max(1)),
                )
            };
            client.wait = Duration::from_millis(u64::from(info.command_timeout_ms))
                + transmit(info.max_frame_size + 64)
                + transmit(MIN_MAX_FRAME_SIZE)
                + Duration::from_millis(500);
            report.device_id = info.device_id.clone();
            report.add(
                "handshake",
                Ok(format!(
                    "version {}, {} ns ticks, tau_s {} us, frames up to {} bytes, {} in flight",
                    info.version,
                    info.scale.tick_ns(),
                    info.scale.tau_s_us(),
                    info.max_frame_size,
                    info.max_requests_in_flight
                )),
            );
            info
        }
        Err(e) => {
            report.add("handshake", Err(e));
            return report;
        }
    };
    let r = version_range(&mut client).await;
    report.add("version range", r);
    let r = states_before_configuration(&mut client).await;
    report.add("state machine", r);
    let r = unknown_types(&mut client).await;
    report.add("unknown message types", r);
    let r = malformed(&mut client).await;
    report.add("malformed payloads and flags", r);
    let r = bad_crc(&mut client).await;
    report.add("bad CRC", r);
    let r = garbage(&mut client).await;
    report.add("garbage and resynchronisation", r);
    let r = oversized(&mut client, &info).await;
    report.add("oversized frame", r);
    let r = errors_fit(&mut client, &info).await;
    report.add("errors in the smallest frames", r);
    let r = configuration(&mut client, &info).await;
    let configured = report.add("configuration", r);
    if configured {
        let r = runs(&mut client, &info).await;
        report.add("runs and paging", r);
        let r = out_of_range(&mut client, &info).await;
        report.add("out-of-range values", r);
        let r = duplicates(&mut client, &info).await;
        report.add("duplicate request ids", r);
        let r = sessions(&mut client, &info).await;
        report.add("sessions", r);
        let r = refused_runs(&mut client, &info).await;
        report.add("refused runs change nothing", r);
        let r = sample_window(&mut client, &info).await;
        report.add("sample window", r);
        if info.capabilities.features.noise_position {
            let r = noise_position(&mut client, &info).await;
            report.add("noise position", r);
        }
        if info.capabilities.features.membrane_recording {
            let r = membrane(&mut client, &info).await;
            report.add("membrane recording", r);
        }
    }
    let r = reset(&mut client, &info).await;
    report.add("reset", r);
    report
}

/// The suite's `Hello` for session `nonce`.
fn suite_hello(nonce: u64) -> Message {
    Message::Hello(hello("spikeloop conformance", SUITE_FRAME_SIZE, nonce))
}

/// Loads the golden 2-2-2 network (the configuration check has shown that it loads).
async fn load_golden<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Result<(), String> {
    let messages =
        configure_messages(&golden_network(), info.max_frame_size).map_err(|e| e.to_string())?;
    for m in &messages {
        match c.call(m).await? {
            Message::ConfigureAck(ack)
                if !matches!(m, Message::ConfigureCommit(_)) || ack.committed => {}
            _ => return Err(format!("{} was not acknowledged", m.message_type())),
        }
    }
    Ok(())
}

/// The device's protocol state, from its statistics.
async fn state_of<L: Link>(c: &mut Client<L>) -> Result<pb::DeviceState, String> {
    let s = c.stats().await?;
    Ok(pb::DeviceState::try_from(s.state).unwrap_or(pb::DeviceState::Unspecified))
}

async fn handshake<L: Link>(c: &mut Client<L>) -> Result<DeviceInfo, String> {
    c.send(&[0]).await?;
    let answer = c.call(&suite_hello(c.nonce)).await?;
    let Message::HelloReply(reply) = answer else {
        return Err("Hello was not answered with HelloReply".into());
    };
    if reply.session_nonce != c.nonce {
        return Err(format!(
            "HelloReply echoes session nonce {:#x}, the Hello carried {:#x}",
            reply.session_nonce, c.nonce
        ));
    }
    if reply.version != PROTOCOL_VERSION {
        return Err(format!(
            "HelloReply chose version {}, expected {PROTOCOL_VERSION}",
            reply.version
        ));
    }
    DeviceInfo::from_hello_reply(&reply).map_err(|e| e.to_string())
}

async fn version_range<L: Link>(c: &mut Client<L>) -> Outcome {
    let id = c.id();
    let h = pb::Hello {
        min_version: 90,
        max_version: 99,
        host_max_frame_size: SUITE_FRAME_SIZE,
        host_name: "spikeloop conformance".into(),
        session_nonce: c.nonce,
    };
    let wire = encode_message(id, &Message::Hello(h), usize::MAX).map_err(|e| e.to_string())?;
    let e = c
        .expect_error(&wire, id, 0x01, pb::ErrorCode::UnsupportedVersion)
        .await?;
    let (Some(min), Some(max)) = (e.min, e.max) else {
        return Err("UNSUPPORTED_VERSION does not carry the device's min and max".into());
    };
    if !(min <= 1.0 && 1.0 <= max) {
        return Err(format!(
            "the device's range {min}..={max} does not hold version 1"
        ));
    }
    // The failed Hello changed nothing; a good one resets as usual.
    c.call(&suite_hello(c.nonce)).await?;
    Ok(format!(
        "versions 90..=99 refused with the device's range {min}..={max}"
    ))
}

async fn states_before_configuration<L: Link>(c: &mut Client<L>) -> Outcome {
    let requests = [
        Message::RunRequest(pb::RunRequest {
            n_inputs: 2,
            n_samples: 1,
            output_only: false,
            input_codes: vec![1, 1],
        }),
        Message::ConfigureChunk(pb::ConfigureChunk {
            layer: 0,
            target: pb::ChunkTarget::Weights as i32,
            offset: 0,
            values: vec![0.5],
        }),
        Message::ConfigureCommit(pb::ConfigureCommit { value_count: 0 }),
        Message::ReadRunResult(pb::ReadRunResult { first_sample: 0 }),
    ];
    for m in &requests {
        let id = c.id();
        let ty = m.message_type();
        let wire = encode_message(id, m, usize::MAX).map_err(|e| e.to_string())?;
        let e = c
            .expect_error(&wire, id, ty.byte(), pb::ErrorCode::BadState)
            .await
            .map_err(|e| format!("{ty} in READY: {e}"))?;
        if e.state != pb::DeviceState::Ready as i32 {
            return Err(format!("{ty} in READY: BAD_STATE names state {}", e.state));
        }
    }
    Ok("runs, chunks, commits and page reads in READY are refused with BAD_STATE (READY)".into())
}

async fn unknown_types<L: Link>(c: &mut Client<L>) -> Outcome {
    for (ty, flags) in [
        (0x03u8, Flags::NONE),
        (0xEE, Flags::NONE),
        (0x02, Flags::NONE),
    ] {
        let id = c.id();
        let wire = frame_of(ty, id, flags, &[]);
        c.expect_error(&wire, id, ty, pb::ErrorCode::UnknownMessageType)
            .await
            .map_err(|e| format!("type {ty:#04x}: {e}"))?;
    }
    Ok("types 0x03, 0xee and an answer type (0x02) are refused with UNKNOWN_MESSAGE_TYPE".into())
}

async fn malformed<L: Link>(c: &mut Client<L>) -> Outcome {
    let id = c.id();
    // A length-delimited field whose length runs past the end of the payload.
    let wire = frame_of(0x40, id, Flags::NONE, &[0x22, 0x05, 0x01]);
    c.expect_error(&wire, id, 0x40, pb::ErrorCode::MalformedPayload)
        .await
        .map_err(|e| format!("truncated payload: {e}"))?;
    let id = c.id();
    let wire = frame_of(0x40, id, Flags::RESPONSE, &[]);
    c.expect_error(&wire, id, 0x40, pb::ErrorCode::MalformedPayload)
        .await
        .map_err(|e| format!("request marked RESPONSE: {e}"))?;
    Ok(
        "a truncated payload and a request marked RESPONSE are refused with MALFORMED_PAYLOAD"
            .into(),
    )
}

async fn bad_crc<L: Link>(c: &mut Client<L>) -> Outcome {
    let before = c.stats().await?;
    let bad_id = c.id();
    let mut raw = Header::new(0x40, bad_id, Flags::NONE)
        .to_bytes(0)
        .map_err(|e| e.to_string())?
        .to_vec();
    let crc = crate::frame::crc32(&raw) ^ 0x0000_0100;
    raw.extend_from_slice(&crc.to_le_bytes());
    let mut wire = vec![0u8; cobs::max_encoding_length(raw.len())];
    let n = cobs::encode(&raw, &mut wire);
    wire.truncate(n);
    wire.push(0);
    // The damaged frame, and right behind it a valid request: the first answer must be the
    // notice of the damage (request id 0), before the valid request's.
    c.send(&wire).await?;
    let id = c.id();
    let stats = encode_message(id, &Message::StatsRequest(pb::StatsRequest {}), usize::MAX)
        .map_err(|e| e.to_string())?;
    c.send(&stats).await?;
    let first = c.next_frame().await?;
    if !is_damage_notice(&first) {
        return Err(format!(
            "a frame with a bad CRC was not answered with FRAME_DAMAGED (request id 0) before the next request's answer; the first frame was {}: without the notice the host waits its whole deadline before it retries",
            describe(&first)
        ));
    }
    if first.header.flags.defined() != (Flags::RESPONSE | Flags::ERROR) {
        return Err(format!(
            "the FRAME_DAMAGED notice carries flags {:?}, expected RESPONSE | ERROR",
            first.header.flags
        ));
    }
    let answer = c.next_frame().await?;
    if answer.header.request_id != id {
        return Err(format!(
            "after the damaged frame's notice came {}, not the answer to request {id}",
            describe(&answer)
        ));
    }
    let after = c
        .stats()
        .await
        .map_err(|e| format!("after a frame with a bad CRC: {e}"))?;
    if after.frames_rejected != before.frames_rejected + 1 {
        return Err(format!(
            "frames_rejected went from {} to {} for one frame with a bad CRC",
            before.frames_rejected, after.frames_rejected
        ));
    }
    // Between the two StatsRequests counted here, two intact frames arrived: the one behind
    // the damaged frame, and the second StatsRequest itself.
    if after.frames_received != before.frames_received + 2 {
        return Err(format!(
            "frames_received went from {} to {} for two intact frames and one with a bad CRC",
            before.frames_received, after.frames_received
        ));
    }
    Ok("a frame with a bad CRC was answered at once with FRAME_DAMAGED (request id 0), executed nothing, and was counted as rejected, not as received".into())
}

async fn garbage<L: Link>(c: &mut Client<L>) -> Outcome {
    // Bytes that are no frame (a lost byte, line noise), then a valid request.
    let before = c.damaged_notices;
    c.send(&[0x05, 0x11, 0x13, 0x00, 0x03, 0xFF, 0x00, 0x00, 0x00])
        .await?;
    c.stats().await.map_err(|e| format!("after garbage: {e}"))?;
    Ok(format!(
        "garbage was answered only with {} FRAME_DAMAGED notices and empty frames not at all; the next request was answered",
        c.damaged_notices - before
    ))
}

async fn oversized<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let id = c.id();
    let payload = vec![0x5Au8; info.max_frame_size + 64];
    let wire = frame_of(
        MessageType::ConfigureChunk.byte(),
        id,
        Flags::NONE,
        &payload,
    );
    let frame = c.exchange_raw(&wire).await?;
    match code_of(&frame) {
        Some(e)
            if e.code == pb::ErrorCode::FrameTooLarge as i32 && frame.header.request_id == 0 => {}
        _ => {
            return Err(format!(
                "a frame of {} bytes (limit {}) was answered by {}, expected FRAME_TOO_LARGE with request id 0",
                payload.len() + 14,
                info.max_frame_size,
                describe(&frame)
            ));
        }
    }
    c.stats()
        .await
        .map_err(|e| format!("after an oversized frame: {e}"))?;
    Ok(format!(
        "a frame of {} bytes was refused with FRAME_TOO_LARGE (id 0); the next request was answered",
        payload.len() + 14
    ))
}

async fn configuration<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let messages =
        configure_messages(&golden_network(), info.max_frame_size).map_err(|e| e.to_string())?;
    let n = messages.len();
    let mut received = 0u64;
    for (i, m) in messages.into_iter().enumerate() {
        if i == n - 1 {
            // A commit that miscounts is refused and leaves the device configuring.
            let id = c.id();
            let wrong = Message::ConfigureCommit(pb::ConfigureCommit { value_count: 13 });
            let wire = encode_message(id, &wrong, usize::MAX).map_err(|e| e.to_string())?;
            c.expect_error(&wire, id, 0x12, pb::ErrorCode::InvalidNetwork)
                .await
                .map_err(|e| format!("ConfigureCommit with value_count 13 of 14: {e}"))?;
        }
        if let Message::ConfigureChunk(chunk) = &m {
            received += chunk.values.len() as u64;
        }
        let ty = m.message_type();
        let Message::ConfigureAck(ack) = c.call(&m).await? else {
            return Err(format!("{ty} was not acknowledged"));
        };
        if ack.values_expected != 14 || ack.values_received != received {
            return Err(format!(
                "{ty} acknowledged {} of {} values, expected {received} of 14",
                ack.values_received, ack.values_expected
            ));
        }
        if matches!(m, Message::ConfigureCommit(_)) && !ack.committed {
            return Err("ConfigureCommit was acknowledged without committed = true".into());
        }
    }
    Ok(format!(
        "the 2-2-2 network loaded in {} requests; a miscounted commit was refused with INVALID_NETWORK",
        n
    ))
}

fn run_request(
    info: &DeviceInfo,
    n_copies: usize,
    output_only: bool,
) -> Result<pb::RunRequest, String> {
    let golden = golden_batch();
    let times: Vec<f64> = (0..n_copies)
        .flat_map(|_| golden.as_slice().iter().copied())
        .collect();
    let batch = spikeloop_backend::InputBatch::new(2, times).map_err(|e| e.to_string())?;
    let record = if output_only {
        spikeloop_backend::Record::OutputOnly
    } else {
        spikeloop_backend::Record::AllLayers
    };
    run_requests(&batch, record, &info.scale, info.max_frame_size, None)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| "no run request".into())
}

fn check_page(page: &pb::RunResult, total: u32, first: u32, layers: &[u32]) -> Result<(), String> {
    let stride: u32 = page.layer_sizes.iter().sum();
    if page.total_samples != total
        || page.first_sample != first
        || page.n_samples == 0
        || page.first_sample + page.n_samples > total
        || page.recorded_layers != layers
        || page.layer_sizes.len() != layers.len()
        || page.spike_codes.len() != (page.n_samples * stride) as usize
        || page.stats.is_none()
    {
        return Err(format!(
            "inconsistent RunResult page: total {} first {} n {} layers {:?} sizes {:?} codes {} (expected total {total}, first {first}, layers {layers:?})",
            page.total_samples,
            page.first_sample,
            page.n_samples,
            page.recorded_layers,
            page.layer_sizes,
            page.spike_codes.len()
        ));
    }
    Ok(())
}

async fn runs<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    // All layers, enough samples for several pages at 256-byte frames.
    let copies = 60;
    let req = run_request(info, copies, false)?;
    let total = req.n_samples;
    let Message::RunResult(first) = c.call(&Message::RunRequest(req)).await? else {
        return Err("RunRequest was not answered with RunResult".into());
    };
    check_page(&first, total, 0, &[0, 1])?;
    let stats = first.stats.unwrap_or_default();
    if stats.samples != u64::from(total) {
        return Err(format!(
            "stats.samples = {}, expected {total}",
            stats.samples
        ));
    }
    let mut pages = 1;
    let mut next = first.n_samples;
    while next < total {
        let Message::RunResult(page) = c
            .call(&Message::ReadRunResult(pb::ReadRunResult {
                first_sample: next,
            }))
            .await?
        else {
            return Err("ReadRunResult was not answered with RunResult".into());
        };
        check_page(&page, total, next, &[0, 1])?;
        next += page.n_samples;
        pages += 1;
    }
    if pages < 2 {
        return Err(format!(
            "{total} samples came back in one page of a 256-byte frame; they do not fit one"
        ));
    }
    // Reading does not consume: the first page again, identical.
    let Message::RunResult(again) = c
        .call(&Message::ReadRunResult(pb::ReadRunResult {
            first_sample: 0,
        }))
        .await?
    else {
        return Err("ReadRunResult was not answered with RunResult".into());
    };
    if again != first {
        return Err("reading page 0 again gave a different page".into());
    }
    // Output only.
    let req = run_request(info, 1, true)?;
    let Message::RunResult(out) = c.call(&Message::RunRequest(req)).await? else {
        return Err("RunRequest (output only) was not answered with RunResult".into());
    };
    check_page(&out, 2, 0, &[1])?;
    Ok(format!(
        "{total} samples came back in {pages} pages within 256-byte frames; output-only runs record layer 1 only"
    ))
}

async fn out_of_range<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let mut req = run_request(info, 1, false)?;
    req.n_inputs = 3;
    req.input_codes.push(0);
    req.input_codes.push(0);
    let id = c.id();
    let wire =
        encode_message(id, &Message::RunRequest(req), usize::MAX).map_err(|e| e.to_string())?;
    let e = c
        .expect_error(&wire, id, 0x20, pb::ErrorCode::OutOfRange)
        .await
        .map_err(|e| format!("RunRequest with 3 inputs for 2: {e}"))?;
    complete_range("RunRequest with 3 inputs for 2", &e, "n_inputs")?;
    // More samples declared than codes sent: the entry count of input_codes is out of range.
    let mut req = run_request(info, 1, false)?;
    req.n_samples += 1;
    let what = "RunRequest declaring one sample more than its codes hold";
    let e = c
        .refused(&Message::RunRequest(req), pb::ErrorCode::OutOfRange, what)
        .await?;
    complete_range(what, &e, "input_codes")?;
    // A run's result is stored: a page past its end is out of range.
    c.call(&Message::RunRequest(run_request(info, 1, false)?))
        .await?;
    let what = "ReadRunResult at sample 2 of 2";
    let page = Message::ReadRunResult(pb::ReadRunResult { first_sample: 2 });
    let e = c.refused(&page, pb::ErrorCode::OutOfRange, what).await?;
    complete_range(what, &e, "first_sample")?;
    // A time code beyond 2^40 ticks.
    let mut req = run_request(info, 1, false)?;
    if let Some(code) = req.input_codes.first_mut() {
        *code = u64::MAX;
    }
    let what = "RunRequest with a time code beyond 2^40 ticks";
    let e = c
        .refused(&Message::RunRequest(req), pb::ErrorCode::OutOfRange, what)
        .await?;
    complete_range(what, &e, "input_codes[0]")?;
    Ok("a wrong n_inputs, a miscounted input_codes, a page past the end and a time code out of range are refused with OUT_OF_RANGE naming the .proto field (with its index) and carrying value, min and max".into())
}

/// An `OUT_OF_RANGE` error names `field` exactly as the `.proto` files spell it and carries the
/// offending value and both bounds.
fn complete_range(what: &str, e: &pb::Error, field: &str) -> Result<(), String> {
    if e.field != field {
        return Err(format!(
            "{what}: OUT_OF_RANGE names field \"{}\", expected \"{field}\" (the .proto field, with an index where useful)",
            e.field
        ));
    }
    if e.value.is_none() || e.min.is_none() || e.max.is_none() {
        return Err(format!(
            "{what}: OUT_OF_RANGE on {field} carries value {:?}, min {:?}, max {:?}; all three are required",
            e.value, e.min, e.max
        ));
    }
    Ok(())
}

/// Errors fit the smallest host frame (256 bytes) with their code, request type and fields,
/// and a shortage that depends on the network's shape alone is refused at `ConfigureBegin`.
async fn errors_fit<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let neuron = Some(crate::convert::neuron_message(
        &spikeloop_backend::NeuronParams::REFERENCE,
    ));
    let shape = |n_inputs: u32, sizes: &[u32]| {
        Message::ConfigureBegin(pb::ConfigureBegin {
            n_inputs,
            layers: sizes
                .iter()
                .map(|&size| pb::LayerShape {
                    size,
                    n_bias: 0,
                    neuron,
                })
                .collect(),
        })
    };
    let mut cases = vec![(
        "a network of 2 x 1048576 neurons".to_string(),
        shape(2, &[1 << 20, 1 << 20]),
    )];
    if let Some(g) = &info.capabilities.geometry {
        let sources = g.rows_per_half / g.rows_per_source.max(1) + 1;
        cases.push((
            format!(
                "a layer of {sources} sources, more than the announced {} rows per half hold",
                g.rows_per_half
            ),
            shape(u32::try_from(sources).unwrap_or(u32::MAX), &[2, 2]),
        ));
    }
    for (what, message) in &cases {
        let id = c.id();
        let wire = encode_message(id, message, usize::MAX).map_err(|e| e.to_string())?;
        let e = c
            .expect_error(&wire, id, 0x10, pb::ErrorCode::DoesNotFit)
            .await
            .map_err(|e| {
                format!("ConfigureBegin of {what} in 256-byte frames: {e} (a shortage of the shape alone is refused at ConfigureBegin, and every error fits the host's frames)")
            })?;
        if e.resource.is_empty()
            || e.resource.len() > crate::convert::MAX_ERROR_NAME_LEN
            || e.needed <= e.available
        {
            return Err(format!(
                "DOES_NOT_FIT for {what} names resource \"{}\" ({} bytes; a short name of at most {} bytes) with needed {} and available {}",
                e.resource,
                e.resource.len(),
                crate::convert::MAX_ERROR_NAME_LEN,
                e.needed,
                e.available
            ));
        }
    }
    // The refused ConfigureBegin dropped no network that was not already dropped; leave READY.
    c.call(&Message::ResetRequest(pb::ResetRequest {})).await?;
    Ok(format!(
        "refused at ConfigureBegin with DOES_NOT_FIT (resource named, counts given) within 256-byte frames: {}",
        cases
            .iter()
            .map(|(w, _)| w.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

/// A `RunRequest` whose one-sample page may not fit the host's frames is refused before it
/// runs: the run counter and the noise stay where they were.
async fn refused_runs<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let outcome = refused_runs_of_a_wide_network(c, info).await;
    // The checks after this one run on the golden network again, whatever happened here.
    load_golden(c, info).await?;
    outcome
}

async fn refused_runs_of_a_wide_network<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    // 2 inputs -> 100 -> 2: one sample of every layer takes more than a 256-byte frame.
    let wide = spikeloop_backend::Network {
        n_inputs: 2,
        layers: vec![
            spikeloop_backend::Layer {
                size: 100,
                neuron: spikeloop_backend::NeuronParams::REFERENCE,
                bias_times: vec![0.9],
                weights: vec![0.5; 300],
            },
            spikeloop_backend::Layer {
                size: 2,
                neuron: spikeloop_backend::NeuronParams::REFERENCE,
                bias_times: vec![0.9],
                weights: vec![0.05; 202],
            },
        ],
    };
    let messages = configure_messages(&wide, info.max_frame_size).map_err(|e| e.to_string())?;
    for m in &messages {
        let (_, _, frame) = c.request(m).await?;
        match decode_message(&frame) {
            Ok(Message::ConfigureAck(_)) => {}
            Ok(Message::Error(e)) if e.code == pb::ErrorCode::DoesNotFit as i32 => {
                return Ok(format!(
                    "not applicable: the device does not hold a 2-100-2 network ({})",
                    e.message
                ));
            }
            _ => return Err(format!("loading a 2-100-2 network: {}", describe(&frame))),
        }
    }
    let before = c.stats().await?;
    let id = c.id();
    let req = run_request(info, 1, false)?;
    let wire =
        encode_message(id, &Message::RunRequest(req), usize::MAX).map_err(|e| e.to_string())?;
    let e = c
        .expect_error(&wire, id, 0x20, pb::ErrorCode::OutOfRange)
        .await
        .map_err(|e| format!("a run of all 102 neurons in 256-byte frames: {e}"))?;
    complete_range(
        "a run whose one-sample page exceeds the host's frames",
        &e,
        "host_max_frame_size",
    )?;
    let after = c.stats().await?;
    if after.runs != before.runs || after.noise_position != before.noise_position {
        return Err(format!(
            "a refused run still ran: runs {} -> {}, noise position {:?} -> {:?}",
            before.runs, after.runs, before.noise_position, after.noise_position
        ));
    }
    let out = Message::RunRequest(run_request(info, 1, true)?);
    if !matches!(c.call(&out).await?, Message::RunResult(_)) {
        return Err("an output-only run of the 2-100-2 network was not answered".into());
    }
    Ok("a run of 102 recorded neurons in 256-byte frames was refused (OUT_OF_RANGE on host_max_frame_size) without running; output only ran".into())
}

/// Times and durations are checked against the announced sample window.
async fn sample_window<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let w = info.sample_window_ticks;
    if w == 0 {
        return Ok("not applicable: the device announces no sample window".into());
    }
    let at = |ticks: u64| {
        Message::RunRequest(pb::RunRequest {
            n_inputs: 2,
            n_samples: 1,
            output_only: true,
            input_codes: vec![1 + 2 * ticks, 0],
        })
    };
    if !matches!(c.call(&at(w - 1)).await?, Message::RunResult(_)) {
        return Err(format!(
            "an input at {} ticks (window {w}) was refused",
            w - 1
        ));
    }
    let id = c.id();
    let wire = encode_message(id, &at(w), usize::MAX).map_err(|e| e.to_string())?;
    let e = c
        .expect_error(&wire, id, 0x20, pb::ErrorCode::OutOfRange)
        .await
        .map_err(|e| format!("an input at {w} ticks, the end of the window: {e}"))?;
    complete_range("an input at the end of the window", &e, "input_codes[0]")?;
    if e.max != Some((w - 1) as f64) {
        return Err(format!(
            "an input at {w} ticks was refused with max {:?}; the window allows up to {}",
            e.max,
            w - 1
        ));
    }
    let mut detail = format!("inputs in [0, {w}) ticks accepted, at {w} refused");
    if info.capabilities.features.membrane_recording {
        let rec = |ticks: u64| {
            Message::MembraneRequest(pb::MembraneRequest {
                layer: 1,
                neuron: 0,
                duration_ticks: ticks,
                n_inputs: 2,
                input_codes: vec![0, 0],
            })
        };
        if !matches!(c.call(&rec(w)).await?, Message::MembraneTrace(_)) {
            return Err(format!("a recording of {w} ticks (the window) was refused"));
        }
        let id = c.id();
        let wire = encode_message(id, &rec(w + 1), usize::MAX).map_err(|e| e.to_string())?;
        let e = c
            .expect_error(&wire, id, 0x30, pb::ErrorCode::OutOfRange)
            .await
            .map_err(|e| format!("a recording of {} ticks: {e}", w + 1))?;
        complete_range("a recording longer than the window", &e, "duration_ticks")?;
        detail.push_str(&format!(
            "; recordings of {w} ticks accepted, {} refused",
            w + 1
        ));
    }
    Ok(detail)
}

async fn duplicates<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let before = c.stats().await?;
    let req = Message::RunRequest(run_request(info, 1, false)?);
    let (id, wire, first) = c.request(&req).await?;
    let again = c.exchange_raw(&wire).await?;
    if again != first {
        return Err(format!(
            "a duplicate of request {id} (RunRequest) was answered with {} that differs from the first answer: the device ran it again instead of replaying its cached answer byte for byte",
            describe(&again)
        ));
    }
    let after = c.stats().await?;
    if after.runs != before.runs + 1 {
        return Err(format!(
            "a run sent twice with one request id was executed {} times (runs {} -> {})",
            after.runs - before.runs,
            before.runs,
            after.runs
        ));
    }
    if after.requests_replayed <= before.requests_replayed {
        return Err("requests_replayed did not count the duplicate".into());
    }
    if info.capabilities.features.noise_position
        && after.noise_position != before.noise_position.map(|p| p + 1)
    {
        return Err(format!(
            "the noise moved from {:?} to {:?} for one run",
            before.noise_position, after.noise_position
        ));
    }
    // The same id with another payload is a new request.
    let other = Message::RunRequest(run_request(info, 1, true)?);
    let wire = encode_message(id, &other, usize::MAX).map_err(|e| e.to_string())?;
    let answer = c.exchange_raw(&wire).await?;
    match decode_message(&answer) {
        Ok(Message::RunResult(r)) if r.recorded_layers == [1] => {}
        _ => {
            return Err(format!(
                "a new request reusing id {id} was answered by {} (a replay of the old answer?)",
                describe(&answer)
            ));
        }
    }
    Ok("a duplicate was answered byte for byte from the cache without running again; a new payload under the same id ran".into())
}

/// No answer crosses from one session to the next: every `Hello` is executed (never answered
/// from the replay cache) and clears the cache, so a new host that repeats an earlier host's
/// frames byte for byte gets fresh answers.
async fn sessions<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    // A zero nonce is refused.
    let id = c.id();
    let wire = encode_message(id, &suite_hello(0), usize::MAX).map_err(|e| e.to_string())?;
    let e = c
        .expect_error(&wire, id, 0x01, pb::ErrorCode::OutOfRange)
        .await
        .map_err(|e| format!("Hello with session nonce 0: {e}"))?;
    if e.field != "session_nonce" {
        return Err(format!(
            "Hello with session nonce 0 was refused naming field \"{}\", expected \"session_nonce\"",
            e.field
        ));
    }
    // Within a session, a repeated Hello is executed again: it resets the device.
    let (_, hello_wire, _) = c.request(&suite_hello(c.nonce)).await?;
    load_golden(c, info).await?;
    let frame = c.exchange_raw(&hello_wire).await?;
    if !matches!(decode_message(&frame), Ok(Message::HelloReply(_))) {
        return Err(format!(
            "a repeated Hello was answered by {}",
            describe(&frame)
        ));
    }
    let state = state_of(c).await?;
    if state != pb::DeviceState::Ready {
        return Err(format!(
            "a repeated Hello left the device in {}: it was answered from the replay cache instead of being executed",
            state.as_str_name()
        ));
    }
    // The last request of one session, then a new session that sends the same frame.
    load_golden(c, info).await?;
    let run = Message::RunRequest(run_request(info, 1, false)?);
    let (_, run_wire, _) = c.request(&run).await?;
    let before = c.stats().await?;
    c.nonce = c.nonce.wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1);
    let nonce = c.nonce;
    let Message::HelloReply(reply) = c.call(&suite_hello(nonce)).await? else {
        return Err("the new session's Hello was not answered with HelloReply".into());
    };
    if reply.session_nonce != nonce {
        return Err(format!(
            "the new session's HelloReply echoes nonce {:#x}, expected {nonce:#x}",
            reply.session_nonce
        ));
    }
    load_golden(c, info).await?;
    let frame = c.exchange_raw(&run_wire).await?;
    if !matches!(decode_message(&frame), Ok(Message::RunResult(_))) {
        return Err(format!(
            "the previous session's run frame, sent in a new session, was answered by {}",
            describe(&frame)
        ));
    }
    let after = c.stats().await?;
    if after.runs != before.runs + 1 {
        return Err(format!(
            "a new session's request, byte-identical to the last session's, was answered from the replay cache (runs {} -> {}): the cache was not cleared by Hello",
            before.runs, after.runs
        ));
    }
    if info.capabilities.features.noise_position && after.noise_position == before.noise_position {
        return Err("the new session's run did not move the noise: it was replayed".into());
    }
    Ok("Hello echoes its nonce, refuses nonce 0 and is never replayed; a new session's requests are executed afresh".into())
}

async fn noise_position<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let Message::NoisePosition(p) = c
        .call(&Message::SetNoisePosition(pb::SetNoisePosition {
            position: 41,
        }))
        .await?
    else {
        return Err("SetNoisePosition was not answered with NoisePosition".into());
    };
    if p.position != 41 {
        return Err(format!(
            "SetNoisePosition(41) answered position {}",
            p.position
        ));
    }
    let Message::RunResult(r) = c
        .call(&Message::RunRequest(run_request(info, 1, false)?))
        .await?
    else {
        return Err("RunRequest was not answered with RunResult".into());
    };
    if r.noise_position != Some(42) {
        return Err(format!(
            "after one run from position 41 the result reports {:?}, expected 42",
            r.noise_position
        ));
    }
    Ok("the position was set to 41 and one run moved it to 42".into())
}

async fn membrane<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let req = run_request(info, 1, false)?;
    let msg = pb::MembraneRequest {
        layer: 1,
        neuron: 0,
        duration_ticks: (1.0 / info.scale.tick()).round() as u64,
        n_inputs: 2,
        input_codes: req.input_codes[..2].to_vec(),
    };
    let Message::MembraneTrace(t) = c.call(&Message::MembraneRequest(msg.clone())).await? else {
        return Err("MembraneRequest was not answered with MembraneTrace".into());
    };
    let n = t.codes.len() + t.values.len();
    if t.total_values == 0 || n == 0 || t.first_value != 0 || t.dt.is_nan() || t.dt <= 0.0 {
        return Err(format!(
            "inconsistent trace: total {} first {} values {n} dt {}",
            t.total_values, t.first_value, t.dt
        ));
    }
    let mut bad = msg;
    bad.neuron = 2;
    let id = c.id();
    let wire = encode_message(id, &Message::MembraneRequest(bad), usize::MAX)
        .map_err(|e| e.to_string())?;
    c.expect_error(&wire, id, 0x30, pb::ErrorCode::OutOfRange)
        .await
        .map_err(|e| format!("recording neuron 2 of 2: {e}"))?;
    Ok(format!(
        "a trace of {} values arrived; a neuron out of range was refused",
        t.total_values
    ))
}

async fn reset<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let Message::ResetReply(r) = c.call(&Message::ResetRequest(pb::ResetRequest {})).await? else {
        return Err("ResetRequest was not answered with ResetReply".into());
    };
    if r.state != pb::DeviceState::Ready as i32 {
        return Err(format!(
            "ResetReply reports state {}, expected READY",
            r.state
        ));
    }
    let id = c.id();
    let wire = encode_message(
        id,
        &Message::RunRequest(run_request(info, 1, false)?),
        usize::MAX,
    )
    .map_err(|e| e.to_string())?;
    c.expect_error(&wire, id, 0x20, pb::ErrorCode::BadState)
        .await
        .map_err(|e| format!("a run after ResetRequest: {e}"))?;
    let stats = c.stats().await?;
    if stats.state != pb::DeviceState::Ready as i32 {
        return Err(format!(
            "DeviceStats reports state {} after a reset",
            stats.state
        ));
    }
    Ok("ResetRequest returned the device to READY; its network was dropped".into())
}
