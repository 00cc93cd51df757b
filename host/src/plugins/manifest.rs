//! `tessera.toml`: what a plugin is, what it takes, and what it asks for.
//!
//! ```toml
//! [plugin]
//! id = "nuclei-detect"
//! name = "Nuclei detection"
//! version = "0.1.0"
//! kind = "algorithm"
//! api = "0.1.0"
//! description = "Finds haematoxylin-stained nuclei"
//!
//! [limits]
//! memory-mib = 1024
//! time-seconds = 300
//!
//! [grants]
//! data = "image"        # or "project": which images its `data` calls may open
//! write = false         # may it write annotations into the project
//! gpu-memory-mib = 512  # device memory it may hold; 0 (the default) means no GPU
//!
//! [[parameters]]
//! name = "sigma"
//! type = "float"
//! default = 1.0
//! min = 0.1
//! max = 10.0
//! description = "Gaussian blur before thresholding, in pixels"
//! ```
//!
//! Unknown fields are refused, so a typo never silently drops a limit.

use serde::{Deserialize, Serialize};

use crate::runtime::limits::{MAX_CALL_TIME, MAX_GPU_MEMORY_BYTES, MAX_PLUGIN_MEMORY_BYTES};

/// The plugin API versions this host speaks: every minor up to this one, of this major.
pub const HOST_API_VERSION: ApiVersion = ApiVersion {
    major: 0,
    minor: 2,
    patch: 0,
};

/// The first released plugin API; nothing older exists.
pub const FIRST_API_VERSION: ApiVersion = ApiVersion {
    major: 0,
    minor: 1,
    patch: 0,
};

/// Longest plugin id.
pub const MAX_ID_LEN: usize = 64;

/// A parsed `tessera.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Identity and kind.
    pub plugin: PluginSection,
    /// What the plugin asks for.
    #[serde(default)]
    pub limits: LimitsSection,
    /// What data and devices it may touch.
    #[serde(default)]
    pub grants: GrantsSection,
    /// Typed parameters with defaults and ranges.
    #[serde(default)]
    pub parameters: Vec<ParamDecl>,
}

/// `[plugin]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    /// Unique id, lowercase letters, digits and `-`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Semantic version of the plugin.
    pub version: String,
    /// `algorithm` (curation steps and UI panels come with their worlds).
    pub kind: PluginKind,
    /// The plugin API version it was built against.
    pub api: String,
    /// One sentence on what it does.
    #[serde(default)]
    pub description: String,
}

/// The kind of plugin, i.e. the world its component exports.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// Analyses one image: `describe` + `run`.
    Algorithm,
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginKind::Algorithm => "algorithm",
        })
    }
}

/// `[limits]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsSection {
    /// Largest linear memory in MiB.
    pub memory_mib: Option<u64>,
    /// Longest time one run may take, in seconds.
    pub time_seconds: Option<u64>,
}

/// `[grants]`: what an installed plugin may touch beyond its own memory and time.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GrantsSection {
    /// Which images its `data` calls may open.
    #[serde(default)]
    pub data: DataScope,
    /// Whether it may write annotations into the job's project.
    #[serde(default)]
    pub write: bool,
    /// Device memory it may hold at once, in MiB; 0 means no GPU access.
    #[serde(default)]
    pub gpu_memory_mib: u64,
}

/// Which images a plugin's `data` calls may reach inside a job.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DataScope {
    /// Only the images the job was started on.
    #[default]
    Image,
    /// Every image of the job's project, read-only unless `write` is granted.
    Project,
}

impl std::fmt::Display for DataScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataScope::Image => "image",
            DataScope::Project => "project",
        })
    }
}

/// `[[parameters]]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParamDecl {
    /// Name, `kebab-case`.
    pub name: String,
    /// `int`, `float`, `flag`, `text` or `choice`.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// Default value, of the declared type.
    pub default: toml::Value,
    /// Smallest value (`int`, `float`).
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest value (`int`, `float`).
    #[serde(default)]
    pub max: Option<f64>,
    /// Allowed values (`choice`).
    #[serde(default)]
    pub choices: Vec<String>,
    /// One line of help.
    #[serde(default)]
    pub description: String,
}

/// The type of a parameter.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ParamType {
    /// Whole number.
    Int,
    /// Real number.
    Float,
    /// On or off.
    Flag,
    /// Free text.
    Text,
    /// One of `choices`.
    Choice,
}

/// A `major.minor.patch` plugin API version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    /// Breaking changes.
    pub major: u32,
    /// Additions.
    pub minor: u32,
    /// Fixes.
    pub patch: u32,
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl ApiVersion {
    /// Parses `major.minor.patch`.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        // Strict: digits only, no sign, no spaces, no leading zeros.
        let number = |p: &str| {
            let canonical = !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p == "0" || !p.starts_with('0'));
            if canonical {
                p.parse::<u32>().ok()
            } else {
                None
            }
        };
        let mut parts = s.split('.').map(number);
        let v = ApiVersion {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next()??,
        };
        parts.next().is_none().then_some(v)
    }

    /// True when a plugin built for `self` runs on a host speaking `host`: same major, and not
    /// newer than the host, and not older than the first release of that major.
    pub fn runs_on(&self, host: &ApiVersion) -> bool {
        self.major == host.major && self >= &FIRST_API_VERSION && self <= host
    }
}

/// What is wrong with a manifest.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ManifestError {
    /// The manifest file (or the field, for problems found after parsing).
    pub path: String,
    /// What was expected and what was found.
    pub problem: String,
}

impl Manifest {
    /// Parses and validates a manifest; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| ManifestError {
            path: path.to_string(),
            problem: e.message().to_string()
                + &e.span()
                    .map(|s| format!(" (at byte {})", s.start))
                    .unwrap_or_default(),
        })?;
        manifest.validate().map_err(|problem| ManifestError {
            path: path.to_string(),
            problem,
        })?;
        Ok(manifest)
    }

    /// The plugin API version it declares (valid after [`Manifest::parse`]).
    pub fn api_version(&self) -> ApiVersion {
        ApiVersion::parse(&self.plugin.api).unwrap_or(HOST_API_VERSION)
    }

    /// Memory cap asked for, in bytes.
    pub fn memory_bytes(&self) -> Option<u64> {
        self.limits.memory_mib.map(|m| m << 20)
    }

    /// Device memory granted, in bytes (0: no GPU).
    pub fn gpu_memory_bytes(&self) -> u64 {
        self.grants.gpu_memory_mib << 20
    }

    /// Time budget asked for.
    pub fn call_time(&self) -> Option<std::time::Duration> {
        self.limits.time_seconds.map(std::time::Duration::from_secs)
    }

    fn validate(&self) -> Result<(), String> {
        let p = &self.plugin;
        let id_ok = !p.id.is_empty()
            && p.id.len() <= MAX_ID_LEN
            && p.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !p.id.starts_with('-');
        if !id_ok {
            return Err(format!(
                "plugin.id `{}` must be 1 to {MAX_ID_LEN} lowercase letters, digits or `-`",
                p.id
            ));
        }
        if ApiVersion::parse(&p.version).is_none() {
            return Err(format!(
                "plugin.version `{}` is not a `major.minor.patch` version",
                p.version
            ));
        }
        let api = ApiVersion::parse(&p.api).ok_or_else(|| {
            format!(
                "plugin.api `{}` is not a `major.minor.patch` version",
                p.api
            )
        })?;
        if !api.runs_on(&HOST_API_VERSION) {
            return Err(format!(
                "plugin is built for plugin API {api}, this host speaks {HOST_API_VERSION} \
                 (and older {}.x minors); hint: rebuild it against tessera-sdk for {HOST_API_VERSION}",
                HOST_API_VERSION.major
            ));
        }

        let max_mib = MAX_PLUGIN_MEMORY_BYTES >> 20;
        if let Some(m) = self.limits.memory_mib
            && !(1..=max_mib).contains(&m)
        {
            return Err(format!("limits.memory-mib is {m}, expected 1 to {max_mib}"));
        }
        let max_s = MAX_CALL_TIME.as_secs();
        if let Some(t) = self.limits.time_seconds
            && !(1..=max_s).contains(&t)
        {
            return Err(format!("limits.time-seconds is {t}, expected 1 to {max_s}"));
        }

        let max_gpu_mib = MAX_GPU_MEMORY_BYTES >> 20;
        if self.grants.gpu_memory_mib > max_gpu_mib {
            return Err(format!(
                "grants.gpu-memory-mib is {}, expected 0 to {max_gpu_mib}",
                self.grants.gpu_memory_mib
            ));
        }

        let mut seen = std::collections::HashSet::new();
        for decl in &self.parameters {
            if !seen.insert(decl.name.as_str()) {
                return Err(format!("parameter `{}` is declared twice", decl.name));
            }
            decl.validate()
                .map_err(|e| format!("parameter `{}`: {e}", decl.name))?;
        }
        Ok(())
    }
}

impl ParamDecl {
    /// The allowed values as people read them: ` in 0.1..=10`, ` of a|b`, or nothing.
    pub fn range_text(&self) -> String {
        match (self.min, self.max) {
            (Some(min), Some(max)) => format!(" in {min}..={max}"),
            _ if !self.choices.is_empty() => format!(" of {}", self.choices.join("|")),
            _ => String::new(),
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("name must be lowercase letters, digits or `-`".into());
        }
        match self.kind {
            ParamType::Int | ParamType::Float => {
                let (Some(min), Some(max)) = (self.min, self.max) else {
                    return Err("numeric parameters need `min` and `max`".into());
                };
                if min > max {
                    return Err(format!("min {min} is above max {max}"));
                }
                let default = match (&self.default, self.kind) {
                    (toml::Value::Integer(i), _) => *i as f64,
                    (toml::Value::Float(f), ParamType::Float) => *f,
                    (other, _) => {
                        return Err(format!(
                            "default should be {}, found {other}",
                            type_name(self.kind)
                        ));
                    }
                };
                if !(min..=max).contains(&default) {
                    return Err(format!("default {default} is outside {min}..={max}"));
                }
            }
            ParamType::Flag => {
                if !self.default.is_bool() {
                    return Err(format!(
                        "default should be true or false, found {}",
                        self.default
                    ));
                }
            }
            ParamType::Text => {
                if !self.default.is_str() {
                    return Err(format!(
                        "default should be a string, found {}",
                        self.default
                    ));
                }
            }
            ParamType::Choice => {
                let Some(d) = self.default.as_str() else {
                    return Err(format!(
                        "default should be a string, found {}",
                        self.default
                    ));
                };
                if !self.choices.iter().any(|c| c == d) {
                    return Err(format!("default `{d}` is not one of {:?}", self.choices));
                }
            }
        }
        Ok(())
    }
}

/// The manifest's word for a type.
pub fn type_name(kind: ParamType) -> &'static str {
    match kind {
        ParamType::Int => "int",
        ParamType::Float => "float",
        ParamType::Flag => "flag",
        ParamType::Text => "text",
        ParamType::Choice => "choice",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[plugin]
id = "nuclei-detect"
name = "Nuclei"
version = "0.1.0"
kind = "algorithm"
api = "0.1.0"

[limits]
memory-mib = 512
time-seconds = 60

[grants]
data = "project"
gpu-memory-mib = 256

[[parameters]]
name = "sigma"
type = "float"
default = 1.0
min = 0.1
max = 10.0
"#;

    #[test]
    fn a_complete_manifest_parses() {
        let m = Manifest::parse(GOOD, "tessera.toml").unwrap();
        assert_eq!(m.plugin.id, "nuclei-detect");
        assert_eq!(m.memory_bytes(), Some(512 << 20));
        assert_eq!(m.parameters[0].kind, ParamType::Float);
        assert_eq!(m.grants.data, DataScope::Project);
        assert!(!m.grants.write);
        assert_eq!(m.gpu_memory_bytes(), 256 << 20);
    }

    #[test]
    fn grants_default_to_the_job_images_and_no_gpu() {
        let text = GOOD.replace("data = \"project\"\ngpu-memory-mib = 256\n", "");
        let m = Manifest::parse(&text, "tessera.toml").unwrap();
        assert_eq!(m.grants, GrantsSection::default());
        assert_eq!(m.grants.data, DataScope::Image);
        let text = GOOD.replace("gpu-memory-mib = 256", "gpu-memory-mib = 999999");
        let err = Manifest::parse(&text, "tessera.toml").unwrap_err();
        assert!(err.to_string().contains("grants.gpu-memory-mib"), "{err}");
        let text = GOOD.replace("data = \"project\"", "data = \"everything\"");
        let err = Manifest::parse(&text, "tessera.toml").unwrap_err();
        assert!(err.to_string().contains("everything"), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let text = GOOD.replace("memory-mib", "memory-mb");
        let err = Manifest::parse(&text, "tessera.toml").unwrap_err();
        assert!(err.to_string().contains("memory-mb"), "{err}");
    }

    #[test]
    fn out_of_range_limits_name_the_field_and_range() {
        let text = GOOD.replace("memory-mib = 512", "memory-mib = 999999");
        let err = Manifest::parse(&text, "tessera.toml").unwrap_err();
        assert!(
            err.to_string()
                .contains("limits.memory-mib is 999999, expected 1 to 4096"),
            "{err}"
        );
    }

    #[test]
    fn a_newer_api_minor_is_refused_naming_both_versions() {
        let text = GOOD.replace("api = \"0.1.0\"", "api = \"0.3.0\"");
        let err = Manifest::parse(&text, "tessera.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("0.3.0") && msg.contains("0.2.0"), "{msg}");
    }

    #[test]
    fn api_versions_are_parsed_strictly_and_bounded_by_the_host() {
        for bad in ["0.1", " 0.1.0", "+0.1.0", "00.01.00", "0.1.0.0", "0.x.0"] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad}");
        }
        let host = HOST_API_VERSION;
        assert!(ApiVersion::parse("0.1.0").unwrap().runs_on(&host));
        assert!(ApiVersion::parse("0.1.99").unwrap().runs_on(&host));
        assert!(ApiVersion::parse("0.2.0").unwrap().runs_on(&host));
        for refused in ["0.0.9", "0.2.1", "0.3.0", "1.0.0"] {
            assert!(
                !ApiVersion::parse(refused).unwrap().runs_on(&host),
                "{refused}"
            );
        }
    }

    #[test]
    fn a_default_outside_its_range_is_refused() {
        let text = GOOD.replace("default = 1.0", "default = 20.0");
        let err = Manifest::parse(&text, "tessera.toml").unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }
}
