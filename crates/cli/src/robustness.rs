//! `spikeloop robustness`: how well a trained network survives what a chip does to it.
//!
//! A model is evaluated under a matrix of conditions, each a row: the chip it was trained on
//! with its own calibration (trial-to-trial noise only), other chips freshly calibrated,
//! another chip under the training chip's (stale) calibration, the training chip drifted since
//! its calibration, stronger trial-to-trial noise, and fewer weight bits. Every row has two
//! cells: the model as it is, and after a few epochs of in-the-loop fine-tuning on that
//! condition. A cell is the accuracy's mean and SD over repeated evaluations (the chip's trial
//! noise goes on between them).
//!
//! Cells are independent (each builds its own chip from seeds), so they run in parallel and the
//! matrix can be split: `--shard K/N` computes every N-th cell and writes its part, `spikeloop
//! robustness merge` joins the parts into the same table an unsplit run writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use spikeloop_backend::Backend;
use spikeloop_calibration::{CalibrationFile, ChipCheck};
use spikeloop_data::Split;
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig};
use spikeloop_trainer::loss::LossParams;
use spikeloop_trainer::train::{self, Silent};
use spikeloop_trainer::{Model, evaluate, load_data};

use crate::backend::EmulatorArgs;
use crate::calibrate::CalibrationArgs;
use crate::compare::mean_sd;

/// The `format` of a robustness report or shard.
const FORMAT: &str = "spikeloop-robustness";
/// Its version.
const VERSION: u32 = 1;

/// Arguments of `spikeloop robustness`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RobustnessArgs {
    #[command(subcommand)]
    command: Option<RobustnessCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum RobustnessCommand {
    /// Join the parts that `--shard K/N` runs wrote into one report.
    Merge(MergeArgs),
}

/// Arguments of `spikeloop robustness merge`.
#[derive(Debug, Args)]
struct MergeArgs {
    /// The parts (robustness-shard-K-of-N.json), every one of the same matrix.
    #[arg(required = true, value_name = "FILE")]
    shards: Vec<PathBuf>,
    /// Directory for the report.
    #[arg(long, value_name = "DIR", default_value = "runs/robustness")]
    out: PathBuf,
    /// Replace a report in --out.
    #[arg(long)]
    force: bool,
}

/// Arguments of a robustness run.
#[derive(Debug, Args)]
struct RunArgs {
    /// Model file written by `spikeloop train`.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Run the model on each chip in parts (partitioned execution), for networks larger than
    /// one chip (`spikeloop plan` shows the parts).
    #[arg(long)]
    partitioned: bool,
    /// Other chips to run it on, comma separated chip seeds (each freshly calibrated, and
    /// each also under the training chip's calibration).
    #[arg(long, value_delimiter = ',', default_value = "2,3,4,5", value_name = "LIST", value_parser = crate::backend::seed_parser())]
    other_chips: Vec<u64>,
    /// Drift of the training chip since its calibration, comma separated magnitudes (the
    /// emulator's drift.magnitude: thresholds up by this fraction of the threshold distance,
    /// time constants longer by it).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.01,0.02,0.05",
        value_name = "LIST"
    )]
    drift: Vec<f64>,
    /// Trial-to-trial threshold noise, comma separated multiples of the chip's.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2,4",
        value_name = "LIST"
    )]
    threshold_noise: Vec<f64>,
    /// Spike-time jitter, comma separated multiples of the chip's.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2,4",
        value_name = "LIST"
    )]
    jitter: Vec<f64>,
    /// Weight resolutions below the chip's, comma separated bits (the same weight range in
    /// coarser steps).
    #[arg(long, value_delimiter = ',', default_value = "5,4,3", value_name = "LIST", value_parser = clap::value_parser!(u32).range(1..=6))]
    weight_bits: Vec<u32>,
    /// Evaluations per cell (the chip's trial noise differs between them).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeats: u32,
    /// Epochs of in-the-loop fine-tuning for each row's second cell (0: no fine-tuning).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=1000))]
    fine_tune_epochs: u32,
    /// Data set split the accuracies are measured on.
    #[arg(long, default_value = "test", value_name = "SPLIT")]
    split: Split,
    /// Directory for the report (robustness.json, .md, .csv, .png) and the calibrations.
    #[arg(long, value_name = "DIR", default_value = "runs/robustness")]
    out: PathBuf,
    /// Compute only part K of N of the matrix (every N-th cell from the K-th) and write it as
    /// robustness-shard-K-of-N.json, for `spikeloop robustness merge`.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// Replace a report or part in --out.
    #[arg(long)]
    force: bool,
    /// The chip the model was trained on (its noise, seeds and configuration).
    #[command(flatten)]
    emulator: EmulatorArgs,
    /// The training chip's calibration.
    #[command(flatten)]
    calibration: CalibrationArgs,
}

/// `K/N` with `1 <= K <= N`.
fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("{text}: give the part as K/N with 1 <= K <= N (e.g. 3/10)");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// One row of the matrix: what differs from the training chip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
enum Condition {
    /// The training chip with its own calibration.
    Baseline,
    /// Another chip, with its own fresh calibration.
    OtherChip { chip_seed: u64 },
    /// Another chip under the training chip's calibration.
    StaleCalibration { chip_seed: u64 },
    /// The training chip drifted since its calibration.
    Drift { magnitude: f64 },
    /// Trial-to-trial threshold noise times `factor`.
    ThresholdNoise { factor: f64 },
    /// Spike-time jitter times `factor`.
    Jitter { factor: f64 },
    /// Weights of `bits` bits over the same range.
    WeightBits { bits: u32 },
}

impl Condition {
    fn label(&self, training_chip: u64) -> String {
        match self {
            Self::Baseline => format!("chip {training_chip}, own calibration"),
            Self::OtherChip { chip_seed } => format!("chip {chip_seed}, own calibration"),
            Self::StaleCalibration { chip_seed } => {
                format!("chip {chip_seed}, chip {training_chip}'s calibration")
            }
            Self::Drift { magnitude } => format!("drift {magnitude} since calibration"),
            Self::ThresholdNoise { factor } => format!("threshold noise x{factor}"),
            Self::Jitter { factor } => format!("spike jitter x{factor}"),
            Self::WeightBits { bits } => format!("{bits}-bit weights"),
        }
    }
}

/// Everything a cell's result depends on: the same matrix gives the same cells.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Matrix {
    /// The model file as given, and its checksum.
    model: String,
    model_checksum: Option<String>,
    split: Split,
    repeats: u32,
    fine_tune_epochs: u32,
    /// The training chip's configuration (TOML).
    training_chip: String,
    /// Fingerprint of the training chip's calibration codes (`None`: uncalibrated).
    calibration: Option<String>,
    rows: Vec<Condition>,
    /// `as is`, and `fine-tuned N epochs` with fine-tuning.
    columns: Vec<String>,
}

impl Matrix {
    fn cells(&self) -> usize {
        self.rows.len() * self.columns.len()
    }
}

/// One cell's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CellResult {
    row: usize,
    column: usize,
    /// Accuracy of every evaluation, as a fraction.
    accuracies: Vec<f64>,
    mean: f64,
    sd: f64,
}

/// A report, or one part of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Report {
    format: String,
    version: u32,
    matrix: Matrix,
    /// `(K, N)` for a part; `None` for a whole report.
    shard: Option<(usize, usize)>,
    cells: Vec<CellResult>,
}

/// `spikeloop robustness [merge]`.
pub fn run(args: RobustnessArgs) -> anyhow::Result<()> {
    match args.command {
        Some(RobustnessCommand::Merge(m)) => merge(m),
        None => run_matrix(args.run),
    }
}

/// The configuration `model` was trained with (the default one, on its data set, for a model
/// that records none): its loss scores a cell, its settings fine-tune.
fn training_config(model: &Model) -> spikeloop_trainer::TrainConfig {
    model.provenance.as_ref().map_or_else(
        || spikeloop_trainer::TrainConfig {
            dataset: model.dataset,
            ..Default::default()
        },
        |p| p.config.clone(),
    )
}

/// The calibrations the cells use: the training chip's, and every other chip's own.
struct Calibrations {
    training: Option<CalibrationFile>,
    own: BTreeMap<u64, CalibrationFile>,
}

/// What one cell runs on: the chip's configuration and the calibration it carries.
fn cell_chip(
    condition: &Condition,
    base: &EmulatorConfig,
    calibrations: &Calibrations,
) -> anyhow::Result<(EmulatorConfig, Option<CalibrationFile>)> {
    let mut config = base.clone();
    let training = calibrations.training.clone();
    let calibration = match condition {
        Condition::Baseline => training,
        Condition::OtherChip { chip_seed } => {
            config.chip_seed = *chip_seed;
            calibrations.own.get(chip_seed).cloned()
        }
        Condition::StaleCalibration { chip_seed } => {
            config.chip_seed = *chip_seed;
            training
        }
        Condition::Drift { magnitude } => {
            config.drift.magnitude = *magnitude;
            training
        }
        Condition::ThresholdNoise { factor } => {
            config.noise.threshold_trial_sd *= factor;
            training
        }
        Condition::Jitter { factor } => {
            config.noise.spike_jitter_sd *= factor;
            training
        }
        // The chip stays; the weights are rounded onto the coarser grid (see `coarse`).
        Condition::WeightBits { .. } => training,
    };
    config
        .validate()
        .context("invalid chip for a robustness cell")?;
    Ok((config, calibration))
}

/// `model`'s weights on the grid of `bits`-bit weights over the range of the chip's own: the
/// chip's codes rounded to multiples of `2^(chip bits - bits)`, so that the largest weight
/// stays (a fine-tuned model is trained at the chip's resolution and rounded afterwards).
fn coarse(
    model: &Model,
    bits: u32,
    chip: &EmulatorConfig,
) -> Vec<spikeloop_backend::ndarray::Array2<f64>> {
    let full = chip.geometry.weight_bits;
    let step = f64::from(1u32 << full.saturating_sub(bits));
    let max_code = f64::from((1u32 << full) - 1);
    let top = (max_code / step).floor() * step;
    let scale = chip.weight_scale;
    model
        .weights()
        .into_iter()
        .map(|w| w.mapv(|x| ((x * scale / step).round() * step).clamp(-top, top) / scale))
        .collect()
}

/// Runs one cell: the model on its condition's chip as it is (column 0) or after fine-tuning
/// (column 1).
#[allow(clippy::too_many_arguments)]
fn run_cell(
    matrix: &Matrix,
    row: usize,
    column: usize,
    model: &Model,
    base: &EmulatorConfig,
    calibrations: &Calibrations,
    data: &spikeloop_trainer::DataSplits,
    partitioned: bool,
) -> anyhow::Result<CellResult> {
    let condition = &matrix.rows[row];
    let (config, calibration) = cell_chip(condition, base, calibrations)?;
    let mut chip = EmulatorBackend::new(config)?;
    if let Some(file) = &calibration {
        // A stale calibration is another chip's (or taken before a change) on purpose.
        file.apply(&mut chip, ChipCheck::AnyChip, Path::new("calibration"))?;
    }
    let mut chip = crate::backend::partitioned_if(Box::new(chip), partitioned)?;
    let training = training_config(model);
    let loss = LossParams::from(&training.training);
    let mut model = if column == 1 {
        let trained = model.provenance.as_ref().map_or(0, |p| p.epochs_trained);
        let config = train::fine_tuning(&training, trained, matrix.fine_tune_epochs);
        let substrate = chip.substrate();
        let state = train::start_from(
            &config,
            data,
            substrate,
            model,
            "the model under test".into(),
        )?;
        train::run(state, data, &mut chip, None, &mut Silent)?.model
    } else {
        model.clone()
    };
    if let Condition::WeightBits { bits } = condition {
        let weights = coarse(&model, *bits, base);
        model.set_weights(&weights)?;
    }
    let split = match matrix.split {
        Split::Train => &data.train,
        Split::Validation => &data.validation,
        Split::Test => &data.test,
    };
    chip.configure(&model.to_network())?;
    // The noise starts where a fresh chip's does; each evaluation goes on from the last.
    chip.set_noise_position(0)?;
    let accuracies = (0..matrix.repeats)
        .map(|_| Ok(evaluate(&mut chip, &model, split, &loss, None)?.accuracy))
        .collect::<anyhow::Result<Vec<f64>>>()?;
    let (mean, sd) = mean_sd(&accuracies);
    Ok(CellResult {
        row,
        column,
        accuracies,
        mean,
        sd,
    })
}

fn run_matrix(args: RunArgs) -> anyhow::Result<()> {
    let Some(model_path) = args.model.clone() else {
        bail!(
            "--model FILE is required (the model.json a run wrote); `spikeloop robustness merge` joins parts"
        );
    };
    for (name, list) in [
        ("--drift", &args.drift),
        ("--threshold-noise", &args.threshold_noise),
        ("--jitter", &args.jitter),
    ] {
        if let Some(v) = list.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            bail!("{name} {v}: every value must be a finite number of at least 0");
        }
    }
    let model = crate::infer::load_model(&model_path)?;
    let base = args.emulator.emulator_config()?;
    let data = load_data(&training_config(&model))?;
    let part = match args.shard {
        Some((k, n)) => part_file(&k.to_string(), n),
        None => "robustness.json".into(),
    };
    let out_file = args.out.join(&part);
    if out_file.exists() && !args.force {
        bail!(
            "{} already exists; keep it and choose another directory with --out, or replace it with --force",
            out_file.display()
        );
    }
    spikeloop_files::create_dir(&args.out)?;
    let started = Instant::now();

    // The training chip's calibration: as named, kept beside the model, or made now.
    let mut training_chip = EmulatorBackend::new(base.clone())?;
    let training = crate::calibrate::for_model(
        &mut training_chip,
        &args.calibration,
        &model,
        &model_path,
        true,
        false,
    )?
    .map(|a| a.file);
    let calibrated = training.is_some();
    let mut rows = vec![Condition::Baseline];
    let others: Vec<u64> = args
        .other_chips
        .iter()
        .copied()
        .filter(|&s| s != base.chip_seed)
        .collect();
    rows.extend(
        others
            .iter()
            .map(|&chip_seed| Condition::OtherChip { chip_seed }),
    );
    if calibrated {
        rows.extend(
            others
                .iter()
                .map(|&chip_seed| Condition::StaleCalibration { chip_seed }),
        );
        rows.extend(
            args.drift
                .iter()
                .map(|&magnitude| Condition::Drift { magnitude }),
        );
    }
    rows.extend(
        args.threshold_noise
            .iter()
            .map(|&factor| Condition::ThresholdNoise { factor }),
    );
    rows.extend(
        args.jitter
            .iter()
            .map(|&factor| Condition::Jitter { factor }),
    );
    rows.extend(
        args.weight_bits
            .iter()
            .filter(|&&b| b < base.geometry.weight_bits)
            .map(|&bits| Condition::WeightBits { bits }),
    );
    let mut columns = vec!["as is".to_string()];
    if args.fine_tune_epochs > 0 {
        columns.push(format!(
            "fine-tuned {} epoch{}",
            args.fine_tune_epochs,
            if args.fine_tune_epochs == 1 { "" } else { "s" }
        ));
    }
    let matrix = Matrix {
        model: model_path.display().to_string(),
        model_checksum: model.checksum.clone(),
        split: args.split,
        repeats: args.repeats,
        fine_tune_epochs: args.fine_tune_epochs,
        training_chip: base.to_toml_string(),
        calibration: training.as_ref().map(CalibrationFile::codes_fingerprint),
        rows,
        columns,
    };
    let (k, n) = args.shard.unwrap_or((1, 1));
    let mine: Vec<(usize, usize)> = (0..matrix.cells())
        .filter(|i| i % n == k - 1)
        .map(|i| (i / matrix.columns.len(), i % matrix.columns.len()))
        .collect();

    // Every other chip this part needs, calibrated (or kept calibrated in --out) one after
    // another before the cells run side by side.
    let mut own = BTreeMap::new();
    if !args.calibration.uncalibrated {
        for &(row, _) in &mine {
            if let Condition::OtherChip { chip_seed } = matrix.rows[row]
                && !own.contains_key(&chip_seed)
            {
                let mut chip = EmulatorBackend::new(EmulatorConfig {
                    chip_seed,
                    ..base.clone()
                })?;
                let applied = crate::calibrate::prepare(
                    &mut chip,
                    &CalibrationArgs::default(),
                    Some(&args.out),
                    true,
                    false,
                )?;
                if let Some(a) = applied {
                    own.insert(chip_seed, a.file);
                }
            }
        }
    }
    let calibrations = Calibrations { training, own };
    errln!(
        "robustness of {}: {} conditions x {} = {} cells{}, {} evaluations each",
        model_path.display(),
        matrix.rows.len(),
        matrix.columns.len(),
        matrix.cells(),
        if n > 1 {
            format!(" (part {k} of {n}: {} cells)", mine.len())
        } else {
            String::new()
        },
        matrix.repeats
    );
    let training_seed = base.chip_seed;
    let cells = mine
        .par_iter()
        .map(|&(row, column)| {
            let cell = run_cell(
                &matrix,
                row,
                column,
                &model,
                &base,
                &calibrations,
                &data,
                args.partitioned,
            )
            .with_context(|| {
                format!(
                    "cell \"{}\" / \"{}\"",
                    matrix.rows[row].label(training_seed),
                    matrix.columns[column]
                )
            })?;
            errln!(
                "  {:<44} {:<20} {:6.2} +- {:.2} %",
                matrix.rows[row].label(training_seed),
                matrix.columns[column],
                100.0 * cell.mean,
                100.0 * cell.sd
            );
            Ok(cell)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = Report {
        format: FORMAT.into(),
        version: VERSION,
        matrix,
        shard: args.shard,
        cells,
    };
    spikeloop_files::write_json_atomic(&out_file, &report, "write the robustness report")?;
    if args.shard.is_some() {
        outln!(
            "wrote part {k} of {n} ({} cells) to {} in {:.1} s; once all {n} are written, join them with `spikeloop robustness merge {}`",
            report.cells.len(),
            out_file.display(),
            started.elapsed().as_secs_f64(),
            args.out.join(part_file("*", n)).display()
        );
        return Ok(());
    }
    write_outputs(&report, &args.out)?;
    outln!("{}", table(&report, false));
    outln!(
        "wrote robustness.json, robustness.md, robustness.csv, robustness.png in {} ({:.1} s)",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Reads a report or part.
fn load(path: &Path) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let head: spikeloop_files::Kind = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a robustness part (not JSON)", path.display()))?;
    spikeloop_files::check_kind(&head, FORMAT, VERSION, "robustness").map_err(|e| match e {
        spikeloop_files::KindMismatch::Other(f) => anyhow::anyhow!(
            "{}: not a robustness part (its format is \"{f}\")",
            path.display()
        ),
        spikeloop_files::KindMismatch::Invalid(m) => anyhow::anyhow!("{}: {m}", path.display()),
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a valid robustness part", path.display()))
}

fn merge(args: MergeArgs) -> anyhow::Result<()> {
    let out_file = args.out.join("robustness.json");
    if out_file.exists() && !args.force {
        bail!(
            "{} already exists; keep it and choose another directory with --out, or replace it with --force",
            out_file.display()
        );
    }
    let mut parts = Vec::new();
    for path in &args.shards {
        parts.push((path, load(path)?));
    }
    let Some((first_path, first)) = parts.first() else {
        bail!("no parts given");
    };
    let matrix = first.matrix.clone();
    let mut cells: BTreeMap<(usize, usize), CellResult> = BTreeMap::new();
    for (path, part) in &parts {
        if part.matrix != matrix {
            bail!(
                "{} is a part of another matrix than {} (another model, chip, calibration or list of conditions); merge only the parts of one run",
                path.display(),
                first_path.display()
            );
        }
        for c in &part.cells {
            if c.row >= matrix.rows.len() || c.column >= matrix.columns.len() {
                bail!("{}: a cell outside the matrix", path.display());
            }
            if cells.insert((c.row, c.column), c.clone()).is_some() {
                bail!(
                    "{}: cell {} / {} is also in another part (a part given twice?)",
                    path.display(),
                    c.row,
                    c.column
                );
            }
        }
    }
    if cells.len() != matrix.cells() {
        let missing: Vec<String> = (0..matrix.cells())
            .map(|i| (i / matrix.columns.len(), i % matrix.columns.len()))
            .filter(|k| !cells.contains_key(k))
            .map(|(r, c)| format!("{r}/{c}"))
            .take(5)
            .collect();
        bail!(
            "the parts hold {} of the matrix's {} cells (missing row/column {}{}); give every part",
            cells.len(),
            matrix.cells(),
            missing.join(", "),
            if matrix.cells() - cells.len() > 5 {
                ", ..."
            } else {
                ""
            }
        );
    }
    let report = Report {
        format: FORMAT.into(),
        version: VERSION,
        matrix,
        shard: None,
        cells: cells.into_values().collect(),
    };
    spikeloop_files::create_dir(&args.out)?;
    spikeloop_files::write_json_atomic(&out_file, &report, "write the robustness report")?;
    write_outputs(&report, &args.out)?;
    outln!("{}", table(&report, false));
    outln!(
        "merged {} parts into robustness.json, robustness.md, robustness.csv, robustness.png in {}",
        parts.len(),
        args.out.display()
    );
    Ok(())
}

/// The training chip's seed, from the matrix's chip configuration.
fn training_seed(matrix: &Matrix) -> u64 {
    EmulatorConfig::from_toml_str(&matrix.training_chip).map_or(0, |c| c.chip_seed)
}

/// The cell at `row`, `column`.
fn cell(report: &Report, row: usize, column: usize) -> Option<&CellResult> {
    report
        .cells
        .iter()
        .find(|c| c.row == row && c.column == column)
}

/// The report as a table: plain text, or Markdown.
fn table(report: &Report, markdown: bool) -> String {
    let m = &report.matrix;
    let seed = training_seed(m);
    let mut t = String::new();
    let (open, sep, close) = if markdown {
        ("| ", " | ", " |")
    } else {
        ("", "  ", "")
    };
    let header: Vec<String> = std::iter::once("condition".to_string())
        .chain(m.columns.iter().cloned())
        .collect();
    let widths: Vec<usize> = std::iter::once(44)
        .chain(m.columns.iter().map(|_| 20))
        .collect();
    let line = |cells: &[String]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                if markdown {
                    c.clone()
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        format!("{open}{}{close}", padded.join(sep))
            .trim_end()
            .to_string()
            + "\n"
    };
    t.push_str(&line(&header));
    if markdown {
        t.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    }
    for (r, row) in m.rows.iter().enumerate() {
        let mut cells = vec![row.label(seed)];
        for c in 0..m.columns.len() {
            cells.push(cell(report, r, c).map_or_else(String::new, |x| {
                format!("{:.2} ± {:.2} %", 100.0 * x.mean, 100.0 * x.sd)
            }));
        }
        t.push_str(&line(&cells));
    }
    t.trim_end().to_string()
}

/// Writes the Markdown, CSV and heatmap of a whole report into `dir`.
fn write_outputs(report: &Report, dir: &Path) -> anyhow::Result<()> {
    let m = &report.matrix;
    let seed = training_seed(m);
    let md = format!(
        "# Robustness of {}\n\nAccuracy on the {} split, mean ± SD over {} evaluations per cell; the training chip is chip {seed}{}.\n\n{}\n",
        m.model,
        m.split,
        m.repeats,
        match &m.calibration {
            Some(c) => format!(" with its calibration (codes {c})"),
            None => ", uncalibrated".into(),
        },
        table(report, true)
    );
    spikeloop_files::write_atomic(
        &dir.join("robustness.md"),
        md.as_bytes(),
        "write the robustness table",
    )?;
    let mut csv = String::from("condition,column,mean,sd,accuracies\n");
    for c in &report.cells {
        csv.push_str(&format!(
            "\"{}\",\"{}\",{},{},{}\n",
            m.rows[c.row].label(seed),
            m.columns[c.column],
            c.mean,
            c.sd,
            c.accuracies
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    spikeloop_files::write_atomic(
        &dir.join("robustness.csv"),
        csv.as_bytes(),
        "write the robustness table",
    )?;
    let rows: Vec<String> = m.rows.iter().map(|r| r.label(seed)).collect();
    let cells: Vec<Option<spikeloop_plot::Cell>> = (0..m.cells())
        .map(|i| {
            cell(report, i / m.columns.len(), i % m.columns.len()).map(|c| spikeloop_plot::Cell {
                value: 100.0 * c.mean,
                spread: Some(100.0 * c.sd),
            })
        })
        .collect();
    let values: Vec<f64> = cells.iter().flatten().map(|c| c.value).collect();
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let range = if high > low {
        (low, high)
    } else {
        (low - 1.0, high + 1.0)
    };
    let subtitle = format!(
        "{} accuracy (%), mean ± SD over {} evaluations; training chip {seed}",
        m.split, m.repeats
    );
    spikeloop_plot::write_heatmap(
        &dir.join("robustness.png"),
        &spikeloop_plot::Heatmap {
            title: &format!("Robustness of {}", m.model),
            subtitle: &subtitle,
            rows: &rows,
            columns: &m.columns,
            cells: &cells,
            range,
            decimals: 1,
        },
    )
    .context("could not draw the robustness heatmap")?;
    Ok(())
}

/// The file of part `k` (or `*`, for the shell to find them all) of a matrix in `n` parts.
fn part_file(k: &str, n: impl std::fmt::Display) -> String {
    format!("robustness-shard-{k}-of-{n}.json")
}
