//! The HTTP API of the real `tessera serve` binary on 127.0.0.1, over a real store in a
//! temporary directory, driven by a real HTTP client.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::support::{
    component, count_files, huge_tiff_header, plugin_dir, root, sample, tessera_bin,
};

/// Runs a CLI command on `data` and returns its stdout; panics when it fails.
pub(crate) fn cli(data: &Path, args: &[&str]) -> String {
    let out = Command::new(tessera_bin())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .current_dir(root())
        .output()
        .expect("tessera runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tessera {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The token line of `tessera user add`.
pub(crate) fn token_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("a token line")
        .to_string()
}

/// A running `tessera serve`, killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    admin_token: Option<String>,
}

impl Server {
    pub(crate) fn start(data: &Path) -> Server {
        let mut child = Command::new(tessera_bin())
            .arg("--data-dir")
            .arg(data)
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--max-upload-bytes",
                "4000000",
            ])
            .current_dir(root())
            .stdout(Stdio::piped())
            .spawn()
            .expect("tessera serve starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let mut admin_token = None;
        let base = loop {
            let mut line = String::new();
            let n = lines.read_line(&mut line).expect("stdout readable");
            assert!(n > 0, "tessera serve ended before listening");
            if let Some(t) = line.trim().strip_prefix("admin token: ") {
                admin_token = Some(t.to_string());
            }
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                break addr.to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
        Server {
            child,
            base,
            admin_token,
        }
    }

    fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that remembers every (method, path) it called, to check them against the
/// OpenAPI document.
struct Api {
    base: String,
    http: Client,
    seen: Mutex<BTreeSet<(String, String)>>,
}

impl Api {
    fn new(server: &Server) -> Api {
        Api {
            base: server.base.clone(),
            http: Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .expect("client"),
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    fn req(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let bare = path.split('?').next().unwrap_or(path).to_string();
        self.seen
            .lock()
            .unwrap()
            .insert((method.as_str().to_lowercase(), bare));
        let r = self.http.request(method, format!("{}{path}", self.base));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    fn get(&self, path: &str, token: &str) -> Response {
        self.req(Method::GET, path, Some(token))
            .send()
            .expect("GET")
    }

    fn json(&self, method: Method, path: &str, token: &str, body: Value) -> Response {
        self.req(method, path, Some(token))
            .json(&body)
            .send()
            .expect("request")
    }

    fn ok_json(&self, path: &str, token: &str) -> Value {
        let r = self.get(path, token);
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().expect("json")
    }

    /// Every recorded call must match a path of the OpenAPI document with that method.
    fn assert_all_documented(&self) {
        let doc: Value = self
            .http
            .get(format!("{}/api/openapi.json", self.base))
            .send()
            .and_then(|r| r.json())
            .expect("openapi.json");
        let paths = doc["paths"].as_object().expect("paths");
        for (method, path) in self.seen.lock().unwrap().iter() {
            let documented = paths.iter().any(|(template, item)| {
                item.get(method.as_str()).is_some() && matches_template(template, path)
            });
            assert!(documented, "{method} {path} is not in /api/openapi.json");
        }
    }
}

fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}') && !p.is_empty()))
}

/// A store with plugins installed and users `root` (admin, team default), `bea` (team lab-b)
/// and `carl` (team lab-c); returns their tokens.
fn prepared_store(data: &Path) -> (String, String, String) {
    for krate in ["nuclei-detect", "fixture-spin"] {
        cli(
            data,
            &[
                "plugin",
                "install",
                plugin_dir(krate).to_str().unwrap(),
                "--component",
                component(krate).to_str().unwrap(),
            ],
        );
    }
    let root = token_of(&cli(
        data,
        &["user", "add", "root", "--team", "default", "--admin"],
    ));
    let bea = token_of(&cli(data, &["user", "add", "bea", "--team", "lab-b"]));
    let carl = token_of(&cli(data, &["user", "add", "carl", "--team", "lab-c"]));
    (root, bea, carl)
}

fn blobs(data: &Path) -> usize {
    count_files(&data.join("blobs"))
}

fn upload(api: &Api, project: &str, token: &str, name: &str, bytes: Vec<u8>) -> Response {
    api.req(
        Method::POST,
        &format!("/api/projects/{project}/images?name={name}"),
        Some(token),
    )
    .body(bytes)
    .send()
    .expect("upload")
}

fn error_message(r: Response) -> String {
    let v: Value = r.json().expect("error json");
    v["error"]["message"].as_str().expect("message").to_string()
}

/// Reads a run's event stream to its end and returns the events (name, data).
fn events(api: &Api, project: &str, run: &str, token: &str) -> Vec<(String, Value)> {
    let text = api
        .get(&format!("/api/projects/{project}/runs/{run}/events"), token)
        .text()
        .expect("event stream");
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut name = String::new();
        let mut data = String::new();
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push_str(d);
            }
        }
        if !name.is_empty() {
            out.push((
                name,
                serde_json::from_str(&data).expect("event data is json"),
            ));
        }
    }
    out
}

#[test]
fn the_first_serve_on_an_empty_store_creates_an_admin_and_prints_its_token() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let token = server
        .admin_token
        .clone()
        .expect("an admin token is printed");
    let api = Api::new(&server);
    let me = api.ok_json("/api/me", &token);
    assert_eq!(me["role"], "admin");
    assert_eq!(me["teams"], json!(["default"]));

    // The CLI cannot share the data directory with the running server, and says why.
    let out = Command::new(tessera_bin())
        .arg("--data-dir")
        .arg(data.path())
        .arg("images")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tessera serve"), "{err}");
    drop(server);

    // A second start prints no token.
    let again = Server::start(data.path());
    assert!(again.admin_token.is_none());
}

#[test]
fn a_pathologist_uploads_annotates_runs_a_plugin_and_follows_the_change_feed() {
    let data = tempfile::tempdir().unwrap();
    let (root, bea, _) = prepared_store(data.path());
    let server = Server::start(data.path());
    let api = Api::new(&server);

    // A project of team lab-b.
    let r = api.json(
        Method::POST,
        "/api/projects",
        &bea,
        json!({"name": "liver", "team": "lab-b"}),
    );
    assert_eq!(r.status(), 201);
    let project: Value = r.json().unwrap();
    let p = project["id"].as_str().unwrap().to_string();
    assert_eq!(project["access"], "write");

    // Upload twice: one blob, 201 then 200.
    let png = std::fs::read(sample("skimage_ihc.png")).unwrap();
    let r = upload(&api, &p, &bea, "ihc.png", png.clone());
    assert_eq!(r.status(), 201);
    let image: Value = r.json().unwrap();
    let img = image["id"].as_str().unwrap().to_string();
    assert_eq!(image["name"], "ihc.png");
    assert_eq!(upload(&api, &p, &bea, "ihc.png", png.clone()).status(), 200);
    assert_eq!(blobs(data.path()), 3, "two components and one image");
    let listed = api.ok_json(&format!("/api/projects/{p}/images"), &bea);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let meta = api.ok_json(&format!("/api/projects/{p}/images/{img}"), &bea);
    assert_eq!(meta["width"], image["width"]);

    // The original comes back byte for byte; thumbnail, DZI and tiles are images.
    let file = api.get(&format!("/api/projects/{p}/images/{img}/file"), &bea);
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().unwrap().as_ref(), png.as_slice());
    let thumb = api.get(
        &format!("/api/projects/{p}/images/{img}/thumbnail?size=128"),
        &bea,
    );
    assert_eq!(thumb.status(), 200);
    assert!(thumb.bytes().unwrap().starts_with(b"\x89PNG"));
    let dzi = api
        .get(&format!("/api/projects/{p}/images/{img}/image.dzi"), &bea)
        .text()
        .unwrap();
    let (w, h) = (
        image["width"].as_u64().unwrap(),
        image["height"].as_u64().unwrap(),
    );
    assert!(
        dzi.contains(&format!("Width=\"{w}\" Height=\"{h}\"")),
        "{dzi}"
    );
    let max_level = 64 - (w.max(h) - 1).leading_zeros();
    for (level, tile) in [(max_level, "0_0"), (max_level, "1_1"), (0, "0_0")] {
        let r = api.get(
            &format!("/api/projects/{p}/images/{img}/image_files/{level}/{tile}.jpeg"),
            &bea,
        );
        assert_eq!(r.status(), 200, "tile {level}/{tile}");
        assert!(r.bytes().unwrap().starts_with(b"\xff\xd8"));
    }
    let r = api.get(
        &format!(
            "/api/projects/{p}/images/{img}/image_files/{}/0_0.jpeg",
            max_level + 1
        ),
        &bea,
    );
    assert_eq!(r.status(), 404);

    // Annotations: post, bbox query, sources.
    let fc = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"label": "tumor"},
         "geometry": {"type": "Polygon", "coordinates": [[[10, 10], [60, 10], [60, 60], [10, 10]]]}},
        {"type": "Feature", "properties": {"label": "cell"},
         "geometry": {"type": "Point", "coordinates": [400, 300]}}
    ]});
    let path = format!("/api/projects/{p}/images/{img}/annotations");
    let r = api.json(Method::POST, &path, &bea, fc);
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["count"], 2);
    let some = api.ok_json(&format!("{path}?bbox=0,0,100,100"), &bea);
    assert_eq!(some["features"].as_array().unwrap().len(), 1);
    assert_eq!(some["features"][0]["properties"]["label"], "tumor");
    let all = api.ok_json(&path, &bea);
    assert_eq!(all["features"].as_array().unwrap().len(), 2);

    // A dataset, and a copy into another project without new pixels.
    let r = api.json(
        Method::POST,
        &format!("/api/projects/{p}/datasets"),
        &bea,
        json!({"name": "batch 1", "images": [img]}),
    );
    assert_eq!(r.status(), 201);
    let ds = r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.ok_json(&format!("/api/projects/{p}/datasets/{ds}"), &bea)["images"],
        json!([img])
    );
    let other: Value = api
        .json(
            Method::POST,
            "/api/projects",
            &bea,
            json!({"name": "teaching", "team": "lab-b"}),
        )
        .json()
        .unwrap();
    let q = other["id"].as_str().unwrap().to_string();
    let r = api.json(
        Method::POST,
        &format!("/api/projects/{p}/images/{img}/copy"),
        &bea,
        json!({"project": q}),
    );
    assert_eq!(r.status(), 201);
    assert_eq!(blobs(data.path()), 3, "a copy stores no pixels");

    // A run over the dataset, followed on its event stream.
    let plugins = api.ok_json("/api/plugins", &bea);
    let nuclei = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "nuclei-detect")
        .expect("nuclei-detect is listed");
    assert!(!nuclei["parameters"].as_array().unwrap().is_empty());
    let r = api.json(
        Method::POST,
        &format!("/api/projects/{p}/runs"),
        &bea,
        json!({"plugin": "nuclei-detect", "dataset": ds, "params": {}}),
    );
    assert_eq!(r.status(), 202);
    let run = r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let evs = events(&api, &p, &run, &bea);
    let (last_name, last) = evs.last().expect("events");
    assert_eq!(last_name, "state");
    assert_eq!(last["state"], "done", "{last}");
    assert!(
        evs.iter().any(|(n, _)| n == "progress"),
        "progress events are sent"
    );
    let run_record = api.ok_json(&format!("/api/projects/{p}/runs/{run}"), &bea);
    assert_eq!(run_record["state"], "done");
    let result_id = run_record["results"][0].as_str().unwrap().to_string();

    // Its result, with provenance, and the annotation source it fed.
    let results = api.ok_json(&format!("/api/projects/{p}/results?image={img}"), &bea);
    assert_eq!(results.as_array().unwrap().len(), 1);
    let result = api.ok_json(&format!("/api/projects/{p}/results/{result_id}"), &bea);
    assert_eq!(result["plugin_id"], "nuclei-detect");
    assert_eq!(result["image_digest"], image["digest"]);
    assert_eq!(result["run"], run.as_str());
    let geojson = api.ok_json(
        &format!("/api/projects/{p}/results/{result_id}/geojson"),
        &bea,
    );
    let n = geojson["features"].as_array().unwrap().len();
    assert!(n > 0);
    let sources = api.ok_json(&format!("{path}/sources"), &bea);
    let fed = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == format!("result:{run}"))
        .expect("the run fed an annotation source");
    assert_eq!(fed["count"].as_u64().unwrap() as usize, n);
    let r = api.json(
        Method::PUT,
        &format!("{path}?source=result:{run}"),
        &bea,
        json!({"type": "FeatureCollection", "features": []}),
    );
    assert_eq!(r.status(), 403, "run results are read-only");

    // The change feed, in order, and paging from a cursor.
    let feed = api.ok_json("/api/changes", &bea);
    let kinds: Vec<(String, String)> = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["project"] == p.as_str())
        .map(|c| {
            (
                c["op"].as_str().unwrap().into(),
                c["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect = |op: &str, kind: &str| (op.to_string(), kind.to_string());
    assert_eq!(
        kinds,
        vec![
            expect("created", "image"),
            expect("created", "annotations"),
            expect("created", "annotations"),
            expect("created", "result"),
        ]
    );
    let next = feed["next"].as_str().unwrap().to_string();
    let r = api.json(
        Method::PUT,
        &format!("{path}?source=mirror"),
        &bea,
        json!({"type": "FeatureCollection", "features": []}),
    );
    assert_eq!(r.status(), 200);
    let later = api.ok_json(&format!("/api/changes?since={next}"), &bea);
    assert_eq!(later["changes"].as_array().unwrap().len(), 1);
    assert_eq!(later["changes"][0]["source"], "mirror");
    let admin_feed = api.ok_json("/api/changes", &root);
    assert!(
        admin_feed["changes"].as_array().unwrap().is_empty(),
        "the admin's teams have no grant on lab-b's projects"
    );

    // Deleting from one project keeps the pixels for the other; gc frees them once no
    // project holds the image.
    let r = api
        .req(
            Method::DELETE,
            &format!("/api/projects/{p}/images/{img}"),
            Some(&bea),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        api.get(&format!("/api/projects/{q}/images/{img}/file"), &bea)
            .status(),
        200
    );
    assert_eq!(
        api.get(&format!("/api/projects/{p}/images/{img}"), &bea)
            .status(),
        404
    );
    let r = api
        .req(
            Method::DELETE,
            &format!("/api/projects/{q}/images/{img}"),
            Some(&bea),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    api.assert_all_documented();
    drop(server);
    let gc = cli(data.path(), &["gc"]);
    assert!(gc.starts_with("removed 1 blobs"), "{gc}");
    assert_eq!(
        blobs(data.path()),
        3,
        "two components and the result's GeoJSON stay"
    );
}

#[test]
fn bad_input_gets_the_documented_status_and_stores_nothing() {
    let data = tempfile::tempdir().unwrap();
    let (root, bea, carl) = prepared_store(data.path());
    let outside = data.path().parent().unwrap().join(format!(
        "{}-sentinel",
        data.path().file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&outside, b"keep").unwrap();
    let server = Server::start(data.path());
    let api = Api::new(&server);
    let p = api
        .json(
            Method::POST,
            "/api/projects",
            &bea,
            json!({"name": "kidney", "team": "lab-b"}),
        )
        .json::<Value>()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let png = std::fs::read(sample("skimage_ihc.png")).unwrap();
    let img: Value = upload(&api, &p, &bea, "ihc.png", png.clone())
        .json()
        .unwrap();
    let img = img["id"].as_str().unwrap().to_string();
    let stored = blobs(data.path());

    // 401: no token, a wrong one, a malformed header.
    let images = format!("/api/projects/{p}/images");
    assert_eq!(
        api.req(Method::GET, &images, None).send().unwrap().status(),
        401
    );
    assert_eq!(api.get(&images, "0123abcd").status(), 401);
    let r = api
        .req(Method::GET, &images, None)
        .header("Authorization", "Basic eA==")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    // 404: another team's project, exactly like a missing one; not listed either.
    let r = api.get(&images, &carl);
    assert_eq!(r.status(), 404);
    assert_eq!(error_message(r), format!("no project `{p}`"));
    assert_eq!(
        api.get("/api/projects/prj-9999999999/images", &carl)
            .status(),
        404
    );
    assert!(
        api.ok_json("/api/projects", &carl)
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(upload(&api, &p, &carl, "x.png", png.clone()).status(), 404);

    // 403: writes with a read grant (granted by the admin).
    let r = api.json(
        Method::PUT,
        &format!("/api/projects/{p}/grants/lab-c"),
        &root,
        json!({"access": "read"}),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(api.get(&images, &carl).status(), 200);
    assert_eq!(upload(&api, &p, &carl, "x.png", png.clone()).status(), 403);
    let annotations = format!("/api/projects/{p}/images/{img}/annotations");
    let empty = json!({"type": "FeatureCollection", "features": []});
    assert_eq!(
        api.json(Method::PUT, &annotations, &carl, empty.clone())
            .status(),
        403
    );
    let r = api
        .req(
            Method::DELETE,
            &format!("/api/projects/{p}/images/{img}"),
            Some(&carl),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = api.json(
        Method::POST,
        &format!("/api/projects/{p}/runs"),
        &carl,
        json!({"plugin": "nuclei-detect", "image": img}),
    );
    assert_eq!(r.status(), 403);

    // 400: malformed GeoJSON names the position and the problem.
    let bad = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [0, 0]]]}}
    ]});
    let r = api.json(Method::POST, &annotations, &bea, bad);
    assert_eq!(r.status(), 400);
    assert_eq!(
        error_message(r),
        "features[1].geometry.coordinates[0]: a polygon ring needs at least 4 positions"
    );
    let r = api
        .req(Method::POST, &annotations, Some(&bea))
        .body("{\"type\": \"FeatureCollection\",\n\"features\": [1,]}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(error_message(r).starts_with("line 2 column"));
    let r = api.json(Method::POST, &annotations, &bea, json!({"type": "Feature"}));
    assert_eq!(r.status(), 400);
    assert_eq!(
        api.get(&format!("{annotations}?bbox=1,2,3"), &bea).status(),
        400
    );

    // 415 and 422: not an image, a decompression bomb; nothing stored.
    let r = upload(
        &api,
        &p,
        &bea,
        "notes.png",
        b"these are my notes, not a slide".to_vec(),
    );
    assert_eq!(r.status(), 415);
    assert!(error_message(r).contains("not a recognized image"));
    let r = upload(
        &api,
        &p,
        &bea,
        "bomb.tif",
        huge_tiff_header(100_000, 100_000),
    );
    assert_eq!(r.status(), 422);
    let message = error_message(r);
    assert!(message.contains("bomb.tif"), "{message}");
    let r = upload(&api, &p, &bea, "big.png", vec![0u8; 4_500_000]);
    assert_eq!(r.status(), 413);
    assert_eq!(blobs(data.path()), stored);
    assert_eq!(count_files(&data.path().join("tmp")), 0);

    // An upload cut off mid-way leaves nothing.
    let mut tcp = TcpStream::connect(server.addr()).unwrap();
    write!(
        tcp,
        "POST /api/projects/{p}/images?name=cut.png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bea}\r\nContent-Length: {}\r\n\r\n",
        png.len() * 2
    )
    .unwrap();
    tcp.write_all(&png).unwrap();
    tcp.write_all(&png[..1000]).unwrap();
    drop(tcp);
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_files(&data.path().join("tmp")) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(count_files(&data.path().join("tmp")), 0);
    assert_eq!(blobs(data.path()), stored);
    assert_eq!(api.ok_json(&images, &bea).as_array().unwrap().len(), 1);

    // Path traversal in every kind of path parameter: 400 or 404, nothing outside touched.
    for path in [
        "/api/projects/..%2F..%2Fetc/images".to_string(),
        "/api/projects/../../etc/passwd".to_string(),
        format!("/api/projects/{p}/images/..%2F..%2Fmeta"),
        format!("/api/projects/{p}/images/{img}%2F..%2F..%2Fblobs/file"),
        format!("/api/projects/{p}/images/{img}/image_files/..%2F/0_0.jpeg"),
        format!("/api/projects/{p}/images/{img}/image_files/0/..%2F..%2F0_0.jpeg"),
        format!("/api/projects/{p}/images/{img}/annotations?source=..%2F..%2Fx"),
        format!("/api/projects/{p}/datasets/..%2F{p}"),
        format!("/api/projects/{p}/results/..%2F..%2Fsentinel"),
        format!("/api/projects/{p}/runs/%2E%2E"),
    ] {
        let r = api
            .http
            .get(format!("{}{path}", api.base))
            .bearer_auth(&bea)
            .send()
            .unwrap();
        assert!(
            r.status() == 400 || r.status() == 404,
            "{path}: {}",
            r.status()
        );
    }
    let r = api.json(
        Method::PUT,
        &format!("/api/projects/{p}/grants/..%2F..%2Fteam"),
        &root,
        json!({"access": "write"}),
    );
    assert_eq!(r.status(), 400);
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
    std::fs::remove_file(&outside).unwrap();

    // The server kept serving through all of it.
    assert_eq!(api.ok_json(&images, &bea).as_array().unwrap().len(), 1);
}

#[test]
fn a_run_can_be_cancelled_and_a_restart_marks_unfinished_runs_interrupted() {
    let data = tempfile::tempdir().unwrap();
    let (_, bea, _) = prepared_store(data.path());
    let png = sample("skimage_ihc.png");
    cli(data.path(), &["team", "add", "lab-b"]);
    let project = cli(data.path(), &["project", "add", "spin", "--team", "lab-b"]);
    let p = project.split_whitespace().nth(1).unwrap().to_string();
    let imported = cli(
        data.path(),
        &["import", "--project", &p, png.to_str().unwrap()],
    );
    let img = imported.split_whitespace().nth(1).unwrap().to_string();

    let server = Server::start(data.path());
    let api = Api::new(&server);
    let start = |api: &Api| {
        let r = api.json(
            Method::POST,
            &format!("/api/projects/{p}/runs"),
            &bea,
            json!({"plugin": "fixture-spin", "image": img}),
        );
        assert_eq!(r.status(), 202);
        r.json::<Value>().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let run = start(&api);
    let r = api.json(
        Method::POST,
        &format!("/api/projects/{p}/runs/{run}/cancel"),
        &bea,
        json!({}),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["state"], "cancelled");
    let evs = events(&api, &p, &run, &bea);
    assert_eq!(evs.last().unwrap().1["state"], "cancelled");

    // Killed while a run is queued or running: the next start says so.
    let second = start(&api);
    drop(server);
    let server = Server::start(data.path());
    let api = Api::new(&server);
    let record = api.ok_json(&format!("/api/projects/{p}/runs/{second}"), &bea);
    assert_eq!(record["state"], "interrupted", "{record}");
}

#[test]
fn two_hundred_thousand_nuclei_are_written_and_queried_by_bbox() {
    let data = tempfile::tempdir().unwrap();
    let (_, bea, _) = prepared_store(data.path());
    let server = Server::start(data.path());
    let api = Api::new(&server);
    let p = api
        .json(
            Method::POST,
            "/api/projects",
            &bea,
            json!({"name": "big", "team": "lab-b"}),
        )
        .json::<Value>()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let img: Value = upload(
        &api,
        &p,
        &bea,
        "ihc.png",
        std::fs::read(sample("skimage_ihc.png")).unwrap(),
    )
    .json()
    .unwrap();
    let img = img["id"].as_str().unwrap();

    // 200,000 hexagonal nuclei on a 400 × 500 grid, 100 px apart.
    let mut body = String::from(r#"{"type":"FeatureCollection","features":["#);
    for i in 0..200_000u32 {
        let (x, y) = (f64::from(i % 400) * 100.0, f64::from(i / 400) * 100.0);
        let ring: Vec<String> = (0..=6)
            .map(|k| {
                let a = f64::from(k % 6) * std::f64::consts::PI / 3.0;
                format!("[{:.2},{:.2}]", x + 8.0 * a.cos(), y + 8.0 * a.sin())
            })
            .collect();
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            r#"{{"type":"Feature","properties":{{"label":"nucleus","area":166.3}},"geometry":{{"type":"Polygon","coordinates":[[{}]]}}}}"#,
            ring.join(",")
        ));
    }
    body.push_str("]}");
    let path = format!("/api/projects/{p}/images/{img}/annotations");
    let t = Instant::now();
    let r = api
        .req(Method::PUT, &path, Some(&bea))
        .body(body)
        .send()
        .unwrap();
    let write = t.elapsed();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["count"], 200_000);

    let t = Instant::now();
    let window = api.ok_json(&format!("{path}?bbox=1050,1050,1950,1950"), &bea);
    let bbox_read = t.elapsed();
    // Centres 1100 to 1900 on both axes: 9 × 9.
    assert_eq!(window["features"].as_array().unwrap().len(), 81);

    let t = Instant::now();
    let all = api.ok_json(&path, &bea);
    let full_read = t.elapsed();
    assert_eq!(all["features"].as_array().unwrap().len(), 200_000);
    eprintln!(
        "200000 annotations: write {:.2} s, bbox read (81) {:.3} s, full read {:.2} s",
        write.as_secs_f64(),
        bbox_read.as_secs_f64(),
        full_read.as_secs_f64()
    );
}

#[test]
fn errors_axum_answers_itself_have_the_api_error_shape() {
    let data = tempfile::tempdir().unwrap();
    let (_, bea, _) = prepared_store(data.path());
    let server = Server::start(data.path());
    let api = Api::new(&server);
    let r = api
        .req(Method::POST, "/api/projects", Some(&bea))
        .header("Content-Type", "application/json")
        .body("{\"name\": 3}")
        .send()
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let body: Value = r.json().unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("name"),
        "{body}"
    );
    let r = api
        .req(Method::PATCH, "/api/projects", Some(&bea))
        .send()
        .unwrap();
    assert_eq!(r.status(), 405);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    let r = api.get("/api/nothing-here", &bea);
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().unwrap()["error"]["code"], "not_found");
}
