//! The one serve loop: a virtual device answering whatever arrives on a byte stream.
//!
//! The device itself is a state machine over bytes; this loop is its only I/O. It serves an
//! in-memory pipe in the tests, a faulty line in the fault-injection tests and the controller
//! side of a pseudo-terminal in `spikeloop device`, which differ only in what a host going
//! away means ([`Hangup`]).

use std::io;
use std::time::Duration;

use spikeloop_backend::Backend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::VirtualDevice;

/// What the serve loop does when the host goes away: the stream ends, or reports that nobody
/// holds its other end (a pseudo-terminal's controller side reads EIO then).
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

/// Serves `device` over `stream`: sends the boot byte, then answers whatever arrives, until
/// the host goes away (with [`Hangup::Stop`]) or an I/O error other than a hang-up, which is
/// returned. Interrupted reads are retried. The backend runs on the calling task: a run blocks
/// the task for as long as it computes.
pub async fn serve<B: Backend, S: AsyncRead + AsyncWrite + Unpin>(
    device: &mut VirtualDevice<B>,
    stream: &mut S,
    hangup: Hangup,
) -> io::Result<()> {
    let mut out = Vec::new();
    device.boot(&mut out);
    let mut connected = match write(stream, &out).await {
        Ok(()) => true,
        Err(e) if is_hangup(&e) => false,
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
                    Err(e) if is_hangup(&e) => true,
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
                    }
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }
}

/// Writes and flushes `bytes` (nothing for none).
async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    stream.write_all(bytes).await?;
    stream.flush().await
}
