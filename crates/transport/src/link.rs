//! Byte links: whatever carries the protocol's bytes between a host and a device.
//!
//! The one idea: the host's protocol code and the device's server see only an asynchronous byte
//! stream ([`Link`]), never a serial port, so the very code that drives a real device over USB
//! runs in the tests over an in-memory pipe ([`memory_link`]), through a faulty line
//! ([`crate::conformance::fault::FaultyLink`]) or over a pseudo-terminal. A link has one duty beyond reading
//! and writing: dropping stale bytes, input when a host connects ([`Link::discard_input`]) and
//! output when a device's host goes away ([`Link::discard_output`]), which a serial port does in
//! its driver and an in-memory pipe need not do at all.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};

/// A bidirectional byte stream the protocol runs over.
pub trait Link: AsyncRead + AsyncWrite + Unpin + Send {
    /// Discards bytes that arrived but were not read yet (the rest of an answer meant for an
    /// earlier connection, a boot banner). Called once when a host connects, and by the
    /// device's serve loop when its host goes away; the default does nothing.
    fn discard_input(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Discards bytes written but not yet taken by the other end (answers meant for a host
    /// that went away, which the next host must not read). Called by the device's serve loop
    /// when its host goes away; the default does nothing.
    fn discard_output(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Link for DuplexStream {}

impl Link for tokio_serial::SerialStream {
    fn discard_input(&mut self) -> io::Result<()> {
        tokio_serial::SerialPort::clear(self, tokio_serial::ClearBuffer::Input)
            .map_err(io::Error::from)
    }

    fn discard_output(&mut self) -> io::Result<()> {
        tokio_serial::SerialPort::clear(self, tokio_serial::ClearBuffer::Output)
            .map_err(io::Error::from)
    }
}

impl<L: Link + ?Sized> Link for Box<L> {
    fn discard_input(&mut self) -> io::Result<()> {
        (**self).discard_input()
    }

    fn discard_output(&mut self) -> io::Result<()> {
        (**self).discard_output()
    }
}

/// Bytes an in-memory link buffers in each direction before a writer waits for the reader:
/// more than the largest frame either side sends by default, so that neither side ever waits
/// for the other while it writes a whole frame.
pub const MEMORY_LINK_BUFFER: usize = 1 << 20;

/// Two connected ends of an in-memory link (host end, device end).
pub fn memory_link() -> (DuplexStream, DuplexStream) {
    tokio::io::duplex(MEMORY_LINK_BUFFER)
}
