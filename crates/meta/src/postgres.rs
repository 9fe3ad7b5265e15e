//! The metadata store on PostgreSQL, shared by several stateless Berth
//! nodes. Row locks taken by `UPDATE` inside transactions order pushes and
//! garbage collection; every statement is the same as on SQLite.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::Pool;

type Db = sqlx::Postgres;
const KIND: &str = "postgres";

pub struct PgStore {
    pool: Pool<Db>,
}

type Store = PgStore;

impl PgStore {
    /// Connects to `url` and migrates the database.
    pub async fn connect(url: &str) -> berth_core::CoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(|e| {
                berth_core::CoreError::Internal(format!("connecting to PostgreSQL: {e}"))
            })?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| {
                berth_core::CoreError::Internal(format!("migrating PostgreSQL database: {e}"))
            })?;
        Ok(PgStore { pool })
    }

    fn reader(&self) -> &Pool<Db> {
        &self.pool
    }

    fn writer(&self) -> &Pool<Db> {
        &self.pool
    }

    /// A connection for transactions a client is told succeeded; every
    /// PostgreSQL commit is durable with the server's default settings.
    async fn durable(&self) -> berth_core::CoreResult<sqlx::pool::PoolConnection<Db>> {
        self.pool.acquire().await.map_err(db)
    }
}

/// Concurrent claimers on several nodes skip the rows others hold.
const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
/// A background writer updating a non-key column takes only the rows no one
/// else holds, so it never waits while it holds others.
const SKIP_LOCKED_UPDATE: &str = " FOR NO KEY UPDATE SKIP LOCKED";

include!("shared.rs");
include!("jobs.rs");
