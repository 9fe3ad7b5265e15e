//! What templates share: the page chrome (who is signed in, the banner,
//! the form token), pagers, and formatting of sizes and times.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use berth_api::AppState;
use berth_core::clock::Millis;
use berth_core::query::Page;

use crate::error::{UiError, UiResult};
use crate::session::Viewer;

/// The frame of every page.
#[derive(Clone, Debug, Default)]
pub struct Chrome {
    pub username: String,
    pub signed_in: bool,
    pub sysadmin: bool,
    pub csrf: String,
    pub banner: String,
    pub read_only: bool,
    /// Which top-level section is active: "projects", "admin", "account".
    pub section: &'static str,
    /// A message shown once after a redirect (`?done=`).
    pub notice: String,
}

impl Chrome {
    /// Chrome for pages rendered without a request context (errors).
    pub fn bare() -> Chrome {
        Chrome::default()
    }

    pub async fn new(state: &AppState, viewer: &Viewer, section: &'static str) -> UiResult<Chrome> {
        let cfg = state.config.current().await?;
        let notice = viewer
            .here
            .split_once('?')
            .map(|(_, q)| q)
            .and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "done")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_default();
        Ok(Chrome {
            username: viewer
                .user
                .as_ref()
                .map(|u| u.username.clone())
                .unwrap_or_default(),
            signed_in: viewer.signed_in(),
            sysadmin: viewer.subject.is_sysadmin(),
            csrf: viewer.csrf.clone(),
            banner: banner_text(&cfg.banner_message),
            read_only: cfg.read_only,
            section,
            notice,
        })
    }
}

/// Harbor stores the banner as JSON (`{"message":…,"type":…}`); plain
/// text is shown as it is.
pub fn banner_text(raw: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(v) if v.get("message").is_some() => v["message"].as_str().unwrap_or("").to_owned(),
        _ => raw.to_owned(),
    }
}

/// Renders a template as a 200 page (with the pre-session cookie if the
/// viewer minted one).
pub fn page<T: askama::Template>(viewer: &Viewer, t: &T) -> UiResult {
    Ok(viewer.finish((StatusCode::OK, Html(t.render()?)).into_response()))
}

/// Renders with another status (a form shown again with its errors).
pub fn page_status<T: askama::Template>(viewer: &Viewer, status: StatusCode, t: &T) -> UiResult {
    Ok(viewer.finish((status, Html(t.render()?)).into_response()))
}

/// After a successful form: back to `to` with a one-line notice.
pub fn done(to: &str, notice: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("done", notice)
        .finish();
    axum::response::Redirect::to(&format!("{to}{sep}{q}")).into_response()
}

/// Query parameters of a list page.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub page: Option<u64>,
}

pub const PAGE_SIZE: u64 = 25;

impl ListQuery {
    pub fn page(&self) -> Page {
        Page::new(self.page.unwrap_or(1).max(1), PAGE_SIZE)
    }
    /// The search term, trimmed; empty for none.
    pub fn term(&self) -> &str {
        self.q.trim()
    }
}

/// Previous/next links of a paged list.
#[derive(Clone, Debug, Default)]
pub struct Pager {
    pub summary: String,
    pub prev: String,
    pub next: String,
}

impl Pager {
    /// `base` is the list's path with its other query parameters (the
    /// page number is appended).
    pub fn new(base: &str, page: Page, shown: usize, total: i64) -> Pager {
        let sep = if base.contains('?') { '&' } else { '?' };
        let first = (page.number - 1) * page.size + 1;
        let last = (first + shown as u64).saturating_sub(1);
        Pager {
            summary: if total == 0 {
                "No items".into()
            } else if shown == 0 {
                format!("Past the end of {total} items")
            } else {
                format!("{first}–{last} of {total}")
            },
            prev: if page.number > 1 {
                let last_page = (total.max(1) as u64).div_ceil(page.size);
                format!("{base}{sep}page={}", (page.number - 1).min(last_page))
            } else {
                String::new()
            },
            next: if (last as i64) < total {
                format!("{base}{sep}page={}", page.number + 1)
            } else {
                String::new()
            },
        }
    }
}

/// A URL with query parameters, each value encoded.
pub fn url(path: &str, params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        s.append_pair(k, v);
    }
    let q = s.finish();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    }
}

/// The registry's host (and port) as clients must type it.
pub fn registry_host(s: &AppState, headers: &axum::http::HeaderMap) -> String {
    let base = s.settings.base_url(headers);
    base.split_once("://")
        .map(|(_, h)| h)
        .unwrap_or(&base)
        .trim_end_matches('/')
        .to_owned()
}

/// 1536 → "1.50 KiB".
pub fn bytes(n: i64) -> String {
    if n < 0 {
        return "unlimited".into();
    }
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[i])
    }
}

/// "2026-12-03 10:20:01 UTC"; "never" for none.
pub fn time(ms: Option<Millis>) -> String {
    match ms {
        None | Some(0) => "never".into(),
        Some(ms) => {
            let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
    }
}

/// A quota as a bar: used, limit, and a percentage for `<meter>`.
#[derive(Clone, Debug, Default)]
pub struct Quota {
    pub used: i64,
    pub limit: i64,
    pub used_text: String,
    pub limit_text: String,
    /// 0–100; 0 when unlimited.
    pub percent: u32,
    pub unlimited: bool,
}

impl Quota {
    pub fn new(used: i64, limit: i64) -> Quota {
        let unlimited = limit < 0;
        let percent = if unlimited || limit == 0 {
            0
        } else {
            ((used as f64 / limit as f64) * 100.0).clamp(0.0, 100.0) as u32
        };
        Quota {
            used,
            limit,
            used_text: bytes(used),
            limit_text: if unlimited {
                "unlimited".into()
            } else {
                bytes(limit)
            },
            percent,
            unlimited,
        }
    }
}

/// A short digest for tables: `sha256:0123456789ab`.
pub fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", &hex[..hex.len().min(12)]),
        None => d.to_owned(),
    }
}

/// Harbor's role names, for humans.
pub fn role_label(id: i64) -> &'static str {
    match id {
        1 => "Project Admin",
        2 => "Developer",
        3 => "Guest",
        4 => "Maintainer",
        5 => "Limited Guest",
        _ => "",
    }
}

/// Convenience for handlers: a missing-sign-in error when anonymous.
pub fn must_sign_in(viewer: &Viewer) -> Result<(), UiError> {
    viewer.require().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(-1), "unlimited");
        assert_eq!(time(None), "never");
        assert_eq!(time(Some(1_000)), "1970-01-01 00:00:01 UTC");
        assert_eq!(Quota::new(50, 100).percent, 50);
        assert_eq!(Quota::new(500, 100).percent, 100);
        assert!(Quota::new(5, -1).unlimited);
        assert_eq!(
            short_digest("sha256:0123456789abcdef"),
            "sha256:0123456789ab"
        );
        assert_eq!(url("/p", &[("q", "a b&c"), ("x", "")]), "/p?q=a+b%26c");
        let p = Pager::new("/l?q=x", Page::new(2, 25), 25, 60);
        assert_eq!(
            (p.summary.as_str(), p.prev.as_str(), p.next.as_str()),
            ("26–50 of 60", "/l?q=x&page=1", "/l?q=x&page=3")
        );
        let p = Pager::new("/l", Page::new(2, 25), 0, 2);
        assert_eq!(
            (p.summary.as_str(), p.prev.as_str(), p.next.as_str()),
            ("Past the end of 2 items", "/l?page=1", "")
        );
        assert_eq!(banner_text(r#"{"message":"hi","type":"info"}"#), "hi");
        assert_eq!(banner_text("plain"), "plain");
    }
}
