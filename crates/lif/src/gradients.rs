//! Spike-time gradients by implicit differentiation of the threshold condition.
//!
//! The one idea: at the output time `T` the membrane sits at threshold, `u(T; w, t_in) = theta`.
//! Differentiating that identity gives
//!
//! ```text
//! dT/dw_i    = -(du/dw_i)    / (du/dT) = -K(T - t_i) / D
//! dT/dt_in_i = -(du/dt_in_i) / (du/dT) = w_i K'(T - t_i) / D,    D = sum_j w_j K'(T - t_j)
//! ```
//!
//! over the inputs with `t_i < T`, where `K` is the postsynaptic kernel. Nothing here needs `T` to
//! be the exact solution of the model: the formulas are the linearisation of the threshold
//! condition at whatever time is given, which is what hardware-in-the-loop training needs when
//! `T` is a spike time measured on the chip. `C du/dT = D` is returned so callers can tell a
//! usable gradient (`D > 0`, the membrane crossing upward) from none.

use crate::kernel::psp;
use crate::params::{Consts, Kernel, NeuronParams};
use crate::volley::Volley;

/// Gradients of the output time with respect to the weights and the input times, evaluated at
/// the given output time `t_out` (the exact solution or a measured spike time) by implicit
/// differentiation of `u(t_out) = threshold`.
///
/// Writes `dT/dw` into `d_t_d_w` and `dT/dt_in` into `d_t_d_t_in`, both in the original input
/// order and of length `volley.n_inputs()`; they are fully overwritten, with zeros for inputs
/// that are silent or arrive at or after `t_out`. Returns the membrane slope `du/dt` at `t_out`;
/// when it is not positive and finite (no upward crossing, `t_out` infinite, no causal input)
/// every gradient is zero. Gradients are also all zero in the degenerate case where they would
/// overflow `f64` (a crossing so close to grazing that the slope is below about `1e-300`), so the
/// outputs are always finite.
///
/// # Panics
///
/// If any slice length differs from `volley.n_inputs()`.
pub fn gradients_at(
    params: &NeuronParams,
    volley: &Volley,
    weights: &[f64],
    t_out: f64,
    d_t_d_w: &mut [f64],
    d_t_d_t_in: &mut [f64],
) -> f64 {
    let n = volley.n_inputs();
    assert_eq!(
        weights.len(),
        n,
        "gradients_at: need one weight per volley input"
    );
    assert_eq!(
        d_t_d_w.len(),
        n,
        "gradients_at: d_t_d_w must hold one entry per volley input"
    );
    assert_eq!(
        d_t_d_t_in.len(),
        n,
        "gradients_at: d_t_d_t_in must hold one entry per volley input"
    );
    d_t_d_w.fill(0.0);
    d_t_d_t_in.fill(0.0);
    let Some(c) = volley.consts() else {
        return 0.0;
    };
    debug_assert_eq!(
        c.params, *params,
        "gradients_at: the volley was prepared for other neuron parameters"
    );
    if !t_out.is_finite() {
        return 0.0;
    }
    let times = volley.sorted_times();
    // The times are sorted, so counting is a partition point; for layer-sized volleys a
    // branch-free count beats a binary search's unpredictable branches.
    let n_causal = if times.len() <= 256 {
        times.iter().map(|&t| usize::from(t < t_out)).sum()
    } else {
        times.partition_point(|&t| t < t_out)
    };
    if n_causal == 0 {
        return 0.0;
    }
    let order = &volley.order()[..n_causal];
    let steps = volley.steps();
    // Decay factors exp(-(t_out - t_i)/tau) come from one exponential at the last causal input
    // and the volley's per-gap factors, walking backwards.
    let last = n_causal - 1;
    let (d, k_scale) = match c.kernel {
        Kernel::Equal => {
            let mut decay = (-(t_out - times[last]) * c.inv_tau_m).exp();
            let mut d = 0.0;
            for k in (0..n_causal).rev() {
                let i = order[k] as usize;
                let s = (t_out - times[k]) * c.inv_tau_m;
                let kp = decay * (1.0 - s);
                let wkp = weights[i] * kp;
                d_t_d_w[i] = s * decay;
                d_t_d_t_in[i] = wkp;
                d += wkp;
                if k > 0 {
                    decay *= steps[k - 1][0];
                }
            }
            (d, c.tau_m)
        }
        Kernel::Double => {
            let mut decay_m = (-(t_out - times[last]) * c.inv_tau_m).exp();
            let mut d = 0.0;
            for k in (0..n_causal).rev() {
                let i = order[k] as usize;
                let decay_s = decay_m * decay_m;
                let kp = 2.0 * decay_s - decay_m;
                let wkp = weights[i] * kp;
                d_t_d_w[i] = decay_m - decay_s;
                d_t_d_t_in[i] = wkp;
                d += wkp;
                if k > 0 {
                    decay_m *= steps[k - 1][0];
                }
            }
            (d, c.tau_m)
        }
        Kernel::General => {
            let slow_col = if c.membrane_is_slow { 0 } else { 1 };
            let mut slow = (-(t_out - times[last]) * c.inv_tau_slow).exp();
            let mut d = 0.0;
            for k in (0..n_causal).rev() {
                let i = order[k] as usize;
                let s = t_out - times[k];
                let (kernel, syn) = if c.delta_abs == 0.0 {
                    (s * slow, slow)
                } else {
                    let em1 = (-s * c.delta_abs).exp_m1();
                    let syn = if c.membrane_is_slow {
                        slow * (1.0 + em1)
                    } else {
                        slow
                    };
                    (slow * (-em1 / c.delta_abs), syn)
                };
                let wkp = weights[i] * (syn - kernel * c.inv_tau_m);
                d_t_d_w[i] = kernel;
                d_t_d_t_in[i] = wkp;
                d += wkp;
                if k > 0 {
                    slow *= steps[k - 1][slow_col];
                }
            }
            (d, 1.0)
        }
    };
    finish(c, d, k_scale, order, d_t_d_w, d_t_d_t_in)
}

/// Like [`gradients_at`] but without a [`Volley`]: inputs in any order, non-finite times ignored,
/// every kernel evaluated directly (two exponentials per causal input). Allocation-free; meant for
/// neurons with their own parameters.
///
/// # Panics
///
/// If the slice lengths differ.
pub fn gradients_at_inputs(
    params: &NeuronParams,
    times: &[f64],
    weights: &[f64],
    t_out: f64,
    d_t_d_w: &mut [f64],
    d_t_d_t_in: &mut [f64],
) -> f64 {
    let n = times.len();
    assert_eq!(
        weights.len(),
        n,
        "gradients_at_inputs: need one weight per input time"
    );
    assert_eq!(
        d_t_d_w.len(),
        n,
        "gradients_at_inputs: d_t_d_w must hold one entry per input"
    );
    assert_eq!(
        d_t_d_t_in.len(),
        n,
        "gradients_at_inputs: d_t_d_t_in must hold one entry per input"
    );
    d_t_d_w.fill(0.0);
    d_t_d_t_in.fill(0.0);
    if !t_out.is_finite() {
        return 0.0;
    }
    let c = Consts::new(params);
    let mut d = 0.0;
    for i in 0..n {
        let t_i = times[i];
        if t_i.is_finite() && t_i < t_out {
            let (kernel, syn) = psp(&c, t_out - t_i);
            let wkp = weights[i] * (syn - kernel * c.inv_tau_m);
            d_t_d_w[i] = kernel;
            d_t_d_t_in[i] = wkp;
            d += wkp;
        }
    }
    let slope = d / c.c_m;
    let mut finite = d > 0.0 && slope.is_finite();
    if finite {
        let scale_w = -1.0 / d;
        let scale_t = 1.0 / d;
        for (gw, gt) in d_t_d_w.iter_mut().zip(d_t_d_t_in.iter_mut()) {
            *gw *= scale_w;
            *gt *= scale_t;
            finite &= gw.is_finite() & gt.is_finite();
        }
    }
    if !finite {
        d_t_d_w.fill(0.0);
        d_t_d_t_in.fill(0.0);
    }
    slope
}

/// Turns the stored `K / k_scale` and `w K'` into `dT/dw` and `dT/dt_in`, or zeros them when the
/// membrane is not crossing upward. Returns `du/dt = D / C`.
#[inline]
fn finish(
    c: &Consts,
    d: f64,
    k_scale: f64,
    order: &[u32],
    d_t_d_w: &mut [f64],
    d_t_d_t_in: &mut [f64],
) -> f64 {
    let slope = d * c.inv_c_m;
    let mut finite = d > 0.0 && slope.is_finite();
    if finite {
        let scale_t = 1.0 / d;
        let scale_w = -k_scale * scale_t;
        for &i in order {
            let i = i as usize;
            d_t_d_w[i] *= scale_w;
            d_t_d_t_in[i] *= scale_t;
            finite &= d_t_d_w[i].is_finite() & d_t_d_t_in[i].is_finite();
        }
    }
    if !finite {
        for &i in order {
            d_t_d_w[i as usize] = 0.0;
            d_t_d_t_in[i as usize] = 0.0;
        }
    }
    slope
}
