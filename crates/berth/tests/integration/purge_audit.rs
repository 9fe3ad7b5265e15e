//! Audit-log purge through Harbor's `/system/purgeaudit` API: dry and
//! real runs with their history and logs, one run at a time, schedules,
//! validation and permissions.
//!
//! Entries older than an hour cannot be made through the API, so here a
//! run proves that it keeps what is recent; that old entries go (by age,
//! operation and event type, in batches) is proven on both stores by
//! `berth-meta`'s `audit_log_purge` and `audit_purge_runs_as_a_job`.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

const BASE: &str = "/api/v2.0/system/purgeaudit";

/// Starts a run (`Manual`): its response.
async fn post_manual(s: &Server, parameters: Value) -> reqwest::Response {
    s.admin(Method::POST, &format!("{BASE}/schedule"))
        .json(&json!({ "schedule": { "type": "Manual" }, "parameters": parameters }))
        .send()
        .await
        .unwrap()
}

fn run_id(res: &reqwest::Response) -> i64 {
    let loc = location(res);
    assert!(loc.starts_with(&format!("{BASE}/")), "{loc}");
    loc.rsplit('/').next().unwrap().parse().unwrap()
}

/// Starts a run and returns its id.
async fn start_purge(s: &Server, parameters: Value) -> i64 {
    let res = post_manual(s, parameters).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    run_id(&res)
}

async fn wait_purge(s: &Server, id: i64) -> Value {
    wait_system_job(s, BASE, id).await
}

async fn purge_log(s: &Server, id: i64) -> String {
    system_job_log(s, BASE, id).await
}

/// How many audit entries with operation `op` there are.
async fn audit_count(s: &Server, op: &str) -> i64 {
    let res = s
        .admin(
            Method::GET,
            &format!("/api/v2.0/auditlog-exts?q=operation%3D{op}&page_size=1"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    header(&res, "x-total-count").unwrap().parse().unwrap()
}

async fn runs_history_and_logs(s: &Server) {
    // Audit entries to keep: a project created and deleted.
    s.create_project("purge-one", false).await;
    let res = s
        .admin(Method::DELETE, "/api/v2.0/projects/purge-one")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    while audit_count(s, "delete").await < 1 {
        assert!(
            Instant::now() < deadline,
            "the audit recorder wrote nothing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (creates, deletes) = (
        audit_count(s, "create").await,
        audit_count(s, "delete").await,
    );
    assert!(creates >= 1);

    // A dry run counts and deletes nothing.
    let dry = start_purge(
        s,
        json!({ "audit_retention_hour": 1, "include_operations": "create,delete", "dry_run": true }),
    )
    .await;
    let h = wait_purge(s, dry).await;
    assert_eq!(h["job_status"], "Success", "{h}");
    assert_eq!(h["job_name"], "PURGE_AUDIT_LOG");
    assert_eq!(h["job_kind"], "MANUAL");
    assert_eq!(h["schedule"]["type"], "Manual");
    let params: Value = serde_json::from_str(h["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(params["audit_retention_hour"], 1);
    assert_eq!(params["include_operations"], "create,delete");
    assert_eq!(params["dry_run"], true);
    let log = purge_log(s, dry).await;
    assert!(
        log.contains(
            "audit log purge: retention 1 hour(s), operations create,delete, dry_run=true"
        ),
        "{log}"
    );
    assert!(
        log.contains("would purge 0 audit log entries older than"),
        "{log}"
    );

    // As in Harbor, a purge that selects nothing purges nothing.
    let run = start_purge(s, json!({ "audit_retention_hour": 1 })).await;
    let h = wait_purge(s, run).await;
    assert_eq!(h["job_status"], "Success", "{h}");
    let log = purge_log(s, run).await;
    assert!(
        log.contains("no operation or event type selected: nothing to purge"),
        "{log}"
    );
    assert_eq!(audit_count(s, "create").await, creates);

    // A real run keeps what is younger than the retention.
    let run = start_purge(
        s,
        json!({ "audit_retention_hour": 1, "include_operations": "create,delete,pull" }),
    )
    .await;
    let h = wait_purge(s, run).await;
    assert_eq!(h["job_status"], "Success", "{h}");
    let log = purge_log(s, run).await;
    assert!(
        log.contains("purged 0 audit log entries older than"),
        "{log}"
    );
    assert_eq!(audit_count(s, "create").await, creates);
    assert_eq!(audit_count(s, "delete").await, deletes);

    // History: newest first, with Harbor's fields and paging headers.
    let res = s
        .admin(Method::GET, &format!("{BASE}?page=1&page_size=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "x-total-count").as_deref(), Some("3"));
    assert!(header(&res, "link").unwrap().contains("rel=\"next\""));
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], run);
    assert_eq!(list[0]["deleted"], false);
    let list: Vec<Value> = s
        .get_json(&format!("{BASE}?page=3&page_size=1"))
        .await
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(list[0]["id"], dry);

    // One run at a time: a second one while the first is open is refused.
    let mut refused = false;
    for _ in 0..5 {
        let all = json!({ "audit_retention_hour": 1, "include_operations": "create,delete,pull" });
        let first = start_purge(s, all.clone()).await;
        let second = post_manual(s, all).await;
        match second.status() {
            StatusCode::CONFLICT => {
                let v: Value = second.json().await.unwrap();
                assert_eq!(v["errors"][0]["code"], "CONFLICT");
                refused = true;
            }
            StatusCode::CREATED => {
                wait_purge(s, run_id(&second)).await;
            }
            other => panic!("second run: {other}"),
        }
        wait_purge(s, first).await;
        if refused {
            break;
        }
    }
    assert!(refused, "a second run while one is open is refused");

    // Stop: a run stopped before a worker took it ends Stopped; an ended
    // run can still be asked (200), as in Harbor.
    let stopped = start_purge(s, json!({ "audit_retention_hour": 1 })).await;
    let res = s
        .admin(Method::PUT, &format!("{BASE}/{stopped}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = wait_purge(s, stopped).await;
    assert!(
        ["Stopped", "Success"].contains(&h["job_status"].as_str().unwrap()),
        "{h}"
    );

    // Unknown and malformed ids; a GC run is not a purge.
    for (path, want) in [
        (format!("{BASE}/424242"), StatusCode::NOT_FOUND),
        (format!("{BASE}/424242/log"), StatusCode::NOT_FOUND),
        (format!("{BASE}/abc"), StatusCode::BAD_REQUEST),
        (format!("{BASE}/0"), StatusCode::BAD_REQUEST),
    ] {
        let res = s.admin(Method::GET, &path).send().await.unwrap();
        assert_eq!(res.status(), want, "{path}");
    }
    let res = s
        .admin(Method::POST, "/api/v2.0/system/gc/schedule")
        .json(&json!({ "schedule": { "type": "Manual" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let gc = location(&res).rsplit('/').next().unwrap().to_owned();
    let res = s
        .admin(Method::GET, &format!("{BASE}/{gc}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

async fn schedule_validation_and_permissions(s: &Server) {
    let get = s.get_json(&format!("{BASE}/schedule")).await;
    assert_eq!(get["schedule"]["type"], "None");
    assert_eq!(get["job_name"], "PURGE_AUDIT_LOG");
    let put = |body: Value| {
        s.admin(Method::PUT, &format!("{BASE}/schedule"))
            .json(&body)
            .send()
    };
    let res = put(json!({
        "schedule": { "type": "Daily", "cron": "0 0 0 * * *" },
        "parameters": { "audit_retention_hour": 168, "include_operations": "create,delete,pull", "dry_run": true },
    }))
    .await
    .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let get = s.get_json(&format!("{BASE}/schedule")).await;
    assert_eq!(get["schedule"]["type"], "Daily");
    assert_eq!(get["schedule"]["cron"], "0 0 0 * * *");
    assert!(get["schedule"]["next_scheduled_time"]
        .as_str()
        .unwrap()
        .ends_with("T00:00:00.000Z"));
    let params: Value = serde_json::from_str(get["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(params["audit_retention_hour"], 168);
    assert_eq!(params["include_operations"], "create,delete,pull");
    assert_eq!(params["dry_run"], true);
    // Harbor's newer event-type filter, on a custom cron.
    let res = put(json!({
        "schedule": { "type": "Custom", "cron": "0 15 3 * * 6" },
        "parameters": { "audit_retention_hour": 720, "include_event_types": "create_artifact,pull_artifact" },
    }))
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let get = s.get_json(&format!("{BASE}/schedule")).await;
    assert_eq!(get["schedule"]["cron"], "0 15 3 * * 6");
    assert!(get["job_parameters"]
        .as_str()
        .unwrap()
        .contains("create_artifact,pull_artifact"));
    // POST while a schedule exists: 409.
    let res = s
        .admin(Method::POST, &format!("{BASE}/schedule"))
        .json(&json!({ "schedule": { "type": "Hourly" }, "parameters": { "audit_retention_hour": 1 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);

    // Bad schedules and parameters: 400 BAD_REQUEST, for schedules and
    // manual runs alike.
    let daily =
        |parameters: Value| json!({ "schedule": { "type": "Daily" }, "parameters": parameters });
    let manual =
        |parameters: Value| json!({ "schedule": { "type": "Manual" }, "parameters": parameters });
    for bad in [
        daily(json!({})),
        daily(json!({ "audit_retention_hour": 0 })),
        daily(json!({ "audit_retention_hour": -3 })),
        daily(json!({ "audit_retention_hour": "168" })),
        daily(json!({ "audit_retention_hour": 1.5 })),
        daily(json!({ "audit_retention_hour": 1_000_000_000 })),
        daily(json!({ "audit_retention_hour": 1, "include_operations": "create,explode" })),
        daily(json!({ "audit_retention_hour": 1, "include_operations": 5 })),
        daily(json!({ "audit_retention_hour": 1, "include_event_types": "create_nothing" })),
        daily(json!({ "audit_retention_hour": 1, "dry_run": "yes" })),
        manual(json!({})),
        manual(json!({ "audit_retention_hour": 0 })),
        json!({ "schedule": { "type": "Custom", "cron": "0 0 * * *" }, "parameters": { "audit_retention_hour": 1 } }),
        json!({ "schedule": { "type": "Yearly" }, "parameters": { "audit_retention_hour": 1 } }),
        json!({}),
    ] {
        let res = put(bad.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["errors"][0]["code"], "BAD_REQUEST", "{bad}");
    }
    assert_eq!(
        s.get_json(&format!("{BASE}/schedule")).await["schedule"]["cron"],
        "0 15 3 * * 6",
        "refused changes leave the schedule alone"
    );
    // None removes it, without parameters.
    let res = put(json!({ "schedule": { "type": "None" } }))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        s.get_json(&format!("{BASE}/schedule")).await["schedule"]["type"],
        "None"
    );

    // Only system admins: not a project admin, not an ordinary user.
    s.create_user("purger", "Purger-12345").await;
    s.create_project("purge-owned", false).await;
    s.add_member("purge-owned", "purger", 1).await;
    let run = start_purge(s, json!({ "audit_retention_hour": 1, "dry_run": true })).await;
    for (m, p) in [
        (Method::GET, BASE.to_owned()),
        (Method::GET, format!("{BASE}/{run}")),
        (Method::GET, format!("{BASE}/{run}/log")),
        (Method::PUT, format!("{BASE}/{run}")),
        (Method::GET, format!("{BASE}/schedule")),
        (Method::POST, format!("{BASE}/schedule")),
        (Method::PUT, format!("{BASE}/schedule")),
    ] {
        let body = json!({ "schedule": { "type": "Manual" }, "parameters": { "audit_retention_hour": 1 } });
        let res = s
            .basic("purger", "Purger-12345", m.clone(), &p)
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(res, 403, "FORBIDDEN").await;
        let res = s.anon(m.clone(), &p).json(&body).send().await.unwrap();
        expect_error(res, 401, "UNAUTHORIZED").await;
    }
    wait_purge(s, run).await;
}

crate::on_backends!(runs_history_and_logs, schedule_validation_and_permissions);
