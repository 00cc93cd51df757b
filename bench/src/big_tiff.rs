//! Writes a large tiled, pyramidal TIFF for the upload benchmark without holding it in memory.
//!
//! Every tile of every level carries the same JPEG bytes (a real tissue crop), so the file is as
//! large as a scanner's output and as cheap to make as one JPEG encode. Classic TIFF, little
//! endian, one IFD per level chained in order, YCbCr JPEG tiles (compression 7, photometric 6).

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, bail};

/// Tile edge in pixels.
pub const TILE: u32 = 256;

/// The shape of the file written.
pub struct BigTiff {
    /// Full-resolution width and height.
    pub size: u32,
    /// Bytes written.
    pub bytes: u64,
}

/// Writes a `size`×`size` image with `levels` levels to `path`, every tile being `tile_jpeg`.
pub fn write(path: &Path, size: u32, levels: u32, tile_jpeg: &[u8]) -> anyhow::Result<BigTiff> {
    if size == 0 || levels == 0 {
        bail!("a TIFF needs a size and at least one level");
    }
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(b"II*\0")?;
    // The first IFD's offset, patched once the tiles are down.
    out.write_all(&0u32.to_le_bytes())?;
    let mut pos: u64 = 8;
    let mut link_at: u64 = 4;

    for level in 0..levels {
        let side = (size >> level).max(1);
        let across = side.div_ceil(TILE);
        let tiles = u64::from(across) * u64::from(across);
        let first_tile = pos;
        for _ in 0..tiles {
            out.write_all(tile_jpeg)?;
        }
        pos += tiles * tile_jpeg.len() as u64;

        // Offsets and byte counts arrays.
        let offsets_at = pos;
        for t in 0..tiles {
            let offset = first_tile + t * tile_jpeg.len() as u64;
            out.write_all(
                &u32::try_from(offset)
                    .context("file past 4 GiB")?
                    .to_le_bytes(),
            )?;
        }
        let counts_at = offsets_at + tiles * 4;
        let count = u32::try_from(tile_jpeg.len())?;
        for _ in 0..tiles {
            out.write_all(&count.to_le_bytes())?;
        }
        let bits_at = counts_at + tiles * 4;
        out.write_all(&[8, 0, 8, 0, 8, 0, 0, 0])?;
        pos = bits_at + 8;

        // The IFD, its tags in ascending order.
        let ifd_at = pos;
        let tiles32 = u32::try_from(tiles)?;
        let short = 3u16;
        let long = 4u16;
        let entries: [(u16, u16, u32, u32); 11] = [
            (256, long, 1, side),
            (257, long, 1, side),
            (258, short, 3, u32::try_from(bits_at)?),
            (259, short, 1, 7),
            (262, short, 1, 6),
            (277, short, 1, 3),
            (284, short, 1, 1),
            (322, long, 1, TILE),
            (323, long, 1, TILE),
            (
                324,
                long,
                tiles32,
                offset_or_value(tiles32, offsets_at, first_tile)?,
            ),
            (
                325,
                long,
                tiles32,
                offset_or_value(tiles32, counts_at, u64::from(count))?,
            ),
        ];
        out.write_all(&(entries.len() as u16).to_le_bytes())?;
        for (tag, kind, n, value) in entries {
            out.write_all(&tag.to_le_bytes())?;
            out.write_all(&kind.to_le_bytes())?;
            out.write_all(&n.to_le_bytes())?;
            out.write_all(&value.to_le_bytes())?;
        }
        let next_link = ifd_at + 2 + entries.len() as u64 * 12;
        out.write_all(&0u32.to_le_bytes())?;
        pos = next_link + 4;

        // Point the previous link (header or previous IFD) at this IFD.
        out.flush()?;
        let file = out.get_mut();
        file.seek(SeekFrom::Start(link_at))?;
        file.write_all(&u32::try_from(ifd_at)?.to_le_bytes())?;
        file.seek(SeekFrom::Start(pos))?;
        link_at = next_link;
    }
    out.flush()?;
    Ok(BigTiff { size, bytes: pos })
}

/// A one-element array is stored inline in the IFD entry; longer ones by offset.
fn offset_or_value(n: u32, array_at: u64, single: u64) -> anyhow::Result<u32> {
    Ok(u32::try_from(if n == 1 { single } else { array_at })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera::imaging::Slide;

    #[test]
    fn the_written_pyramid_opens_with_every_level_and_decodes() {
        let mut rgb = Vec::new();
        for y in 0..TILE {
            for x in 0..TILE {
                rgb.extend_from_slice(&[(x % 256) as u8, (y % 256) as u8, 128]);
            }
        }
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode(&rgb, TILE, TILE, image::ExtendedColorType::Rgb8)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.tif");
        let written = write(&path, 1000, 3, &jpeg).unwrap();
        assert_eq!(written.bytes, std::fs::metadata(&path).unwrap().len());
        let slide = Slide::open(&path, &tessera::imaging::Limits::default()).unwrap();
        let info = slide.info();
        assert_eq!((info.width, info.height), (1000, 1000));
        assert!(info.levels.len() >= 3, "{:?}", info.levels);
        assert_eq!(info.levels[2].width, 250);
        let region = slide
            .read_region(0, tessera::imaging::Rect::new(900, 900, 100, 100))
            .unwrap();
        assert_eq!(region.len(), 100 * 100 * 3);
    }
}
