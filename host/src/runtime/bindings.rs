//! The host side of the plugin API: generated bindings and the `data`, `host` and `gpu`
//! interfaces.
//!
//! Every function here is reachable from a plugin, so each one checks its input and the call's
//! scope before doing anything, and answers with a WIT error rather than a trap for anything a
//! plugin can get wrong. A trap (the outer `wasmtime::Result`) is kept for broken host invariants.
//!
//! Two API versions are linked side by side (their interfaces have distinct versioned names):
//! [`v2`] is the current one and what the rest of the host speaks; [`v1`] (0.1.0) is adapted to
//! it in `compat.rs`, the one place that knows about older minors.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::limits::{MAX_LOG_MESSAGE, MAX_LOG_MESSAGES, MAX_OPEN_IMAGES, MAX_REGION_PIXELS};
use super::{PluginState, ScopeError};
use crate::imaging::{self, Slide};

/// Bindings of plugin API 0.2.0, the current version.
pub mod v2 {
    wasmtime::component::bindgen!({
        path: "../wit/0.2.0",
        world: "algorithm",
        imports: { default: trappable },
        additional_derives: [PartialEq],
        with: {
            "tessera:plugin/data.image": super::ImageHandle,
            "tessera:plugin/gpu.tensor": crate::gpu::Tensor,
        },
    });
}

/// Bindings of plugin API 0.1.0, adapted to [`v2`] in `compat.rs`.
pub mod v1 {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "algorithm",
        imports: { default: trappable },
        additional_derives: [PartialEq],
        with: {
            "tessera:plugin/data.image": super::ImageHandle,
        },
    });
}

pub use v2::tessera::plugin::algorithm_types::{PluginInfo, RunRequest, RunResult};
pub use v2::tessera::plugin::types::{
    Annotation, Error as PluginError, Geometry, Measurement, Param, ParamKind, ParamSpec,
    ParamValue, Point, Rect,
};
use v2::tessera::plugin::{data, host, types};

/// An image a plugin opened: what the `image` resource handle points to.
pub struct ImageHandle {
    id: String,
    slide: Arc<Slide>,
}

impl types::Host for PluginState {}

impl data::Host for PluginState {
    fn open_image(
        &mut self,
        id: String,
    ) -> wasmtime::Result<Result<Resource<ImageHandle>, PluginError>> {
        if self.open_images >= MAX_OPEN_IMAGES {
            return Ok(Err(PluginError::Denied(format!(
                "at most {MAX_OPEN_IMAGES} images may be open at once; drop one first"
            ))));
        }
        let slide = match self.call.scope.open_image(&id) {
            Ok(slide) => slide,
            Err(ScopeError::Denied) => {
                tracing::warn!(plugin = %self.plugin, image = %id, "denied: image outside the job's scope");
                return Ok(Err(PluginError::Denied(format!(
                    "image `{id}` is not in this job's scope"
                ))));
            }
            Err(ScopeError::NotFound) => {
                return Ok(Err(PluginError::NotFound(format!("no image `{id}`"))));
            }
            Err(ScopeError::Unreadable(reason)) => {
                tracing::warn!(plugin = %self.plugin, image = %id, %reason, "image cannot be read");
                return Ok(Err(PluginError::Internal(format!(
                    "image `{id}` cannot be read: {reason}"
                ))));
            }
        };
        let handle = self.table.push(ImageHandle { id, slide })?;
        self.open_images += 1;
        Ok(Ok(handle))
    }
}

impl data::HostImage for PluginState {
    fn info(&mut self, image: Resource<ImageHandle>) -> wasmtime::Result<types::ImageInfo> {
        let handle = self.table.get(&image)?;
        let info = handle.slide.info();
        Ok(types::ImageInfo {
            id: handle.id.clone(),
            width: info.width,
            height: info.height,
            levels: info
                .levels
                .iter()
                .map(|l| types::LevelInfo {
                    width: l.width,
                    height: l.height,
                    downsample: l.downsample,
                })
                .collect(),
            microns_per_pixel: info.microns_per_pixel,
        })
    }

    fn read_region(
        &mut self,
        image: Resource<ImageHandle>,
        level: u32,
        region: Rect,
    ) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        self.read_pixels(&image, level, region)
    }

    fn drop(&mut self, image: Resource<ImageHandle>) -> wasmtime::Result<()> {
        self.table.delete(image)?;
        self.open_images = self.open_images.saturating_sub(1);
        Ok(())
    }
}

impl PluginState {
    /// The pixels of a region of an open image, with every check of `image.read-region`.
    pub(super) fn read_pixels(
        &mut self,
        image: &Resource<ImageHandle>,
        level: u32,
        region: Rect,
    ) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        let handle = self.table.get(image)?;
        let pixels = u64::from(region.width) * u64::from(region.height);
        if pixels > MAX_REGION_PIXELS {
            return Ok(Err(PluginError::InvalidInput(format!(
                "region {}x{} is {pixels} pixels, more than the {MAX_REGION_PIXELS} one read may \
                 ask for; read it in smaller regions",
                region.width, region.height
            ))));
        }
        let rect = imaging::Rect {
            x: region.x,
            y: region.y,
            width: region.width,
            height: region.height,
        };
        match handle.slide.read_region(level, rect) {
            Ok(bytes) => Ok(Ok(bytes)),
            Err(
                e @ (imaging::ImagingError::OutOfBounds { .. }
                | imaging::ImagingError::NoSuchLevel { .. }
                | imaging::ImagingError::EmptyRegion { .. }
                | imaging::ImagingError::TooLarge {
                    subject: imaging::Subject::Region,
                    ..
                }),
            ) => Ok(Err(PluginError::InvalidInput(e.to_string()))),
            Err(e) => {
                tracing::warn!(plugin = %self.plugin, image = %handle.id, error = %e, "region read failed");
                Ok(Err(PluginError::Internal(format!(
                    "image `{}` could not be read: {e}",
                    handle.id
                ))))
            }
        }
    }
}

impl host::Host for PluginState {
    fn log(&mut self, level: host::LogLevel, message: String) -> wasmtime::Result<()> {
        self.log_messages += 1;
        if self.log_messages > MAX_LOG_MESSAGES {
            if self.log_messages == MAX_LOG_MESSAGES + 1 {
                tracing::warn!(plugin = %self.plugin, "more than {MAX_LOG_MESSAGES} log messages in one call; dropping the rest");
            }
            return Ok(());
        }
        let message = super::printable(&message, MAX_LOG_MESSAGE);
        let plugin = &*self.plugin;
        match level {
            host::LogLevel::Trace => {
                tracing::trace!(target: "tessera::plugin", plugin, "{message}")
            }
            host::LogLevel::Debug => {
                tracing::debug!(target: "tessera::plugin", plugin, "{message}")
            }
            host::LogLevel::Info => tracing::info!(target: "tessera::plugin", plugin, "{message}"),
            host::LogLevel::Warn => tracing::warn!(target: "tessera::plugin", plugin, "{message}"),
            host::LogLevel::Error => {
                tracing::error!(target: "tessera::plugin", plugin, "{message}")
            }
        }
        Ok(())
    }

    fn progress(&mut self, done: u64, total: u64) -> wasmtime::Result<()> {
        if let Some(report) = &self.call.progress {
            report(done.min(total), total);
        }
        Ok(())
    }

    fn is_cancelled(&mut self) -> wasmtime::Result<bool> {
        Ok(self
            .call
            .cancelled
            .load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// A plugin's error value as one readable phrase.
pub fn describe_error(error: &PluginError) -> String {
    match error {
        PluginError::NotFound(m) => format!("not found: {m}"),
        PluginError::Denied(m) => format!("denied: {m}"),
        PluginError::InvalidInput(m) => format!("invalid input: {m}"),
        PluginError::Cancelled => "cancelled".to_string(),
        PluginError::Internal(m) => m.clone(),
    }
}
