//! Shared helpers: build the plugins and the binary from source once, open fresh stores.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tessera::{Config, Tessera};

/// Every wasm crate the tests need.
const WASM_CRATES: &[&str] = &[
    "nuclei-detect",
    "tissue-detect",
    "hello-plugin",
    "fixture-spin",
    "fixture-grow",
    "fixture-panic",
    "fixture-fs-snoop",
];

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The cargo target directory: `CARGO_TARGET_DIR` when the tests were started with one (the
/// build directory may then be elsewhere), else the one this test binary was built into.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("target/tmp has a parent")
            .to_path_buf(),
    }
}

fn cargo(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(root())
        .env("CARGO_TARGET_DIR", target_dir())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo {args:?} failed");
}

/// Builds every plugin and fixture for wasm32-wasip2 (a no-op when up to date).
pub fn wasm_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut args = vec!["build", "--release", "--target", "wasm32-wasip2", "--quiet"];
        for c in WASM_CRATES {
            args.extend(["-p", c]);
        }
        cargo(&args);
        target_dir().join("wasm32-wasip2").join("release")
    })
}

/// The `tessera` binary, built once. The build selects the whole workspace with all targets,
/// as `cargo test --workspace` does, so it reuses the dependencies the tests were built with.
pub fn tessera_bin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        cargo(&["build", "--workspace", "--all-targets", "--quiet"]);
        target_dir().join("debug").join("tessera")
    })
}

/// The component file of a wasm crate.
pub fn component(krate: &str) -> PathBuf {
    wasm_dir().join(format!("{}.wasm", krate.replace('-', "_")))
}

/// A sample image bundled with the repository.
pub fn sample(name: &str) -> PathBuf {
    root().join("examples").join("data").join(name)
}

/// Directory holding a plugin's manifest.
pub fn plugin_dir(krate: &str) -> PathBuf {
    let root = root();
    match krate {
        "hello-plugin" => root.join("examples/hello-plugin"),
        k if k.starts_with("fixture-") => root.join("tests/fixtures").join(&k[8..]),
        k => root.join("plugins").join(k),
    }
}

/// A store in a fresh temporary directory.
pub struct Lake {
    pub tessera: Tessera,
    pub dir: tempfile::TempDir,
}

pub fn lake() -> Lake {
    let dir = tempfile::tempdir().expect("temp dir");
    let tessera = Tessera::open(Config::new(dir.path())).expect("store opens");
    Lake { tessera, dir }
}

impl Lake {
    /// Installs a plugin built from source.
    pub fn install(&self, krate: &str) {
        self.tessera
            .install_plugin(&plugin_dir(krate), Some(&component(krate)))
            .unwrap_or_else(|e| panic!("installing {krate}: {e}"));
    }

    /// Files under `sub` of the data directory (recursively).
    pub fn files_under(&self, sub: &str) -> usize {
        count_files(&self.dir.path().join(sub))
    }
}

pub fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { count_files(&p) } else { 1 }
        })
        .sum()
}

/// The scikit-image reference values.
pub fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(sample("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("reference.json parses")
}

pub fn measurement(outcome: &tessera::jobs::RunOutcome, name: &str) -> f64 {
    outcome
        .record
        .measurements
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no measurement {name}"))
        .value
}

pub fn within(actual: f64, expected: f64, relative: f64) -> bool {
    (actual - expected).abs() <= relative * expected.abs()
}

/// A little-endian TIFF header and one IFD claiming `width` × `height` RGB pixels, no data.
pub fn huge_tiff_header(width: u32, height: u32) -> Vec<u8> {
    let mut b = b"II*\0".to_vec();
    b.extend(8u32.to_le_bytes());
    let entries: &[(u16, u16, u32, u32)] = &[
        (256, 4, 1, width),                                      // ImageWidth
        (257, 4, 1, height),                                     // ImageLength
        (258, 3, 1, 8),                                          // BitsPerSample
        (259, 3, 1, 1),                                          // Compression: none
        (262, 3, 1, 2),                                          // Photometric: RGB
        (273, 4, 1, 200),                                        // StripOffsets
        (277, 3, 1, 3),                                          // SamplesPerPixel
        (278, 4, 1, height),                                     // RowsPerStrip
        (279, 4, 1, width.wrapping_mul(height).wrapping_mul(3)), // StripByteCounts
    ];
    b.extend((entries.len() as u16).to_le_bytes());
    for &(tag, kind, count, value) in entries {
        b.extend(tag.to_le_bytes());
        b.extend(kind.to_le_bytes());
        b.extend(count.to_le_bytes());
        if kind == 3 {
            b.extend((value as u16).to_le_bytes());
            b.extend([0, 0]);
        } else {
            b.extend(value.to_le_bytes());
        }
    }
    b.extend(0u32.to_le_bytes());
    b
}
