//! Errors of the imaging module, and their translation from the decoders' own errors.
//!
//! Messages follow the project voice: lowercase, naming the thing and the limit, with a hint
//! when the fix is known. They do not repeat the file path: the caller that opened the file
//! knows it and adds it as context.

use std::fmt;
use std::io;

use super::{ImageFormat, Rect};

/// What a size limit was applied to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// Level 0 of a tiled image, checked against `Limits::max_pixels`.
    Image,
    /// A PNG, JPEG or stripped TIFF, checked against `Limits::max_flat_pixels`.
    FlatImage,
    /// One `read_region` request, checked against [`super::MAX_REGION_PIXELS`].
    Region,
    /// The smallest level of a tiled image, checked against
    /// [`super::MAX_COARSEST_LEVEL_PIXELS`].
    CoarsestLevel,
}

impl Subject {
    fn hint(self) -> &'static str {
        match self {
            Subject::Image => "; hint: raise the pixel limit if the slide is genuine",
            Subject::FlatImage => {
                "; hint: a png, jpeg or stripped tiff is decoded whole, \
                 convert it to a tiled pyramid tiff"
            }
            Subject::Region => "; hint: read it as several smaller regions",
            Subject::CoarsestLevel => {
                "; hint: the image has no pyramid of smaller levels to show it zoomed out, \
                 convert it to a tiled pyramid tiff"
            }
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Subject::Image => "image",
            Subject::FlatImage => "flat image",
            Subject::Region => "region",
            Subject::CoarsestLevel => "smallest level",
        })
    }
}

/// Why an image could not be opened or a region could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The file has no bytes at all.
    #[error("empty file")]
    Empty,

    /// The first bytes match none of the supported formats.
    #[error(
        "not a recognized image (starts with \"{found}\"); \
         hint: png, jpeg and tiff (including bigtiff and aperio svs) are read"
    )]
    Unrecognized {
        /// The first bytes of the file, non-printable ones escaped.
        found: String,
    },

    /// The header claims more pixels than the limit allows; nothing was allocated.
    #[error("{subject} of {width}x{height} pixels is over the limit of {limit} pixels{}", .subject.hint())]
    TooLarge {
        subject: Subject,
        width: u64,
        height: u64,
        limit: u64,
    },

    /// One tile or strip would decode to more bytes than [`super::MAX_CHUNK_BYTES`] (or, for a
    /// strip of a flat image, the flat image's budget).
    #[error(
        "{kind} of {width}x{height} pixels decodes to {bytes} bytes, over the limit of {limit}"
    )]
    ChunkTooLarge {
        /// "tile" or "strip".
        kind: &'static str,
        width: u32,
        height: u32,
        bytes: u64,
        limit: u64,
    },

    /// The file is damaged or truncated; `reason` is the decoder's or ours.
    #[error("corrupt {format}: {reason}")]
    Corrupt { format: ImageFormat, reason: String },

    /// The file is valid but uses a feature this module does not read.
    #[error("unsupported {what}")]
    Unsupported { what: String },

    /// A decoder refused to allocate past its configured limit.
    #[error("{format} decoder limit exceeded: {detail}")]
    DecoderLimit { format: ImageFormat, detail: String },

    /// The level index is past the last level.
    #[error("no level {level}: the image has {levels} levels, numbered from 0")]
    NoSuchLevel { level: u32, levels: u32 },

    /// The requested region has no pixels.
    #[error("empty region {rect}; hint: width and height must be at least 1")]
    EmptyRegion { rect: Rect },

    /// The requested region does not lie inside the level.
    #[error("region {rect} is outside level {level}, which is {level_width}x{level_height}")]
    OutOfBounds {
        level: u32,
        rect: Rect,
        level_width: u32,
        level_height: u32,
    },

    /// Reading the file failed for a reason other than its content.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl ImagingError {
    pub(super) fn corrupt(format: ImageFormat, reason: impl Into<String>) -> ImagingError {
        ImagingError::Corrupt {
            format,
            reason: reason.into(),
        }
    }

    pub(super) fn unsupported(what: impl Into<String>) -> ImagingError {
        ImagingError::Unsupported { what: what.into() }
    }

    /// Translates an error of the `tiff` crate.
    pub(super) fn from_tiff(err: tiff::TiffError) -> ImagingError {
        use tiff::TiffError;

        match err {
            TiffError::FormatError(e) => ImagingError::corrupt(ImageFormat::Tiff, e.to_string()),
            TiffError::UnsupportedError(e) => ImagingError::unsupported(format!("tiff: {e}")),
            TiffError::IoError(e) => io_error(ImageFormat::Tiff, e),
            TiffError::LimitsExceeded => ImagingError::DecoderLimit {
                format: ImageFormat::Tiff,
                detail: "a tag value or chunk is larger than the decoding buffer".to_owned(),
            },
            TiffError::IntSizeError => {
                ImagingError::corrupt(ImageFormat::Tiff, "a size does not fit this platform")
            }
            TiffError::UsageError(e) => ImagingError::corrupt(ImageFormat::Tiff, e.to_string()),
        }
    }

    /// Translates an error of the `image` crate while decoding `format`.
    pub(super) fn from_image(format: ImageFormat, err: image::ImageError) -> ImagingError {
        use image::ImageError;

        match err {
            ImageError::IoError(e) => io_error(format, e),
            ImageError::Limits(e) => ImagingError::DecoderLimit {
                format,
                detail: e.to_string(),
            },
            ImageError::Unsupported(e) => ImagingError::unsupported(format!("{format}: {e}")),
            ImageError::Decoding(e) => ImagingError::corrupt(format, decoding_reason(&e)),
            other => ImagingError::corrupt(format, other.to_string()),
        }
    }
}

/// The decoder's own words for a decoding error, without the "format error decoding" prefix
/// that repeats the format.
fn decoding_reason(err: &image::error::DecodingError) -> String {
    use std::error::Error as _;

    match err.source() {
        Some(source) => source.to_string(),
        None => err.to_string(),
    }
}

/// An I/O error while decoding is about the image unless the operating system raised it: an
/// end of file means the file is cut short, and decompressors report damaged data as I/O errors
/// of their own making.
fn io_error(format: ImageFormat, err: io::Error) -> ImagingError {
    if err.raw_os_error().is_some() {
        ImagingError::Io(err)
    } else if err.kind() == io::ErrorKind::UnexpectedEof {
        ImagingError::corrupt(
            format,
            format!("{err}; hint: the file is probably truncated"),
        )
    } else {
        ImagingError::corrupt(format, err.to_string())
    }
}
