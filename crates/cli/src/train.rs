//! `spikeloop train`: configuration, run directory, training, and the files a run leaves.

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use spikeloop_backend::{BackendError, Substrate};
use spikeloop_data::DatasetKind;
use spikeloop_trainer::train::{self, Checkpoint};
use spikeloop_trainer::{EpochMetrics, Preset, TrainConfig, TrainError, load_data};

use crate::backend::{BackendArgs, PresetArg};
use crate::progress::Progress;

/// The configuration flags `train` and `bench` share: data set, network, seed.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// TOML configuration file (see `spikeloop config`); flags below override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Defaults to start from [default: chip on the emulator, software on the ideal backend].
    #[arg(long, value_enum, value_name = "PRESET")]
    preset: Option<PresetArg>,
    /// Data set: yin-yang, digits, mnist or fashion-mnist.
    #[arg(long, value_name = "NAME")]
    dataset: Option<DatasetKind>,
    /// Directory of the IDX files of mnist or fashion-mnist (plain or .gz) [default for
    /// fashion-mnist: where Debian's dataset-fashion-mnist installs them].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Down-scale 28x28 images to 16x16 (centre 24x24 crop, then area resize), as the
    /// reference hardware experiments did.
    #[arg(long)]
    downscale_16: bool,
    /// Training images kept for validation [default: the last 10,000 of 60,000, or the last
    /// sixth of a smaller training file].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    validation: Option<u64>,
    /// Blank pixels (value 0) send no spike [default: every pixel spikes, a blank one last].
    #[arg(long)]
    blank_silent: bool,
    /// Training seed (weight initialisation, batch order, input jitter); at most
    /// 9223372036854775807 (the largest integer config.toml holds).
    #[arg(long, value_name = "N", value_parser = crate::backend::seed_parser())]
    seed: Option<u64>,
    /// Hidden layer sizes, comma separated (e.g. 120 or 400,400,400,400).
    #[arg(long, value_name = "SIZES", value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Dale's law: every hidden layer split into E excitatory and I inhibitory neurons whose
    /// outgoing weights keep their sign (e.g. 300:100 for layers of 400).
    #[arg(long, value_name = "E:I")]
    dale: Option<spikeloop_trainer::Dale>,
}

impl NetworkArgs {
    /// True when any flag is given.
    fn given(&self) -> bool {
        self.config.is_some()
            || self.preset.is_some()
            || self.dataset.is_some()
            || self.data_dir.is_some()
            || self.downscale_16
            || self.validation.is_some()
            || self.blank_silent
            || self.seed.is_some()
            || self.hidden.is_some()
            || self.dale.is_some()
    }

    /// The configuration: the file or the preset (by default the one suited to the backend),
    /// with the flags applied (not yet validated). A preset run on a chip tolerates a few
    /// silent output neurons ([`TrainConfig::suit_to_chip`]); a file is taken as written.
    pub fn config(
        &self,
        capabilities: &spikeloop_backend::Capabilities,
    ) -> anyhow::Result<TrainConfig> {
        let preset = self
            .preset
            .map_or_else(|| Preset::suited_to(capabilities), Preset::from);
        let mut config = match &self.config {
            Some(path) => TrainConfig::load_with_preset(path, preset)?,
            None => preset.config(),
        };
        self.apply(&mut config)?;
        if self.config.is_none() {
            config.initialise_for_fan_in();
            if capabilities.weight_bits.is_some() {
                config.suit_to_chip();
            }
        }
        Ok(config)
    }

    /// Applies the flags on top of `config`.
    fn apply(&self, config: &mut TrainConfig) -> anyhow::Result<()> {
        if let Some(d) = self.dataset {
            config.dataset = d;
        }
        if let Some(d) = &self.data_dir {
            config.data.dir = Some(d.clone());
        }
        if self.downscale_16 {
            config.data.downscale_16 = true;
        }
        if let Some(v) = self.validation {
            config.data.validation = Some(usize::try_from(v).context("--validation is too large")?);
        }
        if self.blank_silent {
            config.encoding.blank_silent = true;
        }
        if let Some(s) = self.seed {
            config.seed = s;
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
        if let Some(d) = self.dale {
            config.network.dale = Some(d);
        }
        Ok(())
    }
}

/// Arguments of `spikeloop train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Number of epochs (at least 1).
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = clap::value_parser!(u32).range(1..))]
    epochs: Option<u32>,
    /// Samples per gradient step.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: Option<u64>,
    /// Initial learning rate of Adam.
    #[arg(long, allow_negative_numbers = true, value_name = "RATE")]
    learning_rate: Option<f64>,
    /// Standard deviation of Gaussian noise on training input times, in tau_s (0 = off).
    #[arg(long, allow_negative_numbers = true, value_name = "SIGMA")]
    input_jitter: Option<f64>,
    /// Shift every training image by up to N pixels in each direction, drawn per sample and
    /// epoch (image data sets; 0 = off).
    #[arg(long, value_name = "N")]
    shift: Option<u32>,
    /// Directory for the model, metrics, plot and checkpoint [default:
    /// runs/<dataset>-<substrate>-seed<seed>, the substrate being ideal, chip<N> (with -run<M>
    /// for a run seed other than 1) or device].
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
    /// Replace a finished or interrupted run in the output directory. The old run is moved
    /// aside and removed only once the new one has written its first checkpoint; a new run that
    /// fails before that puts the old one back.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// No progress bar; print only the final result.
    #[arg(long, short)]
    quiet: bool,
    /// Also write the training figure as SVG (training.svg), beside training.png.
    #[arg(long)]
    svg: bool,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    calibration: crate::calibrate::CalibrationArgs,
}

impl TrainArgs {
    fn overrides_given(&self) -> bool {
        self.network.given()
            || self.batch_size.is_some()
            || self.learning_rate.is_some()
            || self.input_jitter.is_some()
            || self.shift.is_some()
    }

    /// The configuration the flags ask for.
    fn config(
        &self,
        capabilities: &spikeloop_backend::Capabilities,
    ) -> anyhow::Result<TrainConfig> {
        let mut config = self.network.config(capabilities)?;
        if let Some(e) = self.epochs {
            config.training.epochs = e;
        }
        if let Some(b) = self.batch_size {
            config.training.batch_size = usize::try_from(b).context("--batch-size is too large")?;
        }
        if let Some(lr) = self.learning_rate {
            config.training.learning_rate = lr;
        }
        if let Some(j) = self.input_jitter {
            config.training.input_jitter = j;
        }
        if let Some(s) = self.shift {
            config.training.shift = s;
        }
        // A resumed run keeps the configuration it started with: flags given with --resume are
        // compared with it (and refused if they differ), not checked on their own against the
        // preset's data set, whose complaint would not be about the run.
        if !self.resume {
            config.validate()?;
        }
        Ok(config)
    }
}

/// The files a run writes into its directory (and `--force` replaces).
const RUN_FILES: [&str; 5] = [
    "model.json",
    "checkpoint.json",
    "metrics.csv",
    "training.png",
    "config.toml",
];

/// Files of a run directory.
struct RunFiles {
    dir: PathBuf,
}

/// The end of a run that was asked to stop (Ctrl-C): not a failure, but not a finished run.
#[derive(Debug)]
pub struct Stopped(pub String);

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stopped {}

/// An earlier run moved aside by `--force`: put back when dropped, unless the new run wrote its
/// first checkpoint (then it is removed).
struct Replaced {
    dir: PathBuf,
    aside: PathBuf,
    moved: Vec<&'static str>,
    superseded: Rc<Cell<bool>>,
}

impl Replaced {
    /// Moves the run files of `dir` into a hidden directory beside them.
    fn set_aside(dir: &Path) -> anyhow::Result<Replaced> {
        let aside = dir.join(format!(".replaced-{}", std::process::id()));
        spikeloop_files::create_dir(&aside)?;
        let mut replaced = Replaced {
            dir: dir.to_path_buf(),
            aside,
            moved: Vec::new(),
            superseded: Rc::new(Cell::new(false)),
        };
        for name in RUN_FILES {
            let from = dir.join(name);
            if from.exists() {
                std::fs::rename(&from, replaced.aside.join(name))
                    .with_context(|| format!("could not move {} aside", from.display()))?;
                replaced.moved.push(name);
            }
        }
        Ok(replaced)
    }

    /// Removes the old run for good once the new one has a checkpoint.
    fn remove_when_superseded(&self) -> impl FnOnce() + 'static {
        let (aside, superseded) = (self.aside.clone(), Rc::clone(&self.superseded));
        move || {
            superseded.set(true);
            let _ = std::fs::remove_dir_all(&aside);
        }
    }
}

impl Drop for Replaced {
    fn drop(&mut self) {
        if self.superseded.get() {
            return;
        }
        for name in &self.moved {
            let _ = std::fs::rename(self.aside.join(name), self.dir.join(name));
        }
        let _ = std::fs::remove_dir_all(&self.aside);
    }
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
    let mut backend = args.backend.build()?;
    let config = args.config(backend.capabilities())?;
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => PathBuf::from(format!(
            "runs/{}-{}-seed{}",
            config.dataset,
            backend.file_tag(),
            config.seed
        )),
    };
    let files = RunFiles { dir };
    let begin = if args.resume {
        if !files.checkpoint().exists() {
            bail!(
                "nothing to resume: {} does not exist (start a new run without --resume)",
                files.checkpoint().display()
            );
        }
        let state = Checkpoint::load(&files.checkpoint())?;
        // Compared before the chip is calibrated: a resume with other substrate options must
        // neither spend a calibration on another chip nor replace the one kept with the run.
        let recorded = crate::calibrate::without_calibration(&state.substrate);
        if let Some(why) = recorded.mismatch(&backend.substrate()) {
            return Err(substrate_refused(&files, &why));
        }
        Begin::Resumed(state)
    } else {
        // A new run's data is read before anything else happens (a chip's calibration, the
        // run directory), so that a missing or broken data file is reported at once and
        // leaves nothing behind.
        let data = load_data(&config)?;
        let replaced = prepare_fresh_dir(&files, args.force)?;
        Begin::New { data, replaced }
    };
    // An emulated chip is calibrated first (or its calibration kept in the run directory is
    // reused), as a real chip always is; a device takes --calibration FILE. A run that trained
    // uncalibrated continues uncalibrated.
    let recorded = match &begin {
        Begin::Resumed(state) => Some(&state.substrate),
        Begin::New { .. } => None,
    };
    let applied = crate::calibrate::for_recorded(
        backend.as_mut(),
        &args.calibration,
        recorded,
        &files.dir,
        args.backend.kind() == crate::backend::BackendKind::Emulator,
        args.quiet,
    )?;
    if let Some(a) = applied.as_ref().filter(|_| !args.quiet) {
        errln!("calibration: {}", a.describe());
    }
    let substrate = crate::calibrate::described(backend.substrate(), applied.as_ref());
    let (state, data, replaced) = match begin {
        Begin::New { data, replaced } => {
            let state = train::start(&config, &data, substrate.clone())?;
            (state, data, replaced)
        }
        Begin::Resumed(state) => {
            let state = resume_state(&args, &files, state, config, &substrate)?;
            let data = load_data(&state.config)?;
            (state, data, None)
        }
    };
    spikeloop_files::remove_stale_temporaries(&files.dir, &RUN_FILES);
    let config = state.config.clone();
    spikeloop_files::write_atomic(
        &files.path("config.toml"),
        config_toml(&config, &substrate).as_bytes(),
        "write the configuration",
    )?;

    let topology = format!(
        "{}-{}-{}",
        (data.train.n_features() + config.network.bias_times.len()) * config.encoding.repeat,
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
            data.train.n_features(),
            config.network.bias_times.len(),
            if config.encoding.repeat > 1 {
                format!(", each fed {} times", config.encoding.repeat)
            } else {
                String::new()
            },
            substrate.summary,
            config.training.epochs,
            config.seed,
            files.dir.display()
        );
    }
    let started = Instant::now();
    // Ctrl-C (or SIGTERM): finish the batch in progress, write the checkpoint and the best
    // model so far; a second Ctrl-C quits at once (the last checkpoint stays).
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if stop_flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        errln!("stopping after the batch in progress (Ctrl-C again quits at once; the last checkpoint stays)");
    })
    .context("could not install the Ctrl-C handler")?;
    let mut progress = Progress::new(config.training.epochs, state.epoch, args.quiet)
        .stop_when(stop)
        .write_metrics_to(files.path("metrics.csv"), state.history.clone());
    if let Some(r) = &replaced {
        progress = progress.on_first_checkpoint(r.remove_when_superseded());
    }
    let checkpoint = files.checkpoint();
    let checkpoints = train::Checkpoints {
        path: Some(&checkpoint),
        every_batches: args.checkpoint_every,
    };
    let result = train::run_with(state, &data, backend.as_mut(), checkpoints, &mut progress);
    progress.finish();
    drop(progress);
    drop(replaced);
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(TrainError::Interrupted(state)) => {
            let resume = resume_command(&args, &files);
            return Err(stopped(&files, &state, &topology, &resume, args.svg).into());
        }
        Err(TrainError::Backend(e)) if stops_the_device(&e) => {
            let what = if matches!(e, BackendError::Device { .. }) {
                "the device failed; once it answers again"
            } else {
                "the device went away; reconnect it, then"
            };
            return Err(anyhow::Error::new(TrainError::Backend(e)).context(format!(
                "training stopped because {what} continue the run with `{}` (it resumes from its last checkpoint)",
                resume_command(&args, &files)
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let seconds = started.elapsed().as_secs_f64();

    outcome.model.save(&files.model())?;
    write_metrics(&files.path("metrics.csv"), &outcome.history)?;
    let figure = Figure {
        title: format!(
            "{} {topology}, trained on {}",
            config.dataset, substrate.summary
        ),
        subtitle: seeds_line(config.seed, &substrate),
        selected_epoch: Some(outcome.selected_epoch),
        svg: args.svg,
    };
    if let Err(e) = figure.write(&files, &outcome.history) {
        tracing::warn!("could not draw the training figure: {e}");
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
            "wrote {} (model), metrics.csv, training.png{}, checkpoint.json, config.toml in {}",
            files.model().display(),
            if args.svg { ", training.svg" } else { "" },
            files.dir.display()
        );
    }
    Ok(())
}

/// Writes what a stopped run has (the best epoch's model, the metrics, the plot) and says what
/// it wrote.
fn stopped(
    files: &RunFiles,
    state: &Checkpoint,
    topology: &str,
    resume: &str,
    svg: bool,
) -> Stopped {
    let batches = state.partial.as_ref().map_or(0, |p| p.batches_done);
    let mut text = format!(
        "stopped after epoch {} and {batches} batches of the next, as asked; {} is written, continue with `{resume}`",
        state.epoch,
        files.checkpoint().display(),
    );
    let Some(best) = &state.best else {
        text.push_str("; no epoch had finished, so no model.json was written");
        return Stopped(text);
    };
    let mut model = state.model.clone();
    model.provenance = Some(state.provenance(best.epoch, best.validation_accuracy, None));
    match model
        .set_weights(&best.weights)
        .and_then(|()| model.save(&files.model()))
    {
        Ok(()) => {
            let _ = write!(
                text,
                "; {} holds the weights of epoch {}, the best so far (validation {:.2} %; not tested)",
                files.model().display(),
                best.epoch,
                100.0 * best.validation_accuracy
            );
        }
        Err(e) => {
            let _ = write!(text, "; the best model so far could not be written: {e}");
        }
    }
    let _ = write_metrics(&files.path("metrics.csv"), &state.history);
    let figure = Figure {
        title: format!(
            "{} {topology}, trained on {} (stopped after epoch {})",
            state.config.dataset, state.substrate.summary, state.epoch
        ),
        subtitle: seeds_line(state.config.seed, &state.substrate),
        selected_epoch: Some(best.epoch),
        svg,
    };
    let _ = figure.write(files, &state.history);
    Stopped(text)
}

/// Makes the run directory; an earlier run in it is refused, or with `force` set aside.
fn prepare_fresh_dir(files: &RunFiles, force: bool) -> anyhow::Result<Option<Replaced>> {
    let existing = [files.model(), files.checkpoint()]
        .into_iter()
        .find(|p| p.exists());
    let mut replaced = None;
    if let Some(p) = existing {
        if !force {
            bail!(
                "{} already holds a run ({} exists); continue it with --resume, keep it and choose another directory with --out, or replace it with --force",
                files.dir.display(),
                p.display()
            );
        }
        replaced = Some(Replaced::set_aside(&files.dir)?);
    }
    spikeloop_files::create_dir(&files.dir)?;
    Ok(replaced)
}

/// The command that continues the run in `files` on the substrate `args` name (the same
/// backend and calibration options), as the shell takes it.
/// Whether a backend error is the substrate going away or failing mid-run (a device
/// unplugged, restarted, silent or on a line too noisy), after which the run continues from its
/// checkpoint once the device answers again; not a refusal of the network or its inputs.
fn stops_the_device(e: &BackendError) -> bool {
    matches!(
        e,
        BackendError::Disconnected { .. }
            | BackendError::Restarted { .. }
            | BackendError::Device { .. }
    )
}

fn resume_command(args: &TrainArgs, files: &RunFiles) -> String {
    let mut words = vec![
        "spikeloop".to_string(),
        "train".into(),
        "--resume".into(),
        "--out".into(),
        files.dir.display().to_string(),
    ];
    words.extend(args.backend.flags());
    words.extend(args.calibration.flags());
    let quoted: Vec<String> = words.iter().map(|w| shell_word(w)).collect();
    quoted.join(" ")
}

/// `word` as one word of a POSIX shell command: as it is where it holds only characters no
/// shell treats specially, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// How a run begins.
// One value, held while the run starts: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Begin {
    /// A new run, its data read and its directory ready (an earlier run there moved aside).
    New {
        data: spikeloop_trainer::DataSplits,
        replaced: Option<Replaced>,
    },
    /// A run continued from its checkpoint.
    Resumed(Checkpoint),
}

/// Why a run cannot continue on the substrate the options name (`why`), and what to do.
fn substrate_refused(files: &RunFiles, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "the run in {} cannot continue on this substrate: {why}. Resume it with the options it started with (--backend or --device, --chip-seed, --run-seed, --noise, --emulator-config, --pace, --partitioned, --calibration or --uncalibrated; its config.toml lists them), or start a new run with --out",
        files.dir.display(),
    )
}

fn resume_state(
    args: &TrainArgs,
    files: &RunFiles,
    mut state: Checkpoint,
    requested: TrainConfig,
    substrate: &Substrate,
) -> anyhow::Result<Checkpoint> {
    if let Some(why) = state.substrate.mismatch(substrate) {
        return Err(substrate_refused(files, &why));
    }
    let version = env!("CARGO_PKG_VERSION");
    if state.spikeloop_version != version {
        bail!(
            "the run in {} was started by spikeloop {}, this is {version}, whose results may differ; finish it with that version, or start a new run with --out",
            files.dir.display(),
            state.spikeloop_version
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
        if let Some(p) = state.partial.as_ref().filter(|_| e == state.epoch) {
            bail!(
                "--epochs {e}: the run stopped within epoch {} ({} batches done); give --epochs {} or more to finish that epoch",
                e + 1,
                p.batches_done,
                e + 1
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

/// The run's config.toml: the training configuration (readable again with --config), headed
/// by the substrate it trains on as comments (recorded, not read back: the substrate is chosen
/// with the backend options).
fn config_toml(config: &TrainConfig, substrate: &Substrate) -> String {
    let mut text = format!(
        "# Trained on {} by spikeloop {}.\n# The substrate's complete settings (recorded here; choose the substrate with the backend options):\n",
        substrate.summary,
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(text, "#   kind = {}", substrate.kind);
    for (key, value) in &substrate.settings {
        let _ = writeln!(text, "#   {key} = {value}");
    }
    text.push('\n');
    text.push_str(&config.to_toml());
    text
}

pub(crate) fn write_metrics(path: &Path, history: &[EpochMetrics]) -> anyhow::Result<()> {
    let mut csv = String::from(
        "epoch,learning_rate,train_loss,train_accuracy,validation_loss,validation_accuracy,bumped_batches,chopped_gradients,seconds,hardware_seconds\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for m in history {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{:.4},{}",
            m.epoch,
            m.learning_rate,
            opt(m.train_loss),
            opt(m.train_accuracy),
            m.validation_loss,
            m.validation_accuracy,
            m.bumped_batches,
            m.chopped_gradients,
            m.seconds,
            m.hardware_seconds
                .map_or(String::new(), |h| format!("{h:.4}"))
        );
    }
    spikeloop_files::write_atomic(path, csv.as_bytes(), "write the metrics")?;
    Ok(())
}

/// The training figure of a run: what it says beside the curves.
struct Figure {
    title: String,
    subtitle: String,
    selected_epoch: Option<u32>,
    /// Also write training.svg.
    svg: bool,
}

impl Figure {
    /// Draws `history` into training.png (and training.svg).
    fn write(&self, files: &RunFiles, history: &[EpochMetrics]) -> anyhow::Result<()> {
        let epochs: Vec<f64> = history.iter().map(|m| f64::from(m.epoch)).collect();
        let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
        let train_loss: Vec<f64> = history.iter().map(|m| nan(m.train_loss)).collect();
        let train_accuracy: Vec<f64> = history.iter().map(|m| nan(m.train_accuracy)).collect();
        let validation_loss: Vec<f64> = history.iter().map(|m| m.validation_loss).collect();
        let validation_accuracy: Vec<f64> = history.iter().map(|m| m.validation_accuracy).collect();
        // Epoch 0 is the state before training: no learning rate or stabiliser was used.
        let trained = |v: f64, m: &EpochMetrics| if m.epoch == 0 { f64::NAN } else { v };
        let learning_rate: Vec<f64> = history
            .iter()
            .map(|m| trained(m.learning_rate, m))
            .collect();
        let bumped: Vec<f64> = history
            .iter()
            .map(|m| trained(f64::from(m.bumped_batches), m))
            .collect();
        let chopped: Vec<f64> = history
            .iter()
            .map(|m| trained(m.chopped_gradients as f64, m))
            .collect();
        let curves = spikeloop_plot::TrainingCurves {
            title: &self.title,
            subtitle: &self.subtitle,
            selected_epoch: self.selected_epoch.map(f64::from),
            epochs: &epochs,
            train_loss: &train_loss,
            validation_loss: &validation_loss,
            train_accuracy: &train_accuracy,
            validation_accuracy: &validation_accuracy,
            learning_rate: &learning_rate,
            bumped_batches: &bumped,
            chopped_gradients: &chopped,
        };
        spikeloop_plot::write_training_curves(&files.path("training.png"), &curves)?;
        if self.svg {
            spikeloop_plot::write_training_curves(&files.path("training.svg"), &curves)?;
        }
        Ok(())
    }
}

/// The seeds of a run and the software, for a figure under a title that names the substrate:
/// "training seed 0, chip seed 1, run seed 1; spikeloop 0.1.0".
fn seeds_line(seed: u64, substrate: &Substrate) -> String {
    let mut line = format!("training seed {seed}");
    for (key, name) in [("chip_seed", "chip seed"), ("run_seed", "run seed")] {
        if let Some(v) = substrate.settings.get(key) {
            let _ = write!(line, ", {name} {v}");
        }
    }
    let _ = write!(line, "; spikeloop {}", env!("CARGO_PKG_VERSION"));
    line
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn words_the_shell_would_split_or_expand_are_quoted() {
        assert_eq!(shell_word("/tmp/run-1"), "/tmp/run-1");
        assert_eq!(shell_word("my runs/a"), "'my runs/a'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
        assert_eq!(shell_word(""), "''");
    }
}
