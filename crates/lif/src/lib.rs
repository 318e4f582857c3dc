//! Exact first-spike times of the current-based leaky integrate-and-fire (LIF) neuron with
//! exponentially decaying synaptic currents, and their gradients.
//!
//! This crate is pure arithmetic: no I/O, no randomness, no allocation on the hot paths. It is
//! the one place in spikeloop where spike times and spike-time gradients are computed; the ideal
//! backend, the chip emulator and the trainer all call into it.
//!
//! # The model
//!
//! ```text
//! C du/dt = -g_leak (u - e_leak) + I(t),        C = g_leak tau_m,   u(-inf) = e_leak
//! I(t)    = sum_i w_i H(t - t_i) exp(-(t - t_i) / tau_s)
//! ```
//!
//! One input of weight `w` at time 0 moves the membrane by the postsynaptic potential
//!
//! ```text
//! u - e_leak = w tau_m tau_s / (C (tau_m - tau_s)) (exp(-t/tau_m) - exp(-t/tau_s))   tau_m != tau_s
//! u - e_leak = (w / C) t exp(-t/tau)                                                 tau_m == tau_s == tau
//! ```
//!
//! and inputs superpose. The output is the *first* time `u` reaches `threshold`
//! (time-to-first-spike coding); what happens after it (reset, refractoriness) never matters.
//!
//! **Units.** Formulas are written for general constants, but the reference experiments measure
//! time in units of `tau_s` with `e_leak = 0`, `threshold = 1`, `g_leak = 1`
//! ([`NeuronParams::REFERENCE`]). Weights have units of current; all arithmetic is `f64`. Input
//! times may be negative, unsorted, simultaneous, or `+inf` (a silent presynaptic neuron, which
//! is ignored); weights may be negative (inhibitory). Times up to at least `1e3 tau` are handled
//! without overflow: nothing is ever exponentiated relative to a fixed origin.
//!
//! # The causal set
//!
//! Sort the inputs by time. For each prefix of `k` inputs, let `T_k` be the first threshold
//! crossing of the membrane driven by those inputs alone. `T_k` is *valid* iff
//! `t_k <= T_k < t_{k+1}`: the crossing happens before the next input could change the
//! trajectory. The output spike is the smallest valid `T_k`, and `f64::INFINITY` if there is
//! none. A neuron that reaches threshold before a later, strongly inhibitory input therefore
//! still fires; the inhibition is not part of its causal set. Silent neurons give
//! `f64::INFINITY`, never NaN.
//!
//! # Which solver, when
//!
//! [`NeuronParams::kernel`] picks one of three solvers from the time constants:
//!
//! * [`Kernel::Equal`], `tau_m == tau_s == tau` exactly (the reference setting). With
//!   `a1 = sum w_i e^{t_i/tau}`, `b = sum w_i (t_i/tau) e^{t_i/tau}` over the causal set and
//!   `c = g_leak (threshold - e_leak)`, the crossing is
//!   `T = tau (b/a1 - W0(-(c/a1) e^{b/a1}))` with the principal branch of Lambert W
//!   ([`lambert_w`]); no spike if `a1 <= 0` or the argument is below `-1/e` (the membrane peak
//!   stays under threshold).
//! * [`Kernel::Double`], `tau_m == 2 tau_s` exactly: with `a2 = sum w_i e^{t_i/tau_m}` and
//!   `a1` as above with `tau_s`, the crossing solves a quadratic in `e^{-T/tau_m}`,
//!   `T = 2 tau_s ln(2 a1 / (a2 + sqrt(a2^2 - 4 a1 c)))`.
//! * [`Kernel::General`], any other ratio, which is what a real analog neuron has. Between two
//!   inputs the membrane is `A e^{-t/tau_m} - B e^{-t/tau_s}` plus a constant, with at most one
//!   extremum, located analytically; the crossing on its rising side is bracketed and found by a
//!   safeguarded Halley iteration (a cubically convergent Newton-type method) with bisection
//!   fallback, to rounding level. The kernel is evaluated as
//!   `e^{-s/tau_slow} (-expm1(-s |1/tau_s - 1/tau_m|)) / |1/tau_s - 1/tau_m|`, free of
//!   cancellation, so the solver stays accurate to about `1e-12` (as tested) for `tau_m / tau_s`
//!   within `1e-7` of 1 and joins the Equal solver continuously in the limit; `tau_m < tau_s`
//!   works the same way.
//!
//! The constants need no adjustment for `g_leak != 1`: `C = g_leak tau_m` makes the membrane
//! scaled by `g_leak` independent of `C` in both closed forms.
//!
//! **Numerics.** None of the solvers forms `e^{t_i/tau}` against a fixed origin (which overflows
//! near `t = 710 tau`). They scan the sorted inputs once, carrying the membrane state (membrane
//! and synaptic current at the latest input) across each gap with precomputed decay factors, and
//! apply the formulas above in local time from the latest input. Whether the crossing lies in a
//! gap is decided without transcendental functions (membrane at the gap's end, or at the peak
//! only when the peak lies inside), so Lambert W, the quadratic or the root finder runs once, in
//! the gap that fires. Lambert W is evaluated straight from the membrane's distance to its peak,
//! which keeps grazing crossings (peak just at threshold) accurate and NaN-free.
//!
//! **Accuracy**, as the tests check it: spike times agree with brute-force integration of the
//! ODE to `1e-8 tau_s` (limited by the integrator), satisfy `u(T) = threshold` to `1e-13`, and
//! the three solvers agree with each other to `1e-13` where they overlap.
//!
//! # Gradients at measured spike times
//!
//! Gradients are not obtained by differentiating the closed forms but by *implicit
//! differentiation* of the threshold condition `u(T; w, t_in) = threshold`:
//! `dT/dx = -(du/dx) / (du/dT)`, summed over the inputs with `t_i < T`
//! ([`gradients_at`]). This is valid for every kernel, and it can be evaluated at *any* given
//! output time, in particular at a spike time measured on neuromorphic hardware, whose noisy
//! analog neurons never produce the model's exact solution. That is how hardware-in-the-loop
//! training works: the chip supplies the times, the host supplies the derivatives. At the exact
//! solution the implicit gradients coincide with the closed forms of the reference work, which
//! [`closed_form`] keeps for comparison. When `du/dT <= 0` (no upward crossing at the given time)
//! or the neuron is silent, all gradients are zero and the returned slope says so.
//!
//! # Fast path
//!
//! A [`Volley`] holds one sample's inputs to a layer, sorted once, with the decay factor of every
//! inter-input gap precomputed; [`spike_time`] and [`gradients_at`] then cost a few
//! multiply-adds per input and one or two transcendental functions per neuron.
//! [`spike_time_sorted`] and [`gradients_at_inputs`] serve neurons with individual parameters.

pub mod closed_form;
mod dense;
mod gradients;
mod kernel;
pub mod lambert_w;
mod params;
mod simd;
mod solve;
mod volley;

pub use dense::{
    KERNEL_ROWS, KERNEL_SAMPLES, LayerGradients, LayerState, NeuronGradients, add_scaled,
    dense_applies, layer_spike_times_dense, transpose_weights,
};
pub use gradients::{gradients_at, gradients_at_inputs};
pub use params::{Kernel, NeuronParams, ParamError};
pub use simd::widest_simd_name;
pub use solve::{
    Spike, first_spike_time, layer_spike_times, membrane_potential, spike_time, spike_time_sorted,
};
pub use volley::Volley;

#[cfg(test)]
mod tests;
