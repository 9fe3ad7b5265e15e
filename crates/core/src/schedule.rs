//! Harbor's schedules: a type (`Hourly`, `Daily`, `Weekly`, `Custom`,
//! `Manual`, `None`) and a 6-field cron whose first field, seconds, is `0`
//! (robfig/cron's form: day of week 0–6 from Sunday). Schedules are
//! persisted (`JobStore::put_schedule`); [`run_scheduler`] fires the due
//! ones on every node, and `advance_schedule` makes each run fire once.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};

use crate::clock::{self, Millis};
use crate::error::{CoreError, CoreResult};
use crate::model::Schedule;
use crate::ports::JobStore;

/// A schedule as the API carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleSpec {
    /// No schedule.
    None,
    /// Run once, now.
    Manual,
    /// A recurring schedule: its type and cron.
    Cron { kind: String, cron: String },
}

impl ScheduleSpec {
    /// Reads Harbor's `{type, cron}`: presets get their cron, `Custom` (and
    /// `Schedule`) must bring a valid one.
    pub fn parse(kind: &str, cron: Option<&str>) -> CoreResult<ScheduleSpec> {
        let preset = |c: &str| ScheduleSpec::Cron {
            kind: kind.to_owned(),
            cron: c.to_owned(),
        };
        Ok(match kind {
            "None" | "" => ScheduleSpec::None,
            "Manual" => ScheduleSpec::Manual,
            "Hourly" => preset("0 0 * * * *"),
            "Daily" => preset("0 0 0 * * *"),
            "Weekly" => preset("0 0 0 * * 0"),
            "Custom" | "Schedule" => {
                let cron = cron.map(str::trim).filter(|c| !c.is_empty()).ok_or_else(|| {
                    CoreError::BadRequest("a Custom schedule needs a cron".into())
                })?;
                Cron::parse(cron)?;
                ScheduleSpec::Cron {
                    kind: "Custom".into(),
                    cron: cron.to_owned(),
                }
            }
            other => {
                return Err(CoreError::BadRequest(format!(
                    "unknown schedule type {other:?}: use Hourly, Daily, Weekly, Custom, Manual or None"
                )))
            }
        })
    }
}

/// A parsed Harbor cron.
pub struct Cron(cron::Schedule);

impl Cron {
    pub fn parse(s: &str) -> CoreResult<Cron> {
        let bad = |why: &str| CoreError::BadRequest(format!("invalid cron {s:?}: {why}"));
        let fields: Vec<&str> = s.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(bad(
                "it needs 6 fields: second minute hour day-of-month month day-of-week",
            ));
        }
        if fields[0] != "0" {
            return Err(bad("the seconds field must be 0"));
        }
        // robfig/cron counts weekdays 0–6 from Sunday; the `cron` crate 1–7.
        let dow =
            shift_weekdays(fields[5]).ok_or_else(|| bad("day of week must be 0-6 or a name"))?;
        let expr = format!("{} {dow}", fields[..5].join(" "));
        cron::Schedule::from_str(&expr)
            .map(Cron)
            .map_err(|e| bad(&e.to_string()))
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        let t = Utc.timestamp_millis_opt(after).single()?;
        self.0.after(&t).next().map(|t| t.timestamp_millis())
    }
}

/// Adds one to every weekday number in a day-of-week field (steps stay).
fn shift_weekdays(field: &str) -> Option<String> {
    let mut parts = vec![];
    for part in field.split(',') {
        let (base, step) = match part.split_once('/') {
            Some((b, s)) => (b, Some(s)),
            None => (part, None),
        };
        let mut out = String::new();
        for (i, bound) in base.split('-').enumerate() {
            if i > 0 {
                out.push('-');
            }
            match bound.parse::<u8>() {
                Ok(n) if n <= 6 => out.push_str(&(n + 1).to_string()),
                Ok(_) => return None,
                Err(_) => out.push_str(bound),
            }
        }
        if let Some(s) = step {
            out.push('/');
            out.push_str(s);
        }
        parts.push(out);
    }
    Some(parts.join(","))
}

/// Work a schedule can start.
#[async_trait]
pub trait Scheduled: Send + Sync {
    fn vendor_type(&self) -> &'static str;
    /// Starts one scheduled run.
    async fn fire(&self, vendor_id: i64, params: serde_json::Value) -> CoreResult<()>;
}

/// Saves (or, for `None`, removes) the schedule of one kind of work.
/// `Manual` is not a schedule; callers run it themselves.
pub async fn save(
    store: &dyn JobStore,
    vendor_type: &str,
    vendor_id: i64,
    spec: &ScheduleSpec,
    params: serde_json::Value,
) -> CoreResult<Option<Schedule>> {
    match spec {
        ScheduleSpec::None | ScheduleSpec::Manual => {
            store.delete_schedule(vendor_type, vendor_id).await?;
            Ok(None)
        }
        ScheduleSpec::Cron { kind, cron } => {
            let now = clock::now();
            let next_run = Cron::parse(cron)?
                .next_after(now)
                .ok_or_else(|| CoreError::BadRequest(format!("the cron {cron:?} never fires")))?;
            let s = store
                .put_schedule(&Schedule {
                    id: 0,
                    vendor_type: vendor_type.to_owned(),
                    vendor_id,
                    kind: kind.clone(),
                    cron: cron.clone(),
                    params: params.to_string(),
                    next_run,
                    creation_time: now,
                    update_time: now,
                })
                .await?;
            Ok(Some(s))
        }
    }
}

/// Fires due schedules every `tick` until `stop` turns true. A run missed
/// while no node was up fires once, then the schedule moves to its next
/// time after now.
pub async fn run_scheduler(
    store: Arc<dyn JobStore>,
    targets: Vec<Arc<dyn Scheduled>>,
    tick: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let targets: HashMap<&'static str, Arc<dyn Scheduled>> =
        targets.into_iter().map(|t| (t.vendor_type(), t)).collect();
    loop {
        if let Err(e) = fire_due(store.as_ref(), &targets).await {
            tracing::warn!(error = %e, "scheduler: firing due schedules failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn fire_due(
    store: &dyn JobStore,
    targets: &HashMap<&'static str, Arc<dyn Scheduled>>,
) -> CoreResult<()> {
    let now = clock::now();
    for s in store.due_schedules(now).await? {
        let Some(target) = targets.get(s.vendor_type.as_str()) else {
            continue;
        };
        let next = match Cron::parse(&s.cron).ok().and_then(|c| c.next_after(now)) {
            Some(n) => n,
            None => {
                tracing::warn!(schedule = s.id, cron = %s.cron, "schedule with an unusable cron removed");
                store.delete_schedule(&s.vendor_type, s.vendor_id).await?;
                continue;
            }
        };
        if !store.advance_schedule(s.id, s.next_run, next).await? {
            continue; // another node fired it
        }
        let params = serde_json::from_str(&s.params).unwrap_or_else(|_| serde_json::json!({}));
        if let Err(e) = target.fire(s.vendor_id, params).await {
            tracing::warn!(schedule = s.id, vendor = %s.vendor_type, error = %e, "scheduled run not started");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Millis {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn harbor_crons() {
        let daily = Cron::parse("0 0 0 * * *").unwrap();
        assert_eq!(
            daily.next_after(at("2026-12-03T15:00:00Z")),
            Some(at("2026-12-04T00:00:00Z"))
        );
        // 0 is Sunday, as in robfig/cron: 2026-12-06 is a Sunday.
        let weekly = Cron::parse("0 0 0 * * 0").unwrap();
        assert_eq!(
            weekly.next_after(at("2026-12-03T15:00:00Z")),
            Some(at("2026-12-06T00:00:00Z"))
        );
        let workdays = Cron::parse("0 30 2 * * 1-5").unwrap();
        assert_eq!(
            workdays.next_after(at("2026-12-04T03:00:00Z")),
            Some(at("2026-12-07T02:30:00Z")),
            "Friday after 02:30 moves to Monday"
        );
        let every_ten = Cron::parse("0 */10 * * * *").unwrap();
        assert_eq!(
            every_ten.next_after(at("2026-12-03T15:01:00Z")),
            Some(at("2026-12-03T15:10:00Z"))
        );
        for bad in [
            "0 0 * * *",
            "30 0 0 * * *",
            "0 0 0 * * 7",
            "0 61 * * * *",
            "x",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedule_types() {
        assert_eq!(
            ScheduleSpec::parse("Hourly", None).unwrap(),
            ScheduleSpec::Cron {
                kind: "Hourly".into(),
                cron: "0 0 * * * *".into()
            }
        );
        assert_eq!(
            ScheduleSpec::parse("None", None).unwrap(),
            ScheduleSpec::None
        );
        assert_eq!(
            ScheduleSpec::parse("Manual", None).unwrap(),
            ScheduleSpec::Manual
        );
        assert!(ScheduleSpec::parse("Custom", None).is_err());
        assert!(ScheduleSpec::parse("Custom", Some("0 0 1 * * *")).is_ok());
        assert!(ScheduleSpec::parse("Yearly", None).is_err());
    }
}
