//! System configuration and the audit log (swagger tags `configure`,
//! `auditlog`).

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use berth_core::access::Subject;
use berth_core::catalog::ProjectKey;
use berth_core::query::{AuditQuery, AuditSortField, Page};
use serde_json::{json, Value};

use super::error::ApiError;
use super::models;
use super::projects::{list_params, params};
use super::query::{paginate, parse_q, parse_sort, Term};
use super::{is_resource_name, json, ok_empty, ApiResult, JsonBody};
use crate::timefmt;
use crate::AppState;

/// `GET /configurations`: every item as `{value, editable}`.
pub async fn get_configurations(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
) -> ApiResult {
    let items = s.config.items(&sub).await?;
    let mut body = serde_json::Map::new();
    for i in items {
        body.insert(
            i.key.to_owned(),
            json!({ "value": i.value, "editable": i.editable }),
        );
    }
    Ok(json(StatusCode::OK, &Value::Object(body)))
}

/// `PUT /configurations` with `{key: value, …}`.
pub async fn put_configurations(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    JsonBody(changes): JsonBody<BTreeMap<String, Value>>,
) -> ApiResult {
    s.config.update(&sub, &changes).await?;
    Ok(ok_empty(StatusCode::OK))
}

fn audit_query(raw: &Option<String>) -> Result<(AuditQuery, Page), ApiError> {
    let lp = list_params(&params(raw));
    let page = lp.page()?;
    let mut q = AuditQuery {
        projects: None,
        operation: None,
        resource_type: None,
        resource: None,
        username: None,
        from: None,
        to: None,
        sort: parse_sort(lp.sort.as_deref(), |f| match f {
            "op_time" => Some(AuditSortField::OpTime),
            "id" => Some(AuditSortField::Id),
            "operation" => Some(AuditSortField::Operation),
            "resource_type" => Some(AuditSortField::ResourceType),
            "username" => Some(AuditSortField::Username),
            _ => None,
        })?,
    };
    for (k, term) in parse_q(
        lp.q.as_deref(),
        &[
            "operation",
            "resource_type",
            "resource",
            "username",
            "op_time",
        ],
    )? {
        match (k.as_str(), term) {
            ("op_time", Term::Range(from, to)) => {
                let time = |v: &Option<String>| -> Result<Option<i64>, ApiError> {
                    v.as_deref()
                        .map(|t| {
                            timefmt::parse(t)
                                .ok_or_else(|| ApiError::bad_request(format!("invalid time {t:?}")))
                        })
                        .transpose()
                };
                q.from = time(&from)?;
                q.to = time(&to)?;
            }
            ("op_time", _) => {
                return Err(ApiError::bad_request(
                    "op_time takes a range: op_time=[from~to]",
                ))
            }
            ("operation", t) => q.operation = Some(t.text(&k)?),
            ("resource_type", t) => q.resource_type = Some(t.text(&k)?),
            ("resource", t) => q.resource = Some(t.text(&k)?),
            (_, t) => q.username = Some(t.text(&k)?),
        }
    }
    Ok((q, page))
}

/// `GET /auditlog-exts`.
pub async fn list_audit(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let (q, page) = audit_query(&raw)?;
    let (entries, total) = s.audit.list(&sub, q, page).await?;
    let mut res = json(
        StatusCode::OK,
        &json!(entries.iter().map(models::audit_ext).collect::<Vec<_>>()),
    );
    paginate(
        &mut res,
        "/api/v2.0/auditlog-exts",
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

/// `GET /audit-logs` (deprecated shape).
pub async fn list_audit_legacy(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let (q, page) = audit_query(&raw)?;
    let (entries, total) = s.audit.list(&sub, q, page).await?;
    let mut res = json(
        StatusCode::OK,
        &json!(entries.iter().map(models::audit_legacy).collect::<Vec<_>>()),
    );
    paginate(
        &mut res,
        "/api/v2.0/audit-logs",
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

/// `GET /projects/{p}/auditlog-exts`.
pub async fn project_audit(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let (q, page) = audit_query(&raw)?;
    let key = ProjectKey::from_path(&project, is_resource_name(&headers));
    let (entries, total) = s.audit.list_project(&sub, &key, q, page).await?;
    let mut res = json(
        StatusCode::OK,
        &json!(entries.iter().map(models::audit_ext).collect::<Vec<_>>()),
    );
    paginate(
        &mut res,
        &format!("/api/v2.0/projects/{project}/auditlog-exts"),
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

/// `GET /projects/{p}/logs` (deprecated shape).
pub async fn project_logs(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let (q, page) = audit_query(&raw)?;
    let key = ProjectKey::from_path(&project, is_resource_name(&headers));
    let (entries, total) = s.audit.list_project(&sub, &key, q, page).await?;
    let mut res = json(
        StatusCode::OK,
        &json!(entries.iter().map(models::audit_legacy).collect::<Vec<_>>()),
    );
    paginate(
        &mut res,
        &format!("/api/v2.0/projects/{project}/logs"),
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

/// `GET /auditlog-exts/events`.
pub async fn audit_events(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
) -> ApiResult {
    let types = s.audit.event_types(&sub)?;
    Ok(json(
        StatusCode::OK,
        &json!(types
            .iter()
            .map(|t| json!({ "event_type": t }))
            .collect::<Vec<_>>()),
    ))
}
