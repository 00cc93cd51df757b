//! What an admin does to installed plugins: install, upgrade, enable, disable, remove, list,
//! search a catalog. The CLI and the HTTP routes both call these functions; every value they
//! return is serialisable.
//!
//! Installing and upgrading happen in two phases. [`prepare`] reads the source (a package, a
//! catalog entry or, for development, a source directory), checks its signature against the
//! trust store, its embedded API version against its manifest, compiles, links, instantiates
//! and describes the component, and returns a [`Candidate`] whose [`Review`] shows what the
//! plugin asks for (and, for an upgrade, how that differs from what was approved). Nothing is
//! written. [`commit`] then stores the component, its compiled artifact and the record with the
//! approved grant. [`install`] and [`upgrade`] run both with a confirmation callback in
//! between; a route can instead return the review, and install later with the review's
//! `component_digest` as the admin's approval ([`Approval::Digest`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use wasmtime::component::Component;

use super::catalog::{self, EntryRef};
use super::grant::{Grant, GrantChange};
use super::package::{Package, Signer};
use super::{MANIFEST_FILE, Manifest, api_section};
use crate::app::{Error, Tessera, read_component};
use crate::runtime::cache::{compile, sha256_hex};
use crate::runtime::{LoadedPlugin, RuntimeError};
use crate::store::{Origin, PluginRecord};

/// Where a plugin comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A package file.
    Package(PathBuf),
    /// A catalog entry.
    Catalog(EntryRef),
    /// A source directory with `tessera.toml` (development; never signed).
    Directory {
        /// The directory.
        dir: PathBuf,
        /// The component, when not found by [`super::locate_component`].
        component: Option<PathBuf>,
    },
}

impl Source {
    /// What `plugin install X` means: `<catalog>#<id>[@<version>]` is a catalog entry, a
    /// directory is a source directory, anything else a package file.
    pub fn parse(text: &str, component: Option<PathBuf>) -> Source {
        if let Some(entry) = EntryRef::parse(text) {
            return Source::Catalog(entry);
        }
        let path = PathBuf::from(text);
        if path.is_dir() {
            Source::Directory {
                dir: path,
                component,
            }
        } else {
            Source::Package(path)
        }
    }

    fn shown(&self) -> String {
        match self {
            Source::Package(p) => p.display().to_string(),
            Source::Catalog(e) => format!(
                "{}#{}{}",
                e.catalog,
                e.id,
                e.version
                    .as_ref()
                    .map(|v| format!("@{v}"))
                    .unwrap_or_default()
            ),
            Source::Directory { dir, .. } => dir.display().to_string(),
        }
    }
}

/// Choices the admin made up front.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Accept unsigned packages and packages signed by keys the trust store does not hold.
    /// (Source directories are development installs and need no signature.)
    pub allow_unsigned: bool,
}

/// What the admin is asked to approve.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Review {
    /// Plugin id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plugin API version.
    pub api: String,
    /// Description.
    pub description: String,
    /// sha256 of the component: the approval token of [`Approval::Digest`].
    pub component_digest: String,
    /// The package's contents digest (packages only).
    pub contents_digest: Option<String>,
    /// Who signed it.
    pub signer: Signer,
    /// What it asks for: approved as is when installed.
    pub grant: Grant,
    /// The installed version, if any.
    pub installed: Option<InstalledVersion>,
    /// How `grant` differs from the installed version's approved grant.
    pub changes: Vec<GrantChange>,
}

/// The version already installed, in a [`Review`].
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct InstalledVersion {
    /// Its version.
    pub version: String,
    /// Its approved grant.
    pub grant: Grant,
}

/// A validated plugin, not yet written anywhere.
pub struct Candidate {
    /// What the admin approves.
    pub review: Review,
    manifest: Manifest,
    bytes: Vec<u8>,
    component: Component,
    loaded: LoadedPlugin,
    origin: Origin,
}

/// How the admin answers a review.
pub enum Approval<'a> {
    /// Approved without asking (`--yes`, or development installs by the demo and tests).
    Yes,
    /// Approved when the candidate's component digest is this one: what a client that has
    /// shown a [`Review`] sends back, so it approves exactly what was shown.
    Digest(&'a str),
    /// Ask.
    Ask(&'a mut dyn FnMut(&Review) -> bool),
}

impl Approval<'_> {
    fn approves(&mut self, review: &Review) -> bool {
        match self {
            Approval::Yes => true,
            Approval::Digest(d) => *d == review.component_digest,
            Approval::Ask(ask) => ask(review),
        }
    }
}

/// An installed plugin as the admin pages and `plugin list` show it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct InstalledPlugin {
    /// Plugin id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plugin API version.
    pub api: String,
    /// Description.
    pub description: String,
    /// Whether it may run.
    pub enabled: bool,
    /// sha256 of the component.
    pub component_digest: String,
    /// The grant it runs under.
    pub grant: Grant,
    /// Where it came from.
    pub origin: Origin,
    /// When this version was installed.
    pub installed_at: String,
}

impl From<&PluginRecord> for InstalledPlugin {
    fn from(r: &PluginRecord) -> Self {
        let p = &r.manifest.plugin;
        InstalledPlugin {
            id: p.id.clone(),
            name: p.name.clone(),
            version: p.version.clone(),
            kind: p.kind.to_string(),
            api: p.api.clone(),
            description: p.description.clone(),
            enabled: r.enabled,
            component_digest: r.component_digest.clone(),
            grant: r.grant(),
            origin: r.origin.clone(),
            installed_at: r.installed_at.clone(),
        }
    }
}

/// Reads and validates a plugin without writing anything.
pub fn prepare(t: &Tessera, source: &Source, options: Options) -> Result<Candidate, Error> {
    let shown = source.shown();
    let refuse = |reason: String| Error::Install {
        source_path: shown.clone(),
        reason,
    };

    // 1. The manifest and component, and who vouches for them.
    let (manifest, bytes, origin) = match source {
        Source::Directory { dir, component } => {
            // A development install: the admin's own build, never signed (see docs/plugins.md).
            let (manifest, bytes) = read_directory(dir, component.as_deref())?;
            (manifest, bytes, Origin::Directory)
        }
        Source::Package(path) => read_package(t, path, options, &refuse)?,
        Source::Catalog(entry) => {
            let (path, expected) = entry.resolve().map_err(|e| refuse(e.to_string()))?;
            let actual = std::fs::read(&path)
                .map(|b| sha256_hex(&b))
                .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
            if actual != expected.digest {
                return Err(refuse(format!(
                    "{} has sha256 {actual}, the catalog index says {}",
                    path.display(),
                    expected.digest
                )));
            }
            read_package(t, &path, options, &refuse)?
        }
    };
    // 2. Compile (not cached yet), check the embedded API version, link as the manifest's
    //    kind, instantiate, describe.
    let id = manifest.plugin.id.clone();
    let digest = sha256_hex(&bytes);
    let grant = Grant::requested(&manifest);
    let runtime = t.runtime();
    let component = compile(runtime.engine(), &bytes, &id)?;
    let required = !matches!(origin, Origin::Directory);
    api_section::check(&bytes, &manifest.plugin.api, required)
        .map_err(|e| refuse(format!("plugin `{id}`: {e}")))?;
    let kind = manifest.plugin.kind;
    let loaded = runtime
        .prelink(
            &id,
            &manifest.plugin.version,
            &digest,
            &component,
            grant.limits(),
        )
        .map_err(|e| match e {
            RuntimeError::Link { plugin, reason } => RuntimeError::Link {
                plugin,
                reason: format!("as `{kind}`, the kind its manifest declares: {reason}"),
            },
            other => other,
        })?;
    // The world the component really imports must be the API minor its manifest names.
    let api = manifest.api_version();
    let component_minor = loaded.api().rsplit_once('.').map_or("", |(minor, _)| minor);
    if format!("{}.{}", api.major, api.minor) != component_minor {
        return Err(refuse(format!(
            "plugin `{id}`: the manifest says plugin API {api}, the component was built \
             against {}",
            loaded.api()
        )));
    }
    let info = loaded.describe()?;
    super::check_description(&manifest, &info)
        .map_err(|e| refuse(format!("plugin `{id}`: {e}")))?;

    // 3. The review, against what is installed.
    let installed = t.store().plugin(&id)?;
    let changes = installed
        .as_ref()
        .map(|r| r.grant().diff(&grant))
        .unwrap_or_default();
    let p = &manifest.plugin;
    let review = Review {
        id: id.clone(),
        name: p.name.clone(),
        version: p.version.clone(),
        kind: p.kind.to_string(),
        api: p.api.clone(),
        description: p.description.clone(),
        component_digest: digest,
        contents_digest: match &origin {
            Origin::Package {
                contents_digest, ..
            } => Some(contents_digest.clone()),
            Origin::Directory => None,
        },
        signer: match &origin {
            Origin::Package { signer, .. } => signer.clone(),
            Origin::Directory => Signer::Unsigned,
        },
        grant,
        installed: installed.map(|r| InstalledVersion {
            version: r.manifest.plugin.version.clone(),
            grant: r.grant(),
        }),
        changes,
    };
    Ok(Candidate {
        review,
        manifest,
        bytes,
        component,
        loaded,
        origin,
    })
}

fn read_directory(dir: &Path, component: Option<&Path>) -> Result<(Manifest, Vec<u8>), Error> {
    let install_error = |reason: String| Error::Install {
        source_path: dir.display().to_string(),
        reason,
    };
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| install_error(format!("cannot read {}: {e}", manifest_path.display())))?;
    let manifest = Manifest::parse(&text, &manifest_path.display().to_string())?;
    let id = &manifest.plugin.id;
    let component_path = match component {
        Some(p) => p.to_path_buf(),
        None => super::locate_component(dir, id).ok_or_else(|| {
            let names = super::component_names(dir, id).join(" or ");
            install_error(format!(
                "no component found for `{id}` (looked for {names} in the directory and in \
                 target/wasm32-wasip2/release); hint: run `cargo build --release --target \
                 wasm32-wasip2` in the plugin's crate, or pass --component FILE"
            ))
        })?,
    };
    let bytes = read_component(&component_path).map_err(install_error)?;
    Ok((manifest, bytes))
}

fn read_package(
    t: &Tessera,
    path: &Path,
    options: Options,
    refuse: &dyn Fn(String) -> Error,
) -> Result<(Manifest, Vec<u8>, Origin), Error> {
    let package = Package::read(path).map_err(|e| refuse(e.to_string()))?;
    let trusted = t.store().publishers()?;
    let signer = package.verify(&trusted).map_err(&refuse)?;
    if !signer.is_trusted() && !options.allow_unsigned {
        let hint = match &signer {
            Signer::UnknownKey { key_id } => format!(
                "publisher key {key_id} is not trusted; hint: `tessera trust add KEY.pub` \
                 after checking the key with its publisher, or --allow-unsigned"
            ),
            _ => "the package is unsigned; hint: sign it with `tessera plugin sign`, or pass \
                  --allow-unsigned"
                .to_string(),
        };
        return Err(refuse(hint));
    }
    let origin = Origin::Package {
        contents_digest: package.contents_digest_hex(),
        signer,
    };
    Ok((package.manifest, package.component, origin))
}

/// Writes a validated candidate: the component blob, its compiled artifact, then the record
/// with the reviewed grant as the approved one. `enabled` carries over on upgrade.
pub fn commit(t: &Tessera, candidate: Candidate, enabled: bool) -> Result<PluginRecord, Error> {
    let Candidate {
        review,
        manifest,
        bytes,
        component,
        loaded,
        origin,
    } = candidate;
    t.store().put_blob_bytes(&bytes)?;
    t.runtime()
        .cache()
        .put(&review.component_digest, &component)?;
    let record = PluginRecord {
        manifest,
        component_digest: review.component_digest.clone(),
        installed_at: crate::time::now(),
        enabled,
        approved: Some(review.grant),
        origin,
    };
    t.store().put_plugin(&record)?;
    t.remember_loaded(Arc::new(loaded));
    tracing::info!(plugin = %review.id, version = %review.version, "installed");
    Ok(record)
}

/// What [`install`] and [`upgrade`] did.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Installed (or upgraded) as reviewed.
    Installed {
        /// What was approved.
        review: Box<Review>,
        /// The installed plugin.
        plugin: Box<InstalledPlugin>,
    },
    /// The admin said no; nothing changed.
    Declined {
        /// What was shown.
        review: Review,
    },
    /// This very component is already installed; nothing changed.
    Unchanged {
        /// The installed plugin.
        plugin: InstalledPlugin,
    },
}

/// Installs a plugin that is not installed yet (a source directory may replace an installed
/// version: development installs).
pub fn install(
    t: &Tessera,
    source: &Source,
    options: Options,
    mut approval: Approval<'_>,
) -> Result<Outcome, Error> {
    let candidate = prepare(t, source, options)?;
    let existing = t.store().plugin(&candidate.review.id)?;
    if let Some(existing) = &existing {
        if existing.component_digest == candidate.review.component_digest {
            return Ok(Outcome::Unchanged {
                plugin: existing.into(),
            });
        }
        // A development install from a source directory replaces what is there, so an
        // author can rebuild and reinstall without bumping the version.
        if !matches!(source, Source::Directory { .. }) {
            return Err(Error::Install {
                source_path: source.shown(),
                reason: format!(
                    "plugin `{}` {} is already installed; hint: `tessera plugin upgrade`",
                    existing.manifest.plugin.id, existing.manifest.plugin.version
                ),
            });
        }
    }
    if !approval.approves(&candidate.review) {
        return Ok(Outcome::Declined {
            review: candidate.review,
        });
    }
    let review = candidate.review.clone();
    let enabled = existing.is_none_or(|r| r.enabled);
    let record = commit(t, candidate, enabled)?;
    Ok(Outcome::Installed {
        review: Box::new(review),
        plugin: Box::new((&record).into()),
    })
}

/// Replaces an installed plugin by a newer version. The new one is validated in full first;
/// any failure leaves the installed one as it was.
pub fn upgrade(
    t: &Tessera,
    source: &Source,
    options: Options,
    mut approval: Approval<'_>,
) -> Result<Outcome, Error> {
    let candidate = prepare(t, source, options)?;
    let id = &candidate.review.id;
    let refuse = |reason: String| Error::Install {
        source_path: source.shown(),
        reason,
    };
    let existing = t.store().plugin(id)?.ok_or_else(|| {
        refuse(format!(
            "plugin `{id}` is not installed; hint: `tessera plugin install`"
        ))
    })?;
    let old = super::ApiVersion::parse(&existing.manifest.plugin.version);
    let new = super::ApiVersion::parse(&candidate.review.version);
    if new <= old {
        return Err(refuse(format!(
            "version {} is not newer than the installed {}; hint: `tessera plugin remove` \
             then install to go back",
            candidate.review.version, existing.manifest.plugin.version
        )));
    }
    if !approval.approves(&candidate.review) {
        return Ok(Outcome::Declined {
            review: candidate.review,
        });
    }
    let review = candidate.review.clone();
    let record = commit(t, candidate, existing.enabled)?;
    Ok(Outcome::Installed {
        review: Box::new(review),
        plugin: Box::new((&record).into()),
    })
}

/// Every installed plugin.
pub fn list(t: &Tessera) -> Result<Vec<InstalledPlugin>, Error> {
    Ok(t.store().plugins()?.iter().map(Into::into).collect())
}

/// One installed plugin.
pub fn show(t: &Tessera, id: &str) -> Result<InstalledPlugin, Error> {
    Ok((&installed(t, id)?).into())
}

fn installed(t: &Tessera, id: &str) -> Result<PluginRecord, Error> {
    t.store().plugin(id)?.ok_or_else(|| {
        Error::NotFound(format!(
            "no plugin `{id}` is installed; hint: `tessera plugin list` shows what is"
        ))
    })
}

/// Enables or disables a plugin; a disabled plugin stays installed but does not run.
pub fn set_enabled(t: &Tessera, id: &str, enabled: bool) -> Result<InstalledPlugin, Error> {
    let mut record = installed(t, id)?;
    if record.enabled != enabled {
        record.enabled = enabled;
        t.store().put_plugin(&record)?;
        tracing::info!(plugin = %id, enabled, "plugin state changed");
    }
    Ok((&record).into())
}

/// Removes a plugin. Its results stay; its component blob stays until `tessera gc`.
pub fn remove(t: &Tessera, id: &str) -> Result<InstalledPlugin, Error> {
    let record = installed(t, id)?;
    t.store().remove_plugin(id)?;
    t.forget_loaded(&record.component_digest);
    tracing::info!(plugin = %id, "removed");
    Ok((&record).into())
}

/// Searches a local catalog (see [`catalog`] for the accepted locations).
pub fn search(location: &str, query: &str) -> Result<Vec<catalog::CatalogPlugin>, Error> {
    let (catalog, _) = catalog::load(location).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(catalog::search(&catalog, query)
        .into_iter()
        .cloned()
        .collect())
}

/// Trusts the public key of a key file (checked by [`super::keys::read`]); `name` overrides
/// the name the file gives.
pub fn trust_add(
    t: &Tessera,
    key: &super::keys::KeyFile,
    name: Option<&str>,
) -> Result<super::keys::PublisherKey, Error> {
    let publisher = super::keys::PublisherKey {
        key_id: key.key_id.clone(),
        name: name.unwrap_or(&key.name).to_string(),
        public_key: key.key.clone(),
        added_at: crate::time::now(),
    };
    t.store().put_publisher(&publisher)?;
    tracing::info!(key = %publisher.key_id, name = %publisher.name, "publisher key trusted");
    Ok(publisher)
}

/// Every trusted publisher key.
pub fn trust_list(t: &Tessera) -> Result<Vec<super::keys::PublisherKey>, Error> {
    Ok(t.store().publishers()?)
}

/// Stops trusting a key. Plugins it signed stay installed.
pub fn trust_remove(t: &Tessera, key_id: &str) -> Result<(), Error> {
    if t.store().remove_publisher(key_id)? {
        Ok(())
    } else {
        Err(Error::NotFound(format!(
            "no trusted key `{key_id}`; hint: `tessera trust list` shows them"
        )))
    }
}
