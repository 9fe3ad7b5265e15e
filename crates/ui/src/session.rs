//! Who is looking: the portal's session cookie (the same `sid` session as
//! Harbor's `/c/login`) turned into a [`Viewer`], and [`Posted`], the only
//! way a page handler receives a form — it refuses any form whose `csrf`
//! field does not match the session's token (or, before sign-in, the
//! pre-session cookie), or whose `Origin` is foreign.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use berth_api::auth::{constant_time_eq, cookie, same_origin, SESSION_COOKIE};
use berth_api::AppState;
use berth_core::access::Subject;
use berth_core::model::User;
use serde::de::DeserializeOwned;

use crate::error::UiError;

/// The cookie that carries the CSRF token of forms shown before sign-in
/// (sign in, sign up): double-submit, HttpOnly, SameSite.
pub const PRE_COOKIE: &str = "berth_pre";

/// The request's principal and what the page chrome needs about it.
#[derive(Clone)]
pub struct Viewer {
    pub subject: Subject,
    pub user: Option<User>,
    /// The token every form must carry.
    pub csrf: String,
    /// The session cookie's value, for sign-out.
    pub sid: Option<String>,
    /// A pre-session token was minted for this request and must be set.
    pub new_pre_cookie: bool,
    pub secure: bool,
    /// The path and query asked for, to come back to after sign-in.
    pub here: String,
}

impl Viewer {
    pub fn signed_in(&self) -> bool {
        self.user.is_some()
    }

    /// The viewer, or a redirect to the sign-in page.
    pub fn require(&self) -> Result<&User, UiError> {
        self.user.as_ref().ok_or_else(|| UiError::SignIn {
            next: self.here.clone(),
        })
    }

    /// Adds the pre-session cookie to `res` when it was minted here.
    pub fn finish(&self, mut res: Response) -> Response {
        if self.new_pre_cookie {
            let c =
                berth_api::service::session_cookie(PRE_COOKIE, &self.csrf, true, self.secure, None);
            if let Ok(v) = HeaderValue::from_str(&c) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        res
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        Viewer::of(
            &parts.headers,
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/"),
            state,
        )
        .await
    }
}

impl Viewer {
    pub async fn of(headers: &HeaderMap, here: &str, state: &AppState) -> Result<Viewer, UiError> {
        let secure = berth_api::service::is_https(state, headers);
        let mut viewer = Viewer {
            subject: Subject::anonymous(),
            user: None,
            csrf: String::new(),
            sid: None,
            new_pre_cookie: false,
            secure,
            here: here.to_owned(),
        };
        if let Some(sid) = cookie(headers, SESSION_COOKIE) {
            if let Some((subject, csrf)) = state.identity.session(&sid).await? {
                viewer.user = Some(state.users.current(&subject).await?);
                viewer.subject = subject;
                viewer.csrf = csrf;
                viewer.sid = Some(sid);
                return Ok(viewer);
            }
        }
        match cookie(headers, PRE_COOKIE)
            .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            Some(pre) => viewer.csrf = pre,
            None => {
                viewer.csrf = berth_core::identity::random_secret(32);
                viewer.new_pre_cookie = true;
            }
        }
        Ok(viewer)
    }
}

/// A submitted form, CSRF-checked: `value` parsed from the fields, `pairs`
/// all fields in order (for repeated ones such as checklists).
pub struct Posted<T> {
    pub viewer: Viewer,
    pub value: T,
    pub pairs: Vec<(String, String)>,
}

impl<T> Posted<T> {
    /// Every value of a repeated field.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// The largest form the portal accepts.
const MAX_FORM: usize = 256 * 1024;

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let body = axum::body::to_bytes(body, MAX_FORM)
            .await
            .map_err(|_| UiError::BadRequest("the form is too large".into()).into_response())?;
        Posted::parse(viewer, &parts.headers, &body).map_err(IntoResponse::into_response)
    }
}

impl<T: DeserializeOwned> Posted<T> {
    fn parse(viewer: Viewer, headers: &HeaderMap, body: &Bytes) -> Result<Self, UiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let sent = pairs
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        // Before sign-in the token is the pre-session cookie, which a
        // request without it (a freshly minted one) cannot match.
        if viewer.new_pre_cookie
            || sent.is_empty()
            || !constant_time_eq(sent.as_bytes(), viewer.csrf.as_bytes())
            || !same_origin(headers)
        {
            return Err(UiError::Csrf);
        }
        // Fields the struct does not name (csrf, checklists) are ignored.
        let value: T = serde_urlencoded::from_bytes(body).map_err(|e| {
            UiError::BadRequest(format!("the form is incomplete or malformed: {e}"))
        })?;
        Ok(Posted {
            viewer,
            value,
            pairs,
        })
    }
}
