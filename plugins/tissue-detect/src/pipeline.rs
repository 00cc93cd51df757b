//! The tissue detection pipeline as pure functions on pixel buffers; the plugin glue reads regions
//! through the host and calls these.
//!
//! Tissue is what is darker than the bright glass around it: the grey image is split by its global
//! Otsu threshold (`definitions.otsu` and `definitions.tissue_fraction` of
//! `examples/data/reference.json`), pixels at or below it are tissue, and each piece of tissue
//! larger than a speck becomes a simplified outline.
//!
//! The threshold is global, so the glue converts regions with [`gray_tile`], pastes them into one
//! grey plane and calls [`detect_gray`]; [`detect`] does both for an image already in memory. For
//! an image too large to hold even as grey, the threshold and fraction can still be computed
//! region by region with `tessera_sdk::ops::Histogram` (a first pass for the grey range, a second
//! to fill the histogram), but outlines need the whole mask.

use tessera_sdk::ops;

/// Pieces of tissue with fewer pixels than this get no outline (they still count in the
/// fraction). Dust and debris on the glass make many such specks; outlining them would bury the
/// real tissue under tiny polygons. In pixels of the analysed level, so it suits levels of a few
/// thousand pixels a side; on a much finer level, analyse a coarser one instead.
pub const MIN_OUTLINE_AREA_PX: u64 = 500;

/// Douglas–Peucker tolerance of the outlines, in pixels of the analysed level. The traced
/// boundary follows pixel edges, a staircase with a vertex every pixel or two; within two pixels
/// the shape is unchanged at any zoom that shows the whole level, and the vertex count drops
/// roughly tenfold.
pub const OUTLINE_TOLERANCE_PX: f64 = 2.0;

/// What [`detect`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct TissueOutcome {
    /// Otsu threshold of the grey image (0..=1); tissue is at or below it.
    pub threshold: f32,
    /// Fraction of the pixels that are tissue, specks included.
    pub fraction: f64,
    /// Outer boundary of each piece of tissue of at least [`MIN_OUTLINE_AREA_PX`] pixels, largest
    /// first, in pixel-corner coordinates of the analysed image (see
    /// `tessera_sdk::ops::trace_outlines`; holes are not traced).
    pub outlines: Vec<Vec<(f64, f64)>>,
}

/// Grey levels (0..=1) of an RGB region, ready to be pasted into the plane given to
/// [`detect_gray`].
pub fn gray_tile(rgb: &[u8]) -> Vec<f32> {
    ops::rgb_to_gray(rgb)
}

/// Detects tissue in a whole RGB image held in memory (`width * height * 3` bytes).
///
/// # Panics
///
/// When `rgb.len() != width * height * 3`.
pub fn detect(rgb: &[u8], width: usize, height: usize) -> TissueOutcome {
    assert_eq!(
        rgb.len(),
        width * height * 3,
        "RGB buffer of {} bytes is not {width} x {height} x 3",
        rgb.len()
    );
    detect_gray(&gray_tile(rgb), width, height)
}

/// Detects tissue in the grey plane of a whole image: threshold, tissue fraction and outlines.
///
/// An image of a single grey level has no contrast to split: its threshold is that level and,
/// as in the reference definition (`value <= threshold`), every pixel counts as tissue.
///
/// # Panics
///
/// When `gray.len() != width * height`.
pub fn detect_gray(gray: &[f32], width: usize, height: usize) -> TissueOutcome {
    assert_eq!(
        gray.len(),
        width * height,
        "grey plane of {} values is not {width} x {height}",
        gray.len()
    );
    let threshold = ops::otsu_threshold(gray);
    let tissue: Vec<bool> = gray.iter().map(|&value| value <= threshold).collect();
    from_mask(threshold, &tissue, width, height)
}

/// Fraction and outlines of a tissue mask (`true` at or below `threshold`) computed elsewhere,
/// e.g. by the host's kernels.
///
/// # Panics
///
/// When `tissue.len() != width * height`.
pub fn from_mask(threshold: f32, tissue: &[bool], width: usize, height: usize) -> TissueOutcome {
    assert_eq!(
        tissue.len(),
        width * height,
        "mask of {} values is not {width} x {height}",
        tissue.len()
    );
    let tissue_pixels = tissue.iter().filter(|&&is_tissue| is_tissue).count();
    let fraction = if tissue.is_empty() {
        0.0
    } else {
        tissue_pixels as f64 / tissue.len() as f64
    };
    let outlines = ops::trace_outlines(
        tissue,
        width,
        height,
        MIN_OUTLINE_AREA_PX,
        OUTLINE_TOLERANCE_PX,
    );

    TissueOutcome {
        threshold,
        fraction,
        outlines,
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

    /// A number of reference.json under `images["skimage_ihc.png"].grayscale`.
    fn grayscale_reference(key: &str) -> f64 {
        let text = std::fs::read_to_string(REFERENCE_JSON).expect("reference.json is readable");
        let reference: serde_json::Value =
            serde_json::from_str(&text).expect("reference.json is valid JSON");
        reference
            .pointer(&format!("/images/skimage_ihc.png/grayscale/{key}"))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| panic!("reference.json has grayscale.{key}"))
    }

    /// A white RGB image with the given rectangles (x, y, width, height) painted dark.
    fn slide(width: usize, height: usize, dark: &[(usize, usize, usize, usize)]) -> Vec<u8> {
        let mut rgb = vec![240u8; width * height * 3];
        for &(x0, y0, w, h) in dark {
            for y in y0..y0 + h {
                rgb[(y * width + x0) * 3..(y * width + x0 + w) * 3].fill(90);
            }
        }
        rgb
    }

    #[test]
    fn threshold_and_fraction_of_the_sample_match_skimage() {
        let (rgb, width, height) = ihc_rgb();
        let outcome = detect(&rgb, width, height);
        let threshold = grayscale_reference("otsu_threshold_float");
        let fraction = grayscale_reference("tissue_fraction_float");
        assert!(
            (f64::from(outcome.threshold) - threshold).abs() < 1e-3,
            "threshold {}, skimage {threshold}",
            outcome.threshold
        );
        assert!(
            (outcome.fraction - fraction).abs() < 0.005,
            "fraction {}, skimage {fraction}",
            outcome.fraction
        );
    }

    #[test]
    fn outlines_of_the_sample_are_few_and_inside_the_image() {
        let (rgb, width, height) = ihc_rgb();
        let outcome = detect(&rgb, width, height);
        assert!(
            (1..=300).contains(&outcome.outlines.len()),
            "{} outlines",
            outcome.outlines.len()
        );
        let vertices: usize = outcome.outlines.iter().map(Vec::len).sum();
        assert!(vertices <= ops::MAX_OUTLINE_VERTICES);
        for ring in &outcome.outlines {
            assert!(ring.len() >= 3);
            for &(x, y) in ring {
                assert!((0.0..=width as f64).contains(&x) && (0.0..=height as f64).contains(&y));
            }
        }
    }

    #[test]
    fn detecting_from_pasted_gray_tiles_equals_detecting_the_whole_image() {
        let (rgb, width, height) = ihc_rgb();
        // Bands of rows are contiguous in both buffers, so pasting is concatenation.
        let band = 100 * width * 3;
        let gray: Vec<f32> = rgb.chunks(band).flat_map(gray_tile).collect();
        assert_eq!(
            detect_gray(&gray, width, height),
            detect(&rgb, width, height)
        );
    }

    #[test]
    fn a_dark_piece_on_white_glass_is_outlined_and_a_speck_is_not() {
        let (width, height) = (80, 60);
        let rgb = slide(width, height, &[(10, 10, 30, 20), (60, 50, 3, 3)]);
        let outcome = detect(&rgb, width, height);
        let tissue = 30 * 20 + 3 * 3;
        assert_eq!(outcome.fraction, tissue as f64 / (width * height) as f64);
        assert_eq!(
            outcome.outlines,
            [vec![(10.0, 10.0), (40.0, 10.0), (40.0, 30.0), (10.0, 30.0)]]
        );
    }

    #[test]
    fn a_blank_slide_is_all_at_the_threshold_without_nan() {
        let (width, height) = (30, 20);
        let outcome = detect(&slide(width, height, &[]), width, height);
        assert!(!outcome.threshold.is_nan());
        assert_eq!(outcome.fraction, 1.0);
        assert!(detect(&[], 0, 0).outlines.is_empty());
    }
}
