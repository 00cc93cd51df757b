//! Histograms of 8-bit and `f32` values, and Otsu's threshold computed from them.

/// Bins of a [`Histogram`] and of [`histogram_u8`], as in `threshold_otsu(nbins=256)`.
pub const HISTOGRAM_BINS: usize = 256;

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
    // Plain comparisons rather than `f32::min`/`f32::max`: every comparison with NaN is false,
    // so NaN never wins, and on wasm32 the comparisons stay inline where `f32::max` becomes a
    // call into libm (`fmaxf`) for its NaN semantics.
    let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in values {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
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
        for (i, edge) in edges.iter_mut().enumerate() {
            let exact = self.edge(i);
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
        if !self.has_width() {
            return f64::from(self.min);
        }
        (self.edge(bin) + self.edge(bin + 1)) / 2.0
    }

    /// Edge `i` of the bins in f64, as `numpy.linspace(min, max, bins + 1)[i]` computes it.
    fn edge(&self, i: usize) -> f64 {
        let (first, last) = (f64::from(self.min), f64::from(self.max));
        if i == HISTOGRAM_BINS {
            last
        } else {
            i as f64 * ((last - first) / HISTOGRAM_BINS as f64) + first
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::{ihc_reference, ihc_reference_f64, ihc_rgb};
    use crate::ops::{rgb_to_gray, rgb_to_gray_u8};

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
}
