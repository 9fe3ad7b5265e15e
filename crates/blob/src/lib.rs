//! Berth's blob storage: the `BlobStore` port of `berth-core` on the local
//! filesystem ([`FsBlobStore`]).

pub mod fs;
mod upload_id;

pub use fs::FsBlobStore;
