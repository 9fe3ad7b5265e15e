//! Authentication at the edge: turns the request's credentials into a
//! [`Subject`] before any handler runs — Basic (users and robots) on both
//! surfaces, registry tokens (Bearer) on `/v2`, the portal's session cookie
//! (with CSRF protection) on `/api/v2.0`. Decisions about what the subject
//! may do are made in `berth_core::access`, never here.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use berth_core::access::Subject;
use berth_core::CoreError;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, Method};

use crate::AppState;

/// The portal's session cookie.
pub const SESSION_COOKIE: &str = "sid";
/// The header a cookie-authenticated request must echo on writes.
pub const CSRF_HEADER: &str = "x-harbor-csrf-token";

/// Credentials found in an `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic {
        username: String,
        password: String,
    },
    Bearer(String),
    /// A scheme Berth does not accept or a malformed header.
    Invalid,
}

pub fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Credentials::None;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Invalid;
    };
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Credentials::Invalid;
    };
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Credentials::Bearer(rest.to_owned());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Credentials::Invalid;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
        return Credentials::Invalid;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return Credentials::Invalid;
    };
    match text.split_once(':') {
        Some((u, p)) if !u.is_empty() => Credentials::Basic {
            username: u.to_owned(),
            password: p.to_owned(),
        },
        _ => Credentials::Invalid,
    }
}

/// The value of cookie `name`, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The subject behind Basic or Bearer credentials (Bearer only where
/// `bearer` is allowed).
async fn from_header(
    state: &AppState,
    creds: Credentials,
    bearer: bool,
) -> Result<Option<Subject>, CoreError> {
    match creds {
        Credentials::None => Ok(None),
        Credentials::Basic { username, password } => state
            .identity
            .authenticate_basic(&username, &password)
            .await
            .map(Some),
        Credentials::Bearer(token) if bearer => {
            state.identity.authenticate_bearer(&token).await.map(Some)
        }
        Credentials::Bearer(_) | Credentials::Invalid => Err(CoreError::Unauthenticated),
    }
}

/// Axum middleware for the OCI surface: Basic or a registry token. A
/// request without credentials is always challenged, even for a public
/// repository, as Harbor does: anonymous pulls go through an (anonymous)
/// registry token.
pub async fn oci_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let creds = credentials(req.headers());
    match from_header(&state, creds, true).await {
        Ok(Some(subject)) => {
            req.extensions_mut().insert(subject);
            next.run(req).await
        }
        Ok(None) => crate::oci::error::OciError::from(CoreError::Unauthenticated).into_response(),
        Err(e) => crate::oci::error::OciError::from(e).into_response(),
    }
}

/// Axum middleware for Harbor's API: Basic, or the portal's session
/// cookie — which on writes also needs the CSRF header and, if the browser
/// says where it comes from, a same-origin `Origin`.
pub async fn harbor_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let creds = credentials(req.headers());
    let subject = match from_header(&state, creds, false).await {
        Ok(Some(s)) => s,
        Ok(None) => match cookie(req.headers(), SESSION_COOKIE) {
            Some(token) => match state.identity.session(&token).await {
                Ok(Some((subject, csrf))) => {
                    if is_write(req.method()) {
                        let header_ok = req
                            .headers()
                            .get(CSRF_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| constant_time_eq(v.as_bytes(), csrf.as_bytes()));
                        if !header_ok || !same_origin(req.headers()) {
                            return crate::harbor::error::ApiError::Raw(
                                crate::harbor::error::HarborCode::Forbidden,
                                "CSRF token invalid".into(),
                            )
                            .into_response();
                        }
                    }
                    req.extensions_mut().insert(SessionToken(token));
                    subject
                }
                Ok(None) => Subject::anonymous(),
                Err(e) => return crate::harbor::error::ApiError::from(e).into_response(),
            },
            None => Subject::anonymous(),
        },
        Err(e) => return crate::harbor::error::ApiError::from(e).into_response(),
    };
    req.extensions_mut().insert(subject);
    next.run(req).await
}

/// The session a request was authenticated with, for sign-out.
#[derive(Clone, Debug)]
pub struct SessionToken(pub String);

/// A request's `Origin`, when present, must name the host it was sent to.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    !host.is_empty() && origin_host.trim_end_matches('/') == host
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn parses_credentials() {
        assert_eq!(credentials(&headers(None)), Credentials::None);
        assert_eq!(
            credentials(&headers(Some("Basic YWRtaW46SGFyYm9yMTIzNDU="))),
            Credentials::Basic {
                username: "admin".into(),
                password: "Harbor12345".into()
            }
        );
        let enc = base64::engine::general_purpose::STANDARD.encode("u:a:b");
        assert_eq!(
            credentials(&headers(Some(&format!("basic {enc}")))),
            Credentials::Basic {
                username: "u".into(),
                password: "a:b".into()
            }
        );
        assert_eq!(
            credentials(&headers(Some("Bearer abc"))),
            Credentials::Bearer("abc".into())
        );
        assert_eq!(
            credentials(&headers(Some("Basic !!!"))),
            Credentials::Invalid
        );
        assert_eq!(
            credentials(&headers(Some("Digest x"))),
            Credentials::Invalid
        );
        assert_eq!(credentials(&headers(Some("Basic"))), Credentials::Invalid);
    }

    #[test]
    fn cookies_and_origins() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=1; sid=xyz; b=2"));
        assert_eq!(cookie(&h, "sid").as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
        h.insert(
            http::header::HOST,
            HeaderValue::from_static("reg.example:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            http::header::ORIGIN,
            HeaderValue::from_static("http://reg.example:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            http::header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        assert!(
            constant_time_eq(b"abc", b"abc")
                && !constant_time_eq(b"abc", b"abd")
                && !constant_time_eq(b"a", b"ab")
        );
    }
}
