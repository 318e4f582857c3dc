//! The ideal backend and the shared data types: validation messages, recording modes, and
//! results that do not depend on batching or threads.

use spikeloop_backend::{
    Backend, BackendError, IdealBackend, InputBatch, Layer, Network, NeuronParams, Record,
};

fn network() -> Network {
    let layer = |size: usize, n_in: usize, w: f64| Layer {
        size,
        neuron: NeuronParams::REFERENCE,
        bias_times: vec![0.9],
        weights: (0..size * (n_in + 1))
            .map(|i| w + 0.3 * ((i * 7919 % 13) as f64 / 13.0 - 0.5))
            .collect(),
    };
    Network {
        n_inputs: 3,
        layers: vec![layer(8, 3, 1.4), layer(2, 8, 0.6)],
    }
}

fn batch(n: usize) -> InputBatch {
    let times = (0..n * 3)
        .map(|i| 0.15 + 1.85 * ((i * 2654435761usize) % 1000) as f64 / 1000.0)
        .collect();
    InputBatch::new(3, times).expect("batch")
}

#[test]
fn run_before_configure_is_an_error() {
    let e = IdealBackend::new()
        .run(&batch(1), Record::AllLayers)
        .expect_err("not configured");
    assert!(matches!(e, BackendError::NotConfigured), "{e}");
}

#[test]
fn invalid_networks_name_the_problem() {
    let mut b = IdealBackend::new();
    let mut n = network();
    n.layers[1].weights.pop();
    let e = b.configure(&n).expect_err("short weights").to_string();
    assert!(e.contains("layer 1") && e.contains("expected 18"), "{e}");

    let mut n = network();
    n.layers[0].weights[5] = f64::NAN;
    let e = b.configure(&n).expect_err("nan").to_string();
    assert!(
        e.contains("layer 0, neuron 1, input 1") && e.contains("finite"),
        "{e}"
    );

    let mut n = network();
    n.layers[0].neuron.tau_m = -1.0;
    let e = b.configure(&n).expect_err("tau").to_string();
    assert!(e.contains("tau_m"), "{e}");

    let e = b
        .configure(&Network {
            n_inputs: 3,
            layers: vec![],
        })
        .expect_err("empty")
        .to_string();
    assert!(e.contains("no layers"), "{e}");
}

#[test]
fn invalid_inputs_name_the_problem() {
    let e = InputBatch::new(3, vec![0.1, f64::NAN, 0.3])
        .expect_err("nan")
        .to_string();
    assert!(e.contains("NaN") && e.contains("channel 1"), "{e}");
    let e = InputBatch::new(3, vec![0.1, 0.2])
        .expect_err("ragged")
        .to_string();
    assert!(e.contains("do not divide"), "{e}");
    let mut b = IdealBackend::new();
    b.configure(&network()).expect("configure");
    let e = b
        .run(
            &InputBatch::new(2, vec![0.1, 0.2]).expect("batch"),
            Record::AllLayers,
        )
        .expect_err("width");
    assert!(e.to_string().contains("expects 3"), "{e}");
}

#[test]
fn output_only_is_the_last_layer_of_all_layers() {
    let mut b = IdealBackend::new();
    b.configure(&network()).expect("configure");
    let inputs = batch(37);
    let all = b.run(&inputs, Record::AllLayers).expect("run");
    let out = b.run(&inputs, Record::OutputOnly).expect("run");
    assert_eq!(out.spikes.recorded_layers(), &[1]);
    for s in 0..37 {
        assert_eq!(all.spikes.output(s), out.spikes.output(s));
        assert_eq!(all.spikes.layer(s, 1), out.spikes.layer(s, 1));
        assert!(out.spikes.layer(s, 0).is_none());
    }
    assert_eq!(all.stats.samples, 37);
    assert!(all.stats.spikes > 0);
    assert!(all.spikes.as_slice().iter().all(|t| !t.is_nan()));
}

#[test]
fn samples_are_independent_of_batching_and_threads() {
    let mut b = IdealBackend::new();
    b.configure(&network()).expect("configure");
    let inputs = batch(40);
    let whole = b.run(&inputs, Record::AllLayers).expect("run");
    for s in [0, 17, 39] {
        let single = InputBatch::new(3, inputs.sample(s).to_vec()).expect("single");
        assert_eq!(
            b.run(&single, Record::AllLayers)
                .expect("run")
                .spikes
                .sample(0),
            whole.spikes.sample(s)
        );
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let serial = pool.install(|| b.run(&inputs, Record::AllLayers).expect("run"));
    assert_eq!(serial.spikes, whole.spikes);
}

#[test]
fn optional_abilities_answer_unsupported() {
    let mut b = IdealBackend::new();
    let req = spikeloop_backend::MembraneRequest {
        inputs: vec![0.2; 3],
        layer: 0,
        neuron: 0,
        duration: 5.0,
    };
    let e = b.record_membrane(&req).expect_err("unsupported");
    assert!(matches!(e, BackendError::Unsupported { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "membrane recording is not supported by the ideal backend"
    );
}
