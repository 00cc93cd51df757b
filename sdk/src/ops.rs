//! Image operations for plugin authors: grey levels, histograms and Otsu thresholds, colour
//! deconvolution, Gaussian blur, connected components and outline tracing.
//!
//! Every function works on row-major buffers whose width and height travel alongside: RGB as
//! interleaved `u8` triples (the layout `read-region` returns), single-channel planes as `f32`,
//! masks as `bool`. Results follow scikit-image, which the first-party plugins are tested against
//! (`examples/data/reference.json`). Where scikit-image computes in `f64`, these functions keep
//! `f32` planes: half the memory and bandwidth, and within a fraction of a percent of the
//! reference on the sample images.
//!
//! Nothing here depends on the host, so the same code runs inside a wasm plugin and natively (the
//! benchmark compares the two). Hot loops run over slices without per-pixel allocation.
//!
//! A typical pipeline:
//!
//! ```
//! use tessera_sdk::ops::{self, Connectivity};
//!
//! let (width, height) = (4, 2);
//! let rgb = [
//!     250, 250, 250, 40, 30, 90, 40, 30, 90, 250, 250, 250, //
//!     250, 250, 250, 40, 30, 90, 250, 250, 250, 250, 250, 250,
//! ];
//! let gray = ops::rgb_to_gray(&rgb);
//! let threshold = ops::otsu_threshold(&gray);
//! let dark: Vec<bool> = gray.iter().map(|&g| g <= threshold).collect();
//! let regions = ops::region_stats_from_mask(&dark, width, height, Connectivity::Eight);
//! assert_eq!(regions.len(), 1);
//! assert_eq!(regions[0].area, 3);
//! ```

/// Weights of red, green and blue in [`rgb_to_gray`]: ITU-R BT.709 luma, as in scikit-image's
/// `rgb2gray`.
pub const GRAY_WEIGHTS: [f64; 3] = [0.2125, 0.7154, 0.0721];

/// Bins of a [`Histogram`] and of [`histogram_u8`], as in `threshold_otsu(nbins=256)`.
pub const HISTOGRAM_BINS: usize = 256;

/// Stain matrix of [`color_deconvolution`] for haematoxylin, eosin and DAB (Ruifrok & Johnston),
/// the `hed_from_rgb` of scikit-image: row `c` holds the contribution of the optical density of
/// colour channel `c` (red, green, blue) to each stain.
pub const HED_FROM_RGB: [[f32; 3]; 3] = [
    [1.877_982_7, -1.007_678_7, -0.556_115_8],
    [-0.065_908_06, 1.134_730_4, -0.135_521_8],
    [-0.601_907_4, -0.480_414_2, 1.573_588_1],
];

/// Smallest intensity [`color_deconvolution`] takes the logarithm of; darker channels are clamped
/// to it, so pure black has an optical density of 1 instead of infinity (as in scikit-image).
const MIN_INTENSITY: f64 = 1e-6;

/// Gaussian kernels are cut off at this many standard deviations, like scipy's `gaussian_filter`
/// (`truncate=4.0`); the weights beyond are below 0.04 % of the centre weight.
pub const GAUSSIAN_TRUNCATE: f32 = 4.0;

/// Largest sigma [`gaussian_blur`] applies; larger values are clamped to it. It bounds the kernel
/// at 801 taps, and so the work per pixel, when sigma comes from a user parameter. Blurs wider
/// than this are cheaper and as good on a coarser pyramid level.
pub const MAX_GAUSSIAN_SIGMA: f32 = 100.0;

/// Most vertices [`trace_outlines`] returns over all its polygons. It keeps a noisy mask from
/// turning into a multi-megabyte annotation payload that the host must store and viewers must
/// draw. Outlines are produced largest first and the first one that would cross the cap ends the
/// list; a larger simplification tolerance or minimum area is the remedy, not a larger cap.
pub const MAX_OUTLINE_VERTICES: usize = 100_000;

/// Lookup tables of `weight * value / 255` in `f64` for each channel, so that a grey level costs
/// three loads and two additions in the same order as scikit-image's `rgb @ weights`.
fn gray_tables() -> [[f64; 256]; 3] {
    let mut tables = [[0.0; 256]; 3];
    for (table, weight) in tables.iter_mut().zip(GRAY_WEIGHTS) {
        for (value, entry) in table.iter_mut().enumerate() {
            *entry = value as f64 / 255.0 * weight;
        }
    }
    tables
}

/// Grey level of each pixel of interleaved RGB, `0.2125 R + 0.7154 G + 0.0721 B` with channels
/// scaled to 0..=1 (scikit-image `rgb2gray`). A trailing partial pixel is ignored.
pub fn rgb_to_gray(rgb: &[u8]) -> Vec<f32> {
    let tables = gray_tables();
    let (pixels, _) = rgb.as_chunks::<3>();
    pixels
        .iter()
        .map(|&[r, g, b]| {
            (tables[0][usize::from(r)] + tables[1][usize::from(g)] + tables[2][usize::from(b)])
                as f32
        })
        .collect()
}

/// Grey level of each pixel as an 8-bit value: [`rgb_to_gray`] scaled to 0..=255 and rounded half
/// to even (`numpy.round(rgb2gray(rgb) * 255)`). The grey level stays in `f64` until rounding so
/// that values on a half step round exactly as in the reference.
pub fn rgb_to_gray_u8(rgb: &[u8]) -> Vec<u8> {
    let tables = gray_tables();
    let (pixels, _) = rgb.as_chunks::<3>();
    pixels
        .iter()
        .map(|&[r, g, b]| {
            let gray =
                tables[0][usize::from(r)] + tables[1][usize::from(g)] + tables[2][usize::from(b)];
            (gray * 255.0).round_ties_even() as u8
        })
        .collect()
}

/// Count of each value 0..=255 (`numpy.bincount(values, minlength=256)`).
pub fn histogram_u8(values: &[u8]) -> [u64; HISTOGRAM_BINS] {
    let mut counts = [0u64; HISTOGRAM_BINS];
    for &value in values {
        counts[usize::from(value)] += 1;
    }
    counts
}

/// Smallest and largest value, ignoring NaN; `None` when there is no other value.
pub fn min_max(values: &[f32]) -> Option<(f32, f32)> {
    // `f32::min` and `f32::max` return the other operand when one is NaN, so NaN never wins and
    // the loop needs no branch.
    let (min, max) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(min, max), &v| {
            (min.min(v), max.max(v))
        });
    if min <= max { Some((min, max)) } else { None }
}

/// A histogram of `f32` values in [`HISTOGRAM_BINS`] equal bins spanning `[min, max]`, binned like
/// `numpy.histogram`: bin `i` holds `edge[i] <= v < edge[i + 1]` and the last bin also holds `max`.
///
/// Because its range is fixed up front, a plugin can fill it region by region with
/// [`Histogram::add`] (after a first pass for the range, see [`min_max`]) and threshold the whole
/// image with [`otsu_threshold_from_histogram`] without holding the image in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Lower edge of the first bin.
    pub min: f32,
    /// Upper edge of the last bin.
    pub max: f32,
    /// Number of values in each bin.
    pub counts: [u64; HISTOGRAM_BINS],
}

impl Histogram {
    /// An empty histogram over `[min, max]`. When `min == max` every value equal to it counts in
    /// the first bin; when `min > max` or either is NaN nothing is ever counted.
    pub fn new(min: f32, max: f32) -> Self {
        Self {
            min,
            max,
            counts: [0; HISTOGRAM_BINS],
        }
    }

    /// The histogram of `values` over their own range, as scikit-image builds it for
    /// `threshold_otsu`. Empty (over `[0, 0]`) when no value is a number.
    pub fn of(values: &[f32]) -> Self {
        let (min, max) = min_max(values).unwrap_or((0.0, 0.0));
        let mut histogram = Self::new(min, max);
        histogram.add(values);
        histogram
    }

    /// Counts `values`; values outside `[min, max]` and NaN are skipped.
    pub fn add(&mut self, values: &[f32]) {
        let (first, last) = (f64::from(self.min), f64::from(self.max));
        if first == last {
            self.counts[0] += values.iter().filter(|&&v| v == self.min).count() as u64;
            return;
        }
        if !self.has_width() {
            return;
        }

        // numpy's bin edges are `linspace(min, max, bins + 1)` in f64. Each is replaced by the
        // smallest f32 at or above it, which splits f32 values exactly as the f64 edge does, so
        // the loop below stays in f32. A fast estimate of the bin is then corrected against the
        // edges, putting values that sit on an edge where numpy puts them.
        let mut edges = [0.0f32; HISTOGRAM_BINS + 1];
        let step = (last - first) / HISTOGRAM_BINS as f64;
        for (i, edge) in edges.iter_mut().enumerate() {
            let exact = if i == HISTOGRAM_BINS {
                last
            } else {
                i as f64 * step + first
            };
            let nearest = exact as f32;
            *edge = if f64::from(nearest) < exact {
                nearest.next_up()
            } else {
                nearest
            };
        }
        let (min, max) = (self.min, self.max);
        let scale = (HISTOGRAM_BINS as f64 / (last - first)) as f32;
        // The estimate is off by at most one bin unless the range is a few ulps wide; the loops
        // are exact either way.
        let bin_of = |v: f32| {
            let mut bin = (((v - min) * scale) as usize).min(HISTOGRAM_BINS - 1);
            while bin > 0 && v < edges[bin] {
                bin -= 1;
            }
            while bin + 1 < HISTOGRAM_BINS && v >= edges[bin + 1] {
                bin += 1;
            }
            bin
        };

        // Four interleaved tallies: runs of equal values (smooth images are full of them) would
        // otherwise wait on the previous increment of the same counter.
        let mut tallies = [[0u64; HISTOGRAM_BINS]; 4];
        let (quads, rest) = values.as_chunks::<4>();
        for quad in quads {
            for (tally, &v) in tallies.iter_mut().zip(quad) {
                if (min..=max).contains(&v) {
                    tally[bin_of(v)] += 1;
                }
            }
        }
        for &v in rest {
            if (min..=max).contains(&v) {
                tallies[0][bin_of(v)] += 1;
            }
        }
        for tally in &tallies {
            for (count, extra) in self.counts.iter_mut().zip(tally) {
                *count += extra;
            }
        }
    }

    /// Adds the counts of `other`, a histogram over the same range (the range of `other` is not
    /// checked).
    pub fn merge(&mut self, other: &Histogram) {
        for (count, extra) in self.counts.iter_mut().zip(&other.counts) {
            *count += extra;
        }
    }

    /// Whether the range has room for bins: `min < max`, neither NaN.
    fn has_width(&self) -> bool {
        self.min < self.max
    }

    /// Number of values counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Centre of bin `bin`, the mean of its two edges as scikit-image computes it; `min` when the
    /// range is empty.
    ///
    /// # Panics
    ///
    /// When `bin >= HISTOGRAM_BINS`.
    pub fn bin_centre(&self, bin: usize) -> f64 {
        assert!(bin < HISTOGRAM_BINS, "bin {bin} is past the last bin");
        let (first, last) = (f64::from(self.min), f64::from(self.max));
        if !self.has_width() {
            return first;
        }
        let step = (last - first) / HISTOGRAM_BINS as f64;
        let edge = |i: usize| {
            if i == HISTOGRAM_BINS {
                last
            } else {
                i as f64 * step + first
            }
        };
        (edge(bin) + edge(bin + 1)) / 2.0
    }
}

/// Index of the bin after which Otsu's split maximises the between-class variance, computed like
/// scikit-image's `threshold_otsu` (prefix and suffix sums in `f64`, first maximum wins). Bins
/// before the first and after the last non-empty one are not candidates, which equals
/// scikit-image's histogram spanning exactly the data. `None` with fewer than two non-empty bins.
fn otsu_bin(counts: &[u64], centres: &[f64]) -> Option<usize> {
    let n = counts.len();
    let mut weight_below = vec![0.0f64; n];
    let mut sum_below = vec![0.0f64; n];
    let (mut weight, mut sum) = (0.0, 0.0);
    for i in 0..n {
        weight += counts[i] as f64;
        sum += counts[i] as f64 * centres[i];
        weight_below[i] = weight;
        sum_below[i] = sum;
    }

    // The classes above are summed from the top, as scikit-image does, rather than by
    // subtracting from the total, which would cancel digits near the top of the range.
    let mut weight_above = vec![0.0f64; n];
    let mut sum_above = vec![0.0f64; n];
    let (mut weight, mut sum) = (0.0, 0.0);
    for i in (0..n).rev() {
        weight += counts[i] as f64;
        sum += counts[i] as f64 * centres[i];
        weight_above[i] = weight;
        sum_above[i] = sum;
    }

    let mut best: Option<(usize, f64)> = None;
    for i in 0..n.saturating_sub(1) {
        let (w1, w2) = (weight_below[i], weight_above[i + 1]);
        if w1 == 0.0 || w2 == 0.0 {
            continue;
        }
        let gap = sum_below[i] / w1 - sum_above[i + 1] / w2;
        let variance = w1 * w2 * gap * gap;
        if best.is_none_or(|(_, top)| variance > top) {
            best = Some((i, variance));
        }
    }
    best.map(|(i, _)| i)
}

/// Otsu's threshold of `values` as scikit-image's `threshold_otsu(values, nbins=256)` computes it
/// for float images: 256 bins spanning `[min, max]`, the result is the centre of a bin, and
/// foreground is `value > threshold`. A constant input returns its value and an empty (or all
/// NaN) input returns 0; NaN values are ignored.
pub fn otsu_threshold(values: &[f32]) -> f32 {
    otsu_threshold_from_histogram(&Histogram::of(values))
}

/// Otsu's threshold of a prebuilt histogram, so the histogram can be accumulated region by region.
/// Returns `histogram.min` when the range is empty or fewer than two bins hold values.
pub fn otsu_threshold_from_histogram(histogram: &Histogram) -> f32 {
    if !histogram.has_width() {
        return histogram.min;
    }
    let centres: Vec<f64> = (0..HISTOGRAM_BINS)
        .map(|bin| histogram.bin_centre(bin))
        .collect();
    match otsu_bin(&histogram.counts, &centres) {
        Some(bin) => centres[bin] as f32,
        None => histogram.min,
    }
}

/// Otsu's threshold of 8-bit values given their [`histogram_u8`], as scikit-image's
/// `threshold_otsu` computes it for `uint8` images: foreground is `value > threshold`. A single
/// grey level returns that level; an empty histogram returns 0.
pub fn otsu_threshold_u8(histogram: &[u64; HISTOGRAM_BINS]) -> u8 {
    let centres: Vec<f64> = (0..HISTOGRAM_BINS).map(|level| level as f64).collect();
    match otsu_bin(histogram, &centres) {
        Some(level) => level as u8,
        None => histogram.iter().position(|&count| count > 0).unwrap_or(0) as u8,
    }
}

/// Optical density of each 8-bit intensity, `ln(max(v / 255, 1e-6)) / ln(1e-6)`.
fn optical_density_table() -> [f64; 256] {
    let mut table = [0.0; 256];
    let scale = MIN_INTENSITY.ln();
    for (value, density) in table.iter_mut().enumerate() {
        *density = (value as f64 / 255.0).max(MIN_INTENSITY).ln() / scale;
    }
    table
}

/// Tables of `density(v) * matrix[channel][stain]` for one stain, one per colour channel.
fn stain_tables(density: &[f64; 256], matrix: &[[f32; 3]; 3], stain: usize) -> [[f32; 256]; 3] {
    let mut tables = [[0.0; 256]; 3];
    for (channel, table) in tables.iter_mut().enumerate() {
        let weight = f64::from(matrix[channel][stain]);
        for (entry, &d) in table.iter_mut().zip(density) {
            *entry = (d * weight) as f32;
        }
    }
    tables
}

/// Amount of one stain in each pixel, from precomputed [`stain_tables`].
fn stain_plane(pixels: &[[u8; 3]], tables: &[[f32; 256]; 3]) -> Vec<f32> {
    pixels
        .iter()
        .map(|&[r, g, b]| {
            let amount =
                tables[0][usize::from(r)] + tables[1][usize::from(g)] + tables[2][usize::from(b)];
            amount.max(0.0)
        })
        .collect()
}

/// Separates interleaved RGB into three stain planes by colour deconvolution, exactly as
/// scikit-image's `separate_stains`: intensities are clamped to at least 1e-6, turned into optical
/// densities `ln(v) / ln(1e-6)`, multiplied by `matrix` (density row vector times matrix) and
/// clamped at zero. With [`HED_FROM_RGB`] the planes are haematoxylin, eosin and DAB
/// (`rgb2hed`). A trailing partial pixel is ignored.
pub fn color_deconvolution(rgb: &[u8], matrix: &[[f32; 3]; 3]) -> [Vec<f32>; 3] {
    let density = optical_density_table();
    let (pixels, _) = rgb.as_chunks::<3>();
    [0, 1, 2].map(|stain| stain_plane(pixels, &stain_tables(&density, matrix, stain)))
}

/// The haematoxylin plane of [`color_deconvolution`] with [`HED_FROM_RGB`], without computing the
/// other two stains.
pub fn hematoxylin(rgb: &[u8]) -> Vec<f32> {
    let density = optical_density_table();
    let (pixels, _) = rgb.as_chunks::<3>();
    stain_plane(pixels, &stain_tables(&density, &HED_FROM_RGB, 0))
}

/// Sigma as [`gaussian_blur`] applies it: clamped to [`MAX_GAUSSIAN_SIGMA`], and 0 (no blur) when
/// negative or NaN.
fn effective_sigma(sigma: f32) -> f32 {
    if sigma > 0.0 {
        sigma.min(MAX_GAUSSIAN_SIGMA)
    } else {
        0.0
    }
}

/// Half-width in pixels of the kernel [`gaussian_blur`] uses for `sigma`:
/// `int(4 * sigma + 0.5)`, as scipy computes it. A pixel of the result depends only on input
/// pixels at most this far away in x and in y.
pub fn gaussian_radius(sigma: f32) -> usize {
    (f64::from(GAUSSIAN_TRUNCATE) * f64::from(effective_sigma(sigma)) + 0.5) as usize
}

/// Weights of the offsets `0..=radius` of a normalised Gaussian kernel (the kernel is symmetric),
/// computed in `f64` like scipy's `_gaussian_kernel1d`.
fn gaussian_half_kernel(sigma: f32) -> Vec<f32> {
    let radius = gaussian_radius(sigma);
    if radius == 0 {
        return vec![1.0];
    }
    let sigma = f64::from(effective_sigma(sigma));
    let factor = -0.5 / (sigma * sigma);
    let weights: Vec<f64> = (0..=radius)
        .map(|x| (factor * (x * x) as f64).exp())
        .collect();
    let total = weights[0] + 2.0 * weights[1..].iter().sum::<f64>();
    weights.iter().map(|w| (w / total) as f32).collect()
}

/// One output line of a symmetric convolution: `out[x] = k[0] c[x] + sum_j k[j] (l_j[x] + r_j[x])`
/// where `line(0)` is the centre and `line(±j)` the inputs shifted by ±j.
fn convolve_line<'a>(out: &mut [f32], kernel: &[f32], line: impl Fn(isize) -> &'a [f32]) {
    for (o, &c) in out.iter_mut().zip(line(0)) {
        *o = kernel[0] * c;
    }
    for (j, &weight) in kernel.iter().enumerate().skip(1) {
        let j = j as isize;
        for ((o, &before), &after) in out.iter_mut().zip(line(-j)).zip(line(j)) {
            *o += weight * (before + after);
        }
    }
}

/// Gaussian blur of a `width` x `height` plane, separable, with the border handled as scipy's
/// `mode='nearest'` (edge pixels repeat outwards) and the kernel cut at [`GAUSSIAN_TRUNCATE`]
/// sigmas: the same as scikit-image's `gaussian(plane, sigma, mode='nearest',
/// preserve_range=True)`, in `f32`. A sigma of zero or less (or NaN) returns a copy; sigmas above
/// [`MAX_GAUSSIAN_SIGMA`] are clamped.
///
/// To blur an image tile by tile, read each tile with [`gaussian_radius`] pixels of context on
/// every side (less where the image ends) and keep the inner part: it is identical to blurring the
/// whole image.
///
/// # Panics
///
/// When `plane.len() != width * height`.
pub fn gaussian_blur(plane: &[f32], width: usize, height: usize, sigma: f32) -> Vec<f32> {
    assert_eq!(
        plane.len(),
        width * height,
        "plane of {} values is not {width} x {height}",
        plane.len()
    );
    let kernel = gaussian_half_kernel(sigma);
    let radius = kernel.len() - 1;
    if radius == 0 || plane.is_empty() {
        return plane.to_vec();
    }

    // Along rows: each row is copied into a buffer with the edge values repeated `radius` times on
    // both sides, so the inner loop reads plain slices.
    let mut across = vec![0.0f32; plane.len()];
    let mut padded = vec![0.0f32; width + 2 * radius];
    for (row, out) in plane
        .chunks_exact(width)
        .zip(across.chunks_exact_mut(width))
    {
        padded[..radius].fill(row[0]);
        padded[radius..radius + width].copy_from_slice(row);
        padded[radius + width..].fill(row[width - 1]);
        let padded = &padded;
        convolve_line(out, &kernel, |shift| {
            &padded[(radius as isize + shift) as usize..][..width]
        });
    }

    // Along columns: whole rows are combined, with row indices clamped at the edges.
    let mut out = vec![0.0f32; plane.len()];
    let last_row = height as isize - 1;
    for (y, out_row) in out.chunks_exact_mut(width).enumerate() {
        let across = &across;
        convolve_line(out_row, &kernel, |shift| {
            let source = (y as isize + shift).clamp(0, last_row) as usize;
            &across[source * width..][..width]
        });
    }
    out
}

/// Copies the `crop_width` x `crop_height` rectangle at (`x`, `y`) out of a plane `width` values
/// wide, e.g. the inner part of a tile read with a margin.
///
/// # Panics
///
/// When the rectangle does not lie inside the plane.
pub fn crop(
    plane: &[f32],
    width: usize,
    x: usize,
    y: usize,
    crop_width: usize,
    crop_height: usize,
) -> Vec<f32> {
    assert!(
        x + crop_width <= width && (y + crop_height) * width <= plane.len(),
        "crop {crop_width} x {crop_height} at ({x}, {y}) is outside the plane"
    );
    let mut out = Vec::with_capacity(crop_width * crop_height);
    for row in 0..crop_height {
        let start = (y + row) * width + x;
        out.extend_from_slice(&plane[start..start + crop_width]);
    }
    out
}

/// Which neighbours of a pixel belong to the same object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Connectivity {
    /// Pixels touch through an edge only (scikit-image `connectivity=1`).
    Four,
    /// Pixels touch through an edge or a corner (scikit-image `connectivity=2`, the default of
    /// `label`).
    Eight,
}

/// A label image: `labels[y * width + x]` is 0 for background and `1..=count` for the object the
/// pixel belongs to. Objects are numbered in raster order of their first pixel, as
/// scikit-image's `label` numbers them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels {
    /// Label of each pixel, row-major.
    pub labels: Vec<u32>,
    /// Number of objects; the largest label.
    pub count: u32,
}

/// Pixel bounds of an object. The maxima are exclusive, like scikit-image's `bbox`: the box
/// covers columns `min_x..max_x` and rows `min_y..max_y`, which are also its corners in the
/// pixel-corner coordinates of [`trace_outlines`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundingBox {
    /// First column.
    pub min_x: u32,
    /// First row.
    pub min_y: u32,
    /// One past the last column.
    pub max_x: u32,
    /// One past the last row.
    pub max_y: u32,
}

/// Measurements of one labelled object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegionStats {
    /// Label of the object, `1..=count`.
    pub label: u32,
    /// Number of pixels.
    pub area: u64,
    /// Mean column of its pixels (pixel centres are at integer coordinates, as in scikit-image's
    /// `regionprops` centroid).
    pub centroid_x: f64,
    /// Mean row of its pixels.
    pub centroid_y: f64,
    /// Pixel bounds.
    pub bbox: BoundingBox,
}

/// Running sums for one object's [`RegionStats`].
#[derive(Clone, Copy)]
struct RegionSums {
    area: u64,
    sum_x: u64,
    sum_y: u64,
    bbox: BoundingBox,
}

impl RegionSums {
    const EMPTY: Self = Self {
        area: 0,
        sum_x: 0,
        sum_y: 0,
        bbox: BoundingBox {
            min_x: u32::MAX,
            min_y: u32::MAX,
            max_x: 0,
            max_y: 0,
        },
    };

    /// Adds the pixels `start..end` of row `y`.
    fn add_run(&mut self, y: u32, start: u32, end: u32) {
        let len = u64::from(end - start);
        self.area += len;
        // Sum of start..end; one of the two factors is even.
        self.sum_x += (u64::from(start) + u64::from(end) - 1) * len / 2;
        self.sum_y += u64::from(y) * len;
        self.bbox.min_x = self.bbox.min_x.min(start);
        self.bbox.max_x = self.bbox.max_x.max(end);
        self.bbox.min_y = self.bbox.min_y.min(y);
        self.bbox.max_y = self.bbox.max_y.max(y + 1);
    }

    fn finish(&self, label: u32) -> RegionStats {
        let area = self.area.max(1) as f64;
        RegionStats {
            label,
            area: self.area,
            centroid_x: self.sum_x as f64 / area,
            centroid_y: self.sum_y as f64 / area,
            bbox: self.bbox,
        }
    }
}

/// A horizontal run of foreground pixels in one row: columns `start..end`.
#[derive(Clone, Copy, Debug)]
struct Run {
    start: u32,
    end: u32,
}

/// The connected components of a mask, kept as runs: far fewer union-find nodes than pixels, and
/// areas and centroids come from whole runs at once.
struct Components {
    runs: Vec<Run>,
    /// Runs of row `y` are `runs[row_starts[y]..row_starts[y + 1]]`.
    row_starts: Vec<usize>,
    /// Label (`1..=count`) of each run.
    run_labels: Vec<u32>,
    count: u32,
}

/// Root of `node` in a union-find forest, halving the path on the way.
fn find_root(parent: &mut [u32], mut node: u32) -> u32 {
    while parent[node as usize] != node {
        let grandparent = parent[parent[node as usize] as usize];
        parent[node as usize] = grandparent;
        node = grandparent;
    }
    node
}

/// Joins the sets of `a` and `b`; the smaller root stays the root, so every root is the first run
/// of its set in raster order.
fn union(parent: &mut [u32], a: u32, b: u32) {
    let (root_a, root_b) = (find_root(parent, a), find_root(parent, b));
    if root_a < root_b {
        parent[root_b as usize] = root_a;
    } else if root_b < root_a {
        parent[root_a as usize] = root_b;
    }
}

/// Appends the foreground runs of one row.
fn push_runs(row: &[bool], runs: &mut Vec<Run>) {
    let mut x = 0;
    while let Some(offset) = row[x..].iter().position(|&set| set) {
        let start = x + offset;
        let len = row[start..]
            .iter()
            .position(|&set| !set)
            .unwrap_or(row.len() - start);
        x = start + len;
        runs.push(Run {
            start: start as u32,
            end: x as u32,
        });
    }
}

/// Checks the buffer and size arguments shared by the component functions.
fn check_mask(len: usize, width: usize, height: usize) {
    assert_eq!(
        len,
        width * height,
        "mask of {len} pixels is not {width} x {height}"
    );
    assert!(
        u32::try_from(width).is_ok() && u32::try_from(height).is_ok(),
        "mask of {width} x {height} pixels has a side longer than u32::MAX"
    );
}

impl Components {
    /// Finds the components of `mask` by joining touching runs of consecutive rows; no recursion
    /// and no per-pixel stack, so any mask size works.
    fn find(mask: &[bool], width: usize, height: usize, connectivity: Connectivity) -> Self {
        check_mask(mask.len(), width, height);
        let mut runs = Vec::new();
        let mut row_starts = Vec::with_capacity(height + 1);
        let mut parent: Vec<u32> = Vec::new();
        // Runs of consecutive rows touch when their column ranges overlap, or for 8-connectivity
        // when they are diagonal neighbours (one column apart).
        let reach = match connectivity {
            Connectivity::Four => 0,
            Connectivity::Eight => 1,
        };

        for (y, row) in mask.chunks_exact(width.max(1)).enumerate() {
            let row_start = runs.len();
            row_starts.push(row_start);
            push_runs(row, &mut runs);
            let Ok(total) = u32::try_from(runs.len()) else {
                panic!("mask has more than u32::MAX foreground runs");
            };
            parent.extend(row_start as u32..total);

            if y > 0 {
                let (mut above, mut here) = (row_starts[y - 1], row_start);
                while above < row_start && here < runs.len() {
                    let (a, b) = (runs[above], runs[here]);
                    if a.start < b.end + reach && b.start < a.end + reach {
                        union(&mut parent, above as u32, here as u32);
                    }
                    if a.end <= b.end {
                        above += 1;
                    } else {
                        here += 1;
                    }
                }
            }
        }
        row_starts.resize(height + 1, runs.len());

        // Roots are the first run of their set, so numbering the roots in run order numbers the
        // objects in raster order of their first pixel.
        let mut run_labels = vec![0u32; runs.len()];
        let mut count = 0;
        for run in 0..runs.len() {
            let root = find_root(&mut parent, run as u32) as usize;
            if root == run {
                count += 1;
                run_labels[run] = count;
            } else {
                run_labels[run] = run_labels[root];
            }
        }

        Self {
            runs,
            row_starts,
            run_labels,
            count,
        }
    }

    /// Each row index with its runs and their labels.
    fn rows(&self) -> impl Iterator<Item = (usize, &[Run], &[u32])> {
        self.row_starts.windows(2).enumerate().map(|(y, bounds)| {
            let span = bounds[0]..bounds[1];
            (y, &self.runs[span.clone()], &self.run_labels[span])
        })
    }

    /// Sums of each object, indexed by label - 1.
    fn sums(&self) -> Vec<RegionSums> {
        let mut sums = vec![RegionSums::EMPTY; self.count as usize];
        for (y, runs, labels) in self.rows() {
            for (run, &label) in runs.iter().zip(labels) {
                sums[label as usize - 1].add_run(y as u32, run.start, run.end);
            }
        }
        sums
    }
}

/// Labels the connected objects of `mask` (a `width` x `height` row-major mask). Works on runs
/// with an iterative union-find, so memory grows with the number of runs and a 10000 x 10000 mask
/// is fine.
///
/// # Panics
///
/// When `mask.len() != width * height`.
pub fn label_components(
    mask: &[bool],
    width: usize,
    height: usize,
    connectivity: Connectivity,
) -> Labels {
    let components = Components::find(mask, width, height, connectivity);
    let mut labels = vec![0u32; mask.len()];
    for (y, runs, run_labels) in components.rows() {
        let row = &mut labels[y * width..(y + 1) * width];
        for (run, &label) in runs.iter().zip(run_labels) {
            row[run.start as usize..run.end as usize].fill(label);
        }
    }
    Labels {
        labels,
        count: components.count,
    }
}

/// Clears the objects of `mask` with fewer than `min_area` pixels, objects being connected under
/// `connectivity` (scikit-image's `remove_small_objects(mask, min_size=min_area)`).
///
/// # Panics
///
/// When `mask.len() != width * height`.
pub fn remove_small_objects(
    mask: &mut [bool],
    width: usize,
    height: usize,
    min_area: u32,
    connectivity: Connectivity,
) {
    let components = Components::find(mask, width, height, connectivity);
    let areas: Vec<u64> = components.sums().iter().map(|sums| sums.area).collect();
    for (y, runs, labels) in components.rows() {
        for (run, &label) in runs.iter().zip(labels) {
            if areas[label as usize - 1] < u64::from(min_area) {
                mask[y * width + run.start as usize..y * width + run.end as usize].fill(false);
            }
        }
    }
}

/// Area, centroid and bounding box of each labelled object, in label order. Labels above
/// `labels.count` are ignored.
///
/// # Panics
///
/// When `labels.labels.len() != width * height`.
pub fn region_stats(labels: &Labels, width: usize, height: usize) -> Vec<RegionStats> {
    check_mask(labels.labels.len(), width, height);
    let mut sums = vec![RegionSums::EMPTY; labels.count as usize];
    for (y, row) in labels.labels.chunks_exact(width.max(1)).enumerate() {
        for (x, &label) in row.iter().enumerate() {
            if label == 0 {
                continue;
            }
            if let Some(object) = sums.get_mut(label as usize - 1) {
                object.add_run(y as u32, x as u32, x as u32 + 1);
            }
        }
    }
    (1..)
        .zip(&sums)
        .map(|(label, object)| object.finish(label))
        .collect()
}

/// The same as [`region_stats`] of [`label_components`], without building the label image:
/// measurements come straight from the runs of the mask, which is several times faster.
///
/// # Panics
///
/// When `mask.len() != width * height`.
pub fn region_stats_from_mask(
    mask: &[bool],
    width: usize,
    height: usize,
    connectivity: Connectivity,
) -> Vec<RegionStats> {
    let components = Components::find(mask, width, height, connectivity);
    (1..)
        .zip(&components.sums())
        .map(|(label, object)| object.finish(label))
        .collect()
}

/// A vertex in pixel-corner coordinates: pixel (x, y) spans corners (x, y) to (x + 1, y + 1).
type Corner = (i64, i64);

/// Walks the outer boundary of the 8-connected object whose first pixel in raster order is
/// (`x`, `y`), returning the corners where the boundary turns.
///
/// The walk follows pixel edges with the object on its right, starting east along the top edge of
/// the first pixel (the pixel above it is background, or it would come first). At each corner the
/// two pixels ahead decide: ahead-left in the object, turn left (this also joins pixels touching
/// only diagonally, which belong together under 8-connectivity); else ahead-right in it, go
/// straight; else turn right. Any object pixel in the 2 x 2 block around a corner is 8-connected
/// to the pixel on the right, so reading the mask directly never strays into another object.
fn trace_boundary(mask: &[bool], width: usize, height: usize, x: u32, y: u32) -> Vec<Corner> {
    let inside = |px: i64, py: i64| {
        px >= 0
            && py >= 0
            && (px as usize) < width
            && (py as usize) < height
            && mask[py as usize * width + px as usize]
    };
    // East, south, west, north, in y-down coordinates; turning right is the next one.
    const STEPS: [Corner; 4] = [(1, 0), (0, 1), (-1, 0), (0, -1)];
    // Offsets from a corner to the pixels ahead-left and ahead-right of each direction.
    const AHEAD: [[Corner; 2]; 4] = [
        [(0, -1), (0, 0)],
        [(0, 0), (-1, 0)],
        [(-1, 0), (-1, -1)],
        [(-1, -1), (0, -1)],
    ];

    let start = (i64::from(x), i64::from(y));
    let mut corners = vec![start];
    let (mut point, mut direction) = (start, 0usize);
    loop {
        point = (point.0 + STEPS[direction].0, point.1 + STEPS[direction].1);
        // The start corner has only its south-east pixel set, so it is passed once.
        if point == start {
            return corners;
        }
        let [left, right] = AHEAD[direction];
        let turned = if inside(point.0 + left.0, point.1 + left.1) {
            (direction + 3) % 4
        } else if inside(point.0 + right.0, point.1 + right.1) {
            direction
        } else {
            (direction + 1) % 4
        };
        if turned != direction {
            corners.push(point);
            direction = turned;
        }
    }
}

/// Distance from `p` to the segment `a`-`b`.
fn segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length2 = dx * dx + dy * dy;
    let t = if length2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / length2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ex, ey) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (ex * ex + ey * ey).sqrt()
}

/// Longest stretch of boundary vertices that [`simplify_ring`] hands to one Douglas–Peucker pass.
/// Douglas–Peucker takes time proportional to the stretch times the vertices in it on zigzag
/// boundaries (a noisy mask is full of them); cutting at fixed vertices bounds the work at this
/// many operations per vertex, for one extra kept vertex per stretch.
const SIMPLIFY_SPAN: usize = 1024;

/// Douglas–Peucker simplification of a closed ring, keeping at least a triangle. The ring is cut
/// at its first vertex, the vertex farthest from it and every [`SIMPLIFY_SPAN`] vertices between,
/// and each piece is simplified with an explicit stack (boundaries can be long enough to overflow
/// a recursive one).
fn simplify_ring(ring: &[(f64, f64)], tolerance: f64) -> Vec<(f64, f64)> {
    let n = ring.len();
    if n <= 3 || tolerance <= 0.0 {
        return ring.to_vec();
    }
    let distance2 = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).powi(2) + (a.1 - b.1).powi(2);
    let mut far = 1;
    for i in 2..n {
        if distance2(ring[i], ring[0]) > distance2(ring[far], ring[0]) {
            far = i;
        }
    }

    // Index `n` stands for vertex 0 again, closing the second half.
    let at = |i: usize| ring[i % n];
    let farthest = |a: usize, b: usize| {
        let mut best = (a, -1.0);
        for i in a + 1..b {
            let d = segment_distance(at(i), at(a), at(b));
            if d > best.1 {
                best = (i, d);
            }
        }
        best
    };
    let mut keep = vec![false; n];
    let mut pending = Vec::new();
    for (from, to) in [(0, far), (far, n)] {
        for a in (from..to).step_by(SIMPLIFY_SPAN) {
            keep[a] = true;
            pending.push((a, (a + SIMPLIFY_SPAN).min(to)));
        }
    }
    while let Some((a, b)) = pending.pop() {
        let (i, d) = farthest(a, b);
        if b - a >= 2 && d > tolerance {
            keep[i % n] = true;
            pending.push((a, i));
            pending.push((i, b));
        }
    }

    // Everything within tolerance of the cut: keep the farthest vertex so the ring has an area.
    if keep.iter().filter(|&&k| k).count() < 3 {
        let (first, second) = (farthest(0, far), farthest(far, n));
        let i = if first.1 >= second.1 {
            first.0
        } else {
            second.0
        };
        keep[i % n] = true;
    }
    ring.iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(&p, _)| p)
        .collect()
}

/// Outer boundaries of the 8-connected objects of `mask` with at least `min_area` pixels, as
/// polygons in pixel-corner coordinates (pixel (x, y) spans (x, y) to (x + 1, y + 1)).
///
/// Each polygon is a closed ring without a repeated closing vertex, clockwise on screen (y down),
/// simplified with Douglas–Peucker so that no point of the traced boundary is farther than
/// `tolerance` pixels from the result (0 keeps every corner), except that a ring keeps at least
/// three vertices. Polygons come largest object first; the list ends before the polygon that
/// would take the total past [`MAX_OUTLINE_VERTICES`].
///
/// Holes are not traced: a ring encloses its object's holes, and an object inside a hole gets its
/// own ring. Objects touching only at a corner are one object, and their ring passes that corner
/// twice.
///
/// # Panics
///
/// When `mask.len() != width * height`.
pub fn trace_outlines(
    mask: &[bool],
    width: usize,
    height: usize,
    min_area: u64,
    tolerance: f64,
) -> Vec<Vec<(f64, f64)>> {
    let components = Components::find(mask, width, height, Connectivity::Eight);
    let tolerance = tolerance.max(0.0);

    // The first run of each object holds its first pixel in raster order.
    let mut first_pixel = vec![None; components.count as usize];
    for (y, runs, labels) in components.rows() {
        for (run, &label) in runs.iter().zip(labels) {
            first_pixel[label as usize - 1].get_or_insert((run.start, y as u32));
        }
    }
    let sums = components.sums();
    let mut order: Vec<usize> = (0..sums.len())
        .filter(|&i| sums[i].area >= min_area)
        .collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sums[i].area));

    let mut outlines = Vec::new();
    let mut vertices = 0;
    for i in order {
        let Some((x, y)) = first_pixel[i] else {
            continue;
        };
        let ring: Vec<(f64, f64)> = trace_boundary(mask, width, height, x, y)
            .into_iter()
            .map(|(cx, cy)| (cx as f64, cy as f64))
            .collect();
        let ring = simplify_ring(&ring, tolerance);
        vertices += ring.len();
        if vertices > MAX_OUTLINE_VERTICES {
            break;
        }
        outlines.push(ring);
    }
    outlines
}

#[cfg(test)]
mod tests {
    use super::*;

    const IHC_PNG: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/data/skimage_ihc.png"
    );
    const REFERENCE_JSON: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/data/reference.json"
    );

    /// The sample image as interleaved RGB with its width and height.
    fn ihc_rgb() -> (Vec<u8>, usize, usize) {
        let image = image::open(IHC_PNG)
            .expect("skimage_ihc.png decodes")
            .to_rgb8();
        let (width, height) = (image.width() as usize, image.height() as usize);
        (image.into_raw(), width, height)
    }

    /// A value of reference.json under `images["skimage_ihc.png"]`, by JSON pointer.
    fn ihc_reference(pointer: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(REFERENCE_JSON).expect("reference.json is readable");
        let reference: serde_json::Value =
            serde_json::from_str(&text).expect("reference.json is valid JSON");
        reference
            .pointer(&format!("/images/skimage_ihc.png{pointer}"))
            .unwrap_or_else(|| panic!("reference.json has {pointer}"))
            .clone()
    }

    fn ihc_reference_f64(pointer: &str) -> f64 {
        ihc_reference(pointer)
            .as_f64()
            .unwrap_or_else(|| panic!("{pointer} is a number"))
    }

    fn mean(values: &[f32]) -> f64 {
        values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64
    }

    fn assert_within(actual: f64, expected: f64, relative: f64, what: &str) {
        assert!(
            (actual - expected).abs() <= relative * expected.abs(),
            "{what}: {actual} is not within {relative} of {expected}"
        );
    }

    /// Parses rows of `#` (set) and `.` (clear) into a mask with its width and height.
    fn mask(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let cells = rows.iter().flat_map(|row| row.chars().map(|c| c == '#'));
        (cells.collect(), rows[0].len(), rows.len())
    }

    /// A serpentine one pixel wide filling a `size` x `size` mask: a single object whose pixels
    /// form one long path, which defeats any flood fill that recurses per pixel.
    fn serpentine(size: usize) -> Vec<bool> {
        let mut mask = vec![false; size * size];
        for y in 0..size {
            for x in 0..size {
                let turn_right = y % 4 == 1 && x == size - 1;
                let turn_left = y % 4 == 3 && x == 0;
                mask[y * size + x] = y % 2 == 0 || turn_right || turn_left;
            }
        }
        mask
    }

    #[test]
    fn gray_u8_histogram_of_the_sample_equals_the_reference_exactly() {
        let (rgb, _, _) = ihc_rgb();
        let expected: Vec<u64> = ihc_reference("/grayscale/histogram_u8_256bins")
            .as_array()
            .expect("histogram is an array")
            .iter()
            .map(|count| count.as_u64().expect("counts are integers"))
            .collect();
        assert_eq!(histogram_u8(&rgb_to_gray_u8(&rgb)).to_vec(), expected);
    }

    #[test]
    fn gray_levels_of_the_sample_match_the_reference_statistics() {
        let (rgb, _, _) = ihc_rgb();
        let gray = rgb_to_gray(&rgb);
        let (min, max) = min_max(&gray).expect("image is not empty");
        assert_within(
            f64::from(min),
            ihc_reference_f64("/grayscale/gray_float_stats/min"),
            1e-6,
            "min",
        );
        assert_within(
            f64::from(max),
            ihc_reference_f64("/grayscale/gray_float_stats/max"),
            1e-6,
            "max",
        );
        assert_within(
            mean(&gray),
            ihc_reference_f64("/grayscale/gray_float_stats/mean"),
            1e-6,
            "mean",
        );
    }

    #[test]
    fn otsu_threshold_of_the_sample_gray_matches_skimage() {
        let (rgb, _, _) = ihc_rgb();
        let threshold = otsu_threshold(&rgb_to_gray(&rgb));
        let expected = ihc_reference_f64("/grayscale/otsu_threshold_float");
        assert!(
            (f64::from(threshold) - expected).abs() < 1e-3,
            "threshold {threshold}, skimage {expected}"
        );
    }

    #[test]
    fn otsu_threshold_of_the_sample_gray_u8_matches_skimage() {
        let (rgb, _, _) = ihc_rgb();
        let threshold = otsu_threshold_u8(&histogram_u8(&rgb_to_gray_u8(&rgb)));
        let expected = ihc_reference("/grayscale/otsu_threshold_u8").as_u64();
        assert_eq!(Some(u64::from(threshold)), expected);
    }

    #[test]
    fn histogram_filled_region_by_region_equals_the_whole_image_histogram() {
        let (rgb, _, _) = ihc_rgb();
        let gray = rgb_to_gray(&rgb);
        let whole = Histogram::of(&gray);

        let (min, max) = min_max(&gray).expect("image is not empty");
        let mut by_region = Histogram::new(min, max);
        for region in gray.chunks(10_000) {
            let mut part = Histogram::new(min, max);
            part.add(region);
            by_region.merge(&part);
        }
        assert_eq!(by_region, whole);
        assert_eq!(whole.total(), gray.len() as u64);
        assert_eq!(
            otsu_threshold_from_histogram(&by_region),
            otsu_threshold(&gray)
        );
    }

    #[test]
    fn histogram_bins_values_on_edges_like_numpy() {
        // Edges of [0, 256] are the integers: each integer opens its bin, and the maximum goes
        // into the last bin rather than past it.
        let mut histogram = Histogram::new(0.0, 256.0);
        histogram.add(&[0.0, 1.0, 1.5, 255.0, 256.0, -0.5, 256.5, f32::NAN]);
        assert_eq!(histogram.counts[0], 1);
        assert_eq!(histogram.counts[1], 2);
        assert_eq!(histogram.counts[255], 2);
        assert_eq!(histogram.total(), 5);
        assert_eq!(histogram.bin_centre(1), 1.5);

        // Ranges a few ulps wide, where most edges share one f32, still bin by the edges.
        let top = 1.0f32.next_up();
        let mut narrow = Histogram::new(1.0, top);
        narrow.add(&[1.0, top, top]);
        assert_eq!((narrow.counts[0], narrow.counts[255]), (1, 2));
        let tiny = 1e-44f32;
        let mut subnormal = Histogram::new(0.0, tiny);
        subnormal.add(&[0.0, tiny]);
        assert_eq!((subnormal.counts[0], subnormal.counts[255]), (1, 1));
    }

    #[test]
    fn histogram_in_f32_bins_exactly_as_numpy_does_in_f64() {
        // numpy's rule spelled out in f64: the bin `i` with edge[i] <= v < edge[i + 1].
        let (min, max) = (0.121_498_43f32, 1.0f32);
        let (first, last) = (f64::from(min), f64::from(max));
        let step = (last - first) / HISTOGRAM_BINS as f64;
        let edge = |i: usize| {
            if i == HISTOGRAM_BINS {
                last
            } else {
                i as f64 * step + first
            }
        };
        let mut values: Vec<f32> = (0..=HISTOGRAM_BINS)
            .flat_map(|i| {
                let e = edge(i) as f32;
                [e.next_down(), e, e.next_up()]
            })
            .filter(|v| (min..=max).contains(v))
            .collect();
        values.extend((0..10_000).map(|i| min + (max - min) * (i as f32 / 9_999.0)));

        let mut expected = [0u64; HISTOGRAM_BINS];
        for &v in &values {
            let v = f64::from(v);
            let bin = (0..HISTOGRAM_BINS)
                .find(|&i| edge(i) <= v && v < edge(i + 1))
                .unwrap_or(HISTOGRAM_BINS - 1);
            expected[bin] += 1;
        }
        let mut histogram = Histogram::new(min, max);
        histogram.add(&values);
        assert_eq!(histogram.counts, expected);
    }

    #[test]
    fn otsu_threshold_splits_a_two_valued_image_between_its_values() {
        let values = [0.2f32, 0.8, 0.8, 0.2, 0.2, 0.8, 0.8, 0.8];
        let threshold = otsu_threshold(&values);
        assert!(threshold > 0.2 && threshold < 0.8, "threshold {threshold}");
        let above: Vec<bool> = values.iter().map(|&v| v > threshold).collect();
        let bright: Vec<bool> = values.iter().map(|&v| v == 0.8).collect();
        assert_eq!(above, bright);
    }

    #[test]
    fn otsu_threshold_of_a_constant_image_is_its_value_not_nan() {
        assert_eq!(otsu_threshold(&[0.25; 16]), 0.25);
        assert_eq!(otsu_threshold(&[]), 0.0);
        assert_eq!(otsu_threshold(&[f32::NAN, 0.5]), 0.5);
        let mut levels = [0u64; HISTOGRAM_BINS];
        levels[7] = 100;
        assert_eq!(otsu_threshold_u8(&levels), 7);
    }

    #[test]
    fn hematoxylin_of_the_sample_matches_skimage_rgb2hed() {
        let (rgb, _, _) = ihc_rgb();
        let plane = hematoxylin(&rgb);
        let (min, max) = min_max(&plane).expect("image is not empty");
        assert_eq!(min, 0.0);
        assert_within(
            f64::from(max),
            ihc_reference_f64("/hematoxylin/channel_stats/max"),
            0.01,
            "max",
        );
        assert_within(
            mean(&plane),
            ihc_reference_f64("/hematoxylin/channel_stats/mean"),
            0.01,
            "mean",
        );
    }

    #[test]
    fn color_deconvolution_with_hed_matches_skimage_for_every_stain() {
        let (rgb, _, _) = ihc_rgb();
        let [h, e, d] = color_deconvolution(&rgb, &HED_FROM_RGB);
        assert_eq!(h, hematoxylin(&rgb));
        assert_within(
            mean(&d),
            ihc_reference_f64("/hematoxylin/dab_channel_stats/mean"),
            0.01,
            "DAB mean",
        );
        // Eosin is nearly absent from this IHC image; its mean is 4e-7, so compare absolutely.
        let eosin = ihc_reference_f64("/hematoxylin/eosin_channel_stats/mean");
        assert!((mean(&e) - eosin).abs() < 1e-6, "eosin mean {}", mean(&e));
    }

    #[test]
    fn color_deconvolution_treats_black_as_optical_density_one() {
        let [h, e, d] = color_deconvolution(&[0, 0, 0, 255, 255, 255], &HED_FROM_RGB);
        // Density 1 in every channel: each stain is the sum of its matrix column, clamped at 0.
        for (stain, plane) in [h, e, d].iter().enumerate() {
            let column: f32 = HED_FROM_RGB.iter().map(|row| row[stain]).sum();
            assert!((plane[0] - column.max(0.0)).abs() < 1e-6);
            assert_eq!(plane[1], 0.0, "white has no stain");
        }
    }

    #[test]
    fn gaussian_radius_follows_scipy_truncation() {
        assert_eq!(gaussian_radius(1.0), 4);
        assert_eq!(gaussian_radius(1.1), 4);
        assert_eq!(gaussian_radius(2.0), 8);
        assert_eq!(gaussian_radius(0.1), 0);
        assert_eq!(gaussian_radius(-1.0), 0);
        assert_eq!(gaussian_radius(f32::NAN), 0);
        assert_eq!(gaussian_radius(1e9), 400);
    }

    #[test]
    fn blur_of_a_constant_image_is_constant() {
        let plane = vec![0.37f32; 13 * 7];
        for value in gaussian_blur(&plane, 13, 7, 2.0) {
            assert!((value - 0.37).abs() < 1e-6, "{value}");
        }
    }

    #[test]
    fn blur_of_an_impulse_sums_to_one_and_is_symmetric() {
        let (width, height) = (21, 21);
        let mut plane = vec![0.0f32; width * height];
        plane[10 * width + 10] = 1.0;
        let blurred = gaussian_blur(&plane, width, height, 1.5);
        let total: f32 = blurred.iter().sum();
        assert!((total - 1.0).abs() < 1e-5, "sum {total}");
        assert_eq!(blurred[10 * width + 7], blurred[10 * width + 13]);
        assert_eq!(blurred[7 * width + 10], blurred[10 * width + 7]);
        assert!(blurred[10 * width + 10] > blurred[10 * width + 11]);
    }

    #[test]
    fn blur_equals_a_direct_convolution_with_edges_repeated() {
        // Narrower than the kernel, so most taps read repeated edge pixels.
        let (width, height, sigma) = (5, 9, 1.7);
        let plane: Vec<f32> = (0..width * height)
            .map(|i| ((i * 37) % 11) as f32 / 10.0)
            .collect();
        let radius = gaussian_radius(sigma) as isize;
        let weight = |d: isize| (-0.5 * (d * d) as f64 / f64::from(sigma * sigma)).exp();
        let norm: f64 = (-radius..=radius).map(weight).sum();
        let at = |x: isize, y: isize| {
            let x = x.clamp(0, width as isize - 1) as usize;
            let y = y.clamp(0, height as isize - 1) as usize;
            f64::from(plane[y * width + x])
        };

        let blurred = gaussian_blur(&plane, width, height, sigma);
        for y in 0..height as isize {
            for x in 0..width as isize {
                let mut expected = 0.0;
                for dy in -radius..=radius {
                    for dx in -radius..=radius {
                        expected += weight(dx) * weight(dy) * at(x + dx, y + dy);
                    }
                }
                expected /= norm * norm;
                let actual = f64::from(blurred[y as usize * width + x as usize]);
                assert!(
                    (actual - expected).abs() < 1e-5,
                    "({x}, {y}): {actual} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn blur_with_zero_sigma_returns_the_plane_unchanged() {
        let plane = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(gaussian_blur(&plane, 2, 2, 0.0), plane);
        assert!(gaussian_blur(&[], 0, 0, 3.0).is_empty());
    }

    #[test]
    fn crop_copies_the_inner_rectangle() {
        let plane: Vec<f32> = (0..20).map(|i| i as f32).collect();
        assert_eq!(
            crop(&plane, 5, 1, 2, 3, 2),
            [11.0, 12.0, 13.0, 16.0, 17.0, 18.0]
        );
    }

    #[test]
    fn diagonal_pixels_are_one_object_with_8_connectivity_and_two_with_4() {
        let (mask, width, height) = mask(&["#..", ".#.", "..."]);
        let four = label_components(&mask, width, height, Connectivity::Four);
        assert_eq!(four.count, 2);
        assert_eq!(four.labels, [1, 0, 0, 0, 2, 0, 0, 0, 0]);
        let eight = label_components(&mask, width, height, Connectivity::Eight);
        assert_eq!(eight.count, 1);
        assert_eq!(eight.labels, [1, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn labels_are_numbered_in_raster_order_of_first_pixels() {
        // The U is one object even though its arms start as separate runs; the object whose first
        // pixel comes first gets label 1.
        let (mask, width, height) = mask(&["..#.#", "#.#.#", "#.###", "....."]);
        let labels = label_components(&mask, width, height, Connectivity::Four);
        assert_eq!(labels.count, 2);
        assert_eq!(
            labels.labels,
            [0, 0, 1, 0, 1, 2, 0, 1, 0, 1, 2, 0, 1, 1, 1, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn labelling_a_long_serpentine_does_not_overflow_the_stack() {
        let size = 2000;
        let labels = label_components(&serpentine(size), size, size, Connectivity::Four);
        assert_eq!(labels.count, 1);
    }

    #[test]
    fn remove_small_objects_drops_objects_below_the_minimum_area() {
        let (mut small, width, height) = mask(&["##..#", "#...#", "....#", "##..."]);
        remove_small_objects(&mut small, width, height, 3, Connectivity::Four);
        let (expected, _, _) = mask(&["##..#", "#...#", "....#", "....."]);
        assert_eq!(small, expected);

        // Two diagonal pixels are an object of 2 under 8-connectivity, two of 1 under 4.
        let (diagonal, width, height) = mask(&["#.", ".#"]);
        let mut eight = diagonal.clone();
        remove_small_objects(&mut eight, width, height, 2, Connectivity::Eight);
        assert_eq!(eight, diagonal);
        let mut four = diagonal;
        remove_small_objects(&mut four, width, height, 2, Connectivity::Four);
        assert_eq!(four, [false; 4]);
    }

    #[test]
    fn region_stats_give_area_centroid_and_exclusive_bounds() {
        let (mask, width, height) = mask(&[".....", ".###.", ".#...", "....#"]);
        let labels = label_components(&mask, width, height, Connectivity::Four);
        let stats = region_stats(&labels, width, height);
        assert_eq!(stats.len(), 2);
        assert_eq!(stats[0].label, 1);
        assert_eq!(stats[0].area, 4);
        assert_eq!(stats[0].centroid_x, 1.75);
        assert_eq!(stats[0].centroid_y, 1.25);
        assert_eq!(
            stats[0].bbox,
            BoundingBox {
                min_x: 1,
                min_y: 1,
                max_x: 4,
                max_y: 3
            }
        );
        assert_eq!((stats[1].area, stats[1].centroid_x), (1, 4.0));
    }

    #[test]
    fn region_stats_from_mask_equal_those_from_the_label_image() {
        let (rgb, width, height) = ihc_rgb();
        let gray = rgb_to_gray(&rgb);
        let threshold = otsu_threshold(&gray);
        let dark: Vec<bool> = gray.iter().map(|&g| g <= threshold).collect();
        for connectivity in [Connectivity::Four, Connectivity::Eight] {
            let labels = label_components(&dark, width, height, connectivity);
            assert!(labels.count > 10);
            assert_eq!(
                region_stats_from_mask(&dark, width, height, connectivity),
                region_stats(&labels, width, height)
            );
        }
    }

    #[test]
    fn outline_of_a_square_is_its_four_corners() {
        let (mask, width, height) = mask(&["....", ".##.", ".##.", "...."]);
        let outlines = trace_outlines(&mask, width, height, 1, 0.0);
        assert_eq!(
            outlines,
            [vec![(1.0, 1.0), (3.0, 1.0), (3.0, 3.0), (1.0, 3.0)]]
        );
    }

    #[test]
    fn outline_follows_concave_corners_and_ignores_holes() {
        let (mask, width, height) = mask(&["###", "#.#", "##."]);
        let outlines = trace_outlines(&mask, width, height, 1, 0.0);
        assert_eq!(
            outlines,
            [vec![
                (0.0, 0.0),
                (3.0, 0.0),
                (3.0, 2.0),
                (2.0, 2.0),
                (2.0, 3.0),
                (0.0, 3.0)
            ]]
        );
    }

    #[test]
    fn outline_joins_pixels_touching_at_a_corner() {
        let (mask, width, height) = mask(&["#.", ".#"]);
        let outlines = trace_outlines(&mask, width, height, 1, 0.0);
        assert_eq!(
            outlines,
            [vec![
                (0.0, 0.0),
                (1.0, 0.0),
                (1.0, 1.0),
                (2.0, 1.0),
                (2.0, 2.0),
                (1.0, 2.0),
                (1.0, 1.0),
                (0.0, 1.0)
            ]]
        );
    }

    #[test]
    fn outlines_skip_small_objects_and_come_largest_first() {
        let (mask, width, height) = mask(&["#....", ".....", "..###", "..###"]);
        let outlines = trace_outlines(&mask, width, height, 1, 0.0);
        assert_eq!(outlines.len(), 2);
        assert_eq!(outlines[0][0], (2.0, 2.0));
        assert_eq!(
            outlines[1],
            [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
        );
        assert_eq!(trace_outlines(&mask, width, height, 2, 0.0).len(), 1);
    }

    #[test]
    fn simplification_keeps_the_shape_within_tolerance() {
        // Discs have staircase boundaries with a corner every pixel or two; the larger one is
        // longer than one simplification span.
        for radius in [40.0, 400.0] {
            let size = (2.0 * radius) as usize + 20;
            let centre = size as f64 / 2.0;
            let disc: Vec<bool> = (0..size * size)
                .map(|i| {
                    let (x, y) = ((i % size) as f64 + 0.5, (i / size) as f64 + 0.5);
                    (x - centre).powi(2) + (y - centre).powi(2) <= radius * radius
                })
                .collect();
            let exact = &trace_outlines(&disc, size, size, 1, 0.0)[0];
            let simple = &trace_outlines(&disc, size, size, 1, 1.0)[0];
            assert!(exact.len() > 3 * radius as usize, "{} corners", exact.len());
            assert!(simple.len() < exact.len() / 4, "{} vertices", simple.len());
            for &point in exact {
                let n = simple.len();
                let nearest = (0..n)
                    .map(|i| segment_distance(point, simple[i], simple[(i + 1) % n]))
                    .fold(f64::INFINITY, f64::min);
                assert!(nearest <= 1.0 + 1e-9, "{point:?} is {nearest} px away");
            }

            // A tolerance larger than the object still leaves a polygon with an area.
            let coarse = &trace_outlines(&disc, size, size, 1, 10.0 * radius)[0];
            assert!((3..=8).contains(&coarse.len()), "{} vertices", coarse.len());
        }
    }

    #[test]
    fn tracing_a_long_serpentine_does_not_overflow_the_stack() {
        let size = 1000;
        let outlines = trace_outlines(&serpentine(size), size, size, 1, 0.0);
        assert_eq!(outlines.len(), 1);
        // Every row of the serpentine contributes corners on both of its ends.
        assert!(outlines[0].len() > 2 * size);
    }
}
