//! Storage quotas (`/quotas`): one per project, its hard limit and its
//! usage. Usage is kept by the metadata store in the same transaction as
//! every upload, mount, manifest push and delete (see `docs/architecture.md`,
//! "Quotas"); this service only shows it and changes the limit. A quota's id
//! is its project's id.

use std::sync::Arc;

use crate::access::{self, Action, Resource, Subject};
use crate::catalog::{authorized_project, ProjectKey};
use crate::clock::{self, Millis};
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventBus};
use crate::model::Project;
use crate::ports::MetaStore;
use crate::query::{Page, ProjectQuery};

/// Harbor's largest quota: 1024 TiB.
pub const MAX_STORAGE: i64 = 1024 * 1024 * 1024 * 1024 * 1024;

/// A limit as Harbor accepts it: -1 (unlimited) or 1 byte to 1024 TiB.
pub fn check_limit(limit: i64) -> CoreResult<i64> {
    if limit == -1 || (1..=MAX_STORAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(CoreError::BadRequest(
            "storage must be -1 (unlimited) or a number of bytes between 1 and 1024 TiB".into(),
        ))
    }
}

/// One project's quota.
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    pub id: i64,
    pub project_id: i64,
    pub project_name: String,
    pub owner_name: String,
    pub hard: i64,
    pub used: i64,
    pub creation_time: Millis,
    pub update_time: Millis,
}

impl From<&Project> for Quota {
    fn from(p: &Project) -> Self {
        Quota {
            id: p.id,
            project_id: p.id,
            project_name: p.name.clone(),
            owner_name: p.owner_name.clone(),
            hard: p.storage_limit,
            used: p.storage_used,
            creation_time: p.creation_time,
            update_time: p.update_time,
        }
    }
}

pub struct Quotas {
    meta: Arc<dyn MetaStore>,
    events: EventBus,
}

impl Quotas {
    pub fn new(meta: Arc<dyn MetaStore>, events: EventBus) -> Self {
        Quotas { meta, events }
    }

    /// Every project's quota (system `quota:list`, a system admin), or
    /// with `project` the quota of that one project (its `quota:read`).
    pub async fn list(
        &self,
        subject: &Subject,
        project: Option<i64>,
        mut query: ProjectQuery,
        page: Page,
    ) -> CoreResult<(Vec<Quota>, i64)> {
        if let Some(id) = project {
            let q = self.get(subject, id).await?;
            let total = 1;
            let rows = if page.offset() == 0 { vec![q] } else { vec![] };
            return Ok((rows, total));
        }
        access::authorize(subject, None, Resource::Quota, Action::List)?;
        query.visibility = access::Visibility::All;
        let (projects, total) = self.meta.list_projects(&query, page).await?;
        Ok((projects.iter().map(Quota::from).collect(), total))
    }

    /// One quota: readable by whoever may read the project's quota.
    pub async fn get(&self, subject: &Subject, id: i64) -> CoreResult<Quota> {
        let p = authorized_project(
            &*self.meta,
            subject,
            &ProjectKey::Id(id),
            Resource::Quota,
            Action::Read,
        )
        .await
        .map_err(|e| match e {
            CoreError::ProjectNotFound(_) => CoreError::NotFound(format!("quota {id}")),
            e => e,
        })?;
        Ok(Quota::from(&p))
    }

    /// Changes the hard limit: system `quota:update`, a system admin. A
    /// limit below current usage is accepted, as by Harbor: further pushes
    /// that add storage are refused until usage falls below it.
    pub async fn update(&self, subject: &Subject, id: i64, hard: i64) -> CoreResult<()> {
        access::authorize(subject, None, Resource::Quota, Action::Update)?;
        let hard = check_limit(hard)?;
        let Some(p) = self.meta.project_by_id(id).await? else {
            return Err(CoreError::NotFound(format!("quota {id}")));
        };
        self.meta.set_storage_limit(id, hard, clock::now()).await?;
        self.events.publish(Event::ProjectUpdated {
            project_id: p.id,
            name: p.name,
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }
}
