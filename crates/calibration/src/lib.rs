//! Calibration of a chip's neuron circuits through the [`Backend`] trait alone.
//!
//! An analog chip's circuits differ: given the same parameter codes, every neuron has its own
//! threshold, leak and reset potential and time constants. A calibration finds, for every
//! circuit, the six 10-bit codes that make it hit common targets. It does so as the platform's
//! calibration framework does, and as it would on a real chip: it loads a network that puts a
//! neuron on every circuit, writes codes ([`Backend::set_parameter_codes`]), records membrane
//! traces ([`Backend::record_membrane`]), reads the quantity off each trace
//! ([`measure`]) and moves every circuit's code by a vectorised binary search ([`search`]). It
//! never reads a backend's internals: the same code calibrates the emulated chip in process,
//! the virtual device over a serial line, and a real chip behind its firmware.
//!
//! Calibrated: the threshold, leak and reset potentials (threshold, leak, reset, leak
//! again, as the framework orders them), then the synaptic and membrane time constants and the
//! synaptic input strength, matched to the median circuit as the framework does (measured
//! spreads in `calibration/README.md`). Each quantity is measured under conditions that isolate
//! it (see [`measured_under`]). Every parameter is reported with its spread across circuits before
//! (the start codes) and after, and circuits that miss their target by more than the tolerance
//! are listed, never hidden.

pub mod file;
pub mod measure;
pub mod search;

pub use file::{CalibrationFile, CalibrationFileError, ChipCheck, CircuitCodes};

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use spikeloop_backend::{
    AnalogParameter, Backend, BackendError, Layer, MembraneRequest, Network, NeuronCodes,
    NeuronParams, ndarray::Array2,
};

use measure::Readout;
use spikeloop_backend::analog::CODE_MAX;

/// Inputs that drive every circuit in a threshold or reset recording, all at [`DRIVE_TIME`]
/// with the largest weight: enough to make a neuron fire at every threshold a search tries
/// below the top of the range.
pub const DRIVE_INPUTS: usize = 5;
/// Inputs that drive a threshold recording: fewer than [`DRIVE_INPUTS`], so that the membrane
/// crosses the threshold slowly (about 2 mV per readout sample at 900 mV) and the last sample
/// before the reset lies close to it, yet enough to reach every threshold up to about twice the
/// threshold distance above the leak on circuits with weak synapses.
pub const THRESHOLD_DRIVE_INPUTS: usize = 3;
/// When the driving inputs arrive, model time units (`tau_s`).
pub const DRIVE_TIME: f64 = 0.1;
/// Length of a resting-level recording, `tau_s`.
pub const REST_DURATION: f64 = 1.0;
/// Length of a driven recording, `tau_s`.
pub const DRIVEN_DURATION: f64 = 2.0;
/// Length of a time-constant recording, `tau_s`.
pub const TAU_DURATION: f64 = 4.0;
/// Weight of each driving input while time constants are measured (threshold distances): one
/// input rises a slow membrane by about 180 mV at the synaptic time constant's plateau, all
/// [`DRIVE_INPUTS`] lift it by about 100 mV under a fast synaptic current; both stay well below
/// the top of the range.
pub const TAU_WEIGHT: f64 = 1.2;
/// The synaptic time constant's code while the membrane time constant is measured: fast
/// (about 1 us on the nominal curve), so that the membrane's decay after an input is its own.
pub const FAST_TAU_S_CODE: u16 = 1000;
/// The membrane time constant's code while the synaptic time constant is measured: slow
/// (about 1 ms), so that the membrane integrates the synaptic current and rises with its
/// time constant.
pub const SLOW_TAU_M_CODE: u16 = 1;

/// The codes every search starts from for the parameters it does not search: BrainScaleS-2's
/// nominal codes of the reference operating point (threshold 900 mV, leak and reset 600 mV,
/// both time constants 6 us, the synaptic gain of weight scale 30), as a data sheet gives them.
pub const START_CODES: NeuronCodes = NeuronCodes {
    threshold: 750,
    leak: 500,
    reset: 500,
    tau_m: 170,
    tau_s: 170,
    synaptic_gain: 500,
};

/// The reset code while the threshold is searched: far below any leak potential (300 mV on the
/// nominal curve), so that the fall at the reset stands out of the trace even for a threshold
/// just above the resting level, where the search starts.
pub const RESET_DURING_THRESHOLD_SEARCH: u16 = 250;

/// What every circuit is calibrated to (the reference TTFS operating point by default; see
/// `calibration/README.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Targets {
    /// Leak (resting) potential, mV.
    pub leak_mv: f64,
    /// Threshold, mV.
    pub threshold_mv: f64,
    /// Reset potential, mV.
    pub reset_mv: f64,
    /// Membrane time constant, us.
    pub tau_m_us: f64,
    /// Synaptic time constant, us.
    pub tau_s_us: f64,
    /// A circuit whose measured potential misses its target by more than this is reported as
    /// failed, mV.
    pub tolerance_mv: f64,
    /// A circuit whose measured time constant or synaptic gain misses its target by more than
    /// this fraction of it is reported as failed.
    pub tolerance_tau: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            leak_mv: 600.0,
            threshold_mv: 900.0,
            reset_mv: 600.0,
            tau_m_us: 6.0,
            tau_s_us: 6.0,
            tolerance_mv: 6.0,
            tolerance_tau: 0.05,
        }
    }
}

impl Targets {
    /// Checks that every target and tolerance is a finite positive number and the threshold
    /// lies above the leak; the error names the first offending field.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("leak_mv", self.leak_mv),
            ("threshold_mv", self.threshold_mv),
            ("reset_mv", self.reset_mv),
            ("tau_m_us", self.tau_m_us),
            ("tau_s_us", self.tau_s_us),
            ("tolerance_mv", self.tolerance_mv),
            ("tolerance_tau", self.tolerance_tau),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!(
                    "target {name} = {v}: targets must be finite and positive"
                ));
            }
        }
        if self.threshold_mv <= self.leak_mv {
            return Err(format!(
                "threshold_mv {} must lie above leak_mv {} (a circuit at rest would fire)",
                self.threshold_mv, self.leak_mv
            ));
        }
        Ok(())
    }
}

/// How a calibration measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Seeds the searches' randomised starts.
    pub seed: u64,
    /// Driven recordings averaged per threshold measurement (trial-to-trial threshold noise
    /// averages out as its square root).
    pub threshold_repeats: usize,
    /// Recordings averaged per time-constant measurement (readout noise on the fitted rise or
    /// decay).
    pub tau_repeats: usize,
    /// Recordings averaged per circuit for the before and after spreads.
    pub report_repeats: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 0,
            threshold_repeats: 16,
            tau_repeats: 4,
            report_repeats: 16,
        }
    }
}

/// How a parameter's measured values spread across circuits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Mean.
    #[serde(deserialize_with = "file::nullable::number")]
    pub mean: f64,
    /// Standard deviation.
    #[serde(deserialize_with = "file::nullable::number")]
    pub sd: f64,
    /// 5th percentile.
    #[serde(deserialize_with = "file::nullable::number")]
    pub p5: f64,
    /// 95th percentile.
    #[serde(deserialize_with = "file::nullable::number")]
    pub p95: f64,
    /// Circuits with nothing measurable (a threshold no drive reached, say).
    pub unmeasured: usize,
}

impl Spread {
    /// The median of the finite `values` (NaN without any).
    pub fn median(values: &[f64]) -> f64 {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
        }
    }

    /// The spread of the finite `values`.
    pub fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let unmeasured = values.len() - n;
        if n == 0 {
            return Spread {
                mean: f64::NAN,
                sd: f64::NAN,
                p5: f64::NAN,
                p95: f64::NAN,
                unmeasured,
            };
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
        let at = |q: f64| v[((q * (n - 1) as f64).round() as usize).min(n - 1)];
        Spread {
            mean,
            sd: var.sqrt(),
            p5: at(0.05),
            p95: at(0.95),
            unmeasured,
        }
    }
}

/// One calibrated parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParameterReport {
    /// The parameter.
    pub parameter: AnalogParameter,
    /// Its target, in [`AnalogParameter::unit`].
    #[serde(deserialize_with = "file::nullable::number")]
    pub target: f64,
    /// Spread across circuits with no codes written (the uncalibrated chip).
    pub before: Spread,
    /// Spread across circuits with the calibrated codes.
    pub after: Spread,
    /// Each circuit's value on the start codes (in circuit order of [`Calibration::codes`]);
    /// NaN where nothing was measurable.
    #[serde(deserialize_with = "file::nullable::numbers")]
    pub before_values: Vec<f64>,
    /// Each circuit's value with the calibrated codes (in circuit order of
    /// [`Calibration::codes`]); NaN where nothing was measurable.
    #[serde(deserialize_with = "file::nullable::numbers")]
    pub achieved: Vec<f64>,
    /// Circuits that miss the target by more than the tolerance (or measure nothing).
    pub failed: Vec<usize>,
}

/// A finished calibration.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// The chip's identity, as the backend reports it.
    pub chip_id: Option<String>,
    /// The calibrated codes of every circuit.
    pub codes: Vec<(usize, NeuronCodes)>,
    /// Every calibrated parameter, in calibration order.
    pub parameters: Vec<ParameterReport>,
    /// Membrane recordings made.
    pub recordings: usize,
    /// Code writes made (each costs the parameter memory's settling time on a chip).
    pub writes: usize,
    /// What the calibration would take on the chip: recordings of their duration plus each
    /// run's overhead, and the settling after every write; microseconds.
    pub hardware_time_us: f64,
    /// Wall-clock time.
    pub wall_time: Duration,
}

/// Why a calibration could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrationError {
    /// The backend lacks an ability a calibration needs.
    #[error(
        "{backend} cannot be calibrated: it offers no {what} (a calibration writes parameter codes and records membrane traces in physical units)"
    )]
    Unsupported {
        /// The backend.
        backend: String,
        /// What it lacks.
        what: &'static str,
    },
    /// The backend refused a request.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// `codes` as `parameter` is measured under: what would disturb its measurement is moved out
/// of the way. The threshold is measured with the reset far below (so that the fall at a spike
/// stands out even for a threshold just above rest), the leak with the threshold at the top (a
/// leak above the threshold would fire and read as the reset), the membrane time constant with
/// a fast synaptic one, the synaptic time constant and strength with a slow membrane, all three
/// below an unreachable threshold.
pub fn measured_under(parameter: AnalogParameter, codes: &NeuronCodes) -> NeuronCodes {
    let mut c = *codes;
    match parameter {
        AnalogParameter::Threshold => c.reset = RESET_DURING_THRESHOLD_SEARCH,
        AnalogParameter::Leak => c.threshold = CODE_MAX,
        AnalogParameter::TauM => {
            c.threshold = CODE_MAX;
            c.tau_s = FAST_TAU_S_CODE;
        }
        AnalogParameter::TauS | AnalogParameter::SynapticGain => {
            c.threshold = CODE_MAX;
            c.tau_m = SLOW_TAU_M_CODE;
        }
        AnalogParameter::Reset => {}
    }
    c
}

/// The calibration's session with a backend: the calibration network, its circuits, counters.
struct Session<'a> {
    backend: &'a mut dyn Backend,
    circuits: Vec<usize>,
    readout: Readout,
    recordings: usize,
    writes: usize,
    recorded_us: f64,
    /// Weight steps per model unit (the backend's weight scale; 1 without one).
    weight_steps: f64,
    /// The synaptic time constant the circuits are calibrated to, us.
    tau_s_target_us: f64,
}

impl Session<'_> {
    fn write(&mut self, codes: &[NeuronCodes]) -> Result<(), BackendError> {
        let writes: Vec<_> = self
            .circuits
            .iter()
            .zip(codes)
            .map(|(&c, &k)| (c, Some(k)))
            .collect();
        self.backend.set_parameter_codes(&writes)?;
        self.writes += 1;
        Ok(())
    }

    /// Every circuit's `parameter` with `codes` as it is [`measured_under`], averaged over
    /// `repeats` recordings each.
    fn measure_with(
        &mut self,
        parameter: AnalogParameter,
        codes: &[NeuronCodes],
        repeats: usize,
    ) -> Result<Vec<f64>, BackendError> {
        let conditioned: Vec<NeuronCodes> =
            codes.iter().map(|c| measured_under(parameter, c)).collect();
        self.write(&conditioned)?;
        self.measure(parameter, repeats)
    }

    /// Every circuit's `parameter` as the codes now written make it, averaged over `repeats`
    /// recordings each.
    fn measure(
        &mut self,
        parameter: AnalogParameter,
        repeats: usize,
    ) -> Result<Vec<f64>, BackendError> {
        let driven = |k: usize| -> Vec<f64> {
            (0..DRIVE_INPUTS)
                .map(|i| if i < k { DRIVE_TIME } else { f64::INFINITY })
                .collect()
        };
        let (inputs, duration) = match parameter {
            AnalogParameter::Leak => (driven(0), REST_DURATION),
            AnalogParameter::Threshold => (driven(THRESHOLD_DRIVE_INPUTS), DRIVEN_DURATION),
            AnalogParameter::TauS | AnalogParameter::SynapticGain => (driven(1), TAU_DURATION),
            AnalogParameter::TauM => (driven(DRIVE_INPUTS), TAU_DURATION),
            _ => (driven(DRIVE_INPUTS), DRIVEN_DURATION),
        };
        let tau_s_us = self.backend.capabilities().tau_s_us.unwrap_or(0.0);
        let overhead_us = self.backend.capabilities().batch_overhead_us.unwrap_or(0.0);
        let repeats = repeats.max(1);
        // Every circuit's recordings in one request: a backend runs them side by side where it
        // can.
        let requests: Vec<MembraneRequest> = (0..self.circuits.len())
            .flat_map(|neuron| {
                std::iter::repeat_n(
                    MembraneRequest {
                        inputs: inputs.clone(),
                        layer: 0,
                        neuron,
                        duration,
                    },
                    repeats,
                )
            })
            .collect();
        let traces = self.backend.record_membranes(&requests)?;
        self.recordings += traces.len();
        self.recorded_us += traces.len() as f64 * (duration * tau_s_us + overhead_us);
        let mut out = Vec::with_capacity(self.circuits.len());
        for trials in traces.chunks(repeats) {
            // Finite trials are averaged; one that fired before its drive (`-inf`) decides, and
            // a circuit with no measurable trial is NaN.
            let (mut sum, mut count, mut below) = (0.0, 0usize, false);
            for trace in trials {
                // Time constants: fitted from just after the input (the synaptic one, on the
                // membrane's rise) or 0.8 tau_s after it (the membrane's, once the fast
                // synaptic current has passed).
                let after = |delay: f64| ((DRIVE_TIME + delay) / trace.dt).ceil() as usize;
                let block = |span: f64| (span / trace.dt).round() as usize;
                let value = match parameter {
                    AnalogParameter::Leak => measure::level(trace, self.readout),
                    AnalogParameter::Threshold => measure::threshold(trace, self.readout),
                    AnalogParameter::Reset => measure::reset(trace, self.readout),
                    AnalogParameter::TauS => {
                        measure::time_constant(trace, after(0.02), block(0.1)) * tau_s_us
                    }
                    AnalogParameter::TauM => {
                        measure::time_constant(trace, after(0.8), block(0.3)) * tau_s_us
                    }
                    // The plateau a slow membrane integrates one input to is the gain times the
                    // weight in steps times the (calibrated) synaptic time constant.
                    AnalogParameter::SynapticGain => {
                        measure::rise(trace, self.readout, after(0.0))
                            / (TAU_WEIGHT * self.weight_steps * self.tau_s_target_us)
                    }
                };
                if value.is_finite() {
                    sum += value;
                    count += 1;
                } else if value == f64::NEG_INFINITY {
                    below = true;
                }
            }
            out.push(if below {
                f64::NEG_INFINITY
            } else if count == 0 {
                f64::NAN
            } else {
                sum / count as f64
            });
        }
        Ok(out)
    }
}

/// The calibration network: a neuron on every one of `n` circuits, each driven by
/// [`DRIVE_INPUTS`] inputs of `weight`.
fn calibration_network(n: usize, weight: f64) -> Network {
    Network {
        n_inputs: DRIVE_INPUTS,
        layers: vec![Layer {
            size: n,
            neuron: NeuronParams::REFERENCE,
            bias_times: Vec::new(),
            weights: Array2::from_elem((n, DRIVE_INPUTS), weight),
        }],
    }
}

/// Calibrates every neuron circuit of `backend` to `targets`.
pub fn calibrate(
    backend: &mut dyn Backend,
    targets: &Targets,
    options: &Options,
) -> Result<Calibration, CalibrationError> {
    let started = Instant::now();
    let caps = backend.capabilities().clone();
    let unsupported = |what| CalibrationError::Unsupported {
        backend: caps.name.clone(),
        what,
    };
    if !caps.features.parameter_codes {
        return Err(unsupported("parameter codes"));
    }
    if !caps.features.membrane_recording {
        return Err(unsupported("membrane recording"));
    }
    let Some(r) = caps.membrane_readout.clone().filter(|r| r.unit == "mV") else {
        return Err(unsupported("membrane readout in mV"));
    };
    let Some(n) = caps.max_neurons else {
        return Err(unsupported("circuit count (max_neurons)"));
    };
    let weight = caps.max_weight.unwrap_or(2.0);
    backend.configure(&calibration_network(n, weight))?;
    let circuits = backend.circuits()?.into_iter().next().unwrap_or_default();
    let mut s = Session {
        backend,
        circuits,
        readout: Readout {
            scale: r.scale,
            offset: r.offset,
        },
        recordings: 0,
        writes: 0,
        recorded_us: 0.0,
        weight_steps: caps.weight_scale.unwrap_or(1.0),
        tau_s_target_us: targets.tau_s_us,
    };
    let n = s.circuits.len();
    let target_of = |p: AnalogParameter| match p {
        AnalogParameter::Threshold => targets.threshold_mv,
        AnalogParameter::Reset => targets.reset_mv,
        AnalogParameter::TauM => targets.tau_m_us,
        AnalogParameter::TauS => targets.tau_s_us,
        _ => targets.leak_mv,
    };
    let repeats_of = |p: AnalogParameter| match p {
        AnalogParameter::Threshold => options.threshold_repeats,
        AnalogParameter::TauM | AnalogParameter::TauS => options.tau_repeats,
        _ => 1,
    };
    let start = vec![START_CODES; n];
    let mut codes = start.clone();
    let mut parameters = Vec::new();
    // The potentials on the driving network, then the time constants on a weakly driven one.
    let stages: [(f64, &[AnalogParameter]); 2] = [
        (
            weight,
            &[
                AnalogParameter::Threshold,
                AnalogParameter::Leak,
                AnalogParameter::Reset,
                AnalogParameter::Leak,
            ],
        ),
        (
            TAU_WEIGHT,
            &[
                AnalogParameter::TauS,
                AnalogParameter::TauM,
                AnalogParameter::SynapticGain,
            ],
        ),
    ];
    let mut step = 0u64;
    for (stage_weight, order) in stages {
        s.backend.configure(&calibration_network(n, stage_weight))?;
        let mut before = Vec::new();
        for &p in order {
            if !before.iter().any(|(q, _)| *q == p) {
                before.push((p, s.measure_with(p, &start, options.report_repeats)?));
            }
        }
        // The synaptic gain's target is the median circuit's, as the framework matches it.
        let gain_target = before
            .iter()
            .find(|(q, _)| *q == AnalogParameter::SynapticGain)
            .map_or(f64::NAN, |(_, v)| Spread::median(v));
        let target_here = |p: AnalogParameter| {
            if p == AnalogParameter::SynapticGain {
                gain_target
            } else {
                target_of(p)
            }
        };
        for &p in order {
            let goal = vec![target_here(p); n];
            let repeats = repeats_of(p);
            let found = search::search(
                &goal,
                p.rises_with_code(),
                options.seed.wrapping_add(step),
                |tried| {
                    let trial: Vec<NeuronCodes> = codes
                        .iter()
                        .zip(tried)
                        .map(|(c, &code)| {
                            let mut c = *c;
                            c.set(p, code);
                            c
                        })
                        .collect();
                    s.measure_with(p, &trial, repeats)
                },
            )?;
            step += 1;
            for (c, &code) in codes.iter_mut().zip(&found.codes) {
                c.set(p, code);
            }
        }
        for (p, before) in before {
            let achieved = s.measure_with(p, &codes, options.report_repeats)?;
            let target = target_here(p);
            let tolerance = match p {
                AnalogParameter::TauM | AnalogParameter::TauS => targets.tolerance_tau * target,
                AnalogParameter::SynapticGain => targets.tolerance_tau * target,
                _ => targets.tolerance_mv,
            };
            let failed = s
                .circuits
                .iter()
                .zip(&achieved)
                .filter(|(_, v)| {
                    let miss = (*v - target).abs();
                    miss.is_nan() || miss > tolerance
                })
                .map(|(&c, _)| c)
                .collect();
            parameters.push(ParameterReport {
                parameter: p,
                target,
                before: Spread::of(&before),
                before_values: before,
                after: Spread::of(&achieved),
                achieved,
                failed,
            });
        }
    }
    s.write(&codes)?;
    let settle = caps.parameter_settle_us.unwrap_or(0.0);
    Ok(Calibration {
        chip_id: s.backend.chip_id(),
        codes: s.circuits.iter().copied().zip(codes).collect(),
        parameters,
        recordings: s.recordings,
        writes: s.writes,
        hardware_time_us: s.recorded_us + s.writes as f64 * settle,
        wall_time: started.elapsed(),
    })
}
