//! The fuzz benchmark: a million (by default) hostile inputs against the frame decoder, the
//! message decoder and the conversions behind them, with counts.
//!
//! ```sh
//! cargo run --release -p spikeloop-transport --example fuzz                 # 1,000,000 inputs, seed 1
//! cargo run --release -p spikeloop-transport --example fuzz -- 5000000 42   # inputs, seed
//! ```
//!
//! The same campaign runs as an ignored test:
//! `cargo test --release -p spikeloop-transport --test fuzz -- --ignored --nocapture`.
//!
//! Four kinds of input, in turn: arbitrary bytes (some of them endless frames) fed in random
//! splits to one long-lived stream decoder; a valid frame damaged like a serial line damages it
//! (bit flips, truncation, duplication, insertion, deletion, or none) and fed to a fresh
//! decoder; arbitrary header bytes under a valid CRC and arbitrary payloads under arbitrary type
//! bytes and flags; valid payloads with the same damage. Every decoded message goes on to the
//! conversions that take a peer's input (network assembly, run requests, result pages, traces,
//! handshake, errors).
//!
//! It exits with code 1 if any damaged frame other than the one sent is accepted or a decoder's
//! buffer ever exceeds its limit; a panic anywhere aborts it. Peak memory (VmHWM) is read from
//! /proc before and after to show that it does not grow with the number of inputs.

#[path = "../tests/fuzzing/mod.rs"]
mod fuzzing;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let report = fuzzing::campaign(n, seed);
    println!("{report}");
    if !report.passed() {
        std::process::exit(1);
    }
}
