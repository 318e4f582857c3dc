//! Frames on the wire: COBS-encoded, 0x00-terminated `[header | payload | CRC-32]`.
//!
//! The one idea: a receiver must be able to find the next frame boundary from any position in
//! the byte stream, whatever arrived before. COBS guarantees that the delimiter byte 0x00 never
//! occurs inside an encoded frame, so after garbage, a lost byte or an oversized frame the
//! decoder simply waits for the next 0x00 and starts afresh.
//!
//! # Layout
//!
//! On the wire a frame is `COBS(raw) 0x00`. The decoded `raw` frame is:
//!
//! | offset | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 1 | version / flags | high nibble: frame format version ([`FRAME_VERSION`] = 1); low nibble: [`Flags`] |
//! | 1 | 1 | message type | which message the payload holds (`messages::MessageType`) |
//! | 2 | 4 | request id | little-endian `u32`; a reply carries its request's id; 0 = not tied to a request |
//! | 6 | 4 | payload length | little-endian `u32`, bytes of payload that follow the header |
//! | 10 | n | payload | the protobuf-encoded message |
//! | 10 + n | 4 | CRC-32 | little-endian, over bytes `0 .. 10 + n` |
//!
//! The CRC is CRC-32/ISO-HDLC (the CRC of Ethernet, zlib and PNG): polynomial 0x04C11DB7,
//! reflected input and output, initial value and final XOR 0xFFFFFFFF; check value
//! `crc32(b"123456789") = 0xCBF43926` ([`CRC32_CHECK`]).
//!
//! A frame's *size* is the length of `raw` (header + payload + CRC, before COBS). Each side
//! announces the largest frame it accepts; [`FrameDecoder`] enforces its limit with memory
//! bounded by it.

use std::fmt;

/// Version of the frame format carried in the high nibble of the first header byte.
pub const FRAME_VERSION: u8 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 10;
/// Bytes of the CRC trailer.
pub const CRC_LEN: usize = 4;
/// Smallest possible frame: a header, an empty payload and the CRC.
pub const MIN_FRAME_LEN: usize = HEADER_LEN + CRC_LEN;
/// The smallest frame-size limit a peer may announce; Hello and HelloReply always fit in it, so
/// both sides accept frames of this size before the handshake has told them more.
pub const MIN_MAX_FRAME_SIZE: usize = 256;
/// `crc32(b"123456789")`: the standard check value of CRC-32/ISO-HDLC.
pub const CRC32_CHECK: u32 = 0xCBF4_3926;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32/ISO-HDLC of `bytes` (see the module documentation for the parameters).
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}

/// Bytes a frame of `frame_len` bytes occupies on the wire at most: COBS adds one byte per 254
/// (at least one), the delimiter one more.
pub const fn max_wire_len(frame_len: usize) -> usize {
    cobs::max_encoding_length(frame_len) + 1
}

/// The low nibble of the first header byte.
///
/// Bits `0x4` and `0x8` are reserved: senders set them to 0 and receivers ignore them (they are
/// kept, so that a frame re-encodes byte for byte).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    /// No flag set (every request from the host).
    pub const NONE: Flags = Flags(0);
    /// Set on every frame the device sends.
    pub const RESPONSE: Flags = Flags(0x1);
    /// Set exactly when the payload is an `Error` message.
    pub const ERROR: Flags = Flags(0x2);
    /// The bits with a defined meaning.
    pub const DEFINED: Flags = Flags(0x3);

    /// Flags from the low nibble of `bits` (the high nibble is ignored).
    pub const fn from_bits(bits: u8) -> Flags {
        Flags(bits & 0x0F)
    }

    /// The four flag bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Only the bits with a defined meaning (reserved bits cleared).
    pub const fn defined(self) -> Flags {
        Flags(self.0 & Self::DEFINED.0)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        if self.contains(Flags::RESPONSE) {
            names.push("RESPONSE".to_string());
        }
        if self.contains(Flags::ERROR) {
            names.push("ERROR".to_string());
        }
        let reserved = self.0 & !Self::DEFINED.0;
        if reserved != 0 {
            names.push(format!("reserved {reserved:#x}"));
        }
        if names.is_empty() {
            names.push("NONE".to_string());
        }
        write!(f, "Flags({})", names.join(" | "))
    }
}

/// The fixed header of a frame, except the payload length (which the payload itself fixes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Frame format version, 0 to 15 ([`FRAME_VERSION`] for this format).
    pub version: u8,
    /// Flags (low nibble of the first byte).
    pub flags: Flags,
    /// Message type byte: which message the payload holds.
    pub message_type: u8,
    /// Request id: chosen by the host for a request, echoed by the device in the answer; 0 for a
    /// device frame not tied to a request.
    pub request_id: u32,
}

impl Header {
    /// A header of the current frame version.
    pub const fn new(message_type: u8, request_id: u32, flags: Flags) -> Header {
        Header {
            version: FRAME_VERSION,
            flags,
            message_type,
            request_id,
        }
    }

    /// The 10 header bytes for a payload of `payload_len` bytes.
    pub fn to_bytes(&self, payload_len: u32) -> Result<[u8; HEADER_LEN], FrameError> {
        if self.version > 0x0F {
            return Err(FrameError::UnsupportedVersion {
                version: self.version,
            });
        }
        let mut out = [0u8; HEADER_LEN];
        out[0] = (self.version << 4) | self.flags.bits();
        out[1] = self.message_type;
        out[2..6].copy_from_slice(&self.request_id.to_le_bytes());
        out[6..10].copy_from_slice(&payload_len.to_le_bytes());
        Ok(out)
    }

    /// Parses the 10 header bytes into the header and the declared payload length.
    pub fn from_bytes(bytes: [u8; HEADER_LEN]) -> (Header, u32) {
        let [b0, ty, r0, r1, r2, r3, l0, l1, l2, l3] = bytes;
        (
            Header {
                version: b0 >> 4,
                flags: Flags::from_bits(b0),
                message_type: ty,
                request_id: u32::from_le_bytes([r0, r1, r2, r3]),
            },
            u32::from_le_bytes([l0, l1, l2, l3]),
        )
    }
}

/// A decoded, CRC-checked frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: Header,
    /// The payload (a protobuf-encoded message).
    pub payload: Vec<u8>,
}

impl Frame {
    /// Size of this frame (header + payload + CRC, before COBS).
    pub fn len(&self) -> usize {
        MIN_FRAME_LEN + self.payload.len()
    }

    /// Always false: a frame holds at least its header and CRC.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The wire bytes of this frame (COBS-encoded, delimiter included).
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        encode_frame(&self.header, &self.payload)
    }

    /// Decodes exactly one frame from `wire` (COBS bytes followed by one 0x00 and nothing else).
    pub fn decode_exact(wire: &[u8], max_frame_size: usize) -> Result<Frame, FrameError> {
        let mut decoder = FrameDecoder::new(max_frame_size);
        let mut items = decoder.decode(wire);
        match (items.len(), decoder.is_idle()) {
            (1, true) => items.pop().unwrap_or(Err(FrameError::InvalidCobs)),
            _ => Err(FrameError::NotExactlyOneFrame {
                items: items.len(),
                trailing: !decoder.is_idle(),
            }),
        }
    }
}

/// Why bytes could not be turned into a frame (or a frame into bytes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame grew past the size limit; its bytes were discarded up to the next delimiter.
    #[error(
        "frame larger than the limit of {limit} bytes (header + payload + CRC) was discarded up to the next 0x00"
    )]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A 0x00 arrived where the COBS encoding announced more data (a lost or corrupted byte).
    #[error("invalid COBS encoding: a 0x00 delimiter arrived inside a frame")]
    InvalidCobs,
    /// The decoded frame is shorter than a header and a CRC.
    #[error("frame of {len} bytes is shorter than the minimum of {MIN_FRAME_LEN} (header + CRC)")]
    TooShort {
        /// Decoded length in bytes.
        len: usize,
    },
    /// The CRC trailer does not match the header and payload (bit errors on the line).
    #[error("CRC mismatch: frame says {received:#010x}, its bytes give {computed:#010x}")]
    BadCrc {
        /// The CRC carried by the frame.
        received: u32,
        /// The CRC computed over the received header and payload.
        computed: u32,
    },
    /// The frame format version is not one this implementation speaks.
    #[error(
        "frame format version {version} is not supported (this implementation speaks {FRAME_VERSION})"
    )]
    UnsupportedVersion {
        /// The version nibble found.
        version: u8,
    },
    /// The header's payload length disagrees with the bytes between header and CRC.
    #[error("header declares a payload of {declared} bytes but the frame carries {actual}")]
    LengthMismatch {
        /// Payload length from the header.
        declared: u32,
        /// Payload bytes actually present.
        actual: usize,
    },
    /// A payload too long for the 32-bit length field (only when encoding).
    #[error("payload of {len} bytes does not fit the 32-bit length field")]
    PayloadTooLong {
        /// Payload length in bytes.
        len: usize,
    },
    /// [`Frame::decode_exact`] found no frame, several, or bytes after the delimiter.
    #[error(
        "expected exactly one complete frame, found {items} item(s){}",
        if *trailing { " and an unterminated tail" } else { "" }
    )]
    NotExactlyOneFrame {
        /// Frames and errors decoded.
        items: usize,
        /// Whether bytes of an unfinished frame followed.
        trailing: bool,
    },
}

/// Appends the wire bytes of one frame (COBS-encoded `[header | payload | CRC]` and the 0x00
/// delimiter) to `out`; returns the number of bytes appended.
pub fn encode_frame_into(
    header: &Header,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, FrameError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| (n as usize) <= u32::MAX as usize - MIN_FRAME_LEN)
        .ok_or(FrameError::PayloadTooLong { len: payload.len() })?;
    let mut raw = Vec::with_capacity(MIN_FRAME_LEN + payload.len());
    raw.extend_from_slice(&header.to_bytes(len)?);
    raw.extend_from_slice(payload);
    let crc = crc32(&raw);
    raw.extend_from_slice(&crc.to_le_bytes());

    let start = out.len();
    out.resize(start + cobs::max_encoding_length(raw.len()), 0);
    let written = cobs::try_encode(&raw, &mut out[start..]).map_err(|_| {
        // Unreachable: the buffer has the documented worst-case size. Reported, not panicked.
        FrameError::PayloadTooLong { len: payload.len() }
    })?;
    out.truncate(start + written);
    out.push(0);
    Ok(out.len() - start)
}

/// The wire bytes of one frame (COBS-encoded, delimiter included).
pub fn encode_frame(header: &Header, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(max_wire_len(MIN_FRAME_LEN + payload.len()));
    encode_frame_into(header, payload, &mut out)?;
    Ok(out)
}

/// Parses a decoded (un-COBSed) frame: CRC, version, length.
pub fn parse_raw_frame(raw: &[u8]) -> Result<Frame, FrameError> {
    let too_short = FrameError::TooShort { len: raw.len() };
    let Some(body_len) = raw.len().checked_sub(CRC_LEN).filter(|&n| n >= HEADER_LEN) else {
        return Err(too_short);
    };
    let (body, trailer) = raw.split_at(body_len);
    let received = u32::from_le_bytes(trailer.try_into().map_err(|_| too_short.clone())?);
    let computed = crc32(body);
    if received != computed {
        return Err(FrameError::BadCrc { received, computed });
    }
    let (head, payload) = body.split_at(HEADER_LEN);
    let (header, declared) = Header::from_bytes(head.try_into().map_err(|_| too_short)?);
    if header.version != FRAME_VERSION {
        return Err(FrameError::UnsupportedVersion {
            version: header.version,
        });
    }
    if declared as usize != payload.len() {
        return Err(FrameError::LengthMismatch {
            declared,
            actual: payload.len(),
        });
    }
    Ok(Frame {
        header,
        payload: payload.to_vec(),
    })
}

/// Counters of a [`FrameDecoder`] since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderCounts {
    /// Frames decoded and CRC-checked.
    pub frames: u64,
    /// Errors reported (each discarded frame counts once).
    pub errors: u64,
    /// Bytes consumed.
    pub bytes: u64,
}

/// An incremental frame decoder for a byte stream split anywhere.
///
/// Feed it whatever the link delivers ([`FrameDecoder::decode`] or [`FrameDecoder::push`]); it
/// yields one item per frame boundary: a [`Frame`], or a [`FrameError`] saying why the bytes
/// before that boundary were not one. Empty frames (two delimiters in a row) are skipped
/// silently, so a sender may emit extra 0x00 bytes to resynchronise a receiver. Bytes before the
/// first delimiter are treated as a frame (and usually reported as an error), so a receiver that
/// starts mid-stream loses at most that one item.
///
/// Memory is bounded: the decoder never holds more than `max_frame_size` decoded bytes. A frame
/// growing past the limit is reported once as [`FrameError::TooLarge`] and the rest of it is
/// skipped without being stored. It never panics, whatever the input.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_size: usize,
    cobs: cobs::DecoderState,
    buf: Vec<u8>,
    discarding: bool,
    counts: DecoderCounts,
}

impl FrameDecoder {
    /// A decoder accepting frames of up to `max_frame_size` bytes (header + payload + CRC);
    /// limits below [`MIN_FRAME_LEN`] are raised to it.
    pub fn new(max_frame_size: usize) -> FrameDecoder {
        FrameDecoder {
            max_frame_size: max_frame_size.max(MIN_FRAME_LEN),
            cobs: cobs::DecoderState::Idle,
            buf: Vec::new(),
            discarding: false,
            counts: DecoderCounts::default(),
        }
    }

    /// The size limit in bytes.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Changes the size limit (for example after the handshake). A frame in progress that is
    /// already longer is discarded when its next byte arrives.
    pub fn set_max_frame_size(&mut self, max_frame_size: usize) {
        self.max_frame_size = max_frame_size.max(MIN_FRAME_LEN);
    }

    /// Bytes reserved for the frame in progress; never more than the size limit.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// True between frames: no partial frame is buffered or being skipped.
    pub fn is_idle(&self) -> bool {
        matches!(self.cobs, cobs::DecoderState::Idle) && !self.discarding
    }

    /// Drops any partial frame (for example after flushing a serial port).
    pub fn reset(&mut self) {
        self.cobs = cobs::DecoderState::Idle;
        self.buf.clear();
        self.discarding = false;
    }

    /// Counters since the decoder was made.
    pub fn counts(&self) -> DecoderCounts {
        self.counts
    }

    /// Consumes one byte; returns an item when the byte ends a frame (or makes it too large).
    pub fn push_byte(&mut self, byte: u8) -> Option<Result<Frame, FrameError>> {
        self.counts.bytes += 1;
        if self.discarding {
            if byte == 0 {
                self.discarding = false;
                self.cobs = cobs::DecoderState::Idle;
            }
            return None;
        }
        let item = match self.cobs.feed(byte) {
            Err(_) => {
                self.buf.clear();
                Some(Err(FrameError::InvalidCobs))
            }
            Ok(cobs::DecodeResult::NoData) => None,
            Ok(cobs::DecodeResult::DataStart) => {
                self.buf.clear();
                None
            }
            Ok(cobs::DecodeResult::DataContinue(b)) => {
                if self.buf.len() >= self.max_frame_size {
                    self.buf.clear();
                    self.cobs = cobs::DecoderState::Idle;
                    self.discarding = true;
                    Some(Err(FrameError::TooLarge {
                        limit: self.max_frame_size,
                    }))
                } else {
                    if self.buf.len() == self.buf.capacity() {
                        let target = (self.buf.capacity() * 2).max(64).min(self.max_frame_size);
                        self.buf.reserve_exact(target - self.buf.len());
                    }
                    self.buf.push(b);
                    None
                }
            }
            Ok(cobs::DecodeResult::DataComplete) if self.buf.len() > self.max_frame_size => {
                // Only after the limit was lowered mid-frame.
                self.buf.clear();
                Some(Err(FrameError::TooLarge {
                    limit: self.max_frame_size,
                }))
            }
            Ok(cobs::DecodeResult::DataComplete) => {
                let item = parse_raw_frame(&self.buf);
                self.buf.clear();
                Some(item)
            }
        };
        match &item {
            Some(Ok(_)) => self.counts.frames += 1,
            Some(Err(_)) => self.counts.errors += 1,
            None => {}
        }
        item
    }

    /// Consumes `bytes`, appending one item per completed frame boundary to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Result<Frame, FrameError>>) {
        out.extend(bytes.iter().filter_map(|&b| self.push_byte(b)));
    }

    /// Consumes `bytes` and returns the items they complete.
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<Result<Frame, FrameError>> {
        let mut out = Vec::new();
        self.push(bytes, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ty: u8, id: u32, payload: &[u8]) -> Vec<u8> {
        encode_frame(&Header::new(ty, id, Flags::NONE), payload).expect("encodes")
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32(b"123456789"), CRC32_CHECK);
    }

    #[test]
    fn header_layout_is_little_endian() {
        let h = Header::new(0x20, 0x0403_0201, Flags::RESPONSE | Flags::ERROR);
        assert_eq!(
            h.to_bytes(0x0807_0605).expect("valid"),
            [0x13, 0x20, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(
            Header::from_bytes([0x13, 0x20, 1, 2, 3, 4, 5, 6, 7, 8]),
            (h, 0x0807_0605)
        );
    }

    #[test]
    fn round_trip_and_delimiter() {
        let wire = frame(7, 42, &[0, 1, 0, 2, 0]);
        assert_eq!(wire.last(), Some(&0));
        assert!(!wire[..wire.len() - 1].contains(&0));
        let f = Frame::decode_exact(&wire, 64).expect("decodes");
        assert_eq!(f.header, Header::new(7, 42, Flags::NONE));
        assert_eq!(f.payload, vec![0, 1, 0, 2, 0]);
        assert_eq!(f.encode().expect("encodes"), wire);
    }

    #[test]
    fn split_anywhere_and_several_per_chunk() {
        let mut stream = vec![0x55, 0x66]; // garbage before the first delimiter
        stream.push(0);
        let a = frame(1, 1, b"hello");
        let b = frame(2, 2, &[0u8; 300]);
        stream.extend_from_slice(&a);
        stream.extend_from_slice(&b);
        stream.extend_from_slice(&a);
        for split in 0..stream.len() {
            let mut d = FrameDecoder::new(1024);
            let mut items = d.decode(&stream[..split]);
            items.extend(d.decode(&stream[split..]));
            assert_eq!(items.len(), 4, "split at {split}");
            assert!(items[0].is_err());
            let ok: Vec<_> = items[1..]
                .iter()
                .map(|i| i.as_ref().expect("frame").header.message_type)
                .collect();
            assert_eq!(ok, vec![1, 2, 1]);
        }
    }

    #[test]
    fn oversized_frame_is_reported_once_and_skipped() {
        let big = frame(3, 3, &[9u8; 500]);
        let small = frame(4, 4, b"ok");
        let mut d = FrameDecoder::new(100);
        let mut stream = big.clone();
        stream.extend_from_slice(&small);
        let items = d.decode(&stream);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0], Err(FrameError::TooLarge { limit: 100 }));
        assert_eq!(items[1].as_ref().expect("frame").payload, b"ok");
        assert!(d.buffer_capacity() <= 100);
        // A frame of exactly the limit passes.
        let exact = frame(5, 5, &[1u8; 86]);
        let items = d.decode(&exact);
        assert_eq!(items[0].as_ref().expect("frame").len(), 100);
    }

    fn wire_from_raw(raw: &[u8]) -> Vec<u8> {
        let mut wire = vec![0u8; cobs::max_encoding_length(raw.len())];
        let n = cobs::encode(raw, &mut wire);
        wire.truncate(n);
        wire.push(0);
        wire
    }

    #[test]
    fn typed_errors() {
        let mut raw = Header::new(1, 9, Flags::NONE)
            .to_bytes(3)
            .expect("valid")
            .to_vec();
        raw.extend_from_slice(b"abc");
        raw.extend_from_slice(&crc32(&raw).to_le_bytes());
        raw[11] ^= 0x04; // one bit error in the payload
        let item = Frame::decode_exact(&wire_from_raw(&raw), 64);
        assert!(matches!(item, Err(FrameError::BadCrc { .. })), "{item:?}");

        let v2 = encode_frame(
            &Header {
                version: 2,
                ..Header::new(1, 1, Flags::NONE)
            },
            b"",
        )
        .expect("encodes");
        assert_eq!(
            Frame::decode_exact(&v2, 64),
            Err(FrameError::UnsupportedVersion { version: 2 })
        );

        assert_eq!(
            Frame::decode_exact(&[4, 1, 2, 3, 0], 64),
            Err(FrameError::TooShort { len: 3 })
        );

        let mut raw = Header::new(1, 1, Flags::NONE)
            .to_bytes(5)
            .expect("valid")
            .to_vec();
        raw.extend_from_slice(b"abc");
        raw.extend_from_slice(&crc32(&raw).to_le_bytes());
        assert_eq!(
            Frame::decode_exact(&wire_from_raw(&raw), 64),
            Err(FrameError::LengthMismatch {
                declared: 5,
                actual: 3
            })
        );

        // A delimiter inside a COBS run.
        assert_eq!(
            Frame::decode_exact(&[5, 1, 2, 0], 64),
            Err(FrameError::InvalidCobs)
        );
    }

    #[test]
    fn lowering_the_limit_mid_frame_discards_the_frame() {
        let wire = frame(6, 6, &[7u8; 50]);
        let mut d = FrameDecoder::new(256);
        assert!(d.decode(&wire[..wire.len() - 1]).is_empty());
        d.set_max_frame_size(20);
        assert_eq!(
            d.decode(&[0]),
            vec![Err(FrameError::TooLarge { limit: 20 })]
        );
        let mut out = vec![0xEE];
        let n = encode_frame_into(&Header::new(1, 1, Flags::NONE), b"", &mut out).expect("fits");
        assert_eq!(out.len(), 1 + n, "appends after existing bytes");
        assert_eq!(d.decode(&out[1..]).len(), 1);
    }

    #[test]
    fn empty_frames_are_skipped() {
        let mut d = FrameDecoder::new(64);
        assert!(d.decode(&[0, 0, 0]).is_empty());
        assert!(d.is_idle());
    }
}
