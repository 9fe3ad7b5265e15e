//! Berth's own OCI distribution conformance suite: every case listed in
//! `shared/reference/oci-conformance-cases.md` (the legacy four workflows,
//! the newer suite's blob and data-set groups, and the easy-to-miss
//! behaviours), run against both backend pairs.

use berth_oci::{media, Algorithm, Digest};
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

crate::on_backends!(
    workflow_pull,
    workflow_push,
    workflow_content_discovery,
    workflow_content_management,
    blobs_sha256,
    blobs_sha512,
    blob_range_requests,
    blob_bad_digests,
    manifest_data_sets,
    manifest_validation,
    listing_pagination,
    streamed_bodies_without_length,
    malformed_input_never_5xx,
);

const DUMMY: &str = "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
const EMPTY_JSON: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

async fn post(s: &Server, repo: &str) -> String {
    let res = s
        .admin(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let loc = location(&res);
    assert!(
        loc.starts_with(&format!("/v2/{repo}/blobs/uploads/")),
        "{loc}"
    );
    loc
}

async fn patch(s: &Server, loc: &str, data: &[u8], range: Option<(u64, u64)>) -> reqwest::Response {
    let mut r = s
        .admin(Method::PATCH, loc)
        .header("content-type", "application/octet-stream")
        .body(data.to_vec());
    if let Some((a, b)) = range {
        r = r.header("content-range", format!("{a}-{b}"));
    }
    r.send().await.unwrap()
}

async fn put_final(
    s: &Server,
    loc: &str,
    digest: &Digest,
    body: Option<&[u8]>,
    range: Option<(u64, u64)>,
) -> reqwest::Response {
    let mut r = s
        .admin(Method::PUT, &with_query(loc, &format!("digest={digest}")))
        .header("content-type", "application/octet-stream");
    r = match body {
        Some(b) => r.body(b.to_vec()),
        None => r.header("content-length", "0"),
    };
    if let Some((a, b)) = range {
        r = r.header("content-range", format!("{a}-{b}"));
    }
    r.send().await.unwrap()
}

async fn get_bytes(s: &Server, path: &str) -> (StatusCode, Bytes) {
    let res = s.admin(Method::GET, path).send().await.unwrap();
    let st = res.status();
    (st, res.bytes().await.unwrap())
}

async fn status(s: &Server, method: Method, path: &str) -> u16 {
    s.admin(method, path)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn config_blob(author: &str) -> Vec<u8> {
    json!({ "author": author, "architecture": "amd64", "os": "linux", "rootfs": { "type": "layers", "diff_ids": [] } })
        .to_string()
        .into_bytes()
}

/// An image manifest for `config` and `layers`, with the `data` field and
/// an unknown field on the config descriptor, as the conformance suite does.
fn image_manifest(config: (&Digest, usize), layers: &[(Digest, usize)]) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": { "mediaType": media::OCI_CONFIG, "digest": config.0.as_str(), "size": config.1, "data": "e30=", "newUnspecifiedField": "x" },
        "layers": layers.iter().map(|(d, n)| json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.as_str(), "size": n })).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}

// ---- A.3 ------------------------------------------------------------------

async fn workflow_pull(s: &Server) {
    s.create_project("conf", false).await;
    let repo = "conf/pull";
    let c0 = config_blob("a");
    let c1 = config_blob("b");
    let layer = random_bytes(1234);
    let d0 = s.push_blob(repo, &c0).await;
    let d1 = s.push_blob(repo, &c1).await;
    let dl = s.push_blob(repo, &layer).await;
    let m0 = image_manifest((&d0, c0.len()), &[(dl.clone(), layer.len())]);
    let m1 = image_manifest((&d1, c1.len()), &[(dl.clone(), layer.len())]);
    let md0 = Digest::sha256(&m0);
    let md1 = Digest::sha256(&m1);
    assert_eq!(
        s.put_manifest(repo, "tagtest0", media::OCI_MANIFEST, &m0)
            .await
            .status(),
        201
    );
    assert_eq!(
        s.put_manifest(repo, md1.as_str(), media::OCI_MANIFEST, &m1)
            .await
            .status(),
        201
    );

    assert_eq!(
        status(s, Method::HEAD, &format!("/v2/{repo}/blobs/{DUMMY}")).await,
        404
    );
    let res = s
        .admin(Method::HEAD, &format!("/v2/{repo}/blobs/{d0}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "docker-content-digest").as_deref(),
        Some(d0.as_str())
    );
    assert_eq!(header(&res, "content-length"), Some(c0.len().to_string()));
    assert_eq!(
        status(s, Method::GET, &format!("/v2/{repo}/blobs/{DUMMY}")).await,
        404
    );
    let (st, body) = get_bytes(s, &format!("/v2/{repo}/blobs/{d0}")).await;
    assert_eq!((st.as_u16(), body.as_ref()), (200, c0.as_slice()));
    assert_eq!(
        status(
            s,
            Method::HEAD,
            &format!("/v2/{repo}/manifests/.INVALID_MANIFEST_NAME")
        )
        .await,
        404
    );
    for d in [&md0, &md1] {
        let res = s
            .admin(Method::HEAD, &format!("/v2/{repo}/manifests/{d}"))
            .header("accept", media::OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(&res, "docker-content-digest").as_deref(),
            Some(d.as_str())
        );
    }
    let res = s
        .admin(Method::HEAD, &format!("/v2/{repo}/manifests/tagtest0"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "docker-content-digest").as_deref(),
        Some(md0.as_str())
    );
    assert_eq!(header(&res, "content-length"), Some(m0.len().to_string()));
    assert_eq!(
        status(
            s,
            Method::GET,
            &format!("/v2/{repo}/manifests/.INVALID_MANIFEST_NAME")
        )
        .await,
        404
    );
    for (r, body) in [(md0.as_str(), &m0), (md1.as_str(), &m1), ("tagtest0", &m0)] {
        let res = s
            .admin(Method::GET, &format!("/v2/{repo}/manifests/{r}"))
            .header("accept", media::OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(&res, "content-type").as_deref(),
            Some(media::OCI_MANIFEST)
        );
        assert_eq!(
            res.bytes().await.unwrap().as_ref(),
            body.as_slice(),
            "exact stored bytes"
        );
    }
    // error body with a spec code
    let res = s
        .admin(
            Method::GET,
            &format!("/v2/{repo}/manifests/sha256:totallywrong"),
        )
        .body("blablabla")
        .send()
        .await
        .unwrap();
    let st = res.status().as_u16();
    assert!(st == 400 || st == 404, "{st}");
    let v: Value = res.json().await.unwrap();
    assert!([
        "MANIFEST_UNKNOWN",
        "DIGEST_INVALID",
        "NAME_UNKNOWN",
        "MANIFEST_INVALID"
    ]
    .contains(&v["errors"][0]["code"].as_str().unwrap()));
    // teardown
    for d in [&md0, &md1] {
        assert_eq!(
            status(s, Method::DELETE, &format!("/v2/{repo}/manifests/{d}")).await,
            202
        );
    }
    for d in [&d0, &d1, &dl] {
        assert_eq!(
            status(s, Method::DELETE, &format!("/v2/{repo}/blobs/{d}")).await,
            202
        );
    }
}

// ---- A.4 ------------------------------------------------------------------

async fn workflow_push(s: &Server) {
    s.create_project("conf", false).await;
    let repo = "conf/push";
    let cross = "conf/cross";
    let blob_a = random_bytes(42);
    let da = Digest::sha256(&blob_a);
    // 1-2: streamed
    let loc = post(s, repo).await;
    let res = patch(s, &loc, &blob_a, None).await;
    assert_eq!(res.status(), 202);
    let loc = location(&res);
    let res = put_final(s, &loc, &da, None, None).await;
    assert_eq!(res.status(), 201);
    assert_eq!(location(&res), format!("/v2/{repo}/blobs/{da}"));
    // 3-5: monolithic POST with digest
    assert_eq!(
        status(s, Method::GET, &format!("/v2/{repo}/blobs/{DUMMY}")).await,
        404
    );
    let c1 = config_blob("push");
    let d1 = Digest::sha256(&c1);
    let res = s
        .admin(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={d1}"),
        )
        .header("content-type", "application/octet-stream")
        .body(c1.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(!location(&res).is_empty());
    assert_eq!(get_bytes(s, &format!("/v2/{repo}/blobs/{d1}")).await.0, 200);
    // 6-10: POST + PUT
    let layer = random_bytes(2000);
    let dl = Digest::sha256(&layer);
    let loc = post(s, repo).await;
    let res = put_final(s, &loc, &dl, Some(&layer), None).await;
    assert_eq!(res.status(), 201);
    assert!(!location(&res).is_empty());
    assert_eq!(
        get_bytes(s, &format!("/v2/{repo}/blobs/{dl}"))
            .await
            .1
            .as_ref(),
        layer.as_slice()
    );
    // 11-16: chunked
    let blob_b = random_bytes(42);
    let db = Digest::sha256(&blob_b);
    let loc = post(s, repo).await;
    assert_eq!(
        patch(s, &loc, &blob_b[22..], Some((22, 41))).await.status(),
        416,
        "out-of-order first chunk"
    );
    let loc = post(s, repo).await;
    let res = patch(s, &loc, &blob_b[..22], Some((0, 21))).await;
    assert_eq!(res.status(), 202);
    assert_eq!(header(&res, "range").as_deref(), Some("0-21"));
    assert_eq!(
        patch(s, &loc, &blob_b[..22], Some((0, 21))).await.status(),
        416,
        "retrying the same chunk"
    );
    let res = s.admin(Method::GET, &loc).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(header(&res, "range").as_deref(), Some("0-21"));
    let loc = location(&res);
    let res = patch(s, &loc, &blob_b[22..], Some((22, 41))).await;
    assert_eq!(res.status(), 202);
    assert_eq!(header(&res, "range").as_deref(), Some("0-41"));
    let loc = location(&res);
    assert_eq!(put_final(s, &loc, &db, None, None).await.status(), 201);
    assert_eq!(
        get_bytes(s, &format!("/v2/{repo}/blobs/{db}"))
            .await
            .1
            .as_ref(),
        blob_b.as_slice()
    );
    // 17-20: mounts
    let res = s
        .admin(
            Method::POST,
            &format!("/v2/{cross}/blobs/uploads/?mount={DUMMY}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert!(location(&res).starts_with(&format!("/v2/{cross}/blobs/uploads/")));
    let res = s
        .admin(
            Method::POST,
            &format!("/v2/{cross}/blobs/uploads/?mount={da}&from={repo}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(location(&res), format!("/v2/{cross}/blobs/{da}"));
    assert_eq!(
        get_bytes(s, &location(&res)).await.1.as_ref(),
        blob_a.as_slice()
    );
    // Without `from`, a known blob is not mounted: a normal session.
    let res = s
        .admin(
            Method::POST,
            &format!("/v2/{cross}/blobs/uploads/?mount={db}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    // 23-26: manifests
    assert_eq!(
        status(
            s,
            Method::GET,
            &format!("/v2/{repo}/manifests/.INVALID_MANIFEST_NAME")
        )
        .await,
        404
    );
    let m = image_manifest((&d1, c1.len()), &[(dl.clone(), layer.len())]);
    let md = Digest::sha256(&m);
    for t in ["test0", "test1", "test2", "test3"] {
        let res = s.put_manifest(repo, t, media::OCI_MANIFEST, &m).await;
        assert_eq!(res.status(), 201);
        assert_eq!(location(&res), format!("/v2/{repo}/manifests/{md}"));
        assert_eq!(
            header(&res, "docker-content-digest").as_deref(),
            Some(md.as_str())
        );
    }
    let empty = image_manifest((&d1, c1.len()), &[]);
    assert_eq!(
        s.put_manifest(repo, "emptylayer", media::OCI_MANIFEST, &empty)
            .await
            .status(),
        201
    );
    assert_eq!(
        get_bytes(s, &format!("/v2/{repo}/manifests/{md}")).await.0,
        200
    );
}

// ---- A.5 ------------------------------------------------------------------

async fn workflow_content_discovery(s: &Server) {
    s.create_project("conf", false).await;
    let repo = "conf/discovery";
    let c2 = config_blob("disc");
    let layer = random_bytes(100);
    let d2 = s.push_blob(repo, &c2).await;
    let dl = s.push_blob(repo, &layer).await;
    let m2 = image_manifest((&d2, c2.len()), &[(dl.clone(), layer.len())]);
    let tags = [
        "test0", "test1", "test2", "test3", "TEST0", "TEST1", "TEST2", "TEST3",
    ];
    for t in tags {
        assert_eq!(
            s.put_manifest(repo, t, media::OCI_MANIFEST, &m2)
                .await
                .status(),
            201
        );
    }
    // referrers set
    let empty = s.push_blob(repo, b"{}").await;
    assert_eq!(empty.as_str(), EMPTY_JSON);
    let c4 = config_blob("subject");
    let d4 = s.push_blob(repo, &c4).await;
    let m4 = image_manifest((&d4, c4.len()), &[(dl.clone(), layer.len())]);
    let md4 = Digest::sha256(&m4);
    let c3 = config_blob("missing-subject");
    let d3 = s.push_blob(repo, &c3).await;
    let m3 = image_manifest((&d3, c3.len()), &[(dl.clone(), layer.len())]);
    let md3 = Digest::sha256(&m3);
    let ref_blob = random_bytes(20);
    let drb = s.push_blob(repo, &ref_blob).await;
    let ann = |v: &str| json!({ "org.opencontainers.conformance.test": v });
    let subject = |d: &Digest, m: &[u8]| json!({ "mediaType": media::OCI_MANIFEST, "digest": d.as_str(), "size": m.len() });
    let layer_desc = json!([{ "mediaType": "application/vnd.nhl.peanut.butter.bagel", "digest": drb.as_str(), "size": ref_blob.len() }]);
    let artifact_in_config = |t: &str, a: &str| {
        json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": { "mediaType": t, "digest": EMPTY_JSON, "size": 2 },
            "layers": layer_desc, "subject": subject(&md4, &m4), "annotations": ann(a) })
        .to_string()
    };
    let artifact_typed = |t: &str, a: &str, subj: Value| {
        json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "artifactType": t,
            "config": { "mediaType": media::OCI_EMPTY, "digest": EMPTY_JSON, "size": 2 },
            "layers": layer_desc, "subject": subj, "annotations": ann(a) })
        .to_string()
    };
    let a_config = artifact_in_config("application/vnd.nhl.peanut.butter.bagel", "A-config");
    let a_layer = artifact_typed(
        "application/vnd.nhl.peanut.butter.bagel",
        "A-layer",
        subject(&md4, &m4),
    );
    let index = json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "artifactType": "application/vnd.food.stand",
        "manifests": [], "subject": subject(&md4, &m4), "annotations": ann("index") })
    .to_string();
    let b_config = artifact_in_config("application/vnd.food.stand", "B-config");
    let b_layer = artifact_typed("application/vnd.food.stand", "B-layer", subject(&md4, &m4));
    let c_layer = artifact_typed("application/vnd.food.stand", "C-layer", subject(&md3, &m3));
    let mut pushed = vec![];
    for (body, mt, subj) in [
        (&a_config, media::OCI_MANIFEST, &md4),
        (&a_layer, media::OCI_MANIFEST, &md4),
        (&index, media::OCI_INDEX, &md4),
    ] {
        let d = Digest::sha256(body.as_bytes());
        let res = s.put_manifest(repo, d.as_str(), mt, body.as_bytes()).await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        pushed.push(d);
        let _ = subj;
    }
    // the subject arrives after some of its referrers
    assert_eq!(
        s.put_manifest(repo, "tagtest0", media::OCI_MANIFEST, &m4)
            .await
            .status(),
        201
    );
    for body in [&b_config, &b_layer, &c_layer] {
        let d = Digest::sha256(body.as_bytes());
        let res = s
            .put_manifest(repo, d.as_str(), media::OCI_MANIFEST, body.as_bytes())
            .await;
        assert_eq!(res.status(), 201);
        let want = if body == &c_layer { &md3 } else { &md4 };
        assert_eq!(
            header(&res, "oci-subject").as_deref(),
            Some(want.as_str()),
            "OCI-Subject on PUT with subject"
        );
    }
    // 1-3: tag list
    let v = s.get_json(&format!("/v2/{repo}/tags/list")).await;
    let listed: Vec<String> = serde_json::from_value(v["tags"].clone()).unwrap();
    let mut expected: Vec<String> = tags
        .iter()
        .map(|t| t.to_string())
        .chain(["tagtest0".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(listed, expected, "sorted in byte order");
    let half = listed.len() / 2;
    let v = s.get_json(&format!("/v2/{repo}/tags/list?n={half}")).await;
    assert_eq!(v["tags"].as_array().unwrap().len(), half);
    let last = &listed[half - 1];
    let v = s
        .get_json(&format!("/v2/{repo}/tags/list?n={half}&last={last}"))
        .await;
    let after: Vec<String> = serde_json::from_value(v["tags"].clone()).unwrap();
    assert!(after.len() <= half && !after.contains(last));
    assert_eq!(after, listed[half..(2 * half).min(listed.len())].to_vec());
    // 4: unknown digest
    let res = s
        .admin(Method::GET, &format!("/v2/{repo}/referrers/{DUMMY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "content-type").as_deref(),
        Some(media::OCI_INDEX)
    );
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        (v["schemaVersion"].as_i64(), v["mediaType"].as_str()),
        (Some(2), Some(media::OCI_INDEX))
    );
    assert_eq!(v["manifests"], json!([]));
    // 5: referrers of manifests[4]
    let res = s
        .admin(Method::GET, &format!("/v2/{repo}/referrers/{md4}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&res, "content-type").as_deref(),
        Some(media::OCI_INDEX)
    );
    let v: Value = res.json().await.unwrap();
    let list = v["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    for d in list {
        assert!(
            d["annotations"]["org.opencontainers.conformance.test"].is_string(),
            "{d}"
        );
        assert!(
            d["size"].as_i64().unwrap() > 0
                && d["artifactType"].is_string()
                && d["mediaType"].is_string()
        );
    }
    let idx_entry = list
        .iter()
        .find(|d| d["mediaType"] == media::OCI_INDEX)
        .unwrap();
    assert_eq!(idx_entry["artifactType"], "application/vnd.food.stand");
    assert_eq!(idx_entry["size"].as_u64().unwrap() as usize, index.len());
    let cfg_entry = list
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.conformance.test"] == "A-config")
        .unwrap();
    assert_eq!(
        cfg_entry["artifactType"], "application/vnd.nhl.peanut.butter.bagel",
        "artifact type from config.mediaType"
    );
    // 6: filter
    let res = s
        .admin(
            Method::GET,
            &format!(
                "/v2/{repo}/referrers/{md4}?artifactType=application/vnd.nhl.peanut.butter.bagel"
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&res, "oci-filters-applied").as_deref(),
        Some("artifactType")
    );
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
    // 7: missing subject
    let v = s.get_json(&format!("/v2/{repo}/referrers/{md3}")).await;
    let list = v["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0]["digest"],
        Digest::sha256(c_layer.as_bytes()).as_str()
    );
    // the subject pushed later is linked
    assert_eq!(
        s.put_manifest(repo, md3.as_str(), media::OCI_MANIFEST, &m3)
            .await
            .status(),
        201
    );
    assert_eq!(
        s.get_json(&format!("/v2/{repo}/referrers/{md3}")).await["manifests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // teardown: 404 accepted for accessories deleted with their subject
    for d in pushed.iter().chain([&md4, &md3]) {
        let st = status(s, Method::DELETE, &format!("/v2/{repo}/manifests/{d}")).await;
        assert!(st == 202 || st == 404, "{st}");
    }
    assert_eq!(
        s.get_json(&format!("/v2/{repo}/referrers/{md4}")).await["manifests"],
        json!([])
    );
}

// ---- A.6 ------------------------------------------------------------------

async fn workflow_content_management(s: &Server) {
    s.create_project("conf", false).await;
    let repo = "conf/manage";
    let c3 = config_blob("mgmt");
    let layer = random_bytes(64);
    let d3 = s.push_blob(repo, &c3).await;
    let dl = s.push_blob(repo, &layer).await;
    let m3 = image_manifest((&d3, c3.len()), &[(dl.clone(), layer.len())]);
    let md3 = Digest::sha256(&m3);
    assert_eq!(
        s.put_manifest(repo, "tagtest0", media::OCI_MANIFEST, &m3)
            .await
            .status(),
        201
    );
    assert_eq!(
        s.put_manifest(repo, "other", media::OCI_MANIFEST, &m3)
            .await
            .status(),
        201
    );
    let n = s.get_json(&format!("/v2/{repo}/tags/list")).await["tags"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        status(s, Method::DELETE, &format!("/v2/{repo}/manifests/tagtest0")).await,
        202
    );
    assert_eq!(
        status(s, Method::HEAD, &format!("/v2/{repo}/manifests/tagtest0")).await,
        404
    );
    assert_eq!(
        status(s, Method::GET, &format!("/v2/{repo}/manifests/{md3}")).await,
        200,
        "tag delete keeps the manifest"
    );
    assert_eq!(
        s.get_json(&format!("/v2/{repo}/tags/list")).await["tags"]
            .as_array()
            .unwrap()
            .len(),
        n - 1
    );
    assert_eq!(
        status(s, Method::DELETE, &format!("/v2/{repo}/manifests/{md3}")).await,
        202
    );
    assert_eq!(
        status(s, Method::GET, &format!("/v2/{repo}/manifests/{md3}")).await,
        404
    );
    assert_eq!(
        status(s, Method::GET, &format!("/v2/{repo}/manifests/other")).await,
        404,
        "deleting an artifact deletes all its tags"
    );
    assert_eq!(
        s.get_json(&format!("/v2/{repo}/tags/list")).await["tags"],
        json!([])
    );
    for d in [&d3, &dl] {
        assert_eq!(
            status(s, Method::DELETE, &format!("/v2/{repo}/blobs/{d}")).await,
            202
        );
        assert_eq!(
            status(s, Method::GET, &format!("/v2/{repo}/blobs/{d}")).await,
            404
        );
        assert_eq!(
            status(s, Method::HEAD, &format!("/v2/{repo}/blobs/{d}")).await,
            404
        );
    }
    assert_eq!(
        status(s, Method::DELETE, &format!("/v2/{repo}/manifests/{md3}")).await,
        404
    );
    assert_eq!(
        status(s, Method::DELETE, &format!("/v2/{repo}/blobs/{d3}")).await,
        404
    );
}

// ---- B.2 blobs ------------------------------------------------------------

async fn blobs_sha256(s: &Server) {
    blob_cases(s, Algorithm::Sha256).await;
}

async fn blobs_sha512(s: &Server) {
    blob_cases(s, Algorithm::Sha512).await;
}

async fn blob_cases(s: &Server, alg: Algorithm) {
    s.create_project("conf", false).await;
    let repo = "conf/blobs";
    let other = "conf/blobs-other";
    let q = |d: &Digest| format!("digest={d}");
    let check = |d: Digest, data: Vec<u8>| async move {
        let res = s
            .admin(Method::HEAD, &format!("/v2/{repo}/blobs/{d}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "content-length"), Some(data.len().to_string()));
        assert_eq!(
            header(&res, "docker-content-digest").as_deref(),
            Some(d.as_str())
        );
        let (st, body) = get_bytes(s, &format!("/v2/{repo}/blobs/{d}")).await;
        assert_eq!((st.as_u16(), body.as_ref()), (200, data.as_slice()));
    };
    // get-missing
    let missing = Digest::of(alg, b"never pushed");
    assert_eq!(
        status(s, Method::GET, &format!("/v2/{repo}/blobs/{missing}")).await,
        404
    );
    // post only
    let data = random_bytes(512);
    let d = Digest::of(alg, &data);
    let res = s
        .admin(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?{}", q(&d)),
        )
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        get_bytes(s, &location(&res)).await.1.as_ref(),
        data.as_slice()
    );
    check(d.clone(), data.clone()).await;
    // post+put
    let data = random_bytes(512);
    let d = Digest::of(alg, &data);
    let loc = post(s, repo).await;
    let res = put_final(s, &loc, &d, Some(&data), None).await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        get_bytes(s, &location(&res)).await.1.as_ref(),
        data.as_slice()
    );
    // chunked single
    let data = random_bytes(512);
    let d = Digest::of(alg, &data);
    let loc = post(s, repo).await;
    let res = patch(s, &loc, &data, Some((0, 511))).await;
    assert_eq!(res.status(), 202);
    assert_eq!(
        put_final(s, &location(&res), &d, None, None).await.status(),
        201
    );
    check(d.clone(), data.clone()).await;
    // stream
    let data = random_bytes(512);
    let d = Digest::of(alg, &data);
    let loc = post(s, repo).await;
    let res = patch(s, &loc, &data, None).await;
    assert_eq!(res.status(), 202);
    assert_eq!(
        put_final(s, &location(&res), &d, None, None).await.status(),
        201
    );
    check(d.clone(), data.clone()).await;
    // mount, mount anonymous, mount missing
    let src = random_bytes(512);
    let ds = s.push_blob_alg(other, &src, alg).await;
    let res = s
        .admin(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?mount={ds}&from={other}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        get_bytes(s, &location(&res)).await.1.as_ref(),
        src.as_slice()
    );
    let src2 = random_bytes(512);
    let ds2 = s.push_blob_alg(other, &src2, alg).await;
    let res = s
        .admin(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?mount={ds2}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        202,
        "no automatic cross-repository mount without from"
    );
    assert_eq!(
        status(s, Method::HEAD, &format!("/v2/{repo}/blobs/{ds2}")).await,
        404
    );
    let res = s
        .admin(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?mount={missing}&from={other}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        202,
        "mount of a missing blob is a normal session"
    );
    // post cancel
    let loc = post(s, repo).await;
    assert_eq!(status(s, Method::DELETE, &loc).await, 204);
    assert_eq!(status(s, Method::GET, &loc).await, 404);
    // chunked multi, with and without the last chunk on PUT
    let min = 1024usize;
    for put_chunk in [false, true] {
        let data = random_bytes(3 * min - 5);
        let d = Digest::of(alg, &data);
        let mut loc = post(s, repo).await;
        let chunks: Vec<(usize, usize)> = vec![(0, min), (min, 2 * min), (2 * min, data.len())];
        for (i, (a, b)) in chunks.iter().enumerate() {
            if put_chunk && i == chunks.len() - 1 {
                let res = put_final(
                    s,
                    &loc,
                    &d,
                    Some(&data[*a..*b]),
                    Some((*a as u64, *b as u64 - 1)),
                )
                .await;
                assert_eq!(res.status(), 201);
            } else {
                let res = patch(s, &loc, &data[*a..*b], Some((*a as u64, *b as u64 - 1))).await;
                assert_eq!(res.status(), 202);
                assert_eq!(header(&res, "range"), Some(format!("0-{}", b - 1)));
                loc = location(&res);
            }
        }
        if !put_chunk {
            assert_eq!(put_final(s, &loc, &d, None, None).await.status(), 201);
        }
        check(d, data).await;
    }
    // chunked out-of-order, with and without the last chunk on PUT
    for put_chunk in [false, true] {
        let data = random_bytes(3 * min - 5);
        let d = Digest::of(alg, &data);
        let loc = post(s, repo).await;
        let res = patch(s, &loc, &data[..min], Some((0, min as u64 - 1))).await;
        assert_eq!(res.status(), 202);
        let loc = location(&res);
        let res = patch(
            s,
            &loc,
            &data[2 * min..],
            Some((2 * min as u64, data.len() as u64 - 1)),
        )
        .await;
        assert_eq!(res.status(), 416);
        let res = s.admin(Method::GET, &loc).send().await.unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(header(&res, "range"), Some(format!("0-{}", min - 1)));
        let res = patch(
            s,
            &loc,
            &data[min..2 * min],
            Some((min as u64, 2 * min as u64 - 1)),
        )
        .await;
        assert_eq!(res.status(), 202);
        let loc = location(&res);
        if put_chunk {
            let res = put_final(
                s,
                &loc,
                &d,
                Some(&data[2 * min..]),
                Some((2 * min as u64, data.len() as u64 - 1)),
            )
            .await;
            assert_eq!(res.status(), 201);
        } else {
            let res = patch(
                s,
                &loc,
                &data[2 * min..],
                Some((2 * min as u64, data.len() as u64 - 1)),
            )
            .await;
            assert_eq!(res.status(), 202);
            assert_eq!(
                put_final(s, &location(&res), &d, None, None).await.status(),
                201
            );
        }
        check(d, data).await;
    }
    // empty and emptyJSON
    let d = s.push_blob_alg(repo, b"", alg).await;
    check(d, vec![]).await;
    let d = s.push_blob_alg(repo, b"{}", alg).await;
    if alg == Algorithm::Sha256 {
        assert_eq!(d.as_str(), EMPTY_JSON);
    }
    check(d.clone(), b"{}".to_vec()).await;
    // blob-delete is atomic
    assert_eq!(
        status(s, Method::DELETE, &format!("/v2/{repo}/blobs/{d}")).await,
        202
    );
    assert_eq!(
        status(s, Method::HEAD, &format!("/v2/{repo}/blobs/{d}")).await,
        404
    );
}

async fn blob_range_requests(s: &Server) {
    s.create_project("conf", false).await;
    let repo = "conf/range";
    let data = random_bytes(2048);
    let d = s.push_blob(repo, &data).await;
    let get = |range: &'static str| {
        let url = format!("/v2/{repo}/blobs/{d}");
        async move {
            s.admin(Method::GET, &url)
                .header("range", range)
                .send()
                .await
                .unwrap()
        }
    };
    for (range, a, b) in [
        ("bytes=500-1499", 500, 1499),
        ("bytes=500-", 500, 2047),
        ("bytes=-500", 1548, 2047),
        ("bytes=2000-5000", 2000, 2047),
    ] {
        let res = get(range).await;
        assert_eq!(res.status(), 206, "{range}");
        assert_eq!(
            header(&res, "content-range"),
            Some(format!("bytes {a}-{b}/2048"))
        );
        assert_eq!(
            header(&res, "content-length"),
            Some((b - a + 1).to_string())
        );
        assert_eq!(res.bytes().await.unwrap().as_ref(), &data[a..=b], "{range}");
    }
    for range in ["bytes=500-0", "bytes=5000-10000"] {
        let res = get(range).await;
        assert_eq!(res.status(), 416, "{range}");
        assert_eq!(
            header(&res, "content-range").as_deref(),
            Some("bytes */2048")
        );
    }
    // no Range: the whole blob, and ranges are advertised
    let res = s
        .admin(Method::GET, &format!("/v2/{repo}/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "accept-ranges").as_deref(), Some("bytes"));
    assert_eq!(res.bytes().await.unwrap().len(), 2048);
    // a large blob crosses the storage chunking
    let big = random_bytes(5 * 1024 * 1024 + 3);
    let d = s.push_blob(repo, &big).await;
    let res = s
        .admin(Method::GET, &format!("/v2/{repo}/blobs/{d}"))
        .header("range", "bytes=1048570-4194310")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap().as_ref(), &big[1048570..=4194310]);
    assert_eq!(
        get_bytes(s, &format!("/v2/{repo}/blobs/{d}"))
            .await
            .1
            .as_ref(),
        big.as_slice()
    );
}

async fn blob_bad_digests(s: &Server) {
    s.create_project("conf", false).await;
    let repo = "conf/bad";
    let data = random_bytes(512);
    let wrong = Digest::sha256(b"something else");
    // post only
    let res = s
        .admin(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={wrong}"),
        )
        .body(data.clone())
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "DIGEST_INVALID").await;
    // post+put
    let loc = post(s, repo).await;
    expect_error(
        put_final(s, &loc, &wrong, Some(&data), None).await,
        400,
        "DIGEST_INVALID",
    )
    .await;
    assert_eq!(
        status(s, Method::GET, &loc).await,
        404,
        "the failed session is over"
    );
    // chunked
    let loc = post(s, repo).await;
    let res = patch(s, &loc, &data, Some((0, 511))).await;
    expect_error(
        put_final(s, &location(&res), &wrong, None, None).await,
        400,
        "DIGEST_INVALID",
    )
    .await;
    // chunked and put chunk
    let loc = post(s, repo).await;
    let res = patch(s, &loc, &data[..256], Some((0, 255))).await;
    expect_error(
        put_final(
            s,
            &location(&res),
            &wrong,
            Some(&data[256..]),
            Some((256, 511)),
        )
        .await,
        400,
        "DIGEST_INVALID",
    )
    .await;
    // stream
    let loc = post(s, repo).await;
    let res = patch(s, &loc, &data, None).await;
    expect_error(
        put_final(s, &location(&res), &wrong, None, None).await,
        400,
        "DIGEST_INVALID",
    )
    .await;
    // nothing was stored or linked, under either digest
    assert_eq!(
        status(s, Method::HEAD, &format!("/v2/{repo}/blobs/{wrong}")).await,
        404
    );
    assert_eq!(
        status(
            s,
            Method::HEAD,
            &format!("/v2/{repo}/blobs/{}", Digest::sha256(&data))
        )
        .await,
        404
    );
    // malformed digests are 400 before any storage access
    for bad in [
        "sha256:../../etc/passwd",
        "sha256:ABC",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:",
        "nocolon",
    ] {
        let st = status(s, Method::GET, &format!("/v2/{repo}/blobs/{bad}")).await;
        assert!(st == 400 || st == 404, "{bad}: {st}");
        let res = s
            .admin(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={bad}"),
            )
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
    }
    // a PUT without ?digest
    let loc = post(s, repo).await;
    let res = s
        .admin(Method::PUT, &loc)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "DIGEST_INVALID").await;
    // malformed Content-Range is a 4xx, never a 5xx
    let loc = post(s, repo).await;
    for cr in ["garbage", "5-", "-5", "99999999999999999999999-1"] {
        let res = s
            .admin(Method::PATCH, &loc)
            .header("content-range", cr)
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{cr}: {}", res.status());
    }
    // a wrong Content-Length on a chunk
    let res = s
        .admin(Method::PATCH, &loc)
        .header("content-range", "0-9")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
}

// ---- B.2 data sets --------------------------------------------------------

struct Pushed {
    reference: String,
    digest: Digest,
    media_type: &'static str,
    body: Vec<u8>,
}

async fn push_m(
    s: &Server,
    repo: &str,
    reference: Option<&str>,
    media_type: &'static str,
    body: Value,
) -> Pushed {
    let body = body.to_string().into_bytes();
    let digest = Digest::sha256(&body);
    let reference = reference
        .map(str::to_owned)
        .unwrap_or_else(|| digest.to_string());
    let res = s.put_manifest(repo, &reference, media_type, &body).await;
    assert_eq!(
        res.status(),
        201,
        "{}: {}",
        reference,
        res.text().await.unwrap()
    );
    Pushed {
        reference,
        digest,
        media_type,
        body,
    }
}

async fn pull_check(s: &Server, repo: &str, p: &Pushed) {
    for method in [Method::HEAD, Method::GET] {
        let res = s
            .admin(
                method.clone(),
                &format!("/v2/{repo}/manifests/{}", p.reference),
            )
            .header(
                "accept",
                format!(
                    "{}, {}, {}, {}",
                    media::OCI_INDEX,
                    media::OCI_MANIFEST,
                    media::DOCKER_MANIFEST,
                    media::DOCKER_MANIFEST_LIST
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{method} {}", p.reference);
        assert_eq!(header(&res, "content-type").as_deref(), Some(p.media_type));
        assert_eq!(
            header(&res, "content-length"),
            Some(p.body.len().to_string())
        );
        assert_eq!(
            header(&res, "docker-content-digest").as_deref(),
            Some(p.digest.as_str())
        );
        if method == Method::GET {
            assert_eq!(res.bytes().await.unwrap().as_ref(), p.body.as_slice());
        }
    }
}

async fn manifest_data_sets(s: &Server) {
    s.create_project("conf", false).await;
    let repo = "conf/data";
    let cfg = config_blob("data");
    let dc = s.push_blob(repo, &cfg).await;
    let layer = random_bytes(300);
    let dl = s.push_blob(repo, &layer).await;
    let raw_layer = random_bytes(200);
    let dr = s.push_blob(repo, &raw_layer).await;
    let empty = s.push_blob(repo, b"{}").await;
    let cdesc = json!({ "mediaType": media::OCI_CONFIG, "digest": dc.as_str(), "size": cfg.len() });
    let ldesc = json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dl.as_str(), "size": layer.len() });
    let edesc = json!({ "mediaType": media::OCI_EMPTY, "digest": empty.as_str(), "size": 2 });
    let mut all: Vec<Pushed> = vec![];

    // image, image-uncompressed
    let image = push_m(s, repo, Some("image"), media::OCI_MANIFEST, json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": cdesc, "layers": [ldesc] })).await;
    let uncompressed = push_m(s, repo, Some("image-uncompressed"), media::OCI_MANIFEST, json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": cdesc,
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": dr.as_str(), "size": raw_layer.len() }] })).await;
    // docker schema 2 and manifest list
    let docker = push_m(s, repo, Some("docker"), media::DOCKER_MANIFEST, json!({ "schemaVersion": 2, "mediaType": media::DOCKER_MANIFEST,
        "config": { "mediaType": media::DOCKER_CONFIG, "digest": dc.as_str(), "size": cfg.len() },
        "layers": [{ "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": dl.as_str(), "size": layer.len() }] })).await;
    let dlist = push_m(s, repo, Some("docker-list"), media::DOCKER_MANIFEST_LIST, json!({ "schemaVersion": 2, "mediaType": media::DOCKER_MANIFEST_LIST,
        "manifests": [{ "mediaType": media::DOCKER_MANIFEST, "digest": docker.digest.as_str(), "size": docker.body.len(), "platform": { "architecture": "amd64", "os": "linux" } }] })).await;
    // large manifest (~3.9 MB of annotations)
    let mut ann = serde_json::Map::new();
    for i in 0..390 {
        ann.insert(format!("org.example.key{i}"), json!("x".repeat(10_000)));
    }
    let large = push_m(s, repo, Some("large-manifest"), media::OCI_MANIFEST, json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": cdesc, "layers": [ldesc], "annotations": ann })).await;
    assert!(large.body.len() > 3_900_000);
    // index, nested index, empty index
    let arm = push_m(s, repo, None, media::OCI_MANIFEST, json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": cdesc, "layers": [ldesc], "annotations": { "arch": "arm64" } })).await;
    let mdesc = |p: &Pushed, arch: &str| json!({ "mediaType": p.media_type, "digest": p.digest.as_str(), "size": p.body.len(), "platform": { "architecture": arch, "os": "linux" } });
    let index = push_m(s, repo, Some("index"), media::OCI_INDEX, json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [mdesc(&image, "amd64"), mdesc(&arm, "arm64")] })).await;
    let nested = push_m(s, repo, Some("nested-index"), media::OCI_INDEX, json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX,
        "manifests": [{ "mediaType": media::OCI_INDEX, "digest": index.digest.as_str(), "size": index.body.len() }, mdesc(&uncompressed, "s390x")] })).await;
    let empty_index = push_m(
        s,
        repo,
        Some("empty-index"),
        media::OCI_INDEX,
        json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [] }),
    )
    .await;
    // artifacts
    let artifact = push_m(s, repo, Some("artifact"), media::OCI_MANIFEST, json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "artifactType": "application/vnd.example.thing",
        "config": edesc, "layers": [{ "mediaType": "application/vnd.example.data", "digest": dr.as_str(), "size": raw_layer.len() }] })).await;
    let artifact_index = push_m(s, repo, Some("artifact-index"), media::OCI_INDEX, json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "artifactType": "application/vnd.example.set",
        "manifests": [{ "mediaType": media::OCI_MANIFEST, "digest": artifact.digest.as_str(), "size": artifact.body.len() }] })).await;
    let no_layers_artifact = push_m(
        s,
        repo,
        Some("artifact-without-layers"),
        media::OCI_MANIFEST,
        json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "artifactType": "application/vnd.example.empty", "config": edesc, "layers": [] }),
    )
    .await;
    let subj = |p: &Pushed| json!({ "mediaType": p.media_type, "digest": p.digest.as_str(), "size": p.body.len() });
    let with_subject = push_m(s, repo, None, media::OCI_MANIFEST, json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "artifactType": "application/vnd.example.sig", "config": edesc, "layers": [], "subject": subj(&image) })).await;
    let index_with_subject = push_m(s, repo, None, media::OCI_INDEX, json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX,
        "artifactType": "application/vnd.example.bundle", "manifests": [], "subject": subj(&image) })).await;
    // missing subject
    let ghost_body = json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": cdesc, "layers": [], "annotations": { "ghost": "1" } }).to_string();
    let ghost = Digest::sha256(ghost_body.as_bytes());
    let missing_subject = push_m(s, repo, None, media::OCI_MANIFEST, json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "artifactType": "application/vnd.example.sig", "config": edesc, "layers": [],
        "subject": { "mediaType": media::OCI_MANIFEST, "digest": ghost.as_str(), "size": ghost_body.len() } })).await;
    // data field, custom fields, non-distributable layers, no layers
    let data_field = push_m(s, repo, Some("data-field"), media::OCI_MANIFEST, json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": { "mediaType": media::OCI_EMPTY, "digest": empty.as_str(), "size": 2, "data": "e30=" }, "layers": [ldesc] })).await;
    let custom = push_m(s, repo, Some("custom-fields"), media::OCI_MANIFEST, json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": cdesc, "layers": [ldesc], "com.example.custom": { "nested": [1, 2, 3] }, "another": true })).await;
    let foreign_digest = Digest::sha256(b"a foreign layer that is never pushed");
    let foreign = push_m(s, repo, Some("non-distributable-layers"), media::OCI_MANIFEST, json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": cdesc,
        "layers": [ldesc, { "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": foreign_digest.as_str(), "size": 12345, "urls": ["https://example.com/layer"] }] })).await;
    let no_layers = push_m(
        s,
        repo,
        Some("no-layers"),
        media::OCI_MANIFEST,
        json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": cdesc }),
    )
    .await;
    // sha512, by digest only
    let sha512_body = json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": cdesc, "layers": [ldesc], "annotations": { "alg": "sha512" } }).to_string();
    let d512 = Digest::of(Algorithm::Sha512, sha512_body.as_bytes());
    let res = s
        .put_manifest(
            repo,
            d512.as_str(),
            media::OCI_MANIFEST,
            sha512_body.as_bytes(),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        header(&res, "docker-content-digest").as_deref(),
        Some(d512.as_str())
    );
    let sha512 = Pushed {
        reference: d512.to_string(),
        digest: d512.clone(),
        media_type: media::OCI_MANIFEST,
        body: sha512_body.into_bytes(),
    };
    // bad digest image: trailing spaces, pushed by the old digest
    let mut spaced = image.body.clone();
    spaced.extend_from_slice(b"   ");
    let res = s
        .put_manifest(repo, image.digest.as_str(), media::OCI_MANIFEST, &spaced)
        .await;
    expect_error(res, 400, "DIGEST_INVALID").await;

    all.extend([
        image,
        uncompressed,
        docker,
        dlist,
        large,
        arm,
        index,
        nested,
        empty_index,
        artifact,
        artifact_index,
        no_layers_artifact,
    ]);
    all.extend([
        with_subject,
        index_with_subject,
        missing_subject,
        data_field,
        custom,
        foreign,
        no_layers,
        sha512,
    ]);
    for p in &all {
        pull_check(s, repo, p).await;
    }
    let tags: Vec<String> =
        serde_json::from_value(s.get_json(&format!("/v2/{repo}/tags/list")).await["tags"].clone())
            .unwrap();
    for p in all.iter().filter(|p| !p.reference.contains(':')) {
        assert!(tags.contains(&p.reference), "{} listed", p.reference);
        // by digest too
        pull_check(
            s,
            repo,
            &Pushed {
                reference: p.digest.to_string(),
                digest: p.digest.clone(),
                media_type: p.media_type,
                body: p.body.clone(),
            },
        )
        .await;
    }
    let image_digest = &all[0].digest;
    let refs = s
        .get_json(&format!("/v2/{repo}/referrers/{image_digest}"))
        .await;
    assert_eq!(refs["manifests"].as_array().unwrap().len(), 2);
    let refs = s.get_json(&format!("/v2/{repo}/referrers/{ghost}")).await;
    assert_eq!(refs["manifests"].as_array().unwrap().len(), 1);
    // an index whose child is missing is refused
    let res = s
        .put_manifest(
            repo,
            "broken-index",
            media::OCI_INDEX,
            json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX,
            "manifests": [{ "mediaType": media::OCI_MANIFEST, "digest": DUMMY, "size": 10 }] })
            .to_string()
            .as_bytes(),
        )
        .await;
    expect_error(res, 400, "MANIFEST_BLOB_UNKNOWN").await;
    // delete: tags first, then manifests in reverse push order
    for t in &tags {
        assert_eq!(
            status(s, Method::DELETE, &format!("/v2/{repo}/manifests/{t}")).await,
            202,
            "{t}"
        );
    }
    for p in all.iter().rev() {
        let st = status(
            s,
            Method::DELETE,
            &format!("/v2/{repo}/manifests/{}", p.digest),
        )
        .await;
        assert!(st == 202 || st == 404, "{}: {st}", p.reference);
        assert_eq!(
            status(
                s,
                Method::HEAD,
                &format!("/v2/{repo}/manifests/{}", p.digest)
            )
            .await,
            404
        );
    }
    // missing manifests
    assert_eq!(
        status(
            s,
            Method::GET,
            &format!("/v2/{repo}/manifests/{}", Digest::sha256(b"random"))
        )
        .await,
        404
    );
    assert_eq!(
        status(
            s,
            Method::GET,
            &format!(
                "/v2/{repo}/manifests/missing-{}",
                uuid::Uuid::new_v4().simple()
            )
        )
        .await,
        404
    );
    // invalid digest format
    let res = s
        .put_manifest(
            repo,
            "sha256:baddigeststring",
            media::OCI_MANIFEST,
            &all[0].body,
        )
        .await;
    assert_eq!(res.status(), 400);
    let st = status(
        s,
        Method::GET,
        &format!("/v2/{repo}/manifests/sha256:baddigeststring"),
    )
    .await;
    assert!(st == 400 || st == 404);
}

async fn manifest_validation(s: &Server) {
    s.create_project("conf", false).await;
    let repo = "conf/validate";
    let cfg = config_blob("v");
    let dc = s.push_blob(repo, &cfg).await;
    let other_blob = s
        .push_blob("conf/elsewhere", b"only in another repository")
        .await;
    let cdesc = json!({ "mediaType": media::OCI_CONFIG, "digest": dc.as_str(), "size": cfg.len() });
    let put = |ct: Option<&'static str>, body: String| {
        let url = format!("/v2/{repo}/manifests/v1");
        async move {
            let mut r = s.admin(Method::PUT, &url).body(body);
            if let Some(ct) = ct {
                r = r.header("content-type", ct);
            }
            r.send().await.unwrap()
        }
    };
    let good = json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": cdesc, "layers": [] }).to_string();
    // Content-Type must agree with mediaType, and be present
    expect_error(
        put(Some(media::OCI_INDEX), good.clone()).await,
        400,
        "MANIFEST_INVALID",
    )
    .await;
    expect_error(
        put(Some(media::DOCKER_MANIFEST), good.clone()).await,
        400,
        "MANIFEST_INVALID",
    )
    .await;
    expect_error(put(None, good.clone()).await, 400, "MANIFEST_INVALID").await;
    // an index with layers, a manifest with manifests
    let idx_layers =
        json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [], "layers": [] })
            .to_string();
    expect_error(
        put(Some(media::OCI_INDEX), idx_layers).await,
        400,
        "MANIFEST_INVALID",
    )
    .await;
    let m_manifests = json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": cdesc, "manifests": [] }).to_string();
    expect_error(
        put(Some(media::OCI_MANIFEST), m_manifests).await,
        400,
        "MANIFEST_INVALID",
    )
    .await;
    // JSON garbage never yields a 5xx
    for junk in ["", "{", "[]", "null", "{\"schemaVersion\":2}", "\u{0}\u{1}", "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:xyz\",\"size\":1,\"mediaType\":\"a\"}}"] {
        let res = put(Some(media::OCI_MANIFEST), junk.to_owned()).await;
        assert_eq!(res.status(), 400, "{junk:?}");
    }
    // schema 1 is refused with a clear message
    let res = put(
        Some(media::DOCKER_SCHEMA1_SIGNED),
        json!({ "schemaVersion": 1, "name": repo, "tag": "v1", "fsLayers": [] }).to_string(),
    )
    .await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("schema 1"),
        "{v}"
    );
    // blobs must be linked to this repository
    let foreign = json!({ "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "config": cdesc,
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": other_blob.as_str(), "size": 26 }] }).to_string();
    let res = put(Some(media::OCI_MANIFEST), foreign).await;
    let body = res.text().await.unwrap();
    assert!(
        body.contains("MANIFEST_BLOB_UNKNOWN") && body.contains(other_blob.as_str()),
        "{body}"
    );
    // by digest: the body must hash to it
    let d = Digest::sha256(good.as_bytes());
    let wrong_body = good.replace("\"layers\":[]", "\"layers\": []");
    expect_error(
        s.put_manifest(repo, d.as_str(), media::OCI_MANIFEST, wrong_body.as_bytes())
            .await,
        400,
        "DIGEST_INVALID",
    )
    .await;
    let res = s
        .put_manifest(repo, d.as_str(), media::OCI_MANIFEST, good.as_bytes())
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(
        header(&res, "docker-content-digest").as_deref(),
        Some(d.as_str())
    );
    // `?tag=` on a push by digest (end-7b): every tag is created and reported
    let res = s
        .admin(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{d}?tag=a1&tag=b2"),
        )
        .header("content-type", media::OCI_MANIFEST)
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(header(&res, "oci-tag").as_deref(), Some("a1, b2"));
    for t in ["a1", "b2"] {
        let res = s
            .admin(Method::HEAD, &format!("/v2/{repo}/manifests/{t}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(&res, "docker-content-digest").as_deref(),
            Some(d.as_str())
        );
    }
    let res = s
        .admin(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{d}?tag=bad%20tag"),
        )
        .header("content-type", media::OCI_MANIFEST)
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // invalid tags
    for bad in [".hidden", "-x", &"a".repeat(129)] {
        let res = s
            .put_manifest(repo, bad, media::OCI_MANIFEST, good.as_bytes())
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    // too large: 413, with and without Content-Length
    let huge = format!(
        "{{\"schemaVersion\":2,\"pad\":\"{}\"}}",
        "x".repeat(4 * 1024 * 1024 + 10)
    );
    let res = put(Some(media::OCI_MANIFEST), huge.clone()).await;
    expect_error(res, 413, "REQUEST_ENTITY_TOO_LARGE").await;
    let stream = futures::stream::iter(
        huge.into_bytes()
            .chunks(65536)
            .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let res = s
        .admin(Method::PUT, &format!("/v2/{repo}/manifests/huge"))
        .header("content-type", media::OCI_MANIFEST)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    // the project must exist
    let res = s
        .put_manifest(
            "nosuchproject/x",
            "v1",
            media::OCI_MANIFEST,
            good.as_bytes(),
        )
        .await;
    let st = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(st, 404);
    assert!(body.contains("project nosuchproject not found"), "{body}");
    let res = s
        .admin(Method::POST, "/v2/nosuchproject/x/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // invalid names are refused before anything else
    for bad in [
        "Upper/x",
        "conf/x..y",
        "conf/_x",
        "conf//x",
        "conf/%2e%2e",
        "single",
    ] {
        let st = status(s, Method::GET, &format!("/v2/{bad}/tags/list")).await;
        assert!(st == 400 || st == 404, "{bad}: {st}");
    }
    // content negotiation: an index is not served to a client that cannot take it
    let idx = json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [{ "mediaType": media::OCI_MANIFEST, "digest": d.as_str(), "size": good.len() }] }).to_string();
    assert_eq!(
        s.put_manifest(repo, "multi", media::OCI_INDEX, idx.as_bytes())
            .await
            .status(),
        201
    );
    let res = s
        .admin(Method::GET, &format!("/v2/{repo}/manifests/multi"))
        .header("accept", media::DOCKER_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = s
        .admin(Method::GET, &format!("/v2/{repo}/manifests/multi"))
        .header(
            "accept",
            format!("{}, {}", media::DOCKER_MANIFEST, media::OCI_INDEX),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn listing_pagination(s: &Server) {
    s.create_project("conf", false).await;
    let cfg = config_blob("p");
    for r in ["conf/a", "conf/b", "conf/c"] {
        let dc = s.push_blob(r, &cfg).await;
        let m = image_manifest((&dc, cfg.len()), &[]);
        for t in ["t1", "t2", "t3", "t4", "t5"] {
            assert_eq!(
                s.put_manifest(r, t, media::OCI_MANIFEST, &m).await.status(),
                201
            );
        }
    }
    let res = s
        .admin(Method::GET, "/v2/conf/a/tags/list?n=2")
        .send()
        .await
        .unwrap();
    let link = header(&res, "link").unwrap();
    assert_eq!(link, "</v2/conf/a/tags/list?n=2&last=t2>; rel=\"next\"");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v, json!({ "name": "conf/a", "tags": ["t1", "t2"] }));
    let res = s
        .admin(Method::GET, "/v2/conf/a/tags/list?n=2&last=t4")
        .send()
        .await
        .unwrap();
    assert!(header(&res, "link").is_none());
    assert_eq!(res.json::<Value>().await.unwrap()["tags"], json!(["t5"]));
    assert_eq!(
        s.get_json("/v2/conf/a/tags/list?n=0").await["tags"],
        json!([])
    );
    assert_eq!(
        s.get_json("/v2/conf/a/tags/list?n=1000000000").await["tags"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        status(s, Method::GET, "/v2/conf/a/tags/list?n=abc").await,
        400
    );
    assert_eq!(status(s, Method::GET, "/v2/conf/none/tags/list").await, 404);
    let res = s
        .admin(Method::GET, "/v2/_catalog?n=2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&res, "link").as_deref(),
        Some("</v2/_catalog?n=2&last=conf%2Fb>; rel=\"next\"")
    );
    assert_eq!(
        res.json::<Value>().await.unwrap()["repositories"],
        json!(["conf/a", "conf/b"])
    );
    assert_eq!(
        s.get_json("/v2/_catalog?n=2&last=conf/b").await["repositories"],
        json!(["conf/c"])
    );
    assert_eq!(
        s.get_json("/v2/_catalog").await["repositories"],
        json!(["conf/a", "conf/b", "conf/c"])
    );
}

async fn streamed_bodies_without_length(s: &Server) {
    s.create_project("conf", false).await;
    let repo = "conf/stream";
    let chunked = |data: Vec<u8>| {
        let parts: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(7000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        reqwest::Body::wrap_stream(futures::stream::iter(parts))
    };
    // PATCH with chunked transfer encoding and no Content-Length
    let data = random_bytes(100_000);
    let d = Digest::sha256(&data);
    let loc = post(s, repo).await;
    let res = s
        .admin(Method::PATCH, &loc)
        .body(chunked(data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(header(&res, "range").as_deref(), Some("0-99999"));
    assert_eq!(
        put_final(s, &location(&res), &d, None, None).await.status(),
        201
    );
    // manifest PUT without Content-Length
    let m = image_manifest((&d, data.len()), &[]);
    let md = Digest::sha256(&m);
    let res = s
        .admin(Method::PUT, &format!("/v2/{repo}/manifests/{md}"))
        .header("content-type", media::OCI_MANIFEST)
        .body(chunked(m.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = s
        .admin(Method::GET, &location(&res))
        .header("accept", media::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "content-length"), Some(m.len().to_string()));
    assert_eq!(res.bytes().await.unwrap().as_ref(), m.as_slice());
}

/// A corpus of malformed names, references, digests, ranges, bodies and
/// headers thrown at every endpoint: the answer is always a 4xx (or a
/// success), never a 5xx, and the server keeps serving.
async fn malformed_input_never_5xx(s: &Server) {
    s.create_project("conf", false).await;
    let (kept, _, _) = s.push_image("conf/ok", "v1", 1).await;
    let names = [
        "conf/ok",
        "conf/%2e%2e",
        "conf/..",
        "conf//x",
        "conf/a%2fb",
        "conf/\\x",
        "CONF/x",
        "conf/x%00",
        "%00/x",
        "conf/_x",
        "conf/x-",
        "a",
        "conf/",
        "/conf/x",
        "conf/x/../../y",
    ];
    let long = format!("conf/{}", "a".repeat(300));
    let refs = [
        "v1",
        ".INVALID",
        "sha256:",
        "sha256:xyz",
        "sha512:00",
        "md5:00",
        "%20",
        "a%2fb",
        "v1:v2",
        "::::",
    ];
    let digests = [
        "sha256:../../etc/passwd",
        "sha256:ABCDEF",
        "sha256:",
        "x",
        "sha384:00",
        "sha256:%2e%2e",
    ];
    let mut paths: Vec<(Method, String)> = vec![];
    for n in names.iter().copied().chain([long.as_str()]) {
        for r in refs {
            paths.push((Method::GET, format!("/v2/{n}/manifests/{r}")));
            paths.push((Method::PUT, format!("/v2/{n}/manifests/{r}")));
            paths.push((Method::DELETE, format!("/v2/{n}/manifests/{r}")));
        }
        for d in digests {
            paths.push((Method::HEAD, format!("/v2/{n}/blobs/{d}")));
            paths.push((Method::DELETE, format!("/v2/{n}/blobs/{d}")));
            paths.push((Method::GET, format!("/v2/{n}/referrers/{d}")));
            paths.push((Method::POST, format!("/v2/{n}/blobs/uploads/?digest={d}")));
            paths.push((
                Method::POST,
                format!("/v2/{n}/blobs/uploads/?mount={d}&from=conf/ok"),
            ));
        }
        paths.push((Method::GET, format!("/v2/{n}/tags/list?n=-1")));
        paths.push((
            Method::GET,
            format!("/v2/{n}/tags/list?n=99999999999999999999999&last=%ff"),
        ));
        paths.push((Method::PATCH, format!("/v2/{n}/blobs/uploads/not-a-uuid")));
        paths.push((
            Method::PUT,
            format!("/v2/{n}/blobs/uploads/../../etc?digest=sha256:00"),
        ));
        paths.push((
            Method::GET,
            format!("/v2/{n}/blobs/uploads/{}", uuid::Uuid::new_v4()),
        ));
    }
    for q in ["n=abc", "n=-5", "last=%00", "n=1e9"] {
        paths.push((Method::GET, format!("/v2/_catalog?{q}")));
    }
    for p in [
        "/api/v2.0/projects/%00",
        "/api/v2.0/projects/a%2fb/repositories/x",
        "/api/v2.0/projects/conf/repositories/%252e%252e",
        "/api/v2.0/projects/conf/repositories/ok/artifacts/sha256:xyz",
        "/api/v2.0/projects/conf/repositories/ok/artifacts/%00/tags",
        "/api/v2.0/projects?page=-1",
        "/api/v2.0/projects?page_size=x",
        "/api/v2.0/projects?q=name=[a~b]",
        "/api/v2.0/projects?q=name={a b}",
        "/api/v2.0/projects?q=,,,",
        "/api/v2.0/projects?q=%3D%3D%3D",
        "/api/v2.0/repositories?sort=-",
        "/api/v2.0/projects/conf/repositories/ok/artifacts?q=tags=[1~2]",
        "/api/v2.0/projects/conf/repositories/ok/artifacts?q=digest=nope",
    ] {
        paths.push((Method::GET, p.to_owned()));
    }
    let bodies: [&[u8]; 4] = [b"", b"{", b"\xff\xfe\x00", b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"digest\":7}}"];
    for (i, (method, path)) in paths.iter().enumerate() {
        let mut r = s
            .admin(method.clone(), path)
            .body(bodies[i % bodies.len()].to_vec());
        if i % 3 == 0 {
            r = r
                .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                .header("content-range", "9-1");
        }
        if i % 5 == 0 {
            r = r.header("range", "bytes=-0-").header("accept", ";;;,,,");
        }
        let res = r
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(
            res.status().as_u16() < 500,
            "{method} {path} answered {}",
            res.status()
        );
    }
    for body in [
        &b"{"[..],
        b"[]",
        b"{\"project_name\":7}",
        b"{\"project_name\":\"x\",\"metadata\":[1]}",
        b"{\"project_name\":\"x\",\"storage_limit\":\"big\"}",
    ] {
        let res = s
            .admin(Method::POST, "/api/v2.0/projects")
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{}", String::from_utf8_lossy(body));
    }
    assert_eq!(
        status(s, Method::GET, &format!("/v2/conf/ok/manifests/{kept}")).await,
        200,
        "still serving"
    );
    let res = s
        .admin(Method::PUT, "/api/v2.0/projects/conf/repositories/ok")
        .json(&json!({ "description": "nul \u{0} inside" }))
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_client_error() || res.status().is_success(),
        "{}",
        res.status()
    );
}
