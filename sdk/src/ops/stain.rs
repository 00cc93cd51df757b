//! Colour deconvolution of RGB pixels into stain planes.

/// Stain matrix of [`color_deconvolution`] for haematoxylin, eosin and DAB (Ruifrok & Johnston),
/// the `hed_from_rgb` of scikit-image: row `c` holds the contribution of the optical density of
/// colour channel `c` (red, green, blue) to each stain.
pub const HED_FROM_RGB: [[f32; 3]; 3] = [
    [1.877_982_7, -1.007_678_7, -0.556_115_8],
    [-0.065_908_06, 1.134_730_4, -0.135_521_8],
    [-0.601_907_4, -0.480_414_2, 1.573_588_1],
];

/// Smallest intensity [`color_deconvolution`] takes the logarithm of; darker channels are clamped
/// to it, so pure black has an optical density of 1 instead of infinity (as in scikit-image).
const MIN_INTENSITY: f64 = 1e-6;

/// Optical density of each 8-bit intensity, `ln(max(v / 255, 1e-6)) / ln(1e-6)`.
fn optical_density_table() -> [f64; 256] {
    let mut table = [0.0; 256];
    let scale = MIN_INTENSITY.ln();
    for (value, density) in table.iter_mut().enumerate() {
        *density = (value as f64 / 255.0).max(MIN_INTENSITY).ln() / scale;
    }
    table
}

/// Tables of `density(v) * matrix[channel][stain]` for one stain, one per colour channel.
fn stain_tables(density: &[f64; 256], matrix: &[[f32; 3]; 3], stain: usize) -> [[f32; 256]; 3] {
    let mut tables = [[0.0; 256]; 3];
    for (channel, table) in tables.iter_mut().enumerate() {
        let weight = f64::from(matrix[channel][stain]);
        for (entry, &d) in table.iter_mut().zip(density) {
            *entry = (d * weight) as f32;
        }
    }
    tables
}

/// Amount of one stain in each pixel, from precomputed [`stain_tables`].
fn stain_plane(pixels: &[[u8; 3]], tables: &[[f32; 256]; 3]) -> Vec<f32> {
    pixels
        .iter()
        .map(|&[r, g, b]| {
            let amount =
                tables[0][usize::from(r)] + tables[1][usize::from(g)] + tables[2][usize::from(b)];
            // Not `amount.max(0.0)`: on wasm32 that is a call into libm per pixel.
            if amount > 0.0 { amount } else { 0.0 }
        })
        .collect()
}

/// Separates interleaved RGB into three stain planes by colour deconvolution, exactly as
/// scikit-image's `separate_stains`: intensities are clamped to at least 1e-6, turned into optical
/// densities `ln(v) / ln(1e-6)`, multiplied by `matrix` (density row vector times matrix) and
/// clamped at zero. With [`HED_FROM_RGB`] the planes are haematoxylin, eosin and DAB
/// (`rgb2hed`). A trailing partial pixel is ignored.
pub fn color_deconvolution(rgb: &[u8], matrix: &[[f32; 3]; 3]) -> [Vec<f32>; 3] {
    let density = optical_density_table();
    let (pixels, _) = rgb.as_chunks::<3>();
    [0, 1, 2].map(|stain| stain_plane(pixels, &stain_tables(&density, matrix, stain)))
}

/// The haematoxylin plane of [`color_deconvolution`] with [`HED_FROM_RGB`], without computing the
/// other two stains.
pub fn hematoxylin(rgb: &[u8]) -> Vec<f32> {
    let density = optical_density_table();
    let (pixels, _) = rgb.as_chunks::<3>();
    stain_plane(pixels, &stain_tables(&density, &HED_FROM_RGB, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::min_max;
    use crate::ops::test_support::{assert_within, ihc_reference_f64, ihc_rgb, mean};

    #[test]
    fn hematoxylin_of_the_sample_matches_skimage_rgb2hed() {
        let (rgb, _, _) = ihc_rgb();
        let plane = hematoxylin(&rgb);
        let (min, max) = min_max(&plane).expect("image is not empty");
        assert_eq!(min, 0.0);
        assert_within(
            f64::from(max),
            ihc_reference_f64("/hematoxylin/channel_stats/max"),
            0.01,
            "max",
        );
        assert_within(
            mean(&plane),
            ihc_reference_f64("/hematoxylin/channel_stats/mean"),
            0.01,
            "mean",
        );
    }

    #[test]
    fn color_deconvolution_with_hed_matches_skimage_for_every_stain() {
        let (rgb, _, _) = ihc_rgb();
        let [h, e, d] = color_deconvolution(&rgb, &HED_FROM_RGB);
        assert_eq!(h, hematoxylin(&rgb));
        assert_within(
            mean(&d),
            ihc_reference_f64("/hematoxylin/dab_channel_stats/mean"),
            0.01,
            "DAB mean",
        );
        // Eosin is nearly absent from this IHC image; its mean is 4e-7, so compare absolutely.
        let eosin = ihc_reference_f64("/hematoxylin/eosin_channel_stats/mean");
        assert!((mean(&e) - eosin).abs() < 1e-6, "eosin mean {}", mean(&e));
    }

    #[test]
    fn color_deconvolution_treats_black_as_optical_density_one() {
        let [h, e, d] = color_deconvolution(&[0, 0, 0, 255, 255, 255], &HED_FROM_RGB);
        // Density 1 in every channel: each stain is the sum of its matrix column, clamped at 0.
        for (stain, plane) in [h, e, d].iter().enumerate() {
            let column: f32 = HED_FROM_RGB.iter().map(|row| row[stain]).sum();
            assert!((plane[0] - column.max(0.0)).abs() < 1e-6);
            assert_eq!(plane[1], 0.0, "white has no stain");
        }
    }
}
