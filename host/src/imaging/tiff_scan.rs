//! Reading the page directory of a TIFF at open: what each page is, which pages form the
//! pyramid, the pixel size, and whether every tile or strip lies inside the file.

use std::io::{Read, Seek};

use tiff::decoder::{ChunkType, Decoder};
use tiff::tags::Tag;

use super::pixels::PixelFormat;
use super::{ImageFormat, ImagingError, MAX_CHUNK_BYTES};

/// Most pages (IFDs) read from one TIFF. Slides have a handful (levels plus thumbnail, label and
/// macro); the cap bounds the time spent on a file whose IFD chain is long or crafted.
pub(super) const MAX_TIFF_PAGES: usize = 1024;

/// Most tile or strip entries kept over all pages of one TIFF (16 bytes each in memory). Pages
/// may share one offset table, so a few megabytes of file could otherwise claim gigabytes of
/// tables; 4 million tiles cover a 500,000 × 500,000 level of 256-pixel tiles.
pub(super) const MAX_TIFF_CHUNKS_TOTAL: usize = 4 << 20;

/// Two levels count as having the same aspect ratio when the height predicted from the width
/// ratio (or the width from the height ratio) is off by at most this many pixels, or by
/// [`ASPECT_TOLERANCE_FRACTION`] of the size if that is more. Writers round level sizes up or
/// down, so a level may be a pixel off the exact ratio.
const ASPECT_TOLERANCE_PIXELS: f64 = 2.0;

/// Relative slack of the aspect-ratio test for large levels; see [`ASPECT_TOLERANCE_PIXELS`].
const ASPECT_TOLERANCE_FRACTION: f64 = 0.01;

/// Largest pixel size taken from the TIFF resolution tags, in microns. Image libraries write 72
/// or 96 dpi (353 or 265 microns) when nothing was measured; microscope pixels are a fraction of
/// a micron to a few microns, and even a flatbed scan of a whole slide is tens of microns.
/// Larger values are reported as unknown.
const MAX_RESOLUTION_MICRONS: f64 = 100.0;

/// `NewSubfileType` bit marking a transparency mask page.
const SUBFILE_MASK: u32 = 4;

/// Compression codes the `tiff` crate decodes with the features this crate enables.
const SUPPORTED_COMPRESSIONS: [u16; 6] = [1, 5, 7, 8, 32773, 32946];

/// What the scan learned about one page.
#[derive(Debug)]
pub(super) struct Page {
    /// Position in the IFD chain, as `Decoder::seek_to_image` counts.
    pub index: usize,
    pub width: u32,
    pub height: u32,
    pub tiled: bool,
    /// Tile size, or (width, rows per strip) for a stripped page.
    pub chunk_width: u32,
    pub chunk_height: u32,
    pub subfile_type: u32,
    /// The decoded pixel format, or in words why this page cannot be read.
    pub format: Result<PixelFormat, String>,
    pub jpeg: bool,
    pub offsets: Vec<u64>,
    pub byte_counts: Vec<u64>,
}

impl Page {
    /// Reads the current page of `decoder`.
    pub fn read<R: Read + Seek>(
        decoder: &mut Decoder<R>,
        index: usize,
    ) -> Result<Page, ImagingError> {
        let fail = ImagingError::from_tiff;
        let (width, height) = decoder.dimensions().map_err(fail)?;
        let tiled = decoder.get_chunk_type() == ChunkType::Tile;
        let (chunk_width, chunk_height) = decoder.chunk_dimensions();
        let (offsets_tag, counts_tag) = if tiled {
            (Tag::TileOffsets, Tag::TileByteCounts)
        } else {
            (Tag::StripOffsets, Tag::StripByteCounts)
        };
        let offsets = decoder
            .find_tag_unsigned_vec::<u64>(offsets_tag)
            .map_err(fail)?
            .unwrap_or_default();
        let byte_counts = decoder
            .find_tag_unsigned_vec::<u64>(counts_tag)
            .map_err(fail)?
            .unwrap_or_default();
        let subfile_type = decoder
            .find_tag_unsigned::<u32>(Tag::NewSubfileType)
            .map_err(fail)?
            .unwrap_or(0);
        let compression = decoder
            .find_tag_unsigned::<u16>(Tag::Compression)
            .map_err(fail)?
            .unwrap_or(1);

        let format = pixel_format(decoder, compression);
        Ok(Page {
            index,
            width,
            height,
            tiled,
            chunk_width,
            chunk_height,
            subfile_type,
            format,
            jpeg: compression == 7,
            offsets,
            byte_counts,
        })
    }

    /// The pixel format, or an unsupported-format error naming this page.
    pub fn require_format(&self) -> Result<PixelFormat, ImagingError> {
        self.format
            .clone()
            .map_err(|what| ImagingError::unsupported(format!("{what} (page {})", self.index)))
    }

    /// Checks that one decoded tile or strip stays within `limit` bytes.
    pub fn check_chunk_size(&self, format: PixelFormat, limit: u64) -> Result<(), ImagingError> {
        // Checked: a crafted header can make the product overflow u64, which must read as
        // "too large", never wrap to a small number.
        let bytes = u64::from(self.chunk_width)
            .checked_mul(u64::from(self.chunk_height.min(self.height)))
            .and_then(|b| b.checked_mul(format.bytes_per_pixel()))
            .unwrap_or(u64::MAX);
        if bytes > limit {
            return Err(ImagingError::ChunkTooLarge {
                kind: if self.tiled { "tile" } else { "strip" },
                width: self.chunk_width,
                height: self.chunk_height,
                bytes,
                limit,
            });
        }
        Ok(())
    }

    /// Checks that every tile or strip lies inside a file of `file_len` bytes.
    pub fn check_chunks_inside(&self, file_len: u64) -> Result<(), ImagingError> {
        let kind = if self.tiled { "tile" } else { "strip" };
        if self.offsets.len() != self.byte_counts.len() {
            return Err(ImagingError::corrupt(
                ImageFormat::Tiff,
                format!(
                    "page {} has {} {kind} offsets but {} byte counts",
                    self.index,
                    self.offsets.len(),
                    self.byte_counts.len()
                ),
            ));
        }
        for (chunk, (&offset, &count)) in self.offsets.iter().zip(&self.byte_counts).enumerate() {
            let end = offset.checked_add(count);
            if count > 0 && end.is_none_or(|end| end > file_len) {
                return Err(ImagingError::corrupt(
                    ImageFormat::Tiff,
                    format!(
                        "{kind} {chunk} of page {} lies at bytes {offset}..+{count}, past the end \
                         of the file ({file_len} bytes); hint: the file is probably truncated",
                        self.index
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Works out the decoded pixel format of the current page, or says why it cannot be read.
fn pixel_format<R: Read + Seek>(
    decoder: &mut Decoder<R>,
    compression: u16,
) -> Result<PixelFormat, String> {
    if !SUPPORTED_COMPRESSIONS.contains(&compression) {
        return Err(format!(
            "tiff compression {compression}{}",
            compression_name(compression)
        ));
    }
    let planar = decoder
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .ok()
        .flatten()
        .unwrap_or(1);
    if planar != 1 {
        return Err("planar (band-separate) tiff; hint: rewrite it with contiguous samples".into());
    }
    let sample_formats = decoder
        .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)
        .ok()
        .flatten()
        .unwrap_or_default();
    if sample_formats.iter().any(|&f| f != 1) {
        return Err(format!(
            "tiff sample format {sample_formats:?}; hint: only unsigned integer samples are read"
        ));
    }
    let colour = decoder
        .colortype()
        .map_err(|e| format!("tiff colour: {e}"))?;
    PixelFormat::from_tiff(colour)
}

/// A reader's name for compression codes that come up in slides.
fn compression_name(code: u16) -> &'static str {
    match code {
        6 => " (old-style jpeg)",
        33003 | 33005 => " (aperio jpeg 2000); hint: convert the slide to jpeg-compressed tiles",
        34712 => " (jpeg 2000); hint: convert the slide to jpeg-compressed tiles",
        50000 => " (zstd)",
        50001 => " (webp)",
        50002 => " (jpeg xl)",
        _ => "",
    }
}

/// Picks the pyramid: page 0, then the other readable tiled pages with its aspect ratio,
/// largest first, each strictly smaller than the one before. Returns positions in `pages`.
pub(super) fn pyramid(pages: &[Page]) -> Vec<usize> {
    let Some(base) = pages.first() else {
        return Vec::new();
    };
    let mut candidates: Vec<usize> = (1..pages.len())
        .filter(|&i| {
            let page = &pages[i];
            let is_level = page.tiled
                && page.subfile_type & SUBFILE_MASK == 0
                && page.width < base.width
                && page.height < base.height
                && same_aspect(base, page);
            if is_level && let Err(why) = &page.format {
                tracing::debug!(page = page.index, reason = %why, "skipping unreadable level");
                return false;
            }
            is_level
        })
        .collect();
    candidates.sort_by_key(|&i| std::cmp::Reverse((pages[i].width, pages[i].height)));

    let mut levels = vec![0];
    for i in candidates {
        let last = &pages[levels[levels.len() - 1]];
        if pages[i].width < last.width && pages[i].height < last.height {
            levels.push(i);
        }
    }
    levels
}

fn same_aspect(base: &Page, page: &Page) -> bool {
    let (bw, bh) = (f64::from(base.width), f64::from(base.height));
    let (w, h) = (f64::from(page.width), f64::from(page.height));
    let close = |found: f64, expected: f64| {
        (found - expected).abs()
            <= ASPECT_TOLERANCE_PIXELS.max(expected * ASPECT_TOLERANCE_FRACTION)
    };
    close(h, bh * w / bw) || close(w, bw * h / bh)
}

/// The level-0 pixel size in microns: the `MPP` field of an Aperio description, else the
/// resolution tags of page 0 when their unit is inch or centimetre and the size is plausible
/// (see [`MAX_RESOLUTION_MICRONS`]).
pub(super) fn microns_per_pixel<R: Read + Seek>(decoder: &mut Decoder<R>) -> Option<f64> {
    let description = decoder
        .find_tag(Tag::ImageDescription)
        .ok()
        .flatten()
        .and_then(|value| value.into_string().ok());
    if let Some(mpp) = description.as_deref().and_then(aperio_mpp) {
        return Some(mpp);
    }

    let unit = decoder
        .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
        .ok()
        .flatten()?;
    let resolution = match decoder.find_tag(Tag::XResolution).ok().flatten()? {
        tiff::decoder::ifd::Value::Rational(n, d) if d != 0 => f64::from(n) / f64::from(d),
        _ => return None,
    };
    let microns_per_unit = match unit {
        2 => 25_400.0,
        3 => 10_000.0,
        _ => return None,
    };
    positive(microns_per_unit / resolution).filter(|&mpp| mpp <= MAX_RESOLUTION_MICRONS)
}

/// Parses `MPP = 0.4990` out of an Aperio `ImageDescription` (fields separated by `|`).
pub(super) fn aperio_mpp(description: &str) -> Option<f64> {
    if !description.starts_with("Aperio") {
        return None;
    }
    description.split('|').find_map(|field| {
        let (key, value) = field.split_once('=')?;
        if key.trim() != "MPP" {
            return None;
        }
        positive(value.trim().parse().ok()?)
    })
}

fn positive(value: f64) -> Option<f64> {
    (value.is_finite() && value > 0.0).then_some(value)
}

/// Checks a tiled page's tile size against [`MAX_CHUNK_BYTES`] and its tiles against the file
/// length; returns its pixel format.
pub(super) fn check_level(page: &Page, file_len: u64) -> Result<PixelFormat, ImagingError> {
    let format = page.require_format()?;
    page.check_chunk_size(format, MAX_CHUNK_BYTES)?;
    page.check_chunks_inside(file_len)?;
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(index: usize, width: u32, height: u32, tiled: bool) -> Page {
        Page {
            index,
            width,
            height,
            tiled,
            chunk_width: 256,
            chunk_height: 256,
            subfile_type: 0,
            format: PixelFormat::from_tiff(tiff::ColorType::RGB(8)),
            jpeg: false,
            offsets: Vec::new(),
            byte_counts: Vec::new(),
        }
    }

    #[test]
    fn aperio_mpp_is_read_from_the_description() {
        let description = "Aperio Image Library v10.0.50\r\n2220x2967 [0,100 46000x32914] \
                           (240x240) JPEG/RGB Q=30|AppMag = 20|MPP = 0.4990|Left = 25.691574";
        assert_eq!(aperio_mpp(description), Some(0.499));
        assert_eq!(aperio_mpp("Aperio|MPP = nonsense"), None);
        assert_eq!(aperio_mpp("Aperio|MPP = -1"), None);
        assert_eq!(aperio_mpp("ImageJ=1.52|MPP = 0.25"), None);
    }

    #[test]
    fn svs_thumbnail_with_the_same_aspect_is_not_a_level_because_it_is_stripped() {
        let pages = [
            page(0, 46000, 32914, true),
            page(1, 1024, 732, false),
            page(2, 11500, 8228, true),
            page(3, 2875, 2057, true),
            page(4, 387, 463, false),
        ];
        assert_eq!(pyramid(&pages), [0, 2, 3]);
    }

    #[test]
    fn pyramid_levels_are_sorted_and_other_shapes_and_masks_are_left_out() {
        let mut mask = page(4, 150, 125, true);
        mask.subfile_type = SUBFILE_MASK;
        let pages = [
            page(0, 300, 250, true),
            page(1, 37, 31, true),
            page(2, 150, 125, true),
            page(3, 100, 20, true),
            mask,
            page(5, 75, 62, true),
            page(6, 75, 62, true),
        ];
        assert_eq!(pyramid(&pages), [0, 2, 5, 1]);
    }

    #[test]
    fn a_tile_past_the_end_of_the_file_is_reported_with_its_position() {
        let mut level = page(0, 512, 512, true);
        level.offsets = vec![100, 200, 300, 400];
        level.byte_counts = vec![100, 100, 100, 150];
        assert!(level.check_chunks_inside(550).is_ok());
        let message = level.check_chunks_inside(500).unwrap_err().to_string();
        assert!(message.contains("tile 3 of page 0"), "{message}");
        assert!(message.contains("truncated"), "{message}");
    }
}
