//! The `Backend` operations as request sequences: each checked against what the device
//! announced before anything is sent, then sent and its answers assembled.

use super::*;

impl<L: Link> HostCore<L> {
    /// Loads `network`: `ConfigureBegin`, chunks sized for the device's frames, `ConfigureCommit`.
    pub async fn configure(&mut self, network: &Network) -> Result<(), HostError> {
        self.load(network, false).await
    }

    /// Loads `network` as a weight update (only its weights cross the line) when the device
    /// announced `FEATURE_WEIGHT_UPDATE` and the loaded network differs from `network` only in
    /// its weights; otherwise as [`HostCore::configure`] does.
    pub async fn update_weights(&mut self, network: &Network) -> Result<(), HostError> {
        let update = self.info.capabilities.features.weight_update
            && self
                .network
                .as_ref()
                .is_some_and(|loaded| loaded.differs_only_in_weights(network));
        self.load(network, update).await
    }

    /// One configure sequence, whole (`update` false) or weights only. The host forgets the
    /// loaded network first: if the sequence fails part-way, the device's is unknown.
    async fn load(&mut self, network: &Network, update: bool) -> Result<(), HostError> {
        self.network = None;
        self.check_fits(network)?;
        let messages = if update {
            let codes = crate::convert::WeightCodes::of(&self.info.capabilities);
            update_messages(network, self.info.max_frame_size, codes)?
        } else {
            configure_messages(network, self.info.max_frame_size)?
        };
        let expected = messages
            .iter()
            .filter(|m| matches!(m, Message::ConfigureChunk(_)))
            .map(|m| match m {
                Message::ConfigureChunk(c) => (c.values.len() + c.weight_codes.len()) as u64,
                _ => 0,
            })
            .sum::<u64>();
        for message in &messages {
            let answer = self.call(message, 0.0).await?;
            let Message::ConfigureAck(ack) = answer else {
                return Err(HostError::BadReply(format!(
                    "{} was answered with {}",
                    message.message_type(),
                    answer.message_type()
                )));
            };
            if ack.values_expected != expected {
                return Err(HostError::BadReply(format!(
                    "the device expects {} values for a network of {expected}",
                    ack.values_expected
                )));
            }
            if let Message::ConfigureCommit(_) = message {
                if !ack.committed || ack.values_received != expected {
                    return Err(HostError::BadReply(format!(
                        "ConfigureCommit was acknowledged with committed = {}, {} of {expected} values",
                        ack.committed, ack.values_received
                    )));
                }
                if ack.clipped_weights > 0 {
                    tracing::debug!(
                        clipped = ack.clipped_weights,
                        "device clipped weights to its largest weight"
                    );
                }
            }
        }
        self.network = Some(network.clone());
        Ok(())
    }

    /// Refuses, before anything is sent, a network the device's announced limits reject: more
    /// neurons than `max_neurons`, or a shape its fit rules cannot place.
    fn check_fits(&self, network: &Network) -> Result<(), HostError> {
        let caps = &self.info.capabilities;
        let neurons = network.n_neurons();
        if let Some(max) = caps.max_neurons.filter(|&max| neurons > max) {
            return Err(ConvertError::DoesNotFit {
                resource: "neurons".into(),
                needed: neurons as u64,
                available: max as u64,
                detail: format!("layer sizes {:?}", network.layer_sizes()),
            }
            .into());
        }
        if let Some(geometry) = &caps.geometry {
            let shape = network.shape();
            geometry
                .place(network.n_inputs, &shape)
                .map_err(ConvertError::from)?;
        }
        Ok(())
    }

    /// Refuses, before anything is sent, run requests whose input times the device's sample
    /// window rejects: the very check the device makes ([`crate::convert::decode_inputs`]),
    /// with samples counted over the whole batch.
    fn check_requests(&self, requests: &[pb::RunRequest]) -> Result<(), HostError> {
        let mut scratch = Vec::new();
        let mut first = 0;
        for r in requests {
            scratch.clear();
            let n = r.n_inputs as usize;
            if let Err(e) = crate::convert::decode_inputs(
                &r.input_codes,
                n,
                &self.info.scale,
                self.info.sample_window_ticks,
                &mut scratch,
            ) {
                let tick = self.info.scale.tick();
                return Err(HostError::Convert(ConvertError::InvalidInput(match e {
                    ConvertError::TimeOutOfRange {
                        sample,
                        channel,
                        ticks,
                        min,
                        max,
                        why,
                        ..
                    } => format!(
                        "sample {}, input {channel}: time {} tau_s ({ticks} ticks of {} ns) lies outside {why} of {}: allowed {} to {} tau_s",
                        first + sample,
                        ticks * tick,
                        self.info.scale.tick_ns(),
                        self.info.device_id,
                        min as f64 * tick,
                        max as f64 * tick,
                    ),
                    other => other.to_string(),
                })));
            }
            first += r.n_samples as usize;
        }
        Ok(())
    }

    /// Runs `batch` and reads every page of its results.
    pub async fn run(
        &mut self,
        batch: &InputBatch,
        record: Record,
    ) -> Result<RunOutput, HostError> {
        let started = std::time::Instant::now();
        let Some(network) = self.network.clone() else {
            return Err(HostError::NotConfigured);
        };
        let requests = run_requests(
            batch,
            record,
            &self.info.scale,
            self.info.max_frame_size,
            self.info.max_samples_per_run,
        )?;
        let (layers, sizes) = crate::convert::recorded_layers(&network, record);
        self.check_requests(&requests)?;
        let needed = crate::convert::one_sample_page_bound(&sizes, self.info.sample_window_ticks);
        if needed > self.config.max_frame_size as usize {
            return Err(ConvertError::FrameTooSmall {
                what: "a RunResult with one sample of the recorded layers",
                needed,
                limit: self.config.max_frame_size as usize,
            }
            .into());
        }
        let mut data = Vec::with_capacity(batch.len() * sizes.iter().sum::<usize>());
        let mut stats = RunStats::default();
        let mut hardware = None::<f64>;
        for req in requests {
            let n = req.n_samples as usize;
            let expected = self.info.expected_run_time_us(n);
            let mut assembler =
                RunResultAssembler::new(n, layers.clone(), sizes.clone(), self.info.scale);
            let mut answer = self.call(&Message::RunRequest(req), expected).await?;
            loop {
                let Message::RunResult(page) = &answer else {
                    return Err(HostError::BadReply(format!(
                        "a run was answered with {}",
                        answer.message_type()
                    )));
                };
                assembler.add_page(page)?;
                let Some(first_sample) = assembler.next_sample() else {
                    break;
                };
                answer = self
                    .call(
                        &Message::ReadRunResult(pb::ReadRunResult { first_sample }),
                        0.0,
                    )
                    .await?;
            }
            if let Some(p) = assembler.noise_position() {
                self.noise_position = Some(p);
            }
            let out = assembler.finish()?;
            data.extend_from_slice(out.spikes.as_slice());
            stats.samples += out.stats.samples;
            stats.spikes += out.stats.spikes;
            stats.lost_events += out.stats.lost_events;
            stats.later_spikes += out.stats.later_spikes;
            if let Some(h) = out.stats.hardware_time_us {
                *hardware.get_or_insert(0.0) += h;
            }
        }
        stats.hardware_time_us = hardware;
        stats.wall_time = started.elapsed();
        let spikes =
            SpikeTimes::new(layers, sizes, data).map_err(|e| HostError::BadReply(e.to_string()))?;
        Ok(RunOutput { spikes, stats })
    }

    /// Records one neuron's membrane during one sample and reads every page of the trace.
    pub async fn record_membrane(
        &mut self,
        request: &MembraneRequest,
    ) -> Result<MembraneTrace, HostError> {
        let msg = membrane_request(request, &self.info.scale)?;
        // The device's own check of inputs and duration against its window, before sending.
        crate::convert::membrane_request_from(
            &msg,
            &self.info.scale,
            self.info.sample_window_ticks,
            msg.input_codes.len(),
        )?;
        let expected = self.info.expected_run_time_us(1);
        let mut assembler = TraceAssembler::new(MAX_TRACE_VALUES);
        let mut answer = self.call(&Message::MembraneRequest(msg), expected).await?;
        loop {
            let Message::MembraneTrace(page) = &answer else {
                return Err(HostError::BadReply(format!(
                    "a recording was answered with {}",
                    answer.message_type()
                )));
            };
            assembler.add_page(page)?;
            if page.noise_position.is_some() {
                self.noise_position = page.noise_position;
            }
            let Some(first_value) = assembler.next_value() else {
                break;
            };
            answer = self
                .call(
                    &Message::ReadMembraneTrace(pb::ReadMembraneTrace { first_value }),
                    0.0,
                )
                .await?;
        }
        Ok(assembler.finish()?)
    }

    /// Moves the device's trial-to-trial noise to `position`.
    pub async fn set_noise_position(&mut self, position: u64) -> Result<u64, HostError> {
        let answer = self
            .call(
                &Message::SetNoisePosition(pb::SetNoisePosition { position }),
                0.0,
            )
            .await?;
        match answer {
            Message::NoisePosition(p) => {
                self.noise_position = Some(p.position);
                Ok(p.position)
            }
            m => Err(HostError::BadReply(format!(
                "SetNoisePosition was answered with {}",
                m.message_type()
            ))),
        }
    }

    /// The circuits of every layer of the loaded network, page by page.
    pub async fn circuits(&mut self) -> Result<Vec<Vec<usize>>, HostError> {
        let Some(network) = self.network.clone() else {
            return Err(HostError::NotConfigured);
        };
        let mut layers = Vec::with_capacity(network.layers.len());
        for (l, layer) in network.layers.iter().enumerate() {
            let mut circuits = Vec::with_capacity(layer.size);
            while circuits.len() < layer.size {
                let request = pb::ReadCircuits {
                    layer: u32::try_from(l).unwrap_or(u32::MAX),
                    first: u32::try_from(circuits.len()).unwrap_or(u32::MAX),
                };
                match self.call(&Message::ReadCircuits(request), 0.0).await? {
                    Message::Circuits(page)
                        if page.total as usize == layer.size
                            && page.first as usize == circuits.len()
                            && !page.circuits.is_empty() =>
                    {
                        circuits.extend(page.circuits.iter().map(|&c| c as usize));
                    }
                    m => {
                        return Err(HostError::BadReply(format!(
                            "ReadCircuits for layer {l} from neuron {} was answered with {} (expected a page of the layer's {} neurons)",
                            circuits.len(),
                            m.message_type(),
                            layer.size
                        )));
                    }
                }
            }
            circuits.truncate(layer.size);
            layers.push(circuits);
        }
        Ok(layers)
    }

    /// Writes or clears circuits' codes, in requests that fit the device's frames; every entry
    /// is checked against the announced circuits and the code range before anything is sent.
    pub async fn write_parameter_codes(
        &mut self,
        writes: &[(usize, Option<NeuronCodes>)],
    ) -> Result<(), HostError> {
        // Every request checked as the device checks it, before the first is sent.
        let n = self.info.capabilities.max_neurons.unwrap_or(0);
        let requests = crate::convert::write_requests(writes, self.info.max_frame_size);
        for request in &requests {
            crate::convert::checked_writes(request, n)?;
        }
        for request in requests {
            let expected = request.writes.len() as u32;
            match self
                .call(&Message::WriteParameterCodes(request), 0.0)
                .await?
            {
                Message::ParameterCodesAck(ack) if ack.written == expected => {}
                m => {
                    return Err(HostError::BadReply(format!(
                        "WriteParameterCodes of {expected} circuits was answered with {}",
                        m.message_type()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The codes written to one circuit.
    pub async fn read_parameter_codes(
        &mut self,
        circuit: usize,
    ) -> Result<Option<NeuronCodes>, HostError> {
        let n = self.info.capabilities.max_neurons.unwrap_or(0);
        if circuit >= n {
            return Err(HostError::Convert(ConvertError::InvalidInput(format!(
                "circuit {circuit} does not exist: the device has circuits 0..{n}"
            ))));
        }
        let request = pb::ReadParameterCodes {
            circuits: vec![u32::try_from(circuit).unwrap_or(u32::MAX)],
        };
        match self
            .call(&Message::ReadParameterCodes(request), 0.0)
            .await?
        {
            Message::ParameterCodes(p)
                if p.codes.len() == 1 && p.codes[0].circuit as usize == circuit =>
            {
                crate::convert::codes_of(&p.codes[0].codes, "codes[0].codes")
                    .map_err(|e| HostError::BadReply(format!("ParameterCodes: {e}")))
            }
            m => Err(HostError::BadReply(format!(
                "ReadParameterCodes of circuit {circuit} was answered with {}",
                m.message_type()
            ))),
        }
    }

    /// The identity of the device's chip (`None` for an empty answer).
    pub async fn read_chip_id(&mut self) -> Result<(Option<String>, Option<f64>), HostError> {
        match self
            .call(&Message::ReadChipId(pb::ReadChipId {}), 0.0)
            .await?
        {
            Message::ChipId(c) => Ok((
                (!c.chip_id.is_empty()).then(|| crate::convert::truncate_utf8(&c.chip_id, 64)),
                (c.parameter_settle_us.is_finite() && c.parameter_settle_us > 0.0)
                    .then_some(c.parameter_settle_us),
            )),
            m => Err(HostError::BadReply(format!(
                "ReadChipId was answered with {}",
                m.message_type()
            ))),
        }
    }

    /// The device's counters.
    pub async fn stats(&mut self) -> Result<pb::DeviceStats, HostError> {
        match self
            .call(&Message::StatsRequest(pb::StatsRequest {}), 0.0)
            .await?
        {
            Message::DeviceStats(s) => Ok(s),
            m => Err(HostError::BadReply(format!(
                "StatsRequest was answered with {}",
                m.message_type()
            ))),
        }
    }

    /// Returns the device to READY (its network is dropped).
    pub async fn reset(&mut self) -> Result<(), HostError> {
        self.network = None;
        match self
            .call(&Message::ResetRequest(pb::ResetRequest {}), 0.0)
            .await?
        {
            Message::ResetReply(_) => Ok(()),
            m => Err(HostError::BadReply(format!(
                "ResetRequest was answered with {}",
                m.message_type()
            ))),
        }
    }
}
