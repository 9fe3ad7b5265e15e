//! Security properties of access control that the role × endpoint test
//! does not reach: what registry tokens grant and which forged tokens are
//! refused, blob existence never leaking across projects (HEAD, GET,
//! mount), upload sessions bound to their repository and owner, and
//! objects of one project never reachable by id through another.

use base64::Engine;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;
use crate::on_backends;

const PASSWORD: &str = "Secu-Pass-1234";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn as_user(s: &Server, user: &str, method: Method, path: &str) -> RequestBuilder {
    s.basic(user, PASSWORD, method, path)
}

fn bearer(s: &Server, token: &str, method: Method, path: &str) -> RequestBuilder {
    s.http.request(method, s.url(path)).bearer_auth(token)
}

/// Asks `/service/token` for `scopes` as `user` (None: anonymous) and
/// returns the token and its decoded claims.
async fn token(s: &Server, user: Option<&str>, scopes: &[&str]) -> (String, Value) {
    let mut q = vec![("service", "harbor-registry")];
    for sc in scopes {
        q.push(("scope", sc));
    }
    let mut r = s.anon(Method::GET, "/service/token").query(&q);
    if let Some(u) = user {
        r = r.basic_auth(u, Some(PASSWORD));
    }
    let res = r.send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let v: Value = res.json().await.unwrap();
    let t = v["token"].as_str().unwrap().to_owned();
    assert_eq!(v["access_token"], v["token"]);
    assert!(v["expires_in"].as_i64().unwrap() > 0);
    (t.clone(), claims(&t))
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(&B64.decode(payload).expect("base64")).expect("claims JSON")
}

/// The actions a token's claims grant on repository `name`.
fn actions(c: &Value, name: &str) -> Vec<String> {
    let mut a: Vec<String> = c["access"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "repository" && e["name"] == name)
        .flat_map(|e| e["actions"].as_array().unwrap().clone())
        .map(|x| x.as_str().unwrap().to_owned())
        .collect();
    a.sort();
    a
}

/// Status of a manifest GET with `token` on `repo`.
async fn manifest_status(s: &Server, token: &str, repo: &str, tag: &str) -> u16 {
    bearer(
        s,
        token,
        Method::GET,
        &format!("/v2/{repo}/manifests/{tag}"),
    )
    .header("accept", berth_oci::media::OCI_MANIFEST)
    .send()
    .await
    .unwrap()
    .status()
    .as_u16()
}

on_backends!(
    registry_tokens_grant_what_rbac_allows,
    forged_and_stale_tokens_are_refused,
    blobs_never_leak_across_projects,
    upload_sessions_are_bound,
    objects_are_not_reachable_through_another_project,
);

async fn registry_tokens_grant_what_rbac_allows(s: &Server) {
    s.create_project("tdev", false).await;
    s.create_project("tguest", false).await;
    s.create_project("tother", false).await;
    s.create_project("tpublic", true).await;
    s.push_image("tother/app", "v1", 1).await;
    s.push_image("tpublic/app", "v1", 1).await;
    s.create_user("tara", PASSWORD).await;
    s.add_member("tdev", "tara", 2).await;
    s.add_member("tguest", "tara", 3).await;

    let (t, c) = token(
        s,
        Some("tara"),
        &[
            "repository:tdev/app:pull,push,delete",
            "repository:tguest/app:pull,push",
            "repository:tother/app:pull,push",
            "repository:tpublic/app:pull,push",
            "repository:nosuchproject/app:pull",
        ],
    )
    .await;
    assert_eq!(c["iss"], "harbor-token-issuer");
    assert_eq!(c["aud"], "harbor-registry");
    assert_eq!(c["sub"], "tara");
    // Developer: pull and push, no delete.
    assert_eq!(actions(&c, "tdev/app"), ["pull", "push"]);
    // Guest: pull only.
    assert_eq!(actions(&c, "tguest/app"), ["pull"]);
    // Not a member of a private project: nothing.
    assert!(actions(&c, "tother/app").is_empty());
    // Public project: pull.
    assert_eq!(actions(&c, "tpublic/app"), ["pull"]);
    // Unknown project: nothing.
    assert!(actions(&c, "nosuchproject/app").is_empty());

    // The token works for what it grants and nothing more.
    assert_eq!(manifest_status(s, &t, "tpublic/app", "v1").await, 200);
    assert_eq!(manifest_status(s, &t, "tdev/app", "missing").await, 404);
    let st = manifest_status(s, &t, "tother/app", "v1").await;
    assert!(st == 401 || st == 403, "tother: {st}");
    // Push into the Guest project is refused even with a token.
    let res = bearer(s, &t, Method::POST, "/v2/tguest/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 401 | 403),
        "{}",
        res.status()
    );
    // The token's scope is what was granted: a repository not named in it
    // is refused even where tara could get a token for it.
    let st = manifest_status(s, &t, "tdev/other", "v1").await;
    assert!(st == 401 || st == 403, "tdev/other: {st}");
    let res = bearer(s, &t, Method::POST, "/v2/tdev/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);

    // Anonymous: public pull only.
    let (ta, ca) = token(
        s,
        None,
        &[
            "repository:tpublic/app:pull,push",
            "repository:tdev/app:pull",
        ],
    )
    .await;
    assert_eq!(ca["sub"], "");
    assert_eq!(actions(&ca, "tpublic/app"), ["pull"]);
    assert!(actions(&ca, "tdev/app").is_empty());
    assert_eq!(manifest_status(s, &ta, "tpublic/app", "v1").await, 200);

    // Catalog scope: only for system admins.
    let (_, cc) = token(s, Some("tara"), &["registry:catalog:*"]).await;
    assert!(cc["access"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actions"].as_array().unwrap().is_empty()));

    // Wrong password → 401, never a token.
    let res = s
        .anon(
            Method::GET,
            "/service/token?service=harbor-registry&scope=repository:tdev/app:pull",
        )
        .basic_auth("tara", Some("Wrong-Pass-1234"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    // A service that is not ours → 400.
    let res = s
        .anon(
            Method::GET,
            "/service/token?service=other&scope=repository:tdev/app:pull",
        )
        .basic_auth("tara", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // A malformed scope → 400, not a 5xx.
    let res = s
        .anon(
            Method::GET,
            "/service/token?service=harbor-registry&scope=repository:%00:pull",
        )
        .basic_auth("tara", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
}

async fn forged_and_stale_tokens_are_refused(s: &Server) {
    s.create_project("forge", false).await;
    s.push_image("forge/app", "v1", 1).await;
    let (good, _) = {
        let res = s
            .admin(
                Method::GET,
                "/service/token?service=harbor-registry&scope=repository:forge/app:pull",
            )
            .send()
            .await
            .unwrap();
        let v: Value = res.json().await.unwrap();
        let t = v["token"].as_str().unwrap().to_owned();
        (t.clone(), claims(&t))
    };
    assert_eq!(manifest_status(s, &good, "forge/app", "v1").await, 200);
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    let mut payload = claims(&good);

    let refused = |t: String, why: &'static str| async move {
        let res = bearer(s, &t, Method::GET, "/v2/forge/app/manifests/v1")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{why} must be refused");
        let www = header_of(&res, "www-authenticate");
        assert!(www.starts_with("Bearer realm="), "{why}: {www}");
        expect_error(res, 401, "UNAUTHORIZED").await;
    };
    let enc = |v: &Value| B64.encode(serde_json::to_vec(v).unwrap());

    // alg: none, with and without the original signature.
    let none = json!({ "alg": "none", "typ": "JWT" });
    refused(format!("{}.{}.", enc(&none), parts[1]), "alg none").await;
    refused(
        format!("{}.{}.{}", enc(&none), parts[1], parts[2]),
        "alg none with signature",
    )
    .await;
    // HS256 "signed" with the public key material is not accepted either.
    let mut hs = header.clone();
    hs["alg"] = json!("HS256");
    refused(format!("{}.{}.{}", enc(&hs), parts[1], parts[2]), "HS256").await;
    // Tampered claims with the original signature.
    payload["access"][0]["name"] = json!("forge/other");
    refused(
        format!("{}.{}.{}", parts[0], enc(&payload), parts[2]),
        "tampered payload",
    )
    .await;
    // Garbage.
    refused("not-a-jwt".into(), "garbage").await;

    // Signed with Berth's own key but a wrong audience, a wrong issuer,
    // or expired.
    let pem = std::fs::read_to_string(s.data_dir().join("token.key")).expect("token key");
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = header["kid"].as_str().map(str::to_owned);
    let sign = |c: &Value| jsonwebtoken::encode(&h, c, &key).unwrap();
    let base = claims(&good);
    // Control: re-signing the original claims with the server key works, so
    // the refusals below are for the reason named.
    assert_eq!(
        manifest_status(s, &sign(&base), "forge/app", "v1").await,
        200
    );
    let mut c = base.clone();
    c["aud"] = json!("other-registry");
    refused(sign(&c), "wrong audience").await;
    let mut c = base.clone();
    c["iss"] = json!("someone-else");
    refused(sign(&c), "wrong issuer").await;
    let now = base["iat"].as_i64().unwrap();
    let mut c = base.clone();
    c["iat"] = json!(now - 7200);
    c["nbf"] = json!(now - 7200);
    c["exp"] = json!(now - 3600);
    refused(sign(&c), "expired").await;
    let mut c = base.clone();
    c["nbf"] = json!(now + 3600);
    c["exp"] = json!(now + 7200);
    refused(sign(&c), "not yet valid").await;

    // A token of another Berth (its own generated key) is foreign here.
    let other = Server::start(Backend::Embedded).await;
    other.create_project("forge", false).await;
    let res = other
        .admin(
            Method::GET,
            "/service/token?service=harbor-registry&scope=repository:forge/app:pull",
        )
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    let foreign = v["token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&foreign)["access"][0]["actions"], json!(["pull"]));
    refused(foreign, "foreign key").await;

    // A deleted user's token stops working at once.
    s.create_user("shortlived", PASSWORD).await;
    s.add_member("forge", "shortlived", 3).await;
    let (t, c) = token(s, Some("shortlived"), &["repository:forge/app:pull"]).await;
    assert_eq!(actions(&c, "forge/app"), ["pull"]);
    assert_eq!(manifest_status(s, &t, "forge/app", "v1").await, 200);
    let users = s.get_json("/api/v2.0/users?q=username%3Dshortlived").await;
    let id = users[0]["user_id"].as_i64().unwrap();
    let res = s
        .admin(Method::DELETE, &format!("/api/v2.0/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(manifest_status(s, &t, "forge/app", "v1").await, 401);
}

fn header_of(res: &reqwest::Response, name: &str) -> String {
    header(res, name).unwrap_or_default()
}

async fn blobs_never_leak_across_projects(s: &Server) {
    s.create_project("vault", false).await;
    s.create_project("mine", false).await;
    s.create_user("mallory", PASSWORD).await;
    s.add_member("mine", "mallory", 2).await;
    let secret = random_bytes(4096);
    let d = s.push_blob("vault/app", &secret).await;
    let blob = |repo: &str| format!("/v2/{repo}/blobs/{d}");

    // HEAD and GET through mallory's own project: as if absent.
    for m in [Method::HEAD, Method::GET] {
        let res = as_user(s, "mallory", m.clone(), &blob("mine/app"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{m} through mine");
    }
    // Directly: denied.
    let res = as_user(s, "mallory", Method::GET, &blob("vault/app"))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 401 | 403),
        "{}",
        res.status()
    );
    // Mount from the unreadable repository: a plain upload session (202),
    // never a mount, and the blob stays absent in mine/app.
    let res = as_user(
        s,
        "mallory",
        Method::POST,
        &format!("/v2/mine/app/blobs/uploads/?mount={d}&from=vault/app"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 202);
    assert!(header(&res, "docker-upload-uuid").is_some());
    let res = as_user(s, "mallory", Method::HEAD, &blob("mine/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // A manifest referencing the blob it cannot read is refused.
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": berth_oci::media::OCI_MANIFEST,
        "config": { "mediaType": berth_oci::media::OCI_CONFIG, "digest": d.as_str(), "size": secret.len() },
        "layers": [],
    })
    .to_string();
    let res = as_user(s, "mallory", Method::PUT, "/v2/mine/app/manifests/steal")
        .header("content-type", berth_oci::media::OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "MANIFEST_BLOB_UNKNOWN").await;
    // Uploading the same bytes herself proves knowledge of the content, and
    // links it in her repository only.
    let res = as_user(s, "mallory", Method::POST, "/v2/mine/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = location(&res);
    let res = as_user(
        s,
        "mallory",
        Method::PUT,
        &with_query(&loc, &format!("digest={d}")),
    )
    .body(secret.clone())
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let res = as_user(s, "mallory", Method::HEAD, &blob("mine/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = as_user(s, "mallory", Method::HEAD, &blob("vault/app"))
        .send()
        .await
        .unwrap();
    assert!(matches!(res.status().as_u16(), 401 | 403));

    // Once mallory may read vault (Guest), the mount works.
    s.add_member("vault", "mallory", 3).await;
    let d2 = s.push_blob("vault/app", &random_bytes(2048)).await;
    let res = as_user(
        s,
        "mallory",
        Method::POST,
        &format!("/v2/mine/app/blobs/uploads/?mount={d2}&from=vault/app"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(header_of(&res, "docker-content-digest"), d2.as_str());
    // But a Guest cannot mount *into* vault.
    let res = as_user(
        s,
        "mallory",
        Method::POST,
        &format!("/v2/vault/app/blobs/uploads/?mount={d}&from=mine/app"),
    )
    .send()
    .await
    .unwrap();
    assert!(matches!(res.status().as_u16(), 401 | 403));
    // Blob deletion by a Developer is refused (Harbor: delete needs
    // Maintainer or more).
    let res = as_user(s, "mallory", Method::DELETE, &blob("mine/app"))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 401 | 403),
        "{}",
        res.status()
    );
}

async fn upload_sessions_are_bound(s: &Server) {
    s.create_project("bound", false).await;
    s.create_project("elsewhere", false).await;
    for u in ["alice", "bob"] {
        s.create_user(u, PASSWORD).await;
        s.add_member("bound", u, 2).await;
        s.add_member("elsewhere", u, 2).await;
    }
    let res = as_user(s, "alice", Method::POST, "/v2/bound/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let loc = location(&res);
    let uuid = header(&res, "docker-upload-uuid").unwrap();
    let data = random_bytes(1000);
    let d = berth_oci::Digest::sha256(&data);

    // The same session through another repository: unknown, in every form.
    for repo in ["bound/other", "elsewhere/app"] {
        let path = format!("/v2/{repo}/blobs/uploads/{uuid}");
        for (m, body) in [
            (Method::GET, None),
            (Method::PATCH, Some(data.clone())),
            (Method::PUT, Some(data.clone())),
            (Method::DELETE, None),
        ] {
            let url = if m == Method::PUT {
                format!("{path}?digest={d}")
            } else {
                path.clone()
            };
            let mut r = as_user(s, "alice", m.clone(), &url);
            if let Some(b) = body {
                r = r.header("content-type", "application/octet-stream").body(b);
            }
            let res = r.send().await.unwrap();
            expect_error(res, 404, "BLOB_UPLOAD_UNKNOWN").await;
        }
    }
    // Another user with push rights on the same repository cannot use it.
    let res = as_user(s, "bob", Method::PATCH, &loc)
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "BLOB_UPLOAD_UNKNOWN").await;
    let res = as_user(s, "bob", Method::DELETE, &loc)
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "BLOB_UPLOAD_UNKNOWN").await;
    // Nothing of the above touched it: alice completes it.
    let res = as_user(s, "alice", Method::GET, &loc).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(header_of(&res, "range"), "0-0");
    let res = as_user(
        s,
        "alice",
        Method::PUT,
        &with_query(&loc, &format!("digest={d}")),
    )
    .header("content-type", "application/octet-stream")
    .body(data.clone())
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    // Nowhere else did it land.
    for repo in ["bound/other", "elsewhere/app"] {
        let res = s
            .admin(Method::HEAD, &format!("/v2/{repo}/blobs/{d}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{repo}");
    }
    // A session id that is not a UUID is a clean 404, not a 5xx.
    let res = as_user(
        s,
        "alice",
        Method::GET,
        "/v2/bound/app/blobs/uploads/..%2F..%2Fetc",
    )
    .send()
    .await
    .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
}

async fn objects_are_not_reachable_through_another_project(s: &Server) {
    s.create_project("ours", false).await;
    s.create_project("theirs", false).await;
    s.create_user("owner1", PASSWORD).await;
    s.create_user("victim", PASSWORD).await;
    s.add_member("ours", "owner1", 1).await;
    s.add_member("theirs", "victim", 2).await;
    let (theirs_digest, _, _) = s.push_image("theirs/app", "v1", 1).await;
    s.push_image("ours/app", "v1", 1).await;

    // A member of "theirs", by id, through "ours".
    let members = s.get_json("/api/v2.0/projects/theirs/members").await;
    let victim_mid = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["entity_name"] == "victim")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v2.0/projects/ours/members/{victim_mid}");
    let res = as_user(s, "owner1", Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = as_user(s, "owner1", Method::PUT, &path)
        .json(&json!({ "role_id": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = as_user(s, "owner1", Method::DELETE, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let members = s.get_json("/api/v2.0/projects/theirs/members").await;
    let victim = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["entity_name"] == "victim")
        .expect("victim is still a member");
    assert_eq!(victim["role_id"], 2, "role unchanged");

    // Their artifact by digest through our repository of the same name.
    let path = format!("/api/v2.0/projects/ours/repositories/app/artifacts/{theirs_digest}");
    let res = as_user(s, "owner1", Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = as_user(s, "owner1", Method::DELETE, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = as_user(s, "owner1", Method::POST, &format!("{path}/tags"))
        .json(&json!({ "name": "hijack" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = as_user(
        s,
        "owner1",
        Method::GET,
        &format!("/v2/ours/app/manifests/{theirs_digest}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 404);
    let a = s
        .get_json(&format!(
            "/api/v2.0/projects/theirs/repositories/app/artifacts/{theirs_digest}?with_tag=true"
        ))
        .await;
    assert_eq!(a["tags"].as_array().unwrap().len(), 1, "{a}");

    // A robot of "theirs" by id: not visible to the admin of "ours".
    let res = s
        .admin(Method::POST, "/api/v2.0/robots")
        .json(&json!({ "name": "ci", "level": "project", "duration": -1, "permissions": [{ "kind": "project", "namespace": "theirs", "access": [{ "resource": "repository", "action": "pull" }] }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let robot: Value = res.json().await.unwrap();
    let rid = robot["id"].as_i64().unwrap();
    let path = format!("/api/v2.0/robots/{rid}");
    let res = as_user(s, "owner1", Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 403 | 404),
        "{}",
        res.status()
    );
    let res = as_user(s, "owner1", Method::DELETE, &path)
        .send()
        .await
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 403 | 404),
        "{}",
        res.status()
    );
    let res = as_user(s, "owner1", Method::PATCH, &path)
        .json(&json!({ "secret": "Hijacked-Secret-123" }))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(res.status().as_u16(), 403 | 404),
        "{}",
        res.status()
    );
    assert_eq!(s.get_json(&path).await["name"], robot["name"]);
    // A robot of "ours" may not be given permissions on "theirs".
    let res = as_user(s, "owner1", Method::POST, "/api/v2.0/robots")
        .json(&json!({ "name": "sneaky", "level": "project", "duration": -1, "permissions": [
            { "kind": "project", "namespace": "ours", "access": [{ "resource": "repository", "action": "pull" }] },
            { "kind": "project", "namespace": "theirs", "access": [{ "resource": "repository", "action": "pull" }] }
        ] }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());

    // Listings show only what owner1 may see.
    let projects = as_user(s, "owner1", Method::GET, "/api/v2.0/projects")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let names: Vec<&str> = projects
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ours") && !names.contains(&"theirs"),
        "{names:?}"
    );
    let repos = as_user(s, "owner1", Method::GET, "/api/v2.0/repositories")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let names: Vec<&str> = repos
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ours/app") && !names.contains(&"theirs/app"),
        "{names:?}"
    );
    let res = as_user(
        s,
        "owner1",
        Method::GET,
        "/api/v2.0/projects/theirs/repositories",
    )
    .send()
    .await
    .unwrap();
    assert!(
        matches!(res.status().as_u16(), 403 | 404),
        "{}",
        res.status()
    );
    let catalog = as_user(s, "owner1", Method::GET, "/v2/_catalog")
        .send()
        .await
        .unwrap();
    if catalog.status() == 200 {
        let v: Value = catalog.json().await.unwrap();
        let names: Vec<&str> = v["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(!names.contains(&"theirs/app"), "{names:?}");
    } else {
        assert!(matches!(catalog.status().as_u16(), 401 | 403));
    }
    // Audit log of "theirs" is not readable by the admin of "ours".
    let res = as_user(
        s,
        "owner1",
        Method::GET,
        "/api/v2.0/projects/theirs/auditlog-exts",
    )
    .send()
    .await
    .unwrap();
    assert!(
        matches!(res.status().as_u16(), 403 | 404),
        "{}",
        res.status()
    );
}
