//! Running a model over a data set on any backend: accuracy, loss and the measured spikes.

use spikeloop_backend::{Backend, InputBatch, Record, SpikeTimes};
use spikeloop_data::Dataset;

use crate::loss::{LossParams, loss_and_gradient, prediction};
use crate::{Model, TrainError};

/// Samples sent to the backend per call during evaluation.
pub const EVAL_BATCH: usize = 1000;

/// Accuracy and loss of a model on a data set.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Fraction of samples whose earliest output spike is the label neuron's.
    pub accuracy: f64,
    /// Mean loss.
    pub loss: f64,
    /// Predicted class per sample (`None` when no output neuron fired).
    pub predictions: Vec<Option<usize>>,
    /// Measured spikes per evaluation chunk, when asked for.
    pub spikes: Vec<SpikeTimes>,
    /// Hardware time the runs occupied on the substrate, in microseconds (`None` where the
    /// backend states none).
    pub hardware_time_us: Option<f64>,
}

/// Input spike times of the samples `indices` of `data`, encoded by `model`.
pub fn encode_batch(
    model: &Model,
    data: &Dataset,
    indices: impl Iterator<Item = usize>,
) -> Result<InputBatch, TrainError> {
    let mut times = Vec::new();
    for i in indices {
        model.encode_into(data.sample(i), &mut times);
    }
    Ok(InputBatch::new(model.n_inputs, times)?)
}

/// Runs the whole data set through `backend` (which must hold `model`'s network) and scores it.
/// With `record` = [`Record::AllLayers`] the measured spikes of every layer are kept.
pub fn evaluate(
    backend: &mut dyn Backend,
    model: &Model,
    data: &Dataset,
    loss: &LossParams,
    record: Option<Record>,
) -> Result<Evaluation, TrainError> {
    check_compatible(model, data)?;
    let mut correct = 0usize;
    let mut loss_sum = 0.0;
    let mut predictions = Vec::with_capacity(data.len());
    let mut kept = Vec::new();
    let mut grad = vec![0.0; model.n_classes()];
    let mut hardware_time_us = Some(0.0);
    let mut start = 0;
    while start < data.len() {
        let end = (start + EVAL_BATCH).min(data.len());
        let batch = encode_batch(model, data, start..end)?;
        let out = backend.run(&batch, record.unwrap_or(Record::OutputOnly))?;
        hardware_time_us = add_hardware_time(hardware_time_us, out.stats.hardware_time_us);
        for (k, i) in (start..end).enumerate() {
            let times = out.spikes.output(k);
            let label = data.labels[i] as usize;
            loss_sum += loss_and_gradient(loss, times, label, &mut grad);
            let p = prediction(times);
            correct += usize::from(p == Some(label));
            predictions.push(p);
        }
        if record.is_some() {
            kept.push(out.spikes);
        }
        start = end;
    }
    let n = data.len().max(1) as f64;
    Ok(Evaluation {
        accuracy: correct as f64 / n,
        loss: loss_sum / n,
        predictions,
        spikes: kept,
        hardware_time_us,
    })
}

/// `total` plus a run's hardware time; unknown (`None`) once any run states none.
pub(crate) fn add_hardware_time(total: Option<f64>, run: Option<f64>) -> Option<f64> {
    total.zip(run).map(|(t, r)| t + r)
}

/// Checks that a data set fits a model (feature and class counts).
pub fn check_compatible(model: &Model, data: &Dataset) -> Result<(), TrainError> {
    if data.n_features() != model.n_features() {
        return Err(TrainError::Model(format!(
            "the model takes {} features but the {} data set has {} features",
            model.n_features(),
            data.name,
            data.n_features()
        )));
    }
    if data.n_classes != model.n_classes() {
        return Err(TrainError::Model(format!(
            "the model has {} output neurons but the {} data set has {} classes",
            model.n_classes(),
            data.name,
            data.n_classes
        )));
    }
    Ok(())
}
