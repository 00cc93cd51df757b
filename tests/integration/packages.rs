//! Packages, signatures, grants and the admin actions, on real components built from source.

use std::path::{Path, PathBuf};

use tessera::jobs::{self, RunOptions};
use tessera::plugins::admin::{self, Approval, Options, Outcome, Source};
use tessera::plugins::catalog;
use tessera::plugins::keys::{self, KeyFile};
use tessera::plugins::package::Package;
use tessera::plugins::{HOST_API_VERSION, api_section};
use tessera::store::Origin;

use crate::support::{Lake, component, lake, plugin_dir, sample};

const HELLO: &str = "hello-plugin";

fn hello_manifest() -> String {
    std::fs::read_to_string(plugin_dir(HELLO).join("tessera.toml")).expect("manifest")
}

/// A package of hello-plugin's component (API section embedded) with `manifest`.
fn package(manifest: &str) -> Package {
    let bytes = std::fs::read(component(HELLO)).expect("component");
    let bytes = api_section::embed(&bytes, "0.2.0").expect("embed");
    Package::new(
        manifest.to_string(),
        bytes,
        Some("# hello\n".into()),
        None,
        HELLO,
    )
    .expect("package")
}

fn key_pair(name: &str) -> (KeyFile, KeyFile) {
    keys::generate(name).expect("key")
}

fn write(dir: &Path, name: &str, package: &Package) -> PathBuf {
    let path = dir.join(name);
    package.write(&path).expect("write package");
    path
}

fn trust(lake: &Lake, public: &KeyFile) {
    admin::trust_add(&lake.tessera, public, None).expect("trust");
}

fn signed_options() -> Options {
    Options::default()
}

/// Everything a refused install may have left: records, blobs, compiled artifacts.
fn assert_nothing_installed(lake: &Lake) {
    assert!(lake.tessera.store().plugins().unwrap().is_empty());
    assert_eq!(lake.files_under("blobs"), 0, "no blob written");
    assert_eq!(lake.files_under("cache"), 0, "no compiled artifact written");
}

fn refused(lake: &Lake, path: &Path, options: Options) -> String {
    let source = Source::Package(path.to_path_buf());
    let err = admin::install(&lake.tessera, &source, options, Approval::Yes)
        .expect_err("refused")
        .to_string();
    assert_nothing_installed(lake);
    err
}

fn run_hello(lake: &Lake) -> Result<jobs::RunOutcome, tessera::app::Error> {
    let (image, _) = lake
        .tessera
        .import_file(&sample("skimage_ihc.png"))
        .unwrap();
    jobs::run_on_image(&lake.tessera, HELLO, &image, RunOptions::default())
}

#[test]
fn a_signed_package_from_a_trusted_publisher_installs_with_its_grant_and_runs() {
    let lake = lake();
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = key_pair("acme");
    let mut pkg = package(&hello_manifest());
    pkg.sign(&secret).unwrap();
    let path = write(dir.path(), "hello.tpkg", &pkg);
    trust(&lake, &public);

    let mut shown = None;
    let mut ask = |review: &admin::Review| {
        shown = Some(review.clone());
        true
    };
    let source = Source::Package(path);
    let outcome = admin::install(
        &lake.tessera,
        &source,
        signed_options(),
        Approval::Ask(&mut ask),
    )
    .expect("installs");
    let review = shown.expect("the admin was asked");
    assert_eq!(review.grant.memory_mib, 64);
    assert_eq!(review.grant.time_seconds, 10);
    assert!(review.signer.is_trusted());
    let Outcome::Installed { plugin, .. } = outcome else {
        panic!("not installed: {outcome:?}");
    };
    assert_eq!(plugin.grant, review.grant);
    let record = lake.tessera.store().plugin(HELLO).unwrap().unwrap();
    assert_eq!(record.approved.as_ref(), Some(&review.grant));
    assert!(matches!(record.origin, Origin::Package { .. }));
    assert!(run_hello(&lake).is_ok());

    // The same package again changes nothing.
    let again = admin::install(&lake.tessera, &source, signed_options(), Approval::Yes).unwrap();
    assert!(matches!(again, Outcome::Unchanged { .. }), "{again:?}");
}

#[test]
fn a_declined_review_installs_nothing() {
    let lake = lake();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "hello.tpkg", &package(&hello_manifest()));
    let options = Options {
        allow_unsigned: true,
    };
    let source = Source::Package(path);
    let mut no = |_: &admin::Review| false;
    let outcome = admin::install(&lake.tessera, &source, options, Approval::Ask(&mut no)).unwrap();
    assert!(matches!(outcome, Outcome::Declined { .. }));
    assert_nothing_installed(&lake);
    let outcome =
        admin::install(&lake.tessera, &source, options, Approval::Digest("not-it")).unwrap();
    assert!(matches!(outcome, Outcome::Declined { .. }));
    assert_nothing_installed(&lake);
}

#[test]
fn a_component_altered_after_signing_is_refused_even_with_allow_unsigned() {
    let lake = lake();
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = key_pair("acme");
    trust(&lake, &public);
    let mut pkg = package(&hello_manifest());
    pkg.sign(&secret).unwrap();
    // Another valid component under the same signature.
    let other = std::fs::read(component("tissue-detect")).unwrap();
    pkg.component = api_section::embed(&other, "0.2.0").unwrap();
    let path = write(dir.path(), "altered.tpkg", &pkg);
    let options = Options {
        allow_unsigned: true,
    };
    let err = refused(&lake, &path, options);
    assert!(err.contains("altered after signing"), "{err}");
}

#[test]
fn untrusted_and_unsigned_packages_need_allow_unsigned() {
    let lake = lake();
    let dir = tempfile::tempdir().unwrap();
    let (secret, _) = key_pair("stranger");
    let mut pkg = package(&hello_manifest());
    let unsigned = write(dir.path(), "unsigned.tpkg", &pkg);
    pkg.sign(&secret).unwrap();
    let untrusted = write(dir.path(), "untrusted.tpkg", &pkg);

    let err = refused(&lake, &untrusted, signed_options());
    assert!(
        err.contains(&format!("publisher key {} is not trusted", secret.key_id)),
        "{err}"
    );
    let err = refused(&lake, &unsigned, signed_options());
    assert!(err.contains("unsigned"), "{err}");

    let options = Options {
        allow_unsigned: true,
    };
    let source = Source::Package(untrusted);
    admin::install(&lake.tessera, &source, options, Approval::Yes).expect("allowed");
    assert!(run_hello(&lake).is_ok());
}

/// A tar entry written byte by byte, so the test can write what a well-behaved builder refuses.
fn raw_entry(out: &mut Vec<u8>, name: &str, kind: u8, data: &[u8], claimed_size: Option<u64>) {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    let size = claimed_size.unwrap_or(data.len() as u64);
    header[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = kind;
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// A tar entry to add: name, type flag, data, and a size to claim instead of the data's.
type RawEntry<'a> = (&'a str, u8, &'a [u8], Option<u64>);

fn raw_package(dir: &Path, name: &str, extra: &[RawEntry<'_>]) -> PathBuf {
    let manifest = hello_manifest();
    let wasm = api_section::embed(&std::fs::read(component(HELLO)).unwrap(), "0.2.0").unwrap();
    let mut tar = Vec::new();
    raw_entry(&mut tar, "tessera.toml", b'0', manifest.as_bytes(), None);
    raw_entry(&mut tar, "plugin.wasm", b'0', &wasm, None);
    for (entry, kind, data, claimed) in extra {
        raw_entry(&mut tar, entry, *kind, data, *claimed);
    }
    tar.extend_from_slice(&[0; 1024]);
    let path = dir.join(name);
    std::fs::write(&path, tar).unwrap();
    path
}

#[test]
fn hostile_archives_are_refused_with_the_entry_and_the_rule() {
    let lake = lake();
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        allow_unsigned: true,
    };
    let cases: [(RawEntry<'_>, &str); 7] = [
        (("../evil", b'0', b"x", None), "`..` path"),
        (("/etc/passwd", b'0', b"x", None), "absolute path"),
        (("README.md", b'2', b"", None), "is a link"),
        (("docs", b'5', b"", None), "is a folder"),
        (("tessera.toml", b'0', b"x", None), "appears twice"),
        (("notes.txt", b'0', b"x", None), "unexpected entry"),
        (
            ("icon.png", b'0', b"", Some(1 << 30)),
            "more than its limit",
        ),
    ];
    for (i, (entry, expected)) in cases.into_iter().enumerate() {
        let path = raw_package(dir.path(), &format!("case{i}.tpkg"), &[entry]);
        let err = refused(&lake, &path, options);
        assert!(err.contains(expected), "{}: {err}", entry.0);
    }
    // The same layout without a hostile entry installs: the refusals above are about the
    // entries, not the hand-written tar.
    let fine = raw_package(dir.path(), "fine.tpkg", &[]);
    let source = Source::Package(fine);
    admin::install(&lake.tessera, &source, options, Approval::Yes).expect("a plain tar installs");
}

#[test]
fn bad_manifests_kinds_and_components_are_refused_and_nothing_is_installed() {
    let lake = lake();
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        allow_unsigned: true,
    };
    let manifest = hello_manifest();
    let with_manifest = |name: &str, text: String, wasm: Vec<u8>| {
        // Package::new validates the manifest, so write the tar by hand.
        let mut tar = Vec::new();
        raw_entry(&mut tar, "tessera.toml", b'0', text.as_bytes(), None);
        raw_entry(&mut tar, "plugin.wasm", b'0', &wasm, None);
        tar.extend_from_slice(&[0; 1024]);
        let path = dir.path().join(name);
        std::fs::write(&path, tar).unwrap();
        path
    };
    let hello = api_section::embed(&std::fs::read(component(HELLO)).unwrap(), "0.2.0").unwrap();

    let unknown = manifest.replace("[limits]", "[limits]\nmemory-mb = 5");
    let err = refused(
        &lake,
        &with_manifest("a.tpkg", unknown, hello.clone()),
        options,
    );
    assert!(err.contains("unknown field `memory-mb`"), "{err}");

    let too_much = manifest.replace("memory-mib = 64", "memory-mib = 999999");
    let err = refused(
        &lake,
        &with_manifest("b.tpkg", too_much, hello.clone()),
        options,
    );
    assert!(err.contains("limits.memory-mib is 999999"), "{err}");

    // A component that exports nothing (the smallest valid component).
    let empty = api_section::embed(b"\0asm\x0d\0\x01\0", "0.2.0").unwrap();
    let err = refused(
        &lake,
        &with_manifest("c.tpkg", manifest.clone(), empty),
        options,
    );
    assert!(
        err.contains("cannot be linked: as `algorithm`, the kind its manifest declares"),
        "{err}"
    );

    let core = b"\0asm\x01\0\0\0".to_vec();
    let err = refused(
        &lake,
        &with_manifest("d.tpkg", manifest.clone(), core),
        options,
    );
    assert!(err.contains("core WebAssembly module"), "{err}");

    let future = api_section::embed(&std::fs::read(component(HELLO)).unwrap(), "0.9.0").unwrap();
    let err = refused(
        &lake,
        &with_manifest("e.tpkg", manifest.clone(), future),
        options,
    );
    assert!(
        err.contains("built for plugin API 0.9.0, its manifest says 0.2.0"),
        "{err}"
    );

    let newer = manifest.replace("api = \"0.2.0\"", "api = \"0.9.0\"");
    let err = refused(
        &lake,
        &with_manifest("f.tpkg", newer, hello.clone()),
        options,
    );
    assert!(
        err.contains("0.9.0") && err.contains(&format!("this host speaks {HOST_API_VERSION}")),
        "{err}"
    );

    let bare = std::fs::read(component(HELLO)).unwrap();
    let err = refused(&lake, &with_manifest("g.tpkg", manifest, bare), options);
    assert!(err.contains("no `tessera:api-version` section"), "{err}");
}

#[test]
fn a_broken_upgrade_leaves_the_old_version_installed_and_working() {
    let lake = lake();
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        allow_unsigned: true,
    };
    let old = write(dir.path(), "old.tpkg", &package(&hello_manifest()));
    admin::install(&lake.tessera, &Source::Package(old), options, Approval::Yes).unwrap();
    let before = lake.tessera.store().plugin(HELLO).unwrap().unwrap();

    // The manifest says 0.2.0, the component still reports 0.1.0.
    let lying = hello_manifest().replace("version = \"0.1.0\"", "version = \"0.2.0\"");
    let broken = write(dir.path(), "broken.tpkg", &package(&lying));
    let err = admin::upgrade(
        &lake.tessera,
        &Source::Package(broken),
        options,
        Approval::Yes,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("reports version 0.1.0"), "{err}");
    assert_eq!(lake.tessera.store().plugin(HELLO).unwrap().unwrap(), before);
    assert!(run_hello(&lake).is_ok());

    // Not newer.
    let same = write(dir.path(), "same.tpkg", &package(&hello_manifest()));
    let err = admin::upgrade(
        &lake.tessera,
        &Source::Package(same),
        options,
        Approval::Yes,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not newer"), "{err}");
}

#[test]
fn disabled_plugins_do_not_run_and_removed_plugins_keep_their_results() {
    let lake = lake();
    lake.install(HELLO);
    let outcome = run_hello(&lake).expect("runs");

    admin::set_enabled(&lake.tessera, HELLO, false).unwrap();
    let err = run_hello(&lake).unwrap_err().to_string();
    assert!(err.contains("is disabled"), "{err}");
    let listed = admin::list(&lake.tessera).unwrap();
    assert!(!listed[0].enabled);
    admin::set_enabled(&lake.tessera, HELLO, true).unwrap();
    assert!(run_hello(&lake).is_ok());

    admin::remove(&lake.tessera, HELLO).unwrap();
    assert!(admin::list(&lake.tessera).unwrap().is_empty());
    assert!(run_hello(&lake).is_err());
    let results = lake.tessera.store().results().unwrap();
    assert!(results.iter().any(|r| r.id == outcome.record.id));
    assert!(lake.tessera.store().has_blob(&outcome.record.plugin_digest));
    assert!(admin::remove(&lake.tessera, HELLO).is_err());
}

#[test]
fn the_approved_grant_not_the_manifest_sets_the_limits() {
    let lake = lake();
    lake.install(HELLO);
    let mut record = lake.tessera.store().plugin(HELLO).unwrap().unwrap();
    let mut grant = record.grant();
    grant.memory_mib = 1;
    record.approved = Some(grant);
    lake.tessera.store().put_plugin(&record).unwrap();
    let err = run_hello(&lake).unwrap_err().to_string();
    assert!(err.contains("memory limit of 1 MiB"), "{err}");
}

#[test]
fn a_catalog_lists_packages_and_installs_an_entry_by_file_url() {
    let lake = lake();
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = key_pair("acme");
    let mut pkg = package(&hello_manifest());
    pkg.sign(&secret).unwrap();
    write(dir.path(), &pkg.file_name(), &pkg);
    let index = catalog::build(dir.path()).expect("catalog");
    assert_eq!(index.plugins.len(), 1);
    let entry = &index.plugins[0].versions[0];
    assert_eq!(entry.publisher_key.as_deref(), Some(secret.key_id.as_str()));
    assert_eq!(entry.api, "0.2.0");

    let url = format!("file://{}", dir.path().display());
    assert_eq!(admin::search(&url, "BRIGHTNESS").unwrap().len(), 1);
    assert!(admin::search(&url, "nothing like it").unwrap().is_empty());

    trust(&lake, &public);
    let source = Source::parse(&format!("{url}#{HELLO}@0.1.0"), None);
    admin::install(&lake.tessera, &source, signed_options(), Approval::Yes).expect("installs");
    assert!(run_hello(&lake).is_ok());

    // A package file that is not the one the index describes.
    let other = tempfile::tempdir().unwrap();
    let mut changed = package(&hello_manifest().replace("Hello, slide\"", "Hello\""));
    changed.sign(&secret).unwrap();
    write(dir.path(), &pkg.file_name(), &changed);
    let fresh = crate::support::lake();
    trust(&fresh, &public);
    let err = admin::install(&fresh.tessera, &source, signed_options(), Approval::Yes)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the catalog index says"), "{err}");
    assert_nothing_installed(&fresh);
    drop(other);
}
