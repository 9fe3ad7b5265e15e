//! A project's Policy tab (tag immutability rules and the tag retention
//! policy, with its runs) and the administration's garbage collection page.
//! Every decision is the domain's: forms call `Immutability`, `Retention`
//! and `Gc` with the viewer's subject; controls are shown with `can`.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use berth_api::AppState;
use berth_core::access::{Action, Resource};
use berth_core::catalog::ProjectKey;
use berth_core::gc::GcParams;
use berth_core::immutable::RuleInput;
use berth_core::model::Project;
use berth_core::query::Page;
use berth_core::retention::{Policy, Rule, Scope, Trigger, TEMPLATES};
use berth_core::schedule::ScheduleSpec;
use berth_core::selectors::Selector;
use berth_core::CoreError;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::members::path_id;
use super::{can, project_nav, ProjectNav};
use crate::error::{form_error, UiResult};
use crate::session::{Posted, Viewer};
use crate::view::{done, page_status, time, Chrome};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/harbor/projects/{project}/policy", get(show))
        .route(
            "/harbor/projects/{project}/policy/immutable",
            post(add_immutable),
        )
        .route(
            "/harbor/projects/{project}/policy/immutable/{id}/toggle",
            post(toggle_immutable),
        )
        .route(
            "/harbor/projects/{project}/policy/immutable/{id}/delete",
            post(delete_immutable),
        )
        .route(
            "/harbor/projects/{project}/policy/retention/rules",
            post(add_retention_rule),
        )
        .route(
            "/harbor/projects/{project}/policy/retention/rules/{index}/delete",
            post(delete_retention_rule),
        )
        .route(
            "/harbor/projects/{project}/policy/retention/schedule",
            post(retention_schedule),
        )
        .route(
            "/harbor/projects/{project}/policy/retention/run",
            post(run_retention),
        )
        .route("/harbor/admin/gc", get(gc_page))
        .route("/harbor/admin/gc/run", post(gc_run))
        .route("/harbor/admin/gc/schedule", post(gc_schedule))
        .route("/harbor/admin/gc/purge-audit", post(purge_audit_run))
}

fn selector(decoration: &str, pattern: &str, untagged: Option<bool>) -> Selector {
    Selector {
        kind: "doublestar".into(),
        decoration: decoration.into(),
        pattern: pattern.trim().into(),
        extras: untagged
            .map(|u| json!({ "untagged": u }).to_string())
            .unwrap_or_default(),
    }
}

fn describe(s: &[Selector]) -> String {
    s.iter()
        .map(|s| format!("{} {}", s.decoration, s.pattern))
        .collect::<Vec<_>>()
        .join(", ")
}

struct ImmutableRow {
    id: i64,
    repos: String,
    tags: String,
    disabled: bool,
}

struct RetentionRow {
    index: usize,
    text: String,
    repos: String,
    tags: String,
    untagged: bool,
}

struct RunRow {
    id: i64,
    status: &'static str,
    dry_run: bool,
    trigger: String,
    started: String,
    retained: i64,
    total: i64,
}

struct TemplateOption {
    id: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    chrome: Chrome,
    nav: ProjectNav,
    error: String,
    can_immutable: bool,
    can_manage_immutable: bool,
    immutable: Vec<ImmutableRow>,
    can_retention: bool,
    can_manage_retention: bool,
    can_run_retention: bool,
    retention_id: i64,
    retention_rules: Vec<RetentionRow>,
    retention_cron: String,
    runs: Vec<RunRow>,
    templates: Vec<TemplateOption>,
}

fn retention_id(p: &Project) -> Option<i64> {
    p.metadata.get("retention_id").and_then(|v| v.parse().ok())
}

async fn render(
    s: &AppState,
    viewer: &Viewer,
    project: &str,
    error: String,
    status: StatusCode,
) -> UiResult {
    let (p, nav) = project_nav(s, viewer, project, "policy").await?;
    let key = ProjectKey::Id(p.id);
    let can_immutable = can(viewer, &p, Resource::ImmutableTag, Action::List);
    let immutable = if can_immutable {
        s.immutability
            .list(&viewer.subject, &key, Page::new(1, 100))
            .await?
            .0
            .into_iter()
            .map(|r| ImmutableRow {
                id: r.id,
                repos: describe(&r.repo_selectors),
                tags: describe(&r.tag_selectors),
                disabled: r.disabled,
            })
            .collect()
    } else {
        vec![]
    };
    let can_retention = can(viewer, &p, Resource::TagRetention, Action::Read);
    let mut retention_rules = vec![];
    let mut retention_cron = String::new();
    let mut runs = vec![];
    let rid = retention_id(&p).unwrap_or(0);
    if can_retention && rid > 0 {
        let policy = s.retention.get(&viewer.subject, rid).await?;
        for (i, r) in policy.rules.iter().enumerate() {
            let param = r
                .params
                .get(&r.template)
                .map(|v| v.to_string())
                .unwrap_or_default();
            let label = TEMPLATES
                .iter()
                .find(|(t, _)| *t == r.template)
                .map(|(_, l)| l.replace('#', &param))
                .unwrap_or_else(|| r.template.clone());
            retention_rules.push(RetentionRow {
                index: i,
                text: label,
                repos: describe(
                    r.scope_selectors
                        .get("repository")
                        .map(Vec::as_slice)
                        .unwrap_or(&[]),
                ),
                tags: describe(&r.tag_selectors),
                untagged: r
                    .tag_selectors
                    .iter()
                    .any(|t| t.extras.contains("\"untagged\":true")),
            });
        }
        retention_cron = policy
            .trigger
            .as_ref()
            .and_then(|t| t.settings.get("cron"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let (executions, _) = s
            .retention
            .executions(&viewer.subject, rid, Page::new(1, 10))
            .await?;
        for e in executions {
            let tasks = s.retention.tasks(&viewer.subject, rid, e.id).await?;
            runs.push(RunRow {
                id: e.id,
                status: e.status.as_str(),
                dry_run: e.extra_attrs.contains("\"dry_run\":true"),
                trigger: e.trigger.clone(),
                started: time(Some(e.start_time)),
                retained: tasks.iter().map(|t| t.progress_done).sum(),
                total: tasks.iter().map(|t| t.progress_total).sum(),
            });
        }
    }
    page_status(
        viewer,
        status,
        &PolicyPage {
            chrome: Chrome::new(s, viewer, "projects").await?,
            error,
            can_immutable,
            can_manage_immutable: can(viewer, &p, Resource::ImmutableTag, Action::Create),
            immutable,
            can_retention,
            can_manage_retention: can(viewer, &p, Resource::TagRetention, Action::Update),
            can_run_retention: can(viewer, &p, Resource::TagRetention, Action::Operate),
            retention_id: rid,
            retention_rules,
            retention_cron,
            runs,
            templates: TEMPLATES
                .iter()
                .map(|(id, label)| TemplateOption { id, label })
                .collect(),
            nav,
        },
    )
}

async fn show(State(s): State<AppState>, viewer: Viewer, Path(project): Path<String>) -> UiResult {
    viewer.require()?;
    render(&s, &viewer, &project, String::new(), StatusCode::OK).await
}

/// After a form: back to the tab with a notice, or the tab again with the
/// domain's refusal.
async fn finish(
    s: &AppState,
    viewer: &Viewer,
    project: &str,
    result: Result<String, CoreError>,
) -> UiResult {
    match result {
        Ok(notice) => Ok(done(&format!("/harbor/projects/{project}/policy"), &notice)),
        Err(e) => {
            let (status, error) = form_error(e)?;
            render(s, viewer, project, error, status).await
        }
    }
}

#[derive(Deserialize)]
struct ImmutableForm {
    #[serde(default)]
    repo_decoration: String,
    #[serde(default)]
    repo_pattern: String,
    #[serde(default)]
    tag_decoration: String,
    #[serde(default)]
    tag_pattern: String,
}

async fn add_immutable(
    State(s): State<AppState>,
    Path(project): Path<String>,
    form: Posted<ImmutableForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let f = &form.value;
    let result = s
        .immutability
        .create(
            &viewer.subject,
            &ProjectKey::Name(project.clone()),
            RuleInput {
                disabled: false,
                priority: 0,
                tag_selectors: vec![selector(&f.tag_decoration, &f.tag_pattern, None)],
                repo_selectors: vec![selector(&f.repo_decoration, &f.repo_pattern, None)],
            },
        )
        .await
        .map(|_| "Immutability rule added.".to_owned());
    finish(&s, viewer, &project, result).await
}

#[derive(Deserialize)]
struct ToggleForm {
    #[serde(default)]
    disabled: String,
}

async fn toggle_immutable(
    State(s): State<AppState>,
    Path((project, id)): Path<(String, String)>,
    form: Posted<ToggleForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let id = path_id(&id)?;
    let disabled = form.value.disabled == "true";
    let result = s
        .immutability
        .update(
            &viewer.subject,
            &ProjectKey::Name(project.clone()),
            id,
            RuleInput {
                disabled,
                ..RuleInput::default()
            },
        )
        .await
        .map(|_| {
            if disabled {
                "Rule disabled."
            } else {
                "Rule enabled."
            }
            .to_owned()
        });
    finish(&s, viewer, &project, result).await
}

#[derive(Deserialize)]
struct Empty {}

async fn delete_immutable(
    State(s): State<AppState>,
    Path((project, id)): Path<(String, String)>,
    form: Posted<Empty>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let id = path_id(&id)?;
    let result = s
        .immutability
        .delete(&viewer.subject, &ProjectKey::Name(project.clone()), id)
        .await
        .map(|_| "Immutability rule deleted.".to_owned());
    finish(&s, viewer, &project, result).await
}

/// The project's policy, or a new empty one, with what to save it through.
async fn current_policy(
    s: &AppState,
    viewer: &Viewer,
    project: &str,
) -> Result<(Project, Option<i64>, Policy), CoreError> {
    let p = s
        .catalog
        .get_project(&viewer.subject, &ProjectKey::Name(project.to_owned()))
        .await?;
    match retention_id(&p) {
        Some(id) => {
            let policy = s.retention.get(&viewer.subject, id).await?;
            Ok((p, Some(id), policy))
        }
        None => {
            let policy = Policy {
                algorithm: "or".into(),
                scope: Some(Scope {
                    level: "project".into(),
                    reference: p.id,
                }),
                ..Policy::default()
            };
            Ok((p, None, policy))
        }
    }
}

async fn save_policy(
    s: &AppState,
    viewer: &Viewer,
    id: Option<i64>,
    policy: Policy,
) -> Result<(), CoreError> {
    match id {
        Some(id) => s.retention.update(&viewer.subject, id, policy).await,
        None => s
            .retention
            .create(&viewer.subject, policy)
            .await
            .map(|_| ()),
    }
}

#[derive(Deserialize)]
struct RetentionRuleForm {
    #[serde(default)]
    template: String,
    #[serde(default)]
    param: String,
    #[serde(default)]
    repo_pattern: String,
    #[serde(default)]
    tag_pattern: String,
    #[serde(default)]
    untagged: Option<String>,
}

async fn add_retention_rule(
    State(s): State<AppState>,
    Path(project): Path<String>,
    form: Posted<RetentionRuleForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let f = &form.value;
    let result = async {
        let (_, id, mut policy) = current_policy(&s, viewer, &project).await?;
        let mut params = Map::new();
        if f.template != "always" {
            let n: i64 = f.param.trim().parse().map_err(|_| {
                CoreError::BadRequest("Enter a whole number for the rule's count or days.".into())
            })?;
            params.insert(f.template.clone(), json!(n));
        }
        policy.rules.push(Rule {
            action: "retain".into(),
            template: f.template.clone(),
            params,
            tag_selectors: vec![selector(
                "matches",
                &f.tag_pattern,
                Some(f.untagged.is_some()),
            )],
            scope_selectors: [(
                "repository".to_owned(),
                vec![selector("repoMatches", &f.repo_pattern, None)],
            )]
            .into_iter()
            .collect(),
            ..Rule::default()
        });
        save_policy(&s, viewer, id, policy).await?;
        Ok("Retention rule added.".to_owned())
    }
    .await;
    finish(&s, viewer, &project, result).await
}

async fn delete_retention_rule(
    State(s): State<AppState>,
    Path((project, index)): Path<(String, String)>,
    form: Posted<Empty>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let index = path_id(&index)? as usize;
    let result = async {
        let (_, id, mut policy) = current_policy(&s, viewer, &project).await?;
        if index >= policy.rules.len() {
            return Err(CoreError::NotFound("retention rule".into()));
        }
        policy.rules.remove(index);
        save_policy(&s, viewer, id, policy).await?;
        Ok("Retention rule deleted.".to_owned())
    }
    .await;
    finish(&s, viewer, &project, result).await
}

#[derive(Deserialize)]
struct CronForm {
    #[serde(default)]
    cron: String,
}

async fn retention_schedule(
    State(s): State<AppState>,
    Path(project): Path<String>,
    form: Posted<CronForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let cron = form.value.cron.trim().to_owned();
    let result = async {
        let (_, id, mut policy) = current_policy(&s, viewer, &project).await?;
        let mut settings = Map::new();
        if !cron.is_empty() {
            settings.insert("cron".into(), json!(cron));
        }
        policy.trigger = Some(Trigger {
            kind: "Schedule".into(),
            settings,
            references: Value::Null,
        });
        save_policy(&s, viewer, id, policy).await?;
        Ok(if cron.is_empty() {
            "Schedule removed.".to_owned()
        } else {
            format!("Retention runs on {cron}.")
        })
    }
    .await;
    finish(&s, viewer, &project, result).await
}

#[derive(Deserialize)]
struct RunForm {
    #[serde(default)]
    dry_run: String,
}

async fn run_retention(
    State(s): State<AppState>,
    Path(project): Path<String>,
    form: Posted<RunForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let dry = form.value.dry_run == "true";
    let result = async {
        let (_, id, _) = current_policy(&s, viewer, &project).await?;
        let id = id.ok_or_else(|| CoreError::BadRequest("Add a retention rule first.".into()))?;
        let e = s.retention.run(&viewer.subject, id, dry).await?;
        Ok(format!(
            "{} {} started.",
            if dry { "Dry run" } else { "Run" },
            e.id
        ))
    }
    .await;
    finish(&s, viewer, &project, result).await
}

// ---- administration: garbage collection ----------------------------------

struct GcRow {
    id: i64,
    status: &'static str,
    kind: &'static str,
    params: String,
    started: String,
}

impl GcRow {
    fn of(e: berth_core::model::Execution) -> GcRow {
        GcRow {
            id: e.id,
            status: e.status.as_str(),
            kind: if e.trigger == "SCHEDULE" {
                "Scheduled"
            } else {
                "Manual"
            },
            started: time(Some(e.start_time)),
            params: e.extra_attrs,
        }
    }
}

#[derive(Template)]
#[template(path = "admin_gc.html")]
struct GcPage {
    chrome: Chrome,
    admin_tab: &'static str,
    error: String,
    rows: Vec<GcRow>,
    schedule_type: String,
    schedule_types: Vec<String>,
    schedule_cron: String,
    next_run: String,
    window_hours: String,
    purges: Vec<GcRow>,
}

async fn render_gc(s: &AppState, viewer: &Viewer, error: String, status: StatusCode) -> UiResult {
    let (runs, _) = s.gc.history(&viewer.subject, Page::new(1, 25)).await?;
    let (purges, _) = s
        .purge_audit
        .history(&viewer.subject, Page::new(1, 10))
        .await?;
    let schedule = s.gc.schedule(&viewer.subject).await?;
    page_status(
        viewer,
        status,
        &GcPage {
            chrome: Chrome::new(s, viewer, "admin").await?,
            admin_tab: "gc",
            error,
            rows: runs.into_iter().map(GcRow::of).collect(),
            schedule_type: schedule
                .as_ref()
                .map(|s| s.kind.clone())
                .unwrap_or_else(|| "None".into()),
            schedule_types: ["None", "Hourly", "Daily", "Weekly", "Custom"]
                .into_iter()
                .map(String::from)
                .collect(),
            schedule_cron: schedule
                .as_ref()
                .map(|s| s.cron.clone())
                .unwrap_or_default(),
            next_run: schedule
                .as_ref()
                .map(|s| time(Some(s.next_run)))
                .unwrap_or_default(),
            window_hours: format!("{:.1}", s.gc.time_window().as_secs_f64() / 3600.0),
            purges: purges.into_iter().map(GcRow::of).collect(),
        },
    )
}

async fn gc_page(State(s): State<AppState>, viewer: Viewer) -> UiResult {
    viewer.require()?;
    render_gc(&s, &viewer, String::new(), StatusCode::OK).await
}

#[derive(Deserialize)]
struct GcRunForm {
    #[serde(default)]
    dry_run: Option<String>,
    #[serde(default)]
    delete_untagged: Option<String>,
}

async fn gc_finish(s: &AppState, viewer: &Viewer, result: Result<String, CoreError>) -> UiResult {
    match result {
        Ok(notice) => Ok(done("/harbor/admin/gc", &notice)),
        Err(e) => {
            let (status, error) = form_error(e)?;
            render_gc(s, viewer, error, status).await
        }
    }
}

async fn gc_run(State(s): State<AppState>, form: Posted<GcRunForm>) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let params = GcParams {
        delete_untagged: form.value.delete_untagged.is_some(),
        dry_run: form.value.dry_run.is_some(),
        workers: 1,
        time_window_ms: 0,
    };
    let result =
        s.gc.start(&viewer.subject, params, "MANUAL")
            .await
            .map(|e| format!("Garbage collection {} started.", e.id));
    gc_finish(&s, viewer, result).await
}

#[derive(Deserialize)]
struct GcScheduleForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    cron: String,
    #[serde(default)]
    delete_untagged: Option<String>,
}

async fn gc_schedule(State(s): State<AppState>, form: Posted<GcScheduleForm>) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let f = &form.value;
    let result = async {
        let spec = ScheduleSpec::parse(&f.kind, Some(f.cron.trim()))?;
        let params = GcParams {
            delete_untagged: f.delete_untagged.is_some(),
            dry_run: false,
            workers: 1,
            time_window_ms: 0,
        };
        s.gc.set_schedule(&viewer.subject, &spec, params).await?;
        Ok("Schedule saved.".to_owned())
    }
    .await;
    gc_finish(&s, viewer, result).await
}

#[derive(Deserialize)]
struct PurgeForm {
    #[serde(default)]
    hours: String,
    #[serde(default)]
    operations: String,
    #[serde(default)]
    dry_run: Option<String>,
}

/// Audit-log purge ("log rotation"): entries older than `hours`.
async fn purge_audit_run(State(s): State<AppState>, form: Posted<PurgeForm>) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let f = &form.value;
    let result = async {
        let hours: i64 = f.hours.trim().parse().map_err(|_| {
            CoreError::BadRequest("Enter the number of hours of audit log to keep.".into())
        })?;
        let params = berth_core::audit_purge::AuditPurgeParams {
            audit_retention_hour: hours,
            include_operations: f.operations.trim().to_owned(),
            include_event_types: String::new(),
            dry_run: f.dry_run.is_some(),
        };
        let e = s.purge_audit.start(&viewer.subject, params).await?;
        Ok(format!("Audit log purge {} started.", e.id))
    }
    .await;
    gc_finish(&s, viewer, result).await
}
