//! The plugin author's commands: `plugin new`, `build`, `test`, `pack` and `sign`. None of
//! them touches the data directory; `test` runs in a throwaway one.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{Context, bail};
use tessera::jobs::{self, RunOptions};
use tessera::plugins::manifest::PluginKind;
use tessera::plugins::package::Package;
use tessera::plugins::params::split_assignment;
use tessera::plugins::{MANIFEST_FILE, Manifest, api_section, keys, scaffold};
use tessera::{Config, Tessera};

use super::output;

/// `plugin new`.
pub fn new(
    name: &str,
    kind: &str,
    sdk: Option<PathBuf>,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let kind = match kind {
        "algorithm" => PluginKind::Algorithm,
        other => bail!("kind `{other}` has no plugin API world in this host yet; kinds: algorithm"),
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let sdk = sdk.unwrap_or_else(scaffold::default_sdk_dir);
    let files = scaffold::create(&dir, name, kind, &sdk).map_err(anyhow::Error::msg)?;
    println!("created {kind} plugin `{name}` in {}", dir.display());
    for f in files {
        println!("  {f}");
    }
    println!(
        "next: cd {} && cargo test && tessera plugin build && tessera plugin test",
        dir.display()
    );
    Ok(())
}

fn read_manifest(dir: &Path) -> anyhow::Result<(String, Manifest)> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let manifest = Manifest::parse(&text, &path.display().to_string())?;
    Ok((text, manifest))
}

/// `plugin build`: cargo builds the crate for wasm32-wasip2, then the API version of the
/// manifest is embedded into the component in place. Returns the component's path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let (_, manifest) = read_manifest(dir)?;
    let cargo_toml = dir
        .join("Cargo.toml")
        .canonicalize()
        .with_context(|| format!("{} is not a cargo crate", dir.display()))?;

    // 1. cargo, reporting artifacts as JSON on stdout and diagnostics as usual on stderr.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&cargo_toml)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo")?;
    let mut component = None;
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.context("reading cargo's output")?;
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let ours = message["reason"] == "compiler-artifact"
                && message["manifest_path"].as_str().map(Path::new) == Some(&cargo_toml);
            if !ours {
                continue;
            }
            let wasm = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"));
            if let Some(wasm) = wasm {
                component = Some(PathBuf::from(wasm));
            }
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build failed for {}", dir.display());
    }
    let component = component.with_context(|| {
        format!(
            "cargo built no .wasm for {}; hint: the crate needs `crate-type = [\"cdylib\"]`",
            dir.display()
        )
    })?;

    // 2. The API version section.
    let bytes = std::fs::read(&component)
        .with_context(|| format!("cannot read {}", component.display()))?;
    let api = &manifest.plugin.api;
    let embedded = api_section::embed(&bytes, api)
        .map_err(|e| anyhow::anyhow!("{}: {e}", component.display()))?;
    if embedded != bytes {
        let tmp = component.with_extension("wasm.tmp");
        std::fs::write(&tmp, &embedded)
            .and_then(|()| std::fs::rename(&tmp, &component))
            .with_context(|| format!("cannot write {}", component.display()))?;
    }
    println!(
        "built {} {} for plugin API {api}: {} ({} KiB)",
        manifest.plugin.id,
        manifest.plugin.version,
        component.display(),
        embedded.len() / 1024
    );
    Ok(component)
}

fn component_of(dir: &Path, id: &str, given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    given
        .or_else(|| tessera::plugins::locate_component(dir, id))
        .with_context(|| {
            format!(
                "no component found for `{id}`; hint: run `tessera plugin build` in {} or pass \
                 --component FILE",
                dir.display()
            )
        })
}

/// `plugin pack`: manifest, component (with the API version embedded), README.md and
/// icon.png when the crate has them, in one `.tpkg`.
pub fn pack(dir: &Path, component: Option<PathBuf>, out: Option<PathBuf>) -> anyhow::Result<()> {
    let (text, manifest) = read_manifest(dir)?;
    let component = component_of(dir, &manifest.plugin.id, component)?;
    let bytes = std::fs::read(&component)
        .with_context(|| format!("cannot read {}", component.display()))?;
    let bytes = api_section::embed(&bytes, &manifest.plugin.api)
        .map_err(|e| anyhow::anyhow!("{}: {e}", component.display()))?;
    let readme = std::fs::read_to_string(dir.join("README.md")).ok();
    let icon = std::fs::read(dir.join("icon.png")).ok();
    let package = Package::new(text, bytes, readme, icon, &dir.display().to_string())?;
    let out = out.unwrap_or_else(|| dir.join(package.file_name()));
    package.write(&out)?;
    println!(
        "packed {} (contents {}), unsigned; hint: `tessera plugin sign {} --key KEY`",
        out.display(),
        &package.contents_digest_hex()[..16],
        out.display()
    );
    Ok(())
}

/// `plugin sign`.
pub fn sign(package_path: &Path, key: &Path) -> anyhow::Result<()> {
    let secret = keys::read(key, keys::SECRET_KIND)?;
    let mut package = Package::read(package_path)?;
    package.sign(&secret).map_err(anyhow::Error::msg)?;
    package.write(package_path)?;
    println!(
        "signed {} with key {} ({})",
        package_path.display(),
        secret.key_id,
        secret.name
    );
    Ok(())
}

/// `plugin test`: installs the crate's component into a throwaway store and runs it on each
/// image, printing the output, the time and the peak memory of each run.
pub fn test(
    dir: &Path,
    component: Option<PathBuf>,
    images: &[PathBuf],
    samples: Option<PathBuf>,
    params: &[String],
) -> anyhow::Result<()> {
    let (_, manifest) = read_manifest(dir)?;
    let id = manifest.plugin.id.clone();
    let component = component_of(dir, &id, component)?;
    let params = params
        .iter()
        .map(|p| split_assignment(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let files = if images.is_empty() {
        let samples = samples.unwrap_or_else(|| {
            scaffold::default_sdk_dir()
                .parent()
                .unwrap_or(Path::new("."))
                .join("examples/data")
        });
        super::image_files(&[samples])?
    } else {
        images.to_vec()
    };
    if files.is_empty() {
        bail!("no images to test on; hint: pass --image FILE");
    }

    let lake = tempfile::tempdir().context("cannot create a temporary data directory")?;
    let t = Tessera::open(Config::new(lake.path()))?;
    t.install_plugin(dir, Some(&component))?;
    let mut failed = 0;
    for file in &files {
        let run = || -> anyhow::Result<()> {
            let (image, _) = t.import_file(file)?;
            let options = RunOptions {
                params: params.clone(),
                progress: Some(Arc::new(|_, _| {})),
                ..RunOptions::default()
            };
            let outcome = jobs::run_on_image(&t, &id, &image, options)?;
            output::run_summary(&image, &outcome, None);
            println!(
                "  time {}  peak memory {:.1} MiB",
                output::human(outcome.elapsed),
                outcome.peak_memory_bytes as f64 / f64::from(1 << 20)
            );
            Ok(())
        };
        if let Err(e) = run() {
            failed += 1;
            output::error(&e.context(file.display().to_string()));
        }
    }
    if failed > 0 {
        bail!("{failed} of {} runs failed", files.len());
    }
    Ok(())
}
