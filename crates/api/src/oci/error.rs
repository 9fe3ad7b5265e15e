//! Domain errors as OCI error responses: `{"errors":[{code,message,detail}]}`
//! with the spec's codes and statuses. The mapping is exhaustive.

use axum::response::{IntoResponse, Response};
use berth_core::CoreError;
use berth_oci::ErrorCode;
use http::{header, HeaderValue, StatusCode};
use serde_json::json;

/// A placeholder challenge; the `/v2` router's `challenge` layer replaces it
/// with one naming the realm and scope of the request.
pub const CHALLENGE: &str = "Basic realm=\"harbor\"";

#[derive(Debug)]
pub struct OciError(pub CoreError);

impl From<CoreError> for OciError {
    fn from(e: CoreError) -> Self {
        OciError(e)
    }
}

/// The OCI code for a domain error.
pub fn code_of(e: &CoreError) -> ErrorCode {
    match e {
        CoreError::ProjectNotFound(_) => ErrorCode::NameUnknown,
        CoreError::RepositoryNotFound(_) => ErrorCode::NameUnknown,
        CoreError::BlobNotFound(_) => ErrorCode::BlobUnknown,
        CoreError::ManifestNotFound(_) => ErrorCode::ManifestUnknown,
        CoreError::ArtifactNotFound(_) => ErrorCode::ManifestUnknown,
        CoreError::TagNotFound(_) => ErrorCode::ManifestUnknown,
        CoreError::UploadNotFound => ErrorCode::BlobUploadUnknown,
        CoreError::NotFound(_) => ErrorCode::NameUnknown,
        CoreError::InvalidName(_) => ErrorCode::NameInvalid,
        CoreError::InvalidDigest(_) => ErrorCode::DigestInvalid,
        CoreError::DigestMismatch { .. } => ErrorCode::DigestInvalid,
        CoreError::InvalidManifest(_) => ErrorCode::ManifestInvalid,
        CoreError::UnsupportedManifest(_) => ErrorCode::Unsupported,
        CoreError::ManifestBlobUnknown(_) => ErrorCode::ManifestBlobUnknown,
        CoreError::ManifestTooLarge { .. } => ErrorCode::TooLarge,
        CoreError::UploadInvalid(_) => ErrorCode::BlobUploadInvalid,
        CoreError::UploadOutOfOrder { .. } => ErrorCode::RangeInvalid,
        CoreError::UploadBusy => ErrorCode::RangeInvalid,
        CoreError::SizeInvalid(_) => ErrorCode::SizeInvalid,
        CoreError::BadRequest(_) => ErrorCode::BadRequest,
        CoreError::Unauthenticated => ErrorCode::Unauthorized,
        CoreError::Denied(_) => ErrorCode::Denied,
        CoreError::Conflict(_) => ErrorCode::Conflict,
        CoreError::Precondition(_) => ErrorCode::Precondition,
        CoreError::QuotaExceeded { .. } => ErrorCode::Denied,
        CoreError::Busy(_) => ErrorCode::Unavailable,
        CoreError::Internal(_) => ErrorCode::Unknown,
    }
}

impl OciError {
    /// The response for a refused request, naming in `detail` the access it
    /// needed, as distribution does. Docker keeps a `DENIED` error that has
    /// a detail as a typed error: it stops retrying and prints
    /// "denied: requested access to the resource is denied".
    pub fn denied_response(self, repository: &str, action: &str) -> Response {
        if matches!(self.0, CoreError::Denied(_)) {
            let detail = json!([{ "Type": "repository", "Name": repository, "Action": action }]);
            self.render(Some(detail))
        } else {
            self.into_response()
        }
    }

    fn render(self, extra_detail: Option<serde_json::Value>) -> Response {
        let code = code_of(&self.0);
        let message = match &self.0 {
            CoreError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                code.message().to_owned()
            }
            CoreError::Unauthenticated => "authentication required".to_owned(),
            other => other.to_string(),
        };
        let detail = match &self.0 {
            CoreError::BlobNotFound(d) | CoreError::ManifestBlobUnknown(d) => {
                json!({ "digest": d.as_str() })
            }
            CoreError::DigestMismatch { expected, actual } => {
                json!({ "expected": expected.as_str(), "actual": actual.as_str() })
            }
            _ => extra_detail.unwrap_or(serde_json::Value::Null),
        };
        let mut entry = json!({ "code": code.code(), "message": message });
        if !detail.is_null() {
            entry["detail"] = detail;
        }
        let body = json!({ "errors": [entry] }).to_string();
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        match &self.0 {
            CoreError::Unauthenticated => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE),
                );
            }
            CoreError::UploadOutOfOrder { size } => {
                if let Ok(v) = HeaderValue::from_str(&super::range_value(*size)) {
                    h.insert(header::RANGE, v);
                }
            }
            CoreError::Busy(_) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        res
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        self.render(None)
    }
}
