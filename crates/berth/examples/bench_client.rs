//! The load generator of `scripts/bench`: registry pushes and pulls over
//! the OCI API, timed. Works against any registry (Berth or distribution).
//!
//! ```text
//! bench_client push-blob <base-url> <repo> <file>            # monolithic POST+PUT
//! bench_client push-many <base-url> <repo> <count> <bytes> <concurrency>
//! bench_client pull-blob <base-url> <repo> <digest>
//! bench_client push-image <base-url> <repo> <tag>            # prints the manifest and a blob digest
//! bench_client rps <base-url> <path> <GET|HEAD> <connections> <seconds> [accept]
//! bench_client portal-pages <base-url> <project> <repositories>  # Berth only: page render times
//! bench_client token <base-url> <repo>                      # a pull token for `ab`
//! bench_client push-tags <base-url> <repo> <count> <concurrency>  # one image under <count> tags (distinct manifests)
//! bench_client gc <base-url> -                                # Berth only: a GC run, start to end
//! bench_client retention <base-url> <project> <keep>          # Berth only: latestPushedK=<keep> run, start to end
//! ```
//! Credentials come from `BENCH_USER` / `BENCH_PASSWORD` when set and are
//! used as docker uses them: the client asks `GET /v2/` how to
//! authenticate; on a `Bearer` challenge (Berth) it fetches one token per
//! repository from the token service and sends it on every `/v2` request,
//! on a `Basic` challenge (distribution behind htpasswd) it sends Basic
//! credentials on every request. `/api` and portal requests use Basic. Each
//! command prints one JSON line.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use berth_oci::Digest;
use futures::StreamExt;
use reqwest::{Client, Method, RequestBuilder};
use serde_json::json;

/// How the registry wants `/v2` requests authenticated.
enum Scheme {
    Basic,
    Bearer { realm: String, service: String },
}

struct Target {
    http: Client,
    base: String,
    auth: Option<(String, String)>,
    scheme: Scheme,
    /// Registry tokens by repository, as docker keeps them.
    tokens: tokio::sync::Mutex<HashMap<String, String>>,
}

/// The repository a `/v2/<name>/(blobs|manifests|tags)/…` path addresses.
fn repository_of(path: &str) -> Option<&str> {
    let rest = path.split("/v2/").nth(1)?;
    ["/blobs/", "/manifests/", "/tags/"]
        .iter()
        .filter_map(|k| rest.rfind(k))
        .min()
        .map(|end| &rest[..end])
}

/// `key="value"` from a challenge header.
fn challenge_param(header: &str, key: &str) -> Option<String> {
    let start = header.find(&format!("{key}=\""))? + key.len() + 2;
    let end = header[start..].find('"')? + start;
    Some(header[start..end].to_owned())
}

impl Target {
    /// Asks `GET /v2/` how to authenticate, as docker does on login.
    async fn discover(&mut self) {
        if self.auth.is_none() {
            return;
        }
        let res = self
            .http
            .get(format!("{}/v2/", self.base))
            .send()
            .await
            .expect("GET /v2/");
        let challenge = res
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        self.scheme = if challenge.starts_with("Bearer") {
            Scheme::Bearer {
                realm: challenge_param(&challenge, "realm").expect("realm"),
                service: challenge_param(&challenge, "service").unwrap_or_default(),
            }
        } else {
            Scheme::Basic
        };
    }

    /// A registry token for pull and push on `repo` (cached).
    async fn token(&self, realm: &str, service: &str, repo: &str) -> String {
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(repo) {
            return t.clone();
        }
        let (u, p) = self.auth.clone().expect("credentials");
        let res = self
            .http
            .get(realm)
            .query(&[
                ("service", service),
                ("scope", &format!("repository:{repo}:pull,push")),
            ])
            .basic_auth(u, Some(p))
            .send()
            .await
            .expect("token service");
        assert_eq!(res.status(), 200, "token service");
        let v: serde_json::Value = res.json().await.expect("token JSON");
        let t = v["token"].as_str().expect("token").to_owned();
        tokens.insert(repo.to_owned(), t.clone());
        t
    }

    async fn req(&self, method: Method, path: &str) -> RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        };
        let r = self.http.request(method, &url);
        let Some((u, p)) = &self.auth else {
            return r;
        };
        match (&self.scheme, repository_of(&url)) {
            (Scheme::Bearer { realm, service }, Some(repo)) => {
                r.bearer_auth(self.token(realm, service, repo).await)
            }
            _ => r.basic_auth(u, Some(p)),
        }
    }

    async fn push(&self, repo: &str, digest: &Digest, body: reqwest::Body) -> Result<(), String> {
        let res = self
            .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .await
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status() != 202 {
            return Err(format!("POST: {}", res.status()));
        }
        let loc = res.headers()["location"]
            .to_str()
            .map_err(|e| e.to_string())?
            .to_owned();
        let sep = if loc.contains('?') { '&' } else { '?' };
        let res = self
            .req(Method::PUT, &format!("{loc}{sep}digest={digest}"))
            .await
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status() != 201 {
            return Err(format!(
                "PUT: {} {}",
                res.status(),
                res.text().await.unwrap_or_default()
            ));
        }
        Ok(())
    }
}

/// Polls a run until `field` is final; returns it.
async fn wait_final(target: &Target, url: &str, field: &str) -> String {
    loop {
        let v: serde_json::Value = target
            .req(Method::GET, url)
            .await
            .send()
            .await
            .expect("poll")
            .json()
            .await
            .expect("poll JSON");
        let s = v[field].as_str().unwrap_or("").to_owned();
        if ["Success", "Error", "Stopped"].contains(&s.as_str()) {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn arg(args: &[String], i: usize, what: &str) -> String {
    args.get(i).cloned().unwrap_or_else(|| {
        eprintln!("missing argument: {what}");
        std::process::exit(2)
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cmd = arg(&args, 1, "command");
    let mut target = Target {
        http: Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("client"),
        base: arg(&args, 2, "base url").trim_end_matches('/').to_owned(),
        auth: match (std::env::var("BENCH_USER"), std::env::var("BENCH_PASSWORD")) {
            (Ok(u), Ok(p)) => Some((u, p)),
            _ => None,
        },
        // until `discover` learns otherwise
        scheme: Scheme::Basic,
        tokens: Default::default(),
    };
    target.discover().await;
    let repo = arg(&args, 3, "repository");
    match cmd.as_str() {
        "push-blob" => {
            let path = arg(&args, 4, "file");
            // The digest is computed before the clock starts; the client
            // streams the file from disk.
            let data = std::fs::read(&path).expect("read file");
            let digest = Digest::sha256(&data);
            let len = data.len();
            drop(data);
            let file = tokio::fs::File::open(&path).await.expect("open file");
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
            let started = Instant::now();
            target
                .push(&repo, &digest, reqwest::Body::wrap_stream(stream))
                .await
                .expect("push");
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{}",
                json!({ "seconds": secs, "mib_per_s": len as f64 / 1048576.0 / secs, "digest": digest.as_str() })
            );
        }
        "push-many" => {
            let count: usize = arg(&args, 4, "count").parse().expect("count");
            let size: usize = arg(&args, 5, "bytes").parse().expect("bytes");
            let conc: usize = arg(&args, 6, "concurrency").parse().expect("concurrency");
            let seed: u64 = rand::random();
            let blobs: Arc<Vec<(Digest, bytes::Bytes)>> = Arc::new(
                (0..count)
                    .map(|i| {
                        let mut data = vec![0u8; size];
                        data[..8].copy_from_slice(&seed.to_le_bytes());
                        data[8..16].copy_from_slice(&(i as u64).to_le_bytes());
                        (Digest::sha256(&data), bytes::Bytes::from(data))
                    })
                    .collect(),
            );
            let next = Arc::new(AtomicUsize::new(0));
            let target = Arc::new(target);
            let started = Instant::now();
            let workers: Vec<_> = (0..conc)
                .map(|_| {
                    let (blobs, next, target, repo) =
                        (blobs.clone(), next.clone(), target.clone(), repo.clone());
                    tokio::spawn(async move {
                        // Each push's time (POST + PUT), in seconds.
                        let mut times = vec![];
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= blobs.len() {
                                break;
                            }
                            let (d, b) = &blobs[i];
                            let t = Instant::now();
                            target
                                .push(&repo, d, reqwest::Body::from(b.clone()))
                                .await
                                .expect("push");
                            times.push(t.elapsed().as_secs_f64());
                        }
                        times
                    })
                })
                .collect();
            let mut times = vec![];
            for w in workers {
                times.extend(w.await.expect("worker"));
            }
            let secs = started.elapsed().as_secs_f64();
            times.sort_by(f64::total_cmp);
            let pct = |p: f64| {
                times
                    .get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)))
                    .copied()
                    .unwrap_or(0.0)
            };
            println!(
                "{}",
                json!({ "seconds": secs, "blobs_per_s": count as f64 / secs,
                        "p50_ms": pct(0.5) * 1000.0, "p99_ms": pct(0.99) * 1000.0 })
            );
        }
        "pull-blob" => {
            let digest = arg(&args, 4, "digest");
            let started = Instant::now();
            let res = target
                .req(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
                .await
                .send()
                .await
                .expect("GET");
            assert_eq!(res.status(), 200, "pull");
            let mut n = 0usize;
            let mut body = res.bytes_stream();
            while let Some(chunk) = body.next().await {
                n += chunk.expect("body").len();
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{}",
                json!({ "seconds": secs, "mib_per_s": n as f64 / 1048576.0 / secs, "bytes": n })
            );
        }
        "push-image" => {
            let tag = arg(&args, 4, "tag");
            let layer: Vec<u8> = (0..2048).map(|i| (i % 251) as u8).collect();
            let dl = Digest::sha256(&layer);
            target
                .push(&repo, &dl, layer.clone().into())
                .await
                .expect("layer");
            let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
            let dc = Digest::sha256(&config);
            target
                .push(&repo, &dc, config.clone().into())
                .await
                .expect("config");
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "digest": dc.as_str(), "size": config.len() },
                "layers": [{ "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": dl.as_str(), "size": layer.len() }],
            })
            .to_string();
            let res = target
                .req(Method::PUT, &format!("/v2/{repo}/manifests/{tag}"))
                .await
                .header(
                    "content-type",
                    "application/vnd.docker.distribution.manifest.v2+json",
                )
                .body(manifest.clone())
                .send()
                .await
                .expect("PUT manifest");
            assert_eq!(res.status(), 201, "manifest");
            println!(
                "{}",
                json!({ "manifest": Digest::sha256(manifest.as_bytes()).as_str(), "blob": dl.as_str() })
            );
        }
        "portal-pages" => {
            // `repo` is a project here: fill it with `count` repositories,
            // sign in to the portal and time its pages.
            let project = repo.clone();
            let count: usize = arg(&args, 4, "repositories").parse().expect("count");
            let res = target
                .req(Method::POST, "/api/v2.0/projects")
                .await
                .json(&json!({ "project_name": project, "metadata": { "public": "false" } }))
                .send()
                .await
                .expect("create project");
            assert!(
                res.status() == 201 || res.status() == 409,
                "project: {}",
                res.status()
            );
            let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
            let dc = Digest::sha256(&config);
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": dc.as_str(), "size": config.len() },
                "layers": [],
            })
            .to_string();
            let target = Arc::new(target);
            futures::stream::iter(0..count)
                .map(|i| {
                    let (target, config, manifest, project, dc) = (
                        target.clone(),
                        config.clone(),
                        manifest.clone(),
                        project.clone(),
                        dc.clone(),
                    );
                    async move {
                        let repo = format!("{project}/repo-{i:05}");
                        target
                            .push(&repo, &dc, config.into())
                            .await
                            .expect("config");
                        let res = target
                            .req(Method::PUT, &format!("/v2/{repo}/manifests/v1"))
                            .await
                            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                            .body(manifest)
                            .send()
                            .await
                            .expect("manifest");
                        assert_eq!(res.status(), 201);
                    }
                })
                .buffer_unordered(8)
                .collect::<Vec<_>>()
                .await;
            // Sign in as a browser does: pre-session cookie, form, session.
            let plain = Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            let res = plain
                .get(format!("{}/harbor/sign-in", target.base))
                .send()
                .await
                .expect("sign-in page");
            let pre = res.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let csrf = pre.split_once('=').unwrap().1.to_owned();
            let (user, password) = target.auth.clone().expect("BENCH_USER and BENCH_PASSWORD");
            let res = plain
                .post(format!("{}/harbor/sign-in", target.base))
                .header("cookie", &pre)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("username", &user),
                    ("password", &password),
                ])
                .send()
                .await
                .expect("sign in");
            assert_eq!(res.status(), 303, "sign in");
            let sid = res.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let mut out = serde_json::Map::new();
            for (key, path) in [
                (
                    "repositories_page_ms",
                    format!("/harbor/projects/{project}/repositories"),
                ),
                (
                    "repositories_search_ms",
                    format!("/harbor/projects/{project}/repositories?q=repo-009"),
                ),
                ("projects_page_ms", "/harbor/projects".to_owned()),
                ("summary_page_ms", format!("/harbor/projects/{project}")),
            ] {
                let mut times = vec![];
                for _ in 0..50 {
                    let t = Instant::now();
                    let res = plain
                        .get(format!("{}{path}", target.base))
                        .header("cookie", &sid)
                        .send()
                        .await
                        .expect("page");
                    assert_eq!(res.status(), 200, "{path}");
                    let body = res.bytes().await.expect("body");
                    assert!(body.len() > 500);
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                times.sort_by(|a, b| a.partial_cmp(b).unwrap());
                out.insert(key.into(), json!(times[times.len() / 2]));
            }
            println!("{}", serde_json::Value::Object(out));
        }
        "rps" => {
            // `repo` is the request path here.
            let method: Method = arg(&args, 4, "method").parse().expect("method");
            let conns: usize = arg(&args, 5, "connections").parse().expect("connections");
            let secs: f64 = arg(&args, 6, "seconds").parse().expect("seconds");
            let accept = args.get(7).cloned();
            let target = Arc::new(target);
            let done = Arc::new(AtomicUsize::new(0));
            let failed = Arc::new(AtomicUsize::new(0));
            let until = Instant::now() + std::time::Duration::from_secs_f64(secs);
            let started = Instant::now();
            let workers: Vec<_> = (0..conns)
                .map(|_| {
                    let (target, done, failed, path, method, accept) = (
                        target.clone(),
                        done.clone(),
                        failed.clone(),
                        repo.clone(),
                        method.clone(),
                        accept.clone(),
                    );
                    tokio::spawn(async move {
                        while Instant::now() < until {
                            let mut r = target.req(method.clone(), &path).await;
                            if let Some(a) = &accept {
                                r = r.header("accept", a);
                            }
                            match r.send().await {
                                Ok(res) if res.status().is_success() => {
                                    let _ = res.bytes().await;
                                    done.fetch_add(1, Ordering::Relaxed);
                                }
                                _ => {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    })
                })
                .collect();
            for w in workers {
                w.await.expect("worker");
            }
            let secs = started.elapsed().as_secs_f64();
            let n = done.load(Ordering::Relaxed);
            println!(
                "{}",
                json!({ "rps": n as f64 / secs, "requests": n, "failed": failed.load(Ordering::Relaxed) })
            );
        }
        "push-tags" => {
            let count: usize = arg(&args, 4, "count").parse().expect("count");
            let conc: usize = arg(&args, 5, "concurrency").parse().expect("concurrency");
            let layer: Vec<u8> = (0..2048).map(|i| (i % 253) as u8).collect();
            let dl = Digest::sha256(&layer);
            target
                .push(&repo, &dl, layer.clone().into())
                .await
                .expect("layer");
            let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
            let dc = Digest::sha256(&config);
            target
                .push(&repo, &dc, config.clone().into())
                .await
                .expect("config");
            let next = Arc::new(AtomicUsize::new(0));
            let target = Arc::new(target);
            let started = Instant::now();
            let workers: Vec<_> = (0..conc)
                .map(|_| {
                    let (next, target, repo) = (next.clone(), target.clone(), repo.clone());
                    let (dl, dc, nl, nc) = (dl.clone(), dc.clone(), layer.len(), config.len());
                    tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= count {
                                break;
                            }
                            let manifest = json!({
                                "schemaVersion": 2,
                                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": dc.as_str(), "size": nc },
                                "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": dl.as_str(), "size": nl }],
                                "annotations": { "n": i.to_string() },
                            })
                            .to_string();
                            let res = target
                                .req(Method::PUT, &format!("/v2/{repo}/manifests/t{i}"))
                                .await
                                .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                                .body(manifest)
                                .send()
                                .await
                                .expect("PUT manifest");
                            assert_eq!(res.status(), 201, "manifest t{i}");
                        }
                    })
                })
                .collect();
            for w in workers {
                w.await.expect("worker");
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{}",
                json!({ "seconds": secs, "tags_per_s": count as f64 / secs })
            );
        }
        "gc" => {
            let started = Instant::now();
            let res = target
                .req(Method::POST, "/api/v2.0/system/gc/schedule")
                .await
                .json(&json!({ "schedule": { "type": "Manual" }, "parameters": { "delete_untagged": true, "workers": 4 } }))
                .send()
                .await
                .expect("start GC");
            assert_eq!(res.status(), 201, "start GC");
            let loc = res.headers()["location"]
                .to_str()
                .expect("location")
                .to_owned();
            let status = wait_final(&target, &loc, "job_status").await;
            let secs = started.elapsed().as_secs_f64();
            let log = target
                .req(Method::GET, &format!("{loc}/log"))
                .await
                .send()
                .await
                .expect("GC log")
                .text()
                .await
                .unwrap_or_default();
            let summary = log.lines().last().unwrap_or("").to_owned();
            println!(
                "{}",
                json!({ "seconds": secs, "status": status, "summary": summary })
            );
        }
        "retention" => {
            let keep: i64 = arg(&args, 4, "keep").parse().expect("keep");
            let project: serde_json::Value = target
                .req(Method::GET, &format!("/api/v2.0/projects/{repo}"))
                .await
                .send()
                .await
                .expect("project")
                .json()
                .await
                .expect("project JSON");
            let res = target
                .req(Method::POST, "/api/v2.0/retentions")
                .await
                .json(&json!({ "algorithm": "or", "rules": [{
                    "template": "latestPushedK", "params": { "latestPushedK": keep },
                    "tag_selectors": [{ "kind": "doublestar", "decoration": "matches", "pattern": "**" }],
                    "scope_selectors": { "repository": [{ "kind": "doublestar", "decoration": "repoMatches", "pattern": "**" }] },
                }], "scope": { "level": "project", "ref": project["project_id"] } }))
                .send()
                .await
                .expect("create policy");
            assert_eq!(res.status(), 201, "create policy");
            let loc = res.headers()["location"]
                .to_str()
                .expect("location")
                .to_owned();
            let started = Instant::now();
            let res = target
                .req(Method::POST, &format!("{loc}/executions"))
                .await
                .json(&json!({ "dry_run": false }))
                .send()
                .await
                .expect("run");
            assert_eq!(res.status(), 201, "run retention");
            let run = res.headers()["location"]
                .to_str()
                .expect("location")
                .to_owned();
            let id = run.rsplit('/').next().unwrap_or("").to_owned();
            let status = loop {
                let list: serde_json::Value = target
                    .req(Method::GET, &format!("{loc}/executions"))
                    .await
                    .send()
                    .await
                    .expect("executions")
                    .json()
                    .await
                    .expect("executions JSON");
                let e = list
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .find(|e| {
                                e["id"].as_i64().map(|n| n.to_string()).as_deref()
                                    == Some(id.as_str())
                            })
                            .cloned()
                    })
                    .unwrap_or_default();
                let s = e["status"].as_str().unwrap_or("").to_owned();
                if ["Success", "Error", "Stopped"].contains(&s.as_str()) {
                    break s;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            };
            let secs = started.elapsed().as_secs_f64();
            let tasks: serde_json::Value = target
                .req(Method::GET, &format!("{run}/tasks"))
                .await
                .send()
                .await
                .expect("tasks")
                .json()
                .await
                .expect("tasks JSON");
            println!(
                "{}",
                json!({ "seconds": secs, "status": status, "tasks": tasks })
            );
        }
        "token" => {
            let Scheme::Bearer { realm, service } = &target.scheme else {
                panic!("the registry does not use the token flow");
            };
            let t = target.token(realm, service, &repo).await;
            println!("{}", json!({ "token": t }));
        }
        other => {
            eprintln!("unknown command {other}");
            std::process::exit(2);
        }
    }
}
