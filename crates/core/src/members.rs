//! Project members (`/projects/{p}/members`): users with one of the five
//! roles. A member id given through a project it does not belong to is
//! "not found", whatever the caller may see elsewhere.

use std::sync::Arc;

use crate::access::{Action, Resource, Role, Subject};
use crate::catalog::{authorized_project, ProjectKey};
use crate::clock;
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventBus};
use crate::model::{Member, Project};
use crate::ports::MetaStore;
use crate::query::Page;

/// Who to add: a user by id, or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberUser {
    Id(i64),
    Name(String),
}

pub struct Members {
    meta: Arc<dyn MetaStore>,
    events: EventBus,
}

fn role(id: i64) -> CoreResult<Role> {
    Role::from_id(id).ok_or_else(|| {
        CoreError::BadRequest(format!(
            "role_id {id} is not a role: 1 projectAdmin, 2 developer, 3 guest, 4 maintainer, 5 limitedGuest"
        ))
    })
}

impl Members {
    pub fn new(meta: Arc<dyn MetaStore>, events: EventBus) -> Self {
        Members { meta, events }
    }

    async fn project(
        &self,
        subject: &Subject,
        key: &ProjectKey,
        action: Action,
    ) -> CoreResult<Project> {
        authorized_project(&*self.meta, subject, key, Resource::Member, action).await
    }

    pub async fn list(
        &self,
        subject: &Subject,
        key: &ProjectKey,
        entity_name: Option<&str>,
        page: Page,
    ) -> CoreResult<(Vec<Member>, i64)> {
        let p = self.project(subject, key, Action::List).await?;
        self.meta.list_members(p.id, entity_name, page).await
    }

    pub async fn get(&self, subject: &Subject, key: &ProjectKey, id: i64) -> CoreResult<Member> {
        let p = self.project(subject, key, Action::Read).await?;
        self.meta
            .member(p.id, id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("member {id}")))
    }

    pub async fn add(
        &self,
        subject: &Subject,
        key: &ProjectKey,
        user: &MemberUser,
        role_id: i64,
    ) -> CoreResult<Member> {
        let p = self.project(subject, key, Action::Create).await?;
        let role = role(role_id)?;
        let found = match user {
            MemberUser::Id(id) => self.meta.user_by_id(*id).await?,
            MemberUser::Name(name) => self.meta.user_by_name(name).await?,
        };
        let user = found.ok_or_else(|| CoreError::NotFound("user".into()))?;
        let member = self.meta.add_member(p.id, user.id, role).await?;
        self.events.publish(Event::MemberCreated {
            project_id: p.id,
            project: p.name,
            member: user.username,
            role: role.name().into(),
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(member)
    }

    pub async fn update(
        &self,
        subject: &Subject,
        key: &ProjectKey,
        id: i64,
        role_id: i64,
    ) -> CoreResult<()> {
        let p = self.project(subject, key, Action::Update).await?;
        let role = role(role_id)?;
        let member = self
            .meta
            .member(p.id, id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("member {id}")))?;
        if !self.meta.update_member_role(p.id, id, role).await? {
            return Err(CoreError::NotFound(format!("member {id}")));
        }
        self.events.publish(Event::MemberUpdated {
            project_id: p.id,
            project: p.name,
            member: member.entity_name,
            role: role.name().into(),
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }

    pub async fn delete(&self, subject: &Subject, key: &ProjectKey, id: i64) -> CoreResult<()> {
        let p = self.project(subject, key, Action::Delete).await?;
        let member = self
            .meta
            .member(p.id, id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("member {id}")))?;
        if !self.meta.delete_member(p.id, id).await? {
            return Err(CoreError::NotFound(format!("member {id}")));
        }
        self.events.publish(Event::MemberDeleted {
            project_id: p.id,
            project: p.name,
            member: member.entity_name,
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }
}
