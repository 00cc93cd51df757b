//! The host's settings, resolved once from flags and environment, then read-only.

use std::path::PathBuf;

use crate::imaging;

/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "tessera-data";

/// Environment variable naming the data directory (a `--data-dir` flag wins over it).
pub const DATA_DIR_ENV: &str = "TESSERA_DATA";

/// Everything the library needs to know to open a data directory.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where metadata, blobs and caches live.
    pub data_dir: PathBuf,
    /// Pixel limits applied when decoding images.
    pub image_limits: imaging::Limits,
    /// Backend of the plugins' GPU kernels; `None` reads the `TESSERA_GPU_BACKEND` setting.
    pub gpu_backend: Option<crate::gpu::BackendChoice>,
}

impl Config {
    /// A configuration for `data_dir` with default limits.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: data_dir.into(),
            image_limits: imaging::Limits::default(),
            gpu_backend: None,
        }
    }
}
