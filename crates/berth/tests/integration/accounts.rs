//! Users, robots, configuration, sessions and the audit log through
//! Harbor's API, and `docker`/`skopeo`/`podman login` through the token
//! service.

use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};

use crate::clients::{require, with_stdin};
use crate::harness::*;

const PW: &str = "Alice-Pass-1234";

fn as_user<'a>(
    s: &'a Server,
    name: &'a str,
    pw: &'a str,
) -> impl Fn(Method, &str) -> reqwest::RequestBuilder + 'a {
    move |m, p| s.basic(name, pw, m, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_api() {
    let s = Server::start(Backend::Embedded).await;
    let alice = s.create_user("alice", PW).await;
    let bob = s.create_user("bob", PW).await;
    // validation
    for (body, _what) in [
        (
            json!({ "username": "x1", "email": "x1@example.com", "realname": "x", "password": "weakpass" }),
            "weak password",
        ),
        (
            json!({ "username": "x,2", "email": "x2@example.com", "realname": "x", "password": PW }),
            "illegal character",
        ),
        (
            json!({ "username": "x3", "email": "not-an-email", "realname": "x", "password": PW }),
            "bad email",
        ),
        (
            json!({ "username": "robot$x", "email": "x4@example.com", "realname": "x", "password": PW }),
            "robot prefix",
        ),
        (
            json!({ "username": "x5", "email": "x5@example.com", "realname": "x", "password": PW, "comment": "c".repeat(31) }),
            "long comment",
        ),
    ] {
        let res = s
            .admin(Method::POST, "/api/v2.0/users")
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "BAD_REQUEST").await;
    }
    let res = s
        .admin(Method::POST, "/api/v2.0/users")
        .json(&json!({ "username": "alice", "email": "other@example.com", "realname": "a", "password": PW }))
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "CONFLICT").await;
    let res = s
        .admin(Method::POST, "/api/v2.0/users")
        .json(&json!({ "username": "carol", "email": "alice@example.com", "realname": "a", "password": PW }))
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "CONFLICT").await;
    // a non-admin cannot create users, even with self-registration on
    let a = as_user(&s, "alice", PW);
    let res = a(Method::POST, "/api/v2.0/users")
        .json(&json!({ "username": "eve", "email": "eve@example.com", "realname": "e", "password": PW }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    s.admin(Method::PUT, "/api/v2.0/configurations")
        .json(&json!({ "self_registration": true }))
        .send()
        .await
        .unwrap();
    let res = a(Method::POST, "/api/v2.0/users")
        .json(&json!({ "username": "eve", "email": "eve@example.com", "realname": "e", "password": PW }))
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    assert!(
        body.contains("self-registration cannot be triggered via API"),
        "{body}"
    );
    // list and search
    let res = s
        .admin(Method::GET, "/api/v2.0/users?page_size=2")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "x-total-count").as_deref(), Some("3"));
    let list: Value = s.get_json("/api/v2.0/users?q=username%3D~ali").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["username"], "alice");
    assert_eq!(list[0]["sysadmin_flag"], false);
    assert!(list[0].get("password").is_none() && list[0].get("password_hash").is_none());
    assert_eq!(
        a(Method::GET, "/api/v2.0/users")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let found: Value = a(Method::GET, "/api/v2.0/users/search?username=bo")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found, json!([{ "user_id": bob, "username": "bob" }]));
    // current user, self and others
    let me: Value = a(Method::GET, "/api/v2.0/users/current")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["user_id"].as_i64(), me["email"].as_str()),
        (Some(alice), Some("alice@example.com"))
    );
    assert_eq!(
        a(Method::GET, &format!("/api/v2.0/users/{alice}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        a(Method::GET, &format!("/api/v2.0/users/{bob}"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        s.anon(Method::GET, "/api/v2.0/users/current")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let res = a(Method::PUT, &format!("/api/v2.0/users/{alice}"))
        .json(&json!({ "email": "alice2@example.com", "realname": "Alice A", "comment": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        s.get_json(&format!("/api/v2.0/users/{alice}")).await["email"],
        "alice2@example.com"
    );
    assert_eq!(
        a(Method::PUT, &format!("/api/v2.0/users/{bob}"))
            .json(&json!({ "email": "b@example.com", "realname": "b" }))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // passwords: the old one is required for one's own, the policy applies
    let pw = |old: Option<&str>, new: &str| {
        let mut b = json!({ "new_password": new });
        if let Some(o) = old {
            b["old_password"] = json!(o);
        }
        a(Method::PUT, &format!("/api/v2.0/users/{alice}/password")).json(&b)
    };
    assert_eq!(
        pw(Some("Wrong-Pass-1"), "Newer-Pass-1234")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        pw(None, "Newer-Pass-1234").send().await.unwrap().status(),
        403
    );
    expect_error(
        pw(Some(PW), "short").send().await.unwrap(),
        400,
        "BAD_REQUEST",
    )
    .await;
    expect_error(pw(Some(PW), PW).send().await.unwrap(), 400, "BAD_REQUEST").await;
    assert_eq!(
        pw(Some(PW), "Newer-Pass-1234")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        a(Method::GET, "/api/v2.0/users/current")
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "the old password stops working"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    let a2 = as_user(&s, "alice", "Newer-Pass-1234");
    assert_eq!(
        a2(Method::GET, "/api/v2.0/users/current")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // an admin resets without the old one
    let res = s
        .admin(Method::PUT, &format!("/api/v2.0/users/{bob}/password"))
        .json(&json!({ "new_password": "Reset-Pass-1234" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        as_user(&s, "bob", "Reset-Pass-1234")(Method::GET, "/api/v2.0/users/current")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // sysadmin flag
    assert_eq!(
        a2(Method::GET, "/api/v2.0/users")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let res = s
        .admin(Method::PUT, &format!("/api/v2.0/users/{alice}/sysadmin"))
        .json(&json!({ "sysadmin_flag": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        a2(Method::GET, "/api/v2.0/users")
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "alice is an admin now"
    );
    assert_eq!(
        a2(Method::PUT, "/api/v2.0/users/1/sysadmin")
            .json(&json!({ "sysadmin_flag": false }))
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "the admin user keeps its flag"
    );
    // delete: soft, name freed; the admin and oneself cannot be deleted
    assert_eq!(
        s.admin(Method::DELETE, "/api/v2.0/users/1")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        s.admin(Method::DELETE, &format!("/api/v2.0/users/{bob}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.admin(Method::GET, &format!("/api/v2.0/users/{bob}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        as_user(&s, "bob", "Reset-Pass-1234")(Method::GET, "/api/v2.0/users/current")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let again = s.create_user("bob", PW).await;
    assert_ne!(again, bob, "the name is free again, for a new user");
    // permissions of the current user
    s.create_project("pp", false).await;
    let res = s
        .admin(Method::POST, "/api/v2.0/projects/pp/members")
        .json(&json!({ "role_id": 3, "member_user": { "user_id": again } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let pp = s.get_json("/api/v2.0/projects/pp").await["project_id"]
        .as_i64()
        .unwrap();
    // the refused login of the deleted bob locked the name for 1.5 s
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    let b = as_user(&s, "bob", PW);
    let perms: Value = b(
        Method::GET,
        &format!("/api/v2.0/users/current/permissions?scope=/project/{pp}&relative=true"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let has = |r: &str, a: &str| {
        perms
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["resource"] == r && p["action"] == a)
    };
    assert!(has("repository", "pull") && has("artifact", "read"));
    assert!(!has("repository", "push") && !has("member", "create"));
    let abs: Value = b(
        Method::GET,
        &format!("/api/v2.0/users/current/permissions?scope=/project/{pp}"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(abs
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["resource"] == format!("/project/{pp}/repository")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_api() {
    let s = Server::start(Backend::Embedded).await;
    s.create_project("team", false).await;
    let dave = s.create_user("dave", PW).await;
    s.create_user("erin", PW).await;
    let res = s
        .admin(Method::POST, "/api/v2.0/projects/team/members")
        .json(&json!({ "role_id": 2, "member_user": { "username": "dave" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mid: i64 = location(&res).rsplit('/').next().unwrap().parse().unwrap();
    let res = s
        .admin(Method::POST, "/api/v2.0/projects/team/members")
        .json(&json!({ "role_id": 2, "member_user": { "user_id": dave } }))
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "CONFLICT").await;
    for body in [
        json!({ "role_id": 9, "member_user": { "username": "erin" } }),
        json!({ "role_id": 1 }),
        json!({ "role_id": 1, "member_user": {} }),
    ] {
        let res = s
            .admin(Method::POST, "/api/v2.0/projects/team/members")
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "BAD_REQUEST").await;
    }
    let res = s
        .admin(Method::POST, "/api/v2.0/projects/team/members")
        .json(&json!({ "role_id": 1, "member_user": { "username": "nobody" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let list = s.get_json("/api/v2.0/projects/team/members").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let m = s
        .get_json(&format!("/api/v2.0/projects/team/members/{mid}"))
        .await;
    assert_eq!(
        m,
        json!({ "id": mid, "project_id": m["project_id"], "entity_name": "dave", "role_name": "developer", "role_id": 2, "entity_id": dave, "entity_type": "u" })
    );
    assert_eq!(
        s.get_json("/api/v2.0/projects/team/members?entityname=dav")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // a developer may list but not change members; role changes apply at once
    let d = as_user(&s, "dave", PW);
    assert_eq!(
        d(Method::GET, "/api/v2.0/projects/team/members")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        d(
            Method::PUT,
            &format!("/api/v2.0/projects/team/members/{mid}")
        )
        .json(&json!({ "role_id": 1 }))
        .send()
        .await
        .unwrap()
        .status(),
        403
    );
    assert_eq!(
        d(Method::DELETE, "/api/v2.0/projects/team/repositories/x")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let res = s
        .admin(
            Method::PUT,
            &format!("/api/v2.0/projects/team/members/{mid}"),
        )
        .json(&json!({ "role_id": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        s.get_json(&format!("/api/v2.0/projects/team/members/{mid}"))
            .await["role_name"],
        "projectAdmin"
    );
    assert_eq!(
        d(Method::POST, "/api/v2.0/projects/team/members")
            .json(&json!({ "role_id": 3, "member_user": { "username": "erin" } }))
            .send()
            .await
            .unwrap()
            .status(),
        201,
        "dave administers the project now"
    );
    // removing the member removes the access
    assert_eq!(
        s.admin(
            Method::DELETE,
            &format!("/api/v2.0/projects/team/members/{mid}")
        )
        .send()
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        d(Method::GET, "/api/v2.0/projects/team")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        s.admin(
            Method::DELETE,
            &format!("/api/v2.0/projects/team/members/{mid}")
        )
        .send()
        .await
        .unwrap()
        .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_api() {
    let s = Server::start(Backend::Embedded).await;
    s.create_project("ci", false).await;
    let pid = s.get_json("/api/v2.0/projects/ci").await["project_id"]
        .as_i64()
        .unwrap();
    let perms = json!([{ "kind": "project", "namespace": "ci", "access": [{ "resource": "repository", "action": "push" }, { "resource": "repository", "action": "pull" }] }]);
    let res = s
        .admin(Method::POST, "/api/v2.0/robots")
        .json(&json!({ "name": "builder", "description": "builds", "level": "project", "duration": 30, "permissions": perms }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        header(&res, "content-type").as_deref(),
        Some("application/json")
    );
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["name"], "robot$ci+builder");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);
    assert!(
        secret.chars().any(|c| c.is_ascii_uppercase())
            && secret.chars().any(|c| c.is_ascii_lowercase())
            && secret.chars().any(|c| c.is_ascii_digit())
    );
    let id = created["id"].as_i64().unwrap();
    let expires = created["expires_at"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (expires - (now + 30 * 86_400)).abs() < 120,
        "expires in 30 days"
    );
    // the secret is never shown again
    let got = s.get_json(&format!("/api/v2.0/robots/{id}")).await;
    assert!(got.get("secret").is_none(), "{got}");
    assert_eq!(
        (
            got["level"].as_str(),
            got["duration"].as_i64(),
            got["disable"].as_bool()
        ),
        (Some("project"), Some(30), Some(false))
    );
    let listed = s
        .get_json(&format!(
            "/api/v2.0/robots?q=Level%3Dproject,ProjectID%3D{pid}"
        ))
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    // it pushes and pulls, and nothing else
    let sref = &s;
    let robot = |secret: &str| {
        let secret = secret.to_owned();
        move |m: Method, p: &str| {
            sref.http
                .request(m, sref.url(p))
                .basic_auth("robot$ci+builder", Some(secret.clone()))
        }
    };
    let r = robot(&secret);
    assert_eq!(
        r(Method::POST, "/v2/ci/app/blobs/uploads/")
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        r(Method::GET, "/v2/ci/app/tags/list")
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "may pull; nothing there yet"
    );
    assert_eq!(
        r(Method::GET, "/api/v2.0/projects/ci/members")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // docker login and push work with the robot
    let token: Value =
        s.http
            .get(s.url(
                "/service/token?service=harbor-registry&scope=repository:ci/app:pull,push,delete",
            ))
            .basic_auth("robot$ci+builder", Some(&secret))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let claims = decode_claims(token["token"].as_str().unwrap());
    assert_eq!(
        claims["access"][0]["actions"],
        json!(["pull", "push"]),
        "delete is not granted"
    );
    // same name again
    let res = s
        .admin(Method::POST, "/api/v2.0/robots")
        .json(
            &json!({ "name": "builder", "level": "project", "duration": -1, "permissions": perms }),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "CONFLICT").await;
    // validation
    for (body, code) in [
        (
            json!({ "name": "Bad Name", "level": "project", "duration": -1, "permissions": perms }),
            400,
        ),
        (
            json!({ "name": "x", "level": "galaxy", "duration": -1, "permissions": perms }),
            400,
        ),
        (
            json!({ "name": "x", "level": "project", "duration": -5, "permissions": perms }),
            400,
        ),
        (
            json!({ "name": "x", "level": "project", "duration": -1, "permissions": [] }),
            400,
        ),
        (
            json!({ "name": "x", "level": "project", "duration": -1, "permissions": [{ "kind": "project", "namespace": "ci", "access": [{ "resource": "repository", "action": "create" }] }] }),
            400,
        ),
        (
            json!({ "name": "x", "level": "project", "duration": -1, "permissions": [{ "kind": "project", "namespace": "nope", "access": [{ "resource": "repository", "action": "pull" }] }] }),
            400,
        ),
        (
            json!({ "name": "x", "level": "project", "duration": -1, "secret": "weak", "permissions": perms }),
            400,
        ),
    ] {
        let res = s
            .admin(Method::POST, "/api/v2.0/robots")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), code, "{body}");
    }
    let res = s
        .admin(Method::POST, "/api/v2.0/robots")
        .json(&json!({ "name": "y", "level": "project", "duration": -1, "permissions": [{ "kind": "project", "namespace": "ci", "access": [{ "resource": "repository", "action": "delete" }] }] }))
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains("robot$ci+y"), "{body}");
    let res = s
        .admin(Method::POST, "/api/v2.0/robots")
        .json(&json!({ "name": "z", "level": "project", "duration": -1, "permissions": [{ "kind": "project", "namespace": "ci", "access": [{ "resource": "widget", "action": "pull" }] }] }))
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    assert!(
        body.contains("bad request permission: widget:pull"),
        "{body}"
    );
    // refresh: random secret returned; the old one stops at once
    let res = s
        .admin(Method::PATCH, &format!("/api/v2.0/robots/{id}"))
        .json(&json!({ "secret": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let new_secret = res.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(
        r(Method::POST, "/v2/ci/app/blobs/uploads/")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // the failure locks the name for 1.5 s (Harbor's throttle)
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    let r2 = robot(&new_secret);
    assert_eq!(
        r2(Method::POST, "/v2/ci/app/blobs/uploads/")
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    // a chosen secret is checked and not echoed
    expect_error(
        s.admin(Method::PATCH, &format!("/api/v2.0/robots/{id}"))
            .json(&json!({ "secret": "weak" }))
            .send()
            .await
            .unwrap(),
        400,
        "BAD_REQUEST",
    )
    .await;
    let res = s
        .admin(Method::PATCH, &format!("/api/v2.0/robots/{id}"))
        .json(&json!({ "secret": "Chosen-Secret-123" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["secret"], "");
    let r3 = robot("Chosen-Secret-123");
    assert_eq!(
        r3(Method::POST, "/v2/ci/app/blobs/uploads/")
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    // PUT takes the object as GET returns it; disabling refuses it everywhere
    let mut obj = s.get_json(&format!("/api/v2.0/robots/{id}")).await;
    obj["disable"] = json!(true);
    obj["description"] = json!("paused");
    assert_eq!(
        s.admin(Method::PUT, &format!("/api/v2.0/robots/{id}"))
            .json(&obj)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.get_json(&format!("/api/v2.0/robots/{id}")).await["description"],
        "paused"
    );
    assert_eq!(
        r3(Method::GET, "/v2/ci/app/tags/list")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        r3(Method::GET, "/api/v2.0/projects/ci")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let mut renamed = obj.clone();
    renamed["name"] = json!("robot$ci+other");
    assert_eq!(
        s.admin(Method::PUT, &format!("/api/v2.0/robots/{id}"))
            .json(&renamed)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    obj["disable"] = json!(false);
    assert_eq!(
        s.admin(Method::PUT, &format!("/api/v2.0/robots/{id}"))
            .json(&obj)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        r3(Method::GET, "/v2/ci/app/tags/list")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // permissions endpoint
    let p = s.get_json("/api/v2.0/permissions").await;
    assert!(p["system"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["resource"] == "catalog" && x["action"] == "read"));
    assert!(p["project"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["resource"] == "repository" && x["action"] == "push"));
    // deleting the project deletes its robots
    assert_eq!(
        s.admin(Method::DELETE, "/api/v2.0/projects/ci")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.admin(Method::GET, &format!("/api/v2.0/robots/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        r3(Method::GET, "/api/v2.0/projects")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

fn decode_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_and_read_only_mode() {
    let s = Server::start(Backend::Embedded).await;
    let cfg = s.get_json("/api/v2.0/configurations").await;
    assert_eq!(
        cfg["auth_mode"],
        json!({ "value": "db_auth", "editable": true })
    );
    assert_eq!(cfg["robot_name_prefix"]["value"], "robot$");
    assert_eq!(cfg["token_expiration"]["value"], 30);
    assert_eq!(cfg["session_timeout"]["value"], 60);
    for bad in [
        json!({ "read_only": "maybe" }),
        json!({ "token_expiration": 0 }),
        json!({ "nope": 1 }),
        json!({ "auth_mode": "ldap_auth" }),
    ] {
        let res = s
            .admin(Method::PUT, "/api/v2.0/configurations")
            .json(&bad)
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "BAD_REQUEST").await;
    }
    let res = s
        .admin(Method::PUT, "/api/v2.0/configurations")
        .json(&json!({ "banner_message": "maintenance at noon", "token_expiration": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let info: Value = s
        .anon(Method::GET, "/api/v2.0/systeminfo")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["banner_message"], "maintenance at noon");
    let t: Value = s
        .get_json("/service/token?service=harbor-registry&scope=repository:library/x:pull")
        .await;
    assert_eq!(t["expires_in"], 300, "token_expiration applies");
    // read-only: every write refused with Harbor's message, reads fine
    s.push_image("library/ro", "v1", 1).await;
    s.admin(Method::PUT, "/api/v2.0/configurations")
        .json(&json!({ "read_only": true }))
        .send()
        .await
        .unwrap();
    let msg = "The system is in read only mode. Any modification is prohibited.";
    let res = s
        .admin(Method::POST, "/v2/library/ro/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains(msg));
    let res = s
        .admin(Method::POST, "/api/v2.0/projects")
        .json(&json!({ "project_name": "ro2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["errors"][0], json!({ "code": "DENIED", "message": msg }));
    assert_eq!(
        s.admin(Method::DELETE, "/api/v2.0/projects/library/repositories/ro")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        s.admin(Method::GET, "/v2/library/ro/manifests/v1")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(s.get_json("/api/v2.0/systeminfo").await["read_only"], true);
    // the admin can end it
    let res = s
        .admin(Method::PUT, "/api/v2.0/configurations")
        .json(&json!({ "read_only": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        s.admin(Method::POST, "/v2/library/ro/blobs/uploads/")
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    // non-admins neither read nor change it
    s.create_user("frank", PW).await;
    let f = as_user(&s, "frank", PW);
    assert_eq!(
        f(Method::GET, "/api/v2.0/configurations")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        f(Method::PUT, "/api/v2.0/configurations")
            .json(&json!({ "read_only": true }))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    drop(f);
    // configuration survives a restart
    let mut s = s;
    s.restart().await;
    assert_eq!(
        s.get_json("/api/v2.0/configurations").await["banner_message"]["value"],
        "maintenance at noon"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_sessions() {
    let s = Server::start(Backend::Embedded).await;
    let jar_client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = |pw: &str| {
        jar_client
            .post(s.url("/c/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("principal=admin&password={pw}"))
    };
    assert_eq!(login("wrong").send().await.unwrap().status(), 401);
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    let res = login(ADMIN_PASSWORD).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let sid = cookies.iter().find(|c| c.starts_with("sid=")).unwrap();
    assert!(
        sid.contains("HttpOnly") && sid.contains("SameSite=Lax"),
        "{sid}"
    );
    let csrf = header(&res, "x-harbor-csrf-token").unwrap();
    let me: Value = jar_client
        .get(s.url("/api/v2.0/users/current"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "admin");
    // writes need the CSRF header
    let create = |with_csrf: bool, name: &str| {
        let mut r = jar_client
            .post(s.url("/api/v2.0/projects"))
            .json(&json!({ "project_name": name }));
        if with_csrf {
            r = r.header("x-harbor-csrf-token", &csrf);
        }
        r
    };
    assert_eq!(create(false, "c1").send().await.unwrap().status(), 403);
    assert_eq!(
        create(true, "c1")
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(create(true, "c1").send().await.unwrap().status(), 201);
    // Basic clients are unaffected
    assert_eq!(
        s.admin(Method::POST, "/api/v2.0/projects")
            .json(&json!({ "project_name": "c2" }))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    // sign out ends the session
    assert_eq!(
        jar_client
            .get(s.url("/c/log_out"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        jar_client
            .get(s.url("/api/v2.0/users/current"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // the session is gone on the server too, not only in the jar
    let stale = reqwest::Client::new()
        .get(s.url("/api/v2.0/users/current"))
        .header("cookie", sid.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
    // a session ends after session_timeout minutes without use
    s.admin(Method::PUT, "/api/v2.0/configurations")
        .json(&json!({ "session_timeout": 1 }))
        .send()
        .await
        .unwrap();
    let res = login(ADMIN_PASSWORD).send().await.unwrap();
    assert!(res
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().contains("Max-Age=60")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log() {
    let s = Server::start(Backend::Embedded).await;
    let gina = s.create_user("gina", PW).await;
    s.create_project("audited", false).await;
    s.create_project("other", false).await;
    s.admin(Method::POST, "/api/v2.0/projects/audited/members")
        .json(&json!({ "role_id": 1, "member_user": { "user_id": gina } }))
        .send()
        .await
        .unwrap();
    let (digest, _, _) = s.push_image("audited/app", "v1", 1).await;
    s.push_image("other/app", "v1", 1).await;
    s.admin(Method::GET, "/v2/audited/app/manifests/v1")
        .send()
        .await
        .unwrap();
    s.admin(
        Method::DELETE,
        &format!("/api/v2.0/projects/audited/repositories/app/artifacts/{digest}"),
    )
    .send()
    .await
    .unwrap();
    let res = s
        .admin(Method::POST, "/api/v2.0/robots")
        .json(&json!({ "name": "aud", "level": "project", "duration": -1, "permissions": [{ "kind": "project", "namespace": "audited", "access": [{ "resource": "repository", "action": "pull" }] }] }))
        .send()
        .await
        .unwrap();
    let robot_secret = res.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    s.admin(Method::PUT, "/api/v2.0/configurations")
        .json(&json!({ "banner_message": "x" }))
        .send()
        .await
        .unwrap();
    let jar = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    jar.post(s.url("/c/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("principal=gina&password={PW}"))
        .send()
        .await
        .unwrap();
    // entries are written in the background
    let mut all = json!([]);
    for _ in 0..50 {
        all = s.get_json("/api/v2.0/auditlog-exts?page_size=100").await;
        if all
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["operation"] == "login")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let has = |op: &str, ty: &str, res: &str| {
        all.as_array().unwrap().iter().any(|e| {
            e["operation"] == op
                && e["resource_type"] == ty
                && e["resource"].as_str().unwrap().contains(res)
        })
    };
    assert!(has("create", "user", "gina"), "{all}");
    assert!(has("create", "project", "audited"));
    assert!(has("create", "member", "audited/gina"));
    assert!(has("create", "artifact", "audited/app:v1"));
    assert!(has("pull", "artifact", "audited/app:v1"));
    assert!(has("delete", "artifact", &format!("audited/app@{digest}")));
    assert!(has("create", "robot", "robot$audited+aud"));
    assert!(has("update", "configuration", "configuration"));
    assert!(has("login", "user", "gina"));
    let e = &all[0];
    for k in [
        "id",
        "username",
        "resource",
        "resource_type",
        "operation",
        "operation_description",
        "operation_result",
        "op_time",
    ] {
        assert!(e.get(k).is_some(), "{k} in {e}");
    }
    // no secret or password anywhere
    let text = all.to_string();
    for secret in [robot_secret.as_str(), PW, ADMIN_PASSWORD] {
        assert!(!text.contains(secret), "a secret leaked into the audit log");
    }
    // filters, sort, pagination
    let pulls = s
        .get_json("/api/v2.0/auditlog-exts?q=operation%3Dpull")
        .await;
    assert!(
        pulls
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["operation"] == "pull")
            && !pulls.as_array().unwrap().is_empty()
    );
    let by_gina = s
        .get_json("/api/v2.0/auditlog-exts?q=username%3D~gin")
        .await;
    assert!(by_gina
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["username"] == "gina"));
    let none = s.get_json("/api/v2.0/auditlog-exts?q=op_time%3D%5B2000-01-01%2000%3A00%3A00~2000-01-02%2000%3A00%3A00%5D").await;
    assert_eq!(none, json!([]));
    let asc = s
        .get_json("/api/v2.0/auditlog-exts?sort=op_time&page_size=1")
        .await;
    let desc = s
        .get_json("/api/v2.0/auditlog-exts?sort=-op_time&page_size=1")
        .await;
    assert_ne!(asc[0]["id"], desc[0]["id"]);
    let res = s
        .admin(Method::GET, "/api/v2.0/auditlog-exts?page_size=2")
        .send()
        .await
        .unwrap();
    assert!(header(&res, "link").unwrap().contains("rel=\"next\""));
    // project admins see their projects only; others nothing; the project view
    let g = as_user(&s, "gina", PW);
    let mine: Value = g(Method::GET, "/api/v2.0/auditlog-exts?page_size=100")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!mine.as_array().unwrap().is_empty());
    assert!(
        !mine.to_string().contains("other/app"),
        "gina does not see project other"
    );
    let proj: Value = g(
        Method::GET,
        "/api/v2.0/projects/audited/auditlog-exts?page_size=100",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(
        proj.as_array()
            .unwrap()
            .iter()
            .all(|e| e["resource"].as_str().unwrap().contains("audited")),
        "{proj}"
    );
    assert_eq!(
        g(Method::GET, "/api/v2.0/projects/other/auditlog-exts")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let legacy = s.get_json("/api/v2.0/audit-logs?page_size=5").await;
    assert!(legacy[0].get("operation_description").is_none() && legacy[0]["op_time"].is_string());
    assert!(s
        .get_json("/api/v2.0/projects/audited/logs")
        .await
        .as_array()
        .is_some());
    let events = s.get_json("/api/v2.0/auditlog-exts/events").await;
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event_type"] == "create_artifact"));
    assert_eq!(
        s.anon(Method::GET, "/api/v2.0/auditlog-exts")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

/// `docker login`, `skopeo login` and `podman login` go through the token
/// service; a wrong password fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_logins() {
    if !require(&["docker", "skopeo", "podman"]) {
        return;
    }
    let s = Server::start(Backend::Embedded).await;
    let dir = std::env::temp_dir().join(format!("berth-logins-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let login = |tool: &str, password: &str| {
        let mut c = Command::new(tool);
        match tool {
            "docker" => {
                c.env("DOCKER_CONFIG", dir.join("docker")).args([
                    "login",
                    &s.addr,
                    "-u",
                    "admin",
                    "--password-stdin",
                ]);
            }
            _ => {
                c.args(["login", "--tls-verify=false", "--authfile"])
                    .arg(dir.join(format!("{tool}.json")))
                    .args(["-u", "admin", "--password-stdin", &s.addr]);
            }
        }
        with_stdin(&mut c, password)
    };
    for tool in ["docker", "skopeo", "podman"] {
        let bad = login(tool, "Wrong-Pass-123");
        assert!(
            !bad.status.success(),
            "{tool} login with a wrong password must fail"
        );
        // the failed attempt locks the name briefly
        tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
        let ok = login(tool, ADMIN_PASSWORD);
        assert!(
            ok.status.success(),
            "{tool} login: {}{}",
            String::from_utf8_lossy(&ok.stdout),
            String::from_utf8_lossy(&ok.stderr)
        );
        assert!(
            String::from_utf8_lossy(&ok.stdout)
                .to_lowercase()
                .contains("login succeeded"),
            "{tool}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
