//! Neuron parameters, their validation, and the kernel they select.
//!
//! The one idea: the solver is chosen from the parameters alone. Exact equality of the time
//! constants (`tau_m == tau_s`, `tau_m == 2 tau_s`) selects a closed form; anything else, however
//! close, goes to the general root finder, which is built to stay accurate near those ratios.

use std::fmt;

/// Parameters of one current-based LIF neuron with exponentially decaying synaptic currents.
///
/// The membrane obeys `C du/dt = -g_leak (u - e_leak) + I(t)` with `C = g_leak * tau_m`, and every
/// input of weight `w` arriving at `t_i` adds `w * exp(-(t - t_i) / tau_s)` to `I(t)`. Weights
/// therefore have units of current (charge per time); with the reference parameters all
/// quantities are dimensionless, time measured in units of `tau_s`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuronParams {
    /// Membrane time constant `tau_m = C / g_leak`.
    pub tau_m: f64,
    /// Synaptic time constant of the exponentially decaying input current.
    pub tau_s: f64,
    /// Leak conductance `g_leak`.
    pub g_leak: f64,
    /// Leak (resting) potential; the membrane starts here.
    pub e_leak: f64,
    /// Firing threshold; must lie above `e_leak`.
    pub threshold: f64,
}

impl NeuronParams {
    /// `tau_m = tau_s = 1`, `g_leak = 1`, `e_leak = 0`, `threshold = 1`: the neuron of the
    /// reference Yin-Yang experiments (Goeltz et al. 2021), time in units of `tau_s`.
    pub const REFERENCE: NeuronParams = NeuronParams {
        tau_m: 1.0,
        tau_s: 1.0,
        g_leak: 1.0,
        e_leak: 0.0,
        threshold: 1.0,
    };

    /// Checks that every field is finite, both time constants and `g_leak` are positive and the
    /// threshold lies above `e_leak`. The error names the first offending field, its value and
    /// what is allowed.
    pub fn validate(&self) -> Result<(), ParamError> {
        let positive = [
            ("tau_m", self.tau_m),
            ("tau_s", self.tau_s),
            ("g_leak", self.g_leak),
        ];
        for (field, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(ParamError {
                    field,
                    value,
                    allowed: "a finite number > 0".to_string(),
                });
            }
        }
        if !self.e_leak.is_finite() {
            return Err(ParamError {
                field: "e_leak",
                value: self.e_leak,
                allowed: "a finite number".to_string(),
            });
        }
        if !(self.threshold.is_finite() && self.threshold > self.e_leak) {
            return Err(ParamError {
                field: "threshold",
                value: self.threshold,
                allowed: format!("a finite number above e_leak = {}", self.e_leak),
            });
        }
        Ok(())
    }

    /// The solver these parameters select: [`Kernel::Equal`] if `tau_m == tau_s` exactly,
    /// [`Kernel::Double`] if `tau_m == 2 tau_s` exactly, [`Kernel::General`] otherwise.
    pub fn kernel(&self) -> Kernel {
        if self.tau_m == self.tau_s {
            Kernel::Equal
        } else if self.tau_m == 2.0 * self.tau_s {
            Kernel::Double
        } else {
            Kernel::General
        }
    }

    /// Membrane capacitance `C = g_leak * tau_m`.
    pub fn c_m(&self) -> f64 {
        self.g_leak * self.tau_m
    }
}

impl Default for NeuronParams {
    /// [`NeuronParams::REFERENCE`].
    fn default() -> Self {
        NeuronParams::REFERENCE
    }
}

/// Which exact solution applies to a neuron; see [`NeuronParams::kernel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// `tau_m == tau_s`: the crossing is given by the principal branch of Lambert W.
    Equal,
    /// `tau_m == 2 tau_s`: the crossing solves a quadratic in `exp(-t / tau_m)`.
    Double,
    /// Any other ratio: bracketed, safeguarded Halley iteration (a Newton-type root finder) in
    /// the interval that fires.
    General,
}

/// A neuron parameter outside its allowed range, as reported by [`NeuronParams::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ParamError {
    field: &'static str,
    value: f64,
    allowed: String,
}

impl ParamError {
    /// Name of the offending field of [`NeuronParams`].
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The rejected value.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// What the field may hold instead.
    pub fn allowed(&self) -> &str {
        &self.allowed
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid neuron parameter `{}` = {}: must be {}",
            self.field, self.value, self.allowed
        )
    }
}

impl std::error::Error for ParamError {}

/// Quantities derived once from [`NeuronParams`] and shared by every solver and gradient.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Consts {
    pub(crate) params: NeuronParams,
    pub(crate) kernel: Kernel,
    pub(crate) tau_m: f64,
    pub(crate) tau_s: f64,
    pub(crate) inv_tau_m: f64,
    pub(crate) inv_tau_s: f64,
    /// `1 / max(tau_m, tau_s)`: the slower of the two exponentials.
    pub(crate) inv_tau_slow: f64,
    /// Whether `tau_m` is the slower (larger or equal) time constant.
    pub(crate) membrane_is_slow: bool,
    /// `1/tau_s - 1/tau_m`, computed as `(tau_m - tau_s) / (tau_m tau_s)` so that it keeps full
    /// relative accuracy when the time constants nearly agree.
    pub(crate) delta: f64,
    /// `|delta|`.
    pub(crate) delta_abs: f64,
    /// `ln(tau_s / tau_m) / delta` (limit `-tau_s` at `delta = 0`): a constant of the location of
    /// the membrane maximum in the general kernel.
    pub(crate) peak_offset: f64,
    /// `C = g_leak tau_m`.
    pub(crate) c_m: f64,
    /// `1 / C`.
    pub(crate) inv_c_m: f64,
    /// `g_leak (threshold - e_leak)`: the threshold in the scaled units of the Equal and Double
    /// solvers.
    pub(crate) g_theta: f64,
    /// `C (threshold - e_leak)`: the threshold in the units of the general solver.
    pub(crate) c_theta: f64,
}

impl Consts {
    pub(crate) fn new(params: &NeuronParams) -> Consts {
        debug_assert!(
            params.validate().is_ok(),
            "{}",
            params
                .validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        );
        let tau_m = params.tau_m;
        let tau_s = params.tau_s;
        let delta = (tau_m - tau_s) / (tau_m * tau_s);
        let peak_offset = if delta == 0.0 {
            -tau_s
        } else {
            (-tau_s * delta).ln_1p() / delta
        };
        let theta = params.threshold - params.e_leak;
        Consts {
            params: *params,
            kernel: params.kernel(),
            tau_m,
            tau_s,
            inv_tau_m: 1.0 / tau_m,
            inv_tau_s: 1.0 / tau_s,
            inv_tau_slow: 1.0 / tau_m.max(tau_s),
            membrane_is_slow: tau_m >= tau_s,
            delta,
            delta_abs: delta.abs(),
            peak_offset,
            c_m: params.c_m(),
            inv_c_m: 1.0 / params.c_m(),
            g_theta: params.g_leak * theta,
            c_theta: params.c_m() * theta,
        }
    }
}
