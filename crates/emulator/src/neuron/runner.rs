//! Neurons integrated step by step so that many can be interleaved ([`Runner`]), their first
//! spikes ([`FirstSpike`]) and the column store that advances them together ([`Columns`]).

use super::*;

/// A neuron integrated step by step (one interval, or one step of a crossing search, per call),
/// so that the work of many neurons can be interleaved; each neuron still performs exactly the
/// operations of an uninterrupted run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Runner {
    pub(super) state: State,
    /// A crossing search in progress and the time of the event ending its interval.
    pub(super) search: Option<(RootSearch, f64)>,
    /// Nothing further can happen in the window.
    pub(crate) done: bool,
}

impl Runner {
    pub(crate) fn new(state: State) -> Self {
        Self {
            state,
            search: None,
            done: false,
        }
    }

    /// Advances by one interval or one search step, appending a spike to `out` (the neuron's
    /// spikes so far) when one is found.
    pub(crate) fn step(
        &mut self,
        c: &NeuronConsts,
        theta: f64,
        input: &NeuronInput<'_>,
        t_end: f64,
        max_spikes: usize,
        out: &mut Vec<f64>,
    ) {
        if let Some((mut search, next)) = self.search.take() {
            c.root_step(&mut search);
            if search.done {
                self.fire(c, search.result(), next, t_end, max_spikes, out);
            } else {
                self.search = Some((search, next));
            }
            return;
        }
        let NeuronInput { times, weights } = *input;
        let n = times.len();
        let st = &mut self.state;
        while st.k < n && times[st.k] <= st.t {
            st.j += weights[st.k];
            st.k += 1;
        }
        if st.t >= t_end || out.len() >= max_spikes {
            self.done = true;
            return;
        }
        let next = if st.k < n { times[st.k] } else { f64::INFINITY };
        if st.release > st.t {
            // Held at reset; the synaptic current decays and keeps collecting events.
            let until = if st.release < next { st.release } else { next };
            st.j *= exp(-(until - st.t) * c.inv_tau_s);
            st.t = until;
            return;
        }
        match c.segment(theta, st.v, st.j, next - st.t, None) {
            Segment::Quiet { v_end, j_end } => {
                if next.is_finite() {
                    st.v = v_end;
                    st.j = j_end;
                    st.t = next;
                } else {
                    self.done = true;
                }
            }
            Segment::Immediate => self.fire(c, 0.0, next, t_end, max_spikes, out),
            Segment::Bracket { hi, f_hi, slope_hi } => {
                let search = c.root_start(st.v, st.j, theta, hi, f_hi, slope_hi);
                self.search = Some((search, next));
            }
        }
    }

    /// The crossing `x` after the current state: spike, reset, refractory hold.
    pub(super) fn fire(
        &mut self,
        c: &NeuronConsts,
        x: f64,
        next: f64,
        t_end: f64,
        max_spikes: usize,
        out: &mut Vec<f64>,
    ) {
        let st = &mut self.state;
        let ts = if st.t + x < next { st.t + x } else { next };
        if ts >= t_end {
            self.done = true;
            return;
        }
        out.push(ts);
        st.release = ts + c.t_ref;
        if st.release >= t_end || out.len() >= max_spikes {
            // Held until the window closes (or enough spikes): nothing further to find.
            self.done = true;
            return;
        }
        st.j *= exp(-(ts - st.t) * c.inv_tau_s);
        st.v = c.v_reset;
        st.t = ts;
    }
}

/// A neuron's first spike as found by [`first_spikes`], with what is needed to continue it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FirstSpike {
    /// Spike time (`+inf`: none in the window).
    pub(crate) t: f64,
    /// Start of the interval in which it fired, and the synaptic current there.
    pub(crate) t_segment: f64,
    pub(crate) j_segment: f64,
    /// Events added before the spike.
    pub(crate) k: usize,
}

impl FirstSpike {
    pub(super) const NONE: FirstSpike = FirstSpike {
        t: f64::INFINITY,
        t_segment: 0.0,
        j_segment: 0.0,
        k: 0,
    };

    /// The state right after the spike (reset, refractory), from which a [`Runner`] finds the
    /// later spikes.
    pub(crate) fn state_after(&self, c: &NeuronConsts) -> State {
        State {
            t: self.t,
            v: c.v_reset,
            j: self.j_segment * exp(-(self.t - self.t_segment) * c.inv_tau_s),
            k: self.k,
            release: self.t + c.t_ref,
        }
    }
}

/// The constants of a group of neurons as columns (one vector per constant), so that one
/// interval can be applied to all of them in a loop the compiler vectorises.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Columns {
    pub(super) tau_m: Vec<f64>,
    pub(super) ceiling_v: Vec<f64>,
    pub(super) ceiling_j: Vec<f64>,
    pub(super) peak_offset: Vec<f64>,
    pub(super) inv_tau_m: Vec<f64>,
    pub(super) inv_tau_s: Vec<f64>,
    pub(super) delta: Vec<f64>,
    pub(super) inv_delta: Vec<f64>,
    /// Every neuron's decay factors for whole numbers of clock ticks, for groups whose events
    /// all lie on the clock grid.
    pub(super) ticks: Option<std::sync::Arc<TickFactors>>,
}

impl Columns {
    pub(crate) fn new(consts: &[NeuronConsts]) -> Self {
        let column = |f: fn(&NeuronConsts) -> f64| consts.iter().map(f).collect();
        Self {
            tau_m: column(|c| c.tau_m),
            ceiling_v: column(|c| c.ceiling_v),
            ceiling_j: column(|c| c.ceiling_j),
            peak_offset: column(|c| c.peak_offset),
            inv_tau_m: column(|c| c.inv_tau_m),
            inv_tau_s: column(|c| c.inv_tau_s),
            delta: column(|c| c.delta),
            inv_delta: column(|c| c.inv_delta),
            ticks: None,
        }
    }

    /// Adds the decay factors of every whole number of clock ticks `tick` up to `t_max`, used
    /// for the intervals that span whole ticks (a group whose events all come from the FPGA,
    /// which releases them on its clock).
    pub(crate) fn with_ticks(mut self, tick: f64, t_max: f64) -> Self {
        self.ticks = TickFactors::new(&self, tick, t_max).map(std::sync::Arc::new);
        self
    }

    /// `[e_m, e_s, K]` of neuron `i` across `gap`.
    #[inline(always)]
    pub(super) fn decay(&self, i: usize, gap: f64) -> (f64, f64, f64) {
        decay(
            gap,
            self.inv_tau_m[i],
            self.inv_tau_s[i],
            self.delta[i],
            self.inv_delta[i],
        )
    }

    pub(super) fn len(&self) -> usize {
        self.tau_m.len()
    }
}
