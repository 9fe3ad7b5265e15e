//! The audit log: who did what to which resource, when, and whether it
//! worked. `run_audit_recorder` turns events into entries (never a secret
//! or password: events carry none) and writes them in batches; the query
//! side serves `/auditlog-exts` and the legacy `/audit-logs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::access::{Action, Resource, Role, Subject};
use crate::catalog::{authorized_project, ProjectKey};
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventBus};
use crate::model::AuditEntry;
use crate::ports::MetaStore;
use crate::query::{AuditQuery, Page};
use crate::settings::Settings;

/// Harbor's event types (`/auditlog-exts/events`), plus tag events.
pub const EVENT_TYPES: &[&str] = &[
    "create_artifact",
    "delete_artifact",
    "pull_artifact",
    "create_tag",
    "delete_tag",
    "create_project",
    "update_project",
    "delete_project",
    "delete_repository",
    "login_user",
    "logout_user",
    "create_user",
    "update_user",
    "delete_user",
    "create_robot",
    "update_robot",
    "delete_robot",
    "update_configuration",
    "create_member",
    "update_member",
    "delete_member",
    "warning_quota",
    "exceed_quota",
    "create_storage_request",
    "approve_storage_request",
    "decline_storage_request",
    "delete_storage_request",
];

#[allow(clippy::too_many_arguments)] // one positional row, as the table has it
fn entry(
    project_id: i64,
    operation: &str,
    resource_type: &str,
    resource: String,
    description: String,
    username: &str,
    ok: bool,
    time: i64,
) -> AuditEntry {
    AuditEntry {
        id: 0,
        project_id,
        operation: operation.into(),
        operation_description: description,
        resource_type: resource_type.into(),
        resource,
        username: username.into(),
        is_successful: ok,
        op_time: time,
    }
}

fn artifact_ref(repository: &str, tag: &Option<String>, digest: &berth_oci::Digest) -> String {
    match tag {
        Some(t) => format!("{repository}:{t}"),
        None => format!("{repository}@{digest}"),
    }
}

/// The audit entry for an event, if it is audited.
pub fn entry_for(event: &Event, record_pulls: bool) -> Option<AuditEntry> {
    Some(match event {
        Event::ArtifactPushed {
            project_id,
            repository,
            digest,
            tag,
            operator,
            time,
            ..
        } => {
            let r = artifact_ref(repository, tag, digest);
            entry(
                *project_id,
                "create",
                "artifact",
                r.clone(),
                format!("create artifact {r}"),
                operator,
                true,
                *time,
            )
        }
        Event::ArtifactPulled {
            project_id,
            repository,
            digest,
            tag,
            operator,
            time,
            ..
        } => {
            if !record_pulls {
                return None;
            }
            let r = artifact_ref(repository, tag, digest);
            entry(
                *project_id,
                "pull",
                "artifact",
                r.clone(),
                format!("pull artifact {r}"),
                operator,
                true,
                *time,
            )
        }
        Event::ArtifactDeleted {
            project_id,
            repository,
            digest,
            operator,
            time,
            ..
        } => {
            let r = format!("{repository}@{digest}");
            entry(
                *project_id,
                "delete",
                "artifact",
                r.clone(),
                format!("delete artifact {r}"),
                operator,
                true,
                *time,
            )
        }
        Event::TagCreated {
            project_id,
            repository,
            tag,
            operator,
            time,
            ..
        } => {
            let r = format!("{repository}:{tag}");
            entry(
                *project_id,
                "create",
                "tag",
                r.clone(),
                format!("create tag {r}"),
                operator,
                true,
                *time,
            )
        }
        Event::TagDeleted {
            project_id,
            repository,
            tag,
            operator,
            time,
        } => {
            let r = format!("{repository}:{tag}");
            entry(
                *project_id,
                "delete",
                "tag",
                r.clone(),
                format!("delete tag {r}"),
                operator,
                true,
                *time,
            )
        }
        Event::RepositoryDeleted {
            project_id,
            repository,
            operator,
            time,
        } => entry(
            *project_id,
            "delete",
            "repository",
            repository.clone(),
            format!("delete repository {repository}"),
            operator,
            true,
            *time,
        ),
        Event::ProjectCreated {
            project_id,
            name,
            operator,
            time,
        } => entry(
            *project_id,
            "create",
            "project",
            name.clone(),
            format!("create project {name}"),
            operator,
            true,
            *time,
        ),
        Event::ProjectUpdated {
            project_id,
            name,
            operator,
            time,
        } => entry(
            *project_id,
            "update",
            "project",
            name.clone(),
            format!("update project {name}"),
            operator,
            true,
            *time,
        ),
        Event::ProjectDeleted {
            project_id,
            name,
            operator,
            time,
        } => entry(
            *project_id,
            "delete",
            "project",
            name.clone(),
            format!("delete project {name}"),
            operator,
            true,
            *time,
        ),
        Event::Login {
            username,
            success,
            time,
        } => {
            let d = if *success {
                format!("login user {username}")
            } else {
                format!("failed login of user {username}")
            };
            entry(
                0,
                "login",
                "user",
                username.clone(),
                d,
                username,
                *success,
                *time,
            )
        }
        Event::Logout { username, time } => entry(
            0,
            "logout",
            "user",
            username.clone(),
            format!("logout user {username}"),
            username,
            true,
            *time,
        ),
        Event::UserCreated {
            username,
            operator,
            time,
        } => entry(
            0,
            "create",
            "user",
            username.clone(),
            format!("create user {username}"),
            operator,
            true,
            *time,
        ),
        Event::UserUpdated {
            username,
            what,
            operator,
            time,
        } => entry(
            0,
            "update",
            "user",
            username.clone(),
            format!("update user {username}: {what}"),
            operator,
            true,
            *time,
        ),
        Event::UserDeleted {
            username,
            operator,
            time,
        } => entry(
            0,
            "delete",
            "user",
            username.clone(),
            format!("delete user {username}"),
            operator,
            true,
            *time,
        ),
        Event::MemberCreated {
            project_id,
            project,
            member,
            role,
            operator,
            time,
        } => {
            let r = format!("{project}/{member}");
            entry(
                *project_id,
                "create",
                "member",
                r,
                format!("add member {member} to project {project} as {role}"),
                operator,
                true,
                *time,
            )
        }
        Event::MemberUpdated {
            project_id,
            project,
            member,
            role,
            operator,
            time,
        } => {
            let r = format!("{project}/{member}");
            entry(
                *project_id,
                "update",
                "member",
                r,
                format!("change role of member {member} of project {project} to {role}"),
                operator,
                true,
                *time,
            )
        }
        Event::MemberDeleted {
            project_id,
            project,
            member,
            operator,
            time,
        } => {
            let r = format!("{project}/{member}");
            entry(
                *project_id,
                "delete",
                "member",
                r,
                format!("remove member {member} from project {project}"),
                operator,
                true,
                *time,
            )
        }
        Event::RobotCreated {
            project_id,
            name,
            operator,
            time,
        } => entry(
            *project_id,
            "create",
            "robot",
            name.clone(),
            format!("create robot {name}"),
            operator,
            true,
            *time,
        ),
        Event::RobotUpdated {
            project_id,
            name,
            what,
            operator,
            time,
        } => entry(
            *project_id,
            "update",
            "robot",
            name.clone(),
            format!("update robot {name}: {what}"),
            operator,
            true,
            *time,
        ),
        Event::RobotDeleted {
            project_id,
            name,
            operator,
            time,
        } => entry(
            *project_id,
            "delete",
            "robot",
            name.clone(),
            format!("delete robot {name}"),
            operator,
            true,
            *time,
        ),
        Event::ConfigurationUpdated {
            keys,
            operator,
            time,
        } => entry(
            0,
            "update",
            "configuration",
            "configuration".into(),
            format!("update configuration: {}", keys.join(", ")),
            operator,
            true,
            *time,
        ),
        Event::QuotaWarning {
            project_id,
            repository,
            used,
            limit,
            operator,
            time,
        } => entry(
            *project_id,
            "warning",
            "quota",
            repository.clone(),
            format!(
                "quota warning: {repository} brought usage to {} of {}",
                crate::model::human_bytes(*used),
                crate::model::human_bytes(*limit)
            ),
            operator,
            true,
            *time,
        ),
        Event::QuotaExceeded {
            project_id,
            repository,
            message,
            operator,
            time,
        } => entry(
            *project_id,
            "exceed",
            "quota",
            repository.clone(),
            format!("quota exceeded: {message}"),
            operator,
            false,
            *time,
        ),
        Event::StorageRequested {
            project_id,
            project,
            request_id,
            storage,
            operator,
            time,
        } => entry(
            *project_id,
            "create",
            "storage_request",
            project.clone(),
            format!(
                "request {} of storage for project {project} (request {request_id})",
                crate::model::human_bytes(*storage)
            ),
            operator,
            true,
            *time,
        ),
        Event::StorageRequestDecided {
            project_id,
            project,
            request_id,
            storage,
            approved,
            operator,
            time,
        } => {
            let (op, d) = if *approved {
                (
                    "approve",
                    format!(
                        "approve storage request {request_id} of project {project}: limit set to {}",
                        crate::model::human_bytes(*storage)
                    ),
                )
            } else {
                (
                    "decline",
                    format!(
                        "decline storage request {request_id} of project {project} for {}",
                        crate::model::human_bytes(*storage)
                    ),
                )
            };
            entry(
                *project_id,
                op,
                "storage_request",
                project.clone(),
                d,
                operator,
                true,
                *time,
            )
        }
        Event::StorageRequestWithdrawn {
            project_id,
            project,
            request_id,
            operator,
            time,
        } => entry(
            *project_id,
            "delete",
            "storage_request",
            project.clone(),
            format!("withdraw storage request {request_id} of project {project}"),
            operator,
            true,
            *time,
        ),
    })
}

/// Writes audit entries until `shutdown`, in batches; nothing is dropped
/// (the subscription is reliable), and what is pending is written on stop.
pub async fn run_audit_recorder(
    meta: Arc<dyn MetaStore>,
    settings: Arc<Settings>,
    events: EventBus,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut rx = events.subscribe_reliable();
    let mut batch: Vec<AuditEntry> = vec![];
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut record_pulls = true;
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => {
                    if let Some(e) = entry_for(&ev, record_pulls) {
                        batch.push(e);
                        if batch.len() >= 1000 {
                            flush(&meta, &mut batch).await;
                        }
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                if let Ok(cfg) = settings.current().await {
                    record_pulls = !cfg.pull_audit_log_disable;
                }
                flush(&meta, &mut batch).await;
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    while let Ok(ev) = rx.try_recv() {
        if let Some(e) = entry_for(&ev, record_pulls) {
            batch.push(e);
        }
    }
    flush(&meta, &mut batch).await;
}

async fn flush(meta: &Arc<dyn MetaStore>, batch: &mut Vec<AuditEntry>) {
    if batch.is_empty() {
        return;
    }
    for attempt in 0..5 {
        match meta.insert_audit(batch).await {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, entries = batch.len(), attempt, "could not write audit entries; retrying");
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
        }
    }
    tracing::error!(
        entries = batch.len(),
        "audit entries could not be written and were dropped"
    );
    batch.clear();
}

pub struct Audit {
    meta: Arc<dyn MetaStore>,
}

impl Audit {
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        Audit { meta }
    }

    /// `GET /auditlog-exts`: system admins see everything; others the
    /// projects where they may list logs (project admins).
    pub async fn list(
        &self,
        subject: &Subject,
        mut query: AuditQuery,
        page: Page,
    ) -> CoreResult<(Vec<AuditEntry>, i64)> {
        if subject.is_anonymous() {
            return Err(CoreError::Unauthenticated);
        }
        if !subject.is_sysadmin() {
            let mine: Vec<i64> = subject
                .member_projects()
                .into_iter()
                .filter(|p| subject.roles_in(*p).contains(&Role::ProjectAdmin))
                .collect();
            query.projects = Some(match query.projects.take() {
                Some(asked) => asked.into_iter().filter(|p| mine.contains(p)).collect(),
                None => mine,
            });
        }
        self.meta.list_audit(&query, page).await
    }

    /// `GET /projects/{p}/auditlog-exts`.
    pub async fn list_project(
        &self,
        subject: &Subject,
        key: &ProjectKey,
        mut query: AuditQuery,
        page: Page,
    ) -> CoreResult<(Vec<AuditEntry>, i64)> {
        let p = authorized_project(&*self.meta, subject, key, Resource::Log, Action::List).await?;
        query.projects = Some(vec![p.id]);
        self.meta.list_audit(&query, page).await
    }

    pub fn event_types(&self, subject: &Subject) -> CoreResult<&'static [&'static str]> {
        if subject.is_anonymous() {
            return Err(CoreError::Unauthenticated);
        }
        Ok(EVENT_TYPES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_what_happened() {
        let d = berth_oci::Digest::sha256(b"x");
        let e = entry_for(
            &Event::ArtifactPushed {
                project_id: 3,
                repository: "p/r".into(),
                digest: d.clone(),
                tag: Some("v1".into()),
                media_type: "m".into(),
                operator: "alice".into(),
                time: 5,
            },
            true,
        )
        .unwrap();
        assert_eq!(
            (
                e.operation.as_str(),
                e.resource_type.as_str(),
                e.resource.as_str()
            ),
            ("create", "artifact", "p/r:v1")
        );
        assert_eq!(
            (e.username.as_str(), e.project_id, e.op_time),
            ("alice", 3, 5)
        );
        let pull = Event::ArtifactPulled {
            project_id: 3,
            repository_id: 1,
            repository: "p/r".into(),
            artifact_id: 1,
            digest: d,
            tag: None,
            operator: "bob".into(),
            time: 6,
        };
        assert!(entry_for(&pull, false).is_none());
        assert!(entry_for(&pull, true)
            .unwrap()
            .resource
            .starts_with("p/r@sha256:"));
        let failed = entry_for(
            &Event::Login {
                username: "eve".into(),
                success: false,
                time: 1,
            },
            true,
        )
        .unwrap();
        assert!(!failed.is_successful);
    }
}
