//! The postsynaptic potential kernel and the per-interval propagation factors.
//!
//! The one idea: the difference of exponentials
//! `K(s) = (exp(-s/tau_m) - exp(-s/tau_s)) / (1/tau_s - 1/tau_m)` is written as
//! `exp(-s/tau_slow) * (-expm1(-s |delta|)) / |delta|`, which has no cancellation when the two
//! time constants nearly agree and tends to `s exp(-s/tau)` as they meet. A single input of
//! weight `w` at time 0 moves the membrane by `w K(s) / C` at time `s`.

use crate::params::{Consts, Kernel};

/// `K(s)` and `exp(-s / tau_s)` for `s >= 0` (time units; see the module docs). The kernel's
/// slope is `K'(s) = exp(-s/tau_s) - K(s)/tau_m`.
#[inline]
pub(crate) fn psp(c: &Consts, s: f64) -> (f64, f64) {
    if c.delta_abs == 0.0 {
        let e = (-s * c.inv_tau_m).exp();
        return (if e == 0.0 { 0.0 } else { s * e }, e);
    }
    let em1 = (-s * c.delta_abs).exp_m1();
    let slow = (-s * c.inv_tau_slow).exp();
    let k = slow * (-em1 / c.delta_abs);
    let syn = if c.membrane_is_slow {
        slow * (1.0 + em1)
    } else {
        slow
    };
    (k, syn)
}

/// Propagation factors across an input-free interval of length `dt >= 0`, in the layout each
/// solver expects (the membrane's own decay factor always first):
///
/// * `Equal`: `[exp(-d), d exp(-d), 1 - d]` with `d = dt / tau`;
/// * `Double`: `[exp(-dt/tau_m), exp(-dt/tau_s), 0]`;
/// * `General`: `[exp(-dt/tau_m), exp(-dt/tau_s), K(dt)]`.
#[inline]
pub(crate) fn step_factors(c: &Consts, kernel: Kernel, dt: f64) -> [f64; 3] {
    match kernel {
        Kernel::Equal => {
            let d = dt * c.inv_tau_m;
            let e = (-d).exp();
            [e, if e == 0.0 { 0.0 } else { d * e }, 1.0 - d]
        }
        Kernel::Double => {
            let e = (-dt * c.inv_tau_m).exp();
            [e, e * e, 0.0]
        }
        Kernel::General => general_factors(c, dt),
    }
}

/// `[exp(-x/tau_m), exp(-x/tau_s), K(x)]` for the general kernel (also valid at `delta = 0`).
#[inline]
pub(crate) fn general_factors(c: &Consts, x: f64) -> [f64; 3] {
    if c.delta_abs == 0.0 {
        let e = (-x * c.inv_tau_m).exp();
        return [e, e, if e == 0.0 { 0.0 } else { x * e }];
    }
    let em1 = (-x * c.delta_abs).exp_m1();
    let slow = (-x * c.inv_tau_slow).exp();
    let fast = slow * (1.0 + em1);
    let k = slow * (-em1 / c.delta_abs);
    if c.membrane_is_slow {
        [slow, fast, k]
    } else {
        [fast, slow, k]
    }
}
