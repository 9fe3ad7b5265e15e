//! The OCI distribution error codes, as data: each wire code with its HTTP
//! status and default message, in one exhaustive table (`ErrorCode::info`).

/// An error code of the distribution protocol (plus the few distribution
/// and Harbor add for statuses the spec leaves open).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    RangeInvalid,
    TooLarge,
    Precondition,
    Conflict,
    BadRequest,
    Unavailable,
    Unknown,
}

impl ErrorCode {
    /// Every code, for tests and documentation.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::BlobUnknown,
        ErrorCode::BlobUploadInvalid,
        ErrorCode::BlobUploadUnknown,
        ErrorCode::DigestInvalid,
        ErrorCode::ManifestBlobUnknown,
        ErrorCode::ManifestInvalid,
        ErrorCode::ManifestUnknown,
        ErrorCode::NameInvalid,
        ErrorCode::NameUnknown,
        ErrorCode::SizeInvalid,
        ErrorCode::Unauthorized,
        ErrorCode::Denied,
        ErrorCode::Unsupported,
        ErrorCode::TooManyRequests,
        ErrorCode::RangeInvalid,
        ErrorCode::TooLarge,
        ErrorCode::Precondition,
        ErrorCode::Conflict,
        ErrorCode::BadRequest,
        ErrorCode::Unavailable,
        ErrorCode::Unknown,
    ];

    /// The code's row: wire name, HTTP status, default message.
    pub const fn info(self) -> (&'static str, u16, &'static str) {
        match self {
            ErrorCode::BlobUnknown => ("BLOB_UNKNOWN", 404, "blob unknown to registry"),
            ErrorCode::BlobUploadInvalid => ("BLOB_UPLOAD_INVALID", 400, "blob upload invalid"),
            ErrorCode::BlobUploadUnknown => (
                "BLOB_UPLOAD_UNKNOWN",
                404,
                "blob upload unknown to registry",
            ),
            ErrorCode::DigestInvalid => (
                "DIGEST_INVALID",
                400,
                "provided digest did not match uploaded content",
            ),
            ErrorCode::ManifestBlobUnknown => (
                "MANIFEST_BLOB_UNKNOWN",
                400,
                "manifest references a manifest or blob unknown to registry",
            ),
            ErrorCode::ManifestInvalid => ("MANIFEST_INVALID", 400, "manifest invalid"),
            ErrorCode::ManifestUnknown => ("MANIFEST_UNKNOWN", 404, "manifest unknown to registry"),
            ErrorCode::NameInvalid => ("NAME_INVALID", 400, "invalid repository name"),
            ErrorCode::NameUnknown => {
                ("NAME_UNKNOWN", 404, "repository name not known to registry")
            }
            ErrorCode::SizeInvalid => (
                "SIZE_INVALID",
                400,
                "provided length did not match content length",
            ),
            ErrorCode::Unauthorized => ("UNAUTHORIZED", 401, "authentication required"),
            ErrorCode::Denied => ("DENIED", 403, "requested access to the resource is denied"),
            ErrorCode::Unsupported => ("UNSUPPORTED", 400, "the operation is unsupported"),
            ErrorCode::TooManyRequests => ("TOOMANYREQUESTS", 429, "too many requests"),
            ErrorCode::RangeInvalid => ("RANGE_INVALID", 416, "invalid content range"),
            ErrorCode::TooLarge => ("REQUEST_ENTITY_TOO_LARGE", 413, "request entity too large"),
            ErrorCode::Precondition => ("PRECONDITION", 412, "precondition failed"),
            ErrorCode::Conflict => ("CONFLICT", 409, "conflict"),
            ErrorCode::BadRequest => ("BAD_REQUEST", 400, "bad request"),
            ErrorCode::Unavailable => ("UNAVAILABLE", 503, "service unavailable"),
            ErrorCode::Unknown => ("UNKNOWN", 500, "internal server error"),
        }
    }

    pub fn code(self) -> &'static str {
        self.info().0
    }

    pub fn status(self) -> u16 {
        self.info().1
    }

    pub fn message(self) -> &'static str {
        self.info().2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let mut names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for c in ErrorCode::ALL {
            assert!((400..600).contains(&c.status()), "{c:?}");
            assert!(!c.message().is_empty());
        }
    }
}
