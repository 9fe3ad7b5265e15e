//! Berth's domain. It knows projects, repositories, artifacts, tags, blobs
//! and upload sessions, decides who may do what (`access`), and implements
//! the push and pull use-cases (`registry`) and Harbor's management model
//! (`catalog`). Storage is reached only through the ports in `ports`; there
//! is no HTTP, SQL or cloud SDK in this crate.

pub mod access;
pub mod audit;
pub mod audit_purge;
pub mod catalog;
pub mod clock;
pub mod error;
pub mod events;
pub mod gc;
pub mod identity;
pub mod immutable;
pub mod jobs;
pub mod load;
pub mod members;
pub mod model;
pub mod ports;
pub mod purge;
pub mod query;
pub mod quotas;
pub mod registry;
pub mod retention;
pub mod robots;
pub mod schedule;
pub mod selectors;
pub mod settings;
pub mod stats;
pub mod storage_requests;
pub mod system_jobs;
pub mod tokens;
pub mod users;

pub use error::{CoreError, CoreResult};
