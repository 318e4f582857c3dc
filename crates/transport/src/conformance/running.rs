//! Checks of configuration, runs and paging, out-of-range values, errors in the smallest
//! frames, refused runs and the sample window.

use super::*;

pub(super) async fn configuration<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let messages =
        configure_messages(&golden_network(), info.max_frame_size).map_err(|e| e.to_string())?;
    let n = messages.len();
    let mut received = 0u64;
    for (i, m) in messages.into_iter().enumerate() {
        if i == n - 1 {
            // A commit that miscounts is refused and leaves the device configuring.
            let id = c.id();
            let wrong = Message::ConfigureCommit(pb::ConfigureCommit { value_count: 13 });
            let wire = encode_message(id, &wrong, usize::MAX).map_err(|e| e.to_string())?;
            c.expect_error(&wire, id, 0x12, pb::ErrorCode::InvalidNetwork)
                .await
                .map_err(|e| format!("ConfigureCommit with value_count 13 of 14: {e}"))?;
        }
        if let Message::ConfigureChunk(chunk) = &m {
            received += chunk.values.len() as u64;
        }
        let ty = m.message_type();
        let Message::ConfigureAck(ack) = c.call(&m).await? else {
            return Err(format!("{ty} was not acknowledged"));
        };
        if ack.values_expected != 14 || ack.values_received != received {
            return Err(format!(
                "{ty} acknowledged {} of {} values, expected {received} of 14",
                ack.values_received, ack.values_expected
            ));
        }
        if matches!(m, Message::ConfigureCommit(_)) && !ack.committed {
            return Err("ConfigureCommit was acknowledged without committed = true".into());
        }
    }
    Ok(format!(
        "the 2-2-2 network loaded in {} requests; a miscounted commit was refused with INVALID_NETWORK",
        n
    ))
}

pub(super) fn run_request(
    info: &DeviceInfo,
    n_copies: usize,
    output_only: bool,
) -> Result<pb::RunRequest, String> {
    let golden = golden_batch();
    let times: Vec<f64> = (0..n_copies)
        .flat_map(|_| golden.as_slice().iter().copied())
        .collect();
    let batch = spikeloop_backend::InputBatch::new(2, times).map_err(|e| e.to_string())?;
    let record = if output_only {
        spikeloop_backend::Record::OutputOnly
    } else {
        spikeloop_backend::Record::AllLayers
    };
    run_requests(&batch, record, &info.scale, info.max_frame_size, None)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| "no run request".into())
}

pub(super) fn check_page(
    page: &pb::RunResult,
    total: u32,
    first: u32,
    layers: &[u32],
) -> Result<(), String> {
    let stride: u32 = page.layer_sizes.iter().sum();
    if page.total_samples != total
        || page.first_sample != first
        || page.n_samples == 0
        || page.first_sample + page.n_samples > total
        || page.recorded_layers != layers
        || page.layer_sizes.len() != layers.len()
        || page.spike_codes.len() != (page.n_samples * stride) as usize
        || page.stats.is_none()
    {
        return Err(format!(
            "inconsistent RunResult page: total {} first {} n {} layers {:?} sizes {:?} codes {} (expected total {total}, first {first}, layers {layers:?})",
            page.total_samples,
            page.first_sample,
            page.n_samples,
            page.recorded_layers,
            page.layer_sizes,
            page.spike_codes.len()
        ));
    }
    Ok(())
}

pub(super) async fn runs<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    // All layers, enough samples for several pages at 256-byte frames.
    let copies = 60;
    let req = run_request(info, copies, false)?;
    let total = req.n_samples;
    let Message::RunResult(first) = c.call(&Message::RunRequest(req)).await? else {
        return Err("RunRequest was not answered with RunResult".into());
    };
    check_page(&first, total, 0, &[0, 1])?;
    let stats = first.stats.unwrap_or_default();
    if stats.samples != u64::from(total) {
        return Err(format!(
            "stats.samples = {}, expected {total}",
            stats.samples
        ));
    }
    let mut pages = 1;
    let mut next = first.n_samples;
    while next < total {
        let Message::RunResult(page) = c
            .call(&Message::ReadRunResult(pb::ReadRunResult {
                first_sample: next,
            }))
            .await?
        else {
            return Err("ReadRunResult was not answered with RunResult".into());
        };
        check_page(&page, total, next, &[0, 1])?;
        next += page.n_samples;
        pages += 1;
    }
    if pages < 2 {
        return Err(format!(
            "{total} samples came back in one page of a 256-byte frame; they do not fit one"
        ));
    }
    // Reading does not consume: the first page again, identical.
    let Message::RunResult(again) = c
        .call(&Message::ReadRunResult(pb::ReadRunResult {
            first_sample: 0,
        }))
        .await?
    else {
        return Err("ReadRunResult was not answered with RunResult".into());
    };
    if again != first {
        return Err("reading page 0 again gave a different page".into());
    }
    // Output only.
    let req = run_request(info, 1, true)?;
    let Message::RunResult(out) = c.call(&Message::RunRequest(req)).await? else {
        return Err("RunRequest (output only) was not answered with RunResult".into());
    };
    check_page(&out, 2, 0, &[1])?;
    Ok(format!(
        "{total} samples came back in {pages} pages within 256-byte frames; output-only runs record layer 1 only"
    ))
}

pub(super) async fn out_of_range<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let mut req = run_request(info, 1, false)?;
    req.n_inputs = 3;
    req.input_codes.push(0);
    req.input_codes.push(0);
    let id = c.id();
    let wire =
        encode_message(id, &Message::RunRequest(req), usize::MAX).map_err(|e| e.to_string())?;
    let e = c
        .expect_error(&wire, id, 0x20, pb::ErrorCode::OutOfRange)
        .await
        .map_err(|e| format!("RunRequest with 3 inputs for 2: {e}"))?;
    complete_range("RunRequest with 3 inputs for 2", &e, "n_inputs")?;
    // More samples declared than codes sent: the entry count of input_codes is out of range.
    let mut req = run_request(info, 1, false)?;
    req.n_samples += 1;
    let what = "RunRequest declaring one sample more than its codes hold";
    let e = c
        .refused(&Message::RunRequest(req), pb::ErrorCode::OutOfRange, what)
        .await?;
    complete_range(what, &e, "input_codes")?;
    // A run's result is stored: a page past its end is out of range.
    c.call(&Message::RunRequest(run_request(info, 1, false)?))
        .await?;
    let what = "ReadRunResult at sample 2 of 2";
    let page = Message::ReadRunResult(pb::ReadRunResult { first_sample: 2 });
    let e = c.refused(&page, pb::ErrorCode::OutOfRange, what).await?;
    complete_range(what, &e, "first_sample")?;
    // A time code beyond 2^40 ticks.
    let mut req = run_request(info, 1, false)?;
    if let Some(code) = req.input_codes.first_mut() {
        *code = u64::MAX;
    }
    let what = "RunRequest with a time code beyond 2^40 ticks";
    let e = c
        .refused(&Message::RunRequest(req), pb::ErrorCode::OutOfRange, what)
        .await?;
    complete_range(what, &e, "input_codes[0]")?;
    Ok("a wrong n_inputs, a miscounted input_codes, a page past the end and a time code out of range are refused with OUT_OF_RANGE naming the .proto field (with its index) and carrying value, min and max".into())
}

/// An `OUT_OF_RANGE` error names `field` exactly as the `.proto` files spell it and carries the
/// offending value and both bounds.
pub(super) fn complete_range(what: &str, e: &pb::Error, field: &str) -> Result<(), String> {
    if e.field != field {
        return Err(format!(
            "{what}: OUT_OF_RANGE names field \"{}\", expected \"{field}\" (the .proto field, with an index where useful)",
            e.field
        ));
    }
    if e.value.is_none() || e.min.is_none() || e.max.is_none() {
        return Err(format!(
            "{what}: OUT_OF_RANGE on {field} carries value {:?}, min {:?}, max {:?}; all three are required",
            e.value, e.min, e.max
        ));
    }
    Ok(())
}

/// Errors fit the smallest host frame (256 bytes) with their code, request type and fields,
/// and a shortage that depends on the network's shape alone is refused at `ConfigureBegin`.
pub(super) async fn errors_fit<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let neuron = Some(crate::convert::neuron_message(
        &spikeloop_backend::NeuronParams::REFERENCE,
    ));
    let shape = |n_inputs: u32, sizes: &[u32]| {
        Message::ConfigureBegin(pb::ConfigureBegin {
            n_inputs,
            layers: sizes
                .iter()
                .map(|&size| pb::LayerShape {
                    size,
                    n_bias: 0,
                    neuron,
                })
                .collect(),
            update: false,
        })
    };
    let mut cases = vec![(
        "a network of 2 x 1048576 neurons".to_string(),
        shape(2, &[1 << 20, 1 << 20]),
    )];
    if let Some(g) = &info.capabilities.geometry {
        // One source more than merged circuits (or, without merging, one column) take.
        let sources = g.sources_per_circuit() * g.max_merged.max(1) + 1;
        cases.push((
            format!(
                "a layer of {sources} sources, more than {} merged circuit(s) of {} sources take",
                g.max_merged.max(1),
                g.sources_per_circuit()
            ),
            shape(u32::try_from(sources).unwrap_or(u32::MAX), &[2, 2]),
        ));
    }
    for (what, message) in &cases {
        let id = c.id();
        let wire = encode_message(id, message, usize::MAX).map_err(|e| e.to_string())?;
        let e = c
            .expect_error(&wire, id, 0x10, pb::ErrorCode::DoesNotFit)
            .await
            .map_err(|e| {
                format!("ConfigureBegin of {what} in 256-byte frames: {e} (a shortage of the shape alone is refused at ConfigureBegin, and every error fits the host's frames)")
            })?;
        if e.resource.is_empty()
            || e.resource.len() > crate::convert::MAX_ERROR_NAME_LEN
            || e.needed <= e.available
        {
            return Err(format!(
                "DOES_NOT_FIT for {what} names resource \"{}\" ({} bytes; a short name of at most {} bytes) with needed {} and available {}",
                e.resource,
                e.resource.len(),
                crate::convert::MAX_ERROR_NAME_LEN,
                e.needed,
                e.available
            ));
        }
    }
    // The refused ConfigureBegin dropped no network that was not already dropped; leave READY.
    c.call(&Message::ResetRequest(pb::ResetRequest {})).await?;
    Ok(format!(
        "refused at ConfigureBegin with DOES_NOT_FIT (resource named, counts given) within 256-byte frames: {}",
        cases
            .iter()
            .map(|(w, _)| w.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

/// A `RunRequest` whose one-sample page may not fit the host's frames is refused before it
/// runs: the run counter and the noise stay where they were.
pub(super) async fn refused_runs<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let outcome = refused_runs_of_a_wide_network(c, info).await;
    // The checks after this one run on the golden network again, whatever happened here.
    load_golden(c, info).await?;
    outcome
}

pub(super) async fn refused_runs_of_a_wide_network<L: Link>(
    c: &mut Client<L>,
    info: &DeviceInfo,
) -> Outcome {
    // 2 inputs -> 100 -> 2: one sample of every layer takes more than a 256-byte frame.
    let wide = spikeloop_backend::Network {
        n_inputs: 2,
        layers: vec![
            spikeloop_backend::Layer {
                size: 100,
                neuron: spikeloop_backend::NeuronParams::REFERENCE,
                bias_times: vec![0.9],
                weights: spikeloop_backend::ndarray::Array2::from_elem((100, 3), 0.5),
            },
            spikeloop_backend::Layer {
                size: 2,
                neuron: spikeloop_backend::NeuronParams::REFERENCE,
                bias_times: vec![0.9],
                weights: spikeloop_backend::ndarray::Array2::from_elem((2, 101), 0.05),
            },
        ],
    };
    let messages = configure_messages(&wide, info.max_frame_size).map_err(|e| e.to_string())?;
    for m in &messages {
        let (_, _, frame) = c.request(m).await?;
        match decode_message(&frame) {
            Ok(Message::ConfigureAck(_)) => {}
            Ok(Message::Error(e)) if e.code == pb::ErrorCode::DoesNotFit as i32 => {
                return Ok(format!(
                    "not applicable: the device does not hold a 2-100-2 network ({})",
                    e.message
                ));
            }
            _ => return Err(format!("loading a 2-100-2 network: {}", describe(&frame))),
        }
    }
    let before = c.stats().await?;
    let id = c.id();
    let req = run_request(info, 1, false)?;
    let wire =
        encode_message(id, &Message::RunRequest(req), usize::MAX).map_err(|e| e.to_string())?;
    let e = c
        .expect_error(&wire, id, 0x20, pb::ErrorCode::OutOfRange)
        .await
        .map_err(|e| format!("a run of all 102 neurons in 256-byte frames: {e}"))?;
    complete_range(
        "a run whose one-sample page exceeds the host's frames",
        &e,
        "host_max_frame_size",
    )?;
    let after = c.stats().await?;
    if after.runs != before.runs || after.noise_position != before.noise_position {
        return Err(format!(
            "a refused run still ran: runs {} -> {}, noise position {:?} -> {:?}",
            before.runs, after.runs, before.noise_position, after.noise_position
        ));
    }
    let out = Message::RunRequest(run_request(info, 1, true)?);
    if !matches!(c.call(&out).await?, Message::RunResult(_)) {
        return Err("an output-only run of the 2-100-2 network was not answered".into());
    }
    Ok("a run of 102 recorded neurons in 256-byte frames was refused (OUT_OF_RANGE on host_max_frame_size) without running; output only ran".into())
}

/// Times and durations are checked against the announced sample window.
pub(super) async fn sample_window<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let w = info.sample_window_ticks;
    if w == 0 {
        return Ok("not applicable: the device announces no sample window".into());
    }
    let at = |ticks: u64| {
        Message::RunRequest(pb::RunRequest {
            n_inputs: 2,
            n_samples: 1,
            output_only: true,
            input_codes: vec![1 + 2 * ticks, 0],
        })
    };
    if !matches!(c.call(&at(w - 1)).await?, Message::RunResult(_)) {
        return Err(format!(
            "an input at {} ticks (window {w}) was refused",
            w - 1
        ));
    }
    let id = c.id();
    let wire = encode_message(id, &at(w), usize::MAX).map_err(|e| e.to_string())?;
    let e = c
        .expect_error(&wire, id, 0x20, pb::ErrorCode::OutOfRange)
        .await
        .map_err(|e| format!("an input at {w} ticks, the end of the window: {e}"))?;
    complete_range("an input at the end of the window", &e, "input_codes[0]")?;
    if e.max != Some((w - 1) as f64) {
        return Err(format!(
            "an input at {w} ticks was refused with max {:?}; the window allows up to {}",
            e.max,
            w - 1
        ));
    }
    let mut detail = format!("inputs in [0, {w}) ticks accepted, at {w} refused");
    if info.capabilities.features.membrane_recording {
        let rec = |ticks: u64| {
            Message::MembraneRequest(pb::MembraneRequest {
                layer: 1,
                neuron: 0,
                duration_ticks: ticks,
                n_inputs: 2,
                input_codes: vec![0, 0],
            })
        };
        if !matches!(c.call(&rec(w)).await?, Message::MembraneTrace(_)) {
            return Err(format!("a recording of {w} ticks (the window) was refused"));
        }
        let id = c.id();
        let wire = encode_message(id, &rec(w + 1), usize::MAX).map_err(|e| e.to_string())?;
        let e = c
            .expect_error(&wire, id, 0x30, pb::ErrorCode::OutOfRange)
            .await
            .map_err(|e| format!("a recording of {} ticks: {e}", w + 1))?;
        complete_range("a recording longer than the window", &e, "duration_ticks")?;
        detail.push_str(&format!(
            "; recordings of {w} ticks accepted, {} refused",
            w + 1
        ));
    }
    Ok(detail)
}

/// The golden network with strong excitatory weights (1.5 to 2.0 threshold distances) where
/// it has mixed ones: what the weight update check loads, and what spikes where the golden
/// network may be silent (on an uncalibrated chip, say).
fn strengthened_golden() -> spikeloop_backend::Network {
    let mut n = golden_network();
    for layer in &mut n.layers {
        for (i, w) in layer.weights.iter_mut().enumerate() {
            *w = 2.0 - 0.25 * (i % 3) as f64;
        }
    }
    n
}

/// Sends a configure sequence and returns the acknowledgement of its commit.
async fn send_sequence<L: Link>(
    c: &mut Client<L>,
    messages: &[Message],
) -> Result<pb::ConfigureAck, String> {
    let mut last = None;
    for m in messages {
        let Message::ConfigureAck(ack) = c.call(m).await? else {
            return Err(format!("{} was not acknowledged", m.message_type()));
        };
        last = Some(ack);
    }
    last.ok_or_else(|| "an empty configure sequence".into())
}

/// One run of the golden batch from noise position 7 (where the device has one), as codes.
async fn golden_codes<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Result<Vec<u64>, String> {
    if info.capabilities.features.noise_position {
        c.call(&Message::SetNoisePosition(pb::SetNoisePosition {
            position: 7,
        }))
        .await?;
    }
    match c
        .call(&Message::RunRequest(run_request(info, 1, false)?))
        .await?
    {
        Message::RunResult(r) => Ok(r.spike_codes),
        _ => Err("RunRequest was not answered with RunResult".into()),
    }
}

/// A weight update (`ConfigureBegin.update`) replaces the weights only: it expects and counts
/// weights only, refuses bias chunks and another shape (the loaded network staying in effect)
/// and runs as the same network loaded whole would; without a loaded network it is refused.
pub(super) async fn weight_update<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let strong = strengthened_golden();
    let codes = crate::convert::WeightCodes::of(&info.capabilities);
    let update = crate::convert::update_messages(&strong, info.max_frame_size, codes)
        .map_err(|e| e.to_string())?;
    let Some(Message::ConfigureBegin(begin)) = update.first().cloned() else {
        return Err("an update sequence without ConfigureBegin".into());
    };
    let weights: u64 = strong.layers.iter().map(|l| l.weights.len() as u64).sum();

    // Another shape is refused and the loaded network stays in effect.
    load_golden(c, info).await?;
    let before = golden_codes(c, info).await?;
    let mut reshaped = begin.clone();
    reshaped.layers[1].size = 3;
    c.refused(
        &Message::ConfigureBegin(reshaped),
        pb::ErrorCode::InvalidNetwork,
        "an update declaring another output layer size",
    )
    .await?;
    if golden_codes(c, info).await? != before {
        return Err("after a refused update the loaded network ran differently".into());
    }

    // A bias chunk within an update is refused (OUT_OF_RANGE on target).
    let Message::ConfigureAck(ack) = c.call(&Message::ConfigureBegin(begin.clone())).await? else {
        return Err("an update's ConfigureBegin was not acknowledged".into());
    };
    if ack.values_expected != weights {
        return Err(format!(
            "an update's ConfigureBegin expects {} values, the network has {weights} weights",
            ack.values_expected
        ));
    }
    let bias = Message::ConfigureChunk(pb::ConfigureChunk {
        layer: 0,
        target: pb::ChunkTarget::BiasTimes as i32,
        offset: 0,
        values: vec![0.5],
        weight_codes: Vec::new(),
    });
    let e = c
        .refused(
            &bias,
            pb::ErrorCode::OutOfRange,
            "a bias chunk within an update",
        )
        .await?;
    complete_range("a bias chunk within an update", &e, "target")?;
    // A code beyond the announced weight bits is refused (OUT_OF_RANGE on the entry).
    if let Some(rule) = codes {
        let beyond = Message::ConfigureChunk(pb::ConfigureChunk {
            layer: 0,
            target: pb::ChunkTarget::Weights as i32,
            offset: 0,
            values: Vec::new(),
            weight_codes: vec![rule.max_code + 1],
        });
        let e = c
            .refused(
                &beyond,
                pb::ErrorCode::OutOfRange,
                "a weight code beyond weight_bits",
            )
            .await?;
        complete_range("a weight code beyond weight_bits", &e, "weight_codes[0]")?;
    }

    // The whole update, then the same network loaded whole: the same run.
    let ack = send_sequence(c, &update).await?;
    if !ack.committed || ack.values_received != weights {
        return Err(format!(
            "the update's commit was acknowledged with committed = {}, {} of {weights} values",
            ack.committed, ack.values_received
        ));
    }
    let updated = golden_codes(c, info).await?;
    let whole = configure_messages(&strong, info.max_frame_size).map_err(|e| e.to_string())?;
    send_sequence(c, &whole).await?;
    let reference = golden_codes(c, info).await?;
    let compared = if !info.capabilities.features.noise_position {
        "ran (not compared: without a noise position runs cannot be replayed)"
    } else if updated != reference {
        return Err(format!(
            "after the update the run gave codes {updated:?}, the same network loaded whole {reference:?}"
        ));
    } else if reference == before {
        "ran as the network loaded whole (which runs as the golden network does on this device)"
    } else {
        "ran exactly as the network loaded whole"
    };
    // Without a loaded network an update is refused.
    if !matches!(
        c.call(&Message::ResetRequest(pb::ResetRequest {})).await?,
        Message::ResetReply(_)
    ) {
        return Err("ResetRequest was not answered with ResetReply".into());
    }
    c.refused(
        &Message::ConfigureBegin(begin),
        pb::ErrorCode::BadState,
        "an update without a loaded network",
    )
    .await?;
    load_golden(c, info).await?;
    Ok(format!(
        "an update of {weights} weights ({}) in {} requests {compared}; another shape, a bias chunk{} and an update in READY were refused",
        if codes.is_some() {
            "as codes"
        } else {
            "as floats"
        },
        update.len(),
        if codes.is_some() {
            ", a code out of range"
        } else {
            ""
        }
    ))
}
