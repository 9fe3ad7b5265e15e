//! `/system/gc…` (swagger tag `gc`): garbage collection runs, their logs,
//! stopping one, and the schedule. The history and schedule shapes
//! (`GCHistory`, `ExecHistory`, `Schedule`) are shared with other
//! scheduled system jobs.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Extension;
use berth_core::access::Subject;
use berth_core::gc::GcParams;
use berth_core::model::{Execution, Schedule};
use berth_core::schedule::ScheduleSpec;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::projects::{list_params, params};
use super::query::paginate;
use super::{json, ok_empty, ApiResult, JsonBody};
use crate::timefmt::iso;
use crate::AppState;

/// Harbor's `ScheduleObj` for a saved schedule, or `None`.
pub(super) fn schedule_obj(s: Option<&Schedule>) -> Value {
    match s {
        Some(s) => json!({
            "type": s.kind,
            "cron": s.cron,
            "next_scheduled_time": iso(s.next_run),
        }),
        None => json!({ "type": "None", "cron": "" }),
    }
}

/// One run as `GCHistory` / `ExecHistory`.
pub(super) fn history_json(e: &Execution, schedule: Option<&Schedule>) -> Value {
    let manual = e.trigger != "SCHEDULE";
    json!({
        "id": e.id,
        "job_name": e.vendor_type,
        "job_kind": if manual { "MANUAL" } else { "SCHEDULE" },
        "job_parameters": e.extra_attrs,
        "schedule": if manual { json!({ "type": "Manual", "cron": "" }) } else { schedule_obj(schedule) },
        "job_status": e.status.as_str(),
        "deleted": false,
        "creation_time": iso(e.start_time),
        "update_time": iso(e.update_time),
    })
}

/// A log as Harbor serves it: text, one line per entry.
pub(super) fn log_response(lines: &[(i64, String)]) -> axum::response::Response {
    let mut text = String::new();
    for (t, line) in lines {
        text.push_str(&iso(*t));
        text.push(' ');
        text.push_str(line);
        text.push('\n');
    }
    let mut res = (StatusCode::OK, text).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// A job's schedule as `ExecHistory` (`GET /system/…/schedule`).
pub(super) fn schedule_json(job_name: &str, schedule: Option<&Schedule>) -> Value {
    json!({
        "id": schedule.map(|s| s.id).unwrap_or(0),
        "job_name": job_name,
        "job_kind": "SCHEDULE",
        "job_parameters": schedule.map(|s| s.params.as_str()).unwrap_or("{}"),
        "schedule": schedule_obj(schedule),
        "deleted": false,
        "creation_time": schedule.map(|s| iso(s.creation_time)),
        "update_time": schedule.map(|s| iso(s.update_time)),
    })
}

/// 201 to `POST /system/…/schedule`, with the `Location` of the run a
/// `Manual` schedule started.
pub(super) fn schedule_created(base: &str, run: Option<&Execution>) -> axum::response::Response {
    let mut res = ok_empty(StatusCode::CREATED);
    if let Some(e) = run {
        if let Ok(v) = format!("{base}/{}", e.id).parse() {
            res.headers_mut().insert("location", v);
        }
    }
    res
}

pub(super) fn path_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_request(format!("the {what} id must be a positive integer")))
}

/// Harbor's `Schedule` request body.
#[derive(Deserialize)]
pub(super) struct ScheduleReq {
    pub schedule: Option<ScheduleBody>,
    #[serde(default)]
    pub parameters: Map<String, Value>,
}

#[derive(Deserialize)]
pub(super) struct ScheduleBody {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub cron: Option<String>,
}

impl ScheduleReq {
    pub(super) fn spec(&self) -> Result<ScheduleSpec, ApiError> {
        let s = self
            .schedule
            .as_ref()
            .ok_or_else(|| ApiError::bad_request("schedule is required"))?;
        Ok(ScheduleSpec::parse(
            s.kind.as_deref().unwrap_or(""),
            s.cron.as_deref(),
        )?)
    }
}

fn gc_params(p: &Map<String, Value>) -> Result<GcParams, ApiError> {
    let flag = |k: &str, default: bool| match p.get(k) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::bad_request(format!("{k} must be true or false"))),
    };
    let workers = match p.get("workers") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .filter(|w| (1..=10).contains(w))
            .ok_or_else(|| ApiError::bad_request("workers must be an integer from 1 to 10"))?
            as u32,
    };
    Ok(GcParams {
        delete_untagged: flag("delete_untagged", true)?,
        dry_run: flag("dry_run", false)?,
        workers,
        time_window_ms: 0,
    })
}

/// `GET /system/gc`: runs, newest first.
pub async fn history(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = list_params(&params(&raw)).page()?;
    let (runs, total) = s.gc.history(&sub, page).await?;
    let schedule = s.gc.schedule(&sub).await?;
    let body: Vec<Value> = runs
        .iter()
        .map(|e| history_json(e, schedule.as_ref()))
        .collect();
    let mut res = json(StatusCode::OK, &json!(body));
    paginate(&mut res, "/api/v2.0/system/gc", raw.as_deref(), page, total);
    Ok(res)
}

/// `GET /system/gc/{gc_id}`.
pub async fn get(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    let e = s.gc.get(&sub, path_id(&id, "gc")?).await?;
    let schedule = s.gc.schedule(&sub).await?;
    Ok(json(StatusCode::OK, &history_json(&e, schedule.as_ref())))
}

/// `PUT /system/gc/{gc_id}`: stops the run.
pub async fn stop(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    s.gc.stop(&sub, path_id(&id, "gc")?).await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `GET /system/gc/{gc_id}/log`.
pub async fn log(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    let lines = s.gc.log(&sub, path_id(&id, "gc")?).await?;
    Ok(log_response(&lines))
}

/// `GET /system/gc/schedule`.
pub async fn get_schedule(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
) -> ApiResult {
    let schedule = s.gc.schedule(&sub).await?;
    Ok(json(
        StatusCode::OK,
        &schedule_json(berth_core::gc::GARBAGE_COLLECTION, schedule.as_ref()),
    ))
}

/// `POST /system/gc/schedule`: `Manual` runs now (201, `Location` of the
/// run); any other type creates the schedule.
pub async fn create_schedule(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    JsonBody(req): JsonBody<ScheduleReq>,
) -> ApiResult {
    let spec = req.spec()?;
    let params = gc_params(&req.parameters)?;
    if matches!(spec, ScheduleSpec::Cron { .. }) && s.gc.schedule(&sub).await?.is_some() {
        return Err(berth_core::CoreError::Conflict(
            "a garbage collection schedule exists already; update it with PUT".into(),
        )
        .into());
    }
    let run = s.gc.set_schedule(&sub, &spec, params).await?;
    Ok(schedule_created("/api/v2.0/system/gc", run.as_ref()))
}

/// `PUT /system/gc/schedule`.
pub async fn update_schedule(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    JsonBody(req): JsonBody<ScheduleReq>,
) -> ApiResult {
    let spec = req.spec()?;
    let params = gc_params(&req.parameters)?;
    s.gc.set_schedule(&sub, &spec, params).await?;
    Ok(ok_empty(StatusCode::OK))
}
