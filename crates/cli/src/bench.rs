//! `spikeloop bench`: throughput of the forward pass, of forward plus backward, and of whole
//! training epochs, on a chosen backend and thread counts (release builds only give honest
//! numbers).

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use spikeloop_backend::{Backend, Record};
use spikeloop_trainer::eval::{EVAL_BATCH, encode_batch};
use spikeloop_trainer::grad::{Backward, BackwardParams};
use spikeloop_trainer::loss::LossParams;
use spikeloop_trainer::train::{self, Silent, batch_gradient};
use spikeloop_trainer::{Model, TrainConfig, load_data};

use crate::backend::{BackendArgs, BackendKind};

/// Arguments of `spikeloop bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Thread counts to measure, comma separated.
    #[arg(
        long = "thread-counts",
        value_delimiter = ',',
        default_value = "1,2",
        value_name = "LIST"
    )]
    thread_counts: Vec<usize>,
    /// Seconds to spend on each throughput measurement.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 2.0,
        value_name = "SECONDS"
    )]
    seconds: f64,
    /// Training epochs to time per thread count (0: throughputs only).
    #[arg(long, default_value_t = 5, value_name = "N")]
    epochs: u32,
    /// Samples per batch [default: the training default].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: Option<u64>,
    /// Measure with this trained model (and its data set) instead of a freshly initialised
    /// network.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "preset", "dataset", "hidden", "dale", "seed", "downscale_16", "blank_silent", "validation"])]
    model: Option<std::path::PathBuf>,
    /// The network to initialise and its data set (without --model).
    #[command(flatten)]
    network: crate::train::NetworkArgs,
    #[command(flatten)]
    backend: BackendArgs,
    /// The chip's calibration for the accuracy of --model (as `infer` takes it).
    #[command(flatten)]
    calibration: crate::calibrate::CalibrationArgs,
}

struct Row {
    threads: usize,
    inference: f64,
    forward: f64,
    forward_backward: f64,
    /// `None` when no epoch was timed (`--epochs 0`).
    epoch_seconds: Option<f64>,
    /// Mean hardware time of an epoch, where the backend states one.
    hardware_epoch_seconds: Option<f64>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.thread_counts.contains(&0) {
        anyhow::bail!(
            "--thread-counts must list numbers >= 1, got {:?}",
            args.thread_counts
        );
    }
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        anyhow::bail!(
            "--seconds {}: allowed more than 0 and at most 3600 seconds per measurement",
            args.seconds
        );
    }
    if let Some(&n) = args.thread_counts.iter().find(|&&n| n > 1024) {
        anyhow::bail!("--thread-counts: {n} threads; allowed 1 to 1024");
    }
    // Only what the backend is; every measurement opens its own (a device takes one host at a
    // time).
    let capabilities = args.backend.build()?.capabilities().clone();
    // A given model brings its training configuration (data set, batch size, loss); otherwise
    // the preset suited to the backend.
    let given = args
        .model
        .as_deref()
        .map(crate::infer::load_model)
        .transpose()?;
    let mut config = match given.as_ref().and_then(|m| m.provenance.as_ref()) {
        Some(p) => p.config.clone(),
        None => args.network.config(&capabilities)?,
    };
    if let Some(b) = args.batch_size {
        config.training.batch_size = usize::try_from(b).context("--batch-size is too large")?;
    }
    config.validate()?;
    let data = load_data(&config)?;
    let model = match given {
        Some(m) => m,
        None => Model::initialise(
            &config,
            data.train.n_features(),
            data.train.class_names.clone(),
        )?,
    };
    let sizes: Vec<String> = model.layers.iter().map(|l| l.size.to_string()).collect();
    outln!(
        "{} {}-{} on the {} backend, batches of {}, {} training samples",
        config.dataset,
        model.n_inputs + model.layers[0].bias_times.len(),
        sizes.join("-"),
        capabilities.name,
        config.training.batch_size,
        data.train.len()
    );
    outln!("{}", host());
    let mut rows = Vec::new();
    for &threads in &args.thread_counts {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .with_context(|| format!("could not start {threads} threads"))?;
        let row = pool.install(|| measure(&args, &config, &data, &model, threads))?;
        rows.push(row);
    }
    outln!(
        "{:>8} {:>14} {:>16} {:>20} {:>14} {:>18}",
        "threads",
        "inference/s",
        "forward/s",
        "forward+backward/s",
        "s per epoch",
        "300 epochs (est.)"
    );
    for r in &rows {
        let (epoch, all) = r.epoch_seconds.map_or_else(
            || ("-".to_owned(), "-".to_owned()),
            |s| (format!("{s:.3}"), span(300.0 * s)),
        );
        outln!(
            "{:>8} {:>14.0} {:>16.0} {:>20.0} {:>14} {:>18}",
            r.threads,
            r.inference,
            r.forward,
            r.forward_backward,
            epoch,
            all
        );
    }
    outln!(
        "inference: runs of {EVAL_BATCH} samples recording the output layer only; forward: training batches recording every layer"
    );
    if let Some(h) = rows.first().and_then(|r| r.hardware_epoch_seconds) {
        outln!(
            "on the chip itself an epoch (training and validation) occupies {h:.1} s of hardware time, as the backend states it"
        );
    }
    if let Some(path) = &args.model {
        // What the measured network is worth on this backend, beside how fast it runs.
        let mut backend = args.backend.build()?;
        crate::calibrate::for_model(
            backend.as_mut(),
            &args.calibration,
            &model,
            path,
            args.backend.kind() == crate::backend::BackendKind::Emulator,
            true,
        )?;
        backend.configure(&model.to_network())?;
        // Where training's own test evaluation started, as `infer` does.
        crate::infer::start_noise(backend.as_mut(), &model, None)?;
        let loss = model.provenance.as_ref().map_or_else(
            || LossParams::from(&config.training),
            |p| LossParams::from(&p.config.training),
        );
        let eval = spikeloop_trainer::evaluate(backend.as_mut(), &model, &data.test, &loss, None)?;
        outln!(
            "{}: test accuracy {:.2} % ({} samples) on this backend",
            path.display(),
            100.0 * eval.accuracy,
            data.test.len()
        );
    }
    if args.backend.kind() == BackendKind::Device {
        outln!("(the device computes with its own threads; --thread-counts sets only the host's)");
        wire_cost(&args, &config, &data, &model)?;
    }
    Ok(())
}

/// Bytes on the wire per sample and per recorded spike, for training batches (every layer) and
/// inference runs (output layer only).
fn wire_cost(
    args: &BenchArgs,
    config: &TrainConfig,
    data: &train::DataSplits,
    model: &Model,
) -> anyhow::Result<()> {
    let mut device = args.backend.open_device()?;
    // What a trainer sends after every batch: the same network with changed weights.
    let mut next = model.to_network();
    for layer in &mut next.layers {
        layer.weights *= 0.99;
    }
    let loads: [(&str, &spikeloop_backend::Network, bool); 2] = [
        ("configuring the network", &model.to_network(), false),
        ("a weight update (after every training batch)", &next, true),
    ];
    for (what, network, update) in loads {
        let before = device.link_counts();
        if update {
            device.update_weights(network)?;
        } else {
            device.configure(network)?;
        }
        let after = device.link_counts();
        outln!(
            "wire cost of {what}: {} requests, {} bytes to the device, {} bytes back",
            after.requests - before.requests,
            after.bytes_sent - before.bytes_sent,
            after.bytes_received - before.bytes_received
        );
    }
    let n = data.train.len();
    let cases = [
        (
            "training batch",
            config.training.batch_size,
            Record::AllLayers,
        ),
        ("inference run", EVAL_BATCH, Record::OutputOnly),
    ];
    for (what, size, record) in cases {
        let size = size.min(n);
        let batch = encode_batch(model, &data.train, 0..size)?;
        let before = device.link_counts();
        let out = device.run(&batch, record)?;
        let after = device.link_counts();
        let sent = after.bytes_sent - before.bytes_sent;
        let received = after.bytes_received - before.bytes_received;
        let spikes = out.stats.spikes.max(1);
        outln!(
            "wire cost of one {what} of {size} samples: {} requests, {sent} bytes to the device ({:.1} per sample), {received} bytes back ({:.1} per sample, {:.2} per recorded spike, {} spikes)",
            after.requests - before.requests,
            sent as f64 / size as f64,
            received as f64 / size as f64,
            received as f64 / spikes as f64,
            out.stats.spikes
        );
    }
    Ok(())
}

fn measure(
    args: &BenchArgs,
    config: &TrainConfig,
    data: &train::DataSplits,
    model: &Model,
    threads: usize,
) -> anyhow::Result<Row> {
    let mut backend = args.backend.build()?;
    let network = model.to_network();
    backend.configure(&network)?;
    let batch_size = config.training.batch_size;
    let n = data.train.len();
    // Batches are encoded as they are run (as training does), so a large data set is not held
    // twice; the throughputs include the encoding.
    let batches: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(batch_size)
        .map(<[usize]>::to_vec)
        .collect();
    let budget = Duration::from_secs_f64(args.seconds);

    let inference_batches: Vec<std::ops::Range<usize>> = (0..n.div_ceil(EVAL_BATCH))
        .map(|k| k * EVAL_BATCH..((k + 1) * EVAL_BATCH).min(n))
        .collect();
    let inference = throughput(budget, inference_batches.len(), |k| {
        let batch = encode_batch(model, &data.train, inference_batches[k].clone())?;
        backend.run(&batch, Record::OutputOnly)?;
        Ok(batch.len())
    })?;

    let forward = throughput(budget, batches.len(), |k| {
        let batch = encode_batch(model, &data.train, batches[k].iter().copied())?;
        backend.run(&batch, Record::AllLayers)?;
        Ok(batch.len())
    })?;

    let t = &config.training;
    let params = BackwardParams {
        loss: LossParams::from(t),
        scale: 1.0 / batch_size as f64,
        max_dw_norm: t.max_dw_norm,
    };
    let mut backward = Backward::new();
    let forward_backward = throughput(budget, batches.len(), |k| {
        let indices = &batches[k];
        let batch = encode_batch(model, &data.train, indices.iter().copied())?;
        let out = backend.run(&batch, Record::AllLayers)?;
        let (grads, _, _) = batch_gradient(
            &mut backward,
            &network,
            &batch,
            &out.spikes,
            &data.train,
            indices,
            &params,
        );
        std::hint::black_box(grads);
        Ok(batch.len())
    })?;

    if args.epochs == 0 {
        return Ok(Row {
            threads,
            inference,
            forward,
            forward_backward,
            epoch_seconds: None,
            hardware_epoch_seconds: None,
        });
    }
    let mut bench_config = config.clone();
    bench_config.training.epochs = args.epochs;
    let state = train::start(&bench_config, data, backend.substrate())?;
    let outcome = train::run(state, data, backend.as_mut(), None, &mut Silent)?;
    let trained: Vec<f64> = outcome
        .history
        .iter()
        .filter(|m| m.epoch > 0)
        .map(|m| m.seconds)
        .collect();
    let epoch_seconds = Some(trained.iter().sum::<f64>() / trained.len().max(1) as f64);
    let hardware: Option<Vec<f64>> = outcome
        .history
        .iter()
        .filter(|m| m.epoch > 0)
        .map(|m| m.hardware_seconds)
        .collect();
    let hardware_epoch_seconds = hardware.map(|h| h.iter().sum::<f64>() / h.len().max(1) as f64);
    Ok(Row {
        threads,
        inference,
        forward,
        forward_backward,
        epoch_seconds,
        hardware_epoch_seconds,
    })
}

/// Runs `pass(k)` over batches `k = 0, 1, ...` (from the first again after the last, `n` of
/// them) until `budget` is spent, after one batch of warm-up; samples/s.
fn throughput(
    budget: Duration,
    n: usize,
    mut pass: impl FnMut(usize) -> anyhow::Result<usize>,
) -> anyhow::Result<f64> {
    if n == 0 {
        return Ok(0.0);
    }
    pass(0)?; // warm-up
    let started = Instant::now();
    let mut samples = 0usize;
    let mut k = 0;
    while started.elapsed() < budget {
        samples += pass(k)?;
        k = (k + 1) % n;
    }
    Ok(samples as f64 / started.elapsed().as_secs_f64())
}

/// The machine the figures were measured on: processor model, cores, the vector instructions
/// the dense loops use, and the kind of build (speed differs by all four).
fn host() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "processor model unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let build = if cfg!(debug_assertions) {
        "debug build: unoptimised, far slower than a release build (cargo run --release)"
    } else {
        "release build"
    };
    format!(
        "host: {cpu}, {cores} core{}, {} vector instructions, {build}",
        if cores == 1 { "" } else { "s" },
        spikeloop_lif::widest_simd_name()
    )
}

/// A duration in the unit a reader plans with: seconds up to two minutes, minutes up to two
/// hours, hours beyond (`28.4 s`, `52.3 min`, `3.14 h`).
fn span(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.1} s")
    } else if seconds < 7200.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.2} h", seconds / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_are_written_in_the_unit_one_plans_with() {
        assert_eq!(span(28.44), "28.4 s");
        assert_eq!(span(119.9), "119.9 s");
        assert_eq!(span(3138.0), "52.3 min");
        assert_eq!(span(11299.4), "3.14 h");
    }
}
