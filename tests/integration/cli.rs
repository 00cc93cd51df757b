//! The real binary, as a user runs it.

use std::process::{Command, Output};

use crate::support::{component, plugin_dir, root, sample, tessera_bin};

fn tessera(data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(tessera_bin())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .current_dir(root())
        .output()
        .expect("tessera runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn run_on_a_file_imports_it_and_writes_geojson() {
    let data = tempfile::tempdir().unwrap();
    let hello = component("hello-plugin");
    let install = tessera(
        data.path(),
        &[
            "plugin",
            "install",
            "--allow-unsigned",
            "--yes",
            plugin_dir("hello-plugin").to_str().unwrap(),
            "--component",
            hello.to_str().unwrap(),
        ],
    );
    assert!(install.status.success(), "{}", text(&install.stderr));

    let out = data.path().join("hello.geojson");
    let run = tessera(
        data.path(),
        &[
            "run",
            "hello-plugin",
            sample("skimage_ihc.png").to_str().unwrap(),
            "--param",
            "label=middle",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["features"][0]["properties"]["label"], "middle");
    assert!(text(&run.stdout).contains("width"), "{}", text(&run.stdout));

    let list = tessera(data.path(), &["plugin", "list"]);
    assert!(
        text(&list.stdout).contains("hello-plugin 0.1.0"),
        "{}",
        text(&list.stdout)
    );
}

#[test]
fn errors_are_one_line_with_the_cause_and_a_failing_exit_code() {
    let data = tempfile::tempdir().unwrap();
    let run = tessera(data.path(), &["run", "no-such-plugin", "nothing.png"]);
    assert!(!run.status.success());
    let err = text(&run.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("no image `nothing.png`"), "{err}");
}

#[test]
fn the_demo_imports_installs_runs_and_prints_the_table() {
    let data = tempfile::tempdir().unwrap();
    let _ = crate::support::wasm_dir();
    let demo = tessera(data.path(), &["demo"]);
    let out = text(&demo.stdout);
    assert!(demo.status.success(), "{}\n{}", out, text(&demo.stderr));
    for needle in [
        "skimage_ihc.png",
        "cmu_small_region.svs",
        "openslide_boxes_pyramid.tiff",
        "TISSUE FRACTION",
        "GeoJSON results:",
        "nuclei-detect.geojson",
    ] {
        assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    }
}
