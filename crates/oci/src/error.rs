//! The OCI distribution error codes, as data: each wire code with its HTTP
//! status and default message. Renderers and tests use this one table.

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

/// `(code, wire name, status, default message)`.
pub const TABLE: &[(ErrorCode, &str, u16, &str)] = &[
    (
        ErrorCode::BlobUnknown,
        "BLOB_UNKNOWN",
        404,
        "blob unknown to registry",
    ),
    (
        ErrorCode::BlobUploadInvalid,
        "BLOB_UPLOAD_INVALID",
        400,
        "blob upload invalid",
    ),
    (
        ErrorCode::BlobUploadUnknown,
        "BLOB_UPLOAD_UNKNOWN",
        404,
        "blob upload unknown to registry",
    ),
    (
        ErrorCode::DigestInvalid,
        "DIGEST_INVALID",
        400,
        "provided digest did not match uploaded content",
    ),
    (
        ErrorCode::ManifestBlobUnknown,
        "MANIFEST_BLOB_UNKNOWN",
        400,
        "manifest references a manifest or blob unknown to registry",
    ),
    (
        ErrorCode::ManifestInvalid,
        "MANIFEST_INVALID",
        400,
        "manifest invalid",
    ),
    (
        ErrorCode::ManifestUnknown,
        "MANIFEST_UNKNOWN",
        404,
        "manifest unknown to registry",
    ),
    (
        ErrorCode::NameInvalid,
        "NAME_INVALID",
        400,
        "invalid repository name",
    ),
    (
        ErrorCode::NameUnknown,
        "NAME_UNKNOWN",
        404,
        "repository name not known to registry",
    ),
    (
        ErrorCode::SizeInvalid,
        "SIZE_INVALID",
        400,
        "provided length did not match content length",
    ),
    (
        ErrorCode::Unauthorized,
        "UNAUTHORIZED",
        401,
        "authentication required",
    ),
    (
        ErrorCode::Denied,
        "DENIED",
        403,
        "requested access to the resource is denied",
    ),
    (
        ErrorCode::Unsupported,
        "UNSUPPORTED",
        400,
        "the operation is unsupported",
    ),
    (
        ErrorCode::TooManyRequests,
        "TOOMANYREQUESTS",
        429,
        "too many requests",
    ),
    (
        ErrorCode::RangeInvalid,
        "RANGE_INVALID",
        416,
        "invalid content range",
    ),
    (
        ErrorCode::TooLarge,
        "REQUEST_ENTITY_TOO_LARGE",
        413,
        "request entity too large",
    ),
    (
        ErrorCode::Precondition,
        "PRECONDITION",
        412,
        "precondition failed",
    ),
    (
        ErrorCode::Unavailable,
        "UNAVAILABLE",
        503,
        "service unavailable",
    ),
    (ErrorCode::Unknown, "UNKNOWN", 500, "internal server error"),
];

impl ErrorCode {
    fn row(self) -> &'static (ErrorCode, &'static str, u16, &'static str) {
        TABLE
            .iter()
            .find(|r| r.0 == self)
            .expect("every ErrorCode has a row in TABLE")
    }

    pub fn code(self) -> &'static str {
        self.row().1
    }

    pub fn status(self) -> u16 {
        self.row().2
    }

    pub fn message(self) -> &'static str {
        self.row().3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete_and_unique() {
        let all = [
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
        assert_eq!(all.len(), TABLE.len());
        for c in all {
            assert!(!c.code().is_empty());
            assert!((400..600).contains(&c.status()));
        }
        let mut names: Vec<_> = TABLE.iter().map(|r| r.1).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
    }
}
