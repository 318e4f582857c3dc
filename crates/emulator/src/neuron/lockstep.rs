//! A layer's neurons advanced together through a sample's events ([`first_spikes`]): every
//! event-free interval applied to all neurons in one vectorised loop, or, for small layers,
//! each neuron's decay factors for many intervals at once.

use super::*;

/// Buffers of [`first_spikes`].
#[derive(Debug, Default)]
pub(crate) struct Lockstep {
    pub(super) v: Vec<f64>,
    pub(super) j: Vec<f64>,
    pub(super) v_next: Vec<f64>,
    pub(super) j_next: Vec<f64>,
    /// This sample's thresholds; `+inf` once a neuron's first crossing is found.
    pub(super) theta: Vec<f64>,
    /// Whether the interval just computed may hold a crossing.
    pub(super) hit: Vec<bool>,
    /// After the last event: whether a neuron is at or above threshold when it starts.
    pub(super) at_start: Vec<bool>,
    pub(super) pending: Vec<(u32, f64, f64, f64, usize)>,
    pub(super) searches: Vec<RootSearch>,
    /// The searches again as columns, for the vectorised rounds.
    pub(super) columns: SearchColumns,
    pub(super) intervals: Intervals,
    /// One neuron's decay factors across every interval, for small groups.
    pub(super) em: Vec<f64>,
    pub(super) es: Vec<f64>,
    pub(super) kk: Vec<f64>,
}

/// The event-free intervals every neuron of a group goes through: from 0 and from each distinct
/// event time up to the next one (the last one open-ended unless the window closes first), with
/// the number of events added at each interval's start.
#[derive(Debug, Default)]
pub(super) struct Intervals {
    pub(super) starts: Vec<f64>,
    pub(super) ends: Vec<f64>,
    /// `end - start`.
    pub(super) gaps: Vec<f64>,
    pub(super) added: Vec<usize>,
}

impl Intervals {
    /// The intervals of the ascending event `times` within a window ending at `t_end`.
    pub(super) fn walk(&mut self, times: &[f64], t_end: f64) {
        self.starts.clear();
        self.ends.clear();
        self.gaps.clear();
        self.added.clear();
        let n = times.len();
        let mut t = 0.0;
        let mut k = 0;
        loop {
            while k < n && times[k] <= t {
                k += 1;
            }
            if t >= t_end {
                break;
            }
            let next = if k < n { times[k] } else { f64::INFINITY };
            self.starts.push(t);
            self.ends.push(next);
            self.gaps.push(next - t);
            self.added.push(k);
            if !next.is_finite() {
                break;
            }
            t = next;
        }
    }
}

/// Intervals whose decay factors [`by_neuron`] computes at a time.
pub(super) const DECAY_CHUNK: usize = 32;

/// Groups with fewer neurons than this are integrated neuron by neuron ([`by_neuron`]), larger
/// ones in lockstep ([`lockstep`]): a vector loop over a handful of neurons would be mostly
/// remainder.
pub(super) const BY_NEURON_BELOW: usize = 8;

/// One event-free interval of length `gap` (finite, shared by all neurons) applied to every
/// neuron at once: each neuron's state at the interval's end into `v_next`/`j_next`, and in
/// `hit` whether [`NeuronConsts::segment`] could find anything but a quiet interval (at or above
/// threshold at the start or the end, or a maximum inside that the current could lift to
/// threshold). The arithmetic is exactly `segment`'s, so a neuron without a hit ends the interval
/// with the same bits as the sequential integration. Returns whether any neuron has a hit.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn interval_all(
    cols: &Columns,
    theta: &[f64],
    v: &[f64],
    j: &[f64],
    decays: Decays<'_>,
    v_next: &mut [f64],
    j_next: &mut [f64],
    hit: &mut [bool],
) -> bool {
    let m = cols.len();
    let (theta, v, j) = (&theta[..m], &v[..m], &j[..m]);
    let (v_next, j_next, hit) = (&mut v_next[..m], &mut j_next[..m], &mut hit[..m]);
    let tau_m = &cols.tau_m[..m];
    let (ceiling_v, ceiling_j) = (&cols.ceiling_v[..m], &cols.ceiling_j[..m]);
    let mut any = false;
    // Each neuron's state at the interval's end and whether it may cross in it.
    macro_rules! apply {
        ($i:ident, $factors:expr) => {{
            let (em, es, k) = $factors;
            let (v1, j1, h) = quiet_or_hit(
                em,
                es,
                k,
                v[$i],
                j[$i],
                tau_m[$i],
                ceiling_v[$i],
                ceiling_j[$i],
                theta[$i],
            );
            v_next[$i] = v1;
            j_next[$i] = j1;
            hit[$i] = h;
            any |= h;
        }};
    }
    match decays {
        Decays::Gap(gap) => {
            let (inv_tau_m, inv_tau_s) = (&cols.inv_tau_m[..m], &cols.inv_tau_s[..m]);
            let (delta, inv_delta) = (&cols.delta[..m], &cols.inv_delta[..m]);
            for i in 0..m {
                let factors = decay(gap, inv_tau_m[i], inv_tau_s[i], delta[i], inv_delta[i]);
                apply!(i, factors);
            }
        }
        Decays::Ticks(table, rows) => {
            let [em_l, es_l, k_l, em_h, es_h, k_h] = table.columns(rows);
            let (em_l, es_l, k_l) = (&em_l[..m], &es_l[..m], &k_l[..m]);
            let (em_h, es_h, k_h) = (&em_h[..m], &es_h[..m], &k_h[..m]);
            for i in 0..m {
                let factors = compose(em_l[i], es_l[i], k_l[i], em_h[i], es_h[i], k_h[i]);
                apply!(i, factors);
            }
        }
    }
    any
}

/// Where [`interval_all`] takes each neuron's decay factors from.
#[derive(Clone, Copy)]
pub(super) enum Decays<'a> {
    /// Computed for an interval of this length.
    Gap(f64),
    /// These rows of the clock-tick tables.
    Ticks(&'a TickFactors, (usize, usize)),
}

/// [`NeuronConsts::segment`] after the last event (an open-ended interval) for every neuron at
/// once, branch-free so that the loop vectorises, with the same arithmetic, so the same bits:
/// `at_start[i]` when neuron `i` is at or above threshold already, `hit[i]` when it crosses
/// (immediately, or on its rise to a maximum at `hi[i]` that lies `f_hi[i]` above threshold).
/// Returns whether any neuron crosses.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn final_all(
    cols: &Columns,
    theta: &[f64],
    v: &[f64],
    j: &[f64],
    hi: &mut [f64],
    f_hi: &mut [f64],
    at_start: &mut [bool],
    hit: &mut [bool],
) -> bool {
    let m = cols.len();
    let (theta, v, j) = (&theta[..m], &v[..m], &j[..m]);
    let (hi, f_hi) = (&mut hi[..m], &mut f_hi[..m]);
    let (at_start, hit) = (&mut at_start[..m], &mut hit[..m]);
    let tau_m = &cols.tau_m[..m];
    let (ceiling_v, ceiling_j) = (&cols.ceiling_v[..m], &cols.ceiling_j[..m]);
    let (inv_tau_m, inv_tau_s) = (&cols.inv_tau_m[..m], &cols.inv_tau_s[..m]);
    let (delta, inv_delta) = (&cols.delta[..m], &cols.inv_delta[..m]);
    let peak_offset = &cols.peak_offset[..m];
    let mut any = false;
    for i in 0..m {
        let (v0, j0, th) = (v[i], j[i], theta[i]);
        let immediate = v0 >= th;
        let rising = (j0 > 0.0) & (j0 * tau_m[i] > v0);
        let ceiling = peak_ceiling(v0, j0, ceiling_v[i], ceiling_j[i]);
        // NeuronConsts::peak, both forms.
        let q = v0 / j0;
        let arg = delta[i] * q;
        let equal = delta[i] == 0.0;
        let x = if equal {
            -(peak_offset[i] + q)
        } else {
            -(peak_offset[i] + ln_1p(arg) / delta[i])
        };
        let valid = (equal | (arg > -1.0)) & x.is_finite();
        let x = if x > 0.0 { x } else { 0.0 };
        let (em, _, k) = decay(x, inv_tau_m[i], inv_tau_s[i], delta[i], inv_delta[i]);
        let v_peak = em * v0 + k * j0;
        let crosses = rising & (ceiling >= th) & valid & (v_peak >= th);
        hi[i] = x;
        f_hi[i] = v_peak - th;
        at_start[i] = immediate;
        hit[i] = immediate | crosses;
        any |= immediate | crosses;
    }
    any
}

/// The state `(v, j)` after an interval with decay factors `(em, es, k)`, and whether
/// [`NeuronConsts::segment`] could find anything in it but a quiet interval (at or above
/// threshold at its start or end, or a maximum inside that the current could lift to
/// threshold). Non-short-circuit `&` and `|` keep it branch-free.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn quiet_or_hit(
    em: f64,
    es: f64,
    k: f64,
    v0: f64,
    j0: f64,
    tau_m: f64,
    ceiling_v: f64,
    ceiling_j: f64,
    theta: f64,
) -> (f64, f64, bool) {
    let v1 = em * v0 + k * j0;
    let j1 = es * j0;
    let rising = (j0 > 0.0) & (j0 * tau_m > v0);
    let ceiling = peak_ceiling(v0, j0, ceiling_v, ceiling_j);
    let peak_inside = rising & (j1 * tau_m < v1) & (ceiling >= theta);
    let h = (v0 >= theta) | (v1 >= theta) | peak_inside;
    (v1, j1, h)
}

/// Relative margin of [`peak_ceiling`] over the exact bound, far above rounding.
pub(super) const PEAK_CEILING_MARGIN: f64 = 1e-9;

/// An upper bound on the maximum of the membrane after the state `(v, j)`, `j > 0`, from the
/// neuron's `ceiling_v = tau_m / (tau_m + tau_s)` and `ceiling_j = tau_s ceiling_v` (each with
/// [`PEAK_CEILING_MARGIN`]): the current adds at most its integral `tau_s (j - j(x))` and the
/// leak only pulls towards rest, so `v(x) <= max(v, 0) + tau_s (j - j(x))`, and at a maximum
/// the slope vanishes, `v_peak = tau_m j(x_peak)`; together
/// `v_peak <= tau_m (max(v, 0) + tau_s j) / (tau_m + tau_s)`, about half of the
/// `max(v, 0) + tau_s j` the current alone bounds.
#[inline(always)]
pub(super) fn peak_ceiling(v: f64, j: f64, ceiling_v: f64, ceiling_j: f64) -> f64 {
    ceiling_v * (if v > 0.0 { v } else { 0.0 }) + ceiling_j * j
}

/// A group of neurons that shares one event list (one layer's neurons in one chip half), and
/// those events.
#[derive(Clone, Copy)]
pub(crate) struct Group<'a> {
    pub(crate) consts: &'a [NeuronConsts],
    /// The same constants as columns.
    pub(crate) cols: &'a Columns,
    /// This sample's thresholds (trial noise included).
    pub(crate) thetas: &'a [f64],
    /// Event times, ascending, all `>= 0`.
    pub(crate) times: &'a [f64],
    /// The source of each event.
    pub(crate) sources: &'a [u32],
    /// `weights[s * m + i]`: neuron `i`'s weight for source `s` (`m` neurons), so that each
    /// event adds one contiguous column.
    pub(crate) weights: &'a [f64],
    /// End of the sample window.
    pub(crate) t_end: f64,
}

/// The first spike of every neuron of a group that shares one event list, exactly as the
/// sequential integration finds it, but in lockstep: all neurons advance through the same
/// intervals together (one vectorised loop per interval, see [`interval_all`]) and all crossing
/// searches run interleaved, so that the processor works on many independent neurons at once
/// instead of waiting on one neuron's chain of exponentials.
///
/// Runs [`first_spikes_portable`] compiled for the widest vectors the processor has
/// ([`widest_simd`]).
pub(crate) fn first_spikes(group: &Group<'_>, buf: &mut Lockstep, out: &mut Vec<FirstSpike>) {
    widest_simd!(first_spikes_portable(
        group: &Group<'_>,
        buf: &mut Lockstep,
        out: &mut Vec<FirstSpike>,
    ));
}

/// The body of [`first_spikes`], for any processor.
#[inline(always)]
pub(super) fn first_spikes_portable(
    group: &Group<'_>,
    buf: &mut Lockstep,
    out: &mut Vec<FirstSpike>,
) {
    let Group { consts, t_end, .. } = *group;
    let m = consts.len();
    out.clear();
    out.resize(m, FirstSpike::NONE);
    buf.pending.clear();
    buf.searches.clear();
    buf.intervals.walk(group.times, t_end);
    if m < BY_NEURON_BELOW {
        by_neuron(group, buf);
    } else {
        lockstep(group, buf);
    }
    let Lockstep {
        pending,
        searches,
        columns,
        ..
    } = buf;
    // The first rounds, which nearly every search needs, step all searches at once in one
    // vectorised loop; the few still open continue interleaved, one step per round:
    // independent work the processor can overlap.
    columns.rounds(consts, pending, searches);
    let mut open = true;
    while open {
        open = false;
        for (s, p) in searches.iter_mut().zip(pending.iter()) {
            if !s.done {
                consts[p.0 as usize].root_step(s);
                open = true;
            }
        }
    }
    for (s, &(i, t_seg, next, j_seg, k_added)) in searches.iter().zip(pending.iter()) {
        let x = s.result();
        let ts = if t_seg + x < next { t_seg + x } else { next };
        if ts < t_end {
            out[i as usize] = FirstSpike {
                t: ts,
                t_segment: t_seg,
                j_segment: j_seg,
                k: k_added,
            };
        }
    }
}

/// [`first_spikes`] for a large group: all neurons advance through each interval together, in
/// one vectorised loop ([`interval_all`]); the neurons whose interval may hold a crossing are
/// then looked at alone. Leaves the crossing searches in `buf`.
#[inline(always)]
pub(super) fn lockstep(group: &Group<'_>, buf: &mut Lockstep) {
    let Group {
        consts,
        cols,
        thetas,
        sources,
        weights,
        ..
    } = *group;
    let m = consts.len();
    let Lockstep {
        v,
        j,
        v_next,
        j_next,
        theta,
        hit,
        at_start,
        pending,
        searches,
        intervals,
        ..
    } = buf;
    at_start.clear();
    at_start.resize(m, false);
    for buffer in [&mut *v, &mut *j, &mut *v_next, &mut *j_next] {
        buffer.clear();
        buffer.resize(m, 0.0);
    }
    theta.clear();
    theta.extend_from_slice(&thetas[..m]);
    hit.clear();
    hit.resize(m, false);
    let mut alive = m;
    let mut e = 0;
    for q in 0..intervals.starts.len() {
        let (t, next, k) = (intervals.starts[q], intervals.ends[q], intervals.added[q]);
        while e < k {
            let column = &weights[sources[e] as usize * m..][..m];
            for (ji, &w) in j.iter_mut().zip(column) {
                *ji += w;
            }
            e += 1;
        }
        // A finite interval is applied to all neurons at once and only those with a possible
        // crossing are looked at alone; after the last event, every neuron still waiting
        // either crosses on its final rise or never does.
        let gap = intervals.gaps[q];
        let finite = next.is_finite();
        let ticks = match &cols.ticks {
            Some(table) if finite => table.rows(gap).map(|rows| (&**table, rows)),
            _ => None,
        };
        let decays = match ticks {
            Some((table, rows)) => Decays::Ticks(table, rows),
            None => Decays::Gap(gap),
        };
        if !finite {
            // After the last event, all waiting neurons' final rises are looked at in one
            // vectorised loop (fired neurons, with an infinite threshold, have none).
            if final_all(cols, theta, v, j, v_next, j_next, at_start, hit) {
                for i in 0..m {
                    if hit[i] {
                        let search = if at_start[i] {
                            RootSearch::AT_START
                        } else {
                            consts[i].root_start(v[i], j[i], theta[i], v_next[i], j_next[i], 0.0)
                        };
                        pending.push((i as u32, t, next, j[i], k));
                        searches.push(search);
                    }
                }
            }
            break;
        }
        if interval_all(cols, theta, v, j, decays, v_next, j_next, hit) {
            for i in 0..m {
                if !hit[i] {
                    continue;
                }
                let factors = ticks.map(|(table, rows)| table.factors(rows, i));
                if let Some(search) = consts[i].search(theta[i], v[i], j[i], gap, factors) {
                    pending.push((i as u32, t, next, j[i], k));
                    searches.push(search);
                    theta[i] = f64::INFINITY;
                    alive -= 1;
                }
            }
        }
        std::mem::swap(v, v_next);
        std::mem::swap(j, j_next);
        if alive == 0 {
            break;
        }
    }
}

/// [`first_spikes`] for a small group (fewer neurons than a vector has lanes): each neuron's
/// decay factors come from vectorised loops over the intervals ([`decay_all`], a chunk of
/// intervals at a time, up to its first crossing), and the neuron scans them alone. The same arithmetic as [`lockstep`], so the same bits. Leaves the
/// crossing searches in `buf`.
#[inline(always)]
pub(super) fn by_neuron(group: &Group<'_>, buf: &mut Lockstep) {
    let Group {
        consts,
        cols,
        thetas,
        sources,
        weights,
        ..
    } = *group;
    let m = consts.len();
    let Lockstep {
        pending,
        searches,
        intervals,
        em,
        es,
        kk,
        ..
    } = buf;
    let Intervals {
        starts,
        ends,
        gaps,
        added,
    } = &*intervals;
    let n_finite = gaps.iter().take_while(|g| g.is_finite()).count();
    for column in [&mut *em, &mut *es, &mut *kk] {
        column.clear();
        column.resize(n_finite, 0.0);
    }
    let (em, es, kk) = (
        &mut em[..n_finite],
        &mut es[..n_finite],
        &mut kk[..n_finite],
    );
    for i in 0..m {
        let c = &consts[i];
        let decay_consts = [
            cols.inv_tau_m[i],
            cols.inv_tau_s[i],
            cols.delta[i],
            cols.inv_delta[i],
        ];
        // Decay factors for the intervals up to here (computed a chunk at a time, so that few
        // are computed beyond the neuron's first crossing).
        let mut ready = 0;
        let theta = thetas[i];
        let (mut v, mut j) = (0.0, 0.0);
        let mut e = 0;
        for q in 0..gaps.len() {
            while e < added[q] {
                j += weights[sources[e] as usize * m + i];
                e += 1;
            }
            let gap = gaps[q];
            let (v1, j1, h) = if q < n_finite {
                if q == ready {
                    ready = (q + DECAY_CHUNK).min(n_finite);
                    let r = q..ready;
                    decay_all(
                        &gaps[r.clone()],
                        decay_consts,
                        &mut em[r.clone()],
                        &mut es[r.clone()],
                        &mut kk[r],
                    );
                }
                quiet_or_hit(
                    em[q],
                    es[q],
                    kk[q],
                    v,
                    j,
                    cols.tau_m[i],
                    cols.ceiling_v[i],
                    cols.ceiling_j[i],
                    theta,
                )
            } else {
                (0.0, 0.0, true)
            };
            if h && let Some(search) = c.search(theta, v, j, gap, None) {
                pending.push((i as u32, starts[q], ends[q], j, added[q]));
                searches.push(search);
                break;
            }
            v = v1;
            j = j1;
        }
    }
}

/// One neuron's decay factors (`[inv_tau_m, inv_tau_s, delta, inv_delta]`) across each of
/// `gaps`, in loops the compiler vectorises ([`widest_simd`]). (A function of its own: inlined
/// into [`by_neuron`] the loops stay scalar.)
#[inline(never)]
pub(super) fn decay_all(gaps: &[f64], c: [f64; 4], em: &mut [f64], es: &mut [f64], kk: &mut [f64]) {
    widest_simd!(decay_all_portable(
        gaps: &[f64],
        c: [f64; 4],
        em: &mut [f64],
        es: &mut [f64],
        kk: &mut [f64],
    ));
}

/// The body of [`decay_all`], for any processor.
#[inline(always)]
pub(super) fn decay_all_portable(
    gaps: &[f64],
    c: [f64; 4],
    em: &mut [f64],
    es: &mut [f64],
    kk: &mut [f64],
) {
    let [inv_tau_m, inv_tau_s, delta, inv_delta] = c;
    // (Exactly `decay`, one factor per loop.)
    for (&gap, em) in gaps.iter().zip(em.iter_mut()) {
        *em = exp(-gap * inv_tau_m);
    }
    for (&gap, es) in gaps.iter().zip(es.iter_mut()) {
        *es = exp(-gap * inv_tau_s);
    }
    for (((&gap, &em), &es), kk) in gaps.iter().zip(&*em).zip(&*es).zip(kk) {
        *kk = kernel(em, es, gap, delta, inv_delta);
    }
}
