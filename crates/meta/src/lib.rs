//! Berth's metadata store: the `MetaStore` port implemented on SQLite (the
//! embedded default, WAL, one writer connection) and on PostgreSQL (for
//! several stateless nodes). Both backends compile the same SQL from
//! `shared.rs`; only connection set-up and migrations differ.

use std::sync::Arc;

use berth_core::ports::MetaStore;
use berth_core::{CoreError, CoreResult};

pub mod cached;
pub mod postgres;
pub mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Opens the store `url` names (`sqlite://path` or `postgres://…`) and runs
/// its migrations.
pub async fn open(url: &str) -> CoreResult<Arc<dyn MetaStore>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        // Only this process writes an embedded database, so reads behind
        // every pull can be answered from memory.
        let store: Arc<dyn MetaStore> = Arc::new(SqliteStore::open(url).await?);
        Ok(Arc::new(cached::CachedStore::new(store)))
    } else {
        Err(CoreError::Internal(format!(
            "unsupported database URL {:?}: use sqlite://<file> or postgres://…",
            redact(url)
        )))
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("sqlite:///x.db"), "sqlite:///x.db");
    }
}
