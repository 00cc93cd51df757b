//! Plugin administration over HTTP on the real `tessera serve`: review, approve, upgrade with a
//! grant difference, disable, enable and remove, admins only.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::Value;
use tessera::plugins::Manifest;
use tessera::plugins::api_section;
use tessera::plugins::package::Package;

use crate::server::{Server, cli, token_of};
use crate::support::{component, plugin_dir};

const HELLO: &str = "hello-plugin";

/// An unsigned package of hello-plugin with its manifest edited by `edit`.
fn hello_package(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text = edit(std::fs::read_to_string(plugin_dir(HELLO).join("tessera.toml")).unwrap());
    let api = Manifest::parse(&text, "tessera.toml").unwrap().plugin.api;
    let bytes = std::fs::read(component(HELLO)).unwrap();
    let bytes = api_section::embed(&bytes, &api).unwrap();
    let package = Package::new(text, bytes, None, None, HELLO).unwrap();
    let path = dir.join(name);
    package.write(&path).unwrap();
    path
}

struct Admin<'a> {
    http: Client,
    server: &'a Server,
}

impl Admin<'_> {
    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::blocking::RequestBuilder {
        self.http
            .request(method, format!("{}/api{path}", self.server.base))
            .bearer_auth(token)
    }

    fn post_package(&self, token: &str, query: &str, upgrade: bool, package: &Path) -> Response {
        let route = if upgrade {
            "/admin/plugins/upgrade"
        } else {
            "/admin/plugins"
        };
        self.send(reqwest::Method::POST, &format!("{route}?{query}"), token)
            .header("content-type", "application/octet-stream")
            .body(std::fs::read(package).unwrap())
            .send()
            .unwrap()
    }

    fn json(&self, method: reqwest::Method, path: &str, token: &str) -> Value {
        let r = self.send(method, path, token).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.json().unwrap()
    }

    fn catalog_ids(&self, token: &str) -> Vec<String> {
        let list = self.json(reqwest::Method::GET, "/plugins", token);
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect()
    }
}

fn ok_json(r: Response) -> Value {
    let status = r.status();
    let body: Value = r.json().unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[test]
fn admins_review_install_upgrade_disable_and_remove_plugins_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let member = token_of(&cli(&data, &["user", "add", "bea", "--team", "lab"]));
    let root = token_of(&cli(
        &data,
        &["user", "add", "root", "--team", "default", "--admin"],
    ));
    let v1 = hello_package(dir.path(), "hello-1.tpkg", |m| m);
    let v2 = hello_package(dir.path(), "hello-2.tpkg", |m| {
        m.replace("version = \"0.1.0\"", "version = \"0.2.0\"")
    });
    let server = Server::start(&data);
    let api = Admin {
        http: Client::new(),
        server: &server,
    };

    // Members may not administer plugins.
    let r = api.post_package(&member, "allow_unsigned=true", false, &v1);
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = api
        .send(reqwest::Method::GET, "/admin/plugins", &member)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // An unsigned package needs the explicit flag.
    let r = api.post_package(&root, "", false, &v1);
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let message = r.json::<Value>().unwrap()["error"]["message"].to_string();
    assert!(message.contains("unsigned"), "{message}");

    // First the review: nothing is installed until the admin approves this very component.
    let review = ok_json(api.post_package(&root, "allow_unsigned=true", false, &v1));
    assert_eq!(review["approved"], false);
    assert_eq!(review["outcome"], "review");
    assert_eq!(review["review"]["grant"]["memory-mib"], 64, "{review}");
    assert!(api.catalog_ids(&member).is_empty());
    let wrong = api.post_package(&root, "allow_unsigned=true&approve=00ff", false, &v1);
    assert_eq!(ok_json(wrong)["approved"], false);
    let digest = review["review"]["component_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let query = format!("allow_unsigned=true&approve={digest}");
    let installed = ok_json(api.post_package(&root, &query, false, &v1));
    assert_eq!(installed["outcome"], "installed", "{installed}");
    assert_eq!(api.catalog_ids(&member), [HELLO]);

    // An upgrade is validated in full before anything changes: this one's component does not
    // report the version its manifest claims, so the installed version stays.
    let r = api.post_package(&root, "allow_unsigned=true", true, &v2);
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let message = r.json::<Value>().unwrap()["error"]["message"].to_string();
    assert!(message.contains("0.2.0"), "{message}");
    // Upgrading to the installed version is refused too, and so is a file that is no package.
    let r = api.post_package(&root, "allow_unsigned=true", true, &v1);
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let junk = dir.path().join("junk.tpkg");
    std::fs::write(&junk, b"not a package").unwrap();
    let r = api.post_package(&root, "allow_unsigned=true", true, &junk);
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let list = api.json(reqwest::Method::GET, "/admin/plugins", &root);
    assert_eq!(list[0]["version"], "0.1.0");
    assert_eq!(list[0]["enabled"], true);

    // Disabled plugins leave the app catalog and do not run; enabling brings them back.
    let off = api.json(
        reqwest::Method::POST,
        &format!("/admin/plugins/{HELLO}/disable"),
        &root,
    );
    assert_eq!(off["enabled"], false);
    assert!(api.catalog_ids(&member).is_empty());
    let on = api.json(
        reqwest::Method::POST,
        &format!("/admin/plugins/{HELLO}/enable"),
        &root,
    );
    assert_eq!(on["enabled"], true);
    assert_eq!(api.catalog_ids(&member), [HELLO]);

    // Removal; a second removal is a 404, an id with a path in it a 400.
    api.json(
        reqwest::Method::DELETE,
        &format!("/admin/plugins/{HELLO}"),
        &root,
    );
    let r = api
        .send(
            reqwest::Method::DELETE,
            &format!("/admin/plugins/{HELLO}"),
            &root,
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = api
        .send(
            reqwest::Method::POST,
            "/admin/plugins/..%2Fetc/enable",
            &root,
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        api.json(reqwest::Method::GET, "/admin/plugins", &root)
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Every admin route is in the OpenAPI document.
    let doc: Value = api
        .http
        .get(format!("{}/api/openapi.json", server.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    for path in [
        "/api/admin/plugins",
        "/api/admin/plugins/upgrade",
        "/api/admin/plugins/catalog",
        "/api/admin/plugins/{plugin}",
        "/api/admin/plugins/{plugin}/enable",
        "/api/admin/plugins/{plugin}/disable",
        "/api/admin/catalog",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} is not in the OpenAPI document"
        );
    }
}
