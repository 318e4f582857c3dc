//! Random streams derived from seeds, and the normal deviates drawn from them.
//!
//! The one idea: every random number has an address. A stream is named by a seed (the chip seed
//! for everything static about a chip, the run seed for everything that differs between runs),
//! a *purpose* (which effect the numbers feed) and up to two indices (for temporal noise: the
//! run counter and the sample index). The four words are mixed into the 128-bit state of a
//! `Pcg64Mcg` generator:
//!
//! ```text
//! h0 = m(m(m(m(seed ^ K0) ^ purpose) ^ a) ^ b),   m = the SplitMix64 finaliser
//! state = (m(h0 ^ K1) << 64) | m(h0 ^ K2) | 1
//! ```
//!
//! so that no stream depends on which thread ran which sample, on how many samples came before,
//! or on whether another effect drew numbers. Switching one noise source off therefore leaves
//! every other source's numbers untouched. Normal deviates come from a ziggurat on the
//! generator's raw 64-bit outputs, evaluated with the crate's deterministic `exp` and `ln`, so a
//! stream's values are the same on every machine.

use rand::RngCore;
use rand_pcg::Pcg64Mcg;

use crate::fastmath;

/// What a stream's numbers are used for; part of every stream's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Purpose {
    /// Fixed-pattern deviations of the neuron circuits (per chip).
    NeuronPattern = 1,
    /// Fixed-pattern gain deviations of the synapses (per chip).
    SynapsePattern = 2,
    /// Trial-to-trial threshold noise (per run and sample).
    ThresholdNoise = 3,
    /// Spike-time jitter (per run and sample).
    SpikeJitter = 4,
    /// Noise of the membrane ADC (per run).
    MadcNoise = 5,
    /// How each circuit drifts (per chip).
    Drift = 6,
}

const K0: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x1319_8a2e_0370_7344;
const K2: u64 = 0xa409_3822_299f_31d0;

/// The SplitMix64 output function: a bijective 64-bit mixer with full avalanche.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The generator at address `(seed, purpose, a, b)`; see the module docs.
pub(crate) fn stream(seed: u64, purpose: Purpose, a: u64, b: u64) -> Pcg64Mcg {
    let h0 = mix64(mix64(mix64(mix64(seed ^ K0) ^ purpose as u64) ^ a) ^ b);
    let state = (u128::from(mix64(h0 ^ K1)) << 64) | u128::from(mix64(h0 ^ K2)) | 1;
    Pcg64Mcg::new(state)
}

/// Layers of the ziggurat (Marsaglia and Tsang 2000, 128 layers) and its constants: the start
/// of the tail and the area of each layer under `exp(-x^2/2)`.
const ZIG_LAYERS: usize = 128;
const ZIG_R: f64 = 3.442_619_855_899;
const ZIG_V: f64 = 9.912_563_035_262_17e-3;

/// Layer edges `x[i]` (decreasing from `x[0] = V / f(R)`, `x[1] = R` to `x[128] = 0`) and
/// `f(x[i]) = exp(-x[i]^2 / 2)`, computed once with the crate's deterministic arithmetic.
#[derive(Debug)]
struct Ziggurat {
    x: [f64; ZIG_LAYERS + 1],
    f: [f64; ZIG_LAYERS + 1],
}

fn ziggurat() -> &'static Ziggurat {
    static TABLE: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let density = |x: f64| fastmath::exp(-0.5 * x * x);
        let mut x = [0.0; ZIG_LAYERS + 1];
        x[0] = ZIG_V / density(ZIG_R);
        x[1] = ZIG_R;
        for i in 1..ZIG_LAYERS - 1 {
            // Equal areas: x[i] (f(x[i + 1]) - f(x[i])) = V.
            x[i + 1] = (-2.0 * fastmath::ln(ZIG_V / x[i] + density(x[i]))).sqrt();
        }
        x[ZIG_LAYERS] = 0.0;
        let mut f = [0.0; ZIG_LAYERS + 1];
        for (fi, &xi) in f.iter_mut().zip(&x) {
            *fi = density(xi);
        }
        Ziggurat { x, f }
    })
}

/// Standard normal deviates from one stream, by the ziggurat method: one 64-bit output picks a
/// layer (7 bits), a sign (1 bit) and a position (53 bits), accepted at once about 99 % of the
/// time; the rest is decided against the density (the crate's deterministic `exp`) or drawn from
/// the tail by Marsaglia's method (its `ln`).
#[derive(Clone, Debug)]
pub(crate) struct Normals {
    rng: Pcg64Mcg,
    table: &'static Ziggurat,
}

/// `2^-53`.
const UNIT: f64 = 1.0 / 9_007_199_254_740_992.0;

impl Normals {
    /// Deviates from the stream at `(seed, purpose, a, b)`.
    pub(crate) fn new(seed: u64, purpose: Purpose, a: u64, b: u64) -> Self {
        Self {
            rng: stream(seed, purpose, a, b),
            table: ziggurat(),
        }
    }

    /// A uniform number in `(0, 1]`.
    #[inline]
    fn open_uniform(&mut self) -> f64 {
        // Through i64 (exact below 2^53): a single conversion instruction, unlike u64's.
        (((self.rng.next_u64() >> 11) + 1) as i64) as f64 * UNIT
    }

    /// The next standard normal deviate.
    #[inline(always)]
    pub(crate) fn next(&mut self) -> f64 {
        let z = self.table;
        let bits = self.rng.next_u64();
        let i = (bits & (ZIG_LAYERS as u64 - 1)) as usize;
        let x = ((bits >> 11) as i64) as f64 * UNIT * z.x[i];
        if x < z.x[i + 1] {
            signed(x, bits)
        } else {
            self.next_slow(bits)
        }
    }

    /// [`Self::next`] when the first draw `bits` is not accepted at once: decided against the
    /// density, or the tail, or drawn again.
    #[cold]
    #[inline(never)]
    fn next_slow(&mut self, mut bits: u64) -> f64 {
        let z = self.table;
        loop {
            let i = (bits & (ZIG_LAYERS as u64 - 1)) as usize;
            let x = ((bits >> 11) as i64) as f64 * UNIT * z.x[i];
            if x < z.x[i + 1] {
                return signed(x, bits);
            }
            if i == 0 {
                // The tail beyond R.
                loop {
                    let a = -fastmath::ln(self.open_uniform()) / ZIG_R;
                    let b = -fastmath::ln(self.open_uniform());
                    if 2.0 * b >= a * a {
                        return signed(ZIG_R + a, bits);
                    }
                }
            }
            let y = z.f[i] + self.open_uniform() * (z.f[i + 1] - z.f[i]);
            if y < fastmath::exp(-0.5 * x * x) {
                return signed(x, bits);
            }
            bits = self.rng.next_u64();
        }
    }
}

/// `v` with the sign bit of the ziggurat draw `bits` (the bit above the layer index): `-v` or
/// `v` without a branch, which would be mispredicted half of the time.
#[inline(always)]
fn signed(v: f64, bits: u64) -> f64 {
    f64::from_bits(v.to_bits() | ((bits & ZIG_LAYERS as u64) << 56))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_by_every_address_word() {
        let base = stream(1, Purpose::ThresholdNoise, 2, 3).next_u64();
        assert_eq!(base, stream(1, Purpose::ThresholdNoise, 2, 3).next_u64());
        assert_ne!(base, stream(2, Purpose::ThresholdNoise, 2, 3).next_u64());
        assert_ne!(base, stream(1, Purpose::SpikeJitter, 2, 3).next_u64());
        assert_ne!(base, stream(1, Purpose::ThresholdNoise, 3, 3).next_u64());
        assert_ne!(base, stream(1, Purpose::ThresholdNoise, 2, 4).next_u64());
        // Swapping the indices must give a different stream too.
        assert_ne!(base, stream(1, Purpose::ThresholdNoise, 3, 2).next_u64());
    }

    #[test]
    fn normals_have_unit_moments() {
        let mut n = Normals::new(7, Purpose::NeuronPattern, 0, 0);
        let count = 200_000;
        let (mut sum, mut sum2) = (0.0, 0.0);
        for _ in 0..count {
            let z = n.next();
            sum += z;
            sum2 += z * z;
        }
        let mean = sum / count as f64;
        let var = sum2 / count as f64 - mean * mean;
        // Standard errors: 1/sqrt(n) = 0.0022 for the mean, sqrt(2/n) = 0.0032 for the variance.
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "variance {var}");
        // Tail and body fractions against the normal distribution (binomial standard errors
        // 0.0005, 0.00012, 0.0011).
        let mut n = Normals::new(8, Purpose::NeuronPattern, 0, 0);
        let (mut beyond2, mut beyond3, mut within_half) = (0, 0, 0);
        for _ in 0..count {
            let z = n.next().abs();
            beyond2 += usize::from(z > 2.0);
            beyond3 += usize::from(z > 3.0);
            within_half += usize::from(z < 0.5);
        }
        let frac = |k: usize| k as f64 / count as f64;
        assert!(
            (frac(beyond2) - 0.045_500).abs() < 0.002,
            "{}",
            frac(beyond2)
        );
        assert!(
            (frac(beyond3) - 0.002_700).abs() < 0.0005,
            "{}",
            frac(beyond3)
        );
        assert!(
            (frac(within_half) - 0.382_925).abs() < 0.004,
            "{}",
            frac(within_half)
        );
    }
}
