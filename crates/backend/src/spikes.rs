//! Input spikes in, measured spike times and run statistics out.

use std::time::Duration;

use ndarray::{Array2, ArrayView2};

use crate::BackendError;

/// A batch of samples: one spike time per input channel per sample, in model time units; an
/// `n_samples x n_inputs` matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct InputBatch {
    times: Array2<f64>,
}

/// `data` (row-major, rows of `width`) as a standard-layout matrix; `width` is at least 1 and
/// divides the length (both checked by the callers).
fn by_rows(width: usize, data: Vec<f64>) -> Array2<f64> {
    let n = data.len() / width.max(1);
    Array2::from_shape_vec((n, width), data)
        .unwrap_or_else(|_| unreachable!("{width} divides the data, checked before"))
}

impl InputBatch {
    /// Wraps row-major times `[n_samples][n_inputs]`; `f64::INFINITY` means "no spike".
    pub fn new(n_inputs: usize, times: Vec<f64>) -> Result<Self, BackendError> {
        if n_inputs == 0 {
            return Err(BackendError::InvalidInput(
                "a sample needs at least one input channel".into(),
            ));
        }
        if !times.len().is_multiple_of(n_inputs) {
            return Err(BackendError::InvalidInput(format!(
                "{} input times do not divide into samples of {n_inputs} channels",
                times.len()
            )));
        }
        if let Some(i) = times.iter().position(|t| t.is_nan()) {
            return Err(BackendError::InvalidInput(format!(
                "sample {}, channel {}: input time is NaN; use +inf for a silent channel",
                i / n_inputs,
                i % n_inputs
            )));
        }
        Ok(Self {
            times: by_rows(n_inputs, times),
        })
    }

    /// Wraps a `n_samples x n_inputs` matrix of times (checked as [`InputBatch::new`] does).
    pub fn from_array(times: Array2<f64>) -> Result<Self, BackendError> {
        let n_inputs = times.ncols();
        let flat = times.as_standard_layout().iter().copied().collect();
        Self::new(n_inputs, flat)
    }

    /// Number of input channels per sample.
    pub fn n_inputs(&self) -> usize {
        self.times.ncols()
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.times.nrows()
    }

    /// True when the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// The input times of sample `s`.
    pub fn sample(&self, s: usize) -> &[f64] {
        self.times.row(s).to_slice().unwrap_or_default()
    }

    /// All times, row-major.
    pub fn as_slice(&self) -> &[f64] {
        self.times.as_slice().unwrap_or_default()
    }

    /// The times as an `n_samples x n_inputs` matrix.
    pub fn view(&self) -> ArrayView2<'_, f64> {
        self.times.view()
    }

    /// Checks that the samples have the `expected` number of input channels of the configured
    /// network: every backend refuses a batch of another width with this message.
    pub fn check_width(&self, expected: usize) -> Result<(), BackendError> {
        if self.n_inputs() == expected {
            Ok(())
        } else {
            Err(BackendError::InvalidInput(format!(
                "samples have {} input channels, the network expects {expected}",
                self.n_inputs()
            )))
        }
    }
}

/// Which layers' spikes a run reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Record {
    /// Every layer (what training needs).
    #[default]
    AllLayers,
    /// Only the output layer (enough for inference; less to read back from a device).
    OutputOnly,
}

/// Measured first-spike times: an `n_samples x n_recorded_neurons` matrix, the recorded layers
/// one after another in every row.
#[derive(Clone, Debug, PartialEq)]
pub struct SpikeTimes {
    layers: Vec<usize>,
    sizes: Vec<usize>,
    offsets: Vec<usize>,
    data: Array2<f64>,
}

impl SpikeTimes {
    /// Wraps row-major data `[n_samples][sum of sizes]` for the network layers `layers` (indices
    /// into the network) of the given sizes.
    pub fn new(
        layers: Vec<usize>,
        sizes: Vec<usize>,
        data: Vec<f64>,
    ) -> Result<Self, BackendError> {
        if layers.len() != sizes.len() {
            return Err(BackendError::InvalidInput(format!(
                "{} recorded layers but {} layer sizes",
                layers.len(),
                sizes.len()
            )));
        }
        let mut offsets = Vec::with_capacity(sizes.len());
        let mut stride = 0;
        for &s in &sizes {
            offsets.push(stride);
            stride += s;
        }
        if stride == 0 || !data.len().is_multiple_of(stride) {
            return Err(BackendError::InvalidInput(format!(
                "{} spike times do not divide into samples of {stride} neurons",
                data.len()
            )));
        }
        Ok(Self {
            layers,
            sizes,
            offsets,
            data: by_rows(stride, data),
        })
    }

    /// Selects what `record` asks for from row-major data holding every layer of every sample
    /// (`[n_samples][sum of sizes]`, layers one after another).
    pub fn recorded(
        sizes: Vec<usize>,
        all: Vec<f64>,
        record: Record,
    ) -> Result<Self, BackendError> {
        match record {
            Record::AllLayers => Self::new((0..sizes.len()).collect(), sizes, all),
            Record::OutputOnly => {
                let stride: usize = sizes.iter().sum();
                let last = sizes.len().checked_sub(1).ok_or_else(|| {
                    BackendError::InvalidInput("a recording needs at least one layer".into())
                })?;
                let n_out = sizes[last];
                let data = all
                    .chunks(stride.max(1))
                    .flat_map(|s| s[stride - n_out..].iter().copied())
                    .collect();
                Self::new(vec![last], vec![n_out], data)
            }
        }
    }

    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.data.nrows()
    }

    /// The network layers that were recorded, in order.
    pub fn recorded_layers(&self) -> &[usize] {
        &self.layers
    }

    /// The spike times of network layer `layer` in sample `s`, if that layer was recorded.
    pub fn layer(&self, s: usize, layer: usize) -> Option<&[f64]> {
        let k = self.layers.iter().position(|&l| l == layer)?;
        let start = self.offsets[k];
        Some(&self.sample(s)[start..start + self.sizes[k]])
    }

    /// The spike times of the last recorded layer in sample `s` (the output layer).
    pub fn output(&self, s: usize) -> &[f64] {
        let k = self.sizes.len() - 1;
        let start = self.offsets[k];
        &self.sample(s)[start..start + self.sizes[k]]
    }

    /// All recorded spike times of sample `s`, recorded layers one after another.
    pub fn sample(&self, s: usize) -> &[f64] {
        self.data.row(s).to_slice().unwrap_or_default()
    }

    /// All data, row-major by sample.
    pub fn as_slice(&self) -> &[f64] {
        self.data.as_slice().unwrap_or_default()
    }

    /// Every recorded time as an `n_samples x n_recorded_neurons` matrix.
    pub fn view(&self) -> ArrayView2<'_, f64> {
        self.data.view()
    }

    /// The times of recorded network layer `layer` as an `n_samples x size` matrix, if that
    /// layer was recorded.
    pub fn layer_view(&self, layer: usize) -> Option<ArrayView2<'_, f64>> {
        let k = self.layers.iter().position(|&l| l == layer)?;
        let start = self.offsets[k];
        Some(
            self.data
                .slice(ndarray::s![.., start..start + self.sizes[k]]),
        )
    }
}

/// What a run cost and what the substrate noticed while running it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RunStats {
    /// Number of samples run.
    pub samples: usize,
    /// Number of first spikes recorded (finite times) over all recorded layers and samples.
    pub spikes: u64,
    /// Hardware time the batch occupied on the substrate, in microseconds; `None` without
    /// physical time.
    pub hardware_time_us: Option<f64>,
    /// Wall-clock time of the call as seen by the backend.
    #[serde(with = "duration_seconds")]
    pub wall_time: Duration,
    /// Input events lost in the substrate (for example two events reaching one synapse driver
    /// within its dead time).
    pub lost_events: u64,
    /// Spikes after a neuron's first one; they carry no information in first-spike coding but
    /// are counted rather than dropped silently.
    pub later_spikes: u64,
}

impl RunStats {
    /// Hardware time per sample in microseconds, where the substrate has physical time.
    pub fn hardware_time_per_sample_us(&self) -> Option<f64> {
        let t = self.hardware_time_us?;
        (self.samples > 0).then(|| t / self.samples as f64)
    }
}

mod duration_seconds {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs: f64 = serde::Deserialize::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// The result of [`crate::Backend::run`].
#[derive(Clone, Debug, PartialEq)]
pub struct RunOutput {
    /// Measured first-spike times.
    pub spikes: SpikeTimes,
    /// Run statistics.
    pub stats: RunStats,
}
