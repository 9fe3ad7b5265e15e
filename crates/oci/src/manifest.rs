//! Parsing and validating pushed manifests: OCI image manifests and indexes
//! (including artifacts and `subject`), Docker schema 2 manifests and
//! manifest lists. Unknown fields are accepted and ignored; the stored bytes
//! are always the pushed bytes, never a re-serialisation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::media;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
}

fn invalid(msg: impl Into<String>) -> ManifestError {
    ManifestError::Invalid(msg.into())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// A content descriptor as found in manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// Whether the blob is expected in the registry (foreign layers are not).
    pub fn is_distributable(&self) -> bool {
        !media::NON_DISTRIBUTABLE.contains(&self.media_type.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Image,
    Index,
}

/// A parsed, validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest's media type (from the body, else from `Content-Type`).
    pub media_type: String,
    pub kind: ManifestKind,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

impl Manifest {
    /// Parses `body` pushed with `content_type`.
    ///
    /// Rules: `schemaVersion` is 2 (schema 1 is refused as unsupported);
    /// `Content-Type` names a manifest media type and agrees with the body's
    /// `mediaType` when that is present; an image manifest has a `config` and
    /// no `manifests`; an index has `manifests` and neither `config` nor
    /// `layers`; every descriptor has a valid digest and a size ≥ 0.
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Manifest, ManifestError> {
        let ct = content_type.map(media::essence).filter(|c| !c.is_empty());
        if let Some(c) = &ct {
            if c == media::DOCKER_SCHEMA1 || c == media::DOCKER_SCHEMA1_SIGNED {
                return Err(schema1());
            }
        }
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(invalid("manifest must be a JSON object"));
        }
        let raw: Raw = serde_json::from_value(value)
            .map_err(|e| invalid(format!("manifest has an invalid field: {e}")))?;

        match raw.schema_version.as_ref().and_then(|v| v.as_i64()) {
            Some(2) => {}
            Some(1) => return Err(schema1()),
            _ => return Err(invalid("schemaVersion must be 2")),
        }

        let declared = raw.media_type.as_deref();
        if let Some(d) = declared {
            if d == media::DOCKER_SCHEMA1 || d == media::DOCKER_SCHEMA1_SIGNED {
                return Err(schema1());
            }
        }
        let ct =
            match ct {
                Some(c) => c,
                None => return Err(invalid(
                    "the Content-Type header is required and must name the manifest's media type",
                )),
            };
        if !media::MANIFEST_TYPES.contains(&ct.as_str()) {
            return Err(invalid(format!("unsupported manifest media type {ct:?}")));
        }
        if let Some(d) = declared {
            if d != ct {
                return Err(invalid(format!(
                    "mediaType {d:?} in the manifest does not match Content-Type {ct:?}"
                )));
            }
        }
        let media_type = ct;
        let kind = if media::is_index(&media_type) {
            ManifestKind::Index
        } else {
            ManifestKind::Image
        };

        match kind {
            ManifestKind::Image => {
                if raw.manifests.is_some() {
                    return Err(invalid("an image manifest must not have \"manifests\""));
                }
                if raw.config.is_none() {
                    return Err(invalid(
                        "an image manifest must have a \"config\" descriptor",
                    ));
                }
            }
            ManifestKind::Index => {
                if raw.layers.is_some() || raw.config.is_some() {
                    return Err(invalid(
                        "an image index must not have \"layers\" or \"config\"",
                    ));
                }
                if raw.manifests.is_none() {
                    return Err(invalid("an image index must have \"manifests\""));
                }
            }
        }

        let manifest = Manifest {
            media_type,
            kind,
            config: raw.config,
            layers: raw.layers.unwrap_or_default(),
            manifests: raw.manifests.unwrap_or_default(),
            subject: raw.subject,
            artifact_type: raw.artifact_type.filter(|a| !a.is_empty()),
            annotations: raw.annotations.unwrap_or_default(),
        };
        for d in manifest.descriptors() {
            if d.size < 0 {
                return Err(invalid(format!(
                    "descriptor {} has a negative size",
                    d.digest
                )));
            }
            if d.media_type.is_empty() {
                return Err(invalid(format!("descriptor {} has no mediaType", d.digest)));
            }
        }
        Ok(manifest)
    }

    fn descriptors(&self) -> impl Iterator<Item = &Descriptor> {
        self.config
            .iter()
            .chain(self.layers.iter())
            .chain(self.manifests.iter())
            .chain(self.subject.iter())
    }

    /// Blobs that must already be in the repository: config and every
    /// distributable layer.
    pub fn required_blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config
            .iter()
            .chain(self.layers.iter().filter(|l| l.is_distributable()))
    }

    /// The artifact type shown to referrers: `artifactType`, else the
    /// config media type of an image manifest.
    pub fn effective_artifact_type(&self) -> Option<&str> {
        self.artifact_type
            .as_deref()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.as_str()))
    }
}

fn schema1() -> ManifestError {
    ManifestError::Unsupported(
        "Docker image manifest schema 1 is not supported; push with schema 2 or an OCI manifest (docker, podman and skopeo do so by default)".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> String {
        Digest::sha256(&[n]).to_string()
    }

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":2,"data":"e30=","unknown":1}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":10}}]{}}}"#,
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            d(1),
            d(2),
            extra
        )
    }

    #[test]
    fn parses_image_manifest_and_ignores_unknown_fields() {
        let body = image(r#","custom":{"x":1}"#);
        let m = Manifest::parse(body.as_bytes(), Some(media::OCI_MANIFEST)).unwrap();
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.required_blobs().count(), 2);
        assert_eq!(m.effective_artifact_type(), Some(media::OCI_CONFIG));
        // parameters on Content-Type are ignored
        Manifest::parse(
            body.as_bytes(),
            Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
        )
        .unwrap();
    }

    #[test]
    fn content_type_must_agree() {
        let body = image("");
        let e = Manifest::parse(body.as_bytes(), Some(media::OCI_INDEX)).unwrap_err();
        assert!(matches!(e, ManifestError::Invalid(_)));
        assert!(Manifest::parse(body.as_bytes(), None).is_err());
        assert!(Manifest::parse(body.as_bytes(), Some("application/json")).is_err());
    }

    #[test]
    fn index_rules() {
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{}","size":5,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            media::OCI_INDEX,
            media::OCI_MANIFEST,
            d(3)
        );
        let m = Manifest::parse(idx.as_bytes(), Some(media::OCI_INDEX)).unwrap();
        assert_eq!(m.kind, ManifestKind::Index);
        assert_eq!(
            m.manifests[0].platform.as_ref().unwrap().architecture,
            "amd64"
        );
        let bad = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[],"layers":[]}}"#,
            media::OCI_INDEX
        );
        assert!(Manifest::parse(bad.as_bytes(), Some(media::OCI_INDEX)).is_err());
        let bad = image(r#","manifests":[]"#);
        assert!(Manifest::parse(bad.as_bytes(), Some(media::OCI_MANIFEST)).is_err());
        // mediaType may be omitted in OCI content
        let no_mt = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(Manifest::parse(no_mt.as_bytes(), Some(media::OCI_INDEX)).is_ok());
    }

    #[test]
    fn refuses_schema1_and_garbage() {
        let s1 = r#"{"schemaVersion":1,"name":"a/b","tag":"x","fsLayers":[]}"#;
        assert!(matches!(
            Manifest::parse(s1.as_bytes(), Some(media::DOCKER_SCHEMA1_SIGNED)),
            Err(ManifestError::Unsupported(_))
        ));
        assert!(matches!(
            Manifest::parse(s1.as_bytes(), Some(media::DOCKER_MANIFEST)),
            Err(ManifestError::Unsupported(_))
        ));
        for junk in [
            "",
            "[]",
            "null",
            "{",
            "{\"schemaVersion\":\"2\"}",
            "blablabla",
        ] {
            assert!(
                Manifest::parse(junk.as_bytes(), Some(media::OCI_MANIFEST)).is_err(),
                "{junk}"
            );
        }
        let bad_digest = image("").replace(&d(2), "sha256:nothex");
        assert!(Manifest::parse(bad_digest.as_bytes(), Some(media::OCI_MANIFEST)).is_err());
        let neg = image("").replace("\"size\":10", "\"size\":-1");
        assert!(Manifest::parse(neg.as_bytes(), Some(media::OCI_MANIFEST)).is_err());
    }

    #[test]
    fn artifact_and_subject() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","artifactType":"application/x.test","config":{{"mediaType":"{}","digest":"{}","size":2}},"layers":[],"subject":{{"mediaType":"{}","digest":"{}","size":9}}}}"#,
            media::OCI_MANIFEST,
            media::OCI_EMPTY,
            d(1),
            media::OCI_MANIFEST,
            d(4)
        );
        let m = Manifest::parse(body.as_bytes(), Some(media::OCI_MANIFEST)).unwrap();
        assert_eq!(m.effective_artifact_type(), Some("application/x.test"));
        assert_eq!(m.subject.unwrap().digest.to_string(), d(4));
    }

    #[test]
    fn foreign_layers_are_not_required() {
        let body = image("").replace(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        );
        let m = Manifest::parse(body.as_bytes(), Some(media::OCI_MANIFEST)).unwrap();
        assert_eq!(m.required_blobs().count(), 1);
    }
}
