//! Harbor's management API, `/api/v2.0`, with the paths, JSON shapes,
//! status codes and error envelope of `harbor-v2.0-swagger.yaml`.

mod accounts;
mod admin;
pub mod error;
mod gc;
mod immutable;
pub mod models;
mod projects;
mod purge_audit;
pub mod query;
mod quotas;
mod repositories;
mod retention;
mod storage_requests;
mod system;

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::de::DeserializeOwned;

use crate::AppState;
use error::{ApiError, HarborCode};

pub type ApiResult = Result<Response, ApiError>;

/// JSON bodies are capped (R1).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route(
            "/projects",
            get(projects::list)
                .head(projects::head)
                .post(projects::create),
        )
        .route(
            "/projects/{project}",
            get(projects::get)
                .put(projects::update)
                .delete(projects::delete),
        )
        .route("/projects/{project}/_deletable", get(projects::deletable))
        .route("/projects/{project}/summary", get(projects::summary))
        .route("/repositories", get(repositories::list_all))
        .route("/projects/{project}/repositories", get(repositories::list))
        .route(
            "/projects/{project}/repositories/{repository}",
            get(repositories::get)
                .put(repositories::update)
                .delete(repositories::delete),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts",
            get(repositories::list_artifacts).post(repositories::copy_artifact),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts/{reference}",
            get(repositories::get_artifact).delete(repositories::delete_artifact),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts/{reference}/additions/{addition}",
            get(repositories::addition),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts/{reference}/tags",
            get(repositories::list_tags).post(repositories::create_tag),
        )
        .route(
            "/projects/{project}/repositories/{repository}/artifacts/{reference}/tags/{tag}",
            axum::routing::delete(repositories::delete_tag),
        )
        .route(
            "/projects/{project}/immutabletagrules",
            get(immutable::list).post(immutable::create),
        )
        .route(
            "/projects/{project}/immutabletagrules/{id}",
            axum::routing::put(immutable::update).delete(immutable::delete),
        )
        .route("/retentions/metadatas", get(retention::metadatas))
        .route("/retentions", axum::routing::post(retention::create))
        .route(
            "/retentions/{id}",
            get(retention::get)
                .put(retention::update)
                .delete(retention::delete),
        )
        .route(
            "/retentions/{id}/executions",
            get(retention::executions).post(retention::run),
        )
        .route(
            "/retentions/{id}/executions/{eid}",
            axum::routing::patch(retention::operate),
        )
        .route(
            "/retentions/{id}/executions/{eid}/tasks",
            get(retention::tasks),
        )
        .route(
            "/retentions/{id}/executions/{eid}/tasks/{tid}",
            get(retention::task_log),
        )
        .route("/system/gc", get(gc::history))
        .route(
            "/system/gc/schedule",
            get(gc::get_schedule)
                .post(gc::create_schedule)
                .put(gc::update_schedule),
        )
        .route("/system/gc/{gc_id}", get(gc::get).put(gc::stop))
        .route("/system/gc/{gc_id}/log", get(gc::log))
        .route("/system/purgeaudit", get(purge_audit::history))
        .route(
            "/system/purgeaudit/schedule",
            get(purge_audit::get_schedule)
                .post(purge_audit::create_schedule)
                .put(purge_audit::update_schedule),
        )
        .route(
            "/system/purgeaudit/{purge_id}",
            get(purge_audit::get).put(purge_audit::stop),
        )
        .route("/system/purgeaudit/{purge_id}/log", get(purge_audit::log))
        .route(
            "/projects/{project}/storage-requests",
            get(storage_requests::list_project).post(storage_requests::create),
        )
        .route("/storage-requests", get(storage_requests::list))
        .route(
            "/storage-requests/{id}",
            get(storage_requests::get)
                .put(storage_requests::decide)
                .delete(storage_requests::withdraw),
        )
        .route("/quotas", get(quotas::list))
        .route("/quotas/{id}", get(quotas::get).put(quotas::update))
        .route("/systeminfo", get(system::systeminfo))
        .route("/users", get(accounts::list_users).post(accounts::create_user))
        .route("/users/current", get(accounts::current_user))
        .route("/users/current/permissions", get(accounts::current_permissions))
        .route("/users/search", get(accounts::search_users))
        .route(
            "/users/{user_id}",
            get(accounts::get_user).put(accounts::update_user).delete(accounts::delete_user),
        )
        .route("/users/{user_id}/password", axum::routing::put(accounts::change_password))
        .route("/users/{user_id}/sysadmin", axum::routing::put(accounts::set_sysadmin))
        .route("/projects/{project}/members", get(accounts::list_members).post(accounts::add_member))
        .route(
            "/projects/{project}/members/{mid}",
            get(accounts::get_member).put(accounts::update_member).delete(accounts::delete_member),
        )
        .route("/robots", get(accounts::list_robots).post(accounts::create_robot))
        .route(
            "/robots/{robot_id}",
            get(accounts::get_robot)
                .put(accounts::update_robot)
                .patch(accounts::refresh_robot_secret)
                .delete(accounts::delete_robot),
        )
        .route("/permissions", get(accounts::permissions))
        .route("/configurations", get(admin::get_configurations).put(admin::put_configurations))
        .route("/auditlog-exts", get(admin::list_audit))
        .route("/auditlog-exts/events", get(admin::audit_events))
        .route("/audit-logs", get(admin::list_audit_legacy))
        .route("/projects/{project}/auditlog-exts", get(admin::project_audit))
        .route("/projects/{project}/logs", get(admin::project_logs))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::harbor_layer,
        ));
    Router::new()
        .route("/ping", get(system::ping))
        .route("/health", get(system::health))
        .merge(protected)
        .fallback(|| async {
            ApiError::Raw(HarborCode::NotFound, "no such API endpoint".into()).into_response()
        })
        .with_state(state)
}

/// A JSON response with Harbor's content type.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut res = (status, value.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// An answer without a body. Like Harbor, it names no content type: strict
/// clients parse any `application/json` response as JSON.
pub fn ok_empty(status: StatusCode) -> Response {
    let mut res = status.into_response();
    res.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    res
}

/// A JSON request body, capped at [`MAX_JSON_BODY`], with Harbor's 400 on
/// malformed input.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|_| {
                ApiError::Raw(
                    HarborCode::RequestEntityTooLarge,
                    "the request body is too large".into(),
                )
            })?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(ApiError::bad_request("a JSON request body is required"));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// A path value that clients may have URL-encoded twice (`a%252Fb`).
pub fn decode_twice(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether the `X-Is-Resource-Name` header says the path holds a name.
pub fn is_resource_name(headers: &http::HeaderMap) -> bool {
    headers
        .get("x-is-resource-name")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.eq_ignore_ascii_case("true"))
        .unwrap_or(false)
}
