//! The network a backend runs: layers of identical neurons, all-to-all between adjacent layers.

use ndarray::Array2;
use spikeloop_lif::NeuronParams;

use crate::BackendError;

/// One layer: its neurons, the bias spikes injected into its input, and its incoming weights.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    /// Number of neurons in this layer.
    pub size: usize,
    /// Parameters of the neuron model, shared by every neuron of the layer.
    pub neuron: NeuronParams,
    /// Fixed extra input spikes (bias spikes) fed to this layer in every sample, in model time
    /// units. They are appended after the previous layer's neurons.
    pub bias_times: Vec<f64>,
    /// Incoming weights, `size x n_in` (one row per neuron of this layer), where `n_in` = size
    /// of the previous layer (or the number of input channels) + number of biases; in standard
    /// (row-major) layout. Serialised as a list of rows.
    #[serde(with = "crate::rows")]
    pub weights: Array2<f64>,
}

impl Layer {
    /// Number of inputs each neuron of this layer receives, biases included.
    pub fn n_in(&self) -> usize {
        self.weights.ncols()
    }

    /// The incoming weights of neuron `j` (previous layer first, then biases); empty for a
    /// layer whose weights are not in standard layout (which [`Network::validate`] refuses).
    pub fn weights_of(&self, j: usize) -> &[f64] {
        self.weights.row(j).to_slice().unwrap_or_default()
    }

    /// All weights, row-major; empty for weights not in standard layout (which
    /// [`Network::validate`] refuses).
    pub fn weights_flat(&self) -> &[f64] {
        self.weights.as_slice().unwrap_or_default()
    }
}

/// `weights` (row-major, `size` rows) as a layer's weight matrix, or an error naming the shape.
pub fn weight_matrix(size: usize, weights: Vec<f64>) -> Result<Array2<f64>, BackendError> {
    let n = weights.len();
    let n_in = n.checked_div(size).unwrap_or(0);
    if size == 0 || n != size * n_in {
        return Err(BackendError::InvalidNetwork(format!(
            "{n} weights do not divide into {size} rows"
        )));
    }
    Array2::from_shape_vec((size, n_in), weights)
        .map_err(|e| BackendError::InvalidNetwork(format!("weights of {size} rows: {e}")))
}

/// A layered feed-forward network of first-spike neurons.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Network {
    /// Number of input channels (not counting the first layer's bias spikes).
    pub n_inputs: usize,
    /// The layers, from the first hidden layer to the output layer.
    pub layers: Vec<Layer>,
}

impl Network {
    /// Number of neurons in all layers together.
    pub fn n_neurons(&self) -> usize {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// True when `other` differs from this network at most in its weights: the same inputs,
    /// layer sizes, neurons and bias times (bit for bit) and as many weights per layer, so that
    /// [`crate::Backend::update_weights`] turns one into the other.
    pub fn differs_only_in_weights(&self, other: &Network) -> bool {
        let same_bits = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        };
        self.n_inputs == other.n_inputs
            && self.layers.len() == other.layers.len()
            && self.layers.iter().zip(&other.layers).all(|(a, b)| {
                a.size == b.size
                    && a.neuron == b.neuron
                    && a.weights.dim() == b.weights.dim()
                    && same_bits(&a.bias_times, &b.bias_times)
            })
    }

    /// Each layer as `(size, bias count)`, first to last: the shape the fit rules
    /// ([`crate::ChipGeometry::place`]) and the partition planner ([`crate::Plan`]) decide on.
    pub fn shape(&self) -> Vec<(usize, usize)> {
        self.layers
            .iter()
            .map(|l| (l.size, l.bias_times.len()))
            .collect()
    }

    /// The sizes of all layers, first to last.
    pub fn layer_sizes(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.size).collect()
    }

    /// Offset of each layer's neurons in a sample's spike times (layers one after another).
    pub fn layer_offsets(&self) -> Vec<usize> {
        self.layers
            .iter()
            .scan(0, |acc, l| {
                let start = *acc;
                *acc += l.size;
                Some(start)
            })
            .collect()
    }

    /// Fills `out` with the input spike times of layer `l` in one sample: the sample's `inputs`
    /// for the first layer, otherwise the previous layer's spike times taken from `times` (all
    /// layers one after another, as in [`crate::SpikeTimes::sample`]), then the layer's bias
    /// spikes. Returns the number of inputs before the biases.
    pub fn layer_input(
        &self,
        l: usize,
        inputs: &[f64],
        times: &[f64],
        out: &mut Vec<f64>,
    ) -> usize {
        out.clear();
        if l == 0 {
            out.extend_from_slice(inputs);
        } else {
            let start: usize = self.layers[..l - 1].iter().map(|layer| layer.size).sum();
            out.extend_from_slice(&times[start..start + self.layers[l - 1].size]);
        }
        let n_prev = out.len();
        out.extend_from_slice(&self.layers[l].bias_times);
        n_prev
    }

    /// Checks that shapes agree and every number is usable; the error names the layer and value.
    pub fn validate(&self) -> Result<(), BackendError> {
        let bad = |msg: String| Err(BackendError::InvalidNetwork(msg));
        if self.layers.is_empty() {
            return bad("the network has no layers".into());
        }
        let mut n_prev = self.n_inputs;
        for (l, layer) in self.layers.iter().enumerate() {
            if layer.size == 0 {
                return bad(format!("layer {l} has no neurons"));
            }
            if let Err(e) = layer.neuron.validate() {
                return bad(format!("layer {l}: {e}"));
            }
            let n_in = n_prev + layer.bias_times.len();
            if layer.weights.len() != layer.size * n_in {
                return bad(format!(
                    "layer {l} has {} weights, expected {} ({} neurons x ({} inputs + {} biases))",
                    layer.weights.len(),
                    layer.size * n_in,
                    layer.size,
                    n_prev,
                    layer.bias_times.len()
                ));
            }
            if layer.weights.dim() != (layer.size, n_in) {
                return bad(format!(
                    "layer {l}'s weights are {} x {}, expected {} x {n_in} (one row per neuron)",
                    layer.weights.nrows(),
                    layer.weights.ncols(),
                    layer.size
                ));
            }
            if !layer.weights.is_standard_layout() {
                return bad(format!(
                    "layer {l}'s weights are not in row-major (standard) layout; pass `weights.as_standard_layout().into_owned()`"
                ));
            }
            // Checked every batch: one branch-free pass over all weights (which the compiler
            // vectorises), and the search for the culprit only when there is one.
            let weights = layer.weights_flat();
            let all_finite = weights.iter().fold(true, |ok, w| ok & w.is_finite());
            if let Some((i, w)) = (!all_finite)
                .then(|| weights.iter().enumerate().find(|(_, w)| !w.is_finite()))
                .flatten()
            {
                return bad(format!(
                    "layer {l}, neuron {}, input {}: weight is {w}; weights must be finite",
                    i / n_in,
                    i % n_in
                ));
            }
            if let Some(t) = layer.bias_times.iter().find(|t| t.is_nan()) {
                return bad(format!(
                    "layer {l}: bias time is {t}; times must not be NaN"
                ));
            }
            n_prev = layer.size;
        }
        Ok(())
    }
}
