//! The first-party plugins against scikit-image's values on the bundled samples.

use tessera::jobs::{self, RunOptions};

use crate::support::{self, lake, measurement, reference, sample, within};

#[test]
fn nuclei_detect_matches_scikit_image_on_the_ihc_sample() {
    let lake = lake();
    lake.install("nuclei-detect");
    let (image, _) = lake
        .tessera
        .import_file(&sample("skimage_ihc.png"))
        .unwrap();

    let outcome = jobs::run_on_image(
        &lake.tessera,
        "nuclei-detect",
        &image,
        RunOptions::default(),
    )
    .unwrap();

    let expected = &reference()["images"]["skimage_ihc.png"]["nuclei"];
    let count = measurement(&outcome, "nuclei-count");
    let mean = measurement(&outcome, "mean-nucleus-area");
    let want_count = expected["count"].as_f64().unwrap();
    let want_mean = expected["mean_area_px"].as_f64().unwrap();
    assert!(
        within(count, want_count, 0.02),
        "count {count}, scikit-image {want_count}"
    );
    assert!(
        within(mean, want_mean, 0.02),
        "mean area {mean}, scikit-image {want_mean}"
    );
    assert_eq!(outcome.result.annotations.len() as f64, count);
}

#[test]
fn tissue_detect_matches_scikit_image_on_the_png_and_the_svs() {
    let lake = lake();
    lake.install("tissue-detect");
    let refs = reference();
    for (file, key) in [
        ("skimage_ihc.png", "skimage_ihc.png"),
        ("cmu_small_region.svs", "cmu_small_region.svs#level0"),
    ] {
        let (image, _) = lake.tessera.import_file(&sample(file)).unwrap();
        let outcome = jobs::run_on_image(
            &lake.tessera,
            "tissue-detect",
            &image,
            RunOptions::default(),
        )
        .unwrap();
        let fraction = measurement(&outcome, "tissue-fraction");
        let want = refs["images"][key]["grayscale"]["tissue_fraction_float"]
            .as_f64()
            .unwrap();
        assert!(
            within(fraction, want, 0.02),
            "{file}: fraction {fraction}, scikit-image {want}"
        );
        assert!(
            !outcome.result.annotations.is_empty(),
            "{file}: tissue outlines expected"
        );
    }
}

#[test]
fn results_carry_their_provenance_and_a_geojson_feature_per_nucleus() {
    let lake = lake();
    lake.install("nuclei-detect");
    let (image, _) = lake
        .tessera
        .import_file(&sample("skimage_ihc.png"))
        .unwrap();
    let options = RunOptions {
        params: vec![
            ("sigma".into(), "2.0".into()),
            ("min-area".into(), "50".into()),
        ],
        ..RunOptions::default()
    };
    let outcome = jobs::run_on_image(&lake.tessera, "nuclei-detect", &image, options).unwrap();

    let r = &outcome.record;
    assert_eq!(r.plugin_id, "nuclei-detect");
    assert_eq!(r.api_version, "0.2.0");
    assert_eq!(r.image_digest, image.digest);
    assert_eq!(r.params["sigma"], 2.0);
    assert_eq!(r.params["min-area"], 50);
    assert_eq!(r.host_version, tessera::HOST_VERSION);
    assert_eq!(lake.tessera.store().results().unwrap().len(), 1);

    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&outcome.geojson_path).unwrap()).unwrap();
    assert_eq!(doc["type"], "FeatureCollection");
    let features = doc["features"].as_array().unwrap();
    assert_eq!(features.len() as u64, r.annotation_count);
    assert_eq!(features[0]["geometry"]["type"], "Point");
    assert!(features[0]["properties"]["area"].as_f64().unwrap() >= 50.0);
}

#[test]
fn a_parameter_out_of_range_is_refused_before_the_plugin_runs() {
    let lake = lake();
    lake.install("nuclei-detect");
    let (image, _) = lake
        .tessera
        .import_file(&sample("skimage_ihc.png"))
        .unwrap();
    let options = RunOptions {
        params: vec![("sigma".into(), "100".into())],
        ..RunOptions::default()
    };
    let err = jobs::run_on_image(&lake.tessera, "nuclei-detect", &image, options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "nuclei-detect: parameter `sigma` is 100, expected 0.1 to 10"
    );
    assert!(lake.tessera.store().results().unwrap().is_empty());
}

#[test]
fn the_hello_plugin_reports_the_image_size_on_a_tiled_pyramid() {
    let lake = lake();
    lake.install("hello-plugin");
    let (image, _) = lake
        .tessera
        .import_file(&sample("openslide_boxes_pyramid.tiff"))
        .unwrap();
    assert_eq!(image.info.levels.len(), 4);
    let outcome =
        jobs::run_on_image(&lake.tessera, "hello-plugin", &image, RunOptions::default()).unwrap();
    assert_eq!(measurement(&outcome, "width"), 300.0);
    assert_eq!(measurement(&outcome, "height"), 250.0);
    assert_eq!(outcome.result.annotations[0].label, "centre");
}

#[test]
fn progress_reaches_the_caller() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let lake = lake();
    lake.install("nuclei-detect");
    let (image, _) = lake
        .tessera
        .import_file(&sample("cmu_small_region.svs"))
        .unwrap();
    let last = Arc::new(AtomicU64::new(0));
    let seen = last.clone();
    let options = RunOptions {
        progress: Some(Arc::new(move |done, total| {
            assert!(done <= total);
            seen.store(done * 100 / total.max(1), Ordering::Relaxed);
        })),
        ..RunOptions::default()
    };
    jobs::run_on_image(&lake.tessera, "nuclei-detect", &image, options).unwrap();
    assert_eq!(last.load(Ordering::Relaxed), 100);
    let _ = support::wasm_dir();
}
