//! Requests meant to hurt the server (absurd coordinates, oversized bodies, stalled
//! connections, deceptive file names): each gets a clear answer and the server keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};

use crate::server::{Server, cli, token_of};
use crate::support::sample;

/// A running server with an admin, a project and one image in it.
struct Setup {
    _data: tempfile::TempDir,
    server: Server,
    http: Client,
    token: String,
    project: String,
    image: String,
}

impl Setup {
    fn new() -> Setup {
        let data = tempfile::tempdir().unwrap();
        let token = token_of(&cli(
            data.path(),
            &["user", "add", "root", "--team", "default", "--admin"],
        ));
        let server = Server::start(data.path());
        let http = Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap();
        let mut s = Setup {
            _data: data,
            server,
            http,
            token,
            project: String::new(),
            image: String::new(),
        };
        let r = s
            .req(reqwest::Method::POST, "/api/projects")
            .json(&json!({"name": "abuse", "team": "default"}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        s.project = r.json::<Value>().unwrap()["id"].as_str().unwrap().into();
        let png = std::fs::read(sample("skimage_ihc.png")).unwrap();
        let r = s.upload("ihc.png", png);
        assert_eq!(r.status(), 201);
        s.image = r.json::<Value>().unwrap()["id"].as_str().unwrap().into();
        s
    }

    fn req(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.server.base))
            .bearer_auth(&self.token)
    }

    fn upload(&self, name: &str, bytes: Vec<u8>) -> reqwest::blocking::Response {
        self.req(
            reqwest::Method::POST,
            &format!("/api/projects/{}/images", self.project),
        )
        .query(&[("name", name)])
        .body(bytes)
        .send()
        .unwrap()
    }

    fn annotations(&self, method: reqwest::Method) -> RequestBuilder {
        self.req(
            method,
            &format!(
                "/api/projects/{}/images/{}/annotations",
                self.project, self.image
            ),
        )
    }
}

fn message(r: reqwest::blocking::Response) -> String {
    let v: Value = r.json().expect("error json");
    v["error"]["message"].as_str().expect("message").to_string()
}

fn points(n: usize) -> String {
    let mut body = String::from(r#"{"type":"FeatureCollection","features":["#);
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{},{}]}}}}"#,
            i % 5000,
            i / 5000
        ));
    }
    body.push_str("]}");
    body
}

#[test]
fn absurd_coordinates_and_oversized_annotation_bodies_are_refused() {
    let s = Setup::new();
    let put = |body: String| {
        s.annotations(reqwest::Method::PUT)
            .header("content-type", "application/geo+json")
            .body(body)
            .send()
            .unwrap()
    };

    // A line whose width overflows f64: refused, and the source stays usable.
    let r = put(
        json!({"type": "FeatureCollection", "features": [{"type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[-1.7e308, 0], [1.7e308, 1]]}}]})
        .to_string(),
    );
    assert_eq!(r.status(), 400);
    let m = message(r);
    assert!(
        m.contains("features[0].geometry.coordinates[0]: coordinates must lie within"),
        "{m}"
    );
    let r = put(points(3));
    assert_eq!(r.status(), 200);
    let got: Value = s
        .annotations(reqwest::Method::GET)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(got["features"].as_array().unwrap().len(), 3);
    let sources = s
        .req(
            reqwest::Method::GET,
            &format!(
                "/api/projects/{}/images/{}/annotations/sources",
                s.project, s.image
            ),
        )
        .send()
        .unwrap();
    assert_eq!(sources.status(), 200);

    // More features than one request may carry.
    let n = tessera::annotations::MAX_FEATURES + 1;
    let r = put(points(n));
    assert_eq!(r.status(), 400);
    let m = message(r);
    assert!(m.contains("more than the"), "{m}");

    // A body over the annotation cap is refused before it is parsed.
    let big = " ".repeat(tessera::server::MAX_ANNOTATION_BODY + 1);
    let r = put(big);
    assert_eq!(r.status(), 413);

    // Nothing of the refused writes was stored; the source can still be deleted.
    let got: Value = s
        .annotations(reqwest::Method::GET)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(got["features"].as_array().unwrap().len(), 3);
    let r = s.annotations(reqwest::Method::DELETE).send().unwrap();
    assert_eq!(r.status(), 204);
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let s = Setup::new();
    let addr = s.server.base.trim_start_matches("http://").to_string();
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled
        .write_all(b"GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    // Far longer than the server's header timeout: a read that times out means the server
    // kept the connection open.
    stalled
        .set_read_timeout(Some(
            tessera::server::HEADER_READ_TIMEOUT * 4 + Duration::from_secs(30),
        ))
        .unwrap();
    let mut buf = Vec::new();
    match stalled.read_to_end(&mut buf) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    // Whatever the server wrote before closing is not a response to the stalled request.
    assert!(!buf.starts_with(b"HTTP/1.1 200"), "{buf:?}");
    let r = s.req(reqwest::Method::GET, "/api/me").send().unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn upload_names_with_hidden_characters_are_refused_and_downloads_name_files_safely() {
    let s = Setup::new();
    let png = std::fs::read(sample("skimage_ihc.png")).unwrap();
    for name in [
        "invoice\u{202E}gnp.exe",
        "a\u{2028}b.png",
        "zero\u{200B}width.png",
    ] {
        let r = s.upload(name, png.clone());
        assert_eq!(r.status(), 400, "{name:?}");
        assert!(message(r).contains("name:"), "{name:?}");
    }
    let tiff = std::fs::read(sample("openslide_boxes_pyramid.tiff")).unwrap();
    let r = s.upload("résumé \"1\".tiff", tiff);
    assert!(r.status().is_success(), "{}", r.status());
    let id = r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .req(
            reqwest::Method::GET,
            &format!("/api/projects/{}/images/{id}/file", s.project),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"].to_str().unwrap(),
        "attachment; filename=\"r_sum_ _1_.tiff\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22.tiff"
    );
}

/// A valid uncompressed RGB tiled TIFF of `width` × `height` pixels and a single level, every
/// tile pointing at the same 256 × 256 block of bytes.
fn tiled_tiff_without_pyramid(width: u32, height: u32) -> Vec<u8> {
    const TILE: u32 = 256;
    let tiles = width.div_ceil(TILE) * height.div_ceil(TILE);
    let tile_bytes = TILE * TILE * 3;
    let entries = 11u32;
    let ifd_len = 2 + entries * 12 + 4;
    let bits_at = 8 + ifd_len;
    let tile_at = bits_at + 6 + 2;
    let offsets_at = tile_at + tile_bytes;
    let counts_at = offsets_at + tiles * 4;
    let fields: [(u16, u16, u32, u32); 11] = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 3, bits_at), // BitsPerSample: 8, 8, 8
        (259, 3, 1, 1),       // no compression
        (262, 3, 1, 2),       // RGB
        (277, 3, 1, 3),
        (284, 3, 1, 1), // chunky
        (322, 3, 1, TILE),
        (323, 3, 1, TILE),
        (324, 4, tiles, offsets_at),
        (325, 4, tiles, counts_at),
    ];
    let mut b = b"II*\0".to_vec();
    b.extend(8u32.to_le_bytes());
    b.extend((entries as u16).to_le_bytes());
    for (tag, kind, count, value) in fields {
        b.extend(tag.to_le_bytes());
        b.extend(kind.to_le_bytes());
        b.extend(count.to_le_bytes());
        if kind == 3 && count == 1 {
            b.extend((value as u16).to_le_bytes());
            b.extend([0, 0]);
        } else {
            b.extend(value.to_le_bytes());
        }
    }
    b.extend(0u32.to_le_bytes());
    assert_eq!(b.len() as u32, bits_at);
    for _ in 0..3 {
        b.extend(8u16.to_le_bytes());
    }
    b.extend([0, 0]);
    b.extend((0..tile_bytes).map(|i| (i % 251) as u8));
    for _ in 0..tiles {
        b.extend(tile_at.to_le_bytes());
    }
    for _ in 0..tiles {
        b.extend(tile_bytes.to_le_bytes());
    }
    b
}

#[test]
fn a_huge_tiff_without_a_pyramid_is_refused_and_a_small_one_is_shown_whole() {
    let s = Setup::new();
    let r = s.upload("flat.tif", tiled_tiff_without_pyramid(99_840, 99_840));
    assert_eq!(r.status(), 422);
    let m = message(r);
    assert!(m.contains("smallest level") && m.contains("pyramid"), "{m}");

    // The same kind of file at a size that can be resampled is accepted and its overview works.
    let r = s.upload("small.tif", tiled_tiff_without_pyramid(4096, 3000));
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let thumb = s
        .req(
            reqwest::Method::GET,
            &format!("/api/projects/{}/images/{id}/thumbnail?size=256", s.project),
        )
        .send()
        .unwrap();
    assert_eq!(thumb.status(), 200);
    assert!(thumb.bytes().unwrap().starts_with(b"\x89PNG"));
}
