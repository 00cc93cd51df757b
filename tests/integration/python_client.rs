//! The Python client in `examples/python-client`, run against the real `tessera serve` on
//! 127.0.0.1: push an image, annotate it, run a plugin, download the results, follow the
//! change feed and push annotations back.

use std::process::Command;

use crate::server::{Server, cli, token_of};
use crate::support::{component, plugin_dir, root};

#[test]
fn the_python_client_example_mirrors_a_project_through_the_api() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    cli(
        &data,
        &[
            "plugin",
            "install",
            plugin_dir("nuclei-detect").to_str().unwrap(),
            "--component",
            component("nuclei-detect").to_str().unwrap(),
        ],
    );
    let token = token_of(&cli(&data, &["user", "add", "script", "--team", "lab"]));
    let server = Server::start(&data);

    let example = root().join("examples/python-client");
    let out = Command::new("python3")
        .arg(example.join("mirror_example.py"))
        .args(["--url", &server.base, "--token", &token])
        .arg("--out")
        .arg(dir.path().join("mirror"))
        .current_dir(&example)
        .output()
        .expect("python3 runs (the CI script installs it with `requests`)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
    // The nuclei result of the IHC sample, downloaded by the script, matches the reference.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("result "))
        .expect("a result line");
    assert!(line.contains(": 152 features"), "{line}");
    // A wrong token is refused with the API's own error, not a traceback.
    let out = Command::new("python3")
        .arg(example.join("mirror_example.py"))
        .args(["--url", &server.base, "--token", "not-a-token"])
        .current_dir(&example)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("401 unauthorized"), "{stderr}");
}
