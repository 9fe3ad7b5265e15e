//! Storage requests in the portal: on a project's Summary its admins ask
//! for more storage (and may withdraw a pending request), and whoever may
//! read the quota sees the project's requests; under Administration,
//! system admins approve or decline them. The domain decides every
//! permission (`core::storage_requests`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use berth_api::AppState;
use berth_core::access::{Action, Resource};
use berth_core::catalog::ProjectKey;
use berth_core::model::{Project, StorageRequest, StorageRequestStatus};
use berth_core::query::Page;
use berth_core::quotas::MAX_STORAGE;
use serde::Deserialize;

use super::can;
use super::projects::render_summary;
use crate::error::{form_error, UiResult};
use crate::session::{Posted, Viewer};
use crate::view::{bytes, done, page_status, time, url, Chrome, ListQuery, Pager};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/harbor/projects/{project}/storage-requests",
            post(file_request),
        )
        .route(
            "/harbor/projects/{project}/storage-requests/{id}/withdraw",
            post(withdraw),
        )
        .route("/harbor/admin/storage-requests", get(admin_list))
        .route("/harbor/admin/storage-requests/{id}", post(decide))
}

/// One request as a table row.
pub struct RequestRow {
    pub id: i64,
    pub project: String,
    pub requested: String,
    pub previous: String,
    pub reason: String,
    pub status: &'static str,
    pub requester: String,
    pub reviewer: String,
    pub comment: String,
    pub created: String,
    pub updated: String,
}

impl RequestRow {
    fn of(r: &StorageRequest) -> RequestRow {
        RequestRow {
            id: r.id,
            project: r.project_name.clone(),
            requested: bytes(r.requested_storage),
            previous: bytes(r.current_storage_limit),
            reason: r.reason.clone(),
            status: r.status.as_str(),
            requester: r.requester.clone(),
            reviewer: r.reviewer.clone(),
            comment: r.comment.clone(),
            created: time(Some(r.creation_time)),
            updated: time(Some(r.update_time)),
        }
    }
}

/// The values of the request form, shown again after a mistake.
#[derive(Default)]
pub struct RequestForm {
    pub error: String,
    pub gib: String,
    pub reason: String,
}

/// What a project's Summary shows about storage requests.
#[derive(Default)]
pub struct StorageBox {
    /// The viewer may read the project's quota, so its requests.
    pub visible: bool,
    /// The viewer may ask (a project admin).
    pub can_request: bool,
    pub unlimited: bool,
    pub pending: bool,
    pub rows: Vec<RequestRow>,
    pub form: RequestForm,
}

/// The Summary's storage-request box for `p` (the latest ten requests).
pub async fn project_box(
    s: &AppState,
    viewer: &Viewer,
    p: &Project,
    form: RequestForm,
) -> UiResult<StorageBox> {
    if !can(viewer, p, Resource::Quota, Action::Read) {
        return Ok(StorageBox::default());
    }
    let (_, requests, _) = s
        .storage_requests
        .list_project(&viewer.subject, &ProjectKey::Id(p.id), Page::new(1, 10))
        .await?;
    Ok(StorageBox {
        visible: true,
        can_request: can(viewer, p, Resource::Project, Action::Update),
        unlimited: p.storage_limit < 0,
        pending: requests
            .iter()
            .any(|r| r.status == StorageRequestStatus::Pending),
        rows: requests.iter().map(RequestRow::of).collect(),
        form,
    })
}

/// "20" or "1.5" (GiB) → bytes.
fn parse_gib(s: &str) -> Result<i64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| "The new limit must be a number of GiB, such as 20 or 1.5.".to_owned())?;
    if !v.is_finite() || v <= 0.0 {
        return Err("The new limit must be more than 0 GiB.".into());
    }
    let b = (v * (1u64 << 30) as f64).round();
    if b > MAX_STORAGE as f64 {
        return Err("The new limit can be at most 1048576 GiB (1024 TiB).".into());
    }
    Ok(b as i64)
}

#[derive(Deserialize)]
struct RequestFormFields {
    #[serde(default)]
    gib: String,
    #[serde(default)]
    reason: String,
}

async fn file_request(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(project): Path<String>,
    form: Posted<RequestFormFields>,
) -> UiResult {
    let viewer = &form.viewer;
    viewer.require()?;
    let f = &form.value;
    let result = match parse_gib(&f.gib) {
        Err(m) => Err(berth_core::CoreError::BadRequest(m)),
        Ok(storage) => {
            s.storage_requests
                .create(
                    &viewer.subject,
                    &ProjectKey::Name(project.clone()),
                    storage,
                    &f.reason,
                )
                .await
        }
    };
    match result {
        Ok(r) => Ok(done(
            &format!("/harbor/projects/{}", r.project_name),
            &format!(
                "Storage request sent: {} asked for.",
                bytes(r.requested_storage)
            ),
        )),
        Err(e) => {
            let (status, error) = form_error(e)?;
            render_summary(
                &s,
                viewer,
                &headers,
                &project,
                vec![],
                RequestForm {
                    error,
                    gib: f.gib.clone(),
                    reason: f.reason.clone(),
                },
                status,
            )
            .await
        }
    }
}

async fn withdraw(
    State(s): State<AppState>,
    Path((project, id)): Path<(String, i64)>,
    form: Posted<serde::de::IgnoredAny>,
) -> UiResult {
    form.viewer.require()?;
    s.storage_requests
        .withdraw(&form.viewer.subject, id)
        .await?;
    Ok(done(
        &format!("/harbor/projects/{project}"),
        "Storage request withdrawn.",
    ))
}

// ---- administration ---------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_storage_requests.html")]
struct AdminPage {
    chrome: Chrome,
    admin_tab: &'static str,
    page_no: String,
    pending: Vec<RequestRow>,
    rows: Vec<RequestRow>,
    pager: Pager,
    error: String,
}

/// The admin page; `error` is a refused decision to show (with the status
/// to answer with).
async fn render_admin(
    s: &AppState,
    viewer: &Viewer,
    q: &ListQuery,
    error: Option<(StatusCode, String)>,
) -> UiResult {
    viewer.require()?;
    let page_no = q.page();
    // The domain refuses anyone but a system admin here.
    let (pending, _) = s
        .storage_requests
        .list(
            &viewer.subject,
            Some(StorageRequestStatus::Pending),
            Page::new(1, Page::MAX_SIZE),
        )
        .await?;
    let (all, total) = s
        .storage_requests
        .list(&viewer.subject, None, page_no)
        .await?;
    let rows: Vec<RequestRow> = all.iter().map(RequestRow::of).collect();
    let (status, error) = error.unwrap_or((StatusCode::OK, String::new()));
    page_status(
        viewer,
        status,
        &AdminPage {
            chrome: Chrome::new(s, viewer, "admin").await?,
            admin_tab: "storage-requests",
            page_no: if page_no.number > 1 {
                page_no.number.to_string()
            } else {
                String::new()
            },
            pending: pending.iter().map(RequestRow::of).collect(),
            pager: Pager::new("/harbor/admin/storage-requests", page_no, rows.len(), total),
            rows,
            error,
        },
    )
}

async fn admin_list(
    State(s): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> UiResult {
    render_admin(&s, &viewer, &q, None).await
}

#[derive(Deserialize)]
struct DecideForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    page: String,
}

async fn decide(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    form: Posted<DecideForm>,
) -> UiResult {
    form.viewer.require()?;
    let f = &form.value;
    let back = ListQuery {
        q: String::new(),
        page: f.page.trim().parse().ok(),
    };
    let Some(status) = StorageRequestStatus::parse(&f.status) else {
        let error = (
            StatusCode::BAD_REQUEST,
            "Choose Approve or Decline.".to_owned(),
        );
        return render_admin(&s, &form.viewer, &back, Some(error)).await;
    };
    match s
        .storage_requests
        .decide(&form.viewer.subject, id, status, &f.comment)
        .await
    {
        Ok(r) => {
            let notice = if r.status == StorageRequestStatus::Approved {
                format!(
                    "Approved: the storage limit of {} is now {}.",
                    r.project_name,
                    bytes(r.requested_storage)
                )
            } else {
                format!("Declined the storage request of {}.", r.project_name)
            };
            let page = back.page.filter(|p| *p > 1).map(|p| p.to_string());
            Ok(done(
                &url(
                    "/harbor/admin/storage-requests",
                    &[("page", page.as_deref().unwrap_or(""))],
                ),
                &notice,
            ))
        }
        Err(e) => {
            let error = form_error(e)?;
            render_admin(&s, &form.viewer, &back, Some(error)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gib() {
        assert_eq!(parse_gib("20"), Ok(20 << 30));
        assert_eq!(parse_gib(" 1.5 "), Ok(3 << 29));
        for bad in ["", "0", "-1", "x", "inf", "NaN", "2000000"] {
            assert!(parse_gib(bad).is_err(), "{bad}");
        }
    }
}
