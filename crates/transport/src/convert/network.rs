//! A network as `ConfigureBegin`, `ConfigureChunk`s and `ConfigureCommit`, and back.

use spikeloop_backend::ChipGeometry;
use spikeloop_backend::{Capabilities, Layer, Network, NeuronParams};

use super::{ConvertError, packed_field_len, payload_budget, to_u32};
use crate::messages::{Message, pb};

/// Neuron parameters as the wire carries them (model units).
pub fn neuron_message(p: &NeuronParams) -> pb::NeuronParams {
    pb::NeuronParams {
        tau_m: p.tau_m,
        tau_s: p.tau_s,
        g_leak: p.g_leak,
        e_leak: p.e_leak,
        threshold: p.threshold,
    }
}

fn neuron_params(p: &pb::NeuronParams) -> NeuronParams {
    NeuronParams {
        tau_m: p.tau_m,
        tau_s: p.tau_s,
        g_leak: p.g_leak,
        e_leak: p.e_leak,
        threshold: p.threshold,
    }
}

/// The messages that load `network` onto a device whose frames may be at most `max_frame_size`
/// bytes: one `ConfigureBegin`, the weights and bias times of each layer in as few
/// `ConfigureChunk`s as fit, and one `ConfigureCommit`. Every message's frame fits the limit.
pub fn configure_messages(
    network: &Network,
    max_frame_size: usize,
) -> Result<Vec<Message>, ConvertError> {
    sequence(network, max_frame_size, false, None)
}

/// The messages that replace the weights of a loaded network by `network`'s on a device that
/// announces `FEATURE_WEIGHT_UPDATE`: `ConfigureBegin` with `update` set, the weights of each
/// layer in as few `ConfigureChunk`s as fit (no bias times), and `ConfigureCommit`. With
/// `codes` (a device announcing its weight code rule) the chunks carry the weights as the
/// device's integer codes, one byte each. The caller makes sure that the loaded network differs
/// from `network` only in its weights.
pub fn update_messages(
    network: &Network,
    max_frame_size: usize,
    codes: Option<WeightCodes>,
) -> Result<Vec<Message>, ConvertError> {
    sequence(network, max_frame_size, true, codes)
}

/// How a device with integer weights realises a weight: `round(w * scale)` (halves away from
/// zero) clipped to `+-max_code`; the rule announced by `Capabilities.weight_scale` and
/// `weight_bits`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightCodes {
    /// Codes per model unit.
    pub scale: f64,
    /// Largest code magnitude, `2^weight_bits - 1`.
    pub max_code: i32,
}

impl WeightCodes {
    /// The rule of a substrate that states one (both `weight_scale` and `weight_bits`).
    pub fn of(capabilities: &Capabilities) -> Option<Self> {
        let scale = capabilities
            .weight_scale
            .filter(|s| s.is_finite() && *s > 0.0)?;
        let bits = capabilities.weight_bits.filter(|b| (1..=30).contains(b))?;
        Some(WeightCodes {
            scale,
            max_code: (1 << bits) - 1,
        })
    }

    /// The code that realises weight `w` (finite).
    pub fn code(&self, w: f64) -> i32 {
        let limit = f64::from(self.max_code);
        (w * self.scale).round().clamp(-limit, limit) as i32
    }

    /// The weight that code `c` stands for.
    pub fn weight(&self, c: i32) -> f64 {
        f64::from(c) / self.scale
    }
}

/// A configure sequence: the whole network, or (`update`) only its weights, as floats or as
/// `codes`.
fn sequence(
    network: &Network,
    max_frame_size: usize,
    update: bool,
    codes: Option<WeightCodes>,
) -> Result<Vec<Message>, ConvertError> {
    network
        .validate()
        .map_err(|e| ConvertError::InvalidNetwork(e.to_string()))?;
    let budget = payload_budget(max_frame_size);
    let begin = pb::ConfigureBegin {
        n_inputs: to_u32("n_inputs", network.n_inputs)?,
        layers: network
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                Ok(pb::LayerShape {
                    size: to_u32(&format!("layers[{l}].size"), layer.size)?,
                    n_bias: to_u32(&format!("layers[{l}].n_bias"), layer.bias_times.len())?,
                    neuron: Some(neuron_message(&layer.neuron)),
                })
            })
            .collect::<Result<_, ConvertError>>()?,
        update,
    };
    let begin = Message::ConfigureBegin(begin);
    if begin.payload_len() > budget {
        return Err(ConvertError::FrameTooSmall {
            what: "ConfigureBegin",
            needed: begin.frame_len(),
            limit: max_frame_size,
        });
    }
    let mut messages = vec![begin];
    let mut value_count = 0u64;
    for (l, layer) in network.layers.iter().enumerate() {
        let targets = [
            (pb::ChunkTarget::Weights, layer.weights_flat()),
            (pb::ChunkTarget::BiasTimes, &layer.bias_times[..]),
        ];
        for (target, values) in targets.into_iter().take(if update { 1 } else { 2 }) {
            let as_codes = codes.filter(|_| target == pb::ChunkTarget::Weights);
            let encoded: Vec<i32> = match as_codes {
                Some(rule) => values.iter().map(|&w| rule.code(w)).collect(),
                None => Vec::new(),
            };
            // Bytes of the packed field body that values[i] takes.
            let width = |i: usize| match as_codes {
                Some(_) => prost::encoding::encoded_len_varint(u64::from(zigzag(encoded[i]))),
                None => 8,
            };
            let mut offset = 0usize;
            while offset < values.len() {
                let mut chunk = pb::ConfigureChunk {
                    layer: to_u32("layer", l)?,
                    target: target as i32,
                    offset: to_u32("offset", offset)?,
                    values: Vec::new(),
                    weight_codes: Vec::new(),
                };
                let base = prost::Message::encoded_len(&chunk);
                let mut n = 0;
                let mut body = 0;
                while offset + n < values.len()
                    && base + packed_field_len(body + width(offset + n)) <= budget
                {
                    body += width(offset + n);
                    n += 1;
                }
                if n == 0 {
                    return Err(ConvertError::FrameTooSmall {
                        what: "ConfigureChunk with one value",
                        needed: crate::frame::MIN_FRAME_LEN
                            + base
                            + packed_field_len(width(offset)),
                        limit: max_frame_size,
                    });
                }
                if as_codes.is_some() {
                    chunk.weight_codes = encoded[offset..offset + n].to_vec();
                } else {
                    chunk.values = values[offset..offset + n].to_vec();
                }
                messages.push(Message::ConfigureChunk(chunk));
                offset += n;
                value_count += n as u64;
            }
        }
    }
    messages.push(Message::ConfigureCommit(pb::ConfigureCommit {
        value_count,
    }));
    Ok(messages)
}

/// Protobuf's zigzag encoding of a `sint32`.
fn zigzag(c: i32) -> u32 {
    ((c << 1) ^ (c >> 31)) as u32
}

/// Limits a [`NetworkAssembler`] enforces before reserving memory for a declared network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AssemblyLimits {
    /// Most layers a network may have.
    pub max_layers: usize,
    /// Most values (weights plus bias times) a network may have.
    pub max_values: usize,
    /// Most neurons a network may have, if limited.
    pub max_neurons: Option<usize>,
    /// The fit rules of the chip, if it has them: a shape they refuse is refused at
    /// `ConfigureBegin`, before any weight is sent.
    pub geometry: Option<ChipGeometry>,
    /// The device's weight code rule, if it accepts weight codes in updates.
    pub weight_codes: Option<WeightCodes>,
}

impl Default for AssemblyLimits {
    /// 64 layers, 4 Mi values (32 MiB of doubles), no neuron limit.
    fn default() -> Self {
        AssemblyLimits {
            max_layers: 64,
            max_values: 1 << 22,
            max_neurons: None,
            geometry: None,
            weight_codes: None,
        }
    }
}

#[derive(Debug)]
struct Pending {
    network: Network,
    received: u64,
    expected: u64,
    /// A weight update: only weights may be written.
    update: bool,
}

/// The device side of loading a network: checks each configure message and assembles the
/// network. Values not yet written are held as NaN, which no valid value is, so completeness is
/// checked at commit without a separate bitmap.
#[derive(Debug)]
pub struct NetworkAssembler {
    limits: AssemblyLimits,
    pending: Option<Pending>,
}

impl NetworkAssembler {
    /// An assembler with no configuration in progress.
    pub fn new(limits: AssemblyLimits) -> NetworkAssembler {
        NetworkAssembler {
            limits,
            pending: None,
        }
    }

    /// True between a successful `ConfigureBegin` and a successful `ConfigureCommit`.
    pub fn is_configuring(&self) -> bool {
        self.pending.is_some()
    }

    /// True while a weight update is in progress.
    pub fn is_update(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| p.update)
    }

    /// Abandons a configuration in progress.
    pub fn abort(&mut self) {
        self.pending = None;
    }

    fn ack(&self) -> pb::ConfigureAck {
        let (values_received, values_expected) = self
            .pending
            .as_ref()
            .map_or((0, 0), |p| (p.received, p.expected));
        pb::ConfigureAck {
            values_received,
            values_expected,
            committed: false,
            clipped_weights: 0,
        }
    }

    /// Handles `ConfigureBegin`: checks the topology and the limits, then starts a new
    /// configuration (abandoning any in progress).
    pub fn begin(&mut self, msg: &pb::ConfigureBegin) -> Result<pb::ConfigureAck, ConvertError> {
        self.pending = None;
        if msg.update {
            return Err(ConvertError::BadState(
                "a weight update (ConfigureBegin.update) needs a loaded network; load one first"
                    .into(),
            ));
        }
        let n_layers = msg.layers.len();
        if n_layers == 0 || n_layers > self.limits.max_layers {
            return Err(ConvertError::out_of_range(
                "layers",
                n_layers as f64,
                Some(1.0),
                Some(self.limits.max_layers as f64),
            ));
        }
        let mut n_prev = msg.n_inputs as u64;
        let mut values = 0u64;
        let mut neurons = 0u64;
        for (l, shape) in msg.layers.iter().enumerate() {
            if shape.size == 0 {
                return Err(ConvertError::out_of_range(
                    format!("layers[{l}].size"),
                    0,
                    Some(1.0),
                    None,
                ));
            }
            let Some(neuron) = &shape.neuron else {
                return Err(ConvertError::InvalidNetwork(format!(
                    "layers[{l}].neuron is missing"
                )));
            };
            neuron_params(neuron)
                .validate()
                .map_err(|e| ConvertError::InvalidNetwork(format!("layer {l}: {e}")))?;
            let n_in = n_prev + u64::from(shape.n_bias);
            // At most 2^32 * 2^33 per layer and 64 layers: no overflow in u64 after saturation.
            values = values.saturating_add(u64::from(shape.size).saturating_mul(n_in));
            values = values.saturating_add(u64::from(shape.n_bias));
            neurons += u64::from(shape.size);
            n_prev = u64::from(shape.size);
        }
        if let Some(max) = self.limits.max_neurons.filter(|&max| neurons > max as u64) {
            return Err(ConvertError::DoesNotFit {
                resource: "neurons".into(),
                needed: neurons,
                available: max as u64,
                detail: format!(
                    "layer sizes {:?}",
                    msg.layers.iter().map(|l| l.size).collect::<Vec<_>>()
                ),
            });
        }
        if values > self.limits.max_values as u64 {
            return Err(ConvertError::DoesNotFit {
                resource: "configuration values".into(),
                needed: values,
                available: self.limits.max_values as u64,
                detail: "weights and bias times".into(),
            });
        }
        if let Some(geometry) = &self.limits.geometry {
            // Sizes are bounded by max_values here.
            let shape: Vec<(usize, usize)> = msg
                .layers
                .iter()
                .map(|l| (l.size as usize, l.n_bias as usize))
                .collect();
            geometry
                .place(msg.n_inputs as usize, &shape)
                .map_err(ConvertError::from)?;
        }
        // Sizes are now bounded by max_values, so these allocations are too.
        let mut n_prev = msg.n_inputs as usize;
        let layers = msg
            .layers
            .iter()
            .map(|shape| {
                let size = shape.size as usize;
                let n_bias = shape.n_bias as usize;
                let layer = Layer {
                    size,
                    neuron: shape
                        .neuron
                        .as_ref()
                        .map(neuron_params)
                        .unwrap_or(NeuronParams::REFERENCE),
                    bias_times: vec![f64::NAN; n_bias],
                    weights: spikeloop_backend::ndarray::Array2::from_elem(
                        (size, n_prev + n_bias),
                        f64::NAN,
                    ),
                };
                n_prev = size;
                layer
            })
            .collect();
        self.pending = Some(Pending {
            network: Network {
                n_inputs: msg.n_inputs as usize,
                layers,
            },
            received: 0,
            expected: values,
            update: false,
        });
        Ok(self.ack())
    }

    /// Handles a `ConfigureBegin` with `update` set: checks that it declares exactly the shape
    /// and neurons of `loaded`, then starts an update that keeps `loaded`'s bias times and needs
    /// every weight (abandoning any configuration in progress). On error nothing is in
    /// progress and `loaded` is untouched.
    pub fn begin_update(
        &mut self,
        msg: &pb::ConfigureBegin,
        loaded: &Network,
    ) -> Result<pb::ConfigureAck, ConvertError> {
        self.pending = None;
        let declared: Vec<(u32, u32, Option<pb::NeuronParams>)> = msg
            .layers
            .iter()
            .map(|l| (l.size, l.n_bias, l.neuron))
            .collect();
        let current: Vec<(u32, u32, Option<pb::NeuronParams>)> = loaded
            .layers
            .iter()
            .map(|l| {
                (
                    u32::try_from(l.size).unwrap_or(u32::MAX),
                    u32::try_from(l.bias_times.len()).unwrap_or(u32::MAX),
                    Some(neuron_message(&l.neuron)),
                )
            })
            .collect();
        if usize::try_from(msg.n_inputs).ok() != Some(loaded.n_inputs) || declared != current {
            return Err(ConvertError::InvalidNetwork(format!(
                "a weight update keeps the loaded network's inputs, layers and neurons: it declares {} inputs and layer sizes {:?}, the loaded network has {} inputs and layer sizes {:?} (neurons and biases must match too); load a new network instead",
                msg.n_inputs,
                msg.layers.iter().map(|l| l.size).collect::<Vec<_>>(),
                loaded.n_inputs,
                loaded.layer_sizes()
            )));
        }
        let mut network = loaded.clone();
        for layer in &mut network.layers {
            layer.weights.fill(f64::NAN);
        }
        let expected = network.layers.iter().map(|l| l.weights.len() as u64).sum();
        self.pending = Some(Pending {
            network,
            received: 0,
            expected,
            update: true,
        });
        Ok(self.ack())
    }

    /// Handles `ConfigureChunk`: checks layer, target, offset and values, then stores them.
    pub fn chunk(&mut self, msg: &pb::ConfigureChunk) -> Result<pb::ConfigureAck, ConvertError> {
        let rule = self.limits.weight_codes;
        let Some(p) = &mut self.pending else {
            return Err(ConvertError::BadState(
                "ConfigureChunk without ConfigureBegin: start a configuration first".into(),
            ));
        };
        let n_layers = p.network.layers.len();
        let Some(layer) = p.network.layers.get_mut(msg.layer as usize) else {
            return Err(ConvertError::out_of_range(
                "layer",
                msg.layer,
                Some(0.0),
                Some((n_layers - 1) as f64),
            ));
        };
        let (array, is_weight) = match pb::ChunkTarget::try_from(msg.target) {
            Ok(pb::ChunkTarget::Weights) => match layer.weights.as_slice_mut() {
                Some(w) => (w, true),
                None => unreachable!("the assembler's weights are built in standard layout"),
            },
            Ok(pb::ChunkTarget::BiasTimes) if !p.update => (&mut layer.bias_times[..], false),
            _ => {
                // A weight update writes weights only.
                let last = if p.update { 1.0 } else { 2.0 };
                return Err(ConvertError::out_of_range(
                    "target",
                    msg.target,
                    Some(1.0),
                    Some(last),
                ));
            }
        };
        let decoded: Vec<f64>;
        let values: &[f64] = if msg.weight_codes.is_empty() {
            &msg.values
        } else {
            let Some(rule) = rule.filter(|_| p.update && is_weight) else {
                return Err(ConvertError::InvalidNetwork(format!(
                    "weight_codes are accepted only in a weight update's weight chunks{}; send values",
                    if rule.is_none() {
                        " to a device announcing weight_scale"
                    } else {
                        ""
                    }
                )));
            };
            if !msg.values.is_empty() {
                return Err(ConvertError::InvalidNetwork(
                    "a ConfigureChunk carries values or weight_codes, not both".into(),
                ));
            }
            let limit = rule.max_code;
            if let Some((i, &c)) = msg
                .weight_codes
                .iter()
                .enumerate()
                .find(|(_, c)| c.abs() > limit)
            {
                return Err(ConvertError::out_of_range(
                    format!("weight_codes[{i}]"),
                    c,
                    Some(f64::from(-limit)),
                    Some(f64::from(limit)),
                ));
            }
            decoded = msg.weight_codes.iter().map(|&c| rule.weight(c)).collect();
            &decoded
        };
        if values.is_empty() {
            return Err(ConvertError::out_of_range("values", 0, Some(1.0), None));
        }
        let offset = msg.offset as usize;
        let len = array.len();
        let Some(dest) = offset
            .checked_add(values.len())
            .filter(|&end| end <= len)
            .and_then(|end| array.get_mut(offset..end))
        else {
            return Err(ConvertError::out_of_range(
                "offset",
                msg.offset,
                Some(0.0),
                Some(len.saturating_sub(values.len()) as f64),
            ));
        };
        let field = if is_weight { "weights" } else { "bias_times" };
        if let Some((i, &v)) = values.iter().enumerate().find(|(_, v)| {
            if is_weight {
                !v.is_finite()
            } else {
                v.is_nan()
            }
        }) {
            return Err(ConvertError::InvalidNetwork(format!(
                "layer {}, {field}[{}] = {v}; {}",
                msg.layer,
                offset + i,
                if is_weight {
                    "weights must be finite"
                } else {
                    "bias times must not be NaN (+inf for a silent bias)"
                }
            )));
        }
        dest.copy_from_slice(values);
        p.received += values.len() as u64;
        Ok(self.ack())
    }

    /// Handles `ConfigureCommit`: checks that every value was written and the count matches,
    /// then returns the network (and the acknowledgement to send once it is loaded). On error
    /// the configuration stays in progress, so missing chunks can still be sent.
    pub fn commit(
        &mut self,
        msg: &pb::ConfigureCommit,
    ) -> Result<(Network, pb::ConfigureAck), ConvertError> {
        let Some(p) = &self.pending else {
            return Err(ConvertError::BadState(
                "ConfigureCommit without ConfigureBegin: start a configuration first".into(),
            ));
        };
        if msg.value_count != p.received {
            return Err(ConvertError::InvalidNetwork(format!(
                "ConfigureCommit counts {} values but {} arrived in chunks",
                msg.value_count, p.received
            )));
        }
        for (l, layer) in p.network.layers.iter().enumerate() {
            let n_in = layer.n_in();
            if let Some(i) = layer.weights.iter().position(|w| w.is_nan()) {
                return Err(ConvertError::InvalidNetwork(format!(
                    "layer {l}: weight {i} (neuron {}, input {}) was never written",
                    i / n_in.max(1),
                    i % n_in.max(1)
                )));
            }
            if let Some(i) = layer.bias_times.iter().position(|t| t.is_nan()) {
                return Err(ConvertError::InvalidNetwork(format!(
                    "layer {l}: bias time {i} was never written"
                )));
            }
        }
        p.network
            .validate()
            .map_err(|e| ConvertError::InvalidNetwork(e.to_string()))?;
        let mut ack = self.ack();
        ack.committed = true;
        let network = self
            .pending
            .take()
            .map(|p| p.network)
            .ok_or_else(|| ConvertError::BadState("no configuration in progress".into()))?;
        Ok((network, ack))
    }
}

/// Assembles a network from a configure sequence (`ConfigureBegin`, chunks, `ConfigureCommit`;
/// other messages are refused), as a device would.
pub fn network_from_messages(
    messages: &[Message],
    limits: AssemblyLimits,
) -> Result<Network, ConvertError> {
    let mut assembler = NetworkAssembler::new(limits);
    for m in messages {
        match m {
            Message::ConfigureBegin(b) => {
                assembler.begin(b)?;
            }
            Message::ConfigureChunk(c) => {
                assembler.chunk(c)?;
            }
            Message::ConfigureCommit(c) => return assembler.commit(c).map(|(n, _)| n),
            other => {
                return Err(ConvertError::BadState(format!(
                    "{} is not part of a configure sequence",
                    other.message_type()
                )));
            }
        }
    }
    Err(ConvertError::BadState(
        "the configure sequence ends without ConfigureCommit".into(),
    ))
}
