//! The suite itself: backends that break its rules fail it (the ideal backend, which passes
//! it, instantiates it in `spikeloop-backend`'s tests).

use std::panic::{AssertUnwindSafe, catch_unwind};

use spikeloop_backend::{
    Backend, BackendError, Capabilities, IdealBackend, InputBatch, Network, Record, RunOutput,
    SpikeTimes,
};
use spikeloop_backend_testkit::{Subject, check};

/// The ideal backend, except that it reports silence as NaN.
struct NanForSilence(IdealBackend, Vec<usize>);

impl Backend for NanForSilence {
    fn capabilities(&self) -> &Capabilities {
        self.0.capabilities()
    }
    fn configure(&mut self, network: &Network) -> Result<(), BackendError> {
        self.1 = network.layers.iter().map(|l| l.size).collect();
        self.0.configure(network)
    }
    fn run(&mut self, inputs: &InputBatch, record: Record) -> Result<RunOutput, BackendError> {
        let mut out = self.0.run(inputs, record)?;
        let layers = out.spikes.recorded_layers().to_vec();
        let sizes = layers.iter().map(|l| self.1[*l]).collect();
        let times = out
            .spikes
            .as_slice()
            .iter()
            .map(|t| if t.is_infinite() { f64::NAN } else { *t })
            .collect();
        out.spikes = SpikeTimes::new(layers, sizes, times)?;
        Ok(out)
    }
}

/// The ideal backend, except that it claims membrane recording without offering it.
struct ClaimsMembranes(IdealBackend, Capabilities);

impl Backend for ClaimsMembranes {
    fn capabilities(&self) -> &Capabilities {
        &self.1
    }
    fn configure(&mut self, network: &Network) -> Result<(), BackendError> {
        self.0.configure(network)
    }
    fn run(&mut self, inputs: &InputBatch, record: Record) -> Result<RunOutput, BackendError> {
        self.0.run(inputs, record)
    }
}

fn fails(check: fn(&Subject), subject: &Subject) -> String {
    let outcome = catch_unwind(AssertUnwindSafe(|| check(subject)));
    match outcome {
        Ok(()) => panic!("the check passed a backend that breaks it"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default(),
    }
}

#[test]
fn a_backend_that_reports_silence_as_nan_fails() {
    let wrong = Subject::new("nan-for-silence", true, || {
        Box::new(NanForSilence(IdealBackend::new(), Vec::new()))
    });
    let message = fails(check::silence_is_infinite_never_nan, &wrong);
    assert!(message.contains("nan-for-silence"), "{message}");
    assert!(message.contains("NaN"), "{message}");
}

#[test]
fn a_backend_whose_features_lie_fails() {
    let wrong = Subject::new("claims-membranes", true, || {
        let ideal = IdealBackend::new();
        let mut capabilities = ideal.capabilities().clone();
        capabilities.features.membrane_recording = true;
        Box::new(ClaimsMembranes(ideal, capabilities))
    });
    let message = fails(check::unsupported_answers_agree_with_features, &wrong);
    assert!(
        message.contains("membrane recording offered: true"),
        "{message}"
    );
}
