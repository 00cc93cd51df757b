//! `tessera plugin new`: a plugin crate that builds for wasm32-wasip2 and passes its own
//! `cargo test` as written.
//!
//! The crate depends on `tessera-sdk` by path (the SDK is not published): the SDK folder of the
//! source tree this binary was built from, or the one given with `--sdk`. When that tree has a
//! `Cargo.lock`, it is copied so the new crate resolves the same dependency versions as the
//! SDK's own tests (and builds offline from the same cache). The crate has an empty
//! `[workspace]` table so it stands alone even when created inside another workspace.
//!
//! The algorithm template is the example of `sdk/README.md` (a test keeps the two identical).

use std::path::{Path, PathBuf};

use super::HOST_API_VERSION;
use super::manifest::{MAX_ID_LEN, PluginKind};

/// The SDK folder of the source tree this binary was built from.
pub fn default_sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .join("sdk")
}

/// The `src/lib.rs` of a new algorithm, for a crate named `name`.
pub fn algorithm_lib(name: &str) -> String {
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    ALGORITHM_LIB.replace("Brightness", &type_name)
}

const ALGORITHM_LIB: &str = r#"use tessera_sdk::{Algorithm, Error, ImageSource, Input, Measurement, Output, ParamSpec};

struct Brightness;

/// Mean grey level (0 to 1) of the coarsest pyramid level, times `scale`. Written against
/// `ImageSource` so `cargo test` can run it on an in-memory image.
fn brightness(image: &impl ImageSource, scale: f64) -> Result<f64, Error> {
    let coarsest = image.info().levels.len() as u32 - 1;
    let pixels = image.read_level(coarsest)?;
    let grey = tessera_sdk::ops::rgb_to_gray(&pixels.data);
    let mean = grey.iter().map(|&g| f64::from(g)).sum::<f64>() / grey.len().max(1) as f64;
    Ok(mean * scale)
}

impl Algorithm for Brightness {
    const NAME: &'static str = "Brightness";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Mean grey level of the coarsest pyramid level";

    fn params() -> Vec<ParamSpec> {
        vec![ParamSpec::float("scale", "Multiplies the result", 1.0, 0.0, 10.0)]
    }

    fn run(input: Input) -> Result<Output, Error> {
        let value = brightness(&input.image, input.params.float("scale")?)?;
        Ok(Output::new().measurement(Measurement::new("brightness", value)))
    }
}

tessera_sdk::export_algorithm!(Brightness);

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_sdk::{MemoryImage, RgbImage};

    #[test]
    fn a_white_image_is_fully_bright() {
        let white = RgbImage::new(8, 8, vec![255; 8 * 8 * 3]).unwrap();
        let value = brightness(&MemoryImage::new(white), 2.0).unwrap();
        assert!((value - 2.0).abs() < 1e-6, "{value}");
    }
}
"#;

fn manifest(name: &str) -> String {
    format!(
        r#"[plugin]
id = "{name}"
name = "Brightness"
version = "0.1.0"
kind = "algorithm"
api = "{HOST_API_VERSION}"
description = "Mean grey level of the coarsest pyramid level"

[limits]
memory-mib = 128      # at most 4096
time-seconds = 30     # at most 3600

[grants]
data = "image"        # or "project"
write = false
gpu-memory-mib = 0

[[parameters]]
name = "scale"
type = "float"        # int, float, flag, text, choice
default = 1.0
min = 0.0
max = 10.0
description = "Multiplies the result"
"#
    )
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    let sdk = sdk.display().to_string().replace('\\', "/");
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
tessera-sdk = {{ path = "{sdk}" }}

# A crate of its own, even inside another workspace.
[workspace]

[profile.release]
opt-level = 3
debug = false
strip = "debuginfo"
"#
    )
}

const CARGO_CONFIG: &str = r#"[target.wasm32-wasip2]
rustflags = ["-C", "target-feature=+simd128"]
"#;

fn readme(name: &str) -> String {
    format!(
        "# {name}\n\nA tessera algorithm.\n\n```sh\ncargo test                      # the analysis, natively\n\
         tessera plugin build            # the component, for wasm32-wasip2\n\
         tessera plugin test --samples   # run it on the bundled sample images\n\
         tessera plugin pack             # {name}-0.1.0.tpkg\n```\n"
    )
}

/// Creates the crate `dir` (which must not exist) for plugin `name`; returns the files
/// written, relative to `dir`.
pub fn create(dir: &Path, name: &str, kind: PluginKind, sdk: &Path) -> Result<Vec<String>, String> {
    let name_ok = !name.is_empty()
        && name.len() <= MAX_ID_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !name_ok {
        return Err(format!(
            "`{name}` is not a plugin id: 1 to {MAX_ID_LEN} lowercase letters, digits or `-`, \
             starting with a letter"
        ));
    }
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let sdk = sdk
        .canonicalize()
        .map_err(|e| format!("SDK folder {}: {e}; hint: pass --sdk PATH", sdk.display()))?;
    if !sdk.join("Cargo.toml").is_file() {
        return Err(format!(
            "{} is not the tessera-sdk crate; hint: pass --sdk PATH",
            sdk.display()
        ));
    }
    let lib = match kind {
        PluginKind::Algorithm => algorithm_lib(name),
    };

    let mut files = vec![
        ("Cargo.toml", cargo_toml(name, &sdk)),
        ("tessera.toml", manifest(name)),
        ("src/lib.rs", lib),
        (".cargo/config.toml", CARGO_CONFIG.to_string()),
        ("README.md", readme(name)),
        (".gitignore", "/target\n/*.tpkg\n".to_string()),
    ];
    if let Some(lock) = sdk
        .parent()
        .map(|p| p.join("Cargo.lock"))
        .and_then(|p| std::fs::read_to_string(p).ok())
    {
        files.push(("Cargo.lock", lock));
    }
    let write = || -> std::io::Result<()> {
        for (path, text) in &files {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, text)?;
        }
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_dir_all(dir);
        return Err(format!("cannot write {}: {e}", dir.display()));
    }
    Ok(files.iter().map(|(p, _)| p.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_guide_shows_the_scaffold_source() {
        let guide = include_str!("../../../sdk/README.md");
        let start = guide
            .find("```rust,ignore\n")
            .expect("the guide has a rust example")
            + "```rust,ignore\n".len();
        let len = guide[start..].find("```\n").expect("the example ends");
        assert_eq!(&guide[start..start + len], algorithm_lib("brightness"));
    }

    #[test]
    fn type_names_follow_the_plugin_id() {
        assert!(algorithm_lib("cell-count").contains("struct CellCount;"));
    }

    #[test]
    fn bad_names_and_existing_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = default_sdk_dir();
        let err = create(
            &dir.path().join("x"),
            "Bad_Name",
            PluginKind::Algorithm,
            &sdk,
        );
        assert!(err.unwrap_err().contains("not a plugin id"));
        let err = create(dir.path(), "fine", PluginKind::Algorithm, &sdk);
        assert!(err.unwrap_err().contains("already exists"));
    }
}
