//! Tag retention (`/retentions`): one policy per project of up to 15 rules;
//! an artifact is kept when any enabled rule retains it (Harbor's `or`
//! algorithm), everything else in the repositories the rules cover is
//! deleted, artifact by artifact with all its tags. Artifacts with an
//! immutable tag are never deleted. A run (`RETENTION` job) has one task
//! per repository; a dry run reports the same verdicts without deleting.
//! [`evaluate`] is the whole decision and is pure, so dry and real runs
//! decide identically.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use berth_oci::{Digest, RepoName};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::access::{Action, Resource, Subject};
use crate::catalog::{authorized_project, ProjectKey};
use crate::clock::{self, Millis};
use crate::error::{CoreError, CoreResult};
use crate::events::{Event, EventBus};
use crate::jobs::{JobRunner, Jobs, TaskContext};
use crate::load::Foreground;
use crate::model::{Execution, Task};
use crate::ports::MetaStore;
use crate::query::{Page, RepositoryQuery};
use crate::schedule::{self, ScheduleSpec, Scheduled};
use crate::selectors::{self, Compiled, Selector, REPO_DECORATIONS, TAG_DECORATIONS};

/// The executions' kind.
pub const RETENTION: &str = "RETENTION";
/// Rules per policy, as Harbor allows.
pub const MAX_RULES: usize = 15;
/// Artifacts deleted per store transaction (idle, and while clients are
/// served).
const DELETE_BATCH: i64 = 200;
const DELETE_BATCH_BUSY: i64 = 50;
const DAY: Millis = 86_400_000;

/// Harbor's templates, with the parameter each takes.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("latestPushedK", "the most recently pushed # artifacts"),
    ("latestPulledN", "the most recently pulled # artifacts"),
    (
        "latestActiveK",
        "the most recently pushed or pulled # artifacts",
    ),
    ("lastXDays", "artifacts pushed within the last # days"),
    (
        "nDaysSinceLastPull",
        "artifacts pulled within the last # days",
    ),
    (
        "nDaysSinceLastPush",
        "artifacts pushed within the last # days",
    ),
    ("always", "always"),
];

/// Harbor's `RetentionPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub algorithm: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    #[serde(default)]
    pub scope: Option<Scope>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    pub params: Map<String, Value>,
    #[serde(default)]
    pub tag_selectors: Vec<Selector>,
    #[serde(default)]
    pub scope_selectors: HashMap<String, Vec<Selector>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(default)]
    pub references: Value,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    #[serde(default)]
    pub level: String,
    #[serde(rename = "ref", default)]
    pub reference: i64,
}

impl Policy {
    fn cron(&self) -> Option<&str> {
        self.trigger
            .as_ref()
            .and_then(|t| t.settings.get("cron"))
            .and_then(Value::as_str)
            .filter(|c| !c.trim().is_empty())
    }
}

/// The retention decision for one artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Retain,
    Delete,
    /// Would be deleted, but carries an immutable tag.
    Immutable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Retain => "RETAIN",
            Verdict::Delete => "DEL",
            Verdict::Immutable => "IMMUTABLE",
        }
    }
}

/// An artifact retention judges (index children and accessories go with
/// their parent or subject).
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub id: i64,
    pub digest: Digest,
    pub tags: Vec<String>,
    pub push_time: Millis,
    pub pull_time: Option<Millis>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Template {
    LatestPushed(usize),
    LatestPulled(usize),
    LatestActive(usize),
    PushedWithinDays(i64),
    PulledWithinDays(i64),
    Always,
}

/// A validated, compiled rule.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    repos: Vec<Compiled>,
    tags: Vec<Compiled>,
    untagged: bool,
    template: Template,
}

fn compile_rule(r: &Rule) -> CoreResult<CompiledRule> {
    let bad = |m: String| CoreError::BadRequest(m);
    if !r.action.is_empty() && r.action != "retain" {
        return Err(bad(format!(
            "unsupported rule action {:?}: use retain",
            r.action
        )));
    }
    let param = |name: &str| -> CoreResult<i64> {
        let v = r
            .params
            .get(name)
            .ok_or_else(|| bad(format!("template {name} needs the parameter {name}")))?;
        let n = v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| bad(format!("parameter {name} must be an integer")))?;
        if !(0..=1_000_000).contains(&n) {
            return Err(bad(format!(
                "parameter {name} must be between 0 and 1000000"
            )));
        }
        Ok(n)
    };
    let template = match r.template.as_str() {
        "latestPushedK" => Template::LatestPushed(param("latestPushedK")? as usize),
        "latestPulledN" => Template::LatestPulled(param("latestPulledN")? as usize),
        "latestActiveK" => Template::LatestActive(param("latestActiveK")? as usize),
        "lastXDays" => Template::PushedWithinDays(param("lastXDays")?),
        "nDaysSinceLastPush" => Template::PushedWithinDays(param("nDaysSinceLastPush")?),
        "nDaysSinceLastPull" => Template::PulledWithinDays(param("nDaysSinceLastPull")?),
        "always" => Template::Always,
        other => return Err(bad(format!("unknown retention template {other:?}"))),
    };
    if r.tag_selectors.is_empty() {
        return Err(bad("a rule needs a tag selector".into()));
    }
    if let Some(other) = r
        .scope_selectors
        .keys()
        .find(|k| k.as_str() != "repository")
    {
        return Err(bad(format!(
            "unsupported scope selector {other:?}: only repository"
        )));
    }
    let repo_selectors = r
        .scope_selectors
        .get("repository")
        .cloned()
        .unwrap_or_default();
    if repo_selectors.is_empty() {
        return Err(bad("a rule needs a repository selector".into()));
    }
    let untagged = r.tag_selectors.iter().any(|s| {
        serde_json::from_str::<Value>(&s.extras)
            .ok()
            .and_then(|v| v.get("untagged").and_then(Value::as_bool))
            .unwrap_or(false)
    });
    Ok(CompiledRule {
        repos: repo_selectors
            .iter()
            .map(|s| selectors::compile(s, REPO_DECORATIONS))
            .collect::<CoreResult<_>>()?,
        tags: r
            .tag_selectors
            .iter()
            .map(|s| selectors::compile(s, TAG_DECORATIONS))
            .collect::<CoreResult<_>>()?,
        untagged,
        template,
    })
}

/// Checks a policy for storing: `or`, at most 15 rules, valid rules, no
/// duplicate rule (`Conflict`), a valid cron if scheduled.
pub fn validate(p: &Policy) -> CoreResult<Vec<CompiledRule>> {
    if !p.algorithm.is_empty() && p.algorithm != "or" {
        return Err(CoreError::BadRequest(format!(
            "unsupported algorithm {:?}: use or",
            p.algorithm
        )));
    }
    if p.rules.len() > MAX_RULES {
        return Err(CoreError::BadRequest(format!(
            "a policy has at most {MAX_RULES} rules"
        )));
    }
    let mut seen = HashSet::new();
    for r in &p.rules {
        let key = serde_json::to_string(&(
            &r.template,
            &r.params,
            &r.tag_selectors,
            &r.scope_selectors.get("repository"),
        ))
        .map_err(CoreError::internal)?;
        if !seen.insert(key) {
            return Err(CoreError::Conflict("the policy has duplicate rules".into()));
        }
    }
    if let Some(cron) = p.cron() {
        schedule::Cron::parse(cron)?;
    }
    p.rules.iter().map(compile_rule).collect()
}

/// Decides every candidate of one repository (`repo_path` without the
/// project). `immutable` says whether a candidate carries an immutable tag.
pub fn evaluate(
    rules: &[(bool, CompiledRule)],
    repo_path: &str,
    candidates: &[Candidate],
    now: Millis,
    immutable: impl Fn(&Candidate) -> bool,
) -> Vec<Verdict> {
    let mut retained = vec![false; candidates.len()];
    for (_, rule) in rules.iter().filter(|(disabled, _)| !disabled) {
        if !rule.repos.iter().all(|r| r.selects(repo_path)) {
            continue;
        }
        let mut selected: Vec<usize> = (0..candidates.len())
            .filter(|&i| {
                let c = &candidates[i];
                if c.tags.is_empty() {
                    rule.untagged
                } else {
                    c.tags
                        .iter()
                        .any(|t| rule.tags.iter().all(|s| s.selects(t)))
                }
            })
            .collect();
        let keep_first =
            |selected: &mut Vec<usize>, key: &dyn Fn(&Candidate) -> Millis, n: usize| {
                // Newest first; ties broken by id so runs are repeatable.
                selected.sort_by_key(|&i| {
                    (
                        std::cmp::Reverse(key(&candidates[i])),
                        std::cmp::Reverse(candidates[i].id),
                    )
                });
                selected.truncate(n);
            };
        match rule.template {
            Template::LatestPushed(k) => keep_first(&mut selected, &|c| c.push_time, k),
            Template::LatestPulled(n) => {
                keep_first(&mut selected, &|c| c.pull_time.unwrap_or(i64::MIN), n)
            }
            Template::LatestActive(k) => keep_first(
                &mut selected,
                &|c| c.push_time.max(c.pull_time.unwrap_or(i64::MIN)),
                k,
            ),
            Template::PushedWithinDays(d) => {
                selected.retain(|&i| candidates[i].push_time >= now - d * DAY)
            }
            Template::PulledWithinDays(d) => {
                selected.retain(|&i| candidates[i].pull_time.is_some_and(|t| t >= now - d * DAY))
            }
            Template::Always => {}
        }
        for i in selected {
            retained[i] = true;
        }
    }
    candidates
        .iter()
        .zip(retained)
        .map(|(c, keep)| {
            if keep {
                Verdict::Retain
            } else if immutable(c) {
                Verdict::Immutable
            } else {
                Verdict::Delete
            }
        })
        .collect()
}

/// A stored policy.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPolicy {
    pub id: i64,
    pub project_id: i64,
    pub policy: String,
    pub creation_time: Millis,
    pub update_time: Millis,
}

/// The `RETENTION` runner: one repository per task.
pub struct RetentionRunner {
    meta: Arc<dyn MetaStore>,
    events: EventBus,
    foreground: Foreground,
}

impl RetentionRunner {
    /// Deletes pace themselves around `foreground` (`load`).
    pub fn new(meta: Arc<dyn MetaStore>, events: EventBus, foreground: Foreground) -> Self {
        RetentionRunner {
            meta,
            events,
            foreground,
        }
    }
}

fn ms_text(t: Option<Millis>) -> String {
    match t {
        Some(t) if t > 0 => {
            let secs = t / 1000;
            format!("{secs}")
        }
        _ => "never".into(),
    }
}

#[async_trait]
impl JobRunner for RetentionRunner {
    fn vendor_type(&self) -> &'static str {
        RETENTION
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), String> {
        let attrs = ctx.attrs();
        let dry_run = attrs["dry_run"].as_bool().unwrap_or(false);
        let Some(repo) = attrs["repository"].as_str().map(str::to_owned) else {
            ctx.log("the project has no repositories: nothing to do");
            return Ok(());
        };
        let project_id = attrs["project_id"].as_i64().unwrap_or(0);
        let policy: Policy =
            serde_json::from_value(attrs["policy"].clone()).map_err(|e| e.to_string())?;
        let rules: Vec<(bool, CompiledRule)> = policy
            .rules
            .iter()
            .map(|r| compile_rule(r).map(|c| (r.disabled, c)))
            .collect::<CoreResult<_>>()
            .map_err(|e| e.to_string())?;
        let name = RepoName::parse(&repo).map_err(|e| e.to_string())?;
        let Some(repository) = self
            .meta
            .repository_by_name(&repo)
            .await
            .map_err(|e| e.to_string())?
        else {
            ctx.log(format!("repository {repo} no longer exists"));
            return Ok(());
        };
        let candidates = self
            .meta
            .retention_candidates(repository.id)
            .await
            .map_err(|e| e.to_string())?;
        let guard = crate::immutable::matcher(&*self.meta, project_id, name.project())
            .await
            .map_err(|e| e.to_string())?;
        let verdicts = evaluate(
            &rules,
            selectors::repo_path(name.project(), &repo),
            &candidates,
            clock::now(),
            |c| c.tags.iter().any(|t| guard.is_immutable(&repo, t)),
        );
        let total = candidates.len() as i64;
        let retained = verdicts.iter().filter(|v| **v != Verdict::Delete).count() as i64;
        ctx.log(format!(
            "{repo}: {total} artifact(s), {retained} retained, {} to delete{}",
            total - retained,
            if dry_run { " (dry run)" } else { "" }
        ));
        for (c, v) in candidates.iter().zip(&verdicts) {
            ctx.log(format!(
                "{} {} tags=[{}] pushed={} pulled={}",
                v.as_str(),
                c.digest,
                c.tags.join(","),
                ms_text(Some(c.push_time)),
                ms_text(c.pull_time)
            ));
        }
        ctx.progress(0, total).await.map_err(|e| format!("{e:?}"))?;
        if !dry_run {
            let doomed: Vec<i64> = candidates
                .iter()
                .zip(&verdicts)
                .filter(|(_, v)| **v == Verdict::Delete)
                .map(|(c, _)| c.id)
                .collect();
            let mut deleted = 0i64;
            let mut pacer = self.foreground.pacer();
            let mut rest = &doomed[..];
            while !rest.is_empty() {
                let n = pacer.batch(DELETE_BATCH, DELETE_BATCH_BUSY) as usize;
                let (batch, tail) = rest.split_at(n.min(rest.len()));
                rest = tail;
                let gone = self
                    .meta
                    .delete_artifacts(&name, batch, &|t| guard.is_immutable(&repo, t))
                    .await
                    .map_err(|e| e.to_string())?;
                for (digest, tags) in gone.artifacts {
                    deleted += 1;
                    self.events.publish(Event::ArtifactDeleted {
                        project_id,
                        repository: repo.clone(),
                        digest,
                        tags,
                        operator: "retention".into(),
                        time: clock::now(),
                    });
                }
                if ctx.progress(retained, total).await.is_err() {
                    ctx.log(format!("stopped after deleting {deleted} artifact(s)"));
                    return Ok(());
                }
                pacer.pace().await;
            }
            ctx.log(format!("deleted {deleted} artifact(s)"));
        }
        // The task's progress carries Harbor's `retained` and `total`.
        ctx.progress(retained, total)
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(())
    }
}

/// The `/retentions` API.
pub struct Retention {
    meta: Arc<dyn MetaStore>,
    jobs: Jobs,
}

impl Retention {
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        Retention {
            jobs: Jobs::new(meta.clone()),
            meta,
        }
    }

    async fn policy_for(
        &self,
        subject: &Subject,
        id: i64,
        action: Action,
    ) -> CoreResult<(StoredPolicy, Policy)> {
        let Some(stored) = self.meta.retention_policy(id).await? else {
            return Err(if subject.is_anonymous() {
                CoreError::Unauthenticated
            } else {
                CoreError::NotFound(format!("retention policy {id}"))
            });
        };
        authorized_project(
            &*self.meta,
            subject,
            &ProjectKey::Id(stored.project_id),
            Resource::TagRetention,
            action,
        )
        .await?;
        let mut policy: Policy =
            serde_json::from_str(&stored.policy).map_err(CoreError::internal)?;
        policy.id = stored.id;
        Ok((stored, policy))
    }

    fn normalize(policy: &mut Policy, project_id: i64) {
        policy.algorithm = "or".into();
        policy.scope = Some(Scope {
            level: "project".into(),
            reference: project_id,
        });
        for (i, r) in policy.rules.iter_mut().enumerate() {
            r.id = i as i64 + 1;
            r.action = "retain".into();
        }
        if let Some(t) = policy.trigger.as_mut() {
            if t.kind.is_empty() {
                t.kind = "Schedule".into();
            }
        }
    }

    async fn save_schedule(&self, id: i64, policy: &Policy) -> CoreResult<()> {
        let spec = match policy.cron() {
            Some(c) => ScheduleSpec::parse("Custom", Some(c))?,
            None => ScheduleSpec::None,
        };
        schedule::save(self.meta.as_ref(), RETENTION, id, &spec, json!({})).await?;
        Ok(())
    }

    /// Creates the project's policy (`Conflict` if it has one).
    pub async fn create(&self, subject: &Subject, mut policy: Policy) -> CoreResult<i64> {
        let scope = policy
            .scope
            .clone()
            .filter(|s| s.level.is_empty() || s.level == "project")
            .ok_or_else(|| {
                CoreError::BadRequest(
                    "scope must be {\"level\":\"project\",\"ref\":<project id>}".into(),
                )
            })?;
        let project = authorized_project(
            &*self.meta,
            subject,
            &ProjectKey::Id(scope.reference),
            Resource::TagRetention,
            Action::Create,
        )
        .await?;
        validate(&policy)?;
        Self::normalize(&mut policy, project.id);
        let text = serde_json::to_string(&policy).map_err(CoreError::internal)?;
        let id = self
            .meta
            .create_retention_policy(project.id, &text, clock::now())
            .await?;
        self.save_schedule(id, &policy).await?;
        let mut metadata = project.metadata.clone();
        metadata.insert("retention_id".into(), id.to_string());
        self.meta
            .update_project(project.id, project.public, &metadata)
            .await?;
        Ok(id)
    }

    pub async fn get(&self, subject: &Subject, id: i64) -> CoreResult<Policy> {
        Ok(self.policy_for(subject, id, Action::Read).await?.1)
    }

    pub async fn update(&self, subject: &Subject, id: i64, mut policy: Policy) -> CoreResult<()> {
        let (stored, _) = self.policy_for(subject, id, Action::Update).await?;
        validate(&policy)?;
        Self::normalize(&mut policy, stored.project_id);
        let text = serde_json::to_string(&policy).map_err(CoreError::internal)?;
        self.meta
            .update_retention_policy(id, &text, clock::now())
            .await?;
        self.save_schedule(id, &policy).await
    }

    pub async fn delete(&self, subject: &Subject, id: i64) -> CoreResult<()> {
        let (stored, _) = self.policy_for(subject, id, Action::Delete).await?;
        self.meta.delete_retention_policy(id).await?;
        self.meta.delete_schedule(RETENTION, id).await?;
        if let Some(p) = self.meta.project_by_id(stored.project_id).await? {
            let mut metadata = p.metadata.clone();
            metadata.remove("retention_id");
            self.meta.update_project(p.id, p.public, &metadata).await?;
        }
        Ok(())
    }

    /// Starts a run: one task per repository of the project.
    pub async fn run(&self, subject: &Subject, id: i64, dry_run: bool) -> CoreResult<Execution> {
        let (stored, policy) = self.policy_for(subject, id, Action::Operate).await?;
        self.submit(&stored, &policy, dry_run, "MANUAL").await
    }

    async fn submit(
        &self,
        stored: &StoredPolicy,
        policy: &Policy,
        dry_run: bool,
        trigger: &str,
    ) -> CoreResult<Execution> {
        let (open, _) = self
            .meta
            .list_executions(RETENTION, Some(stored.id), Page::new(1, 1))
            .await?;
        if open.first().is_some_and(|e| !e.status.is_final()) {
            return Err(CoreError::Conflict(
                "a retention run of this policy is still going".into(),
            ));
        }
        let mut repos = vec![];
        let mut page = 1;
        loop {
            let (batch, total) = self
                .meta
                .list_repositories(
                    &RepositoryQuery {
                        project_id: Some(stored.project_id),
                        name: None,
                        visibility: crate::access::Visibility::All,
                        sort: vec![],
                    },
                    Page::new(page, 100),
                )
                .await?;
            repos.extend(batch.into_iter().map(|r| r.name));
            if repos.len() as i64 >= total || page > 100_000 {
                break;
            }
            page += 1;
        }
        let policy_json = serde_json::to_value(policy).map_err(CoreError::internal)?;
        let base = json!({ "policy_id": stored.id, "project_id": stored.project_id, "dry_run": dry_run, "policy": policy_json });
        let tasks: Vec<Value> = if repos.is_empty() {
            vec![base.clone()]
        } else {
            repos
                .iter()
                .map(|r| {
                    let mut t = base.clone();
                    t["repository"] = json!(r);
                    t
                })
                .collect()
        };
        self.jobs
            .submit(
                RETENTION,
                stored.id,
                trigger,
                json!({ "dry_run": dry_run }),
                tasks,
            )
            .await
    }

    pub async fn executions(
        &self,
        subject: &Subject,
        id: i64,
        page: Page,
    ) -> CoreResult<(Vec<Execution>, i64)> {
        self.policy_for(subject, id, Action::List).await?;
        self.meta.list_executions(RETENTION, Some(id), page).await
    }

    async fn execution_of(
        &self,
        subject: &Subject,
        id: i64,
        eid: i64,
        action: Action,
    ) -> CoreResult<Execution> {
        self.policy_for(subject, id, action).await?;
        self.meta
            .execution(eid)
            .await?
            .filter(|e| e.vendor_type == RETENTION && e.vendor_id == id)
            .ok_or_else(|| CoreError::NotFound(format!("retention execution {eid}")))
    }

    pub async fn stop(&self, subject: &Subject, id: i64, eid: i64) -> CoreResult<()> {
        let e = self.execution_of(subject, id, eid, Action::Operate).await?;
        self.jobs.stop(e.id).await?;
        Ok(())
    }

    pub async fn tasks(&self, subject: &Subject, id: i64, eid: i64) -> CoreResult<Vec<Task>> {
        let e = self.execution_of(subject, id, eid, Action::List).await?;
        self.meta.tasks(e.id).await
    }

    pub async fn task_log(
        &self,
        subject: &Subject,
        id: i64,
        eid: i64,
        tid: i64,
    ) -> CoreResult<Vec<(Millis, String)>> {
        let e = self.execution_of(subject, id, eid, Action::Read).await?;
        let task = self
            .meta
            .task(tid)
            .await?
            .filter(|t| t.execution_id == e.id)
            .ok_or_else(|| CoreError::NotFound(format!("retention task {tid}")))?;
        self.meta.task_log(task.id).await
    }

    /// What `/retentions/metadatas` lists.
    pub fn metadata() -> Value {
        json!({
            "templates": TEMPLATES.iter().map(|(rule, name)| json!({
                "rule_template": rule,
                "display_text": name,
                "action": "retain",
                "params": if *rule == "always" { json!([]) } else { json!([{ "type": "int", "unit": if rule.contains("Days") { "DAYS" } else { "COUNT" }, "required": true }]) },
            })).collect::<Vec<_>>(),
            "scope_selectors": [{ "display_text": "Repositories", "kind": "doublestar", "decorations": ["repoMatches", "repoExcludes"] }],
            "tag_selectors": [{ "display_text": "Tags", "kind": "doublestar", "decorations": ["matches", "excludes"] }],
        })
    }
}

#[async_trait]
impl Scheduled for Retention {
    fn vendor_type(&self) -> &'static str {
        RETENTION
    }

    async fn fire(&self, vendor_id: i64, _params: Value) -> CoreResult<()> {
        let Some(stored) = self.meta.retention_policy(vendor_id).await? else {
            return Ok(());
        };
        let policy: Policy = serde_json::from_str(&stored.policy).map_err(CoreError::internal)?;
        match self.submit(&stored, &policy, false, "SCHEDULE").await {
            Ok(_) | Err(CoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(decoration: &str, pattern: &str, untagged: bool) -> Selector {
        Selector {
            kind: "doublestar".into(),
            decoration: decoration.into(),
            pattern: pattern.into(),
            extras: if untagged {
                r#"{"untagged":true}"#.into()
            } else {
                String::new()
            },
        }
    }

    fn rule(template: &str, n: Option<i64>, repo: &str, tag: &str, untagged: bool) -> Rule {
        let mut params = Map::new();
        if let Some(n) = n {
            params.insert(template.into(), json!(n));
        }
        Rule {
            template: template.into(),
            params,
            tag_selectors: vec![sel("matches", tag, untagged)],
            scope_selectors: HashMap::from([(
                "repository".into(),
                vec![sel("repoMatches", repo, false)],
            )]),
            ..Rule::default()
        }
    }

    fn cand(id: i64, tags: &[&str], push: Millis, pull: Option<Millis>) -> Candidate {
        Candidate {
            id,
            digest: Digest::sha256(id.to_string().as_bytes()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            push_time: push,
            pull_time: pull,
        }
    }

    fn run(rules: &[Rule], repo: &str, c: &[Candidate], now: Millis) -> Vec<Verdict> {
        let compiled: Vec<(bool, CompiledRule)> = rules
            .iter()
            .map(|r| (r.disabled, compile_rule(r).unwrap()))
            .collect();
        evaluate(&compiled, repo, c, now, |c| {
            c.tags.iter().any(|t| t == "locked")
        })
    }

    use Verdict::*;

    #[test]
    fn templates() {
        let c = vec![
            cand(1, &["a"], 10 * DAY, None),
            cand(2, &["b"], 20 * DAY, Some(21 * DAY)),
            cand(3, &["c"], 30 * DAY, Some(22 * DAY)),
            cand(4, &[], 40 * DAY, None),
        ];
        let now = 31 * DAY;
        assert_eq!(
            run(
                &[rule("latestPushedK", Some(2), "**", "**", false)],
                "app",
                &c,
                now
            ),
            vec![Delete, Retain, Retain, Delete]
        );
        assert_eq!(
            run(
                &[rule("latestPushedK", Some(2), "**", "**", true)],
                "app",
                &c,
                now
            ),
            vec![Delete, Delete, Retain, Retain],
            "untagged included"
        );
        assert_eq!(
            run(
                &[rule("latestPulledN", Some(1), "**", "**", false)],
                "app",
                &c,
                now
            ),
            vec![Delete, Delete, Retain, Delete]
        );
        assert_eq!(
            run(
                &[rule("latestActiveK", Some(1), "**", "**", false)],
                "app",
                &c,
                now
            ),
            vec![Delete, Delete, Retain, Delete]
        );
        assert_eq!(
            run(
                &[rule("lastXDays", Some(15), "**", "**", false)],
                "app",
                &c,
                now
            ),
            vec![Delete, Retain, Retain, Delete]
        );
        assert_eq!(
            run(
                &[rule("nDaysSinceLastPull", Some(9), "**", "**", false)],
                "app",
                &c,
                now
            ),
            vec![Delete, Delete, Retain, Delete]
        );
        assert_eq!(
            run(&[rule("always", None, "**", "a", false)], "app", &c, now),
            vec![Retain, Delete, Delete, Delete]
        );
    }

    #[test]
    fn or_semantics_selectors_and_immutability() {
        let c = vec![
            cand(1, &["v1"], 1, None),
            cand(2, &["dev-1"], 2, None),
            cand(3, &["locked"], 3, None),
            cand(4, &["v2", "dev-2"], 4, None),
        ];
        let rules = [
            rule("always", None, "**", "v*", false),
            rule("latestPushedK", Some(1), "**", "dev-*", false),
        ];
        assert_eq!(
            run(&rules, "app", &c, 10),
            vec![Retain, Delete, Immutable, Retain]
        );
        // A rule whose repository selector does not select the repository
        // retains nothing there.
        let rules = [rule("always", None, "other", "**", true)];
        assert_eq!(
            run(&rules, "app", &c, 10),
            vec![Delete, Delete, Immutable, Delete]
        );
        // Disabled rules do not count.
        let mut off = rule("always", None, "**", "**", true);
        off.disabled = true;
        assert_eq!(
            run(&[off], "app", &c, 10),
            vec![Delete, Delete, Immutable, Delete]
        );
    }

    #[test]
    fn validation() {
        let p = |rules: Vec<Rule>| Policy {
            algorithm: "or".into(),
            rules,
            ..Policy::default()
        };
        assert!(validate(&p(vec![rule("latestPushedK", Some(3), "**", "**", false)])).is_ok());
        assert!(validate(&p(vec![rule("latestPushedK", None, "**", "**", false)])).is_err());
        assert!(validate(&p(vec![rule("nope", Some(1), "**", "**", false)])).is_err());
        assert!(matches!(
            validate(&p(vec![
                rule("always", None, "**", "**", false),
                rule("always", None, "**", "**", false)
            ])),
            Err(CoreError::Conflict(_))
        ));
        assert!(validate(&p((0..16)
            .map(|i| rule("latestPushedK", Some(i), "**", "**", false))
            .collect()))
        .is_err());
        let mut and = p(vec![]);
        and.algorithm = "and".into();
        assert!(validate(&and).is_err());
    }
}
