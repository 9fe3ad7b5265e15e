//! Berth's web portal: server-rendered HTML (askama templates, compiled
//! into the binary and escaped by default), hand-written CSS and a little
//! progressive-enhancement JavaScript. Pages call the same domain services
//! as the Harbor API handlers (`berth_core::*` through `AppState`), so every
//! rule — permissions above all — is decided once, in the domain.
//!
//! Layout: `session` turns the portal's cookie into a [`session::Viewer`]
//! and checks every form's CSRF token ([`session::Posted`]); `view` holds
//! what templates share (the page chrome, pagers, formatting); `pages/*`
//! are thin handlers, one module per screen group; `error` renders domain
//! errors as pages.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use berth_api::AppState;

pub mod error;
pub mod pages;
pub mod session;
pub mod view;

/// Where the portal lives, as in Harbor.
pub const BASE: &str = "/harbor";

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");

/// The Content-Security-Policy of every page: nothing inline, nothing
/// foreign, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/harbor/projects") }))
        .route(
            "/harbor",
            get(|| async { Redirect::to("/harbor/projects") }),
        )
        .route(
            "/harbor/",
            get(|| async { Redirect::to("/harbor/projects") }),
        )
        .route(
            "/harbor/static/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/harbor/static/app.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .merge(pages::auth::routes())
        .merge(pages::projects::routes())
        .merge(pages::repositories::routes())
        .merge(pages::members::routes())
        .merge(pages::robots::routes())
        .merge(pages::logs::routes())
        .merge(pages::configuration::routes())
        .merge(pages::admin::routes())
        .merge(pages::policy::routes())
        .merge(pages::storage_requests::routes())
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
