//! Shared pieces of the fuzz tests (`tests/fuzz.rs`) and the fuzz benchmark
//! (`examples/fuzz.rs`): a seeded generator of valid messages, mutations of wire bytes, and an
//! exerciser that feeds decoded messages to every conversion a peer's input reaches.
#![allow(dead_code)]

use spikeloop_transport::conformance::golden::{golden_frames, golden_scale};
use spikeloop_transport::convert::{
    AssemblyLimits, DeviceInfo, NetworkAssembler, RunResultAssembler, TraceAssembler,
    backend_error, batch_from_request, membrane_request_from, negotiate_version,
};
use spikeloop_transport::frame::{crc32, parse_raw_frame};
use spikeloop_transport::{
    Flags, Frame, FrameDecoder, FrameError, Header, Message, MessageError, MessageType, TickScale,
    decode_message, encode_message, pb,
};

/// SplitMix64: a small, seedable, good-enough generator for test data.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// A number that is often small, sometimes at a boundary.
    pub fn count(&mut self) -> u32 {
        match self.below(8) {
            0 => 0,
            1 => u32::MAX,
            2 => 1 << self.below(32),
            _ => self.below(12) as u32,
        }
    }

    pub fn float(&mut self) -> f64 {
        match self.below(10) {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            3 => 0.0,
            4 => f64::from_bits(self.next()),
            _ => (self.below(4000) as f64 - 1000.0) / 500.0,
        }
    }

    pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| {
                // Plenty of zeros (delimiters) and small code bytes.
                match self.below(6) {
                    0 => 0,
                    1 => self.below(8) as u8,
                    _ => self.next() as u8,
                }
            })
            .collect()
    }

    fn codes(&mut self) -> Vec<u64> {
        let n = self.below(24);
        (0..n)
            .map(|_| match self.below(6) {
                0 => 0,
                1 => self.next(),
                _ => self.below(4000) as u64,
            })
            .collect()
    }
}

/// The golden device's `HelloReply`, built once.
fn golden_reply() -> &'static pb::HelloReply {
    static REPLY: std::sync::OnceLock<pb::HelloReply> = std::sync::OnceLock::new();
    REPLY.get_or_init(|| {
        golden_frames()
            .into_iter()
            .find_map(|f| match f.message {
                Message::HelloReply(r) => Some(r),
                _ => None,
            })
            .unwrap_or_default()
    })
}

/// A circuit's codes: often six, sometimes none or a wrong count, values often out of range.
fn circuit_codes(rng: &mut Rng) -> pb::CircuitCodes {
    let n = [0, 6, 6, 3][rng.below(4)];
    pb::CircuitCodes {
        circuit: rng.count(),
        codes: (0..n).map(|_| rng.count()).collect(),
    }
}

/// A structurally valid message of a random type with random (often out-of-range) fields.
pub fn random_message(rng: &mut Rng) -> Message {
    let ty = MessageType::ALL[rng.below(MessageType::ALL.len())];
    let neuron = |rng: &mut Rng| pb::NeuronParams {
        tau_m: rng.float(),
        tau_s: rng.float(),
        g_leak: rng.float(),
        e_leak: rng.float(),
        threshold: rng.float(),
    };
    match ty {
        MessageType::Hello => Message::Hello(pb::Hello {
            min_version: rng.count(),
            max_version: rng.count(),
            host_max_frame_size: rng.count(),
            host_name: "fuzz".into(),
            session_nonce: u64::from(rng.count()),
        }),
        MessageType::HelloReply => {
            let mut reply = golden_reply().clone();
            if let Some(c) = reply.capabilities.as_mut() {
                if rng.chance(50) {
                    c.tick_ns = rng.float();
                }
                if rng.chance(50) {
                    c.max_frame_size = rng.count();
                }
                if rng.chance(30) {
                    c.max_weight = Some(rng.float());
                }
            }
            if rng.chance(20) {
                reply.version = rng.count();
            }
            Message::HelloReply(reply)
        }
        MessageType::ConfigureBegin => Message::ConfigureBegin(pb::ConfigureBegin {
            n_inputs: rng.count(),
            layers: (0..rng.below(4))
                .map(|_| pb::LayerShape {
                    size: rng.count(),
                    n_bias: rng.count(),
                    neuron: rng.chance(90).then(|| neuron(rng)),
                })
                .collect(),
            update: rng.chance(30),
        }),
        MessageType::ConfigureChunk => Message::ConfigureChunk(pb::ConfigureChunk {
            layer: rng.count(),
            target: rng.below(4) as i32,
            offset: rng.count(),
            values: (0..rng.below(20)).map(|_| rng.float()).collect(),
            weight_codes: (0..rng.below(20))
                .map(|_| (rng.count() as i32).wrapping_sub(64))
                .collect(),
        }),
        MessageType::ConfigureCommit => Message::ConfigureCommit(pb::ConfigureCommit {
            value_count: u64::from(rng.count()),
        }),
        MessageType::ConfigureAck => Message::ConfigureAck(pb::ConfigureAck {
            values_received: rng.next(),
            values_expected: rng.next(),
            committed: rng.chance(50),
            clipped_weights: rng.next(),
        }),
        MessageType::RunRequest => Message::RunRequest(pb::RunRequest {
            n_inputs: rng.count(),
            n_samples: rng.count(),
            output_only: rng.chance(50),
            input_codes: rng.codes(),
        }),
        MessageType::RunResult => Message::RunResult(pb::RunResult {
            total_samples: rng.count(),
            first_sample: rng.count(),
            n_samples: rng.count(),
            recorded_layers: (0..rng.below(3)).map(|_| rng.count()).collect(),
            layer_sizes: (0..rng.below(3)).map(|_| rng.count()).collect(),
            spike_codes: rng.codes(),
            stats: rng.chance(80).then(|| pb::RunStats {
                samples: rng.next(),
                spikes: rng.next(),
                hardware_time_us: rng.chance(50).then(|| rng.float()),
                lost_events: rng.next(),
                later_spikes: rng.next(),
            }),
            noise_position: rng.chance(50).then(|| rng.next()),
        }),
        MessageType::ReadRunResult => Message::ReadRunResult(pb::ReadRunResult {
            first_sample: rng.count(),
        }),
        MessageType::MembraneRequest => Message::MembraneRequest(pb::MembraneRequest {
            layer: rng.count(),
            neuron: rng.count(),
            duration_ticks: rng.next() >> rng.below(64),
            n_inputs: rng.count(),
            input_codes: rng.codes(),
        }),
        MessageType::MembraneTrace => Message::MembraneTrace(pb::MembraneTrace {
            t0: rng.float(),
            dt: rng.float(),
            total_values: rng.count(),
            first_value: rng.count(),
            codes: (0..rng.below(20)).map(|_| rng.next() as i32).collect(),
            code_scale: rng.chance(50).then(|| rng.float()),
            code_offset: rng.chance(50).then(|| rng.float()),
            values: (0..rng.below(3)).map(|_| rng.float()).collect(),
            noise_position: None,
        }),
        MessageType::ReadMembraneTrace => Message::ReadMembraneTrace(pb::ReadMembraneTrace {
            first_value: rng.count(),
        }),
        MessageType::StatsRequest => Message::StatsRequest(pb::StatsRequest {}),
        MessageType::DeviceStats => Message::DeviceStats(pb::DeviceStats {
            uptime_ms: rng.next(),
            state: rng.below(6) as i32,
            frames_received: rng.next(),
            hardware_time_us: rng.float(),
            ..Default::default()
        }),
        MessageType::ResetRequest => Message::ResetRequest(pb::ResetRequest {}),
        MessageType::ResetReply => Message::ResetReply(pb::ResetReply {
            state: rng.below(6) as i32,
        }),
        MessageType::SetNoisePosition => Message::SetNoisePosition(pb::SetNoisePosition {
            position: rng.next(),
        }),
        MessageType::NoisePosition => Message::NoisePosition(pb::NoisePosition {
            position: rng.next(),
        }),
        MessageType::WriteParameterCodes => Message::WriteParameterCodes(pb::WriteParameterCodes {
            writes: (0..rng.below(5)).map(|_| circuit_codes(rng)).collect(),
        }),
        MessageType::ParameterCodesAck => Message::ParameterCodesAck(pb::ParameterCodesAck {
            written: rng.count(),
        }),
        MessageType::ReadParameterCodes => Message::ReadParameterCodes(pb::ReadParameterCodes {
            circuits: (0..rng.below(5)).map(|_| rng.count()).collect(),
        }),
        MessageType::ParameterCodes => Message::ParameterCodes(pb::ParameterCodes {
            codes: (0..rng.below(5)).map(|_| circuit_codes(rng)).collect(),
        }),
        MessageType::ReadCircuits => Message::ReadCircuits(pb::ReadCircuits {
            layer: rng.count(),
            first: rng.count(),
        }),
        MessageType::Circuits => Message::Circuits(pb::Circuits {
            layer: rng.count(),
            first: rng.count(),
            total: rng.count(),
            circuits: (0..rng.below(8)).map(|_| rng.count()).collect(),
        }),
        MessageType::ReadChipId => Message::ReadChipId(pb::ReadChipId {}),
        MessageType::ChipId => Message::ChipId(pb::ChipId {
            chip_id: "fuzz".repeat(rng.below(30)),
            parameter_settle_us: rng.float(),
        }),
        MessageType::Error => Message::Error(pb::Error {
            code: rng.below(14) as i32,
            message: "fuzz".into(),
            request_type: rng.below(256) as u32,
            field: "f".into(),
            value: rng.chance(50).then(|| rng.float()),
            state: rng.below(6) as i32,
            needed: rng.next(),
            available: rng.next(),
            ..Default::default()
        }),
    }
}

/// Wire bytes of a random valid message with a random request id.
pub fn random_frame(rng: &mut Rng) -> (Message, Vec<u8>) {
    let m = random_message(rng);
    let id = rng.next() as u32;
    let wire = encode_message(id, &m, usize::MAX).unwrap_or_default();
    (m, wire)
}

/// The kinds of damage a serial line does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mutation {
    BitFlips,
    Truncate,
    Duplicate,
    Insert,
    Delete,
    None,
}

pub const MUTATIONS: [Mutation; 6] = [
    Mutation::BitFlips,
    Mutation::Truncate,
    Mutation::Duplicate,
    Mutation::Insert,
    Mutation::Delete,
    Mutation::None,
];

/// Applies one mutation to `bytes` in place.
pub fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, m: Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::BitFlips => {
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        Mutation::Truncate => {
            let keep = rng.below(bytes.len());
            bytes.truncate(keep);
        }
        Mutation::Duplicate => {
            let a = rng.below(bytes.len());
            let b = (a + 1 + rng.below(32)).min(bytes.len());
            let copy = bytes[a..b].to_vec();
            let at = rng.below(bytes.len() + 1);
            bytes.splice(at..at, copy);
        }
        Mutation::Insert => {
            let at = rng.below(bytes.len() + 1);
            let junk = rng.bytes(8);
            bytes.splice(at..at, junk);
        }
        Mutation::Delete => {
            let a = rng.below(bytes.len());
            let b = (a + 1 + rng.below(8)).min(bytes.len());
            bytes.drain(a..b);
        }
        Mutation::None => {}
    }
}

/// Splits `bytes` into random chunks, as a serial port delivers them.
pub fn split(rng: &mut Rng, bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = 1 + rng.below(rest.len().min(64));
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    out
}

/// Feeds decoded messages to every conversion that takes a peer's input, keeping the state a
/// device or host would keep between messages.
pub struct Exerciser {
    scale: TickScale,
    assembler: NetworkAssembler,
    /// Conversions that accepted their input.
    pub accepted: u64,
    /// Conversions that refused their input with a typed error.
    pub refused: u64,
}

impl Default for Exerciser {
    fn default() -> Self {
        Exerciser {
            scale: golden_scale(),
            assembler: NetworkAssembler::new(AssemblyLimits {
                max_layers: 8,
                max_values: 1 << 16,
                max_neurons: Some(512),
                geometry: Some(spikeloop_backend::ChipGeometry::BRAINSCALES2),
                weight_codes: Some(spikeloop_transport::convert::WeightCodes {
                    scale: 30.0,
                    max_code: 63,
                }),
            }),
            accepted: 0,
            refused: 0,
        }
    }
}

impl Exerciser {
    pub fn exercise(&mut self, message: &Message) {
        let ok = match message {
            Message::Hello(h) => negotiate_version(h, 1, 1).is_ok(),
            Message::HelloReply(r) => DeviceInfo::from_hello_reply(r).is_ok(),
            Message::ConfigureBegin(b) => self.assembler.begin(b).is_ok(),
            Message::ConfigureChunk(c) => self.assembler.chunk(c).is_ok(),
            Message::ConfigureCommit(c) => self.assembler.commit(c).is_ok(),
            Message::RunRequest(r) => batch_from_request(r, &self.scale, 0, 5).is_ok(),
            Message::RunResult(r) => {
                let n = r.total_samples.min(64) as usize;
                RunResultAssembler::new(n, vec![0, 1], vec![3, 2], self.scale)
                    .add_page(r)
                    .is_ok()
            }
            Message::MembraneRequest(r) => membrane_request_from(r, &self.scale, 0, 5).is_ok(),
            Message::MembraneTrace(t) => TraceAssembler::new(4096).add_page(t).is_ok(),
            Message::Error(e) => {
                let _ = backend_error(e, "fuzz").to_string();
                true
            }
            _ => true,
        };
        if ok {
            self.accepted += 1;
        } else {
            self.refused += 1;
        }
    }
}

/// Largest frame the campaign's decoders accept.
pub const CAMPAIGN_LIMIT: usize = 1024;

/// Counts of one fuzz campaign ([`campaign`]).
#[derive(Default, Debug)]
pub struct Campaign {
    pub seed: u64,
    pub seconds: f64,
    /// Inputs of each kind: arbitrary byte streams, damaged frames, arbitrary payloads, damaged
    /// payloads.
    pub inputs: [u64; 4],
    pub bytes: u64,
    pub frames_accepted: u64,
    /// Damaged frames the decoder accepted although they differ from what was sent: must be 0.
    pub frames_wrongly_accepted: u64,
    pub frame_errors: std::collections::BTreeMap<&'static str, u64>,
    /// Per mutation: frames damaged, and how many of them still delivered the original intact.
    pub mutations: std::collections::BTreeMap<String, (u64, u64)>,
    pub messages_decoded: u64,
    pub message_errors: std::collections::BTreeMap<&'static str, u64>,
    pub conversions_accepted: u64,
    pub conversions_refused: u64,
    /// Largest buffer any decoder held, bytes: must not exceed [`CAMPAIGN_LIMIT`].
    pub max_buffer: usize,
    /// Peak resident memory before and after, KiB (Linux only).
    pub peak_rss_kib: (Option<u64>, Option<u64>),
}

impl Campaign {
    pub fn total(&self) -> u64 {
        self.inputs.iter().sum()
    }

    /// True when no damaged frame got through and memory stayed within the limit.
    pub fn passed(&self) -> bool {
        self.frames_wrongly_accepted == 0 && self.max_buffer <= CAMPAIGN_LIMIT
    }
}

impl std::fmt::Display for Campaign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.total();
        writeln!(
            f,
            "fuzz: {total} inputs (seed {}) in {:.1} s ({:.0} inputs/s), {} bytes",
            self.seed,
            self.seconds,
            total as f64 / self.seconds.max(1e-9),
            self.bytes
        )?;
        writeln!(
            f,
            "  inputs: {} arbitrary byte streams, {} damaged frames, {} arbitrary payloads, {} damaged payloads",
            self.inputs[0], self.inputs[1], self.inputs[2], self.inputs[3]
        )?;
        writeln!(f, "  frames accepted: {}", self.frames_accepted)?;
        writeln!(
            f,
            "  damaged frames accepted other than the one sent: {}",
            self.frames_wrongly_accepted
        )?;
        for (name, count) in &self.frame_errors {
            writeln!(f, "  frame error {name:>22}: {count}")?;
        }
        for (name, (count, intact)) in &self.mutations {
            writeln!(
                f,
                "  mutation {name:>10}: {count} frames, original still delivered intact {intact}"
            )?;
        }
        writeln!(f, "  messages decoded: {}", self.messages_decoded)?;
        for (name, count) in &self.message_errors {
            writeln!(f, "  message error {name:>20}: {count}")?;
        }
        writeln!(
            f,
            "  conversions: {} accepted, {} refused with a typed error",
            self.conversions_accepted, self.conversions_refused
        )?;
        writeln!(
            f,
            "  largest decoder buffer: {} bytes (limit {CAMPAIGN_LIMIT})",
            self.max_buffer
        )?;
        match self.peak_rss_kib {
            (Some(a), Some(b)) => {
                writeln!(f, "  peak resident memory: {a} KiB before, {b} KiB after")?
            }
            _ => writeln!(f, "  peak resident memory: not available on this system")?,
        }
        write!(f, "  panics: 0 (a panic would have aborted the run)")
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn frame_error_name(e: &FrameError) -> &'static str {
    match e {
        FrameError::TooLarge { .. } => "too large",
        FrameError::InvalidCobs => "invalid COBS",
        FrameError::TooShort { .. } => "too short",
        FrameError::BadCrc { .. } => "bad CRC",
        FrameError::UnsupportedVersion { .. } => "unsupported version",
        FrameError::LengthMismatch { .. } => "length mismatch",
        _ => "other",
    }
}

fn message_error_name(e: &MessageError) -> &'static str {
    match e {
        MessageError::UnknownType { .. } => "unknown type",
        MessageError::Malformed { .. } => "malformed payload",
        MessageError::BadFlags { .. } => "flags contradict type",
        _ => "other",
    }
}

/// Runs `n` hostile inputs generated from `seed`, in turn of four kinds: arbitrary bytes (some
/// of them endless frames) fed in random splits to one long-lived stream decoder; a valid frame
/// damaged like a serial line damages it and fed to a fresh decoder; arbitrary header bytes
/// under a valid CRC, and arbitrary payloads under arbitrary type bytes and flags; valid
/// payloads with the same damage. Every decoded message goes on to the conversions.
pub fn campaign(n: u64, seed: u64) -> Campaign {
    let mut c = Campaign {
        seed,
        peak_rss_kib: (peak_rss_kib(), None),
        ..Campaign::default()
    };
    let start = std::time::Instant::now();
    let mut rng = Rng(seed);
    let mut ex = Exerciser::default();
    let mut stream = FrameDecoder::new(CAMPAIGN_LIMIT);
    let mut items = Vec::new();
    let count_frame_error = |c: &mut Campaign, e: &FrameError| {
        *c.frame_errors.entry(frame_error_name(e)).or_default() += 1
    };
    let count_message_error = |c: &mut Campaign, e: &MessageError| {
        *c.message_errors.entry(message_error_name(e)).or_default() += 1
    };

    for i in 0..n {
        let kind = (i % 4) as usize;
        c.inputs[kind] += 1;
        match kind {
            0 => {
                let bytes = if rng.below(16) == 0 {
                    // A long run without a delimiter: a frame that never ends.
                    (0..rng.below(4 * CAMPAIGN_LIMIT))
                        .map(|_| 1 + rng.below(255) as u8)
                        .collect()
                } else {
                    rng.bytes(256)
                };
                c.bytes += bytes.len() as u64;
                items.clear();
                for chunk in split(&mut rng, &bytes) {
                    stream.push(&chunk, &mut items);
                }
                c.max_buffer = c.max_buffer.max(stream.buffer_capacity());
                for item in items.drain(..) {
                    match item {
                        Ok(frame) => {
                            c.frames_accepted += 1;
                            if let Ok(m) = decode_message(&frame) {
                                ex.exercise(&m);
                            }
                        }
                        Err(e) => count_frame_error(&mut c, &e),
                    }
                }
            }
            1 => {
                let (_, mut wire) = random_frame(&mut rng);
                let Ok(original) = Frame::decode_exact(&wire, usize::MAX) else {
                    continue;
                };
                let m = MUTATIONS[rng.below(MUTATIONS.len())];
                mutate(&mut rng, &mut wire, m);
                c.bytes += wire.len() as u64;
                let mut decoder = FrameDecoder::new(CAMPAIGN_LIMIT);
                items.clear();
                for chunk in split(&mut rng, &wire) {
                    decoder.push(&chunk, &mut items);
                }
                c.max_buffer = c.max_buffer.max(decoder.buffer_capacity());
                let key = format!("{m:?}");
                for item in items.drain(..) {
                    match item {
                        Ok(frame) => {
                            c.frames_accepted += 1;
                            if frame == original {
                                c.mutations.entry(key.clone()).or_default().1 += 1;
                            } else {
                                c.frames_wrongly_accepted += 1;
                                eprintln!(
                                    "accepted a damaged frame: {frame:?} (sent {original:?})"
                                );
                            }
                        }
                        Err(e) => count_frame_error(&mut c, &e),
                    }
                }
                c.mutations.entry(key).or_default().0 += 1;
            }
            2 => {
                // Arbitrary header bytes under a valid CRC: the checks after the CRC.
                let mut raw: Vec<u8> = (0..10).map(|_| rng.next() as u8).collect();
                if rng.chance(50) {
                    raw[0] = 0x10 | (raw[0] & 0x0F);
                }
                let body = rng.bytes(40);
                if rng.chance(50) {
                    raw[6..10].copy_from_slice(&(body.len() as u32).to_le_bytes());
                }
                raw.extend_from_slice(&body);
                raw.extend_from_slice(&crc32(&raw).to_le_bytes());
                c.bytes += raw.len() as u64;
                match parse_raw_frame(&raw) {
                    Ok(frame) => {
                        c.frames_accepted += 1;
                        if let Ok(m) = decode_message(&frame) {
                            ex.exercise(&m);
                        }
                    }
                    Err(e) => count_frame_error(&mut c, &e),
                }

                // Arbitrary payloads under arbitrary type bytes and flags.
                let ty = rng.next() as u8;
                let flags = Flags::from_bits(rng.next() as u8);
                let payload = rng.bytes(300);
                c.bytes += payload.len() as u64;
                let frame = Frame {
                    header: Header::new(ty, 1, flags),
                    payload,
                };
                match decode_message(&frame) {
                    Ok(m) => {
                        c.messages_decoded += 1;
                        ex.exercise(&m);
                    }
                    Err(e) => count_message_error(&mut c, &e),
                }
                if let Some(t) = MessageType::from_byte(ty) {
                    match Message::decode_payload(t, &frame.payload) {
                        Ok(m) => {
                            c.messages_decoded += 1;
                            ex.exercise(&m);
                        }
                        Err(e) => count_message_error(&mut c, &e),
                    }
                }
            }
            _ => {
                let (m, _) = random_frame(&mut rng);
                let mut payload = m.encode_payload();
                let mutation = MUTATIONS[rng.below(MUTATIONS.len())];
                mutate(&mut rng, &mut payload, mutation);
                c.bytes += payload.len() as u64;
                match Message::decode_payload(m.message_type(), &payload) {
                    Ok(decoded) => {
                        c.messages_decoded += 1;
                        ex.exercise(&decoded);
                    }
                    Err(e) => count_message_error(&mut c, &e),
                }
            }
        }
    }
    c.seconds = start.elapsed().as_secs_f64();
    c.conversions_accepted = ex.accepted;
    c.conversions_refused = ex.refused;
    c.peak_rss_kib.1 = peak_rss_kib();
    c
}
