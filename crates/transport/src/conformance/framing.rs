//! Checks of the handshake's version range, the state machine before configuration, and the
//! framing: unknown types, malformed payloads, bad CRCs, garbage and oversized frames.

use super::*;

pub(super) async fn version_range<L: Link>(c: &mut Client<L>) -> Outcome {
    let id = c.id();
    let h = pb::Hello {
        min_version: 90,
        max_version: 99,
        host_max_frame_size: SUITE_FRAME_SIZE,
        host_name: "spikeloop conformance".into(),
        session_nonce: c.nonce,
    };
    let wire = encode_message(id, &Message::Hello(h), usize::MAX).map_err(|e| e.to_string())?;
    let e = c
        .expect_error(&wire, id, 0x01, pb::ErrorCode::UnsupportedVersion)
        .await?;
    let (Some(min), Some(max)) = (e.min, e.max) else {
        return Err("UNSUPPORTED_VERSION does not carry the device's min and max".into());
    };
    if !(min <= 1.0 && 1.0 <= max) {
        return Err(format!(
            "the device's range {min}..={max} does not hold version 1"
        ));
    }
    // The failed Hello changed nothing; a good one resets as usual.
    c.call(&suite_hello(c.nonce)).await?;
    Ok(format!(
        "versions 90..=99 refused with the device's range {min}..={max}"
    ))
}

pub(super) async fn states_before_configuration<L: Link>(c: &mut Client<L>) -> Outcome {
    let requests = [
        Message::RunRequest(pb::RunRequest {
            n_inputs: 2,
            n_samples: 1,
            output_only: false,
            input_codes: vec![1, 1],
        }),
        Message::ConfigureChunk(pb::ConfigureChunk {
            layer: 0,
            target: pb::ChunkTarget::Weights as i32,
            offset: 0,
            values: vec![0.5],
            weight_codes: Vec::new(),
        }),
        Message::ConfigureCommit(pb::ConfigureCommit { value_count: 0 }),
        Message::ReadRunResult(pb::ReadRunResult { first_sample: 0 }),
    ];
    for m in &requests {
        let id = c.id();
        let ty = m.message_type();
        let wire = encode_message(id, m, usize::MAX).map_err(|e| e.to_string())?;
        let e = c
            .expect_error(&wire, id, ty.byte(), pb::ErrorCode::BadState)
            .await
            .map_err(|e| format!("{ty} in READY: {e}"))?;
        if e.state != pb::DeviceState::Ready as i32 {
            return Err(format!("{ty} in READY: BAD_STATE names state {}", e.state));
        }
    }
    Ok("runs, chunks, commits and page reads in READY are refused with BAD_STATE (READY)".into())
}

pub(super) async fn unknown_types<L: Link>(c: &mut Client<L>) -> Outcome {
    for (ty, flags) in [
        (0x03u8, Flags::NONE),
        (0xEE, Flags::NONE),
        (0x02, Flags::NONE),
    ] {
        let id = c.id();
        let wire = frame_of(ty, id, flags, &[]);
        c.expect_error(&wire, id, ty, pb::ErrorCode::UnknownMessageType)
            .await
            .map_err(|e| format!("type {ty:#04x}: {e}"))?;
    }
    Ok("types 0x03, 0xee and an answer type (0x02) are refused with UNKNOWN_MESSAGE_TYPE".into())
}

pub(super) async fn malformed<L: Link>(c: &mut Client<L>) -> Outcome {
    let id = c.id();
    // A length-delimited field whose length runs past the end of the payload.
    let wire = frame_of(0x40, id, Flags::NONE, &[0x22, 0x05, 0x01]);
    c.expect_error(&wire, id, 0x40, pb::ErrorCode::MalformedPayload)
        .await
        .map_err(|e| format!("truncated payload: {e}"))?;
    let id = c.id();
    let wire = frame_of(0x40, id, Flags::RESPONSE, &[]);
    c.expect_error(&wire, id, 0x40, pb::ErrorCode::MalformedPayload)
        .await
        .map_err(|e| format!("request marked RESPONSE: {e}"))?;
    Ok(
        "a truncated payload and a request marked RESPONSE are refused with MALFORMED_PAYLOAD"
            .into(),
    )
}

pub(super) async fn bad_crc<L: Link>(c: &mut Client<L>) -> Outcome {
    let before = c.stats().await?;
    let bad_id = c.id();
    let mut raw = Header::new(0x40, bad_id, Flags::NONE)
        .to_bytes(0)
        .map_err(|e| e.to_string())?
        .to_vec();
    let crc = crate::frame::crc32(&raw) ^ 0x0000_0100;
    raw.extend_from_slice(&crc.to_le_bytes());
    let mut wire = vec![0u8; cobs::max_encoding_length(raw.len())];
    let n = cobs::encode(&raw, &mut wire);
    wire.truncate(n);
    wire.push(0);
    // The damaged frame, and right behind it a valid request: the first answer must be the
    // notice of the damage (request id 0), before the valid request's.
    c.send(&wire).await?;
    let id = c.id();
    let stats = encode_message(id, &Message::StatsRequest(pb::StatsRequest {}), usize::MAX)
        .map_err(|e| e.to_string())?;
    c.send(&stats).await?;
    let first = c.next_frame().await?;
    if !is_damage_notice(&first) {
        return Err(format!(
            "a frame with a bad CRC was not answered with FRAME_DAMAGED (request id 0) before the next request's answer; the first frame was {}: without the notice the host waits its whole deadline before it retries",
            describe(&first)
        ));
    }
    if first.header.flags.defined() != (Flags::RESPONSE | Flags::ERROR) {
        return Err(format!(
            "the FRAME_DAMAGED notice carries flags {:?}, expected RESPONSE | ERROR",
            first.header.flags
        ));
    }
    let answer = c.next_frame().await?;
    if answer.header.request_id != id {
        return Err(format!(
            "after the damaged frame's notice came {}, not the answer to request {id}",
            describe(&answer)
        ));
    }
    let after = c
        .stats()
        .await
        .map_err(|e| format!("after a frame with a bad CRC: {e}"))?;
    if after.frames_rejected != before.frames_rejected + 1 {
        return Err(format!(
            "frames_rejected went from {} to {} for one frame with a bad CRC",
            before.frames_rejected, after.frames_rejected
        ));
    }
    // Between the two StatsRequests counted here, two intact frames arrived: the one behind
    // the damaged frame, and the second StatsRequest itself.
    if after.frames_received != before.frames_received + 2 {
        return Err(format!(
            "frames_received went from {} to {} for two intact frames and one with a bad CRC",
            before.frames_received, after.frames_received
        ));
    }
    Ok("a frame with a bad CRC was answered at once with FRAME_DAMAGED (request id 0), executed nothing, and was counted as rejected, not as received".into())
}

pub(super) async fn garbage<L: Link>(c: &mut Client<L>) -> Outcome {
    // Bytes that are no frame (a lost byte, line noise), then a valid request.
    let before = c.damaged_notices;
    c.send(&[0x05, 0x11, 0x13, 0x00, 0x03, 0xFF, 0x00, 0x00, 0x00])
        .await?;
    c.stats().await.map_err(|e| format!("after garbage: {e}"))?;
    Ok(format!(
        "garbage was answered only with {} FRAME_DAMAGED notices and empty frames not at all; the next request was answered",
        c.damaged_notices - before
    ))
}

pub(super) async fn oversized<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let id = c.id();
    let payload = vec![0x5Au8; info.max_frame_size + 64];
    let wire = frame_of(
        MessageType::ConfigureChunk.byte(),
        id,
        Flags::NONE,
        &payload,
    );
    let frame = c.exchange_raw(&wire).await?;
    match code_of(&frame) {
        Some(e)
            if e.code == pb::ErrorCode::FrameTooLarge as i32 && frame.header.request_id == 0 => {}
        _ => {
            return Err(format!(
                "a frame of {} bytes (limit {}) was answered by {}, expected FRAME_TOO_LARGE with request id 0",
                payload.len() + 14,
                info.max_frame_size,
                describe(&frame)
            ));
        }
    }
    c.stats()
        .await
        .map_err(|e| format!("after an oversized frame: {e}"))?;
    Ok(format!(
        "a frame of {} bytes was refused with FRAME_TOO_LARGE (id 0); the next request was answered",
        payload.len() + 14
    ))
}
