//! Flat images: PNG and JPEG files, decoded whole with the `image` crate and kept as RGB8.
//!
//! A stripped TIFF is flat too, but it is decoded strip by strip in `tiff_slide`, which then
//! hands its pixels to [`FlatImage`]. Grey, grey-alpha, RGBA and 16-bit images become RGB8:
//! grey is replicated, alpha is dropped (not composited) and 16-bit samples are rounded.

use std::io::BufReader;

use image::ImageDecoder;
use image::codecs::jpeg::JpegDecoder;
use image::codecs::png::PngDecoder;

use super::{
    FileAt, ImageFormat, ImagingError, Limits, MAX_FLAT_BYTES_PER_PIXEL, Opened, Pixels, Rect,
    Subject,
};

/// A whole image in memory, RGB8 row-major.
pub(super) struct FlatImage {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl FlatImage {
    /// Wraps decoded pixels; `rgb` must hold width × height × 3 bytes.
    pub fn new(width: u32, height: u32, rgb: Vec<u8>) -> Result<FlatImage, String> {
        let expected = width as usize * height as usize * 3;
        if rgb.len() != expected {
            return Err(format!(
                "decoded {} bytes for {width}x{height} pixels, expected {expected}",
                rgb.len()
            ));
        }
        Ok(FlatImage { width, height, rgb })
    }

    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Copies `rect`, which the caller has checked lies inside the image.
    pub fn crop(&self, rect: Rect) -> Vec<u8> {
        let stride = self.width as usize * 3;
        let row_len = rect.width as usize * 3;
        let mut out = Vec::with_capacity(rect.rgb_len());
        for y in rect.y..rect.y + rect.height {
            let start = y as usize * stride + rect.x as usize * 3;
            out.extend_from_slice(&self.rgb[start..start + row_len]);
        }
        out
    }
}

/// Checks width × height of a flat image against the limit, before anything is decoded.
pub(super) fn check_flat_size(
    width: u32,
    height: u32,
    limits: &Limits,
) -> Result<(), ImagingError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_flat_pixels {
        return Err(ImagingError::TooLarge {
            subject: Subject::FlatImage,
            width: u64::from(width),
            height: u64::from(height),
            limit: limits.max_flat_pixels,
        });
    }
    Ok(())
}

/// Decodes a PNG or JPEG file.
pub(super) fn open(
    file: FileAt,
    format: ImageFormat,
    limits: &Limits,
) -> Result<Opened, ImagingError> {
    let reader = BufReader::new(file);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(
        limits
            .max_flat_pixels
            .saturating_mul(MAX_FLAT_BYTES_PER_PIXEL),
    );
    let fail = |e| ImagingError::from_image(format, e);

    let image = match format {
        ImageFormat::Png => {
            let decoder = PngDecoder::with_limits(reader, decoder_limits).map_err(fail)?;
            decode(decoder, format, limits)?
        }
        ImageFormat::Jpeg => {
            let mut decoder = JpegDecoder::new(reader).map_err(fail)?;
            let (width, height) = decoder.dimensions();
            check_flat_size(width, height, limits)?;
            decoder.set_limits(decoder_limits).map_err(fail)?;
            decode(decoder, format, limits)?
        }
        ImageFormat::Tiff => {
            return Err(ImagingError::unsupported(
                "tiff through the flat decoder; it is read by the tiff module",
            ));
        }
    };

    let native = vec![image.dimensions()];
    Ok(Opened {
        pixels: Pixels::Flat(image),
        native,
        microns_per_pixel: None,
    })
}

fn decode(
    decoder: impl ImageDecoder,
    format: ImageFormat,
    limits: &Limits,
) -> Result<FlatImage, ImagingError> {
    let (width, height) = decoder.dimensions();
    check_flat_size(width, height, limits)?;

    let image = image::DynamicImage::from_decoder(decoder)
        .map_err(|e| ImagingError::from_image(format, e))?;
    let rgb = image.into_rgb8().into_raw();
    FlatImage::new(width, height, rgb).map_err(|reason| ImagingError::corrupt(format, reason))
}
