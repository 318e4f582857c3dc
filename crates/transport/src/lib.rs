//! The spikeloop device protocol: how a host and a neuromorphic device talk over a serial line.
//!
//! A device (a chip behind a microcontroller or FPGA, or the emulator posing as one) receives a
//! network, runs batches of input spikes and reports first-spike times. This crate defines the
//! bytes of that conversation; the specification for firmware authors is
//! `firmware-interface/README.md`, the messages are `proto/spikeloop/v1/*.proto`.
//!
//! # Design
//!
//! The bytes themselves (COBS frames with a CRC-32, the protobuf messages, tick codes) are the
//! `spikeloop-wire` crate, which has no async runtime and no backend types so that a firmware
//! can use it; this crate re-exports it ([`frame`], [`messages`], [`timecode`]) and builds the
//! conversations on top.
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
//! **Ticks on the wire.** Runs carry ticks; network parameters travel as doubles and
//! round-trip exactly ([`convert`]).
//!
//! **Both ends over any byte stream** ([`link`], [`device`], [`host`]). The device side is a
//! state machine over bytes with no I/O of its own, and the host side is one asynchronous engine
//! generic over its link, so the code that drives a USB device runs unchanged over a
//! pseudo-terminal, an in-memory pipe and a deliberately faulty line ([`conformance::fault`]); the tests
//! exercise exactly what runs in the field.
//!
//! # Modules, one job each
//!
//! * [`convert`]: protocol messages to and from the `spikeloop-backend` types, for both ends.
//! * [`link`]: the byte streams the protocol runs over.
//! * [`device`]: the device side, [`device::VirtualDevice`], which serves any `Backend` behind
//!   the protocol (the stand-in firmware), and its one serve loop [`device::serve`].
//! * [`host`]: the host side: [`host::HostCore`] (handshake, deadlines, retries),
//!   [`host::DeviceBackend`] (a device as a `Backend`), opening and listing serial ports.
//! * [`conformance`]: the suite that checks a device against the specification, the golden
//!   frames of `firmware-interface/golden/` ([`conformance::golden`]) and a line that damages,
//!   drops, duplicates, splits and delays bytes ([`conformance::fault`]).

pub mod conformance;
pub mod convert;
pub mod device;
pub mod host;
pub mod link;

pub use spikeloop_wire::{frame, messages, timecode};

pub use convert::ConvertError;
pub use device::{Defects, DeviceConfig, VirtualDevice};
pub use frame::{Flags, Frame, FrameDecoder, FrameError, Header, encode_frame, encode_frame_into};
pub use host::{DeviceBackend, HostConfig, HostCore, HostError, OpenError};
pub use messages::{Message, MessageError, MessageType, decode_message, encode_message, pb};
pub use timecode::TickScale;
