//! The golden frames of `firmware-interface/golden/`: each decodes and re-encodes byte for byte,
//! the files match the code that generates them, and the exchange they show is consistent.

use std::path::PathBuf;

use spikeloop_backend::Record;
use spikeloop_transport::conformance::golden::{
    GOLDEN_SPIKE_TICKS, golden_batch, golden_frames, golden_network, golden_scale, parse_hex_file,
};
use spikeloop_transport::convert::{
    AssemblyLimits, DeviceInfo, RunResultAssembler, batch_from_request, network_from_messages,
};
use spikeloop_transport::{Frame, Message, decode_message, encode_message};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../firmware-interface/golden")
}

/// (file name, wire bytes, file text) of every `.hex` file, sorted by name.
fn golden_files() -> Vec<(String, Vec<u8>, String)> {
    let mut files: Vec<_> = std::fs::read_dir(golden_dir())
        .expect("firmware-interface/golden exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable file");
            let bytes = parse_hex_file(&text).expect("valid hex");
            let name = p.file_stem().expect("named").to_string_lossy().into_owned();
            (name, bytes, text)
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

#[test]
fn every_golden_file_decodes_and_reencodes_byte_for_byte() {
    let files = golden_files();
    assert!(files.len() >= 10, "only {} golden files", files.len());
    for (name, wire, _) in &files {
        let frame = Frame::decode_exact(wire, 1 << 16)
            .unwrap_or_else(|e| panic!("{name}: not one valid frame: {e}"));
        let message = decode_message(&frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = encode_message(frame.header.request_id, &message, 1 << 16)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&again, wire, "{name}: re-encoding differs");
        assert!(frame.len() <= 256, "{name}: golden frames stay small");
    }
}

#[test]
fn golden_files_match_the_generator() {
    let files = golden_files();
    let frames = golden_frames();
    let names: Vec<_> = files.iter().map(|f| f.0.clone()).collect();
    let expected: Vec<_> = frames.iter().map(|f| f.name.clone()).collect();
    assert_eq!(
        names, expected,
        "regenerate with `cargo run -p spikeloop-transport --example golden`"
    );
    for ((name, _, text), frame) in files.iter().zip(&frames) {
        assert_eq!(
            text,
            &frame.to_hex_file().expect("encodes"),
            "{name} is stale: regenerate with `cargo run -p spikeloop-transport --example golden`"
        );
    }
}

#[test]
fn golden_exchange_is_consistent() {
    let messages: Vec<(u32, Message)> = golden_files()
        .iter()
        .map(|(_, wire, _)| {
            let frame = Frame::decode_exact(wire, 1 << 16).expect("frame");
            (
                frame.header.request_id,
                decode_message(&frame).expect("message"),
            )
        })
        .collect();

    let info = messages
        .iter()
        .find_map(|(_, m)| match m {
            Message::HelloReply(r) => Some(DeviceInfo::from_hello_reply(r).expect("valid reply")),
            _ => None,
        })
        .expect("a HelloReply");
    assert_eq!(info.scale, golden_scale());
    assert!(info.capabilities.features.membrane_recording);

    let configure: Vec<Message> = messages
        .iter()
        .filter(|(_, m)| {
            matches!(
                m,
                Message::ConfigureBegin(_)
                    | Message::ConfigureChunk(_)
                    | Message::ConfigureCommit(_)
            )
        })
        .map(|(_, m)| m.clone())
        .collect();
    let network = network_from_messages(&configure, AssemblyLimits::default()).expect("assembles");
    assert_eq!(network, golden_network());

    let (run_id, run) = messages
        .iter()
        .find_map(|(id, m)| match m {
            Message::RunRequest(r) => Some((*id, r.clone())),
            _ => None,
        })
        .expect("a RunRequest");
    let (batch, record) = batch_from_request(&run, &info.scale, 0, 2).expect("valid run");
    assert_eq!(record, Record::AllLayers);
    let original = golden_batch();
    for (a, b) in batch.as_slice().iter().zip(original.as_slice()) {
        assert!(
            a == b || (a - b).abs() <= info.scale.tick() / 2.0,
            "{a} vs {b}"
        );
    }

    let (result_id, result) = messages
        .iter()
        .find_map(|(id, m)| match m {
            Message::RunResult(r) => Some((*id, r.clone())),
            _ => None,
        })
        .expect("a RunResult");
    assert_eq!(result_id, run_id, "the result answers the run request");
    let mut assembler = RunResultAssembler::for_network(&network, record, 2, info.scale);
    assembler.add_page(&result).expect("consistent page");
    let output = assembler.finish().expect("complete");
    for (s, ticks) in GOLDEN_SPIKE_TICKS.iter().enumerate() {
        let expected: Vec<f64> = ticks.iter().map(|&t| info.scale.to_model(t)).collect();
        assert_eq!(output.spikes.sample(s), expected.as_slice());
    }
    assert_eq!(output.stats.spikes, 6);
    assert_eq!(output.stats.hardware_time_us, Some(196.0));
}
