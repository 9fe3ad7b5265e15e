//! The role × endpoint test: for each of anonymous, the five project
//! roles, a system admin, a project robot and a system robot, every
//! operation that exists is allowed or refused exactly as Harbor's
//! permission table says. The table below is written out independently of
//! `berth_core::access` (from `harbor-behaviour.md` §3), so a mistake in
//! either shows up here.

use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

use crate::harness::*;

/// Harbor's project role matrix: per resource, the actions of
/// ProjectAdmin, Maintainer, Developer, Guest, LimitedGuest.
const MATRIX: &[(&str, [&str; 5])] = &[
    (
        "project",
        ["read update delete", "read", "read", "read", "read"],
    ),
    (
        "member",
        [
            "create read update delete list",
            "read list",
            "read list",
            "read list",
            "",
        ],
    ),
    (
        "metadata",
        ["create read update delete", "read", "", "", ""],
    ),
    ("log", ["list", "", "", "", ""]),
    (
        "repository",
        [
            "create read update delete list pull push",
            "create read update delete list pull push",
            "create read update list pull push",
            "read list pull",
            "read list pull",
        ],
    ),
    (
        "artifact",
        [
            "create read delete list",
            "create read delete list",
            "create read list",
            "read list",
            "read list",
        ],
    ),
    (
        "artifact-addition",
        ["read", "read", "read", "read", "read"],
    ),
    (
        "tag",
        [
            "create delete list",
            "create delete list",
            "create list",
            "list",
            "list",
        ],
    ),
    (
        "robot",
        [
            "create read update delete list",
            "read list",
            "read list",
            "read list",
            "",
        ],
    ),
    ("quota", ["read", "read", "read", "read", "read"]),
    (
        "tag-retention",
        [
            "create read update delete list operate",
            "create read update delete list operate",
            "create read update delete list operate",
            "",
            "",
        ],
    ),
    (
        "immutable-tag",
        [
            "create update delete list",
            "create update delete list",
            "",
            "",
            "",
        ],
    ),
];

const ROLES: [(&str, i64); 5] = [
    ("padmin", 1),
    ("maint", 4),
    ("dev", 2),
    ("guest", 3),
    ("limited", 5),
];

fn role_allows(role_index: usize, resource: &str, action: &str) -> bool {
    MATRIX
        .iter()
        .find(|(r, _)| *r == resource)
        .is_some_and(|(_, per_role)| per_role[role_index].split(' ').any(|a| a == action))
}

/// The permissions given to the project robot of `pa`.
const PROJECT_ROBOT: &[(&str, &str)] = &[
    ("repository", "pull"),
    ("repository", "push"),
    ("repository", "list"),
    ("repository", "read"),
    ("artifact", "read"),
    ("artifact", "list"),
    ("tag", "list"),
    ("tag", "create"),
    ("member", "list"),
];
/// The system robot's project permissions, on every project (`*`).
const SYSTEM_ROBOT: &[(&str, &str)] = &[
    ("repository", "pull"),
    ("artifact", "list"),
    ("artifact", "read"),
];

#[derive(Clone, Debug)]
enum Who {
    Anonymous,
    Role(usize),
    Admin,
    Robot {
        name: String,
        secret: String,
        perms: &'static [(&'static str, &'static str)],
    },
}

impl Who {
    fn label(&self) -> String {
        match self {
            Who::Anonymous => "anonymous".into(),
            Who::Role(i) => ROLES[*i].0.into(),
            Who::Admin => "admin".into(),
            Who::Robot { name, .. } => name.clone(),
        }
    }

    fn credentials(&self) -> Option<(String, String)> {
        match self {
            Who::Anonymous => None,
            Who::Role(i) => Some((ROLES[*i].0.to_owned(), PASSWORD.to_owned())),
            Who::Admin => Some(("admin".into(), ADMIN_PASSWORD.into())),
            Who::Robot { name, secret, .. } => Some((name.clone(), secret.clone())),
        }
    }

    /// What the table says about (resource, action) in `pa`.
    fn may(&self, resource: &str, action: &str) -> bool {
        match self {
            Who::Anonymous => false,
            Who::Admin => true,
            Who::Role(i) => role_allows(*i, resource, action),
            Who::Robot { perms, .. } => perms.iter().any(|(r, a)| {
                *r == resource
                    && (*a == action
                        || (resource == "repository" && action == "pull" && *a == "push"))
            }),
        }
    }

    fn tag(&self) -> String {
        self.label().replace(['$', '+'], "-")
    }
}

const PASSWORD: &str = "Rbac-Pass-1234";

fn req(s: &Server, who: &Who, method: Method, path: &str) -> RequestBuilder {
    let r = s.http.request(method, s.url(path));
    match who.credentials() {
        Some((u, p)) => r.basic_auth(u, Some(p)),
        None => r,
    }
}

fn access(perms: &[(&str, &str)]) -> Vec<Value> {
    perms
        .iter()
        .map(|(r, a)| json!({ "resource": r, "action": a }))
        .collect()
}

/// One operation: its (resource, action) and the request, prepared for
/// `who` (objects it would destroy are made for each caller beforehand).
struct Op {
    name: &'static str,
    resource: &'static str,
    action: &'static str,
}

const OPS: &[Op] = &[
    Op {
        name: "v2 pull manifest",
        resource: "repository",
        action: "pull",
    },
    Op {
        name: "v2 tags list",
        resource: "repository",
        action: "pull",
    },
    Op {
        name: "v2 start upload",
        resource: "repository",
        action: "push",
    },
    Op {
        name: "v2 delete tag",
        resource: "repository",
        action: "delete",
    },
    Op {
        name: "get project",
        resource: "project",
        action: "read",
    },
    Op {
        name: "update project",
        resource: "project",
        action: "update",
    },
    Op {
        name: "project summary",
        resource: "project",
        action: "read",
    },
    Op {
        name: "delete project",
        resource: "project",
        action: "delete",
    },
    Op {
        name: "list members",
        resource: "member",
        action: "list",
    },
    Op {
        name: "get member",
        resource: "member",
        action: "read",
    },
    Op {
        name: "add member",
        resource: "member",
        action: "create",
    },
    Op {
        name: "list repositories",
        resource: "repository",
        action: "list",
    },
    Op {
        name: "get repository",
        resource: "repository",
        action: "read",
    },
    Op {
        name: "update repository",
        resource: "repository",
        action: "update",
    },
    Op {
        name: "delete repository",
        resource: "repository",
        action: "delete",
    },
    Op {
        name: "list artifacts",
        resource: "artifact",
        action: "list",
    },
    Op {
        name: "get artifact",
        resource: "artifact",
        action: "read",
    },
    Op {
        name: "build history",
        resource: "artifact-addition",
        action: "read",
    },
    Op {
        name: "delete artifact",
        resource: "artifact",
        action: "delete",
    },
    Op {
        name: "list tags",
        resource: "tag",
        action: "list",
    },
    Op {
        name: "create tag",
        resource: "tag",
        action: "create",
    },
    Op {
        name: "delete tag",
        resource: "tag",
        action: "delete",
    },
    Op {
        name: "list robots",
        resource: "robot",
        action: "list",
    },
    Op {
        name: "create robot",
        resource: "robot",
        action: "create",
    },
    Op {
        name: "project audit log",
        resource: "log",
        action: "list",
    },
    Op {
        name: "get quota",
        resource: "quota",
        action: "read",
    },
    Op {
        name: "list immutable rules",
        resource: "immutable-tag",
        action: "list",
    },
    Op {
        name: "create immutable rule",
        resource: "immutable-tag",
        action: "create",
    },
    Op {
        name: "get retention policy",
        resource: "tag-retention",
        action: "read",
    },
    Op {
        name: "list retention runs",
        resource: "tag-retention",
        action: "list",
    },
];

struct Ctx {
    pa_id: i64,
    admin_member: i64,
    retention_id: i64,
}

async fn run(s: &Server, ctx: &Ctx, who: &Who, op: &Op) -> u16 {
    let t = who.tag();
    let r = match op.name {
        "v2 pull manifest" => req(s, who, Method::GET, "/v2/pa/app/manifests/v1"),
        "v2 tags list" => req(s, who, Method::GET, "/v2/pa/app/tags/list"),
        "v2 start upload" => req(s, who, Method::POST, "/v2/pa/app/blobs/uploads/"),
        "v2 delete tag" => req(s, who, Method::DELETE, &format!("/v2/pa/app/manifests/v2del-{t}")),
        "get project" => req(s, who, Method::GET, "/api/v2.0/projects/pa"),
        "update project" => req(s, who, Method::PUT, "/api/v2.0/projects/pa").json(&json!({ "metadata": { "auto_scan": "true" } })),
        "project summary" => req(s, who, Method::GET, "/api/v2.0/projects/pa/summary"),
        "delete project" => req(s, who, Method::DELETE, &format!("/api/v2.0/projects/pd-{t}")),
        "list members" => req(s, who, Method::GET, "/api/v2.0/projects/pa/members"),
        "get member" => req(s, who, Method::GET, &format!("/api/v2.0/projects/pa/members/{}", ctx.admin_member)),
        "add member" => req(s, who, Method::POST, "/api/v2.0/projects/pa/members")
            .json(&json!({ "role_id": 3, "member_user": { "username": format!("extra-{t}") } })),
        "list repositories" => req(s, who, Method::GET, "/api/v2.0/projects/pa/repositories"),
        "get repository" => req(s, who, Method::GET, "/api/v2.0/projects/pa/repositories/app"),
        "update repository" => req(s, who, Method::PUT, "/api/v2.0/projects/pa/repositories/app").json(&json!({ "description": t })),
        "delete repository" => req(s, who, Method::DELETE, &format!("/api/v2.0/projects/pa/repositories/repo-{t}")),
        "list artifacts" => req(s, who, Method::GET, "/api/v2.0/projects/pa/repositories/app/artifacts"),
        "get artifact" => req(s, who, Method::GET, "/api/v2.0/projects/pa/repositories/app/artifacts/v1"),
        "build history" => req(s, who, Method::GET, "/api/v2.0/projects/pa/repositories/app/artifacts/v1/additions/build_history"),
        "delete artifact" => req(s, who, Method::DELETE, &format!("/api/v2.0/projects/pa/repositories/art-{t}/artifacts/v1")),
        "list tags" => req(s, who, Method::GET, "/api/v2.0/projects/pa/repositories/app/artifacts/v1/tags"),
        "create tag" => req(s, who, Method::POST, "/api/v2.0/projects/pa/repositories/app/artifacts/v1/tags").json(&json!({ "name": format!("new-{t}") })),
        "delete tag" => req(s, who, Method::DELETE, &format!("/api/v2.0/projects/pa/repositories/app/artifacts/v1/tags/apidel-{t}")),
        "list robots" => req(s, who, Method::GET, &format!("/api/v2.0/robots?q=Level%3Dproject,ProjectID%3D{}", ctx.pa_id)),
        "create robot" => req(s, who, Method::POST, "/api/v2.0/robots").json(&json!({
            "name": format!("made-by-{}", t.to_lowercase().replace('_', "-")), "level": "project", "duration": -1,
            "permissions": [{ "kind": "project", "namespace": "pa", "access": access(&[("repository", "pull")]) }],
        })),
        "project audit log" => req(s, who, Method::GET, "/api/v2.0/projects/pa/auditlog-exts"),
        "get quota" => req(s, who, Method::GET, &format!("/api/v2.0/quotas/{}", ctx.pa_id)),
        "list immutable rules" => req(s, who, Method::GET, "/api/v2.0/projects/pa/immutabletagrules"),
        "create immutable rule" => req(s, who, Method::POST, "/api/v2.0/projects/pa/immutabletagrules").json(&json!({
            "tag_selectors": [{ "kind": "doublestar", "decoration": "matches", "pattern": format!("imm-{t}") }],
            "scope_selectors": { "repository": [{ "kind": "doublestar", "decoration": "repoMatches", "pattern": "**" }] },
        })),
        "get retention policy" => req(s, who, Method::GET, &format!("/api/v2.0/retentions/{}", ctx.retention_id)),
        "list retention runs" => req(s, who, Method::GET, &format!("/api/v2.0/retentions/{}/executions", ctx.retention_id)),
        other => panic!("unknown operation {other}"),
    };
    r.send().await.unwrap().status().as_u16()
}

/// Objects that `who`'s destructive operations act on.
async fn prepare(s: &Server, who: &Who, role_in_pd: Option<i64>) {
    let t = who.tag();
    for name in [format!("v2del-{t}"), format!("apidel-{t}")] {
        let res = s
            .admin(
                Method::POST,
                "/api/v2.0/projects/pa/repositories/app/artifacts/v1/tags",
            )
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    s.push_image(&format!("pa/repo-{t}"), "v1", 1).await;
    s.push_image(&format!("pa/art-{t}"), "v1", 1).await;
    s.create_user(&format!("extra-{t}"), PASSWORD).await;
    s.create_project(&format!("pd-{t}"), false).await;
    if let (Some(role), Who::Role(i)) = (role_in_pd, who) {
        s.add_member(&format!("pd-{t}"), ROLES[*i].0, role).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_on_every_endpoint() {
    let s = Server::start(Backend::Embedded).await;
    s.create_project("pa", false).await;
    s.push_image("pa/app", "v1", 1).await;
    let pa = s.get_json("/api/v2.0/projects/pa").await;
    let members = s.get_json("/api/v2.0/projects/pa/members").await;
    let res = s
        .admin(Method::POST, "/api/v2.0/retentions")
        .json(&json!({ "algorithm": "or", "rules": [{
            "template": "always", "params": {},
            "tag_selectors": [{ "kind": "doublestar", "decoration": "matches", "pattern": "**" }],
            "scope_selectors": { "repository": [{ "kind": "doublestar", "decoration": "repoMatches", "pattern": "**" }] },
        }], "scope": { "level": "project", "ref": pa["project_id"] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let ctx = Ctx {
        pa_id: pa["project_id"].as_i64().unwrap(),
        admin_member: members[0]["id"].as_i64().unwrap(),
        retention_id: location(&res).rsplit('/').next().unwrap().parse().unwrap(),
    };
    for (name, role) in ROLES {
        s.create_user(name, PASSWORD).await;
        s.add_member("pa", name, role).await;
    }
    let (pr_name, pr_secret) = s.create_robot(json!({ "name": "ci", "level": "project", "duration": -1,
            "permissions": [{ "kind": "project", "namespace": "pa", "access": access(PROJECT_ROBOT) }] }),
    )
    .await;
    assert_eq!(pr_name, "robot$pa+ci");
    let (sr_name, sr_secret) = s.create_robot(json!({ "name": "sweeper", "level": "system", "duration": -1,
            "permissions": [{ "kind": "project", "namespace": "*", "access": access(SYSTEM_ROBOT) }] }),
    )
    .await;
    assert_eq!(sr_name, "robot$sweeper");
    let mut whos = vec![Who::Anonymous, Who::Admin];
    whos.extend((0..5).map(Who::Role));
    whos.push(Who::Robot {
        name: pr_name,
        secret: pr_secret,
        perms: PROJECT_ROBOT,
    });
    whos.push(Who::Robot {
        name: sr_name,
        secret: sr_secret,
        perms: SYSTEM_ROBOT,
    });

    let mut failures = vec![];
    for who in &whos {
        // In its own project pd-<who> a role-holder has the same role as in pa.
        let role_in_pd = match who {
            Who::Role(i) => Some(ROLES[*i].1),
            _ => None,
        };
        prepare(&s, who, role_in_pd).await;
        for op in OPS {
            let status = run(&s, &ctx, who, op).await;
            let allowed = who.may(op.resource, op.action);
            let ok = if allowed {
                (200..300).contains(&status)
            } else {
                match who {
                    Who::Anonymous => status == 401,
                    _ => status == 403,
                }
            };
            if !ok {
                failures.push(format!(
                    "{:<14} {:<20} ({}:{}) expected {}, got {status}",
                    who.label(),
                    op.name,
                    op.resource,
                    op.action,
                    if allowed { "2xx" } else { "401/403" }
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "the permission table does not hold:\n{}",
        failures.join("\n")
    );
}

/// System-level operations: only the system admin (and robots holding the
/// system permission) may; a user may create projects while the
/// restriction is "everyone", and not once it is "adminonly".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_operations_and_project_creation() {
    let s = Server::start(Backend::Embedded).await;
    s.create_user("plain", PASSWORD).await;
    let plain = |m: Method, p: &str| {
        s.http
            .request(m, s.url(p))
            .basic_auth("plain", Some(PASSWORD))
    };
    for path in [
        "/api/v2.0/users",
        "/api/v2.0/configurations",
        "/api/v2.0/auditlog-exts/events",
    ] {
        let st = s.admin(Method::GET, path).send().await.unwrap().status();
        assert_eq!(st, 200, "{path} as admin");
    }
    assert_eq!(
        plain(Method::GET, "/api/v2.0/users")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        plain(Method::GET, "/api/v2.0/configurations")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        s.anon(Method::GET, "/api/v2.0/users")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let res = plain(Method::POST, "/api/v2.0/projects")
        .json(&json!({ "project_name": "by-plain" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // the creator is the project's admin
    let p = s.get_json("/api/v2.0/projects/by-plain").await;
    assert_eq!(p["owner_name"], "plain");
    let mine: Value = plain(Method::GET, "/api/v2.0/projects/by-plain")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["current_user_role_id"], 1);
    // robots: project robots never create projects; system robots only with project:create
    let (pr, prs) = s.create_robot(json!({ "name": "r1", "level": "project", "duration": -1,
            "permissions": [{ "kind": "project", "namespace": "by-plain", "access": access(&[("repository", "pull")]) }] }),
    )
    .await;
    let (sr, srs) = s.create_robot(json!({ "name": "maker", "level": "system", "duration": -1,
            "permissions": [{ "kind": "system", "namespace": "/", "access": access(&[("project", "create"), ("catalog", "read")]) }] }),
    )
    .await;
    let by = |n: &str, p: &str, name: &str| {
        s.http
            .post(s.url("/api/v2.0/projects"))
            .basic_auth(n, Some(p))
            .json(&json!({ "project_name": name }))
    };
    assert_eq!(
        by(&pr, &prs, "by-robot").send().await.unwrap().status(),
        403
    );
    assert_eq!(
        by(&sr, &srs, "by-system-robot")
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    // adminonly
    let res = s
        .admin(Method::PUT, "/api/v2.0/configurations")
        .json(&json!({ "project_creation_restriction": "adminonly" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = plain(Method::POST, "/api/v2.0/projects")
        .json(&json!({ "project_name": "late" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        by(&sr, &srs, "late-robot").send().await.unwrap().status(),
        403
    );
    s.create_project("by-admin", false).await;
}

/// Public projects: everyone may read and pull, nobody outside may write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_projects_are_readable_by_everyone() {
    let s = Server::start(Backend::Embedded).await;
    s.create_project("open", true).await;
    s.push_image("open/app", "v1", 1).await;
    s.create_user("outsider", PASSWORD).await;
    let out = |m: Method, p: &str| {
        s.http
            .request(m, s.url(p))
            .basic_auth("outsider", Some(PASSWORD))
    };
    for path in [
        "/api/v2.0/projects/open",
        "/api/v2.0/projects/open/repositories",
        "/api/v2.0/projects/open/repositories/app/artifacts",
        "/api/v2.0/projects/open/repositories/app/artifacts/v1",
        "/api/v2.0/projects/open/repositories/app/artifacts/v1/tags",
        "/v2/open/app/manifests/v1",
        "/v2/open/app/tags/list",
    ] {
        let st = out(Method::GET, path).send().await.unwrap().status();
        assert_eq!(st, 200, "outsider GET {path}");
    }
    for path in [
        "/api/v2.0/projects/open",
        "/api/v2.0/projects/open/repositories",
    ] {
        assert_eq!(
            s.anon(Method::GET, path).send().await.unwrap().status(),
            200,
            "anonymous GET {path}"
        );
    }
    // not on the public policy: members, repository read, writes
    assert_eq!(
        out(Method::GET, "/api/v2.0/projects/open/members")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        out(Method::GET, "/api/v2.0/projects/open/repositories/app")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        out(Method::POST, "/v2/open/app/blobs/uploads/")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        out(
            Method::DELETE,
            "/api/v2.0/projects/open/repositories/app/artifacts/v1"
        )
        .send()
        .await
        .unwrap()
        .status(),
        403
    );
    // anonymous pulls go through an anonymous registry token
    let res = s
        .anon(Method::GET, "/v2/open/app/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let challenge = header(&res, "www-authenticate").unwrap();
    assert!(
        challenge.contains("scope=\"repository:open/app:pull\""),
        "{challenge}"
    );
    let t: Value = s
        .anon(
            Method::GET,
            "/service/token?service=harbor-registry&scope=repository:open/app:pull,push",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = t["token"].as_str().unwrap();
    let res = s
        .http
        .get(s.url("/v2/open/app/manifests/v1"))
        .bearer_auth(token)
        .header("accept", berth_oci::media::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = s
        .http
        .post(s.url("/v2/open/app/blobs/uploads/"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the anonymous token holds no push");
}
