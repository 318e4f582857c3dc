//! A neuron circuit's analog parameters as a chip offers them: the six 10-bit parameter codes a
//! calibration sets, and their order.
//!
//! On an analog chip every neuron circuit is configured with *codes* (BrainScaleS-2 keeps them
//! in 10-bit CapMem cells, codes `0..=1022`), never with physical values; each circuit turns a
//! code into a voltage, time constant or gain through its own, individually deviating transfer
//! curve. A backend that lets its user set those codes ([`crate::Features::parameter_codes`])
//! takes and reports them as [`NeuronCodes`], one per circuit; a calibration finds, for every
//! circuit, the codes that hit its targets, measuring only what the backend reports. Which
//! direction a code moves its parameter is part of the parameter's definition here
//! ([`AnalogParameter::rises_with_code`]), as on the platform.

use serde::{Deserialize, Serialize};

/// Largest parameter code (codes are `0..=CODE_MAX`; BrainScaleS-2's CapMem).
pub const CODE_MAX: u16 = 1022;

/// One of the six analog parameters of a neuron circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalogParameter {
    /// Firing threshold (voltage).
    Threshold,
    /// Leak (resting) potential (voltage).
    Leak,
    /// Reset potential (voltage).
    Reset,
    /// Membrane time constant (set through the leak conductance's bias current).
    TauM,
    /// Synaptic time constant (set through the synaptic input's bias current).
    TauS,
    /// Synaptic input gain: membrane slope per weight step (set through the input OTA's bias).
    SynapticGain,
}

impl AnalogParameter {
    /// All six, in the order used throughout the crate.
    pub const ALL: [AnalogParameter; 6] = [
        AnalogParameter::Threshold,
        AnalogParameter::Leak,
        AnalogParameter::Reset,
        AnalogParameter::TauM,
        AnalogParameter::TauS,
        AnalogParameter::SynapticGain,
    ];

    /// Position in [`AnalogParameter::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Short name, as used in configuration keys.
    pub fn name(self) -> &'static str {
        match self {
            AnalogParameter::Threshold => "threshold",
            AnalogParameter::Leak => "leak",
            AnalogParameter::Reset => "reset",
            AnalogParameter::TauM => "tau_m",
            AnalogParameter::TauS => "tau_s",
            AnalogParameter::SynapticGain => "synaptic_gain",
        }
    }

    /// True when a larger code gives a larger value: voltages and the synaptic gain rise with
    /// their codes; a time constant falls (its code sets a bias current, and the rate `1/tau`
    /// grows with the current).
    pub fn rises_with_code(self) -> bool {
        !matches!(self, AnalogParameter::TauM | AnalogParameter::TauS)
    }

    /// Physical unit of the parameter's value.
    pub fn unit(self) -> &'static str {
        match self {
            AnalogParameter::Threshold | AnalogParameter::Leak | AnalogParameter::Reset => "mV",
            AnalogParameter::TauM | AnalogParameter::TauS => "us",
            AnalogParameter::SynapticGain => "mV/us per weight step",
        }
    }
}

/// The six CapMem codes of one neuron circuit: its complete analog configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuronCodes {
    /// Threshold code.
    pub threshold: u16,
    /// Leak potential code.
    pub leak: u16,
    /// Reset potential code.
    pub reset: u16,
    /// Membrane time constant code.
    pub tau_m: u16,
    /// Synaptic time constant code.
    pub tau_s: u16,
    /// Synaptic gain code.
    pub synaptic_gain: u16,
}

impl NeuronCodes {
    /// Every code 0: the start from which codes are filled in one parameter at a time.
    pub const ZERO: NeuronCodes = NeuronCodes {
        threshold: 0,
        leak: 0,
        reset: 0,
        tau_m: 0,
        tau_s: 0,
        synaptic_gain: 0,
    };

    /// The code of one parameter.
    pub fn get(&self, parameter: AnalogParameter) -> u16 {
        match parameter {
            AnalogParameter::Threshold => self.threshold,
            AnalogParameter::Leak => self.leak,
            AnalogParameter::Reset => self.reset,
            AnalogParameter::TauM => self.tau_m,
            AnalogParameter::TauS => self.tau_s,
            AnalogParameter::SynapticGain => self.synaptic_gain,
        }
    }

    /// Replaces the code of one parameter (not checked; see [`NeuronCodes::validate`]).
    pub fn set(&mut self, parameter: AnalogParameter, code: u16) {
        match parameter {
            AnalogParameter::Threshold => self.threshold = code,
            AnalogParameter::Leak => self.leak = code,
            AnalogParameter::Reset => self.reset = code,
            AnalogParameter::TauM => self.tau_m = code,
            AnalogParameter::TauS => self.tau_s = code,
            AnalogParameter::SynapticGain => self.synaptic_gain = code,
        }
    }

    /// Checks that every code is at most [`CODE_MAX`]; the error names the first that is not.
    pub fn validate(&self) -> Result<(), (AnalogParameter, u16)> {
        for p in AnalogParameter::ALL {
            let c = self.get(p);
            if c > CODE_MAX {
                return Err((p, c));
            }
        }
        Ok(())
    }
}
