//! Deterministic `exp`, `ln` and `ln_1p` in plain IEEE arithmetic.
//!
//! The one idea: a chip instance must give bit-identical spike times on every machine, and the
//! platform's `libm` does not promise that (its `exp` may differ in the last bit between C
//! libraries and versions). These functions use only addition, multiplication, division and
//! bit manipulation, which IEEE 754 defines exactly and Rust never contracts into fused
//! operations, so their results are the same everywhere. They are also branch-free on the hot
//! path, which lets the compiler vectorise loops that decay many neurons' states at once.
//!
//! Accuracy: within about 2 units in the last place over the ranges used here (tested against
//! `std` to `5e-16` relative). `exp` flushes results below `exp(-707)` to zero instead of
//! returning subnormals, which no caller can tell apart from a fully decayed exponential.

/// `ln(2) / 64` split into a high part with 21 trailing zero bits (so that `n * LN2_64_HI` is
/// exact for `|n| < 2^21`) and the rounding remainder (Cody and Waite's argument reduction).
const LN2_64_HI: f64 = f64::from_bits(0x3f86_2e42_fee0_0000);
const LN2_64_LO: f64 = f64::from_bits(0x3d8a_39ef_3579_3c76);
/// `64 / ln(2)`.
const INV_LN2_64: f64 = 92.332_482_616_893_66;
/// `1.5 * 2^52`: adding it rounds a double of magnitude below `2^51` to an integer, which then
/// sits in the low mantissa bits.
const SHIFTER: f64 = 6_755_399_441_055_744.0;

/// `x` rounded to the nearest integer (ties to even) without a library call, for
/// `|x| < 2^51`: adding and subtracting [`SHIFTER`] leaves no fraction bits.
#[inline(always)]
pub fn round_nearest(x: f64) -> f64 {
    (x + SHIFTER) - SHIFTER
}

/// Arguments below this give 0, above `EXP_MAX` give `+inf`.
const EXP_MIN: f64 = -707.0;
const EXP_MAX: f64 = 709.0;

/// `2^(j/64)` for `j = 0..64`, each the correctly rounded double (bit patterns computed with
/// 60-digit decimal arithmetic).
const EXP2_TABLE: [u64; 64] = [
    0x3ff0000000000000,
    0x3ff02c9a3e778061,
    0x3ff059b0d3158574,
    0x3ff0874518759bc8,
    0x3ff0b5586cf9890f,
    0x3ff0e3ec32d3d1a2,
    0x3ff11301d0125b51,
    0x3ff1429aaea92de0,
    0x3ff172b83c7d517b,
    0x3ff1a35beb6fcb75,
    0x3ff1d4873168b9aa,
    0x3ff2063b88628cd6,
    0x3ff2387a6e756238,
    0x3ff26b4565e27cdd,
    0x3ff29e9df51fdee1,
    0x3ff2d285a6e4030b,
    0x3ff306fe0a31b715,
    0x3ff33c08b26416ff,
    0x3ff371a7373aa9cb,
    0x3ff3a7db34e59ff7,
    0x3ff3dea64c123422,
    0x3ff4160a21f72e2a,
    0x3ff44e086061892d,
    0x3ff486a2b5c13cd0,
    0x3ff4bfdad5362a27,
    0x3ff4f9b2769d2ca7,
    0x3ff5342b569d4f82,
    0x3ff56f4736b527da,
    0x3ff5ab07dd485429,
    0x3ff5e76f15ad2148,
    0x3ff6247eb03a5585,
    0x3ff6623882552225,
    0x3ff6a09e667f3bcd,
    0x3ff6dfb23c651a2f,
    0x3ff71f75e8ec5f74,
    0x3ff75feb564267c9,
    0x3ff7a11473eb0187,
    0x3ff7e2f336cf4e62,
    0x3ff82589994cce13,
    0x3ff868d99b4492ed,
    0x3ff8ace5422aa0db,
    0x3ff8f1ae99157736,
    0x3ff93737b0cdc5e5,
    0x3ff97d829fde4e50,
    0x3ff9c49182a3f090,
    0x3ffa0c667b5de565,
    0x3ffa5503b23e255d,
    0x3ffa9e6b5579fdbf,
    0x3ffae89f995ad3ad,
    0x3ffb33a2b84f15fb,
    0x3ffb7f76f2fb5e47,
    0x3ffbcc1e904bc1d2,
    0x3ffc199bdd85529c,
    0x3ffc67f12e57d14b,
    0x3ffcb720dcef9069,
    0x3ffd072d4a07897c,
    0x3ffd5818dcfba487,
    0x3ffda9e603db3285,
    0x3ffdfc97337b9b5f,
    0x3ffe502ee78b3ff6,
    0x3ffea4afa2a490da,
    0x3ffefa1bee615a27,
    0x3fff50765b6e4540,
    0x3fffa7c1819e90d8,
];

/// `e^x`: `x = (64 k + j) ln(2) / 64 + r` with `|r| <= ln(2)/128`, so
/// `e^x = 2^k * 2^(j/64) * e^r`, the last by its Taylor polynomial of degree 5 (truncation below
/// `4e-17`) in Estrin's form, which keeps the dependency chain short. Exact zero below `-707`,
/// `+inf` above `709`, NaN for NaN.
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    // Plain selects (not f64::max/min, whose NaN rules cost extra); NaN passes through.
    let xc = if x < EXP_MIN { EXP_MIN } else { x };
    let xc = if xc > EXP_MAX { EXP_MAX } else { xc };
    let t = xc * INV_LN2_64 + SHIFTER;
    let n = t - SHIFTER;
    let r = (xc - n * LN2_64_HI) - n * LN2_64_LO;
    // n = bits(t) - bits(SHIFTER) in two's complement.
    let n_bits = t.to_bits().wrapping_sub(SHIFTER.to_bits()) as i64;
    let table = f64::from_bits(EXP2_TABLE[(n_bits & 63) as usize]);
    // The exponent field of 2^k is k + 1023, within [3, 2045] after the clamp above.
    let k = n_bits >> 6;
    let scale = f64::from_bits(((k + 1023) as u64) << 52);
    let r2 = r * r;
    let p = (1.0 + r) + r2 * ((0.5 + r * (1.0 / 6.0)) + r2 * ((1.0 / 24.0) + r * (1.0 / 120.0)));
    let y = (table * p) * scale;
    let y = if x < EXP_MIN { 0.0 } else { y };
    if x > EXP_MAX { f64::INFINITY } else { y }
}

/// `ln 2` split like `LN2_64_HI`/`LN2_64_LO`, for the logarithm's exponent part.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// Natural logarithm: `-inf` at 0, NaN below 0 or for NaN, `+inf` at `+inf`.
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x == f64::INFINITY {
        return f64::INFINITY;
    }
    // Subnormals: scale into the normal range first (2^54 is exact).
    if x < f64::MIN_POSITIVE {
        ln_normal(x * 18_014_398_509_481_984.0, -54)
    } else {
        ln_normal(x, 0)
    }
}

/// `ln(x 2^bias)` of a positive, finite, normal `x`, without checks or branches (so that loops
/// over it vectorise).
#[inline(always)]
fn ln_normal(x: f64, bias: i64) -> f64 {
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i64 - 1023 + bias;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | (1023 << 52));
    // Mantissa into [sqrt(1/2), sqrt(2)] (halving is exact).
    let upper = m > std::f64::consts::SQRT_2;
    let m = if upper { m * 0.5 } else { m };
    let e = if upper { e + 1 } else { e };
    // ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716; m - 1 is exact here.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = 1.0 / 23.0;
    p = p * s2 + 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    let ln_m = 2.0 * s + 2.0 * s * s2 * p;
    let e = e as f64;
    e * LN2_HI + (ln_m + e * LN2_LO)
}

/// `ln(1 + a)`, accurate also for tiny `a`; NaN at or below `-1` and for NaN, `+inf` at `+inf`.
/// Branch-free (every case computed, one selected), so that loops over it vectorise.
#[inline(always)]
pub fn ln_1p(a: f64) -> f64 {
    let u = 1.0 + a;
    // `1 + a` overflows only for `a` near the largest double, where `ln(a)` is the answer.
    let overflow = u == f64::INFINITY;
    let w = if overflow { a } else { u };
    // `w >= 2^-53` whenever `u > 0`: never subnormal.
    let l = ln_normal(w, 0);
    let l = if w == f64::INFINITY { f64::INFINITY } else { l };
    // ln(u) is exact for u; correct for the rounding of 1 + a (first order).
    let r = l - ((u - 1.0) - a) / u;
    let r = if overflow { l } else { r };
    let r = if u == 1.0 { a } else { r };
    if u > 0.0 { r } else { f64::NAN }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        if a == b { 0.0 } else { ((a - b) / b).abs() }
    }

    #[test]
    fn exp_matches_std() {
        let mut worst: f64 = 0.0;
        let mut x = -700.0;
        while x < 700.0 {
            worst = worst.max(rel(exp(x), x.exp()));
            x += 0.013_7;
        }
        for &x in &[0.0, 1e-300, -1e-300, 1e-9, -1e-9, 0.5, -0.5, 1.0, -1.0] {
            worst = worst.max(rel(exp(x), x.exp()));
        }
        assert!(worst < 5e-16, "worst relative error {worst:e}");
        assert_eq!(exp(-800.0), 0.0);
        assert_eq!(exp(800.0), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn exp2_table_is_correct() {
        for (j, &bits) in EXP2_TABLE.iter().enumerate() {
            let t = f64::from_bits(bits);
            let expect = (j as f64 / 64.0).exp2();
            assert!((t - expect).abs() <= f64::EPSILON * expect, "entry {j}");
        }
    }

    #[test]
    fn ln_matches_std() {
        let mut worst: f64 = 0.0;
        let mut x = 1e-300;
        while x < 1e300 {
            worst = worst.max(rel(ln(x), x.ln()).min((ln(x) - x.ln()).abs()));
            x *= 1.37;
        }
        let mut x = 0.5;
        while x < 2.0 {
            worst = worst.max((ln(x) - x.ln()).abs());
            x += 1e-3;
        }
        assert!(worst < 4e-16, "worst error {worst:e}");
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        assert!((ln(5e-324) - (5e-324f64).ln()).abs() < 1e-12);
    }

    #[test]
    fn ln_1p_matches_std() {
        for &a in &[
            1e-20, -1e-20, 1e-10, -1e-10, 1e-3, -1e-3, 0.3, -0.3, 5.0, -0.999,
        ] {
            assert!(rel(ln_1p(a), a.ln_1p()) < 4e-16, "{a}");
        }
    }
}
