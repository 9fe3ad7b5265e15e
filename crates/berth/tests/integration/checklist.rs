//! Lines of `security-checklist.md` (Authn, Authz/IDOR, Input validation)
//! that the other files do not already show, each test named after the
//! line it proves. Where a line is covered elsewhere, `docs/security.md`
//! says where.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::*;
use crate::on_backends;

const PASSWORD: &str = "Check-Pass-1234";

on_backends!(
    a1_anonymous_gets_one_answer_for_private_and_missing,
    z4_robots_never_get_more_than_their_creator_holds,
    z6_each_method_needs_its_own_action,
    z10_the_catalog_is_filtered_in_every_spelling,
    i7_queries_and_sorts_are_data_not_code,
    i8_stored_strings_come_back_verbatim,
);

/// A3: no fixed default password; a generated one is printed once and
/// works, `Harbor12345` never does; each install has its own token key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a3_a_fresh_install_has_no_default_password() {
    let mut s = Server::start_with(
        Backend::Embedded,
        vec![("BERTH_ADMIN_PASSWORD".into(), String::new())],
    )
    .await;
    let log = s.log();
    let marker = "with the generated password: ";
    let start = log.find(marker).expect("the generated password is printed") + marker.len();
    let generated: String = log[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert!(generated.len() >= 16, "{generated:?}");
    for wrong in ["Harbor12345", ADMIN_PASSWORD] {
        let res = s
            .basic("admin", wrong, Method::GET, "/api/v2.0/users/current")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "admin/{wrong} must be refused");
        tokio::time::sleep(Duration::from_millis(1700)).await;
    }
    let res = s
        .basic("admin", &generated, Method::GET, "/api/v2.0/users/current")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // printed once: a restart keeps the password and prints nothing new
    s.restart().await;
    assert_eq!(s.log().matches(marker).count(), 1);
    let res = s
        .basic("admin", &generated, Method::GET, "/api/v2.0/users/current")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // another install signs with another key
    let other = Server::start(Backend::Embedded).await;
    let key = |srv: &Server| std::fs::read(srv.data_dir().join("token.key")).expect("token key");
    assert_ne!(key(&s), key(&other));
}

/// A1: without credentials, every route of a private project answers as
/// the same route of a project that does not exist: 401 with a challenge.
async fn a1_anonymous_gets_one_answer_for_private_and_missing(s: &Server) {
    s.create_project("hidden", false).await;
    let (digest, _, layers) = s.push_image("hidden/app", "v1", 1).await;
    let blob = layers[0].as_str().to_owned();
    let routes = |p: &str| -> Vec<(Method, String)> {
        vec![
            (Method::GET, format!("/v2/{p}/app/manifests/v1")),
            (Method::HEAD, format!("/v2/{p}/app/manifests/{digest}")),
            (Method::GET, format!("/v2/{p}/app/tags/list")),
            (Method::GET, format!("/v2/{p}/app/blobs/{blob}")),
            (Method::HEAD, format!("/v2/{p}/app/blobs/{blob}")),
            (Method::GET, format!("/v2/{p}/app/referrers/{digest}")),
            (Method::POST, format!("/v2/{p}/app/blobs/uploads/")),
            (Method::DELETE, format!("/v2/{p}/app/manifests/{digest}")),
            (Method::GET, format!("/api/v2.0/projects/{p}")),
            (Method::HEAD, format!("/api/v2.0/projects?project_name={p}")),
            (Method::GET, format!("/api/v2.0/projects/{p}/summary")),
            (Method::GET, format!("/api/v2.0/projects/{p}/repositories")),
            (
                Method::GET,
                format!("/api/v2.0/projects/{p}/repositories/app"),
            ),
            (
                Method::GET,
                format!("/api/v2.0/projects/{p}/repositories/app/artifacts"),
            ),
            (
                Method::GET,
                format!("/api/v2.0/projects/{p}/repositories/app/artifacts/v1"),
            ),
            (
                Method::GET,
                format!("/api/v2.0/projects/{p}/repositories/app/artifacts/v1/tags"),
            ),
            (
                Method::DELETE,
                format!("/api/v2.0/projects/{p}/repositories/app"),
            ),
            (Method::GET, format!("/api/v2.0/projects/{p}/members")),
            (Method::GET, format!("/api/v2.0/projects/{p}/auditlog-exts")),
            (Method::DELETE, format!("/api/v2.0/projects/{p}")),
        ]
    };
    let answer = |m: Method, path: String| async move {
        let res = s.anon(m.clone(), &path).send().await.unwrap();
        let status = res.status().as_u16();
        let www = header(&res, "www-authenticate").unwrap_or_default();
        let body = res.text().await.unwrap();
        (
            status,
            www.split(",scope=").next().unwrap_or("").to_owned(),
            body,
        )
    };
    for ((m, private), (_, missing)) in routes("hidden").into_iter().zip(routes("nosuch")) {
        // (Harbor answers the project-existence HEAD to anyone, which
        // tells strangers which private projects exist; Berth asks for
        // credentials first)
        let (st, www, body) = answer(m.clone(), private.clone()).await;
        let other = answer(m.clone(), missing.clone()).await;
        assert_eq!(st, 401, "{m} {private}: {body}");
        assert!(
            www.starts_with("Bearer realm=") || www.starts_with("Basic realm="),
            "{m} {private}: {www:?}"
        );
        assert_eq!(
            (st, www.as_str()),
            (other.0, other.1.as_str()),
            "{m} {private} and {missing} must answer alike"
        );
        if m != Method::HEAD {
            assert_eq!(body, other.2, "{m} {private} and {missing}: same body");
        }
    }
    // and nothing changed
    let st = s
        .admin(Method::GET, &format!("/v2/hidden/app/manifests/{digest}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 200);
    // system-wide lists and settings need credentials too
    for path in [
        "/api/v2.0/users",
        "/api/v2.0/users/current",
        "/api/v2.0/robots",
        "/api/v2.0/configurations",
        "/api/v2.0/auditlog-exts",
        "/api/v2.0/audit-logs",
        "/api/v2.0/permissions",
    ] {
        let res = s.anon(Method::GET, path).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
        assert!(header(&res, "www-authenticate").is_some(), "{path}");
    }
}

/// Z4: a project admin creates robots only inside the projects it
/// administers, never system robots; a robot that may create robots
/// grants at most what it holds, and cannot widen itself.
async fn z4_robots_never_get_more_than_their_creator_holds(s: &Server) {
    s.create_project("pa", false).await;
    s.create_project("pv", false).await;
    s.create_user("pam", PASSWORD).await;
    s.add_member("pa", "pam", 1).await;
    let pam = |m: Method, p: &str| s.basic("pam", PASSWORD, m, p);
    let project_robot = |name: &str, ns: &str, access: Value| {
        json!({ "name": name, "level": "project", "duration": -1,
                "permissions": [{ "kind": "project", "namespace": ns, "access": access }] })
    };
    let pull = json!([{ "resource": "repository", "action": "pull" }]);
    let res = pam(Method::POST, "/api/v2.0/robots")
        .json(&project_robot("mine", "pa", pull.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    for (what, body) in [
        (
            "a robot in a project pam does not administer",
            project_robot("theirs", "pv", pull.clone()),
        ),
        (
            "a system robot",
            json!({ "name": "sys", "level": "system", "duration": -1,
                    "permissions": [{ "kind": "project", "namespace": "pa", "access": pull }] }),
        ),
        (
            "a robot on every project",
            json!({ "name": "all", "level": "system", "duration": -1,
                    "permissions": [{ "kind": "project", "namespace": "*", "access": pull }] }),
        ),
        (
            "a project robot naming two projects",
            json!({ "name": "two", "level": "project", "duration": -1,
                    "permissions": [{ "kind": "project", "namespace": "pa", "access": pull },
                                    { "kind": "project", "namespace": "pv", "access": pull }] }),
        ),
    ] {
        let res = pam(Method::POST, "/api/v2.0/robots")
            .json(&body)
            .send()
            .await
            .unwrap();
        let st = res.status().as_u16();
        assert!(st == 403 || st == 400, "{what}: {st}");
    }
    // accounts that mint accounts are granted by system admins only
    for (resource, action) in [("user", "create"), ("robot", "create"), ("robot", "delete")] {
        let res = pam(Method::POST, "/api/v2.0/robots")
            .json(&project_robot(
                &format!("x{resource}"),
                "pa",
                json!([{ "resource": resource, "action": action }]),
            ))
            .send()
            .await
            .unwrap();
        let st = res.status().as_u16();
        assert!(st == 403 || st == 400, "{resource}:{action}: {st}");
    }
    let names: Vec<String> = s
        .get_json("/api/v2.0/robots?page_size=100")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["robot$pa+mine"], "nothing else was created");

    // a system robot allowed to create robots, holding pull on pa
    let (rname, rsecret) = s
        .create_robot(json!({ "name": "maker", "level": "system", "duration": -1,
            "permissions": [
                { "kind": "system", "namespace": "/", "access": [
                    { "resource": "robot", "action": "create" }, { "resource": "robot", "action": "read" },
                    { "resource": "robot", "action": "list" } ] },
                { "kind": "project", "namespace": "pa", "access": [{ "resource": "repository", "action": "pull" }] },
            ] }))
        .await;
    let maker = |m: Method, p: &str| s.basic(&rname, &rsecret, m, p);
    // it makes system robots (project robots need robot:create in the
    // project itself, as in Harbor)
    let system_robot = |name: &str, ns: &str, access: Value| {
        json!({ "name": name, "level": "system", "duration": -1,
                "permissions": [{ "kind": "project", "namespace": ns, "access": access }] })
    };
    let res = maker(Method::POST, "/api/v2.0/robots")
        .json(&system_robot(
            "child",
            "pa",
            json!([{ "resource": "repository", "action": "pull" }]),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "within what it holds");
    for (what, body) in [
        (
            "push it lacks",
            system_robot(
                "pusher",
                "pa",
                json!([{ "resource": "repository", "action": "push" }]),
            ),
        ),
        (
            "a project it lacks",
            system_robot(
                "other",
                "pv",
                json!([{ "resource": "repository", "action": "pull" }]),
            ),
        ),
        (
            "a robot that mints robots",
            json!({ "name": "minter", "level": "system", "duration": -1,
                    "permissions": [{ "kind": "system", "namespace": "/", "access": [
                        { "resource": "robot", "action": "create" } ] }] }),
        ),
        (
            "system rights it lacks",
            json!({ "name": "admin2", "level": "system", "duration": -1,
                    "permissions": [{ "kind": "system", "namespace": "/", "access": [
                        { "resource": "user", "action": "create" } ] }] }),
        ),
        (
            "every project",
            json!({ "name": "star", "level": "system", "duration": -1,
                    "permissions": [{ "kind": "project", "namespace": "*", "access": [
                        { "resource": "repository", "action": "pull" } ] }] }),
        ),
    ] {
        let res = maker(Method::POST, "/api/v2.0/robots")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{what}");
    }
    // nor can it widen itself
    let me = s
        .get_json("/api/v2.0/robots?q=name%3Dmaker")
        .await
        .as_array()
        .unwrap()[0]
        .clone();
    let id = me["id"].as_i64().unwrap();
    let mut wider = me.clone();
    wider["permissions"] = json!([{ "kind": "project", "namespace": "*", "access": [
        { "resource": "repository", "action": "push" } ] }]);
    let res = maker(Method::PUT, &format!("/api/v2.0/robots/{id}"))
        .json(&wider)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let after = s.get_json(&format!("/api/v2.0/robots/{id}")).await;
    assert_eq!(after["permissions"], me["permissions"], "unchanged");
}

/// Z6: GET/HEAD need pull, POST/PUT/PATCH push, DELETE delete: a robot
/// holding pull and push cannot delete, one holding pull cannot write.
async fn z6_each_method_needs_its_own_action(s: &Server) {
    s.create_project("methods", false).await;
    let (digest, _, _) = s.push_image("methods/app", "v1", 1).await;
    let robot = |name: &str, actions: &[&str]| {
        let access: Vec<Value> = actions
            .iter()
            .map(|a| json!({ "resource": "repository", "action": a }))
            .collect();
        json!({ "name": name, "level": "project", "duration": -1,
                "permissions": [{ "kind": "project", "namespace": "methods", "access": access }] })
    };
    let (pusher, push_secret) = s.create_robot(robot("pusher", &["pull", "push"])).await;
    let (reader, read_secret) = s.create_robot(robot("reader", &["pull"])).await;
    // through the token flow, as clients do
    let token = |user: String, secret: String| async move {
        let res = s
            .anon(
                Method::GET,
                "/service/token?service=harbor-registry&scope=repository:methods/app:pull,push,delete",
            )
            .basic_auth(user, Some(secret))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        v["token"].as_str().unwrap().to_owned()
    };
    let push_token = token(pusher.clone(), push_secret.clone()).await;
    let read_token = token(reader.clone(), read_secret.clone()).await;
    let with = |t: &str, m: Method, p: &str| s.http.request(m, s.url(p)).bearer_auth(t);
    let manifest = format!("/v2/methods/app/manifests/{digest}");
    for t in [&push_token, &read_token] {
        let st = with(t, Method::GET, &manifest)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(st, 200);
        let st = with(t, Method::DELETE, &manifest)
            .send()
            .await
            .unwrap()
            .status();
        assert!(st == 401 || st == 403, "DELETE without delete: {st}");
    }
    let st = with(&read_token, Method::POST, "/v2/methods/app/blobs/uploads/")
        .send()
        .await
        .unwrap()
        .status();
    assert!(st == 401 || st == 403, "POST without push: {st}");
    let st = with(&read_token, Method::PUT, "/v2/methods/app/manifests/v2")
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert!(st == 401 || st == 403, "PUT without push: {st}");
    // a session opened with push cannot be written with a pull-only token
    let res = with(&push_token, Method::POST, "/v2/methods/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let loc = location(&res);
    // a malformed parameter is answered only to callers who may act: the
    // others hear that they may not
    let st = s
        .anon(Method::GET, "/v2/methods/app/blobs/sha256:nothex")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 401, "anonymous GET with a bad digest");
    let st = with(
        &read_token,
        Method::DELETE,
        "/v2/methods/app/blobs/sha256:nothex",
    )
    .send()
    .await
    .unwrap()
    .status();
    assert!(
        st == 401 || st == 403,
        "DELETE with a bad digest and pull only: {st}"
    );
    let st = with(
        &read_token,
        Method::GET,
        "/v2/methods/app/blobs/sha256:nothex",
    )
    .send()
    .await
    .unwrap()
    .status();
    assert_eq!(st, 400, "a caller who may pull learns the digest is bad");
    // a missing or malformed digest does not get past authorization first
    for bad in ["", "digest=sha256:nothex"] {
        let sep = if loc.contains('?') { '&' } else { '?' };
        let st = with(&read_token, Method::PUT, &format!("{loc}{sep}{bad}"))
            .send()
            .await
            .unwrap()
            .status();
        assert!(st == 401 || st == 403, "PUT ?{bad} with pull only: {st}");
    }
    let sep = if loc.contains('?') { '&' } else { '?' };
    let with_digest = format!("{loc}{sep}digest={}", berth_oci::Digest::sha256(b"x"));
    for (m, url) in [
        (Method::PATCH, loc.clone()),
        (Method::PUT, with_digest),
        (Method::DELETE, loc.clone()),
    ] {
        let st = with(&read_token, m.clone(), &url)
            .body("x")
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            st == 401 || st == 403 || st == 404,
            "{m} on an upload with pull only: {st}"
        );
    }
    // Basic credentials directly on /v2 follow the same rules
    let st = s
        .basic(&pusher, &push_secret, Method::DELETE, &manifest)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 403);
    let st = s
        .admin(Method::GET, &manifest)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 200, "the manifest is still there");
}

/// Z10: `/v2/_catalog`, however spelled, answers anonymous callers 401 and
/// lists nothing a caller cannot read.
async fn z10_the_catalog_is_filtered_in_every_spelling(s: &Server) {
    s.create_project("cat-mine", false).await;
    s.create_project("cat-theirs", false).await;
    s.push_image("cat-mine/app", "v1", 1).await;
    s.push_image("cat-theirs/secret-app", "v1", 1).await;
    s.create_user("cathy", PASSWORD).await;
    s.add_member("cat-mine", "cathy", 2).await;
    let spellings = [
        "/v2/_catalog",
        "/v2/_catalog/",
        "/v2/_catalog?n=1000000000",
        "/v2/_catalog?n=1&last=",
        "/v2//_catalog",
        "/v2/%5Fcatalog",
        "/v2/cat-theirs%2Fsecret-app/tags/list",
        "/v2/cat-theirs/secret-app/../../_catalog",
    ];
    for path in spellings {
        let res = s.anon(Method::GET, path).send().await.unwrap();
        let st = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert!(matches!(st, 400 | 401 | 404), "anonymous {path}: {st}");
        assert!(!body.contains("secret-app"), "anonymous {path}: {body}");
        let res = s
            .basic("cathy", PASSWORD, Method::GET, path)
            .send()
            .await
            .unwrap();
        let st = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert!(st != 500, "cathy {path}: {body}");
        assert!(!body.contains("secret-app"), "cathy {path}: {st} {body}");
    }
    // the admin sees both, and n is clamped rather than obeyed blindly
    let all = s.get_json("/v2/_catalog?n=1000000000").await;
    let repos = all["repositories"].as_array().unwrap();
    assert!(
        repos.contains(&json!("cat-mine/app")) && repos.contains(&json!("cat-theirs/secret-app"))
    );
}

/// I7: what callers put in `q` and `sort` is matched literally or refused;
/// it never runs as SQL, never errors with a 5xx, never filters on secrets,
/// and answers at once.
async fn i7_queries_and_sorts_are_data_not_code(s: &Server) {
    s.create_project("qproj", false).await;
    s.push_image("qproj/app", "v1", 1).await;
    s.create_user("quinn", PASSWORD).await;
    let corpus = [
        ";select pg_sleep(5)--",
        "' or '1'='1",
        "\" or \"1\"=\"1",
        "%",
        "_",
        "%%",
        "\\",
        "x') UNION SELECT password FROM users--",
        "1; DROP TABLE projects",
        "{a b}",
        "(a b)",
        "[1~2]",
        "name",
    ];
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let lists = [
        ("/api/v2.0/projects", "name"),
        ("/api/v2.0/repositories", "name"),
        ("/api/v2.0/projects/qproj/repositories", "name"),
        (
            "/api/v2.0/projects/qproj/repositories/app/artifacts",
            "tags",
        ),
        ("/api/v2.0/users", "username"),
        ("/api/v2.0/robots", "name"),
        ("/api/v2.0/auditlog-exts", "resource"),
    ];
    for (path, key) in lists {
        for value in corpus {
            for q in [
                format!("{key}=~{value}"),
                format!("{key}={value}"),
                value.to_owned(),
            ] {
                for param in ["q", "sort"] {
                    let url = format!("{path}?{param}={}", enc(&q));
                    let t = Instant::now();
                    let res = s.admin(Method::GET, &url).send().await.unwrap();
                    let took = t.elapsed();
                    let st = res.status().as_u16();
                    let body = res.text().await.unwrap();
                    assert!(st == 200 || st == 400, "{url}: {st} {body}");
                    assert!(took < Duration::from_secs(2), "{url} took {took:?}");
                    if st == 200 && param == "q" && q.starts_with(key) {
                        // a literal match on a hostile string finds nothing
                        let v: Value = serde_json::from_str(&body).unwrap();
                        assert_eq!(v, json!([]), "{url} matched something: {body}");
                    }
                }
            }
        }
    }
    // secrets are not query fields
    for (path, key) in [
        ("/api/v2.0/users", "password"),
        ("/api/v2.0/users", "salt"),
        ("/api/v2.0/users", "password_hash"),
        ("/api/v2.0/robots", "secret"),
        ("/api/v2.0/robots", "salt"),
    ] {
        for q in [format!("{key}=~a"), format!("{key}=a")] {
            let url = format!("{path}?q={}", enc(&q));
            let res = s.admin(Method::GET, &url).send().await.unwrap();
            assert_eq!(res.status(), 400, "{url}");
            // an unknown sort key is refused or ignored (Harbor ignores
            // it), never followed
            let url = format!("{path}?sort={key}");
            let res = s.admin(Method::GET, &url).send().await.unwrap();
            let st = res.status().as_u16();
            let sorted = res.text().await.unwrap();
            assert!(st == 200 || st == 400, "{url}: {st}");
            if st == 200 {
                let plain = s.admin(Method::GET, path).send().await.unwrap();
                assert_eq!(
                    sorted,
                    plain.text().await.unwrap(),
                    "{url} changed the order"
                );
            }
        }
    }
    // everything is still there
    let users = s.get_json("/api/v2.0/users?q=username%3Dquinn").await;
    assert_eq!(users.as_array().unwrap().len(), 1);
    let repos = s.get_json("/api/v2.0/projects/qproj/repositories").await;
    assert_eq!(repos.as_array().unwrap().len(), 1);
}

/// I8: stored strings come back byte for byte, as JSON with `nosniff`.
async fn i8_stored_strings_come_back_verbatim(s: &Server) {
    s.create_project("verbatim", false).await;
    s.push_image("verbatim/app", "v1", 1).await;
    let hostile = "<script>alert(1)</script> \"quoted\" & 'single' \u{2028} =cmd|' /C calc'!A0 @SUM(1) \\ é 🚢";
    let res = s
        .admin(Method::PUT, "/api/v2.0/projects/verbatim/repositories/app")
        .json(&json!({ "description": hostile }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, _) = s
        .create_robot(json!({ "name": "verb", "description": hostile, "level": "project", "duration": -1,
            "permissions": [{ "kind": "project", "namespace": "verbatim", "access": [{ "resource": "repository", "action": "pull" }] }] }))
        .await;
    let res = s
        .admin(Method::POST, "/api/v2.0/users")
        .json(&json!({ "username": "verb", "email": "verb@example.com", "realname": "<b>Verb</b> & Co", "password": PASSWORD, "comment": "<i>x</i>" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    for (path, field, want) in [
        (
            "/api/v2.0/projects/verbatim/repositories/app",
            "/description",
            hostile,
        ),
        ("/api/v2.0/robots?q=name%3D~verb", "/0/description", hostile),
        (
            "/api/v2.0/users?q=username%3Dverb",
            "/0/realname",
            "<b>Verb</b> & Co",
        ),
        (
            "/api/v2.0/users?q=username%3Dverb",
            "/0/comment",
            "<i>x</i>",
        ),
    ] {
        let res = s.admin(Method::GET, path).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(&res, "x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        let ct = header(&res, "content-type").unwrap_or_default();
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v.pointer(field), Some(&json!(want)), "{path}{field}");
    }
}

/// A8: an expired robot is refused on `/v2`, `/service/token` and `/api`,
/// like a disabled or deleted one (`accounts::robots_api`). A robot's
/// lifetime is counted in days, so the test moves its expiry into the past
/// in the database while the server is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a8_an_expired_robot_is_refused_everywhere() {
    let mut s = Server::start(Backend::Embedded).await;
    s.create_project("expiring", false).await;
    s.push_image("expiring/app", "v1", 1).await;
    let (name, secret) = s
        .create_robot(json!({ "name": "brief", "level": "project", "duration": 1,
            "permissions": [{ "kind": "project", "namespace": "expiring", "access": [
                { "resource": "repository", "action": "pull" }, { "resource": "repository", "action": "list" } ] }] }))
        .await;
    let paths = [
        "/v2/expiring/app/manifests/v1",
        "/service/token?service=harbor-registry&scope=repository:expiring/app:pull",
        "/api/v2.0/projects/expiring/repositories",
    ];
    for path in paths {
        let res = s
            .basic(&name, &secret, Method::GET, path)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path} before expiry");
    }
    s.stop();
    let db = format!("sqlite://{}", s.data_dir().join("berth.db").display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db)
        .await
        .unwrap();
    let past = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 60;
    let done = sqlx::query("UPDATE robots SET expires_at = ? WHERE name = 'expiring+brief'")
        .bind(past)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
    drop(conn);
    s.start_again().await;
    for path in paths {
        let res = s
            .basic(&name, &secret, Method::GET, path)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{path} after expiry");
        tokio::time::sleep(Duration::from_millis(1700)).await;
    }
    let v = s.get_json("/api/v2.0/robots?q=name%3D~brief").await;
    assert_eq!(v[0]["expires_at"], past, "the listing shows the expiry");
}
