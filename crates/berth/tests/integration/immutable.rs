//! Tag immutability: rules through `/projects/{p}/immutabletagrules`, and
//! their effect on pushes, retags and deletes through both APIs.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

fn rule(repo: &str, tag: &str) -> Value {
    json!({
        "disabled": false,
        "action": "immutable",
        "template": "immutable_template",
        "tag_selectors": [{ "kind": "doublestar", "decoration": "matches", "pattern": tag }],
        "scope_selectors": { "repository": [{ "kind": "doublestar", "decoration": "repoMatches", "pattern": repo }] },
    })
}

async fn precondition(res: reqwest::Response) -> String {
    let st = res.status();
    let v: Value = res.json().await.unwrap();
    assert_eq!(st, StatusCode::PRECONDITION_FAILED, "{v}");
    assert_eq!(v["errors"][0]["code"], "PRECONDITION", "{v}");
    v["errors"][0]["message"].as_str().unwrap().to_owned()
}

async fn rules_api(s: &Server) {
    s.create_project("imr", false).await;
    let base = "/api/v2.0/projects/imr/immutabletagrules";
    let res = s
        .admin(Method::POST, base)
        .json(&rule("**", "v*"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let loc = location(&res);
    let list = s.get_json(base).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let r = &list[0];
    assert_eq!(r["action"], "immutable");
    assert_eq!(r["template"], "immutable_template");
    assert_eq!(r["disabled"], false);
    assert_eq!(r["tag_selectors"][0]["pattern"], "v*");
    assert_eq!(
        r["scope_selectors"]["repository"][0]["decoration"],
        "repoMatches"
    );
    assert!(loc.ends_with(&format!("/immutabletagrules/{}", r["id"])));
    // Same selectors again: 409.
    let res = s
        .admin(Method::POST, base)
        .json(&rule("**", "v*"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    // Bad rules: 400.
    let mut bad_decoration = rule("**", "x");
    bad_decoration["tag_selectors"][0]["decoration"] = json!("repoMatches");
    let mut regex = rule("**", "x");
    regex["tag_selectors"][0]["kind"] = json!("regex");
    let mut no_tags = rule("**", "x");
    no_tags["tag_selectors"] = json!([]);
    let mut retain = rule("**", "x");
    retain["action"] = json!("retain");
    for bad in [bad_decoration, regex, no_tags, retain, rule("**", "[a")] {
        let res = s.admin(Method::POST, base).json(&bad).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // Disable, then delete; unknown ids: 404.
    let id = r["id"].as_i64().unwrap();
    let res = s
        .admin(Method::PUT, &format!("{base}/{id}"))
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(s.get_json(base).await[0]["disabled"], true);
    assert_eq!(
        s.get_json(base).await[0]["tag_selectors"][0]["pattern"],
        "v*",
        "selectors kept"
    );
    let res = s
        .admin(Method::DELETE, &format!("{base}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = s
        .admin(Method::DELETE, &format!("{base}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Roles: maintainers manage rules, developers and guests cannot.
    s.create_user("imm-dev", "Immdev-12345").await;
    s.create_user("imm-maint", "Immmaint-12345").await;
    s.add_member("imr", "imm-dev", 2).await;
    s.add_member("imr", "imm-maint", 4).await;
    let res = s
        .basic("imm-dev", "Immdev-12345", Method::POST, base)
        .json(&rule("a", "b"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = s
        .basic("imm-maint", "Immmaint-12345", Method::POST, base)
        .json(&rule("a", "b"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = s.anon(Method::GET, base).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

async fn immutable_tags_cannot_move_or_go(s: &Server) {
    s.create_project("imm", false).await;
    let base = "/api/v2.0/projects/imm/immutabletagrules";
    let res = s
        .admin(Method::POST, base)
        .json(&rule("app", "v*"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = s.get_json(base).await[0]["id"].as_i64().unwrap();

    // The first push of an immutable tag is allowed, and pushing the same
    // manifest again too.
    let (d1, body1, _) = s.push_image("imm/app", "v1", 1).await;
    let res = s
        .put_manifest("imm/app", "v1", berth_oci::media::OCI_MANIFEST, &body1)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // Moving it to another digest: 412, and it still points at the first.
    let (_, body2, _) = {
        // push the blobs of a second image under a mutable tag first
        s.push_image("imm/app", "scratch", 1).await
    };
    let res = s
        .put_manifest("imm/app", "v1", berth_oci::media::OCI_MANIFEST, &body2)
        .await;
    assert_eq!(
        precondition(res).await,
        "Failed to process request due to 'imm/app:v1' configured as immutable."
    );
    let res = s
        .admin(Method::GET, "/v2/imm/app/manifests/v1")
        .header("accept", berth_oci::media::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&res, "docker-content-digest").as_deref(),
        Some(d1.as_str())
    );
    // Tags no rule selects move freely (other repository, other tag).
    s.push_image("imm/app", "scratch", 1).await;
    s.push_image("imm/other", "v1", 1).await;
    s.push_image("imm/other", "v1", 1).await;

    // Deleting it, or its artifact, through either API: 412.
    let res = s
        .admin(Method::DELETE, "/v2/imm/app/manifests/v1")
        .send()
        .await
        .unwrap();
    assert!(precondition(res)
        .await
        .contains("imm/app:v1 configured as immutable, cannot be deleted"));
    let res = s
        .admin(Method::DELETE, &format!("/v2/imm/app/manifests/{d1}"))
        .send()
        .await
        .unwrap();
    precondition(res).await;
    let res = s
        .admin(
            Method::DELETE,
            &format!("/api/v2.0/projects/imm/repositories/app/artifacts/{d1}/tags/v1"),
        )
        .send()
        .await
        .unwrap();
    precondition(res).await;
    let res = s
        .admin(
            Method::DELETE,
            &format!("/api/v2.0/projects/imm/repositories/app/artifacts/{d1}"),
        )
        .send()
        .await
        .unwrap();
    precondition(res).await;
    let res = s
        .admin(Method::DELETE, "/api/v2.0/projects/imm/repositories/app")
        .send()
        .await
        .unwrap();
    precondition(res).await;
    assert_eq!(
        s.admin(Method::GET, "/v2/imm/app/manifests/v1")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "nothing was deleted"
    );
    // Another tag of the same artifact can be added, and removed.
    let res = s
        .admin(
            Method::POST,
            &format!("/api/v2.0/projects/imm/repositories/app/artifacts/{d1}/tags"),
        )
        .json(&json!({ "name": "extra" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = s
        .admin(
            Method::DELETE,
            &format!("/api/v2.0/projects/imm/repositories/app/artifacts/{d1}/tags/extra"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Disabled, the rule protects nothing.
    let res = s
        .admin(Method::PUT, &format!("{base}/{id}"))
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = s
        .put_manifest("imm/app", "v1", berth_oci::media::OCI_MANIFEST, &body2)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = s
        .admin(Method::DELETE, "/v2/imm/app/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}

crate::on_backends!(rules_api, immutable_tags_cannot_move_or_go);
