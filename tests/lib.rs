//! Shared helpers of the workspace-level integration tests.

use spikeloop_trainer::{DataSplits, TrainConfig, load_data};

/// A small, fast configuration: few epochs, a narrow hidden layer, a fixed seed.
pub fn small_config(epochs: u32, seed: u64) -> TrainConfig {
    let mut c = TrainConfig {
        seed,
        ..TrainConfig::default()
    };
    c.training.epochs = epochs;
    c.training.batch_size = 50;
    c.network.hidden = vec![30];
    c
}

/// The configured data set with its training split cut to `n_train` samples (keeps tests fast).
pub fn small_data(config: &TrainConfig, n_train: usize) -> DataSplits {
    let mut data = load_data(config).expect("data set");
    let t = &mut data.train;
    t.truncate(n_train);
    data
}
