//! Protocol errors and `BackendError`s, in both directions.

use spikeloop_backend::BackendError;

use super::{MAX_ERROR_MESSAGE_LEN, truncate_utf8};
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
