//! The principal branch `W0` of the Lambert W function, the inverse of `w -> w exp(w)` on
//! `w >= -1`.
//!
//! The one idea: parametrise the argument by its distance from the branch point,
//! `p = sqrt(2 (1 + e x))`. In `p`, `W0` is analytic on `[0, sqrt 2]` (that is, for all
//! `x in [-1/e, 0]`), and a [10/10] Padé approximant of its branch-point series is accurate to
//! about one unit in the last place of 1 over that whole range. The spike-time solver only needs
//! this range and gets `p` straight from the membrane equation, without ever forming `x`; see
//! `w0_from_branch_distance`. The public [`w0`] adds Halley polishing away from the branch point
//! and an asymptotic start for large arguments.

use std::f64::consts::E;

/// The `f64` nearest to `1/e` (it lies above `1/e`).
const INV_E_HI: f64 = 0.367_879_441_171_442_33;
/// `1/e - INV_E_HI`.
const INV_E_LO: f64 = -1.242_875_367_278_836_3e-17;
/// Half a unit in the last place of `1/e`: arguments this close below `-1/e` round to it.
const HALF_ULP_INV_E: f64 = 2.8e-17;

/// Numerator of the [10/10] Padé approximant of `W0` in `p`, lowest order first.
const PADE_NUM: [f64; 11] = [
    -1.0,
    -2.518_396_522_174_193_3,
    -2.089_343_479_185_200_4,
    -0.138_855_105_963_452_74,
    0.870_105_896_736_277_8,
    0.627_020_132_719_515_7,
    0.205_932_923_601_442_14,
    0.035_761_704_241_177_965,
    0.003_170_863_819_159_185_3,
    0.000_121_887_781_413_439_86,
    1.288_173_607_042_708_8e-6,
];
/// Denominator of the same approximant, lowest order first.
const PADE_DEN: [f64; 11] = [
    1.0,
    3.518_396_522_174_193_3,
    5.274_406_668_026_06,
    4.393_240_711_042_559_5,
    2.222_902_430_666_800_4,
    0.701_614_560_300_986_5,
    0.136_496_738_195_135_14,
    0.015_575_884_826_805_718,
    0.000_939_215_281_894_569_3,
    2.411_145_987_609_921e-5,
    1.500_707_975_507_968e-7,
];

/// `W0(x)` for `x = (p^2/2 - 1) / e`, i.e. `p = sqrt(2 (1 + e x))`, for `p` in `[0, sqrt 2]`
/// (`x` in `[-1/e, 0]`). Absolute error below `1e-15` over the whole range, and at the level of
/// rounding for `p < 1`. Outside that range the approximation degrades gracefully (about `1e-13`
/// at `p = 2`).
///
/// Working in `p` avoids the cancellation in `1 + e x` near the branch point: callers that know
/// `1 + e x` accurately (as the spike-time solver does) keep full accuracy there.
#[inline]
pub(crate) fn w0_from_branch_distance(p: f64) -> f64 {
    let p2 = p * p;
    let p4 = p2 * p2;
    let p8 = p4 * p4;
    estrin10(&PADE_NUM, p, p2, p4, p8) / estrin10(&PADE_DEN, p, p2, p4, p8)
}

/// Degree-10 polynomial by Estrin's scheme: a dependency chain of depth 4 instead of Horner's 10,
/// which matters because the spike-time solver evaluates this once per firing neuron on the
/// critical path.
#[inline(always)]
fn estrin10(c: &[f64; 11], p: f64, p2: f64, p4: f64, p8: f64) -> f64 {
    let c01 = c[0] + c[1] * p;
    let c23 = c[2] + c[3] * p;
    let c45 = c[4] + c[5] * p;
    let c67 = c[6] + c[7] * p;
    let c89 = c[8] + c[9] * p;
    let c03 = c01 + c23 * p2;
    let c47 = c45 + c67 * p2;
    let c810 = c89 + c[10] * p2;
    (c03 + c47 * p4) + c810 * p8
}

/// Principal branch `W0(x)` of the Lambert W function: the solution `w >= -1` of
/// `w exp(w) = x`, for `x >= -1/e`.
///
/// Returns NaN for NaN and for arguments below `-1/e` (an argument within rounding of `-1/e`,
/// such as `-(-1f64).exp()`, gives `-1`), and `+inf` for `+inf`. Accurate to a few units in the
/// last place; near the branch point the function itself is ill-conditioned (`W0` has an infinite
/// derivative at `-1/e`) and the result is as accurate as the distance `x + 1/e` allows.
pub fn w0(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return f64::INFINITY;
    }
    if x == 0.0 {
        return x;
    }
    // x + 1/e without cancellation: the first sum is exact near the branch point (Sterbenz).
    let dist = (x + INV_E_HI) + INV_E_LO;
    if dist < -HALF_ULP_INV_E {
        return f64::NAN;
    }
    let dist = dist.max(0.0);
    let guess = if x < 3.0 {
        let p = (2.0 * E * dist).sqrt();
        let w = w0_from_branch_distance(p);
        if p < 1.0 {
            // Close to the branch point the approximant is already at rounding level, and Halley
            // steps would only add the rounding noise of the ill-conditioned residual.
            return w;
        }
        w
    } else {
        let l1 = x.ln();
        let l2 = l1.ln();
        l1 - l2 + l2 / l1
    };
    halley(x, guess)
}

/// Halley iteration on `f(w) = w - x exp(-w)`, whose root is `W(x)`; this form cannot overflow
/// for large `x` and is well conditioned away from the branch point.
fn halley(x: f64, mut w: f64) -> f64 {
    for _ in 0..12 {
        let h = x * (-w).exp();
        let f = w - h;
        let fp = 1.0 + h;
        // f'' = -h, so the Halley denominator is 2 f'^2 - f f'' = 2 f'^2 + f h.
        let step = 2.0 * f * fp / (2.0 * fp * fp + f * h);
        if !step.is_finite() {
            break;
        }
        w -= step;
        if step.abs() <= 4.0 * f64::EPSILON * w.abs() {
            break;
        }
    }
    w
}
