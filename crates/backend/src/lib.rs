//! The one interface between spikeloop's host software and a spiking substrate.
//!
//! A *backend* is anything that can take a layered spiking network, feed it input spikes and
//! report when its neurons fired: the exact model ([`IdealBackend`]), the emulated analog chip,
//! or a real device behind a serial line. The trainer, the calibration routines and the analyses
//! see only this trait, so that what they do against an emulator is exactly what they do against
//! hardware. That is the design decision everything else follows from: **a backend reports
//! measurements, not internals.** It tells what it can do ([`Capabilities`]), accepts a network
//! ([`Backend::configure`]) and returns measured first-spike times ([`Backend::run`]); a host
//! that wants gradients computes them itself from those measured times.
//!
//! A network larger than one chip runs on any backend with a chip geometry through
//! [`PartitionedBackend`], which splits it into parts that fit ([`partition`]) and runs them one
//! after another; users see it as one backend.
//!
//! ## Units
//!
//! All times crossing this interface are in *model time units*: multiples of the synaptic time
//! constant `tau_s` of the network's neuron model (a chip running with `tau_s = 6 us` reports a
//! spike 12 us after the start of a sample as `2.0`). A neuron that did not fire is reported as
//! `f64::INFINITY`, never NaN. An input channel that should stay silent is given as
//! `f64::INFINITY` too. Weights are the model's float weights in units of the threshold distance
//! (the reference model has `threshold - e_leak = 1`); a substrate with discrete weights maps
//! them itself and documents how. Hardware time, where a backend has it, is reported separately
//! in microseconds in [`RunStats`].
//!
//! ## What a batch means
//!
//! A batch is a list of independent samples. Each sample is one trial: every input channel
//! spikes at most once, the network starts at rest, and the recorded result is the first spike
//! of every neuron of every layer (time-to-first-spike coding). Samples do not influence each
//! other; a backend may run them in any order or in parallel, but must return them in input
//! order. A physical chip runs them one after another with a pause long enough for the membranes
//! to settle.
//!
//! ## What is synchronous
//!
//! Every call blocks until it is complete: `configure` returns once the substrate holds the new
//! network (on a chip, once weights are written), `run` returns once all samples have run and
//! their spikes have been read back. There is no hidden queue; a backend that pipelines
//! internally must still present these semantics.
//!
//! ## Optional abilities
//!
//! Abilities that not every substrate has (membrane recording, say) are default methods that
//! answer [`BackendError::Unsupported`]. [`Capabilities::features`] tells in advance which ones
//! a backend offers.

pub mod analog;
mod error;
pub mod geometry;
pub mod ideal;
mod network;
pub mod partition;
pub mod partitioned;
pub mod rows;
mod spikes;
pub mod substrate;

pub use analog::{AnalogParameter, NeuronCodes};
pub use error::BackendError;
pub use geometry::{ChipGeometry, FitError};
pub use partition::{PartitionError, PartitionRules, Plan};
pub use partitioned::PartitionedBackend;

pub use ideal::IdealBackend;
pub use ndarray;
pub use network::{Layer, Network, weight_matrix};
pub use spikeloop_lif::NeuronParams;
pub use spikes::{InputBatch, Record, RunOutput, RunStats, SpikeTimes};
pub use substrate::{Difference, Substrate};

/// Optional abilities a backend may offer on top of configuring and running networks.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Features {
    /// Can record a neuron's membrane potential during a run ([`Backend::record_membrane`]).
    pub membrane_recording: bool,
    /// Its trial-to-trial noise is pseudo-random with a position that can be read and set
    /// ([`Backend::noise_position`], [`Backend::set_noise_position`]), so that runs replay
    /// exactly.
    // Left out of a substrate description while off, as before the feature existed, so that
    // earlier records still compare equal (and so for every later addition below).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub noise_position: bool,
    /// [`Backend::update_weights`] does less than [`Backend::configure`]: it sends or maps only
    /// the weights (a device with 6-bit weights receives one byte per weight instead of the
    /// whole network: for the Yin-Yang network 3.5 kB instead of 27 kB). Without it an update
    /// is a configure, which is always correct.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub weight_update: bool,
    /// Each neuron circuit's analog parameter codes can be written and read
    /// ([`Backend::set_parameter_codes`], [`Backend::parameter_codes`]) and the circuits of the
    /// configured network's neurons are known ([`Backend::circuits`]): what a calibration needs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parameter_codes: bool,
}

/// What a substrate is and what it can hold; constant for the lifetime of a backend.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Short name of the substrate, e.g. `ideal`, `emulator`, or a device's identifier.
    pub name: String,
    /// Largest number of neurons a network may have across all its layers; `None` for no limit.
    pub max_neurons: Option<usize>,
    /// Bits of weight magnitude per synapse; `None` for float weights.
    pub weight_bits: Option<u32>,
    /// Largest weight magnitude (in model units) the substrate can realise; larger weights are
    /// clipped by it, so a trainer keeps its float weights within this range. `None` for no
    /// limit.
    pub max_weight: Option<f64>,
    /// Weight codes per model unit, for a substrate whose weights are integer codes: a weight
    /// `w` is realised as `round(w * weight_scale)` clipped to `+-(2^weight_bits - 1)`, so that a
    /// weight update can send codes instead of floats with the same result. `None` for float
    /// weights or an unstated rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_scale: Option<f64>,
    /// Timestamp resolution of recorded spikes, in nanoseconds of hardware time; `None` when
    /// spike times are exact.
    pub time_resolution_ns: Option<f64>,
    /// How much faster than biology the substrate runs (1000 for BrainScaleS-2); `None` for a
    /// substrate without physical time.
    pub acceleration: Option<f64>,
    /// Duration of one model time unit (`tau_s`) in microseconds of hardware time; `None` for a
    /// substrate without physical time.
    pub tau_s_us: Option<f64>,
    /// Optional abilities.
    pub features: Features,
    /// The sample window in model time units, for a substrate that has one: input and bias
    /// times must lie in `[0, window)`, membrane recordings last at most `window`, and spikes
    /// later than `window` are not recorded. `None`: no window (any finite time is accepted).
    #[serde(default)]
    pub sample_window: Option<f64>,
    /// The fit rules of a chip made of halves; `None` for a substrate without them.
    #[serde(default)]
    pub geometry: Option<ChipGeometry>,
    /// Hardware time of a run on top of its samples' windows (loading inputs, starting and
    /// reading out), microseconds; `None` for a substrate without physical time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_overhead_us: Option<f64>,
    /// Hardware time the parameter memory takes to settle after written parameter codes
    /// ([`Backend::set_parameter_codes`]), microseconds, counted in the next run's hardware
    /// time; `None` for a substrate without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_settle_us: Option<f64>,
    /// What the values of a recorded membrane trace are, for a substrate whose readout is not
    /// in model units; `None`: model units.
    #[serde(default)]
    pub membrane_readout: Option<MembraneReadout>,
}

/// The unit of a substrate's membrane readout: a recorded value `v` means `offset + scale * v`
/// in `unit`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MembraneReadout {
    /// The unit after scaling, for example `mV`.
    pub unit: String,
    /// Size of one recorded step in `unit`.
    pub scale: f64,
    /// The value of a recorded 0 in `unit`.
    pub offset: f64,
}

impl Capabilities {
    /// Capabilities of a substrate with no limits and exact, float-valued computation.
    pub fn unlimited(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            max_neurons: None,
            weight_bits: None,
            max_weight: None,
            weight_scale: None,
            time_resolution_ns: None,
            acceleration: None,
            tau_s_us: None,
            features: Features::default(),
            sample_window: None,
            geometry: None,
            batch_overhead_us: None,
            parameter_settle_us: None,
            membrane_readout: None,
        }
    }
}

/// A request to record one neuron's membrane potential while one sample runs.
#[derive(Clone, Debug, PartialEq)]
pub struct MembraneRequest {
    /// The input spike times of the sample (one per input channel, model time units).
    pub inputs: Vec<f64>,
    /// Layer of the neuron (0 = first layer after the inputs).
    pub layer: usize,
    /// Index of the neuron within its layer.
    pub neuron: usize,
    /// How long to record, in model time units from the start of the sample.
    pub duration: f64,
}

/// A recorded membrane trace: evenly spaced samples of the membrane potential.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MembraneTrace {
    /// Time of the first sample, model time units.
    pub t0: f64,
    /// Spacing of the samples, model time units.
    pub dt: f64,
    /// The membrane potential, in the units of the neuron model (threshold distance 1 in the
    /// reference model) for an ideal substrate, or in the substrate's own readout units where
    /// it documents them.
    pub values: Vec<f64>,
}

/// A spiking substrate that runs layered networks and reports measured first-spike times.
///
/// See the crate documentation for units and semantics.
pub trait Backend: Send {
    /// What this backend is and what it can hold.
    fn capabilities(&self) -> &Capabilities;

    /// Loads a network (topology, neuron parameters, weights), replacing any previous one.
    ///
    /// Fails with [`BackendError::InvalidNetwork`] for an inconsistent network and
    /// [`BackendError::DoesNotFit`] for one larger than the substrate.
    fn configure(&mut self, network: &Network) -> Result<(), BackendError>;

    /// Loads `network`, which differs from the configured network at most in its weights: what
    /// a trainer does after every batch. A backend may then send or map only the weights
    /// ([`Features::weight_update`]); the result is the same as [`Backend::configure`]'s, which
    /// the default calls (and which a backend calls itself for a network that differs in more).
    fn update_weights(&mut self, network: &Network) -> Result<(), BackendError> {
        self.configure(network)
    }

    /// Runs every sample of `inputs` through the configured network and returns the measured
    /// first-spike times of the layers asked for by `record`.
    fn run(&mut self, inputs: &InputBatch, record: Record) -> Result<RunOutput, BackendError>;

    /// Records one neuron's membrane potential while one sample runs.
    fn record_membrane(
        &mut self,
        request: &MembraneRequest,
    ) -> Result<MembraneTrace, BackendError> {
        let _ = request;
        Err(BackendError::Unsupported {
            backend: self.capabilities().name.clone(),
            feature: "membrane recording",
        })
    }

    /// Records the membranes `requests` name, one sample run each, in order: the same traces as
    /// one [`Backend::record_membrane`] call per request (the default makes those calls). A
    /// backend that can run recordings side by side (an emulator on several cores, a chip whose
    /// playback program holds many runs) does so.
    fn record_membranes(
        &mut self,
        requests: &[MembraneRequest],
    ) -> Result<Vec<MembraneTrace>, BackendError> {
        requests.iter().map(|r| self.record_membrane(r)).collect()
    }

    /// Position of the backend's pseudo-random trial-to-trial noise (an emulator's run counter),
    /// or `None` for a substrate whose noise is physical or absent. Saved with a checkpoint so
    /// that a resumed run continues with exactly the noise it would have seen.
    fn noise_position(&self) -> Option<u64> {
        None
    }

    /// A complete description of this substrate (kind, summary, every setting that can change
    /// a result), recorded in every artefact and compared when a run resumes. The default
    /// describes the backend by its capabilities.
    fn substrate(&self) -> Substrate {
        Substrate::from_capabilities(self.capabilities())
    }

    /// A short name of this substrate for default file and directory names (a run directory,
    /// a report): ASCII letters, digits, `-` and `_` only, e.g. `ideal`, `chip1-run2`, `device`.
    /// The default is the capabilities' name with every other character replaced by `_`.
    fn file_tag(&self) -> String {
        file_tag_of(&self.capabilities().name)
    }

    /// The identity of the physical chip behind this backend, where it has one: what a
    /// calibration file records, so that a calibration is never loaded onto another chip.
    /// `None` for a substrate without individual chips (the ideal backend).
    fn chip_id(&self) -> Option<String> {
        None
    }

    /// The neuron circuit that runs each neuron of the configured network, one list per layer
    /// (circuits are numbered `0..n` over the whole chip). Needs
    /// [`Features::parameter_codes`].
    fn circuits(&mut self) -> Result<Vec<Vec<usize>>, BackendError> {
        Err(BackendError::Unsupported {
            backend: self.capabilities().name.clone(),
            feature: "parameter codes",
        })
    }

    /// Writes parameter codes to neuron circuits (`Some`), or returns them to the codes the
    /// neuron parameters of the configured network imply (`None`). Written codes stay across
    /// [`Backend::configure`] calls until cleared, as a calibration loaded onto a chip does,
    /// and take effect from the next run. Every write is checked before any is made: an
    /// unknown circuit or a code above [`analog::CODE_MAX`] changes nothing. Needs
    /// [`Features::parameter_codes`].
    fn set_parameter_codes(
        &mut self,
        writes: &[(usize, Option<NeuronCodes>)],
    ) -> Result<(), BackendError> {
        let _ = writes;
        Err(BackendError::Unsupported {
            backend: self.capabilities().name.clone(),
            feature: "parameter codes",
        })
    }

    /// The codes written to `circuit`, or `None` where none are. Needs
    /// [`Features::parameter_codes`].
    fn parameter_codes(&mut self, circuit: usize) -> Result<Option<NeuronCodes>, BackendError> {
        let _ = circuit;
        Err(BackendError::Unsupported {
            backend: self.capabilities().name.clone(),
            feature: "parameter codes",
        })
    }

    /// The backend that holds the chip's circuits when this one runs networks on it in
    /// another form (a [`PartitionedBackend`]'s chip, which runs one part at a time): a
    /// calibration is made and applied there, circuit by circuit. `None`: this backend is the
    /// chip itself, or has none.
    fn chip_backend(&mut self) -> Option<&mut dyn Backend> {
        None
    }

    /// Moves the trial-to-trial noise to a position returned by [`Backend::noise_position`].
    fn set_noise_position(&mut self, position: u64) -> Result<(), BackendError> {
        let _ = position;
        Err(BackendError::Unsupported {
            backend: self.capabilities().name.clone(),
            feature: "restoring the noise position",
        })
    }
}

impl<B: Backend + ?Sized> Backend for Box<B> {
    fn capabilities(&self) -> &Capabilities {
        (**self).capabilities()
    }
    fn configure(&mut self, network: &Network) -> Result<(), BackendError> {
        (**self).configure(network)
    }
    fn update_weights(&mut self, network: &Network) -> Result<(), BackendError> {
        (**self).update_weights(network)
    }
    fn run(&mut self, inputs: &InputBatch, record: Record) -> Result<RunOutput, BackendError> {
        (**self).run(inputs, record)
    }
    fn record_membrane(
        &mut self,
        request: &MembraneRequest,
    ) -> Result<MembraneTrace, BackendError> {
        (**self).record_membrane(request)
    }
    fn record_membranes(
        &mut self,
        requests: &[MembraneRequest],
    ) -> Result<Vec<MembraneTrace>, BackendError> {
        (**self).record_membranes(requests)
    }
    fn noise_position(&self) -> Option<u64> {
        (**self).noise_position()
    }
    fn set_noise_position(&mut self, position: u64) -> Result<(), BackendError> {
        (**self).set_noise_position(position)
    }
    fn substrate(&self) -> Substrate {
        (**self).substrate()
    }
    fn file_tag(&self) -> String {
        (**self).file_tag()
    }
    fn chip_id(&self) -> Option<String> {
        (**self).chip_id()
    }
    fn circuits(&mut self) -> Result<Vec<Vec<usize>>, BackendError> {
        (**self).circuits()
    }
    fn set_parameter_codes(
        &mut self,
        writes: &[(usize, Option<NeuronCodes>)],
    ) -> Result<(), BackendError> {
        (**self).set_parameter_codes(writes)
    }
    fn parameter_codes(&mut self, circuit: usize) -> Result<Option<NeuronCodes>, BackendError> {
        (**self).parameter_codes(circuit)
    }
}

/// `name` as a file-name tag: ASCII letters, digits, `-` and `_` kept, everything else `_`,
/// at most 64 characters, `substrate` when nothing is left.
pub fn file_tag_of(name: &str) -> String {
    let tag: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if tag.is_empty() {
        "substrate".into()
    } else {
        tag
    }
}
