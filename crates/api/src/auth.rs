//! Authentication at the edge: turns the request's credentials into a
//! [`Subject`] before any handler runs. Decisions about what the subject may
//! do are made in `berth_core::access`, never here.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use berth_core::access::Subject;
use berth_core::CoreError;
use http::header::AUTHORIZATION;

use crate::AppState;

/// Credentials found on a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic {
        username: String,
        password: String,
    },
    /// A scheme Berth does not accept (yet) or a malformed header.
    Invalid,
}

pub fn credentials(req: &Request) -> Credentials {
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return Credentials::None;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Invalid;
    };
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Credentials::Invalid;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Credentials::Invalid;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
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

/// Resolves the subject of a request's credentials, or the error to answer with.
pub async fn subject_of(state: &AppState, creds: Credentials) -> Result<Subject, CoreError> {
    match creds {
        Credentials::None => Ok(Subject::anonymous()),
        Credentials::Basic { username, password } => {
            state
                .identity
                .authenticate_basic(&username, &password)
                .await
        }
        Credentials::Invalid => Err(CoreError::Unauthenticated),
    }
}

/// Middleware: puts the request's [`Subject`] into its extensions, or
/// answers 401 in the surface's own error format (`render`).
pub async fn authenticate<E: IntoResponse>(
    state: &AppState,
    mut req: Request,
    next: Next,
    render: impl FnOnce(CoreError) -> E,
) -> Response {
    let creds = credentials(&req);
    match subject_of(state, creds).await {
        Ok(subject) => {
            req.extensions_mut().insert(subject);
            next.run(req).await
        }
        Err(e) => render(e).into_response(),
    }
}

/// Axum middleware for the OCI surface.
pub async fn oci_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    authenticate(&state, req, next, crate::oci::error::OciError::from).await
}

/// Axum middleware for Harbor's API.
pub async fn harbor_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    authenticate(&state, req, next, crate::harbor::error::ApiError::from).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: Option<&str>) -> Request {
        let mut b = http::Request::builder().uri("/");
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn parses_basic() {
        assert_eq!(credentials(&req(None)), Credentials::None);
        assert_eq!(
            credentials(&req(Some("Basic YWRtaW46SGFyYm9yMTIzNDU="))),
            Credentials::Basic {
                username: "admin".into(),
                password: "Harbor12345".into()
            }
        );
        // password may contain ':'
        let enc = base64::engine::general_purpose::STANDARD.encode("u:a:b");
        assert_eq!(
            credentials(&req(Some(&format!("basic {enc}")))),
            Credentials::Basic {
                username: "u".into(),
                password: "a:b".into()
            }
        );
        assert_eq!(credentials(&req(Some("Basic !!!"))), Credentials::Invalid);
        assert_eq!(credentials(&req(Some("Bearer abc"))), Credentials::Invalid);
        assert_eq!(credentials(&req(Some("Basic"))), Credentials::Invalid);
    }
}
