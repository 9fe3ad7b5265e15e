//! Storage quotas: usage counted once per project, enforced on upload
//! completion, mount and manifest push with Harbor's 403 message, freed by
//! deletes, changed through `/quotas`, and never overrun by parallel pushes.

use berth_oci::Digest;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

async fn create_limited(s: &Server, name: &str, limit: i64) -> i64 {
    let res = s
        .admin(Method::POST, "/api/v2.0/projects")
        .json(&json!({ "project_name": name, "storage_limit": limit }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    s.get_json(&format!("/api/v2.0/projects/{name}")).await["project_id"]
        .as_i64()
        .unwrap()
}

async fn quota(s: &Server, id: i64) -> Value {
    s.get_json(&format!("/api/v2.0/quotas/{id}")).await
}

async fn used(s: &Server, id: i64) -> i64 {
    quota(s, id).await["used"]["storage"].as_i64().unwrap()
}

/// POST + PUT of one blob; the PUT's response.
async fn upload(s: &Server, repo: &str, data: &[u8]) -> reqwest::Response {
    let res = s
        .admin(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let loc = location(&res);
    s.admin(
        Method::PUT,
        &with_query(&loc, &format!("digest={}", Digest::sha256(data))),
    )
    .header("content-type", "application/octet-stream")
    .body(data.to_vec())
    .send()
    .await
    .unwrap()
}

async fn denied_message(res: reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "DENIED", "{v}");
    v["errors"][0]["message"].as_str().unwrap().to_owned()
}

fn manifest(config: (&Digest, usize), layers: &[(&Digest, usize)]) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": berth_oci::media::OCI_MANIFEST,
        "config": { "mediaType": berth_oci::media::OCI_CONFIG, "digest": config.0.as_str(), "size": config.1 },
        "layers": layers.iter().map(|(d, n)| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.as_str(), "size": n
        })).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

async fn enforced_and_counted_once(s: &Server) {
    let id = create_limited(s, "q", 10_000).await;
    let q = quota(s, id).await;
    assert_eq!(q["hard"]["storage"], 10_000);
    assert_eq!(q["used"]["storage"], 0);
    assert_eq!(q["ref"]["name"], "q");
    assert_eq!(q["id"], id);

    // 6000 bytes fit; the same blob in a second repository of the project
    // is not counted again, by upload or by mount.
    let a = random_bytes(6000);
    assert_eq!(upload(s, "q/one", &a).await.status(), StatusCode::CREATED);
    assert_eq!(used(s, id).await, 6000);
    assert_eq!(upload(s, "q/two", &a).await.status(), StatusCode::CREATED);
    let da = Digest::sha256(&a);
    let res = s
        .admin(
            Method::POST,
            &format!("/v2/q/three/blobs/uploads/?mount={da}&from=q/one"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(used(s, id).await, 6000);

    // Another 6000 would pass the limit: Harbor's 403 and message; the
    // blob is not linked.
    let b = random_bytes(6000);
    let msg = denied_message(upload(s, "q/one", &b).await).await;
    assert_eq!(
        msg,
        "adding 5.9 KiB of storage resource, which when updated to current usage of 5.9 KiB will exceed the configured upper limit of 9.8 KiB."
    );
    let db = Digest::sha256(&b);
    let head = s
        .admin(Method::HEAD, &format!("/v2/q/one/blobs/{db}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    assert_eq!(used(s, id).await, 6000);

    // The same blob pushed to another project counts there, not here.
    create_limited(s, "q2", -1).await;
    assert_eq!(upload(s, "q2/x", &b).await.status(), StatusCode::CREATED);
    // ... and mounting it here is refused by this project's quota.
    let res = s
        .admin(
            Method::POST,
            &format!("/v2/q/one/blobs/uploads/?mount={db}&from=q2/x"),
        )
        .send()
        .await
        .unwrap();
    assert!(denied_message(res).await.starts_with("adding 5.9 KiB"));

    // A manifest counts its own bytes.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    assert_eq!(
        upload(s, "q/one", config).await.status(),
        StatusCode::CREATED
    );
    let dc = Digest::sha256(config);
    let body = manifest((&dc, config.len()), &[(&da, a.len())]);
    let res = s
        .put_manifest("q/one", "v1", berth_oci::media::OCI_MANIFEST, &body)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let expected = (a.len() + config.len() + body.len()) as i64;
    assert_eq!(used(s, id).await, expected);
    let summary = s.get_json("/api/v2.0/projects/q/summary").await;
    assert_eq!(summary["quota"]["used"]["storage"], expected);

    // A manifest whose bytes no longer fit is refused as a whole.
    s.admin(Method::PUT, &format!("/api/v2.0/quotas/{id}"))
        .json(&json!({ "hard": { "storage": expected } }))
        .send()
        .await
        .unwrap();
    let body2 = manifest((&dc, config.len()), &[(&da, a.len()), (&da, a.len())]);
    let res = s
        .put_manifest("q/one", "v2", berth_oci::media::OCI_MANIFEST, &body2)
        .await;
    assert!(denied_message(res)
        .await
        .contains("will exceed the configured upper limit"));
    let res = s
        .admin(Method::GET, "/v2/q/one/manifests/v2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Deleting the artifact frees what only it used: the manifest, and the
    // blobs no other artifact of the project references.
    let md = Digest::sha256(&body);
    let res = s
        .admin(Method::DELETE, &format!("/v2/q/one/manifests/{md}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(used(s, id).await, 0);

    // The quota events were recorded in the audit log (written in batches).
    let mut logs = vec![];
    for _ in 0..50 {
        logs = s
            .get_json("/api/v2.0/auditlog-exts?q=operation%3Dexceed&page_size=50")
            .await
            .as_array()
            .unwrap()
            .clone();
        if logs.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert!(logs.iter().all(|l| l["resource_type"] == "quota"));
    assert!(logs.iter().all(|l| l["operation_result"] == false));
    assert!(logs.iter().all(|l| l["operation_description"]
        .as_str()
        .unwrap()
        .contains("will exceed the configured upper limit")));
}

async fn quota_api(s: &Server) {
    let id = create_limited(s, "qa", 1 << 30).await;
    create_limited(s, "qb", -1).await;
    // System admins list every quota, sorted as asked.
    let res = s
        .admin(
            Method::GET,
            "/api/v2.0/quotas?sort=-hard.storage&page_size=100",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        header(&res, "x-total-count")
            .unwrap()
            .parse::<i64>()
            .unwrap()
            >= 3
    );
    let all: Vec<Value> = res.json().await.unwrap();
    assert_eq!(all[0]["ref"]["name"], "qa");
    let one = s
        .get_json(&format!(
            "/api/v2.0/quotas?reference=project&reference_id={id}"
        ))
        .await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["hard"]["storage"], 1 << 30);

    // A member reads its project's quota, but cannot list all or change one.
    s.create_user("qdev", "Qdev-12345").await;
    s.add_member("qa", "qdev", 2).await;
    let dev = |m: Method, p: &str| s.basic("qdev", "Qdev-12345", m, p);
    let res = dev(Method::GET, &format!("/api/v2.0/quotas/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = dev(Method::GET, "/api/v2.0/quotas").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = dev(Method::PUT, &format!("/api/v2.0/quotas/{id}"))
        .json(&json!({ "hard": { "storage": -1 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let qb = s.get_json("/api/v2.0/projects/qb").await["project_id"]
        .as_i64()
        .unwrap();
    let res = dev(Method::GET, &format!("/api/v2.0/quotas/{qb}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Bad input: 400 with Harbor's envelope; unknown quota: 404.
    for bad in [
        json!({ "hard": { "storage": 0 } }),
        json!({ "hard": { "count": 5 } }),
        json!({ "hard": { "storage": "x" } }),
        json!({}),
    ] {
        let res = s
            .admin(Method::PUT, &format!("/api/v2.0/quotas/{id}"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["errors"][0]["code"], "BAD_REQUEST");
    }
    let res = s
        .admin(Method::GET, "/api/v2.0/quotas/999999")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let res = s
        .admin(Method::PUT, &format!("/api/v2.0/quotas/{id}"))
        .json(&json!({ "hard": { "storage": 2048 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(quota(s, id).await["hard"]["storage"], 2048);
}

/// Many clients push distinct blobs at once into a project with room for
/// only some: exactly as many succeed as fit, and usage never passes the
/// limit.
async fn parallel_pushes_never_overrun(s: &Server) {
    const SIZE: usize = 20_000;
    const FIT: i64 = 7;
    let id = create_limited(s, "race", FIT * SIZE as i64 + SIZE as i64 / 2).await;
    let statuses = futures::future::join_all((0..24).map(|i| async move {
        upload(s, &format!("race/r{}", i % 3), &random_bytes(SIZE))
            .await
            .status()
    }))
    .await;
    let mut created = 0;
    let mut denied = 0;
    for status in statuses {
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::FORBIDDEN => denied += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, FIT, "exactly the blobs that fit were accepted");
    assert_eq!(denied, 24 - FIT);
    assert_eq!(used(s, id).await, FIT * SIZE as i64);
    // Crossing 85 % raised one QUOTA_WARNING, recorded in the audit log.
    let mut warnings = 0;
    for _ in 0..50 {
        let logs = s
            .get_json("/api/v2.0/projects/race/auditlog-exts?q=operation%3Dwarning")
            .await;
        warnings = logs.as_array().unwrap().len();
        if warnings > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(warnings, 1);
}

/// Harbor's artifact copy: counted against the target project's quota,
/// refused over it, subject to the target's immutability rules and to pull
/// access on the source.
async fn artifact_copy(s: &Server) {
    s.create_project("csrc", false).await;
    let (digest, body, blobs) = s.push_image("csrc/app", "v1", 2).await;
    // A signature of it (an accessory: a referrer with a subject).
    let empty = s.push_blob("csrc/app", b"{}").await;
    let sig_layer = s.push_blob("csrc/app", &random_bytes(300)).await;
    let sig = json!({
        "schemaVersion": 2,
        "mediaType": berth_oci::media::OCI_MANIFEST,
        "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.as_str(), "size": 2 },
        "layers": [{ "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": sig_layer.as_str(), "size": 300 }],
        "subject": { "mediaType": berth_oci::media::OCI_MANIFEST, "digest": digest.as_str(), "size": body.len() },
    })
    .to_string();
    let sig_digest = Digest::sha256(sig.as_bytes());
    let res = s
        .put_manifest(
            "csrc/app",
            sig_digest.as_str(),
            berth_oci::media::OCI_MANIFEST,
            sig.as_bytes(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let dst = create_limited(s, "cdst", 1000).await;
    let copy = |from: String| {
        s.admin(
            Method::POST,
            &format!("/api/v2.0/projects/cdst/repositories/app/artifacts?from={from}"),
        )
        .send()
    };
    let res = copy("csrc/app:v1".into()).await.unwrap();
    assert!(denied_message(res)
        .await
        .contains("will exceed the configured upper limit of 1000 B"));
    // The refused copy left nothing linked or counted.
    assert_eq!(used(s, dst).await, 0, "a refused copy counts nothing");
    for b in &blobs {
        let st = s
            .admin(Method::HEAD, &format!("/v2/cdst/app/blobs/{b}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, StatusCode::NOT_FOUND, "{b} is not linked to cdst/app");
    }
    s.admin(Method::PUT, &format!("/api/v2.0/quotas/{dst}"))
        .json(&json!({ "hard": { "storage": -1 } }))
        .send()
        .await
        .unwrap();
    let res = copy("csrc/app:v1".into()).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    assert!(location(&res).ends_with(&format!("/repositories/app/artifacts/{digest}")));
    let res = s
        .admin(Method::GET, "/v2/cdst/app/manifests/v1")
        .header("accept", berth_oci::media::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&res, "docker-content-digest").as_deref(),
        Some(digest.as_str())
    );
    for b in &blobs {
        let st = s
            .admin(Method::GET, &format!("/v2/cdst/app/blobs/{b}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, StatusCode::OK);
    }
    let src = s.get_json("/api/v2.0/projects/csrc").await["project_id"]
        .as_i64()
        .unwrap();
    let sizes = used(s, src).await;
    assert_eq!(
        used(s, dst).await,
        sizes,
        "the copy counts what the source holds"
    );
    assert!(sizes > body.len() as i64);
    // The signature came along.
    let referrers = s
        .get_json(&format!("/v2/cdst/app/referrers/{digest}"))
        .await;
    assert_eq!(
        referrers["manifests"][0]["digest"],
        sig_digest.as_str(),
        "{referrers}"
    );
    // By digest, again: nothing new to count.
    let res = copy(format!("csrc/app@{digest}")).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(used(s, dst).await, sizes);
    // An immutable tag of the target cannot be moved by a copy.
    let res = s
        .admin(Method::POST, "/api/v2.0/projects/cdst/immutabletagrules")
        .json(&json!({
            "tag_selectors": [{ "kind": "doublestar", "decoration": "matches", "pattern": "v1" }],
            "scope_selectors": { "repository": [{ "kind": "doublestar", "decoration": "repoMatches", "pattern": "**" }] },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let (_, _, new_blobs) = s.push_image("csrc/app", "v1", 1).await;
    let res = copy("csrc/app:v1".into()).await.unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        used(s, dst).await,
        sizes,
        "the refused copy counted nothing"
    );
    for b in &new_blobs {
        let st = s
            .admin(Method::HEAD, &format!("/v2/cdst/app/blobs/{b}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, StatusCode::NOT_FOUND, "{b} was unlinked again");
    }
    // Pull access on the source is needed; bad references are refused.
    s.create_user("copier", "Copier-12345").await;
    s.add_member("cdst", "copier", 2).await;
    let res = s
        .basic(
            "copier",
            "Copier-12345",
            Method::POST,
            "/api/v2.0/projects/cdst/repositories/app/artifacts?from=csrc/app:v1",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    for bad in ["", "csrc/app", "csrc/app:v9"] {
        let res = copy(bad.into()).await.unwrap();
        assert!(
            matches!(res.status().as_u16(), 400 | 404),
            "{bad}: {}",
            res.status()
        );
    }
}

/// `quota_per_project_enable = false` lifts every limit (usage is still
/// counted and no quota events are raised); switching it back on
/// enforces the limits again, on the counted usage.
async fn switched_off_by_configuration(s: &Server) {
    let id = create_limited(s, "qoff", 5_000).await;
    let set = |on: bool| async move {
        let res = s
            .admin(Method::PUT, "/api/v2.0/configurations")
            .json(&json!({ "quota_per_project_enable": on }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    };
    set(false).await;
    let cfg = s.get_json("/api/v2.0/configurations").await;
    assert_eq!(cfg["quota_per_project_enable"]["value"], false, "{cfg}");
    for _ in 0..2 {
        let res = upload(s, "qoff/app", &random_bytes(4_000)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    assert_eq!(used(s, id).await, 8_000);
    assert_eq!(quota(s, id).await["hard"]["storage"], 5_000);

    set(true).await;
    let msg = denied_message(upload(s, "qoff/app", &random_bytes(100)).await).await;
    assert!(msg.contains("current usage of 7.8 KiB"), "{msg}");
    assert_eq!(used(s, id).await, 8_000);

    // The audit log (written in order, in batches) holds that refusal and
    // nothing from the pushes while quotas were off, though they crossed
    // 85 % and the limit.
    let mut logs = vec![];
    for _ in 0..50 {
        logs = s
            .get_json("/api/v2.0/auditlog-exts?q=resource_type%3Dquota&page_size=50")
            .await
            .as_array()
            .unwrap()
            .clone();
        if !logs.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["operation"], "exceed", "{logs:?}");
}

crate::on_backends!(
    switched_off_by_configuration,
    enforced_and_counted_once,
    quota_api,
    parallel_pushes_never_overrun,
    artifact_copy
);
