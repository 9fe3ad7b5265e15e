//! `/retentions…` (swagger tag `Retention`): the project's tag retention
//! policy, its runs, their per-repository tasks and logs.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Extension;
use berth_core::access::Subject;
use berth_core::model::{Execution, Task};
use berth_core::retention::{Policy, Retention};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::gc::{log_response, path_id};
use super::projects::{list_params, params};
use super::query::paginate;
use super::{json, ok_empty, ApiResult, JsonBody};
use crate::timefmt::{iso, iso_or_zero};
use crate::AppState;

fn execution_json(e: &Execution) -> Value {
    let dry_run = serde_json::from_str::<Value>(&e.extra_attrs)
        .ok()
        .and_then(|v| v["dry_run"].as_bool())
        .unwrap_or(false);
    json!({
        "id": e.id,
        "policy_id": e.vendor_id,
        "start_time": iso(e.start_time),
        "end_time": iso_or_zero(e.end_time),
        "status": e.status.as_str(),
        "trigger": e.trigger,
        "dry_run": dry_run,
    })
}

fn task_json(t: &Task) -> Value {
    let repository = serde_json::from_str::<Value>(&t.extra_attrs)
        .ok()
        .and_then(|v| v["repository"].as_str().map(str::to_owned))
        .unwrap_or_default();
    json!({
        "id": t.id,
        "execution_id": t.execution_id,
        "repository": repository,
        "job_id": t.id.to_string(),
        "status": t.status.as_str(),
        "status_code": match t.status.as_str() { "Pending" => 0, "Running" => 1, "Stopped" => 2, "Error" => 3, _ => 4 },
        "status_revision": t.run_count,
        "start_time": iso_or_zero(t.start_time),
        "end_time": iso_or_zero(t.end_time),
        "total": t.progress_total,
        "retained": t.progress_done,
    })
}

pub async fn metadatas() -> ApiResult {
    Ok(json(StatusCode::OK, &Retention::metadata()))
}

pub async fn create(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    JsonBody(policy): JsonBody<Policy>,
) -> ApiResult {
    let id = s.retention.create(&sub, policy).await?;
    let mut res = ok_empty(StatusCode::CREATED);
    if let Ok(v) = format!("/api/v2.0/retentions/{id}").parse() {
        res.headers_mut().insert("location", v);
    }
    Ok(res)
}

pub async fn get(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    let p = s.retention.get(&sub, path_id(&id, "retention")?).await?;
    Ok(json(StatusCode::OK, &json!(p)))
}

pub async fn update(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
    JsonBody(policy): JsonBody<Policy>,
) -> ApiResult {
    s.retention
        .update(&sub, path_id(&id, "retention")?, policy)
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    s.retention.delete(&sub, path_id(&id, "retention")?).await?;
    Ok(ok_empty(StatusCode::OK))
}

#[derive(Deserialize)]
pub struct RunReq {
    #[serde(default)]
    dry_run: bool,
}

/// `POST /retentions/{id}/executions`: 201 with the run's `Location`.
pub async fn run(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<RunReq>,
) -> ApiResult {
    let id = path_id(&id, "retention")?;
    let e = s.retention.run(&sub, id, req.dry_run).await?;
    let mut res = ok_empty(StatusCode::CREATED);
    if let Ok(v) = format!("/api/v2.0/retentions/{id}/executions/{}", e.id).parse() {
        res.headers_mut().insert("location", v);
    }
    Ok(res)
}

pub async fn executions(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let id = path_id(&id, "retention")?;
    let page = list_params(&params(&raw)).page()?;
    let (runs, total) = s.retention.executions(&sub, id, page).await?;
    let body: Vec<Value> = runs.iter().map(execution_json).collect();
    let mut res = json(StatusCode::OK, &json!(body));
    paginate(
        &mut res,
        &format!("/api/v2.0/retentions/{id}/executions"),
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

#[derive(Deserialize)]
pub struct OperateReq {
    action: Option<String>,
}

/// `PATCH /retentions/{id}/executions/{eid}` with `{"action":"stop"}`.
pub async fn operate(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((id, eid)): Path<(String, String)>,
    JsonBody(req): JsonBody<OperateReq>,
) -> ApiResult {
    if req.action.as_deref() != Some("stop") {
        return Err(ApiError::bad_request("the only action is \"stop\""));
    }
    s.retention
        .stop(
            &sub,
            path_id(&id, "retention")?,
            path_id(&eid, "execution")?,
        )
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

pub async fn tasks(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((id, eid)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let (id, eid) = (path_id(&id, "retention")?, path_id(&eid, "execution")?);
    let page = list_params(&params(&raw)).page()?;
    let all = s.retention.tasks(&sub, id, eid).await?;
    let total = all.len() as i64;
    let body: Vec<Value> = all
        .iter()
        .skip(page.offset() as usize)
        .take(page.size as usize)
        .map(task_json)
        .collect();
    let mut res = json(StatusCode::OK, &json!(body));
    paginate(
        &mut res,
        &format!("/api/v2.0/retentions/{id}/executions/{eid}/tasks"),
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

pub async fn task_log(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((id, eid, tid)): Path<(String, String, String)>,
) -> ApiResult {
    let lines = s
        .retention
        .task_log(
            &sub,
            path_id(&id, "retention")?,
            path_id(&eid, "execution")?,
            path_id(&tid, "task")?,
        )
        .await?;
    Ok(log_response(&lines))
}
