//! A project's Robot accounts tab: the project's robots, a "New robot
//! account" form with a checklist of the project-level grantable
//! permissions, and per robot: refresh secret, enable/disable, delete.
//! A secret is shown once, on the page that answers the creation or the
//! refresh, with a copy button and a JSON download (which only echoes
//! back what that page posts).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use berth_api::AppState;
use berth_core::access::{Action, Resource};
use berth_core::catalog::ProjectKey;
use berth_core::model::{Project, Robot, RobotAccess, RobotLevel, RobotPermission};
use berth_core::query::{RobotQuery, TextMatch};
use berth_core::robots::RobotSpec;
use berth_core::CoreError;
use serde::Deserialize;

use super::members::path_id;
use super::robot_form::{
    expires_text, parse_access, parse_duration, secret_file, spec_with_disable, DownloadForm,
};
use super::{can, project_nav, ProjectNav};
use crate::error::{form_error, UiError, UiResult};
use crate::session::{Posted, Viewer};
use crate::view::{done, page, page_status, url, Chrome, ListQuery, Pager};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/harbor/projects/{project}/robots", get(list).post(create))
        .route("/harbor/projects/{project}/robots/download", post(download))
        .route(
            "/harbor/projects/{project}/robots/{id}/refresh",
            post(refresh),
        )
        .route(
            "/harbor/projects/{project}/robots/{id}/toggle",
            post(toggle),
        )
        .route(
            "/harbor/projects/{project}/robots/{id}/delete",
            post(delete),
        )
}

// ---- pure helpers ----------------------------------------------------------

/// The one permission entry of a project robot.
fn project_permission(project: &str, access: Vec<RobotAccess>) -> RobotPermission {
    RobotPermission {
        kind: "project".into(),
        namespace: project.to_owned(),
        access,
        project_id: None,
    }
}

/// `repository` + `push` → `perm-repository-push` (an element id).
fn perm_id(resource: &str, action: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!("perm-{}-{}", clean(resource), clean(action))
}

/// "resource:action" of every access of a robot.
fn access_list(r: &Robot) -> Vec<String> {
    r.permissions
        .iter()
        .flat_map(|p| p.access.iter())
        .map(|a| format!("{}:{}", a.resource, a.action))
        .collect()
}

// ---- the list and the new-robot form ---------------------------------------

struct RobotRow {
    id: i64,
    login: String,
    enabled: bool,
    expired: bool,
    perm_count: usize,
    perms: Vec<String>,
    created: String,
    expires: String,
    description: String,
    creator: String,
}

/// One box of the permission checklist.
struct PermChoice {
    id: String,
    value: String,
    resource: String,
    action: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "robots.html")]
struct RobotsPage {
    chrome: Chrome,
    nav: ProjectNav,
    q: String,
    rows: Vec<RobotRow>,
    pager: Pager,
    can_create: bool,
    can_update: bool,
    can_delete: bool,
    perms: Vec<PermChoice>,
    /// A refused row action's message, above the list.
    error: String,
    /// A refused new-robot form's message, by the form.
    create_error: String,
    name: String,
    description: String,
    duration: String,
}

/// The new-robot form as it was sent, to show it again, or a refused
/// row action's message.
struct Sticky {
    row_error: String,
    create_error: String,
    name: String,
    description: String,
    duration: String,
    checked: Vec<String>,
}

impl Default for Sticky {
    fn default() -> Self {
        Sticky {
            row_error: String::new(),
            create_error: String::new(),
            name: String::new(),
            description: String::new(),
            duration: "-1".into(),
            checked: vec![],
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
    let (p, nav) = project_nav(s, viewer, project, "robots").await?;
    let term = q.term().to_owned();
    let page_no = q.page();
    let query = RobotQuery {
        level: Some(RobotLevel::Project),
        project_id: Some(p.id),
        name: (!term.is_empty()).then(|| TextMatch::Fuzzy(term.clone())),
    };
    let (robots, total) = s
        .robots
        .list(&viewer.subject, Some(&ProjectKey::Id(p.id)), query, page_no)
        .await?;
    let now = berth_core::clock::now();
    let mut rows = Vec::with_capacity(robots.len());
    for r in &robots {
        let perms = access_list(r);
        rows.push(RobotRow {
            id: r.id,
            login: s.robots.login_name(r).await?,
            enabled: !r.disabled,
            expired: r.expires_at >= 0 && r.expires_at.saturating_mul(1000) < now,
            perm_count: perms.len(),
            perms,
            created: crate::view::time(Some(r.creation_time)),
            expires: expires_text(r.expires_at, berth_core::clock::now()),
            description: r.description.clone(),
            creator: r.creator.clone(),
        });
    }
    let can_create = can(viewer, &p, Resource::Robot, Action::Create);
    let perms = if can_create {
        let (_, project_perms) = s.robots.grantable_permissions(&viewer.subject)?;
        project_perms
            .into_iter()
            .map(|(r, a)| {
                let value = format!("{r}:{a}");
                PermChoice {
                    id: perm_id(&r, &a),
                    checked: sticky.checked.contains(&value),
                    value,
                    resource: r,
                    action: a,
                }
            })
            .collect()
    } else {
        vec![]
    };
    let base = url(
        &format!("/harbor/projects/{}/robots", p.name),
        &[("q", &term)],
    );
    page_status(
        viewer,
        status,
        &RobotsPage {
            chrome: Chrome::new(s, viewer, "projects").await?,
            q: term,
            pager: Pager::new(&base, page_no, rows.len(), total),
            rows,
            can_create,
            can_update: can(viewer, &p, Resource::Robot, Action::Update),
            can_delete: can(viewer, &p, Resource::Robot, Action::Delete),
            perms,
            error: sticky.row_error,
            create_error: sticky.create_error,
            name: sticky.name,
            description: sticky.description,
            duration: sticky.duration,
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

// ---- the secret, shown once ------------------------------------------------

#[derive(Template)]
#[template(path = "robots_secret.html")]
struct SecretPage {
    chrome: Chrome,
    nav: ProjectNav,
    /// "created" or "refreshed".
    what: &'static str,
    login: String,
    secret: String,
}

async fn show_secret(
    s: &AppState,
    viewer: &Viewer,
    project: &str,
    what: &'static str,
    login: String,
    secret: String,
) -> UiResult {
    let (_, nav) = project_nav(s, viewer, project, "robots").await?;
    page(
        viewer,
        &SecretPage {
            chrome: Chrome::new(s, viewer, "projects").await?,
            nav,
            what,
            login,
            secret,
        },
    )
}

#[derive(Deserialize)]
struct NewRobotForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    duration: String,
}

async fn create(
    State(s): State<AppState>,
    Path(project): Path<String>,
    form: Posted<NewRobotForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let (p, _) = project_nav(&s, viewer, &project, "robots").await?;
    let f = &form.value;
    let checked = form.all("perm");
    let spec = parse_access(&checked).and_then(|access| {
        if access.is_empty() {
            return Err("Choose at least one permission for the robot account.".to_owned());
        }
        Ok(RobotSpec {
            name: f.name.trim().to_owned(),
            description: f.description.trim().to_owned(),
            level: "project".into(),
            // empty means never here, as the form says
            duration: Some(parse_duration(&f.duration)?.unwrap_or(-1)),
            disable: false,
            permissions: vec![project_permission(&p.name, access)],
            secret: None,
        })
    });
    let result = match spec {
        Err(m) => Err(CoreError::BadRequest(m)),
        Ok(spec) => s.robots.create(&viewer.subject, spec).await,
    };
    match result {
        Ok(c) => show_secret(&s, viewer, &p.name, "created", c.login_name, c.secret).await,
        Err(e) => {
            let (status, error) = form_error(e)?;
            render(
                &s,
                viewer,
                &project,
                &ListQuery::default(),
                Sticky {
                    create_error: error,
                    name: f.name.clone(),
                    description: f.description.clone(),
                    duration: f.duration.clone(),
                    checked: checked.iter().map(|v| v.to_string()).collect(),
                    row_error: String::new(),
                },
                status,
            )
            .await
        }
    }
}

/// The secret page's "Download as JSON": echoes what was posted (after
/// the CSRF check) as an attachment; nothing is looked up or stored.
async fn download(
    State(s): State<AppState>,
    Path(project): Path<String>,
    form: Posted<DownloadForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    project_nav(&s, viewer, &project, "robots").await?;
    let res = secret_file(&form.value)?;
    Ok(viewer.finish(res))
}

// ---- per robot ---------------------------------------------------------------

/// Robot `id`, which must be one of this project's robots (ids of other
/// projects' robots are "not found" here, whatever the viewer may see).
async fn project_robot(s: &AppState, viewer: &Viewer, p: &Project, id: i64) -> UiResult<Robot> {
    let r = s.robots.get(&viewer.subject, id).await?;
    if r.level != RobotLevel::Project || r.project_id != Some(p.id) {
        return Err(CoreError::NotFound(format!("robot {id}")).into());
    }
    Ok(r)
}

/// Shows the list again with a refused action's message.
async fn refused(s: &AppState, viewer: &Viewer, project: &str, e: UiError) -> UiResult {
    let (status, error) = match e {
        UiError::Core(e) => form_error(e)?,
        e => return Err(e),
    };
    render(
        s,
        viewer,
        project,
        &ListQuery::default(),
        Sticky {
            row_error: error,
            ..Sticky::default()
        },
        status,
    )
    .await
}

async fn refresh(
    State(s): State<AppState>,
    Path((project, id)): Path<(String, String)>,
    form: Posted<serde::de::IgnoredAny>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let id = path_id(&id)?;
    let (p, _) = project_nav(&s, viewer, &project, "robots").await?;
    let result: UiResult<(String, String)> = async {
        let r = project_robot(&s, viewer, &p, id).await?;
        let login = s.robots.login_name(&r).await?;
        let secret = s
            .robots
            .refresh_secret(&viewer.subject, id, None)
            .await?
            .ok_or_else(|| CoreError::internal("a random secret was not returned"))?;
        Ok((login, secret))
    }
    .await;
    match result {
        Ok((login, secret)) => show_secret(&s, viewer, &p.name, "refreshed", login, secret).await,
        Err(e) => refused(&s, viewer, &project, e).await,
    }
}

async fn toggle(
    State(s): State<AppState>,
    Path((project, id)): Path<(String, String)>,
    form: Posted<serde::de::IgnoredAny>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let id = path_id(&id)?;
    let (p, _) = project_nav(&s, viewer, &project, "robots").await?;
    let result: UiResult<(String, bool)> = async {
        let r = project_robot(&s, viewer, &p, id).await?;
        let login = s.robots.login_name(&r).await?;
        let spec = spec_with_disable(&r, &login, !r.disabled);
        let disabled = spec.disable;
        s.robots.update(&viewer.subject, id, spec).await?;
        Ok((login, disabled))
    }
    .await;
    match result {
        Ok((login, disabled)) => Ok(done(
            &format!("/harbor/projects/{}/robots", p.name),
            &format!("{login} {}.", if disabled { "disabled" } else { "enabled" }),
        )),
        Err(e) => refused(&s, viewer, &project, e).await,
    }
}

async fn delete(
    State(s): State<AppState>,
    Path((project, id)): Path<(String, String)>,
    form: Posted<serde::de::IgnoredAny>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let id = path_id(&id)?;
    let (p, _) = project_nav(&s, viewer, &project, "robots").await?;
    let result: UiResult<String> = async {
        let r = project_robot(&s, viewer, &p, id).await?;
        let login = s.robots.login_name(&r).await?;
        s.robots.delete(&viewer.subject, id).await?;
        Ok(login)
    }
    .await;
    match result {
        Ok(login) => Ok(done(
            &format!("/harbor/projects/{}/robots", p.name),
            &format!("{login} deleted."),
        )),
        Err(e) => refused(&s, viewer, &project, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_permission() {
        let a = parse_access(&["repository:push", "repository:pull"]).unwrap();
        let p = project_permission("library", a);
        assert_eq!(
            (p.kind.as_str(), p.namespace.as_str(), p.access.len()),
            ("project", "library", 2)
        );
    }

    #[test]
    fn element_ids() {
        assert_eq!(perm_id("repository", "push"), "perm-repository-push");
        assert_eq!(
            perm_id("artifact-addition", "read"),
            "perm-artifact-addition-read"
        );
        assert_eq!(perm_id("a b\"<", "x"), "perm-a-b---x");
    }

    fn nav() -> ProjectNav {
        ProjectNav {
            name: "library".into(),
            id: 1,
            public: true,
            active: "robots",
            role: "Project Admin",
            can_members: true,
            can_robots: true,
            can_logs: true,
            can_config: true,
            can_policy: false,
        }
    }

    const XSS: &str = "<script>alert(1)</script>\"'&";

    #[test]
    fn hostile_text_is_escaped() {
        let html = RobotsPage {
            chrome: Chrome::bare(),
            nav: nav(),
            q: XSS.into(),
            rows: vec![RobotRow {
                id: 1,
                login: XSS.into(),
                enabled: true,
                expired: false,
                perm_count: 1,
                perms: vec![XSS.into()],
                created: "c".into(),
                expires: "never".into(),
                description: XSS.into(),
                creator: XSS.into(),
            }],
            pager: Pager::default(),
            can_create: true,
            can_update: true,
            can_delete: true,
            perms: vec![PermChoice {
                id: perm_id("repository", "push"),
                value: "repository:push".into(),
                resource: "repository".into(),
                action: "push".into(),
                checked: true,
            }],
            error: XSS.into(),
            create_error: XSS.into(),
            name: XSS.into(),
            description: XSS.into(),
            duration: XSS.into(),
        }
        .render()
        .unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("\"'&"), "{html}");
        assert!(html.contains("id=\"robots\""));
        assert!(html.contains("id=\"perm-repository-push\""));
        let html = SecretPage {
            chrome: Chrome::bare(),
            nav: nav(),
            what: "created",
            login: XSS.into(),
            secret: XSS.into(),
        }
        .render()
        .unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("id=\"robot-secret\""));
        assert!(html.contains("id=\"robot-login\""));
    }

    #[test]
    fn access_of_a_robot() {
        let r = crate::pages::robot_form::test_robot(
            RobotLevel::Project,
            "library+ci",
            vec![project_permission(
                "library",
                parse_access(&["repository:pull"]).unwrap(),
            )],
        );
        assert_eq!(access_list(&r), vec!["repository:pull".to_owned()]);
    }
}
