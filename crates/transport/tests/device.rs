//! The virtual device and the host over an in-memory link: results bit-identical to the backend
//! in process, exactly-once execution under retries, typed errors, and the state machine.

use spikeloop_backend::{
    Backend, BackendError, InputBatch, Layer, MembraneRequest, Network, NeuronParams, Record,
};
use spikeloop_emulator::{EmulatorBackend, EmulatorConfig};
use spikeloop_transport::conformance::fault::SplitMix64 as SplitMix;
use spikeloop_transport::device::{DeviceConfig, VirtualDevice};
use spikeloop_transport::frame::{Flags, Frame, FrameDecoder, Header, encode_frame};
use spikeloop_transport::host::DeviceBackend;
use spikeloop_transport::host::{HostConfig, HostCore, HostError};
use spikeloop_transport::link::memory_link;
use spikeloop_transport::messages::{Message, MessageType, decode_message, encode_message, pb};

fn chip(chip_seed: u64) -> EmulatorBackend {
    EmulatorBackend::new(EmulatorConfig {
        chip_seed,
        ..EmulatorConfig::default()
    })
    .expect("emulator")
}

/// A Yin-Yang-sized network (20 inputs, 30 hidden with 5 biases, 3 outputs with 1 bias).
fn network(seed: u64) -> Network {
    let mut rng = SplitMix(seed);
    let mut layer = |size: usize, n_prev: usize, n_bias: usize, lo: f64| Layer {
        size,
        neuron: NeuronParams::REFERENCE,
        bias_times: (0..n_bias).map(|_| 0.9).collect(),
        weights: spikeloop_backend_testkit::matrix(
            size,
            (0..size * (n_prev + n_bias))
                .map(|_| lo + 1.8 * rng.unit())
                .collect(),
        ),
    };
    Network {
        n_inputs: 20,
        layers: vec![layer(30, 20, 5, -0.3), layer(3, 30, 1, -0.5)],
    }
}

fn batch(seed: u64, n: usize) -> InputBatch {
    let mut rng = SplitMix(seed);
    let times = (0..n * 20)
        .map(|i| {
            if i % 7 == 6 {
                f64::INFINITY
            } else {
                0.15 + 1.85 * rng.unit()
            }
        })
        .collect();
    InputBatch::new(20, times).expect("batch")
}

fn bits(times: &[f64]) -> Vec<u64> {
    times.iter().map(|t| t.to_bits()).collect()
}

#[test]
fn runs_through_the_device_are_bit_identical_to_the_backend_in_process() {
    let mut local = chip(3);
    let mut remote =
        DeviceBackend::in_process(chip(3), DeviceConfig::default(), HostConfig::default())
            .expect("in-process device");
    assert_eq!(
        remote.capabilities().max_weight,
        local.capabilities().max_weight
    );
    assert_eq!(remote.noise_position(), Some(0));
    for (k, record) in [Record::AllLayers, Record::OutputOnly, Record::AllLayers]
        .into_iter()
        .enumerate()
    {
        let net = network(k as u64);
        local.configure(&net).expect("configure");
        remote.configure(&net).expect("configure");
        let inputs = batch(10 + k as u64, 50 + 300 * k);
        let a = local.run(&inputs, record).expect("run");
        let b = remote.run(&inputs, record).expect("run");
        assert_eq!(a.spikes.recorded_layers(), b.spikes.recorded_layers());
        assert_eq!(
            bits(a.spikes.as_slice()),
            bits(b.spikes.as_slice()),
            "run {k}"
        );
        assert_eq!(a.stats.spikes, b.stats.spikes);
        assert_eq!(a.stats.later_spikes, b.stats.later_spikes);
        assert_eq!(a.stats.lost_events, b.stats.lost_events);
        assert_eq!(a.stats.hardware_time_us, b.stats.hardware_time_us);
        assert_eq!(local.noise_position(), remote.noise_position());
    }
    let request = MembraneRequest {
        inputs: batch(99, 1).as_slice().to_vec(),
        layer: 1,
        neuron: 2,
        duration: 4.0,
    };
    let a = local.record_membrane(&request).expect("trace");
    let b = remote.record_membrane(&request).expect("trace");
    assert_eq!(a, b);
    // Rewinding the noise replays a run exactly.
    remote.set_noise_position(1).expect("rewind");
    local.set_noise_position(1).expect("rewind");
    let inputs = batch(5, 20);
    let a = local.run(&inputs, Record::AllLayers).expect("run");
    let b = remote.run(&inputs, Record::AllLayers).expect("run");
    assert_eq!(bits(a.spikes.as_slice()), bits(b.spikes.as_slice()));
    let stats = remote.device_stats().expect("stats");
    assert_eq!(stats.runs, 4);
    assert_eq!(stats.requests_replayed, 0);
    assert_eq!(remote.link_counts().retries, 0);
}

#[test]
fn small_frames_split_configurations_and_page_results() {
    // A device with the smallest frames: chunks, several run requests, many pages. The noise
    // differs from one big run (several runs), so compare against the same splitting locally.
    let device = DeviceConfig {
        max_frame_size: 256,
        ..DeviceConfig::default()
    };
    let host = HostConfig {
        max_frame_size: 256,
        ..HostConfig::default()
    };
    let mut remote = DeviceBackend::in_process(chip(1), device, host).expect("device");
    let net = network(4);
    remote.configure(&net).expect("configure");
    let inputs = batch(8, 12);
    let out = remote.run(&inputs, Record::AllLayers).expect("run");
    assert_eq!(out.spikes.n_samples(), 12);
    let counts = remote.link_counts();
    assert!(counts.requests > 30, "{counts:?}");
    // A silent network is still a valid result; a wrong input count is refused as invalid input.
    let wrong = InputBatch::new(3, vec![0.5; 6]).expect("batch");
    assert!(matches!(
        remote.run(&wrong, Record::AllLayers),
        Err(BackendError::InvalidInput(_))
    ));
}

#[test]
fn errors_map_onto_backend_errors() {
    let mut remote =
        DeviceBackend::in_process(chip(1), DeviceConfig::default(), HostConfig::default())
            .expect("device");
    // Before any configuration: not configured (the host knows, and so does the device).
    assert!(matches!(
        remote.run(&batch(1, 2), Record::AllLayers),
        Err(BackendError::NotConfigured)
    ));
    let too_big = Network {
        n_inputs: 2,
        layers: vec![Layer {
            size: 600,
            neuron: NeuronParams::REFERENCE,
            bias_times: vec![],
            weights: spikeloop_backend::ndarray::Array2::from_elem((600, 2), 0.5),
        }],
    };
    // What the device announced (neurons, fit rules, sample window) is checked on the host:
    // an impossible request fails before anything is sent.
    let sent = remote.link_counts().requests;
    match remote.configure(&too_big) {
        Err(BackendError::DoesNotFit {
            needed, available, ..
        }) => assert_eq!((needed, available), (600, 512)),
        other => panic!("expected DoesNotFit, got {other:?}"),
    }
    // More sources than 64 merged circuits of 128 take.
    let wide_fan_in = Network {
        n_inputs: 64 * 128 + 1,
        layers: vec![Layer {
            size: 3,
            neuron: NeuronParams::REFERENCE,
            bias_times: vec![],
            weights: spikeloop_backend::ndarray::Array2::from_elem((3, 64 * 128 + 1), 0.5),
        }],
    };
    match remote.configure(&wide_fan_in) {
        Err(BackendError::DoesNotFit {
            resource,
            needed,
            available,
            ..
        }) => assert_eq!(
            (resource.as_str(), needed, available),
            ("merged circuits per neuron", 65, 64)
        ),
        other => panic!("expected DoesNotFit, got {other:?}"),
    }
    assert_eq!(remote.link_counts().requests, sent, "nothing was sent");
    remote.configure(&network(1)).expect("configure");
    let sent = remote.link_counts().requests;
    let late = InputBatch::new(20, vec![9.5; 20]).expect("batch");
    match remote.run(&late, Record::AllLayers) {
        Err(BackendError::InvalidInput(m)) => assert!(
            m.contains("sample 0, input 0: time 9.5 tau_s") && m.contains("sample window"),
            "{m}"
        ),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert_eq!(remote.link_counts().requests, sent, "nothing was sent");
    // The same refusals come from the device itself, for a host that does not check.
    let mut device = VirtualDevice::new(chip(1), DeviceConfig::default()).expect("device");
    exchange(
        &mut device,
        &request(
            1,
            Message::Hello(spikeloop_transport::convert::hello("t", 256, 9)),
        ),
    );
    let begin = spikeloop_transport::convert::configure_messages(&wide_fan_in, 1 << 18)
        .expect("messages")
        .remove(0);
    let (_, frames) = exchange(&mut device, &request(2, begin));
    let e = error_of(&frames[0]);
    assert_eq!(
        e.code,
        pb::ErrorCode::DoesNotFit as i32,
        "refused at ConfigureBegin"
    );
    assert_eq!(e.resource, "merged circuits per neuron");
    assert!(frames[0].len() <= 256);
    // Recording a neuron that does not exist.
    let request = MembraneRequest {
        inputs: vec![0.5; 20],
        layer: 1,
        neuron: 7,
        duration: 1.0,
    };
    match remote.record_membrane(&request) {
        Err(BackendError::InvalidInput(m)) => assert!(m.contains("neuron"), "{m}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

/// Feeds one request frame to a device and returns the decoded answers.
fn exchange<B: Backend>(device: &mut VirtualDevice<B>, wire: &[u8]) -> (Vec<u8>, Vec<Frame>) {
    let mut out = Vec::new();
    device.receive(wire, &mut out);
    let frames = FrameDecoder::new(1 << 20)
        .decode(&out)
        .into_iter()
        .map(|f| f.expect("device frames are intact"))
        .collect();
    (out, frames)
}

fn request(id: u32, message: Message) -> Vec<u8> {
    encode_message(id, &message, 1 << 20).expect("encodes")
}

fn error_of(frame: &Frame) -> pb::Error {
    match decode_message(frame).expect("valid") {
        Message::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn duplicates_are_replayed_not_executed_again() {
    let mut device = VirtualDevice::new(chip(2), DeviceConfig::default()).expect("device");
    let hello = request(
        1,
        Message::Hello(spikeloop_transport::convert::hello("test", 65536, 7)),
    );
    let (first, _) = exchange(&mut device, &hello);
    let (again, _) = exchange(&mut device, &hello);
    assert_eq!(
        first, again,
        "a repeated Hello is executed again and answers the same"
    );
    let net = network(2);
    for (i, m) in spikeloop_transport::convert::configure_messages(&net, 1 << 18)
        .expect("messages")
        .into_iter()
        .enumerate()
    {
        let (_, frames) = exchange(&mut device, &request(2 + i as u32, m));
        assert!(matches!(
            decode_message(&frames[0]),
            Ok(Message::ConfigureAck(_))
        ));
    }
    let scale = device.info().scale;
    let run = spikeloop_transport::convert::run_requests(
        &batch(3, 4),
        Record::AllLayers,
        &scale,
        1 << 18,
        None,
    )
    .expect("requests")
    .remove(0);
    let wire = request(100, Message::RunRequest(run.clone()));
    let (a, _) = exchange(&mut device, &wire);
    let (b, _) = exchange(&mut device, &wire);
    assert_eq!(a, b);
    assert_eq!(device.counters().runs, 1);
    assert_eq!(
        device.counters().requests_replayed,
        1,
        "only the run is replayed; Hello never is"
    );
    assert_eq!(device.backend().noise_position(), Some(1));
    // The same id with another payload is a new request.
    let mut other = run;
    other.output_only = true;
    exchange(&mut device, &request(100, Message::RunRequest(other)));
    assert_eq!(device.counters().runs, 2);
}

#[test]
fn damaged_oversized_and_unknown_frames() {
    let config = DeviceConfig {
        max_frame_size: 512,
        ..DeviceConfig::default()
    };
    let mut device = VirtualDevice::new(chip(2), config).expect("device");
    // Before Hello only Hello is allowed.
    let (_, frames) = exchange(
        &mut device,
        &request(5, Message::StatsRequest(pb::StatsRequest {})),
    );
    let e = error_of(&frames[0]);
    assert_eq!(e.code, pb::ErrorCode::BadState as i32);
    assert_eq!(e.state, pb::DeviceState::PowerOn as i32);
    exchange(
        &mut device,
        &request(
            1,
            Message::Hello(spikeloop_transport::convert::hello("t", 65536, 8)),
        ),
    );
    // A bad CRC: dropped unexecuted, counted, and answered at once with a FRAME_DAMAGED notice
    // under request id 0 (its own id cannot be trusted).
    let mut wire = request(2, Message::StatsRequest(pb::StatsRequest {}));
    wire[3] ^= 0x10;
    let (_, frames) = exchange(&mut device, &wire);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].header.request_id, 0);
    assert_eq!(
        error_of(&frames[0]).code,
        pb::ErrorCode::FrameDamaged as i32
    );
    assert_eq!(device.counters().frames_rejected, 1);
    assert_eq!(
        device.counters().requests_executed,
        2,
        "only the StatsRequest in POWER_ON and the Hello ran"
    );
    // Oversized: discarded, answered once with FRAME_TOO_LARGE and request id 0.
    let big = encode_frame(
        &Header::new(MessageType::ConfigureChunk.byte(), 3, Flags::NONE),
        &[7u8; 2000],
    )
    .expect("encodes");
    let (_, frames) = exchange(&mut device, &big);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].header.request_id, 0);
    assert_eq!(
        error_of(&frames[0]).code,
        pb::ErrorCode::FrameTooLarge as i32
    );
    // Unknown type, an answer type sent to the device, a request marked as a response.
    for (ty, flags, code) in [
        (0x03, Flags::NONE, pb::ErrorCode::UnknownMessageType),
        (0x21, Flags::RESPONSE, pb::ErrorCode::UnknownMessageType),
        (0x40, Flags::RESPONSE, pb::ErrorCode::MalformedPayload),
    ] {
        let wire = encode_frame(&Header::new(ty, 9, flags), &[]).expect("encodes");
        let (_, frames) = exchange(&mut device, &wire);
        let e = error_of(&frames[0]);
        assert_eq!(e.code, code as i32, "type {ty:#x}");
        assert_eq!(frames[0].header.request_id, 9);
        assert_eq!(e.request_type, ty as u32);
    }
    // A payload that is not a message of its type.
    let wire =
        encode_frame(&Header::new(0x20, 10, Flags::NONE), &[0x22, 0x05, 0x01]).expect("encodes");
    let (_, frames) = exchange(&mut device, &wire);
    assert_eq!(
        error_of(&frames[0]).code,
        pb::ErrorCode::MalformedPayload as i32
    );
    // Still alive and counting.
    let (_, frames) = exchange(
        &mut device,
        &request(11, Message::StatsRequest(pb::StatsRequest {})),
    );
    let Ok(Message::DeviceStats(stats)) = decode_message(&frames[0]) else {
        panic!("stats expected");
    };
    assert_eq!(stats.state, pb::DeviceState::Ready as i32);
    assert_eq!(stats.frames_rejected, 2);
}

/// What a served virtual device does when the first run request reaches it.
#[derive(Clone, Copy)]
enum AtFirstRun {
    /// It powers off: its end of the link goes away.
    Vanish,
    /// It power-cycles after the configuration, just before the run arrives: a fresh device
    /// (state POWER_ON) answers.
    Restart,
}

/// Serves a virtual device on `device_end` until the host hangs up or the first run request
/// makes it vanish.
fn serve_until_run(
    mut device_end: tokio::io::DuplexStream,
    at_run: AtFirstRun,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut device = VirtualDevice::new(chip(1), DeviceConfig::default()).expect("device");
        let mut buf = vec![0u8; 1 << 16];
        let mut out = Vec::new();
        let mut watch = FrameDecoder::new(1 << 20);
        loop {
            let n = device_end.read(&mut buf).await.expect("read");
            if n == 0 {
                return;
            }
            let run = watch
                .decode(&buf[..n])
                .into_iter()
                .flatten()
                .any(|f| f.header.message_type == MessageType::RunRequest.byte());
            if run {
                match at_run {
                    AtFirstRun::Vanish => return,
                    AtFirstRun::Restart => {
                        device =
                            VirtualDevice::new(chip(1), DeviceConfig::default()).expect("device");
                    }
                }
            }
            out.clear();
            device.receive(&buf[..n], &mut out);
            device_end.write_all(&out).await.expect("write");
        }
    })
}

#[tokio::test]
async fn disconnects_and_device_resets_are_reported_clearly() {
    // A device that powers off (its end of the link goes away).
    let (host_end, device_end) = memory_link();
    let task = serve_until_run(device_end, AtFirstRun::Vanish);
    let mut core = HostCore::connect(host_end, HostConfig::default())
        .await
        .expect("connect");
    core.configure(&network(1)).await.expect("configure");
    let err = core
        .run(&batch(1, 3), Record::AllLayers)
        .await
        .expect_err("disconnected");
    task.await.expect("task");
    assert!(matches!(err, HostError::Disconnected { .. }), "{err}");
    let err = err.into_backend_error("dev");
    let text = err.to_string();
    assert!(
        matches!(err, BackendError::Disconnected { .. }) && text.contains("disconnected"),
        "{text}"
    );

    // A device that restarts between two calls answers in state POWER_ON.
    let (host_end, device_end) = memory_link();
    let task = serve_until_run(device_end, AtFirstRun::Restart);
    let mut core = HostCore::connect(host_end, HostConfig::default())
        .await
        .expect("connect");
    core.configure(&network(1)).await.expect("configure");
    let err = core
        .run(&batch(1, 3), Record::AllLayers)
        .await
        .expect_err("reset");
    assert!(matches!(err, HostError::DeviceReset { .. }), "{err}");
    assert!(err.to_string().contains("restarted"));
    let err = err.into_backend_error("dev");
    assert!(matches!(err, BackendError::Restarted { .. }), "{err}");
    drop(core);
    task.await.expect("task");
}

#[tokio::test]
async fn an_incompatible_version_range_is_refused_clearly() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (host_end, mut device_end) = memory_link();
    // A device that speaks only version 2.
    let task = tokio::spawn(async move {
        let mut decoder = FrameDecoder::new(65536);
        let mut buf = vec![0u8; 4096];
        loop {
            let n = device_end.read(&mut buf).await.expect("read");
            if let Some(frame) = decoder.decode(&buf[..n]).into_iter().flatten().next() {
                let e = pb::Error {
                    code: pb::ErrorCode::UnsupportedVersion as i32,
                    message: "protocol versions do not overlap".into(),
                    request_type: 1,
                    min: Some(2.0),
                    max: Some(2.0),
                    ..Default::default()
                };
                let wire = encode_message(frame.header.request_id, &Message::Error(e), 65536)
                    .expect("encodes");
                device_end.write_all(&wire).await.expect("write");
                return;
            }
        }
    });
    let err = HostCore::connect(host_end, HostConfig::default())
        .await
        .expect_err("refused");
    task.await.expect("task");
    assert!(
        matches!(
            err,
            HostError::IncompatibleVersion {
                device_min: 2,
                device_max: 2
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("1..=1") && err.to_string().contains("2..=2"));
}

/// The virtual device announces the timing and rows of the backend it serves, not constants.
#[test]
fn the_device_describes_the_backend_it_serves() {
    let mut config = EmulatorConfig::default();
    config.timing.batch_overhead_us = 40.0;
    config.timing.sample_window_tau = 4.0;
    let chip = EmulatorBackend::new(config).expect("chip");
    let device = DeviceConfig::serving(&chip);
    assert_eq!(device.sample_window_us, 4.0 * 6.0);
    assert_eq!(device.batch_overhead_us, 40.0);
    assert_eq!(device.synapse_rows, Some(512));
    let remote = DeviceBackend::in_process(chip, device, HostConfig::default()).expect("device");
    let caps = remote.capabilities();
    assert_eq!(caps.batch_overhead_us, Some(40.0));
    assert!(caps.features.noise_position && caps.features.membrane_recording);
    let ideal = DeviceConfig::serving(&spikeloop_backend::IdealBackend::new());
    assert_eq!(ideal.synapse_rows, None);
}

/// The `HelloReply` fits the smallest frames whatever the names: a device with the longest ones
/// shortens its firmware version first, then its id, and keeps names that fit as they are.
#[test]
fn the_hello_reply_fits_the_smallest_frames_with_the_longest_names() {
    let long = |c: char| std::iter::repeat_n(c, 64).collect::<String>();
    let config = DeviceConfig {
        device_id: long('d'),
        firmware_version: long('f'),
        ..DeviceConfig::default()
    };
    let device = VirtualDevice::new(chip(1), config).expect("device");
    let reply = device.info().to_hello_reply();
    let frame = Message::HelloReply(reply.clone()).frame_len();
    assert!(frame <= 256, "HelloReply of {frame} bytes");
    assert!(reply.device_id.len() > 32, "{:?}", reply.device_id);
    assert!(reply.firmware_version.len() < 64);
    assert!(reply.capabilities.and_then(|c| c.geometry).is_some());
    // The names are the same in every session, however long its noise position and nonce.
    let mut info = device.info().clone();
    for (position, nonce) in [(Some(0), 0), (Some(1 << 40), 1 << 63), (Some(u64::MAX), 7)] {
        info.noise_position = position;
        info.session_nonce = nonce;
        let again = info.to_hello_reply();
        assert_eq!(again.firmware_version, reply.firmware_version);
        assert_eq!(again.device_id, reply.device_id);
        assert!(Message::HelloReply(again).frame_len() <= 256);
    }
    // Short names stay whole.
    let device = VirtualDevice::new(chip(1), DeviceConfig::default()).expect("device");
    let reply = device.info().to_hello_reply();
    assert_eq!(reply.device_id, device.info().device_id);
    assert_eq!(reply.firmware_version, device.info().firmware_version);
}
