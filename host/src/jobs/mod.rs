//! Runs a plugin on an image and commits the result with its provenance.
//!
//! A run reads only the images of its scope (the image it was started on, or with
//! `grants.data = "project"` every image of its project, opened on first use), reports
//! progress through a callback, and on success writes the GeoJSON blob, the result record and
//! a GeoJSON file under `results/`. A failed run writes nothing.

pub mod geojson;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::app::{Error, Tessera};
use crate::imaging::Slide;
use crate::plugins::manifest::DataScope as ManifestScope;
use crate::plugins::params;
use crate::runtime::{
    CallContext, DataScope, Geometry, Point, ProgressFn, Rect, RunRequest, RunResult, ScopeError,
};
use crate::store::{
    ChangeKind, ChangeOp, DEFAULT_PROJECT, ImageRecord, MeasurementRecord, ResultRecord,
};

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
    /// The project the run belongs to; [`DEFAULT_PROJECT`] when `None`.
    pub project: Option<String>,
    /// The server run this is one item of. Its annotations are then also stored as the
    /// annotation source `result:<run>` of the image.
    pub run: Option<String>,
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
    /// Peak linear memory of the plugin during the call, in bytes.
    pub peak_memory_bytes: u64,
}

/// The images one run may open. Every other id is denied, whether or not it exists, so a
/// plugin learns nothing about the store outside its scope (and no lookup is needed).
pub struct JobScope {
    allowed: HashMap<String, Arc<Slide>>,
    /// With a project-wide grant: the blob paths of the project's other images.
    project: HashMap<String, PathBuf>,
    limits: crate::imaging::Limits,
    opened: Mutex<HashMap<String, Arc<Slide>>>,
}

impl DataScope for JobScope {
    fn open_image(&self, id: &str) -> Result<Arc<Slide>, ScopeError> {
        if let Some(slide) = self.allowed.get(id) {
            return Ok(slide.clone());
        }
        let path = self.project.get(id).ok_or(ScopeError::Denied)?;
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slide) = opened.get(id) {
            return Ok(slide.clone());
        }
        let slide = Arc::new(
            Slide::open(path, &self.limits).map_err(|e| ScopeError::Unreadable(e.to_string()))?,
        );
        opened.insert(id.to_string(), slide.clone());
        Ok(slide)
    }
}

/// Most annotations one result may hold. The GeoJSON of a result is built in host memory, about
/// a hundred bytes per point; raise this together with a streaming writer.
pub const MAX_RESULT_ANNOTATIONS: usize = 1_000_000;

/// Most polygon vertices over all annotations of one result.
pub const MAX_RESULT_VERTICES: usize = 20_000_000;

/// Refuses results the store could not keep faithfully: too large, or with numbers JSON cannot
/// hold (NaN, infinities).
fn check_result(result: &RunResult) -> Result<(), String> {
    if result.annotations.len() > MAX_RESULT_ANNOTATIONS {
        return Err(format!(
            "{} annotations, more than the {MAX_RESULT_ANNOTATIONS} a result may hold",
            result.annotations.len()
        ));
    }
    for m in &result.measurements {
        if !m.value.is_finite() {
            let name = crate::runtime::printable(&m.name, 64);
            return Err(format!(
                "measurement `{name}` = {}, not a finite number",
                m.value
            ));
        }
    }
    let mut vertices = 0usize;
    for (i, a) in result.annotations.iter().enumerate() {
        let finite = |p: &Point| p.x.is_finite() && p.y.is_finite();
        let ok = match &a.geometry {
            Geometry::Point(p) => finite(p),
            Geometry::Polygon(rings) => {
                vertices += rings.iter().map(Vec::len).sum::<usize>();
                rings.iter().all(|r| r.len() >= 3 && r.iter().all(finite))
            }
            Geometry::Rectangle(_) => true,
        } && a.properties.iter().all(|p| p.value.is_finite());
        if !ok {
            return Err(format!(
                "annotation {i} with a non-finite number or a polygon ring of fewer than 3 points"
            ));
        }
    }
    if vertices > MAX_RESULT_VERTICES {
        return Err(format!(
            "{vertices} polygon vertices, more than the {MAX_RESULT_VERTICES} a result may hold"
        ));
    }
    Ok(())
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

    // 1. The scope: this image, or every image of the project when the grant says so.
    let project = options.project.as_deref().unwrap_or(DEFAULT_PROJECT);
    let slide = tessera.open_slide(image)?;
    let mut others = HashMap::new();
    // The grant the admin approved, not what the manifest asks.
    if record.grant().data == ManifestScope::Project {
        for member in tessera.store().members(project)? {
            if let Some(other) = tessera.store().image(&member.image)? {
                others.insert(other.id, tessera.store().blob_path(&other.digest));
            }
        }
    }
    let scope = JobScope {
        allowed: HashMap::from([(image.id.clone(), slide)]),
        project: others,
        limits: tessera.config().image_limits.clone(),
        opened: Mutex::new(HashMap::new()),
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
    let (result, peak_memory_bytes) = plugin.run_measured(ctx, &request);
    let result = result?;
    let elapsed = start.elapsed();
    check_result(&result)
        .map_err(|e| Error::Invalid(format!("plugin `{plugin_id}` returned {e}")))?;
    let finished_at = crate::time::now();

    // 3. Commit: GeoJSON blob, then the record, then the convenience file.
    let geojson = geojson::feature_collection(&result, plugin_id, &image.id);
    let geojson_digest = tessera.store().put_blob_bytes(&geojson)?;
    let record = ResultRecord {
        id: tessera.store().new_id("res")?,
        project: project.to_string(),
        run: options.run.clone(),
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
    if let Some(run) = &options.run {
        let features = crate::annotations::parse_collection(&geojson)
            .map_err(|e| Error::Invalid(format!("plugin `{plugin_id}` result: {e}")))?;
        let source = format!("{}{run}", crate::annotations::RESULT_SOURCE_PREFIX);
        tessera
            .store()
            .put_features(project, &image.id, &source, features, true)?;
    }
    tessera.store().record_change(
        ChangeOp::Created,
        ChangeKind::Result,
        project,
        &image.id,
        None,
        Some(&record.id),
    )?;
    let geojson_path = tessera.store().result_file(&image.id, plugin_id);
    tessera.store().write_file_atomic(&geojson_path, &geojson)?;

    Ok(RunOutcome {
        record,
        result,
        geojson,
        geojson_path,
        elapsed,
        peak_memory_bytes,
    })
}
