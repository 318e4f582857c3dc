//! Crossing searches: a bracketed Halley iteration per neuron ([`RootSearch`]) and the first
//! steps of many searches together ([`SearchColumns`]).

use super::*;

/// A Halley step at most this long ends a search (see [`NeuronConsts::root_step`]).
pub(super) const HALLEY_DONE: f64 = 1e-4;

/// A threshold-crossing search in progress.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RootSearch {
    pub(super) v0: f64,
    pub(super) j0: f64,
    pub(super) theta: f64,
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) x: f64,
    pub(super) x_max: f64,
    pub(super) iterations: u32,
    pub(super) done: bool,
}

impl RootSearch {
    /// A search that is already done, at the start of its interval.
    pub(super) const AT_START: RootSearch = RootSearch {
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

    pub(super) fn result(&self) -> f64 {
        self.x.clamp(0.0, self.x_max)
    }
}

/// Rounds of [`SearchColumns::rounds`]: the Hermite start leaves one or two Halley steps for
/// nearly every search.
pub(super) const VECTOR_ROUNDS: u32 = 3;

/// A group's crossing searches as columns, so that one Halley step is taken for all of them in
/// one loop the compiler vectorises.
#[derive(Debug, Default)]
pub(crate) struct SearchColumns {
    pub(super) v0: Vec<f64>,
    pub(super) j0: Vec<f64>,
    pub(super) theta: Vec<f64>,
    pub(super) lo: Vec<f64>,
    pub(super) hi: Vec<f64>,
    pub(super) x: Vec<f64>,
    pub(super) inv_tau_m: Vec<f64>,
    pub(super) inv_tau_s: Vec<f64>,
    pub(super) delta: Vec<f64>,
    pub(super) inv_delta: Vec<f64>,
    pub(super) done: Vec<bool>,
}

impl SearchColumns {
    /// Up to [`VECTOR_ROUNDS`] steps of every open search in `searches` (of the neurons
    /// `pending[..].0`), each exactly [`NeuronConsts::root_step`], so with the same bits.
    #[inline(always)]
    pub(super) fn rounds(
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
    pub(super) fn step_all(&mut self, n: usize) -> bool {
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
pub(super) struct SearchConsts<'a> {
    pub(super) v0: &'a [f64],
    pub(super) j0: &'a [f64],
    pub(super) theta: &'a [f64],
    pub(super) inv_tau_m: &'a [f64],
    pub(super) inv_tau_s: &'a [f64],
    pub(super) delta: &'a [f64],
    pub(super) inv_delta: &'a [f64],
}

/// One Halley step of every open search, branch-free: [`NeuronConsts::root_step`] with both
/// outcomes computed and one selected, so that the compiler vectorises the loop. (A free
/// function of slices: as a method reading its columns from `self` the loop stays scalar.)
/// Returns whether any search is still open.
#[inline(always)]
pub(super) fn halley_all(
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
pub(super) fn expm1_over_z(z: f64) -> f64 {
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
