//! The plugin API version a component was built for, carried inside the component.
//!
//! `tessera plugin build` (and `pack`, when the component lacks it) appends a custom section
//! named [`API_SECTION`] whose contents are the version text, e.g. `0.1.0`, taken from the
//! manifest. Install checks it: it must agree with the manifest's `api`, and the host must
//! speak it. Custom sections do not change what a component does; wasmtime ignores them.

use wasm_encoder::ComponentSection;
use wasmparser::{Parser, Payload};

use super::manifest::{ApiVersion, HOST_API_VERSION};

/// Name of the custom section holding the API version.
pub const API_SECTION: &str = "tessera:api-version";

/// The API version embedded in a component, if any. Several sections that disagree, or one
/// that is not a version, are errors.
pub fn embedded(bytes: &[u8]) -> Result<Option<String>, String> {
    is_component(bytes)?;
    let mut found: Option<String> = None;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("not a valid WebAssembly binary: {e}"))?;
        let Payload::CustomSection(section) = payload else {
            continue;
        };
        if section.name() != API_SECTION {
            continue;
        }
        let text = std::str::from_utf8(section.data())
            .ok()
            .filter(|t| ApiVersion::parse(t).is_some())
            .ok_or_else(|| format!("its `{API_SECTION}` section is not a version"))?;
        match &found {
            Some(earlier) if earlier != text => {
                return Err(format!(
                    "it has two `{API_SECTION}` sections, {earlier} and {text}"
                ));
            }
            _ => found = Some(text.to_string()),
        }
    }
    Ok(found)
}

/// Appends the API version section to a component. A component that already carries the
/// same version is returned unchanged; another version is an error (rebuild it).
pub fn embed(bytes: &[u8], version: &str) -> Result<Vec<u8>, String> {
    match embedded(bytes)? {
        Some(v) if v == version => return Ok(bytes.to_vec()),
        Some(v) => {
            return Err(format!(
                "the component already says it was built for plugin API {v}, the manifest says \
                 {version}; hint: rebuild it"
            ));
        }
        None => {}
    }
    let mut out = bytes.to_vec();
    wasm_encoder::CustomSection {
        name: API_SECTION.into(),
        data: version.as_bytes().into(),
    }
    .append_to_component(&mut out);
    Ok(out)
}

/// Refuses anything but a component, naming what it is instead.
fn is_component(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("not a WebAssembly binary (missing the \\0asm header)".into());
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(
            "a core WebAssembly module, not a component; hint: build for wasm32-wasip2".into(),
        );
    }
    Ok(())
}

/// Checks the embedded version against the manifest's and the host's. `required` is false for
/// development installs from a source directory, whose component came straight from cargo.
pub fn check(bytes: &[u8], manifest_api: &str, required: bool) -> Result<(), String> {
    match embedded(bytes)? {
        None if required => Err(format!(
            "the component carries no `{API_SECTION}` section; hint: build it with `tessera \
             plugin build` or pack it with `tessera plugin pack`"
        )),
        None => Ok(()),
        Some(v) if v != manifest_api => Err(format!(
            "the component was built for plugin API {v}, its manifest says {manifest_api}"
        )),
        Some(v) => {
            let parsed = ApiVersion::parse(&v).unwrap_or(HOST_API_VERSION);
            if parsed.runs_on(&HOST_API_VERSION) {
                Ok(())
            } else {
                Err(format!(
                    "the component was built for plugin API {v}, this host speaks \
                     {HOST_API_VERSION} (and older {}.x minors)",
                    HOST_API_VERSION.major
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: the preamble of the component binary format.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn an_embedded_version_is_read_back_and_checked() {
        assert_eq!(embedded(EMPTY_COMPONENT).unwrap(), None);
        let with = embed(EMPTY_COMPONENT, "0.1.0").unwrap();
        assert_eq!(embedded(&with).unwrap().as_deref(), Some("0.1.0"));
        assert_eq!(embed(&with, "0.1.0").unwrap(), with);
        assert!(embed(&with, "0.2.0").is_err());
        assert!(check(&with, "0.1.0", true).is_ok());
        let err = check(&with, "0.1.1", true).unwrap_err();
        assert!(err.contains("0.1.0") && err.contains("0.1.1"), "{err}");
        assert!(check(EMPTY_COMPONENT, "0.1.0", true).is_err());
        assert!(check(EMPTY_COMPONENT, "0.1.0", false).is_ok());
    }

    #[test]
    fn a_version_the_host_does_not_speak_names_both() {
        let future = embed(EMPTY_COMPONENT, "1.0.0").unwrap();
        let err = check(&future, "1.0.0", true).unwrap_err();
        assert!(
            err.contains("1.0.0") && err.contains(&HOST_API_VERSION.to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_core_module_cannot_carry_the_section() {
        let err = embed(b"\0asm\x01\0\0\0", "0.1.0").unwrap_err();
        assert!(err.contains("core WebAssembly module"), "{err}");
    }
}
