//! `/ping`, `/health`, `/systeminfo` (swagger tags `ping`, `health`,
//! `systeminfo`).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use berth_core::access::Subject;
use serde_json::json;

use super::{json, ApiResult};
use crate::timefmt::iso;
use crate::AppState;

/// `GET /ping`: `Pong`, as text.
pub async fn ping() -> Response {
    let mut res = (StatusCode::OK, "Pong").into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// `GET /health`: the state of the metadata store and the blob store,
/// checked now. No authentication.
pub async fn health(State(s): State<AppState>) -> ApiResult {
    let h = s.registry.health().await;
    let component = |name: &str, r: &Result<(), String>| match r {
        Ok(()) => json!({ "name": name, "status": "healthy" }),
        Err(e) => json!({ "name": name, "status": "unhealthy", "error": e }),
    };
    let healthy = h.database.is_ok() && h.storage.is_ok();
    let body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "components": [
            json!({ "name": "core", "status": "healthy" }),
            component("database", &h.database),
            component("registry", &h.storage),
        ],
    });
    Ok(json(StatusCode::OK, &body))
}

/// `GET /systeminfo` (`GeneralInfo`). Anonymous callers get the public part.
pub async fn systeminfo(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: axum::http::HeaderMap,
) -> ApiResult {
    let cfg = s.config.current().await?;
    let ext = s.settings.base_url(&headers);
    let registry_url = ext
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| ext.clone());
    let mut body = json!({
        "auth_mode": cfg.auth_mode,
        "primary_auth_mode": cfg.primary_auth_mode,
        "self_registration": cfg.self_registration,
        "harbor_version": s.settings.version,
        "banner_message": cfg.banner_message,
        "oidc_provider_name": "",
        "authproxy_settings": null,
        "current_time": iso(berth_core::clock::now()),
        "read_only": cfg.read_only,
    });
    if !sub.is_anonymous() {
        let extra = json!({
            "registry_url": registry_url,
            "external_url": ext,
            "project_creation_restriction": cfg.project_creation_restriction,
            "has_ca_root": false,
            "registry_storage_provider_name": s.settings.storage_provider,
            "notification_enable": cfg.notification_enable,
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
    }
    Ok(json(StatusCode::OK, &body))
}
