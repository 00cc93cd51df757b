//! Image operations for plugin authors: grey levels, histograms and Otsu thresholds, colour
//! deconvolution, Gaussian blur, connected components and outline tracing.
//!
//! Every function works on row-major buffers whose width and height travel alongside: RGB as
//! interleaved `u8` triples (the layout `read-region` returns), single-channel planes as `f32`,
//! masks as `bool`. Results follow scikit-image, which the first-party plugins are tested against
//! (`examples/data/reference.json`). Where scikit-image computes in `f64`, these functions keep
//! `f32` planes: half the memory and bandwidth, and within a fraction of a percent of the
//! reference on the sample images.
//!
//! Nothing here depends on the host, so the same code runs inside a wasm plugin and natively (the
//! benchmark compares the two). Hot loops run over slices without per-pixel allocation.
//!
//! A typical pipeline:
//!
//! ```
//! use tessera_sdk::ops::{self, Connectivity};
//!
//! let (width, height) = (4, 2);
//! let rgb = [
//!     250, 250, 250, 40, 30, 90, 40, 30, 90, 250, 250, 250, //
//!     250, 250, 250, 40, 30, 90, 250, 250, 250, 250, 250, 250,
//! ];
//! let gray = ops::rgb_to_gray(&rgb);
//! let threshold = ops::otsu_threshold(&gray);
//! let dark: Vec<bool> = gray.iter().map(|&g| g <= threshold).collect();
//! let regions = ops::region_stats_from_mask(&dark, width, height, Connectivity::Eight);
//! assert_eq!(regions.len(), 1);
//! assert_eq!(regions[0].area, 3);
//! ```

mod blur;
mod components;
mod gray;
mod histogram;
mod outline;
mod stain;
#[cfg(test)]
mod test_support;

pub use blur::{GAUSSIAN_TRUNCATE, MAX_GAUSSIAN_SIGMA, crop, gaussian_blur, gaussian_radius};
pub use components::{
    BoundingBox, Connectivity, Labels, RegionStats, label_components, region_stats,
    region_stats_from_mask, remove_small_objects,
};
pub use gray::{GRAY_WEIGHTS, rgb_to_gray, rgb_to_gray_u8};
pub use histogram::{
    HISTOGRAM_BINS, Histogram, histogram_u8, min_max, otsu_threshold,
    otsu_threshold_from_histogram, otsu_threshold_u8,
};
pub use outline::{MAX_OUTLINE_VERTICES, trace_outlines};
pub use stain::{HED_FROM_RGB, color_deconvolution, hematoxylin};
