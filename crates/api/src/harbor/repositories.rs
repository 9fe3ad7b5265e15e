//! Repositories, artifacts and tags (swagger tags `repository`,
//! `artifact`). Repository names in paths may arrive URL-encoded twice.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Extension;
use berth_core::access::{Subject, Visibility};
use berth_core::query::{
    ArtifactQuery, ArtifactSortField, Page, RepositoryQuery, RepositorySortField, TagFilter,
    TextMatch,
};
use berth_oci::{Digest, Reference};
use serde_json::json;

use super::error::ApiError;
use super::models::{self, ArtifactView, RepositoryReq, TagReq};
use super::projects::{list_params, params};
use super::query::{paginate, parse_q, parse_sort, Term};
use super::{decode_twice, json, ok_empty, ApiResult, JsonBody};
use crate::AppState;

fn repository_query(raw: &Option<String>) -> Result<(RepositoryQuery, Page), ApiError> {
    let lp = list_params(&params(raw));
    let page = lp.page()?;
    let mut query = RepositoryQuery {
        project_id: None,
        name: None,
        visibility: Visibility::All,
        sort: parse_sort(lp.sort.as_deref(), |f| match f {
            "name" => Some(RepositorySortField::Name),
            "creation_time" => Some(RepositorySortField::CreationTime),
            "update_time" => Some(RepositorySortField::UpdateTime),
            "pull_count" => Some(RepositorySortField::PullCount),
            "id" => Some(RepositorySortField::Id),
            _ => None,
        })?,
    };
    for (k, term) in parse_q(lp.q.as_deref(), &["name"])? {
        if k == "name" {
            query.name = Some(term.text(&k)?);
        }
    }
    Ok((query, page))
}

/// `GET /repositories`: repositories of every project the caller may see.
pub async fn list_all(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let (query, page) = repository_query(&raw)?;
    let (repos, total) = s.catalog.list_repositories(&sub, None, query, page).await?;
    let mut res = json(
        StatusCode::OK,
        &json!(repos.iter().map(models::repository).collect::<Vec<_>>()),
    );
    paginate(
        &mut res,
        "/api/v2.0/repositories",
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

/// `GET /projects/{project_name}/repositories`.
pub async fn list(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let (query, page) = repository_query(&raw)?;
    let key = berth_core::catalog::ProjectKey::Name(project.clone());
    let (repos, total) = s
        .catalog
        .list_repositories(&sub, Some(&key), query, page)
        .await?;
    let mut res = json(
        StatusCode::OK,
        &json!(repos.iter().map(models::repository).collect::<Vec<_>>()),
    );
    paginate(
        &mut res,
        &format!("/api/v2.0/projects/{project}/repositories"),
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

/// `GET /projects/{project_name}/repositories/{repository_name}`.
pub async fn get(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((project, repo)): Path<(String, String)>,
) -> ApiResult {
    let r = s
        .catalog
        .get_repository(&sub, &project, &decode_twice(&repo))
        .await?;
    Ok(json(StatusCode::OK, &models::repository(&r)))
}

/// `PUT /projects/{project_name}/repositories/{repository_name}`: the
/// description.
pub async fn update(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((project, repo)): Path<(String, String)>,
    JsonBody(req): JsonBody<RepositoryReq>,
) -> ApiResult {
    let description = req.description.unwrap_or_default();
    if description.len() > 64 * 1024 {
        return Err(ApiError::bad_request("the description is too long"));
    }
    s.catalog
        .update_repository(&sub, &project, &decode_twice(&repo), &description)
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `DELETE /projects/{project_name}/repositories/{repository_name}`.
pub async fn delete(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((project, repo)): Path<(String, String)>,
) -> ApiResult {
    s.catalog
        .delete_repository(&sub, &project, &decode_twice(&repo))
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

fn flag(
    p: &std::collections::HashMap<String, String>,
    name: &str,
    default: bool,
) -> Result<bool, ApiError> {
    match p.get(name).map(String::as_str) {
        None | Some("") => Ok(default),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(_) => Err(ApiError::bad_request(format!(
            "{name} must be true or false"
        ))),
    }
}

fn reference(r: &str) -> Result<Reference, ApiError> {
    let r = decode_twice(r);
    Reference::parse(&r).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `GET …/repositories/{repository_name}/artifacts`, with Harbor's `q`
/// keys `tags` (`*`, `nil`, `~v`, `v`), `digest`, `type`, `media_type`.
pub async fn list_artifacts(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((project, repo)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let p = params(&raw);
    let lp = list_params(&p);
    let page = lp.page()?;
    let mut query = ArtifactQuery::all(0);
    query.sort = parse_sort(lp.sort.as_deref(), |f| match f {
        "push_time" => Some(ArtifactSortField::PushTime),
        "pull_time" => Some(ArtifactSortField::PullTime),
        "size" => Some(ArtifactSortField::Size),
        "digest" => Some(ArtifactSortField::Digest),
        "id" => Some(ArtifactSortField::Id),
        _ => None,
    })?;
    for (k, term) in parse_q(lp.q.as_deref(), &["tags", "digest", "type", "media_type"])? {
        match (k.as_str(), term) {
            ("tags", Term::Exact(v)) if v == "*" => query.tags = Some(TagFilter::Tagged),
            ("tags", Term::Exact(v)) if v == "nil" => query.tags = Some(TagFilter::Untagged),
            ("tags", t) => query.tags = Some(TagFilter::Name(t.text("tags")?)),
            ("digest", Term::Exact(v)) => {
                query.digest = Some(
                    Digest::parse(&v).map_err(|_| ApiError::bad_request("invalid digest in q"))?,
                )
            }
            ("type", Term::Exact(v)) => query.kind = Some(v.to_uppercase()),
            ("media_type", t) => query.media_type = Some(t.text("media_type")?),
            (k, _) => return Err(ApiError::bad_request(format!("unsupported query for {k}"))),
        }
    }
    let view = ArtifactView {
        with_tag: flag(&p, "with_tag", true)?,
    };
    let path = decode_twice(&repo);
    let (artifacts, total) = s
        .catalog
        .list_artifacts(&sub, &project, &path, query, page)
        .await?;
    let body: Vec<_> = artifacts
        .iter()
        .map(|a| models::artifact(a, view))
        .collect();
    let mut res = json(StatusCode::OK, &json!(body));
    let link_path = format!(
        "/api/v2.0/projects/{project}/repositories/{}/artifacts",
        percent_encoding::utf8_percent_encode(&path, percent_encoding::NON_ALPHANUMERIC)
    );
    paginate(&mut res, &link_path, raw.as_deref(), page, total);
    Ok(res)
}

/// `GET …/artifacts/{reference}` (digest or tag).
pub async fn get_artifact(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((project, repo, r)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let p = params(&raw);
    let view = ArtifactView {
        with_tag: flag(&p, "with_tag", true)?,
    };
    let a = s
        .catalog
        .get_artifact(&sub, &project, &decode_twice(&repo), &reference(&r)?)
        .await?;
    Ok(json(StatusCode::OK, &models::artifact(&a, view)))
}

/// `DELETE …/artifacts/{reference}`: the artifact with all its tags.
pub async fn delete_artifact(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((project, repo, r)): Path<(String, String, String)>,
) -> ApiResult {
    s.catalog
        .delete_artifact(&sub, &project, &decode_twice(&repo), &reference(&r)?)
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `POST …/repositories/{repository_name}/artifacts?from=<project>/<repo>:<tag>|@<digest>`:
/// 201 with the copy's `Location`.
pub async fn copy_artifact(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((project, repo)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let p = params(&raw);
    let from = p.get("from").filter(|f| !f.is_empty()).ok_or_else(|| {
        ApiError::bad_request("from is required: <project>/<repository>:<tag> or @<digest>")
    })?;
    let (name, r) = match from.split_once('@') {
        Some((n, d)) => (n, d.to_owned()),
        None => match from
            .rsplit_once(':')
            .filter(|(n, t)| !t.contains('/') && !n.is_empty())
        {
            Some((n, t)) => (n, t.to_owned()),
            None => {
                return Err(ApiError::bad_request(
                    "from must name a tag (:tag) or a digest (@sha256:…)",
                ))
            }
        },
    };
    let source =
        berth_oci::RepoName::parse(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let repo = decode_twice(&repo);
    let target = berth_oci::RepoName::parse(&format!("{project}/{repo}"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let digest = s
        .registry
        .copy_artifact(&sub, &target, &source, &reference(&r)?)
        .await?;
    let mut res = ok_empty(StatusCode::CREATED);
    let encoded = repo.replace('/', "%252F");
    if let Ok(v) =
        format!("/api/v2.0/projects/{project}/repositories/{encoded}/artifacts/{digest}").parse()
    {
        res.headers_mut().insert("location", v);
    }
    Ok(res)
}

/// `GET …/artifacts/{reference}/tags`.
pub async fn list_tags(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((project, repo, r)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let p = params(&raw);
    let lp = list_params(&p);
    let page = lp.page()?;
    let mut name_filter: Option<TextMatch> = None;
    for (k, term) in parse_q(lp.q.as_deref(), &["name"])? {
        if k == "name" {
            name_filter = Some(term.text(&k)?);
        }
    }
    let path = decode_twice(&repo);
    let mut tags = s
        .catalog
        .list_tags(&sub, &project, &path, &reference(&r)?)
        .await?;
    if let Some(f) = &name_filter {
        tags.retain(|t| match f {
            TextMatch::Exact(v) => &t.name == v,
            TextMatch::Fuzzy(v) => t.name.to_lowercase().contains(&v.to_lowercase()),
        });
    }
    let total = tags.len() as i64;
    let start = (page.offset() as usize).min(tags.len());
    let end = start.saturating_add(page.size as usize).min(tags.len());
    let body: Vec<_> = tags[start..end].iter().map(models::tag).collect();
    let mut res = json(StatusCode::OK, &json!(body));
    let link_path = format!(
        "/api/v2.0/projects/{project}/repositories/{}/artifacts/{r}/tags",
        percent_encoding::utf8_percent_encode(&path, percent_encoding::NON_ALPHANUMERIC)
    );
    paginate(&mut res, &link_path, raw.as_deref(), page, total);
    Ok(res)
}

/// `POST …/artifacts/{reference}/tags`.
pub async fn create_tag(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((project, repo, r)): Path<(String, String, String)>,
    JsonBody(req): JsonBody<TagReq>,
) -> ApiResult {
    let path = decode_twice(&repo);
    s.catalog
        .create_tag(&sub, &project, &path, &reference(&r)?, &req.name)
        .await?;
    let mut res = ok_empty(StatusCode::CREATED);
    let loc = format!(
        "/api/v2.0/projects/{project}/repositories/{}/artifacts/{r}/tags/{}",
        percent_encoding::utf8_percent_encode(&path, percent_encoding::NON_ALPHANUMERIC),
        req.name
    );
    if let Ok(v) = loc.parse() {
        res.headers_mut().insert("location", v);
    }
    Ok(res)
}

/// `DELETE …/artifacts/{reference}/tags/{tag_name}`.
pub async fn delete_tag(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((project, repo, r, tag)): Path<(String, String, String, String)>,
) -> ApiResult {
    s.catalog
        .delete_tag(
            &sub,
            &project,
            &decode_twice(&repo),
            &reference(&r)?,
            &decode_twice(&tag),
        )
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `GET …/artifacts/{reference}/additions/{addition}`: `build_history`.
pub async fn addition(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path((project, repo, r, addition)): Path<(String, String, String, String)>,
) -> ApiResult {
    match addition.as_str() {
        "build_history" => {
            let history = s
                .catalog
                .build_history(&sub, &project, &decode_twice(&repo), &reference(&r)?)
                .await?;
            Ok(json(StatusCode::OK, &models::build_history(&history)))
        }
        other => Err(ApiError::Raw(
            super::error::HarborCode::NotFound,
            format!("addition {other} is not available for this artifact"),
        )),
    }
}
