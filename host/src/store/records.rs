//! The records kept in the metadata trees.

use serde::{Deserialize, Serialize};

use crate::imaging::ImageInfo;
use crate::plugins::Manifest;

/// An image in the lake: its pixels are the blob `digest`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// Stable id (`img-` + the first 16 hex digits of the digest).
    pub id: String,
    /// File name it was imported from.
    pub name: String,
    /// sha256 of the original file.
    pub digest: String,
    /// Size of the original file in bytes.
    pub size_bytes: u64,
    /// Format, size, pyramid and pixel size.
    pub info: ImageInfo,
    /// When it was imported (RFC 3339, UTC).
    pub imported_at: String,
}

/// An installed plugin: its manifest and the blob of its component.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PluginRecord {
    /// The validated manifest.
    pub manifest: Manifest,
    /// sha256 of the component, also its blob name.
    pub component_digest: String,
    /// When it was installed (RFC 3339, UTC).
    pub installed_at: String,
}

/// One plugin run on one image, with everything needed to reproduce it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ResultRecord {
    /// Unique, time-ordered id.
    pub id: String,
    /// The image analysed.
    pub image_id: String,
    /// sha256 of the image file.
    pub image_digest: String,
    /// Plugin id.
    pub plugin_id: String,
    /// Plugin version.
    pub plugin_version: String,
    /// sha256 of the plugin component.
    pub plugin_digest: String,
    /// Plugin API version the plugin was built for.
    pub api_version: String,
    /// Every parameter, defaults filled in, as `name = value` JSON.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Whole-image measurements.
    pub measurements: Vec<MeasurementRecord>,
    /// Number of annotations.
    pub annotation_count: u64,
    /// sha256 of the GeoJSON FeatureCollection blob.
    pub geojson_digest: String,
    /// Version of the host that ran it.
    pub host_version: String,
    /// Start and end (RFC 3339, UTC).
    pub started_at: String,
    /// End of the run.
    pub finished_at: String,
}

/// A named number with an optional unit.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MeasurementRecord {
    /// Name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Unit.
    pub unit: Option<String>,
}
