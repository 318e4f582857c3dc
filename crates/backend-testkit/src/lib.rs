//! The backend conformance suite. Every [`Backend`] answers the same questions the same way:
//! what it does before it is configured, how it names a bad network or input, that recording
//! only the output layer gives the last layer of a full recording, that a sample's result does
//! not depend on its batch or the thread count, that silence is `+inf` and never NaN, that its
//! `Unsupported` answers agree with its [`Features`](spikeloop_backend::Features), that membrane
//! recordings asked for together are those asked for one by one, that a saved
//! noise position replays exactly, that a weight update equals a configure, that it describes
//! itself, and, on a noise-free substrate, that it agrees with the
//! [`IdealBackend`] within its time resolution. A backend instantiates the whole suite with one
//! [`backend_conformance!`] invocation, so a new backend inherits the tests instead of writing
//! them again; the checks are plain functions of a [`Subject`] and panic with a message that
//! names the backend and what it did.
//!
//! The crate also holds the shared test fixtures: a small two-layer network whose weights are
//! on a 6-bit chip's grid, input batches drawn from [`TestRng`], the one seeded test RNG.

pub use spikeloop_backend::Backend;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use spikeloop_backend::analog::CODE_MAX;
use spikeloop_backend::ndarray::{Array2, s};
use spikeloop_backend::{
    BackendError, IdealBackend, InputBatch, Layer, MembraneRequest, Network, NeuronCodes,
    NeuronParams, Record, RunOutput, weight_matrix,
};

/// The seeded random number generator of tests and benchmarks (PCG-64 MCG, pinned so that
/// fixtures are the same on every machine).
pub struct TestRng(Pcg64Mcg);

impl TestRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Pcg64Mcg::seed_from_u64(seed))
    }

    /// A uniform value in `[low, high)`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.0.random::<f64>()
    }

    /// A normally distributed value (Box-Muller from two uniform draws).
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let u = 1.0 - self.0.random::<f64>(); // in (0, 1], so its logarithm is finite
        let v = self.0.random::<f64>();
        mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// A uniform index in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }
}

/// Inputs of the fixture network.
pub const N_INPUTS: usize = 3;

/// A weight on the grid of a chip with 6-bit weights and 30 steps per model unit, so that the
/// fixture runs unchanged on the emulated chip.
fn on_chip_grid(w: f64) -> f64 {
    (w * 30.0).round().clamp(-63.0, 63.0) / 30.0
}

/// Row-major `weights` as a matrix of `size` rows (the fixtures' shapes always divide).
pub fn matrix(size: usize, weights: Vec<f64>) -> Array2<f64> {
    weight_matrix(size, weights).unwrap_or_else(|e| panic!("fixture weights: {e}"))
}

/// The fixture network: 3 inputs, a hidden layer of 8 and an output layer of 2, each with a
/// bias spike at 0.9; reference neurons; weights drawn from [`TestRng`] and rounded to the
/// 6-bit grid. Its output neurons spike for the inputs of [`batch`] well away from threshold.
pub fn network() -> Network {
    let mut rng = TestRng::new(0x5eed);
    let mut layer = |size: usize, n_in: usize, mean: f64| Layer {
        size,
        neuron: NeuronParams::REFERENCE,
        bias_times: vec![0.9],
        weights: matrix(
            size,
            (0..size * (n_in + 1))
                .map(|_| on_chip_grid(mean + rng.uniform(-0.3, 0.3)))
                .collect(),
        ),
    };
    Network {
        n_inputs: N_INPUTS,
        layers: vec![layer(8, N_INPUTS, 1.4), layer(2, 8, 0.6)],
    }
}

/// The fixture network with output neuron 1 made silent (every incoming weight negative).
pub fn network_with_a_silent_neuron() -> Network {
    let mut n = network();
    n.layers[1].weights.row_mut(1).fill(-1.0);
    n
}

/// `n` samples of input times in `[0.15, 2.0]` (the Yin-Yang encoding's range), from `seed`.
pub fn batch_from(seed: u64, n: usize) -> InputBatch {
    let mut rng = TestRng::new(seed);
    let times = (0..n * N_INPUTS).map(|_| rng.uniform(0.15, 2.0)).collect();
    InputBatch::new(N_INPUTS, times).unwrap_or_else(|e| panic!("fixture batch: {e}"))
}

/// `n` samples of the fixture inputs.
pub fn batch(n: usize) -> InputBatch {
    batch_from(1, n)
}

/// A backend under test: how to make a fresh one and what kind of substrate it is.
pub struct Subject {
    name: &'static str,
    noise_free: bool,
    make: Box<dyn Fn() -> Box<dyn Backend>>,
}

impl Subject {
    /// A subject named `name` (for messages); `noise_free` when runs are exactly repeatable
    /// and free of fixed-pattern deviations (then batching and agreement with the ideal backend
    /// are checked exactly); `make` builds a fresh, unconfigured backend.
    pub fn new(
        name: &'static str,
        noise_free: bool,
        make: impl Fn() -> Box<dyn Backend> + 'static,
    ) -> Self {
        Self {
            name,
            noise_free,
            make: Box::new(make),
        }
    }

    /// A fresh backend.
    pub fn backend(&self) -> Box<dyn Backend> {
        (self.make)()
    }

    /// A fresh backend configured with `network`.
    fn configured(&self, network: &Network) -> Box<dyn Backend> {
        let mut b = self.backend();
        if let Err(e) = b.configure(network) {
            panic!("{}: configuring the fixture network failed: {e}", self.name);
        }
        b
    }

    fn run(&self, b: &mut dyn Backend, inputs: &InputBatch, record: Record) -> RunOutput {
        b.run(inputs, record)
            .unwrap_or_else(|e| panic!("{}: a valid run failed: {e}", self.name))
    }

    /// Runs `inputs` starting at `position` of the trial noise, where the backend has one.
    fn run_at(
        &self,
        b: &mut dyn Backend,
        position: Option<u64>,
        inputs: &InputBatch,
        record: Record,
    ) -> RunOutput {
        if let Some(p) = position {
            b.set_noise_position(p).unwrap_or_else(|e| {
                panic!("{}: setting the noise position failed: {e}", self.name)
            });
        }
        self.run(b, inputs, record)
    }
}

/// The checks, one function each; [`backend_conformance!`] makes a test of every one.
pub mod check {
    use super::*;

    /// A run before any configuration is refused with [`BackendError::NotConfigured`].
    pub fn not_configured(s: &Subject) {
        match s.backend().run(&batch(1), Record::AllLayers) {
            Err(BackendError::NotConfigured) => {}
            other => panic!("{}: a run before configure gave {other:?}", s.name),
        }
    }

    /// Inconsistent networks are refused with [`BackendError::InvalidNetwork`] naming the layer,
    /// neuron and input, or the parameter.
    pub fn invalid_networks_name_the_problem(s: &Subject) {
        let mut b = s.backend();
        let mut refused = |n: Network, needles: &[&str]| match b.configure(&n) {
            Err(e @ BackendError::InvalidNetwork(_)) => {
                let text = e.to_string();
                for needle in needles {
                    assert!(
                        text.contains(needle),
                        "{}: {text:?} lacks {needle:?}",
                        s.name
                    );
                }
            }
            other => panic!(
                "{}: {needles:?}: expected InvalidNetwork, got {other:?}",
                s.name
            ),
        };
        let mut n = network();
        n.layers[1].weights = n.layers[1].weights.slice(s![.., ..8]).to_owned();
        refused(n, &["layer 1", "expected 18"]);
        let mut n = network();
        n.layers[0].weights[[1, 1]] = f64::NAN;
        refused(n, &["layer 0, neuron 1, input 1", "finite"]);
        let mut n = network();
        n.layers[0].neuron.tau_m = -1.0;
        refused(n, &["tau_m"]);
        refused(
            Network {
                n_inputs: N_INPUTS,
                layers: vec![],
            },
            &["no layers"],
        );
    }

    /// A batch of the wrong width is refused with [`BackendError::InvalidInput`] naming both
    /// widths.
    pub fn invalid_inputs_name_the_problem(s: &Subject) {
        let mut b = s.configured(&network());
        let narrow = InputBatch::new(2, vec![0.1, 0.2]).unwrap_or_else(|e| panic!("{e}"));
        match b.run(&narrow, Record::AllLayers) {
            Err(e @ BackendError::InvalidInput(_)) => {
                assert!(e.to_string().contains("expects 3"), "{}: {e}", s.name);
            }
            other => panic!("{}: a batch of width 2 gave {other:?}", s.name),
        }
    }

    /// Recording the output layer only gives exactly the last layer of a full recording of the
    /// same run (same noise position).
    pub fn output_only_is_the_last_layer_of_all_layers(s: &Subject) {
        let mut b = s.configured(&network());
        let start = b.noise_position();
        if start.is_none() && !s.noise_free {
            return; // two runs of a noisy substrate differ; nothing to compare exactly
        }
        let inputs = batch(37);
        let all = s.run_at(b.as_mut(), start, &inputs, Record::AllLayers);
        let out = s.run_at(b.as_mut(), start, &inputs, Record::OutputOnly);
        assert_eq!(out.spikes.recorded_layers(), &[1], "{}", s.name);
        for k in 0..37 {
            assert_eq!(
                all.spikes.output(k),
                out.spikes.output(k),
                "{}: sample {k}",
                s.name
            );
            assert!(out.spikes.layer(k, 0).is_none(), "{}", s.name);
        }
        assert_eq!(all.stats.samples, 37, "{}", s.name);
        assert!(all.stats.spikes > 0, "{}: no spikes at all", s.name);
    }

    /// A sample's result depends neither on the batch it is in (noise-free substrates) nor on
    /// the number of threads (every substrate, from the same noise position).
    pub fn results_are_independent_of_batching_and_threads(s: &Subject) {
        let mut b = s.configured(&network());
        let start = b.noise_position();
        let inputs = batch(40);
        let whole = s.run_at(b.as_mut(), start, &inputs, Record::AllLayers);
        if s.noise_free {
            for k in [0, 17, 39] {
                let single = InputBatch::new(N_INPUTS, inputs.sample(k).to_vec())
                    .unwrap_or_else(|e| panic!("{e}"));
                let alone = s.run(b.as_mut(), &single, Record::AllLayers);
                assert_eq!(
                    alone.spikes.sample(0),
                    whole.spikes.sample(k),
                    "{}: sample {k}",
                    s.name
                );
            }
        }
        if start.is_none() && !s.noise_free {
            return;
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap_or_else(|e| panic!("thread pool: {e}"));
        let backend = b.as_mut();
        let serial = pool
            .install(|| {
                if let Some(p) = start {
                    backend.set_noise_position(p)?;
                }
                backend.run(&inputs, Record::AllLayers)
            })
            .unwrap_or_else(|e| panic!("{}: a run on one thread failed: {e}", s.name));
        assert_eq!(
            serial.spikes, whole.spikes,
            "{}: one thread differs",
            s.name
        );
    }

    /// A neuron that never reaches threshold is recorded as `+inf`; no recorded time is NaN.
    pub fn silence_is_infinite_never_nan(s: &Subject) {
        let mut b = s.configured(&network_with_a_silent_neuron());
        let out = s.run(b.as_mut(), &batch(20), Record::AllLayers);
        for k in 0..20 {
            let t = out.spikes.output(k);
            assert!(
                t[1] == f64::INFINITY,
                "{}: sample {k}: the silent neuron was recorded at {}",
                s.name,
                t[1]
            );
        }
        let nan = out.spikes.as_slice().iter().filter(|t| t.is_nan()).count();
        assert_eq!(nan, 0, "{}: {nan} recorded times are NaN", s.name);
    }

    /// Optional abilities answer as the backend's features say: membrane recording works when
    /// offered and is `Unsupported` otherwise; a backend with the noise-position feature reports
    /// its position, one without it reports none and refuses to set one with `Unsupported`.
    pub fn unsupported_answers_agree_with_features(s: &Subject) {
        let mut b = s.configured(&network());
        let offered = b.capabilities().features.membrane_recording;
        let request = MembraneRequest {
            inputs: vec![0.2; N_INPUTS],
            layer: 0,
            neuron: 0,
            duration: 5.0,
        };
        match (offered, b.record_membrane(&request)) {
            (true, Ok(trace)) => assert!(!trace.values.is_empty(), "{}: empty trace", s.name),
            (false, Err(BackendError::Unsupported { .. })) => {}
            (offered, other) => panic!(
                "{}: membrane recording offered: {offered}, but recording gave {other:?}",
                s.name
            ),
        }
        let position = b.capabilities().features.noise_position;
        match (position, b.noise_position()) {
            (true, Some(_)) => {}
            (false, None) => match b.set_noise_position(7) {
                Err(BackendError::Unsupported { .. }) => {}
                other => panic!(
                    "{}: no noise position, but setting one gave {other:?}",
                    s.name
                ),
            },
            (offered, now) => panic!(
                "{}: noise position offered: {offered}, but the backend reports {now:?}",
                s.name
            ),
        }
        let codes = b.capabilities().features.parameter_codes;
        match (codes, b.circuits(), b.parameter_codes(0)) {
            (true, Ok(circuits), Ok(_)) => {
                let sizes: Vec<usize> = circuits.iter().map(Vec::len).collect();
                assert_eq!(
                    sizes,
                    network().layer_sizes(),
                    "{}: circuits per layer",
                    s.name
                );
            }
            (
                false,
                Err(BackendError::Unsupported { .. }),
                Err(BackendError::Unsupported { .. }),
            ) => {
                assert!(
                    matches!(
                        b.set_parameter_codes(&[(0, None)]),
                        Err(BackendError::Unsupported { .. })
                    ),
                    "{}: no parameter codes, but writing them did not say so",
                    s.name
                );
            }
            (offered, circuits, read) => panic!(
                "{}: parameter codes offered: {offered}, but circuits gave {circuits:?} and reading {read:?}",
                s.name
            ),
        }
    }

    /// Parameter codes, where a backend has them: written codes are read back and change what
    /// a neuron does, clearing them restores the runs exactly (from the same noise position),
    /// and a bad write (an unknown circuit, a code out of range) changes nothing.
    pub fn parameter_codes_take_effect_and_clear_exactly(s: &Subject) {
        let mut b = s.configured(&network());
        if !b.capabilities().features.parameter_codes {
            return;
        }
        let circuits = b
            .circuits()
            .unwrap_or_else(|e| panic!("{}: circuits: {e}", s.name));
        let inputs = batch(20);
        let position = b.noise_position();
        let before = s.run_at(b.as_mut(), position, &inputs, Record::AllLayers);
        // Every hidden neuron's threshold far up: the hidden layer falls silent.
        let high = NeuronCodes {
            threshold: CODE_MAX,
            leak: 0,
            reset: 0,
            tau_m: 170,
            tau_s: 170,
            synaptic_gain: 500,
        };
        let writes: Vec<_> = circuits[0].iter().map(|&c| (c, Some(high))).collect();
        if let Err(e) = b.set_parameter_codes(&writes) {
            panic!("{}: writing codes failed: {e}", s.name);
        }
        match b.parameter_codes(circuits[0][0]) {
            Ok(Some(read)) => assert_eq!(read, high, "{}: codes read back differ", s.name),
            other => panic!("{}: reading written codes gave {other:?}", s.name),
        }
        let changed = s.run_at(b.as_mut(), position, &inputs, Record::AllLayers);
        assert_ne!(
            changed.spikes, before.spikes,
            "{}: written codes changed nothing",
            s.name
        );
        let bad = [(circuits[0][0], None), (usize::MAX, None)];
        assert!(
            matches!(
                b.set_parameter_codes(&bad),
                Err(BackendError::InvalidInput(_))
            ),
            "{}: a write to circuit usize::MAX was not refused",
            s.name
        );
        let mut too_high = high;
        too_high.leak = CODE_MAX + 1;
        assert!(
            matches!(
                b.set_parameter_codes(&[(circuits[0][0], Some(too_high))]),
                Err(BackendError::InvalidInput(_))
            ),
            "{}: a code above CODE_MAX was not refused",
            s.name
        );
        assert_eq!(
            b.parameter_codes(circuits[0][0]).ok().flatten(),
            Some(high),
            "{}: a refused write changed the codes",
            s.name
        );
        let clear: Vec<_> = circuits[0].iter().map(|&c| (c, None)).collect();
        if let Err(e) = b.set_parameter_codes(&clear) {
            panic!("{}: clearing codes failed: {e}", s.name);
        }
        let after = s.run_at(b.as_mut(), position, &inputs, Record::AllLayers);
        assert_eq!(
            after.spikes, before.spikes,
            "{}: cleared codes do not restore the runs",
            s.name
        );
    }

    /// Membrane recordings asked for in one request are the traces of one request each, in
    /// order (from the same noise position), and a bad request among them is refused whole.
    pub fn recordings_in_one_request_equal_one_request_each(s: &Subject) {
        let mut b = s.configured(&network());
        if !b.capabilities().features.membrane_recording {
            return;
        }
        let requests: Vec<MembraneRequest> = (0..6)
            .map(|k| MembraneRequest {
                inputs: vec![0.1 + 0.05 * k as f64; N_INPUTS],
                layer: k % 2,
                neuron: k % 2,
                duration: 2.0 + 0.5 * k as f64,
            })
            .collect();
        let position = b.noise_position();
        let together = b
            .record_membranes(&requests)
            .unwrap_or_else(|e| panic!("{}: recording in one request: {e}", s.name));
        if let Some(p) = position {
            b.set_noise_position(p)
                .unwrap_or_else(|e| panic!("{}: setting the noise position: {e}", s.name));
        }
        let one_by_one: Vec<_> = requests
            .iter()
            .map(|r| {
                b.record_membrane(r)
                    .unwrap_or_else(|e| panic!("{}: recording: {e}", s.name))
            })
            .collect();
        assert_eq!(
            together, one_by_one,
            "{}: recordings in one request differ from one request each",
            s.name
        );
        let mut bad = requests.clone();
        bad[3].neuron = 99;
        match b.record_membranes(&bad) {
            Err(BackendError::InvalidInput(m)) => assert!(
                m.contains("99"),
                "{}: the refusal does not name the neuron: {m}",
                s.name
            ),
            other => panic!(
                "{}: a request for neuron 99 among others gave {other:?}",
                s.name
            ),
        }
    }

    /// Saving the noise position and restoring it replays the same runs exactly; a run moves
    /// the position on.
    pub fn a_restored_noise_position_replays_exactly(s: &Subject) {
        let mut b = s.configured(&network());
        let Some(start) = b.noise_position() else {
            return;
        };
        let inputs = batch(25);
        let first = s.run(b.as_mut(), &inputs, Record::AllLayers);
        let second = s.run(b.as_mut(), &inputs, Record::AllLayers);
        let after = b.noise_position();
        assert_ne!(
            after,
            Some(start),
            "{}: a run left the noise position at {start}",
            s.name
        );
        let replayed = s.run_at(b.as_mut(), Some(start), &inputs, Record::AllLayers);
        assert_eq!(replayed.spikes, first.spikes, "{}: replay differs", s.name);
        let again = s.run(b.as_mut(), &inputs, Record::AllLayers);
        assert_eq!(
            again.spikes, second.spikes,
            "{}: second replay differs",
            s.name
        );
        assert_eq!(b.noise_position(), after, "{}", s.name);
    }

    /// A backend describes itself: a name, a substrate of some kind whose settings include its
    /// capabilities' limits where it has them, a file tag safe in a file name, and timing that
    /// comes together (a substrate with physical time states `tau_s_us`).
    pub fn describes_itself(s: &Subject) {
        let b = s.backend();
        let caps = b.capabilities();
        assert!(!caps.name.is_empty(), "{}: no capabilities name", s.name);
        let substrate = b.substrate();
        assert!(!substrate.kind.is_empty(), "{}: no substrate kind", s.name);
        assert!(
            !substrate.summary.is_empty(),
            "{}: no substrate summary",
            s.name
        );
        assert_eq!(
            substrate.mismatch(&b.substrate()),
            None,
            "{}: the substrate description changes between calls",
            s.name
        );
        let tag = b.file_tag();
        assert!(
            !tag.is_empty()
                && tag.len() <= 64
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{}: file tag {tag:?} is not safe in a file name",
            s.name
        );
        if caps.acceleration.is_some() || caps.batch_overhead_us.is_some() {
            assert!(
                caps.tau_s_us.is_some(),
                "{}: physical timing without tau_s_us",
                s.name
            );
        }
        if let Some(scale) = caps.weight_scale {
            assert!(
                scale.is_finite() && scale > 0.0 && caps.weight_bits.is_some(),
                "{}: weight_scale {scale} needs weight_bits and must be positive",
                s.name
            );
        }
    }

    /// A weight update gives what configuring the updated network on a fresh backend gives
    /// (at the same noise position, where the backend has one), and an "update" that changes
    /// more than the weights (here the bias times and a layer's size) is a configure.
    pub fn a_weight_update_equals_a_configure(s: &Subject) {
        let updated = network_with_a_silent_neuron();
        let mut reshaped = network();
        reshaped.layers[0].bias_times = vec![0.7];
        let inputs = batch(20);
        for target in [updated, reshaped] {
            let mut b = s.configured(&network());
            let position = b.noise_position();
            s.run(b.as_mut(), &inputs, Record::AllLayers);
            if let Err(e) = b.update_weights(&target) {
                panic!("{}: a weight update failed: {e}", s.name);
            }
            let got = s.run_at(b.as_mut(), position, &inputs, Record::AllLayers);
            if position.is_none() && !s.noise_free {
                continue; // runs differ from trial to trial without a way to replay them
            }
            let mut fresh = s.configured(&target);
            let want = s.run_at(fresh.as_mut(), position, &inputs, Record::AllLayers);
            assert_eq!(
                got.spikes, want.spikes,
                "{}: a weight update ran differently from a configure",
                s.name
            );
        }
        let mut b = s.configured(&network());
        let mut grown = network();
        grown.layers[1].size = 3;
        grown.layers[1]
            .weights
            .push_row(network().layers[1].weights.row(0))
            .unwrap_or_else(|e| panic!("a row of the fixture's width: {e}"));
        if let Err(e) = b.update_weights(&grown) {
            panic!("{}: an update to another shape failed: {e}", s.name);
        }
        let out = s.run(b.as_mut(), &inputs, Record::OutputOnly);
        assert_eq!(
            out.spikes.output(0).len(),
            3,
            "{}: an update to another shape kept the old one",
            s.name
        );
    }

    /// On a noise-free substrate every spike agrees with the ideal backend's within the
    /// substrate's time resolution: one tick for the inputs, one for every layer's spikes.
    pub fn a_noise_free_substrate_agrees_with_the_ideal_backend(s: &Subject) {
        if !s.noise_free {
            return;
        }
        let network = network();
        let mut b = s.configured(&network);
        let tick = match (
            b.capabilities().time_resolution_ns,
            b.capabilities().tau_s_us,
        ) {
            (Some(ns), Some(us)) => ns / (us * 1000.0),
            _ => 0.0,
        };
        let tolerance = tick * (network.layers.len() + 1) as f64 + 1e-9;
        let inputs = batch(30);
        let got = s.run(b.as_mut(), &inputs, Record::AllLayers);
        let mut ideal = IdealBackend::new();
        ideal
            .configure(&network)
            .unwrap_or_else(|e| panic!("ideal: {e}"));
        let want = ideal
            .run(&inputs, Record::AllLayers)
            .unwrap_or_else(|e| panic!("ideal: {e}"));
        for (i, (g, w)) in got
            .spikes
            .as_slice()
            .iter()
            .zip(want.spikes.as_slice())
            .enumerate()
        {
            let agree = if w.is_finite() {
                (g - w).abs() <= tolerance
            } else {
                g == w
            };
            assert!(
                agree,
                "{}: time {i}: {g} where the ideal backend has {w} (tolerance {tolerance})",
                s.name
            );
        }
    }
}

/// Instantiates the conformance suite for a backend: a module `$name` with one test per check.
///
/// ```ignore
/// spikeloop_backend_testkit::backend_conformance!(ideal, noise_free: true, IdealBackend::new());
/// ```
///
/// `$make` is an expression that builds a fresh, unconfigured backend; it is evaluated for
/// every backend a check needs.
#[macro_export]
macro_rules! backend_conformance {
    ($name:ident, noise_free: $noise_free:expr, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn subject() -> $crate::Subject {
                $crate::Subject::new(
                    stringify!($name),
                    $noise_free,
                    || -> ::std::boxed::Box<dyn $crate::Backend> { ::std::boxed::Box::new($make) },
                )
            }

            $crate::backend_conformance!(@tests
                describes_itself,
                not_configured,
                invalid_networks_name_the_problem,
                invalid_inputs_name_the_problem,
                output_only_is_the_last_layer_of_all_layers,
                results_are_independent_of_batching_and_threads,
                silence_is_infinite_never_nan,
                unsupported_answers_agree_with_features,
                recordings_in_one_request_equal_one_request_each,
                a_restored_noise_position_replays_exactly,
                a_weight_update_equals_a_configure,
                parameter_codes_take_effect_and_clear_exactly,
                a_noise_free_substrate_agrees_with_the_ideal_backend
            );
        }
    };
    (@tests $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                $crate::check::$check(&subject());
            }
        )*
    };
}
