//! One sample's input spikes to one layer, sorted once and shared by all of the layer's neurons.
//!
//! The one idea: everything that depends only on the input times (their order and the
//! exponential decay across each inter-input interval) is computed once per volley, so that each
//! neuron's spike time is a run of multiply-adds over its weights plus one transcendental
//! evaluation in the interval where it fires. Sorting uses a bucket pass followed by insertion
//! sort, which is linear for the smooth spike-time distributions of a network layer, and falls
//! back to a comparison sort when the times are strongly clustered.

use crate::kernel::step_factors;
use crate::params::{Consts, NeuronParams};

/// Volleys up to this many finite inputs are sorted by insertion sort alone.
const SMALL_SORT: usize = 24;

/// One sample's input spikes for one layer, sorted, with precomputed propagation factors; shared
/// by all neurons of a layer that have the same [`NeuronParams`].
///
/// Reusable: [`Volley::prepare`] keeps its buffers, so a volley reused across samples does not
/// allocate once its buffers have grown to the layer's size.
#[derive(Clone, Debug, Default)]
pub struct Volley {
    consts: Option<Consts>,
    n_inputs: usize,
    times: Vec<f64>,
    order: Vec<u32>,
    /// Propagation factors across each gap between consecutive sorted inputs
    /// (see `kernel::step_factors`); one fewer than `times`.
    steps: Vec<[f64; 3]>,
    scratch_bucket: Vec<u32>,
    scratch_count: Vec<u32>,
    scratch_first: Vec<f64>,
    scratch_times: Vec<f64>,
    scratch_order: Vec<u32>,
    scratch_pairs: Vec<(f64, u32)>,
}

impl Volley {
    /// An empty volley (no inputs) with no buffers allocated.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads one sample's input times, given in the original input order (unsorted). Entries
    /// that are not finite (`+inf` for a silent presynaptic neuron) are ignored. `params` fixes
    /// the propagation factors; every neuron evaluated against this volley must use the same
    /// parameters.
    ///
    /// Inputs with equal times keep their original relative order.
    ///
    /// # Panics
    ///
    /// If there are more than `u32::MAX` inputs; in debug builds also if a time is NaN or
    /// `params` is invalid (in release builds NaN times are ignored like silent inputs).
    pub fn prepare(&mut self, times: &[f64], params: &NeuronParams) {
        debug_assert!(
            times.iter().all(|t| !t.is_nan()),
            "input spike times must not be NaN"
        );
        assert!(
            u32::try_from(times.len()).is_ok(),
            "a volley holds at most u32::MAX inputs"
        );
        let consts = match self.consts {
            Some(c) if c.params == *params => c,
            _ => Consts::new(params),
        };
        self.consts = Some(consts);
        self.n_inputs = times.len();
        self.sort(times);
        let m = self.times.len();
        self.steps.clear();
        self.steps.resize(m.saturating_sub(1), [0.0; 3]);
        let kernel = consts.kernel;
        // Inputs arriving together (common: pixels of the same value) share one step.
        let together = step_factors(&consts, kernel, 0.0);
        for (step, pair) in self.steps.iter_mut().zip(self.times.windows(2)) {
            let gap = pair[1] - pair[0];
            *step = if gap == 0.0 {
                together
            } else {
                step_factors(&consts, kernel, gap)
            };
        }
    }

    /// Number of inputs as given to [`Volley::prepare`], silent ones included: the length the
    /// weight and gradient slices must have.
    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    /// The finite input times, ascending.
    pub fn sorted_times(&self) -> &[f64] {
        &self.times
    }

    /// For each entry of [`Volley::sorted_times`], its index in the original input order.
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// The parameters this volley was prepared for (`None` before the first `prepare`).
    pub fn params(&self) -> Option<NeuronParams> {
        self.consts.map(|c| c.params)
    }

    pub(crate) fn consts(&self) -> Option<&Consts> {
        self.consts.as_ref()
    }

    pub(crate) fn steps(&self) -> &[[f64; 3]] {
        &self.steps
    }

    /// Fills `times` and `order` with the finite inputs sorted by (time, original index).
    fn sort(&mut self, times: &[f64]) {
        let mut buffers = SortBuffers {
            times: &mut self.times,
            order: &mut self.order,
            bucket: &mut self.scratch_bucket,
            count: &mut self.scratch_count,
            first: &mut self.scratch_first,
            spare_times: &mut self.scratch_times,
            spare_order: &mut self.scratch_order,
            pairs: &mut self.scratch_pairs,
        };
        buffers.sort(times);
    }
}

/// The volley's sorting buffers as separate borrows, so that stores into one buffer cannot be
/// mistaken for changes to another's length or pointer (which would make every loop reload
/// them from memory).
struct SortBuffers<'a> {
    times: &'a mut Vec<f64>,
    order: &'a mut Vec<u32>,
    bucket: &'a mut Vec<u32>,
    count: &'a mut Vec<u32>,
    first: &'a mut Vec<f64>,
    spare_times: &'a mut Vec<f64>,
    spare_order: &'a mut Vec<u32>,
    pairs: &'a mut Vec<(f64, u32)>,
}

impl SortBuffers<'_> {
    fn sort(&mut self, input: &[f64]) {
        // Branch-free compaction of the finite inputs: write every entry, advance past the
        // finite ones only.
        let n = input.len();
        self.times.clear();
        self.times.resize(n, 0.0);
        self.order.clear();
        self.order.resize(n, 0);
        let mut m = 0;
        {
            let (times, order) = (&mut self.times[..], &mut self.order[..]);
            for (i, &t) in input.iter().enumerate() {
                times[m] = t;
                order[m] = i as u32;
                m += usize::from(t.is_finite());
            }
        }
        self.times.truncate(m);
        self.order.truncate(m);
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        let mut sorted = true;
        for &t in self.times.iter() {
            sorted &= t >= hi;
            // Plain selects (the times are finite) compile to single min/max instructions.
            lo = if t < lo { t } else { lo };
            hi = if t > hi { t } else { hi };
        }
        if sorted {
            return;
        }
        if m <= SMALL_SORT {
            insertion_sort(self.times, self.order);
            return;
        }
        // Bucket pass: the bucket index is a monotone function of time, so only elements that
        // share a bucket can be out of order afterwards, and elements that share a bucket keep
        // their original (index) order.
        let n_buckets = 2 * m;
        let scale = n_buckets as f64 / (hi - lo);
        if !scale.is_finite() {
            self.comparison_sort();
            return;
        }
        self.bucket.clear();
        self.bucket.resize(m, 0);
        self.count.clear();
        self.count.resize(n_buckets, 0);
        let top = (n_buckets - 1) as f64;
        let mut cost = 0usize;
        self.first.clear();
        self.first.resize(n_buckets, 0.0);
        {
            let (count, first) = (&mut self.count[..], &mut self.first[..]);
            for (slot, &t) in self.bucket.iter_mut().zip(self.times.iter()) {
                let x = (t - lo) * scale;
                let b = (if x < top { x } else { top }) as u32;
                *slot = b;
                let c = &mut count[b as usize];
                if *c == 0 {
                    first[b as usize] = t;
                }
                // Equal times never move (the bucket keeps index order), so a bucket of many
                // equal times (pixels of one intensity) costs nothing.
                if t != first[b as usize] {
                    cost += 2 * *c as usize + 1;
                }
                *c += 1;
            }
        }
        // Insertion sort inside the buckets costs about the sum of squared bucket sizes of
        // elements that differ from their bucket's first.
        if cost > 8 * m {
            self.comparison_sort();
            return;
        }
        // Exclusive prefix sum (bucket start positions), accumulated in a register.
        let mut start = 0u32;
        for c in self.count.iter_mut() {
            let size = *c;
            *c = start;
            start += size;
        }
        self.spare_times.clear();
        self.spare_times.resize(m, 0.0);
        self.spare_order.clear();
        self.spare_order.resize(m, 0);
        {
            let count = &mut self.count[..];
            let (dst_t, dst_o) = (&mut self.spare_times[..], &mut self.spare_order[..]);
            for ((&b, &t), &o) in self
                .bucket
                .iter()
                .zip(self.times.iter())
                .zip(self.order.iter())
            {
                let pos = &mut count[b as usize];
                dst_t[*pos as usize] = t;
                dst_o[*pos as usize] = o;
                *pos += 1;
            }
        }
        std::mem::swap(self.times, self.spare_times);
        std::mem::swap(self.order, self.spare_order);
        insertion_sort(self.times, self.order);
    }

    fn comparison_sort(&mut self) {
        self.pairs.clear();
        self.pairs
            .extend(self.times.iter().copied().zip(self.order.iter().copied()));
        self.pairs.sort_unstable_by(|a, b| {
            a.0.partial_cmp(&b.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.1.cmp(&b.1))
        });
        for ((t, o), &(pt, po)) in self
            .times
            .iter_mut()
            .zip(self.order.iter_mut())
            .zip(self.pairs.iter())
        {
            *t = pt;
            *o = po;
        }
    }
}

/// Stable insertion sort of `times` (strict comparison), moving `order` along.
fn insertion_sort(times: &mut [f64], order: &mut [u32]) {
    for k in 1..times.len() {
        let t = times[k];
        if t >= times[k - 1] {
            continue;
        }
        let o = order[k];
        let mut j = k;
        while j > 0 && times[j - 1] > t {
            times[j] = times[j - 1];
            order[j] = order[j - 1];
            j -= 1;
        }
        times[j] = t;
        order[j] = o;
    }
}
