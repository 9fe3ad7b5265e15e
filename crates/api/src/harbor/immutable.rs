//! `/projects/{p}/immutabletagrules` (swagger tag `immutable`).

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use berth_core::access::Subject;
use berth_core::catalog::ProjectKey;
use berth_core::immutable::{ImmutableRule, RuleInput};
use berth_core::selectors::Selector;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::gc::path_id;
use super::projects::{list_params, params};
use super::query::paginate;
use super::{is_resource_name, json, ok_empty, ApiResult, JsonBody};
use crate::AppState;

fn key(project: &str, headers: &HeaderMap) -> ProjectKey {
    ProjectKey::from_path(project, is_resource_name(headers))
}

fn rule_json(r: &ImmutableRule) -> Value {
    json!({
        "id": r.id,
        "priority": r.priority,
        "disabled": r.disabled,
        "action": "immutable",
        "template": "immutable_template",
        "params": {},
        "tag_selectors": r.tag_selectors,
        "scope_selectors": { "repository": r.repo_selectors },
    })
}

/// Harbor's `ImmutableRule` body.
#[derive(Deserialize)]
pub struct RuleReq {
    disabled: Option<bool>,
    priority: Option<i64>,
    action: Option<String>,
    template: Option<String>,
    tag_selectors: Option<Vec<Selector>>,
    scope_selectors: Option<HashMap<String, Vec<Selector>>>,
}

impl RuleReq {
    fn input(self) -> Result<RuleInput, ApiError> {
        if let Some(a) = self.action.filter(|a| !a.is_empty() && a != "immutable") {
            return Err(ApiError::bad_request(format!(
                "unsupported action {a:?}: immutable rules have action \"immutable\""
            )));
        }
        if let Some(t) = self
            .template
            .filter(|t| !t.is_empty() && t != "immutable_template")
        {
            return Err(ApiError::bad_request(format!(
                "unsupported template {t:?}: use \"immutable_template\""
            )));
        }
        let mut scopes = self.scope_selectors.unwrap_or_default();
        if let Some(other) = scopes.keys().find(|k| k.as_str() != "repository") {
            return Err(ApiError::bad_request(format!(
                "unsupported scope selector {other:?}: only repository"
            )));
        }
        Ok(RuleInput {
            disabled: self.disabled.unwrap_or(false),
            priority: self.priority.unwrap_or(0),
            tag_selectors: self.tag_selectors.unwrap_or_default(),
            repo_selectors: scopes.remove("repository").unwrap_or_default(),
        })
    }
}

pub async fn list(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let page = list_params(&params(&raw)).page()?;
    let (rules, total) = s
        .immutability
        .list(&sub, &key(&project, &headers), page)
        .await?;
    let body: Vec<Value> = rules.iter().map(rule_json).collect();
    let mut res = json(StatusCode::OK, &json!(body));
    paginate(
        &mut res,
        &format!("/api/v2.0/projects/{project}/immutabletagrules"),
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

pub async fn create(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
    JsonBody(req): JsonBody<RuleReq>,
) -> ApiResult {
    let rule = s
        .immutability
        .create(&sub, &key(&project, &headers), req.input()?)
        .await?;
    let mut res = ok_empty(StatusCode::CREATED);
    if let Ok(v) = format!("/api/v2.0/projects/{project}/immutabletagrules/{}", rule.id).parse() {
        res.headers_mut().insert("location", v);
    }
    Ok(res)
}

pub async fn update(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path((project, id)): Path<(String, String)>,
    JsonBody(req): JsonBody<RuleReq>,
) -> ApiResult {
    let id = path_id(&id, "immutable rule")?;
    s.immutability
        .update(&sub, &key(&project, &headers), id, req.input()?)
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult {
    let id = path_id(&id, "immutable rule")?;
    s.immutability
        .delete(&sub, &key(&project, &headers), id)
        .await?;
    Ok(ok_empty(StatusCode::OK))
}
