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

/// A stable fingerprint of the engine's code-generation settings and version.
pub fn engine_fingerprint(engine: &Engine) -> String {
    use std::hash::Hash;
    let mut hasher = Sha256Hasher(Sha256::new());
    hasher.write(concat!("tessera-", env!("CARGO_PKG_VERSION")).as_bytes());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..16])
}

impl ComponentCache {
    /// A cache under `root`, in the folder of this engine's fingerprint.
    pub fn new(root: &Path, engine: &Engine) -> anyhow::Result<Self> {
        let dir = root.join(engine_fingerprint(engine));
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create compile cache {}: {e}", dir.display()))?;
        Ok(ComponentCache { dir })
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
