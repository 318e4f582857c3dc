//! Round trips between the backend types and the protocol messages, and the checks each end
//! makes on what the other sends.
//!
//! Tolerances: network parameters travel as doubles and must round-trip bit for bit; model times
//! are quantised to ticks and must come back within half a tick (exactly when on the grid).

use proptest::prelude::*;
use spikeloop_backend::{
    BackendError, InputBatch, Layer, MembraneRequest, MembraneTrace, Network, NeuronParams, Record,
    RunOutput, RunStats, SpikeTimes,
};
use spikeloop_transport::conformance::fault::SplitMix64 as SplitMix;
use spikeloop_transport::conformance::golden::golden_frames;
use spikeloop_transport::convert::{
    AssemblyLimits, ConvertError, DeviceInfo, EncodedRun, EncodedTrace, NetworkAssembler,
    RunResultAssembler, TraceAssembler, backend_error, batch_from_request, configure_messages,
    membrane_request, membrane_request_from, network_from_messages, recorded_layers, run_requests,
};
use spikeloop_transport::{Message, TickScale, encode_message, pb};

fn scale() -> TickScale {
    TickScale::new(8.0, 6.0).expect("valid")
}

/// A network of the given layer sizes with weights that exercise every double: tiny, huge,
/// negative, negative zero, subnormal.
fn network(n_inputs: usize, sizes: &[usize], seed: u64) -> Network {
    let mut rng = SplitMix(seed);
    let mut n_prev = n_inputs;
    let specials = [0.0, -0.0, 5e-324, -1e300, 1e-17, 63.0 / 30.0];
    let layers = sizes
        .iter()
        .map(|&size| {
            let n_bias = 1 + (rng.next_u64() % 2) as usize;
            let weights = (0..size * (n_prev + n_bias))
                .map(|i| {
                    if i % 17 == 3 {
                        specials[(i / 17) % specials.len()]
                    } else {
                        (rng.unit() - 0.3) * 4.0
                    }
                })
                .collect();
            let weights = spikeloop_backend_testkit::matrix(size, weights);
            let mut bias_times: Vec<f64> = (0..n_bias).map(|_| rng.unit() * 2.0).collect();
            if n_bias > 1 {
                bias_times[1] = f64::INFINITY;
            }
            n_prev = size;
            Layer {
                size,
                neuron: NeuronParams {
                    tau_m: 1.0 + rng.unit(),
                    ..NeuronParams::REFERENCE
                },
                bias_times,
                weights,
            }
        })
        .collect();
    Network { n_inputs, layers }
}

fn bits(network: &Network) -> Vec<u64> {
    let mut out = vec![network.n_inputs as u64];
    for l in &network.layers {
        out.push(l.size as u64);
        out.extend(l.weights.iter().map(|w| w.to_bits()));
        out.extend(l.bias_times.iter().map(|t| t.to_bits()));
        let p = l.neuron;
        out.extend([p.tau_m, p.tau_s, p.g_leak, p.e_leak, p.threshold].map(f64::to_bits));
    }
    out
}

#[test]
fn network_round_trips_bit_for_bit_at_every_frame_size() {
    let net = network(5, &[120, 3], 7);
    for max in [256, 300, 1000, 1024, 4096, 65536] {
        let messages = configure_messages(&net, max).expect("chunks");
        for m in &messages {
            let wire = encode_message(1, m, max).expect("every frame fits");
            assert!(wire.len() <= spikeloop_transport::frame::max_wire_len(max));
        }
        let back = network_from_messages(&messages, AssemblyLimits::default()).expect("assembles");
        assert_eq!(bits(&back), bits(&net), "max frame size {max}");
    }
    // The smallest frames give many chunks, the largest one per array.
    let small = configure_messages(&net, 256).expect("chunks").len();
    let large = configure_messages(&net, 65536).expect("chunks").len();
    assert!(small > 30 && large == 2 + 4, "{small} / {large}");
}

#[test]
fn chunks_may_arrive_in_any_order() {
    let net = network(3, &[4, 5, 2], 11);
    let mut messages = configure_messages(&net, 256).expect("chunks");
    let commit = messages.pop().expect("commit");
    let begin = messages.remove(0);
    messages.reverse();
    messages.insert(0, begin);
    messages.push(commit);
    let back = network_from_messages(&messages, AssemblyLimits::default()).expect("assembles");
    assert_eq!(bits(&back), bits(&net));
}

#[test]
fn assembler_refuses_incomplete_and_invalid_configurations() {
    let net = network(3, &[4, 2], 3);
    let messages = configure_messages(&net, 256).expect("chunks");
    let Message::ConfigureBegin(begin) = &messages[0] else {
        panic!("starts with ConfigureBegin")
    };
    let chunks: Vec<&pb::ConfigureChunk> = messages
        .iter()
        .filter_map(|m| match m {
            Message::ConfigureChunk(c) => Some(c),
            _ => None,
        })
        .collect();
    let Some(Message::ConfigureCommit(commit)) = messages.last() else {
        panic!("ends with ConfigureCommit")
    };

    let mut a = NetworkAssembler::new(AssemblyLimits::default());
    assert!(matches!(a.chunk(chunks[0]), Err(ConvertError::BadState(_))));
    assert!(matches!(a.commit(commit), Err(ConvertError::BadState(_))));

    // A missing chunk is named at commit, and can still be sent afterwards.
    a.begin(begin).expect("valid begin");
    for c in &chunks[1..] {
        a.chunk(c).expect("valid chunk");
    }
    let err = a
        .commit(&pb::ConfigureCommit {
            value_count: commit.value_count - chunks[0].values.len() as u64,
        })
        .expect_err("incomplete");
    assert!(err.to_string().contains("never written"), "{err}");
    assert!(a.is_configuring());
    a.chunk(chunks[0]).expect("late chunk");
    let (back, ack) = a.commit(commit).expect("complete now");
    assert!(ack.committed && ack.values_received == ack.values_expected);
    assert_eq!(bits(&back), bits(&net));

    // value_count must match what arrived.
    a.begin(begin).expect("valid begin");
    for c in &chunks {
        a.chunk(c).expect("valid chunk");
    }
    assert!(matches!(
        a.commit(&pb::ConfigureCommit { value_count: 1 }),
        Err(ConvertError::InvalidNetwork(_))
    ));

    // Out-of-range chunks name their field.
    let field_of = |r: Result<pb::ConfigureAck, ConvertError>| match r {
        Err(ConvertError::OutOfRange { field, .. }) => field,
        other => panic!("expected OutOfRange, got {other:?}"),
    };
    let mut bad = chunks[0].clone();
    bad.layer = 9;
    assert_eq!(field_of(a.chunk(&bad)), "layer");
    let mut bad = chunks[0].clone();
    bad.offset = u32::MAX;
    assert_eq!(field_of(a.chunk(&bad)), "offset");
    let mut bad = chunks[0].clone();
    bad.target = 7;
    assert_eq!(field_of(a.chunk(&bad)), "target");
    let mut bad = chunks[0].clone();
    bad.values.clear();
    assert_eq!(field_of(a.chunk(&bad)), "values");
    let mut bad = chunks[0].clone();
    bad.values[0] = f64::NAN;
    assert!(matches!(
        a.chunk(&bad),
        Err(ConvertError::InvalidNetwork(_))
    ));
}

#[test]
fn huge_declared_networks_are_refused_before_allocation() {
    let neuron = Some(pb::NeuronParams {
        tau_m: 1.0,
        tau_s: 1.0,
        g_leak: 1.0,
        e_leak: 0.0,
        threshold: 1.0,
    });
    let begin = pb::ConfigureBegin {
        n_inputs: u32::MAX,
        layers: vec![
            pb::LayerShape {
                size: u32::MAX,
                n_bias: u32::MAX,
                neuron,
            };
            3
        ],
        update: false,
    };
    let mut a = NetworkAssembler::new(AssemblyLimits::default());
    assert!(matches!(
        a.begin(&begin),
        Err(ConvertError::DoesNotFit { .. })
    ));
    let limited = AssemblyLimits {
        max_neurons: Some(512),
        ..AssemblyLimits::default()
    };
    let begin = pb::ConfigureBegin {
        n_inputs: 4,
        layers: vec![
            pb::LayerShape {
                size: 600,
                n_bias: 0,
                neuron,
            };
            1
        ],
        update: false,
    };
    let err = NetworkAssembler::new(limited)
        .begin(&begin)
        .expect_err("too many neurons");
    assert_eq!(
        err,
        ConvertError::DoesNotFit {
            resource: "neurons".into(),
            needed: 600,
            available: 512,
            detail: "layer sizes [600]".into(),
        }
    );
    let no_layers = pb::ConfigureBegin {
        n_inputs: 4,
        layers: vec![],
        update: false,
    };
    assert!(NetworkAssembler::new(limited).begin(&no_layers).is_err());
}

#[test]
fn configure_refuses_invalid_networks_and_tiny_frames() {
    let mut net = network(2, &[2], 1);
    let w = &net.layers[0].weights;
    net.layers[0].weights = w
        .slice(spikeloop_backend::ndarray::s![.., ..w.ncols() - 1])
        .to_owned();
    assert!(matches!(
        configure_messages(&net, 1024),
        Err(ConvertError::InvalidNetwork(_))
    ));
    let net = network(2, &[2], 1);
    assert!(matches!(
        configure_messages(&net, 20),
        Err(ConvertError::FrameTooSmall { .. })
    ));
}

fn batch(n_inputs: usize, n_samples: usize, seed: u64) -> InputBatch {
    let mut rng = SplitMix(seed);
    let times = (0..n_inputs * n_samples)
        .map(|i| match i % 11 {
            4 => f64::INFINITY,
            7 => 0.0,
            _ => rng.unit() * 2.5,
        })
        .collect();
    InputBatch::new(n_inputs, times).expect("valid batch")
}

#[test]
fn input_batches_round_trip_within_half_a_tick() {
    let s = scale();
    let input = batch(5, 300, 5);
    for (max, limit) in [(256, None), (1024, Some(7)), (65536, None)] {
        let requests = run_requests(&input, Record::OutputOnly, &s, max, limit).expect("fits");
        let mut times = Vec::new();
        for r in &requests {
            let m = Message::RunRequest(r.clone());
            assert!(m.frame_len() <= max, "frame of {} > {max}", m.frame_len());
            if let Some(l) = limit {
                assert!(r.n_samples <= l);
            }
            let (b, record) = batch_from_request(r, &s, 0, 5).expect("valid request");
            assert_eq!(record, Record::OutputOnly);
            times.extend_from_slice(b.as_slice());
        }
        assert_eq!(times.len(), input.as_slice().len());
        for (a, b) in times.iter().zip(input.as_slice()) {
            if b.is_infinite() {
                assert_eq!(a, b);
            } else {
                assert!((a - b).abs() <= s.tick() / 2.0, "{a} vs {b}");
                // Exactly what the emulator does with an input time: the nearest tick.
                assert_eq!(*a, (b / s.tick()).round_ties_even() * s.tick());
            }
        }
    }
    // Times on the grid are exact; an empty batch needs no request.
    let on_grid: Vec<f64> = (0..10).map(|k| (k * 37) as f64 * s.tick()).collect();
    let b = InputBatch::new(2, on_grid.clone()).expect("valid");
    let r = run_requests(&b, Record::AllLayers, &s, 256, None).expect("fits");
    let (back, _) = batch_from_request(&r[0], &s, 0, 2).expect("valid");
    assert_eq!(back.as_slice(), on_grid.as_slice());
    let empty = InputBatch::new(2, vec![]).expect("valid");
    assert!(
        run_requests(&empty, Record::AllLayers, &s, 256, None)
            .expect("fits")
            .is_empty()
    );
}

#[test]
fn run_requests_are_checked_by_the_device() {
    let s = scale();
    let good = run_requests(&batch(3, 4, 1), Record::AllLayers, &s, 1024, None)
        .expect("fits")
        .remove(0);
    let field_of = |r: Result<(InputBatch, Record), ConvertError>| match r {
        Err(ConvertError::OutOfRange { field, .. }) => field,
        other => panic!("expected OutOfRange, got {other:?}"),
    };
    assert_eq!(field_of(batch_from_request(&good, &s, 0, 4)), "n_inputs");
    let mut bad = good.clone();
    bad.n_samples = u32::MAX; // declares far more than arrived: refused before allocation
    assert_eq!(field_of(batch_from_request(&bad, &s, 0, 3)), "input_codes");
    let mut bad = good.clone();
    bad.n_samples = 0;
    assert_eq!(field_of(batch_from_request(&bad, &s, 0, 3)), "n_samples");
    // A time code beyond the protocol's range names its entry, the time and the range.
    let mut bad = good.clone();
    bad.input_codes[4] = u64::MAX;
    match batch_from_request(&bad, &s, 0, 3) {
        Err(e @ ConvertError::TimeOutOfRange { .. }) => {
            let wire = e.to_error_message(0x20, pb::DeviceState::Configured);
            assert_eq!(wire.field, "input_codes[4]");
            assert_eq!(wire.code, pb::ErrorCode::OutOfRange as i32);
            assert_eq!(wire.min, Some(-(2f64.powi(40))));
            assert_eq!(wire.max, Some(2f64.powi(40)));
            assert!(wire.value.is_some_and(|v| v.abs() > 2f64.powi(40)));
        }
        other => panic!("expected TimeOutOfRange, got {other:?}"),
    }
    // Within the sample window: [0, W) ticks.
    let window = InputBatch::new(2, vec![0.0, 7.0 / 750.0]).expect("valid");
    let r = run_requests(&window, Record::AllLayers, &s, 1024, None)
        .expect("fits")
        .remove(0);
    assert!(batch_from_request(&r, &s, 8, 2).is_ok());
    match batch_from_request(&r, &s, 7, 2) {
        Err(ConvertError::TimeOutOfRange {
            field,
            ticks,
            min,
            max,
            ..
        }) => assert_eq!(
            (field.as_str(), ticks, min, max),
            ("input_codes[1]", 7.0, 0, 6)
        ),
        other => panic!("expected TimeOutOfRange, got {other:?}"),
    }
    let nan = InputBatch::new(1, vec![f64::NEG_INFINITY]).expect("only NaN is refused");
    assert!(run_requests(&nan, Record::AllLayers, &s, 1024, None).is_err());
}

fn run_output(net: &Network, record: Record, n_samples: usize, seed: u64) -> RunOutput {
    let s = scale();
    let (layers, sizes) = recorded_layers(net, record);
    let stride: usize = sizes.iter().sum();
    let mut rng = SplitMix(seed);
    let data: Vec<f64> = (0..n_samples * stride)
        .map(|i| {
            if i % 5 == 2 {
                f64::INFINITY
            } else {
                // On the tick grid, as a device reports them; some slightly negative.
                ((rng.next_u64() % 3000) as f64 - 60.0) * s.tick()
            }
        })
        .collect();
    let mut stats = RunStats::default();
    stats.samples = n_samples;
    stats.spikes = data.iter().filter(|t| t.is_finite()).count() as u64;
    stats.hardware_time_us = Some(100.0 + 48.0 * n_samples as f64);
    stats.lost_events = 3;
    stats.later_spikes = 17;
    RunOutput {
        spikes: SpikeTimes::new(layers, sizes, data).expect("valid"),
        stats,
    }
}

#[test]
fn results_round_trip_exactly_through_pages() {
    let s = scale();
    let net = network(5, &[120, 3], 2);
    for record in [Record::AllLayers, Record::OutputOnly] {
        let out = run_output(&net, record, 40, 9);
        let (_, sizes) = recorded_layers(&net, record);
        let encoded = EncodedRun::new(&out, &sizes, &s, Some(77)).expect("encodes");
        // A page must hold one whole sample: 123 two-byte codes need more than the 256-byte
        // minimum, so a host announces a larger limit (it announces 64 KiB in practice).
        for max in [512, 1024, 65536] {
            let mut host = RunResultAssembler::for_network(&net, record, 40, s);
            let mut pages = 0;
            while let Some(first) = host.next_sample() {
                let page = encoded.page(first, max).expect("fits");
                assert!(Message::RunResult(page.clone()).frame_len() <= max);
                host.add_page(&page).expect("consistent");
                pages += 1;
            }
            assert_eq!(host.noise_position(), Some(77));
            let back = host.finish().expect("complete");
            assert_eq!(back.spikes, out.spikes, "{record:?} at {max}");
            assert_eq!(back.stats, out.stats);
            if max == 65536 && record == Record::OutputOnly {
                assert_eq!(pages, 1);
            }
            if max == 512 && record == Record::AllLayers {
                assert_eq!(pages, 20, "two 123-neuron samples per 512-byte page");
            }
        }
    }
}

#[test]
fn inconsistent_result_pages_are_refused() {
    let s = scale();
    let net = network(2, &[3, 2], 4);
    let out = run_output(&net, Record::AllLayers, 6, 1);
    let encoded = EncodedRun::new(&out, &[3, 2], &s, None).expect("encodes");
    let page = encoded.page(0, 1024).expect("fits");
    let fresh = || RunResultAssembler::for_network(&net, Record::AllLayers, 6, s);
    let refuse = |page: &pb::RunResult| {
        let mut a = fresh();
        assert!(
            matches!(a.add_page(page), Err(ConvertError::BadReply(_))),
            "{page:?}"
        );
    };
    let mut p = page.clone();
    p.total_samples = 7;
    refuse(&p);
    let mut p = page.clone();
    p.recorded_layers = vec![1];
    p.layer_sizes = vec![2];
    refuse(&p);
    let mut p = page.clone();
    p.first_sample = 1;
    refuse(&p);
    let mut p = page.clone();
    p.spike_codes.pop();
    refuse(&p);
    let mut p = page.clone();
    p.n_samples = u32::MAX;
    refuse(&p);
    let mut p = page.clone();
    p.stats = None;
    refuse(&p);
    let mut p = page.clone();
    p.spike_codes[0] = u64::MAX;
    refuse(&p);
    // A page that ends early leaves the assembler waiting for the rest.
    let mut a = fresh();
    let first = encoded.page(0, 90).expect("fits");
    assert!(first.n_samples < 6);
    a.add_page(&first).expect("consistent");
    assert_eq!(a.next_sample(), Some(first.n_samples));
    assert!(a.clone().finish().is_err());
    assert!(encoded.page(6, 1024).is_err());
}

#[test]
fn membrane_requests_and_traces_round_trip() {
    let s = scale();
    let req = MembraneRequest {
        inputs: vec![0.3, f64::INFINITY, 1.7],
        layer: 1,
        neuron: 2,
        duration: 4.0,
    };
    let msg = membrane_request(&req, &s).expect("valid");
    let back = membrane_request_from(&msg, &s, 0, 3).expect("valid");
    assert_eq!((back.layer, back.neuron), (1, 2));
    assert!((back.duration - 4.0).abs() <= s.tick() / 2.0);
    for (a, b) in back.inputs.iter().zip(&req.inputs) {
        assert!(a == b || (a - b).abs() <= s.tick() / 2.0);
    }
    assert!(membrane_request_from(&msg, &s, 0, 2).is_err());
    let zero = MembraneRequest {
        duration: 0.0,
        ..req.clone()
    };
    assert!(membrane_request(&zero, &s).is_err());

    // ADC codes travel as integers, anything else as doubles; both exactly.
    let codes = MembraneTrace {
        t0: 0.0,
        dt: 1.0 / 30.0 / 6.0,
        values: (0..1000).map(|i| f64::from((i * 7) % 1024)).collect(),
    };
    let floats = MembraneTrace {
        t0: 0.25,
        dt: 0.01,
        values: (0..300).map(|i| (f64::from(i) * 0.37).sin()).collect(),
    };
    for trace in [codes, floats] {
        let encoded = EncodedTrace::new(&trace, Some(5));
        for max in [256, 4096] {
            let mut host = TraceAssembler::new(1 << 20);
            while let Some(first) = host.next_value() {
                let page = encoded.page(first, max).expect("fits");
                assert!(Message::MembraneTrace(page.clone()).frame_len() <= max);
                host.add_page(&page).expect("consistent");
            }
            assert_eq!(host.finish().expect("complete"), trace);
        }
    }
    let mut host = TraceAssembler::new(10);
    let long = EncodedTrace::new(
        &MembraneTrace {
            t0: 0.0,
            dt: 1.0,
            values: vec![1.0; 11],
        },
        None,
    );
    assert!(host.add_page(&long.page(0, 1024).expect("fits")).is_err());
}

#[test]
fn device_info_round_trips_and_bad_replies_are_refused() {
    let reply = golden_frames()
        .into_iter()
        .find_map(|f| match f.message {
            Message::HelloReply(r) => Some(r),
            _ => None,
        })
        .expect("a golden HelloReply");
    let info = DeviceInfo::from_hello_reply(&reply).expect("valid");
    assert_eq!(info.to_hello_reply(), reply);
    assert_eq!(info.capabilities.name, "golden-device");
    assert_eq!(info.capabilities.max_neurons, Some(512));
    assert_eq!(info.capabilities.time_resolution_ns, Some(8.0));
    assert_eq!(info.capabilities.tau_s_us, Some(6.0));
    assert_eq!(info.expected_run_time_us(10), 580.0);

    let broken: [fn(&mut pb::HelloReply); 6] = [
        |r| r.capabilities = None,
        |r| r.version = 2,
        |r| r.capabilities.as_mut().expect("set").tick_ns = 0.0,
        |r| r.capabilities.as_mut().expect("set").max_frame_size = 100,
        |r| r.capabilities.as_mut().expect("set").max_requests_in_flight = 0,
        |r| r.capabilities.as_mut().expect("set").max_weight = Some(f64::NAN),
    ];
    for (i, breaks) in broken.iter().enumerate() {
        let mut r = reply.clone();
        breaks(&mut r);
        assert!(
            matches!(
                DeviceInfo::from_hello_reply(&r),
                Err(ConvertError::BadReply(_))
            ),
            "case {i}"
        );
    }
}

#[test]
fn device_errors_become_backend_errors() {
    let state = pb::DeviceState::Configured;
    type Check = fn(&BackendError) -> bool;
    let cases: Vec<(ConvertError, Check)> = vec![
        (
            ConvertError::DoesNotFit {
                resource: "neurons".into(),
                needed: 600,
                available: 512,
                detail: "layer sizes [600]".into(),
            },
            |e| {
                matches!(
                    e,
                    BackendError::DoesNotFit {
                        needed: 600,
                        available: 512,
                        ..
                    }
                )
            },
        ),
        (
            ConvertError::InvalidNetwork("layer 1: weight 3 was never written".into()),
            |e| e.to_string() == "invalid network: layer 1: weight 3 was never written",
        ),
        (
            ConvertError::out_of_range("n_inputs", 3, Some(2.0), Some(2.0)),
            |e| e.to_string() == "invalid input: n_inputs = 3 is out of range; must be 2",
        ),
        (ConvertError::BadState("no network".into()), |e| {
            e.to_string() == "dev failed: bad state: no network"
        }),
    ];
    for (err, check) in cases {
        let wire = err.to_error_message(0x20, state);
        let back = backend_error(&wire, "dev");
        assert!(check(&back), "{err:?} became {back:?}");
        // And the host-side view of the same error agrees (device failures carry the code).
        let direct = err.clone().into_backend_error("dev");
        if !matches!(back, BackendError::Device { .. }) {
            assert_eq!(direct.to_string(), back.to_string(), "{err:?}");
        }
    }
    let not_configured = pb::Error {
        code: pb::ErrorCode::BadState as i32,
        request_type: 0x20,
        state: pb::DeviceState::Ready as i32,
        ..Default::default()
    };
    assert!(matches!(
        backend_error(&not_configured, "dev"),
        BackendError::NotConfigured
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any valid small network survives chunking at any allowed frame size.
    #[test]
    fn any_network_round_trips(
        n_inputs in 1usize..6,
        sizes in prop::collection::vec(1usize..9, 1..4),
        seed in any::<u64>(),
        max in 256usize..2048,
    ) {
        let net = network(n_inputs, &sizes, seed);
        let messages = configure_messages(&net, max).expect("chunks");
        for m in &messages {
            prop_assert!(m.frame_len() <= max);
        }
        let back = network_from_messages(&messages, AssemblyLimits::default()).expect("assembles");
        prop_assert_eq!(bits(&back), bits(&net));
    }

    /// Any finite time within range comes back within half a tick, on-grid times exactly.
    #[test]
    fn any_time_round_trips(times in prop::collection::vec(-1e6f64..1e6, 1..40), k in -100_000i64..100_000) {
        let s = scale();
        let mut codes = Vec::new();
        spikeloop_transport::timecode::encode_times(&times, &s, &mut codes).expect("in range");
        let mut back = Vec::new();
        spikeloop_transport::timecode::decode_times(&codes, &s, &mut back).expect("valid");
        for (a, b) in back.iter().zip(&times) {
            prop_assert!((a - b).abs() <= s.tick() / 2.0 * (1.0 + 1e-9));
        }
        let t = s.to_model(Some(k));
        prop_assert_eq!(s.to_ticks(t).expect("in range"), Some(k));
    }
}
