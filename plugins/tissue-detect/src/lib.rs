//! `tissue-detect`: separates tissue from background glass.
//!
//! The image is turned to grey levels region by region, a global Otsu threshold splits it, and
//! everything darker than or equal to the threshold is tissue. The plugin reports the tissue
//! fraction and one polygon per piece of tissue. It works at the finest pyramid level that fits
//! [`MAX_ANALYSIS_PIXELS`]: tissue outlines need no more detail than that.
//!
//! With `device` = `gpu` (or `auto` on a host with a GPU), grey levels, threshold and mask come
//! from the host's kernels ([`analyze_with_kernels`]); the outlines are traced in the plugin.

pub mod pipeline;

use pipeline::TissueOutcome;
use tessera_sdk::gpu::{DeviceChoice, Tensor};
use tessera_sdk::{
    Algorithm, Annotation, Error, Image, ImageSource, Input, Measurement, Output, ParamSpec, Rect,
    host, paste,
};

/// Largest grey plane analysed at once; larger images are analysed at a coarser level.
pub const MAX_ANALYSIS_PIXELS: u64 = 16 << 20;

/// Side of the tiles regions are read in.
pub const TILE: u32 = 1024;

/// What [`analyze`] found.
pub struct Analysis {
    /// The pyramid level analysed.
    pub level: u32,
    /// Level-0 pixels per analysed pixel.
    pub downsample: f64,
    /// The analysed rectangle, in level coordinates.
    pub area: Rect,
    /// Threshold, fraction and outlines (level coordinates relative to `area`).
    pub outcome: TissueOutcome,
}

/// Runs the analysis on any image source; `progress` is called after each tile.
pub fn analyze(
    source: &impl ImageSource,
    region: Option<Rect>,
    progress: &mut dyn FnMut(u64, u64) -> Result<(), Error>,
) -> Result<Analysis, Error> {
    let info = source.info();
    let level = info.level_within(MAX_ANALYSIS_PIXELS);
    let l = info.levels[level as usize];
    let area = info.level_rect(level, region);
    let (w, h) = (area.width as usize, area.height as usize);

    let tiles = Rect::tiles(area.width, area.height, TILE);
    let total = tiles.len() as u64 + 1;
    let mut gray = vec![0f32; w * h];
    for (i, tile) in tiles.iter().enumerate() {
        let abs = Rect::new(area.x + tile.x, area.y + tile.y, tile.width, tile.height);
        let rgb = source.read_region(level, abs)?;
        let g = pipeline::gray_tile(&rgb.data);
        let window = Rect::new(0, 0, tile.width, tile.height);
        let at = (tile.x as usize, tile.y as usize);
        paste(&mut gray, w, at, &g, tile.width as usize, window);
        progress(i as u64 + 1, total)?;
    }

    let outcome = pipeline::detect_gray(&gray, w, h);
    progress(total, total)?;
    Ok(Analysis {
        level,
        downsample: l.downsample,
        area,
        outcome,
    })
}

/// [`analyze`] on the host's kernels: grey tiles on the device, then the Otsu threshold
/// (histogram on the device) and the mask of the whole plane.
pub fn analyze_with_kernels(
    image: &Image,
    region: Option<Rect>,
    progress: &mut dyn FnMut(u64, u64) -> Result<(), Error>,
) -> Result<Analysis, Error> {
    let info = image.info();
    let level = info.level_within(MAX_ANALYSIS_PIXELS);
    let l = info.levels[level as usize];
    let area = info.level_rect(level, region);
    let (w, h) = (area.width as usize, area.height as usize);

    let tiles = Rect::tiles(area.width, area.height, TILE);
    let total = tiles.len() as u64 + 1;
    let gray = if tiles.len() == 1 {
        Tensor::read_region(image, level, area)?.grayscale()?
    } else {
        let mut plane = vec![0f32; w * h];
        for (i, tile) in tiles.iter().enumerate() {
            let abs = Rect::new(area.x + tile.x, area.y + tile.y, tile.width, tile.height);
            let g = Tensor::read_region(image, level, abs)?
                .grayscale()?
                .download_f32()?;
            let window = Rect::new(0, 0, tile.width, tile.height);
            let at = (tile.x as usize, tile.y as usize);
            paste(&mut plane, w, at, &g, tile.width as usize, window);
            progress(i as u64 + 1, total)?;
        }
        Tensor::upload_f32(area.width, area.height, &plane)?
    };
    let threshold = gray.otsu_threshold()?;
    let tissue = gray.threshold(threshold, false)?.download_mask()?;
    let outcome = pipeline::from_mask(threshold, &tissue, w, h);
    progress(total, total)?;
    Ok(Analysis {
        level,
        downsample: l.downsample,
        area,
        outcome,
    })
}

impl Analysis {
    /// Outlines in level-0 coordinates and the whole-image measurements.
    pub fn to_output(&self) -> Output {
        let ds = self.downsample;
        let (ox, oy) = (f64::from(self.area.x), f64::from(self.area.y));
        let mut output = Output::new();
        for ring in &self.outcome.outlines {
            let ring = ring.iter().map(|&(x, y)| ((ox + x) * ds, (oy + y) * ds));
            output.annotations.push(Annotation::polygon(ring, "tissue"));
        }
        output
            .measurement(Measurement::new("tissue-fraction", self.outcome.fraction))
            .measurement(Measurement::new(
                "threshold",
                f64::from(self.outcome.threshold),
            ))
            .measurement(Measurement::new("analysis-level", f64::from(self.level)))
    }
}

/// The plugin.
pub struct TissueDetect;

impl Algorithm for TissueDetect {
    const NAME: &'static str = "Tissue detection";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Separates tissue from background glass";

    fn params() -> Vec<ParamSpec> {
        vec![DeviceChoice::param()]
    }

    fn run(input: Input) -> Result<Output, Error> {
        let mut report = |done, total| {
            host::progress(done, total);
            host::check_cancelled()
        };
        let analysis = if DeviceChoice::from_params(&input.params)?.use_kernels()? {
            analyze_with_kernels(&input.image, input.region, &mut report)?
        } else {
            analyze(&input.image, input.region, &mut report)?
        };
        Ok(analysis.to_output())
    }
}

#[cfg(target_arch = "wasm32")]
tessera_sdk::export_algorithm!(TissueDetect);
