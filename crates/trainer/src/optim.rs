//! Adam with a step learning-rate schedule, as the reference trainer uses them (PyTorch's
//! `Adam` and `StepLR` semantics).

use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Adam's state for a list of parameter matrices (a network's weights, layer by layer), each
/// moment of the shape of its parameters. In a checkpoint every matrix is written flat
/// (row-major), as the checkpoint format has always had it; [`Adam::reshape`] restores the
/// shapes after reading.
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
    /// First moments, one matrix per parameter matrix.
    #[serde(with = "crate::flat")]
    pub m: Vec<Array2<f64>>,
    /// Second moments.
    #[serde(with = "crate::flat")]
    pub v: Vec<Array2<f64>>,
}

impl Adam {
    /// Fresh state for parameter matrices of the given shapes.
    pub fn new(shapes: &[(usize, usize)], beta1: f64, beta2: f64, eps: f64) -> Self {
        Self {
            beta1,
            beta2,
            eps,
            step: 0,
            m: shapes.iter().map(|&s| Array2::zeros(s)).collect(),
            v: shapes.iter().map(|&s| Array2::zeros(s)).collect(),
        }
    }

    /// Gives the moments the parameters' `shapes` (after reading a checkpoint, whose matrices
    /// are flat); an error names the first that holds another number of values.
    pub fn reshape(&mut self, shapes: &[(usize, usize)]) -> Result<(), String> {
        crate::flat::reshape(&mut self.m, shapes)
            .map_err(|e| format!("Adam's first moments: {e}"))?;
        crate::flat::reshape(&mut self.v, shapes).map_err(|e| format!("Adam's second moments: {e}"))
    }

    /// One update of `params` against gradients `grads` (matrices of the same shapes) with
    /// learning rate `lr`.
    pub fn step<'a>(
        &mut self,
        params: impl IntoIterator<Item = &'a mut Array2<f64>>,
        grads: &[Array2<f64>],
        lr: f64,
    ) {
        self.step += 1;
        let t = self.step as i32;
        let bias1 = 1.0 - self.beta1.powi(t);
        let bias2_sqrt = (1.0 - self.beta2.powi(t)).sqrt();
        let step_size = lr / bias1;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        let update = |p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]| {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let denom = v.sqrt() / bias2_sqrt + eps;
                *p -= step_size * *m / denom;
            }
        };
        for (((p, g), m), v) in params
            .into_iter()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            match (
                p.as_slice_mut(),
                g.as_slice(),
                m.as_slice_mut(),
                v.as_slice_mut(),
            ) {
                // Element-wise, so splitting the work over threads changes no result.
                (Some(p), Some(g), Some(m), Some(v)) => p
                    .par_chunks_mut(PARALLEL_CHUNK)
                    .zip(g.par_chunks(PARALLEL_CHUNK))
                    .zip(m.par_chunks_mut(PARALLEL_CHUNK))
                    .zip(v.par_chunks_mut(PARALLEL_CHUNK))
                    .for_each(|(((p, g), m), v)| update(p, g, m, v)),
                _ => {
                    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                    {
                        update(
                            std::slice::from_mut(p),
                            &[g],
                            std::slice::from_mut(m),
                            std::slice::from_mut(v),
                        );
                    }
                }
            }
        }
    }
}

/// Parameters one thread updates at a time (large enough that small networks stay on one).
const PARALLEL_CHUNK: usize = 1 << 14;

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
        let mut adam = Adam::new(&[(1, 2)], 0.9, 0.999, 1e-8);
        let mut p = vec![ndarray::arr2(&[[1.0, 1.0]])];
        adam.step(&mut p, &[ndarray::arr2(&[[0.5, -2.0]])], 0.01);
        assert!((p[0][[0, 0]] - 0.99).abs() < 1e-9);
        assert!((p[0][[0, 1]] - 1.01).abs() < 1e-9);
    }

    #[test]
    fn minimises_a_quadratic() {
        let mut adam = Adam::new(&[(1, 1)], 0.9, 0.999, 1e-8);
        let mut p = vec![ndarray::arr2(&[[3.0]])];
        for _ in 0..2000 {
            let g = vec![ndarray::arr2(&[[2.0 * (p[0][[0, 0]] - 1.0)]])];
            adam.step(&mut p, &g, 0.01);
        }
        assert!((p[0][[0, 0]] - 1.0).abs() < 1e-3, "{}", p[0][[0, 0]]);
    }

    #[test]
    fn schedule_steps() {
        assert_eq!(step_lr(0.005, 0.95, 20, 0), 0.005);
        assert_eq!(step_lr(0.005, 0.95, 20, 19), 0.005);
        assert!((step_lr(0.005, 0.95, 20, 20) - 0.00475).abs() < 1e-15);
    }
}
