//! Property tests of the decoders against hostile input: arbitrary bytes and damaged valid
//! frames (bit flips, truncations, duplications, insertions, deletions, arbitrary splits).
//!
//! Properties: nothing panics; the frame decoder never holds more than its limit; every frame
//! it accepts from a damaged stream is one that was sent (CRC-32 lets no damage through);
//! after any garbage a delimiter resynchronises it; every message it accepts re-encodes to at
//! most about its own size (no allocation beyond the payload's). The million-input run is
//! `cargo run --release -p spikeloop-transport --example fuzz`.

mod fuzzing;

use fuzzing::{Exerciser, MUTATIONS, Rng, mutate, random_frame, split};
use proptest::prelude::*;
use spikeloop_transport::frame::MIN_FRAME_LEN;
use spikeloop_transport::{
    Flags, Frame, FrameDecoder, Header, Message, MessageType, decode_message, encode_frame,
};

const LIMIT: usize = 512;

fn check_decoder_invariants(
    decoder: &FrameDecoder,
    items: &[Result<Frame, spikeloop_transport::FrameError>],
) {
    assert!(
        decoder.buffer_capacity() <= LIMIT,
        "buffer grew to {}",
        decoder.buffer_capacity()
    );
    for frame in items.iter().flatten() {
        assert!(frame.len() <= LIMIT && frame.len() >= MIN_FRAME_LEN);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes in arbitrary chunks: no panic, bounded memory, and a delimiter followed
    /// by a valid frame always yields that frame.
    #[test]
    fn arbitrary_bytes_never_break_the_frame_decoder(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..8),
        seed in any::<u64>(),
    ) {
        let mut decoder = FrameDecoder::new(LIMIT);
        let mut items = Vec::new();
        for chunk in &chunks {
            decoder.push(chunk, &mut items);
            check_decoder_invariants(&decoder, &items);
        }
        let (_, wire) = random_frame(&mut Rng(seed));
        let frame = Frame::decode_exact(&wire, usize::MAX).expect("valid frame");
        let mut tail = vec![0u8];
        tail.extend_from_slice(&wire);
        let after = decoder.decode(&tail);
        if frame.len() <= LIMIT {
            prop_assert_eq!(after.last(), Some(&Ok(frame)));
        } else {
            let too_large = matches!(
                after.last(),
                Some(Err(spikeloop_transport::FrameError::TooLarge { .. }))
            );
            prop_assert!(too_large, "expected TooLarge, got {:?}", after.last());
        }
        prop_assert!(decoder.is_idle());
    }

    /// Streams of valid frames, damaged and split like a serial line does: every accepted frame
    /// is one that was sent, and the undamaged ones after a delimiter all arrive.
    #[test]
    fn damaged_streams_yield_only_frames_that_were_sent(seed in any::<u64>(), n in 1usize..8) {
        let mut rng = Rng(seed);
        let mut sent = Vec::new();
        let mut stream = Vec::new();
        for _ in 0..n {
            let (_, mut wire) = random_frame(&mut rng);
            if let Ok(f) = Frame::decode_exact(&wire, usize::MAX) {
                sent.push(f);
            }
            let m = MUTATIONS[rng.below(MUTATIONS.len())];
            mutate(&mut rng, &mut wire, m);
            stream.extend_from_slice(&wire);
        }
        let mut decoder = FrameDecoder::new(LIMIT);
        let mut items = Vec::new();
        for chunk in split(&mut rng, &stream) {
            decoder.push(&chunk, &mut items);
            check_decoder_invariants(&decoder, &items);
        }
        for frame in items.iter().flatten() {
            prop_assert!(sent.contains(frame), "accepted a frame that was never sent: {:?}", frame);
        }
    }

    /// Arbitrary payloads under every type byte: a typed result, never a panic, and accepted
    /// messages are no larger than their payload allows.
    #[test]
    fn arbitrary_payloads_never_break_the_message_decoder(
        ty in any::<u8>(),
        flags in 0u8..16,
        payload in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let frame = Frame { header: Header::new(ty, 1, Flags::from_bits(flags)), payload };
        // Also through the wire, to cover encoder and decoder together.
        let wire = encode_frame(&frame.header, &frame.payload).expect("encodes");
        let back = Frame::decode_exact(&wire, 1024);
        prop_assert_eq!(back.as_ref(), Ok(&frame));
        let mut ex = Exerciser::default();
        let typed = MessageType::from_byte(ty);
        // The same payload under the correct flags reaches the payload decoder.
        if let Some(t) = typed
            && let Ok(m) = Message::decode_payload(t, &frame.payload) {
                prop_assert!(m.payload_len() <= 2 * frame.payload.len() + 16);
                ex.exercise(&m);
            }
        match decode_message(&frame) {
            Ok(m) => {
                prop_assert_eq!(Some(m.message_type()), typed);
                ex.exercise(&m);
            }
            Err(e) => {
                // Every refusal maps to a protocol error code.
                let _ = e.error_code();
            }
        }
    }

    /// Valid payloads with bit flips and truncations, then every conversion a peer reaches.
    #[test]
    fn damaged_payloads_reach_conversions_safely(seed in any::<u64>(), rounds in 1usize..16) {
        let mut rng = Rng(seed);
        let mut ex = Exerciser::default();
        for _ in 0..rounds {
            let (m, _) = random_frame(&mut rng);
            let mut payload = m.encode_payload();
            let mutation = MUTATIONS[rng.below(MUTATIONS.len())];
            mutate(&mut rng, &mut payload, mutation);
            if let Ok(decoded) = Message::decode_payload(m.message_type(), &payload) {
                ex.exercise(&decoded);
            }
            ex.exercise(&m);
        }
    }
}

#[test]
fn a_frame_growing_forever_is_reported_once_with_bounded_memory() {
    let mut decoder = FrameDecoder::new(LIMIT);
    let junk = vec![0xAAu8; 4096];
    let mut errors = 0;
    for _ in 0..256 {
        errors += decoder.decode(&junk).len();
        assert!(decoder.buffer_capacity() <= LIMIT);
    }
    assert_eq!(errors, 1, "one TooLarge for one endless frame");
    let (_, wire) = random_frame(&mut Rng(3));
    let mut tail = vec![0u8];
    tail.extend_from_slice(&wire);
    let items = decoder.decode(&tail);
    assert_eq!(items.len(), 1);
}

/// The million-input campaign of `examples/fuzz.rs`, for
/// `cargo test --release -p spikeloop-transport --test fuzz -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark-sized run (about a second in release, much longer in debug)"]
fn a_million_hostile_inputs() {
    let report = fuzzing::campaign(1_000_000, 1);
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(report.total(), 1_000_000);
}

/// A small campaign in every test run, so the benchmark's code stays working.
#[test]
fn a_small_campaign_passes() {
    let report = fuzzing::campaign(4_000, 7);
    assert!(report.passed(), "{report}");
    assert!(
        report.frames_accepted > 0 && report.messages_decoded > 0,
        "{report}"
    );
}
