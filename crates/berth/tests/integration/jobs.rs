//! Background jobs in a running server: abandoned upload sessions are
//! purged by the `PURGE_UPLOAD` job, sessions in use are not.

use std::time::Duration;

use reqwest::Method;

use crate::harness::*;

fn purge_env() -> Vec<(String, String)> {
    vec![
        ("BERTH_UPLOAD_PURGE_AGE".into(), "2".into()),
        ("BERTH_UPLOAD_PURGE_INTERVAL".into(), "1".into()),
    ]
}

async fn start_upload(s: &Server, repo: &str, data: &[u8]) -> String {
    let res = s
        .admin(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let loc = location(&res);
    let res = s
        .admin(Method::PATCH, &loc)
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    location(&res)
}

async fn upload_status(s: &Server, loc: &str) -> u16 {
    s.admin(Method::GET, loc)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn abandoned_uploads_are_purged(s: &Server) {
    s.create_project("purge", false).await;
    let old = start_upload(s, "purge/app", &random_bytes(300_000)).await;
    assert_eq!(upload_status(s, &old).await, 204);
    // older than the 2 s age, and a purge runs every second
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let fresh = start_upload(s, "purge/app", &random_bytes(1000)).await;
    let mut gone = false;
    for _ in 0..50 {
        if upload_status(s, &old).await == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the abandoned session was purged");
    let res = s.admin(Method::GET, &old).send().await.unwrap();
    expect_error(res, 404, "BLOB_UPLOAD_UNKNOWN").await;
    assert_eq!(upload_status(s, &fresh).await, 204, "a fresh session stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_are_purged_embedded() {
    let s = Server::start_with(Backend::Embedded, purge_env()).await;
    abandoned_uploads_are_purged(&s).await;
    // its partial data is gone from disk; the fresh session's is there
    let uploads = s.data_dir().join("blobs/uploads");
    let left = std::fs::read_dir(&uploads).unwrap().count();
    assert_eq!(
        left, 1,
        "only the fresh session's folder is left in {uploads:?}"
    );
    // the run is recorded as a job with its log
    let db = format!("sqlite://{}", s.data_dir().join("berth.db").display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db)
        .await
        .unwrap();
    let lines: Vec<(String,)> = sqlx::query_as(
        "SELECT l.line FROM task_logs l JOIN tasks t ON t.id = l.task_id
         WHERE t.vendor_type = 'PURGE_UPLOAD' AND t.status = 'Success' ORDER BY l.id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        lines
            .iter()
            .any(|(l,)| l.starts_with("purged 1 upload session(s)")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_are_purged_shared() {
    if let Some(b) = Backend::postgres_s3().await {
        let s = Server::start_with(b, purge_env()).await;
        abandoned_uploads_are_purged(&s).await;
    }
}
