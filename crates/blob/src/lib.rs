//! Berth's blob storage: the `BlobStore` port of `berth-core` on the local
//! filesystem ([`FsBlobStore`]) and on S3 ([`S3BlobStore`]). Both backends
//! pass the same conformance suite (`tests/conformance.rs`).

pub mod fs;
pub mod s3;
mod upload_id;

pub use fs::FsBlobStore;
pub use s3::S3BlobStore;
