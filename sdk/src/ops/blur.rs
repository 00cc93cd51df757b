//! Gaussian blur of single-channel planes, and cropping of planes.

/// Gaussian kernels are cut off at this many standard deviations, like scipy's `gaussian_filter`
/// (`truncate=4.0`); the weights beyond are below 0.04 % of the centre weight.
pub const GAUSSIAN_TRUNCATE: f32 = 4.0;

/// Largest sigma [`gaussian_blur`] applies; larger values are clamped to it. It bounds the kernel
/// at 801 taps, and so the work per pixel, when sigma comes from a user parameter. Blurs wider
/// than this are cheaper and as good on a coarser pyramid level.
pub const MAX_GAUSSIAN_SIGMA: f32 = 100.0;

/// Sigma as [`gaussian_blur`] applies it: clamped to [`MAX_GAUSSIAN_SIGMA`], and 0 (no blur) when
/// negative or NaN.
fn effective_sigma(sigma: f32) -> f32 {
    if sigma > 0.0 {
        sigma.min(MAX_GAUSSIAN_SIGMA)
    } else {
        0.0
    }
}

/// Half-width in pixels of the kernel [`gaussian_blur`] uses for `sigma`:
/// `int(4 * sigma + 0.5)`, as scipy computes it. A pixel of the result depends only on input
/// pixels at most this far away in x and in y.
pub fn gaussian_radius(sigma: f32) -> usize {
    (f64::from(GAUSSIAN_TRUNCATE) * f64::from(effective_sigma(sigma)) + 0.5) as usize
}

/// Weights of the offsets `0..=radius` of a normalised Gaussian kernel (the kernel is symmetric),
/// computed in `f64` like scipy's `_gaussian_kernel1d`.
fn gaussian_half_kernel(sigma: f32) -> Vec<f32> {
    let radius = gaussian_radius(sigma);
    if radius == 0 {
        return vec![1.0];
    }
    let sigma = f64::from(effective_sigma(sigma));
    let factor = -0.5 / (sigma * sigma);
    let weights: Vec<f64> = (0..=radius)
        .map(|x| (factor * (x * x) as f64).exp())
        .collect();
    let total = weights[0] + 2.0 * weights[1..].iter().sum::<f64>();
    weights.iter().map(|w| (w / total) as f32).collect()
}

/// One output line of a symmetric convolution: `out[x] = k[0] c[x] + sum_j k[j] (l_j[x] + r_j[x])`
/// where `line(0)` is the centre and `line(±j)` the inputs shifted by ±j.
fn convolve_line<'a>(out: &mut [f32], kernel: &[f32], line: impl Fn(isize) -> &'a [f32]) {
    for (o, &c) in out.iter_mut().zip(line(0)) {
        *o = kernel[0] * c;
    }
    for (j, &weight) in kernel.iter().enumerate().skip(1) {
        let j = j as isize;
        for ((o, &before), &after) in out.iter_mut().zip(line(-j)).zip(line(j)) {
            *o += weight * (before + after);
        }
    }
}

/// Gaussian blur of a `width` x `height` plane, separable, with the border handled as scipy's
/// `mode='nearest'` (edge pixels repeat outwards) and the kernel cut at [`GAUSSIAN_TRUNCATE`]
/// sigmas: the same as scikit-image's `gaussian(plane, sigma, mode='nearest',
/// preserve_range=True)`, in `f32`. A sigma of zero or less (or NaN) returns a copy; sigmas above
/// [`MAX_GAUSSIAN_SIGMA`] are clamped.
///
/// To blur an image tile by tile, read each tile with [`gaussian_radius`] pixels of context on
/// every side (less where the image ends) and keep the inner part: it is identical to blurring the
/// whole image.
///
/// # Panics
///
/// When `plane.len() != width * height`.
pub fn gaussian_blur(plane: &[f32], width: usize, height: usize, sigma: f32) -> Vec<f32> {
    assert_eq!(
        plane.len(),
        width * height,
        "plane of {} values is not {width} x {height}",
        plane.len()
    );
    let kernel = gaussian_half_kernel(sigma);
    let radius = kernel.len() - 1;
    if radius == 0 || plane.is_empty() {
        return plane.to_vec();
    }

    // Along rows: each row is copied into a buffer with the edge values repeated `radius` times on
    // both sides, so the inner loop reads plain slices.
    let mut across = vec![0.0f32; plane.len()];
    let mut padded = vec![0.0f32; width + 2 * radius];
    for (row, out) in plane
        .chunks_exact(width)
        .zip(across.chunks_exact_mut(width))
    {
        padded[..radius].fill(row[0]);
        padded[radius..radius + width].copy_from_slice(row);
        padded[radius + width..].fill(row[width - 1]);
        let padded = &padded;
        convolve_line(out, &kernel, |shift| {
            &padded[(radius as isize + shift) as usize..][..width]
        });
    }

    // Along columns: whole rows are combined, with row indices clamped at the edges.
    let mut out = vec![0.0f32; plane.len()];
    let last_row = height as isize - 1;
    for (y, out_row) in out.chunks_exact_mut(width).enumerate() {
        let across = &across;
        convolve_line(out_row, &kernel, |shift| {
            let source = (y as isize + shift).clamp(0, last_row) as usize;
            &across[source * width..][..width]
        });
    }
    out
}

/// Copies the `crop_width` x `crop_height` rectangle at (`x`, `y`) out of a plane `width` values
/// wide, e.g. the inner part of a tile read with a margin.
///
/// # Panics
///
/// When the rectangle does not lie inside the plane.
pub fn crop(
    plane: &[f32],
    width: usize,
    x: usize,
    y: usize,
    crop_width: usize,
    crop_height: usize,
) -> Vec<f32> {
    assert!(
        x + crop_width <= width && (y + crop_height) * width <= plane.len(),
        "crop {crop_width} x {crop_height} at ({x}, {y}) is outside the plane"
    );
    let mut out = Vec::with_capacity(crop_width * crop_height);
    for row in 0..crop_height {
        let start = (y + row) * width + x;
        out.extend_from_slice(&plane[start..start + crop_width]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_radius_follows_scipy_truncation() {
        assert_eq!(gaussian_radius(1.0), 4);
        assert_eq!(gaussian_radius(1.1), 4);
        assert_eq!(gaussian_radius(2.0), 8);
        assert_eq!(gaussian_radius(0.1), 0);
        assert_eq!(gaussian_radius(-1.0), 0);
        assert_eq!(gaussian_radius(f32::NAN), 0);
        assert_eq!(gaussian_radius(1e9), 400);
    }

    #[test]
    fn blur_of_a_constant_image_is_constant() {
        let plane = vec![0.37f32; 13 * 7];
        for value in gaussian_blur(&plane, 13, 7, 2.0) {
            assert!((value - 0.37).abs() < 1e-6, "{value}");
        }
    }

    #[test]
    fn blur_of_an_impulse_sums_to_one_and_is_symmetric() {
        let (width, height) = (21, 21);
        let mut plane = vec![0.0f32; width * height];
        plane[10 * width + 10] = 1.0;
        let blurred = gaussian_blur(&plane, width, height, 1.5);
        let total: f32 = blurred.iter().sum();
        assert!((total - 1.0).abs() < 1e-5, "sum {total}");
        assert_eq!(blurred[10 * width + 7], blurred[10 * width + 13]);
        assert_eq!(blurred[7 * width + 10], blurred[10 * width + 7]);
        assert!(blurred[10 * width + 10] > blurred[10 * width + 11]);
    }

    #[test]
    fn blur_equals_a_direct_convolution_with_edges_repeated() {
        // Narrower than the kernel, so most taps read repeated edge pixels.
        let (width, height, sigma) = (5, 9, 1.7);
        let plane: Vec<f32> = (0..width * height)
            .map(|i| ((i * 37) % 11) as f32 / 10.0)
            .collect();
        let radius = gaussian_radius(sigma) as isize;
        let weight = |d: isize| (-0.5 * (d * d) as f64 / f64::from(sigma * sigma)).exp();
        let norm: f64 = (-radius..=radius).map(weight).sum();
        let at = |x: isize, y: isize| {
            let x = x.clamp(0, width as isize - 1) as usize;
            let y = y.clamp(0, height as isize - 1) as usize;
            f64::from(plane[y * width + x])
        };

        let blurred = gaussian_blur(&plane, width, height, sigma);
        for y in 0..height as isize {
            for x in 0..width as isize {
                let mut expected = 0.0;
                for dy in -radius..=radius {
                    for dx in -radius..=radius {
                        expected += weight(dx) * weight(dy) * at(x + dx, y + dy);
                    }
                }
                expected /= norm * norm;
                let actual = f64::from(blurred[y as usize * width + x as usize]);
                assert!(
                    (actual - expected).abs() < 1e-5,
                    "({x}, {y}): {actual} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn blur_with_zero_sigma_returns_the_plane_unchanged() {
        let plane = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(gaussian_blur(&plane, 2, 2, 0.0), plane);
        assert!(gaussian_blur(&[], 0, 0, 3.0).is_empty());
    }

    #[test]
    fn crop_copies_the_inner_rectangle() {
        let plane: Vec<f32> = (0..20).map(|i| i as f32).collect();
        assert_eq!(
            crop(&plane, 5, 1, 2, 3, 2),
            [11.0, 12.0, 13.0, 16.0, 17.0, 18.0]
        );
    }
}
