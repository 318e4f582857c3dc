//! After a failed check: do plain requests cross the line intact? The checks compare frames
//! exactly, so on a line that damages, loses or repeats frames they fail although the device
//! may be fine; this probe tells the two apart for the reader of the report.

use super::*;

/// Plain `StatsRequest`s the probe sends at most, one at a time: enough that a line damaging
/// 1 % of the frames shows it all but twice in a hundred probes (0.99^400 < 0.02), and a few
/// seconds at 115200 baud. The probe stops at the first request that does not come back
/// intact, so a lossy line costs at most one answer's wait.
pub const LINE_PROBES: u32 = 200;

/// How long the line must stay silent before the probe starts: answers still on their way from
/// the failed checks are read and dropped first.
const QUIET: Duration = Duration::from_millis(300);

/// What plain `StatsRequest`s met on the line, sent one at a time after the checks (only when a
/// check failed) until one did not come back intact or [`LINE_PROBES`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineProbe {
    /// Requests sent.
    pub requests: u32,
    /// Requests answered with an intact `DeviceStats` under their own request id.
    pub intact: u32,
    /// Frames that arrived damaged (bad COBS, length, CRC or version).
    pub damaged_answers: u32,
    /// `FRAME_DAMAGED` notices: the device received a damaged frame although only intact
    /// requests were sent.
    pub damage_notices: u32,
    /// Intact frames that were not the awaited answer: under another request id (repeated or
    /// late answers), or not `DeviceStats`.
    pub other: u32,
    /// Requests without an answer in time.
    pub lost: u32,
}

impl LineProbe {
    /// True when all [`LINE_PROBES`] requests came back intact, in order, with nothing else on
    /// the line.
    pub fn clean(&self) -> bool {
        self.requests == LINE_PROBES && self.clean_so_far()
    }

    fn clean_so_far(&self) -> bool {
        self.intact == self.requests
            && self.damaged_answers == 0
            && self.damage_notices == 0
            && self.other == 0
            && self.lost == 0
    }
}

impl fmt::Display for LineProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.clean() {
            return write!(
                f,
                "{} plain StatsRequests crossed the line intact and in order: the line is clean, so the failures above are the device's",
                self.requests
            );
        }
        let seen = [
            (self.damaged_answers, "damaged frames arrived"),
            (
                self.damage_notices,
                "FRAME_DAMAGED notice came for an intact request",
            ),
            (self.lost, "answer was lost"),
            (self.other, "other frames came (repeated or late)"),
        ];
        let seen: Vec<String> = seen
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        write!(
            f,
            "of {} plain StatsRequests sent one at a time {} came back intact, then {}. A line that damages, loses or repeats frames does this (so does a device that garbles or repeats its own frames); the checks compare frames exactly, so the failures above may be the line's: run the suite again on a clean line (the device's own port, or `spikeloop relay --damage 0 --disturb 0`)",
            self.requests,
            self.intact,
            seen.join(", ")
        )
    }
}

/// Drops whatever the failed checks left on the line, then sends [`LINE_PROBES`] plain
/// `StatsRequest`s one at a time and counts what came back.
pub(super) async fn probe_line<L: Link>(c: &mut Client<L>) -> LineProbe {
    let mut probe = LineProbe::default();
    // Late answers of the failed checks: read until the line is quiet (at most one answer
    // wait long), then start from a clean decoder.
    let give_up = Instant::now() + c.wait;
    loop {
        let quiet = (Instant::now() + QUIET).min(give_up);
        if c.next_item(quiet).await.is_err() || Instant::now() >= give_up {
            break;
        }
    }
    c.forget_input();
    for _ in 0..LINE_PROBES {
        probe.requests += 1;
        let Ok((id, _)) = c
            .send_message(&Message::StatsRequest(pb::StatsRequest {}))
            .await
        else {
            probe.lost += 1;
            break;
        };
        let deadline = Instant::now() + c.wait;
        loop {
            match c.next_item(deadline).await {
                Err(_) => {
                    probe.lost += 1;
                    break;
                }
                Ok(Err(_)) => probe.damaged_answers += 1,
                Ok(Ok(frame)) if is_damage_notice(&frame) => {
                    // The request itself arrived damaged: no answer is coming.
                    probe.damage_notices += 1;
                    break;
                }
                Ok(Ok(frame)) if frame.header.request_id != id => probe.other += 1,
                Ok(Ok(frame)) => {
                    if matches!(decode_message(&frame), Ok(Message::DeviceStats(_))) {
                        probe.intact += 1;
                    } else {
                        probe.other += 1;
                    }
                    break;
                }
            }
        }
        if probe.intact < probe.requests || !probe.clean_so_far() {
            break;
        }
    }
    probe
}
