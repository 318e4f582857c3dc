//! Retransmission timeouts learnt from the link's measured round trips (RFC 6298).

use super::*;

/// Smoothed round-trip time and its variation of one kind of request (RFC 6298), seconds.
#[derive(Clone, Copy, Debug)]
struct RoundTrip {
    srtt: f64,
    rttvar: f64,
}

/// Measured round trips, by request type and the size class (power of two) of the request
/// frame, so that a large run and a small acknowledgement each get a timeout of their own.
#[derive(Debug, Default)]
pub(super) struct RoundTrips {
    estimates: std::collections::HashMap<(u8, u32), RoundTrip>,
}

impl RoundTrips {
    pub(super) fn key(ty: MessageType, wire_len: usize) -> (u8, u32) {
        (ty.byte(), usize::BITS - wire_len.leading_zeros())
    }

    /// Takes one measured round trip of an attempt that was answered without a retry (Karn's
    /// rule: a retried request's answer cannot be matched to one of its sendings).
    pub(super) fn measured(&mut self, key: (u8, u32), seconds: f64) {
        self.estimates
            .entry(key)
            .and_modify(|e| {
                e.rttvar = 0.75 * e.rttvar + 0.25 * (e.srtt - seconds).abs();
                e.srtt = 0.875 * e.srtt + 0.125 * seconds;
            })
            .or_insert(RoundTrip {
                srtt: seconds,
                rttvar: seconds / 2.0,
            });
    }

    /// RFC 6298's retransmission timeout, `SRTT + 4 RTTVAR`, for a measured kind.
    pub(super) fn timeout(&self, key: (u8, u32)) -> Option<Duration> {
        self.estimates
            .get(&key)
            .map(|e| Duration::from_secs_f64(e.srtt + 4.0 * e.rttvar))
    }
}
