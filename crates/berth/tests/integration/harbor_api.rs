//! Harbor API v2.0: projects, repositories, artifacts, tags, health,
//! ping, systeminfo — shapes, status codes and the error envelope, checked
//! directly and through the strict `harborapi` client from PyPI.

use std::process::Command;

use berth_oci::media;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

crate::on_backends!(
    projects_api,
    repositories_and_artifacts_api,
    system_endpoints
);

async fn projects_api(s: &Server) {
    // create
    let res = s
        .admin(Method::POST, "/api/v2.0/projects")
        .json(&json!({ "project_name": "team-a", "metadata": { "public": "false", "auto_scan": "true" }, "storage_limit": 1073741824 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let loc = location(&res);
    assert!(loc.starts_with("/api/v2.0/projects/"), "{loc}");
    let id: i64 = loc.rsplit('/').next().unwrap().parse().unwrap();
    let res = s
        .admin(Method::POST, "/api/v2.0/projects")
        .header("x-resource-name-in-location", "true")
        .json(&json!({ "project_name": "team-b", "public": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/api/v2.0/projects/team-b");
    s.create_project("12345", false).await;
    // duplicates, bad names, bad bodies
    let res = s
        .admin(Method::POST, "/api/v2.0/projects")
        .json(&json!({ "project_name": "team-a" }))
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "CONFLICT").await;
    for bad in ["Team", "a--b", "", "-x", "a/b"] {
        let res = s
            .admin(Method::POST, "/api/v2.0/projects")
            .json(&json!({ "project_name": bad }))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "BAD_REQUEST").await;
    }
    let res = s
        .admin(Method::POST, "/api/v2.0/projects")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "BAD_REQUEST").await;
    let res = s
        .admin(Method::POST, "/api/v2.0/projects")
        .json(&json!({ "project_name": "x1", "metadata": { "severity": "urgent" } }))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "BAD_REQUEST").await;
    // HEAD
    assert_eq!(
        s.admin(Method::HEAD, "/api/v2.0/projects?project_name=team-a")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.admin(Method::HEAD, "/api/v2.0/projects?project_name=nope")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // get by id, by name, and a numeric name with X-Is-Resource-Name
    let by_id = s.get_json(&format!("/api/v2.0/projects/{id}")).await;
    let by_name = s.get_json("/api/v2.0/projects/team-a").await;
    assert_eq!(by_id, by_name);
    assert_eq!(by_id["name"], "team-a");
    assert_eq!(by_id["project_id"], id);
    assert_eq!(
        by_id["metadata"],
        json!({ "public": "false", "auto_scan": "true" })
    );
    assert_eq!(by_id["owner_name"], "admin");
    assert_eq!(by_id["current_user_role_id"], 1);
    assert_eq!(by_id["current_user_role_ids"], json!([1]));
    assert_eq!(by_id["repo_count"], 0);
    assert!(by_id["creation_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(by_id["cve_allowlist"]["items"], json!([]));
    let res = s
        .admin(Method::GET, "/api/v2.0/projects/12345")
        .header("x-is-resource-name", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["name"], "12345");
    let res = s
        .admin(Method::GET, "/api/v2.0/projects/999999")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&res, "content-type").as_deref(),
        Some("application/json")
    );
    expect_error(res, 404, "NOT_FOUND").await;
    // list, search, filter, sort, paginate
    let res = s
        .admin(Method::GET, "/api/v2.0/projects?page_size=2")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "x-total-count").as_deref(), Some("4"));
    assert_eq!(
        header(&res, "link").as_deref(),
        Some("</api/v2.0/projects?page=2&page_size=2>; rel=\"next\"")
    );
    let page1: Value = res.json().await.unwrap();
    assert_eq!(page1.as_array().unwrap().len(), 2);
    let res = s
        .admin(Method::GET, "/api/v2.0/projects?page=2&page_size=2")
        .send()
        .await
        .unwrap();
    assert!(header(&res, "link").unwrap().contains("rel=\"prev\""));
    let names = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&s.get_json("/api/v2.0/projects?q=name%3D~team").await),
        ["team-a", "team-b"]
    );
    assert_eq!(
        names(&s.get_json("/api/v2.0/projects?name=team").await),
        ["team-a", "team-b"]
    );
    assert_eq!(
        names(&s.get_json("/api/v2.0/projects?public=true").await),
        ["library", "team-b"]
    );
    assert_eq!(
        names(
            &s.get_json("/api/v2.0/projects?q=public%3Dfalse&sort=-name")
                .await
        ),
        ["team-a", "12345"]
    );
    assert_eq!(
        s.get_json("/api/v2.0/projects?q=name%3D~%25").await,
        json!([]),
        "% is literal"
    );
    for bad in [
        "q=password%3D~x",
        "q=salt%3D~x",
        "sort=password",
        "sort=name%3Bdrop",
        "page=abc",
    ] {
        let res = s
            .admin(Method::GET, &format!("/api/v2.0/projects?{bad}"))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "BAD_REQUEST").await;
    }
    let huge = s
        .admin(Method::GET, "/api/v2.0/projects?page_size=1000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 200, "page_size is clamped");
    // anonymous sees public projects only, and nothing private
    let anon: Value = s
        .anon(Method::GET, "/api/v2.0/projects")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(names(&anon), ["library", "team-b"]);
    assert_eq!(anon[0]["current_user_role_ids"], json!([]));
    let res = s
        .anon(Method::GET, "/api/v2.0/projects/team-a")
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;
    let res = s
        .anon(Method::GET, "/api/v2.0/projects/does-not-exist")
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;
    assert_eq!(
        s.anon(Method::GET, "/api/v2.0/projects/team-b")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = s
        .anon(Method::POST, "/api/v2.0/projects")
        .json(&json!({ "project_name": "anon" }))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;
    let res = s
        .http
        .get(s.url("/api/v2.0/projects"))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;
    // update
    let res = s
        .admin(Method::PUT, "/api/v2.0/projects/team-a")
        .header("x-is-resource-name", "true")
        .json(&json!({ "metadata": { "public": "true", "severity": "high" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let p = s.get_json("/api/v2.0/projects/team-a").await;
    assert_eq!(p["metadata"]["public"], "true");
    assert_eq!(p["metadata"]["severity"], "high");
    assert_eq!(p["metadata"]["auto_scan"], "true", "other metadata kept");
    // summary and deletable; delete refused with 412 while repositories exist
    s.push_image("team-a/app", "v1", 2).await;
    let sum = s.get_json("/api/v2.0/projects/team-a/summary").await;
    assert_eq!(sum["repo_count"], 1);
    assert_eq!(sum["project_admin_count"], 1);
    assert_eq!(sum["quota"]["hard"]["storage"], 1073741824);
    assert!(sum["quota"]["used"]["storage"].as_i64().unwrap() > 2000);
    assert_eq!(
        s.get_json("/api/v2.0/projects/team-a").await["repo_count"],
        1
    );
    assert_eq!(
        s.get_json("/api/v2.0/projects/team-a/_deletable").await,
        json!({ "deletable": false, "message": "the project contains repositories, can not be deleted" })
    );
    let res = s
        .admin(Method::DELETE, "/api/v2.0/projects/team-a")
        .send()
        .await
        .unwrap();
    expect_error(res, 412, "PRECONDITION").await;
    assert_eq!(
        s.admin(Method::DELETE, "/api/v2.0/projects/team-a/repositories/app")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.get_json("/api/v2.0/projects/team-a/_deletable").await["deletable"],
        true
    );
    assert_eq!(
        s.admin(Method::DELETE, "/api/v2.0/projects/team-a")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.admin(Method::GET, "/api/v2.0/projects/team-a")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // the name is free again, and pushes into a deleted project fail
    let res = s
        .admin(Method::POST, "/v2/team-a/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    s.create_project("team-a", false).await;
}

async fn repositories_and_artifacts_api(s: &Server) {
    s.create_project("apps", false).await;
    let (d1, body1, blobs1) = s.push_image("apps/web", "v1", 2).await;
    s.push_image("apps/web", "v2", 1).await;
    s.push_image("apps/team/nested/svc", "latest", 1).await;
    // index with platforms
    let (arm, arm_body, _) = s.push_image("apps/web", "arm", 1).await;
    let index = json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [
        { "mediaType": media::OCI_MANIFEST, "digest": d1.as_str(), "size": body1.len(), "platform": { "architecture": "amd64", "os": "linux" } },
        { "mediaType": media::OCI_MANIFEST, "digest": arm.as_str(), "size": arm_body.len(), "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" } },
    ]}).to_string();
    assert_eq!(
        s.put_manifest("apps/web", "multi", media::OCI_INDEX, index.as_bytes())
            .await
            .status(),
        201
    );

    // repositories
    let repos = s.get_json("/api/v2.0/projects/apps/repositories").await;
    let mut names: Vec<&str> = repos
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["apps/team/nested/svc", "apps/web"]);
    let res = s
        .admin(Method::GET, "/api/v2.0/repositories?q=name%3D~web")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "x-total-count").as_deref(), Some("1"));
    let web = s.get_json("/api/v2.0/projects/apps/repositories/web").await;
    assert_eq!(web["name"], "apps/web");
    assert_eq!(web["artifact_count"], 4);
    // nested names arrive encoded once or twice
    for enc in ["team%2Fnested%2Fsvc", "team%252Fnested%252Fsvc"] {
        assert_eq!(
            s.get_json(&format!("/api/v2.0/projects/apps/repositories/{enc}"))
                .await["name"],
            "apps/team/nested/svc"
        );
    }
    let res = s
        .admin(Method::PUT, "/api/v2.0/projects/apps/repositories/web")
        .json(&json!({ "description": "<script>alert(1)</script> the web tier" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        s.get_json("/api/v2.0/projects/apps/repositories/web").await["description"],
        "<script>alert(1)</script> the web tier"
    );
    let res = s
        .admin(Method::GET, "/api/v2.0/projects/apps/repositories/nope")
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;

    // artifacts: the index's children are listed under it
    let res = s
        .admin(
            Method::GET,
            "/api/v2.0/projects/apps/repositories/web/artifacts?page_size=10",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&res, "x-total-count").as_deref(),
        Some("2"),
        "v2 and the index; v1 and arm are its children"
    );
    let list: Value = res.json().await.unwrap();
    let idx = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["manifest_media_type"] == media::OCI_INDEX)
        .unwrap();
    assert_eq!(idx["tags"][0]["name"], "multi");
    let refs = idx["references"].as_array().unwrap();
    assert_eq!(refs.len(), 2);
    assert_eq!(
        refs.iter()
            .find(|r| r["child_digest"] == arm.as_str())
            .unwrap()["platform"]["variant"],
        "v8"
    );
    let a = s
        .get_json(&format!(
            "/api/v2.0/projects/apps/repositories/web/artifacts/{d1}"
        ))
        .await;
    assert_eq!(a["type"], "IMAGE");
    assert_eq!(a["media_type"], media::OCI_CONFIG);
    assert_eq!(a["manifest_media_type"], media::OCI_MANIFEST);
    assert_eq!(a["extra_attrs"]["architecture"], "amd64");
    assert_eq!(a["extra_attrs"]["os"], "linux");
    assert_eq!(a["repository_name"], "apps/web");
    assert_eq!(a["pull_time"], "0001-01-01T00:00:00.000Z");
    assert_eq!(a["labels"], json!([]));
    let blob_total: i64 = {
        let m: Value = serde_json::from_slice(&body1).unwrap();
        m["config"]["size"].as_i64().unwrap()
            + m["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["size"].as_i64().unwrap())
                .sum::<i64>()
    };
    assert_eq!(
        a["size"].as_i64().unwrap(),
        body1.len() as i64 + blob_total,
        "manifest + referenced blobs"
    );
    assert_eq!(blobs1.len(), 3);
    let by_tag = s
        .get_json("/api/v2.0/projects/apps/repositories/web/artifacts/v1")
        .await;
    assert_eq!(by_tag["digest"], d1.as_str());
    let history = s
        .get_json(&format!(
            "/api/v2.0/projects/apps/repositories/web/artifacts/{d1}/additions/build_history"
        ))
        .await;
    assert_eq!(history[0]["created_by"], "test");
    assert_eq!(
        s.get_json("/api/v2.0/projects/apps/repositories/web/artifacts?q=tags%3Dnil")
            .await,
        json!([])
    );
    let tagged = s
        .get_json("/api/v2.0/projects/apps/repositories/web/artifacts?q=tags%3D~v")
        .await;
    assert_eq!(tagged.as_array().unwrap().len(), 1);
    // pulls are counted, in the background
    for _ in 0..3 {
        let res = s
            .admin(Method::GET, "/v2/apps/web/manifests/v2")
            .header("accept", media::OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let mut pulled = 0;
    for _ in 0..50 {
        pulled = s.get_json("/api/v2.0/projects/apps/repositories/web").await["pull_count"]
            .as_i64()
            .unwrap();
        if pulled >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(pulled, 3);
    let v2 = s
        .get_json("/api/v2.0/projects/apps/repositories/web/artifacts/v2")
        .await;
    assert_ne!(v2["pull_time"], "0001-01-01T00:00:00.000Z");

    // tags: create, list, conflict, delete
    let res = s
        .admin(
            Method::POST,
            &format!("/api/v2.0/projects/apps/repositories/web/artifacts/{d1}/tags"),
        )
        .json(&json!({ "name": "stable" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = s
        .admin(
            Method::POST,
            &format!("/api/v2.0/projects/apps/repositories/web/artifacts/{d1}/tags"),
        )
        .json(&json!({ "name": "stable" }))
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "CONFLICT").await;
    let res = s
        .admin(
            Method::POST,
            &format!("/api/v2.0/projects/apps/repositories/web/artifacts/{d1}/tags"),
        )
        .json(&json!({ "name": "bad tag" }))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "BAD_REQUEST").await;
    let res = s
        .admin(
            Method::GET,
            &format!("/api/v2.0/projects/apps/repositories/web/artifacts/{d1}/tags"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "x-total-count").as_deref(), Some("2"));
    let tags: Value = res.json().await.unwrap();
    let mut tag_names: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    tag_names.sort();
    assert_eq!(tag_names, ["stable", "v1"]);
    assert_eq!(tags[0]["immutable"], false);
    let st = s
        .admin(Method::GET, "/v2/apps/web/manifests/stable")
        .header("accept", media::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&st, "docker-content-digest").as_deref(),
        Some(d1.as_str()),
        "an API tag is a registry tag"
    );
    let res = s
        .admin(
            Method::DELETE,
            &format!("/api/v2.0/projects/apps/repositories/web/artifacts/{d1}/tags/nope"),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;
    assert_eq!(
        s.admin(
            Method::DELETE,
            &format!("/api/v2.0/projects/apps/repositories/web/artifacts/{d1}/tags/stable")
        )
        .send()
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        s.admin(Method::GET, "/v2/apps/web/manifests/stable")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // deleting an artifact takes all its tags
    let res = s
        .admin(
            Method::DELETE,
            "/api/v2.0/projects/apps/repositories/web/artifacts/multi",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        s.admin(Method::GET, "/v2/apps/web/manifests/multi")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.admin(Method::GET, "/v2/apps/web/manifests/v1")
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "a tagged child stays"
    );
    assert_eq!(
        s.admin(Method::GET, &format!("/v2/apps/web/manifests/{arm}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // deleting a repository removes everything in it
    assert_eq!(
        s.admin(Method::DELETE, "/api/v2.0/projects/apps/repositories/web")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.admin(Method::GET, "/v2/apps/web/tags/list")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.admin(Method::GET, &format!("/v2/apps/web/blobs/{}", blobs1[0]))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.admin(Method::GET, "/api/v2.0/projects/apps/repositories/web")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

async fn system_endpoints(s: &Server) {
    let res = s.anon(Method::GET, "/api/v2.0/ping").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(res.text().await.unwrap(), "Pong");
    let h: Value = s
        .anon(Method::GET, "/api/v2.0/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "healthy");
    let comps: Vec<&str> = h["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(comps.contains(&"database") && comps.contains(&"registry"));
    let info = s.get_json("/api/v2.0/systeminfo").await;
    assert_eq!(info["auth_mode"], "db_auth");
    assert_eq!(info["external_url"], format!("http://{}", s.addr));
    assert_eq!(info["registry_url"], s.addr);
    let provider = if matches!(s.backend, Backend::Embedded) {
        "filesystem"
    } else {
        "s3"
    };
    assert_eq!(info["registry_storage_provider_name"], provider);
    let anon: Value = s
        .anon(Method::GET, "/api/v2.0/systeminfo")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(anon.get("registry_storage_provider_name").is_none());
    let res = s
        .admin(Method::GET, "/api/v2.0/no/such/thing")
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;
    // trailing slashes are accepted
    assert_eq!(
        s.admin(Method::GET, "/api/v2.0/projects/")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.anon(Method::GET, "/api/v2.0/ping/")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // request ids are echoed
    let res = s
        .anon(Method::GET, "/api/v2.0/ping")
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "x-request-id").as_deref(), Some("abc-123"));
    let res = s.anon(Method::GET, "/v2/").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&res, "www-authenticate").is_some());
    assert_eq!(
        header(&res, "docker-distribution-api-version").as_deref(),
        Some("registry/2.0")
    );
    assert_eq!(
        s.admin(Method::GET, "/v2/").send().await.unwrap().status(),
        200
    );
}

const HARBORAPI_SCRIPT: &str = r#"
import asyncio, sys
from harborapi import HarborAsyncClient
from harborapi.models import ProjectReq, ProjectMetadata, Tag, Repository
from harborapi.exceptions import Unauthorized
from harborapi.models import UserCreationReq, UserProfile, RobotCreate, RobotPermission, Access
url, pw = sys.argv[1], sys.argv[2]

async def main():
    c = HarborAsyncClient(url=url + "/api/v2.0", username="admin", secret=pw, validate=True, timeout=30)
    loc = await c.create_project(ProjectReq(project_name="hapi", metadata=ProjectMetadata(public="false")))
    assert loc, loc
    assert await c.project_exists("hapi")
    assert not await c.project_exists("hapi-missing")
    projects = await c.get_projects()
    assert {p.name for p in projects} >= {"library", "hapi", "pushed"}, projects
    p = await c.get_project("hapi")
    assert p.name == "hapi" and p.metadata.public == "false", p
    await c.update_project("hapi", ProjectReq(metadata=ProjectMetadata(auto_scan="true")))
    assert (await c.get_project(p.project_id)).metadata.auto_scan == "true"
    summary = await c.get_project_summary("pushed")
    assert summary.repo_count == 1, summary
    assert (await c.get_project_deletable("hapi")).deletable
    repos = await c.get_repositories("pushed")
    assert [r.name for r in repos] == ["pushed/app"], repos
    repo = await c.get_repository("pushed", "app")
    repo.description = "via harborapi"
    await c.update_repository("pushed", "app", repo)
    assert (await c.get_repository("pushed", "app")).description == "via harborapi"
    assert len(await c.get_repositories()) >= 1
    arts = await c.get_artifacts("pushed", "app")
    assert len(arts) == 1 and arts[0].tags[0].name == "v1", arts
    art = await c.get_artifact("pushed", "app", "v1")
    assert art.digest == arts[0].digest and art.extra_attrs is not None
    history = await c.get_artifact_build_history("pushed", "app", art.digest)
    assert len(history) == 1, history
    await c.create_artifact_tag("pushed", "app", art.digest, Tag(name="prod"))
    tags = await c.get_artifact_tags("pushed", "app", art.digest)
    assert sorted(t.name for t in tags) == ["prod", "v1"], tags
    await c.delete_artifact_tag("pushed", "app", art.digest, "prod")

    # a user, a membership and a robot
    await c.create_user(UserCreationReq(username="hana", email="hana@example.com", realname="Hana",
                                        password="Hana-Pass-1234", comment="via harborapi"))
    hana = await c.get_user_by_username("hana")
    assert hana.email == "hana@example.com" and not hana.sysadmin_flag, hana
    await c.update_user(hana.user_id, UserProfile(email="hana@example.org", realname="Hana H", comment="updated"))
    assert (await c.get_user(hana.user_id)).realname == "Hana H"
    assert {"admin", "hana"} <= {u.username for u in await c.get_users()}
    assert [u.username for u in await c.search_users_by_username("han")] == ["hana"]
    assert (await c.get_current_user()).username == "admin"
    await c.add_project_member_user("hapi", "hana", 2)
    members = await c.get_project_members("hapi")
    assert sorted(m.entity_name for m in members) == ["admin", "hana"], members
    member = next(m for m in members if m.entity_name == "hana")
    assert member.role_id == 2 and member.entity_type == "u", member
    await c.update_project_member_role("hapi", member.id, 4)
    assert (await c.get_project_member("hapi", member.id)).role_id == 4
    h = HarborAsyncClient(url=url + "/api/v2.0", username="hana", secret="Hana-Pass-1234", validate=True, timeout=30)
    mine = await h.get_current_user_permissions(scope="/project/" + str(p.project_id), relative=True)
    assert ("repository", "push") in {(x.resource, x.action) for x in mine}, mine
    # her project and the public library; not the private "pushed"
    assert sorted(p.name for p in await h.get_projects()) == ["hapi", "library"]
    robot = await c.create_robot(RobotCreate(name="ci", description="via harborapi", level="project", duration=30, disable=False,
        permissions=[RobotPermission(kind="project", namespace="hapi", access=[
            Access(resource="repository", action="list"), Access(resource="repository", action="pull"),
            Access(resource="repository", action="push")])]))
    assert robot.name == "robot$hapi+ci" and len(robot.secret) == 32, robot
    r = await c.get_robot(robot.id)
    assert r.level == "project" and r.permissions[0].namespace == "hapi" and not r.disable, r
    assert robot.id in [x.id for x in await c.get_robots()]
    rc = HarborAsyncClient(url=url + "/api/v2.0", username=robot.name, secret=robot.secret, validate=True, timeout=30)
    assert await rc.get_repositories("hapi") == []
    refreshed = await c.refresh_robot_secret(robot.id, "Fresh-Robot-Secret-123")
    # as Harbor: a caller-chosen secret is not echoed back
    assert refreshed.secret == "", refreshed
    fresh = HarborAsyncClient(url=url + "/api/v2.0", username=robot.name, secret="Fresh-Robot-Secret-123", validate=True, timeout=30)
    assert await fresh.get_repositories("hapi") == []
    try:
        await rc.get_repositories("hapi")
        raise SystemExit("the old robot secret still works")
    except Unauthorized:
        pass
    perms = await c.get_permissions()
    assert any(a.resource == "repository" and a.action == "push" for a in perms.project), perms
    await c.delete_robot(robot.id)
    await c.remove_project_member("hapi", member.id)
    assert [m.entity_name for m in await c.get_project_members("hapi")] == ["admin"]

    # the audit log recorded all of it, without secrets (it is written
    # just after the request, as Harbor's is)
    wanted = {("user", "create"), ("user", "update"), ("member", "create"), ("member", "update"),
              ("member", "delete"), ("robot", "create"), ("robot", "delete"), ("project", "create")}
    for _ in range(50):
        logs = await c.get_audit_logs(page_size=100)
        ops = {(l.resource_type, l.operation) for l in logs}
        if wanted <= ops:
            break
        await asyncio.sleep(0.1)
    assert wanted <= ops, (wanted - ops, ops)
    assert all(l.username for l in logs)
    assert not any("Fresh-Robot" in (l.resource or "") or "Hana-Pass" in (l.resource or "") for l in logs)
    plogs = await c.get_project_logs("hapi", page_size=100)
    assert plogs and {l.resource_type for l in plogs} >= {"member", "robot"}, plogs
    created = await c.get_audit_logs(query="operation=create,resource_type=user", page_size=100)
    assert created and all(l.operation == "create" and l.resource_type == "user" for l in created), created
    await c.delete_user(hana.user_id)
    info = await c.get_system_info()
    assert info.auth_mode == "db_auth", info
    health = await c.health_check()
    assert health.status == "healthy", health
    assert (await c.ping()) == "Pong"
    await c.delete_artifact("pushed", "app", "v1")
    await c.delete_repository("pushed", "app")
    await c.delete_project("hapi")
    print("OK")

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harborapi_client_validates_every_response() {
    let Ok(python) = std::env::var("BERTH_TEST_PYTHON") else {
        if std::env::var("BERTH_TEST_SKIP_EXTERNAL").as_deref() == Ok("1") {
            return;
        }
        panic!("BERTH_TEST_PYTHON (a Python with harborapi installed) is unset: run scripts/test-services start");
    };
    let s = Server::start(Backend::Embedded).await;
    s.create_project("pushed", false).await;
    s.push_image("pushed/app", "v1", 1).await;
    let out = Command::new(python)
        .arg("-c")
        .arg(HARBORAPI_SCRIPT)
        .arg(format!("http://{}", s.addr))
        .arg(ADMIN_PASSWORD)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "harborapi run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
