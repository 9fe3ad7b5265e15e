//! Domain errors as Harbor API errors: `{"errors":[{"code","message"}]}`
//! with Harbor's codes (`harbor-behaviour.md` §14). Codes are data in
//! `HarborCode::info`; the mapping from domain errors is exhaustive.

use axum::response::{IntoResponse, Response};
use berth_core::CoreError;
use http::{header, HeaderValue, StatusCode};
use serde_json::json;

/// Harbor's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HarborCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    Denied,
    NotFound,
    MethodNotAllowed,
    Conflict,
    Precondition,
    RequestEntityTooLarge,
    TooManyRequest,
    ManifestInvalid,
    DigestInvalid,
    Unsupported,
    UnprocessableEntity,
    Unknown,
}

impl HarborCode {
    /// The code's wire name and HTTP status.
    pub const fn info(self) -> (&'static str, u16) {
        match self {
            HarborCode::BadRequest => ("BAD_REQUEST", 400),
            HarborCode::Unauthorized => ("UNAUTHORIZED", 401),
            HarborCode::Forbidden => ("FORBIDDEN", 403),
            HarborCode::Denied => ("DENIED", 403),
            HarborCode::NotFound => ("NOT_FOUND", 404),
            HarborCode::MethodNotAllowed => ("METHOD_NOT_ALLOWED", 405),
            HarborCode::Conflict => ("CONFLICT", 409),
            HarborCode::Precondition => ("PRECONDITION", 412),
            HarborCode::RequestEntityTooLarge => ("REQUEST_ENTITY_TOO_LARGE", 413),
            HarborCode::TooManyRequest => ("TOO_MANY_REQUEST", 429),
            HarborCode::ManifestInvalid => ("MANIFEST_INVALID", 400),
            HarborCode::DigestInvalid => ("DIGEST_INVALID", 400),
            HarborCode::Unsupported => ("UNSUPPORTED", 400),
            HarborCode::UnprocessableEntity => ("UNPROCESSABLE_ENTITY", 422),
            HarborCode::Unknown => ("UNKNOWN", 500),
        }
    }
    pub fn code(self) -> &'static str {
        self.info().0
    }
    pub fn status(self) -> u16 {
        self.info().1
    }
}

/// An API error: a domain error, or one raised by the API layer itself.
#[derive(Debug)]
pub enum ApiError {
    Core(CoreError),
    Raw(HarborCode, String),
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError::Core(e)
    }
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::Raw(HarborCode::BadRequest, msg.into())
    }
}

pub fn code_of(e: &CoreError) -> HarborCode {
    match e {
        CoreError::ProjectNotFound(_)
        | CoreError::RepositoryNotFound(_)
        | CoreError::BlobNotFound(_)
        | CoreError::ManifestNotFound(_)
        | CoreError::ArtifactNotFound(_)
        | CoreError::TagNotFound(_)
        | CoreError::UploadNotFound
        | CoreError::NotFound(_) => HarborCode::NotFound,
        CoreError::InvalidName(_)
        | CoreError::ManifestBlobUnknown(_)
        | CoreError::UploadInvalid(_)
        | CoreError::UploadOutOfOrder { .. }
        | CoreError::SizeInvalid(_)
        | CoreError::BadRequest(_) => HarborCode::BadRequest,
        CoreError::InvalidDigest(_) | CoreError::DigestMismatch { .. } => HarborCode::DigestInvalid,
        CoreError::InvalidManifest(_) => HarborCode::ManifestInvalid,
        CoreError::UnsupportedManifest(_) => HarborCode::Unsupported,
        CoreError::ManifestTooLarge { .. } => HarborCode::RequestEntityTooLarge,
        CoreError::UploadBusy | CoreError::Conflict(_) => HarborCode::Conflict,
        CoreError::Unauthenticated => HarborCode::Unauthorized,
        CoreError::Denied(_) => HarborCode::Forbidden,
        CoreError::Precondition(_) => HarborCode::Precondition,
        CoreError::QuotaExceeded { .. } => HarborCode::Denied,
        CoreError::Busy(_) => HarborCode::TooManyRequest,
        CoreError::Internal(_) => HarborCode::Unknown,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, message) = match &self {
            ApiError::Core(CoreError::Internal(detail)) => {
                tracing::error!(error = %detail, "internal error");
                (HarborCode::Unknown, "internal server error".to_owned())
            }
            ApiError::Core(CoreError::Unauthenticated) => {
                (HarborCode::Unauthorized, "unauthorized".to_owned())
            }
            ApiError::Core(e) => (code_of(e), e.to_string()),
            ApiError::Raw(c, m) => (*c, m.clone()),
        };
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "errors": [{ "code": code.code(), "message": message }] }).to_string();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if code == HarborCode::Unauthorized {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Berth\""),
            );
        }
        res
    }
}
