//! The configured chip as the per-sample simulation sees it, and one sample's run through it.
//!
//! The one idea: everything that depends only on the network and the chip (placement, codes,
//! each circuit's actual parameters, each synapse's effective weight) is folded into per-neuron
//! constants once, when a network is configured or codes change. A sample then only has to
//! route events (queueing the FPGA's, dropping the on-chip ones a busy bus loses), draw its
//! temporal noise, and integrate each neuron. Each sample draws its noise from its own streams, addressed by the run counter and the
//! sample index, so samples can run on any thread in any order with identical results.

use spikeloop_backend::{BackendError, Network};

use crate::analog::NeuronTargets;
use crate::chip::Chip;
use crate::config::EmulatorConfig;
use crate::config::MAX_EVENT_BUSES;
use crate::fastmath::round_nearest;
use crate::mapping::Placement;
use crate::neuron::{
    Columns, FirstSpike, Group, Lockstep, NeuronConsts, NeuronInput, Runner, first_spikes,
};
use crate::seeds::{Normals, Purpose};

/// Most spikes one neuron may emit in one sample (a neuron whose reset lies above its threshold
/// fires once per refractory period; this bounds the work).
const MAX_SPIKES_CAP: usize = 10_000;

/// The neurons of one layer that sit in one half, with everything a sample needs.
#[derive(Clone, Debug)]
pub(crate) struct PreparedBlock {
    pub(crate) first_driver: usize,
    /// Drivers the layer's sources are spread over (source `s` on `first_driver + s % drivers`).
    pub(crate) drivers: usize,
    /// Layer-neuron index of each neuron of the block.
    pub(crate) neurons: Vec<usize>,
    pub(crate) consts: Vec<NeuronConsts>,
    /// The same constants as columns, for the lockstep integration.
    pub(crate) columns: Columns,
    /// Effective weights (current per capacitance, model units), `[source][block neuron]`:
    /// an event adds one contiguous column.
    pub(crate) weights: Vec<f64>,
    /// Each neuron's actual leak potential in mV (for membrane recordings).
    pub(crate) leak_mv: Vec<f64>,
}

impl PreparedBlock {
    /// Appends block neuron `bi`'s weight for each event (from `sources`) to `out`.
    fn event_weights(&self, bi: usize, sources: &[u32], out: &mut Vec<f64>) {
        let m = self.neurons.len();
        out.extend(sources.iter().map(|&s| self.weights[s as usize * m + bi]));
    }
}

/// One layer as the simulation sees it.
#[derive(Clone, Debug)]
pub(crate) struct PreparedLayer {
    pub(crate) size: usize,
    /// Number of sources that are neurons of the previous layer (or input channels).
    pub(crate) n_prev: usize,
    /// Release times of the bias spikes (on the clock grid when timestamps are quantised).
    pub(crate) bias_times: Vec<f64>,
    /// Trial-to-trial threshold noise, standard deviation in model units.
    pub(crate) theta_trial_sd: f64,
    /// Millivolts per model unit of potential.
    pub(crate) mv_per_unit: f64,
    pub(crate) blocks: Vec<PreparedBlock>,
    /// Offset of this layer in the per-sample vector of all layers' first spikes.
    pub(crate) offset: usize,
}

/// The configured chip, ready to run samples.
#[derive(Clone, Debug)]
pub(crate) struct Engine {
    pub(crate) layers: Vec<PreparedLayer>,
    pub(crate) n_inputs: usize,
    pub(crate) n_neurons: usize,
    /// Sample window in model time.
    pub(crate) window: f64,
    /// Clock tick in model time (0: exact times).
    pub(crate) tick: f64,
    pub(crate) readout_offset: f64,
    pub(crate) dead_time: f64,
    /// Event buses per half (at most [`MAX_EVENT_BUSES`]).
    pub(crate) event_buses: usize,
    pub(crate) jitter_sd: f64,
    pub(crate) run_seed: u64,
    pub(crate) max_spikes: usize,
}

/// `t` moved to the nearest clock tick (input release by the FPGA).
#[inline]
pub(crate) fn release_time(t: f64, tick: f64) -> f64 {
    if tick > 0.0 {
        round_nearest(t / tick) * tick
    } else {
        t
    }
}

/// The reported timestamp of an event at `t`: offset, then the tick it falls in.
#[inline]
fn reported_time(t: f64, tick: f64, offset: f64) -> f64 {
    let t = t + offset;
    if tick > 0.0 {
        let x = t / tick;
        let r = round_nearest(x);
        (if r > x { r - 1.0 } else { r }) * tick
    } else {
        t
    }
}

/// An event as a sort key: the time's bits (times are finite and `>= 0`, so their bits order
/// like the times) above the source index.
#[inline]
fn event_key(t: f64, source: usize) -> u128 {
    // Adding +0.0 turns a -0.0 (whose bits would sort last) into +0.0.
    (u128::from((t + 0.0).to_bits()) << 32) | source as u128
}

#[inline]
fn event_of_key(key: u128) -> (f64, u32) {
    (f64::from_bits((key >> 32) as u64), key as u32)
}

/// Sorts event keys: a counting pass into about two buckets per event, each covering an equal
/// share of the events' time range, then an insertion sort, which has little left to do. Keys
/// are unique (each names its source), so the order is the one any sort gives.
fn sort_events(keys: &mut Vec<u128>, spare: &mut Vec<u128>, counts: &mut Vec<u32>) {
    let n = keys.len();
    if n < 48 {
        keys.sort_unstable();
        return;
    }
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &key in keys.iter() {
        let t = event_of_key(key).0;
        lo = lo.min(t);
        hi = hi.max(t);
    }
    let buckets = 2 * n;
    let per_time = if hi > lo {
        (buckets - 1) as f64 / (hi - lo)
    } else {
        0.0
    };
    // (In range by construction; `min` guards against rounding.)
    let bucket = |key: u128| (((event_of_key(key).0 - lo) * per_time) as usize).min(buckets - 1);
    counts.clear();
    counts.resize(buckets + 1, 0);
    for &key in keys.iter() {
        counts[bucket(key) + 1] += 1;
    }
    for b in 1..=buckets {
        counts[b] += counts[b - 1];
    }
    spare.clear();
    spare.resize(n, 0);
    for &key in keys.iter() {
        let slot = &mut counts[bucket(key)];
        spare[*slot as usize] = key;
        *slot += 1;
    }
    std::mem::swap(keys, spare);
    insertion_sort(keys);
}

/// Sorts by insertion: about linear on keys that are nearly in order.
fn insertion_sort(keys: &mut [u128]) {
    for i in 1..keys.len() {
        let key = keys[i];
        if keys[i - 1] > key {
            let sorted = &mut keys[..=i];
            let at = sorted.partition_point(|&k| k < key);
            sorted[at..].rotate_right(1);
        }
    }
}

/// Builds the engine for a validated, placed network on `chip`. What depends only on the
/// neurons' constants (the first layer's clock-tick tables) is taken from `previous` where
/// those are unchanged, as they are when only the weights change.
pub(crate) fn prepare(
    network: &Network,
    placement: &Placement,
    chip: &Chip,
    config: &EmulatorConfig,
    previous: Option<&Engine>,
) -> Result<Engine, BackendError> {
    let tau_unit = config.timing.tau_s_us;
    let window = config.timing.sample_window_tau;
    let tick = config.tick_tau();
    let t_ref = config.analog.refractory_us / tau_unit;
    let mut layers = Vec::with_capacity(network.layers.len());
    let mut n_prev = network.n_inputs;
    let mut offset = 0;
    for (l, (layer, lp)) in network.layers.iter().zip(&placement.layers).enumerate() {
        let targets = NeuronTargets::for_model(&layer.neuron, config);
        let nominal = targets.nominal_codes().map_err(|(p, value)| {
            BackendError::InvalidNetwork(format!(
                "layer {l}: the chip cannot reach the {} target {value} {} (from tau_m = {}, \
                 tau_s = {}, g_leak = {}, threshold - e_leak = {} with tau_s_us = {tau_unit} \
                 and weight_scale = {}); see the emulator's transfer curves",
                p.name(),
                p.unit(),
                layer.neuron.tau_m,
                layer.neuron.tau_s,
                layer.neuron.g_leak,
                layer.neuron.threshold - layer.neuron.e_leak,
                config.weight_scale
            ))
        })?;
        for (b, &t) in layer.bias_times.iter().enumerate() {
            if t.is_finite() && !(0.0..window).contains(&t) {
                return Err(BackendError::InvalidNetwork(format!(
                    "layer {l}, bias {b}: time {t} lies outside the chip's sample window [0, \
                     {window}) tau_s (timing.sample_window_tau)"
                )));
            }
        }
        let distance = layer.neuron.threshold - layer.neuron.e_leak;
        let mv_per_unit = config.analog.threshold_distance_mv / distance;
        let n_in = n_prev + layer.bias_times.len();
        let mut blocks = Vec::with_capacity(lp.blocks.len());
        for (b, hb) in lp.blocks.iter().enumerate() {
            let mut consts = Vec::with_capacity(hb.neurons.len());
            let mut leak_mv = Vec::with_capacity(hb.neurons.len());
            let mut weights = vec![0.0; hb.neurons.len() * n_in];
            let m = hb.neurons.len();
            for (bi, &j) in hb.neurons.iter().enumerate() {
                let n = lp.chip_neurons[j];
                let codes = chip
                    .explicit_codes(n)
                    .map_err(|e| BackendError::InvalidNetwork(e.to_string()))?
                    .unwrap_or(nominal);
                let a = chip.pattern(n).actual(&codes, config);
                consts.push(NeuronConsts::new(
                    a.tau_m_us / tau_unit,
                    a.tau_s_us / tau_unit,
                    (a.threshold_mv - a.leak_mv) / mv_per_unit,
                    (a.reset_mv - a.leak_mv) / mv_per_unit,
                    t_ref,
                ));
                leak_mv.push(a.leak_mv);
                // A merged neuron: circuit `c` (the first one's membrane, its own synaptic
                // input and synapses) carries sources `c * drivers ..`.
                let mut per_step = Vec::with_capacity(hb.circuits_per_neuron);
                per_step.push(a.synaptic_gain * tau_unit / mv_per_unit);
                for c in 1..hb.circuits_per_neuron {
                    let codes = chip
                        .explicit_codes(n + c)
                        .map_err(|e| BackendError::InvalidNetwork(e.to_string()))?
                        .unwrap_or(nominal);
                    let ac = chip.pattern(n + c).actual(&codes, config);
                    per_step.push(ac.synaptic_gain * tau_unit / mv_per_unit);
                }
                let syn_sd = config.noise.synapse_gain_sd;
                let drivers = hb.drivers.max(1);
                for s in 0..n_in {
                    let q = lp.weights[j * n_in + s];
                    let w = if q == 0 {
                        0.0
                    } else {
                        let c = s / drivers;
                        let row = 2 * (hb.first_driver + s % drivers) + usize::from(q < 0);
                        let gain = if syn_sd > 0.0 {
                            1.0 + syn_sd * chip.synapse_z(n + c, row)
                        } else {
                            1.0
                        };
                        f64::from(q) * per_step[c] * gain
                    };
                    weights[s * m + bi] = w;
                }
            }
            // The first layer's events all come from the FPGA, on its clock: its intervals
            // span whole ticks (when the event buses' dead time does too).
            let reusable = previous
                .filter(|p| p.tick == tick && p.window == window)
                .and_then(|p| p.layers.get(l)?.blocks.get(b))
                .filter(|p| p.consts == consts);
            let columns = match reusable {
                Some(p) => p.columns.clone(),
                None if l == 0 => Columns::new(&consts).with_ticks(tick, window),
                None => Columns::new(&consts),
            };
            blocks.push(PreparedBlock {
                first_driver: hb.first_driver,
                drivers: hb.drivers.max(1),
                neurons: hb.neurons.clone(),
                columns,
                consts,
                weights,
                leak_mv,
            });
        }
        layers.push(PreparedLayer {
            size: layer.size,
            n_prev,
            bias_times: layer
                .bias_times
                .iter()
                .map(|&t| release_time(t, tick))
                .collect(),
            theta_trial_sd: config.noise.threshold_trial_sd * distance,
            mv_per_unit,
            blocks,
            offset,
        });
        offset += layer.size;
        n_prev = layer.size;
    }
    let max_spikes = ((window / t_ref).ceil() as usize + 2).min(MAX_SPIKES_CAP);
    Ok(Engine {
        layers,
        n_inputs: network.n_inputs,
        n_neurons: offset,
        window,
        tick,
        readout_offset: config.noise.readout_offset_ns * 1e-3 / tau_unit,
        dead_time: config.noise.event_dead_time_ns * 1e-3 / tau_unit,
        event_buses: config.geometry.event_buses_per_half,
        jitter_sd: config.noise.spike_jitter_sd,
        run_seed: config.run_seed,
        max_spikes,
    })
}

/// Reusable buffers of one worker.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Events as sort keys: time bits (times are `>= 0`, so their bits order like the times)
    /// above the source index.
    events: Vec<u128>,
    next_events: Vec<u128>,
    /// One block's events again as keys, when bus delays reordered them.
    resorted: Vec<u128>,
    /// Buffers of [`sort_events`].
    spare: Vec<u128>,
    counts: Vec<u32>,
    times: Vec<f64>,
    sources: Vec<u32>,
    weights: Vec<f64>,
    thetas: Vec<f64>,
    lockstep: Lockstep,
    firsts: Vec<FirstSpike>,
    runners: Vec<(usize, Runner)>,
    /// Spike times of each neuron of the current block.
    spike_lists: Vec<Vec<f64>>,
}

impl Scratch {
    /// Runs `f` with this thread's buffers, which persist from sample to sample and run to
    /// run (so that a run does not grow fresh ones for each piece of work).
    pub(crate) fn with_this_thread<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => f(&mut scratch),
            // (Only if `f` itself ran a sample on this thread: fresh buffers then.)
            Err(_) => f(&mut Scratch::default()),
        })
    }
}

/// What one sample noticed besides spike times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SampleStats {
    pub(crate) lost_events: u64,
    pub(crate) later_spikes: u64,
}

/// One neuron observed in detail during a sample (for membrane recordings).
#[derive(Clone, Debug)]
pub(crate) struct Probe {
    pub(crate) layer: usize,
    pub(crate) neuron: usize,
    pub(crate) consts: Option<NeuronConsts>,
    pub(crate) theta: f64,
    pub(crate) times: Vec<f64>,
    pub(crate) weights: Vec<f64>,
    pub(crate) spikes: Vec<f64>,
    pub(crate) leak_mv: f64,
    pub(crate) mv_per_unit: f64,
}

impl Probe {
    pub(crate) fn new(layer: usize, neuron: usize) -> Self {
        Self {
            layer,
            neuron,
            consts: None,
            theta: 0.0,
            times: Vec::new(),
            weights: Vec::new(),
            spikes: Vec::new(),
            leak_mv: 0.0,
            mv_per_unit: 1.0,
        }
    }
}

impl Engine {
    /// The events of a sample as one half `block` receives them, into `times` and `sources`
    /// in time order; returns how many were lost. The half's event buses pass one event per
    /// dead time. Events the FPGA sends (inputs and bias spikes: every event of the `first`
    /// layer, and every layer's bias spikes) wait in its queue for a free slot, as the FPGA
    /// serialises them; events routed on chip from the previous layer's neurons are lost when
    /// their bus is still busy. Tolerance keeps events exactly one tick apart.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn arbitrate(
        &self,
        block: &PreparedBlock,
        layer: &PreparedLayer,
        first: bool,
        events: &[u128],
        times: &mut Vec<f64>,
        sources: &mut Vec<u32>,
        resorted: &mut Vec<u128>,
    ) -> u64 {
        times.clear();
        sources.clear();
        let mut lost = 0;
        let mut buses = [f64::NEG_INFINITY; MAX_EVENT_BUSES];
        let last_on_bus = &mut buses[..self.event_buses];
        let dead = self.dead_time * (1.0 - 1e-9);
        let mut delayed = false;
        for &key in events {
            let (mut t, s) = event_of_key(key);
            let bus = (block.first_driver + s as usize % block.drivers) % self.event_buses;
            if self.dead_time > 0.0 && t - last_on_bus[bus] < dead {
                let from_fpga = first || s as usize >= layer.n_prev;
                if !from_fpga {
                    lost += 1;
                    continue;
                }
                t = last_on_bus[bus] + self.dead_time;
                delayed = true;
            }
            last_on_bus[bus] = t;
            times.push(t);
            sources.push(s);
        }
        if delayed {
            // Delays can reorder events of different buses: restore time order.
            resorted.clear();
            resorted.extend(
                times
                    .iter()
                    .zip(sources.iter())
                    .map(|(&t, &s)| event_key(t, s as usize)),
            );
            // (Each delay is a tick or a few: nearly in order already.)
            insertion_sort(resorted);
            times.clear();
            sources.clear();
            for &key in resorted.iter() {
                let (t, s) = event_of_key(key);
                times.push(t);
                sources.push(s);
            }
        }
        lost
    }

    /// Runs sample `sample` of run `run` with input times `inputs` (validated: finite ones in
    /// `[0, window)`); writes the reported first-spike time of every neuron of every layer into
    /// `out` (`+inf` = none).
    pub(crate) fn run_sample(
        &self,
        inputs: &[f64],
        run: u64,
        sample: u64,
        scratch: &mut Scratch,
        out: &mut [f64],
        mut probe: Option<&mut Probe>,
    ) -> SampleStats {
        let mut stats = SampleStats::default();
        let mut thresholds = (self.layers.iter().any(|l| l.theta_trial_sd > 0.0))
            .then(|| Normals::new(self.run_seed, Purpose::ThresholdNoise, run, sample));
        let mut jitter = (self.jitter_sd > 0.0)
            .then(|| Normals::new(self.run_seed, Purpose::SpikeJitter, run, sample));
        let Scratch {
            events,
            next_events,
            resorted,
            spare,
            counts,
            times,
            sources,
            weights,
            thetas,
            lockstep,
            firsts,
            runners,
            spike_lists,
        } = scratch;
        events.clear();
        for (i, &t) in inputs.iter().enumerate() {
            if t.is_finite() {
                events.push(event_key(release_time(t, self.tick), i));
            }
        }
        let n_layers = self.layers.len();
        // A recording needs the layers up to the probed one and, in that layer, the probed
        // neuron's block only; the skipped blocks still draw their trial thresholds, so that
        // the probed neuron sees exactly the noise of a full run.
        let probed = probe.as_deref().map(|p| (p.layer, p.neuron));
        for (l, layer) in self.layers.iter().enumerate() {
            if probed.is_some_and(|(pl, _)| l > pl) {
                break;
            }
            let last = l + 1 == n_layers;
            for (b, &t) in layer.bias_times.iter().enumerate() {
                if t.is_finite() {
                    events.push(event_key(t, layer.n_prev + b));
                }
            }
            sort_events(events, spare, counts);
            next_events.clear();
            let layer_out = &mut out[layer.offset..layer.offset + layer.size];
            for block in &layer.blocks {
                if probed.is_some_and(|(pl, pn)| pl == l && !block.neurons.contains(&pn)) {
                    trial_thresholds(block, layer, thresholds.as_mut(), thetas);
                    continue;
                }
                stats.lost_events +=
                    self.arbitrate(block, layer, l == 0, events, times, sources, resorted);
                trial_thresholds(block, layer, thresholds.as_mut(), thetas);
                let group = Group {
                    consts: &block.consts,
                    cols: &block.columns,
                    thetas,
                    times,
                    sources,
                    weights: &block.weights,
                    t_end: self.window,
                };
                first_spikes(&group, lockstep, firsts);
                self.later_spikes(
                    block,
                    firsts,
                    thetas,
                    times,
                    sources,
                    runners,
                    weights,
                    spike_lists,
                );
                let spikes = BlockSpikes {
                    lists: spike_lists,
                    thetas,
                    times,
                    sources,
                };
                self.report(
                    block,
                    layer,
                    l,
                    &spikes,
                    jitter.as_mut(),
                    probe.as_deref_mut(),
                    layer_out,
                    (!last).then_some(&mut *next_events),
                    &mut stats,
                );
            }
            std::mem::swap(events, next_events);
        }
        stats
    }
    /// Every later spike of the neurons of `block` whose first spike (`firsts`) leaves them
    /// released from refractoriness within the window: all of them continue interleaved one
    /// step at a time, each with its own weight for every event that arrived. Fills
    /// `spike_lists` (one list per neuron of the block, its first spike first).
    #[allow(clippy::too_many_arguments)]
    fn later_spikes(
        &self,
        block: &PreparedBlock,
        firsts: &[FirstSpike],
        thetas: &[f64],
        times: &[f64],
        sources: &[u32],
        runners: &mut Vec<(usize, Runner)>,
        weights: &mut Vec<f64>,
        spike_lists: &mut Vec<Vec<f64>>,
    ) {
        let n_events = times.len();
        if spike_lists.len() < block.neurons.len() {
            spike_lists.resize_with(block.neurons.len(), Vec::new);
        }
        runners.clear();
        weights.clear();
        for (bi, (first, c)) in firsts.iter().zip(&block.consts).enumerate() {
            let list = &mut spike_lists[bi];
            list.clear();
            if first.t.is_finite() {
                list.push(first.t);
                // (The state after the spike costs an exponential: only for neurons released
                // from refractoriness within the window.)
                if first.t + c.t_ref < self.window && self.max_spikes > 1 {
                    runners.push((bi, Runner::new(first.state_after(c))));
                    block.event_weights(bi, sources, weights);
                }
            }
        }
        let mut open = !runners.is_empty();
        while open {
            open = false;
            for (r, (bi, runner)) in runners.iter_mut().enumerate() {
                if !runner.done {
                    let input = NeuronInput {
                        times,
                        weights: &weights[r * n_events..(r + 1) * n_events],
                    };
                    runner.step(
                        &block.consts[*bi],
                        thetas[*bi],
                        &input,
                        self.window,
                        self.max_spikes,
                        &mut spike_lists[*bi],
                    );
                    open = true;
                }
            }
        }
    }

    /// Reports the spikes of `block` (a block of layer `l`): each spike jittered (drawn from
    /// `jitter` in neuron and spike order), dropped after the window, the first one read out
    /// into `layer_out` on the readout clock, and every one passed on to `next_events` (the
    /// next layer's inputs; `None` for the output layer); `probe` receives what its neuron saw.
    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        block: &PreparedBlock,
        layer: &PreparedLayer,
        l: usize,
        spikes: &BlockSpikes<'_>,
        mut jitter: Option<&mut Normals>,
        mut probe: Option<&mut Probe>,
        layer_out: &mut [f64],
        mut next_events: Option<&mut Vec<u128>>,
        stats: &mut SampleStats,
    ) {
        for (bi, (&j, c)) in block.neurons.iter().zip(&block.consts).enumerate() {
            let list = &spikes.lists[bi];
            if let Some(p) = probe
                .as_deref_mut()
                .filter(|p| p.layer == l && p.neuron == j)
            {
                p.consts = Some(*c);
                p.theta = spikes.thetas[bi];
                p.times.clear();
                p.times.extend_from_slice(spikes.times);
                p.weights.clear();
                block.event_weights(bi, spikes.sources, &mut p.weights);
                p.spikes.clone_from(list);
                p.leak_mv = block.leak_mv[bi];
                p.mv_per_unit = layer.mv_per_unit;
            }
            layer_out[j] = f64::INFINITY;
            stats.later_spikes += list.len().saturating_sub(1) as u64;
            for (k, &ts) in list.iter().enumerate() {
                let te = match jitter.as_deref_mut() {
                    Some(normals) => {
                        let te = ts + self.jitter_sd * normals.next();
                        if te > 0.0 { te } else { 0.0 }
                    }
                    None => ts,
                };
                if te >= self.window {
                    continue;
                }
                if k == 0 {
                    layer_out[j] = reported_time(te, self.tick, self.readout_offset);
                }
                if let Some(next) = next_events.as_deref_mut() {
                    next.push(event_key(te, j));
                }
            }
        }
    }
}

/// What one block's neurons did in a sample, for [`Engine::report`].
struct BlockSpikes<'a> {
    /// Every spike of each neuron of the block, first spike first.
    lists: &'a [Vec<f64>],
    /// This sample's threshold of each neuron.
    thetas: &'a [f64],
    /// The block's input events (arrival times) and their sources.
    times: &'a [f64],
    sources: &'a [u32],
}

/// This sample's threshold of every neuron of `block`: its calibrated threshold plus, where the
/// layer has trial-to-trial threshold noise, a draw from `normals` (in neuron order).
fn trial_thresholds(
    block: &PreparedBlock,
    layer: &PreparedLayer,
    mut normals: Option<&mut Normals>,
    thetas: &mut Vec<f64>,
) {
    thetas.clear();
    thetas.extend(block.consts.iter().map(|c| match normals.as_deref_mut() {
        Some(normals) if layer.theta_trial_sd > 0.0 => {
            c.theta + layer.theta_trial_sd * normals.next()
        }
        _ => c.theta,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_sort_orders_like_a_comparison_sort() {
        let mut rng = spikeloop_backend_testkit::TestRng::new(7);
        let mut uniform = move || rng.uniform(0.0, 1.0);
        let (mut spare, mut counts) = (Vec::new(), Vec::new());
        for n in [0, 1, 5, 47, 48, 49, 120, 300] {
            for shape in 0..4 {
                let keys: Vec<u128> = (0..n)
                    .map(|s| {
                        let t = match shape {
                            // Spread over the window.
                            0 => 8.0 * uniform(),
                            // Clustered in a narrow range, as a layer's spikes often are.
                            1 => 1.0 + 0.01 * uniform() * uniform(),
                            // Many equal times (only the sources differ).
                            2 => (4.0 * uniform()).floor(),
                            // All equal, or a single far outlier.
                            _ => {
                                if s == n / 2 {
                                    7.9
                                } else {
                                    0.5
                                }
                            }
                        };
                        event_key(t, s)
                    })
                    .collect();
                let mut ours = keys.clone();
                sort_events(&mut ours, &mut spare, &mut counts);
                let mut expected = keys;
                expected.sort_unstable();
                assert_eq!(ours, expected, "{n} events, shape {shape}");
            }
        }
    }
}
