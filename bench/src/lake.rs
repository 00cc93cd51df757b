//! The data lake's figures over a real HTTP server on 127.0.0.1: upload throughput of a large
//! tiled TIFF, deep-zoom tile serving under concurrent clients, and writing and bbox-reading
//! 200,000 annotations. Each figure sits next to a baseline measured in the same run.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::blocking::{Body, Client};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tessera::server::{self, AppState, ServerOptions};
use tessera::store::DEFAULT_TEAM;
use tessera::{Config, Tessera};

use crate::big_tiff;
use crate::{Row, fmt, row};

/// Full-resolution side of the uploaded slide: 32768² px in 256² JPEG tiles, ~0.5 GB.
const SLIDE_SIDE: u32 = 32_768;
/// Pyramid levels written (32768 down to 2048).
const SLIDE_LEVELS: u32 = 5;
/// Concurrent clients fetching tiles.
const TILE_CLIENTS: usize = 8;
/// Tile requests in the cold and the warm pass each.
const TILE_REQUESTS: usize = 2_000;
/// Annotations written and read back.
const ANNOTATIONS: usize = 200_000;

/// A server over a fresh data directory, on its own thread, with an admin token.
struct Server {
    addr: SocketAddr,
    token: String,
    _runtime: std::thread::JoinHandle<()>,
}

impl Server {
    fn start(data: &Path) -> anyhow::Result<Server> {
        let tessera = Tessera::open(Config::new(data))?;
        let (_, token) = tessera
            .store()
            .add_user("bench", &[DEFAULT_TEAM.to_string()], true)?;
        let state = AppState::new(Arc::new(tessera), ServerOptions::default())?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
            let served = runtime.block_on(server::serve(state, addr, |bound| {
                let _ = tx.send(bound);
            }));
            if let Err(e) = served {
                eprintln!("bench server stopped: {e:#}");
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .context("the bench server did not start listening")?;
        Ok(Server {
            addr,
            token,
            _runtime: thread,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/api{path}", self.addr)
    }
}

fn client() -> anyhow::Result<Client> {
    Ok(Client::builder()
        .timeout(Duration::from_secs(600))
        .pool_max_idle_per_host(TILE_CLIENTS * 2)
        .build()?)
}

fn ok(response: reqwest::blocking::Response) -> anyhow::Result<reqwest::blocking::Response> {
    let status = response.status();
    if !status.is_success() {
        let body = response.text().unwrap_or_default();
        bail!("{status}: {body}");
    }
    Ok(response)
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// A 256² JPEG cut from the bundled IHC sample: real tissue texture, realistic tile size.
fn tissue_tile_jpeg(root: &Path) -> anyhow::Result<Vec<u8>> {
    let sample = image::open(root.join("examples/data/skimage_ihc.png"))
        .context("reading the IHC sample")?
        .to_rgb8();
    let crop =
        image::imageops::crop_imm(&sample, 128, 128, big_tiff::TILE, big_tiff::TILE).to_image();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode(
        crop.as_raw(),
        big_tiff::TILE,
        big_tiff::TILE,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(jpeg)
}

/// What the upload is compared with: reading the same file and hashing it, no network.
fn read_and_hash(path: &Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    std::hint::black_box(hasher.finalize());
    Ok(start.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Fetches `paths` with [`TILE_CLIENTS`] threads; answers requests per second and p50/p95.
fn fetch_concurrently(
    server: &Server,
    paths: &[String],
) -> anyhow::Result<(f64, Duration, Duration)> {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..TILE_CLIENTS)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<Vec<Duration>> {
                    let http = client()?;
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = paths.get(i) else {
                            return Ok(mine);
                        };
                        let t = Instant::now();
                        let bytes = ok(http
                            .get(server.url(path))
                            .bearer_auth(&server.token)
                            .send()?)?
                        .bytes()?;
                        if bytes.len() < 2 || bytes[..2] != [0xFF, 0xD8] {
                            bail!("{path} did not answer a JPEG");
                        }
                        mine.push(t.elapsed());
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("tile client thread"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let elapsed = start.elapsed();
    let mut all: Vec<Duration> = latencies.into_iter().flatten().collect();
    all.sort();
    Ok((
        all.len() as f64 / elapsed.as_secs_f64(),
        percentile(&all, 0.5),
        percentile(&all, 0.95),
    ))
}

/// `n` small square polygons spread over a `side`² image, like detected nuclei.
fn nuclei_collection(n: usize, side: f64) -> Value {
    let across = (n as f64).sqrt().ceil() as usize;
    let step = side / across as f64;
    let features: Vec<Value> = (0..n)
        .map(|i| {
            let (x, y) = ((i % across) as f64 * step, (i / across) as f64 * step);
            let r = step * 0.3;
            json!({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[
                    [x, y], [x + r, y], [x + r, y + r], [x, y + r], [x, y]
                ]]},
                "properties": {"label": "nucleus", "area": r * r},
            })
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}

/// The lake rows of the bench table.
pub fn rows(root: &Path, scratch: &Path) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let server = Server::start(&scratch.join("lake-server"))?;
    let http = client()?;

    // Upload of a large tiled pyramidal TIFF, streamed from disk.
    let slide_path = scratch.join("large-slide.tif");
    let slide = big_tiff::write(
        &slide_path,
        SLIDE_SIDE,
        SLIDE_LEVELS,
        &tissue_tile_jpeg(root)?,
    )?;
    let baseline = read_and_hash(&slide_path)?;
    let start = Instant::now();
    let file = std::fs::File::open(&slide_path)?;
    let image: Value = ok(http
        .post(server.url("/projects/default/images?name=large-slide.tif"))
        .bearer_auth(&server.token)
        .header("content-type", "application/octet-stream")
        .body(Body::sized(file, slide.bytes))
        .send()?)?
    .json()?;
    let upload = start.elapsed();
    let image_id = image["id"]
        .as_str()
        .context("upload answer has no id")?
        .to_string();
    let (up, base) = (
        mb_per_s(slide.bytes, upload),
        mb_per_s(slide.bytes, baseline),
    );
    rows.push(row(
        &format!(
            "upload {}² tiled TIFF ({:.0} MB)",
            slide.size,
            slide.bytes as f64 / 1e6
        ),
        format!("{up:.0} MB/s"),
        "",
        None,
    ));
    rows.push(row(
        "  vs read + sha256 of the file",
        format!("{base:.0} MB/s ({:.2}×)", up / base),
        "",
        None,
    ));

    // Deep-zoom tiles: a cold pass over distinct tiles of the full-resolution level, then the
    // same tiles again.
    let dzi_level = (f64::from(slide.size)).log2().ceil() as u32;
    let across = slide.size.div_ceil(254);
    let base_path = format!("/projects/default/images/{image_id}/image_files/{dzi_level}");
    let paths: Vec<String> = (0..TILE_REQUESTS)
        .map(|i| {
            let i = i as u32 * 7919 % (across * across);
            format!("{base_path}/{}_{}.jpeg", i % across, i / across)
        })
        .collect();
    for (pass, label) in [("cold", "distinct tiles"), ("warm", "same tiles again")] {
        let (per_s, p50, p95) = fetch_concurrently(&server, &paths)?;
        rows.push(row(
            &format!("deep-zoom tiles, {TILE_CLIENTS} clients, {pass} ({label})"),
            format!("{per_s:.0} req/s"),
            "",
            None,
        ));
        rows.push(row(
            &format!("  latency p50 / p95 ({pass})"),
            format!("{} / {}", fmt(p50), fmt(p95)),
            "",
            None,
        ));
    }

    // 200,000 annotations: one PUT, a viewer-sized bbox read, a full read.
    let collection = nuclei_collection(ANNOTATIONS, f64::from(slide.size));
    let body = serde_json::to_vec(&collection)?;
    let annotations = format!("/projects/default/images/{image_id}/annotations");
    let start = Instant::now();
    ok(http
        .put(server.url(&format!("{annotations}?source=bench")))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()?)?;
    let write = start.elapsed();
    rows.push(row(
        &format!(
            "write {ANNOTATIONS} annotations (PUT, {:.0} MB)",
            body.len() as f64 / 1e6
        ),
        fmt(write),
        "< 10 s",
        Some(write < Duration::from_secs(10)),
    ));
    let viewport = 2048.0;
    let read_bbox = || -> anyhow::Result<(Duration, usize)> {
        let start = Instant::now();
        let got: Value = ok(http
            .get(server.url(&format!(
                "{annotations}?source=bench&bbox=10000,10000,{},{}",
                10000.0 + viewport,
                10000.0 + viewport
            )))
            .bearer_auth(&server.token)
            .send()?)?
        .json()?;
        let n = got["features"].as_array().map_or(0, Vec::len);
        Ok((start.elapsed(), n))
    };
    let mut bbox_times = Vec::new();
    let mut found = 0;
    for _ in 0..5 {
        let (t, n) = read_bbox()?;
        bbox_times.push(t);
        found = n;
    }
    let bbox = crate::median(bbox_times);
    let start = Instant::now();
    let all: Value = ok(http
        .get(server.url(&format!("{annotations}?source=bench")))
        .bearer_auth(&server.token)
        .send()?)?
    .json()?;
    let full = start.elapsed();
    let total = all["features"].as_array().map_or(0, Vec::len);
    if total != ANNOTATIONS {
        bail!("wrote {ANNOTATIONS} annotations, read back {total}");
    }
    rows.push(row(
        &format!("bbox read {viewport}² viewport ({found} of {ANNOTATIONS})"),
        fmt(bbox),
        "",
        None,
    ));
    rows.push(row(
        &format!("  vs read all {ANNOTATIONS}"),
        format!(
            "{} ({:.0}× the bbox read)",
            fmt(full),
            full.as_secs_f64() / bbox.as_secs_f64()
        ),
        "",
        None,
    ));
    Ok(rows)
}
