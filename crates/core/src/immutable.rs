//! Tag immutability (`/projects/{p}/immutabletagrules`): per-project rules
//! of repository and tag selectors. A tag an enabled rule selects may be
//! pushed once; moving it to another digest, deleting it or deleting its
//! artifact (through either API, retention or GC) answers 412
//! `PRECONDITION`. The registry asks an [`ImmutableMatcher`]; the store
//! applies it inside the transaction that moves or deletes tags.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::access::{Action, Resource, Subject};
use crate::catalog::{authorized_project, ProjectKey};
use crate::clock::{self, Millis};
use crate::error::{CoreError, CoreResult};
use crate::model::ProjectId;
use crate::ports::MetaStore;
use crate::query::Page;
use crate::selectors::{self, Compiled, Selector, REPO_DECORATIONS, TAG_DECORATIONS};

/// Rules per project, as Harbor allows.
pub const MAX_RULES: usize = 15;

/// One rule, in Harbor's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImmutableRule {
    pub id: i64,
    pub project_id: ProjectId,
    pub priority: i64,
    pub disabled: bool,
    pub tag_selectors: Vec<Selector>,
    /// Harbor's `scope_selectors.repository`.
    pub repo_selectors: Vec<Selector>,
    pub creation_time: Millis,
    pub update_time: Millis,
}

/// The enabled rules of one project, compiled.
#[derive(Clone, Debug, Default)]
pub struct ImmutableMatcher {
    project: String,
    rules: Vec<(Vec<Compiled>, Vec<Compiled>)>,
}

impl ImmutableMatcher {
    pub fn new(project: &str, rules: &[ImmutableRule]) -> Self {
        let compile = |list: &[Selector], decorations| {
            list.iter()
                .map(|s| selectors::compile(s, decorations))
                .collect::<CoreResult<Vec<_>>>()
        };
        ImmutableMatcher {
            project: project.to_owned(),
            rules: rules
                .iter()
                .filter(|r| !r.disabled)
                // Stored rules were validated; one that no longer compiles
                // is skipped rather than blocking every push.
                .filter_map(|r| {
                    Some((
                        compile(&r.repo_selectors, REPO_DECORATIONS).ok()?,
                        compile(&r.tag_selectors, TAG_DECORATIONS).ok()?,
                    ))
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `tag` of `repository` (a full name) is immutable.
    pub fn is_immutable(&self, repository: &str, tag: &str) -> bool {
        let path = selectors::repo_path(&self.project, repository);
        self.rules.iter().any(|(repos, tags)| {
            repos.iter().all(|r| r.selects(path)) && tags.iter().all(|t| t.selects(tag))
        })
    }
}

/// Loads the project's matcher.
pub async fn matcher(
    meta: &dyn MetaStore,
    project_id: ProjectId,
    project: &str,
) -> CoreResult<ImmutableMatcher> {
    Ok(ImmutableMatcher::new(
        project,
        &meta.immutable_rules(project_id).await?,
    ))
}

/// A rule as a client sends it.
#[derive(Clone, Debug, Default)]
pub struct RuleInput {
    pub disabled: bool,
    pub priority: i64,
    pub tag_selectors: Vec<Selector>,
    pub repo_selectors: Vec<Selector>,
}

fn validate(input: &RuleInput) -> CoreResult<()> {
    if input.tag_selectors.is_empty() || input.repo_selectors.is_empty() {
        return Err(CoreError::BadRequest(
            "a rule needs a tag selector and a repository selector".into(),
        ));
    }
    for s in &input.tag_selectors {
        selectors::compile(s, TAG_DECORATIONS)?;
    }
    for s in &input.repo_selectors {
        selectors::compile(s, REPO_DECORATIONS)?;
    }
    Ok(())
}

fn same_selectors(a: &ImmutableRule, b: &RuleInput) -> bool {
    let key = |s: &Selector| (s.decoration.clone(), s.pattern.clone());
    let set = |v: &[Selector]| {
        let mut k: Vec<_> = v.iter().map(key).collect();
        k.sort();
        k
    };
    set(&a.tag_selectors) == set(&b.tag_selectors)
        && set(&a.repo_selectors) == set(&b.repo_selectors)
}

pub struct Immutability {
    meta: Arc<dyn MetaStore>,
}

impl Immutability {
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        Immutability { meta }
    }

    pub async fn list(
        &self,
        subject: &Subject,
        key: &ProjectKey,
        page: Page,
    ) -> CoreResult<(Vec<ImmutableRule>, i64)> {
        let p = authorized_project(
            &*self.meta,
            subject,
            key,
            Resource::ImmutableTag,
            Action::List,
        )
        .await?;
        let all = self.meta.immutable_rules(p.id).await?;
        let total = all.len() as i64;
        let rows = all
            .into_iter()
            .skip(page.offset() as usize)
            .take(page.size as usize)
            .collect();
        Ok((rows, total))
    }

    pub async fn create(
        &self,
        subject: &Subject,
        key: &ProjectKey,
        input: RuleInput,
    ) -> CoreResult<ImmutableRule> {
        let p = authorized_project(
            &*self.meta,
            subject,
            key,
            Resource::ImmutableTag,
            Action::Create,
        )
        .await?;
        validate(&input)?;
        let existing = self.meta.immutable_rules(p.id).await?;
        if existing.iter().any(|r| same_selectors(r, &input)) {
            return Err(CoreError::Conflict(
                "an immutable rule with the same selectors exists already".into(),
            ));
        }
        if existing.len() >= MAX_RULES {
            return Err(CoreError::BadRequest(format!(
                "a project has at most {MAX_RULES} immutable rules"
            )));
        }
        let now = clock::now();
        self.meta
            .create_immutable_rule(&ImmutableRule {
                id: 0,
                project_id: p.id,
                priority: input.priority,
                disabled: input.disabled,
                tag_selectors: input.tag_selectors,
                repo_selectors: input.repo_selectors,
                creation_time: now,
                update_time: now,
            })
            .await
    }

    /// Replaces a rule's selectors and state. A body with only `disabled`
    /// (as Harbor's portal sends to enable or disable) keeps the selectors.
    pub async fn update(
        &self,
        subject: &Subject,
        key: &ProjectKey,
        id: i64,
        input: RuleInput,
    ) -> CoreResult<()> {
        let p = authorized_project(
            &*self.meta,
            subject,
            key,
            Resource::ImmutableTag,
            Action::Update,
        )
        .await?;
        let existing = self.meta.immutable_rules(p.id).await?;
        let Some(mut rule) = existing.iter().find(|r| r.id == id).cloned() else {
            return Err(CoreError::NotFound(format!("immutable rule {id}")));
        };
        if !(input.tag_selectors.is_empty() && input.repo_selectors.is_empty()) {
            validate(&input)?;
            if existing
                .iter()
                .any(|r| r.id != id && same_selectors(r, &input))
            {
                return Err(CoreError::Conflict(
                    "an immutable rule with the same selectors exists already".into(),
                ));
            }
            rule.tag_selectors = input.tag_selectors;
            rule.repo_selectors = input.repo_selectors;
            rule.priority = input.priority;
        }
        rule.disabled = input.disabled;
        rule.update_time = clock::now();
        self.meta.update_immutable_rule(&rule).await?;
        Ok(())
    }

    pub async fn delete(&self, subject: &Subject, key: &ProjectKey, id: i64) -> CoreResult<()> {
        let p = authorized_project(
            &*self.meta,
            subject,
            key,
            Resource::ImmutableTag,
            Action::Delete,
        )
        .await?;
        if self.meta.delete_immutable_rule(p.id, id).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound(format!("immutable rule {id}")))
        }
    }
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

    fn rule(repo: Selector, tag: Selector, disabled: bool) -> ImmutableRule {
        ImmutableRule {
            id: 1,
            project_id: 1,
            priority: 0,
            disabled,
            tag_selectors: vec![tag],
            repo_selectors: vec![repo],
            creation_time: 0,
            update_time: 0,
        }
    }

    #[test]
    fn matching() {
        let m = ImmutableMatcher::new(
            "lib",
            &[
                rule(sel("repoMatches", "app*"), sel("matches", "v*"), false),
                rule(sel("repoMatches", "**"), sel("matches", "latest"), true),
                rule(
                    sel("repoExcludes", "tmp/**"),
                    sel("excludes", "dev-*"),
                    false,
                ),
            ],
        );
        assert!(m.is_immutable("lib/app", "v1"));
        assert!(
            m.is_immutable("lib/other", "v1"),
            "third rule: not tmp, not dev-"
        );
        assert!(!m.is_immutable("lib/tmp/x", "v1"));
        assert!(!m.is_immutable("lib/other", "dev-1"));
        assert!(
            !m.is_immutable("lib/tmp/x", "latest"),
            "the disabled rule is ignored"
        );
    }
}
