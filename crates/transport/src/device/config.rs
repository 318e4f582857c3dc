//! What a virtual device announces and how it may deviate: its configuration, the defects
//! that show the conformance suite failing, and its counters.

use spikeloop_backend::Backend;

use crate::messages::pb;
use crate::timecode::TimeCodeError;

/// How a virtual device presents its backend on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceConfig {
    /// The device's identifier (at most 64 bytes); the host's backend name.
    pub device_id: String,
    /// Firmware name and version (at most 64 bytes).
    pub firmware_version: String,
    /// Largest frame the device accepts, bytes (header + payload + CRC); at least 256. The host
    /// splits a batch into several runs only when it does not fit one frame, so a large limit
    /// keeps one batch one run (on a device with pseudo-random noise the split would change
    /// which noise a sample sees).
    pub max_frame_size: usize,
    /// Requests the host may have outstanding; at least 1. The device executes requests in the
    /// order they arrive and never answers `BUSY`.
    pub max_requests_in_flight: u32,
    /// Answers kept for replay; at least `max_requests_in_flight`. 0 disables replay, which
    /// violates the specification (a retried request is executed again): only for testing the
    /// conformance suite against a broken device.
    pub replay_cache_len: usize,
    /// Longest time to answer a request other than a run or a recording, milliseconds. It must
    /// also cover the time the backend needs beyond the hardware time it announces (an emulator
    /// computes rather than waits).
    pub command_timeout_ms: u32,
    /// Tick of the wire's time codes, ns; `None` takes the backend's time resolution, or 8 ns
    /// (the BrainScaleS-2 FPGA clock) when its times are exact.
    pub tick_ns: Option<f64>,
    /// Hardware duration of one model time unit, us; `None` takes the backend's, or 6 us.
    pub tau_s_us: Option<f64>,
    /// Hardware time per sample, us (the host's run deadlines derive from it).
    pub sample_window_us: f64,
    /// Hardware time per run on top of its samples, us.
    pub batch_overhead_us: f64,
    /// Most samples per `RunRequest`; 0 for no limit besides the frame size.
    pub max_samples_per_run: u32,
    /// Synapse rows to announce (informative).
    pub synapse_rows: Option<u32>,
    /// Deliberate violations of the specification; all off in a conforming device. Only for
    /// showing that the conformance suite catches them.
    pub defects: Defects,
}

/// Defects a firmware might have, each reproducible on the virtual device so that the tests can
/// show the conformance suite failing against it. A conforming device has none
/// (`Defects::default()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defects {
    /// Looks `Hello` up in the replay cache like any request, so that a new host session whose
    /// `Hello` is byte-identical to the last one's is answered from the cache, nothing is reset
    /// and later requests get the previous session's answers.
    pub replay_hello: bool,
    /// Executes `Hello` but keeps the replay cache, so that a new session's request that is
    /// byte-identical to one of the last session's is answered with the old answer.
    pub keep_cache_on_hello: bool,
    /// Runs a `RunRequest` before deciding that one sample's results may not fit the host's
    /// frames, so that a refused run still advances the run counter and the noise.
    pub run_before_page_check: bool,
    /// Sends errors with unbounded fields, so that one can exceed the host's smallest frame
    /// and arrive as `INTERNAL` without its code and request type.
    pub unbounded_errors: bool,
    /// Names fields in a free form (`input_codes (entries)`) and leaves value, min and max off
    /// errors about time codes.
    pub legacy_error_fields: bool,
    /// Leaves the fit rules to the substrate, so that a network they refuse is accepted at
    /// `ConfigureBegin` and refused only at `ConfigureCommit`, after all its weights were sent.
    pub fit_checked_at_commit: bool,
    /// Leaves the sample window to the substrate instead of checking input times and
    /// durations against it.
    pub window_unchecked: bool,
    /// Drops damaged frames without the `FRAME_DAMAGED` notice, so that the host must wait
    /// for its deadline before it retries.
    pub silent_on_damage: bool,
    /// Counts damaged frames in `frames_received` too (the counter's definition is intact
    /// frames only).
    pub count_damaged_as_received: bool,
    /// Treats a weight update (`ConfigureBegin.update`) as a new network, as a firmware that
    /// predates the flag would, while still announcing `FEATURE_WEIGHT_UPDATE`: the update's
    /// commit is refused, since the bias times were never sent.
    pub update_drops_network: bool,
    /// Writes the entries of a `WriteParameterCodes` one by one, so that a bad entry leaves
    /// the ones before it written (the specification checks every entry first).
    pub codes_written_partially: bool,
}

impl Default for DeviceConfig {
    /// A device of the emulated chip's timing (48 us per sample, 100 us per run), frames up to
    /// 256 KiB, one request in flight, 16 cached answers, 10 s command timeout.
    fn default() -> Self {
        DeviceConfig {
            device_id: "spikeloop-virtual-device".into(),
            firmware_version: format!("spikeloop-virtual-device {}", env!("CARGO_PKG_VERSION")),
            max_frame_size: 1 << 18,
            max_requests_in_flight: 1,
            replay_cache_len: 16,
            command_timeout_ms: 10_000,
            tick_ns: None,
            tau_s_us: None,
            sample_window_us: 48.0,
            batch_overhead_us: 100.0,
            max_samples_per_run: 0,
            synapse_rows: None,
            defects: Defects::default(),
        }
    }
}

impl DeviceConfig {
    /// The configuration of a virtual device serving `backend`: the protocol defaults, with the
    /// timing (sample window and per-run overhead) and the synapse rows the backend describes
    /// in its capabilities, so that the device announces what it serves.
    pub fn serving(backend: &dyn Backend) -> Self {
        let caps = backend.capabilities();
        let defaults = Self::default();
        let tau_s_us = caps.tau_s_us.unwrap_or(6.0);
        Self {
            sample_window_us: caps
                .sample_window
                .map_or(defaults.sample_window_us, |w| w * tau_s_us),
            batch_overhead_us: caps.batch_overhead_us.unwrap_or(defaults.batch_overhead_us),
            synapse_rows: caps
                .geometry
                .and_then(|g| u32::try_from(g.rows_per_half * g.halves).ok()),
            ..defaults
        }
    }
}

/// Why a virtual device could not be set up.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// A configuration value is outside what the protocol allows.
    #[error("invalid device configuration: {field} = {value}; {allowed}")]
    InvalidConfig {
        /// The field of [`DeviceConfig`].
        field: &'static str,
        /// Its value, as text.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// The tick or the model time unit is unusable.
    #[error("invalid device time base: {0}")]
    TimeBase(#[from] TimeCodeError),
}

/// Counters of a virtual device since it was made (what `DeviceStats` reports).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DeviceCounters {
    /// Frames received with a valid CRC.
    pub frames_received: u64,
    /// Frames dropped before they could be answered (bad COBS, CRC, length, version, size).
    pub frames_rejected: u64,
    /// Duplicate requests answered from the replay cache.
    pub requests_replayed: u64,
    /// Error frames sent.
    pub errors_sent: u64,
    /// Runs executed.
    pub runs: u64,
    /// Samples run.
    pub samples: u64,
    /// First spikes recorded.
    pub spikes: u64,
    /// Hardware time of all runs, us.
    pub hardware_time_us: f64,
    /// Input events lost.
    pub lost_events: u64,
    /// Spikes after a neuron's first.
    pub later_spikes: u64,
    /// Requests executed (not replayed), answered or refused.
    pub requests_executed: u64,
}

impl Defects {
    /// Rewrites an error the way a device with these defects would send it.
    pub(super) fn damage_error(&self, e: &mut pb::Error) {
        if self.legacy_error_fields && e.code == pb::ErrorCode::OutOfRange as i32 {
            if e.field == "input_codes" {
                e.field = "input_codes (entries)".into();
            } else if e.field.starts_with("input_codes[") {
                e.field = "input_codes".into();
                (e.value, e.min, e.max) = (None, None, None);
            }
        }
        if self.unbounded_errors && e.code == pb::ErrorCode::DoesNotFit as i32 {
            e.resource = format!("{} ({})", e.resource, e.message);
            e.message = format!(
                "network does not fit: needs {} {}, {} available",
                e.needed, e.resource, e.available
            );
        }
    }
}
