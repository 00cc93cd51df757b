//! Plugin administration over HTTP: what `tessera plugin install|upgrade|enable|disable|remove|
//! search` and `tessera trust` do, for admins, through [`crate::plugins::admin`].
//!
//! Installing and upgrading take two requests, like the CLI's confirmation prompt: the first
//! (without `approve`) validates the package in full and answers its review (what it asks for,
//! who signed it, how its grant differs from the installed version's) with `approved: false`;
//! the second, with `approve=<component digest from the review>`, installs exactly what was
//! reviewed. Nothing is written until then. Every route answers 403 to members.

use std::io::Write;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, check_id};
use super::error::{ApiError, ApiResult, ErrorBody};
use crate::plugins::admin::{self, Approval, Options, Outcome, Source};
use crate::plugins::catalog::EntryRef;
use crate::plugins::package::MAX_PACKAGE_BYTES;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_installed))
        .routes(routes!(install_package))
        .routes(routes!(upgrade_package))
        .routes(routes!(install_from_catalog))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(remove))
        .routes(routes!(search_catalog))
        .layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES as usize))
}

/// How an install or upgrade request went.
#[derive(Serialize, ToSchema)]
pub struct AdminOutcome {
    /// `false`: nothing changed; send `approve` with `review.component_digest` to install.
    approved: bool,
    /// `installed`, `unchanged` or `review`.
    outcome: &'static str,
    /// What the plugin asks for and who signed it.
    #[schema(value_type = Object)]
    review: Option<serde_json::Value>,
    /// The installed plugin, once installed (or when this very component already is).
    #[schema(value_type = Object)]
    plugin: Option<serde_json::Value>,
}

impl AdminOutcome {
    fn from(outcome: Outcome) -> ApiResult<AdminOutcome> {
        Ok(match outcome {
            Outcome::Installed { review, plugin } => AdminOutcome {
                approved: true,
                outcome: "installed",
                review: Some(to_json(&review)?),
                plugin: Some(to_json(&plugin)?),
            },
            Outcome::Declined { review } => AdminOutcome {
                approved: false,
                outcome: "review",
                review: Some(to_json(&review)?),
                plugin: None,
            },
            Outcome::Unchanged { plugin } => AdminOutcome {
                approved: true,
                outcome: "unchanged",
                review: None,
                plugin: Some(to_json(&plugin)?),
            },
        })
    }
}

fn to_json(value: &impl Serialize) -> ApiResult<serde_json::Value> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InstallQuery {
    /// The `component_digest` of the review being approved; omit to get the review.
    approve: Option<String>,
    /// Accept an unsigned package or one signed by a key the trust store does not hold.
    #[serde(default)]
    allow_unsigned: bool,
}

/// Installed plugins, disabled ones included, with their approved grants.
#[utoipa::path(get, path = "/api/admin/plugins", tag = "admin",
    responses((status = 200, body = Vec<Object>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list_installed(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_admin()?;
    let list = admin::list(&state.tessera)?;
    Ok(Json(to_json(&list)?))
}

/// Writes a request body to a temporary package file in the store's scratch space.
fn package_file(body: &Bytes) -> ApiResult<tempfile::NamedTempFile> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the request body should be a plugin package (`tessera plugin pack`)",
        ));
    }
    let mut file = tempfile::Builder::new()
        .prefix("upload-")
        .suffix(".tpkg")
        .tempfile()
        .map_err(ApiError::internal)?;
    file.write_all(body).map_err(ApiError::internal)?;
    Ok(file)
}

async fn install_or_upgrade(
    state: AppState,
    caller: Caller,
    q: InstallQuery,
    body: Bytes,
    upgrade: bool,
) -> ApiResult<Json<AdminOutcome>> {
    caller.require_admin()?;
    let file = package_file(&body)?;
    let tessera = state.tessera.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let source = Source::Package(file.path().to_path_buf());
        let options = Options {
            allow_unsigned: q.allow_unsigned,
        };
        let approval = Approval::Digest(q.approve.as_deref().unwrap_or(""));
        let outcome = if upgrade {
            admin::upgrade(&tessera, &source, options, approval)
        } else {
            admin::install(&tessera, &source, options, approval)
        };
        drop(file);
        outcome
    })
    .await??;
    if let Outcome::Installed { plugin, .. } = &outcome {
        tracing::info!(plugin = %plugin.id, version = %plugin.version, by = %caller.0.name,
            upgrade, "plugin installed over HTTP");
    }
    Ok(Json(AdminOutcome::from(outcome)?))
}

/// Installs a plugin package (the request body): first without `approve` to get the review,
/// then with `approve=<component digest>` to install it.
#[utoipa::path(post, path = "/api/admin/plugins", tag = "admin", params(InstallQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = AdminOutcome), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn install_package(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<InstallQuery>,
    body: Bytes,
) -> ApiResult<Json<AdminOutcome>> {
    install_or_upgrade(state, caller, q, body, false).await
}

/// Upgrades an installed plugin to the package in the request body; the review lists how its
/// grant differs from the approved one. A package that fails validation changes nothing.
#[utoipa::path(post, path = "/api/admin/plugins/upgrade", tag = "admin", params(InstallQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = AdminOutcome), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upgrade_package(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<InstallQuery>,
    body: Bytes,
) -> ApiResult<Json<AdminOutcome>> {
    install_or_upgrade(state, caller, q, body, true).await
}

/// A catalog entry to install.
#[derive(Deserialize, ToSchema)]
pub struct CatalogInstall {
    /// `<catalog>#<id>[@<version>]`, the catalog being a directory or `index.json` on the
    /// server's disk (or a `file://` URL).
    entry: String,
    /// The `component_digest` of the review being approved; omit to get the review.
    approve: Option<String>,
    /// Accept a package its publisher key is not trusted for.
    #[serde(default)]
    allow_unsigned: bool,
    /// Upgrade the installed plugin instead of installing a new one.
    #[serde(default)]
    upgrade: bool,
}

/// Installs (or upgrades to) a package listed in a local catalog.
#[utoipa::path(post, path = "/api/admin/plugins/catalog", tag = "admin",
    request_body = CatalogInstall,
    responses((status = 200, body = AdminOutcome), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn install_from_catalog(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CatalogInstall>,
) -> ApiResult<Json<AdminOutcome>> {
    caller.require_admin()?;
    let entry = EntryRef::parse(&body.entry).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`{}` is not a catalog entry; expected `<catalog>#<id>[@<version>]`",
            body.entry
        ))
    })?;
    let tessera = state.tessera.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let source = Source::Catalog(entry);
        let options = Options {
            allow_unsigned: body.allow_unsigned,
        };
        let approval = Approval::Digest(body.approve.as_deref().unwrap_or(""));
        if body.upgrade {
            admin::upgrade(&tessera, &source, options, approval)
        } else {
            admin::install(&tessera, &source, options, approval)
        }
    })
    .await??;
    Ok(Json(AdminOutcome::from(outcome)?))
}

async fn set_enabled(
    state: AppState,
    caller: Caller,
    id: String,
    enabled: bool,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_admin()?;
    check_id("plugin", &id)?;
    let plugin = admin::set_enabled(&state.tessera, &id, enabled)?;
    Ok(Json(to_json(&plugin)?))
}

/// Lets an installed plugin run again.
#[utoipa::path(post, path = "/api/admin/plugins/{plugin}/enable", tag = "admin",
    params(("plugin" = String, Path, description = "plugin id")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    set_enabled(state, caller, id, true).await
}

/// Keeps a plugin installed but stops new runs of it.
#[utoipa::path(post, path = "/api/admin/plugins/{plugin}/disable", tag = "admin",
    params(("plugin" = String, Path, description = "plugin id")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    set_enabled(state, caller, id, false).await
}

/// Removes a plugin; the results it produced stay.
#[utoipa::path(delete, path = "/api/admin/plugins/{plugin}", tag = "admin",
    params(("plugin" = String, Path, description = "plugin id")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_admin()?;
    check_id("plugin", &id)?;
    let plugin = admin::remove(&state.tessera, &id)?;
    tracing::info!(plugin = %id, by = %caller.0.name, "plugin removed over HTTP");
    Ok(Json(to_json(&plugin)?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// A catalog directory or `index.json` on the server's disk, or a `file://` URL.
    catalog: String,
    /// Words to look for in ids, names and descriptions; empty lists everything.
    #[serde(default)]
    q: String,
}

/// Packages of a local catalog matching `q`.
#[utoipa::path(get, path = "/api/admin/catalog", tag = "admin", params(SearchQuery),
    responses((status = 200, body = Vec<Object>), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn search_catalog(
    State(_state): State<AppState>,
    caller: Caller,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_admin()?;
    let found = tokio::task::spawn_blocking(move || admin::search(&q.catalog, &q.q)).await??;
    Ok(Json(to_json(&found)?))
}
