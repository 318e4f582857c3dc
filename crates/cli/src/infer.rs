//! `spikeloop infer`: run a model over a data set split and record every layer's spikes.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use spikeloop_backend::{Record, Substrate};
use spikeloop_data::Split;
use spikeloop_trainer::eval::{EVAL_BATCH, encode_batch};
use spikeloop_trainer::loss::LossParams;
use spikeloop_trainer::{Model, evaluate};

use crate::backend::BackendArgs;

/// Arguments of `spikeloop infer`.
#[derive(Debug, Args)]
pub struct InferArgs {
    /// Model file written by `spikeloop train`.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Data set split to run: train, validation or test.
    #[arg(long, default_value = "test", value_name = "SPLIT")]
    split: Split,
    /// Output JSON file, its directory created where missing [default: <model file's directory>/infer-<model file's name>-<split>-<substrate>.json].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Where the substrate's trial-to-trial noise starts (an emulated chip's run counter; 0 is
    /// where a fresh chip starts) [default: where the model's test evaluation started it
    /// (provenance.test_noise_position), so that the test split on the chip the model was
    /// trained on gives exactly the test accuracy training reported; 0 for a model without one].
    #[arg(long, value_name = "N")]
    noise_position: Option<u64>,
    /// Directory of the IDX files, where they are no longer where the model was trained from.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    calibration: crate::calibrate::CalibrationArgs,
}

/// Reads a model file given with `--model`; a checkpoint given instead is named as such, with
/// the command that continues its run.
pub(crate) fn load_model(path: &std::path::Path) -> anyhow::Result<Model> {
    match Model::load(path) {
        Err(
            e @ spikeloop_trainer::TrainError::WrongKind {
                found: spikeloop_trainer::FileKind::Checkpoint,
                ..
            },
        ) => {
            let dir = path
                .parent()
                .map_or_else(|| ".".into(), |d| d.display().to_string());
            Err(anyhow::anyhow!(
                "invalid model: {e}; give the run's model.json, or continue the run with `spikeloop train --resume --out {}`",
                if dir.is_empty() { "." } else { &dir }
            ))
        }
        Err(e @ spikeloop_trainer::TrainError::WrongKind { .. }) => Err(anyhow::anyhow!(
            "invalid model: {e}; a model is the model.json a run writes"
        )),
        other => Ok(other?),
    }
}

/// Moves the backend's trial noise to `asked`, or else to where the model's test evaluation
/// had it; returns where it starts.
pub(crate) fn start_noise(
    backend: &mut dyn spikeloop_backend::Backend,
    model: &Model,
    asked: Option<u64>,
) -> anyhow::Result<Option<u64>> {
    let recorded = model
        .provenance
        .as_ref()
        .and_then(|p| p.test_noise_position);
    let Some(position) = asked.or(recorded) else {
        return Ok(backend.noise_position());
    };
    if backend.noise_position().is_none() {
        if asked.is_some() {
            bail!(
                "--noise-position: {} has no noise position to set (only substrates with pseudo-random trial noise do, such as the emulator)",
                backend.substrate().summary
            );
        }
        return Ok(None);
    }
    backend
        .set_noise_position(position)
        .context("could not move the substrate's trial noise to its starting position")?;
    Ok(Some(position))
}

/// The JSON document `infer` writes. Spike times are in tau_s; `null` means "no spike".
#[derive(Serialize)]
struct InferReport {
    format: &'static str,
    model: String,
    dataset: String,
    split: Split,
    /// The substrate the data ran on, completely described.
    substrate: Substrate,
    /// Where the substrate's trial noise started (`null`: a substrate without one).
    noise_position: Option<u64>,
    samples: usize,
    accuracy: f64,
    loss: f64,
    labels: Vec<u32>,
    predictions: Vec<Option<usize>>,
    /// Input spike times per sample (first layer's inputs, without bias spikes).
    inputs: Vec<Vec<f64>>,
    /// Per layer, per sample, per neuron.
    layers: Vec<LayerReport>,
}

#[derive(Serialize)]
struct LayerReport {
    size: usize,
    bias_times: Vec<f64>,
    spike_times: Vec<Vec<Option<f64>>>,
}

/// The model's `split` of its data set, read with the options it was trained with (from
/// `data_dir` where the files have moved).
pub(crate) fn model_split(
    model: &Model,
    split: Split,
    data_dir: Option<&std::path::Path>,
) -> anyhow::Result<spikeloop_data::Dataset> {
    let mut options = model
        .provenance
        .as_ref()
        .map(|p| p.config.data.clone())
        .unwrap_or_default();
    if let Some(d) = data_dir {
        if !model.dataset.reads_files() {
            bail!(
                "--data-dir {}: applies to the data sets read from IDX files ({}), not to {}, which is built in; leave it out",
                d.display(),
                spikeloop_data::DatasetKind::names_where(spikeloop_data::DatasetKind::reads_files),
                model.dataset
            );
        }
        options.dir = Some(d.to_path_buf());
    }
    Ok(model.dataset.load_with(split, &options)?)
}

pub fn run(args: InferArgs) -> anyhow::Result<()> {
    // Where the report goes is settled before the work whose result it holds.
    if let Some(out) = &args.out {
        if out.is_dir() {
            bail!(
                "--out {}: is a directory; give the JSON file to write, e.g. {}",
                out.display(),
                out.join("infer.json").display()
            );
        }
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            spikeloop_files::create_dir(parent)?;
        }
    }
    let model = load_model(&args.model)?;
    let data = model_split(&model, args.split, args.data_dir.as_deref())?;
    let mut backend = args.backend.build()?;
    let applied = crate::calibrate::for_model(
        backend.as_mut(),
        &args.calibration,
        &model,
        &args.model,
        args.backend.kind() == crate::backend::BackendKind::Emulator,
        false,
    )?;
    let substrate = crate::calibrate::described(backend.substrate(), applied.as_ref());
    // A chip run uncalibrated is named so, beside its calibrated runs.
    let file_tag = if applied.is_none() && backend.capabilities().features.parameter_codes {
        format!("{}-uncalibrated", backend.file_tag())
    } else {
        backend.file_tag()
    };
    let model_name = args
        .model
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    backend.configure(&model.to_network())?;
    let noise_position = start_noise(backend.as_mut(), &model, args.noise_position)?;
    // A hand-written model records no training: it is scored with the default loss.
    let params = model.provenance.as_ref().map_or_else(
        || LossParams::from(&spikeloop_trainer::TrainConfig::default().training),
        |p| LossParams::from(&p.config.training),
    );
    let eval = evaluate(
        backend.as_mut(),
        &model,
        &data,
        &params,
        Some(Record::AllLayers),
    )?;

    let mut layers: Vec<LayerReport> = model
        .layers
        .iter()
        .map(|l| LayerReport {
            size: l.size,
            bias_times: l.bias_times.clone(),
            spike_times: Vec::with_capacity(data.len()),
        })
        .collect();
    for chunk in &eval.spikes {
        for s in 0..chunk.n_samples() {
            for (l, report) in layers.iter_mut().enumerate() {
                let times = chunk
                    .layer(s, l)
                    .context("backend did not record every layer")?;
                report
                    .spike_times
                    .push(times.iter().map(|t| t.is_finite().then_some(*t)).collect());
            }
        }
    }
    let mut inputs = Vec::with_capacity(data.len());
    for start in (0..data.len()).step_by(EVAL_BATCH) {
        let batch = encode_batch(&model, &data, start..(start + EVAL_BATCH).min(data.len()))?;
        inputs.extend((0..batch.len()).map(|s| batch.sample(s).to_vec()));
    }
    let report = InferReport {
        format: "spikeloop-inference",
        model: args.model.display().to_string(),
        dataset: model.dataset.to_string(),
        split: args.split,
        substrate: substrate.clone(),
        noise_position,
        samples: data.len(),
        accuracy: eval.accuracy,
        loss: eval.loss,
        labels: data.labels.clone(),
        predictions: eval.predictions,
        inputs,
        layers,
    };
    let out = args.out.unwrap_or_else(|| {
        let dir = args.model.parent().map(PathBuf::from).unwrap_or_default();
        dir.join(format!("infer-{model_name}-{}-{file_tag}.json", args.split))
    });
    let text =
        serde_json::to_string(&report).context("could not serialise the inference report")?;
    spikeloop_files::write_atomic(&out, text.as_bytes(), "write the inference report")?;
    outln!(
        "{} {} split on {}: accuracy {:.2} % ({} samples) -> {}",
        model.dataset,
        args.split,
        substrate.summary,
        100.0 * eval.accuracy,
        data.len(),
        out.display()
    );
    Ok(())
}
