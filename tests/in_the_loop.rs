//! Training in the loop against the emulated chip: reproducible from the seeds, different on a
//! different chip, resumable to the identical result (the chip's trial noise included), and
//! better on the chip than a network trained ideally and copied onto it.

use spikeloop_backend::{Backend, IdealBackend};
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig};
use spikeloop_tests::{small_config, small_data};
use spikeloop_trainer::loss::LossParams;
use spikeloop_trainer::train::{self, Checkpoint, Silent};
use spikeloop_trainer::{Model, evaluate};

fn chip(chip_seed: u64) -> EmulatorBackend {
    EmulatorBackend::new(EmulatorConfig {
        chip_seed,
        ..EmulatorConfig::default()
    })
    .expect("emulator")
}

fn flat(model: &Model) -> Vec<u64> {
    model.weight_bits()
}

#[test]
fn same_seeds_same_result_other_chip_other_result() {
    let config = small_config(2, 4);
    let data = small_data(&config, 500);
    let run = |chip_seed: u64| {
        let state = train::start(
            &config,
            &data,
            spikeloop_backend::Substrate::new("emulator", "emulator"),
        )
        .expect("start");
        train::run(state, &data, &mut chip(chip_seed), None, &mut Silent).expect("train")
    };
    let a = run(1);
    let b = run(1);
    assert_eq!(flat(&a.model), flat(&b.model));
    assert_eq!(a.test_accuracy, b.test_accuracy);
    assert_ne!(flat(&a.model), flat(&run(2).model));
}

#[test]
fn resume_on_the_chip_is_bit_identical() {
    // Removed when the test ends, passed or failed.
    let scratch = tempfile::Builder::new()
        .prefix("spikeloop-chip-resume-")
        .tempdir()
        .expect("temp dir");
    let dir = scratch.path().to_path_buf();
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ckpt = dir.join("checkpoint.json");
    let config = small_config(3, 6);
    let data = small_data(&config, 400);

    let state = train::start(
        &config,
        &data,
        spikeloop_backend::Substrate::new("emulator", "emulator"),
    )
    .expect("start");
    let straight = train::run(state, &data, &mut chip(3), None, &mut Silent).expect("train");

    let mut short = config.clone();
    short.training.epochs = 1;
    let state = train::start(
        &short,
        &data,
        spikeloop_backend::Substrate::new("emulator", "emulator"),
    )
    .expect("start");
    train::run(state, &data, &mut chip(3), Some(&ckpt), &mut Silent).expect("first part");
    let mut state = Checkpoint::load(&ckpt).expect("checkpoint");
    assert!(
        state.noise_position.is_some(),
        "the emulator's noise position is checkpointed"
    );
    state.config.training.epochs = 3;
    // A fresh backend, as after a restart: the checkpoint brings its noise position back.
    let resumed = train::run(state, &data, &mut chip(3), Some(&ckpt), &mut Silent).expect("resume");
    assert_eq!(flat(&straight.model), flat(&resumed.model));
    assert_eq!(straight.test_accuracy, resumed.test_accuracy);
    std::fs::remove_dir_all(&dir).ok();
}

/// A chip whose link fails for good after `runs_left` runs, as a device on a flaky line does.
struct FailsAfter {
    chip: EmulatorBackend,
    runs_left: usize,
}

impl Backend for FailsAfter {
    fn capabilities(&self) -> &spikeloop_backend::Capabilities {
        self.chip.capabilities()
    }
    fn configure(
        &mut self,
        network: &spikeloop_backend::Network,
    ) -> Result<(), spikeloop_backend::BackendError> {
        self.chip.configure(network)
    }
    fn run(
        &mut self,
        inputs: &spikeloop_backend::InputBatch,
        record: spikeloop_backend::Record,
    ) -> Result<spikeloop_backend::RunOutput, spikeloop_backend::BackendError> {
        if self.runs_left == 0 {
            return Err(spikeloop_backend::BackendError::Device {
                backend: "flaky".into(),
                message: "the line is noisy".into(),
            });
        }
        self.runs_left -= 1;
        self.chip.run(inputs, record)
    }
    fn noise_position(&self) -> Option<u64> {
        self.chip.noise_position()
    }
    fn set_noise_position(&mut self, position: u64) -> Result<(), spikeloop_backend::BackendError> {
        self.chip.set_noise_position(position)
    }
}

#[test]
fn a_run_stopped_within_an_epoch_resumes_from_its_last_batch_checkpoint_bit_identically() {
    // Removed when the test ends, passed or failed.
    let scratch = tempfile::Builder::new()
        .prefix("spikeloop-batch-resume-")
        .tempdir()
        .expect("temp dir");
    let dir = scratch.path().to_path_buf();
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ckpt = dir.join("checkpoint.json");
    let config = small_config(5, 2);
    let data = small_data(&config, 400);
    let state = train::start(
        &config,
        &data,
        spikeloop_backend::Substrate::new("emulator", "emulator"),
    )
    .expect("start");
    let straight = train::run(state, &data, &mut chip(2), None, &mut Silent).expect("train");

    let checkpoints = train::Checkpoints {
        path: Some(&ckpt),
        every_batches: std::num::NonZeroUsize::new(2),
    };
    // Runs: validation before training, the batches of epoch 1, its validation (each
    // validation is one run of up to 1000 samples), then 5 batches of epoch 2; the sixth
    // fails, two batches after the checkpoint written after batch 4.
    let batches = 400usize.div_ceil(config.training.batch_size);
    let mut flaky = FailsAfter {
        chip: chip(2),
        runs_left: 1 + batches + 1 + 5,
    };
    let state = train::start(
        &config,
        &data,
        spikeloop_backend::Substrate::new("emulator", "emulator"),
    )
    .expect("start");
    assert!(train::run_with(state, &data, &mut flaky, checkpoints, &mut Silent).is_err());
    let state = Checkpoint::load(&ckpt).expect("checkpoint");
    let partial = state.partial.clone().expect("written within an epoch");
    assert_eq!((state.epoch, partial.batches_done), (1, 4));
    let resumed =
        train::run_with(state, &data, &mut chip(2), checkpoints, &mut Silent).expect("resume");
    assert_eq!(flat(&straight.model), flat(&resumed.model));
    assert_eq!(straight.test_accuracy, resumed.test_accuracy);
    let history = |o: &train::TrainOutcome| {
        o.history
            .iter()
            .map(|m| (m.train_loss, m.train_accuracy, m.validation_accuracy))
            .collect::<Vec<_>>()
    };
    assert_eq!(history(&straight), history(&resumed));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn in_the_loop_beats_copying_an_ideal_network() {
    let config = small_config(4, 2);
    let data = small_data(&config, 1500);
    let loss = LossParams {
        xi: 0.2,
        alpha: 0.005,
        beta: 1.0,
    };
    let state = train::start(
        &config,
        &data,
        spikeloop_backend::Substrate::new("ideal", "ideal"),
    )
    .expect("start");
    let ideal =
        train::run(state, &data, &mut IdealBackend::new(), None, &mut Silent).expect("ideal");
    let mut copied_on = chip(5);
    copied_on
        .configure(&ideal.model.to_network())
        .expect("configure");
    let copied = evaluate(&mut copied_on, &ideal.model, &data.test, &loss, None)
        .expect("eval")
        .accuracy;
    let state = train::start(
        &config,
        &data,
        spikeloop_backend::Substrate::new("emulator", "emulator"),
    )
    .expect("start");
    let in_loop = train::run(state, &data, &mut chip(5), None, &mut Silent).expect("in the loop");
    assert!(
        in_loop.test_accuracy > copied + 0.05,
        "ideal {} copied {copied} in the loop {}",
        ideal.test_accuracy,
        in_loop.test_accuracy
    );
}
