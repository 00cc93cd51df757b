//! Broken images: each gets a clear error and adds nothing to the store.

use crate::support::{Lake, huge_tiff_header, lake, sample};

fn assert_refused(lake: &Lake, name: &str, bytes: &[u8], expected: &str) {
    let path = lake.dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let err = lake.tessera.import_file(&path).unwrap_err().to_string();
    assert!(
        err.contains(expected),
        "{name}: `{err}` should mention `{expected}`"
    );
    assert!(err.contains(name), "{name}: `{err}` should name the file");
    assert!(lake.tessera.store().images().unwrap().is_empty());
    assert_eq!(
        lake.files_under("blobs"),
        0,
        "{name}: no blob may be stored"
    );
}

#[test]
fn a_zero_byte_file_is_refused() {
    let lake = lake();
    assert_refused(&lake, "empty.png", b"", "empty");
}

#[test]
fn a_truncated_png_is_refused() {
    let lake = lake();
    let png = std::fs::read(sample("skimage_ihc.png")).unwrap();
    assert_refused(&lake, "truncated.png", &png[..png.len() / 2], "png");
}

#[test]
fn a_tiff_claiming_100000_by_100000_pixels_is_refused_before_allocating() {
    let lake = lake();
    assert_refused(
        &lake,
        "huge.tif",
        &huge_tiff_header(100_000, 100_000),
        "100000",
    );
}

#[test]
fn a_text_file_named_tif_is_refused() {
    let lake = lake();
    assert_refused(
        &lake,
        "notes.tif",
        b"these are not pixels\n",
        "not a recognized image",
    );
}

#[test]
fn importing_the_same_file_twice_stores_it_once() {
    let lake = lake();
    let (a, new_a) = lake
        .tessera
        .import_file(&sample("skimage_ihc.png"))
        .unwrap();
    let (b, new_b) = lake
        .tessera
        .import_file(&sample("skimage_ihc.png"))
        .unwrap();
    assert!(new_a && !new_b);
    assert_eq!(a.id, b.id);
    assert_eq!(lake.files_under("blobs"), 1);
}
