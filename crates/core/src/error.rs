//! The domain's one error type. It names what went wrong in domain terms;
//! each HTTP surface maps it to its own wire codes in one place.

use berth_oci::Digest;

pub type CoreResult<T> = Result<T, CoreError>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CoreError {
    #[error("project {0} not found")]
    ProjectNotFound(String),
    #[error("repository {0} not found")]
    RepositoryNotFound(String),
    #[error("blob {0} not found")]
    BlobNotFound(Digest),
    #[error("manifest {0} not found")]
    ManifestNotFound(String),
    #[error("artifact {0} not found")]
    ArtifactNotFound(String),
    #[error("tag {0} not found")]
    TagNotFound(String),
    #[error("upload session not found")]
    UploadNotFound,
    #[error("{0} not found")]
    NotFound(String),

    #[error("invalid repository name: {0}")]
    InvalidName(String),
    #[error("invalid digest: {0}")]
    InvalidDigest(String),
    #[error("provided digest {expected} did not match uploaded content {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("{0}")]
    InvalidManifest(String),
    #[error("{0}")]
    UnsupportedManifest(String),
    #[error("manifest references {0}, which is not in this repository")]
    ManifestBlobUnknown(Digest),
    #[error("manifest is larger than the limit of {limit} bytes")]
    ManifestTooLarge { limit: u64 },
    #[error("{0}")]
    UploadInvalid(String),
    /// A chunk did not start where the upload ends; `size` is the upload's
    /// current length.
    #[error("chunk does not continue the upload, which has {size} bytes")]
    UploadOutOfOrder { size: u64 },
    #[error("the upload is being written by another request")]
    UploadBusy,
    #[error("{0}")]
    SizeInvalid(String),
    #[error("{0}")]
    BadRequest(String),

    #[error("unauthorized: authentication required")]
    Unauthenticated,
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Precondition(String),
    /// Storing `adding` more bytes would take the project past its quota.
    #[error(
        "adding {} of storage resource, which when updated to current usage of {} will exceed the configured upper limit of {}.",
        crate::model::human_bytes(*adding),
        crate::model::human_bytes(*used),
        crate::model::human_bytes(*limit)
    )]
    QuotaExceeded { adding: i64, used: i64, limit: i64 },
    #[error("{0}")]
    Busy(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        CoreError::Internal(e.to_string())
    }

    /// The standard denial (docker users know this text).
    pub fn denied() -> Self {
        CoreError::Denied("requested access to the resource is denied".into())
    }

    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            CoreError::ProjectNotFound(_)
                | CoreError::RepositoryNotFound(_)
                | CoreError::BlobNotFound(_)
                | CoreError::ManifestNotFound(_)
                | CoreError::ArtifactNotFound(_)
                | CoreError::TagNotFound(_)
                | CoreError::UploadNotFound
                | CoreError::NotFound(_)
        )
    }
}
