//! `nuclei-detect`: finds haematoxylin-stained nuclei.
//!
//! The haematoxylin channel comes from colour deconvolution with the Ruifrok & Johnston H&E-DAB
//! stain matrix, is blurred with a Gaussian, thresholded with a global Otsu threshold; objects
//! smaller than `min-area` are dropped and the rest labelled with 8-connectivity. Each nucleus
//! becomes a point annotation at its centroid with its area.
//!
//! Regions are read and filtered tile by tile (each tile with enough margin that the blur is
//! exact), so the plugin never holds the RGB pixels of a whole large image; the threshold and
//! the labelling need the whole smoothed plane, which is kept at the finest pyramid level that
//! fits [`MAX_ANALYSIS_PIXELS`].
//!
//! With `device` = `gpu` (or `auto` on a host with a GPU) the same steps run as the host's
//! kernels ([`analyze_with_kernels`]): pixels go from the store to the device without passing
//! through the plugin, and only the smoothed tiles and the per-nucleus numbers come back.

pub mod pipeline;

use pipeline::{NucleiOutcome, NucleiParams};
use tessera_sdk::gpu::{Connectivity, DeviceChoice, Tensor};
use tessera_sdk::ops::HED_FROM_RGB;
use tessera_sdk::{
    Algorithm, Annotation, Error, Image, ImageSource, Input, Measurement, Output, ParamSpec, Rect,
    host, paste,
};

/// Largest plane analysed at once; larger images are analysed at a coarser pyramid level.
/// 48 Mpx of f32 plus masks and labels stay within the manifest's 1 GiB.
pub const MAX_ANALYSIS_PIXELS: u64 = 48 << 20;

/// Side of the tiles regions are read in.
pub const TILE: u32 = 1024;

/// What [`analyze`] found, in the coordinates of the analysed level.
pub struct Analysis {
    /// The pyramid level analysed.
    pub level: u32,
    /// Level-0 pixels per analysed pixel.
    pub downsample: f64,
    /// The analysed rectangle, in level coordinates.
    pub area: Rect,
    /// Threshold and nuclei.
    pub outcome: NucleiOutcome,
}

/// Runs the pipeline on any image source. `progress(done, total)` is called after each tile;
/// returning an error from it (e.g. [`Error::Cancelled`]) stops the analysis.
pub fn analyze(
    source: &impl ImageSource,
    region: Option<Rect>,
    params: &NucleiParams,
    progress: &mut dyn FnMut(u64, u64) -> Result<(), Error>,
) -> Result<Analysis, Error> {
    let info = source.info();
    let level = info.level_within(MAX_ANALYSIS_PIXELS);
    let l = info.levels[level as usize];
    let area = info.level_rect(level, region);
    let (w, h) = (area.width as usize, area.height as usize);

    // 1. Smoothed haematoxylin, tile by tile, into one plane.
    let margin = pipeline::blur_margin(params.sigma);
    let tiles = Rect::tiles(area.width, area.height, TILE);
    let total = tiles.len() as u64 + 1;
    let mut plane = vec![0f32; w * h];
    for (i, tile) in tiles.iter().enumerate() {
        let inner = Rect::new(area.x + tile.x, area.y + tile.y, tile.width, tile.height);
        let outer = inner.expand(margin, l.width, l.height);
        let rgb = source.read_region(level, outer)?;
        let smoothed = pipeline::smoothed_hematoxylin(
            &rgb.data,
            outer.width as usize,
            outer.height as usize,
            params.sigma,
        );
        let window = Rect::new(
            inner.x - outer.x,
            inner.y - outer.y,
            tile.width,
            tile.height,
        );
        let at = (tile.x as usize, tile.y as usize);
        paste(&mut plane, w, at, &smoothed, outer.width as usize, window);
        progress(i as u64 + 1, total)?;
    }

    // 2. Threshold, clean up, label.
    let outcome = pipeline::detect(&plane, w, h, params);
    progress(total, total)?;
    Ok(Analysis {
        level,
        downsample: l.downsample,
        area,
        outcome,
    })
}

/// [`analyze`] on the host's kernels: the same tiles, deconvolution and blur per tile on the
/// device, then threshold, speck removal, labelling and measurements on the whole plane there.
pub fn analyze_with_kernels(
    image: &Image,
    region: Option<Rect>,
    params: &NucleiParams,
    progress: &mut dyn FnMut(u64, u64) -> Result<(), Error>,
) -> Result<Analysis, Error> {
    let info = image.info();
    let level = info.level_within(MAX_ANALYSIS_PIXELS);
    let l = info.levels[level as usize];
    let area = info.level_rect(level, region);
    let (w, h) = (area.width as usize, area.height as usize);

    // 1. Smoothed haematoxylin per tile. A plane that is one tile without margin stays on the
    //    device; otherwise tiles come back and are pasted into one plane, as on the CPU path.
    let margin = pipeline::blur_margin(params.sigma);
    let tiles = Rect::tiles(area.width, area.height, TILE);
    let total = tiles.len() as u64 + 1;
    let mut whole: Option<Tensor> = None;
    let mut plane = Vec::new();
    for (i, tile) in tiles.iter().enumerate() {
        let inner = Rect::new(area.x + tile.x, area.y + tile.y, tile.width, tile.height);
        let outer = inner.expand(margin, l.width, l.height);
        let rgb = Tensor::read_region(image, level, outer)?;
        let smoothed = rgb
            .color_deconvolution(&HED_FROM_RGB, 0)?
            .gaussian_blur(params.sigma)?;
        drop(rgb);
        if tiles.len() == 1 && outer == inner {
            whole = Some(smoothed);
        } else {
            if plane.is_empty() {
                plane = vec![0f32; w * h];
            }
            let values = smoothed.download_f32()?;
            let window = Rect::new(
                inner.x - outer.x,
                inner.y - outer.y,
                tile.width,
                tile.height,
            );
            let at = (tile.x as usize, tile.y as usize);
            paste(&mut plane, w, at, &values, outer.width as usize, window);
        }
        progress(i as u64 + 1, total)?;
    }
    let smoothed = match whole {
        Some(t) => t,
        None => Tensor::upload_f32(area.width, area.height, &plane)?,
    };
    drop(plane);

    // 2. Threshold, clean up, label, measure: all on the device.
    let threshold = smoothed.otsu_threshold()?;
    let mask = smoothed.threshold(threshold, true)?;
    drop(smoothed);
    let kept = mask.remove_small_objects(params.min_area, Connectivity::Four)?;
    drop(mask);
    let (labels, count) = kept.label_components(Connectivity::Eight)?;
    let nuclei = labels.region_stats(count)?;
    let foreground_pixels = nuclei.iter().map(|nucleus| nucleus.area).sum();
    progress(total, total)?;
    Ok(Analysis {
        level,
        downsample: l.downsample,
        area,
        outcome: NucleiOutcome {
            threshold,
            nuclei,
            foreground_pixels,
        },
    })
}

impl Analysis {
    /// Annotations in level-0 coordinates and whole-image measurements.
    pub fn to_output(&self) -> Output {
        let ds = self.downsample;
        let px_area = ds * ds;
        let mut output = Output::new();
        let mut total_area = 0.0;
        for n in &self.outcome.nuclei {
            let x = (f64::from(self.area.x) + n.centroid_x) * ds;
            let y = (f64::from(self.area.y) + n.centroid_y) * ds;
            let area = n.area as f64 * px_area;
            total_area += area;
            output
                .annotations
                .push(Annotation::point(x, y, "nucleus").with("area", area));
        }
        let count = self.outcome.nuclei.len() as f64;
        let mean = if count > 0.0 { total_area / count } else { 0.0 };
        output
            .measurement(Measurement::new("nuclei-count", count))
            .measurement(Measurement::new("mean-nucleus-area", mean).unit("px"))
            .measurement(Measurement::new(
                "threshold",
                f64::from(self.outcome.threshold),
            ))
            .measurement(Measurement::new("analysis-level", f64::from(self.level)))
    }
}

/// The plugin.
pub struct NucleiDetect;

impl Algorithm for NucleiDetect {
    const NAME: &'static str = "Nuclei detection";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Finds haematoxylin-stained nuclei";

    fn params() -> Vec<ParamSpec> {
        vec![
            ParamSpec::float(
                "sigma",
                "Gaussian blur of the haematoxylin channel before thresholding, in pixels",
                1.0,
                0.1,
                10.0,
            ),
            ParamSpec::int(
                "min-area",
                "Objects smaller than this many pixels (4-connected) are dropped",
                30,
                1,
                1_000_000,
            ),
            DeviceChoice::param(),
        ]
    }

    fn run(input: Input) -> Result<Output, Error> {
        let params = NucleiParams {
            sigma: input.params.float("sigma")? as f32,
            min_area: u32::try_from(input.params.int("min-area")?)
                .map_err(|_| Error::invalid_input("min-area must be positive"))?,
        };
        let mut report = |done, total| {
            host::progress(done, total);
            host::check_cancelled()
        };
        let analysis = if DeviceChoice::from_params(&input.params)?.use_kernels()? {
            analyze_with_kernels(&input.image, input.region, &params, &mut report)?
        } else {
            analyze(&input.image, input.region, &params, &mut report)?
        };
        Ok(analysis.to_output())
    }
}

#[cfg(target_arch = "wasm32")]
tessera_sdk::export_algorithm!(NucleiDetect);
