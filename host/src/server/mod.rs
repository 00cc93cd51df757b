//! The HTTP API: axum routes over one [`Tessera`], documented in `docs/api.md`.
//!
//! - [`router`] builds the whole app from an [`AppState`]; [`serve`] binds it to an address.
//! - Routes and the OpenAPI document are declared together (`utoipa-axum`): a handler is
//!   reachable only through `routes!`, which also puts it in `/api/openapi.json`.
//! - Store calls are quick sled lookups and run on the async threads; anything that reads
//!   pixels, parses large GeoJSON or runs a plugin runs on blocking threads.
//! - Every project route resolves the project through [`auth::Caller::project`], which answers
//!   404 for projects the caller's teams have no grant on and 403 for writes with `read`.
//! - [`serve`] runs HTTP/1.1 on hyper directly: at most [`MAX_CONNECTIONS`] connections, each
//!   closed when its headers take longer than [`HEADER_READ_TIMEOUT`] (idle keep-alive too).

mod annotations;
mod auth;
mod error;
mod images;
mod plugins;
mod projects;
mod runs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Tessera;
use crate::store::{ChangeRecord, UserRecord};
pub use annotations::MAX_ANNOTATION_BODY;
pub use auth::Caller;
pub use error::{ApiError, ApiResult};

/// Default `--max-upload-bytes`: 16 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 16 << 30;

/// Default `--workers`: runs executing at once.
pub const DEFAULT_WORKERS: usize = 2;

/// Largest JSON request body, 512 MiB. Annotation writes have the lower
/// [`MAX_ANNOTATION_BODY`]; uploads are not bound by it, they have
/// [`ServerOptions::max_upload_bytes`].
pub const MAX_JSON_BODY: usize = 512 << 20;

/// How long a client has to send a request's headers, counted from the connection's start or
/// the end of the previous response: a connection that sends partial headers, or idles
/// between requests, is closed after this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Connections served at once; further clients wait in the listen backlog until one closes.
pub const MAX_CONNECTIONS: usize = 512;

/// Default and largest `limit` of the change feed.
pub const CHANGES_DEFAULT_LIMIT: usize = 1000;
pub const CHANGES_MAX_LIMIT: usize = 10_000;

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Largest upload in bytes.
    pub max_upload_bytes: u64,
    /// Runs executing at once (each on its own blocking thread).
    pub workers: usize,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            workers: DEFAULT_WORKERS,
        }
    }
}

/// What every handler sees.
#[derive(Clone)]
pub struct AppState {
    pub tessera: Arc<Tessera>,
    pub options: ServerOptions,
    runs: Arc<runs::Runs>,
    slides: Arc<images::SlideCache>,
}

impl AppState {
    /// State over an open data directory. Runs left unfinished by a previous process are
    /// marked `interrupted` here.
    pub fn new(tessera: Arc<Tessera>, options: ServerOptions) -> anyhow::Result<AppState> {
        for run in tessera.store().interrupt_unfinished_runs()? {
            tracing::warn!(run = %run.id, "marked interrupted: the server stopped during it");
        }
        Ok(AppState {
            runs: Arc::new(runs::Runs::new(options.workers)),
            slides: Arc::new(images::SlideCache::default()),
            tessera,
            options,
        })
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tessera", description = "Digital pathology data lake API; see docs/api.md"),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The routes and their OpenAPI document, before the document route is added.
pub fn api() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me))
        .routes(routes!(list_plugins))
        .routes(routes!(changes))
        .merge(projects::routes())
        .merge(images::routes())
        .merge(annotations::routes())
        .merge(runs::routes())
        .merge(plugins::routes())
        .split_for_parts()
}

/// The whole app.
pub fn router(state: AppState) -> axum::Router {
    let (routes, doc) = api();
    let doc = Arc::new(doc);
    routes
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .with_state(state)
}

/// Binds `addr` and serves until the process ends. `on_listen` is told the bound address
/// (useful with port 0).
pub async fn serve(
    state: AppState,
    addr: SocketAddr,
    on_listen: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    on_listen(listener.local_addr()?);
    let app = router(state);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = slots.clone().acquire_owned().await?;
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait for connections to close.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = http.serve_connection(io, service).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
}

// ---- small routes ----

/// A user as the API shows it (never the token hash).
#[derive(Serialize, ToSchema)]
pub struct User {
    name: String,
    teams: Vec<String>,
    /// `admin` or `member`.
    role: &'static str,
}

impl From<&UserRecord> for User {
    fn from(u: &UserRecord) -> User {
        User {
            name: u.name.clone(),
            teams: u.teams.clone(),
            role: if u.admin { "admin" } else { "member" },
        }
    }
}

/// The caller.
#[utoipa::path(get, path = "/api/me", tag = "users",
    responses((status = 200, body = User), (status = 401, body = error::ErrorBody)))]
async fn me(caller: Caller) -> Json<User> {
    Json(User::from(&caller.0))
}

/// An installed plugin with its parameter schema.
#[derive(Serialize, ToSchema)]
pub struct Plugin {
    id: String,
    name: String,
    version: String,
    kind: String,
    api: String,
    description: String,
    digest: String,
    /// `image` or `project`: what its `data` calls may reach inside a run.
    data_scope: String,
    /// `{name, type, default, min, max, choices, description}` each.
    #[schema(value_type = Vec<Object>)]
    parameters: Vec<serde_json::Value>,
}

/// The app catalog: installed plugins that are enabled, with their parameter schemas.
#[utoipa::path(get, path = "/api/plugins", tag = "plugins",
    responses((status = 200, body = Vec<Plugin>), (status = 401, body = error::ErrorBody)))]
async fn list_plugins(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<Vec<Plugin>>> {
    let plugins = state.tessera.store().plugins()?;
    let out = plugins
        .into_iter()
        .filter(|p| p.enabled)
        .map(|p| {
            let data_scope = p.grant().data.to_string();
            let m = p.manifest;
            Plugin {
                id: m.plugin.id,
                name: m.plugin.name,
                version: m.plugin.version,
                kind: m.plugin.kind.to_string(),
                api: m.plugin.api,
                description: m.plugin.description,
                digest: p.component_digest,
                data_scope,
                parameters: m
                    .parameters
                    .iter()
                    .map(|d| serde_json::to_value(d).unwrap_or_default())
                    .collect(),
            }
        })
        .collect();
    Ok(Json(out))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ChangesQuery {
    /// The `next` of the previous answer; omit (or `0`) for the start.
    since: Option<String>,
    /// At most this many changes (default 1000, at most 10000).
    limit: Option<usize>,
}

/// A page of the change feed.
#[derive(Serialize, ToSchema)]
pub struct Changes {
    changes: Vec<ChangeRecord>,
    /// Pass as `since` next time.
    next: String,
}

/// Changes to images, annotations and results of the projects the caller can see, in order.
#[utoipa::path(get, path = "/api/changes", tag = "sync", params(ChangesQuery),
    responses((status = 200, body = Changes), (status = 400, body = error::ErrorBody),
        (status = 401, body = error::ErrorBody)))]
async fn changes(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ChangesQuery>,
) -> ApiResult<Json<Changes>> {
    let since = match q.since.as_deref() {
        None | Some("") => 0,
        Some(s) => s.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("cursor `{s}` is not one this server gave"))
        })?,
    };
    let limit = q
        .limit
        .unwrap_or(CHANGES_DEFAULT_LIMIT)
        .clamp(1, CHANGES_MAX_LIMIT);
    let store = state.tessera.store();
    let visible: std::collections::HashSet<String> = store
        .projects()?
        .into_iter()
        .filter(|p| caller.access(p).is_some())
        .map(|p| p.id)
        .collect();
    let (changes, next) = store.changes_since(since, limit, |p| visible.contains(p))?;
    Ok(Json(Changes {
        changes,
        next: next.to_string(),
    }))
}
