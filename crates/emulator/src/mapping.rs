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
//! Resources per half: 256 neurons, 256 rows (128 drivers). The 6-bit source address of each
//! synapse would let sources that reach disjoint neurons share a row; in layered all-to-all
//! networks every neuron listens to every source, so this mapping uses one source per row.

use spikeloop_backend::{BackendError, Network};

/// Neuron circuits on the chip.
pub const NEURONS: usize = 512;
/// Chip halves, each with its own synapse array.
pub const HALVES: usize = 2;
/// Neuron circuits (synapse columns) per half.
pub const NEURONS_PER_HALF: usize = 256;
/// Synapse rows per half.
pub const ROWS_PER_HALF: usize = 256;
/// Synapse drivers per half; each drives two rows.
pub const DRIVERS_PER_HALF: usize = ROWS_PER_HALF / 2;
/// Event buses per half; driver `d` listens to bus `d % EVENT_BUSES_PER_HALF`.
pub const EVENT_BUSES_PER_HALF: usize = 4;
/// Bits of weight magnitude per synapse.
pub const WEIGHT_BITS: u32 = 6;
/// Largest weight magnitude a synapse holds.
pub const MAX_WEIGHT: i32 = 63;

/// The part of a layer that sits in one chip half.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HalfBlock {
    /// The half (0 or 1).
    pub half: usize,
    /// The layer's sources occupy drivers `first_driver..first_driver + n_sources` of this half
    /// (rows `2 d` excitatory and `2 d + 1` inhibitory for driver `d`).
    pub first_driver: usize,
    /// Number of sources (and drivers) of the layer.
    pub n_sources: usize,
    /// Indices (within the layer) of the neurons placed in this half.
    pub neurons: Vec<usize>,
}

/// Where one layer sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerPlacement {
    /// Chip neuron (`0..512`, half = index / 256) of each neuron of the layer.
    pub chip_neurons: Vec<usize>,
    /// One block per half the layer uses.
    pub blocks: Vec<HalfBlock>,
    /// Signed hardware weights, row-major `[size][n_in]` like the network's weights.
    pub weights: Vec<i8>,
    /// How many of the layer's weights were clipped to +-63.
    pub clipped: usize,
}

/// A network's placement on the chip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Per network layer.
    pub layers: Vec<LayerPlacement>,
    /// Neuron circuits used per half.
    pub neurons_used: [usize; HALVES],
    /// Synapse rows used per half.
    pub rows_used: [usize; HALVES],
}

/// `round(scale * w)` clipped to `[-63, 63]`; the flag tells whether it was clipped.
pub fn quantise_weight(w: f64, scale: f64) -> (i8, bool) {
    let x = (w * scale).round();
    let max = f64::from(MAX_WEIGHT);
    if x > max {
        (MAX_WEIGHT as i8, true)
    } else if x < -max {
        (-(MAX_WEIGHT as i8), true)
    } else {
        (x as i8, false)
    }
}

fn does_not_fit(resource: String, needed: usize, available: usize) -> BackendError {
    BackendError::DoesNotFit {
        backend: "emulator".into(),
        resource,
        needed,
        available,
    }
}

/// Places a validated network; fails with [`BackendError::DoesNotFit`] naming the resource.
pub fn place(network: &Network, weight_scale: f64) -> Result<Placement, BackendError> {
    let total = network.n_neurons();
    if total > NEURONS {
        return Err(does_not_fit(
            format!(
                "neuron circuits ({NEURONS_PER_HALF} per chip half; layers {:?})",
                network.layer_sizes()
            ),
            total,
            NEURONS,
        ));
    }
    let mut n_prev = network.n_inputs;
    for (l, layer) in network.layers.iter().enumerate() {
        let sources = n_prev + layer.bias_times.len();
        if 2 * sources > ROWS_PER_HALF {
            return Err(does_not_fit(
                format!(
                    "synapse rows per chip half (layer {l} has {sources} sources, each needing \
                     one excitatory and one inhibitory row in every half holding its neurons; \
                     1 source per row)"
                ),
                2 * sources,
                ROWS_PER_HALF,
            ));
        }
        n_prev = layer.size;
    }

    let mut free_neurons = [NEURONS_PER_HALF; HALVES];
    let mut free_drivers = [DRIVERS_PER_HALF; HALVES];
    let mut layers = Vec::with_capacity(network.layers.len());
    let mut n_prev = network.n_inputs;
    for (l, layer) in network.layers.iter().enumerate() {
        let sources = n_prev + layer.bias_times.len();
        n_prev = layer.size;
        // Prefer the half with more free drivers (ties: half 0).
        let order = if free_drivers[1] > free_drivers[0] {
            [1, 0]
        } else {
            [0, 1]
        };
        let whole = order
            .iter()
            .copied()
            .find(|&h| free_neurons[h] >= layer.size && free_drivers[h] >= sources);
        let shares: Vec<(usize, usize)> = if let Some(h) = whole {
            vec![(h, layer.size)]
        } else if free_drivers.iter().all(|&d| d >= sources)
            && free_neurons[0] + free_neurons[1] >= layer.size
        {
            let first = if free_neurons[order[0]] > 0 {
                order[0]
            } else {
                order[1]
            };
            let n_first = free_neurons[first].min(layer.size);
            let mut shares = vec![(first, n_first)];
            if n_first < layer.size {
                shares.push((1 - first, layer.size - n_first));
            }
            shares
        } else if free_neurons[0] + free_neurons[1] < layer.size {
            return Err(does_not_fit(
                format!("free neuron circuits for layer {l}"),
                layer.size,
                free_neurons[0] + free_neurons[1],
            ));
        } else {
            let best = order[0];
            return Err(does_not_fit(
                format!(
                    "free synapse rows in chip half {best} for layer {l} ({sources} sources x 2 \
                     rows; rows used per half so far: {:?} of {ROWS_PER_HALF})",
                    [
                        2 * (DRIVERS_PER_HALF - free_drivers[0]),
                        2 * (DRIVERS_PER_HALF - free_drivers[1])
                    ]
                ),
                2 * sources,
                2 * free_drivers[best],
            ));
        };

        let mut chip_neurons = Vec::with_capacity(layer.size);
        let mut blocks = Vec::with_capacity(shares.len());
        let mut next = 0;
        for (h, count) in shares {
            let first_column = NEURONS_PER_HALF - free_neurons[h];
            let block = HalfBlock {
                half: h,
                first_driver: DRIVERS_PER_HALF - free_drivers[h],
                n_sources: sources,
                neurons: (next..next + count).collect(),
            };
            chip_neurons.extend((0..count).map(|k| h * NEURONS_PER_HALF + first_column + k));
            free_neurons[h] -= count;
            free_drivers[h] -= sources;
            next += count;
            blocks.push(block);
        }
        let mut clipped = 0;
        let weights = layer
            .weights
            .iter()
            .map(|&w| {
                let (q, c) = quantise_weight(w, weight_scale);
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
        neurons_used: [
            NEURONS_PER_HALF - free_neurons[0],
            NEURONS_PER_HALF - free_neurons[1],
        ],
        rows_used: [
            2 * (DRIVERS_PER_HALF - free_drivers[0]),
            2 * (DRIVERS_PER_HALF - free_drivers[1]),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_rounds_and_clips() {
        assert_eq!(quantise_weight(0.5, 30.0), (15, false));
        assert_eq!(quantise_weight(-0.5, 30.0), (-15, false));
        assert_eq!(quantise_weight(0.01, 30.0), (0, false));
        assert_eq!(quantise_weight(2.1, 30.0), (63, false));
        assert_eq!(quantise_weight(2.2, 30.0), (63, true));
        assert_eq!(quantise_weight(-100.0, 30.0), (-63, true));
        assert_eq!(quantise_weight(0.5, 20.0), (10, false));
    }
}
