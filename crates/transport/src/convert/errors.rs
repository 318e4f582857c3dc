//! Protocol errors and `BackendError`s, in both directions.

use spikeloop_backend::BackendError;

use super::{MAX_ERROR_MESSAGE_LEN, truncate_utf8};
use crate::frame::MIN_MAX_FRAME_SIZE;
#[cfg(test)]
use crate::messages::Message;
use crate::messages::{MessageType, pb};

/// The `Backend` feature names a device's `UNSUPPORTED_FEATURE` refers to.
fn feature_name(feature: &str) -> Option<&'static str> {
    let f = feature.to_ascii_lowercase();
    if f.contains("membrane") {
        Some("membrane recording")
    } else if f.contains("noise") {
        Some("restoring the noise position")
    } else {
        None
    }
}

/// `ERROR_CODE_BAD_STATE` as `bad state`.
fn code_name(code: i32) -> String {
    pb::ErrorCode::try_from(code)
        .map_or("unknown error code", |c| c.as_str_name())
        .trim_start_matches("ERROR_CODE_")
        .replace('_', " ")
        .to_ascii_lowercase()
}

/// Longest `Error.field`, `Error.feature` and `Error.resource`, bytes.
pub const MAX_ERROR_NAME_LEN: usize = 48;

/// Fits `e` into a frame of at most `max_frame_size` bytes (at least the protocol's minimum of
/// 256): `field`, `feature` and `resource` are cut to [`MAX_ERROR_NAME_LEN`] bytes and
/// `message` to [`MAX_ERROR_MESSAGE_LEN`], then `message` is shortened further (at a character
/// boundary) until the frame fits. Every structured field survives: with all of them at their
/// longest an `Error` takes 220 bytes of a 256-byte frame.
pub fn fit_error(e: &mut pb::Error, max_frame_size: usize) {
    for s in [&mut e.field, &mut e.feature, &mut e.resource] {
        *s = truncate_utf8(s, MAX_ERROR_NAME_LEN);
    }
    e.message = truncate_utf8(&e.message, MAX_ERROR_MESSAGE_LEN);
    let budget = crate::convert::payload_budget(max_frame_size.max(MIN_MAX_FRAME_SIZE));
    loop {
        let len = prost::Message::encoded_len(e);
        if len <= budget || e.message.is_empty() {
            return;
        }
        let keep = e.message.len().saturating_sub(len - budget);
        e.message = truncate_utf8(&e.message, keep);
    }
}

/// A device's `Error` as the host reports it through the `Backend` trait of backend `backend`.
pub fn backend_error(err: &pb::Error, backend: &str) -> BackendError {
    use pb::ErrorCode as C;
    let message = truncate_utf8(&err.message, MAX_ERROR_MESSAGE_LEN);
    let device = || BackendError::Device {
        backend: backend.to_string(),
        message: format!("{}: {message}", code_name(err.code)),
    };
    match C::try_from(err.code) {
        Ok(C::DoesNotFit) => BackendError::DoesNotFit {
            backend: backend.to_string(),
            resource: truncate_utf8(&err.resource, MAX_ERROR_MESSAGE_LEN),
            needed: usize::try_from(err.needed).unwrap_or(usize::MAX),
            available: usize::try_from(err.available).unwrap_or(usize::MAX),
            detail: message,
        },
        Ok(C::InvalidNetwork) => BackendError::InvalidNetwork(message),
        Ok(C::OutOfRange) => BackendError::InvalidInput(message),
        Ok(C::UnsupportedFeature) => match feature_name(&err.feature) {
            Some(feature) => BackendError::Unsupported {
                backend: backend.to_string(),
                feature,
            },
            None => device(),
        },
        Ok(C::BadState) => {
            let asked_to_run = [
                MessageType::RunRequest,
                MessageType::ReadRunResult,
                MessageType::MembraneRequest,
            ]
            .iter()
            .any(|t| u32::from(t.byte()) == err.request_type);
            let unconfigured = matches!(
                pb::DeviceState::try_from(err.state),
                Ok(pb::DeviceState::Ready | pb::DeviceState::Configuring)
            );
            if asked_to_run && unconfigured {
                BackendError::NotConfigured
            } else {
                device()
            }
        }
        _ => device(),
    }
}

/// The `Error` a device answers with when its substrate refuses request type `request_type`
/// with `err`.
pub fn error_from_backend(err: &BackendError, request_type: u8) -> pb::Error {
    use pb::ErrorCode as C;
    // The message is what the host's BackendError will wrap, without this error's own prefix.
    let text = match err {
        BackendError::InvalidNetwork(m) | BackendError::InvalidInput(m) => m.clone(),
        BackendError::DoesNotFit { detail, .. } => detail.clone(),
        other => other.to_string(),
    };
    let mut e = pb::Error {
        message: truncate_utf8(&text, MAX_ERROR_MESSAGE_LEN),
        request_type: u32::from(request_type),
        ..Default::default()
    };
    let code = match err {
        BackendError::Unsupported { feature, .. } => {
            e.feature = (*feature).to_string();
            C::UnsupportedFeature
        }
        BackendError::InvalidNetwork(_) => C::InvalidNetwork,
        BackendError::DoesNotFit {
            resource,
            needed,
            available,
            ..
        } => {
            e.resource = resource.clone();
            e.needed = *needed as u64;
            e.available = *available as u64;
            C::DoesNotFit
        }
        BackendError::InvalidInput(_) => C::OutOfRange,
        BackendError::NotConfigured => {
            e.state = pb::DeviceState::Ready as i32;
            C::BadState
        }
        _ => C::Internal,
    };
    e.code = code as i32;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_fits_the_smallest_frame_with_its_fields() {
        let long = "x".repeat(500);
        let mut e = pb::Error {
            code: pb::ErrorCode::DoesNotFit as i32,
            message: long.clone(),
            request_type: 0x12,
            field: long.clone(),
            value: Some(f64::MAX),
            min: Some(-f64::MAX),
            max: Some(f64::MAX),
            feature: long.clone(),
            resource: long,
            needed: u64::MAX,
            available: u64::MAX,
            state: pb::DeviceState::Configured as i32,
        };
        fit_error(&mut e, MIN_MAX_FRAME_SIZE);
        let frame = crate::messages::encode_message(7, &Message::Error(e.clone()), 256)
            .expect("fits 256 bytes");
        assert!(frame.len() <= 256 + 4, "{} wire bytes", frame.len());
        assert_eq!(e.code, pb::ErrorCode::DoesNotFit as i32);
        assert_eq!(e.request_type, 0x12);
        assert_eq!(e.resource.len(), MAX_ERROR_NAME_LEN);
        assert!(!e.message.is_empty());
    }

    #[test]
    fn backend_errors_survive_the_wire() {
        let cases = [
            BackendError::Unsupported {
                backend: "dev".into(),
                feature: "membrane recording",
            },
            BackendError::InvalidNetwork("layer 0 has no neurons".into()),
            BackendError::DoesNotFit {
                backend: "dev".into(),
                resource: "neurons".into(),
                needed: 600,
                available: 512,
                detail: "layers [600]".into(),
            },
            BackendError::InvalidInput("sample 0, channel 1: input time 9".into()),
            BackendError::NotConfigured,
        ];
        for err in cases {
            let wire = error_from_backend(&err, MessageType::RunRequest.byte());
            let back = backend_error(&wire, "dev");
            assert_eq!(back.to_string(), err.to_string());
        }
        let internal = backend_error(
            &pb::Error {
                code: 99,
                message: "x".into(),
                ..Default::default()
            },
            "dev",
        );
        assert!(matches!(internal, BackendError::Device { .. }));
    }
}
