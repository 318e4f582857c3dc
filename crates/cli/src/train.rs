//! `spikeloop train`: configuration, run directory, training, and the files a run leaves.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use spikeloop_data::DatasetKind;
use spikeloop_trainer::train::{self, Checkpoint};
use spikeloop_trainer::{EpochMetrics, Preset, TrainConfig, load_data};

use crate::backend::{BackendArgs, PresetArg};
use crate::progress::Progress;

/// Arguments of `spikeloop train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// TOML configuration file (see `spikeloop config`); flags below override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Defaults to start from [default: chip on the emulator, software on the ideal backend].
    #[arg(long, value_enum, value_name = "PRESET")]
    preset: Option<PresetArg>,
    /// Data set to train on.
    #[arg(long, value_name = "NAME")]
    dataset: Option<DatasetKind>,
    /// Number of epochs (at least 1).
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = clap::value_parser!(u32).range(1..))]
    epochs: Option<u32>,
    /// Training seed (weight initialisation, batch order, input jitter); at most
    /// 9223372036854775807 (the largest integer config.toml holds).
    #[arg(long, value_name = "N", value_parser = crate::backend::seed_parser())]
    seed: Option<u64>,
    /// Samples per gradient step.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: Option<u64>,
    /// Initial learning rate of Adam.
    #[arg(long, value_name = "RATE")]
    learning_rate: Option<f64>,
    /// Hidden layer sizes, comma separated (e.g. 120 or 200,100).
    #[arg(long, value_name = "SIZES", value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Standard deviation of Gaussian noise on training input times, in tau_s (0 = off).
    #[arg(long, value_name = "SIGMA")]
    input_jitter: Option<f64>,
    /// Directory for the model, metrics, plot and checkpoint [default: runs/<dataset>-seed<seed>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the interrupted run in the output directory from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Also write the checkpoint after every N batches within an epoch (default: after each
    /// epoch only), so that a run stopped by a flaky device loses at most N batches. Does not
    /// change the result.
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<std::num::NonZeroUsize>,
    /// Overwrite a finished or interrupted run in the output directory.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// No progress bar; print only the final result.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

impl TrainArgs {
    fn overrides_given(&self) -> bool {
        self.config.is_some()
            || self.preset.is_some()
            || self.dataset.is_some()
            || self.seed.is_some()
            || self.batch_size.is_some()
            || self.learning_rate.is_some()
            || self.hidden.is_some()
            || self.input_jitter.is_some()
    }

    /// Applies the flags on top of `config`.
    fn apply(&self, config: &mut TrainConfig) -> anyhow::Result<()> {
        if let Some(d) = self.dataset {
            config.dataset = d;
        }
        if let Some(e) = self.epochs {
            config.training.epochs = e;
        }
        if let Some(s) = self.seed {
            config.seed = s;
        }
        if let Some(b) = self.batch_size {
            config.training.batch_size = usize::try_from(b).context("--batch-size is too large")?;
        }
        if let Some(lr) = self.learning_rate {
            config.training.learning_rate = lr;
        }
        if let Some(h) = &self.hidden {
            if h.len() != config.network.hidden.len() {
                // Keep per-layer lists consistent with the new depth: repeat the hidden-layer
                // values of the first hidden layer, keep the output layer's.
                let resize = |v: &mut Vec<f64>| {
                    let (first, last) = (v[0], v[v.len() - 1]);
                    *v = std::iter::repeat_n(first, h.len()).chain([last]).collect();
                };
                resize(&mut config.network.weight_init_mean);
                resize(&mut config.network.weight_init_sd);
                resize(&mut config.training.max_missing_spikes);
            }
            config.network.hidden = h.clone();
        }
        if let Some(j) = self.input_jitter {
            config.training.input_jitter = j;
        }
        config.validate()?;
        Ok(())
    }
}

/// Files of a run directory.
struct RunFiles {
    dir: PathBuf,
}

impl RunFiles {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    fn checkpoint(&self) -> PathBuf {
        self.path("checkpoint.json")
    }
    fn model(&self) -> PathBuf {
        self.path("model.json")
    }
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let preset = args
        .preset
        .map_or_else(|| args.backend.default_preset(), Preset::from);
    let mut config = match &args.config {
        Some(path) => TrainConfig::load_with_preset(path, preset)?,
        None => preset.config(),
    };
    args.apply(&mut config)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-seed{}", config.dataset, config.seed)));
    let files = RunFiles { dir };
    let mut backend = args.backend.build()?;
    let backend_name = args.backend.describe(backend.as_ref())?;

    let state = if args.resume {
        resume_state(&args, &files, config, &backend_name)?
    } else {
        prepare_fresh_dir(&files, args.force)?;
        let data = load_data(&config)?;
        train::start(&config, &data, &backend_name)?
    };
    let config = state.config.clone();
    std::fs::write(files.path("config.toml"), config.to_toml())
        .with_context(|| format!("could not write {}", files.path("config.toml").display()))?;
    let data = load_data(&config)?;

    let topology = format!(
        "{}-{}-{}",
        (data.train.n_features + config.network.bias_times.len()) * config.encoding.repeat,
        config
            .network
            .hidden
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("-"),
        data.train.n_classes
    );
    if !args.quiet {
        errln!(
            "training {} {topology} ({} inputs + {} bias{}) on {} for {} epochs (seed {}) -> {}",
            config.dataset,
            data.train.n_features,
            config.network.bias_times.len(),
            if config.encoding.repeat > 1 {
                format!(", each fed {} times", config.encoding.repeat)
            } else {
                String::new()
            },
            backend_name,
            config.training.epochs,
            config.seed,
            files.dir.display()
        );
    }
    let started = Instant::now();
    let mut progress = Progress::new(config.training.epochs, state.epoch, args.quiet);
    let checkpoint = files.checkpoint();
    let checkpoints = train::Checkpoints {
        path: Some(&checkpoint),
        every_batches: args.checkpoint_every,
    };
    let outcome = train::run_with(state, &data, backend.as_mut(), checkpoints, &mut progress)?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();

    outcome.model.save(&files.model())?;
    write_metrics(&files.path("metrics.csv"), &outcome.history)?;
    let plot = files.path("training.png");
    let title = format!(
        "{} {topology} on {}, seed {}",
        config.dataset, backend_name, config.seed
    );
    if let Err(e) = plot_history(&plot, &outcome.history, &title) {
        tracing::warn!("could not draw {}: {e}", plot.display());
    }
    let last = outcome
        .history
        .last()
        .context("training produced no metrics")?;
    outln!(
        "validation accuracy {:.2} %   test accuracy {:.2} %   (weights of epoch {} of {}, {:.1} s)",
        100.0 * outcome.validation_accuracy,
        100.0 * outcome.test_accuracy,
        outcome.selected_epoch,
        last.epoch,
        seconds
    );
    if !args.quiet {
        outln!(
            "wrote {} (model), metrics.csv, training.png, checkpoint.json, config.toml in {}",
            files.model().display(),
            files.dir.display()
        );
    }
    Ok(())
}

fn prepare_fresh_dir(files: &RunFiles, force: bool) -> anyhow::Result<()> {
    let existing = [files.model(), files.checkpoint()]
        .into_iter()
        .find(|p| p.exists());
    if let Some(p) = existing {
        if !force {
            bail!(
                "{} already holds a run ({} exists); continue it with --resume, keep it and choose another directory with --out, or replace it with --force",
                files.dir.display(),
                p.display()
            );
        }
        for p in [files.model(), files.checkpoint()] {
            if p.exists() {
                std::fs::remove_file(&p)
                    .with_context(|| format!("could not remove {}", p.display()))?;
            }
        }
    }
    std::fs::create_dir_all(&files.dir)
        .with_context(|| format!("could not create {}", files.dir.display()))
}

fn resume_state(
    args: &TrainArgs,
    files: &RunFiles,
    requested: TrainConfig,
    backend: &str,
) -> anyhow::Result<Checkpoint> {
    let path = files.checkpoint();
    if !path.exists() {
        bail!(
            "nothing to resume: {} does not exist (start a new run without --resume)",
            path.display()
        );
    }
    let mut state = Checkpoint::load(&path)?;
    if state.backend != backend {
        bail!(
            "the run in {} trains on {}, not on {backend}; resume it with the same --backend or --device, --chip-seed, --run-seed and --emulator-config",
            files.dir.display(),
            state.backend,
        );
    }
    if args.overrides_given() {
        let mut a = requested.clone();
        a.training.epochs = state.config.training.epochs;
        if a != state.config {
            bail!(
                "the run in {} was started with a different configuration (see its config.toml); resume without --config and training flags (only --epochs may change), or start a new run with --out",
                files.dir.display()
            );
        }
    }
    if let Some(e) = args.epochs {
        if e < state.epoch {
            bail!(
                "--epochs {e} is less than the {} epochs the run has already completed",
                state.epoch
            );
        }
        state.config.training.epochs = e;
    }
    if !args.quiet {
        errln!(
            "resuming {} after epoch {}",
            files.dir.display(),
            state.epoch
        );
    }
    Ok(state)
}

fn write_metrics(path: &Path, history: &[EpochMetrics]) -> anyhow::Result<()> {
    let mut csv = String::from(
        "epoch,learning_rate,train_loss,train_accuracy,validation_loss,validation_accuracy,bumped_batches,chopped_gradients,seconds\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for m in history {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{:.4}",
            m.epoch,
            m.learning_rate,
            opt(m.train_loss),
            opt(m.train_accuracy),
            m.validation_loss,
            m.validation_accuracy,
            m.bumped_batches,
            m.chopped_gradients,
            m.seconds
        );
    }
    std::fs::write(path, csv).with_context(|| format!("could not write {}", path.display()))
}

fn plot_history(path: &Path, history: &[EpochMetrics], title: &str) -> anyhow::Result<()> {
    let epochs: Vec<f64> = history.iter().map(|m| f64::from(m.epoch)).collect();
    let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let train_loss: Vec<f64> = history.iter().map(|m| nan(m.train_loss)).collect();
    let train_accuracy: Vec<f64> = history.iter().map(|m| nan(m.train_accuracy)).collect();
    let validation_loss: Vec<f64> = history.iter().map(|m| m.validation_loss).collect();
    let validation_accuracy: Vec<f64> = history.iter().map(|m| m.validation_accuracy).collect();
    spikeloop_plot::training_curves_png(
        path,
        &spikeloop_plot::TrainingCurves {
            title,
            epochs: &epochs,
            train_loss: &train_loss,
            validation_loss: &validation_loss,
            train_accuracy: &train_accuracy,
            validation_accuracy: &validation_accuracy,
        },
    )?;
    Ok(())
}
