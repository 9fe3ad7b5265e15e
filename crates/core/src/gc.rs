//! Online garbage collection (`GARBAGE_COLLECTION`), Harbor's
//! non-blocking GC: the registry stays writable while it runs.
//!
//! 1. Optionally deletes untagged artifacts pushed before the time window
//!    (with their accessories and untagged index children).
//! 2. Marks blobs no artifact references and nobody used within the time
//!    window (`status = 'delete'`). Any use of a marked blob — a HEAD or
//!    GET, a mount, an upload completing onto it, a manifest PUT that
//!    references it — clears the mark in the same statement that serves it.
//! 3. Sweeps in batches, pacing itself around client requests
//!    (`crate::load`): claims marked blobs that are still unreferenced
//!    (`deleting`: now treated as absent, so clients upload them again),
//!    deletes their bytes, then their rows, links and quota entries.
//!
//! Between 1 and 2 it deletes the stored manifests (metadata rows) that no
//! artifact uses any more and that nobody pushed within the window.
//!
//! A client told that a blob exists may reference it for at least half
//! the window: `Registry::open_blob` refreshes the time of a blob older
//! than that. A sweep a crash interrupted is finished by the next run.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::access::{Action, Resource, Subject};
use crate::clock::{self, Millis};
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventBus};
use crate::jobs::{Interrupted, JobRunner, TaskContext};
use crate::load::Foreground;
use crate::model::{human_bytes, Execution};
use crate::ports::{BlobStore, MetaStore};
use crate::query::Page;
use crate::schedule::{ScheduleSpec, Scheduled};
use crate::system_jobs::SystemJob;

/// The executions' kind, as Harbor names it.
pub const GARBAGE_COLLECTION: &str = "GARBAGE_COLLECTION";

/// Harbor's default window (`GC_TIME_WINDOW_HOURS`): blobs and untagged
/// artifacts younger than this are kept.
pub const DEFAULT_TIME_WINDOW: Duration = Duration::from_secs(2 * 3600);

/// Blobs per sweep batch (one claim, one batched delete, one
/// transaction): on an idle registry, and while clients are served (short
/// transactions leave the store's writer to pushes).
const SWEEP_BATCH: i64 = 1000;
const SWEEP_BATCH_BUSY: i64 = 100;
/// Untagged artifacts read per round trip.
const ARTIFACT_BATCH: i64 = 500;
/// Unused manifests deleted per statement.
const MANIFEST_BATCH: i64 = 500;
const MANIFEST_BATCH_BUSY: i64 = 50;

/// A run's parameters (`job_parameters`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GcParams {
    #[serde(default = "yes")]
    pub delete_untagged: bool,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default = "one")]
    pub workers: u32,
    /// Milliseconds; set by the server, not the client.
    #[serde(default)]
    pub time_window_ms: i64,
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}

impl GcParams {
    pub fn validate(&self) -> CoreResult<()> {
        if !(1..=10).contains(&self.workers) {
            return Err(CoreError::BadRequest(
                "workers must be between 1 and 10".into(),
            ));
        }
        Ok(())
    }
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcOutcome {
    pub artifacts: i64,
    pub blobs: i64,
    /// Stored manifests no artifact uses any more.
    pub manifests: i64,
    /// Blobs' and manifests' bytes.
    pub bytes: i64,
}

pub struct GarbageCollector {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    events: EventBus,
    foreground: Foreground,
}

impl GarbageCollector {
    /// `foreground` is the process's request count: the sweep paces itself
    /// around it (`load`).
    pub fn new(
        meta: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        events: EventBus,
        foreground: Foreground,
    ) -> Self {
        GarbageCollector {
            meta,
            blobs,
            events,
            foreground,
        }
    }

    /// Deletes the bytes, then the rows, of claimed blobs.
    async fn sweep(&self, batch: &[(berth_oci::Digest, i64)], workers: u32) -> CoreResult<()> {
        let digests: Vec<_> = batch.iter().map(|(d, _)| d.clone()).collect();
        self.blobs.delete_many(&digests, workers as usize).await?;
        self.meta.finish_sweep(&digests).await
    }

    async fn collect(&self, ctx: &mut TaskContext, p: GcParams) -> Result<GcOutcome, Stop> {
        let cutoff = clock::now().saturating_sub(p.time_window_ms);
        let mut out = GcOutcome::default();
        if !p.dry_run {
            // A sweep that a crash or a lost lease interrupted.
            loop {
                let left = self.meta.deleting_blobs(SWEEP_BATCH).await?;
                if left.is_empty() {
                    break;
                }
                ctx.log(format!(
                    "finishing {} blob(s) an interrupted run was sweeping",
                    left.len()
                ));
                self.sweep(&left, p.workers).await?;
                out.blobs += left.len() as i64;
                out.bytes += left.iter().map(|(_, s)| s).sum::<i64>();
            }
        }
        let mut pacer = self.foreground.pacer();
        // A dry run's untagged roots, previewed together at the end.
        let mut roots: Vec<i64> = vec![];
        if p.delete_untagged {
            let mut after = 0;
            loop {
                let batch = self
                    .meta
                    .untagged_artifacts(cutoff, after, ARTIFACT_BATCH)
                    .await?;
                let Some(last) = batch.last() else { break };
                after = last.id;
                for a in &batch {
                    if p.dry_run {
                        ctx.log(format!(
                            "would delete untagged artifact {}@{}",
                            a.repository, a.digest
                        ));
                        roots.push(a.id);
                        continue;
                    }
                    let guard = crate::immutable::matcher(
                        &*self.meta,
                        a.project_id,
                        a.repository.project(),
                    )
                    .await?;
                    let name = a.repository.as_str();
                    let deleted = match self
                        .meta
                        .delete_manifest(&a.repository, &a.digest, &|t| guard.is_immutable(name, t))
                        .await
                    {
                        Ok(d) => d,
                        // Referenced by an index pushed meanwhile: it stays.
                        Err(CoreError::Precondition(_)) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    for (digest, tags) in deleted.artifacts {
                        ctx.log(format!(
                            "deleted untagged artifact {}@{digest}",
                            a.repository
                        ));
                        out.artifacts += 1;
                        self.events.publish(Event::ArtifactDeleted {
                            project_id: a.project_id,
                            repository: a.repository.as_str().to_owned(),
                            digest,
                            tags,
                            operator: "garbage-collection".into(),
                            time: clock::now(),
                        });
                    }
                    pacer.pace().await;
                }
                ctx.progress(out.artifacts, 0).await?;
            }
        }
        if p.dry_run {
            // What the untagged deletes would free, plus what is already
            // unreferenced: the two sets are disjoint.
            let preview = self.meta.untagged_preview(cutoff, &roots).await?;
            let (n, bytes) = self.meta.unreferenced_blobs(cutoff).await?;
            let (m, m_bytes) = self.meta.unreferenced_manifests(cutoff).await?;
            out.artifacts = preview.artifacts;
            out.blobs = n + preview.blobs;
            out.manifests = m + preview.manifests;
            out.bytes = bytes + preview.bytes + m_bytes + preview.manifest_bytes;
            return Ok(out);
        }
        // Manifests (bytes in the metadata store) no artifact uses: those of
        // deleted artifacts, untagged or deleted through the APIs.
        let mut manifest_bytes = 0;
        loop {
            let limit = pacer.batch(MANIFEST_BATCH, MANIFEST_BATCH_BUSY);
            let (n, bytes) = self.meta.delete_manifests(cutoff, limit).await?;
            out.manifests += n;
            manifest_bytes += bytes;
            if n < limit {
                break;
            }
            pacer.pace().await;
        }
        out.bytes += manifest_bytes;
        if out.manifests > 0 {
            ctx.log(format!(
                "deleted {} unused manifest(s), {}",
                out.manifests,
                human_bytes(manifest_bytes)
            ));
        }
        let (marked, marked_bytes) = self.meta.mark_blobs(cutoff).await?;
        ctx.log(format!(
            "marked {marked} unreferenced blob(s), {}, not used for {} s",
            human_bytes(marked_bytes),
            p.time_window_ms / 1000
        ));
        let mut swept = 0i64;
        let result = loop {
            let limit = pacer.batch(SWEEP_BATCH, SWEEP_BATCH_BUSY);
            let batch = match self.meta.claim_sweep(limit).await {
                Ok(b) => b,
                Err(e) => break Err(Stop::from(e)),
            };
            if batch.is_empty() {
                break Ok(());
            }
            if let Err(e) = self.sweep(&batch, p.workers).await {
                break Err(e.into());
            }
            swept += batch.len() as i64;
            out.blobs += batch.len() as i64;
            out.bytes += batch.iter().map(|(_, s)| s).sum::<i64>();
            if let Err(i) = ctx.progress(swept, marked).await {
                break Err(Stop::Interrupted(i));
            }
            pacer.pace().await;
        };
        // Marks left (blobs used meanwhile, or a stop): cleared, so that
        // nothing waits for a sweep that will not come.
        if !matches!(result, Err(Stop::Interrupted(Interrupted::Lost))) {
            self.meta.unmark_blobs().await?;
        }
        result.map(|()| out)
    }
}

/// Why a run ended early.
enum Stop {
    Interrupted(Interrupted),
    Failed(CoreError),
}

impl From<CoreError> for Stop {
    fn from(e: CoreError) -> Self {
        Stop::Failed(e)
    }
}

impl From<Interrupted> for Stop {
    fn from(i: Interrupted) -> Self {
        Stop::Interrupted(i)
    }
}

#[async_trait]
impl JobRunner for GarbageCollector {
    fn vendor_type(&self) -> &'static str {
        GARBAGE_COLLECTION
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), String> {
        let p: GcParams = serde_json::from_value(ctx.attrs()).map_err(|e| e.to_string())?;
        ctx.log(format!(
            "garbage collection: dry_run={} delete_untagged={} workers={} time_window={} s",
            p.dry_run,
            p.delete_untagged,
            p.workers,
            p.time_window_ms / 1000
        ));
        match self.collect(ctx, p).await {
            Ok(out) => {
                let verb = if p.dry_run { "would delete" } else { "deleted" };
                ctx.log(format!(
                    "{verb} {} untagged artifact(s), {} blob(s) and {} manifest(s), freeing {}",
                    out.artifacts,
                    out.blobs,
                    out.manifests,
                    human_bytes(out.bytes)
                ));
                Ok(())
            }
            Err(Stop::Interrupted(_)) => Ok(()),
            Err(Stop::Failed(e)) => Err(e.to_string()),
        }
    }
}

/// The GC API (`/system/gc`): system admins only.
pub struct Gc {
    job: SystemJob,
    time_window: Duration,
}

impl Gc {
    pub fn new(meta: Arc<dyn MetaStore>, time_window: Duration) -> Self {
        Gc {
            job: SystemJob::new(
                meta,
                GARBAGE_COLLECTION,
                Resource::GarbageCollection,
                "garbage collection",
            ),
            time_window,
        }
    }

    pub fn time_window(&self) -> Duration {
        self.time_window
    }

    /// Starts a run now (`Conflict` while one is pending or running).
    pub async fn start(
        &self,
        subject: &Subject,
        params: GcParams,
        trigger: &str,
    ) -> CoreResult<Execution> {
        self.job.authorize(subject, Action::Create)?;
        self.submit(params, trigger).await
    }

    /// Submits a run without a caller (the scheduler).
    pub async fn submit(&self, mut params: GcParams, trigger: &str) -> CoreResult<Execution> {
        params.validate()?;
        params.time_window_ms = self.time_window.as_millis().min(i64::MAX as u128) as Millis;
        let attrs = serde_json::to_value(params).map_err(CoreError::internal)?;
        self.job.submit(trigger, attrs).await
    }

    pub async fn history(
        &self,
        subject: &Subject,
        page: Page,
    ) -> CoreResult<(Vec<Execution>, i64)> {
        self.job.history(subject, page).await
    }

    pub async fn get(&self, subject: &Subject, id: i64) -> CoreResult<Execution> {
        self.job.get(subject, id).await
    }

    /// The run's log, one line per entry with its time.
    pub async fn log(&self, subject: &Subject, id: i64) -> CoreResult<Vec<(Millis, String)>> {
        self.job.log(subject, id).await
    }

    pub async fn stop(&self, subject: &Subject, id: i64) -> CoreResult<()> {
        self.job.stop(subject, id).await
    }
}

impl Gc {
    /// The GC schedule, if one is set.
    pub async fn schedule(&self, subject: &Subject) -> CoreResult<Option<crate::model::Schedule>> {
        self.job.schedule(subject).await
    }

    /// Sets the schedule (or, `Manual`, runs now and returns the run).
    pub async fn set_schedule(
        &self,
        subject: &Subject,
        spec: &ScheduleSpec,
        params: GcParams,
    ) -> CoreResult<Option<Execution>> {
        self.job.authorize(subject, Action::Create)?;
        params.validate()?;
        if *spec == ScheduleSpec::Manual {
            return self.submit(params, "MANUAL").await.map(Some);
        }
        let value = serde_json::to_value(params).map_err(CoreError::internal)?;
        self.job.save_schedule(spec, value).await?;
        Ok(None)
    }
}

#[async_trait]
impl Scheduled for Gc {
    fn vendor_type(&self) -> &'static str {
        GARBAGE_COLLECTION
    }

    async fn fire(&self, _vendor_id: i64, params: serde_json::Value) -> CoreResult<()> {
        let params: GcParams = serde_json::from_value(params).map_err(CoreError::internal)?;
        match self.submit(params, "SCHEDULE").await {
            Ok(_) => Ok(()),
            // The previous run is still going: this one is skipped.
            Err(CoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
