//! Checks of replay and sessions: duplicate request ids, new sessions, the noise position,
//! membrane recording and reset.

use super::*;

pub(super) async fn duplicates<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let before = c.stats().await?;
    let req = Message::RunRequest(run_request(info, 1, false)?);
    let (id, wire, first) = c.request(&req).await?;
    let again = c.exchange_raw(&wire).await?;
    if again != first {
        return Err(format!(
            "a duplicate of request {id} (RunRequest) was answered with {} that differs from the first answer: the device ran it again instead of replaying its cached answer byte for byte",
            describe(&again)
        ));
    }
    let after = c.stats().await?;
    if after.runs != before.runs + 1 {
        return Err(format!(
            "a run sent twice with one request id was executed {} times (runs {} -> {})",
            after.runs - before.runs,
            before.runs,
            after.runs
        ));
    }
    if after.requests_replayed <= before.requests_replayed {
        return Err("requests_replayed did not count the duplicate".into());
    }
    if info.capabilities.features.noise_position
        && after.noise_position != before.noise_position.map(|p| p + 1)
    {
        return Err(format!(
            "the noise moved from {:?} to {:?} for one run",
            before.noise_position, after.noise_position
        ));
    }
    // The same id with another payload is a new request.
    let other = Message::RunRequest(run_request(info, 1, true)?);
    let wire = encode_message(id, &other, usize::MAX).map_err(|e| e.to_string())?;
    let answer = c.exchange_raw(&wire).await?;
    match decode_message(&answer) {
        Ok(Message::RunResult(r)) if r.recorded_layers == [1] => {}
        _ => {
            return Err(format!(
                "a new request reusing id {id} was answered by {} (a replay of the old answer?)",
                describe(&answer)
            ));
        }
    }
    Ok("a duplicate was answered byte for byte from the cache without running again; a new payload under the same id ran".into())
}

/// No answer crosses from one session to the next: every `Hello` is executed (never answered
/// from the replay cache) and clears the cache, so a new host that repeats an earlier host's
/// frames byte for byte gets fresh answers.
pub(super) async fn sessions<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    // A zero nonce is refused.
    let id = c.id();
    let wire = encode_message(id, &suite_hello(0), usize::MAX).map_err(|e| e.to_string())?;
    let e = c
        .expect_error(&wire, id, 0x01, pb::ErrorCode::OutOfRange)
        .await
        .map_err(|e| format!("Hello with session nonce 0: {e}"))?;
    if e.field != "session_nonce" {
        return Err(format!(
            "Hello with session nonce 0 was refused naming field \"{}\", expected \"session_nonce\"",
            e.field
        ));
    }
    // Within a session, a repeated Hello is executed again: it resets the device.
    let (_, hello_wire, _) = c.request(&suite_hello(c.nonce)).await?;
    load_golden(c, info).await?;
    let frame = c.exchange_raw(&hello_wire).await?;
    if !matches!(decode_message(&frame), Ok(Message::HelloReply(_))) {
        return Err(format!(
            "a repeated Hello was answered by {}",
            describe(&frame)
        ));
    }
    let state = state_of(c).await?;
    if state != pb::DeviceState::Ready {
        return Err(format!(
            "a repeated Hello left the device in {}: it was answered from the replay cache instead of being executed",
            state.as_str_name()
        ));
    }
    // The last request of one session, then a new session that sends the same frame.
    load_golden(c, info).await?;
    let run = Message::RunRequest(run_request(info, 1, false)?);
    let (_, run_wire, _) = c.request(&run).await?;
    let before = c.stats().await?;
    c.nonce = c.nonce.wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1);
    let nonce = c.nonce;
    let Message::HelloReply(reply) = c.call(&suite_hello(nonce)).await? else {
        return Err("the new session's Hello was not answered with HelloReply".into());
    };
    if reply.session_nonce != nonce {
        return Err(format!(
            "the new session's HelloReply echoes nonce {:#x}, expected {nonce:#x}",
            reply.session_nonce
        ));
    }
    load_golden(c, info).await?;
    let frame = c.exchange_raw(&run_wire).await?;
    if !matches!(decode_message(&frame), Ok(Message::RunResult(_))) {
        return Err(format!(
            "the previous session's run frame, sent in a new session, was answered by {}",
            describe(&frame)
        ));
    }
    let after = c.stats().await?;
    if after.runs != before.runs + 1 {
        return Err(format!(
            "a new session's request, byte-identical to the last session's, was answered from the replay cache (runs {} -> {}): the cache was not cleared by Hello",
            before.runs, after.runs
        ));
    }
    if info.capabilities.features.noise_position && after.noise_position == before.noise_position {
        return Err("the new session's run did not move the noise: it was replayed".into());
    }
    Ok("Hello echoes its nonce, refuses nonce 0 and is never replayed; a new session's requests are executed afresh".into())
}

pub(super) async fn noise_position<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let Message::NoisePosition(p) = c
        .call(&Message::SetNoisePosition(pb::SetNoisePosition {
            position: 41,
        }))
        .await?
    else {
        return Err("SetNoisePosition was not answered with NoisePosition".into());
    };
    if p.position != 41 {
        return Err(format!(
            "SetNoisePosition(41) answered position {}",
            p.position
        ));
    }
    let Message::RunResult(r) = c
        .call(&Message::RunRequest(run_request(info, 1, false)?))
        .await?
    else {
        return Err("RunRequest was not answered with RunResult".into());
    };
    if r.noise_position != Some(42) {
        return Err(format!(
            "after one run from position 41 the result reports {:?}, expected 42",
            r.noise_position
        ));
    }
    Ok("the position was set to 41 and one run moved it to 42".into())
}

pub(super) async fn membrane<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let req = run_request(info, 1, false)?;
    let msg = pb::MembraneRequest {
        layer: 1,
        neuron: 0,
        duration_ticks: (1.0 / info.scale.tick()).round() as u64,
        n_inputs: 2,
        input_codes: req.input_codes[..2].to_vec(),
    };
    let Message::MembraneTrace(t) = c.call(&Message::MembraneRequest(msg.clone())).await? else {
        return Err("MembraneRequest was not answered with MembraneTrace".into());
    };
    let n = t.codes.len() + t.values.len();
    if t.total_values == 0 || n == 0 || t.first_value != 0 || t.dt.is_nan() || t.dt <= 0.0 {
        return Err(format!(
            "inconsistent trace: total {} first {} values {n} dt {}",
            t.total_values, t.first_value, t.dt
        ));
    }
    let mut bad = msg;
    bad.neuron = 2;
    let id = c.id();
    let wire = encode_message(id, &Message::MembraneRequest(bad), usize::MAX)
        .map_err(|e| e.to_string())?;
    c.expect_error(&wire, id, 0x30, pb::ErrorCode::OutOfRange)
        .await
        .map_err(|e| format!("recording neuron 2 of 2: {e}"))?;
    Ok(format!(
        "a trace of {} values arrived; a neuron out of range was refused",
        t.total_values
    ))
}

pub(super) async fn reset<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let Message::ResetReply(r) = c.call(&Message::ResetRequest(pb::ResetRequest {})).await? else {
        return Err("ResetRequest was not answered with ResetReply".into());
    };
    if r.state != pb::DeviceState::Ready as i32 {
        return Err(format!(
            "ResetReply reports state {}, expected READY",
            r.state
        ));
    }
    let id = c.id();
    let wire = encode_message(
        id,
        &Message::RunRequest(run_request(info, 1, false)?),
        usize::MAX,
    )
    .map_err(|e| e.to_string())?;
    c.expect_error(&wire, id, 0x20, pb::ErrorCode::BadState)
        .await
        .map_err(|e| format!("a run after ResetRequest: {e}"))?;
    let stats = c.stats().await?;
    if stats.state != pb::DeviceState::Ready as i32 {
        return Err(format!(
            "DeviceStats reports state {} after a reset",
            stats.state
        ));
    }
    Ok("ResetRequest returned the device to READY; its network was dropped".into())
}
