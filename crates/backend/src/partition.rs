//! Partitioned execution: how a layered network larger than one chip is split into parts that
//! each fit, run one after another with the recorded spikes of earlier parts as inputs of later
//! ones.
//!
//! The one idea: a part is one hardware run with its own configuration, so a network fits a
//! chip sequentially if every part does, and a part is bounded by two resources of a chip half:
//! its neuron circuits and its synapse drivers. A synapse driver (two rows: one excitatory, one
//! inhibitory) can carry several sources, told apart by the address label each synapse matches
//! (up to 64 on BrainScaleS-2), but each synapse column
//! listens to one source per driver. So one neuron circuit takes at most
//! `rows_per_half / rows_per_source` signed sources, and a neuron with a larger fan-in is built
//! from `m` merged circuits (one membrane; leak, capacitance and threshold act in the first),
//! each adding its column: circuit `c` of every neuron of a part listens to the sources with
//! address `c` on all drivers. The plan, for each layer in order:
//!
//! 1. if the whole network fits the chip at once ([`ChipGeometry::place`]), it is one part;
//! 2. otherwise each layer is planned on its own: `m = ceil(sources / fan-in per circuit)`
//!    circuits per neuron (an error naming the layer's neurons, their fan-in and the limit if
//!    `m` exceeds [`ChipGeometry::max_merged`]), each
//!    half holds `floor(circuits per half / m)` neurons, and the layer is cut into as few parts
//!    as hold it, of sizes differing by at most one neuron, each filling the halves in order.
//!
//! Parts run in layer order, so every part's inputs (the network's inputs or the recorded
//! spikes of the previous layer's parts) exist before it runs. In training, a part runs the
//! whole batch before the next part is configured, so reconfiguration is paid once per part
//! and batch, not per sample ([`Plan::hardware_time_us`]).

use std::fmt::Write as _;
use std::ops::Range;

use crate::ChipGeometry;
use crate::geometry::FitError;

/// What partitioned execution costs beyond what the [`ChipGeometry`] says.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartitionRules {
    /// Hardware time to write one part's configuration (synapse weights and addresses, routing),
    /// microseconds. The default, 2,000 us, is an estimate: the 131,072 synapses of a
    /// BrainScaleS-2 chip at 16 bits each over a 1 Gbit/s link take about 2.1 ms; no measured
    /// figure was available.
    pub reconfigure_us: f64,
}

impl PartitionRules {
    /// BrainScaleS-2: the estimated reconfiguration time above.
    pub const BRAINSCALES2: PartitionRules = PartitionRules {
        reconfigure_us: 2_000.0,
    };
}

impl Default for PartitionRules {
    fn default() -> Self {
        Self::BRAINSCALES2
    }
}

/// The neurons of one part that sit in one chip half.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HalfUse {
    /// The half.
    pub half: usize,
    /// Logical neurons placed in the half.
    pub neurons: usize,
    /// Neuron circuits they take (neurons times circuits per neuron).
    pub circuits: usize,
    /// Synapse rows the part's sources take in the half.
    pub rows: usize,
}

/// The neurons of one layer that a part holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartLayer {
    /// The layer (0 = first hidden layer).
    pub layer: usize,
    /// The layer's neurons in this part.
    pub neurons: Range<usize>,
    /// Signed sources each of these neurons listens to (inputs or previous layer, plus biases).
    pub fan_in: usize,
    /// Neuron circuits merged into each logical neuron.
    pub circuits_per_neuron: usize,
}

/// One hardware run with its own configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// What the part computes, in layer order.
    pub layers: Vec<PartLayer>,
    /// Use of each half the part occupies.
    pub halves: Vec<HalfUse>,
}

impl Part {
    /// Neuron circuits the part uses on the chip.
    pub fn circuits(&self) -> usize {
        self.halves.iter().map(|h| h.circuits).sum()
    }
}

/// A network's parts, in the order they run.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The parts, in dependency order.
    pub parts: Vec<Part>,
    /// The geometry planned for.
    pub geometry: ChipGeometry,
    /// The rules planned with.
    pub rules: PartitionRules,
}

/// Why a network cannot be partitioned.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "the neurons of layer {layer} listen to {fan_in} signed sources; a logical neuron of at most {max_circuits} merged circuits x {per_circuit} sources takes {limit}"
)]
pub struct PartitionError {
    /// The layer (0 = first hidden layer) whose neurons are too wide.
    pub layer: usize,
    /// Their fan-in (sources).
    pub fan_in: usize,
    /// Sources one circuit takes.
    pub per_circuit: usize,
    /// Most circuits per logical neuron ([`ChipGeometry::max_merged`]).
    pub max_circuits: usize,
    /// The largest fan-in possible.
    pub limit: usize,
}

impl Plan {
    /// Plans a network of `n_inputs` inputs and `layers` given as `(size, bias count)`.
    pub fn new(
        geometry: ChipGeometry,
        rules: PartitionRules,
        n_inputs: usize,
        layers: &[(usize, usize)],
    ) -> Result<Plan, PartitionError> {
        let fan_in = |l: usize| (if l == 0 { n_inputs } else { layers[l - 1].0 }) + layers[l].1;
        if let Ok(shares) = geometry.place(n_inputs, layers) {
            return Ok(Plan {
                parts: vec![whole_part(&geometry, layers, &shares, fan_in)],
                geometry,
                rules,
            });
        }
        let per_circuit = geometry.sources_per_circuit();
        let max_circuits = geometry.max_merged.max(1).min(geometry.neurons_per_half);
        let mut parts = Vec::new();
        for (l, &(size, _)) in layers.iter().enumerate() {
            let sources = fan_in(l);
            let m = geometry.circuits_per_neuron(sources);
            if m > max_circuits || per_circuit == 0 {
                return Err(PartitionError {
                    layer: l,
                    fan_in: sources,
                    per_circuit,
                    max_circuits,
                    limit: per_circuit * max_circuits,
                });
            }
            let per_half = geometry.neurons_per_half / m;
            let per_part = per_half * geometry.halves;
            let n_parts = size.div_ceil(per_part).max(1);
            let rows = geometry.rows_per_source * sources.min(per_circuit);
            let mut start = 0;
            for p in 0..n_parts {
                // Sizes differ by at most one: the first `size % n_parts` parts take one more.
                let len = size / n_parts + usize::from(p < size % n_parts);
                let mut halves = Vec::new();
                let mut left = len;
                for h in 0..geometry.halves {
                    if left == 0 {
                        break;
                    }
                    let n = left.min(per_half);
                    halves.push(HalfUse {
                        half: h,
                        neurons: n,
                        circuits: n * m,
                        rows,
                    });
                    left -= n;
                }
                parts.push(Part {
                    layers: vec![PartLayer {
                        layer: l,
                        neurons: start..start + len,
                        fan_in: sources,
                        circuits_per_neuron: m,
                    }],
                    halves,
                });
                start += len;
            }
        }
        Ok(Plan {
            parts,
            geometry,
            rules,
        })
    }

    /// Hardware runs per sample (one per part).
    pub fn runs_per_sample(&self) -> usize {
        self.parts.len()
    }

    /// Hardware time of a batch of `batch` samples, microseconds: every part configured once
    /// (no reconfiguration when there is one part, which stays on the chip), then run over the
    /// batch (`overhead_us` per run plus `window_us` per sample).
    pub fn hardware_time_us(&self, batch: usize, window_us: f64, overhead_us: f64) -> f64 {
        let reconfigure = if self.parts.len() > 1 {
            self.rules.reconfigure_us
        } else {
            0.0
        };
        self.parts.len() as f64 * (reconfigure + overhead_us + batch as f64 * window_us)
    }

    /// Checks that every part fits the geometry: circuits and rows per half, circuits per
    /// neuron within the limits, every neuron of every layer in exactly one part, parts in layer
    /// order. The planner's own invariant, public so that callers and tests can assert it.
    pub fn check(&self, layers: &[(usize, usize)]) -> Result<(), FitError> {
        let g = &self.geometry;
        let fail = |resource: &'static str, needed: usize, available: usize, detail: String| {
            Err(FitError {
                resource,
                needed,
                available,
                detail,
            })
        };
        let mut covered = vec![0usize; layers.len()];
        let mut last_layer = 0;
        for (p, part) in self.parts.iter().enumerate() {
            for h in &part.halves {
                if h.half >= g.halves {
                    return fail("chip halves", h.half + 1, g.halves, format!("part {p}"));
                }
                for (resource, used, limit) in [
                    ("neuron circuits per half", h.circuits, g.neurons_per_half),
                    ("synapse rows per chip half", h.rows, g.rows_per_half),
                ] {
                    if used > limit {
                        return fail(resource, used, limit, format!("part {p}, half {}", h.half));
                    }
                }
            }
            for pl in &part.layers {
                if pl.layer < last_layer {
                    return fail("layer order", last_layer, pl.layer, format!("part {p}"));
                }
                last_layer = pl.layer;
                if pl.circuits_per_neuron * g.sources_per_circuit() < pl.fan_in {
                    return fail(
                        "sources per logical neuron",
                        pl.fan_in,
                        pl.circuits_per_neuron * g.sources_per_circuit(),
                        format!("part {p}, layer {}", pl.layer),
                    );
                }
                if pl.circuits_per_neuron > g.max_merged.max(1) {
                    return fail(
                        "merged circuits per neuron",
                        pl.circuits_per_neuron,
                        g.max_merged,
                        format!("part {p}, layer {}", pl.layer),
                    );
                }
                if pl.neurons.start != covered[pl.layer] {
                    return fail(
                        "neurons in order",
                        pl.neurons.start,
                        covered[pl.layer],
                        format!("part {p}, layer {}", pl.layer),
                    );
                }
                covered[pl.layer] = pl.neurons.end;
            }
        }
        for (l, (&c, &(size, _))) in covered.iter().zip(layers).enumerate() {
            if c != size {
                return fail("neurons planned", size, c, format!("layer {l}"));
            }
        }
        Ok(())
    }

    /// The plan as a table: one line per part with its layer, neurons, circuits per neuron,
    /// circuits and rows per half.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>5}  {:>6}  {:>11}  {:>7}  {:>17}  {:>24}  {:>16}",
            "part",
            "layer",
            "neurons",
            "fan-in",
            "circuits/neuron",
            "circuits used per half",
            "rows per half"
        );
        for (p, part) in self.parts.iter().enumerate() {
            for pl in &part.layers {
                let circuits: Vec<String> = part
                    .halves
                    .iter()
                    .map(|h| format!("{}:{}", h.half, h.circuits))
                    .collect();
                let rows: Vec<String> = part
                    .halves
                    .iter()
                    .map(|h| format!("{}:{}", h.half, h.rows))
                    .collect();
                let _ = writeln!(
                    s,
                    "{:>5}  {:>6}  {:>11}  {:>7}  {:>17}  {:>24}  {:>16}",
                    p,
                    pl.layer,
                    format!("{}..{}", pl.neurons.start, pl.neurons.end),
                    pl.fan_in,
                    pl.circuits_per_neuron,
                    circuits.join(" "),
                    rows.join(" ")
                );
            }
        }
        s
    }
}

/// The one part of a network that fits the chip whole, from its placement.
fn whole_part(
    geometry: &ChipGeometry,
    layers: &[(usize, usize)],
    shares: &[Vec<crate::geometry::Share>],
    fan_in: impl Fn(usize) -> usize,
) -> Part {
    let mut halves: Vec<HalfUse> = (0..geometry.halves)
        .map(|h| HalfUse {
            half: h,
            neurons: 0,
            circuits: 0,
            rows: 0,
        })
        .collect();
    for (l, layer_shares) in shares.iter().enumerate() {
        for s in layer_shares {
            let h = &mut halves[s.half];
            h.neurons += s.neurons;
            h.circuits += s.neurons;
            h.rows = h
                .rows
                .max(s.first_row + geometry.rows_per_source * fan_in(l));
        }
    }
    halves.retain(|h| h.neurons > 0);
    Part {
        layers: layers
            .iter()
            .enumerate()
            .map(|(l, &(size, _))| PartLayer {
                layer: l,
                neurons: 0..size,
                fan_in: fan_in(l),
                circuits_per_neuron: shares[l].first().map_or(1, |s| s.circuits_per_neuron),
            })
            .collect(),
        halves,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: ChipGeometry = ChipGeometry::BRAINSCALES2;
    const R: PartitionRules = PartitionRules::BRAINSCALES2;

    /// The founding study's hidden and output layers (each with one bias spike).
    fn study() -> Vec<(usize, usize)> {
        vec![(400, 1), (400, 1), (400, 1), (400, 1), (10, 1)]
    }

    #[test]
    fn a_network_that_fits_is_one_part() {
        let layers = [(120, 1), (3, 1)];
        let plan = Plan::new(G, R, 4, &layers).expect("fits");
        assert_eq!(plan.runs_per_sample(), 1);
        assert_eq!(plan.parts[0].layers.len(), 2);
        plan.check(&layers).expect("valid");
        // One part stays configured: no reconfiguration in the hardware time.
        assert_eq!(plan.hardware_time_us(10, 48.0, 100.0), 100.0 + 480.0);
    }

    #[test]
    fn the_founding_study_s_network_is_split_into_parts_that_fit() {
        for n_inputs in [784, 256] {
            let layers = study();
            let plan = Plan::new(G, R, n_inputs, &layers).expect("partitionable");
            plan.check(&layers).expect("every part fits");
            // 785 sources need 7 circuits per neuron (128 per circuit), 401 need 4.
            let first = &plan.parts[0].layers[0];
            assert_eq!(first.circuits_per_neuron, (n_inputs + 1).div_ceil(128));
            let m = first.circuits_per_neuron;
            let per_part = 2 * (256 / m);
            assert_eq!(
                plan.parts.iter().filter(|p| p.layers[0].layer == 0).count(),
                400usize.div_ceil(per_part)
            );
            // Hidden layers 2-4 (401 sources, 4 circuits, 128 neurons per run) take 4 parts
            // each, the output one.
            for l in 1..4 {
                let parts: Vec<_> = plan
                    .parts
                    .iter()
                    .filter(|p| p.layers[0].layer == l)
                    .collect();
                assert_eq!(parts.len(), 4);
                assert!(parts.iter().all(|p| p.layers[0].circuits_per_neuron == 4));
                assert!(parts.iter().all(|p| p.layers[0].neurons.len() == 100));
            }
            assert_eq!(plan.parts.last().map(|p| p.layers[0].layer), Some(4));
        }
    }

    #[test]
    fn a_neuron_wider_than_merged_circuits_can_be_is_refused_by_name() {
        let g = ChipGeometry { max_merged: 4, ..G };
        let e = Plan::new(g, R, 784, &[(10, 1)]).expect_err("785 > 4 x 128");
        assert_eq!((e.layer, e.fan_in, e.limit), (0, 785, 512));
        let text = e.to_string();
        assert!(text.contains("layer 0") && text.contains("785") && text.contains("512"));
    }

    #[test]
    fn check_catches_a_part_that_does_not_fit() {
        let layers = study();
        let mut plan = Plan::new(G, R, 784, &layers).expect("partitionable");
        plan.parts[0].halves[0].circuits = 257;
        let e = plan.check(&layers).expect_err("too many circuits");
        assert_eq!(e.resource, "neuron circuits per half");
        let mut plan = Plan::new(G, R, 784, &layers).expect("partitionable");
        plan.parts.pop();
        let e = plan.check(&layers).expect_err("output layer missing");
        assert_eq!(e.resource, "neurons planned");
    }
}
