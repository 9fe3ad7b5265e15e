//! Who may do what. Every operation in Berth is named as (project,
//! resource, action) and decided here, in one function, from the caller's
//! principal and project roles: Harbor's permission matrix as data.
//!
//! Domain write paths take a [`Granted`] proof, which only [`authorize`]
//! can produce, so an unchecked path does not compile.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::model::{ProjectId, UserId};

/// Project roles with Harbor's role ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    ProjectAdmin = 1,
    Developer = 2,
    Guest = 3,
    Maintainer = 4,
    LimitedGuest = 5,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::ProjectAdmin,
        Role::Developer,
        Role::Guest,
        Role::Maintainer,
        Role::LimitedGuest,
    ];

    pub fn id(self) -> i64 {
        self as i64
    }

    pub fn from_id(id: i64) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.id() == id)
    }

    /// Harbor's role names as the API shows them.
    pub fn name(self) -> &'static str {
        match self {
            Role::ProjectAdmin => "projectAdmin",
            Role::Developer => "developer",
            Role::Guest => "guest",
            Role::Maintainer => "maintainer",
            Role::LimitedGuest => "limitedGuest",
        }
    }
}

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($var),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),*];
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),* } }
            pub fn parse(s: &str) -> Option<$name> { match s { $($s => Some($name::$var),)* _ => None } }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

named_enum!(
    /// Harbor's RBAC resources (project-scoped and system-scoped).
    Resource {
        Project = "project",
        Member = "member",
        Metadata = "metadata",
        Log = "log",
        Label = "label",
        Quota = "quota",
        Repository = "repository",
        TagRetention = "tag-retention",
        ImmutableTag = "immutable-tag",
        Configuration = "configuration",
        Robot = "robot",
        NotificationPolicy = "notification-policy",
        Scan = "scan",
        Sbom = "sbom",
        Scanner = "scanner",
        Artifact = "artifact",
        ArtifactAddition = "artifact-addition",
        Tag = "tag",
        Accessory = "accessory",
        ArtifactLabel = "artifact-label",
        PreheatPolicy = "preheat-policy",
        ExportCve = "export-cve",
        AuditLog = "audit-log",
        PreheatInstance = "preheat-instance",
        ReplicationPolicy = "replication-policy",
        Replication = "replication",
        ReplicationAdapter = "replication-adapter",
        Registry = "registry",
        ScanAll = "scan-all",
        SystemVolumes = "system-volumes",
        GarbageCollection = "garbage-collection",
        PurgeAudit = "purge-audit",
        JobserviceMonitor = "jobservice-monitor",
        Catalog = "catalog",
        User = "user",
        LdapUser = "ldap-user",
        UserGroup = "user-group",
        SecurityHub = "security-hub",
    }
);

named_enum!(
    /// Harbor's RBAC actions.
    Action {
        Create = "create",
        Read = "read",
        Update = "update",
        Delete = "delete",
        List = "list",
        Pull = "pull",
        Push = "push",
        Operate = "operate",
        Stop = "stop",
        ScannerPull = "scanner-pull",
    }
);

use Action as A;
use Resource as R;

const CRUDL: &[Action] = &[A::Create, A::Read, A::Update, A::Delete, A::List];
const RL: &[Action] = &[A::Read, A::List];

/// Harbor's project role matrix (`rbac_role.go`), row by row.
fn role_policy(role: Role) -> &'static [(Resource, &'static [Action])] {
    match role {
        Role::ProjectAdmin => &[
            (R::Project, &[A::Read, A::Update, A::Delete]),
            (R::Member, CRUDL),
            (R::Metadata, &[A::Create, A::Read, A::Update, A::Delete]),
            (R::Log, &[A::List]),
            (R::Label, CRUDL),
            (R::Quota, &[A::Read]),
            (
                R::Repository,
                &[
                    A::Create,
                    A::Read,
                    A::Update,
                    A::Delete,
                    A::List,
                    A::Pull,
                    A::Push,
                ],
            ),
            (
                R::TagRetention,
                &[
                    A::Create,
                    A::Read,
                    A::Update,
                    A::Delete,
                    A::List,
                    A::Operate,
                ],
            ),
            (R::ImmutableTag, &[A::Create, A::Update, A::Delete, A::List]),
            (R::Configuration, &[A::Read, A::Update]),
            (R::Robot, CRUDL),
            (R::NotificationPolicy, CRUDL),
            (R::Scan, &[A::Create, A::Read, A::Stop]),
            (R::Sbom, &[A::Create, A::Read, A::Stop]),
            (R::Scanner, &[A::Create, A::Read]),
            (R::Artifact, &[A::Create, A::Read, A::Delete, A::List]),
            (R::ArtifactAddition, &[A::Read]),
            (R::Tag, &[A::Create, A::Delete, A::List]),
            (R::Accessory, &[A::List]),
            (R::ArtifactLabel, &[A::Create, A::Delete]),
            (R::PreheatPolicy, CRUDL),
            (R::ExportCve, &[A::Create, A::Read, A::List]),
        ],
        Role::Maintainer => &[
            (R::Project, &[A::Read]),
            (R::Member, RL),
            (R::Metadata, &[A::Read]),
            (R::Label, CRUDL),
            (R::Quota, &[A::Read]),
            (
                R::Repository,
                &[
                    A::Create,
                    A::Read,
                    A::Update,
                    A::Delete,
                    A::List,
                    A::Pull,
                    A::Push,
                ],
            ),
            (
                R::TagRetention,
                &[
                    A::Create,
                    A::Read,
                    A::Update,
                    A::Delete,
                    A::List,
                    A::Operate,
                ],
            ),
            (R::ImmutableTag, &[A::Create, A::Update, A::Delete, A::List]),
            (R::Configuration, &[A::Read]),
            (R::Robot, RL),
            (R::NotificationPolicy, RL),
            (R::Scan, &[A::Create, A::Read, A::Stop]),
            (R::Sbom, &[A::Create, A::Read, A::Stop]),
            (R::Scanner, &[A::Read]),
            (R::Artifact, &[A::Create, A::Read, A::Delete, A::List]),
            (R::ArtifactAddition, &[A::Read]),
            (R::Tag, &[A::Create, A::Delete, A::List]),
            (R::Accessory, &[A::List]),
            (R::ArtifactLabel, &[A::Create, A::Delete]),
            (R::ExportCve, &[A::Create, A::Read, A::List]),
        ],
        Role::Developer => &[
            (R::Project, &[A::Read]),
            (R::Member, RL),
            (R::Label, RL),
            (R::Quota, &[A::Read]),
            (
                R::Repository,
                &[A::Create, A::Read, A::Update, A::List, A::Pull, A::Push],
            ),
            (
                R::TagRetention,
                &[
                    A::Create,
                    A::Read,
                    A::Update,
                    A::Delete,
                    A::List,
                    A::Operate,
                ],
            ),
            (R::Configuration, &[A::Read]),
            (R::Robot, RL),
            (R::Scan, &[A::Read]),
            (R::Sbom, &[A::Read]),
            (R::Scanner, &[A::Read]),
            (R::Artifact, &[A::Create, A::Read, A::List]),
            (R::ArtifactAddition, &[A::Read]),
            (R::Tag, &[A::Create, A::List]),
            (R::Accessory, &[A::List]),
            (R::ArtifactLabel, &[A::Create, A::Delete]),
            (R::ExportCve, &[A::Create, A::Read, A::List]),
        ],
        Role::Guest => &[
            (R::Project, &[A::Read]),
            (R::Member, RL),
            (R::Label, RL),
            (R::Quota, &[A::Read]),
            (R::Repository, &[A::Read, A::List, A::Pull]),
            (R::Configuration, &[A::Read]),
            (R::Robot, RL),
            (R::Scan, &[A::Read]),
            (R::Sbom, &[A::Read]),
            (R::Scanner, &[A::Read]),
            (R::Artifact, RL),
            (R::ArtifactAddition, &[A::Read]),
            (R::Tag, &[A::List]),
            (R::Accessory, &[A::List]),
        ],
        Role::LimitedGuest => &[
            (R::Project, &[A::Read]),
            (R::Quota, &[A::Read]),
            (R::Repository, &[A::Read, A::List, A::Pull]),
            (R::Configuration, &[A::Read]),
            (R::Scan, &[A::Read]),
            (R::Sbom, &[A::Read]),
            (R::Scanner, &[A::Read]),
            (R::Artifact, RL),
            (R::ArtifactAddition, &[A::Read]),
            (R::Tag, &[A::List]),
            (R::Accessory, &[A::List]),
        ],
    }
}

/// What every caller, anonymous included, may do in a public project.
const PUBLIC_PROJECT_POLICY: &[(Resource, &[Action])] = &[
    (R::Project, &[A::Read]),
    (R::Label, RL),
    (R::Repository, &[A::List, A::Pull]),
    (R::Scan, &[A::Read]),
    (R::Scanner, &[A::Read]),
    (R::Tag, &[A::List]),
    (R::Artifact, RL),
    (R::ArtifactAddition, &[A::Read]),
    (R::Accessory, &[A::List]),
];

fn policy_allows(policy: &[(Resource, &[Action])], resource: Resource, action: Action) -> bool {
    policy
        .iter()
        .any(|(r, actions)| *r == resource && actions.contains(&action))
}

/// Whether `role` grants `action` on `resource` in its project.
pub fn role_allows(role: Role, resource: Resource, action: Action) -> bool {
    policy_allows(role_policy(role), resource, action)
}

/// Where a robot permission applies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Namespace {
    System,
    /// A project by id.
    Project(ProjectId),
    /// Every project (`namespace: "*"`).
    AllProjects,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permission {
    pub namespace: Namespace,
    pub resource: Resource,
    pub action: Action,
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq)]
pub enum Principal {
    Anonymous,
    User {
        id: UserId,
        name: String,
        sysadmin: bool,
    },
    Robot {
        id: i64,
        name: String,
        permissions: Vec<Permission>,
    },
}

/// What a registry token grants: actions on named repositories, and the
/// catalog.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TokenAccess {
    pub repositories: Vec<(String, Vec<Action>)>,
    pub catalog: bool,
}

impl TokenAccess {
    pub fn allows(&self, repository: &str, action: Action) -> bool {
        self.repositories
            .iter()
            .any(|(name, actions)| name == repository && actions.contains(&action))
    }
}

/// A principal together with its project roles, resolved once per request
/// by authentication; authorization never reads storage. A subject that
/// came with a registry token is limited to what the token grants.
#[derive(Clone, Debug)]
pub struct Subject {
    pub principal: Principal,
    roles: HashMap<ProjectId, Vec<Role>>,
    token: Option<TokenAccess>,
}

impl Subject {
    pub fn anonymous() -> Self {
        Subject {
            principal: Principal::Anonymous,
            roles: HashMap::new(),
            token: None,
        }
    }

    pub fn new(principal: Principal, roles: HashMap<ProjectId, Vec<Role>>) -> Self {
        Subject {
            principal,
            roles,
            token: None,
        }
    }

    /// Limits the subject to a registry token's grants.
    pub fn with_token(mut self, access: TokenAccess) -> Self {
        self.token = Some(access);
        self
    }

    pub fn token(&self) -> Option<&TokenAccess> {
        self.token.as_ref()
    }

    pub fn is_robot(&self) -> bool {
        matches!(self.principal, Principal::Robot { .. })
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self.principal, Principal::Anonymous)
    }

    pub fn is_sysadmin(&self) -> bool {
        matches!(self.principal, Principal::User { sysadmin: true, .. })
    }

    pub fn user_id(&self) -> Option<UserId> {
        match self.principal {
            Principal::User { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The name recorded as operator in audit logs and events.
    pub fn name(&self) -> &str {
        match &self.principal {
            Principal::Anonymous => "anonymous",
            Principal::User { name, .. } | Principal::Robot { name, .. } => name,
        }
    }

    pub fn roles_in(&self, project: ProjectId) -> &[Role] {
        self.roles.get(&project).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Projects where the subject holds a role (for listing filters).
    pub fn member_projects(&self) -> Vec<ProjectId> {
        let mut v: Vec<_> = self.roles.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// The project ids a robot reaches, or `None` when it reaches all.
    fn robot_projects(&self) -> Option<Vec<ProjectId>> {
        match &self.principal {
            Principal::Robot { permissions, .. } => {
                if permissions
                    .iter()
                    .any(|p| p.namespace == Namespace::AllProjects)
                {
                    return None;
                }
                let mut v: Vec<_> = permissions
                    .iter()
                    .filter_map(|p| match p.namespace {
                        Namespace::Project(id) => Some(id),
                        _ => None,
                    })
                    .collect();
                v.sort_unstable();
                v.dedup();
                Some(v)
            }
            _ => Some(vec![]),
        }
    }
}

/// The project facts a decision needs.
#[derive(Clone, Copy, Debug)]
pub struct ProjectRef {
    pub id: ProjectId,
    pub public: bool,
}

/// Which projects a listing may show.
#[derive(Clone, Debug, PartialEq)]
pub enum Visibility {
    All,
    /// Public projects plus the listed ones.
    Some {
        public: bool,
        projects: Vec<ProjectId>,
    },
}

/// Proof that an operation was authorized.
#[derive(Debug, Clone, Copy)]
pub struct Granted {
    project: Option<ProjectId>,
    resource: Resource,
    action: Action,
}

impl Granted {
    pub fn project(&self) -> Option<ProjectId> {
        self.project
    }
    pub fn resource(&self) -> Resource {
        self.resource
    }
    pub fn action(&self) -> Action {
        self.action
    }
}

/// Whether `subject` may do `action` on `resource` in `project` (or at
/// system level when `project` is `None`).
pub fn allowed(
    subject: &Subject,
    project: Option<ProjectRef>,
    resource: Resource,
    action: Action,
) -> bool {
    match &subject.principal {
        Principal::User { sysadmin: true, .. } => return action != Action::ScannerPull,
        Principal::Robot { permissions, .. } => {
            let by_robot = permissions.iter().any(|p| {
                let ns_ok = match (&p.namespace, project) {
                    (Namespace::System, None) => true,
                    (Namespace::AllProjects, Some(_)) => true,
                    (Namespace::Project(id), Some(pr)) => *id == pr.id,
                    _ => false,
                };
                // A project robot that may push may also pull, as Harbor does.
                let action_ok = p.action == action
                    || (action == Action::Pull
                        && p.action == Action::Push
                        && p.resource == Resource::Repository);
                ns_ok && p.resource == resource && action_ok
            });
            if by_robot {
                return true;
            }
        }
        Principal::User { .. } | Principal::Anonymous => {}
    }
    let Some(pr) = project else {
        return false;
    };
    if pr.public && policy_allows(PUBLIC_PROJECT_POLICY, resource, action) {
        return true;
    }
    subject
        .roles_in(pr.id)
        .iter()
        .any(|role| role_allows(*role, resource, action))
}

/// Decides, and returns proof or the error the caller should see:
/// anonymous callers get `Unauthenticated`, others `Denied`.
pub fn authorize(
    subject: &Subject,
    project: Option<ProjectRef>,
    resource: Resource,
    action: Action,
) -> Result<Granted, CoreError> {
    if allowed(subject, project, resource, action) {
        Ok(Granted {
            project: project.map(|p| p.id),
            resource,
            action,
        })
    } else if subject.is_anonymous() {
        Err(CoreError::Unauthenticated)
    } else {
        Err(CoreError::denied())
    }
}

/// Decides an action on one repository. With a registry token, the token's
/// grants decide (they were computed from the same rules when it was
/// issued); otherwise the project rules do.
pub fn authorize_repository(
    subject: &Subject,
    project: ProjectRef,
    repository: &str,
    action: Action,
) -> Result<Granted, CoreError> {
    match &subject.token {
        Some(token) => {
            if token.allows(repository, action) {
                Ok(Granted {
                    project: Some(project.id),
                    resource: Resource::Repository,
                    action,
                })
            } else if subject.is_anonymous() {
                Err(CoreError::Unauthenticated)
            } else {
                Err(CoreError::denied())
            }
        }
        None => authorize(subject, Some(project), Resource::Repository, action),
    }
}

/// Which projects `subject` may list.
pub fn visibility(subject: &Subject) -> Visibility {
    if subject.is_sysadmin() {
        return Visibility::All;
    }
    match subject.robot_projects() {
        None => Visibility::All,
        Some(mut robot) => {
            robot.extend(subject.member_projects());
            robot.sort_unstable();
            robot.dedup();
            Visibility::Some {
                public: true,
                projects: robot,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_with(role: Role) -> Subject {
        Subject::new(
            Principal::User {
                id: 7,
                name: "u".into(),
                sysadmin: false,
            },
            HashMap::from([(10, vec![role])]),
        )
    }

    const PRIVATE: ProjectRef = ProjectRef {
        id: 10,
        public: false,
    };
    const PUBLIC: ProjectRef = ProjectRef {
        id: 11,
        public: true,
    };

    #[test]
    fn matrix_spot_checks() {
        assert!(role_allows(Role::Developer, R::Repository, A::Push));
        assert!(!role_allows(Role::Developer, R::Repository, A::Delete));
        assert!(role_allows(Role::Developer, R::TagRetention, A::Operate));
        assert!(role_allows(Role::Guest, R::Robot, A::List));
        assert!(!role_allows(Role::LimitedGuest, R::Member, A::List));
        assert!(!role_allows(Role::Maintainer, R::Metadata, A::Update));
        assert!(role_allows(Role::Maintainer, R::Artifact, A::Delete));
        assert!(!role_allows(Role::Maintainer, R::Project, A::Update));
        assert!(role_allows(Role::ProjectAdmin, R::Project, A::Delete));
        assert!(!role_allows(Role::ProjectAdmin, R::ImmutableTag, A::Read));
    }

    #[test]
    fn decisions() {
        let anon = Subject::anonymous();
        assert!(allowed(&anon, Some(PUBLIC), R::Repository, A::Pull));
        assert!(!allowed(&anon, Some(PUBLIC), R::Repository, A::Push));
        assert!(!allowed(&anon, Some(PRIVATE), R::Repository, A::Pull));
        assert!(matches!(
            authorize(&anon, Some(PRIVATE), R::Repository, A::Pull),
            Err(CoreError::Unauthenticated)
        ));
        let dev = user_with(Role::Developer);
        assert!(allowed(&dev, Some(PRIVATE), R::Repository, A::Push));
        assert!(!allowed(&dev, Some(PRIVATE), R::Repository, A::Delete));
        assert!(matches!(
            authorize(&dev, Some(PRIVATE), R::Repository, A::Delete),
            Err(CoreError::Denied(_))
        ));
        // roles in one project say nothing about another
        assert!(!allowed(
            &dev,
            Some(ProjectRef {
                id: 12,
                public: false
            }),
            R::Repository,
            A::Pull
        ));
        let admin = Subject::new(
            Principal::User {
                id: 1,
                name: "admin".into(),
                sysadmin: true,
            },
            HashMap::new(),
        );
        assert!(allowed(&admin, Some(PRIVATE), R::Repository, A::Delete));
        assert!(allowed(&admin, None, R::Catalog, A::Read));
        assert!(!allowed(
            &admin,
            Some(PRIVATE),
            R::Repository,
            A::ScannerPull
        ));
        assert!(!allowed(&dev, None, R::Catalog, A::Read));
    }

    #[test]
    fn robots() {
        let robot = Subject::new(
            Principal::Robot {
                id: 1,
                name: "robot$p+ci".into(),
                permissions: vec![Permission {
                    namespace: Namespace::Project(10),
                    resource: R::Repository,
                    action: A::Push,
                }],
            },
            HashMap::new(),
        );
        assert!(allowed(&robot, Some(PRIVATE), R::Repository, A::Push));
        assert!(allowed(&robot, Some(PRIVATE), R::Repository, A::Pull));
        assert!(!allowed(&robot, Some(PRIVATE), R::Repository, A::Delete));
        assert!(!allowed(
            &robot,
            Some(ProjectRef {
                id: 12,
                public: false
            }),
            R::Repository,
            A::Pull
        ));
        assert_eq!(
            visibility(&robot),
            Visibility::Some {
                public: true,
                projects: vec![10]
            }
        );
    }
}
