//! System configuration (Harbor's `/configurations`): typed settings with
//! Harbor's defaults, persisted in the metadata store, editable by system
//! admins. Reads are cached for a second so that several nodes converge
//! quickly; a change made on this node applies at once.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::access::Subject;
use crate::clock;
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventBus};
use crate::ports::MetaStore;

/// The settings Berth acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemConfig {
    pub auth_mode: String,
    pub primary_auth_mode: bool,
    pub self_registration: bool,
    /// `everyone` or `adminonly`.
    pub project_creation_restriction: String,
    pub read_only: bool,
    pub robot_name_prefix: String,
    /// Minutes a registry token lives.
    pub token_expiration: i64,
    /// Days a robot lives by default (the portal's default).
    pub robot_token_duration: i64,
    /// Minutes of portal inactivity before the session ends.
    pub session_timeout: i64,
    pub banner_message: String,
    /// Default storage quota of new projects, bytes (-1 unlimited).
    pub storage_per_project: i64,
    pub quota_per_project_enable: bool,
    pub notification_enable: bool,
    pub pull_audit_log_disable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int { min: i64, max: i64 },
    Str { max_len: usize },
    OneOf(&'static [&'static str]),
}

/// Every key: its kind, default, and whether the API may change it.
/// (key, kind, default, editable).
type KeyRow = (&'static str, Kind, fn() -> Value, bool);

const KEYS: &[KeyRow] = &[
    (
        "auth_mode",
        Kind::OneOf(&["db_auth"]),
        || json!("db_auth"),
        true,
    ),
    ("primary_auth_mode", Kind::Bool, || json!(false), true),
    ("self_registration", Kind::Bool, || json!(false), true),
    (
        "project_creation_restriction",
        Kind::OneOf(&["everyone", "adminonly"]),
        || json!("everyone"),
        true,
    ),
    ("read_only", Kind::Bool, || json!(false), true),
    (
        "robot_name_prefix",
        Kind::Str { max_len: 32 },
        || json!("robot$"),
        true,
    ),
    (
        "token_expiration",
        Kind::Int {
            min: 1,
            max: 60 * 24 * 7,
        },
        || json!(30),
        true,
    ),
    (
        "robot_token_duration",
        Kind::Int {
            min: 1,
            max: 365 * 100,
        },
        || json!(30),
        true,
    ),
    (
        "session_timeout",
        Kind::Int {
            min: 1,
            max: 60 * 24 * 30,
        },
        || json!(60),
        true,
    ),
    (
        "banner_message",
        Kind::Str { max_len: 4096 },
        || json!(""),
        true,
    ),
    (
        "storage_per_project",
        Kind::Int {
            min: -1,
            max: 1024 * 1024 * 1024 * 1024 * 1024,
        },
        || json!(-1),
        true,
    ),
    ("quota_per_project_enable", Kind::Bool, || json!(true), true),
    ("notification_enable", Kind::Bool, || json!(true), true),
    ("pull_audit_log_disable", Kind::Bool, || json!(false), true),
];

fn validate(key: &str, kind: Kind, v: &Value) -> CoreResult<Value> {
    let bad = |what: &str| CoreError::BadRequest(format!("configuration {key} must be {what}"));
    Ok(match kind {
        Kind::Bool => match v {
            Value::Bool(b) => json!(b),
            Value::String(s) if s == "true" || s == "false" => json!(s == "true"),
            _ => return Err(bad("a boolean")),
        },
        Kind::Int { min, max } => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| bad("an integer"))?;
            if n < min || n > max || (key == "storage_per_project" && n == 0) {
                return Err(bad(&format!("between {min} and {max}")));
            }
            json!(n)
        }
        Kind::Str { max_len } => match v {
            Value::String(s) if s.chars().count() <= max_len && !s.contains('\0') => json!(s),
            _ => return Err(bad(&format!("a string of at most {max_len} characters"))),
        },
        Kind::OneOf(allowed) => match v {
            Value::String(s) if allowed.contains(&s.as_str()) => json!(s),
            Value::String(s) if key == "auth_mode" => {
                return Err(CoreError::BadRequest(format!(
                    "auth_mode {s:?} is not supported by this Berth version (db_auth only)"
                )))
            }
            _ => return Err(bad(&format!("one of {}", allowed.join(", ")))),
        },
    })
}

impl SystemConfig {
    fn from_values(values: &BTreeMap<String, Value>) -> SystemConfig {
        let get = |k: &str| -> Value {
            values
                .get(k)
                .cloned()
                .or_else(|| KEYS.iter().find(|e| e.0 == k).map(|e| (e.2)()))
                .unwrap_or(Value::Null)
        };
        let s = |k: &str| get(k).as_str().unwrap_or_default().to_owned();
        let b = |k: &str| get(k).as_bool().unwrap_or(false);
        let i = |k: &str| get(k).as_i64().unwrap_or(0);
        SystemConfig {
            auth_mode: s("auth_mode"),
            primary_auth_mode: b("primary_auth_mode"),
            self_registration: b("self_registration"),
            project_creation_restriction: s("project_creation_restriction"),
            read_only: b("read_only"),
            robot_name_prefix: s("robot_name_prefix"),
            token_expiration: i("token_expiration"),
            robot_token_duration: i("robot_token_duration"),
            session_timeout: i("session_timeout"),
            banner_message: s("banner_message"),
            storage_per_project: i("storage_per_project"),
            quota_per_project_enable: b("quota_per_project_enable"),
            notification_enable: b("notification_enable"),
            pull_audit_log_disable: b("pull_audit_log_disable"),
        }
    }
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig::from_values(&BTreeMap::new())
    }
}

/// One configuration item as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigItem {
    pub key: &'static str,
    pub value: Value,
    pub editable: bool,
}

const TTL: Duration = Duration::from_secs(1);

/// The parsed settings, the raw values, and when they were read.
type Cached = (Arc<SystemConfig>, BTreeMap<String, Value>, Instant);

pub struct Settings {
    meta: Arc<dyn MetaStore>,
    events: EventBus,
    cache: RwLock<Option<Cached>>,
}

impl Settings {
    pub fn new(meta: Arc<dyn MetaStore>, events: EventBus) -> Self {
        Settings {
            meta,
            events,
            cache: RwLock::new(None),
        }
    }

    async fn load(&self) -> CoreResult<(Arc<SystemConfig>, BTreeMap<String, Value>)> {
        if let Ok(guard) = self.cache.read() {
            if let Some((cfg, values, at)) = guard.as_ref() {
                if at.elapsed() < TTL {
                    return Ok((cfg.clone(), values.clone()));
                }
            }
        }
        let stored = self.meta.configuration().await?;
        let values: BTreeMap<String, Value> = stored
            .into_iter()
            .filter_map(|(k, v)| serde_json::from_str(&v).ok().map(|v| (k, v)))
            .collect();
        let cfg = Arc::new(SystemConfig::from_values(&values));
        if let Ok(mut guard) = self.cache.write() {
            *guard = Some((cfg.clone(), values.clone(), Instant::now()));
        }
        Ok((cfg, values))
    }

    /// The current settings.
    pub async fn current(&self) -> CoreResult<Arc<SystemConfig>> {
        Ok(self.load().await?.0)
    }

    /// Every item with its value (`GET /configurations`, system admins).
    pub async fn items(&self, subject: &Subject) -> CoreResult<Vec<ConfigItem>> {
        require_sysadmin(subject)?;
        let (_, values) = self.load().await?;
        Ok(KEYS
            .iter()
            .map(|(key, _, default, editable)| ConfigItem {
                key,
                value: values.get(*key).cloned().unwrap_or_else(default),
                editable: *editable,
            })
            .collect())
    }

    /// Applies `changes` (`PUT /configurations`, system admins). Every key
    /// is validated before anything is stored.
    pub async fn update(
        &self,
        subject: &Subject,
        changes: &BTreeMap<String, Value>,
    ) -> CoreResult<()> {
        require_sysadmin(subject)?;
        let mut store = BTreeMap::new();
        for (k, v) in changes {
            let Some((key, kind, _, editable)) = KEYS.iter().find(|e| e.0 == k) else {
                return Err(CoreError::BadRequest(format!(
                    "unsupported configuration key {k:?}"
                )));
            };
            if !editable {
                return Err(CoreError::BadRequest(format!(
                    "configuration {k} cannot be changed"
                )));
            }
            let v = validate(key, *kind, v)?;
            store.insert((*key).to_owned(), v.to_string());
        }
        if store.is_empty() {
            return Ok(());
        }
        self.meta.save_configuration(&store).await?;
        if let Ok(mut guard) = self.cache.write() {
            *guard = None;
        }
        self.events.publish(Event::ConfigurationUpdated {
            keys: store.keys().cloned().collect(),
            operator: subject.name().to_owned(),
            time: clock::now(),
        });
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_harbors() {
        let c = SystemConfig::default();
        assert_eq!(c.auth_mode, "db_auth");
        assert_eq!(c.project_creation_restriction, "everyone");
        assert_eq!(c.robot_name_prefix, "robot$");
        assert_eq!(
            (
                c.token_expiration,
                c.robot_token_duration,
                c.session_timeout
            ),
            (30, 30, 60)
        );
        assert!(!c.read_only && !c.self_registration);
        assert_eq!(c.storage_per_project, -1);
    }

    #[test]
    fn values_are_validated() {
        let k = |key: &str| KEYS.iter().find(|e| e.0 == key).unwrap().1;
        assert_eq!(
            validate("read_only", k("read_only"), &json!("true")).unwrap(),
            json!(true)
        );
        assert!(validate("read_only", k("read_only"), &json!(1)).is_err());
        assert!(validate("token_expiration", k("token_expiration"), &json!(0)).is_err());
        assert_eq!(
            validate("token_expiration", k("token_expiration"), &json!("45")).unwrap(),
            json!(45)
        );
        assert!(validate(
            "project_creation_restriction",
            k("project_creation_restriction"),
            &json!("nobody")
        )
        .is_err());
        assert!(validate("auth_mode", k("auth_mode"), &json!("ldap_auth")).is_err());
        assert!(validate("storage_per_project", k("storage_per_project"), &json!(0)).is_err());
    }
}
