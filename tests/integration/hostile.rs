//! Hostile and broken plugins: each fails with a clear error, nothing half-written is left, and
//! the same engine runs a good plugin right after.

use tessera::Error;
use tessera::jobs::{self, RunOptions};
use tessera::runtime::RuntimeError;

use crate::support::{Lake, component, lake, plugin_dir, sample};

/// Runs `krate` on the IHC sample and returns the error it must fail with.
fn run_failing(lake: &Lake, krate: &str) -> Error {
    lake.install(krate);
    let (image, _) = lake
        .tessera
        .import_file(&sample("skimage_ihc.png"))
        .unwrap();
    jobs::run_on_image(&lake.tessera, krate, &image, RunOptions::default())
        .err()
        .unwrap_or_else(|| panic!("{krate} should fail"))
}

/// The host still serves: a good plugin runs on the same engine, and the failed run left no
/// result behind.
fn assert_host_still_serves(lake: &Lake) {
    assert!(lake.tessera.store().results().unwrap().is_empty());
    lake.install("hello-plugin");
    let (image, _) = lake
        .tessera
        .import_file(&sample("skimage_ihc.png"))
        .unwrap();
    jobs::run_on_image(&lake.tessera, "hello-plugin", &image, RunOptions::default())
        .expect("a good plugin runs after a hostile one");
    assert_eq!(lake.tessera.store().results().unwrap().len(), 1);
}

#[test]
fn an_infinite_loop_is_stopped_at_its_time_limit() {
    let lake = lake();
    let err = run_failing(&lake, "fixture-spin");
    assert!(
        matches!(
            err,
            Error::Runtime(RuntimeError::Timeout { limit_ms: 1000, .. })
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "plugin `fixture-spin` exceeded its time limit of 1000 ms in `run`"
    );
    assert_host_still_serves(&lake);
}

#[test]
fn unbounded_memory_growth_is_stopped_at_the_memory_cap() {
    let lake = lake();
    let err = run_failing(&lake, "fixture-grow");
    assert!(
        matches!(
            err,
            Error::Runtime(RuntimeError::Memory { limit_mib: 64, .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("exceeded its memory limit of 64 MiB"),
        "{err}"
    );
    assert_host_still_serves(&lake);
}

#[test]
fn a_panic_is_reported_with_its_message() {
    let lake = lake();
    let err = run_failing(&lake, "fixture-panic");
    let text = err.to_string();
    assert!(
        matches!(err, Error::Runtime(RuntimeError::Trap { .. })),
        "{text}"
    );
    assert!(
        text.contains("plugin `fixture-panic` crashed in `run`"),
        "{text}"
    );
    assert!(text.contains("fixture panicked on purpose"), "{text}");
    assert_host_still_serves(&lake);
}

#[test]
fn a_plugin_importing_the_filesystem_is_refused_at_install() {
    let lake = lake();
    let err = lake
        .tessera
        .install_plugin(
            &plugin_dir("fixture-fs-snoop"),
            Some(&component("fixture-fs-snoop")),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Runtime(RuntimeError::Link { .. })),
        "{text}"
    );
    assert!(text.contains("wasi:filesystem"), "{text}");
    assert!(lake.tessera.store().plugins().unwrap().is_empty());
    assert_eq!(lake.files_under("blobs"), 0);
    assert_host_still_serves(&lake);
}

#[test]
fn random_bytes_named_wasm_are_refused_and_nothing_is_stored() {
    let lake = lake();
    let junk = lake.dir.path().join("junk.wasm");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&junk, bytes).unwrap();
    let err = lake
        .tessera
        .install_plugin(&plugin_dir("hello-plugin"), Some(&junk))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `hello-plugin` is not a valid component: not a WebAssembly binary (missing the \\0asm header)"
    );
    assert!(lake.tessera.store().plugins().unwrap().is_empty());
    assert_eq!(lake.files_under("blobs"), 0);
    assert_host_still_serves(&lake);
}

#[test]
fn a_core_module_is_refused_with_a_hint() {
    let lake = lake();
    let module = lake.dir.path().join("core.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let err = lake
        .tessera
        .install_plugin(&plugin_dir("hello-plugin"), Some(&module))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("core WebAssembly module, not a component"),
        "{err}"
    );
    assert!(lake.tessera.store().plugins().unwrap().is_empty());
}

#[test]
fn a_manifest_that_disagrees_with_its_component_is_refused() {
    let lake = lake();
    let dir = lake.dir.path().join("liar");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = std::fs::read_to_string(plugin_dir("nuclei-detect").join("tessera.toml"))
        .unwrap()
        .replace("default = 1.0", "default = 2.0");
    std::fs::write(dir.join("tessera.toml"), manifest).unwrap();
    let err = lake
        .tessera
        .install_plugin(&dir, Some(&component("nuclei-detect")))
        .unwrap_err();
    assert!(
        err.to_string().contains("parameter `sigma` differs"),
        "{err}"
    );
    assert!(lake.tessera.store().plugins().unwrap().is_empty());
}
