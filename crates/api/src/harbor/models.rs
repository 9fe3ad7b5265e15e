//! Harbor API v2.0 JSON shapes (`harbor-v2.0-swagger.yaml`), built from
//! domain records. Lists are `[]`, never `null`; ids are integers; times
//! are ISO-8601 strings.

use std::collections::BTreeMap;

use berth_core::access::Role;
use berth_core::access::Subject;
use berth_core::model::{
    Artifact, ArtifactReference, Project, ProjectSummary, Repository, TagRecord,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::timefmt::{iso, iso_or_zero};

pub fn project(p: &Project, subject: &Subject) -> Value {
    let mut roles: Vec<i64> = subject.roles_in(p.id).iter().map(|r| r.id()).collect();
    roles.sort_unstable();
    // The "highest" role: ProjectAdmin, Maintainer, Developer, Guest, LimitedGuest.
    let rank = |id: i64| match id {
        1 => 0,
        4 => 1,
        2 => 2,
        3 => 3,
        _ => 4,
    };
    let current = roles.iter().copied().min_by_key(|r| rank(*r)).unwrap_or(0);
    json!({
        "project_id": p.id,
        "owner_id": p.owner_id,
        "name": p.name,
        "registry_id": p.registry_id.unwrap_or(0),
        "creation_time": iso(p.creation_time),
        "update_time": iso(p.update_time),
        "deleted": false,
        "owner_name": p.owner_name,
        "togglable": true,
        "current_user_role_id": current,
        "current_user_role_ids": roles,
        "repo_count": p.repo_count,
        "metadata": p.metadata,
        "cve_allowlist": {
            "id": 0,
            "project_id": p.id,
            "items": [],
            "creation_time": iso(p.creation_time),
            "update_time": iso(p.update_time),
        },
    })
}

pub fn summary(p: &Project, s: &ProjectSummary) -> Value {
    let count = |r: Role| s.member_counts.get(&r).copied().unwrap_or(0);
    json!({
        "repo_count": s.repo_count,
        "project_admin_count": count(Role::ProjectAdmin),
        "maintainer_count": count(Role::Maintainer),
        "developer_count": count(Role::Developer),
        "guest_count": count(Role::Guest),
        "limited_guest_count": count(Role::LimitedGuest),
        "quota": {
            "hard": { "storage": p.storage_limit },
            "used": { "storage": s.storage_used },
        },
    })
}

pub fn repository(r: &Repository) -> Value {
    json!({
        "id": r.id,
        "project_id": r.project_id,
        "name": r.name,
        "description": r.description,
        "artifact_count": r.artifact_count,
        "pull_count": r.pull_count,
        "creation_time": iso(r.creation_time),
        "update_time": iso(r.update_time),
    })
}

pub fn tag(t: &TagRecord) -> Value {
    json!({
        "id": t.id,
        "repository_id": t.repository_id,
        "artifact_id": t.artifact_id,
        "name": t.name,
        "push_time": iso(t.push_time),
        "pull_time": iso_or_zero(t.pull_time),
        "immutable": false,
    })
}

fn reference(r: &ArtifactReference) -> Value {
    let mut v = json!({
        "parent_id": r.parent_id,
        "child_id": r.child_id.unwrap_or(0),
        "child_digest": r.child_digest.as_str(),
    });
    if let Some(p) = &r.platform {
        v["platform"] = serde_json::to_value(p).unwrap_or(Value::Null);
    }
    if let Some(a) = &r.annotations {
        v["annotations"] = json!(a);
    }
    if let Some(u) = &r.urls {
        v["urls"] = json!(u);
    }
    v
}

/// Options of the artifact endpoints that shape the answer.
#[derive(Debug, Clone, Copy)]
pub struct ArtifactView {
    pub with_tag: bool,
}

pub fn artifact(a: &Artifact, view: ArtifactView) -> Value {
    let (project, repo) = a
        .repository_name
        .split_once('/')
        .unwrap_or((a.repository_name.as_str(), ""));
    let base = format!(
        "/api/v2.0/projects/{project}/repositories/{}/artifacts/{}",
        percent_encoding::utf8_percent_encode(repo, percent_encoding::NON_ALPHANUMERIC),
        a.digest
    );
    let mut links = serde_json::Map::new();
    if a.kind == "IMAGE" && !berth_oci::media::is_index(&a.manifest_media_type) {
        links.insert(
            "build_history".into(),
            json!({ "href": format!("{base}/additions/build_history"), "absolute": false }),
        );
    }
    json!({
        "id": a.id,
        "type": a.kind,
        "media_type": a.media_type,
        "manifest_media_type": a.manifest_media_type,
        "artifact_type": a.artifact_type,
        "project_id": a.project_id,
        "repository_id": a.repository_id,
        "repository_name": a.repository_name,
        "digest": a.digest.as_str(),
        "size": a.size,
        "icon": "",
        "push_time": iso(a.push_time),
        "pull_time": iso_or_zero(a.pull_time),
        "extra_attrs": if a.extra_attrs.is_object() { a.extra_attrs.clone() } else { json!({}) },
        "annotations": a.annotations,
        "references": a.references.iter().map(reference).collect::<Vec<_>>(),
        "tags": if view.with_tag { a.tags.iter().map(tag).collect::<Vec<_>>() } else { vec![] },
        "addition_links": links,
        "labels": [],
        "accessories": [],
    })
}

/// Harbor's `BuildHistoryEntry` list from an image config's `history`:
/// every entry has `created` (Harbor's zero time when the config has none).
pub fn build_history(history: &Value) -> Value {
    let entries = history.as_array().cloned().unwrap_or_default();
    Value::Array(
        entries
            .into_iter()
            .filter_map(|e| {
                let mut e = e.as_object()?.clone();
                e.entry("created")
                    .or_insert_with(|| json!("0001-01-01T00:00:00Z"));
                Some(Value::Object(e))
            })
            .collect(),
    )
}

/// `ProjectReq`.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ProjectReq {
    pub project_name: Option<String>,
    pub public: Option<bool>,
    pub metadata: Option<BTreeMap<String, Value>>,
    pub storage_limit: Option<i64>,
    pub registry_id: Option<i64>,
    pub cve_allowlist: Option<Value>,
}

impl ProjectReq {
    /// Metadata values as strings (Harbor clients send strings; booleans
    /// are accepted too).
    pub fn metadata_strings(&self) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        for (k, v) in self.metadata.iter().flatten() {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Null => continue,
                _ => return Err(format!("metadata {k} must be a string")),
            };
            out.insert(k.clone(), s);
        }
        Ok(out)
    }
}

/// The body of `PUT /repositories/{r}`.
#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct RepositoryReq {
    pub description: Option<String>,
}

/// The body of `POST …/tags`.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct TagReq {
    pub name: String,
}

pub fn user(u: &berth_core::model::User) -> Value {
    json!({
        "user_id": u.id,
        "username": u.username,
        "email": u.email,
        "realname": u.realname,
        "comment": u.comment,
        "sysadmin_flag": u.sysadmin,
        "admin_role_in_auth": false,
        "creation_time": iso(u.creation_time),
        "update_time": iso(u.update_time),
    })
}

pub fn member(m: &berth_core::model::Member) -> Value {
    json!({
        "id": m.id,
        "project_id": m.project_id,
        "entity_name": m.entity_name,
        "role_name": m.role.name(),
        "role_id": m.role.id(),
        "entity_id": m.entity_id,
        "entity_type": m.entity_type,
    })
}

pub fn robot(r: &berth_core::model::Robot, login_name: &str) -> Value {
    let permissions: Vec<Value> = r
        .permissions
        .iter()
        .map(|p| {
            json!({
                "kind": p.kind,
                "namespace": p.namespace,
                "access": p.access.iter().map(|a| json!({ "resource": a.resource, "action": a.action, "effect": a.effect.clone().unwrap_or_else(|| "allow".into()) })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "id": r.id,
        "name": login_name,
        "description": r.description,
        "level": r.level.as_str(),
        "duration": r.duration,
        "editable": true,
        "disable": r.disabled,
        "expires_at": r.expires_at,
        "permissions": permissions,
        "creator": r.creator,
        "creation_time": iso(r.creation_time),
        "update_time": iso(r.update_time),
    })
}

pub fn audit_ext(e: &berth_core::model::AuditEntry) -> Value {
    json!({
        "id": e.id,
        "username": e.username,
        "resource": e.resource,
        "resource_type": e.resource_type,
        "operation": e.operation,
        "operation_description": e.operation_description,
        "operation_result": e.is_successful,
        "op_time": iso(e.op_time),
    })
}

pub fn audit_legacy(e: &berth_core::model::AuditEntry) -> Value {
    json!({
        "id": e.id,
        "username": e.username,
        "resource": e.resource,
        "resource_type": e.resource_type,
        "operation": e.operation,
        "op_time": iso(e.op_time),
    })
}

/// `UserCreationReq`, plus the privileged fields some clients send, which
/// are read only to be ignored.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct UserCreationReq {
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    pub password: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct UserProfile {
    pub email: String,
    pub realname: String,
    pub comment: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PasswordReq {
    pub old_password: Option<String>,
    pub new_password: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SysAdminFlag {
    pub sysadmin_flag: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct UserEntity {
    pub user_id: Option<i64>,
    pub username: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ProjectMemberReq {
    pub role_id: i64,
    pub member_user: Option<UserEntity>,
    pub member_group: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RoleRequest {
    pub role_id: i64,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(default)]
pub struct RobotReq {
    pub name: String,
    pub description: String,
    pub level: String,
    pub duration: Option<i64>,
    pub disable: bool,
    pub secret: Option<String>,
    pub permissions: Vec<berth_core::model::RobotPermission>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RobotSec {
    pub secret: Option<String>,
}
