//! Validated names: repository names (`<project>/<path…>`), project names,
//! tags and manifest references. Everything that reaches a storage path or
//! a query passes through one of these parsers first.

use std::fmt;

use crate::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid repository name: {0}")]
    Repository(&'static str),
    #[error("invalid project name: the name must match ^[a-z0-9]+(?:[._-][a-z0-9]+)*$ and be 1-255 characters long")]
    Project,
    #[error("invalid tag: a tag must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}")]
    Tag,
    #[error("invalid reference: neither a tag nor a digest")]
    Reference,
}

/// Longest repository name accepted, as distribution does.
pub const MAX_REPO_NAME: usize = 255;

/// A repository name per the OCI grammar, with at least two components
/// because Harbor's first component is the project.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

fn valid_component(c: &str) -> bool {
    // alnum+ ( ( '.' | '_' | '__' | '-'+ ) alnum+ )*
    let b = c.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < b.len() {
        if alnum(b[i]) {
            expect_alnum = false;
            i += 1;
            continue;
        }
        if expect_alnum {
            return false;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        expect_alnum = true;
    }
    !expect_alnum
}

impl RepoName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Repository("empty name"));
        }
        if s.len() > MAX_REPO_NAME {
            return Err(NameError::Repository("longer than 255 characters"));
        }
        let mut count = 0;
        for c in s.split('/') {
            if !valid_component(c) {
                return Err(NameError::Repository(
                    "components must be lowercase alphanumerics separated by '.', '_', '__' or '-'",
                ));
            }
            count += 1;
        }
        if count < 2 {
            return Err(NameError::Repository(
                "the name must be <project>/<repository>",
            ));
        }
        Ok(RepoName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first component: the project's name (not yet validated as one).
    pub fn project(&self) -> &str {
        self.0.split('/').next().unwrap_or_default()
    }

    /// The name inside the project (everything after the first `/`).
    pub fn path_in_project(&self) -> &str {
        self.0.split_once('/').map(|(_, r)| r).unwrap_or_default()
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Harbor project name: `^[a-z0-9]+(?:[._-][a-z0-9]+)*$`, 1–255 chars.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectName(String);

impl ProjectName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > 255 {
            return Err(NameError::Project);
        }
        let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        let mut prev_sep = true;
        for &x in b {
            if alnum(x) {
                prev_sep = false;
            } else if matches!(x, b'.' | b'_' | b'-') && !prev_sep {
                prev_sep = true;
            } else {
                return Err(NameError::Project);
            }
        }
        if prev_sep {
            return Err(NameError::Project);
        }
        Ok(ProjectName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > 128 {
            return Err(NameError::Tag);
        }
        let first_ok = b[0].is_ascii_alphanumeric() || b[0] == b'_';
        let rest_ok = b[1..]
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'));
        if first_ok && rest_ok {
            Ok(Tag(s.to_owned()))
        } else {
            Err(NameError::Tag)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What follows `/manifests/`: a tag or a digest.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.contains(':') {
            Digest::parse(s)
                .map(Reference::Digest)
                .map_err(|_| NameError::Reference)
        } else {
            Tag::parse(s).map(Reference::Tag)
        }
    }

    pub fn as_digest(&self) -> Option<&Digest> {
        match self {
            Reference::Digest(d) => Some(d),
            Reference::Tag(_) => None,
        }
    }

    pub fn as_tag(&self) -> Option<&Tag> {
        match self {
            Reference::Tag(t) => Some(t),
            Reference::Digest(_) => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in [
            "library/busybox",
            "a/b",
            "proj/some/deep/path",
            "p/a.b",
            "p/a_b",
            "p/a__b",
            "p/a---b",
            "p0/x9",
        ] {
            let n = RepoName::parse(ok).unwrap();
            assert_eq!(n.as_str(), ok);
        }
        assert_eq!(
            RepoName::parse("proj/a/b").unwrap().path_in_project(),
            "a/b"
        );
        let long = format!("p/{}", "a".repeat(254));
        for bad in [
            "",
            "busybox",
            "library/",
            "/library/x",
            "library//x",
            "library/../etc",
            "library/./x",
            "library/.x",
            "library/_x",
            "library/-x",
            "library/x-",
            "library/a___b",
            "Library/x",
            "library/X",
            "library/%2e%2e",
            "library/a%2fb",
            "library\\x",
            "library/x\0",
            "library/a..b",
            long.as_str(),
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn project_names() {
        for ok in ["library", "a", "a.b", "a-b_c", "0x"] {
            ProjectName::parse(ok).unwrap();
        }
        for bad in ["", "A", "a--b", "a__b", "-a", "a-", "a/b", "a b", "é"] {
            assert!(ProjectName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ProjectName::parse(&"a".repeat(256)).is_err());
    }

    #[test]
    fn tags_and_references() {
        for ok in ["latest", "v1.0", "_x", "A-b_c.d", &"a".repeat(128)] {
            Tag::parse(ok).unwrap();
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a b", &"a".repeat(129)] {
            assert!(Tag::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(Reference::parse("latest"), Ok(Reference::Tag(_))));
        assert!(matches!(
            Reference::parse(Digest::sha256(b"").as_str()),
            Ok(Reference::Digest(_))
        ));
        assert!(Reference::parse("sha256:nothex").is_err());
        assert!(Reference::parse(".INVALID_MANIFEST_NAME").is_err());
    }
}
