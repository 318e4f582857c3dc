//! Volley preparation: sorting, silent inputs, reuse.

use crate::{NeuronParams, Volley, spike_time};
use proptest::prelude::*;

/// Reference: finite inputs sorted by (time, original index).
fn reference_sort(times: &[f64]) -> Vec<(f64, u32)> {
    let mut v: Vec<(f64, u32)> = times
        .iter()
        .enumerate()
        .filter(|(_, t)| t.is_finite())
        .map(|(i, &t)| (t, i as u32))
        .collect();
    v.sort_by(|a, b| a.0.partial_cmp(&b.0).expect("finite").then(a.1.cmp(&b.1)));
    v
}

fn check(times: &[f64]) {
    let mut volley = Volley::new();
    volley.prepare(times, &NeuronParams::REFERENCE);
    let expected = reference_sort(times);
    assert_eq!(volley.n_inputs(), times.len());
    let got: Vec<(f64, u32)> = volley
        .sorted_times()
        .iter()
        .copied()
        .zip(volley.order().iter().copied())
        .collect();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        // Equal times (including -0.0 == 0.0) are ordered by index.
        assert!(g.0 == e.0 && g.1 == e.1, "{got:?}\n{expected:?}");
    }
}

#[test]
fn small_cases() {
    check(&[]);
    check(&[f64::INFINITY]);
    check(&[
        1.0,
        f64::INFINITY,
        0.5,
        0.5,
        -2.0,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
    ]);
    check(&[3.0, 2.0, 1.0]);
}

#[test]
fn bucket_and_fallback_paths() {
    // Smooth spread (bucket pass), with ties and silent inputs.
    let spread: Vec<f64> = (0..121)
        .map(|i| {
            if i % 17 == 3 {
                f64::INFINITY
            } else {
                0.15 + 1.85 * (((i * 37) % 101) as f64 / 101.0)
            }
        })
        .collect();
    check(&spread);
    // Strongly clustered: one outlier puts everything else into the first bucket (fallback).
    let mut clustered: Vec<f64> = (0..100)
        .map(|i| 1.0 + 1e-3 * ((i * 7) % 13) as f64)
        .collect();
    clustered.push(1e6);
    check(&clustered);
    // All equal.
    check(&[0.9; 50]);
}

#[test]
fn reuse_across_sizes_and_params() {
    let mut volley = Volley::new();
    let a: Vec<f64> = (0..60).map(|i| ((i * 13) % 60) as f64 * 0.1).collect();
    volley.prepare(&a, &NeuronParams::REFERENCE);
    let w_a = vec![0.2; 60];
    let first = spike_time(&NeuronParams::REFERENCE, &volley, &w_a);
    let other = NeuronParams {
        tau_m: 2.0,
        ..NeuronParams::REFERENCE
    };
    volley.prepare(&[0.3, 0.1], &other);
    assert_eq!(volley.sorted_times(), &[0.1, 0.3]);
    assert_eq!(volley.order(), &[1, 0]);
    assert_eq!(volley.params(), Some(other));
    volley.prepare(&a, &NeuronParams::REFERENCE);
    assert_eq!(spike_time(&NeuronParams::REFERENCE, &volley, &w_a), first);
}

#[test]
fn unprepared_volley_is_silent() {
    let volley = Volley::new();
    assert_eq!(volley.n_inputs(), 0);
    let s = spike_time(&NeuronParams::REFERENCE, &volley, &[]);
    assert_eq!(s.time, f64::INFINITY);
    assert_eq!(s.causal_len, 0);
}

proptest! {
    #![proptest_config(super::support::config(256))]

    #[test]
    fn sorts_like_a_stable_sort(
        raw in prop::collection::vec((0u8..10, -5.0f64..5.0), 0..200),
        grid in any::<bool>(),
    ) {
        // Codes 0 and 1 make silent inputs; `grid` snaps times to a coarse grid to force ties.
        let times: Vec<f64> = raw
            .iter()
            .map(|&(code, t)| match code {
                0 => f64::INFINITY,
                1 => f64::NEG_INFINITY,
                _ if grid => (t * 4.0).round() / 4.0,
                _ => t,
            })
            .collect();
        check(&times);
    }
}
