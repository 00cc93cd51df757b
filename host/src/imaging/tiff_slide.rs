//! TIFF files read with the `tiff` crate: tiled pyramids (SVS, generic, BigTIFF) read tile by
//! tile, and stripped TIFFs decoded strip by strip into a flat image.
//!
//! A [`TiffSlide`] holds one file handle and a small pool of decoders over it, each with its own
//! read position, so regions can be read on several threads at once. Decoded tiles are kept in
//! a cache bounded by [`TILE_CACHE_BYTES`], which makes neighbouring regions that share edge
//! tiles decode them once.

use std::collections::HashMap;
use std::io::BufReader;
use std::sync::{Arc, Mutex, PoisonError};

use tiff::decoder::Decoder;

use super::file_at::FileAt;
use super::flat::{FlatImage, check_flat_size};
use super::pixels::{self, PixelFormat};
use super::tiff_scan::{self, MAX_TIFF_CHUNKS_TOTAL, MAX_TIFF_PAGES, Page};
use super::{
    ImageFormat, ImagingError, Limits, MAX_CHUNK_BYTES, MAX_FLAT_BYTES_PER_PIXEL, Opened, Pixels,
    Rect, Subject,
};

/// Bytes of decoded RGB8 tiles kept per slide (64 MiB: about 1000 tiles of 256 × 256).
const TILE_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Idle decoders kept per slide. More threads than this may read at once; the extra decoders
/// are dropped after use and re-created (which re-reads page 0's directory) when needed.
const MAX_IDLE_DECODERS: usize = 8;

/// Most JPEG marker segments skipped while looking for a tile's frame header.
const MAX_JPEG_HEADER_SEGMENTS: usize = 64;

/// JPEG frames are coded in blocks of up to 16 pixels, so a tile's frame may be padded up to
/// the next multiple of this.
const JPEG_BLOCK: u32 = 16;

type TiffDecoder = Decoder<BufReader<FileAt>>;

/// Opens a TIFF: a tiled page 0 gives a [`TiffSlide`], a stripped one a flat image.
pub(super) fn open(file: FileAt, limits: &Limits) -> Result<Opened, ImagingError> {
    let mut decoder = new_decoder(&file, MAX_CHUNK_BYTES)?;
    let first = Page::read(&mut decoder, 0)?;
    let microns_per_pixel = tiff_scan::microns_per_pixel(&mut decoder);

    if !first.tiled {
        let image = decode_stripped(decoder, &first, &file, limits)?;
        return Ok(Opened {
            native: vec![image.dimensions()],
            pixels: Pixels::Flat(image),
            microns_per_pixel,
        });
    }

    let pixels = u64::from(first.width) * u64::from(first.height);
    if pixels > limits.max_pixels {
        return Err(ImagingError::TooLarge {
            subject: Subject::Image,
            width: u64::from(first.width),
            height: u64::from(first.height),
            limit: limits.max_pixels,
        });
    }

    let mut chunks = first.offsets.len();
    let mut pages = vec![first];
    let mut index = 0;
    while decoder.more_images() && pages.len() < MAX_TIFF_PAGES {
        index += 1;
        let page = decoder
            .next_image()
            .map_err(ImagingError::from_tiff)
            .and_then(|()| Page::read(&mut decoder, index));
        match page {
            Ok(page) => {
                chunks = chunks.saturating_add(page.offsets.len());
                if chunks > MAX_TIFF_CHUNKS_TOTAL {
                    return Err(ImagingError::Corrupt {
                        format: ImageFormat::Tiff,
                        reason: format!(
                            "its pages declare more than {MAX_TIFF_CHUNKS_TOTAL} tiles or strips \
                             in all (page {index})"
                        ),
                    });
                }
                pages.push(page)
            }
            Err(e) => tracing::debug!(page = index, error = %e, "skipping unreadable tiff page"),
        }
    }
    let current_page = pages.last().map_or(0, |page| page.index);

    let mut levels = Vec::new();
    for position in tiff_scan::pyramid(&pages) {
        let page = &pages[position];
        let format = tiff_scan::check_level(page, file.len())?;
        levels.push(Level::new(page, format));
    }

    let native = levels.iter().map(|l| (l.width, l.height)).collect();
    let slide = TiffSlide {
        file,
        levels,
        decoders: Mutex::new(vec![Pooled {
            decoder,
            page: Some(current_page),
        }]),
        cache: Mutex::new(TileCache::default()),
    };
    Ok(Opened {
        pixels: Pixels::Tiff(slide),
        native,
        microns_per_pixel,
    })
}

/// A decoder over `file` whose tiles, strips and tag values may each take `buffer_limit` bytes.
fn new_decoder(file: &FileAt, buffer_limit: u64) -> Result<TiffDecoder, ImagingError> {
    let mut limits = tiff::decoder::Limits::default();
    let buffer_limit = usize::try_from(buffer_limit).unwrap_or(usize::MAX);
    limits.decoding_buffer_size = buffer_limit;
    limits.intermediate_buffer_size = buffer_limit;
    let decoder = Decoder::new(BufReader::new(file.clone())).map_err(ImagingError::from_tiff)?;
    Ok(decoder.with_limits(limits))
}

/// Decodes a stripped page 0 whole, one strip at a time, into RGB8.
fn decode_stripped(
    decoder: TiffDecoder,
    page: &Page,
    file: &FileAt,
    limits: &Limits,
) -> Result<FlatImage, ImagingError> {
    check_flat_size(page.width, page.height, limits)?;
    let format = page.require_format()?;
    let budget = limits
        .max_flat_pixels
        .saturating_mul(MAX_FLAT_BYTES_PER_PIXEL)
        .max(MAX_CHUNK_BYTES);
    page.check_chunk_size(format, budget)?;
    page.check_chunks_inside(file.len())?;

    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    let mut limits = tiff::decoder::Limits::default();
    limits.decoding_buffer_size = budget;
    limits.intermediate_buffer_size = budget;
    let mut decoder = decoder.with_limits(limits);

    let rows_per_strip = page.chunk_height.max(1);
    let mut rgb = Vec::with_capacity(page.width as usize * page.height as usize * 3);
    for (strip, &byte_count) in page.byte_counts.iter().enumerate() {
        let first_row = u64::try_from(strip).unwrap_or(u64::MAX) * u64::from(rows_per_strip);
        let rows = u64::from(page.height).saturating_sub(first_row);
        let rows = rows.min(u64::from(rows_per_strip)) as usize;
        let pixels = page.width as usize * rows;
        if byte_count == 0 {
            rgb.resize(rgb.len() + pixels * 3, BLANK);
            continue;
        }
        let index = u32::try_from(strip).map_err(|_| too_many_chunks(page))?;
        if page.jpeg {
            let chunk = Chunk {
                kind: "strip",
                index: u64::from(index),
                page: page.index,
                offset: page.offsets.get(strip).copied().unwrap_or(0),
                byte_count,
            };
            check_jpeg_frame(file, &chunk, page.width, rows_per_strip.min(page.height))?;
        }
        let decoded = decoder.read_chunk(index).map_err(ImagingError::from_tiff)?;
        pixels::to_rgb8(format, &decoded, pixels, &mut rgb).map_err(|reason| {
            ImagingError::corrupt(ImageFormat::Tiff, format!("strip {strip}: {reason}"))
        })?;
    }

    FlatImage::new(page.width, page.height, rgb)
        .map_err(|reason| ImagingError::corrupt(ImageFormat::Tiff, reason))
}

fn too_many_chunks(page: &Page) -> ImagingError {
    ImagingError::corrupt(
        ImageFormat::Tiff,
        format!("page {} has more chunks than fit in 32 bits", page.index),
    )
}

/// The value of pixels in tiles the file leaves out (byte count 0): white, like bare glass.
const BLANK: u8 = 255;

/// A tiled TIFF whose levels are read tile by tile.
pub(super) struct TiffSlide {
    file: FileAt,
    levels: Vec<Level>,
    decoders: Mutex<Vec<Pooled>>,
    cache: Mutex<TileCache>,
}

/// One native level: a tiled page.
struct Level {
    page: usize,
    width: u32,
    height: u32,
    tile_width: u32,
    tile_height: u32,
    tiles_across: u32,
    format: PixelFormat,
    jpeg: bool,
    offsets: Vec<u64>,
    byte_counts: Vec<u64>,
}

impl Level {
    fn new(page: &Page, format: PixelFormat) -> Level {
        Level {
            page: page.index,
            width: page.width,
            height: page.height,
            tile_width: page.chunk_width.max(1),
            tile_height: page.chunk_height.max(1),
            tiles_across: page.width.div_ceil(page.chunk_width.max(1)),
            format,
            jpeg: page.jpeg,
            offsets: page.offsets.clone(),
            byte_counts: page.byte_counts.clone(),
        }
    }
}

/// A decoder with the page it last loaded (`None` when unknown after a failed seek).
struct Pooled {
    decoder: TiffDecoder,
    page: Option<usize>,
}

/// One decoded tile: RGB8, `width` × `height` (edge tiles are cropped to the level).
struct Tile {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl TiffSlide {
    /// Reads `rect` of native level `level`, which must lie inside it.
    pub fn read_region(&self, level: usize, rect: Rect) -> Result<Vec<u8>, ImagingError> {
        let level_index = u32::try_from(level).unwrap_or(u32::MAX);
        let info = self.levels.get(level).ok_or(ImagingError::NoSuchLevel {
            level: level_index,
            levels: u32::try_from(self.levels.len()).unwrap_or(u32::MAX),
        })?;
        let inside = |start: u32, size: u32, limit: u32| {
            size > 0 && start.checked_add(size).is_some_and(|end| end <= limit)
        };
        if !inside(rect.x, rect.width, info.width) || !inside(rect.y, rect.height, info.height) {
            return Err(ImagingError::OutOfBounds {
                level: level_index,
                rect,
                level_width: info.width,
                level_height: info.height,
            });
        }

        let mut out = vec![0u8; rect.rgb_len()];
        let out_stride = rect.width as usize * 3;
        let (right, bottom) = (rect.x + rect.width - 1, rect.y + rect.height - 1);
        for ty in rect.y / info.tile_height..=bottom / info.tile_height {
            for tx in rect.x / info.tile_width..=right / info.tile_width {
                let tile = self.tile(level, info, tx, ty)?;
                let (tile_x, tile_y) = (tx * info.tile_width, ty * info.tile_height);

                // The part of the tile inside the rectangle, in level coordinates.
                let x0 = rect.x.max(tile_x);
                let x1 = (right + 1).min(tile_x + tile.width);
                let y0 = rect.y.max(tile_y);
                let y1 = (bottom + 1).min(tile_y + tile.height);
                let row_len = x1.saturating_sub(x0) as usize * 3;
                let tile_stride = tile.width as usize * 3;

                for y in y0..y1 {
                    let from = (y - tile_y) as usize * tile_stride + (x0 - tile_x) as usize * 3;
                    let to = (y - rect.y) as usize * out_stride + (x0 - rect.x) as usize * 3;
                    out[to..to + row_len].copy_from_slice(&tile.rgb[from..from + row_len]);
                }
            }
        }
        Ok(out)
    }

    /// The decoded tile at column `tx`, row `ty` of `level`, from the cache or the file.
    fn tile(
        &self,
        level: usize,
        info: &Level,
        tx: u32,
        ty: u32,
    ) -> Result<Arc<Tile>, ImagingError> {
        let index = u64::from(ty) * u64::from(info.tiles_across) + u64::from(tx);
        let key = (level, index);
        if let Some(tile) = self.lock_cache().get(key) {
            return Ok(tile);
        }

        let (offset, byte_count) = match (
            info.offsets.get(index as usize),
            info.byte_counts.get(index as usize),
        ) {
            (Some(&offset), Some(&count)) => (offset, count),
            _ => {
                return Err(ImagingError::corrupt(
                    ImageFormat::Tiff,
                    format!(
                        "tile {index} of page {} is missing from the tile offsets ({} listed)",
                        info.page,
                        info.offsets.len()
                    ),
                ));
            }
        };
        let width = info.tile_width.min(info.width - tx * info.tile_width);
        let height = info.tile_height.min(info.height - ty * info.tile_height);
        let pixels = width as usize * height as usize;

        let rgb = if byte_count == 0 {
            vec![BLANK; pixels * 3]
        } else {
            if info.jpeg {
                let chunk = Chunk {
                    kind: "tile",
                    index,
                    page: info.page,
                    offset,
                    byte_count,
                };
                check_jpeg_frame(&self.file, &chunk, info.tile_width, info.tile_height)?;
            }
            let chunk = u32::try_from(index).map_err(|_| {
                ImagingError::corrupt(ImageFormat::Tiff, "tile index does not fit in 32 bits")
            })?;
            let decoded = self.with_decoder(info.page, |d| d.read_chunk(chunk))?;
            pixels::into_rgb8(info.format, decoded, pixels).map_err(|reason| {
                ImagingError::corrupt(
                    ImageFormat::Tiff,
                    format!("tile {index} of page {}: {reason}", info.page),
                )
            })?
        };

        let tile = Arc::new(Tile { width, height, rgb });
        self.lock_cache().insert(key, Arc::clone(&tile));
        Ok(tile)
    }

    /// Runs `read` on a decoder positioned at `page`, taken from the pool or newly made.
    fn with_decoder<T>(
        &self,
        page: usize,
        read: impl FnOnce(&mut TiffDecoder) -> tiff::TiffResult<T>,
    ) -> Result<T, ImagingError> {
        let idle = self
            .decoders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut pooled = match idle {
            Some(pooled) => pooled,
            None => Pooled {
                decoder: new_decoder(&self.file, MAX_CHUNK_BYTES)?,
                page: Some(0),
            },
        };

        let result = if pooled.page == Some(page) {
            read(&mut pooled.decoder)
        } else {
            pooled.page = None;
            pooled.decoder.seek_to_image(page).and_then(|()| {
                pooled.page = Some(page);
                read(&mut pooled.decoder)
            })
        };

        let mut idle = self.decoders.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_DECODERS {
            idle.push(pooled);
        }
        result.map_err(ImagingError::from_tiff)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, TileCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where one tile or strip lies, for messages and header checks.
struct Chunk {
    kind: &'static str,
    index: u64,
    page: usize,
    offset: u64,
    byte_count: u64,
}

/// Refuses a JPEG tile or strip whose frame header claims more pixels than the chunk holds,
/// before the JPEG decoder allocates for it.
fn check_jpeg_frame(
    file: &FileAt,
    chunk: &Chunk,
    chunk_width: u32,
    chunk_height: u32,
) -> Result<(), ImagingError> {
    let frame = jpeg_frame_size(file, chunk.offset, chunk.byte_count)?;
    let max_width = chunk_width.saturating_add(JPEG_BLOCK - 1) / JPEG_BLOCK * JPEG_BLOCK;
    let max_height = chunk_height.saturating_add(JPEG_BLOCK - 1) / JPEG_BLOCK * JPEG_BLOCK;
    let Chunk {
        kind, index, page, ..
    } = chunk;
    match frame {
        Some((width, height)) if width <= max_width && height <= max_height => Ok(()),
        Some((width, height)) => Err(ImagingError::corrupt(
            ImageFormat::Tiff,
            format!(
                "jpeg {kind} {index} of page {page} claims {width}x{height} pixels, \
                 but the {kind} is {chunk_width}x{chunk_height}"
            ),
        )),
        None => Err(ImagingError::corrupt(
            ImageFormat::Tiff,
            format!("jpeg {kind} {index} of page {page} has no frame header before its scan"),
        )),
    }
}

/// Finds the frame size (SOFn marker) of a JPEG stream at `offset`, reading only its headers.
fn jpeg_frame_size(
    file: &FileAt,
    offset: u64,
    byte_count: u64,
) -> Result<Option<(u32, u32)>, ImagingError> {
    let end = offset.saturating_add(byte_count);
    let read = |at: u64, buf: &mut [u8]| -> Result<bool, ImagingError> {
        if at.saturating_add(buf.len() as u64) > end {
            return Ok(false);
        }
        Ok(file.read_full_at(at, buf)? == buf.len())
    };

    let mut soi = [0u8; 2];
    if !read(offset, &mut soi)? || soi != [0xFF, 0xD8] {
        return Ok(None);
    }
    let mut at = offset + 2;
    for _ in 0..MAX_JPEG_HEADER_SEGMENTS {
        let mut marker = [0u8; 4];
        if !read(at, &mut marker)? || marker[0] != 0xFF {
            return Ok(None);
        }
        let length = u64::from(u16::from_be_bytes([marker[2], marker[3]]));
        match marker[1] {
            // Start of frame, any coding: precision, height, width follow the length.
            0xC0..=0xCF if !matches!(marker[1], 0xC4 | 0xC8 | 0xCC) => {
                let mut frame = [0u8; 5];
                if !read(at + 4, &mut frame)? {
                    return Ok(None);
                }
                let height = u16::from_be_bytes([frame[1], frame[2]]);
                let width = u16::from_be_bytes([frame[3], frame[4]]);
                return Ok(Some((u32::from(width), u32::from(height))));
            }
            // Start of scan or end of image before any frame header.
            0xDA | 0xD9 => return Ok(None),
            // A fill byte before the marker.
            0xFF => at += 1,
            // Restart markers (and TEM) have no length and cannot precede the frame header;
            // decoders disagree on how to skip them, so a stream using them here could show
            // this check one frame size and the decoder another.
            0x01 | 0xD0..=0xD7 => return Ok(None),
            _ => at += 2 + length,
        }
    }
    Ok(None)
}

/// Decoded tiles, least recently used dropped first once [`TILE_CACHE_BYTES`] is reached.
#[derive(Default)]
struct TileCache {
    tiles: HashMap<(usize, u64), (Arc<Tile>, u64)>,
    bytes: usize,
    clock: u64,
}

impl TileCache {
    fn get(&mut self, key: (usize, u64)) -> Option<Arc<Tile>> {
        self.clock += 1;
        let clock = self.clock;
        self.tiles.get_mut(&key).map(|(tile, used)| {
            *used = clock;
            Arc::clone(tile)
        })
    }

    fn insert(&mut self, key: (usize, u64), tile: Arc<Tile>) {
        let size = tile.rgb.len();
        if size > TILE_CACHE_BYTES / 4 || self.tiles.contains_key(&key) {
            return;
        }
        while self.bytes + size > TILE_CACHE_BYTES {
            let Some(oldest) = self
                .tiles
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| *key)
            else {
                break;
            };
            if let Some((evicted, _)) = self.tiles.remove(&oldest) {
                self.bytes -= evicted.rgb.len();
            }
        }
        self.clock += 1;
        self.bytes += size;
        self.tiles.insert(key, (tile, self.clock));
    }
}
