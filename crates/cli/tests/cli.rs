//! The `spikeloop` binary as a user runs it: help, training, resuming, inference, and clear
//! errors (never a panic) for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use spikeloop_lif::{NeuronParams, first_spike_time};

fn spikeloop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spikeloop"))
        .args(args)
        .output()
        .expect("run spikeloop")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A fresh directory under the system's temporary directory, removed again when dropped
/// (when the test passes and when it fails).
struct TempDir {
    _guard: tempfile::TempDir,
    path: PathBuf,
}

impl std::ops::Deref for TempDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.path
    }
}

fn temp_dir(name: &str) -> TempDir {
    let guard = tempfile::Builder::new()
        .prefix(&format!("spikeloop-cli-{name}-"))
        .tempdir()
        .expect("temp dir");
    TempDir {
        path: guard.path().to_path_buf(),
        _guard: guard,
    }
}

/// Fails with a clear message: non-zero exit, no panic, and the message mentions `needle`.
fn assert_clear_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "stderr lacks {needle:?}: {err}"
    );
}

/// A short training run of a narrow network on the ideal backend.
fn train(dir: &Path, extra: &[&str]) -> Output {
    let dir = dir.to_str().expect("utf-8 path");
    let mut args = vec![
        "train",
        "--quiet",
        "--backend",
        "ideal",
        "--hidden",
        "16",
        "--out",
        dir,
    ];
    args.extend_from_slice(extra);
    spikeloop(&args)
}

#[test]
fn help_lists_the_commands() {
    let o = spikeloop(&["--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    for cmd in ["train", "infer", "bench", "config"] {
        assert!(text.contains(cmd), "help lacks {cmd}: {text}");
    }
}

#[test]
fn default_config_parses_back() {
    let o = spikeloop(&["config"]);
    assert!(o.status.success());
    let dir = temp_dir("config");
    let path = dir.join("c.toml");
    std::fs::write(&path, &o.stdout).expect("write");
    let o = train(
        &dir.join("run"),
        &["--config", path.to_str().expect("utf-8"), "--epochs", "1"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = temp_dir("bad");
    let missing = dir.join("missing.toml");
    assert_clear_error(
        &spikeloop(&["train", "--config", missing.to_str().expect("utf-8")]),
        "could not read the config file",
    );

    let malformed = dir.join("malformed.toml");
    std::fs::write(&malformed, "[training\nepochs = ").expect("write");
    assert_clear_error(
        &spikeloop(&["train", "--config", malformed.to_str().expect("utf-8")]),
        "invalid configuration",
    );

    let bad_value = dir.join("bad_value.toml");
    std::fs::write(&bad_value, "[training]\nepochs = -3\n").expect("write");
    assert_clear_error(
        &spikeloop(&["train", "--config", bad_value.to_str().expect("utf-8")]),
        "epochs",
    );

    assert_clear_error(&spikeloop(&["train", "--epochs", "-5"]), "epochs");
    assert_clear_error(&spikeloop(&["train", "--epochs", "0"]), "epochs");
    assert_clear_error(
        &spikeloop(&["train", "--dataset", "mnist-9000"]),
        "yin-yang",
    );

    let no_model = dir.join("none.json");
    assert_clear_error(
        &spikeloop(&["infer", "--model", no_model.to_str().expect("utf-8")]),
        "could not read the model file",
    );

    let not_json = dir.join("not.json");
    std::fs::write(&not_json, "this is not json").expect("write");
    assert_clear_error(
        &spikeloop(&["infer", "--model", not_json.to_str().expect("utf-8")]),
        "not a valid model file",
    );
}

#[test]
fn nan_in_a_model_is_rejected() {
    let dir = temp_dir("nan");
    let o = train(&dir, &["--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.join("model.json")).expect("model");
    let mut model: serde_json::Value = serde_json::from_str(&text).expect("json");
    // JSON has no NaN literal: a model written by another tool may carry it as a bare token or
    // as null. Both must be refused with a clear message.
    model["layers"][0]["weights"][0][0] = serde_json::Value::Null;
    let null_path = dir.join("null.json");
    std::fs::write(&null_path, model.to_string()).expect("write");
    assert_clear_error(
        &spikeloop(&["infer", "--model", null_path.to_str().expect("utf-8")]),
        "model",
    );
    let nan_path = dir.join("nan.json");
    std::fs::write(&nan_path, model.to_string().replacen("null", "NaN", 1)).expect("write");
    assert_clear_error(
        &spikeloop(&["infer", "--model", nan_path.to_str().expect("utf-8")]),
        "not a valid model file",
    );
}

/// `text` with the first non-zero digit of its first weight changed, as a damaged disk would.
fn flip_a_weight_digit(text: &str) -> String {
    let at = text.find("\"weights\"").expect("weights");
    let digit = at
        + text[at..]
            .find(|c: char| c.is_ascii_digit() && c != '0')
            .expect("digit");
    let mut flipped = text.to_string();
    let new = if flipped.as_bytes()[digit] == b'9' {
        "8"
    } else {
        "9"
    };
    flipped.replace_range(digit..=digit, new);
    flipped
}

/// Models and checkpoints carry a checksum: a flipped digit or a hand edit is refused, and a
/// hand-written model (no provenance, no checksum) is validated key by key and shape by shape.
#[test]
fn damaged_or_hand_edited_models_and_checkpoints_are_refused() {
    let dir = temp_dir("damaged");
    let o = train(&dir, &["--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let infer = |path: &Path| spikeloop(&["infer", "--model", path.to_str().expect("utf-8")]);
    let text = std::fs::read_to_string(dir.join("model.json")).expect("model");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    };

    // A flipped digit inside the weights.
    let flipped = flip_a_weight_digit(&text);
    assert_clear_error(&infer(&write("flipped.json", &flipped)), "checksum");

    // A hand-edited shape, with and without the checksum.
    let mut model: serde_json::Value = serde_json::from_str(&text).expect("json");
    model["layers"][0]["size"] = 50.into();
    assert_clear_error(&infer(&write("shape.json", &model.to_string())), "checksum");
    let object = model.as_object_mut().expect("object");
    object.remove("checksum");
    object.remove("provenance");
    assert_clear_error(
        &infer(&write("shape-bare.json", &model.to_string())),
        "layer",
    );

    // A hand-written model is checked as strictly as a config.
    let mut bare: serde_json::Value = serde_json::from_str(&text).expect("json");
    let object = bare.as_object_mut().expect("object");
    object.remove("checksum");
    object.remove("provenance");
    assert!(
        infer(&write("bare.json", &bare.to_string()))
            .status
            .success(),
        "a bare model runs"
    );
    let mut unknown = bare.clone();
    unknown["layers"][0]["neuron"]["tau_x"] = 1.0.into();
    assert_clear_error(
        &infer(&write("unknown.json", &unknown.to_string())),
        "tau_x",
    );
    let mut swapped = bare.clone();
    swapped["encoding"]["early"] = 3.0.into();
    assert_clear_error(
        &infer(&write("encoding.json", &swapped.to_string())),
        "early",
    );
    let mut negative = bare.clone();
    negative["layers"][0]["bias_times"][0] = (-1.0).into();
    assert_clear_error(&infer(&write("bias.json", &negative.to_string())), "bias");
    let mut recorded = bare.clone();
    recorded["provenance"] =
        serde_json::from_str::<serde_json::Value>(&text).expect("json")["provenance"].clone();
    assert_clear_error(
        &infer(&write("unsealed.json", &recorded.to_string())),
        "checksum",
    );

    // Another kind of spikeloop file is named as what it is.
    let o = infer(&dir.join("checkpoint.json"));
    assert_clear_error(&o, "this is a checkpoint");
    assert_clear_error(
        &o,
        &format!(
            "continue the run with `spikeloop train --resume --out {}`",
            dir.display()
        ),
    );

    // A damaged checkpoint is refused on resume, and the run is left as it was.
    let checkpoint = std::fs::read_to_string(dir.join("checkpoint.json")).expect("checkpoint");
    let flipped = flip_a_weight_digit(&checkpoint);
    std::fs::write(dir.join("checkpoint.json"), &flipped).expect("write");
    assert_clear_error(&train(&dir, &["--epochs", "2", "--resume"]), "checksum");
    assert_eq!(
        std::fs::read_to_string(dir.join("checkpoint.json")).expect("checkpoint"),
        flipped,
        "the refused checkpoint is kept for inspection"
    );
}

/// Messages say what is wrong, once: where a config key is, that a path is no serial port, the
/// operating system's text a single time, and no colour codes in a log that goes to a file.
#[test]
fn messages_name_the_problem_once_and_where_it_is() {
    let dir = temp_dir("messages");
    let config = dir.join("typo.toml");
    std::fs::write(&config, "[network]\nhiden = [8]\n").expect("write");
    let o = spikeloop(&["train", "--config", config.to_str().expect("utf-8")]);
    assert_clear_error(&o, "line 2, column 1");
    assert_clear_error(&o, "unknown field `hiden`");

    let file = dir.join("not-a-port");
    std::fs::write(&file, "").expect("write");
    for (port, says) in [
        (file.to_str().expect("utf-8"), "it is a regular file"),
        ("/dev/null", "not a terminal device"),
        (dir.to_str().expect("utf-8"), "it is a directory"),
    ] {
        let o = spikeloop(&[
            "train",
            "--device",
            port,
            "--out",
            dir.join("r").to_str().expect("utf-8"),
        ]);
        assert_clear_error(&o, says);
        assert_clear_error(&o, "not a serial port");
        assert_clear_error(&o, "`spikeloop ports` lists the serial ports");
        assert!(!stderr(&o).contains("plugged in"), "{}", stderr(&o));
    }

    let o = spikeloop(&["train", "--config", dir.to_str().expect("utf-8")]);
    assert_clear_error(&o, "os error 21");
    assert_eq!(
        stderr(&o).matches("os error 21").count(),
        1,
        "{}",
        stderr(&o)
    );

    let o = Command::new(env!("CARGO_BIN_EXE_spikeloop"))
        .args([
            "train",
            "--quiet",
            "--backend",
            "ideal",
            "--hidden",
            "8",
            "--epochs",
            "1",
        ])
        .arg("--out")
        .arg(dir.join("logged"))
        .env("RUST_LOG", "debug")
        .output()
        .expect("run spikeloop");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).is_empty(), "RUST_LOG=debug logs");
    assert!(
        !stderr(&o).contains('\u{1b}'),
        "colour codes: {}",
        stderr(&o)
    );
}

#[test]
fn an_existing_run_is_not_overwritten() {
    let dir = temp_dir("keep");
    assert!(train(&dir, &["--epochs", "1"]).status.success());
    let before = std::fs::read(dir.join("model.json")).expect("model");
    assert_clear_error(&train(&dir, &["--epochs", "1", "--seed", "9"]), "--resume");
    assert_eq!(
        before,
        std::fs::read(dir.join("model.json")).expect("model"),
        "model was modified"
    );
    assert!(
        train(&dir, &["--epochs", "1", "--seed", "9", "--force"])
            .status
            .success()
    );
}

#[test]
fn resume_continues_to_the_identical_model() {
    let base = temp_dir("resume");
    let straight = base.join("straight");
    let split = base.join("split");
    assert!(train(&straight, &["--epochs", "3"]).status.success());
    assert!(train(&split, &["--epochs", "2"]).status.success());
    let o = spikeloop(&[
        "train",
        "--quiet",
        "--backend",
        "ideal",
        "--resume",
        "--epochs",
        "3",
        "--out",
        split.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let weights = |d: &Path| {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("model.json")).expect("model"))
                .expect("json");
        v["layers"].clone()
    };
    assert_eq!(weights(&straight), weights(&split));
    for f in [
        "metrics.csv",
        "training.png",
        "checkpoint.json",
        "config.toml",
    ] {
        assert!(split.join(f).exists(), "{f} missing");
    }
}

/// Regression: `--resume --shift 2` on a run of digits said that shifts do not apply to
/// yin-yang: the flag was checked against the preset's data set before the run's own
/// configuration was read.
#[test]
fn flags_given_with_resume_are_compared_with_the_run() {
    let dir = temp_dir("resume-flags");
    let d = dir.to_str().expect("utf-8");
    let start = [
        "train",
        "--quiet",
        "--backend",
        "ideal",
        "--dataset",
        "digits",
        "--hidden",
        "20",
    ];
    let o = spikeloop(&[&start[..], &["--shift", "1", "--epochs", "1", "--out", d]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = spikeloop(&[
        "train",
        "--resume",
        "--backend",
        "ideal",
        "--shift",
        "2",
        "--epochs",
        "2",
        "--out",
        d,
    ]);
    assert_clear_error(&o, "only --epochs may change");
    assert!(!stderr(&o).contains("yin-yang"), "{}", stderr(&o));
    // The flags it started with are accepted again.
    let o = spikeloop(
        &[
            &start[..],
            &["--shift", "1", "--epochs", "2", "--resume", "--out", d],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn infer_matches_closed_form_spike_times() {
    let dir = temp_dir("infer");
    assert!(train(&dir, &["--epochs", "1"]).status.success());
    let infer = |out: &Path| {
        spikeloop(&[
            "infer",
            "--backend",
            "ideal",
            "--model",
            dir.join("model.json").to_str().expect("utf-8"),
            "--split",
            "validation",
            "--out",
            out.to_str().expect("utf-8"),
        ])
    };
    // Where the report cannot go is said before the work, not after it.
    assert_clear_error(&infer(&dir), "is a directory; give the JSON file to write");
    assert_clear_error(
        &infer(&dir.join("metrics.csv").join("infer.json")),
        "metrics.csv is a file",
    );
    // A built-in data set has no files to look for elsewhere.
    let o = spikeloop(&[
        "infer",
        "--model",
        dir.join("model.json").to_str().expect("utf-8"),
        "--data-dir",
        "/tmp",
    ]);
    assert_clear_error(
        &o,
        "--data-dir /tmp: applies to the data sets read from IDX files",
    );
    let out = dir.join("reports").join("infer.json");
    let o = infer(&out);
    assert!(o.status.success(), "{}", stderr(&o));
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).expect("model"))
            .expect("json");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    assert_eq!(report["samples"], 1000);
    let params = NeuronParams::REFERENCE;
    let times = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|t| t.as_f64().unwrap_or(f64::INFINITY))
            .collect()
    };
    let mut checked = 0;
    let mut worst: f64 = 0.0;
    for s in 0..1000 {
        let mut layer_input = times(&report["inputs"][s]);
        for (l, layer) in model["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .enumerate()
        {
            layer_input.extend(times(&layer["bias_times"]));
            let measured = times(&report["layers"][l]["spike_times"][s]);
            for (j, row) in layer["weights"]
                .as_array()
                .expect("rows")
                .iter()
                .enumerate()
            {
                let exact = first_spike_time(&params, &layer_input, &times(row));
                let got = measured[j];
                if exact.is_finite() || got.is_finite() {
                    worst = worst.max((exact - got).abs());
                    checked += 1;
                }
            }
            layer_input = measured;
        }
    }
    assert!(checked > 10_000, "only {checked} spikes checked");
    assert!(worst <= 1e-9, "largest deviation {worst} tau_s");
}

#[test]
fn trains_and_infers_on_the_emulated_chip_by_default() {
    let dir = temp_dir("chip");
    let d = dir.to_str().expect("utf-8");
    let o = spikeloop(&[
        "train",
        "--quiet",
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--chip-seed",
        "3",
        "--out",
        d,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).expect("model"))
            .expect("json");
    // The whole substrate is recorded: its kind, summary and every effective setting.
    let substrate = &model["provenance"]["substrate"];
    assert_eq!(substrate["kind"], "emulator");
    // The chip was calibrated first, and its calibration kept in the run directory.
    assert_eq!(
        substrate["summary"],
        "emulator chip 3, run seed 1, noise default, calibrated"
    );
    assert_eq!(substrate["settings"]["chip_seed"], "3");
    let kept = spikeloop_calibration::CalibrationFile::load(&dir.join("calibration-chip3.json"))
        .expect("the calibration is kept beside the run");
    assert_eq!(
        substrate["settings"]["calibration"].as_str(),
        Some(kept.codes_fingerprint().as_str()),
        "the model names its calibration's codes"
    );
    assert!(dir.join("calibration-chip3.png").exists());
    assert!(
        substrate["settings"].as_object().expect("settings").len() > 20,
        "every emulator setting is recorded: {substrate}"
    );
    let config = std::fs::read_to_string(dir.join("config.toml")).expect("config.toml");
    assert!(
        config.contains("emulator chip 3, run seed 1, noise default, calibrated")
            && config.contains("chip_seed"),
        "config.toml names the substrate: {config}"
    );
    let checkpoint = std::fs::read_to_string(dir.join("checkpoint.json")).expect("checkpoint");
    assert!(checkpoint.contains("\"substrate\"") && checkpoint.contains("\"checksum\""));
    assert_eq!(
        model["encoding"]["repeat"], 5,
        "the chip preset feeds every input 5 times"
    );
    // The test accuracy training reported is reproduced from the written files alone.
    let out = dir.join("infer.json");
    let o = spikeloop(&[
        "infer",
        "--model",
        dir.join("model.json").to_str().expect("utf-8"),
        "--chip-seed",
        "3",
        "--split",
        "test",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("emulator"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    assert_eq!(
        report["accuracy"], model["provenance"]["test_accuracy"],
        "infer reproduces the test accuracy training reported"
    );
    // bench measures the model and says what it is worth on the backend, by the same rule.
    let model_file = dir.join("model.json");
    let bench = |extra: &[&str]| {
        let mut args = vec![
            "bench",
            "--model",
            model_file.to_str().expect("utf-8"),
            "--chip-seed",
            "3",
            "--seconds",
            "0.05",
            "--thread-counts",
            "1",
        ];
        args.extend_from_slice(extra);
        let o = spikeloop(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let said_by_bench = bench(&[]);
    // Its figures name the machine and the build they were measured on.
    let build = if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    };
    assert!(
        said_by_bench.contains("host: ")
            && said_by_bench.contains("vector instructions")
            && said_by_bench.contains(build),
        "bench does not name its host: {said_by_bench}"
    );
    let accuracy = model["provenance"]["test_accuracy"]
        .as_f64()
        .expect("accuracy");
    let said = format!("test accuracy {:.2} %", 100.0 * accuracy);
    assert!(
        said_by_bench.contains(&said),
        "bench lacks {said:?}: {said_by_bench}"
    );
    // With no epochs to time, bench measures the throughputs only.
    let without_epochs = bench(&["--epochs", "0"]);
    let row = without_epochs
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or_else(|| panic!("no row for 1 thread: {without_epochs}"));
    assert!(row.trim_end().ends_with('-'), "an epoch was timed: {row}");
    // Resuming on another noise preset or emulator configuration is refused, naming the
    // difference, before any chip is calibrated: the run's files stay as they were (a refused
    // resume on `--noise none` used to calibrate that chip and replace the run's calibration).
    let run_files = || {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.as_path())
            .expect("run directory")
            .map(|e| {
                let path = e.expect("entry").path();
                let bytes = std::fs::read(&path).unwrap_or_default();
                (path.display().to_string(), bytes)
            })
            .collect();
        files.sort();
        files
    };
    let emulator_config = dir.join("emulator.toml");
    std::fs::write(&emulator_config, "[timing]\nbatch_overhead_us = 1.0\n").expect("write");
    let before = run_files();
    assert!(
        before
            .iter()
            .any(|(name, _)| name.ends_with("calibration-chip3.json")),
        "the run keeps its chip's calibration"
    );
    let resume = |backend: &[&str]| {
        let mut args = vec!["train", "--quiet", "--resume", "--epochs", "2", "--out", d];
        args.extend_from_slice(backend);
        spikeloop(&args)
    };
    assert_clear_error(&resume(&["--chip-seed", "3", "--noise", "none"]), "noise");
    let other_timing = emulator_config.to_str().expect("utf-8");
    assert_clear_error(
        &resume(&["--chip-seed", "3", "--emulator-config", other_timing]),
        "batch_overhead_us",
    );
    // Resuming on another chip is refused: its noise would not continue the run's.
    assert_clear_error(&resume(&["--chip-seed", "4"]), "chip_seed was 3, now 4");
    // Nor is the run (on an emulated chip) resumed on the exact model.
    assert_clear_error(&resume(&["--backend", "ideal"]), "backend kind ideal");
    assert!(
        run_files() == before,
        "a refused resume changed the run's files"
    );
}

/// Regression: a closed stdout or stderr (`spikeloop infer ... | head -1`) panicked with
/// "failed printing to stdout: Broken pipe". Now the output is dropped and the run completes
/// and writes its files.
#[test]
fn a_closed_stdout_or_stderr_neither_panics_nor_loses_the_run() {
    let dir = temp_dir("closed-pipe");
    let d = dir.to_str().expect("utf-8");
    let closed = |args: &[&str], log: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spikeloop"));
        cmd.args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if log {
            cmd.env("RUST_LOG", "info");
        }
        let mut child = cmd.spawn().expect("spawn");
        // Close both pipes before the program writes anything.
        drop(child.stdout.take());
        drop(child.stderr.take());
        child.wait().expect("wait")
    };
    let status = closed(
        &[
            "train",
            "--backend",
            "ideal",
            "--hidden",
            "8",
            "--epochs",
            "2",
            "--out",
            d,
        ],
        true,
    );
    assert!(status.success(), "{status:?}");
    assert!(
        dir.join("model.json").exists(),
        "the run's files were written"
    );
    let model = dir.join("model.json");
    let out = dir.join("infer.json");
    let status = closed(
        &[
            "infer",
            "--backend",
            "ideal",
            "--model",
            model.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
        ],
        false,
    );
    assert!(status.success(), "{status:?}");
    assert!(out.exists());
}

/// Values that cannot work are refused before anything starts, with the allowed range.
#[test]
fn impossible_sizes_durations_thread_counts_and_seeds_are_refused_up_front() {
    let dir = temp_dir("bounds");
    let d = dir.to_str().expect("utf-8");
    assert_clear_error(
        &spikeloop(&["--threads", "100000", "config"]),
        "allowed 1 to 1024",
    );
    assert_clear_error(
        &spikeloop(&["bench", "--backend", "ideal", "--seconds", "1e20"]),
        "at most 3600 seconds",
    );
    assert_clear_error(
        &train(&dir, &["--hidden", "1000000000"]),
        "at most 100000 per layer",
    );
    assert_clear_error(
        &spikeloop(&[
            "train",
            "--backend",
            "ideal",
            "--hidden",
            "20000,20000",
            "--out",
            d,
        ]),
        "at most 50000000",
    );
    assert_clear_error(
        &spikeloop(&["train", "--seed", "18446744073709551615", "--out", d]),
        "0..=9223372036854775807",
    );
    // A negative number reaches the range check rather than being taken for a flag.
    assert_clear_error(
        &train(&dir, &["--learning-rate", "-1"]),
        "training.learning_rate = -1; must be a finite number > 0",
    );
    assert_clear_error(
        &spikeloop(&["bench", "--backend", "ideal", "--seconds", "-1"]),
        "--seconds -1: allowed more than 0",
    );
    assert!(!dir.join("model.json").exists());
}

/// Flags that would do nothing are refused rather than silently ignored.
#[test]
fn flags_that_do_nothing_are_refused() {
    let dir = temp_dir("useless-flags");
    for flag in [
        &["--chip-seed", "3"][..],
        &["--run-seed", "2"],
        &["--noise", "none"],
        &["--pace"],
    ] {
        assert_clear_error(&train(&dir, flag), "do nothing with --backend ideal");
    }
    assert_clear_error(
        &spikeloop(&["compare", "--chip-seed", "2", "--epochs", "1"]),
        "does nothing in compare",
    );
    assert_clear_error(
        &spikeloop(&["compare", "--chip-seeds", "1,2,1", "--epochs", "1"]),
        "lists chip 1 twice",
    );
}

/// Regression: input jitter that pushed a time past the chip's sample window aborted the
/// epoch; it is reflected back into the window, and a diverging training says so.
#[test]
fn jitter_stays_in_the_window_and_divergence_is_named() {
    let dir = temp_dir("jitter");
    let d = dir.to_str().expect("utf-8");
    let o = spikeloop(&[
        "train",
        "--quiet",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--input-jitter",
        "5",
        "--out",
        d,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = spikeloop(&[
        "train",
        "--quiet",
        "--backend",
        "ideal",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--learning-rate",
        "1e308",
        "--out",
        d,
        "--force",
    ]);
    assert_clear_error(&o, "training diverged at epoch 1, batch");
}

/// The files of `dir` whose names mark them as temporary (`.checkpoint.json.tmp4711`).
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".tmp") || n.starts_with(".replaced-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Regression: `train` and `train --backend ideal` shared `runs/yin-yang-seed0`, so the
/// README's second step refused to run. Default names now say what differs.
#[test]
fn default_run_directories_and_inference_files_name_what_differs() {
    let cwd = temp_dir("default-dirs");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_spikeloop"))
            .args(args)
            .current_dir(&*cwd)
            .output()
            .expect("run spikeloop");
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    let small = ["--quiet", "--hidden", "8", "--epochs", "1"];
    run(&[&["train", "--backend", "ideal"][..], &small].concat());
    run(&[&["train"][..], &small].concat());
    run(&[&["train", "--run-seed", "4"][..], &small].concat());
    for dir in [
        "yin-yang-ideal-seed0",
        "yin-yang-chip1-seed0",
        "yin-yang-chip1-run4-seed0",
    ] {
        assert!(
            cwd.join("runs").join(dir).join("model.json").exists(),
            "{dir}"
        );
    }
    run(&[
        "infer",
        "--backend",
        "ideal",
        "--model",
        "runs/yin-yang-ideal-seed0/model.json",
    ]);
    assert!(
        cwd.join("runs/yin-yang-ideal-seed0/infer-model-test-ideal.json")
            .exists()
    );
}

/// `spikeloop compare` on chip 2 alone for `epochs` epochs into `out`, with `extra` flags.
fn compare_on_chip_2(out: &str, epochs: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "compare",
        "--epochs",
        epochs,
        "--chip-seeds",
        "2",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    spikeloop(&args)
}

/// `compare` refuses to overwrite a comparison, and `--resume` reuses the networks it trained.
#[test]
fn compare_refuses_to_overwrite_and_resumes() {
    let dir = temp_dir("compare");
    let d = dir.to_str().expect("utf-8");
    let compare = |extra: &[&str]| compare_on_chip_2(d, "1", extra);
    let first = compare(&[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let report = std::fs::read_to_string(dir.join("compare.json")).expect("report");
    assert_clear_error(&compare(&[]), "already holds a comparison");
    let resumed = compare(&["--resume", "--svg"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(stderr(&resumed).matches("from the earlier run").count(), 2);
    // The figure starts at chance level, says what its error bars are, shows each chip and
    // marks the published chip result.
    let svg = std::fs::read_to_string(dir.join("compare.svg")).expect("compare.svg");
    for needle in [
        "chance 33.3 %",
        "SD over n = 1 chips",
        "dots: each chip",
        "reference chip result 95.0 %",
        "\n30\n</text>",
    ] {
        assert!(svg.contains(needle), "compare.svg lacks {needle:?}");
    }
    assert_eq!(
        report,
        std::fs::read_to_string(dir.join("compare.json")).expect("report")
    );
    assert_clear_error(
        &compare(&["--resume", "--seed", "5"]),
        "another configuration",
    );
    assert!(compare(&["--force"]).status.success());
}

/// training.png marks the selected epoch, names the seeds and the substrate, and plots the
/// learning rate and the stabilisers; --svg writes the same figure as SVG.
#[test]
fn the_training_figure_names_its_run_and_can_be_svg() {
    let dir = temp_dir("figure");
    let o = train(&dir, &["--epochs", "3", "--svg"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).expect("model"))
            .expect("json");
    let selected = model["provenance"]["selected_epoch"]
        .as_u64()
        .expect("epoch");
    let svg = std::fs::read_to_string(dir.join("training.svg")).expect("training.svg");
    for needle in [
        format!("Selected epoch {selected}"),
        "training seed 0".to_string(),
        "on ideal".to_string(),
        "Learning rate".to_string(),
        "Bumped batches (total".to_string(),
        "Chopped gradients (total".to_string(),
    ] {
        assert!(svg.contains(&needle), "training.svg lacks {needle:?}");
    }
    assert!(dir.join("training.png").exists());
    // Written atomically through temporary files, but readable like any file the user writes.
    #[cfg(unix)]
    for name in [
        "model.json",
        "checkpoint.json",
        "config.toml",
        "metrics.csv",
        "training.png",
        "training.svg",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(name))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{name} has mode {:o}", mode & 0o777);
    }
}

/// The software preset trains with batches of 50 where the reference takes 150, so it bumps
/// weights in most batches from the second epoch on while the reference bumps none in its first
/// three epochs. With the reference's settings no batch of epochs 1-3 is bumped and the
/// validation accuracy climbs as the reference's does; the progress line and metrics.csv say how
/// many batches were bumped.
#[test]
fn with_the_reference_settings_training_starts_like_the_reference() {
    let dir = temp_dir("reference");
    let o = spikeloop(&[
        "train",
        "--backend",
        "ideal",
        "--epochs",
        "3",
        "--batch-size",
        "150",
        "--out",
        dir.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // stderr is not a terminal here: one plain line per epoch.
    assert!(
        stderr(&o).contains("epoch    1/3") && stderr(&o).contains("bumped 0/34"),
        "{}",
        stderr(&o)
    );
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).expect("metrics");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).expect("column");
    let (bumped, validation) = (column("bumped_batches"), column("validation_accuracy"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4, "epochs 0-3");
    for row in &rows[1..] {
        assert_eq!(row[bumped], "0", "a bumped batch in epochs 1-3: {csv}");
    }
    let after_three: f64 = rows[3][validation].parse().expect("accuracy");
    assert!(
        after_three > 0.75,
        "validation after 3 epochs: {after_three}"
    );
}

/// Regression: a new run calibrated the emulated chip, writing its calibration into the run
/// directory, before it found that its data were missing. The data come first now: the error
/// is immediate and nothing is written.
#[test]
fn missing_data_is_reported_before_anything_is_written() {
    let dir = temp_dir("no-data");
    let out = dir.join("run");
    let absent = dir.join("absent");
    let o = spikeloop(&[
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        absent.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_clear_error(&o, "absent");
    assert!(!stderr(&o).contains("calibration"), "{}", stderr(&o));
    assert!(!out.exists(), "the run directory was created");
}

/// Regression: `--force` deleted the old run before the new one had succeeded. A new run
/// that fails before its first checkpoint leaves the old run exactly as it was.
#[test]
fn force_keeps_the_old_run_until_the_new_one_has_a_checkpoint() {
    let dir = temp_dir("force");
    let d = dir.to_str().expect("utf-8");
    assert!(train(&dir, &["--epochs", "1"]).status.success());
    let before = std::fs::read(dir.join("model.json")).expect("model");
    // 600 neurons do not fit the emulated chip: refused at the first configuration.
    let o = spikeloop(&[
        "train", "--quiet", "--force", "--hidden", "600", "--epochs", "1", "--out", d,
    ]);
    assert_clear_error(&o, "does not fit");
    assert_eq!(
        before,
        std::fs::read(dir.join("model.json")).expect("model")
    );
    assert!(dir.join("checkpoint.json").exists());
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
    assert!(
        train(&dir, &["--epochs", "1", "--seed", "4", "--force"])
            .status
            .success()
    );
    assert_ne!(
        before,
        std::fs::read(dir.join("model.json")).expect("model")
    );
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
}

/// Ctrl-C stops after the batch in progress, writes the checkpoint and the best model so far,
/// says so and exits with 130; the run resumes. Stale temporary files of a killed write are
/// removed.
#[test]
fn ctrl_c_writes_the_best_model_so_far_and_the_run_resumes() {
    let dir = temp_dir("ctrl-c");
    let d = dir.to_str().expect("utf-8");
    let child = Command::new(env!("CARGO_BIN_EXE_spikeloop"))
        .args([
            "train",
            "--quiet",
            "--backend",
            "ideal",
            "--hidden",
            "8",
            "--epochs",
            "300",
            "--out",
            d,
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let checkpoint = dir.join("checkpoint.json");
    for _ in 0..3000 {
        if checkpoint.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let o = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("stopped after epoch") && err.contains("best so far"),
        "{err}"
    );
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).expect("model"))
            .expect("json");
    assert!(model["provenance"]["test_accuracy"].is_null(), "not tested");
    // The message names the command that continues the run, with the backend options it
    // started with (a plain `--resume --out` would be refused: it names the emulator).
    let command = err
        .split("continue with `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no command to continue with: {err}"));
    let words: Vec<&str> = command.split(' ').collect();
    assert_eq!(
        words,
        [
            "spikeloop",
            "train",
            "--resume",
            "--out",
            d,
            "--backend",
            "ideal"
        ],
        "{err}"
    );
    // A temporary file left by a write that was killed is removed when the run goes on.
    let stale = dir.join(".checkpoint.json.tmp99999");
    std::fs::write(&stale, "half").expect("stale");
    let mut args = words[1..].to_vec();
    args.extend(["--quiet", "--epochs", "300"]);
    let o = spikeloop(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
}

#[test]
fn plan_splits_the_founding_study_s_network_and_refuses_an_impossible_one() {
    // Needs no data files: the shape follows from the configuration.
    let o = spikeloop(&[
        "plan",
        "--preset",
        "software",
        "--dataset",
        "mnist",
        "--data-dir",
        "/nonexistent",
        "--hidden",
        "400,400,400,400",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("784 inputs"), "{text}");
    // 785 sources: 7 circuits per neuron, 72 neurons per run, so 6 parts for the first layer;
    // 4 parts for each further hidden layer and 1 for the output.
    assert!(text.contains("19 part(s)"), "{text}");
    assert!(text.contains("hardware time per sample"), "{text}");

    let o = spikeloop(&[
        "plan",
        "--preset",
        "software",
        "--dataset",
        "mnist",
        "--hidden",
        "400",
        "--max-merged",
        "4",
    ]);
    assert_clear_error(&o, "layer 0 listen to 785 signed sources");
    let o = spikeloop(&["plan", "--backend", "ideal"]);
    assert_clear_error(&o, "no chip geometry");
}

#[test]
fn a_network_larger_than_the_chip_trains_in_parts_with_partitioned() {
    let dir = temp_dir("partitioned");
    let out = dir.join("run");
    let common = [
        "train",
        "--dataset",
        "digits",
        "--hidden",
        "120,120",
        "--epochs",
        "1",
        "--uncalibrated",
        "--out",
    ];
    // 64 pixels and a bias fed 5 times: 325 sources, 3 merged circuits per neuron; the two
    // hidden layers need 723 circuits of the chip's 512.
    let o = spikeloop(&[&common[..], &[out.to_str().expect("utf-8 path")]].concat());
    assert_clear_error(&o, "does not fit");
    assert!(stderr(&o).contains("--partitioned"), "{}", stderr(&o));
    let o = spikeloop(
        &[
            &common[..],
            &[
                out.to_str().expect("utf-8 path"),
                "--partitioned",
                "--force",
            ],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("model.json").exists());
}

/// metrics.csv states the hardware time of every epoch as the emulated chip reports its runs:
/// each training batch and validation chunk one batch overhead plus a sample window per sample.
/// The ideal backend has no hardware time and leaves the column empty.
#[test]
fn metrics_state_the_hardware_time_of_each_epoch() {
    let hardware = |extra: &[&str]| -> Vec<String> {
        let dir = temp_dir("hardware-time");
        let mut args = vec!["train", "--quiet", "--hidden", "16", "--epochs", "1"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", dir.to_str().expect("utf-8")]);
        let o = spikeloop(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let csv = std::fs::read_to_string(dir.join("metrics.csv")).expect("metrics");
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let column = header
            .iter()
            .position(|h| *h == "hardware_seconds")
            .expect("a hardware_seconds column");
        lines
            .map(|l| l.split(',').nth(column).unwrap_or("?").to_string())
            .collect()
    };
    let t = spikeloop_emulator::EmulatorConfig::default().timing;
    let run_us = |n: f64| t.batch_overhead_us + n * t.sample_window_tau * t.tau_s_us;
    // Yin-Yang: 5000 training samples in batches of 50, 1000 validation samples in one run.
    let validation = run_us(1000.0);
    let epoch = 100.0 * run_us(50.0) + validation;
    let on_chip = hardware(&[]);
    assert_eq!(on_chip.len(), 2, "{on_chip:?}");
    // Before training, the calibration's parameter writes settle once before the first run.
    let before = validation + t.parameter_settle_us;
    for (value, expected_us) in on_chip.iter().zip([before, epoch]) {
        let seconds: f64 = value.parse().expect("seconds");
        assert!(
            (seconds - expected_us * 1e-6).abs() < 1e-4,
            "{seconds} s against {} s",
            expected_us * 1e-6
        );
    }
    assert_eq!(hardware(&["--backend", "ideal"]), ["", ""]);
}

/// `compare --fine-tune N` starts each chip's training from the ideal-trained network and
/// says so in the table, the report and the model's provenance; a network trained from the
/// seed is not reused for it, nor the other way round.
#[test]
fn compare_fine_tunes_from_the_ideal_network() {
    let dir = temp_dir("compare-fine-tune");
    let d = dir.to_str().expect("utf-8");
    let compare = |extra: &[&str]| compare_on_chip_2(d, "2", extra);
    let o = compare(&["--fine-tune", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("(c) fine-tuned in the loop (1 ep.) on the chip"),
        "{}",
        stdout(&o)
    );
    let report = std::fs::read_to_string(dir.join("compare.json")).expect("report");
    assert!(report.contains("\"fine_tune_epochs\": 1"), "{report}");
    let model = std::fs::read_to_string(dir.join("in-the-loop-chip2.json")).expect("model");
    assert!(
        model.contains("\"started_from\": \"ideal.json of this comparison"),
        "the provenance names the initial weights"
    );
    assert!(model.contains("\"epochs_trained\": 1"));
    assert_clear_error(&compare(&["--resume"]), "started from other weights");
    let again = compare(&["--resume", "--fine-tune", "1"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stderr(&again).matches("from the earlier run").count(), 2);
    assert_clear_error(&compare(&["--fine-tune", "0", "--force"]), "0");
}

/// Regression: a partitioned run on an emulated chip failed while calibrating ("it offers no
/// circuit count"). The calibration is made on the chip the parts run on, and training on a
/// chip too small for the network goes on in parts, calibrated.
#[test]
fn a_partitioned_run_calibrates_the_chip_it_runs_on() {
    let dir = temp_dir("partitioned-calibrated");
    // 2 halves of 8 circuits with 16 signed sources each: 16 hidden neurons of 26 sources take
    // 2 circuits each, 32 in all.
    let chip = dir.join("small-chip.toml");
    std::fs::write(
        &chip,
        "[geometry]\nneurons_per_half = 8\nrows_per_half = 32\nmax_merged_circuits = 4\n",
    )
    .expect("write");
    let c = chip.to_str().expect("utf-8");
    let run = |extra: &[&str]| {
        let out = dir.join("run");
        let mut args = vec![
            "train",
            "--emulator-config",
            c,
            "--hidden",
            "16",
            "--epochs",
            "1",
            "--force",
            "--out",
        ];
        args.push(out.to_str().expect("utf-8"));
        args.extend_from_slice(extra);
        spikeloop(&args)
    };
    let o = run(&["--partitioned"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("(16 circuits)"), "{}", stderr(&o));
    assert!(dir.join("run").join("calibration-chip1.json").exists());
    assert!(
        stderr(&o).contains("calibrated for 1 epochs"),
        "{}",
        stderr(&o)
    );
    // The model run on the same chip without its noise needs that chip's own calibration,
    // which is kept beside the run's, not over it: the run continues on its own.
    let kept = dir.join("run").join("calibration-chip1.json");
    let run_calibration = std::fs::read(&kept).expect("the run's calibration");
    let model = dir.join("run").join("model.json");
    let m = model.to_str().expect("utf-8");
    let infer_noiseless = || {
        spikeloop(&[
            "infer",
            "--model",
            m,
            "--emulator-config",
            c,
            "--partitioned",
            "--noise",
            "none",
        ])
    };
    let o = infer_noiseless();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("calibrating"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&kept).expect("the run's calibration"),
        run_calibration,
        "the run's calibration was replaced"
    );
    let beside: Vec<_> = std::fs::read_dir(dir.join("run"))
        .expect("run directory")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("calibration-chip1-") && n.ends_with(".json"))
        .collect();
    assert_eq!(beside.len(), 1, "{beside:?}");
    // Both are found again: each command reuses the calibration of its own chip.
    let o = infer_noiseless();
    assert!(
        o.status.success() && stderr(&o).contains(&beside[0]),
        "{}",
        stderr(&o)
    );
    let o = spikeloop(&[
        "train",
        "--resume",
        "--epochs",
        "2",
        "--emulator-config",
        c,
        "--partitioned",
        "--out",
        dir.join("run").to_str().expect("utf-8"),
    ]);
    assert!(
        o.status.success() && stderr(&o).contains("calibration-chip1.json"),
        "{}",
        stderr(&o)
    );
    assert_clear_error(&run(&[]), "does not fit");
}

/// The software set-up tolerates no silent output neuron on the ideal backend (the reference's
/// value); on a chip, whose noise silences an output neuron now and then, it tolerates 5 %
/// (bumping on every silence ratchets the output weights up to the range limit). A
/// configuration file is taken as written.
#[test]
fn on_a_chip_a_few_silent_output_neurons_are_tolerated() {
    let dir = temp_dir("silent-outputs");
    let output_missing = |run: &str, backend: &[&str]| {
        let out = dir.join(run);
        let mut args = vec![
            "train",
            "--quiet",
            "--preset",
            "software",
            "--dataset",
            "digits",
            "--hidden",
            "16",
            "--epochs",
            "1",
            "--out",
            out.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(backend);
        let o = spikeloop(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let config = spikeloop_trainer::TrainConfig::load(&out.join("config.toml"))
            .expect("the run's configuration");
        *config
            .training
            .max_missing_spikes
            .last()
            .expect("an output layer")
    };
    assert_eq!(output_missing("ideal", &["--backend", "ideal"]), 0.0);
    assert_eq!(
        output_missing("chip", &["--backend", "emulator", "--uncalibrated"]),
        0.05
    );
    let file = dir.join("software.toml");
    let o = spikeloop(&["config", "--preset", "software"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(&file, &o.stdout).expect("write the configuration");
    let from_file = output_missing(
        "file",
        &[
            "--config",
            file.to_str().expect("utf-8 path"),
            "--backend",
            "emulator",
            "--uncalibrated",
        ],
    );
    assert_eq!(from_file, 0.0);
}
