//! The OCI Distribution API (spec v1.1) under `/v2`. Repository names span
//! several path segments, so `/v2/…` is parsed here into a [`Route`] (the
//! way distribution's router does) and dispatched by method. Every handler
//! names the spec section it implements.

pub mod error;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use berth_core::access::{Action, Subject};
use berth_core::ports::ByteStream;
use berth_core::registry::UploadStart;
use berth_core::CoreError;
use berth_oci::{media, Algorithm, Digest, Reference, RepoName, Tag};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

use crate::AppState;
use error::OciError;

type OciResult = Result<Response, OciError>;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/{*rest}", any(dispatch))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::oci_layer,
        ))
        .layer(middleware::map_response(api_version_header))
        .layer(middleware::from_fn_with_state(state.clone(), challenge))
        .with_state(state)
}

/// Answers every 401 with the challenge Docker's token flow expects:
/// `Bearer realm="<base>/service/token",service="harbor-registry",scope=…`
/// naming the scope the request needs; a request that came with Basic
/// credentials is challenged for Basic again, as Harbor does.
async fn challenge(
    State(state): State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let basic = matches!(
        crate::auth::credentials(req.headers()),
        crate::auth::Credentials::Basic { .. }
    );
    let realm = format!("{}/service/token", state.settings.base_url(req.headers()));
    let scope = scope_for(req.method(), req.uri().path());
    let mut res = next.run(req).await;
    if res.status() == StatusCode::UNAUTHORIZED {
        let value = if basic {
            "Basic realm=\"harbor\"".to_owned()
        } else {
            let mut v = format!(
                "Bearer realm=\"{realm}\",service=\"{}\"",
                berth_core::tokens::SERVICE
            );
            if let Some(scope) = scope {
                v.push_str(&format!(",scope=\"{scope}\""));
            }
            v
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    res
}

/// The token scope a `/v2` request needs.
fn scope_for(method: &Method, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    let route = parse_route(rest).ok()??;
    if route == Route::Catalog {
        return Some("registry:catalog:*".into());
    }
    let (name, action) = needed_access(&route, method)?;
    // docker asks for pull with push, so one token serves the whole push
    let actions = match action {
        Action::Push => "pull,push",
        other => other.as_str(),
    };
    Some(format!("repository:{name}:{actions}"))
}

async fn api_version_header(mut res: Response) -> Response {
    res.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    res
}

/// `end-1`: `GET /v2/`. Anonymous callers are challenged, so that clients
/// learn to send credentials.
async fn base(Extension(subject): Extension<Subject>, method: Method) -> OciResult {
    if method != Method::GET && method != Method::HEAD {
        return Ok(StatusCode::METHOD_NOT_ALLOWED.into_response());
    }
    if subject.is_anonymous() {
        return Err(CoreError::Unauthenticated.into());
    }
    Ok(json_response(StatusCode::OK, "{}".into()))
}

/// What a `/v2/…` path addresses.
#[derive(Debug, PartialEq)]
enum Route {
    Catalog,
    Tags(RepoName),
    Manifest(RepoName, String),
    Referrers(RepoName, String),
    Uploads(RepoName),
    Upload(RepoName, String),
    Blob(RepoName, String),
}

fn name(s: &str) -> Result<RepoName, OciError> {
    RepoName::parse(s).map_err(|e| OciError(CoreError::InvalidName(e.to_string())))
}

/// Splits `rest` (the path after `/v2/`) into a route. A repository name
/// may itself contain the words `blobs` or `manifests`; only the words just
/// before the last segment count.
fn parse_route(rest: &str) -> Result<Option<Route>, OciError> {
    let rest = rest.trim_end_matches('/');
    if rest == "_catalog" {
        return Ok(Some(Route::Catalog));
    }
    if let Some(n) = rest.strip_suffix("/tags/list") {
        return Ok(Some(Route::Tags(name(n)?)));
    }
    if let Some(n) = rest.strip_suffix("/blobs/uploads") {
        return Ok(Some(Route::Uploads(name(n)?)));
    }
    // The last segment is the reference, digest or session id; the words
    // before it name the endpoint.
    let Some((head, tail)) = rest.rsplit_once('/') else {
        return Ok(None);
    };
    let tail = tail.to_owned();
    let route = if let Some(n) = head.strip_suffix("/blobs/uploads") {
        Route::Upload(name(n)?, tail)
    } else if let Some(n) = head.strip_suffix("/manifests") {
        Route::Manifest(name(n)?, tail)
    } else if let Some(n) = head.strip_suffix("/referrers") {
        Route::Referrers(name(n)?, tail)
    } else if let Some(n) = head.strip_suffix("/blobs") {
        Route::Blob(name(n)?, tail)
    } else {
        return Ok(None);
    };
    Ok(Some(route))
}

/// Query parameters, decoded; repeated keys keep every value.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn number(&self, key: &str) -> Result<Option<u64>, OciError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                OciError(CoreError::BadRequest(format!(
                    "query parameter {key} must be a non-negative integer"
                )))
            }),
        }
    }
}

async fn dispatch(
    State(state): State<AppState>,
    Extension(subject): Extension<Subject>,
    req: Request,
) -> OciResult {
    let rest = req
        .uri()
        .path()
        .strip_prefix("/v2/")
        .unwrap_or("")
        .to_owned();
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    let Some(route) = parse_route(&rest)? else {
        return Ok(not_found());
    };
    let needed = needed_access(&route, &method);
    let s = &state;
    let sub = &subject;
    let result = match (route, method) {
        (Route::Catalog, Method::GET) => catalog(s, sub, &query).await,
        (Route::Tags(n), Method::GET) => list_tags(s, sub, &n, &query).await,
        (Route::Manifest(n, r), Method::GET) => {
            get_manifest(s, sub, &n, &r, req.headers(), true).await
        }
        (Route::Manifest(n, r), Method::HEAD) => {
            get_manifest(s, sub, &n, &r, req.headers(), false).await
        }
        (Route::Manifest(n, r), Method::PUT) => put_manifest(s, sub, &n, &r, &query, req).await,
        (Route::Manifest(n, r), Method::DELETE) => delete_manifest(s, sub, &n, &r).await,
        (Route::Referrers(n, d), Method::GET) => referrers(s, sub, &n, &d, &query).await,
        (Route::Blob(n, d), Method::GET) => get_blob(s, sub, &n, &d, req.headers(), true).await,
        (Route::Blob(n, d), Method::HEAD) => get_blob(s, sub, &n, &d, req.headers(), false).await,
        (Route::Blob(n, d), Method::DELETE) => delete_blob(s, sub, &n, &d).await,
        (Route::Uploads(n), Method::POST) => start_upload(s, sub, &n, &query, req).await,
        (Route::Upload(n, id), Method::GET) => upload_status(s, sub, &n, &id).await,
        (Route::Upload(n, id), Method::PATCH) => patch_upload(s, sub, &n, &id, req).await,
        (Route::Upload(n, id), Method::PUT) => finish_upload(s, sub, &n, &id, &query, req).await,
        (Route::Upload(n, id), Method::DELETE) => cancel_upload(s, sub, &n, &id).await,
        _ => Ok((StatusCode::METHOD_NOT_ALLOWED, "").into_response()),
    };
    let (e, (name, action)) = match (result, needed) {
        (Err(e), Some(needed)) => (e, needed),
        (result, _) => return result,
    };
    // Harbor authorizes before it parses: a caller who may not do this at
    // all hears that, not what was wrong with its parameters.
    let e = match &e.0 {
        CoreError::InvalidDigest(_) | CoreError::InvalidName(_) | CoreError::BadRequest(_) => {
            match s.registry.check(sub, &name, action).await {
                Err(r @ (CoreError::Unauthenticated | CoreError::Denied(_))) => OciError(r),
                _ => e,
            }
        }
        _ => e,
    };
    Ok(e.denied_response(name.as_str(), action.as_str()))
}

/// The repository and action a request on `route` needs: for the token
/// scope of a challenge, and to decide refusals.
fn needed_access(route: &Route, method: &Method) -> Option<(RepoName, Action)> {
    let name = match route {
        Route::Catalog => return None,
        Route::Tags(n)
        | Route::Manifest(n, _)
        | Route::Referrers(n, _)
        | Route::Uploads(n)
        | Route::Upload(n, _)
        | Route::Blob(n, _) => n,
    };
    let action = match *method {
        Method::GET | Method::HEAD => Action::Pull,
        Method::DELETE => Action::Delete,
        _ => Action::Push,
    };
    Some((name.clone(), action))
}

fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"errors":[{"code":"NOT_FOUND","message":"no such registry endpoint"}]}).to_string(),
    )
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}

fn set(res: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().insert(name, v);
    }
}

fn empty(status: StatusCode) -> Response {
    let mut res = status.into_response();
    res.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    res
}

/// The `Range` header value for an upload of `size` bytes (`0-<last>`).
pub(crate) fn range_value(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn parse_digest(s: &str) -> Result<Digest, OciError> {
    Digest::parse(s).map_err(|e| OciError(CoreError::InvalidDigest(format!("{s:?}: {e}"))))
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, OciError> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| OciError(CoreError::SizeInvalid("invalid Content-Length".into()))),
    }
}

/// `Content-Range: <start>-<end>` (a `bytes ` or `bytes=` prefix is tolerated).
fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, OciError> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        OciError(CoreError::UploadInvalid(
            "invalid Content-Range: expected <start>-<end>".into(),
        ))
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s
        .strip_prefix("bytes=")
        .or_else(|| s.strip_prefix("bytes "))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start = a.trim().parse::<u64>().map_err(|_| bad())?;
    let end = b.trim().parse::<u64>().map_err(|_| bad())?;
    Ok(Some((start, end)))
}

fn body_stream(body: Body) -> ByteStream {
    Box::pin(TryStreamExt::map_err(
        body.into_data_stream(),
        std::io::Error::other,
    ))
}

fn upload_location(n: &RepoName, id: &str) -> String {
    format!("/v2/{n}/blobs/uploads/{id}")
}

fn upload_accepted(n: &RepoName, id: &str, size: u64, status: StatusCode) -> Response {
    let mut res = empty(status);
    set(&mut res, "location", &upload_location(n, id));
    set(&mut res, "range", &range_value(size));
    set(&mut res, "docker-upload-uuid", id);
    res
}

fn blob_created(n: &RepoName, d: &Digest) -> Response {
    let mut res = empty(StatusCode::CREATED);
    set(&mut res, "location", &format!("/v2/{n}/blobs/{d}"));
    set(&mut res, "docker-content-digest", d.as_str());
    res
}

// ---- blobs ----------------------------------------------------------------

/// `end-2`: `GET`/`HEAD /v2/<name>/blobs/<digest>`, with `Range` support.
async fn get_blob(
    s: &AppState,
    sub: &Subject,
    n: &RepoName,
    d: &str,
    headers: &HeaderMap,
    with_body: bool,
) -> OciResult {
    let digest = parse_digest(d)?;
    let blob = s.registry.open_blob(sub, n, &digest).await?;
    let size = blob.size;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if r.trim_start().starts_with("bytes=") => {
            match http_range_header::parse_range_header(r).and_then(|p| p.validate(size)) {
                Ok(ranges) if ranges.len() == 1 => Some((*ranges[0].start(), *ranges[0].end())),
                Ok(_) => None,
                Err(_) => {
                    let mut res = empty(StatusCode::RANGE_NOT_SATISFIABLE);
                    set(&mut res, "content-range", &format!("bytes */{size}"));
                    return Ok(res);
                }
            }
        }
        _ => None,
    };
    let (status, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, b - a + 1),
        None => (StatusCode::OK, size),
    };
    let body = if with_body && len > 0 {
        Body::from_stream(s.registry.read_blob(&blob, range).await?)
    } else {
        Body::empty()
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    set(&mut res, "content-length", &len.to_string());
    set(&mut res, "content-type", "application/octet-stream");
    set(&mut res, "docker-content-digest", digest.as_str());
    set(&mut res, "accept-ranges", "bytes");
    set(&mut res, "etag", &format!("\"{digest}\""));
    set(&mut res, "cache-control", "max-age=31536000");
    if let Some((a, b)) = range {
        set(&mut res, "content-range", &format!("bytes {a}-{b}/{size}"));
    }
    Ok(res)
}

/// `end-10`: `DELETE /v2/<name>/blobs/<digest>`.
async fn delete_blob(s: &AppState, sub: &Subject, n: &RepoName, d: &str) -> OciResult {
    let digest = parse_digest(d)?;
    s.registry.delete_blob(sub, n, &digest).await?;
    Ok(empty(StatusCode::ACCEPTED))
}

// ---- uploads --------------------------------------------------------------

/// `end-4a`/`end-4b`/`end-11`: `POST /v2/<name>/blobs/uploads/` — a new
/// session, a monolithic upload (`?digest=`), or a mount (`?mount=&from=`).
async fn start_upload(
    s: &AppState,
    sub: &Subject,
    n: &RepoName,
    q: &Query,
    req: Request,
) -> OciResult {
    if let Some(m) = q.get("mount") {
        let digest = parse_digest(m)?;
        let from = q.get("from").and_then(|f| RepoName::parse(f).ok());
        let algorithm = digest.algorithm();
        return match s
            .registry
            .start_upload(sub, n, Some((&digest, from.as_ref())), algorithm)
            .await?
        {
            UploadStart::Mounted(d) => Ok(blob_created(n, &d)),
            UploadStart::Session(st) => {
                Ok(upload_accepted(n, &st.id, st.size, StatusCode::ACCEPTED))
            }
        };
    }
    if let Some(d) = q.get("digest") {
        let digest = parse_digest(d)?;
        let len = content_length(req.headers())?;
        let body = body_stream(req.into_body());
        s.registry
            .upload_monolithic(sub, n, &digest, len, body)
            .await?;
        return Ok(blob_created(n, &digest));
    }
    let algorithm = match q.get("digest-algorithm") {
        None => Algorithm::Sha256,
        Some(a) => Algorithm::parse(a).map_err(|_| {
            OciError(CoreError::InvalidDigest(format!(
                "unsupported digest algorithm {a:?}"
            )))
        })?,
    };
    match s.registry.start_upload(sub, n, None, algorithm).await? {
        UploadStart::Session(st) => Ok(upload_accepted(n, &st.id, st.size, StatusCode::ACCEPTED)),
        UploadStart::Mounted(d) => Ok(blob_created(n, &d)),
    }
}

/// `end-13`: `GET <upload location>`.
async fn upload_status(s: &AppState, sub: &Subject, n: &RepoName, id: &str) -> OciResult {
    let st = s.registry.upload_status(sub, n, id).await?;
    Ok(upload_accepted(n, &st.id, st.size, StatusCode::NO_CONTENT))
}

/// `end-5`: `PATCH <upload location>`, chunked (`Content-Range`) or streamed.
async fn patch_upload(
    s: &AppState,
    sub: &Subject,
    n: &RepoName,
    id: &str,
    req: Request,
) -> OciResult {
    let range = content_range(req.headers())?;
    let len = content_length(req.headers())?;
    let body = body_stream(req.into_body());
    let st = s
        .registry
        .patch_upload(sub, n, id, range, len, body)
        .await?;
    Ok(upload_accepted(n, &st.id, st.size, StatusCode::ACCEPTED))
}

/// `end-6`: `PUT <upload location>?digest=`, optionally with the last chunk.
async fn finish_upload(
    s: &AppState,
    sub: &Subject,
    n: &RepoName,
    id: &str,
    q: &Query,
    req: Request,
) -> OciResult {
    let digest = match q.get("digest") {
        Some(d) => parse_digest(d)?,
        None => {
            return Err(OciError(CoreError::InvalidDigest(
                "the digest query parameter is required".into(),
            )))
        }
    };
    let range = content_range(req.headers())?;
    let len = content_length(req.headers())?;
    let body = body_stream(req.into_body());
    s.registry
        .finish_upload(sub, n, id, &digest, range, len, Some(body))
        .await?;
    Ok(blob_created(n, &digest))
}

/// `end-14`: `DELETE <upload location>`.
async fn cancel_upload(s: &AppState, sub: &Subject, n: &RepoName, id: &str) -> OciResult {
    s.registry.cancel_upload(sub, n, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

// ---- manifests ------------------------------------------------------------

/// `end-3`: `GET`/`HEAD /v2/<name>/manifests/<reference>`. An unparseable
/// reference is simply not found.
async fn get_manifest(
    s: &AppState,
    sub: &Subject,
    n: &RepoName,
    r: &str,
    headers: &HeaderMap,
    with_body: bool,
) -> OciResult {
    let Ok(reference) = Reference::parse(r) else {
        return Err(OciError(CoreError::ManifestNotFound(format!("{n}:{r}"))));
    };
    let accept: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    let m = s
        .registry
        .get_manifest(sub, n, &reference, &accept, with_body)
        .await?;
    let len = m.body.len();
    let mut res = if with_body {
        Response::new(Body::from(m.body))
    } else {
        Response::new(Body::empty())
    };
    set(&mut res, "content-type", &m.media_type);
    set(&mut res, "content-length", &len.to_string());
    set(&mut res, "docker-content-digest", m.digest.as_str());
    set(&mut res, "etag", &format!("\"{}\"", m.digest));
    if let Some(subject) = &m.subject {
        set(&mut res, "oci-subject", subject.as_str());
    }
    Ok(res)
}

/// `end-7a`: `PUT /v2/<name>/manifests/<reference>`. Bodies above the
/// configured limit are refused (413) without being buffered.
async fn put_manifest(
    s: &AppState,
    sub: &Subject,
    n: &RepoName,
    r: &str,
    q: &Query,
    req: Request,
) -> OciResult {
    // `?tag=` (distribution-spec `end-7b`): more tags for a push by digest.
    let extra_tags =
        q.0.iter()
            .filter(|(k, _)| k == "tag")
            .map(|(_, v)| {
                Tag::parse(v).map_err(|e| OciError(CoreError::InvalidManifest(e.to_string())))
            })
            .collect::<Result<Vec<Tag>, _>>()?;
    let reference = match Reference::parse(r) {
        Ok(reference) => reference,
        Err(_) if r.contains(':') => {
            return Err(OciError(CoreError::InvalidDigest(format!(
                "{r:?} is not a valid digest"
            ))))
        }
        Err(e) => return Err(OciError(CoreError::InvalidManifest(e.to_string()))),
    };
    let limit = s.registry.config().max_manifest_bytes;
    let declared = content_length(req.headers())?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let too_large = OciError(CoreError::ManifestTooLarge { limit });
    if declared.is_some_and(|len| len > limit) {
        drain(req.into_body()).await;
        return Err(too_large);
    }
    let mut body = req.into_body().into_data_stream();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            OciError(CoreError::InvalidManifest(format!(
                "reading the manifest failed: {e}"
            )))
        })?;
        if (buf.len() + chunk.len()) as u64 > limit {
            drain_stream(body).await;
            return Err(too_large);
        }
        buf.extend_from_slice(&chunk);
    }
    let body = buf.freeze();
    let pushed = s
        .registry
        .put_manifest(
            sub,
            n,
            &reference,
            &extra_tags,
            content_type.as_deref(),
            body,
        )
        .await?;
    let mut res = empty(StatusCode::CREATED);
    set(
        &mut res,
        "location",
        &format!("/v2/{n}/manifests/{}", pushed.digest),
    );
    set(&mut res, "docker-content-digest", pushed.digest.as_str());
    if let Some(subject) = &pushed.subject {
        set(&mut res, "oci-subject", subject.as_str());
    }
    if !extra_tags.is_empty() {
        set(&mut res, "oci-tag", &pushed.tags.join(", "));
    }
    Ok(res)
}

/// Reads and discards what is left of a refused body (up to a bound), so
/// the client sees the error response instead of a reset connection. Nothing
/// is buffered.
async fn drain(body: Body) {
    drain_stream(body.into_data_stream()).await
}

async fn drain_stream(mut body: axum::body::BodyDataStream) {
    const MAX_DRAIN: usize = 64 * 1024 * 1024;
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = body.next().await {
        seen += chunk.len();
        if seen > MAX_DRAIN {
            break;
        }
    }
}

/// `end-9`: `DELETE /v2/<name>/manifests/<reference>` (tag or digest).
async fn delete_manifest(s: &AppState, sub: &Subject, n: &RepoName, r: &str) -> OciResult {
    let Ok(reference) = Reference::parse(r) else {
        return Err(OciError(CoreError::ManifestNotFound(format!("{n}:{r}"))));
    };
    s.registry.delete_manifest(sub, n, &reference).await?;
    Ok(empty(StatusCode::ACCEPTED))
}

// ---- listings -------------------------------------------------------------

fn next_link(res: &mut Response, path: &str, n: Option<u64>, last: &str) {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(n) = n {
        q.append_pair("n", &n.to_string());
    }
    q.append_pair("last", last);
    set(
        res,
        "link",
        &format!("<{path}?{}>; rel=\"next\"", q.finish()),
    );
}

/// `end-8a`/`end-8b`: `GET /v2/<name>/tags/list[?n=&last=]`.
async fn list_tags(s: &AppState, sub: &Subject, n: &RepoName, q: &Query) -> OciResult {
    let limit = q.number("n")?;
    let (tags, more) = s.registry.list_tags(sub, n, limit, q.get("last")).await?;
    let mut res = json_response(
        StatusCode::OK,
        json!({ "name": n.as_str(), "tags": tags }).to_string(),
    );
    if more {
        if let Some(last) = tags.last() {
            next_link(&mut res, &format!("/v2/{n}/tags/list"), limit, last);
        }
    }
    Ok(res)
}

/// `end-12a`/`end-12b`: `GET /v2/<name>/referrers/<digest>[?artifactType=]`.
async fn referrers(s: &AppState, sub: &Subject, n: &RepoName, d: &str, q: &Query) -> OciResult {
    let digest = parse_digest(d)?;
    let filter = q.get("artifactType").filter(|t| !t.is_empty());
    let list = s.registry.referrers(sub, n, &digest, filter).await?;
    let manifests: Vec<_> = list
        .iter()
        .map(|r| {
            let mut d = json!({
                "mediaType": r.media_type,
                "digest": r.digest.as_str(),
                "size": r.size,
                "artifactType": r.artifact_type,
            });
            if !r.annotations.is_empty() {
                d["annotations"] = json!(r.annotations);
            }
            d
        })
        .collect();
    let body = json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests })
        .to_string();
    let mut res = json_response(StatusCode::OK, body);
    set(&mut res, "content-type", media::OCI_INDEX);
    if filter.is_some() {
        set(&mut res, "oci-filters-applied", "artifactType");
    }
    Ok(res)
}

/// `GET /v2/_catalog[?n=&last=]`: repositories the caller may see.
async fn catalog(s: &AppState, sub: &Subject, q: &Query) -> OciResult {
    let limit = q.number("n")?;
    let (names, more) = s.registry.catalog(sub, limit, q.get("last")).await?;
    let mut res = json_response(StatusCode::OK, json!({ "repositories": names }).to_string());
    if more {
        if let Some(last) = names.last() {
            next_link(&mut res, "/v2/_catalog", limit, last);
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Route {
        parse_route(s).unwrap().unwrap()
    }

    #[test]
    fn routes() {
        let n = RepoName::parse("p/r").unwrap();
        assert_eq!(r("_catalog"), Route::Catalog);
        assert_eq!(r("p/r/tags/list"), Route::Tags(n.clone()));
        assert_eq!(
            r("p/r/manifests/latest"),
            Route::Manifest(n.clone(), "latest".into())
        );
        assert_eq!(r("p/r/blobs/uploads/"), Route::Uploads(n.clone()));
        assert_eq!(r("p/r/blobs/uploads"), Route::Uploads(n.clone()));
        assert_eq!(
            r("p/r/blobs/uploads/abc"),
            Route::Upload(n.clone(), "abc".into())
        );
        assert_eq!(
            r("p/r/blobs/sha256:x"),
            Route::Blob(n.clone(), "sha256:x".into())
        );
        assert_eq!(
            r("p/r/referrers/sha256:x"),
            Route::Referrers(n, "sha256:x".into())
        );
        // names may contain the route words
        assert_eq!(
            r("p/blobs/manifests/manifests/v1"),
            Route::Manifest(RepoName::parse("p/blobs/manifests").unwrap(), "v1".into())
        );
        assert_eq!(
            r("p/manifests/blobs/uploads/u1"),
            Route::Upload(RepoName::parse("p/manifests").unwrap(), "u1".into())
        );
        assert!(parse_route("p/r/unknown").unwrap().is_none());
        assert!(parse_route("P/R/tags/list").is_err());
        assert!(parse_route("p/../x/tags/list").is_err());
        assert!(parse_route("p/%2e%2e/tags/list").is_err());
        assert!(
            parse_route("single/tags/list").is_err(),
            "a repository needs a project"
        );
    }

    #[test]
    fn content_ranges() {
        let mut h = HeaderMap::new();
        assert_eq!(content_range(&h).unwrap(), None);
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static("0-21"));
        assert_eq!(content_range(&h).unwrap(), Some((0, 21)));
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_static("bytes 22-41/42"),
        );
        assert_eq!(content_range(&h).unwrap(), Some((22, 41)));
        for bad in ["", "x", "1-", "-1", "a-b", "99999999999999999999-1"] {
            h.insert(header::CONTENT_RANGE, HeaderValue::from_static(bad));
            assert!(content_range(&h).is_err(), "{bad}");
        }
        assert_eq!(range_value(0), "0-0");
        assert_eq!(range_value(42), "0-41");
    }
}
