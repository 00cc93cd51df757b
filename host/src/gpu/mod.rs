//! Image kernels the host runs for plugins on a compute device: the `gpu` interface of plugin
//! API 0.2.0.
//!
//! # Backends
//!
//! The kernels (`kernels.rs`) are written once with cubecl and launched through a
//! runtime-erased `cubecl::client::Client`, so the backend is a choice of [`cubecl::Device`]:
//!
//! | backend | how | status |
//! |---|---|---|
//! | `wgpu` | cubecl's wgpu runtime: Vulkan on a real GPU, Mesa lavapipe on a machine without one | default, built and tested everywhere |
//! | `cuda` | cubecl's CUDA runtime, behind the host's `cuda` cargo feature | off by default and untested: cubecl's CUDA build needs a network download that CI machines cannot make |
//! | `cpu` | plain Rust (`cpu.rs`), the SDK's own operations | always available; the reference of the tests |
//!
//! The setting is [`BACKEND_ENV`] (`auto`, `wgpu`, `cuda`, `cpu`); `auto` takes the first device
//! backend that has a hardware adapter (a software one such as lavapipe is slower than the CPU
//! path, so `auto` skips it; `wgpu` still takes it) and falls back to `cpu`, saying why in the log and in
//! `tessera gpu info`. Adding a runtime means: enable its cubecl feature, add a
//! [`BackendKind`] and its `Device` constructor in [`Gpu::open`]; the kernels do not change.
//!
//! # Memory
//!
//! A plugin's tensors live in its store's resource table. Each holds a [`Lease`] of its bytes
//! against its [`Session`] (the plugin's grant) and against the [`Gpu`]'s total, returned when
//! the tensor drops: when the plugin drops it, or when the store is dropped after the call,
//! trap or not. Scratch buffers of a kernel are leased for the kernel's duration too. On the
//! device, cubecl keeps freed buffers in its pool for reuse; [`Gpu::bytes_in_use`] counts what
//! plugins hold.

pub mod cpu;
mod kernels;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cubecl::prelude::*;
use cubecl::server::Handle;
use tessera_sdk::ops::{self, Connectivity, RegionStats};

/// Environment variable choosing the backend: `auto` (the default), `wgpu`, `cuda` or `cpu`.
pub const BACKEND_ENV: &str = "TESSERA_GPU_BACKEND";

/// Why a kernel call failed.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// The plugin's grant does not cover the memory asked for.
    #[error(
        "device memory grant of {grant} bytes exceeded: {used} bytes held, {asked} more asked for"
    )]
    Grant { grant: u64, used: u64, asked: u64 },
    /// A tensor of the wrong kind or shape, or a bad argument.
    #[error("{0}")]
    Invalid(String),
    /// More elements than the kernels address or the device can bind.
    #[error("a tensor of {0} bytes is larger than the device allows")]
    TooLarge(u64),
    /// The device failed to compile or run a kernel.
    #[error("device error: {0}")]
    Device(String),
    /// No device of the backend asked for.
    #[error("no {backend} adapter: {reason}")]
    Unavailable {
        backend: &'static str,
        reason: String,
    },
}

/// Which backend to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// The first device backend with an adapter, else `cpu`.
    Auto,
    /// cubecl's wgpu runtime.
    Wgpu,
    /// cubecl's CUDA runtime (needs the `cuda` feature).
    Cuda,
    /// The plain-Rust path.
    Cpu,
}

impl BackendChoice {
    /// Parses `auto`, `wgpu`, `cuda` or `cpu`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            "cpu" => Ok(Self::Cpu),
            other => Err(format!(
                "{BACKEND_ENV}={other} is not a backend; expected auto, wgpu, cuda or cpu"
            )),
        }
    }

    /// The choice of [`BACKEND_ENV`], `auto` when unset. An unknown value is an error.
    pub fn from_env() -> Result<Self, String> {
        Self::parse(&std::env::var(BACKEND_ENV).unwrap_or_default())
    }
}

/// The backend a [`Gpu`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// cubecl wgpu (Vulkan, or lavapipe without a GPU).
    Wgpu,
    /// cubecl CUDA.
    Cuda,
    /// Plain Rust on the host's CPU.
    Cpu,
}

impl BackendKind {
    /// `wgpu`, `cuda` or `cpu`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
            Self::Cpu => "cpu",
        }
    }
}

enum Backend {
    Device {
        kind: BackendKind,
        client: Client,
        adapter: String,
        max_binding: u64,
    },
    Cpu {
        why: String,
    },
}

/// A compute device and the kernels on it, shared by every plugin call.
pub struct Gpu {
    backend: Backend,
    in_use: Arc<AtomicU64>,
}

impl Gpu {
    /// Opens the backend `choice` names. `Auto` never fails: without an adapter it runs on the
    /// CPU and says why in [`Gpu::adapter`].
    pub fn open(choice: BackendChoice) -> Result<Gpu, GpuError> {
        let backend = match choice {
            BackendChoice::Cpu => Backend::Cpu {
                why: "chosen".into(),
            },
            BackendChoice::Wgpu => open_wgpu()?,
            BackendChoice::Cuda => open_cuda()?,
            BackendChoice::Auto => match open_cuda().or_else(|_| open_wgpu()) {
                // A software rasteriser is a CPU in disguise, slower than the plain-Rust path:
                // `auto` means "a real GPU if there is one". Ask for `wgpu` to use it anyway.
                Ok(Backend::Device { adapter, .. }) if is_software_adapter(&adapter) => {
                    tracing::info!(%adapter, "only a software adapter; kernels run on the CPU");
                    Backend::Cpu {
                        why: format!("the only adapter, {adapter}, is software"),
                    }
                }
                Ok(device) => device,
                Err(e) => {
                    tracing::info!(error = %e, "no GPU adapter; kernels run on the CPU");
                    Backend::Cpu { why: e.to_string() }
                }
            },
        };
        Ok(Gpu {
            backend,
            in_use: Arc::default(),
        })
    }

    /// The plain-Rust backend.
    pub fn cpu() -> Gpu {
        Gpu {
            backend: Backend::Cpu {
                why: "chosen".into(),
            },
            in_use: Arc::default(),
        }
    }

    /// The backend kernels run on.
    pub fn kind(&self) -> BackendKind {
        match &self.backend {
            Backend::Device { kind, .. } => *kind,
            Backend::Cpu { .. } => BackendKind::Cpu,
        }
    }

    /// The adapter's name, or for the CPU path why it is used.
    pub fn adapter(&self) -> String {
        match &self.backend {
            Backend::Device { adapter, .. } => adapter.clone(),
            Backend::Cpu { why } => format!("host CPU ({why})"),
        }
    }

    /// Bytes of tensors all plugins hold now.
    pub fn bytes_in_use(&self) -> u64 {
        self.in_use.load(Ordering::SeqCst)
    }

    /// The device's limits as `(name, value)` lines for `tessera gpu info`.
    pub fn limits(&self) -> Vec<(&'static str, String)> {
        let Backend::Device {
            client,
            max_binding,
            ..
        } = &self.backend
        else {
            return vec![("largest tensor", "host memory".into())];
        };
        let p = client.properties();
        let hw = &p.hardware;
        vec![
            ("largest tensor (bytes)", max_binding.to_string()),
            ("memory alignment (bytes)", p.memory.alignment.to_string()),
            ("max bindings", hw.max_bindings.to_string()),
            ("max units per cube", hw.max_units_per_cube.to_string()),
            ("max cube count", format!("{:?}", hw.max_cube_count)),
            ("max cube dim", format!("{:?}", hw.max_cube_dim)),
            (
                "shared memory (bytes)",
                hw.max_shared_memory_size.to_string(),
            ),
            (
                "plane size",
                format!("{}..={}", hw.plane_size_min, hw.plane_size_max),
            ),
        ]
    }

    /// A plugin's view of the device, holding at most `grant` bytes of tensors.
    pub fn session(self: &Arc<Self>, grant: u64) -> Session {
        Session {
            gpu: self.clone(),
            grant,
            used: Arc::default(),
        }
    }
}

/// Mesa's llvmpipe/lavapipe and Google's SwiftShader run shaders on the CPU.
fn is_software_adapter(adapter: &str) -> bool {
    let name = adapter.to_ascii_lowercase();
    ["llvmpipe", "lavapipe", "swiftshader", "software"]
        .iter()
        .any(|s| name.contains(s))
}

fn open_wgpu() -> Result<Backend, GpuError> {
    use cubecl::device::WgpuDeviceKind;
    let device =
        cubecl::Device::wgpu(WgpuDeviceKind::DefaultDevice).map_err(|e| GpuError::Unavailable {
            backend: "wgpu",
            reason: e.to_string(),
        })?;
    Ok(device_backend(BackendKind::Wgpu, &device))
}

#[cfg(feature = "cuda")]
fn open_cuda() -> Result<Backend, GpuError> {
    let device = cubecl::Device::cuda(0).map_err(|e| GpuError::Unavailable {
        backend: "cuda",
        reason: e.to_string(),
    })?;
    Ok(device_backend(BackendKind::Cuda, &device))
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> Result<Backend, GpuError> {
    Err(GpuError::Unavailable {
        backend: "cuda",
        reason: "this build has no `cuda` feature".into(),
    })
}

fn device_backend(kind: BackendKind, device: &cubecl::Device) -> Backend {
    let client = device.client();
    let p = client.properties();
    // One binding is at most a page; lavapipe also caps storage bindings at 128 MiB.
    let max_binding = p.memory.max_page_size.min(128 << 20);
    let adapter = format!("{} ({})", p.identity.name, client.name());
    Backend::Device {
        kind,
        client,
        adapter,
        max_binding,
    }
}

/// A plugin's view of the [`Gpu`]: its grant and what it holds.
pub struct Session {
    gpu: Arc<Gpu>,
    grant: u64,
    used: Arc<AtomicU64>,
}

/// Bytes held against a session and the device total until dropped.
pub struct Lease {
    bytes: u64,
    used: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.used.fetch_sub(self.bytes, Ordering::SeqCst);
        self.total.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// What a tensor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    /// 32-bit floats.
    F32,
    /// 32-bit unsigned integers.
    U32,
    /// Packed 8-bit RGB.
    Rgb8,
}

/// Planes of `width` x `height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Planes.
    pub channels: u32,
}

impl Shape {
    /// One plane.
    pub fn plane(width: u32, height: u32) -> Shape {
        Shape {
            width,
            height,
            channels: 1,
        }
    }

    /// Elements, or `None` past what the kernels address (`u32` indices).
    pub fn elements(&self) -> Option<usize> {
        let n = u64::from(self.width) * u64::from(self.height) * u64::from(self.channels);
        (n < u64::from(u32::MAX)).then_some(n as usize)
    }

    fn dims(&self) -> (usize, usize) {
        (self.width as usize, self.height as usize)
    }
}

enum Data {
    Device(Handle),
    F32(Vec<f32>),
    U32(Vec<u32>),
}

/// Data on the device, counted against its session until dropped.
pub struct Tensor {
    shape: Shape,
    element: Element,
    data: Data,
    lease: Lease,
}

impl Tensor {
    /// Its shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// What it holds.
    pub fn element(&self) -> Element {
        self.element
    }

    /// Bytes it occupies.
    pub fn size(&self) -> u64 {
        self.lease.bytes
    }
}

/// Binary morphology operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MorphOp {
    /// Erosion.
    Erode,
    /// Dilation.
    Dilate,
    /// Erosion then dilation.
    Open,
    /// Dilation then erosion.
    Close,
}

/// Largest morphology radius accepted (a 1025-pixel footprint side).
pub const MAX_MORPHOLOGY_RADIUS: u32 = 512;

/// Kernel weights of offsets `0..=radius`, computed as the SDK's blur does.
fn gaussian_weights(sigma: f32) -> Vec<f32> {
    let radius = ops::gaussian_radius(sigma);
    if radius == 0 {
        return vec![1.0];
    }
    let sigma = f64::from(sigma.min(ops::MAX_GAUSSIAN_SIGMA));
    let factor = -0.5 / (sigma * sigma);
    let weights: Vec<f64> = (0..=radius)
        .map(|x| (factor * (x * x) as f64).exp())
        .collect();
    let total = weights[0] + 2.0 * weights[1..].iter().sum::<f64>();
    weights.iter().map(|w| (w / total) as f32).collect()
}

/// The 257 bin edges of the SDK's histogram over `[min, max]`, each rounded up to `f32`.
fn histogram_edges(min: f32, max: f32) -> Vec<f32> {
    let (first, last) = (f64::from(min), f64::from(max));
    (0..=256)
        .map(|i| {
            let exact = if i == 256 {
                last
            } else {
                i as f64 * ((last - first) / 256.0) + first
            };
            let nearest = exact as f32;
            if f64::from(nearest) < exact {
                nearest.next_up()
            } else {
                nearest
            }
        })
        .collect()
}

impl Session {
    /// The device.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// Bytes this session may hold.
    pub fn grant(&self) -> u64 {
        self.grant
    }

    /// Bytes it holds now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    fn lease(&self, bytes: u64) -> Result<Lease, GpuError> {
        if let Backend::Device { max_binding, .. } = &self.gpu.backend
            && bytes > *max_binding
        {
            return Err(GpuError::TooLarge(bytes));
        }
        let mut used = self.used.load(Ordering::SeqCst);
        loop {
            if used.saturating_add(bytes) > self.grant {
                return Err(GpuError::Grant {
                    grant: self.grant,
                    used,
                    asked: bytes,
                });
            }
            match self
                .used
                .compare_exchange(used, used + bytes, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                Err(now) => used = now,
            }
        }
        self.gpu.in_use.fetch_add(bytes, Ordering::SeqCst);
        Ok(Lease {
            bytes,
            used: self.used.clone(),
            total: self.gpu.in_use.clone(),
        })
    }

    fn len_of(shape: Shape) -> Result<usize, GpuError> {
        shape.elements().ok_or_else(|| {
            GpuError::TooLarge(
                u64::from(shape.width) * u64::from(shape.height) * u64::from(shape.channels) * 4,
            )
        })
    }

    /// A new tensor of `shape` whose contents the caller fills: leased, and on a device
    /// allocated.
    fn alloc(&self, shape: Shape, element: Element) -> Result<(Tensor, usize), GpuError> {
        let n = Self::len_of(shape)?;
        let lease = self.lease(n as u64 * 4)?;
        let data = match &self.gpu.backend {
            Backend::Device { client, .. } => Data::Device(client.empty(n.max(1) * 4)),
            Backend::Cpu { .. } => match element {
                Element::F32 => Data::F32(Vec::new()),
                _ => Data::U32(Vec::new()),
            },
        };
        Ok((
            Tensor {
                shape,
                element,
                data,
                lease,
            },
            n,
        ))
    }

    fn client(&self) -> Option<&Client> {
        match &self.gpu.backend {
            Backend::Device { client, .. } => Some(client),
            Backend::Cpu { .. } => None,
        }
    }

    /// The element count of `shape`, when `given` values fill it exactly.
    fn filled_len(shape: Shape, given: usize) -> Result<usize, GpuError> {
        let n = Self::len_of(shape)?;
        if given != n {
            return Err(GpuError::Invalid(format!(
                "{given} values do not fill a {}x{}x{} tensor of {n}",
                shape.width, shape.height, shape.channels
            )));
        }
        Ok(n)
    }

    fn words_tensor(
        &self,
        shape: Shape,
        element: Element,
        words: Vec<u32>,
    ) -> Result<Tensor, GpuError> {
        let n = Self::filled_len(shape, words.len())?;
        let lease = self.lease(n as u64 * 4)?;
        let data = match self.client() {
            Some(client) => Data::Device(client.create_from_slice(bytemuck::cast_slice(&words))),
            None => Data::U32(words),
        };
        Ok(Tensor {
            shape,
            element,
            data,
            lease,
        })
    }

    fn floats_tensor(&self, shape: Shape, values: Vec<f32>) -> Result<Tensor, GpuError> {
        let n = Self::filled_len(shape, values.len())?;
        let lease = self.lease(n as u64 * 4)?;
        let data = match self.client() {
            Some(client) => Data::Device(client.create_from_slice(bytemuck::cast_slice(&values))),
            None => Data::F32(values),
        };
        Ok(Tensor {
            shape,
            element: Element::F32,
            data,
            lease,
        })
    }

    /// Uploads `f32` values.
    pub fn upload_f32(&self, shape: Shape, values: Vec<f32>) -> Result<Tensor, GpuError> {
        self.floats_tensor(shape, values)
    }

    /// Uploads `u32` values.
    pub fn upload_u32(&self, shape: Shape, values: Vec<u32>) -> Result<Tensor, GpuError> {
        self.words_tensor(shape, Element::U32, values)
    }

    /// Uploads interleaved RGB bytes as an `rgb8` tensor.
    pub fn upload_rgb(&self, width: u32, height: u32, rgb: &[u8]) -> Result<Tensor, GpuError> {
        let expected = u64::from(width) * u64::from(height) * 3;
        if rgb.len() as u64 != expected {
            return Err(GpuError::Invalid(format!(
                "{} bytes are not {width}x{height} RGB pixels ({expected} bytes)",
                rgb.len()
            )));
        }
        self.words_tensor(
            Shape::plane(width, height),
            Element::Rgb8,
            cpu::pack_rgb(rgb),
        )
    }

    /// Waits until the kernels that made `tensor` have run, surfacing their errors (a no-op on
    /// the CPU path). Kernels are queued, so timing one needs this.
    pub fn wait(&self, tensor: &Tensor) -> Result<(), GpuError> {
        match &tensor.data {
            Data::Device(h) => kernels::finish(self.device_client(), h),
            _ => Ok(()),
        }
    }

    /// Copies a `f32` tensor out.
    pub fn download_f32(&self, tensor: &Tensor) -> Result<Vec<f32>, GpuError> {
        expect(tensor, &[Element::F32], "download-f32")?;
        match &tensor.data {
            Data::Device(h) => {
                let mut v = kernels::read_f32(self.device_client(), h)?;
                v.truncate(Self::len_of(tensor.shape)?);
                Ok(v)
            }
            Data::F32(v) => Ok(v.clone()),
            Data::U32(_) => Err(GpuError::Invalid("tensor is not f32".into())),
        }
    }

    /// Copies a `u32` or `rgb8` tensor out.
    pub fn download_u32(&self, tensor: &Tensor) -> Result<Vec<u32>, GpuError> {
        expect(tensor, &[Element::U32, Element::Rgb8], "download-u32")?;
        self.words(tensor)
    }

    fn words(&self, tensor: &Tensor) -> Result<Vec<u32>, GpuError> {
        match &tensor.data {
            Data::Device(h) => {
                let mut v = kernels::read_u32(self.device_client(), h)?;
                v.truncate(Self::len_of(tensor.shape)?);
                Ok(v)
            }
            Data::U32(v) => Ok(v.clone()),
            Data::F32(_) => Err(GpuError::Invalid("tensor is not u32".into())),
        }
    }

    fn floats<'a>(&self, tensor: &'a Tensor) -> &'a [f32] {
        match &tensor.data {
            Data::F32(v) => v,
            _ => &[],
        }
    }

    fn ints<'a>(&self, tensor: &'a Tensor) -> &'a [u32] {
        match &tensor.data {
            Data::U32(v) => v,
            _ => &[],
        }
    }

    fn device_client(&self) -> &Client {
        match &self.gpu.backend {
            Backend::Device { client, .. } => client,
            Backend::Cpu { .. } => unreachable!("device data exists only on a device backend"),
        }
    }

    /// Runs `device` on a device backend, `host` on the CPU one, filling `out`.
    fn fill(
        &self,
        out: &mut Tensor,
        device: impl FnOnce(&Client, &Handle) -> Result<(), GpuError>,
        host: impl FnOnce() -> Data,
    ) -> Result<(), GpuError> {
        match (&self.gpu.backend, &out.data) {
            (Backend::Device { client, .. }, Data::Device(h)) => device(client, h),
            _ => {
                out.data = host();
                Ok(())
            }
        }
    }

    /// Red, green and blue optical-density planes of an `rgb8` tensor.
    pub fn optical_density(&self, rgb: &Tensor) -> Result<Tensor, GpuError> {
        expect(rgb, &[Element::Rgb8], "optical-density")?;
        let shape = Shape {
            channels: 3,
            ..rgb.shape
        };
        let (mut out, _) = self.alloc(shape, Element::F32)?;
        let n = Self::len_of(rgb.shape)?;
        self.fill(
            &mut out,
            |c, o| kernels::optical_density(c, handle(rgb), o, n),
            || Data::F32(cpu::optical_density(self.ints(rgb))),
        )?;
        Ok(out)
    }

    /// One stain of a colour deconvolution of an `rgb8` tensor.
    pub fn color_deconvolution(
        &self,
        rgb: &Tensor,
        matrix: &[[f32; 3]; 3],
        stain: u32,
    ) -> Result<Tensor, GpuError> {
        expect(rgb, &[Element::Rgb8], "color-deconvolution")?;
        if stain > 2 {
            return Err(GpuError::Invalid(format!("stain {stain} is not 0, 1 or 2")));
        }
        if matrix.iter().flatten().any(|v| !v.is_finite()) {
            return Err(GpuError::Invalid(
                "the stain matrix has a value that is not finite".into(),
            ));
        }
        let (mut out, n) = self.alloc(rgb.shape, Element::F32)?;
        let s = stain as usize;
        self.fill(
            &mut out,
            |c, o| {
                let density: Vec<f32> = (0..=255u8)
                    .map(|v| cpu::optical_density_of(v) as f32)
                    .collect();
                let density = c.create_from_slice(bytemuck::cast_slice(&density));
                let weights = [matrix[0][s], matrix[1][s], matrix[2][s]];
                kernels::deconvolution(c, handle(rgb), &density, o, n, weights)
            },
            || Data::F32(cpu::color_deconvolution(self.ints(rgb), matrix, s)),
        )?;
        Ok(out)
    }

    /// Grey level of an `rgb8` tensor.
    pub fn grayscale(&self, rgb: &Tensor) -> Result<Tensor, GpuError> {
        expect(rgb, &[Element::Rgb8], "grayscale")?;
        let (mut out, n) = self.alloc(rgb.shape, Element::F32)?;
        self.fill(
            &mut out,
            |c, o| {
                let mut tables = Vec::with_capacity(768);
                for weight in ops::GRAY_WEIGHTS {
                    tables.extend((0..256).map(|v| (f64::from(v) / 255.0 * weight) as f32));
                }
                let tables = c.create_from_slice(bytemuck::cast_slice(&tables));
                kernels::gray(c, handle(rgb), &tables, o, n)
            },
            || Data::F32(cpu::grayscale(self.ints(rgb))),
        )?;
        Ok(out)
    }

    /// Gaussian blur of each plane of a `f32` tensor.
    pub fn gaussian_blur(&self, plane: &Tensor, sigma: f32) -> Result<Tensor, GpuError> {
        expect(plane, &[Element::F32], "gaussian-blur")?;
        let sigma = if sigma > 0.0 { sigma } else { 0.0 };
        let (mut out, n) = self.alloc(plane.shape, Element::F32)?;
        let (w, h) = plane.shape.dims();
        let weights = gaussian_weights(sigma);
        let radius = weights.len() - 1;
        // The device pass needs a scratch plane as large as the output.
        let scratch = match self.client() {
            Some(_) => Some(self.lease(n as u64 * 4)?),
            None => None,
        };
        self.fill(
            &mut out,
            |c, o| {
                let kernel = c.create_from_slice(bytemuck::cast_slice(&weights));
                let temp = c.empty(n.max(1) * 4);
                kernels::blur(
                    c,
                    handle(plane),
                    &kernel,
                    &temp,
                    o,
                    (w, h, plane.shape.channels as usize),
                    radius,
                )?;
                kernels::finish(c, o)
            },
            || Data::F32(cpu::gaussian_blur(self.floats(plane), w, h, sigma)),
        )?;
        drop(scratch);
        Ok(out)
    }

    /// Smallest and largest value of a `f32` tensor; `None` when it has none.
    pub fn min_max(&self, plane: &Tensor) -> Result<Option<(f32, f32)>, GpuError> {
        expect(plane, &[Element::F32], "min-max")?;
        let n = Self::len_of(plane.shape)?;
        match self.client() {
            Some(c) => kernels::min_max(c, handle(plane), n),
            None => Ok(ops::min_max(self.floats(plane))),
        }
    }

    /// 256-bin histogram over `[min, max]`.
    pub fn histogram(&self, plane: &Tensor, min: f32, max: f32) -> Result<[u64; 256], GpuError> {
        expect(plane, &[Element::F32], "histogram")?;
        if !(min.is_finite() && max.is_finite() && min <= max) {
            return Err(GpuError::Invalid(format!(
                "histogram range {min}..{max} is not finite and ordered"
            )));
        }
        let n = Self::len_of(plane.shape)?;
        match self.client() {
            Some(c) => {
                let counts = kernels::histogram(
                    c,
                    handle(plane),
                    n,
                    (min, max),
                    &histogram_edges(min, max),
                )?;
                let mut out = [0u64; 256];
                for (o, c) in out.iter_mut().zip(counts) {
                    *o = u64::from(c);
                }
                Ok(out)
            }
            None => Ok(cpu::histogram(self.floats(plane), min, max)),
        }
    }

    /// Otsu threshold of a `f32` tensor over its own range (the SDK's `otsu_threshold`).
    pub fn otsu_threshold(&self, plane: &Tensor) -> Result<f32, GpuError> {
        let (min, max) = self.min_max(plane)?.unwrap_or((0.0, 0.0));
        let counts = self.histogram(plane, min, max)?;
        let mut histogram = ops::Histogram::new(min, max);
        histogram.counts = counts;
        Ok(ops::otsu_threshold_from_histogram(&histogram))
    }

    /// A 0/1 mask: value above `level`, or at or below it when `above` is false.
    pub fn threshold(&self, plane: &Tensor, level: f32, above: bool) -> Result<Tensor, GpuError> {
        expect(plane, &[Element::F32], "threshold")?;
        let (mut out, n) = self.alloc(plane.shape, Element::U32)?;
        self.fill(
            &mut out,
            |c, o| kernels::threshold(c, handle(plane), o, n, level, above),
            || Data::U32(cpu::threshold(self.floats(plane), level, above)),
        )?;
        Ok(out)
    }

    fn erode_or_dilate(
        &self,
        mask: &Tensor,
        radius: u32,
        dilate: bool,
    ) -> Result<Tensor, GpuError> {
        let (mut out, n) = self.alloc(mask.shape, Element::U32)?;
        let (w, h) = mask.shape.dims();
        let scratch = match self.client() {
            Some(_) => Some(self.lease(n as u64 * 4)?),
            None => None,
        };
        self.fill(
            &mut out,
            |c, o| {
                let temp = c.empty(n.max(1) * 4);
                kernels::morphology(c, handle(mask), &temp, o, (w, h), radius, dilate)?;
                kernels::finish(c, o)
            },
            || {
                Data::U32(cpu::erode_or_dilate(
                    self.ints(mask),
                    w,
                    h,
                    radius as usize,
                    dilate,
                ))
            },
        )?;
        drop(scratch);
        Ok(out)
    }

    /// Binary morphology of a one-plane `u32` mask.
    pub fn morphology(&self, mask: &Tensor, op: MorphOp, radius: u32) -> Result<Tensor, GpuError> {
        expect_plane(mask, Element::U32, "morphology")?;
        if radius > MAX_MORPHOLOGY_RADIUS {
            return Err(GpuError::Invalid(format!(
                "morphology radius {radius} is above the largest, {MAX_MORPHOLOGY_RADIUS}"
            )));
        }
        match op {
            MorphOp::Erode => self.erode_or_dilate(mask, radius, false),
            MorphOp::Dilate => self.erode_or_dilate(mask, radius, true),
            MorphOp::Open => {
                let eroded = self.erode_or_dilate(mask, radius, false)?;
                self.erode_or_dilate(&eroded, radius, true)
            }
            MorphOp::Close => {
                let dilated = self.erode_or_dilate(mask, radius, true)?;
                self.erode_or_dilate(&dilated, radius, false)
            }
        }
    }

    /// Labels a one-plane mask in raster order of each object's first pixel.
    pub fn label_components(
        &self,
        mask: &Tensor,
        connectivity: Connectivity,
    ) -> Result<(Tensor, u32), GpuError> {
        expect_plane(mask, Element::U32, "label-components")?;
        let (mut out, n) = self.alloc(mask.shape, Element::U32)?;
        let (w, h) = mask.shape.dims();
        match &self.gpu.backend {
            Backend::Device { client, .. } => {
                let _scratch = self.lease(n as u64 * 4)?;
                let scratch = client.empty(n.max(1) * 4);
                let Data::Device(o) = &out.data else {
                    unreachable!("a device backend allocates device tensors")
                };
                let count = kernels::label(
                    client,
                    handle(mask),
                    o,
                    &scratch,
                    (w, h),
                    connectivity == Connectivity::Eight,
                )?;
                kernels::finish(client, o)?;
                Ok((out, count))
            }
            Backend::Cpu { .. } => {
                let labels = cpu::label_components(self.ints(mask), w, h, connectivity);
                out.data = Data::U32(labels.labels);
                Ok((out, labels.count))
            }
        }
    }

    /// Area, centroid and bounding box of labels `1..=count`, in label order.
    pub fn region_stats(&self, labels: &Tensor, count: u32) -> Result<Vec<RegionStats>, GpuError> {
        expect_plane(labels, Element::U32, "region-stats")?;
        let (w, h) = labels.shape.dims();
        let n = Self::len_of(labels.shape)?;
        if u64::from(count) > n as u64 {
            return Err(GpuError::Invalid(format!(
                "{count} labels cannot fit in {n} pixels"
            )));
        }
        match self.client() {
            Some(c) => {
                let _lease = self.lease(u64::from(count) * 36)?;
                let sums = kernels::region_sums(c, handle(labels), (w, h), count)?;
                let sums = kernels::read_u32(c, &sums)?;
                Ok(finish_stats(&sums, count))
            }
            None => Ok(cpu::region_stats(self.ints(labels), count, w, h)),
        }
    }

    /// The mask without objects of fewer than `min_area` pixels.
    pub fn remove_small_objects(
        &self,
        mask: &Tensor,
        min_area: u32,
        connectivity: Connectivity,
    ) -> Result<Tensor, GpuError> {
        expect_plane(mask, Element::U32, "remove-small-objects")?;
        let (w, h) = mask.shape.dims();
        if self.client().is_none() {
            let (mut out, _) = self.alloc(mask.shape, Element::U32)?;
            out.data = Data::U32(cpu::remove_small_objects(
                self.ints(mask),
                w,
                h,
                min_area,
                connectivity,
            ));
            return Ok(out);
        }
        let (labels, count) = self.label_components(mask, connectivity)?;
        let c = self.device_client();
        let _lease = self.lease(u64::from(count) * 36)?;
        let sums = kernels::region_sums(c, handle(&labels), (w, h), count)?;
        let (out, n) = self.alloc(mask.shape, Element::U32)?;
        kernels::keep_large(
            c,
            handle(&labels),
            &sums,
            handle(&out),
            n,
            count as usize * 9,
            min_area,
        )?;
        kernels::finish(c, handle(&out))?;
        Ok(out)
    }
}

/// Region statistics from the device's 9 words per label.
fn finish_stats(sums: &[u32], count: u32) -> Vec<RegionStats> {
    sums.chunks_exact(9)
        .take(count as usize)
        .zip(1..)
        .map(|(s, label)| {
            let area = u64::from(s[0]);
            let sum_x = u64::from(s[2]) << 32 | u64::from(s[1]);
            let sum_y = u64::from(s[4]) << 32 | u64::from(s[3]);
            let (cx, cy) = if area == 0 {
                (0.0, 0.0)
            } else {
                (sum_x as f64 / area as f64, sum_y as f64 / area as f64)
            };
            let bbox = if area == 0 {
                ops::BoundingBox {
                    min_x: 0,
                    min_y: 0,
                    max_x: 0,
                    max_y: 0,
                }
            } else {
                ops::BoundingBox {
                    min_x: s[5],
                    min_y: s[6],
                    max_x: s[7] + 1,
                    max_y: s[8] + 1,
                }
            };
            RegionStats {
                label,
                area,
                centroid_x: cx,
                centroid_y: cy,
                bbox,
            }
        })
        .collect()
}

fn handle(tensor: &Tensor) -> &Handle {
    match &tensor.data {
        Data::Device(h) => h,
        _ => unreachable!("a device backend holds only device tensors"),
    }
}

fn expect(tensor: &Tensor, elements: &[Element], what: &str) -> Result<(), GpuError> {
    if elements.contains(&tensor.element) {
        return Ok(());
    }
    let names: Vec<&str> = elements.iter().map(|e| element_name(*e)).collect();
    Err(GpuError::Invalid(format!(
        "{what} takes a {} tensor, not {}",
        names.join(" or "),
        element_name(tensor.element)
    )))
}

fn expect_plane(tensor: &Tensor, element: Element, what: &str) -> Result<(), GpuError> {
    expect(tensor, &[element], what)?;
    if tensor.shape.channels != 1 {
        return Err(GpuError::Invalid(format!(
            "{what} takes one plane, not {}",
            tensor.shape.channels
        )));
    }
    Ok(())
}

/// `f32`, `u32` or `rgb8`.
pub fn element_name(element: Element) -> &'static str {
    match element {
        Element::F32 => "f32",
        Element::U32 => "u32",
        Element::Rgb8 => "rgb8",
    }
}

#[cfg(test)]
mod tests;
