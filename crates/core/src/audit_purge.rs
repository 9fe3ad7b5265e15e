//! Audit-log purge (`PURGE_AUDIT_LOG`), Harbor's `/system/purgeaudit`:
//! deletes audit entries older than a retention time, all of them or only
//! some operations or event types. It runs as a job, in batches of short
//! deletes so that the store's writer is never held long, and stops
//! between two batches when asked. A dry run only counts.
//!
//! One difference from Harbor, deliberate: with neither
//! `include_operations` nor `include_event_types`, every operation is
//! purged (Harbor purges none).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::access::{Action, Resource, Subject};
use crate::audit::EVENT_TYPES;
use crate::clock::{self, Millis};
use crate::error::{CoreError, CoreResult};
use crate::jobs::{JobRunner, TaskContext};
use crate::load::Foreground;
use crate::model::{Execution, Schedule};
use crate::ports::MetaStore;
use crate::query::{AuditPurgeQuery, Page};
use crate::schedule::{ScheduleSpec, Scheduled};
use crate::system_jobs::SystemJob;

/// The executions' kind, as Harbor names it.
pub const PURGE_AUDIT_LOG: &str = "PURGE_AUDIT_LOG";

/// Entries deleted per statement (idle, and while clients are served).
const BATCH: i64 = 1000;
const BATCH_BUSY: i64 = 200;

/// The longest retention accepted: 100 years.
pub const MAX_RETENTION_HOURS: i64 = 100 * 365 * 24;

/// A run's parameters, as Harbor's `parameters` carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPurgeParams {
    /// Entries older than this many hours go (required, > 0).
    #[serde(default)]
    pub audit_retention_hour: i64,
    /// Comma-separated operations (`create,delete,pull`).
    #[serde(default)]
    pub include_operations: String,
    /// Comma-separated event types (`create_artifact,pull_artifact`).
    #[serde(default)]
    pub include_event_types: String,
    #[serde(default)]
    pub dry_run: bool,
}

fn list(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// An event type as (operation, resource type): `create_artifact` is
/// `("create", "artifact")`.
fn split_event_type(t: &str) -> Option<(&str, &str)> {
    t.split_once('_')
}

impl AuditPurgeParams {
    pub fn validate(&self) -> CoreResult<()> {
        if !(1..=MAX_RETENTION_HOURS).contains(&self.audit_retention_hour) {
            return Err(CoreError::BadRequest(format!(
                "audit_retention_hour is required and must be an integer from 1 to {MAX_RETENTION_HOURS}"
            )));
        }
        for op in self.operations() {
            if !EVENT_TYPES
                .iter()
                .any(|t| split_event_type(t).is_some_and(|(o, _)| o == op))
            {
                return Err(CoreError::BadRequest(format!(
                    "unknown operation {op:?} in include_operations"
                )));
            }
        }
        for t in list(&self.include_event_types) {
            if !EVENT_TYPES.contains(&t.as_str()) {
                return Err(CoreError::BadRequest(format!(
                    "unknown event type {t:?} in include_event_types: see /auditlog-exts/events"
                )));
            }
        }
        Ok(())
    }

    pub fn operations(&self) -> Vec<String> {
        list(&self.include_operations)
    }

    /// What the run deletes when it starts at `now`.
    pub fn query(&self, now: Millis) -> AuditPurgeQuery {
        let hours = self.audit_retention_hour.clamp(0, MAX_RETENTION_HOURS);
        AuditPurgeQuery {
            before: now.saturating_sub(hours * 3_600_000),
            operations: self.operations(),
            event_types: list(&self.include_event_types)
                .iter()
                .filter_map(|t| split_event_type(t))
                .map(|(o, r)| (o.to_owned(), r.to_owned()))
                .collect(),
        }
    }

    /// Whether the filter names anything. As in Harbor, a purge that
    /// selects no operation and no event type purges nothing.
    pub fn selects_any(&self) -> bool {
        !self.operations().is_empty() || !list(&self.include_event_types).is_empty()
    }

    /// What the filter names, for the log.
    fn selection(&self) -> String {
        let mut parts = vec![];
        let ops = self.operations();
        if !ops.is_empty() {
            parts.push(format!("operations {}", ops.join(",")));
        }
        let types = list(&self.include_event_types);
        if !types.is_empty() {
            parts.push(format!("event types {}", types.join(",")));
        }
        if parts.is_empty() {
            "no operation selected".into()
        } else {
            parts.join(" and ")
        }
    }
}

fn rfc3339(ms: Millis) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// The job: counts (dry run) or deletes in batches.
pub struct AuditLogPurger {
    meta: Arc<dyn MetaStore>,
    foreground: Foreground,
}

impl AuditLogPurger {
    /// Batches pace themselves around `foreground` (`load`).
    pub fn new(meta: Arc<dyn MetaStore>, foreground: Foreground) -> Self {
        AuditLogPurger { meta, foreground }
    }
}

#[async_trait]
impl JobRunner for AuditLogPurger {
    fn vendor_type(&self) -> &'static str {
        PURGE_AUDIT_LOG
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), String> {
        let p: AuditPurgeParams = serde_json::from_value(ctx.attrs()).map_err(|e| e.to_string())?;
        p.validate().map_err(|e| e.to_string())?;
        let q = p.query(clock::now());
        let cutoff = rfc3339(q.before);
        ctx.log(format!(
            "audit log purge: retention {} hour(s), {}, dry_run={}",
            p.audit_retention_hour,
            p.selection(),
            p.dry_run
        ));
        if !p.selects_any() {
            ctx.log("no operation or event type selected: nothing to purge");
            return Ok(());
        }
        let total = self
            .meta
            .count_audit_purge(&q)
            .await
            .map_err(|e| e.to_string())?;
        if p.dry_run {
            ctx.log(format!(
                "would purge {total} audit log entries older than {cutoff}"
            ));
            return Ok(());
        }
        let mut purged = 0i64;
        let mut pacer = self.foreground.pacer();
        loop {
            let limit = pacer.batch(BATCH, BATCH_BUSY);
            let n = self
                .meta
                .purge_audit(&q, limit)
                .await
                .map_err(|e| e.to_string())?;
            purged += n;
            if ctx.progress(purged, total.max(purged)).await.is_err() {
                ctx.log(format!(
                    "stopped after purging {purged} audit log entries older than {cutoff}"
                ));
                return Ok(());
            }
            if n < limit {
                break;
            }
            pacer.pace().await;
        }
        ctx.log(format!(
            "purged {purged} audit log entries older than {cutoff}"
        ));
        Ok(())
    }
}

/// The purge API (`/system/purgeaudit`): system admins only.
pub struct PurgeAudit {
    job: SystemJob,
}

impl PurgeAudit {
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        PurgeAudit {
            job: SystemJob::new(
                meta,
                PURGE_AUDIT_LOG,
                Resource::PurgeAudit,
                "audit log purge",
            ),
        }
    }

    /// Starts a run now (`Conflict` while one is pending or running).
    pub async fn start(
        &self,
        subject: &Subject,
        params: AuditPurgeParams,
    ) -> CoreResult<Execution> {
        self.job.authorize(subject, Action::Create)?;
        self.submit(params, "MANUAL").await
    }

    /// Submits a run without a caller (the scheduler).
    pub async fn submit(&self, params: AuditPurgeParams, trigger: &str) -> CoreResult<Execution> {
        params.validate()?;
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

    pub async fn log(&self, subject: &Subject, id: i64) -> CoreResult<Vec<(Millis, String)>> {
        self.job.log(subject, id).await
    }

    pub async fn stop(&self, subject: &Subject, id: i64) -> CoreResult<()> {
        self.job.stop(subject, id).await
    }

    pub async fn schedule(&self, subject: &Subject) -> CoreResult<Option<Schedule>> {
        self.job.schedule(subject).await
    }

    /// Sets the schedule (or, `Manual`, runs now and returns the run;
    /// `None` removes it and needs no parameters).
    pub async fn set_schedule(
        &self,
        subject: &Subject,
        spec: &ScheduleSpec,
        params: AuditPurgeParams,
    ) -> CoreResult<Option<Execution>> {
        self.job.authorize(subject, Action::Create)?;
        match spec {
            ScheduleSpec::Manual => self.submit(params, "MANUAL").await.map(Some),
            ScheduleSpec::None => {
                self.job.save_schedule(spec, serde_json::json!({})).await?;
                Ok(None)
            }
            ScheduleSpec::Cron { .. } => {
                params.validate()?;
                let value = serde_json::to_value(params).map_err(CoreError::internal)?;
                self.job.save_schedule(spec, value).await?;
                Ok(None)
            }
        }
    }
}

#[async_trait]
impl Scheduled for PurgeAudit {
    fn vendor_type(&self) -> &'static str {
        PURGE_AUDIT_LOG
    }

    async fn fire(&self, _vendor_id: i64, params: serde_json::Value) -> CoreResult<()> {
        let params: AuditPurgeParams =
            serde_json::from_value(params).map_err(CoreError::internal)?;
        match self.submit(params, "SCHEDULE").await {
            Ok(_) => Ok(()),
            // The previous run is still going: this one is skipped.
            Err(CoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(hours: i64, ops: &str, types: &str) -> AuditPurgeParams {
        AuditPurgeParams {
            audit_retention_hour: hours,
            include_operations: ops.into(),
            include_event_types: types.into(),
            dry_run: false,
        }
    }

    #[test]
    fn validation() {
        assert!(params(168, "create,delete,pull", "").validate().is_ok());
        assert!(params(1, "", "create_artifact, pull_artifact")
            .validate()
            .is_ok());
        assert!(
            params(1, "Create", "").validate().is_ok(),
            "case-insensitive"
        );
        for bad in [
            params(0, "", ""),
            params(-5, "", ""),
            params(MAX_RETENTION_HOURS + 1, "", ""),
            params(1, "create,explode", ""),
            params(1, "", "create_nothing"),
        ] {
            assert!(
                matches!(bad.validate(), Err(CoreError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn query_from_parameters() {
        let q = params(2, " delete ,create,,delete", "pull_artifact").query(10 * 3_600_000);
        assert_eq!(q.before, 8 * 3_600_000);
        assert_eq!(q.operations, ["create", "delete"]);
        assert_eq!(q.event_types, [("pull".to_owned(), "artifact".to_owned())]);
        assert_eq!(
            params(1, "", "create_storage_request").query(0).event_types,
            [("create".to_owned(), "storage_request".to_owned())]
        );
        assert_eq!(params(1, "", "").selection(), "no operation selected");
        assert!(!params(1, "", "").selects_any());
        assert!(params(1, "", "pull_artifact").selects_any());
    }
}
