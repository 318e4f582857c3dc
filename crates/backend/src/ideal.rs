//! The ideal backend: the exact neuron model with float weights, no noise and no time.
//!
//! It is the reference every other backend is compared against, and the fastest way to train a
//! network in software. Samples run in parallel on the rayon thread pool; results do not depend
//! on the number of threads.

use std::time::Instant;

use rayon::prelude::*;
use spikeloop_lif::{
    LayerState, Volley, dense_applies, layer_spike_times, layer_spike_times_dense,
    transpose_weights,
};

use crate::{
    Backend, BackendError, Capabilities, InputBatch, Network, Record, RunOutput, RunStats,
    SpikeTimes,
};

/// Fewest samples rayon may hand to one task: enough to amortise scheduling, few enough that a
/// batch of 50 still splits evenly over the cores.
const MIN_SAMPLES_PER_TASK: usize = 2;

/// Runs networks with the exact first-spike solutions of `spikeloop-lif`.
#[derive(Clone, Debug)]
pub struct IdealBackend {
    capabilities: Capabilities,
    network: Option<Network>,
    dense: DenseWeights,
}

impl Default for IdealBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl IdealBackend {
    /// A backend with no network configured yet.
    pub fn new() -> Self {
        Self {
            capabilities: Capabilities::unlimited("ideal"),
            network: None,
            dense: DenseWeights::default(),
        }
    }
}

/// Scratch space for one sample's forward pass; reused across samples by one worker.
#[derive(Debug, Default)]
pub struct ForwardScratch {
    volley: Volley,
    layer_input: Vec<f64>,
    state: LayerState,
}

/// Each layer's weights transposed (one row per input) where the layer's kernel has the dense
/// layer scan ([`layer_spike_times_dense`]); `None` for the others.
#[derive(Clone, Debug, Default)]
pub struct DenseWeights {
    layers: Vec<Option<Vec<f64>>>,
}

impl DenseWeights {
    /// The transposed weights of `network`'s layers.
    pub fn of(network: &Network) -> Self {
        let mut d = Self::default();
        d.update(network);
        d
    }

    /// Refills from `network`, reusing the buffers.
    pub fn update(&mut self, network: &Network) {
        self.layers.resize_with(network.layers.len(), || None);
        for (slot, layer) in self.layers.iter_mut().zip(&network.layers) {
            if dense_applies(&layer.neuron) {
                let (n_out, n_in) = layer.weights.dim();
                transpose_weights(
                    layer.weights_flat(),
                    n_out,
                    n_in,
                    slot.get_or_insert_default(),
                );
            } else {
                *slot = None;
            }
        }
    }
}

/// Computes the exact first-spike times of every layer for one sample.
///
/// `out` receives the layers one after another (`network.n_neurons()` values). The network must
/// have been validated, and `dense` made from it ([`DenseWeights::of`]).
pub fn forward_sample(
    network: &Network,
    dense: &DenseWeights,
    inputs: &[f64],
    scratch: &mut ForwardScratch,
    out: &mut [f64],
) {
    let mut offset = 0;
    for (l, layer) in network.layers.iter().enumerate() {
        network.layer_input(l, inputs, out, &mut scratch.layer_input);
        scratch.volley.prepare(&scratch.layer_input, &layer.neuron);
        let times = &mut out[offset..offset + layer.size];
        match dense.layers.get(l).and_then(Option::as_ref) {
            Some(weights_t) => {
                layer_spike_times_dense(&scratch.volley, weights_t, &mut scratch.state, times)
            }
            None => layer_spike_times(&layer.neuron, &scratch.volley, layer.weights_flat(), times),
        }
        offset += layer.size;
    }
}

impl Backend for IdealBackend {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn configure(&mut self, network: &Network) -> Result<(), BackendError> {
        network.validate()?;
        match &mut self.network {
            // Training reconfigures every batch with the same topology: reuse the allocation.
            Some(old)
                if old.layer_sizes() == network.layer_sizes()
                    && old.n_inputs == network.n_inputs =>
            {
                old.clone_from(network)
            }
            slot => *slot = Some(network.clone()),
        }
        self.dense.update(network);
        Ok(())
    }

    fn run(&mut self, inputs: &InputBatch, record: Record) -> Result<RunOutput, BackendError> {
        let started = Instant::now();
        let network = self.network.as_ref().ok_or(BackendError::NotConfigured)?;
        let dense = &self.dense;
        inputs.check_width(network.n_inputs)?;
        let n_samples = inputs.len();
        let stride = network.n_neurons();
        let mut all = vec![f64::INFINITY; n_samples * stride];
        all.par_chunks_mut(stride)
            .enumerate()
            .with_min_len(MIN_SAMPLES_PER_TASK)
            .for_each_init(ForwardScratch::default, |scratch, (s, sample_out)| {
                forward_sample(network, dense, inputs.sample(s), scratch, sample_out);
            });
        let sizes = network.layer_sizes();
        let spikes = SpikeTimes::recorded(sizes, all, record)?;
        let stats = RunStats {
            samples: n_samples,
            spikes: spikes.as_slice().iter().filter(|t| t.is_finite()).count() as u64,
            wall_time: started.elapsed(),
            ..RunStats::default()
        };
        Ok(RunOutput { spikes, stats })
    }
}
