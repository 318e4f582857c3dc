//! The vectorised binary search over 10-bit codes, one search per circuit, all circuits moving
//! in lockstep: each step writes every circuit's code, measures every circuit, and halves every
//! circuit's step, as the platform's calibration framework does.
//!
//! The one idea: a search needs only that a parameter is monotone in its code and which way
//! ([`AnalogParameter::rises_with_code`]); it starts each circuit at the middle of the range
//! plus a small seeded offset (so that circuits do not share values by construction), takes 9
//! halving steps (256 down to 1, which reach every code), then measures the final code's two
//! neighbours and keeps the best of the three: 12 measurements per circuit.
//!
//! [`AnalogParameter::rises_with_code`]: spikeloop_backend::analog::AnalogParameter::rises_with_code

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use spikeloop_backend::analog::CODE_MAX;

/// Half-width of the seeded offset of every search's start around code 511.
pub const START_JITTER: u16 = 8;

/// The outcome of a search for every circuit.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// The best code of each circuit.
    pub codes: Vec<u16>,
    /// What was measured at that code.
    pub measured: Vec<f64>,
    /// How many measurement rounds the search took.
    pub rounds: usize,
}

/// Searches, for every circuit, the code whose measured value is closest to its target.
/// `measure` writes the given code of every circuit, measures every circuit and returns one
/// value each (NaN: nothing measurable, taken as above any target, such as a threshold no
/// drive reaches). `rises` says whether the value grows with the code.
pub fn search<E>(
    targets: &[f64],
    rises: bool,
    seed: u64,
    mut measure: impl FnMut(&[u16]) -> Result<Vec<f64>, E>,
) -> Result<Found, E> {
    let n = targets.len();
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut codes: Vec<u16> = (0..n)
        .map(|_| 511u16 - START_JITTER + rng.random_range(0..=2 * START_JITTER))
        .collect();
    let mut rounds = 0;
    let mut step = 256u16;
    while step >= 1 {
        let values = measure(&codes)?;
        rounds += 1;
        for ((code, &value), &target) in codes.iter_mut().zip(&values).zip(targets) {
            // Below the target: move to where the value grows (NaN compares as above).
            let below = value < target;
            let up = below == rises;
            *code = if up {
                code.saturating_add(step).min(CODE_MAX)
            } else {
                code.saturating_sub(step)
            };
        }
        step /= 2;
    }
    // The final code and its two neighbours; the best of the three stays.
    let mut best_codes = codes.clone();
    let mut best = measure(&codes)?;
    rounds += 1;
    for delta in [-1i32, 1] {
        let tried: Vec<u16> = codes
            .iter()
            .map(|&c| (i32::from(c) + delta).clamp(0, i32::from(CODE_MAX)) as u16)
            .collect();
        let values = measure(&tried)?;
        rounds += 1;
        for (k, &target) in targets.iter().enumerate() {
            let better = match (values[k].is_nan(), best[k].is_nan()) {
                (false, true) => true,
                (false, false) => (values[k] - target).abs() < (best[k] - target).abs(),
                _ => false,
            };
            if better {
                best[k] = values[k];
                best_codes[k] = tried[k];
            }
        }
    }
    Ok(Found {
        codes: best_codes,
        measured: best,
        rounds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monotone curves with per-circuit gain and offset, rising and falling.
    fn curve(k: usize, code: u16, rises: bool) -> f64 {
        let c = f64::from(code);
        let (gain, offset) = (1.0 + 0.1 * (k as f64 - 2.0), 3.0 * k as f64);
        if rises {
            gain * 1.2 * c + offset
        } else {
            1020.0 / (gain * c.max(1.0)) + offset * 0.01
        }
    }

    #[test]
    fn finds_the_nearest_code_on_rising_and_falling_curves() {
        for rises in [true, false] {
            let targets: Vec<f64> = (0..5)
                .map(|k| if rises { 600.0 } else { 6.0 + 0.01 * k as f64 })
                .collect();
            let found = search::<()>(&targets, rises, 3, |codes| {
                Ok(codes
                    .iter()
                    .enumerate()
                    .map(|(k, &c)| curve(k, c, rises))
                    .collect())
            })
            .expect("no error");
            assert_eq!(found.rounds, 12);
            for (k, &target) in targets.iter().enumerate() {
                let best = (0..=CODE_MAX)
                    .min_by(|&a, &b| {
                        let da = (curve(k, a, rises) - target).abs();
                        let db = (curve(k, b, rises) - target).abs();
                        da.total_cmp(&db)
                    })
                    .expect("codes");
                assert_eq!(found.codes[k], best, "circuit {k}, rises {rises}");
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_search() {
        let targets = vec![500.0; 20];
        let run = |seed| {
            search::<()>(&targets, true, seed, |codes| {
                Ok(codes.iter().map(|&c| f64::from(c) * 1.2 + 0.4).collect())
            })
            .expect("no error")
        };
        assert_eq!(run(1), run(1));
    }
}
