//! The three solvers against each other where their domains meet.

use super::support::{Ratio, neuron};
use crate::params::Consts;
use crate::solve::solve_sorted_with;
use crate::{Kernel, NeuronParams, first_spike_time, gradients_at_inputs};
use proptest::prelude::*;

/// Runs the general (root-finding) solver regardless of what the parameters select.
fn general_forced(params: &NeuronParams, times: &[f64], weights: &[f64]) -> f64 {
    let mut pairs: Vec<(f64, f64)> = times.iter().copied().zip(weights.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (t, w): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
    solve_sorted_with(&Consts::new(params), Kernel::General, &t, &w).time
}

/// Membrane slope du/dt at `t`, to recognise grazing crossings.
fn slope_at(params: &NeuronParams, times: &[f64], weights: &[f64], t: f64) -> f64 {
    let n = times.len();
    let (mut gw, mut gt) = (vec![0.0; n], vec![0.0; n]);
    gradients_at_inputs(params, times, weights, t, &mut gw, &mut gt)
}

/// Two solutions of the same problem agree to `tol`, or the neuron grazes threshold (one fires
/// with an almost flat membrane while the other stays silent).
fn agree(
    params: &NeuronParams,
    times: &[f64],
    weights: &[f64],
    a: f64,
    b: f64,
    tol: f64,
) -> Result<(), TestCaseError> {
    prop_assert!(!a.is_nan() && !b.is_nan());
    if a.is_finite() != b.is_finite() {
        let t = if a.is_finite() { a } else { b };
        let theta = params.threshold - params.e_leak;
        let slope = slope_at(params, times, weights, t);
        prop_assert!(
            slope.abs() <= 1e-4 * theta / params.tau_s,
            "{} vs {}, slope {}",
            a,
            b,
            slope
        );
    } else if a.is_finite() {
        prop_assert!((a - b).abs() <= tol * (1.0 + a.abs()), "{} vs {}", a, b);
    }
    Ok(())
}

proptest! {
    #![proptest_config(super::support::config(256))]

    /// The general solver on equal time constants (its `delta = 0` limit) reproduces Lambert W.
    #[test]
    fn general_equals_lambert_at_equal_constants((p, t, w) in neuron(Ratio::Equal)) {
        let a = first_spike_time(&p, &t, &w);
        let b = general_forced(&p, &t, &w);
        agree(&p, &t, &w, a, b, 1e-13)?;
    }

    /// The general solver at exactly `tau_m = 2 tau_s` reproduces the quadratic closed form.
    #[test]
    fn general_equals_quadratic_at_double_constants((p, t, w) in neuron(Ratio::Double)) {
        let a = first_spike_time(&p, &t, &w);
        let b = general_forced(&p, &t, &w);
        agree(&p, &t, &w, a, b, 1e-13)?;
    }

    /// Approaching `tau_m = tau_s` from both sides: the mean of the two general solutions at
    /// `tau_m = tau_s (1 +- eps)` equals the Lambert W solution up to `O(eps^2)`. With
    /// `eps = 1e-7` that is far below 1e-12, so the check measures the general solver's own
    /// accuracy near ratio 1 (a kernel with cancellation would be off by ~eps_mach / eps = 2e-9).
    #[test]
    fn general_converges_to_equal((p, t, w) in neuron(Ratio::Equal)) {
        let eps = 1e-7;
        let t0 = first_spike_time(&p, &t, &w);
        let plus = NeuronParams { tau_m: p.tau_s * (1.0 + eps), ..p };
        let minus = NeuronParams { tau_m: p.tau_s * (1.0 - eps), ..p };
        prop_assert_eq!(plus.kernel(), Kernel::General);
        let tp = first_spike_time(&plus, &t, &w);
        let tm = first_spike_time(&minus, &t, &w);
        prop_assume!(t0.is_finite() && tp.is_finite() && tm.is_finite());
        let theta = p.threshold - p.e_leak;
        prop_assume!(slope_at(&p, &t, &w, t0) > 0.05 * theta / p.tau_s);
        prop_assert!((0.5 * (tp + tm) - t0).abs() <= 1e-11 * (1.0 + t0.abs()),
            "Lambert {} vs mean {} ({} / {})", t0, 0.5 * (tp + tm), tp, tm);
        // First order: the two sides differ by O(eps), not more.
        prop_assert!((tp - tm).abs() <= 1e-5 * (1.0 + t0.abs()));
    }

    /// The same around `tau_m = 2 tau_s`.
    #[test]
    fn general_converges_to_double((p, t, w) in neuron(Ratio::Double)) {
        let eps = 1e-7;
        let t0 = first_spike_time(&p, &t, &w);
        let plus = NeuronParams { tau_m: p.tau_m * (1.0 + eps), ..p };
        let minus = NeuronParams { tau_m: p.tau_m * (1.0 - eps), ..p };
        let tp = first_spike_time(&plus, &t, &w);
        let tm = first_spike_time(&minus, &t, &w);
        prop_assume!(t0.is_finite() && tp.is_finite() && tm.is_finite());
        let theta = p.threshold - p.e_leak;
        prop_assume!(slope_at(&p, &t, &w, t0) > 0.05 * theta / p.tau_s);
        prop_assert!((0.5 * (tp + tm) - t0).abs() <= 1e-11 * (1.0 + t0.abs()),
            "quadratic {} vs mean {}", t0, 0.5 * (tp + tm));
    }
}

#[test]
fn general_solver_is_continuous_through_ratio_one() {
    // Spike time as tau_m sweeps through tau_s: successive differences stay proportional to the
    // step (no jump at the kernel switch, no noise from cancellation).
    let times = [0.0, 0.3, 1.1];
    let weights = [2.0, 1.5, 0.5];
    let at = |r: f64| {
        first_spike_time(
            &NeuronParams {
                tau_m: r,
                ..NeuronParams::REFERENCE
            },
            &times,
            &weights,
        )
    };
    let t_equal = at(1.0);
    assert!(t_equal.is_finite());
    let slope = (at(1.0 + 1e-6) - at(1.0 - 1e-6)) / 2e-6;
    for k in 1..=12 {
        let d = 10f64.powi(-k);
        for r in [1.0 + d, 1.0 - d] {
            let predicted = t_equal + slope * (r - 1.0);
            // Second-order term ~d^2, plus the solver's own error (~1e-15).
            assert!(
                (at(r) - predicted).abs() <= 10.0 * d * d + 1e-14,
                "ratio {r}"
            );
        }
    }
}
