//! Decay factors of intervals that span whole clock ticks, from per-neuron tables
//! ([`TickFactors`]).

use super::*;

/// Decay factors of a group's neurons for whole numbers of clock ticks: an interval of `n`
/// ticks costs two table rows and four multiplications per neuron instead of two exponentials.
///
/// `n = h LOW + l` is split into a high part (rows for `h LOW` ticks) and a low part (rows for
/// `l` ticks); the factors of the sum follow from those of the parts exactly,
/// `e(a + b) = e(a) e(b)` and `K(a + b) = e_m(b) K(a) + K(b) e_s(a)` (integrate across `a`,
/// then `b`), with no cancellation (every term is positive), so a composed factor lies within
/// a few units in the last place of the directly computed one. Row 0 of either table is the
/// identity `(1, 1, 0)`, so an interval shorter than `LOW` ticks gets exactly the directly
/// computed factors.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct TickFactors {
    pub(super) tick: f64,
    /// Neurons per row.
    pub(super) m: usize,
    /// Row `l` (`l` ticks): `[e_m; m]`, `[e_s; m]`, `[K; m]`.
    pub(super) low: Vec<f64>,
    /// Row `h` (`h LOW` ticks), laid out the same way.
    pub(super) high: Vec<f64>,
}

/// Rows of the low table of [`TickFactors`].
pub(super) const LOW: usize = 64;

impl TickFactors {
    /// The tables for intervals up to `t_max`, or `None` when there is no clock (`tick <= 0`).
    pub(super) fn new(cols: &Columns, tick: f64, t_max: f64) -> Option<Self> {
        if !(tick > 0.0 && t_max.is_finite() && t_max >= 0.0) {
            return None;
        }
        let m = cols.len();
        let n_max = (t_max / tick).ceil() as usize + 1;
        let table = |rows: usize, ticks_per_row: usize| {
            let mut out = vec![0.0; rows * 3 * m];
            for (r, row) in out.chunks_exact_mut(3 * m).enumerate() {
                let gap = (r * ticks_per_row) as f64 * tick;
                for i in 0..m {
                    let (em, es, k) = cols.decay(i, gap);
                    (row[i], row[m + i], row[2 * m + i]) = (em, es, k);
                }
            }
            out
        };
        Some(Self {
            tick,
            m,
            low: table(LOW, 1),
            high: table(n_max / LOW + 1, LOW),
        })
    }

    /// Offsets of the low and the high row for an interval of length `gap`, if it spans a whole
    /// number of ticks (to within rounding) that the tables cover.
    #[inline]
    pub(super) fn rows(&self, gap: f64) -> Option<(usize, usize)> {
        let x = gap / self.tick;
        let n = round_nearest(x);
        if !((x - n).abs() <= 1e-9 && n >= 0.0) {
            return None;
        }
        let n = n as usize;
        let row = 3 * self.m;
        let high = (n / LOW) * row;
        (high < self.high.len()).then_some(((n % LOW) * row, high))
    }

    /// The columns of the rows [`Self::rows`] gave: `e_m`, `e_s`, `K` of the low row, then of
    /// the high row.
    #[inline(always)]
    pub(super) fn columns(&self, (low, high): (usize, usize)) -> [&[f64]; 6] {
        let m = self.m;
        let (lo, hi) = (&self.low[low..low + 3 * m], &self.high[high..high + 3 * m]);
        [
            &lo[..m],
            &lo[m..2 * m],
            &lo[2 * m..],
            &hi[..m],
            &hi[m..2 * m],
            &hi[2 * m..],
        ]
    }

    /// `[e_m, e_s, K]` of neuron `i` across the interval of [`Self::rows`].
    pub(super) fn factors(&self, rows: (usize, usize), i: usize) -> [f64; 3] {
        let [em_l, es_l, k_l, em_h, es_h, k_h] = self.columns(rows);
        let (em, es, k) = compose(em_l[i], es_l[i], k_l[i], em_h[i], es_h[i], k_h[i]);
        [em, es, k]
    }
}

/// The decay factors across `a + b` from those across `b` (`_l`) and `a` (`_h`).
#[inline(always)]
pub(super) fn compose(
    em_l: f64,
    es_l: f64,
    k_l: f64,
    em_h: f64,
    es_h: f64,
    k_h: f64,
) -> (f64, f64, f64) {
    (em_h * em_l, es_h * es_l, em_l * k_h + k_l * es_h)
}
