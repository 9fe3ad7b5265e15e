//! Errors of the portal: a domain error rendered as a page with the
//! status the API would give, a redirect to sign in, or a refused form.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use berth_core::CoreError;

use crate::view::Chrome;

#[derive(Debug)]
pub enum UiError {
    Core(CoreError),
    /// Not signed in: go to the sign-in page and come back to `next`.
    SignIn {
        next: String,
    },
    /// A form without a valid CSRF token or from another origin.
    Csrf,
    BadRequest(String),
}

pub type UiResult<T = Response> = Result<T, UiError>;

/// A refusal the user can act on (a bad name, an unknown user, a role
/// that cannot be given, a right they lack) as the status to answer with
/// and the message to show by the form; anything else stays an error page.
pub(crate) fn form_error(e: CoreError) -> Result<(StatusCode, String), UiError> {
    let status = match &e {
        CoreError::BadRequest(_) => StatusCode::BAD_REQUEST,
        CoreError::Conflict(_) => StatusCode::CONFLICT,
        CoreError::Denied(_) => StatusCode::FORBIDDEN,
        CoreError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => return Err(e.into()),
    };
    let message = match e {
        // Some callers already say "… not found"; do not say it twice.
        CoreError::NotFound(m) if m.ends_with("not found") => m,
        e => e.to_string(),
    };
    Ok((status, message))
}

impl From<CoreError> for UiError {
    fn from(e: CoreError) -> Self {
        UiError::Core(e)
    }
}

impl From<askama::Error> for UiError {
    fn from(e: askama::Error) -> Self {
        UiError::Core(CoreError::internal(e))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    title: String,
    message: String,
}

impl UiError {
    fn parts(&self) -> (StatusCode, String, String) {
        match self {
            UiError::Core(CoreError::Internal(detail)) => {
                tracing::error!(error = %detail, "internal error in the portal");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong".into(), "An internal error occurred; the server log has the details.".into())
            }
            UiError::Core(CoreError::Unauthenticated) => {
                (StatusCode::UNAUTHORIZED, "Sign in required".into(), "Sign in to see this page.".into())
            }
            UiError::Core(e) => {
                let code = berth_api::harbor::error::code_of(e);
                let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let title = match status.as_u16() {
                    403 => "Not allowed",
                    404 => "Not found",
                    409 => "Conflict",
                    412 => "Not possible",
                    _ => "Could not do that",
                };
                (status, title.into(), e.to_string())
            }
            UiError::Csrf => (StatusCode::FORBIDDEN, "Form expired".into(), "The form was not sent from this portal or your session changed. Go back, reload the page and try again.".into()),
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Could not do that".into(), m.clone()),
            UiError::SignIn { .. } => unreachable!("handled in into_response"),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        if let UiError::SignIn { next } = &self {
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish();
            return Redirect::to(&format!("/harbor/sign-in?{q}")).into_response();
        }
        let (status, title, message) = self.parts();
        let page = ErrorPage {
            chrome: Chrome::bare(),
            status: status.as_u16(),
            title,
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, "error").into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_banner_are_escaped() {
        let hostile = r#"<script>alert(1)</script><img src=x onerror="alert(2)">'&"#;
        let page = ErrorPage {
            chrome: Chrome {
                banner: hostile.into(),
                notice: hostile.into(),
                username: hostile.into(),
                signed_in: true,
                ..Chrome::bare()
            },
            status: 400,
            title: hostile.into(),
            message: hostile.into(),
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("onerror=\"alert"), "{html}");
    }
}
