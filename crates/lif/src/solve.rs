//! First-spike solvers: one scan over the sorted inputs, one closed form or root search in the
//! interval where the membrane first reaches threshold.
//!
//! The one idea: carry the membrane state across the inputs instead of forming prefix sums
//! against a fixed reference time. At each input `t_k` the state is two numbers (the membrane
//! and the synaptic current, in each kernel's own scaling); crossing an input-free gap multiplies
//! them by precomputed decay factors. Nothing can overflow, however long the volley, and each
//! interval's test "does the membrane reach threshold before the next input?" needs no
//! transcendental function: it is enough to look at the membrane at the interval's end and, only
//! when the membrane peaks inside the interval, at the peak.
//!
//! A crossing at or after the next input is never accepted for the current prefix, which is
//! exactly the causal-set rule: the output is the smallest candidate `T_k` of the first `k`
//! inputs with `t_k <= T_k < t_{k+1}`.

use crate::kernel::{general_factors, step_factors};
use crate::lambert_w::w0_from_branch_distance;
use crate::params::{Consts, Kernel, NeuronParams};
use crate::volley::Volley;

/// The first output spike of a neuron.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spike {
    /// Spike time; `f64::INFINITY` if the neuron stays below threshold. Never NaN.
    pub time: f64,
    /// Size of the causal set: the spike is caused by the first `causal_len` inputs in time
    /// order (the ones before it, plus any arriving exactly at the spike time). Zero for a silent
    /// neuron.
    pub causal_len: usize,
}

impl Spike {
    /// No spike.
    pub const SILENT: Spike = Spike {
        time: f64::INFINITY,
        causal_len: 0,
    };
}

/// Sorted inputs as the solvers see them: time, weight and gap propagation factors by position.
pub(crate) trait Inputs {
    fn len(&self) -> usize;
    fn time(&self, k: usize) -> f64;
    fn weight(&self, k: usize) -> f64;
    /// Propagation factors across the gap between inputs `k` and `k + 1`.
    fn step(&self, k: usize) -> [f64; 3];
}

pub(crate) struct VolleyInputs<'a> {
    pub(crate) times: &'a [f64],
    pub(crate) order: &'a [u32],
    pub(crate) steps: &'a [[f64; 3]],
    pub(crate) weights: &'a [f64],
}

impl Inputs for VolleyInputs<'_> {
    #[inline]
    fn len(&self) -> usize {
        self.times.len()
    }
    #[inline]
    fn time(&self, k: usize) -> f64 {
        self.times[k]
    }
    #[inline]
    fn weight(&self, k: usize) -> f64 {
        self.weights[self.order[k] as usize]
    }
    #[inline]
    fn step(&self, k: usize) -> [f64; 3] {
        self.steps[k]
    }
}

pub(crate) struct SortedInputs<'a> {
    pub(crate) consts: &'a Consts,
    pub(crate) kernel: Kernel,
    pub(crate) times: &'a [f64],
    pub(crate) weights: &'a [f64],
}

impl Inputs for SortedInputs<'_> {
    #[inline]
    fn len(&self) -> usize {
        self.times.len()
    }
    #[inline]
    fn time(&self, k: usize) -> f64 {
        self.times[k]
    }
    #[inline]
    fn weight(&self, k: usize) -> f64 {
        self.weights[k]
    }
    #[inline]
    fn step(&self, k: usize) -> [f64; 3] {
        step_factors(self.consts, self.kernel, self.times[k + 1] - self.times[k])
    }
}

/// Dispatches to the solver of `kernel`. `kernel` is normally `c.kernel`; tests force
/// [`Kernel::General`] on parameters that have a closed form.
pub(crate) fn solve<I: Inputs>(c: &Consts, kernel: Kernel, inputs: &I) -> Spike {
    match kernel {
        Kernel::Equal => solve_equal(c, inputs),
        Kernel::Double => solve_double(c, inputs),
        Kernel::General => solve_general(c, inputs),
    }
}

/// `tau_m = tau_s = tau`. In units of `tau` and scaled by `g_leak`, the membrane after input `k`
/// is `exp(-x) (a x + b)`, `x = (t - t_k) / tau`, where `a` is the synaptic current and `b` the
/// membrane at `t_k`. Threshold is `g_leak (threshold - e_leak)`.
fn solve_equal<I: Inputs>(c: &Consts, inputs: &I) -> Spike {
    let n = inputs.len();
    if n == 0 {
        return Spike::SILENT;
    }
    let theta = c.g_theta;
    let mut a = 0.0;
    let mut b = 0.0;
    for k in 0..n - 1 {
        a += inputs.weight(k);
        let [e, de, one_minus_d] = inputs.step(k);
        let b_end = e * b + de * a;
        let reaches_end = b_end >= theta;
        // Rising at t_k (a > b) and falling at t_{k+1} (a (1 - d) < b): the single maximum is
        // inside the interval. (Together these imply a > 0.)
        let peak_inside = (a > b) & (a * one_minus_d < b);
        if reaches_end | peak_inside {
            let d = (inputs.time(k + 1) - inputs.time(k)) * c.inv_tau_m;
            if let Some(x) = equal_root(a, b, theta, d, reaches_end) {
                return spike(inputs.time(k) + c.tau_m * x, k, inputs.time(k + 1));
            }
        }
        a *= e;
        b = b_end;
    }
    // Last interval: fires iff rising now and the single maximum reaches threshold.
    a += inputs.weight(n - 1);
    if a > b
        && let Some(x) = equal_root(a, b, theta, f64::INFINITY, false)
    {
        return spike(inputs.time(n - 1) + c.tau_m * x, n - 1, f64::INFINITY);
    }
    Spike::SILENT
}

/// Crossing of `exp(-x) (a x + b) = theta` on the rising side, `a > 0`, `b < theta`, clamped to
/// `[0, d]`. With `beta = b / a` and `s = x + beta` the equation becomes
/// `(-s) exp(-s) = z = -(theta / a) exp(-beta)`, so the first crossing is `x = -W0(z) - beta`
/// (the `W_-1` branch is the crossing on the falling side). The peak reaches threshold iff
/// `z >= -1/e`, i.e. iff `m = (theta / a) exp(1 - beta) <= 1`; then `p = sqrt(2 (1 - m))` is
/// exactly the branch distance of `z`, so `W0` is evaluated without forming `z`. If `guaranteed`, the caller already knows the threshold is reached (the end of the
/// interval is at or above it) and rounding must not lose the crossing.
#[inline]
pub(crate) fn equal_root(a: f64, b: f64, theta: f64, d: f64, guaranteed: bool) -> Option<f64> {
    if a.is_nan() || a <= 0.0 {
        return None;
    }
    let inv_a = 1.0 / a;
    let beta = b * inv_a;
    let mut m = theta * inv_a * (1.0 - beta).exp();
    if m.is_nan() || m > 1.0 {
        if guaranteed {
            m = 1.0;
        } else {
            return None;
        }
    }
    let p = (2.0 * (1.0 - m)).sqrt();
    let x = -w0_from_branch_distance(p) - beta;
    Some(clamp_interval(x, d))
}

/// `tau_m = 2 tau_s`. Scaled by `g_leak`, the membrane after input `k` is `p X - q X^2` with
/// `X = exp(-(t - t_k) / tau_m)`, where `p` and `q` are the input sums decayed with `tau_m` and
/// `tau_s`.
fn solve_double<I: Inputs>(c: &Consts, inputs: &I) -> Spike {
    let n = inputs.len();
    if n == 0 {
        return Spike::SILENT;
    }
    let theta = c.g_theta;
    let mut p = 0.0;
    let mut q = 0.0;
    for k in 0..n - 1 {
        let w = inputs.weight(k);
        p += w;
        q += w;
        let [xe, xe2, _] = inputs.step(k);
        let end = p * xe - q * xe2;
        let reaches_end = end >= theta;
        // dV/dt = -(X / tau_m) (p - 2 q X): rising at t_k (X = 1) iff 2 q > p, falling at
        // t_{k+1} iff p > 2 q X_end.
        let peak_inside = (p > 0.0) & (2.0 * q > p) & (p > 2.0 * q * xe);
        if reaches_end | peak_inside
            && let Some(x) = double_root(p, q, theta, xe, reaches_end)
        {
            return spike(inputs.time(k) - c.tau_m * x.ln(), k, inputs.time(k + 1));
        }
        p *= xe;
        q *= xe2;
    }
    let w = inputs.weight(n - 1);
    p += w;
    q += w;
    if p > 0.0
        && 2.0 * q > p
        && let Some(x) = double_root(p, q, theta, 0.0, false)
    {
        return spike(inputs.time(n - 1) - c.tau_m * x.ln(), n - 1, f64::INFINITY);
    }
    Spike::SILENT
}

/// The larger root `X = (p + sqrt(p^2 - 4 q theta)) / (2 q)` of `q X^2 - p X + theta = 0` (the
/// first crossing in time), clamped to `[x_end, 1]`; `None` if the peak `p^2 / (4 q)` stays below
/// threshold (unless `guaranteed`).
#[inline]
fn double_root(p: f64, q: f64, theta: f64, x_end: f64, guaranteed: bool) -> Option<f64> {
    if !(p > 0.0 && q > 0.0) {
        return None;
    }
    let mut disc = p * p - 4.0 * q * theta;
    if disc.is_nan() || disc < 0.0 {
        if guaranteed {
            disc = 0.0;
        } else {
            return None;
        }
    }
    let x = (p + disc.sqrt()) / (2.0 * q);
    let x = if x > 1.0 { 1.0 } else { x };
    let x = if x < x_end { x_end } else { x };
    if x > 0.0 { Some(x) } else { None }
}

/// Any ratio. The membrane state after input `k` is `y = C (u(t_k) - e_leak)` and the synaptic
/// current `j`; across a gap `x`, `y -> exp(-x/tau_m) y + K(x) j` and `j -> exp(-x/tau_s) j`,
/// and `dy/dt = j - y / tau_m`. Threshold is `C (threshold - e_leak)`.
fn solve_general<I: Inputs>(c: &Consts, inputs: &I) -> Spike {
    let n = inputs.len();
    if n == 0 {
        return Spike::SILENT;
    }
    let theta = c.c_theta;
    let mut y = 0.0;
    let mut j = 0.0;
    for k in 0..n - 1 {
        j += inputs.weight(k);
        let [em, es, kd] = inputs.step(k);
        let y_end = em * y + kd * j;
        let j_end = es * j;
        let reaches_end = y_end >= theta;
        // Rising at t_k (with j <= 0 the membrane cannot rise above max(y, 0) < threshold) and
        // falling at t_{k+1}: the single maximum is inside.
        let peak_inside = (j > 0.0) & (j * c.tau_m > y) & (j_end * c.tau_m < y_end);
        if reaches_end | peak_inside {
            let t_k = inputs.time(k);
            let gap = inputs.time(k + 1) - t_k;
            if reaches_end {
                let x = general_root(c, y, j, theta, gap, y_end - theta, t_k);
                return spike(t_k + x, k, inputs.time(k + 1));
            }
            if let Some(x) = general_crossing_before_peak(c, y, j, theta, gap, t_k) {
                return spike(t_k + x, k, inputs.time(k + 1));
            }
        }
        y = y_end;
        j = j_end;
    }
    j += inputs.weight(n - 1);
    if j > 0.0 && j * c.tau_m > y {
        let t_k = inputs.time(n - 1);
        if let Some(x) = general_crossing_before_peak(c, y, j, theta, f64::INFINITY, t_k) {
            return spike(t_k + x, n - 1, f64::INFINITY);
        }
    }
    Spike::SILENT
}

/// The crossing on the rising side when the membrane, rising at the start, peaks before `gap`
/// (or never, `None`); `None` also when the peak stays below threshold.
fn general_crossing_before_peak(
    c: &Consts,
    y: f64,
    j: f64,
    theta: f64,
    gap: f64,
    t_k: f64,
) -> Option<f64> {
    let x_peak = general_peak(c, y, j)?.min(gap);
    let y_peak = general_value(c, y, j, x_peak);
    if y_peak >= theta {
        Some(general_root(c, y, j, theta, x_peak, y_peak - theta, t_k))
    } else {
        None
    }
}

/// Location of the membrane maximum after a state `(y, j)` with `j > 0`, rising:
/// `exp(-delta x) = (tau_s / tau_m) (1 + delta y / j)`, i.e.
/// `x = -(ln(tau_s/tau_m) + ln1p(delta y / j)) / delta` (limit `tau - y / j` at `delta = 0`).
/// `None` if the membrane rises forever toward rest (no maximum).
#[inline]
fn general_peak(c: &Consts, y: f64, j: f64) -> Option<f64> {
    let q = y / j;
    let x = if c.delta == 0.0 {
        -(c.peak_offset + q)
    } else {
        let arg = c.delta * q;
        if arg.is_nan() || arg <= -1.0 {
            return None;
        }
        -(c.peak_offset + arg.ln_1p() / c.delta)
    };
    if x.is_finite() {
        Some(x.max(0.0))
    } else {
        None
    }
}

#[inline]
fn general_value(c: &Consts, y: f64, j: f64, x: f64) -> f64 {
    let [em, _, k] = general_factors(c, x);
    em * y + k * j
}

/// The crossing `y(x) = theta` in `[0, hi]`, given `y(0) < theta` and `f_hi = y(hi) - theta >= 0`.
/// Safeguarded Halley iteration (cubic convergence; the second derivative comes for free from the
/// same exponentials): a step that leaves the current bracket is replaced by bisection, so the
/// iteration converges even where the slope vanishes (grazing crossings).
fn general_root(c: &Consts, y: f64, j: f64, theta: f64, hi: f64, f_hi: f64, t_k: f64) -> f64 {
    let mut lo = 0.0;
    let mut hi = hi;
    let f_lo = y - theta;
    let x_max = hi;
    // Start from the secant through the bracket ends.
    let mut x = if f_hi > 0.0 && f_hi.is_finite() {
        hi * (-f_lo / (f_hi - f_lo))
    } else {
        hi
    };
    if !(x > lo && x < hi) {
        x = 0.5 * (lo + hi);
    }
    let tiny = 1e-16 * c.tau_m.min(c.tau_s);
    for _ in 0..200 {
        let [em, es, k] = general_factors(c, x);
        let v = em * y + k * j;
        let f = v - theta;
        if f == 0.0 {
            break;
        }
        if f < 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let slope = es * j - v * c.inv_tau_m;
        let curvature = -es * j * c.inv_tau_s - slope * c.inv_tau_m;
        let halley = x - 2.0 * f * slope / (2.0 * slope * slope - f * curvature);
        let next = if slope > 0.0 && halley > lo && halley < hi {
            halley
        } else {
            0.5 * (lo + hi)
        };
        let tol = 2.0 * f64::EPSILON * (t_k.abs() + next.abs()) + tiny;
        let done = (next - x).abs() <= tol || hi - lo <= tol;
        x = next;
        if done {
            break;
        }
    }
    clamp_interval(x, x_max)
}

#[inline]
fn clamp_interval(x: f64, d: f64) -> f64 {
    if x > d {
        d
    } else if x >= 0.0 {
        x
    } else {
        0.0
    }
}

/// The spike of prefix `k + 1`, kept at or before the next input `next` (the local solution is
/// clamped to its interval, but `t_k + (t_{k+1} - t_k)` may round past `t_{k+1}`).
#[inline]
pub(crate) fn spike(time: f64, k: usize, next: f64) -> Spike {
    Spike {
        time: time.min(next),
        causal_len: k + 1,
    }
}

/// First spike time of one neuron whose inputs are a prepared [`Volley`] (the fast path used for
/// whole layers). `weights` are in the original input order, one per input of the volley, silent
/// inputs included (their weights are ignored).
///
/// `params` must be the parameters the volley was prepared with (checked in debug builds); the
/// volley's precomputed factors are what is used.
///
/// # Panics
///
/// If `weights.len() != volley.n_inputs()`.
pub fn spike_time(params: &NeuronParams, volley: &Volley, weights: &[f64]) -> Spike {
    assert_eq!(
        weights.len(),
        volley.n_inputs(),
        "spike_time: need one weight per volley input"
    );
    let Some(c) = volley.consts() else {
        return Spike::SILENT;
    };
    debug_assert_eq!(
        c.params, *params,
        "spike_time: the volley was prepared for other neuron parameters"
    );
    let inputs = VolleyInputs {
        times: volley.sorted_times(),
        order: volley.order(),
        steps: volley.steps(),
        weights,
    };
    solve(c, c.kernel, &inputs)
}

/// First spike time from inputs already sorted ascending and finite, with their weights in the
/// same order; allocation-free. Meant for neurons with their own parameters (an analog neuron's
/// individual `tau_m`, `tau_s`), where nothing can be shared through a [`Volley`].
///
/// # Panics
///
/// If `times` and `weights` differ in length; in debug builds also if `times` is not sorted and
/// finite or `params` is invalid.
pub fn spike_time_sorted(params: &NeuronParams, times: &[f64], weights: &[f64]) -> Spike {
    assert_eq!(
        times.len(),
        weights.len(),
        "spike_time_sorted: need one weight per input time"
    );
    debug_assert!(
        times.iter().all(|t| t.is_finite()) && times.windows(2).all(|w| w[0] <= w[1]),
        "spike_time_sorted: times must be finite and ascending"
    );
    let c = Consts::new(params);
    solve_sorted_with(&c, c.kernel, times, weights)
}

pub(crate) fn solve_sorted_with(
    c: &Consts,
    kernel: Kernel,
    times: &[f64],
    weights: &[f64],
) -> Spike {
    let inputs = SortedInputs {
        consts: c,
        kernel,
        times,
        weights,
    };
    solve(c, kernel, &inputs)
}

/// First spike time from unsorted inputs that may include non-finite times (ignored);
/// `f64::INFINITY` for a silent neuron. Convenience wrapper that allocates; use a [`Volley`] with
/// [`spike_time`] for many neurons sharing the same inputs.
///
/// # Panics
///
/// If `times` and `weights` differ in length.
pub fn first_spike_time(params: &NeuronParams, times: &[f64], weights: &[f64]) -> f64 {
    assert_eq!(
        times.len(),
        weights.len(),
        "first_spike_time: need one weight per input time"
    );
    let mut pairs: Vec<(f64, f64)> = times
        .iter()
        .copied()
        .zip(weights.iter().copied())
        .filter(|(t, _)| t.is_finite())
        .collect();
    pairs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let (sorted_times, sorted_weights): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
    spike_time_sorted(params, &sorted_times, &sorted_weights).time
}

/// Membrane potential at time `t` driven by all inputs with `t_i < t`, ignoring threshold and
/// reset: `e_leak + sum_i w_i K(t - t_i) / C`. Inputs may be unsorted; non-finite times are
/// ignored. At `t = +inf` this is `e_leak`.
///
/// # Panics
///
/// If `times` and `weights` differ in length.
pub fn membrane_potential(params: &NeuronParams, times: &[f64], weights: &[f64], t: f64) -> f64 {
    assert_eq!(
        times.len(),
        weights.len(),
        "membrane_potential: need one weight per input time"
    );
    let c = Consts::new(params);
    if t == f64::INFINITY {
        return params.e_leak;
    }
    let mut sum = 0.0;
    for (&t_i, &w) in times.iter().zip(weights) {
        if t_i.is_finite() && t_i < t {
            sum += w * crate::kernel::psp(&c, t - t_i).0;
        }
    }
    params.e_leak + sum / c.c_m
}

/// Neurons solved in lockstep by [`layer_spike_times`]: independent dependency chains the
/// processor can overlap.
const LANES: usize = 4;

/// First spike times of all neurons of a layer that share one prepared [`Volley`].
///
/// `weights` is row-major, one row of `volley.n_inputs()` weights per neuron, and `out` receives
/// one time per neuron. The result is bit-identical to calling [`spike_time`] per neuron; for the
/// `Equal` kernel the neurons are scanned in lockstep groups, which roughly halves the time of a
/// layer because the per-input recurrence of one neuron is latency-bound.
///
/// # Panics
///
/// If `weights.len() != out.len() * volley.n_inputs()`.
pub fn layer_spike_times(params: &NeuronParams, volley: &Volley, weights: &[f64], out: &mut [f64]) {
    let n_in = volley.n_inputs();
    assert_eq!(
        weights.len(),
        out.len() * n_in,
        "layer_spike_times: need one row of {n_in} weights per neuron"
    );
    let lockstep = volley.consts().is_some_and(|c| c.kernel == Kernel::Equal) && n_in > 0;
    let mut start = 0;
    if lockstep {
        let inputs = VolleyInputs {
            times: volley.sorted_times(),
            order: volley.order(),
            steps: volley.steps(),
            weights: &[],
        };
        if let Some(c) = volley.consts() {
            while start + LANES <= out.len() {
                let rows: [&[f64]; LANES] =
                    std::array::from_fn(|l| &weights[(start + l) * n_in..(start + l + 1) * n_in]);
                let times = solve_equal_lanes(c, &inputs, rows);
                out[start..start + LANES].copy_from_slice(&times);
                start += LANES;
            }
        }
    }
    for (j, t) in out.iter_mut().enumerate().skip(start) {
        *t = spike_time(params, volley, &weights[j * n_in..(j + 1) * n_in]).time;
    }
}

/// [`solve_equal`] for `LANES` neurons at once, same arithmetic in the same order per neuron.
fn solve_equal_lanes(c: &Consts, inputs: &VolleyInputs<'_>, rows: [&[f64]; LANES]) -> [f64; LANES] {
    let mut result = [f64::INFINITY; LANES];
    let n = inputs.len();
    if n == 0 {
        return result;
    }
    let theta = c.g_theta;
    let mut a = [0.0; LANES];
    let mut b = [0.0; LANES];
    let mut open = [true; LANES];
    let mut n_open = LANES;
    for k in 0..n - 1 {
        let i = inputs.order[k] as usize;
        let [e, de, one_minus_d] = inputs.steps[k];
        for l in 0..LANES {
            if !open[l] {
                continue;
            }
            a[l] += rows[l][i];
            let b_end = e * b[l] + de * a[l];
            let reaches_end = b_end >= theta;
            let peak_inside = (a[l] > b[l]) & (a[l] * one_minus_d < b[l]);
            if reaches_end | peak_inside {
                let d = (inputs.times[k + 1] - inputs.times[k]) * c.inv_tau_m;
                if let Some(x) = equal_root(a[l], b[l], theta, d, reaches_end) {
                    result[l] = spike(inputs.times[k] + c.tau_m * x, k, inputs.times[k + 1]).time;
                    open[l] = false;
                    n_open -= 1;
                    continue;
                }
            }
            a[l] *= e;
            b[l] = b_end;
        }
        if n_open == 0 {
            return result;
        }
    }
    let i = inputs.order[n - 1] as usize;
    for l in 0..LANES {
        if !open[l] {
            continue;
        }
        a[l] += rows[l][i];
        if a[l] > b[l]
            && let Some(x) = equal_root(a[l], b[l], theta, f64::INFINITY, false)
        {
            result[l] = spike(inputs.times[n - 1] + c.tau_m * x, n - 1, f64::INFINITY).time;
        }
    }
    result
}
