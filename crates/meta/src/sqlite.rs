//! The metadata store on SQLite: WAL journal; `synchronous = FULL` for the
//! transactions a client is told succeeded (so an acknowledged push
//! survives a power cut) and `NORMAL` for progress records; a pool of
//! readers and a single writer connection (SQLite has one writer;
//! serializing writes in the pool avoids lock-upgrade failures).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Pool;

type Db = sqlx::Sqlite;
const KIND: &str = "sqlite";

pub struct SqliteStore {
    read: Pool<Db>,
    write: Pool<Db>,
}

type Store = SqliteStore;

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and migrates it.
    pub async fn open(url: &str) -> berth_core::CoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| berth_core::CoreError::Internal(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            // `durable()` raises this for one transaction; set it back.
            .after_release(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(&mut *conn, "PRAGMA synchronous = NORMAL").await?;
                    Ok(true)
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(|e| {
                berth_core::CoreError::Internal(format!("opening SQLite database: {e}"))
            })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&write)
            .await
            .map_err(|e| {
                berth_core::CoreError::Internal(format!("migrating SQLite database: {e}"))
            })?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(options.read_only(true))
            .await
            .map_err(|e| {
                berth_core::CoreError::Internal(format!("opening SQLite database: {e}"))
            })?;
        Ok(SqliteStore { read, write })
    }

    fn reader(&self) -> &Pool<Db> {
        &self.read
    }

    fn writer(&self) -> &Pool<Db> {
        &self.write
    }

    /// The writer connection, committing with `synchronous = FULL`: what is
    /// committed on it survives a power cut.
    async fn durable(&self) -> berth_core::CoreResult<sqlx::pool::PoolConnection<Db>> {
        let mut conn = self.write.acquire().await.map_err(db)?;
        sqlx::Executor::execute(&mut *conn, "PRAGMA synchronous = FULL")
            .await
            .map_err(db)?;
        Ok(conn)
    }
}

/// One writer connection serialises claims; there are no row locks.
const SKIP_LOCKED: &str = "";
const SKIP_LOCKED_UPDATE: &str = "";

include!("shared.rs");
include!("jobs.rs");
