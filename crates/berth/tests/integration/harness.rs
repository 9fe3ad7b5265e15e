//! Starts real `berth serve` processes on 127.0.0.1 port 0, each with its
//! own data dir, on the embedded backends (SQLite + filesystem) or on the
//! shared ones (a fresh PostgreSQL database and S3 prefix per test), and
//! gives tests an HTTP client and push/pull helpers.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_oci::{Algorithm, Digest};
use bytes::Bytes;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "Berth-Test-12345";

/// Where a server keeps its data.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded default: SQLite and a folder, inside the data dir.
    Embedded,
    /// Shared stores: several servers may use the same ones.
    Shared {
        database_url: String,
        storage_url: String,
    },
}

impl Backend {
    /// A fresh PostgreSQL database and S3 prefix, from the services that
    /// `scripts/test-services` starts.
    pub async fn postgres_s3() -> Option<Backend> {
        let (Ok(pg), Ok(s3)) = (
            std::env::var("BERTH_TEST_POSTGRES_URL"),
            std::env::var("BERTH_TEST_S3_ENDPOINT"),
        ) else {
            if std::env::var("BERTH_TEST_SKIP_EXTERNAL").as_deref() == Ok("1") {
                eprintln!("skipping: BERTH_TEST_POSTGRES_URL / BERTH_TEST_S3_ENDPOINT unset");
                return None;
            }
            panic!("BERTH_TEST_POSTGRES_URL and BERTH_TEST_S3_ENDPOINT must be set: run `eval \"$(scripts/test-services start)\"` (or set BERTH_TEST_SKIP_EXTERNAL=1)");
        };
        let bucket = std::env::var("BERTH_TEST_S3_BUCKET").unwrap_or_else(|_| "berth-test".into());
        let name = format!("berth_it_{}", uuid::Uuid::new_v4().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&pg)
            .await
            .expect("connect to test PostgreSQL");
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let database_url = format!("{}/{}", &pg[..pg.rfind('/').expect("database path")], name);
        let storage_url = format!(
            "s3://{bucket}/{}?endpoint={s3}&region=us-east-1&allow_http=true&access_key_id=testkey&secret_access_key=testsecret",
            uuid::Uuid::new_v4().simple()
        );
        Some(Backend::Shared {
            database_url,
            storage_url,
        })
    }
}

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub dir: PathBuf,
    pub backend: Backend,
    extra_env: Vec<(String, String)>,
    pub http: reqwest::Client,
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("berth-it-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
        Self::start_with(backend, vec![]).await
    }

    pub async fn start_with(backend: Backend, extra_env: Vec<(String, String)>) -> Server {
        let mut s = Server {
            child: None,
            addr: String::new(),
            dir: temp_dir("srv"),
            backend,
            extra_env,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .timeout(Duration::from_secs(300))
                .build()
                .expect("http client"),
        };
        s.spawn("127.0.0.1:0").await;
        s
    }

    async fn spawn(&mut self, listen: &str) {
        let ready = self.dir.join("ready");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        for (k, _) in std::env::vars() {
            if k.starts_with("BERTH_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("serve")
            .arg("--ready-file")
            .arg(&ready)
            .env("BERTH_LISTEN", listen)
            .env("BERTH_DATA_DIR", self.dir.join("data"))
            .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env(
                "BERTH_LOG_LEVEL",
                std::env::var("BERTH_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Backend::Shared {
            database_url,
            storage_url,
        } = &self.backend
        {
            cmd.env("BERTH_DATABASE_URL", database_url)
                .env("BERTH_STORAGE_URL", storage_url);
        }
        for (k, v) in &self.extra_env {
            // an empty value unsets the variable
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let child = cmd.spawn().expect("spawn berth");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(a) = std::fs::read_to_string(&ready) {
                if !a.is_empty() {
                    self.addr = a.trim().to_owned();
                    break;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "berth exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "berth did not become ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and wait for the orderly exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same address and data.
    pub async fn restart(&mut self) {
        self.stop();
        let addr = self.addr.clone();
        self.spawn(&addr).await;
    }

    /// Starts again after a `kill`.
    pub async fn start_again(&mut self) {
        let addr = self.addr.clone();
        self.spawn(&addr).await;
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") {
            path.to_owned()
        } else {
            format!("http://{}{}", self.addr, path)
        }
    }

    /// A request as the admin.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
    }

    /// A request without credentials.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// A request with Basic credentials (a user's or a robot's).
    pub fn basic(&self, user: &str, password: &str, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .basic_auth(user, Some(password))
    }

    /// Creates a database user as the admin; returns its id.
    pub async fn create_user(&self, name: &str, password: &str) -> i64 {
        self.create_user_named(name, name, password).await
    }

    /// Creates a database user with a real name; returns its id.
    pub async fn create_user_named(&self, name: &str, realname: &str, password: &str) -> i64 {
        let res = self
            .admin(Method::POST, "/api/v2.0/users")
            .json(&json!({ "username": name, "email": format!("{name}@example.com"), "realname": realname, "password": password, "comment": "c" }))
            .send()
            .await
            .expect("create user");
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "create user {name}: {}",
            res.text().await.unwrap_or_default()
        );
        location(&res)
            .rsplit('/')
            .next()
            .and_then(|id| id.parse().ok())
            .expect("user id in Location")
    }

    /// Makes `user` a member of `project` with Harbor's role id.
    pub async fn add_member(&self, project: &str, user: &str, role: i64) {
        let res = self
            .admin(
                Method::POST,
                &format!("/api/v2.0/projects/{project}/members"),
            )
            .json(&json!({ "role_id": role, "member_user": { "username": user } }))
            .send()
            .await
            .expect("add member");
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "add {user} to {project}: {}",
            res.text().await.unwrap_or_default()
        );
    }

    /// Creates a robot as the admin from a Harbor robot body; returns its
    /// login name and secret.
    pub async fn create_robot(&self, body: Value) -> (String, String) {
        let res = self
            .admin(Method::POST, "/api/v2.0/robots")
            .json(&body)
            .send()
            .await
            .expect("create robot");
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "create robot: {}",
            res.text().await.unwrap_or_default()
        );
        let v: Value = res.json().await.expect("robot JSON");
        (
            v["name"].as_str().expect("name").to_owned(),
            v["secret"].as_str().expect("secret").to_owned(),
        )
    }

    pub async fn create_project(&self, name: &str, public: bool) {
        let res = self
            .admin(Method::POST, "/api/v2.0/projects")
            .json(&json!({ "project_name": name, "metadata": { "public": public.to_string() } }))
            .send()
            .await
            .expect("create project");
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "create project {name}: {}",
            res.text().await.unwrap_or_default()
        );
    }

    /// Pushes `data` as a blob of `repo` (POST then PUT) and returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        self.push_blob_alg(repo, data, Algorithm::Sha256).await
    }

    pub async fn push_blob_alg(&self, repo: &str, data: &[u8], alg: Algorithm) -> Digest {
        let digest = Digest::of(alg, data);
        let res = self
            .admin(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .expect("POST upload");
        assert_eq!(
            res.status(),
            StatusCode::ACCEPTED,
            "{}",
            res.text().await.unwrap_or_default()
        );
        let loc = location(&res);
        let res = self
            .admin(Method::PUT, &with_query(&loc, &format!("digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .expect("PUT upload");
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap_or_default()
        );
        digest
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.admin(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("PUT manifest")
    }

    /// Pushes a small image (config + `layers` random layers) under `tag`;
    /// returns (manifest digest, manifest bytes, blob digests).
    pub async fn push_image(
        &self,
        repo: &str,
        tag: &str,
        layers: usize,
    ) -> (Digest, Bytes, Vec<Digest>) {
        let mut blobs = vec![];
        let mut layer_descs = vec![];
        for i in 0..layers {
            let data: Vec<u8> = (0..1000 + i * 17).map(|_| rand::random::<u8>()).collect();
            let d = self.push_blob(repo, &data).await;
            layer_descs.push(json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.as_str(), "size": data.len() }));
            blobs.push(d);
        }
        let config = json!({ "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z", "rootfs": { "type": "layers", "diff_ids": [] }, "history": [{ "created_by": "test" }], "nonce": uuid::Uuid::new_v4().to_string() }).to_string();
        let cd = self.push_blob(repo, config.as_bytes()).await;
        blobs.push(cd.clone());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": berth_oci::media::OCI_MANIFEST,
            "config": { "mediaType": berth_oci::media::OCI_CONFIG, "digest": cd.as_str(), "size": config.len() },
            "layers": layer_descs,
        })
        .to_string();
        let res = self
            .put_manifest(
                repo,
                tag,
                berth_oci::media::OCI_MANIFEST,
                manifest.as_bytes(),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap_or_default()
        );
        (
            Digest::sha256(manifest.as_bytes()),
            Bytes::from(manifest),
            blobs,
        )
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.admin(Method::GET, path).send().await.expect("GET");
        assert!(
            res.status().is_success(),
            "GET {path}: {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        );
        res.json().await.expect("JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::env::var("BERTH_TEST_KEEP").is_err() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The `Location` header of a response.
pub fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location header on {}", res.status()))
        .to_owned()
}

/// Appends a query to a URL that may already have one.
pub fn with_query(url: &str, q: &str) -> String {
    if url.contains('?') {
        format!("{url}&{q}")
    } else {
        format!("{url}?{q}")
    }
}

pub fn header(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Asserts the status and the OCI error code of a response.
pub async fn expect_error(res: Response, status: u16, code: &str) {
    let got = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(got, status, "expected {status} {code}, got {got}: {body}");
    let v: Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("error body is not JSON: {body:?}"));
    assert_eq!(v["errors"][0]["code"], code, "{body}");
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

/// Waits for a run of a system job (`/api/v2.0/system/gc`,
/// `/api/v2.0/system/purgeaudit`) to end; returns its history entry.
pub async fn wait_system_job(s: &Server, base: &str, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let h = s.get_json(&format!("{base}/{id}")).await;
        let status = h["job_status"].as_str().unwrap().to_owned();
        if ["Success", "Error", "Stopped"].contains(&status.as_str()) {
            return h;
        }
        assert!(Instant::now() < deadline, "{base}/{id} still {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A system job run's log, which must be served as text.
pub async fn system_job_log(s: &Server, base: &str, id: i64) -> String {
    let res = s
        .admin(Method::GET, &format!("{base}/{id}/log"))
        .send()
        .await
        .expect("GET log");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header(&res, "content-type")
        .unwrap_or_default()
        .starts_with("text/plain"));
    res.text().await.expect("log text")
}
