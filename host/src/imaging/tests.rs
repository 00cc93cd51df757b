//! Tests of [`Slide`] on the bundled sample images, on TIFFs written by hand here, and on broken
//! files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::test_tiff::{TestPage, encode_jpeg, gradient_rgb, test_value, write_tiff};
use super::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data");

fn data(name: &str) -> PathBuf {
    Path::new(DATA).join(name)
}

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(data("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("reference.json parses")
}

fn open(path: &Path) -> Slide {
    Slide::open(path, &Limits::default()).expect("opens")
}

fn open_err(path: &Path) -> ImagingError {
    Slide::open(path, &Limits::default()).expect_err("the open should fail")
}

fn read_level(slide: &Slide, level: u32) -> Vec<u8> {
    let info = slide.info().levels[level as usize];
    slide
        .read_region(level, Rect::new(0, 0, info.width, info.height))
        .expect("reads the whole level")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn channel_means(rgb: &[u8]) -> [f64; 3] {
    let mut sums = [0u64; 3];
    for pixel in rgb.chunks_exact(3) {
        (0..3).for_each(|c| sums[c] += u64::from(pixel[c]));
    }
    let n = (rgb.len() / 3) as f64;
    sums.map(|s| s as f64 / n)
}

/// Cuts `rect` out of a whole level read as RGB8 of the given width.
fn cut(level: &[u8], level_width: u32, rect: Rect) -> Vec<u8> {
    let mut out = Vec::new();
    for y in rect.y..rect.y + rect.height {
        let start = (y * level_width + rect.x) as usize * 3;
        out.extend_from_slice(&level[start..start + rect.width as usize * 3]);
    }
    out
}

/// Writes `bytes` to a new temporary file whose name ends in `suffix`.
fn temp_file(suffix: &str, bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .prefix("tessera-imaging-")
        .suffix(suffix)
        .tempfile()
        .expect("temp file");
    file.write_all(bytes).expect("writes");
    file.flush().expect("flushes");
    file
}

// ---------------------------------------------------------------------------------------------
// Sample images

#[test]
fn png_decodes_to_the_reference_pixels() {
    let slide = open(&data("skimage_ihc.png"));
    let info = slide.info();
    assert_eq!(info.format, ImageFormat::Png);
    assert_eq!((info.width, info.height), (512, 512));
    assert_eq!(info.microns_per_pixel, None);

    let expected = reference()["images"]["skimage_ihc.png"]["decoded_rgb_sha256"].clone();
    assert_eq!(
        sha256_hex(&read_level(&slide, 0)),
        expected.as_str().expect("hash")
    );
}

#[test]
fn flat_images_get_virtual_levels_down_to_256_pixels() {
    let slide = open(&data("skimage_ihc.png"));
    let levels = &slide.info().levels;
    assert_eq!(
        levels,
        &[
            LevelInfo {
                width: 512,
                height: 512,
                downsample: 1.0
            },
            LevelInfo {
                width: 256,
                height: 256,
                downsample: 2.0
            },
        ]
    );
}

#[test]
fn pyramid_tiff_levels_match_the_reference_hashes_bit_exactly() {
    let slide = open(&data("openslide_boxes_pyramid.tiff"));
    let reference = reference();
    let expected = reference["fixtures"]["openslide_boxes_pyramid.tiff"]["levels"]
        .as_array()
        .expect("levels");
    let info = slide.info();
    assert_eq!(info.format, ImageFormat::Tiff);
    assert_eq!(
        info.levels.len(),
        expected.len(),
        "no virtual levels below 37x31"
    );
    // Its resolution tags say 72 dpi in pixels per centimetre: a default, not a measurement.
    assert_eq!(info.microns_per_pixel, None);

    for (level, want) in expected.iter().enumerate() {
        let shape = &want["shape"];
        let got = info.levels[level];
        assert_eq!(u64::from(got.height), shape[0].as_u64().expect("h"));
        assert_eq!(u64::from(got.width), shape[1].as_u64().expect("w"));
        assert_eq!(got.downsample, 300.0 / f64::from(got.width));

        let pixels = read_level(&slide, level as u32);
        let hash = want["decoded_sha256"].as_str().expect("hash");
        assert_eq!(sha256_hex(&pixels), hash, "level {level}");
    }
}

#[test]
fn svs_has_one_native_level_plus_virtual_levels_and_its_aperio_mpp() {
    let slide = open(&data("cmu_small_region.svs"));
    let info = slide.info();
    let sizes: Vec<(u32, u32)> = info.levels.iter().map(|l| (l.width, l.height)).collect();
    // The stripped thumbnail, label and macro pages are not levels.
    assert_eq!(
        sizes,
        [
            (2220, 2967),
            (1110, 1484),
            (555, 742),
            (278, 371),
            (139, 186)
        ]
    );
    let downsamples: Vec<f64> = info.levels.iter().map(|l| l.downsample).collect();
    assert_eq!(downsamples, [1.0, 2.0, 4.0, 8.0, 16.0]);
    assert_eq!(info.microns_per_pixel, Some(0.499));
}

#[test]
fn svs_level_0_channel_means_are_within_half_a_grey_level_of_the_reference() {
    let slide = open(&data("cmu_small_region.svs"));
    let means = channel_means(&read_level(&slide, 0));
    let reference = reference();
    let expected = &reference["images"]["cmu_small_region.svs#level0"]["decoded_rgb_channel_means"];
    for c in 0..3 {
        let want = expected[c].as_f64().expect("mean");
        assert!(
            (means[c] - want).abs() < 0.5,
            "channel {c}: {} vs {want}",
            means[c]
        );
    }
}

#[test]
fn a_region_equals_the_same_window_cut_from_a_full_read() {
    let slide = open(&data("cmu_small_region.svs"));
    let whole = read_level(&slide, 0);
    // Crosses tile borders in both directions and ends on the cropped last tile column.
    for rect in [
        Rect::new(100, 230, 500, 300),
        Rect::new(2100, 2900, 120, 67),
        Rect::new(239, 239, 2, 2),
    ] {
        let region = slide.read_region(0, rect).expect("reads");
        assert_eq!(region, cut(&whole, 2220, rect), "{rect}");
    }
}

#[test]
fn virtual_level_pixels_are_the_means_of_their_level_0_blocks() {
    let slide = open(&data("cmu_small_region.svs"));
    let whole = read_level(&slide, 0);
    let level1 = read_level(&slide, 1);
    assert_eq!(level1.len(), 1110 * 1484 * 3);

    // The last row of level 1 covers the single last row of level 0 (2967 is odd).
    for (x, y) in [(0, 0), (555, 700), (1109, 1483)] {
        for c in 0..3 {
            let mut sum = 0u32;
            let mut count = 0u32;
            for sy in 2 * y..(2 * y + 2).min(2967) {
                for sx in 2 * x..2 * x + 2 {
                    sum += u32::from(whole[(sy * 2220 + sx) as usize * 3 + c]);
                    count += 1;
                }
            }
            let want = (sum + count / 2) / count;
            let got = level1[(y * 1110 + x) as usize * 3 + c];
            assert_eq!(u32::from(got), want, "pixel ({x}, {y}) channel {c}");
        }
    }

    let level0_means = channel_means(&whole);
    for level in 1..5 {
        let means = channel_means(&read_level(&slide, level));
        for c in 0..3 {
            assert!(
                (means[c] - level0_means[c]).abs() < 1.0,
                "level {level} channel {c}"
            );
        }
    }

    let window = Rect::new(300, 400, 200, 100);
    let region = slide.read_region(1, window).expect("reads");
    assert_eq!(region, cut(&level1, 1110, window));
}

#[test]
fn regions_read_on_several_threads_match_a_serial_read() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Slide>();

    let slide = Arc::new(open(&data("cmu_small_region.svs")));
    let whole = read_level(&slide, 0);
    let handles: Vec<_> = (0..4u32)
        .map(|i| {
            let slide = Arc::clone(&slide);
            std::thread::spawn(move || {
                let rect = Rect::new(0, i * 700, 2220, 700);
                (rect, slide.read_region(0, rect).expect("reads"))
            })
        })
        .collect();
    for handle in handles {
        let (rect, pixels) = handle.join().expect("thread");
        assert_eq!(pixels, cut(&whole, 2220, rect));
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn a_zero_byte_file_is_refused_as_empty() {
    let file = temp_file(".png", b"");
    let err = open_err(file.path());
    assert!(matches!(err, ImagingError::Empty));
    assert_eq!(err.to_string(), "empty file");
}

#[test]
fn a_text_file_named_tif_is_not_a_recognized_image() {
    let file = temp_file("x.tif", b"hello, this is not a slide\n");
    let err = open_err(file.path());
    assert!(matches!(err, ImagingError::Unrecognized { .. }));
    let message = err.to_string();
    assert!(
        message.starts_with("not a recognized image (starts with \"hello, this is n\")"),
        "{message}"
    );
}

#[test]
fn truncated_png_is_refused_with_the_decoder_reason() {
    let bytes = std::fs::read(data("skimage_ihc.png")).expect("png");
    let file = temp_file(".png", &bytes[..bytes.len() / 2]);
    let err = open_err(file.path());
    let message = err.to_string();
    assert!(
        matches!(
            err,
            ImagingError::Corrupt {
                format: ImageFormat::Png,
                ..
            }
        ),
        "{message}"
    );
    assert!(message.starts_with("corrupt png: "), "{message}");
    assert!(message.len() > "corrupt png: ".len() + 5, "{message}");
}

/// A classic little-endian TIFF header and one IFD claiming a 100000 × 100000 grey image in
/// one strip of zero bytes: 122 bytes in all, no pixel data.
fn huge_header_tiff() -> Vec<u8> {
    let mut bytes = b"II\x2a\x00".to_vec();
    bytes.extend_from_slice(&8u32.to_le_bytes()); // the IFD follows the header
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, 100_000), // ImageWidth, LONG
        (257, 4, 100_000), // ImageLength, LONG
        (258, 3, 8),       // BitsPerSample, SHORT
        (259, 3, 1),       // Compression: none
        (262, 3, 1),       // PhotometricInterpretation: BlackIsZero
        (273, 4, 122),     // StripOffsets: the end of this file
        (277, 3, 1),       // SamplesPerPixel
        (278, 4, 100_000), // RowsPerStrip: one strip
        (279, 4, 0),       // StripByteCounts: no data
    ];
    bytes.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        bytes.extend_from_slice(&tag.to_le_bytes());
        bytes.extend_from_slice(&kind.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        if kind == 3 {
            bytes.extend_from_slice(&(value as u16).to_le_bytes());
            bytes.extend_from_slice(&[0, 0]);
        } else {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
    }
    bytes.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    bytes
}

#[test]
fn a_tiff_header_claiming_100000_by_100000_is_refused_as_too_large() {
    let bytes = huge_header_tiff();
    assert_eq!(bytes.len(), 122);
    let file = temp_file(".tif", &bytes);
    let err = open_err(file.path());
    let message = err.to_string();
    assert!(
        matches!(
            err,
            ImagingError::TooLarge {
                subject: Subject::FlatImage,
                width: 100_000,
                height: 100_000,
                limit: MAX_FLAT_PIXELS,
            }
        ),
        "{message}"
    );
    assert!(message.contains("100000x100000"), "{message}");
    assert!(message.contains(&MAX_FLAT_PIXELS.to_string()), "{message}");
}

#[test]
fn a_tiled_tiff_over_the_pixel_limit_is_refused_before_its_tiles_are_checked() {
    let page = TestPage::rgb(300, 200, Some((64, 64)));
    let file = temp_file(".tif", &write_tiff(&[page], false));
    let limits = Limits {
        max_pixels: 50_000,
        ..Limits::default()
    };
    let err = Slide::open(file.path(), &limits).expect_err("refused");
    assert!(
        matches!(
            err,
            ImagingError::TooLarge {
                subject: Subject::Image,
                width: 300,
                height: 200,
                limit: 50_000
            }
        ),
        "{err}"
    );
}

#[test]
fn regions_outside_the_level_empty_or_too_large_and_missing_levels_are_refused() {
    let slide = open(&data("openslide_boxes_pyramid.tiff"));

    let err = slide
        .read_region(1, Rect::new(100, 100, 51, 10))
        .unwrap_err();
    assert!(
        matches!(err, ImagingError::OutOfBounds { level: 1, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "region 51x10 at (100, 100) is outside level 1, which is 150x125"
    );

    let err = slide
        .read_region(0, Rect::new(u32::MAX, 0, 2, 2))
        .unwrap_err();
    assert!(matches!(err, ImagingError::OutOfBounds { .. }), "{err}");

    let err = slide.read_region(0, Rect::new(0, 0, 0, 5)).unwrap_err();
    assert!(matches!(err, ImagingError::EmptyRegion { .. }), "{err}");

    let err = slide.read_region(4, Rect::new(0, 0, 1, 1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no level 4: the image has 4 levels, numbered from 0"
    );

    // Every tile left out of the file, so it takes a few kilobytes.
    let mut big = TestPage::rgb(9000, 9000, Some((256, 256)));
    big.sparse_tiles = (0..36 * 36).collect();
    let file = temp_file(".tif", &write_tiff(&[big], true));
    let big = open(file.path());
    let err = big.read_region(0, Rect::new(0, 0, 9000, 9000)).unwrap_err();
    assert!(
        matches!(
            err,
            ImagingError::TooLarge {
                subject: Subject::Region,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_truncated_tiled_tiff_fails_at_open_naming_the_first_missing_tile() {
    let full = write_tiff(&[TestPage::rgb(300, 250, Some((64, 64)))], false);
    let file = temp_file(".tif", &full[..full.len() - 5000]);
    let err = open_err(file.path());
    let message = err.to_string();
    assert!(
        matches!(
            err,
            ImagingError::Corrupt {
                format: ImageFormat::Tiff,
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("tile 19 of page 0 lies at bytes"),
        "{message}"
    );
    assert!(message.contains("truncated"), "{message}");
}

/// A small xorshift generator, so the mutations are the same on every run.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Opens a damaged file and reads a corner of every level; any error is fine, a panic is not.
fn open_and_read_corners(path: &Path) {
    let Ok(slide) = Slide::open(path, &Limits::default()) else {
        return;
    };
    for (level, info) in slide.info().levels.iter().enumerate() {
        let rect = Rect::new(0, 0, info.width.min(512), info.height.min(512));
        let _ = slide.read_region(level as u32, rect);
    }
}

#[test]
fn mutated_and_truncated_files_fail_cleanly_without_panicking() {
    let jpeg_tiles = {
        let mut page = TestPage::rgb(64, 48, Some((64, 48)));
        page.jpeg_tiles = Some(vec![encode_jpeg(&gradient_rgb(64, 48), 64, 48)]);
        page.photometric = 6;
        write_tiff(&[page], true)
    };
    let originals = [
        std::fs::read(data("openslide_boxes_pyramid.tiff")).expect("tiff"),
        write_tiff(&[TestPage::rgb(100, 60, None)], false),
        jpeg_tiles,
        std::fs::read(data("skimage_ihc.png")).expect("png")[..4096].to_vec(),
    ];
    let scratch = temp_file(".bin", b"");
    let mut mutator = Mutator(0x2545_f491_4f6c_dd1d);

    for original in &originals {
        for cut in [1, 4, 8, 9, 16, 100, original.len() / 2, original.len() - 1] {
            std::fs::write(scratch.path(), &original[..cut.min(original.len())]).expect("write");
            open_and_read_corners(scratch.path());
        }
        for _ in 0..300 {
            let mut bytes = original.clone();
            for _ in 0..1 + mutator.below(6) {
                let at = mutator.below(bytes.len());
                bytes[at] = mutator.next() as u8;
            }
            std::fs::write(scratch.path(), &bytes).expect("write");
            open_and_read_corners(scratch.path());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TIFFs written by hand: layouts the samples do not cover

#[test]
fn bigtiff_with_cropped_edge_tiles_reads_every_pixel() {
    let page = TestPage::rgb(150, 70, Some((32, 16)));
    let expected = page.rgb8();
    let file = temp_file(".tif", &write_tiff(&[page], true));
    let slide = open(file.path());
    assert_eq!(read_level(&slide, 0), expected);
    let rect = Rect::new(31, 15, 100, 50);
    assert_eq!(
        slide.read_region(0, rect).expect("reads"),
        cut(&expected, 150, rect)
    );
}

#[test]
fn generic_pyramid_pages_become_levels_and_virtual_levels_follow() {
    let pages = [
        TestPage::rgb(1200, 800, Some((128, 128))),
        TestPage::rgb(600, 400, Some((128, 128))),
        TestPage::rgb(300, 200, None), // stripped: an associated image, not a level
        TestPage::rgb(300, 200, Some((64, 64))),
    ];
    let level2 = pages[3].rgb8();
    let file = temp_file(".tif", &write_tiff(&pages, false));
    let slide = open(file.path());
    let levels: Vec<(u32, u32, f64)> = slide
        .info()
        .levels
        .iter()
        .map(|l| (l.width, l.height, l.downsample))
        .collect();
    assert_eq!(
        levels,
        [
            (1200, 800, 1.0),
            (600, 400, 2.0),
            (300, 200, 4.0),
            (150, 100, 8.0)
        ]
    );
    assert_eq!(read_level(&slide, 2), level2);
}

#[test]
fn grey_16_bit_and_grey_alpha_tiffs_become_rgb8() {
    let mut grey16 = TestPage::rgb(40, 30, Some((16, 16)));
    grey16.samples = 1;
    grey16.bits = 16;
    grey16.photometric = 1;
    let expected: Vec<u8> = (0..30u32)
        .flat_map(|y| (0..40u32).flat_map(move |x| [test_value(x, y, 0); 3]))
        .collect();
    let file = temp_file(".tif", &write_tiff(&[grey16], false));
    assert_eq!(read_level(&open(file.path()), 0), expected);

    let mut grey_alpha = TestPage::rgb(40, 30, None);
    grey_alpha.samples = 2;
    grey_alpha.photometric = 1;
    grey_alpha.extra_samples = Some(2);
    let file = temp_file(".tif", &write_tiff(&[grey_alpha], false));
    let slide = open(file.path());
    assert_eq!(slide.info().levels.len(), 1);
    assert_eq!(read_level(&slide, 0), expected);
}

#[test]
fn a_stripped_tiff_is_flat_and_its_resolution_tags_give_the_pixel_size() {
    let mut page = TestPage::rgb(700, 300, None);
    page.resolution_per_cm = Some(40_000);
    let expected = page.rgb8();
    let file = temp_file(".tif", &write_tiff(&[page], false));
    let slide = open(file.path());
    assert_eq!(slide.info().microns_per_pixel, Some(0.25));
    let sizes: Vec<(u32, u32)> = slide
        .info()
        .levels
        .iter()
        .map(|l| (l.width, l.height))
        .collect();
    assert_eq!(sizes, [(700, 300), (350, 150), (175, 75)]);
    assert_eq!(read_level(&slide, 0), expected);
}

#[test]
fn tiles_left_out_of_the_file_read_as_white() {
    let mut page = TestPage::rgb(64, 32, Some((32, 32)));
    page.sparse_tiles = vec![1];
    let file = temp_file(".tif", &write_tiff(&[page], false));
    let pixels = read_level(&open(file.path()), 0);
    assert_eq!(&pixels[32 * 3..64 * 3], &[255u8; 32 * 3][..]);
    assert_eq!(
        &pixels[..3],
        &[
            test_value(0, 0, 0),
            test_value(0, 0, 1),
            test_value(0, 0, 2)
        ]
    );
}

#[test]
fn ycbcr_jpeg_tiles_are_converted_to_rgb() {
    let source = gradient_rgb(64, 48);
    let jpeg = encode_jpeg(&source, 64, 48);
    let mut page = TestPage::rgb(64, 48, Some((64, 48)));
    page.jpeg_tiles = Some(vec![jpeg.clone()]);
    page.photometric = 6;
    let file = temp_file(".tif", &write_tiff(&[page], false));
    let pixels = read_level(&open(file.path()), 0);

    let reference = image::load_from_memory(&jpeg)
        .expect("jpeg")
        .into_rgb8()
        .into_raw();
    let worst = pixels
        .iter()
        .zip(&reference)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .expect("pixels");
    assert!(
        worst <= 2,
        "differs from the image crate's decode by up to {worst}"
    );
}

#[test]
fn a_jpeg_tile_claiming_more_pixels_than_its_tile_is_refused() {
    let jpeg = encode_jpeg(&gradient_rgb(256, 256), 256, 256);
    let mut page = TestPage::rgb(32, 32, Some((32, 32)));
    page.jpeg_tiles = Some(vec![jpeg]);
    page.photometric = 6;
    let file = temp_file(".tif", &write_tiff(&[page], false));
    let err = open(file.path())
        .read_region(0, Rect::new(0, 0, 8, 8))
        .unwrap_err();
    assert!(err.to_string().contains("claims 256x256 pixels"), "{err}");
}

#[test]
fn jpeg_and_grey_16_bit_png_files_open_as_flat_rgb() {
    let rgb = gradient_rgb(300, 200);
    let file = temp_file(".jpg", &encode_jpeg(&rgb, 300, 200));
    let slide = open(file.path());
    assert_eq!(slide.info().format, ImageFormat::Jpeg);
    let means = channel_means(&read_level(&slide, 0));
    let want = channel_means(&rgb);
    (0..3).for_each(|c| assert!((means[c] - want[c]).abs() < 1.0, "channel {c}"));

    let grey: Vec<u16> = (0..64 * 32).map(|i| (i * 32) as u16).collect();
    let image = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(64, 32, grey).expect("buffer");
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encodes");
    let file = temp_file(".png", &png);
    let pixels = read_level(&open(file.path()), 0);
    assert_eq!(&pixels[..6], &[0, 0, 0, 0, 0, 0]);
    let last = 64 * 32 - 1;
    let want = ((last * 32 + 128) / 257) as u8;
    assert_eq!(&pixels[last * 3..], &[want, want, want]);
}

#[test]
fn a_flat_image_over_the_flat_limit_is_refused() {
    let limits = Limits {
        max_flat_pixels: 100_000,
        ..Limits::default()
    };
    let err = Slide::open(&data("skimage_ihc.png"), &limits).expect_err("refused");
    assert!(matches!(
        err,
        ImagingError::TooLarge {
            subject: Subject::FlatImage,
            ..
        }
    ));
    assert!(
        err.to_string()
            .contains("convert it to a tiled pyramid tiff"),
        "{err}"
    );
}

/// An RGBA 16-bit TIFF, 1 × 2³¹ pixels, in one 2³¹ × 2³¹ tile: the decoded size of that tile
/// (2⁶⁵ bytes) overflows 64 bits.
fn overflowing_tile_tiff() -> Vec<u8> {
    const IFD_ENTRIES: u32 = 11;
    let bits_at = 8 + 2 + IFD_ENTRIES * 12 + 4;
    let mut bytes = b"II\x2a\x00".to_vec();
    bytes.extend_from_slice(&8u32.to_le_bytes());
    let entries: [(u16, u16, u32, u32); IFD_ENTRIES as usize] = [
        (256, 4, 1, 1),       // ImageWidth
        (257, 4, 1, 1 << 31), // ImageLength
        (258, 3, 4, bits_at), // BitsPerSample: 16,16,16,16 after the IFD
        (259, 3, 1, 1),       // Compression: none
        (262, 3, 1, 2),       // Photometric: RGB
        (277, 3, 1, 4),       // SamplesPerPixel
        (322, 4, 1, 1 << 31), // TileWidth
        (323, 4, 1, 1 << 31), // TileLength
        (324, 4, 1, 0),       // TileOffsets
        (325, 4, 1, 0),       // TileByteCounts
        (338, 3, 1, 2),       // ExtraSamples: unassociated alpha
    ];
    bytes.extend_from_slice(&(IFD_ENTRIES as u16).to_le_bytes());
    for (tag, kind, count, value) in entries {
        bytes.extend_from_slice(&tag.to_le_bytes());
        bytes.extend_from_slice(&kind.to_le_bytes());
        bytes.extend_from_slice(&count.to_le_bytes());
        if kind == 3 && count == 1 {
            bytes.extend_from_slice(&(value as u16).to_le_bytes());
            bytes.extend_from_slice(&[0, 0]);
        } else {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
    }
    bytes.extend_from_slice(&0u32.to_le_bytes());
    for _ in 0..4 {
        bytes.extend_from_slice(&16u16.to_le_bytes());
    }
    bytes
}

#[test]
fn a_tile_size_that_overflows_64_bits_is_refused_not_a_panic() {
    let file = temp_file(".tif", &overflowing_tile_tiff());
    let result = std::panic::catch_unwind(|| Slide::open(file.path(), &Limits::default()));
    let err = result.expect("no panic").expect_err("must be refused");
    assert!(err.to_string().contains("tile"), "{err}");
}

#[test]
fn a_virtual_level_read_that_would_decode_too_much_is_refused() {
    // 65536 × 65536 single-level tiled TIFF of empty (white) tiles: its coarsest virtual level
    // is 256 × 256 with a factor of 256, i.e. 4 Gpx of decoding for one small read.
    let mut page = TestPage::rgb(65536, 65536, Some((4096, 4096)));
    page.sparse_tiles = (0..256).collect();
    let file = temp_file(".tif", &write_tiff(&[page], false));
    let slide = Slide::open(file.path(), &Limits::default()).expect("opens");
    let coarsest = slide.info().levels.len() as u32 - 1;
    let level = slide.info().levels[coarsest as usize];
    let err = slide
        .read_region(coarsest, Rect::new(0, 0, level.width, level.height))
        .expect_err("too much decoding for one read");
    assert!(
        matches!(
            err,
            ImagingError::TooLarge {
                subject: Subject::Region,
                ..
            }
        ),
        "{err}"
    );
    // The same level read in small pieces stays allowed.
    slide
        .read_region(coarsest, Rect::new(0, 0, 16, 16))
        .expect("a small read of the coarse level works");
}
