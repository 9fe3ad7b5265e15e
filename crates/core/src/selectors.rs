//! Harbor's `doublestar` selectors, shared by tag immutability and tag
//! retention: a pattern over a repository path (without the project) or a
//! tag, where `*` stays within one path segment, `**` spans segments, and
//! `?`, `[…]` and `{a,b}` work as in bmatcuk/doublestar. A selector either
//! selects what matches (`matches`, `repoMatches`) or what does not
//! (`excludes`, `repoExcludes`).

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, CoreResult};

/// One selector as Harbor's API carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub decoration: String,
    #[serde(default)]
    pub pattern: String,
    /// A JSON string; retention reads `{"untagged":true}` from it.
    #[serde(default)]
    pub extras: String,
}

/// Longest pattern accepted.
const MAX_PATTERN: usize = 512;

/// A validated, compiled selector.
#[derive(Clone, Debug)]
pub struct Compiled {
    matcher: GlobMatcher,
    negate: bool,
}

impl Compiled {
    /// Whether the selector selects `value`.
    pub fn selects(&self, value: &str) -> bool {
        self.matcher.is_match(value) != self.negate
    }
}

/// Checks and compiles a selector; `decorations` are the two accepted
/// decorations (select-matching first).
pub fn compile(s: &Selector, decorations: [&str; 2]) -> CoreResult<Compiled> {
    let bad = |m: String| CoreError::BadRequest(m);
    if s.kind != "doublestar" {
        return Err(bad(format!(
            "unsupported selector kind {:?}: only doublestar is supported",
            s.kind
        )));
    }
    let negate = if s.decoration == decorations[0] {
        false
    } else if s.decoration == decorations[1] {
        true
    } else {
        return Err(bad(format!(
            "invalid selector decoration {:?}: use {} or {}",
            s.decoration, decorations[0], decorations[1]
        )));
    };
    if s.pattern.is_empty() || s.pattern.len() > MAX_PATTERN {
        return Err(bad(format!(
            "a selector pattern must have 1 to {MAX_PATTERN} characters"
        )));
    }
    let glob = GlobBuilder::new(&s.pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| bad(format!("invalid pattern {:?}: {e}", s.pattern)))?;
    Ok(Compiled {
        matcher: glob.compile_matcher(),
        negate,
    })
}

pub const TAG_DECORATIONS: [&str; 2] = ["matches", "excludes"];
pub const REPO_DECORATIONS: [&str; 2] = ["repoMatches", "repoExcludes"];

/// A repository name without its project: what repository selectors see.
pub fn repo_path<'a>(project: &str, repository: &'a str) -> &'a str {
    repository
        .strip_prefix(project)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(decoration: &str, pattern: &str) -> Selector {
        Selector {
            kind: "doublestar".into(),
            decoration: decoration.into(),
            pattern: pattern.into(),
            extras: String::new(),
        }
    }

    #[test]
    fn doublestar_semantics() {
        let tag = |p: &str| compile(&sel("matches", p), TAG_DECORATIONS).unwrap();
        assert!(tag("v1.*").selects("v1.2"));
        assert!(!tag("v1.*").selects("v2.0"));
        assert!(tag("{latest,stable}").selects("stable"));
        assert!(tag("**").selects("anything"));
        assert!(tag("rc-?").selects("rc-1"));
        let repo = |p: &str| compile(&sel("repoMatches", p), REPO_DECORATIONS).unwrap();
        assert!(repo("**").selects("team/app"));
        assert!(repo("team/**").selects("team/a/b"));
        assert!(!repo("*").selects("team/app"), "* stays within a segment");
        assert!(repo("*").selects("app"));
        let ex = compile(&sel("repoExcludes", "tmp-*"), REPO_DECORATIONS).unwrap();
        assert!(ex.selects("app") && !ex.selects("tmp-1"));
        assert_eq!(repo_path("lib", "lib/team/app"), "team/app");
    }

    #[test]
    fn bad_selectors_are_refused() {
        assert!(compile(&sel("matches", "[a"), TAG_DECORATIONS).is_err());
        assert!(compile(&sel("repoMatches", "x"), TAG_DECORATIONS).is_err());
        assert!(compile(&sel("matches", ""), TAG_DECORATIONS).is_err());
        let mut regex = sel("matches", "x");
        regex.kind = "regex".into();
        assert!(compile(&regex, TAG_DECORATIONS).is_err());
    }
}
