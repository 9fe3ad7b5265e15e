//! A project's Configuration tab: whether the project is public (a form
//! for those who may change the project's metadata, the value otherwise)
//! and its other metadata, read-only for now.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use berth_api::AppState;
use berth_core::access::{Action, Resource};
use berth_core::catalog::ProjectKey;
use berth_core::model::Project;
use serde::Deserialize;

use super::{can, project_nav, ProjectNav};
use crate::error::{form_error, UiResult};
use crate::session::{Posted, Viewer};
use crate::view::{done, page_status, Chrome};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/harbor/projects/{project}/configuration",
        get(show).post(save),
    )
}

/// The metadata the form sends: only `public`, as Harbor stores it.
fn public_metadata(public: bool) -> BTreeMap<String, String> {
    BTreeMap::from([("public".to_owned(), public.to_string())])
}

/// The project's metadata other than `public` (shown by its own control).
fn other_metadata(p: &Project) -> Vec<(String, String)> {
    p.metadata
        .iter()
        .filter(|(k, _)| k.as_str() != "public")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[derive(Template)]
#[template(path = "project_config.html")]
struct ConfigPage {
    chrome: Chrome,
    nav: ProjectNav,
    public: bool,
    can_update: bool,
    metadata: Vec<(String, String)>,
    error: String,
}

async fn render(
    s: &AppState,
    viewer: &Viewer,
    project: &str,
    error: String,
    status: StatusCode,
) -> UiResult {
    viewer.require()?;
    let (p, nav) = project_nav(s, viewer, project, "configuration").await?;
    page_status(
        viewer,
        status,
        &ConfigPage {
            chrome: Chrome::new(s, viewer, "projects").await?,
            public: p.public,
            can_update: can(viewer, &p, Resource::Metadata, Action::Update),
            metadata: other_metadata(&p),
            error,
            nav,
        },
    )
}

async fn show(State(s): State<AppState>, viewer: Viewer, Path(project): Path<String>) -> UiResult {
    render(&s, &viewer, &project, String::new(), StatusCode::OK).await
}

#[derive(Deserialize)]
struct ConfigForm {
    /// A checkbox: present when checked.
    #[serde(default)]
    public: Option<String>,
}

async fn save(
    State(s): State<AppState>,
    Path(project): Path<String>,
    form: Posted<ConfigForm>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let (p, _) = project_nav(&s, viewer, &project, "configuration").await?;
    let public = form.value.public.is_some();
    match s
        .catalog
        .update_project(
            &viewer.subject,
            &ProjectKey::Id(p.id),
            Some(public),
            &public_metadata(public),
        )
        .await
    {
        Ok(()) => Ok(done(
            &format!("/harbor/projects/{}/configuration", p.name),
            if public {
                "Saved: the project is public."
            } else {
                "Saved: the project is private."
            },
        )),
        Err(e) => {
            let (status, error) = form_error(e)?;
            render(&s, viewer, &project, error, status).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_of_the_form() {
        assert_eq!(
            public_metadata(true).get("public").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            public_metadata(false).get("public").map(String::as_str),
            Some("false")
        );
        assert_eq!(public_metadata(true).len(), 1);
        let p = Project {
            id: 1,
            name: "library".into(),
            owner_id: 1,
            owner_name: "admin".into(),
            public: true,
            metadata: BTreeMap::from([
                ("public".to_owned(), "true".to_owned()),
                ("auto_scan".to_owned(), "false".to_owned()),
            ]),
            registry_id: None,
            storage_limit: -1,
            storage_used: 0,
            creation_time: 0,
            update_time: 0,
            repo_count: 0,
        };
        assert_eq!(
            other_metadata(&p),
            vec![("auto_scan".to_owned(), "false".to_owned())]
        );
    }
}
