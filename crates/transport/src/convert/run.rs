//! Runs: an input batch as `RunRequest`s, results as `RunResult` pages, and back.

use spikeloop_backend::{InputBatch, Network, Record, RunOutput, RunStats, SpikeTimes};

use super::{ConvertError, packed_field_len, payload_budget, to_u32};
use crate::messages::pb;
use crate::timecode::{self, TickScale};

/// The network layers a run records and their sizes: every layer, or only the output layer.
pub fn recorded_layers(network: &Network, record: Record) -> (Vec<usize>, Vec<usize>) {
    let all = network.layer_sizes();
    match record {
        Record::OutputOnly if !all.is_empty() => {
            let last = all.len() - 1;
            (vec![last], vec![all[last]])
        }
        _ => ((0..all.len()).collect(), all),
    }
}

/// The `RunRequest`s that run `batch`, in sample order, each within `max_frame_size` bytes and
/// `max_samples_per_run` samples (if limited). Input times are quantised to ticks of `scale`
/// (within half a tick; the device receives ticks). An empty batch needs no request.
pub fn run_requests(
    batch: &InputBatch,
    record: Record,
    scale: &TickScale,
    max_frame_size: usize,
    max_samples_per_run: Option<u32>,
) -> Result<Vec<pb::RunRequest>, ConvertError> {
    let n_inputs = to_u32("n_inputs", batch.n_inputs())?;
    let output_only = record == Record::OutputOnly;
    let limit = max_samples_per_run.map_or(usize::MAX, |m| (m as usize).max(1));
    let budget = payload_budget(max_frame_size);
    let mut requests = Vec::new();
    let mut current = pb::RunRequest {
        n_inputs,
        n_samples: 0,
        output_only,
        input_codes: Vec::new(),
    };
    let mut sample_codes = Vec::with_capacity(batch.n_inputs());
    let mut body = 0usize;
    // Fixed fields with n_samples at its largest possible varint, so the estimate never falls
    // short.
    let base = |r: &pb::RunRequest| {
        prost::Message::encoded_len(&pb::RunRequest {
            n_samples: u32::MAX,
            input_codes: Vec::new(),
            ..r.clone()
        })
    };
    let fixed = base(&current);
    for s in 0..batch.len() {
        sample_codes.clear();
        timecode::encode_times(batch.sample(s), scale, &mut sample_codes)
            .map_err(|e| ConvertError::InvalidInput(format!("sample {s}: {e}")))?;
        let bytes = timecode::varint_bytes(&sample_codes);
        if fixed + packed_field_len(bytes) > budget {
            return Err(ConvertError::FrameTooSmall {
                what: "a RunRequest with one sample",
                needed: crate::frame::MIN_FRAME_LEN + fixed + packed_field_len(bytes),
                limit: max_frame_size,
            });
        }
        let full =
            current.n_samples as usize >= limit || fixed + packed_field_len(body + bytes) > budget;
        if full {
            requests.push(std::mem::replace(
                &mut current,
                pb::RunRequest {
                    n_inputs,
                    n_samples: 0,
                    output_only,
                    input_codes: Vec::new(),
                },
            ));
            body = 0;
        }
        current.input_codes.extend_from_slice(&sample_codes);
        current.n_samples += 1;
        body += bytes;
    }
    if current.n_samples > 0 {
        requests.push(current);
    }
    Ok(requests)
}

/// The largest code of a recorded spike time on a device whose sample window is
/// `window_ticks` ticks (0: no window): recorded times lie within `[-window, window]` ticks, so
/// two consecutive ones differ by at most `2 window`, and `1 + zigzag(2 window) = 1 + 4 window`
/// bounds the code. Without a window, times lie within the protocol's `+-2^40` ticks.
pub fn largest_spike_code(window_ticks: u64) -> u64 {
    let reach = if window_ticks == 0 {
        timecode::MAX_ABS_TICKS as u64
    } else {
        window_ticks.min(timecode::MAX_ABS_TICKS as u64)
    };
    1 + 4 * reach
}

/// The largest frame, in bytes, a `RunResult` page holding one sample of the recorded layers of
/// `sizes` neurons can take on a device of sample window `window_ticks` (see
/// [`largest_spike_code`]): every field at its longest, every neuron at the longest code. A
/// device refuses a `RunRequest` whose one-sample page could exceed the host's frame limit
/// before it runs it; a host checks the same before it sends one.
pub fn one_sample_page_bound(sizes: &[usize], window_ticks: u64) -> usize {
    let n: usize = sizes.iter().sum();
    let code = prost::encoding::encoded_len_varint(largest_spike_code(window_ticks));
    let fixed = prost::Message::encoded_len(&pb::RunResult {
        total_samples: u32::MAX,
        first_sample: u32::MAX,
        n_samples: u32::MAX,
        recorded_layers: vec![u32::MAX; sizes.len()],
        layer_sizes: vec![u32::MAX; sizes.len()],
        spike_codes: Vec::new(),
        stats: Some(pb::RunStats {
            samples: u64::MAX,
            spikes: u64::MAX,
            hardware_time_us: Some(f64::MAX),
            lost_events: u64::MAX,
            later_spikes: u64::MAX,
        }),
        noise_position: Some(u64::MAX),
    });
    crate::frame::MIN_FRAME_LEN + fixed + packed_field_len(n.saturating_mul(code))
}

/// Decodes one request's input codes (device side), `n_inputs` per sample, appending model
/// times to `out`. Every time must lie in the sample window `[0, window_ticks)` (or, without a
/// window, within the protocol's `+-2^40` ticks); the first that does not is refused as
/// `OUT_OF_RANGE` naming its entry `input_codes[i]`, with the time in ticks and the range.
pub fn decode_inputs(
    codes: &[u64],
    n_inputs: usize,
    scale: &TickScale,
    window_ticks: u64,
    out: &mut Vec<f64>,
) -> Result<(), ConvertError> {
    let max = timecode::MAX_ABS_TICKS;
    let (lo, hi, why) = if window_ticks == 0 {
        (-max, max, "the protocol's range")
    } else {
        (
            0,
            window_ticks.min(max as u64) as i64 - 1,
            "the sample window",
        )
    };
    for (s, sample) in codes.chunks(n_inputs.max(1)).enumerate() {
        let mut base = 0i128;
        for (c, &code) in sample.iter().enumerate() {
            if code == timecode::SILENT {
                out.push(f64::INFINITY);
                continue;
            }
            let t = base + i128::from(timecode::unzigzag(code - 1));
            if t < i128::from(lo) || t > i128::from(hi) {
                return Err(ConvertError::TimeOutOfRange {
                    field: format!("input_codes[{}]", s * n_inputs + c),
                    sample: s,
                    channel: c,
                    ticks: t as f64,
                    min: lo,
                    max: hi,
                    why,
                });
            }
            out.push(scale.to_model(Some(t as i64)));
            base = t;
        }
    }
    Ok(())
}

/// The device side of a `RunRequest`: the batch and what to record, checked against the
/// configured network's input count and the device's sample window (`window_ticks`, 0 for
/// none; see [`decode_inputs`]). The declared sample count is checked against the codes that
/// arrived before anything is allocated.
pub fn batch_from_request(
    req: &pb::RunRequest,
    scale: &TickScale,
    window_ticks: u64,
    n_inputs: usize,
) -> Result<(InputBatch, Record), ConvertError> {
    if req.n_inputs as usize != n_inputs || n_inputs == 0 {
        return Err(ConvertError::out_of_range(
            "n_inputs",
            req.n_inputs,
            Some(n_inputs as f64),
            Some(n_inputs as f64),
        ));
    }
    if req.n_samples == 0 {
        return Err(ConvertError::out_of_range(
            "n_samples",
            0,
            Some(1.0),
            Some(f64::from(u32::MAX)),
        ));
    }
    let expected = (req.n_samples as usize).checked_mul(n_inputs);
    if expected != Some(req.input_codes.len()) {
        return Err(ConvertError::out_of_range(
            "input_codes",
            req.input_codes.len() as f64,
            expected.map(|e| e as f64),
            expected.map(|e| e as f64),
        ));
    }
    let mut times = Vec::with_capacity(req.input_codes.len());
    decode_inputs(&req.input_codes, n_inputs, scale, window_ticks, &mut times)?;
    let batch =
        InputBatch::new(n_inputs, times).map_err(|e| ConvertError::InvalidInput(e.to_string()))?;
    let record = if req.output_only {
        Record::OutputOnly
    } else {
        Record::AllLayers
    };
    Ok((batch, record))
}

/// Run statistics as sent on the wire (the wall time stays with whoever measured it).
pub fn stats_message(stats: &RunStats) -> pb::RunStats {
    pb::RunStats {
        samples: stats.samples as u64,
        spikes: stats.spikes,
        hardware_time_us: stats.hardware_time_us,
        lost_events: stats.lost_events,
        later_spikes: stats.later_spikes,
    }
}

/// Run statistics from the wire; `wall_time` is zero for the host to fill in.
pub fn stats_from_message(stats: &pb::RunStats) -> RunStats {
    let mut out = RunStats::default();
    out.samples = usize::try_from(stats.samples).unwrap_or(usize::MAX);
    out.spikes = stats.spikes;
    out.hardware_time_us = stats.hardware_time_us;
    out.lost_events = stats.lost_events;
    out.later_spikes = stats.later_spikes;
    out
}

/// The device side of a run's results: every sample's spike times coded once, served as pages
/// that fit the host's frame limit (`RunResult` answers to `RunRequest` and `ReadRunResult`).
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedRun {
    total: u32,
    layers: Vec<u32>,
    sizes: Vec<u32>,
    codes: Vec<u64>,
    /// Start of each sample's codes in `codes`, plus one past the end.
    starts: Vec<usize>,
    /// Varint bytes of each sample's codes.
    bytes: Vec<usize>,
    stats: pb::RunStats,
    noise_position: Option<u64>,
}

impl EncodedRun {
    /// Codes `output` (whose recorded layers have `recorded_sizes` neurons) in ticks of `scale`.
    /// Spike times off the tick grid are rounded to the nearest tick.
    pub fn new(
        output: &RunOutput,
        recorded_sizes: &[usize],
        scale: &TickScale,
        noise_position: Option<u64>,
    ) -> Result<EncodedRun, ConvertError> {
        let spikes = &output.spikes;
        let layers = spikes
            .recorded_layers()
            .iter()
            .map(|&l| to_u32("recorded_layers", l))
            .collect::<Result<Vec<_>, _>>()?;
        if layers.len() != recorded_sizes.len() {
            return Err(ConvertError::BadReply(format!(
                "{} recorded layers but {} layer sizes",
                layers.len(),
                recorded_sizes.len()
            )));
        }
        let stride: usize = recorded_sizes.iter().sum();
        let n = spikes.n_samples();
        if n.checked_mul(stride) != Some(spikes.as_slice().len()) {
            return Err(ConvertError::BadReply(format!(
                "{} spike times do not form {n} samples of {stride} neurons",
                spikes.as_slice().len()
            )));
        }
        let total = to_u32("total_samples", n)?;
        let mut codes = Vec::with_capacity(spikes.as_slice().len());
        let mut starts = Vec::with_capacity(n + 1);
        let mut bytes = Vec::with_capacity(n);
        for s in 0..n {
            starts.push(codes.len());
            timecode::encode_times(spikes.sample(s), scale, &mut codes)
                .map_err(|e| ConvertError::BadReply(format!("sample {s}: {e}")))?;
            bytes.push(timecode::varint_bytes(&codes[starts[s]..]));
        }
        starts.push(codes.len());
        Ok(EncodedRun {
            total,
            layers,
            sizes: recorded_sizes
                .iter()
                .map(|&s| to_u32("layer_sizes", s))
                .collect::<Result<_, _>>()?,
            codes,
            starts,
            bytes,
            stats: stats_message(&output.stats),
            noise_position,
        })
    }

    /// Number of samples in the run.
    pub fn total_samples(&self) -> u32 {
        self.total
    }

    /// The page starting at `first_sample` with as many whole samples as fit `max_frame_size`.
    pub fn page(
        &self,
        first_sample: u32,
        max_frame_size: usize,
    ) -> Result<pb::RunResult, ConvertError> {
        if first_sample >= self.total && !(first_sample == 0 && self.total == 0) {
            return Err(ConvertError::out_of_range(
                "first_sample",
                first_sample,
                Some(0.0),
                Some(f64::from(self.total.saturating_sub(1))),
            ));
        }
        let mut page = pb::RunResult {
            total_samples: self.total,
            first_sample,
            n_samples: self.total,
            recorded_layers: self.layers.clone(),
            layer_sizes: self.sizes.clone(),
            spike_codes: Vec::new(),
            stats: Some(self.stats),
            noise_position: self.noise_position,
        };
        let fixed = prost::Message::encoded_len(&page);
        let budget = payload_budget(max_frame_size);
        let first = first_sample as usize;
        let mut end = first;
        let mut body = 0usize;
        while end < self.total as usize {
            let b = self.bytes.get(end).copied().unwrap_or(0);
            if fixed + packed_field_len(body + b) > budget {
                break;
            }
            body += b;
            end += 1;
        }
        if end == first && self.total > 0 {
            let b = self.bytes.get(first).copied().unwrap_or(0);
            return Err(ConvertError::FrameTooSmall {
                what: "a RunResult with one sample",
                needed: crate::frame::MIN_FRAME_LEN + fixed + packed_field_len(b),
                limit: max_frame_size,
            });
        }
        let (lo, hi) = (
            self.starts.get(first).copied().unwrap_or(0),
            self.starts.get(end).copied().unwrap_or(0),
        );
        page.spike_codes = self.codes.get(lo..hi).unwrap_or_default().to_vec();
        page.n_samples = (end - first) as u32;
        Ok(page)
    }
}

/// The host side of a run's results: collects `RunResult` pages in order and checks each
/// against what was asked for (sample count, recorded layers) before decoding it.
#[derive(Clone, Debug)]
pub struct RunResultAssembler {
    scale: TickScale,
    total: usize,
    layers: Vec<usize>,
    sizes: Vec<usize>,
    stride: usize,
    data: Vec<f64>,
    next: usize,
    stats: Option<pb::RunStats>,
    noise_position: Option<u64>,
}

impl RunResultAssembler {
    /// Expects `n_samples` samples recording the given network layers of the given sizes.
    pub fn new(
        n_samples: usize,
        recorded_layers: Vec<usize>,
        layer_sizes: Vec<usize>,
        scale: TickScale,
    ) -> RunResultAssembler {
        let stride = layer_sizes.iter().sum();
        RunResultAssembler {
            scale,
            total: n_samples,
            data: Vec::with_capacity(n_samples.saturating_mul(stride)),
            layers: recorded_layers,
            sizes: layer_sizes,
            stride,
            next: 0,
            stats: None,
            noise_position: None,
        }
    }

    /// Expects the results of `n_samples` samples of `network` recording `record`.
    pub fn for_network(
        network: &Network,
        record: Record,
        n_samples: usize,
        scale: TickScale,
    ) -> RunResultAssembler {
        let (layers, sizes) = recorded_layers(network, record);
        RunResultAssembler::new(n_samples, layers, sizes, scale)
    }

    /// The first sample still missing (the `first_sample` of the next `ReadRunResult`), or
    /// `None` when all have arrived.
    pub fn next_sample(&self) -> Option<u32> {
        (self.next < self.total).then(|| u32::try_from(self.next).unwrap_or(u32::MAX))
    }

    /// The noise position the device reported with the last page, if any.
    pub fn noise_position(&self) -> Option<u64> {
        self.noise_position
    }

    /// Adds the next page; it must start where the previous one ended.
    pub fn add_page(&mut self, page: &pb::RunResult) -> Result<(), ConvertError> {
        let bad = |m: String| Err(ConvertError::BadReply(m));
        if page.total_samples as usize != self.total {
            return bad(format!(
                "RunResult reports {} samples, {} were sent",
                page.total_samples, self.total
            ));
        }
        let layers_match = page.recorded_layers.len() == self.layers.len()
            && page.layer_sizes.len() == self.sizes.len()
            && page
                .recorded_layers
                .iter()
                .zip(&self.layers)
                .all(|(&a, &b)| a as usize == b)
            && page
                .layer_sizes
                .iter()
                .zip(&self.sizes)
                .all(|(&a, &b)| a as usize == b);
        if !layers_match {
            return bad(format!(
                "RunResult records layers {:?} of sizes {:?}, expected {:?} of sizes {:?}",
                page.recorded_layers, page.layer_sizes, self.layers, self.sizes
            ));
        }
        let first = page.first_sample as usize;
        let n = page.n_samples as usize;
        if first != self.next || n == 0 || first + n > self.total {
            return bad(format!(
                "RunResult page holds samples {first}..{} of {}, expected a non-empty page starting at {}",
                first + n,
                self.total,
                self.next
            ));
        }
        if n.checked_mul(self.stride) != Some(page.spike_codes.len()) {
            return bad(format!(
                "RunResult page of {n} samples x {} neurons carries {} time codes",
                self.stride,
                page.spike_codes.len()
            ));
        }
        let Some(stats) = page.stats else {
            return bad("RunResult carries no statistics".into());
        };
        if self.stride > 0 {
            for (s, codes) in page.spike_codes.chunks(self.stride).enumerate() {
                timecode::decode_times(codes, &self.scale, &mut self.data)
                    .map_err(|e| ConvertError::BadReply(format!("sample {}: {e}", first + s)))?;
            }
        }
        self.next += n;
        self.stats.get_or_insert(stats);
        self.noise_position = page.noise_position;
        Ok(())
    }

    /// The run's output once every page has arrived; `stats.wall_time` is zero for the caller
    /// to fill in.
    pub fn finish(self) -> Result<RunOutput, ConvertError> {
        if self.next != self.total {
            return Err(ConvertError::BadReply(format!(
                "only {} of {} samples arrived",
                self.next, self.total
            )));
        }
        let stats = self
            .stats
            .as_ref()
            .map(stats_from_message)
            .unwrap_or_default();
        let spikes = SpikeTimes::new(self.layers, self.sizes, self.data)
            .map_err(|e| ConvertError::BadReply(e.to_string()))?;
        Ok(RunOutput { spikes, stats })
    }
}
