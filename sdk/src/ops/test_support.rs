//! Sample data and helpers shared by the tests of the image operations.

const IHC_PNG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/data/skimage_ihc.png"
);
const REFERENCE_JSON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/data/reference.json"
);

/// The sample image as interleaved RGB with its width and height.
pub(super) fn ihc_rgb() -> (Vec<u8>, usize, usize) {
    let image = image::open(IHC_PNG)
        .expect("skimage_ihc.png decodes")
        .to_rgb8();
    let (width, height) = (image.width() as usize, image.height() as usize);
    (image.into_raw(), width, height)
}

/// A value of reference.json under `images["skimage_ihc.png"]`, by JSON pointer.
pub(super) fn ihc_reference(pointer: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(REFERENCE_JSON).expect("reference.json is readable");
    let reference: serde_json::Value =
        serde_json::from_str(&text).expect("reference.json is valid JSON");
    reference
        .pointer(&format!("/images/skimage_ihc.png{pointer}"))
        .unwrap_or_else(|| panic!("reference.json has {pointer}"))
        .clone()
}

pub(super) fn ihc_reference_f64(pointer: &str) -> f64 {
    ihc_reference(pointer)
        .as_f64()
        .unwrap_or_else(|| panic!("{pointer} is a number"))
}

pub(super) fn mean(values: &[f32]) -> f64 {
    values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64
}

pub(super) fn assert_within(actual: f64, expected: f64, relative: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= relative * expected.abs(),
        "{what}: {actual} is not within {relative} of {expected}"
    );
}

/// Parses rows of `#` (set) and `.` (clear) into a mask with its width and height.
pub(super) fn mask(rows: &[&str]) -> (Vec<bool>, usize, usize) {
    let cells = rows.iter().flat_map(|row| row.chars().map(|c| c == '#'));
    (cells.collect(), rows[0].len(), rows.len())
}

/// A serpentine one pixel wide filling a `size` x `size` mask: a single object whose pixels
/// form one long path, which defeats any flood fill that recurses per pixel.
pub(super) fn serpentine(size: usize) -> Vec<bool> {
    let mut mask = vec![false; size * size];
    for y in 0..size {
        for x in 0..size {
            let turn_right = y % 4 == 1 && x == size - 1;
            let turn_left = y % 4 == 3 && x == 0;
            mask[y * size + x] = y % 2 == 0 || turn_right || turn_left;
        }
    }
    mask
}
