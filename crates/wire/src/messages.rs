//! Protocol messages: the prost types generated from `proto/spikeloop/v1`, the header type byte
//! of each, and typed encoding and decoding.
//!
//! The one idea: the header's type byte alone decides how a payload is parsed. Every message
//! has its own byte ([`MessageType`]), so a receiver never guesses; an unknown byte, a payload
//! that is not a valid message of its type, or flags that contradict the type are typed errors
//! ([`MessageError`]) that map onto the protocol's own error codes
//! ([`MessageError::error_code`]), never panics.

use crate::frame::{Flags, Frame, FrameError, Header, MIN_FRAME_LEN, encode_frame};

/// The prost types generated from `proto/spikeloop/v1/*.proto` (package `spikeloop.v1`). Their
/// documentation is the `.proto` files' comments: every field with its meaning and unit.
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/spikeloop.v1.rs"));
}

/// Newest protocol (message set) version this crate speaks: the `v1` of `spikeloop.v1`.
pub const PROTOCOL_VERSION: u32 = 1;

macro_rules! message_types {
    ($( $(#[$doc:meta])* $name:ident = $byte:literal, $dir:ident; )*) => {
        /// The message type byte of the frame header: one per message.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum MessageType {
            $( $(#[$doc])* $name = $byte, )*
        }

        impl MessageType {
            /// Every message type, in order of their bytes.
            pub const ALL: &'static [MessageType] = &[$(MessageType::$name),*];

            /// The message type of a header byte, if it names one.
            pub const fn from_byte(byte: u8) -> Option<MessageType> {
                match byte {
                    $( $byte => Some(MessageType::$name), )*
                    _ => None,
                }
            }

            /// The message's name as in the `.proto` files.
            pub const fn name(self) -> &'static str {
                match self {
                    $( MessageType::$name => stringify!($name), )*
                }
            }

            /// True for messages the host sends (requests); false for the device's answers.
            pub const fn is_request(self) -> bool {
                match self {
                    $( MessageType::$name => message_types!(@req $dir), )*
                }
            }
        }

        /// Any protocol message, tagged by its type.
        #[derive(Clone, Debug, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Message {
            $( $(#[$doc])* $name(pb::$name), )*
        }

        impl Message {
            /// This message's header type.
            pub fn message_type(&self) -> MessageType {
                match self {
                    $( Message::$name(_) => MessageType::$name, )*
                }
            }

            /// The protobuf encoding of this message (the frame payload).
            pub fn encode_payload(&self) -> Vec<u8> {
                match self {
                    $( Message::$name(m) => prost::Message::encode_to_vec(m), )*
                }
            }

            /// Length of [`Message::encode_payload`] without encoding.
            pub fn payload_len(&self) -> usize {
                match self {
                    $( Message::$name(m) => prost::Message::encoded_len(m), )*
                }
            }

            /// Parses a payload of the given type.
            pub fn decode_payload(
                message_type: MessageType,
                payload: &[u8],
            ) -> Result<Message, MessageError> {
                let malformed = |e: prost::DecodeError| MessageError::Malformed {
                    message_type,
                    reason: e.to_string(),
                };
                Ok(match message_type {
                    $( MessageType::$name => {
                        Message::$name(prost::Message::decode(payload).map_err(malformed)?)
                    } )*
                })
            }
        }

        $(
            impl From<pb::$name> for Message {
                fn from(m: pb::$name) -> Message {
                    Message::$name(m)
                }
            }
        )*
    };
    (@req request) => { true };
    (@req reply) => { false };
}

message_types! {
    /// Host opens a connection: version range, host frame limit (0x01).
    Hello = 0x01, request;
    /// Device: chosen version, identity, capabilities (0x02).
    HelloReply = 0x02, reply;
    /// Host starts loading a network: topology and neuron parameters (0x10).
    ConfigureBegin = 0x10, request;
    /// Host sends a run of weights or bias times (0x11).
    ConfigureChunk = 0x11, request;
    /// Host ends loading a network (0x12).
    ConfigureCommit = 0x12, request;
    /// Device acknowledges a configuration step (0x13).
    ConfigureAck = 0x13, reply;
    /// Host runs a batch of samples (0x20).
    RunRequest = 0x20, request;
    /// Device: one page of first-spike times and the run's statistics (0x21).
    RunResult = 0x21, reply;
    /// Host asks for another page of the last run's results (0x22).
    ReadRunResult = 0x22, request;
    /// Host records one neuron's membrane during one sample (0x30).
    MembraneRequest = 0x30, request;
    /// Device: one page of a membrane trace (0x31).
    MembraneTrace = 0x31, reply;
    /// Host asks for another page of the last membrane trace (0x32).
    ReadMembraneTrace = 0x32, request;
    /// Host asks for the device's counters (0x40).
    StatsRequest = 0x40, request;
    /// Device: its counters (0x41).
    DeviceStats = 0x41, reply;
    /// Host returns the device to READY (0x50).
    ResetRequest = 0x50, request;
    /// Device acknowledges a reset (0x51).
    ResetReply = 0x51, reply;
    /// Host moves the trial-to-trial noise to a position (0x60).
    SetNoisePosition = 0x60, request;
    /// Device: the noise position in force (0x61).
    NoisePosition = 0x61, reply;
    /// Host writes or clears circuits' parameter codes (0x70).
    WriteParameterCodes = 0x70, request;
    /// Device acknowledges written codes (0x71).
    ParameterCodesAck = 0x71, reply;
    /// Host reads circuits' written codes (0x72).
    ReadParameterCodes = 0x72, request;
    /// Device: the codes asked for (0x73).
    ParameterCodes = 0x73, reply;
    /// Host asks which circuits run a layer's neurons (0x74).
    ReadCircuits = 0x74, request;
    /// Device: one page of a layer's circuits (0x75).
    Circuits = 0x75, reply;
    /// Host asks for the chip's identity (0x76).
    ReadChipId = 0x76, request;
    /// Device: its chip's identity (0x77).
    ChipId = 0x77, reply;
    /// Device refuses a request (0x7F).
    Error = 0x7F, reply;
}

impl MessageType {
    /// The header byte of this type.
    pub const fn byte(self) -> u8 {
        self as u8
    }

    /// The answer a device sends to this request when it succeeds (an `Error` may always come
    /// instead); `None` for answers.
    pub const fn reply_type(self) -> Option<MessageType> {
        use MessageType as T;
        match self {
            T::Hello => Some(T::HelloReply),
            T::ConfigureBegin | T::ConfigureChunk | T::ConfigureCommit => Some(T::ConfigureAck),
            T::RunRequest | T::ReadRunResult => Some(T::RunResult),
            T::MembraneRequest | T::ReadMembraneTrace => Some(T::MembraneTrace),
            T::StatsRequest => Some(T::DeviceStats),
            T::ResetRequest => Some(T::ResetReply),
            T::SetNoisePosition => Some(T::NoisePosition),
            T::WriteParameterCodes => Some(T::ParameterCodesAck),
            T::ReadParameterCodes => Some(T::ParameterCodes),
            T::ReadCircuits => Some(T::Circuits),
            T::ReadChipId => Some(T::ChipId),
            _ => None,
        }
    }

    /// The flags a frame of this type carries: none for requests, `RESPONSE` for answers,
    /// `RESPONSE | ERROR` for `Error`.
    pub const fn flags(self) -> Flags {
        match self {
            MessageType::Error => Flags::from_bits(Flags::RESPONSE.bits() | Flags::ERROR.bits()),
            t if t.is_request() => Flags::NONE,
            _ => Flags::RESPONSE,
        }
    }
}

impl TryFrom<u8> for MessageType {
    type Error = MessageError;
    fn try_from(byte: u8) -> Result<MessageType, MessageError> {
        MessageType::from_byte(byte).ok_or(MessageError::UnknownType { byte })
    }
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:#04x})", self.name(), self.byte())
    }
}

/// Why a frame does not hold a valid message.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The header's type byte names no message of this protocol.
    #[error("unknown message type {byte:#04x}")]
    UnknownType {
        /// The type byte.
        byte: u8,
    },
    /// The payload is not a valid protobuf encoding of its type.
    #[error("malformed {message_type} payload: {reason}")]
    Malformed {
        /// The type the header announced.
        message_type: MessageType,
        /// What the protobuf decoder found wrong.
        reason: String,
    },
    /// The header's flags contradict its type (a request marked as a response, an error frame
    /// without the ERROR flag, ...).
    #[error("{message_type} frame carries flags {found:?}; expected {expected:?}")]
    BadFlags {
        /// The type the header announced.
        message_type: MessageType,
        /// The defined flag bits found.
        found: Flags,
        /// The flags this type must carry.
        expected: Flags,
    },
    /// The encoded frame would exceed the receiver's limit.
    #[error("{message_type} frame of {len} bytes exceeds the receiver's limit of {limit} bytes")]
    TooLarge {
        /// The message's type.
        message_type: MessageType,
        /// Frame size in bytes (header + payload + CRC).
        len: usize,
        /// The receiver's limit.
        limit: usize,
    },
    /// The bytes did not form a frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl MessageError {
    /// The protocol error code a device answers this error with. Frame-level errors other than
    /// [`FrameError::TooLarge`] are not answered at all (the request id cannot be trusted);
    /// they map to `MalformedPayload` only for completeness.
    pub fn error_code(&self) -> pb::ErrorCode {
        match self {
            MessageError::UnknownType { .. } => pb::ErrorCode::UnknownMessageType,
            MessageError::Malformed { .. } | MessageError::BadFlags { .. } => {
                pb::ErrorCode::MalformedPayload
            }
            MessageError::TooLarge { .. } | MessageError::Frame(FrameError::TooLarge { .. }) => {
                pb::ErrorCode::FrameTooLarge
            }
            MessageError::Frame(_) => pb::ErrorCode::MalformedPayload,
        }
    }
}

impl Message {
    /// The header for sending this message with `request_id`.
    pub fn header(&self, request_id: u32) -> Header {
        let ty = self.message_type();
        Header::new(ty.byte(), request_id, ty.flags())
    }

    /// The frame for sending this message with `request_id`.
    pub fn to_frame(&self, request_id: u32) -> Frame {
        Frame {
            header: self.header(request_id),
            payload: self.encode_payload(),
        }
    }

    /// Size of this message's frame (header + payload + CRC, before COBS).
    pub fn frame_len(&self) -> usize {
        MIN_FRAME_LEN + self.payload_len()
    }
}

/// The wire bytes of `message` sent with `request_id`, refused when its frame would exceed
/// `max_frame_size` (the receiver's limit).
pub fn encode_message(
    request_id: u32,
    message: &Message,
    max_frame_size: usize,
) -> Result<Vec<u8>, MessageError> {
    let len = message.frame_len();
    if len > max_frame_size {
        return Err(MessageError::TooLarge {
            message_type: message.message_type(),
            len,
            limit: max_frame_size,
        });
    }
    Ok(encode_frame(
        &message.header(request_id),
        &message.encode_payload(),
    )?)
}

/// The message a frame holds, checking its type byte, its flags and its payload.
pub fn decode_message(frame: &Frame) -> Result<Message, MessageError> {
    let message_type = MessageType::try_from(frame.header.message_type)?;
    let found = frame.header.flags.defined();
    let expected = message_type.flags();
    if found != expected {
        return Err(MessageError::BadFlags {
            message_type,
            found,
            expected,
        });
    }
    Message::decode_payload(message_type, &frame.payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_bytes_are_unique_and_round_trip() {
        for (i, &t) in MessageType::ALL.iter().enumerate() {
            assert_eq!(MessageType::from_byte(t.byte()), Some(t));
            for &u in &MessageType::ALL[i + 1..] {
                assert_ne!(t.byte(), u.byte());
            }
            if let Some(r) = t.reply_type() {
                assert!(t.is_request() && !r.is_request(), "{t}");
            }
        }
        assert_eq!(MessageType::from_byte(0x00), None);
        assert_eq!(MessageType::from_byte(0xFF), None);
    }

    #[test]
    fn every_request_has_a_reply() {
        for &t in MessageType::ALL {
            assert_eq!(t.is_request(), t.reply_type().is_some(), "{t}");
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let m = Message::RunRequest(pb::RunRequest {
            n_inputs: 2,
            n_samples: 1,
            output_only: true,
            input_codes: vec![301, 0],
        });
        let wire = encode_message(7, &m, 256).expect("fits");
        let frame = Frame::decode_exact(&wire, 256).expect("frame");
        assert_eq!(frame.header.request_id, 7);
        assert_eq!(decode_message(&frame).expect("message"), m);
    }

    #[test]
    fn typed_errors() {
        let unknown = Frame {
            header: Header::new(0x03, 1, Flags::NONE),
            payload: vec![],
        };
        assert_eq!(
            decode_message(&unknown),
            Err(MessageError::UnknownType { byte: 0x03 })
        );
        let bad_payload = Frame {
            header: Header::new(0x20, 1, Flags::NONE),
            payload: vec![0x22, 0x05, 0x01],
        };
        let err = decode_message(&bad_payload).expect_err("truncated field");
        assert_eq!(err.error_code(), pb::ErrorCode::MalformedPayload);
        let bad_flags = Frame {
            header: Header::new(0x7F, 1, Flags::RESPONSE),
            payload: vec![],
        };
        assert!(matches!(
            decode_message(&bad_flags),
            Err(MessageError::BadFlags { .. })
        ));
        let big = Message::ConfigureChunk(pb::ConfigureChunk {
            values: vec![1.0; 100],
            ..Default::default()
        });
        assert!(matches!(
            encode_message(1, &big, 256),
            Err(MessageError::TooLarge { .. })
        ));
    }
}
