//! `spikeloop compare`: what the chip costs and what training in the loop wins back.
//!
//! Three numbers per emulated chip, all on the test split: (a) a network trained on the ideal
//! backend and evaluated there, (b) that same network copied unchanged onto the chip, and (c) a
//! network trained in the loop on the chip (same configuration and training seed) and evaluated
//! on it. The report gives the gap (a - b) and the fraction of it that (c) recovers, as a table,
//! a JSON file and a bar chart.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use spikeloop_backend::{Backend, IdealBackend, Substrate};
use spikeloop_data::DatasetKind;
use spikeloop_trainer::loss::LossParams;
use spikeloop_trainer::train;
use spikeloop_trainer::{DataSplits, Model, TrainConfig, evaluate, load_data};

use crate::backend::EmulatorArgs;

/// Arguments of `spikeloop compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    network: crate::train::NetworkArgs,
    /// Number of training epochs (at least 1) [default: the configuration's].
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = clap::value_parser!(u32).range(1..))]
    epochs: Option<u32>,
    /// Learning rate of the training runs [default: the configuration's].
    #[arg(long, allow_negative_numbers = true, value_name = "RATE")]
    learning_rate: Option<f64>,
    /// Emulated chips to compare on, comma separated chip seeds, each once.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,3,4,5",
        value_name = "LIST",
        value_parser = crate::backend::seed_parser()
    )]
    chip_seeds: Vec<u64>,
    /// Directory for the report (compare.json, compare.png) and the trained models.
    #[arg(long, value_name = "DIR", default_value = "runs/compare")]
    out: PathBuf,
    /// Continue a comparison in --out: networks already trained there (ideal.json,
    /// in-the-loop-chip<N>.json, with the same configuration and substrate) are reused, the
    /// missing ones trained.
    #[arg(long)]
    resume: bool,
    /// Replace a comparison in --out.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Also write the figure as SVG (compare.svg), beside compare.png.
    #[arg(long)]
    svg: bool,
    /// Run the networks on the chips in parts (partitioned execution), for networks larger
    /// than one chip (`spikeloop plan` shows the parts).
    #[arg(long)]
    partitioned: bool,
    /// Train in the loop by fine-tuning: each chip's training starts from the ideal-trained
    /// network's weights and runs N epochs (at least 1) at the learning rate where the ideal
    /// training's schedule ended, instead of the whole training from the seed. For networks
    /// that take long to train.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    fine_tune: Option<u32>,
    #[command(flatten)]
    emulator: EmulatorArgs,
    #[command(flatten)]
    calibration: crate::calibrate::CalibrationArgs,
}

#[derive(Serialize)]
struct ChipResult {
    chip_seed: u64,
    /// The emulated chip, completely described.
    substrate: Substrate,
    copied_accuracy: f64,
    in_the_loop_accuracy: f64,
    in_the_loop_selected_epoch: u32,
    recovered_fraction: f64,
}

#[derive(Serialize)]
struct Report {
    format: &'static str,
    dataset: String,
    seed: u64,
    epochs: u32,
    /// With `--fine-tune N`: the in-the-loop networks started from the ideal-trained one and
    /// trained N epochs.
    #[serde(skip_serializing_if = "Option::is_none")]
    fine_tune_epochs: Option<u32>,
    ideal_accuracy: f64,
    chips: Vec<ChipResult>,
    copied_mean: f64,
    copied_sd: f64,
    in_the_loop_mean: f64,
    in_the_loop_sd: f64,
    /// (mean in-the-loop - mean copied) / (ideal - mean copied); `null` when copying cost
    /// nothing (mean copied at or above ideal).
    recovered_fraction: f64,
}

/// The published chip result the figure marks: Yin-Yang trained in the loop on BrainScaleS-2,
/// 95.0 +- 0.9 % (Goeltz et al. 2021).
const REFERENCE_CHIP_YIN_YANG: f64 = 95.0;

/// What the bars, error bars and dots of the comparison figure show, for `n` chips.
fn figure_key(n: usize) -> String {
    format!("bars: mean; error bars: SD over n = {n} chips; dots: each chip")
}

/// The comparison figure: the three conditions as bars with every chip as a dot, the accuracy
/// axis from below chance level, chance and (for Yin-Yang) the published chip result marked.
struct CompareFigure<'a> {
    report: &'a Report,
    chip_seeds: &'a [u64],
    classes: usize,
    /// Yin-Yang has a published chip result to mark.
    yin_yang: bool,
    subtitle: String,
}

impl CompareFigure<'_> {
    fn write(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let r = self.report;
        let copied: Vec<f64> = r.chips.iter().map(|c| pct(c.copied_accuracy)).collect();
        let in_loop: Vec<f64> = r
            .chips
            .iter()
            .map(|c| pct(c.in_the_loop_accuracy))
            .collect();
        let bars = [
            spikeloop_plot::Bar {
                label: "(a) ideal training, ideal backend",
                value: pct(r.ideal_accuracy),
                error: None,
                points: &[],
            },
            spikeloop_plot::Bar {
                label: "(b) copied onto the chips",
                value: pct(r.copied_mean),
                error: Some(pct(r.copied_sd)),
                points: &copied,
            },
            spikeloop_plot::Bar {
                label: &format!("(c) {}", loop_label(r.fine_tune_epochs)),
                value: pct(r.in_the_loop_mean),
                error: Some(pct(r.in_the_loop_sd)),
                points: &in_loop,
            },
        ];
        let chance = 100.0 / self.classes.max(1) as f64;
        let chance_label = format!("chance {chance:.1} %");
        let reference_label =
            format!("reference chip result {REFERENCE_CHIP_YIN_YANG:.1} % (Göltz et al. 2021)");
        let mut lines = vec![spikeloop_plot::ReferenceLine {
            value: chance,
            label: &chance_label,
        }];
        if self.yin_yang {
            lines.push(spikeloop_plot::ReferenceLine {
                value: REFERENCE_CHIP_YIN_YANG,
                label: &reference_label,
            });
        }
        let title = format!(
            "{} test accuracy, {} epochs, chip seeds {}",
            r.dataset,
            r.epochs,
            self.chip_seeds
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        spikeloop_plot::write_bar_chart(
            path,
            &spikeloop_plot::BarChart {
                title: &title,
                subtitle: &self.subtitle,
                y_label: "test accuracy (%)",
                bars: &bars,
                // Whole tens below chance, so that chance level is on the axis.
                y_range: Some(((chance / 10.0).floor() * 10.0, 100.0)),
                reference_lines: &lines,
            },
        )?;
        Ok(())
    }
}

/// What condition (c) is: trained in the loop from the seed, or fine-tuned from the ideal
/// network for `fine_tune` epochs.
fn loop_label(fine_tune: Option<u32>) -> String {
    match fine_tune {
        Some(n) => format!("fine-tuned in the loop ({n} ep.)"),
        None => "trained in the loop".into(),
    }
}

/// A fraction in percent.
fn pct(fraction: f64) -> f64 {
    100.0 * fraction
}

/// Mean and sample SD (0 for a single value).
pub(crate) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn recovered(ideal: f64, copied: f64, in_the_loop: f64) -> f64 {
    if ideal > copied {
        (in_the_loop - copied) / (ideal - copied)
    } else {
        f64::NAN
    }
}

/// Whether copying lost more than the standard error of the copied accuracies' mean over `n`
/// chips (gap and SD in points), so that the fraction of the loss training in the loop recovers
/// means something.
fn gap_is_measurable(gap: f64, copied_sd: f64, n: usize) -> bool {
    gap > 0.0 && gap > standard_error(copied_sd, n)
}

fn standard_error(sd: f64, n: usize) -> f64 {
    sd / (n.max(1) as f64).sqrt()
}

/// A network trained for the comparison: its model, test accuracy and selected epoch.
struct Trained {
    model: Model,
    test_accuracy: f64,
    selected_epoch: u32,
}

/// The checkpoint beside the model `path` (`ideal.json` -> `ideal.checkpoint.json`), written
/// after every epoch so that `--resume` continues an interrupted training where it stopped.
fn checkpoint_of(path: &std::path::Path) -> PathBuf {
    path.with_extension("checkpoint.json")
}

/// Prints one line per finished epoch of one of the comparison's trainings, so that a long
/// comparison (deep networks, partitioned chips) shows where it is.
struct EpochLines<'a> {
    /// Which network: "ideal", "chip 3".
    label: &'a str,
    epochs: u32,
}

impl train::Observer for EpochLines<'_> {
    fn epoch_finished(&mut self, m: &train::EpochMetrics) {
        if m.epoch > 0 {
            let hardware = m
                .hardware_seconds
                .map_or(String::new(), |h| format!("; on a chip {h:.1} s"));
            errln!(
                "  {}: epoch {}/{}: validation accuracy {:.2} % ({:.1} s{hardware})",
                self.label,
                m.epoch,
                self.epochs,
                100.0 * m.validation_accuracy,
                m.seconds
            );
        }
    }
}

/// The network of `path`: with `resume` and a model there that was trained with `config` on
/// the substrate of `backend`, that one; with `resume` and only its checkpoint there, that
/// training continued; otherwise trained now on `backend` and saved to `path`.
#[allow(clippy::too_many_arguments)]
fn trained(
    path: &std::path::Path,
    label: &str,
    resume: bool,
    config: &TrainConfig,
    data: &DataSplits,
    backend: &mut dyn Backend,
    substrate: Substrate,
    start_from: Option<(&Model, String)>,
) -> anyhow::Result<(Trained, bool)> {
    let wanted_start = start_from.as_ref().map(|(_, d)| d.clone());
    let reusable = |what: &std::path::Path,
                    trained_on: &Substrate,
                    trained_with: &TrainConfig,
                    started: &Option<String>|
     -> anyhow::Result<()> {
        if *started != wanted_start {
            bail!(
                "{} started from other weights than this comparison asks for ({}); resume with the same options, or start anew with --force",
                what.display(),
                started.as_deref().unwrap_or("weights drawn from the seed")
            );
        }
        if let Some(why) = trained_on.mismatch(&substrate) {
            bail!(
                "{} cannot be reused: {why}; resume with the same options, or start anew with --force",
                what.display()
            );
        }
        if trained_with != config {
            bail!(
                "{} was trained with another configuration than this comparison asks for; resume with the same options, or start anew with --force",
                what.display()
            );
        }
        Ok(())
    };
    if resume && path.exists() {
        let model = Model::load(path)?;
        let p = model.provenance.as_ref().with_context(|| {
            format!(
                "{} records no training; remove it or use --force",
                path.display()
            )
        })?;
        reusable(path, &p.substrate, &p.config, &p.started_from)?;
        let test_accuracy = p.test_accuracy.with_context(|| {
            format!(
                "{} records no test accuracy; remove it or use --force",
                path.display()
            )
        })?;
        let selected_epoch = p.selected_epoch;
        return Ok((
            Trained {
                model,
                test_accuracy,
                selected_epoch,
            },
            true,
        ));
    }
    let checkpoint = checkpoint_of(path);
    let state = if resume && checkpoint.exists() {
        let state = train::Checkpoint::load(&checkpoint)?;
        reusable(
            &checkpoint,
            &state.substrate,
            &state.config,
            &state.started_from,
        )?;
        let version = env!("CARGO_PKG_VERSION");
        if state.spikeloop_version != version {
            bail!(
                "{} was written by spikeloop {}, this is {version}, whose results may differ; finish the comparison with that version, or start anew with --force",
                checkpoint.display(),
                state.spikeloop_version
            );
        }
        errln!(
            "  {label}: resuming {} after epoch {}",
            checkpoint.display(),
            state.epoch
        );
        state
    } else if let Some((model, description)) = start_from {
        train::start_from(config, data, substrate, model, description)?
    } else {
        train::start(config, data, substrate)?
    };
    let mut lines = EpochLines {
        label,
        epochs: config.training.epochs,
    };
    let outcome = train::run(state, data, backend, Some(&checkpoint), &mut lines)?;
    outcome.model.save(path)?;
    // The model now holds everything the checkpoint was kept for.
    std::fs::remove_file(&checkpoint)
        .with_context(|| format!("could not remove {}", checkpoint.display()))?;
    Ok((
        Trained {
            model: outcome.model,
            test_accuracy: outcome.test_accuracy,
            selected_epoch: outcome.selected_epoch,
        },
        false,
    ))
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    if args.chip_seeds.is_empty() {
        anyhow::bail!("--chip-seeds needs at least one chip seed");
    }
    if let Some(s) = args.emulator.chip_seed {
        anyhow::bail!(
            "--chip-seed {s} does nothing in compare: the chips are --chip-seeds (give --chip-seeds {s} to compare on that chip alone)"
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(d) = args.chip_seeds.iter().find(|&&s| !seen.insert(s)) {
        anyhow::bail!(
            "--chip-seeds {:?} lists chip {d} twice; give each chip once",
            args.chip_seeds
        );
    }
    // The configuration suited to the chips (the chip preset unless --preset or --config say
    // otherwise), as `train` on a chip takes it.
    let mut config = args.network.config(args.emulator.build()?.capabilities())?;
    if let Some(e) = args.epochs {
        config.training.epochs = e;
    }
    if let Some(lr) = args.learning_rate {
        config.training.learning_rate = lr;
    }
    config.validate()?;
    let json = args.out.join("compare.json");
    let models = std::iter::once(args.out.join("ideal.json")).chain(
        args.chip_seeds
            .iter()
            .map(|s| args.out.join(format!("in-the-loop-chip{s}.json"))),
    );
    let earlier = std::iter::once(json.clone())
        .chain(models.flat_map(|m| [checkpoint_of(&m), m]))
        .find(|p| p.exists());
    if let (Some(p), false, false) = (&earlier, args.resume, args.force) {
        bail!(
            "{} already holds a comparison ({} exists); continue it with --resume, keep it and choose another directory with --out, or replace it with --force",
            args.out.display(),
            p.display()
        );
    }
    spikeloop_files::create_dir(&args.out)?;
    let data = load_data(&config)?;
    let loss = LossParams::from(&config.training);

    let started = Instant::now();
    let (ideal, reused) = trained(
        &args.out.join("ideal.json"),
        "ideal",
        args.resume,
        &config,
        &data,
        &mut IdealBackend::new(),
        IdealBackend::new().substrate(),
        None,
    )?;
    errln!(
        "(a) trained on the ideal backend: test accuracy {:.2} % ({})",
        100.0 * ideal.test_accuracy,
        if reused {
            "from the earlier run".to_string()
        } else {
            format!("{:.1} s", started.elapsed().as_secs_f64())
        }
    );

    // Fine-tuning trains every chip's network from the ideal one, for its own epochs.
    let (loop_config, start_from) = match args.fine_tune {
        Some(n) => {
            let c = train::fine_tuning(
                &config,
                ideal
                    .model
                    .provenance
                    .as_ref()
                    .map_or(0, |p| p.epochs_trained),
                n,
            );
            let description = format!(
                "ideal.json of this comparison (trained on ideal, weights of epoch {}, test accuracy {:.2} %)",
                ideal.selected_epoch,
                100.0 * ideal.test_accuracy
            );
            (c, Some(description))
        }
        None => (config.clone(), None),
    };
    let mut chips = Vec::new();
    for &chip_seed in &args.chip_seeds {
        let chip_args = EmulatorArgs {
            chip_seed: Some(chip_seed),
            ..args.emulator.clone()
        };
        // Each chip calibrated (or kept calibrated in --out), unless --uncalibrated.
        let calibrated = |chip: &mut dyn Backend| {
            crate::calibrate::prepare(chip, &args.calibration, Some(&args.out), true, false)
        };
        let mut chip = chip_args.build()?;
        let applied = calibrated(&mut chip)?;
        let mut chip = crate::backend::partitioned_if(Box::new(chip), args.partitioned)?;
        let substrate = crate::calibrate::described(chip.substrate(), applied.as_ref());
        chip.configure(&ideal.model.to_network())?;
        let copied = evaluate(&mut chip, &ideal.model, &data.test, &loss, None)?.accuracy;
        let started = Instant::now();
        let mut chip = chip_args.build()?;
        calibrated(&mut chip)?;
        let mut chip = crate::backend::partitioned_if(Box::new(chip), args.partitioned)?;
        let (in_loop, reused) = trained(
            &args.out.join(format!("in-the-loop-chip{chip_seed}.json")),
            &format!("chip {chip_seed}"),
            args.resume,
            &loop_config,
            &data,
            &mut chip,
            substrate.clone(),
            start_from.clone().map(|d| (&ideal.model, d)),
        )?;
        errln!(
            "chip {chip_seed}: (b) copied {:.2} %   (c) {} {:.2} % ({})",
            100.0 * copied,
            loop_label(args.fine_tune),
            100.0 * in_loop.test_accuracy,
            if reused {
                "from the earlier run".to_string()
            } else {
                format!("{:.1} s", started.elapsed().as_secs_f64())
            }
        );
        chips.push(ChipResult {
            chip_seed,
            substrate,
            copied_accuracy: copied,
            in_the_loop_accuracy: in_loop.test_accuracy,
            in_the_loop_selected_epoch: in_loop.selected_epoch,
            recovered_fraction: recovered(ideal.test_accuracy, copied, in_loop.test_accuracy),
        });
    }
    let copied: Vec<f64> = chips.iter().map(|c| c.copied_accuracy).collect();
    let in_loop: Vec<f64> = chips.iter().map(|c| c.in_the_loop_accuracy).collect();
    let (copied_mean, copied_sd) = mean_sd(&copied);
    let (in_the_loop_mean, in_the_loop_sd) = mean_sd(&in_loop);
    let report = Report {
        format: "spikeloop-compare",
        dataset: config.dataset.to_string(),
        seed: config.seed,
        epochs: config.training.epochs,
        fine_tune_epochs: args.fine_tune,
        ideal_accuracy: ideal.test_accuracy,
        recovered_fraction: recovered(ideal.test_accuracy, copied_mean, in_the_loop_mean),
        chips,
        copied_mean,
        copied_sd,
        in_the_loop_mean,
        in_the_loop_sd,
    };

    outln!(
        "{:<44} {:>18}",
        "test accuracy",
        format!("{} chip(s)", report.chips.len())
    );
    outln!(
        "{:<44} {:>16.2} %",
        "(a) trained ideal, run ideal",
        pct(report.ideal_accuracy)
    );
    outln!(
        "{:<44} {:>9.2} +- {:.2} %",
        "(b) trained ideal, copied to the chip",
        pct(copied_mean),
        pct(copied_sd)
    );
    outln!(
        "{:<44} {:>9.2} +- {:.2} %",
        format!("(c) {} on the chip", loop_label(args.fine_tune)),
        pct(in_the_loop_mean),
        pct(in_the_loop_sd)
    );
    let gap = pct(report.ideal_accuracy - copied_mean);
    let chips = report.chips.len();
    if gap_is_measurable(gap, pct(copied_sd), chips) {
        outln!(
            "gap (a) - (b): {gap:.2} points; (c) recovers {:.0} % of it",
            100.0 * report.recovered_fraction
        );
    } else {
        // The chips ran the ideal network as well as the ideal backend, or the loss is within
        // the chips' spread: a recovered fraction would divide by noise.
        outln!(
            "gap (a) - (b): {gap:.2} points, within the standard error of the chips' mean ({:.2}): copying onto the chips cost nothing measurable, so nothing is to recover; (c) - (a): {:+.2} points",
            standard_error(pct(copied_sd), chips),
            pct(in_the_loop_mean - report.ideal_accuracy)
        );
    }

    spikeloop_files::write_json_atomic(&json, &report, "write the comparison")?;
    let png = args.out.join("compare.png");
    let svg = args.out.join("compare.svg");
    let figure = CompareFigure {
        report: &report,
        chip_seeds: &args.chip_seeds,
        classes: ideal.model.classes.len(),
        yin_yang: config.dataset == DatasetKind::YinYang,
        subtitle: {
            let c = args.emulator.emulator_config()?;
            format!(
                "training seed {}, run seed {}, noise {}; {}",
                report.seed,
                c.run_seed,
                c.noise_preset().unwrap_or("custom"),
                figure_key(args.chip_seeds.len())
            )
        },
    };
    figure.write(&png)?;
    if args.svg {
        figure.write(&svg)?;
    }
    if args.svg {
        outln!(
            "wrote {}, {} and {}",
            json.display(),
            png.display(),
            svg.display()
        );
    } else {
        outln!("wrote {} and {}", json.display(), png.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spikeloop_trainer::Preset;

    #[test]
    fn recovery_is_the_closed_fraction_of_the_gap() {
        assert!((recovered(0.96, 0.80, 0.92) - 0.75).abs() < 1e-12);
        assert!(recovered(0.9, 0.9, 0.9).is_nan());
        // A loss within the chips' spread is no loss to recover; one chip has no spread.
        assert!(!gap_is_measurable(0.05, 0.15, 5));
        assert!(!gap_is_measurable(-0.3, 0.1, 5));
        assert!(gap_is_measurable(6.18, 8.23, 5));
        assert!(gap_is_measurable(0.2, 0.0, 1));
        let (m, s) = mean_sd(&[1.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((s - 2f64.sqrt()).abs() < 1e-12);
    }

    /// A comparison stopped within a training continues it from the checkpoint beside the
    /// model, to the network the uninterrupted training gives, and removes the checkpoint.
    #[test]
    fn an_interrupted_training_resumes_from_its_checkpoint() {
        let dir = std::env::temp_dir().join(format!(
            "spikeloop-compare-checkpoint-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut config = Preset::Chip.config();
        config.training.epochs = 2;
        let data = load_data(&config).expect("Yin-Yang");
        let ideal = || IdealBackend::new();
        let substrate = ideal().substrate();
        let whole = dir.join("whole.json");
        let (a, _) = trained(
            &whole,
            "whole",
            false,
            &config,
            &data,
            &mut ideal(),
            substrate.clone(),
            None,
        )
        .expect("uninterrupted");
        assert!(!checkpoint_of(&whole).exists());

        // The state a two-epoch training leaves when stopped after its first epoch.
        let path = dir.join("ideal.json");
        let mut first = config.clone();
        first.training.epochs = 1;
        let state = train::start(&first, &data, substrate.clone()).expect("start");
        train::run(
            state,
            &data,
            &mut ideal(),
            Some(&checkpoint_of(&path)),
            &mut train::Silent,
        )
        .expect("first epoch");
        let mut state = train::Checkpoint::load(&checkpoint_of(&path)).expect("checkpoint");
        state.config.training.epochs = 2;
        state.save(&checkpoint_of(&path)).expect("save");
        // The same state with its first epoch's learning undone: resuming from it must give
        // another network (so the checkpoint is what a resumed training starts from).
        let mut undone = state.clone();
        let initial = train::start(&config, &data, substrate.clone()).expect("start");
        undone
            .model
            .set_weights(&initial.model.weights())
            .expect("same shapes");

        let mut other = config.clone();
        other.seed += 1;
        let refused = trained(
            &path,
            "ideal",
            true,
            &other,
            &data,
            &mut ideal(),
            substrate.clone(),
            None,
        );
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("another configuration"), "{message}");

        let (b, reused) = trained(
            &path,
            "ideal",
            true,
            &config,
            &data,
            &mut ideal(),
            substrate,
            None,
        )
        .expect("resumed");
        assert!(!reused);
        assert_eq!(a.model.weights(), b.model.weights());
        assert_eq!(a.test_accuracy, b.test_accuracy);
        assert!(path.exists() && !checkpoint_of(&path).exists());

        let path = dir.join("undone.json");
        undone.save(&checkpoint_of(&path)).expect("save");
        let (c, _) = trained(
            &path,
            "undone",
            true,
            &config,
            &data,
            &mut ideal(),
            ideal().substrate(),
            None,
        )
        .expect("resumed");
        assert_ne!(a.model.weights(), c.model.weights());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
