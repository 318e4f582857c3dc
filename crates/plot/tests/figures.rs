//! Figures end to end: every call writes a real PNG (or SVG) into its own
//! temporary directory, and the checks read the file back (the PNG signature
//! and IHDR width and height, the SVG's size and text) rather than trusting
//! the renderer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use spikeloop_plot::{
    Bar, BarChart, PlotError, ReferenceLine, TRAINING_CURVES_SIZE, TRAINING_SCHEDULE_HEIGHT,
    TrainingCurves, write_bar_chart, write_training_curves,
};

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// A fresh directory under the system's temporary directory, removed again
/// when the test passes and kept for inspection when it fails.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn scratch_dir(name: &str) -> Scratch {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "spikeloop-plot-{name}-{}-{unique}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch directory");
    Scratch(dir)
}

/// Width and height from the IHDR chunk, after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).expect("figure exists");
    assert!(
        bytes.len() > 24,
        "{} is too short for a PNG",
        path.display()
    );
    assert_eq!(bytes[..8], PNG_SIGNATURE, "{} is not a PNG", path.display());
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    (width, height)
}

/// Files in `dir` other than `keep`: leftovers such as temporary files.
fn other_files(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read scratch directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !keep.contains(&name.as_str()))
        .collect()
}

const EPOCHS: [f64; 5] = [0.0, 1.0, 2.0, 3.0, 4.0];

fn curves<'a>(loss: &'a [f64], accuracy: &'a [f64]) -> TrainingCurves<'a> {
    TrainingCurves {
        title: "test run",
        subtitle: "",
        selected_epoch: None,
        epochs: &EPOCHS,
        train_loss: loss,
        validation_loss: loss,
        train_accuracy: accuracy,
        validation_accuracy: accuracy,
        learning_rate: &[],
        bumped_batches: &[],
        chopped_gradients: &[],
    }
}

const BARS: [Bar<'static>; 3] = [
    Bar {
        label: "ideal training",
        value: 96.1,
        error: Some(0.4),
        points: &[],
    },
    Bar {
        label: "copied to chip",
        value: 81.7,
        error: Some(2.3),
        points: &[80.1, 84.0, 79.5, 81.2, 83.7],
    },
    Bar {
        label: "trained in the loop",
        value: 95.2,
        error: None,
        points: &[],
    },
];

fn chart<'a>(bars: &'a [Bar<'a>]) -> BarChart<'a> {
    BarChart {
        title: "accuracy",
        subtitle: "error bars: SD over n = 5 chips",
        y_label: "Accuracy (%)",
        bars,
        y_range: None,
        reference_lines: &[],
    }
}

mod training_curves {
    use super::*;

    #[test]
    fn writes_a_png_of_the_documented_size() {
        let dir = scratch_dir("curves");
        let path = dir.join("curves.png");
        let loss = [1.2, 0.8, f64::NAN, 0.3, 0.25];
        let accuracy = [0.33, 0.6, 0.8, f64::NAN, 0.93];
        write_training_curves(&path, &curves(&loss, &accuracy)).expect("figure");
        assert_eq!(png_size(&path), TRAINING_CURVES_SIZE);
        assert_eq!(TRAINING_CURVES_SIZE, (1600, 600));
        assert!(other_files(&dir, &["curves.png"]).is_empty());
    }

    #[test]
    fn degenerate_inputs_still_give_a_figure() {
        let dir = scratch_dir("curves-degenerate");
        let nan = [f64::NAN; 5];
        let single_epoch = [3.0];
        let cases: [(&str, TrainingCurves<'_>); 6] = [
            ("all-nan.png", curves(&nan, &nan)),
            ("not-recorded.png", curves(&[], &[])),
            (
                "no-epochs.png",
                TrainingCurves {
                    title: "",
                    epochs: &[],
                    ..curves(&[], &[])
                },
            ),
            (
                "single-point.png",
                TrainingCurves {
                    title: "one epoch",
                    epochs: &single_epoch,
                    train_loss: &[0.7],
                    validation_loss: &[0.7],
                    train_accuracy: &[0.5],
                    validation_accuracy: &[],
                    ..curves(&[], &[])
                },
            ),
            (
                // Zero and negative losses cannot go on a log axis.
                "non-positive-loss.png",
                curves(
                    &[0.5, 0.0, -0.2, f64::INFINITY, -0.4],
                    &[0.0, 0.0, 1.0, 1.0, 1.0],
                ),
            ),
            (
                // Twelve decades, and epochs that are not whole numbers.
                "wide-range.png",
                TrainingCurves {
                    epochs: &[0.5, 1.5, 2.5, 3.5, 4.5],
                    ..curves(&[1e3, 1.0, 1e-3, 1e-6, 1e-9], &[0.1, 0.2, 0.3, 0.4, 0.5])
                },
            ),
        ];
        for (name, input) in cases {
            let path = dir.join(name);
            write_training_curves(&path, &input).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(png_size(&path), TRAINING_CURVES_SIZE, "{name}");
        }
    }

    #[test]
    fn schedule_and_selected_epoch_add_a_second_row() {
        let dir = scratch_dir("curves-schedule");
        let loss = [1.2, 0.8, 0.5, 0.3, 0.25];
        let accuracy = [0.33, 0.6, 0.8, 0.9, 0.93];
        let input = TrainingCurves {
            subtitle: "training seed 0, chip seed 1, run seed 1; emulator chip 1, run seed 1, noise default",
            selected_epoch: Some(3.0),
            learning_rate: &[0.005, 0.005, 0.0045, 0.0045, 0.004],
            bumped_batches: &[0.0, 30.0, 7.0, 0.0, 0.0],
            chopped_gradients: &[0.0, 12.0, 3.0, 1.0, 0.0],
            ..curves(&loss, &accuracy)
        };
        let path = dir.join("curves.png");
        write_training_curves(&path, &input).expect("figure");
        assert_eq!(png_size(&path), input.size_px());
        assert_eq!(input.size_px(), (1600, 600 + TRAINING_SCHEDULE_HEIGHT));
        let svg = dir.join("curves.svg");
        write_training_curves(&svg, &input).expect("svg");
        let text = std::fs::read_to_string(&svg).expect("svg text");
        for needle in [
            "<svg",
            "Selected epoch 3",
            "Learning rate",
            "Bumped batches (total 37)",
            "Chopped gradients (total 16)",
            "chip seed 1",
        ] {
            assert!(text.contains(needle), "SVG lacks {needle:?}");
        }
        assert!(other_files(&dir, &["curves.png", "curves.svg"]).is_empty());
    }

    #[test]
    fn mismatched_lengths_name_the_field_and_both_lengths() {
        let dir = scratch_dir("curves-mismatch");
        let path = dir.join("never.png");
        let input = TrainingCurves {
            validation_loss: &[1.0, 0.5, 0.4],
            ..curves(&[1.0; 5], &[0.5; 5])
        };
        let error = write_training_curves(&path, &input).expect_err("lengths differ");
        assert!(
            matches!(
                error,
                PlotError::LengthMismatch {
                    field: "validation_loss",
                    len: 3,
                    epochs: 5
                }
            ),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains("`validation_loss` has 3 values"),
            "{message}"
        );
        assert!(message.contains("`epochs` has 5"), "{message}");
        assert!(!path.exists());
        assert!(other_files(&dir, &[]).is_empty());
    }

    #[test]
    fn series_longer_than_epochs_are_rejected_too() {
        let dir = scratch_dir("curves-longer");
        let input = TrainingCurves {
            train_accuracy: &[0.5; 6],
            ..curves(&[1.0; 5], &[0.5; 5])
        };
        let error = write_training_curves(&dir.join("x.png"), &input).expect_err("too long");
        assert!(
            matches!(
                error,
                PlotError::LengthMismatch {
                    field: "train_accuracy",
                    len: 6,
                    epochs: 5
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn accuracy_given_in_percent_is_rejected() {
        let dir = scratch_dir("curves-percent");
        let input = TrainingCurves {
            validation_accuracy: &[33.0, 60.0, 80.0, 90.0, 93.0],
            ..curves(&[1.0; 5], &[0.5; 5])
        };
        let error = write_training_curves(&dir.join("x.png"), &input).expect_err("percent");
        assert!(
            matches!(
                error,
                PlotError::AccuracyNotFraction {
                    field: "validation_accuracy",
                    index: 0,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("0.94 for 94 %"));
    }
}

mod bar_chart {
    use super::*;

    #[test]
    fn writes_a_png_of_the_size_it_reports() {
        let dir = scratch_dir("bars");
        let path = dir.join("bars.png");
        let input = BarChart {
            y_range: Some((0.0, 100.0)),
            ..chart(&BARS)
        };
        write_bar_chart(&path, &input).expect("figure");
        assert_eq!(input.size_px(), (900, 600));
        assert_eq!(png_size(&path), input.size_px());
    }

    #[test]
    fn many_bars_make_a_wider_figure() {
        let dir = scratch_dir("bars-many");
        let labels: Vec<String> = (0..12).map(|i| format!("chip {i}")).collect();
        let bars: Vec<Bar<'_>> = labels
            .iter()
            .enumerate()
            .map(|(i, label)| Bar {
                label,
                value: i as f64 - 4.0,
                error: Some(0.5),
                points: &[],
            })
            .collect();
        let input = chart(&bars);
        let (width, height) = input.size_px();
        assert!(width > 900 && height == 600, "{width}x{height}");
        let path = dir.join("many.png");
        write_bar_chart(&path, &input).expect("figure");
        assert_eq!(png_size(&path), (width, height));
    }

    #[test]
    fn degenerate_inputs_still_give_a_figure() {
        let dir = scratch_dir("bars-degenerate");
        let long_label = "a condition with a rather long name that will not fit under its bar";
        let cases = [
            (
                "zeros.png",
                vec![Bar {
                    label: "",
                    value: 0.0,
                    error: Some(0.0),
                    points: &[],
                }],
                None,
            ),
            (
                "one.png",
                vec![Bar {
                    label: long_label,
                    value: 1e12,
                    error: None,
                    points: &[],
                }],
                None,
            ),
            // Bars and errors reaching outside a fixed range are cut at it.
            ("clipped.png", BARS.to_vec(), Some((85.0, 95.0))),
            (
                "tiny.png",
                vec![Bar {
                    label: "tau_s",
                    value: -3e-7,
                    error: Some(1e-7),
                    points: &[],
                }],
                None,
            ),
        ];
        for (name, bars, y_range) in cases {
            let path = dir.join(name);
            let input = BarChart {
                y_range,
                ..chart(&bars)
            };
            write_bar_chart(&path, &input).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(png_size(&path), input.size_px(), "{name}");
        }
    }

    #[test]
    fn no_bars_is_an_error() {
        let dir = scratch_dir("bars-none");
        let error = write_bar_chart(&dir.join("x.png"), &chart(&[])).expect_err("empty");
        assert!(matches!(error, PlotError::NoBars), "{error:?}");
    }

    #[test]
    fn unusable_bars_are_named() {
        let dir = scratch_dir("bars-invalid");
        let cases = [
            (
                Bar {
                    label: "nan",
                    value: f64::NAN,
                    error: None,
                    points: &[],
                },
                "value is NaN",
            ),
            (
                Bar {
                    label: "neg",
                    value: 1.0,
                    error: Some(-0.1),
                    points: &[],
                },
                "error is -0.1",
            ),
            (
                Bar {
                    label: "inf",
                    value: 1.0,
                    error: Some(f64::INFINITY),
                    points: &[],
                },
                "error is inf",
            ),
        ];
        for (bad, expected) in cases {
            let bars = [BARS[0], bad];
            let error = write_bar_chart(&dir.join("x.png"), &chart(&bars)).expect_err("invalid");
            match &error {
                PlotError::InvalidBar {
                    index: 1,
                    label,
                    problem,
                } => {
                    assert_eq!(label, bad.label);
                    assert!(problem.contains(expected), "{problem}");
                }
                other => panic!("expected InvalidBar for bar 1, got {other:?}"),
            }
        }
    }

    #[test]
    fn unusable_ranges_are_rejected() {
        let dir = scratch_dir("bars-range");
        for range in [
            (1.0, 1.0),
            (100.0, 0.0),
            (f64::NAN, 1.0),
            (0.0, f64::INFINITY),
        ] {
            let input = BarChart {
                y_range: Some(range),
                ..chart(&BARS)
            };
            let error = write_bar_chart(&dir.join("x.png"), &input).expect_err("bad range");
            assert!(
                matches!(error, PlotError::InvalidRange { .. }),
                "{range:?}: {error:?}"
            );
        }
    }
}

mod output {
    use super::*;

    #[test]
    fn svg_keeps_its_text_and_dots_and_reference_lines_are_drawn() {
        let dir = scratch_dir("svg");
        let path = dir.join("bars.svg");
        let input = BarChart {
            y_range: Some((30.0, 100.0)),
            reference_lines: &[
                ReferenceLine {
                    value: 100.0 / 3.0,
                    label: "chance 33.3 %",
                },
                ReferenceLine {
                    value: 95.0,
                    label: "reference chip 95.0 %",
                },
            ],
            ..chart(&BARS)
        };
        write_bar_chart(&path, &input).expect("svg");
        let text = std::fs::read_to_string(&path).expect("svg text");
        let (width, height) = input.size_px();
        assert!(text.contains(&format!("width=\"{width}\"")), "size");
        assert!(text.contains(&format!("height=\"{height}\"")), "size");
        for needle in [
            "chance 33.3 %",
            "reference chip 95.0 %",
            "SD over n = 5 chips",
        ] {
            assert!(text.contains(needle), "SVG lacks {needle:?}");
        }
        // One dot per chip (each drawn as a filled circle with a white rim).
        assert!(text.matches("<circle").count() >= 2 * BARS[1].points.len());
        let png = dir.join("bars.png");
        write_bar_chart(&png, &input).expect("png");
        assert_eq!(png_size(&png), input.size_px());
    }

    #[test]
    fn an_unknown_extension_is_refused_with_the_allowed_ones() {
        let dir = scratch_dir("extension");
        let error = write_bar_chart(&dir.join("bars.jpg"), &chart(&BARS)).expect_err("jpg");
        assert!(
            matches!(error, PlotError::UnknownFormat { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(".png or .svg"), "{error}");
        assert!(other_files(&dir, &[]).is_empty());
    }

    #[test]
    fn an_existing_figure_is_replaced_whole_and_no_temporary_file_is_left() {
        let dir = scratch_dir("replace");
        let path = dir.join("figure.png");
        std::fs::write(&path, b"an older figure").expect("seed file");
        write_bar_chart(&path, &chart(&BARS)).expect("figure");
        assert_eq!(png_size(&path), chart(&BARS).size_px());
        assert!(other_files(&dir, &["figure.png"]).is_empty());
    }

    #[test]
    fn a_rejected_input_leaves_the_existing_figure_alone() {
        let dir = scratch_dir("untouched");
        let path = dir.join("figure.png");
        std::fs::write(&path, b"an older figure").expect("seed file");
        let error = write_bar_chart(&path, &chart(&[])).expect_err("empty");
        assert!(matches!(error, PlotError::NoBars));
        assert_eq!(
            std::fs::read(&path).expect("still there"),
            b"an older figure"
        );
    }

    #[test]
    fn a_missing_directory_is_reported_as_such() {
        let dir = scratch_dir("missing");
        let path = dir.join("not-there").join("figure.png");
        let error = write_bar_chart(&path, &chart(&BARS)).expect_err("no directory");
        match &error {
            PlotError::MissingDirectory { directory, .. } => {
                assert_eq!(directory, &dir.join("not-there"));
            }
            other => panic!("expected MissingDirectory, got {other:?}"),
        }
        assert!(error.to_string().contains("create it first"));
    }

    #[test]
    fn a_path_without_a_file_name_is_rejected() {
        let error = write_bar_chart(Path::new("/"), &chart(&BARS)).expect_err("not a file");
        assert!(matches!(error, PlotError::InvalidPath { .. }), "{error:?}");
    }

    #[test]
    fn a_directory_in_the_way_is_an_io_error() {
        let dir = scratch_dir("in-the-way");
        let path = dir.join("figure.png");
        std::fs::create_dir(&path).expect("directory named like the figure");
        let error = write_bar_chart(&path, &chart(&BARS)).expect_err("cannot replace a directory");
        assert!(matches!(error, PlotError::Io { .. }), "{error:?}");
        assert!(other_files(&dir, &["figure.png"]).is_empty());
    }

    #[test]
    fn concurrent_writers_to_one_path_leave_a_valid_figure() {
        let dir = scratch_dir("concurrent");
        let path = dir.join("figure.png");
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| write_bar_chart(&path, &chart(&BARS)).expect("figure"));
            }
        });
        assert_eq!(png_size(&path), chart(&BARS).size_px());
        assert!(other_files(&dir, &["figure.png"]).is_empty());
    }
}

mod depth_profile {
    use spikeloop_plot::{DepthProfile, ProfilePanel, ProfileSeries, write_depth_profile};

    use super::*;

    const LAYERS: [&str; 3] = ["hidden 1", "hidden 2", "output"];

    fn profile<'a>(panels: &'a [ProfilePanel<'a>]) -> DepthProfile<'a> {
        DepthProfile {
            title: "Over depth",
            subtitle: "test data",
            layers: &LAYERS,
            panels,
        }
    }

    #[test]
    fn writes_one_panel_per_measure_with_its_series_and_reference() {
        let (untrained, trained, study) =
            ([0.5, 0.1, 0.01], [0.7, 0.3, 0.2], [0.14, 0.7, f64::NAN]);
        let series = [
            ProfileSeries {
                label: "untrained",
                values: &untrained,
                reference: false,
            },
            ProfileSeries {
                label: "trained",
                values: &trained,
                reference: false,
            },
            ProfileSeries {
                label: "published network",
                values: &study,
                reference: true,
            },
        ];
        let panels = [
            ProfilePanel {
                caption: "window",
                y_label: "tau_s",
                series: &series,
            },
            ProfilePanel {
                caption: "separability",
                y_label: "ratio",
                series: &series[..2],
            },
        ];
        let dir = scratch_dir("depth");
        let png = dir.join("depth.png");
        write_depth_profile(&png, &profile(&panels)).expect("figure");
        assert_eq!(png_size(&png), profile(&panels).size_px());
        let (one_panel, _) = profile(&panels[..1]).size_px();
        assert_eq!(profile(&panels).size_px().0, 2 * one_panel);

        let svg = dir.join("depth.svg");
        write_depth_profile(&svg, &profile(&panels)).expect("figure");
        let text = std::fs::read_to_string(&svg).expect("svg");
        for label in ["window", "separability", "published network", "hidden 2"] {
            assert!(text.contains(label), "{label} missing");
        }
    }

    #[test]
    fn no_panels_is_an_error() {
        let dir = scratch_dir("depth-empty");
        let error = write_depth_profile(&dir.join("depth.png"), &profile(&[])).expect_err("empty");
        assert!(matches!(error, PlotError::NoPanels), "{error:?}");
    }
}
