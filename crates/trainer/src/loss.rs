//! The first-spike cross-entropy loss of the reference trainer and its gradient.
//!
//! For output spike times `t_k` and label `n` (all in tau_s):
//! `L = log sum_k exp(-t_k / xi) + t_n / xi + alpha exp(t_n / beta)`,
//! a softmax cross-entropy on negative times plus a regulariser that pulls the correct neuron
//! early. A sample whose label neuron stays silent costs a constant [`SILENT_LABEL_LOSS`] and
//! contributes no gradient (weight bumping deals with silence).

/// Loss of a sample whose label neuron did not spike.
pub const SILENT_LABEL_LOSS: f64 = 100.0;

/// Loss hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossParams {
    /// Softmax temperature, tau_s.
    pub xi: f64,
    /// Regulariser strength.
    pub alpha: f64,
    /// Regulariser time scale, tau_s.
    pub beta: f64,
}

impl From<&crate::config::TrainingConfig> for LossParams {
    /// The loss a training configuration specifies.
    fn from(t: &crate::config::TrainingConfig) -> Self {
        Self {
            xi: t.xi,
            alpha: t.alpha,
            beta: t.beta,
        }
    }
}

/// Loss of one sample; writes dL/dt_k into `grad` (zeros for a silent label neuron).
pub fn loss_and_gradient(
    params: &LossParams,
    times: &[f64],
    label: usize,
    grad: &mut [f64],
) -> f64 {
    let LossParams { xi, alpha, beta } = *params;
    let t_label = times[label];
    if !t_label.is_finite() {
        grad.fill(0.0);
        return SILENT_LABEL_LOSS;
    }
    // Shift by the earliest spike so the exponentials cannot overflow.
    let t_min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let mut z = 0.0;
    for (g, &t) in grad.iter_mut().zip(times) {
        *g = (-(t - t_min) / xi).exp(); // exp(-inf) = 0 for silent neurons
        z += *g;
    }
    let regulariser = alpha * (t_label / beta).exp();
    for g in grad.iter_mut() {
        *g *= -1.0 / (xi * z);
    }
    grad[label] += 1.0 / xi + regulariser / beta;
    z.ln() - t_min / xi + t_label / xi + regulariser
}

/// Index of the earliest output spike, or `None` when no output neuron fired. Ties go to the
/// lower index.
pub fn prediction(times: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (k, &t) in times.iter().enumerate() {
        if t.is_finite() && best.is_none_or(|(_, b)| t < b) {
            best = Some((k, t));
        }
    }
    best.map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: LossParams = LossParams {
        xi: 0.2,
        alpha: 0.005,
        beta: 1.0,
    };

    fn loss(times: &[f64], label: usize) -> f64 {
        let mut g = vec![0.0; times.len()];
        loss_and_gradient(&P, times, label, &mut g)
    }

    #[test]
    fn matches_the_formula() {
        let t = [1.2, 1.5, 2.0];
        let direct = (t.iter().map(|x: &f64| (-x / 0.2).exp()).sum::<f64>()).ln()
            + 1.5 / 0.2
            + 0.005 * 1.5f64.exp();
        assert!((loss(&t, 1) - direct).abs() < 1e-12);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let t = [1.2, 1.5, 2.0];
        let mut g = [0.0; 3];
        loss_and_gradient(&P, &t, 0, &mut g);
        for k in 0..3 {
            let h = 1e-6;
            let (mut up, mut down) = (t, t);
            up[k] += h;
            down[k] -= h;
            let fd = (loss(&up, 0) - loss(&down, 0)) / (2.0 * h);
            assert!((fd - g[k]).abs() < 1e-6, "k={k}: {fd} vs {}", g[k]);
        }
    }

    #[test]
    fn silent_outputs_are_handled() {
        let mut g = [1.0; 3];
        assert_eq!(
            loss_and_gradient(&P, &[1.0, f64::INFINITY, 2.0], 1, &mut g),
            SILENT_LABEL_LOSS
        );
        assert_eq!(g, [0.0; 3]);
        let l = loss_and_gradient(&P, &[1.0, f64::INFINITY, 2.0], 0, &mut g);
        assert!(l.is_finite());
        assert_eq!(g[1], 0.0);
    }

    #[test]
    fn predictions() {
        assert_eq!(prediction(&[2.0, 1.0, 3.0]), Some(1));
        assert_eq!(prediction(&[f64::INFINITY; 3]), None);
        assert_eq!(prediction(&[1.0, 1.0]), Some(0));
    }
}
