//! Storage requests (a Berth extension, `/projects/{p}/storage-requests`
//! and `/storage-requests`): a project admin asks for more storage, a
//! system admin approves (the quota changes) or declines; permissions,
//! validation, one pending request per project, deciding once, withdrawing,
//! and the audit log.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

const GIB: i64 = 1 << 30;
const PASSWORD: &str = "Storage-Req-123";

/// Project `sr` with a 1 GiB quota and members `padmin` (project admin),
/// `maint`, `dev`, `guest`; `otheradmin` administers project `sr-other`;
/// `outsider` is in no project. Returns `sr`'s id.
async fn setup(s: &Server) -> i64 {
    s.create_project("sr", false).await;
    s.create_project("sr-other", false).await;
    let pid = s.get_json("/api/v2.0/projects/sr").await["project_id"]
        .as_i64()
        .unwrap();
    let res = s
        .admin(Method::PUT, &format!("/api/v2.0/quotas/{pid}"))
        .json(&json!({ "hard": { "storage": GIB } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for (user, role) in [("padmin", 1), ("maint", 4), ("dev", 2), ("guest", 3)] {
        s.create_user(user, PASSWORD).await;
        s.add_member("sr", user, role).await;
    }
    s.create_user("otheradmin", PASSWORD).await;
    s.add_member("sr-other", "otheradmin", 1).await;
    s.create_user("outsider", PASSWORD).await;
    pid
}

fn as_user(s: &Server, user: &str, m: Method, path: &str) -> reqwest::RequestBuilder {
    s.basic(user, PASSWORD, m, path)
}

async fn file(s: &Server, user: &str, storage: Value, reason: &str) -> reqwest::Response {
    as_user(
        s,
        user,
        Method::POST,
        "/api/v2.0/projects/sr/storage-requests",
    )
    .json(&json!({ "storage": storage, "reason": reason }))
    .send()
    .await
    .unwrap()
}

/// Files a request as `padmin`; returns its id.
async fn file_ok(s: &Server, storage: i64, reason: &str) -> i64 {
    let res = file(s, "padmin", json!(storage), reason).await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let loc = location(&res);
    assert!(loc.starts_with("/api/v2.0/storage-requests/"), "{loc}");
    loc.rsplit('/').next().unwrap().parse().unwrap()
}

async fn decide(s: &Server, id: i64, body: Value) -> reqwest::Response {
    s.admin(Method::PUT, &format!("/api/v2.0/storage-requests/{id}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn hard_limit(s: &Server, pid: i64) -> i64 {
    s.get_json(&format!("/api/v2.0/quotas/{pid}")).await["hard"]["storage"]
        .as_i64()
        .unwrap()
}

async fn full_flow(s: &Server) {
    let pid = setup(s).await;
    let id = file_ok(s, 2 * GIB, "CI images for the new service").await;
    let res = as_user(
        s,
        "padmin",
        Method::GET,
        &format!("/api/v2.0/storage-requests/{id}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["id"], id);
    assert_eq!(r["project_id"], pid);
    assert_eq!(r["project_name"], "sr");
    assert_eq!(r["requested_storage"], 2 * GIB);
    assert_eq!(r["current_storage_limit"], GIB);
    assert_eq!(r["reason"], "CI images for the new service");
    assert_eq!(r["status"], "pending");
    assert_eq!(r["requester"], "padmin");
    assert_eq!(r["reviewer"], "");
    assert_eq!(r["comment"], "");
    for t in ["creation_time", "update_time"] {
        let v = r[t].as_str().unwrap();
        assert!(v.len() == 24 && v.ends_with('Z'), "{t}: {v}");
    }

    // Members who can read the quota see the project's requests.
    let res = as_user(
        s,
        "guest",
        Method::GET,
        "/api/v2.0/projects/sr/storage-requests",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "x-total-count").as_deref(), Some("1"));
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list[0]["id"], id);
    // ... by project id too.
    let list = s
        .get_json(&format!("/api/v2.0/projects/{pid}/storage-requests"))
        .await;
    assert_eq!(list[0]["id"], id);

    // One pending request per project.
    let res = file(s, "padmin", json!(3 * GIB), "more").await;
    expect_error(res, 409, "CONFLICT").await;

    // The admin's list, by status.
    let res = s
        .admin(Method::GET, "/api/v2.0/storage-requests?status=pending")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "x-total-count").as_deref(), Some("1"));
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list[0]["id"], id);
    let list = s
        .get_json("/api/v2.0/storage-requests?status=approved")
        .await;
    assert_eq!(list, json!([]));
    let res = s
        .admin(Method::GET, "/api/v2.0/storage-requests?status=maybe")
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "BAD_REQUEST").await;

    // Approving sets the quota.
    let res = decide(
        s,
        id,
        json!({ "status": "approved", "comment": "go ahead" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(hard_limit(s, pid).await, 2 * GIB);
    let r = s
        .get_json(&format!("/api/v2.0/storage-requests/{id}"))
        .await;
    assert_eq!(r["status"], "approved");
    assert_eq!(r["reviewer"], "admin");
    assert_eq!(r["comment"], "go ahead");
    // Deciding twice, or withdrawing a decided request: 409.
    let res = decide(s, id, json!({ "status": "declined" })).await;
    expect_error(res, 409, "CONFLICT").await;
    let res = as_user(
        s,
        "padmin",
        Method::DELETE,
        &format!("/api/v2.0/storage-requests/{id}"),
    )
    .send()
    .await
    .unwrap();
    expect_error(res, 409, "CONFLICT").await;
    assert_eq!(hard_limit(s, pid).await, 2 * GIB);

    // Declining leaves the quota alone.
    let declined = file_ok(s, 3 * GIB, "even more").await;
    let res = decide(
        s,
        declined,
        json!({ "status": "declined", "comment": "not now" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(hard_limit(s, pid).await, 2 * GIB);
    assert_eq!(
        s.get_json(&format!("/api/v2.0/storage-requests/{declined}"))
            .await["status"],
        "declined"
    );

    // A pending request can be withdrawn by the project's admin.
    let withdrawn = file_ok(s, 4 * GIB, "changed my mind").await;
    let res = as_user(
        s,
        "padmin",
        Method::DELETE,
        &format!("/api/v2.0/storage-requests/{withdrawn}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = s
        .admin(
            Method::GET,
            &format!("/api/v2.0/storage-requests/{withdrawn}"),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;

    // History: newest first, paged.
    let res = s
        .admin(Method::GET, "/api/v2.0/storage-requests?page=1&page_size=1")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "x-total-count").as_deref(), Some("2"));
    assert!(header(&res, "link").unwrap().contains("rel=\"next\""));
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list[0]["id"], declined);

    // The audit log has each step.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = s
            .get_json("/api/v2.0/projects/sr/auditlog-exts?q=resource_type%3Dstorage_request&page_size=50")
            .await;
        let mut ops: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["operation"].as_str().unwrap())
            .collect();
        ops.sort();
        if ops == ["approve", "create", "create", "create", "decline", "delete"] {
            let text = log.to_string();
            assert!(text.contains("limit set to 2.0 GiB"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "audit entries: {ops:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn permissions(s: &Server) {
    setup(s).await;
    // Only the project's admins may ask.
    for user in ["maint", "dev", "guest", "otheradmin", "outsider"] {
        let res = file(s, user, json!(2 * GIB), "please").await;
        expect_error(res, 403, "FORBIDDEN").await;
    }
    let res = s
        .anon(Method::POST, "/api/v2.0/projects/sr/storage-requests")
        .json(&json!({ "storage": 2 * GIB, "reason": "please" }))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;
    let id = file_ok(s, 2 * GIB, "please").await;
    let one = format!("/api/v2.0/storage-requests/{id}");

    // Members read them; others do not.
    for user in ["padmin", "maint", "dev", "guest"] {
        for path in ["/api/v2.0/projects/sr/storage-requests", one.as_str()] {
            let res = as_user(s, user, Method::GET, path).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{user} GET {path}");
        }
    }
    for user in ["otheradmin", "outsider"] {
        for path in ["/api/v2.0/projects/sr/storage-requests", one.as_str()] {
            let res = as_user(s, user, Method::GET, path).send().await.unwrap();
            expect_error(res, 403, "FORBIDDEN").await;
        }
    }
    for path in [
        "/api/v2.0/projects/sr/storage-requests",
        one.as_str(),
        "/api/v2.0/storage-requests",
    ] {
        let res = s.anon(Method::GET, path).send().await.unwrap();
        expect_error(res, 401, "UNAUTHORIZED").await;
    }

    // The admin endpoints are for system admins, not even the project's
    // own admin.
    for user in ["padmin", "dev", "outsider"] {
        let res = as_user(s, user, Method::GET, "/api/v2.0/storage-requests")
            .send()
            .await
            .unwrap();
        expect_error(res, 403, "FORBIDDEN").await;
        let res = as_user(s, user, Method::PUT, &one)
            .json(&json!({ "status": "approved" }))
            .send()
            .await
            .unwrap();
        expect_error(res, 403, "FORBIDDEN").await;
    }
    let res = s
        .anon(Method::PUT, &one)
        .json(&json!({ "status": "approved" }))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;

    // Withdrawing: the project's admins only.
    for user in ["maint", "dev", "guest", "otheradmin", "outsider"] {
        let res = as_user(s, user, Method::DELETE, &one).send().await.unwrap();
        expect_error(res, 403, "FORBIDDEN").await;
    }
    let res = s.anon(Method::DELETE, &one).send().await.unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;
    assert_eq!(
        s.get_json(&one).await["status"],
        "pending",
        "nothing refused changed it"
    );
}

async fn validation(s: &Server) {
    let pid = setup(s).await;
    let long = "x".repeat(1001);
    for (storage, reason) in [
        (json!(null), "no storage"),
        (json!(-1), "unlimited is not a size"),
        (json!(-5), "negative"),
        (json!(0), "zero"),
        (json!("2147483648"), "a string"),
        (json!(1.5), "a fraction"),
        (json!(GIB), "not more than now"),
        (json!(GIB / 2), "less than now"),
        (json!(1025_i64 << 40), "past 1024 TiB"),
        (json!(2 * GIB), ""),
        (json!(2 * GIB), "   "),
        (json!(2 * GIB), long.as_str()),
    ] {
        let res = file(s, "padmin", storage.clone(), reason).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{storage} {reason:?}: {body}"
        );
        assert_eq!(body["errors"][0]["code"], "BAD_REQUEST", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().len() > 5);
    }
    // A missing reason, and a body that is not JSON.
    let res = as_user(
        s,
        "padmin",
        Method::POST,
        "/api/v2.0/projects/sr/storage-requests",
    )
    .json(&json!({ "storage": 2 * GIB }))
    .send()
    .await
    .unwrap();
    expect_error(res, 400, "BAD_REQUEST").await;
    let res = as_user(
        s,
        "padmin",
        Method::POST,
        "/api/v2.0/projects/sr/storage-requests",
    )
    .header("content-type", "application/json")
    .body("{nope")
    .send()
    .await
    .unwrap();
    expect_error(res, 400, "BAD_REQUEST").await;
    // 1000 characters is the most a reason may have.
    let id = file_ok(s, 2 * GIB, &"y".repeat(1000)).await;

    // Deciding: approved or declined, and a short enough comment.
    for body in [
        json!({}),
        json!({ "status": "pending" }),
        json!({ "status": "maybe" }),
        json!({ "status": "approved", "comment": long }),
    ] {
        let res = decide(s, id, body.clone()).await;
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["errors"][0]["code"], "BAD_REQUEST");
    }
    assert_eq!(hard_limit(s, pid).await, GIB, "nothing was approved");
    for (path, want) in [
        ("/api/v2.0/storage-requests/abc", 400),
        ("/api/v2.0/storage-requests/0", 400),
        ("/api/v2.0/storage-requests/424242", 404),
        ("/api/v2.0/projects/nope/storage-requests", 404),
    ] {
        let res = s.admin(Method::GET, path).send().await.unwrap();
        assert_eq!(res.status().as_u16(), want, "{path}");
    }
    let res = decide(s, 424242, json!({ "status": "approved" })).await;
    expect_error(res, 404, "NOT_FOUND").await;

    // A project without a limit has nothing to ask for.
    let res = as_user(
        s,
        "otheradmin",
        Method::POST,
        "/api/v2.0/projects/sr-other/storage-requests",
    )
    .json(&json!({ "storage": 2 * GIB, "reason": "please" }))
    .send()
    .await
    .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "BAD_REQUEST", "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("unlimited"));
}

crate::on_backends!(full_flow, permissions, validation);
