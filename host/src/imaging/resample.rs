//! Box-filter downsampling, which produces the pixels of virtual levels.
//!
//! A virtual level with factor `f` maps its pixel (x, y) to the native block
//! `[x·f, (x+1)·f) × [y·f, (y+1)·f)`, clipped to the native level, and takes the rounded mean of
//! that block. The native level is read in blocks of at most [`SOURCE_BLOCK_SIDE`] pixels a
//! side, so memory stays bounded by the output plus one block whatever the factor.

use super::{ImagingError, Rect};

/// Side, in native pixels, of the blocks a virtual read decodes at a time (3 MiB of RGB8).
const SOURCE_BLOCK_SIDE: u32 = 1024;

/// Reads `rect` of a virtual level that is `native` (width, height) shrunk by `factor`, calling
/// `read` for RGB8 regions of the native level.
pub(super) fn downsample(
    read: impl FnMut(Rect) -> Result<Vec<u8>, ImagingError>,
    native: (u32, u32),
    rect: Rect,
    factor: u32,
) -> Result<Vec<u8>, ImagingError> {
    downsample_in_blocks(read, native, rect, factor, SOURCE_BLOCK_SIDE)
}

fn downsample_in_blocks(
    mut read: impl FnMut(Rect) -> Result<Vec<u8>, ImagingError>,
    (native_width, native_height): (u32, u32),
    rect: Rect,
    factor: u32,
    block_side: u32,
) -> Result<Vec<u8>, ImagingError> {
    let f = u64::from(factor.max(1));
    let group = (block_side / factor.max(1)).max(1);
    let mut out = vec![0u8; rect.rgb_len()];

    // Output blocks of `group` pixels a side: each covers at most one source block when the
    // factor is below the block side, or one output pixel made of several source blocks.
    for gy in (0..rect.height).step_by(group as usize) {
        for gx in (0..rect.width).step_by(group as usize) {
            let group_rect = Rect::new(
                rect.x + gx,
                rect.y + gy,
                group.min(rect.width - gx),
                group.min(rect.height - gy),
            );
            let footprint = Footprint::of(group_rect, f, native_width, native_height);
            let mut sums = vec![0u64; group_rect.rgb_len()];

            for by in (footprint.y0..footprint.y1).step_by(block_side as usize) {
                for bx in (footprint.x0..footprint.x1).step_by(block_side as usize) {
                    let block = Rect::new(
                        to_u32(bx),
                        to_u32(by),
                        to_u32((footprint.x1 - bx).min(u64::from(block_side))),
                        to_u32((footprint.y1 - by).min(u64::from(block_side))),
                    );
                    let pixels = read(block)?;
                    accumulate(&pixels, block, group_rect, f, &mut sums);
                }
            }

            write_means(&sums, group_rect, f, (native_width, native_height), rect, &mut out);
        }
    }
    Ok(out)
}

/// The native rectangle `[x0, x1) × [y0, y1)` covered by output pixels.
struct Footprint {
    x0: u64,
    x1: u64,
    y0: u64,
    y1: u64,
}

impl Footprint {
    fn of(output: Rect, f: u64, native_width: u32, native_height: u32) -> Footprint {
        let x0 = u64::from(output.x) * f;
        let y0 = u64::from(output.y) * f;
        Footprint {
            x0,
            x1: ((u64::from(output.x) + u64::from(output.width)) * f).min(native_width.into()),
            y0,
            y1: ((u64::from(output.y) + u64::from(output.height)) * f).min(native_height.into()),
        }
    }
}

/// Native coordinates are below the native level's `u32` size, so they fit.
fn to_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Adds each pixel of a native block to the sum of the output pixel that covers it.
fn accumulate(pixels: &[u8], block: Rect, group: Rect, f: u64, sums: &mut [u64]) {
    let columns: Vec<usize> = (0..u64::from(block.width))
        .map(|c| ((u64::from(block.x) + c) / f - u64::from(group.x)) as usize)
        .collect();
    let row_len = block.width as usize * 3;

    for (r, row) in pixels.chunks_exact(row_len).enumerate() {
        let out_row = ((u64::from(block.y) + r as u64) / f - u64::from(group.y)) as usize;
        let sum_row = &mut sums[out_row * group.width as usize * 3..];
        for (pixel, &column) in row.chunks_exact(3).zip(&columns) {
            let sum = &mut sum_row[column * 3..column * 3 + 3];
            sum[0] += u64::from(pixel[0]);
            sum[1] += u64::from(pixel[1]);
            sum[2] += u64::from(pixel[2]);
        }
    }
}

/// Divides each sum by the number of native pixels in its clipped block, rounding half up, and
/// stores the means of `group` into `out`, which holds all of `rect`.
fn write_means(
    sums: &[u64],
    group: Rect,
    f: u64,
    (native_width, native_height): (u32, u32),
    rect: Rect,
    out: &mut [u8],
) {
    let extent = |start: u32, size: u32| {
        let first = u64::from(start) * f;
        (first + f).min(u64::from(size)) - first
    };

    for oy in 0..group.height {
        let rows = extent(group.y + oy, native_height);
        for ox in 0..group.width {
            let count = rows * extent(group.x + ox, native_width);
            let sum_at = (oy as usize * group.width as usize + ox as usize) * 3;
            let out_x = (group.x - rect.x + ox) as usize;
            let out_y = (group.y - rect.y + oy) as usize;
            let out_at = (out_y * rect.width as usize + out_x) * 3;
            for c in 0..3 {
                let mean = (sums[sum_at + c] + count / 2) / count.max(1);
                out[out_at + c] = u8::try_from(mean).unwrap_or(u8::MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A native image whose pixel (x, y) is (x, y, x + y) modulo 256.
    fn native_pixel(x: u32, y: u32) -> [u8; 3] {
        [(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]
    }

    fn read_native(rect: Rect) -> Result<Vec<u8>, ImagingError> {
        let mut out = Vec::new();
        for y in rect.y..rect.y + rect.height {
            for x in rect.x..rect.x + rect.width {
                out.extend_from_slice(&native_pixel(x, y));
            }
        }
        Ok(out)
    }

    /// The mean of each clipped block, computed pixel by pixel.
    fn naive(native: (u32, u32), rect: Rect, factor: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for oy in rect.y..rect.y + rect.height {
            for ox in rect.x..rect.x + rect.width {
                let mut sum = [0u64; 3];
                let mut count = 0u64;
                for y in oy * factor..((oy + 1) * factor).min(native.1) {
                    for x in ox * factor..((ox + 1) * factor).min(native.0) {
                        let p = native_pixel(x, y);
                        (0..3).for_each(|c| sum[c] += u64::from(p[c]));
                        count += 1;
                    }
                }
                out.extend(sum.iter().map(|s| ((s + count / 2) / count) as u8));
            }
        }
        out
    }

    #[test]
    fn each_virtual_pixel_is_the_rounded_mean_of_its_clipped_block() {
        let native: (u32, u32) = (37, 23);
        for factor in [2, 4, 8, 32] {
            let (w, h) = (native.0.div_ceil(factor), native.1.div_ceil(factor));
            let whole = Rect::new(0, 0, w, h);
            let got = downsample(read_native, native, whole, factor).expect("reads");
            assert_eq!(got, naive(native, whole, factor), "factor {factor}");
        }
    }

    #[test]
    fn small_blocks_and_factors_larger_than_a_block_give_the_same_means() {
        let native: (u32, u32) = (50, 41);
        for (factor, block_side) in [(2, 3), (4, 4), (8, 2), (16, 5)] {
            let (w, h) = (native.0.div_ceil(factor), native.1.div_ceil(factor));
            let rect = Rect::new(w / 3, h / 4, w - w / 3, h - h / 4);
            let got = downsample_in_blocks(read_native, native, rect, factor, block_side)
                .expect("reads");
            assert_eq!(got, naive(native, rect, factor), "factor {factor}");
        }
    }

    #[test]
    fn a_failing_native_read_fails_the_virtual_read() {
        let failing = |_| Err(ImagingError::Empty);
        let result = downsample(failing, (8, 8), Rect::new(0, 0, 4, 4), 2);
        assert!(matches!(result, Err(ImagingError::Empty)));
    }
}
