//! The founding study's measures of synchronisation and semantisation, on recorded spike times
//! of every layer.
//!
//! The one idea: each measure is a plain function of spike times (and, for pathways, of the
//! weights), so that it can be checked on hand-made times with known answers and applied alike
//! to any backend's recordings and to the untrained network beside the trained one.
//!
//! * **Pulse packets** ([`packet`]): per layer and sample, the number of spikes, their SD, their
//!   interquartile range and the width of the shortest window holding half of them.
//! * **Pathways** ([`positive_path_influence`], [`time_sensitivity`], [`top_fraction`],
//!   [`jaccard`]): per class and layer, the neurons with the strongest effective excitatory
//!   influence on that class's output neuron, by two measures: the sum over all paths of the
//!   products of *positive* weights along the path (structural), and the exact `dT_out/dt_j`
//!   from the backward pass averaged over the class's samples (functional: a positive value
//!   means an earlier spike of `j` makes the class's output earlier).
//! * **Separability** ([`separability`], [`linear_readout_accuracy`]): the between-class over
//!   the within-class spread of the layer's spike-time vectors, and the test accuracy of a
//!   linear read-out fitted to them.

use ndarray::Array2;
use spikeloop_backend::Network;
use spikeloop_lif::{Volley, gradients_at};

/// Spike time given to a silent neuron in the vector measures (separability, read-out), in
/// tau_s: later than any spike a trained layer makes within its sample.
pub const SILENT_TIME: f64 = 5.0;

/// The spike volley of one layer for one sample.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Packet {
    /// Neurons that spiked.
    pub count: usize,
    /// Standard deviation of the spike times (population formula; 0 for fewer than 2 spikes).
    pub sd: f64,
    /// Interquartile range (linear interpolation between order statistics).
    pub iqr: f64,
    /// Width of the shortest window holding `ceil(count / 2)` of the spikes.
    pub window50: f64,
}

/// The pulse packet of `times` (non-finite entries are silent neurons); `None` without spikes.
pub fn packet(times: &[f64]) -> Option<Packet> {
    let mut t: Vec<f64> = times.iter().copied().filter(|t| t.is_finite()).collect();
    if t.is_empty() {
        return None;
    }
    t.sort_by(f64::total_cmp);
    let n = t.len();
    let mean = t.iter().sum::<f64>() / n as f64;
    let sd = (t.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    let half = n.div_ceil(2);
    let window50 = (0..=n - half)
        .map(|i| t[i + half - 1] - t[i])
        .fold(f64::INFINITY, f64::min);
    Some(Packet {
        count: n,
        sd,
        iqr: quantile(&t, 0.75) - quantile(&t, 0.25),
        window50,
    })
}

/// The `q` quantile of sorted values (linear interpolation, as numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The median of `values` (NaN when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

/// Structural influence of every hidden neuron on every output: for hidden layer `l`, an
/// `n_classes x size_l` matrix whose entry `(c, j)` is the sum over all paths from `j` to output
/// `c` of the product of the weights along the path, counting only positive weights (an
/// excitatory chain). Bias columns are left out.
pub fn positive_path_influence(network: &Network) -> Vec<Array2<f64>> {
    let n_layers = network.layers.len();
    let positive = |l: usize, n_prev: usize| {
        network.layers[l]
            .weights
            .slice(ndarray::s![.., ..n_prev])
            .mapv(|w| w.max(0.0))
    };
    let mut out = Vec::with_capacity(n_layers - 1);
    if n_layers < 2 {
        return out;
    }
    // Output layer onto the last hidden layer, then back through the hidden layers.
    let mut influence = positive(n_layers - 1, network.layers[n_layers - 2].size);
    out.push(influence.clone());
    for l in (1..n_layers - 1).rev() {
        influence = influence.dot(&positive(l, network.layers[l - 1].size));
        out.push(influence.clone());
    }
    out.reverse();
    out
}

/// Exact sensitivity of output `class`'s spike time to the spike time of every hidden neuron,
/// `dT_class/dt_j`, for one sample (`measured`: all layers' times one after another, as
/// recorded). Backpropagates the unit error of that output through the measured times (the
/// backward pass of training, without the loss). One vector per hidden layer; zeros where no
/// path of spikes leads to the output.
pub fn time_sensitivity(
    network: &Network,
    inputs: &[f64],
    measured: &[f64],
    class: usize,
) -> Vec<Vec<f64>> {
    let n_layers = network.layers.len();
    let offsets = network.layer_offsets();
    let mut delta: Vec<Vec<f64>> = network.layers.iter().map(|l| vec![0.0; l.size]).collect();
    delta[n_layers - 1][class] = 1.0;
    let mut volley = Volley::new();
    let mut layer_input = Vec::new();
    let (mut d_w, mut d_t) = (Vec::new(), Vec::new());
    for l in (1..n_layers).rev() {
        let layer = &network.layers[l];
        let n_prev = network.layer_input(l, inputs, measured, &mut layer_input);
        volley.prepare(&layer_input, &layer.neuron);
        d_w.resize(layer_input.len(), 0.0);
        d_t.resize(layer_input.len(), 0.0);
        let times = &measured[offsets[l]..offsets[l] + layer.size];
        let (lower, upper) = delta.split_at_mut(l);
        for j in 0..layer.size {
            let dj = upper[0][j];
            if dj == 0.0 || !times[j].is_finite() {
                continue;
            }
            let slope = gradients_at(
                &layer.neuron,
                &volley,
                layer.weights_of(j),
                times[j],
                &mut d_w,
                &mut d_t,
            );
            if slope > 0.0 {
                for (p, g) in lower[l - 1].iter_mut().zip(&d_t[..n_prev]) {
                    *p += g * dj;
                }
            }
        }
    }
    delta.truncate(n_layers - 1);
    delta
}

/// Indices of the `fraction` of `scores` with the largest values (at least one; ties by index),
/// ascending.
pub fn top_fraction(scores: &[f64], fraction: f64) -> Vec<usize> {
    let k = ((scores.len() as f64 * fraction).round() as usize).clamp(1, scores.len().max(1));
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k.min(scores.len()));
    idx.sort_unstable();
    idx
}

/// Jaccard overlap `|A n B| / |A u B|` of two ascending index sets (1 for two empty sets).
pub fn jaccard(a: &[usize], b: &[usize]) -> f64 {
    let (mut i, mut j, mut both) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - both;
    if union == 0 {
        1.0
    } else {
        both as f64 / union as f64
    }
}

/// Between-class over within-class spread of spike-time vectors (`vectors`: one row per sample,
/// silent neurons already replaced): the mean squared distance of the class centroids from the
/// overall centroid (weighted by class size) over the mean squared distance of samples from their
/// class centroid. Infinite when every class is a single point; NaN with fewer than two classes.
pub fn separability(vectors: &Array2<f64>, labels: &[usize], n_classes: usize) -> f64 {
    let (n, dim) = vectors.dim();
    let mut centroid = vec![vec![0.0; dim]; n_classes];
    let mut counts = vec![0usize; n_classes];
    for (row, &c) in vectors.rows().into_iter().zip(labels) {
        counts[c] += 1;
        for (m, v) in centroid[c].iter_mut().zip(row) {
            *m += v;
        }
    }
    if counts.iter().filter(|&&c| c > 0).count() < 2 {
        return f64::NAN;
    }
    for (m, &c) in centroid.iter_mut().zip(&counts) {
        if c > 0 {
            m.iter_mut().for_each(|v| *v /= c as f64);
        }
    }
    let overall: Vec<f64> = (0..dim)
        .map(|d| {
            (0..n_classes)
                .map(|c| centroid[c][d] * counts[c] as f64)
                .sum::<f64>()
                / n as f64
        })
        .collect();
    let between = (0..n_classes)
        .map(|c| {
            counts[c] as f64
                * centroid[c]
                    .iter()
                    .zip(&overall)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
        })
        .sum::<f64>()
        / n as f64;
    let within = vectors
        .rows()
        .into_iter()
        .zip(labels)
        .map(|(row, &c)| {
            row.iter()
                .zip(&centroid[c])
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / n as f64;
    if within == 0.0 {
        f64::INFINITY
    } else {
        between / within
    }
}

/// Test accuracy of a linear read-out (multinomial logistic regression on standardised
/// features, full-batch gradient descent with momentum, 300 steps, deterministic) fitted on the
/// first half of the samples and scored on the second half.
pub fn linear_readout_accuracy(vectors: &Array2<f64>, labels: &[usize], n_classes: usize) -> f64 {
    let (n, dim) = vectors.dim();
    let n_fit = n / 2;
    if n_fit == 0 || n - n_fit == 0 {
        return f64::NAN;
    }
    let fit = vectors.slice(ndarray::s![..n_fit, ..]);
    let mean = fit
        .mean_axis(ndarray::Axis(0))
        .unwrap_or_else(|| ndarray::Array1::zeros(dim));
    let sd = fit
        .var_axis(ndarray::Axis(0), 0.0)
        .mapv(|v| if v > 0.0 { v.sqrt() } else { 1.0 });
    let x = (vectors - &mean) / &sd;
    let mut w = Array2::<f64>::zeros((dim + 1, n_classes));
    let mut velocity = w.clone();
    let xf = x.slice(ndarray::s![..n_fit, ..]);
    let (rate, momentum, l2) = (0.5, 0.9, 1e-4);
    for _ in 0..300 {
        let logits = xf.dot(&w.slice(ndarray::s![..dim, ..])) + w.row(dim);
        let mut p = logits;
        for mut row in p.rows_mut() {
            let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            row.mapv_inplace(|v| (v - m).exp());
            let s = row.sum();
            row /= s;
        }
        for (mut row, &c) in p.rows_mut().into_iter().zip(&labels[..n_fit]) {
            row[c] -= 1.0;
        }
        let mut grad = Array2::<f64>::zeros((dim + 1, n_classes));
        grad.slice_mut(ndarray::s![..dim, ..])
            .assign(&(xf.t().dot(&p) / n_fit as f64));
        grad.row_mut(dim)
            .assign(&(p.sum_axis(ndarray::Axis(0)) / n_fit as f64));
        grad = grad + &w * l2;
        velocity = velocity * momentum - grad * rate;
        w += &velocity;
    }
    let xt = x.slice(ndarray::s![n_fit.., ..]);
    let logits = xt.dot(&w.slice(ndarray::s![..dim, ..])) + w.row(dim);
    let correct = logits
        .rows()
        .into_iter()
        .zip(&labels[n_fit..])
        .filter(|(row, c)| {
            let best = row
                .iter()
                .enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                );
            best.0 == **c
        })
        .count();
    correct as f64 / (n - n_fit) as f64
}

/// The spike-time vectors of one layer (`layer_times`: one slice per sample) with silent
/// neurons at [`SILENT_TIME`].
pub fn time_vectors<'a>(
    layer_times: impl ExactSizeIterator<Item = &'a [f64]>,
    size: usize,
) -> Array2<f64> {
    let n = layer_times.len();
    let mut out = Array2::zeros((n, size));
    for (mut row, t) in out.rows_mut().into_iter().zip(layer_times) {
        for (o, &v) in row.iter_mut().zip(t) {
            *o = if v.is_finite() { v } else { SILENT_TIME };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use spikeloop_backend::{Layer, NeuronParams};

    use super::*;

    #[test]
    fn a_perfectly_synchronous_packet_has_no_width() {
        let p = packet(&[1.25; 40]).expect("spikes");
        assert_eq!(p.count, 40);
        assert_eq!((p.sd, p.iqr, p.window50), (0.0, 0.0, 0.0));
    }

    #[test]
    fn the_shortest_half_window_finds_the_dense_cluster() {
        // Five spikes within 0.1 and five spread over 10: half of ten is five.
        let mut t = vec![2.0, 2.02, 2.05, 2.08, 2.1];
        t.extend([0.0, 4.0, 6.0, 8.0, 10.0]);
        t.push(f64::INFINITY);
        let p = packet(&t).expect("spikes");
        assert_eq!(p.count, 10);
        assert!((p.window50 - 0.1).abs() < 1e-12, "{}", p.window50);
        assert!(packet(&[f64::INFINITY]).is_none());
        // Uniform 0..=4: IQR 2, SD sqrt(2).
        let u = packet(&[0.0, 1.0, 2.0, 3.0, 4.0]).expect("spikes");
        assert_eq!(u.iqr, 2.0);
        assert!((u.sd - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(u.window50, 2.0);
    }

    /// 4 inputs -> 4 hidden -> 2 outputs: hidden 0 and 1 excite output 0 only, 2 and 3 output 1
    /// only; inputs 0, 1 drive hidden 0, 1 and inputs 2, 3 drive hidden 2, 3.
    fn two_pathways() -> Network {
        let hidden = Array2::from_shape_vec(
            (4, 4),
            vec![
                2.0, 2.0, 0.0, 0.0, //
                2.0, 2.0, 0.0, 0.0, //
                0.0, 0.0, 2.0, 2.0, //
                0.0, 0.0, 2.0, 2.0,
            ],
        )
        .expect("shape");
        let output = Array2::from_shape_vec(
            (2, 4),
            vec![
                3.0, 3.0, -0.5, -0.5, //
                -0.5, -0.5, 3.0, 3.0,
            ],
        )
        .expect("shape");
        let layer = |weights: Array2<f64>| Layer {
            size: weights.nrows(),
            neuron: NeuronParams::REFERENCE,
            bias_times: vec![],
            weights,
        };
        Network {
            n_inputs: 4,
            layers: vec![layer(hidden), layer(output)],
        }
    }

    #[test]
    fn two_disjoint_pathways_are_found_by_both_measures_and_do_not_overlap() {
        let net = two_pathways();
        let structural = positive_path_influence(&net);
        assert_eq!(structural.len(), 1);
        let a = top_fraction(structural[0].row(0).as_slice().expect("row"), 0.5);
        let b = top_fraction(structural[0].row(1).as_slice().expect("row"), 0.5);
        assert_eq!((a.as_slice(), b.as_slice()), (&[0, 1][..], &[2, 3][..]));
        assert_eq!(jaccard(&a, &b), 0.0);
        assert_eq!(jaccard(&a, &a), 1.0);
        assert_eq!(jaccard(&[0, 1, 2], &[1, 2, 3]), 0.5);

        // Every input spikes at 0.2: every hidden neuron fires, output 0 sees only hidden 0, 1
        // as excitatory.
        let inputs = [0.2; 4];
        let mut measured = vec![0.0; 6];
        spikeloop_backend::ideal::forward_sample(
            &net,
            &spikeloop_backend::ideal::DenseWeights::of(&net),
            &inputs,
            &mut Default::default(),
            &mut measured,
        );
        assert!(measured.iter().all(|t| t.is_finite()), "{measured:?}");
        let s = time_sensitivity(&net, &inputs, &measured, 0);
        assert!(s[0][0] > 0.0 && s[0][1] > 0.0, "{s:?}");
        assert!(s[0][2] < 0.0 && s[0][3] < 0.0, "{s:?}");
        assert_eq!(top_fraction(&s[0], 0.5), vec![0, 1]);
    }

    #[test]
    fn separated_classes_score_higher_than_mixed_ones_and_are_read_out() {
        // Two classes at 0 and 1 in every dimension, with a small alternating jitter.
        let n = 200;
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let jitter = |i: usize| 0.05 * (((i * 7919) % 13) as f64 / 13.0 - 0.5);
        let separated = Array2::from_shape_fn((n, 3), |(i, d)| labels[i] as f64 + jitter(i + d));
        let mixed = Array2::from_shape_fn((n, 3), |(i, d)| jitter(i * 3 + d));
        let s = separability(&separated, &labels, 2);
        // Between: 0.25 per dimension; within: the jitter's variance (about 2e-4 per dim).
        assert!(s > 100.0, "{s}");
        assert!(separability(&mixed, &labels, 2) < 1.0);
        assert_eq!(linear_readout_accuracy(&separated, &labels, 2), 1.0);
    }
}
