//! The training loop: forward passes on the backend, exact gradients on the host.
//!
//! Each batch: the backend receives the current float shadow weights (a chip quantises them
//! itself), runs the batch and reports every layer's first-spike times; the host checks for
//! silent neurons (weight bumping), evaluates the loss and the exact gradients at the measured
//! times, and takes an Adam step on the shadow weights. After each epoch it validates and writes
//! a checkpoint from which an interrupted run resumes to the bit-identical result.
//!
//! Determinism: all randomness derives from the training seed ([`crate::seeds`]); gradients are
//! reduced in fixed chunks in a fixed order, so the result does not depend on the number of
//! threads.

use std::path::Path;
use std::time::Instant;

use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use spikeloop_backend::{Backend, InputBatch, Record, Substrate};
use spikeloop_data::{Dataset, images};

use crate::config::ModelSelection;
use crate::eval::{check_compatible, evaluate};
use crate::grad::{Backward, BackwardParams, SampleRef};
use crate::loss::{LossParams, prediction};
use crate::optim::{Adam, step_lr};
use crate::seeds::{self, Stream};
use crate::{Model, Provenance, TrainConfig, TrainError};

/// The format identifier of checkpoint files.
pub const CHECKPOINT_FORMAT: &str = "spikeloop-checkpoint";
/// The checkpoint version this build writes and reads.
pub const CHECKPOINT_VERSION: u32 = 2;

/// The three splits a training run uses.
#[derive(Clone, Debug)]
pub struct DataSplits {
    /// Samples the weights are fitted to.
    pub train: Dataset,
    /// Samples scored after every epoch.
    pub validation: Dataset,
    /// Samples scored once, after training.
    pub test: Dataset,
}

/// What happened in one epoch. Epoch 0 is the untrained network (validation only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epochs completed when these numbers were taken.
    pub epoch: u32,
    /// Learning rate used during the epoch.
    pub learning_rate: f64,
    /// Mean training loss over the batches that took a gradient step (`None` if none did).
    pub train_loss: Option<f64>,
    /// Fraction of training samples classified correctly during the epoch's forward passes.
    pub train_accuracy: Option<f64>,
    /// Validation loss after the epoch.
    pub validation_loss: f64,
    /// Validation accuracy after the epoch.
    pub validation_accuracy: f64,
    /// Batches skipped for weight bumping.
    pub bumped_batches: u32,
    /// (sample, neuron) weight gradients dropped by the gradient chop.
    pub chopped_gradients: u64,
    /// Wall-clock seconds the epoch took (training and validation).
    pub seconds: f64,
    /// Seconds the epoch's runs (training and validation) occupied the substrate's hardware,
    /// as the backend states them (`None` for substrates without physical time, such as the
    /// ideal backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_seconds: Option<f64>,
}

/// Weight-bumping state carried from batch to batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BumpState {
    /// Increment of the next bump.
    pub value: f64,
    /// Layer bumped by the previous batch, if it was bumped.
    pub last_layer: Option<usize>,
}

/// Everything needed to continue a run exactly where it stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// Always [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// Version of spikeloop that wrote it.
    pub spikeloop_version: String,
    /// The run's configuration.
    pub config: TrainConfig,
    /// The substrate the run trains on, completely described; a run resumes only on the same.
    pub substrate: Substrate,
    /// Epochs completed.
    pub epoch: u32,
    /// The model after `epoch` epochs.
    pub model: Model,
    /// Optimiser state.
    pub adam: Adam,
    /// Weight-bumping state.
    pub bump: BumpState,
    /// Metrics of every epoch so far, epoch 0 first.
    pub history: Vec<EpochMetrics>,
    /// The weights of the epoch with the highest validation accuracy so far.
    pub best: Option<BestEpoch>,
    /// The backend's trial-noise position after `epoch` epochs (and the batches of
    /// `partial`), where it has one ([`Backend::noise_position`]); restored on resume.
    #[serde(default)]
    pub noise_position: Option<u64>,
    /// The epoch in progress, for a checkpoint written between batches
    /// ([`Checkpoints::every_batches`]); `None` for one written between epochs.
    #[serde(default)]
    pub partial: Option<PartialEpoch>,
    /// Where the initial weights came from, for a run started from a trained model's weights
    /// ([`start_from`]); `None` for weights drawn from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_from: Option<String>,
    /// CRC-64/XZ of the rest of the file, written by every save and checked on loading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl spikeloop_files::Checksummed for Checkpoint {
    fn checksum_mut(&mut self) -> &mut Option<String> {
        &mut self.checksum
    }
}

/// How far an epoch had got when a checkpoint was written between its batches: everything the
/// rest of the epoch needs to continue exactly as if it had not stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartialEpoch {
    /// Batches of the epoch done (their weight updates are in the checkpoint's model).
    pub batches_done: usize,
    /// The input-jitter generator after those batches.
    pub jitter_rng: Pcg64Mcg,
    /// Mean losses of the batches that took a gradient step.
    pub losses: Vec<f64>,
    /// Training samples classified correctly so far.
    pub correct: usize,
    /// Training samples run so far.
    pub shown: usize,
    /// Batches skipped for weight bumping so far.
    pub bumped: u32,
    /// Gradients chopped so far.
    pub chopped: u64,
    /// Wall-clock seconds spent on the epoch so far.
    pub seconds: f64,
    /// Hardware time of the epoch's training runs so far, in microseconds (`None` where the
    /// backend states none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_us: Option<f64>,
}

/// Where and how often a run writes its checkpoint.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checkpoints<'a> {
    /// The checkpoint file; `None` writes none.
    pub path: Option<&'a Path>,
    /// Also write it after every this many batches within an epoch (`None`: only after each
    /// epoch), so that a run on a flaky device loses minutes rather than an epoch.
    pub every_batches: Option<std::num::NonZeroUsize>,
}

/// The weights of the best epoch so far, by validation accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestEpoch {
    /// The epoch after which these weights were taken.
    pub epoch: u32,
    /// Its validation accuracy.
    pub validation_accuracy: f64,
    /// Its weights, one matrix per layer (written flat, row-major, in the checkpoint).
    #[serde(with = "crate::flat")]
    pub weights: Vec<Array2<f64>>,
}

impl Checkpoint {
    /// Reads a checkpoint file: its format and version, its checksum and its model.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            TrainError::File(spikeloop_files::FileError::Io {
                what: "read the checkpoint",
                path: path.to_path_buf(),
                source,
            })
        })?;
        let bad = |m: String| TrainError::Checkpoint(format!("{}: {m}", path.display()));
        let head: spikeloop_files::Kind = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a checkpoint: not JSON ({e})")))?;
        spikeloop_files::check_kind(&head, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "checkpoint")
            .map_err(|e| match e {
                spikeloop_files::KindMismatch::Other(found) => TrainError::WrongKind {
                    path: path.to_path_buf(),
                    found: crate::FileKind::of_format(&found),
                    wanted: "checkpoint",
                },
                spikeloop_files::KindMismatch::Invalid(m) => bad(m),
            })?;
        let mut c: Self =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a valid checkpoint: {e}")))?;
        match spikeloop_files::verify_seal(&c) {
            Ok(true) => {}
            Ok(false) => {
                return Err(bad(
                    "carries no checksum, so it cannot be told intact".into()
                ));
            }
            Err(e) => return Err(bad(e)),
        }
        c.model
            .validate()
            .map_err(|e| bad(format!("its model is not valid: {e}")))?;
        let shapes = c.model.weight_shapes();
        c.adam
            .reshape(&shapes)
            .map_err(|e| bad(format!("its optimiser state does not fit its model: {e}")))?;
        if let Some(best) = &mut c.best {
            crate::flat::reshape(&mut best.weights, &shapes).map_err(|e| {
                bad(format!(
                    "its best epoch's weights do not fit its model: {e}"
                ))
            })?;
        }
        Ok(c)
    }

    /// How a model taken from this run was made: the weights of `selected_epoch`, with their
    /// validation accuracy and, once tested, their test accuracy.
    pub fn provenance(
        &self,
        selected_epoch: u32,
        validation_accuracy: f64,
        test_accuracy: Option<f64>,
    ) -> Provenance {
        Provenance {
            spikeloop_version: env!("CARGO_PKG_VERSION").into(),
            substrate: self.substrate.clone(),
            config: self.config.clone(),
            epochs_trained: self.epoch,
            selected_epoch,
            validation_accuracy: Some(validation_accuracy),
            test_accuracy,
            test_noise_position: None,
            started_from: self.started_from.clone(),
        }
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        Ok(spikeloop_files::write_json_atomic(
            path,
            &spikeloop_files::seal(self)?,
            "write the checkpoint",
        )?)
    }
}

/// Receives progress from the training loop (the command line draws progress bars with it).
pub trait Observer {
    /// An epoch (1-based) is about to start.
    fn epoch_started(&mut self, epoch: u32, epochs: u32, batches: usize) {
        let _ = (epoch, epochs, batches);
    }
    /// A batch finished; `loss` is `None` when the batch was skipped for weight bumping.
    fn batch_finished(&mut self, batch: usize, loss: Option<f64>, accuracy: f64) {
        let _ = (batch, loss, accuracy);
    }
    /// An epoch finished (or, with `epoch` = 0, the untrained network was validated).
    fn epoch_finished(&mut self, metrics: &EpochMetrics) {
        let _ = metrics;
    }
    /// The checkpoint was written to `path` (after an epoch, or between batches).
    fn checkpoint_saved(&mut self, path: &Path) {
        let _ = path;
    }
    /// Asked after every batch: true stops the run there, with its checkpoint written
    /// ([`TrainError::Interrupted`]).
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {}

/// The result of a finished run.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The trained model, with provenance.
    pub model: Model,
    /// Metrics of every epoch, epoch 0 first.
    pub history: Vec<EpochMetrics>,
    /// The epoch whose weights became the model.
    pub selected_epoch: u32,
    /// Validation accuracy of the selected weights.
    pub validation_accuracy: f64,
    /// Accuracy on the test split.
    pub test_accuracy: f64,
    /// Mean loss on the test split.
    pub test_loss: f64,
}

/// A fresh checkpoint (epoch 0) for a new run: initial weights, zeroed optimiser state.
pub fn start(
    config: &TrainConfig,
    data: &DataSplits,
    substrate: Substrate,
) -> Result<Checkpoint, TrainError> {
    config.validate()?;
    let train = &data.train;
    let model = Model::initialise(config, train.n_features(), train.class_names.clone())?;
    check_compatible(&model, &data.validation)?;
    check_compatible(&model, &data.test)?;
    let shapes = model.weight_shapes();
    let t = &config.training;
    Ok(Checkpoint {
        format: CHECKPOINT_FORMAT.into(),
        version: CHECKPOINT_VERSION,
        spikeloop_version: env!("CARGO_PKG_VERSION").into(),
        config: config.clone(),
        substrate,
        epoch: 0,
        model,
        adam: Adam::new(&shapes, t.adam_beta1, t.adam_beta2, t.adam_eps),
        bump: BumpState {
            value: t.weight_bump,
            last_layer: None,
        },
        history: Vec::new(),
        best: None,
        noise_position: None,
        partial: None,
        started_from: None,
        checksum: None,
    })
}

/// The configuration that fine-tunes, for `epochs` epochs, a network trained with `config` for
/// `epochs_trained` epochs: training goes on where the schedule ended (its last learning
/// rate), so that a converged network is adjusted rather than shaken.
pub fn fine_tuning(config: &TrainConfig, epochs_trained: u32, epochs: u32) -> TrainConfig {
    let mut c = config.clone();
    let t = &config.training;
    c.training.epochs = epochs;
    c.training.learning_rate = crate::optim::step_lr(
        t.learning_rate,
        t.lr_gamma,
        t.lr_step,
        epochs_trained.saturating_sub(1),
    );
    c
}

/// A fresh checkpoint like [`start`]'s whose initial weights are those of `trained` (to
/// fine-tune a network trained elsewhere, on the ideal backend say, in the loop on a chip);
/// `description` says where they came from and is kept in the checkpoint and the model's
/// provenance. `trained` must be a network of the configuration's data set and shape.
pub fn start_from(
    config: &TrainConfig,
    data: &DataSplits,
    substrate: Substrate,
    trained: &Model,
    description: String,
) -> Result<Checkpoint, TrainError> {
    let mut state = start(config, data, substrate)?;
    let shape = |m: &Model| {
        let mut s = vec![m.n_inputs];
        s.extend(m.layers.iter().map(|l| l.size));
        s
    };
    if trained.dataset != config.dataset || shape(trained) != shape(&state.model) {
        return Err(TrainError::Model(format!(
            "the initial weights are of a {} network of layer sizes {:?}; this configuration trains a {} network of layer sizes {:?} (inputs first)",
            trained.dataset,
            shape(trained),
            config.dataset,
            shape(&state.model)
        )));
    }
    state.model.set_weights(&trained.weights())?;
    state.started_from = Some(description);
    Ok(state)
}

/// Trains from `state` (a fresh [`start`] or a loaded checkpoint) until `config.training.epochs`
/// epochs are done, writing a checkpoint after every epoch when `checkpoint_path` is given.
pub fn run(
    state: Checkpoint,
    data: &DataSplits,
    backend: &mut dyn Backend,
    checkpoint_path: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    let checkpoints = Checkpoints {
        path: checkpoint_path,
        every_batches: None,
    };
    run_with(state, data, backend, checkpoints, observer)
}

/// [`run`], writing checkpoints as `checkpoints` says (also between batches). A run resumed
/// from a checkpoint written between batches gives the bit-identical result.
pub fn run_with(
    mut state: Checkpoint,
    data: &DataSplits,
    backend: &mut dyn Backend,
    checkpoints: Checkpoints<'_>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    let checkpoint_path = checkpoints.path;
    let config = state.config.clone();
    let loss = LossParams::from(&config.training);
    check_compatible(&state.model, &data.train)?;
    match state.noise_position {
        Some(position) => backend.set_noise_position(position)?,
        // A new run starts the backend's pseudo-random trial noise from its beginning, so that
        // it does not depend on what the backend (a long-running device, say) ran before.
        None if state.history.is_empty() && backend.noise_position().is_some() => {
            backend.set_noise_position(0)?;
        }
        None => {}
    }
    if state.history.is_empty() {
        let started = Instant::now();
        backend.configure(&state.model.to_network())?;
        let val = evaluate(backend, &state.model, &data.validation, &loss, None)?;
        let m = EpochMetrics {
            epoch: 0,
            learning_rate: config.training.learning_rate,
            train_loss: None,
            train_accuracy: None,
            validation_loss: val.loss,
            validation_accuracy: val.accuracy,
            bumped_batches: 0,
            chopped_gradients: 0,
            seconds: started.elapsed().as_secs_f64(),
            hardware_seconds: val.hardware_time_us.map(|us| us * 1e-6),
        };
        tracing::info!(
            accuracy = val.accuracy,
            loss = val.loss,
            "validation before training"
        );
        observer.epoch_finished(&m);
        state.history.push(m);
    }
    while state.epoch < config.training.epochs {
        let metrics = train_epoch(&mut state, data, backend, &loss, observer, checkpoints)?;
        tracing::info!(
            epoch = metrics.epoch,
            train_loss = metrics.train_loss,
            validation_accuracy = metrics.validation_accuracy,
            bumped = metrics.bumped_batches,
            chopped = metrics.chopped_gradients,
            "epoch done"
        );
        observer.epoch_finished(&metrics);
        if state
            .best
            .as_ref()
            .is_none_or(|b| metrics.validation_accuracy > b.validation_accuracy)
        {
            state.best = Some(BestEpoch {
                epoch: metrics.epoch,
                validation_accuracy: metrics.validation_accuracy,
                weights: state.model.weights(),
            });
        }
        state.history.push(metrics);
        state.noise_position = backend.noise_position();
        if let Some(path) = checkpoint_path {
            state.save(path)?;
            observer.checkpoint_saved(path);
        }
        if state.epoch < config.training.epochs && observer.should_stop() {
            return Err(TrainError::Interrupted(Box::new(state)));
        }
    }
    let mut model = state.model.clone();
    let last = state.history.last().map_or(0.0, |m| m.validation_accuracy);
    let (selected_epoch, validation_accuracy) = match (&state.best, config.training.select) {
        (Some(best), ModelSelection::BestValidation) => {
            model.set_weights(&best.weights)?;
            (best.epoch, best.validation_accuracy)
        }
        _ => (state.epoch, last),
    };
    backend.configure(&model.to_network())?;
    let test_noise_position = backend.noise_position();
    let test = evaluate(backend, &model, &data.test, &loss, None)?;
    model.provenance = Some(Provenance {
        test_noise_position,
        ..state.provenance(selected_epoch, validation_accuracy, Some(test.accuracy))
    });
    Ok(TrainOutcome {
        model,
        history: state.history,
        selected_epoch,
        validation_accuracy,
        test_accuracy: test.accuracy,
        test_loss: test.loss,
    })
}

/// Input times of a batch: its images shifted as the epoch drew, then encoded, then the epoch's
/// jitter applied in batch order. Jittered times are reflected back into the substrate's sample
/// window `[0, window)` at both ends (a time pushed below 0 to `-t`, one pushed past the
/// window's end `w` to `2 w - t`) and, should the jitter exceed the window itself, clamped into
/// it; without a window only at 0. A silent input (`+inf`) stays silent (its noise is drawn all
/// the same, so the stream does not depend on which inputs are silent).
fn batch_inputs(
    model: &Model,
    data: &Dataset,
    indices: &[usize],
    shifts: &Shifts,
    jitter: f64,
    rng: &mut Pcg64Mcg,
    window: Option<f64>,
) -> Result<InputBatch, TrainError> {
    let mut times = Vec::with_capacity(indices.len() * model.n_inputs);
    let mut shifted = Vec::new();
    for &i in indices {
        match shifts.of(i) {
            Some((side, dx, dy)) => {
                shifted.clear();
                images::shift_into(data.sample(i), side, dx, dy, &mut shifted);
                model.encode_into(&shifted, &mut times);
            }
            None => model.encode_into(data.sample(i), &mut times),
        }
    }
    if jitter > 0.0 {
        for t in &mut times {
            let noise: f64 = StandardNormal.sample(rng);
            if !t.is_finite() {
                continue;
            }
            *t = (*t + jitter * noise).abs();
            if let Some(w) = window
                && *t >= w
            {
                *t = (2.0 * w - *t).clamp(0.0, w.next_down());
            }
        }
    }
    Ok(InputBatch::new(model.n_inputs, times)?)
}

/// The random translations of one epoch's training images, one per sample (by index, so a
/// resumed epoch draws the same ones whatever batch it resumes at).
struct Shifts {
    side: usize,
    offsets: Vec<(i32, i32)>,
}

impl Shifts {
    /// The epoch's shifts for `n` samples (none when `config` asks for none).
    fn draw(config: &TrainConfig, n: usize, epoch: u32) -> Shifts {
        // Validated below the image side, so it fits.
        let max = i32::try_from(config.training.shift).unwrap_or(i32::MAX);
        let side = config.dataset.image_side(&config.data).unwrap_or(0);
        if max == 0 || side == 0 {
            return Shifts {
                side,
                offsets: Vec::new(),
            };
        }
        let mut rng =
            Pcg64Mcg::seed_from_u64(seeds::derive(config.seed, Stream::Shift, u64::from(epoch)));
        let offsets = (0..n)
            .map(|_| (rng.random_range(-max..=max), rng.random_range(-max..=max)))
            .collect();
        Shifts { side, offsets }
    }

    /// Side of the images and the column and row shift of sample `i`, if it is shifted.
    fn of(&self, i: usize) -> Option<(usize, isize, isize)> {
        self.offsets
            .get(i)
            .filter(|&&d| d != (0, 0))
            .map(|&(dx, dy)| (self.side, dx as isize, dy as isize))
    }
}

fn train_epoch(
    state: &mut Checkpoint,
    data: &DataSplits,
    backend: &mut dyn Backend,
    loss: &LossParams,
    observer: &mut dyn Observer,
    checkpoints: Checkpoints<'_>,
) -> Result<EpochMetrics, TrainError> {
    let started = Instant::now();
    let resumed = state.partial.take();
    let config = state.config.clone();
    let config = &config;
    let t = &config.training;
    let epoch = state.epoch; // 0-based index of the epoch being trained
    let lr = step_lr(t.learning_rate, t.lr_gamma, t.lr_step, epoch);
    let train = &data.train;

    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut Pcg64Mcg::seed_from_u64(seeds::derive(
        config.seed,
        Stream::Shuffle,
        u64::from(epoch),
    )));
    let batches: Vec<&[usize]> = order.chunks(t.batch_size).collect();
    let shifts = Shifts::draw(config, train.len(), epoch);
    observer.epoch_started(epoch + 1, t.epochs, batches.len());

    let max_weight = backend.capabilities().max_weight;
    let dale = state.config.network.dale;
    let window = backend.capabilities().sample_window;
    let mut progress = resumed.unwrap_or_else(|| PartialEpoch {
        batches_done: 0,
        jitter_rng: Pcg64Mcg::seed_from_u64(seeds::derive(
            config.seed,
            Stream::Jitter,
            u64::from(epoch),
        )),
        losses: Vec::new(),
        correct: 0,
        shown: 0,
        bumped: 0,
        chopped: 0,
        seconds: 0.0,
        hardware_us: Some(0.0),
    });
    let skip = progress.batches_done;
    let mut backward = Backward::new();
    for (b, indices) in batches.iter().enumerate().skip(skip) {
        // Every batch after the first changes only the weights.
        let network = state.model.to_network();
        backend.update_weights(&network)?;
        // The step applies to weights within the substrate's range; after the first batch they
        // are (each batch ends clipped), before it they may not be: that batch ran with them as
        // they were, and the chip clips them itself.
        if b == skip {
            clip_weights(&mut state.model, max_weight, dale);
        }
        let inputs = batch_inputs(
            &state.model,
            train,
            indices,
            &shifts,
            t.input_jitter,
            &mut progress.jitter_rng,
            window,
        )?;
        let out = backend.run(&inputs, Record::AllLayers)?;
        progress.hardware_us =
            crate::eval::add_hardware_time(progress.hardware_us, out.stats.hardware_time_us);
        let spikes = &out.spikes;
        let n = indices.len();
        let batch_correct = (0..n)
            .filter(|&k| prediction(spikes.output(k)) == Some(train.labels[indices[k]] as usize))
            .count();
        progress.correct += batch_correct;
        progress.shown += n;

        if let Some(layer) = layer_to_bump(&network, spikes, n, &t.max_missing_spikes) {
            let value = if t.bump_exponential && state.bump.last_layer == Some(layer) {
                state.bump.value * 2.0
            } else {
                t.weight_bump
            };
            let silent = bump_silent(
                &mut state.model.layers[layer].weights,
                spikes,
                n,
                layer,
                value,
            );
            tracing::debug!(
                epoch = epoch + 1,
                batch = b + 1,
                layer,
                silent,
                value,
                "bumped the incoming weights of the layer's silent neurons"
            );
            state.bump = BumpState {
                value,
                last_layer: Some(layer),
            };
            progress.bumped += 1;
            observer.batch_finished(b, None, batch_correct as f64 / n as f64);
        } else {
            state.bump.last_layer = None;
            let params = BackwardParams {
                loss: *loss,
                scale: 1.0 / n as f64,
                max_dw_norm: t.max_dw_norm,
            };
            let (grads, batch_loss, batch_chopped) = batch_gradient(
                &mut backward,
                &network,
                &inputs,
                spikes,
                train,
                indices,
                &params,
            );
            let weights = state.model.layers.iter_mut().map(|l| &mut l.weights);
            state.adam.step(weights, grads, lr);
            let mean_loss = batch_loss / n as f64;
            let diverged = |what: String| TrainError::Diverged {
                epoch: epoch + 1,
                batch: b + 1,
                what,
                learning_rate: lr,
            };
            if !mean_loss.is_finite() {
                return Err(diverged(format!("the batch's mean loss is {mean_loss}")));
            }
            if let Some((l, w)) = state
                .model
                .layers
                .iter()
                .enumerate()
                .find_map(|(l, layer)| {
                    layer
                        .weights
                        .iter()
                        .find(|w| !w.is_finite())
                        .map(|w| (l, *w))
                })
            {
                return Err(diverged(format!("a weight of layer {l} became {w}")));
            }
            progress.losses.push(mean_loss);
            progress.chopped += batch_chopped;
            observer.batch_finished(b, Some(mean_loss), batch_correct as f64 / n as f64);
        }
        clip_weights(&mut state.model, max_weight, dale);
        progress.batches_done = b + 1;
        let stop = observer.should_stop();
        let due = stop
            || checkpoints
                .every_batches
                .is_some_and(|k| progress.batches_done.is_multiple_of(k.get()));
        if due && progress.batches_done < batches.len() {
            let mut saved = progress.clone();
            saved.seconds += started.elapsed().as_secs_f64();
            state.partial = Some(saved);
            state.noise_position = backend.noise_position();
            if let Some(path) = checkpoints.path {
                state.save(path)?;
                observer.checkpoint_saved(path);
            }
            if stop {
                return Err(TrainError::Interrupted(Box::new(state.clone())));
            }
            state.partial = None;
        }
    }
    state.epoch += 1;
    let PartialEpoch {
        losses,
        correct,
        shown,
        bumped,
        chopped,
        seconds,
        hardware_us,
        ..
    } = progress;

    backend.update_weights(&state.model.to_network())?;
    let val = evaluate(backend, &state.model, &data.validation, loss, None)?;
    Ok(EpochMetrics {
        epoch: state.epoch,
        learning_rate: lr,
        train_loss: (!losses.is_empty()).then(|| losses.iter().sum::<f64>() / losses.len() as f64),
        train_accuracy: Some(correct as f64 / shown.max(1) as f64),
        validation_loss: val.loss,
        validation_accuracy: val.accuracy,
        bumped_batches: bumped,
        chopped_gradients: chopped,
        seconds: seconds + started.elapsed().as_secs_f64(),
        hardware_seconds: crate::eval::add_hardware_time(hardware_us, val.hardware_time_us)
            .map(|us| us * 1e-6),
    })
}

/// Keeps float weights within what the substrate can realise (the reference does the same on
/// BrainScaleS-2): beyond it the gradient would move weights the chip never sees. Under Dale's
/// law, also projects every hidden neuron's outgoing weights back onto its sign.
fn clip_weights(model: &mut Model, max_weight: Option<f64>, dale: Option<crate::config::Dale>) {
    if let Some(m) = max_weight {
        for layer in &mut model.layers {
            layer.weights.mapv_inplace(|w| w.clamp(-m, m));
        }
    }
    if let Some(d) = dale {
        for layer in model.layers.iter_mut().skip(1) {
            for (j, mut column) in layer.weights.columns_mut().into_iter().enumerate() {
                match d.sign(j) {
                    s if s > 0.0 => column.mapv_inplace(|w| w.max(0.0)),
                    s if s < 0.0 => column.mapv_inplace(|w| w.min(0.0)),
                    _ => {}
                }
            }
        }
    }
}

/// The first layer whose fraction of silent (sample, neuron) pairs exceeds its tolerance.
fn layer_to_bump(
    network: &spikeloop_backend::Network,
    spikes: &spikeloop_backend::SpikeTimes,
    n: usize,
    max_missing: &[f64],
) -> Option<usize> {
    network.layers.iter().enumerate().find_map(|(l, layer)| {
        let silent: usize = (0..n)
            .map(|s| {
                spikes
                    .layer(s, l)
                    .map_or(0, |t| t.iter().filter(|t| !t.is_finite()).count())
            })
            .sum();
        (silent as f64 / (n * layer.size) as f64 > max_missing[l]).then_some(l)
    })
}

/// Adds `value` to every incoming weight (`weights`, one row per neuron) of each neuron of
/// `layer` that was silent in any of the first `n` samples; returns how many neurons that was.
fn bump_silent(
    weights: &mut Array2<f64>,
    spikes: &spikeloop_backend::SpikeTimes,
    n: usize,
    layer: usize,
    value: f64,
) -> usize {
    let mut bumped = 0;
    for (j, mut row) in weights.rows_mut().into_iter().enumerate() {
        let silent = (0..n).any(|s| spikes.layer(s, layer).is_some_and(|t| !t[j].is_finite()));
        if silent {
            row += value;
            bumped += 1;
        }
    }
    bumped
}

/// Sum of the per-sample gradients of a batch, its summed loss and the number of chopped
/// gradients ([`Backward::batch`]).
///
/// `spikes` must hold every layer of every sample of `inputs`; `indices` are the data set rows
/// of the samples (for their labels).
pub fn batch_gradient<'b>(
    backward: &'b mut Backward,
    network: &spikeloop_backend::Network,
    inputs: &InputBatch,
    spikes: &spikeloop_backend::SpikeTimes,
    data: &Dataset,
    indices: &[usize],
    params: &BackwardParams,
) -> (&'b [Array2<f64>], f64, u64) {
    let samples: Vec<SampleRef<'_>> = indices
        .iter()
        .enumerate()
        .map(|(k, &row)| SampleRef {
            inputs: inputs.sample(k),
            measured: spikes.sample(k),
            label: data.labels[row] as usize,
        })
        .collect();
    let (grads, outcome) = backward.batch(network, &samples, params);
    (grads, outcome.loss, outcome.chopped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spikeloop_data::{DatasetKind, Split, digits};

    fn digits_config(shift: u32) -> TrainConfig {
        let mut config = TrainConfig {
            dataset: DatasetKind::Digits,
            ..TrainConfig::default()
        };
        config.training.shift = shift;
        config
    }

    #[test]
    fn shifts_are_drawn_per_epoch_within_range_and_reproduce() {
        let config = digits_config(1);
        let a = Shifts::draw(&config, 900, 3);
        assert_eq!(a.side, 8);
        assert_eq!(a.offsets, Shifts::draw(&config, 900, 3).offsets);
        assert_ne!(a.offsets, Shifts::draw(&config, 900, 4).offsets);
        // All nine offsets of a one-pixel shift occur, none beyond it.
        let mut seen = std::collections::BTreeSet::new();
        for &(dx, dy) in &a.offsets {
            assert!(dx.abs() <= 1 && dy.abs() <= 1, "({dx}, {dy})");
            seen.insert((dx, dy));
        }
        assert_eq!(seen.len(), 9);
        assert!(Shifts::draw(&digits_config(0), 900, 3).of(0).is_none());
    }

    #[test]
    fn a_batch_sees_its_images_shifted_as_drawn() {
        let config = digits_config(2);
        let data = digits(Split::Train).expect("digits");
        let model =
            Model::initialise(&config, data.n_features(), data.class_names.clone()).expect("model");
        let shifts = Shifts::draw(&config, data.len(), 0);
        let indices = [0, 5, 17];
        let mut rng = Pcg64Mcg::seed_from_u64(0);
        let batch =
            batch_inputs(&model, &data, &indices, &shifts, 0.0, &mut rng, None).expect("batch");
        let mut moved = 0;
        for (k, &i) in indices.iter().enumerate() {
            let mut expected = Vec::new();
            let mut image = Vec::new();
            match shifts.of(i) {
                Some((side, dx, dy)) => {
                    images::shift_into(data.sample(i), side, dx, dy, &mut image);
                    moved += 1;
                }
                None => image.extend_from_slice(data.sample(i)),
            }
            model.encode_into(&image, &mut expected);
            assert_eq!(batch.sample(k), &expected[..], "sample {i}");
        }
        assert!(moved > 0, "none of the three samples was shifted");
        let unshifted = Shifts::draw(&digits_config(0), data.len(), 0);
        let plain =
            batch_inputs(&model, &data, &indices, &unshifted, 0.0, &mut rng, None).expect("batch");
        assert_ne!(plain.as_slice(), batch.as_slice());
    }
}
