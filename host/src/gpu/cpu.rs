//! The plain-Rust path of every kernel: used when no adapter exists or when the `cpu` backend is
//! chosen, and the reference the device kernels are tested against.
//!
//! Where the SDK already has the operation (`tessera_sdk::ops`), this calls it, so a plugin gets
//! the same numbers from the host's kernels as from its own CPU code.

use tessera_sdk::ops::{self, Connectivity, Labels, RegionStats};

/// Interleaved RGB bytes of packed pixels (red in the low byte).
pub fn unpack_rgb(packed: &[u32]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(packed.len() * 3);
    for &p in packed {
        rgb.extend_from_slice(&[p as u8, (p >> 8) as u8, (p >> 16) as u8]);
    }
    rgb
}

/// Packed pixels of interleaved RGB bytes; a trailing partial pixel is ignored.
pub fn pack_rgb(rgb: &[u8]) -> Vec<u32> {
    let (pixels, _) = rgb.as_chunks::<3>();
    pixels
        .iter()
        .map(|&[r, g, b]| u32::from(r) | u32::from(g) << 8 | u32::from(b) << 16)
        .collect()
}

/// Optical density of one 8-bit value, as the SDK's colour deconvolution defines it.
pub fn optical_density_of(value: u8) -> f64 {
    const MIN_INTENSITY: f64 = 1e-6;
    (f64::from(value) / 255.0).max(MIN_INTENSITY).ln() / MIN_INTENSITY.ln()
}

/// Red, green and blue optical-density planes, one after the other.
pub fn optical_density(packed: &[u32]) -> Vec<f32> {
    let table: Vec<f32> = (0..=255u8).map(|v| optical_density_of(v) as f32).collect();
    let mut out = vec![0f32; packed.len() * 3];
    let n = packed.len();
    for (i, &p) in packed.iter().enumerate() {
        out[i] = table[(p & 255) as usize];
        out[n + i] = table[((p >> 8) & 255) as usize];
        out[2 * n + i] = table[((p >> 16) & 255) as usize];
    }
    out
}

/// One stain plane of the SDK's colour deconvolution.
pub fn color_deconvolution(packed: &[u32], matrix: &[[f32; 3]; 3], stain: usize) -> Vec<f32> {
    let [a, b, c] = ops::color_deconvolution(&unpack_rgb(packed), matrix);
    match stain {
        0 => a,
        1 => b,
        _ => c,
    }
}

/// The SDK's grey level.
pub fn grayscale(packed: &[u32]) -> Vec<f32> {
    ops::rgb_to_gray(&unpack_rgb(packed))
}

/// The SDK's Gaussian blur of each plane.
pub fn gaussian_blur(values: &[f32], width: usize, height: usize, sigma: f32) -> Vec<f32> {
    let plane = width * height;
    if plane == 0 {
        return values.to_vec();
    }
    values
        .chunks_exact(plane)
        .flat_map(|p| ops::gaussian_blur(p, width, height, sigma))
        .collect()
}

/// The SDK's 256-bin histogram over `[min, max]`.
pub fn histogram(values: &[f32], min: f32, max: f32) -> [u64; 256] {
    let mut histogram = ops::Histogram::new(min, max);
    histogram.add(values);
    histogram.counts
}

/// 1 where `value > level` (or `<=` when `above` is false).
pub fn threshold(values: &[f32], level: f32, above: bool) -> Vec<u32> {
    values
        .iter()
        .map(|&v| u32::from(if above { v > level } else { v <= level }))
        .collect()
}

/// Square erosion or dilation of a 0/1 mask; pixels outside the plane are ignored.
pub fn erode_or_dilate(
    mask: &[u32],
    width: usize,
    height: usize,
    radius: usize,
    dilate: bool,
) -> Vec<u32> {
    let pass = |input: &[u32], vertical: bool| -> Vec<u32> {
        let mut out = vec![0u32; input.len()];
        for y in 0..height {
            for x in 0..width {
                let (pos, len) = if vertical { (y, height) } else { (x, width) };
                let range = pos.saturating_sub(radius)..=(pos + radius).min(len - 1);
                let mut values = range.map(|k| {
                    let index = if vertical {
                        k * width + x
                    } else {
                        y * width + k
                    };
                    input[index] != 0
                });
                let set = if dilate {
                    values.any(|v| v)
                } else {
                    values.all(|v| v)
                };
                out[y * width + x] = u32::from(set);
            }
        }
        out
    };
    if mask.is_empty() {
        return Vec::new();
    }
    pass(&pass(mask, false), true)
}

fn as_bools(mask: &[u32]) -> Vec<bool> {
    mask.iter().map(|&v| v != 0).collect()
}

/// The mask without objects under `min_area` pixels.
pub fn remove_small_objects(
    mask: &[u32],
    width: usize,
    height: usize,
    min_area: u32,
    connectivity: Connectivity,
) -> Vec<u32> {
    let mut bools = as_bools(mask);
    ops::remove_small_objects(&mut bools, width, height, min_area, connectivity);
    bools.into_iter().map(u32::from).collect()
}

/// The SDK's labelling: raster order of each object's first pixel.
pub fn label_components(
    mask: &[u32],
    width: usize,
    height: usize,
    connectivity: Connectivity,
) -> Labels {
    ops::label_components(&as_bools(mask), width, height, connectivity)
}

/// The SDK's per-label statistics.
pub fn region_stats(labels: &[u32], count: u32, width: usize, height: usize) -> Vec<RegionStats> {
    let labels = Labels {
        labels: labels.to_vec(),
        count,
    };
    ops::region_stats(&labels, width, height)
}
