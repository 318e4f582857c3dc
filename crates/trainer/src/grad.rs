//! Exact gradients evaluated at *measured* spike times, backpropagated through the layers.
//!
//! The forward pass is whatever the backend measured. For every neuron that fired, the
//! derivatives of its spike time with respect to its input weights and input times follow from
//! implicit differentiation of the membrane equation at the measured time
//! (`spikeloop_lif::gradients_at`), using the host's float shadow weights. Errors flow backwards
//! as `delta_pre = sum_post dT_post/dt_pre * delta_post`, and `dL/dw = dT/dw * delta_post`.
//!
//! A batch is done in two phases. First every sample's errors are propagated back through the
//! layers, samples in parallel; each sample keeps, per layer, its prepared inputs and one factor
//! per neuron (zero where the neuron adds no weight gradient). Then the weight gradients are
//! summed in blocks of neighbouring rows, blocks in parallel: a few neurons' rows take every
//! sample's contribution while they stay in cache, instead of every sample streaming through a
//! whole gradient matrix of megabytes, and each sample's prepared inputs are read once per
//! block instead of once per row. A row's samples are summed in groups of
//! [`SAMPLES_PER_GROUP`] (one pass over the block's rows per group) and the groups in order, so
//! the sums never depend on the number of threads.

use ndarray::Array2;
use rayon::prelude::*;
use spikeloop_backend::{Layer, Network};
use spikeloop_lif::{
    KERNEL_ROWS, KERNEL_SAMPLES, LayerGradients, Volley, dense_applies, gradients_at,
};

use crate::loss::{LossParams, loss_and_gradient};

/// Samples summed into one partial gradient before the partials are added up in order; fixed,
/// so that no sum depends on the thread count.
pub const SAMPLES_PER_GROUP: usize = KERNEL_SAMPLES;

/// Settings of the backward pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackwardParams {
    /// Loss hyper-parameters.
    pub loss: LossParams,
    /// Factor applied to the sample's loss gradient (1 / batch size for a batch mean).
    pub scale: f64,
    /// Gradient chop threshold; 0 disables the chop.
    pub max_dw_norm: f64,
}

/// One sample of a batch: what the backend was fed and what it measured.
#[derive(Clone, Copy, Debug)]
pub struct SampleRef<'a> {
    /// Input spike times as fed to the backend.
    pub inputs: &'a [f64],
    /// Measured first-spike times of all layers one after another.
    pub measured: &'a [f64],
    /// The sample's class.
    pub label: usize,
}

/// What a batch's backward pass reports besides its gradient.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchOutcome {
    /// The summed loss of the batch's samples.
    pub loss: f64,
    /// (sample, neuron) pairs whose weight gradient the gradient chop dropped.
    pub chopped: u64,
}

/// The backward pass of batches: the weight gradients and every buffer both phases need, kept
/// from one batch to the next (a deep network's are megabytes, and fresh ones every batch cost
/// more in page faults than the arithmetic).
#[derive(Debug, Default)]
pub struct Backward {
    samples: Vec<SampleBackward>,
    grads: Vec<Array2<f64>>,
    /// Per layer and neuron, the largest magnitude of its incoming weights.
    max_abs: Vec<Vec<f64>>,
}

/// What the first phase keeps of one sample.
#[derive(Debug, Default)]
struct SampleBackward {
    layers: Vec<LayerBackward>,
    delta: Vec<Vec<f64>>,
    loss: f64,
    chopped: u32,
    /// Buffers of the one-neuron gradients.
    d_t_d_w: Vec<f64>,
    d_t_d_t: Vec<f64>,
    /// The weighted kernel slopes of a block of neurons, between the pass that scales their
    /// gradients and the pass that adds their inputs' errors.
    slopes: Vec<f64>,
}

/// One layer of one sample after the first phase.
#[derive(Debug, Default)]
struct LayerBackward {
    /// The layer's inputs prepared for the dense gradients (`tau_m = tau_s`) ...
    dense: LayerGradients,
    /// ... or sorted for the one-neuron gradients (any other kernel).
    volley: Volley,
    layer_input: Vec<f64>,
    /// Per neuron, the factor of its weight gradient row: `dT/dw = kernel * coef` for dense
    /// layers, `d_t_d_w * coef` otherwise; zero where the neuron contributes nothing.
    coef: Vec<f64>,
}

impl Backward {
    /// No buffers yet; the first batch allocates them.
    pub fn new() -> Self {
        Self::default()
    }

    /// The weight gradients (one matrix per layer, of its weights' shape) of a batch, summed
    /// over its samples, with the summed loss and the number of chopped gradients.
    pub fn batch(
        &mut self,
        network: &Network,
        samples: &[SampleRef<'_>],
        params: &BackwardParams,
    ) -> (&[Array2<f64>], BatchOutcome) {
        if self.samples.len() < samples.len() {
            self.samples
                .resize_with(samples.len(), SampleBackward::default);
        }
        self.max_abs.resize_with(network.layers.len(), Vec::new);
        for (max_abs, layer) in self.max_abs.iter_mut().zip(&network.layers) {
            max_abs.clear();
            let n_in = layer.weights.ncols().max(1);
            let weights = layer
                .weights
                .as_slice()
                .expect("weights are in standard layout");
            max_abs.par_extend(
                weights
                    .par_chunks(n_in)
                    .map(|w| w.iter().fold(0.0f64, |m, v| m.max(v.abs()))),
            );
        }
        let max_abs = &self.max_abs;
        let records = &mut self.samples[..samples.len()];
        records
            .par_iter_mut()
            .zip(samples)
            .for_each(|(record, sample)| record.backward(network, sample, params, max_abs));

        let same_shapes = self.grads.len() == network.layers.len()
            && self
                .grads
                .iter()
                .zip(&network.layers)
                .all(|(g, l)| g.dim() == l.weights.dim());
        if !same_shapes {
            self.grads = network
                .layers
                .iter()
                .map(|l| Array2::zeros(l.weights.dim()))
                .collect();
        }
        let records = &self.samples[..samples.len()];
        let offsets = network.layer_offsets();
        // Rows in blocks of neighbours, which read each sample's prepared inputs once.
        let mut blocks: Vec<(usize, usize, &mut [f64])> = Vec::new();
        for (l, g) in self.grads.iter_mut().enumerate() {
            let n_in = g.ncols().max(1);
            let g = g
                .as_slice_mut()
                .expect("gradients are made in standard layout");
            blocks.extend(
                g.chunks_mut(n_in * KERNEL_ROWS)
                    .enumerate()
                    .map(|(b, rows)| (l, b * KERNEL_ROWS, rows)),
            );
        }
        blocks
            .into_par_iter()
            .for_each_init(RowScratch::default, |scratch, (l, j0, rows)| {
                sum_rows(
                    network,
                    records,
                    samples,
                    (l, j0, offsets[l]),
                    rows,
                    scratch,
                );
            });

        let mut outcome = BatchOutcome::default();
        for group in records.chunks(SAMPLES_PER_GROUP) {
            outcome.loss += group.iter().fold(0.0, |sum, r| sum + r.loss);
            outcome.chopped += group.iter().map(|r| u64::from(r.chopped)).sum::<u64>();
        }
        (&self.grads, outcome)
    }
}

/// Buffers of one thread summing rows.
#[derive(Debug, Default)]
struct RowScratch {
    partial: Vec<f64>,
    spare: Vec<f64>,
    d_t_d_t: Vec<f64>,
}

/// Rows `j0, j0 + 1, ...` of layer `l`'s weight gradient (`rows`, at most [`KERNEL_ROWS`] of
/// them; the layer's spike times start at `offset` in a sample's measured times): every
/// sample's contribution, summed in groups. Each row's sum is formed in the same order whatever
/// the block, so it does not depend on how rows are blocked.
fn sum_rows(
    network: &Network,
    records: &[SampleBackward],
    samples: &[SampleRef<'_>],
    (l, j0, offset): (usize, usize, usize),
    rows: &mut [f64],
    scratch: &mut RowScratch,
) {
    let layer = &network.layers[l];
    let n_in = layer.weights.ncols().max(1);
    let n_rows = rows.len() / n_in;
    let neurons = j0..j0 + n_rows;
    rows.fill(0.0);
    let partial = &mut scratch.partial;
    for (group, refs) in records
        .chunks(SAMPLES_PER_GROUP)
        .zip(samples.chunks(SAMPLES_PER_GROUP))
    {
        // The group's samples that add to these rows, each with its neurons' `(t_out, coef)`.
        let contributing = || {
            group.iter().zip(refs).filter_map(|(record, sample)| {
                let rec = &record.layers[l];
                let coefs = &rec.coef[neurons.clone()];
                if coefs.iter().all(|c| *c == 0.0) {
                    return None;
                }
                let mut outs = [(0.0, 0.0); KERNEL_ROWS];
                for (r, &coef) in coefs.iter().enumerate() {
                    outs[r] = (sample.measured[offset + j0 + r], coef);
                }
                Some((rec, outs))
            })
        };
        if contributing().next().is_none() {
            continue;
        }
        if dense_applies(&layer.neuron) && n_rows == KERNEL_ROWS {
            // The group's samples in one pass over the rows, summed as the buffer below sums
            // them (from zero, in order), unless a sample needs the one-neuron gradients.
            let mut count = 0;
            let mut prepared = [&group[0].layers[l].dense; KERNEL_SAMPLES];
            let mut outs = [[(0.0, 0.0); KERNEL_ROWS]; KERNEL_SAMPLES];
            for (rec, block) in contributing() {
                prepared[count] = &rec.dense;
                outs[count] = block;
                count += 1;
            }
            if LayerGradients::add_kernels_of_samples(&prepared[..count], &outs[..count], rows) {
                continue;
            }
        }
        partial.clear();
        partial.resize(rows.len(), 0.0);
        for (rec, outs) in contributing() {
            if dense_applies(&layer.neuron) {
                rec.dense.add_kernels(
                    &outs[..n_rows],
                    |r| layer.weights_of(j0 + r),
                    partial,
                    &mut scratch.spare,
                );
                continue;
            }
            for (r, &(t_out, coef)) in outs[..n_rows].iter().enumerate() {
                if coef == 0.0 {
                    continue;
                }
                scratch.spare.resize(n_in, 0.0);
                scratch.d_t_d_t.resize(n_in, 0.0);
                gradients_at(
                    &layer.neuron,
                    &rec.volley,
                    layer.weights_of(j0 + r),
                    t_out,
                    &mut scratch.spare,
                    &mut scratch.d_t_d_t,
                );
                let row = &mut partial[r * n_in..(r + 1) * n_in];
                spikeloop_lif::add_scaled(row, &scratch.spare, coef);
            }
        }
        // `r + p * 1.0` is `r + p` exactly, on the widest vector instructions.
        spikeloop_lif::add_scaled(rows, partial, 1.0);
    }
}

impl SampleBackward {
    /// The first phase for one sample: its loss, every layer's errors, and the factors of the
    /// weight gradients.
    fn backward(
        &mut self,
        network: &Network,
        sample: &SampleRef<'_>,
        params: &BackwardParams,
        max_abs: &[Vec<f64>],
    ) {
        let n_layers = network.layers.len();
        let offsets = network.layer_offsets();
        self.delta.resize_with(n_layers, Vec::new);
        self.layers.resize_with(n_layers, LayerBackward::default);
        for ((d, rec), layer) in self
            .delta
            .iter_mut()
            .zip(&mut self.layers)
            .zip(&network.layers)
        {
            d.clear();
            d.resize(layer.size, 0.0);
            rec.coef.clear();
            rec.coef.resize(layer.size, 0.0);
        }
        let last = n_layers - 1;
        let out_times = &sample.measured[offsets[last]..offsets[last] + network.layers[last].size];
        self.loss = loss_and_gradient(&params.loss, out_times, sample.label, &mut self.delta[last]);
        for d in &mut self.delta[last] {
            *d *= params.scale;
        }
        self.chopped = 0;
        for l in (0..n_layers).rev() {
            if self.delta[l].iter().all(|d| *d == 0.0) {
                continue;
            }
            let layer = &network.layers[l];
            let times = &sample.measured[offsets[l]..offsets[l] + layer.size];
            let (lower, upper) = self.delta.split_at_mut(l);
            let delta_prev = if l > 0 {
                Some(&mut lower[l - 1][..])
            } else {
                None
            };
            self.chopped += backward_layer(
                network,
                layer,
                l,
                sample,
                times,
                &upper[0],
                delta_prev,
                &mut self.layers[l],
                (params, &max_abs[l]),
                (&mut self.d_t_d_w, &mut self.d_t_d_t, &mut self.slopes),
            );
        }
    }
}

/// Errors of layer `l`'s inputs from its neurons' errors `delta`, and its weight-gradient
/// factors; returns the number of chopped neurons.
#[allow(clippy::too_many_arguments)]
fn backward_layer(
    network: &Network,
    layer: &Layer,
    l: usize,
    sample: &SampleRef<'_>,
    times: &[f64],
    delta: &[f64],
    mut delta_prev: Option<&mut [f64]>,
    rec: &mut LayerBackward,
    (params, max_abs): (&BackwardParams, &[f64]),
    (d_t_d_w, d_t_d_t, slopes): (&mut Vec<f64>, &mut Vec<f64>, &mut Vec<f64>),
) -> u32 {
    let n_prev = network.layer_input(l, sample.inputs, sample.measured, &mut rec.layer_input);
    let n_in = rec.layer_input.len();
    let mut chopped = 0;
    if dense_applies(&layer.neuron) {
        // Dense: shared input factors; one pass per neuron over its inputs for what scales its
        // gradients, one pass per block of neurons to add their inputs' errors.
        rec.dense.prepare(&rec.layer_input, &layer.neuron);
        slopes.resize(KERNEL_ROWS * n_in, 0.0);
        for j0 in (0..layer.size).step_by(KERNEL_ROWS) {
            let block = j0..(j0 + KERNEL_ROWS).min(layer.size);
            let mut outs = [(0.0, 0.0); KERNEL_ROWS];
            for j in block.clone() {
                let delta_j = delta[j];
                if delta_j == 0.0 || !times[j].is_finite() {
                    continue;
                }
                let r = j - j0;
                let g = rec.dense.neuron(
                    layer.weights_of(j),
                    times[j],
                    max_abs[j],
                    &mut slopes[r * n_in..(r + 1) * n_in],
                    d_t_d_t,
                );
                if g.slope.is_nan() || g.slope <= 0.0 {
                    continue;
                }
                let w_factor = g.scale_w * delta_j;
                if params.max_dw_norm > 0.0 && g.max_kernel * w_factor.abs() > params.max_dw_norm {
                    chopped += 1;
                } else {
                    rec.coef[j] = w_factor;
                }
                outs[r] = (times[j], g.scale_t * delta_j);
            }
            if let Some(dp) = delta_prev.as_deref_mut() {
                rec.dense.add_weighted_slopes(
                    &outs[..block.len()],
                    |r| layer.weights_of(j0 + r),
                    &slopes[..block.len() * n_in],
                    &mut dp[..n_prev],
                    d_t_d_t,
                );
            }
        }
        return chopped;
    }
    rec.volley.prepare(&rec.layer_input, &layer.neuron);
    d_t_d_w.resize(n_in, 0.0);
    d_t_d_t.resize(n_in, 0.0);
    for j in 0..layer.size {
        let delta_j = delta[j];
        if delta_j == 0.0 || !times[j].is_finite() {
            continue;
        }
        let slope = gradients_at(
            &layer.neuron,
            &rec.volley,
            layer.weights_of(j),
            times[j],
            d_t_d_w,
            d_t_d_t,
        );
        if slope.is_nan() || slope <= 0.0 {
            continue;
        }
        let largest = d_t_d_w
            .iter()
            .fold(0.0f64, |m, g| m.max((g * delta_j).abs()));
        if params.max_dw_norm > 0.0 && largest > params.max_dw_norm {
            chopped += 1;
        } else {
            rec.coef[j] = delta_j;
        }
        if let Some(dp) = delta_prev.as_deref_mut() {
            for (dp, dt) in dp.iter_mut().zip(&d_t_d_t[..n_prev]) {
                *dp += dt * delta_j;
            }
        }
    }
    chopped
}

/// Adds one sample's weight gradient to `grads` (one matrix per layer, of its weights' shape)
/// and returns its loss: [`Backward::batch`] of one sample.
pub fn accumulate_sample(
    network: &Network,
    sample: SampleRef<'_>,
    params: &BackwardParams,
    grads: &mut [Array2<f64>],
) -> f64 {
    let mut backward = Backward::new();
    let (g, outcome) = backward.batch(network, &[sample], params);
    for (total, g) in grads.iter_mut().zip(g) {
        *total += g;
    }
    outcome.loss
}

#[cfg(test)]
mod tests {
    use spikeloop_backend::ideal::{DenseWeights, ForwardScratch, forward_sample};
    use spikeloop_backend::{Layer, Network, NeuronParams};

    use super::*;

    /// A 4-12-3 network of `neuron`s with deterministic, varied weights and one bias per layer.
    fn network(neuron: NeuronParams) -> Network {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |mean: f64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            mean + 1.6 * ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
        };
        let layer = |size: usize, n_in: usize, mean: f64, next: &mut dyn FnMut(f64) -> f64| Layer {
            size,
            neuron,
            bias_times: vec![0.9],
            weights: Array2::from_shape_simple_fn((size, n_in + 1), || next(mean)),
        };
        Network {
            n_inputs: 4,
            layers: vec![layer(12, 4, 1.5, &mut next), layer(3, 12, 0.9, &mut next)],
        }
    }

    fn loss_of(network: &Network, inputs: &[f64], label: usize) -> f64 {
        let mut out = vec![0.0; network.n_neurons()];
        forward_sample(
            network,
            &DenseWeights::of(network),
            inputs,
            &mut ForwardScratch::default(),
            &mut out,
        );
        let mut g = vec![0.0; 3];
        let p = LossParams {
            xi: 0.2,
            alpha: 0.005,
            beta: 1.0,
        };
        loss_and_gradient(&p, &out[12..], label, &mut g)
    }

    #[test]
    fn batch_gradient_matches_finite_differences_of_the_loss() {
        gradient_matches_finite_differences(NeuronParams::REFERENCE);
    }

    /// The one-neuron gradients (any kernel other than `tau_m = tau_s`) take the same way.
    #[test]
    fn batch_gradient_of_a_slower_membrane_matches_finite_differences() {
        gradient_matches_finite_differences(NeuronParams {
            tau_m: 1.5,
            ..NeuronParams::REFERENCE
        });
    }

    fn gradient_matches_finite_differences(neuron: NeuronParams) {
        let network = network(neuron);
        let params = BackwardParams {
            loss: LossParams {
                xi: 0.2,
                alpha: 0.005,
                beta: 1.0,
            },
            scale: 1.0,
            max_dw_norm: 0.0,
        };
        let mut checked = 0;
        for (inputs, label) in [
            ([0.3, 1.2, 1.9, 0.8], 0),
            ([1.7, 0.4, 0.5, 1.6], 2),
            ([1.0, 1.0, 1.15, 1.15], 1),
        ] {
            let mut measured = vec![0.0; network.n_neurons()];
            forward_sample(
                &network,
                &DenseWeights::of(&network),
                &inputs,
                &mut ForwardScratch::default(),
                &mut measured,
            );
            assert!(
                measured[12..].iter().all(|t| t.is_finite()),
                "outputs {:?}",
                &measured[12..]
            );
            let mut grads: Vec<Array2<f64>> = network
                .layers
                .iter()
                .map(|l| Array2::zeros(l.weights.dim()))
                .collect();
            let sample = SampleRef {
                inputs: &inputs,
                measured: &measured,
                label,
            };
            accumulate_sample(&network, sample, &params, &mut grads);
            for (l, layer_grads) in grads.iter().enumerate() {
                for (i, &g) in layer_grads.iter().enumerate() {
                    let h = 1e-6;
                    let at = (i / layer_grads.ncols(), i % layer_grads.ncols());
                    let mut up = network.clone();
                    up.layers[l].weights[at] += h;
                    let mut down = network.clone();
                    down.layers[l].weights[at] -= h;
                    let fd =
                        (loss_of(&up, &inputs, label) - loss_of(&down, &inputs, label)) / (2.0 * h);
                    // Skip weights whose perturbation changes the causal set (a kink).
                    if fd.abs() > 1e3 {
                        continue;
                    }
                    assert!(
                        (fd - g).abs() <= 1e-5 * (1.0 + fd.abs()),
                        "layer {l} weight {i}: fd {fd} vs {g}"
                    );
                    checked += usize::from(g != 0.0);
                }
            }
        }
        assert!(checked > 50, "only {checked} non-zero gradients checked");
    }
}
