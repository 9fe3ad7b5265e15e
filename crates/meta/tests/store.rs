//! The MetaStore conformance suite: every case runs against SQLite and
//! against a real PostgreSQL (`BERTH_TEST_POSTGRES_URL`, a superuser URL;
//! each case gets its own database).

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_core::access::{Role, Visibility};
use berth_core::model::*;
use berth_core::ports::{no_guard, BlobPresence, MetaStore};
use berth_core::query::*;
use berth_core::CoreError;
use berth_oci::{Digest, ProjectName, Reference, RepoName, Tag};
use bytes::Bytes;

mod common;
use common::{postgres, sqlite};

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test] async fn $name() { if let Some(db) = super::sqlite().await { super::$name(db.store.clone()).await } } )* }
        mod on_postgres { $( #[tokio::test] async fn $name() { if let Some(db) = super::postgres().await { super::$name(db.store.clone()).await } } )* }
    };
}

both!(
    users_and_roles,
    projects_crud_and_listing,
    project_delete_rules,
    blobs_links_and_mounts,
    upload_sessions_and_leases,
    manifest_push_rules,
    tags_and_resolution,
    deletes_cascade,
    referrers_and_catalog,
    artifacts_listing,
    pulls_are_recorded,
    jobs_run_to_an_end,
    jobs_are_claimed_once,
    jobs_stop_and_survive_crashes,
    audit_log_purge,
    storage_requests,
);

fn digest(n: u32) -> Digest {
    Digest::sha256(&n.to_be_bytes())
}

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

async fn admin(store: &Arc<dyn MetaStore>) -> User {
    store
        .create_user(&NewUser {
            username: "admin".into(),
            email: "a@example.com".into(),
            realname: "Admin".into(),
            comment: String::new(),
            password_hash: "x".into(),
            sysadmin: true,
        })
        .await
        .unwrap()
}

async fn project(store: &Arc<dyn MetaStore>, name: &str, owner: i64, public: bool) -> Project {
    store
        .create_project(&NewProject {
            name: ProjectName::parse(name).unwrap(),
            owner_id: owner,
            public,
            metadata: BTreeMap::from([("public".to_owned(), public.to_string())]),
            storage_limit: -1,
            registry_id: None,
        })
        .await
        .unwrap()
}

async fn blob(store: &Arc<dyn MetaStore>, p: &Project, r: &str, n: u32, size: u64) -> Digest {
    let d = digest(n);
    store
        .commit_blob(p.id, &repo(r), &d, size, None, 1000)
        .await
        .unwrap();
    d
}

fn artifact(
    p: &Project,
    r: &str,
    body: &str,
    blobs: Vec<Digest>,
    tag: Option<&str>,
) -> NewArtifact {
    let body = Bytes::from(body.to_owned());
    NewArtifact {
        project_id: p.id,
        repository: repo(r),
        digest: Digest::sha256(&body),
        body,
        manifest_media_type: berth_oci::media::OCI_MANIFEST.into(),
        media_type: berth_oci::media::OCI_CONFIG.into(),
        artifact_type: berth_oci::media::OCI_CONFIG.into(),
        kind: "IMAGE".into(),
        subject: None,
        annotations: BTreeMap::new(),
        extra_attrs: serde_json::json!({}),
        blobs,
        foreign_size: 0,
        children: vec![],
        tags: tag.map(|t| Tag::parse(t).unwrap()).into_iter().collect(),
        immutable_tags: vec![],
        push_time: 2000,
    }
}

async fn users_and_roles(store: Arc<dyn MetaStore>) {
    let a = admin(&store).await;
    assert_eq!(a.id, 1, "the first user is the admin, id 1");
    assert!(a.sysadmin);
    let dup = store
        .create_user(&NewUser {
            username: "admin".into(),
            email: String::new(),
            realname: String::new(),
            comment: String::new(),
            password_hash: "y".into(),
            sysadmin: false,
        })
        .await;
    assert!(matches!(dup, Err(CoreError::Conflict(_))));
    assert_eq!(store.user_by_name("admin").await.unwrap().unwrap().id, 1);
    assert!(store.user_by_name("nobody").await.unwrap().is_none());
    store.set_password_hash(1, "new").await.unwrap();
    assert_eq!(
        store.user_by_id(1).await.unwrap().unwrap().password_hash,
        "new"
    );
    let p = project(&store, "proj", 1, false).await;
    let roles = store.roles_of_user(1).await.unwrap();
    assert_eq!(
        roles.get(&p.id).map(Vec::as_slice),
        Some(&[Role::ProjectAdmin][..])
    );
}

async fn projects_crud_and_listing(store: Arc<dyn MetaStore>) {
    admin(&store).await;
    let a = project(&store, "alpha", 1, true).await;
    let b = project(&store, "beta", 1, false).await;
    let _c = project(&store, "gamma_x", 1, false).await;
    assert_eq!(a.owner_name, "admin");
    assert!(a.public);
    assert_eq!(a.repo_count, 0);
    let dup = store
        .create_project(&NewProject {
            name: ProjectName::parse("alpha").unwrap(),
            owner_id: 1,
            public: false,
            metadata: BTreeMap::new(),
            storage_limit: -1,
            registry_id: None,
        })
        .await;
    assert!(matches!(dup, Err(CoreError::Conflict(_))));

    let q = |name: Option<TextMatch>, visibility: Visibility| ProjectQuery {
        name,
        public: None,
        owner: None,
        visibility,
        sort: vec![],
    };
    let (all, total) = store
        .list_projects(&q(None, Visibility::All), Page::default())
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        all.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["alpha", "beta", "gamma_x"]
    );
    let (page2, total) = store
        .list_projects(&q(None, Visibility::All), Page::new(2, 2))
        .await
        .unwrap();
    assert_eq!((page2.len(), total), (1, 3));
    let (fuzzy, _) = store
        .list_projects(
            &q(Some(TextMatch::Fuzzy("ET".into())), Visibility::All),
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(fuzzy.len(), 1);
    assert_eq!(fuzzy[0].name, "beta");
    // `_` in a search is literal, not a wildcard
    let (lit, _) = store
        .list_projects(
            &q(Some(TextMatch::Fuzzy("a_x".into())), Visibility::All),
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(lit.len(), 1);
    let (none, _) = store
        .list_projects(
            &q(
                Some(TextMatch::Fuzzy("' or '1'='1".into())),
                Visibility::All,
            ),
            Page::default(),
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    let (visible, total) = store
        .list_projects(
            &q(
                None,
                Visibility::Some {
                    public: true,
                    projects: vec![b.id],
                },
            ),
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(
        visible.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["alpha", "beta"]
    );
    let mut sorted = q(None, Visibility::All);
    sorted.sort = vec![Sort {
        field: ProjectSortField::Name,
        descending: true,
    }];
    let (desc, _) = store.list_projects(&sorted, Page::default()).await.unwrap();
    assert_eq!(desc[0].name, "gamma_x");
    let mut public_only = q(None, Visibility::All);
    public_only.public = Some(true);
    assert_eq!(
        store
            .list_projects(&public_only, Page::default())
            .await
            .unwrap()
            .1,
        1
    );

    let meta = BTreeMap::from([
        ("public".to_owned(), "false".to_owned()),
        ("auto_scan".to_owned(), "true".to_owned()),
    ]);
    store.update_project(a.id, false, &meta).await.unwrap();
    let a2 = store.project_by_name("alpha").await.unwrap().unwrap();
    assert!(!a2.public);
    assert_eq!(
        a2.metadata.get("auto_scan").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        store.project_by_id(a.id).await.unwrap().unwrap().name,
        "alpha"
    );
    assert!(store.project_by_id(9999).await.unwrap().is_none());
}

async fn project_delete_rules(store: Arc<dyn MetaStore>) {
    admin(&store).await;
    let p = project(&store, "p", 1, false).await;
    let d = blob(&store, &p, "p/r", 1, 10).await;
    store
        .create_upload(&Upload {
            id: "u1".into(),
            project_id: p.id,
            repository: "p/r".into(),
            size: 0,
            hash_state: vec![1],
            backend_state: String::new(),
            owner: "admin".into(),
            creation_time: 0,
            update_time: 0,
        })
        .await
        .unwrap();
    store
        .put_manifest(&artifact(&p, "p/r", "m1", vec![d], Some("v1")))
        .await
        .unwrap();
    assert!(matches!(
        store.delete_project(p.id).await,
        Err(CoreError::Precondition(_))
    ));
    let repo_row = store.repository_by_name("p/r").await.unwrap().unwrap();
    let deleted = store
        .delete_repository(repo_row.id, &no_guard)
        .await
        .unwrap();
    assert_eq!(deleted.artifacts.len(), 1);
    assert_eq!(deleted.artifacts[0].1, vec!["v1".to_owned()]);
    let summary = store.project_summary(p.id).await.unwrap();
    assert_eq!(summary.repo_count, 0);
    let uploads = store.delete_project(p.id).await.unwrap();
    assert!(
        uploads.is_empty(),
        "deleting the repository dropped its uploads"
    );
    assert!(store.project_by_id(p.id).await.unwrap().is_none());
    assert!(store.roles_of_user(1).await.unwrap().is_empty());
}

async fn blobs_links_and_mounts(store: Arc<dyn MetaStore>) {
    admin(&store).await;
    let p = project(&store, "p", 1, false).await;
    let q = project(&store, "q", 1, false).await;
    let d = blob(&store, &p, "p/a", 1, 42).await;
    let linked = store.linked_blob(&repo("p/a"), &d).await.unwrap().unwrap();
    assert_eq!((linked.size, linked.status), (42, BlobStatus::None));
    assert!(store.linked_blob(&repo("p/b"), &d).await.unwrap().is_none());
    assert_eq!(
        store.touch_blob(&d, 5).await.unwrap(),
        BlobPresence::Present { size: 42 }
    );
    assert_eq!(
        store.touch_blob(&digest(99), 5).await.unwrap(),
        BlobPresence::Absent
    );
    // mount needs the source link
    assert!(store
        .mount_blob(q.id, &repo("q/x"), &repo("p/zzz"), &d, 5)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .mount_blob(q.id, &repo("q/x"), &repo("p/a"), &d, 5)
            .await
            .unwrap()
            .map(|(info, charge)| (info, charge.added)),
        Some((BlobInfo { size: 42 }, 42)),
        "a blob new to the project is counted against its quota"
    );
    assert!(store.linked_blob(&repo("q/x"), &d).await.unwrap().is_some());
    // committing again is idempotent
    store
        .commit_blob(p.id, &repo("p/a"), &d, 42, None, 7)
        .await
        .unwrap();
    assert!(store.unlink_blob(&repo("p/a"), &d).await.unwrap());
    assert!(!store.unlink_blob(&repo("p/a"), &d).await.unwrap());
    assert!(store.linked_blob(&repo("p/a"), &d).await.unwrap().is_none());
    assert!(store.linked_blob(&repo("q/x"), &d).await.unwrap().is_some());
}

async fn upload_sessions_and_leases(store: Arc<dyn MetaStore>) {
    admin(&store).await;
    let p = project(&store, "p", 1, false).await;
    let u = Upload {
        id: "3f0c4f5e-0000-4000-8000-000000000001".into(),
        project_id: p.id,
        repository: "p/r".into(),
        size: 0,
        hash_state: vec![1, 2, 3],
        backend_state: "{}".into(),
        owner: "admin".into(),
        creation_time: 10,
        update_time: 10,
    };
    store.create_upload(&u).await.unwrap();
    assert_eq!(
        store.get_upload(&repo("p/r"), &u.id).await.unwrap(),
        Some(u.clone())
    );
    assert!(
        store
            .get_upload(&repo("p/other"), &u.id)
            .await
            .unwrap()
            .is_none(),
        "sessions are bound to their repository"
    );
    assert!(matches!(
        store
            .claim_upload(&repo("p/other"), &u.id, "n1", 100, 50)
            .await
            .unwrap(),
        UploadClaim::NotFound
    ));
    let UploadClaim::Claimed(c) = store
        .claim_upload(&repo("p/r"), &u.id, "n1", 100, 50)
        .await
        .unwrap()
    else {
        panic!("first claim must succeed")
    };
    assert_eq!(c.hash_state, vec![1, 2, 3]);
    assert!(matches!(
        store
            .claim_upload(&repo("p/r"), &u.id, "n2", 100, 60)
            .await
            .unwrap(),
        UploadClaim::Busy
    ));
    assert!(store.renew_upload(&u.id, "n1", 200).await.unwrap());
    assert!(!store.renew_upload(&u.id, "n2", 200).await.unwrap());
    assert!(matches!(
        store
            .claim_upload(&repo("p/r"), &u.id, "n2", 300, 150)
            .await
            .unwrap(),
        UploadClaim::Busy
    ));
    // an expired lease can be taken over
    assert!(matches!(
        store
            .claim_upload(&repo("p/r"), &u.id, "n2", 400, 250)
            .await
            .unwrap(),
        UploadClaim::Claimed(_)
    ));
    assert!(matches!(
        store.save_upload(&u.id, "n1", 5, &[9], "s", 260).await,
        Err(CoreError::UploadBusy)
    ));
    store
        .save_upload(&u.id, "n2", 5, &[9], "s", 260)
        .await
        .unwrap();
    let saved = store
        .get_upload(&repo("p/r"), &u.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            saved.size,
            saved.hash_state.as_slice(),
            saved.backend_state.as_str()
        ),
        (5, &[9u8][..], "s")
    );
    // saving released the lease
    assert!(matches!(
        store
            .claim_upload(&repo("p/r"), &u.id, "n3", 500, 270)
            .await
            .unwrap(),
        UploadClaim::Claimed(_)
    ));
    store.release_upload(&u.id, "n3").await.unwrap();
    assert!(matches!(
        store
            .claim_upload(&repo("p/r"), &u.id, "n4", 500, 271)
            .await
            .unwrap(),
        UploadClaim::Claimed(_)
    ));
    assert!(store.delete_upload(&u.id).await.unwrap().is_some());
    assert!(store.delete_upload(&u.id).await.unwrap().is_none());
}

async fn manifest_push_rules(store: Arc<dyn MetaStore>) {
    admin(&store).await;
    let p = project(&store, "p", 1, false).await;
    let config = blob(&store, &p, "p/r", 1, 100).await;
    let layer = blob(&store, &p, "p/r", 2, 1000).await;
    let elsewhere = blob(&store, &p, "p/other", 3, 5).await;
    let err = store
        .put_manifest(&artifact(
            &p,
            "p/r",
            "m0",
            vec![config.clone(), elsewhere.clone()],
            None,
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::ManifestBlobUnknown(d) if d == elsewhere));
    assert!(
        store.repository_by_name("p/r").await.unwrap().is_none(),
        "a refused push creates nothing"
    );
    let new = artifact(
        &p,
        "p/r",
        "m1",
        vec![config.clone(), layer.clone()],
        Some("v1"),
    );
    let out = store.put_manifest(&new).await.unwrap();
    assert!(out.created);
    let again = store.put_manifest(&new).await.unwrap();
    assert_eq!((again.artifact_id, again.created), (out.artifact_id, false));
    let repo_row = store.repository_by_name("p/r").await.unwrap().unwrap();
    let a = store
        .artifact_by_reference(repo_row.id, &Reference::Digest(new.digest.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.size, 2 + 100 + 1000, "size = manifest + referenced blobs");
    assert_eq!(a.manifest_size, 2);
    assert_eq!(a.tags.len(), 1);
    // moving the tag reports the previous target
    let moved = store
        .put_manifest(&artifact(&p, "p/r", "m2", vec![config.clone()], Some("v1")))
        .await
        .unwrap();
    assert_eq!(
        moved.moved_tags,
        vec![("v1".to_owned(), new.digest.clone())]
    );
    // index children must be artifacts of the repository
    let mut idx = artifact(&p, "p/r", "idx", vec![], Some("multi"));
    idx.manifest_media_type = berth_oci::media::OCI_INDEX.into();
    idx.children = vec![NewChild {
        digest: digest(77),
        platform: None,
        annotations: None,
        urls: None,
    }];
    assert!(matches!(
        store.put_manifest(&idx).await,
        Err(CoreError::ManifestBlobUnknown(_))
    ));
    idx.children = vec![NewChild {
        digest: new.digest.clone(),
        platform: Some(berth_oci::Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            ..Default::default()
        }),
        annotations: None,
        urls: None,
    }];
    let io = store.put_manifest(&idx).await.unwrap();
    let index = store
        .artifact_by_reference(repo_row.id, &Reference::Tag(Tag::parse("multi").unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(index.id, io.artifact_id);
    assert_eq!(index.references.len(), 1);
    assert_eq!(
        index.references[0].platform.as_ref().unwrap().architecture,
        "arm64"
    );
    assert_eq!(index.size, 3 + a.size, "index size = own bytes + children");
}

async fn tags_and_resolution(store: Arc<dyn MetaStore>) {
    admin(&store).await;
    let p = project(&store, "p", 1, false).await;
    let c = blob(&store, &p, "p/r", 1, 1).await;
    for t in ["b", "a", "C", "c", "10", "9"] {
        store
            .put_manifest(&artifact(
                &p,
                "p/r",
                &format!("m-{t}"),
                vec![c.clone()],
                Some(t),
            ))
            .await
            .unwrap();
    }
    let tags = store
        .list_tags(&repo("p/r"), None, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tags, ["10", "9", "C", "a", "b", "c"], "byte order");
    assert_eq!(
        store
            .list_tags(&repo("p/r"), Some("C"), 2)
            .await
            .unwrap()
            .unwrap(),
        ["a", "b"]
    );
    assert_eq!(
        store.list_tags(&repo("p/none"), None, 10).await.unwrap(),
        None
    );
    let m = store
        .resolve_manifest(&repo("p/r"), &Reference::Tag(Tag::parse("a").unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.body.as_ref(), b"m-a");
    assert_eq!(m.media_type, berth_oci::media::OCI_MANIFEST);
    let by_digest = store
        .resolve_manifest(&repo("p/r"), &Reference::Digest(m.digest.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_digest.artifact_id, m.artifact_id);
    assert!(store
        .resolve_manifest(&repo("p/other"), &Reference::Digest(m.digest.clone()))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .delete_tag(&repo("p/r"), &Tag::parse("a").unwrap())
        .await
        .unwrap());
    assert!(!store
        .delete_tag(&repo("p/r"), &Tag::parse("a").unwrap())
        .await
        .unwrap());
    assert!(store
        .resolve_manifest(&repo("p/r"), &Reference::Tag(Tag::parse("a").unwrap()))
        .await
        .unwrap()
        .is_none());
    // the artifact stays, by digest
    assert!(store
        .resolve_manifest(&repo("p/r"), &Reference::Digest(m.digest.clone()))
        .await
        .unwrap()
        .is_some());
    let repo_row = store.repository_by_name("p/r").await.unwrap().unwrap();
    let art = store
        .artifact_by_reference(repo_row.id, &Reference::Digest(m.digest.clone()))
        .await
        .unwrap()
        .unwrap();
    store
        .create_tag(&art, &Tag::parse("again").unwrap(), 5)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_tag(&art, &Tag::parse("again").unwrap(), 5)
            .await,
        Err(CoreError::Conflict(_))
    ));
}

async fn deletes_cascade(store: Arc<dyn MetaStore>) {
    admin(&store).await;
    let p = project(&store, "p", 1, false).await;
    let c = blob(&store, &p, "p/r", 1, 1).await;
    let child = artifact(&p, "p/r", "child", vec![c.clone()], None);
    store.put_manifest(&child).await.unwrap();
    let mut idx = artifact(&p, "p/r", "index", vec![], Some("latest"));
    idx.children = vec![NewChild {
        digest: child.digest.clone(),
        platform: None,
        annotations: None,
        urls: None,
    }];
    store.put_manifest(&idx).await.unwrap();
    let mut sig = artifact(&p, "p/r", "signature", vec![c.clone()], None);
    sig.subject = Some(idx.digest.clone());
    store.put_manifest(&sig).await.unwrap();
    // a child referenced by an index cannot go first
    assert!(matches!(
        store
            .delete_manifest(&repo("p/r"), &child.digest, &no_guard)
            .await,
        Err(CoreError::Precondition(_))
    ));
    let deleted = store
        .delete_manifest(&repo("p/r"), &idx.digest, &no_guard)
        .await
        .unwrap();
    let mut digests: Vec<_> = deleted.artifacts.iter().map(|(d, _)| d.clone()).collect();
    digests.sort();
    let mut expected = vec![idx.digest.clone(), child.digest.clone(), sig.digest.clone()];
    expected.sort();
    assert_eq!(
        digests, expected,
        "index, its untagged child and its accessory go together"
    );
    assert!(deleted
        .artifacts
        .iter()
        .any(|(d, tags)| d == &idx.digest && tags == &vec!["latest".to_owned()]));
    assert!(store
        .delete_manifest(&repo("p/r"), &idx.digest, &no_guard)
        .await
        .unwrap()
        .artifacts
        .is_empty());
    assert_eq!(
        store
            .list_tags(&repo("p/r"), None, 10)
            .await
            .unwrap()
            .unwrap(),
        Vec::<String>::new()
    );
}

async fn referrers_and_catalog(store: Arc<dyn MetaStore>) {
    admin(&store).await;
    let p = project(&store, "p", 1, true).await;
    let q = project(&store, "q", 1, false).await;
    let c = blob(&store, &p, "p/r", 1, 1).await;
    let subject = digest(500);
    for (i, t) in ["type/a", "type/b", "type/a"].iter().enumerate() {
        let mut a = artifact(&p, "p/r", &format!("ref{i}"), vec![c.clone()], None);
        a.subject = Some(subject.clone());
        a.artifact_type = (*t).into();
        a.annotations = BTreeMap::from([("k".to_owned(), format!("v{i}"))]);
        store.put_manifest(&a).await.unwrap();
    }
    let all = store.referrers(&repo("p/r"), &subject, None).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].annotations.get("k").map(String::as_str), Some("v0"));
    assert_eq!(all[0].size, 4);
    assert_eq!(
        store
            .referrers(&repo("p/r"), &subject, Some("type/a"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(store
        .referrers(&repo("p/r"), &digest(1), None)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .referrers(&repo("p/none"), &subject, None)
        .await
        .unwrap()
        .is_empty());

    let cq = blob(&store, &q, "q/hidden", 1, 1).await;
    store
        .put_manifest(&artifact(&q, "q/hidden", "h", vec![cq], None))
        .await
        .unwrap();
    let c2 = blob(&store, &p, "p/a", 1, 1).await;
    store
        .put_manifest(&artifact(&p, "p/a", "x", vec![c2], None))
        .await
        .unwrap();
    assert_eq!(
        store.catalog(&Visibility::All, None, 10).await.unwrap(),
        ["p/a", "p/r", "q/hidden"]
    );
    assert_eq!(
        store
            .catalog(&Visibility::All, Some("p/a"), 1)
            .await
            .unwrap(),
        ["p/r"]
    );
    let public_only = Visibility::Some {
        public: true,
        projects: vec![],
    };
    assert_eq!(
        store.catalog(&public_only, None, 10).await.unwrap(),
        ["p/a", "p/r"]
    );
    let member = Visibility::Some {
        public: false,
        projects: vec![q.id],
    };
    assert_eq!(
        store.catalog(&member, None, 10).await.unwrap(),
        ["q/hidden"]
    );
}

async fn artifacts_listing(store: Arc<dyn MetaStore>) {
    admin(&store).await;
    let p = project(&store, "p", 1, false).await;
    let c = blob(&store, &p, "p/r", 1, 1).await;
    let mut tagged = artifact(&p, "p/r", "t1", vec![c.clone()], Some("release-1"));
    tagged.push_time = 10;
    store.put_manifest(&tagged).await.unwrap();
    let mut untagged = artifact(&p, "p/r", "u1", vec![c.clone()], None);
    untagged.push_time = 20;
    store.put_manifest(&untagged).await.unwrap();
    let mut sig = artifact(&p, "p/r", "s1", vec![c.clone()], None);
    sig.subject = Some(tagged.digest.clone());
    store.put_manifest(&sig).await.unwrap();
    let repo_row = store.repository_by_name("p/r").await.unwrap().unwrap();
    let (list, total) = store
        .list_artifacts(&ArtifactQuery::all(repo_row.id), Page::default())
        .await
        .unwrap();
    assert_eq!(total, 2, "accessories are listed under their subject");
    assert_eq!(list[0].digest, untagged.digest, "newest first");
    let mut q = ArtifactQuery::all(repo_row.id);
    q.tags = Some(TagFilter::Tagged);
    assert_eq!(
        store.list_artifacts(&q, Page::default()).await.unwrap().0[0].digest,
        tagged.digest
    );
    q.tags = Some(TagFilter::Untagged);
    assert_eq!(
        store.list_artifacts(&q, Page::default()).await.unwrap().1,
        1
    );
    q.tags = Some(TagFilter::Name(TextMatch::Fuzzy("lease".into())));
    assert_eq!(
        store.list_artifacts(&q, Page::default()).await.unwrap().1,
        1
    );
    q.tags = Some(TagFilter::Name(TextMatch::Exact("lease".into())));
    assert_eq!(
        store.list_artifacts(&q, Page::default()).await.unwrap().1,
        0
    );
    let mut q = ArtifactQuery::all(repo_row.id);
    q.sort = vec![Sort {
        field: ArtifactSortField::PushTime,
        descending: false,
    }];
    assert_eq!(
        store.list_artifacts(&q, Page::new(1, 1)).await.unwrap().0[0].digest,
        tagged.digest
    );
    let summary = store.project_summary(p.id).await.unwrap();
    assert_eq!(summary.repo_count, 1);
    assert_eq!(summary.artifact_count, 3);
    assert_eq!(
        summary.storage_used,
        1 + (tagged.body.len() + untagged.body.len() + sig.body.len()) as i64,
        "the blob once, and each manifest"
    );
    assert_eq!(summary.member_counts.get(&Role::ProjectAdmin), Some(&1));
    let (repos, total) = store
        .list_repositories(
            &RepositoryQuery {
                project_id: Some(p.id),
                name: Some(TextMatch::Fuzzy("/R".into())),
                visibility: Visibility::All,
                sort: vec![],
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!((total, repos[0].artifact_count), (1, 3));
    store
        .update_repository_description(repo_row.id, "<b>desc</b>")
        .await
        .unwrap();
    assert_eq!(
        store
            .repository_by_name("p/r")
            .await
            .unwrap()
            .unwrap()
            .description,
        "<b>desc</b>"
    );
}

async fn pulls_are_recorded(store: Arc<dyn MetaStore>) {
    admin(&store).await;
    let p = project(&store, "p", 1, false).await;
    let c = blob(&store, &p, "p/r", 1, 1).await;
    let out = store
        .put_manifest(&artifact(&p, "p/r", "m", vec![c], Some("v1")))
        .await
        .unwrap();
    let repo_row = store.repository_by_name("p/r").await.unwrap().unwrap();
    let pulls: Vec<PullRecord> = (0..5)
        .map(|i| PullRecord {
            repository_id: repo_row.id,
            artifact_id: out.artifact_id,
            tag: Some("v1".into()),
            time: 100 + i,
        })
        .collect();
    store.record_pulls(&pulls).await.unwrap();
    let repo_row = store.repository_by_name("p/r").await.unwrap().unwrap();
    assert_eq!(repo_row.pull_count, 5);
    let a = store
        .artifact_by_reference(repo_row.id, &Reference::Tag(Tag::parse("v1").unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.pull_time, Some(104));
    assert_eq!(a.tags[0].pull_time, Some(104));
}

/// Takes an artifact row as a delete does, in a transaction beside the store.
async fn lock_artifact(tx: &mut sqlx::PgConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT id FROM artifacts WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(tx)
        .await
        .map(|_| ())
}

/// A delete locks its artifacts one by one, in no order the pull recorder
/// can know. Here a transaction holds the newer artifact and, once the
/// recorder is under way with both, takes the older one too: the recorder
/// must never hold one row while it waits for the other, or PostgreSQL
/// breaks the deadlock by failing one side (in the field, a client's
/// DELETE answered 500).
#[tokio::test]
async fn pulls_never_deadlock_with_a_delete_on_postgres() {
    use sqlx::Connection;
    let Some(db) = postgres().await else { return };
    let store = db.store.clone();
    admin(&store).await;
    let p = project(&store, "p", 1, false).await;
    let c = blob(&store, &p, "p/r", 1, 1).await;
    let older = store
        .put_manifest(&artifact(&p, "p/r", "m1", vec![c.clone()], Some("a")))
        .await
        .unwrap();
    let newer = store
        .put_manifest(&artifact(&p, "p/r", "m2", vec![c], Some("b")))
        .await
        .unwrap();
    assert!(older.artifact_id < newer.artifact_id);
    let repo_row = store.repository_by_name("p/r").await.unwrap().unwrap();

    let mut conn = sqlx::PgConnection::connect(db.url.as_deref().unwrap())
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    // Long enough to tell a deadlock (detected after 1 s) from a wait.
    sqlx::query("SET LOCAL lock_timeout = '10s'")
        .execute(&mut *tx)
        .await
        .unwrap();
    lock_artifact(&mut tx, newer.artifact_id).await.unwrap();
    sqlx::query("SELECT name FROM tags WHERE name = 'b' FOR UPDATE")
        .execute(&mut *tx)
        .await
        .unwrap();

    let pulls: Vec<PullRecord> = [(older.artifact_id, "a"), (newer.artifact_id, "b")]
        .into_iter()
        .map(|(id, tag)| PullRecord {
            repository_id: repo_row.id,
            artifact_id: id,
            tag: Some(tag.into()),
            time: 500,
        })
        .collect();
    let recorder = tokio::spawn({
        let store = store.clone();
        async move { store.record_pulls(&pulls).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The held rows are still waited for: the recorder is not done.
    assert!(
        !recorder.is_finished(),
        "the recorder skipped a held row for good"
    );
    lock_artifact(&mut tx, older.artifact_id)
        .await
        .expect("taking the second row: the recorder must not hold it while it waits");
    sqlx::query("SELECT name FROM tags WHERE name = 'a' FOR UPDATE")
        .execute(&mut *tx)
        .await
        .expect("taking the second tag: the recorder must not hold it while it waits");
    tx.commit().await.unwrap();
    recorder.await.unwrap().expect("record_pulls");

    let repo_row = store.repository_by_name("p/r").await.unwrap().unwrap();
    assert_eq!(repo_row.pull_count, 2);
    for (tag, id) in [("a", older.artifact_id), ("b", newer.artifact_id)] {
        let a = store
            .artifact_by_reference(repo_row.id, &Reference::Tag(Tag::parse(tag).unwrap()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.id, id);
        assert_eq!(a.pull_time, Some(500), "{tag}");
        assert_eq!(a.tags[0].pull_time, Some(500), "{tag}");
    }
    // An older pull arriving late does not move a pull time back.
    store
        .record_pulls(&[PullRecord {
            repository_id: repo_row.id,
            artifact_id: older.artifact_id,
            tag: Some("a".into()),
            time: 400,
        }])
        .await
        .unwrap();
    let a = store
        .artifact_by_reference(repo_row.id, &Reference::Tag(Tag::parse("a").unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.pull_time, Some(500));
    assert_eq!(a.tags[0].pull_time, Some(500));
}

/// When PostgreSQL breaks a deadlock by aborting a client's write, the
/// store runs that transaction again instead of failing the request. Here
/// a transaction holds an index's child, the store's delete of the index
/// takes the index and waits for the child, and the transaction then asks
/// for the index: the store waited first, so its try is the one aborted.
#[tokio::test]
async fn aborted_deletes_run_again_on_postgres() {
    use sqlx::Connection;
    let Some(db) = postgres().await else { return };
    let store = db.store.clone();
    admin(&store).await;
    let p = project(&store, "p", 1, false).await;
    let c = blob(&store, &p, "p/r", 1, 1).await;
    let child = store
        .put_manifest(&artifact(&p, "p/r", "child", vec![c], None))
        .await
        .unwrap();
    let mut idx = artifact(&p, "p/r", "index", vec![], Some("multi"));
    idx.manifest_media_type = berth_oci::media::OCI_INDEX.into();
    idx.children = vec![NewChild {
        digest: Digest::sha256(b"child"),
        platform: None,
        annotations: None,
        urls: None,
    }];
    let index = store.put_manifest(&idx).await.unwrap();

    let mut conn = sqlx::PgConnection::connect(db.url.as_deref().unwrap())
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    lock_artifact(&mut tx, child.artifact_id).await.unwrap();
    let delete = tokio::spawn({
        let store = store.clone();
        let digest = idx.digest.clone();
        async move {
            store
                .delete_manifest(&repo("p/r"), &digest, &no_guard)
                .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(
        !delete.is_finished(),
        "the delete did not wait for the held child"
    );
    // Waits until the deadlock check aborts the store's try (after 1 s).
    lock_artifact(&mut tx, index.artifact_id)
        .await
        .expect("the store's transaction, which waited first, is the one aborted");
    tx.commit().await.unwrap();
    let deleted = delete
        .await
        .unwrap()
        .expect("the aborted delete runs again");
    let mut gone: Vec<Digest> = deleted.artifacts.into_iter().map(|(d, _)| d).collect();
    gone.sort();
    let mut want = vec![idx.digest.clone(), Digest::sha256(b"child")];
    want.sort();
    assert_eq!(gone, want);
    let repo_row = store.repository_by_name("p/r").await.unwrap().unwrap();
    for d in want {
        assert!(store
            .artifact_by_reference(repo_row.id, &Reference::Digest(d))
            .await
            .unwrap()
            .is_none());
    }
}

/// GC's manifest delete never takes a manifest a push is storing: the push
/// upserts the row (locking it and refreshing its time) before it inserts
/// its artifact, and the delete skips a held row rather than waiting, then
/// finds it too recent.
#[tokio::test]
async fn manifest_delete_skips_a_manifest_being_pushed_on_postgres() {
    use sqlx::Connection;
    let Some(db) = postgres().await else { return };
    let store = db.store.clone();
    admin(&store).await;
    let p = project(&store, "p", 1, false).await;
    let c = blob(&store, &p, "p/r", 1, 1).await;
    let held = artifact(&p, "p/r", "m1", vec![c.clone()], None);
    let free = artifact(&p, "p/r", "m22", vec![c], None);
    for a in [&held, &free] {
        store.put_manifest(a).await.unwrap();
        store
            .delete_manifest(&repo("p/r"), &a.digest, &no_guard)
            .await
            .unwrap();
    }
    // Both were stored at 2000 and nothing uses them now.
    assert_eq!(store.unreferenced_manifests(3000).await.unwrap(), (2, 5));

    let mut conn = sqlx::PgConnection::connect(db.url.as_deref().unwrap())
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO manifests (digest, media_type, body, creation_time) VALUES ($1, $2, $3, 5000)
         ON CONFLICT (digest) DO UPDATE SET creation_time = excluded.creation_time",
    )
    .bind(held.digest.as_str())
    .bind(&held.manifest_media_type)
    .bind(held.body.to_vec())
    .execute(&mut *tx)
    .await
    .unwrap();
    let swept = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        store.delete_manifests(3000, 500),
    )
    .await
    .expect("the delete waited for a row a push holds")
    .unwrap();
    assert_eq!(swept, (1, 3), "only the manifest no push holds goes");
    tx.commit().await.unwrap();
    // The push refreshed its row: too recent for this window, gone for a later one.
    assert_eq!(store.delete_manifests(3000, 500).await.unwrap(), (0, 0));
    assert_eq!(store.unreferenced_manifests(6000).await.unwrap(), (1, 2));
    assert_eq!(store.delete_manifests(6000, 500).await.unwrap(), (1, 2));
}

fn execution(kind: &str, tasks: usize) -> NewExecution {
    NewExecution {
        vendor_type: kind.into(),
        vendor_id: 7,
        trigger: "MANUAL".into(),
        extra_attrs: r#"{"dry_run":true}"#.into(),
        tasks: (0..tasks).map(|i| format!(r#"{{"n":{i}}}"#)).collect(),
    }
}

async fn jobs_run_to_an_end(store: Arc<dyn MetaStore>) {
    let e = store
        .create_execution(&execution("GARBAGE_COLLECTION", 2), 1_000)
        .await
        .unwrap();
    assert_eq!(
        (e.status, e.trigger.as_str(), e.end_time),
        (JobStatus::Pending, "MANUAL", None)
    );
    assert_eq!(store.execution(e.id).await.unwrap().unwrap(), e);
    // only the kinds a worker asks for
    assert!(store
        .claim_task(&["RETENTION"], "w1", 2_000, 0)
        .await
        .unwrap()
        .is_none());
    let t1 = store
        .claim_task(&["GARBAGE_COLLECTION"], "w1", 2_000, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (t1.status, t1.run_count, t1.worker.as_deref(), t1.start_time),
        (JobStatus::Running, 1, Some("w1"), Some(2_000))
    );
    assert_eq!(t1.extra_attrs, r#"{"n":0}"#);
    assert_eq!(
        store.execution(e.id).await.unwrap().unwrap().status,
        JobStatus::Running
    );
    assert_eq!(
        store
            .heartbeat_task(t1.id, "w1", 2_500, 3, 10)
            .await
            .unwrap(),
        Heartbeat::Continue
    );
    assert_eq!(
        store
            .heartbeat_task(t1.id, "w2", 2_500, 3, 10)
            .await
            .unwrap(),
        Heartbeat::Lost,
        "not w2's task"
    );
    store
        .append_task_log(t1.id, 2_600, &["first".into(), "second".into()])
        .await
        .unwrap();
    store
        .append_task_log(t1.id, 2_700, &["third".into()])
        .await
        .unwrap();
    let log = store.task_log(t1.id).await.unwrap();
    assert_eq!(
        log,
        vec![
            (2_600, "first".to_owned()),
            (2_600, "second".to_owned()),
            (2_700, "third".to_owned())
        ]
    );
    assert!(store
        .finish_task(t1.id, "w1", JobStatus::Success, "", 3_000)
        .await
        .unwrap());
    assert!(
        !store
            .finish_task(t1.id, "w1", JobStatus::Success, "", 3_000)
            .await
            .unwrap(),
        "finished once"
    );
    assert_eq!(
        store.execution(e.id).await.unwrap().unwrap().status,
        JobStatus::Running,
        "one task is still open"
    );
    let t2 = store
        .claim_task(&["GARBAGE_COLLECTION"], "w2", 3_100, 0)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .finish_task(t2.id, "w2", JobStatus::Error, "disk full", 3_200)
        .await
        .unwrap());
    let done = store.execution(e.id).await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.end_time),
        (JobStatus::Error, Some(3_200)),
        "an error wins"
    );
    let tasks = store.tasks(e.id).await.unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(
        (tasks[1].status, tasks[1].status_message.as_str()),
        (JobStatus::Error, "disk full")
    );
    assert_eq!((tasks[0].progress_done, tasks[0].progress_total), (3, 10));
    assert!(
        store
            .claim_task(&["GARBAGE_COLLECTION"], "w1", 4_000, 3_900)
            .await
            .unwrap()
            .is_none(),
        "nothing left"
    );
    // no tasks: ends at once; listings are newest first, by kind and vendor
    let empty = store
        .create_execution(&execution("GARBAGE_COLLECTION", 0), 5_000)
        .await
        .unwrap();
    assert_eq!(
        (empty.status, empty.end_time),
        (JobStatus::Success, Some(5_000))
    );
    store
        .create_execution(
            &NewExecution {
                vendor_id: 8,
                ..execution("GARBAGE_COLLECTION", 0)
            },
            5_000,
        )
        .await
        .unwrap();
    store
        .create_execution(&execution("RETENTION", 0), 5_000)
        .await
        .unwrap();
    let (list, total) = store
        .list_executions("GARBAGE_COLLECTION", None, Page::new(1, 2))
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(list.len(), 2);
    assert!(list[0].id > list[1].id);
    let (list, total) = store
        .list_executions("GARBAGE_COLLECTION", Some(7), Page::new(1, 10))
        .await
        .unwrap();
    assert_eq!((total, list.len()), (2, 2));
    assert!(
        store
            .finish_task(t2.id, "w2", JobStatus::Running, "", 1)
            .await
            .is_err(),
        "Running is not an end"
    );
}

async fn jobs_are_claimed_once(store: Arc<dyn MetaStore>) {
    let e = store
        .create_execution(&execution("PURGE", 40), 1_000)
        .await
        .unwrap();
    // eight workers race for forty tasks
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let store = store.clone();
        workers.spawn(async move {
            let name = format!("w{w}");
            let mut mine = vec![];
            while let Some(t) = store.claim_task(&["PURGE"], &name, 2_000, 0).await.unwrap() {
                assert!(store
                    .finish_task(t.id, &name, JobStatus::Success, "", 2_100)
                    .await
                    .unwrap());
                mine.push(t.id);
            }
            mine
        });
    }
    let mut all: Vec<i64> = workers.join_all().await.into_iter().flatten().collect();
    assert_eq!(all.len(), 40, "every task ran");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 40, "no task ran twice");
    assert!(store
        .tasks(e.id)
        .await
        .unwrap()
        .iter()
        .all(|t| t.run_count == 1));
    assert_eq!(
        store.execution(e.id).await.unwrap().unwrap().status,
        JobStatus::Success
    );
}

async fn jobs_stop_and_survive_crashes(store: Arc<dyn MetaStore>) {
    // stop: pending tasks stop at once, the running one at its heartbeat
    let e = store
        .create_execution(&execution("RETENTION", 3), 1_000)
        .await
        .unwrap();
    let t = store
        .claim_task(&["RETENTION"], "w1", 1_100, 0)
        .await
        .unwrap()
        .unwrap();
    assert!(store.stop_execution(e.id, 1_200).await.unwrap());
    assert!(
        store
            .claim_task(&["RETENTION"], "w2", 1_300, 0)
            .await
            .unwrap()
            .is_none(),
        "the others stopped"
    );
    assert_eq!(
        store.execution(e.id).await.unwrap().unwrap().status,
        JobStatus::Running
    );
    assert_eq!(
        store.heartbeat_task(t.id, "w1", 1_400, 1, 2).await.unwrap(),
        Heartbeat::Stop
    );
    assert!(store
        .finish_task(t.id, "w1", JobStatus::Stopped, "stopped by request", 1_500)
        .await
        .unwrap());
    let stopped = store.execution(e.id).await.unwrap().unwrap();
    assert_eq!(
        (stopped.status, stopped.end_time, stopped.stop_requested),
        (JobStatus::Stopped, Some(1_500), true)
    );
    assert!(
        !store.stop_execution(e.id, 1_600).await.unwrap(),
        "already ended"
    );

    // a worker that goes silent loses its task to the next claimer
    let e = store
        .create_execution(&execution("GARBAGE_COLLECTION", 1), 10_000)
        .await
        .unwrap();
    let t = store
        .claim_task(&["GARBAGE_COLLECTION"], "crashed", 10_000, 0)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .claim_task(&["GARBAGE_COLLECTION"], "w2", 11_000, 9_000)
            .await
            .unwrap()
            .is_none(),
        "its heartbeat is recent"
    );
    let again = store
        .claim_task(&["GARBAGE_COLLECTION"], "w2", 80_000, 70_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            again.id,
            again.run_count,
            again.worker.as_deref(),
            again.start_time
        ),
        (t.id, 2, Some("w2"), Some(10_000))
    );
    assert_eq!(
        store
            .heartbeat_task(t.id, "crashed", 80_100, 0, 0)
            .await
            .unwrap(),
        Heartbeat::Lost
    );
    assert!(!store
        .finish_task(t.id, "crashed", JobStatus::Success, "", 80_200)
        .await
        .unwrap());
    assert!(store
        .finish_task(t.id, "w2", JobStatus::Success, "", 80_300)
        .await
        .unwrap());
    assert_eq!(
        store.execution(e.id).await.unwrap().unwrap().status,
        JobStatus::Success
    );
}

fn audit_entry(operation: &str, resource_type: &str, op_time: i64) -> AuditEntry {
    AuditEntry {
        id: 0,
        project_id: 0,
        operation: operation.into(),
        operation_description: format!("{operation} {resource_type}"),
        resource_type: resource_type.into(),
        resource: "r".into(),
        username: "u".into(),
        is_successful: true,
        op_time,
    }
}

async fn audit_total(store: &Arc<dyn MetaStore>) -> i64 {
    let all = AuditQuery {
        projects: None,
        operation: None,
        resource_type: None,
        resource: None,
        username: None,
        from: None,
        to: None,
        sort: vec![],
    };
    store.list_audit(&all, Page::new(1, 1)).await.unwrap().1
}

async fn audit_log_purge(store: Arc<dyn MetaStore>) {
    const HOUR: i64 = 3_600_000;
    let now = berth_core::clock::now();
    let old = now - 48 * HOUR;
    let mut entries: Vec<AuditEntry> = (0..1200)
        .map(|i| audit_entry("pull", "artifact", old + i))
        .collect();
    entries.push(audit_entry("create", "artifact", old));
    entries.push(audit_entry("delete", "artifact", old));
    entries.push(audit_entry("create", "project", old));
    entries.push(audit_entry("create", "artifact", now - HOUR));
    store.insert_audit(&entries).await.unwrap();
    assert_eq!(audit_total(&store).await, 1204);
    let q = |ops: &[&str], types: &[(&str, &str)]| AuditPurgeQuery {
        before: now - 24 * HOUR,
        operations: ops.iter().map(|o| o.to_string()).collect(),
        event_types: types
            .iter()
            .map(|(o, r)| (o.to_string(), r.to_string()))
            .collect(),
    };
    // Counting (a dry run) selects by age, operation and event type.
    assert_eq!(store.count_audit_purge(&q(&[], &[])).await.unwrap(), 1203);
    assert_eq!(
        store.count_audit_purge(&q(&["create"], &[])).await.unwrap(),
        2
    );
    assert_eq!(
        store
            .count_audit_purge(&q(&[], &[("create", "artifact")]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_audit_purge(&q(&["delete"], &[("create", "project")]))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.count_audit_purge(&q(&["logout"], &[])).await.unwrap(),
        0
    );
    assert_eq!(audit_total(&store).await, 1204, "counting deletes nothing");
    // Deleting goes in batches of at most `limit`.
    let pulls = q(&["pull"], &[]);
    assert_eq!(store.purge_audit(&pulls, 1000).await.unwrap(), 1000);
    assert_eq!(store.purge_audit(&pulls, 1000).await.unwrap(), 200);
    assert_eq!(store.purge_audit(&pulls, 1000).await.unwrap(), 0);
    assert_eq!(audit_total(&store).await, 4);
    assert_eq!(
        store
            .purge_audit(&q(&[], &[("create", "artifact")]), 1000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.purge_audit(&q(&[], &[]), 1000).await.unwrap(), 2);
    // What is younger than the cutoff stays.
    assert_eq!(audit_total(&store).await, 1);
    assert_eq!(store.count_audit_purge(&q(&[], &[])).await.unwrap(), 0);
}

async fn storage_requests(store: Arc<dyn MetaStore>) {
    let a = admin(&store).await;
    let p = project(&store, "sr", a.id, false).await;
    let other = project(&store, "sr-other", a.id, false).await;
    assert!(store.set_storage_limit(p.id, 1 << 30, 5).await.unwrap());
    let new = |project_id: i64, storage: i64, now: i64| NewStorageRequest {
        project_id,
        requested_storage: storage,
        current_storage_limit: 1 << 30,
        reason: "more CI images".into(),
        requester: "pat".into(),
        now,
    };
    let r = store
        .create_storage_request(&new(p.id, 2 << 30, 10))
        .await
        .unwrap();
    assert_eq!(
        (
            r.project_id,
            r.project_name.as_str(),
            r.requested_storage,
            r.current_storage_limit
        ),
        (p.id, "sr", 2 << 30, 1 << 30)
    );
    assert_eq!(r.status, StorageRequestStatus::Pending);
    assert_eq!(
        (r.reason.as_str(), r.requester.as_str(), r.reviewer.as_str()),
        ("more CI images", "pat", "")
    );
    assert_eq!((r.creation_time, r.update_time), (10, 10));
    assert_eq!(store.storage_request(r.id).await.unwrap(), Some(r.clone()));
    assert!(store.storage_request(r.id + 100).await.unwrap().is_none());
    // One pending request per project.
    assert!(matches!(
        store.create_storage_request(&new(p.id, 3 << 30, 11)).await,
        Err(CoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_storage_request(&new(9999, 3 << 30, 11)).await,
        Err(CoreError::ProjectNotFound(_))
    ));
    let o = store
        .create_storage_request(&new(other.id, 5 << 30, 12))
        .await
        .unwrap();

    let list = |project_id, status| {
        let store = store.clone();
        async move {
            let (rows, total) = store
                .list_storage_requests(
                    &StorageRequestQuery { project_id, status },
                    Page::new(1, 10),
                )
                .await
                .unwrap();
            (rows.iter().map(|r| r.id).collect::<Vec<_>>(), total)
        }
    };
    assert_eq!(
        list(None, None).await,
        (vec![o.id, r.id], 2),
        "newest first"
    );
    assert_eq!(list(Some(p.id), None).await, (vec![r.id], 1));
    assert_eq!(list(None, Some(StorageRequestStatus::Pending)).await.1, 2);
    assert_eq!(list(None, Some(StorageRequestStatus::Approved)).await.1, 0);
    let (page2, total) = store
        .list_storage_requests(&StorageRequestQuery::default(), Page::new(2, 1))
        .await
        .unwrap();
    assert_eq!((page2[0].id, total), (r.id, 2));

    // Approving sets the limit with the decision.
    let decision = |status, now| StorageDecision {
        status,
        reviewer: "boss".into(),
        comment: "fine".into(),
        now,
    };
    let d = store
        .decide_storage_request(r.id, &decision(StorageRequestStatus::Approved, 20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.status, StorageRequestStatus::Approved);
    assert_eq!(
        (d.reviewer.as_str(), d.comment.as_str(), d.update_time),
        ("boss", "fine", 20)
    );
    assert_eq!(
        store
            .project_by_id(p.id)
            .await
            .unwrap()
            .unwrap()
            .storage_limit,
        2 << 30
    );
    // Deciding again is refused and changes nothing.
    assert!(matches!(
        store
            .decide_storage_request(r.id, &decision(StorageRequestStatus::Declined, 30))
            .await,
        Err(CoreError::Conflict(_))
    ));
    assert_eq!(
        store.storage_request(r.id).await.unwrap().unwrap().status,
        StorageRequestStatus::Approved
    );
    assert!(store
        .decide_storage_request(r.id + 100, &decision(StorageRequestStatus::Approved, 30))
        .await
        .unwrap()
        .is_none());
    // Declining leaves the limit alone.
    store
        .decide_storage_request(o.id, &decision(StorageRequestStatus::Declined, 31))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .project_by_id(other.id)
            .await
            .unwrap()
            .unwrap()
            .storage_limit,
        -1
    );
    assert_eq!(
        list(None, Some(StorageRequestStatus::Declined)).await,
        (vec![o.id], 1)
    );

    // A decided request cannot be withdrawn; a pending one can, once.
    assert!(matches!(
        store.withdraw_storage_request(r.id).await,
        Err(CoreError::Conflict(_))
    ));
    let again = store
        .create_storage_request(&new(p.id, 4 << 30, 40))
        .await
        .expect("a new request once the last one was decided");
    assert!(store.withdraw_storage_request(again.id).await.unwrap());
    assert!(!store.withdraw_storage_request(again.id).await.unwrap());
    assert!(store.storage_request(again.id).await.unwrap().is_none());

    // Requests go with their project.
    store.delete_project(other.id).await.unwrap();
    assert!(store.storage_request(o.id).await.unwrap().is_none());
    assert_eq!(list(None, None).await, (vec![r.id], 1));
}
