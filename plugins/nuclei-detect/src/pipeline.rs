//! The nuclei detection pipeline as pure functions on pixel buffers; the plugin glue reads regions
//! through the host and calls these.
//!
//! The steps follow `definitions.nuclei_pipeline` of `examples/data/reference.json`: haematoxylin
//! by colour deconvolution, a Gaussian blur, a global Otsu threshold, removal of small 4-connected
//! specks, then 8-connected labelling and per-nucleus measurements.
//!
//! The blur is local and the threshold is global, so a large image is processed in two phases:
//!
//! 1. For each tile, read it with [`blur_margin`] extra pixels on every side (clipped at the image
//!    edges), call [`smoothed_hematoxylin`] and keep the inner part (`tessera_sdk::ops::crop`).
//!    The kept part equals blurring the whole image, so tiles can be pasted into one plane.
//! 2. Call [`detect`] on the assembled smoothed plane.
//!
//! The assembled plane costs 4 bytes per pixel, fine for a region or a level of a few thousand
//! pixels a side but not for a whole slide at full resolution. The threshold alone could be
//! gathered tile by tile with `tessera_sdk::ops::Histogram`; what is missing for that case is
//! joining nuclei cut by tile borders, which would be needed before whole-slide level 0 runs.

use tessera_sdk::ops::{self, Connectivity, RegionStats};

/// Tuning of [`detect`] and [`smoothed_hematoxylin`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NucleiParams {
    /// Standard deviation in pixels of the Gaussian blur applied to the haematoxylin plane.
    pub sigma: f32,
    /// Smallest area in pixels of a nucleus; smaller 4-connected specks are removed before
    /// labelling.
    pub min_area: u32,
}

impl Default for NucleiParams {
    /// The parameters of the reference pipeline: sigma 1, specks under 30 pixels removed.
    fn default() -> Self {
        Self {
            sigma: 1.0,
            min_area: 30,
        }
    }
}

/// One detected nucleus: area, centroid and bounding box in the pixel coordinates of the plane
/// given to [`detect`]. Its `label` is its position in the list plus one.
pub type Nucleus = RegionStats;

/// What [`detect`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct NucleiOutcome {
    /// Otsu threshold of the smoothed haematoxylin; nucleus pixels lie above it.
    pub threshold: f32,
    /// Nuclei in raster order of their first pixel.
    pub nuclei: Vec<Nucleus>,
    /// Pixels above the threshold that survived the removal of small specks.
    pub foreground_pixels: u64,
}

impl NucleiOutcome {
    /// Mean nucleus area in pixels; 0 without nuclei.
    pub fn mean_area(&self) -> f64 {
        if self.nuclei.is_empty() {
            return 0.0;
        }
        let total: u64 = self.nuclei.iter().map(|nucleus| nucleus.area).sum();
        total as f64 / self.nuclei.len() as f64
    }
}

/// Pixels of context a tile needs on each side so that blurring the enlarged tile and keeping its
/// inner part gives the same values as blurring the whole image: the radius of the Gaussian
/// kernel. At the true image edges no context is needed (or available); the blur repeats the edge
/// pixels there, as it does for the whole image.
pub fn blur_margin(sigma: f32) -> u32 {
    // The kernel radius is bounded by `ops::MAX_GAUSSIAN_SIGMA`, far below u32::MAX.
    ops::gaussian_radius(sigma) as u32
}

/// Haematoxylin of an RGB tile (`width * height * 3` bytes, possibly enlarged by [`blur_margin`])
/// blurred with `sigma`.
///
/// # Panics
///
/// When `rgb.len() != width * height * 3`.
pub fn smoothed_hematoxylin(rgb: &[u8], width: usize, height: usize, sigma: f32) -> Vec<f32> {
    assert_eq!(
        rgb.len(),
        width * height * 3,
        "RGB buffer of {} bytes is not {width} x {height} x 3",
        rgb.len()
    );
    ops::gaussian_blur(&ops::hematoxylin(rgb), width, height, sigma)
}

/// Finds the nuclei of a whole smoothed haematoxylin plane: pixels above its Otsu threshold, less
/// 4-connected specks under `params.min_area` pixels, grouped into 8-connected nuclei.
///
/// # Panics
///
/// When `smoothed.len() != width * height`.
pub fn detect(
    smoothed: &[f32],
    width: usize,
    height: usize,
    params: &NucleiParams,
) -> NucleiOutcome {
    let threshold = ops::otsu_threshold(smoothed);
    let mut foreground: Vec<bool> = smoothed.iter().map(|&value| value > threshold).collect();

    // Specks are judged with 4-connectivity and nuclei are grouped with 8, as in the reference:
    // a speck touching a nucleus only at a corner is removed, not merged.
    ops::remove_small_objects(
        &mut foreground,
        width,
        height,
        params.min_area,
        Connectivity::Four,
    );
    let nuclei = ops::region_stats_from_mask(&foreground, width, height, Connectivity::Eight);
    let foreground_pixels = nuclei.iter().map(|nucleus| nucleus.area).sum();

    NucleiOutcome {
        threshold,
        nuclei,
        foreground_pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IHC_PNG: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/data/skimage_ihc.png"
    );
    const REFERENCE_JSON: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/data/reference.json"
    );

    /// The sample image as interleaved RGB with its width and height.
    fn ihc_rgb() -> (Vec<u8>, usize, usize) {
        let image = image::open(IHC_PNG)
            .expect("skimage_ihc.png decodes")
            .to_rgb8();
        let (width, height) = (image.width() as usize, image.height() as usize);
        (image.into_raw(), width, height)
    }

    /// A number of reference.json under `images["skimage_ihc.png"].nuclei`.
    fn nuclei_reference(key: &str) -> f64 {
        let text = std::fs::read_to_string(REFERENCE_JSON).expect("reference.json is readable");
        let reference: serde_json::Value =
            serde_json::from_str(&text).expect("reference.json is valid JSON");
        reference
            .pointer(&format!("/images/skimage_ihc.png/nuclei/{key}"))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| panic!("reference.json has nuclei.{key}"))
    }

    fn detect_ihc() -> NucleiOutcome {
        let (rgb, width, height) = ihc_rgb();
        let params = NucleiParams::default();
        let smoothed = smoothed_hematoxylin(&rgb, width, height, params.sigma);
        detect(&smoothed, width, height, &params)
    }

    fn assert_within(actual: f64, expected: f64, relative: f64, what: &str) {
        assert!(
            (actual - expected).abs() <= relative * expected.abs(),
            "{what}: {actual} is not within {relative} of {expected}"
        );
    }

    #[test]
    fn smoothed_otsu_threshold_of_the_sample_matches_skimage() {
        let outcome = detect_ihc();
        let expected = nuclei_reference("smoothed_otsu_threshold");
        assert!(
            (f64::from(outcome.threshold) - expected).abs() < 1e-3,
            "threshold {}, skimage {expected}",
            outcome.threshold
        );
    }

    #[test]
    fn nuclei_count_and_mean_area_of_the_sample_match_skimage() {
        let outcome = detect_ihc();
        assert_within(
            outcome.nuclei.len() as f64,
            nuclei_reference("count"),
            0.02,
            "count",
        );
        assert_within(
            outcome.mean_area(),
            nuclei_reference("mean_area_px"),
            0.02,
            "mean area",
        );
        assert_within(
            outcome.foreground_pixels as f64,
            nuclei_reference("foreground_pixels_after_size_filter"),
            0.02,
            "foreground pixels",
        );
    }

    #[test]
    fn every_nucleus_is_at_least_the_minimum_area_and_inside_its_box() {
        let outcome = detect_ihc();
        let min_area = u64::from(NucleiParams::default().min_area);
        for nucleus in &outcome.nuclei {
            let bbox = nucleus.bbox;
            // An 8-connected nucleus is a union of 4-connected objects that each survived the
            // speck removal, so none is smaller than the minimum.
            assert!(nucleus.area >= min_area, "{nucleus:?}");
            assert!(nucleus.centroid_x >= f64::from(bbox.min_x));
            assert!(nucleus.centroid_x < f64::from(bbox.max_x));
            assert!(nucleus.centroid_y >= f64::from(bbox.min_y));
            assert!(nucleus.centroid_y < f64::from(bbox.max_y));
        }
    }

    #[test]
    fn tiles_read_with_the_blur_margin_reassemble_the_whole_image_blur() {
        let (rgb, width, height) = ihc_rgb();
        let sigma = 1.0;
        let whole = smoothed_hematoxylin(&rgb, width, height, sigma);
        let margin = blur_margin(sigma) as usize;
        let tile = 100;

        let mut assembled = vec![f32::NAN; width * height];
        for y0 in (0..height).step_by(tile) {
            for x0 in (0..width).step_by(tile) {
                // The tile's rectangle grown by the margin, clipped to the image.
                let (x1, y1) = ((x0 + tile).min(width), (y0 + tile).min(height));
                let (gx0, gy0) = (x0.saturating_sub(margin), y0.saturating_sub(margin));
                let (gx1, gy1) = ((x1 + margin).min(width), (y1 + margin).min(height));
                let grown_width = gx1 - gx0;
                let mut grown = Vec::with_capacity(grown_width * (gy1 - gy0) * 3);
                for y in gy0..gy1 {
                    grown.extend_from_slice(&rgb[(y * width + gx0) * 3..(y * width + gx1) * 3]);
                }

                let smoothed = smoothed_hematoxylin(&grown, grown_width, gy1 - gy0, sigma);
                let inner = ops::crop(&smoothed, grown_width, x0 - gx0, y0 - gy0, x1 - x0, y1 - y0);
                for (row, values) in inner.chunks_exact(x1 - x0).enumerate() {
                    let start = (y0 + row) * width + x0;
                    assembled[start..start + values.len()].copy_from_slice(values);
                }
            }
        }
        assert_eq!(assembled, whole);
    }

    #[test]
    fn blur_margin_is_the_gaussian_kernel_radius() {
        assert_eq!(blur_margin(1.0), 4);
        assert_eq!(blur_margin(2.5), 10);
        assert_eq!(blur_margin(0.0), 0);
    }

    #[test]
    fn a_blank_tile_has_no_nuclei_and_no_nan_threshold() {
        let (width, height) = (16, 8);
        let white = vec![255u8; width * height * 3];
        let smoothed = smoothed_hematoxylin(&white, width, height, 1.0);
        let outcome = detect(&smoothed, width, height, &NucleiParams::default());
        assert_eq!(outcome.threshold, 0.0);
        assert!(outcome.nuclei.is_empty());
        assert_eq!(outcome.foreground_pixels, 0);
        assert_eq!(outcome.mean_area(), 0.0);
    }

    #[test]
    fn specks_below_the_minimum_area_are_not_nuclei() {
        // Two dark blobs on white: a 6 x 6 square and a 2 x 2 speck.
        let (width, height) = (20, 12);
        let mut smoothed = vec![0.0f32; width * height];
        for y in 2..8 {
            smoothed[y * width + 2..y * width + 8].fill(1.0);
        }
        for y in 2..4 {
            smoothed[y * width + 14..y * width + 16].fill(1.0);
        }
        let params = NucleiParams {
            sigma: 1.0,
            min_area: 10,
        };
        let outcome = detect(&smoothed, width, height, &params);
        assert_eq!(outcome.nuclei.len(), 1);
        assert_eq!(outcome.nuclei[0].area, 36);
        assert_eq!(
            (outcome.nuclei[0].centroid_x, outcome.nuclei[0].centroid_y),
            (4.5, 4.5)
        );
        assert_eq!(outcome.foreground_pixels, 36);
    }
}
