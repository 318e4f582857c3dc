//! Everything a user can choose about an emulated chip, with defaults, validation and TOML.
//!
//! The one idea: a configuration names a *chip* (its seed and the magnitudes of its
//! imperfections), an *operating point* (where on the chip's voltage and time scales the model
//! is placed) and how runs are *timed*. Every field has a default, so a TOML text needs to name
//! only what it changes; unknown keys are errors, so a typo never falls back to a default.
//! [`NoiseConfig`] is the one place where every default magnitude is listed with its reasoning
//! and source.

use serde::{Deserialize, Serialize};

use crate::analog::{CODE_MAX, VOLTAGE_LSB_MV};

/// Why a configuration was refused; each message names the key, the value and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not valid TOML, has a value of the wrong type, or names an unknown key.
    #[error("emulator configuration could not be read: {0}")]
    Parse(String),
    /// A value is outside its allowed range.
    #[error("emulator configuration: `{key}` = {value} is not allowed: must be {allowed}")]
    OutOfRange {
        /// The dotted key, e.g. `noise.threshold.offset_sd`.
        key: String,
        /// The rejected value as written.
        value: String,
        /// What the key may hold.
        allowed: String,
    },
}

/// The complete configuration of an emulated chip and of how it runs.
///
/// TOML layout (every key optional; the values shown are the defaults):
///
/// ```toml
/// chip_seed = 1
/// run_seed = 1
/// weight_scale = 30.0
///
/// [analog]
/// leak_mv = 600.0
/// threshold_distance_mv = 300.0
/// reset_mv = 600.0
/// refractory_us = 48.0
///
/// [noise]
/// synapse_gain_sd = 0.05
/// threshold_trial_sd = 0.015
/// spike_jitter_sd = 0.01
/// timestamp_resolution_ns = 8.0
/// readout_offset_ns = -80.0
/// event_dead_time_ns = 8.0
/// madc_noise_mv = 1.0
///
/// [noise.threshold]
/// gain_sd = 0.0
/// offset_mean = 0.05
/// offset_sd = 0.03
/// # [noise.leak], [noise.reset], [noise.tau_m], [noise.tau_s], [noise.synaptic_gain]
/// # take the same three keys; see NoiseConfig for their defaults.
///
/// [timing]
/// tau_s_us = 6.0
/// sample_window_tau = 8.0
/// batch_overhead_us = 100.0
/// pacing = false
///
/// [geometry]
/// halves = 2
/// neurons_per_half = 256
/// rows_per_half = 256
/// event_buses_per_half = 4
/// weight_bits = 6
/// ```
///
/// TOML integers are signed 64-bit, so seeds written in TOML are limited to `0..=2^63-1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmulatorConfig {
    /// Fixes everything static about one chip: the fixed-pattern deviations of all 512 neuron
    /// circuits and all 131,072 synapses. Two seeds behave like two different chips.
    pub chip_seed: u64,
    /// Seeds the temporal noise. Run `k` of a backend (its `k`-th call of `run` or
    /// `record_membrane`) draws from streams addressed by `(run_seed, k, sample)`, so the same
    /// seeds and the same call sequence give bit-identical results.
    pub run_seed: u64,
    /// Float weight to 6-bit hardware weight: `w_hw = round(weight_scale * w)`, clipped to
    /// `[-63, 63]`, the sign choosing the excitatory or inhibitory row. The reference
    /// hardware-in-the-loop work used 30 (SCIENCE.md section 2), so weights up to `63/30 = 2.1`
    /// are representable.
    pub weight_scale: f64,
    /// Where the model is placed on the chip's voltage scale, and the refractory time.
    pub analog: AnalogConfig,
    /// Magnitudes of every imperfection; see [`NoiseConfig`].
    pub noise: NoiseConfig,
    /// Time scale, hardware time accounting and pacing.
    pub timing: TimingConfig,
    /// The chip's layout and synapse resolution; a second chip type is another geometry.
    /// Left out of a written configuration (and so of a substrate description) while it is
    /// BrainScaleS-2's, as before it could be set, so that earlier records still compare equal.
    #[serde(skip_serializing_if = "Geometry::is_default")]
    pub geometry: Geometry,
    /// Slow drift of the analog parameters since the chip was calibrated (as with a change of
    /// temperature); none by default, and then left out of a written configuration.
    #[serde(skip_serializing_if = "DriftConfig::is_none")]
    pub drift: DriftConfig,
}

/// Slow drift of a chip's analog parameters away from where they were when it was calibrated,
/// as a change of the die's temperature moves them: every threshold rises and every time
/// constant lengthens, each circuit by its own amount. A calibration taken before the drift
/// no longer puts the circuits on their targets; nothing else about the chip changes (its
/// identity stays, so its calibration still applies, stale).
///
/// Magnitudes, as reasoning rather than a measurement of BrainScaleS-2 (whose temperature
/// coefficients are not public): the chip's circuits are calibrated against their own
/// fixed-pattern spread of about 3 % of the threshold distance and 10 % of a time constant; a
/// drift of `magnitude` 0.01 to 0.05 moves every circuit by a fifth to a half of that spread,
/// the range in which the platform recalibrates (on the fly in minutes, or nightly).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftConfig {
    /// The mean drift: thresholds rise by this fraction of the threshold distance, and the
    /// rates `1/tau_m` and `1/tau_s` fall by this fraction (the time constants lengthen).
    pub magnitude: f64,
    /// How much circuits differ in their drift, relative to the mean: circuit `i` drifts by
    /// `magnitude * (1 + spread * z_i)` with its own standard normal `z_i` per parameter.
    pub spread: f64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            magnitude: 0.0,
            spread: 0.5,
        }
    }
}

impl DriftConfig {
    /// True when nothing drifts.
    pub fn is_none(&self) -> bool {
        self.magnitude == 0.0
    }
}

/// The layout of the emulated chip: halves, neuron circuits and synapse rows, event buses, and
/// the bits of a synapse weight. The defaults are BrainScaleS-2's (HICANN-X: 512 neuron
/// circuits in two halves of 256, a 256 x 256 synapse array per half, 4 event buses per half,
/// 6-bit weights; SCIENCE.md section 3). A signed source always takes two rows of a half (one
/// excitatory, one inhibitory), because on this kind of chip the sign belongs to the row.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Geometry {
    /// Chip halves, each with its own synapse array.
    pub halves: usize,
    /// Neuron circuits (synapse columns) per half.
    pub neurons_per_half: usize,
    /// Synapse rows per half (an even number: rows come in excitatory/inhibitory pairs).
    pub rows_per_half: usize,
    /// Event buses per half; the synapse driver of source `d` listens to bus `d % buses`.
    pub event_buses_per_half: usize,
    /// Bits of weight magnitude per synapse (at most 7: weights are stored as `i8`).
    pub weight_bits: u32,
    /// Most neuron circuits merged into one logical neuron for a layer with more sources than
    /// one synapse column takes (`rows_per_half / 2`); 1 turns merging off. Default 64: the
    /// 6-bit address labels tell 64 sources of one synapse driver apart. A merged neuron has the
    /// first circuit's membrane (leak, capacitance, threshold, reset, time constants); every
    /// circuit's synapse column feeds it with that circuit's own synaptic gain and synapse
    /// deviations. A half smaller than this limits merging to its circuits. Left out of a
    /// written configuration (and of the chip's identity) at its default, as before merging
    /// existed, so that earlier runs and calibration files still name the same chip.
    #[serde(skip_serializing_if = "is_default_merging")]
    pub max_merged_circuits: usize,
}

impl Default for Geometry {
    fn default() -> Self {
        Self {
            halves: 2,
            neurons_per_half: 256,
            rows_per_half: 256,
            event_buses_per_half: 4,
            weight_bits: 6,
            max_merged_circuits: DEFAULT_MAX_MERGED_CIRCUITS,
        }
    }
}

impl Geometry {
    /// True for the default geometry (BrainScaleS-2's).
    pub fn is_default(&self) -> bool {
        *self == Geometry::default()
    }

    /// Neuron circuits on the chip.
    pub fn neurons(&self) -> usize {
        self.halves * self.neurons_per_half
    }

    /// Largest weight magnitude a synapse holds (63 for 6 bits).
    pub fn max_weight(&self) -> i8 {
        // weight_bits is validated to 1..=7, so the value fits an i8.
        i8::try_from((1u32 << self.weight_bits) - 1).unwrap_or(i8::MAX)
    }

    /// The fit rules shared with the device and the host.
    pub fn fit_rules(&self) -> spikeloop_backend::ChipGeometry {
        spikeloop_backend::ChipGeometry {
            halves: self.halves,
            neurons_per_half: self.neurons_per_half,
            rows_per_half: self.rows_per_half,
            rows_per_source: 2,
            // A neuron's circuits lie in one half.
            max_merged: self.max_merged_circuits.min(self.neurons_per_half),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let check = |key: &str, value: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange {
                    key: format!("geometry.{key}"),
                    value: value.to_string(),
                    allowed: format!("an integer in [{lo}, {hi}]"),
                })
            }
        };
        check("halves", self.halves, 1, 16)?;
        check("neurons_per_half", self.neurons_per_half, 1, 4096)?;
        check("rows_per_half", self.rows_per_half, 2, 4096)?;
        check(
            "event_buses_per_half",
            self.event_buses_per_half,
            1,
            MAX_EVENT_BUSES,
        )?;
        check("weight_bits", self.weight_bits as usize, 1, 7)?;
        check("max_merged_circuits", self.max_merged_circuits, 1, 4096)?;
        if !self.rows_per_half.is_multiple_of(2) {
            return Err(ConfigError::OutOfRange {
                key: "geometry.rows_per_half".into(),
                value: self.rows_per_half.to_string(),
                allowed: "an even number (rows come in excitatory/inhibitory pairs)".into(),
            });
        }
        Ok(())
    }
}

/// Most event buses per half a geometry may have.
pub const MAX_EVENT_BUSES: usize = 64;

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            chip_seed: 1,
            run_seed: 1,
            weight_scale: 30.0,
            analog: AnalogConfig::default(),
            noise: NoiseConfig::default(),
            timing: TimingConfig::default(),
            geometry: Geometry::default(),
            drift: DriftConfig::default(),
        }
    }
}

/// The operating point: model potentials mapped onto membrane voltages, and the refractory time.
///
/// A layer whose neurons have threshold distance `D = threshold - e_leak` in model units is
/// placed so that its resting potential sits at `leak_mv` and its threshold at
/// `leak_mv + threshold_distance_mv`; one model unit of potential is then
/// `threshold_distance_mv / D` millivolts. The defaults put the reference model at codes 500
/// (leak, reset) and 750 (threshold) of the ideal voltage transfer curve, in the middle of the
/// CapMem's 0 to 1.2 V range. The absolute voltages are this emulator's choice (the reference
/// calibration states its targets in ADC units, `leak = reset = 80`, `threshold = 150`, whose
/// conversion to volts is not public); what the reference does fix, and what is kept, is that
/// the reset equals the leak potential.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalogConfig {
    /// Target resting (leak) potential in mV. Default 600.
    pub leak_mv: f64,
    /// Target threshold minus leak in mV. Default 300.
    pub threshold_distance_mv: f64,
    /// Target reset potential in mV. Default 600 (equal to the leak, as in the reference
    /// calibration targets of Goeltz et al., fastAndDeep `src/py/generate_calibration.py`).
    pub reset_mv: f64,
    /// Refractory time in microseconds of hardware time: after a spike the membrane is held at
    /// the reset potential this long, while the synaptic current keeps flowing. Default 48 us,
    /// the whole default sample window (`8 tau_s` at 6 us), so that every neuron fires at most
    /// once per sample: first-spike coding and its gradients assume exactly that, and
    /// BrainScaleS-2's refractory counters with their slow clock reach such times (calix,
    /// `calix.spiking.refractory_period`). The reference's calibration targeted 2 us (same
    /// file), where strongly driven neurons fire again within a sample; measured in the loop on
    /// chip 1 (300 epochs, the reference's hx training set-up), 2 us gave 92.8 % test accuracy and
    /// 48 us 95.3 %, and
    /// the later spikes halve the emulator's speed. Set 2.0 to emulate that calibration.
    pub refractory_us: f64,
}

impl Default for AnalogConfig {
    fn default() -> Self {
        Self {
            leak_mv: 600.0,
            threshold_distance_mv: 300.0,
            reset_mv: 600.0,
            refractory_us: 48.0,
        }
    }
}

/// Fixed-pattern deviation of one analog parameter across neuron circuits.
///
/// Each neuron circuit `i` draws two standard normal numbers `z_g`, `z_o` for every parameter
/// from the chip seed; its transfer curve is then
///
/// ```text
/// actual(code) = ideal(code) * (1 + gain_sd * z_g) + (offset_mean + offset_sd * z_o) * unit
/// ```
///
/// where `unit` is the parameter's reference scale: the threshold distance
/// (`analog.threshold_distance_mv`) for the three potentials, the rate `1 / timing.tau_s_us`
/// for the two time constants (whose transfer curves are linear in the rate `1/tau`), and the
/// nominal synaptic gain of the reference model for the synaptic gain. Changing a magnitude
/// rescales the same pattern; it does not draw a new chip.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mismatch {
    /// Standard deviation of the relative gain error.
    pub gain_sd: f64,
    /// Mean offset, in units of the parameter's reference scale.
    pub offset_mean: f64,
    /// Standard deviation of the offset, in units of the parameter's reference scale.
    pub offset_sd: f64,
}

impl Mismatch {
    /// No deviation at all: the ideal transfer curve.
    pub const NONE: Mismatch = Mismatch {
        gain_sd: 0.0,
        offset_mean: 0.0,
        offset_sd: 0.0,
    };

    /// Only an offset.
    pub const fn offset(mean: f64, sd: f64) -> Mismatch {
        Mismatch {
            gain_sd: 0.0,
            offset_mean: mean,
            offset_sd: sd,
        }
    }

    /// Only a gain error.
    pub const fn gain(sd: f64) -> Mismatch {
        Mismatch {
            gain_sd: sd,
            offset_mean: 0.0,
            offset_sd: 0.0,
        }
    }
}

impl Default for Mismatch {
    fn default() -> Self {
        Mismatch::NONE
    }
}

/// Every imperfection of the emulated chip, with the default magnitudes and where they come from.
///
/// Setting a magnitude to zero switches that effect off on its own; [`NoiseConfig::none`] gives
/// a perfect chip (ideal transfer curves, no temporal noise, exact timestamps, no event loss).
/// The other defaults (operating point, refractory time, sample window, batch overhead) are
/// listed with their sources on [`AnalogConfig`] and [`TimingConfig`], the transfer curves in
/// [`crate::analog`].
///
/// # Fixed-pattern noise (per chip, from `chip_seed`)
///
/// Sources: SCIENCE.md section 3. Percent magnitudes for BrainScaleS-2 itself were not found in a
/// checkable source; the only published numbers are those of a hardware-aware simulation model of
/// the same group, which this emulator takes where they apply. Everything else is a documented
/// choice: the aim is an uncalibrated chip that is visibly worse than the model, with deviations
/// of the kind (offsets of voltages, multiplicative errors of bias currents) that transistor
/// mismatch produces and that the platform's calibration exists to remove.
///
/// | key | default | reasoning and source |
/// |---|---|---|
/// | `threshold` | offset mean `+0.05`, SD `0.03` (of the threshold distance), no gain error | the hardware-aware model: "threshold fixed-pattern offset +5 % mean, 3 % SD per neuron" (SCIENCE.md section 3) |
/// | `leak` | offset SD `0.02` (6 mV at the default operating point) | no checkable source; a comparator-free voltage buffer should deviate less than the threshold comparator, so two thirds of its spread was chosen |
/// | `reset` | offset SD `0.02` | no checkable source; same reasoning as the leak |
/// | `tau_m` | gain SD `0.10` on the rate `1/tau_m` | no checkable source; the time constants are set by bias currents of transistors in weak inversion, whose mismatch is multiplicative and of order 10 % before calibration; this is why the platform calibrates them first (SCIENCE.md section 4) |
/// | `tau_s` | gain SD `0.10` on the rate `1/tau_s` | as for `tau_m` |
/// | `synaptic_gain` | gain SD `0.10` | no checkable source; an OTA transconductance set by a bias current, same reasoning; the platform matches it to the median neuron, which implies a visible spread |
/// | `synapse_gain_sd` | `0.05` | no checkable source; each synapse's current DAC has its own small gain error; 5 % (under one LSB for weights below 20) keeps it below the neuron-level spreads, as the 6-bit weights' usefulness on the real chip suggests |
///
/// # Temporal noise (per run and sample, from `run_seed`)
///
/// | key | default | reasoning and source |
/// |---|---|---|
/// | `threshold_trial_sd` | `0.015` of the threshold distance, drawn per neuron per sample | the hardware-aware model: "trial-to-trial threshold SD 1.5 %" (SCIENCE.md section 3) |
/// | `spike_jitter_sd` | `0.01` tau_s, Gaussian, per spike | the hardware-aware model: "spike delay jitter 0.01 tau" (SCIENCE.md section 3); it delays (or advances) the spike event, not the neuron's own reset |
/// | `timestamp_resolution_ns` | `8.0`; `0` = exact times | the 125 MHz FPGA clock (SCIENCE.md section 3). Input spikes are released at the nearest clock tick; recorded spike times are the tick in which the spike arrived (rounded down), so they read up to one tick early, 4 ns on average. At 6 us per tau_s one tick is `1/750 tau_s` |
/// | `readout_offset_ns` | `-80.0` | "a measured systematic spike-time offset of about -80 ns" (SCIENCE.md section 3); reported times include it, spikes routed on chip do not |
/// | `event_dead_time_ns` | `8.0`; `0` = no loss | synapse drivers take events at most every 8 ns (SCIENCE.md section 3). The drivers of a chip half receive their events over four shared event buses (driver `d` on bus `d mod 4`); a bus passes at most one event per dead time. Events from the FPGA (inputs, bias spikes) wait in its queue for the next free slot, as the FPGA sends its spike train one event per clock cycle (so the reference's five identical copies of an input all arrive, a few ticks apart); events routed on chip from neurons of the previous layer are lost when their bus is busy. The real chip's on-chip routing buffers some collisions; losing them is the emulator's simplification. The bus count is this emulator's choice |
/// | `madc_noise_mv` | `1.0` mV RMS, white, per MADC sample | no checkable source; about one ADC step (1.17 mV), which keeps recorded traces visibly noisy but lets fits of time constants and potentials converge |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseConfig {
    /// Threshold: offset in units of the threshold distance.
    pub threshold: Mismatch,
    /// Leak (resting) potential: offset in units of the threshold distance.
    pub leak: Mismatch,
    /// Reset potential: offset in units of the threshold distance.
    pub reset: Mismatch,
    /// Membrane time constant: gain on the rate `1/tau_m`.
    pub tau_m: Mismatch,
    /// Synaptic time constant: gain on the rate `1/tau_s`.
    pub tau_s: Mismatch,
    /// Synaptic input gain (current per weight step) of each neuron.
    pub synaptic_gain: Mismatch,
    /// Standard deviation of each synapse's own relative gain error.
    pub synapse_gain_sd: f64,
    /// Trial-to-trial threshold noise, standard deviation in units of the threshold distance.
    pub threshold_trial_sd: f64,
    /// Spike-time jitter, standard deviation in model time units (tau_s).
    pub spike_jitter_sd: f64,
    /// Timestamp resolution (the FPGA clock period) in ns; 0 for exact times.
    pub timestamp_resolution_ns: f64,
    /// Systematic offset added to every reported spike time, in ns.
    pub readout_offset_ns: f64,
    /// Minimum spacing of two events on one event bus, in ns; 0 for no event loss or queueing.
    pub event_dead_time_ns: f64,
    /// Noise of the membrane ADC, standard deviation in mV.
    pub madc_noise_mv: f64,
}

impl Default for NoiseConfig {
    fn default() -> Self {
        Self {
            threshold: Mismatch::offset(0.05, 0.03),
            leak: Mismatch::offset(0.0, 0.02),
            reset: Mismatch::offset(0.0, 0.02),
            tau_m: Mismatch::gain(0.10),
            tau_s: Mismatch::gain(0.10),
            synaptic_gain: Mismatch::gain(0.10),
            synapse_gain_sd: 0.05,
            threshold_trial_sd: 0.015,
            spike_jitter_sd: 0.01,
            timestamp_resolution_ns: 8.0,
            readout_offset_ns: -80.0,
            event_dead_time_ns: 8.0,
            madc_noise_mv: 1.0,
        }
    }
}

impl NoiseConfig {
    /// Only the fixed-pattern magnitudes (every temporal effect zero): what, with the chip seed
    /// and geometry, makes one chip the chip it is.
    pub fn fixed_pattern(&self) -> Self {
        Self {
            threshold: self.threshold,
            leak: self.leak,
            reset: self.reset,
            tau_m: self.tau_m,
            tau_s: self.tau_s,
            synaptic_gain: self.synaptic_gain,
            synapse_gain_sd: self.synapse_gain_sd,
            ..Self::none()
        }
    }

    /// A perfect chip: ideal transfer curves, no temporal noise, exact timestamps, no offset and
    /// no event loss. Weights are still 6-bit and parameters still 10-bit codes.
    pub fn none() -> Self {
        Self {
            threshold_trial_sd: 0.0,
            spike_jitter_sd: 0.0,
            timestamp_resolution_ns: 0.0,
            readout_offset_ns: 0.0,
            event_dead_time_ns: 0.0,
            madc_noise_mv: 0.0,
            ..Self::temporal_only()
        }
    }

    /// The defaults without any fixed-pattern noise (ideal transfer curves, ideal synapses) but
    /// with all temporal effects: what a perfectly calibrated chip would still show.
    pub fn temporal_only() -> Self {
        Self {
            threshold: Mismatch::NONE,
            leak: Mismatch::NONE,
            reset: Mismatch::NONE,
            tau_m: Mismatch::NONE,
            tau_s: Mismatch::NONE,
            synaptic_gain: Mismatch::NONE,
            synapse_gain_sd: 0.0,
            ..Self::default()
        }
    }
}

/// The chip's time scale, how hardware time is accounted, and pacing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingConfig {
    /// Hardware time of one model time unit (`tau_s`) in microseconds. Default 6 us, as in the
    /// reference TTFS work (SCIENCE.md section 3).
    pub tau_s_us: f64,
    /// Time each sample occupies on the chip, in model time units: the window in which its
    /// inputs are sent and its spikes recorded, followed by enough time for the membranes to
    /// settle before the next sample. Inputs and bias spikes must lie in `[0, window)`; spikes
    /// after the window are not recorded. Default 8 tau_s = 48 us, which matches the "about
    /// 48 us per image" the reference paper reports for its chip runs (SCIENCE.md section 2,
    /// from the paper, not checked) and leaves `e^-4` of a response at 4 tau_s after the last
    /// input of a Yin-Yang sample.
    pub sample_window_tau: f64,
    /// Fixed hardware time per batch in microseconds (arming the experiment before the first
    /// sample). Default 100 us, the offset at which the reference backend starts its first
    /// sample (fastAndDeep `fd_backend.py`, `_timing_offset = 100e-6`).
    pub batch_overhead_us: f64,
    /// If true, `run` returns no earlier than the batch's hardware time after it was called, as
    /// a chip would.
    pub pacing: bool,
    /// Hardware time the analog parameter memory takes to settle after its codes are rewritten,
    /// in microseconds, counted once in the next run after any number of circuits were written.
    /// Default 20 ms: "rewriting needs about 20 ms to settle" (SCIENCE.md section 3, from the
    /// platform's CapMem documentation, not checked). Left out of a written configuration at
    /// its default, as before it could be set.
    #[serde(skip_serializing_if = "is_default_settle")]
    pub parameter_settle_us: f64,
}

/// The default merging limit of [`Geometry::max_merged_circuits`].
pub const DEFAULT_MAX_MERGED_CIRCUITS: usize = 64;

fn is_default_merging(n: &usize) -> bool {
    *n == DEFAULT_MAX_MERGED_CIRCUITS
}

/// The default settling time of the parameter memory, microseconds.
pub const DEFAULT_PARAMETER_SETTLE_US: f64 = 20_000.0;

fn is_default_settle(us: &f64) -> bool {
    *us == DEFAULT_PARAMETER_SETTLE_US
}

impl Default for TimingConfig {
    fn default() -> Self {
        Self {
            tau_s_us: 6.0,
            sample_window_tau: 8.0,
            batch_overhead_us: 100.0,
            pacing: false,
            parameter_settle_us: DEFAULT_PARAMETER_SETTLE_US,
        }
    }
}

impl EmulatorConfig {
    /// Reads a configuration from TOML text; absent keys keep their defaults. The result is
    /// validated.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: EmulatorConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration as TOML text (every key, including defaults).
    pub fn to_toml_string(&self) -> String {
        // Serialising plain structs of numbers and booleans cannot fail.
        toml::to_string(self).unwrap_or_default()
    }

    /// The name of the noise preset this configuration's noise equals (`default`, `temporal`,
    /// `none`), or `None` for noise magnitudes of its own.
    pub fn noise_preset(&self) -> Option<&'static str> {
        [
            ("default", NoiseConfig::default()),
            ("temporal", NoiseConfig::temporal_only()),
            ("none", NoiseConfig::none()),
        ]
        .into_iter()
        .find(|(_, n)| *n == self.noise)
        .map(|(name, _)| name)
    }

    /// One line naming the chip: `emulator chip 1, run seed 1, noise default`, with `custom
    /// noise`, `custom settings` (anything but seeds, noise and pacing differs from the
    /// defaults) and `paced` where they apply.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "emulator chip {}, run seed {}, noise {}",
            self.chip_seed,
            self.run_seed,
            self.noise_preset().unwrap_or("custom")
        );
        let defaults = Self {
            chip_seed: self.chip_seed,
            run_seed: self.run_seed,
            noise: self.noise.clone(),
            timing: TimingConfig {
                pacing: self.timing.pacing,
                ..TimingConfig::default()
            },
            drift: self.drift,
            ..Self::default()
        };
        if *self != defaults {
            s.push_str(", custom settings");
        }
        if !self.drift.is_none() {
            s.push_str(&format!(", drift {}", self.drift.magnitude));
        }
        if self.timing.pacing {
            s.push_str(", paced");
        }
        s
    }

    /// Hardware time of one clock tick in model time units (0 when timestamps are exact).
    pub fn tick_tau(&self) -> f64 {
        self.noise.timestamp_resolution_ns * 1e-3 / self.timing.tau_s_us
    }

    /// Checks every value; the error names the first offending key, its value and the range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let v_max = CODE_MAX as f64 * VOLTAGE_LSB_MV;
        let check = |key: &str, value: f64, lo: f64, hi: f64, open_lo: bool| {
            let ok =
                value.is_finite() && value <= hi && if open_lo { value > lo } else { value >= lo };
            if ok {
                Ok(())
            } else {
                let bracket = if open_lo { "(" } else { "[" };
                Err(ConfigError::OutOfRange {
                    key: key.to_string(),
                    value: value.to_string(),
                    allowed: format!("a finite number in {bracket}{lo}, {hi}]"),
                })
            }
        };
        check("weight_scale", self.weight_scale, 0.0, 1e6, true)?;
        self.geometry.validate()?;
        check("drift.magnitude", self.drift.magnitude, -0.5, 0.5, false)?;
        check("drift.spread", self.drift.spread, 0.0, 2.0, false)?;

        let a = &self.analog;
        check("analog.leak_mv", a.leak_mv, 0.0, v_max, false)?;
        check(
            "analog.threshold_distance_mv",
            a.threshold_distance_mv,
            0.0,
            v_max - a.leak_mv,
            true,
        )?;
        check(
            "analog.reset_mv",
            a.reset_mv,
            0.0,
            a.leak_mv + a.threshold_distance_mv,
            false,
        )?;
        if a.reset_mv >= a.leak_mv + a.threshold_distance_mv {
            return Err(ConfigError::OutOfRange {
                key: "analog.reset_mv".into(),
                value: a.reset_mv.to_string(),
                allowed: format!(
                    "below the threshold analog.leak_mv + analog.threshold_distance_mv = {} mV",
                    a.leak_mv + a.threshold_distance_mv
                ),
            });
        }
        check("analog.refractory_us", a.refractory_us, 0.0, 1e4, true)?;

        let n = &self.noise;
        for (name, m) in [
            ("threshold", n.threshold),
            ("leak", n.leak),
            ("reset", n.reset),
            ("tau_m", n.tau_m),
            ("tau_s", n.tau_s),
            ("synaptic_gain", n.synaptic_gain),
        ] {
            check(&format!("noise.{name}.gain_sd"), m.gain_sd, 0.0, 0.5, false)?;
            check(
                &format!("noise.{name}.offset_mean"),
                m.offset_mean,
                -1.0,
                1.0,
                false,
            )?;
            check(
                &format!("noise.{name}.offset_sd"),
                m.offset_sd,
                0.0,
                1.0,
                false,
            )?;
        }
        check("noise.synapse_gain_sd", n.synapse_gain_sd, 0.0, 0.5, false)?;
        check(
            "noise.threshold_trial_sd",
            n.threshold_trial_sd,
            0.0,
            1.0,
            false,
        )?;
        check("noise.spike_jitter_sd", n.spike_jitter_sd, 0.0, 1.0, false)?;
        check(
            "noise.timestamp_resolution_ns",
            n.timestamp_resolution_ns,
            0.0,
            1000.0,
            false,
        )?;
        check(
            "noise.readout_offset_ns",
            n.readout_offset_ns,
            -1e4,
            1e4,
            false,
        )?;
        check(
            "noise.event_dead_time_ns",
            n.event_dead_time_ns,
            0.0,
            1000.0,
            false,
        )?;
        check("noise.madc_noise_mv", n.madc_noise_mv, 0.0, 100.0, false)?;

        let t = &self.timing;
        check("timing.tau_s_us", t.tau_s_us, 1.0, 1000.0, false)?;
        check(
            "timing.parameter_settle_us",
            t.parameter_settle_us,
            0.0,
            1e7,
            false,
        )?;
        check(
            "timing.sample_window_tau",
            t.sample_window_tau,
            0.0,
            1e4,
            true,
        )?;
        check(
            "timing.batch_overhead_us",
            t.batch_overhead_us,
            0.0,
            1e9,
            false,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip_through_toml() {
        let c = EmulatorConfig::default();
        c.validate().expect("defaults are valid");
        let text = c.to_toml_string();
        assert_eq!(EmulatorConfig::from_toml_str(&text).ok(), Some(c));
    }

    #[test]
    fn a_small_half_limits_merging_to_its_circuits() {
        let c = EmulatorConfig::from_toml_str("[geometry]\nneurons_per_half = 8\n")
            .expect("a smaller half needs no smaller merging limit");
        assert_eq!(c.geometry.max_merged_circuits, 64);
        assert_eq!(c.geometry.fit_rules().max_merged, 8);
        assert!(EmulatorConfig::from_toml_str("[geometry]\nmax_merged_circuits = 0\n").is_err());
    }

    #[test]
    fn partial_toml_keeps_defaults() {
        let c = EmulatorConfig::from_toml_str(
            "chip_seed = 7\n[noise.tau_m]\ngain_sd = 0.2\n[timing]\npacing = true\n",
        )
        .expect("valid");
        assert_eq!(c.chip_seed, 7);
        assert_eq!(c.noise.tau_m.gain_sd, 0.2);
        assert_eq!(c.noise.tau_m.offset_sd, 0.0);
        assert!(c.timing.pacing);
        assert_eq!(c.noise.threshold, Mismatch::offset(0.05, 0.03));
        assert_eq!(c.weight_scale, 30.0);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e =
            EmulatorConfig::from_toml_str("[noise]\njiter = 1.0\n").expect_err("must be refused");
        assert!(
            matches!(e, ConfigError::Parse(ref m) if m.contains("jiter")),
            "{e}"
        );
        let e = EmulatorConfig::from_toml_str("[noise.threshold]\noffset_sd = -0.1\n")
            .expect_err("must be refused");
        let msg = e.to_string();
        assert!(
            msg.contains("noise.threshold.offset_sd")
                && msg.contains("-0.1")
                && msg.contains("[0, 1]"),
            "{msg}"
        );
        let e = EmulatorConfig::from_toml_str("[timing]\ntau_s_us = 0.1\n")
            .expect_err("must be refused");
        assert!(e.to_string().contains("timing.tau_s_us"), "{e}");
        let e = EmulatorConfig::from_toml_str("[analog]\nreset_mv = 950.0\n")
            .expect_err("must be refused");
        assert!(e.to_string().contains("analog.reset_mv"), "{e}");
    }
}
