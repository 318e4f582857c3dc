//! Inference throughput of the emulated chip on the Yin-Yang network (4 inputs + 1 bias -> 120
//! hidden + 1 bias -> 3 outputs) with the default chip (all noise on; the refractory time covers
//! the sample window, so each neuron fires at most once), in batches of 1000 samples, recording
//! only the outputs and recording all layers; and the same chip with the reference
//! calibration's 2 us refractory time (`refractory_2us`), where the strongly driven initial
//! network fires about 160 later spikes per sample, which dominate the cost. Throughput in samples per
//! second is the batch size divided by the time per iteration criterion reports. The weights
//! follow the reference initialisation (layer 1: mean 1.5, sd 0.8; layer 2: mean 0.5, sd 0.8)
//! and the inputs the reference encoding `t = 0.15 + 1.85 v` of uniform `v`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use spikeloop_backend::{Backend, InputBatch, Layer, Network, NeuronParams, Record};
use spikeloop_backend_testkit::{TestRng, matrix};
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig};

const BATCH: usize = 1000;

fn yin_yang_network(rng: &mut TestRng) -> Network {
    Network {
        n_inputs: 4,
        layers: vec![
            Layer {
                size: 120,
                neuron: NeuronParams::REFERENCE,
                bias_times: vec![0.9],
                weights: matrix(120, (0..120 * 5).map(|_| rng.normal(1.5, 0.8)).collect()),
            },
            Layer {
                size: 3,
                neuron: NeuronParams::REFERENCE,
                bias_times: vec![],
                weights: matrix(3, (0..3 * 120).map(|_| rng.normal(0.5, 0.8)).collect()),
            },
        ],
    }
}

fn yin_yang_inputs(rng: &mut TestRng, n: usize) -> InputBatch {
    let mut times = Vec::with_capacity(4 * n);
    for _ in 0..n {
        let (x, y) = (rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0));
        for v in [x, y, 1.0 - x, 1.0 - y] {
            times.push(0.15 + 1.85 * v);
        }
    }
    InputBatch::new(4, times).expect("valid inputs")
}

fn inference(c: &mut Criterion) {
    let mut rng = TestRng::new(11);
    let network = yin_yang_network(&mut rng);
    let inputs = yin_yang_inputs(&mut rng, BATCH);
    let mut refractory_2us = EmulatorConfig::default();
    refractory_2us.analog.refractory_us = 2.0;
    let mut group = c.benchmark_group("yin_yang_5_120_3");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (chip, config) in [
        ("default", EmulatorConfig::default()),
        ("refractory_2us", refractory_2us),
    ] {
        let mut backend = EmulatorBackend::new(config).expect("valid config");
        backend.configure(&network).expect("Yin-Yang fits");
        for (name, record) in [
            ("output_only", Record::OutputOnly),
            ("all_layers", Record::AllLayers),
        ] {
            group.bench_function(format!("{chip}/{name}"), |b| {
                b.iter(|| backend.run(black_box(&inputs), record).expect("runs"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, inference);
criterion_main!(benches);
