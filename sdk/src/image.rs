//! Images a plugin reads from, and the RGB buffers regions arrive in.

use crate::Error;
use crate::bindings::tessera::plugin::{data as wit_data, types as wit};

/// A pixel rectangle in the coordinates of one pyramid level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Rect {
    /// A rectangle from its left, top, width and height.
    pub fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// Number of pixels inside.
    pub fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// This rectangle grown by `margin` on every side, clipped to `width` × `height`.
    pub fn expand(&self, margin: u32, width: u32, height: u32) -> Rect {
        let x0 = self.x.saturating_sub(margin);
        let y0 = self.y.saturating_sub(margin);
        let x1 = (self.x + self.width).saturating_add(margin).min(width);
        let y1 = (self.y + self.height).saturating_add(margin).min(height);
        Rect::new(x0, y0, x1 - x0, y1 - y0)
    }

    /// Splits a `width` × `height` plane into tiles of at most `tile` × `tile`, row by row.
    pub fn tiles(width: u32, height: u32, tile: u32) -> Vec<Rect> {
        let tile = tile.max(1);
        let mut out = Vec::new();
        for y in (0..height).step_by(tile as usize) {
            for x in (0..width).step_by(tile as usize) {
                out.push(Rect::new(x, y, tile.min(width - x), tile.min(height - y)));
            }
        }
        out
    }
}

impl From<wit::Rect> for Rect {
    fn from(r: wit::Rect) -> Self {
        Rect::new(r.x, r.y, r.width, r.height)
    }
}

impl From<Rect> for wit::Rect {
    fn from(r: Rect) -> Self {
        wit::Rect {
            x: r.x,
            y: r.y,
            width: r.width,
            height: r.height,
        }
    }
}

/// One resolution of an image; level 0 is full resolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LevelInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Level-0 pixels per pixel of this level.
    pub downsample: f64,
}

/// Size, pyramid and pixel size of an image.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageInfo {
    /// The image id in the store.
    pub id: String,
    /// Level-0 width.
    pub width: u32,
    /// Level-0 height.
    pub height: u32,
    /// Finest first; never empty.
    pub levels: Vec<LevelInfo>,
    /// Physical pixel size at level 0, when known.
    pub microns_per_pixel: Option<f64>,
}

impl ImageInfo {
    /// The finest level with at most `max_pixels` pixels, or the coarsest level.
    pub fn level_within(&self, max_pixels: u64) -> u32 {
        let fits = self
            .levels
            .iter()
            .position(|l| u64::from(l.width) * u64::from(l.height) <= max_pixels);
        fits.unwrap_or(self.levels.len().saturating_sub(1)) as u32
    }

    /// The rectangle of `level` covering `region` (level-0 coordinates), clipped to the level;
    /// the whole level when `region` is `None`.
    pub fn level_rect(&self, level: u32, region: Option<Rect>) -> Rect {
        let Some(l) = self.levels.get(level as usize) else {
            return Rect::new(0, 0, 0, 0);
        };
        let Some(r) = region else {
            return Rect::new(0, 0, l.width, l.height);
        };
        let scale = |v: u32| (f64::from(v) / l.downsample) as u32;
        let x0 = scale(r.x).min(l.width);
        let y0 = scale(r.y).min(l.height);
        let x1 = scale(r.x.saturating_add(r.width)).clamp(x0, l.width);
        let y1 = scale(r.y.saturating_add(r.height)).clamp(y0, l.height);
        Rect::new(x0, y0, x1 - x0, y1 - y0)
    }
}

impl From<wit::ImageInfo> for ImageInfo {
    fn from(i: wit::ImageInfo) -> Self {
        ImageInfo {
            id: i.id,
            width: i.width,
            height: i.height,
            levels: i
                .levels
                .into_iter()
                .map(|l| LevelInfo {
                    width: l.width,
                    height: l.height,
                    downsample: l.downsample,
                })
                .collect(),
            microns_per_pixel: i.microns_per_pixel,
        }
    }
}

/// An 8-bit RGB buffer, row-major, `width * height * 3` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Interleaved R, G, B samples.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// Wraps a buffer, checking its length.
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self, Error> {
        let expected = width as usize * height as usize * 3;
        if data.len() != expected {
            return Err(Error::Internal(format!(
                "region of {width}x{height} should hold {expected} bytes, found {}",
                data.len()
            )));
        }
        Ok(RgbImage {
            width,
            height,
            data,
        })
    }

    /// The RGB value at (`x`, `y`).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Copies the `rect` part of this buffer out.
    pub fn crop(&self, rect: Rect) -> RgbImage {
        let mut data = Vec::with_capacity(rect.area() as usize * 3);
        for row in rect.y..rect.y + rect.height {
            let start = (row as usize * self.width as usize + rect.x as usize) * 3;
            data.extend_from_slice(&self.data[start..start + rect.width as usize * 3]);
        }
        RgbImage {
            width: rect.width,
            height: rect.height,
            data,
        }
    }
}

/// Something regions can be read from: an [`Image`] in a plugin, a [`MemoryImage`] in tests.
///
/// Writing the analysis against this trait lets the same code run inside the sandbox and
/// natively.
pub trait ImageSource {
    /// Size and pyramid of the image.
    fn info(&self) -> ImageInfo;
    /// Reads `rect` (in `level` coordinates) as RGB.
    fn read_region(&self, level: u32, rect: Rect) -> Result<RgbImage, Error>;

    /// Reads a whole level as RGB.
    fn read_level(&self, level: u32) -> Result<RgbImage, Error> {
        let info = self.info();
        let l = info
            .levels
            .get(level as usize)
            .ok_or_else(|| Error::invalid_input(format!("image has no level {level}")))?;
        self.read_region(level, Rect::new(0, 0, l.width, l.height))
    }
}

/// An image in the store, opened through the host. Reads are checked against the plugin's grant.
pub struct Image {
    handle: wit_data::Image,
    info: ImageInfo,
}

impl Image {
    /// Opens the image with the given id.
    pub fn open(id: &str) -> Result<Image, Error> {
        let handle = wit_data::open_image(id)?;
        let info = handle.info().into();
        Ok(Image { handle, info })
    }

    /// Size and pyramid of the image.
    pub fn info(&self) -> &ImageInfo {
        &self.info
    }

    /// The host's handle, for [`crate::gpu::Tensor::read_region`].
    pub(crate) fn handle(&self) -> &wit_data::Image {
        &self.handle
    }

    /// Reads `rect` (in `level` coordinates) as RGB.
    pub fn read_region(&self, level: u32, rect: Rect) -> Result<RgbImage, Error> {
        let data = self.handle.read_region(level, rect.into())?;
        RgbImage::new(rect.width, rect.height, data)
    }

    /// Reads a whole level as RGB.
    pub fn read_level(&self, level: u32) -> Result<RgbImage, Error> {
        ImageSource::read_level(self, level)
    }
}

impl ImageSource for Image {
    fn info(&self) -> ImageInfo {
        self.info.clone()
    }

    fn read_region(&self, level: u32, rect: Rect) -> Result<RgbImage, Error> {
        Image::read_region(self, level, rect)
    }
}

/// A single-level image held in memory, for tests and native runs of plugin code.
pub struct MemoryImage {
    image: RgbImage,
}

impl MemoryImage {
    /// Wraps an RGB buffer as a one-level image.
    pub fn new(image: RgbImage) -> Self {
        MemoryImage { image }
    }
}

impl ImageSource for MemoryImage {
    fn info(&self) -> ImageInfo {
        ImageInfo {
            id: "memory".to_string(),
            width: self.image.width,
            height: self.image.height,
            levels: vec![LevelInfo {
                width: self.image.width,
                height: self.image.height,
                downsample: 1.0,
            }],
            microns_per_pixel: None,
        }
    }

    fn read_region(&self, level: u32, rect: Rect) -> Result<RgbImage, Error> {
        let inside = rect
            .x
            .checked_add(rect.width)
            .is_some_and(|r| r <= self.image.width)
            && rect
                .y
                .checked_add(rect.height)
                .is_some_and(|b| b <= self.image.height);
        if level != 0 || !inside {
            return Err(Error::invalid_input(format!(
                "region {rect:?} at level {level} is outside the {}x{} image",
                self.image.width, self.image.height
            )));
        }
        Ok(self.image.crop(rect))
    }
}

/// Copies the `window` of a `src_width`-wide plane into a `dst_width`-wide plane with its top
/// left corner at `at`: how tiles computed with a margin are assembled into one plane.
pub fn paste<T: Copy>(
    dst: &mut [T],
    dst_width: usize,
    at: (usize, usize),
    src: &[T],
    src_width: usize,
    window: Rect,
) {
    let (wx, wy, ww) = (window.x as usize, window.y as usize, window.width as usize);
    for row in 0..window.height as usize {
        let s = (wy + row) * src_width + wx;
        let d = (at.1 + row) * dst_width + at.0;
        dst[d..d + ww].copy_from_slice(&src[s..s + ww]);
    }
}
