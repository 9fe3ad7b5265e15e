//! The job engine: background work persisted through the [`JobStore`]
//! port, so that it survives restarts and runs once even with several
//! nodes. A kind of work (GC, retention, a purge) is a [`JobRunner`];
//! [`Jobs::submit`] records an execution with its tasks; [`Worker`]s claim
//! tasks, run them with a [`TaskContext`] (log lines, progress, stop
//! requests) and record how they ended. A task whose worker dies is taken
//! over by another worker once its lease runs out, and runs again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{self, Millis};
use crate::error::CoreResult;
use crate::model::{Execution, Heartbeat, JobStatus, NewExecution, Task};
use crate::ports::JobStore;

/// How long a running task stays its worker's without a heartbeat.
pub const LEASE: Duration = Duration::from_secs(60);

/// One kind of background work.
#[async_trait]
pub trait JobRunner: Send + Sync {
    /// The executions' `vendor_type` this runner serves (`GARBAGE_COLLECTION`, …).
    fn vendor_type(&self) -> &'static str;

    /// Runs one task. `Err` is the task's failure message. A runner calls
    /// [`TaskContext::progress`] between steps and returns as soon as it
    /// answers [`Interrupted`].
    async fn run(&self, ctx: &mut TaskContext) -> Result<(), String>;
}

/// Why a runner must stop early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupted {
    /// Someone asked the execution to stop.
    Stopped,
    /// The task's lease was lost to another worker; nothing more may be
    /// written for it.
    Lost,
}

/// Progress and interruption, shared between a running task's context and
/// the loop that renews its lease.
#[derive(Default)]
struct Shared {
    done: AtomicI64,
    total: AtomicI64,
    /// 0: carry on; 1: stop requested; 2: lease lost.
    signal: AtomicU8,
}

impl Shared {
    fn interrupted(&self) -> Option<Interrupted> {
        match self.signal.load(Ordering::Acquire) {
            1 => Some(Interrupted::Stopped),
            2 => Some(Interrupted::Lost),
            _ => None,
        }
    }

    /// Sends a heartbeat with the current progress and records what it
    /// answered.
    async fn beat(&self, store: &dyn JobStore, id: i64, worker: &str) {
        let beat = store
            .heartbeat_task(
                id,
                worker,
                clock::now(),
                self.done.load(Ordering::Acquire),
                self.total.load(Ordering::Acquire),
            )
            .await;
        match beat {
            Ok(Heartbeat::Continue) => {}
            Ok(Heartbeat::Stop) => {
                let _ = self
                    .signal
                    .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire);
            }
            Ok(Heartbeat::Lost) => self.signal.store(2, Ordering::Release),
            // A store hiccup: carry on; the lease allows for it, and the
            // next beat tries again.
            Err(e) => tracing::warn!(task = id, error = %e, "job heartbeat failed"),
        }
    }
}

/// What a running task can do: read what it works on, log, report
/// progress (which also renews its lease) and learn that it must stop.
pub struct TaskContext {
    pub task: Task,
    store: Arc<dyn JobStore>,
    worker: String,
    pending_log: Vec<String>,
    shared: Arc<Shared>,
}

impl TaskContext {
    /// The task's `extra_attrs` as JSON (an empty object when unreadable).
    pub fn attrs(&self) -> serde_json::Value {
        serde_json::from_str(&self.task.extra_attrs).unwrap_or_else(|_| serde_json::json!({}))
    }

    /// Adds a line to the task's log (written with the next progress
    /// report, and when the task ends).
    pub fn log(&mut self, line: impl Into<String>) {
        self.pending_log.push(line.into());
    }

    /// Records progress and renews the lease; `Err` when the runner must
    /// stop now.
    pub async fn progress(&mut self, done: i64, total: i64) -> Result<(), Interrupted> {
        self.shared.done.store(done, Ordering::Release);
        self.shared.total.store(total, Ordering::Release);
        if let Some(i) = self.shared.interrupted() {
            return Err(i);
        }
        self.flush_log().await;
        self.shared
            .beat(self.store.as_ref(), self.task.id, &self.worker)
            .await;
        match self.shared.interrupted() {
            Some(i) => Err(i),
            None => Ok(()),
        }
    }

    async fn flush_log(&mut self) {
        if self.pending_log.is_empty() || self.shared.interrupted() == Some(Interrupted::Lost) {
            return;
        }
        let lines = std::mem::take(&mut self.pending_log);
        if let Err(e) = self
            .store
            .append_task_log(self.task.id, clock::now(), &lines)
            .await
        {
            tracing::warn!(task = self.task.id, error = %e, "writing a job log failed");
        }
    }
}

/// Submits and stops background work.
#[derive(Clone)]
pub struct Jobs {
    store: Arc<dyn JobStore>,
}

impl Jobs {
    pub fn new(store: Arc<dyn JobStore>) -> Self {
        Jobs { store }
    }

    /// Records an execution of `vendor_type` with one task per entry of
    /// `tasks` (each task's `extra_attrs`); workers pick them up.
    pub async fn submit(
        &self,
        vendor_type: &str,
        vendor_id: i64,
        trigger: &str,
        extra_attrs: serde_json::Value,
        tasks: Vec<serde_json::Value>,
    ) -> CoreResult<Execution> {
        self.store
            .create_execution(
                &NewExecution {
                    vendor_type: vendor_type.to_owned(),
                    vendor_id,
                    trigger: trigger.to_owned(),
                    extra_attrs: extra_attrs.to_string(),
                    tasks: tasks.iter().map(|t| t.to_string()).collect(),
                },
                clock::now(),
            )
            .await
    }

    /// Asks an execution to stop; `false` if it had already ended.
    pub async fn stop(&self, execution_id: i64) -> CoreResult<bool> {
        self.store.stop_execution(execution_id, clock::now()).await
    }
}

/// Claims and runs tasks of the kinds it has runners for.
pub struct Worker {
    store: Arc<dyn JobStore>,
    runners: HashMap<&'static str, Arc<dyn JobRunner>>,
    name: String,
    lease: Duration,
    idle: Duration,
}

impl Worker {
    /// A worker named `name` (unique per process and node, e.g. host and
    /// pid), polling every `idle` when there is nothing to do.
    pub fn new(store: Arc<dyn JobStore>, runners: Vec<Arc<dyn JobRunner>>, name: String) -> Self {
        Worker {
            store,
            runners: runners.into_iter().map(|r| (r.vendor_type(), r)).collect(),
            name,
            lease: LEASE,
            idle: Duration::from_secs(1),
        }
    }

    /// Shorter lease and polling, for tests.
    pub fn with_timing(mut self, lease: Duration, idle: Duration) -> Self {
        self.lease = lease;
        self.idle = idle;
        self
    }

    /// Claims and runs one task; `false` when there was none.
    pub async fn run_once(&self) -> CoreResult<bool> {
        let kinds: Vec<&str> = self.runners.keys().copied().collect();
        let now = clock::now();
        let stale_before = now - self.lease.as_millis() as Millis;
        let Some(task) = self
            .store
            .claim_task(&kinds, &self.name, now, stale_before)
            .await?
        else {
            return Ok(false);
        };
        let Some(runner) = self.runners.get(task.vendor_type.as_str()).cloned() else {
            // Claimed only for kinds we serve; nothing else can arrive.
            return Ok(true);
        };
        let shared = Arc::new(Shared::default());
        shared.done.store(task.progress_done, Ordering::Release);
        shared.total.store(task.progress_total, Ordering::Release);
        let mut ctx = TaskContext {
            task,
            store: self.store.clone(),
            worker: self.name.clone(),
            pending_log: vec![],
            shared: shared.clone(),
        };
        if ctx.task.run_count > 1 {
            ctx.log(format!(
                "started again (attempt {}): the previous worker stopped answering",
                ctx.task.run_count
            ));
        }
        // Renew the lease while the runner works, so that a long step
        // between two progress reports does not lose the task.
        let renew = self.lease / 3;
        let (store, id, name) = (self.store.clone(), ctx.task.id, self.name.clone());
        let keep_alive = async move {
            loop {
                tokio::time::sleep(renew).await;
                shared.beat(store.as_ref(), id, &name).await;
            }
        };
        let result = tokio::select! {
            r = runner.run(&mut ctx) => r,
            () = keep_alive => Ok(()),
        };
        let (status, message) = match (ctx.shared.interrupted(), result) {
            (Some(Interrupted::Lost), _) => return Ok(true),
            (Some(Interrupted::Stopped), _) => {
                (JobStatus::Stopped, "stopped on request".to_owned())
            }
            (None, Ok(())) => (JobStatus::Success, String::new()),
            (None, Err(m)) => (JobStatus::Error, m),
        };
        if !message.is_empty() {
            ctx.log(message.clone());
        }
        ctx.flush_log().await;
        self.store
            .finish_task(ctx.task.id, &self.name, status, &message, clock::now())
            .await?;
        Ok(true)
    }

    /// Runs until `shutdown` resolves, one task at a time.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let busy = tokio::select! {
                _ = &mut shutdown => return,
                r = self.run_once() => match r {
                    Ok(busy) => busy,
                    Err(e) => {
                        tracing::warn!(error = %e, "job worker: claiming a task failed");
                        false
                    }
                },
            };
            if !busy {
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(self.idle) => {}
                }
            }
        }
    }
}
