//! Crashes, restarts, several nodes and concurrency: acknowledged pushes
//! survive `kill -9`, no partial blob is ever visible, upload sessions
//! survive restarts and move between nodes, and concurrent writers do not
//! corrupt each other.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_oci::{media, Digest};
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::*;

crate::on_backends!(
    upload_survives_restart_and_kill,
    crash_during_concurrent_pushes,
    concurrent_writers
);

async fn upload_survives_restart_and_kill(s: &Server) {
    // `s` is shared by reference; restarting needs ownership, so each case
    // starts its own server on the same backend kind.
    let backend = match &s.backend {
        Backend::Embedded => Backend::Embedded,
        Backend::Shared { .. } => match Backend::postgres_s3().await {
            Some(b) => b,
            None => return,
        },
    };
    let mut s = Server::start(backend).await;
    s.create_project("dur", false).await;
    let repo = "dur/resume";
    for kill in [false, true] {
        let data = random_bytes(9 * 1024 * 1024 + 333);
        let digest = Digest::sha256(&data);
        let res = s
            .admin(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        let loc = location(&res);
        let split = 5 * 1024 * 1024 + 7;
        let res = s
            .admin(Method::PATCH, &loc)
            .header("content-range", format!("0-{}", split - 1))
            .body(data[..split].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        if kill {
            s.kill();
            s.start_again().await;
        } else {
            s.restart().await;
        }
        let res = s.admin(Method::GET, &loc).send().await.unwrap();
        assert_eq!(res.status(), 204, "the session survived the restart");
        assert_eq!(header(&res, "range"), Some(format!("0-{}", split - 1)));
        let res = s
            .admin(Method::PATCH, &loc)
            .header("content-range", format!("{split}-{}", data.len() - 1))
            .body(data[split..].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        let res = s
            .admin(
                Method::PUT,
                &with_query(&location(&res), &format!("digest={digest}")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let got = s
            .admin(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(
            got.as_ref() == data.as_slice(),
            "resumed upload has exactly the pushed bytes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upload_continues_on_another_node() {
    let Some(backend) = Backend::postgres_s3().await else {
        return;
    };
    let a = Server::start(backend.clone()).await;
    let b = Server::start(backend).await;
    a.create_project("multi", false).await;
    let repo = "multi/app";
    // 20 MiB in three chunks: parts cross the S3 part size on both nodes.
    let data = random_bytes(20 * 1024 * 1024 + 5);
    let digest = Digest::sha256(&data);
    let res = a
        .admin(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = location(&res);
    let cuts = [0usize, 9 * 1024 * 1024 + 1, 17 * 1024 * 1024, data.len()];
    for (i, node) in [&a, &b, &a].iter().enumerate() {
        let res = node
            .admin(Method::PATCH, &loc)
            .header("content-range", format!("{}-{}", cuts[i], cuts[i + 1] - 1))
            .body(data[cuts[i]..cuts[i + 1]].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            202,
            "chunk {i}: {}",
            res.text().await.unwrap()
        );
        let st = b.admin(Method::GET, &loc).send().await.unwrap();
        assert_eq!(
            header(&st, "range"),
            Some(format!("0-{}", cuts[i + 1] - 1)),
            "both nodes see the progress"
        );
    }
    let res = b
        .admin(Method::PUT, &with_query(&loc, &format!("digest={digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let got = a
        .admin(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(got.as_ref() == data.as_slice());
    // a manifest pushed on one node is served by the other
    let (md, body, _) = b.push_image(repo, "v1", 2).await;
    let res = a
        .admin(Method::GET, &format!("/v2/{repo}/manifests/v1"))
        .header("accept", media::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&res, "docker-content-digest").as_deref(),
        Some(md.as_str())
    );
    assert_eq!(res.bytes().await.unwrap(), body);
    let v = a
        .get_json("/api/v2.0/projects/multi/repositories/app/artifacts?with_tag=true")
        .await;
    assert_eq!(v[0]["tags"][0]["name"], "v1");
}

/// Pushes images until `stop`; records each tag whose manifest PUT was
/// acknowledged with 201, with its manifest digest.
async fn pusher(
    s: Arc<ServerRef>,
    id: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeMap<String, Digest>>>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let repo = format!("crash/r{}", id % 4);
        let tag = format!("c{id}-{n}");
        let mut descs = vec![];
        let mut ok = true;
        for i in 0..3 {
            // one layer shared by everyone, the others unique
            let data: Vec<u8> = if i == 0 {
                vec![7u8; 300_000]
            } else {
                random_bytes(50_000 + i * 4096 + id * 17)
            };
            let d = Digest::sha256(&data);
            let url = format!("http://{}/v2/{repo}/blobs/uploads/?digest={d}", s.addr);
            match http
                .post(&url)
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .body(data.clone())
                .send()
                .await
            {
                Ok(r) if r.status() == StatusCode::CREATED => descs.push((d, data.len())),
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let config =
            serde_json::json!({ "architecture": "amd64", "os": "linux", "tag": tag }).to_string();
        let dc = Digest::sha256(config.as_bytes());
        let url = format!("http://{}/v2/{repo}/blobs/uploads/?digest={dc}", s.addr);
        match http
            .post(&url)
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .body(config.clone())
            .send()
            .await
        {
            Ok(r) if r.status() == StatusCode::CREATED => {}
            _ => continue,
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": { "mediaType": media::OCI_CONFIG, "digest": dc.as_str(), "size": config.len() },
            "layers": descs.iter().map(|(d, n)| serde_json::json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.as_str(), "size": n })).collect::<Vec<_>>(),
        })
        .to_string();
        let url = format!("http://{}/v2/{repo}/manifests/{tag}", s.addr);
        if let Ok(r) = http
            .put(&url)
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .header("content-type", media::OCI_MANIFEST)
            .body(manifest.clone())
            .send()
            .await
        {
            if r.status() == StatusCode::CREATED {
                acked
                    .lock()
                    .unwrap()
                    .insert(format!("{repo}:{tag}"), Digest::sha256(manifest.as_bytes()));
            }
        }
    }
}

struct ServerRef {
    addr: String,
}

async fn crash_during_concurrent_pushes(s: &Server) {
    let backend = match &s.backend {
        Backend::Embedded => Backend::Embedded,
        Backend::Shared { .. } => match Backend::postgres_s3().await {
            Some(b) => b,
            None => return,
        },
    };
    let mut s = Server::start(backend).await;
    s.create_project("crash", false).await;
    let acked: Arc<Mutex<BTreeMap<String, Digest>>> = Arc::default();
    for round in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let server = Arc::new(ServerRef {
            addr: s.addr.clone(),
        });
        let tasks: Vec<_> = (0..16)
            .map(|id| {
                tokio::spawn(pusher(
                    server.clone(),
                    id + round * 100,
                    stop.clone(),
                    acked.clone(),
                ))
            })
            .collect();
        // Kill while pushes are in flight: once this round has had some
        // acknowledged, after a little more time.
        let before = acked.lock().unwrap().len();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while acked.lock().unwrap().len() < before + 8 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300 + round as u64 * 250)).await;
        s.kill();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        s.start_again().await;
        let acked_now = acked.lock().unwrap().clone();
        assert!(
            !acked_now.is_empty(),
            "round {round}: some pushes were acknowledged"
        );
        verify_acknowledged(&s, &acked_now).await;
        if let Backend::Embedded = s.backend {
            verify_no_partial_blobs(&s);
        }
    }
}

/// Every acknowledged tag resolves to its manifest, whose blobs exist and
/// hash to their digests.
async fn verify_acknowledged(s: &Server, acked: &BTreeMap<String, Digest>) {
    let mut checked = std::collections::BTreeSet::new();
    for (reference, digest) in acked {
        let (repo, tag) = reference.split_once(':').unwrap();
        let res = s
            .admin(Method::GET, &format!("/v2/{repo}/manifests/{tag}"))
            .header("accept", media::OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "acknowledged {reference} lost after kill -9"
        );
        let body = res.bytes().await.unwrap();
        assert_eq!(
            &Digest::sha256(&body),
            digest,
            "{reference} points at what was pushed"
        );
        let m: Value = serde_json::from_slice(&body).unwrap();
        let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_owned()];
        blobs.extend(
            m["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["digest"].as_str().unwrap().to_owned()),
        );
        for b in blobs {
            if !checked.insert((repo.to_owned(), b.clone())) {
                continue;
            }
            let data = s
                .admin(Method::GET, &format!("/v2/{repo}/blobs/{b}"))
                .send()
                .await
                .unwrap();
            assert_eq!(data.status(), 200, "{reference}: blob {b} missing");
            let data: Bytes = data.bytes().await.unwrap();
            assert_eq!(
                Digest::sha256(&data).as_str(),
                b,
                "{reference}: blob {b} is corrupt"
            );
        }
    }
}

/// On the filesystem backend, every file under `blobs/` hashes to its name:
/// a crash never leaves a partial blob where readers find it.
fn verify_no_partial_blobs(s: &Server) {
    let root = s.data_dir().join("blobs").join("blobs").join("sha256");
    let mut n = 0;
    for prefix in std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display())) {
        for f in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let f = f.unwrap().path();
            let data = std::fs::read(&f).unwrap();
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(
                Digest::sha256(&data).hex(),
                name,
                "partial or corrupt blob file {}",
                f.display()
            );
            n += 1;
        }
    }
    assert!(n > 0);
}

async fn concurrent_writers(s: &Server) {
    s.create_project("conc", false).await;
    s.create_project("conc2", false).await;
    // 16 clients push the same blob into 5 repositories of 2 projects at once.
    let data = Arc::new(random_bytes(2 * 1024 * 1024));
    let digest = Digest::sha256(&data);
    let mut tasks = vec![];
    for i in 0..16 {
        let repo = if i % 2 == 0 {
            format!("conc/r{}", i % 3)
        } else {
            format!("conc2/r{}", i % 2)
        };
        let url = s.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}"));
        let http = s.http.clone();
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .body(data.to_vec())
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    for repo in ["conc/r0", "conc/r1", "conc/r2", "conc2/r1"] {
        let got = s
            .admin(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(got.as_ref() == data.as_slice(), "{repo}");
    }
    if let Backend::Embedded = s.backend {
        let stored: Vec<_> = walk(&s.data_dir().join("blobs").join("blobs"));
        assert_eq!(
            stored.iter().filter(|p| p.ends_with(digest.hex())).count(),
            1,
            "stored once"
        );
    }

    // Two PATCHes on one session at once: one is refused, nothing interleaves.
    let res = s
        .admin(Method::POST, "/v2/conc/p/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = location(&res);
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
    let slow_data = random_bytes(300_000);
    let http = s.http.clone();
    let url = s.url(&loc);
    let slow = tokio::spawn(async move {
        http.patch(url)
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .body(reqwest::Body::wrap_stream(rx))
            .send()
            .await
            .unwrap()
            .status()
    });
    tx.unbounded_send(Ok(Bytes::copy_from_slice(&slow_data[..100_000])))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let fast = s
        .admin(Method::PATCH, &loc)
        .body(random_bytes(1000))
        .send()
        .await
        .unwrap();
    assert_eq!(
        fast.status(),
        416,
        "a second writer on a busy session is refused"
    );
    tx.unbounded_send(Ok(Bytes::copy_from_slice(&slow_data[100_000..])))
        .unwrap();
    drop(tx);
    assert_eq!(slow.await.unwrap(), StatusCode::ACCEPTED);
    let d = Digest::sha256(&slow_data);
    let res = s
        .admin(Method::PUT, &with_query(&loc, &format!("digest={d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        201,
        "the session holds exactly the slow writer's bytes"
    );

    // Two clients push different manifests to one tag at once.
    let cfg = br#"{"architecture":"amd64","os":"linux"}"#;
    let dc = s.push_blob("conc/tagrace", cfg).await;
    let mut bodies = vec![];
    for i in 0..8 {
        bodies.push(
            serde_json::json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
                "config": { "mediaType": media::OCI_CONFIG, "digest": dc.as_str(), "size": cfg.len() }, "layers": [],
                "annotations": { "n": i.to_string() } })
            .to_string(),
        );
    }
    let mut tasks = vec![];
    for b in &bodies {
        let http = s.http.clone();
        let url = s.url("/v2/conc/tagrace/manifests/latest");
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            http.put(url)
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .header("content-type", media::OCI_MANIFEST)
                .body(b)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    let res = s
        .admin(Method::GET, "/v2/conc/tagrace/manifests/latest")
        .header("accept", media::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    let got = res.text().await.unwrap();
    assert!(
        bodies.contains(&got),
        "the tag ends on one complete manifest"
    );
    assert_eq!(
        s.get_json("/v2/conc/tagrace/tags/list").await["tags"],
        serde_json::json!(["latest"])
    );
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out
}
