//! One chip instance: the fixed pattern of every circuit, drawn once from the chip seed, and the
//! codes the user has written into its CapMem.
//!
//! The one idea: everything static about a chip is a pure function of `chip_seed`. The pattern
//! is stored as standard normal numbers and scaled by the configured magnitudes only when
//! values are needed, so a configuration that changes a magnitude rescales the same chip rather
//! than drawing a new one.

use crate::Geometry;
use crate::analog::{AnalogParameter, CODE_MAX, NeuronCodes, NeuronPattern};
use crate::seeds::{Normals, Purpose};

/// Why the chip's configuration interface refused a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ChipError {
    /// The neuron index is not on the chip.
    #[error("chip neuron {neuron} does not exist: neurons are numbered 0..{count}")]
    NoSuchNeuron {
        /// The index asked for.
        neuron: usize,
        /// Number of neurons on the chip.
        count: usize,
    },
    /// A code is above the CapMem's range.
    #[error("{parameter} code {code} is out of range: codes are 0..={max}")]
    CodeOutOfRange {
        /// The parameter's name.
        parameter: &'static str,
        /// The rejected code.
        code: u16,
        /// The largest code.
        max: u16,
    },
    /// The layer index is not in the configured network.
    #[error("layer {layer} does not exist: the configured network has {layers} layers")]
    NoSuchLayer {
        /// The index asked for.
        layer: usize,
        /// Number of layers of the configured network.
        layers: usize,
    },
    /// No network has been configured yet.
    #[error("no network configured: call configure() first")]
    NotConfigured,
    /// A layer's target lies outside what the ideal transfer curve can reach.
    #[error(
        "layer {layer}: the {parameter} target {value} {unit} is outside the chip's range \
         (see the transfer curves in the emulator's analog module)"
    )]
    TargetOutOfRange {
        /// The layer.
        layer: usize,
        /// The parameter's name.
        parameter: &'static str,
        /// The target value.
        value: f64,
        /// Its unit.
        unit: &'static str,
    },
}

/// The static state of one chip.
#[derive(Clone, Debug)]
pub(crate) struct Chip {
    neurons: Vec<NeuronPattern>,
    /// Standard normal gain deviations of the synapses, `[half][row][column]`.
    synapses: Vec<f64>,
    /// Codes written explicitly (by a calibration); `None` means "nominal for its layer".
    explicit: Vec<Option<NeuronCodes>>,
    neurons_per_half: usize,
    rows_per_half: usize,
}

impl Chip {
    /// The chip of `chip_seed` with the layout `geometry`.
    pub(crate) fn new(chip_seed: u64, geometry: &Geometry) -> Self {
        let (neurons_per_half, rows_per_half) = (geometry.neurons_per_half, geometry.rows_per_half);
        let mut normals = Normals::new(chip_seed, Purpose::NeuronPattern, 0, 0);
        // From a stream of its own, so that the fixed pattern is the same with or without it.
        let mut drifts = Normals::new(chip_seed, Purpose::Drift, 0, 0);
        let neurons = (0..geometry.neurons())
            .map(|_| {
                let mut z = [[0.0; 2]; 6];
                for pair in z.iter_mut() {
                    *pair = [normals.next(), normals.next()];
                }
                let drift = [drifts.next(), drifts.next(), drifts.next()];
                NeuronPattern { z, drift }
            })
            .collect();
        let per_half = rows_per_half * neurons_per_half;
        let mut synapses = Vec::with_capacity(geometry.halves * per_half);
        for half in 0..geometry.halves {
            let mut normals = Normals::new(chip_seed, Purpose::SynapsePattern, half as u64, 0);
            synapses.extend((0..per_half).map(|_| normals.next()));
        }
        Self {
            neurons,
            synapses,
            explicit: vec![None; geometry.neurons()],
            neurons_per_half,
            rows_per_half,
        }
    }

    pub(crate) fn pattern(&self, neuron: usize) -> &NeuronPattern {
        &self.neurons[neuron]
    }

    /// The standard normal gain deviation of the synapse in `row` of the half holding `neuron`,
    /// in that neuron's column.
    pub(crate) fn synapse_z(&self, neuron: usize, row: usize) -> f64 {
        let half = neuron / self.neurons_per_half;
        let column = neuron % self.neurons_per_half;
        self.synapses[(half * self.rows_per_half + row) * self.neurons_per_half + column]
    }

    pub(crate) fn explicit_codes(&self, neuron: usize) -> Result<Option<NeuronCodes>, ChipError> {
        self.check_neuron(neuron)?;
        Ok(self.explicit[neuron])
    }

    pub(crate) fn set_codes(
        &mut self,
        neuron: usize,
        codes: Option<NeuronCodes>,
    ) -> Result<(), ChipError> {
        self.check_neuron(neuron)?;
        if let Some(c) = &codes {
            c.validate().map_err(|(p, code)| code_error(p, code))?;
        }
        self.explicit[neuron] = codes;
        Ok(())
    }

    pub(crate) fn clear_all_codes(&mut self) {
        self.explicit.iter_mut().for_each(|c| *c = None);
    }

    fn check_neuron(&self, neuron: usize) -> Result<(), ChipError> {
        if neuron < self.neurons.len() {
            Ok(())
        } else {
            Err(ChipError::NoSuchNeuron {
                neuron,
                count: self.neurons.len(),
            })
        }
    }
}

pub(crate) fn code_error(p: AnalogParameter, code: u16) -> ChipError {
    ChipError::CodeOutOfRange {
        parameter: p.name(),
        code,
        max: CODE_MAX,
    }
}
