//! Teams, users, projects with their grants, and datasets.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, check_id};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::{AppState, User};
use crate::store::{Access, DatasetRecord, ProjectRecord, TeamRecord};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_teams, create_team))
        .routes(routes!(list_users, create_user))
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project))
        .routes(routes!(put_grant, delete_grant))
        .routes(routes!(list_datasets, create_dataset))
        .routes(routes!(get_dataset, update_dataset, delete_dataset))
}

/// A project as the caller sees it.
#[derive(Serialize, ToSchema)]
pub struct Project {
    id: String,
    name: String,
    /// The owning team.
    team: String,
    /// Grants to other teams.
    grants: std::collections::BTreeMap<String, Access>,
    /// What the caller may do.
    access: Access,
    created_at: String,
}

fn view(caller: &Caller, p: ProjectRecord) -> Project {
    Project {
        access: caller.access(&p).unwrap_or(Access::Read),
        id: p.id,
        name: p.name,
        team: p.team,
        grants: p.grants,
        created_at: p.created_at,
    }
}

#[derive(Deserialize, ToSchema)]
struct NewTeam {
    name: String,
}

/// Teams: all of them for an admin, the caller's own otherwise.
#[utoipa::path(get, path = "/api/teams", tag = "users",
    responses((status = 200, body = Vec<TeamRecord>), (status = 401, body = ErrorBody)))]
async fn list_teams(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TeamRecord>>> {
    let teams = state.tessera.store().teams()?;
    Ok(Json(
        teams
            .into_iter()
            .filter(|t| caller.is_admin() || caller.0.teams.contains(&t.name))
            .collect(),
    ))
}

/// Creates a team (admin).
#[utoipa::path(post, path = "/api/teams", tag = "users", request_body = NewTeam,
    responses((status = 201, body = TeamRecord), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn create_team(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewTeam>,
) -> ApiResult<(StatusCode, Json<TeamRecord>)> {
    caller.require_admin()?;
    check_id("team", &body.name)?;
    Ok((
        StatusCode::CREATED,
        Json(state.tessera.store().put_team(&body.name)?),
    ))
}

#[derive(Deserialize, ToSchema)]
struct NewUser {
    name: String,
    teams: Vec<String>,
    #[serde(default)]
    admin: bool,
}

/// A new user and their token, shown this once.
#[derive(Serialize, ToSchema)]
struct NewUserToken {
    user: User,
    token: String,
}

/// Every user (admin).
#[utoipa::path(get, path = "/api/users", tag = "users",
    responses((status = 200, body = Vec<User>), (status = 403, body = ErrorBody)))]
async fn list_users(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<User>>> {
    caller.require_admin()?;
    let users = state.tessera.store().users()?;
    Ok(Json(users.iter().map(User::from).collect()))
}

/// Creates a user, or gives an existing one a new token (admin).
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = NewUserToken), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewUser>,
) -> ApiResult<(StatusCode, Json<NewUserToken>)> {
    caller.require_admin()?;
    check_id("user", &body.name)?;
    if body.teams.is_empty() {
        return Err(ApiError::bad_request(
            "teams: a user needs at least one team",
        ));
    }
    for t in &body.teams {
        check_id("team", t)?;
    }
    let (user, token) = state
        .tessera
        .store()
        .add_user(&body.name, &body.teams, body.admin)?;
    Ok((
        StatusCode::CREATED,
        Json(NewUserToken {
            user: User::from(&user),
            token,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
struct NewProject {
    name: String,
    /// The owning team: one of the caller's (an admin may name any).
    team: String,
}

/// The projects the caller can see.
#[utoipa::path(get, path = "/api/projects", tag = "projects",
    responses((status = 200, body = Vec<Project>), (status = 401, body = ErrorBody)))]
async fn list_projects(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Project>>> {
    let projects = state.tessera.store().projects()?;
    Ok(Json(
        projects
            .into_iter()
            .filter(|p| caller.access(p).is_some())
            .map(|p| view(&caller, p))
            .collect(),
    ))
}

/// Creates a project owned by one of the caller's teams.
#[utoipa::path(post, path = "/api/projects", tag = "projects", request_body = NewProject,
    responses((status = 201, body = Project), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn create_project(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewProject>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    check_name("project name", &body.name)?;
    check_id("team", &body.team)?;
    if !caller.is_admin() && !caller.0.teams.contains(&body.team) {
        return Err(ApiError::forbidden(format!(
            "you are not in team `{}`; a project is owned by one of your teams",
            body.team
        )));
    }
    let store = state.tessera.store();
    if store.team(&body.team)?.is_none() {
        return Err(ApiError::bad_request(format!("no team `{}`", body.team)));
    }
    let project = ProjectRecord {
        id: store.new_id("prj")?,
        name: body.name,
        team: body.team,
        grants: Default::default(),
        created_at: crate::time::now(),
    };
    store.put_project(&project)?;
    Ok((StatusCode::CREATED, Json(view(&caller, project))))
}

/// A project.
#[utoipa::path(get, path = "/api/projects/{project}", tag = "projects",
    params(("project" = String, Path)),
    responses((status = 200, body = Project), (status = 404, body = ErrorBody)))]
async fn get_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Project>> {
    let p = caller.project(&state, &project, Access::Read)?;
    Ok(Json(view(&caller, p)))
}

#[derive(Deserialize, ToSchema)]
struct GrantBody {
    access: Access,
}

/// Grants a team `read` or `write` (needs `write`, or the admin role).
#[utoipa::path(put, path = "/api/projects/{project}/grants/{team}", tag = "projects",
    params(("project" = String, Path), ("team" = String, Path)), request_body = GrantBody,
    responses((status = 200, body = Project), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn put_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, team)): Path<(String, String)>,
    Json(body): Json<GrantBody>,
) -> ApiResult<Json<Project>> {
    let mut p = grantable(&state, &caller, &project)?;
    check_id("team", &team)?;
    if state.tessera.store().team(&team)?.is_none() {
        return Err(ApiError::not_found(format!("no team `{team}`")));
    }
    if team != p.team {
        p.grants.insert(team, body.access);
        state.tessera.store().put_project(&p)?;
    }
    Ok(Json(view(&caller, p)))
}

/// Removes a team's grant.
#[utoipa::path(delete, path = "/api/projects/{project}/grants/{team}", tag = "projects",
    params(("project" = String, Path), ("team" = String, Path)),
    responses((status = 200, body = Project), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn delete_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, team)): Path<(String, String)>,
) -> ApiResult<Json<Project>> {
    let mut p = grantable(&state, &caller, &project)?;
    check_id("team", &team)?;
    p.grants.remove(&team);
    state.tessera.store().put_project(&p)?;
    Ok(Json(view(&caller, p)))
}

/// An admin may change the grants of any project (by id); others need `write`.
fn grantable(state: &AppState, caller: &Caller, project: &str) -> ApiResult<ProjectRecord> {
    if caller.is_admin() {
        check_id("project", project)?;
        return state
            .tessera
            .store()
            .project(project)?
            .ok_or_else(|| ApiError::not_found(format!("no project `{project}`")));
    }
    caller.project(state, project, Access::Write)
}

#[derive(Deserialize, ToSchema)]
struct NewDataset {
    name: String,
    #[serde(default)]
    images: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
struct DatasetUpdate {
    name: Option<String>,
    images: Option<Vec<String>>,
}

/// Datasets of a project.
#[utoipa::path(get, path = "/api/projects/{project}/datasets", tag = "datasets",
    params(("project" = String, Path)),
    responses((status = 200, body = Vec<DatasetRecord>), (status = 404, body = ErrorBody)))]
async fn list_datasets(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Vec<DatasetRecord>>> {
    let p = caller.project(&state, &project, Access::Read)?;
    Ok(Json(state.tessera.store().datasets(&p.id)?))
}

/// Creates a dataset from images of the project.
#[utoipa::path(post, path = "/api/projects/{project}/datasets", tag = "datasets",
    params(("project" = String, Path)), request_body = NewDataset,
    responses((status = 201, body = DatasetRecord), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_dataset(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Json(body): Json<NewDataset>,
) -> ApiResult<(StatusCode, Json<DatasetRecord>)> {
    let p = caller.project(&state, &project, Access::Write)?;
    check_name("dataset name", &body.name)?;
    check_members(&state, &p.id, &body.images)?;
    let store = state.tessera.store();
    let dataset = DatasetRecord {
        id: store.new_id("ds")?,
        project: p.id,
        name: body.name,
        images: body.images,
        created_at: crate::time::now(),
    };
    store.put_dataset(&dataset)?;
    Ok((StatusCode::CREATED, Json(dataset)))
}

/// A dataset.
#[utoipa::path(get, path = "/api/projects/{project}/datasets/{dataset}", tag = "datasets",
    params(("project" = String, Path), ("dataset" = String, Path)),
    responses((status = 200, body = DatasetRecord), (status = 404, body = ErrorBody)))]
async fn get_dataset(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, dataset)): Path<(String, String)>,
) -> ApiResult<Json<DatasetRecord>> {
    let p = caller.project(&state, &project, Access::Read)?;
    Ok(Json(find_dataset(&state, &p.id, &dataset)?))
}

/// Renames a dataset or sets its images (in order).
#[utoipa::path(put, path = "/api/projects/{project}/datasets/{dataset}", tag = "datasets",
    params(("project" = String, Path), ("dataset" = String, Path)), request_body = DatasetUpdate,
    responses((status = 200, body = DatasetRecord), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_dataset(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, dataset)): Path<(String, String)>,
    Json(body): Json<DatasetUpdate>,
) -> ApiResult<Json<DatasetRecord>> {
    let p = caller.project(&state, &project, Access::Write)?;
    let mut d = find_dataset(&state, &p.id, &dataset)?;
    if let Some(name) = body.name {
        check_name("dataset name", &name)?;
        d.name = name;
    }
    if let Some(images) = body.images {
        check_members(&state, &p.id, &images)?;
        d.images = images;
    }
    state.tessera.store().put_dataset(&d)?;
    Ok(Json(d))
}

/// Deletes a dataset; its images stay in the project.
#[utoipa::path(delete, path = "/api/projects/{project}/datasets/{dataset}", tag = "datasets",
    params(("project" = String, Path), ("dataset" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_dataset(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, dataset)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let p = caller.project(&state, &project, Access::Write)?;
    check_id("dataset", &dataset)?;
    if state.tessera.store().delete_dataset(&p.id, &dataset)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no dataset `{dataset}` in project `{}`",
            p.id
        )))
    }
}

pub(super) fn find_dataset(state: &AppState, project: &str, id: &str) -> ApiResult<DatasetRecord> {
    check_id("dataset", id)?;
    state
        .tessera
        .store()
        .dataset(project, id)?
        .ok_or_else(|| ApiError::not_found(format!("no dataset `{id}` in project `{project}`")))
}

fn check_members(state: &AppState, project: &str, images: &[String]) -> ApiResult<()> {
    for (i, image) in images.iter().enumerate() {
        check_id("image", image)?;
        if state.tessera.store().member(project, image)?.is_none() {
            return Err(ApiError::bad_request(format!(
                "images[{i}]: no image `{image}` in project `{project}`"
            )));
        }
    }
    Ok(())
}

/// Names are free text for people, but bounded and printable.
pub(super) fn check_name(what: &str, name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{what}: 1 to 200 characters without control characters"
        )));
    }
    Ok(())
}
