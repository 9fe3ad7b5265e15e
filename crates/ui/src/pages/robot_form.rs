//! What both robot screens share (a project's Robot accounts tab and the
//! administration's robots): reading the form's checkboxes and duration,
//! showing expiry, the spec that only flips `disable`, and the "Download as
//! JSON" answer that echoes a secret page's post.

use std::collections::BTreeSet;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use berth_core::model::{Robot, RobotAccess};
use berth_core::robots::RobotSpec;
use berth_core::CoreError;
use serde::Deserialize;

use crate::error::UiResult;

/// Checked `resource:action` boxes as robot access, in the order given,
/// without repeats. The domain decides what may be granted.
pub(crate) fn parse_access(values: &[&str]) -> Result<Vec<RobotAccess>, String> {
    let mut seen = BTreeSet::new();
    let mut out = vec![];
    for v in values {
        let (r, a) = v
            .split_once(':')
            .map(|(r, a)| (r.trim(), a.trim()))
            .filter(|(r, a)| !r.is_empty() && !a.is_empty() && !a.contains(':'))
            .ok_or_else(|| format!("{v:?} is not a permission."))?;
        if seen.insert((r.to_owned(), a.to_owned())) {
            out.push(RobotAccess {
                resource: r.to_owned(),
                action: a.to_owned(),
                effect: None,
            });
        }
    }
    Ok(out)
}

/// The form's "expires after (days)": empty → `None`, otherwise a whole
/// number (-1 for never); the domain says which numbers are acceptable.
pub(crate) fn parse_duration(v: &str) -> Result<Option<i64>, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<i64>()
        .map(Some)
        .map_err(|_| "The duration must be a whole number of days, or -1 for never.".into())
}

/// Unix seconds of expiry (-1 never) for humans, marked when past `now_ms`.
pub(crate) fn expires_text(expires_at: i64, now_ms: i64) -> String {
    if expires_at < 0 {
        return "never".into();
    }
    let at = expires_at.saturating_mul(1000).max(1);
    let t = crate::view::time(Some(at));
    if at <= now_ms {
        format!("{t} (expired)")
    } else {
        t
    }
}

/// The spec `PUT /robots/{id}` is sent to set `disable`: the robot as it
/// is, named `name`, with nothing else changed.
pub(crate) fn spec_with_disable(r: &Robot, name: &str, disable: bool) -> RobotSpec {
    RobotSpec {
        name: name.to_owned(),
        description: r.description.clone(),
        level: r.level.as_str().to_owned(),
        duration: Some(r.duration),
        disable,
        permissions: r.permissions.clone(),
        secret: None,
    }
}

/// A download's file name: anything but letters, digits, `.`, `_`, `-`
/// and `+` becomes `_` (the robot prefix's `$` among them), so the header
/// cannot be broken out of: `robot$library+ci` → `robot_library+ci.json`.
pub(crate) fn download_filename(name: &str) -> String {
    let stem: String = name
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = stem.trim_matches('.');
    if stem.is_empty() {
        "robot.json".into()
    } else {
        format!("{stem}.json")
    }
}

/// What a secret page posts to "Download as JSON".
#[derive(Deserialize)]
pub(crate) struct DownloadForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub secret: String,
}

/// The posted name and secret as a JSON attachment. Nothing is looked up
/// or stored; the caller has checked CSRF (`Posted`) and the viewer.
pub(crate) fn secret_file(f: &DownloadForm) -> UiResult<Response> {
    let body = serde_json::to_string_pretty(&serde_json::json!({
        "name": f.name,
        "secret": f.secret,
    }))
    .map_err(CoreError::internal)?;
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let disposition = format!("attachment; filename=\"{}\"", download_filename(&f.name));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(CoreError::internal)?,
    );
    Ok(res)
}

/// A robot for tests of the robot screens.
#[cfg(test)]
pub(crate) fn test_robot(
    level: berth_core::model::RobotLevel,
    name: &str,
    permissions: Vec<berth_core::model::RobotPermission>,
) -> Robot {
    Robot {
        id: 7,
        name: name.into(),
        description: "d".into(),
        level,
        project_id: None,
        secret_hash: String::new(),
        secret_version: 0,
        permissions,
        disabled: false,
        duration: 30,
        expires_at: 99,
        creator: "admin".into(),
        creation_time: 1,
        update_time: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::model::{RobotLevel, RobotPermission};

    #[test]
    fn checkboxes_become_access() {
        let a = parse_access(&["repository:push", "repository:pull", "repository:push"]).unwrap();
        let pairs: Vec<(&str, &str)> = a
            .iter()
            .map(|x| (x.resource.as_str(), x.action.as_str()))
            .collect();
        assert_eq!(pairs, [("repository", "push"), ("repository", "pull")]);
        assert_eq!(parse_access(&[]), Ok(vec![]));
        for bad in ["repository", ":push", "repository:", "a:b:c", ""] {
            assert!(parse_access(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_expiry() {
        assert_eq!(parse_duration(""), Ok(None));
        assert_eq!(parse_duration(" -1 "), Ok(Some(-1)));
        assert_eq!(parse_duration("30"), Ok(Some(30)));
        assert!(parse_duration("thirty").is_err());
        assert!(parse_duration("1.5").is_err());
        assert_eq!(expires_text(-1, 0), "never");
        assert_eq!(expires_text(1, 5_000), "1970-01-01 00:00:01 UTC (expired)");
        assert_eq!(expires_text(10, 5_000), "1970-01-01 00:00:10 UTC");
    }

    #[test]
    fn file_names_cannot_break_the_header() {
        assert_eq!(download_filename("robot$ci"), "robot_ci.json");
        assert_eq!(
            download_filename("robot$library+ci"),
            "robot_library+ci.json"
        );
        assert_eq!(
            download_filename("a\"; filename=x\r\n"),
            "a___filename_x__.json"
        );
        assert_eq!(download_filename(""), "robot.json");
        assert_eq!(download_filename(".."), "robot.json");
    }

    #[test]
    fn disabling_keeps_everything_else() {
        let r = test_robot(
            RobotLevel::Project,
            "library+ci",
            vec![RobotPermission {
                kind: "project".into(),
                namespace: "library".into(),
                access: parse_access(&["repository:pull"]).unwrap(),
                project_id: None,
            }],
        );
        let spec = spec_with_disable(&r, "robot$library+ci", true);
        assert!(spec.disable);
        assert_eq!(spec.name, "robot$library+ci");
        assert_eq!(spec.level, "project");
        assert_eq!(spec.duration, Some(30));
        assert_eq!(spec.description, "d");
        assert_eq!(spec.permissions, r.permissions);
        assert!(spec.secret.is_none());
        assert!(!spec_with_disable(&r, "x", false).disable);
    }
}
