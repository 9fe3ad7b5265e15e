//! Tag retention through `/retentions`: policy CRUD and validation, a dry
//! run and a real run that decide the same set, immutable tags kept,
//! per-repository tasks and logs, permissions.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

fn rule(template: &str, n: Option<i64>, repo: &str, tag: &str, untagged: bool) -> Value {
    let params = match n {
        Some(n) => json!({ template: n }),
        None => json!({}),
    };
    json!({
        "disabled": false, "action": "retain", "template": template, "params": params,
        "tag_selectors": [{ "kind": "doublestar", "decoration": "matches", "pattern": tag,
                            "extras": if untagged { "{\"untagged\":true}" } else { "{\"untagged\":false}" } }],
        "scope_selectors": { "repository": [{ "kind": "doublestar", "decoration": "repoMatches", "pattern": repo }] },
    })
}

fn policy(project_id: i64, rules: Vec<Value>, cron: &str) -> Value {
    json!({
        "algorithm": "or", "rules": rules,
        "trigger": { "kind": "Schedule", "settings": { "cron": cron } },
        "scope": { "level": "project", "ref": project_id },
    })
}

async fn run_and_wait(s: &Server, id: i64, dry_run: bool) -> i64 {
    let res = s
        .admin(
            Method::POST,
            &format!("/api/v2.0/retentions/{id}/executions"),
        )
        .json(&json!({ "dry_run": dry_run }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    let eid: i64 = location(&res).rsplit('/').next().unwrap().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = s
            .get_json(&format!("/api/v2.0/retentions/{id}/executions"))
            .await;
        let e = list
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == eid)
            .unwrap()
            .clone();
        if e["status"] == "Success" {
            assert_eq!(e["dry_run"], dry_run);
            assert_eq!(e["trigger"], "MANUAL");
            return eid;
        }
        assert!(
            !["Error", "Stopped"].contains(&e["status"].as_str().unwrap()),
            "{e}"
        );
        assert!(
            Instant::now() < deadline,
            "retention run still {}",
            e["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The digests a run's logs say it deletes, and each task by repository.
async fn verdicts(s: &Server, id: i64, eid: i64) -> (BTreeSet<String>, Vec<Value>) {
    let tasks = s
        .get_json(&format!("/api/v2.0/retentions/{id}/executions/{eid}/tasks"))
        .await;
    let mut deleted = BTreeSet::new();
    for t in tasks.as_array().unwrap() {
        let res = s
            .admin(
                Method::GET,
                &format!(
                    "/api/v2.0/retentions/{id}/executions/{eid}/tasks/{}",
                    t["id"]
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        for line in res.text().await.unwrap().lines() {
            if let Some(rest) = line.split_once(" DEL ").map(|(_, r)| r) {
                deleted.insert(rest.split(' ').next().unwrap().to_owned());
            }
        }
    }
    (deleted, tasks.as_array().unwrap().clone())
}

async fn dry_run_and_real_run_agree(s: &Server) {
    s.create_project("ret", false).await;
    let pid = s.get_json("/api/v2.0/projects/ret").await["project_id"]
        .as_i64()
        .unwrap();
    let mut app = vec![];
    for i in 1..=6 {
        app.push(s.push_image("ret/app", &format!("v{i}"), 1).await.0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (untagged, _, _) = s.push_image("ret/app", "tmp", 1).await;
    s.admin(
        Method::DELETE,
        "/api/v2.0/projects/ret/repositories/app/artifacts/tmp/tags/tmp",
    )
    .send()
    .await
    .unwrap();
    let keep1 = s.push_image("ret/keep", "a", 1).await.0;
    let keep2 = s.push_image("ret/keep", "b", 1).await.0;
    // v1 is immutable: retention must keep it.
    let res = s.admin(Method::POST, "/api/v2.0/projects/ret/immutabletagrules").json(&json!({
        "tag_selectors": [{ "kind": "doublestar", "decoration": "matches", "pattern": "v1" }],
        "scope_selectors": { "repository": [{ "kind": "doublestar", "decoration": "repoMatches", "pattern": "**" }] },
    })).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let body = policy(
        pid,
        vec![
            rule("latestPushedK", Some(2), "app", "**", false),
            rule("always", None, "keep", "**", true),
        ],
        "",
    );
    let res = s
        .admin(Method::POST, "/api/v2.0/retentions")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    let id: i64 = location(&res).rsplit('/').next().unwrap().parse().unwrap();
    let project = s.get_json("/api/v2.0/projects/ret").await;
    assert_eq!(project["metadata"]["retention_id"], id.to_string());
    let got = s.get_json(&format!("/api/v2.0/retentions/{id}")).await;
    assert_eq!(got["id"], id);
    assert_eq!(got["algorithm"], "or");
    assert_eq!(got["rules"].as_array().unwrap().len(), 2);
    assert_eq!(got["scope"]["ref"], pid);
    // One policy per project.
    let res = s
        .admin(Method::POST, "/api/v2.0/retentions")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);

    let dry = run_and_wait(s, id, true).await;
    let (would, tasks) = verdicts(s, id, dry).await;
    let expected: BTreeSet<String> = [&app[1], &app[2], &app[3], &untagged]
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        would, expected,
        "v2..v4 and the untagged artifact; v1 is immutable"
    );
    let app_task = tasks.iter().find(|t| t["repository"] == "ret/app").unwrap();
    assert_eq!(app_task["total"], 7);
    assert_eq!(app_task["retained"], 3);
    let keep_task = tasks
        .iter()
        .find(|t| t["repository"] == "ret/keep")
        .unwrap();
    assert_eq!(
        (keep_task["total"].clone(), keep_task["retained"].clone()),
        (json!(2), json!(2))
    );
    // The dry run deleted nothing.
    assert_eq!(
        s.get_json("/api/v2.0/projects/ret/repositories/app/artifacts?page_size=50")
            .await
            .as_array()
            .unwrap()
            .len(),
        7
    );

    let real = run_and_wait(s, id, false).await;
    let (deleted, _) = verdicts(s, id, real).await;
    assert_eq!(
        deleted, would,
        "the real run decides what the dry run showed"
    );
    let left: BTreeSet<String> = s
        .get_json("/api/v2.0/projects/ret/repositories/app/artifacts?page_size=50")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["digest"].as_str().unwrap().to_owned())
        .collect();
    let kept: BTreeSet<String> = [&app[0], &app[4], &app[5]]
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(left, kept);
    for d in [&keep1, &keep2] {
        let st = s
            .admin(Method::GET, &format!("/v2/ret/keep/manifests/{d}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, StatusCode::OK);
    }
    let runs = s
        .get_json(&format!("/api/v2.0/retentions/{id}/executions"))
        .await;
    assert_eq!(runs.as_array().unwrap().len(), 2);
    assert_eq!(runs[0]["id"], real, "newest first");
}

async fn policy_validation_schedule_and_permissions(s: &Server) {
    s.create_project("retp", false).await;
    let pid = s.get_json("/api/v2.0/projects/retp").await["project_id"]
        .as_i64()
        .unwrap();
    let post = |b: Value| {
        s.admin(Method::POST, "/api/v2.0/retentions")
            .json(&b)
            .send()
    };
    for bad in [
        policy(
            pid,
            vec![rule("latestPushedK", None, "**", "**", false)],
            "",
        ),
        policy(pid, vec![rule("nope", Some(1), "**", "**", false)], ""),
        policy(
            pid,
            (0..16)
                .map(|i| rule("latestPushedK", Some(i), "**", "**", false))
                .collect(),
            "",
        ),
        policy(pid, vec![rule("always", None, "**", "[x", false)], ""),
        policy(
            pid,
            vec![rule("always", None, "**", "**", false)],
            "0 0 * * *",
        ),
        json!({ "algorithm": "and", "rules": [], "scope": { "level": "project", "ref": pid } }),
        json!({ "algorithm": "or", "rules": [] }),
    ] {
        let res = post(bad.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["errors"][0]["code"], "BAD_REQUEST");
    }
    let dup = policy(
        pid,
        vec![
            rule("always", None, "**", "**", false),
            rule("always", None, "**", "**", false),
        ],
        "",
    );
    assert_eq!(post(dup).await.unwrap().status(), StatusCode::CONFLICT);

    // Members: a guest can neither create nor change a policy.
    s.create_user("ret-guest", "Retguest-12345").await;
    s.add_member("retp", "ret-guest", 3).await;
    let body = policy(
        pid,
        vec![rule("latestPushedK", Some(5), "**", "**", true)],
        "0 0 0 * * *",
    );
    let res = s
        .basic(
            "ret-guest",
            "Retguest-12345",
            Method::POST,
            "/api/v2.0/retentions",
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = s
        .anon(Method::POST, "/api/v2.0/retentions")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // A scheduled policy; updated; deleted.
    let res = post(body).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id: i64 = location(&res).rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(
        s.get_json(&format!("/api/v2.0/retentions/{id}")).await["trigger"]["settings"]["cron"],
        "0 0 0 * * *"
    );
    let res = s
        .basic(
            "ret-guest",
            "Retguest-12345",
            Method::PUT,
            &format!("/api/v2.0/retentions/{id}"),
        )
        .json(&policy(pid, vec![], ""))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = s
        .admin(Method::PUT, &format!("/api/v2.0/retentions/{id}"))
        .json(&policy(
            pid,
            vec![rule("nDaysSinceLastPull", Some(7), "**", "**", true)],
            "0 0 3 * * 6",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let got = s.get_json(&format!("/api/v2.0/retentions/{id}")).await;
    assert_eq!(got["rules"][0]["template"], "nDaysSinceLastPull");
    assert_eq!(got["trigger"]["settings"]["cron"], "0 0 3 * * 6");
    let meta = s.get_json("/api/v2.0/retentions/metadatas").await;
    assert_eq!(meta["templates"].as_array().unwrap().len(), 7);
    let res = s
        .admin(Method::DELETE, &format!("/api/v2.0/retentions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        s.admin(Method::GET, &format!("/api/v2.0/retentions/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(s.get_json("/api/v2.0/projects/retp").await["metadata"]
        .get("retention_id")
        .is_none());
}

crate::on_backends!(
    dry_run_and_real_run_agree,
    policy_validation_schedule_and_permissions
);
