//! The spikeloop device protocol: how a host and a neuromorphic device talk over a serial line.
//!
//! A device (a chip behind a microcontroller or FPGA, or the emulator posing as one) receives a
//! network, runs batches of input spikes and reports first-spike times. This crate defines the
//! bytes of that conversation; the specification for firmware authors is
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
//! **Request ids and idempotent replay.** Every request carries a host-chosen 32-bit id that
//! its answer echoes. When an answer does not arrive in time, or arrives corrupted, the host
//! cannot know whether the device executed the request; it sends the *same* request with the
//! *same* id again. The device remembers its last answers by request id and replays the cached
//! answer to a duplicate instead of executing it twice, so a retried run does not advance the
//! device's noise, a retried chunk is not written twice, and a host never receives two different
//! answers to one question. Retries are therefore always safe, which is what makes the link
//! reliable on top of a lossy line without sequence numbers or acknowledgements of its own.
//!
//! **Ticks on the wire** ([`timecode`]). A device counts time in clock ticks, so runs carry
//! ticks, delta-coded per sample as varints; a host quantises its float times once, and spike
//! times come back as exact multiples of a tick. Network parameters travel as doubles and
//! round-trip exactly ([`convert`]).
//!
//! **Both ends over any byte stream** ([`link`], [`device`], [`host`]). The device side is a
//! state machine over bytes with no I/O of its own, and the host side is one asynchronous engine
//! generic over its link, so the code that drives a USB device runs unchanged over a
//! pseudo-terminal, an in-memory pipe and a deliberately faulty line ([`fault`]); the tests
//! exercise exactly what runs in the field.
//!
//! # Modules
//!
//! * [`frame`]: frame layout, CRC, encoder, the incremental [`frame::FrameDecoder`].
//! * [`messages`]: the generated types ([`messages::pb`]), [`messages::MessageType`], typed
//!   encoding and decoding.
//! * [`timecode`]: model times to ticks and tick codes.
//! * [`convert`]: protocol messages to and from the `spikeloop-backend` types, for both ends.
//! * [`golden`]: the worked examples of `firmware-interface/golden/`.
//! * [`link`]: the byte streams the protocol runs over.
//! * [`device`]: the device side, [`device::VirtualDevice`], which serves any `Backend` behind
//!   the protocol (the stand-in firmware).
//! * [`host`]: the host side, [`host::HostCore`]: handshake, deadlines, retries.
//! * [`serial`]: [`serial::SerialBackend`], a device as a `Backend`.
//! * [`fault`]: a line that damages, drops, duplicates, splits and delays bytes, for tests.
//! * [`conformance`]: the suite that checks a device against the specification.

pub mod conformance;
pub mod convert;
pub mod device;
pub mod fault;
pub mod frame;
pub mod golden;
pub mod host;
pub mod link;
pub mod messages;
pub mod serial;
pub mod timecode;

pub use convert::ConvertError;
pub use device::{Defects, DeviceConfig, VirtualDevice};
pub use frame::{Flags, Frame, FrameDecoder, FrameError, Header, encode_frame, encode_frame_into};
pub use host::{HostConfig, HostCore, HostError};
pub use messages::{Message, MessageError, MessageType, decode_message, encode_message, pb};
pub use serial::{OpenError, SerialBackend};
pub use timecode::TickScale;
