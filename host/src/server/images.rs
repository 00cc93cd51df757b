//! Images of a project: streamed upload, metadata, the original file, a thumbnail, Deep Zoom
//! tiles, copy to another project, delete.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, check_id};
use super::error::{ApiError, ApiResult, ErrorBody};
use crate::imaging::{ImageFormat, LevelInfo, Rect, Slide};
use crate::store::{Access, ImageRecord, MemberRecord, ProjectRecord};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_images, upload_image))
        .routes(routes!(get_image, delete_image))
        .routes(routes!(download_image))
        .routes(routes!(thumbnail))
        .routes(routes!(dzi))
        .routes(routes!(dzi_tile))
        .routes(routes!(copy_image))
}

/// Deep Zoom tile side (without overlap) and overlap.
pub const TILE_SIZE: u32 = 254;
pub const TILE_OVERLAP: u32 = 1;

/// JPEG quality of tiles.
const TILE_QUALITY: u8 = 85;

/// Most open slides kept for tile requests.
const SLIDE_CACHE_ENTRIES: usize = 32;

/// Most decoded pixel bytes (PNG and JPEG images) the slide cache keeps, 1 GiB. The least
/// recently used slides are dropped first; one slide larger than this is still kept while it
/// is the only one.
pub const SLIDE_CACHE_BYTES: u64 = 1 << 30;

/// Bytes of a refused upload still read (and dropped) before the answer, so that a client
/// that is still sending sees the 413 rather than a reset connection.
const UPLOAD_DRAIN_BYTES: u64 = 8 << 20;

/// Upload chunks buffered between the connection and the writing thread.
const UPLOAD_CHANNEL_CHUNKS: usize = 16;

/// Open slides by digest, so tiles do not reopen (and, for PNG or JPEG, redecode) the file.
/// Bounded by [`SLIDE_CACHE_ENTRIES`] and [`SLIDE_CACHE_BYTES`], least recently used out
/// first. Requests for a slide being opened wait for that opening instead of starting their
/// own, so a burst of first tile requests decodes an image once.
#[derive(Default)]
pub struct SlideCache(Mutex<CacheState>);

#[derive(Default)]
struct CacheState {
    slots: HashMap<String, CacheSlot>,
    /// Bumped at every lookup; a slot remembers when it was last used.
    clock: u64,
}

struct CacheSlot {
    slide: Arc<Mutex<Option<Arc<Slide>>>>,
    bytes: u64,
    used: u64,
}

impl SlideCache {
    fn get(&self, state: &AppState, image: &ImageRecord) -> Result<Arc<Slide>, ApiError> {
        let cell = {
            let mut cache = self.lock();
            cache.clock += 1;
            let now = cache.clock;
            let slot = cache
                .slots
                .entry(image.digest.clone())
                .or_insert_with(|| CacheSlot {
                    slide: Arc::default(),
                    bytes: 0,
                    used: now,
                });
            slot.used = now;
            slot.slide.clone()
        };
        // One opener per digest; the others wait here and find its slide.
        let mut opened = cell.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slide) = opened.as_ref() {
            return Ok(slide.clone());
        }
        let slide = match state.tessera.open_slide(image) {
            Ok(slide) => slide,
            Err(e) => {
                drop(opened);
                let mut cache = self.lock();
                if cache
                    .slots
                    .get(&image.digest)
                    .is_some_and(|s| Arc::ptr_eq(&s.slide, &cell))
                {
                    cache.slots.remove(&image.digest);
                }
                return Err(e.into());
            }
        };
        *opened = Some(slide.clone());
        drop(opened);
        let mut cache = self.lock();
        if let Some(slot) = cache.slots.get_mut(&image.digest) {
            slot.bytes = slide.resident_bytes();
        }
        cache.evict(&image.digest);
        Ok(slide)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CacheState {
    /// Drops least recently used slides other than `keep` until the bounds hold.
    fn evict(&mut self, keep: &str) {
        loop {
            let bytes: u64 = self.slots.values().map(|s| s.bytes).sum();
            if bytes <= SLIDE_CACHE_BYTES && self.slots.len() <= SLIDE_CACHE_ENTRIES {
                return;
            }
            let oldest = self
                .slots
                .iter()
                .filter(|(digest, _)| digest.as_str() != keep)
                .min_by_key(|(_, s)| s.used)
                .map(|(digest, _)| digest.clone());
            match oldest {
                Some(digest) => {
                    self.slots.remove(&digest);
                }
                None => return,
            }
        }
    }

    /// Decoded bytes held.
    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.slots.values().map(|s| s.bytes).sum()
    }
}

/// An image as a member of a project.
#[derive(Serialize, ToSchema)]
pub struct Image {
    id: String,
    project: String,
    /// The name it has in this project.
    name: String,
    /// sha256 of the original file.
    digest: String,
    size_bytes: u64,
    #[schema(value_type = String)]
    format: ImageFormat,
    width: u32,
    height: u32,
    #[schema(value_type = Vec<Object>)]
    levels: Vec<LevelInfo>,
    microns_per_pixel: Option<f64>,
    added_at: String,
}

fn view(image: &ImageRecord, member: &MemberRecord) -> Image {
    Image {
        id: image.id.clone(),
        project: member.project.clone(),
        name: member.name.clone(),
        digest: image.digest.clone(),
        size_bytes: image.size_bytes,
        format: image.info.format,
        width: image.info.width,
        height: image.info.height,
        levels: image.info.levels.clone(),
        microns_per_pixel: image.info.microns_per_pixel,
        added_at: member.added_at.clone(),
    }
}

/// The image `id` of project `p` (404 when the project does not hold it).
pub(super) fn find(
    state: &AppState,
    p: &ProjectRecord,
    id: &str,
) -> ApiResult<(ImageRecord, MemberRecord)> {
    check_id("image", id)?;
    let store = state.tessera.store();
    let not_found = || ApiError::not_found(format!("no image `{id}` in project `{}`", p.id));
    let member = store.member(&p.id, id)?.ok_or_else(not_found)?;
    let image = store.image(id)?.ok_or_else(not_found)?;
    Ok((image, member))
}

/// Images of a project.
#[utoipa::path(get, path = "/api/projects/{project}/images", tag = "images",
    params(("project" = String, Path)),
    responses((status = 200, body = Vec<Image>), (status = 404, body = ErrorBody)))]
async fn list_images(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Vec<Image>>> {
    let p = caller.project(&state, &project, Access::Read)?;
    let store = state.tessera.store();
    let mut out = Vec::new();
    for member in store.members(&p.id)? {
        if let Some(image) = store.image(&member.image)? {
            out.push(view(&image, &member));
        }
    }
    Ok(Json(out))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UploadQuery {
    /// File name to show (no `/`); `upload` when absent.
    name: Option<String>,
}

/// Uploads an image: the raw file is the request body.
#[utoipa::path(post, path = "/api/projects/{project}/images", tag = "images",
    params(("project" = String, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Image), (status = 200, body = Image, description = "already in the project"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn upload_image(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Image>)> {
    let checked = caller
        .project(&state, &project, Access::Write)
        .and_then(|p| Ok((p, upload_name(q.name)?)));
    let (p, name) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            // Read (a bounded part of) what the client is sending, so it sees the answer.
            let mut stream = body.into_data_stream();
            let mut drained = 0u64;
            while let Some(Ok(chunk)) = stream.next().await {
                drained += chunk.len() as u64;
                if drained > UPLOAD_DRAIN_BYTES {
                    break;
                }
            }
            return Err(e);
        }
    };

    // The connection feeds a channel; a blocking thread drains it into the store.
    let (tx, rx) = mpsc::channel(UPLOAD_CHANNEL_CHUNKS);
    let too_large = Arc::new(AtomicBool::new(false));
    let reader = ChannelReader {
        rx,
        chunk: Bytes::new(),
        read: 0,
        cap: state.options.max_upload_bytes,
        too_large: too_large.clone(),
    };
    let tessera = state.tessera.clone();
    let (project_id, shown) = (p.id.clone(), name.clone());
    let writer =
        tokio::task::spawn_blocking(move || tessera.import_stream(&project_id, &shown, reader));

    let mut stream = body.into_data_stream();
    let mut tx = Some(tx);
    let mut cut_off = None;
    let mut drained = 0u64;
    while let Some(chunk) = stream.next().await {
        let bytes = match chunk {
            Ok(bytes) => bytes,
            Err(e) => {
                cut_off = Some(e.to_string());
                if let Some(sender) = &tx {
                    let _ = sender
                        .send(Err(io::Error::other(format!("upload cut off: {e}"))))
                        .await;
                }
                break;
            }
        };
        let writer_gone = match &tx {
            Some(sender) => sender.send(Ok(bytes)).await.is_err(),
            // Read a little past a refusal, so the client is reading when the answer comes.
            None => {
                drained += bytes.len() as u64;
                if drained > UPLOAD_DRAIN_BYTES {
                    break;
                }
                false
            }
        };
        if writer_gone {
            // The writer stopped (over the cap, or the disk failed).
            tx = None;
        }
    }
    drop(tx);

    let outcome = writer.await?;
    if too_large.load(Ordering::Relaxed) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "upload is larger than the {} bytes this server accepts (--max-upload-bytes)",
                state.options.max_upload_bytes
            ),
        ));
    }
    if let Some(cause) = cut_off {
        return Err(ApiError::bad_request(format!(
            "upload cut off: {cause}; nothing was stored"
        )));
    }
    let (image, new) = outcome?;
    let member = state
        .tessera
        .store()
        .member(&p.id, &image.id)?
        .ok_or_else(|| ApiError::internal("image vanished after upload"))?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&image, &member))))
}

fn upload_name(name: Option<String>) -> ApiResult<String> {
    let name = name.unwrap_or_else(|| "upload".to_string());
    if name.is_empty()
        || name.len() > 255
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || hidden_char(c))
    {
        return Err(ApiError::bad_request(
            "name: a file name of 1 to 255 characters without `/`, `\\`, control, \
             invisible formatting (such as bidirectional overrides) or line separator characters",
        ));
    }
    Ok(name)
}

/// Characters a file name must not hold because they are invisible or change how the text
/// around them is shown: controls, bidirectional marks and overrides, zero-width characters,
/// the soft hyphen, and the line and paragraph separators.
fn hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
}

/// Bytes left as they are in an RFC 5987 `filename*` value: its `attr-char`s.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Disposition` for downloading a file named `name` (RFC 6266): a plain ASCII
/// `filename` for old clients and the exact name, percent-encoded UTF-8, as `filename*`.
/// Names stored before upload names were checked as they are now may hold anything, so the
/// ASCII form keeps only printable ASCII.
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let exact: String = name.chars().filter(|&c| !hidden_char(c)).collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent_encoding::utf8_percent_encode(&exact, ATTR_CHAR)
    )
}

/// Reads upload chunks from the connection task; errors end the upload, and so does going
/// past the cap.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
    read: u64,
    cap: u64,
    too_large: Arc<AtomicBool>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(item) => self.chunk = item?,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        self.read += n as u64;
        if self.read > self.cap {
            self.too_large.store(true, Ordering::Relaxed);
            return Err(io::Error::other("upload larger than the cap"));
        }
        Ok(n)
    }
}

/// An image's metadata.
#[utoipa::path(get, path = "/api/projects/{project}/images/{image}", tag = "images",
    params(("project" = String, Path), ("image" = String, Path)),
    responses((status = 200, body = Image), (status = 404, body = ErrorBody)))]
async fn get_image(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, image)): Path<(String, String)>,
) -> ApiResult<Json<Image>> {
    let p = caller.project(&state, &project, Access::Read)?;
    let (image, member) = find(&state, &p, &image)?;
    Ok(Json(view(&image, &member)))
}

/// Removes an image from the project (its annotations there too); pixels held elsewhere stay,
/// the rest go at the next `tessera gc`.
#[utoipa::path(delete, path = "/api/projects/{project}/images/{image}", tag = "images",
    params(("project" = String, Path), ("image" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_image(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, image)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let p = caller.project(&state, &project, Access::Write)?;
    let (image, _) = find(&state, &p, &image)?;
    state.tessera.store().remove_member(&p.id, &image.id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The original file.
#[utoipa::path(get, path = "/api/projects/{project}/images/{image}/file", tag = "images",
    params(("project" = String, Path), ("image" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = ErrorBody)))]
async fn download_image(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, image)): Path<(String, String)>,
) -> ApiResult<Response> {
    let p = caller.project(&state, &project, Access::Read)?;
    let (image, member) = find(&state, &p, &image)?;
    let mut file = state.tessera.store().open_blob(&image.digest)?;

    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buf = vec![0u8; 1 << 20];
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let disposition = content_disposition(&member.name);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, image.size_bytes.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ThumbnailQuery {
    /// Longer side in pixels, 16 to 1024 (default 256).
    size: Option<u32>,
}

/// A PNG thumbnail.
#[utoipa::path(get, path = "/api/projects/{project}/images/{image}/thumbnail", tag = "images",
    params(("project" = String, Path), ("image" = String, Path), ThumbnailQuery),
    responses((status = 200, content_type = "image/png", body = Vec<u8>),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, image)): Path<(String, String)>,
    Query(q): Query<ThumbnailQuery>,
) -> ApiResult<Response> {
    let p = caller.project(&state, &project, Access::Read)?;
    let (image, _) = find(&state, &p, &image)?;
    let size = q.size.unwrap_or(256);
    if !(16..=1024).contains(&size) {
        return Err(ApiError::bad_request(format!(
            "size {size}: expected 16 to 1024"
        )));
    }
    let slide = state.slides.get(&state, &image)?;
    let png = tokio::task::spawn_blocking(move || -> ApiResult<Vec<u8>> {
        let info = slide.info();
        let scale = (f64::from(info.width.max(info.height)) / f64::from(size)).max(1.0);
        let (w, h) = (
            ((f64::from(info.width) / scale).round() as u32).max(1),
            ((f64::from(info.height) / scale).round() as u32).max(1),
        );
        let rgb = render(
            &slide,
            [0.0, 0.0, f64::from(info.width), f64::from(info.height)],
            w,
            h,
        )?;
        encode(rgb, image::ImageFormat::Png)
    })
    .await??;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

/// The number of Deep Zoom levels above level 0 for an image of this size.
fn dzi_max_level(width: u32, height: u32) -> u32 {
    let side = width.max(height).max(1);
    32 - (side - 1).leading_zeros()
}

/// The Deep Zoom descriptor.
#[utoipa::path(get, path = "/api/projects/{project}/images/{image}/image.dzi", tag = "images",
    params(("project" = String, Path), ("image" = String, Path)),
    responses((status = 200, content_type = "application/xml", body = String),
        (status = 404, body = ErrorBody)))]
async fn dzi(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, image)): Path<(String, String)>,
) -> ApiResult<Response> {
    let p = caller.project(&state, &project, Access::Read)?;
    let (image, _) = find(&state, &p, &image)?;
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" \
         TileSize=\"{TILE_SIZE}\" Overlap=\"{TILE_OVERLAP}\" Format=\"jpeg\"><Size Width=\"{}\" Height=\"{}\"/></Image>\n",
        image.info.width, image.info.height
    );
    Ok(([(header::CONTENT_TYPE, "application/xml")], xml).into_response())
}

/// One Deep Zoom tile; `tile` is `{col}_{row}.jpeg`.
#[utoipa::path(get, path = "/api/projects/{project}/images/{image}/image_files/{level}/{tile}", tag = "images",
    params(("project" = String, Path), ("image" = String, Path), ("level" = u32, Path),
        ("tile" = String, Path, description = "`{col}_{row}.jpeg`")),
    responses((status = 200, content_type = "image/jpeg", body = Vec<u8>),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn dzi_tile(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, image, level, tile)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let p = caller.project(&state, &project, Access::Read)?;
    let (image, _) = find(&state, &p, &image)?;
    let bad = || {
        ApiError::bad_request(format!(
            "tile `{level}/{tile}`: expected LEVEL/COL_ROW.jpeg"
        ))
    };
    let level: u32 = level.parse().map_err(|_| bad())?;
    let (col, row) = tile
        .strip_suffix(".jpeg")
        .or_else(|| tile.strip_suffix(".jpg"))
        .and_then(|t| t.split_once('_'))
        .and_then(|(c, r)| Some((c.parse::<u32>().ok()?, r.parse::<u32>().ok()?)))
        .ok_or_else(bad)?;

    let (w0, h0) = (image.info.width, image.info.height);
    let max_level = dzi_max_level(w0, h0);
    let out_of_range = || ApiError::not_found(format!("no tile {level}/{col}_{row} in this image"));
    if level > max_level {
        return Err(out_of_range());
    }
    let scale = f64::from(1u32 << (max_level - level).min(31));
    let (lw, lh) = (
        (f64::from(w0) / scale).ceil() as u32,
        (f64::from(h0) / scale).ceil() as u32,
    );
    let span = |i: u32, len: u32| -> Option<(u32, u32)> {
        let start = i.checked_mul(TILE_SIZE).filter(|s| *s < len)?;
        let begin = start - if i > 0 { TILE_OVERLAP } else { 0 };
        let end = start.saturating_add(TILE_SIZE + TILE_OVERLAP).min(len);
        Some((begin, end))
    };
    let ((x0, x1), (y0, y1)) = match (span(col, lw), span(row, lh)) {
        (Some(x), Some(y)) => (x, y),
        _ => return Err(out_of_range()),
    };

    let slide = state.slides.get(&state, &image)?;
    let jpeg = tokio::task::spawn_blocking(move || -> ApiResult<Vec<u8>> {
        let area = [
            f64::from(x0) * scale,
            f64::from(y0) * scale,
            (f64::from(x1) * scale).min(f64::from(w0)),
            (f64::from(y1) * scale).min(f64::from(h0)),
        ];
        let rgb = render(&slide, area, x1 - x0, y1 - y0)?;
        encode(rgb, image::ImageFormat::Jpeg)
    })
    .await??;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        jpeg,
    )
        .into_response())
}

/// Renders the level-0 area `[x0, y0, x1, y1)` at `width` × `height` from the finest pyramid
/// level that is no finer than needed.
fn render(slide: &Slide, area: [f64; 4], width: u32, height: u32) -> ApiResult<image::RgbImage> {
    let info = slide.info();
    let scale = (area[2] - area[0]) / f64::from(width.max(1));
    let (index, level) = info
        .levels
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| l.downsample <= scale * 1.0001)
        .unwrap_or((0, &info.levels[0]));
    let (dx, dy) = (
        f64::from(info.width) / f64::from(level.width),
        f64::from(info.height) / f64::from(level.height),
    );
    let x = ((area[0] / dx).floor() as u32).min(level.width - 1);
    let y = ((area[1] / dy).floor() as u32).min(level.height - 1);
    let x_end = ((area[2] / dx).ceil() as u32).clamp(x + 1, level.width);
    let y_end = ((area[3] / dy).ceil() as u32).clamp(y + 1, level.height);
    let rect = Rect::new(x, y, x_end - x, y_end - y);
    let pixels = slide
        .read_region(index as u32, rect)
        .map_err(|e| ApiError::internal(format!("reading {rect} of level {index}: {e}")))?;
    let region = image::RgbImage::from_raw(rect.width, rect.height, pixels)
        .ok_or_else(|| ApiError::internal("region has the wrong length"))?;
    if (rect.width, rect.height) == (width, height) {
        return Ok(region);
    }
    Ok(image::imageops::resize(
        &region,
        width.max(1),
        height.max(1),
        image::imageops::FilterType::Triangle,
    ))
}

fn encode(rgb: image::RgbImage, format: image::ImageFormat) -> ApiResult<Vec<u8>> {
    let mut out = Vec::new();
    let result = match format {
        image::ImageFormat::Jpeg => {
            let encoder =
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, TILE_QUALITY);
            rgb.write_with_encoder(encoder)
        }
        _ => rgb.write_to(&mut io::Cursor::new(&mut out), format),
    };
    result.map_err(|e| ApiError::internal(format!("encoding {format:?}: {e}")))?;
    Ok(out)
}

#[derive(Deserialize, ToSchema)]
struct CopyBody {
    /// The target project (needs `write` there).
    project: String,
    /// Also append the image to this dataset of the target project.
    dataset: Option<String>,
}

/// Copies an image into another project (no pixels are copied).
#[utoipa::path(post, path = "/api/projects/{project}/images/{image}/copy", tag = "images",
    params(("project" = String, Path), ("image" = String, Path)), request_body = CopyBody,
    responses((status = 201, body = Image), (status = 200, body = Image),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn copy_image(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, image)): Path<(String, String)>,
    Json(body): Json<CopyBody>,
) -> ApiResult<(StatusCode, Json<Image>)> {
    let from = caller.project(&state, &project, Access::Read)?;
    let (image, member) = find(&state, &from, &image)?;
    let to = caller.project(&state, &body.project, Access::Write)?;
    let mut dataset = match &body.dataset {
        Some(d) => Some(super::projects::find_dataset(&state, &to.id, d)?),
        None => None,
    };
    let new = state.tessera.copy_image(&image, &member.name, &to.id)?;
    if let Some(d) = &mut dataset
        && !d.images.contains(&image.id)
    {
        d.images.push(image.id.clone());
        state.tessera.store().put_dataset(d)?;
    }
    let member = state
        .tessera
        .store()
        .member(&to.id, &image.id)?
        .ok_or_else(|| ApiError::internal("copied image is missing"))?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&image, &member))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_zoom_levels_end_at_one_pixel_and_full_size() {
        assert_eq!(dzi_max_level(1, 1), 0);
        assert_eq!(dzi_max_level(2, 1), 1);
        assert_eq!(dzi_max_level(1000, 600), 10);
        assert_eq!(dzi_max_level(1024, 3), 10);
        assert_eq!(dzi_max_level(1025, 3), 11);
    }

    #[test]
    fn the_slide_cache_drops_least_recently_used_slides_over_its_byte_budget() {
        let mut cache = CacheState::default();
        let mib = 1u64 << 20;
        for (digest, bytes, used) in [("a", 600 * mib, 1), ("b", 300 * mib, 2), ("c", 0, 3)] {
            cache.slots.insert(
                digest.to_string(),
                CacheSlot {
                    slide: Arc::default(),
                    bytes,
                    used,
                },
            );
        }
        cache.evict("c");
        assert_eq!(cache.slots.len(), 3, "within budget, nothing goes");
        cache.slots.get_mut("a").unwrap().used = 4;
        cache.slots.get_mut("c").unwrap().bytes = 400 * mib;
        cache.evict("c");
        // b is the least recently used now; dropping it is enough.
        let mut left: Vec<&str> = cache.slots.keys().map(String::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["a", "c"]);
        assert!(cache.bytes() <= SLIDE_CACHE_BYTES);
        // A slide over the whole budget stays while it is the only one.
        cache.slots.get_mut("c").unwrap().bytes = 2 * SLIDE_CACHE_BYTES;
        cache.evict("c");
        assert_eq!(cache.slots.keys().collect::<Vec<_>>(), ["c"]);
    }
}
