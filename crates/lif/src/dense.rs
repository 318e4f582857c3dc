//! Whole layers at once: the forward scan and the spike-time gradients as dense loops over a
//! layer's neurons (forward) or a neuron's inputs (backward), for the `tau_m = tau_s` kernel.
//!
//! The one idea: a layer's neurons share their inputs, so everything that depends only on the
//! input times is computed once per sample and layer, and what is left per neuron is the same
//! few multiply-adds for every neuron (forward) or every input (backward), which the processor
//! does several at a time. The forward pass walks the sorted inputs and updates the state of all
//! the layer's neurons, two inputs per pass over the neurons, reading each input's outgoing
//! weights as one contiguous row (the weights transposed); inputs that arrive together only add
//! their weights (no time passes between them), and only intervals where a membrane can reach
//! the threshold go to the exact crossing test. The arithmetic per neuron is exactly that of
//! the one-neuron scan, so the spike times are bit-identical to [`crate::spike_time`].
//! The backward pass needs no sort at all: with the input factors `f_i = exp((t_i - t_ref)/tau)`
//! computed once per layer, each kernel value is `K(T - t_i)/tau = e f_i (T - t_i)/tau` with
//! `e = exp(-(T - t_ref)/tau)` once per neuron, and its slope `e (f_i - f_i (T - t_i)/tau)`;
//! inputs at or after `T` are masked without a branch. A neuron's gradients are a pass over its
//! inputs in their original order for what scales them (which keeps the weighted slopes for the
//! inputs' errors), and passes that add them, several neurons per pass over the inputs (the
//! inputs are read once for all of them) and, for the weight gradients, several samples per
//! pass; they agree with [`crate::gradients_at`] to rounding (`1e-12` of the largest term: sums
//! are formed in another order).
//!
//! Where the processor has AVX-512 or AVX2 the same code is also compiled for it and chosen at
//! run time ([`crate::widest_simd`]); elsewhere the portable build runs. None changes a result:
//! no operation is fused or reordered by the compiler.

use crate::params::{Consts, Kernel, NeuronParams};
use crate::solve::{equal_root, spike};
use crate::volley::Volley;

/// Neurons (forward) or inputs (backward) handled together in one step of the dense loops.
const LANES: usize = 8;

/// Input spreads beyond this many time constants fall back to the one-neuron gradients (the
/// shared factors would leave `f64`'s range).
const MAX_SPREAD: f64 = 600.0;

/// `weights` (row-major, `n_out` rows of `n_in`) transposed into `out`: one row of `n_out`
/// weights per input, the layout [`layer_spike_times_dense`] reads.
///
/// # Panics
///
/// If `weights.len() != n_out * n_in`.
pub fn transpose_weights(weights: &[f64], n_out: usize, n_in: usize, out: &mut Vec<f64>) {
    assert_eq!(weights.len(), n_out * n_in, "transpose_weights: shape");
    out.clear();
    out.resize(weights.len(), 0.0);
    for (j, row) in weights.chunks_exact(n_in.max(1)).enumerate() {
        for (i, &w) in row.iter().enumerate() {
            out[i * n_out + j] = w;
        }
    }
}

/// Whether [`layer_spike_times_dense`] and [`LayerGradients`] apply to neurons with `params`
/// (the `tau_m = tau_s` kernel); other kernels use the one-neuron functions.
pub fn dense_applies(params: &NeuronParams) -> bool {
    params.kernel() == Kernel::Equal
}

/// Buffers of [`layer_spike_times_dense`], reused across samples.
#[derive(Clone, Debug, Default)]
pub struct LayerState {
    a: Vec<f64>,
    a_next: Vec<f64>,
    b: Vec<f64>,
    b_next: Vec<f64>,
    hit: Vec<u64>,
}

/// What the vector loops compare against: the threshold, and the least `a` (the membrane's
/// drive after an input) with which a peak inside the following interval can reach it.
///
/// With `u(x) = exp(-x) (a x + b)`, a peak inside an interval (`a > b`) is `a exp(-(1 - b/a))`,
/// less than `a`: an interval with `a` below the threshold has no crossing unless its end is at
/// or above the threshold (`equal_root` rejects it, its `m = theta / a exp(1 - b/a)` exceeds 1).
/// The floor sits a relative `1e-9` under the threshold, far beyond `equal_root`'s rounding, so
/// no interval it would accept goes unflagged, while the many sub-threshold peaks of a membrane
/// no longer send its neuron to the scalar recheck.
#[derive(Clone, Copy, Debug)]
struct Firing {
    theta: f64,
    peak_floor: f64,
}

impl Firing {
    fn new(theta: f64) -> Self {
        Firing {
            theta,
            peak_floor: theta - theta.abs() * 1e-9,
        }
    }

    /// Whether the interval from `b` to `b_end` with drive `a` (and `one_minus_d = 1 - d`) may
    /// hold a crossing: its end at or above threshold, or a peak inside with enough drive.
    /// Branch-free, for the vector loops.
    #[inline(always)]
    fn may_cross(self, a: f64, b: f64, b_end: f64, one_minus_d: f64) -> bool {
        (b_end >= self.theta) | ((a > b) & (a * one_minus_d < b) & (a >= self.peak_floor))
    }
}

/// Below this many neurons still waiting, the layer scan finishes them one by one.
const FEW_OPEN: usize = 16;

/// First spike times of all neurons of a layer with the `tau_m = tau_s` kernel, bit-identical to
/// [`crate::layer_spike_times`].
///
/// `weights_t` holds the layer's weights transposed: one row of `out.len()` weights per input,
/// in the volley's original input order (see [`transpose_weights`]).
///
/// # Panics
///
/// If the kernel of the volley's parameters is not `Equal` ([`dense_applies`]), or if
/// `weights_t` does not hold `out.len() * volley.n_inputs()` weights.
pub fn layer_spike_times_dense(
    volley: &Volley,
    weights_t: &[f64],
    state: &mut LayerState,
    out: &mut [f64],
) {
    let n_out = out.len();
    assert!(
        weights_t.len() == n_out * volley.n_inputs(),
        "layer_spike_times_dense: need {n_out} x {} weights",
        volley.n_inputs()
    );
    out.fill(f64::INFINITY);
    let Some(c) = volley.consts() else {
        return;
    };
    assert!(
        c.kernel == Kernel::Equal,
        "layer_spike_times_dense: only for tau_m = tau_s"
    );
    let times = volley.sorted_times();
    let n = times.len();
    if n == 0 || n_out == 0 {
        return;
    }
    let LayerState {
        a,
        a_next,
        b,
        b_next,
        hit,
    } = state;
    for v in [&mut *a, &mut *a_next, &mut *b, &mut *b_next] {
        v.clear();
        v.resize(n_out, 0.0);
    }
    hit.clear();
    hit.resize(n_out, 0);
    let scan = Scan {
        c,
        times,
        order: volley.order(),
        steps: volley.steps(),
    };
    let firing = Firing::new(c.g_theta);
    let mut n_open = n_out;
    let mut e_prev = 1.0;
    let mut k = 0;
    let weight_row = |k: usize| &weights_t[scan.order[k] as usize * n_out..][..n_out];
    while k + 1 < n && n_open >= FEW_OPEN {
        if scan.times[k + 1] == scan.times[k] {
            // Inputs arriving together (pixels of the same value do): no time passes between
            // them, so the membrane stays where it is and nothing can fire (`b` is below the
            // threshold and no peak fits in an empty interval); only the drive takes their
            // weights, in order, as the one-input scan adds them.
            let mut end = k + 1;
            while end + 1 < n && scan.times[end + 1] == scan.times[k] {
                end += 1;
            }
            for first in (k..end).step_by(DRIVE_ROWS) {
                let count = (end - first).min(DRIVE_ROWS);
                let rows = std::array::from_fn(|r| weight_row(first + r.min(count - 1)));
                add_drive(a, e_prev, rows, count);
                // `a * 1.0` is `a`: the empty interval's decay.
                e_prev = 1.0;
            }
            k = end;
            continue;
        }
        if k + 2 == n {
            break;
        }
        // Two inputs per pass over the neurons: the state is read and written once per two
        // inputs.
        let w1 = weight_row(k);
        let w2 = weight_row(k + 1);
        let (s1, s2) = (scan.steps[k], scan.steps[k + 1]);
        let mut any = 0u64;
        step_two(
            (a, b),
            (a_next, b_next),
            hit,
            (w1, w2),
            e_prev,
            (s1, s2),
            firing,
            &mut any,
        );
        if any != 0 {
            for j in hits(hit) {
                // The two intervals again for this neuron, as the one-input scan takes them.
                let [e1, de1, _] = s1;
                let a1 = a[j] * e_prev + w1[j];
                let b1 = e1 * b[j] + de1 * a1;
                let fired = scan
                    .crossing(k, a1, b[j], b1)
                    .or_else(|| scan.crossing(k + 1, a_next[j], b1, b_next[j]));
                if let Some(t) = fired {
                    out[j] = t;
                    a_next[j] = f64::NAN;
                    b_next[j] = f64::NAN;
                    n_open -= 1;
                }
            }
        }
        std::mem::swap(a, a_next);
        std::mem::swap(b, b_next);
        e_prev = s2[0];
        k += 2;
    }
    // The last interval that ends at an input, when it is left alone.
    if k + 2 == n && n_open >= FEW_OPEN {
        let w = weight_row(k);
        let [e, de, one_minus_d] = scan.steps[k];
        let mut any = 0u64;
        step_any(
            a,
            b,
            b_next,
            hit,
            w,
            e_prev,
            e,
            de,
            one_minus_d,
            firing,
            &mut any,
        );
        if any != 0 {
            for j in hits(hit) {
                let reaches_end = b_next[j] >= c.g_theta;
                if let Some(t) = scan.root(k, a[j], b[j], reaches_end) {
                    out[j] = t;
                    // NaN state never tests as crossing again: the neuron leaves the scan.
                    a[j] = f64::NAN;
                    b_next[j] = f64::NAN;
                }
            }
        }
        std::mem::swap(b, b_next);
        e_prev = e;
        k += 1;
    }
    // The few neurons still waiting (or all of them at the last input): one by one from the
    // state they reached.
    for j in 0..n_out {
        if a[j].is_nan() {
            continue;
        }
        // Each input's row of the transposed weights was just read for every neuron: still in
        // cache, unlike the neuron's own row of the weights.
        let weight = |i: usize| weights_t[i * n_out + j];
        out[j] = scan.finish(k, a[j], b[j], e_prev, weight);
    }
}

/// Indices of the non-zero flags. A flag is a whole word, so that the vector loops store their
/// comparison results as they are instead of packing them into bytes.
fn hits(flags: &[u64]) -> impl Iterator<Item = usize> + '_ {
    // Whole groups of clear flags are skipped with one test (a step flags a few neurons of
    // hundreds, at places no branch predictor foresees, so the fewer tests the better).
    flags
        .chunks(HIT_GROUP)
        .enumerate()
        .filter(|(_, group)| group.iter().fold(0, |any, &h| any | h) != 0)
        .flat_map(|(g, group)| {
            group
                .iter()
                .enumerate()
                .filter_map(move |(r, &h)| (h != 0).then_some(g * HIT_GROUP + r))
        })
}

/// Flags [`hits`] tests at once: four vectors of four.
const HIT_GROUP: usize = 16;

/// The sorted inputs of one layer scan.
struct Scan<'a> {
    c: &'a Consts,
    times: &'a [f64],
    order: &'a [u32],
    steps: &'a [[f64; 3]],
}

impl Scan<'_> {
    /// The crossing in the interval after input `k` of a neuron in state `(a, b)`, as
    /// `solve_equal` finds it.
    #[inline]
    fn root(&self, k: usize, a: f64, b: f64, reaches_end: bool) -> Option<f64> {
        let c = self.c;
        let d = (self.times[k + 1] - self.times[k]) * c.inv_tau_m;
        equal_root(a, b, c.g_theta, d, reaches_end)
            .map(|x| spike(self.times[k] + c.tau_m * x, k, self.times[k + 1]).time)
    }

    /// The crossing in the interval after input `k` of a neuron whose membrane goes from `b` at
    /// `t_k` to `b_end` at the next input (`a` after input `k`), where `solve_equal`'s interval
    /// test allows one: the end at or above threshold, or the peak inside the interval.
    #[inline]
    fn crossing(&self, k: usize, a: f64, b: f64, b_end: f64) -> Option<f64> {
        let one_minus_d = self.steps[k][2];
        let reaches_end = b_end >= self.c.g_theta;
        let peak_inside = (a > b) & (a * one_minus_d < b);
        if reaches_end | peak_inside {
            self.root(k, a, b, reaches_end)
        } else {
            None
        }
    }

    /// `solve_equal` of one neuron from input `k` on, its state `a` (before the decay `e_prev`
    /// of the previous gap and the input `k`) and `b` (the membrane at `t_k`).
    fn finish(
        &self,
        k: usize,
        mut a: f64,
        mut b: f64,
        mut e_prev: f64,
        weight: impl Fn(usize) -> f64,
    ) -> f64 {
        let c = self.c;
        let theta = c.g_theta;
        let n = self.times.len();
        for kk in k..n - 1 {
            a = a * e_prev + weight(self.order[kk] as usize);
            let [e, de, _] = self.steps[kk];
            let b_end = e * b + de * a;
            if let Some(t) = self.crossing(kk, a, b, b_end) {
                return t;
            }
            e_prev = e;
            b = b_end;
        }
        a = a * e_prev + weight(self.order[n - 1] as usize);
        if a > b
            && let Some(x) = equal_root(a, b, theta, f64::INFINITY, false)
        {
            return spike(self.times[n - 1] + c.tau_m * x, n - 1, f64::INFINITY).time;
        }
        f64::INFINITY
    }
}

/// Two inputs for every neuron, from the state `(a, b)` into `next`: the arithmetic of two
/// [`step_any`] in a row, with `hit[j]` set where either interval may fire (on the widest
/// vector instructions).
#[allow(clippy::too_many_arguments)]
fn step_two(
    state: (&[f64], &[f64]),
    next: (&mut [f64], &mut [f64]),
    hit: &mut [u64],
    w: (&[f64], &[f64]),
    e_prev: f64,
    steps: ([f64; 3], [f64; 3]),
    firing: Firing,
    any: &mut u64,
) {
    crate::widest_simd!(step_two_portable(
        state: (&[f64], &[f64]),
        next: (&mut [f64], &mut [f64]),
        hit: &mut [u64],
        w: (&[f64], &[f64]),
        e_prev: f64,
        steps: ([f64; 3], [f64; 3]),
        firing: Firing,
        any: &mut u64,
    ))
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step_two_portable(
    (a, b): (&[f64], &[f64]),
    (a_next, b_next): (&mut [f64], &mut [f64]),
    hit: &mut [u64],
    (w1, w2): (&[f64], &[f64]),
    e_prev: f64,
    ([e1, de1, omd1], [e2, de2, omd2]): ([f64; 3], [f64; 3]),
    firing: Firing,
    any: &mut u64,
) {
    let n = a.len();
    let (b, a_next, b_next, hit) = (&b[..n], &mut a_next[..n], &mut b_next[..n], &mut hit[..n]);
    let (w1, w2) = (&w1[..n], &w2[..n]);
    let mut acc = 0u64;
    for j in 0..n {
        let a1 = a[j] * e_prev + w1[j];
        let b0 = b[j];
        let b1 = e1 * b0 + de1 * a1;
        let h1 = firing.may_cross(a1, b0, b1, omd1);
        let a2 = a1 * e1 + w2[j];
        let b2 = e2 * b1 + de2 * a2;
        let h2 = firing.may_cross(a2, b1, b2, omd2);
        a_next[j] = a2;
        b_next[j] = b2;
        let h = u64::from(h1 | h2);
        hit[j] = h;
        acc |= h;
    }
    *any = acc;
}

/// Rows of weights [`add_drive`] adds in one pass over the neurons.
const DRIVE_ROWS: usize = 4;

/// `a = a e + w_0`, then `a += w_1`, ... for the first `count` of `rows` (at most
/// [`DRIVE_ROWS`]), for every neuron: inputs that arrive together, in one pass (on the widest
/// vector instructions).
fn add_drive(a: &mut [f64], e: f64, rows: [&[f64]; DRIVE_ROWS], count: usize) {
    crate::widest_simd!(add_drive_portable(
        a: &mut [f64],
        e: f64,
        rows: [&[f64]; DRIVE_ROWS],
        count: usize,
    ))
}

#[inline(always)]
fn add_drive_portable(a: &mut [f64], e: f64, rows: [&[f64]; DRIVE_ROWS], count: usize) {
    let n = a.len();
    let [w0, w1, w2, w3] = rows.map(|w| &w[..n]);
    // Left to right, as the one-input scan adds them: `((a e + w0) + w1) + ...`.
    match count {
        1 => (0..n).for_each(|j| a[j] = a[j] * e + w0[j]),
        2 => (0..n).for_each(|j| a[j] = a[j] * e + w0[j] + w1[j]),
        3 => (0..n).for_each(|j| a[j] = a[j] * e + w0[j] + w1[j] + w2[j]),
        _ => (0..n).for_each(|j| a[j] = a[j] * e + w0[j] + w1[j] + w2[j] + w3[j]),
    }
}

/// One input for every neuron: `a = a e_prev + w`, the membrane at the next input into
/// `b_next`, and `hit[j]` set where the interval may fire, `any` to whether one is (on the
/// widest vector instructions).
#[allow(clippy::too_many_arguments)]
fn step_any(
    a: &mut [f64],
    b: &[f64],
    b_next: &mut [f64],
    hit: &mut [u64],
    w: &[f64],
    e_prev: f64,
    e: f64,
    de: f64,
    one_minus_d: f64,
    firing: Firing,
    any: &mut u64,
) {
    crate::widest_simd!(step_portable(
        a: &mut [f64],
        b: &[f64],
        b_next: &mut [f64],
        hit: &mut [u64],
        w: &[f64],
        e_prev: f64,
        e: f64,
        de: f64,
        one_minus_d: f64,
        firing: Firing,
        any: &mut u64,
    ))
}

/// The arithmetic of `solve_equal`'s interval test, per neuron, branch-free.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step_portable(
    a: &mut [f64],
    b: &[f64],
    b_next: &mut [f64],
    hit: &mut [u64],
    w: &[f64],
    e_prev: f64,
    e: f64,
    de: f64,
    one_minus_d: f64,
    firing: Firing,
    any: &mut u64,
) {
    let n = a.len();
    let (b, b_next, hit, w) = (&b[..n], &mut b_next[..n], &mut hit[..n], &w[..n]);
    let mut acc = 0u64;
    for j in 0..n {
        let aj = a[j] * e_prev + w[j];
        let bj = b[j];
        let be = e * bj + de * aj;
        let h = firing.may_cross(aj, bj, be, one_minus_d);
        a[j] = aj;
        b_next[j] = be;
        hit[j] = u64::from(h);
        acc |= u64::from(h);
    }
    *any = acc;
}

/// One sample's inputs to a layer prepared for the dense gradients of its neurons: the input
/// times and the factors `exp((t_i - t_ref)/tau)` (zero for silent inputs), once per layer.
///
/// A neuron's gradients are never stored: [`LayerGradients::neuron`] sums what scales them, and
/// [`LayerGradients::add_kernel`] and [`LayerGradients::add_weighted_slope`] compute the values
/// again (bit for bit) where they are added up, so that nothing of the size of a weight matrix
/// is written per sample.
#[derive(Clone, Debug, Default)]
pub struct LayerGradients {
    consts: Option<Consts>,
    times: Vec<f64>,
    factors: Vec<f64>,
    t_ref: f64,
    /// Spread of the finite inputs too wide for shared factors: use the one-neuron gradients.
    too_wide: bool,
    volley: Volley,
}

/// What scales the gradients of one neuron, as [`LayerGradients::neuron`] finds them: `dT/dw_i`
/// is `scale_w` times the kernel value [`LayerGradients::add_kernel`] adds, and `dT/dt_i` is
/// `scale_t` times the weighted slope [`LayerGradients::add_weighted_slope`] adds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NeuronGradients {
    /// The membrane slope `du/dt` at the spike time (as [`crate::gradients_at`] returns).
    pub slope: f64,
    /// Factor turning kernel values into `dT/dw`.
    pub scale_w: f64,
    /// Factor turning weighted kernel slopes into `dT/dt_in`.
    pub scale_t: f64,
    /// Largest kernel value: `max |dT/dw| = max_kernel * |scale_w|`.
    pub max_kernel: f64,
}

impl NeuronGradients {
    const NONE: NeuronGradients = NeuronGradients {
        slope: 0.0,
        scale_w: 0.0,
        scale_t: 0.0,
        max_kernel: 0.0,
    };
}

impl LayerGradients {
    /// An empty preparation (no buffers allocated).
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads one sample's input times to a layer (original order, `+inf` for silent inputs).
    ///
    /// # Panics
    ///
    /// If the kernel of `params` is not `Equal` ([`dense_applies`]).
    pub fn prepare(&mut self, times: &[f64], params: &NeuronParams) {
        let c = match self.consts {
            Some(c) if c.params == *params => c,
            _ => Consts::new(params),
        };
        assert!(
            c.kernel == Kernel::Equal,
            "LayerGradients: only for tau_m = tau_s"
        );
        self.consts = Some(c);
        self.times.clear();
        self.times.extend_from_slice(times);
        let (lo, hi) = times
            .iter()
            .filter(|t| t.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &t| {
                (lo.min(t), hi.max(t))
            });
        self.t_ref = if hi.is_finite() { hi } else { 0.0 };
        self.too_wide = hi.is_finite() && (hi - lo) * c.inv_tau_m > MAX_SPREAD;
        self.factors.clear();
        self.factors.extend(times.iter().map(|&t| {
            if t.is_finite() {
                ((t - self.t_ref) * c.inv_tau_m).exp()
            } else {
                0.0
            }
        }));
        if self.too_wide {
            self.volley.prepare(times, params);
        }
    }

    /// The scales of the gradients of one neuron with incoming `weights` (one per input) that
    /// fired at `t_out`, by implicit differentiation of `u(t_out) = threshold` as
    /// [`crate::gradients_at`] does; all factors zero (and the slope not positive) when there is
    /// no usable gradient. One pass over the inputs, which also leaves the neuron's weighted
    /// kernel slopes in `slopes` (one per input) for [`LayerGradients::add_weighted_slopes`].
    /// `max_abs_weight` is the largest `|w_i|` (or a bound on it): it bounds the inputs'
    /// `|dT/dt_i|` by `max_abs_weight * |scale_t|`, since `|K'| <= 1` after an input.
    ///
    /// # Panics
    ///
    /// If `weights` or `slopes` has not one entry per input, or before
    /// [`LayerGradients::prepare`].
    pub fn neuron(
        &self,
        weights: &[f64],
        t_out: f64,
        max_abs_weight: f64,
        slopes: &mut [f64],
        scratch: &mut Vec<f64>,
    ) -> NeuronGradients {
        let n = self.times.len();
        assert!(
            weights.len() == n && slopes.len() == n,
            "LayerGradients::neuron: one weight and one slope per input"
        );
        let c = self.consts.expect("LayerGradients::neuron before prepare");
        if !t_out.is_finite() {
            return NeuronGradients::NONE;
        }
        if self.too_wide {
            // Rare: inputs hundreds of time constants apart. The one-neuron gradients, already
            // scaled (so both factors are 1).
            let (slope, d_t_d_w, d_t_d_t) = self.one_neuron(weights, t_out, scratch);
            let max_kernel = d_t_d_w.iter().fold(0.0f64, |m, g| m.max(g.abs()));
            let usable = slope > 0.0 && d_t_d_t.iter().all(|v| v.is_finite());
            return NeuronGradients {
                slope,
                scale_w: if usable { 1.0 } else { 0.0 },
                scale_t: if usable { 1.0 } else { 0.0 },
                max_kernel,
            };
        }
        let at = self.output(t_out, c.inv_tau_m);
        let mut sums = Sums::default();
        neuron_sums(&self.times, &self.factors, weights, at, &mut sums, slopes);
        let Sums { d, max_kernel } = sums;
        let slope = d * c.inv_c_m;
        if !(d > 0.0 && slope.is_finite()) {
            return NeuronGradients {
                slope,
                ..NeuronGradients::NONE
            };
        }
        let scale_t = 1.0 / d;
        let scale_w = -c.tau_m * scale_t;
        // `|w_i K'| <= |w_i| (1 + 2^-50)` as computed, so twice the largest weight bounds them.
        if !((max_kernel * scale_w).is_finite() && (2.0 * max_abs_weight * scale_t).is_finite()) {
            return NeuronGradients {
                slope,
                ..NeuronGradients::NONE
            };
        }
        NeuronGradients {
            slope,
            scale_w,
            scale_t,
            max_kernel,
        }
    }

    /// What the passes need of an output spike at `t_out`.
    fn output(&self, t_out: f64, inv_tau: f64) -> Output {
        let x = (t_out - self.t_ref) * inv_tau;
        Output {
            t: t_out,
            e: (-x).exp(),
            inv_tau,
        }
    }

    /// Adds `factor` times the kernel values `K(T - t_i)/tau` of a neuron with incoming
    /// `weights` that fired at `t_out` to `row` (one entry per input, zero for inputs at or after
    /// `t_out`): with `factor` = [`NeuronGradients::scale_w`] times the neuron's error, its
    /// contribution to the weight gradient. `scratch` holds the one-neuron gradients where the
    /// inputs are too far apart for shared factors.
    ///
    /// # Panics
    ///
    /// If `weights` or `row` has not one entry per input, or before [`LayerGradients::prepare`].
    pub fn add_kernel(
        &self,
        weights: &[f64],
        t_out: f64,
        factor: f64,
        row: &mut [f64],
        scratch: &mut Vec<f64>,
    ) {
        self.add_pass(Pass::Kernel, weights, t_out, factor, row, scratch);
    }

    /// [`LayerGradients::add_kernel`] of up to [`KERNEL_ROWS`] neurons in one pass over the
    /// inputs: `outs[r] = (t_out, factor)` adds into `rows[r * n..(r + 1) * n]` (`n` inputs),
    /// each row bit for bit as `add_kernel` adds it. The inputs are read once for all the rows,
    /// which is what makes it faster. A row whose factor is zero or neuron silent is left as it
    /// is; `weights_of(r)` gives row `r`'s weights, needed only where the inputs are too far apart
    /// for shared factors.
    ///
    /// # Panics
    ///
    /// If `outs` has more than [`KERNEL_ROWS`] entries, `rows` not `outs.len()` rows of one
    /// entry per input, or before [`LayerGradients::prepare`].
    pub fn add_kernels<'w>(
        &self,
        outs: &[(f64, f64)],
        weights_of: impl Fn(usize) -> &'w [f64],
        rows: &mut [f64],
        scratch: &mut Vec<f64>,
    ) {
        let n = self.times.len();
        assert!(
            outs.len() <= KERNEL_ROWS && rows.len() == outs.len() * n,
            "LayerGradients::add_kernels: at most {KERNEL_ROWS} rows of one entry per input"
        );
        let c = self
            .consts
            .expect("LayerGradients: prepare before the gradients");
        if self.too_wide || n == 0 {
            for (r, (&(t_out, factor), row)) in
                outs.iter().zip(rows.chunks_mut(n.max(1))).enumerate()
            {
                if factor != 0.0 {
                    self.add_kernel(weights_of(r), t_out, factor, row, scratch);
                }
            }
            return;
        }
        let at = self.block_outputs(outs, c.inv_tau_m);
        let mut parts: [&mut [f64]; KERNEL_ROWS] = Default::default();
        let mut rest = rows;
        for part in parts.iter_mut().take(outs.len()) {
            let (row, tail) = rest.split_at_mut(n);
            *part = row;
            rest = tail;
        }
        kernels_into(&self.times, &self.factors, &at, &mut parts);
    }

    /// The kernel passes of a whole block of [`KERNEL_ROWS`] neurons for up to
    /// [`KERNEL_SAMPLES`] samples (their prepared inputs to one layer), in one pass over the
    /// rows: `outs[s][r] = (t_out, factor)` of sample `s` and neuron `r`. Each entry of `rows`
    /// (`KERNEL_ROWS` rows of one entry per input) takes the samples' values summed in order
    /// from zero, `row += ((0 + k_0) + k_1) + ...`, bit for bit what adding each sample's
    /// [`LayerGradients::add_kernels`] into a cleared buffer and then the buffer into `rows`
    /// gives, without the buffer. Returns `false`, and leaves `rows` alone, when a sample's
    /// inputs are too far apart for shared factors (then add them sample by sample).
    ///
    /// # Panics
    ///
    /// If `samples` and `outs` differ in length or hold more than [`KERNEL_SAMPLES`], the
    /// samples differ in their number of inputs, `rows` is not `KERNEL_ROWS` rows of one entry
    /// per input, or before [`LayerGradients::prepare`].
    pub fn add_kernels_of_samples(
        samples: &[&LayerGradients],
        outs: &[[(f64, f64); KERNEL_ROWS]],
        rows: &mut [f64],
    ) -> bool {
        let Some(first) = samples.first() else {
            return true;
        };
        let n = first.times.len();
        assert!(
            samples.len() == outs.len()
                && samples.len() <= KERNEL_SAMPLES
                && samples.iter().all(|g| g.times.len() == n)
                && rows.len() == KERNEL_ROWS * n,
            "LayerGradients::add_kernels_of_samples: at most {KERNEL_SAMPLES} samples of one layer, {KERNEL_ROWS} rows of one entry per input"
        );
        if n == 0 || samples.iter().any(|g| g.too_wide) {
            return n == 0;
        }
        // Missing samples repeat the first one's inputs with outputs that add nothing.
        let none = [(Output::NONE, 0.0); KERNEL_ROWS];
        let at: [[(Output, f64); KERNEL_ROWS]; KERNEL_SAMPLES] =
            std::array::from_fn(|s| match (samples.get(s), outs.get(s)) {
                (Some(g), Some(o)) => {
                    let c = g
                        .consts
                        .expect("LayerGradients: prepare before the gradients");
                    g.block_outputs(o, c.inv_tau_m)
                }
                _ => none,
            });
        let inputs = |s: usize| samples.get(s).unwrap_or(first);
        let times = std::array::from_fn(|s| &inputs(s).times[..]);
        let factors = std::array::from_fn(|s| &inputs(s).factors[..]);
        let mut parts: [&mut [f64]; KERNEL_ROWS] = Default::default();
        for (part, row) in parts.iter_mut().zip(rows.chunks_exact_mut(n)) {
            *part = row;
        }
        sample_kernels_into(&times, &factors, &at, &mut parts);
        true
    }

    /// [`LayerGradients::add_weighted_slope`] of up to [`KERNEL_ROWS`] neurons in one pass over
    /// `row`: `outs[r] = (t_out, factor)` with weights `weights_of(r)`, added neuron after
    /// neuron to each entry, so `row` ends as the calls one after another leave it. `slopes`
    /// holds the neurons' weighted kernel slopes, row `r` (one entry per input) as
    /// [`LayerGradients::neuron`] left it for neuron `r`, so they are not computed again; the
    /// weights are needed only where the inputs are too far apart for shared factors. A neuron
    /// whose factor is zero or that is silent adds nothing (and its row of `slopes` is not read).
    ///
    /// # Panics
    ///
    /// If `outs` has more than [`KERNEL_ROWS`] entries, `slopes` not `outs.len()` rows of one
    /// entry per input, a neuron's weights not one per input, `row` more entries than inputs,
    /// or before [`LayerGradients::prepare`].
    pub fn add_weighted_slopes<'w>(
        &self,
        outs: &[(f64, f64)],
        weights_of: impl Fn(usize) -> &'w [f64],
        slopes: &[f64],
        row: &mut [f64],
        scratch: &mut Vec<f64>,
    ) {
        let n = self.times.len();
        assert!(
            outs.len() <= KERNEL_ROWS && row.len() <= n && slopes.len() == outs.len() * n,
            "LayerGradients::add_weighted_slopes: at most {KERNEL_ROWS} neurons, one slope per input and neuron, at most one entry per input"
        );
        let c = self
            .consts
            .expect("LayerGradients: prepare before the gradients");
        let at = self.block_outputs(outs, c.inv_tau_m);
        let used = || (0..outs.len()).filter(|&r| at[r].1 != 0.0);
        if self.too_wide || used().count() < 2 {
            for r in used() {
                let (t_out, factor) = outs[r];
                self.add_weighted_slope(weights_of(r), t_out, factor, row, scratch);
            }
            return;
        }
        let m = row.len();
        // Unused slots take a used neuron's slopes (finite values) with a zero factor.
        let first = used().next().unwrap_or(0);
        let rows: [&[f64]; KERNEL_ROWS] = std::array::from_fn(|r| {
            let r = if at[r].1 != 0.0 { r } else { first };
            &slopes[r * n..r * n + m]
        });
        let factors = at.map(|(_, factor)| factor);
        slopes_into(&rows, factors, row);
    }

    /// Adds `factor` times the weighted kernel slopes `w_i K'(T - t_i)` of a neuron with
    /// incoming `weights` that fired at `t_out` to `row` (one entry per input, or fewer: the
    /// first `row.len()` inputs): with `factor` = [`NeuronGradients::scale_t`] times the neuron's
    /// error, its contribution to its inputs' errors. `scratch` as in
    /// [`LayerGradients::add_kernel`].
    ///
    /// # Panics
    ///
    /// If `weights` has not one entry per input, `row` more, or before
    /// [`LayerGradients::prepare`].
    pub fn add_weighted_slope(
        &self,
        weights: &[f64],
        t_out: f64,
        factor: f64,
        row: &mut [f64],
        scratch: &mut Vec<f64>,
    ) {
        self.add_pass(Pass::WeightedSlope, weights, t_out, factor, row, scratch);
    }

    fn add_pass(
        &self,
        pass: Pass,
        weights: &[f64],
        t_out: f64,
        factor: f64,
        row: &mut [f64],
        scratch: &mut Vec<f64>,
    ) {
        let n = self.times.len();
        assert!(
            weights.len() == n && row.len() <= n,
            "LayerGradients: one weight per input, at most one result per input"
        );
        let c = self
            .consts
            .expect("LayerGradients: prepare before the gradients");
        if !t_out.is_finite() {
            return;
        }
        if self.too_wide {
            let (_, d_t_d_w, d_t_d_t) = self.one_neuron(weights, t_out, scratch);
            let values = match pass {
                Pass::Kernel => d_t_d_w,
                Pass::WeightedSlope => d_t_d_t,
            };
            add_scaled(row, values, factor);
            return;
        }
        let at = self.output(t_out, c.inv_tau_m);
        let m = row.len();
        pass_into(
            pass,
            &self.times[..m],
            &self.factors[..m],
            &weights[..m],
            at,
            factor,
            row,
        );
    }

    /// The outputs of a block of neurons, `outs[r] = (t_out, factor)`, as the block passes take
    /// them: each with its factor times `e`. Unused slots, silent neurons and zero factors get
    /// an output before every input and a zero factor: nothing is causal, nothing is added.
    fn block_outputs(&self, outs: &[(f64, f64)], inv_tau: f64) -> [(Output, f64); KERNEL_ROWS] {
        std::array::from_fn(|r| match outs.get(r) {
            Some(&(t_out, factor)) if factor != 0.0 && t_out.is_finite() => {
                let out = self.output(t_out, inv_tau);
                (out, factor * out.e)
            }
            _ => (Output::NONE, 0.0),
        })
    }

    /// [`crate::gradients_at`] into `scratch`: the slope, `dT/dw` and `dT/dt`.
    fn one_neuron<'s>(
        &self,
        weights: &[f64],
        t_out: f64,
        scratch: &'s mut Vec<f64>,
    ) -> (f64, &'s [f64], &'s [f64]) {
        let n = self.times.len();
        scratch.resize(2 * n, 0.0);
        let (d_t_d_w, d_t_d_t) = scratch.split_at_mut(n);
        let params = &self.consts.expect("prepared").params;
        let slope = crate::gradients_at(params, &self.volley, weights, t_out, d_t_d_w, d_t_d_t);
        (slope, d_t_d_w, d_t_d_t)
    }
}

/// An output spike as the passes see it: its time `t`, `e = exp(-(t - t_ref)/tau)` and
/// `1/tau`.
#[derive(Clone, Copy)]
struct Output {
    t: f64,
    e: f64,
    inv_tau: f64,
}

impl Output {
    /// An output before every input: nothing is causal to it.
    const NONE: Output = Output {
        t: f64::NEG_INFINITY,
        e: 0.0,
        inv_tau: 0.0,
    };

    /// `K(T - t_i)/tau / e` and `K'(T - t_i) / e` of a causal input at `t` with factor `f`:
    /// `f (T - t)/tau` and `f - f (T - t)/tau` (the caller multiplies by `e` once). The time
    /// difference is taken from the times themselves, so a kernel value just after an input
    /// keeps its relative precision.
    #[inline(always)]
    fn kernel(self, f: f64, t: f64) -> f64 {
        f * ((self.t - t) * self.inv_tau)
    }

    #[inline(always)]
    fn slope(self, f: f64, t: f64) -> f64 {
        f - self.kernel(f, t)
    }

    /// `kernel(f, t) * factor` for an input before the spike, zero for one at or after it.
    #[inline(always)]
    fn causal_kernel(self, factor: f64, f: f64, t: f64) -> f64 {
        f64::from_bits((self.kernel(f, t) * factor).to_bits() & causal_mask(t, self.t))
    }
}

/// All ones where an input at `t` comes before the output spike at `t_out` (it contributes),
/// else zero: and-ed with a value's bits, it keeps or zeroes the value without a branch (the
/// values of inputs after the spike are finite, so they are computed and dropped).
#[inline(always)]
fn causal_mask(t: f64, t_out: f64) -> u64 {
    if t < t_out { u64::MAX } else { 0 }
}

/// Which values a pass of [`LayerGradients`] adds.
#[derive(Clone, Copy)]
enum Pass {
    Kernel,
    WeightedSlope,
}

/// What one pass over a neuron's inputs sums up.
#[derive(Default)]
struct Sums {
    /// `sum_i w_i K'(T - t_i)`.
    d: f64,
    max_kernel: f64,
}

/// The sums of [`LayerGradients::neuron`] on the widest vector instructions.
fn neuron_sums(
    times: &[f64],
    factors: &[f64],
    weights: &[f64],
    at: Output,
    sums: &mut Sums,
    slopes: &mut [f64],
) {
    crate::widest_simd!(neuron_sums_portable(
        times: &[f64],
        factors: &[f64],
        weights: &[f64],
        at: Output,
        sums: &mut Sums,
        slopes: &mut [f64],
    ))
}

/// The sum of the weighted kernel slopes `w_i K'(T - t_i) / e` (each also stored in `slopes`,
/// zero for inputs at or after the spike) and the largest kernel value, in lanes of partial
/// results. The order of the sum is fixed (lane `l` takes inputs `l, l + LANES, ...`, the inputs
/// after the last whole chunk go to lane 0), so results are the same on every processor.
#[inline(always)]
fn neuron_sums_portable(
    times: &[f64],
    factors: &[f64],
    weights: &[f64],
    at: Output,
    sums: &mut Sums,
    slopes: &mut [f64],
) {
    let n = times.len();
    let (factors, weights, slopes) = (&factors[..n], &weights[..n], &mut slopes[..n]);
    let mut d = [0.0; LANES];
    let mut max_k = [0.0f64; LANES];
    let whole = n - n % LANES;
    let chunks = times[..whole]
        .chunks_exact(LANES)
        .zip(factors.chunks_exact(LANES))
        .zip(weights.chunks_exact(LANES))
        .zip(slopes.chunks_exact_mut(LANES));
    for (((t, f), w), s) in chunks {
        // Straight lane-wise statements without branches, which become vector instructions.
        for l in 0..LANES {
            let causal = causal_mask(t[l], at.t);
            let k = f64::from_bits(at.kernel(f[l], t[l]).to_bits() & causal);
            let v = f64::from_bits((w[l] * at.slope(f[l], t[l])).to_bits() & causal);
            s[l] = v;
            d[l] += v;
            max_k[l] = if k > max_k[l] { k } else { max_k[l] };
        }
    }
    for i in whole..n {
        slopes[i] = 0.0;
        if times[i] < at.t {
            let v = weights[i] * at.slope(factors[i], times[i]);
            slopes[i] = v;
            d[0] += v;
            max_k[0] = max_k[0].max(at.kernel(factors[i], times[i]));
        }
    }
    sums.d = d.iter().sum::<f64>() * at.e;
    sums.max_kernel = max_k.iter().fold(0.0f64, |m, &v| m.max(v)) * at.e;
}

/// `row[i] += K(T - t_i)/tau * factor` ([`Pass::Kernel`]) or `row[i] += w_i K'(T - t_i) *
/// factor` ([`Pass::WeightedSlope`]) for every input, on the widest vector instructions.
#[allow(clippy::too_many_arguments)]
fn pass_into(
    pass: Pass,
    times: &[f64],
    factors: &[f64],
    weights: &[f64],
    at: Output,
    factor: f64,
    row: &mut [f64],
) {
    crate::widest_simd!(pass_into_portable(
        pass: Pass,
        times: &[f64],
        factors: &[f64],
        weights: &[f64],
        at: Output,
        factor: f64,
        row: &mut [f64],
    ))
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pass_into_portable(
    pass: Pass,
    times: &[f64],
    factors: &[f64],
    weights: &[f64],
    at: Output,
    factor: f64,
    row: &mut [f64],
) {
    let n = row.len();
    let (times, factors, weights) = (&times[..n], &factors[..n], &weights[..n]);
    let factor = factor * at.e;
    // One loop per pass, so that neither tests which it is per input.
    match pass {
        Pass::Kernel => {
            for i in 0..n {
                row[i] += at.causal_kernel(factor, factors[i], times[i]);
            }
        }
        Pass::WeightedSlope => {
            for i in 0..n {
                let v = weights[i] * at.slope(factors[i], times[i]) * factor;
                row[i] += f64::from_bits(v.to_bits() & causal_mask(times[i], at.t));
            }
        }
    }
}

/// Rows [`LayerGradients::add_kernels`] adds in one pass.
pub const KERNEL_ROWS: usize = 4;

/// Samples [`LayerGradients::add_kernels_of_samples`] sums in one pass.
pub const KERNEL_SAMPLES: usize = 4;

/// The kernel passes of [`KERNEL_SAMPLES`] samples for [`KERNEL_ROWS`] neurons, summed per
/// entry from zero in sample order and added to the rows, on the widest vector instructions.
fn sample_kernels_into(
    times: &[&[f64]; KERNEL_SAMPLES],
    factors: &[&[f64]; KERNEL_SAMPLES],
    at: &[[(Output, f64); KERNEL_ROWS]; KERNEL_SAMPLES],
    rows: &mut [&mut [f64]; KERNEL_ROWS],
) {
    crate::widest_simd!(sample_kernels_into_portable(
        times: &[&[f64]; KERNEL_SAMPLES],
        factors: &[&[f64]; KERNEL_SAMPLES],
        at: &[[(Output, f64); KERNEL_ROWS]; KERNEL_SAMPLES],
        rows: &mut [&mut [f64]; KERNEL_ROWS],
    ))
}

#[inline(always)]
fn sample_kernels_into_portable(
    times: &[&[f64]; KERNEL_SAMPLES],
    factors: &[&[f64]; KERNEL_SAMPLES],
    at: &[[(Output, f64); KERNEL_ROWS]; KERNEL_SAMPLES],
    rows: &mut [&mut [f64]; KERNEL_ROWS],
) {
    let n = rows[0].len();
    let times = times.map(|t| &t[..n]);
    let factors = factors.map(|f| &f[..n]);
    let [r0, r1, r2, r3] = rows;
    let (r0, r1, r2, r3) = (&mut r0[..n], &mut r1[..n], &mut r2[..n], &mut r3[..n]);
    for i in 0..n {
        let mut p = [0.0; KERNEL_ROWS];
        for s in 0..KERNEL_SAMPLES {
            let (t, f) = (times[s][i], factors[s][i]);
            for (p, &(out, factor)) in p.iter_mut().zip(&at[s]) {
                *p += out.causal_kernel(factor, f, t);
            }
        }
        r0[i] += p[0];
        r1[i] += p[1];
        r2[i] += p[2];
        r3[i] += p[3];
    }
}

/// The kernel pass of [`KERNEL_ROWS`] neurons at once (an empty row takes nothing), on the
/// widest vector instructions.
fn kernels_into(
    times: &[f64],
    factors: &[f64],
    at: &[(Output, f64); KERNEL_ROWS],
    rows: &mut [&mut [f64]; KERNEL_ROWS],
) {
    crate::widest_simd!(kernels_into_portable(
        times: &[f64],
        factors: &[f64],
            at: &[(Output, f64); KERNEL_ROWS],
        rows: &mut [&mut [f64]; KERNEL_ROWS],
    ))
}

#[inline(always)]
fn kernels_into_portable(
    times: &[f64],
    factors: &[f64],
    at: &[(Output, f64); KERNEL_ROWS],
    rows: &mut [&mut [f64]; KERNEL_ROWS],
) {
    let n = times.len();
    let factors = &factors[..n];
    if rows.iter().all(|r| r.len() == n) {
        let [r0, r1, r2, r3] = rows;
        let (r0, r1, r2, r3) = (&mut r0[..n], &mut r1[..n], &mut r2[..n], &mut r3[..n]);
        let [(a0, f0), (a1, f1), (a2, f2), (a3, f3)] = *at;
        for i in 0..n {
            let (t, f) = (times[i], factors[i]);
            r0[i] += a0.causal_kernel(f0, f, t);
            r1[i] += a1.causal_kernel(f1, f, t);
            r2[i] += a2.causal_kernel(f2, f, t);
            r3[i] += a3.causal_kernel(f3, f, t);
        }
        return;
    }
    for (row, &(a, factor)) in rows.iter_mut().zip(at) {
        if row.len() == n {
            for i in 0..n {
                row[i] += a.causal_kernel(factor, factors[i], times[i]);
            }
        }
    }
}

/// The weighted-slope pass of [`KERNEL_ROWS`] neurons into one row: `row[i] += s_r[i] *
/// factor_r`, neuron after neuron, from the slopes [`neuron_sums`] stored (on the widest vector
/// instructions).
fn slopes_into(slopes: &[&[f64]; KERNEL_ROWS], factors: [f64; KERNEL_ROWS], row: &mut [f64]) {
    crate::widest_simd!(slopes_into_portable(
        slopes: &[&[f64]; KERNEL_ROWS],
        factors: [f64; KERNEL_ROWS],
        row: &mut [f64],
    ))
}

#[inline(always)]
fn slopes_into_portable(
    slopes: &[&[f64]; KERNEL_ROWS],
    factors: [f64; KERNEL_ROWS],
    row: &mut [f64],
) {
    let n = row.len();
    let [s0, s1, s2, s3] = slopes.map(|s| &s[..n]);
    let [f0, f1, f2, f3] = factors;
    for i in 0..n {
        // `(w K') * factor`, as the one-neuron pass computes each term.
        let mut v = row[i];
        v += s0[i] * f0;
        v += s1[i] * f1;
        v += s2[i] * f2;
        v += s3[i] * f3;
        row[i] = v;
    }
}

/// `y[i] += x[i] * a` over the shorter of the two slices, on the widest vector instructions
/// (the accumulation of [`LayerGradients`]' results into weight gradients and errors).
pub fn add_scaled(y: &mut [f64], x: &[f64], a: f64) {
    crate::widest_simd!(add_scaled_portable(y: &mut [f64], x: &[f64], a: f64))
}

#[inline(always)]
fn add_scaled_portable(y: &mut [f64], x: &[f64], a: f64) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += x * a;
    }
}
