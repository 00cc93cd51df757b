//! tessera: a digital-pathology data lake and app catalog whose apps are sandboxed WebAssembly
//! component plugins.
//!
//! The library is what the `tessera` binary drives; tests and the benchmark use it directly.
//!
//! - [`imaging`] decodes slides (PNG, JPEG, TIFF incl. tiled, BigTIFF and pyramids) and reads
//!   regions at a pyramid level.
//! - [`store`] keeps metadata in sled and pixels in content-addressed blob files.
//! - [`plugins`] validates manifests and parameters.
//! - [`runtime`] compiles, links and runs plugin components under wasmtime with limits.
//! - [`jobs`] runs a plugin on an image and records the result with its provenance.
//! - [`annotations`] checks incoming GeoJSON and splits it into features for the store.
//! - [`server`] is the HTTP API (axum) over one [`Tessera`].
//! - [`Tessera`] ties them together over one data directory.

pub mod annotations;
pub mod app;
pub mod config;
pub mod gpu;
pub mod imaging;
pub mod jobs;
pub mod plugins;
pub mod runtime;
pub mod server;
pub mod store;
pub mod time;

pub use app::{Error, Tessera};
pub use config::Config;

/// Version of this host, recorded in every result's provenance.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");
