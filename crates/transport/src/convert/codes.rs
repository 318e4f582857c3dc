//! Parameter codes on the wire: circuits' codes in and out of `CircuitCodes`, every entry of a
//! write checked before any is made, and requests sized to the frames.

use spikeloop_backend::analog::CODE_MAX;
use spikeloop_backend::{AnalogParameter, NeuronCodes};

use super::{ConvertError, payload_budget};
use crate::messages::pb;

/// Most bytes one `CircuitCodes` entry takes in a message: its tag and length, a circuit of up
/// to 5 varint bytes, and six codes of up to 2 bytes packed (`2 + 6 + 2 + 12`, rounded up).
pub const CIRCUIT_CODES_LEN: usize = 24;

/// The message entry of `circuit` with `codes` (`None`: no codes, a clear).
pub fn circuit_codes(circuit: usize, codes: Option<&NeuronCodes>) -> pb::CircuitCodes {
    pb::CircuitCodes {
        circuit: u32::try_from(circuit).unwrap_or(u32::MAX),
        codes: codes.map_or_else(Vec::new, |c| {
            AnalogParameter::ALL
                .iter()
                .map(|&p| u32::from(c.get(p)))
                .collect()
        }),
    }
}

/// Checks every entry of a write against `n_circuits` and the code range, naming the first bad
/// one as the protocol does (`writes[i].circuit`, `writes[i].codes[k]`, `writes[i].codes`), and
/// returns the writes; nothing has been written when it fails.
pub fn checked_writes(
    msg: &pb::WriteParameterCodes,
    n_circuits: usize,
) -> Result<Vec<(usize, Option<NeuronCodes>)>, ConvertError> {
    if msg.writes.is_empty() {
        return Err(ConvertError::out_of_range("writes", 0, Some(1.0), None));
    }
    msg.writes
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let circuit = w.circuit as usize;
            if circuit >= n_circuits {
                return Err(ConvertError::out_of_range(
                    format!("writes[{i}].circuit"),
                    w.circuit,
                    Some(0.0),
                    Some(n_circuits.saturating_sub(1) as f64),
                ));
            }
            Ok((circuit, codes_of(&w.codes, &format!("writes[{i}].codes"))?))
        })
        .collect()
}

/// The codes of a message entry (`None` for none), checked: 0 or 6 codes, each at most
/// `CODE_MAX`; `field` names the entry in an error.
pub fn codes_of(codes: &[u32], field: &str) -> Result<Option<NeuronCodes>, ConvertError> {
    match codes.len() {
        0 => Ok(None),
        6 => {
            let mut out = NeuronCodes::ZERO;
            for (k, (&p, &c)) in AnalogParameter::ALL.iter().zip(codes).enumerate() {
                let code = u16::try_from(c)
                    .ok()
                    .filter(|&c| c <= CODE_MAX)
                    .ok_or_else(|| {
                        ConvertError::out_of_range(
                            format!("{field}[{k}]"),
                            c,
                            Some(0.0),
                            Some(f64::from(CODE_MAX)),
                        )
                    })?;
                out.set(p, code);
            }
            Ok(Some(out))
        }
        n => Err(ConvertError::out_of_range(
            field,
            n as u32,
            Some(0.0),
            Some(6.0),
        )),
    }
}

/// The writes as requests that each fit frames of `max_frame_size` bytes.
pub fn write_requests(
    writes: &[(usize, Option<NeuronCodes>)],
    max_frame_size: usize,
) -> Vec<pb::WriteParameterCodes> {
    let per = entries_per_frame(max_frame_size);
    writes
        .chunks(per)
        .map(|chunk| pb::WriteParameterCodes {
            writes: chunk
                .iter()
                .map(|(c, codes)| circuit_codes(*c, codes.as_ref()))
                .collect(),
        })
        .collect()
}

/// How many `CircuitCodes` entries (or circuit numbers) surely fit one frame of
/// `max_frame_size` bytes; at least one.
pub fn entries_per_frame(max_frame_size: usize) -> usize {
    (payload_budget(max_frame_size) / CIRCUIT_CODES_LEN).max(1)
}
