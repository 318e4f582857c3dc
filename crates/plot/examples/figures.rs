//! Writes sample figures with made-up but realistic numbers, to look at the
//! output of every figure type:
//!
//! ```text
//! cargo run -p spikeloop-plot --example figures -- /tmp/figures
//! ```

use std::path::PathBuf;

use spikeloop_plot::{
    Bar, BarChart, PlotError, ReferenceLine, TrainingCurves, write_bar_chart, write_training_curves,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "figures".into()));
    std::fs::create_dir_all(&dir)?;

    // A run of 60 epochs: loss falls roughly exponentially, validation is
    // noisier, one validation point is missing (the chip was busy).
    let epochs: Vec<f64> = (0..=60).map(f64::from).collect();
    let wobble = |e: f64, phase: f64| 0.03 * (e * 0.9 + phase).sin();
    let train_loss: Vec<f64> = epochs
        .iter()
        .map(|e| 0.09 + 1.0 * (-e / 9.0).exp() + wobble(*e, 0.0) * 0.3)
        .collect();
    let mut validation_loss: Vec<f64> = epochs
        .iter()
        .map(|e| 0.12 + 1.0 * (-e / 10.0).exp() + wobble(*e, 1.3))
        .collect();
    let train_accuracy: Vec<f64> = epochs
        .iter()
        .map(|e| 0.33 + 0.63 * (1.0 - (-e / 7.0).exp()) + wobble(*e, 2.0) * 0.2)
        .collect();
    let mut validation_accuracy: Vec<f64> = epochs
        .iter()
        .map(|e| 0.33 + 0.60 * (1.0 - (-e / 8.0).exp()) + wobble(*e, 0.4) * 0.4)
        .collect();
    let learning_rate: Vec<f64> = epochs
        .iter()
        .map(|e| 0.005 * 0.95_f64.powf((e / 20.0).floor()))
        .collect();
    let bumped: Vec<f64> = epochs
        .iter()
        .map(|e| if *e < 4.0 { 40.0 - 10.0 * e } else { 0.0 })
        .collect();
    let chopped: Vec<f64> = epochs.iter().map(|e| (8.0 - e).max(0.0)).collect();
    validation_loss[31] = f64::NAN;
    validation_accuracy[31] = f64::NAN;

    write_training_curves(
        &dir.join("training_curves.png"),
        &TrainingCurves {
            title: "Yin-Yang, trained in the loop on the emulated chip",
            subtitle: "training seed 3, chip seed 1, run seed 1",
            selected_epoch: Some(52.0),
            epochs: &epochs,
            train_loss: &train_loss,
            validation_loss: &validation_loss,
            train_accuracy: &train_accuracy,
            validation_accuracy: &validation_accuracy,
            learning_rate: &learning_rate,
            bumped_batches: &bumped,
            chopped_gradients: &chopped,
        },
    )?;

    // Few epochs: markers on every point.
    let short = &epochs[..6];
    write_training_curves(
        &dir.join("training_curves_short.png"),
        &TrainingCurves {
            title: "Short run",
            subtitle: "",
            selected_epoch: None,
            epochs: short,
            train_loss: &train_loss[..6],
            validation_loss: &[],
            train_accuracy: &train_accuracy[..6],
            validation_accuracy: &validation_accuracy[..6],
            learning_rate: &[],
            bumped_batches: &[],
            chopped_gradients: &[],
        },
    )?;

    // Nothing usable at all.
    let nan = [f64::NAN; 3];
    write_training_curves(
        &dir.join("training_curves_empty.png"),
        &TrainingCurves {
            title: "Diverged run",
            subtitle: "",
            selected_epoch: None,
            epochs: &[0.0, 1.0, 2.0],
            train_loss: &nan,
            validation_loss: &nan,
            train_accuracy: &[],
            validation_accuracy: &[],
            learning_rate: &[],
            bumped_batches: &[],
            chopped_gradients: &[],
        },
    )?;

    let bars = [
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
            error: Some(0.6),
            points: &[],
        },
    ];
    write_bar_chart(
        &dir.join("bar_chart.svg"),
        &BarChart {
            title: "Test accuracy on Yin-Yang",
            subtitle: "bars: mean; error bars: SD over n = 5 chips; dots: each chip",
            y_label: "Accuracy (%)",
            bars: &bars,
            y_range: Some((30.0, 100.0)),
            reference_lines: &[
                ReferenceLine {
                    value: 100.0 / 3.0,
                    label: "chance 33.3 %",
                },
                ReferenceLine {
                    value: 95.0,
                    label: "reference chip result 95.0 %",
                },
            ],
        },
    )?;

    let deltas = [
        Bar {
            label: "threshold",
            value: 0.031,
            error: Some(0.004),
            points: &[],
        },
        Bar {
            label: "tau_m",
            value: -0.012,
            error: Some(0.006),
            points: &[],
        },
        Bar {
            label: "tau_s",
            value: 0.004,
            error: None,
            points: &[],
        },
        Bar {
            label: "synaptic weight gain",
            value: -0.027,
            error: Some(0.009),
            points: &[],
        },
        Bar {
            label: "leak potential",
            value: 0.018,
            error: Some(0.002),
            points: &[],
        },
    ];
    write_bar_chart(
        &dir.join("bar_chart_signed.png"),
        &BarChart {
            title: "Calibration residuals",
            subtitle: "",
            y_label: "Relative error",
            bars: &deltas,
            y_range: None,
            reference_lines: &[],
        },
    )?;

    match write_bar_chart(
        &dir.join("never_written.png"),
        &BarChart {
            title: "",
            subtitle: "",
            y_label: "",
            bars: &[],
            y_range: None,
            reference_lines: &[],
        },
    ) {
        Err(PlotError::NoBars) => {}
        other => return Err(format!("expected NoBars, got {other:?}").into()),
    }
    println!("figures written to {}", dir.display());
    Ok(())
}
