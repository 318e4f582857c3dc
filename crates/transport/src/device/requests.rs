//! The requests a virtual device executes, each checked against the state, the announced
//! limits and the configured network before the backend sees it.

use super::*;

impl<B: Backend> VirtualDevice<B> {
    pub(super) fn execute(&mut self, frame: &Frame) -> Answer {
        let byte = frame.header.message_type;
        let ty = match MessageType::from_byte(byte) {
            Some(t) if t.is_request() => t,
            _ => {
                return Err(error(
                    pb::ErrorCode::UnknownMessageType,
                    byte,
                    format!(
                        "message type {byte:#04x} is not a request; requests are 0x01, 0x10-0x12, 0x20, 0x22, 0x30, 0x32, 0x40, 0x50, 0x60, 0x70, 0x72, 0x74, 0x76"
                    ),
                ));
            }
        };
        if frame.header.request_id == 0 {
            let mut e = error(
                pb::ErrorCode::OutOfRange,
                byte,
                "request id 0 is reserved for device frames; use 1 to 4294967295",
            );
            e.field = "request_id".into();
            e.value = Some(0.0);
            e.min = Some(1.0);
            e.max = Some(f64::from(u32::MAX));
            return Err(e);
        }
        let message = decode_message(frame).map_err(|e| {
            error(
                e.error_code(),
                byte,
                crate::convert::truncate_utf8(&e.to_string(), 200),
            )
        })?;
        use pb::DeviceState as S;
        match (self.state, message) {
            (_, Message::Hello(h)) => self.hello(&h, ty),
            (S::PowerOn, _) => Err(self.bad_state(ty)),
            (_, Message::StatsRequest(_)) => Ok(Message::DeviceStats(self.stats())),
            (_, Message::ResetRequest(_)) => {
                self.reset();
                self.cache.clear();
                Ok(Message::ResetReply(pb::ResetReply {
                    state: self.state as i32,
                }))
            }
            (_, Message::SetNoisePosition(m)) => self.set_noise_position(m.position, ty),
            (_, Message::WriteParameterCodes(m)) => self.write_codes(&m, ty),
            (_, Message::ReadParameterCodes(m)) => self.read_codes(&m, ty),
            (_, Message::ReadChipId(_)) => Ok(Message::ChipId(pb::ChipId {
                chip_id: self.info.chip_id.clone().unwrap_or_default(),
                parameter_settle_us: self.info.capabilities.parameter_settle_us.unwrap_or(0.0),
            })),
            (S::Configured, Message::ReadCircuits(m)) => self.read_circuits(&m, ty),
            (_, Message::ConfigureBegin(m)) if m.update && !self.defects.update_drops_network => {
                self.begin_update(&m, ty)
            }
            (_, Message::ConfigureBegin(mut m)) => {
                m.update = false;
                self.drop_network();
                let ack = self
                    .assembler
                    .begin(&m)
                    .map_err(|e| self.convert_error(&e, ty))?;
                self.state = S::Configuring;
                Ok(Message::ConfigureAck(ack))
            }
            (S::Configuring, Message::ConfigureChunk(m)) => self
                .assembler
                .chunk(&m)
                .map(Message::ConfigureAck)
                .map_err(|e| self.convert_error(&e, ty)),
            (S::Configuring, Message::ConfigureCommit(m)) => self.commit(&m, ty),
            (S::Configured, Message::RunRequest(m)) => self.run(&m, ty),
            (S::Configured, Message::ReadRunResult(m)) if self.run.is_some() => {
                let page = self
                    .run
                    .as_ref()
                    .map(|r| r.page(m.first_sample, self.host_max_frame_size));
                self.page_answer(page, Message::RunResult, ty)
            }
            (S::Configured, Message::MembraneRequest(m)) => self.record(&m, ty),
            (S::Configured, Message::ReadMembraneTrace(m)) if self.trace.is_some() => {
                let page = self
                    .trace
                    .as_ref()
                    .map(|t| t.page(m.first_value, self.host_max_frame_size));
                self.page_answer(page, Message::MembraneTrace, ty)
            }
            _ => Err(self.bad_state(ty)),
        }
    }

    /// A weight update of the loaded network: refused without one (the state stays) or with
    /// another shape (the loaded network stays in effect).
    fn begin_update(&mut self, m: &pb::ConfigureBegin, ty: MessageType) -> Answer {
        let Some(network) = &self.committed else {
            return Err(self.bad_state(ty));
        };
        match self.assembler.begin_update(m, network) {
            Ok(ack) => {
                self.run = None;
                self.trace = None;
                self.state = pb::DeviceState::Configuring;
                Ok(Message::ConfigureAck(ack))
            }
            Err(e) => {
                // An update abandoned by this refusal leaves the loaded network in effect.
                self.state = pb::DeviceState::Configured;
                Err(self.convert_error(&e, ty))
            }
        }
    }

    fn drop_network(&mut self) {
        self.assembler.abort();
        self.committed = None;
        self.loaded = None;
        self.run = None;
        self.trace = None;
        if self.state != pb::DeviceState::PowerOn {
            self.state = pb::DeviceState::Ready;
        }
    }

    fn reset(&mut self) {
        self.drop_network();
        self.state = pb::DeviceState::Ready;
    }

    fn hello(&mut self, h: &pb::Hello, ty: MessageType) -> Answer {
        let version = negotiate_version(h, self.info.min_version, self.info.max_version)
            .map_err(|e| self.convert_error(&e, ty))?;
        if (h.host_max_frame_size as usize) < MIN_MAX_FRAME_SIZE {
            return Err(self.convert_error(
                &ConvertError::out_of_range(
                    "host_max_frame_size",
                    h.host_max_frame_size,
                    Some(MIN_MAX_FRAME_SIZE as f64),
                    Some(f64::from(u32::MAX)),
                ),
                ty,
            ));
        }
        if h.session_nonce == 0 {
            return Err(self.convert_error(
                &ConvertError::out_of_range("session_nonce", 0, Some(1.0), Some(u64::MAX as f64)),
                ty,
            ));
        }
        self.reset();
        if !self.defects.keep_cache_on_hello {
            self.cache.clear();
        }
        self.host_max_frame_size = h.host_max_frame_size as usize;
        self.info.version = version;
        self.info.noise_position = self.backend.noise_position();
        self.info.session_nonce = h.session_nonce;
        Ok(Message::HelloReply(self.info.to_hello_reply()))
    }

    fn stats(&self) -> pb::DeviceStats {
        let c = &self.counters;
        pb::DeviceStats {
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            state: self.state as i32,
            frames_received: c.frames_received,
            frames_rejected: c.frames_rejected,
            requests_replayed: c.requests_replayed,
            errors_sent: c.errors_sent,
            runs: c.runs,
            samples: c.samples,
            spikes: c.spikes,
            hardware_time_us: c.hardware_time_us,
            lost_events: c.lost_events,
            later_spikes: c.later_spikes,
            noise_position: self.backend.noise_position(),
        }
    }

    fn unsupported(&self, ty: MessageType, feature: &str) -> Box<pb::Error> {
        let mut e = error(
            pb::ErrorCode::UnsupportedFeature,
            ty.byte(),
            format!("{feature} is not supported by {}", self.info.device_id),
        );
        e.feature = feature.into();
        e
    }

    fn set_noise_position(&mut self, position: u64, ty: MessageType) -> Answer {
        if !self.info.capabilities.features.noise_position {
            return Err(self.unsupported(ty, "noise position"));
        }
        self.backend
            .set_noise_position(position)
            .map_err(|e| Box::new(error_from_backend(&e, ty.byte())))?;
        Ok(Message::NoisePosition(pb::NoisePosition {
            position: self.backend.noise_position().unwrap_or(position),
        }))
    }

    /// The number of circuits, for a device with parameter codes (else `Unsupported`).
    fn circuit_count(&self, ty: MessageType) -> Result<usize, Box<pb::Error>> {
        match self.info.capabilities.max_neurons {
            Some(n) if self.info.capabilities.features.parameter_codes => Ok(n),
            _ => Err(self.unsupported(ty, "parameter codes")),
        }
    }

    fn write_codes(&mut self, m: &pb::WriteParameterCodes, ty: MessageType) -> Answer {
        let n = self.circuit_count(ty)?;
        if self.defects.codes_written_partially {
            // Entry by entry up to the first bad one; the whole request's check follows.
            for w in &m.writes {
                let one = pb::WriteParameterCodes {
                    writes: vec![w.clone()],
                };
                match crate::convert::checked_writes(&one, n) {
                    Ok(write) => {
                        let _ = self.backend.set_parameter_codes(&write);
                    }
                    Err(_) => break,
                }
            }
        }
        let writes =
            crate::convert::checked_writes(m, n).map_err(|e| self.convert_error(&e, ty))?;
        self.backend
            .set_parameter_codes(&writes)
            .map_err(|e| Box::new(error_from_backend(&e, ty.byte())))?;
        Ok(Message::ParameterCodesAck(pb::ParameterCodesAck {
            written: u32::try_from(writes.len()).unwrap_or(u32::MAX),
        }))
    }

    fn read_codes(&mut self, m: &pb::ReadParameterCodes, ty: MessageType) -> Answer {
        let n = self.circuit_count(ty)?;
        let most = crate::convert::entries_per_frame(self.host_max_frame_size);
        if m.circuits.is_empty() || m.circuits.len() > most {
            let e = ConvertError::out_of_range(
                "circuits",
                m.circuits.len() as u32,
                Some(1.0),
                Some(most as f64),
            );
            return Err(self.convert_error(&e, ty));
        }
        let mut codes = Vec::with_capacity(m.circuits.len());
        for (i, &c) in m.circuits.iter().enumerate() {
            if c as usize >= n {
                let e = ConvertError::out_of_range(
                    format!("circuits[{i}]"),
                    c,
                    Some(0.0),
                    Some(n.saturating_sub(1) as f64),
                );
                return Err(self.convert_error(&e, ty));
            }
            let written = self
                .backend
                .parameter_codes(c as usize)
                .map_err(|e| Box::new(error_from_backend(&e, ty.byte())))?;
            codes.push(crate::convert::circuit_codes(c as usize, written.as_ref()));
        }
        Ok(Message::ParameterCodes(pb::ParameterCodes { codes }))
    }

    fn read_circuits(&mut self, m: &pb::ReadCircuits, ty: MessageType) -> Answer {
        self.circuit_count(ty)?;
        let circuits = self
            .backend
            .circuits()
            .map_err(|e| Box::new(error_from_backend(&e, ty.byte())))?;
        let Some(layer) = circuits.get(m.layer as usize) else {
            let e = ConvertError::out_of_range(
                "layer",
                m.layer,
                Some(0.0),
                Some(circuits.len().saturating_sub(1) as f64),
            );
            return Err(self.convert_error(&e, ty));
        };
        let first = m.first as usize;
        if first >= layer.len() {
            let e = ConvertError::out_of_range(
                "first",
                m.first,
                Some(0.0),
                Some(layer.len().saturating_sub(1) as f64),
            );
            return Err(self.convert_error(&e, ty));
        }
        // Circuit numbers are varints of at most 5 bytes.
        let most = (crate::convert::payload_budget(self.host_max_frame_size) / 6).max(1);
        let end = (first + most).min(layer.len());
        Ok(Message::Circuits(pb::Circuits {
            layer: m.layer,
            first: m.first,
            total: u32::try_from(layer.len()).unwrap_or(u32::MAX),
            circuits: layer[first..end]
                .iter()
                .map(|&c| u32::try_from(c).unwrap_or(u32::MAX))
                .collect(),
        }))
    }

    fn commit(&mut self, m: &pb::ConfigureCommit, ty: MessageType) -> Answer {
        let update = self.assembler.is_update();
        let (network, mut ack) = self
            .assembler
            .commit(m)
            .map_err(|e| self.convert_error(&e, ty))?;
        let loaded = if update {
            self.backend.update_weights(&network)
        } else {
            self.backend.configure(&network)
        };
        if let Err(e) = loaded {
            // The configuration is consumed; the host starts again with ConfigureBegin.
            self.drop_network();
            return Err(Box::new(error_from_backend(&e, ty.byte())));
        }
        ack.clipped_weights = self.max_weight.map_or(0, |max| {
            network
                .layers
                .iter()
                .flat_map(|l| &l.weights)
                .filter(|w| w.abs() > max)
                .count() as u64
        });
        self.loaded = Some(Loaded {
            n_inputs: network.n_inputs,
            layer_sizes: network.layer_sizes(),
        });
        self.committed = Some(network);
        self.state = pb::DeviceState::Configured;
        Ok(Message::ConfigureAck(ack))
    }

    fn loaded(&self, ty: MessageType) -> Result<Loaded, Box<pb::Error>> {
        self.loaded.clone().ok_or_else(|| self.bad_state(ty))
    }

    fn run(&mut self, m: &pb::RunRequest, ty: MessageType) -> Answer {
        let loaded = self.loaded(ty)?;
        if let Some(max) = self
            .info
            .max_samples_per_run
            .filter(|&max| m.n_samples > max)
        {
            return Err(self.convert_error(
                &ConvertError::out_of_range(
                    "n_samples",
                    m.n_samples,
                    Some(1.0),
                    Some(f64::from(max)),
                ),
                ty,
            ));
        }
        let window = self.checked_window();
        let (batch, record) = batch_from_request(m, &self.scale, window, loaded.n_inputs)
            .map_err(|e| self.convert_error(&e, ty))?;
        let sizes = match record {
            Record::AllLayers => loaded.layer_sizes.clone(),
            Record::OutputOnly => loaded.layer_sizes.last().copied().into_iter().collect(),
        };
        // A refused request leaves the state unchanged: decide whether one sample's page fits
        // the host's frames before anything runs (the noise must not move for a refusal).
        let needed = one_sample_page_bound(&sizes, window);
        let too_large = needed > self.host_max_frame_size;
        if too_large && !self.defects.run_before_page_check {
            return Err(self.frame_too_small(needed, ty));
        }
        self.run = None;
        self.trace = None;
        let output = self
            .backend
            .run(&batch, record)
            .map_err(|e| self.backend_error(&e, ty))?;
        let c = &mut self.counters;
        c.runs += 1;
        if too_large {
            // Only a device with the defect gets here.
            return Err(self.frame_too_small(needed, ty));
        }
        c.samples += output.stats.samples as u64;
        c.spikes += output.stats.spikes;
        c.hardware_time_us += output.stats.hardware_time_us.unwrap_or(0.0);
        c.lost_events += output.stats.lost_events;
        c.later_spikes += output.stats.later_spikes;
        let encoded = EncodedRun::new(&output, &sizes, &self.scale, self.backend.noise_position())
            .map_err(|e| self.convert_error(&e, ty))?;
        let page = encoded
            .page(0, self.host_max_frame_size)
            .map_err(|e| self.convert_error(&e, ty))?;
        self.run = Some(encoded);
        Ok(Message::RunResult(page))
    }

    /// The sample window the device checks times against, in ticks (0: none).
    fn checked_window(&self) -> u64 {
        if self.defects.window_unchecked {
            0
        } else {
            self.info.sample_window_ticks
        }
    }

    /// `OUT_OF_RANGE` on `host_max_frame_size`: an answer needs `needed`-byte frames.
    fn frame_too_small(&self, needed: usize, ty: MessageType) -> Box<pb::Error> {
        let mut e = error(
            pb::ErrorCode::OutOfRange,
            ty.byte(),
            format!(
                "one sample of the recorded layers may need a {needed}-byte RunResult frame; the host accepts {} (Hello.host_max_frame_size): raise it, or record the output layer only",
                self.host_max_frame_size
            ),
        );
        e.field = "host_max_frame_size".into();
        e.value = Some(self.host_max_frame_size as f64);
        e.min = Some(needed as f64);
        e.max = Some(f64::from(u32::MAX));
        e
    }

    fn backend_error(&self, e: &BackendError, ty: MessageType) -> Box<pb::Error> {
        match e {
            BackendError::NotConfigured => self.bad_state(ty),
            // Every input the device documents as valid has been checked against the sample
            // window already; a substrate that still refuses one contradicts the device.
            BackendError::InvalidInput(m) => error(
                pb::ErrorCode::Internal,
                ty.byte(),
                format!("the substrate refused inputs the device accepted: {m}"),
            ),
            other => Box::new(error_from_backend(other, ty.byte())),
        }
    }

    fn record(&mut self, m: &pb::MembraneRequest, ty: MessageType) -> Answer {
        let loaded = self.loaded(ty)?;
        if !self.backend.capabilities().features.membrane_recording {
            return Err(self.unsupported(ty, "membrane recording"));
        }
        let mut request =
            membrane_request_from(m, &self.scale, self.checked_window(), loaded.n_inputs)
                .map_err(|e| self.convert_error(&e, ty))?;
        // W ticks may exceed the window by a rounding error; the recording is the whole window.
        if let Some(w) = self.info.capabilities.sample_window {
            request.duration = request.duration.min(w);
        }
        let n_layers = loaded.layer_sizes.len();
        let Some(&size) = loaded.layer_sizes.get(request.layer) else {
            return Err(self.convert_error(
                &ConvertError::out_of_range(
                    "layer",
                    m.layer,
                    Some(0.0),
                    Some(n_layers.saturating_sub(1) as f64),
                ),
                ty,
            ));
        };
        if request.neuron >= size {
            return Err(self.convert_error(
                &ConvertError::out_of_range("neuron", m.neuron, Some(0.0), Some((size - 1) as f64)),
                ty,
            ));
        }
        self.run = None;
        self.trace = None;
        let trace = self
            .backend
            .record_membrane(&request)
            .map_err(|e| self.backend_error(&e, ty))?;
        let encoded = EncodedTrace::new(&trace, self.backend.noise_position());
        let page = encoded
            .page(0, self.host_max_frame_size)
            .map_err(|e| self.convert_error(&e, ty))?;
        self.trace = Some(encoded);
        Ok(Message::MembraneTrace(page))
    }
}
