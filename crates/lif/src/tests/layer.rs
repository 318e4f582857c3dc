//! `layer_spike_times` is a faster schedule of the same arithmetic: it must agree with
//! `spike_time` bit for bit, for every kernel, layer width and input pattern.

use proptest::prelude::*;

use crate::{NeuronParams, Volley, layer_spike_times, spike_time};

fn params_strategy() -> impl Strategy<Value = NeuronParams> {
    prop_oneof![
        Just(NeuronParams::REFERENCE),
        Just(NeuronParams {
            tau_m: 2.0,
            ..NeuronParams::REFERENCE
        }),
        Just(NeuronParams {
            tau_m: 1.3,
            ..NeuronParams::REFERENCE
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn layer_equals_neuron_by_neuron(
        params in params_strategy(),
        n_out in 0usize..11,
        inputs in prop::collection::vec(prop_oneof![4 => 0.0f64..3.0, 1 => Just(f64::INFINITY)], 0..24),
        seed in any::<u64>(),
    ) {
        let n_in = inputs.len();
        let mut state = seed | 1;
        let weights: Vec<f64> = (0..n_out * n_in)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                3.0 * ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.8
            })
            .collect();
        let mut volley = Volley::new();
        volley.prepare(&inputs, &params);
        let mut out = vec![f64::NAN; n_out];
        layer_spike_times(&params, &volley, &weights, &mut out);
        for (j, t) in out.iter().enumerate() {
            let single = spike_time(&params, &volley, &weights[j * n_in..(j + 1) * n_in]).time;
            prop_assert_eq!(t.to_bits(), single.to_bits(), "neuron {}: {} vs {}", j, t, single);
        }
    }
}
