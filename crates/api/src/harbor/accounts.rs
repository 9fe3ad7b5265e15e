//! Users, project members, robot accounts and permissions (swagger tags
//! `user`, `member`, `robot`, `permissions`).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use berth_core::access::Subject;
use berth_core::catalog::ProjectKey;
use berth_core::members::MemberUser;
use berth_core::model::RobotLevel;
use berth_core::query::{Page, RobotQuery, TextMatch, UserQuery, UserSortField};
use berth_core::robots::RobotSpec;
use berth_core::users::{CreateUser, Origin};
use serde_json::json;

use super::error::ApiError;
use super::models::{
    self, PasswordReq, ProjectMemberReq, RobotReq, RobotSec, RoleRequest, SysAdminFlag,
    UserCreationReq, UserProfile,
};
use super::projects::{list_params, params};
use super::query::{paginate, parse_q, parse_sort, Term};
use super::{is_resource_name, json, ok_empty, ApiResult, JsonBody};
use crate::AppState;

fn created(location: String) -> axum::response::Response {
    let mut res = ok_empty(StatusCode::CREATED);
    if let Ok(v) = location.parse() {
        res.headers_mut().insert("location", v);
    }
    res
}

// ---- users ----------------------------------------------------------------

/// `POST /users` (system admins; self-registration is the portal's).
pub async fn create_user(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    JsonBody(req): JsonBody<UserCreationReq>,
) -> ApiResult {
    let user = s
        .users
        .create(
            &sub,
            CreateUser {
                username: req.username,
                email: req.email,
                realname: req.realname,
                comment: req.comment,
                password: req.password,
            },
            Origin::Api,
        )
        .await?;
    Ok(created(format!("/api/v2.0/users/{}", user.id)))
}

fn user_query(raw: &Option<String>) -> Result<(UserQuery, Page), ApiError> {
    let p = params(raw);
    let lp = list_params(&p);
    let page = lp.page()?;
    let mut q = UserQuery {
        sort: parse_sort(lp.sort.as_deref(), |f| match f {
            "username" => Some(UserSortField::Username),
            "email" => Some(UserSortField::Email),
            "creation_time" => Some(UserSortField::CreationTime),
            "update_time" => Some(UserSortField::UpdateTime),
            "user_id" => Some(UserSortField::Id),
            _ => None,
        })?,
        ..Default::default()
    };
    for (k, term) in parse_q(lp.q.as_deref(), &["username", "email"])? {
        let m = term.text(&k)?;
        match k.as_str() {
            "username" => q.username = Some(m),
            _ => q.email = Some(m),
        }
    }
    if let Some(u) = p.get("username").filter(|u| !u.is_empty()) {
        q.username = Some(TextMatch::Fuzzy(u.clone()));
    }
    Ok((q, page))
}

/// `GET /users`.
pub async fn list_users(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let (q, page) = user_query(&raw)?;
    let (users, total) = s.users.list(&sub, &q, page).await?;
    let mut res = json(
        StatusCode::OK,
        &json!(users.iter().map(models::user).collect::<Vec<_>>()),
    );
    paginate(&mut res, "/api/v2.0/users", raw.as_deref(), page, total);
    Ok(res)
}

/// `GET /users/search?username=`.
pub async fn search_users(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let (q, page) = user_query(&raw)?;
    let (users, total) = s.users.search(&sub, &q, page).await?;
    let body: Vec<_> = users
        .iter()
        .map(|u| json!({ "user_id": u.id, "username": u.username }))
        .collect();
    let mut res = json(StatusCode::OK, &json!(body));
    paginate(
        &mut res,
        "/api/v2.0/users/search",
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

/// `GET /users/current`.
pub async fn current_user(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
) -> ApiResult {
    let u = s.users.current(&sub).await?;
    Ok(json(StatusCode::OK, &models::user(&u)))
}

/// `GET /users/current/permissions?scope=/project/1&relative=true`.
pub async fn current_permissions(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let p = params(&raw);
    let relative = matches!(
        p.get("relative").map(String::as_str),
        Some("true") | Some("1")
    );
    let perms = s
        .users
        .permissions(&sub, p.get("scope").map(String::as_str), relative)
        .await?;
    let body: Vec<_> = perms
        .into_iter()
        .map(|(r, a)| json!({ "resource": r, "action": a }))
        .collect();
    Ok(json(StatusCode::OK, &json!(body)))
}

fn user_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request("user_id must be an integer"))
}

/// `GET /users/{user_id}`.
pub async fn get_user(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    let u = s.users.get(&sub, user_id(&id)?).await?;
    Ok(json(StatusCode::OK, &models::user(&u)))
}

/// `PUT /users/{user_id}`: email, realname, comment.
pub async fn update_user(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UserProfile>,
) -> ApiResult {
    s.users
        .update_profile(&sub, user_id(&id)?, &req.email, &req.realname, &req.comment)
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `DELETE /users/{user_id}`.
pub async fn delete_user(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    s.users.delete(&sub, user_id(&id)?).await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `PUT /users/{user_id}/password`.
pub async fn change_password(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<PasswordReq>,
) -> ApiResult {
    s.users
        .change_password(
            &sub,
            user_id(&id)?,
            req.old_password.as_deref(),
            &req.new_password,
        )
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `PUT /users/{user_id}/sysadmin`.
pub async fn set_sysadmin(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<SysAdminFlag>,
) -> ApiResult {
    s.users
        .set_sysadmin(&sub, user_id(&id)?, req.sysadmin_flag)
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

// ---- members --------------------------------------------------------------

fn project_key(project: &str, headers: &HeaderMap) -> ProjectKey {
    ProjectKey::from_path(project, is_resource_name(headers))
}

fn member_id(mid: &str) -> Result<i64, ApiError> {
    mid.parse()
        .map_err(|_| ApiError::bad_request("mid must be an integer"))
}

/// `GET /projects/{p}/members?entityname=`.
pub async fn list_members(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let p = params(&raw);
    let page = list_params(&p).page()?;
    let (members, total) = s
        .members
        .list(
            &sub,
            &project_key(&project, &headers),
            p.get("entityname").map(String::as_str),
            page,
        )
        .await?;
    let mut res = json(
        StatusCode::OK,
        &json!(members.iter().map(models::member).collect::<Vec<_>>()),
    );
    paginate(
        &mut res,
        &format!("/api/v2.0/projects/{project}/members"),
        raw.as_deref(),
        page,
        total,
    );
    Ok(res)
}

/// `POST /projects/{p}/members` with `member_user` by `user_id` or `username`.
pub async fn add_member(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path(project): Path<String>,
    JsonBody(req): JsonBody<ProjectMemberReq>,
) -> ApiResult {
    if req.member_group.is_some() && req.member_user.is_none() {
        return Err(ApiError::bad_request(
            "group members arrive with LDAP/OIDC; only users can be added now",
        ));
    }
    let user = match req.member_user {
        Some(u) => match (u.user_id, u.username) {
            (Some(id), _) if id > 0 => MemberUser::Id(id),
            (_, Some(name)) if !name.is_empty() => MemberUser::Name(name),
            _ => {
                return Err(ApiError::bad_request(
                    "member_user needs user_id or username",
                ))
            }
        },
        None => return Err(ApiError::bad_request("member_user is required")),
    };
    let key = project_key(&project, &headers);
    let m = s.members.add(&sub, &key, &user, req.role_id).await?;
    Ok(created(format!(
        "/api/v2.0/projects/{}/members/{}",
        m.project_id, m.id
    )))
}

/// `GET /projects/{p}/members/{mid}`.
pub async fn get_member(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path((project, mid)): Path<(String, String)>,
) -> ApiResult {
    let m = s
        .members
        .get(&sub, &project_key(&project, &headers), member_id(&mid)?)
        .await?;
    Ok(json(StatusCode::OK, &models::member(&m)))
}

/// `PUT /projects/{p}/members/{mid}`.
pub async fn update_member(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path((project, mid)): Path<(String, String)>,
    JsonBody(req): JsonBody<RoleRequest>,
) -> ApiResult {
    s.members
        .update(
            &sub,
            &project_key(&project, &headers),
            member_id(&mid)?,
            req.role_id,
        )
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `DELETE /projects/{p}/members/{mid}`.
pub async fn delete_member(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    headers: HeaderMap,
    Path((project, mid)): Path<(String, String)>,
) -> ApiResult {
    s.members
        .delete(&sub, &project_key(&project, &headers), member_id(&mid)?)
        .await?;
    Ok(ok_empty(StatusCode::OK))
}

// ---- robots ---------------------------------------------------------------

fn robot_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request("robot_id must be an integer"))
}

fn spec(req: RobotReq) -> RobotSpec {
    RobotSpec {
        name: req.name,
        description: req.description,
        level: req.level,
        duration: req.duration,
        disable: req.disable,
        permissions: req.permissions,
        secret: req.secret,
    }
}

/// `POST /robots`: the secret is in this answer and nowhere else.
pub async fn create_robot(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    JsonBody(req): JsonBody<RobotReq>,
) -> ApiResult {
    let created = s.robots.create(&sub, spec(req)).await?;
    let mut res = json(
        StatusCode::CREATED,
        &json!({
            "id": created.robot.id,
            "name": created.login_name,
            "secret": created.secret,
            "creation_time": crate::timefmt::iso(created.robot.creation_time),
            "expires_at": created.robot.expires_at,
        }),
    );
    if let Ok(v) = format!("/api/v2.0/robots/{}", created.robot.id).parse() {
        res.headers_mut().insert("location", v);
    }
    Ok(res)
}

/// `GET /robots?q=Level=project,ProjectID=N` (a project's robots) or all
/// robots for system admins.
pub async fn list_robots(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let p = params(&raw);
    let lp = list_params(&p);
    let page = lp.page()?;
    let mut query = RobotQuery::default();
    let mut project: Option<ProjectKey> = None;
    for (k, term) in parse_q(
        lp.q.as_deref(),
        &["Level", "level", "ProjectID", "project_id", "name"],
    )? {
        match (k.as_str(), term) {
            ("Level" | "level", Term::Exact(v)) => {
                query.level = Some(match v.as_str() {
                    "system" => RobotLevel::System,
                    "project" => RobotLevel::Project,
                    _ => return Err(ApiError::bad_request("Level must be system or project")),
                })
            }
            ("ProjectID" | "project_id", Term::Exact(v)) => {
                project =
                    Some(ProjectKey::Id(v.parse().map_err(|_| {
                        ApiError::bad_request("ProjectID must be an integer")
                    })?))
            }
            ("name", t) => query.name = Some(t.text("name")?),
            (k, _) => return Err(ApiError::bad_request(format!("unsupported query for {k}"))),
        }
    }
    let (robots, total) = s.robots.list(&sub, project.as_ref(), query, page).await?;
    let mut body = vec![];
    for r in &robots {
        body.push(models::robot(r, &s.robots.login_name(r).await?));
    }
    let mut res = json(StatusCode::OK, &json!(body));
    paginate(&mut res, "/api/v2.0/robots", raw.as_deref(), page, total);
    Ok(res)
}

/// `GET /robots/{id}`.
pub async fn get_robot(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    let r = s.robots.get(&sub, robot_id(&id)?).await?;
    Ok(json(
        StatusCode::OK,
        &models::robot(&r, &s.robots.login_name(&r).await?),
    ))
}

/// `PUT /robots/{id}` with the whole robot as `GET` returns it.
pub async fn update_robot(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<RobotReq>,
) -> ApiResult {
    s.robots.update(&sub, robot_id(&id)?, spec(req)).await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `PATCH /robots/{id}`: refresh the secret. A random one is returned; a
/// chosen one is not echoed.
pub async fn refresh_robot_secret(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<RobotSec>,
) -> ApiResult {
    let secret = s
        .robots
        .refresh_secret(&sub, robot_id(&id)?, req.secret.as_deref())
        .await?;
    Ok(json(
        StatusCode::OK,
        &json!({ "secret": secret.unwrap_or_default() }),
    ))
}

/// `DELETE /robots/{id}`.
pub async fn delete_robot(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
    Path(id): Path<String>,
) -> ApiResult {
    s.robots.delete(&sub, robot_id(&id)?).await?;
    Ok(ok_empty(StatusCode::OK))
}

/// `GET /permissions`: what robots may be granted.
pub async fn permissions(
    State(s): State<AppState>,
    Extension(sub): Extension<Subject>,
) -> ApiResult {
    let (system, project) = s.robots.grantable_permissions(&sub)?;
    let list = |v: Vec<(String, String)>| {
        v.into_iter()
            .map(|(r, a)| json!({ "resource": r, "action": a }))
            .collect::<Vec<_>>()
    };
    Ok(json(
        StatusCode::OK,
        &json!({ "system": list(system), "project": list(project) }),
    ))
}
