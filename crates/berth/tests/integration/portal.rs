//! The web portal in a real browser: Debian's Chromium driven through
//! chromedriver (WebDriver, via fantoccini) against a real Berth. Each test
//! saves a screenshot of every screen it visits under
//! `target/portal-screenshots/<test>/`.
//!
//! Also: hostile names, descriptions and annotations come out escaped, and
//! pages refuse forms without the session's CSRF token.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::{json, Value};

use crate::clients::{require, run, temp, write_layout};
use crate::harness::*;

const USER_PASSWORD: &str = "Portal-Pass-123";

struct Browser {
    c: Client,
    driver: Child,
    base: String,
    shots: PathBuf,
    n: AtomicUsize,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// A headless Chromium on a fresh profile; None when the run opted
    /// out of external tools and they are missing.
    async fn start(s: &Server, test: &str) -> Option<Browser> {
        if !require(&["chromium", "chromedriver"]) {
            return None;
        }
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let wd = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{wd}/status")).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = temp("chromium-profile");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--no-first-run", "--no-default-browser-check",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&wd)
            .await
            .expect("WebDriver session with Chromium");
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/portal-screenshots")
            .join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        Some(Browser {
            c,
            driver,
            base: format!("http://{}", s.addr),
            shots,
            n: AtomicUsize::new(0),
        })
    }

    async fn go(&self, path: &str) {
        self.c
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    /// Saves a screenshot of the current page.
    async fn shot(&self, name: &str) {
        let png = self.c.screenshot().await.expect("screenshot");
        assert!(png.len() > 1000, "screenshot of {name} is empty");
        let n = self.n.fetch_add(1, Ordering::SeqCst) + 1;
        std::fs::write(self.shots.join(format!("{n:02}-{name}.png")), png).unwrap();
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.c.find(Locator::Css(css)).await {
                Ok(e) => return e,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!(
                    "no element {css} on {}: {e}\n{}",
                    self.url().await,
                    self.c.source().await.unwrap_or_default()
                ),
            }
        }
    }

    /// Waits until the page's source contains `text` (a click may return
    /// before the navigation it started has finished).
    async fn wait_text(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.source().await.contains(text) {
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared on {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element matches `css`.
    async fn wait_gone(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.exists(css).await {
            assert!(Instant::now() < deadline, "{css} is still there");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn exists(&self, css: &str) -> bool {
        !self
            .c
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
            .is_empty()
    }

    async fn count(&self, css: &str) -> usize {
        self.c.find_all(Locator::Css(css)).await.unwrap().len()
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Submits a form with its (first) submit button, as a user would.
    async fn submit(&self, form: &str) {
        self.click(&format!("{form} button[type=submit]")).await;
    }

    async fn url(&self) -> String {
        self.c
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    async fn source(&self) -> String {
        self.c.source().await.unwrap()
    }

    async fn sign_in(&self, user: &str, password: &str) {
        self.go("/harbor/sign-in").await;
        self.fill("#username", user).await;
        self.fill("#password", password).await;
        self.click("#sign-in").await;
        self.find("#sign-out").await;
    }

    async fn sign_out(&self) {
        self.click("#sign-out").await;
        self.find("#sign-in").await;
    }

    /// The session cookie, to replay requests outside the browser.
    async fn session_cookie(&self) -> String {
        let cookies = self.c.get_all_cookies().await.unwrap();
        let sid = cookies
            .iter()
            .find(|c| c.name() == "sid")
            .expect("sid cookie");
        format!("sid={}", sid.value())
    }

    /// The CSRF token of the current page's forms.
    async fn csrf(&self) -> String {
        self.find("input[name=csrf]")
            .await
            .attr("value")
            .await
            .unwrap()
            .unwrap()
    }
}

fn skopeo_push(s: &Server, creds: &str, dest: &str) {
    let src = temp("portal-layout");
    write_layout(&src);
    run(Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
        ])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(format!("docker://{}/{dest}", s.addr)));
}

/// The everyday flow of the issue: sign in, create a project, push with
/// skopeo, find the image and its tags, create robots and push with their
/// secrets, add a Guest who sees no delete button and cannot delete by
/// posting the form, delete an artifact after the confirmation, sign out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyday_flow_in_chromium() {
    if !require(&["skopeo"]) {
        return;
    }
    let s = Server::start(Backend::Embedded).await;
    let Some(b) = Browser::start(&s, "everyday").await else {
        return;
    };

    // Anonymous: sent to sign in.
    b.go("/harbor/projects").await;
    b.find("#sign-in-form").await;
    assert!(b.url().await.contains("/harbor/sign-in"));
    b.shot("sign-in").await;
    // A wrong password is refused on the page.
    b.fill("#username", "admin").await;
    b.fill("#password", "Wrong-Pass-123").await;
    b.click("#sign-in").await;
    assert!(b.text("#form-error").await.contains("Invalid"));
    b.shot("sign-in-failed").await;
    tokio::time::sleep(Duration::from_millis(1700)).await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    assert!(b.url().await.ends_with("/harbor/projects"));
    assert!(b.exists("tr[data-project=library]").await);
    b.shot("projects").await;

    // New project, with live name validation.
    b.click("#new-project").await;
    b.fill("#name", "Bad Name").await;
    b.find("#name-check").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.text("#name-check").await.contains("valid") {
        assert!(Instant::now() < deadline, "no live validation");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.fill("#name", "library").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.text("#name-check").await.contains("already exists") {
        assert!(Instant::now() < deadline, "no availability check");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.fill("#name", "webapp").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.text("#name-check").await.contains("available") {
        assert!(Instant::now() < deadline, "no availability check");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.shot("new-project").await;
    b.click("#create-project").await;
    b.find("#connect").await;
    assert!(b
        .url()
        .await
        .ends_with("/harbor/projects/webapp?done=Project+created."));
    assert_eq!(b.text("#repo-count").await, "0");
    let pull = b.text("#cmd-docker-pull").await;
    assert_eq!(
        pull,
        format!("docker pull {}/webapp/REPOSITORY[:TAG]", s.addr)
    );
    b.shot("project-summary").await;

    // Push with skopeo (a two-platform index tagged v1).
    let admin_creds = format!("admin:{ADMIN_PASSWORD}");
    skopeo_push(&s, &admin_creds, "webapp/site:v1");

    // Find it in the portal with its tags.
    b.go("/harbor/projects/webapp/repositories").await;
    let row = b.find("#repositories tr[data-repo$=site] a").await;
    b.shot("repositories").await;
    row.click().await.unwrap();
    b.find("#artifacts").await;
    assert!(b.exists("#artifacts span.tag[data-tag=v1]").await);
    let table = b.text("#artifacts").await;
    assert!(
        table.contains("linux/amd64") && table.contains("linux/arm64"),
        "{table}"
    );
    b.shot("artifacts").await;
    // Add a tag from the portal.
    b.fill("form.add-tag input[name=tag]", "stable").await;
    b.find("form.add-tag")
        .await
        .find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.find("#artifacts span.tag[data-tag=stable]").await;
    let tags = s
        .get_json("/api/v2.0/projects/webapp/repositories/site/artifacts?with_tag=true")
        .await;
    let mut names: Vec<&str> = tags[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["stable", "v1"]);
    // Artifact detail.
    b.click("#artifacts tr[data-digest] a[href*='/harbor/projects/webapp/artifact?']")
        .await;
    assert!(
        b.text("#manifest-json").await.contains("manifests")
            || b.source()
                .await
                .contains("application/vnd.oci.image.index.v1+json")
    );
    b.shot("artifact-detail").await;

    // Robots: the Connect panel's push/pull pair, then one from the Robot
    // accounts tab; both push with their secrets.
    b.go("/harbor/projects/webapp").await;
    b.click("#create-connect-robots").await;
    let push_name = b.text("#robot-push-name").await;
    let push_secret = b.text("#robot-push-secret").await;
    assert_eq!(push_name, "robot$webapp+ci-push");
    assert_eq!(push_secret.len(), 32);
    let kubectl = b.text("#cmd-kubectl-secret").await;
    assert!(
        kubectl.contains("robot$webapp+ci-pull")
            && kubectl.contains(&b.text("#robot-pull-secret").await)
    );
    b.shot("connect-robots").await;
    skopeo_push(
        &s,
        &format!("{push_name}:{push_secret}"),
        "webapp/by-connect-robot:v1",
    );

    b.go("/harbor/projects/webapp/robots").await;
    b.fill("#robot-name", "deployer").await;
    b.click("#perm-repository-push").await;
    b.click("#perm-repository-pull").await;
    b.shot("robot-new").await;
    b.submit("#new-robot-form").await;
    let login = b.text("#robot-login").await;
    let secret = b.text("#robot-secret").await;
    assert_eq!(login, "robot$webapp+deployer");
    b.shot("robot-secret").await;
    skopeo_push(&s, &format!("{login}:{secret}"), "webapp/by-robot:v1");
    b.go("/harbor/projects/webapp/robots").await;
    assert!(
        b.exists("#robots tr[data-robot='robot$webapp+deployer']")
            .await
    );
    b.shot("robots").await;

    // Members: add a Guest.
    s.create_user_named("gina", "Gina Guest", USER_PASSWORD)
        .await;
    b.go("/harbor/projects/webapp/members").await;
    b.fill("#member-username", "gina").await;
    b.find("#member-role")
        .await
        .select_by_value("3")
        .await
        .unwrap();
    b.submit("#add-member-form").await;
    b.find("#members tr[data-member=gina]").await;
    b.shot("members").await;

    // Logs tab shows the pushes.
    b.go("/harbor/projects/webapp/logs").await;
    assert!(b.text("#logs").await.contains("site"));
    b.shot("logs").await;
    b.go("/harbor/projects/webapp/configuration").await;
    b.find("#project-public").await;
    b.shot("configuration").await;

    // The Guest: no delete controls, and a forged delete form is refused.
    let index_digest = tags[0]["digest"].as_str().unwrap().to_owned();
    b.sign_out().await;
    b.shot("signed-out").await;
    b.sign_in("gina", USER_PASSWORD).await;
    b.go("/harbor/projects/webapp/repositories").await;
    assert!(b.exists("#repositories tr[data-repo$=site]").await);
    assert_eq!(b.count(".delete-repo").await, 0);
    b.go("/harbor/projects/webapp/artifacts?repo=site").await;
    b.find("#artifacts").await;
    assert_eq!(
        b.count(".delete-artifact").await,
        0,
        "a Guest sees no delete button"
    );
    assert_eq!(b.count("form.add-tag").await, 0);
    assert!(b.text("#my-role").await.contains("Guest"));
    b.shot("guest-artifacts").await;
    let cookie = b.session_cookie().await;
    let csrf = b.csrf().await;
    let res = s
        .http
        .post(s.url("/harbor/projects/webapp/artifacts/delete"))
        .header("cookie", &cookie)
        .header("origin", format!("http://{}", s.addr))
        .form(&[
            ("csrf", csrf.as_str()),
            ("repo", "site"),
            ("digest", index_digest.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        403,
        "a Guest cannot delete by posting the form"
    );
    // Without the CSRF token even the admin's form would be refused; the
    // Guest's is refused for that reason first.
    let res = s
        .http
        .post(s.url("/harbor/projects/webapp/artifacts/delete"))
        .header("cookie", &cookie)
        .form(&[("repo", "site"), ("digest", index_digest.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("Form expired"));
    s.get_json(&format!(
        "/api/v2.0/projects/webapp/repositories/site/artifacts/{index_digest}"
    ))
    .await;
    b.sign_out().await;

    // The admin deletes the artifact after the confirmation listing its tags.
    b.sign_in("admin", ADMIN_PASSWORD).await;
    b.go("/harbor/projects/webapp/artifacts?repo=site").await;
    b.click(&format!(
        "#artifacts tr[data-digest='{index_digest}'] .delete-artifact"
    ))
    .await;
    let doomed = b.text("#doomed-tags").await;
    assert!(
        doomed.contains("v1") && doomed.contains("stable"),
        "{doomed}"
    );
    b.shot("delete-confirmation").await;
    b.click("#confirm-delete").await;
    b.find("#notice").await;
    assert!(
        !b.exists(&format!("#artifacts tr[data-digest='{index_digest}']"))
            .await
    );
    b.shot("artifact-deleted").await;
    let res = s
        .admin(
            Method::GET,
            &format!("/api/v2.0/projects/webapp/repositories/site/artifacts/{index_digest}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // A whole repository, after its confirmation.
    b.go("/harbor/projects/webapp/repositories").await;
    b.click("#repositories tr[data-repo='webapp/by-robot'] .delete-repo")
        .await;
    b.find("#doomed-count").await;
    b.shot("repository-delete-confirmation").await;
    b.click("#confirm-delete").await;
    b.find("#notice").await;
    b.wait_gone("#repositories tr[data-repo='webapp/by-robot']")
        .await;
    let res = s
        .admin(
            Method::GET,
            "/api/v2.0/projects/webapp/repositories/by-robot",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Sign out: the session is over.
    b.sign_out().await;
    b.go("/harbor/projects").await;
    b.find("#sign-in-form").await;
    let res = s
        .http
        .get(s.url("/harbor/projects"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(res.url().path().starts_with("/harbor/sign-in") || res.status().is_redirection());
}

/// Administration screens, the banner and read-only mode, self-registration
/// and password change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_in_chromium() {
    let s = Server::start(Backend::Embedded).await;
    let Some(b) = Browser::start(&s, "administration").await else {
        return;
    };
    b.sign_in("admin", ADMIN_PASSWORD).await;

    // Users: create, make admin, search.
    b.go("/harbor/admin/users").await;
    b.fill("#new-username", "olga").await;
    b.fill("#new-user-form input[name=email]", "olga@example.com")
        .await;
    b.fill("#new-user-form input[name=realname]", "Olga Operator")
        .await;
    b.fill("#new-password", USER_PASSWORD).await;
    b.fill("#new-user-form input[name=confirm]", USER_PASSWORD)
        .await;
    b.submit("#new-user-form").await;
    b.find("#users tr[data-user=olga]").await;
    b.shot("admin-users").await;
    let users = s.get_json("/api/v2.0/users?q=username%3Dolga").await;
    assert_eq!(users[0]["realname"], "Olga Operator");

    // System robots.
    b.go("/harbor/admin/robots").await;
    b.find("#new-system-robot-form").await;
    b.shot("admin-robots").await;

    // Configuration: banner, self-registration.
    b.go("/harbor/admin/configuration").await;
    b.shot("admin-configuration").await;
    b.fill("#cfg-banner", "Maintenance on Friday").await;
    let sr = b.find("#cfg-self-registration").await;
    if !sr.is_selected().await.unwrap() {
        sr.click().await.unwrap();
    }
    b.click("#save-configuration").await;
    assert_eq!(b.text("#banner").await, "Maintenance on Friday");
    let cfg = s.get_json("/api/v2.0/configurations").await;
    assert_eq!(cfg["banner_message"]["value"], "Maintenance on Friday");
    assert_eq!(cfg["self_registration"]["value"], true);
    b.shot("banner").await;

    // Read-only mode shows its banner, refuses a portal write, and can be
    // turned off again from the portal.
    let ro = b.find("#cfg-read-only").await;
    if !ro.is_selected().await.unwrap() {
        ro.click().await.unwrap();
    }
    b.click("#save-configuration").await;
    b.find("#read-only-banner").await;
    b.go("/harbor/projects/new").await;
    b.fill("#name", "during-read-only").await;
    b.click("#create-project").await;
    b.wait_text("read only mode").await;
    b.shot("read-only-refusal").await;
    b.go("/harbor/admin/configuration").await;
    let ro = b.find("#cfg-read-only").await;
    assert!(ro.is_selected().await.unwrap());
    ro.click().await.unwrap();
    b.click("#save-configuration").await;
    b.wait_gone("#read-only-banner").await;
    b.sign_out().await;

    // Sign up (self-registration is on), then change the password.
    b.go("/harbor/sign-in").await;
    b.click("#sign-up-link").await;
    b.fill("#username", "sam").await;
    b.fill("#email", "sam@example.com").await;
    b.fill("#realname", "Sam Signup").await;
    // Long enough for the browser's own check, too weak for the policy.
    b.fill("#password", "weakpassword").await;
    b.fill("#confirm", "weakpassword").await;
    b.shot("sign-up").await;
    b.click("#sign-up").await;
    assert!(b.text("#form-error").await.contains("8"));
    b.fill("#password", USER_PASSWORD).await;
    b.fill("#confirm", USER_PASSWORD).await;
    b.click("#sign-up").await;
    b.find("#notice").await;
    b.sign_in("sam", USER_PASSWORD).await;
    // A non-admin has no Administration and is refused there.
    assert!(!b.exists("a[href='/harbor/admin/users']").await);
    b.go("/harbor/admin/users").await;
    b.wait_text("Not allowed").await;
    b.go("/harbor/account/password").await;
    b.fill("#old_password", USER_PASSWORD).await;
    b.fill("#new_password", "Changed-Pass-456").await;
    b.fill("#confirm", "Changed-Pass-456").await;
    b.shot("change-password").await;
    b.click("#change-password").await;
    b.find("#notice").await;
    b.sign_out().await;
    b.sign_in("sam", "Changed-Pass-456").await;

    // Phone width: the projects page still works.
    b.c.set_window_size(390, 844).await.unwrap();
    b.go("/harbor/projects").await;
    b.find("#projects").await;
    b.shot("projects-phone").await;
}

/// Attacker-controlled text is escaped on every page that shows it, and a
/// hostile annotation does not execute in the browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_escaped() {
    let s = Server::start(Backend::Embedded).await;
    const XSS: &str =
        "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">\"'&";
    s.create_project("evil", false).await;
    // A manifest with hostile annotations, in a repository with a hostile
    // description; a user with a hostile real name as a member.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = s.push_blob("evil/app", config).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": berth_oci::media::OCI_MANIFEST,
        "config": { "mediaType": berth_oci::media::OCI_CONFIG, "digest": cd.as_str(), "size": config.len() },
        "layers": [],
        "annotations": { "org.opencontainers.image.title": XSS, XSS: "key" },
    })
    .to_string();
    let res = s
        .put_manifest(
            "evil/app",
            "v1",
            berth_oci::media::OCI_MANIFEST,
            manifest.as_bytes(),
        )
        .await;
    assert_eq!(res.status(), 201);
    let digest = berth_oci::Digest::sha256(manifest.as_bytes());
    let res = s
        .admin(Method::PUT, "/api/v2.0/projects/evil/repositories/app")
        .json(&json!({ "description": XSS }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Real names may not hold `"`, `#`, `%`, `$`, `~` or `,`; the rest of
    // HTML's special characters are allowed.
    const XSS_NAME: &str = "<script>window.__pwned=3</script><b>bold</b>'&<";
    s.create_user_named("mallory", XSS_NAME, USER_PASSWORD)
        .await;
    let res = s
        .admin(Method::POST, "/api/v2.0/projects/evil/members")
        .json(&json!({ "role_id": 2, "member_user": { "username": "mallory" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // Every page that shows it, fetched as HTML with the admin's session.
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap();
    let page = http
        .get(s.url("/harbor/sign-in"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let res = http
        .post(s.url("/harbor/sign-in"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.url().path().ends_with("/harbor/projects"));
    const SHOWN: &str = "&lt;script&gt;window.__pwned=1&lt;/script&gt;";
    const SHOWN_NAME: &str = "&lt;script&gt;window.__pwned=3&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;";
    let check = |path: String, shown: &'static str| {
        let http = http.clone();
        let url = s.url(&path);
        async move {
            let res = http.get(url).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            let csp = header(&res, "content-security-policy").unwrap_or_default();
            assert!(
                csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
                "{path}: {csp}"
            );
            let html = res.text().await.unwrap();
            assert!(!html.contains("<script>window"), "{path}: raw script");
            assert!(!html.contains("<img src=x"), "{path}: raw img");
            assert!(!html.contains("<b>bold"), "{path}: raw markup");
            // askama writes numeric references; either form is escaped.
            let normalized = html.replace("&#60;", "&lt;").replace("&#62;", "&gt;");
            assert!(
                normalized.contains(shown),
                "{path}: the text is shown escaped:\n{html}"
            );
            assert!(
                !html.contains(" onerror=\"window"),
                "{path}: attribute break-out"
            );
        }
    };
    check("/harbor/projects/evil/repositories".into(), SHOWN).await;
    check("/harbor/projects/evil/artifacts?repo=app".into(), SHOWN).await;
    check(
        format!("/harbor/projects/evil/artifact?repo=app&digest={digest}"),
        SHOWN,
    )
    .await;
    check("/harbor/admin/users".into(), SHOWN_NAME).await;
    check("/harbor/admin/users?q=mallory".into(), SHOWN_NAME).await;
    // The banner, on every page.
    let res = s
        .admin(Method::PUT, "/api/v2.0/configurations")
        .json(&json!({ "banner_message": XSS }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await; // the settings cache
    check("/harbor/projects".into(), SHOWN).await;
    check("/harbor/projects/evil/members".into(), SHOWN).await;
    // In the browser nothing runs and the text shows literally.
    let Some(b) = Browser::start(&s, "escaping").await else {
        return;
    };
    b.sign_in("admin", ADMIN_PASSWORD).await;
    for path in [
        format!("/harbor/projects/evil/artifact?repo=app&digest={digest}"),
        "/harbor/projects/evil/repositories".to_owned(),
        "/harbor/projects/evil/members".to_owned(),
        "/harbor/admin/users".to_owned(),
    ] {
        b.go(&path).await;
        b.find("main").await;
        let pwned: Value =
            b.c.execute("return window.__pwned || 0", vec![])
                .await
                .unwrap();
        assert_eq!(pwned, json!(0), "{path}: injected script ran");
        assert!(b
            .text("#banner")
            .await
            .contains("<script>window.__pwned=1</script>"));
    }
    b.shot("hostile-annotations").await;
}

/// The Policy tab (immutability rules, a retention rule, a dry run) and
/// the garbage collection page, in Chromium.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_in_chromium() {
    let s = Server::start(Backend::Embedded).await;
    let Some(b) = Browser::start(&s, "policies").await else {
        return;
    };
    s.create_project("pol", false).await;
    for t in ["v1", "v2", "v3"] {
        s.push_image("pol/app", t, 1).await;
    }
    b.sign_in("admin", ADMIN_PASSWORD).await;
    b.go("/harbor/projects/pol").await;
    b.click("a[href='/harbor/projects/pol/policy']").await;

    // Immutability: add, see, disable.
    b.fill("#imm-tag", "v1").await;
    b.submit("#add-immutable-form").await;
    b.wait_text("Immutability rule added.").await;
    assert!(b
        .text("#immutable-rules .rule-tags")
        .await
        .contains("matches v1"));
    let rules = s.get_json("/api/v2.0/projects/pol/immutabletagrules").await;
    assert_eq!(rules[0]["tag_selectors"][0]["pattern"], "v1");
    b.submit("#immutable-rules form[action$='/toggle']").await;
    b.wait_text("Rule disabled.").await;
    assert_eq!(b.text("#immutable-rules .rule-state").await, "disabled");
    b.submit("#immutable-rules form[action$='/toggle']").await;
    b.wait_text("Rule enabled.").await;

    // Retention: keep the latest pushed artifact; a dry run says what it
    // would delete (v1 stays: immutable).
    b.fill("#ret-param", "1").await;
    b.submit("#add-retention-form").await;
    b.wait_text("Retention rule added.").await;
    assert!(b
        .text("#retention-rules .retention-text")
        .await
        .contains("the most recently pushed 1 artifacts"));
    let project = s.get_json("/api/v2.0/projects/pol").await;
    let rid = project["metadata"]["retention_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy = s.get_json(&format!("/api/v2.0/retentions/{rid}")).await;
    assert_eq!(policy["rules"][0]["params"]["latestPushedK"], 1);
    b.fill("#ret-cron", "0 0 0 * * *").await;
    b.submit("#retention-schedule-form").await;
    b.wait_text("Retention runs on 0 0 0 * * *.").await;
    b.click("#retention-dry-run").await;
    b.wait_text("Dry run").await;
    let mut status = String::new();
    for _ in 0..100 {
        b.go("/harbor/projects/pol/policy").await;
        if b.exists("#retention-runs .run-status").await {
            status = b.text("#retention-runs .run-status").await;
            if status == "Success" {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "Success");
    assert_eq!(b.text("#retention-runs .run-counts").await, "2 / 3");
    b.shot("policy-tab").await;
    let artifacts = s
        .get_json("/api/v2.0/projects/pol/repositories/app/artifacts")
        .await;
    assert_eq!(
        artifacts.as_array().unwrap().len(),
        3,
        "a dry run deletes nothing"
    );

    // Garbage collection: a dry run from the admin page shows in history.
    b.go("/harbor/admin/gc").await;
    b.click("#gc-dry").await;
    b.submit("#gc-run-form").await;
    b.wait_text("Garbage collection").await;
    b.find("#gc-history tr[data-gc]").await;
    b.shot("admin-gc").await;
    let history = s.get_json("/api/v2.0/system/gc").await;
    assert_eq!(history.as_array().unwrap().len(), 1);
    // Audit log purge from the same page.
    b.fill("#purge-hours", "24").await;
    b.click("#purge-dry").await;
    b.submit("#purge-audit-form").await;
    b.wait_text("Audit log purge").await;
    b.find("#purge-history tr[data-purge]").await;
    let purges = s.get_json("/api/v2.0/system/purgeaudit").await;
    assert!(purges[0]["job_parameters"]
        .as_str()
        .unwrap()
        .contains("\"audit_retention_hour\":24"));
    assert!(history[0]["job_parameters"]
        .as_str()
        .unwrap()
        .contains("\"dry_run\":true"));
}

/// Storage requests: a project admin asks for more storage on the
/// project's Summary (a mistake is shown by the form), a Developer sees no
/// form, a system admin approves under Administration, and the quota
/// changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_request_in_chromium() {
    let s = Server::start(Backend::Embedded).await;
    let Some(b) = Browser::start(&s, "storage-request").await else {
        return;
    };
    const GIB: i64 = 1 << 30;
    s.create_project("growing", false).await;
    let pid = s.get_json("/api/v2.0/projects/growing").await["project_id"]
        .as_i64()
        .unwrap();
    let res = s
        .admin(Method::PUT, &format!("/api/v2.0/quotas/{pid}"))
        .json(&json!({ "hard": { "storage": GIB } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    s.create_user_named("petra", "Petra Projectadmin", USER_PASSWORD)
        .await;
    s.add_member("growing", "petra", 1).await;
    s.create_user_named("dora", "Dora Developer", USER_PASSWORD)
        .await;
    s.add_member("growing", "dora", 2).await;

    // A Developer sees the quota, not the form.
    b.sign_in("dora", USER_PASSWORD).await;
    b.go("/harbor/projects/growing").await;
    b.find("#quota").await;
    b.find("#storage-requests").await;
    assert!(!b.exists("#storage-request-form").await);
    b.sign_out().await;

    // The project admin asks; a limit below the current one is refused by
    // the form.
    b.sign_in("petra", USER_PASSWORD).await;
    b.go("/harbor/projects/growing").await;
    b.find("#storage-request-form").await;
    b.shot("request-form").await;
    b.fill("#storage-request-gib", "0.5").await;
    b.fill("#storage-request-reason", "Nightly builds of the web app")
        .await;
    b.submit("#storage-request-form").await;
    assert!(
        b.text("#storage-request-error")
            .await
            .contains("more than the current limit"),
        "{}",
        b.source().await
    );
    b.shot("request-refused").await;
    b.fill("#storage-request-gib", "5").await;
    b.submit("#storage-request-form").await;
    assert!(b.text("#notice").await.contains("Storage request sent"));
    b.find("#storage-request-pending").await;
    assert_eq!(
        b.text("#storage-request-history .storage-request-status")
            .await,
        "pending"
    );
    assert!(!b.exists("#storage-request-form").await, "one at a time");
    b.shot("request-pending").await;
    b.sign_out().await;

    // The system admin approves it from Administration.
    b.sign_in("admin", ADMIN_PASSWORD).await;
    b.go("/harbor/admin/users").await;
    b.click("#admin-storage-requests-link").await;
    let row = "#pending-storage-requests tr[data-project=growing]";
    assert!(b.text(row).await.contains("Nightly builds of the web app"));
    b.shot("admin-pending").await;
    b.fill(&format!("{row} input[name=comment]"), "Enjoy").await;
    b.click(&format!("{row} .approve-storage-request")).await;
    assert!(b.text("#notice").await.contains("Approved"));
    b.wait_gone(row).await;
    assert_eq!(
        b.text("#storage-requests tr[data-project=growing] .storage-request-status")
            .await,
        "approved"
    );
    b.shot("admin-approved").await;

    // The quota changed, on the API and on the project's page.
    let q = s.get_json(&format!("/api/v2.0/quotas/{pid}")).await;
    assert_eq!(q["hard"]["storage"], 5 * GIB);
    b.go("/harbor/projects/growing").await;
    assert!(b.text("#quota").await.contains("5.00 GiB"));
    assert!(b.text("#storage-request-history").await.contains("Enjoy"));
    b.shot("quota-raised").await;
}
