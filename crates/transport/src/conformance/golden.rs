//! The golden frames of `firmware-interface/golden/`: worked examples of a whole exchange.
//!
//! A firmware author checks an implementation against these bytes; the crate's tests decode
//! every file and re-encode it byte for byte, and compare the files with [`golden_frames`], so
//! the specification's examples cannot drift from the code. Regenerate the files with
//! `cargo run -p spikeloop-transport --example golden` after a deliberate protocol change.
//!
//! The exchange: a handshake, the configuration of a tiny 2-2-2 network (one bias spike per
//! layer) in frames of at most 256 bytes, a run of two samples with its result, and an error.

use std::fmt::Write as _;

use spikeloop_backend::ndarray::arr2;
use spikeloop_backend::{InputBatch, Layer, Network, NeuronParams, Record};

use crate::convert::{WeightCodes, configure_messages, run_requests, update_messages};
use crate::frame::{CRC_LEN, HEADER_LEN, MIN_MAX_FRAME_SIZE};
use crate::messages::{Message, MessageError, encode_message, pb};
use crate::timecode::{self, TickScale};

/// One golden frame: a message, the request id it travels with, and what it shows.
#[derive(Clone, Debug, PartialEq)]
pub struct GoldenFrame {
    /// File name without extension, for example `01-hello`.
    pub name: String,
    /// One line saying what the frame is.
    pub description: String,
    /// The header's request id.
    pub request_id: u32,
    /// The message.
    pub message: Message,
}

/// The session nonce of the golden handshake.
pub const GOLDEN_SESSION_NONCE: u64 = 0x0123_4567_89ab_cdef;

/// The clock of the golden device: 8 ns ticks, `tau_s` = 6 us (750 ticks per `tau_s`).
pub fn golden_scale() -> TickScale {
    match TickScale::new(8.0, 6.0) {
        Ok(s) => s,
        Err(e) => unreachable!("8 ns ticks at 6 us per tau_s are valid: {e}"),
    }
}

/// The tiny network of the golden configure sequence: 2 inputs, a hidden layer of 2 neurons and
/// an output layer of 2, each layer with one bias spike, reference neurons.
pub fn golden_network() -> Network {
    Network {
        n_inputs: 2,
        layers: vec![
            Layer {
                size: 2,
                neuron: NeuronParams::REFERENCE,
                bias_times: vec![0.9],
                weights: arr2(&[[1.5, -0.5, 0.25], [0.75, 2.0, -1.0]]),
            },
            Layer {
                size: 2,
                neuron: NeuronParams::REFERENCE,
                bias_times: vec![0.9],
                weights: arr2(&[[1.0, 0.5, -0.25], [-0.75, 1.25, 0.125]]),
            },
        ],
    }
}

/// The golden device's weight rule: 30 codes per threshold distance, 6 bits (the announced
/// `max_weight` 2.1 is 63 codes).
pub const GOLDEN_WEIGHT_CODES: WeightCodes = WeightCodes {
    scale: 30.0,
    max_code: 63,
};

/// The two samples of the golden run: `[0.2, 1.0]` and `[silent, 0.5]` (model units).
pub fn golden_batch() -> InputBatch {
    match InputBatch::new(2, vec![0.2, 1.0, f64::INFINITY, 0.5]) {
        Ok(b) => b,
        Err(_) => unreachable!("two samples of two valid times"),
    }
}

/// The device's answer in the golden exchange, in ticks per sample (hidden layer, then output
/// layer; `None` = no spike).
pub const GOLDEN_SPIKE_TICKS: [[Option<i64>; 4]; 2] = [
    [Some(1100), None, Some(1500), Some(1720)],
    [Some(900), Some(1000), None, Some(1400)],
];

/// Every golden frame, in the order of the exchange.
pub fn golden_frames() -> Vec<GoldenFrame> {
    let scale = golden_scale();
    let mut frames = Vec::new();
    let mut add = |request_id: u32, description: &str, message: Message| {
        let name = format!(
            "{:02}-{}",
            frames.len() + 1,
            kebab(message.message_type().name())
        );
        frames.push(GoldenFrame {
            name,
            description: description.to_string(),
            request_id,
            message,
        });
    };

    add(
        1,
        "host opens the connection: protocol 1..=1, accepts frames up to 65536 bytes",
        Message::Hello(pb::Hello {
            min_version: 1,
            max_version: 1,
            host_max_frame_size: 65536,
            host_name: "spikeloop".into(),
            session_nonce: GOLDEN_SESSION_NONCE,
        }),
    );
    add(
        1,
        "device answers: version 1, a BrainScaleS-2-like chip (8 ns ticks, tau_s = 6 us), frames up to 1024 bytes",
        Message::HelloReply(pb::HelloReply {
            version: 1,
            min_version: 1,
            max_version: 1,
            device_id: "golden-device".into(),
            firmware_version: "golden-firmware 1.0".into(),
            capabilities: Some(pb::Capabilities {
                max_neurons: Some(512),
                synapse_rows: Some(512),
                weight_bits: Some(6),
                max_weight: Some(2.1),
                tick_ns: 8.0,
                acceleration: Some(1000.0),
                tau_s_us: 6.0,
                max_frame_size: 1024,
                max_requests_in_flight: 1,
                features: vec![
                    pb::Feature::MembraneRecording as i32,
                    pb::Feature::NoisePosition as i32,
                    pb::Feature::WeightUpdate as i32,
                ],
                max_samples_per_run: 0,
                sample_window_us: 48.0,
                batch_overhead_us: 100.0,
                command_timeout_ms: 1000,
                sample_window_ticks: 6000,
                geometry: Some(pb::ChipGeometry {
                    halves: 2,
                    neurons_per_half: 256,
                    rows_per_half: 256,
                    rows_per_source: 2,
                    max_merged_circuits: 64,
                }),
                membrane_readout: Some(pb::MembraneReadout {
                    unit: "mV".into(),
                    scale: 1.171875,
                    offset: 0.0,
                }),
                weight_scale: Some(GOLDEN_WEIGHT_CODES.scale),
            }),
            noise_position: Some(0),
            session_nonce: GOLDEN_SESSION_NONCE,
        }),
    );

    // The configure sequence as the host builds it, chunked for the smallest allowed frames.
    let configure = match configure_messages(&golden_network(), MIN_MAX_FRAME_SIZE) {
        Ok(m) => m,
        Err(e) => unreachable!("the golden network is valid and small: {e}"),
    };
    let mut id = 2;
    let mut last_id = id;
    for m in configure {
        let description = match &m {
            Message::ConfigureBegin(_) => {
                "host starts loading a 2-2-2 network (2 inputs, one bias per layer, reference neurons)"
                    .to_string()
            }
            Message::ConfigureChunk(c) => format!(
                "host writes layer {} {} from offset {} ({} values)",
                c.layer,
                if c.target == pb::ChunkTarget::Weights as i32 {
                    "weights"
                } else {
                    "bias times"
                },
                c.offset,
                c.values.len()
            ),
            _ => "host commits the network (14 values sent)".to_string(),
        };
        add(id, &description, m);
        last_id = id;
        id += 1;
    }
    add(
        last_id,
        "device acknowledges the commit: network loaded, no weight clipped",
        Message::ConfigureAck(pb::ConfigureAck {
            values_received: 14,
            values_expected: 14,
            committed: true,
            clipped_weights: 0,
        }),
    );

    let run = match run_requests(
        &golden_batch(),
        Record::AllLayers,
        &scale,
        MIN_MAX_FRAME_SIZE,
        None,
    ) {
        Ok(mut r) if r.len() == 1 => r.remove(0),
        _ => unreachable!("two samples fit one frame"),
    };
    add(
        id,
        "host runs two samples, inputs [0.2, 1.0] and [silent, 0.5] tau_s = [150, 750] and [-, 375] ticks, recording all layers",
        Message::RunRequest(run),
    );
    let mut spike_codes = Vec::new();
    for sample in GOLDEN_SPIKE_TICKS {
        timecode::encode_sample(sample, &mut spike_codes);
    }
    add(
        id,
        "device returns both samples in one page: hidden [1100, -] output [1500, 1720]; hidden [900, 1000] output [-, 1400] ticks",
        Message::RunResult(pb::RunResult {
            total_samples: 2,
            first_sample: 0,
            n_samples: 2,
            recorded_layers: vec![0, 1],
            layer_sizes: vec![2, 2],
            spike_codes,
            stats: Some(pb::RunStats {
                samples: 2,
                spikes: 6,
                hardware_time_us: Some(196.0),
                lost_events: 0,
                later_spikes: 3,
            }),
            noise_position: Some(1),
        }),
    );
    add(
        id + 1,
        &format!(
            "device refuses a RunRequest (id {}, not shown) that declared 3 input channels for the 2-input network",
            id + 1
        ),
        Message::Error(pb::Error {
            code: pb::ErrorCode::OutOfRange as i32,
            message: "n_inputs = 3 is out of range; must be 2".into(),
            request_type: 0x20,
            field: "n_inputs".into(),
            value: Some(3.0),
            min: Some(2.0),
            max: Some(2.0),
            ..Default::default()
        }),
    );

    // A trainer's next batch: the same network with new weights, as a weight update.
    let mut updated = golden_network();
    updated.layers[0].weights = arr2(&[[1.2, -0.5, 0.5], [0.8, 1.7, -1.0]]);
    updated.layers[1].weights = arr2(&[[1.0, 0.7, -0.2], [-0.5, 1.3, 0.1]]);
    let update = match update_messages(&updated, MIN_MAX_FRAME_SIZE, Some(GOLDEN_WEIGHT_CODES)) {
        Ok(m) => m,
        Err(e) => unreachable!("the golden network is valid and small: {e}"),
    };
    let mut last_id = id + 2;
    for (id, m) in (id + 2..).zip(update) {
        let description = match &m {
            Message::ConfigureBegin(_) => {
                "host starts a weight update of the loaded 2-2-2 network (update = true, the same shape)"
                    .to_string()
            }
            Message::ConfigureChunk(c) => format!(
                "host writes layer {} weights from offset {} as {} codes of 1/30 threshold distance",
                c.layer,
                c.offset,
                c.weight_codes.len()
            ),
            _ => "host commits the update (12 weights sent; the bias times stay)".to_string(),
        };
        add(id, &description, m);
        last_id = id;
    }
    add(
        last_id,
        "device acknowledges the update's commit: 12 of 12 weights, the new weights in effect",
        Message::ConfigureAck(pb::ConfigureAck {
            values_received: 12,
            values_expected: 12,
            committed: true,
            clipped_weights: 0,
        }),
    );
    frames
}

fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Pretty `Debug` output of a [`Message`] without its enum wrapper, with short `Some(..)` and
/// `[..]` groups joined onto one line.
fn compact_debug(pretty: &str) -> Vec<String> {
    let all: Vec<&str> = pretty.lines().collect();
    // Drop the `Variant(` and `)` lines of the enum wrapper and their indentation.
    let inner = all.get(1..all.len().saturating_sub(1)).unwrap_or_default();
    let mut lines: Vec<String> = inner
        .iter()
        .map(|l| l.strip_prefix("    ").unwrap_or(l).to_string())
        .collect();
    let scalar = |l: &str| {
        let t = l.trim();
        t.ends_with(',') && !t.ends_with("(,") && !t.contains(['{', '}', '[', ']', '(', ')'])
    };
    loop {
        let mut changed = false;
        let mut i = 0;
        while i < lines.len() {
            let open = lines[i].trim_end();
            if open.ends_with('(') || open.ends_with('[') {
                let close = if open.ends_with('(') { ')' } else { ']' };
                let mut j = i + 1;
                while j < lines.len() && scalar(&lines[j]) {
                    j += 1;
                }
                if j > i + 1 && j < lines.len() && lines[j].trim_start().starts_with(close) {
                    let items: Vec<&str> = lines[i + 1..j]
                        .iter()
                        .map(|l| l.trim().trim_end_matches(','))
                        .collect();
                    let joined = format!("{open}{}{}", items.join(", "), lines[j].trim());
                    if joined.len() <= 100 {
                        lines.splice(i..=j, [joined]);
                        changed = true;
                    }
                }
            }
            i += 1;
        }
        if !changed {
            return lines;
        }
    }
}

fn hex_line(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl GoldenFrame {
    /// The frame's wire bytes (COBS-encoded, delimiter included).
    pub fn wire(&self) -> Result<Vec<u8>, MessageError> {
        encode_message(self.request_id, &self.message, usize::MAX)
    }

    /// The text of the `.hex` file: a `#` comment header saying what the frame is, then the
    /// wire bytes in hex, 16 per line.
    pub fn to_hex_file(&self) -> Result<String, MessageError> {
        let wire = self.wire()?;
        let frame = self.message.to_frame(self.request_id);
        let payload = &frame.payload;
        let mut raw = Vec::new();
        let header = frame
            .header
            .to_bytes(payload.len() as u32)
            .map_err(MessageError::Frame)?;
        raw.extend_from_slice(&header);
        raw.extend_from_slice(payload);
        let crc = crate::frame::crc32(&raw);
        let ty = self.message.message_type();
        let mut s = String::new();
        let _ = writeln!(s, "# spikeloop golden frame {}", self.name);
        let _ = writeln!(s, "# {}", self.description);
        let _ = writeln!(
            s,
            "# {ty}, request id {}, flags {:?}",
            self.request_id, frame.header.flags
        );
        let _ = writeln!(
            s,
            "# decoded frame: {} bytes = header {HEADER_LEN} + payload {} + CRC {CRC_LEN}",
            raw.len() + CRC_LEN,
            payload.len()
        );
        let _ = writeln!(s, "#   header  {}", hex_line(&header));
        for (i, line) in payload.chunks(16).enumerate() {
            let label = if i == 0 { "payload" } else { "       " };
            let _ = writeln!(s, "#   {label} {}", hex_line(line));
        }
        let _ = writeln!(
            s,
            "#   crc32   {} (= {crc:#010x}, little endian)",
            hex_line(&crc.to_le_bytes())
        );
        let _ = writeln!(s, "# message fields:");
        for line in compact_debug(&format!("{:#?}", self.message)) {
            let _ = writeln!(s, "#   {line}");
        }
        let _ = writeln!(
            s,
            "# wire bytes ({}, COBS-encoded, ending in the 0x00 delimiter):",
            wire.len()
        );
        for line in wire.chunks(16) {
            let _ = writeln!(s, "{}", hex_line(line));
        }
        Ok(s)
    }
}

/// The bytes of a `.hex` file: every line not starting with `#`, as whitespace-separated hex
/// byte pairs.
pub fn parse_hex_file(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        for token in line.split_whitespace() {
            let byte = u8::from_str_radix(token, 16)
                .ok()
                .filter(|_| token.len() == 2)
                .ok_or_else(|| format!("line {}: {token:?} is not a hex byte", n + 1))?;
            out.push(byte);
        }
    }
    Ok(out)
}
