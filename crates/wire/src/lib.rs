//! The bytes of the spikeloop device protocol: frames, messages and tick codes, and nothing else.
//!
//! This crate is what a host and a firmware must agree on byte for byte. It has no async
//! runtime, no I/O and no dependency on spikeloop's backend types, so a firmware written in
//! Rust (or a test harness in any setting) can use it as it is; the conversations built from
//! these bytes (the virtual device, the host engine, the conformance suite) live in
//! `spikeloop-transport`. The specification for firmware authors is
//! `firmware-interface/README.md`, the messages are `proto/spikeloop/v1/*.proto`.
//!
//! # Design
//!
//! **COBS framing with a 0x00 delimiter** ([`frame`]). A serial line is a byte stream without
//! boundaries, and it loses, corrupts and (after a reset or a port opening) injects bytes.
//! Consistent Overhead Byte Stuffing removes every 0x00 from a frame at a cost of at most one
//! byte in 254, so 0x00 can mark the end of every frame unambiguously. A receiver that lost
//! track resynchronises at the next 0x00 without any timing assumption, unlike length-prefixed
//! framing (where one corrupt length swallows the following frames) or SLIP-style escaping
//! (whose overhead doubles for unlucky payloads). The decoder keeps at most one frame's worth of
//! memory and discards anything longer.
//!
//! **A fixed header plus a protobuf payload** ([`messages`]). The 10-byte header (version and
//! flags, message type, request id, payload length) is what a firmware needs before it touches
//! the payload: whether it speaks this frame format, which handler to call, which request to
//! answer, and whether the length is plausible, all at fixed offsets in plain integers that a
//! microcontroller reads without a protobuf library. The payload is protobuf because the
//! messages will grow: new optional fields are ignored by old readers, varints keep small
//! numbers small, and every language has a generator. Message types live in the header rather
//! than in a protobuf `oneof` so that an unknown type is refused before any parsing.
//!
//! **A CRC-32 over header and payload.** USB CDC links are checked by USB itself, but UARTs,
//! level shifters and long cables flip bits, and a flipped weight or spike time is a wrong
//! result that looks right. CRC-32/ISO-HDLC detects every error burst up to 32 bits and all but
//! about one in four billion others, costs four bytes, and is available in hardware on most
//! microcontrollers. A frame with a bad CRC is dropped: nothing in it, not even its request id,
//! can be trusted.
//!
//! **Ticks on the wire** ([`timecode`]). A device counts time in clock ticks, so runs carry
//! ticks, delta-coded per sample as varints; a host quantises its float times once, and spike
//! times come back as exact multiples of a tick.
//!
//! # Modules
//!
//! * [`frame`]: frame layout, CRC, encoder, the incremental [`frame::FrameDecoder`].
//! * [`messages`]: the generated types ([`messages::pb`]), [`messages::MessageType`], typed
//!   encoding and decoding.
//! * [`timecode`]: model times to ticks and tick codes.

pub mod frame;
pub mod messages;
pub mod timecode;

pub use frame::{Flags, Frame, FrameDecoder, FrameError, Header, encode_frame, encode_frame_into};
pub use messages::{Message, MessageError, MessageType, decode_message, encode_message, pb};
pub use timecode::TickScale;
