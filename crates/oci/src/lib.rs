//! The OCI distribution vocabulary Berth speaks: digests and a resumable
//! hasher, repository names, tags and references, manifest parsing and
//! validation, and the table of OCI error codes. Nothing here does I/O.

pub mod digest;
pub mod error;
pub mod manifest;
pub mod media;
pub mod name;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use error::ErrorCode;
pub use manifest::{Descriptor, Manifest, ManifestError, ManifestKind, Platform};
pub use name::{NameError, ProjectName, Reference, RepoName, Tag};
