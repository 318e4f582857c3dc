//! Cost of one Yin-Yang sample (network 5 -> 120 -> 3) on the training hot path: the forward
//! pass (prepare two volleys, 123 spike times) and the gradients (123 `gradients_at` calls at the
//! forward pass's spike times). Weights are drawn once from a small deterministic generator with
//! the reference initialisation (layer 1: mean 1.5, sd 0.8; layer 2: mean 0.5, sd 0.8). Also
//! the founding study's first hidden layer: its dense forward scan and the per-neuron passes of
//! its dense gradients.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use spikeloop_backend_testkit::TestRng;
use spikeloop_lif::{
    KERNEL_ROWS, KERNEL_SAMPLES, LayerGradients, LayerState, NeuronParams, Volley, add_scaled,
    gradients_at, layer_spike_times_dense, spike_time, spike_time_sorted, transpose_weights,
};

const N_IN: usize = 5;
const N_HIDDEN: usize = 120;
const N_OUT: usize = 3;
const BIAS_TIME: f64 = 0.9;
const N_SAMPLES: usize = 64;

struct Network {
    params: NeuronParams,
    /// Row `j` holds the 5 input weights of hidden neuron `j`.
    w1: Vec<f64>,
    /// Row `k` holds the 121 input weights (120 hidden + bias) of output neuron `k`.
    w2: Vec<f64>,
}

/// Per-sample state kept between the forward and the backward pass.
#[derive(Clone, Default)]
struct Pass {
    input: Vec<f64>,
    v1: Volley,
    hidden: Vec<f64>,
    v2: Volley,
    out: [f64; N_OUT],
}

impl Network {
    fn new(params: NeuronParams, rng: &mut TestRng) -> Network {
        Network {
            params,
            w1: (0..N_HIDDEN * N_IN).map(|_| rng.normal(1.5, 0.8)).collect(),
            w2: (0..N_OUT * (N_HIDDEN + 1))
                .map(|_| rng.normal(0.5, 0.8))
                .collect(),
        }
    }

    fn forward(&self, pass: &mut Pass) {
        let p = &self.params;
        pass.v1.prepare(&pass.input, p);
        pass.hidden.clear();
        for row in self.w1.chunks_exact(N_IN) {
            pass.hidden.push(spike_time(p, &pass.v1, row).time);
        }
        pass.hidden.push(BIAS_TIME);
        pass.v2.prepare(&pass.hidden, p);
        for (k, row) in self.w2.chunks_exact(N_HIDDEN + 1).enumerate() {
            pass.out[k] = spike_time(p, &pass.v2, row).time;
        }
    }

    fn gradients(&self, pass: &Pass, g1: &mut [f64; 2 * N_IN], g2: &mut [f64]) -> f64 {
        let p = &self.params;
        let mut acc = 0.0;
        let (gw, gt) = g1.split_at_mut(N_IN);
        for (j, row) in self.w1.chunks_exact(N_IN).enumerate() {
            acc += gradients_at(p, &pass.v1, row, pass.hidden[j], gw, gt);
        }
        let (gw, gt) = g2.split_at_mut(N_HIDDEN + 1);
        for (k, row) in self.w2.chunks_exact(N_HIDDEN + 1).enumerate() {
            acc += gradients_at(p, &pass.v2, row, pass.out[k], gw, gt);
        }
        acc
    }
}

fn samples(rng: &mut TestRng) -> Vec<Pass> {
    (0..N_SAMPLES)
        .map(|_| {
            let (x, y) = (rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0));
            let input = [x, y, 1.0 - x, 1.0 - y]
                .iter()
                .map(|v| 0.15 + 1.85 * v)
                .chain([BIAS_TIME])
                .collect();
            Pass {
                input,
                ..Pass::default()
            }
        })
        .collect()
}

fn bench_network(c: &mut Criterion, name: &str, params: NeuronParams) {
    let mut rng = TestRng::new(0x5eed);
    let net = Network::new(params, &mut rng);
    let mut passes = samples(&mut rng);
    for pass in &mut passes {
        net.forward(pass);
    }
    let hidden_spiking = passes
        .iter()
        .flat_map(|p| &p.hidden[..N_HIDDEN])
        .filter(|t| t.is_finite())
        .count();
    let out_spiking = passes
        .iter()
        .flat_map(|p| &p.out)
        .filter(|t| t.is_finite())
        .count();
    println!(
        "{name}: {:.1} % of hidden and {:.1} % of output neurons spike",
        100.0 * hidden_spiking as f64 / (N_SAMPLES * N_HIDDEN) as f64,
        100.0 * out_spiking as f64 / (N_SAMPLES * N_OUT) as f64
    );

    let mut i = 0;
    c.bench_function(&format!("{name}/forward_per_sample"), |b| {
        b.iter(|| {
            let pass = &mut passes[i % N_SAMPLES];
            i += 1;
            net.forward(black_box(pass));
            black_box(pass.out[0])
        })
    });
    let mut g1 = [0.0; 2 * N_IN];
    let mut g2 = vec![0.0; 2 * (N_HIDDEN + 1)];
    let mut i = 0;
    c.bench_function(&format!("{name}/gradients_per_sample"), |b| {
        b.iter(|| {
            let pass = &passes[i % N_SAMPLES];
            i += 1;
            black_box(net.gradients(black_box(pass), &mut g1, &mut g2))
        })
    });
}

fn yin_yang(c: &mut Criterion) {
    bench_network(c, "equal", NeuronParams::REFERENCE);
    bench_network(
        c,
        "general_ratio_1.05",
        NeuronParams {
            tau_m: 1.05,
            ..NeuronParams::REFERENCE
        },
    );
}

/// The emulator's per-neuron path: a 121-input neuron with its own time constants.
fn per_neuron(c: &mut Criterion) {
    let mut rng = TestRng::new(7);
    let mut times: Vec<f64> = (0..N_HIDDEN + 1)
        .map(|_| 0.5 + 1.5 * rng.uniform(0.0, 1.0))
        .collect();
    times.sort_by(f64::total_cmp);
    let weights: Vec<f64> = (0..N_HIDDEN + 1).map(|_| rng.normal(0.5, 0.8)).collect();
    let params = NeuronParams {
        tau_m: 1.0 + 1e-3,
        tau_s: 1.0 - 2e-3,
        ..NeuronParams::REFERENCE
    };
    c.bench_function("general/spike_time_sorted_121_inputs", |b| {
        b.iter(|| spike_time_sorted(black_box(&params), black_box(&times), black_box(&weights)))
    });
}

/// Inputs of the founding study's first hidden layer: 785 (784 pixels, half of them blank and
/// spiking last at 2.0, and a bias), with weights of its initialisation, `n_rows` rows of them.
fn first_layer(rng: &mut TestRng, n_rows: usize) -> (Vec<f64>, Vec<f64>) {
    const N: usize = 785;
    let times: Vec<f64> = (0..N)
        .map(|i| {
            if i == N - 1 {
                BIAS_TIME
            } else if rng.uniform(0.0, 1.0) < 0.5 {
                2.0
            } else {
                0.15 + 1.85 * rng.uniform(0.0, 1.0)
            }
        })
        .collect();
    let weights: Vec<f64> = (0..N * n_rows).map(|_| rng.normal(0.01, 0.064)).collect();
    (times, weights)
}

/// The founding study's first hidden layer forward: the sort of 785 inputs and the dense scan of
/// its 400 neurons.
fn dense_forward(c: &mut Criterion) {
    const N_OUT: usize = 400;
    let (times, weights) = first_layer(&mut TestRng::new(13), N_OUT);
    let mut weights_t = Vec::new();
    transpose_weights(&weights, N_OUT, times.len(), &mut weights_t);
    let params = NeuronParams::REFERENCE;
    let mut volley = Volley::new();
    let mut state = LayerState::default();
    let mut out = vec![0.0; N_OUT];
    c.bench_function("dense/layer_785_inputs_400_neurons", |b| {
        b.iter(|| {
            volley.prepare(black_box(&times), &params);
            layer_spike_times_dense(&volley, &weights_t, &mut state, &mut out);
        })
    });
}

/// The dense gradients of one neuron of the founding study's first hidden layer, the sums that
/// scale its gradients, and the two passes that add its weight gradient and its inputs' errors.
fn dense_gradients(c: &mut Criterion) {
    const N: usize = 785;
    let (times, weights) = first_layer(&mut TestRng::new(11), 1);
    let params = NeuronParams::REFERENCE;
    let mut dense = LayerGradients::new();
    dense.prepare(&times, &params);
    let t_out = 1.7;
    let mut scratch = Vec::new();
    let mut row = vec![0.0; N];
    let mut slopes = vec![0.0; N];
    let largest = weights.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    c.bench_function("dense/neuron_sums_785_inputs", |b| {
        b.iter(|| {
            dense.neuron(
                black_box(&weights),
                black_box(t_out),
                largest,
                &mut slopes,
                &mut scratch,
            )
        })
    });
    c.bench_function("dense/add_kernel_785_inputs", |b| {
        b.iter(|| dense.add_kernel(black_box(&weights), t_out, 1e-3, &mut row, &mut scratch))
    });
    c.bench_function("dense/add_weighted_slope_785_inputs", |b| {
        b.iter(|| {
            dense.add_weighted_slope(black_box(&weights), t_out, 1e-3, &mut row, &mut scratch)
        })
    });
}

/// The weight-gradient rows of a block of four neurons of the first hidden layer for a group
/// of four samples: each sample's block pass into a cleared buffer then added to the rows, as
/// against all four samples in one pass.
fn dense_sample_group(c: &mut Criterion) {
    let params = NeuronParams::REFERENCE;
    let mut rng = TestRng::new(17);
    let prepared: Vec<LayerGradients> = (0..KERNEL_SAMPLES)
        .map(|_| {
            let (times, _) = first_layer(&mut rng, 0);
            let mut g = LayerGradients::new();
            g.prepare(&times, &params);
            g
        })
        .collect();
    let n = 785;
    let outs: Vec<[(f64, f64); KERNEL_ROWS]> = (0..KERNEL_SAMPLES)
        .map(|s| std::array::from_fn(|r| (1.2 + 0.1 * (s * KERNEL_ROWS + r) as f64, 1e-3)))
        .collect();
    let mut rows = vec![0.0; KERNEL_ROWS * n];
    let mut buffer = vec![0.0; KERNEL_ROWS * n];
    let none: &[f64] = &[];
    c.bench_function("dense/kernels_4_samples_4_rows_buffered", |b| {
        b.iter(|| {
            buffer.fill(0.0);
            for (g, o) in prepared.iter().zip(&outs) {
                g.add_kernels(black_box(o), |_| none, &mut buffer, &mut Vec::new());
            }
            add_scaled(&mut rows, &buffer, 1.0);
        })
    });
    let refs: Vec<&LayerGradients> = prepared.iter().collect();
    c.bench_function("dense/kernels_4_samples_4_rows_one_pass", |b| {
        b.iter(|| LayerGradients::add_kernels_of_samples(black_box(&refs), &outs, &mut rows))
    });
}

criterion_group!(
    benches,
    yin_yang,
    per_neuron,
    dense_forward,
    dense_gradients,
    dense_sample_group
);
criterion_main!(benches);
