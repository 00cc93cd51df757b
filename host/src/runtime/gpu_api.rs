//! The host side of the `gpu` interface (plugin API 0.2.0): tensors in the store's resource
//! table, kernels from [`crate::gpu`].
//!
//! A plugin without a grant (`gpu-memory-mib = 0`) gets `denied` from every call. With one, the
//! first call opens the runtime's shared [`Gpu`](crate::gpu::Gpu) (lazily: most calls never use
//! it) and a [`Session`] holding the grant. Tensors hold leases on that session, so memory is
//! counted while they live and returned when they drop, which the store guarantees at the end
//! of every call, trap or not.

use wasmtime::component::Resource;

use super::PluginState;
use super::bindings::ImageHandle;
use super::bindings::v2::tessera::plugin::gpu as api;
use super::bindings::v2::tessera::plugin::types::{Error as PluginError, Rect};
use super::limits::MAX_TENSORS;
use crate::gpu::{self, Element, GpuError, MorphOp, Session, Shape, Tensor};
use tessera_sdk::ops::Connectivity;

type Answer<T> = wasmtime::Result<Result<T, PluginError>>;

fn plugin_error(e: GpuError) -> PluginError {
    match e {
        GpuError::Grant { .. } => PluginError::Denied(e.to_string()),
        GpuError::Invalid(_) | GpuError::TooLarge(_) => PluginError::InvalidInput(e.to_string()),
        GpuError::Device(_) | GpuError::Unavailable { .. } => PluginError::Internal(e.to_string()),
    }
}

fn shape_in(s: api::Shape) -> Shape {
    Shape {
        width: s.width,
        height: s.height,
        channels: s.channels,
    }
}

fn connectivity(c: api::Connectivity) -> Connectivity {
    match c {
        api::Connectivity::Four => Connectivity::Four,
        api::Connectivity::Eight => Connectivity::Eight,
    }
}

impl PluginState {
    /// The call's session, opened on first use; `denied` without a grant.
    fn gpu_session(&mut self) -> Result<&Session, PluginError> {
        if self.gpu_grant == 0 {
            return Err(PluginError::Denied(
                "this plugin has no GPU grant; its manifest needs `[grants] gpu-memory-mib`".into(),
            ));
        }
        if self.gpu_session.is_none() {
            let gpu = self.gpu_source.get().map_err(PluginError::Internal)?;
            self.gpu_session = Some(gpu.session(self.gpu_grant));
        }
        Ok(self.gpu_session.as_ref().expect("opened above"))
    }

    /// Runs `f` with the session, and pushes the tensor it makes into the table.
    fn make(
        &mut self,
        f: impl FnOnce(&Session) -> Result<Tensor, GpuError>,
    ) -> Answer<Resource<Tensor>> {
        if self.tensors >= MAX_TENSORS {
            return Ok(Err(PluginError::Denied(format!(
                "at most {MAX_TENSORS} tensors may be held at once; drop some first"
            ))));
        }
        let tensor = match self.gpu_session().and_then(|s| f(s).map_err(plugin_error)) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        let handle = self.table.push(tensor)?;
        self.tensors += 1;
        Ok(Ok(handle))
    }

    /// Runs `f` with the session and one tensor of the table.
    fn with_tensor<T>(
        &mut self,
        tensor: &Resource<Tensor>,
        f: impl FnOnce(&Session, &Tensor) -> Result<T, GpuError>,
    ) -> Answer<T> {
        if let Err(e) = self.gpu_session() {
            return Ok(Err(e));
        }
        let t = self.table.get(tensor)?;
        let session = self.gpu_session.as_ref().expect("opened above");
        Ok(f(session, t).map_err(plugin_error))
    }

    /// Like [`Self::with_tensor`], pushing the tensor `f` makes.
    fn derive(
        &mut self,
        input: &Resource<Tensor>,
        f: impl FnOnce(&Session, &Tensor) -> Result<Tensor, GpuError>,
    ) -> Answer<Resource<Tensor>> {
        if self.tensors >= MAX_TENSORS {
            return Ok(Err(PluginError::Denied(format!(
                "at most {MAX_TENSORS} tensors may be held at once; drop some first"
            ))));
        }
        let made = match self.with_tensor(input, f)? {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        let handle = self.table.push(made)?;
        self.tensors += 1;
        Ok(Ok(handle))
    }
}

impl api::Host for PluginState {
    fn info(&mut self) -> Answer<api::DeviceInfo> {
        let session = match self.gpu_session() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(api::DeviceInfo {
            backend: session.gpu().kind().name().to_string(),
            adapter: session.gpu().adapter(),
            memory_grant: session.grant(),
            memory_used: session.used(),
        }))
    }

    fn upload_f32(&mut self, shape: api::Shape, data: Vec<f32>) -> Answer<Resource<Tensor>> {
        self.make(|s| s.upload_f32(shape_in(shape), data))
    }

    fn upload_u32(&mut self, shape: api::Shape, data: Vec<u32>) -> Answer<Resource<Tensor>> {
        self.make(|s| s.upload_u32(shape_in(shape), data))
    }

    fn upload_rgb(&mut self, width: u32, height: u32, rgb: Vec<u8>) -> Answer<Resource<Tensor>> {
        self.make(|s| s.upload_rgb(width, height, &rgb))
    }

    fn read_region_to_tensor(
        &mut self,
        image: Resource<ImageHandle>,
        level: u32,
        region: Rect,
    ) -> Answer<Resource<Tensor>> {
        // Checked before any pixel is decoded: no grant, no read.
        if let Err(e) = self.gpu_session() {
            return Ok(Err(e));
        }
        let pixels = match self.read_pixels(&image, level, region)? {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        self.make(|s| s.upload_rgb(region.width, region.height, &pixels))
    }

    fn optical_density(&mut self, rgb: Resource<Tensor>) -> Answer<Resource<Tensor>> {
        self.derive(&rgb, |s, t| s.optical_density(t))
    }

    fn color_deconvolution(
        &mut self,
        rgb: Resource<Tensor>,
        matrix: Vec<f32>,
        stain: u32,
    ) -> Answer<Resource<Tensor>> {
        let Ok(m) = <[f32; 9]>::try_from(matrix.as_slice()) else {
            return Ok(Err(PluginError::InvalidInput(format!(
                "a stain matrix has 9 values, not {}",
                matrix.len()
            ))));
        };
        let matrix = [[m[0], m[1], m[2]], [m[3], m[4], m[5]], [m[6], m[7], m[8]]];
        self.derive(&rgb, |s, t| s.color_deconvolution(t, &matrix, stain))
    }

    fn grayscale(&mut self, rgb: Resource<Tensor>) -> Answer<Resource<Tensor>> {
        self.derive(&rgb, |s, t| s.grayscale(t))
    }

    fn gaussian_blur(&mut self, plane: Resource<Tensor>, sigma: f32) -> Answer<Resource<Tensor>> {
        self.derive(&plane, |s, t| s.gaussian_blur(t, sigma))
    }

    fn min_max(&mut self, plane: Resource<Tensor>) -> Answer<(f32, f32)> {
        self.with_tensor(&plane, |s, t| {
            s.min_max(t)?
                .ok_or_else(|| GpuError::Invalid("the tensor has no values".into()))
        })
    }

    fn histogram(&mut self, plane: Resource<Tensor>, min: f32, max: f32) -> Answer<Vec<u64>> {
        self.with_tensor(&plane, |s, t| Ok(s.histogram(t, min, max)?.to_vec()))
    }

    fn otsu_threshold(&mut self, plane: Resource<Tensor>) -> Answer<f32> {
        self.with_tensor(&plane, |s, t| s.otsu_threshold(t))
    }

    fn threshold(
        &mut self,
        plane: Resource<Tensor>,
        level: f32,
        above: bool,
    ) -> Answer<Resource<Tensor>> {
        self.derive(&plane, |s, t| s.threshold(t, level, above))
    }

    fn morphology(
        &mut self,
        mask: Resource<Tensor>,
        op: api::MorphOp,
        radius: u32,
    ) -> Answer<Resource<Tensor>> {
        let op = match op {
            api::MorphOp::Erode => MorphOp::Erode,
            api::MorphOp::Dilate => MorphOp::Dilate,
            api::MorphOp::Open => MorphOp::Open,
            api::MorphOp::Close => MorphOp::Close,
        };
        self.derive(&mask, |s, t| s.morphology(t, op, radius))
    }

    fn remove_small_objects(
        &mut self,
        mask: Resource<Tensor>,
        min_area: u32,
        c: api::Connectivity,
    ) -> Answer<Resource<Tensor>> {
        self.derive(&mask, |s, t| {
            s.remove_small_objects(t, min_area, connectivity(c))
        })
    }

    fn label_components(
        &mut self,
        mask: Resource<Tensor>,
        c: api::Connectivity,
    ) -> Answer<(Resource<Tensor>, u32)> {
        if self.tensors >= MAX_TENSORS {
            return Ok(Err(PluginError::Denied(format!(
                "at most {MAX_TENSORS} tensors may be held at once; drop some first"
            ))));
        }
        let (labels, count) =
            match self.with_tensor(&mask, |s, t| s.label_components(t, connectivity(c)))? {
                Ok(made) => made,
                Err(e) => return Ok(Err(e)),
            };
        let handle = self.table.push(labels)?;
        self.tensors += 1;
        Ok(Ok((handle, count)))
    }

    fn region_stats(&mut self, labels: Resource<Tensor>, count: u32) -> Answer<Vec<api::Region>> {
        self.with_tensor(&labels, |s, t| {
            Ok(s.region_stats(t, count)?
                .into_iter()
                .map(|r| api::Region {
                    label: r.label,
                    area: r.area,
                    centroid_x: r.centroid_x,
                    centroid_y: r.centroid_y,
                    bbox: Rect {
                        x: r.bbox.min_x,
                        y: r.bbox.min_y,
                        width: r.bbox.max_x - r.bbox.min_x,
                        height: r.bbox.max_y - r.bbox.min_y,
                    },
                })
                .collect())
        })
    }
}

impl api::HostTensor for PluginState {
    fn shape(&mut self, tensor: Resource<Tensor>) -> wasmtime::Result<api::Shape> {
        let s = self.table.get(&tensor)?.shape();
        Ok(api::Shape {
            width: s.width,
            height: s.height,
            channels: s.channels,
        })
    }

    fn element(&mut self, tensor: Resource<Tensor>) -> wasmtime::Result<api::Element> {
        Ok(match self.table.get(&tensor)?.element() {
            Element::F32 => api::Element::F32,
            Element::U32 => api::Element::U32,
            Element::Rgb8 => api::Element::Rgb8,
        })
    }

    fn size(&mut self, tensor: Resource<Tensor>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&tensor)?.size())
    }

    fn download_f32(&mut self, tensor: Resource<Tensor>) -> Answer<Vec<f32>> {
        self.with_tensor(&tensor, |s, t| s.download_f32(t))
    }

    fn download_u32(&mut self, tensor: Resource<Tensor>) -> Answer<Vec<u32>> {
        self.with_tensor(&tensor, |s, t| s.download_u32(t))
    }

    fn drop(&mut self, tensor: Resource<Tensor>) -> wasmtime::Result<()> {
        self.table.delete(tensor)?;
        self.tensors = self.tensors.saturating_sub(1);
        Ok(())
    }
}

/// Where a store gets the shared [`gpu::Gpu`]: opened once per runtime, on first use, with the
/// backend chosen when the runtime was built.
pub struct GpuSource {
    choice: Result<gpu::BackendChoice, String>,
    opened: std::sync::OnceLock<Result<std::sync::Arc<gpu::Gpu>, String>>,
}

impl GpuSource {
    /// A source for `choice` (an error is reported at first use).
    pub fn new(choice: Result<gpu::BackendChoice, String>) -> Self {
        GpuSource {
            choice,
            opened: std::sync::OnceLock::new(),
        }
    }

    /// The device, opening it on first call.
    pub fn get(&self) -> Result<std::sync::Arc<gpu::Gpu>, String> {
        self.opened
            .get_or_init(|| {
                let choice = self.choice.clone()?;
                gpu::Gpu::open(choice)
                    .map(std::sync::Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }
}
