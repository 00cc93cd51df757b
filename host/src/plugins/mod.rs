//! Plugin manifests, parameters, and the checks run before a plugin is installed.
//!
//! Installing is all-or-nothing: the manifest is validated, the component is compiled, linked
//! against the host's interfaces, instantiated once and asked to `describe` itself (a changed
//! function signature is only caught by a real instantiation), and its description is compared
//! with the manifest. Only then are the component blob and the plugin record written.

pub mod manifest;
pub mod params;

use std::path::{Path, PathBuf};

pub use manifest::{
    ApiVersion, HOST_API_VERSION, Manifest, ManifestError, ParamDecl, ParamType, PluginKind,
};

use crate::runtime::{ParamKind, ParamSpec, ParamValue, PluginInfo};

/// The manifest file name inside a plugin directory.
pub const MANIFEST_FILE: &str = "tessera.toml";

/// Finds a plugin's component: an explicit path, `<dir>/<crate>.wasm`, or the workspace's
/// `target/wasm32-wasip2/release/<crate>.wasm` above `dir` (for plugins built from source).
pub fn locate_component(dir: &Path, id: &str) -> Option<PathBuf> {
    let file = format!("{}.wasm", id.replace('-', "_"));
    let local = dir.join(&file);
    if local.is_file() {
        return Some(local);
    }
    let mut targets = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        targets.push(PathBuf::from(t));
    }
    let dir = dir.canonicalize().ok()?;
    targets.extend(dir.ancestors().map(|a| a.join("target")));
    targets
        .into_iter()
        .map(|t| t.join("wasm32-wasip2").join("release").join(&file))
        .find(|p| p.is_file())
}

/// Checks that what the component says about itself matches its manifest.
pub fn check_description(manifest: &Manifest, info: &PluginInfo) -> Result<(), String> {
    if info.version != manifest.plugin.version {
        return Err(format!(
            "the component reports version {}, the manifest says {}",
            info.version, manifest.plugin.version
        ));
    }
    for decl in &manifest.parameters {
        let Some(spec) = info.params.iter().find(|s| s.name == decl.name) else {
            return Err(format!(
                "the manifest declares parameter `{}` but the component does not",
                decl.name
            ));
        };
        if !same_param(decl, spec) {
            return Err(format!(
                "parameter `{}` differs: manifest has {} default {} range {:?}..{:?}, \
                 component has {:?} default {:?}",
                decl.name,
                manifest::type_name(decl.kind),
                decl.default,
                decl.min,
                decl.max,
                spec.kind,
                spec.default
            ));
        }
    }
    if let Some(extra) = info
        .params
        .iter()
        .find(|s| !manifest.parameters.iter().any(|d| d.name == s.name))
    {
        return Err(format!(
            "the component takes parameter `{}` that the manifest does not declare",
            extra.name
        ));
    }
    Ok(())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn same_param(decl: &ParamDecl, spec: &ParamSpec) -> bool {
    let num = |v: &toml::Value| v.as_float().or(v.as_integer().map(|i| i as f64));
    match (&spec.kind, &spec.default) {
        (ParamKind::Int(r), ParamValue::Int(d)) => {
            decl.kind == ParamType::Int
                && decl.min == Some(r.min as f64)
                && decl.max == Some(r.max as f64)
                && decl.default.as_integer() == Some(*d)
        }
        (ParamKind::Float(r), ParamValue::Float(d)) => {
            decl.kind == ParamType::Float
                && decl.min.is_some_and(|m| close(m, r.min))
                && decl.max.is_some_and(|m| close(m, r.max))
                && num(&decl.default).is_some_and(|v| close(v, *d))
        }
        (ParamKind::Flag, ParamValue::Flag(d)) => {
            decl.kind == ParamType::Flag && decl.default.as_bool() == Some(*d)
        }
        (ParamKind::Text, ParamValue::Text(d)) => {
            decl.kind == ParamType::Text && decl.default.as_str() == Some(d.as_str())
        }
        (ParamKind::Choice(c), ParamValue::Choice(d)) => {
            decl.kind == ParamType::Choice
                && &decl.choices == c
                && decl.default.as_str() == Some(d.as_str())
        }
        _ => false,
    }
}
