//! Slide images: opening PNG, JPEG and TIFF files (tiled, BigTIFF, Aperio SVS and generic
//! pyramids) and reading rectangular regions of them as RGB8.
//!
//! A [`Slide`] is opened once, shared across threads behind an `Arc`, and answers
//! [`Slide::read_region`] for any of its levels. Level 0 is the full-resolution image; each
//! further level is smaller:
//!
//! - A pyramid TIFF exposes its native levels: the tiled pages whose aspect ratio matches page 0,
//!   largest first. Stripped pages (the thumbnail, label and macro images of an SVS) are
//!   associated images, not levels, even when their aspect ratio matches.
//! - Below the coarsest native level, virtual levels halve the size (rounding up) until the
//!   longer side is at most [`MIN_LEVEL_SIDE`]; their downsample is 2, 4, 8... times the native
//!   level's. A virtual pixel is the mean of the native pixels it covers (a box filter), so
//!   edge pixels average the part of their block that lies inside the image.
//! - A flat image (PNG, JPEG, or a TIFF whose first page is stripped) is decoded whole at open
//!   and kept as RGB8; all its coarser levels are virtual.
//!
//! Tiled TIFF levels are never decoded whole: a region decodes only the tiles it touches, through
//! a small shared cache of decoded tiles. Every size a file claims is checked against [`Limits`]
//! and the named constants below before anything of that size is allocated, and the decoders
//! get explicit limits of their own, because a header of a few bytes can otherwise ask for
//! gigabytes. At open, every tile and strip of every level must lie inside the file, so a
//! truncated slide fails there rather than halfway through an analysis.
//!
//! Not read (the open fails with [`ImagingError::Unsupported`]): palette, CMYK, Lab, float and
//! 1-bit TIFF pages, planar (band-separate) TIFF pages, old-style JPEG, JPEG 2000, and other
//! compressions the `tiff` crate lacks. Pyramids stored in SubIFDs (OME-TIFF) open with their
//! full-resolution page only, plus virtual levels. Associated images are not exposed, and EXIF
//! orientation of JPEG files is not applied.

mod error;
mod file_at;
mod flat;
mod pixels;
mod resample;
mod tiff_scan;
mod tiff_slide;

#[cfg(test)]
mod test_tiff;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

pub use error::{ImagingError, Subject};

use file_at::FileAt;
use flat::FlatImage;
use tiff_slide::TiffSlide;

/// Default cap on level-0 width × height of a tiled image (10 gigapixels).
///
/// It refuses headers that claim absurd sizes. Tiled levels are read tile by tile, so memory does
/// not grow with this number; what grows is the work behind a coarse virtual level of a slide
/// without a native pyramid, which decodes every tile of level 0. Ten gigapixels covers a 40×
/// scan of a whole slide (about 100,000 × 100,000). Change it per caller with
/// [`Limits::max_pixels`].
pub const DEFAULT_MAX_PIXELS: u64 = 10_000_000_000;

/// Default cap on width × height of a flat image: a PNG, JPEG or stripped TIFF (16384 × 16384).
///
/// Flat images are decoded whole at open and their RGB8 pixels stay in memory while the slide is
/// open (768 MiB at this size); decoding briefly needs up to [`MAX_FLAT_BYTES_PER_PIXEL`] bytes
/// per pixel more. Larger images belong in a tiled pyramid TIFF. Change it per caller with
/// [`Limits::max_flat_pixels`].
pub const MAX_FLAT_PIXELS: u64 = 16384 * 16384;

/// Most pixels of the smallest stored level of a tiled image that [`Slide::check_overview`]
/// accepts. Overviews and low zoom levels are resampled from that level, so a huge image
/// without a pyramid (one level of billions of pixels) can never be shown whole; the server
/// refuses such uploads. Level-0 reads (plugins) work on it, so opening it stays allowed.
pub const MAX_COARSEST_LEVEL_PIXELS: u64 = 16384 * 16384;

/// Most bytes per pixel a flat decoder may allocate (16-bit RGBA), on top of the RGB8 result.
pub const MAX_FLAT_BYTES_PER_PIXEL: u64 = 8;

/// Largest decoded size of one tile (or one strip of a tiled file's level), in bytes: 256 MiB,
/// the `tiff` crate's own default. Real tiles are 256 to 4096 pixels on a side, at most a few
/// tens of MiB; the cap refuses a tile header that would make one decode allocate gigabytes.
pub const MAX_CHUNK_BYTES: u64 = 256 * 1024 * 1024;

/// Most native pixels one [`Slide::read_region`] call may decode to build a region of a virtual
/// level (1 gigapixel, a few seconds of decoding). Without it, one small read of the coarsest
/// virtual level of a huge slide without a native pyramid would decode all of level 0 inside a
/// single call; callers read finer levels region by region instead.
pub const MAX_SOURCE_PIXELS: u64 = 1 << 30;

/// Largest region one [`Slide::read_region`] call returns, in pixels (8192 × 8192, 192 MiB of
/// RGB8). Larger areas are read as several regions.
pub const MAX_REGION_PIXELS: u64 = 8192 * 8192;

/// Virtual levels are added until the longer side of the coarsest one is at most this many
/// pixels, which is enough for a thumbnail or a tissue mask.
pub const MIN_LEVEL_SIDE: u32 = 256;

/// Size limits applied when opening an image.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most level-0 pixels (width × height) of a tiled image.
    pub max_pixels: u64,
    /// Most pixels of a flat image, which is decoded whole.
    pub max_flat_pixels: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_pixels: DEFAULT_MAX_PIXELS,
            max_flat_pixels: MAX_FLAT_PIXELS,
        }
    }
}

/// The container format of an image, recognized from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    Jpeg,
    Tiff,
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Tiff => "tiff",
        })
    }
}

/// One level of the pyramid.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LevelInfo {
    pub width: u32,
    pub height: u32,
    /// Level-0 pixels per pixel of this level along x: level-0 width / width for native levels,
    /// exactly 2, 4, 8... times the native level's for virtual ones.
    pub downsample: f64,
}

/// What is known about an image after opening it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageInfo {
    pub format: ImageFormat,
    /// Level-0 width.
    pub width: u32,
    /// Level-0 height.
    pub height: u32,
    /// All levels, level 0 first, each smaller than the one before.
    pub levels: Vec<LevelInfo>,
    /// Level-0 pixel size: the Aperio `MPP` field, else the TIFF resolution tags when they give
    /// a plausible microscope pixel size; `None` for PNG and JPEG files.
    pub microns_per_pixel: Option<f64>,
}

/// A rectangle in the pixel coordinates of one level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Rect {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// Width × height.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// The RGB8 byte length of this rectangle.
    fn rgb_len(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }
}

impl fmt::Display for Rect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} at ({}, {})",
            self.width, self.height, self.x, self.y
        )
    }
}

/// An open image, safe to share across threads.
pub struct Slide {
    info: ImageInfo,
    plans: Vec<LevelPlan>,
    pixels: Pixels,
}

impl fmt::Debug for Slide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slide")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Where the pixels of a level come from.
#[derive(Clone, Copy, Debug)]
struct LevelPlan {
    /// Index of the native level read.
    native: usize,
    /// Box-filter factor applied to it: 1 for a native level.
    factor: u32,
}

enum Pixels {
    Flat(FlatImage),
    Tiff(TiffSlide),
}

impl Pixels {
    fn read_native(&self, native: usize, rect: Rect) -> Result<Vec<u8>, ImagingError> {
        match self {
            Pixels::Flat(image) => Ok(image.crop(rect)),
            Pixels::Tiff(slide) => slide.read_region(native, rect),
        }
    }
}

/// The decoded contents of a file, before levels are planned.
struct Opened {
    pixels: Pixels,
    /// Width and height of each native level, level 0 first.
    native: Vec<(u32, u32)>,
    microns_per_pixel: Option<f64>,
}

impl Slide {
    /// Opens the image at `path`, recognizing the format from its first bytes (the extension
    /// is ignored). Flat images are decoded here; TIFF levels are checked here and read later.
    /// Errors do not repeat the path; the caller adds it.
    pub fn open(path: &Path, limits: &Limits) -> Result<Slide, ImagingError> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Err(ImagingError::Empty);
        }
        let file = FileAt::new(Arc::new(file), len);

        let mut head = [0u8; 16];
        let head_len = file.read_full_at(0, &mut head)?;
        let format = sniff(&head[..head_len])?;

        let opened = match format {
            ImageFormat::Png | ImageFormat::Jpeg => flat::open(file, format, limits)?,
            ImageFormat::Tiff => tiff_slide::open(file, limits)?,
        };
        let slide = Slide::from_opened(format, opened);
        tracing::debug!(
            path = %path.display(),
            %format,
            width = slide.info.width,
            height = slide.info.height,
            levels = slide.info.levels.len(),
            "opened image"
        );
        Ok(slide)
    }

    fn from_opened(format: ImageFormat, opened: Opened) -> Slide {
        let (levels, plans) = plan_levels(&opened.native);
        let (width, height) = opened.native.first().copied().unwrap_or((0, 0));
        Slide {
            info: ImageInfo {
                format,
                width,
                height,
                levels,
                microns_per_pixel: opened.microns_per_pixel,
            },
            plans,
            pixels: opened.pixels,
        }
    }

    /// Format, size, levels and pixel size of the image.
    pub fn info(&self) -> &ImageInfo {
        &self.info
    }

    /// Refuses a tiled image whose smallest stored level holds more than
    /// [`MAX_COARSEST_LEVEL_PIXELS`]: its thumbnail and low zoom levels cannot be built.
    pub fn check_overview(&self) -> Result<(), ImagingError> {
        if !matches!(self.pixels, Pixels::Tiff(_)) {
            return Ok(());
        }
        let coarsest = self
            .info
            .levels
            .iter()
            .zip(&self.plans)
            .filter(|(_, plan)| plan.factor == 1)
            .map(|(level, _)| (u64::from(level.width), u64::from(level.height)))
            .min_by_key(|&(w, h)| w * h);
        match coarsest {
            Some((width, height)) if width * height > MAX_COARSEST_LEVEL_PIXELS => {
                Err(ImagingError::TooLarge {
                    subject: Subject::CoarsestLevel,
                    width,
                    height,
                    limit: MAX_COARSEST_LEVEL_PIXELS,
                })
            }
            _ => Ok(()),
        }
    }

    /// Bytes of pixels held in memory: the decoded image for PNG and JPEG, nothing for TIFF
    /// (its tiles are read on demand).
    pub fn resident_bytes(&self) -> u64 {
        match self.pixels {
            Pixels::Flat(_) => u64::from(self.info.width) * u64::from(self.info.height) * 3,
            Pixels::Tiff(_) => 0,
        }
    }

    /// Reads `rect`, given in the coordinates of `level`, as RGB8 row-major: width × height × 3
    /// bytes. The rectangle must lie inside the level and hold at most [`MAX_REGION_PIXELS`].
    pub fn read_region(&self, level: u32, rect: Rect) -> Result<Vec<u8>, ImagingError> {
        let (info, plan) = match (
            self.info.levels.get(level as usize),
            self.plans.get(level as usize),
        ) {
            (Some(info), Some(plan)) => (*info, *plan),
            _ => {
                return Err(ImagingError::NoSuchLevel {
                    level,
                    levels: u32::try_from(self.info.levels.len()).unwrap_or(u32::MAX),
                });
            }
        };

        if rect.width == 0 || rect.height == 0 {
            return Err(ImagingError::EmptyRegion { rect });
        }
        let right = u64::from(rect.x) + u64::from(rect.width);
        let bottom = u64::from(rect.y) + u64::from(rect.height);
        if right > u64::from(info.width) || bottom > u64::from(info.height) {
            return Err(ImagingError::OutOfBounds {
                level,
                rect,
                level_width: info.width,
                level_height: info.height,
            });
        }
        if rect.pixels() > MAX_REGION_PIXELS {
            return Err(ImagingError::TooLarge {
                subject: Subject::Region,
                width: u64::from(rect.width),
                height: u64::from(rect.height),
                limit: MAX_REGION_PIXELS,
            });
        }

        // A virtual level decodes `factor²` native pixels per pixel it returns: bound that work
        // too, since it happens inside one call that no deadline interrupts.
        let factor = u64::from(plan.factor);
        let source = rect.pixels().saturating_mul(factor * factor);
        if source > MAX_SOURCE_PIXELS {
            return Err(ImagingError::TooLarge {
                subject: Subject::Region,
                width: u64::from(rect.width) * factor,
                height: u64::from(rect.height) * factor,
                limit: MAX_SOURCE_PIXELS,
            });
        }

        tracing::trace!(level, %rect, factor = plan.factor, "reading region");
        if plan.factor == 1 {
            return self.pixels.read_native(plan.native, rect);
        }
        let native = self.info.levels[plan.native];
        resample::downsample(
            |source| self.pixels.read_native(plan.native, source),
            (native.width, native.height),
            rect,
            plan.factor,
        )
    }
}

/// Lists the levels: the native ones, then virtual ones that halve the coarsest native level
/// until its longer side is at most [`MIN_LEVEL_SIDE`].
fn plan_levels(native: &[(u32, u32)]) -> (Vec<LevelInfo>, Vec<LevelPlan>) {
    let mut levels = Vec::new();
    let mut plans = Vec::new();
    let Some(&(base_width, _)) = native.first() else {
        return (levels, plans);
    };

    for (index, &(width, height)) in native.iter().enumerate() {
        let downsample = if index == 0 {
            1.0
        } else {
            f64::from(base_width) / f64::from(width)
        };
        levels.push(LevelInfo {
            width,
            height,
            downsample,
        });
        plans.push(LevelPlan {
            native: index,
            factor: 1,
        });
    }

    let coarsest = native.len() - 1;
    let (width, height) = native[coarsest];
    let native_downsample = levels[coarsest].downsample;
    let mut factor: u32 = 1;
    while width.div_ceil(factor).max(height.div_ceil(factor)) > MIN_LEVEL_SIDE {
        factor *= 2;
        levels.push(LevelInfo {
            width: width.div_ceil(factor),
            height: height.div_ceil(factor),
            downsample: native_downsample * f64::from(factor),
        });
        plans.push(LevelPlan {
            native: coarsest,
            factor,
        });
    }
    (levels, plans)
}

/// Recognizes the format from the first bytes of a file.
fn sniff(head: &[u8]) -> Result<ImageFormat, ImagingError> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    const JPEG: &[u8] = b"\xff\xd8\xff";
    const TIFF: [&[u8]; 4] = [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"];

    if head.is_empty() {
        return Err(ImagingError::Empty);
    }
    if head.starts_with(PNG) {
        return Ok(ImageFormat::Png);
    }
    if head.starts_with(JPEG) {
        return Ok(ImageFormat::Jpeg);
    }
    if TIFF.iter().any(|magic| head.starts_with(magic)) {
        return Ok(ImageFormat::Tiff);
    }
    Err(ImagingError::Unrecognized {
        found: head.escape_ascii().to_string(),
    })
}
