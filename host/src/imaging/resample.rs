//! Box-filter downsampling, which produces the pixels of virtual levels.
//!
//! A virtual level with factor `f` maps its pixel (x, y) to the native block
//! `[x·f, (x+1)·f) × [y·f, (y+1)·f)`, clipped to the native level, and takes the rounded mean of
//! that block. The native level is read in pieces of at most [`SOURCE_BLOCK_SIDE`] pixels a
//! side, so memory stays bounded by the output plus one piece whatever the factor.

use super::{ImagingError, Rect};

/// Side, in native pixels, of the pieces a virtual read decodes at a time (3 MiB of RGB8).
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
    native: (u32, u32),
    rect: Rect,
    factor: u32,
    block_side: u32,
) -> Result<Vec<u8>, ImagingError> {
    let factor = factor.max(1);
    let mut out = vec![0u8; rect.rgb_len()];
    let out_stride = rect.width as usize * 3;

    // Up to the block side, a group of output pixels whose blocks fit in one piece is shrunk
    // from that piece. Past it, each output pixel spans several pieces, which are summed.
    let group = if factor <= block_side {
        block_side / factor
    } else {
        1
    };
    for gy in (0..rect.height).step_by(group as usize) {
        for gx in (0..rect.width).step_by(group as usize) {
            let output = Rect::new(
                rect.x + gx,
                rect.y + gy,
                group.min(rect.width - gx),
                group.min(rect.height - gy),
            );
            let source = footprint(output, factor, native);
            let at = gy as usize * out_stride + gx as usize * 3;
            if factor <= block_side {
                let pixels = read(source)?;
                shrink(&pixels, source, factor, &mut out[at..], out_stride);
            } else {
                let mean = mean_of(&mut read, source, block_side)?;
                out[at..at + 3].copy_from_slice(&mean);
            }
        }
    }
    Ok(out)
}

/// The native rectangle covered by `output`, clipped to the native level.
fn footprint(output: Rect, factor: u32, (native_width, native_height): (u32, u32)) -> Rect {
    let f = u64::from(factor);
    let x0 = u64::from(output.x) * f;
    let y0 = u64::from(output.y) * f;
    let x1 = ((u64::from(output.x) + u64::from(output.width)) * f).min(native_width.into());
    let y1 = ((u64::from(output.y) + u64::from(output.height)) * f).min(native_height.into());
    // Output pixels lie inside the virtual level, so x0 < x1 <= native width (and so for y).
    Rect::new(to_u32(x0), to_u32(y0), to_u32(x1 - x0), to_u32(y1 - y0))
}

fn to_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Shrinks an RGB8 piece by `factor`, writing rows of `ceil(width / factor)` means into `out`
/// with the given stride. Blocks cut by the piece's right or bottom edge average what they hold.
fn shrink(pixels: &[u8], piece: Rect, factor: u32, out: &mut [u8], out_stride: usize) {
    let f = factor as usize;
    let (width, height) = (piece.width as usize, piece.height as usize);
    let out_width = width.div_ceil(f);
    // A block holds at most 1024 × 1024 pixels here, so its sums fit in 32 bits.
    let mut sums = vec![0u32; out_width * 3];

    for (oy, out_row) in out
        .chunks_mut(out_stride)
        .take(height.div_ceil(f))
        .enumerate()
    {
        sums.fill(0);
        let rows = (oy * f)..((oy + 1) * f).min(height);
        let row_count = rows.len();
        for row in pixels
            .chunks_exact(width * 3)
            .skip(rows.start)
            .take(row_count)
        {
            for (run, sum) in row.chunks(f * 3).zip(sums.chunks_exact_mut(3)) {
                for pixel in run.chunks_exact(3) {
                    sum[0] += u32::from(pixel[0]);
                    sum[1] += u32::from(pixel[1]);
                    sum[2] += u32::from(pixel[2]);
                }
            }
        }

        for (ox, (sum, mean)) in sums
            .chunks_exact(3)
            .zip(out_row.chunks_exact_mut(3))
            .enumerate()
        {
            let columns = (width - ox * f).min(f);
            let count = (row_count * columns) as u64;
            for c in 0..3 {
                mean[c] = rounded_mean(u64::from(sum[c]), count);
            }
        }
    }
}

/// The mean colour of a native rectangle too large to read at once, read in square pieces.
fn mean_of(
    read: &mut impl FnMut(Rect) -> Result<Vec<u8>, ImagingError>,
    source: Rect,
    block_side: u32,
) -> Result<[u8; 3], ImagingError> {
    let mut sum = [0u64; 3];
    for y in (source.y..source.y + source.height).step_by(block_side as usize) {
        for x in (source.x..source.x + source.width).step_by(block_side as usize) {
            let piece = Rect::new(
                x,
                y,
                block_side.min(source.x + source.width - x),
                block_side.min(source.y + source.height - y),
            );
            for pixel in read(piece)?.chunks_exact(3) {
                sum[0] += u64::from(pixel[0]);
                sum[1] += u64::from(pixel[1]);
                sum[2] += u64::from(pixel[2]);
            }
        }
    }
    Ok(sum.map(|s| rounded_mean(s, source.pixels())))
}

/// `sum / count` rounded half up. Whole blocks hold a power of two of pixels (the factor is
/// one), so most means are a shift rather than a division.
fn rounded_mean(sum: u64, count: u64) -> u8 {
    let mean = if count.is_power_of_two() {
        (sum + count / 2) >> count.trailing_zeros()
    } else {
        (sum + count / 2) / count.max(1)
    };
    u8::try_from(mean).unwrap_or(u8::MAX)
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
            let got =
                downsample_in_blocks(read_native, native, rect, factor, block_side).expect("reads");
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
