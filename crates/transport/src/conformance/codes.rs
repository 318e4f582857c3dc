//! Checks of the parameter codes (feature `PARAMETER_CODES`): the chip identity, writes read
//! back and cleared, bad entries refused without writing any, and the circuits of the loaded
//! network.

use super::*;

/// The reference operating point's codes on BrainScaleS-2's nominal curves, in the protocol's
/// order (threshold, leak, reset, tau_m, tau_s, synaptic gain).
const CODES: [u32; 6] = [750, 500, 500, 170, 170, 500];

fn write(entries: &[(u32, &[u32])]) -> Message {
    Message::WriteParameterCodes(pb::WriteParameterCodes {
        writes: entries
            .iter()
            .map(|(circuit, codes)| pb::CircuitCodes {
                circuit: *circuit,
                codes: codes.to_vec(),
            })
            .collect(),
    })
}

/// The written codes of `circuit` as the device reports them (empty: none).
async fn read<L: Link>(c: &mut Client<L>, circuit: u32) -> Result<Vec<u32>, String> {
    let ask = Message::ReadParameterCodes(pb::ReadParameterCodes {
        circuits: vec![circuit],
    });
    match c.call(&ask).await? {
        Message::ParameterCodes(p) if p.codes.len() == 1 && p.codes[0].circuit == circuit => {
            Ok(p.codes[0].codes.clone())
        }
        _ => Err(format!(
            "ReadParameterCodes of circuit {circuit} was not answered with its entry"
        )),
    }
}

pub(super) async fn parameter_codes<L: Link>(c: &mut Client<L>, info: &DeviceInfo) -> Outcome {
    let Some(n) = info.capabilities.max_neurons else {
        return Err(
            "PARAMETER_CODES is announced without max_neurons, which numbers the circuits".into(),
        );
    };
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    let chip = match c.call(&Message::ReadChipId(pb::ReadChipId {})).await? {
        Message::ChipId(id) if id.chip_id.len() <= 64 => id.chip_id,
        _ => return Err("ReadChipId was not answered with a ChipId of at most 64 bytes".into()),
    };
    let last = n - 1;
    let before = read(c, last).await?;

    // A write is read back, a clear empties it.
    match c.call(&write(&[(last, &CODES)])).await? {
        Message::ParameterCodesAck(a) if a.written == 1 => {}
        _ => {
            return Err(
                "WriteParameterCodes of one circuit was not acknowledged with written = 1".into(),
            );
        }
    }
    let got = read(c, last).await?;
    if got != CODES {
        return Err(format!(
            "circuit {last} was written {CODES:?} and reads back {got:?}"
        ));
    }
    c.call(&write(&[(last, &[])])).await?;
    let cleared = read(c, last).await?;
    if !cleared.is_empty() {
        return Err(format!(
            "circuit {last} was cleared and reads back {cleared:?}"
        ));
    }

    // Bad entries are refused and nothing of the request is written.
    let mut bad_code = CODES;
    bad_code[2] = 1023;
    let cases: [(Message, &str, &str); 3] = [
        (
            write(&[(last, &CODES), (0, &bad_code)]),
            "writes[1].codes[2]",
            "a reset code of 1023 in the second entry",
        ),
        (
            write(&[(last, &CODES), (n, &CODES)]),
            "writes[1].circuit",
            "circuit max_neurons in the second entry",
        ),
        (
            write(&[(last, &CODES[..3])]),
            "writes[0].codes",
            "an entry of 3 codes",
        ),
    ];
    for (message, field, what) in cases {
        let e = c.refused(&message, pb::ErrorCode::OutOfRange, what).await?;
        complete_range(what, &e, field)?;
        let now = read(c, last).await?;
        if !now.is_empty() {
            return Err(format!(
                "{what} was refused, but circuit {last} of the same request was written ({now:?})"
            ));
        }
    }
    if !before.is_empty() {
        // Leave the circuit as it was.
        let restore: Vec<u32> = before.clone();
        c.call(&write(&[(last, &restore)])).await?;
    }

    // The circuits of the loaded network: two distinct ones for the golden output layer.
    load_golden(c, info).await?;
    let ask = Message::ReadCircuits(pb::ReadCircuits { layer: 1, first: 0 });
    let circuits = match c.call(&ask).await? {
        Message::Circuits(p) if p.layer == 1 && p.first == 0 && p.total == 2 => p.circuits,
        _ => {
            return Err(
                "ReadCircuits of layer 1 was not answered with a page of its 2 neurons".into(),
            );
        }
    };
    if circuits.len() != 2 || circuits[0] == circuits[1] || circuits.iter().any(|&x| x >= n) {
        return Err(format!(
            "the golden output layer runs on circuits {circuits:?}: two distinct circuits below {n} expected"
        ));
    }
    let e = c
        .refused(
            &Message::ReadCircuits(pb::ReadCircuits { layer: 2, first: 0 }),
            pb::ErrorCode::OutOfRange,
            "ReadCircuits of layer 2 of 2",
        )
        .await?;
    complete_range("ReadCircuits of layer 2 of 2", &e, "layer")?;
    Ok(format!(
        "chip {:?}; codes of circuit {last} written, read back and cleared; a bad code, a circuit out of range and a wrong count refused without writing; the golden output layer runs on circuits {circuits:?}",
        chip
    ))
}
