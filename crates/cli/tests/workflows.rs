//! The newer workflows from the command line: `spikeloop calibrate` and `spikeloop robustness`
//! on a small emulated chip (2 x 8 circuits, so that the tests stay quick), and image data sets
//! from IDX files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn spikeloop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spikeloop"))
        .args(args)
        .output()
        .expect("run spikeloop")
}

fn ok(args: &[&str]) -> String {
    let o = spikeloop(args);
    assert!(
        o.status.success(),
        "spikeloop {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn refused(args: &[&str]) -> String {
    let o = spikeloop(args);
    assert!(!o.status.success(), "spikeloop {args:?} succeeded");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A directory with the small chip's configuration in it.
fn small_chip() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("spikeloop-calibration-cli-")
        .tempdir()
        .expect("temp dir");
    let config = dir.path().join("small.toml");
    std::fs::write(&config, "[geometry]\nneurons_per_half = 8\n").expect("write");
    (dir, config)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

#[test]
fn calibrate_writes_a_file_a_report_and_a_figure_and_keeps_what_exists() {
    let (dir, config) = small_chip();
    let out = dir.path().join("cal.json");
    let text = ok(&[
        "calibrate",
        "--emulator-config",
        s(&config),
        "--out",
        s(&out),
    ]);
    assert!(
        text.contains("threshold") && text.contains("ratio"),
        "{text}"
    );
    let file = spikeloop_calibration::CalibrationFile::load(&out).expect("a valid file");
    assert_eq!(file.codes.len(), 16);
    let report = std::fs::read_to_string(out.with_extension("md")).expect("report");
    assert!(report.contains("| tau_m |") && report.contains("Failed circuits"));
    assert!(out.with_extension("png").exists());
    // An existing calibration is kept unless --force.
    let before = std::fs::read(&out).expect("read");
    let err = refused(&[
        "calibrate",
        "--emulator-config",
        s(&config),
        "--out",
        s(&out),
    ]);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&out).expect("read"), before);
    // Nothing to calibrate on the ideal backend; unusable targets are named.
    let err = refused(&["calibrate", "--backend", "ideal"]);
    assert!(err.contains("no circuits to calibrate"), "{err}");
    let targets = dir.path().join("targets.toml");
    std::fs::write(&targets, "threshold_mv = 500.0\n").expect("write");
    let err = refused(&[
        "calibrate",
        "--targets",
        s(&targets),
        "--out",
        s(&dir.path().join("x.json")),
    ]);
    assert!(
        err.contains("threshold_mv 500 must lie above leak_mv 600"),
        "{err}"
    );
    std::fs::write(&targets, "leak = 600.0\n").expect("write");
    let err = refused(&["calibrate", "--targets", s(&targets)]);
    assert!(err.contains("unknown field `leak`"), "{err}");
    // A calibration for another chip is refused when training.
    let err = refused(&[
        "train",
        "--chip-seed",
        "2",
        "--calibration",
        s(&out),
        "--out",
        s(&dir.path().join("run")),
    ]);
    assert!(
        err.contains("is for emulator chip 1") && err.contains("emulator chip 2"),
        "{err}"
    );
}

#[test]
fn robustness_parts_merge_into_the_report_of_the_whole_matrix() {
    let (dir, config) = small_chip();
    let run = dir.path().join("run");
    ok(&[
        "train",
        "--quiet",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--emulator-config",
        s(&config),
        "--out",
        s(&run),
    ]);
    assert!(
        run.join("calibration-chip1.json").exists(),
        "training calibrated the chip first"
    );
    let model = run.join("model.json");
    let matrix = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "robustness",
            "--model",
            s(&model),
            "--emulator-config",
            s(&config),
            "--other-chips",
            "2",
            "--drift",
            "0.05",
            "--threshold-noise",
            "2",
            "--jitter",
            "2",
            "--weight-bits",
            "3",
            "--repeats",
            "2",
            "--fine-tune-epochs",
            "1",
            "--out",
        ];
        args.push(s(out));
        args.extend_from_slice(extra);
        ok(&args)
    };
    let whole = dir.path().join("whole");
    let text = matrix(&whole, &[]);
    for row in [
        "chip 1, own calibration",
        "chip 2, own calibration",
        "chip 2, chip 1's calibration",
        "drift 0.05 since calibration",
        "threshold noise x2",
        "spike jitter x2",
        "3-bit weights",
    ] {
        assert!(text.contains(row), "row {row} missing: {text}");
    }
    for f in [
        "robustness.json",
        "robustness.md",
        "robustness.csv",
        "robustness.png",
    ] {
        assert!(whole.join(f).exists(), "{f}");
    }
    // The parts run apart, as on two machines: each calibrates the other chip itself (a new
    // file, another date), and they still merge into the whole.
    let parts = dir.path().join("parts");
    let elsewhere = dir.path().join("elsewhere");
    matrix(&parts, &["--shard", "1/2"]);
    matrix(&elsewhere, &["--shard", "2/2"]);
    assert!(elsewhere.join("calibration-chip2.json").exists());
    let one = parts.join("robustness-shard-1-of-2.json");
    let two = elsewhere.join("robustness-shard-2-of-2.json");
    let err = refused(&["robustness", "merge", s(&one), "--out", s(&parts)]);
    assert!(err.contains("give every part"), "{err}");
    let err = refused(&["robustness", "merge", s(&one), s(&one), "--out", s(&parts)]);
    assert!(err.contains("also in another part"), "{err}");
    ok(&["robustness", "merge", s(&one), s(&two), "--out", s(&parts)]);
    for f in ["robustness.json", "robustness.md", "robustness.csv"] {
        assert_eq!(
            std::fs::read_to_string(parts.join(f)).expect("merged"),
            std::fs::read_to_string(whole.join(f)).expect("whole"),
            "{f}: the merged parts differ from the whole matrix"
        );
    }
    // A finished report is kept unless --force.
    let args = ["robustness", "--model", s(&model), "--out", s(&whole)];
    assert!(refused(&args).contains("--force"));
}

/// An IDX file of unsigned bytes with `shape` and `values`.
fn idx(shape: &[u32], values: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, shape.len() as u8];
    for d in shape {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(values);
    b
}

/// Image data sets from IDX files: a small MNIST-style directory trains (down-scaled to 16x16,
/// with a chosen validation count) and `infer` finds the files again through the model.
#[test]
fn an_mnist_style_directory_trains_and_infers() {
    let dir = tempfile::Builder::new()
        .prefix("spikeloop-idx-")
        .tempdir()
        .expect("temp dir");
    let data = dir.path().join("idx");
    std::fs::create_dir_all(&data).expect("dir");
    // Class k is a bright square in one of ten places.
    let image = |k: usize| -> Vec<u8> {
        let mut im = vec![0u8; 784];
        let (r0, c0) = (4 + (k / 5) * 10, 3 + (k % 5) * 4);
        for r in r0..r0 + 6 {
            for c in c0..c0 + 3 {
                im[r * 28 + c] = 250;
            }
        }
        im
    };
    for (prefix, n) in [("train", 200usize), ("t10k", 50)] {
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let pixels: Vec<u8> = labels.iter().flat_map(|&l| image(usize::from(l))).collect();
        let n32 = n as u32;
        std::fs::write(
            data.join(format!("{prefix}-images-idx3-ubyte")),
            idx(&[n32, 28, 28], &pixels),
        )
        .expect("write");
        std::fs::write(
            data.join(format!("{prefix}-labels-idx1-ubyte")),
            idx(&[n32], &labels),
        )
        .expect("write");
    }
    let run = dir.path().join("run");
    let out = ok(&[
        "train",
        "--quiet",
        "--backend",
        "ideal",
        "--dataset",
        "mnist",
        "--data-dir",
        s(&data),
        "--downscale-16",
        "--validation",
        "40",
        "--hidden",
        "20",
        "--epochs",
        "2",
        "--out",
        s(&run),
    ]);
    assert!(out.contains("test accuracy"), "{out}");
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("model.json")).expect("model"))
            .expect("json");
    assert_eq!(model["n_inputs"], 256, "down-scaled to 16x16");
    assert_eq!(model["dataset"], "mnist");
    let infer = ok(&[
        "infer",
        "--model",
        s(&run.join("model.json")),
        "--backend",
        "ideal",
    ]);
    assert!(
        infer.contains("mnist test split") && infer.contains("(50 samples)"),
        "{infer}"
    );
    // A missing directory is named with what it should hold.
    let err = refused(&[
        "train",
        "--backend",
        "ideal",
        "--dataset",
        "mnist",
        "--data-dir",
        s(&dir.path().join("nowhere")),
        "--out",
        s(&dir.path().join("x")),
    ]);
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn analyze_reports_every_layer_of_a_deep_dale_network_beside_its_untrained_self() {
    let dir = tempfile::Builder::new()
        .prefix("spikeloop-analyze-")
        .tempdir()
        .expect("temp dir");
    let run = dir.path().join("run");
    ok(&[
        "train",
        "--quiet",
        "--backend",
        "ideal",
        "--dataset",
        "digits",
        "--hidden",
        "24,24,24",
        "--dale",
        "18:6",
        "--blank-silent",
        "--epochs",
        "2",
        "--out",
        s(&run),
    ]);
    let out_dir = dir.path().join("analysis");
    let md = ok(&[
        "analyze",
        "--model",
        s(&run.join("model.json")),
        "--backend",
        "ideal",
        "--samples",
        "60",
        "--out",
        s(&out_dir),
    ]);
    for row in [
        "hidden 1 (24)",
        "hidden 3 (24)",
        "output (10)",
        "excitatory",
    ] {
        assert!(md.contains(row), "{row} missing from\n{md}");
    }
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("analysis.json")).expect("report"),
    )
    .expect("json");
    assert_eq!(report["samples"], 60);
    for net in ["untrained", "trained"] {
        let layers = report[net]["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 4);
        assert!(
            layers[0]["inhibitory"]["window50"].is_number(),
            "{}",
            layers[0]
        );
        let overlap = layers[1]["pathway_overlap_structural"]
            .as_f64()
            .expect("overlap");
        assert!((0.0..=1.0).contains(&overlap));
    }
    for figure in ["raster", "spike-times", "packet-widths", "depth"] {
        for ext in ["png", "svg"] {
            let f = out_dir.join(format!("{figure}.{ext}"));
            assert!(
                f.metadata().is_ok_and(|m| m.len() > 1000),
                "{}",
                f.display()
            );
        }
    }
    // The populations of a Dale network are drawn over depth too (SVG keeps its text).
    let depth = std::fs::read_to_string(out_dir.join("depth.svg")).expect("depth.svg");
    for label in [
        "Dale&apos;s law",
        "excitatory",
        "inhibitory",
        "pathway neurons",
    ] {
        assert!(depth.contains(label), "{label} missing from depth.svg");
    }
    let err = refused(&[
        "analyze",
        "--model",
        s(&run.join("model.json")),
        "--backend",
        "ideal",
        "--pathway-fraction",
        "1.5",
    ]);
    assert!(err.contains("--pathway-fraction 1.5"), "{err}");
    // An output directory that cannot be made is refused before the chip is calibrated.
    let err = refused(&[
        "analyze",
        "--model",
        s(&run.join("model.json")),
        "--out",
        s(&run.join("model.json")),
    ]);
    assert!(err.contains("model.json is a file"), "{err}");
    assert!(!run.join("calibration-chip1.json").exists());
}
