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
//! A neuron circuit's synapse column takes one source per synapse driver (a driver being
//! `rows_per_source` rows), so a circuit listens to at most `rows_per_half / rows_per_source`
//! sources. A layer with more sources than that is built from *merged* circuits, when the chip
//! can merge them (`max_merged > 1`): each logical neuron is `m = ceil(sources / per circuit)`
//! neighbouring circuits of one half sharing one membrane, the layer's sources are spread over
//! all the half's drivers (source `s` on driver `s mod per-circuit`, told apart by its address
//! label `s div per-circuit`), and circuit `c` of each neuron listens to the sources with label
//! `c`. Such a layer spends every row of each half it uses.
//!
//! The placement, layer by layer in network order:
//!
//! 1. the halves are ranked by free rows, most first (ties: lower index first);
//! 2. the layer goes whole into the first half in that ranking with enough free neuron circuits
//!    (`m` per neuron) and `rows_per_source * min(sources, per circuit)` free rows;
//! 3. otherwise, if every half has those free rows and all halves together have enough free
//!    circuits, the layer is split: the halves in ranking order (skipping full ones) take as many
//!    of its neurons as they have room for, and every half used spends the rows;
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
    /// Most neuron circuits one logical neuron may merge (1: no merging). Absent in files and
    /// messages written before merging existed, which means 1.
    #[serde(default = "one")]
    pub max_merged: usize,
}

fn one() -> usize {
    1
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
    /// Neuron circuits merged into each of them (1 unless the layer's fan-in needs more).
    pub circuits_per_neuron: usize,
    /// Synapse drivers the layer's sources are spread over in this half (its sources when
    /// they fit one column, else every driver of the half).
    pub drivers: usize,
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
    /// source takes 2 rows; up to 64 circuits merged into one neuron (the 6-bit address labels
    /// tell at most 64 sources of one driver apart).
    pub const BRAINSCALES2: ChipGeometry = ChipGeometry {
        halves: 2,
        neurons_per_half: 256,
        rows_per_half: 256,
        rows_per_source: 2,
        max_merged: 64,
    };

    /// Sources one neuron circuit's synapse column listens to.
    pub fn sources_per_circuit(&self) -> usize {
        self.rows_per_half / self.rows_per_source.max(1)
    }

    /// Circuits each neuron of a layer with `sources` sources takes (1 when they fit one
    /// column; may exceed [`ChipGeometry::max_merged`], which [`ChipGeometry::place`] checks).
    pub fn circuits_per_neuron(&self, sources: usize) -> usize {
        sources.div_ceil(self.sources_per_circuit().max(1)).max(1)
    }

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
        let sources = |l: usize| {
            let prev = if l == 0 { n_inputs } else { layers[l - 1].0 };
            prev + layers[l].1
        };
        let per_circuit = self.sources_per_circuit();
        // Without merging every neuron is one circuit (a too-wide layer is refused below).
        let merged = |l: usize| {
            if self.max_merged <= 1 {
                1
            } else {
                self.circuits_per_neuron(sources(l))
            }
        };
        let rows_of = |l: usize| self.rows_per_source * sources(l).min(per_circuit.max(1));
        let sizes: Vec<usize> = layers.iter().map(|&(size, _)| size).collect();
        let total: usize = (0..layers.len())
            .map(|l| sizes[l].saturating_mul(merged(l)))
            .fold(0, usize::saturating_add);
        if total > self.neurons() {
            let merging = (0..layers.len()).any(|l| merged(l) > 1);
            return Err(FitError {
                resource: "neuron circuits",
                needed: total,
                available: self.neurons(),
                detail: if merging {
                    format!(
                        "layers {sizes:?} with {:?} merged circuits per neuron need {total} circuits; the chip has {} halves of {}",
                        (0..layers.len()).map(merged).collect::<Vec<_>>(),
                        self.halves,
                        self.neurons_per_half
                    )
                } else {
                    format!(
                        "layers {sizes:?} need {total} circuits; the chip has {} halves of {}",
                        self.halves, self.neurons_per_half
                    )
                },
            });
        }
        for l in 0..layers.len() {
            let m = self.circuits_per_neuron(sources(l));
            if m > 1 && self.max_merged <= 1 {
                return Err(FitError {
                    resource: "synapse rows per chip half",
                    needed: self.rows_per_source * sources(l),
                    available: self.rows_per_half,
                    detail: format!(
                        "layer {l} has {} sources, each taking {} rows in every half that holds its neurons",
                        sources(l),
                        self.rows_per_source
                    ),
                });
            }
            if m > self.max_merged {
                return Err(FitError {
                    resource: "merged circuits per neuron",
                    needed: m,
                    available: self.max_merged,
                    detail: format!(
                        "layer {l} has {} sources; one circuit takes {per_circuit}, so each neuron needs {m} circuits",
                        sources(l)
                    ),
                });
            }
        }
        let mut free_neurons = vec![self.neurons_per_half; self.halves];
        let mut free_rows = vec![self.rows_per_half; self.halves];
        let mut placed = Vec::with_capacity(layers.len());
        for (l, &(size, _)) in layers.iter().enumerate() {
            let rows = rows_of(l);
            let m = merged(l);
            let room = |h: usize, free_neurons: &[usize]| free_neurons[h] / m;
            let mut order: Vec<usize> = (0..self.halves).collect();
            order.sort_by_key(|&h| std::cmp::Reverse(free_rows[h]));
            let whole = order
                .iter()
                .copied()
                .find(|&h| room(h, &free_neurons) >= size && free_rows[h] >= rows);
            let total_room: usize = (0..self.halves).map(|h| room(h, &free_neurons)).sum();
            let counts: Vec<(usize, usize)> = if let Some(h) = whole {
                vec![(h, size)]
            } else if free_rows.iter().all(|&r| r >= rows) && total_room >= size {
                let mut left = size;
                let mut counts = Vec::new();
                for &h in order.iter().filter(|&&h| room(h, &free_neurons) > 0) {
                    if left == 0 {
                        break;
                    }
                    let n = room(h, &free_neurons).min(left);
                    counts.push((h, n));
                    left -= n;
                }
                counts
            } else if total_room < size {
                return Err(FitError {
                    resource: "neuron circuits",
                    needed: size * m,
                    available: free_neurons.iter().sum(),
                    detail: if m > 1 {
                        format!(
                            "layer {l} ({size} neurons of {m} merged circuits) finds too few free circuits"
                        )
                    } else {
                        format!("layer {l} finds too few free circuits")
                    },
                });
            } else {
                let best = order[0];
                return Err(FitError {
                    resource: "synapse rows per chip half",
                    needed: rows,
                    available: free_rows[best],
                    detail: format!(
                        "layer {l} ({} sources x {} rows) must be split over every half, and half {best} has {} free rows; rows used per half so far: {:?}",
                        sources(l).min(per_circuit.max(1)),
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
                    circuits_per_neuron: m,
                    drivers: rows / self.rows_per_source.max(1),
                });
                free_neurons[h] -= n * m;
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
                neurons: 120,
                circuits_per_neuron: 1,
                drivers: 5,
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
        let g = ChipGeometry { max_merged: 1, ..G };
        let e = g
            .place(10, &[(300, 0), (100, 0)])
            .expect_err("rows run out");
        assert_eq!(e.resource, "synapse rows per chip half");
        assert_eq!((e.needed, e.available), (600, 256));
    }

    #[test]
    fn shortages_name_the_resource() {
        // Without merging, as before merging existed.
        let g = ChipGeometry { max_merged: 1, ..G };
        let e = g.place(2, &[(600, 0)]).expect_err("too many neurons");
        assert_eq!(
            (e.resource, e.needed, e.available),
            ("neuron circuits", 600, 512)
        );
        let e = g.place(127, &[(10, 2)]).expect_err("too many sources");
        assert_eq!(
            (e.resource, e.needed, e.available),
            ("synapse rows per chip half", 258, 256)
        );
        assert!(e.detail.contains("layer 0 has 129 sources"), "{}", e.detail);
    }

    #[test]
    fn a_fan_in_beyond_one_column_takes_merged_circuits() {
        // 785 sources: 7 circuits of 128 sources each per neuron, every row of the half.
        let p = G.place(784, &[(36, 1)]).expect("fits one half");
        assert_eq!(p[0].len(), 1);
        let share = &p[0][0];
        assert_eq!((share.circuits_per_neuron, share.drivers), (7, 128));
        assert_eq!(share.neurons, 36);
        // 73 neurons need 511 circuits: both halves (36 + 37 would need 259 in one).
        let p = G.place(784, &[(72, 1)]).expect("fits both halves");
        assert_eq!(p[0].iter().map(|s| s.neurons).collect::<Vec<_>>(), [36, 36]);
        let e = G.place(784, &[(73, 1)]).expect_err("no room");
        assert_eq!(e.resource, "neuron circuits");
        // A second layer finds no free rows: the wide layer took them all in both halves.
        let e = G.place(784, &[(70, 1), (10, 1)]).expect_err("rows");
        assert_eq!(e.resource, "synapse rows per chip half");
        // Beyond the merging limit.
        let g = ChipGeometry { max_merged: 4, ..G };
        let e = g.place(784, &[(10, 1)]).expect_err("7 > 4 circuits");
        assert_eq!(
            (e.resource, e.needed, e.available),
            ("merged circuits per neuron", 7, 4)
        );
        assert!(e.detail.contains("layer 0 has 785 sources"), "{}", e.detail);
    }
}
