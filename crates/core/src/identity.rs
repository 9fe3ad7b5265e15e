//! Authentication: who is calling. Local users (argon2id passwords, the
//! bootstrap admin, Harbor's password policy, throttled failures), robot
//! accounts (`robot$…` Basic credentials), registry tokens (signed JWTs,
//! `tokens`) and portal sessions. Every path ends in a [`Subject`]; what the
//! subject may do is decided in `access`.
//!
//! The current user or robot record is read on every request (the embedded
//! store answers from memory), so a deleted user, a disabled robot or a
//! refreshed secret is refused at once. Only the expensive password check
//! is cached, keyed by a salted hash of the credentials *and* the stored
//! hash, never by the plaintext.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest as _, Sha256};

use crate::access::{Action, Namespace, Permission, Principal, Resource, Subject, TokenAccess};
use crate::clock::{self, Millis};
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventBus};
use crate::model::{NewUser, Robot, Session, User};
use crate::ports::MetaStore;
use crate::settings::Settings;
use crate::tokens::{Claims, Scope, TokenKeys, Who};

/// Harbor's password rule text.
pub const PASSWORD_POLICY: &str = "the password or secret must be 8-128, inclusively, characters long with at least 1 uppercase letter, 1 lowercase letter and 1 number";

/// Whether `password` meets Harbor's policy.
pub fn password_acceptable(password: &str) -> bool {
    let n = password.chars().count();
    (8..=128).contains(&n)
        && password.chars().any(|c| c.is_ascii_uppercase())
        && password.chars().any(|c| c.is_ascii_lowercase())
        && password.chars().any(|c| c.is_ascii_digit())
}

pub fn hash_password(password: &str) -> CoreResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(CoreError::internal)
}

/// Constant-time verification (argon2 compares the derived key in constant time).
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A random secret meeting the password policy.
pub fn random_secret(len: usize) -> String {
    loop {
        let s: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(len)
            .map(char::from)
            .collect();
        if password_acceptable(&s) {
            return s;
        }
    }
}

/// A hash of a random string, verified against when the user does not
/// exist so that the check costs the same.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_secret(16)).unwrap_or_default())
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

const VERIFIED_TTL: Duration = Duration::from_secs(300);
const FAILURE_LOCK: Duration = Duration::from_millis(1500);

/// Whether a robot may act now.
pub fn robot_usable(robot: &Robot, now: Millis) -> bool {
    !robot.disabled && (robot.expires_at < 0 || robot.expires_at * 1000 > now)
}

/// A robot's permissions in `access` terms. Entries whose resource or
/// action is unknown are ignored (they grant nothing).
pub fn robot_permissions(robot: &Robot) -> Vec<Permission> {
    let mut out = vec![];
    for p in &robot.permissions {
        let namespace = match (p.kind.as_str(), p.namespace.as_str(), p.project_id) {
            ("system", _, _) => Namespace::System,
            ("project", "*", _) => Namespace::AllProjects,
            ("project", _, Some(id)) => Namespace::Project(id),
            _ => continue,
        };
        for a in &p.access {
            if let (Some(resource), Some(action)) =
                (Resource::parse(&a.resource), Action::parse(&a.action))
            {
                out.push(Permission {
                    namespace: namespace.clone(),
                    resource,
                    action,
                });
            }
        }
    }
    out
}

/// A registry token handed out by `/service/token`.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
    pub issued_at: Millis,
}

pub struct Identity {
    meta: Arc<dyn MetaStore>,
    settings: Arc<Settings>,
    events: EventBus,
    tokens: TokenKeys,
    salt: [u8; 16],
    /// Keys of credentials whose password check passed, with when.
    verified: Mutex<HashMap<String, Instant>>,
    /// Registry tokens whose signature checked out, with their claims.
    tokens_seen: Mutex<HashMap<String, Claims>>,
    locked: Mutex<HashMap<String, Instant>>,
}

impl Identity {
    pub fn new(
        meta: Arc<dyn MetaStore>,
        settings: Arc<Settings>,
        events: EventBus,
        tokens: TokenKeys,
    ) -> Self {
        Identity {
            meta,
            settings,
            events,
            tokens,
            salt: rand::random(),
            verified: Mutex::new(HashMap::new()),
            tokens_seen: Mutex::new(HashMap::new()),
            locked: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    /// Creates the admin user (id 1) on first start. Returns the generated
    /// password when none was given, so the caller can print it once.
    pub async fn ensure_admin(&self, password: Option<&str>) -> CoreResult<Option<String>> {
        if self.meta.user_by_name("admin").await?.is_some() {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p.to_owned(), false),
            None => (random_secret(20), true),
        };
        let user = NewUser {
            username: "admin".into(),
            email: "admin@example.com".into(),
            realname: "system admin".into(),
            comment: "admin user".into(),
            password_hash: hash_password(&password)?,
            sysadmin: true,
        };
        self.meta.create_user(&user).await?;
        Ok(generated.then_some(password))
    }

    fn is_locked(&self, name: &str) -> bool {
        self.locked
            .lock()
            .map(|l| l.get(name).is_some_and(|until| Instant::now() < *until))
            .unwrap_or(false)
    }

    fn fail(&self, name: &str) -> CoreError {
        if let Ok(mut locked) = self.locked.lock() {
            locked.retain(|_, t| Instant::now() < *t);
            locked.insert(name.to_owned(), Instant::now() + FAILURE_LOCK);
        }
        self.events.publish(Event::Login {
            username: name.to_owned(),
            success: false,
            time: clock::now(),
        });
        CoreError::Unauthenticated
    }

    /// Checks `password` against `stored_hash`, caching a success. A name
    /// locked after a failure only accepts credentials verified before it.
    fn check(&self, name: &str, password: &str, stored_hash: &str) -> bool {
        let key = sha256_hex(&[
            &self.salt,
            name.as_bytes(),
            password.as_bytes(),
            stored_hash.as_bytes(),
        ]);
        if let Ok(v) = self.verified.lock() {
            if v.get(&key).is_some_and(|at| at.elapsed() < VERIFIED_TTL) {
                return true;
            }
        }
        if self.is_locked(name) || !verify_password(stored_hash, password) {
            return false;
        }
        if let Ok(mut v) = self.verified.lock() {
            if v.len() > 10_000 {
                v.retain(|_, at| at.elapsed() < VERIFIED_TTL);
            }
            v.insert(key, Instant::now());
        }
        true
    }

    /// The subject for Basic credentials: a user, or a robot when the name
    /// has the robot prefix. `Unauthenticated` if they are wrong.
    pub async fn authenticate_basic(&self, username: &str, password: &str) -> CoreResult<Subject> {
        let prefix = self.settings.current().await?.robot_name_prefix.clone();
        if let Some(stored) = username.strip_prefix(prefix.as_str()) {
            let robot = self.meta.robot_by_name(stored).await?;
            return match robot {
                Some(r)
                    if robot_usable(&r, clock::now())
                        && self.check(username, password, &r.secret_hash) =>
                {
                    Ok(self.robot_subject(&r, &prefix))
                }
                Some(_) => Err(self.fail(username)),
                None => {
                    let _ = verify_password(dummy_hash(), password);
                    Err(self.fail(username))
                }
            };
        }
        let user = self.meta.user_by_name(username).await?;
        match user {
            Some(u) if self.check(username, password, &u.password_hash) => {
                self.subject_for(&u).await
            }
            Some(_) => Err(self.fail(username)),
            None => {
                // Spend the same time as a real check so that timing does
                // not reveal which usernames exist.
                let _ = verify_password(dummy_hash(), password);
                Err(self.fail(username))
            }
        }
    }

    /// The subject of a known user, with its project roles.
    pub async fn subject_for(&self, user: &User) -> CoreResult<Subject> {
        let roles = self.meta.roles_of_user(user.id).await?;
        Ok(Subject::new(
            Principal::User {
                id: user.id,
                name: user.username.clone(),
                sysadmin: user.sysadmin,
            },
            roles,
        ))
    }

    fn robot_subject(&self, robot: &Robot, prefix: &str) -> Subject {
        Subject::new(
            Principal::Robot {
                id: robot.id,
                name: format!("{prefix}{}", robot.name),
                permissions: robot_permissions(robot),
            },
            HashMap::new(),
        )
    }

    // ---- portal sessions --------------------------------------------------

    /// Signs a user in to the portal: a new session (token, CSRF token).
    /// Robots cannot sign in.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> CoreResult<(String, String, Subject)> {
        let prefix = self.settings.current().await?.robot_name_prefix.clone();
        if username.starts_with(prefix.as_str()) {
            return Err(self.fail(username));
        }
        let user = match self.meta.user_by_name(username).await? {
            Some(u) if self.check(username, password, &u.password_hash) => u,
            Some(_) => return Err(self.fail(username)),
            None => {
                let _ = verify_password(dummy_hash(), password);
                return Err(self.fail(username));
            }
        };
        let token = random_secret(43);
        let csrf = random_secret(32);
        let timeout = self.settings.current().await?.session_timeout;
        self.meta
            .create_session(
                &sha256_hex(&[token.as_bytes()]),
                &Session {
                    user_id: user.id,
                    csrf_token: csrf.clone(),
                    expires_at: clock::now() + timeout * 60_000,
                },
            )
            .await?;
        self.events.publish(Event::Login {
            username: user.username.clone(),
            success: true,
            time: clock::now(),
        });
        let subject = self.subject_for(&user).await?;
        Ok((token, csrf, subject))
    }

    /// The subject and CSRF token of a live session; extends it (sliding
    /// expiry, at most once a minute).
    pub async fn session(&self, token: &str) -> CoreResult<Option<(Subject, String)>> {
        let hash = sha256_hex(&[token.as_bytes()]);
        let now = clock::now();
        let Some(session) = self.meta.session(&hash, now).await? else {
            return Ok(None);
        };
        let Some(user) = self.meta.user_by_id(session.user_id).await? else {
            return Ok(None);
        };
        let timeout = self.settings.current().await?.session_timeout * 60_000;
        if session.expires_at - now < timeout - 60_000 {
            self.meta.extend_session(&hash, now + timeout).await?;
        }
        Ok(Some((self.subject_for(&user).await?, session.csrf_token)))
    }

    /// Ends a session.
    pub async fn logout(&self, token: &str, subject: &Subject) -> CoreResult<()> {
        self.meta
            .delete_session(&sha256_hex(&[token.as_bytes()]))
            .await?;
        if !subject.is_anonymous() {
            self.events.publish(Event::Logout {
                username: subject.name().to_owned(),
                time: clock::now(),
            });
        }
        Ok(())
    }

    // ---- registry tokens --------------------------------------------------

    /// Issues a registry token for `scopes`: each lists only the actions the
    /// subject holds now (an unknown project grants nothing).
    pub async fn issue_token(
        &self,
        subject: &Subject,
        scopes: &[Scope],
    ) -> CoreResult<IssuedToken> {
        let cfg = self.settings.current().await?;
        let mut access = vec![];
        for scope in scopes {
            let granted = crate::tokens::grant(&*self.meta, subject, scope).await?;
            access.push(crate::tokens::ClaimAccess {
                kind: scope.kind.clone(),
                name: scope.name.clone(),
                actions: granted,
            });
        }
        let who = match &subject.principal {
            Principal::Anonymous => Who::anonymous(),
            Principal::User { id, .. } => Who::user(*id),
            Principal::Robot { id, .. } => {
                let version = self
                    .meta
                    .robot_by_id(*id)
                    .await?
                    .map(|r| r.secret_version)
                    .unwrap_or(0);
                Who::robot(*id, version)
            }
        };
        let now = clock::now();
        let ttl = cfg.token_expiration * 60;
        let token = self.tokens.sign(subject.name(), who, access, now, ttl)?;
        Ok(IssuedToken {
            token,
            expires_in: ttl,
            issued_at: now,
        })
    }

    /// The subject of a registry token: its signature, issuer, audience and
    /// lifetime must check out, and its principal must still be valid.
    pub async fn authenticate_bearer(&self, token: &str) -> CoreResult<Subject> {
        let key = sha256_hex(&[token.as_bytes()]);
        let cached = self
            .tokens_seen
            .lock()
            .ok()
            .and_then(|t| t.get(&key).cloned());
        let now = clock::now();
        let claims = match cached {
            Some(c) if c.exp * 1000 > now => c,
            _ => {
                let c = self.tokens.verify(token)?;
                if let Ok(mut t) = self.tokens_seen.lock() {
                    if t.len() > 10_000 {
                        t.retain(|_, c| c.exp * 1000 > now);
                    }
                    t.insert(key, c.clone());
                }
                c
            }
        };
        let access = TokenAccess {
            repositories: claims
                .access
                .iter()
                .filter(|a| a.kind == "repository")
                .map(|a| {
                    (
                        a.name.clone(),
                        a.actions.iter().filter_map(|x| Action::parse(x)).collect(),
                    )
                })
                .collect(),
            catalog: claims
                .access
                .iter()
                .any(|a| a.kind == "registry" && a.name == "catalog" && !a.actions.is_empty()),
        };
        let subject = match claims.who.kind.as_str() {
            "user" => match self.meta.user_by_id(claims.who.id).await? {
                Some(u) => self.subject_for(&u).await?,
                None => return Err(CoreError::Unauthenticated),
            },
            "robot" => match self.meta.robot_by_id(claims.who.id).await? {
                Some(r) if robot_usable(&r, now) && r.secret_version == claims.who.version => {
                    let prefix = self.settings.current().await?.robot_name_prefix.clone();
                    self.robot_subject(&r, &prefix)
                }
                _ => return Err(CoreError::Unauthenticated),
            },
            _ => Subject::anonymous(),
        };
        Ok(subject.with_token(access))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy() {
        assert!(password_acceptable("Harbor12345"));
        assert!(!password_acceptable("harbor12345"));
        assert!(!password_acceptable("HARBOR12345"));
        assert!(!password_acceptable("Harborxxxx"));
        assert!(!password_acceptable("Ha1"));
        assert!(!password_acceptable(&format!("Ha1{}", "x".repeat(126))));
        assert!(password_acceptable(&random_secret(32)));
    }

    #[test]
    fn hashing_round_trip() {
        let h = hash_password("S3cretPass").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "S3cretPass"));
        assert!(!verify_password(&h, "S3cretPasS"));
        assert!(!verify_password("garbage", "x"));
        assert!(!verify_password(dummy_hash(), "x"));
    }
}
