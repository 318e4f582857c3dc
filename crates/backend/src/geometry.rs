//! The fit rules of a chip built from halves: which layered networks a substrate can hold, and
//! where each layer's neurons go.
//!
//! The one idea: on a BrainScaleS-2-style chip a synapse row reaches only the neuron circuits of
//! its own half, and its sign belongs to the row, so every source a layer listens to (an input
//! channel, a bias spike, a neuron of the previous layer) takes `rows_per_source` rows (one
//! excitatory, one inhibitory) in *every* half that holds neurons of that layer. Whether a
//! network fits therefore depends on its shape alone (input count, layer sizes, bias counts),
//! never on its weights, and [`ChipGeometry::place`] decides it the same way wherever it runs:
//! in the emulator when it maps a network, in a device when `ConfigureBegin` arrives, and on the
//! host before anything is sent, so that an impossible network is refused before any traffic.
//!
//! The placement, layer by layer in network order:
//!
//! 1. the halves are ranked by free rows, most first (ties: lower index first);
//! 2. the layer goes whole into the first half in that ranking with enough free neuron circuits
//!    and `rows_per_source * sources` free rows;
//! 3. otherwise, if every half has those free rows and all halves together have enough free
//!    circuits, the layer is split: the halves in ranking order (skipping full ones) take as many
//!    of its neurons as they have free circuits, and every half used spends the rows;
//! 4. otherwise the network does not fit.

/// The resources of a chip made of halves, and the rules that map a layered network onto them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChipGeometry {
    /// Number of halves (each with its own synapse array).
    pub halves: usize,
    /// Neuron circuits (synapse columns) per half.
    pub neurons_per_half: usize,
    /// Synapse rows per half.
    pub rows_per_half: usize,
    /// Rows a signed source takes in every half it projects into (2 when the sign belongs to
    /// the row: one excitatory and one inhibitory).
    pub rows_per_source: usize,
}

/// The part of a layer placed in one half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// The half.
    pub half: usize,
    /// First neuron circuit of the half the share uses (circuits are taken in order).
    pub first_circuit: usize,
    /// First synapse row of the half the layer's sources use.
    pub first_row: usize,
    /// How many of the layer's neurons sit in this half (consecutive in layer order).
    pub neurons: usize,
}

/// Why a shape does not fit: the resource that runs out, the counts, and a sentence on where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitError {
    /// A short name of the resource, e.g. `neuron circuits` or `synapse rows per chip half`.
    pub resource: &'static str,
    /// How many the network needs.
    pub needed: usize,
    /// How many there are.
    pub available: usize,
    /// Which layer ran out and how the need was counted.
    pub detail: String,
}

impl ChipGeometry {
    /// BrainScaleS-2 (HICANN-X): 2 halves of 256 neuron circuits and 256 synapse rows; a signed
    /// source takes 2 rows.
    pub const BRAINSCALES2: ChipGeometry = ChipGeometry {
        halves: 2,
        neurons_per_half: 256,
        rows_per_half: 256,
        rows_per_source: 2,
    };

    /// Neuron circuits of the whole chip.
    pub fn neurons(&self) -> usize {
        self.halves * self.neurons_per_half
    }

    /// Places a network of `n_inputs` inputs and `layers` given as `(size, bias count)` in
    /// order; one list of shares per layer. See the module documentation for the rules.
    pub fn place(
        &self,
        n_inputs: usize,
        layers: &[(usize, usize)],
    ) -> Result<Vec<Vec<Share>>, FitError> {
        let sizes: Vec<usize> = layers.iter().map(|&(size, _)| size).collect();
        let total: usize = sizes.iter().sum();
        if total > self.neurons() {
            return Err(FitError {
                resource: "neuron circuits",
                needed: total,
                available: self.neurons(),
                detail: format!(
                    "layers {sizes:?} need {total} circuits; the chip has {} halves of {}",
                    self.halves, self.neurons_per_half
                ),
            });
        }
        let sources = |l: usize| {
            let prev = if l == 0 { n_inputs } else { layers[l - 1].0 };
            prev + layers[l].1
        };
        for l in 0..layers.len() {
            let rows = self.rows_per_source * sources(l);
            if rows > self.rows_per_half {
                return Err(FitError {
                    resource: "synapse rows per chip half",
                    needed: rows,
                    available: self.rows_per_half,
                    detail: format!(
                        "layer {l} has {} sources, each taking {} rows in every half that holds its neurons",
                        sources(l),
                        self.rows_per_source
                    ),
                });
            }
        }
        let mut free_neurons = vec![self.neurons_per_half; self.halves];
        let mut free_rows = vec![self.rows_per_half; self.halves];
        let mut placed = Vec::with_capacity(layers.len());
        for (l, &(size, _)) in layers.iter().enumerate() {
            let rows = self.rows_per_source * sources(l);
            let mut order: Vec<usize> = (0..self.halves).collect();
            order.sort_by_key(|&h| std::cmp::Reverse(free_rows[h]));
            let whole = order
                .iter()
                .copied()
                .find(|&h| free_neurons[h] >= size && free_rows[h] >= rows);
            let counts: Vec<(usize, usize)> = if let Some(h) = whole {
                vec![(h, size)]
            } else if free_rows.iter().all(|&r| r >= rows)
                && free_neurons.iter().sum::<usize>() >= size
            {
                let mut left = size;
                let mut counts = Vec::new();
                for &h in order.iter().filter(|&&h| free_neurons[h] > 0) {
                    if left == 0 {
                        break;
                    }
                    let n = free_neurons[h].min(left);
                    counts.push((h, n));
                    left -= n;
                }
                counts
            } else if free_neurons.iter().sum::<usize>() < size {
                return Err(FitError {
                    resource: "neuron circuits",
                    needed: size,
                    available: free_neurons.iter().sum(),
                    detail: format!("layer {l} finds too few free circuits"),
                });
            } else {
                let best = order[0];
                return Err(FitError {
                    resource: "synapse rows per chip half",
                    needed: rows,
                    available: free_rows[best],
                    detail: format!(
                        "layer {l} ({} sources x {} rows) must be split over every half, and half {best} has {} free rows; rows used per half so far: {:?}",
                        sources(l),
                        self.rows_per_source,
                        free_rows[best],
                        free_rows
                            .iter()
                            .map(|&r| self.rows_per_half - r)
                            .collect::<Vec<_>>()
                    ),
                });
            };
            let mut shares = Vec::with_capacity(counts.len());
            for (h, n) in counts {
                shares.push(Share {
                    half: h,
                    first_circuit: self.neurons_per_half - free_neurons[h],
                    first_row: self.rows_per_half - free_rows[h],
                    neurons: n,
                });
                free_neurons[h] -= n;
                free_rows[h] -= rows;
            }
            placed.push(shares);
        }
        Ok(placed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: ChipGeometry = ChipGeometry::BRAINSCALES2;

    #[test]
    fn a_small_layer_goes_whole_into_the_half_with_more_free_rows() {
        let p = G.place(5, &[(120, 0), (3, 0)]).expect("fits");
        assert_eq!(
            p[0],
            [Share {
                half: 0,
                first_circuit: 0,
                first_row: 0,
                neurons: 120
            }]
        );
        // Half 0 has spent 10 rows, so the output layer goes to half 1.
        assert_eq!(p[1][0].half, 1);
    }

    #[test]
    fn a_wide_layer_is_split_and_spends_rows_in_both_halves() {
        let p = G.place(10, &[(300, 0)]).expect("fits");
        assert_eq!(p[0].len(), 2);
        assert_eq!((p[0][0].neurons, p[0][1].neurons), (256, 44));
        let e = G
            .place(10, &[(300, 0), (100, 0)])
            .expect_err("rows run out");
        assert_eq!(e.resource, "synapse rows per chip half");
        assert_eq!((e.needed, e.available), (600, 256));
    }

    #[test]
    fn shortages_name_the_resource() {
        let e = G.place(2, &[(600, 0)]).expect_err("too many neurons");
        assert_eq!(
            (e.resource, e.needed, e.available),
            ("neuron circuits", 600, 512)
        );
        let e = G.place(127, &[(10, 2)]).expect_err("too many sources");
        assert_eq!(
            (e.resource, e.needed, e.available),
            ("synapse rows per chip half", 258, 256)
        );
        assert!(e.detail.contains("layer 0 has 129 sources"), "{}", e.detail);
    }
}
