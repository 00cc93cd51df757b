//! The GPU kernels at 1k x 1k and 4k x 4k on every backend this machine has, against the host's
//! CPU path, and nuclei-detect end to end per backend.
//!
//! A kernel's time covers its launches and waiting for them (`Session::wait`), not moving its
//! input to the device or its result back: on a GPU the data stays there between kernels.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tessera::gpu::{BackendChoice, Gpu, GpuError, MorphOp, Session, Shape, Tensor};
use tessera::jobs::{self, RunOptions};
use tessera::{Config, Tessera};
use tessera_sdk::ops::{self, Connectivity};

use super::{fmt, median, time_n};

/// One kernel at one size: the CPU path's time and each device backend's.
pub struct KernelRow {
    kernel: &'static str,
    side: u32,
    cpu: Option<Duration>,
    devices: Vec<(&'static str, Result<Duration, String>)>,
}

/// Deterministic test data: a tissue-like RGB image (smooth stain blobs plus noise).
fn rgb(side: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut out = Vec::with_capacity((side * side * 3) as usize);
    for y in 0..side {
        for x in 0..side {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state % 24) as f32;
            let blob = ((x as f32 / 9.0).sin() * (y as f32 / 7.0).cos()).max(0.0);
            let r = 230.0 - 120.0 * blob + noise;
            let g = 220.0 - 150.0 * blob + noise;
            let b = 235.0 - 60.0 * blob + noise;
            out.extend_from_slice(&[r as u8, g as u8, b as u8]);
        }
    }
    out
}

type Kernel = fn(&Session, &Inputs) -> Result<Tensor, GpuError>;

/// Inputs of every kernel, made once per session and size.
struct Inputs {
    rgb: Tensor,
    plane: Tensor,
    mask: Tensor,
    labels: (Tensor, u32),
}

impl Inputs {
    fn new(session: &Session, side: u32, rgb: &[u8]) -> Result<Inputs, GpuError> {
        let rgb = session.upload_rgb(side, side, rgb)?;
        let plane = session.gaussian_blur(
            &session.color_deconvolution(&rgb, &ops::HED_FROM_RGB, 0)?,
            1.0,
        )?;
        let level = session.otsu_threshold(&plane)?;
        let mask = session.threshold(&plane, level, true)?;
        let labels = session.label_components(&mask, Connectivity::Eight)?;
        Ok(Inputs {
            rgb,
            plane,
            mask,
            labels,
        })
    }
}

const KERNELS: &[(&str, Kernel)] = &[
    ("optical density", |s, i| s.optical_density(&i.rgb)),
    ("colour deconvolution", |s, i| {
        s.color_deconvolution(&i.rgb, &ops::HED_FROM_RGB, 0)
    }),
    ("grayscale", |s, i| s.grayscale(&i.rgb)),
    ("gaussian blur sigma 2", |s, i| {
        s.gaussian_blur(&i.plane, 2.0)
    }),
    ("otsu (min-max + histogram)", |s, i| {
        let level = s.otsu_threshold(&i.plane)?;
        s.upload_f32(Shape::plane(1, 1), vec![level])
    }),
    ("threshold", |s, i| s.threshold(&i.plane, 0.05, true)),
    ("morphology open r=1", |s, i| {
        s.morphology(&i.mask, MorphOp::Open, 1)
    }),
    ("label components (8)", |s, i| {
        Ok(s.label_components(&i.mask, Connectivity::Eight)?.0)
    }),
    ("region stats", |s, i| {
        let stats = s.region_stats(&i.labels.0, i.labels.1)?;
        s.upload_f32(Shape::plane(1, 1), vec![stats.len() as f32])
    }),
    ("remove small objects (4)", |s, i| {
        s.remove_small_objects(&i.mask, 30, Connectivity::Four)
    }),
];

fn time_kernel(
    session: &Session,
    inputs: &Inputs,
    kernel: Kernel,
    reps: usize,
) -> Result<Duration, GpuError> {
    // The first run compiles the kernels on a device; it is not timed.
    session.wait(&kernel(session, inputs)?)?;
    let mut failure = None;
    let t = time_n(reps, || {
        match kernel(session, inputs).and_then(|t| session.wait(&t)) {
            Ok(()) => {}
            Err(e) => failure = Some(e),
        }
        Ok(())
    })
    .expect("the closure does not fail");
    match failure {
        Some(e) => Err(e),
        None => Ok(t),
    }
}

/// Device backends to measure besides the CPU path.
fn devices() -> Vec<(&'static str, Arc<Gpu>)> {
    let mut found = Vec::new();
    for (name, choice) in [("wgpu", BackendChoice::Wgpu), ("cuda", BackendChoice::Cuda)] {
        match Gpu::open(choice) {
            Ok(gpu) => found.push((name, Arc::new(gpu))),
            Err(e) => eprintln!("(no {name} backend: {e})"),
        }
    }
    found
}

/// Every kernel at 1024² and 4096².
pub fn kernels() -> anyhow::Result<Vec<KernelRow>> {
    let cpu = Arc::new(Gpu::cpu());
    let devices = devices();
    let mut rows = Vec::new();
    for (side, reps) in [(1024u32, 3usize), (4096, 1)] {
        let pixels = rgb(side);
        let grant = 8 << 30;
        let cpu_session = cpu.session(grant);
        let cpu_inputs = Inputs::new(&cpu_session, side, &pixels)?;
        let device_inputs: Vec<_> = devices
            .iter()
            .map(|(name, gpu)| {
                let session = gpu.session(grant);
                let inputs = Inputs::new(&session, side, &pixels);
                (*name, session, inputs)
            })
            .collect();
        for (kernel, f) in KERNELS {
            let cpu_time = time_kernel(&cpu_session, &cpu_inputs, *f, reps).ok();
            let devices = device_inputs
                .iter()
                .map(|(name, session, inputs)| {
                    let t = match inputs {
                        Ok(inputs) => {
                            time_kernel(session, inputs, *f, reps).map_err(|e| e.to_string())
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    (*name, t)
                })
                .collect();
            rows.push(KernelRow {
                kernel,
                side,
                cpu: cpu_time,
                devices,
            });
        }
    }
    Ok(rows)
}

/// nuclei-detect on the SVS with `device=cpu` (in the plugin) and `device=gpu` on each backend.
pub fn nuclei_per_backend(svs: &Path, dir: &Path) -> anyhow::Result<Vec<(String, Duration, u64)>> {
    let mut out = Vec::new();
    let mut backends = vec![("host cpu path", BackendChoice::Cpu)];
    if Gpu::open(BackendChoice::Wgpu).is_ok() {
        backends.push(("wgpu", BackendChoice::Wgpu));
    }
    if Gpu::open(BackendChoice::Cuda).is_ok() {
        backends.push(("cuda", BackendChoice::Cuda));
    }
    let root = super::root();
    for (i, (name, choice)) in backends.into_iter().enumerate() {
        let mut config = Config::new(dir.join(format!("lake{i}")));
        config.gpu_backend = Some(choice);
        let lake = Tessera::open(config)?;
        lake.install_plugin(
            &root.join("plugins/nuclei-detect"),
            Some(&super::wasm("nuclei-detect")?),
        )?;
        let (image, _) = lake.import_file(svs)?;
        let runs = |device: &str| -> anyhow::Result<(Duration, u64)> {
            let mut times = Vec::new();
            let mut count = 0;
            for _ in 0..3 {
                let options = RunOptions {
                    params: vec![("device".into(), device.into())],
                    ..RunOptions::default()
                };
                let outcome = jobs::run_on_image(&lake, "nuclei-detect", &image, options)?;
                count = outcome.record.annotation_count;
                times.push(outcome.elapsed);
            }
            Ok((median(times), count))
        };
        if i == 0 {
            let (t, n) = runs("cpu")?;
            out.push(("device=cpu (in the plugin)".to_string(), t, n));
        }
        let (t, n) = runs("gpu")?;
        out.push((format!("device=gpu on {name}"), t, n));
    }
    Ok(out)
}

/// Prints the kernel table (CPU path time, each backend's time and speed-up) and the end-to-end
/// rows.
pub fn print(rows: &[KernelRow], end_to_end: &[(String, Duration, u64)]) {
    println!();
    let names: Vec<&str> = rows
        .first()
        .map(|r| r.devices.iter().map(|(n, _)| *n).collect())
        .unwrap_or_default();
    print!("{:<28} {:>10} {:>10}", "KERNEL", "SIZE", "CPU PATH");
    for n in &names {
        print!(" {:>12} {:>8}", n.to_uppercase(), "SPEED-UP");
    }
    println!();
    for r in rows {
        let cpu = r.cpu.map(fmt).unwrap_or_else(|| "failed".into());
        print!(
            "{:<28} {:>10} {:>10}",
            r.kernel,
            format!("{0}x{0}", r.side),
            cpu
        );
        for (_, t) in &r.devices {
            match (t, r.cpu) {
                (Ok(t), Some(c)) => print!(
                    " {:>12} {:>8}",
                    fmt(*t),
                    format!("{:.2}x", c.as_secs_f64() / t.as_secs_f64())
                ),
                (Ok(t), None) => print!(" {:>12} {:>8}", fmt(*t), ""),
                (Err(e), _) => print!(" {:>12} {:>8}", "n/a", short(e)),
            }
        }
        println!();
    }
    if names.is_empty() {
        println!("(no device backend on this machine: only the CPU path was measured)");
    }
    println!();
    println!(
        "{:<40} {:>14} {:>8}",
        "NUCLEI-DETECT ON SVS", "TIME", "NUCLEI"
    );
    for (what, t, n) in end_to_end {
        println!("{what:<40} {:>14} {n:>8}", fmt(*t));
    }
    println!();
    println!("(speed-up = CPU path time / backend time; lavapipe is a software driver on the CPU)");
}

fn short(e: &str) -> String {
    if e.contains("larger than the device allows") {
        "too big".into()
    } else {
        "error".into()
    }
}
