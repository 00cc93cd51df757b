//! Plugin packages: one file an admin installs.
//!
//! A package is a tar archive, gzip-compressed (`tessera plugin pack` writes it so; a plain tar
//! is read too), named `<id>-<version>.tpkg`, holding at its top level only:
//!
//! | entry | required | cap |
//! |---|---|---|
//! | `tessera.toml` | yes | [`MAX_MANIFEST_BYTES`] |
//! | `plugin.wasm` | yes | [`MAX_COMPONENT_BYTES`] |
//! | `README.md` | no | [`MAX_README_BYTES`] |
//! | `icon.png` | no | [`MAX_ICON_BYTES`] |
//! | `signature.json` | no (unsigned without it) | [`MAX_SIGNATURE_BYTES`] |
//!
//! Reading a package is reading hostile input. Every entry must be a regular file with one of
//! those names; absolute paths, `..`, folders, links, devices, duplicates, unknown names and
//! entries over their cap are refused with the reason, before anything is installed. The
//! compressed file itself is capped at [`MAX_PACKAGE_BYTES`], and each entry is read through a
//! cap, so a decompression bomb stops at the first oversize entry.
//!
//! The **contents digest** is the sha256 of a text listing, one line per present entry except
//! the signature, in the order of the table: `<sha256 of the entry> <name>\n`. The signature
//! (`signature.json`: algorithm, key id, signature in hex) is ed25519 over the 32 bytes of that
//! digest, so it covers the manifest, the component, the README and the icon, and nothing
//! depends on how the tar was laid out.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::{self, KeyFile, PublisherKey};
use super::{Manifest, ManifestError};
use crate::runtime::limits::MAX_COMPONENT_BYTES;

/// File extension of packages.
pub const PACKAGE_EXTENSION: &str = "tpkg";

/// Largest manifest: a manifest with many parameters is a few KiB.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 10;

/// Largest README shown to admins.
pub const MAX_README_BYTES: u64 = 256 << 10;

/// Largest icon.
pub const MAX_ICON_BYTES: u64 = 1 << 20;

/// Largest signature entry (it is about 200 bytes).
pub const MAX_SIGNATURE_BYTES: u64 = 4 << 10;

/// Largest package file, compressed: every entry at its cap plus tar headers.
pub const MAX_PACKAGE_BYTES: u64 =
    MAX_MANIFEST_BYTES + MAX_COMPONENT_BYTES + MAX_README_BYTES + MAX_ICON_BYTES + (64 << 10);

/// Entry names, in contents-digest order, with their caps.
const ENTRIES: [(&str, u64); 5] = [
    (MANIFEST_ENTRY, MAX_MANIFEST_BYTES),
    (COMPONENT_ENTRY, MAX_COMPONENT_BYTES),
    (README_ENTRY, MAX_README_BYTES),
    (ICON_ENTRY, MAX_ICON_BYTES),
    (SIGNATURE_ENTRY, MAX_SIGNATURE_BYTES),
];

/// The manifest entry.
pub const MANIFEST_ENTRY: &str = "tessera.toml";
/// The component entry.
pub const COMPONENT_ENTRY: &str = "plugin.wasm";
/// The optional README entry.
pub const README_ENTRY: &str = "README.md";
/// The optional icon entry.
pub const ICON_ENTRY: &str = "icon.png";
/// The signature entry.
pub const SIGNATURE_ENTRY: &str = "signature.json";

/// Why a package was refused.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The file could not be read or written.
    #[error("package {path}: {reason}")]
    Io {
        /// The package file.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// The archive breaks a rule.
    #[error("package {path}: {reason}")]
    Refused {
        /// The package file.
        path: String,
        /// Which entry and which rule.
        reason: String,
    },
    /// Its manifest is invalid.
    #[error("package {path}: {source}")]
    Manifest {
        /// The package file.
        path: String,
        /// The manifest problem.
        source: ManifestError,
    },
}

/// `signature.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SignatureEntry {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The publisher key that signed.
    pub key_id: String,
    /// The signature over the contents digest, hex.
    pub signature: String,
}

/// A package read into memory and checked for shape (not yet for trust or by the runtime).
#[derive(Clone, Debug)]
pub struct Package {
    /// The manifest text, as packed.
    pub manifest_text: String,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The component bytes.
    pub component: Vec<u8>,
    /// The README, if any.
    pub readme: Option<String>,
    /// The icon, if any.
    pub icon: Option<Vec<u8>>,
    /// The signature, if signed.
    pub signature: Option<SignatureEntry>,
}

/// Who vouches for a package, once checked against the trust store.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Signer {
    /// Signed by a trusted publisher key, and the signature matches the contents.
    Trusted {
        /// The key id.
        key_id: String,
        /// The name it was trusted under.
        name: String,
    },
    /// Signed by a key the trust store does not hold: the signature cannot be checked.
    UnknownKey {
        /// The key id named by the signature.
        key_id: String,
    },
    /// No signature.
    Unsigned,
}

impl Signer {
    /// Whether installing needs `--allow-unsigned`.
    pub fn is_trusted(&self) -> bool {
        matches!(self, Signer::Trusted { .. })
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Signer::Trusted { key_id, name } => format!("signed by {name} (key {key_id})"),
            Signer::UnknownKey { key_id } => format!("signed by untrusted key {key_id}"),
            Signer::Unsigned => "unsigned".to_string(),
        }
    }
}

impl Package {
    /// A package of these parts (used by `plugin pack`); the manifest is validated.
    pub fn new(
        manifest_text: String,
        component: Vec<u8>,
        readme: Option<String>,
        icon: Option<Vec<u8>>,
        shown: &str,
    ) -> Result<Package, PackageError> {
        let manifest = Manifest::parse(&manifest_text, MANIFEST_ENTRY).map_err(|source| {
            PackageError::Manifest {
                path: shown.to_string(),
                source,
            }
        })?;
        let package = Package {
            manifest_text,
            manifest,
            component,
            readme,
            icon,
            signature: None,
        };
        for (name, bytes) in package.entries() {
            let cap = ENTRIES.iter().find(|(n, _)| *n == name).map_or(0, |e| e.1);
            if bytes.len() as u64 > cap {
                return Err(PackageError::Refused {
                    path: shown.to_string(),
                    reason: format!("{name} has {} bytes, more than {cap}", bytes.len()),
                });
            }
        }
        Ok(package)
    }

    /// Reads and checks a package file.
    pub fn read(path: &Path) -> Result<Package, PackageError> {
        let shown = path.display().to_string();
        let io = |e: std::io::Error| PackageError::Io {
            path: shown.clone(),
            reason: e.to_string(),
        };
        let meta = std::fs::symlink_metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(PackageError::Refused {
                path: shown,
                reason: "not a regular file".into(),
            });
        }
        if meta.len() > MAX_PACKAGE_BYTES {
            return Err(PackageError::Refused {
                path: shown,
                reason: format!(
                    "{} bytes, more than the {MAX_PACKAGE_BYTES} a package may have",
                    meta.len()
                ),
            });
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(io)?
            .take(MAX_PACKAGE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        Package::from_bytes(&bytes, &shown)
    }

    /// Reads and checks a package held in memory; `shown` names it in errors.
    pub fn from_bytes(bytes: &[u8], shown: &str) -> Result<Package, PackageError> {
        let refused = |reason: String| PackageError::Refused {
            path: shown.to_string(),
            reason,
        };
        if bytes.len() as u64 > MAX_PACKAGE_BYTES {
            return Err(refused(format!(
                "more than the {MAX_PACKAGE_BYTES} bytes a package may have"
            )));
        }
        let gzip = bytes.starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn Read + '_> = if gzip {
            Box::new(flate2::read::GzDecoder::new(bytes))
        } else {
            Box::new(bytes)
        };
        let parts = read_entries(reader).map_err(refused)?;

        let take = |name: &str| parts.iter().find(|(n, _)| n == name).map(|p| p.1.clone());
        let text = |name: &str, b: Vec<u8>| {
            String::from_utf8(b).map_err(|_| refused(format!("{name} is not UTF-8 text")))
        };
        let manifest_text = text(
            MANIFEST_ENTRY,
            take(MANIFEST_ENTRY).ok_or_else(|| refused(format!("no {MANIFEST_ENTRY}")))?,
        )?;
        let component =
            take(COMPONENT_ENTRY).ok_or_else(|| refused(format!("no {COMPONENT_ENTRY}")))?;
        let readme = take(README_ENTRY)
            .map(|b| text(README_ENTRY, b))
            .transpose()?;
        let signature = take(SIGNATURE_ENTRY)
            .map(|b| {
                serde_json::from_slice::<SignatureEntry>(&b)
                    .map_err(|e| refused(format!("{SIGNATURE_ENTRY}: {e}")))
            })
            .transpose()?;
        let mut package = Package::new(manifest_text, component, readme, take(ICON_ENTRY), shown)?;
        package.signature = signature;
        Ok(package)
    }

    /// The entries the contents digest covers, in order, present ones only.
    fn entries(&self) -> Vec<(&'static str, &[u8])> {
        let mut entries = vec![
            (MANIFEST_ENTRY, self.manifest_text.as_bytes()),
            (COMPONENT_ENTRY, &self.component[..]),
        ];
        if let Some(readme) = &self.readme {
            entries.push((README_ENTRY, readme.as_bytes()));
        }
        if let Some(icon) = &self.icon {
            entries.push((ICON_ENTRY, &icon[..]));
        }
        entries
    }

    /// The sha256 of the contents listing (see the module docs): what a signature covers.
    pub fn contents_digest(&self) -> [u8; 32] {
        let mut listing = String::new();
        for (name, bytes) in self.entries() {
            listing.push_str(&crate::runtime::cache::sha256_hex(bytes));
            listing.push(' ');
            listing.push_str(name);
            listing.push('\n');
        }
        Sha256::digest(listing.as_bytes()).into()
    }

    /// The contents digest in hex.
    pub fn contents_digest_hex(&self) -> String {
        hex::encode(self.contents_digest())
    }

    /// Signs the package with a secret key file, replacing any earlier signature.
    pub fn sign(&mut self, secret: &KeyFile) -> Result<(), String> {
        let key = keys::signing_key(secret)?;
        self.signature = Some(SignatureEntry {
            algorithm: keys::ALGORITHM.to_string(),
            key_id: secret.key_id.clone(),
            signature: keys::sign(&key, &self.contents_digest()),
        });
        Ok(())
    }

    /// Checks the signature against the trusted keys. A signature by a trusted key that does
    /// not match the contents is an error whatever the caller allows: the package was altered.
    pub fn verify(&self, trusted: &[PublisherKey]) -> Result<Signer, String> {
        let Some(sig) = &self.signature else {
            return Ok(Signer::Unsigned);
        };
        if sig.algorithm != keys::ALGORITHM {
            return Err(format!(
                "signature algorithm `{}`, only {} is supported",
                sig.algorithm,
                keys::ALGORITHM
            ));
        }
        let Some(key) = trusted.iter().find(|k| k.key_id == sig.key_id) else {
            return Ok(Signer::UnknownKey {
                key_id: sig.key_id.clone(),
            });
        };
        let public = keys::verifying_key(&key.public_key)?;
        keys::verify(&public, &self.contents_digest(), &sig.signature).map_err(|e| {
            format!(
                "{e} (key {} of {}): the package was altered after signing",
                key.key_id, key.name
            )
        })?;
        Ok(Signer::Trusted {
            key_id: key.key_id.clone(),
            name: key.name.clone(),
        })
    }

    /// The package as gzip-compressed tar bytes, entries in a fixed order with fixed metadata
    /// so the same contents always give the same file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(encoder);
        let signature = self
            .signature
            .as_ref()
            .map(serde_json::to_vec_pretty)
            .transpose()
            .map_err(|e| e.to_string())?;
        let mut entries = self.entries();
        if let Some(sig) = &signature {
            entries.push((SIGNATURE_ENTRY, sig));
        }
        for (name, bytes) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            builder
                .append_data(&mut header, name, bytes)
                .map_err(|e| format!("cannot add {name}: {e}"))?;
        }
        builder
            .into_inner()
            .and_then(|gz| gz.finish())
            .map_err(|e| e.to_string())
    }

    /// Writes the package file (to a temporary name first, then renamed into place).
    pub fn write(&self, path: &Path) -> Result<(), PackageError> {
        let shown = path.display().to_string();
        let bytes = self.to_bytes().map_err(|reason| PackageError::Io {
            path: shown.clone(),
            reason,
        })?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                PackageError::Io {
                    path: shown,
                    reason: e.to_string(),
                }
            })
    }

    /// The conventional file name, `<id>-<version>.tpkg`.
    pub fn file_name(&self) -> String {
        let p = &self.manifest.plugin;
        format!("{}-{}.{PACKAGE_EXTENSION}", p.id, p.version)
    }
}

/// Reads every tar entry, enforcing the rules of the module docs.
fn read_entries(reader: impl Read) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut archive = tar::Archive::new(reader);
    let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("not a readable tar archive: {e}"))?;
        let raw = entry.path_bytes();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let shown = super::super::runtime::printable(&name, 200);

        if name.starts_with('/') || name.starts_with('\\') || name.contains(':') {
            return Err(format!("entry `{shown}` has an absolute path"));
        }
        if name.split(['/', '\\']).any(|c| c == "..") {
            return Err(format!("entry `{shown}` has a `..` path"));
        }
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            let what = if kind.is_symlink() || kind.is_hard_link() {
                "a link"
            } else if kind.is_dir() {
                "a folder"
            } else {
                "not a regular file"
            };
            return Err(format!(
                "entry `{shown}` is {what}; only plain files are allowed"
            ));
        }
        let Some(&(known, cap)) = ENTRIES.iter().find(|(n, _)| *n == name) else {
            let allowed = ENTRIES.map(|e| e.0).join(", ");
            return Err(format!(
                "unexpected entry `{shown}`; a package holds only {allowed}"
            ));
        };
        if parts.iter().any(|(n, _)| n == known) {
            return Err(format!("entry `{known}` appears twice"));
        }
        let declared = entry.header().size().unwrap_or(u64::MAX);
        if declared > cap {
            return Err(format!(
                "entry `{known}` has {declared} bytes, more than its limit of {cap}"
            ));
        }
        let mut bytes = Vec::new();
        entry
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read entry `{known}`: {e}"))?;
        if bytes.len() as u64 > cap {
            return Err(format!(
                "entry `{known}` is more than its limit of {cap} bytes"
            ));
        }
        parts.push((known.to_string(), bytes));
    }
    Ok(parts)
}
