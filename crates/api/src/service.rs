//! The token service (`GET /service/token`, Docker's token authentication
//! as Harbor serves it) and the portal's sign-in (`POST /c/login`,
//! `GET /c/log_out`).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_core::access::Subject;
use berth_core::tokens::{Scope, SERVICE};
use berth_core::CoreError;
use serde_json::json;

use crate::auth::{cookie, credentials, Credentials, CSRF_HEADER, SESSION_COOKIE};
use crate::harbor::error::{ApiError, HarborCode};
use crate::timefmt::iso;
use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/service/token", get(token))
        .route("/c/login", post(login))
        .route("/c/log_out", get(logout).post(logout))
        .with_state(state)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// `GET /service/token?service=harbor-registry&scope=…[&scope=…]`, with
/// Basic credentials or none. Each scope lists only the actions the caller
/// holds; an unknown project grants nothing.
async fn token(State(s): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let params: Vec<(String, String)> =
        form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
        if service != SERVICE {
            return ApiError::bad_request(format!(
                "unknown service {service:?}; this registry is {SERVICE:?}"
            ))
            .into_response();
        }
    }
    let mut scopes = vec![];
    for (_, v) in params.iter().filter(|(k, _)| k == "scope") {
        // Several scopes may also come space-separated in one parameter.
        for one in v.split(' ').filter(|x| !x.is_empty()) {
            match Scope::parse(one) {
                Ok(scope) => scopes.push(scope),
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
    }
    let subject = match credentials(&headers) {
        Credentials::None => {
            if scopes.is_empty() {
                return unauthorized();
            }
            Subject::anonymous()
        }
        Credentials::Basic { username, password } => {
            match s.identity.authenticate_basic(&username, &password).await {
                Ok(subject) => subject,
                Err(CoreError::Unauthenticated) => return unauthorized(),
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
        Credentials::Bearer(_) | Credentials::Invalid => return unauthorized(),
    };
    match s.identity.issue_token(&subject, &scopes).await {
        Ok(t) => json_response(
            StatusCode::OK,
            json!({
                // OAuth2 clients read `access_token`, Docker reads either.
                "access_token": t.token,
                "token": t.token,
                "expires_in": t.expires_in,
                "issued_at": iso(t.issued_at),
            }),
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn unauthorized() -> Response {
    let mut res = ApiError::Raw(
        HarborCode::Unauthorized,
        "unauthorized: authentication required".into(),
    )
    .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"harbor\""),
    );
    res
}

pub fn session_cookie(
    name: &str,
    value: &str,
    http_only: bool,
    secure: bool,
    max_age: Option<i64>,
) -> String {
    let mut c = format!("{name}={value}; Path=/; SameSite=Lax");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

pub fn is_https(s: &AppState, headers: &HeaderMap) -> bool {
    s.settings.base_url(headers).starts_with("https://")
}

/// `POST /c/login` with form fields `principal` and `password`: a session
/// cookie (HttpOnly, SameSite) and the CSRF token (header and cookie) that
/// writes made with the cookie must echo in `X-Harbor-CSRF-Token`.
async fn login(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if body.len() > 64 * 1024 {
        return ApiError::Raw(
            HarborCode::RequestEntityTooLarge,
            "the request body is too large".into(),
        )
        .into_response();
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (Some(principal), Some(password)) = (field("principal"), field("password")) else {
        return ApiError::bad_request("principal and password are required").into_response();
    };
    match s.identity.login(&principal, &password).await {
        Ok((token, csrf, _)) => {
            let secure = is_https(&s, &headers);
            let timeout = s
                .config
                .current()
                .await
                .map(|c| c.session_timeout * 60)
                .unwrap_or(3600);
            let mut res = StatusCode::OK.into_response();
            let h = res.headers_mut();
            for c in [
                session_cookie(SESSION_COOKIE, &token, true, secure, Some(timeout)),
                session_cookie("__csrf", &csrf, false, secure, Some(timeout)),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    h.append(header::SET_COOKIE, v);
                }
            }
            if let Ok(v) = HeaderValue::from_str(&csrf) {
                h.insert(CSRF_HEADER, v);
            }
            res
        }
        Err(CoreError::Unauthenticated) => ApiError::Raw(
            HarborCode::Unauthorized,
            "invalid username or password".into(),
        )
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `GET /c/log_out`: ends the session and clears the cookies.
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let subject = match s.identity.session(&token).await {
            Ok(Some((subject, _))) => subject,
            _ => Subject::anonymous(),
        };
        if let Err(e) = s.identity.logout(&token, &subject).await {
            return ApiError::from(e).into_response();
        }
    }
    let secure = is_https(&s, &headers);
    let mut res = StatusCode::OK.into_response();
    for c in [
        session_cookie(SESSION_COOKIE, "", true, secure, Some(0)),
        session_cookie("__csrf", "", false, secure, Some(0)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}
