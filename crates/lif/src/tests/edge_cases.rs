//! Exact values of simple cases, invariances and edge cases of the spike-time solvers.

use crate::{
    Kernel, NeuronParams, Spike, Volley, first_spike_time, gradients_at, membrane_potential,
    spike_time, spike_time_sorted,
};

const REF: NeuronParams = NeuronParams::REFERENCE;
const DOUBLE: NeuronParams = NeuronParams {
    tau_m: 2.0,
    tau_s: 1.0,
    g_leak: 1.0,
    e_leak: 0.0,
    threshold: 1.0,
};
const GENERAL: NeuronParams = NeuronParams {
    tau_m: 1.7,
    tau_s: 0.6,
    g_leak: 0.8,
    e_leak: -0.3,
    threshold: 0.4,
};
const GENERAL_SLOW_SYNAPSE: NeuronParams = NeuronParams {
    tau_m: 0.5,
    tau_s: 1.25,
    g_leak: 1.3,
    e_leak: 0.1,
    threshold: 0.9,
};
const ALL: [NeuronParams; 4] = [REF, DOUBLE, GENERAL, GENERAL_SLOW_SYNAPSE];

/// Spike through the volley path, checked against the two other entry points.
fn fire(params: &NeuronParams, times: &[f64], weights: &[f64]) -> Spike {
    let mut volley = Volley::new();
    volley.prepare(times, params);
    let s = spike_time(params, &volley, weights);
    assert!(!s.time.is_nan());
    assert_eq!(
        first_spike_time(params, times, weights).to_bits(),
        s.time.to_bits()
    );
    s
}

#[test]
fn single_input_exact_values() {
    // Equal, reference neuron: w t e^-t = 1 -> t = -W0(-1/w); values from 50-digit arithmetic.
    let s = fire(&REF, &[0.0], &[4.0]);
    assert!((s.time - 0.357_402_956_181_388_9).abs() <= 2e-16);
    assert_eq!(s.causal_len, 1);
    let s = fire(&REF, &[2.5], &[3.0]);
    assert!((s.time - 2.5 - 0.619_061_286_735_945_1).abs() <= 1e-15);
    // Double: 5 (X - X^2) = 1, X = e^{-t/2} -> t = -2 ln((1 + sqrt(1/5)) / 2).
    let s = fire(&DOUBLE, &[0.0], &[5.0]);
    assert!((s.time - 0.647_014_262_314_893_5).abs() <= 2e-16);
}

#[test]
fn membrane_at_spike_is_threshold() {
    // Exact math: u(T) = threshold to rounding, for every kernel and several input patterns.
    let patterns: [(&[f64], &[f64]); 4] = [
        (&[0.0], &[3.0]),
        (&[0.0, 0.3, 0.7], &[1.2, -0.5, 2.5]),
        (&[-1.0, 0.2, 0.2, 1.5, 4.0], &[0.8, 0.9, 0.6, 1.1, -3.0]),
        (&[0.5, 0.1, 2.0], &[4.0, -0.2, 0.1]),
    ];
    for params in &ALL {
        let scale = crate::tests::support::single_input_threshold_weight(params);
        for (times, w) in patterns {
            let weights: Vec<f64> = w.iter().map(|x| x * scale).collect();
            let t = fire(params, times, &weights).time;
            assert!(t.is_finite(), "{params:?} {times:?}");
            let u = membrane_potential(params, times, &weights, t);
            let theta = params.threshold - params.e_leak;
            assert!(
                (u - params.threshold).abs() <= 1e-13 * theta,
                "{params:?}: u(T) = {u}"
            );
            // And just before T the membrane is below threshold.
            assert!(membrane_potential(params, times, &weights, t - 1e-9) < params.threshold);
        }
    }
}

#[test]
fn no_inputs_and_silent_inputs() {
    for params in &ALL {
        assert_eq!(fire(params, &[], &[]), Spike::SILENT);
        let inf = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY];
        assert_eq!(fire(params, &inf, &[5.0, 100.0, 100.0]), Spike::SILENT);
        assert_eq!(spike_time_sorted(params, &[], &[]), Spike::SILENT);
        // Silent inputs do not change the result.
        let scale = crate::tests::support::single_input_threshold_weight(params);
        let base = fire(params, &[0.1, 0.4], &[0.8 * scale, 0.9 * scale]);
        let with_silent = fire(
            params,
            &[f64::INFINITY, 0.1, f64::INFINITY, 0.4],
            &[1e6, 0.8 * scale, -1e6, 0.9 * scale],
        );
        assert_eq!(base.time.to_bits(), with_silent.time.to_bits());
        assert!(base.time.is_finite());
    }
}

#[test]
fn inhibitory_and_zero_weights_never_fire() {
    for params in &ALL {
        let times = [0.0, 0.5, 1.0, 3.0];
        assert_eq!(
            fire(params, &times, &[-1.0, -2.0, -0.5, -10.0]),
            Spike::SILENT
        );
        assert_eq!(fire(params, &times, &[0.0; 4]), Spike::SILENT);
        // Inhibition first, then a weak excitation that cannot overcome it.
        assert_eq!(fire(params, &[0.0, 0.1], &[-50.0, 1e-3]), Spike::SILENT);
    }
}

#[test]
fn grazing_threshold_is_finite_or_silent() {
    // Single input whose PSP peak is exactly at threshold in exact arithmetic; nearby weights
    // land on either side. The result must never be NaN, and a spike must sit at the peak time
    // to within the sqrt(eps) conditioning of a grazing crossing.
    for params in &ALL {
        let w_graze = crate::tests::support::single_input_threshold_weight(params);
        let t_peak = if params.tau_m == params.tau_s {
            params.tau_m
        } else {
            (params.tau_m / params.tau_s).ln() / (1.0 / params.tau_s - 1.0 / params.tau_m)
        };
        let mut fired = 0;
        for k in -40i32..=40 {
            let w = w_graze * (1.0 + k as f64 * f64::EPSILON);
            let s = fire(params, &[0.0], &[w]);
            assert!(!s.time.is_nan());
            if s.time.is_finite() {
                fired += 1;
                assert!(
                    (s.time - t_peak).abs() <= 1e-6,
                    "{params:?}, k = {k}: {}",
                    s.time
                );
            }
            // Gradients at a grazing crossing: zero or finite, never NaN.
            let mut volley = Volley::new();
            volley.prepare(&[0.0], params);
            let (mut gw, mut gt) = ([0.0], [0.0]);
            let slope = gradients_at(params, &volley, &[w], s.time, &mut gw, &mut gt);
            assert!(!slope.is_nan() && gw[0].is_finite() && gt[0].is_finite());
        }
        assert!(fired > 0, "{params:?}");
        assert!(
            fire(params, &[0.0], &[w_graze * (1.0 - 1e-9)])
                .time
                .is_infinite()
        );
        assert!(
            fire(params, &[0.0], &[w_graze * (1.0 + 1e-9)])
                .time
                .is_finite()
        );
    }
}

#[test]
fn simultaneous_inputs_add_up() {
    for params in &ALL {
        let scale = crate::tests::support::single_input_threshold_weight(params);
        let one = fire(params, &[0.25], &[3.0 * scale]);
        let two = fire(params, &[0.25, 0.25], &[1.5 * scale, 1.5 * scale]);
        assert!((one.time - two.time).abs() <= 1e-15, "{params:?}");
        assert_eq!(two.causal_len, 2);
        // Three at the same time, one inhibitory, in a longer volley.
        let s = fire(
            params,
            &[0.25, 1.0, 0.25, 0.25],
            &[2.0 * scale, 0.1, 2.0 * scale, -scale],
        );
        assert!((s.time - one.time).abs() <= 1e-14, "{params:?}");
    }
}

#[test]
fn unsorted_inputs_give_identical_results() {
    let times = [0.7, -0.2, 1.9, 0.05, 1.1];
    for params in &ALL {
        let scale = crate::tests::support::single_input_threshold_weight(params);
        let weights: Vec<f64> = [0.6, 0.3, 0.9, -0.2, 0.5]
            .iter()
            .map(|w| w * scale)
            .collect();
        let reference = fire(params, &times, &weights);
        assert!(reference.time.is_finite());
        // All rotations and the reversal.
        for r in 0..times.len() {
            let mut t = times.to_vec();
            let mut w = weights.clone();
            t.rotate_left(r);
            w.rotate_left(r);
            assert_eq!(fire(params, &t, &w), reference);
            t.reverse();
            w.reverse();
            assert_eq!(fire(params, &t, &w), reference);
        }
    }
}

#[test]
fn shift_and_scale_invariance_including_negative_and_large_times() {
    let times = [0.0, 0.4, 0.45, 1.3, 2.0];
    for params in &ALL {
        let scale = crate::tests::support::single_input_threshold_weight(params);
        let weights: Vec<f64> = [0.5, 0.4, -0.1, 0.6, 0.3]
            .iter()
            .map(|w| w * scale)
            .collect();
        let base = fire(params, &times, &weights).time;
        assert!(base.is_finite());
        for shift in [-3.75, -1e-3, 17.0, 1000.0, 12345.5] {
            let shifted: Vec<f64> = times.iter().map(|t| t + shift).collect();
            let t = fire(params, &shifted, &weights).time;
            // Relative to the magnitude of the times involved.
            let tol = 1e-13 * (1.0 + shift.abs());
            assert!(
                (t - shift - base).abs() <= tol,
                "{params:?} shift {shift}: {t}"
            );
        }
        // Scaling every time and both time constants by 2 scales the spike time by 2
        // (weights fixed, g_leak fixed: C doubles along with the kernel's integral).
        let scaled = NeuronParams {
            tau_m: 2.0 * params.tau_m,
            tau_s: 2.0 * params.tau_s,
            ..*params
        };
        let t2: Vec<f64> = times.iter().map(|t| 2.0 * t).collect();
        let t = fire(&scaled, &t2, &weights).time;
        assert!(
            (t - 2.0 * base).abs() <= 1e-13,
            "{params:?}: {t} vs {}",
            2.0 * base
        );
    }
}

#[test]
fn inputs_spread_over_a_thousand_time_constants() {
    // exp(t/tau) would overflow at t ~ 710 tau; nothing here may.
    for params in &ALL {
        let scale = crate::tests::support::single_input_threshold_weight(params);
        let times = [0.0, 400.0, 999.0, 999.3];
        let weights = [0.5 * scale, 0.6 * scale, 0.7 * scale, 0.7 * scale];
        let t = fire(params, &times, &weights).time;
        let alone = fire(params, &[0.0, 0.3], &[0.7 * scale, 0.7 * scale]).time;
        assert!((t - 999.0 - alone).abs() <= 1e-12, "{params:?}: {t}");
        let late = fire(params, &[1e3, 1e3 + 1.0], &[2.0 * scale, 0.0]).time;
        assert!(late.is_finite() && late > 1e3);
    }
}

#[test]
fn spike_before_strong_inhibition_keeps_its_causal_set() {
    for params in &ALL {
        let scale = crate::tests::support::single_input_threshold_weight(params);
        let early = fire(params, &[0.0, 0.2], &[1.5 * scale, 1.5 * scale]);
        assert!(early.time.is_finite());
        assert_eq!(early.causal_len, 2);
        let after = early.time + 1e-6;
        let times = [0.0, after, 0.2];
        let weights = [1.5 * scale, -1e3 * scale, 1.5 * scale];
        let s = fire(params, &times, &weights);
        assert!(
            (s.time - early.time).abs() <= 4.0 * f64::EPSILON * early.time,
            "{params:?}"
        );
        assert_eq!(s.causal_len, 2);
        // The inhibitory input is outside the causal set: zero gradients for it.
        let mut volley = Volley::new();
        volley.prepare(&times, params);
        let (mut gw, mut gt) = ([0.0; 3], [0.0; 3]);
        let slope = gradients_at(params, &volley, &weights, s.time, &mut gw, &mut gt);
        assert!(slope > 0.0);
        assert_eq!((gw[1], gt[1]), (0.0, 0.0));
        assert!(gw[0] < 0.0 && gw[2] < 0.0);
        // Moved just before the spike, the same inhibition silences the neuron, or at least
        // delays it past the original time.
        let before = [0.0, early.time - 1e-3, 0.2];
        let t = fire(params, &before, &weights).time;
        assert!(t > early.time);
    }
}

#[test]
fn later_excitation_can_rescue_a_subthreshold_prefix() {
    // First input alone peaks below threshold; a second one later makes it fire after t_2.
    for params in &ALL {
        let scale = crate::tests::support::single_input_threshold_weight(params);
        let s = fire(
            params,
            &[0.0, 2.0 * params.tau_m.max(params.tau_s)],
            &[0.9 * scale, 0.9 * scale],
        );
        assert!(
            s.time > 2.0 * params.tau_m.max(params.tau_s),
            "{params:?}: {s:?}"
        );
        assert_eq!(s.causal_len, 2, "{params:?}");
        // A membrane peak inside the first interval that reaches threshold wins instead.
        let s = fire(params, &[0.0, 20.0], &[1.2 * scale, 5.0 * scale]);
        assert!(s.time < 20.0);
        assert_eq!(s.causal_len, 1);
    }
}

#[test]
fn kernels_are_what_params_say() {
    assert_eq!(REF.kernel(), Kernel::Equal);
    assert_eq!(DOUBLE.kernel(), Kernel::Double);
    assert_eq!(GENERAL.kernel(), Kernel::General);
    assert_eq!(GENERAL_SLOW_SYNAPSE.kernel(), Kernel::General);
}

#[test]
fn extreme_weights_do_not_produce_nan() {
    for params in &ALL {
        for w in [1e300, -1e300, 1e-300, f64::MIN_POSITIVE, 5e-324] {
            for times in [[0.0, 0.5], [0.0, 1e3], [-1e3, 1e3]] {
                let s = fire(params, &times, &[w, 1.0]);
                assert!(s.time.is_infinite() || s.time >= times[0]);
                let s = fire(params, &times, &[1.0, w]);
                assert!(s.time.is_infinite() || s.time >= times[0]);
            }
        }
    }
}
