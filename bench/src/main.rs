//! `tessera-bench`: the plugin runtime's figures, measured in one run and printed as one table.
//!
//! Run it with `scripts/bench` (which builds the wasm components first). Each figure is the
//! median of several repetitions; ratios compare two figures measured side by side here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tessera::imaging::Slide;
use tessera::jobs::{self, RunOptions};
use tessera::runtime::{Runtime, engine_config};
use tessera::{Config, Tessera};
use tessera_sdk::{ImageInfo, ImageSource, LevelInfo, Rect, RgbImage};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

mod big_tiff;
mod gpu_bench;
mod lake;

wasmtime::component::bindgen!({ path: "wit", world: "probe" });

/// Bytes moved per transfer measurement.
const TRANSFER_BYTES: usize = 4 << 20;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time_n(n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        f()?;
        samples.push(start.elapsed());
    }
    Ok(median(samples))
}

struct Row {
    what: String,
    value: String,
    target: String,
    pass: Option<bool>,
}

fn row(what: &str, value: String, target: &str, pass: Option<bool>) -> Row {
    Row {
        what: what.to_string(),
        value,
        target: target.to_string(),
        pass,
    }
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn wasm(krate: &str) -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let path = target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", krate.replace('-', "_")));
    if !path.is_file() {
        bail!(
            "{} is missing; hint: run scripts/bench, which builds the components first",
            path.display()
        );
    }
    Ok(path)
}

/// A store image seen through the SDK's trait, so the native run reads the same tiles.
struct SlideSource(Arc<Slide>);

impl ImageSource for SlideSource {
    fn info(&self) -> ImageInfo {
        let i = self.0.info();
        ImageInfo {
            id: "native".into(),
            width: i.width,
            height: i.height,
            levels: i
                .levels
                .iter()
                .map(|l| LevelInfo {
                    width: l.width,
                    height: l.height,
                    downsample: l.downsample,
                })
                .collect(),
            microns_per_pixel: i.microns_per_pixel,
        }
    }

    fn read_region(&self, level: u32, rect: Rect) -> Result<RgbImage, tessera_sdk::Error> {
        let r = tessera::imaging::Rect {
            x: rect.x,
            y: rect.y,
            width: rect.width,
            height: rect.height,
        };
        let data = self
            .0
            .read_region(level, r)
            .map_err(|e| tessera_sdk::Error::Internal(e.to_string()))?;
        RgbImage::new(rect.width, rect.height, data)
    }
}

fn main() -> anyhow::Result<()> {
    let backtrace = std::env::var("RUST_BACKTRACE").unwrap_or_default();
    if !backtrace.is_empty() && backtrace != "0" {
        eprintln!("warning: RUST_BACKTRACE={backtrace} makes wasmtime errors slower; unset it");
    }
    let scratch = tempfile::tempdir()?;
    let nuclei = std::fs::read(wasm("nuclei-detect")?)?;
    let mut rows = Vec::new();

    // 1. Cold compile vs cached load.
    let engine = Engine::new(&engine_config(true)).map_err(anyhow::Error::from)?;
    let cold = time_n(5, || {
        Component::new(&engine, &nuclei).map_err(anyhow::Error::from)?;
        Ok(())
    })?;
    let artifact = scratch.path().join("nuclei.cwasm");
    let compiled = Component::new(&engine, &nuclei).map_err(anyhow::Error::from)?;
    std::fs::write(
        &artifact,
        compiled.serialize().map_err(anyhow::Error::from)?,
    )?;
    let cached = time_n(50, || {
        // SAFETY: the artifact was serialized just above by this same engine.
        unsafe { Component::deserialize_file(&engine, &artifact) }.map_err(anyhow::Error::from)?;
        Ok(())
    })?;
    let speedup = cold.as_secs_f64() / cached.as_secs_f64();
    rows.push(row("compile nuclei-detect (cold)", fmt(cold), "", None));
    rows.push(row("load nuclei-detect (cached)", fmt(cached), "", None));
    rows.push(row(
        "cached load speed-up",
        format!("{speedup:.0}x"),
        ">= 40x",
        Some(speedup >= 40.0),
    ));

    // 2. Instantiation, pooling vs on-demand, through the real runtime (fresh Store, WASI
    //    context, limits, deadline).
    let mut per_alloc = Vec::new();
    for pooling in [true, false] {
        let runtime = Runtime::with_pooling(&scratch.path().join(format!("c{pooling}")), pooling)?;
        let digest = tessera::runtime::cache::sha256_hex(&nuclei);
        let limits = tessera::runtime::PluginLimits::clamped(Some(1 << 30), None);
        let plugin = runtime.load("nuclei-detect", "0.1.0", &nuclei, &digest, limits)?;
        for _ in 0..200 {
            plugin.instantiate_only()?;
        }
        let t = time_n(2000, || Ok(plugin.instantiate_only()?))?;
        per_alloc.push(t);
    }
    rows.push(row(
        "instantiate (pooling)",
        fmt(per_alloc[0]),
        "<= 10 µs",
        Some(per_alloc[0] <= Duration::from_micros(10)),
    ));
    rows.push(row("instantiate (on-demand)", fmt(per_alloc[1]), "", None));

    // 3. The boundary itself: a no-op call and a 4 MiB copy into the guest.
    let probe_bytes = std::fs::read(wasm("bench-probe")?)?;
    let probe = Component::new(&engine, &probe_bytes).map_err(anyhow::Error::from)?;
    let linker = Linker::<()>::new(&engine);
    let mut store = Store::new(&engine, ());
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = Probe::instantiate(&mut store, &probe, &linker).map_err(anyhow::Error::from)?;
    const CALLS: u32 = 200_000;
    let start = Instant::now();
    for _ in 0..CALLS {
        instance
            .call_noop(&mut store)
            .map_err(anyhow::Error::from)?;
    }
    let per_call = start.elapsed() / CALLS;
    rows.push(row(
        "trivial host->guest call",
        fmt(per_call),
        "<= 200 ns",
        Some(per_call <= Duration::from_nanos(200)),
    ));
    let payload = vec![7u8; TRANSFER_BYTES];
    let transfer = time_n(200, || {
        let n = instance
            .call_take(&mut store, &payload)
            .map_err(anyhow::Error::from)?;
        anyhow::ensure!(n as usize == TRANSFER_BYTES, "guest saw {n} bytes");
        Ok(())
    })?;
    let gbps = TRANSFER_BYTES as f64 / transfer.as_secs_f64() / 1e9;
    rows.push(row(
        "4 MiB host->guest transfer",
        format!("{gbps:.1} GB/s"),
        ">= 10 GB/s",
        Some(gbps >= 10.0),
    ));

    // 4. nuclei-detect on the SVS: the wasm plugin through the whole runtime vs the same Rust
    //    code compiled natively, reading the same tiles from the same decoder.
    let lake = Tessera::open(Config::new(scratch.path().join("lake")))?;
    lake.install_plugin(
        &root().join("plugins/nuclei-detect"),
        Some(&wasm("nuclei-detect")?),
    )?;
    let svs = root().join("examples/data/cmu_small_region.svs");
    let (image, _) = lake.import_file(&svs).context("importing the SVS sample")?;
    let mut wasm_times = Vec::new();
    let mut wasm_count = 0;
    let on_cpu = || RunOptions {
        params: vec![("device".into(), "cpu".into())],
        ..RunOptions::default()
    };
    for _ in 0..3 {
        let outcome = jobs::run_on_image(&lake, "nuclei-detect", &image, on_cpu())?;
        wasm_count = outcome.record.annotation_count;
        wasm_times.push(outcome.elapsed);
    }
    let params = nuclei_detect::pipeline::NucleiParams::default();
    let mut native_count = 0;
    let native = time_n(3, || {
        // A freshly opened slide each time, as each wasm run gets: same decoding work.
        let source = SlideSource(lake.open_slide(&image)?);
        let analysis = nuclei_detect::analyze(&source, None, &params, &mut |_, _| Ok(()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        native_count = analysis.to_output().annotations.len() as u64;
        Ok(())
    })?;
    anyhow::ensure!(
        wasm_count == native_count,
        "wasm found {wasm_count} nuclei, native {native_count}"
    );
    let wasm_time = median(wasm_times);
    let ratio = wasm_time.as_secs_f64() / native.as_secs_f64();
    rows.push(row("nuclei-detect on SVS (wasm)", fmt(wasm_time), "", None));
    rows.push(row("nuclei-detect on SVS (native)", fmt(native), "", None));
    rows.push(row(
        "wasm / native",
        format!("{ratio:.2}"),
        "<= 1.3",
        Some(ratio <= 1.3),
    ));

    // 5. The data lake over HTTP on 127.0.0.1.
    rows.extend(lake::rows(&root(), scratch.path())?);

    // 6. The GPU kernels and nuclei-detect per backend.
    let kernel_rows = gpu_bench::kernels()?;
    let end_to_end = gpu_bench::nuclei_per_backend(&svs, &scratch.path().join("gpu"))?;

    // 7. The tables.
    let what = rows
        .iter()
        .map(|r| r.what.chars().count())
        .max()
        .unwrap_or(0);
    let value = rows
        .iter()
        .map(|r| r.value.chars().count())
        .max()
        .unwrap_or(0);
    println!();
    println!(
        "{:<what$} {:>value$} {:>12} {:>6}",
        "MEASUREMENT", "VALUE", "TARGET", ""
    );
    for r in &rows {
        let status = match r.pass {
            Some(true) => "ok",
            Some(false) => "MISS",
            None => "",
        };
        println!(
            "{:<what$} {:>value$} {:>12} {:>6}",
            r.what, r.value, r.target, status
        );
    }
    println!();
    println!(
        "({} nuclei on the SVS; medians; 2-core machine numbers are noisy)",
        native_count
    );
    gpu_bench::print(&kernel_rows, &end_to_end);
    Ok(())
}
