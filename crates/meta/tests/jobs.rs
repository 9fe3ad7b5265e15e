//! The job engine (`berth_core::jobs`) on the real stores: SQLite, and
//! PostgreSQL when `BERTH_TEST_POSTGRES_URL` is set (each case gets its own
//! database).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::jobs::{Interrupted, JobRunner, Jobs, TaskContext, Worker};
use berth_core::model::JobStatus;
use berth_core::ports::{JobStore, MetaStore};
use serde_json::json;

mod common;
use common::{postgres, sqlite};

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(db) = super::sqlite().await { super::$name(db.store.clone()).await } } )* }
        mod on_postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { if let Some(db) = super::postgres().await { super::$name(db.store.clone()).await } } )* }
    };
}

both!(
    work_runs_once_with_logs_and_progress,
    stop_requests_reach_running_tasks,
    a_dead_workers_task_is_taken_over,
    a_due_schedule_fires_once_across_nodes,
    audit_purge_runs_as_a_job,
);

fn jobs_store(s: &Arc<dyn MetaStore>) -> Arc<dyn JobStore> {
    s.clone()
}

/// Counts to the task's `n` in steps, logging each.
struct Count;

#[async_trait]
impl JobRunner for Count {
    fn vendor_type(&self) -> &'static str {
        "COUNT"
    }
    async fn run(&self, ctx: &mut TaskContext) -> Result<(), String> {
        let n = ctx.attrs()["n"].as_i64().unwrap_or(0);
        for i in 1..=n {
            ctx.log(format!("step {i} of {n}"));
            ctx.progress(i, n).await.map_err(|e| format!("{e:?}"))?;
        }
        if ctx.attrs()["fail"] == true {
            return Err("asked to fail".into());
        }
        Ok(())
    }
}

/// Steps every 20 ms until stopped, up to `steps`.
struct Slow;

#[async_trait]
impl JobRunner for Slow {
    fn vendor_type(&self) -> &'static str {
        "SLOW"
    }
    async fn run(&self, ctx: &mut TaskContext) -> Result<(), String> {
        let steps = ctx.attrs()["steps"].as_i64().unwrap_or(1000);
        for i in 0..steps {
            tokio::time::sleep(Duration::from_millis(20)).await;
            match ctx.progress(i, steps).await {
                Ok(()) => {}
                Err(Interrupted::Stopped) => {
                    ctx.log("stopping");
                    return Ok(());
                }
                Err(Interrupted::Lost) => return Ok(()),
            }
        }
        Ok(())
    }
}

fn worker(store: &Arc<dyn MetaStore>, name: &str) -> Worker {
    Worker::new(
        jobs_store(store),
        vec![Arc::new(Count), Arc::new(Slow)],
        name.into(),
    )
    .with_timing(Duration::from_millis(300), Duration::from_millis(10))
}

async fn drain(w: &Worker) {
    while w.run_once().await.unwrap() {}
}

async fn work_runs_once_with_logs_and_progress(store: Arc<dyn MetaStore>) {
    let jobs = Jobs::new(jobs_store(&store));
    let ok = jobs
        .submit(
            "COUNT",
            1,
            "MANUAL",
            json!({}),
            (1..=6).map(|n| json!({ "n": n })).collect(),
        )
        .await
        .unwrap();
    let bad = jobs
        .submit(
            "COUNT",
            2,
            "SCHEDULE",
            json!({}),
            vec![json!({ "n": 2, "fail": true })],
        )
        .await
        .unwrap();
    let (a, b) = (worker(&store, "a"), worker(&store, "b"));
    tokio::join!(drain(&a), drain(&b));
    let done = store.execution(ok.id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Success);
    for t in store.tasks(ok.id).await.unwrap() {
        assert_eq!((t.status, t.run_count), (JobStatus::Success, 1));
        let n = t.progress_total;
        assert_eq!(t.progress_done, n);
        let log: Vec<String> = store
            .task_log(t.id)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        let want: Vec<String> = (1..=n).map(|i| format!("step {i} of {n}")).collect();
        assert_eq!(log, want);
    }
    let failed = store.execution(bad.id).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Error);
    let t = &store.tasks(bad.id).await.unwrap()[0];
    assert_eq!(t.status_message, "asked to fail");
    let log = store.task_log(t.id).await.unwrap();
    assert_eq!(
        log.last().unwrap().1,
        "asked to fail",
        "the failure is logged"
    );
}

async fn stop_requests_reach_running_tasks(store: Arc<dyn MetaStore>) {
    let jobs = Jobs::new(jobs_store(&store));
    let e = jobs
        .submit("SLOW", 0, "MANUAL", json!({}), vec![json!({}), json!({})])
        .await
        .unwrap();
    let w = worker(&store, "a");
    let running = tokio::spawn(async move { w.run_once().await.unwrap() });
    // wait until it has made progress
    for _ in 0..200 {
        let tasks = store.tasks(e.id).await.unwrap();
        if tasks[0].progress_done > 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(jobs.stop(e.id).await.unwrap());
    assert!(running.await.unwrap(), "the worker ran a task");
    let tasks = store.tasks(e.id).await.unwrap();
    assert_eq!(tasks[0].status, JobStatus::Stopped);
    assert_eq!(
        tasks[1].status,
        JobStatus::Stopped,
        "the pending one never ran"
    );
    assert_eq!(tasks[1].run_count, 0);
    let log = store.task_log(tasks[0].id).await.unwrap();
    assert!(log.iter().any(|(_, l)| l == "stopping"), "{log:?}");
    let ended = store.execution(e.id).await.unwrap().unwrap();
    assert_eq!(ended.status, JobStatus::Stopped);
    assert!(!jobs.stop(e.id).await.unwrap());
}

async fn a_dead_workers_task_is_taken_over(store: Arc<dyn MetaStore>) {
    let jobs = Jobs::new(jobs_store(&store));
    let e = jobs
        .submit("COUNT", 0, "MANUAL", json!({}), vec![json!({ "n": 3 })])
        .await
        .unwrap();
    // a worker claims the task and dies without a word
    let now = berth_core::clock::now();
    let claimed = store
        .claim_task(&["COUNT"], "dead", now, now - 300)
        .await
        .unwrap()
        .unwrap();
    let w = worker(&store, "b");
    assert!(!w.run_once().await.unwrap(), "the lease is still fresh");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        w.run_once().await.unwrap(),
        "taken over once the lease ran out"
    );
    let t = store.task(claimed.id).await.unwrap().unwrap();
    assert_eq!(
        (t.status, t.run_count, t.worker.as_deref()),
        (JobStatus::Success, 2, Some("b"))
    );
    let log = store.task_log(t.id).await.unwrap();
    assert!(log[0].1.starts_with("started again (attempt 2)"), "{log:?}");
    assert_eq!(
        store.execution(e.id).await.unwrap().unwrap().status,
        JobStatus::Success
    );
}

/// Records each time it is fired.
struct Fired(std::sync::Mutex<Vec<serde_json::Value>>);

#[async_trait]
impl berth_core::schedule::Scheduled for Fired {
    fn vendor_type(&self) -> &'static str {
        "COUNT"
    }
    async fn fire(&self, _vendor_id: i64, params: serde_json::Value) -> berth_core::CoreResult<()> {
        self.0.lock().unwrap().push(params);
        Ok(())
    }
}

/// Three schedulers (three nodes) poll one due schedule: it fires once,
/// and its next run moves to the cron's next time.
async fn a_due_schedule_fires_once_across_nodes(store: Arc<dyn MetaStore>) {
    use berth_core::schedule::{self, ScheduleSpec};
    let spec = ScheduleSpec::parse("Custom", Some("0 0 3 * * *")).unwrap();
    let saved = schedule::save(store.as_ref(), "COUNT", 7, &spec, json!({ "n": 1 }))
        .await
        .unwrap()
        .unwrap();
    let next = saved.next_run;
    assert!(next > berth_core::clock::now());
    // Make it due, as if the time had come.
    let mut due = saved.clone();
    due.next_run = berth_core::clock::now() - 1000;
    store.put_schedule(&due).await.unwrap();
    let fired = Arc::new(Fired(Default::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let nodes: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(schedule::run_scheduler(
                jobs_store(&store),
                vec![fired.clone() as Arc<dyn schedule::Scheduled>],
                Duration::from_millis(20),
                stop_rx.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop_tx.send(true);
    for n in nodes {
        n.await.unwrap();
    }
    assert_eq!(*fired.0.lock().unwrap(), vec![json!({ "n": 1 })]);
    let after = store.schedule("COUNT", 7).await.unwrap().unwrap();
    assert_eq!(after.next_run, next, "moved to the next 03:00");
    assert!(store.delete_schedule("COUNT", 7).await.unwrap());
    assert!(store.schedule("COUNT", 7).await.unwrap().is_none());
}

/// The `PURGE_AUDIT_LOG` job through its service and a worker: a dry run
/// counts, a real run deletes old entries of the chosen operations only,
/// and its log says what it did.
async fn audit_purge_runs_as_a_job(store: Arc<dyn MetaStore>) {
    use berth_core::access::{Principal, Subject};
    use berth_core::audit_purge::{AuditLogPurger, AuditPurgeParams, PurgeAudit};
    use berth_core::model::AuditEntry;

    const HOUR: i64 = 3_600_000;
    let now = berth_core::clock::now();
    let entry = |operation: &str, op_time: i64| AuditEntry {
        id: 0,
        project_id: 0,
        operation: operation.into(),
        operation_description: operation.into(),
        resource_type: "artifact".into(),
        resource: "p/r:v1".into(),
        username: "u".into(),
        is_successful: true,
        op_time,
    };
    let mut entries: Vec<_> = (0..3).map(|i| entry("pull", now - 30 * HOUR - i)).collect();
    entries.push(entry("create", now - 30 * HOUR));
    entries.push(entry("pull", now - HOUR));
    store.insert_audit(&entries).await.unwrap();
    let remaining = |op: &'static str| {
        let store = store.clone();
        async move {
            let q = berth_core::query::AuditQuery {
                projects: None,
                operation: Some(berth_core::query::TextMatch::Exact(op.into())),
                resource_type: None,
                resource: None,
                username: None,
                from: None,
                to: None,
                sort: vec![],
            };
            store
                .list_audit(&q, berth_core::query::Page::new(1, 1))
                .await
                .unwrap()
                .1
        }
    };

    let admin = Subject::new(
        Principal::User {
            id: 1,
            name: "admin".into(),
            sysadmin: true,
        },
        Default::default(),
    );
    let user = Subject::new(
        Principal::User {
            id: 2,
            name: "u".into(),
            sysadmin: false,
        },
        Default::default(),
    );
    let purge = PurgeAudit::new(store.clone());
    let worker = Worker::new(
        jobs_store(&store),
        vec![Arc::new(AuditLogPurger::new(
            store.clone(),
            berth_core::load::Foreground::default(),
        ))],
        "w".into(),
    );
    let params = |dry_run| AuditPurgeParams {
        audit_retention_hour: 24,
        include_operations: "pull".into(),
        include_event_types: String::new(),
        dry_run,
    };
    assert!(matches!(
        purge.start(&user, params(true)).await,
        Err(berth_core::CoreError::Denied(_))
    ));
    let log_of = |id: i64| {
        let (purge, admin) = (&purge, &admin);
        async move {
            purge
                .log(admin, id)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, l)| l)
                .collect::<Vec<_>>()
                .join("\n")
        }
    };

    let dry = purge.start(&admin, params(true)).await.unwrap();
    assert!(
        matches!(
            purge.start(&admin, params(false)).await,
            Err(berth_core::CoreError::Conflict(_))
        ),
        "one run at a time"
    );
    assert!(worker.run_once().await.unwrap());
    assert_eq!(
        purge.get(&admin, dry.id).await.unwrap().status,
        JobStatus::Success
    );
    let log = log_of(dry.id).await;
    assert!(
        log.contains("would purge 3 audit log entries older than"),
        "{log}"
    );
    assert_eq!(remaining("pull").await, 4, "a dry run deletes nothing");

    let run = purge.start(&admin, params(false)).await.unwrap();
    assert!(worker.run_once().await.unwrap());
    assert_eq!(
        purge.get(&admin, run.id).await.unwrap().status,
        JobStatus::Success
    );
    let log = log_of(run.id).await;
    assert!(
        log.contains("retention 24 hour(s), operations pull"),
        "{log}"
    );
    assert!(
        log.contains("purged 3 audit log entries older than"),
        "{log}"
    );
    assert_eq!(remaining("pull").await, 1, "the recent pull stays");
    assert_eq!(remaining("create").await, 1, "other operations stay");
    let (history, total) = purge
        .history(&admin, berth_core::query::Page::new(1, 10))
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(history[0].id, run.id);
}
