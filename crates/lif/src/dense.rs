//! Whole layers at once: the forward scan and the spike-time gradients as dense loops over a
//! layer's neurons (forward) or a neuron's inputs (backward), for the `tau_m = tau_s` kernel.
//!
//! The one idea: a layer's neurons share their inputs, so everything that depends only on the
//! input times is computed once per sample and layer, and what is left per neuron is the same
//! few multiply-adds for every neuron (forward) or every input (backward), which the processor
//! does several at a time. The forward pass walks the sorted inputs once and updates the state
//! of all the layer's neurons per input, reading that input's outgoing weights as one contiguous
//! row (the weights transposed); the arithmetic per neuron is exactly that of the one-neuron
//! scan, so the spike times are bit-identical to [`crate::spike_time`]. The backward pass needs
//! no sort at all: with the input factors `E_i = exp((t_i - t_ref)/tau)` computed once per layer,
//! each kernel value `exp(-(T - t_i)/tau)` is one product `exp(-(T - t_ref)/tau) E_i`, and a
//! neuron's gradients are two passes over its inputs in their original order; they agree with
//! [`crate::gradients_at`] to a few units in the last place (sums are formed in another order).
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
    b: Vec<f64>,
    b_next: Vec<f64>,
    hit: Vec<u8>,
}

/// Below this many neurons still waiting, the layer scan finishes them one by one.
const FEW_OPEN: usize = 16;

/// First spike times of all neurons of a layer with the `tau_m = tau_s` kernel, bit-identical to
/// [`crate::layer_spike_times`].
///
/// `weights` is row-major (one row of `volley.n_inputs()` weights per neuron), `weights_t` the
/// same transposed (one row of `out.len()` weights per input, see [`transpose_weights`]), both
/// in the volley's original input order.
///
/// # Panics
///
/// If the kernel of the volley's parameters is not `Equal` ([`dense_applies`]), or if a weight
/// slice does not hold `out.len() * volley.n_inputs()` weights.
pub fn layer_spike_times_dense(
    volley: &Volley,
    weights: &[f64],
    weights_t: &[f64],
    state: &mut LayerState,
    out: &mut [f64],
) {
    let n_out = out.len();
    assert!(
        weights_t.len() == n_out * volley.n_inputs() && weights.len() == weights_t.len(),
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
    let LayerState { a, b, b_next, hit } = state;
    for v in [&mut *a, &mut *b, &mut *b_next] {
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
    let mut n_open = n_out;
    let mut e_prev = 1.0;
    let mut k = 0;
    while k < n - 1 && n_open >= FEW_OPEN {
        let w = &weights_t[scan.order[k] as usize * n_out..][..n_out];
        let [e, de, one_minus_d] = scan.steps[k];
        let mut any = 0;
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
            c.g_theta,
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
                    n_open -= 1;
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
        let n_in = volley.n_inputs();
        let row = &weights[j * n_in..][..n_in];
        out[j] = scan.finish(k, a[j], b[j], e_prev, row);
    }
}

/// Indices of the non-zero flags, read eight at a time: a step usually fires a few neurons of
/// hundreds, so whole words of zeros are skipped.
fn hits(flags: &[u8]) -> impl Iterator<Item = usize> + '_ {
    flags.chunks(8).enumerate().flat_map(|(w, chunk)| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        let mut bits = u64::from_le_bytes(word);
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let byte = bits.trailing_zeros() as usize / 8;
            bits &= !(0xff << (8 * byte));
            Some(w * 8 + byte)
        })
    })
}

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

    /// `solve_equal` of one neuron from input `k` on, its state `a` (before the decay `e_prev`
    /// of the previous gap and the input `k`) and `b` (the membrane at `t_k`).
    fn finish(&self, k: usize, mut a: f64, mut b: f64, mut e_prev: f64, row: &[f64]) -> f64 {
        let c = self.c;
        let theta = c.g_theta;
        let n = self.times.len();
        for kk in k..n - 1 {
            a = a * e_prev + row[self.order[kk] as usize];
            let [e, de, one_minus_d] = self.steps[kk];
            let b_end = e * b + de * a;
            let reaches_end = b_end >= theta;
            let peak_inside = (a > b) & (a * one_minus_d < b);
            if (reaches_end | peak_inside)
                && let Some(t) = self.root(kk, a, b, reaches_end)
            {
                return t;
            }
            e_prev = e;
            b = b_end;
        }
        a = a * e_prev + row[self.order[n - 1] as usize];
        if a > b
            && let Some(x) = equal_root(a, b, theta, f64::INFINITY, false)
        {
            return spike(self.times[n - 1] + c.tau_m * x, n - 1, f64::INFINITY).time;
        }
        f64::INFINITY
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
    hit: &mut [u8],
    w: &[f64],
    e_prev: f64,
    e: f64,
    de: f64,
    one_minus_d: f64,
    theta: f64,
    any: &mut u8,
) {
    crate::widest_simd!(step_portable(
        a: &mut [f64],
        b: &[f64],
        b_next: &mut [f64],
        hit: &mut [u8],
        w: &[f64],
        e_prev: f64,
        e: f64,
        de: f64,
        one_minus_d: f64,
        theta: f64,
        any: &mut u8,
    ))
}

/// The arithmetic of `solve_equal`'s interval test, per neuron, branch-free.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step_portable(
    a: &mut [f64],
    b: &[f64],
    b_next: &mut [f64],
    hit: &mut [u8],
    w: &[f64],
    e_prev: f64,
    e: f64,
    de: f64,
    one_minus_d: f64,
    theta: f64,
    any: &mut u8,
) {
    let n = a.len();
    let (b, b_next, hit, w) = (&b[..n], &mut b_next[..n], &mut hit[..n], &w[..n]);
    let mut acc = 0u8;
    for j in 0..n {
        let aj = a[j] * e_prev + w[j];
        let bj = b[j];
        let be = e * bj + de * aj;
        let h = (be >= theta) | ((aj > bj) & (aj * one_minus_d < bj));
        a[j] = aj;
        b_next[j] = be;
        hit[j] = u8::from(h);
        acc |= u8::from(h);
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
    /// no usable gradient.
    ///
    /// Leaves in `slopes` one value per input, the values [`LayerGradients::add_weighted_slope`]
    /// adds (bit for bit), so that `dT/dt_i = scale_t * slopes[i]` needs no second pass over the
    /// inputs; empty when the neuron did not fire.
    ///
    /// # Panics
    ///
    /// If `weights` has not one entry per input, or before [`LayerGradients::prepare`].
    pub fn neuron(&self, weights: &[f64], t_out: f64, slopes: &mut Vec<f64>) -> NeuronGradients {
        let n = self.times.len();
        assert_eq!(
            weights.len(),
            n,
            "LayerGradients::neuron: one weight per input"
        );
        let c = self.consts.expect("LayerGradients::neuron before prepare");
        slopes.clear();
        if !t_out.is_finite() {
            return NeuronGradients::NONE;
        }
        if self.too_wide {
            // Rare: inputs hundreds of time constants apart. The one-neuron gradients, already
            // scaled (so both factors are 1).
            // `slopes` holds dT/dw, then dT/dt; dT/dt is kept.
            let (slope, d_t_d_w, _) = self.one_neuron(weights, t_out, slopes);
            let max_kernel = d_t_d_w.iter().fold(0.0f64, |m, g| m.max(g.abs()));
            slopes.drain(..n);
            return NeuronGradients {
                slope,
                scale_w: if slope > 0.0 { 1.0 } else { 0.0 },
                scale_t: if slope > 0.0 { 1.0 } else { 0.0 },
                max_kernel,
            };
        }
        let mut sums = Sums::default();
        let e_out = (-(t_out - self.t_ref) * c.inv_tau_m).exp();
        slopes.resize(n, 0.0);
        neuron_sums(
            &self.times,
            &self.factors,
            weights,
            t_out,
            e_out,
            c.inv_tau_m,
            &mut sums,
            slopes,
        );
        let Sums {
            d,
            max_kernel,
            max_weighted,
        } = sums;
        let slope = d * c.inv_c_m;
        if !(d > 0.0 && slope.is_finite()) {
            return NeuronGradients {
                slope,
                ..NeuronGradients::NONE
            };
        }
        let scale_t = 1.0 / d;
        let scale_w = -c.tau_m * scale_t;
        if !((max_kernel * scale_w).is_finite() && (max_weighted * scale_t).is_finite()) {
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

    /// Adds `factor` times the kernel values `K(T - t_i)/tau` of a neuron with incoming
    /// `weights` that fired at `t_out` to `row` (one entry per input, zero for inputs at or after
    /// `t_out`): with `factor` = [`NeuronGradients::scale_w`] times the neuron's error, its
    /// contribution to the weight gradient. `scratch` as in [`LayerGradients::neuron`].
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

    /// Adds `factor` times the weighted kernel slopes `w_i K'(T - t_i)` of a neuron with
    /// incoming `weights` that fired at `t_out` to `row` (one entry per input, or fewer: the
    /// first `row.len()` inputs): with `factor` = [`NeuronGradients::scale_t`] times the neuron's
    /// error, its contribution to its inputs' errors. `scratch` as in [`LayerGradients::neuron`].
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
        let e_out = (-(t_out - self.t_ref) * c.inv_tau_m).exp();
        let m = row.len();
        let (times, factors, weights) = (&self.times[..m], &self.factors[..m], &weights[..m]);
        pass_into(
            pass,
            times,
            factors,
            weights,
            t_out,
            e_out,
            c.inv_tau_m,
            factor,
            row,
        );
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

/// Which values a pass of [`LayerGradients`] adds.
#[derive(Clone, Copy)]
enum Pass {
    Kernel,
    WeightedSlope,
}

/// What one pass over a neuron's inputs sums up.
#[derive(Default)]
struct Sums {
    /// `sum_i w_i K'(T - t_i)` (scaled by `exp(-(T - t_ref)/tau)` like the stored values).
    d: f64,
    max_kernel: f64,
    max_weighted: f64,
}

/// The sums of [`LayerGradients::neuron`] on the widest vector instructions; the weighted
/// kernel slopes into `slopes`.
#[allow(clippy::too_many_arguments)]
fn neuron_sums(
    times: &[f64],
    factors: &[f64],
    weights: &[f64],
    t_out: f64,
    e_out: f64,
    inv_tau: f64,
    sums: &mut Sums,
    slopes: &mut [f64],
) {
    crate::widest_simd!(neuron_sums_portable(
        times: &[f64],
        factors: &[f64],
        weights: &[f64],
        t_out: f64,
        e_out: f64,
        inv_tau: f64,
        sums: &mut Sums,
        slopes: &mut [f64],
    ))
}

/// The sum of the weighted kernel slopes (each also kept in `slopes`) and the largest
/// magnitudes. Blocks of inputs are evaluated element by element, then folded into lanes of
/// partial results: two simple loops that the compiler vectorises, where one loop doing both
/// does not. The order of the sum is fixed (lane `l` takes inputs `l, l + LANES, ...`, the
/// inputs after the last whole chunk go to lane 0), so results are the same on every processor.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn neuron_sums_portable(
    times: &[f64],
    factors: &[f64],
    weights: &[f64],
    t_out: f64,
    e_out: f64,
    inv_tau: f64,
    sums: &mut Sums,
    slopes: &mut [f64],
) {
    /// Inputs evaluated per block (a multiple of `LANES`, so blocks keep the lanes' order).
    const BLOCK: usize = 8 * LANES;
    let n = times.len();
    let (factors, weights, slopes) = (&factors[..n], &weights[..n], &mut slopes[..n]);
    let mut d = [0.0; LANES];
    let mut max_k = [0.0f64; LANES];
    let mut max_w = [0.0f64; LANES];
    let mut k = [0.0; BLOCK];
    let blocks = times
        .chunks(BLOCK)
        .zip(factors.chunks(BLOCK))
        .zip(weights.chunks(BLOCK))
        .zip(slopes.chunks_mut(BLOCK));
    for (((t, f), w), v) in blocks {
        let m = t.len();
        let k = &mut k[..m];
        for i in 0..m {
            (k[i], v[i]) = kernel_pair(t[i], f[i], w[i], t_out, e_out, inv_tau);
        }
        // Three folds, each a plain lane-wise operation that becomes vector instructions.
        for vc in v.chunks_exact(LANES) {
            for l in 0..LANES {
                d[l] += vc[l];
            }
        }
        for kc in k.chunks_exact(LANES) {
            for l in 0..LANES {
                max_k[l] = if kc[l] > max_k[l] { kc[l] } else { max_k[l] };
            }
        }
        for vc in v.chunks_exact(LANES) {
            for l in 0..LANES {
                let a = vc[l].abs();
                max_w[l] = if a > max_w[l] { a } else { max_w[l] };
            }
        }
        let whole = m - m % LANES;
        for (&kt, &vt) in k[whole..].iter().zip(&v[whole..]) {
            d[0] += vt;
            max_k[0] = max_k[0].max(kt);
            max_w[0] = max_w[0].max(vt.abs());
        }
    }
    sums.d = d.iter().sum::<f64>();
    sums.max_kernel = max_k.iter().fold(0.0f64, |m, &v| m.max(v));
    sums.max_weighted = max_w.iter().fold(0.0f64, |m, &v| m.max(v));
}

/// `row[i] += K(T - t_i)/tau * factor` ([`Pass::Kernel`]) or `row[i] += w_i K'(T - t_i) *
/// factor` ([`Pass::WeightedSlope`]) for every input, on the widest vector instructions.
#[allow(clippy::too_many_arguments)]
fn pass_into(
    pass: Pass,
    times: &[f64],
    factors: &[f64],
    weights: &[f64],
    t_out: f64,
    e_out: f64,
    inv_tau: f64,
    factor: f64,
    row: &mut [f64],
) {
    crate::widest_simd!(pass_into_portable(
        pass: Pass,
        times: &[f64],
        factors: &[f64],
        weights: &[f64],
        t_out: f64,
        e_out: f64,
        inv_tau: f64,
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
    t_out: f64,
    e_out: f64,
    inv_tau: f64,
    factor: f64,
    row: &mut [f64],
) {
    let n = row.len();
    let (times, factors, weights) = (&times[..n], &factors[..n], &weights[..n]);
    // One loop per pass, so that neither tests which it is per input.
    match pass {
        Pass::Kernel => {
            for i in 0..n {
                let (k, _) = kernel_pair(times[i], factors[i], 0.0, t_out, e_out, inv_tau);
                row[i] += k * factor;
            }
        }
        Pass::WeightedSlope => {
            for i in 0..n {
                let (_, v) = kernel_pair(times[i], factors[i], weights[i], t_out, e_out, inv_tau);
                row[i] += v * factor;
            }
        }
    }
}

/// `K(T - t)/tau` and `w K'(T - t)` of one input (both zero unless `t < T`), from the shared
/// factor `f = exp((t - t_ref)/tau)` and `e_out = exp(-(T - t_ref)/tau)`.
#[inline(always)]
fn kernel_pair(t: f64, f: f64, w: f64, t_out: f64, e_out: f64, inv_tau: f64) -> (f64, f64) {
    let causal = t < t_out;
    let x = (t_out - t) * inv_tau;
    let decay = e_out * f;
    let k = if causal { x * decay } else { 0.0 };
    let kp = if causal { decay - k } else { 0.0 };
    (k, w * kp)
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
