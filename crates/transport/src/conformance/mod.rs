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
//! within 2 `tau_s`). The suite leaves the device in state READY. [`run_on_port`] runs it on a
//! serial port.
//!
//! Beside the suite: the golden frames ([`golden`]), the worked examples every firmware must
//! reproduce byte for byte (built from backend types through [`crate::convert`], hence here and
//! not in `spikeloop-wire`), and the faulty line of the fault-injection tests ([`fault`]).

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::convert::{DeviceInfo, configure_messages, hello, run_requests};
use crate::frame::{
    Flags, Frame, FrameDecoder, FrameError, Header, MIN_MAX_FRAME_SIZE, encode_frame,
};
use crate::link::Link;
use crate::messages::{Message, MessageType, PROTOCOL_VERSION, decode_message, encode_message, pb};

pub mod fault;
pub mod golden;

mod client;
mod codes;
mod framing;
mod line;
mod running;
mod sessions;

use golden::{golden_batch, golden_network};
pub use line::{LINE_PROBES, LineProbe};

use {client::*, codes::*, framing::*, running::*, sessions::*};

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
    /// After a failed check: whether plain requests crossed the line intact (`None` when every
    /// check passed or the handshake failed).
    pub line: Option<LineProbe>,
    /// Bytes that came from the device during the suite, frames or not (none: nothing answered
    /// at all).
    pub bytes_received: u64,
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

    /// True when the handshake failed without a single byte from the other end: no device
    /// answered at all (not running, another port, or a line that carries nothing).
    pub fn unanswered(&self) -> bool {
        self.bytes_received == 0 && self.checks.first().is_some_and(|c| !c.passed)
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
        if let Some(line) = &self.line {
            writeln!(f, "line: {line}")?;
        }
        write!(
            f,
            "conformance: {} passed, {} failed",
            self.passed(),
            self.failed()
        )
    }
}

/// Runs the whole suite against the device at the other end of `link` (a line of `baud` baud,
/// for the time frames take) and returns the report. Each answer is awaited for the device's
/// `command_timeout_ms` plus the transmission of the largest frames plus half a second (two
/// seconds for the handshake).
pub async fn run<L: Link>(link: L, baud: u32) -> Report {
    let nonce = crate::convert::session_nonce();
    let mut client = Client {
        link,
        decoder: FrameDecoder::new(SUITE_FRAME_SIZE as usize),
        pending: VecDeque::new(),
        buf: vec![0u8; 1 << 16],
        // As the host engine's: answers an earlier host left do not carry the ids awaited here.
        next_id: crate::convert::first_request_id(nonce),
        wait: Duration::from_secs(2),
        nonce,
        damaged_notices: 0,
        bytes_received: 0,
    };
    let mut report = Report::default();
    let _ = client.link.discard_input();
    let info = match handshake(&mut client).await {
        Ok((info, stale)) => {
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
                    "version {}, {} ns ticks, tau_s {} us, frames up to {} bytes, {} in flight{}",
                    info.version,
                    info.scale.tick_ns(),
                    info.scale.tau_s_us(),
                    info.max_frame_size,
                    info.max_requests_in_flight,
                    if stale > 0 {
                        format!(" ({stale} answers an earlier host left on the line skipped)")
                    } else {
                        String::new()
                    }
                )),
            );
            info
        }
        Err(e) => {
            report.add("handshake", Err(e));
            report.bytes_received = client.bytes_received;
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
        if info.capabilities.features.weight_update {
            let r = weight_update(&mut client, &info).await;
            report.add("weight update", r);
        }
        if info.capabilities.features.parameter_codes {
            let r = parameter_codes(&mut client, &info).await;
            report.add("parameter codes", r);
        }
    }
    let r = reset(&mut client, &info).await;
    report.add("reset", r);
    if !report.all_passed() {
        report.line = Some(line::probe_line(&mut client).await);
    }
    report.bytes_received = client.bytes_received;
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

/// `Hello`s the handshake sends before it gives up, when no intact answer comes (a line may
/// lose the first; the host engine retries it too).
const HELLO_ATTEMPTS: u32 = 3;

/// The handshake: the device's announcement, and how many answers an earlier host left on the
/// line were skipped.
async fn handshake<L: Link>(c: &mut Client<L>) -> Result<(DeviceInfo, u32), String> {
    c.send(&[0]).await?;
    let mut stale = 0;
    let mut last_error = String::new();
    let mut answer = None;
    for attempt in 1..=HELLO_ATTEMPTS {
        match hello_attempt(c, &mut stale).await {
            Ok(reply) => {
                answer = Some(reply);
                break;
            }
            Err(e) if is_line_failure(&e) => {
                last_error = if attempt > 1 {
                    format!("{e} (after {attempt} Hellos)")
                } else {
                    e
                };
                c.forget_input();
            }
            Err(e) => return Err(e),
        }
    }
    let Some(answer) = answer else {
        return Err(last_error);
    };
    let Message::HelloReply(reply) = answer else {
        return Err("Hello was not answered with HelloReply".into());
    };
    if reply.version != PROTOCOL_VERSION {
        return Err(format!(
            "HelloReply chose version {}, expected {PROTOCOL_VERSION}",
            reply.version
        ));
    }
    DeviceInfo::from_hello_reply(&reply)
        .map(|info| (info, stale))
        .map_err(|e| e.to_string())
}

/// One `Hello` and its answer. Answers an earlier host left on the line (another request id,
/// or a `HelloReply` to another session's nonce) are skipped, as the host engine skips them;
/// a `HelloReply` that echoes a nonce never sent fails only when no right one follows it.
async fn hello_attempt<L: Link>(c: &mut Client<L>, stale: &mut u32) -> Result<Message, String> {
    let hello = suite_hello(c.nonce);
    let (id, _) = c.send_message(&hello).await?;
    let deadline = Instant::now() + c.wait;
    let mut wrong_nonce = None;
    loop {
        let frame = match c.next_item(deadline).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) => return Err(format!("{DAMAGED_ANSWER}: {e}")),
            Err(e) => {
                return Err(match wrong_nonce {
                    Some(n) => format!(
                        "HelloReply echoes session nonce {n:#x}, the Hello carried {:#x}",
                        c.nonce
                    ),
                    None => e,
                });
            }
        };
        if is_damage_notice(&frame) {
            c.damaged_notices += 1;
            continue;
        }
        let message = decode_message(&frame);
        match message {
            Ok(Message::HelloReply(r)) if r.session_nonce != c.nonce => {
                *stale += 1;
                wrong_nonce = Some(r.session_nonce);
            }
            _ if frame.header.request_id != id => *stale += 1,
            Ok(m) if Some(m.message_type()) == hello.message_type().reply_type() => return Ok(m),
            _ => return Err(format!("Hello was answered by {}", describe(&frame))),
        }
    }
}

/// Runs the conformance suite against the device on the serial port at `path`.
pub fn run_on_port(path: &str, baud: u32) -> Result<Report, crate::host::OpenError> {
    let runtime = crate::host::runtime()?;
    let port = crate::host::open_port(&runtime, path, baud)?;
    Ok(runtime.block_on(run(port, baud)))
}
