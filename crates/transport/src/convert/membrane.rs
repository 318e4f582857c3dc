//! Membrane recording: the request in ticks, the trace as pages of codes or floats.

use spikeloop_backend::{MembraneRequest, MembraneTrace};

use super::{ConvertError, packed_field_len, payload_budget, to_u32};
use crate::messages::pb;
use crate::timecode::{self, MAX_ABS_TICKS, TickScale};

/// The `MembraneRequest` for `req`: inputs and duration quantised to ticks of `scale` (within
/// half a tick; a duration shorter than half a tick is refused).
pub fn membrane_request(
    req: &MembraneRequest,
    scale: &TickScale,
) -> Result<pb::MembraneRequest, ConvertError> {
    let mut input_codes = Vec::with_capacity(req.inputs.len());
    timecode::encode_times(&req.inputs, scale, &mut input_codes)
        .map_err(|e| ConvertError::InvalidInput(e.to_string()))?;
    let duration_ticks = match scale.to_ticks(req.duration) {
        Ok(Some(k)) if k >= 1 => k as u64,
        _ => {
            return Err(ConvertError::out_of_range(
                "duration",
                req.duration,
                Some(scale.tick() / 2.0),
                Some(MAX_ABS_TICKS as f64 * scale.tick()),
            ));
        }
    };
    Ok(pb::MembraneRequest {
        layer: to_u32("layer", req.layer)?,
        neuron: to_u32("neuron", req.neuron)?,
        duration_ticks,
        n_inputs: to_u32("n_inputs", req.inputs.len())?,
        input_codes,
    })
}

/// The device side of a `MembraneRequest`, checked against the configured network's input
/// count and the sample window (`window_ticks`, 0 for none): inputs in `[0, window)`, a
/// duration of 1 to `window` ticks. Layer and neuron are left to the device, which knows its
/// network.
pub fn membrane_request_from(
    msg: &pb::MembraneRequest,
    scale: &TickScale,
    window_ticks: u64,
    n_inputs: usize,
) -> Result<MembraneRequest, ConvertError> {
    if msg.n_inputs as usize != n_inputs || msg.input_codes.len() != n_inputs {
        return Err(ConvertError::out_of_range(
            "n_inputs",
            msg.input_codes.len().max(msg.n_inputs as usize) as f64,
            Some(n_inputs as f64),
            Some(n_inputs as f64),
        ));
    }
    let longest = if window_ticks == 0 {
        MAX_ABS_TICKS as u64
    } else {
        window_ticks.min(MAX_ABS_TICKS as u64)
    };
    if msg.duration_ticks == 0 || msg.duration_ticks > longest {
        return Err(ConvertError::out_of_range(
            "duration_ticks",
            msg.duration_ticks as f64,
            Some(1.0),
            Some(longest as f64),
        ));
    }
    let mut inputs = Vec::with_capacity(n_inputs);
    super::run::decode_inputs(&msg.input_codes, n_inputs, scale, window_ticks, &mut inputs)?;
    Ok(MembraneRequest {
        inputs,
        layer: msg.layer as usize,
        neuron: msg.neuron as usize,
        duration: scale.to_model(Some(msg.duration_ticks as i64)),
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Values {
    /// Integer readout codes (sent as sint32, scale 1, offset 0).
    Codes(Vec<i32>),
    /// Floats.
    Floats(Vec<f64>),
}

/// The device side of a recorded trace, served as pages that fit the host's frame limit. A
/// trace whose values are all integers within `i32` travels as compact codes, any other as
/// doubles; both are exact.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedTrace {
    t0: f64,
    dt: f64,
    values: Values,
    noise_position: Option<u64>,
}

impl EncodedTrace {
    /// Prepares `trace` for sending.
    pub fn new(trace: &MembraneTrace, noise_position: Option<u64>) -> EncodedTrace {
        let integral = trace
            .values
            .iter()
            .all(|&v| v.fract() == 0.0 && v >= f64::from(i32::MIN) && v <= f64::from(i32::MAX));
        let values = if integral {
            Values::Codes(trace.values.iter().map(|&v| v as i32).collect())
        } else {
            Values::Floats(trace.values.clone())
        };
        EncodedTrace {
            t0: trace.t0,
            dt: trace.dt,
            values,
            noise_position,
        }
    }

    fn len(&self) -> usize {
        match &self.values {
            Values::Codes(c) => c.len(),
            Values::Floats(f) => f.len(),
        }
    }

    /// The page starting at `first_value` with as many values as fit `max_frame_size`.
    pub fn page(
        &self,
        first_value: u32,
        max_frame_size: usize,
    ) -> Result<pb::MembraneTrace, ConvertError> {
        let total = to_u32("total_values", self.len())?;
        if first_value >= total && !(first_value == 0 && total == 0) {
            return Err(ConvertError::out_of_range(
                "first_value",
                first_value,
                Some(0.0),
                Some(f64::from(total.saturating_sub(1))),
            ));
        }
        let mut page = pb::MembraneTrace {
            t0: self.t0,
            dt: self.dt,
            total_values: total,
            first_value,
            noise_position: self.noise_position,
            ..Default::default()
        };
        let fixed = prost::Message::encoded_len(&page);
        let budget = payload_budget(max_frame_size);
        let first = first_value as usize;
        let mut end = first;
        let mut body = 0usize;
        let cost = |i: usize| match &self.values {
            Values::Codes(c) => c.get(i).map_or(0, |&v| {
                prost::encoding::encoded_len_varint(u64::from(((v << 1) ^ (v >> 31)) as u32))
            }),
            Values::Floats(_) => 8,
        };
        while end < self.len() && fixed + packed_field_len(body + cost(end)) <= budget {
            body += cost(end);
            end += 1;
        }
        if end == first && total > 0 {
            return Err(ConvertError::FrameTooSmall {
                what: "a MembraneTrace with one value",
                needed: crate::frame::MIN_FRAME_LEN + fixed + packed_field_len(cost(first)),
                limit: max_frame_size,
            });
        }
        match &self.values {
            Values::Codes(c) => page.codes = c.get(first..end).unwrap_or_default().to_vec(),
            Values::Floats(f) => page.values = f.get(first..end).unwrap_or_default().to_vec(),
        }
        Ok(page)
    }
}

/// The host side of a trace: collects `MembraneTrace` pages in order, checking each against the
/// first; refuses traces longer than `max_values`.
#[derive(Clone, Debug)]
pub struct TraceAssembler {
    max_values: usize,
    first: Option<pb::MembraneTrace>,
    values: Vec<f64>,
}

impl TraceAssembler {
    /// Accepts traces of at most `max_values` values.
    pub fn new(max_values: usize) -> TraceAssembler {
        TraceAssembler {
            max_values,
            first: None,
            values: Vec::new(),
        }
    }

    /// Index of the first value still missing (the `first_value` of the next
    /// `ReadMembraneTrace`), or `None` when the trace is complete.
    pub fn next_value(&self) -> Option<u32> {
        match &self.first {
            None => Some(0),
            Some(f) => {
                let n = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
                (n < f.total_values).then_some(n)
            }
        }
    }

    /// Adds the next page.
    pub fn add_page(&mut self, page: &pb::MembraneTrace) -> Result<(), ConvertError> {
        let bad = |m: String| Err(ConvertError::BadReply(m));
        if let Some(f) = &self.first {
            let same = f.t0.to_bits() == page.t0.to_bits()
                && f.dt.to_bits() == page.dt.to_bits()
                && f.total_values == page.total_values
                && f.code_scale.map(f64::to_bits) == page.code_scale.map(f64::to_bits)
                && f.code_offset.map(f64::to_bits) == page.code_offset.map(f64::to_bits);
            if !same {
                return bad("MembraneTrace pages disagree on t0, dt, total or scaling".into());
            }
        } else {
            if page.total_values as usize > self.max_values {
                return bad(format!(
                    "MembraneTrace of {} values exceeds the limit of {}",
                    page.total_values, self.max_values
                ));
            }
            if !(page.dt.is_finite() && page.dt > 0.0 && page.t0.is_finite()) {
                return bad(format!(
                    "MembraneTrace has t0 = {}, dt = {}; both must be finite, dt positive",
                    page.t0, page.dt
                ));
            }
        }
        let expected = self.values.len();
        let n = page.codes.len() + page.values.len();
        if page.first_value as usize != expected
            || (!page.codes.is_empty() && !page.values.is_empty())
            || (n == 0 && page.total_values > 0)
            || expected + n > page.total_values as usize
        {
            return bad(format!(
                "MembraneTrace page of {n} values at {} does not continue the {expected} received (of {})",
                page.first_value, page.total_values
            ));
        }
        let scale = page.code_scale.unwrap_or(1.0);
        let offset = page.code_offset.unwrap_or(0.0);
        self.values
            .extend(page.codes.iter().map(|&c| offset + scale * f64::from(c)));
        self.values.extend_from_slice(&page.values);
        if self.first.is_none() {
            self.first = Some(pb::MembraneTrace {
                codes: Vec::new(),
                values: Vec::new(),
                ..page.clone()
            });
        }
        Ok(())
    }

    /// The whole trace once every page has arrived.
    pub fn finish(self) -> Result<MembraneTrace, ConvertError> {
        match self.first {
            Some(f) if self.values.len() == f.total_values as usize => Ok(MembraneTrace {
                t0: f.t0,
                dt: f.dt,
                values: self.values,
            }),
            _ => Err(ConvertError::BadReply(
                "the membrane trace is incomplete".into(),
            )),
        }
    }
}
