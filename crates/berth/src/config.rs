//! One typed configuration tree: defaults, then the optional TOML file
//! (`--config`), then `BERTH_*` environment variables. Unknown keys in the
//! file or unknown `BERTH_*` variables are errors (`BERTH_TEST_*` is
//! reserved for the test harness and ignored). Secrets may come from
//! `*_FILE` variables and are redacted in `Debug`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret string that never shows in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: Secret,
    /// `file://…` or `s3://bucket/prefix?…`.
    pub storage_url: String,
    /// The URL clients reach Berth at; derived from `listen` when unset.
    pub external_url: Option<String>,
    pub admin_password: Option<Secret>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub max_manifest_bytes: u64,
    /// The registry-token signing key (PKCS#8 PEM), created if missing.
    pub token_key_file: PathBuf,
    /// Upload sessions untouched this long are purged (default 7 days, as
    /// distribution's `uploadpurging.age`).
    pub upload_purge_age: std::time::Duration,
    /// How often the purge runs (default daily); zero turns it off.
    pub upload_purge_interval: std::time::Duration,
    /// Garbage collection keeps blobs and untagged artifacts used within
    /// this window (Harbor's `GC_TIME_WINDOW_HOURS`, default 2 hours).
    pub gc_time_window: std::time::Duration,
}

/// The file's shape; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    storage_url: Option<String>,
    external_url: Option<String>,
    admin_password: Option<String>,
    admin_password_file: Option<PathBuf>,
    log_format: Option<String>,
    log_level: Option<String>,
    max_manifest_bytes: Option<u64>,
    token_key_file: Option<PathBuf>,
    /// Seconds.
    upload_purge_age: Option<u64>,
    /// Seconds.
    upload_purge_interval: Option<u64>,
    /// Seconds.
    gc_time_window: Option<u64>,
}

/// Environment variables and the file key each one sets.
const ENV_KEYS: &[(&str, &str)] = &[
    ("BERTH_LISTEN", "listen"),
    ("BERTH_DATA_DIR", "data_dir"),
    ("BERTH_DATABASE_URL", "database_url"),
    ("BERTH_DATABASE_URL_FILE", "database_url_file"),
    ("BERTH_STORAGE_URL", "storage_url"),
    ("BERTH_EXTERNAL_URL", "external_url"),
    ("BERTH_ADMIN_PASSWORD", "admin_password"),
    ("BERTH_ADMIN_PASSWORD_FILE", "admin_password_file"),
    ("BERTH_LOG_FORMAT", "log_format"),
    ("BERTH_LOG_LEVEL", "log_level"),
    ("BERTH_MAX_MANIFEST_BYTES", "max_manifest_bytes"),
    ("BERTH_TOKEN_KEY_FILE", "token_key_file"),
    ("BERTH_UPLOAD_PURGE_AGE", "upload_purge_age"),
    ("BERTH_UPLOAD_PURGE_INTERVAL", "upload_purge_interval"),
    ("BERTH_GC_TIME_WINDOW", "gc_time_window"),
];

fn read_secret_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

impl Config {
    /// Loads the configuration from `file` (if given) and `env`.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Config, String> {
        let mut fc: FileConfig = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let mut database_url_file: Option<PathBuf> = None;
        for (name, value) in env {
            if !name.starts_with("BERTH_") || name.starts_with("BERTH_TEST_") {
                continue;
            }
            let Some((_, key)) = ENV_KEYS.iter().find(|(n, _)| n == name) else {
                let known: Vec<&str> = ENV_KEYS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown environment variable {name}; known: {}",
                    known.join(", ")
                ));
            };
            let v = value.clone();
            match *key {
                "listen" => fc.listen = Some(v),
                "data_dir" => fc.data_dir = Some(v.into()),
                "database_url" => fc.database_url = Some(v),
                "database_url_file" => database_url_file = Some(v.into()),
                "storage_url" => fc.storage_url = Some(v),
                "external_url" => fc.external_url = Some(v),
                "admin_password" => fc.admin_password = Some(v),
                "admin_password_file" => fc.admin_password_file = Some(v.into()),
                "log_format" => fc.log_format = Some(v),
                "log_level" => fc.log_level = Some(v),
                "token_key_file" => fc.token_key_file = Some(v.into()),
                "upload_purge_age" => {
                    fc.upload_purge_age = Some(
                        v.parse()
                            .map_err(|_| format!("{name} must be a number of seconds"))?,
                    )
                }
                "upload_purge_interval" => {
                    fc.upload_purge_interval = Some(
                        v.parse()
                            .map_err(|_| format!("{name} must be a number of seconds"))?,
                    )
                }
                "gc_time_window" => {
                    fc.gc_time_window = Some(
                        v.parse()
                            .map_err(|_| format!("{name} must be a number of seconds"))?,
                    )
                }
                "max_manifest_bytes" => {
                    fc.max_manifest_bytes = Some(
                        v.parse()
                            .map_err(|_| format!("{name} must be a number of bytes"))?,
                    )
                }
                _ => unreachable!("every ENV_KEYS entry is handled"),
            }
        }
        let listen: SocketAddr = fc
            .listen
            .as_deref()
            .unwrap_or("0.0.0.0:8080")
            .parse()
            .map_err(|e| format!("listen: {e} (expected host:port, e.g. 0.0.0.0:8080)"))?;
        let data_dir = fc.data_dir.unwrap_or_else(|| PathBuf::from("./berth-data"));
        let database_url = match (fc.database_url, database_url_file) {
            (Some(u), _) => u,
            (None, Some(f)) => read_secret_file(&f)?,
            (None, None) => format!("sqlite://{}", data_dir.join("berth.db").display()),
        };
        let storage_url = fc
            .storage_url
            .unwrap_or_else(|| format!("file://{}", data_dir.join("blobs").display()));
        if !(storage_url.starts_with("file://") || storage_url.starts_with("s3://")) {
            return Err(format!(
                "storage_url {storage_url:?}: use file://<path> or s3://bucket/prefix"
            ));
        }
        let admin_password = match (fc.admin_password, fc.admin_password_file) {
            (Some(p), _) => Some(p),
            (None, Some(f)) => Some(read_secret_file(&f)?),
            (None, None) => None,
        }
        .filter(|p| !p.is_empty())
        .map(Secret);
        if let Some(p) = &admin_password {
            if !berth_core::identity::password_acceptable(&p.0) {
                return Err(format!(
                    "admin password: {}",
                    berth_core::identity::PASSWORD_POLICY
                ));
            }
        }
        let log_format = match fc.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(format!("log_format {other:?}: use text or json")),
        };
        let token_key_file = fc
            .token_key_file
            .unwrap_or_else(|| data_dir.join("token.key"));
        let external_url = fc.external_url.map(|u| u.trim_end_matches('/').to_owned());
        if let Some(u) = &external_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "external_url {u:?} must start with http:// or https://"
                ));
            }
        }
        Ok(Config {
            listen,
            data_dir,
            database_url: Secret(database_url),
            storage_url,
            external_url,
            admin_password,
            log_format,
            log_level: fc.log_level.unwrap_or_else(|| "info".into()),
            max_manifest_bytes: fc.max_manifest_bytes.unwrap_or(4 * 1024 * 1024),
            token_key_file,
            upload_purge_age: std::time::Duration::from_secs(
                fc.upload_purge_age.unwrap_or(7 * 86_400),
            ),
            gc_time_window: fc
                .gc_time_window
                .map(std::time::Duration::from_secs)
                .unwrap_or(berth_core::gc::DEFAULT_TIME_WINDOW),
            upload_purge_interval: std::time::Duration::from_secs(
                fc.upload_purge_interval.unwrap_or(86_400),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = Config::load(None, &env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.data_dir, PathBuf::from("./berth-data"));
        assert_eq!(c.database_url.0, "sqlite://./berth-data/berth.db");
        assert_eq!(c.storage_url, "file://./berth-data/blobs");
        assert!(c.admin_password.is_none());
        assert_eq!(c.upload_purge_age.as_secs(), 7 * 86_400);
        assert_eq!(c.upload_purge_interval.as_secs(), 86_400);
    }

    #[test]
    fn upload_purge_settings() {
        let c = Config::load(
            None,
            &env(&[
                ("BERTH_UPLOAD_PURGE_AGE", "3600"),
                ("BERTH_UPLOAD_PURGE_INTERVAL", "0"),
            ]),
        )
        .unwrap();
        assert_eq!(c.upload_purge_age.as_secs(), 3600);
        assert!(c.upload_purge_interval.is_zero());
        let e = Config::load(None, &env(&[("BERTH_UPLOAD_PURGE_AGE", "soon")])).unwrap_err();
        assert!(e.contains("number of seconds"), "{e}");
    }

    #[test]
    fn env_overrides_file_and_unknown_keys_fail() {
        let dir = std::env::temp_dir().join(format!("berth-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("berth.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/berth\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&f),
            &env(&[
                ("BERTH_LISTEN", "127.0.0.1:9001"),
                ("BERTH_TEST_X", "1"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(c.storage_url, "file:///srv/berth/blobs");
        assert!(Config::load(Some(&f), &env(&[("BERTH_LISTEN_PORT", "1")]))
            .unwrap_err()
            .contains("BERTH_LISTEN_PORT"));
        std::fs::write(&f, "listen_port = 1\n").unwrap();
        assert!(Config::load(Some(&f), &env(&[]))
            .unwrap_err()
            .contains("listen_port"));
        let pw = dir.join("pw");
        std::fs::write(&pw, "S3cretPassw0rd\n").unwrap();
        let c = Config::load(
            None,
            &env(&[("BERTH_ADMIN_PASSWORD_FILE", pw.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(
            c.admin_password.as_ref().map(|s| s.0.as_str()),
            Some("S3cretPassw0rd")
        );
        assert!(!format!("{c:?}").contains("S3cret"), "secrets are redacted");
        assert!(Config::load(None, &env(&[("BERTH_ADMIN_PASSWORD", "weak")])).is_err());
        assert!(Config::load(None, &env(&[("BERTH_STORAGE_URL", "ftp://x")])).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
