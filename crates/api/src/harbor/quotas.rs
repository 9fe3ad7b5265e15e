//! `/quotas` (swagger tag `quota`): storage quotas per project.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Extension;
use berth_core::access::{Subject, Visibility};
use berth_core::query::{ProjectQuery, ProjectSortField};
use berth_core::quotas::Quota;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::projects::{list_params, params};
use super::query::{paginate, parse_sort};
use super::{json, ok_empty, ApiResult, JsonBody};
use crate::timefmt::iso;
use crate::AppState;

fn quota_json(q: &Quota) -> Value {
    json!({
        "id": q.id,
        "ref": { "id": q.project_id, "name": q.project_name, "owner_name": q.owner_name },
        "hard": { "storage": q.hard },
        "used": { "storage": q.used },
        "creation_time": iso(q.creation_time),
        "update_time": iso(q.update_time),
    })
}

fn quota_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_request("the quota id must be a positive integer"))
}

/// `GET /quotas?reference=project&reference_id=&sort=`.
pub async fn list(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let p = params(&raw);
    let lp = list_params(&p);
    let page = lp.page()?;
    match p.get("reference").map(String::as_str) {
        None | Some("") | Some("project") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unsupported quota reference {other:?}: quotas belong to projects"
            )))
        }
    }
    let project = match p.get("reference_id").filter(|v| !v.is_empty()) {
        Some(v) => Some(quota_id(v)?),
        None => None,
    };
    let query = ProjectQuery {
        name: None,
        public: None,
        owner: None,
        visibility: Visibility::All,
        sort: parse_sort(lp.sort.as_deref(), |f| match f {
            "hard.storage" => Some(ProjectSortField::StorageLimit),
            "used.storage" => Some(ProjectSortField::StorageUsed),
            "creation_time" => Some(ProjectSortField::CreationTime),
            "update_time" => Some(ProjectSortField::UpdateTime),
            _ => None,
        })?,
    };
    let (quotas, total) = s.quotas.list(&sub, project, query, page).await?;
    let body: Vec<Value> = quotas.iter().map(quota_json).collect();
    let mut res = json(StatusCode::OK, &json!(body));
    paginate(&mut res, "/api/v2.0/quotas", raw.as_deref(), page, total);
    Ok(res)
}

/// `GET /quotas/{id}`.
pub async fn get(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    let q = s.quotas.get(&sub, quota_id(&id)?).await?;
    Ok(json(StatusCode::OK, &quota_json(&q)))
}

#[derive(Deserialize)]
pub struct QuotaUpdateReq {
    hard: Option<serde_json::Map<String, Value>>,
}

/// `PUT /quotas/{id}` with `{"hard":{"storage":N}}`.
pub async fn update(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<QuotaUpdateReq>,
) -> ApiResult {
    let id = quota_id(&id)?;
    let hard = req
        .hard
        .ok_or_else(|| ApiError::bad_request("hard is required"))?;
    let mut storage = None;
    for (k, v) in hard {
        match k.as_str() {
            "storage" => {
                storage = Some(
                    v.as_i64()
                        .ok_or_else(|| ApiError::bad_request("hard.storage must be an integer"))?,
                )
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unsupported quota resource {other:?}: only storage is limited"
                )))
            }
        }
    }
    let storage = storage.ok_or_else(|| ApiError::bad_request("hard.storage is required"))?;
    s.quotas.update(&sub, id, storage).await?;
    Ok(ok_empty(StatusCode::OK))
}
