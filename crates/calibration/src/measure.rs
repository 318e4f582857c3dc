//! What a membrane trace says about a circuit: its resting level, the threshold it fired at and
//! the level it was reset to, in the readout's physical unit.
//!
//! The one idea: every quantity is read off a trace the backend recorded, never off a model of
//! the chip. A trace of a silent circuit sits at the leak potential (its mean over the trace);
//! a trace of a circuit driven hard enough to fire rises to the threshold and drops to the
//! reset, where it is held for the refractory time. The threshold lies between the last sample
//! before the drop and where the next one would have been; half a step of the last rise is
//! added to the last sample, which halves the sampling error and removes its bias.

use spikeloop_backend::MembraneTrace;

/// A fall between two samples larger than this fraction of the trace's range, and larger than
/// [`DROP_OVER_STEP`] typical sample-to-sample changes, is the reset.
const DROP_FRACTION: f64 = 0.3;
/// How many times the median sample-to-sample change a reset's fall must exceed (readout noise
/// on a silent trace never does).
const DROP_OVER_STEP: f64 = 20.0;
/// Samples after the drop that are skipped before the held reset level is averaged.
const RESET_SETTLE_SAMPLES: usize = 2;
/// Samples of the held reset level averaged.
const RESET_SAMPLES: usize = 40;

/// Converts trace values into physical units (`offset + scale * v`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Readout {
    /// Unit per recorded step.
    pub scale: f64,
    /// The value of a recorded 0.
    pub offset: f64,
}

impl Readout {
    fn value(&self, v: f64) -> f64 {
        self.offset + self.scale * v
    }
}

/// The mean level of a trace (a silent circuit's leak potential).
pub fn level(trace: &MembraneTrace, readout: Readout) -> f64 {
    if trace.values.is_empty() {
        return f64::NAN;
    }
    let sum: f64 = trace.values.iter().map(|&v| readout.value(v)).sum();
    sum / trace.values.len() as f64
}

/// The median absolute change between consecutive samples (the readout noise on a flat trace).
fn median_step(values: &[f64]) -> f64 {
    let mut steps: Vec<f64> = values.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    if steps.is_empty() {
        return 0.0;
    }
    steps.sort_by(f64::total_cmp);
    steps[steps.len() / 2]
}

/// Index of the first reset in a trace: the first fall larger than [`DROP_FRACTION`] of its
/// range and [`DROP_OVER_STEP`] median steps.
fn reset_index(values: &[f64]) -> Option<usize> {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if values.len() < 2 {
        return None;
    }
    let drop = (DROP_FRACTION * (hi - lo)).max(DROP_OVER_STEP * median_step(values));
    if drop.is_nan() || drop <= 0.0 {
        return None;
    }
    values
        .windows(2)
        .position(|w| w[0] - w[1] > drop)
        .map(|i| i + 1)
}

/// The threshold a driven circuit fired at. A trace without a reset either rose under its drive
/// without reaching the threshold (NaN: the threshold is above anything measurable) or stayed
/// flat, held at its reset from the start because it fired before the drive (`-inf`: the
/// threshold is below the resting level).
pub fn threshold(trace: &MembraneTrace, readout: Readout) -> f64 {
    let v = &trace.values;
    match reset_index(v) {
        Some(k) if k >= 2 => {
            let (last, before) = (readout.value(v[k - 1]), readout.value(v[k - 2]));
            last + 0.5 * (last - before).max(0.0)
        }
        Some(_) => f64::NEG_INFINITY,
        None if v.is_empty() => f64::NAN,
        None => {
            let rise = v.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x)) - v[0];
            if rise > DROP_OVER_STEP * median_step(v) {
                f64::NAN
            } else {
                f64::NEG_INFINITY
            }
        }
    }
}

/// How far a trace rose above its start: the mean of its last tenth minus the mean of its
/// samples before `input` (the index of the input's arrival); NaN without samples on either side.
pub fn rise(trace: &MembraneTrace, readout: Readout, input: usize) -> f64 {
    let v = &trace.values;
    let tail = v.len() / 10;
    if input == 0 || input >= v.len() || tail == 0 {
        return f64::NAN;
    }
    let mean = |s: &[f64]| s.iter().map(|&x| readout.value(x)).sum::<f64>() / s.len() as f64;
    mean(&v[v.len() - tail..]) - mean(&v[..input])
}

/// The level a driven circuit was reset to and held at (NaN when the trace shows no reset or
/// ends before the hold could be measured).
pub fn reset(trace: &MembraneTrace, readout: Readout) -> f64 {
    let v = &trace.values;
    let Some(k) = reset_index(v) else {
        return f64::NAN;
    };
    let start = k + RESET_SETTLE_SAMPLES;
    let end = (start + RESET_SAMPLES).min(v.len());
    if end <= start {
        return f64::NAN;
    }
    v[start..end].iter().map(|&x| readout.value(x)).sum::<f64>() / (end - start) as f64
}

/// The time constant of an exponential approach in `trace` from sample `from` on (trace time
/// units): the differences between samples `block` apart, `v[k + m] - v[k]`, fall as
/// `exp(-t / tau)` for any exponential approach (a decay to rest, a rise to a plateau), so a
/// straight line through their logarithms (weighted by the squared difference) has slope
/// `-1 / tau`. Blocks are used while the
/// difference is above a tenth of the first; NaN when fewer than three are.
pub fn time_constant(trace: &MembraneTrace, from: usize, block: usize) -> f64 {
    let v = &trace.values;
    let block = block.max(1);
    let mut points = Vec::new();
    let mut first = None;
    let mut k = from;
    while k + block < v.len() {
        let d = v[k + block] - v[k];
        let f = *first.get_or_insert(d);
        if f == 0.0 || d / f < 0.1 {
            break;
        }
        points.push(((k as f64 + block as f64 / 2.0) * trace.dt, (d / f).ln()));
        k += block;
    }
    if points.len() < 3 {
        return f64::NAN;
    }
    // Weighted by the squared difference: the logarithm of a small difference carries the
    // readout noise magnified by its inverse.
    let w = |y: f64| y.exp().powi(2);
    let sw: f64 = points.iter().map(|&(_, y)| w(y)).sum();
    let mx = points.iter().map(|&(x, y)| w(y) * x).sum::<f64>() / sw;
    let my = points.iter().map(|&(_, y)| w(y) * y).sum::<f64>() / sw;
    let (sxy, sxx) = points.iter().fold((0.0, 0.0), |(a, b), &(x, y)| {
        (
            a + w(y) * (x - mx) * (y - my),
            b + w(y) * (x - mx) * (x - mx),
        )
    });
    let slope = sxy / sxx;
    if slope < 0.0 { -1.0 / slope } else { f64::NAN }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(values: Vec<f64>) -> MembraneTrace {
        MembraneTrace {
            t0: 0.0,
            dt: 0.01,
            values,
        }
    }

    const MV: Readout = Readout {
        scale: 1.0,
        offset: 0.0,
    };

    #[test]
    fn a_silent_trace_gives_its_level_and_no_threshold() {
        let t = trace(vec![600.0, 601.0, 599.0, 600.0]);
        assert_eq!(level(&t, MV), 600.0);
        // Flat under a drive: held at its reset since before the drive came.
        assert_eq!(threshold(&t, MV), f64::NEG_INFINITY);
        let rising = trace((0..50).map(|i| 600.0 + 2.0 * f64::from(i)).collect());
        assert!(threshold(&rising, MV).is_nan());
        assert!(reset(&t, MV).is_nan());
    }

    #[test]
    fn exponential_approaches_give_their_time_constant() {
        let tau = 0.8;
        let decay = trace(
            (0..400)
                .map(|i| 600.0 + 50.0 * (-0.01 * f64::from(i) / tau).exp())
                .collect(),
        );
        assert!((time_constant(&decay, 0, 18) - tau).abs() < 1e-9);
        let rise = trace(
            (0..400)
                .map(|i| 600.0 + 300.0 * (1.0 - (-0.01 * f64::from(i) / tau).exp()))
                .collect(),
        );
        assert!((time_constant(&rise, 10, 18) - tau).abs() < 1e-9);
        assert!(time_constant(&trace(vec![600.0; 400]), 0, 18).is_nan());
    }

    #[test]
    fn a_driven_trace_gives_threshold_and_reset() {
        // Rises by 10 per sample to 890, would have crossed 900, drops to 500 and is held.
        let mut v: Vec<f64> = (0..=29).map(|i| 600.0 + 10.0 * f64::from(i)).collect();
        v.extend(std::iter::repeat_n(500.0, 60));
        let t = trace(v);
        assert_eq!(threshold(&t, MV), 895.0);
        assert_eq!(reset(&t, MV), 500.0);
        let scaled = Readout {
            scale: 2.0,
            offset: 10.0,
        };
        assert_eq!(reset(&t, scaled), 1010.0);
    }
}
