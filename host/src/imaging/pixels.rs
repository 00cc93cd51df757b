//! Conversion of decoded TIFF samples to RGB8.
//!
//! The `tiff` crate hands back each tile or strip in the sample layout of the file: grey, grey
//! with extra samples, RGB, RGBA or YCbCr, at 8 or 16 bits. Everything else in this module works
//! on interleaved RGB8, so this is the single place that knows about the other layouts. The
//! conversions follow what libtiff-based readers produce: 16-bit samples are rounded to the
//! nearest 8-bit value, alpha and other extra samples are dropped, and YCbCr uses the full-range
//! JPEG (JFIF) equations, which is what JPEG-compressed YCbCr tiles carry.

use tiff::ColorType;
use tiff::decoder::DecodingResult;

/// How the samples of one pixel are laid out in a decoded TIFF chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// One grey sample, possibly followed by extra samples (alpha or unspecified).
    Grey,
    /// Red, green, blue, possibly followed by extra samples.
    Rgb,
    /// Luma and two chroma samples, as stored by Photometric=YCbCr.
    YCbCr,
}

/// The sample format of decoded chunks of one TIFF page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PixelFormat {
    pub layout: Layout,
    /// Samples per pixel in the decoded buffer, extra samples included.
    pub samples: u16,
    /// Bits per sample: 8 or 16.
    pub bits: u8,
}

impl PixelFormat {
    /// Maps the `tiff` crate's colour type to a format this module converts, or says in words
    /// what is not supported.
    pub fn from_tiff(colour: ColorType) -> Result<PixelFormat, String> {
        let (layout, samples, bits) = match colour {
            ColorType::Gray(bits) => (Layout::Grey, 1, bits),
            ColorType::GrayA(bits) => (Layout::Grey, 2, bits),
            ColorType::Multiband {
                bit_depth,
                num_samples,
            } if num_samples >= 1 => (Layout::Grey, num_samples, bit_depth),
            ColorType::RGB(bits) => (Layout::Rgb, 3, bits),
            ColorType::RGBA(bits) => (Layout::Rgb, 4, bits),
            ColorType::YCbCr(bits) => (Layout::YCbCr, 3, bits),
            ColorType::Palette(_) => {
                return Err("palette-colour tiff; hint: convert it to rgb".to_owned());
            }
            other => return Err(format!("tiff colour type {other:?}")),
        };
        if bits != 8 && bits != 16 {
            return Err(format!(
                "tiff with {bits} bits per sample; hint: only 8 and 16 bits are read"
            ));
        }
        Ok(PixelFormat {
            layout,
            samples,
            bits,
        })
    }

    /// Bytes one decoded pixel occupies.
    pub fn bytes_per_pixel(self) -> u64 {
        u64::from(self.samples) * u64::from(self.bits / 8)
    }
}

/// Converts one decoded chunk of `pixels` pixels to RGB8, appending to `out`.
///
/// Returns an error in words when the buffer does not hold exactly `pixels` pixels of `format`.
pub(super) fn to_rgb8(
    format: PixelFormat,
    decoded: &DecodingResult,
    pixels: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match (decoded, format.bits) {
        (DecodingResult::U8(samples), 8) => convert(format, samples, pixels, |v| v, out),
        (DecodingResult::U16(samples), 16) => convert(format, samples, pixels, narrow_u16, out),
        _ => Err(format!(
            "decoder returned an unexpected sample type for {} bits",
            format.bits
        )),
    }
}

/// Converts one decoded chunk to RGB8, reusing its buffer when it already is RGB8.
pub(super) fn into_rgb8(
    format: PixelFormat,
    decoded: DecodingResult,
    pixels: usize,
) -> Result<Vec<u8>, String> {
    let is_rgb8 = format.layout == Layout::Rgb && format.samples == 3 && format.bits == 8;
    match decoded {
        DecodingResult::U8(samples) if is_rgb8 && Some(samples.len()) == pixels.checked_mul(3) => {
            Ok(samples)
        }
        other => {
            let mut out = Vec::new();
            to_rgb8(format, &other, pixels, &mut out)?;
            Ok(out)
        }
    }
}

/// Rounds a 16-bit sample to the nearest 8-bit one.
fn narrow_u16(value: u16) -> u8 {
    // (65535 + 128) / 257 is 255, so the result always fits.
    u8::try_from((u32::from(value) + 128) / 257).unwrap_or(u8::MAX)
}

fn convert<T: Copy>(
    format: PixelFormat,
    samples: &[T],
    pixels: usize,
    narrow: impl Fn(T) -> u8,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let stride = usize::from(format.samples);
    let expected = pixels.checked_mul(stride).ok_or("pixel count overflows")?;
    if samples.len() != expected {
        return Err(format!(
            "decoded chunk holds {} samples, expected {expected}",
            samples.len()
        ));
    }

    out.reserve(pixels * 3);
    for pixel in samples.chunks_exact(stride) {
        match format.layout {
            Layout::Grey => {
                let v = narrow(pixel[0]);
                out.extend_from_slice(&[v, v, v]);
            }
            Layout::Rgb => {
                out.extend_from_slice(&[narrow(pixel[0]), narrow(pixel[1]), narrow(pixel[2])]);
            }
            Layout::YCbCr => {
                let rgb = ycbcr_to_rgb(narrow(pixel[0]), narrow(pixel[1]), narrow(pixel[2]));
                out.extend_from_slice(&rgb);
            }
        }
    }
    Ok(())
}

/// Full-range YCbCr to RGB, as in JFIF (ITU-R BT.601 coefficients).
pub(super) fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let y = f32::from(y);
    let cb = f32::from(cb) - 128.0;
    let cr = f32::from(cr) - 128.0;
    let r = y + 1.402 * cr;
    let g = y - 0.344_136 * cb - 0.714_136 * cr;
    let b = y + 1.772 * cb;
    [to_u8(r), to_u8(g), to_u8(b)]
}

fn to_u8(value: f32) -> u8 {
    // The clamp keeps the value in 0..=255, so the cast neither wraps nor saturates.
    value.round().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_samples_round_to_the_nearest_eight_bit_value() {
        assert_eq!(narrow_u16(0), 0);
        assert_eq!(narrow_u16(65535), 255);
        assert_eq!(narrow_u16(257 * 100), 100);
        assert_eq!(narrow_u16(257 * 100 + 128), 100);
        assert_eq!(narrow_u16(257 * 100 + 129), 101);
    }

    #[test]
    fn ycbcr_neutral_chroma_is_grey_and_primaries_come_back() {
        assert_eq!(ycbcr_to_rgb(0, 128, 128), [0, 0, 0]);
        assert_eq!(ycbcr_to_rgb(200, 128, 128), [200, 200, 200]);
        // Pure red encoded with the JFIF forward equations.
        assert_eq!(ycbcr_to_rgb(76, 85, 255), [254, 0, 0]);
    }

    #[test]
    fn grey_with_alpha_becomes_grey_rgb_and_alpha_is_dropped() {
        let format = PixelFormat::from_tiff(ColorType::GrayA(8)).expect("supported");
        let mut out = Vec::new();
        to_rgb8(
            format,
            &DecodingResult::U8(vec![10, 0, 20, 255]),
            2,
            &mut out,
        )
        .expect("ok");
        assert_eq!(out, [10, 10, 10, 20, 20, 20]);
    }

    #[test]
    fn a_chunk_with_the_wrong_sample_count_is_refused() {
        let format = PixelFormat::from_tiff(ColorType::RGB(8)).expect("supported");
        let mut out = Vec::new();
        let err = to_rgb8(format, &DecodingResult::U8(vec![1, 2, 3, 4]), 2, &mut out);
        assert!(err.is_err());
    }

    #[test]
    fn palette_and_one_bit_pages_are_unsupported_with_a_reason() {
        let palette = PixelFormat::from_tiff(ColorType::Palette(8)).unwrap_err();
        assert!(palette.contains("palette"), "{palette}");
        let bilevel = PixelFormat::from_tiff(ColorType::Gray(1)).unwrap_err();
        assert!(bilevel.contains("1 bits"), "{bilevel}");
    }
}
