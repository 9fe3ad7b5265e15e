//! Storage requests, a Berth extension in Harbor's style (Harbor has no
//! such API; see `core::storage_requests`):
//!
//! - `POST /projects/{p}/storage-requests` `{"storage", "reason"}` → 201
//!   with `Location` (no body, as Harbor's creations); `GET /projects/{p}/storage-requests` lists them;
//! - `GET /storage-requests?status=` (system admins), `GET`, `PUT`
//!   `{"status": "approved"|"declined", "comment"}` (system admins) and
//!   `DELETE` (withdraw, the project's admins) `/storage-requests/{id}`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use berth_core::access::Subject;
use berth_core::catalog::ProjectKey;
use berth_core::model::{StorageRequest, StorageRequestStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::gc::path_id;
use super::projects::{list_params, params};
use super::query::paginate;
use super::{is_resource_name, json, ok_empty, ApiResult, JsonBody};
use crate::timefmt::iso;
use crate::AppState;

fn request_json(r: &StorageRequest) -> Value {
    json!({
        "id": r.id,
        "project_id": r.project_id,
        "project_name": r.project_name,
        "requested_storage": r.requested_storage,
        "current_storage_limit": r.current_storage_limit,
        "reason": r.reason,
        "status": r.status.as_str(),
        "requester": r.requester,
        "reviewer": r.reviewer,
        "comment": r.comment,
        "creation_time": iso(r.creation_time),
        "update_time": iso(r.update_time),
    })
}

fn status_of(raw: &str) -> Result<StorageRequestStatus, ApiError> {
    StorageRequestStatus::parse(raw).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown status {raw:?}: use pending, approved or declined"
        ))
    })
}

#[derive(Deserialize)]
pub struct CreateReq {
    storage: Option<Value>,
    #[serde(default)]
    reason: String,
}

/// `POST /projects/{p}/storage-requests`.
pub async fn create(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
    JsonBody(req): JsonBody<CreateReq>,
) -> ApiResult {
    let storage = match req.storage {
        None | Some(Value::Null) => return Err(ApiError::bad_request("storage is required")),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("storage must be an integer number of bytes"))?,
    };
    let key = ProjectKey::from_path(&project, is_resource_name(&headers));
    let r = s
        .storage_requests
        .create(&sub, &key, storage, &req.reason)
        .await?;
    let mut res = ok_empty(StatusCode::CREATED);
    if let Ok(v) = format!("/api/v2.0/storage-requests/{}", r.id).parse() {
        res.headers_mut().insert("location", v);
    }
    Ok(res)
}

/// `GET /projects/{p}/storage-requests`: the project's requests, newest
/// first.
pub async fn list_project(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = list_params(&params(&raw)).page()?;
    let key = ProjectKey::from_path(&project, is_resource_name(&headers));
    let (_, rows, total) = s.storage_requests.list_project(&sub, &key, page).await?;
    let mut res = json(
        StatusCode::OK,
        &json!(rows.iter().map(request_json).collect::<Vec<_>>()),
    );
    paginate(
        &mut res,
        &format!("/api/v2.0/projects/{project}/storage-requests"),
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

/// `GET /storage-requests?status=`: every project's requests (system
/// admins), newest first.
pub async fn list(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let p = params(&raw);
    let page = list_params(&p).page()?;
    let status = match p.get("status").filter(|v| !v.is_empty()) {
        Some(v) => Some(status_of(v)?),
        None => None,
    };
    let (rows, total) = s.storage_requests.list(&sub, status, page).await?;
    let mut res = json(
        StatusCode::OK,
        &json!(rows.iter().map(request_json).collect::<Vec<_>>()),
    );
    paginate(
        &mut res,
        "/api/v2.0/storage-requests",
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

/// `GET /storage-requests/{id}`.
pub async fn get(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    let r = s
        .storage_requests
        .get(&sub, path_id(&id, "storage request")?)
        .await?;
    Ok(json(StatusCode::OK, &request_json(&r)))
}

#[derive(Deserialize)]
pub struct DecideReq {
    status: Option<String>,
    #[serde(default)]
    comment: String,
}

/// `PUT /storage-requests/{id}`: approves or declines (system admins).
pub async fn decide(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<DecideReq>,
) -> ApiResult {
    let id = path_id(&id, "storage request")?;
    let status = status_of(
        req.status
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("status is required"))?,
    )?;
    s.storage_requests
        .decide(&sub, id, status, &req.comment)
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `DELETE /storage-requests/{id}`: withdraws a pending request (the
/// project's admins).
pub async fn withdraw(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    s.storage_requests
        .withdraw(&sub, path_id(&id, "storage request")?)
        .await?;
    Ok(ok_empty(StatusCode::OK))
}
