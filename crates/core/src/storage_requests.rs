//! Requests for more storage, a Berth extension in Harbor's style (Harbor
//! has no such API): a project's admins ask for a larger quota with a
//! reason; system admins approve (the quota becomes the requested size, in
//! the same transaction as the decision) or decline, with a comment. A
//! project has at most one pending request; its admins may withdraw it.
//!
//! Who may do what, with Harbor's resources (no new one is needed):
//! filing and withdrawing need `project:update` on the project (project
//! admins; Maintainers cannot change the project either); seeing a
//! project's requests needs `quota:read` there (every member); listing
//! all requests needs the system `quota:list` and deciding the system
//! `quota:update`, the permissions that guard `/quotas` (system admins).

use std::sync::Arc;

use crate::access::{self, Action, Resource, Subject};
use crate::catalog::{authorized_project, project_ref, ProjectKey};
use crate::clock;
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventBus};
use crate::model::{
    human_bytes, NewStorageRequest, Project, StorageDecision, StorageRequest, StorageRequestStatus,
};
use crate::ports::MetaStore;
use crate::query::{Page, StorageRequestQuery};
use crate::quotas;

/// The longest reason or comment, in characters.
pub const MAX_TEXT: usize = 1000;

fn check_text(what: &str, text: &str, required: bool) -> CoreResult<String> {
    let text = text.trim();
    if required && text.is_empty() {
        return Err(CoreError::BadRequest(format!("a {what} is required")));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(CoreError::BadRequest(format!(
            "the {what} must be at most {MAX_TEXT} characters"
        )));
    }
    Ok(text.to_owned())
}

pub struct StorageRequests {
    meta: Arc<dyn MetaStore>,
    events: EventBus,
}

impl StorageRequests {
    pub fn new(meta: Arc<dyn MetaStore>, events: EventBus) -> Self {
        StorageRequests { meta, events }
    }

    /// Asks for the project's limit to become `storage` bytes, which must
    /// be more than it is now.
    pub async fn create(
        &self,
        subject: &Subject,
        key: &ProjectKey,
        storage: i64,
        reason: &str,
    ) -> CoreResult<StorageRequest> {
        let p = authorized_project(&*self.meta, subject, key, Resource::Project, Action::Update)
            .await?;
        if storage < 1 {
            return Err(CoreError::BadRequest(
                "storage must be a number of bytes between 1 and 1024 TiB".into(),
            ));
        }
        let storage = quotas::check_limit(storage)?;
        let reason = check_text("reason", reason, true)?;
        if p.storage_limit < 0 {
            return Err(CoreError::BadRequest(format!(
                "the storage of project {} is unlimited already",
                p.name
            )));
        }
        if storage <= p.storage_limit {
            return Err(CoreError::BadRequest(format!(
                "the requested storage must be more than the current limit of {}",
                human_bytes(p.storage_limit)
            )));
        }
        let now = clock::now();
        let r = self
            .meta
            .create_storage_request(&NewStorageRequest {
                project_id: p.id,
                requested_storage: storage,
                current_storage_limit: p.storage_limit,
                reason,
                requester: subject.name().to_owned(),
                now,
            })
            .await?;
        self.events.publish(Event::StorageRequested {
            project_id: p.id,
            project: p.name,
            request_id: r.id,
            storage,
            operator: subject.name().to_owned(),
            time: now,
        });
        Ok(r)
    }

    /// The project's requests, newest first: whoever may read its quota.
    pub async fn list_project(
        &self,
        subject: &Subject,
        key: &ProjectKey,
        page: Page,
    ) -> CoreResult<(Project, Vec<StorageRequest>, i64)> {
        let p =
            authorized_project(&*self.meta, subject, key, Resource::Quota, Action::Read).await?;
        let query = StorageRequestQuery {
            project_id: Some(p.id),
            status: None,
        };
        let (rows, total) = self.meta.list_storage_requests(&query, page).await?;
        Ok((p, rows, total))
    }

    /// Every project's requests, optionally of one status: system admins.
    pub async fn list(
        &self,
        subject: &Subject,
        status: Option<StorageRequestStatus>,
        page: Page,
    ) -> CoreResult<(Vec<StorageRequest>, i64)> {
        access::authorize(subject, None, Resource::Quota, Action::List)?;
        let query = StorageRequestQuery {
            project_id: None,
            status,
        };
        self.meta.list_storage_requests(&query, page).await
    }

    /// A request and its project, authorized for `action` on `resource`
    /// in that project.
    async fn authorized(
        &self,
        subject: &Subject,
        id: i64,
        resource: Resource,
        action: Action,
    ) -> CoreResult<(StorageRequest, Project)> {
        let found = match self.meta.storage_request(id).await? {
            Some(r) => self.meta.project_by_id(r.project_id).await?.map(|p| (r, p)),
            None => None,
        };
        let Some((r, p)) = found else {
            return Err(if subject.is_anonymous() {
                CoreError::Unauthenticated
            } else {
                CoreError::NotFound(format!("storage request {id}"))
            });
        };
        access::authorize(subject, Some(project_ref(&p)), resource, action)?;
        Ok((r, p))
    }

    /// One request: system admins, or whoever may read its project's quota.
    pub async fn get(&self, subject: &Subject, id: i64) -> CoreResult<StorageRequest> {
        self.authorized(subject, id, Resource::Quota, Action::Read)
            .await
            .map(|(r, _)| r)
    }

    /// Approves (the project's limit becomes the requested storage) or
    /// declines a pending request: system admins. `Conflict` if it was
    /// decided already.
    pub async fn decide(
        &self,
        subject: &Subject,
        id: i64,
        status: StorageRequestStatus,
        comment: &str,
    ) -> CoreResult<StorageRequest> {
        access::authorize(subject, None, Resource::Quota, Action::Update)?;
        if status == StorageRequestStatus::Pending {
            return Err(CoreError::BadRequest(
                "status must be approved or declined".into(),
            ));
        }
        let comment = check_text("comment", comment, false)?;
        let (r, p) = self
            .authorized(subject, id, Resource::Quota, Action::Update)
            .await?;
        if r.status != StorageRequestStatus::Pending {
            return Err(already_decided(&r));
        }
        if status == StorageRequestStatus::Approved {
            quotas::check_limit(r.requested_storage)?;
        }
        let now = clock::now();
        let decided = self
            .meta
            .decide_storage_request(
                id,
                &StorageDecision {
                    status,
                    reviewer: subject.name().to_owned(),
                    comment,
                    now,
                },
            )
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("storage request {id}")))?;
        self.events.publish(Event::StorageRequestDecided {
            project_id: p.id,
            project: p.name,
            request_id: id,
            storage: decided.requested_storage,
            approved: status == StorageRequestStatus::Approved,
            operator: subject.name().to_owned(),
            time: now,
        });
        Ok(decided)
    }

    /// Withdraws a pending request: the admins of its project.
    pub async fn withdraw(&self, subject: &Subject, id: i64) -> CoreResult<()> {
        let (r, p) = self
            .authorized(subject, id, Resource::Project, Action::Update)
            .await?;
        if r.status != StorageRequestStatus::Pending {
            return Err(already_decided(&r));
        }
        if !self.meta.withdraw_storage_request(id).await? {
            return Err(CoreError::NotFound(format!("storage request {id}")));
        }
        self.events.publish(Event::StorageRequestWithdrawn {
            project_id: p.id,
            project: p.name,
            request_id: id,
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }
}

fn already_decided(r: &StorageRequest) -> CoreError {
    CoreError::Conflict(format!(
        "storage request {} was {} already",
        r.id,
        r.status.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert!(check_text("reason", "  ", true).is_err());
        assert_eq!(check_text("comment", "", false).unwrap(), "");
        assert_eq!(check_text("reason", " more CI ", true).unwrap(), "more CI");
        assert!(check_text("reason", &"é".repeat(MAX_TEXT), true).is_ok());
        assert!(check_text("reason", &"x".repeat(MAX_TEXT + 1), true).is_err());
    }
}
