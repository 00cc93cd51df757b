//! Annotation collections of an image: GeoJSON in, GeoJSON out, bounding-box queries.
//!
//! A write carries at most [`MAX_ANNOTATION_BODY`] bytes and
//! [`crate::annotations::MAX_FEATURES`] features; the body is parsed feature by feature (see
//! [`parse_collection`]), so a request's memory stays a small multiple of its size.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::images::find;
use crate::annotations::{RESULT_SOURCE_PREFIX, is_source, parse_bbox, parse_collection};
use crate::store::{Access, CollectionRecord};

/// Largest annotation request body, 128 MiB: 200,000 detailed polygons (the most features one
/// request may carry) fit. Larger sets are sent in several appends.
pub const MAX_ANNOTATION_BODY: usize = 128 << 20;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            get_annotations,
            post_annotations,
            put_annotations,
            delete_annotations
        ))
        .routes(routes!(list_sources))
        .layer(DefaultBodyLimit::max(MAX_ANNOTATION_BODY))
}

/// A collection as the API shows it (`docs/api.md`); the store's bookkeeping (widest
/// feature, next sequence number) stays inside.
#[derive(Serialize, ToSchema)]
pub struct Collection {
    /// The source: `manual`, a client's name, or `result:<run>`.
    source: String,
    /// How many features it holds.
    count: u64,
    /// Last change.
    updated_at: String,
}

impl From<CollectionRecord> for Collection {
    fn from(c: CollectionRecord) -> Collection {
        Collection {
            source: c.source,
            count: c.count,
            updated_at: c.updated_at,
        }
    }
}

/// The source when none is given.
pub const DEFAULT_SOURCE: &str = "manual";

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SourceQuery {
    /// `manual` (default), a client's own name, or `result:<run>` (read-only).
    source: Option<String>,
    /// `x0,y0,x1,y1` in level-0 pixels: only features whose bbox meets this box (GET only).
    bbox: Option<String>,
}

fn source(q: &SourceQuery, writing: bool) -> ApiResult<String> {
    let s = q
        .source
        .clone()
        .unwrap_or_else(|| DEFAULT_SOURCE.to_string());
    if !is_source(&s) {
        return Err(ApiError::bad_request(format!(
            "source `{}`: expected 1 to 64 of a-z, 0-9, -, :, . and _",
            s.chars().take(80).collect::<String>()
        )));
    }
    if writing && s.starts_with(RESULT_SOURCE_PREFIX) {
        return Err(ApiError::forbidden(format!(
            "source `{s}` holds a run's results and is written only by the server"
        )));
    }
    Ok(s)
}

/// The features of one source, optionally only those meeting a box.
#[utoipa::path(get, path = "/api/projects/{project}/images/{image}/annotations", tag = "annotations",
    params(("project" = String, Path), ("image" = String, Path), SourceQuery),
    responses((status = 200, content_type = "application/geo+json", body = Object),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_annotations(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, image)): Path<(String, String)>,
    Query(q): Query<SourceQuery>,
) -> ApiResult<Response> {
    let p = caller.project(&state, &project, Access::Read)?;
    let (image, _) = find(&state, &p, &image)?;
    let source = source(&q, false)?;
    let bbox = q
        .bbox
        .as_deref()
        .map(parse_bbox)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let tessera = state.tessera.clone();
    let body = tokio::task::spawn_blocking(move || -> ApiResult<Vec<u8>> {
        let mut out = br#"{"type":"FeatureCollection","features":["#.to_vec();
        let mut first = true;
        tessera
            .store()
            .query_features(&p.id, &image.id, &source, bbox, |json| {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(json);
            })?;
        out.extend_from_slice(b"]}");
        Ok(out)
    })
    .await??;
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], body).into_response())
}

/// The annotation sources of an image.
#[utoipa::path(get, path = "/api/projects/{project}/images/{image}/annotations/sources", tag = "annotations",
    params(("project" = String, Path), ("image" = String, Path)),
    responses((status = 200, body = Vec<Collection>), (status = 404, body = ErrorBody)))]
async fn list_sources(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, image)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Collection>>> {
    let p = caller.project(&state, &project, Access::Read)?;
    let (image, _) = find(&state, &p, &image)?;
    let collections = state.tessera.store().collections(&p.id, &image.id)?;
    Ok(Json(
        collections.into_iter().map(Collection::from).collect(),
    ))
}

async fn write(
    state: AppState,
    caller: Caller,
    project: String,
    image: String,
    q: SourceQuery,
    body: Bytes,
    replace: bool,
) -> ApiResult<Json<Collection>> {
    let p = caller.project(&state, &project, Access::Write)?;
    let (image, _) = find(&state, &p, &image)?;
    let source = source(&q, true)?;
    let tessera = state.tessera.clone();
    let collection = tokio::task::spawn_blocking(move || -> ApiResult<CollectionRecord> {
        let features = parse_collection(&body).map_err(ApiError::bad_request)?;
        Ok(tessera
            .store()
            .put_features(&p.id, &image.id, &source, features, replace)?)
    })
    .await??;
    Ok(Json(collection.into()))
}

/// Appends the features of a GeoJSON FeatureCollection to a source.
#[utoipa::path(post, path = "/api/projects/{project}/images/{image}/annotations", tag = "annotations",
    params(("project" = String, Path), ("image" = String, Path), SourceQuery),
    request_body(content = Object, content_type = "application/geo+json"),
    responses((status = 200, body = Collection), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn post_annotations(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, image)): Path<(String, String)>,
    Query(q): Query<SourceQuery>,
    body: Bytes,
) -> ApiResult<Json<Collection>> {
    write(state, caller, project, image, q, body, false).await
}

/// Replaces a source with the features of a GeoJSON FeatureCollection.
#[utoipa::path(put, path = "/api/projects/{project}/images/{image}/annotations", tag = "annotations",
    params(("project" = String, Path), ("image" = String, Path), SourceQuery),
    request_body(content = Object, content_type = "application/geo+json"),
    responses((status = 200, body = Collection), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn put_annotations(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, image)): Path<(String, String)>,
    Query(q): Query<SourceQuery>,
    body: Bytes,
) -> ApiResult<Json<Collection>> {
    write(state, caller, project, image, q, body, true).await
}

/// Deletes a source.
#[utoipa::path(delete, path = "/api/projects/{project}/images/{image}/annotations", tag = "annotations",
    params(("project" = String, Path), ("image" = String, Path), SourceQuery),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_annotations(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, image)): Path<(String, String)>,
    Query(q): Query<SourceQuery>,
) -> ApiResult<StatusCode> {
    let p = caller.project(&state, &project, Access::Write)?;
    let (image, _) = find(&state, &p, &image)?;
    let source = source(&q, true)?;
    if state
        .tessera
        .store()
        .delete_features(&p.id, &image.id, &source)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no annotations of source `{source}` on `{}`",
            image.id
        )))
    }
}
