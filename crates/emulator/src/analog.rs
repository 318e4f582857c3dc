//! Analog neuron parameters: 10-bit codes, ideal transfer curves, and each circuit's deviations.
//!
//! The one idea: a neuron circuit is configured with *codes*, never with physical values. Each of
//! its six parameters is a 10-bit CapMem cell (codes `0..=1022`) whose output passes through a
//! transfer curve. The ideal curves are public (they are what a data sheet would promise); each
//! circuit's actual curve deviates by its own gain and offset errors, which only measurements
//! reveal. A neuron given the *nominal* code (the code that hits the target on the ideal curve)
//! is therefore off target by its fixed-pattern deviation, until calibration finds better codes.
//!
//! The ideal curves (chosen so that the reference operating point, 6 us time constants, leak and
//! reset at 600 mV, threshold at 900 mV and weight scale 30, falls exactly on codes):
//!
//! | parameter | ideal curve | range | reference code |
//! |---|---|---|---|
//! | threshold, leak, reset | `V = 1.2 mV * code` (linear CapMem voltage) | 0 .. 1226.4 mV | 750, 500, 500 |
//! | `tau_m`, `tau_s` | `1/tau = code / 1020 us` (bias current linear in code, rate linear in current) | 0.998 .. 1020 us (code 0: off) | 170, 170 |
//! | synaptic gain | `g = code / 300` mV/us per weight step (OTA bias current linear in code) | 0 .. 3.41 mV/us | 500 |
//!
//! The synaptic gain is the slope `dV/dt` that one weight step drives into the membrane at the
//! onset of its synaptic current. At `tau = 6 us` one time-constant code is 0.6 % of the value,
//! one gain code 0.2 %, one voltage code 0.4 % of the default threshold distance: the resolution
//! limits of any calibration.

use serde::{Deserialize, Serialize};

use crate::config::{AnalogConfig, EmulatorConfig, NoiseConfig};

/// Ideal voltage per code in mV.
pub const VOLTAGE_LSB_MV: f64 = 1.2;
/// Ideal time constant at code 1, in microseconds (`tau = TAU_CODE_US / code`).
pub const TAU_CODE_US: f64 = 1020.0;
/// Codes per unit of synaptic gain (`g = code / GAIN_CODES_PER_UNIT` mV/us per weight step).
pub const GAIN_CODES_PER_UNIT: f64 = 300.0;
/// Smallest rate `1/tau` a deviating circuit can reach (1 / 10 ms): keeps time constants finite.
const RATE_FLOOR_PER_US: f64 = 1e-4;

pub use spikeloop_backend::analog::{AnalogParameter, CODE_MAX, NeuronCodes};

/// The ideal transfer curves of the emulated chip (the table above): what a data sheet would
/// promise; each circuit deviates from them by its own errors.
pub trait IdealCurve {
    /// The value of `code` on the ideal transfer curve (in [`AnalogParameter::unit`]); a time
    /// constant at code 0 is `+inf` (bias off).
    fn ideal_value(self, code: u16) -> f64;
    /// The code whose ideal value is nearest to `value`, or `None` if `value` lies outside the
    /// curve's range by more than half a code (or is not finite).
    fn nominal_code(self, value: f64) -> Option<u16>;
}

impl IdealCurve for AnalogParameter {
    fn ideal_value(self, code: u16) -> f64 {
        let c = f64::from(code);
        match self {
            // code * 6 / 5 is exact for every code that is a multiple of 5 (1.2 is not).
            AnalogParameter::Threshold | AnalogParameter::Leak | AnalogParameter::Reset => {
                c * 6.0 / 5.0
            }
            AnalogParameter::TauM | AnalogParameter::TauS => TAU_CODE_US / c,
            AnalogParameter::SynapticGain => c / GAIN_CODES_PER_UNIT,
        }
    }

    fn nominal_code(self, value: f64) -> Option<u16> {
        if !value.is_finite() {
            return None;
        }
        let exact = match self {
            AnalogParameter::Threshold | AnalogParameter::Leak | AnalogParameter::Reset => {
                value * 5.0 / 6.0
            }
            AnalogParameter::TauM | AnalogParameter::TauS => {
                if value <= 0.0 {
                    return None;
                }
                TAU_CODE_US / value
            }
            AnalogParameter::SynapticGain => value * GAIN_CODES_PER_UNIT,
        };
        // A time constant must lie within the curve's range (its codes are far apart at the
        // slow end); a voltage or gain may round from up to half a code outside.
        let (lowest, below) = match self {
            AnalogParameter::TauM | AnalogParameter::TauS => (1.0, 1e-9),
            _ => (0.0, 0.5),
        };
        let code = exact.round();
        if exact < lowest - below || exact > f64::from(CODE_MAX) + 0.5 {
            return None;
        }
        Some(code.clamp(lowest, f64::from(CODE_MAX)) as u16)
    }
}

/// Target values of a neuron's parameters in physical units (see [`AnalogParameter::unit`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronTargets {
    /// Threshold in mV.
    pub threshold_mv: f64,
    /// Leak potential in mV.
    pub leak_mv: f64,
    /// Reset potential in mV.
    pub reset_mv: f64,
    /// Membrane time constant in us.
    pub tau_m_us: f64,
    /// Synaptic time constant in us.
    pub tau_s_us: f64,
    /// Synaptic gain in mV/us per weight step.
    pub synaptic_gain: f64,
}

impl NeuronTargets {
    /// The targets that make a chip neuron behave like a model neuron with parameters `model`
    /// (time in units of `tau_s`, weights in units of current) under `config`'s operating point
    /// and weight scale. See [`crate`] for the mapping.
    pub fn for_model(model: &spikeloop_lif::NeuronParams, config: &EmulatorConfig) -> Self {
        let a = &config.analog;
        let tau_unit = config.timing.tau_s_us;
        let distance = model.threshold - model.e_leak;
        let mv_per_unit = a.threshold_distance_mv / distance;
        let c_m = model.g_leak * model.tau_m;
        NeuronTargets {
            threshold_mv: a.leak_mv + a.threshold_distance_mv,
            leak_mv: a.leak_mv,
            reset_mv: a.reset_mv,
            tau_m_us: model.tau_m * tau_unit,
            tau_s_us: model.tau_s * tau_unit,
            synaptic_gain: mv_per_unit / (config.weight_scale * c_m * tau_unit),
        }
    }

    /// The value for one parameter.
    pub fn get(&self, parameter: AnalogParameter) -> f64 {
        match parameter {
            AnalogParameter::Threshold => self.threshold_mv,
            AnalogParameter::Leak => self.leak_mv,
            AnalogParameter::Reset => self.reset_mv,
            AnalogParameter::TauM => self.tau_m_us,
            AnalogParameter::TauS => self.tau_s_us,
            AnalogParameter::SynapticGain => self.synaptic_gain,
        }
    }

    /// The nominal codes: for each parameter the code that hits the target on the ideal curve.
    /// Fails with the first parameter whose target the curve cannot reach.
    pub fn nominal_codes(&self) -> Result<NeuronCodes, (AnalogParameter, f64)> {
        let mut codes = NeuronCodes::ZERO;
        for p in AnalogParameter::ALL {
            let value = self.get(p);
            let code = p.nominal_code(value).ok_or((p, value))?;
            codes.set(p, code);
        }
        Ok(codes)
    }
}

/// The standard normal numbers fixing one circuit's deviations: `[gain, offset]` per parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct NeuronPattern {
    pub(crate) z: [[f64; 2]; 6],
    /// How this circuit drifts ([`crate::DriftConfig`]): standard normal numbers for the
    /// threshold, `tau_m` and `tau_s`.
    pub(crate) drift: [f64; 3],
}

/// A circuit's actual parameter values for given codes, in physical units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AnalogValues {
    pub(crate) threshold_mv: f64,
    pub(crate) leak_mv: f64,
    pub(crate) reset_mv: f64,
    pub(crate) tau_m_us: f64,
    pub(crate) tau_s_us: f64,
    pub(crate) synaptic_gain: f64,
}

impl NeuronPattern {
    /// The actual values of a circuit with this pattern configured with `codes`.
    pub(crate) fn actual(&self, codes: &NeuronCodes, config: &EmulatorConfig) -> AnalogValues {
        let n: &NoiseConfig = &config.noise;
        let a: &AnalogConfig = &config.analog;
        let deviate = |p: AnalogParameter, ideal: f64, unit: f64| {
            let m = match p {
                AnalogParameter::Threshold => n.threshold,
                AnalogParameter::Leak => n.leak,
                AnalogParameter::Reset => n.reset,
                AnalogParameter::TauM => n.tau_m,
                AnalogParameter::TauS => n.tau_s,
                AnalogParameter::SynapticGain => n.synaptic_gain,
            };
            let [zg, zo] = self.z[p.index()];
            ideal * (1.0 + m.gain_sd * zg) + (m.offset_mean + m.offset_sd * zo) * unit
        };
        let d = &config.drift;
        let drift = |k: usize| d.magnitude * (1.0 + d.spread * self.drift[k]);
        let voltage =
            |p: AnalogParameter| deviate(p, p.ideal_value(codes.get(p)), a.threshold_distance_mv);
        let tau = |p: AnalogParameter, k: usize| {
            let ideal_rate = f64::from(codes.get(p)) / TAU_CODE_US;
            let rate = deviate(p, ideal_rate, 1.0 / config.timing.tau_s_us) * (1.0 - drift(k));
            1.0 / rate.max(RATE_FLOOR_PER_US)
        };
        let gain_unit = a.threshold_distance_mv / (config.weight_scale * config.timing.tau_s_us);
        let p = AnalogParameter::SynapticGain;
        let gain = deviate(p, p.ideal_value(codes.synaptic_gain), gain_unit).max(0.0);
        AnalogValues {
            threshold_mv: voltage(AnalogParameter::Threshold) + drift(0) * a.threshold_distance_mv,
            leak_mv: voltage(AnalogParameter::Leak),
            reset_mv: voltage(AnalogParameter::Reset),
            tau_m_us: tau(AnalogParameter::TauM, 1),
            tau_s_us: tau(AnalogParameter::TauS, 2),
            synaptic_gain: gain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spikeloop_lif::NeuronParams;

    #[test]
    fn reference_targets_fall_on_codes() {
        let t = NeuronTargets::for_model(&NeuronParams::REFERENCE, &EmulatorConfig::default());
        let c = t.nominal_codes().expect("in range");
        assert_eq!(
            c,
            NeuronCodes {
                threshold: 750,
                leak: 500,
                reset: 500,
                tau_m: 170,
                tau_s: 170,
                synaptic_gain: 500
            }
        );
        for p in AnalogParameter::ALL {
            let v = p.ideal_value(c.get(p));
            assert!(
                (v - t.get(p)).abs() <= 1e-12 * t.get(p).abs(),
                "{p:?}: {v} vs {}",
                t.get(p)
            );
        }
        assert_eq!(AnalogParameter::TauM.ideal_value(170), 6.0);
    }

    #[test]
    fn out_of_range_targets_have_no_code() {
        assert_eq!(AnalogParameter::TauM.nominal_code(0.5), None);
        assert_eq!(AnalogParameter::TauM.nominal_code(2000.0), None);
        assert_eq!(AnalogParameter::Threshold.nominal_code(1300.0), None);
        assert_eq!(AnalogParameter::Threshold.nominal_code(-5.0), None);
        assert_eq!(AnalogParameter::SynapticGain.nominal_code(f64::NAN), None);
        assert_eq!(AnalogParameter::Leak.nominal_code(600.4), Some(500));
    }

    #[test]
    fn zero_pattern_or_zero_noise_gives_ideal_values() {
        let config = EmulatorConfig {
            noise: NoiseConfig::none(),
            ..EmulatorConfig::default()
        };
        let pattern = NeuronPattern {
            z: [[1.0, -2.0]; 6],
            drift: [1.0; 3],
        };
        let codes = NeuronTargets::for_model(&NeuronParams::REFERENCE, &config)
            .nominal_codes()
            .expect("in range");
        let v = pattern.actual(&codes, &config);
        assert_eq!(v.tau_m_us, 6.0);
        assert_eq!(v.threshold_mv - v.leak_mv, 300.0);
        // With the default mismatch, the same pattern deviates in the documented direction.
        let v = pattern.actual(&codes, &EmulatorConfig::default());
        assert!((v.threshold_mv - (900.0 + (0.05 - 0.06) * 300.0)).abs() < 1e-9);
        assert!((v.tau_m_us - 6.0 / 1.1).abs() < 1e-12);
    }
}
