//! Local users as Harbor manages them (`/users`): creation by system
//! admins (or self-registration from the portal), profiles, passwords,
//! the system-admin flag, soft deletion, and what the current user may do.

use std::sync::Arc;

use crate::access::{self, Action, ProjectRef, Resource, Subject};
use crate::clock;
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventBus};
use crate::identity::{hash_password, password_acceptable, verify_password, PASSWORD_POLICY};
use crate::model::{NewUser, User, UserId};
use crate::ports::MetaStore;
use crate::query::{Page, UserQuery};
use crate::settings::Settings;

/// A request to create a user. Privileged fields a client may send
/// (`sysadmin_flag`, `admin_role_in_auth`, …) are not part of it.
#[derive(Debug, Clone, Default)]
pub struct CreateUser {
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    pub password: String,
}

/// Where a user creation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Api,
    /// The portal's sign-up page (self-registration).
    Portal,
}

const ILLEGAL: &[char] = &[',', '"', '~', '#', '%', '$'];

fn check_name(what: &str, v: &str) -> CoreResult<()> {
    let n = v.chars().count();
    if n == 0 || n > 255 {
        return Err(CoreError::BadRequest(format!(
            "{what} must be 1-255 characters long"
        )));
    }
    if v.chars().any(|c| ILLEGAL.contains(&c) || c.is_control()) {
        return Err(CoreError::BadRequest(format!(
            "{what} must not contain any of , \" ~ # % $ or control characters"
        )));
    }
    Ok(())
}

fn check_email(email: &str) -> CoreResult<()> {
    let ok = email.len() <= 255
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(())
    } else {
        Err(CoreError::BadRequest(
            "email is not a valid email address".into(),
        ))
    }
}

fn check_comment(comment: &str) -> CoreResult<()> {
    if comment.chars().count() > 30 {
        return Err(CoreError::BadRequest(
            "comment must be at most 30 characters".into(),
        ));
    }
    Ok(())
}

pub struct Users {
    meta: Arc<dyn MetaStore>,
    settings: Arc<Settings>,
    events: EventBus,
}

fn require_sysadmin(subject: &Subject) -> CoreResult<()> {
    if subject.is_sysadmin() {
        Ok(())
    } else if subject.is_anonymous() {
        Err(CoreError::Unauthenticated)
    } else {
        Err(CoreError::denied())
    }
}

impl Users {
    pub fn new(meta: Arc<dyn MetaStore>, settings: Arc<Settings>, events: EventBus) -> Self {
        Users {
            meta,
            settings,
            events,
        }
    }

    /// Creates a user: by a system admin through the API, or by anyone from
    /// the portal's sign-up page when self-registration is on (never
    /// through the API, as Harbor has it).
    pub async fn create(
        &self,
        subject: &Subject,
        req: CreateUser,
        origin: Origin,
    ) -> CoreResult<User> {
        if !subject.is_sysadmin() {
            let self_registration = self.settings.current().await?.self_registration;
            match (origin, self_registration) {
                (Origin::Portal, true) => {}
                (Origin::Api, true) if !subject.is_anonymous() => {
                    return Err(CoreError::Denied(
                        "self-registration cannot be triggered via API".into(),
                    ))
                }
                _ if subject.is_anonymous() => return Err(CoreError::Unauthenticated),
                _ => return Err(CoreError::denied()),
            }
        }
        check_name("username", &req.username)?;
        let prefix = self.settings.current().await?.robot_name_prefix.clone();
        if req.username.starts_with(prefix.as_str()) {
            return Err(CoreError::BadRequest(format!(
                "a username must not start with the robot prefix {prefix:?}"
            )));
        }
        check_email(&req.email)?;
        check_name("realname", &req.realname)?;
        check_comment(&req.comment)?;
        if !password_acceptable(&req.password) {
            return Err(CoreError::BadRequest(PASSWORD_POLICY.into()));
        }
        let user = self
            .meta
            .create_user(&NewUser {
                username: req.username,
                email: req.email,
                realname: req.realname,
                comment: req.comment,
                password_hash: hash_password(&req.password)?,
                sysadmin: false,
            })
            .await?;
        self.events.publish(Event::UserCreated {
            username: user.username.clone(),
            operator: if subject.is_anonymous() {
                user.username.clone()
            } else {
                subject.name().to_owned()
            },
            time: clock::now(),
        });
        Ok(user)
    }

    /// Users, for system admins.
    pub async fn list(
        &self,
        subject: &Subject,
        query: &UserQuery,
        page: Page,
    ) -> CoreResult<(Vec<User>, i64)> {
        require_sysadmin(subject)?;
        self.meta.list_users(query, page).await
    }

    /// `GET /users/search`: any signed-in user may look names up (to add
    /// members).
    pub async fn search(
        &self,
        subject: &Subject,
        query: &UserQuery,
        page: Page,
    ) -> CoreResult<(Vec<User>, i64)> {
        if subject.user_id().is_none() && !subject.is_robot() {
            return Err(CoreError::Unauthenticated);
        }
        self.meta.list_users(query, page).await
    }

    async fn load(&self, id: UserId) -> CoreResult<User> {
        self.meta
            .user_by_id(id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("user {id}")))
    }

    /// Self or a system admin; others learn nothing (404).
    async fn self_or_admin(&self, subject: &Subject, id: UserId) -> CoreResult<User> {
        if subject.is_anonymous() {
            return Err(CoreError::Unauthenticated);
        }
        if subject.user_id() != Some(id) && !subject.is_sysadmin() {
            return Err(CoreError::denied());
        }
        self.load(id).await
    }

    pub async fn get(&self, subject: &Subject, id: UserId) -> CoreResult<User> {
        self.self_or_admin(subject, id).await
    }

    pub async fn current(&self, subject: &Subject) -> CoreResult<User> {
        match subject.user_id() {
            Some(id) => self.load(id).await,
            None => Err(CoreError::Unauthenticated),
        }
    }

    pub async fn update_profile(
        &self,
        subject: &Subject,
        id: UserId,
        email: &str,
        realname: &str,
        comment: &str,
    ) -> CoreResult<()> {
        let user = self.self_or_admin(subject, id).await?;
        check_email(email)?;
        check_name("realname", realname)?;
        check_comment(comment)?;
        self.meta
            .update_user_profile(id, email, realname, comment)
            .await?;
        self.events.publish(Event::UserUpdated {
            username: user.username,
            what: "profile".into(),
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }

    /// Changes a password. Users changing their own must give the old one;
    /// a system admin resetting someone else's need not.
    pub async fn change_password(
        &self,
        subject: &Subject,
        id: UserId,
        old: Option<&str>,
        new: &str,
    ) -> CoreResult<()> {
        let user = self.self_or_admin(subject, id).await?;
        let own = subject.user_id() == Some(id);
        if own || !subject.is_sysadmin() {
            match old {
                Some(o) if verify_password(&user.password_hash, o) => {}
                _ => return Err(CoreError::Denied("the old password is wrong".into())),
            }
        }
        if !password_acceptable(new) {
            return Err(CoreError::BadRequest(PASSWORD_POLICY.into()));
        }
        if verify_password(&user.password_hash, new) {
            return Err(CoreError::BadRequest(
                "the new password must differ from the old one".into(),
            ));
        }
        self.meta
            .set_password_hash(id, &hash_password(new)?)
            .await?;
        self.events.publish(Event::UserUpdated {
            username: user.username,
            what: "password".into(),
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }

    pub async fn set_sysadmin(
        &self,
        subject: &Subject,
        id: UserId,
        sysadmin: bool,
    ) -> CoreResult<()> {
        require_sysadmin(subject)?;
        let user = self.load(id).await?;
        if id == 1 || subject.user_id() == Some(id) {
            return Err(CoreError::Denied(
                "the admin user and yourself cannot change the system admin flag".into(),
            ));
        }
        self.meta.set_sysadmin(id, sysadmin).await?;
        self.events.publish(Event::UserUpdated {
            username: user.username,
            what: format!("sysadmin flag set to {sysadmin}"),
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }

    /// Soft-deletes a user (the admin and oneself cannot be deleted).
    pub async fn delete(&self, subject: &Subject, id: UserId) -> CoreResult<()> {
        require_sysadmin(subject)?;
        let user = self.load(id).await?;
        if id == 1 || subject.user_id() == Some(id) {
            return Err(CoreError::Denied(
                "the admin user and yourself cannot be deleted".into(),
            ));
        }
        self.meta.delete_user(id).await?;
        self.events.publish(Event::UserDeleted {
            username: user.username,
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }

    /// What the subject may do in `scope` (`/project/<id>` or `/system`,
    /// default system), as (resource, action) pairs; with `relative` the
    /// resource is given without the scope prefix.
    pub async fn permissions(
        &self,
        subject: &Subject,
        scope: Option<&str>,
        relative: bool,
    ) -> CoreResult<Vec<(String, String)>> {
        if subject.is_anonymous() {
            return Err(CoreError::Unauthenticated);
        }
        let scope = scope.filter(|s| !s.is_empty()).unwrap_or("/system");
        let (project, prefix) = match scope.strip_prefix("/project/") {
            Some(id) => {
                let id: i64 = id
                    .parse()
                    .map_err(|_| CoreError::BadRequest(format!("invalid scope {scope:?}")))?;
                let p = self
                    .meta
                    .project_by_id(id)
                    .await?
                    .ok_or_else(|| CoreError::ProjectNotFound(id.to_string()))?;
                (
                    Some(ProjectRef {
                        id: p.id,
                        public: p.public,
                    }),
                    format!("/project/{id}"),
                )
            }
            None if scope == "/system" || scope == "/" => (None, "/system".to_owned()),
            None => return Err(CoreError::BadRequest(format!("invalid scope {scope:?}"))),
        };
        let mut out = vec![];
        for r in Resource::ALL {
            for a in Action::ALL {
                if access::allowed(subject, project, *r, *a) {
                    let resource = if relative {
                        r.as_str().to_owned()
                    } else {
                        format!("{prefix}/{}", r.as_str())
                    };
                    out.push((resource, a.as_str().to_owned()));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_rules() {
        assert!(check_name("username", "alice").is_ok());
        for bad in ["", "a,b", "a\"b", "a~b", "a#b", "a%b", "a$b", "a\u{0}"] {
            assert!(check_name("username", bad).is_err(), "{bad:?}");
        }
        assert!(check_email("a@example.com").is_ok());
        for bad in ["", "a", "a@b", "@b.c", "a b@c.d", "a@.c"] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
        assert!(check_comment(&"x".repeat(31)).is_err());
    }
}
