//! The host's image kernels, run on its compute device (plugin API 0.2.0).
//!
//! A [`Tensor`] lives on the device: kernels take tensors and make new ones without copying
//! pixels through the plugin, and only [`Tensor::download_f32`] and friends bring values back.
//! Dropping a tensor frees its device memory at once; whatever is left is freed when the call
//! ends. Every tensor counts against the plugin's grant (`[grants] gpu-memory-mib` in
//! `tessera.toml`); without one every call fails with [`Error::Denied`].
//!
//! The host runs the same kernels on the CPU when it has no GPU ([`DeviceInfo::backend`] is
//! `cpu`), with the same results as [`crate::ops`] within the tolerances listed in the host's
//! `docs/runtime.md`.
//!
//! ```no_run
//! use tessera_sdk::gpu::{self, Tensor};
//! use tessera_sdk::ops::HED_FROM_RGB;
//! # fn f(image: &tessera_sdk::Image) -> Result<(), tessera_sdk::Error> {
//! let rgb = Tensor::read_region(image, 0, tessera_sdk::Rect::new(0, 0, 512, 512))?;
//! let hematoxylin = rgb.color_deconvolution(&HED_FROM_RGB, 0)?.gaussian_blur(1.0)?;
//! let level = hematoxylin.otsu_threshold()?;
//! let (labels, count) = hematoxylin
//!     .threshold(level, true)?
//!     .label_components(gpu::Connectivity::Eight)?;
//! let nuclei = labels.region_stats(count)?;
//! # Ok(()) }
//! ```

use crate::bindings::tessera::plugin::gpu as wit_gpu;
use crate::ops::{BoundingBox, RegionStats};
use crate::{Error, Image, Rect};

pub use crate::ops::Connectivity;

/// What a tensor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    /// 32-bit floats.
    F32,
    /// 32-bit unsigned integers: masks (0 or 1) and labels.
    U32,
    /// RGB pixels, 8 bits a channel.
    Rgb8,
}

/// Binary morphology with a square footprint; pixels outside the plane are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Morphology {
    /// A pixel stays set when its whole footprint is set.
    Erode,
    /// A pixel is set when any of its footprint is.
    Dilate,
    /// Erode, then dilate.
    Open,
    /// Dilate, then erode.
    Close,
}

/// The host's compute device as this plugin sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInfo {
    /// `wgpu`, `cuda` or `cpu`.
    pub backend: String,
    /// The adapter's name.
    pub adapter: String,
    /// Bytes of tensors this plugin may hold.
    pub memory_grant: u64,
    /// Bytes it holds now.
    pub memory_used: u64,
}

impl DeviceInfo {
    /// True when the kernels run on a GPU rather than the host's CPU path.
    pub fn is_gpu(&self) -> bool {
        self.backend != "cpu"
    }
}

/// The device, or [`Error::Denied`] when the plugin has no grant.
pub fn info() -> Result<DeviceInfo, Error> {
    let i = wit_gpu::info()?;
    Ok(DeviceInfo {
        backend: i.backend,
        adapter: i.adapter,
        memory_grant: i.memory_grant,
        memory_used: i.memory_used,
    })
}

fn connectivity(c: Connectivity) -> wit_gpu::Connectivity {
    match c {
        Connectivity::Four => wit_gpu::Connectivity::Four,
        Connectivity::Eight => wit_gpu::Connectivity::Eight,
    }
}

fn plane(width: u32, height: u32) -> wit_gpu::Shape {
    wit_gpu::Shape {
        width,
        height,
        channels: 1,
    }
}

/// Data on the host's device. Dropping it frees the device memory.
#[derive(Debug)]
pub struct Tensor {
    handle: wit_gpu::Tensor,
}

impl Tensor {
    fn wrap(handle: wit_gpu::Tensor) -> Tensor {
        Tensor { handle }
    }

    /// Uploads one `width` x `height` plane of floats.
    pub fn upload_f32(width: u32, height: u32, values: &[f32]) -> Result<Tensor, Error> {
        Ok(Self::wrap(wit_gpu::upload_f32(
            plane(width, height),
            values,
        )?))
    }

    /// Uploads one `width` x `height` plane of integers (a mask or labels).
    pub fn upload_u32(width: u32, height: u32, values: &[u32]) -> Result<Tensor, Error> {
        Ok(Self::wrap(wit_gpu::upload_u32(
            plane(width, height),
            values,
        )?))
    }

    /// Uploads interleaved RGB pixels.
    pub fn upload_rgb(rgb: &crate::RgbImage) -> Result<Tensor, Error> {
        Ok(Self::wrap(wit_gpu::upload_rgb(
            rgb.width, rgb.height, &rgb.data,
        )?))
    }

    /// Reads `rect` of `level` of an open image straight into an RGB tensor; the pixels never
    /// pass through the plugin.
    pub fn read_region(image: &Image, level: u32, rect: Rect) -> Result<Tensor, Error> {
        Ok(Self::wrap(wit_gpu::read_region_to_tensor(
            image.handle(),
            level,
            rect.into(),
        )?))
    }

    /// Width, height and number of planes.
    pub fn shape(&self) -> (u32, u32, u32) {
        let s = self.handle.shape();
        (s.width, s.height, s.channels)
    }

    /// What it holds.
    pub fn element(&self) -> Element {
        match self.handle.element() {
            wit_gpu::Element::F32 => Element::F32,
            wit_gpu::Element::U32 => Element::U32,
            wit_gpu::Element::Rgb8 => Element::Rgb8,
        }
    }

    /// Bytes it occupies on the device.
    pub fn size(&self) -> u64 {
        self.handle.size()
    }

    /// The values of a float tensor, plane after plane, row-major.
    pub fn download_f32(&self) -> Result<Vec<f32>, Error> {
        Ok(self.handle.download_f32()?)
    }

    /// The values of an integer or RGB tensor (RGB packed, red in the low byte).
    pub fn download_u32(&self) -> Result<Vec<u32>, Error> {
        Ok(self.handle.download_u32()?)
    }

    /// A mask as booleans.
    pub fn download_mask(&self) -> Result<Vec<bool>, Error> {
        Ok(self.download_u32()?.into_iter().map(|v| v != 0).collect())
    }

    /// Red, green and blue optical-density planes of an RGB tensor.
    pub fn optical_density(&self) -> Result<Tensor, Error> {
        Ok(Self::wrap(wit_gpu::optical_density(&self.handle)?))
    }

    /// One stain plane of a colour deconvolution of an RGB tensor, as
    /// [`crate::ops::color_deconvolution`] computes it.
    pub fn color_deconvolution(&self, matrix: &[[f32; 3]; 3], stain: u32) -> Result<Tensor, Error> {
        let flat: Vec<f32> = matrix.iter().flatten().copied().collect();
        Ok(Self::wrap(wit_gpu::color_deconvolution(
            &self.handle,
            &flat,
            stain,
        )?))
    }

    /// Grey level (0..=1) of an RGB tensor, as [`crate::ops::rgb_to_gray`].
    pub fn grayscale(&self) -> Result<Tensor, Error> {
        Ok(Self::wrap(wit_gpu::grayscale(&self.handle)?))
    }

    /// Gaussian blur of each plane, as [`crate::ops::gaussian_blur`].
    pub fn gaussian_blur(&self, sigma: f32) -> Result<Tensor, Error> {
        Ok(Self::wrap(wit_gpu::gaussian_blur(&self.handle, sigma)?))
    }

    /// Smallest and largest value of a float tensor.
    pub fn min_max(&self) -> Result<(f32, f32), Error> {
        Ok(wit_gpu::min_max(&self.handle)?)
    }

    /// 256-bin histogram over `[min, max]`, as [`crate::ops::Histogram`].
    pub fn histogram(&self, min: f32, max: f32) -> Result<Vec<u64>, Error> {
        Ok(wit_gpu::histogram(&self.handle, min, max)?)
    }

    /// Otsu threshold over the tensor's own range, as [`crate::ops::otsu_threshold`].
    pub fn otsu_threshold(&self) -> Result<f32, Error> {
        Ok(wit_gpu::otsu_threshold(&self.handle)?)
    }

    /// A mask: values above `level` (or at or below it when `above` is false).
    pub fn threshold(&self, level: f32, above: bool) -> Result<Tensor, Error> {
        Ok(Self::wrap(wit_gpu::threshold(&self.handle, level, above)?))
    }

    /// Binary morphology of a mask with a `2 * radius + 1` square footprint.
    pub fn morphology(&self, op: Morphology, radius: u32) -> Result<Tensor, Error> {
        let op = match op {
            Morphology::Erode => wit_gpu::MorphOp::Erode,
            Morphology::Dilate => wit_gpu::MorphOp::Dilate,
            Morphology::Open => wit_gpu::MorphOp::Open,
            Morphology::Close => wit_gpu::MorphOp::Close,
        };
        Ok(Self::wrap(wit_gpu::morphology(&self.handle, op, radius)?))
    }

    /// The mask without objects smaller than `min_area` pixels, as
    /// [`crate::ops::remove_small_objects`].
    pub fn remove_small_objects(&self, min_area: u32, c: Connectivity) -> Result<Tensor, Error> {
        Ok(Self::wrap(wit_gpu::remove_small_objects(
            &self.handle,
            min_area,
            connectivity(c),
        )?))
    }

    /// Labels the objects of a mask in raster order of their first pixel, as
    /// [`crate::ops::label_components`]; returns the labels and their count.
    pub fn label_components(&self, c: Connectivity) -> Result<(Tensor, u32), Error> {
        let (labels, count) = wit_gpu::label_components(&self.handle, connectivity(c))?;
        Ok((Self::wrap(labels), count))
    }

    /// Area, centroid and bounding box of labels `1..=count`, as [`crate::ops::region_stats`].
    pub fn region_stats(&self, count: u32) -> Result<Vec<RegionStats>, Error> {
        Ok(wit_gpu::region_stats(&self.handle, count)?
            .into_iter()
            .map(|r| RegionStats {
                label: r.label,
                area: r.area,
                centroid_x: r.centroid_x,
                centroid_y: r.centroid_y,
                bbox: BoundingBox {
                    min_x: r.bbox.x,
                    min_y: r.bbox.y,
                    max_x: r.bbox.x + r.bbox.width,
                    max_y: r.bbox.y + r.bbox.height,
                },
            })
            .collect())
    }
}

/// Where a plugin runs its analysis: the `device` choice parameter of the first-party plugins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The host's kernels when the host has a GPU and the plugin a grant, else the plugin's own
    /// CPU code.
    Auto,
    /// The host's kernels, whatever device the host runs them on; an error without a grant.
    Gpu,
    /// The plugin's own CPU code.
    Cpu,
}

impl DeviceChoice {
    /// Name of the parameter.
    pub const PARAM: &'static str = "device";

    /// The parameter's declaration, default `auto`.
    pub fn param() -> crate::ParamSpec {
        crate::ParamSpec::choice(
            Self::PARAM,
            "Where to compute: auto (the host's GPU when it has one), gpu (the host's kernels), cpu (in the plugin)",
            "auto",
            &["auto", "gpu", "cpu"],
        )
    }

    /// The choice in `params`.
    pub fn from_params(params: &crate::Params) -> Result<DeviceChoice, Error> {
        match params.text(Self::PARAM)? {
            "auto" => Ok(DeviceChoice::Auto),
            "gpu" => Ok(DeviceChoice::Gpu),
            "cpu" => Ok(DeviceChoice::Cpu),
            other => Err(Error::invalid_input(format!(
                "parameter `device` is `{other}`; expected auto, gpu or cpu"
            ))),
        }
    }

    /// Whether to use the host's kernels: `gpu` requires them (failing without a grant),
    /// `auto` uses them only when the host has a GPU.
    pub fn use_kernels(self) -> Result<bool, Error> {
        match self {
            DeviceChoice::Cpu => Ok(false),
            DeviceChoice::Gpu => info().map(|_| true),
            DeviceChoice::Auto => Ok(info().is_ok_and(|i| i.is_gpu())),
        }
    }
}
