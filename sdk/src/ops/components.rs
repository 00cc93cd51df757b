//! Connected components of masks: labelling, removal of small objects and region measurements.

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
/// pixel-corner coordinates of [`trace_outlines`](super::trace_outlines).
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
pub(super) struct RegionSums {
    pub(super) area: u64,
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
pub(super) struct Run {
    pub(super) start: u32,
    end: u32,
}

/// The connected components of a mask, kept as runs: far fewer union-find nodes than pixels, and
/// areas and centroids come from whole runs at once.
pub(super) struct Components {
    runs: Vec<Run>,
    /// Runs of row `y` are `runs[row_starts[y]..row_starts[y + 1]]`.
    row_starts: Vec<usize>,
    /// Label (`1..=count`) of each run.
    run_labels: Vec<u32>,
    pub(super) count: u32,
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
    pub(super) fn find(
        mask: &[bool],
        width: usize,
        height: usize,
        connectivity: Connectivity,
    ) -> Self {
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
    pub(super) fn rows(&self) -> impl Iterator<Item = (usize, &[Run], &[u32])> {
        self.row_starts.windows(2).enumerate().map(|(y, bounds)| {
            let span = bounds[0]..bounds[1];
            (y, &self.runs[span.clone()], &self.run_labels[span])
        })
    }

    /// Sums of each object, indexed by label - 1.
    pub(super) fn sums(&self) -> Vec<RegionSums> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::{ihc_rgb, mask, serpentine};
    use crate::ops::{otsu_threshold, rgb_to_gray};

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
}
