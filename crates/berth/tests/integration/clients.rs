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

    let mut login = docker(&["login", &s.addr, "-u", "admin", "--password-stdin"]);
    login
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = login.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ADMIN_PASSWORD.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
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
