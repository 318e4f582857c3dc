//! Gradients: implicit differentiation against the closed forms, finite differences of the
//! spike time, and numerical derivatives of the membrane at measured (non-exact) times.

use super::support::{Ratio, neuron};
use crate::{
    NeuronParams, Volley, closed_form, first_spike_time, gradients_at, gradients_at_inputs,
    membrane_potential,
};
use proptest::prelude::*;

struct Grad {
    slope: f64,
    d_w: Vec<f64>,
    d_t: Vec<f64>,
}

/// Implicit gradients through the volley path, checked against the volley-free path.
fn implicit(params: &NeuronParams, times: &[f64], weights: &[f64], t_out: f64) -> Grad {
    let n = times.len();
    let mut volley = Volley::new();
    volley.prepare(times, params);
    let (mut d_w, mut d_t) = (vec![f64::NAN; n], vec![f64::NAN; n]);
    let slope = gradients_at(params, &volley, weights, t_out, &mut d_w, &mut d_t);
    let (mut d_w2, mut d_t2) = (vec![f64::NAN; n], vec![f64::NAN; n]);
    let slope2 = gradients_at_inputs(params, times, weights, t_out, &mut d_w2, &mut d_t2);
    // Same formulas, decay factors obtained differently: agreement to rounding.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * (a.abs() + b.abs()) + 1e-300;
    assert!(close(slope, slope2), "{slope} vs {slope2}");
    for i in 0..n {
        assert!(
            close(d_w[i], d_w2[i]) || (d_w[i] - d_w2[i]).abs() < 1e-13,
            "{d_w:?} vs {d_w2:?}"
        );
        assert!(
            close(d_t[i], d_t2[i]) || (d_t[i] - d_t2[i]).abs() < 1e-13,
            "{d_t:?} vs {d_t2:?}"
        );
    }
    Grad { slope, d_w, d_t }
}

/// Skips cases whose spike time is not a smooth function of the inputs nearby: silent, almost
/// grazing (slope below `min_slope` in units of threshold per tau_s), or an input within
/// `gap` of the spike (the causal set would change under perturbation).
fn smooth_case(
    params: &NeuronParams,
    times: &[f64],
    weights: &[f64],
    min_slope: f64,
    gap: f64,
) -> Option<f64> {
    let t = first_spike_time(params, times, weights);
    if !t.is_finite() {
        return None;
    }
    if times.iter().any(|&ti| (ti - t).abs() < gap * params.tau_s) {
        return None;
    }
    let n = times.len();
    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
    let slope = gradients_at_inputs(params, times, weights, t, &mut a, &mut b);
    let theta = params.threshold - params.e_leak;
    (slope > min_slope * theta / params.tau_s).then_some(t)
}

fn check_finite_differences(
    params: &NeuronParams,
    times: &[f64],
    weights: &[f64],
) -> Result<(), TestCaseError> {
    let t = smooth_case(params, times, weights, 0.05, 1e-3);
    prop_assume!(t.is_some());
    let t = t.unwrap_or_default();
    let g = implicit(params, times, weights, t);
    prop_assert!(g.slope > 0.0);
    // Central differences with step h: truncation ~h^2, rounding ~1e-15 / h.
    let h = 1e-6;
    for i in 0..times.len() {
        let mut w = weights.to_vec();
        let dw = h * weights[i].abs().max(1.0);
        w[i] = weights[i] + dw;
        let up = first_spike_time(params, times, &w);
        w[i] = weights[i] - dw;
        let down = first_spike_time(params, times, &w);
        let fd_w = (up - down) / (2.0 * dw);
        let mut ts = times.to_vec();
        let dt = h * params.tau_s;
        ts[i] = times[i] + dt;
        let up = first_spike_time(params, &ts, weights);
        ts[i] = times[i] - dt;
        let down = first_spike_time(params, &ts, weights);
        let fd_t = (up - down) / (2.0 * dt);
        let tol = |x: f64| 1e-5 * x.abs() + 1e-7;
        prop_assert!(
            (fd_w - g.d_w[i]).abs() <= tol(fd_w),
            "dT/dw[{}]: fd {} vs {}",
            i,
            fd_w,
            g.d_w[i]
        );
        prop_assert!(
            (fd_t - g.d_t[i]).abs() <= tol(fd_t),
            "dT/dt[{}]: fd {} vs {}",
            i,
            fd_t,
            g.d_t[i]
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(super::support::config(128))]

    #[test]
    fn finite_differences_equal((p, t, w) in neuron(Ratio::Equal)) {
        check_finite_differences(&p, &t, &w)?;
    }

    #[test]
    fn finite_differences_double((p, t, w) in neuron(Ratio::Double)) {
        check_finite_differences(&p, &t, &w)?;
    }

    #[test]
    fn finite_differences_general((p, t, w) in neuron(Ratio::Range(0.3, 3.0))) {
        check_finite_differences(&p, &t, &w)?;
    }

    #[test]
    fn finite_differences_general_near_one((p, t, w) in neuron(Ratio::NearOne)) {
        check_finite_differences(&p, &t, &w)?;
    }
}

proptest! {
    #![proptest_config(super::support::config(256))]

    /// Implicit gradients at the exact solution equal the Lambert W closed forms.
    #[test]
    fn implicit_matches_closed_form_equal((p, t, w) in neuron(Ratio::Equal)) {
        let t_spike = smooth_case(&p, &t, &w, 1e-3, 0.0);
        prop_assume!(t_spike.is_some());
        let t_spike = t_spike.unwrap_or_default();
        let n = t.len();
        let (mut cw, mut ct) = (vec![f64::NAN; n], vec![f64::NAN; n]);
        let t_closed = closed_form::equal(&p, &t, &w, &mut cw, &mut ct);
        // The closed form itself is conditioned by 1 / (1 + W), i.e. by 1 / slope.
        prop_assert!((t_closed - t_spike).abs() <= 1e-12 * (1.0 + t_spike.abs()) / (1.0 + 0.0));
        let g = implicit(&p, &t, &w, t_spike);
        for i in 0..n {
            prop_assert!((cw[i] - g.d_w[i]).abs() <= 1e-9 * (1.0 + cw[i].abs()), "{:?} vs {:?}", cw, g.d_w);
            prop_assert!((ct[i] - g.d_t[i]).abs() <= 1e-9 * (1.0 + ct[i].abs()), "{:?} vs {:?}", ct, g.d_t);
        }
    }

    /// Implicit gradients at the exact solution equal the quadratic closed forms.
    #[test]
    fn implicit_matches_closed_form_double((p, t, w) in neuron(Ratio::Double)) {
        let t_spike = smooth_case(&p, &t, &w, 1e-3, 0.0);
        prop_assume!(t_spike.is_some());
        let t_spike = t_spike.unwrap_or_default();
        let n = t.len();
        let (mut cw, mut ct) = (vec![f64::NAN; n], vec![f64::NAN; n]);
        let t_closed = closed_form::double(&p, &t, &w, &mut cw, &mut ct);
        prop_assert!((t_closed - t_spike).abs() <= 1e-12 * (1.0 + t_spike.abs()));
        let g = implicit(&p, &t, &w, t_spike);
        for i in 0..n {
            prop_assert!((cw[i] - g.d_w[i]).abs() <= 1e-9 * (1.0 + cw[i].abs()), "{:?} vs {:?}", cw, g.d_w);
            prop_assert!((ct[i] - g.d_t[i]).abs() <= 1e-9 * (1.0 + ct[i].abs()), "{:?} vs {:?}", ct, g.d_t);
        }
    }

    /// At a measured time that is not the model's solution, the gradients are still the
    /// implicit-function ratios -(du/dx) / (du/dt), checked against numerical derivatives of the
    /// membrane potential itself.
    #[test]
    fn measured_time_matches_membrane_derivatives(
        (p, t, w) in neuron(Ratio::Range(0.3, 3.0)),
        offset in -0.3f64..0.3,
        equal in any::<bool>(),
    ) {
        let p = if equal { NeuronParams { tau_m: p.tau_s, ..p } } else { p };
        let t_spike = first_spike_time(&p, &t, &w);
        prop_assume!(t_spike.is_finite());
        let t_meas = t_spike + offset * p.tau_s;
        prop_assume!(t.iter().all(|&ti| (ti - t_meas).abs() > 1e-3 * p.tau_s));
        let g = implicit(&p, &t, &w, t_meas);
        let h = 1e-6 * p.tau_s;
        let u = |times: &[f64], weights: &[f64], at: f64| membrane_potential(&p, times, weights, at);
        let du_dt = (u(&t, &w, t_meas + h) - u(&t, &w, t_meas - h)) / (2.0 * h);
        let theta = p.threshold - p.e_leak;
        prop_assert!((g.slope - du_dt).abs() <= 1e-6 * theta / p.tau_s + 1e-6 * du_dt.abs(),
            "slope {} vs numerical {}", g.slope, du_dt);
        if g.slope <= 1e-2 * theta / p.tau_s {
            // Falling or flat membrane: no gradient at all.
            if g.slope <= 0.0 {
                prop_assert!(g.d_w.iter().chain(&g.d_t).all(|&x| x == 0.0));
            }
            return Ok(());
        }
        for i in 0..t.len() {
            let mut wp = w.clone();
            wp[i] += h;
            let mut wm = w.clone();
            wm[i] -= h;
            let du_dw = (u(&t, &wp, t_meas) - u(&t, &wm, t_meas)) / (2.0 * h);
            let mut tp = t.clone();
            tp[i] += h;
            let mut tm = t.clone();
            tm[i] -= h;
            let du_dti = (u(&tp, &w, t_meas) - u(&tm, &w, t_meas)) / (2.0 * h);
            let expect_w = -du_dw / du_dt;
            let expect_t = -du_dti / du_dt;
            let tol = |x: f64| 1e-5 * x.abs() + 1e-6;
            prop_assert!((g.d_w[i] - expect_w).abs() <= tol(expect_w), "dT/dw[{}] {} vs {}", i, g.d_w[i], expect_w);
            prop_assert!((g.d_t[i] - expect_t).abs() <= tol(expect_t), "dT/dt[{}] {} vs {}", i, g.d_t[i], expect_t);
            if t[i] >= t_meas {
                prop_assert_eq!((g.d_w[i], g.d_t[i]), (0.0, 0.0));
            }
        }
    }
}

#[test]
fn no_gradient_cases() {
    let p = NeuronParams::REFERENCE;
    let times = [0.0, 0.5, f64::INFINITY];
    let weights = [5.0, 1.0, 7.0];
    let mut volley = Volley::new();
    volley.prepare(&times, &p);
    let (mut gw, mut gt) = ([f64::NAN; 3], [f64::NAN; 3]);
    // Silent output.
    assert_eq!(
        gradients_at(&p, &volley, &weights, f64::INFINITY, &mut gw, &mut gt),
        0.0
    );
    assert_eq!((gw, gt), ([0.0; 3], [0.0; 3]));
    // Before any input: membrane at rest.
    assert_eq!(
        gradients_at(&p, &volley, &weights, -1.0, &mut gw, &mut gt),
        0.0
    );
    assert_eq!((gw, gt), ([0.0; 3], [0.0; 3]));
    // On the falling side of the membrane: negative slope reported, gradients zero.
    let slope = gradients_at(&p, &volley, &weights, 5.0, &mut gw, &mut gt);
    assert!(slope < 0.0);
    assert_eq!((gw, gt), ([0.0; 3], [0.0; 3]));
    // At the spike: only the finite inputs before it have gradients.
    let t = first_spike_time(&p, &times, &weights);
    assert!(t > 0.0 && t < 0.5);
    let slope = gradients_at(&p, &volley, &weights, t, &mut gw, &mut gt);
    assert!(slope > 0.0);
    assert!(gw[0] < 0.0 && gt[0] != 0.0);
    assert_eq!((gw[1], gt[1], gw[2], gt[2]), (0.0, 0.0, 0.0, 0.0));
    // An input exactly at t_out is not causal (strict t_i < t_out).
    let slope = gradients_at(&p, &volley, &weights, 0.5, &mut gw, &mut gt);
    assert!(slope.is_finite());
    assert_eq!((gw[1], gt[1]), (0.0, 0.0));
}

#[test]
fn single_input_closed_form_values() {
    // Reference neuron, one input w at 0: T = -W0(-1/w), dT/dw = -T / (w (1 + W)),
    // dT/dt_in = 1 (shifting the only input shifts the spike).
    let p = NeuronParams::REFERENCE;
    let w = 4.0;
    let lambert = crate::lambert_w::w0(-1.0 / w);
    let t = -lambert;
    let g = implicit(&p, &[0.0], &[w], first_spike_time(&p, &[0.0], &[w]));
    assert!((g.d_w[0] + t / (w * (1.0 + lambert))).abs() <= 1e-14);
    assert!((g.d_t[0] - 1.0).abs() <= 1e-14);
    // The slope returned is du/dt = w e^{-T} (1 - T) / C.
    assert!((g.slope - w * (-t).exp() * (1.0 - t)).abs() <= 1e-14);
}
