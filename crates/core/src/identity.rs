//! Authentication of local users: password hashing (argon2id), the
//! bootstrap admin, Basic credentials to a [`Subject`], a short-lived cache
//! of verified credentials (keyed by a salted hash, never the plaintext;
//! roles are not cached) and throttling of failed logins.

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

use crate::access::{Principal, Subject};
use crate::error::{CoreError, CoreResult};
use crate::model::{NewUser, User};
use crate::ports::MetaStore;

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

const CACHE_TTL: Duration = Duration::from_secs(5);
const FAILURE_LOCK: Duration = Duration::from_millis(1500);

pub struct Identity {
    meta: Arc<dyn MetaStore>,
    salt: [u8; 16],
    verified: Mutex<HashMap<[u8; 32], (User, Instant)>>,
    locked: Mutex<HashMap<String, Instant>>,
}

impl Identity {
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        Identity {
            meta,
            salt: rand::random(),
            verified: Mutex::new(HashMap::new()),
            locked: Mutex::new(HashMap::new()),
        }
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

    /// Sets the admin password from configuration when it changed.
    pub async fn reset_admin_password(&self, password: &str) -> CoreResult<()> {
        if let Some(admin) = self.meta.user_by_name("admin").await? {
            if !verify_password(&admin.password_hash, password) {
                self.meta
                    .set_password_hash(admin.id, &hash_password(password)?)
                    .await?;
            }
        }
        Ok(())
    }

    fn cache_key(&self, username: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(username.as_bytes());
        h.update([0u8]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// The subject for Basic credentials; `Unauthenticated` if they are wrong.
    pub async fn authenticate_basic(&self, username: &str, password: &str) -> CoreResult<Subject> {
        let key = self.cache_key(username, password);
        let cached = self
            .verified
            .lock()
            .map_err(CoreError::internal)?
            .get(&key)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(user, _)| user.clone());
        if let Some(user) = cached {
            // Only the password check is cached; roles are read every time
            // so that membership changes apply at once.
            return self.subject_for(&user).await;
        }
        if let Some(until) = self
            .locked
            .lock()
            .map_err(CoreError::internal)?
            .get(username)
        {
            if Instant::now() < *until {
                return Err(CoreError::Unauthenticated);
            }
        }
        let user = self.meta.user_by_name(username).await?;
        let ok = match &user {
            Some(u) => verify_password(&u.password_hash, password),
            None => {
                // Spend the same time as a real check so that timing does
                // not reveal which usernames exist.
                let _ = verify_password(dummy_hash(), password);
                false
            }
        };
        let Some(user) = user.filter(|_| ok) else {
            let mut locked = self.locked.lock().map_err(CoreError::internal)?;
            locked.retain(|_, t| Instant::now() < *t);
            locked.insert(username.to_owned(), Instant::now() + FAILURE_LOCK);
            return Err(CoreError::Unauthenticated);
        };
        let subject = self.subject_for(&user).await?;
        let mut cache = self.verified.lock().map_err(CoreError::internal)?;
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        cache.insert(key, (user, Instant::now()));
        Ok(subject)
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

    /// Forgets cached credentials (after role or password changes).
    pub fn invalidate(&self) {
        if let Ok(mut c) = self.verified.lock() {
            c.clear();
        }
    }
}

/// A hash of a random string, verified against when the user does not
/// exist so that the check costs the same.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_secret(16)).unwrap_or_default())
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
