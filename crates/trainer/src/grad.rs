//! Exact gradients evaluated at *measured* spike times, backpropagated through the layers.
//!
//! The forward pass is whatever the backend measured. For every neuron that fired, the
//! derivatives of its spike time with respect to its input weights and input times follow from
//! implicit differentiation of the membrane equation at the measured time
//! (`spikeloop_lif::gradients_at`), using the host's float shadow weights. Errors flow backwards
//! as `delta_pre = sum_post dT_post/dt_pre * delta_post`, and `dL/dw = dT/dw * delta_post`.

use ndarray::Array2;
use spikeloop_backend::Network;
use spikeloop_lif::{LayerGradients, Volley, dense_applies, gradients_at};

use crate::loss::{LossParams, loss_and_gradient};

/// Scratch buffers for one worker; reused across samples.
#[derive(Debug, Default)]
pub struct GradScratch {
    volley: Volley,
    dense: LayerGradients,
    layer_input: Vec<f64>,
    d_t_d_w: Vec<f64>,
    d_t_d_t: Vec<f64>,
    delta: Vec<Vec<f64>>,
}

/// What one sample's backward pass reports besides its gradient contribution.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SampleOutcome {
    /// The sample's loss.
    pub loss: f64,
    /// Neurons whose weight gradient was dropped by the gradient chop.
    pub chopped: u32,
}

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

/// Adds one sample's weight gradient to `grads` (one matrix per layer, of its weights' shape,
/// in standard layout as `Array2::zeros` makes them).
///
/// `inputs` are the sample's input spike times as fed to the backend, `measured` the measured
/// first-spike times of all layers one after another.
pub fn accumulate_sample(
    network: &Network,
    inputs: &[f64],
    measured: &[f64],
    label: usize,
    params: &BackwardParams,
    scratch: &mut GradScratch,
    grads: &mut [Array2<f64>],
) -> SampleOutcome {
    let n_layers = network.layers.len();
    let offsets = network.layer_offsets();
    scratch.delta.resize_with(n_layers, Vec::new);
    for (d, layer) in scratch.delta.iter_mut().zip(&network.layers) {
        d.clear();
        d.resize(layer.size, 0.0);
    }

    let last = n_layers - 1;
    let out_times = &measured[offsets[last]..offsets[last] + network.layers[last].size];
    let loss = loss_and_gradient(&params.loss, out_times, label, &mut scratch.delta[last]);
    for d in &mut scratch.delta[last] {
        *d *= params.scale;
    }

    let mut chopped = 0;
    for l in (0..n_layers).rev() {
        let layer = &network.layers[l];
        let n_prev = network.layer_input(l, inputs, measured, &mut scratch.layer_input);
        let n_in = scratch.layer_input.len();
        if scratch.delta[l].iter().all(|d| *d == 0.0) {
            continue;
        }
        let times = &measured[offsets[l]..offsets[l] + layer.size];
        let (lower, upper) = scratch.delta.split_at_mut(l);
        let delta_here = &upper[0];
        let mut delta_prev = if l > 0 {
            Some(&mut lower[l - 1][..])
        } else {
            None
        };
        if dense_applies(&layer.neuron) {
            // Dense: shared input factors, two passes per neuron in input order.
            scratch.dense.prepare(&scratch.layer_input, &layer.neuron);
            for j in 0..layer.size {
                let delta_j = delta_here[j];
                if delta_j == 0.0 || !times[j].is_finite() {
                    continue;
                }
                let g = scratch.dense.neuron(layer.weights_of(j), times[j]);
                if g.slope.is_nan() || g.slope <= 0.0 {
                    continue;
                }
                let w_factor = g.scale_w * delta_j;
                if params.max_dw_norm > 0.0 && g.max_kernel * w_factor.abs() > params.max_dw_norm {
                    chopped += 1;
                } else {
                    add_scaled(&mut grads[l], j, scratch.dense.kernel(), w_factor);
                }
                if let Some(dp) = delta_prev.as_deref_mut() {
                    let t_factor = g.scale_t * delta_j;
                    spikeloop_lif::add_scaled(
                        dp,
                        &scratch.dense.weighted_slope()[..n_prev],
                        t_factor,
                    );
                }
            }
            continue;
        }
        scratch.volley.prepare(&scratch.layer_input, &layer.neuron);
        scratch.d_t_d_w.resize(n_in, 0.0);
        scratch.d_t_d_t.resize(n_in, 0.0);
        for j in 0..layer.size {
            let delta_j = delta_here[j];
            if delta_j == 0.0 || !times[j].is_finite() {
                continue;
            }
            let slope = gradients_at(
                &layer.neuron,
                &scratch.volley,
                layer.weights_of(j),
                times[j],
                &mut scratch.d_t_d_w,
                &mut scratch.d_t_d_t,
            );
            if slope.is_nan() || slope <= 0.0 {
                continue;
            }
            let largest = scratch
                .d_t_d_w
                .iter()
                .fold(0.0f64, |m, g| m.max((g * delta_j).abs()));
            if params.max_dw_norm > 0.0 && largest > params.max_dw_norm {
                chopped += 1;
            } else {
                add_scaled(&mut grads[l], j, &scratch.d_t_d_w, delta_j);
            }
            if let Some(dp) = delta_prev.as_deref_mut() {
                for (dp, dt) in dp.iter_mut().zip(&scratch.d_t_d_t[..n_prev]) {
                    *dp += dt * delta_j;
                }
            }
        }
    }
    SampleOutcome { loss, chopped }
}

/// `grads[j, ..] += values * factor`.
fn add_scaled(grads: &mut Array2<f64>, j: usize, values: &[f64], factor: f64) {
    let mut row = grads.row_mut(j);
    if let Some(row) = row.as_slice_mut() {
        // Contiguous rows (gradients made by `Array2::zeros`): a slice loop vectorises.
        spikeloop_lif::add_scaled(row, values, factor);
    } else {
        for (g, d) in row.iter_mut().zip(values) {
            *g += d * factor;
        }
    }
}

#[cfg(test)]
mod tests {
    use spikeloop_backend::ideal::{DenseWeights, ForwardScratch, forward_sample};
    use spikeloop_backend::{Layer, Network, NeuronParams};

    use super::*;

    /// A 4-12-3 network with deterministic, varied weights and one bias per layer.
    fn network() -> Network {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |mean: f64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            mean + 1.6 * ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
        };
        let layer = |size: usize, n_in: usize, mean: f64, next: &mut dyn FnMut(f64) -> f64| Layer {
            size,
            neuron: NeuronParams::REFERENCE,
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
        let network = network();
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
            accumulate_sample(
                &network,
                &inputs,
                &measured,
                label,
                &params,
                &mut GradScratch::default(),
                &mut grads,
            );
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
