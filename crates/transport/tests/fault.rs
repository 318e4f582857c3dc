//! Fault injection: the host and the virtual device over a line that flips bits, drops,
//! duplicates, splits and delays bytes and frames.
//!
//! What must hold, call after call: no wrong result is ever accepted (every run, recording and
//! statistic equals what the same backend computes in process, bit for bit), no call waits
//! past its deadlines, and every fault is recovered (no call fails). The device's run counter
//! staying in step with the reference backend's proves that retried requests were executed
//! exactly once. Time is tokio's paused clock: deadlines and delays are simulated, so thousands
//! of timeouts cost no real time.

use std::time::Duration;

use spikeloop_backend::{
    Backend, InputBatch, Layer, MembraneRequest, Network, NeuronParams, Record,
};
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig};
use spikeloop_transport::conformance::fault::SplitMix64 as SplitMix;
use spikeloop_transport::conformance::fault::{FaultConfig, FaultCounts, FaultyLink};
use spikeloop_transport::device::{DeviceConfig, Hangup, VirtualDevice, serve};
use spikeloop_transport::frame::max_wire_len;
use spikeloop_transport::host::{HostConfig, HostCore, LinkCounts};
use spikeloop_transport::link::memory_link;

fn chip() -> EmulatorBackend {
    EmulatorBackend::new(EmulatorConfig {
        chip_seed: 4,
        ..EmulatorConfig::default()
    })
    .expect("emulator")
}

fn network(rng: &mut SplitMix) -> Network {
    let mut layer = |size: usize, n_prev: usize| Layer {
        size,
        neuron: NeuronParams::REFERENCE,
        bias_times: vec![0.9],
        weights: spikeloop_backend_testkit::matrix(
            size,
            (0..size * (n_prev + 1))
                .map(|_| 0.2 + 1.6 * rng.unit())
                .collect(),
        ),
    };
    Network {
        n_inputs: 4,
        layers: vec![layer(8, 4), layer(3, 8)],
    }
}

fn batch(rng: &mut SplitMix, n: usize) -> InputBatch {
    InputBatch::new(4, (0..4 * n).map(|_| 0.1 + 2.0 * rng.unit()).collect()).expect("batch")
}

fn bits(times: &[f64]) -> Vec<u64> {
    times.iter().map(|t| t.to_bits()).collect()
}

/// What a run of the fault test saw.
#[derive(Debug, Default)]
struct Outcome {
    calls: u64,
    wrong: u64,
    failed: u64,
    late: u64,
    faults: FaultCounts,
    link: LinkCounts,
    replayed: u64,
    rejected: u64,
    longest_call: Duration,
    call_bound: Duration,
}

async fn run_through_faults(calls: u64, rate: f64, seed: u64) -> Outcome {
    let device_config = DeviceConfig {
        command_timeout_ms: 20,
        max_frame_size: 4096,
        ..DeviceConfig::default()
    };
    let host_config = HostConfig {
        max_frame_size: 1024,
        baud: 1_000_000,
        margin: Duration::from_millis(10),
        handshake_timeout: Duration::from_millis(50),
        handshake_attempts: 10,
        ..HostConfig::default()
    };
    let (host_end, mut device_end) = memory_link();
    let mut device = VirtualDevice::new(chip(), device_config).expect("device");
    let server = tokio::spawn(async move {
        let _ = serve(&mut device, &mut device_end, Hangup::Stop).await;
        device
    });
    let link = FaultyLink::wrap(
        host_end,
        FaultConfig {
            rate,
            seed,
            // Longer than one deadline (so delays force retries), shorter than all attempts
            // together (so a delayed answer is recoverable).
            max_delay: Duration::from_millis(60),
            ..FaultConfig::default()
        },
    );
    let faults = link.counts_handle();
    let mut host = HostCore::connect(link, host_config).await.expect("connect");
    let mut reference = chip();
    let mut rng = SplitMix(seed);
    let mut out = Outcome::default();
    // The longest a call may take: every attempt of its largest request waits its whole
    // deadline (runs of up to 4 samples; pages and chunks fit 1024-byte frames).
    let info = host.info().clone();
    let budget = host.attempt_budget(
        max_wire_len(info.max_frame_size),
        host.config().max_frame_size as usize,
        info.expected_run_time_us(4),
    );
    let attempts = host.config().retries + 1;
    // A configuration is at most 4 requests, a run at most a request and a page.
    out.call_bound = budget * attempts * 4;

    let mut runs = 0u64;
    let mut configured = false;
    while out.calls < calls {
        let pick = rng.unit();
        let started = tokio::time::Instant::now();
        let ok = if !configured || pick < 0.05 {
            let net = network(&mut rng);
            reference.configure(&net).expect("reference configure");
            configured = true;
            host.configure(&net).await.is_ok()
        } else if pick < 0.80 {
            let n = 1 + (rng.next_u64() % 4) as usize;
            let inputs = batch(&mut rng, n);
            let record = if rng.unit() < 0.5 {
                Record::AllLayers
            } else {
                Record::OutputOnly
            };
            let expected = reference.run(&inputs, record).expect("reference run");
            runs += 1;
            match host.run(&inputs, record).await {
                Ok(got) => {
                    if bits(got.spikes.as_slice()) != bits(expected.spikes.as_slice())
                        || got.spikes.recorded_layers() != expected.spikes.recorded_layers()
                        || got.stats.later_spikes != expected.stats.later_spikes
                    {
                        out.wrong += 1;
                    }
                    true
                }
                Err(e) => {
                    eprintln!("run failed: {e}");
                    false
                }
            }
        } else if pick < 0.85 {
            let request = MembraneRequest {
                inputs: batch(&mut rng, 1).as_slice().to_vec(),
                layer: 1,
                neuron: (rng.next_u64() % 3) as usize,
                duration: 0.5,
            };
            let expected = reference
                .record_membrane(&request)
                .expect("reference trace");
            match host.record_membrane(&request).await {
                Ok(got) => {
                    if got != expected {
                        out.wrong += 1;
                    }
                    true
                }
                Err(e) => {
                    eprintln!("recording failed: {e}");
                    false
                }
            }
        } else if pick < 0.90 {
            let position = rng.next_u64() % 1000;
            reference.set_noise_position(position).expect("reference");
            host.set_noise_position(position).await.is_ok()
        } else {
            match host.stats().await {
                Ok(stats) => {
                    if stats.runs != runs || stats.noise_position != reference.noise_position() {
                        out.wrong += 1;
                    }
                    true
                }
                Err(e) => {
                    eprintln!("stats failed: {e}");
                    false
                }
            }
        };
        let elapsed = started.elapsed();
        out.longest_call = out.longest_call.max(elapsed);
        if elapsed > out.call_bound {
            out.late += 1;
        }
        if !ok {
            out.failed += 1;
        }
        out.calls += 1;
    }
    out.link = host.counts();
    drop(host);
    let device = server.await.expect("device task");
    out.replayed = device.counters().requests_replayed;
    out.rejected = device.counters().frames_rejected;
    out.faults = faults.lock().map(|c| *c).unwrap_or_default();
    out
}

fn report(o: &Outcome) {
    eprintln!(
        "{} calls ({} requests, {} retries, {} timeouts, {} damaged answers, {} late replays discarded): {} wrong results accepted, {} failed, {} past the deadline bound (longest {:?} of {:?}, simulated time)",
        o.calls,
        o.link.requests,
        o.link.retries,
        o.link.timeouts,
        o.link.damaged_frames,
        o.link.stale_frames,
        o.wrong,
        o.failed,
        o.late,
        o.longest_call,
        o.call_bound
    );
    eprintln!(
        "line: {} frames, {} faults ({} bits flipped, {} bytes dropped, {} frames dropped, {} bytes duplicated, {} frames duplicated, {} frames split, {} frames delayed); device: {} frames rejected, {} requests replayed",
        o.faults.frames,
        o.faults.total(),
        o.faults.flipped_bits,
        o.faults.dropped_bytes,
        o.faults.dropped_frames,
        o.faults.duplicated_bytes,
        o.faults.duplicated_frames,
        o.faults.split_frames,
        o.faults.delayed_frames,
        o.rejected,
        o.replayed
    );
}

fn check(o: &Outcome) {
    report(o);
    assert_eq!(o.wrong, 0, "wrong results accepted");
    assert_eq!(o.failed, 0, "unrecovered faults");
    assert_eq!(o.late, 0, "calls past their deadline bound");
    assert_eq!(o.link.deadline_overruns, 0);
    assert!(o.faults.total() > 0);
}

#[tokio::test(start_paused = true)]
async fn two_thousand_calls_at_one_percent_faults() {
    let o = run_through_faults(2_000, 0.01, 7).await;
    check(&o);
}

#[tokio::test(start_paused = true)]
async fn five_hundred_calls_at_five_percent_faults() {
    let o = run_through_faults(500, 0.05, 11).await;
    check(&o);
    assert!(
        o.link.retries > 0 && o.replayed > 0,
        "faults were recovered by retries and replays"
    );
}

/// The full run of the acceptance criterion: 10,000 calls at 1 %.
#[tokio::test(start_paused = true)]
async fn ten_thousand_calls_at_one_percent_faults() {
    let o = run_through_faults(10_000, 0.01, 1).await;
    check(&o);
}
