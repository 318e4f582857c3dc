//! Times on the wire: clock ticks, delta-coded per sample as varints, 0 for "no spike".
//!
//! The one idea: a device counts time in ticks of its timestamp clock, so the wire carries
//! ticks, not floats. The host quantises model times to ticks once ([`TickScale`]); the device
//! never sees a float time in a run. Within a sample, consecutive times are close, so each is
//! sent as the difference to the previous non-silent one (zigzag for the sign, plus one so that
//! code 0 can mean "silent"), which keeps typical codes at one or two varint bytes.
//!
//! Code of a time `t` (ticks) with `base` = previous non-silent time of the same sample (0 at the
//! sample's start): `1 + zigzag(t - base)`, `zigzag(d) = 2d` for `d >= 0`, `-2d - 1` for `d < 0`.

use std::fmt;

/// Largest magnitude of a time in ticks (2^40 ticks: about 2.4 hours at 8 ns per tick).
pub const MAX_ABS_TICKS: i64 = 1 << 40;
/// The code of a silent input or a neuron that did not fire.
pub const SILENT: u64 = 0;

/// Zigzag encoding of a signed difference: 0, -1, 1, -2, ... become 0, 1, 2, 3, ...
pub const fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub const fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Why a time or a code could not be converted.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeCodeError {
    /// A time in model units that is NaN, -infinity or beyond [`MAX_ABS_TICKS`] ticks.
    #[error(
        "time {value} tau_s is not representable on the wire: allowed are +inf (silent) and finite times within +-{MAX_ABS_TICKS} ticks of {tick} tau_s"
    )]
    TimeOutOfRange {
        /// The time, model units.
        value: f64,
        /// One tick, model units.
        tick: f64,
    },
    /// A code whose decoded time lies beyond [`MAX_ABS_TICKS`].
    #[error("time code {code} at entry {index} decodes to a time beyond +-{MAX_ABS_TICKS} ticks")]
    CodeOutOfRange {
        /// The offending code.
        code: u64,
        /// Its position in the sample.
        index: usize,
    },
    /// A tick duration or `tau_s` that is not a positive finite number.
    #[error(
        "invalid time base: tick_ns = {tick_ns} and tau_s_us = {tau_s_us}; both must be positive and finite"
    )]
    InvalidScale {
        /// The tick duration, ns.
        tick_ns: f64,
        /// The model time unit, us.
        tau_s_us: f64,
    },
}

/// The conversion between model time units (`tau_s`) and device clock ticks.
///
/// One tick is `tick_ns * 1e-3 / tau_s_us` model units, computed with exactly this expression,
/// so that a host and an emulated device computing it from the same two numbers agree to the
/// last bit. A model time `t` becomes `round_half_even(t / tick)` ticks (error at most half a
/// tick); `k` ticks become exactly `k as f64 * tick`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TickScale {
    tick_ns: f64,
    tau_s_us: f64,
    tick: f64,
}

impl TickScale {
    /// The scale of a device whose clock ticks every `tick_ns` nanoseconds and whose model time
    /// unit is `tau_s_us` microseconds.
    pub fn new(tick_ns: f64, tau_s_us: f64) -> Result<TickScale, TimeCodeError> {
        let ok = |x: f64| x.is_finite() && x > 0.0;
        let tick = tick_ns * 1e-3 / tau_s_us;
        if !(ok(tick_ns) && ok(tau_s_us) && ok(tick)) {
            return Err(TimeCodeError::InvalidScale { tick_ns, tau_s_us });
        }
        Ok(TickScale {
            tick_ns,
            tau_s_us,
            tick,
        })
    }

    /// Duration of one tick in nanoseconds of hardware time.
    pub fn tick_ns(&self) -> f64 {
        self.tick_ns
    }

    /// Duration of one model time unit in microseconds of hardware time.
    pub fn tau_s_us(&self) -> f64 {
        self.tau_s_us
    }

    /// Duration of one tick in model time units.
    pub fn tick(&self) -> f64 {
        self.tick
    }

    /// A model time in ticks: `None` for `+inf` (silent), an error for NaN, `-inf` or a time
    /// beyond [`MAX_ABS_TICKS`].
    pub fn to_ticks(&self, t: f64) -> Result<Option<i64>, TimeCodeError> {
        if t == f64::INFINITY {
            return Ok(None);
        }
        let k = (t / self.tick).round_ties_even();
        if k.is_nan() || k.abs() > MAX_ABS_TICKS as f64 {
            return Err(TimeCodeError::TimeOutOfRange {
                value: t,
                tick: self.tick,
            });
        }
        Ok(Some(k as i64))
    }

    /// Ticks as a model time; `None` (silent) becomes `+inf`.
    pub fn to_model(&self, ticks: Option<i64>) -> f64 {
        match ticks {
            Some(k) => k as f64 * self.tick,
            None => f64::INFINITY,
        }
    }
}

impl fmt::Display for TickScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ns ticks, tau_s = {} us ({} ticks per tau_s)",
            self.tick_ns,
            self.tau_s_us,
            1.0 / self.tick
        )
    }
}

/// Appends the codes of one sample's times (in ticks, `None` = silent) to `out`.
///
/// Times must lie within [`MAX_ABS_TICKS`]; larger ones are clamped to it (the host-side
/// conversions never produce them).
pub fn encode_sample(ticks: impl IntoIterator<Item = Option<i64>>, out: &mut Vec<u64>) {
    let mut base = 0i64;
    for t in ticks {
        match t {
            None => out.push(SILENT),
            Some(t) => {
                let t = t.clamp(-MAX_ABS_TICKS, MAX_ABS_TICKS);
                out.push(1 + zigzag(t - base));
                base = t;
            }
        }
    }
}

/// Calls `f` with each time (in ticks, `None` = silent) of one sample's codes.
fn decode_each(codes: &[u64], mut f: impl FnMut(Option<i64>)) -> Result<(), TimeCodeError> {
    let mut base = 0i64;
    for (index, &code) in codes.iter().enumerate() {
        if code == SILENT {
            f(None);
            continue;
        }
        let t = base
            .checked_add(unzigzag(code - 1))
            .filter(|t| t.abs() <= MAX_ABS_TICKS)
            .ok_or(TimeCodeError::CodeOutOfRange { code, index })?;
        f(Some(t));
        base = t;
    }
    Ok(())
}

/// Decodes one sample's codes into times in ticks (`None` = silent), appending them to `out`.
pub fn decode_sample(codes: &[u64], out: &mut Vec<Option<i64>>) -> Result<(), TimeCodeError> {
    decode_each(codes, |t| out.push(t))
}

/// Appends the codes of one sample's model times to `out` (quantised to ticks by `scale`). On
/// error `out` is left as it was.
pub fn encode_times(
    times: &[f64],
    scale: &TickScale,
    out: &mut Vec<u64>,
) -> Result<(), TimeCodeError> {
    let start = out.len();
    let mut base = 0i64;
    for &t in times {
        match scale.to_ticks(t) {
            Ok(None) => out.push(SILENT),
            Ok(Some(k)) => {
                out.push(1 + zigzag(k - base));
                base = k;
            }
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Decodes one sample's codes into model times (silent = `+inf`), appending them to `out`.
pub fn decode_times(
    codes: &[u64],
    scale: &TickScale,
    out: &mut Vec<f64>,
) -> Result<(), TimeCodeError> {
    decode_each(codes, |t| out.push(scale.to_model(t)))
}

/// Number of bytes the codes take as protobuf varints.
pub fn varint_bytes(codes: &[u64]) -> usize {
    codes
        .iter()
        .map(|&c| prost::encoding::encoded_len_varint(c))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips() {
        for d in [0, 1, -1, 2, -2, 1000, -1000, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(d)), d);
        }
        assert_eq!([0, -1, 1, -2].map(zigzag), [0, 1, 2, 3]);
    }

    #[test]
    fn documented_example() {
        // tick = 8 ns at tau_s = 6 us: 750 ticks per tau_s.
        let scale = TickScale::new(8.0, 6.0).expect("valid");
        let mut codes = Vec::new();
        encode_times(&[0.2, f64::INFINITY, 0.1], &scale, &mut codes).expect("encodes");
        assert_eq!(codes, vec![301, 0, 150]);
        let mut back = Vec::new();
        decode_times(&codes, &scale, &mut back).expect("decodes");
        assert_eq!(
            back,
            vec![150.0 * scale.tick(), f64::INFINITY, 75.0 * scale.tick()]
        );
    }

    #[test]
    fn emulator_tick_expression_is_reproduced_bit_for_bit() {
        let scale = TickScale::new(8.0, 6.0).expect("valid");
        assert_eq!(scale.tick().to_bits(), (8.0f64 * 1e-3 / 6.0).to_bits());
    }

    #[test]
    fn rejects_unrepresentable_times_and_codes() {
        let scale = TickScale::new(8.0, 6.0).expect("valid");
        for bad in [f64::NAN, f64::NEG_INFINITY, 1e300, -1e300] {
            assert!(scale.to_ticks(bad).is_err(), "{bad}");
        }
        let mut out = Vec::new();
        assert!(decode_sample(&[u64::MAX], &mut out).is_err());
        assert!(decode_sample(&[1 + zigzag(MAX_ABS_TICKS), 1 + zigzag(1)], &mut out).is_err());
        assert!(TickScale::new(0.0, 6.0).is_err());
        assert!(TickScale::new(8.0, f64::INFINITY).is_err());
        assert!(TickScale::new(f64::MIN_POSITIVE, 1e300).is_err());
    }
}
