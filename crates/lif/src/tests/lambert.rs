//! Lambert W: known values, residuals, branch point, the solver's Padé form.

use crate::lambert_w::{w0, w0_from_branch_distance};
use proptest::prelude::*;
use std::f64::consts::{E, LN_2};

/// Estimated relative error of `w` from the residual of `w = x exp(-w)`: the residual divided
/// by its derivative `1 + w` and by `|w|` (well conditioned away from the branch point).
fn rel_error(x: f64, w: f64) -> f64 {
    ((w - x * (-w).exp()) / (w * (1.0 + w))).abs()
}

#[test]
fn known_values() {
    assert_eq!(w0(0.0), 0.0);
    assert!(w0(-0.0).is_sign_negative());
    assert!((w0(E) - 1.0).abs() <= 2.0 * f64::EPSILON);
    // The omega constant.
    assert!((w0(1.0) - 0.567_143_290_409_783_8).abs() <= 2.0 * f64::EPSILON);
    // W(-ln2 / 2) = -ln 2 and W(2 ln 2) = ln 2.
    assert!((w0(-LN_2 / 2.0) + LN_2).abs() <= 4.0 * f64::EPSILON);
    assert!((w0(2.0 * LN_2) - LN_2).abs() <= 2.0 * f64::EPSILON);
    // W(x e^x) = x on both sides of 0.
    for &x in &[-0.9, -0.5, -0.1, -1e-5, 1e-5, 0.3, 2.0, 10.0, 100.0, 700.0] {
        let w = w0(x * f64::exp(x));
        // Rounding of x e^x, amplified by dW/dx = W / (x (1 + W)).
        let tol = 4.0 * f64::EPSILON * x.abs().max(1.0) / (1.0 + x);
        assert!((w - x).abs() <= tol, "x = {x}: {w}");
    }
}

#[test]
fn branch_point_and_domain() {
    // The f64 nearest to -1/e lies just below -1/e; it is accepted and gives -1.
    assert_eq!(w0(-(-1.0f64).exp()), -1.0);
    assert_eq!(w0(-1.0 / E), -1.0);
    let below = f64::from_bits((1.0 / E).to_bits() + 1);
    assert!(w0(-below).is_nan());
    assert!(w0(-1.0).is_nan());
    assert!(w0(f64::NEG_INFINITY).is_nan());
    assert!(w0(f64::NAN).is_nan());
    assert_eq!(w0(f64::INFINITY), f64::INFINITY);
    assert!(w0(f64::MAX).is_finite());
    // Near the branch point W0 = -1 + p - p^2/3 + 11 p^3/72 with p = sqrt(2 (1 + e x)).
    for &p in &[1e-8, 1e-6, 1e-4, 1e-3] {
        let x = (p * p / 2.0 - 1.0) / E;
        let series = -1.0 + p - p * p / 3.0 + 11.0 / 72.0 * p * p * p;
        // x itself carries a rounding error of ~1e-17, amplified by dW/dx ~ 1/p.
        let tol = 4.0 * f64::EPSILON + 4e-16 / p + p.powi(4);
        assert!((w0(x) - series).abs() <= tol, "p = {p}");
    }
}

#[test]
fn pade_form_matches_public_function() {
    // Over the whole solver range p in [0, sqrt 2] the Padé form is within 1e-15 of the polished
    // function, and at rounding level for p < 1.
    for i in 0..=2000 {
        let p = std::f64::consts::SQRT_2 * i as f64 / 2000.0;
        let x = (p * p / 2.0 - 1.0) / E;
        let diff = (w0_from_branch_distance(p) - w0(x)).abs();
        let tol = if p < 1.0 {
            2e-16 + 4e-16 / p.max(1e-3)
        } else {
            1e-15
        };
        assert!(diff <= tol, "p = {p}: diff {diff:e}");
    }
    assert!((w0_from_branch_distance(0.0) + 1.0).abs() <= f64::EPSILON);
    assert!(w0_from_branch_distance(std::f64::consts::SQRT_2).abs() <= 1e-15);
}

#[test]
fn monotone_on_a_grid() {
    let mut prev = -1.0;
    let mut x = -1.0 / E;
    while x < 50.0 {
        let w = w0(x);
        assert!(w >= prev, "W0 not monotone at {x}");
        prev = w;
        x += 1e-3;
    }
}

proptest! {
    #![proptest_config(super::support::config(512))]

    /// Residual of a few ulp for arguments across (-1/e, 1e300).
    #[test]
    fn residual_small(u in 0.0f64..1.0, log_x in -300.0f64..300.0, neg in any::<bool>()) {
        let x = if neg { -u / E } else { 10f64.powf(log_x) };
        let w = w0(x);
        prop_assert!(w.is_finite());
        prop_assert!(w >= -1.0);
        if x == 0.0 {
            prop_assert_eq!(w, 0.0);
        } else if neg && u > 0.5 {
            // Towards the branch point (where 1 + w -> 0 makes the error estimate blow up) check
            // the residual w e^w - x directly, relative to |x|.
            prop_assert!((w * w.exp() - x).abs() <= 4.0 * f64::EPSILON * x.abs());
        } else {
            prop_assert!(rel_error(x, w) <= 4.0 * f64::EPSILON, "x = {x:e}, w = {w}");
        }
    }
}
