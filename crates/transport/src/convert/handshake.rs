//! The handshake: `Hello` from the host, `HelloReply` with the device's capabilities.

use spikeloop_backend::{Capabilities, ChipGeometry, Features, MembraneReadout};

use super::{ConvertError, truncate_utf8};
use crate::frame::MIN_MAX_FRAME_SIZE;
use crate::messages::{PROTOCOL_VERSION, pb};
use crate::timecode::TickScale;

/// Longest `device_id`, `firmware_version` and `host_name` in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest `MembraneReadout.unit` in bytes.
pub const MAX_UNIT_LEN: usize = 16;

/// The number of ticks `W` of a sample window of `window` model units: the smallest `W` with
/// `W * tick >= window`, so that a tick count `k` lies in `[0, W)` exactly when `k * tick` lies
/// in `[0, window)`.
pub fn window_ticks(window: f64, scale: &TickScale) -> u64 {
    let tick = scale.tick();
    let limit = crate::timecode::MAX_ABS_TICKS as f64;
    let mut w = (window / tick).ceil().clamp(0.0, limit);
    while w > 0.0 && (w - 1.0) * tick >= window {
        w -= 1.0;
    }
    while w < limit && w * tick < window {
        w += 1.0;
    }
    w as u64
}

/// The host's `Hello`: this crate's version range, the host's frame limit and the session's
/// nonce (see [`session_nonce`]).
pub fn hello(host_name: &str, host_max_frame_size: u32, session_nonce: u64) -> pb::Hello {
    pb::Hello {
        min_version: PROTOCOL_VERSION,
        max_version: PROTOCOL_VERSION,
        host_max_frame_size,
        host_name: truncate_utf8(host_name, MAX_NAME_LEN),
        session_nonce,
    }
}

/// A fresh session nonce: never 0, and different for every call in every process (it mixes
/// the operating system's per-process random hash keys, the clock, the process id and a
/// counter). It identifies a connection on the wire and decides nothing about any result, so it
/// need not come from an experiment's seeds.
pub fn session_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish().max(1)
}

/// The first request id of the session with `nonce`: a point drawn with the nonce, so that ids
/// do not repeat from one host session to the next (a late answer meant for an earlier host is
/// then discarded as stale, never taken for an answer). Never 0.
pub fn first_request_id(nonce: u64) -> u32 {
    ((nonce >> 32) as u32 ^ nonce as u32).max(1)
}

/// The version a device speaks with a host: the newest one in both ranges.
pub fn negotiate_version(
    hello: &pb::Hello,
    device_min: u32,
    device_max: u32,
) -> Result<u32, ConvertError> {
    let version = hello.max_version.min(device_max);
    if hello.min_version > hello.max_version || version < hello.min_version.max(device_min) {
        return Err(ConvertError::UnsupportedVersion {
            host_min: hello.min_version,
            host_max: hello.max_version,
            device_min,
            device_max,
        });
    }
    Ok(version)
}

/// Everything a `HelloReply` says, checked and in the host's types.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInfo {
    /// The protocol version of this connection.
    pub version: u32,
    /// Oldest protocol version the device speaks.
    pub min_version: u32,
    /// Newest protocol version the device speaks.
    pub max_version: u32,
    /// The device's identifier (also `capabilities.name`).
    pub device_id: String,
    /// Firmware name and version.
    pub firmware_version: String,
    /// The device as the `Backend` trait describes it. `time_resolution_ns` and `tau_s_us` are
    /// always set (from the tick scale).
    pub capabilities: Capabilities,
    /// Conversion between model time and the device's ticks.
    pub scale: TickScale,
    /// Synapse rows, if the device reports them.
    pub synapse_rows: Option<u32>,
    /// Largest frame the device accepts, bytes (header + payload + CRC).
    pub max_frame_size: usize,
    /// Requests the host may have outstanding at once.
    pub max_requests_in_flight: u32,
    /// Largest number of samples per `RunRequest`; `None` for no limit besides the frame size.
    pub max_samples_per_run: Option<u32>,
    /// Hardware time per sample, microseconds.
    pub sample_window_us: f64,
    /// Hardware time per run on top of its samples, microseconds.
    pub batch_overhead_us: f64,
    /// Longest answer time for requests other than runs and recordings, milliseconds.
    pub command_timeout_ms: u32,
    /// The noise position when the device answered, if it has the feature.
    pub noise_position: Option<u64>,
    /// The session nonce the `HelloReply` echoed.
    pub session_nonce: u64,
    /// The sample window in ticks (0: none); `capabilities.sample_window` holds it in model
    /// units.
    pub sample_window_ticks: u64,
    /// The identity of the device's physical chip, if it has one (from `ReadChipId`, which a
    /// host sends after the handshake to a device with `FEATURE_PARAMETER_CODES`).
    pub chip_id: Option<String>,
}

impl DeviceInfo {
    /// Reads and checks a `HelloReply`: the version must be in the host's range and the
    /// device's, the time base positive, the frame limit at least 256 bytes.
    pub fn from_hello_reply(reply: &pb::HelloReply) -> Result<DeviceInfo, ConvertError> {
        let bad = |m: String| Err(ConvertError::BadReply(m));
        let Some(c) = &reply.capabilities else {
            return bad("HelloReply carries no capabilities".into());
        };
        if reply.version != PROTOCOL_VERSION
            || !(reply.min_version..=reply.max_version).contains(&reply.version)
        {
            return bad(format!(
                "HelloReply chose protocol version {} (device range {}..={}); this host speaks {PROTOCOL_VERSION}",
                reply.version, reply.min_version, reply.max_version
            ));
        }
        let scale = TickScale::new(c.tick_ns, c.tau_s_us)
            .map_err(|e| ConvertError::BadReply(e.to_string()))?;
        if (c.max_frame_size as usize) < MIN_MAX_FRAME_SIZE {
            return bad(format!(
                "max_frame_size {} is below the protocol minimum of {MIN_MAX_FRAME_SIZE} bytes",
                c.max_frame_size
            ));
        }
        if c.max_requests_in_flight == 0 {
            return bad("max_requests_in_flight is 0; it must be at least 1".into());
        }
        let non_negative = |name: &str, x: f64| {
            if x.is_finite() && x >= 0.0 {
                Ok(x)
            } else {
                Err(ConvertError::BadReply(format!(
                    "{name} = {x}; it must be finite and not negative"
                )))
            }
        };
        let positive = |name: &str, x: Option<f64>| match x {
            Some(v) if !(v.is_finite() && v > 0.0) => Err(ConvertError::BadReply(format!(
                "{name} = {v}; it must be positive and finite"
            ))),
            _ => Ok(x),
        };
        let mut features = Features::default();
        for f in &c.features {
            match pb::Feature::try_from(*f) {
                Ok(pb::Feature::MembraneRecording) => features.membrane_recording = true,
                Ok(pb::Feature::NoisePosition) => features.noise_position = true,
                Ok(pb::Feature::WeightUpdate) => features.weight_update = true,
                Ok(pb::Feature::ParameterCodes) => features.parameter_codes = true,
                _ => {} // unknown features are ignored
            }
        }
        let mut capabilities =
            Capabilities::unlimited(truncate_utf8(&reply.device_id, MAX_NAME_LEN));
        capabilities.max_neurons = c.max_neurons.map(|n| n as usize);
        capabilities.weight_bits = c.weight_bits;
        capabilities.max_weight = positive("max_weight", c.max_weight)?;
        capabilities.weight_scale = positive("weight_scale", c.weight_scale)?;
        capabilities.time_resolution_ns = Some(scale.tick_ns());
        capabilities.acceleration = positive("acceleration", c.acceleration)?;
        capabilities.tau_s_us = Some(scale.tau_s_us());
        capabilities.features = features;
        capabilities.sample_window = (c.sample_window_ticks > 0).then(|| {
            scale.to_model(Some(
                c.sample_window_ticks
                    .min(crate::timecode::MAX_ABS_TICKS as u64) as i64,
            ))
        });
        if let Some(g) = &c.geometry {
            let geometry = ChipGeometry {
                halves: g.halves as usize,
                neurons_per_half: g.neurons_per_half as usize,
                rows_per_half: g.rows_per_half as usize,
                rows_per_source: g.rows_per_source as usize,
                max_merged: (g.max_merged_circuits as usize).max(1),
            };
            if geometry.halves == 0 || geometry.rows_per_source == 0 {
                return bad(format!(
                    "geometry has {} halves and {} rows per source; both must be at least 1",
                    g.halves, g.rows_per_source
                ));
            }
            capabilities.geometry = Some(geometry);
        }
        if let Some(r) = &c.membrane_readout {
            if !(r.scale.is_finite() && r.offset.is_finite()) {
                return bad(format!(
                    "membrane_readout scale {} and offset {} must be finite",
                    r.scale, r.offset
                ));
            }
            capabilities.membrane_readout = Some(MembraneReadout {
                unit: truncate_utf8(&r.unit, MAX_UNIT_LEN),
                scale: r.scale,
                offset: r.offset,
            });
        }
        let batch_overhead_us = non_negative("batch_overhead_us", c.batch_overhead_us)?;
        capabilities.batch_overhead_us = Some(batch_overhead_us);
        Ok(DeviceInfo {
            version: reply.version,
            min_version: reply.min_version,
            max_version: reply.max_version,
            device_id: capabilities.name.clone(),
            firmware_version: truncate_utf8(&reply.firmware_version, MAX_NAME_LEN),
            capabilities,
            scale,
            synapse_rows: c.synapse_rows,
            max_frame_size: c.max_frame_size as usize,
            max_requests_in_flight: c.max_requests_in_flight,
            max_samples_per_run: (c.max_samples_per_run > 0).then_some(c.max_samples_per_run),
            sample_window_us: non_negative("sample_window_us", c.sample_window_us)?,
            batch_overhead_us,
            command_timeout_ms: c.command_timeout_ms,
            noise_position: reply.noise_position,
            session_nonce: reply.session_nonce,
            sample_window_ticks: c.sample_window_ticks,
            // Asked for after the handshake (ReadChipId), not part of HelloReply.
            chip_id: None,
        })
    }

    /// The `HelloReply` a device sends (the inverse of [`DeviceInfo::from_hello_reply`]). It
    /// always fits the smallest frames (256 bytes): when the names would make it longer, the
    /// firmware version is shortened first, then the device id. The names are shortened as
    /// if the noise position and the session nonce took their longest encodings, so that a
    /// device names itself the same in every session (a host compares the names to tell
    /// whether a run may continue on it).
    pub fn to_hello_reply(&self) -> pb::HelloReply {
        let mut reply = self.full_hello_reply();
        let frame_len =
            |r: &pb::HelloReply| crate::messages::Message::HelloReply(r.clone()).frame_len();
        let longest = pb::HelloReply {
            noise_position: reply.noise_position.map(|_| u64::MAX),
            session_nonce: u64::MAX,
            ..reply.clone()
        };
        let mut excess = frame_len(&longest).saturating_sub(MIN_MAX_FRAME_SIZE);
        for name in [&mut reply.firmware_version, &mut reply.device_id] {
            if excess == 0 {
                break;
            }
            let keep = name.len().saturating_sub(excess);
            let before = name.len();
            *name = truncate_utf8(name, keep);
            excess = excess.saturating_sub(before - name.len());
        }
        reply
    }

    /// The `HelloReply` with the names as long as [`MAX_NAME_LEN`] allows.
    fn full_hello_reply(&self) -> pb::HelloReply {
        let caps = &self.capabilities;
        let mut features = Vec::new();
        if caps.features.membrane_recording {
            features.push(pb::Feature::MembraneRecording as i32);
        }
        if caps.features.noise_position {
            features.push(pb::Feature::NoisePosition as i32);
        }
        if caps.features.weight_update {
            features.push(pb::Feature::WeightUpdate as i32);
        }
        if caps.features.parameter_codes {
            features.push(pb::Feature::ParameterCodes as i32);
        }
        pb::HelloReply {
            version: self.version,
            min_version: self.min_version,
            max_version: self.max_version,
            device_id: truncate_utf8(&self.device_id, MAX_NAME_LEN),
            firmware_version: truncate_utf8(&self.firmware_version, MAX_NAME_LEN),
            capabilities: Some(pb::Capabilities {
                max_neurons: caps
                    .max_neurons
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
                synapse_rows: self.synapse_rows,
                weight_bits: caps.weight_bits,
                max_weight: caps.max_weight,
                tick_ns: self.scale.tick_ns(),
                acceleration: caps.acceleration,
                tau_s_us: self.scale.tau_s_us(),
                max_frame_size: u32::try_from(self.max_frame_size).unwrap_or(u32::MAX),
                max_requests_in_flight: self.max_requests_in_flight,
                features,
                max_samples_per_run: self.max_samples_per_run.unwrap_or(0),
                sample_window_us: self.sample_window_us,
                batch_overhead_us: self.batch_overhead_us,
                command_timeout_ms: self.command_timeout_ms,
                sample_window_ticks: self.sample_window_ticks,
                geometry: caps.geometry.map(|g| pb::ChipGeometry {
                    halves: u32::try_from(g.halves).unwrap_or(u32::MAX),
                    neurons_per_half: u32::try_from(g.neurons_per_half).unwrap_or(u32::MAX),
                    rows_per_half: u32::try_from(g.rows_per_half).unwrap_or(u32::MAX),
                    rows_per_source: u32::try_from(g.rows_per_source).unwrap_or(u32::MAX),
                    max_merged_circuits: u32::try_from(g.max_merged).unwrap_or(u32::MAX),
                }),
                membrane_readout: caps.membrane_readout.as_ref().map(|r| pb::MembraneReadout {
                    unit: truncate_utf8(&r.unit, MAX_UNIT_LEN),
                    scale: r.scale,
                    offset: r.offset,
                }),
                weight_scale: caps.weight_scale,
            }),
            noise_position: self.noise_position,
            session_nonce: self.session_nonce,
        }
    }

    /// Expected hardware time of a run of `n_samples` samples, microseconds: the basis of a
    /// host's deadline for it.
    pub fn expected_run_time_us(&self, n_samples: usize) -> f64 {
        self.batch_overhead_us + n_samples as f64 * self.sample_window_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_negotiation() {
        let h = |min, max| pb::Hello {
            min_version: min,
            max_version: max,
            ..Default::default()
        };
        assert_eq!(negotiate_version(&h(1, 1), 1, 1), Ok(1));
        assert_eq!(negotiate_version(&h(1, 3), 1, 2), Ok(2));
        assert_eq!(negotiate_version(&h(2, 3), 1, 4), Ok(3));
        assert!(matches!(
            negotiate_version(&h(2, 3), 1, 1),
            Err(ConvertError::UnsupportedVersion { .. })
        ));
        assert!(negotiate_version(&h(3, 2), 1, 4).is_err());
    }
}
