//! The `gpu` interface end to end: the first-party plugins on every backend this machine has
//! against scikit-image's values and against their own CPU code, device memory grants and their
//! release after a trap, and a plugin built against plugin API 0.1.0.

use tessera::gpu::{BackendChoice, Gpu};
use tessera::jobs::{self, RunOptions};
use tessera::runtime::{PluginError, RuntimeError};
use tessera::{Config, Error, Tessera};

use crate::support::{Lake, component, lake, measurement, plugin_dir, reference, sample, within};

/// The backends to run on: the host's CPU path always, wgpu when this machine has an adapter
/// (lavapipe counts). A missing adapter is printed, never silently skipped.
fn backends() -> Vec<BackendChoice> {
    let mut found = vec![BackendChoice::Cpu];
    match Gpu::open(BackendChoice::Wgpu) {
        Ok(_) => found.push(BackendChoice::Wgpu),
        Err(e) => {
            if std::env::var_os("TESSERA_TEST_REQUIRE_GPU_ADAPTER").is_some_and(|v| v == "1") {
                panic!("TESSERA_TEST_REQUIRE_GPU_ADAPTER=1 but {e}");
            }
            eprintln!("SKIPPED: the wgpu backend is not tested here, {e}");
        }
    }
    found
}

fn lake_on(backend: BackendChoice) -> Lake {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::new(dir.path());
    config.gpu_backend = Some(backend);
    let tessera = Tessera::open(config).expect("store opens");
    Lake { tessera, dir }
}

fn with(params: &[(&str, &str)]) -> RunOptions {
    RunOptions {
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..RunOptions::default()
    }
}

const SAMPLES: [&str; 3] = [
    "skimage_ihc.png",
    "cmu_small_region.svs",
    "openslide_boxes_pyramid.tiff",
];

#[test]
fn nuclei_detect_on_the_kernels_matches_scikit_image_and_its_cpu_code_on_every_backend() {
    let nuclei = &reference()["images"]["skimage_ihc.png"]["nuclei"];
    for backend in backends() {
        let lake = lake_on(backend);
        lake.install("nuclei-detect");
        for file in SAMPLES {
            let (image, _) = lake.tessera.import_file(&sample(file)).unwrap();
            let run = |device| {
                jobs::run_on_image(
                    &lake.tessera,
                    "nuclei-detect",
                    &image,
                    with(&[("device", device)]),
                )
                .unwrap_or_else(|e| panic!("{file} on {backend:?} with device={device}: {e}"))
            };
            let (cpu, gpu) = (run("cpu"), run("gpu"));
            let (count, cpu_count) = (
                measurement(&gpu, "nuclei-count"),
                measurement(&cpu, "nuclei-count"),
            );
            assert!(
                within(count, cpu_count, 0.02),
                "{file} on {backend:?}: {count} nuclei on the kernels, {cpu_count} in the plugin"
            );
            let (area, cpu_area) = (
                measurement(&gpu, "mean-nucleus-area"),
                measurement(&cpu, "mean-nucleus-area"),
            );
            assert!(
                within(area, cpu_area, 0.02),
                "{file} on {backend:?}: mean area {area} vs {cpu_area}"
            );
            assert_eq!(gpu.result.annotations.len() as f64, count);
            if file == "skimage_ihc.png" {
                let want = nuclei["count"].as_f64().unwrap();
                assert!(
                    within(count, want, 0.02),
                    "{backend:?}: count {count}, scikit-image {want}"
                );
                let want = nuclei["mean_area_px"].as_f64().unwrap();
                assert!(
                    within(area, want, 0.02),
                    "{backend:?}: mean area {area}, scikit-image {want}"
                );
            }
        }
    }
}

#[test]
fn tissue_detect_on_the_kernels_matches_scikit_image_and_its_cpu_code_on_every_backend() {
    let refs = reference();
    for backend in backends() {
        let lake = lake_on(backend);
        lake.install("tissue-detect");
        for file in SAMPLES {
            let (image, _) = lake.tessera.import_file(&sample(file)).unwrap();
            let run = |device| {
                jobs::run_on_image(
                    &lake.tessera,
                    "tissue-detect",
                    &image,
                    with(&[("device", device)]),
                )
                .unwrap_or_else(|e| panic!("{file} on {backend:?} with device={device}: {e}"))
            };
            let (cpu, gpu) = (run("cpu"), run("gpu"));
            let fraction = measurement(&gpu, "tissue-fraction");
            let cpu_fraction = measurement(&cpu, "tissue-fraction");
            assert!(
                within(fraction, cpu_fraction, 0.02),
                "{file} on {backend:?}: fraction {fraction} on the kernels, {cpu_fraction} in the plugin"
            );
            // Grey levels agree to 1e-6 (the device sums in f32, the SDK in f64), so the Otsu
            // threshold of the same histogram bin may move by as much.
            let (t, cpu_t) = (
                measurement(&gpu, "threshold"),
                measurement(&cpu, "threshold"),
            );
            assert!(
                (t - cpu_t).abs() <= 1e-6,
                "{file} on {backend:?}: threshold {t} vs {cpu_t}"
            );
            let key = match file {
                "skimage_ihc.png" => Some("skimage_ihc.png"),
                "cmu_small_region.svs" => Some("cmu_small_region.svs#level0"),
                _ => None,
            };
            if let Some(key) = key {
                let want = refs["images"][key]["grayscale"]["tissue_fraction_float"]
                    .as_f64()
                    .unwrap();
                assert!(
                    within(fraction, want, 0.02),
                    "{file} on {backend:?}: {fraction} vs {want}"
                );
            }
        }
    }
}

/// Runs the GPU fixture in `mode` on the IHC sample.
fn hog(lake: &Lake, mode: &str) -> Result<jobs::RunOutcome, Error> {
    let (image, _) = lake
        .tessera
        .import_file(&sample("skimage_ihc.png"))
        .unwrap();
    jobs::run_on_image(
        &lake.tessera,
        "fixture-gpu-hog",
        &image,
        with(&[("mode", mode)]),
    )
}

#[test]
fn tensors_held_at_a_trap_are_freed_with_the_store() {
    for backend in backends() {
        let lake = lake_on(backend);
        lake.install("fixture-gpu-hog");
        let err = hog(&lake, "trap")
            .err()
            .unwrap_or_else(|| panic!("the fixture traps"));
        let Error::Runtime(RuntimeError::Trap { reason, .. }) = &err else {
            panic!("{backend:?}: expected a trap, got {err}");
        };
        // 1 MiB uploaded, 1 MiB blurred, 64x64 pixels read from the image: all alive at the panic.
        assert!(
            reason.contains(&format!(
                "holding {} bytes in 3 tensors",
                2 * (1 << 20) + 64 * 64 * 4
            )),
            "{backend:?}: {reason}"
        );
        let gpu = lake.tessera.runtime().gpu().unwrap();
        assert_eq!(
            gpu.bytes_in_use(),
            0,
            "{backend:?}: device memory after the trap"
        );
        // And the next call starts from nothing.
        let info = hog(&lake, "info").unwrap();
        assert_eq!(measurement(&info, "used-with-one"), f64::from(1 << 20));
        assert_eq!(measurement(&info, "used-after-drop"), 0.0);
        assert_eq!(measurement(&info, "grant"), f64::from(4 << 20));
        let is_gpu = backend != BackendChoice::Cpu;
        assert_eq!(measurement(&info, "is-gpu"), f64::from(u8::from(is_gpu)));
        assert_eq!(gpu.bytes_in_use(), 0);
    }
}

#[test]
fn device_memory_past_the_grant_is_denied_naming_it() {
    for backend in backends() {
        let lake = lake_on(backend);
        lake.install("fixture-gpu-hog");
        let err = hog(&lake, "exceed")
            .err()
            .unwrap_or_else(|| panic!("the grant runs out"));
        let Error::Runtime(RuntimeError::Plugin {
            error: PluginError::Denied(m),
            ..
        }) = &err
        else {
            panic!("{backend:?}: expected denied, got {err}");
        };
        assert!(
            m.contains("device memory grant of 4194304 bytes exceeded: 4194304 bytes held"),
            "{backend:?}: {m}"
        );
        assert_eq!(lake.tessera.runtime().gpu().unwrap().bytes_in_use(), 0);
    }
}

#[test]
fn a_plugin_without_a_grant_gets_denied_from_every_gpu_call() {
    let lake = lake();
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(plugin_dir("fixture-gpu-hog").join("tessera.toml"))
        .unwrap()
        .replace("gpu-memory-mib = 4", "gpu-memory-mib = 0");
    std::fs::write(dir.path().join("tessera.toml"), manifest).unwrap();
    lake.tessera
        .install_plugin(dir.path(), Some(&component("fixture-gpu-hog")))
        .unwrap();
    let err = hog(&lake, "info")
        .err()
        .unwrap_or_else(|| panic!("no grant"));
    assert!(
        err.to_string()
            .contains("denied: this plugin has no GPU grant"),
        "{err}"
    );
}

#[test]
fn a_plugin_built_against_api_0_1_installs_and_runs() {
    let lake = lake();
    lake.install("fixture-api-0-1");
    let (_, loaded) = lake.tessera.plugin("fixture-api-0-1").unwrap();
    assert_eq!(loaded.api(), "0.1.0");
    let (image, _) = lake
        .tessera
        .import_file(&sample("skimage_ihc.png"))
        .unwrap();
    let outcome = jobs::run_on_image(
        &lake.tessera,
        "fixture-api-0-1",
        &image,
        with(&[("label", "middle")]),
    )
    .unwrap();
    let means = &reference()["images"]["skimage_ihc.png"]["decoded_rgb_channel_means"];
    let want: f64 = (0..3).map(|c| means[c].as_f64().unwrap()).sum::<f64>() / 3.0;
    assert!((measurement(&outcome, "mean") - want).abs() < 1e-6);
    assert_eq!(measurement(&outcome, "pixels"), 512.0 * 512.0);
    assert_eq!(outcome.result.annotations.len(), 1);
    assert_eq!(outcome.result.annotations[0].label, "middle");
    assert_eq!(outcome.record.api_version, "0.1.0");

    // The current SDK's plugins are 0.2.0 components.
    lake.install("hello-plugin");
    assert_eq!(
        lake.tessera.plugin("hello-plugin").unwrap().1.api(),
        "0.2.0"
    );
}

#[test]
fn a_manifest_that_misstates_its_api_version_is_refused() {
    let lake = lake();
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(plugin_dir("fixture-api-0-1").join("tessera.toml"))
        .unwrap()
        .replace("api = \"0.1.0\"", "api = \"0.2.0\"");
    std::fs::write(dir.path().join("tessera.toml"), manifest).unwrap();
    let err = lake
        .tessera
        .install_plugin(dir.path(), Some(&component("fixture-api-0-1")))
        .err()
        .unwrap_or_else(|| panic!("refused"));
    assert!(
        err.to_string()
            .contains("the manifest says plugin API 0.2.0, the component was built against 0.1.0"),
        "{err}"
    );
    assert!(lake.tessera.store().plugins().unwrap().is_empty());
}
