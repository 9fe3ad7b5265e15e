//! Berth's one integration test binary: real `berth serve` processes on
//! 127.0.0.1, real PostgreSQL and S3 (moto) from `scripts/test-services`,
//! and real clients (docker, skopeo, oras).

mod harness;

mod accounts;
mod checklist;
mod clients;
mod conformance;
mod durability;
mod gc;
mod harbor_api;
mod immutable;
mod jobs;
mod portal;
mod purge_audit;
mod quotas;
mod rbac;
mod retention;
mod security;
mod storage_requests;

/// Runs a test body against each backend pair: SQLite + filesystem, and
/// PostgreSQL + S3.
#[macro_export]
macro_rules! on_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = $crate::harness::Server::start($crate::harness::Backend::Embedded).await;
                    super::$name(&s).await;
                }
            )*
        }
        mod shared {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(b) = $crate::harness::Backend::postgres_s3().await {
                        let s = $crate::harness::Server::start(b).await;
                        super::$name(&s).await;
                    }
                }
            )*
        }
    };
}
