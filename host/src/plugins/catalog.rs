//! The catalog index: `index.json` in a folder of packages, listing what can be installed.
//!
//! `tessera plugin catalog DIR` reads every `*.tpkg` in `DIR` (each checked as an install
//! would read it, signatures recorded but not judged) and writes `DIR/index.json`. The index is
//! plain JSON so any static file server can serve the folder; this host reads local catalogs
//! only: a path to the folder or to its `index.json`, or the same as a `file://` URL
//! (`file:///srv/catalog`, `file:///srv/catalog/index.json`; `%XX` escapes are decoded).
//!
//! A catalog entry is named `<catalog>#<id>` (newest version) or `<catalog>#<id>@<version>`.
//! Installing one checks the package file against the sha256 the index gives for it, then
//! reads and verifies the package like any other: the index helps find packages, the
//! signature (and the admin's trust store) decides whether one is trusted.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::grant::Grant;
use super::manifest::ApiVersion;
use super::package::{PACKAGE_EXTENSION, Package};

/// The index file name.
pub const INDEX_FILE: &str = "index.json";

/// The index format this host writes and reads.
pub const INDEX_FORMAT: u32 = 1;

/// Largest index read.
pub const MAX_INDEX_BYTES: u64 = 16 << 20;

/// `index.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Catalog {
    /// [`INDEX_FORMAT`].
    pub format: u32,
    /// One entry per plugin id, sorted by id.
    pub plugins: Vec<CatalogPlugin>,
}

/// One plugin of the catalog with every version it holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CatalogPlugin {
    /// Plugin id.
    pub id: String,
    /// Name of the newest version.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Description of the newest version.
    pub description: String,
    /// Versions, oldest first.
    pub versions: Vec<CatalogVersion>,
}

/// One package file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CatalogVersion {
    /// Plugin version.
    pub version: String,
    /// Plugin API version it was built for.
    pub api: String,
    /// The package file, relative to the index.
    pub file: String,
    /// sha256 of the package file.
    pub digest: String,
    /// The package's contents digest (what its signature covers).
    pub contents_digest: String,
    /// Key id of the signature, if signed.
    pub publisher_key: Option<String>,
    /// The grant it asks for.
    pub grant: Grant,
}

/// A catalog that cannot be read or built, or an entry that is not in it.
#[derive(Debug, thiserror::Error)]
#[error("catalog {location}: {problem}")]
pub struct CatalogError {
    /// The catalog as given.
    pub location: String,
    /// What is wrong.
    pub problem: String,
}

/// Builds the index of every package in `dir` and writes `dir/index.json`.
pub fn build(dir: &Path) -> Result<Catalog, CatalogError> {
    let error = |problem: String| CatalogError {
        location: dir.display().to_string(),
        problem,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| error(e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == PACKAGE_EXTENSION))
        .collect();
    files.sort();

    let mut plugins: Vec<CatalogPlugin> = Vec::new();
    for file in files {
        let package = Package::read(&file).map_err(|e| error(e.to_string()))?;
        let bytes = std::fs::read(&file).map_err(|e| error(e.to_string()))?;
        let m = &package.manifest;
        let version = CatalogVersion {
            version: m.plugin.version.clone(),
            api: m.plugin.api.clone(),
            file: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            digest: crate::runtime::cache::sha256_hex(&bytes),
            contents_digest: package.contents_digest_hex(),
            publisher_key: package.signature.as_ref().map(|s| s.key_id.clone()),
            grant: Grant::requested(m),
        };
        let entry = match plugins.iter_mut().find(|p| p.id == m.plugin.id) {
            Some(entry) => entry,
            None => {
                plugins.push(CatalogPlugin {
                    id: m.plugin.id.clone(),
                    name: String::new(),
                    kind: m.plugin.kind.to_string(),
                    description: String::new(),
                    versions: Vec::new(),
                });
                plugins.last_mut().ok_or_else(|| error("empty".into()))?
            }
        };
        if entry.versions.iter().any(|v| v.version == version.version) {
            return Err(error(format!(
                "two packages of `{}` version {}",
                m.plugin.id, version.version
            )));
        }
        entry.versions.push(version);
        entry
            .versions
            .sort_by_key(|v| ApiVersion::parse(&v.version));
        if entry.versions.last().map(|v| &v.version) == Some(&m.plugin.version) {
            entry.name = m.plugin.name.clone();
            entry.description = m.plugin.description.clone();
        }
    }
    plugins.sort_by(|a, b| a.id.cmp(&b.id));

    let catalog = Catalog {
        format: INDEX_FORMAT,
        plugins,
    };
    let mut text = serde_json::to_string_pretty(&catalog).map_err(|e| error(e.to_string()))?;
    text.push('\n');
    let tmp = dir.join(format!("{INDEX_FILE}.tmp{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, dir.join(INDEX_FILE)))
        .map_err(|e| error(e.to_string()))?;
    Ok(catalog)
}

/// The `index.json` a location names: a path or `file://` URL of the folder or of the index.
pub fn index_path(location: &str) -> Result<PathBuf, CatalogError> {
    let error = |problem: String| CatalogError {
        location: location.to_string(),
        problem,
    };
    let path = if let Some(rest) = location.strip_prefix("file://") {
        // `file:///abs/path` or `file://localhost/abs/path`.
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        if !rest.starts_with('/') {
            return Err(error(
                "a file:// URL must name an absolute path (file:///...)".into(),
            ));
        }
        PathBuf::from(percent_decode(rest).map_err(error)?)
    } else if location.contains("://") {
        return Err(error(
            "only local catalogs are supported: a path or a file:// URL".into(),
        ));
    } else {
        PathBuf::from(location)
    };
    Ok(if path.is_dir() {
        path.join(INDEX_FILE)
    } else {
        path
    })
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad %-escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the URL path is not UTF-8".to_string())
}

/// Reads a catalog index.
pub fn load(location: &str) -> Result<(Catalog, PathBuf), CatalogError> {
    use std::io::Read;
    let index = index_path(location)?;
    let error = |problem: String| CatalogError {
        location: location.to_string(),
        problem,
    };
    let mut text = String::new();
    std::fs::File::open(&index)
        .map_err(|e| error(format!("cannot read {}: {e}", index.display())))?
        .take(MAX_INDEX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| error(format!("cannot read {}: {e}", index.display())))?;
    if text.len() as u64 > MAX_INDEX_BYTES {
        return Err(error(format!("index larger than {MAX_INDEX_BYTES} bytes")));
    }
    let catalog: Catalog = serde_json::from_str(&text)
        .map_err(|e| error(format!("{} is not a catalog index: {e}", index.display())))?;
    if catalog.format != INDEX_FORMAT {
        return Err(error(format!(
            "index format {}, this host reads format {INDEX_FORMAT}",
            catalog.format
        )));
    }
    Ok((catalog, index))
}

/// Plugins whose id, name or description contains `query` (case-insensitive); all for "".
pub fn search<'a>(catalog: &'a Catalog, query: &str) -> Vec<&'a CatalogPlugin> {
    let query = query.to_lowercase();
    catalog
        .plugins
        .iter()
        .filter(|p| {
            [&p.id, &p.name, &p.description]
                .iter()
                .any(|f| f.to_lowercase().contains(&query))
        })
        .collect()
}

/// A catalog entry named as `<catalog>#<id>[@<version>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRef {
    /// The catalog location.
    pub catalog: String,
    /// Plugin id.
    pub id: String,
    /// A version, or the newest.
    pub version: Option<String>,
}

impl EntryRef {
    /// Parses `<catalog>#<id>[@<version>]`; None when there is no `#`.
    pub fn parse(text: &str) -> Option<EntryRef> {
        let (catalog, entry) = text.rsplit_once('#')?;
        let (id, version) = match entry.split_once('@') {
            Some((id, v)) => (id, Some(v.to_string())),
            None => (entry, None),
        };
        Some(EntryRef {
            catalog: catalog.to_string(),
            id: id.to_string(),
            version,
        })
    }

    /// The package file and its expected sha256.
    pub fn resolve(&self) -> Result<(PathBuf, CatalogVersion), CatalogError> {
        let (catalog, index) = load(&self.catalog)?;
        let error = |problem: String| CatalogError {
            location: self.catalog.clone(),
            problem,
        };
        let plugin = catalog
            .plugins
            .iter()
            .find(|p| p.id == self.id)
            .ok_or_else(|| error(format!("no plugin `{}`", self.id)))?;
        let version = match &self.version {
            Some(v) => plugin.versions.iter().find(|e| &e.version == v),
            None => plugin.versions.last(),
        }
        .ok_or_else(|| {
            let known: Vec<&str> = plugin.versions.iter().map(|v| v.version.as_str()).collect();
            error(format!(
                "no version {} of `{}` (it has {})",
                self.version.as_deref().unwrap_or("?"),
                self.id,
                known.join(", ")
            ))
        })?;
        let plain = !version.file.is_empty()
            && Path::new(&version.file)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
            && Path::new(&version.file).components().count() == 1;
        if !plain {
            return Err(error(format!(
                "entry `{}` names file `{}`, expected a file name next to the index",
                self.id, version.file
            )));
        }
        let dir = index.parent().unwrap_or(Path::new("."));
        Ok((dir.join(&version.file), version.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_urls_parse() {
        let e = EntryRef::parse("file:///srv/cat#nuclei-detect@0.2.0").unwrap();
        assert_eq!(e.catalog, "file:///srv/cat");
        assert_eq!(e.id, "nuclei-detect");
        assert_eq!(e.version.as_deref(), Some("0.2.0"));
        assert_eq!(EntryRef::parse("cat#x").unwrap().version, None);
        assert!(EntryRef::parse("plugin.tpkg").is_none());
        assert_eq!(
            index_path("file:///no/such%20dir/index.json").unwrap(),
            PathBuf::from("/no/such dir/index.json")
        );
        assert!(index_path("https://example.org/index.json").is_err());
        assert!(index_path("file://relative/x").is_err());
    }
}
