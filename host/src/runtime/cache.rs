//! The on-disk cache of compiled components.
//!
//! Compiling a plugin with Cranelift takes tens of milliseconds to seconds; loading the compiled
//! artifact takes a fraction of a millisecond. Artifacts are keyed by the component's sha256
//! and by a fingerprint of the engine (wasmtime version and every setting that changes the
//! generated code), so a host upgrade or a changed setting compiles afresh instead of loading
//! code built for another engine.
//!
//! Loading an artifact is `unsafe` in wasmtime because it trusts the file to be native code the
//! engine produced. The cache only loads files it wrote itself, under the host's data
//! directory, named by digest and fingerprint, written to a temporary name and renamed into
//! place so that a crash never leaves half an artifact under a valid name.

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::RuntimeError;

/// Compiled components on disk, in a folder per engine fingerprint.
pub struct ComponentCache {
    dir: PathBuf,
}

/// Feeds `Hash` output into sha256 so the fingerprint is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The wasmtime release the host is built with (pinned exactly in `host/Cargo.toml`; a unit
/// test keeps the two equal). wasmtime's own compatibility hash names its versioning scheme,
/// not the release, so the release goes into the fingerprint here.
pub const WASMTIME_VERSION: &str = "48.0.10";

/// A stable fingerprint of the engine's code-generation settings, the wasmtime release and the
/// host version.
pub fn engine_fingerprint(engine: &Engine) -> String {
    use std::hash::Hash;
    let mut hasher = Sha256Hasher(Sha256::new());
    hasher.write(concat!("tessera-", env!("CARGO_PKG_VERSION")).as_bytes());
    hasher.write(WASMTIME_VERSION.as_bytes());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..16])
}

impl ComponentCache {
    /// A cache under `root`, in the folder of this engine's fingerprint. Folders of other
    /// fingerprints (another wasmtime, other engine settings) are removed: their artifacts
    /// can never be loaded by this engine.
    pub fn new(root: &Path, engine: &Engine) -> anyhow::Result<Self> {
        let fingerprint = engine_fingerprint(engine);
        let dir = root.join(&fingerprint);
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create compile cache {}: {e}", dir.display()))?;
        let stale = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name != fingerprint
                    && name.len() == fingerprint.len()
                    && name.bytes().all(|b| b.is_ascii_hexdigit())
            });
        for old in stale {
            tracing::info!(path = %old.path().display(), "removing compiled plugins of another engine");
            if let Err(e) = std::fs::remove_dir_all(old.path()) {
                tracing::warn!(path = %old.path().display(), error = %e, "cannot remove stale compile cache");
            }
        }
        Ok(ComponentCache { dir })
    }

    /// The folder of this engine's artifacts.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the artifact of `digest` lives.
    pub fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.cwasm"))
    }

    /// Loads the cached artifact of `digest`, or compiles `bytes` and caches the result.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
        plugin: &str,
    ) -> Result<Component, RuntimeError> {
        let path = self.path(digest);
        if path.exists() {
            // SAFETY: the file was written by `store` below, from `Component::serialize` of an
            // engine with this very fingerprint, under the host's own data directory.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cached artifact");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = compile(engine, bytes, plugin)?;
        self.store(&path, &component)?;
        Ok(component)
    }

    /// Caches a component compiled elsewhere (install compiles without caching and stores the
    /// artifact only once every check has passed).
    pub fn put(&self, digest: &str, component: &Component) -> Result<(), RuntimeError> {
        self.store(&self.path(digest), component)
    }

    fn store(&self, path: &Path, component: &Component) -> Result<(), RuntimeError> {
        let cache_error = |reason: String| RuntimeError::Cache {
            path: path.display().to_string(),
            reason,
        };
        let bytes = component
            .serialize()
            .map_err(|e| cache_error(e.to_string()))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            cache_error(e.to_string())
        })
    }
}

/// Compiles a component, refusing core modules and anything else that is not one.
pub fn compile(engine: &Engine, bytes: &[u8], plugin: &str) -> Result<Component, RuntimeError> {
    let reason = if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        Some("not a WebAssembly binary (missing the \\0asm header)".to_string())
    } else if bytes[4..8] == [1, 0, 0, 0] {
        Some("a core WebAssembly module, not a component; hint: build for wasm32-wasip2".into())
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(RuntimeError::Compile {
            plugin: plugin.to_string(),
            reason,
        });
    }
    Component::new(engine, bytes).map_err(|e| RuntimeError::Compile {
        plugin: plugin.to_string(),
        reason: format!("{e:#}"),
    })
}

/// sha256 of some bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_wasmtime_release_is_the_one_in_the_fingerprint() {
        let manifest: toml::Table = include_str!("../../Cargo.toml").parse().unwrap();
        let wasmtime = &manifest["dependencies"]["wasmtime"]["version"];
        assert_eq!(
            wasmtime.as_str(),
            Some(format!("={WASMTIME_VERSION}").as_str())
        );
    }

    #[test]
    fn changed_engine_settings_change_the_fingerprint_and_drop_old_artifacts() {
        let engine = Engine::new(&crate::runtime::engine_config(false)).unwrap();
        let mut other_config = crate::runtime::engine_config(false);
        other_config.cranelift_opt_level(wasmtime::OptLevel::None);
        let other = Engine::new(&other_config).unwrap();
        assert_eq!(
            engine_fingerprint(&engine),
            engine_fingerprint(&engine.clone())
        );
        assert_ne!(engine_fingerprint(&engine), engine_fingerprint(&other));

        let root = tempfile::tempdir().unwrap();
        let first = ComponentCache::new(root.path(), &other).unwrap();
        std::fs::write(first.path("abc"), b"compiled by another engine").unwrap();
        let second = ComponentCache::new(root.path(), &engine).unwrap();
        assert!(
            !first.dir().exists(),
            "the other engine's artifacts are gone"
        );
        assert!(second.dir().exists());
        assert!(!second.path("abc").exists());
    }
}
