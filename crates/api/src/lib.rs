//! Berth's HTTP surfaces on axum: the OCI Distribution API under `/v2`
//! (`oci`) and Harbor's management API under `/api/v2.0` (`harbor`).
//! Handlers are thin: they parse the request into domain types, call one
//! use-case, and render the result; each surface maps domain errors to its
//! wire codes in one place.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use berth_core::audit::Audit;
use berth_core::audit_purge::PurgeAudit;
use berth_core::catalog::Catalog;
use berth_core::gc::Gc;
use berth_core::identity::Identity;
use berth_core::immutable::Immutability;
use berth_core::members::Members;
use berth_core::quotas::Quotas;
use berth_core::registry::Registry;
use berth_core::retention::Retention;
use berth_core::robots::Robots;
use berth_core::settings::Settings;
use berth_core::storage_requests::StorageRequests;
use berth_core::users::Users;
use http::{HeaderName, HeaderValue};

pub mod auth;
pub mod harbor;
pub mod oci;
pub mod service;
pub mod timefmt;

/// Facts the API reports about this installation.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Base URL clients reach Berth at, without a trailing slash
    /// (e.g. `https://registry.example.com`); when unset, each request's
    /// `Host` (and `X-Forwarded-Proto`) says it.
    pub external_url: Option<String>,
    /// The blob backend's name (`filesystem`, `s3`).
    pub storage_provider: String,
    pub version: String,
}

impl ApiSettings {
    /// The base URL for absolute URLs in answers to `headers`' request.
    pub fn base_url(&self, headers: &http::HeaderMap) -> String {
        if let Some(u) = &self.external_url {
            return u.clone();
        }
        let host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("localhost");
        let scheme = match headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
        {
            Some("https") => "https",
            _ => "http",
        };
        format!("{scheme}://{host}")
    }
}

/// Everything handlers reach, shared by both surfaces.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub catalog: Arc<Catalog>,
    pub identity: Arc<Identity>,
    pub users: Arc<Users>,
    pub members: Arc<Members>,
    pub robots: Arc<Robots>,
    pub audit: Arc<Audit>,
    pub quotas: Arc<Quotas>,
    pub gc: Arc<Gc>,
    pub immutability: Arc<Immutability>,
    pub retention: Arc<Retention>,
    pub purge_audit: Arc<PurgeAudit>,
    pub storage_requests: Arc<StorageRequests>,
    pub config: Arc<Settings>,
    pub settings: Arc<ApiSettings>,
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: `/v2`, `/api/v2.0`, with request ids and one log
/// line per request.
/// Every surface behind the shared layers; `portal` is the web portal's
/// router (crate `berth-ui`), which sits on this crate.
pub fn app(state: AppState, portal: Router) -> Router {
    Router::new()
        .merge(portal)
        .merge(oci::router(state.clone()))
        .nest("/api/v2.0", harbor::router(state.clone()))
        .merge(service::router(state.clone()))
        .layer(middleware::from_fn_with_state(state.clone(), read_only))
        .layer(middleware::from_fn(reject_nul))
        .layer(middleware::from_fn_with_state(state, log_requests))
        // A bug must answer 500, not drop the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
}

/// Counts a registry request (`/v2/…`, and `/service/token` that
/// precedes it) as foreground load while it is handled, so that
/// background jobs pace themselves around pushes and pulls
/// (`berth_core::load`). The management API and the portal are not
/// counted: a client polling a GC run's status would otherwise slow the
/// run it watches.
pub async fn count_requests(
    State(foreground): State<berth_core::load::Foreground>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let registry = path == "/v2" || path.starts_with("/v2/") || path == "/service/token";
    let _serving = registry.then(|| foreground.enter());
    next.run(req).await
}

/// Assigns a request id (the client's `X-Request-Id` if sane), echoes it,
/// and logs method, path, status, duration and id once per request.
async fn log_requests(State(_state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    // Stored strings are returned verbatim; never let a browser guess
    // they are something else.
    res.headers_mut().insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let status = res.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(target: "berth::request", %method, %path, status, duration_ms = format_args!("{ms:.2}"), request_id = %id, "request");
    res
}

/// Refuses a request whose path or query decodes to a NUL character or to
/// invalid UTF-8: no name, tag or search text may hold one, and stores
/// would otherwise see it.
async fn reject_nul(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let bad = |s: &str| match percent_encoding::percent_decode_str(s).decode_utf8() {
        Ok(text) => text.contains('\0'),
        Err(_) => true,
    };
    if bad(uri.path()) || uri.query().is_some_and(|q| bad(&q.replace('+', " "))) {
        let body = r#"{"errors":[{"code":"BAD_REQUEST","message":"the request path or query holds a NUL character or invalid UTF-8"}]}"#;
        let mut res = (http::StatusCode::BAD_REQUEST, body).into_response();
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return res;
    }
    next.run(req).await
}

/// In read-only mode every write is refused with Harbor's message, except
/// signing in and out, asking for registry tokens, and the configuration
/// change that ends read-only mode.
async fn read_only(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use http::Method;
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if write {
        let path = req.uri().path();
        let exempt = path == "/api/v2.0/configurations"
            || path.starts_with("/c/login")
            || path.starts_with("/c/log_out")
            || path.starts_with("/service/token")
            || path == "/harbor/admin/configuration"
            || path == "/harbor/sign-in"
            || path == "/harbor/sign-out";
        if !exempt {
            match state.config.current().await {
                Ok(cfg) if cfg.read_only && path.starts_with("/harbor/") => {
                    let body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Read-only</title><link rel=\"stylesheet\" href=\"/harbor/static/app.css\"></head><body><main id=\"main\"><section class=\"card narrow\"><h1>Read-only mode</h1><p class=\"error\" id=\"error-message\">The system is in read only mode. Any modification is prohibited.</p><p><a href=\"/harbor/projects\">Back to projects</a></p></section></main></body></html>";
                    let mut res = (http::StatusCode::FORBIDDEN, body).into_response();
                    res.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    );
                    return res;
                }
                Ok(cfg) if cfg.read_only => {
                    let body = r#"{"errors":[{"code":"DENIED","message":"The system is in read only mode. Any modification is prohibited."}]}"#;
                    let mut res = (http::StatusCode::FORBIDDEN, body).into_response();
                    res.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    return res;
                }
                Ok(_) => {}
                Err(e) => return harbor::error::ApiError::from(e).into_response(),
            }
        }
    }
    next.run(req).await
}

/// The request's id, for handlers that log.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);
