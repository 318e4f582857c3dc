//! The neuron integrator against the general solver of `spikeloop-lif` and its own invariants.

use super::*;
use spikeloop_backend_testkit::TestRng;
use spikeloop_lif::{NeuronParams, membrane_potential, spike_time_sorted};

fn first_spike(c: &NeuronConsts, times: &[f64], weights: &[f64]) -> (f64, Vec<f64>) {
    let input = NeuronInput { times, weights };
    let mut out = Vec::new();
    integrate(c, c.theta, &input, 1e9, 100, &mut out);
    (out.first().copied().unwrap_or(f64::INFINITY), out)
}

fn lif_params(c: &NeuronConsts) -> NeuronParams {
    NeuronParams {
        tau_m: c.tau_m,
        tau_s: c.tau_s,
        g_leak: 1.0 / c.tau_m,
        e_leak: 0.0,
        threshold: c.theta,
    }
}

#[test]
fn first_spike_agrees_with_the_general_lif_solver() {
    let mut rng = TestRng::new(3);
    let mut fired = 0;
    let ratios = [1.0, 1.0 + 1e-9, 1.0 + 5e-4, 0.93, 1.1, 0.5, 2.0, 1.37];
    for trial in 0..400 {
        let ratio = ratios[trial % ratios.len()];
        let tau_s = 0.8 + 0.4 * rng.uniform(0.0, 1.0);
        let c = NeuronConsts::new(
            tau_s * ratio,
            tau_s,
            0.9 + 0.2 * rng.uniform(0.0, 1.0),
            0.0,
            0.3,
        );
        let n = 1 + (rng.uniform(0.0, 1.0) * 40.0) as usize;
        let mut times: Vec<f64> = (0..n).map(|_| 3.0 * rng.uniform(0.0, 1.0)).collect();
        times.sort_by(f64::total_cmp);
        let weights: Vec<f64> = (0..n)
            .map(|_| (rng.uniform(0.0, 1.0) - 0.3) * 4.0 / (n as f64).sqrt())
            .collect();
        let ours = first_spike(&c, &times, &weights).0;
        let theirs = spike_time_sorted(&lif_params(&c), &times, &weights).time;
        if theirs.is_finite() {
            fired += 1;
            assert!(
                (ours - theirs).abs() < 1e-11,
                "trial {trial}: ours {ours}, lif {theirs}"
            );
        } else {
            assert_eq!(ours, f64::INFINITY, "trial {trial}");
        }
    }
    assert!(fired > 150, "only {fired} of 400 trials fired");
}

#[test]
fn lockstep_first_spikes_and_continuations_match_the_sequential_integrator() {
    let mut rng = TestRng::new(17);
    for trial in 0..40 {
        // Group sizes around and beyond the vector widths, up to a hidden layer's size.
        let m = [1, 2, 3, 5, 8, 9, 17, 64, 121][trial % 9];
        // Every eighth trial has no events at all (only a threshold below rest fires).
        let n = if trial % 8 == 7 {
            0
        } else {
            1 + (rng.uniform(0.0, 1.0) * 30.0) as usize
        };
        let mut times: Vec<f64> = (0..n).map(|_| 3.0 * rng.uniform(0.0, 1.0)).collect();
        times.sort_by(f64::total_cmp);
        if trial % 3 == 0 && n > 2 {
            times[1] = times[0]; // simultaneous events
        }
        // Some neurons with equal time constants, and some with a threshold below rest.
        let consts: Vec<NeuronConsts> = (0..m)
            .map(|i| {
                let tau_s = 0.8 + 0.4 * rng.uniform(0.0, 1.0);
                let tau_m = if i % 7 == 3 {
                    tau_s
                } else {
                    0.8 + 0.4 * rng.uniform(0.0, 1.0)
                };
                let theta = if i % 11 == 5 {
                    -0.1
                } else {
                    0.9 + 0.2 * rng.uniform(0.0, 1.0)
                };
                NeuronConsts::new(
                    tau_m,
                    tau_s,
                    theta,
                    0.1 * (rng.uniform(0.0, 1.0) - 0.5),
                    0.05 + 0.3 * rng.uniform(0.0, 1.0),
                )
            })
            .collect();
        let thetas: Vec<f64> = consts.iter().map(|c| c.theta).collect();
        let weights: Vec<f64> = (0..m * n)
            .map(|_| (rng.uniform(0.0, 1.0) - 0.2) * 8.0 / (n as f64).sqrt())
            .collect();
        // Event e comes from source e; the lockstep form takes the weights source-major.
        let sources: Vec<u32> = (0..n as u32).collect();
        let by_source: Vec<f64> = (0..n * m).map(|x| weights[(x % m) * n + x / m]).collect();
        let mut buf = Lockstep::default();
        let mut firsts = Vec::new();
        let t_end = 6.0;
        let columns = Columns::new(&consts);
        let group = Group {
            consts: &consts,
            cols: &columns,
            thetas: &thetas,
            times: &times,
            sources: &sources,
            weights: &by_source,
            t_end,
        };
        first_spikes(&group, &mut buf, &mut firsts);
        // The build for any processor gives the same bits as the one chosen at run time.
        let mut portable = Vec::new();
        first_spikes_portable(&group, &mut buf, &mut portable);
        assert_eq!(portable, firsts, "trial {trial}");
        for i in 0..m {
            let input = NeuronInput {
                times: &times,
                weights: &weights[i * n..(i + 1) * n],
            };
            let mut sequential = Vec::new();
            integrate(&consts[i], thetas[i], &input, t_end, 50, &mut sequential);
            let first = sequential.first().copied().unwrap_or(f64::INFINITY);
            assert_eq!(
                firsts[i].t.to_bits(),
                first.to_bits(),
                "trial {trial} neuron {i}"
            );
            if first.is_finite() {
                let mut resumed = vec![firsts[i].t];
                let state = firsts[i].state_after(&consts[i]);
                if state.release < t_end {
                    integrate_from(
                        &consts[i],
                        thetas[i],
                        &input,
                        t_end,
                        50,
                        state,
                        &mut resumed,
                    );
                }
                assert_eq!(resumed, sequential, "trial {trial} neuron {i}");
            }
        }
    }
}

#[test]
fn clock_tick_tables_agree_with_direct_factors_and_the_sequential_integrator() {
    let mut rng = TestRng::new(29);
    let tick = 1.0 / 750.0;
    let m = 40;
    // Time-constant ratios from 0.6 to 1.6, and some equal ones (the kernel's series).
    let consts: Vec<NeuronConsts> = (0..m)
        .map(|i| {
            let tau_s = 0.8 + 0.4 * rng.uniform(0.0, 1.0);
            let ratio = if i % 5 == 0 {
                1.0
            } else {
                0.6 + rng.uniform(0.0, 1.0)
            };
            NeuronConsts::new(
                tau_s * ratio,
                tau_s,
                0.9 + 0.2 * rng.uniform(0.0, 1.0),
                0.0,
                0.3,
            )
        })
        .collect();
    let t_end = 6.0;
    let columns = Columns::new(&consts).with_ticks(tick, t_end);
    let table = columns.ticks.as_deref().expect("a clock gives tables");
    for n in [0, 1, 2, 7, 63, 64, 65, 130, 1234, 4499, 4500] {
        let gap = n as f64 * tick;
        let rows = table.rows(gap).expect("a whole number of ticks");
        for i in 0..m {
            let (em, es, k) = columns.decay(i, gap);
            let composed = table.factors(rows, i);
            if n < LOW {
                assert_eq!(composed, [em, es, k], "{n} ticks, neuron {i}");
            }
            // (The direct `K` carries up to ~2e-15 relative error itself, by cancellation
            // just beyond the series' range.)
            for (a, b) in composed.into_iter().zip([em, es, k]) {
                assert!(
                    (a - b).abs() <= 1e-14 * b,
                    "{n} ticks, neuron {i}: {a} vs {b}"
                );
            }
        }
    }
    // Gaps between ticks, and beyond the tables, are left to the exponentials.
    assert_eq!(table.rows(2.5 * tick), None);
    assert_eq!(table.rows(t_end + LOW as f64 * tick), None);
    // Events on the clock grid (some simultaneous, some one tick apart): the tables give the
    // first spikes of the exact integration to rounding.
    let no_ticks = Columns::new(&consts);
    for trial in 0..20 {
        let n = 5 + (rng.uniform(0.0, 1.0) * 25.0) as usize;
        let mut times: Vec<f64> = (0..n)
            .map(|_| (rng.uniform(0.0, 1.0) * 2.0 / tick).round() * tick)
            .collect();
        times.sort_by(f64::total_cmp);
        for e in 1..n {
            if e % 4 == 0 {
                times[e] = times[e - 1] + tick;
            }
        }
        let weights: Vec<f64> = (0..m * n)
            .map(|_| (rng.uniform(0.0, 1.0) - 0.2) * 8.0 / (n as f64).sqrt())
            .collect();
        let sources: Vec<u32> = (0..n as u32).collect();
        let thetas: Vec<f64> = consts.iter().map(|c| c.theta).collect();
        let run = |cols: &Columns| {
            let group = Group {
                consts: &consts,
                cols,
                thetas: &thetas,
                times: &times,
                sources: &sources,
                weights: &weights,
                t_end,
            };
            let mut firsts = Vec::new();
            first_spikes(&group, &mut Lockstep::default(), &mut firsts);
            firsts
        };
        let (tabled, direct) = (run(&columns), run(&no_ticks));
        for (i, (a, b)) in tabled.iter().zip(&direct).enumerate() {
            assert_eq!(a.t.is_finite(), b.t.is_finite(), "trial {trial} neuron {i}");
            if a.t.is_finite() {
                assert!((a.t - b.t).abs() < 1e-12, "trial {trial} neuron {i}");
            }
        }
        assert!(
            direct.iter().any(|f| f.t.is_finite()),
            "trial {trial}: no spikes"
        );
    }
}

#[test]
fn later_spikes_follow_reset_and_refractoriness() {
    // One strong input: the neuron fires, is held at reset for t_ref, then the remaining
    // current drives it over threshold again.
    let c = NeuronConsts::new(1.0, 1.0, 1.0, 0.0, 0.2);
    let (first, all) = first_spike(&c, &[0.1], &[20.0]);
    assert!(all.len() >= 2, "{all:?}");
    assert_eq!(first, all[0]);
    for pair in all.windows(2) {
        assert!(pair[1] >= pair[0] + c.t_ref, "{all:?}");
    }
    // The second crossing: the membrane from reset at release, driven by the decayed current.
    let release = all[0] + c.t_ref;
    let j = 20.0 * (-(release - 0.1)).exp();
    let params = lif_params(&c);
    let second = spike_time_sorted(&params, &[release], &[j]).time;
    assert!((all[1] - second).abs() < 1e-10, "{} vs {second}", all[1]);
    // A weak input fires once at most.
    let (_, all) = first_spike(&c, &[0.1], &[3.0]);
    assert_eq!(all.len(), 1);
}

#[test]
fn membrane_replay_matches_lif_before_the_spike_and_resets_after() {
    let c = NeuronConsts::new(1.05, 0.97, 1.0, -0.1, 0.3);
    let times = [0.2, 0.5, 0.9];
    let weights = [2.0, 1.5, -0.4];
    let (first, spikes) = first_spike(&c, &times, &weights);
    assert!(first.is_finite());
    let grid: Vec<f64> = (0..400).map(|i| i as f64 * 0.01).collect();
    let v = membrane_at(&c, &times, &weights, &spikes, &grid);
    let params = lif_params(&c);
    for (&t, &vm) in grid.iter().zip(&v) {
        if t < first {
            let expect = membrane_potential(&params, &times, &weights, t);
            assert!((vm - expect).abs() < 1e-12, "t = {t}: {vm} vs {expect}");
        } else if t < first + c.t_ref {
            assert_eq!(vm, c.v_reset, "t = {t}");
        }
    }
    let below: f64 = grid
        .iter()
        .zip(&v)
        .filter(|(t, _)| **t < first)
        .map(|(_, v)| *v)
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(below < 1.0 && below > 0.95, "peak before the spike {below}");
}
