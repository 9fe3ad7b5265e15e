//! Purge of abandoned upload sessions: a session nobody has written to for
//! `max_age` loses its record and its storage (a partial file, or an S3
//! multipart upload). It runs as a job (`PURGE_UPLOAD`), submitted every
//! `interval` by [`run_upload_purge_schedule`], so that one node does it,
//! with its log and history kept.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use crate::clock::{self, Millis};
use crate::error::CoreResult;
use crate::jobs::{Interrupted, JobRunner, Jobs, TaskContext};
use crate::ports::{BlobStore, MetaStore};

/// The executions' kind.
pub const PURGE_UPLOAD: &str = "PURGE_UPLOAD";

/// Sessions handled per store round trip.
const BATCH: i64 = 200;

pub struct UploadPurge {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
}

impl UploadPurge {
    pub fn new(meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>) -> Self {
        UploadPurge { meta, blobs }
    }
}

#[async_trait]
impl JobRunner for UploadPurge {
    fn vendor_type(&self) -> &'static str {
        PURGE_UPLOAD
    }

    /// Deletes sessions untouched for the task's `max_age_ms`. A session
    /// written to meanwhile, or held by a request, is left alone: the
    /// delete is conditional on both.
    async fn run(&self, ctx: &mut TaskContext) -> Result<(), String> {
        let max_age = ctx.attrs()["max_age_ms"].as_i64().unwrap_or(i64::MAX);
        let before = clock::now().saturating_sub(max_age);
        let mut purged = 0i64;
        let mut bytes = 0u64;
        let mut skipped = 0i64;
        loop {
            let batch = self
                .meta
                .stale_uploads(before, BATCH)
                .await
                .map_err(|e| e.to_string())?;
            let last = (batch.len() as i64) < BATCH;
            let mut progressed = false;
            for u in batch {
                match self
                    .meta
                    .delete_stale_upload(&u.id, before, clock::now())
                    .await
                    .map_err(|e| e.to_string())?
                {
                    Some(gone) => {
                        progressed = true;
                        // The record is gone first: no request can resume
                        // the session while its storage is released.
                        if let Err(e) = self.blobs.abort_upload(&gone.id, &gone.backend_state).await
                        {
                            ctx.log(format!(
                                "upload {}: releasing its storage failed: {e}",
                                gone.id
                            ));
                        }
                        purged += 1;
                        bytes += gone.size;
                    }
                    None => skipped += 1,
                }
            }
            match ctx.progress(purged, purged + skipped).await {
                Ok(()) => {}
                Err(Interrupted::Stopped) | Err(Interrupted::Lost) => break,
            }
            if last || !progressed {
                break;
            }
        }
        ctx.log(format!(
            "purged {purged} upload session(s) untouched for over {} s ({bytes} bytes); {skipped} were busy or written to meanwhile",
            max_age / 1000
        ));
        Ok(())
    }
}

/// Submits a purge every `interval`, unless one is still open, until
/// `stop` turns true. With several nodes each submits on its own clock;
/// an extra run finds nothing to do.
pub async fn run_upload_purge_schedule(
    jobs: Jobs,
    meta: Arc<dyn MetaStore>,
    interval: Duration,
    max_age: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = submit_if_idle(&jobs, meta.as_ref(), max_age).await {
            tracing::warn!(error = %e, "scheduling the upload purge failed");
        }
    }
}

async fn submit_if_idle(jobs: &Jobs, meta: &dyn MetaStore, max_age: Duration) -> CoreResult<()> {
    let (latest, _) = meta
        .list_executions(PURGE_UPLOAD, None, crate::query::Page::new(1, 1))
        .await?;
    if latest.first().is_some_and(|e| !e.status.is_final()) {
        return Ok(());
    }
    let age = max_age.as_millis().min(i64::MAX as u128) as Millis;
    jobs.submit(
        PURGE_UPLOAD,
        0,
        "SCHEDULE",
        json!({ "max_age_ms": age }),
        vec![json!({ "max_age_ms": age })],
    )
    .await?;
    Ok(())
}
