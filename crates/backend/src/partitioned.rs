//! A backend that runs networks larger than its substrate, one part after another
//! ([`crate::partition`]), and looks to its users like any other [`Backend`].
//!
//! The one idea: the substrate underneath (an emulated chip in process, or a device behind a
//! serial line) only ever sees networks of one layer that fit it. For each layer in order,
//! every part of it is configured on the substrate and run over the whole batch, with the
//! network's inputs (first layer) or the recorded spike times of the previous layer as its
//! input channels, exactly as partitioned emulation on BrainScaleS-2 feeds recorded spikes of
//! one execution instance into the next. A network that fits whole runs unchanged in one part.
//! Hardware time is the sum of the parts' runs plus one reconfiguration per part and batch
//! ([`PartitionRules::reconfigure_us`]) when there is more than one part.
//!
//! What differs from an unpartitioned chip: a hidden layer's spikes reach the next layer as
//! recorded (on the substrate's clock, with its readout) and are sent again from the host's
//! side, instead of being routed on chip; a recorded spike later than the substrate's sample
//! window cannot be sent and is silent for the next layer.

use std::time::Instant;

use crate::partition::{PartitionRules, Plan};
use crate::{
    Backend, BackendError, Capabilities, InputBatch, Layer, MembraneRequest, MembraneTrace,
    Network, NeuronCodes, Record, RunOutput, RunStats, SpikeTimes,
};

/// Runs networks part by part on an inner backend with a chip geometry.
pub struct PartitionedBackend {
    inner: Box<dyn Backend>,
    rules: PartitionRules,
    capabilities: Capabilities,
    configured: Option<Configured>,
}

/// A configured network and its parts.
struct Configured {
    network: Network,
    plan: Plan,
    /// One one-layer network per part (the whole network when it is one part).
    parts: Vec<Network>,
    /// For each part: its layer and first neuron.
    places: Vec<(usize, usize)>,
    /// The part the inner backend holds now.
    loaded: Option<usize>,
}

impl PartitionedBackend {
    /// Wraps `inner`, whose capabilities must state a chip geometry.
    pub fn new(inner: Box<dyn Backend>, rules: PartitionRules) -> Result<Self, BackendError> {
        let inner_caps = inner.capabilities();
        if inner_caps.geometry.is_none() {
            return Err(BackendError::Unsupported {
                backend: inner_caps.name.clone(),
                feature: "partitioned execution (it states no chip geometry)",
            });
        }
        let mut capabilities = inner_caps.clone();
        capabilities.name = format!("{} (partitioned)", inner_caps.name);
        capabilities.max_neurons = None;
        capabilities.geometry = None;
        Ok(Self {
            inner,
            rules,
            capabilities,
            configured: None,
        })
    }

    /// The plan of the configured network, if one is configured.
    pub fn plan(&self) -> Option<&Plan> {
        self.configured.as_ref().map(|c| &c.plan)
    }

    /// The backend underneath.
    pub fn inner(&self) -> &dyn Backend {
        self.inner.as_ref()
    }

    fn configured(&mut self) -> Result<&mut Configured, BackendError> {
        self.configured.as_mut().ok_or(BackendError::NotConfigured)
    }

    /// Loads part `p` onto the inner backend unless it is there; true when it was written.
    fn load(&mut self, p: usize) -> Result<bool, BackendError> {
        let Some(c) = self.configured.as_mut() else {
            return Err(BackendError::NotConfigured);
        };
        if c.loaded == Some(p) {
            return Ok(false);
        }
        c.loaded = None;
        self.inner.configure(&c.parts[p])?;
        c.loaded = Some(p);
        Ok(true)
    }
}

/// The one-layer network of neurons `neurons` of layer `l` of `network`.
fn part_network(network: &Network, l: usize, neurons: std::ops::Range<usize>) -> Network {
    let layer = &network.layers[l];
    let n_inputs = if l == 0 {
        network.n_inputs
    } else {
        network.layers[l - 1].size
    };
    Network {
        n_inputs,
        layers: vec![Layer {
            size: neurons.len(),
            neuron: layer.neuron,
            bias_times: layer.bias_times.clone(),
            weights: layer
                .weights
                .slice(ndarray::s![neurons.start..neurons.end, ..])
                .to_owned(),
        }],
    }
}

impl PartitionedBackend {
    /// Runs the first `upto` layers of the configured (partitioned) network over `inputs`: every
    /// layer's times, row-major by sample (`n x all neurons`, layers after `upto` silent), and
    /// the summed statistics with the hardware time of the runs and reconfigurations.
    fn run_layers(
        &mut self,
        inputs: &InputBatch,
        upto: usize,
    ) -> Result<(Vec<f64>, RunStats), BackendError> {
        let c = self.configured()?;
        let sizes = c.network.layer_sizes();
        let offsets = c.network.layer_offsets();
        let places = c.places.clone();
        let window = self.inner.capabilities().sample_window;
        let n = inputs.len();
        let total: usize = sizes.iter().sum();
        let mut all = vec![f64::INFINITY; n * total];
        let mut stats = RunStats {
            samples: n,
            ..RunStats::default()
        };
        let mut hardware = Some(0.0);
        let mut previous: Option<InputBatch> = None;
        for (l, &size) in sizes.iter().enumerate().take(upto) {
            let mut layer_times = vec![f64::INFINITY; n * size];
            for (p, &(pl, first)) in places.iter().enumerate() {
                if pl != l {
                    continue;
                }
                if self.load(p)? {
                    hardware = hardware.map(|h| h + self.rules.reconfigure_us);
                }
                let batch = previous.as_ref().unwrap_or(inputs);
                let out = self.inner.run(batch, Record::OutputOnly)?;
                hardware = match (hardware, out.stats.hardware_time_us) {
                    (Some(h), Some(t)) => Some(h + t),
                    _ => None,
                };
                stats.lost_events += out.stats.lost_events;
                stats.later_spikes += out.stats.later_spikes;
                for s in 0..n {
                    let times = out.spikes.output(s);
                    let at = s * size + first;
                    layer_times[at..at + times.len()].copy_from_slice(times);
                }
            }
            for s in 0..n {
                let at = s * total + offsets[l];
                all[at..at + size].copy_from_slice(&layer_times[s * size..(s + 1) * size]);
            }
            previous = Some(InputBatch::new(size, sendable(&layer_times, window))?);
        }
        stats.hardware_time_us = hardware;
        Ok((all, stats))
    }
}

/// Recorded times as the next part's input channels: a time at or after the substrate's sample
/// window cannot be sent (silent), and none is negative.
fn sendable(times: &[f64], window: Option<f64>) -> Vec<f64> {
    times
        .iter()
        .map(|&t| match window {
            Some(w) if t >= w => f64::INFINITY,
            _ => t.max(0.0),
        })
        .collect()
}

impl Backend for PartitionedBackend {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn configure(&mut self, network: &Network) -> Result<(), BackendError> {
        network.validate()?;
        let Some(geometry) = self.inner.capabilities().geometry else {
            return Err(BackendError::Unsupported {
                backend: self.inner.capabilities().name.clone(),
                feature: "partitioned execution (it states no chip geometry)",
            });
        };
        let shape = network.shape();
        let plan = Plan::new(geometry, self.rules, network.n_inputs, &shape).map_err(|e| {
            BackendError::DoesNotFit {
                backend: self.capabilities.name.clone(),
                resource: "sources per logical neuron".into(),
                needed: e.fan_in,
                available: e.limit,
                detail: e.to_string(),
            }
        })?;
        self.configured = None;
        let (parts, places) = if plan.parts.len() == 1 {
            (vec![network.clone()], vec![(0, 0)])
        } else {
            plan.parts
                .iter()
                .map(|part| {
                    let pl = &part.layers[0];
                    (
                        part_network(network, pl.layer, pl.neurons.clone()),
                        (pl.layer, pl.neurons.start),
                    )
                })
                .unzip()
        };
        // A whole network is loaded now (refusals come at once, as from any backend); parts
        // are loaded when they run.
        let loaded = if parts.len() == 1 {
            self.inner.configure(&parts[0])?;
            Some(0)
        } else {
            None
        };
        self.configured = Some(Configured {
            network: network.clone(),
            plan,
            parts,
            places,
            loaded,
        });
        Ok(())
    }

    fn update_weights(&mut self, network: &Network) -> Result<(), BackendError> {
        let same_shape = self
            .configured
            .as_ref()
            .is_some_and(|c| c.network.differs_only_in_weights(network));
        if !same_shape {
            return self.configure(network);
        }
        let Some(c) = self.configured.as_mut() else {
            return Err(BackendError::NotConfigured);
        };
        if c.parts.len() == 1 {
            c.network = network.clone();
            c.parts[0] = network.clone();
            return self.inner.update_weights(network);
        }
        for (part, &(l, first)) in c.parts.iter_mut().zip(&c.places) {
            let size = part.layers[0].size;
            *part = part_network(network, l, first..first + size);
        }
        c.network = network.clone();
        // The part on the substrate gets its new weights when it runs next.
        c.loaded = None;
        Ok(())
    }

    fn run(&mut self, inputs: &InputBatch, record: Record) -> Result<RunOutput, BackendError> {
        let started = Instant::now();
        let c = self.configured()?;
        inputs.check_width(c.network.n_inputs)?;
        if c.parts.len() == 1 {
            self.load(0)?;
            return self.inner.run(inputs, record);
        }
        let sizes = c.network.layer_sizes();
        let (all, mut stats) = self.run_layers(inputs, sizes.len())?;
        let spikes = SpikeTimes::recorded(sizes, all, record)?;
        stats.spikes = spikes.as_slice().iter().filter(|t| t.is_finite()).count() as u64;
        stats.wall_time = started.elapsed();
        Ok(RunOutput { spikes, stats })
    }

    fn record_membrane(
        &mut self,
        request: &MembraneRequest,
    ) -> Result<MembraneTrace, BackendError> {
        let c = self.configured()?;
        if c.parts.len() == 1 {
            self.load(0)?;
            return self.inner.record_membrane(request);
        }
        let sizes = c.network.layer_sizes();
        let (l, j) = (request.layer, request.neuron);
        if l >= sizes.len() || j >= sizes[l] {
            return Err(BackendError::InvalidInput(format!(
                "no neuron {j} in layer {l}; the network's layers have {sizes:?} neurons"
            )));
        }
        let Some(p) = c
            .places
            .iter()
            .zip(&c.parts)
            .position(|(&(pl, first), part)| {
                pl == l && (first..first + part.layers[0].size).contains(&j)
            })
        else {
            return Err(BackendError::InvalidInput(format!(
                "neuron {j} of layer {l} is in no part"
            )));
        };
        let first = c.places[p].1;
        // The sample through the layers before, then the neuron's part with what they sent.
        let sample = InputBatch::new(request.inputs.len(), request.inputs.clone())?;
        let inputs = if l == 0 {
            request.inputs.clone()
        } else {
            let (all, _) = self.run_layers(&sample, l)?;
            let offset = sizes[..l - 1].iter().sum::<usize>();
            sendable(
                &all[offset..offset + sizes[l - 1]],
                self.inner.capabilities().sample_window,
            )
        };
        self.load(p)?;
        self.inner.record_membrane(&MembraneRequest {
            inputs,
            layer: 0,
            neuron: j - first,
            duration: request.duration,
        })
    }

    fn noise_position(&self) -> Option<u64> {
        self.inner.noise_position()
    }

    fn set_noise_position(&mut self, position: u64) -> Result<(), BackendError> {
        self.inner.set_noise_position(position)
    }

    fn substrate(&self) -> crate::substrate::Substrate {
        self.inner.substrate()
    }

    fn file_tag(&self) -> String {
        self.inner.file_tag()
    }

    fn chip_id(&self) -> Option<String> {
        self.inner.chip_id()
    }

    fn circuits(&mut self) -> Result<Vec<Vec<usize>>, BackendError> {
        let c = self.configured()?;
        if c.parts.len() == 1 {
            self.load(0)?;
            return self.inner.circuits();
        }
        // Parts take turns on the same circuits: each neuron's circuit is the one its part puts
        // it on.
        let sizes = c.network.layer_sizes();
        let places = c.places.clone();
        let mut circuits: Vec<Vec<usize>> = sizes.iter().map(|&s| vec![0; s]).collect();
        for (p, &(l, first)) in places.iter().enumerate() {
            self.load(p)?;
            let part = self.inner.circuits()?;
            let Some(list) = part.first() else { continue };
            circuits[l][first..first + list.len()].copy_from_slice(list);
        }
        Ok(circuits)
    }

    fn set_parameter_codes(
        &mut self,
        writes: &[(usize, Option<NeuronCodes>)],
    ) -> Result<(), BackendError> {
        self.inner.set_parameter_codes(writes)
    }

    fn parameter_codes(&mut self, circuit: usize) -> Result<Option<NeuronCodes>, BackendError> {
        self.inner.parameter_codes(circuit)
    }

    fn chip_backend(&mut self) -> Option<&mut dyn Backend> {
        // Whoever calibrates the chip configures it: no part is loaded afterwards.
        if let Some(c) = self.configured.as_mut() {
            c.loaded = None;
        }
        Some(self.inner.as_mut())
    }
}
