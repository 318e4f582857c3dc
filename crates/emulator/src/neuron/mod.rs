//! One analog neuron through one sample: exact membrane between events, threshold crossings,
//! reset and refractoriness, and the membrane at arbitrary times for recordings.
//!
//! The one idea: between two events the current-based LIF membrane has a closed form, so the
//! neuron is integrated *exactly* from event to event, with its own `tau_m` and `tau_s` (the
//! general kernel of `spikeloop-lif`, which is what a circuit whose time constants never match
//! exactly has). In units where the membrane `v` is measured from the neuron's own leak
//! potential and the synaptic current `j` is divided by the (fixed) membrane capacitance,
//!
//! ```text
//! dv/dt = j - v / tau_m,     dj/dt = -j / tau_s,     j += w at each event
//! v(t + x) = e_m(x) v + K(x) j,    j(t + x) = e_s(x) j
//! e_m = exp(-x/tau_m),  e_s = exp(-x/tau_s),  K = (e_m - e_s) / (1/tau_s - 1/tau_m)
//! ```
//!
//! Each interval's test "does `v` reach threshold before the next event?" needs no
//! transcendental function beyond the interval's decay factors (the membrane at the interval's
//! end, and at its single maximum only when that lies inside); the crossing itself is found by a
//! bracketed Halley iteration started from an inverse Hermite interpolant of the interval. All
//! exponentials use the crate's deterministic `exp`. When a group's events all lie on the FPGA's
//! clock (the first layer's inputs and bias spikes), every interval spans a whole number of
//! ticks, and its decay factors come from per-neuron tables instead ([`TickFactors`]).
//!
//! After a crossing the neuron is reset and *held* at its reset potential for the refractory
//! time while its synaptic current keeps decaying and further events keep adding to it; then it
//! integrates again from the reset potential and may fire again. Every spike before the end of
//! the sample window is returned; the first one is the neuron's first-spike time, the later ones
//! are real events that the chip routes onward and counts.
//!
//! The first crossing found here is the first spike of `spikeloop_lif::spike_time_sorted` (the
//! general solver) for the same time constants and weights, by the same causal-set rule; the
//! tests check agreement to 1e-11 tau_s over time-constant ratios from 0.5 to 2, including exact
//! equality. The emulator does not call that solver on its hot path for three reasons: after a
//! reset the neuron starts from a state that is not rest, which the solver does not take; the
//! solver uses the platform's `exp`, which is not bit-reproducible across machines; and a chip
//! layer is fastest when many neurons are advanced together ([`first_spikes`] applies each
//! interval to all of a layer's neurons in one vectorised loop, or for a small layer computes a
//! neuron's decay factors for many intervals in one; it looks at every waiting neuron's rise
//! after the last event in one, and takes the first Halley steps of all crossing searches in
//! one; [`Runner`] interleaves later spikes), which a per-neuron solver call cannot do.

use crate::fastmath::{exp, ln_1p, round_nearest};

use spikeloop_lif::widest_simd;

mod lockstep;
mod runner;
mod search;
#[cfg(test)]
mod tests;
mod ticks;

pub(crate) use lockstep::{Group, Lockstep, first_spikes};
pub(crate) use runner::{Columns, FirstSpike, Runner};
use {lockstep::*, search::*, ticks::*};

/// Up to this `|x delta|` (a short interval `x`, or time constants close to each other) the
/// kernel `K(x) = x e_s (e^z - 1) / z`, `z = x delta`, is evaluated by its series (truncation
/// error below 1e-17) instead of the difference of exponentials, whose relative error grows as
/// `1e-16 / |z|` by cancellation.
const SERIES_LIMIT: f64 = 0.05;

/// A neuron's constants in model units (time in tau_s of the model, potential relative to the
/// neuron's own leak).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct NeuronConsts {
    pub(crate) tau_m: f64,
    pub(crate) tau_s: f64,
    pub(crate) inv_tau_m: f64,
    pub(crate) inv_tau_s: f64,
    /// `1/tau_s - 1/tau_m`.
    pub(crate) delta: f64,
    /// `1/delta` (0 when `delta == 0`).
    pub(crate) inv_delta: f64,
    /// `ln(tau_s/tau_m) / delta`, limit `-tau_s` at `delta = 0`.
    pub(crate) peak_offset: f64,
    /// The membrane's maximum after `(v, j)` with `j > 0` is at most
    /// `ceiling_v max(v, 0) + ceiling_j j` ([`peak_ceiling`]).
    pub(crate) ceiling_v: f64,
    pub(crate) ceiling_j: f64,
    /// Threshold minus leak (before trial-to-trial noise).
    pub(crate) theta: f64,
    /// Reset minus leak.
    pub(crate) v_reset: f64,
    /// Refractory time.
    pub(crate) t_ref: f64,
}

impl NeuronConsts {
    pub(crate) fn new(tau_m: f64, tau_s: f64, theta: f64, v_reset: f64, t_ref: f64) -> Self {
        let delta = (tau_m - tau_s) / (tau_m * tau_s);
        let peak_offset = if delta == 0.0 {
            -tau_s
        } else {
            ln_1p(-tau_s * delta) / delta
        };
        let share = tau_m / (tau_m + tau_s) * (1.0 + PEAK_CEILING_MARGIN);
        Self {
            tau_m,
            tau_s,
            ceiling_v: share,
            ceiling_j: share * tau_s,
            inv_tau_m: 1.0 / tau_m,
            inv_tau_s: 1.0 / tau_s,
            delta,
            inv_delta: if delta == 0.0 { 0.0 } else { 1.0 / delta },
            peak_offset,
            theta,
            v_reset,
            t_ref,
        }
    }

    /// `K(x)` from the two decay factors already computed for `x`.
    #[inline(always)]
    fn kernel(&self, em: f64, es: f64, x: f64) -> f64 {
        kernel(em, es, x, self.delta, self.inv_delta)
    }

    /// `[e_m, e_s, K]` across an event-free interval of length `x >= 0`.
    #[inline]
    pub(crate) fn factors(&self, x: f64) -> [f64; 3] {
        let em = exp(-x * self.inv_tau_m);
        let es = exp(-x * self.inv_tau_s);
        [em, es, self.kernel(em, es, x)]
    }

    /// Membrane and current after an event-free interval `x` from `(v, j)`.
    #[inline]
    fn advance(&self, v: f64, j: f64, x: f64) -> (f64, f64) {
        let [em, es, k] = self.factors(x);
        (em * v + k * j, es * j)
    }

    /// Location of the membrane's maximum after a rising state `(v, j)`, `j > 0`:
    /// `exp(-delta x) = (tau_s / tau_m) (1 + delta v / j)`. `None` if it never turns.
    fn peak(&self, v: f64, j: f64) -> Option<f64> {
        let q = v / j;
        let x = if self.delta == 0.0 {
            -(self.peak_offset + q)
        } else {
            let arg = self.delta * q;
            if arg.is_nan() || arg <= -1.0 {
                return None;
            }
            -(self.peak_offset + ln_1p(arg) / self.delta)
        };
        if x.is_finite() {
            Some(if x > 0.0 { x } else { 0.0 })
        } else {
            None
        }
    }

    /// What the event-free interval of length `gap` (possibly infinite) ahead of the state
    /// `(v, j)` holds: no crossing (and the state at its end), a crossing right at its start,
    /// or a bracketed crossing inside. The bracket is the interval itself when the membrane ends
    /// it at or above threshold, else the rising side up to the membrane's single maximum when
    /// that lies inside and reaches threshold.
    /// `factors` are the decay factors across `gap` when the caller has them already.
    #[inline]
    fn segment(&self, theta: f64, v: f64, j: f64, gap: f64, factors: Option<[f64; 3]>) -> Segment {
        if v >= theta {
            // At or above threshold when integration starts (a reset at or above threshold, or
            // a threshold below the leak): fires at once.
            return Segment::Immediate;
        }
        if j == 0.0 && v == 0.0 {
            return Segment::Quiet {
                v_end: 0.0,
                j_end: 0.0,
            };
        }
        let rising = j > 0.0 && j * self.tau_m > v;
        // Below this bound on the maximum, no crossing is possible and no maximum is needed.
        let ceiling = peak_ceiling(v, j, self.ceiling_v, self.ceiling_j);
        if gap.is_finite() {
            let [em, es, k] = factors.unwrap_or_else(|| self.factors(gap));
            let v_end = em * v + k * j;
            let j_end = es * j;
            if v_end >= theta {
                return Segment::Bracket {
                    hi: gap,
                    f_hi: v_end - theta,
                    slope_hi: j_end - v_end * self.inv_tau_m,
                };
            }
            // Rising at the start, falling at the end: the maximum lies inside.
            if rising
                && j_end * self.tau_m < v_end
                && ceiling >= theta
                && let Some(b) = self.peak_bracket(v, j, theta, gap)
            {
                return b;
            }
            Segment::Quiet { v_end, j_end }
        } else if rising && ceiling >= theta {
            self.peak_bracket(v, j, theta, gap)
                .unwrap_or(Segment::Quiet {
                    v_end: 0.0,
                    j_end: 0.0,
                })
        } else {
            Segment::Quiet {
                v_end: 0.0,
                j_end: 0.0,
            }
        }
    }

    /// The bracket `[0, peak]` of a rising membrane whose maximum comes before `gap` (possibly
    /// infinite), if the maximum reaches `theta`.
    fn peak_bracket(&self, v: f64, j: f64, theta: f64, gap: f64) -> Option<Segment> {
        let x_peak = self.peak(v, j)?;
        let (x_peak, at_peak) = if x_peak < gap {
            (x_peak, true)
        } else {
            (gap, false)
        };
        let [em, es, k] = self.factors(x_peak);
        let v_peak = em * v + k * j;
        if v_peak >= theta {
            let slope_hi = if at_peak {
                0.0
            } else {
                es * j - v_peak * self.inv_tau_m
            };
            Some(Segment::Bracket {
                hi: x_peak,
                f_hi: v_peak - theta,
                slope_hi,
            })
        } else {
            None
        }
    }

    /// The crossing search the interval ahead of `(v, j)` calls for ([`Self::segment`]), if
    /// it holds a crossing.
    #[inline]
    fn search(
        &self,
        theta: f64,
        v: f64,
        j: f64,
        gap: f64,
        factors: Option<[f64; 3]>,
    ) -> Option<RootSearch> {
        match self.segment(theta, v, j, gap, factors) {
            Segment::Quiet { .. } => None,
            Segment::Immediate => Some(RootSearch::AT_START),
            Segment::Bracket { hi, f_hi, slope_hi } => {
                Some(self.root_start(v, j, theta, hi, f_hi, slope_hi))
            }
        }
    }

    /// Starts the search for the crossing `v(x) = theta` in `[0, hi]` given
    /// `v(0) < theta <= v(hi)` and the slope `slope_hi` at `hi`.
    ///
    /// The start is the inverse cubic Hermite interpolant of the bracket (time as a function of
    /// membrane, matching both ends' values and slopes), already accurate to about `hi^4 / 400`
    /// on a monotone rise. [`NeuronConsts::root_step`] then refines it with Halley's method.
    fn root_start(
        &self,
        v0: f64,
        j0: f64,
        theta: f64,
        hi: f64,
        f_hi: f64,
        slope_hi: f64,
    ) -> RootSearch {
        let f_lo = v0 - theta;
        let slope_lo = j0 - v0 * self.inv_tau_m;
        let span = f_hi - f_lo;
        let u = -f_lo / span;
        let mut x = if slope_lo > 0.0 && slope_hi > 0.0 && span.is_finite() {
            // x(u) = h10(u) span / slope_lo + h01(u) hi + h11(u) span / slope_hi.
            let (u2, u3) = (u * u, u * u * u);
            (u3 - 2.0 * u2 + u) * span / slope_lo
                + (3.0 * u2 - 2.0 * u3) * hi
                + (u3 - u2) * span / slope_hi
        } else if slope_lo > 0.0 && span.is_finite() {
            // Quadratic in u through both ends with the start's slope.
            let a = span / slope_lo;
            a * u + (hi - a) * u * u
        } else if span.is_finite() && span > 0.0 {
            hi * u
        } else {
            0.5 * hi
        };
        if !(x > 0.0 && x < hi) {
            x = 0.5 * hi;
        }
        RootSearch {
            v0,
            j0,
            theta,
            lo: 0.0,
            hi,
            x,
            x_max: hi,
            iterations: 0,
            done: false,
        }
    }

    /// One Halley step (cubic convergence; the second derivative comes from the same
    /// exponentials); a step that leaves the bracket is replaced by bisection. The search is done
    /// after a Halley step below `1e-4`, which by cubic convergence leaves an error of order
    /// `1e-12` tau_s (one or two steps in practice), when the bracket has shrunk to rounding
    /// level, or after 100 steps.
    #[inline]
    fn root_step(&self, s: &mut RootSearch) {
        s.iterations += 1;
        let [em, es, k] = self.factors(s.x);
        let v = em * s.v0 + k * s.j0;
        let f = v - s.theta;
        if f == 0.0 {
            s.done = true;
            return;
        }
        if f < 0.0 {
            s.lo = s.x;
        } else {
            s.hi = s.x;
        }
        let slope = es * s.j0 - v * self.inv_tau_m;
        let curvature = -es * s.j0 * self.inv_tau_s - slope * self.inv_tau_m;
        let step = 2.0 * f * slope / (2.0 * slope * slope - f * curvature);
        let halley = s.x - step;
        if slope > 0.0 && halley > s.lo && halley < s.hi {
            s.x = halley;
            if step.abs() <= HALLEY_DONE {
                s.done = true;
            }
        } else {
            s.x = 0.5 * (s.lo + s.hi);
        }
        if s.hi - s.lo <= 4.0 * f64::EPSILON * (1.0 + s.hi.abs()) || s.iterations >= 100 {
            s.done = true;
        }
    }
}

/// What one event-free interval holds; see [`NeuronConsts::segment`].
#[derive(Clone, Copy, Debug)]
enum Segment {
    Quiet { v_end: f64, j_end: f64 },
    Immediate,
    Bracket { hi: f64, f_hi: f64, slope_hi: f64 },
}

/// One sample's events as one neuron sees them.
#[derive(Clone, Copy)]
pub(crate) struct NeuronInput<'a> {
    /// Event times, ascending, all `>= 0`.
    pub(crate) times: &'a [f64],
    /// The neuron's effective weight for each event.
    pub(crate) weights: &'a [f64],
}

/// The state of a neuron between integration steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct State {
    /// Time up to which the neuron has been integrated.
    pub(crate) t: f64,
    /// Membrane relative to leak at `t`.
    pub(crate) v: f64,
    /// Synaptic current at `t`.
    pub(crate) j: f64,
    /// Number of events already added.
    pub(crate) k: usize,
    /// End of the current refractory hold (`-inf` if none).
    pub(crate) release: f64,
}

impl State {
    /// At rest at the start of the sample.
    #[cfg(test)]
    pub(crate) const REST: State = State {
        t: 0.0,
        v: 0.0,
        j: 0.0,
        k: 0,
        release: f64::NEG_INFINITY,
    };
}

/// All spike times (threshold crossings) of one neuron in `[0, t_end)`, at most `max_spikes`,
/// into `out`. `theta` is this sample's threshold (trial noise included). The neuron starts at
/// rest at time 0. (The engine uses the equivalent [`first_spikes`] plus [`integrate_from`];
/// this sequential form is the reference the tests compare them with.)
#[cfg(test)]
pub(crate) fn integrate(
    c: &NeuronConsts,
    theta: f64,
    input: &NeuronInput<'_>,
    t_end: f64,
    max_spikes: usize,
    out: &mut Vec<f64>,
) {
    out.clear();
    integrate_from(c, theta, input, t_end, max_spikes, State::REST, out);
}

/// Continues [`integrate`] from `state`, appending spikes to `out` (which holds the spikes so
/// far) until `out` holds `max_spikes`.
#[cfg(test)]
pub(crate) fn integrate_from(
    c: &NeuronConsts,
    theta: f64,
    input: &NeuronInput<'_>,
    t_end: f64,
    max_spikes: usize,
    state: State,
    out: &mut Vec<f64>,
) {
    let mut runner = Runner::new(state);
    while !runner.done {
        runner.step(c, theta, input, t_end, max_spikes, out);
    }
}

/// `[e_m, e_s, K]` across `gap`, exactly as [`NeuronConsts::factors`], but branch-free (both
/// forms of the kernel, then a select) so that loops over neurons or over gaps vectorise.
#[inline(always)]
fn decay(gap: f64, inv_tau_m: f64, inv_tau_s: f64, delta: f64, inv_delta: f64) -> (f64, f64, f64) {
    let em = exp(-gap * inv_tau_m);
    let es = exp(-gap * inv_tau_s);
    (em, es, kernel(em, es, gap, delta, inv_delta))
}

/// `K(x)` from the decay factors `em`, `es` across `x`: the series or the difference (see
/// [`SERIES_LIMIT`]), both computed and one selected, so that there is no branch to mispredict
/// and loops vectorise.
#[inline(always)]
fn kernel(em: f64, es: f64, x: f64, delta: f64, inv_delta: f64) -> f64 {
    let z = x * delta;
    let series = x * es * expm1_over_z(z);
    let difference = (em - es) * inv_delta;
    if z.abs() <= SERIES_LIMIT {
        series
    } else {
        difference
    }
}

/// The membrane (relative to leak) at each of `sample_times` (ascending), replaying the events
/// and the resets at `spikes` (as the integration returned them for the same inputs).
pub(crate) fn membrane_at(
    c: &NeuronConsts,
    times: &[f64],
    weights: &[f64],
    spikes: &[f64],
    sample_times: &[f64],
) -> Vec<f64> {
    let mut out = Vec::with_capacity(sample_times.len());
    let (mut v, mut j, mut t) = (0.0, 0.0, 0.0);
    let (mut k, mut s) = (0, 0);
    let mut release = f64::NEG_INFINITY;
    let step = |v: f64, j: f64, t: f64, to: f64, release: f64| -> (f64, f64) {
        if to <= t {
            (v, j)
        } else if release > t {
            (c.v_reset, j * exp(-(to - t) * c.inv_tau_s))
        } else {
            c.advance(v, j, to - t)
        }
    };
    for &ts in sample_times {
        loop {
            let te = if k < times.len() {
                times[k]
            } else {
                f64::INFINITY
            };
            let tsp = if s < spikes.len() {
                spikes[s]
            } else {
                f64::INFINITY
            };
            let tr = if release > t { release } else { f64::INFINITY };
            let tb = te.min(tsp).min(tr);
            if tb > ts || !tb.is_finite() {
                break;
            }
            (v, j) = step(v, j, t, tb, release);
            t = t.max(tb);
            if tb == tsp {
                v = c.v_reset;
                release = tsp + c.t_ref;
                s += 1;
            } else if tb == te {
                j += weights[k];
                k += 1;
            } else {
                v = c.v_reset;
            }
        }
        (v, j) = step(v, j, t, ts, release);
        t = t.max(ts);
        out.push(v);
    }
    out
}
