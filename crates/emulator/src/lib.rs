//! An emulated analog neuromorphic chip of the BrainScaleS-2 kind, behind spikeloop's `Backend`.
//!
//! [`EmulatorBackend`] behaves like a chip on a desk: it accepts a layered network, maps it onto
//! its circuits, runs batches of samples and reports *measurements*: first-spike times on the
//! FPGA's clock, run statistics (hardware time, lost events, spikes after the first), and
//! membrane recordings in ADC codes. What it hides is what a real chip hides: every neuron's
//! actual threshold, leak, time constants and gains, every synapse's deviation, the trial noise
//! of each run. The trainer, calibration and analyses see the chip only through the
//! [`spikeloop_backend::Backend`] trait and the chip's configuration interface (codes per neuron,
//! [`EmulatorBackend::set_neuron_codes`]), so what they do here is what they would do on
//! hardware.
//!
//! # What is emulated
//!
//! * **Geometry** ([`mapping`]). 512 neuron circuits in two halves of 256; per half a synapse
//!   array of 256 rows by 256 columns; each synapse a 6-bit weight and a 6-bit source address;
//!   each row excitatory or inhibitory by its synapse driver (two rows per driver). A network is
//!   placed layer by layer; every source of a layer takes one excitatory and one inhibitory row
//!   in each half holding that layer's neurons; hidden layers are routed back on chip. Float
//!   weights become `round(weight_scale * w)`, clipped to `[-63, 63]`, the sign choosing the row.
//!   Networks that do not fit fail with `BackendError::DoesNotFit` naming the resource.
//! * **Analog neurons** ([`analog`], `neuron`). Each circuit's threshold, leak, reset, `tau_m`,
//!   `tau_s` and synaptic gain come from 10-bit codes through transfer curves with the circuit's
//!   own gain and offset errors; each synapse has its own gain error. Without written codes every
//!   neuron gets its layer's nominal codes, so an uncalibrated chip is visibly imperfect. Each
//!   neuron is integrated exactly with *its own* `tau_m` and `tau_s` (the general kernel of
//!   `spikeloop-lif`, never the `tau_m = tau_s` formula of the model).
//! * **Later spikes.** After a spike the membrane is reset and held at its reset potential for
//!   the refractory time (`analog.refractory_us`) while its synaptic current keeps flowing;
//!   then it integrates again and may fire again. By default the refractory time covers the
//!   whole sample window, so each neuron fires at most once (first-spike coding); with the
//!   reference calibration's 2 us, strongly driven neurons fire again. Every
//!   spike inside the sample window is simulated exactly: a hidden neuron's later spikes are
//!   routed to the next layer like its first (as on the chip, where a spike is a spike), and all
//!   of them are counted in `RunStats::later_spikes`. Only first spikes are reported. A
//!   refractory time as long as the window gives the model's one-spike-per-neuron behaviour.
//! * **Temporal effects** (each switchable on its own, see [`NoiseConfig`]): trial-to-trial
//!   threshold noise, spike-time jitter, 8 ns timestamps, a systematic readout offset, and events
//!   queued (from the FPGA) or lost (routed on chip) when two reach one event bus within its
//!   dead time.
//! * **Time.** Every sample occupies a window of `timing.sample_window_tau` on the chip; a batch
//!   adds a fixed overhead; `RunStats::hardware_time_us` reports the sum, and the optional pacing
//!   mode makes `run` take that long in wall-clock time.
//! * **Membrane recording** like the chip's MADC: 30 MSample/s, 10 bits over 0 to 1.2 V, noisy,
//!   returned in ADC codes ([`madc_code_to_mv`] converts them).
//!
//! # Units
//!
//! Times crossing the `Backend` interface are model time units of `tau_s` (the network's
//! synaptic time constant). The chip runs in *hardware time*: one model unit is
//! `timing.tau_s_us` microseconds (6 us by default, as in the reference work), so a spike
//! reported at `2.0` happened 12 us after the start of its sample; the 8 ns clock tick is
//! `1/750 tau_s`. At 6 us per unit the chip is 1000 times faster than a biological neuron with a
//! 6 ms synaptic time constant (its *acceleration*). Potentials are mapped so that a layer's
//! resting potential sits at `analog.leak_mv` and its threshold `analog.threshold_distance_mv`
//! above it; weights in model units of current become currents through the synaptic gain
//! target `threshold_distance_mv / D / (weight_scale * C * tau_s_us)` mV/us per weight step
//! (`D` the model's threshold distance, `C = g_leak tau_m` its membrane capacitance, which the
//! chip keeps fixed: a circuit whose `tau_m` deviates has a deviating leak conductance, not a
//! deviating capacitance).
//!
//! # Reproducibility
//!
//! `chip_seed` fixes every static deviation of the chip; `run_seed` and the backend's run
//! counter fix every temporal one (see [`EmulatorConfig`]). Each sample draws from its own
//! streams addressed by `(run_seed, run, sample)`, so results do not depend on the number of
//! threads, and all arithmetic on the simulation path is plain IEEE arithmetic (including the
//! crate's own `exp` and `ln`), so they do not depend on the machine either.
//!
//! # Performance
//!
//! Measured with `spikeloop bench` (release build, 2 cores, Yin-Yang 25-120-3 with the chip
//! preset, runs of 1000 samples): about 200,000 inference samples/s (196,000 on a freshly
//! initialised network, 201,000 on one trained in the loop), a 300-epoch in-the-loop training
//! in under 20 s; about 36,000 samples/s with the reference calibration's 2 us refractory
//! time, where strongly driven neurons fire about 170 later spikes per sample; about 8 % less
//! with exact (unquantised) times, which leave no clock grid for the tables below. The ideal
//! backend runs the same network at about 390,000 samples/s: every chip neuron has its own
//! time constants, so few decay factors can be shared across a layer. The hot path applies each
//! event-free interval to all of a layer's neurons in one vectorised loop (compiled for AVX-512
//! and AVX2 as well, chosen at run time); the first layer's intervals, which span whole FPGA
//! clock ticks, take their decay factors from per-neuron tables; the rises after the last event
//! and the first Halley steps of all crossing searches are vectorised too (see the `neuron`
//! module). `cargo bench -p spikeloop-emulator` measures the same paths with criterion, and
//! `spikeloop bench [--model model.json] [--noise ...] [--backend ideal]` prints throughput
//! (and, for a model, its test accuracy) on the Yin-Yang set for any backend and noise setting.
//!
//! # What is not modelled
//!
//! Separate excitatory and inhibitory synaptic inputs (the real circuit has two, each with its
//! own time constant and gain; here both rows feed one input), adaptation and the exponential
//! term of the AdEx circuit, short-term plasticity, the settling time of CapMem writes, the
//! buffering of colliding on-chip events (they are lost instead), routing delays, and compound neurons
//! (two circuits joined to double a neuron's rows). A spike after the end of its sample window is
//! neither recorded nor routed.

pub mod analog;
mod backend;
mod chip;
pub mod config;
mod engine;
mod fastmath;
pub mod mapping;
mod neuron;
mod seeds;

pub use analog::{AnalogParameter, NeuronCodes, NeuronTargets};
pub use backend::{
    ACCELERATION, EmulatorBackend, MADC_BITS, MADC_RANGE_MV, MADC_SAMPLE_RATE_MHZ, madc_code_to_mv,
};
pub use chip::ChipError;
pub use config::{
    AnalogConfig, ConfigError, DriftConfig, EmulatorConfig, Geometry, Mismatch, NoiseConfig,
    TimingConfig,
};
pub use mapping::{Placement, quantise_weight};
