//! What every system-wide scheduled job shares as an API (`/system/gc`,
//! `/system/purgeaudit`, …): one run at a time, history, one run, its
//! log, stopping it, and its schedule; system admins only, through the
//! job's own RBAC resource.

use std::sync::Arc;

use crate::access::{self, Action, Resource, Subject};
use crate::clock::Millis;
use crate::error::{CoreError, CoreResult};
use crate::jobs::Jobs;
use crate::model::{Execution, Schedule};
use crate::ports::MetaStore;
use crate::query::Page;
use crate::schedule::{self, ScheduleSpec};

/// One kind of system job: its executions' `vendor_type` and the RBAC
/// resource that guards it.
pub struct SystemJob {
    meta: Arc<dyn MetaStore>,
    jobs: Jobs,
    vendor_type: &'static str,
    resource: Resource,
    /// For messages: "garbage collection", "audit log purge".
    name: &'static str,
}

impl SystemJob {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        vendor_type: &'static str,
        resource: Resource,
        name: &'static str,
    ) -> Self {
        SystemJob {
            jobs: Jobs::new(meta.clone()),
            meta,
            vendor_type,
            resource,
            name,
        }
    }

    pub fn vendor_type(&self) -> &'static str {
        self.vendor_type
    }

    /// Checks that `subject` may do `action` on the job.
    pub fn authorize(&self, subject: &Subject, action: Action) -> CoreResult<()> {
        access::authorize(subject, None, self.resource, action).map(|_| ())
    }

    /// Records a run with one task carrying `params`; `Conflict` while a
    /// run is pending or running.
    pub async fn submit(&self, trigger: &str, params: serde_json::Value) -> CoreResult<Execution> {
        let (latest, _) = self
            .meta
            .list_executions(self.vendor_type, None, Page::new(1, 1))
            .await?;
        if latest.first().is_some_and(|e| !e.status.is_final()) {
            return Err(CoreError::Conflict(format!(
                "a {} is already running",
                self.name
            )));
        }
        self.jobs
            .submit(self.vendor_type, 0, trigger, params.clone(), vec![params])
            .await
    }

    /// Runs, newest first, and their total.
    pub async fn history(
        &self,
        subject: &Subject,
        page: Page,
    ) -> CoreResult<(Vec<Execution>, i64)> {
        self.authorize(subject, Action::List)?;
        self.meta
            .list_executions(self.vendor_type, None, page)
            .await
    }

    pub async fn get(&self, subject: &Subject, id: i64) -> CoreResult<Execution> {
        self.authorize(subject, Action::Read)?;
        self.meta
            .execution(id)
            .await?
            .filter(|e| e.vendor_type == self.vendor_type)
            .ok_or_else(|| CoreError::NotFound(format!("{} {id}", self.name)))
    }

    /// The run's log, one line per entry with its time.
    pub async fn log(&self, subject: &Subject, id: i64) -> CoreResult<Vec<(Millis, String)>> {
        let e = self.get(subject, id).await?;
        let mut lines = vec![];
        for t in self.meta.tasks(e.id).await? {
            lines.extend(self.meta.task_log(t.id).await?);
        }
        Ok(lines)
    }

    pub async fn stop(&self, subject: &Subject, id: i64) -> CoreResult<()> {
        self.authorize(subject, Action::Stop)?;
        let e = self.get(subject, id).await?;
        self.jobs.stop(e.id).await?;
        Ok(())
    }

    /// The schedule, if one is set.
    pub async fn schedule(&self, subject: &Subject) -> CoreResult<Option<Schedule>> {
        self.authorize(subject, Action::Read)?;
        self.meta.schedule(self.vendor_type, 0).await
    }

    /// Saves a recurring schedule with its runs' parameters, or removes it
    /// (`None`). The caller has authorized and validated; `Manual` is a
    /// run, not a schedule.
    pub async fn save_schedule(
        &self,
        spec: &ScheduleSpec,
        params: serde_json::Value,
    ) -> CoreResult<()> {
        schedule::save(self.meta.as_ref(), self.vendor_type, 0, spec, params).await?;
        Ok(())
    }
}
