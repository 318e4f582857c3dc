//! The trained model and its file format.
//!
//! A model file is one JSON document (`format = "spikeloop-model"`, `version = 2`) that holds
//! everything needed to run the network on any backend: topology, neuron parameters, float
//! weights, the input encoding, and how it was made (configuration, seed, the complete
//! substrate description, package version, accuracies). Weights are written with enough digits
//! to round-trip exactly, so a loaded model computes bit-identical spike times. A `checksum`
//! over the content makes any later change (a flipped digit, a hand-edited shape) an error on
//! reading; keys the format does not define are errors too.

use std::path::Path;

use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use spikeloop_backend::{Layer, Network, Substrate};
use spikeloop_data::DatasetKind;
use spikeloop_lif::NeuronParams;

use crate::{FileKind, TrainConfig, TrainError, config::EncodingConfig, seeds};

/// The identifier in the `format` field of every model file.
pub const MODEL_FORMAT: &str = "spikeloop-model";
/// The model file version this build writes and reads.
pub const MODEL_VERSION: u32 = 2;

/// One layer of a model: its neurons, bias spikes and incoming weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelLayer {
    /// Number of neurons.
    pub size: usize,
    /// Neuron parameters (model units, time in tau_s).
    pub neuron: NeuronParams,
    /// Bias spike times fed to this layer, in tau_s; appended after the previous layer's neurons.
    pub bias_times: Vec<f64>,
    /// Incoming weights, `size x n_in`, one row per neuron: previous layer (or inputs) first,
    /// then biases. In the file: a list of rows.
    #[serde(with = "spikeloop_backend::rows")]
    pub weights: Array2<f64>,
}

/// How the model was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Version of spikeloop that trained it.
    pub spikeloop_version: String,
    /// The substrate the forward passes ran on during training, completely described.
    pub substrate: Substrate,
    /// The full training configuration (its `seed` is the training seed).
    pub config: TrainConfig,
    /// Epochs completed.
    pub epochs_trained: u32,
    /// The epoch whose weights these are (see the configuration's `training.select`).
    pub selected_epoch: u32,
    /// Validation accuracy of these weights, as a fraction.
    pub validation_accuracy: Option<f64>,
    /// Test accuracy after training, as a fraction.
    pub test_accuracy: Option<f64>,
    /// Where the substrate's trial-to-trial noise stood when the test split was evaluated
    /// ([`spikeloop_backend::Backend::noise_position`]); `None` for a substrate without one.
    /// `spikeloop infer` starts there, so it reproduces `test_accuracy` exactly.
    #[serde(default)]
    pub test_noise_position: Option<u64>,
    /// Where the initial weights came from when training started from a trained model's
    /// weights (fine-tuning in the loop, say) rather than from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_from: Option<String>,
}

/// A layered first-spike network with float weights, ready to run on any backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Always [`MODEL_FORMAT`].
    pub format: String,
    /// Always [`MODEL_VERSION`] for files this build writes.
    pub version: u32,
    /// The data set the model classifies.
    pub dataset: DatasetKind,
    /// Class names, in output-neuron order.
    pub classes: Vec<String>,
    /// Number of input channels (features).
    pub n_inputs: usize,
    /// How feature values become input spike times.
    pub encoding: EncodingConfig,
    /// The layers, first hidden layer to output layer.
    pub layers: Vec<ModelLayer>,
    /// How the model was made; absent for hand-written models.
    #[serde(default)]
    pub provenance: Option<Provenance>,
    /// CRC-64/XZ of the rest of the file ([`spikeloop_files::seal`]), written by every save; a
    /// hand-written model may leave it out, a model with provenance may not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl spikeloop_files::Checksummed for Model {
    fn checksum_mut(&mut self) -> &mut Option<String> {
        &mut self.checksum
    }
}

impl Model {
    /// A freshly initialised model for `config`: weights drawn from per-layer normal
    /// distributions with the seed's initialisation stream.
    pub fn initialise(
        config: &TrainConfig,
        n_features: usize,
        classes: Vec<String>,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let net = &config.network;
        let repeat = config.encoding.repeat;
        let n_inputs = n_features * repeat;
        let mut rng = Pcg64Mcg::seed_from_u64(seeds::derive(config.seed, seeds::Stream::Init, 0));
        let mut sizes = net.hidden.clone();
        sizes.push(classes.len());
        // Weights before anything is allocated: a typo in the layer sizes is refused, not an
        // abort in the allocator.
        let n_bias = net.bias_times.len();
        let mut weights_needed = 0usize;
        let mut fan_in = n_inputs + n_bias * repeat;
        for &size in &sizes {
            weights_needed = weights_needed.saturating_add(size.saturating_mul(fan_in));
            fan_in = size + n_bias;
        }
        if weights_needed > crate::config::MAX_WEIGHTS {
            return Err(TrainError::Config(format!(
                "network of {n_inputs} inputs and layers {sizes:?} has {weights_needed} weights; at most {} (about 1.2 GB with the optimiser's state)",
                crate::config::MAX_WEIGHTS
            )));
        }
        let mut n_prev = n_inputs;
        let mut layers = Vec::with_capacity(sizes.len());
        for (l, &size) in sizes.iter().enumerate() {
            let normal =
                Normal::new(net.weight_init_mean[l], net.weight_init_sd[l]).map_err(|e| {
                    TrainError::Config(format!("weight initialisation of layer {l}: {e}"))
                })?;
            let bias_times: Vec<f64> = if l == 0 {
                net.bias_times
                    .iter()
                    .flat_map(|&t| std::iter::repeat_n(t, repeat))
                    .collect()
            } else {
                net.bias_times.clone()
            };
            let n_in = n_prev + bias_times.len();
            let draws = (0..size * n_in).map(|_| normal.sample(&mut rng)).collect();
            let mut weights = Array2::from_shape_vec((size, n_in), draws)
                .map_err(|e| TrainError::Config(format!("layer {l}: {e}")))?;
            // Under Dale's law a hidden neuron's outgoing weights start with its sign.
            if let Some(d) = net.dale.filter(|_| l > 0) {
                let balance = net.dale_balance.map(|b| {
                    let drive = net.weight_init_mean[l] * n_prev as f64;
                    (drive * (1.0 + b), drive * b)
                });
                let mean_abs = |w: &Array2<f64>, cols: std::ops::Range<usize>| {
                    let n = (w.nrows() * cols.len()).max(1) as f64;
                    w.columns()
                        .into_iter()
                        .skip(cols.start)
                        .take(cols.len())
                        .map(|c| c.iter().map(|v| v.abs()).sum::<f64>())
                        .sum::<f64>()
                        / n
                };
                let (e, i) = (d.excitatory, d.inhibitory);
                // Per population: the factor that gives its drive per neuron on average.
                let scale = |total: f64, n: usize, cols: std::ops::Range<usize>| {
                    let m = mean_abs(&weights, cols);
                    if m > 0.0 { total / (n as f64 * m) } else { 1.0 }
                };
                let (k_e, k_i) = match balance {
                    Some((t_e, t_i)) => (scale(t_e, e, 0..e), scale(t_i, i, e..e + i)),
                    None => (1.0, 1.0),
                };
                for (j, mut column) in weights.columns_mut().into_iter().enumerate() {
                    let sign = d.sign(j);
                    let k = if sign > 0.0 { k_e } else { k_i };
                    if sign != 0.0 {
                        column.mapv_inplace(|w| sign * k * w.abs());
                    }
                }
            }
            layers.push(ModelLayer {
                size,
                neuron: net.neuron,
                bias_times,
                weights,
            });
            n_prev = size;
        }
        Ok(Self {
            format: MODEL_FORMAT.into(),
            version: MODEL_VERSION,
            dataset: config.dataset,
            classes,
            n_inputs,
            encoding: config.encoding.clone(),
            layers,
            provenance: None,
            checksum: None,
        })
    }

    /// The network in the form backends take.
    pub fn to_network(&self) -> Network {
        Network {
            n_inputs: self.n_inputs,
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    size: l.size,
                    neuron: l.neuron,
                    bias_times: l.bias_times.clone(),
                    weights: l.weights.clone(),
                })
                .collect(),
        }
    }

    /// Replaces every layer's weights by `weights` (one matrix per layer, of the layer's shape);
    /// an error names the first layer of another shape, and then nothing is changed.
    pub fn set_weights(&mut self, weights: &[Array2<f64>]) -> Result<(), TrainError> {
        if weights.len() != self.layers.len() {
            return Err(TrainError::Model(format!(
                "{} weight matrices for {} layers",
                weights.len(),
                self.layers.len()
            )));
        }
        if let Some((l, (layer, w))) = self
            .layers
            .iter()
            .zip(weights)
            .enumerate()
            .find(|(_, (layer, w))| layer.weights.dim() != w.dim())
        {
            return Err(TrainError::Model(format!(
                "layer {l}: weights of shape {:?} for a layer of shape {:?}",
                w.dim(),
                layer.weights.dim()
            )));
        }
        for (layer, w) in self.layers.iter_mut().zip(weights) {
            layer.weights.assign(w);
        }
        Ok(())
    }

    /// The shape of every layer's weights (`size x n_in`).
    pub fn weight_shapes(&self) -> Vec<(usize, usize)> {
        self.layers.iter().map(|l| l.weights.dim()).collect()
    }

    /// The weights of every layer.
    pub fn weights(&self) -> Vec<Array2<f64>> {
        self.layers.iter().map(|l| l.weights.clone()).collect()
    }

    /// The bit pattern of every weight, layer after layer, rows in order: two models compute
    /// identically exactly when these agree (and their topology does).
    pub fn weight_bits(&self) -> Vec<u64> {
        self.layers
            .iter()
            .flat_map(|l| l.weights.iter().map(|w| w.to_bits()))
            .collect()
    }

    /// Number of output classes.
    pub fn n_classes(&self) -> usize {
        self.layers.last().map_or(0, |l| l.size)
    }

    /// Number of data features the model takes (input channels without repetition).
    pub fn n_features(&self) -> usize {
        self.n_inputs / self.encoding.repeat.max(1)
    }

    /// Input spike times for feature values in [0, 1] (one sample), each feature repeated
    /// `encoding.repeat` times one after another; with `encoding.blank_silent` a value of 1
    /// gives `+inf` (no spike).
    pub fn encode_into(&self, features: &[f64], out: &mut Vec<f64>) {
        let EncodingConfig {
            early,
            late,
            repeat,
            blank_silent,
        } = self.encoding;
        for &v in features {
            let t = if blank_silent && v >= 1.0 {
                f64::INFINITY
            } else {
                early + v * (late - early)
            };
            out.extend(std::iter::repeat_n(t, repeat));
        }
    }

    /// Checks format, version, shapes and that every number is finite.
    pub fn validate(&self) -> Result<(), TrainError> {
        let err = |msg: String| Err(TrainError::Model(msg));
        if self.format != MODEL_FORMAT {
            return err(format!(
                "format is \"{}\", expected \"{MODEL_FORMAT}\"",
                self.format
            ));
        }
        if self.version != MODEL_VERSION {
            return err(format!(
                "version {} is not supported; this build reads version {MODEL_VERSION}",
                self.version
            ));
        }
        if let Err(e) = self.encoding.check_times() {
            return err(e);
        }
        if self.encoding.repeat == 0 || !self.n_inputs.is_multiple_of(self.encoding.repeat) {
            return err(format!(
                "encoding.repeat = {} does not divide the {} inputs",
                self.encoding.repeat, self.n_inputs
            ));
        }
        if self.classes.len() != self.n_classes() {
            return err(format!(
                "{} class names for an output layer of {} neurons",
                self.classes.len(),
                self.n_classes()
            ));
        }
        let mut n_prev = self.n_inputs;
        for (l, layer) in self.layers.iter().enumerate() {
            let n_in = n_prev + layer.bias_times.len();
            if let Some((i, t)) = layer
                .bias_times
                .iter()
                .enumerate()
                .find(|(_, t)| !(t.is_finite() && **t >= 0.0))
            {
                return err(format!(
                    "layer {l}, bias {i}: time {t}; bias times must be finite and >= 0"
                ));
            }
            if layer.weights.nrows() != layer.size {
                return err(format!(
                    "layer {l} has size {} but {} weight rows",
                    layer.size,
                    layer.weights.nrows()
                ));
            }
            for (j, row) in layer.weights.rows().into_iter().enumerate() {
                if row.len() != n_in {
                    return err(format!(
                        "layer {l}, neuron {j} has {} weights, expected {n_in} ({n_prev} inputs + {} biases)",
                        row.len(),
                        layer.bias_times.len()
                    ));
                }
                if let Some((i, w)) = row.iter().enumerate().find(|(_, w)| !w.is_finite()) {
                    return err(format!(
                        "layer {l}, neuron {j}, input {i}: weight is {w}; weights must be finite"
                    ));
                }
            }
            if let Err(e) = layer.neuron.validate() {
                return err(format!("layer {l}: {e}"));
            }
            n_prev = layer.size;
        }
        self.to_network()
            .validate()
            .map_err(|e| TrainError::Model(e.to_string()))
    }

    /// Reads and validates a model file: its format and version, its checksum, every key and
    /// shape.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            TrainError::File(spikeloop_files::FileError::Io {
                what: "read the model file",
                path: path.to_path_buf(),
                source,
            })
        })?;
        Self::from_json(&text).map_err(|e| match e {
            TrainError::Model(m) => TrainError::Model(format!("{}: {m}", path.display())),
            TrainError::WrongKind { found, wanted, .. } => TrainError::WrongKind {
                path: path.to_path_buf(),
                found,
                wanted,
            },
            other => other,
        })
    }

    /// Reads and validates a model from the text of a model file.
    pub fn from_json(text: &str) -> Result<Self, TrainError> {
        let head: spikeloop_files::Kind = serde_json::from_str(text).map_err(|e| {
            TrainError::Model(format!(
                "not a valid model file: not JSON ({e}); a model is the model.json a run writes"
            ))
        })?;
        spikeloop_files::check_kind(&head, MODEL_FORMAT, MODEL_VERSION, "model").map_err(|e| {
            match e {
                spikeloop_files::KindMismatch::Other(found) => TrainError::WrongKind {
                    path: std::path::PathBuf::new(),
                    found: FileKind::of_format(&found),
                    wanted: "model",
                },
                spikeloop_files::KindMismatch::Invalid(m) => TrainError::Model(m),
            }
        })?;
        let model: Self = serde_json::from_str(text)
            .map_err(|e| TrainError::Model(format!("not a valid model file: {e}")))?;
        match spikeloop_files::verify_seal(&model) {
            Ok(true) => {}
            Ok(false) if model.provenance.is_some() => {
                return Err(TrainError::Model(
                    "it records a training run but carries no checksum, so it cannot be told intact; a model written by spikeloop always has one (a hand-written model leaves out both provenance and checksum)".into(),
                ));
            }
            Ok(false) => {}
            Err(e) => return Err(TrainError::Model(e)),
        }
        model.validate()?;
        Ok(model)
    }

    /// Writes the model atomically (a temporary file renamed into place), with its checksum.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        Ok(spikeloop_files::write_json_atomic(
            path,
            &spikeloop_files::seal(self)?,
            "write the model file",
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        ["yin", "yang", "dot"].map(String::from).to_vec()
    }

    /// A model written by spikeloop 0.1.0 before `training.shift` existed still loads with its
    /// checksum intact: keys added since are left out at the value that means what their
    /// absence meant (a key written as `shift = 0` made every earlier file read as damaged).
    #[test]
    fn a_model_written_before_later_keys_still_loads() {
        let model = Model::from_json(include_str!("../fixtures/model-before-shift.json"))
            .expect("a model of an earlier version");
        let provenance = model.provenance.expect("provenance");
        assert_eq!(provenance.config.training.shift, 0);
        assert_eq!(provenance.config.network.hidden, vec![4]);
    }

    #[test]
    fn dale_networks_start_with_balanced_populations_when_asked() {
        let mut config = TrainConfig::default();
        config.network.hidden = vec![40, 40];
        config.network.weight_init_mean = vec![1.5, 0.2, 0.4];
        config.network.weight_init_sd = vec![0.8, 0.3, 0.3];
        config.training.max_missing_spikes = vec![0.3, 0.3, 0.0];
        config.network.dale = Some(crate::Dale {
            excitatory: 30,
            inhibitory: 10,
        });
        let plain = Model::initialise(&config, 4, classes()).expect("model");
        config.network.dale_balance = Some(8.0);
        let balanced = Model::initialise(&config, 4, classes()).expect("model");
        // The inputs into the first layer are untouched.
        assert_eq!(plain.layers[0].weights, balanced.layers[0].weights);
        for l in 1..3 {
            let w = &balanced.layers[l].weights;
            let rows = w.nrows() as f64;
            let drive = config.network.weight_init_mean[l] * 40.0;
            let total =
                |cols: std::ops::Range<usize>| cols.map(|j| w.column(j).sum()).sum::<f64>() / rows;
            // On average per neuron: D (1 + 8) excitatory and D 8 inhibitory drive.
            assert!((total(0..30) - 9.0 * drive).abs() < 1e-9, "layer {l}");
            assert!((total(30..40) + 8.0 * drive).abs() < 1e-9, "layer {l}");
            // Signs by population, the same pattern as without balance (only scaled).
            for j in 0..40 {
                let (p, b) = (plain.layers[l].weights.column(j), w.column(j));
                assert!(
                    p.iter()
                        .zip(b.iter())
                        .all(|(x, y)| x.signum() == y.signum())
                );
            }
            // The bias column stays free.
            assert_eq!(plain.layers[l].weights.column(40), w.column(40));
        }
        config.network.dale_balance = Some(f64::NAN);
        assert!(config.validate().is_err());
    }

    #[test]
    fn blank_pixels_stay_silent_only_when_asked() {
        let mut config = TrainConfig {
            dataset: DatasetKind::Digits,
            ..TrainConfig::default()
        };
        let every = Model::initialise(&config, 4, classes()).expect("model");
        let mut times = Vec::new();
        every.encode_into(&[0.0, 0.5, 1.0, 1.0], &mut times);
        assert_eq!(times, vec![0.15, 1.075, 2.0, 2.0]);
        config.encoding.blank_silent = true;
        let silent = Model::initialise(&config, 4, classes()).expect("model");
        times.clear();
        silent.encode_into(&[0.0, 0.5, 1.0, 1.0], &mut times);
        assert_eq!(times, vec![0.15, 1.075, f64::INFINITY, f64::INFINITY]);
        // Yin-Yang has no blank pixels: the option would do nothing there, and is refused.
        config.dataset = DatasetKind::YinYang;
        let e = Model::initialise(&config, 4, classes()).expect_err("yin-yang");
        assert!(e.to_string().contains("blank_silent"), "{e}");
    }

    #[test]
    fn repeated_inputs_widen_the_first_layer_only() {
        let mut config = TrainConfig::default();
        config.encoding.repeat = 5;
        let model = Model::initialise(&config, 4, classes()).expect("model");
        assert_eq!(model.n_inputs, 20);
        assert_eq!(model.n_features(), 4);
        assert_eq!(model.layers[0].bias_times, vec![0.9; 5]);
        assert_eq!(model.layers[0].weights.ncols(), 25);
        assert_eq!(model.layers[1].bias_times, vec![0.9]);
        assert_eq!(model.layers[1].weights.ncols(), 121);
        let mut times = Vec::new();
        model.encode_into(&[0.0, 1.0, 0.5, 0.25], &mut times);
        assert_eq!(times.len(), 20);
        assert_eq!(&times[..6], &[0.15, 0.15, 0.15, 0.15, 0.15, 2.0]);
        model.validate().expect("valid");
    }

    #[test]
    fn model_files_round_trip_exactly() {
        let model = Model::initialise(&TrainConfig::default(), 4, classes()).expect("model");
        let text = serde_json::to_string(&model).expect("json");
        let back: Model = serde_json::from_str(&text).expect("parse");
        assert_eq!(model, back);
    }
}
