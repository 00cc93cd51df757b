//! A small TIFF writer for the tests: uncompressed or pre-encoded JPEG tiles and strips,
//! classic TIFF or BigTIFF, little-endian. It covers layouts the bundled samples do not: BigTIFF,
//! cropped edge tiles, grey and 16-bit samples, sparse tiles, YCbCr JPEG tiles, truncation.

/// The test pattern: sample `c` of pixel (x, y).
pub(super) fn test_value(x: u32, y: u32, c: u32) -> u8 {
    ((x * 7 + y * 13 + c * 50) % 256) as u8
}

pub(super) fn gradient_rgb(width: u32, height: u32) -> Vec<u8> {
    (0..height)
        .flat_map(|y| {
            (0..width).flat_map(move |x| [(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
        })
        .collect()
}

pub(super) fn encode_jpeg(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode(rgb, width, height, image::ExtendedColorType::Rgb8)
        .expect("encodes");
    jpeg
}

pub(super) struct TestPage {
    pub width: u32,
    pub height: u32,
    /// Tile size, or `None` for strips of 16 rows.
    pub tile: Option<(u32, u32)>,
    pub samples: u16,
    pub bits: u16,
    pub photometric: u16,
    pub extra_samples: Option<u16>,
    pub resolution_per_cm: Option<u32>,
    /// Tiles written with a byte count of 0.
    pub sparse_tiles: Vec<usize>,
    /// Pre-encoded JPEG tiles (compression 7) instead of the test pattern.
    pub jpeg_tiles: Option<Vec<Vec<u8>>>,
}

impl TestPage {
    pub fn rgb(width: u32, height: u32, tile: Option<(u32, u32)>) -> TestPage {
        TestPage {
            width,
            height,
            tile,
            samples: 3,
            bits: 8,
            photometric: 2,
            extra_samples: None,
            resolution_per_cm: None,
            sparse_tiles: Vec::new(),
            jpeg_tiles: None,
        }
    }

    /// The RGB8 the pattern should read back as (for 3-sample 8-bit pages).
    pub fn rgb8(&self) -> Vec<u8> {
        (0..self.height)
            .flat_map(|y| {
                (0..self.width).flat_map(move |x| (0..3).map(move |c| test_value(x, y, c)))
            })
            .collect()
    }

    /// The raw bytes of the chunk covering columns `x0..x0+w` and rows `y0..y0+h`, padded with
    /// zeros past the image edge as TIFF tiles are.
    fn chunk(&self, x0: u32, y0: u32, w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                for c in 0..u32::from(self.samples) {
                    let inside = x < self.width && y < self.height;
                    // Grey pages carry the first channel of the pattern; alpha is opaque.
                    let value = match (inside, self.samples, c) {
                        (false, ..) => 0,
                        (true, 2, 1) => 255,
                        (true, _, c) => test_value(x, y, c),
                    };
                    if self.bits == 16 {
                        out.extend_from_slice(&(u16::from(value) * 257).to_le_bytes());
                    } else {
                        out.push(value);
                    }
                }
            }
        }
        out
    }

    fn chunks(&self) -> Vec<Vec<u8>> {
        if let Some(jpeg) = &self.jpeg_tiles {
            return jpeg.clone();
        }
        match self.tile {
            Some((tw, th)) => {
                let mut chunks = Vec::new();
                for ty in 0..self.height.div_ceil(th) {
                    for tx in 0..self.width.div_ceil(tw) {
                        if self.sparse_tiles.contains(&chunks.len()) {
                            chunks.push(Vec::new());
                        } else {
                            chunks.push(self.chunk(tx * tw, ty * th, tw, th));
                        }
                    }
                }
                chunks
            }
            None => (0..self.height.div_ceil(16))
                .map(|s| self.chunk(0, s * 16, self.width, 16.min(self.height - s * 16)))
                .collect(),
        }
    }
}

/// One IFD entry: tag, field type, values as little-endian bytes, value count.
struct Entry(u16, u16, Vec<u8>, u64);

fn shorts(tag: u16, values: &[u16]) -> Entry {
    Entry(
        tag,
        3,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        values.len() as u64,
    )
}

fn long(tag: u16, value: u32) -> Entry {
    Entry(tag, 4, value.to_le_bytes().to_vec(), 1)
}

fn offsets(tag: u16, values: &[u64], bigtiff: bool) -> Entry {
    if bigtiff {
        Entry(
            tag,
            16,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            values.len() as u64,
        )
    } else {
        let bytes = values
            .iter()
            .flat_map(|&v| (v as u32).to_le_bytes())
            .collect();
        Entry(tag, 4, bytes, values.len() as u64)
    }
}

/// Writes the pages' directories first and their pixel data after all of them, so cutting the
/// end off the file removes tiles but keeps every directory readable.
pub(super) fn write_tiff(pages: &[TestPage], bigtiff: bool) -> Vec<u8> {
    let mut file = if bigtiff {
        let mut header = b"II\x2b\x00\x08\x00\x00\x00".to_vec();
        header.extend_from_slice(&0u64.to_le_bytes());
        header
    } else {
        b"II\x2a\x00\x00\x00\x00\x00".to_vec()
    };
    let inline = if bigtiff { 8 } else { 4 };
    let mut next_pointer_at = if bigtiff { 8 } else { 4 };
    // Per page: where its chunk offsets are stored, and its chunks.
    let mut pending = Vec::new();

    for page in pages {
        let chunks = page.chunks();
        let sparse = |i: &usize| page.sparse_tiles.contains(i);
        let counts: Vec<u64> = (0..chunks.len())
            .map(|i| {
                if sparse(&i) {
                    0
                } else {
                    chunks[i].len() as u64
                }
            })
            .collect();
        let placeholder = vec![0; chunks.len()];

        let bits = vec![page.bits; usize::from(page.samples)];
        let compression = if page.jpeg_tiles.is_some() { 7 } else { 1 };
        let mut entries = vec![
            long(256, page.width),
            long(257, page.height),
            shorts(258, &bits),
            shorts(259, &[compression]),
            shorts(262, &[page.photometric]),
            shorts(277, &[page.samples]),
        ];
        let offsets_tag = match page.tile {
            Some((tw, th)) => {
                entries.push(long(322, tw));
                entries.push(long(323, th));
                entries.push(offsets(324, &placeholder, bigtiff));
                entries.push(offsets(325, &counts, bigtiff));
                324
            }
            None => {
                entries.push(offsets(273, &placeholder, bigtiff));
                entries.push(long(278, 16));
                entries.push(offsets(279, &counts, bigtiff));
                273
            }
        };
        if let Some(extra) = page.extra_samples {
            entries.push(shorts(338, &[extra]));
        }
        if page.photometric == 6 {
            entries.push(shorts(530, &[1, 1]));
        }
        if let Some(per_cm) = page.resolution_per_cm {
            let rational = [per_cm.to_le_bytes(), 1u32.to_le_bytes()].concat();
            entries.push(Entry(282, 5, rational.clone(), 1));
            entries.push(Entry(283, 5, rational, 1));
            entries.push(shorts(296, &[3]));
        }
        entries.sort_by_key(|e| e.0);

        // Values too long for their entry go before the IFD.
        let mut fields = Vec::new();
        let mut offsets_at = None;
        for entry in &entries {
            if entry.2.len() > inline {
                let at = file.len() as u64;
                file.extend_from_slice(&entry.2);
                if entry.0 == offsets_tag {
                    offsets_at = Some(at as usize);
                }
                fields.push(if bigtiff {
                    at.to_le_bytes().to_vec()
                } else {
                    (at as u32).to_le_bytes().to_vec()
                });
            } else {
                let mut field = entry.2.clone();
                field.resize(inline, 0);
                fields.push(field);
            }
        }

        let ifd_at = file.len() as u64;
        if bigtiff {
            file[next_pointer_at..next_pointer_at + 8].copy_from_slice(&ifd_at.to_le_bytes());
            file.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        } else {
            file[next_pointer_at..next_pointer_at + 4]
                .copy_from_slice(&(ifd_at as u32).to_le_bytes());
            file.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        }
        for (entry, field) in entries.iter().zip(&fields) {
            file.extend_from_slice(&entry.0.to_le_bytes());
            file.extend_from_slice(&entry.1.to_le_bytes());
            if bigtiff {
                file.extend_from_slice(&entry.3.to_le_bytes());
            } else {
                file.extend_from_slice(&(entry.3 as u32).to_le_bytes());
            }
            if entry.0 == offsets_tag && offsets_at.is_none() {
                offsets_at = Some(file.len());
            }
            file.extend_from_slice(field);
        }
        next_pointer_at = file.len();
        file.extend_from_slice(&vec![0; inline]);
        pending.push((offsets_at.expect("offsets written"), chunks, counts));
    }

    for (offsets_at, chunks, counts) in pending {
        for (i, chunk) in chunks.iter().enumerate() {
            if counts[i] == 0 {
                continue;
            }
            let at = file.len() as u64;
            file.extend_from_slice(chunk);
            if bigtiff {
                let slot = offsets_at + i * 8;
                file[slot..slot + 8].copy_from_slice(&at.to_le_bytes());
            } else {
                let slot = offsets_at + i * 4;
                file[slot..slot + 4].copy_from_slice(&(at as u32).to_le_bytes());
            }
        }
    }
    file
}
