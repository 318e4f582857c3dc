//! The emulated chip through its public interface: determinism, mapping, quantisation, each
//! imperfection on its own, event loss, later spikes, membrane recordings, time and the
//! configuration interface. Seeds are fixed and networks small, so the suite runs in seconds.

use spikeloop_backend::{
    Backend, BackendError, IdealBackend, InputBatch, Layer, MembraneRequest, Network, NeuronParams,
    Record, RunOutput,
};
use spikeloop_backend_testkit::TestRng;
use spikeloop_emulator::{
    AnalogParameter, ChipError, EmulatorBackend, EmulatorConfig, Mismatch, NeuronCodes,
    NoiseConfig, madc_code_to_mv,
};

const TICK: f64 = 1.0 / 750.0;

fn layer(size: usize, n_in: usize, bias_times: Vec<f64>, weights: Vec<f64>) -> Layer {
    assert_eq!(weights.len(), size * (n_in + bias_times.len()));
    Layer {
        size,
        neuron: NeuronParams::REFERENCE,
        bias_times,
        weights: spikeloop_backend_testkit::matrix(size, weights),
    }
}

/// Yin-Yang 4 inputs + bias -> `hidden` + bias -> 3, reference initialisation.
fn yin_yang_network(hidden: usize, repeat: usize, rng: &mut TestRng) -> Network {
    let n_in = 4 * repeat;
    let biases = vec![0.9; repeat];
    Network {
        n_inputs: n_in,
        layers: vec![
            layer(
                hidden,
                n_in,
                biases.clone(),
                (0..hidden * (n_in + repeat))
                    .map(|_| rng.normal(1.5, 0.8) / repeat as f64)
                    .collect(),
            ),
            layer(
                3,
                hidden,
                vec![0.9],
                (0..3 * (hidden + 1))
                    .map(|_| rng.normal(0.5, 0.8))
                    .collect(),
            ),
        ],
    }
}

fn yin_yang_inputs(rng: &mut TestRng, n: usize, repeat: usize) -> InputBatch {
    let mut times = Vec::new();
    for _ in 0..n {
        let (x, y) = (rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0));
        for _ in 0..repeat {
            for v in [x, y, 1.0 - x, 1.0 - y] {
                times.push(0.15 + 1.85 * v);
            }
        }
    }
    InputBatch::new(4 * repeat, times).expect("valid inputs")
}

fn backend(config: EmulatorConfig) -> EmulatorBackend {
    EmulatorBackend::new(config).expect("valid configuration")
}

fn with_noise(noise: NoiseConfig) -> EmulatorConfig {
    EmulatorConfig {
        noise,
        ..EmulatorConfig::default()
    }
}

fn run(b: &mut dyn Backend, network: &Network, inputs: &InputBatch) -> RunOutput {
    b.configure(network).expect("fits");
    b.run(inputs, Record::AllLayers).expect("runs")
}

fn bits(out: &RunOutput) -> Vec<u64> {
    out.spikes.as_slice().iter().map(|t| t.to_bits()).collect()
}

/// Mean and largest absolute difference over entries finite in both; and how many are finite in
/// exactly one.
fn compare(a: &[f64], b: &[f64]) -> (f64, f64, usize) {
    let (mut sum, mut max, mut n, mut mismatched) = (0.0, 0.0f64, 0, 0);
    for (&x, &y) in a.iter().zip(b) {
        match (x.is_finite(), y.is_finite()) {
            (true, true) => {
                sum += (x - y).abs();
                max = max.max((x - y).abs());
                n += 1;
            }
            (false, false) => {}
            _ => mismatched += 1,
        }
    }
    (sum / n.max(1) as f64, max, mismatched)
}

// ---- Determinism ----

#[test]
fn same_seeds_give_bit_identical_runs_and_chip_seeds_differ() {
    let mut rng = TestRng::new(1);
    let network = yin_yang_network(40, 1, &mut rng);
    let inputs = yin_yang_inputs(&mut rng, 30, 1);
    let mut a = backend(EmulatorConfig::default());
    let mut b = backend(EmulatorConfig::default());
    let first_a = run(&mut a, &network, &inputs);
    let first_b = run(&mut b, &network, &inputs);
    assert_eq!(bits(&first_a), bits(&first_b));
    assert_eq!(first_a.stats.lost_events, first_b.stats.lost_events);
    assert_eq!(first_a.stats.later_spikes, first_b.stats.later_spikes);
    // Run 1 differs from run 0 (temporal noise), and is reproduced by rewinding the counter.
    let second_a = a.run(&inputs, Record::AllLayers).expect("runs");
    assert_ne!(bits(&first_a), bits(&second_a));
    b.set_run_counter(1);
    assert_eq!(
        bits(&second_a),
        bits(&b.run(&inputs, Record::AllLayers).expect("runs"))
    );
    // Another chip seed is another chip, even with temporal noise off.
    let static_only = |seed| EmulatorConfig {
        chip_seed: seed,
        noise: NoiseConfig {
            threshold_trial_sd: 0.0,
            spike_jitter_sd: 0.0,
            ..NoiseConfig::default()
        },
        ..EmulatorConfig::default()
    };
    let c1 = run(&mut backend(static_only(1)), &network, &inputs);
    let c1_again = run(&mut backend(static_only(1)), &network, &inputs);
    let c2 = run(&mut backend(static_only(2)), &network, &inputs);
    assert_eq!(bits(&c1), bits(&c1_again));
    let (mean, _, _) = compare(c1.spikes.as_slice(), c2.spikes.as_slice());
    assert!(
        mean > 0.01,
        "two chips differ by only {mean} tau_s on average"
    );
}

#[test]
fn thread_count_does_not_change_results() {
    let mut rng = TestRng::new(2);
    let network = yin_yang_network(30, 1, &mut rng);
    let inputs = yin_yang_inputs(&mut rng, 24, 1);
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        pool.install(|| run(&mut backend(EmulatorConfig::default()), &network, &inputs))
    };
    let one = on(1);
    let two = on(2);
    let three = on(3);
    assert_eq!(bits(&one), bits(&two));
    assert_eq!(bits(&one), bits(&three));
    assert_eq!(one.stats.lost_events, two.stats.lost_events);
    assert_eq!(one.stats.later_spikes, three.stats.later_spikes);
}

// ---- Mapping and quantisation ----

#[test]
fn yin_yang_fits_with_and_without_fivefold_repetition() {
    let mut rng = TestRng::new(3);
    let mut b = backend(EmulatorConfig::default());
    b.configure(&yin_yang_network(120, 1, &mut rng))
        .expect("5-120-3 fits");
    let p = b.placement().expect("placed");
    // 5 sources for layer 0, 121 for layer 1: two rows each.
    assert_eq!(p.rows_used[0] + p.rows_used[1], 2 * (5 + 121));
    assert_eq!(p.neurons_used[0] + p.neurons_used[1], 123);
    assert_eq!(p.layers[0].chip_neurons.len(), 120);

    b.configure(&yin_yang_network(120, 5, &mut rng))
        .expect("25-120-3 fits");
    let p = b.placement().expect("placed");
    assert_eq!(p.rows_used[0] + p.rows_used[1], 2 * (25 + 121));
    assert!(p.rows_used.iter().all(|&r| r <= 256), "{:?}", p.rows_used);
    // The two layers cannot share a half (50 + 242 rows > 256).
    assert_ne!(p.layers[0].blocks[0].half, p.layers[1].blocks[0].half);
}

#[test]
fn too_large_networks_do_not_fit_and_say_why() {
    let mut rng = TestRng::new(4);
    let mut b = backend(EmulatorConfig::default());
    // 300 hidden neurons, split over both halves (10 rows each): the output layer has 301
    // sources, so its neurons are merged circuits that need all 256 rows of a half.
    let err = b
        .configure(&yin_yang_network(300, 1, &mut rng))
        .expect_err("does not fit");
    match &err {
        BackendError::DoesNotFit {
            resource,
            needed,
            available,
            ..
        } => {
            assert!(resource.contains("synapse rows"), "{resource}");
            assert_eq!((*needed, *available), (256, 246));
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("246"), "{err}");
    // 600 hidden neurons: more neurons than the chip has.
    let network = Network {
        n_inputs: 4,
        layers: vec![
            layer(600, 4, vec![], vec![1.0; 2400]),
            layer(3, 600, vec![], vec![0.1; 1800]),
        ],
    };
    match b.configure(&network).expect_err("does not fit") {
        BackendError::DoesNotFit {
            resource,
            needed,
            available,
            ..
        } => {
            assert!(resource.contains("neuron"), "{resource}");
            // 600 circuits, and 3 output neurons of 5 merged circuits (600 sources).
            assert_eq!((needed, available), (615, 512));
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn weights_are_quantised_clipped_and_signed() {
    let mut b = backend(EmulatorConfig::default());
    let network = Network {
        n_inputs: 4,
        layers: vec![layer(1, 4, vec![], vec![0.5, -0.5, 3.0, 0.01])],
    };
    b.configure(&network).expect("fits");
    let p = b.placement().expect("placed");
    assert_eq!(p.layers[0].weights, vec![15, -15, 63, 0]);
    assert_eq!(p.layers[0].clipped, 1);
    // Another weight scale.
    let mut b = backend(EmulatorConfig {
        weight_scale: 20.0,
        ..EmulatorConfig::default()
    });
    b.configure(&network).expect("fits");
    assert_eq!(
        b.placement().expect("placed").layers[0].weights,
        vec![10, -10, 60, 0]
    );
    // The sign picks the row: an inhibitory weight delays the spike an excitatory one causes.
    let mut b = backend(with_noise(NoiseConfig::none()));
    let single = |w3: f64| Network {
        n_inputs: 3,
        layers: vec![layer(1, 3, vec![], vec![2.0, 2.0, w3])],
    };
    let inputs = InputBatch::new(3, vec![0.2, 0.22, 0.25]).expect("valid");
    let excite = run(&mut b, &single(0.5), &inputs).spikes.output(0)[0];
    let inhibit = run(&mut b, &single(-0.5), &inputs).spikes.output(0)[0];
    assert!(excite < inhibit, "{excite} vs {inhibit}");
}

// ---- The perfect chip is the model ----

/// Weights on the 1/30 grid and within +-2.1, so that 6-bit quantisation is exact.
fn gridded(network: &Network) -> Network {
    let mut n = network.clone();
    for l in &mut n.layers {
        for w in &mut l.weights {
            *w = ((*w * 30.0).round() / 30.0).clamp(-2.1, 2.1);
        }
    }
    n
}

#[test]
fn a_perfect_chip_reproduces_the_ideal_backend() {
    let mut rng = TestRng::new(5);
    let network = gridded(&yin_yang_network(60, 1, &mut rng));
    let inputs = yin_yang_inputs(&mut rng, 40, 1);
    let ideal = run(&mut IdealBackend::new(), &network, &inputs);
    // The model neuron never fires twice; a refractory time covering the window makes the chip
    // neuron do the same (with the default 2 us, later hidden spikes would reach the outputs).
    let mut perfect = EmulatorConfig {
        noise: NoiseConfig::none(),
        ..EmulatorConfig::default()
    };
    perfect.analog.refractory_us = 60.0;
    let chip = run(&mut backend(perfect.clone()), &network, &inputs);
    let (_, max, mismatched) = compare(ideal.spikes.as_slice(), chip.spikes.as_slice());
    assert_eq!(mismatched, 0);
    assert!(max < 1e-9, "largest deviation {max} tau_s");
    assert_eq!(chip.stats.lost_events + chip.stats.later_spikes, 0);

    // With 8 ns timestamps (inputs released on the nearest tick, spikes read in their tick)
    // the chip stays within two ticks.
    perfect.noise.timestamp_resolution_ns = 8.0;
    let chip = run(&mut backend(perfect), &network, &inputs);
    let (_, max, mismatched) = compare(ideal.spikes.as_slice(), chip.spikes.as_slice());
    assert_eq!(mismatched, 0);
    assert!(max <= 2.0 * TICK, "largest deviation {max} tau_s");
    for &t in chip.spikes.as_slice().iter().filter(|t| t.is_finite()) {
        let ticks = t / TICK;
        assert!(
            (ticks - ticks.round()).abs() < 1e-6,
            "{t} is not on the 8 ns grid"
        );
    }
}

/// 300 inputs (more than one synapse column's 128 sources) -> 20 -> 3, weights on the grid.
fn wide_network(rng: &mut TestRng) -> Network {
    gridded(&Network {
        n_inputs: 300,
        layers: vec![
            layer(
                20,
                300,
                vec![],
                (0..6000).map(|_| rng.normal(0.03, 0.08)).collect(),
            ),
            layer(
                3,
                20,
                vec![],
                (0..60).map(|_| rng.normal(0.5, 0.3)).collect(),
            ),
        ],
    })
}

fn wide_inputs(rng: &mut TestRng, n: usize) -> InputBatch {
    let times = (0..n * 300).map(|_| rng.uniform(0.15, 2.0)).collect();
    InputBatch::new(300, times).expect("valid inputs")
}

#[test]
fn a_fan_in_beyond_one_column_runs_on_merged_circuits() {
    let mut rng = TestRng::new(9);
    let network = wide_network(&mut rng);
    let inputs = wide_inputs(&mut rng, 20);
    let mut perfect = EmulatorConfig {
        noise: NoiseConfig::none(),
        ..EmulatorConfig::default()
    };
    perfect.analog.refractory_us = 60.0;
    let mut b = backend(perfect.clone());
    let chip = run(&mut b, &network, &inputs);
    // 300 sources take 3 circuits per neuron, spread over all 128 drivers of the half.
    let p = b.placement().expect("placed");
    let first = &p.layers[0];
    assert_eq!(first.blocks.len(), 1);
    assert_eq!(
        (first.blocks[0].circuits_per_neuron, first.blocks[0].drivers),
        (3, 128)
    );
    assert!(first.chip_neurons.windows(2).all(|w| w[1] == w[0] + 3));
    assert_eq!(p.rows_used[first.blocks[0].half], 256);
    let ideal = run(&mut IdealBackend::new(), &network, &inputs);
    let (_, max, mismatched) = compare(ideal.spikes.as_slice(), chip.spikes.as_slice());
    assert_eq!(mismatched, 0);
    assert!(max < 1e-9, "largest deviation {max} tau_s");
    let fired = chip
        .spikes
        .as_slice()
        .iter()
        .filter(|t| t.is_finite())
        .count();
    assert!(fired > 100, "only {fired} spikes");

    // Each circuit feeds its own sources with its own synaptic gain: lowering the gain code of
    // the second circuit of neuron 0 (sources 128..256) delays it; the first circuit's membrane
    // and the other neurons are untouched.
    let n0 = first.chip_neurons[0];
    let nominal = b.nominal_codes(0).expect("codes");
    b.set_neuron_codes(
        n0 + 1,
        spikeloop_backend::NeuronCodes {
            synaptic_gain: nominal.synaptic_gain / 2,
            ..nominal
        },
    )
    .expect("write codes");
    let weaker = b.run(&inputs, Record::AllLayers).expect("runs");
    let (mut later, mut same) = (0, true);
    for s in 0..inputs.len() {
        let (a, w) = (chip.spikes.layer(s, 0), weaker.spikes.layer(s, 0));
        let (a, w) = (a.expect("recorded"), w.expect("recorded"));
        later += usize::from(w[0] > a[0] || (a[0].is_finite() && !w[0].is_finite()));
        same &= a[1..] == w[1..];
    }
    assert!(
        later >= 15,
        "neuron 0 fired later in only {later} of 20 samples"
    );
    assert!(same, "other neurons changed");
}

#[test]
fn a_partitioned_run_of_a_noise_free_chip_agrees_with_the_ideal_backend() {
    let mut rng = TestRng::new(10);
    let network = wide_network(&mut rng);
    let inputs = wide_inputs(&mut rng, 20);
    let ideal = run(&mut IdealBackend::new(), &network, &inputs);
    // Halves of 32 circuits: the first layer (3 merged circuits per neuron) fills all rows of
    // both halves, so the output layer runs as a second part.
    let mut perfect = EmulatorConfig {
        noise: NoiseConfig::none(),
        ..EmulatorConfig::default()
    };
    perfect.analog.refractory_us = 60.0;
    perfect.geometry.neurons_per_half = 32;
    perfect.geometry.max_merged_circuits = 32;
    let partitioned = |config: EmulatorConfig| {
        spikeloop_backend::PartitionedBackend::new(
            Box::new(backend(config)),
            spikeloop_backend::PartitionRules::BRAINSCALES2,
        )
        .expect("a chip with a geometry")
    };
    let mut b = partitioned(perfect.clone());
    let exact = run(&mut b, &network, &inputs);
    assert_eq!(b.plan().map(|p| p.runs_per_sample()), Some(2));
    let (_, max, mismatched) = compare(ideal.spikes.as_slice(), exact.spikes.as_slice());
    assert_eq!(mismatched, 0);
    assert!(max < 1e-9, "largest deviation {max} tau_s");
    // Hardware time: two runs of 20 samples and a reconfiguration per part.
    let t = perfect.timing.clone();
    let expected = 2.0 * (t.batch_overhead_us + 20.0 * t.sample_window_tau * t.tau_s_us)
        + 2.0 * spikeloop_backend::PartitionRules::BRAINSCALES2.reconfigure_us;
    assert_eq!(exact.stats.hardware_time_us, Some(expected));

    // With 8 ns timestamps the hidden spikes are read on the clock and sent again from it: the
    // result stays within two ticks per layer.
    perfect.noise.timestamp_resolution_ns = 8.0;
    let ticked = run(&mut partitioned(perfect), &network, &inputs);
    let (_, max, mismatched) = compare(ideal.spikes.as_slice(), ticked.spikes.as_slice());
    assert_eq!(mismatched, 0);
    assert!(max <= 4.0 * TICK, "largest deviation {max} tau_s");
}

// ---- Each imperfection on its own ----

/// A single layer (4 inputs + bias -> 40), where every effect acts directly on recorded times.
fn single_layer(rng: &mut TestRng) -> Network {
    Network {
        n_inputs: 4,
        layers: vec![layer(
            40,
            4,
            vec![0.9],
            (0..200).map(|_| rng.normal(1.0, 0.5)).collect(),
        )],
    }
}

#[test]
fn each_noise_source_alone_changes_results_as_documented() {
    let mut rng = TestRng::new(6);
    let network = single_layer(&mut rng);
    let inputs = yin_yang_inputs(&mut rng, 40, 1);
    let base = run(
        &mut backend(with_noise(NoiseConfig::none())),
        &network,
        &inputs,
    );
    let base_t = base.spikes.as_slice();
    let alone = |edit: &dyn Fn(&mut NoiseConfig)| {
        let mut noise = NoiseConfig::none();
        edit(&mut noise);
        run(&mut backend(with_noise(noise)), &network, &inputs)
    };
    let signed_mean = |out: &RunOutput| {
        let (mut s, mut n) = (0.0, 0);
        for (&a, &b) in out.spikes.as_slice().iter().zip(base_t) {
            if a.is_finite() && b.is_finite() {
                s += a - b;
                n += 1;
            }
        }
        s / n as f64
    };

    // Readout offset: every time exactly 80 ns = 1/75 tau_s earlier.
    let out = alone(&|n| n.readout_offset_ns = -80.0);
    for (&a, &b) in out.spikes.as_slice().iter().zip(base_t) {
        assert!(
            a == b || (a - (b - 80e-3 / 6.0)).abs() < 1e-12,
            "{a} vs {b}"
        );
    }
    // Threshold offset (+5 %): spikes come later on average.
    let out = alone(&|n| n.threshold = Mismatch::offset(0.05, 0.0));
    assert!(signed_mean(&out) > 0.005, "{}", signed_mean(&out));
    // Threshold spread only: deviations both ways.
    let out = alone(&|n| n.threshold = Mismatch::offset(0.0, 0.03));
    let (mean, _, _) = compare(out.spikes.as_slice(), base_t);
    assert!(mean > 0.005 && signed_mean(&out).abs() < mean, "{mean}");
    // Time constants, leak, reset-free parameters and gains: each moves spike times.
    type Edit = fn(&mut NoiseConfig);
    let static_effects: [(&str, Edit); 5] = [
        ("tau_m", |n| n.tau_m = Mismatch::gain(0.1)),
        ("tau_s", |n| n.tau_s = Mismatch::gain(0.1)),
        ("leak", |n| n.leak = Mismatch::offset(0.0, 0.02)),
        ("synaptic_gain", |n| n.synaptic_gain = Mismatch::gain(0.1)),
        ("synapse_gain_sd", |n| n.synapse_gain_sd = 0.05),
    ];
    for (name, edit) in static_effects {
        let out = alone(&edit);
        let (mean, _, _) = compare(out.spikes.as_slice(), base_t);
        assert!(mean > 1e-3, "{name}: mean deviation only {mean}");
        assert!(mean < 0.5, "{name}: mean deviation {mean}");
    }
    // Trial-to-trial noise: two runs of one chip differ; static noise alone does not.
    for (name, edit) in [
        (
            "threshold_trial_sd",
            (|n| n.threshold_trial_sd = 0.015) as Edit,
        ),
        ("spike_jitter_sd", |n| n.spike_jitter_sd = 0.01),
    ] {
        let mut noise = NoiseConfig::none();
        edit(&mut noise);
        let mut b = backend(with_noise(noise));
        let r0 = run(&mut b, &network, &inputs);
        let r1 = b.run(&inputs, Record::AllLayers).expect("runs");
        let (mean, _, _) = compare(r0.spikes.as_slice(), r1.spikes.as_slice());
        assert!(mean > 1e-3 && mean < 0.1, "{name}: runs differ by {mean}");
    }
    // Jitter: deviations from the noise-free times have the configured SD (0.01 tau_s; the
    // standard error over ~1500 spikes is under 4 %).
    let out = alone(&|n| n.spike_jitter_sd = 0.01);
    let d: Vec<f64> = out
        .spikes
        .as_slice()
        .iter()
        .zip(base_t)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| a - b)
        .collect();
    let sd = (d.iter().map(|x| x * x).sum::<f64>() / d.len() as f64).sqrt();
    assert!((sd - 0.01).abs() < 0.001, "jitter SD {sd}");
    // Quantisation: on the grid, within a tick of the exact time plus the input rounding.
    let out = alone(&|n| n.timestamp_resolution_ns = 8.0);
    let (_, max, _) = compare(out.spikes.as_slice(), base_t);
    assert!(max > 0.0 && max <= 2.0 * TICK, "{max}");
}

#[test]
fn colliding_events_wait_at_the_fpga_and_are_lost_on_chip() {
    // Eight copies of one input at one time, on eight consecutive drivers (two per event bus):
    // the FPGA queues them, so none is lost and the second of each pair arrives a tick later.
    let one_layer = Network {
        n_inputs: 8,
        layers: vec![layer(2, 8, vec![], vec![0.6; 16])],
    };
    let samples = 5;
    let inputs = InputBatch::new(8, vec![0.5; 8 * samples]).expect("valid");
    let mut noise = NoiseConfig::none();
    noise.event_dead_time_ns = 8.0;
    let queued = run(&mut backend(with_noise(noise.clone())), &one_layer, &inputs);
    assert_eq!(queued.stats.lost_events, 0);
    let instant = run(
        &mut backend(with_noise(NoiseConfig::none())),
        &one_layer,
        &inputs,
    );
    let (a, b) = (queued.spikes.output(0)[0], instant.spikes.output(0)[0]);
    assert!(
        b.is_finite() && a > b && a - b < 2.0 * TICK,
        "queued {a}, instant {b}"
    );

    // Eight identical hidden neurons fire at one time; their spikes travel on chip to the next
    // layer over the same four buses, and the colliding half of every wave is lost.
    let two_layers = Network {
        n_inputs: 2,
        layers: vec![
            layer(8, 2, vec![], vec![2.0; 16]),
            layer(1, 8, vec![], vec![0.6; 8]),
        ],
    };
    let inputs = InputBatch::new(2, vec![0.5; 2 * samples]).expect("valid");
    let lossy = run(&mut backend(with_noise(noise)), &two_layers, &inputs);
    let lost = lossy.stats.lost_events;
    assert!(
        lost >= 4 * samples as u64 && lost.is_multiple_of(4),
        "{:?}",
        lossy.stats
    );
    let lossless = run(
        &mut backend(with_noise(NoiseConfig::none())),
        &two_layers,
        &inputs,
    );
    assert_eq!(lossless.stats.lost_events, 0);
    // Half the drive arrives: the output neuron fires later (or not at all).
    let (a, b) = (lossy.spikes.output(0)[0], lossless.spikes.output(0)[0]);
    assert!(b.is_finite() && a > b, "lossy {a}, lossless {b}");
}

#[test]
fn later_spikes_are_counted_and_a_long_refractory_time_suppresses_them() {
    let network = Network {
        n_inputs: 4,
        layers: vec![layer(1, 4, vec![], vec![2.1; 4])],
    };
    let inputs = InputBatch::new(4, vec![0.1, 0.11, 0.12, 0.13]).expect("valid");
    // The reference calibration's 2 us: a strongly driven neuron fires again.
    let mut short = with_noise(NoiseConfig::none());
    short.analog.refractory_us = 2.0;
    let out = run(&mut backend(short.clone()), &network, &inputs);
    assert!(out.stats.later_spikes >= 1, "{:?}", out.stats);
    assert_eq!(out.stats.spikes, 1);
    // The default holds every neuron for the whole sample window: one spike at most.
    let out = run(
        &mut backend(with_noise(NoiseConfig::none())),
        &network,
        &inputs,
    );
    assert_eq!(out.stats.later_spikes, 0);
    // A weak input fires once even with the short refractory time.
    let weak = Network {
        n_inputs: 4,
        layers: vec![layer(1, 4, vec![], vec![0.8; 4])],
    };
    let out = run(&mut backend(short), &weak, &inputs);
    assert_eq!((out.stats.spikes, out.stats.later_spikes), (1, 0));
}

// ---- The uncalibrated chip ----

/// Two inputs (each sent as three copies for enough drive), two outputs: output `k` is excited
/// by input `k` and inhibited by the other, so the earlier input's output fires first. Labels:
/// the earlier input.
fn race_task(rng: &mut TestRng, n: usize) -> (Network, InputBatch, Vec<usize>) {
    let (e, i) = (1.5, -0.5);
    let network = Network {
        n_inputs: 6,
        layers: vec![layer(
            2,
            6,
            vec![],
            vec![e, e, e, i, i, i, i, i, i, e, e, e],
        )],
    };
    let mut times = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..n {
        let t0 = 0.5 + rng.uniform(0.0, 1.0);
        let t1 = t0 + 0.3 * (rng.uniform(0.0, 1.0) - 0.5);
        times.extend([t0, t0, t0, t1, t1, t1]);
        labels.push(usize::from(t1 < t0));
    }
    (network, InputBatch::new(6, times).expect("valid"), labels)
}

fn accuracy(out: &RunOutput, labels: &[usize]) -> f64 {
    let correct = labels
        .iter()
        .enumerate()
        .filter(|(s, label)| {
            let o = out.spikes.output(*s);
            o[**label].is_finite() && o[**label] < o[1 - **label]
        })
        .count();
    correct as f64 / labels.len() as f64
}

#[test]
fn an_uncalibrated_chip_is_visibly_worse_than_the_model() {
    let mut rng = TestRng::new(7);
    let (network, inputs, labels) = race_task(&mut rng, 400);
    let ideal = run(&mut IdealBackend::new(), &network, &inputs);
    assert!(accuracy(&ideal, &labels) > 0.99);
    // Default chip (uncalibrated): its two output neurons differ, which biases the race.
    let worst = (1..=4)
        .map(|seed| {
            let config = EmulatorConfig {
                chip_seed: seed,
                ..EmulatorConfig::default()
            };
            accuracy(&run(&mut backend(config), &network, &inputs), &labels)
        })
        .fold(1.0, f64::min);
    assert!(
        worst < 0.95,
        "every uncalibrated chip scored at least {worst}"
    );

    // Spike times of a larger layer: the documented deviations. Uncalibrated chips deviate by
    // about a tenth of tau_s; a chip with only temporal noise by about one hundredth.
    let network = single_layer(&mut rng);
    let inputs = yin_yang_inputs(&mut rng, 40, 1);
    let ideal = run(&mut IdealBackend::new(), &network, &inputs);
    let chip = run(&mut backend(EmulatorConfig::default()), &network, &inputs);
    let (uncalibrated, _, _) = compare(ideal.spikes.as_slice(), chip.spikes.as_slice());
    let temporal = run(
        &mut backend(with_noise(NoiseConfig::temporal_only())),
        &network,
        &inputs,
    );
    let (calibrated, _, _) = compare(ideal.spikes.as_slice(), temporal.spikes.as_slice());
    assert!(
        uncalibrated > 0.05 && uncalibrated < 0.5,
        "uncalibrated mean deviation {uncalibrated}"
    );
    assert!(
        calibrated < 0.04 && calibrated < uncalibrated / 3.0,
        "temporal-only mean deviation {calibrated}"
    );
}

// ---- Membrane recording ----

#[test]
fn membrane_trace_peaks_at_threshold_where_the_neuron_fires() {
    let network = Network {
        n_inputs: 2,
        layers: vec![layer(1, 2, vec![], vec![2.0, 2.0])],
    };
    let inputs = vec![0.2, 0.6];
    let mut b = backend(with_noise(NoiseConfig::none()));
    let out = run(
        &mut b,
        &network,
        &InputBatch::new(2, inputs.clone()).expect("valid"),
    );
    let spike = out.spikes.output(0)[0];
    assert!(spike.is_finite());
    let trace = b
        .record_membrane(&MembraneRequest {
            inputs,
            layer: 0,
            neuron: 0,
            duration: 4.0,
        })
        .expect("records");
    // 30 MSample/s at 6 us per tau_s: 180 samples per tau_s.
    assert!((trace.dt - 1.0 / 180.0).abs() < 1e-12);
    assert_eq!(trace.values.len(), 721);
    assert!(
        trace
            .values
            .iter()
            .all(|&c| c == c.round() && (0.0..1024.0).contains(&c))
    );
    // At rest: the leak potential, 600 mV.
    assert!((madc_code_to_mv(trace.values[0]) - 600.0).abs() < 1.2);
    // The reset: the first large drop, right after the spike time.
    let drop = trace
        .values
        .windows(2)
        .position(|w| w[1] < w[0] - 100.0)
        .expect("the trace shows a reset");
    let (before, after) = (drop as f64 * trace.dt, (drop + 1) as f64 * trace.dt);
    assert!(
        before <= spike && spike <= after,
        "spike {spike} not in [{before}, {after}]"
    );
    // The peak before it: the threshold, 900 mV, within the rise of one sample.
    let peak = trace.values[..=drop].iter().copied().fold(0.0, f64::max);
    let peak_mv = madc_code_to_mv(peak);
    assert!((880.0..=901.5).contains(&peak_mv), "peak {peak_mv} mV");
    // Held at reset (= leak) for the refractory time (2 us = 60 samples).
    let held = &trace.values[drop + 1..drop + 55];
    assert!(
        held.iter()
            .all(|&c| (madc_code_to_mv(c) - 600.0).abs() < 1.2)
    );
}

#[test]
fn membrane_traces_reveal_each_neurons_own_parameters() {
    // Nine neurons, no input: each trace sits at its own leak potential.
    let network = Network {
        n_inputs: 1,
        layers: vec![layer(9, 1, vec![], vec![0.0; 9])],
    };
    let mut config = EmulatorConfig::default();
    config.noise.madc_noise_mv = 0.0;
    let mut b = backend(config);
    b.configure(&network).expect("fits");
    let levels: Vec<f64> = (0..9)
        .map(|neuron| {
            let trace = b
                .record_membrane(&MembraneRequest {
                    inputs: vec![f64::INFINITY],
                    layer: 0,
                    neuron,
                    duration: 0.1,
                })
                .expect("records");
            madc_code_to_mv(trace.values[0])
        })
        .collect();
    let mean = levels.iter().sum::<f64>() / 9.0;
    let sd = (levels.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / 8.0).sqrt();
    // Leak offsets have SD 2 % of 300 mV = 6 mV.
    assert!(sd > 2.0 && sd < 15.0, "leak spread {sd} mV: {levels:?}");
}

// ---- Time, capabilities, configuration interface, errors ----

#[test]
fn hardware_time_capabilities_and_pacing() {
    let mut b = backend(EmulatorConfig::default());
    let caps = b.capabilities().clone();
    assert_eq!(caps.max_neurons, Some(512));
    assert_eq!(caps.weight_bits, Some(6));
    assert_eq!(caps.time_resolution_ns, Some(8.0));
    assert_eq!(caps.acceleration, Some(1000.0));
    assert_eq!(caps.tau_s_us, Some(6.0));
    assert!(caps.features.membrane_recording);
    let network = Network {
        n_inputs: 1,
        layers: vec![layer(1, 1, vec![], vec![1.0])],
    };
    let inputs = InputBatch::new(1, vec![0.5; 10]).expect("valid");
    let out = run(&mut b, &network, &inputs);
    // 100 us per batch + 8 tau_s x 6 us per sample.
    assert_eq!(out.stats.hardware_time_us, Some(100.0 + 10.0 * 48.0));
    assert_eq!(out.stats.hardware_time_per_sample_us(), Some(58.0));

    let mut config = EmulatorConfig::default();
    config.timing.pacing = true;
    config.timing.batch_overhead_us = 20_000.0;
    let mut paced = backend(config);
    let out = run(&mut paced, &network, &inputs);
    assert!(
        out.stats.wall_time.as_secs_f64() >= 0.0205,
        "{:?}",
        out.stats.wall_time
    );
}

#[test]
fn configuration_interface_reads_and_writes_codes() {
    let mut rng = TestRng::new(8);
    let network = single_layer(&mut rng);
    let inputs = yin_yang_inputs(&mut rng, 5, 1);
    let mut b = backend(EmulatorConfig::default());
    assert_eq!(b.nominal_codes(0), Err(ChipError::NotConfigured));
    let before = run(&mut b, &network, &inputs);
    let nominal = b.nominal_codes(0).expect("configured");
    assert_eq!(
        nominal,
        NeuronCodes {
            threshold: 750,
            leak: 500,
            reset: 500,
            tau_m: 170,
            tau_s: 170,
            synaptic_gain: 500
        }
    );
    assert!(matches!(
        b.nominal_codes(1),
        Err(ChipError::NoSuchLayer { .. })
    ));
    let neuron = b.placement().expect("placed").layers[0].chip_neurons[0];
    assert_eq!(b.written_codes(neuron), Ok(None));
    // A higher threshold code: that neuron fires later, the others do not change.
    let mut codes = nominal;
    codes.set(AnalogParameter::Threshold, 780);
    b.set_neuron_codes(neuron, codes).expect("valid codes");
    assert_eq!(b.written_codes(neuron), Ok(Some(codes)));
    b.set_run_counter(0);
    let after = b.run(&inputs, Record::AllLayers).expect("runs");
    for s in 0..inputs.len() {
        let (x, y) = (before.spikes.sample(s), after.spikes.sample(s));
        assert!(
            y[0] > x[0] || !y[0].is_finite(),
            "sample {s}: {} -> {}",
            x[0],
            y[0]
        );
        assert_eq!(&x[1..], &y[1..]);
    }
    // Codes survive reconfiguration and are cleared on request.
    b.configure(&network).expect("fits");
    assert_eq!(b.written_codes(neuron), Ok(Some(codes)));
    b.clear_neuron_codes(neuron).expect("exists");
    b.set_run_counter(0);
    let again = b.run(&inputs, Record::AllLayers).expect("runs");
    assert_eq!(bits(&before), bits(&again));
    // Errors name the problem.
    assert!(matches!(
        b.set_neuron_codes(512, codes),
        Err(ChipError::NoSuchNeuron { neuron: 512, .. })
    ));
    codes.set(AnalogParameter::TauM, 1023);
    assert!(matches!(
        b.set_neuron_codes(0, codes),
        Err(ChipError::CodeOutOfRange { code: 1023, .. })
    ));
}

#[test]
fn invalid_requests_are_refused_with_a_reason() {
    let mut b = backend(EmulatorConfig::default());
    let inputs = InputBatch::new(1, vec![0.5]).expect("valid");
    assert!(matches!(
        b.run(&inputs, Record::OutputOnly),
        Err(BackendError::NotConfigured)
    ));
    let network = Network {
        n_inputs: 1,
        layers: vec![layer(2, 1, vec![], vec![1.0, 1.0])],
    };
    b.configure(&network).expect("fits");
    let late = InputBatch::new(1, vec![9.0]).expect("valid");
    let err = b
        .run(&late, Record::OutputOnly)
        .expect_err("outside the window");
    assert!(err.to_string().contains("sample window"), "{err}");
    let negative = InputBatch::new(1, vec![-0.5]).expect("valid");
    assert!(b.run(&negative, Record::OutputOnly).is_err());
    let silent = InputBatch::new(1, vec![f64::INFINITY]).expect("valid");
    let out = b.run(&silent, Record::OutputOnly).expect("silence is fine");
    assert!(out.spikes.output(0).iter().all(|t| t.is_infinite()));
    // A time constant the transfer curve cannot reach.
    let mut fast = network.clone();
    fast.layers[0].neuron.tau_m = 0.1;
    let err = b.configure(&fast).expect_err("0.6 us is out of range");
    assert!(err.to_string().contains("tau_m"), "{err}");
    // Membrane requests for a neuron that does not exist.
    let err = b
        .record_membrane(&MembraneRequest {
            inputs: vec![0.5],
            layer: 0,
            neuron: 5,
            duration: 1.0,
        })
        .expect_err("no neuron 5");
    assert!(err.to_string().contains("neuron 5"), "{err}");
}

#[test]
fn configuration_loads_from_toml() {
    let config = EmulatorConfig::from_toml_str(
        "chip_seed = 42\nweight_scale = 25.0\n[noise]\nevent_dead_time_ns = 0.0\n",
    )
    .expect("valid");
    assert_eq!(config.chip_seed, 42);
    assert_eq!(config.weight_scale, 25.0);
    assert_eq!(config.noise.event_dead_time_ns, 0.0);
    assert_eq!(config.noise.spike_jitter_sd, 0.01);
    let b = backend(config);
    assert_eq!(b.config().chip_seed, 42);
}

/// The chip's layout is a value of the configuration: a smaller chip is a preset of it, fits
/// less, and names its limits; impossible layouts are refused with the allowed range.
#[test]
fn the_geometry_is_part_of_the_configuration() {
    let mut config = EmulatorConfig::default();
    config.geometry.halves = 1;
    config.geometry.neurons_per_half = 64;
    config.geometry.rows_per_half = 64;
    config.geometry.weight_bits = 4;
    let mut small = backend(config.clone());
    let caps = small.capabilities();
    assert_eq!(caps.max_neurons, Some(64));
    assert_eq!(caps.weight_bits, Some(4));
    assert_eq!(caps.max_weight, Some(15.0 / 30.0));
    let fits = Network {
        n_inputs: 4,
        layers: vec![layer(30, 4, vec![0.9], vec![0.3; 30 * 5])],
    };
    small
        .configure(&fits)
        .expect("30 neurons and 5 sources fit");
    let too_wide = Network {
        n_inputs: 4,
        layers: vec![layer(100, 4, vec![0.9], vec![0.3; 100 * 5])],
    };
    let err = small
        .configure(&too_wide)
        .expect_err("100 neurons do not fit");
    assert!(err.to_string().contains("64"), "{err}");

    let parsed = EmulatorConfig::from_toml_str(
        "[geometry]\nhalves = 1\nneurons_per_half = 64\nrows_per_half = 64\nweight_bits = 4\n",
    )
    .expect("geometry in TOML");
    assert_eq!(parsed.geometry, config.geometry);
    for (toml, key) in [
        ("[geometry]\nrows_per_half = 63\n", "geometry.rows_per_half"),
        ("[geometry]\nweight_bits = 8\n", "geometry.weight_bits"),
        ("[geometry]\nhalves = 0\n", "geometry.halves"),
    ] {
        let err = EmulatorConfig::from_toml_str(toml).expect_err("out of range");
        assert!(err.to_string().contains(key), "{err}");
    }
}

#[test]
fn rewritten_codes_cost_the_settling_time_once() {
    let network = Network {
        n_inputs: 2,
        layers: vec![layer(1, 2, vec![], vec![1.0, 1.0])],
    };
    let mut b = backend(EmulatorConfig::default());
    b.configure(&network).expect("fits");
    let batch = InputBatch::new(2, vec![0.2, 0.6]).expect("valid");
    let time = |b: &mut EmulatorBackend| {
        b.run(&batch, Record::AllLayers)
            .expect("runs")
            .stats
            .hardware_time_us
            .expect("physical time")
    };
    let plain = time(&mut b);
    let circuit = b.circuits().expect("placed")[0][0];
    let codes = b.nominal_codes(0).expect("in range");
    b.set_parameter_codes(&[(circuit, Some(codes))])
        .expect("written");
    assert_eq!(
        b.capabilities().parameter_settle_us,
        Some(20_000.0),
        "the documented settling time"
    );
    assert!((time(&mut b) - plain - 20_000.0).abs() < 1e-9);
    assert!((time(&mut b) - plain).abs() < 1e-9, "paid once");
}
