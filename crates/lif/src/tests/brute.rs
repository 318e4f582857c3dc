//! The exact solvers against brute-force integration of the ODE, and a never-NaN property.

use super::support::{Ratio, brute_force, grazing, neuron};
use crate::{NeuronParams, Volley, first_spike_time, spike_time, spike_time_sorted};
use proptest::prelude::*;

/// RK4 step in units of the fastest time constant; its global error (~1e-11) is far below the
/// tolerance.
const STEP: f64 = 4e-3;
/// Agreement required between exact and brute-force crossing times, in units of `tau_s` (the
/// integration itself is good to ~3e-10 here).
const TOL: f64 = 1e-8;
/// Cases with a membrane maximum within this fraction of threshold are skipped: their first
/// crossing is ill-conditioned (the brute force could land on either side).
const GRAZING_MARGIN: f64 = 1e-3;

fn check_against_brute(
    params: &NeuronParams,
    times: &[f64],
    weights: &[f64],
) -> Result<(), TestCaseError> {
    let exact = first_spike_time(params, times, weights);
    prop_assert!(!exact.is_nan());
    // All entry points agree bit for bit.
    let mut volley = Volley::new();
    volley.prepare(times, params);
    let fast = spike_time(params, &volley, weights);
    prop_assert_eq!(fast.time.to_bits(), exact.to_bits());
    let sorted: Vec<f64> = volley.sorted_times().to_vec();
    let sorted_w: Vec<f64> = volley
        .order()
        .iter()
        .map(|&i| weights[i as usize])
        .collect();
    prop_assert_eq!(spike_time_sorted(params, &sorted, &sorted_w), fast);

    let h = STEP * params.tau_m.min(params.tau_s);
    let brute = brute_force(params, times, weights, h);
    prop_assume!(!grazing(params, &brute, GRAZING_MARGIN));
    match brute.crossing {
        Some(t) => {
            let tol = TOL * params.tau_s;
            prop_assert!(
                (exact - t).abs() <= tol,
                "exact {} vs brute force {}",
                exact,
                t
            );
        }
        None => {
            // The integration horizon ends 40 tau after the last input; beyond it the exact
            // solver may still (rarely) find a slow crossing.
            let last = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let horizon = last + 40.0 * params.tau_m.max(params.tau_s);
            prop_assert!(
                exact.is_infinite() || exact > horizon,
                "exact {} vs silent",
                exact
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(super::support::config(256))]

    #[test]
    fn equal_kernel_matches_integration((p, t, w) in neuron(Ratio::Equal)) {
        check_against_brute(&p, &t, &w)?;
    }

    #[test]
    fn double_kernel_matches_integration((p, t, w) in neuron(Ratio::Double)) {
        check_against_brute(&p, &t, &w)?;
    }

    #[test]
    fn general_kernel_matches_integration((p, t, w) in neuron(Ratio::Range(1.05, 4.0))) {
        check_against_brute(&p, &t, &w)?;
    }

    #[test]
    fn general_kernel_with_slow_synapse_matches_integration(
        (p, t, w) in neuron(Ratio::Range(0.25, 0.95))
    ) {
        check_against_brute(&p, &t, &w)?;
    }

    #[test]
    fn general_kernel_near_equal_constants_matches_integration((p, t, w) in neuron(Ratio::NearOne)) {
        check_against_brute(&p, &t, &w)?;
    }
}

/// Any valid parameters, times anywhere in `[-1e3, 1e3]` (and silent), weights over many orders
/// of magnitude of both signs.
fn wild() -> impl Strategy<Value = (NeuronParams, Vec<f64>, Vec<f64>)> {
    let params = (
        prop_oneof![Just(0usize), Just(1), Just(2)],
        0.05f64..20.0,
        0.05f64..20.0,
        0.01f64..100.0,
        -10.0f64..10.0,
        1e-6f64..10.0,
    )
        .prop_map(|(kind, tau_s, tau_m, g_leak, e_leak, theta)| NeuronParams {
            tau_m: match kind {
                0 => tau_s,
                1 => 2.0 * tau_s,
                _ => tau_m,
            },
            tau_s,
            g_leak,
            e_leak,
            threshold: e_leak + theta,
        });
    let time = prop_oneof![
        8 => -1e3f64..1e3,
        4 => -2.0f64..5.0,
        1 => Just(f64::INFINITY),
        1 => Just(0.0),
    ];
    let weight = (-1.0f64..1.0, -6i32..6).prop_map(|(m, e)| m * 10f64.powi(e));
    (params, prop::collection::vec((time, weight), 0..40)).prop_map(|(p, inputs)| {
        let (t, w) = inputs.into_iter().unzip();
        (p, t, w)
    })
}

proptest! {
    #![proptest_config(super::support::config(512))]

    #[test]
    fn never_nan((p, t, w) in wild()) {
        let mut volley = Volley::new();
        volley.prepare(&t, &p);
        let s = spike_time(&p, &volley, &w);
        prop_assert!(!s.time.is_nan());
        prop_assert!(s.time == f64::INFINITY || s.time.is_finite());
        if s.time.is_finite() {
            // Causal: not before the first input of the causal set, not after its last gap.
            let sorted = volley.sorted_times();
            prop_assert!(s.causal_len >= 1 && s.causal_len <= sorted.len());
            prop_assert!(s.time >= sorted[s.causal_len - 1]);
            if s.causal_len < sorted.len() {
                prop_assert!(s.time <= sorted[s.causal_len]);
            }
        } else {
            prop_assert_eq!(s.causal_len, 0);
        }
        let (mut gw, mut gt) = (vec![0.0; t.len()], vec![0.0; t.len()]);
        let slope = crate::gradients_at(&p, &volley, &w, s.time, &mut gw, &mut gt);
        prop_assert!(!slope.is_nan());
        prop_assert!(gw.iter().chain(&gt).all(|g| g.is_finite()));
    }
}
