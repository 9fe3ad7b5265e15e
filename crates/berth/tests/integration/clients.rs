//! Real clients against a real Berth: the Docker engine (build `FROM
//! scratch`, push, remove, pull), skopeo (a multi-arch OCI layout copied in
//! and out with `--all`, `inspect`, `list-tags`, `delete`) and oras (the
//! PyPI SDK: an artifact with a `subject`, found through the referrers API).

use std::path::Path;
use std::process::Command;

use berth_oci::{media, Digest};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::*;

pub(crate) fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Whether a client test can run; panics (fails) when a tool is missing
/// unless the run opted out of external tools.
pub(crate) fn require(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("BERTH_TEST_SKIP_EXTERNAL").as_deref() == Ok("1") {
        eprintln!("skipping: {} not installed", missing.join(", "));
        return false;
    }
    panic!(
        "{} not installed: run scripts/test-services start (or set BERTH_TEST_SKIP_EXTERNAL=1)",
        missing.join(", ")
    );
}

pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub(crate) fn temp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "berth-client-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_push_remove_pull() {
    if !require(&["docker"]) {
        return;
    }
    let s = Server::start(Backend::Embedded).await;
    s.create_project("dock", false).await;
    let dir = temp("docker");
    let marker = uuid::Uuid::new_v4().to_string();
    std::fs::write(
        dir.join("hello.txt"),
        format!("hello from berth {marker}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    let config = dir.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let image = format!("{}/dock/hello:{}", s.addr, &marker[..8]);
    let docker = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.env("DOCKER_CONFIG", &config)
            .env("DOCKER_BUILDKIT", "0")
            .args(args);
        c
    };
    // Anonymous pushes are refused with the message docker users know.
    run(docker(&["build", "-q", "-t", &image]).arg(&dir));
    let out = docker(&["push", &image]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("unauthorized")
            || err.contains("requested access to the resource is denied")
            || err.contains("authentication required")
            || err.contains("no basic auth"),
        "{err}"
    );

    let out = with_stdin(
        &mut docker(&["login", &s.addr, "-u", "admin", "--password-stdin"]),
        ADMIN_PASSWORD,
    );
    assert!(
        out.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed = run(&mut docker(&["push", &image]));
    let digest = pushed
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in docker push output: {pushed}"))
        .to_owned();
    run(&mut docker(&["rmi", &image]));
    run(&mut docker(&["pull", &image]));
    let inspected = run(&mut docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &image,
    ]));
    assert!(
        inspected.contains(&digest),
        "{inspected} should contain {digest}"
    );
    // the artifact is visible through Harbor's API with its tag
    let v = s
        .get_json(&format!(
            "/api/v2.0/projects/dock/repositories/hello/artifacts/{digest}"
        ))
        .await;
    assert_eq!(v["tags"][0]["name"], &marker[..8]);
    assert_eq!(v["type"], "IMAGE");
    assert_eq!(v["manifest_media_type"], media::DOCKER_MANIFEST);
    let _ = docker(&["rmi", &image]).output();
    std::fs::remove_dir_all(&dir).ok();
}

/// Writes an OCI image layout with a two-platform index; returns the
/// index digest and the child manifest digests.
pub(crate) fn write_layout(dir: &Path) -> (Digest, Vec<Digest>) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = Digest::sha256(data);
        std::fs::write(blobs.join(d.hex()), data).unwrap();
        d
    };
    let mut children = vec![];
    let mut descs = vec![];
    for arch in ["amd64", "arm64"] {
        let layer: Vec<u8> = format!("layer for {arch} {}", uuid::Uuid::new_v4()).into_bytes();
        let dl = put(&layer);
        let config = json!({ "architecture": arch, "os": "linux", "rootfs": { "type": "layers", "diff_ids": [Digest::sha256(&layer).as_str()] } }).to_string();
        let dc = put(config.as_bytes());
        let manifest = json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": { "mediaType": media::OCI_CONFIG, "digest": dc.as_str(), "size": config.len() },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": dl.as_str(), "size": layer.len() }],
        })
        .to_string();
        let dm = put(manifest.as_bytes());
        descs.push(json!({ "mediaType": media::OCI_MANIFEST, "digest": dm.as_str(), "size": manifest.len(), "platform": { "architecture": arch, "os": "linux" } }));
        children.push(dm);
    }
    let index = json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": descs })
        .to_string();
    let di = put(index.as_bytes());
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        json!({ "schemaVersion": 2, "manifests": [{ "mediaType": media::OCI_INDEX, "digest": di.as_str(), "size": index.len(), "annotations": { "org.opencontainers.image.ref.name": "v1" } }] }).to_string(),
    )
    .unwrap();
    (di, children)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_multi_arch_round_trip() {
    if !require(&["skopeo"]) {
        return;
    }
    let s = Server::start(Backend::Embedded).await;
    s.create_project("sko", false).await;
    let src = temp("layout-src");
    let (index, children) = write_layout(&src);
    let creds = format!("admin:{ADMIN_PASSWORD}");
    let dest = format!("docker://{}/sko/multi:v1", s.addr);
    run(Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
        ])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(&dest));
    // inspect: the index digest is preserved
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &dest,
    ]));
    assert_eq!(
        Digest::sha256(raw.as_bytes()),
        index,
        "stored index bytes are the pushed bytes"
    );
    let tags: Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false", "--creds", &creds])
        .arg(format!("docker://{}/sko/multi", s.addr))))
    .unwrap();
    assert_eq!(tags["Tags"], json!(["v1"]));
    // Harbor's view: one index with two platforms
    let v = s
        .get_json(&format!(
            "/api/v2.0/projects/sko/repositories/multi/artifacts/{index}"
        ))
        .await;
    let refs = v["references"].as_array().unwrap();
    assert_eq!(refs.len(), 2);
    let mut archs: Vec<&str> = refs
        .iter()
        .map(|r| r["platform"]["architecture"].as_str().unwrap())
        .collect();
    archs.sort();
    assert_eq!(archs, ["amd64", "arm64"]);
    // and back out, all platforms, digests preserved
    let out = temp("layout-out");
    run(Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
        ])
        .arg(&dest)
        .arg(format!("oci:{}:v1", out.display())));
    let idx: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(idx["manifests"][0]["digest"], index.as_str());
    for c in &children {
        assert!(
            out.join("blobs/sha256").join(c.hex()).exists(),
            "child {c} copied out"
        );
    }
    // delete by digest
    run(Command::new("skopeo")
        .args(["delete", "--tls-verify=false", "--creds", &creds])
        .arg(format!("docker://{}/sko/multi@{index}", s.addr)));
    let st = s
        .admin(Method::GET, &format!("/v2/sko/multi/manifests/{index}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 404);
    std::fs::remove_dir_all(&src).ok();
    std::fs::remove_dir_all(&out).ok();
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

const ORAS_SCRIPT: &str = r#"
import json, os, sys, tempfile
import oras.client, oras.oci
host, pw, subject_ref, subject_digest, subject_size = sys.argv[1:6]
client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
client.login(username="admin", password=pw, hostname=host, tls_verify=False)
d = tempfile.mkdtemp()
path = os.path.join(d, "sbom.json")
with open(path, "w") as f:
    json.dump({"spdxVersion": "SPDX-2.3", "name": "test"}, f)
subject = oras.oci.Subject(mediaType="application/vnd.oci.image.manifest.v1+json", digest=subject_digest, size=int(subject_size))
os.chdir(d)
res = client.push(target=f"{host}/orasp/app:sbom", files=["sbom.json:application/spdx+json"], subject=subject,
                  manifest_annotations={"org.example.kind": "sbom"})
print(json.dumps({"status": res.status_code, "subject": res.headers.get("OCI-Subject"), "digest": res.headers.get("Docker-Content-Digest")}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oras_artifact_with_subject() {
    let Ok(python) = std::env::var("BERTH_TEST_PYTHON") else {
        if std::env::var("BERTH_TEST_SKIP_EXTERNAL").as_deref() == Ok("1") {
            return;
        }
        panic!("BERTH_TEST_PYTHON (a Python with oras installed) is unset: run scripts/test-services start");
    };
    let s = Server::start(Backend::Embedded).await;
    s.create_project("orasp", false).await;
    let (digest, body, _) = s.push_image("orasp/app", "v1", 1).await;
    let out = run(Command::new(&python).arg("-c").arg(ORAS_SCRIPT).args([
        &s.addr,
        ADMIN_PASSWORD,
        "orasp/app:v1",
        digest.as_str(),
        &body.len().to_string(),
    ]));
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["status"], 201, "{out}");
    assert_eq!(
        v["subject"],
        digest.as_str(),
        "OCI-Subject answered to oras"
    );
    let refs = s
        .get_json(&format!("/v2/orasp/app/referrers/{digest}"))
        .await;
    let list = refs["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{refs}");
    assert_eq!(list[0]["digest"], v["digest"]);
    assert_eq!(list[0]["annotations"]["org.example.kind"], "sbom");
    let filtered = s
        .get_json(&format!(
            "/v2/orasp/app/referrers/{digest}?artifactType={}",
            percent_encode(list[0]["artifactType"].as_str().unwrap())
        ))
        .await;
    assert_eq!(filtered["manifests"].as_array().unwrap().len(), 1);
    let none = s
        .get_json(&format!(
            "/v2/orasp/app/referrers/{digest}?artifactType=application/x-none"
        ))
        .await;
    assert_eq!(none["manifests"], json!([]));
}

const CREW_PASSWORD: &str = "Crew-Pass-1234";

/// Runs `cmd` with `secret` on stdin (for `login --password-stdin`).
pub(crate) fn with_stdin(cmd: &mut Command, secret: &str) -> std::process::Output {
    use std::io::Write;
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(secret.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn failed_with(out: &std::process::Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} should have been refused:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The token flow with real clients and real roles: a Developer and a
/// project robot push and pull with docker, skopeo and podman; a Guest
/// pulls but its push is refused with docker's usual message; an
/// anonymous pull of the private project is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_flow_with_users_robots_and_a_guest() {
    if !require(&["docker", "skopeo", "podman"]) {
        return;
    }
    let s = Server::start(Backend::Embedded).await;
    s.create_project("crew", false).await;
    s.create_user("dev", CREW_PASSWORD).await;
    s.create_user("gus", CREW_PASSWORD).await;
    s.add_member("crew", "dev", 2).await;
    s.add_member("crew", "gus", 3).await;
    let (robot, secret) = s
        .create_robot(json!({
            "name": "ci", "level": "project", "duration": -1,
            "permissions": [{ "kind": "project", "namespace": "crew", "access": [
                { "resource": "repository", "action": "push" },
                { "resource": "repository", "action": "pull" },
            ]}],
        }))
        .await;
    assert_eq!(robot, "robot$crew+ci");

    // docker: build FROM scratch, push and pull as the developer
    let dir = temp("crew-docker");
    let marker = uuid::Uuid::new_v4().simple().to_string();
    std::fs::write(dir.join("hello.txt"), format!("crew {marker}\n")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    let config = dir.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let docker = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.env("DOCKER_CONFIG", &config)
            .env("DOCKER_BUILDKIT", "0")
            .args(args);
        c
    };
    let login = |user: &str, secret: &str| {
        let out = with_stdin(
            &mut docker(&["login", &s.addr, "-u", user, "--password-stdin"]),
            secret,
        );
        assert!(
            out.status.success(),
            "docker login {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let image = |tag: &str| format!("{}/crew/app-{}:{tag}", s.addr, &marker[..8]);
    let digest_of = |out: &str| {
        out.split_whitespace()
            .find(|w| w.starts_with("sha256:"))
            .unwrap_or_else(|| panic!("no digest in push output: {out}"))
            .to_owned()
    };
    run(docker(&["build", "-q", "-t", &image("dev")]).arg(&dir));

    // anonymous: the private project is invisible
    let out = docker(&["pull", &image("dev")]).output().unwrap();
    let err = failed_with(&out, "anonymous pull of a private project");
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "{err}"
    );

    login("dev", CREW_PASSWORD);
    let pushed = digest_of(&run(&mut docker(&["push", &image("dev")])));
    run(&mut docker(&["rmi", &image("dev")]));
    run(&mut docker(&["pull", &image("dev")]));
    let inspected = run(&mut docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &image("dev"),
    ]));
    assert!(inspected.contains(&pushed), "{inspected} lacks {pushed}");

    // the robot pushes a second tag and pulls it back
    run(&mut docker(&["logout", &s.addr]));
    login(&robot, &secret);
    run(&mut docker(&["tag", &image("dev"), &image("robot")]));
    let by_robot = digest_of(&run(&mut docker(&["push", &image("robot")])));
    assert_eq!(by_robot, pushed, "same image, same digest");
    run(&mut docker(&["rmi", &image("robot")]));
    run(&mut docker(&["pull", &image("robot")]));

    // the Guest pulls, but its push is denied with docker's message
    run(&mut docker(&["logout", &s.addr]));
    login("gus", CREW_PASSWORD);
    run(&mut docker(&["rmi", &image("dev")]));
    run(&mut docker(&["pull", &image("dev")]));
    run(&mut docker(&["tag", &image("dev"), &image("guest")]));
    let out = docker(&["push", &image("guest")]).output().unwrap();
    let err = failed_with(&out, "a Guest's docker push");
    assert!(
        err.contains("denied: requested access to the resource is denied"),
        "docker's message for a denied push: {err}"
    );
    let tags = s
        .get_json(&format!(
            "/api/v2.0/projects/crew/repositories/app-{}/artifacts/{pushed}?with_tag=true",
            &marker[..8]
        ))
        .await;
    let mut names: Vec<&str> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["dev", "robot"], "the Guest's push left no tag");

    // the audit log names who pushed
    let log = s
        .get_json("/api/v2.0/projects/crew/auditlog-exts?page_size=100")
        .await;
    let pushers: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["operation"] == "create" && e["resource_type"] == "artifact")
        .map(|e| e["username"].as_str().unwrap())
        .collect();
    assert!(pushers.contains(&"dev"), "{log}");
    assert!(pushers.contains(&robot.as_str()), "{log}");

    // skopeo through the token flow: the robot's secret pushes, the
    // developer pulls, the Guest is refused
    let src = temp("crew-layout");
    let (index, _) = write_layout(&src);
    let dest = format!("docker://{}/crew/multi:v1", s.addr);
    run(Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .args(["--dest-creds", &format!("{robot}:{secret}")])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(&dest));
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .args(["--creds", &format!("dev:{CREW_PASSWORD}")])
        .arg(&dest));
    assert_eq!(Digest::sha256(raw.as_bytes()), index);
    let out = Command::new("skopeo")
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .args(["--dest-creds", &format!("gus:{CREW_PASSWORD}")])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(format!("docker://{}/crew/multi:guest", s.addr))
        .output()
        .unwrap();
    let err = failed_with(&out, "a Guest's skopeo copy");
    assert!(
        err.contains("requested access to the resource is denied"),
        "{err}"
    );
    // a wrong secret is unauthorized
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .args(["--creds", &format!("{robot}:not-the-secret-Abc123")])
        .arg(&dest)
        .output()
        .unwrap();
    let err = failed_with(&out, "skopeo with a wrong robot secret");
    assert!(err.to_lowercase().contains("unauthorized"), "{err}");
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;

    // podman: pull as the developer, push a new tag as the robot
    // podman wants a short runroot
    let store = std::path::PathBuf::from(format!("/tmp/bp-{}", &marker[..8]));
    std::fs::create_dir_all(&store).unwrap();
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--storage-driver")
            .arg("vfs")
            .arg("--root")
            .arg(store.join("root"))
            .arg("--runroot")
            .arg(store.join("run"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(args);
        c
    };
    run(&mut podman(&[
        "pull",
        "--tls-verify=false",
        "--creds",
        &format!("dev:{CREW_PASSWORD}"),
        &image("dev"),
    ]));
    run(&mut podman(&["tag", &image("dev"), &image("podman")]));
    run(&mut podman(&[
        "push",
        "--tls-verify=false",
        "--creds",
        &format!("{robot}:{secret}"),
        &image("podman"),
    ]));
    let st = s
        .admin(
            Method::HEAD,
            &format!("/v2/crew/app-{}/manifests/podman", &marker[..8]),
        )
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 200, "podman's push landed");
    let out = podman(&[
        "push",
        "--tls-verify=false",
        "--creds",
        &format!("gus:{CREW_PASSWORD}"),
        &image("podman"),
        &format!("docker://{}/crew/app-{}:gus", s.addr, &marker[..8]),
    ])
    .output()
    .unwrap();
    let err = failed_with(&out, "a Guest's podman push");
    assert!(
        err.contains("requested access to the resource is denied"),
        "{err}"
    );

    for tag in ["dev", "robot", "guest"] {
        let _ = docker(&["rmi", &image(tag)]).output();
    }
    let _ = podman(&["rmi", "--all", "--force"]).output();
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&src).ok();
    std::fs::remove_dir_all(&store).ok();
}
