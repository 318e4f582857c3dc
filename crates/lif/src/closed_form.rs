//! Closed-form spike times and gradients for the two exact kernels, straight from the formulas of
//! the reference work; kept as an independent reference for the implicit-differentiation code
//! and its tests.
//!
//! The one idea: with the sums over the causal set taken relative to a reference time `r` (here
//! the last causal input, so that no exponential can overflow), the textbook formulas hold
//! unchanged with `t_i - r` in place of `t_i` and `T - r` in place of `T`.
//!
//! * `tau_m = tau_s = tau`: `a1 = sum w_i e^{t_i/tau}`, `b = sum w_i (t_i/tau) e^{t_i/tau}`,
//!   `c = g_leak (threshold - e_leak)`, `W = W0(-(c/a1) e^{b/a1})`,
//!   `T = tau (b/a1 - W)`,
//!   `dT/dw_i = -e^{t_i/tau} (T - t_i) / (a1 (1 + W))`,
//!   `dT/dt_i = -w_i e^{t_i/tau} ((T - t_i)/tau - 1) / (a1 (1 + W))`.
//! * `tau_m = 2 tau_s`: `a1 = sum w_i e^{t_i/tau_s}`, `a2 = sum w_i e^{t_i/tau_m}`,
//!   `x = sqrt(a2^2 - 4 a1 c)`, `X = (a2 + x) / (2 a1) = e^{-T/tau_m}`,
//!   `T = 2 tau_s ln(2 a1 / (a2 + x))`,
//!   `dT/dw_i = -tau_m (e^{t_i/tau_m} - e^{t_i/tau_s} X) / x`,
//!   `dT/dt_i = -w_i (e^{t_i/tau_m} - 2 e^{t_i/tau_s} X) / x`.
//!
//! The constants need no adjustment for general `g_leak`: since `C = g_leak tau_m`, the membrane
//! scaled by `g_leak` is `sum_i w_i ((t - t_i)/tau) e^{-(t - t_i)/tau}` (equal constants) and
//! `sum_i w_i (e^{-(t - t_i)/tau_m} - e^{-(t - t_i)/tau_s})` (`tau_m = 2 tau_s`), to be compared
//! with `c`.
//!
//! The Double gradients follow from `F(T) = a2 X - a1 X^2 - c = 0`: `dF/dT = X x / tau_m` at the
//! first crossing, `dF/dw_i = e^{t_i/tau_m} X - e^{t_i/tau_s} X^2`,
//! `dF/dt_i = w_i (e^{t_i/tau_m} X / tau_m - e^{t_i/tau_s} X^2 / tau_s)`.

use crate::lambert_w::w0;
use crate::params::{Kernel, NeuronParams};
use crate::solve::first_spike_time;

/// Spike time and gradients for `tau_m == tau_s` from the Lambert W formulas, at the exact
/// solution. Inputs in any order; non-finite times are ignored. Writes `dT/dw` and `dT/dt_in` in
/// input order (zeros outside the causal set) and returns the closed-form spike time, or
/// `f64::INFINITY` (all gradients zero) for a silent neuron. Allocates.
///
/// # Panics
///
/// If `params.kernel()` is not [`Kernel::Equal`] or the slice lengths differ.
pub fn equal(
    params: &NeuronParams,
    times: &[f64],
    weights: &[f64],
    d_t_d_w: &mut [f64],
    d_t_d_t_in: &mut [f64],
) -> f64 {
    assert_eq!(
        params.kernel(),
        Kernel::Equal,
        "closed_form::equal needs tau_m == tau_s"
    );
    let Some(r) = prepare(params, times, weights, d_t_d_w, d_t_d_t_in) else {
        return f64::INFINITY;
    };
    let (t_spike, tau) = (r.t_spike, params.tau_m);
    let c = params.g_leak * (params.threshold - params.e_leak);
    let mut a1 = 0.0;
    let mut b = 0.0;
    for (&t, &w) in times.iter().zip(weights) {
        if t.is_finite() && t < t_spike {
            let rel = (t - r.reference) / tau;
            a1 += w * rel.exp();
            b += w * rel * rel.exp();
        }
    }
    let z = -(c / a1) * (b / a1).exp();
    // At a grazing crossing rounding may push z just below -1/e.
    let lambert = w0(z.max(-(-1.0f64).exp()));
    let t_closed = r.reference + tau * (b / a1 - lambert);
    let denom = a1 * (1.0 + lambert);
    for (i, (&t, &w)) in times.iter().zip(weights).enumerate() {
        if t.is_finite() && t < t_spike {
            let e = ((t - r.reference) / tau).exp();
            d_t_d_w[i] = -e * (t_closed - t) / denom;
            d_t_d_t_in[i] = -w * e * ((t_closed - t) / tau - 1.0) / denom;
        }
    }
    t_closed
}

/// Spike time and gradients for `tau_m == 2 tau_s` from the quadratic formulas, at the exact
/// solution; conventions as for [`equal`].
///
/// # Panics
///
/// If `params.kernel()` is not [`Kernel::Double`] or the slice lengths differ.
pub fn double(
    params: &NeuronParams,
    times: &[f64],
    weights: &[f64],
    d_t_d_w: &mut [f64],
    d_t_d_t_in: &mut [f64],
) -> f64 {
    assert_eq!(
        params.kernel(),
        Kernel::Double,
        "closed_form::double needs tau_m == 2 tau_s"
    );
    let Some(r) = prepare(params, times, weights, d_t_d_w, d_t_d_t_in) else {
        return f64::INFINITY;
    };
    let (tau_m, tau_s) = (params.tau_m, params.tau_s);
    let c = params.g_leak * (params.threshold - params.e_leak);
    let mut a1 = 0.0;
    let mut a2 = 0.0;
    for (&t, &w) in times.iter().zip(weights) {
        if t.is_finite() && t < r.t_spike {
            a1 += w * ((t - r.reference) / tau_s).exp();
            a2 += w * ((t - r.reference) / tau_m).exp();
        }
    }
    let x = (a2 * a2 - 4.0 * a1 * c).max(0.0).sqrt();
    let big_x = (a2 + x) / (2.0 * a1);
    let t_closed = r.reference + 2.0 * tau_s * (2.0 * a1 / (a2 + x)).ln();
    for (i, (&t, &w)) in times.iter().zip(weights).enumerate() {
        if t.is_finite() && t < r.t_spike {
            let em = ((t - r.reference) / tau_m).exp();
            let es = ((t - r.reference) / tau_s).exp();
            d_t_d_w[i] = -tau_m * (em - es * big_x) / x;
            d_t_d_t_in[i] = -w * (em - 2.0 * es * big_x) / x;
        }
    }
    t_closed
}

struct Causal {
    t_spike: f64,
    reference: f64,
}

/// Zeroes the outputs, finds the exact spike time and the reference time (last causal input).
fn prepare(
    params: &NeuronParams,
    times: &[f64],
    weights: &[f64],
    d_t_d_w: &mut [f64],
    d_t_d_t_in: &mut [f64],
) -> Option<Causal> {
    assert_eq!(
        times.len(),
        weights.len(),
        "closed_form: one weight per input time"
    );
    assert_eq!(
        times.len(),
        d_t_d_w.len(),
        "closed_form: one dT/dw entry per input"
    );
    assert_eq!(
        times.len(),
        d_t_d_t_in.len(),
        "closed_form: one dT/dt_in entry per input"
    );
    d_t_d_w.fill(0.0);
    d_t_d_t_in.fill(0.0);
    let t_spike = first_spike_time(params, times, weights);
    if !t_spike.is_finite() {
        return None;
    }
    let reference = times
        .iter()
        .copied()
        .filter(|&t| t.is_finite() && t < t_spike)
        .fold(f64::NEG_INFINITY, f64::max);
    if !reference.is_finite() {
        return None;
    }
    Some(Causal { t_spike, reference })
}
