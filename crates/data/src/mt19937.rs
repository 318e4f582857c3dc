//! The Mersenne Twister MT19937, reproducing numpy's legacy `numpy.random.RandomState`.
//!
//! Published data sets such as Yin-Yang were drawn with `numpy.random.RandomState(seed)`. To
//! generate the very same samples (and so make accuracies comparable with published numbers),
//! this generator follows numpy bit for bit: the same integer seeding (`init_genrand`), the same
//! 32-bit output stream, the same 53-bit doubles and the same masked rejection sampling for
//! bounded integers. It is a reproduction of a reference stream, not a general-purpose or
//! cryptographic random number generator.

use std::fmt;

/// Number of 32-bit words in the generator state.
const N: usize = 624;
/// Offset of the word mixed into each state update.
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A Mersenne Twister MT19937 whose outputs equal those of `numpy.random.RandomState(seed)`.
///
/// ```
/// use spikeloop_data::mt19937::Mt19937;
///
/// // numpy.random.RandomState(42).random_sample()
/// let mut rng = Mt19937::new(42);
/// assert_eq!(rng.random_sample(), 0.3745401188473625);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Mt19937 {
    state: [u32; N],
    /// Index of the next state word to temper; `N` means the state must be regenerated first.
    index: usize,
}

impl Mt19937 {
    /// Seeds the generator as `numpy.random.RandomState(seed)` does for an integer seed
    /// (Matsumoto and Nishimura's `init_genrand`).
    pub fn new(seed: u32) -> Self {
        let mut state = [0_u32; N];
        state[0] = seed;
        for i in 1..N {
            let prev = state[i - 1];
            // `i < 624`, so the cast is lossless.
            state[i] = 1_812_433_253_u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, index: N }
    }

    /// Regenerates all `N` state words at once (the "twist").
    fn twist(&mut self) {
        // Walking the words in order with wrapped indices reads already updated words exactly
        // where the reference's three-loop formulation does.
        for k in 0..N {
            let y = (self.state[k] & UPPER_MASK) | (self.state[(k + 1) % N] & LOWER_MASK);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.state[k] = self.state[(k + M) % N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// The next 32-bit output (numpy: `RandomState.bit_generator.random_raw()`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// The next 64-bit output as numpy forms it for wide ranges: the first 32-bit draw is the
    /// high word, the second the low word.
    fn next_u64(&mut self) -> u64 {
        let high = u64::from(self.next_u32());
        let low = u64::from(self.next_u32());
        (high << 32) | low
    }

    /// A double uniformly distributed in `[0, 1)` with 53 random bits, as numpy's
    /// `RandomState.random_sample()`: two 32-bit draws `a` and `b` give
    /// `((a >> 5) * 2^26 + (b >> 6)) / 2^53`.
    pub fn random_sample(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `n` successive [`random_sample`](Self::random_sample) values, as numpy's
    /// `RandomState.rand(n)`.
    pub fn rand(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.random_sample()).collect()
    }

    /// An integer uniformly distributed in `[0, high)`, as numpy's legacy
    /// `RandomState.randint(high)` with the default `int64` result type.
    ///
    /// numpy draws by masked rejection: with `max = high - 1` and `mask` the smallest
    /// `2^k - 1 >= max`, it draws `next_u32() & mask` (or a 64-bit draw when `max` needs more
    /// than 32 bits) until the value is at most `max`. `randint(1)` consumes no draws.
    ///
    /// # Panics
    ///
    /// Panics if `high` is 0 (numpy raises `ValueError: high <= 0`) or exceeds `i64::MAX`
    /// (numpy's `int64` bound).
    pub fn randint(&mut self, high: u64) -> u64 {
        assert!(
            high > 0 && high <= i64::MAX as u64,
            "randint: high must be in 1..=i64::MAX, got {high}"
        );
        let max = high - 1;
        if max == 0 {
            return 0;
        }
        let mask = u64::MAX >> max.leading_zeros();
        if max <= u64::from(u32::MAX) {
            // `mask` fits in 32 bits here, so the cast is lossless.
            let mask = mask as u32;
            loop {
                let value = u64::from(self.next_u32() & mask);
                if value <= max {
                    return value;
                }
            }
        }
        loop {
            let value = self.next_u64() & mask;
            if value <= max {
                return value;
            }
        }
    }
}

impl fmt::Debug for Mt19937 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 624 state words would drown any log line; the position is what a reader can use.
        f.debug_struct("Mt19937")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_the_smallest_covering_all_ones() {
        for (max, mask) in [
            (1_u64, 1_u64),
            (2, 3),
            (3, 3),
            (4, 7),
            (255, 255),
            (256, 511),
        ] {
            assert_eq!(u64::MAX >> max.leading_zeros(), mask, "max = {max}");
        }
    }

    #[test]
    fn randint_one_consumes_nothing() {
        let mut a = Mt19937::new(3);
        let mut b = Mt19937::new(3);
        assert_eq!(a.randint(1), 0);
        assert_eq!(a.next_u32(), b.next_u32());
    }

    #[test]
    #[should_panic(expected = "high must be in 1..=i64::MAX")]
    fn randint_zero_panics() {
        Mt19937::new(0).randint(0);
    }
}
