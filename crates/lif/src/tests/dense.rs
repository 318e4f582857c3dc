//! The dense layer functions are other schedules of the same model: the forward scan must agree
//! with `spike_time` bit for bit, the gradients with `gradients_at` to rounding.

use proptest::prelude::*;

use crate::{
    KERNEL_ROWS, KERNEL_SAMPLES, LayerGradients, LayerState, NeuronParams, Volley, gradients_at,
    layer_spike_times_dense, membrane_potential, spike_time, transpose_weights,
};

/// Weights in [-0.8, 2.2) from a xorshift stream.
fn weights(seed: u64, n: usize) -> Vec<f64> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            3.0 * ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.8
        })
        .collect()
}

fn input_strategy() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![4 => 0.0f64..3.0, 1 => Just(f64::INFINITY), 1 => Just(1.0)],
        0..40,
    )
}

/// Membranes whose single peak lies just above or below the threshold, with inputs of weight
/// zero crowding the peak: the interval holding the peak starts a hair before it, where the
/// membrane's drive `a` is barely above the peak itself. The dense scan flags such intervals by
/// a lower bound on `a`; a bound even 0.1 % too high misses crossings here.
#[test]
fn dense_layer_finds_crossings_at_grazing_peaks() {
    let params = NeuronParams::REFERENCE;
    // One input at 0 peaks at t = tau (1.0); the peak of weight w is w times that of weight 1.
    let critical = params.threshold / membrane_potential(&params, &[0.0], &[1.0], 1.0);
    let mut inputs = vec![0.0];
    inputs.extend((0..120).map(|k| 0.9405 + 0.001 * f64::from(k)));
    let n_in = inputs.len();
    let offsets = [
        -1e-3, -1e-6, -1e-9, -1e-12, 0.0, 1e-15, 1e-12, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4,
        3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1,
    ]
    .into_iter()
    // Neurons far below threshold keep the dense scan going (it finishes the last few one by
    // one).
    .chain(std::iter::repeat_n(-0.5, 24))
    .collect::<Vec<_>>();
    let mut w = vec![0.0; offsets.len() * n_in];
    for (row, d) in w.chunks_exact_mut(n_in).zip(&offsets) {
        row[0] = critical * (1.0 + d);
    }
    let mut volley = Volley::new();
    volley.prepare(&inputs, &params);
    let mut w_t = Vec::new();
    transpose_weights(&w, offsets.len(), n_in, &mut w_t);
    let mut out = vec![f64::NAN; offsets.len()];
    layer_spike_times_dense(&volley, &w_t, &mut LayerState::default(), &mut out);
    let mut fired = 0;
    for (j, t) in out.iter().enumerate() {
        let single = spike_time(&params, &volley, &w[j * n_in..(j + 1) * n_in]).time;
        assert_eq!(
            t.to_bits(),
            single.to_bits(),
            "offset {}: {t} vs {single}",
            offsets[j]
        );
        fired += usize::from(t.is_finite());
    }
    // Both sides of the threshold are met: the test cannot pass by nothing firing.
    assert!((5..20).contains(&fired), "{fired} of 20 fired");
}

/// The dense scan of `n_out` neurons with weights `w` (row-major) agrees with `spike_time`,
/// neuron by neuron, bit for bit.
fn assert_dense_equals_single(params: &NeuronParams, inputs: &[f64], w: &[f64], n_out: usize) {
    let n_in = inputs.len();
    let mut volley = Volley::new();
    volley.prepare(inputs, params);
    let mut w_t = Vec::new();
    transpose_weights(w, n_out, n_in, &mut w_t);
    let mut out = vec![f64::NAN; n_out];
    layer_spike_times_dense(&volley, &w_t, &mut LayerState::default(), &mut out);
    for (j, t) in out.iter().enumerate() {
        let single = spike_time(params, &volley, &w[j * n_in..(j + 1) * n_in]).time;
        assert_eq!(t.to_bits(), single.to_bits(), "neuron {j}: {t} vs {single}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dense_layer_equals_neuron_by_neuron(
        n_out in 0usize..27,
        inputs in input_strategy(),
        seed in any::<u64>(),
    ) {
        let w = weights(seed, n_out * inputs.len());
        assert_dense_equals_single(&NeuronParams::REFERENCE, &inputs, &w, n_out);
    }

    /// Wide layers whose neurons fire far apart: strong neurons early, weak ones (every
    /// `weak_every`-th, weights scaled down) late or never, so the scan runs long with most of
    /// its neurons already fired and finishes many one by one.
    #[test]
    fn wide_layers_of_early_and_late_neurons_equal_neuron_by_neuron(
        n_out in 32usize..100,
        inputs in prop::collection::vec(
            prop_oneof![6 => 0.0f64..3.0, 1 => Just(f64::INFINITY), 1 => Just(1.0)],
            20..80,
        ),
        seed in any::<u64>(),
        weak_every in 2usize..5,
        weak_scale in 0.01f64..0.2,
    ) {
        let params = NeuronParams::REFERENCE;
        let n_in = inputs.len();
        let mut w = weights(seed, n_out * n_in);
        for (j, row) in w.chunks_exact_mut(n_in).enumerate() {
            if j % weak_every == 0 {
                row.iter_mut().for_each(|v| *v *= weak_scale);
            }
        }
        assert_dense_equals_single(&params, &inputs, &w, n_out);
    }

    #[test]
    fn dense_gradients_equal_the_one_neuron_gradients(
        inputs in input_strategy(),
        seed in any::<u64>(),
        t_out in 0.0f64..5.0,
    ) {
        let params = NeuronParams::REFERENCE;
        let n = inputs.len();
        let w = weights(seed, n);
        let mut volley = Volley::new();
        volley.prepare(&inputs, &params);
        let (mut d_w, mut d_t) = (vec![0.0; n], vec![0.0; n]);
        let slope = gradients_at(&params, &volley, &w, t_out, &mut d_w, &mut d_t);
        let mut dense = LayerGradients::new();
        dense.prepare(&inputs, &params);
        let (kernel, weighted_slope) = values(&dense, &w, t_out);
        let g = dense.neuron(&w, t_out, largest(&w), &mut vec![0.0; n], &mut Vec::new());
        if slope > 0.0 && slope.is_finite() {
            // Relative to the largest magnitude: terms of a sum are formed in another order.
            let largest_w = d_w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let largest_t = d_t.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            // The slope is a sum of the terms `w_i K'_i = slope dT/dt_i`, which may cancel: its
            // error is relative to the largest term, and every gradient is divided by it.
            let condition = largest_t.max(1.0);
            let close = |a: f64, b: f64, scale: f64| {
                (a - b).abs() <= 1e-12 * condition * scale.max(1e-300)
            };
            prop_assert!(close(g.slope, slope, slope.abs()), "slope {} vs {}", g.slope, slope);
            prop_assert!(close(g.max_kernel * g.scale_w.abs(), largest_w, largest_w));
            for i in 0..n {
                prop_assert!(close(kernel[i] * g.scale_w, d_w[i], largest_w),
                    "dT/dw {}: {} vs {}", i, kernel[i] * g.scale_w, d_w[i]);
                prop_assert!(close(weighted_slope[i] * g.scale_t, d_t[i], largest_t),
                    "dT/dt {}: {} vs {}", i, weighted_slope[i] * g.scale_t, d_t[i]);
            }
        } else {
            // No usable gradient one way means none the other way.
            prop_assert!(g.slope <= 0.0 || g.slope.is_nan() || g.scale_w == 0.0 || !slope.is_finite());
            prop_assert!(d_w.iter().all(|v| *v == 0.0));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The passes over blocks of neurons add what the one-neuron passes add, one after another.
    #[test]
    fn blocks_of_neurons_add_what_single_neurons_add(
        inputs in input_strategy(),
        seed in any::<u64>(),
        outs in prop::collection::vec(
            (prop_oneof![4 => 0.0f64..5.0, 1 => Just(f64::INFINITY)],
             prop_oneof![4 => -2.0f64..2.0, 1 => Just(0.0)]),
            0..=KERNEL_ROWS,
        ),
    ) {
        let params = NeuronParams::REFERENCE;
        let n = inputs.len();
        let w = weights(seed, KERNEL_ROWS * n);
        let weights_of = |r: usize| &w[r * n..(r + 1) * n];
        let mut dense = LayerGradients::new();
        dense.prepare(&inputs, &params);
        let start = weights(seed ^ 0x5555, (outs.len() + 1) * n);

        let mut single = start[..outs.len() * n].to_vec();
        let mut blocked = single.clone();
        for (r, &(t_out, factor)) in outs.iter().enumerate() {
            if factor != 0.0 {
                dense.add_kernel(weights_of(r), t_out, factor, &mut single[r * n..(r + 1) * n], &mut Vec::new());
            }
        }
        dense.add_kernels(&outs, weights_of, &mut blocked, &mut Vec::new());
        prop_assert_eq!(&blocked, &single);

        let mut single = start[outs.len() * n..].to_vec();
        let mut blocked = single.clone();
        for (r, &(t_out, factor)) in outs.iter().enumerate() {
            if factor != 0.0 {
                dense.add_weighted_slope(weights_of(r), t_out, factor, &mut single, &mut Vec::new());
            }
        }
        // The slopes as the pass that scales each neuron's gradients leaves them.
        let mut slopes = vec![f64::NAN; outs.len() * n];
        for (r, &(t_out, _)) in outs.iter().enumerate() {
            let w = weights_of(r);
            dense.neuron(w, t_out, largest(w), &mut slopes[r * n..(r + 1) * n], &mut Vec::new());
        }
        dense.add_weighted_slopes(&outs, weights_of, &slopes, &mut blocked, &mut Vec::new());
        prop_assert_eq!(&blocked, &single);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A group of samples in one pass adds, bit for bit, what each sample's block pass adds to
    /// a cleared buffer that is then added to the rows.
    #[test]
    fn samples_in_one_pass_add_what_a_buffer_of_their_passes_adds(
        inputs in prop::collection::vec(input_strategy(), 1..=KERNEL_SAMPLES),
        n_extra in 0usize..3,
        seed in any::<u64>(),
        outs in prop::collection::vec(
            prop::collection::vec(
                (prop_oneof![4 => 0.0f64..5.0, 1 => Just(f64::INFINITY)],
                 prop_oneof![4 => -2.0f64..2.0, 1 => Just(0.0)]),
                KERNEL_ROWS,
            ),
            KERNEL_SAMPLES,
        ),
    ) {
        let params = NeuronParams::REFERENCE;
        // Every sample gets the same number of inputs (one layer): cut or pad with silence.
        let n = inputs[0].len() + n_extra;
        let prepared: Vec<LayerGradients> = inputs
            .iter()
            .map(|times| {
                let mut times = times.clone();
                times.resize(n, f64::INFINITY);
                let mut g = LayerGradients::new();
                g.prepare(&times, &params);
                g
            })
            .collect();
        let outs: Vec<[(f64, f64); KERNEL_ROWS]> = outs[..prepared.len()]
            .iter()
            .map(|o| std::array::from_fn(|r| o[r]))
            .collect();
        let w = weights(seed, KERNEL_ROWS * n);
        let start = weights(seed ^ 0xAAAA, KERNEL_ROWS * n);

        let mut buffered = start.clone();
        let mut buffer = vec![0.0; KERNEL_ROWS * n];
        for (g, o) in prepared.iter().zip(&outs) {
            g.add_kernels(o, |r| &w[r * n..(r + 1) * n], &mut buffer, &mut Vec::new());
        }
        for (row, b) in buffered.iter_mut().zip(&buffer) {
            *row += b;
        }
        let mut fused = start.clone();
        let refs: Vec<&LayerGradients> = prepared.iter().collect();
        prop_assert!(LayerGradients::add_kernels_of_samples(&refs, &outs, &mut fused));
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&fused), bits(&buffered));
    }
}

#[test]
fn a_group_with_inputs_too_far_apart_is_left_to_the_one_sample_passes() {
    let params = NeuronParams::REFERENCE;
    let (mut near, mut far) = (LayerGradients::new(), LayerGradients::new());
    near.prepare(&[0.5, 1.0, 1.5], &params);
    far.prepare(&[0.5, 1000.0, 1000.2], &params);
    let outs = [[(1001.0, 1.0); KERNEL_ROWS]; 2];
    let mut rows = vec![0.0; KERNEL_ROWS * 3];
    assert!(!LayerGradients::add_kernels_of_samples(
        &[&near, &far],
        &outs,
        &mut rows
    ));
    assert!(rows.iter().all(|v| *v == 0.0));
    let soon = [[(2.0, 1.0); KERNEL_ROWS]];
    assert!(LayerGradients::add_kernels_of_samples(
        &[&near],
        &soon,
        &mut rows
    ));
    assert!(rows.iter().any(|v| *v != 0.0));
}

#[test]
fn inputs_hundreds_of_time_constants_apart_still_get_their_gradients() {
    let params = NeuronParams::REFERENCE;
    let inputs = [0.5, 1000.0, 1000.2];
    let w = [2.0, 1.5, 1.5];
    let t_out = 1001.0;
    let mut volley = Volley::new();
    volley.prepare(&inputs, &params);
    let (mut d_w, mut d_t) = (vec![0.0; 3], vec![0.0; 3]);
    let slope = gradients_at(&params, &volley, &w, t_out, &mut d_w, &mut d_t);
    assert!(slope > 0.0);
    let mut dense = LayerGradients::new();
    dense.prepare(&inputs, &params);
    let g = dense.neuron(&w, t_out, largest(&w), &mut [0.0; 3], &mut Vec::new());
    assert_eq!(g.slope, slope);
    let (kernel, weighted_slope) = values(&dense, &w, t_out);
    for i in 0..3 {
        assert_eq!(kernel[i] * g.scale_w, d_w[i]);
        assert_eq!(weighted_slope[i] * g.scale_t, d_t[i]);
    }
}

/// The largest magnitude of `w`.
fn largest(w: &[f64]) -> f64 {
    w.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// The kernel values and weighted slopes of one neuron, each added once to zeros.
fn values(dense: &LayerGradients, w: &[f64], t_out: f64) -> (Vec<f64>, Vec<f64>) {
    let mut kernel = vec![0.0; w.len()];
    let mut weighted_slope = vec![0.0; w.len()];
    dense.add_kernel(w, t_out, 1.0, &mut kernel, &mut Vec::new());
    dense.add_weighted_slope(w, t_out, 1.0, &mut weighted_slope, &mut Vec::new());
    (kernel, weighted_slope)
}
