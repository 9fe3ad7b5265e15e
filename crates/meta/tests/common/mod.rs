//! Stores for the test suites: a fresh SQLite file, or a fresh database on
//! the PostgreSQL of `BERTH_TEST_POSTGRES_URL` (a superuser URL).

use std::sync::Arc;

use berth_core::ports::MetaStore;

pub struct TestDb {
    pub store: Arc<dyn MetaStore>,
    /// The PostgreSQL database's URL, for cases that hold locks beside the
    /// store (only some suites read it).
    #[allow(dead_code)]
    pub url: Option<String>,
    _dir: Option<TempDir>,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn sqlite() -> Option<TestDb> {
    let dir = std::env::temp_dir().join(format!("berth-meta-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/berth.db", dir.display());
    let store = berth_meta::open(&url).await.unwrap();
    Some(TestDb {
        store,
        url: None,
        _dir: Some(TempDir(dir)),
    })
}

pub async fn postgres() -> Option<TestDb> {
    let Ok(admin) = std::env::var("BERTH_TEST_POSTGRES_URL") else {
        if std::env::var("BERTH_TEST_SKIP_EXTERNAL").as_deref() == Ok("1") {
            eprintln!("skipping PostgreSQL case: BERTH_TEST_POSTGRES_URL unset");
            return None;
        }
        panic!("BERTH_TEST_POSTGRES_URL is unset: start PostgreSQL with scripts/test-services (or set BERTH_TEST_SKIP_EXTERNAL=1)");
    };
    let name = format!("berth_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let url = match admin.rfind('/') {
        Some(i) => format!("{}/{}", &admin[..i], name),
        None => panic!("BERTH_TEST_POSTGRES_URL needs a database path"),
    };
    let store = berth_meta::open(&url).await.unwrap();
    Some(TestDb {
        store,
        url: Some(url),
        _dir: None,
    })
}
