//! Adam with a step learning-rate schedule, as the reference trainer uses them (PyTorch's
//! `Adam` and `StepLR` semantics).

use serde::{Deserialize, Serialize};

/// Adam's state for a list of parameter tensors (flat vectors).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator offset.
    pub eps: f64,
    /// Steps taken so far.
    pub step: u64,
    /// First moments, one vector per parameter tensor.
    pub m: Vec<Vec<f64>>,
    /// Second moments.
    pub v: Vec<Vec<f64>>,
}

impl Adam {
    /// Fresh state for tensors of the given lengths.
    pub fn new(lengths: &[usize], beta1: f64, beta2: f64, eps: f64) -> Self {
        Self {
            beta1,
            beta2,
            eps,
            step: 0,
            m: lengths.iter().map(|&n| vec![0.0; n]).collect(),
            v: lengths.iter().map(|&n| vec![0.0; n]).collect(),
        }
    }

    /// One update of `params` against gradients `grads` with learning rate `lr`.
    pub fn step(&mut self, params: &mut [Vec<f64>], grads: &[Vec<f64>], lr: f64) {
        self.step += 1;
        let t = self.step as i32;
        let bias1 = 1.0 - self.beta1.powi(t);
        let bias2_sqrt = (1.0 - self.beta2.powi(t)).sqrt();
        let step_size = lr / bias1;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let denom = v.sqrt() / bias2_sqrt + eps;
                *p -= step_size * *m / denom;
            }
        }
    }
}

/// Learning rate of epoch `epoch` (0-based) under a step schedule.
pub fn step_lr(lr0: f64, gamma: f64, step: u32, epoch: u32) -> f64 {
    lr0 * gamma.powi((epoch / step) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_by_lr() {
        // With bias correction, Adam's first step is lr * sign(g) (up to eps).
        let mut adam = Adam::new(&[2], 0.9, 0.999, 1e-8);
        let mut p = vec![vec![1.0, 1.0]];
        adam.step(&mut p, &[vec![0.5, -2.0]], 0.01);
        assert!((p[0][0] - 0.99).abs() < 1e-9);
        assert!((p[0][1] - 1.01).abs() < 1e-9);
    }

    #[test]
    fn minimises_a_quadratic() {
        let mut adam = Adam::new(&[1], 0.9, 0.999, 1e-8);
        let mut p = vec![vec![3.0]];
        for _ in 0..2000 {
            let g = vec![vec![2.0 * (p[0][0] - 1.0)]];
            adam.step(&mut p, &g, 0.01);
        }
        assert!((p[0][0] - 1.0).abs() < 1e-3, "{}", p[0][0]);
    }

    #[test]
    fn schedule_steps() {
        assert_eq!(step_lr(0.005, 0.95, 20, 0), 0.005);
        assert_eq!(step_lr(0.005, 0.95, 20, 19), 0.005);
        assert!((step_lr(0.005, 0.95, 20, 20) - 0.00475).abs() < 1e-15);
    }
}
