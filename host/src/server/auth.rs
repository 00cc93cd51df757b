//! Bearer-token authentication and the project access check every project route goes through.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::store::{Access, ProjectRecord, UserRecord, is_id};

/// The authenticated user of a request.
pub struct Caller(pub UserRecord);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("missing `Authorization: Bearer <token>` header")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header should be `Bearer <token>`")
            })?;
        match state.tessera.store().user_by_token(token)? {
            Some(user) => Ok(Caller(user)),
            None => Err(ApiError::unauthorized("unknown or revoked token")),
        }
    }
}

impl Caller {
    /// True for the `admin` role.
    pub fn is_admin(&self) -> bool {
        self.0.admin
    }

    /// Refuses callers without the `admin` role.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("only an admin may do this"))
        }
    }

    /// The access the caller's teams have to `project`.
    pub fn access(&self, project: &ProjectRecord) -> Option<Access> {
        project.access(&self.0.teams)
    }

    /// The project `id` if the caller may do `need` there: 400 for an invalid id, 404 when
    /// it does not exist or the caller cannot see it, 403 when they may only read.
    pub fn project(
        &self,
        state: &AppState,
        id: &str,
        need: Access,
    ) -> Result<ProjectRecord, ApiError> {
        check_id("project", id)?;
        let project = state.tessera.store().project(id)?;
        let Some((project, access)) =
            project.and_then(|p| self.access(&p).map(|access| (p, access)))
        else {
            return Err(ApiError::not_found(format!("no project `{id}`")));
        };
        if access < need {
            return Err(ApiError::forbidden(format!(
                "your teams may only read project `{id}`; writing needs a write grant"
            )));
        }
        Ok(project)
    }
}

/// Refuses anything but a well-formed id (before any lookup, so no request text reaches a key
/// or a path).
pub fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    if is_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} id `{}` is not valid; ids are 1 to 64 of a-z, 0-9 and -",
            id.chars().take(80).collect::<String>()
        )))
    }
}
