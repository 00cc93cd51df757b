//! Every kernel on every backend this machine has, against the CPU path, on random planes and
//! on the IHC sample image.
//!
//! Without a wgpu adapter the device half is skipped with a line on stderr and the CPU path is
//! still checked; with `TESSERA_TEST_REQUIRE_GPU_ADAPTER=1` (CI sets it) a missing adapter fails
//! the tests instead.

use std::sync::{Arc, OnceLock};

use super::*;

/// Tolerances of the device kernels against the CPU path (also listed in `docs/runtime.md`).
const OPTICAL_DENSITY_TOL: f32 = 1e-5;
const DECONVOLUTION_TOL: f32 = 1e-5;
const GRAY_TOL: f32 = 1e-6;
const BLUR_RELATIVE_TOL: f32 = 1e-5;

const GRANT: u64 = 1 << 30;

/// The wgpu device, opened once for all tests of the process.
fn wgpu() -> Option<Arc<Gpu>> {
    static DEVICE: OnceLock<Option<Arc<Gpu>>> = OnceLock::new();
    DEVICE
        .get_or_init(|| match Gpu::open(BackendChoice::Wgpu) {
            Ok(gpu) => Some(Arc::new(gpu)),
            Err(e) => {
                if std::env::var_os("TESSERA_TEST_REQUIRE_GPU_ADAPTER").is_some_and(|v| v == "1") {
                    panic!("TESSERA_TEST_REQUIRE_GPU_ADAPTER=1 but {e}");
                }
                eprintln!("SKIPPED: wgpu kernels not tested, {e}; the CPU path still is");
                None
            }
        })
        .clone()
}

fn cpu() -> Session {
    Arc::new(Gpu::cpu()).session(GRANT)
}

/// Runs `check(cpu, device)` for each device backend present.
fn on_devices(check: impl Fn(&Session, &Session)) {
    let reference = cpu();
    if let Some(gpu) = wgpu() {
        check(&reference, &gpu.session(GRANT));
    }
}

/// Deterministic pseudo-random numbers (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Blobby random mask: random points dilated, so objects of many sizes and shapes.
fn random_mask(random: &mut Random, width: usize, height: usize, density: f32) -> Vec<u32> {
    let seeds: Vec<u32> = (0..width * height)
        .map(|_| u32::from(random.unit() < density))
        .collect();
    cpu::erode_or_dilate(&seeds, width, height, 1, true)
}

fn ihc() -> (Vec<u8>, u32, u32) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/data/skimage_ihc.png"
    );
    let image = image::open(path).expect("sample decodes").to_rgb8();
    let (w, h) = image.dimensions();
    (image.into_raw(), w, h)
}

/// Equal vectors, reporting the first difference rather than both vectors.
fn assert_same<T: PartialEq + std::fmt::Debug>(what: &str, device: &[T], reference: &[T]) {
    assert_eq!(device.len(), reference.len(), "{what}: lengths");
    if let Some(i) = (0..device.len()).find(|&i| device[i] != reference[i]) {
        let differ = (0..device.len())
            .filter(|&i| device[i] != reference[i])
            .count();
        panic!(
            "{what}: {differ} elements differ, the first at {i}: {:?} on the device, {:?} on the CPU",
            device[i], reference[i]
        );
    }
}

fn assert_close(what: &str, device: &[f32], reference: &[f32], abs: f32, rel: f32) {
    assert_eq!(device.len(), reference.len(), "{what}: lengths");
    for (i, (d, r)) in device.iter().zip(reference).enumerate() {
        let tol = abs + rel * r.abs();
        assert!(
            (d - r).abs() <= tol,
            "{what}: element {i} is {d} on the device, {r} on the CPU (tolerance {tol})"
        );
    }
}

/// Inputs: a random RGB image (odd size, so no kernel relies on multiples of the cube size)
/// and the IHC sample.
fn rgb_inputs() -> Vec<(String, Vec<u8>, u32, u32)> {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let (w, h) = (257, 131);
    let (ihc, iw, ih) = ihc();
    vec![
        ("random".into(), random.bytes(w * h * 3), w as u32, h as u32),
        ("skimage_ihc.png".into(), ihc, iw, ih),
    ]
}

fn f32_inputs() -> Vec<(String, Vec<f32>, u32, u32)> {
    let mut random = Random(42);
    let (w, h) = (301, 97);
    let noise: Vec<f32> = (0..w * h).map(|_| random.unit() * 4.0 - 1.0).collect();
    let (ihc, iw, ih) = ihc();
    let hematoxylin = ops::hematoxylin(&ihc);
    vec![
        ("random".into(), noise, w as u32, h as u32),
        ("ihc haematoxylin".into(), hematoxylin, iw, ih),
    ]
}

fn mask_inputs() -> Vec<(String, Vec<u32>, u32, u32)> {
    let mut random = Random(7);
    let (w, h) = (203, 157);
    let sparse = random_mask(&mut random, w, h, 0.05);
    let dense = random_mask(&mut random, w, h, 0.3);
    let (ihc, iw, ih) = ihc();
    let hematoxylin = ops::gaussian_blur(&ops::hematoxylin(&ihc), iw as usize, ih as usize, 1.0);
    let level = ops::otsu_threshold(&hematoxylin);
    let nuclei = cpu::threshold(&hematoxylin, level, true);
    vec![
        ("sparse random".into(), sparse, w as u32, h as u32),
        ("dense random".into(), dense, w as u32, h as u32),
        ("ihc nuclei".into(), nuclei, iw, ih),
    ]
}

#[test]
fn optical_density_matches_the_cpu_path() {
    on_devices(|reference, device| {
        for (name, rgb, w, h) in rgb_inputs() {
            let r = reference.upload_rgb(w, h, &rgb).unwrap();
            let d = device.upload_rgb(w, h, &rgb).unwrap();
            let expected = reference
                .download_f32(&reference.optical_density(&r).unwrap())
                .unwrap();
            let actual = device
                .download_f32(&device.optical_density(&d).unwrap())
                .unwrap();
            assert_close(&name, &actual, &expected, OPTICAL_DENSITY_TOL, 0.0);
        }
    });
}

#[test]
fn color_deconvolution_matches_the_cpu_path_for_every_stain() {
    on_devices(|reference, device| {
        for (name, rgb, w, h) in rgb_inputs() {
            let r = reference.upload_rgb(w, h, &rgb).unwrap();
            let d = device.upload_rgb(w, h, &rgb).unwrap();
            for stain in 0..3 {
                let expected = reference
                    .download_f32(
                        &reference
                            .color_deconvolution(&r, &ops::HED_FROM_RGB, stain)
                            .unwrap(),
                    )
                    .unwrap();
                let actual = device
                    .download_f32(
                        &device
                            .color_deconvolution(&d, &ops::HED_FROM_RGB, stain)
                            .unwrap(),
                    )
                    .unwrap();
                assert_close(
                    &format!("{name} stain {stain}"),
                    &actual,
                    &expected,
                    DECONVOLUTION_TOL,
                    0.0,
                );
            }
        }
    });
}

#[test]
fn grayscale_matches_the_cpu_path() {
    on_devices(|reference, device| {
        for (name, rgb, w, h) in rgb_inputs() {
            let expected = reference
                .download_f32(
                    &reference
                        .grayscale(&reference.upload_rgb(w, h, &rgb).unwrap())
                        .unwrap(),
                )
                .unwrap();
            let actual = device
                .download_f32(
                    &device
                        .grayscale(&device.upload_rgb(w, h, &rgb).unwrap())
                        .unwrap(),
                )
                .unwrap();
            assert_close(&name, &actual, &expected, GRAY_TOL, 0.0);
        }
    });
}

#[test]
fn gaussian_blur_matches_the_cpu_path_for_several_sigmas() {
    on_devices(|reference, device| {
        for (name, values, w, h) in f32_inputs() {
            let shape = Shape::plane(w, h);
            let r = reference.upload_f32(shape, values.clone()).unwrap();
            let d = device.upload_f32(shape, values).unwrap();
            for sigma in [0.0, 0.5, 1.0, 2.5, 8.0] {
                let expected = reference
                    .download_f32(&reference.gaussian_blur(&r, sigma).unwrap())
                    .unwrap();
                let actual = device
                    .download_f32(&device.gaussian_blur(&d, sigma).unwrap())
                    .unwrap();
                assert_close(
                    &format!("{name} sigma {sigma}"),
                    &actual,
                    &expected,
                    1e-7,
                    BLUR_RELATIVE_TOL,
                );
            }
        }
    });
}

#[test]
fn min_max_histogram_and_otsu_equal_the_cpu_path() {
    on_devices(|reference, device| {
        for (name, values, w, h) in f32_inputs() {
            let shape = Shape::plane(w, h);
            let r = reference.upload_f32(shape, values.clone()).unwrap();
            let d = device.upload_f32(shape, values.clone()).unwrap();
            let range = reference.min_max(&r).unwrap();
            assert_eq!(device.min_max(&d).unwrap(), range, "{name}: min-max");
            let (min, max) = range.unwrap();
            for (lo, hi) in [(min, max), (0.0, 0.5), (min, min)] {
                assert_eq!(
                    device.histogram(&d, lo, hi).unwrap(),
                    reference.histogram(&r, lo, hi).unwrap(),
                    "{name}: histogram over {lo}..{hi}"
                );
            }
            let otsu = device.otsu_threshold(&d).unwrap();
            assert_eq!(otsu, reference.otsu_threshold(&r).unwrap(), "{name}: otsu");
            assert_eq!(otsu, ops::otsu_threshold(&values), "{name}: the SDK's otsu");
        }
    });
}

#[test]
fn threshold_equals_the_cpu_path() {
    on_devices(|reference, device| {
        for (name, values, w, h) in f32_inputs() {
            let shape = Shape::plane(w, h);
            let r = reference.upload_f32(shape, values.clone()).unwrap();
            let d = device.upload_f32(shape, values).unwrap();
            for above in [true, false] {
                assert_same(
                    &format!("{name}: above {above}"),
                    &device
                        .download_u32(&device.threshold(&d, 0.25, above).unwrap())
                        .unwrap(),
                    &reference
                        .download_u32(&reference.threshold(&r, 0.25, above).unwrap())
                        .unwrap(),
                );
            }
        }
    });
}

#[test]
fn morphology_equals_the_cpu_path() {
    on_devices(|reference, device| {
        for (name, mask, w, h) in mask_inputs() {
            let shape = Shape::plane(w, h);
            let r = reference.upload_u32(shape, mask.clone()).unwrap();
            let d = device.upload_u32(shape, mask).unwrap();
            for op in [
                MorphOp::Erode,
                MorphOp::Dilate,
                MorphOp::Open,
                MorphOp::Close,
            ] {
                for radius in [0, 1, 3] {
                    assert_same(
                        &format!("{name}: {op:?} radius {radius}"),
                        &device
                            .download_u32(&device.morphology(&d, op, radius).unwrap())
                            .unwrap(),
                        &reference
                            .download_u32(&reference.morphology(&r, op, radius).unwrap())
                            .unwrap(),
                    );
                }
            }
        }
    });
}

#[test]
fn labelling_speck_removal_and_region_stats_equal_the_cpu_path() {
    on_devices(|reference, device| {
        for (name, mask, w, h) in mask_inputs() {
            let shape = Shape::plane(w, h);
            let r = reference.upload_u32(shape, mask.clone()).unwrap();
            let d = device.upload_u32(shape, mask).unwrap();
            for connectivity in [Connectivity::Four, Connectivity::Eight] {
                let (rl, rc) = reference.label_components(&r, connectivity).unwrap();
                let (dl, dc) = device.label_components(&d, connectivity).unwrap();
                assert_eq!(dc, rc, "{name} {connectivity:?}: count");
                assert!(rc > 0, "{name}: the input has objects");
                assert_same(
                    &format!("{name} {connectivity:?}: labels"),
                    &device.download_u32(&dl).unwrap(),
                    &reference.download_u32(&rl).unwrap(),
                );
                let expected = reference.region_stats(&rl, rc).unwrap();
                let actual = device.region_stats(&dl, dc).unwrap();
                assert_eq!(actual.len(), expected.len());
                for (a, e) in actual.iter().zip(&expected) {
                    assert_eq!(
                        (a.label, a.area, a.bbox),
                        (e.label, e.area, e.bbox),
                        "{name}"
                    );
                    assert!((a.centroid_x - e.centroid_x).abs() < 1e-9, "{name}");
                    assert!((a.centroid_y - e.centroid_y).abs() < 1e-9, "{name}");
                }
                for min_area in [2, 30] {
                    assert_same(
                        &format!("{name} {connectivity:?}: objects under {min_area} removed"),
                        &device
                            .download_u32(
                                &device
                                    .remove_small_objects(&d, min_area, connectivity)
                                    .unwrap(),
                            )
                            .unwrap(),
                        &reference
                            .download_u32(
                                &reference
                                    .remove_small_objects(&r, min_area, connectivity)
                                    .unwrap(),
                            )
                            .unwrap(),
                    );
                }
            }
        }
    });
}

#[test]
fn a_serpentine_object_is_one_label_on_the_device() {
    // One object that winds through the whole plane: the worst case of label propagation.
    let (w, h) = (63usize, 61usize);
    let mut mask = vec![0u32; w * h];
    for y in (0..h).step_by(2) {
        mask[y * w..(y + 1) * w].fill(1);
        if y + 1 < h {
            let x = if (y / 2) % 2 == 0 { w - 1 } else { 0 };
            mask[(y + 1) * w + x] = 1;
        }
    }
    on_devices(|_, device| {
        let d = device
            .upload_u32(Shape::plane(w as u32, h as u32), mask.clone())
            .unwrap();
        let (labels, count) = device.label_components(&d, Connectivity::Four).unwrap();
        assert_eq!(count, 1);
        assert_same("serpentine", &device.download_u32(&labels).unwrap(), &mask);
    });
}

#[test]
fn the_grant_bounds_what_a_session_holds_and_drops_return_it() {
    // A device of its own, so that no other test's tensors count in its total.
    let mut sessions = vec![Arc::new(Gpu::cpu())];
    if wgpu().is_some() {
        sessions.push(Arc::new(Gpu::open(BackendChoice::Wgpu).unwrap()));
    }
    for gpu in sessions {
        let session = gpu.session(3 * 4096);
        let a = session
            .upload_f32(Shape::plane(32, 32), vec![0.0; 1024])
            .unwrap();
        let b = session.gaussian_blur(&a, 1.0).unwrap();
        let err = session.optical_density(&session.upload_rgb(32, 32, &[0; 3072]).unwrap());
        assert!(
            matches!(err, Err(GpuError::Grant { .. })),
            "{:?}",
            err.err()
        );
        assert_eq!(session.used(), 2 * 4096);
        assert_eq!(gpu.bytes_in_use(), 2 * 4096);
        drop((a, b));
        assert_eq!(session.used(), 0);
        assert_eq!(gpu.bytes_in_use(), 0);
    }
}

#[test]
fn wrong_tensors_and_arguments_are_refused_with_a_reason() {
    let session = cpu();
    let plane = session
        .upload_f32(Shape::plane(4, 4), vec![0.0; 16])
        .unwrap();
    let err = session.optical_density(&plane).err().unwrap();
    assert_eq!(
        err.to_string(),
        "optical-density takes a rgb8 tensor, not f32"
    );
    let err = session
        .upload_f32(Shape::plane(4, 4), vec![0.0; 15])
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("15 values do not fill a 4x4x1 tensor"),
        "{err}"
    );
    let mask = session.threshold(&plane, 0.0, true).unwrap();
    let err = session
        .morphology(&mask, MorphOp::Open, 10_000)
        .err()
        .unwrap();
    assert!(err.to_string().contains("radius 10000"), "{err}");
    let err = session.histogram(&plane, 1.0, 0.0).err().unwrap();
    assert!(err.to_string().contains("not finite and ordered"), "{err}");
    assert_eq!(
        BackendChoice::parse("metal").unwrap_err(),
        "TESSERA_GPU_BACKEND=metal is not a backend; expected auto, wgpu, cuda or cpu"
    );
}

#[test]
fn auto_takes_a_hardware_adapter_and_leaves_software_rasterisers_to_the_cpu_path() {
    assert!(is_software_adapter(
        "llvmpipe (LLVM 15.0.6, 256 bits) (wgpu<vulkan>)"
    ));
    assert!(is_software_adapter("SwiftShader Device (Subzero)"));
    assert!(!is_software_adapter("NVIDIA H200 (wgpu<vulkan>)"));
    assert!(!is_software_adapter("AMD Radeon Pro W7900"));
    // On a machine whose only adapter is lavapipe, `auto` runs on the CPU and says why; `wgpu`
    // still opens the adapter.
    if let Some(device) = wgpu()
        && is_software_adapter(&device.adapter())
    {
        let auto = Gpu::open(BackendChoice::Auto).unwrap();
        assert_eq!(auto.kind(), BackendKind::Cpu);
        assert!(auto.adapter().contains("is software"), "{}", auto.adapter());
    }
}
