//! [`Tessera`]: one data directory, its store, the plugin runtime, and the operations the CLI
//! and the tests drive (import, install, run).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::imaging::{ImagingError, Slide};
use crate::plugins::{ManifestError, admin};
use crate::runtime::limits::MAX_COMPONENT_BYTES;
use crate::runtime::{LoadedPlugin, Runtime, RuntimeError};
use crate::store::{DEFAULT_PROJECT, ImageRecord, PluginRecord, Store, StoreError};

/// Why an operation failed; each variant names the thing it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An image could not be read.
    #[error("{path}: {cause}")]
    Image {
        /// The file or image id.
        path: String,
        /// What the decoder said.
        cause: ImagingError,
    },
    /// A manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A plugin failed to load or to run.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A plugin could not be installed.
    #[error("cannot install plugin from {source_path}: {reason}")]
    Install {
        /// The plugin directory or component.
        source_path: String,
        /// Why.
        reason: String,
    },
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A request is invalid (a parameter, a path...).
    #[error("{0}")]
    Invalid(String),
}

/// An open data directory with its plugin runtime.
pub struct Tessera {
    config: Config,
    store: Store,
    runtime: Runtime,
    loaded: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
}

impl Tessera {
    /// Opens (creating if needed) the data directory of `config`.
    pub fn open(config: Config) -> anyhow::Result<Tessera> {
        let store = Store::open(&config.data_dir)?;
        let mut runtime = Runtime::new(&store.cache_dir())?;
        if let Some(choice) = config.gpu_backend {
            runtime = runtime.with_gpu_backend(choice);
        }
        Ok(Tessera {
            config,
            store,
            runtime,
            loaded: Mutex::new(HashMap::new()),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The plugin runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Imports an image file into the default project; see [`Tessera::import_file_to`].
    pub fn import_file(&self, path: &Path) -> Result<(ImageRecord, bool), Error> {
        self.import_file_to(path, DEFAULT_PROJECT)
    }

    /// Imports an image file into `project`. The file is decoded first; only a readable image
    /// is stored. Importing the same bytes again stores no pixels and returns the existing
    /// record and `false` (when the project already held it).
    pub fn import_file_to(&self, path: &Path, project: &str) -> Result<(ImageRecord, bool), Error> {
        let shown = path.display().to_string();
        let image_error = |cause| Error::Image {
            path: shown.clone(),
            cause,
        };
        if !path.is_file() {
            let what = if path.exists() {
                "not a regular file"
            } else {
                "no such file"
            };
            return Err(image_error(ImagingError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                what,
            ))));
        }
        self.require_project(project)?;
        let slide = Slide::open(path, &self.config.image_limits).map_err(image_error)?;
        let (digest, size_bytes) = self.store.put_blob_file(path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.register(project, &name, digest, size_bytes, slide.info())
    }

    /// Imports an image streamed from `reader` (an upload) into `project` as `name`. The bytes
    /// go to a temp file while they are hashed; the file is opened as a slide and only a
    /// readable one is moved into the blob store. A failing reader or an unreadable image
    /// leaves nothing. A tiled image too large to show zoomed out (no pyramid, see
    /// [`Slide::check_overview`]) is refused too.
    pub fn import_stream(
        &self,
        project: &str,
        name: &str,
        reader: impl std::io::Read,
    ) -> Result<(ImageRecord, bool), Error> {
        self.require_project(project)?;
        let limits = &self.config.image_limits;
        let (digest, size_bytes, info) = self.store.put_blob_checked(reader, |tmp| {
            Slide::open(tmp, limits)
                .and_then(|s| s.check_overview().map(|()| s.info().clone()))
                .map_err(|cause| Error::Image {
                    path: name.to_string(),
                    cause,
                })
        })?;
        self.register(project, name, digest, size_bytes, &info)
    }

    /// Puts an already stored image into `project` (no pixels are copied).
    pub fn copy_image(
        &self,
        image: &ImageRecord,
        name: &str,
        project: &str,
    ) -> Result<bool, Error> {
        self.require_project(project)?;
        Ok(self.store.add_member(project, image, name)?.1)
    }

    fn require_project(&self, project: &str) -> Result<(), Error> {
        match self.store.project(project)? {
            Some(_) => Ok(()),
            None => Err(Error::NotFound(format!("no project `{project}`"))),
        }
    }

    /// Records the image (once per digest) and its membership of `project`.
    fn register(
        &self,
        project: &str,
        name: &str,
        digest: String,
        size_bytes: u64,
        info: &crate::imaging::ImageInfo,
    ) -> Result<(ImageRecord, bool), Error> {
        let id = format!("img-{}", &digest[..16]);
        let record = match self.store.image(&id)? {
            Some(existing) => existing,
            None => {
                let record = ImageRecord {
                    name: if name.is_empty() {
                        id.clone()
                    } else {
                        name.to_string()
                    },
                    id,
                    digest,
                    size_bytes,
                    info: info.clone(),
                    imported_at: crate::time::now(),
                };
                self.store.put_image(&record)?;
                record
            }
        };
        let (_, new) = self.store.add_member(project, &record, name)?;
        if new {
            tracing::info!(image = %record.id, %project, name = %name, "imported");
        }
        Ok((record, new))
    }

    /// Finds an image by id, or by the file name it was imported from.
    pub fn find_image(&self, key: &str) -> Result<ImageRecord, Error> {
        if let Some(image) = self.store.image(key)? {
            return Ok(image);
        }
        let mut by_name = self.store.images()?.into_iter().filter(|i| i.name == key);
        match (by_name.next(), by_name.next()) {
            (Some(image), None) => Ok(image),
            (Some(_), Some(_)) => Err(Error::Invalid(format!(
                "several images are named `{key}`; use the image id"
            ))),
            _ if Path::new(key).components().count() > 1 => Err(Error::NotFound(format!(
                "no image `{key}` in the store, and no such file"
            ))),
            _ => Err(Error::NotFound(format!("no image `{key}` in the store"))),
        }
    }

    /// Opens the pixels of a stored image.
    pub fn open_slide(&self, image: &ImageRecord) -> Result<Arc<Slide>, Error> {
        let path = self.store.blob_path(&image.digest);
        let slide =
            Slide::open(&path, &self.config.image_limits).map_err(|cause| Error::Image {
                path: format!("image {}", image.id),
                cause,
            })?;
        Ok(Arc::new(slide))
    }

    /// Installs a plugin from a source directory holding `tessera.toml` (a development
    /// install: unsigned, approved as the manifest asks, replacing any installed version). The
    /// component is `component` when given, else found by [`crate::plugins::locate_component`].
    /// Nothing is stored unless every check passes; admins install packages through
    /// [`crate::plugins::admin`].
    pub fn install_plugin(
        &self,
        dir: &Path,
        component: Option<&Path>,
    ) -> Result<PluginRecord, Error> {
        let source = admin::Source::Directory {
            dir: dir.to_path_buf(),
            component: component.map(Path::to_path_buf),
        };
        let options = admin::Options {
            allow_unsigned: true,
        };
        let candidate = admin::prepare(self, &source, options)?;
        let enabled = self
            .store
            .plugin(&candidate.review.id)?
            .is_none_or(|r| r.enabled);
        admin::commit(self, candidate, enabled)
    }

    /// The installed plugin `id`, loaded and ready to run.
    pub fn plugin(&self, id: &str) -> Result<(PluginRecord, Arc<LoadedPlugin>), Error> {
        let record = self.store.plugin(id)?.ok_or_else(|| {
            Error::NotFound(format!(
                "no plugin `{id}` is installed; hint: `tessera plugin list` shows what is"
            ))
        })?;
        if !record.enabled {
            return Err(Error::Invalid(format!(
                "plugin `{id}` is disabled; hint: `tessera plugin enable {id}`"
            )));
        }
        // Limits come from the grant the admin approved, not from the manifest.
        let limits = record.grant().limits();
        let digest = &record.component_digest;
        if let Some(loaded) = self.lock_loaded().get(digest)
            && loaded.limits() == limits
        {
            return Ok((record.clone(), loaded.clone()));
        }
        let bytes = self.store.read_blob(digest)?;
        let m = &record.manifest;
        let loaded = Arc::new(
            self.runtime
                .load(id, &m.plugin.version, &bytes, digest, limits)?,
        );
        self.lock_loaded().insert(digest.clone(), loaded.clone());
        Ok((record, loaded))
    }

    /// Keeps a freshly validated plugin ready to run.
    pub(crate) fn remember_loaded(&self, loaded: Arc<LoadedPlugin>) {
        self.lock_loaded()
            .insert(loaded.digest().to_string(), loaded);
    }

    /// Drops a loaded plugin (after it was removed).
    pub(crate) fn forget_loaded(&self, digest: &str) {
        self.lock_loaded().remove(digest);
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LoadedPlugin>>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads a component file, refusing anything that is not a regular file or is larger than
/// [`MAX_COMPONENT_BYTES`].
pub(crate) fn read_component(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if meta.len() > MAX_COMPONENT_BYTES {
        return Err(format!(
            "{shown} is {} bytes, more than the {MAX_COMPONENT_BYTES} a component may have",
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_COMPONENT_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_COMPONENT_BYTES {
        return Err(format!(
            "{shown} grew past {MAX_COMPONENT_BYTES} bytes while being read"
        ));
    }
    tracing::info!(component = %shown, "installing component");
    Ok(bytes)
}
