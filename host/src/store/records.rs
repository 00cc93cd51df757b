//! The records kept in the metadata trees.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::imaging::ImageInfo;
use crate::plugins::Manifest;
use crate::plugins::grant::Grant;
use crate::plugins::package::Signer;

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
    /// Whether it may be run; a disabled plugin stays installed.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// The grant the admin approved. Records written before grants were stored have none and
    /// run under what their manifest asks ([`PluginRecord::grant`]).
    #[serde(default)]
    pub approved: Option<Grant>,
    /// Where it was installed from.
    #[serde(default)]
    pub origin: Origin,
}

fn enabled_by_default() -> bool {
    true
}

impl PluginRecord {
    /// The grant it runs under.
    pub fn grant(&self) -> Grant {
        self.approved
            .clone()
            .unwrap_or_else(|| Grant::requested(&self.manifest))
    }
}

/// Where an installed plugin came from.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum Origin {
    /// A source directory (development install, never signed).
    #[default]
    Directory,
    /// A package file.
    Package {
        /// The package's contents digest (what its signature covers).
        contents_digest: String,
        /// Who signed it, as checked at install.
        signer: Signer,
    },
}

/// One plugin run on one image, with everything needed to reproduce it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ResultRecord {
    /// Unique, time-ordered id.
    pub id: String,
    /// The project it belongs to.
    #[serde(default = "default_project")]
    pub project: String,
    /// The run that produced it (`None` for a CLI run).
    #[serde(default)]
    pub run: Option<String>,
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
    #[schema(value_type = Object)]
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
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct MeasurementRecord {
    /// Name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Unit.
    pub unit: Option<String>,
}

fn default_project() -> String {
    super::DEFAULT_PROJECT.to_string()
}

/// A team: the unit that projects are granted to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TeamRecord {
    /// Unique name, an id.
    pub name: String,
    /// When it was created.
    pub created_at: String,
}

/// A user of the HTTP API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UserRecord {
    /// Unique name, an id.
    pub name: String,
    /// The teams they belong to.
    pub teams: Vec<String>,
    /// `admin` manages teams, users and grants; otherwise a member.
    pub admin: bool,
    /// sha256 (hex) of their bearer token; the token itself is never stored.
    pub token_sha256: String,
    /// When it was created.
    pub created_at: String,
}

/// What a team may do in a project.
#[derive(
    Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// See and download.
    Read,
    /// Also upload, annotate, run, delete.
    Write,
}

/// A project: images, datasets, annotations and results, owned by a team.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProjectRecord {
    /// Opaque id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The owning team (always has `write`).
    pub team: String,
    /// Grants to other teams.
    pub grants: BTreeMap<String, Access>,
    /// When it was created.
    pub created_at: String,
}

impl ProjectRecord {
    /// The best access any of `teams` has.
    pub fn access(&self, teams: &[String]) -> Option<Access> {
        teams
            .iter()
            .filter_map(|t| {
                if *t == self.team {
                    Some(Access::Write)
                } else {
                    self.grants.get(t).copied()
                }
            })
            .max()
    }
}

/// An image as a member of a project.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MemberRecord {
    /// The project.
    pub project: String,
    /// The image id.
    pub image: String,
    /// The name it has in this project.
    pub name: String,
    /// When it was added.
    pub added_at: String,
}

/// A named, ordered set of images of one project.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct DatasetRecord {
    /// Opaque id.
    pub id: String,
    /// The project.
    pub project: String,
    /// Display name.
    pub name: String,
    /// Image ids, in order.
    pub images: Vec<String>,
    /// When it was created.
    pub created_at: String,
}

/// The metadata of one annotation collection (project, image, source).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CollectionRecord {
    /// The source: `manual`, a client's name, or `result:<run>`.
    pub source: String,
    /// How many features it holds.
    pub count: u64,
    /// Widest and tallest feature bounding box, which bounds how far a bbox query looks.
    pub max_width: f64,
    /// See `max_width`.
    pub max_height: f64,
    /// The next feature sequence number.
    pub next_seq: u64,
    /// Last change.
    pub updated_at: String,
}

/// What a change did.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Created,
    Updated,
    Deleted,
}

/// What a change was about.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Image,
    Annotations,
    Result,
}

/// One entry of the change feed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ChangeRecord {
    /// Position in the feed (decimal, growing).
    pub cursor: String,
    /// What happened.
    pub op: ChangeOp,
    /// To what.
    pub kind: ChangeKind,
    /// In which project.
    pub project: String,
    /// The image concerned.
    pub image: String,
    /// The annotation source, for annotation changes.
    pub source: Option<String>,
    /// The result id, for result changes.
    pub result: Option<String>,
    /// When.
    pub at: String,
}

/// The state of a run.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
    /// The server stopped while it was queued or running.
    Interrupted,
}

impl RunState {
    /// True once nothing will change any more.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunState::Queued | RunState::Running)
    }
}

/// A plugin run over one or many images of a project.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RunRecord {
    /// Opaque id.
    pub id: String,
    /// The project.
    pub project: String,
    /// Plugin id.
    pub plugin: String,
    /// The images, in order.
    pub images: Vec<String>,
    /// Parameters as given (`name` → JSON value).
    #[schema(value_type = Object)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Where it is.
    pub state: RunState,
    /// Images finished.
    pub done: u64,
    /// Images in all.
    pub total: u64,
    /// Result ids, one per finished image.
    pub results: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The user who started it.
    pub user: String,
    /// When it was started.
    pub created_at: String,
    /// When a worker took it.
    pub started_at: Option<String>,
    /// When it ended.
    pub finished_at: Option<String>,
}
