//! Release harness: inference throughput and accuracy of the emulated chip on the Yin-Yang test
//! set, next to the ideal backend.
//!
//! ```sh
//! cargo run --release -p spikeloop-emulator --example throughput [-- MODEL.json]
//! ```
//!
//! Without a model file it uses a network drawn with the reference initialisation (layer 1:
//! weights mean 1.5, sd 0.8; layer 2: mean 0.5, sd 0.8), whose accuracy is chance. With a
//! `model.json` written by `spikeloop train` it uses that network. It prints, per backend and
//! chip variant, samples per second (wall clock, all rayon threads, best of 5 runs of the 1000
//! test samples), the accuracy, and the run statistics per sample. The variants: the ideal
//! backend with float weights and with the chip's 6-bit weights (which a perfect chip with one
//! spike per neuron must match exactly), and the emulator with the default chip, temporal noise
//! only, no noise, and one spike per neuron (refractory time = sample window).

// Examples are not part of the documented API.
#![allow(missing_docs)]

use std::time::Instant;

use spikeloop_backend::{Backend, IdealBackend, InputBatch, Layer, Network, NeuronParams, Record};
use spikeloop_data::{Split, yin_yang};
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig, NoiseConfig};

struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn initial_network() -> Network {
    let mut rng = Lcg(11);
    Network {
        n_inputs: 4,
        layers: vec![
            Layer {
                size: 120,
                neuron: NeuronParams::REFERENCE,
                bias_times: vec![0.9],
                weights: (0..120 * 5).map(|_| rng.normal(1.5, 0.8)).collect(),
            },
            Layer {
                size: 3,
                neuron: NeuronParams::REFERENCE,
                bias_times: vec![],
                weights: (0..3 * 120).map(|_| rng.normal(0.5, 0.8)).collect(),
            },
        ],
    }
}

fn load_network(path: &str) -> Result<Network, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let n_inputs = v["n_inputs"].as_u64().ok_or("n_inputs")? as usize;
    let mut layers = Vec::new();
    for l in v["layers"].as_array().ok_or("layers")? {
        let neuron: NeuronParams = serde_json::from_value(l["neuron"].clone())?;
        let bias_times: Vec<f64> = serde_json::from_value(l["bias_times"].clone())?;
        let rows: Vec<Vec<f64>> = serde_json::from_value(l["weights"].clone())?;
        layers.push(Layer {
            size: rows.len(),
            neuron,
            bias_times,
            weights: rows.into_iter().flatten().collect(),
        });
    }
    Ok(Network { n_inputs, layers })
}

fn measure(
    name: &str,
    backend: &mut dyn Backend,
    network: &Network,
    inputs: &InputBatch,
    labels: &[u32],
) {
    if let Err(e) = backend.configure(network) {
        println!("{name:<36} cannot configure: {e}");
        return;
    }
    for (record_name, record) in [
        ("output-only", Record::OutputOnly),
        ("all-layers", Record::AllLayers),
    ] {
        let mut best = f64::INFINITY;
        let mut last = None;
        for _ in 0..5 {
            let started = Instant::now();
            let out = backend.run(inputs, record).expect("run");
            best = best.min(started.elapsed().as_secs_f64());
            last = Some(out);
        }
        let Some(out) = last else { return };
        let n = inputs.len();
        let correct = (0..n)
            .filter(|&s| {
                let o = out.spikes.output(s);
                let mut winner = None;
                let mut t_best = f64::INFINITY;
                for (k, &t) in o.iter().enumerate() {
                    if t < t_best {
                        t_best = t;
                        winner = Some(k as u32);
                    }
                }
                winner == Some(labels[s])
            })
            .count();
        println!(
            "{name:<36} {record_name:<12} {:>9.0} samples/s   accuracy {:5.1} %   lost events/sample {:6.2}   later spikes/sample {:7.2}",
            n as f64 / best,
            100.0 * correct as f64 / n as f64,
            out.stats.lost_events as f64 / n as f64,
            out.stats.later_spikes as f64 / n as f64,
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let network = match std::env::args().nth(1) {
        Some(path) => load_network(&path)?,
        None => initial_network(),
    };
    let test = yin_yang(Split::Test);
    let mut times = Vec::with_capacity(test.len() * 4);
    for i in 0..test.len() {
        times.extend(test.sample(i).iter().map(|v| 0.15 + 1.85 * v));
    }
    let inputs = InputBatch::new(4, times)?;
    println!("threads: {}", rayon::current_num_threads());
    measure(
        "ideal",
        &mut IdealBackend::new(),
        &network,
        &inputs,
        &test.labels,
    );
    // The model with the chip's 6-bit weights (round(30 w) clipped to +-63, divided by 30).
    let mut chip_weights = network.clone();
    for l in &mut chip_weights.layers {
        for w in &mut l.weights {
            *w = f64::from(spikeloop_emulator::quantise_weight(*w, 30.0).0) / 30.0;
        }
    }
    measure(
        "ideal, chip's 6-bit weights",
        &mut IdealBackend::new(),
        &chip_weights,
        &inputs,
        &test.labels,
    );
    let variants = [
        ("emulator, default chip", EmulatorConfig::default()),
        (
            "emulator, temporal noise only",
            EmulatorConfig {
                noise: NoiseConfig::temporal_only(),
                ..EmulatorConfig::default()
            },
        ),
        (
            "emulator, no noise",
            EmulatorConfig {
                noise: NoiseConfig::none(),
                ..EmulatorConfig::default()
            },
        ),
    ];
    let mut single_spike = EmulatorConfig::default();
    single_spike.analog.refractory_us =
        single_spike.timing.sample_window_tau * single_spike.timing.tau_s_us;
    let mut perfect_single = single_spike.clone();
    perfect_single.noise = NoiseConfig::none();
    let variants = variants.into_iter().chain([
        ("emulator, default, 1 spike/neuron", single_spike),
        ("emulator, no noise, 1 spike/neuron", perfect_single),
    ]);
    for (name, config) in variants {
        let mut backend = EmulatorBackend::new(config)?;
        measure(name, &mut backend, &network, &inputs, &test.labels);
    }
    Ok(())
}
