//! The one serve loop: a virtual device answering whatever arrives on a byte stream.
//!
//! The device itself is a state machine over bytes; this loop is its only I/O. It serves an
//! in-memory pipe in the tests, a faulty line in the fault-injection tests and the controller
//! side of a pseudo-terminal in `spikeloop device`, which differ only in what a host going
//! away means ([`Hangup`]).

use std::io;
use std::time::Duration;

use spikeloop_backend::Backend;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::VirtualDevice;
use crate::link::Link;

/// What the serve loop does when the host goes away: the stream ends, or reports that nobody
/// holds its other end (a pseudo-terminal's controller side reads EIO or polls as hung up
/// then).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hangup {
    /// Return: the stream belongs to one host (a pipe, a socket, a test's link).
    Stop,
    /// Forget any partial frame, look again every `poll` and serve the next host on the same
    /// stream, as a board that stays powered serves one host after another; the network, the
    /// noise position and the replay cache stay.
    AwaitNextHost {
        /// How long to wait before looking again while no host is there.
        poll: Duration,
    },
}

/// Whether an I/O error means that nobody holds the stream's other end.
fn is_hangup(e: &io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::EIO) {
        return true;
    }
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
    )
}

/// Whether an answer that could not be written leaves the device without a host: nobody holds
/// the stream's other end, or the host took no byte of it for [`WRITE_STALL`].
fn answer_lost(e: &io::Error) -> bool {
    is_hangup(e) || e.kind() == io::ErrorKind::TimedOut
}

/// Serves `device` over `stream`: sends the boot byte, then answers whatever arrives, until
/// the host goes away (with [`Hangup::Stop`]; a host that takes no byte of an answer for
/// `WRITE_STALL`, two seconds, counts as gone) or an I/O error other than a hang-up, which is
/// returned. Interrupted reads are retried. The backend runs on the calling task: a run blocks
/// the task for as long as it computes.
pub async fn serve<B: Backend, S: Link>(
    device: &mut VirtualDevice<B>,
    stream: &mut S,
    hangup: Hangup,
) -> io::Result<()> {
    let mut out = Vec::new();
    device.boot(&mut out);
    let mut connected = match write(stream, &out).await {
        Ok(()) => true,
        Err(e) if answer_lost(&e) => false,
        Err(e) => return Err(e),
    };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let gone = match stream.read(&mut buf).await {
            Ok(0) => true,
            Ok(n) => {
                if !connected {
                    tracing::info!("a host is connected");
                    connected = true;
                }
                out.clear();
                device.receive(&buf[..n], &mut out);
                match write(stream, &out).await {
                    Ok(()) => false,
                    Err(e) if answer_lost(&e) => true,
                    Err(e) => return Err(e),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
            Err(e) if is_hangup(&e) => true,
            Err(e) => return Err(e),
        };
        if gone {
            match hangup {
                Hangup::Stop => return Ok(()),
                Hangup::AwaitNextHost { poll } => {
                    if connected {
                        tracing::info!("the host went away");
                        connected = false;
                        device.line_reset();
                        // Neither its requests still queued nor the answers it did not take
                        // belong to the next host.
                        if let Err(e) = stream.discard_input().and(stream.discard_output()) {
                            tracing::warn!("could not discard what the host left on the line: {e}");
                        }
                    }
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }
}

/// How long an answer may wait for the line to take any of it. A host that stopped reading
/// (hung, or gone without closing the line) loses the answer, as a frame lost on the line, and
/// the device goes back to listening instead of waiting for it forever.
pub const WRITE_STALL: Duration = Duration::from_secs(2);

/// Longest pause between two tries to hand the line an answer it does not take.
const MAX_WRITE_PAUSE: Duration = Duration::from_millis(20);

/// Writes and flushes `bytes` (nothing for none). While the line takes nothing, the device
/// tries again after a pause that grows to [`MAX_WRITE_PAUSE`], rather than whenever the line
/// reports room: a pseudo-terminal whose reader has stopped reports room it then refuses, which
/// kept the processor busy for as long as nobody read. After [`WRITE_STALL`] without progress
/// the write fails with `TimedOut`.
async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    let mut rest = bytes;
    let mut pause = Duration::from_millis(1);
    let mut stalled_since = None;
    while !rest.is_empty() {
        let attempt = std::future::poll_fn(|cx| {
            match std::pin::Pin::new(&mut *stream).poll_write(cx, rest) {
                std::task::Poll::Pending => std::task::Poll::Ready(None),
                std::task::Poll::Ready(r) => std::task::Poll::Ready(Some(r)),
            }
        })
        .await;
        match attempt {
            Some(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Some(Ok(n)) => {
                rest = &rest[n..];
                pause = Duration::from_millis(1);
                stalled_since = None;
            }
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Some(Err(e)) => return Err(e),
            None => {
                let since = *stalled_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= WRITE_STALL {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the line took no byte of the answer in time",
                    ));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_WRITE_PAUSE);
            }
        }
    }
    stream.flush().await
}
