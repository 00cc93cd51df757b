//! Runs a plugin on an image and commits the result with its provenance.
//!
//! A run reads only the images of its scope (here: the one image it was started on), reports
//! progress through a callback, and on success writes the GeoJSON blob, the result record and
//! a GeoJSON file under `results/`. A failed run writes nothing.

pub mod geojson;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::app::{Error, Tessera};
use crate::imaging::Slide;
use crate::plugins::params;
use crate::runtime::{CallContext, DataScope, ProgressFn, Rect, RunRequest, RunResult, ScopeError};
use crate::store::{ImageRecord, MeasurementRecord, ResultRecord};

/// How to run.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// `name=value` parameters; the others take their defaults.
    pub params: Vec<(String, String)>,
    /// Restrict the analysis to this level-0 rectangle.
    pub region: Option<Rect>,
    /// Receives the plugin's progress reports.
    pub progress: Option<ProgressFn>,
    /// Set to cancel.
    pub cancelled: Option<Arc<AtomicBool>>,
}

/// What a successful run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The committed record.
    pub record: ResultRecord,
    /// The annotations and measurements as the plugin returned them.
    pub result: RunResult,
    /// The GeoJSON FeatureCollection.
    pub geojson: Vec<u8>,
    /// Where the GeoJSON was written in the data directory.
    pub geojson_path: PathBuf,
    /// Time spent in the plugin call.
    pub elapsed: Duration,
}

/// The images one run may open.
pub struct JobScope {
    allowed: HashMap<String, Arc<Slide>>,
    known: HashSet<String>,
}

impl DataScope for JobScope {
    fn open_image(&self, id: &str) -> Result<Arc<Slide>, ScopeError> {
        match self.allowed.get(id) {
            Some(slide) => Ok(slide.clone()),
            None if self.known.contains(id) => Err(ScopeError::Denied),
            None => Err(ScopeError::NotFound),
        }
    }
}

/// Runs `plugin_id` on `image` and commits the result.
pub fn run_on_image(
    tessera: &Tessera,
    plugin_id: &str,
    image: &ImageRecord,
    options: RunOptions,
) -> Result<RunOutcome, Error> {
    let (record, plugin) = tessera.plugin(plugin_id)?;
    let manifest = &record.manifest;
    let params = params::resolve(&manifest.parameters, &options.params)
        .map_err(|e| Error::Invalid(format!("{plugin_id}: {e}")))?;

    // 1. The scope: this image only; other ids in the store are denied, unknown ones not found.
    let slide = tessera.open_slide(image)?;
    let known = tessera
        .store()
        .images()?
        .into_iter()
        .map(|i| i.id)
        .collect();
    let scope = JobScope {
        allowed: HashMap::from([(image.id.clone(), slide)]),
        known,
    };
    let ctx = CallContext {
        scope: Arc::new(scope),
        progress: options.progress.clone(),
        cancelled: options.cancelled.clone().unwrap_or_default(),
    };

    // 2. The call.
    let request = RunRequest {
        image: image.id.clone(),
        params: params.clone(),
        region: options.region,
    };
    let started_at = crate::time::now();
    let start = Instant::now();
    let result = plugin.run(ctx, &request)?;
    let elapsed = start.elapsed();
    let finished_at = crate::time::now();

    // 3. Commit: GeoJSON blob, then the record, then the convenience file.
    let geojson = geojson::feature_collection(&result, plugin_id, &image.id);
    let geojson_digest = tessera.store().put_blob_bytes(&geojson)?;
    let record = ResultRecord {
        id: tessera.store().new_id("res")?,
        image_id: image.id.clone(),
        image_digest: image.digest.clone(),
        plugin_id: plugin_id.to_string(),
        plugin_version: manifest.plugin.version.clone(),
        plugin_digest: record.component_digest.clone(),
        api_version: manifest.plugin.api.clone(),
        params: params
            .iter()
            .map(|p| (p.name.clone(), params::to_json(&p.value)))
            .collect(),
        measurements: result
            .measurements
            .iter()
            .map(|m| MeasurementRecord {
                name: m.name.clone(),
                value: m.value,
                unit: m.unit.clone(),
            })
            .collect(),
        annotation_count: result.annotations.len() as u64,
        geojson_digest,
        host_version: crate::HOST_VERSION.to_string(),
        started_at,
        finished_at,
    };
    tessera.store().put_result(&record)?;
    let geojson_path = tessera.store().result_file(&image.id, plugin_id);
    tessera.store().write_file_atomic(&geojson_path, &geojson)?;

    Ok(RunOutcome {
        record,
        result,
        geojson,
        geojson_path,
        elapsed,
    })
}
