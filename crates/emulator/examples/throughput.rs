//! Release harness: inference throughput and accuracy of the emulated chip on the Yin-Yang test
//! set, next to the ideal backend.
//!
//! ```sh
//! cargo run --release -p spikeloop-emulator --example throughput [-- MODEL.json]
//! ```
//!
//! Without a model file it uses a network drawn with the software preset's initialisation
//! (layer 1: weights mean 1.5, sd 0.8; layer 2: mean 0.5, sd 0.8), whose accuracy is chance.
//! With a `model.json` written by `spikeloop train` it uses that network and its input
//! encoding. It prints, per backend and
//! chip variant, samples per second (wall clock, all rayon threads, best of 5 runs of the 1000
//! test samples), the accuracy, and the run statistics per sample. The variants: the ideal
//! backend with float weights and with the chip's 6-bit weights (which a perfect chip with one
//! spike per neuron must match exactly), and the emulator with the default chip (one spike per
//! neuron), temporal noise only, no noise, and the reference calibration's 2 us refractory
//! time (neurons may fire again).

// Examples are not part of the documented API.
#![allow(missing_docs)]

use std::time::Instant;

use spikeloop_backend::{Backend, IdealBackend, InputBatch, Network, Record};
use spikeloop_data::Split;
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig, NoiseConfig};
use spikeloop_trainer::eval::encode_batch;
use spikeloop_trainer::loss::prediction;
use spikeloop_trainer::{Model, TrainConfig};

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
            .filter(|&s| prediction(out.spikes.output(s)) == Some(labels[s] as usize))
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
    let model = match std::env::args().nth(1) {
        Some(path) => Model::load(std::path::Path::new(&path))?,
        None => {
            let config = TrainConfig::default();
            let train = config.dataset.load(Split::Train)?;
            Model::initialise(&config, train.n_features, train.class_names)?
        }
    };
    let network = model.to_network();
    let test = model.dataset.load(Split::Test)?;
    let inputs = encode_batch(&model, &test, 0..test.len())?;
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
            *w = f64::from(spikeloop_emulator::quantise_weight(*w, 30.0, 63).0) / 30.0;
        }
    }
    measure(
        "ideal, chip's 6-bit weights",
        &mut IdealBackend::new(),
        &chip_weights,
        &inputs,
        &test.labels,
    );
    let mut refractory_2us = EmulatorConfig::default();
    refractory_2us.analog.refractory_us = 2.0;
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
        ("emulator, default, 2 us refractory", refractory_2us),
    ];
    for (name, config) in variants {
        let mut backend = EmulatorBackend::new(config)?;
        measure(name, &mut backend, &network, &inputs, &test.labels);
    }
    Ok(())
}
