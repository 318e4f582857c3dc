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

/// Calls `body(args)`, a function that is `#[inline(always)]`, compiled for AVX-512 or AVX2
/// when the processor has them (chosen at run time), else for the baseline processor: the
/// loops the compiler vectorises then take eight or four doubles per instruction instead of
/// two. IEEE arithmetic makes every build give identical bits. This is the one place in the
/// workspace that uses `unsafe`.
macro_rules! widest_simd {
    ($body:ident($($arg:ident: $ty:ty),* $(,)?)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            #[inline(never)]
            #[allow(unsafe_code)]
            unsafe fn avx512($($arg: $ty),*) {
                $body($($arg),*)
            }
            #[target_feature(enable = "avx2")]
            #[inline(never)]
            #[allow(unsafe_code)]
            unsafe fn avx2($($arg: $ty),*) {
                $body($($arg),*)
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the processor supports AVX-512F (checked just above), which is all a
                // function compiled with `target_feature(enable = "avx512f")` requires of its
                // caller.
                #[allow(unsafe_code)]
                unsafe {
                    avx512($($arg),*)
                }
                return;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: as above, for AVX2.
                #[allow(unsafe_code)]
                unsafe {
                    avx2($($arg),*)
                }
                return;
            }
        }
        $body($($arg),*)
    }};
}

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

/// A Halley step at most this long ends a search (see [`NeuronConsts::root_step`]).
const HALLEY_DONE: f64 = 1e-4;

/// A threshold-crossing search in progress.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RootSearch {
    v0: f64,
    j0: f64,
    theta: f64,
    lo: f64,
    hi: f64,
    x: f64,
    x_max: f64,
    iterations: u32,
    done: bool,
}

impl RootSearch {
    /// A search that is already done, at the start of its interval.
    const AT_START: RootSearch = RootSearch {
        v0: 0.0,
        j0: 0.0,
        theta: 0.0,
        lo: 0.0,
        hi: 0.0,
        x: 0.0,
        x_max: 0.0,
        iterations: 0,
        done: true,
    };

    fn result(&self) -> f64 {
        self.x.clamp(0.0, self.x_max)
    }
}

/// Rounds of [`SearchColumns::rounds`]: the Hermite start leaves one or two Halley steps for
/// nearly every search.
const VECTOR_ROUNDS: u32 = 3;

/// A group's crossing searches as columns, so that one Halley step is taken for all of them in
/// one loop the compiler vectorises.
#[derive(Debug, Default)]
pub(crate) struct SearchColumns {
    v0: Vec<f64>,
    j0: Vec<f64>,
    theta: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    x: Vec<f64>,
    inv_tau_m: Vec<f64>,
    inv_tau_s: Vec<f64>,
    delta: Vec<f64>,
    inv_delta: Vec<f64>,
    done: Vec<bool>,
}

impl SearchColumns {
    /// Up to [`VECTOR_ROUNDS`] steps of every open search in `searches` (of the neurons
    /// `pending[..].0`), each exactly [`NeuronConsts::root_step`], so with the same bits.
    #[inline(always)]
    fn rounds(
        &mut self,
        consts: &[NeuronConsts],
        pending: &[(u32, f64, f64, f64, usize)],
        searches: &mut [RootSearch],
    ) {
        let n = searches.len();
        let fill = |column: &mut Vec<f64>, field: fn(&RootSearch) -> f64| {
            column.clear();
            column.extend(searches.iter().map(field));
        };
        fill(&mut self.v0, |s| s.v0);
        fill(&mut self.j0, |s| s.j0);
        fill(&mut self.theta, |s| s.theta);
        fill(&mut self.lo, |s| s.lo);
        fill(&mut self.hi, |s| s.hi);
        fill(&mut self.x, |s| s.x);
        let of_neuron = |column: &mut Vec<f64>, field: fn(&NeuronConsts) -> f64| {
            column.clear();
            column.extend(pending.iter().map(|p| field(&consts[p.0 as usize])));
        };
        of_neuron(&mut self.inv_tau_m, |c| c.inv_tau_m);
        of_neuron(&mut self.inv_tau_s, |c| c.inv_tau_s);
        of_neuron(&mut self.delta, |c| c.delta);
        of_neuron(&mut self.inv_delta, |c| c.inv_delta);
        self.done.clear();
        self.done.extend(searches.iter().map(|s| s.done));
        let mut rounds = 0;
        while rounds < VECTOR_ROUNDS {
            rounds += 1;
            if !self.step_all(n) {
                break;
            }
        }
        for (i, s) in searches.iter_mut().enumerate() {
            if !s.done {
                s.x = self.x[i];
                s.lo = self.lo[i];
                s.hi = self.hi[i];
                s.done = self.done[i];
                s.iterations = rounds;
            }
        }
    }

    /// One Halley step of every open search ([`halley_all`]). Returns whether any search is
    /// still open.
    #[inline(always)]
    fn step_all(&mut self, n: usize) -> bool {
        halley_all(
            SearchConsts {
                v0: &self.v0[..n],
                j0: &self.j0[..n],
                theta: &self.theta[..n],
                inv_tau_m: &self.inv_tau_m[..n],
                inv_tau_s: &self.inv_tau_s[..n],
                delta: &self.delta[..n],
                inv_delta: &self.inv_delta[..n],
            },
            &mut self.x[..n],
            &mut self.lo[..n],
            &mut self.hi[..n],
            &mut self.done[..n],
        )
    }
}

/// What a step of [`halley_all`] reads: each search's start state and threshold, and its
/// neuron's constants.
#[derive(Clone, Copy)]
struct SearchConsts<'a> {
    v0: &'a [f64],
    j0: &'a [f64],
    theta: &'a [f64],
    inv_tau_m: &'a [f64],
    inv_tau_s: &'a [f64],
    delta: &'a [f64],
    inv_delta: &'a [f64],
}

/// One Halley step of every open search, branch-free: [`NeuronConsts::root_step`] with both
/// outcomes computed and one selected, so that the compiler vectorises the loop. (A free
/// function of slices: as a method reading its columns from `self` the loop stays scalar.)
/// Returns whether any search is still open.
#[inline(always)]
fn halley_all(
    consts: SearchConsts<'_>,
    xs: &mut [f64],
    los: &mut [f64],
    his: &mut [f64],
    done: &mut [bool],
) -> bool {
    let n = xs.len();
    let SearchConsts {
        v0,
        j0,
        theta,
        inv_tau_m,
        inv_tau_s,
        delta,
        inv_delta,
    } = consts;
    let (v0, j0, theta) = (&v0[..n], &j0[..n], &theta[..n]);
    let (inv_tau_m, inv_tau_s) = (&inv_tau_m[..n], &inv_tau_s[..n]);
    let (delta, inv_delta) = (&delta[..n], &inv_delta[..n]);
    let (los, his) = (&mut los[..n], &mut his[..n]);
    let done = &mut done[..n];
    let mut open = false;
    for i in 0..n {
        let (x, lo, hi) = (xs[i], los[i], his[i]);
        let (em, es, k) = decay(x, inv_tau_m[i], inv_tau_s[i], delta[i], inv_delta[i]);
        let v = em * v0[i] + k * j0[i];
        let f = v - theta[i];
        let below = f < 0.0;
        let lo1 = if below { x } else { lo };
        let hi1 = if below { hi } else { x };
        let slope = es * j0[i] - v * inv_tau_m[i];
        let curvature = -es * j0[i] * inv_tau_s[i] - slope * inv_tau_m[i];
        let step = 2.0 * f * slope / (2.0 * slope * slope - f * curvature);
        let halley = x - step;
        let ok = (slope > 0.0) & (halley > lo1) & (halley < hi1);
        let zero = f == 0.0;
        let moved = if ok { halley } else { 0.5 * (lo1 + hi1) };
        let x1 = if zero { x } else { moved };
        let finished = zero
            | (ok & (step.abs() <= HALLEY_DONE))
            | (hi1 - lo1 <= 4.0 * f64::EPSILON * (1.0 + hi1.abs()));
        let was = done[i];
        xs[i] = if was { x } else { x1 };
        los[i] = if was { lo } else { lo1 };
        his[i] = if was { hi } else { hi1 };
        done[i] = was | finished;
        open |= !(was | finished);
    }
    open
}

/// `(e^z - 1) / z` for `|z| <= 0.05`, Taylor series to `z^8` (error below 1e-17).
#[inline(always)]
fn expm1_over_z(z: f64) -> f64 {
    let mut p = 1.0 / 362_880.0;
    p = p * z + 1.0 / 40_320.0;
    p = p * z + 1.0 / 5_040.0;
    p = p * z + 1.0 / 720.0;
    p = p * z + 1.0 / 120.0;
    p = p * z + 1.0 / 24.0;
    p = p * z + 1.0 / 6.0;
    p = p * z + 1.0 / 2.0;
    p * z + 1.0
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

/// A neuron integrated step by step (one interval, or one step of a crossing search, per call),
/// so that the work of many neurons can be interleaved; each neuron still performs exactly the
/// operations of an uninterrupted run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Runner {
    state: State,
    /// A crossing search in progress and the time of the event ending its interval.
    search: Option<(RootSearch, f64)>,
    /// Nothing further can happen in the window.
    pub(crate) done: bool,
}

impl Runner {
    pub(crate) fn new(state: State) -> Self {
        Self {
            state,
            search: None,
            done: false,
        }
    }

    /// Advances by one interval or one search step, appending a spike to `out` (the neuron's
    /// spikes so far) when one is found.
    pub(crate) fn step(
        &mut self,
        c: &NeuronConsts,
        theta: f64,
        input: &NeuronInput<'_>,
        t_end: f64,
        max_spikes: usize,
        out: &mut Vec<f64>,
    ) {
        if let Some((mut search, next)) = self.search.take() {
            c.root_step(&mut search);
            if search.done {
                self.fire(c, search.result(), next, t_end, max_spikes, out);
            } else {
                self.search = Some((search, next));
            }
            return;
        }
        let NeuronInput { times, weights } = *input;
        let n = times.len();
        let st = &mut self.state;
        while st.k < n && times[st.k] <= st.t {
            st.j += weights[st.k];
            st.k += 1;
        }
        if st.t >= t_end || out.len() >= max_spikes {
            self.done = true;
            return;
        }
        let next = if st.k < n { times[st.k] } else { f64::INFINITY };
        if st.release > st.t {
            // Held at reset; the synaptic current decays and keeps collecting events.
            let until = if st.release < next { st.release } else { next };
            st.j *= exp(-(until - st.t) * c.inv_tau_s);
            st.t = until;
            return;
        }
        match c.segment(theta, st.v, st.j, next - st.t, None) {
            Segment::Quiet { v_end, j_end } => {
                if next.is_finite() {
                    st.v = v_end;
                    st.j = j_end;
                    st.t = next;
                } else {
                    self.done = true;
                }
            }
            Segment::Immediate => self.fire(c, 0.0, next, t_end, max_spikes, out),
            Segment::Bracket { hi, f_hi, slope_hi } => {
                let search = c.root_start(st.v, st.j, theta, hi, f_hi, slope_hi);
                self.search = Some((search, next));
            }
        }
    }

    /// The crossing `x` after the current state: spike, reset, refractory hold.
    fn fire(
        &mut self,
        c: &NeuronConsts,
        x: f64,
        next: f64,
        t_end: f64,
        max_spikes: usize,
        out: &mut Vec<f64>,
    ) {
        let st = &mut self.state;
        let ts = if st.t + x < next { st.t + x } else { next };
        if ts >= t_end {
            self.done = true;
            return;
        }
        out.push(ts);
        st.release = ts + c.t_ref;
        if st.release >= t_end || out.len() >= max_spikes {
            // Held until the window closes (or enough spikes): nothing further to find.
            self.done = true;
            return;
        }
        st.j *= exp(-(ts - st.t) * c.inv_tau_s);
        st.v = c.v_reset;
        st.t = ts;
    }
}

/// A neuron's first spike as found by [`first_spikes`], with what is needed to continue it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FirstSpike {
    /// Spike time (`+inf`: none in the window).
    pub(crate) t: f64,
    /// Start of the interval in which it fired, and the synaptic current there.
    pub(crate) t_segment: f64,
    pub(crate) j_segment: f64,
    /// Events added before the spike.
    pub(crate) k: usize,
}

impl FirstSpike {
    const NONE: FirstSpike = FirstSpike {
        t: f64::INFINITY,
        t_segment: 0.0,
        j_segment: 0.0,
        k: 0,
    };

    /// The state right after the spike (reset, refractory), from which a [`Runner`] finds the
    /// later spikes.
    pub(crate) fn state_after(&self, c: &NeuronConsts) -> State {
        State {
            t: self.t,
            v: c.v_reset,
            j: self.j_segment * exp(-(self.t - self.t_segment) * c.inv_tau_s),
            k: self.k,
            release: self.t + c.t_ref,
        }
    }
}

/// The constants of a group of neurons as columns (one vector per constant), so that one
/// interval can be applied to all of them in a loop the compiler vectorises.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Columns {
    tau_m: Vec<f64>,
    ceiling_v: Vec<f64>,
    ceiling_j: Vec<f64>,
    peak_offset: Vec<f64>,
    inv_tau_m: Vec<f64>,
    inv_tau_s: Vec<f64>,
    delta: Vec<f64>,
    inv_delta: Vec<f64>,
    /// Every neuron's decay factors for whole numbers of clock ticks, for groups whose events
    /// all lie on the clock grid.
    ticks: Option<std::sync::Arc<TickFactors>>,
}

impl Columns {
    pub(crate) fn new(consts: &[NeuronConsts]) -> Self {
        let column = |f: fn(&NeuronConsts) -> f64| consts.iter().map(f).collect();
        Self {
            tau_m: column(|c| c.tau_m),
            ceiling_v: column(|c| c.ceiling_v),
            ceiling_j: column(|c| c.ceiling_j),
            peak_offset: column(|c| c.peak_offset),
            inv_tau_m: column(|c| c.inv_tau_m),
            inv_tau_s: column(|c| c.inv_tau_s),
            delta: column(|c| c.delta),
            inv_delta: column(|c| c.inv_delta),
            ticks: None,
        }
    }

    /// Adds the decay factors of every whole number of clock ticks `tick` up to `t_max`, used
    /// for the intervals that span whole ticks (a group whose events all come from the FPGA,
    /// which releases them on its clock).
    pub(crate) fn with_ticks(mut self, tick: f64, t_max: f64) -> Self {
        self.ticks = TickFactors::new(&self, tick, t_max).map(std::sync::Arc::new);
        self
    }

    /// `[e_m, e_s, K]` of neuron `i` across `gap`.
    #[inline(always)]
    fn decay(&self, i: usize, gap: f64) -> (f64, f64, f64) {
        decay(
            gap,
            self.inv_tau_m[i],
            self.inv_tau_s[i],
            self.delta[i],
            self.inv_delta[i],
        )
    }

    fn len(&self) -> usize {
        self.tau_m.len()
    }
}

/// Decay factors of a group's neurons for whole numbers of clock ticks: an interval of `n`
/// ticks costs two table rows and four multiplications per neuron instead of two exponentials.
///
/// `n = h LOW + l` is split into a high part (rows for `h LOW` ticks) and a low part (rows for
/// `l` ticks); the factors of the sum follow from those of the parts exactly,
/// `e(a + b) = e(a) e(b)` and `K(a + b) = e_m(b) K(a) + K(b) e_s(a)` (integrate across `a`,
/// then `b`), with no cancellation (every term is positive), so a composed factor lies within
/// a few units in the last place of the directly computed one. Row 0 of either table is the
/// identity `(1, 1, 0)`, so an interval shorter than `LOW` ticks gets exactly the directly
/// computed factors.
#[derive(Clone, Debug, PartialEq)]
struct TickFactors {
    tick: f64,
    /// Neurons per row.
    m: usize,
    /// Row `l` (`l` ticks): `[e_m; m]`, `[e_s; m]`, `[K; m]`.
    low: Vec<f64>,
    /// Row `h` (`h LOW` ticks), laid out the same way.
    high: Vec<f64>,
}

/// Rows of the low table of [`TickFactors`].
const LOW: usize = 64;

impl TickFactors {
    /// The tables for intervals up to `t_max`, or `None` when there is no clock (`tick <= 0`).
    fn new(cols: &Columns, tick: f64, t_max: f64) -> Option<Self> {
        if !(tick > 0.0 && t_max.is_finite() && t_max >= 0.0) {
            return None;
        }
        let m = cols.len();
        let n_max = (t_max / tick).ceil() as usize + 1;
        let table = |rows: usize, ticks_per_row: usize| {
            let mut out = vec![0.0; rows * 3 * m];
            for (r, row) in out.chunks_exact_mut(3 * m).enumerate() {
                let gap = (r * ticks_per_row) as f64 * tick;
                for i in 0..m {
                    let (em, es, k) = cols.decay(i, gap);
                    (row[i], row[m + i], row[2 * m + i]) = (em, es, k);
                }
            }
            out
        };
        Some(Self {
            tick,
            m,
            low: table(LOW, 1),
            high: table(n_max / LOW + 1, LOW),
        })
    }

    /// Offsets of the low and the high row for an interval of length `gap`, if it spans a whole
    /// number of ticks (to within rounding) that the tables cover.
    #[inline]
    fn rows(&self, gap: f64) -> Option<(usize, usize)> {
        let x = gap / self.tick;
        let n = round_nearest(x);
        if !((x - n).abs() <= 1e-9 && n >= 0.0) {
            return None;
        }
        let n = n as usize;
        let row = 3 * self.m;
        let high = (n / LOW) * row;
        (high < self.high.len()).then_some(((n % LOW) * row, high))
    }

    /// The columns of the rows [`Self::rows`] gave: `e_m`, `e_s`, `K` of the low row, then of
    /// the high row.
    #[inline(always)]
    fn columns(&self, (low, high): (usize, usize)) -> [&[f64]; 6] {
        let m = self.m;
        let (lo, hi) = (&self.low[low..low + 3 * m], &self.high[high..high + 3 * m]);
        [
            &lo[..m],
            &lo[m..2 * m],
            &lo[2 * m..],
            &hi[..m],
            &hi[m..2 * m],
            &hi[2 * m..],
        ]
    }

    /// `[e_m, e_s, K]` of neuron `i` across the interval of [`Self::rows`].
    fn factors(&self, rows: (usize, usize), i: usize) -> [f64; 3] {
        let [em_l, es_l, k_l, em_h, es_h, k_h] = self.columns(rows);
        let (em, es, k) = compose(em_l[i], es_l[i], k_l[i], em_h[i], es_h[i], k_h[i]);
        [em, es, k]
    }
}

/// The decay factors across `a + b` from those across `b` (`_l`) and `a` (`_h`).
#[inline(always)]
fn compose(em_l: f64, es_l: f64, k_l: f64, em_h: f64, es_h: f64, k_h: f64) -> (f64, f64, f64) {
    (em_h * em_l, es_h * es_l, em_l * k_h + k_l * es_h)
}

/// Buffers of [`first_spikes`].
#[derive(Debug, Default)]
pub(crate) struct Lockstep {
    v: Vec<f64>,
    j: Vec<f64>,
    v_next: Vec<f64>,
    j_next: Vec<f64>,
    /// This sample's thresholds; `+inf` once a neuron's first crossing is found.
    theta: Vec<f64>,
    /// Whether the interval just computed may hold a crossing.
    hit: Vec<bool>,
    /// After the last event: whether a neuron is at or above threshold when it starts.
    at_start: Vec<bool>,
    pending: Vec<(u32, f64, f64, f64, usize)>,
    searches: Vec<RootSearch>,
    /// The searches again as columns, for the vectorised rounds.
    columns: SearchColumns,
    intervals: Intervals,
    /// One neuron's decay factors across every interval, for small groups.
    em: Vec<f64>,
    es: Vec<f64>,
    kk: Vec<f64>,
}

/// The event-free intervals every neuron of a group goes through: from 0 and from each distinct
/// event time up to the next one (the last one open-ended unless the window closes first), with
/// the number of events added at each interval's start.
#[derive(Debug, Default)]
struct Intervals {
    starts: Vec<f64>,
    ends: Vec<f64>,
    /// `end - start`.
    gaps: Vec<f64>,
    added: Vec<usize>,
}

impl Intervals {
    /// The intervals of the ascending event `times` within a window ending at `t_end`.
    fn walk(&mut self, times: &[f64], t_end: f64) {
        self.starts.clear();
        self.ends.clear();
        self.gaps.clear();
        self.added.clear();
        let n = times.len();
        let mut t = 0.0;
        let mut k = 0;
        loop {
            while k < n && times[k] <= t {
                k += 1;
            }
            if t >= t_end {
                break;
            }
            let next = if k < n { times[k] } else { f64::INFINITY };
            self.starts.push(t);
            self.ends.push(next);
            self.gaps.push(next - t);
            self.added.push(k);
            if !next.is_finite() {
                break;
            }
            t = next;
        }
    }
}

/// Intervals whose decay factors [`by_neuron`] computes at a time.
const DECAY_CHUNK: usize = 32;

/// Groups with fewer neurons than this are integrated neuron by neuron ([`by_neuron`]), larger
/// ones in lockstep ([`lockstep`]): a vector loop over a handful of neurons would be mostly
/// remainder.
const BY_NEURON_BELOW: usize = 8;

/// One event-free interval of length `gap` (finite, shared by all neurons) applied to every
/// neuron at once: each neuron's state at the interval's end into `v_next`/`j_next`, and in
/// `hit` whether [`NeuronConsts::segment`] could find anything but a quiet interval (at or above
/// threshold at the start or the end, or a maximum inside that the current could lift to
/// threshold). The arithmetic is exactly `segment`'s, so a neuron without a hit ends the interval
/// with the same bits as the sequential integration. Returns whether any neuron has a hit.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn interval_all(
    cols: &Columns,
    theta: &[f64],
    v: &[f64],
    j: &[f64],
    decays: Decays<'_>,
    v_next: &mut [f64],
    j_next: &mut [f64],
    hit: &mut [bool],
) -> bool {
    let m = cols.len();
    let (theta, v, j) = (&theta[..m], &v[..m], &j[..m]);
    let (v_next, j_next, hit) = (&mut v_next[..m], &mut j_next[..m], &mut hit[..m]);
    let tau_m = &cols.tau_m[..m];
    let (ceiling_v, ceiling_j) = (&cols.ceiling_v[..m], &cols.ceiling_j[..m]);
    let mut any = false;
    // Each neuron's state at the interval's end and whether it may cross in it.
    macro_rules! apply {
        ($i:ident, $factors:expr) => {{
            let (em, es, k) = $factors;
            let (v1, j1, h) = quiet_or_hit(
                em,
                es,
                k,
                v[$i],
                j[$i],
                tau_m[$i],
                ceiling_v[$i],
                ceiling_j[$i],
                theta[$i],
            );
            v_next[$i] = v1;
            j_next[$i] = j1;
            hit[$i] = h;
            any |= h;
        }};
    }
    match decays {
        Decays::Gap(gap) => {
            let (inv_tau_m, inv_tau_s) = (&cols.inv_tau_m[..m], &cols.inv_tau_s[..m]);
            let (delta, inv_delta) = (&cols.delta[..m], &cols.inv_delta[..m]);
            for i in 0..m {
                let factors = decay(gap, inv_tau_m[i], inv_tau_s[i], delta[i], inv_delta[i]);
                apply!(i, factors);
            }
        }
        Decays::Ticks(table, rows) => {
            let [em_l, es_l, k_l, em_h, es_h, k_h] = table.columns(rows);
            let (em_l, es_l, k_l) = (&em_l[..m], &es_l[..m], &k_l[..m]);
            let (em_h, es_h, k_h) = (&em_h[..m], &es_h[..m], &k_h[..m]);
            for i in 0..m {
                let factors = compose(em_l[i], es_l[i], k_l[i], em_h[i], es_h[i], k_h[i]);
                apply!(i, factors);
            }
        }
    }
    any
}

/// Where [`interval_all`] takes each neuron's decay factors from.
#[derive(Clone, Copy)]
enum Decays<'a> {
    /// Computed for an interval of this length.
    Gap(f64),
    /// These rows of the clock-tick tables.
    Ticks(&'a TickFactors, (usize, usize)),
}

/// [`NeuronConsts::segment`] after the last event (an open-ended interval) for every neuron at
/// once, branch-free so that the loop vectorises, with the same arithmetic, so the same bits:
/// `at_start[i]` when neuron `i` is at or above threshold already, `hit[i]` when it crosses
/// (immediately, or on its rise to a maximum at `hi[i]` that lies `f_hi[i]` above threshold).
/// Returns whether any neuron crosses.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn final_all(
    cols: &Columns,
    theta: &[f64],
    v: &[f64],
    j: &[f64],
    hi: &mut [f64],
    f_hi: &mut [f64],
    at_start: &mut [bool],
    hit: &mut [bool],
) -> bool {
    let m = cols.len();
    let (theta, v, j) = (&theta[..m], &v[..m], &j[..m]);
    let (hi, f_hi) = (&mut hi[..m], &mut f_hi[..m]);
    let (at_start, hit) = (&mut at_start[..m], &mut hit[..m]);
    let tau_m = &cols.tau_m[..m];
    let (ceiling_v, ceiling_j) = (&cols.ceiling_v[..m], &cols.ceiling_j[..m]);
    let (inv_tau_m, inv_tau_s) = (&cols.inv_tau_m[..m], &cols.inv_tau_s[..m]);
    let (delta, inv_delta) = (&cols.delta[..m], &cols.inv_delta[..m]);
    let peak_offset = &cols.peak_offset[..m];
    let mut any = false;
    for i in 0..m {
        let (v0, j0, th) = (v[i], j[i], theta[i]);
        let immediate = v0 >= th;
        let rising = (j0 > 0.0) & (j0 * tau_m[i] > v0);
        let ceiling = peak_ceiling(v0, j0, ceiling_v[i], ceiling_j[i]);
        // NeuronConsts::peak, both forms.
        let q = v0 / j0;
        let arg = delta[i] * q;
        let equal = delta[i] == 0.0;
        let x = if equal {
            -(peak_offset[i] + q)
        } else {
            -(peak_offset[i] + ln_1p(arg) / delta[i])
        };
        let valid = (equal | (arg > -1.0)) & x.is_finite();
        let x = if x > 0.0 { x } else { 0.0 };
        let (em, _, k) = decay(x, inv_tau_m[i], inv_tau_s[i], delta[i], inv_delta[i]);
        let v_peak = em * v0 + k * j0;
        let crosses = rising & (ceiling >= th) & valid & (v_peak >= th);
        hi[i] = x;
        f_hi[i] = v_peak - th;
        at_start[i] = immediate;
        hit[i] = immediate | crosses;
        any |= immediate | crosses;
    }
    any
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

/// The state `(v, j)` after an interval with decay factors `(em, es, k)`, and whether
/// [`NeuronConsts::segment`] could find anything in it but a quiet interval (at or above
/// threshold at its start or end, or a maximum inside that the current could lift to
/// threshold). Non-short-circuit `&` and `|` keep it branch-free.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn quiet_or_hit(
    em: f64,
    es: f64,
    k: f64,
    v0: f64,
    j0: f64,
    tau_m: f64,
    ceiling_v: f64,
    ceiling_j: f64,
    theta: f64,
) -> (f64, f64, bool) {
    let v1 = em * v0 + k * j0;
    let j1 = es * j0;
    let rising = (j0 > 0.0) & (j0 * tau_m > v0);
    let ceiling = peak_ceiling(v0, j0, ceiling_v, ceiling_j);
    let peak_inside = rising & (j1 * tau_m < v1) & (ceiling >= theta);
    let h = (v0 >= theta) | (v1 >= theta) | peak_inside;
    (v1, j1, h)
}

/// Relative margin of [`peak_ceiling`] over the exact bound, far above rounding.
const PEAK_CEILING_MARGIN: f64 = 1e-9;

/// An upper bound on the maximum of the membrane after the state `(v, j)`, `j > 0`, from the
/// neuron's `ceiling_v = tau_m / (tau_m + tau_s)` and `ceiling_j = tau_s ceiling_v` (each with
/// [`PEAK_CEILING_MARGIN`]): the current adds at most its integral `tau_s (j - j(x))` and the
/// leak only pulls towards rest, so `v(x) <= max(v, 0) + tau_s (j - j(x))`, and at a maximum
/// the slope vanishes, `v_peak = tau_m j(x_peak)`; together
/// `v_peak <= tau_m (max(v, 0) + tau_s j) / (tau_m + tau_s)`, about half of the
/// `max(v, 0) + tau_s j` the current alone bounds.
#[inline(always)]
fn peak_ceiling(v: f64, j: f64, ceiling_v: f64, ceiling_j: f64) -> f64 {
    ceiling_v * (if v > 0.0 { v } else { 0.0 }) + ceiling_j * j
}

/// A group of neurons that shares one event list (one layer's neurons in one chip half), and
/// those events.
#[derive(Clone, Copy)]
pub(crate) struct Group<'a> {
    pub(crate) consts: &'a [NeuronConsts],
    /// The same constants as columns.
    pub(crate) cols: &'a Columns,
    /// This sample's thresholds (trial noise included).
    pub(crate) thetas: &'a [f64],
    /// Event times, ascending, all `>= 0`.
    pub(crate) times: &'a [f64],
    /// The source of each event.
    pub(crate) sources: &'a [u32],
    /// `weights[s * m + i]`: neuron `i`'s weight for source `s` (`m` neurons), so that each
    /// event adds one contiguous column.
    pub(crate) weights: &'a [f64],
    /// End of the sample window.
    pub(crate) t_end: f64,
}

/// The first spike of every neuron of a group that shares one event list, exactly as the
/// sequential integration finds it, but in lockstep: all neurons advance through the same
/// intervals together (one vectorised loop per interval, see [`interval_all`]) and all crossing
/// searches run interleaved, so that the processor works on many independent neurons at once
/// instead of waiting on one neuron's chain of exponentials.
///
/// Runs [`first_spikes_portable`] compiled for the widest vectors the processor has
/// ([`widest_simd`]).
pub(crate) fn first_spikes(group: &Group<'_>, buf: &mut Lockstep, out: &mut Vec<FirstSpike>) {
    widest_simd!(first_spikes_portable(
        group: &Group<'_>,
        buf: &mut Lockstep,
        out: &mut Vec<FirstSpike>,
    ));
}

/// The body of [`first_spikes`], for any processor.
#[inline(always)]
fn first_spikes_portable(group: &Group<'_>, buf: &mut Lockstep, out: &mut Vec<FirstSpike>) {
    let Group { consts, t_end, .. } = *group;
    let m = consts.len();
    out.clear();
    out.resize(m, FirstSpike::NONE);
    buf.pending.clear();
    buf.searches.clear();
    buf.intervals.walk(group.times, t_end);
    if m < BY_NEURON_BELOW {
        by_neuron(group, buf);
    } else {
        lockstep(group, buf);
    }
    let Lockstep {
        pending,
        searches,
        columns,
        ..
    } = buf;
    // The first rounds, which nearly every search needs, step all searches at once in one
    // vectorised loop; the few still open continue interleaved, one step per round:
    // independent work the processor can overlap.
    columns.rounds(consts, pending, searches);
    let mut open = true;
    while open {
        open = false;
        for (s, p) in searches.iter_mut().zip(pending.iter()) {
            if !s.done {
                consts[p.0 as usize].root_step(s);
                open = true;
            }
        }
    }
    for (s, &(i, t_seg, next, j_seg, k_added)) in searches.iter().zip(pending.iter()) {
        let x = s.result();
        let ts = if t_seg + x < next { t_seg + x } else { next };
        if ts < t_end {
            out[i as usize] = FirstSpike {
                t: ts,
                t_segment: t_seg,
                j_segment: j_seg,
                k: k_added,
            };
        }
    }
}

/// [`first_spikes`] for a large group: all neurons advance through each interval together, in
/// one vectorised loop ([`interval_all`]); the neurons whose interval may hold a crossing are
/// then looked at alone. Leaves the crossing searches in `buf`.
#[inline(always)]
fn lockstep(group: &Group<'_>, buf: &mut Lockstep) {
    let Group {
        consts,
        cols,
        thetas,
        sources,
        weights,
        ..
    } = *group;
    let m = consts.len();
    let Lockstep {
        v,
        j,
        v_next,
        j_next,
        theta,
        hit,
        at_start,
        pending,
        searches,
        intervals,
        ..
    } = buf;
    at_start.clear();
    at_start.resize(m, false);
    for buffer in [&mut *v, &mut *j, &mut *v_next, &mut *j_next] {
        buffer.clear();
        buffer.resize(m, 0.0);
    }
    theta.clear();
    theta.extend_from_slice(&thetas[..m]);
    hit.clear();
    hit.resize(m, false);
    let mut alive = m;
    let mut e = 0;
    for q in 0..intervals.starts.len() {
        let (t, next, k) = (intervals.starts[q], intervals.ends[q], intervals.added[q]);
        while e < k {
            let column = &weights[sources[e] as usize * m..][..m];
            for (ji, &w) in j.iter_mut().zip(column) {
                *ji += w;
            }
            e += 1;
        }
        // A finite interval is applied to all neurons at once and only those with a possible
        // crossing are looked at alone; after the last event, every neuron still waiting
        // either crosses on its final rise or never does.
        let gap = intervals.gaps[q];
        let finite = next.is_finite();
        let ticks = match &cols.ticks {
            Some(table) if finite => table.rows(gap).map(|rows| (&**table, rows)),
            _ => None,
        };
        let decays = match ticks {
            Some((table, rows)) => Decays::Ticks(table, rows),
            None => Decays::Gap(gap),
        };
        if !finite {
            // After the last event, all waiting neurons' final rises are looked at in one
            // vectorised loop (fired neurons, with an infinite threshold, have none).
            if final_all(cols, theta, v, j, v_next, j_next, at_start, hit) {
                for i in 0..m {
                    if hit[i] {
                        let search = if at_start[i] {
                            RootSearch::AT_START
                        } else {
                            consts[i].root_start(v[i], j[i], theta[i], v_next[i], j_next[i], 0.0)
                        };
                        pending.push((i as u32, t, next, j[i], k));
                        searches.push(search);
                    }
                }
            }
            break;
        }
        if interval_all(cols, theta, v, j, decays, v_next, j_next, hit) {
            for i in 0..m {
                if !hit[i] {
                    continue;
                }
                let factors = ticks.map(|(table, rows)| table.factors(rows, i));
                if let Some(search) = consts[i].search(theta[i], v[i], j[i], gap, factors) {
                    pending.push((i as u32, t, next, j[i], k));
                    searches.push(search);
                    theta[i] = f64::INFINITY;
                    alive -= 1;
                }
            }
        }
        std::mem::swap(v, v_next);
        std::mem::swap(j, j_next);
        if alive == 0 {
            break;
        }
    }
}

/// [`first_spikes`] for a small group (fewer neurons than a vector has lanes): each neuron's
/// decay factors come from vectorised loops over the intervals ([`decay_all`], a chunk of
/// intervals at a time, up to its first crossing), and the neuron scans them alone. The same arithmetic as [`lockstep`], so the same bits. Leaves the
/// crossing searches in `buf`.
#[inline(always)]
fn by_neuron(group: &Group<'_>, buf: &mut Lockstep) {
    let Group {
        consts,
        cols,
        thetas,
        sources,
        weights,
        ..
    } = *group;
    let m = consts.len();
    let Lockstep {
        pending,
        searches,
        intervals,
        em,
        es,
        kk,
        ..
    } = buf;
    let Intervals {
        starts,
        ends,
        gaps,
        added,
    } = &*intervals;
    let n_finite = gaps.iter().take_while(|g| g.is_finite()).count();
    for column in [&mut *em, &mut *es, &mut *kk] {
        column.clear();
        column.resize(n_finite, 0.0);
    }
    let (em, es, kk) = (
        &mut em[..n_finite],
        &mut es[..n_finite],
        &mut kk[..n_finite],
    );
    for i in 0..m {
        let c = &consts[i];
        let decay_consts = [
            cols.inv_tau_m[i],
            cols.inv_tau_s[i],
            cols.delta[i],
            cols.inv_delta[i],
        ];
        // Decay factors for the intervals up to here (computed a chunk at a time, so that few
        // are computed beyond the neuron's first crossing).
        let mut ready = 0;
        let theta = thetas[i];
        let (mut v, mut j) = (0.0, 0.0);
        let mut e = 0;
        for q in 0..gaps.len() {
            while e < added[q] {
                j += weights[sources[e] as usize * m + i];
                e += 1;
            }
            let gap = gaps[q];
            let (v1, j1, h) = if q < n_finite {
                if q == ready {
                    ready = (q + DECAY_CHUNK).min(n_finite);
                    let r = q..ready;
                    decay_all(
                        &gaps[r.clone()],
                        decay_consts,
                        &mut em[r.clone()],
                        &mut es[r.clone()],
                        &mut kk[r],
                    );
                }
                quiet_or_hit(
                    em[q],
                    es[q],
                    kk[q],
                    v,
                    j,
                    cols.tau_m[i],
                    cols.ceiling_v[i],
                    cols.ceiling_j[i],
                    theta,
                )
            } else {
                (0.0, 0.0, true)
            };
            if h && let Some(search) = c.search(theta, v, j, gap, None) {
                pending.push((i as u32, starts[q], ends[q], j, added[q]));
                searches.push(search);
                break;
            }
            v = v1;
            j = j1;
        }
    }
}

/// One neuron's decay factors (`[inv_tau_m, inv_tau_s, delta, inv_delta]`) across each of
/// `gaps`, in loops the compiler vectorises ([`widest_simd`]). (A function of its own: inlined
/// into [`by_neuron`] the loops stay scalar.)
#[inline(never)]
fn decay_all(gaps: &[f64], c: [f64; 4], em: &mut [f64], es: &mut [f64], kk: &mut [f64]) {
    widest_simd!(decay_all_portable(
        gaps: &[f64],
        c: [f64; 4],
        em: &mut [f64],
        es: &mut [f64],
        kk: &mut [f64],
    ));
}

/// The body of [`decay_all`], for any processor.
#[inline(always)]
fn decay_all_portable(gaps: &[f64], c: [f64; 4], em: &mut [f64], es: &mut [f64], kk: &mut [f64]) {
    let [inv_tau_m, inv_tau_s, delta, inv_delta] = c;
    // (Exactly `decay`, one factor per loop.)
    for (&gap, em) in gaps.iter().zip(em.iter_mut()) {
        *em = exp(-gap * inv_tau_m);
    }
    for (&gap, es) in gaps.iter().zip(es.iter_mut()) {
        *es = exp(-gap * inv_tau_s);
    }
    for (((&gap, &em), &es), kk) in gaps.iter().zip(&*em).zip(&*es).zip(kk) {
        *kk = kernel(em, es, gap, delta, inv_delta);
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

#[cfg(test)]
mod tests {
    use super::*;
    use spikeloop_backend_testkit::TestRng;
    use spikeloop_lif::{NeuronParams, membrane_potential, spike_time_sorted};

    fn first_spike(c: &NeuronConsts, times: &[f64], weights: &[f64]) -> (f64, Vec<f64>) {
        let input = NeuronInput { times, weights };
        let mut out = Vec::new();
        integrate(c, c.theta, &input, 1e9, 100, &mut out);
        (out.first().copied().unwrap_or(f64::INFINITY), out)
    }

    fn lif_params(c: &NeuronConsts) -> NeuronParams {
        NeuronParams {
            tau_m: c.tau_m,
            tau_s: c.tau_s,
            g_leak: 1.0 / c.tau_m,
            e_leak: 0.0,
            threshold: c.theta,
        }
    }

    #[test]
    fn first_spike_agrees_with_the_general_lif_solver() {
        let mut rng = TestRng::new(3);
        let mut fired = 0;
        let ratios = [1.0, 1.0 + 1e-9, 1.0 + 5e-4, 0.93, 1.1, 0.5, 2.0, 1.37];
        for trial in 0..400 {
            let ratio = ratios[trial % ratios.len()];
            let tau_s = 0.8 + 0.4 * rng.uniform(0.0, 1.0);
            let c = NeuronConsts::new(
                tau_s * ratio,
                tau_s,
                0.9 + 0.2 * rng.uniform(0.0, 1.0),
                0.0,
                0.3,
            );
            let n = 1 + (rng.uniform(0.0, 1.0) * 40.0) as usize;
            let mut times: Vec<f64> = (0..n).map(|_| 3.0 * rng.uniform(0.0, 1.0)).collect();
            times.sort_by(f64::total_cmp);
            let weights: Vec<f64> = (0..n)
                .map(|_| (rng.uniform(0.0, 1.0) - 0.3) * 4.0 / (n as f64).sqrt())
                .collect();
            let ours = first_spike(&c, &times, &weights).0;
            let theirs = spike_time_sorted(&lif_params(&c), &times, &weights).time;
            if theirs.is_finite() {
                fired += 1;
                assert!(
                    (ours - theirs).abs() < 1e-11,
                    "trial {trial}: ours {ours}, lif {theirs}"
                );
            } else {
                assert_eq!(ours, f64::INFINITY, "trial {trial}");
            }
        }
        assert!(fired > 150, "only {fired} of 400 trials fired");
    }

    #[test]
    fn lockstep_first_spikes_and_continuations_match_the_sequential_integrator() {
        let mut rng = TestRng::new(17);
        for trial in 0..40 {
            // Group sizes around and beyond the vector widths, up to a hidden layer's size.
            let m = [1, 2, 3, 5, 8, 9, 17, 64, 121][trial % 9];
            // Every eighth trial has no events at all (only a threshold below rest fires).
            let n = if trial % 8 == 7 {
                0
            } else {
                1 + (rng.uniform(0.0, 1.0) * 30.0) as usize
            };
            let mut times: Vec<f64> = (0..n).map(|_| 3.0 * rng.uniform(0.0, 1.0)).collect();
            times.sort_by(f64::total_cmp);
            if trial % 3 == 0 && n > 2 {
                times[1] = times[0]; // simultaneous events
            }
            // Some neurons with equal time constants, and some with a threshold below rest.
            let consts: Vec<NeuronConsts> = (0..m)
                .map(|i| {
                    let tau_s = 0.8 + 0.4 * rng.uniform(0.0, 1.0);
                    let tau_m = if i % 7 == 3 {
                        tau_s
                    } else {
                        0.8 + 0.4 * rng.uniform(0.0, 1.0)
                    };
                    let theta = if i % 11 == 5 {
                        -0.1
                    } else {
                        0.9 + 0.2 * rng.uniform(0.0, 1.0)
                    };
                    NeuronConsts::new(
                        tau_m,
                        tau_s,
                        theta,
                        0.1 * (rng.uniform(0.0, 1.0) - 0.5),
                        0.05 + 0.3 * rng.uniform(0.0, 1.0),
                    )
                })
                .collect();
            let thetas: Vec<f64> = consts.iter().map(|c| c.theta).collect();
            let weights: Vec<f64> = (0..m * n)
                .map(|_| (rng.uniform(0.0, 1.0) - 0.2) * 8.0 / (n as f64).sqrt())
                .collect();
            // Event e comes from source e; the lockstep form takes the weights source-major.
            let sources: Vec<u32> = (0..n as u32).collect();
            let by_source: Vec<f64> = (0..n * m).map(|x| weights[(x % m) * n + x / m]).collect();
            let mut buf = Lockstep::default();
            let mut firsts = Vec::new();
            let t_end = 6.0;
            let columns = Columns::new(&consts);
            let group = Group {
                consts: &consts,
                cols: &columns,
                thetas: &thetas,
                times: &times,
                sources: &sources,
                weights: &by_source,
                t_end,
            };
            first_spikes(&group, &mut buf, &mut firsts);
            // The build for any processor gives the same bits as the one chosen at run time.
            let mut portable = Vec::new();
            first_spikes_portable(&group, &mut buf, &mut portable);
            assert_eq!(portable, firsts, "trial {trial}");
            for i in 0..m {
                let input = NeuronInput {
                    times: &times,
                    weights: &weights[i * n..(i + 1) * n],
                };
                let mut sequential = Vec::new();
                integrate(&consts[i], thetas[i], &input, t_end, 50, &mut sequential);
                let first = sequential.first().copied().unwrap_or(f64::INFINITY);
                assert_eq!(
                    firsts[i].t.to_bits(),
                    first.to_bits(),
                    "trial {trial} neuron {i}"
                );
                if first.is_finite() {
                    let mut resumed = vec![firsts[i].t];
                    let state = firsts[i].state_after(&consts[i]);
                    if state.release < t_end {
                        integrate_from(
                            &consts[i],
                            thetas[i],
                            &input,
                            t_end,
                            50,
                            state,
                            &mut resumed,
                        );
                    }
                    assert_eq!(resumed, sequential, "trial {trial} neuron {i}");
                }
            }
        }
    }

    #[test]
    fn clock_tick_tables_agree_with_direct_factors_and_the_sequential_integrator() {
        let mut rng = TestRng::new(29);
        let tick = 1.0 / 750.0;
        let m = 40;
        // Time-constant ratios from 0.6 to 1.6, and some equal ones (the kernel's series).
        let consts: Vec<NeuronConsts> = (0..m)
            .map(|i| {
                let tau_s = 0.8 + 0.4 * rng.uniform(0.0, 1.0);
                let ratio = if i % 5 == 0 {
                    1.0
                } else {
                    0.6 + rng.uniform(0.0, 1.0)
                };
                NeuronConsts::new(
                    tau_s * ratio,
                    tau_s,
                    0.9 + 0.2 * rng.uniform(0.0, 1.0),
                    0.0,
                    0.3,
                )
            })
            .collect();
        let t_end = 6.0;
        let columns = Columns::new(&consts).with_ticks(tick, t_end);
        let table = columns.ticks.as_deref().expect("a clock gives tables");
        for n in [0, 1, 2, 7, 63, 64, 65, 130, 1234, 4499, 4500] {
            let gap = n as f64 * tick;
            let rows = table.rows(gap).expect("a whole number of ticks");
            for i in 0..m {
                let (em, es, k) = columns.decay(i, gap);
                let composed = table.factors(rows, i);
                if n < LOW {
                    assert_eq!(composed, [em, es, k], "{n} ticks, neuron {i}");
                }
                // (The direct `K` carries up to ~2e-15 relative error itself, by cancellation
                // just beyond the series' range.)
                for (a, b) in composed.into_iter().zip([em, es, k]) {
                    assert!(
                        (a - b).abs() <= 1e-14 * b,
                        "{n} ticks, neuron {i}: {a} vs {b}"
                    );
                }
            }
        }
        // Gaps between ticks, and beyond the tables, are left to the exponentials.
        assert_eq!(table.rows(2.5 * tick), None);
        assert_eq!(table.rows(t_end + LOW as f64 * tick), None);
        // Events on the clock grid (some simultaneous, some one tick apart): the tables give the
        // first spikes of the exact integration to rounding.
        let no_ticks = Columns::new(&consts);
        for trial in 0..20 {
            let n = 5 + (rng.uniform(0.0, 1.0) * 25.0) as usize;
            let mut times: Vec<f64> = (0..n)
                .map(|_| (rng.uniform(0.0, 1.0) * 2.0 / tick).round() * tick)
                .collect();
            times.sort_by(f64::total_cmp);
            for e in 1..n {
                if e % 4 == 0 {
                    times[e] = times[e - 1] + tick;
                }
            }
            let weights: Vec<f64> = (0..m * n)
                .map(|_| (rng.uniform(0.0, 1.0) - 0.2) * 8.0 / (n as f64).sqrt())
                .collect();
            let sources: Vec<u32> = (0..n as u32).collect();
            let thetas: Vec<f64> = consts.iter().map(|c| c.theta).collect();
            let run = |cols: &Columns| {
                let group = Group {
                    consts: &consts,
                    cols,
                    thetas: &thetas,
                    times: &times,
                    sources: &sources,
                    weights: &weights,
                    t_end,
                };
                let mut firsts = Vec::new();
                first_spikes(&group, &mut Lockstep::default(), &mut firsts);
                firsts
            };
            let (tabled, direct) = (run(&columns), run(&no_ticks));
            for (i, (a, b)) in tabled.iter().zip(&direct).enumerate() {
                assert_eq!(a.t.is_finite(), b.t.is_finite(), "trial {trial} neuron {i}");
                if a.t.is_finite() {
                    assert!((a.t - b.t).abs() < 1e-12, "trial {trial} neuron {i}");
                }
            }
            assert!(
                direct.iter().any(|f| f.t.is_finite()),
                "trial {trial}: no spikes"
            );
        }
    }

    #[test]
    fn later_spikes_follow_reset_and_refractoriness() {
        // One strong input: the neuron fires, is held at reset for t_ref, then the remaining
        // current drives it over threshold again.
        let c = NeuronConsts::new(1.0, 1.0, 1.0, 0.0, 0.2);
        let (first, all) = first_spike(&c, &[0.1], &[20.0]);
        assert!(all.len() >= 2, "{all:?}");
        assert_eq!(first, all[0]);
        for pair in all.windows(2) {
            assert!(pair[1] >= pair[0] + c.t_ref, "{all:?}");
        }
        // The second crossing: the membrane from reset at release, driven by the decayed current.
        let release = all[0] + c.t_ref;
        let j = 20.0 * (-(release - 0.1)).exp();
        let params = lif_params(&c);
        let second = spike_time_sorted(&params, &[release], &[j]).time;
        assert!((all[1] - second).abs() < 1e-10, "{} vs {second}", all[1]);
        // A weak input fires once at most.
        let (_, all) = first_spike(&c, &[0.1], &[3.0]);
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn membrane_replay_matches_lif_before_the_spike_and_resets_after() {
        let c = NeuronConsts::new(1.05, 0.97, 1.0, -0.1, 0.3);
        let times = [0.2, 0.5, 0.9];
        let weights = [2.0, 1.5, -0.4];
        let (first, spikes) = first_spike(&c, &times, &weights);
        assert!(first.is_finite());
        let grid: Vec<f64> = (0..400).map(|i| i as f64 * 0.01).collect();
        let v = membrane_at(&c, &times, &weights, &spikes, &grid);
        let params = lif_params(&c);
        for (&t, &vm) in grid.iter().zip(&v) {
            if t < first {
                let expect = membrane_potential(&params, &times, &weights, t);
                assert!((vm - expect).abs() < 1e-12, "t = {t}: {vm} vs {expect}");
            } else if t < first + c.t_ref {
                assert_eq!(vm, c.v_reset, "t = {t}");
            }
        }
        let below: f64 = grid
            .iter()
            .zip(&v)
            .filter(|(t, _)| **t < first)
            .map(|(_, v)| *v)
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(below < 1.0 && below > 0.95, "peak before the spike {below}");
    }
}
