//! A faulty line for tests: flips bits, drops, duplicates, splits and delays bytes and frames.
//!
//! The one idea: faults are injected *between* two unmodified endpoints, frame by frame, from a
//! seeded generator, so a test can run thousands of calls through a line as bad as it likes and
//! still reproduce every fault exactly. [`FaultyLink::wrap`] puts the line in front of any
//! [`Link`]: whatever the wrapped side writes and reads passes through two forwarding tasks (one
//! per direction) that cut the byte stream at its 0x00 delimiters and, with probability
//! [`FaultConfig::rate`] per frame, damage the frame in one of the ways of [`Fault`]. Delays
//! stall the direction they happen in, like a congested line; under a paused tokio clock they
//! cost no real time.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

use crate::link::{Link, memory_link};

/// What can happen to a frame on the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// One bit of one byte inverted.
    FlipBit,
    /// One byte lost.
    DropByte,
    /// One random byte inserted.
    InsertByte,
    /// The whole frame lost.
    DropFrame,
    /// One byte received twice.
    DuplicateByte,
    /// The whole frame received twice.
    DuplicateFrame,
    /// The frame delivered in several pieces with pauses between them (harmless on a correct
    /// receiver).
    Split,
    /// The frame held back for a while, with everything behind it.
    Delay,
}

impl Fault {
    /// The faults that change or lose a frame's bytes; the others repeat, cut up or delay an
    /// intact frame.
    pub const DAMAGING: [Fault; 5] = [
        Fault::FlipBit,
        Fault::DropByte,
        Fault::InsertByte,
        Fault::DuplicateByte,
        Fault::DropFrame,
    ];
    /// The faults that leave a frame's bytes intact: repeated, cut into pieces, delayed.
    pub const DISTURBING: [Fault; 3] = [Fault::DuplicateFrame, Fault::Split, Fault::Delay];

    /// Every kind of fault, each drawn equally often.
    pub const ALL: [Fault; 8] = [
        Fault::FlipBit,
        Fault::DropByte,
        Fault::InsertByte,
        Fault::DropFrame,
        Fault::DuplicateByte,
        Fault::DuplicateFrame,
        Fault::Split,
        Fault::Delay,
    ];
}

/// How bad the line is.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Probability that a frame suffers one fault, per frame and direction, `0..=1`.
    pub rate: f64,
    /// Seed of the fault generator.
    pub seed: u64,
    /// Longest delay of a [`Fault::Delay`]; delays are drawn uniformly up to it.
    pub max_delay: Duration,
    /// The kinds of fault to draw from.
    pub kinds: Vec<Fault>,
}

impl Default for FaultConfig {
    /// 1 % of frames, every kind, delays up to 200 ms, seed 1.
    fn default() -> Self {
        FaultConfig {
            rate: 0.01,
            seed: 1,
            max_delay: Duration::from_millis(200),
            kinds: Fault::ALL.to_vec(),
        }
    }
}

/// What the line did so far, both directions together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Frames (delimited byte runs) carried.
    pub frames: u64,
    /// Bits flipped.
    pub flipped_bits: u64,
    /// Single bytes dropped.
    pub dropped_bytes: u64,
    /// Random bytes inserted.
    pub inserted_bytes: u64,
    /// Whole frames dropped.
    pub dropped_frames: u64,
    /// Single bytes duplicated.
    pub duplicated_bytes: u64,
    /// Whole frames duplicated.
    pub duplicated_frames: u64,
    /// Frames split into pieces.
    pub split_frames: u64,
    /// Frames delayed.
    pub delayed_frames: u64,
}

impl FaultCounts {
    /// Faults injected, all kinds together.
    pub fn total(&self) -> u64 {
        self.damaged() + self.duplicated_frames + self.split_frames + self.delayed_frames
    }

    /// Frames whose bytes were changed or lost (bit flips, lost, inserted or duplicated bytes,
    /// lost frames).
    pub fn damaged(&self) -> u64 {
        self.flipped_bits
            + self.dropped_bytes
            + self.inserted_bytes
            + self.dropped_frames
            + self.duplicated_bytes
    }
}

impl std::fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} frames carried, {} damaged ({:.2} %): {} bit flips, {} lost, {} inserted and {} duplicated bytes, {} lost frames; besides {} frames repeated, {} cut into pieces, {} stalls",
            self.frames,
            self.damaged(),
            100.0 * self.damaged() as f64 / self.frames.max(1) as f64,
            self.flipped_bits,
            self.dropped_bytes,
            self.inserted_bytes,
            self.duplicated_bytes,
            self.dropped_frames,
            self.duplicated_frames,
            self.split_frames,
            self.delayed_frames
        )
    }
}

/// SplitMix64: a small, fast generator fully determined by its seed. It drives the faults of a
/// [`FaultyLink`] and is public so that tests can build reproducible data with the same stream.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (0 for `n = 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// A [`Link`] seen through a faulty line. Made inside a tokio runtime, whose tasks carry the
/// bytes; the line closes when either side closes.
#[derive(Debug)]
pub struct FaultyLink {
    end: DuplexStream,
    counts: Arc<Mutex<FaultCounts>>,
}

impl FaultyLink {
    /// Puts a faulty line in front of `link`. Must be called within a tokio runtime.
    pub fn wrap<L: Link + 'static>(link: L, config: FaultConfig) -> FaultyLink {
        let (end, inner) = memory_link();
        let counts = Arc::new(Mutex::new(FaultCounts::default()));
        let (link_read, link_write) = tokio::io::split(link);
        let (inner_read, inner_write) = tokio::io::split(inner);
        let outgoing = Line {
            faults: LineFaults::new(config.clone(), 0x5555_5555, Arc::clone(&counts)),
        };
        let incoming = Line {
            faults: LineFaults::new(config, 0xAAAA_AAAA, Arc::clone(&counts)),
        };
        tokio::spawn(outgoing.carry(inner_read, link_write));
        tokio::spawn(incoming.carry(link_read, inner_write));
        FaultyLink { end, counts }
    }

    /// What the line did so far.
    pub fn counts(&self) -> FaultCounts {
        self.counts.lock().map(|c| *c).unwrap_or_default()
    }

    /// A handle to the counts that stays valid after the link is moved into a host.
    pub fn counts_handle(&self) -> Arc<Mutex<FaultCounts>> {
        Arc::clone(&self.counts)
    }
}

impl AsyncRead for FaultyLink {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.end).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultyLink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.end).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.end).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.end).poll_shutdown(cx)
    }
}

impl Link for FaultyLink {}

/// What one direction of a faulty line does with a frame, once [`LineFaults::pass`] has
/// decided (and applied any damage to the frame's bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Deliver the frame as it now is.
    Send,
    /// Deliver it twice.
    SendTwice,
    /// Deliver nothing.
    Drop,
    /// Deliver it in pieces of these lengths, with short pauses between them.
    Split(Vec<usize>),
    /// Deliver it after this pause, holding back everything behind it.
    Delay(Duration),
}

/// The faults of one direction of a line: frame by frame, from a seeded generator, whether and
/// how the frame is damaged. The same decisions drive the in-process [`FaultyLink`] and the
/// `spikeloop relay` between two processes.
#[derive(Debug)]
pub struct LineFaults {
    config: FaultConfig,
    rng: SplitMix64,
    counts: Arc<Mutex<FaultCounts>>,
}

impl LineFaults {
    /// One direction of a line with `config`; `stream` tells the directions apart (each draws
    /// its own faults from `config.seed`); both may count into the same `counts`.
    pub fn new(config: FaultConfig, stream: u64, counts: Arc<Mutex<FaultCounts>>) -> LineFaults {
        LineFaults {
            rng: SplitMix64(config.seed ^ stream),
            config,
            counts,
        }
    }

    fn count(&self, f: impl FnOnce(&mut FaultCounts)) {
        if let Ok(mut c) = self.counts.lock() {
            f(&mut c);
        }
    }

    /// Decides what happens to `frame` (its bytes up to and including the 0x00 delimiter),
    /// applies byte damage to it in place and counts the fault.
    pub fn pass(&mut self, frame: &mut Vec<u8>) -> Delivery {
        self.count(|c| c.frames += 1);
        let faulty = !self.config.kinds.is_empty() && self.rng.unit() < self.config.rate;
        if !faulty || frame.is_empty() {
            return Delivery::Send;
        }
        let kind = self.config.kinds[self.rng.below(self.config.kinds.len())];
        let i = self.rng.below(frame.len());
        match kind {
            Fault::FlipBit => {
                let bit = self.rng.below(8);
                frame[i] ^= 1 << bit;
                self.count(|c| c.flipped_bits += 1);
                Delivery::Send
            }
            Fault::DropByte => {
                frame.remove(i);
                self.count(|c| c.dropped_bytes += 1);
                Delivery::Send
            }
            Fault::InsertByte => {
                let b = self.rng.next_u64() as u8;
                frame.insert(i, b);
                self.count(|c| c.inserted_bytes += 1);
                Delivery::Send
            }
            Fault::DropFrame => {
                self.count(|c| c.dropped_frames += 1);
                Delivery::Drop
            }
            Fault::DuplicateByte => {
                frame.insert(i, frame[i]);
                self.count(|c| c.duplicated_bytes += 1);
                Delivery::Send
            }
            Fault::DuplicateFrame => {
                self.count(|c| c.duplicated_frames += 1);
                Delivery::SendTwice
            }
            Fault::Split => {
                self.count(|c| c.split_frames += 1);
                let pieces = 2 + self.rng.below(3);
                let mut left = frame.len();
                let mut lengths = Vec::with_capacity(pieces);
                for _ in 1..pieces {
                    let cut = self.rng.below(left + 1);
                    lengths.push(cut);
                    left -= cut;
                }
                lengths.push(left);
                Delivery::Split(lengths)
            }
            Fault::Delay => {
                self.count(|c| c.delayed_frames += 1);
                Delivery::Delay(self.config.max_delay.mul_f64(self.rng.unit()))
            }
        }
    }
}

/// One direction of the in-process line.
struct Line {
    faults: LineFaults,
}

impl Line {
    async fn carry<R, W>(mut self, mut from: R, mut to: W)
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = vec![0u8; 1 << 16];
        let mut frame = Vec::new();
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &b in &buf[..n] {
                frame.push(b);
                if b == 0 {
                    if self.emit(&mut frame, &mut to).await.is_err() {
                        return;
                    }
                    frame.clear();
                }
            }
        }
        let _ = to.write_all(&frame).await;
        let _ = to.shutdown().await;
    }

    async fn emit<W: AsyncWrite + Unpin>(
        &mut self,
        frame: &mut Vec<u8>,
        to: &mut W,
    ) -> std::io::Result<()> {
        match self.faults.pass(frame) {
            Delivery::Send => to.write_all(frame).await,
            Delivery::SendTwice => {
                to.write_all(frame).await?;
                to.write_all(frame).await
            }
            Delivery::Drop => Ok(()),
            Delivery::Split(lengths) => {
                let mut rest: &[u8] = frame;
                for n in lengths {
                    let (piece, tail) = rest.split_at(n.min(rest.len()));
                    to.write_all(piece).await?;
                    to.flush().await?;
                    tokio::time::sleep(Duration::from_micros(50)).await;
                    rest = tail;
                }
                Ok(())
            }
            Delivery::Delay(d) => {
                tokio::time::sleep(d).await;
                to.write_all(frame).await
            }
        }
    }
}
