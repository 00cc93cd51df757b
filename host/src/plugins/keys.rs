//! Publisher keys: ed25519 key pairs that sign packages, and the key files `tessera key new`
//! writes.
//!
//! A key is known by its id, the first 16 hex digits of the sha256 of its 32-byte public key:
//! short enough to read aloud when an admin checks it with a publisher, long enough that two
//! keys never share one by accident. Signatures name the id; the host verifies them with the
//! public key from its own trust store, never with a key carried inside the package.
//!
//! Both files are small JSON documents so they can be inspected and copied as text:
//!
//! ```json
//! {"kind": "tessera-public-key", "algorithm": "ed25519", "name": "acme", "key-id": "…", "key": "<64 hex>"}
//! {"kind": "tessera-secret-key", "algorithm": "ed25519", "name": "acme", "key-id": "…", "key": "<64 hex>"}
//! ```

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The only signature algorithm.
pub const ALGORITHM: &str = "ed25519";

/// `kind` of a public key file.
pub const PUBLIC_KIND: &str = "tessera-public-key";

/// `kind` of a secret key file.
pub const SECRET_KIND: &str = "tessera-secret-key";

/// Largest key file read: a key file is a few hundred bytes, anything larger is not one.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// A key file as stored on disk (public or secret, told apart by `kind`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyFile {
    /// [`PUBLIC_KIND`] or [`SECRET_KIND`].
    pub kind: String,
    /// Always [`ALGORITHM`].
    pub algorithm: String,
    /// Who the key belongs to, as its owner named it.
    pub name: String,
    /// [`key_id`] of the public key.
    pub key_id: String,
    /// The 32 key bytes in hex: the public key, or the secret seed.
    pub key: String,
}

/// A publisher's public key, as the trust store keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublisherKey {
    /// [`key_id`] of `public_key`.
    pub key_id: String,
    /// The name given when it was trusted.
    pub name: String,
    /// The 32-byte public key in hex.
    pub public_key: String,
    /// When it was added (RFC 3339, UTC).
    pub added_at: String,
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("key file {path}: {problem}")]
pub struct KeyError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// The id of a public key: the first 16 hex digits of its sha256.
pub fn key_id(public: &VerifyingKey) -> String {
    crate::runtime::cache::sha256_hex(public.as_bytes())[..16].to_string()
}

/// A fresh key pair named `name`: (secret file, public file).
pub fn generate(name: &str) -> Result<(KeyFile, KeyFile), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness from the system: {e}"))?;
    let secret = SigningKey::from_bytes(&seed);
    let public = secret.verifying_key();
    let id = key_id(&public);
    let file = |kind: &str, key: &[u8]| KeyFile {
        kind: kind.to_string(),
        algorithm: ALGORITHM.to_string(),
        name: name.to_string(),
        key_id: id.clone(),
        key: hex::encode(key),
    };
    Ok((
        file(SECRET_KIND, secret.as_bytes()),
        file(PUBLIC_KIND, public.as_bytes()),
    ))
}

/// Writes a key file that must not exist yet; a secret key is readable by its owner only.
pub fn write(path: &Path, key: &KeyFile) -> Result<(), KeyError> {
    use std::io::Write;
    let error = |problem: String| KeyError {
        path: path.display().to_string(),
        problem,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if key.kind == SECRET_KIND {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            error("already exists; hint: choose another name or move the old key away".into())
        } else {
            error(e.to_string())
        }
    })?;
    let mut text = serde_json::to_string_pretty(key).map_err(|e| error(e.to_string()))?;
    text.push('\n');
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| error(e.to_string()))
}

/// Reads and checks a key file of the given kind.
pub fn read(path: &Path, kind: &str) -> Result<KeyFile, KeyError> {
    use std::io::Read;
    let error = |problem: String| KeyError {
        path: path.display().to_string(),
        problem,
    };
    let file = std::fs::File::open(path).map_err(|e| error(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| error(e.to_string()))?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(error(format!(
            "larger than {MAX_KEY_FILE_BYTES} bytes, not a key file"
        )));
    }
    let key: KeyFile = serde_json::from_str(&text).map_err(|e| error(e.to_string()))?;
    if key.kind != kind {
        let hint = if kind == SECRET_KIND {
            "; hint: signing needs the secret key (the `.key` file)"
        } else {
            "; hint: trust the public key (the `.pub` file), never the secret one"
        };
        return Err(error(format!("is a {}, expected a {kind}{hint}", key.kind)));
    }
    if key.algorithm != ALGORITHM {
        return Err(error(format!(
            "algorithm `{}`, only {ALGORITHM} is supported",
            key.algorithm
        )));
    }
    let public = if kind == SECRET_KIND {
        signing_key(&key).map_err(error)?.verifying_key()
    } else {
        verifying_key(&key.key).map_err(error)?
    };
    if key_id(&public) != key.key_id {
        return Err(error(format!(
            "key-id `{}` does not belong to its key (that is `{}`)",
            key.key_id,
            key_id(&public)
        )));
    }
    Ok(key)
}

fn key_bytes(hex_text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hex_text).map_err(|e| format!("key is not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("key has {} bytes, expected 32", b.len()))
}

/// The signing key of a secret key file.
pub fn signing_key(key: &KeyFile) -> Result<SigningKey, String> {
    Ok(SigningKey::from_bytes(&key_bytes(&key.key)?))
}

/// A public key from its hex form.
pub fn verifying_key(hex_text: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_bytes(&key_bytes(hex_text)?)
        .map_err(|e| format!("not a valid ed25519 public key: {e}"))
}

/// Signs a message (the package contents digest).
pub fn sign(key: &SigningKey, message: &[u8]) -> String {
    hex::encode(key.sign(message).to_bytes())
}

/// Checks a hex signature over `message` with `public`.
pub fn verify(public: &VerifyingKey, message: &[u8], signature_hex: &str) -> Result<(), String> {
    let bytes = hex::decode(signature_hex).map_err(|e| format!("signature is not hex: {e}"))?;
    let signature = ed25519_dalek::Signature::from_slice(&bytes)
        .map_err(|_| format!("signature has {} bytes, expected 64", bytes.len()))?;
    public
        .verify_strict(message, &signature)
        .map_err(|_| "the signature does not match the package contents".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_message_and_key() {
        let (secret, public) = generate("test").unwrap();
        let other = generate("other").unwrap().1;
        let signing = signing_key(&secret).unwrap();
        let sig = sign(&signing, b"contents");
        let public = verifying_key(&public.key).unwrap();
        assert!(verify(&public, b"contents", &sig).is_ok());
        assert!(verify(&public, b"content5", &sig).is_err());
        let other = verifying_key(&other.key).unwrap();
        assert!(verify(&other, b"contents", &sig).is_err());
    }

    #[test]
    fn key_files_round_trip_and_refuse_the_wrong_kind() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = generate("acme").unwrap();
        write(&dir.path().join("a.key"), &secret).unwrap();
        write(&dir.path().join("a.pub"), &public).unwrap();
        assert!(write(&dir.path().join("a.pub"), &public).is_err());
        assert_eq!(
            read(&dir.path().join("a.key"), SECRET_KIND).unwrap(),
            secret
        );
        assert_eq!(
            read(&dir.path().join("a.pub"), PUBLIC_KIND).unwrap(),
            public
        );
        let wrong = read(&dir.path().join("a.key"), PUBLIC_KIND).unwrap_err();
        assert!(
            wrong.to_string().contains("never the secret one"),
            "{wrong}"
        );
    }
}
