//! The ideal backend runs the backend conformance suite; the shared data types refuse bad
//! input with a message that names it.

use spikeloop_backend::{Backend, BackendError, IdealBackend, InputBatch, MembraneRequest};
use spikeloop_backend_testkit::backend_conformance;

backend_conformance!(ideal, noise_free: true, IdealBackend::new());

#[test]
fn invalid_input_batches_name_the_problem() {
    let e = InputBatch::new(3, vec![0.1, f64::NAN, 0.3])
        .expect_err("nan")
        .to_string();
    assert!(e.contains("NaN") && e.contains("channel 1"), "{e}");
    let e = InputBatch::new(3, vec![0.1, 0.2])
        .expect_err("ragged")
        .to_string();
    assert!(e.contains("do not divide"), "{e}");
}

#[test]
fn unsupported_abilities_name_the_backend() {
    let mut b = IdealBackend::new();
    let req = MembraneRequest {
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
