//! Writes sample figures with made-up but realistic numbers, to look at the
//! output of every figure type:
//!
//! ```text
//! cargo run -p spikeloop-plot --example figures -- /tmp/figures
//! ```

use std::path::PathBuf;

use spikeloop_plot::{
    Bar, BarChart, PlotError, TrainingCurves, bar_chart_png, training_curves_png,
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
    validation_loss[31] = f64::NAN;
    validation_accuracy[31] = f64::NAN;

    training_curves_png(
        &dir.join("training_curves.png"),
        &TrainingCurves {
            title: "Yin-Yang, trained in the loop on the emulated chip (seed 3)",
            epochs: &epochs,
            train_loss: &train_loss,
            validation_loss: &validation_loss,
            train_accuracy: &train_accuracy,
            validation_accuracy: &validation_accuracy,
        },
    )?;

    // Few epochs: markers on every point.
    let short = &epochs[..6];
    training_curves_png(
        &dir.join("training_curves_short.png"),
        &TrainingCurves {
            title: "Short run",
            epochs: short,
            train_loss: &train_loss[..6],
            validation_loss: &[],
            train_accuracy: &train_accuracy[..6],
            validation_accuracy: &validation_accuracy[..6],
        },
    )?;

    // Nothing usable at all.
    let nan = [f64::NAN; 3];
    training_curves_png(
        &dir.join("training_curves_empty.png"),
        &TrainingCurves {
            title: "Diverged run",
            epochs: &[0.0, 1.0, 2.0],
            train_loss: &nan,
            validation_loss: &nan,
            train_accuracy: &[],
            validation_accuracy: &[],
        },
    )?;

    let bars = [
        Bar {
            label: "ideal training",
            value: 96.1,
            error: Some(0.4),
        },
        Bar {
            label: "copied to chip",
            value: 81.7,
            error: Some(2.3),
        },
        Bar {
            label: "trained in the loop",
            value: 95.2,
            error: Some(0.6),
        },
    ];
    bar_chart_png(
        &dir.join("bar_chart.png"),
        &BarChart {
            title: "Test accuracy on Yin-Yang (mean ± sd over 5 seeds)",
            y_label: "Accuracy (%)",
            bars: &bars,
            y_range: Some((0.0, 100.0)),
        },
    )?;

    let deltas = [
        Bar {
            label: "threshold",
            value: 0.031,
            error: Some(0.004),
        },
        Bar {
            label: "tau_m",
            value: -0.012,
            error: Some(0.006),
        },
        Bar {
            label: "tau_s",
            value: 0.004,
            error: None,
        },
        Bar {
            label: "synaptic weight gain",
            value: -0.027,
            error: Some(0.009),
        },
        Bar {
            label: "leak potential",
            value: 0.018,
            error: Some(0.002),
        },
    ];
    bar_chart_png(
        &dir.join("bar_chart_signed.png"),
        &BarChart {
            title: "Calibration residuals",
            y_label: "Relative error",
            bars: &deltas,
            y_range: None,
        },
    )?;

    match bar_chart_png(
        &dir.join("never_written.png"),
        &BarChart {
            title: "",
            y_label: "",
            bars: &[],
            y_range: None,
        },
    ) {
        Err(PlotError::NoBars) => {}
        other => return Err(format!("expected NoBars, got {other:?}").into()),
    }
    println!("figures written to {}", dir.display());
    Ok(())
}
