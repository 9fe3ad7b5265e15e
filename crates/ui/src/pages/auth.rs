//! Sign in, sign up (when self-registration is on), sign out, change
//! password.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use berth_api::auth::SESSION_COOKIE;
use berth_api::service::session_cookie;
use berth_api::AppState;
use berth_core::users::{CreateUser, Origin};
use berth_core::CoreError;
use serde::Deserialize;

use crate::error::{UiError, UiResult};
use crate::session::{Posted, Viewer};
use crate::view::{done, page, page_status, Chrome};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/harbor/sign-in", get(sign_in_form).post(sign_in))
        .route("/harbor/sign-up", get(sign_up_form).post(sign_up))
        .route("/harbor/sign-out", axum::routing::post(sign_out))
        .route(
            "/harbor/account/password",
            get(password_form).post(change_password),
        )
}

/// Only local paths are followed after sign-in.
fn safe_next(next: &str) -> String {
    if next.starts_with("/harbor/") && !next.starts_with("//") && !next.contains('\\') {
        next.to_owned()
    } else {
        "/harbor/projects".to_owned()
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    next: String,
    username: String,
    error: String,
    self_registration: bool,
}

#[derive(Deserialize, Default)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

async fn sign_in_form(
    State(s): State<AppState>,
    viewer: Viewer,
    Query(q): Query<NextQuery>,
) -> UiResult {
    if viewer.signed_in() {
        return Ok(Redirect::to(&safe_next(&q.next)).into_response());
    }
    let cfg = s.config.current().await?;
    page(
        &viewer,
        &SignInPage {
            chrome: Chrome::new(&s, &viewer, "").await?,
            next: safe_next(&q.next),
            username: String::new(),
            error: String::new(),
            self_registration: cfg.self_registration,
        },
    )
}

#[derive(Deserialize)]
struct SignInForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

async fn sign_in(State(s): State<AppState>, form: Posted<SignInForm>) -> UiResult {
    let f = &form.value;
    match s.identity.login(f.username.trim(), &f.password).await {
        Ok((token, _csrf, _)) => {
            let timeout = s.config.current().await?.session_timeout * 60;
            let mut res = Redirect::to(&safe_next(&f.next)).into_response();
            let secure = form.viewer.secure;
            for c in [
                session_cookie(SESSION_COOKIE, &token, true, secure, Some(timeout)),
                session_cookie(crate::session::PRE_COOKIE, "", true, secure, Some(0)),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    res.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            Ok(res)
        }
        Err(CoreError::Unauthenticated) => {
            let cfg = s.config.current().await?;
            page_status(
                &form.viewer,
                StatusCode::UNAUTHORIZED,
                &SignInPage {
                    chrome: Chrome::new(&s, &form.viewer, "").await?,
                    next: safe_next(&f.next),
                    username: f.username.clone(),
                    error: "Invalid user name or password.".into(),
                    self_registration: cfg.self_registration,
                },
            )
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "sign_up.html")]
struct SignUpPage {
    chrome: Chrome,
    form: SignUpForm,
    error: String,
}

#[derive(Deserialize, Default, Clone)]
struct SignUpForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    realname: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn sign_up_form(State(s): State<AppState>, viewer: Viewer) -> UiResult {
    if !s.config.current().await?.self_registration {
        return Err(CoreError::NotFound("self-registration".into()).into());
    }
    page(
        &viewer,
        &SignUpPage {
            chrome: Chrome::new(&s, &viewer, "").await?,
            form: SignUpForm::default(),
            error: String::new(),
        },
    )
}

async fn sign_up(State(s): State<AppState>, form: Posted<SignUpForm>) -> UiResult {
    let f = form.value.clone();
    let again = |error: String| async {
        let mut shown = f.clone();
        shown.password.clear();
        shown.confirm.clear();
        page_status(
            &form.viewer,
            StatusCode::BAD_REQUEST,
            &SignUpPage {
                chrome: Chrome::new(&s, &form.viewer, "").await?,
                form: shown,
                error,
            },
        )
    };
    if f.password != f.confirm {
        return again("The passwords do not match.".into()).await;
    }
    let req = CreateUser {
        username: f.username.trim().to_owned(),
        email: f.email.trim().to_owned(),
        realname: f.realname.trim().to_owned(),
        comment: f.comment.clone(),
        password: f.password.clone(),
    };
    match s
        .users
        .create(&form.viewer.subject, req, Origin::Portal)
        .await
    {
        Ok(_) => Ok(done(
            "/harbor/sign-in",
            "Your account was created. Sign in with it.",
        )),
        Err(CoreError::BadRequest(m)) | Err(CoreError::Conflict(m)) => again(m).await,
        Err(e) => Err(e.into()),
    }
}

async fn sign_out(State(s): State<AppState>, form: Posted<serde::de::IgnoredAny>) -> UiResult {
    if let Some(sid) = &form.viewer.sid {
        s.identity.logout(sid, &form.viewer.subject).await?;
    }
    let mut res: Response = done("/harbor/sign-in", "You are signed out.");
    let c = session_cookie(SESSION_COOKIE, "", true, form.viewer.secure, Some(0));
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    chrome: Chrome,
    error: String,
}

async fn password_form(State(s): State<AppState>, viewer: Viewer) -> UiResult {
    viewer.require()?;
    page(
        &viewer,
        &PasswordPage {
            chrome: Chrome::new(&s, &viewer, "account").await?,
            error: String::new(),
        },
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    old_password: String,
    new_password: String,
    confirm: String,
}

async fn change_password(State(s): State<AppState>, form: Posted<PasswordForm>) -> UiResult {
    let user = form.viewer.require()?.clone();
    let f = &form.value;
    let error = if f.new_password != f.confirm {
        Some("The new passwords do not match.".to_owned())
    } else {
        match s
            .users
            .change_password(
                &form.viewer.subject,
                user.id,
                Some(&f.old_password),
                &f.new_password,
            )
            .await
        {
            Ok(()) => None,
            Err(CoreError::BadRequest(m)) | Err(CoreError::Denied(m)) => Some(m),
            Err(CoreError::Unauthenticated) => Some("The current password is wrong.".into()),
            Err(e) => return Err(UiError::Core(e)),
        }
    };
    match error {
        None => Ok(done(
            "/harbor/account/password",
            "Your password was changed.",
        )),
        Some(error) => page_status(
            &form.viewer,
            StatusCode::BAD_REQUEST,
            &PasswordPage {
                chrome: Chrome::new(&s, &form.viewer, "account").await?,
                error,
            },
        ),
    }
}
