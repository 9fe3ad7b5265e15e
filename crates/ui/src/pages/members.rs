//! A project's Members tab: the members with their roles (searchable,
//! paged), and — for those the domain lets — adding a user, changing a
//! member's role and removing a member.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use berth_api::AppState;
use berth_core::access::{Action, Resource};
use berth_core::catalog::ProjectKey;
use berth_core::members::MemberUser;
use berth_core::CoreError;
use serde::Deserialize;

use super::{can, project_nav, ProjectNav};
use crate::error::{form_error, UiError, UiResult};
use crate::session::{Posted, Viewer};
use crate::view::{done, page_status, role_label, url, Chrome, ListQuery, Pager};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/harbor/projects/{project}/members", get(list).post(add))
        .route(
            "/harbor/projects/{project}/members/{id}/role",
            post(change_role),
        )
        .route(
            "/harbor/projects/{project}/members/{id}/delete",
            post(remove),
        )
}

/// One choice of the role selects.
pub(crate) struct RoleOption {
    pub id: i64,
    pub label: &'static str,
}

/// Harbor's five roles, strongest first (as Harbor's portal lists them).
pub(crate) fn role_options() -> Vec<RoleOption> {
    [1, 4, 2, 3, 5]
        .into_iter()
        .map(|id| RoleOption {
            id,
            label: role_label(id),
        })
        .collect()
}

/// "u" → "User", "g" → "Group".
fn entity_kind(t: &str) -> &'static str {
    match t {
        "u" => "User",
        "g" => "Group",
        _ => "Other",
    }
}

/// A path id that must be a number.
pub(crate) fn path_id(id: &str) -> Result<i64, UiError> {
    id.parse()
        .map_err(|_| UiError::BadRequest(format!("{id:?} is not an id")))
}

struct MemberRow {
    id: i64,
    name: String,
    kind: &'static str,
    role_id: i64,
    role: &'static str,
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    chrome: Chrome,
    nav: ProjectNav,
    q: String,
    rows: Vec<MemberRow>,
    pager: Pager,
    roles: Vec<RoleOption>,
    can_add: bool,
    can_update: bool,
    can_delete: bool,
    /// A refused form's message ("" for none).
    error: String,
    /// The add form's values, kept when it is shown again.
    username: String,
    role_id: i64,
}

/// What a refused add form is shown again with.
struct Sticky {
    error: String,
    username: String,
    role_id: i64,
}

impl Default for Sticky {
    fn default() -> Self {
        Sticky {
            error: String::new(),
            username: String::new(),
            role_id: 3,
        }
    }
}

async fn render(
    s: &AppState,
    viewer: &Viewer,
    project: &str,
    q: &ListQuery,
    sticky: Sticky,
    status: StatusCode,
) -> UiResult {
    viewer.require()?;
    let (p, nav) = project_nav(s, viewer, project, "members").await?;
    let term = q.term().to_owned();
    let page_no = q.page();
    let (members, total) = s
        .members
        .list(
            &viewer.subject,
            &ProjectKey::Id(p.id),
            (!term.is_empty()).then_some(term.as_str()),
            page_no,
        )
        .await?;
    let rows: Vec<MemberRow> = members
        .into_iter()
        .map(|m| MemberRow {
            id: m.id,
            kind: entity_kind(&m.entity_type),
            role_id: m.role.id(),
            role: role_label(m.role.id()),
            name: m.entity_name,
        })
        .collect();
    let base = url(
        &format!("/harbor/projects/{}/members", p.name),
        &[("q", &term)],
    );
    page_status(
        viewer,
        status,
        &MembersPage {
            chrome: Chrome::new(s, viewer, "projects").await?,
            q: term,
            pager: Pager::new(&base, page_no, rows.len(), total),
            rows,
            roles: role_options(),
            can_add: can(viewer, &p, Resource::Member, Action::Create),
            can_update: can(viewer, &p, Resource::Member, Action::Update),
            can_delete: can(viewer, &p, Resource::Member, Action::Delete),
            error: sticky.error,
            username: sticky.username,
            role_id: sticky.role_id,
            nav,
        },
    )
}

async fn list(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(project): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    render(&s, &viewer, &project, &q, Sticky::default(), StatusCode::OK).await
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role_id: String,
}

/// A role id from a form: a number (the domain says whether it is a role).
fn parse_role(v: &str) -> Result<i64, String> {
    v.trim()
        .parse()
        .map_err(|_| "Choose a role for the member.".to_owned())
}

async fn add(
    State(s): State<AppState>,
    Path(project): Path<String>,
    form: Posted<AddForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let (p, _) = project_nav(&s, viewer, &project, "members").await?;
    let username = form.value.username.trim().to_owned();
    let role = parse_role(&form.value.role_id);
    let result = match (&role, username.is_empty()) {
        (Err(m), _) => Err(CoreError::BadRequest(m.clone())),
        (_, true) => Err(CoreError::BadRequest(
            "Enter the username of the user to add.".into(),
        )),
        (Ok(role_id), false) => {
            s.members
                .add(
                    &viewer.subject,
                    &ProjectKey::Id(p.id),
                    &MemberUser::Name(username.clone()),
                    *role_id,
                )
                .await
        }
    };
    match result {
        Ok(m) => Ok(done(
            &format!("/harbor/projects/{}/members", p.name),
            &format!("{} added as {}.", m.entity_name, role_label(m.role.id())),
        )),
        Err(e) => {
            let (status, error) = form_error(e)?;
            render(
                &s,
                viewer,
                &project,
                &ListQuery::default(),
                Sticky {
                    error,
                    username,
                    role_id: role.unwrap_or(3),
                },
                status,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    role_id: String,
}

/// Shows the list again with a refused row action's message.
async fn refused(s: &AppState, viewer: &Viewer, project: &str, e: CoreError) -> UiResult {
    let (status, error) = form_error(e)?;
    render(
        s,
        viewer,
        project,
        &ListQuery::default(),
        Sticky {
            error,
            ..Sticky::default()
        },
        status,
    )
    .await
}

async fn change_role(
    State(s): State<AppState>,
    Path((project, id)): Path<(String, String)>,
    form: Posted<RoleForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let id = path_id(&id)?;
    let (p, _) = project_nav(&s, viewer, &project, "members").await?;
    let result = match parse_role(&form.value.role_id) {
        Err(m) => Err(CoreError::BadRequest(m)),
        Ok(role_id) => s
            .members
            .update(&viewer.subject, &ProjectKey::Id(p.id), id, role_id)
            .await
            .map(|_| role_id),
    };
    match result {
        Ok(role_id) => Ok(done(
            &format!("/harbor/projects/{}/members", p.name),
            &format!("Role changed to {}.", role_label(role_id)),
        )),
        Err(e) => refused(&s, viewer, &project, e).await,
    }
}

async fn remove(
    State(s): State<AppState>,
    Path((project, id)): Path<(String, String)>,
    form: Posted<serde::de::IgnoredAny>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let id = path_id(&id)?;
    let (p, _) = project_nav(&s, viewer, &project, "members").await?;
    match s
        .members
        .delete(&viewer.subject, &ProjectKey::Id(p.id), id)
        .await
    {
        Ok(()) => Ok(done(
            &format!("/harbor/projects/{}/members", p.name),
            "Member removed.",
        )),
        Err(e) => refused(&s, viewer, &project, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_kinds() {
        let ids: Vec<i64> = role_options().iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![1, 4, 2, 3, 5]);
        assert!(role_options().iter().all(|r| !r.label.is_empty()));
        assert_eq!(entity_kind("u"), "User");
        assert_eq!(entity_kind("g"), "Group");
        assert_eq!(parse_role(" 4 "), Ok(4));
        assert!(parse_role("").is_err());
        assert!(parse_role("admin").is_err());
        assert_eq!(path_id("12").unwrap(), 12);
        assert!(path_id("x").is_err());
    }

    #[test]
    fn hostile_text_is_escaped() {
        const XSS: &str = "<script>alert(1)</script>\"'&";
        let html = MembersPage {
            chrome: Chrome::bare(),
            nav: ProjectNav {
                name: "library".into(),
                id: 1,
                public: false,
                active: "members",
                role: "",
                can_members: true,
                can_robots: false,
                can_logs: false,
                can_config: false,
                can_policy: false,
            },
            q: XSS.into(),
            rows: vec![MemberRow {
                id: 1,
                name: XSS.into(),
                kind: "User",
                role_id: 3,
                role: "Guest",
            }],
            pager: Pager::default(),
            roles: role_options(),
            can_add: true,
            can_update: true,
            can_delete: true,
            error: XSS.into(),
            username: XSS.into(),
            role_id: 3,
        }
        .render()
        .unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("\"'&"), "{html}");
        assert!(html.contains("id=\"members\"") && html.contains("remove-member"));
    }

    #[test]
    fn user_mistakes_are_messages() {
        assert_eq!(
            form_error(CoreError::NotFound("user".into())).unwrap(),
            (StatusCode::NOT_FOUND, "user not found".to_owned())
        );
        assert_eq!(
            form_error(CoreError::Conflict("already a member".into())).unwrap(),
            (StatusCode::CONFLICT, "already a member".to_owned())
        );
        assert_eq!(
            form_error(CoreError::denied()).unwrap().0,
            StatusCode::FORBIDDEN
        );
        assert!(form_error(CoreError::Internal("db".into())).is_err());
        assert!(form_error(CoreError::Unauthenticated).is_err());
    }
}
