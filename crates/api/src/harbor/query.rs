//! Harbor's list parameters: `q` (`k=v`, `k=~v`, `k=[a~b]`, `k={a b}`,
//! `k=(a b)`, comma separated), `sort` (`a,-b`), `page`/`page_size`, and
//! the `X-Total-Count`/`Link` headers of a page. Keys are checked against a
//! list per resource; anything else is a 400.

use berth_core::query::{Page, Sort, TextMatch};
use http::{HeaderValue, Response};

use super::error::ApiError;

/// One term of `q`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Exact(String),
    Fuzzy(String),
    Range(Option<String>, Option<String>),
    AnyOf(Vec<String>),
    AllOf(Vec<String>),
}

impl Term {
    /// The term as a text condition, if it is one.
    pub fn text(&self, key: &str) -> Result<TextMatch, ApiError> {
        match self {
            Term::Exact(v) => Ok(TextMatch::Exact(v.clone())),
            Term::Fuzzy(v) => Ok(TextMatch::Fuzzy(v.clone())),
            _ => Err(ApiError::bad_request(format!(
                "query key {key} supports only k=v and k=~v"
            ))),
        }
    }

    pub fn boolean(&self, key: &str) -> Result<bool, ApiError> {
        match self {
            Term::Exact(v) if v == "true" || v == "1" => Ok(true),
            Term::Exact(v) if v == "false" || v == "0" => Ok(false),
            _ => Err(ApiError::bad_request(format!(
                "query key {key} must be true or false"
            ))),
        }
    }
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_owned();
        }
    }
    s.to_owned()
}

/// Parses `q` into `(key, term)` pairs, allowing only `allowed` keys.
pub fn parse_q(q: Option<&str>, allowed: &[&str]) -> Result<Vec<(String, Term)>, ApiError> {
    let Some(q) = q.filter(|q| !q.trim().is_empty()) else {
        return Ok(vec![]);
    };
    if q.len() > 1024 {
        return Err(ApiError::bad_request("the query string is too long"));
    }
    let mut out = vec![];
    for part in split_terms(q) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, value) = part.split_once('=').ok_or_else(|| {
            ApiError::bad_request(format!("invalid query term {part:?}: expected key=value"))
        })?;
        let key = key.trim();
        if !allowed.contains(&key) {
            return Err(ApiError::bad_request(format!(
                "unsupported query key {key:?}"
            )));
        }
        let term = if let Some(v) = value.strip_prefix('~') {
            Term::Fuzzy(unquote(v))
        } else if value.starts_with('[') && value.ends_with(']') && value.len() >= 2 {
            let inner = &value[1..value.len() - 1];
            let (a, b) = inner.split_once('~').ok_or_else(|| {
                ApiError::bad_request(format!("invalid range for {key}: expected [min~max]"))
            })?;
            let a = unquote(a);
            let b = unquote(b);
            Term::Range((!a.is_empty()).then_some(a), (!b.is_empty()).then_some(b))
        } else if value.starts_with('{') && value.ends_with('}') && value.len() >= 2 {
            Term::AnyOf(
                value[1..value.len() - 1]
                    .split_whitespace()
                    .map(unquote)
                    .collect(),
            )
        } else if value.starts_with('(') && value.ends_with(')') && value.len() >= 2 {
            Term::AllOf(
                value[1..value.len() - 1]
                    .split_whitespace()
                    .map(unquote)
                    .collect(),
            )
        } else {
            Term::Exact(unquote(value))
        };
        out.push((key.to_owned(), term));
    }
    Ok(out)
}

/// Splits on commas that are not inside brackets or quotes.
fn split_terms(q: &str) -> Vec<&str> {
    let mut parts = vec![];
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in q.char_indices() {
        match (quote, c) {
            (Some(qc), c) if c == qc => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{' | '(') => depth += 1,
            (None, ']' | '}' | ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&q[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&q[start..]);
    parts
}

/// Parses `sort` into typed fields with `field_of`.
pub fn parse_sort<F: Copy>(
    sort: Option<&str>,
    field_of: impl Fn(&str) -> Option<F>,
) -> Result<Vec<Sort<F>>, ApiError> {
    let Some(sort) = sort.filter(|s| !s.trim().is_empty()) else {
        return Ok(vec![]);
    };
    sort.split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (descending, name) = match s.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, s),
            };
            field_of(name)
                .map(|field| Sort { field, descending })
                .ok_or_else(|| ApiError::bad_request(format!("unsupported sort key {name:?}")))
        })
        .collect()
}

/// The list parameters every Harbor list endpoint takes.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListParams {
    pub q: Option<String>,
    pub sort: Option<String>,
    pub page: Option<String>,
    pub page_size: Option<String>,
}

impl ListParams {
    pub fn page(&self) -> Result<Page, ApiError> {
        let num = |v: &Option<String>, name: &str, default: u64| -> Result<u64, ApiError> {
            match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => match v.parse::<i64>() {
                    Ok(n) if n >= 0 => Ok(n as u64),
                    Ok(_) => Err(ApiError::bad_request(format!(
                        "{name} must not be negative"
                    ))),
                    // Absurdly large numbers are clamped, not refused.
                    Err(_) if v.bytes().all(|b| b.is_ascii_digit()) => Ok(u64::MAX),
                    Err(_) => Err(ApiError::bad_request(format!("{name} must be an integer"))),
                },
            }
        };
        Ok(Page::new(
            num(&self.page, "page", 1)?,
            num(&self.page_size, "page_size", 10)?,
        ))
    }
}

/// Adds `X-Total-Count` and a `Link` header with relative `prev`/`next`
/// URLs that keep the request's other query parameters.
pub fn paginate<B>(
    res: &mut Response<B>,
    path: &str,
    raw_query: Option<&str>,
    page: Page,
    total: i64,
) {
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        res.headers_mut().insert("x-total-count", v);
    }
    let others: Vec<(String, String)> = form_urlencoded::parse(raw_query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k != "page" && k != "page_size")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let url = |n: u64| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("page", &n.to_string());
        s.append_pair("page_size", &page.size.to_string());
        for (k, v) in &others {
            s.append_pair(k, v);
        }
        format!("<{path}?{}>", s.finish())
    };
    let mut links = vec![];
    if page.number > 1 && total > 0 {
        links.push(format!("{}; rel=\"prev\"", url(page.number - 1)));
    }
    if (page.number.saturating_mul(page.size)) < total.max(0) as u64 {
        links.push(format!("{}; rel=\"next\"", url(page.number + 1)));
    }
    if !links.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&links.join(" , ")) {
            res.headers_mut().insert("link", v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_terms() {
        let t = parse_q(
            Some("name=~foo,public=true,tags=[1~5],id={1 2},x=(a b)"),
            &["name", "public", "tags", "id", "x"],
        )
        .unwrap();
        assert_eq!(t[0], ("name".into(), Term::Fuzzy("foo".into())));
        assert_eq!(t[1], ("public".into(), Term::Exact("true".into())));
        assert_eq!(
            t[2],
            (
                "tags".into(),
                Term::Range(Some("1".into()), Some("5".into()))
            )
        );
        assert_eq!(
            t[3],
            ("id".into(), Term::AnyOf(vec!["1".into(), "2".into()]))
        );
        assert_eq!(
            t[4],
            ("x".into(), Term::AllOf(vec!["a".into(), "b".into()]))
        );
        assert!(parse_q(Some("password=~x"), &["name"]).is_err());
        assert!(parse_q(Some("salt=~x"), &["name"]).is_err());
        assert!(parse_q(Some("name"), &["name"]).is_err());
        assert_eq!(
            parse_q(Some("name='a,b'"), &["name"]).unwrap()[0].1,
            Term::Exact("a,b".into())
        );
        // injection text is just a value
        assert_eq!(
            parse_q(Some("name=~;select pg_sleep(5)--"), &["name"]).unwrap()[0].1,
            Term::Fuzzy(";select pg_sleep(5)--".into())
        );
    }

    #[test]
    fn sorting_and_pages() {
        let s = parse_sort(Some("name,-creation_time"), |f| match f {
            "name" => Some(1),
            "creation_time" => Some(2),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            s,
            vec![
                Sort {
                    field: 1,
                    descending: false
                },
                Sort {
                    field: 2,
                    descending: true
                }
            ]
        );
        assert!(parse_sort(Some("name;drop table"), |_| None::<u8>).is_err());
        let p = ListParams {
            page_size: Some("1000000000".into()),
            ..Default::default()
        }
        .page()
        .unwrap();
        assert_eq!(p.size, 100);
        let p = ListParams {
            page: Some("99999999999999999999999".into()),
            ..Default::default()
        }
        .page()
        .unwrap();
        assert_eq!(p.number, u64::MAX);
        assert!(ListParams {
            page: Some("x".into()),
            ..Default::default()
        }
        .page()
        .is_err());
    }

    #[test]
    fn link_headers() {
        let mut res = Response::new(());
        paginate(
            &mut res,
            "/api/v2.0/projects",
            Some("q=name%3D~a&page=2"),
            Page::new(2, 10),
            35,
        );
        assert_eq!(res.headers()["x-total-count"], "35");
        let link = res.headers()["link"].to_str().unwrap();
        assert!(
            link.contains("</api/v2.0/projects?page=1&page_size=10&q=name%3D%7Ea>; rel=\"prev\""),
            "{link}"
        );
        assert!(link.contains("page=3"), "{link}");
    }
}
