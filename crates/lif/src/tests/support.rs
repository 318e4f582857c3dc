//! Shared test machinery: a brute-force ODE integrator independent of the solvers, and proptest
//! strategies for neurons and their inputs.

use crate::NeuronParams;
use proptest::prelude::*;

/// What the brute-force integration saw.
#[derive(Debug)]
pub struct Brute {
    /// First threshold crossing, if any before the integration stopped.
    pub crossing: Option<f64>,
    /// Membrane (relative to e_leak) at every local maximum met before the crossing.
    pub peaks: Vec<f64>,
}

/// Integrates `C dv/dt = -g v + I`, `dI/dt = -I / tau_s` (v = u - e_leak) with classical RK4 and
/// step at most `h`, splitting exactly at the input times; a crossing inside a step is refined by
/// bisection on the length of a single RK4 step from the step's start. After the last input the
/// integration stops once no further crossing is possible (current not positive, or the membrane
/// past its single maximum) or after `40 max(tau_m, tau_s)`.
pub fn brute_force(params: &NeuronParams, times: &[f64], weights: &[f64], h: f64) -> Brute {
    let mut events: Vec<(f64, f64)> = times
        .iter()
        .copied()
        .zip(weights.iter().copied())
        .filter(|(t, _)| t.is_finite())
        .collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let c_m = params.c_m();
    let g = params.g_leak;
    let tau_s = params.tau_s;
    let theta = params.threshold - params.e_leak;
    let deriv = |v: f64, i: f64| ((-g * v + i) / c_m, -i / tau_s);
    let rk4 = |v: f64, i: f64, dt: f64| {
        let (k1v, k1i) = deriv(v, i);
        let (k2v, k2i) = deriv(v + 0.5 * dt * k1v, i + 0.5 * dt * k1i);
        let (k3v, k3i) = deriv(v + 0.5 * dt * k2v, i + 0.5 * dt * k2i);
        let (k4v, k4i) = deriv(v + dt * k3v, i + dt * k3i);
        (
            v + dt / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v),
            i + dt / 6.0 * (k1i + 2.0 * k2i + 2.0 * k3i + k4i),
        )
    };
    let mut peaks = Vec::new();
    let (mut v, mut cur) = (0.0f64, 0.0f64);
    let mut prev_slope = 0.0f64;
    let horizon = 40.0 * params.tau_m.max(params.tau_s);
    for (k, &(t_k, w)) in events.iter().enumerate() {
        cur += w;
        let slope = deriv(v, cur).0;
        if prev_slope > 0.0 && slope <= 0.0 {
            peaks.push(v);
        }
        prev_slope = slope;
        let last = k + 1 == events.len();
        let end = if last { t_k + horizon } else { events[k + 1].0 };
        let len = end - t_k;
        if len <= 0.0 {
            continue;
        }
        let n = (len / h).ceil().max(1.0) as usize;
        let dt = len / n as f64;
        let mut rose = slope > 0.0;
        for s in 0..n {
            let (v_new, i_new) = rk4(v, cur, dt);
            if v_new >= theta {
                let (mut lo, mut hi) = (0.0, dt);
                for _ in 0..80 {
                    let mid = 0.5 * (lo + hi);
                    if rk4(v, cur, mid).0 >= theta {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                return Brute {
                    crossing: Some(t_k + s as f64 * dt + 0.5 * (lo + hi)),
                    peaks,
                };
            }
            v = v_new;
            cur = i_new;
            let slope = deriv(v, cur).0;
            if prev_slope > 0.0 && slope <= 0.0 {
                peaks.push(v);
            }
            prev_slope = slope;
            rose |= slope > 0.0;
            if last && (cur <= 0.0 || (rose && slope <= 0.0)) {
                break;
            }
        }
    }
    Brute {
        crossing: None,
        peaks,
    }
}

/// Which time-constant relation a generated neuron has.
#[derive(Clone, Copy, Debug)]
pub enum Ratio {
    /// `tau_m == tau_s`.
    Equal,
    /// `tau_m == 2 tau_s`.
    Double,
    /// `tau_m / tau_s` uniform in `[lo, hi]`.
    Range(f64, f64),
    /// `tau_m / tau_s = 1 + s * eps` with `eps` log-uniform in `[1e-7, 1e-3]` and a random sign.
    NearOne,
}

/// Neuron parameters with the given ratio, other fields scattered around the reference values.
pub fn params(ratio: Ratio) -> impl Strategy<Value = NeuronParams> {
    (
        0.5f64..2.0,
        0.0f64..1.0,
        -7.0f64..-3.0,
        any::<bool>(),
        0.5f64..2.0,
        -1.0f64..1.0,
        0.3f64..1.5,
    )
        .prop_map(move |(tau_s, u, log_eps, sign, g_leak, e_leak, theta)| {
            let r = match ratio {
                Ratio::Equal => 1.0,
                Ratio::Double => 2.0,
                Ratio::Range(lo, hi) => lo + (hi - lo) * u,
                Ratio::NearOne => {
                    let eps = 10f64.powf(log_eps);
                    if sign { 1.0 + eps } else { 1.0 - eps }
                }
            };
            NeuronParams {
                tau_m: if matches!(ratio, Ratio::Double) {
                    2.0 * tau_s
                } else if r == 1.0 {
                    tau_s
                } else {
                    r * tau_s
                },
                tau_s,
                g_leak,
                e_leak,
                threshold: e_leak + theta,
            }
        })
}

/// A neuron and 1..=8 inputs with times in `[-1, 4] tau_s` and weights that make firing and
/// silence both common (weights scaled by the drive one input needs to reach threshold).
pub fn neuron(ratio: Ratio) -> impl Strategy<Value = (NeuronParams, Vec<f64>, Vec<f64>)> {
    (
        params(ratio),
        prop::collection::vec((-1.0f64..4.0, -1.5f64..3.0), 1..=8),
    )
        .prop_map(|(p, inputs)| {
            let scale = single_input_threshold_weight(&p);
            let times = inputs.iter().map(|x| x.0 * p.tau_s).collect();
            let weights = inputs.iter().map(|x| x.1 * scale).collect();
            (p, times, weights)
        })
}

/// The weight with which one input alone just reaches threshold (peak of the kernel, at
/// `s* = ln(tau_m / tau_s) / (1/tau_s - 1/tau_m)`, or `tau` for equal constants).
pub fn single_input_threshold_weight(p: &NeuronParams) -> f64 {
    let s_peak = if p.tau_m == p.tau_s {
        p.tau_m
    } else {
        (p.tau_m / p.tau_s).ln() / (1.0 / p.tau_s - 1.0 / p.tau_m)
    };
    let peak = crate::membrane_potential(p, &[0.0], &[1.0], s_peak) - p.e_leak;
    (p.threshold - p.e_leak) / peak
}

/// True if some local maximum before the crossing lies within `margin` (relative) of threshold:
/// the first-crossing time is then ill-conditioned and a brute-force comparison undecidable.
pub fn grazing(params: &NeuronParams, brute: &Brute, margin: f64) -> bool {
    let theta = params.threshold - params.e_leak;
    brute
        .peaks
        .iter()
        .any(|&v| (v - theta).abs() <= margin * theta)
}

/// Proptest configuration with `cases` cases and a fixed seed (override with the environment
/// variable `PROPTEST_RNG_SEED` to explore other inputs); no regression files are written.
pub fn config(cases: u32) -> ProptestConfig {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f11f);
    ProptestConfig {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
