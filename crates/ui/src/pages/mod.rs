//! Page handlers, one module per group of screens. Handlers are thin:
//! they call a domain service with the viewer's subject, and render.

use berth_api::AppState;
use berth_core::access::{self, Action, Resource};
use berth_core::catalog::ProjectKey;
use berth_core::model::Project;

use crate::error::UiResult;
use crate::session::Viewer;

pub mod admin;
pub mod auth;
pub mod configuration;
pub mod logs;
pub mod members;
pub mod policy;
pub mod projects;
pub mod repositories;
pub mod robot_form;
pub mod robots;
pub mod storage_requests;

/// The tabs of a project page and the viewer's role in it.
#[derive(Clone, Debug)]
pub struct ProjectNav {
    pub name: String,
    pub id: i64,
    pub public: bool,
    pub active: &'static str,
    /// The viewer's highest role, for humans ("" for none).
    pub role: &'static str,
    pub can_members: bool,
    pub can_robots: bool,
    pub can_logs: bool,
    pub can_config: bool,
    pub can_policy: bool,
}

/// Loads a project the viewer may read (the domain decides) and its tabs.
pub async fn project_nav(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
    active: &'static str,
) -> UiResult<(Project, ProjectNav)> {
    viewer.require()?;
    let project = state
        .catalog
        .get_project(&viewer.subject, &ProjectKey::Name(name.to_owned()))
        .await?;
    let nav = ProjectNav {
        name: project.name.clone(),
        id: project.id,
        public: project.public,
        active,
        role: highest_role(viewer, project.id),
        can_members: can(viewer, &project, Resource::Member, Action::List),
        can_robots: can(viewer, &project, Resource::Robot, Action::List),
        can_logs: can(viewer, &project, Resource::Log, Action::List),
        can_config: can(viewer, &project, Resource::Metadata, Action::Read),
        can_policy: can(viewer, &project, Resource::ImmutableTag, Action::List)
            || can(viewer, &project, Resource::TagRetention, Action::Read),
    };
    Ok((project, nav))
}

/// Whether the viewer may do `action` on `resource` in `project`: the
/// domain's own decision, used to show or hide controls (the domain checks
/// again when the form arrives).
pub fn can(viewer: &Viewer, project: &Project, resource: Resource, action: Action) -> bool {
    access::allowed(
        &viewer.subject,
        Some(access::ProjectRef {
            id: project.id,
            public: project.public,
        }),
        resource,
        action,
    )
}

/// The viewer's highest role in a project.
pub fn highest_role(viewer: &Viewer, project_id: i64) -> &'static str {
    use berth_core::access::Role;
    let roles = viewer.subject.roles_in(project_id);
    for r in [
        Role::ProjectAdmin,
        Role::Maintainer,
        Role::Developer,
        Role::Guest,
        Role::LimitedGuest,
    ] {
        if roles.contains(&r) {
            return crate::view::role_label(r.id());
        }
    }
    if viewer.subject.is_sysadmin() {
        "System Admin"
    } else {
        ""
    }
}
