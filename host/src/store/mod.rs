//! The embedded store: sled trees for metadata, content-addressed files for blobs.
//!
//! This is the only module that touches the data directory:
//!
//! ```text
//! <data-dir>/meta/          sled database: trees images, plugins, publishers (trusted keys),
//!                           results, teams, users, tokens, projects, members, datasets,
//!                           collections, features, changes, runs (see `lake.rs` and
//!                           `annotations.rs` for keys)
//! <data-dir>/blobs/ab/cd…   blob files named by their sha256
//! <data-dir>/tmp/           blobs being written; emptied at every open
//! <data-dir>/cache/         compiled plugins (see runtime::cache)
//! <data-dir>/results/       GeoJSON files of the latest result per image and plugin
//! ```
//!
//! A blob is written to `tmp/`, synced, and renamed to its digest name, so a killed process
//! never leaves half a blob under a valid name. Metadata is written after the blob it points
//! to; a crash in between leaves an unreferenced blob, never a record without its data.

mod annotations;
mod lake;
mod records;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

pub use annotations::{BBox, StoredFeature};
pub use lake::{GcReport, is_id};
pub use records::{
    Access, ChangeKind, ChangeOp, ChangeRecord, CollectionRecord, DatasetRecord, ImageRecord,
    MeasurementRecord, MemberRecord, Origin, PluginRecord, ProjectRecord, ResultRecord, RunRecord,
    RunState, TeamRecord, UserRecord,
};

/// The project every store has, owned by the team of the same name; `tessera import` puts
/// images there unless told otherwise.
pub const DEFAULT_PROJECT: &str = "default";

/// The team that owns [`DEFAULT_PROJECT`].
pub const DEFAULT_TEAM: &str = "default";

use crate::plugins::keys::PublisherKey;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory of the store could not be read or written.
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
    /// The metadata database failed.
    #[error("metadata database at {path}: {cause}")]
    Db { path: PathBuf, cause: sled::Error },
    /// Another process holds the data directory.
    #[error(
        "data directory {path} is in use by another tessera process (a running `tessera serve` holds it); hint: stop that process or wait for it to finish, or use the HTTP API while the server runs"
    )]
    Busy { path: PathBuf },
    /// A stored record could not be decoded (written by an incompatible version?).
    #[error("stored {kind} `{key}` is unreadable: {reason}")]
    Corrupt {
        kind: &'static str,
        key: String,
        reason: String,
    },
    /// A blob named by a record is missing.
    #[error("blob {digest} is missing from {path}")]
    MissingBlob { digest: String, path: PathBuf },
}

type Result<T> = std::result::Result<T, StoreError>;

/// An open data directory.
pub struct Store {
    root: PathBuf,
    db: sled::Db,
    images: sled::Tree,
    plugins: sled::Tree,
    publishers: sled::Tree,
    results: sled::Tree,
    teams: sled::Tree,
    users: sled::Tree,
    tokens: sled::Tree,
    projects: sled::Tree,
    members: sled::Tree,
    datasets: sled::Tree,
    collections: sled::Tree,
    features: sled::Tree,
    changes: sled::Tree,
    runs: sled::Tree,
    tmp_counter: AtomicU64,
    /// Held by every write to annotation collections and by image removal, so that a
    /// collection's read-modify-write (count, sequence numbers) never interleaves with another.
    annotation_writes: Mutex<()>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |cause| StoreError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

impl Store {
    /// Opens (creating if needed) the store under `root`, and clears leftovers of interrupted
    /// writes from `tmp/`.
    pub fn open(root: &Path) -> Result<Store> {
        for sub in ["blobs", "tmp", "cache", "results"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        let tmp = root.join("tmp");
        for entry in std::fs::read_dir(&tmp).map_err(io_err(&tmp))?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }

        let meta = root.join("meta");
        let db_err = |cause| match cause {
            // sled wraps the lock failure in an error of its own kind, naming the cause.
            sled::Error::Io(ref e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock") =>
            {
                StoreError::Busy {
                    path: root.to_path_buf(),
                }
            }
            cause => StoreError::Db {
                path: meta.clone(),
                cause,
            },
        };
        let db = sled::open(&meta).map_err(db_err)?;
        let images = db.open_tree("images").map_err(db_err)?;
        let plugins = db.open_tree("plugins").map_err(db_err)?;
        let publishers = db.open_tree("publishers").map_err(db_err)?;
        let results = db.open_tree("results").map_err(db_err)?;
        let tree = |name: &str| db.open_tree(name).map_err(db_err);
        let store = Store {
            root: root.to_path_buf(),
            images,
            plugins,
            publishers,
            results,
            teams: tree("teams")?,
            users: tree("users")?,
            tokens: tree("tokens")?,
            projects: tree("projects")?,
            members: tree("members")?,
            datasets: tree("datasets")?,
            collections: tree("collections")?,
            features: tree("features")?,
            changes: tree("changes")?,
            runs: tree("runs")?,
            db,
            tmp_counter: AtomicU64::new(0),
            annotation_writes: Mutex::new(()),
        };
        store.ensure_default_project()?;
        Ok(store)
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where compiled plugins are cached.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Where the GeoJSON of `plugin`'s latest result on `image` is written.
    pub fn result_file(&self, image: &str, plugin: &str) -> PathBuf {
        self.root
            .join("results")
            .join(image)
            .join(format!("{plugin}.geojson"))
    }

    // ---- blobs ----

    /// The path of the blob named `digest` (which may not exist).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (head, _) = digest.split_at(2.min(digest.len()));
        self.root.join("blobs").join(head).join(digest)
    }

    /// True if the blob is stored.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{}-{n}.part", std::process::id()))
    }

    /// Streams `reader` into a blob, returning its digest and size. The bytes are never held
    /// in memory whole.
    pub fn put_blob_reader(&self, reader: impl Read) -> Result<(String, u64)> {
        self.put_blob_checked(reader, |_| Ok::<(), StoreError>(()))
            .map(|(digest, size, ())| (digest, size))
    }

    /// Streams `reader` into a temp file while hashing it, lets `check` look at the finished
    /// file, and only if it agrees renames it into the blob store. Whatever fails (the reader,
    /// the check, the disk), nothing is left behind.
    pub fn put_blob_checked<T, E: From<StoreError>>(
        &self,
        mut reader: impl Read,
        check: impl FnOnce(&Path) -> std::result::Result<T, E>,
    ) -> std::result::Result<(String, u64, T), E> {
        let tmp = self.temp_path();
        let result = (|| {
            let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut size = 0u64;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err(&tmp)(e).into()),
                };
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n]).map_err(io_err(&tmp))?;
                size += n as u64;
            }
            file.sync_all().map_err(io_err(&tmp))?;
            drop(file);
            let checked = check(&tmp)?;
            let digest = hex::encode(hasher.finalize());
            self.commit_temp(&tmp, &digest)?;
            Ok((digest, size, checked))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Stores a file's bytes as a blob.
    pub fn put_blob_file(&self, path: &Path) -> Result<(String, u64)> {
        let file = File::open(path).map_err(io_err(path))?;
        self.put_blob_reader(io::BufReader::new(file))
    }

    /// Stores bytes as a blob.
    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<String> {
        self.put_blob_reader(bytes).map(|(d, _)| d)
    }

    fn commit_temp(&self, tmp: &Path, digest: &str) -> Result<()> {
        let dest = self.blob_path(digest);
        if dest.is_file() {
            // Same content already stored: keep one copy.
            let _ = std::fs::remove_file(tmp);
            return Ok(());
        }
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        std::fs::rename(tmp, &dest).map_err(io_err(&dest))
    }

    /// Opens a blob for streaming reads. `digest` must be one the store gave out (a record's
    /// field), never request input.
    pub fn open_blob(&self, digest: &str) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::MissingBlob {
                    digest: digest.to_string(),
                    path: path.clone(),
                }
            } else {
                io_err(&path)(e)
            }
        })
    }

    /// Reads a whole blob into memory (for small blobs: components, results).
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        std::fs::read(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::MissingBlob {
                    digest: digest.to_string(),
                    path: path.clone(),
                }
            } else {
                io_err(&path)(e)
            }
        })
    }

    /// Writes a file outside the blob store (result exports) atomically.
    pub fn write_file_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = self.temp_path();
        let write = || -> io::Result<()> {
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, dest)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_err(dest)(e)
        })
    }

    // ---- records ----

    fn put<T: Serialize>(&self, tree: &sled::Tree, key: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
            kind: "record",
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        tree.insert(key, bytes)
            .map_err(|source| self.db_error(source))?;
        self.db.flush().map_err(|source| self.db_error(source))?;
        Ok(())
    }

    fn get<T: DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        kind: &'static str,
        key: &str,
    ) -> Result<Option<T>> {
        let Some(bytes) = tree.get(key).map_err(|source| self.db_error(source))? else {
            return Ok(None);
        };
        decode(kind, key, &bytes).map(Some)
    }

    fn list<T: DeserializeOwned>(&self, tree: &sled::Tree, kind: &'static str) -> Result<Vec<T>> {
        tree.iter()
            .map(|entry| {
                let (key, bytes) = entry.map_err(|source| self.db_error(source))?;
                decode(kind, &String::from_utf8_lossy(&key), &bytes)
            })
            .collect()
    }

    /// Serialises annotation writes (see the field). A panic while holding it leaves no
    /// half-written state behind (writes are batches or transactions), so poisoning is ignored.
    fn annotation_lock(&self) -> MutexGuard<'_, ()> {
        self.annotation_writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn db_error(&self, cause: sled::Error) -> StoreError {
        StoreError::Db {
            path: self.root.join("meta"),
            cause,
        }
    }

    /// Saves an image record.
    pub fn put_image(&self, image: &ImageRecord) -> Result<()> {
        self.put(&self.images, &image.id, image)
    }

    /// The image with this id.
    pub fn image(&self, id: &str) -> Result<Option<ImageRecord>> {
        self.get(&self.images, "image", id)
    }

    /// Every image, by id.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        self.list(&self.images, "image")
    }

    /// Saves a plugin record.
    pub fn put_plugin(&self, plugin: &PluginRecord) -> Result<()> {
        self.put(&self.plugins, &plugin.manifest.plugin.id, plugin)
    }

    /// The installed plugin with this id.
    pub fn plugin(&self, id: &str) -> Result<Option<PluginRecord>> {
        self.get(&self.plugins, "plugin", id)
    }

    /// Every installed plugin, by id.
    pub fn plugins(&self) -> Result<Vec<PluginRecord>> {
        self.list(&self.plugins, "plugin")
    }

    /// Forgets an installed plugin; its component blob and its results stay. False when it
    /// was not installed.
    pub fn remove_plugin(&self, id: &str) -> Result<bool> {
        self.remove(&self.plugins, id)
    }

    /// Trusts a publisher key (replacing one with the same id).
    pub fn put_publisher(&self, key: &PublisherKey) -> Result<()> {
        self.put(&self.publishers, &key.key_id, key)
    }

    /// Every trusted publisher key, by id.
    pub fn publishers(&self) -> Result<Vec<PublisherKey>> {
        self.list(&self.publishers, "publisher key")
    }

    /// Stops trusting a publisher key. False when it was not trusted.
    pub fn remove_publisher(&self, key_id: &str) -> Result<bool> {
        self.remove(&self.publishers, key_id)
    }

    fn remove(&self, tree: &sled::Tree, key: &str) -> Result<bool> {
        let old = tree.remove(key).map_err(|source| self.db_error(source))?;
        self.db.flush().map_err(|source| self.db_error(source))?;
        Ok(old.is_some())
    }

    /// Saves a result record.
    pub fn put_result(&self, result: &ResultRecord) -> Result<()> {
        self.put(&self.results, &result.id, result)
    }

    /// The result `id`.
    pub fn result(&self, id: &str) -> Result<Option<ResultRecord>> {
        self.get(&self.results, "result", id)
    }

    /// Every result, oldest first.
    pub fn results(&self) -> Result<Vec<ResultRecord>> {
        self.list(&self.results, "result")
    }

    /// A new unique, time-ordered id with the given prefix.
    pub fn new_id(&self, prefix: &str) -> Result<String> {
        let n = self
            .db
            .generate_id()
            .map_err(|source| self.db_error(source))?;
        Ok(format!("{prefix}-{n:010}"))
    }
}

fn decode<T: DeserializeOwned>(kind: &'static str, key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        kind,
        key: key.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.put_blob_bytes(b"pixels").unwrap();
        let b = store.put_blob_bytes(b"pixels").unwrap();
        assert_eq!(a, b);
        assert_eq!(store.read_blob(&a).unwrap(), b"pixels");
        let files = walk(&dir.path().join("blobs"));
        assert_eq!(files, 1);
        assert_eq!(walk(&dir.path().join("tmp")), 0);
    }

    #[test]
    fn leftovers_of_interrupted_writes_are_cleared_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("tmp/123-0.part"), b"half a blob").unwrap();
        let _store = Store::open(dir.path()).unwrap();
        assert_eq!(walk(&dir.path().join("tmp")), 0);
    }

    #[test]
    fn a_failing_reader_leaves_nothing_behind() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("connection reset"));
                }
                self.0 -= 1;
                buf[0] = 7;
                Ok(1)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = store.put_blob_reader(Broken(3)).unwrap_err();
        assert!(err.to_string().contains("connection reset"), "{err}");
        assert_eq!(walk(&dir.path().join("blobs")), 0);
        assert_eq!(walk(&dir.path().join("tmp")), 0);
    }

    fn walk(dir: &Path) -> usize {
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            n += if p.is_dir() { walk(&p) } else { 1 };
        }
        n
    }
}
