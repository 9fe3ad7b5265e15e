//! A project's Logs tab: its audit log, newest first, filtered by
//! operation, user and resource, paged.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::Router;
use berth_api::AppState;
use berth_core::catalog::ProjectKey;
use berth_core::query::{AuditQuery, AuditSortField, Page, Sort, TextMatch};
use serde::Deserialize;

use super::{project_nav, ProjectNav};
use crate::error::UiResult;
use crate::session::Viewer;
use crate::view::{page, url, Chrome, Pager, PAGE_SIZE};

pub fn routes() -> Router<AppState> {
    Router::new().route("/harbor/projects/{project}/logs", get(logs))
}

/// The operations a project's audit log records (see
/// `berth_core::audit::entry_for`).
const OPERATIONS: &[&str] = &["create", "update", "delete", "pull"];

#[derive(Deserialize, Default)]
struct LogsQuery {
    #[serde(default)]
    operation: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    page: Option<String>,
}

impl LogsQuery {
    /// A page number from the query; anything that is not one is page 1.
    fn page(&self) -> Page {
        let n = self
            .page
            .as_deref()
            .and_then(|p| p.trim().parse::<u64>().ok())
            .unwrap_or(1);
        Page::new(n, PAGE_SIZE)
    }

    /// The filters as a domain query: the operation exactly (an unknown
    /// one simply matches nothing), user and resource by substring.
    fn audit_query(&self) -> AuditQuery {
        let text = |v: &str| {
            let v = v.trim();
            (!v.is_empty()).then(|| TextMatch::Fuzzy(v.to_owned()))
        };
        let op = self.operation.trim();
        AuditQuery {
            projects: None,
            operation: (!op.is_empty()).then(|| TextMatch::Exact(op.to_owned())),
            resource_type: None,
            resource: text(&self.resource),
            username: text(&self.username),
            from: None,
            to: None,
            sort: vec![Sort {
                field: AuditSortField::OpTime,
                descending: true,
            }],
        }
    }
}

struct LogRow {
    time: String,
    username: String,
    resource: String,
    resource_type: String,
    operation: String,
    description: String,
    ok: bool,
}

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    chrome: Chrome,
    nav: ProjectNav,
    operations: &'static [&'static str],
    operation: String,
    username: String,
    resource: String,
    rows: Vec<LogRow>,
    pager: Pager,
}

async fn logs(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(project): Path<String>,
    Query(q): Query<LogsQuery>,
) -> UiResult {
    viewer.require()?;
    let (p, nav) = project_nav(&s, &viewer, &project, "logs").await?;
    let page_no = q.page();
    let (entries, total) = s
        .audit
        .list_project(
            &viewer.subject,
            &ProjectKey::Id(p.id),
            q.audit_query(),
            page_no,
        )
        .await?;
    let rows: Vec<LogRow> = entries
        .into_iter()
        .map(|e| LogRow {
            time: crate::view::time(Some(e.op_time)),
            username: e.username,
            resource: e.resource,
            resource_type: e.resource_type,
            operation: e.operation,
            description: e.operation_description,
            ok: e.is_successful,
        })
        .collect();
    let (operation, username, resource) = (
        q.operation.trim().to_owned(),
        q.username.trim().to_owned(),
        q.resource.trim().to_owned(),
    );
    let base = url(
        &format!("/harbor/projects/{}/logs", p.name),
        &[
            ("operation", &operation),
            ("username", &username),
            ("resource", &resource),
        ],
    );
    page(
        &viewer,
        &LogsPage {
            chrome: Chrome::new(&s, &viewer, "projects").await?,
            nav,
            operations: OPERATIONS,
            pager: Pager::new(&base, page_no, rows.len(), total),
            rows,
            operation,
            username,
            resource,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_a_query() {
        let q = LogsQuery {
            operation: "pull".into(),
            username: " ad ".into(),
            resource: String::new(),
            page: Some("3".into()),
        };
        let a = q.audit_query();
        assert_eq!(a.operation, Some(TextMatch::Exact("pull".into())));
        assert_eq!(a.username, Some(TextMatch::Fuzzy("ad".into())));
        assert_eq!(a.resource, None);
        assert_eq!(a.projects, None);
        assert_eq!(a.sort.len(), 1);
        assert!(a.sort[0].descending);
        assert_eq!(q.page().number, 3);
        let none = LogsQuery::default();
        assert_eq!(none.audit_query().operation, None);
        assert_eq!(none.page().number, 1);
        let junk = LogsQuery {
            page: Some("x".into()),
            ..LogsQuery::default()
        };
        assert_eq!(junk.page().number, 1);
    }
}
