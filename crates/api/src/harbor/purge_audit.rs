//! `/system/purgeaudit…` (swagger tag `purge`): audit-log purge runs,
//! their logs, stopping one, and the schedule, in the shapes `/system/gc`
//! uses (`ExecHistory`, `Schedule`).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Extension;
use berth_core::access::Subject;
use berth_core::audit_purge::{AuditPurgeParams, PURGE_AUDIT_LOG};
use berth_core::schedule::ScheduleSpec;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::gc::{
    history_json, log_response, path_id, schedule_created, schedule_json, ScheduleReq,
};
use super::projects::{list_params, params};
use super::query::paginate;
use super::{json, ok_empty, ApiResult, JsonBody};
use crate::AppState;

const BASE: &str = "/api/v2.0/system/purgeaudit";

/// Harbor's `parameters`: `audit_retention_hour` (a number),
/// `include_operations` / `include_event_types` (comma-separated
/// strings), `dry_run`. Ranges and names are the domain's to check.
fn purge_params(p: &Map<String, Value>) -> Result<AuditPurgeParams, ApiError> {
    let text = |k: &str| match p.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::bad_request(format!(
            "{k} must be a comma-separated string"
        ))),
    };
    let hours = match p.get("audit_retention_hour") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| ApiError::bad_request("audit_retention_hour must be an integer"))?,
    };
    let dry_run = match p.get("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("dry_run must be true or false")),
    };
    Ok(AuditPurgeParams {
        audit_retention_hour: hours,
        include_operations: text("include_operations")?,
        include_event_types: text("include_event_types")?,
        dry_run,
    })
}

/// `GET /system/purgeaudit`: runs, newest first.
pub async fn history(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = list_params(&params(&raw)).page()?;
    let (runs, total) = s.purge_audit.history(&sub, page).await?;
    let schedule = s.purge_audit.schedule(&sub).await?;
    let body: Vec<Value> = runs
        .iter()
        .map(|e| history_json(e, schedule.as_ref()))
        .collect();
    let mut res = json(StatusCode::OK, &json!(body));
    paginate(&mut res, BASE, raw.as_deref(), page, total);
    Ok(res)
}

/// `GET /system/purgeaudit/{purge_id}`.
pub async fn get(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    let e = s.purge_audit.get(&sub, path_id(&id, "purge")?).await?;
    let schedule = s.purge_audit.schedule(&sub).await?;
    Ok(json(StatusCode::OK, &history_json(&e, schedule.as_ref())))
}

/// `PUT /system/purgeaudit/{purge_id}`: stops the run.
pub async fn stop(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    s.purge_audit.stop(&sub, path_id(&id, "purge")?).await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `GET /system/purgeaudit/{purge_id}/log`.
pub async fn log(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    let lines = s.purge_audit.log(&sub, path_id(&id, "purge")?).await?;
    Ok(log_response(&lines))
}

/// `GET /system/purgeaudit/schedule`.
pub async fn get_schedule(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
) -> ApiResult {
    let schedule = s.purge_audit.schedule(&sub).await?;
    Ok(json(
        StatusCode::OK,
        &schedule_json(PURGE_AUDIT_LOG, schedule.as_ref()),
    ))
}

/// `POST /system/purgeaudit/schedule`: `Manual` runs now (201, `Location`
/// of the run); any other type creates the schedule.
pub async fn create_schedule(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    JsonBody(req): JsonBody<ScheduleReq>,
) -> ApiResult {
    let spec = req.spec()?;
    let params = purge_params(&req.parameters)?;
    if matches!(spec, ScheduleSpec::Cron { .. }) && s.purge_audit.schedule(&sub).await?.is_some() {
        return Err(berth_core::CoreError::Conflict(
            "an audit log purge schedule exists already; update it with PUT".into(),
        )
        .into());
    }
    let run = s.purge_audit.set_schedule(&sub, &spec, params).await?;
    Ok(schedule_created(BASE, run.as_ref()))
}

/// `PUT /system/purgeaudit/schedule`.
pub async fn update_schedule(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    JsonBody(req): JsonBody<ScheduleReq>,
) -> ApiResult {
    let spec = req.spec()?;
    let params = purge_params(&req.parameters)?;
    s.purge_audit.set_schedule(&sub, &spec, params).await?;
    Ok(ok_empty(StatusCode::OK))
}
