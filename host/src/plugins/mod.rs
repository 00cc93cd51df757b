//! Plugin manifests, parameters, and the checks run before a plugin is installed.
//!
//! Installing is all-or-nothing: the manifest is validated, the component is compiled, linked
//! against the host's interfaces, instantiated once and asked to `describe` itself (a changed
//! function signature is only caught by a real instantiation), and its description is compared
//! with the manifest. Only then are the component blob and the plugin record written.

pub mod admin;
pub mod api_section;
pub mod catalog;
pub mod grant;
pub mod keys;
pub mod manifest;
pub mod package;
pub mod params;
pub mod scaffold;

use std::path::{Path, PathBuf};

pub use manifest::{
    ApiVersion, HOST_API_VERSION, Manifest, ManifestError, ParamDecl, ParamType, PluginKind,
};

use crate::runtime::{ParamKind, ParamSpec, ParamValue, PluginInfo};

/// The manifest file name inside a plugin directory.
pub const MANIFEST_FILE: &str = "tessera.toml";

/// The names a plugin's component file may have: the crate name from `<dir>/Cargo.toml` (what
/// cargo calls the `.wasm`) and the plugin id, with `-` turned into `_` as cargo does.
pub fn component_names(dir: &Path, id: &str) -> Vec<String> {
    let mut names = Vec::new();
    let crate_name = std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|t| t.get("package")?.get("name")?.as_str().map(str::to_string));
    for name in crate_name.iter().map(String::as_str).chain([id]) {
        let file = format!("{}.wasm", name.replace('-', "_"));
        if !names.contains(&file) {
            names.push(file);
        }
    }
    names
}

/// Finds a plugin's component: `<dir>/<name>.wasm`, or the cargo build output
/// `target/wasm32-wasip2/release/<name>.wasm` in `CARGO_TARGET_DIR` or next to the `Cargo.toml`
/// of `dir` or of a folder above it (a plugin inside a workspace), for each of
/// [`component_names`].
pub fn locate_component(dir: &Path, id: &str) -> Option<PathBuf> {
    let names = component_names(dir, id);
    if let Some(local) = names.iter().map(|n| dir.join(n)).find(|p| p.is_file()) {
        return Some(local);
    }
    let mut targets = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        targets.push(PathBuf::from(t));
    }
    let dir = dir.canonicalize().ok()?;
    // Only folders that are cargo packages or workspaces: a stray `target/` higher up is not
    // this plugin's build output.
    targets.extend(
        dir.ancestors()
            .filter(|a| a.join("Cargo.toml").is_file())
            .map(|a| a.join("target")),
    );
    targets.iter().find_map(|t| {
        let release = t.join("wasm32-wasip2").join("release");
        names.iter().map(|n| release.join(n)).find(|p| p.is_file())
    })
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
                "parameter `{}` differs: the manifest has {}, the component has {}",
                decl.name,
                describe_decl(decl),
                describe_spec(spec)
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

fn describe_decl(decl: &ParamDecl) -> String {
    format!(
        "{} default {}{}",
        manifest::type_name(decl.kind),
        decl.default,
        decl.range_text()
    )
}

fn describe_spec(spec: &ParamSpec) -> String {
    let kind = match &spec.kind {
        ParamKind::Int(r) => format!("int in {}..={}", r.min, r.max),
        ParamKind::Float(r) => format!("float in {}..={}", r.min, r.max),
        ParamKind::Flag => "flag".to_string(),
        ParamKind::Text => "text".to_string(),
        ParamKind::Choice(c) => format!("choice of {}", c.join("|")),
    };
    format!("{kind} default {}", params::value_text(&spec.default))
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
