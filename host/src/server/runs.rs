//! Runs (a plugin over one image or a dataset), their progress as server-sent events, and
//! the results they leave.
//!
//! A run is persisted as a [`RunRecord`] at every state change. It waits for one of
//! [`ServerOptions::workers`](super::ServerOptions) permits, then runs image after image on a
//! blocking thread through [`jobs::run_on_image`]. Progress and state changes go to a
//! broadcast channel per live run; a stream subscribes, gets the current state at once, and
//! ends after the terminal state.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, broadcast};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, check_id};
use super::error::{ApiError, ApiResult, ErrorBody};
use crate::jobs::{self, RunOptions};
use crate::store::{Access, ResultRecord, RunRecord, RunState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runs, start_run))
        .routes(routes!(get_run))
        .routes(routes!(run_events))
        .routes(routes!(cancel_run))
        .routes(routes!(list_results))
        .routes(routes!(get_result))
        .routes(routes!(result_geojson))
}

/// Events kept for a slow stream before it skips ahead.
const EVENT_BUFFER: usize = 256;

/// What a stream is told.
#[derive(Clone, Debug)]
enum RunEvent {
    Progress(Progress),
    State(Box<RunRecord>),
}

/// A plugin's progress on one image of a run.
#[derive(Clone, Debug, Serialize, ToSchema)]
struct Progress {
    image: String,
    done: u64,
    total: u64,
    /// 1-based position of the image in the run.
    item: u64,
    items: u64,
}

/// A run being executed or waiting.
struct Live {
    record: Mutex<RunRecord>,
    events: broadcast::Sender<RunEvent>,
    cancel: Arc<AtomicBool>,
}

/// The runs of this process.
pub struct Runs {
    live: Mutex<HashMap<String, Arc<Live>>>,
    permits: Arc<Semaphore>,
}

impl Runs {
    pub fn new(workers: usize) -> Runs {
        Runs {
            live: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(workers.max(1))),
        }
    }

    fn get(&self, id: &str) -> Option<Arc<Live>> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}

impl Live {
    /// Changes the record, saves it and tells the streams. A terminal state is final: later
    /// updates (a worker finishing after a cancel) are ignored.
    fn update(&self, state: &AppState, change: impl FnOnce(&mut RunRecord)) {
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        if record.state.is_terminal() {
            return;
        }
        change(&mut record);
        if record.state.is_terminal() {
            record.finished_at = Some(crate::time::now());
        }
        if let Err(e) = state.tessera.store().put_run(&record) {
            tracing::error!(run = %record.id, error = %e, "cannot save run state");
        }
        let _ = self.events.send(RunEvent::State(Box::new(record.clone())));
    }

    fn snapshot(&self) -> RunRecord {
        self.record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[derive(Deserialize, ToSchema)]
struct NewRun {
    /// Plugin id.
    plugin: String,
    /// One image of the project…
    image: Option<String>,
    /// …or every image of a dataset, in order.
    dataset: Option<String>,
    /// Parameters by name; others take their defaults.
    #[serde(default)]
    #[schema(value_type = Object)]
    params: serde_json::Map<String, serde_json::Value>,
}

/// Starts a plugin on an image or a dataset.
#[utoipa::path(post, path = "/api/projects/{project}/runs", tag = "runs",
    params(("project" = String, Path)), request_body = NewRun,
    responses((status = 202, body = RunRecord), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn start_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Json(body): Json<NewRun>,
) -> ApiResult<(StatusCode, Json<RunRecord>)> {
    let p = caller.project(&state, &project, Access::Write)?;
    check_id("plugin", &body.plugin)?;
    let store = state.tessera.store();
    let plugin = store
        .plugin(&body.plugin)?
        .ok_or_else(|| ApiError::not_found(format!("no plugin `{}` is installed", body.plugin)))?;

    let images = match (&body.image, &body.dataset) {
        (Some(image), None) => vec![super::images::find(&state, &p, image)?.0.id],
        (None, Some(dataset)) => super::projects::find_dataset(&state, &p.id, dataset)?.images,
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `image` and `dataset`",
            ));
        }
    };
    if images.is_empty() {
        return Err(ApiError::bad_request("the dataset has no images"));
    }
    // Parameters are checked now, so a typo answers 400 instead of failing the run.
    let params = param_pairs(&body.params)?;
    crate::plugins::params::resolve(&plugin.manifest.parameters, &params)
        .map_err(|e| ApiError::bad_request(format!("{}: {e}", body.plugin)))?;

    let record = RunRecord {
        id: store.new_id("run")?,
        project: p.id.clone(),
        plugin: body.plugin.clone(),
        total: images.len() as u64,
        images,
        params: body.params,
        state: RunState::Queued,
        done: 0,
        results: Vec::new(),
        error: None,
        user: caller.0.name.clone(),
        created_at: crate::time::now(),
        started_at: None,
        finished_at: None,
    };
    store.put_run(&record)?;
    let live = Arc::new(Live {
        record: Mutex::new(record.clone()),
        events: broadcast::channel(EVENT_BUFFER).0,
        cancel: Arc::new(AtomicBool::new(false)),
    });
    state
        .runs
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(record.id.clone(), live.clone());

    let worker_state = state.clone();
    tokio::spawn(async move {
        let Ok(_permit) = worker_state.runs.permits.clone().acquire_owned().await else {
            return;
        };
        let id = live.snapshot().id;
        let run_state = worker_state.clone();
        let done = tokio::task::spawn_blocking(move || execute(&run_state, &live, params)).await;
        if let Err(e) = done {
            tracing::error!(run = %id, error = %e, "run worker panicked");
        }
        worker_state
            .runs
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    });
    Ok((StatusCode::ACCEPTED, Json(record)))
}

fn param_pairs(
    params: &serde_json::Map<String, serde_json::Value>,
) -> ApiResult<Vec<(String, String)>> {
    params
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "params.{k}: expected a string, number or boolean"
                    )));
                }
            };
            Ok((k.clone(), text))
        })
        .collect()
}

/// Runs every image of the run in turn, on a blocking thread.
fn execute(state: &AppState, live: &Live, params: Vec<(String, String)>) {
    let record = live.snapshot();
    if live.cancel.load(Ordering::Relaxed) || record.state.is_terminal() {
        return;
    }
    live.update(state, |r| {
        r.state = RunState::Running;
        r.started_at = Some(crate::time::now());
    });
    let items = record.images.len() as u64;
    for (i, image_id) in record.images.iter().enumerate() {
        if live.cancel.load(Ordering::Relaxed) {
            return;
        }
        let image = match state.tessera.store().member(&record.project, image_id) {
            Ok(Some(_)) => state.tessera.store().image(image_id).ok().flatten(),
            _ => None,
        };
        let Some(image) = image else {
            live.update(state, |r| {
                r.state = RunState::Failed;
                r.error = Some(format!("image `{image_id}` is no longer in the project"));
            });
            return;
        };
        let events = live.events.clone();
        let progress_image = image_id.clone();
        let options = RunOptions {
            params: params.clone(),
            progress: Some(Arc::new(move |done, total| {
                let _ = events.send(RunEvent::Progress(Progress {
                    image: progress_image.clone(),
                    done,
                    total,
                    item: i as u64 + 1,
                    items,
                }));
            })),
            cancelled: Some(live.cancel.clone()),
            project: Some(record.project.clone()),
            run: Some(record.id.clone()),
            ..RunOptions::default()
        };
        match jobs::run_on_image(&state.tessera, &record.plugin, &image, options) {
            Ok(outcome) => live.update(state, |r| {
                r.done += 1;
                r.results.push(outcome.record.id.clone());
            }),
            Err(_) if live.cancel.load(Ordering::Relaxed) => return,
            Err(e) => {
                tracing::warn!(run = %record.id, image = %image_id, error = %e, "run failed");
                live.update(state, |r| {
                    r.state = RunState::Failed;
                    r.error = Some(format!("{image_id}: {e}"));
                });
                return;
            }
        }
    }
    live.update(state, |r| r.state = RunState::Done);
}

/// Runs of a project, oldest first.
#[utoipa::path(get, path = "/api/projects/{project}/runs", tag = "runs",
    params(("project" = String, Path)),
    responses((status = 200, body = Vec<RunRecord>), (status = 404, body = ErrorBody)))]
async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Vec<RunRecord>>> {
    let p = caller.project(&state, &project, Access::Read)?;
    let runs = state.tessera.store().runs()?;
    Ok(Json(
        runs.into_iter().filter(|r| r.project == p.id).collect(),
    ))
}

fn find_run(state: &AppState, project: &str, id: &str) -> ApiResult<RunRecord> {
    check_id("run", id)?;
    if let Some(live) = state.runs.get(id) {
        let r = live.snapshot();
        if r.project == project {
            return Ok(r);
        }
    }
    state
        .tessera
        .store()
        .run(id)?
        .filter(|r| r.project == project)
        .ok_or_else(|| ApiError::not_found(format!("no run `{id}` in project `{project}`")))
}

/// A run's state.
#[utoipa::path(get, path = "/api/projects/{project}/runs/{run}", tag = "runs",
    params(("project" = String, Path), ("run" = String, Path)),
    responses((status = 200, body = RunRecord), (status = 404, body = ErrorBody)))]
async fn get_run(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, run)): Path<(String, String)>,
) -> ApiResult<Json<RunRecord>> {
    let p = caller.project(&state, &project, Access::Read)?;
    Ok(Json(find_run(&state, &p.id, &run)?))
}

/// Asks a run to stop; it ends `cancelled`.
#[utoipa::path(post, path = "/api/projects/{project}/runs/{run}/cancel", tag = "runs",
    params(("project" = String, Path), ("run" = String, Path)),
    responses((status = 200, body = RunRecord), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn cancel_run(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, run)): Path<(String, String)>,
) -> ApiResult<Json<RunRecord>> {
    let p = caller.project(&state, &project, Access::Write)?;
    let record = find_run(&state, &p.id, &run)?;
    if let Some(live) = state.runs.get(&record.id) {
        live.cancel.store(true, Ordering::Relaxed);
        live.update(&state, |r| {
            r.state = RunState::Cancelled;
            r.error = Some(format!("cancelled by {}", caller.0.name));
        });
        return Ok(Json(live.snapshot()));
    }
    Ok(Json(record))
}

/// Progress and state changes of a run as server-sent events (`progress`, `state`).
#[utoipa::path(get, path = "/api/projects/{project}/runs/{run}/events", tag = "runs",
    params(("project" = String, Path), ("run" = String, Path)),
    responses((status = 200, content_type = "text/event-stream", body = String),
        (status = 404, body = ErrorBody)))]
async fn run_events(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, run)): Path<(String, String)>,
) -> ApiResult<Response> {
    let p = caller.project(&state, &project, Access::Read)?;
    let record = find_run(&state, &p.id, &run)?;
    // Subscribe before reading the state, so no change falls between the two.
    let rx = state.runs.get(&record.id).map(|live| {
        let rx = live.events.subscribe();
        (rx, live.snapshot())
    });
    let (rx, current) = match rx {
        Some((rx, snapshot)) => (Some(rx), snapshot),
        None => (None, find_run(&state, &p.id, &run)?),
    };
    Ok(Sse::new(event_stream(current, rx))
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn state_event(record: &RunRecord) -> Event {
    Event::default()
        .event("state")
        .data(serde_json::to_string(record).unwrap_or_default())
}

fn event_stream(
    current: RunRecord,
    rx: Option<broadcast::Receiver<RunEvent>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let finished = current.state.is_terminal();
    let first =
        futures_util::stream::once(async move { Ok::<Event, Infallible>(state_event(&current)) });
    let rest = futures_util::stream::unfold(
        (rx.filter(|_| !finished), false),
        |(rx, ended)| async move {
            let mut rx = rx?;
            if ended {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(RunEvent::Progress(p)) => {
                        let e = Event::default()
                            .event("progress")
                            .data(serde_json::to_string(&p).unwrap_or_default());
                        return Some((Ok::<Event, Infallible>(e), (Some(rx), false)));
                    }
                    Ok(RunEvent::State(r)) => {
                        let ended = r.state.is_terminal();
                        return Some((Ok::<Event, Infallible>(state_event(&r)), (Some(rx), ended)));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    futures_util::StreamExt::chain(first, rest)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ResultsQuery {
    /// Only results on this image.
    image: Option<String>,
}

/// Results of a project with their provenance.
#[utoipa::path(get, path = "/api/projects/{project}/results", tag = "results",
    params(("project" = String, Path), ResultsQuery),
    responses((status = 200, body = Vec<ResultRecord>), (status = 404, body = ErrorBody)))]
async fn list_results(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Query(q): Query<ResultsQuery>,
) -> ApiResult<Json<Vec<ResultRecord>>> {
    let p = caller.project(&state, &project, Access::Read)?;
    if let Some(image) = &q.image {
        check_id("image", image)?;
    }
    let results = state.tessera.store().results()?;
    Ok(Json(
        results
            .into_iter()
            .filter(|r| r.project == p.id && q.image.as_ref().is_none_or(|i| *i == r.image_id))
            .collect(),
    ))
}

fn find_result(state: &AppState, project: &str, id: &str) -> ApiResult<ResultRecord> {
    check_id("result", id)?;
    state
        .tessera
        .store()
        .result(id)?
        .filter(|r| r.project == project)
        .ok_or_else(|| ApiError::not_found(format!("no result `{id}` in project `{project}`")))
}

/// One result with its provenance.
#[utoipa::path(get, path = "/api/projects/{project}/results/{result}", tag = "results",
    params(("project" = String, Path), ("result" = String, Path)),
    responses((status = 200, body = ResultRecord), (status = 404, body = ErrorBody)))]
async fn get_result(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, result)): Path<(String, String)>,
) -> ApiResult<Json<ResultRecord>> {
    let p = caller.project(&state, &project, Access::Read)?;
    Ok(Json(find_result(&state, &p.id, &result)?))
}

/// A result's GeoJSON FeatureCollection, as the plugin produced it.
#[utoipa::path(get, path = "/api/projects/{project}/results/{result}/geojson", tag = "results",
    params(("project" = String, Path), ("result" = String, Path)),
    responses((status = 200, content_type = "application/geo+json", body = Object),
        (status = 404, body = ErrorBody)))]
async fn result_geojson(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, result)): Path<(String, String)>,
) -> ApiResult<Response> {
    let p = caller.project(&state, &project, Access::Read)?;
    let record = find_result(&state, &p.id, &result)?;
    let tessera = state.tessera.clone();
    let bytes =
        tokio::task::spawn_blocking(move || tessera.store().read_blob(&record.geojson_digest))
            .await??;
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], bytes).into_response())
}
