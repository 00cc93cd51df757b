//! Outer boundaries of mask objects, traced and simplified into polygons.

use super::components::{Components, Connectivity};

/// Most vertices [`trace_outlines`] returns over all its polygons. It keeps a noisy mask from
/// turning into a multi-megabyte annotation payload that the host must store and viewers must
/// draw. Outlines are produced largest first and the first one that would cross the cap ends the
/// list; a larger simplification tolerance or minimum area is the remedy, not a larger cap.
pub const MAX_OUTLINE_VERTICES: usize = 100_000;

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
    use crate::ops::test_support::{mask, serpentine};

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
