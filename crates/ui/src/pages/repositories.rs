//! A project's Repositories tab, a repository's artifacts (tags, pull
//! commands, description), an artifact's detail (manifest, config, layers,
//! build history, annotations, index children, referrers), and the
//! confirmation pages of deleting repositories and artifacts.
//!
//! Repository paths inside a project may contain slashes, so they travel
//! as the `repo` query parameter (or form field), never as a path segment.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use berth_api::AppState;
use berth_core::access::{Action, Resource, Subject, Visibility};
use berth_core::catalog::ProjectKey;
use berth_core::model::{Artifact, Project};
use berth_core::query::{ArtifactQuery, RepositoryQuery, TagFilter, TextMatch};
use berth_core::CoreError;
use berth_oci::{media, Digest, Manifest, Platform, Reference, RepoName};
use serde::Deserialize;

use super::{can, project_nav, ProjectNav};
use crate::error::{UiError, UiResult};
use crate::session::{Posted, Viewer};
use crate::view::{self, done, page, page_status, url, Chrome, ListQuery, Pager};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/harbor/projects/{project}/repositories", get(list))
        .route(
            "/harbor/projects/{project}/repositories/delete",
            get(repo_delete_confirm).post(repo_delete),
        )
        .route(
            "/harbor/projects/{project}/repositories/description",
            post(repo_description),
        )
        .route("/harbor/projects/{project}/artifacts", get(artifacts))
        .route(
            "/harbor/projects/{project}/artifacts/delete",
            get(artifact_delete_confirm).post(artifact_delete),
        )
        .route("/harbor/projects/{project}/artifact", get(detail))
        .route("/harbor/projects/{project}/tags/add", post(tag_add))
        .route("/harbor/projects/{project}/tags/delete", post(tag_delete))
}

/// The longest description the portal saves (as the API).
const MAX_DESCRIPTION: usize = 64 * 1024;
/// The largest config blob shown on the detail page.
const CONFIG_LIMIT: u64 = 1 << 20;
/// How many children of an index the detail page looks up for their tags.
const MAX_CHILD_LOOKUPS: usize = 64;
/// How many accessories the delete confirmation follows at most.
const MAX_DOOMED: usize = 200;

// ---- helpers ---------------------------------------------------------------

/// A user mistake on a form, shown on the page; anything else is an error
/// page with its own status.
fn form_error(e: CoreError) -> Result<(StatusCode, String), UiError> {
    match e {
        CoreError::BadRequest(m) => Ok((StatusCode::BAD_REQUEST, m)),
        CoreError::Conflict(m) => Ok((StatusCode::CONFLICT, m)),
        CoreError::Precondition(m) => Ok((StatusCode::PRECONDITION_FAILED, m)),
        e @ CoreError::TagNotFound(_) => Ok((StatusCode::NOT_FOUND, e.to_string())),
        e => Err(e.into()),
    }
}

/// The repository path given in a query or form: trimmed, without a
/// leading `/`; refused when empty.
fn repo_param(repo: &str) -> Result<String, UiError> {
    let r = repo.trim().trim_matches('/');
    if r.is_empty() {
        return Err(UiError::BadRequest("no repository was named".into()));
    }
    Ok(r.to_owned())
}

fn digest_param(digest: &str) -> Result<Digest, UiError> {
    Digest::parse(digest.trim())
        .map_err(|_| UiError::BadRequest(format!("{:?} is not a valid digest", digest.trim())))
}

fn repo_name(project: &str, repo: &str) -> Result<RepoName, UiError> {
    RepoName::parse(&format!("{project}/{repo}"))
        .map_err(|e| UiError::BadRequest(format!("invalid repository name: {e}")))
}

/// "webapp/site" in project "webapp" → "site".
fn path_in_project<'a>(project: &str, full: &'a str) -> &'a str {
    full.strip_prefix(project)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(full)
}

fn repo_url(project: &str, repo: &str) -> String {
    url(
        &format!("/harbor/projects/{project}/artifacts"),
        &[("repo", repo)],
    )
}

fn detail_url(project: &str, repo: &str, digest: &str) -> String {
    url(
        &format!("/harbor/projects/{project}/artifact"),
        &[("repo", repo), ("digest", digest)],
    )
}

/// The first `max` characters, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", s[..i].trim_end()),
    }
}

/// "linux/arm64/v8"; "unknown" for an empty platform.
fn platform_label(p: &Platform) -> String {
    let mut parts: Vec<&str> = vec![];
    for v in [p.os.as_str(), p.architecture.as_str()] {
        parts.push(if v.is_empty() { "unknown" } else { v });
    }
    if let Some(v) = p.variant.as_deref().filter(|v| !v.is_empty()) {
        parts.push(v);
    }
    let mut s = parts.join("/");
    if let Some(v) = p.os_version.as_deref().filter(|v| !v.is_empty()) {
        s.push_str(&format!(" ({v})"));
    }
    s
}

/// What an artifact is, for humans: from its config media type
/// (`media_type`), its manifest's media type, its artifact type and tags.
fn type_label(
    media_type: &str,
    manifest_media_type: &str,
    artifact_type: &str,
    tags: &[&str],
) -> String {
    let art = artifact_type.to_ascii_lowercase();
    let mt = media_type.to_ascii_lowercase();
    let has = |needle: &str| art.contains(needle) || mt.contains(needle);
    if has("cosign")
        || has("sigstore")
        || has("notary.signature")
        || tags.iter().any(|t| t.ends_with(".sig"))
    {
        return "Signature".into();
    }
    if ["spdx", "cyclonedx", "sbom"]
        .iter()
        .any(|n| art.contains(n))
        || tags.iter().any(|t| t.ends_with(".sbom"))
    {
        return "SBOM".into();
    }
    if media::is_index(manifest_media_type) || media::is_index(media_type) {
        return "Image index".into();
    }
    if mt == media::HELM_CONFIG {
        return "Helm chart".into();
    }
    if media::is_image_config(&mt) {
        return "Image".into();
    }
    let what = [artifact_type, media_type, manifest_media_type]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or("unknown");
    format!("Artifact ({what})")
}

fn artifact_label(a: &Artifact) -> String {
    let tags: Vec<&str> = a.tags.iter().map(|t| t.name.as_str()).collect();
    type_label(
        &a.media_type,
        &a.manifest_media_type,
        &a.artifact_type,
        &tags,
    )
}

/// Re-indents valid JSON without reordering keys or touching numbers and
/// strings; `None` when `raw` is not JSON.
fn pretty_json(raw: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(raw).ok()?;
    let text = std::str::from_utf8(raw).ok()?;
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    out.push(chars.next().unwrap_or(' '));
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

/// Reads a whole blob of at most `limit` bytes.
async fn read_small_blob(
    s: &AppState,
    subject: &Subject,
    repo: &RepoName,
    digest: &Digest,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let blob = s
        .registry
        .open_blob(subject, repo, digest)
        .await
        .map_err(shown_error)?;
    if blob.size > limit {
        return Err(format!(
            "It is {}, too large to show here (the limit is {}).",
            view::bytes(blob.size as i64),
            view::bytes(limit as i64)
        ));
    }
    let stream = s
        .registry
        .read_blob(&blob, None)
        .await
        .map_err(shown_error)?;
    let body = axum::body::Body::from_stream(stream);
    axum::body::to_bytes(body, limit as usize)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| "It could not be read.".to_owned())
}

/// A domain error as a line on a page (internal details stay in the log).
fn shown_error(e: CoreError) -> String {
    match e {
        CoreError::Internal(detail) => {
            tracing::error!(error = %detail, "reading a blob for the portal");
            "It could not be read.".into()
        }
        e => format!("It could not be read: {e}."),
    }
}

fn all_manifest_types() -> Vec<String> {
    media::MANIFEST_TYPES
        .iter()
        .map(|m| (*m).to_owned())
        .collect()
}

// ---- the repositories list -------------------------------------------------

struct RepoRow {
    /// The full name ("project/path").
    name: String,
    url: String,
    delete_url: String,
    description: String,
    artifact_count: i64,
    pull_count: i64,
    updated: String,
}

#[derive(Template)]
#[template(path = "repo_list.html")]
struct RepoListPage {
    chrome: Chrome,
    nav: ProjectNav,
    q: String,
    rows: Vec<RepoRow>,
    pager: Pager,
    can_delete: bool,
}

async fn list(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(project): Path<String>,
    Query(q): Query<ListQuery>,
) -> UiResult {
    viewer.require()?;
    let (p, nav) = project_nav(&s, &viewer, &project, "repositories").await?;
    let term = q.term().to_owned();
    let page_no = q.page();
    let query = RepositoryQuery {
        project_id: None,
        name: (!term.is_empty()).then(|| TextMatch::Fuzzy(term.clone())),
        visibility: Visibility::All,
        sort: vec![],
    };
    let (repos, total) = s
        .catalog
        .list_repositories(
            &viewer.subject,
            Some(&ProjectKey::Name(p.name.clone())),
            query,
            page_no,
        )
        .await?;
    let rows: Vec<RepoRow> = repos
        .iter()
        .map(|r| {
            let path = path_in_project(&p.name, &r.name);
            RepoRow {
                name: r.name.clone(),
                url: repo_url(&p.name, path),
                delete_url: url(
                    &format!("/harbor/projects/{}/repositories/delete", p.name),
                    &[("repo", path)],
                ),
                description: truncate(&r.description, 80),
                artifact_count: r.artifact_count,
                pull_count: r.pull_count,
                updated: view::time(Some(r.update_time)),
            }
        })
        .collect();
    let base = url(
        &format!("/harbor/projects/{}/repositories", p.name),
        &[("q", &term)],
    );
    page(
        &viewer,
        &RepoListPage {
            chrome: Chrome::new(&s, &viewer, "projects").await?,
            can_delete: can(&viewer, &p, Resource::Repository, Action::Delete),
            nav,
            q: term,
            pager: Pager::new(&base, page_no, rows.len(), total),
            rows,
        },
    )
}

// ---- deleting a repository -------------------------------------------------

#[derive(Template)]
#[template(path = "repo_delete.html")]
struct RepoDeletePage {
    chrome: Chrome,
    nav: ProjectNav,
    repo: String,
    full_name: String,
    back: String,
    artifact_count: i64,
    can_delete: bool,
    error: String,
}

#[derive(Deserialize, Default)]
struct RepoParam {
    #[serde(default)]
    repo: String,
}

async fn render_repo_delete(
    s: &AppState,
    viewer: &Viewer,
    project: &str,
    repo: &str,
    error: Option<(StatusCode, String)>,
) -> UiResult {
    let (p, nav) = project_nav(s, viewer, project, "repositories").await?;
    let r = s
        .catalog
        .get_repository(&viewer.subject, &p.name, repo)
        .await?;
    let (status, error) = error.unwrap_or((StatusCode::OK, String::new()));
    page_status(
        viewer,
        status,
        &RepoDeletePage {
            chrome: Chrome::new(s, viewer, "projects").await?,
            repo: repo.to_owned(),
            full_name: r.name.clone(),
            back: repo_url(&p.name, repo),
            artifact_count: r.artifact_count,
            can_delete: can(viewer, &p, Resource::Repository, Action::Delete),
            nav,
            error,
        },
    )
}

async fn repo_delete_confirm(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(project): Path<String>,
    Query(q): Query<RepoParam>,
) -> UiResult {
    viewer.require()?;
    let repo = repo_param(&q.repo)?;
    render_repo_delete(&s, &viewer, &project, &repo, None).await
}

async fn repo_delete(
    State(s): State<AppState>,
    Path(project): Path<String>,
    form: Posted<RepoParam>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let repo = repo_param(&form.value.repo)?;
    match s
        .catalog
        .delete_repository(&viewer.subject, &project, &repo)
        .await
    {
        Ok(()) => Ok(done(
            &format!("/harbor/projects/{project}/repositories"),
            &format!("Repository {project}/{repo} deleted."),
        )),
        Err(e) => {
            let shown = form_error(e)?;
            render_repo_delete(&s, viewer, &project, &repo, Some(shown)).await
        }
    }
}

// ---- a repository's artifacts ----------------------------------------------

struct ArtifactRow {
    digest: String,
    short: String,
    detail_url: String,
    delete_url: String,
    tags: Vec<String>,
    size: String,
    label: String,
    platforms: Vec<String>,
    pull_id: String,
    pull: String,
    pushed: String,
    pulled: String,
}

#[derive(Template)]
#[template(path = "repo_artifacts.html")]
struct ArtifactsPage {
    chrome: Chrome,
    nav: ProjectNav,
    /// The path inside the project.
    repo: String,
    full_name: String,
    description: String,
    artifact_count: i64,
    pull_count: i64,
    q: String,
    rows: Vec<ArtifactRow>,
    pager: Pager,
    can_edit: bool,
    can_add_tag: bool,
    can_delete_tag: bool,
    can_delete: bool,
    can_delete_repo: bool,
    delete_repo_url: String,
    error: String,
}

#[derive(Deserialize, Default)]
struct ArtifactsQuery {
    #[serde(default)]
    repo: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<u64>,
}

/// The list's filter: a full digest, else part of a tag's name.
fn artifact_filter(term: &str) -> (Option<Digest>, Option<TagFilter>) {
    if term.is_empty() {
        return (None, None);
    }
    match Digest::parse(term) {
        Ok(d) => (Some(d), None),
        Err(_) => (
            None,
            Some(TagFilter::Name(TextMatch::Fuzzy(term.to_owned()))),
        ),
    }
}

fn artifact_row(project: &Project, repo: &str, host: &str, a: &Artifact) -> ArtifactRow {
    let digest = a.digest.as_str().to_owned();
    ArtifactRow {
        short: view::short_digest(&digest),
        detail_url: detail_url(&project.name, repo, &digest),
        delete_url: url(
            &format!("/harbor/projects/{}/artifacts/delete", project.name),
            &[("repo", repo), ("digest", &digest)],
        ),
        tags: a.tags.iter().map(|t| t.name.clone()).collect(),
        size: view::bytes(a.size),
        label: artifact_label(a),
        platforms: a
            .references
            .iter()
            .filter_map(|r| r.platform.as_ref().map(platform_label))
            .collect(),
        pull_id: format!("pull-{}", a.digest.hex()),
        pull: format!("docker pull {host}/{}/{repo}@{digest}", project.name),
        pushed: view::time(Some(a.push_time)),
        pulled: view::time(a.pull_time),
        digest,
    }
}

#[allow(clippy::too_many_arguments)]
async fn render_artifacts(
    s: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    project: &str,
    repo: &str,
    q: &ArtifactsQuery,
    error: Option<(StatusCode, String)>,
) -> UiResult {
    let (p, nav) = project_nav(s, viewer, project, "repositories").await?;
    let r = s
        .catalog
        .get_repository(&viewer.subject, &p.name, repo)
        .await?;
    let term = q.q.trim().to_owned();
    let page_no = berth_core::query::Page::new(q.page.unwrap_or(1), view::PAGE_SIZE);
    let mut query = ArtifactQuery::all(r.id);
    (query.digest, query.tags) = artifact_filter(&term);
    let (artifacts, total) = s
        .catalog
        .list_artifacts(&viewer.subject, &p.name, repo, query, page_no)
        .await?;
    let host = crate::view::registry_host(s, headers);
    let rows: Vec<ArtifactRow> = artifacts
        .iter()
        .map(|a| artifact_row(&p, repo, &host, a))
        .collect();
    let base = url(
        &format!("/harbor/projects/{}/artifacts", p.name),
        &[("repo", repo), ("q", &term)],
    );
    let (status, error) = error.unwrap_or((StatusCode::OK, String::new()));
    page_status(
        viewer,
        status,
        &ArtifactsPage {
            chrome: Chrome::new(s, viewer, "projects").await?,
            repo: repo.to_owned(),
            full_name: r.name.clone(),
            description: r.description.clone(),
            artifact_count: r.artifact_count,
            pull_count: r.pull_count,
            q: term,
            pager: Pager::new(&base, page_no, rows.len(), total),
            rows,
            can_edit: can(viewer, &p, Resource::Repository, Action::Update),
            can_add_tag: can(viewer, &p, Resource::Tag, Action::Create),
            can_delete_tag: can(viewer, &p, Resource::Tag, Action::Delete),
            can_delete: can(viewer, &p, Resource::Artifact, Action::Delete),
            can_delete_repo: can(viewer, &p, Resource::Repository, Action::Delete),
            delete_repo_url: url(
                &format!("/harbor/projects/{}/repositories/delete", p.name),
                &[("repo", repo)],
            ),
            nav,
            error,
        },
    )
}

async fn artifacts(
    State(s): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(project): Path<String>,
    Query(q): Query<ArtifactsQuery>,
) -> UiResult {
    viewer.require()?;
    let repo = repo_param(&q.repo)?;
    render_artifacts(&s, &viewer, &headers, &project, &repo, &q, None).await
}

#[derive(Deserialize)]
struct DescriptionForm {
    #[serde(default)]
    repo: String,
    #[serde(default)]
    description: String,
}

async fn repo_description(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    form: Posted<DescriptionForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let repo = repo_param(&form.value.repo)?;
    let description = form.value.description.trim();
    let result = if description.len() > MAX_DESCRIPTION {
        Err(CoreError::BadRequest(format!(
            "The description is too long (at most {} KiB).",
            MAX_DESCRIPTION / 1024
        )))
    } else {
        s.catalog
            .update_repository(&viewer.subject, &project, &repo, description)
            .await
    };
    match result {
        Ok(()) => Ok(done(&repo_url(&project, &repo), "Description saved.")),
        Err(e) => {
            let shown = form_error(e)?;
            let q = ArtifactsQuery::default();
            render_artifacts(&s, viewer, &headers, &project, &repo, &q, Some(shown)).await
        }
    }
}

#[derive(Deserialize)]
struct TagForm {
    #[serde(default)]
    repo: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    tag: String,
}

async fn tag_add(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    form: Posted<TagForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let repo = repo_param(&form.value.repo)?;
    let digest = digest_param(&form.value.digest)?;
    let tag = form.value.tag.trim();
    let result = if tag.is_empty() {
        Err(CoreError::BadRequest("Type the tag to add.".into()))
    } else {
        s.catalog
            .create_tag(
                &viewer.subject,
                &project,
                &repo,
                &Reference::Digest(digest),
                tag,
            )
            .await
            .map(|_| ())
    };
    match result {
        Ok(()) => Ok(done(
            &repo_url(&project, &repo),
            &format!("Tag {tag} added."),
        )),
        Err(e) => {
            let (status, m) = form_error(e)?;
            let q = ArtifactsQuery::default();
            let shown = Some((status, format!("Could not add the tag {tag}: {m}")));
            render_artifacts(&s, viewer, &headers, &project, &repo, &q, shown).await
        }
    }
}

async fn tag_delete(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    form: Posted<TagForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let repo = repo_param(&form.value.repo)?;
    let digest = digest_param(&form.value.digest)?;
    let tag = form.value.tag.trim();
    match s
        .catalog
        .delete_tag(
            &viewer.subject,
            &project,
            &repo,
            &Reference::Digest(digest),
            tag,
        )
        .await
    {
        Ok(()) => Ok(done(
            &repo_url(&project, &repo),
            &format!("Tag {tag} removed."),
        )),
        Err(e) => {
            let (status, m) = form_error(e)?;
            let q = ArtifactsQuery::default();
            let shown = Some((status, format!("Could not remove the tag {tag}: {m}")));
            render_artifacts(&s, viewer, &headers, &project, &repo, &q, shown).await
        }
    }
}

// ---- deleting an artifact --------------------------------------------------

/// A tag that goes with the artifact, and whose it is.
struct DoomedTag {
    tag: String,
    /// Empty for the artifact itself, else the accessory's short digest.
    of: String,
}

struct DoomedAccessory {
    short: String,
    url: String,
    label: String,
}

#[derive(Template)]
#[template(path = "artifact_delete.html")]
struct ArtifactDeletePage {
    chrome: Chrome,
    nav: ProjectNav,
    repo: String,
    full_name: String,
    digest: String,
    short: String,
    label: String,
    back: String,
    detail: String,
    tags: Vec<DoomedTag>,
    accessories: Vec<DoomedAccessory>,
    children: usize,
    can_delete: bool,
    error: String,
}

#[derive(Deserialize, Default)]
struct ArtifactParam {
    #[serde(default)]
    repo: String,
    #[serde(default)]
    digest: String,
}

async fn render_artifact_delete(
    s: &AppState,
    viewer: &Viewer,
    project: &str,
    repo: &str,
    digest: &Digest,
    error: Option<(StatusCode, String)>,
) -> UiResult {
    let (p, nav) = project_nav(s, viewer, project, "repositories").await?;
    let a = s
        .catalog
        .get_artifact(
            &viewer.subject,
            &p.name,
            repo,
            &Reference::Digest(digest.clone()),
        )
        .await?;
    let name = repo_name(&p.name, repo)?;
    let mut tags: Vec<DoomedTag> = a
        .tags
        .iter()
        .map(|t| DoomedTag {
            tag: t.name.clone(),
            of: String::new(),
        })
        .collect();
    // Accessories go with it, recursively, with their tags.
    let mut accessories = vec![];
    let mut seen = vec![a.digest.clone()];
    let mut queue = vec![a.digest.clone()];
    while let Some(d) = queue.pop() {
        if seen.len() > MAX_DOOMED {
            break;
        }
        for r in s
            .registry
            .referrers(&viewer.subject, &name, &d, None)
            .await?
        {
            if seen.contains(&r.digest) {
                continue;
            }
            seen.push(r.digest.clone());
            queue.push(r.digest.clone());
            let short = view::short_digest(r.digest.as_str());
            let mut label = type_label("", &r.media_type, &r.artifact_type, &[]);
            if let Ok(acc) = s
                .catalog
                .get_artifact(
                    &viewer.subject,
                    &p.name,
                    repo,
                    &Reference::Digest(r.digest.clone()),
                )
                .await
            {
                label = artifact_label(&acc);
                tags.extend(acc.tags.iter().map(|t| DoomedTag {
                    tag: t.name.clone(),
                    of: short.clone(),
                }));
            }
            accessories.push(DoomedAccessory {
                url: detail_url(&p.name, repo, r.digest.as_str()),
                short,
                label,
            });
        }
    }
    let (status, error) = error.unwrap_or((StatusCode::OK, String::new()));
    let digest = a.digest.as_str().to_owned();
    page_status(
        viewer,
        status,
        &ArtifactDeletePage {
            chrome: Chrome::new(s, viewer, "projects").await?,
            repo: repo.to_owned(),
            full_name: a.repository_name.clone(),
            short: view::short_digest(&digest),
            label: artifact_label(&a),
            back: repo_url(&p.name, repo),
            detail: detail_url(&p.name, repo, &digest),
            digest,
            tags,
            accessories,
            children: a.references.len(),
            can_delete: can(viewer, &p, Resource::Artifact, Action::Delete),
            nav,
            error,
        },
    )
}

async fn artifact_delete_confirm(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(project): Path<String>,
    Query(q): Query<ArtifactParam>,
) -> UiResult {
    viewer.require()?;
    let repo = repo_param(&q.repo)?;
    let digest = digest_param(&q.digest)?;
    render_artifact_delete(&s, &viewer, &project, &repo, &digest, None).await
}

async fn artifact_delete(
    State(s): State<AppState>,
    Path(project): Path<String>,
    form: Posted<ArtifactParam>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let repo = repo_param(&form.value.repo)?;
    let digest = digest_param(&form.value.digest)?;
    match s
        .catalog
        .delete_artifact(
            &viewer.subject,
            &project,
            &repo,
            &Reference::Digest(digest.clone()),
        )
        .await
    {
        Ok(()) => Ok(done(
            &repo_url(&project, &repo),
            &format!("Artifact {} deleted.", view::short_digest(digest.as_str())),
        )),
        Err(e) => {
            let shown = form_error(e)?;
            render_artifact_delete(&s, viewer, &project, &repo, &digest, Some(shown)).await
        }
    }
}

// ---- an artifact's detail --------------------------------------------------

struct LayerRow {
    media_type: String,
    digest: String,
    short: String,
    size: String,
}

struct HistoryRow {
    created: String,
    created_by: String,
    comment: String,
    empty_layer: bool,
}

struct ChildRow {
    platform: String,
    digest: String,
    short: String,
    url: String,
    tags: Vec<String>,
}

struct ReferrerRow {
    digest: String,
    short: String,
    url: String,
    artifact_type: String,
    media_type: String,
    size: String,
}

#[derive(Template)]
#[template(path = "artifact_detail.html")]
struct DetailPage {
    chrome: Chrome,
    nav: ProjectNav,
    repo: String,
    full_name: String,
    back: String,
    digest: String,
    short: String,
    label: String,
    manifest_media_type: String,
    media_type: String,
    artifact_type: String,
    size: String,
    pushed: String,
    pulled: String,
    tags: Vec<String>,
    subject_short: String,
    subject_url: String,
    pull: String,
    manifest_json: String,
    config_digest: String,
    config_media_type: String,
    config_json: String,
    config_note: String,
    layers: Vec<LayerRow>,
    history: Vec<HistoryRow>,
    annotations: Vec<(String, String)>,
    is_index: bool,
    children: Vec<ChildRow>,
    referrers: Vec<ReferrerRow>,
    can_delete: bool,
    delete_url: String,
}

fn history_rows(history: &serde_json::Value) -> Vec<HistoryRow> {
    let text = |e: &serde_json::Value, k: &str| {
        e.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    history
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e.is_object())
                .map(|e| HistoryRow {
                    created: text(e, "created"),
                    created_by: text(e, "created_by"),
                    comment: text(e, "comment"),
                    empty_layer: e
                        .get("empty_layer")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn detail(
    State(s): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(project): Path<String>,
    Query(q): Query<ArtifactParam>,
) -> UiResult {
    viewer.require()?;
    let repo = repo_param(&q.repo)?;
    let digest = digest_param(&q.digest)?;
    let (p, nav) = project_nav(&s, &viewer, &project, "repositories").await?;
    let reference = Reference::Digest(digest.clone());
    let a = s
        .catalog
        .get_artifact(&viewer.subject, &p.name, &repo, &reference)
        .await?;
    let name = repo_name(&p.name, &repo)?;
    let record = s
        .registry
        .get_manifest(
            &viewer.subject,
            &name,
            &reference,
            &all_manifest_types(),
            false,
        )
        .await?;
    let manifest_json = pretty_json(&record.body)
        .unwrap_or_else(|| String::from_utf8_lossy(&record.body).into_owned());
    let parsed = Manifest::parse(&record.body, Some(&record.media_type)).ok();

    let layers = parsed
        .as_ref()
        .map(|m| {
            m.layers
                .iter()
                .map(|l| LayerRow {
                    media_type: l.media_type.clone(),
                    digest: l.digest.as_str().to_owned(),
                    short: view::short_digest(l.digest.as_str()),
                    size: view::bytes(l.size),
                })
                .collect()
        })
        .unwrap_or_default();

    let (mut config_digest, mut config_media_type) = (String::new(), String::new());
    let (mut config_json, mut config_note) = (String::new(), String::new());
    if let Some(c) = parsed.as_ref().and_then(|m| m.config.as_ref()) {
        config_digest = c.digest.as_str().to_owned();
        config_media_type = c.media_type.clone();
        match read_small_blob(&s, &viewer.subject, &name, &c.digest, CONFIG_LIMIT).await {
            Ok(bytes) => match pretty_json(&bytes) {
                Some(j) => config_json = j,
                None => {
                    config_note = format!(
                        "The config is not JSON ({}).",
                        view::bytes(bytes.len() as i64)
                    )
                }
            },
            Err(note) => config_note = note,
        }
    }

    let history = if parsed
        .as_ref()
        .and_then(|m| m.config.as_ref())
        .is_some_and(|c| media::is_image_config(&c.media_type))
    {
        match s
            .catalog
            .build_history(&viewer.subject, &p.name, &repo, &reference)
            .await
        {
            Ok(h) => history_rows(&h),
            Err(e) if e.is_not_found() => vec![],
            Err(e) => return Err(e.into()),
        }
    } else {
        vec![]
    };

    let mut annotations: Vec<(String, String)> = a
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if annotations.is_empty() {
        if let Some(m) = &parsed {
            annotations = m
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
    }

    // The children's own tags (an index names few; the list hides children).
    let mut children = Vec::with_capacity(a.references.len());
    for (i, r) in a.references.iter().enumerate() {
        let tags = if i < MAX_CHILD_LOOKUPS {
            s.catalog
                .get_artifact(
                    &viewer.subject,
                    &p.name,
                    &repo,
                    &Reference::Digest(r.child_digest.clone()),
                )
                .await
                .map(|c| c.tags.into_iter().map(|t| t.name).collect())
                .unwrap_or_default()
        } else {
            vec![]
        };
        children.push(ChildRow {
            platform: r
                .platform
                .as_ref()
                .map(platform_label)
                .unwrap_or_else(|| "unknown".into()),
            digest: r.child_digest.as_str().to_owned(),
            short: view::short_digest(r.child_digest.as_str()),
            url: detail_url(&p.name, &repo, r.child_digest.as_str()),
            tags,
        });
    }

    let referrers = s
        .registry
        .referrers(&viewer.subject, &name, &a.digest, None)
        .await?
        .into_iter()
        .map(|r| ReferrerRow {
            short: view::short_digest(r.digest.as_str()),
            url: detail_url(&p.name, &repo, r.digest.as_str()),
            digest: r.digest.as_str().to_owned(),
            artifact_type: r.artifact_type,
            media_type: r.media_type,
            size: view::bytes(r.size),
        })
        .collect();

    let host = crate::view::registry_host(&s, &headers);
    let digest_s = a.digest.as_str().to_owned();
    page(
        &viewer,
        &DetailPage {
            chrome: Chrome::new(&s, &viewer, "projects").await?,
            full_name: a.repository_name.clone(),
            back: repo_url(&p.name, &repo),
            short: view::short_digest(&digest_s),
            label: artifact_label(&a),
            manifest_media_type: a.manifest_media_type.clone(),
            media_type: a.media_type.clone(),
            artifact_type: a.artifact_type.clone(),
            size: view::bytes(a.size),
            pushed: view::time(Some(a.push_time)),
            pulled: view::time(a.pull_time),
            tags: a.tags.iter().map(|t| t.name.clone()).collect(),
            subject_short: a
                .subject
                .as_ref()
                .map(|d| view::short_digest(d.as_str()))
                .unwrap_or_default(),
            subject_url: a
                .subject
                .as_ref()
                .map(|d| detail_url(&p.name, &repo, d.as_str()))
                .unwrap_or_default(),
            pull: format!("docker pull {host}/{}/{repo}@{digest_s}", p.name),
            manifest_json,
            config_digest,
            config_media_type,
            config_json,
            config_note,
            layers,
            history,
            annotations,
            is_index: media::is_index(&a.manifest_media_type),
            children,
            referrers,
            can_delete: can(&viewer, &p, Resource::Artifact, Action::Delete),
            delete_url: url(
                &format!("/harbor/projects/{}/artifacts/delete", p.name),
                &[("repo", &repo), ("digest", &digest_s)],
            ),
            digest: digest_s,
            repo,
            nav,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_labels() {
        assert_eq!(
            type_label(media::OCI_CONFIG, media::OCI_MANIFEST, "", &["v1"]),
            "Image"
        );
        assert_eq!(
            type_label(media::DOCKER_CONFIG, media::DOCKER_MANIFEST, "", &[]),
            "Image"
        );
        assert_eq!(
            type_label(media::OCI_INDEX, media::OCI_INDEX, "", &[]),
            "Image index"
        );
        assert_eq!(
            type_label(
                media::DOCKER_MANIFEST_LIST,
                media::DOCKER_MANIFEST_LIST,
                "",
                &[]
            ),
            "Image index"
        );
        assert_eq!(
            type_label(media::HELM_CONFIG, media::OCI_MANIFEST, "", &["0.1.0"]),
            "Helm chart"
        );
        // cosign's tag scheme, with an ordinary image config.
        assert_eq!(
            type_label(
                media::OCI_CONFIG,
                media::OCI_MANIFEST,
                "",
                &["sha256-0123.sig"]
            ),
            "Signature"
        );
        assert_eq!(
            type_label(
                media::OCI_EMPTY,
                media::OCI_MANIFEST,
                "application/vnd.dev.sigstore.bundle.v0.3+json",
                &[]
            ),
            "Signature"
        );
        assert_eq!(
            type_label(
                "application/vnd.dev.cosign.artifact.sig.v1+json",
                media::OCI_MANIFEST,
                "",
                &[]
            ),
            "Signature"
        );
        assert_eq!(
            type_label(
                media::OCI_EMPTY,
                media::OCI_MANIFEST,
                "application/spdx+json",
                &[]
            ),
            "SBOM"
        );
        assert_eq!(
            type_label(
                media::OCI_EMPTY,
                media::OCI_MANIFEST,
                "application/vnd.cyclonedx+json",
                &[]
            ),
            "SBOM"
        );
        assert_eq!(
            type_label(
                media::OCI_EMPTY,
                media::OCI_MANIFEST,
                "application/vnd.example.thing",
                &[]
            ),
            "Artifact (application/vnd.example.thing)"
        );
        assert_eq!(
            type_label(media::WASM_CONFIG, media::OCI_MANIFEST, "", &[]),
            format!("Artifact ({})", media::WASM_CONFIG)
        );
        assert_eq!(type_label("", "", "", &[]), "Artifact (unknown)");
    }

    #[test]
    fn platforms() {
        let p = |os: &str, arch: &str, variant: Option<&str>| Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(Into::into),
            ..Platform::default()
        };
        assert_eq!(platform_label(&p("linux", "amd64", None)), "linux/amd64");
        assert_eq!(
            platform_label(&p("linux", "arm64", Some("v8"))),
            "linux/arm64/v8"
        );
        assert_eq!(platform_label(&p("linux", "arm", Some(""))), "linux/arm");
        assert_eq!(platform_label(&p("", "", None)), "unknown/unknown");
        let mut w = p("windows", "amd64", None);
        w.os_version = Some("10.0.17763.1".into());
        assert_eq!(platform_label(&w), "windows/amd64 (10.0.17763.1)");
    }

    #[test]
    fn helpers() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("  abcdefghij  ", 10), "abcdefghij");
        assert_eq!(truncate("abcdefghijk", 10), "abcdefghij…");
        assert_eq!(truncate("ééééééééééé", 10), "éééééééééé…");
        assert_eq!(path_in_project("webapp", "webapp/a/b"), "a/b");
        assert_eq!(path_in_project("web", "webapp/a"), "webapp/a");
        assert_eq!(repo_param(" /a/b/ ").unwrap(), "a/b");
        assert!(repo_param("  ").is_err());
        assert!(digest_param("sha256:xyz").is_err());
        let d = Digest::sha256(b"x");
        assert_eq!(digest_param(d.as_str()).unwrap(), d);
        assert_eq!(
            repo_url("p", "a/b"),
            "/harbor/projects/p/artifacts?repo=a%2Fb"
        );
        let (dg, t) = artifact_filter(d.as_str());
        assert_eq!((dg, t), (Some(d), None));
        assert_eq!(
            artifact_filter("v1"),
            (None, Some(TagFilter::Name(TextMatch::Fuzzy("v1".into()))))
        );
        assert_eq!(artifact_filter(""), (None, None));
        assert!(form_error(CoreError::Conflict("x".into())).is_ok());
        assert_eq!(
            form_error(CoreError::Precondition("x".into())).unwrap().0,
            StatusCode::PRECONDITION_FAILED
        );
        assert!(form_error(CoreError::denied()).is_err());
        assert!(form_error(CoreError::Internal("db".into())).is_err());
    }

    #[test]
    fn json_is_reindented_in_order() {
        let raw = br#"{"schemaVersion":2,"b":[1, 2,{}],"a":{"k":"x,{\"y\":[]}"},"e":[]}"#;
        assert_eq!(
            pretty_json(raw).unwrap(),
            "{\n  \"schemaVersion\": 2,\n  \"b\": [\n    1,\n    2,\n    {}\n  ],\n  \"a\": {\n    \"k\": \"x,{\\\"y\\\":[]}\"\n  },\n  \"e\": []\n}"
        );
        assert_eq!(pretty_json(b"{ }").unwrap(), "{}");
        assert_eq!(pretty_json(b"not json"), None);
        assert_eq!(pretty_json(b"{\"a\":1"), None);
        // Reindenting keeps the value.
        let v: serde_json::Value = serde_json::from_slice(raw).unwrap();
        let again: serde_json::Value = serde_json::from_str(&pretty_json(raw).unwrap()).unwrap();
        assert_eq!(v, again);
    }

    fn nav() -> ProjectNav {
        ProjectNav {
            name: "library".into(),
            id: 1,
            public: false,
            active: "repositories",
            role: "",
            can_members: true,
            can_robots: false,
            can_logs: false,
            can_config: false,
            can_policy: false,
        }
    }

    const XSS: &str = "<script>alert(1)</script><img src=x onerror=\"alert(2)\">'&";

    fn assert_escaped(html: &str) {
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("onerror=\"alert"), "{html}");
    }

    #[test]
    fn hostile_text_is_escaped() {
        let row = ArtifactRow {
            digest: XSS.into(),
            short: XSS.into(),
            detail_url: XSS.into(),
            delete_url: XSS.into(),
            tags: vec![XSS.into()],
            size: XSS.into(),
            label: XSS.into(),
            platforms: vec![XSS.into()],
            pull_id: "pull-1".into(),
            pull: XSS.into(),
            pushed: XSS.into(),
            pulled: XSS.into(),
        };
        let html = ArtifactsPage {
            chrome: Chrome::bare(),
            nav: nav(),
            repo: XSS.into(),
            full_name: XSS.into(),
            description: XSS.into(),
            artifact_count: 1,
            pull_count: 0,
            q: XSS.into(),
            rows: vec![row],
            pager: Pager::default(),
            can_edit: true,
            can_add_tag: true,
            can_delete_tag: true,
            can_delete: true,
            can_delete_repo: true,
            delete_repo_url: XSS.into(),
            error: XSS.into(),
        }
        .render()
        .unwrap();
        assert_escaped(&html);
        assert!(html.contains("id=\"artifacts\"") && html.contains("delete-artifact"));
        assert!(html.contains("add-tag") && html.contains("remove-tag"));

        let html = RepoListPage {
            chrome: Chrome::bare(),
            nav: nav(),
            q: XSS.into(),
            rows: vec![RepoRow {
                name: XSS.into(),
                url: XSS.into(),
                delete_url: XSS.into(),
                description: XSS.into(),
                artifact_count: 1,
                pull_count: 2,
                updated: XSS.into(),
            }],
            pager: Pager::default(),
            can_delete: true,
        }
        .render()
        .unwrap();
        assert_escaped(&html);
        assert!(html.contains("id=\"repositories\"") && html.contains("delete-repo"));

        let html = DetailPage {
            chrome: Chrome::bare(),
            nav: nav(),
            repo: XSS.into(),
            full_name: XSS.into(),
            back: XSS.into(),
            digest: XSS.into(),
            short: XSS.into(),
            label: XSS.into(),
            manifest_media_type: XSS.into(),
            media_type: XSS.into(),
            artifact_type: XSS.into(),
            size: XSS.into(),
            pushed: XSS.into(),
            pulled: XSS.into(),
            tags: vec![XSS.into()],
            subject_short: XSS.into(),
            subject_url: XSS.into(),
            pull: XSS.into(),
            manifest_json: XSS.into(),
            config_digest: XSS.into(),
            config_media_type: XSS.into(),
            config_json: XSS.into(),
            config_note: XSS.into(),
            layers: vec![LayerRow {
                media_type: XSS.into(),
                digest: XSS.into(),
                short: XSS.into(),
                size: XSS.into(),
            }],
            history: vec![HistoryRow {
                created: XSS.into(),
                created_by: XSS.into(),
                comment: XSS.into(),
                empty_layer: true,
            }],
            annotations: vec![(XSS.into(), XSS.into())],
            is_index: true,
            children: vec![ChildRow {
                platform: XSS.into(),
                digest: XSS.into(),
                short: XSS.into(),
                url: XSS.into(),
                tags: vec![XSS.into()],
            }],
            referrers: vec![ReferrerRow {
                digest: XSS.into(),
                short: XSS.into(),
                url: XSS.into(),
                artifact_type: XSS.into(),
                media_type: XSS.into(),
                size: XSS.into(),
            }],
            can_delete: true,
            delete_url: XSS.into(),
        }
        .render()
        .unwrap();
        assert_escaped(&html);
        for id in [
            "manifest-json",
            "config-json",
            "layers",
            "history",
            "annotations",
            "referrers",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }

        let html = ArtifactDeletePage {
            chrome: Chrome::bare(),
            nav: nav(),
            repo: XSS.into(),
            full_name: XSS.into(),
            digest: XSS.into(),
            short: XSS.into(),
            label: XSS.into(),
            back: XSS.into(),
            detail: XSS.into(),
            tags: vec![
                DoomedTag {
                    tag: XSS.into(),
                    of: String::new(),
                },
                DoomedTag {
                    tag: XSS.into(),
                    of: XSS.into(),
                },
            ],
            accessories: vec![DoomedAccessory {
                short: XSS.into(),
                url: XSS.into(),
                label: XSS.into(),
            }],
            children: 2,
            can_delete: true,
            error: XSS.into(),
        }
        .render()
        .unwrap();
        assert_escaped(&html);
        assert!(html.contains("id=\"doomed-tags\"") && html.contains("id=\"confirm-delete\""));

        let html = RepoDeletePage {
            chrome: Chrome::bare(),
            nav: nav(),
            repo: XSS.into(),
            full_name: XSS.into(),
            back: XSS.into(),
            artifact_count: 3,
            can_delete: true,
            error: XSS.into(),
        }
        .render()
        .unwrap();
        assert_escaped(&html);
        assert!(html.contains("id=\"confirm-delete\""));
    }
}
