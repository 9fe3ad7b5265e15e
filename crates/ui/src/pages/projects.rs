//! The projects list, "New project", and a project's Summary tab with the
//! Connect panel, one-click push/pull robots and storage requests.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use berth_api::AppState;
use berth_core::access::{Action, Resource, Visibility};
use berth_core::catalog::{CreateProject, ProjectKey};
use berth_core::model::{RobotAccess, RobotPermission};
use berth_core::query::{ProjectQuery, TextMatch};
use berth_core::robots::RobotSpec;
use berth_core::CoreError;
use serde::Deserialize;

use super::storage_requests::{project_box, RequestForm, StorageBox};
use super::{can, highest_role, project_nav, ProjectNav};
use crate::error::UiResult;
use crate::session::{Posted, Viewer};
use crate::view::{done, page, page_status, url, Chrome, Pager, Quota};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/harbor/projects", get(list).post(create))
        .route("/harbor/projects/new", get(new_form))
        .route("/harbor/projects/{project}", get(summary))
        .route(
            "/harbor/projects/{project}/connect-robots",
            post(connect_robots),
        )
}

struct ProjectRow {
    name: String,
    public: bool,
    role: &'static str,
    repo_count: i64,
    quota: Quota,
    creation: String,
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    chrome: Chrome,
    q: String,
    filter: String,
    rows: Vec<ProjectRow>,
    pager: Pager,
    can_create: bool,
}

#[derive(Deserialize, Default)]
struct ProjectsQuery {
    #[serde(default)]
    q: String,
    /// "", "public" or "private".
    #[serde(default)]
    filter: String,
    #[serde(default)]
    page: Option<u64>,
}

async fn list(
    State(s): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ProjectsQuery>,
) -> UiResult {
    viewer.require()?;
    let page_no = berth_core::query::Page::new(q.page.unwrap_or(1), crate::view::PAGE_SIZE);
    let term = q.q.trim().to_owned();
    let query = ProjectQuery {
        name: (!term.is_empty()).then(|| TextMatch::Fuzzy(term.clone())),
        public: match q.filter.as_str() {
            "public" => Some(true),
            "private" => Some(false),
            _ => None,
        },
        owner: None,
        visibility: Visibility::All,
        sort: vec![],
    };
    let (projects, total) = s
        .catalog
        .list_projects(&viewer.subject, query, page_no)
        .await?;
    let mut rows = Vec::with_capacity(projects.len());
    for p in &projects {
        rows.push(ProjectRow {
            name: p.name.clone(),
            public: p.public,
            role: highest_role(&viewer, p.id),
            repo_count: p.repo_count,
            quota: Quota::new(p.storage_used, p.storage_limit),
            creation: crate::view::time(Some(p.creation_time)),
        });
    }
    let cfg = s.config.current().await?;
    let base = url("/harbor/projects", &[("q", &term), ("filter", &q.filter)]);
    page(
        &viewer,
        &ProjectsPage {
            chrome: Chrome::new(&s, &viewer, "projects").await?,
            q: term,
            filter: q.filter.clone(),
            pager: Pager::new(&base, page_no, rows.len(), total),
            rows,
            can_create: viewer.subject.is_sysadmin()
                || cfg.project_creation_restriction != "adminonly",
        },
    )
}

#[derive(Template)]
#[template(path = "project_new.html")]
struct NewProjectPage {
    chrome: Chrome,
    name: String,
    public: bool,
    limit: String,
    unit: String,
    error: String,
    admin: bool,
}

async fn new_form(State(s): State<AppState>, viewer: Viewer) -> UiResult {
    viewer.require()?;
    page(
        &viewer,
        &NewProjectPage {
            chrome: Chrome::new(&s, &viewer, "projects").await?,
            name: String::new(),
            public: false,
            limit: "-1".into(),
            unit: "GiB".into(),
            error: String::new(),
            admin: viewer.subject.is_sysadmin(),
        },
    )
}

#[derive(Deserialize)]
struct NewProjectForm {
    name: String,
    #[serde(default)]
    public: Option<String>,
    #[serde(default)]
    limit: String,
    #[serde(default)]
    unit: String,
}

/// "10" + "GiB" → bytes; "-1" or empty → unlimited.
fn parse_limit(limit: &str, unit: &str) -> Result<Option<i64>, String> {
    let limit = limit.trim();
    if limit.is_empty() {
        return Ok(None);
    }
    let n: i64 = limit
        .parse()
        .map_err(|_| "The storage limit must be a whole number, or -1 for unlimited.".to_owned())?;
    if n == -1 {
        return Ok(Some(-1));
    }
    let mult: i64 = match unit {
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return Err("The storage unit must be MiB, GiB or TiB.".into()),
    };
    n.checked_mul(mult)
        .filter(|b| *b > 0)
        .map(Some)
        .ok_or_else(|| "The storage limit must be -1 (unlimited) or a positive size.".into())
}

async fn create(State(s): State<AppState>, form: Posted<NewProjectForm>) -> UiResult {
    form.viewer.require()?;
    let f = &form.value;
    let public = f.public.is_some();
    let admin = form.viewer.subject.is_sysadmin();
    let result = match parse_limit(&f.limit, &f.unit) {
        Err(m) => Err(CoreError::BadRequest(m)),
        Ok(limit) => {
            s.catalog
                .create_project(
                    &form.viewer.subject,
                    CreateProject {
                        name: f.name.trim().to_owned(),
                        public: Some(public),
                        metadata: Default::default(),
                        storage_limit: if admin { limit } else { None },
                        registry_id: None,
                    },
                )
                .await
        }
    };
    match result {
        Ok(p) => Ok(done(
            &format!("/harbor/projects/{}", p.name),
            "Project created.",
        )),
        Err(CoreError::BadRequest(m)) | Err(CoreError::Conflict(m)) | Err(CoreError::Denied(m)) => {
            page_status(
                &form.viewer,
                StatusCode::BAD_REQUEST,
                &NewProjectPage {
                    chrome: Chrome::new(&s, &form.viewer, "projects").await?,
                    name: f.name.clone(),
                    public,
                    limit: f.limit.clone(),
                    unit: f.unit.clone(),
                    error: m,
                    admin,
                },
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// One command of the Connect panel.
struct Command {
    id: &'static str,
    label: &'static str,
    text: String,
}

#[derive(Template)]
#[template(path = "project_summary.html")]
struct SummaryPage {
    chrome: Chrome,
    nav: ProjectNav,
    repo_count: i64,
    artifact_count: i64,
    members: Vec<(&'static str, i64)>,
    quota: Quota,
    registry: String,
    docker: Vec<Command>,
    podman: Vec<Command>,
    helm: Vec<Command>,
    kubectl: Vec<Command>,
    can_robots: bool,
    created: Vec<CreatedSecret>,
    storage: StorageBox,
}

/// A robot secret shown this once.
pub(crate) struct CreatedSecret {
    purpose: &'static str,
    name: String,
    secret: String,
    json: String,
}

fn commands(
    host: &str,
    project: &str,
    pull_user: &str,
    pull_secret: &str,
) -> (Vec<Command>, Vec<Command>, Vec<Command>, Vec<Command>) {
    let image = format!("{host}/{project}/REPOSITORY[:TAG]");
    let docker = vec![
        Command {
            id: "cmd-docker-login",
            label: "Log in",
            text: format!("docker login {host}"),
        },
        Command {
            id: "cmd-docker-tag",
            label: "Tag an image for this project",
            text: format!("docker tag SOURCE_IMAGE[:TAG] {image}"),
        },
        Command {
            id: "cmd-docker-push",
            label: "Push an image to this project",
            text: format!("docker push {image}"),
        },
        Command {
            id: "cmd-docker-pull",
            label: "Pull an image from this project",
            text: format!("docker pull {image}"),
        },
    ];
    let podman = vec![
        Command {
            id: "cmd-podman-login",
            label: "Log in",
            text: format!("podman login {host}"),
        },
        Command {
            id: "cmd-podman-push",
            label: "Push an image to this project",
            text: format!("podman push IMAGE_ID {image}"),
        },
        Command {
            id: "cmd-podman-pull",
            label: "Pull an image from this project",
            text: format!("podman pull {image}"),
        },
    ];
    let helm = vec![
        Command {
            id: "cmd-helm-login",
            label: "Log in",
            text: format!("helm registry login {host}"),
        },
        Command {
            id: "cmd-helm-push",
            label: "Push a chart to this project",
            text: format!("helm push CHART_PACKAGE.tgz oci://{host}/{project}"),
        },
    ];
    let kubectl = vec![Command {
        id: "cmd-kubectl-secret",
        label: "Create an image pull secret",
        text: format!(
            "kubectl create secret docker-registry {project}-pull --docker-server={host} --docker-username='{pull_user}' --docker-password='{pull_secret}'"
        ),
    }];
    (docker, podman, helm, kubectl)
}

/// The Summary tab; `form` is a storage request shown again with its
/// error, answered with `status`.
pub(crate) async fn render_summary(
    s: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    project: &str,
    created: Vec<CreatedSecret>,
    form: RequestForm,
    status: StatusCode,
) -> UiResult {
    let (p, nav) = project_nav(s, viewer, project, "summary").await?;
    let storage = project_box(s, viewer, &p, form).await?;
    let (_, sum) = s
        .catalog
        .project_summary(&viewer.subject, &ProjectKey::Id(p.id))
        .await?;
    let count = |r: berth_core::access::Role| sum.member_counts.get(&r).copied().unwrap_or(0);
    use berth_core::access::Role;
    let host = crate::view::registry_host(s, headers);
    let (pull_user, pull_secret) = created
        .iter()
        .find(|c| c.purpose == "pull")
        .map(|c| (c.name.clone(), c.secret.clone()))
        .unwrap_or_else(|| ("ROBOT_NAME".into(), "ROBOT_SECRET".into()));
    let (docker, podman, helm, kubectl) = commands(&host, &p.name, &pull_user, &pull_secret);
    page_status(
        viewer,
        status,
        &SummaryPage {
            chrome: Chrome::new(s, viewer, "projects").await?,
            repo_count: sum.repo_count,
            artifact_count: sum.artifact_count,
            members: vec![
                ("Project Admins", count(Role::ProjectAdmin)),
                ("Maintainers", count(Role::Maintainer)),
                ("Developers", count(Role::Developer)),
                ("Guests", count(Role::Guest)),
                ("Limited Guests", count(Role::LimitedGuest)),
            ],
            quota: Quota::new(sum.storage_used, p.storage_limit),
            registry: host,
            docker,
            podman,
            helm,
            kubectl,
            can_robots: can(viewer, &p, Resource::Robot, Action::Create),
            created,
            storage,
            nav,
        },
    )
}

async fn summary(
    State(s): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> UiResult {
    render_summary(
        &s,
        &viewer,
        &headers,
        &project,
        vec![],
        RequestForm::default(),
        StatusCode::OK,
    )
    .await
}

/// Creates a push robot and a pull robot for the project and shows both
/// secrets once, with the commands filled in.
async fn connect_robots(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    form: Posted<serde::de::IgnoredAny>,
) -> UiResult {
    let viewer = &form.viewer;
    let (p, _) = project_nav(&s, viewer, &project, "summary").await?;
    let access = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(r, a)| RobotAccess {
                resource: (*r).into(),
                action: (*a).into(),
                effect: None,
            })
            .collect::<Vec<_>>()
    };
    let mut created = vec![];
    for (purpose, acc) in [
        (
            "push",
            access(&[
                ("repository", "push"),
                ("repository", "pull"),
                ("artifact", "read"),
                ("tag", "create"),
            ]),
        ),
        (
            "pull",
            access(&[("repository", "pull"), ("artifact", "read")]),
        ),
    ] {
        // A free name: ci-push, ci-push-2, …
        let mut n = 1;
        let made = loop {
            let name = if n == 1 {
                format!("ci-{purpose}")
            } else {
                format!("ci-{purpose}-{n}")
            };
            let spec = RobotSpec {
                name,
                description: format!("{purpose} robot created from the Connect panel"),
                level: "project".into(),
                duration: Some(-1),
                disable: false,
                permissions: vec![RobotPermission {
                    kind: "project".into(),
                    namespace: p.name.clone(),
                    access: acc.clone(),
                    project_id: None,
                }],
                secret: None,
            };
            match s.robots.create(&viewer.subject, spec).await {
                Ok(c) => break c,
                Err(CoreError::Conflict(_)) if n < 50 => n += 1,
                Err(e) => return Err(e.into()),
            }
        };
        created.push(CreatedSecret {
            purpose,
            json: serde_json::to_string_pretty(
                &serde_json::json!({ "name": made.login_name, "secret": made.secret }),
            )
            .unwrap_or_default(),
            name: made.login_name,
            secret: made.secret,
        });
    }
    render_summary(
        &s,
        viewer,
        &headers,
        &project,
        created,
        RequestForm::default(),
        StatusCode::OK,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(parse_limit("", "GiB"), Ok(None));
        assert_eq!(parse_limit("-1", "GiB"), Ok(Some(-1)));
        assert_eq!(parse_limit("2", "GiB"), Ok(Some(2 << 30)));
        assert!(parse_limit("0", "GiB").is_err());
        assert!(parse_limit("x", "GiB").is_err());
        assert!(parse_limit("1", "PB").is_err());
        assert!(parse_limit("99999999999", "TiB").is_err());
    }
}
