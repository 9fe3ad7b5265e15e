//! Online garbage collection through Harbor's `/system/gc` API: what it
//! deletes and keeps, dry runs, history and logs, schedules, permissions,
//! and a soak test that pushes and pulls images sharing layers with deleted
//! ones while GC runs back to back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_oci::Digest;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

/// Runs each test on both backend pairs with a GC time window of
/// `window` seconds.
macro_rules! gc_tests {
    ($($name:ident: $window:expr),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = super::start(Backend::Embedded, $window).await;
                    super::$name(&s).await;
                }
            )*
            use crate::harness::Backend;
        }
        mod shared {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(b) = Backend::postgres_s3().await {
                        let s = super::start(b, $window).await;
                        super::$name(&s).await;
                    }
                }
            )*
            use crate::harness::Backend;
        }
    };
}

async fn start(backend: Backend, window: u64) -> Server {
    Server::start_with(
        backend,
        vec![("BERTH_GC_TIME_WINDOW".into(), window.to_string())],
    )
    .await
}

/// Starts a run (`Manual`) and returns its id.
async fn start_gc(s: &Server, parameters: Value) -> i64 {
    let res = s
        .admin(Method::POST, "/api/v2.0/system/gc/schedule")
        .json(&json!({ "schedule": { "type": "Manual" }, "parameters": parameters }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    let loc = location(&res);
    loc.rsplit('/').next().unwrap().parse().unwrap()
}

const GC: &str = "/api/v2.0/system/gc";

async fn wait_gc(s: &Server, id: i64) -> Value {
    wait_system_job(s, GC, id).await
}

async fn gc_log(s: &Server, id: i64) -> String {
    system_job_log(s, GC, id).await
}

async fn status(s: &Server, m: Method, path: &str) -> StatusCode {
    s.admin(m, path).send().await.unwrap().status()
}

fn blob_file(s: &Server, d: &Digest) -> Option<std::path::PathBuf> {
    match s.backend {
        Backend::Embedded => {
            let hex = d.hex();
            Some(
                s.data_dir()
                    .join(format!("blobs/blobs/sha256/{}/{hex}", &hex[..2])),
            )
        }
        Backend::Shared { .. } => None,
    }
}

async fn collects_unreferenced_and_keeps_the_rest(s: &Server) {
    s.create_project("gc", false).await;
    let (keep, _, keep_blobs) = s.push_image("gc/app", "keep", 2).await;
    let (gone, _, gone_blobs) = s.push_image("gc/app", "gone", 2).await;
    let (untagged, _, _) = s.push_image("gc/app", "tmp", 1).await;
    // untag it: the artifact stays, without tags
    assert_eq!(
        status(
            s,
            Method::DELETE,
            "/api/v2.0/projects/gc/repositories/app/artifacts/tmp/tags/tmp"
        )
        .await,
        StatusCode::OK
    );
    let loose = s.push_blob("gc/app", &random_bytes(5000)).await;
    assert_eq!(
        status(s, Method::DELETE, &format!("/v2/gc/app/manifests/{gone}")).await,
        StatusCode::ACCEPTED
    );
    let pid = s.get_json("/api/v2.0/projects/gc").await["project_id"]
        .as_i64()
        .unwrap();
    let used_before = s.get_json(&format!("/api/v2.0/quotas/{pid}")).await["used"]["storage"]
        .as_i64()
        .unwrap();
    // Older than the 2 s window.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // A dry run reports and deletes nothing.
    let dry = start_gc(s, json!({ "dry_run": true, "delete_untagged": true })).await;
    let h = wait_gc(s, dry).await;
    assert_eq!(h["job_status"], "Success", "{h}");
    assert_eq!(h["job_kind"], "MANUAL");
    assert!(h["job_parameters"]
        .as_str()
        .unwrap()
        .contains("\"dry_run\":true"));
    let log = gc_log(s, dry).await;
    assert!(
        log.contains(&format!("would delete untagged artifact gc/app@{untagged}")),
        "{log}"
    );
    // The summary: what the real run below deletes, exactly.
    let would = log
        .lines()
        .find_map(|l| {
            l.split_once("would delete 1 untagged artifact(s), ")
                .map(|(_, s)| s.to_owned())
        })
        .unwrap_or_else(|| panic!("no dry-run summary in {log}"));
    if let Some(f) = blob_file(s, &loose) {
        assert!(f.exists(), "a dry run deletes nothing");
    }

    let run = start_gc(s, json!({ "delete_untagged": true, "workers": 3 })).await;
    let h = wait_gc(s, run).await;
    assert_eq!(h["job_status"], "Success", "{h}");
    let log = gc_log(s, run).await;
    let did = log
        .lines()
        .find_map(|l| {
            l.split_once("deleted 1 untagged artifact(s), ")
                .map(|(_, s)| s.to_owned())
        })
        .unwrap_or_else(|| panic!("no summary in {log}"));
    assert_eq!(would, did, "the dry run foresaw the real run");
    // The deleted image's 2 layers and config, the untagged one's layer
    // and config, and the loose blob; the two images' stored manifests.
    assert!(did.starts_with("6 blob(s) and 2 manifest(s)"), "{did}");

    // Kept: the tagged image, whole.
    assert_eq!(
        status(s, Method::GET, "/v2/gc/app/manifests/keep").await,
        StatusCode::OK
    );
    for b in &keep_blobs {
        assert_eq!(
            status(s, Method::GET, &format!("/v2/gc/app/blobs/{b}")).await,
            StatusCode::OK,
            "{b}"
        );
    }
    // Gone: the deleted image's blobs, the loose blob, the untagged artifact.
    for b in gone_blobs.iter().chain([&loose]) {
        assert_eq!(
            status(s, Method::HEAD, &format!("/v2/gc/app/blobs/{b}")).await,
            StatusCode::NOT_FOUND,
            "{b}"
        );
        if let Some(f) = blob_file(s, b) {
            assert!(!f.exists(), "{} was deleted from storage", f.display());
        }
    }
    assert_eq!(
        status(s, Method::GET, &format!("/v2/gc/app/manifests/{untagged}")).await,
        StatusCode::NOT_FOUND
    );
    // Usage fell with it.
    let used_after = s.get_json(&format!("/api/v2.0/quotas/{pid}")).await["used"]["storage"]
        .as_i64()
        .unwrap();
    assert!(used_after < used_before, "{used_after} < {used_before}");
    let artifacts = s
        .get_json("/api/v2.0/projects/gc/repositories/app/artifacts")
        .await;
    assert_eq!(artifacts.as_array().unwrap().len(), 1);
    assert_eq!(artifacts[0]["digest"], keep.as_str());

    // History: newest first, with Harbor's fields.
    let res = s
        .admin(Method::GET, "/api/v2.0/system/gc?page=1&page_size=10")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "x-total-count").as_deref(), Some("2"));
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list[0]["id"], run);
    assert_eq!(list[1]["id"], dry);
    assert_eq!(list[0]["job_name"], "GARBAGE_COLLECTION");
    assert_eq!(list[0]["schedule"]["type"], "Manual");
    assert_eq!(list[0]["deleted"], false);

    // A blob uploaded again after GC is stored again.
    s.push_image("gc/app", "again", 1).await;
}

/// The stored manifest of a deleted artifact goes with GC, and the same
/// bytes pushed again afterwards are taken and served again.
async fn deletes_unused_manifests_and_takes_them_again(s: &Server) {
    s.create_project("gcm", false).await;
    let (_, keep, _) = s.push_image("gcm/app", "keep", 1).await;
    // Another manifest over the same blobs: only its own bytes can go.
    let mut alias: Value = serde_json::from_slice(&keep).unwrap();
    alias["annotations"] = json!({ "alias": "yes" });
    let alias = alias.to_string();
    let digest = Digest::sha256(alias.as_bytes());
    let put = |tag: &'static str| {
        let alias = alias.clone();
        async move {
            s.put_manifest(
                "gcm/app",
                tag,
                berth_oci::media::OCI_MANIFEST,
                alias.as_bytes(),
            )
            .await
            .status()
        }
    };
    assert_eq!(put("alias").await, StatusCode::CREATED);
    assert_eq!(
        status(
            s,
            Method::DELETE,
            &format!("/v2/gcm/app/manifests/{digest}")
        )
        .await,
        StatusCode::ACCEPTED
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let dry = start_gc(s, json!({ "dry_run": true })).await;
    assert_eq!(wait_gc(s, dry).await["job_status"], "Success");
    let log = gc_log(s, dry).await;
    assert!(
        log.contains(&format!(
            "would delete 0 untagged artifact(s), 0 blob(s) and 1 manifest(s), freeing {}",
            berth_core::model::human_bytes(alias.len() as i64)
        )),
        "{log}"
    );
    let run = start_gc(s, json!({})).await;
    assert_eq!(wait_gc(s, run).await["job_status"], "Success");
    let log = gc_log(s, run).await;
    assert!(log.contains("deleted 1 unused manifest(s)"), "{log}");
    // Nothing left to delete: a second run finds none.
    let again = start_gc(s, json!({ "dry_run": true })).await;
    assert_eq!(wait_gc(s, again).await["job_status"], "Success");
    assert!(gc_log(s, again)
        .await
        .contains("would delete 0 untagged artifact(s), 0 blob(s) and 0 manifest(s)"));
    // The kept image is whole; the same bytes are taken again.
    assert_eq!(
        status(s, Method::GET, "/v2/gcm/app/manifests/keep").await,
        StatusCode::OK
    );
    assert_eq!(put("back").await, StatusCode::CREATED);
    let res = s
        .admin(Method::GET, &format!("/v2/gcm/app/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().as_ref(), alias.as_bytes());
}

/// Blobs used within the window survive, even unreferenced.
async fn keeps_recent_blobs(s: &Server) {
    s.create_project("gcw", false).await;
    let loose = s.push_blob("gcw/app", &random_bytes(3000)).await;
    let run = start_gc(s, json!({})).await;
    assert_eq!(wait_gc(s, run).await["job_status"], "Success");
    assert_eq!(
        status(s, Method::HEAD, &format!("/v2/gcw/app/blobs/{loose}")).await,
        StatusCode::OK
    );
}

async fn schedule_api_and_permissions(s: &Server) {
    let get = s.get_json("/api/v2.0/system/gc/schedule").await;
    assert_eq!(get["schedule"]["type"], "None");
    let put = |body: Value| {
        s.admin(Method::PUT, "/api/v2.0/system/gc/schedule")
            .json(&body)
            .send()
    };
    let res = put(json!({ "schedule": { "type": "Custom", "cron": "0 30 2 * * 1-5" }, "parameters": { "delete_untagged": false, "workers": 2 } })).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let get = s.get_json("/api/v2.0/system/gc/schedule").await;
    assert_eq!(get["schedule"]["type"], "Custom");
    assert_eq!(get["schedule"]["cron"], "0 30 2 * * 1-5");
    assert!(get["schedule"]["next_scheduled_time"]
        .as_str()
        .unwrap()
        .contains("T02:30:00"));
    let params: Value = serde_json::from_str(get["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(params["delete_untagged"], false);
    assert_eq!(params["workers"], 2);
    let res = put(json!({ "schedule": { "type": "Daily" } }))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        s.get_json("/api/v2.0/system/gc/schedule").await["schedule"]["cron"],
        "0 0 0 * * *"
    );
    // POST while a schedule exists: 409.
    let res = s
        .admin(Method::POST, "/api/v2.0/system/gc/schedule")
        .json(&json!({ "schedule": { "type": "Hourly" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);

    // Bad schedules and parameters: 400 BAD_REQUEST.
    for bad in [
        json!({ "schedule": { "type": "Custom", "cron": "0 0 * * *" } }),
        json!({ "schedule": { "type": "Custom", "cron": "15 0 0 * * *" } }),
        json!({ "schedule": { "type": "Custom" } }),
        json!({ "schedule": { "type": "Yearly" } }),
        json!({ "schedule": { "type": "Daily" }, "parameters": { "workers": 11 } }),
        json!({ "schedule": { "type": "Daily" }, "parameters": { "dry_run": "yes" } }),
        json!({}),
    ] {
        let res = put(bad.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["errors"][0]["code"], "BAD_REQUEST");
    }
    let res = put(json!({ "schedule": { "type": "None" } }))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        s.get_json("/api/v2.0/system/gc/schedule").await["schedule"]["type"],
        "None"
    );

    // Only system admins.
    s.create_user("gcuser", "Gcuser-12345").await;
    for (m, p) in [
        (Method::GET, "/api/v2.0/system/gc"),
        (Method::GET, "/api/v2.0/system/gc/schedule"),
        (Method::POST, "/api/v2.0/system/gc/schedule"),
        (Method::PUT, "/api/v2.0/system/gc/1"),
    ] {
        let res = s
            .basic("gcuser", "Gcuser-12345", m.clone(), p)
            .json(&json!({ "schedule": { "type": "Manual" } }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{m} {p}");
    }
    let res = s
        .anon(Method::GET, "/api/v2.0/system/gc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        status(s, Method::GET, "/api/v2.0/system/gc/424242").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(s, Method::GET, "/api/v2.0/system/gc/abc").await,
        StatusCode::BAD_REQUEST
    );
}

// ---- soak ----------------------------------------------------------------

/// Pushes like docker: HEAD each blob, upload it only when missing, then
/// the manifest. Any refusal is a failure.
async fn push_like_docker(
    s: &Server,
    repo: &str,
    tag: &str,
    layers: &[Vec<u8>],
) -> Result<Digest, String> {
    let mut descs = vec![];
    for data in layers {
        let d = Digest::sha256(data);
        let head = s
            .admin(Method::HEAD, &format!("/v2/{repo}/blobs/{d}"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if head.status() != StatusCode::OK {
            let res = s
                .admin(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if res.status() != StatusCode::ACCEPTED {
                return Err(format!("POST upload: {}", res.status()));
            }
            let loc = location(&res);
            let res = s
                .admin(Method::PUT, &with_query(&loc, &format!("digest={d}")))
                .header("content-type", "application/octet-stream")
                .body(data.clone())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if res.status() != StatusCode::CREATED {
                return Err(format!(
                    "PUT upload {d}: {} {}",
                    res.status(),
                    res.text().await.unwrap_or_default()
                ));
            }
        }
        descs.push((d, data.len()));
        // Widen the window between "it exists" and the manifest.
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 40)).await;
    }
    let (config, layers) = descs.split_first().unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": berth_oci::media::OCI_MANIFEST,
        "config": { "mediaType": berth_oci::media::OCI_CONFIG, "digest": config.0.as_str(), "size": config.1 },
        "layers": layers.iter().map(|(d, n)| json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.as_str(), "size": n })).collect::<Vec<_>>(),
    })
    .to_string();
    let res = s
        .put_manifest(
            repo,
            tag,
            berth_oci::media::OCI_MANIFEST,
            manifest.as_bytes(),
        )
        .await;
    if res.status() != StatusCode::CREATED {
        return Err(format!(
            "PUT manifest {repo}:{tag}: {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        ));
    }
    Ok(Digest::sha256(manifest.as_bytes()))
}

/// Pulls a tag completely and checks every byte.
async fn pull(s: &Server, repo: &str, tag: &str) -> Result<(), String> {
    let res = s
        .admin(Method::GET, &format!("/v2/{repo}/manifests/{tag}"))
        .header("accept", berth_oci::media::OCI_MANIFEST)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status() != StatusCode::OK {
        return Err(format!("GET manifest {repo}:{tag}: {}", res.status()));
    }
    let m: Value = res.json().await.map_err(|e| e.to_string())?;
    let mut digests = vec![m["config"]["digest"].as_str().unwrap().to_owned()];
    digests.extend(
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned()),
    );
    for d in digests {
        let res = s
            .admin(Method::GET, &format!("/v2/{repo}/blobs/{d}"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status() != StatusCode::OK {
            return Err(format!("GET blob {d} of {repo}:{tag}: {}", res.status()));
        }
        let body = res.bytes().await.map_err(|e| e.to_string())?;
        if Digest::sha256(&body).as_str() != d {
            return Err(format!("blob {d} of {repo}:{tag} has other bytes"));
        }
    }
    Ok(())
}

/// A run stopped through `PUT /system/gc/{id}` ends `Stopped` at its next
/// batch and leaves what it had not swept yet intact and readable (its
/// marks cleared); a later run collects the rest. Clients served
/// meanwhile keep the sweep in small, paced batches, so the run is still
/// going when the stop arrives.
async fn a_stopped_run_ends_and_leaves_the_rest(s: &Server) {
    use futures::StreamExt;
    s.create_project("gcs", false).await;
    let blobs: Vec<Digest> = futures::stream::iter(0..2000)
        .map(|_| async { s.push_blob("gcs/app", &random_bytes(64)).await })
        .buffer_unordered(8)
        .collect()
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Foreground load: requests always in flight.
    let busy = Arc::new(AtomicBool::new(true));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let busy = busy.clone();
            let url = s.url("/v2/");
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while busy.load(Ordering::Relaxed) {
                    let _ = client.get(&url).send().await;
                }
            })
        })
        .collect();
    let id = start_gc(s, json!({ "workers": 2 })).await;
    loop {
        let h = s.get_json(&format!("{GC}/{id}")).await;
        match h["job_status"].as_str().unwrap() {
            "Running" => break,
            "Pending" => tokio::time::sleep(Duration::from_millis(5)).await,
            other => panic!("the run ended ({other}) before it could be stopped: {h}"),
        }
    }
    assert_eq!(
        status(s, Method::PUT, &format!("{GC}/{id}")).await,
        StatusCode::OK
    );
    let h = wait_gc(s, id).await;
    busy.store(false, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    assert_eq!(h["job_status"], "Stopped", "{h}");
    let log = gc_log(s, id).await;
    assert!(log.contains("stopped on request"), "{log}");
    let mut left = vec![];
    for b in &blobs {
        if status(s, Method::HEAD, &format!("/v2/gcs/app/blobs/{b}")).await == StatusCode::OK {
            left.push(b);
        }
    }
    assert!(!left.is_empty(), "the stopped run swept everything:\n{log}");
    // What it left is readable, not marked for a sweep that will not come.
    let res = s
        .admin(Method::GET, &format!("/v2/gcs/app/blobs/{}", left[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().len(), 64);
    // Stopping it again changes nothing (Harbor answers 200 for an
    // execution that has ended).
    assert_eq!(
        status(s, Method::PUT, &format!("{GC}/{id}")).await,
        StatusCode::OK
    );
    assert_eq!(
        s.get_json(&format!("{GC}/{id}")).await["job_status"],
        "Stopped"
    );
    // The next run collects the rest, once the HEADs above (a use that
    // refreshes a blob's time) are outside the window.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let next = start_gc(s, json!({})).await;
    assert_eq!(wait_gc(s, next).await["job_status"], "Success");
    for b in left {
        assert_eq!(
            status(s, Method::HEAD, &format!("/v2/gcs/app/blobs/{b}")).await,
            StatusCode::NOT_FOUND,
            "{b}"
        );
    }
}

async fn soak_pushes_and_pulls_while_gc_runs(s: &Server) {
    let secs: u64 = std::env::var("BERTH_GC_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    s.create_project("soak", false).await;
    // Shared base layers: images come and go, so a base is now referenced,
    // now garbage (and marked, or being swept) when the next image wants it.
    let bases: Arc<Vec<Vec<u8>>> = Arc::new((0..64).map(|_| random_bytes(4096)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(secs);

    let pushers = (0..4).map(|c| {
        let bases = bases.clone();
        let stop = stop.clone();
        async move {
            let repo = format!("soak/c{c}");
            let mut live: Vec<(String, Digest)> = vec![];
            let mut pushed = 0u32;
            let mut failures = vec![];
            while !stop.load(Ordering::Relaxed) {
                let tag = format!("t{pushed}");
                let base = &bases[(rand::random::<usize>()) % bases.len()];
                let config = format!(
                    "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":\"{c}-{pushed}-{}\"}}",
                    uuid::Uuid::new_v4()
                )
                .into_bytes();
                let layers = vec![config, base.clone(), random_bytes(2048)];
                match push_like_docker(s, &repo, &tag, &layers).await {
                    Ok(d) => {
                        if let Err(e) = pull(s, &repo, &tag).await {
                            failures.push(format!("pull right after push: {e}"));
                        }
                        live.push((tag, d));
                    }
                    Err(e) => failures.push(e),
                }
                pushed += 1;
                if live.len() > 2 {
                    let (_, d) = live.remove(0);
                    let st = status(s, Method::DELETE, &format!("/v2/{repo}/manifests/{d}")).await;
                    if st != StatusCode::ACCEPTED {
                        failures.push(format!("delete {d}: {st}"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 200)).await;
            }
            (repo, live, pushed, failures)
        }
    });
    let collector = async {
        let mut runs = vec![];
        while Instant::now() < deadline {
            let id = start_gc(s, json!({ "delete_untagged": true, "workers": 2 })).await;
            let h = wait_gc(s, id).await;
            assert_eq!(h["job_status"], "Success", "{h}: {}", gc_log(s, id).await);
            runs.push(id);
        }
        stop.store(true, Ordering::Relaxed);
        runs
    };
    let (results, runs) = tokio::join!(futures::future::join_all(pushers), collector);
    let mut total = 0;
    let mut swept = 0;
    for id in &runs {
        let log = gc_log(s, *id).await;
        if let Some(n) = log.lines().find_map(|l| {
            l.split(" and ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
        }) {
            swept += n;
        }
    }
    let mut all_failures = HashMap::new();
    for (repo, live, pushed, failures) in &results {
        total += pushed;
        if !failures.is_empty() {
            all_failures.insert(repo.clone(), failures.clone());
        }
        // Every acknowledged tag still there pulls completely afterwards.
        for (tag, _) in live {
            pull(s, repo, tag)
                .await
                .unwrap_or_else(|e| panic!("after the soak: {e}"));
        }
    }
    let runs = runs.len();
    assert!(
        all_failures.is_empty(),
        "failures during {runs} GC runs: {all_failures:#?}"
    );
    assert!(runs >= 3, "GC ran back to back ({runs} runs)");
    assert!(total >= 40, "clients kept pushing ({total} images)");
    assert!(swept > 0, "GC did collect blobs during the soak");
    eprintln!("soak: {total} images pushed, {runs} GC runs, {swept} blobs swept");
}

gc_tests!(
    collects_unreferenced_and_keeps_the_rest: 2,
    keeps_recent_blobs: 3600,
    deletes_unused_manifests_and_takes_them_again: 2,
    schedule_api_and_permissions: 7200,
    a_stopped_run_ends_and_leaves_the_rest: 2,
    soak_pushes_and_pulls_while_gc_runs: 2,
);
