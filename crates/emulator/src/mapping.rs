//! Mapping a network onto the chip: neurons into halves, sources onto synapse rows, float
//! weights into 6-bit signed weights.
//!
//! The one idea: on this chip the *sign* of a synapse belongs to its row (the row's synapse
//! driver is excitatory or inhibitory), and a row reaches only the 256 neurons of its own half.
//! So every source (an input channel, a bias spike, or a neuron of the previous layer) that
//! projects into a half occupies one synapse driver there, whose two rows are one excitatory and
//! one inhibitory; a positive weight is stored in the excitatory row, a negative one (as its
//! magnitude) in the inhibitory row, and the other row's synapse holds 0. A layer is placed in
//! one half if it fits, else split over both (its sources then take rows in both). Hidden layers
//! are routed back on chip as the next layer's sources.
//!
//! Resources per half (BrainScaleS-2, the default [`Geometry`]): 256 neurons, 256 rows (128
//! drivers). A layer with more sources than one column takes (128) is built from merged
//! circuits: each neuron is `m` neighbouring circuits sharing the first one's membrane, the
//! sources are spread over all 128 drivers (source `s` on driver `s mod 128`), and the 6-bit
//! address label of each synapse picks which of a driver's sources its column listens to
//! (circuit `c` of a neuron takes sources `128 c ..`), as in the fit rules
//! ([`spikeloop_backend::geometry`]).

use spikeloop_backend::{BackendError, Network};

use crate::Geometry;

/// The part of a layer that sits in one chip half.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HalfBlock {
    /// The half (0 or 1).
    pub half: usize,
    /// The layer's sources occupy drivers `first_driver..first_driver + drivers` of this half
    /// (rows `2 d` excitatory and `2 d + 1` inhibitory for driver `d`).
    pub first_driver: usize,
    /// Number of sources of the layer.
    pub n_sources: usize,
    /// Drivers the sources are spread over: source `s` is on driver `first_driver + s %
    /// drivers` (equal to `n_sources` unless the neurons are merged circuits).
    pub drivers: usize,
    /// Circuits per neuron: neuron `j` of the layer is circuits `chip_neurons[j]..` `+
    /// circuits_per_neuron`, and source `s` reaches it through circuit `s / drivers`.
    pub circuits_per_neuron: usize,
    /// Indices (within the layer) of the neurons placed in this half.
    pub neurons: Vec<usize>,
}

/// Where one layer sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerPlacement {
    /// Chip neuron (`0..neurons`, half = index / neurons per half) of each neuron of the layer:
    /// its first circuit when it is made of merged circuits.
    pub chip_neurons: Vec<usize>,
    /// One block per half the layer uses.
    pub blocks: Vec<HalfBlock>,
    /// Signed hardware weights, row-major `[size][n_in]` like the network's weights.
    pub weights: Vec<i8>,
    /// How many of the layer's weights were clipped to the largest magnitude.
    pub clipped: usize,
}

/// A network's placement on the chip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Per network layer.
    pub layers: Vec<LayerPlacement>,
    /// Neuron circuits used per half.
    pub neurons_used: Vec<usize>,
    /// Synapse rows used per half.
    pub rows_used: Vec<usize>,
}

/// `round(scale * w)` clipped to `[-max, max]` (`max` = 63 for 6-bit weights); the flag tells
/// whether it was clipped.
pub fn quantise_weight(w: f64, scale: f64, max: i8) -> (i8, bool) {
    let x = (w * scale).round();
    let limit = f64::from(max);
    if x > limit {
        (max, true)
    } else if x < -limit {
        (-max, true)
    } else {
        (x as i8, false)
    }
}

/// Places a validated network on a chip of `geometry`: where its neurons and rows go is decided
/// by the fit rules shared with the device and the host
/// ([`spikeloop_backend::ChipGeometry::place`]). Fails with [`BackendError::DoesNotFit`]
/// naming the resource.
pub fn place(
    network: &Network,
    weight_scale: f64,
    geometry: &Geometry,
) -> Result<Placement, BackendError> {
    let shape = network.shape();
    let shares = geometry
        .fit_rules()
        .place(network.n_inputs, &shape)
        .map_err(|e| BackendError::DoesNotFit {
            backend: "emulator".into(),
            resource: e.resource.into(),
            needed: e.needed,
            available: e.available,
            detail: e.detail,
        })?;
    let mut neurons_used = vec![0; geometry.halves];
    let mut rows_used = vec![0; geometry.halves];
    let max_weight = geometry.max_weight();
    let mut layers = Vec::with_capacity(network.layers.len());
    let mut n_prev = network.n_inputs;
    for (layer, layer_shares) in network.layers.iter().zip(shares) {
        let sources = n_prev + layer.bias_times.len();
        n_prev = layer.size;
        let mut chip_neurons = Vec::with_capacity(layer.size);
        let mut blocks = Vec::with_capacity(layer_shares.len());
        let mut next = 0;
        for share in layer_shares {
            let h = share.half;
            let m = share.circuits_per_neuron;
            blocks.push(HalfBlock {
                half: h,
                first_driver: share.first_row / 2,
                n_sources: sources,
                drivers: share.drivers,
                circuits_per_neuron: m,
                neurons: (next..next + share.neurons).collect(),
            });
            chip_neurons.extend(
                (0..share.neurons)
                    .map(|k| h * geometry.neurons_per_half + share.first_circuit + k * m),
            );
            neurons_used[h] = share.first_circuit + share.neurons * m;
            rows_used[h] = share.first_row + 2 * share.drivers;
            next += share.neurons;
        }
        let mut clipped = 0;
        let weights = layer
            .weights
            .iter()
            .map(|&w| {
                let (q, c) = quantise_weight(w, weight_scale, max_weight);
                clipped += usize::from(c);
                q
            })
            .collect();
        layers.push(LayerPlacement {
            chip_neurons,
            blocks,
            weights,
            clipped,
        });
    }
    Ok(Placement {
        layers,
        neurons_used,
        rows_used,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_rounds_and_clips() {
        assert_eq!(quantise_weight(0.5, 30.0, 63), (15, false));
        assert_eq!(quantise_weight(-0.5, 30.0, 63), (-15, false));
        assert_eq!(quantise_weight(0.01, 30.0, 63), (0, false));
        assert_eq!(quantise_weight(2.1, 30.0, 63), (63, false));
        assert_eq!(quantise_weight(2.2, 30.0, 63), (63, true));
        assert_eq!(quantise_weight(-100.0, 30.0, 63), (-63, true));
        assert_eq!(quantise_weight(0.5, 20.0, 63), (10, false));
    }
}
