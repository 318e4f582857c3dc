//! `spikeloop calibrate`, and the calibration every chip-running command sets up first.
//!
//! A command that runs a network on a chip (`train`, `infer`, `compare`, `robustness`) takes
//! `--calibration FILE` (a file `spikeloop calibrate` wrote; several may be given, each chip
//! takes its own) or `--uncalibrated`. Without either, an emulated chip is calibrated first and
//! the calibration kept beside the command's output (`calibration-chip1.json`), where the next
//! command on that chip finds it, so that the default flow is the real one: a chip is always
//! calibrated before it is trained on. A kept calibration is never replaced: another one under
//! the same name (the chip under other emulator settings, another calibration file) is kept
//! beside it, named with the fingerprint of its codes (`calibration-chip1-42452959.json`). A
//! device is calibrated with `spikeloop calibrate --device PATH` and then given the file.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use spikeloop_backend::{Backend, Substrate};
use spikeloop_calibration::{Calibration, CalibrationFile, ChipCheck, Options, Targets, calibrate};

use crate::backend::{BackendArgs, BackendKind};

/// The calibration options of every command that runs a network on a chip.
#[derive(Clone, Debug, Default, Args)]
pub struct CalibrationArgs {
    /// Calibration file written by `spikeloop calibrate`, applied to the chip before anything
    /// runs; give it once per chip where a command uses several (each chip takes the file made
    /// for it) [default on an emulated chip: calibrate it first, or reuse the calibration kept
    /// from an earlier command, calibration-<chip>.json beside the output].
    #[arg(long, value_name = "FILE", conflicts_with = "uncalibrated")]
    pub calibration: Vec<PathBuf>,
    /// Run the chip uncalibrated: every circuit on the nominal codes of the network's
    /// parameters, with its fixed-pattern deviations left as they are.
    #[arg(long)]
    pub uncalibrated: bool,
}

impl CalibrationArgs {
    /// These options as command-line words again.
    pub fn flags(&self) -> Vec<String> {
        let mut words = Vec::new();
        for path in &self.calibration {
            words.push("--calibration".to_string());
            words.push(path.display().to_string());
        }
        if self.uncalibrated {
            words.push("--uncalibrated".to_string());
        }
        words
    }
}

/// A calibration in effect on a backend.
#[derive(Clone, Debug)]
pub struct Applied {
    /// Where it was read from or written to.
    pub path: PathBuf,
    /// The calibration.
    pub file: CalibrationFile,
}

impl Applied {
    /// `calibration-chip1.json (codes 0123456789abcdef)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (codes {})",
            self.path.display(),
            self.file.codes_fingerprint()
        )
    }
}

/// The file a calibration of `backend` is kept in within `dir`.
pub fn kept_in(dir: &Path, backend: &dyn Backend) -> PathBuf {
    dir.join(format!("{}.json", kept_stem(backend)))
}

/// What every calibration of `backend` kept in a directory is named after: `calibration-chip1`.
fn kept_stem(backend: &dyn Backend) -> String {
    format!("calibration-{}", backend.file_tag())
}

/// The calibrations kept in `dir` under `backend`'s name: [`kept_in`]'s file first, then those
/// kept beside it because that place was taken (`calibration-chip1-<codes>.json`), by name.
fn kept_files(dir: &Path, backend: &dyn Backend) -> Vec<PathBuf> {
    let plain = kept_in(dir, backend);
    let prefix = format!("{}-", kept_stem(backend));
    let mut beside: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    beside.sort();
    std::iter::once(plain)
        .filter(|p| p.exists())
        .chain(beside)
        .collect()
}

/// Where `file` is kept in `dir`: [`kept_in`]'s file, unless another calibration is kept there;
/// then beside it, named with the fingerprint of its codes, so that no kept calibration (a
/// run's, say) is ever replaced by another.
fn keep_path(dir: &Path, backend: &dyn Backend, file: &CalibrationFile) -> PathBuf {
    let plain = kept_in(dir, backend);
    let codes = file.codes_fingerprint();
    let same = |p: &Path| CalibrationFile::load(p).is_ok_and(|k| k.codes_fingerprint() == codes);
    if !plain.exists() || same(&plain) {
        return plain;
    }
    let short = codes.get(..8).unwrap_or(&codes);
    dir.join(format!("{}-{short}.json", kept_stem(backend)))
}

/// Sets up the calibration of `backend` as `args` say: the named file for this chip, or none
/// with `--uncalibrated`. Without either, the calibration kept in `keep` for this chip is
/// reused, or, with `calibrate_unnamed`, the chip is calibrated now and the calibration kept
/// there. A named file is kept there too, so that a run continued later finds it. The backend's
/// trial noise is left where it was, so that what runs next sees the same noise whether the
/// calibration was made now or reused.
pub fn prepare(
    backend: &mut dyn Backend,
    args: &CalibrationArgs,
    keep: Option<&Path>,
    calibrate_unnamed: bool,
    quiet: bool,
) -> anyhow::Result<Option<Applied>> {
    prepare_wanting(backend, args, keep, None, calibrate_unnamed, quiet)
}

/// [`prepare`], reusing by preference the kept calibration whose codes have the fingerprint
/// `wanted` (the one a run recorded).
fn prepare_wanting(
    backend: &mut dyn Backend,
    args: &CalibrationArgs,
    keep: Option<&Path>,
    wanted: Option<&str>,
    calibrate_unnamed: bool,
    quiet: bool,
) -> anyhow::Result<Option<Applied>> {
    let backend = chip_of(backend);
    if args.uncalibrated {
        return Ok(None);
    }
    if !args.calibration.is_empty() {
        let applied = apply_named(backend, &args.calibration)?;
        if let Some(dir) = keep {
            let kept = keep_path(dir, backend, &applied.file);
            if kept != applied.path {
                applied.file.save(&kept)?;
            }
        }
        return Ok(Some(applied));
    }
    let Some(dir) = keep else {
        return Ok(None);
    };
    let caps = backend.capabilities();
    if !caps.features.parameter_codes {
        return Ok(None);
    }
    let chip = backend.chip_id();
    let mut for_this_chip: Vec<(PathBuf, CalibrationFile)> = Vec::new();
    for path in kept_files(dir, backend) {
        match CalibrationFile::load(&path) {
            Ok(file) if Some(&file.chip_id) == chip.as_ref() => for_this_chip.push((path, file)),
            Ok(_) => tracing::info!("{} is for another chip", path.display()),
            Err(e) => errln!("{e}; not used"),
        }
    }
    let preferred = for_this_chip
        .iter()
        .position(|(_, f)| Some(f.codes_fingerprint().as_str()) == wanted)
        .unwrap_or(0);
    if preferred < for_this_chip.len() {
        let (path, file) = for_this_chip.swap_remove(preferred);
        file.apply(backend, ChipCheck::SameChip, &path)?;
        if !quiet {
            errln!(
                "calibration kept from an earlier command: {}",
                path.display()
            );
        }
        return Ok(Some(Applied { path, file }));
    }
    if !(calibrate_unnamed && caps.features.membrane_recording) {
        return Ok(None);
    }
    spikeloop_files::create_dir(dir)?;
    let (file, _) = run_calibration(backend, &Targets::default(), &Options::default(), quiet)?;
    if !quiet {
        errln!("{}", report_table(&file));
    }
    let path = keep_path(dir, backend, &file);
    file.save(&path)?;
    if let Err(e) = write_figure(&file, &path.with_extension("png")) {
        tracing::warn!("could not draw the calibration figure: {e}");
    }
    let file = CalibrationFile::load(&path)?;
    Ok(Some(Applied { path, file }))
}

/// The backend whose circuits a calibration of `backend` concerns: the chip a partitioned
/// backend runs its parts on, or `backend` itself.
fn chip_of(backend: &mut dyn Backend) -> &mut dyn Backend {
    if backend.chip_backend().is_some() {
        backend
            .chip_backend()
            .expect("a backend that wraps a chip keeps wrapping it")
    } else {
        backend
    }
}

/// Sets up the calibration of `backend` for running `model` as [`prepare`] does, keeping
/// calibrations beside the model; except that, with neither option given, a model trained
/// uncalibrated on this very chip runs uncalibrated, as it was trained.
pub fn for_model(
    backend: &mut dyn Backend,
    args: &CalibrationArgs,
    model: &spikeloop_trainer::Model,
    model_path: &Path,
    calibrate_unnamed: bool,
    quiet: bool,
) -> anyhow::Result<Option<Applied>> {
    let dir = match model_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let recorded = model.provenance.as_ref().map(|p| &p.substrate);
    for_recorded(backend, args, recorded, dir, calibrate_unnamed, quiet)
}

/// Sets up the calibration of `backend` for continuing what ran on `recorded` (a model's or a
/// run's substrate), as [`prepare`] does with `dir` to keep calibrations in; except that, with
/// neither option given, what ran uncalibrated on this very chip runs uncalibrated again.
pub fn for_recorded(
    backend: &mut dyn Backend,
    args: &CalibrationArgs,
    recorded: Option<&Substrate>,
    dir: &Path,
    calibrate_unnamed: bool,
    quiet: bool,
) -> anyhow::Result<Option<Applied>> {
    let named = args.uncalibrated || !args.calibration.is_empty();
    let ran_uncalibrated_here = recorded.is_some_and(|r| {
        !r.settings.contains_key(SETTING) && r.mismatch(&backend.substrate()).is_none()
    });
    if !named && ran_uncalibrated_here {
        return Ok(None);
    }
    let wanted = recorded.and_then(|r| r.settings.get(SETTING).map(String::as_str));
    prepare_wanting(backend, args, Some(dir), wanted, calibrate_unnamed, quiet)
}

/// Applies the file of `paths` made for `backend`'s chip.
fn apply_named(backend: &mut dyn Backend, paths: &[PathBuf]) -> anyhow::Result<Applied> {
    let chip = backend.chip_id();
    let mut others = Vec::new();
    for path in paths {
        let file = CalibrationFile::load(path)?;
        if paths.len() == 1 || Some(&file.chip_id) == chip.as_ref() {
            file.apply(backend, ChipCheck::SameChip, path)?;
            return Ok(Applied {
                path: path.clone(),
                file,
            });
        }
        others.push(format!("{} is for {}", path.display(), file.chip_id));
    }
    bail!(
        "no --calibration file is for {}: {}",
        chip.unwrap_or_else(|| "this backend".into()),
        others.join(", ")
    )
}

/// `substrate` with the calibration in effect: the fingerprint of its codes becomes a setting
/// (a run cannot continue, nor a model be reused, under other codes) and the summary says so.
pub fn described(substrate: Substrate, applied: Option<&Applied>) -> Substrate {
    match applied {
        Some(a) => {
            let mut s = substrate.with(SETTING, a.file.codes_fingerprint());
            s.summary.push_str(SUMMARY);
            s
        }
        None => substrate,
    }
}

/// `substrate` without what [`described`] added for a calibration: what a recorded substrate is
/// compared with before the chip is calibrated.
pub fn without_calibration(substrate: &Substrate) -> Substrate {
    let mut s = substrate.clone();
    if s.settings.remove(SETTING).is_some()
        && let Some(summary) = s.summary.strip_suffix(SUMMARY)
    {
        s.summary = summary.to_string();
    }
    s
}

/// The setting [`described`] adds: the fingerprint of the calibration's codes.
const SETTING: &str = "calibration";

/// What [`described`] adds to the substrate's summary.
const SUMMARY: &str = ", calibrated";

/// Calibrates `backend`, saying so unless `quiet`; leaves the trial noise where it was.
fn run_calibration(
    backend: &mut dyn Backend,
    targets: &Targets,
    options: &Options,
    quiet: bool,
) -> anyhow::Result<(CalibrationFile, Calibration)> {
    let position = backend.noise_position();
    let circuits = backend.capabilities().max_neurons.unwrap_or(0);
    if !quiet {
        errln!(
            "calibrating {} ({circuits} circuits) ...",
            backend
                .chip_id()
                .unwrap_or_else(|| backend.capabilities().name.clone())
        );
    }
    let cal = calibrate(backend, targets, options).context("calibration failed")?;
    if let Some(p) = position {
        backend
            .set_noise_position(p)
            .context("could not restore the trial noise after calibrating")?;
    }
    let file = CalibrationFile::new(&cal, &backend.capabilities().name, targets, options);
    Ok((file, cal))
}

/// Arguments of `spikeloop calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The calibration file to write [default: runs/calibration-<chip>.json]; a report
    /// (.md) and a figure of the distributions before and after (.png) are written beside it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Targets as TOML (see calibration/targets.toml) [default: the reference TTFS targets].
    #[arg(long, value_name = "FILE")]
    targets: Option<PathBuf>,
    /// Seed of the searches' randomised starts.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = crate::backend::seed_parser())]
    seed: u64,
    /// Replace an existing calibration file.
    #[arg(long)]
    force: bool,
    /// Print only where the files went.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Reads calibration targets from a TOML file.
fn load_targets(path: &Path) -> anyhow::Result<Targets> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read the targets {}", path.display()))?;
    let targets: Targets = toml::from_str(&text)
        .with_context(|| format!("invalid calibration targets in {}", path.display()))?;
    targets
        .check()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(targets)
}

/// `spikeloop calibrate`.
pub fn run(args: CalibrateArgs) -> anyhow::Result<()> {
    if args.backend.kind() == BackendKind::Ideal {
        bail!(
            "the ideal backend has no circuits to calibrate; calibrate an emulated chip (--chip-seed N) or a device (--device PATH)"
        );
    }
    let targets = match &args.targets {
        Some(p) => load_targets(p)?,
        None => Targets::default(),
    };
    let mut backend = args.backend.build()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| kept_in(Path::new("runs"), backend.as_ref()));
    if out.exists() && !args.force {
        bail!(
            "{} already exists; keep it and choose another file with --out, or replace it with --force",
            out.display()
        );
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        spikeloop_files::create_dir(dir)?;
    }
    let options = Options {
        seed: args.seed,
        ..Options::default()
    };
    let (file, _) = run_calibration(chip_of(backend.as_mut()), &targets, &options, args.quiet)?;
    if !args.quiet {
        outln!("{}", report_table(&file));
    }
    file.save(&out)?;
    let report = out.with_extension("md");
    spikeloop_files::write_atomic(
        &report,
        report_markdown(&file).as_bytes(),
        "write the calibration report",
    )?;
    let figure = out.with_extension("png");
    write_figure(&file, &figure)?;
    outln!(
        "wrote {} (calibration), {} (report), {} (figure)",
        out.display(),
        report.display(),
        figure.display()
    );
    Ok(())
}

/// The unit of a parameter as a table needs it (`mV/us` for the synaptic gain).
fn short_unit(p: spikeloop_backend::AnalogParameter) -> &'static str {
    p.unit().split(' ').next().unwrap_or_default()
}

/// The report as a plain-text table.
fn report_table(file: &CalibrationFile) -> String {
    let mut t = format!(
        "calibrated {}: {} circuits in {:.1} s (on a chip: {:.1} s of hardware time, {} recordings, {} code writes)\n",
        file.chip_id,
        file.codes.len(),
        file.wall_time_s,
        file.hardware_time_s,
        file.recordings,
        file.writes
    );
    t.push_str(&format!(
        "{:<14} {:>12} {:>12} {:>12} {:>6}  {:<24} {:>6}\n",
        "parameter", "target", "SD before", "SD after", "ratio", "5-95 % after", "failed"
    ));
    for p in &file.parameters {
        let u = short_unit(p.parameter);
        t.push_str(&format!(
            "{:<14} {:>12} {:>12} {:>12} {:>6.3}  {:<24} {:>6}\n",
            p.parameter.name(),
            format!("{:.2} {u}", p.target),
            format!("{:.3} {u}", p.before.sd),
            format!("{:.3} {u}", p.after.sd),
            p.after.sd / p.before.sd,
            format!("{:.2}..{:.2} {u}", p.after.p5, p.after.p95),
            p.failed.len()
        ));
    }
    t.trim_end().to_string()
}

/// The report as Markdown: the table, then every failed circuit by parameter.
fn report_markdown(file: &CalibrationFile) -> String {
    let mut m = format!(
        "# Calibration of {}\n\n{} circuits, spikeloop {}, {}. Wall clock {:.1} s; on a chip {:.1} s of hardware time ({} membrane recordings, {} parameter-code writes).\n\n",
        file.chip_id,
        file.codes.len(),
        file.spikeloop_version,
        file.created,
        file.wall_time_s,
        file.hardware_time_s,
        file.recordings,
        file.writes
    );
    m.push_str("Spread across circuits before (start codes) and after calibration:\n\n");
    m.push_str("| parameter | target | SD before | SD after | ratio | 5-95 % before | 5-95 % after | failed |\n|---|---|---|---|---|---|---|---|\n");
    for p in &file.parameters {
        let u = short_unit(p.parameter);
        m.push_str(&format!(
            "| {} | {:.2} {u} | {:.3} {u} | {:.3} {u} | {:.3} | {:.2}..{:.2} {u} | {:.2}..{:.2} {u} | {} |\n",
            p.parameter.name(),
            p.target,
            p.before.sd,
            p.after.sd,
            p.after.sd / p.before.sd,
            p.before.p5,
            p.before.p95,
            p.after.p5,
            p.after.p95,
            p.failed.len()
        ));
    }
    m.push_str(
        "\nFailed circuits (further from the target than the tolerance, or unmeasurable):\n\n",
    );
    for p in &file.parameters {
        let list = if p.failed.is_empty() {
            "none".to_string()
        } else {
            p.failed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        m.push_str(&format!("- {}: {list}\n", p.parameter.name()));
    }
    m
}

/// The distributions of every parameter before and after, one panel each.
fn write_figure(file: &CalibrationFile, path: &Path) -> anyhow::Result<()> {
    let captions: Vec<String> = file
        .parameters
        .iter()
        .map(|p| format!("{} (target {:.2})", p.parameter.name(), p.target))
        .collect();
    let panels: Vec<spikeloop_plot::DistributionPanel<'_>> = file
        .parameters
        .iter()
        .zip(&captions)
        .map(|(p, caption)| spikeloop_plot::DistributionPanel {
            caption,
            x_label: p.parameter.unit(),
            before: &p.before_values,
            after: &p.achieved,
            target: Some(p.target),
        })
        .collect();
    let subtitle = format!("{} circuits; {}", file.codes.len(), file.created);
    spikeloop_plot::write_distributions(
        path,
        &spikeloop_plot::Distributions {
            title: &format!("Calibration of {}", file.chip_id),
            subtitle: &subtitle,
            labels: ("uncalibrated", "calibrated"),
            count_label: "Circuits",
            panels: &panels,
        },
    )
    .with_context(|| format!("could not write {}", path.display()))
}
