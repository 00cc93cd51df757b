//! Grey levels of RGB pixels.

/// Weights of red, green and blue in [`rgb_to_gray`]: ITU-R BT.709 luma, as in scikit-image's
/// `rgb2gray`.
pub const GRAY_WEIGHTS: [f64; 3] = [0.2125, 0.7154, 0.0721];

/// Lookup tables of `weight * value / 255` in `f64` for each channel, so that a grey level costs
/// three loads and two additions in the same order as scikit-image's `rgb @ weights`.
fn gray_tables() -> [[f64; 256]; 3] {
    let mut tables = [[0.0; 256]; 3];
    for (table, weight) in tables.iter_mut().zip(GRAY_WEIGHTS) {
        for (value, entry) in table.iter_mut().enumerate() {
            *entry = value as f64 / 255.0 * weight;
        }
    }
    tables
}

/// Grey level of each pixel of interleaved RGB, `0.2125 R + 0.7154 G + 0.0721 B` with channels
/// scaled to 0..=1 (scikit-image `rgb2gray`). A trailing partial pixel is ignored.
pub fn rgb_to_gray(rgb: &[u8]) -> Vec<f32> {
    let tables = gray_tables();
    let (pixels, _) = rgb.as_chunks::<3>();
    pixels
        .iter()
        .map(|&[r, g, b]| {
            (tables[0][usize::from(r)] + tables[1][usize::from(g)] + tables[2][usize::from(b)])
                as f32
        })
        .collect()
}

/// Grey level of each pixel as an 8-bit value: [`rgb_to_gray`] scaled to 0..=255 and rounded half
/// to even (`numpy.round(rgb2gray(rgb) * 255)`). The grey level stays in `f64` until rounding so
/// that values on a half step round exactly as in the reference.
pub fn rgb_to_gray_u8(rgb: &[u8]) -> Vec<u8> {
    let tables = gray_tables();
    let (pixels, _) = rgb.as_chunks::<3>();
    pixels
        .iter()
        .map(|&[r, g, b]| {
            let gray =
                tables[0][usize::from(r)] + tables[1][usize::from(g)] + tables[2][usize::from(b)];
            (gray * 255.0).round_ties_even() as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::{
        assert_within, ihc_reference, ihc_reference_f64, ihc_rgb, mean,
    };
    use crate::ops::{histogram_u8, min_max};

    #[test]
    fn gray_u8_histogram_of_the_sample_equals_the_reference_exactly() {
        let (rgb, _, _) = ihc_rgb();
        let expected: Vec<u64> = ihc_reference("/grayscale/histogram_u8_256bins")
            .as_array()
            .expect("histogram is an array")
            .iter()
            .map(|count| count.as_u64().expect("counts are integers"))
            .collect();
        assert_eq!(histogram_u8(&rgb_to_gray_u8(&rgb)).to_vec(), expected);
    }

    #[test]
    fn gray_levels_of_the_sample_match_the_reference_statistics() {
        let (rgb, _, _) = ihc_rgb();
        let gray = rgb_to_gray(&rgb);
        let (min, max) = min_max(&gray).expect("image is not empty");
        assert_within(
            f64::from(min),
            ihc_reference_f64("/grayscale/gray_float_stats/min"),
            1e-6,
            "min",
        );
        assert_within(
            f64::from(max),
            ihc_reference_f64("/grayscale/gray_float_stats/max"),
            1e-6,
            "max",
        );
        assert_within(
            mean(&gray),
            ihc_reference_f64("/grayscale/gray_float_stats/mean"),
            1e-6,
            "mean",
        );
    }
}
