//! The author's and the admin's whole path through the real binary: scaffold, cargo test,
//! build, test, key, pack, sign, trust, install, upgrade with a changed grant.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{root, sample, target_dir, tessera_bin};

fn tessera(data: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(tessera_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("tessera runs")
}

fn ok(output: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn cargo(cwd: &Path, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", target_dir())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo {args:?} in {}", cwd.display());
}

#[test]
fn a_scaffolded_plugin_builds_tests_packs_signs_installs_and_upgrades() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("lake");
    let w = work.path();

    // 1. Scaffold, then the crate's own test.
    let sdk = root().join("sdk");
    let sdk = sdk.to_str().unwrap();
    ok(
        tessera(&data, w, &["plugin", "new", "glow", "--sdk", sdk]),
        "plugin new",
    );
    let krate = w.join("glow");
    cargo(&krate, &["test", "--quiet"]);

    // 2. Build for wasm32-wasip2 with the API version, run it on a sample.
    let built = ok(tessera(&data, &krate, &["plugin", "build"]), "plugin build");
    assert!(built.contains("for plugin API 0.2.0"), "{built}");
    let image = sample("skimage_ihc.png");
    let tested = ok(
        tessera(
            &data,
            &krate,
            &["plugin", "test", "--image", image.to_str().unwrap()],
        ),
        "plugin test",
    );
    assert!(tested.contains("brightness"), "{tested}");
    assert!(tested.contains("peak memory"), "{tested}");

    // 3. Key, pack, sign; the admin trusts the key and installs with --yes.
    ok(tessera(&data, w, &["key", "new", "acme"]), "key new");
    ok(tessera(&data, &krate, &["plugin", "pack"]), "plugin pack");
    let package = krate.join("glow-0.1.0.tpkg");
    let pkg = package.to_str().unwrap();
    ok(
        tessera(&data, w, &["plugin", "sign", pkg, "--key", "acme.key"]),
        "plugin sign",
    );
    let refused = tessera(&data, w, &["plugin", "install", pkg, "--yes"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not trusted"));
    ok(
        tessera(&data, w, &["trust", "add", "acme.pub"]),
        "trust add",
    );
    let installed = ok(
        tessera(&data, w, &["plugin", "install", pkg, "--yes"]),
        "plugin install",
    );
    assert!(installed.contains("signed by acme"), "{installed}");
    assert!(installed.contains("memory-mib       128"), "{installed}");
    let ran = ok(
        tessera(&data, w, &["run", "glow", image.to_str().unwrap()]),
        "run",
    );
    assert!(ran.contains("brightness"), "{ran}");

    // 4. Version 0.2.0 asks for more memory: the upgrade shows the difference.
    for file in ["Cargo.toml", "tessera.toml"] {
        let path = krate.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text
            .replacen("version = \"0.1.0\"", "version = \"0.2.0\"", 1)
            .replace("memory-mib = 128", "memory-mib = 256");
        std::fs::write(&path, text).unwrap();
    }
    ok(tessera(&data, &krate, &["plugin", "build"]), "rebuild");
    ok(tessera(&data, &krate, &["plugin", "pack"]), "pack 0.2.0");
    let next = krate.join("glow-0.2.0.tpkg");
    let next = next.to_str().unwrap();
    ok(
        tessera(&data, w, &["plugin", "sign", next, "--key", "acme.key"]),
        "sign 0.2.0",
    );
    let without_yes = tessera(&data, w, &["plugin", "upgrade", next]);
    assert!(!without_yes.status.success(), "no terminal, no --yes");
    let upgraded = ok(
        tessera(&data, w, &["plugin", "upgrade", next, "--yes"]),
        "plugin upgrade",
    );
    assert!(
        upgraded.contains("memory-mib       128 -> 256  (more access)"),
        "{upgraded}"
    );
    let listed = ok(tessera(&data, w, &["plugin", "list"]), "plugin list");
    assert!(listed.contains("glow 0.2.0"), "{listed}");
    assert!(listed.contains("memory 256 MiB"), "{listed}");

    // 5. A catalog of both versions.
    let catalog = w.join("catalog");
    std::fs::create_dir(&catalog).unwrap();
    for p in [pkg, next] {
        let name = Path::new(p).file_name().unwrap();
        std::fs::copy(p, catalog.join(name)).unwrap();
    }
    ok(
        tessera(&data, w, &["plugin", "catalog", catalog.to_str().unwrap()]),
        "catalog",
    );
    let found = ok(
        tessera(
            &data,
            w,
            &[
                "plugin",
                "search",
                "glow",
                "--catalog",
                catalog.to_str().unwrap(),
            ],
        ),
        "search",
    );
    assert!(found.contains("versions 0.1.0, 0.2.0"), "{found}");
}
