//! `/projects…` handlers (swagger tag `project`).

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use berth_core::access::{Subject, Visibility};
use berth_core::catalog::{CreateProject, ProjectKey};
use berth_core::query::{ProjectQuery, ProjectSortField};
use serde_json::json;

use super::error::ApiError;
use super::models::{self, ProjectReq};
use super::query::{paginate, parse_q, parse_sort, ListParams};
use super::{is_resource_name, json, ok_empty, ApiResult, JsonBody};
use crate::AppState;

pub fn params(raw: &Option<String>) -> HashMap<String, String> {
    form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn list_params(p: &HashMap<String, String>) -> ListParams {
    ListParams {
        q: p.get("q").cloned(),
        sort: p.get("sort").cloned(),
        page: p.get("page").cloned(),
        page_size: p.get("page_size").cloned(),
    }
}

fn key(project: &str, headers: &HeaderMap) -> ProjectKey {
    ProjectKey::from_path(project, is_resource_name(headers))
}

/// `GET /projects`: projects the caller may see, with `q`, `name`,
/// `public`, `owner`, `sort` and pagination.
pub async fn list(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let p = params(&raw);
    let lp = list_params(&p);
    let page = lp.page()?;
    let mut query = ProjectQuery {
        name: None,
        public: None,
        owner: None,
        visibility: Visibility::All,
        sort: parse_sort(lp.sort.as_deref(), |f| match f {
            "name" => Some(ProjectSortField::Name),
            "creation_time" => Some(ProjectSortField::CreationTime),
            "update_time" => Some(ProjectSortField::UpdateTime),
            "project_id" => Some(ProjectSortField::Id),
            _ => None,
        })?,
    };
    for (k, term) in parse_q(lp.q.as_deref(), &["name", "public", "owner"])? {
        match k.as_str() {
            "name" => query.name = Some(term.text(&k)?),
            "public" => query.public = Some(term.boolean(&k)?),
            "owner" => {
                query.owner = Some(match term.text(&k)? {
                    berth_core::query::TextMatch::Exact(v)
                    | berth_core::query::TextMatch::Fuzzy(v) => v,
                })
            }
            _ => {}
        }
    }
    if let Some(n) = p.get("name").filter(|n| !n.is_empty()) {
        query.name = Some(berth_core::query::TextMatch::Fuzzy(n.clone()));
    }
    if let Some(v) = p.get("public").filter(|v| !v.is_empty()) {
        query.public = Some(match v.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(ApiError::bad_request("public must be true or false")),
        });
    }
    if let Some(o) = p.get("owner").filter(|o| !o.is_empty()) {
        query.owner = Some(o.clone());
    }
    let (projects, total) = s.catalog.list_projects(&sub, query, page).await?;
    let body: Vec<_> = projects.iter().map(|p| models::project(p, &sub)).collect();
    let mut res = json(StatusCode::OK, &json!(body));
    paginate(&mut res, "/api/v2.0/projects", raw.as_deref(), page, total);
    Ok(res)
}

/// `HEAD /projects?project_name=`: 200 when the name is taken, else 404.
pub async fn head(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let p = params(&raw);
    let Some(name) = p.get("project_name").filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request("project_name is required"));
    };
    if s.catalog.project_name_taken(&sub, name).await? {
        Ok(ok_empty(StatusCode::OK))
    } else {
        Ok(ok_empty(StatusCode::NOT_FOUND))
    }
}

/// `POST /projects`.
pub async fn create(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ProjectReq>,
) -> ApiResult {
    let metadata = req.metadata_strings().map_err(ApiError::bad_request)?;
    let name = req
        .project_name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("project_name is required"))?;
    let project = s
        .catalog
        .create_project(
            &sub,
            CreateProject {
                name,
                public: req.public,
                metadata,
                storage_limit: req.storage_limit,
                registry_id: req.registry_id,
            },
        )
        .await?;
    let by_name = headers
        .get("x-resource-name-in-location")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    let location = if by_name {
        format!("/api/v2.0/projects/{}", project.name)
    } else {
        format!("/api/v2.0/projects/{}", project.id)
    };
    let mut res = ok_empty(StatusCode::CREATED);
    if let Ok(v) = location.parse() {
        res.headers_mut().insert("location", v);
    }
    Ok(res)
}

/// `GET /projects/{project_name_or_id}`.
pub async fn get(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> ApiResult {
    let p = s
        .catalog
        .get_project(&sub, &key(&project, &headers))
        .await?;
    Ok(json(StatusCode::OK, &models::project(&p, &sub)))
}

/// `PUT /projects/{project_name_or_id}`: publicity and metadata.
pub async fn update(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
    JsonBody(req): JsonBody<ProjectReq>,
) -> ApiResult {
    let metadata = req.metadata_strings().map_err(ApiError::bad_request)?;
    if req.storage_limit.is_some() {
        return Err(ApiError::bad_request(
            "storage_limit is changed through /quotas, not on the project",
        ));
    }
    s.catalog
        .update_project(&sub, &key(&project, &headers), req.public, &metadata)
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `DELETE /projects/{project_name_or_id}`: 412 while it holds repositories.
pub async fn delete(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> ApiResult {
    s.catalog
        .delete_project(&sub, &key(&project, &headers))
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `GET /projects/{project_name_or_id}/_deletable`.
pub async fn deletable(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> ApiResult {
    let (deletable, message) = s
        .catalog
        .project_deletable(&sub, &key(&project, &headers))
        .await?;
    Ok(json(
        StatusCode::OK,
        &json!({ "deletable": deletable, "message": message }),
    ))
}

/// `GET /projects/{project_name_or_id}/summary`.
pub async fn summary(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> ApiResult {
    let (p, summary) = s
        .catalog
        .project_summary(&sub, &key(&project, &headers))
        .await?;
    Ok(json(StatusCode::OK, &models::summary(&p, &summary)))
}
