//! Administration for system admins: users, every robot account (with
//! system robots created here), and the system configuration. Each page
//! asks the domain first with the viewer's subject, so a non-admin gets the
//! domain's refusal (403), never a decision made here.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use berth_api::AppState;
use berth_core::access::Visibility;
use berth_core::model::{Robot, RobotPermission};
use berth_core::query::{Page, ProjectQuery, RobotQuery, TextMatch, UserQuery};
use berth_core::robots::RobotSpec;
use berth_core::settings::SystemConfig;
use berth_core::users::{CreateUser, Origin};
use serde::Deserialize;
use serde_json::{json, Value};

use super::robot_form::{
    expires_text, parse_access, parse_duration, secret_file, spec_with_disable, DownloadForm,
};
use crate::error::{form_error, UiResult};
use crate::session::{Posted, Viewer};
use crate::view::{banner_text, done, page_status, url, Chrome, ListQuery, Pager, PAGE_SIZE};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/harbor/admin",
            get(|| async { axum::response::Redirect::to("/harbor/admin/users") }),
        )
        .route("/harbor/admin/users", get(users).post(create_user))
        .route("/harbor/admin/users/{id}/admin", post(set_admin))
        .route("/harbor/admin/users/{id}/password", post(reset_password))
        .route("/harbor/admin/users/{id}/delete", post(delete_user))
        .route("/harbor/admin/robots", get(robots).post(create_robot))
        .route("/harbor/admin/robots/download", post(download_secret))
        .route("/harbor/admin/robots/{id}/refresh", post(refresh_robot))
        .route("/harbor/admin/robots/{id}/disable", post(disable_robot))
        .route("/harbor/admin/robots/{id}/delete", post(delete_robot))
        .route(
            "/harbor/admin/configuration",
            get(configuration).post(save_configuration),
        )
}

/// Where a row action returns to: the list with its search and page.
#[derive(Deserialize, Default, Clone)]
struct Back {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: String,
}

impl Back {
    fn list_query(&self) -> ListQuery {
        ListQuery {
            q: self.q.clone(),
            page: self.page.trim().parse().ok(),
        }
    }
}

/// The list URL to come back to (`page` kept only when it is a number > 1).
fn back_url(path: &str, q: &str, page: &str) -> String {
    let page = page
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|p| *p > 1)
        .map(|p| p.to_string())
        .unwrap_or_default();
    url(path, &[("q", q.trim()), ("page", &page)])
}

/// The page number as a hidden field keeps it ("" for the first page).
fn page_field(page: Page) -> String {
    if page.number > 1 {
        page.number.to_string()
    } else {
        String::new()
    }
}

// ---- users ------------------------------------------------------------------

struct UserRow {
    id: i64,
    username: String,
    email: String,
    realname: String,
    admin: bool,
    created: String,
    is_self: bool,
}

/// What the "New user" form shows again after a mistake (never passwords).
#[derive(Default, Clone)]
struct NewUserValues {
    username: String,
    email: String,
    realname: String,
    comment: String,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    chrome: Chrome,
    admin_tab: &'static str,
    q: String,
    page_no: String,
    rows: Vec<UserRow>,
    pager: Pager,
    error: String,
    new_user: NewUserValues,
}

async fn render_users(
    s: &AppState,
    viewer: &Viewer,
    q: &ListQuery,
    error: String,
    new_user: NewUserValues,
) -> UiResult {
    viewer.require()?;
    let page_no = q.page();
    let term = q.term().to_owned();
    let query = UserQuery {
        username: (!term.is_empty()).then(|| TextMatch::Fuzzy(term.clone())),
        ..Default::default()
    };
    // The domain refuses anyone but a system admin here.
    let (users, total) = s.users.list(&viewer.subject, &query, page_no).await?;
    let me = viewer.subject.user_id();
    let rows: Vec<UserRow> = users
        .into_iter()
        .map(|u| UserRow {
            is_self: me == Some(u.id),
            id: u.id,
            username: u.username,
            email: u.email,
            realname: u.realname,
            admin: u.sysadmin,
            created: crate::view::time(Some(u.creation_time)),
        })
        .collect();
    let base = url("/harbor/admin/users", &[("q", &term)]);
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page_status(
        viewer,
        status,
        &UsersPage {
            chrome: Chrome::new(s, viewer, "admin").await?,
            admin_tab: "users",
            q: term,
            page_no: page_field(page_no),
            pager: Pager::new(&base, page_no, rows.len(), total),
            rows,
            error,
            new_user,
        },
    )
}

async fn users(State(s): State<AppState>, viewer: Viewer, Query(q): Query<ListQuery>) -> UiResult {
    render_users(&s, &viewer, &q, String::new(), NewUserValues::default()).await
}

#[derive(Deserialize)]
struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    realname: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn create_user(State(s): State<AppState>, form: Posted<NewUserForm>) -> UiResult {
    form.viewer.require()?;
    let f = &form.value;
    let shown = NewUserValues {
        username: f.username.clone(),
        email: f.email.clone(),
        realname: f.realname.clone(),
        comment: f.comment.clone(),
    };
    let error = if f.password != f.confirm {
        "The passwords do not match.".to_owned()
    } else {
        let req = CreateUser {
            username: f.username.trim().to_owned(),
            email: f.email.trim().to_owned(),
            realname: f.realname.trim().to_owned(),
            comment: f.comment.clone(),
            password: f.password.clone(),
        };
        match s.users.create(&form.viewer.subject, req, Origin::Api).await {
            Ok(u) => {
                return Ok(done(
                    &url("/harbor/admin/users", &[("q", &u.username)]),
                    &format!("User {} created.", u.username),
                ))
            }
            Err(e) => form_error(e)?.1,
        }
    };
    render_users(&s, &form.viewer, &ListQuery::default(), error, shown).await
}

#[derive(Deserialize)]
struct AdminFlagForm {
    #[serde(default)]
    sysadmin: String,
    #[serde(flatten)]
    back: Back,
}

async fn set_admin(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    form: Posted<AdminFlagForm>,
) -> UiResult {
    form.viewer.require()?;
    let f = &form.value;
    let flag = f.sysadmin == "true";
    let user = s.users.get(&form.viewer.subject, id).await?;
    match s.users.set_sysadmin(&form.viewer.subject, id, flag).await {
        Ok(()) => Ok(done(
            &back_url("/harbor/admin/users", &f.back.q, &f.back.page),
            &if flag {
                format!("{} is now a system admin.", user.username)
            } else {
                format!("{} is no longer a system admin.", user.username)
            },
        )),
        Err(e) => {
            let m = form_error(e)?.1;
            render_users(
                &s,
                &form.viewer,
                &f.back.list_query(),
                m,
                NewUserValues::default(),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct ResetPasswordForm {
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm: String,
    #[serde(flatten)]
    back: Back,
}

async fn reset_password(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    form: Posted<ResetPasswordForm>,
) -> UiResult {
    form.viewer.require()?;
    let f = &form.value;
    let user = s.users.get(&form.viewer.subject, id).await?;
    let error = if f.new_password != f.confirm {
        "The passwords do not match.".to_owned()
    } else {
        match s
            .users
            .change_password(&form.viewer.subject, id, None, &f.new_password)
            .await
        {
            Ok(()) => {
                return Ok(done(
                    &back_url("/harbor/admin/users", &f.back.q, &f.back.page),
                    &format!("The password of {} was reset.", user.username),
                ))
            }
            Err(e) => form_error(e)?.1,
        }
    };
    render_users(
        &s,
        &form.viewer,
        &f.back.list_query(),
        format!("{}: {error}", user.username),
        NewUserValues::default(),
    )
    .await
}

async fn delete_user(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    form: Posted<Back>,
) -> UiResult {
    form.viewer.require()?;
    let f = &form.value;
    let user = s.users.get(&form.viewer.subject, id).await?;
    match s.users.delete(&form.viewer.subject, id).await {
        Ok(()) => Ok(done(
            &back_url("/harbor/admin/users", &f.q, &f.page),
            &format!("User {} deleted.", user.username),
        )),
        Err(e) => {
            let m = form_error(e)?.1;
            render_users(
                &s,
                &form.viewer,
                &f.list_query(),
                m,
                NewUserValues::default(),
            )
            .await
        }
    }
}

// ---- robots -----------------------------------------------------------------

struct RobotRow {
    id: i64,
    login: String,
    description: String,
    level: &'static str,
    projects: String,
    enabled: bool,
    expires: String,
    /// "namespace: resource:action, …" per permission entry.
    permissions: Vec<String>,
    access_count: usize,
}

/// One checkbox of a checklist.
struct Choice {
    id: String,
    value: String,
    label: String,
    checked: bool,
}

/// A secret shown this once.
struct ShownSecret {
    /// "created" or "refreshed".
    what: &'static str,
    name: String,
    secret: String,
}

/// What the "New system robot" form shows (again).
#[derive(Default, Clone)]
struct RobotValues {
    name: String,
    description: String,
    duration: String,
    sysperm: Vec<String>,
    projperm: Vec<String>,
    project: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin_robots.html")]
struct RobotsPage {
    chrome: Chrome,
    admin_tab: &'static str,
    page_no: String,
    rows: Vec<RobotRow>,
    pager: Pager,
    error: String,
    shown: Option<ShownSecret>,
    form: RobotValues,
    sysperms: Vec<Choice>,
    projperms: Vec<Choice>,
    projects: Vec<Choice>,
}

/// `repository:pull` → an element id `sysperm-repository-pull`.
fn choice_id(prefix: &str, value: &str) -> String {
    let tail: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{prefix}-{tail}")
}

fn choices(prefix: &str, perms: &[(String, String)], checked: &[String]) -> Vec<Choice> {
    perms
        .iter()
        .map(|(r, a)| {
            let value = format!("{r}:{a}");
            Choice {
                id: choice_id(prefix, &value),
                label: format!("{r}: {a}"),
                checked: checked.contains(&value),
                value,
            }
        })
        .collect()
}

/// The projects a robot covers: its own project, the named ones, or all.
fn projects_covered(r: &Robot) -> String {
    let names: Vec<&str> = r
        .permissions
        .iter()
        .filter(|p| p.kind == "project")
        .map(|p| p.namespace.as_str())
        .collect();
    if names.contains(&"*") {
        "all projects".into()
    } else if names.is_empty() {
        "—".into()
    } else {
        names.join(", ")
    }
}

/// The permissions of a system robot: the system ones (namespace "/") and
/// the project ones applied to each chosen project ("*" covers them all).
fn build_permissions(
    sysperm: &[&str],
    projects: &[&str],
    projperm: &[&str],
) -> Result<Vec<RobotPermission>, String> {
    let mut out = vec![];
    let system = parse_access(sysperm)?;
    if !system.is_empty() {
        out.push(RobotPermission {
            kind: "system".into(),
            namespace: "/".into(),
            access: system,
            project_id: None,
        });
    }
    let project_access = parse_access(projperm)?;
    let mut names: Vec<&str> = vec![];
    for p in projects.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        if !names.contains(&p) {
            names.push(p);
        }
    }
    if names.contains(&"*") {
        names = vec!["*"];
    }
    match (names.is_empty(), project_access.is_empty()) {
        (false, true) => {
            return Err("Choose at least one project permission for the chosen projects.".into())
        }
        (true, false) => {
            return Err("Choose the projects that the project permissions apply to.".into())
        }
        _ => {}
    }
    for n in names {
        out.push(RobotPermission {
            kind: "project".into(),
            namespace: n.to_owned(),
            access: project_access.clone(),
            project_id: None,
        });
    }
    Ok(out)
}

/// Every project the viewer can see, by name (at most 1000).
async fn project_names(s: &AppState, viewer: &Viewer) -> UiResult<Vec<String>> {
    let mut names = vec![];
    for n in 1..=10 {
        let query = ProjectQuery {
            name: None,
            public: None,
            owner: None,
            visibility: Visibility::All,
            sort: vec![],
        };
        let (projects, total) = s
            .catalog
            .list_projects(&viewer.subject, query, Page::new(n, Page::MAX_SIZE))
            .await?;
        let got = projects.len();
        names.extend(projects.into_iter().map(|p| p.name));
        if got == 0 || names.len() as i64 >= total {
            break;
        }
    }
    names.sort();
    Ok(names)
}

async fn render_robots(
    s: &AppState,
    viewer: &Viewer,
    page_no: Page,
    error: String,
    shown: Option<ShownSecret>,
    form: RobotValues,
) -> UiResult {
    viewer.require()?;
    // Every robot, system and project level: the domain allows this only
    // to those who may manage system robots.
    let (robots, total) = s
        .robots
        .list(&viewer.subject, None, RobotQuery::default(), page_no)
        .await?;
    let (system, project) = s.robots.grantable_permissions(&viewer.subject)?;
    let now = berth_core::clock::now();
    let mut rows = Vec::with_capacity(robots.len());
    for r in &robots {
        rows.push(RobotRow {
            id: r.id,
            login: s.robots.login_name(r).await?,
            description: r.description.clone(),
            level: r.level.as_str(),
            projects: projects_covered(r),
            enabled: !r.disabled,
            expires: expires_text(r.expires_at, now),
            permissions: r
                .permissions
                .iter()
                .map(|p| {
                    let acc: Vec<String> = p
                        .access
                        .iter()
                        .map(|a| format!("{}:{}", a.resource, a.action))
                        .collect();
                    let ns = if p.kind == "system" {
                        "system".to_owned()
                    } else if p.namespace == "*" {
                        "all projects".to_owned()
                    } else {
                        p.namespace.clone()
                    };
                    format!("{ns}: {}", acc.join(", "))
                })
                .collect(),
            access_count: r.permissions.iter().map(|p| p.access.len()).sum(),
        });
    }
    let mut projects = vec![Choice {
        id: "robot-project-all".into(),
        value: "*".into(),
        label: "All projects (also those created later)".into(),
        checked: form.project.iter().any(|p| p == "*"),
    }];
    for name in project_names(s, viewer).await? {
        projects.push(Choice {
            id: choice_id("robot-project", &name),
            checked: form.project.contains(&name),
            label: name.clone(),
            value: name,
        });
    }
    let mut form = form;
    if form.duration.is_empty() {
        form.duration = s.config.current().await?.robot_token_duration.to_string();
    }
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page_status(
        viewer,
        status,
        &RobotsPage {
            chrome: Chrome::new(s, viewer, "admin").await?,
            admin_tab: "robots",
            page_no: page_field(page_no),
            pager: Pager::new("/harbor/admin/robots", page_no, rows.len(), total),
            rows,
            error,
            shown,
            sysperms: choices("sysperm", &system, &form.sysperm),
            projperms: choices("projperm", &project, &form.projperm),
            projects,
            form,
        },
    )
}

fn robots_page(page: &str) -> Page {
    Page::new(page.trim().parse().unwrap_or(1), PAGE_SIZE)
}

async fn robots(State(s): State<AppState>, viewer: Viewer, Query(q): Query<ListQuery>) -> UiResult {
    render_robots(
        &s,
        &viewer,
        q.page(),
        String::new(),
        None,
        RobotValues::default(),
    )
    .await
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

async fn create_robot(State(s): State<AppState>, form: Posted<NewRobotForm>) -> UiResult {
    form.viewer.require()?;
    let f = &form.value;
    let sysperm = form.all("sysperm");
    let projperm = form.all("projperm");
    let project = form.all("project");
    let shown_form = RobotValues {
        name: f.name.clone(),
        description: f.description.clone(),
        duration: f.duration.clone(),
        sysperm: sysperm.iter().map(|v| v.to_string()).collect(),
        projperm: projperm.iter().map(|v| v.to_string()).collect(),
        project: project.iter().map(|v| v.to_string()).collect(),
    };
    let spec = parse_duration(&f.duration).and_then(|duration| {
        Ok(RobotSpec {
            name: f.name.trim().to_owned(),
            description: f.description.trim().to_owned(),
            level: "system".into(),
            duration,
            disable: false,
            permissions: build_permissions(&sysperm, &project, &projperm)?,
            secret: None,
        })
    });
    let error = match spec {
        Err(m) => m,
        Ok(spec) => match s.robots.create(&form.viewer.subject, spec).await {
            Ok(c) => {
                let shown = ShownSecret {
                    what: "created",
                    name: c.login_name,
                    secret: c.secret,
                };
                return render_robots(
                    &s,
                    &form.viewer,
                    robots_page(""),
                    String::new(),
                    Some(shown),
                    RobotValues::default(),
                )
                .await;
            }
            Err(e) => form_error(e)?.1,
        },
    };
    render_robots(&s, &form.viewer, robots_page(""), error, None, shown_form).await
}

async fn refresh_robot(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    form: Posted<Back>,
) -> UiResult {
    form.viewer.require()?;
    let page_no = robots_page(&form.value.page);
    let robot = s.robots.get(&form.viewer.subject, id).await?;
    let name = s.robots.login_name(&robot).await?;
    let (error, shown) = match s
        .robots
        .refresh_secret(&form.viewer.subject, id, None)
        .await
    {
        Ok(secret) => (
            String::new(),
            Some(ShownSecret {
                what: "refreshed",
                name,
                secret: secret.unwrap_or_default(),
            }),
        ),
        Err(e) => (format!("{name}: {}", form_error(e)?.1), None),
    };
    render_robots(
        &s,
        &form.viewer,
        page_no,
        error,
        shown,
        RobotValues::default(),
    )
    .await
}

#[derive(Deserialize)]
struct DisableForm {
    #[serde(default)]
    disable: String,
    #[serde(flatten)]
    back: Back,
}

async fn disable_robot(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    form: Posted<DisableForm>,
) -> UiResult {
    form.viewer.require()?;
    let f = &form.value;
    let robot = s.robots.get(&form.viewer.subject, id).await?;
    let name = s.robots.login_name(&robot).await?;
    let disable = f.disable == "true";
    match s
        .robots
        .update(
            &form.viewer.subject,
            id,
            spec_with_disable(&robot, &robot.name, disable),
        )
        .await
    {
        Ok(()) => Ok(done(
            &back_url("/harbor/admin/robots", "", &f.back.page),
            &if disable {
                format!("Robot {name} disabled.")
            } else {
                format!("Robot {name} enabled.")
            },
        )),
        Err(e) => {
            let m = form_error(e)?.1;
            render_robots(
                &s,
                &form.viewer,
                robots_page(&f.back.page),
                format!("{name}: {m}"),
                None,
                RobotValues::default(),
            )
            .await
        }
    }
}

async fn delete_robot(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    form: Posted<Back>,
) -> UiResult {
    form.viewer.require()?;
    let f = &form.value;
    let robot = s.robots.get(&form.viewer.subject, id).await?;
    let name = s.robots.login_name(&robot).await?;
    match s.robots.delete(&form.viewer.subject, id).await {
        Ok(()) => Ok(done(
            &back_url("/harbor/admin/robots", "", &f.page),
            &format!("Robot {name} deleted."),
        )),
        Err(e) => {
            let m = form_error(e)?.1;
            render_robots(
                &s,
                &form.viewer,
                robots_page(&f.page),
                format!("{name}: {m}"),
                None,
                RobotValues::default(),
            )
            .await
        }
    }
}

/// Echoes the posted name and secret as a JSON file (after the CSRF check
/// `Posted` makes); nothing is looked up.
async fn download_secret(form: Posted<DownloadForm>) -> UiResult {
    form.viewer.require()?;
    secret_file(&form.value)
}

// ---- configuration ------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_configuration.html")]
struct ConfigPage {
    chrome: Chrome,
    admin_tab: &'static str,
    auth_mode: String,
    self_registration: bool,
    project_creation: String,
    read_only: bool,
    banner: String,
    error: String,
}

async fn configuration(State(s): State<AppState>, viewer: Viewer) -> UiResult {
    viewer.require()?;
    // The domain refuses anyone but a system admin here.
    s.config.items(&viewer.subject).await?;
    let cfg = s.config.current().await?;
    page_status(
        &viewer,
        StatusCode::OK,
        &ConfigPage {
            chrome: Chrome::new(&s, &viewer, "admin").await?,
            admin_tab: "configuration",
            auth_mode: cfg.auth_mode.clone(),
            self_registration: cfg.self_registration,
            project_creation: cfg.project_creation_restriction.clone(),
            read_only: cfg.read_only,
            banner: banner_text(&cfg.banner_message),
            error: String::new(),
        },
    )
}

#[derive(Deserialize, Default)]
struct ConfigForm {
    /// Checkboxes: absent means off.
    #[serde(default)]
    self_registration: Option<String>,
    #[serde(default)]
    read_only: Option<String>,
    /// Absent or empty: unchanged.
    #[serde(default)]
    project_creation_restriction: Option<String>,
    /// Absent: unchanged; empty: no banner.
    #[serde(default)]
    banner_message: Option<String>,
}

fn checked(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| v != "false")
}

/// The stored banner for `text`: Harbor's JSON form (`{"message":…}`) is
/// kept with its other fields when the current value has it.
fn banner_value(current_raw: &str, text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    match serde_json::from_str::<Value>(current_raw) {
        Ok(Value::Object(mut o)) if o.contains_key("message") => {
            o.insert("message".into(), Value::String(text.to_owned()));
            Value::Object(o).to_string()
        }
        _ => text.to_owned(),
    }
}

/// The keys the form changes, with the values `Settings::update` takes.
fn config_changes(cur: &SystemConfig, f: &ConfigForm) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let sr = checked(&f.self_registration);
    if sr != cur.self_registration {
        out.insert("self_registration".into(), json!(sr));
    }
    let ro = checked(&f.read_only);
    if ro != cur.read_only {
        out.insert("read_only".into(), json!(ro));
    }
    if let Some(p) = f
        .project_creation_restriction
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if p != cur.project_creation_restriction {
            out.insert("project_creation_restriction".into(), json!(p));
        }
    }
    if let Some(text) = &f.banner_message {
        let text = text.trim();
        if text != banner_text(&cur.banner_message) {
            out.insert(
                "banner_message".into(),
                json!(banner_value(&cur.banner_message, text)),
            );
        }
    }
    out
}

async fn save_configuration(State(s): State<AppState>, form: Posted<ConfigForm>) -> UiResult {
    form.viewer.require()?;
    let f = &form.value;
    let cur = s.config.current().await?;
    let changes = config_changes(&cur, f);
    let error = match s.config.update(&form.viewer.subject, &changes).await {
        Ok(()) => {
            return Ok(done(
                "/harbor/admin/configuration",
                if changes.is_empty() {
                    "Nothing to save: the configuration is unchanged."
                } else {
                    "Configuration saved."
                },
            ))
        }
        Err(e) => form_error(e)?.1,
    };
    // Shown again as submitted; the domain still decides who sees it.
    s.config.items(&form.viewer.subject).await?;
    page_status(
        &form.viewer,
        StatusCode::BAD_REQUEST,
        &ConfigPage {
            chrome: Chrome::new(&s, &form.viewer, "admin").await?,
            admin_tab: "configuration",
            auth_mode: cur.auth_mode.clone(),
            self_registration: checked(&f.self_registration),
            project_creation: f
                .project_creation_restriction
                .clone()
                .unwrap_or_else(|| cur.project_creation_restriction.clone()),
            read_only: checked(&f.read_only),
            banner: f
                .banner_message
                .clone()
                .unwrap_or_else(|| banner_text(&cur.banner_message)),
            error,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::model::{RobotAccess, RobotLevel};

    fn robot(perms: Vec<RobotPermission>) -> Robot {
        crate::pages::robot_form::test_robot(RobotLevel::System, "ci", perms)
    }

    fn perm(kind: &str, ns: &str) -> RobotPermission {
        RobotPermission {
            kind: kind.into(),
            namespace: ns.into(),
            access: vec![RobotAccess {
                resource: "repository".into(),
                action: "pull".into(),
                effect: None,
            }],
            project_id: None,
        }
    }

    #[test]
    fn permissions_of_a_system_robot() {
        let p =
            build_permissions(&["catalog:read"], &["a", "b", "a"], &["repository:pull"]).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(
            (p[0].kind.as_str(), p[0].namespace.as_str()),
            ("system", "/")
        );
        assert_eq!(
            (p[1].kind.as_str(), p[1].namespace.as_str()),
            ("project", "a")
        );
        assert_eq!(p[2].namespace, "b");
        let all = build_permissions(&[], &["a", "*"], &["repository:pull"]).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].namespace, "*");
        assert!(build_permissions(&[], &["a"], &[]).is_err());
        assert!(build_permissions(&[], &[], &["repository:pull"]).is_err());
        assert!(build_permissions(&[], &[], &[]).unwrap().is_empty());
    }

    #[test]
    fn robot_rows() {
        assert_eq!(projects_covered(&robot(vec![perm("system", "/")])), "—");
        assert_eq!(
            projects_covered(&robot(vec![perm("project", "a"), perm("project", "b")])),
            "a, b"
        );
        assert_eq!(
            projects_covered(&robot(vec![perm("project", "a"), perm("project", "*")])),
            "all projects"
        );
        let r = robot(vec![perm("project", "a")]);
        let s = spec_with_disable(&r, &r.name, true);
        assert!(s.disable);
        assert_eq!(
            (
                s.name.as_str(),
                s.level.as_str(),
                s.duration,
                s.description.as_str()
            ),
            ("ci", "system", Some(30), "d")
        );
        assert_eq!(s.permissions, r.permissions);
        assert_eq!(
            choice_id("sysperm", "scan-all:read"),
            "sysperm-scan-all-read"
        );
        assert_eq!(
            choice_id("robot-project", "team.web"),
            "robot-project-team.web"
        );
    }

    #[test]
    fn back_urls() {
        assert_eq!(back_url("/l", "", ""), "/l");
        assert_eq!(back_url("/l", "a b", "2"), "/l?q=a+b&page=2");
        assert_eq!(back_url("/l", "", "1"), "/l");
        assert_eq!(back_url("/l", "", "x"), "/l");
        assert_eq!(page_field(Page::new(3, 25)), "3");
        assert_eq!(page_field(Page::new(1, 25)), "");
    }

    #[test]
    fn configuration_changes() {
        let cur = SystemConfig::default();
        // Nothing sent: checkboxes off (as they are), the rest unchanged.
        assert!(config_changes(&cur, &ConfigForm::default()).is_empty());
        let f = ConfigForm {
            self_registration: Some("true".into()),
            read_only: None,
            project_creation_restriction: Some("adminonly".into()),
            banner_message: Some(" Maintenance at 5 ".into()),
        };
        let c = config_changes(&cur, &f);
        assert_eq!(c.get("self_registration"), Some(&json!(true)));
        assert_eq!(c.get("read_only"), None);
        assert_eq!(
            c.get("project_creation_restriction"),
            Some(&json!("adminonly"))
        );
        assert_eq!(c.get("banner_message"), Some(&json!("Maintenance at 5")));
        // Turning read-only off: the checkbox is absent.
        let on = SystemConfig {
            read_only: true,
            ..SystemConfig::default()
        };
        let c = config_changes(&on, &ConfigForm::default());
        assert_eq!(c.get("read_only"), Some(&json!(false)));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn banners() {
        assert_eq!(banner_value("", "hi"), "hi");
        assert_eq!(banner_value("old", ""), "");
        let v: Value = serde_json::from_str(&banner_value(
            r#"{"message":"old","type":"warning"}"#,
            "new",
        ))
        .unwrap();
        assert_eq!(v, json!({"message": "new", "type": "warning"}));
        // An unchanged Harbor banner is not rewritten.
        let cur = SystemConfig {
            banner_message: r#"{"message":"hi","type":"info"}"#.into(),
            ..SystemConfig::default()
        };
        let f = ConfigForm {
            banner_message: Some("hi".into()),
            ..ConfigForm::default()
        };
        assert!(config_changes(&cur, &f).is_empty());
    }
}
