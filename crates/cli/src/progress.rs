//! Training progress on the terminal: a bar over epochs with the latest loss and accuracies.
//!
//! When stderr is not a terminal the bar is hidden and a plain line is printed every twentieth
//! of the run instead, so logs of batch jobs still show progress.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use spikeloop_trainer::{EpochMetrics, Observer};

/// Draws training progress.
pub struct Progress {
    bar: Option<ProgressBar>,
    epochs: u32,
    quiet: bool,
}

impl Progress {
    /// A progress display for a run of `epochs` epochs that starts after `done` epochs.
    pub fn new(epochs: u32, done: u32, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(u64::from(epochs));
            let style = ProgressStyle::with_template(
                "{prefix:>10} [{bar:30.cyan/blue}] {pos:>4}/{len} {elapsed_precise} eta {eta:>4} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix("epoch");
            bar.set_position(u64::from(done));
            bar
        });
        Self { bar, epochs, quiet }
    }

    /// Removes the bar, leaving the final line on screen.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

fn describe(m: &EpochMetrics) -> String {
    let pct = |v: f64| format!("{:.2} %", 100.0 * v);
    format!(
        "loss {}  train {}  val {}",
        m.train_loss.map_or("-".into(), |l| format!("{l:.4}")),
        m.train_accuracy.map_or("-".into(), pct),
        pct(m.validation_accuracy)
    )
}

impl Observer for Progress {
    fn epoch_finished(&mut self, metrics: &EpochMetrics) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(u64::from(metrics.epoch));
                bar.set_message(describe(metrics));
            }
            None if !self.quiet => {
                let every = (self.epochs / 20).max(1);
                if metrics.epoch.is_multiple_of(every) || metrics.epoch == self.epochs {
                    errln!(
                        "epoch {:>4}/{}  {}",
                        metrics.epoch,
                        self.epochs,
                        describe(metrics)
                    );
                }
            }
            None => {}
        }
    }
}
