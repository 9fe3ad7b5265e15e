//! Robot accounts (`/robots`): system-level and project-level robots with
//! Harbor's names, grantable permission sets, durations, secrets shown once
//! and stored only as hashes, and the rule that nobody grants a robot more
//! than they hold.

use std::sync::Arc;

use crate::access::{self, Action, ProjectRef, Resource, Subject};
use crate::catalog::{project_ref, ProjectKey};
use crate::clock;
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventBus};
use crate::identity::{hash_password, password_acceptable, random_secret, PASSWORD_POLICY};
use crate::model::{NewRobot, Robot, RobotAccess, RobotLevel, RobotPermission};
use crate::ports::MetaStore;
use crate::query::{Page, RobotQuery};
use crate::settings::Settings;

use Action as A;
use Resource as R;

const CRUDL: &[Action] = &[A::Create, A::Read, A::Update, A::Delete, A::List];

/// What a robot may be granted at system level (Harbor's
/// `PoliciesMap[System]`).
pub const SYSTEM_GRANTABLE: &[(Resource, &[Action])] = &[
    (R::AuditLog, &[A::List]),
    (R::PreheatInstance, CRUDL),
    (R::Project, &[A::List, A::Create]),
    (R::ReplicationPolicy, CRUDL),
    (R::Replication, &[A::Read, A::Create, A::List]),
    (R::ReplicationAdapter, &[A::List]),
    (R::Registry, CRUDL),
    (R::ScanAll, &[A::Read, A::Update, A::Stop, A::Create]),
    (R::SystemVolumes, &[A::Read]),
    (
        R::GarbageCollection,
        &[A::Read, A::Create, A::List, A::Update, A::Stop],
    ),
    (
        R::PurgeAudit,
        &[A::Read, A::Create, A::List, A::Update, A::Stop],
    ),
    (R::JobserviceMonitor, &[A::List, A::Stop]),
    (R::Scanner, CRUDL),
    (R::Label, &[A::Read, A::Create, A::Delete, A::Update]),
    (R::SecurityHub, &[A::Read, A::List]),
    (R::Catalog, &[A::Read]),
    (R::Quota, &[A::Read, A::List, A::Update]),
    (R::Robot, &[A::Create, A::Read, A::List, A::Delete]),
    (R::User, CRUDL),
    (R::LdapUser, &[A::Create, A::List]),
    (R::UserGroup, CRUDL),
];

/// What a robot may be granted in a project.
pub const PROJECT_GRANTABLE: &[(Resource, &[Action])] = &[
    (R::Log, &[A::List]),
    (R::Project, &[A::Read, A::Delete, A::Update]),
    (R::Metadata, CRUDL),
    (
        R::Repository,
        &[A::Read, A::Update, A::Delete, A::List, A::Pull, A::Push],
    ),
    (R::Artifact, &[A::Read, A::Create, A::List, A::Delete]),
    (R::Scan, &[A::Create, A::Read, A::Stop]),
    (R::Sbom, &[A::Create, A::Read, A::Stop]),
    (R::Tag, &[A::Create, A::List, A::Delete]),
    (R::Accessory, &[A::List]),
    (R::ArtifactAddition, &[A::Read]),
    (R::ArtifactLabel, &[A::Create, A::Delete]),
    (R::Scanner, &[A::Create, A::Read]),
    (R::PreheatPolicy, CRUDL),
    (R::ImmutableTag, &[A::Create, A::Delete, A::List, A::Update]),
    (R::NotificationPolicy, CRUDL),
    (R::TagRetention, CRUDL),
    (R::Label, CRUDL),
    (R::Quota, &[A::Read]),
    (R::Robot, &[A::Create, A::Read, A::List, A::Delete]),
    (R::ExportCve, &[A::Create, A::Read]),
    (R::Member, CRUDL),
];

fn grantable(table: &[(Resource, &[Action])], r: Resource, a: Action) -> bool {
    table
        .iter()
        .any(|(res, acts)| *res == r && acts.contains(&a))
}

/// A (resource, action) pair as the API writes it.
pub type ResourceAction = (String, String);

/// A robot as requested by `POST`/`PUT /robots`.
#[derive(Debug, Clone, Default)]
pub struct RobotSpec {
    pub name: String,
    pub description: String,
    pub level: String,
    pub duration: Option<i64>,
    pub disable: bool,
    pub permissions: Vec<RobotPermission>,
    pub secret: Option<String>,
}

/// What creation returns: the robot and its secret, shown this once.
#[derive(Debug, Clone)]
pub struct CreatedRobot {
    pub robot: Robot,
    pub login_name: String,
    pub secret: String,
}

pub struct Robots {
    meta: Arc<dyn MetaStore>,
    settings: Arc<Settings>,
    events: EventBus,
}

fn expires_at(creation_ms: i64, duration: i64) -> i64 {
    if duration == -1 {
        -1
    } else {
        creation_ms / 1000 + duration * 86_400
    }
}

impl Robots {
    pub fn new(meta: Arc<dyn MetaStore>, settings: Arc<Settings>, events: EventBus) -> Self {
        Robots {
            meta,
            settings,
            events,
        }
    }

    /// The login name: the configured prefix and the stored name.
    pub async fn login_name(&self, robot: &Robot) -> CoreResult<String> {
        Ok(format!(
            "{}{}",
            self.settings.current().await?.robot_name_prefix,
            robot.name
        ))
    }

    /// Checks the permissions of a robot of `level` against Harbor's
    /// grantable sets and the caller's own rights, resolving project names.
    /// Returns the permissions to store and the robot's project (for
    /// project robots).
    async fn check_permissions(
        &self,
        subject: &Subject,
        level: RobotLevel,
        perms: &[RobotPermission],
    ) -> CoreResult<(Vec<RobotPermission>, Option<ProjectRef>, Option<String>)> {
        if perms.is_empty() {
            return Err(CoreError::BadRequest(
                "a robot needs at least one permission".into(),
            ));
        }
        if level == RobotLevel::Project && perms.len() != 1 {
            return Err(CoreError::BadRequest(
                "a project robot has exactly one permission entry, for its project".into(),
            ));
        }
        let mut out = vec![];
        let mut project_of_robot = None;
        for p in perms {
            if p.access.is_empty() {
                return Err(CoreError::BadRequest(format!(
                    "the permission entry for {} {} grants no access",
                    p.kind, p.namespace
                )));
            }
            let (table, project) = match (p.kind.as_str(), p.namespace.as_str()) {
                ("system", "/") if level == RobotLevel::System => (SYSTEM_GRANTABLE, None),
                ("project", "*") if level == RobotLevel::System => (PROJECT_GRANTABLE, None),
                ("project", name) => {
                    let proj = self.meta.project_by_name(name).await?.ok_or_else(|| {
                        CoreError::BadRequest(format!("project {name} not found"))
                    })?;
                    (PROJECT_GRANTABLE, Some(proj))
                }
                (kind, ns) => {
                    return Err(CoreError::BadRequest(format!(
                        "bad request permission namespace: kind {kind:?} with namespace {ns:?}"
                    )))
                }
            };
            let pref = project.as_ref().map(project_ref);
            let mut access = vec![];
            for a in &p.access {
                let (Some(r), Some(act)) = (Resource::parse(&a.resource), Action::parse(&a.action))
                else {
                    return Err(CoreError::BadRequest(format!(
                        "bad request permission: {}:{}",
                        a.resource, a.action
                    )));
                };
                if !grantable(table, r, act) {
                    return Err(CoreError::BadRequest(format!(
                        "bad request permission: {}:{}",
                        a.resource, a.action
                    )));
                }
                // Nobody grants more than they hold. "*" means every
                // project, which only a system admin holds everywhere.
                let holds = match (p.namespace.as_str(), pref) {
                    ("*", _) => subject.is_sysadmin(),
                    (_, Some(pr)) => access::allowed(subject, Some(pr), r, act),
                    _ => access::allowed(subject, None, r, act),
                };
                if !holds {
                    return Err(CoreError::Denied(format!(
                        "the caller does not hold {}:{} and cannot grant it",
                        a.resource, a.action
                    )));
                }
                // Accounts that mint accounts outlive the rotation of the
                // one that was leaked: only a system admin grants them.
                if matches!(r, Resource::Robot | Resource::User) && !subject.is_sysadmin() {
                    return Err(CoreError::Denied(format!(
                        "only a system administrator grants {}:{}",
                        a.resource, a.action
                    )));
                }
                access.push(RobotAccess {
                    resource: r.as_str().to_owned(),
                    action: act.as_str().to_owned(),
                    effect: None,
                });
            }
            if level == RobotLevel::Project {
                project_of_robot = project.as_ref().map(|p| (project_ref(p), p.name.clone()));
            }
            out.push(RobotPermission {
                kind: p.kind.clone(),
                namespace: p.namespace.clone(),
                access,
                project_id: project.as_ref().map(|p| p.id),
            });
        }
        let (pr, name) = match project_of_robot {
            Some((pr, name)) => (Some(pr), Some(name)),
            None => (None, None),
        };
        Ok((out, pr, name))
    }

    /// May `subject` manage (`action`) robots of this level/project?
    fn authorize_manage(
        subject: &Subject,
        project: Option<ProjectRef>,
        action: Action,
    ) -> CoreResult<()> {
        match project {
            Some(pr) => access::authorize(subject, Some(pr), Resource::Robot, action).map(|_| ()),
            None => {
                if subject.is_sysadmin() || access::allowed(subject, None, Resource::Robot, action)
                {
                    Ok(())
                } else if subject.is_anonymous() {
                    Err(CoreError::Unauthenticated)
                } else {
                    Err(CoreError::denied())
                }
            }
        }
    }

    pub async fn create(&self, subject: &Subject, spec: RobotSpec) -> CoreResult<CreatedRobot> {
        if subject.is_anonymous() {
            return Err(CoreError::Unauthenticated);
        }
        let level = match spec.level.as_str() {
            "system" => RobotLevel::System,
            "project" => RobotLevel::Project,
            other => {
                return Err(CoreError::BadRequest(format!(
                    "level must be system or project, not {other:?}"
                )))
            }
        };
        berth_oci::ProjectName::parse(&spec.name).map_err(|_| {
            CoreError::BadRequest("the robot name must match ^[a-z0-9]+(?:[._-][a-z0-9]+)*$".into())
        })?;
        if level == RobotLevel::System {
            Self::authorize_manage(subject, None, Action::Create)?;
        }
        let (permissions, project, project_name) = self
            .check_permissions(subject, level, &spec.permissions)
            .await?;
        if level == RobotLevel::Project {
            Self::authorize_manage(subject, project, Action::Create)?;
        }
        let cfg = self.settings.current().await?;
        let duration = match spec.duration {
            None | Some(0) => cfg.robot_token_duration,
            Some(-1) => -1,
            Some(d) if d > 0 && d < i32::MAX as i64 => d,
            Some(_) => {
                return Err(CoreError::BadRequest(
                    "duration must be -1 (never expires) or a positive number of days".into(),
                ))
            }
        };
        let secret = match spec.secret.filter(|s| !s.is_empty()) {
            Some(s) if password_acceptable(&s) => s,
            Some(_) => return Err(CoreError::BadRequest(PASSWORD_POLICY.into())),
            None => random_secret(32),
        };
        let name = match &project_name {
            Some(p) => format!("{p}+{}", spec.name),
            None => spec.name.clone(),
        };
        let now = clock::now();
        let robot = self
            .meta
            .create_robot(&NewRobot {
                name,
                description: spec.description,
                level,
                project_id: project.map(|p| p.id),
                secret_hash: hash_password(&secret)?,
                permissions,
                disabled: spec.disable,
                duration,
                expires_at: expires_at(now, duration),
                creator: subject.name().to_owned(),
            })
            .await?;
        let login_name = self.login_name(&robot).await?;
        self.events.publish(Event::RobotCreated {
            project_id: robot.project_id.unwrap_or(0),
            name: login_name.clone(),
            operator: subject.name().to_owned(),
            time: now,
        });
        Ok(CreatedRobot {
            robot,
            login_name,
            secret,
        })
    }

    async fn project_of(&self, robot: &Robot) -> CoreResult<Option<ProjectRef>> {
        match robot.project_id {
            Some(id) => Ok(self.meta.project_by_id(id).await?.as_ref().map(project_ref)),
            None => Ok(None),
        }
    }

    /// The robot `id`, authorized for `action` against its owning project
    /// (or the system for system robots). Unknown ids are 404 for anyone
    /// signed in.
    async fn load(&self, subject: &Subject, id: i64, action: Action) -> CoreResult<Robot> {
        if subject.is_anonymous() {
            return Err(CoreError::Unauthenticated);
        }
        let robot = self
            .meta
            .robot_by_id(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("robot {id}")))?;
        let project = self.project_of(&robot).await?;
        match Self::authorize_manage(subject, project, action) {
            Ok(()) => Ok(robot),
            // A robot the caller cannot read is not revealed.
            Err(CoreError::Denied(_)) if !self.can_read(subject, project) => {
                Err(CoreError::NotFound(format!("robot {id}")))
            }
            Err(e) => Err(e),
        }
    }

    fn can_read(&self, subject: &Subject, project: Option<ProjectRef>) -> bool {
        Self::authorize_manage(subject, project, Action::Read).is_ok()
    }

    pub async fn get(&self, subject: &Subject, id: i64) -> CoreResult<Robot> {
        self.load(subject, id, Action::Read).await
    }

    /// Robots of a project (`project` given) or every robot (system admins).
    pub async fn list(
        &self,
        subject: &Subject,
        project: Option<&ProjectKey>,
        query: RobotQuery,
        page: Page,
    ) -> CoreResult<(Vec<Robot>, i64)> {
        let mut query = query;
        match project {
            Some(key) => {
                let p = crate::catalog::authorized_project(
                    &*self.meta,
                    subject,
                    key,
                    Resource::Robot,
                    Action::List,
                )
                .await?;
                query.project_id = Some(p.id);
                query.level = Some(RobotLevel::Project);
            }
            None => Self::authorize_manage(subject, None, Action::List)?,
        }
        self.meta.list_robots(&query, page).await
    }

    /// `PUT /robots/{id}`: description, permissions, duration, disable.
    /// Name and level cannot change.
    pub async fn update(&self, subject: &Subject, id: i64, spec: RobotSpec) -> CoreResult<()> {
        let mut robot = self.load(subject, id, Action::Update).await?;
        let login = self.login_name(&robot).await?;
        let stored_short = robot
            .name
            .rsplit('+')
            .next()
            .unwrap_or(&robot.name)
            .to_owned();
        if !spec.name.is_empty()
            && spec.name != login
            && spec.name != robot.name
            && spec.name != stored_short
        {
            return Err(CoreError::BadRequest(
                "the name of a robot cannot change".into(),
            ));
        }
        if !spec.level.is_empty() && spec.level != robot.level.as_str() {
            return Err(CoreError::BadRequest(
                "the level of a robot cannot change".into(),
            ));
        }
        let (permissions, project, _) = self
            .check_permissions(subject, robot.level, &spec.permissions)
            .await?;
        if robot.level == RobotLevel::Project && project.map(|p| p.id) != robot.project_id {
            return Err(CoreError::BadRequest(
                "a project robot's permissions must name its own project".into(),
            ));
        }
        let duration = match spec.duration {
            None => robot.duration,
            Some(-1) => -1,
            Some(d) if d > 0 && d < i32::MAX as i64 => d,
            Some(_) => {
                return Err(CoreError::BadRequest(
                    "duration must be -1 (never expires) or a positive number of days".into(),
                ))
            }
        };
        robot.description = spec.description;
        robot.permissions = permissions;
        robot.disabled = spec.disable;
        robot.duration = duration;
        robot.expires_at = expires_at(robot.creation_time, duration);
        self.meta.update_robot(&robot).await?;
        self.events.publish(Event::RobotUpdated {
            project_id: robot.project_id.unwrap_or(0),
            name: login,
            what: "settings".into(),
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }

    /// `PATCH /robots/{id}`: a new secret, random (returned) or chosen by
    /// the caller (not echoed). Old secrets and tokens stop working.
    pub async fn refresh_secret(
        &self,
        subject: &Subject,
        id: i64,
        secret: Option<&str>,
    ) -> CoreResult<Option<String>> {
        let robot = self.load(subject, id, Action::Update).await?;
        let (secret, returned) = match secret.filter(|s| !s.is_empty()) {
            Some(s) if password_acceptable(s) => (s.to_owned(), None),
            Some(_) => return Err(CoreError::BadRequest(PASSWORD_POLICY.into())),
            None => {
                let s = random_secret(32);
                (s.clone(), Some(s))
            }
        };
        self.meta
            .set_robot_secret(robot.id, &hash_password(&secret)?)
            .await?;
        self.events.publish(Event::RobotUpdated {
            project_id: robot.project_id.unwrap_or(0),
            name: self.login_name(&robot).await?,
            what: "secret refreshed".into(),
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(returned)
    }

    pub async fn delete(&self, subject: &Subject, id: i64) -> CoreResult<()> {
        let robot = self.load(subject, id, Action::Delete).await?;
        self.meta.delete_robot(robot.id).await?;
        self.events.publish(Event::RobotDeleted {
            project_id: robot.project_id.unwrap_or(0),
            name: self.login_name(&robot).await?,
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }

    /// `GET /permissions`: what may be granted, for those who may grant.
    pub fn grantable_permissions(
        &self,
        subject: &Subject,
    ) -> CoreResult<(Vec<ResourceAction>, Vec<ResourceAction>)> {
        if subject.is_anonymous() {
            return Err(CoreError::Unauthenticated);
        }
        let flat = |t: &[(Resource, &[Action])]| {
            t.iter()
                .flat_map(|(r, acts)| {
                    acts.iter()
                        .map(|a| (r.as_str().to_owned(), a.as_str().to_owned()))
                })
                .collect::<Vec<_>>()
        };
        if subject.is_sysadmin() {
            Ok((flat(SYSTEM_GRANTABLE), flat(PROJECT_GRANTABLE)))
        } else {
            Ok((vec![], flat(PROJECT_GRANTABLE)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grantable_sets() {
        assert!(grantable(PROJECT_GRANTABLE, R::Repository, A::Push));
        assert!(!grantable(PROJECT_GRANTABLE, R::Repository, A::Create));
        assert!(!grantable(PROJECT_GRANTABLE, R::User, A::Create));
        assert!(grantable(SYSTEM_GRANTABLE, R::Catalog, A::Read));
        assert!(!grantable(SYSTEM_GRANTABLE, R::Repository, A::Pull));
        assert_eq!(expires_at(86_400_000, 1), 2 * 86_400);
        assert_eq!(expires_at(5, -1), -1);
    }
}
