//! `EmulatorBackend`: the emulated chip behind the `Backend` trait, plus the chip's configuration
//! interface (codes per neuron) that calibration uses.
//!
//! The one idea: the backend answers exactly what a chip would answer: measured spike times,
//! run statistics, hardware time, membrane recordings in ADC codes. The analog values behind
//! them never leave the crate; a user who wants a neuron's time constant has to measure it.

use std::time::{Duration, Instant};

use rayon::prelude::*;
use spikeloop_backend::{
    Backend, BackendError, Capabilities, InputBatch, MembraneReadout, MembraneRequest,
    MembraneTrace, Network, Record, RunOutput, RunStats, SpikeTimes, Substrate,
};

use crate::analog::{NeuronCodes, NeuronTargets};
use crate::chip::{Chip, ChipError};
use crate::config::{ConfigError, EmulatorConfig};
use crate::engine::{Engine, Probe, SampleStats, Scratch, prepare};
use crate::mapping::{Placement, place};
use crate::neuron::membrane_at;
use crate::seeds::{Normals, Purpose};

/// Sampling rate of the membrane ADC in MSample/s.
pub const MADC_SAMPLE_RATE_MHZ: f64 = 30.0;
/// Resolution of the membrane ADC in bits; codes are `0..2^MADC_BITS`.
pub const MADC_BITS: u32 = 10;
/// Input range of the membrane ADC in mV: code `c` stands for `c * MADC_RANGE_MV / 1024` mV.
pub const MADC_RANGE_MV: f64 = 1200.0;
/// Acceleration against biology (chip microseconds per biological millisecond).
pub const ACCELERATION: f64 = 1000.0;
/// Longest membrane recording, in samples (about 33 ms of hardware time).
const MAX_MADC_SAMPLES: usize = 1_000_000;
/// Fewest samples rayon may hand to one task.
const MIN_SAMPLES_PER_TASK: usize = 2;

/// The voltage an ideal membrane ADC code stands for, in mV (the emulated ADC has no gain or
/// offset error; only noise and quantisation).
pub fn madc_code_to_mv(code: f64) -> f64 {
    code * MADC_RANGE_MV / f64::from(1u32 << MADC_BITS)
}

/// An emulated BrainScaleS-2-style chip. See the crate documentation for what it models.
///
/// # The chip's configuration interface
///
/// Besides the [`Backend`] trait, the backend offers what a chip's low-level software offers
/// and what a calibration needs: each neuron circuit's six 10-bit CapMem codes
/// ([`NeuronCodes`]).
///
/// * [`EmulatorBackend::nominal_codes`] and [`EmulatorBackend::neuron_targets`]: the codes a
///   layer's neurons get by default (those that hit the layer's targets on the ideal transfer
///   curves of [`crate::analog`]) and the targets themselves.
/// * [`EmulatorBackend::placement`]: which chip neuron (`0..512`) holds which network neuron.
/// * [`EmulatorBackend::set_neuron_codes`], [`EmulatorBackend::written_codes`],
///   [`EmulatorBackend::clear_neuron_codes`], [`EmulatorBackend::clear_all_codes`]: write, read
///   back and clear a circuit's codes. Written codes stay across `configure` calls (a loaded
///   calibration) and take effect from the next run.
///
/// A calibration finds a circuit's codes by writing candidates and measuring the result (spike
/// times from `run`, traces from `record_membrane`), exactly as it would on hardware; the
/// circuit's actual parameter values are never exposed.
#[derive(Debug)]
pub struct EmulatorBackend {
    config: EmulatorConfig,
    capabilities: Capabilities,
    chip: Chip,
    network: Option<Network>,
    placement: Option<Placement>,
    engine: Option<Engine>,
    /// Codes changed since the engine was built.
    stale: bool,
    /// Parameter codes were written since the last run: it pays the memory's settling time.
    settling: bool,
    run_counter: u64,
}

impl EmulatorBackend {
    /// The chip of `config.chip_seed`, with no network configured and all codes nominal.
    pub fn new(config: EmulatorConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut capabilities = Capabilities::unlimited("emulator");
        let geometry = &config.geometry;
        capabilities.max_neurons = Some(geometry.neurons());
        capabilities.weight_bits = Some(geometry.weight_bits);
        capabilities.max_weight = Some(f64::from(geometry.max_weight()) / config.weight_scale);
        // The rule of `mapping::quantise_weight`.
        capabilities.weight_scale = Some(config.weight_scale);
        capabilities.time_resolution_ns = (config.noise.timestamp_resolution_ns > 0.0)
            .then_some(config.noise.timestamp_resolution_ns);
        capabilities.acceleration = Some(ACCELERATION);
        capabilities.tau_s_us = Some(config.timing.tau_s_us);
        capabilities.features.membrane_recording = true;
        capabilities.features.noise_position = true;
        capabilities.features.parameter_codes = true;
        capabilities.sample_window = Some(config.timing.sample_window_tau);
        capabilities.batch_overhead_us = Some(config.timing.batch_overhead_us);
        capabilities.parameter_settle_us = Some(config.timing.parameter_settle_us);
        capabilities.geometry = Some(geometry.fit_rules());
        capabilities.membrane_readout = Some(MembraneReadout {
            unit: "mV".into(),
            scale: madc_code_to_mv(1.0),
            offset: 0.0,
        });
        Ok(Self {
            chip: Chip::new(config.chip_seed, &config.geometry),
            config,
            capabilities,
            network: None,
            placement: None,
            engine: None,
            stale: false,
            settling: false,
            run_counter: 0,
        })
    }

    /// The configuration this chip was built with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.config
    }

    /// Where the configured network sits on the chip (neurons, rows, quantised weights).
    pub fn placement(&self) -> Option<&Placement> {
        self.placement.as_ref()
    }

    /// Number of runs so far (calls of `run` and `record_membrane`); the next call is run
    /// number `run_counter()` and draws its temporal noise from streams addressed by it.
    pub fn run_counter(&self) -> u64 {
        self.run_counter
    }

    /// Sets the number of the next run, to replay run `k` of an earlier experiment exactly.
    pub fn set_run_counter(&mut self, k: u64) {
        self.run_counter = k;
    }

    /// Hardware time of a batch of `n_samples` in microseconds: the per-batch overhead plus one
    /// sample window per sample.
    pub fn hardware_time_us(&self, n_samples: usize) -> f64 {
        let t = &self.config.timing;
        t.batch_overhead_us + n_samples as f64 * t.sample_window_tau * t.tau_s_us
    }

    /// The physical targets of layer `layer`'s neurons under the current configuration.
    pub fn neuron_targets(&self, layer: usize) -> Result<NeuronTargets, ChipError> {
        let network = self.network.as_ref().ok_or(ChipError::NotConfigured)?;
        let l = network.layers.get(layer).ok_or(ChipError::NoSuchLayer {
            layer,
            layers: network.layers.len(),
        })?;
        Ok(NeuronTargets::for_model(&l.neuron, &self.config))
    }

    /// The nominal codes of layer `layer`: the codes that hit its targets on the ideal transfer
    /// curves, which every neuron without written codes uses.
    pub fn nominal_codes(&self, layer: usize) -> Result<NeuronCodes, ChipError> {
        self.neuron_targets(layer)?
            .nominal_codes()
            .map_err(|(p, value)| ChipError::TargetOutOfRange {
                layer,
                parameter: p.name(),
                value,
                unit: p.unit(),
            })
    }

    /// The codes written to chip neuron `neuron` (`0..512`), or `None` if it uses the nominal
    /// codes of whatever layer is placed on it.
    pub fn written_codes(&self, neuron: usize) -> Result<Option<NeuronCodes>, ChipError> {
        self.chip.explicit_codes(neuron)
    }

    /// Writes codes to chip neuron `neuron`. They stay until cleared, across `configure` calls,
    /// like a calibration loaded onto a chip; they take effect from the next run.
    pub fn set_neuron_codes(&mut self, neuron: usize, codes: NeuronCodes) -> Result<(), ChipError> {
        self.chip.set_codes(neuron, Some(codes))?;
        self.stale = true;
        Ok(())
    }

    /// Returns chip neuron `neuron` to the nominal codes of its layer.
    pub fn clear_neuron_codes(&mut self, neuron: usize) -> Result<(), ChipError> {
        self.chip.set_codes(neuron, None)?;
        self.stale = true;
        Ok(())
    }

    /// Returns every neuron to nominal codes (an uncalibrated chip).
    pub fn clear_all_codes(&mut self) {
        self.chip.clear_all_codes();
        self.stale = true;
    }

    /// Rebuilds the engine after code changes.
    fn refresh(&mut self) -> Result<(), BackendError> {
        if self.stale {
            if let (Some(network), Some(placement)) = (&self.network, &self.placement) {
                self.engine = Some(prepare(
                    network,
                    placement,
                    &self.chip,
                    &self.config,
                    self.engine.as_ref(),
                )?);
            }
            self.stale = false;
        }
        Ok(())
    }
    /// Checks a recording request against the configured `engine`; returns its sample count.
    fn check_membrane_request(
        &self,
        engine: &Engine,
        request: &MembraneRequest,
    ) -> Result<usize, BackendError> {
        let bad = |m: String| Err(BackendError::InvalidInput(m));
        if request.inputs.len() != engine.n_inputs {
            return bad(format!(
                "the request has {} input times, the network expects {}",
                request.inputs.len(),
                engine.n_inputs
            ));
        }
        if let Some(t) = request.inputs.iter().find(|t| t.is_nan()) {
            return bad(format!(
                "input time {t}: times must not be NaN; use +inf for silence"
            ));
        }
        self.check_inputs(engine, &request.inputs, engine.n_inputs)?;
        let Some(layer) = engine.layers.get(request.layer) else {
            return bad(format!(
                "layer {} does not exist: the network has {} layers",
                request.layer,
                engine.layers.len()
            ));
        };
        if request.neuron >= layer.size {
            return bad(format!(
                "neuron {} does not exist: layer {} has {} neurons",
                request.neuron, request.layer, layer.size
            ));
        }
        let dt = 1.0 / MADC_SAMPLE_RATE_MHZ / self.config.timing.tau_s_us;
        if !(request.duration > 0.0 && request.duration <= engine.window) {
            return bad(format!(
                "recording duration {} tau_s: must be in (0, {}] (the sample window)",
                request.duration, engine.window
            ));
        }
        Ok(((request.duration / dt).floor() as usize + 1).min(MAX_MADC_SAMPLES))
    }

    /// The trace of `request` in run `run`: `count` readout samples of the probed neuron.
    fn trace(
        &self,
        engine: &Engine,
        request: &MembraneRequest,
        count: usize,
        run: u64,
    ) -> Result<MembraneTrace, BackendError> {
        let dt = 1.0 / MADC_SAMPLE_RATE_MHZ / self.config.timing.tau_s_us;
        let mut probe = Probe::new(request.layer, request.neuron);
        let mut out = vec![f64::INFINITY; engine.n_neurons];
        engine.run_sample(
            &request.inputs,
            run,
            0,
            &mut Scratch::default(),
            &mut out,
            Some(&mut probe),
        );
        let Some(consts) = probe.consts else {
            return Err(BackendError::Device {
                backend: "emulator".into(),
                message: format!(
                    "layer {} neuron {} was not simulated",
                    request.layer, request.neuron
                ),
            });
        };
        let sample_times: Vec<f64> = (0..count).map(|i| i as f64 * dt).collect();
        let v = membrane_at(
            &consts,
            &probe.times,
            &probe.weights,
            &probe.spikes,
            &sample_times,
        );
        let noise_sd = self.config.noise.madc_noise_mv;
        let mut noise = Normals::new(self.config.run_seed, Purpose::MadcNoise, run, 0);
        let lsb = MADC_RANGE_MV / f64::from(1u32 << MADC_BITS);
        let top = f64::from((1u32 << MADC_BITS) - 1);
        let values = v
            .iter()
            .map(|&v| {
                let mut mv = probe.leak_mv + v * probe.mv_per_unit;
                if noise_sd > 0.0 {
                    mv += noise_sd * noise.next();
                }
                (mv / lsb).round().clamp(0.0, top)
            })
            .collect();
        Ok(MembraneTrace {
            t0: 0.0,
            dt,
            values,
        })
    }

    fn check_inputs(
        &self,
        engine: &Engine,
        inputs: &[f64],
        n_channels: usize,
    ) -> Result<(), BackendError> {
        if let Some(i) = inputs
            .iter()
            .position(|t| t.is_finite() && !(0.0..engine.window).contains(t))
        {
            return Err(BackendError::InvalidInput(format!(
                "sample {}, channel {}: input time {} lies outside the chip's sample window \
                 [0, {}) tau_s (timing.sample_window_tau); use +inf for a silent channel",
                i / n_channels,
                i % n_channels,
                inputs[i],
                engine.window
            )));
        }
        Ok(())
    }
}

impl Backend for EmulatorBackend {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The emulated chip's complete effective configuration (seeds, every noise magnitude,
    /// operating point, timing, pacing), as its TOML keys.
    fn substrate(&self) -> Substrate {
        Substrate::new("emulator", self.config.summary()).with_settings("", &self.config)
    }

    /// `emulator chip <N> (<fingerprint>)`: the chip seed, and a fingerprint of what else makes
    /// the chip this chip (its fixed-pattern magnitudes, transfer curves, geometry and weight
    /// scale). Temporal noise, run seed and timing are left out: a calibration stays this
    /// chip's under another trial noise.
    fn chip_id(&self) -> Option<String> {
        let c = &self.config;
        let identity = Substrate::new("emulator-chip", "")
            .with("chip_seed", c.chip_seed)
            .with("weight_scale", c.weight_scale)
            .with_settings("analog", &c.analog)
            .with_settings("noise", &c.noise.fixed_pattern())
            .with_settings("geometry", &c.geometry);
        Some(format!(
            "emulator chip {} ({})",
            c.chip_seed,
            &identity.fingerprint()[..8]
        ))
    }

    fn circuits(&mut self) -> Result<Vec<Vec<usize>>, BackendError> {
        let placement = self.placement.as_ref().ok_or(BackendError::NotConfigured)?;
        Ok(placement
            .layers
            .iter()
            .map(|l| l.chip_neurons.clone())
            .collect())
    }

    fn set_parameter_codes(
        &mut self,
        writes: &[(usize, Option<NeuronCodes>)],
    ) -> Result<(), BackendError> {
        let n = self.config.geometry.neurons();
        for (circuit, codes) in writes {
            if *circuit >= n {
                return Err(BackendError::InvalidInput(
                    ChipError::NoSuchNeuron {
                        neuron: *circuit,
                        count: n,
                    }
                    .to_string(),
                ));
            }
            if let Some((p, code)) = codes.as_ref().and_then(|c| c.validate().err()) {
                return Err(BackendError::InvalidInput(format!(
                    "circuit {circuit}: {}",
                    ChipError::CodeOutOfRange {
                        parameter: p.name(),
                        code,
                        max: crate::analog::CODE_MAX,
                    }
                )));
            }
        }
        for (circuit, codes) in writes {
            self.chip
                .set_codes(*circuit, *codes)
                .map_err(|e| BackendError::InvalidInput(e.to_string()))?;
        }
        self.stale = true;
        self.settling = true;
        Ok(())
    }

    fn parameter_codes(&mut self, circuit: usize) -> Result<Option<NeuronCodes>, BackendError> {
        self.chip
            .explicit_codes(circuit)
            .map_err(|e| BackendError::InvalidInput(e.to_string()))
    }

    /// `chip<N>`, with `-run<M>` for a run seed other than the default.
    fn file_tag(&self) -> String {
        if self.config.run_seed == EmulatorConfig::default().run_seed {
            format!("chip{}", self.config.chip_seed)
        } else {
            format!("chip{}-run{}", self.config.chip_seed, self.config.run_seed)
        }
    }

    fn configure(&mut self, network: &Network) -> Result<(), BackendError> {
        network.validate()?;
        let placement = place(network, self.config.weight_scale, &self.config.geometry)?;
        let engine = prepare(
            network,
            &placement,
            &self.chip,
            &self.config,
            self.engine.as_ref(),
        )?;
        let clipped: usize = placement.layers.iter().map(|l| l.clipped).sum();
        tracing::debug!(
            neurons_per_half = ?placement.neurons_used,
            rows_per_half = ?placement.rows_used,
            clipped_weights = clipped,
            "emulator: network placed"
        );
        match &mut self.network {
            Some(old) if old.layer_sizes() == network.layer_sizes() => old.clone_from(network),
            slot => *slot = Some(network.clone()),
        }
        self.placement = Some(placement);
        self.engine = Some(engine);
        self.stale = false;
        Ok(())
    }

    fn run(&mut self, inputs: &InputBatch, record: Record) -> Result<RunOutput, BackendError> {
        let started = Instant::now();
        self.refresh()?;
        let engine = self.engine.as_ref().ok_or(BackendError::NotConfigured)?;
        inputs.check_width(engine.n_inputs)?;
        self.check_inputs(engine, inputs.as_slice(), inputs.n_inputs())?;
        let run = self.run_counter;
        self.run_counter += 1;

        let n_samples = inputs.len();
        let stride = engine.n_neurons;
        let mut all = vec![f64::INFINITY; n_samples * stride];
        let mut per_sample = vec![SampleStats::default(); n_samples];
        all.par_chunks_mut(stride)
            .zip(per_sample.par_iter_mut())
            .enumerate()
            .with_min_len(MIN_SAMPLES_PER_TASK)
            .for_each(|(s, (out, stats))| {
                Scratch::with_this_thread(|scratch| {
                    *stats = engine.run_sample(inputs.sample(s), run, s as u64, scratch, out, None);
                });
            });

        let sizes: Vec<usize> = engine.layers.iter().map(|l| l.size).collect();
        let spikes = SpikeTimes::recorded(sizes, all, record)?;
        let mut hardware_time_us = self.hardware_time_us(n_samples);
        if std::mem::take(&mut self.settling) {
            hardware_time_us += self.config.timing.parameter_settle_us;
        }
        if self.config.timing.pacing {
            let due = Duration::from_secs_f64(hardware_time_us * 1e-6);
            let elapsed = started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        let mut stats = RunStats::default();
        stats.samples = n_samples;
        stats.spikes = spikes.as_slice().iter().filter(|t| t.is_finite()).count() as u64;
        stats.hardware_time_us = Some(hardware_time_us);
        stats.lost_events = per_sample.iter().map(|s| s.lost_events).sum();
        stats.later_spikes = per_sample.iter().map(|s| s.later_spikes).sum();
        stats.wall_time = started.elapsed();
        Ok(RunOutput { spikes, stats })
    }

    /// Records one neuron like the chip's membrane ADC: 30 MSample/s from the start of the
    /// sample, 10-bit codes over 0 to 1.2 V (see [`madc_code_to_mv`]) with white noise of
    /// `noise.madc_noise_mv`. The values are ADC codes, not model units. The sample runs with
    /// the chip's full temporal noise and counts as one run.
    fn record_membrane(
        &mut self,
        request: &MembraneRequest,
    ) -> Result<MembraneTrace, BackendError> {
        let mut traces = self.record_membranes(std::slice::from_ref(request))?;
        traces.pop().ok_or(BackendError::Device {
            backend: "emulator".into(),
            message: "a recording returned no trace".into(),
        })
    }

    /// The recordings run side by side on the cores rayon offers; recording `i` is run
    /// `counter + i`, so the traces are those of one call per request.
    fn record_membranes(
        &mut self,
        requests: &[MembraneRequest],
    ) -> Result<Vec<MembraneTrace>, BackendError> {
        self.refresh()?;
        let engine = self.engine.as_ref().ok_or(BackendError::NotConfigured)?;
        let counts = requests
            .iter()
            .map(|r| self.check_membrane_request(engine, r))
            .collect::<Result<Vec<_>, _>>()?;
        let first = self.run_counter;
        self.run_counter += requests.len() as u64;
        requests
            .par_iter()
            .zip(counts)
            .enumerate()
            .map(|(i, (r, count))| self.trace(engine, r, count, first + i as u64))
            .collect()
    }

    /// The run counter: temporal noise of run `k` comes from streams addressed by
    /// `(run_seed, k, sample)`.
    fn noise_position(&self) -> Option<u64> {
        Some(self.run_counter)
    }

    fn set_noise_position(&mut self, position: u64) -> Result<(), BackendError> {
        self.run_counter = position;
        Ok(())
    }
}
