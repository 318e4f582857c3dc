//! The suite's side of the link: one request at a time, its answer or refusal, and the
//! damage notices a device may send in between.

use super::*;

/// A frame-level client: sends raw bytes, receives decoded frames.
pub(super) struct Client<L> {
    pub(super) link: L,
    pub(super) decoder: FrameDecoder,
    /// Frames decoded but not yet taken, damaged ones as their error.
    pub(super) pending: VecDeque<Result<Frame, FrameError>>,
    pub(super) buf: Vec<u8>,
    pub(super) next_id: u32,
    pub(super) wait: Duration,
    /// The nonce of the session the suite is in.
    pub(super) nonce: u64,
    /// `FRAME_DAMAGED` notices received so far.
    pub(super) damaged_notices: u64,
    /// Bytes received so far, frames or not.
    pub(super) bytes_received: u64,
}

/// True for the device's notice of a damaged frame (`FRAME_DAMAGED`, request id 0).
pub(super) fn is_damage_notice(frame: &Frame) -> bool {
    frame.header.request_id == 0
        && code_of(frame).is_some_and(|e| e.code == pb::ErrorCode::FrameDamaged as i32)
}

/// True for the failures of [`Client::next_frame`] a line can cause on its own (no answer,
/// a damaged answer), as opposed to an intact answer that is wrong.
pub(super) fn is_line_failure(error: &str) -> bool {
    error.starts_with(NO_ANSWER) || error.starts_with(DAMAGED_ANSWER)
}

pub(super) const NO_ANSWER: &str = "no answer within";
pub(super) const DAMAGED_ANSWER: &str = "the device sent a damaged frame";

pub(super) type Outcome = Result<String, String>;

pub(super) fn code_of(frame: &Frame) -> Option<pb::Error> {
    match decode_message(frame) {
        Ok(Message::Error(e)) => Some(e),
        _ => None,
    }
}

pub(super) fn code_name(code: i32) -> &'static str {
    pb::ErrorCode::try_from(code).map_or("an unknown error code", |c| c.as_str_name())
}

pub(super) fn describe(frame: &Frame) -> String {
    match decode_message(frame) {
        Ok(Message::Error(e)) => format!(
            "Error {} (\"{}\") with request id {}",
            code_name(e.code),
            e.message,
            frame.header.request_id
        ),
        Ok(m) => format!(
            "{} with request id {}",
            m.message_type(),
            frame.header.request_id
        ),
        Err(e) => format!("an undecodable frame ({e})"),
    }
}

impl<L: Link> Client<L> {
    pub(super) fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    pub(super) async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.link
            .write_all(bytes)
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        self.link
            .flush()
            .await
            .map_err(|e| format!("write failed: {e}"))
    }

    /// The next intact frame, or an error after `self.wait` without one (or at a damaged
    /// frame).
    pub(super) async fn next_frame(&mut self) -> Result<Frame, String> {
        let deadline = Instant::now() + self.wait;
        match self.next_item(deadline).await? {
            Ok(f) => Ok(f),
            Err(e) => Err(format!("{DAMAGED_ANSWER}: {e}")),
        }
    }

    /// The next frame as it arrived, intact or damaged; an error when none arrives before
    /// `deadline`.
    pub(super) async fn next_item(
        &mut self,
        deadline: Instant,
    ) -> Result<Result<Frame, FrameError>, String> {
        loop {
            if let Some(f) = self.pending.pop_front() {
                return Ok(f);
            }
            match tokio::time::timeout_at(deadline, self.link.read(&mut self.buf)).await {
                Err(_) => {
                    return Err(format!("{NO_ANSWER} {} ms", self.wait.as_millis()));
                }
                Ok(Ok(0)) => return Err("the link was closed".into()),
                Ok(Ok(n)) => {
                    self.bytes_received += n as u64;
                    let items = self.decoder.decode(&self.buf[..n]);
                    self.pending.extend(items);
                }
                Ok(Err(e)) => return Err(format!("read failed: {e}")),
            }
        }
    }

    /// Sends `wire` and returns the next frame that is not a `FRAME_DAMAGED` notice (the
    /// notices are counted in `self.damaged_notices`).
    pub(super) async fn exchange_raw(&mut self, wire: &[u8]) -> Result<Frame, String> {
        self.send(wire).await?;
        self.next_answer().await
    }

    /// The next frame that is not a `FRAME_DAMAGED` notice (the notices are counted in
    /// `self.damaged_notices`).
    pub(super) async fn next_answer(&mut self) -> Result<Frame, String> {
        loop {
            let frame = self.next_frame().await?;
            if is_damage_notice(&frame) {
                self.damaged_notices += 1;
                continue;
            }
            return Ok(frame);
        }
    }

    /// Sends `message` under a fresh id; returns the id and the bytes sent.
    pub(super) async fn send_message(
        &mut self,
        message: &Message,
    ) -> Result<(u32, Vec<u8>), String> {
        let id = self.id();
        let wire = encode_message(id, message, usize::MAX).map_err(|e| e.to_string())?;
        self.send(&wire).await?;
        Ok((id, wire))
    }

    /// Forgets frames decoded but not taken and any partial frame, so that reading starts
    /// afresh at the next frame.
    pub(super) fn forget_input(&mut self) {
        self.pending.clear();
        self.decoder.reset();
    }

    /// Sends `message` with a fresh id; returns the id, the wire bytes and the answer frame,
    /// which must carry that id.
    pub(super) async fn request(
        &mut self,
        message: &Message,
    ) -> Result<(u32, Vec<u8>, Frame), String> {
        let (id, wire) = self.send_message(message).await?;
        let frame = self.next_answer().await?;
        if frame.header.request_id != id {
            return Err(format!(
                "{} was answered by {} (expected request id {id})",
                message.message_type(),
                describe(&frame)
            ));
        }
        Ok((id, wire, frame))
    }

    /// Sends `message` and expects the answer of its type.
    pub(super) async fn call(&mut self, message: &Message) -> Result<Message, String> {
        let (_, _, frame) = self.request(message).await?;
        let ty = message.message_type();
        match decode_message(&frame) {
            Ok(m) if Some(m.message_type()) == ty.reply_type() => Ok(m),
            _ => Err(format!("{ty} was answered by {}", describe(&frame))),
        }
    }

    /// Sends a frame and expects an `Error` of `code` echoing `id` and the request type.
    pub(super) async fn expect_error(
        &mut self,
        wire: &[u8],
        id: u32,
        request_type: u8,
        code: pb::ErrorCode,
    ) -> Result<pb::Error, String> {
        let frame = self.exchange_raw(wire).await?;
        let Some(e) = code_of(&frame) else {
            return Err(format!(
                "expected Error {}, got {}",
                code.as_str_name(),
                describe(&frame)
            ));
        };
        if e.code != code as i32 || frame.header.request_id != id {
            return Err(format!(
                "expected Error {} with request id {id}, got {}",
                code.as_str_name(),
                describe(&frame)
            ));
        }
        if frame.header.flags.defined() != (Flags::RESPONSE | Flags::ERROR) {
            return Err(format!(
                "the Error frame carries flags {:?}, expected RESPONSE | ERROR",
                frame.header.flags
            ));
        }
        if id != 0 && e.request_type != u32::from(request_type) {
            return Err(format!(
                "the Error names request type {:#04x}, expected {request_type:#04x}",
                e.request_type
            ));
        }
        Ok(e)
    }

    /// Sends `message` under a fresh id and expects it refused with `code`; `what` describes
    /// the request in the failure.
    pub(super) async fn refused(
        &mut self,
        message: &Message,
        code: pb::ErrorCode,
        what: &str,
    ) -> Result<pb::Error, String> {
        let id = self.id();
        let wire = encode_message(id, message, usize::MAX).map_err(|e| e.to_string())?;
        self.expect_error(&wire, id, message.message_type().byte(), code)
            .await
            .map_err(|e| format!("{what}: {e}"))
    }

    pub(super) async fn stats(&mut self) -> Result<pb::DeviceStats, String> {
        match self
            .call(&Message::StatsRequest(pb::StatsRequest {}))
            .await?
        {
            Message::DeviceStats(s) => Ok(s),
            _ => Err("StatsRequest was not answered with DeviceStats".into()),
        }
    }
}

pub(super) fn frame_of(ty: u8, id: u32, flags: Flags, payload: &[u8]) -> Vec<u8> {
    encode_frame(&Header::new(ty, id, flags), payload).unwrap_or_default()
}
