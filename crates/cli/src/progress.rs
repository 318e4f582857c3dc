//! Training progress on the terminal: a bar over epochs with the latest loss, accuracies and
//! the batches skipped for weight bumping.
//!
//! When stderr is not a terminal the bar is hidden and a plain line is printed every twentieth
//! of the run instead, so logs of batch jobs still show progress. The run's `metrics.csv` is
//! rewritten after every epoch, so a long run can be followed (and plotted) while it trains.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use spikeloop_trainer::{EpochMetrics, Observer};

/// Draws training progress, stops the run when asked (Ctrl-C) and tells whoever waits for it
/// when the first checkpoint is safely on disk.
pub struct Progress {
    bar: Option<ProgressBar>,
    epochs: u32,
    quiet: bool,
    stop: Option<Arc<AtomicBool>>,
    on_first_checkpoint: Option<Box<dyn FnOnce()>>,
    /// Batches of the epoch in progress.
    batches: usize,
    /// Where the metrics of every finished epoch go, and those so far.
    metrics: Option<(PathBuf, Vec<EpochMetrics>)>,
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
        Self {
            bar,
            epochs,
            quiet,
            stop: None,
            on_first_checkpoint: None,
            batches: 0,
            metrics: None,
        }
    }

    /// Rewrites `path` (CSV) with `history` and every epoch finished from now on.
    pub fn write_metrics_to(mut self, path: PathBuf, history: Vec<EpochMetrics>) -> Self {
        self.metrics = Some((path, history));
        self
    }

    /// Stops the run after the batch in progress once `stop` is set.
    pub fn stop_when(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Calls `f` once, when the first checkpoint has been written.
    pub fn on_first_checkpoint(mut self, f: impl FnOnce() + 'static) -> Self {
        self.on_first_checkpoint = Some(Box::new(f));
        self
    }

    /// Removes the bar, leaving the final line on screen.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// The line of an epoch: loss, accuracies and, once training has begun, how many of its
/// `batches` were skipped for weight bumping.
fn describe(m: &EpochMetrics, batches: usize) -> String {
    let pct = |v: f64| format!("{:.2} %", 100.0 * v);
    let mut line = format!(
        "loss {}  train {}  val {}",
        m.train_loss.map_or("-".into(), |l| format!("{l:.4}")),
        m.train_accuracy.map_or("-".into(), pct),
        pct(m.validation_accuracy)
    );
    if m.epoch > 0 {
        line.push_str(&format!("  bumped {}/{batches}", m.bumped_batches));
    }
    line
}

impl Observer for Progress {
    fn epoch_started(&mut self, _epoch: u32, _epochs: u32, batches: usize) {
        self.batches = batches;
    }

    fn checkpoint_saved(&mut self, _path: &Path) {
        if let Some(f) = self.on_first_checkpoint.take() {
            f();
        }
    }

    fn should_stop(&mut self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
    }

    fn epoch_finished(&mut self, metrics: &EpochMetrics) {
        if let Some((path, history)) = &mut self.metrics {
            history.retain(|m| m.epoch < metrics.epoch);
            history.push(metrics.clone());
            // Best effort: the final metrics are written (and checked) when the run ends.
            let _ = crate::train::write_metrics(path, history);
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(u64::from(metrics.epoch));
                bar.set_message(describe(metrics, self.batches));
            }
            None if !self.quiet => {
                let every = (self.epochs / 20).max(1);
                if metrics.epoch.is_multiple_of(every) || metrics.epoch == self.epochs {
                    errln!(
                        "epoch {:>4}/{}  {}",
                        metrics.epoch,
                        self.epochs,
                        describe(metrics, self.batches)
                    );
                }
            }
            None => {}
        }
    }
}
