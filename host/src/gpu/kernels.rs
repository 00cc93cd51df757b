//! The device kernels, written once with cubecl and launched on whichever runtime the
//! [`cubecl::Device`] of the backend belongs to (wgpu today; cuda where it builds).
//!
//! Conventions: one unit per element, `ABSOLUTE_POS` checked against the element count (the cube
//! count may round up), sizes passed as `u32` scalars. Results are read back only through
//! `Client::read_one`, because launch and compile errors surface there and nowhere else.
//!
//! Every function here takes device handles that the caller has sized and leased (see
//! `super::Session`); none allocates memory the caller did not account for except the few
//! words of counters noted on each.

#![allow(
    clippy::implicit_saturating_sub,
    clippy::assign_op_pattern,
    clippy::eq_op,
    reason = "kernel bodies are cubecl's language, which has no `saturating_sub`, compound bit \
              assignments or `is_nan`; `v == v` is its NaN test"
)]

use cubecl::prelude::*;
use cubecl::server::Handle;

use super::GpuError;

/// Units per cube of every elementwise launch.
const CUBE: u32 = 256;

// ---------------------------------------------------------------------------------------------
// Kernels.

#[cube(launch)]
fn optical_density_kernel(rgb: &[u32], out: &mut [f32], n: u32) {
    let i = ABSOLUTE_POS;
    if i < n as usize {
        let p = rgb[i];
        let scale = f32::ln(1e-6f32);
        let r = f32::max(((p & 255u32) as f32) / 255.0, 1e-6f32);
        let g = f32::max((((p >> 8u32) & 255u32) as f32) / 255.0, 1e-6f32);
        let b = f32::max((((p >> 16u32) & 255u32) as f32) / 255.0, 1e-6f32);
        out[i] = f32::ln(r) / scale;
        out[i + n as usize] = f32::ln(g) / scale;
        out[i + 2 * n as usize] = f32::ln(b) / scale;
    }
}

/// One stain of a colour deconvolution. The optical density of each 8-bit value comes from a
/// 256-entry table computed on the host in `f64` (as the SDK does), times the stain's weights.
#[cube(launch)]
fn deconvolution_kernel(
    rgb: &[u32],
    density: &[f32],
    out: &mut [f32],
    n: u32,
    w_red: f32,
    w_green: f32,
    w_blue: f32,
) {
    let i = ABSOLUTE_POS;
    if i < n as usize {
        let p = rgb[i];
        let r = density[(p & 255u32) as usize];
        let g = density[((p >> 8u32) & 255u32) as usize];
        let b = density[((p >> 16u32) & 255u32) as usize];
        let amount = r * w_red + g * w_green + b * w_blue;
        if amount > 0.0 {
            out[i] = amount;
        } else {
            out[i] = 0.0;
        }
    }
}

/// Grey level from three 256-entry tables (value / 255 * weight, computed in `f64` on the host);
/// the sum is done here in `f32`.
#[cube(launch)]
fn gray_kernel(rgb: &[u32], tables: &[f32], out: &mut [f32], n: u32) {
    let i = ABSOLUTE_POS;
    if i < n as usize {
        let p = rgb[i];
        let r = tables[(p & 255u32) as usize];
        let g = tables[256 + ((p >> 8u32) & 255u32) as usize];
        let b = tables[512 + ((p >> 16u32) & 255u32) as usize];
        out[i] = r + g + b;
    }
}

/// One pass of a separable symmetric convolution with edge clamping, along rows
/// (`vertical == 0`) or columns. `kernel` holds the weights of offsets `0..=radius`; the sum is
/// accumulated in the same order as the SDK's (`k0 * c`, then `k_j * (left + right)` for
/// increasing j) so results agree to the last bits.
#[cube(launch)]
fn convolve_kernel(
    input: &[f32],
    kernel: &[f32],
    out: &mut [f32],
    width: u32,
    height: u32,
    planes: u32,
    radius: u32,
    vertical: u32,
) {
    let i = ABSOLUTE_POS;
    let plane_size = (width * height) as usize;
    if i < plane_size * planes as usize {
        let plane = i / plane_size;
        let at = i - plane * plane_size;
        let y = (at / width as usize) as u32;
        let x = (at - (y * width) as usize) as u32;
        let base = plane * plane_size;
        let mut sum = kernel[0] * input[i];
        for j in 1..radius + 1 {
            let weight = kernel[j as usize];
            if vertical == 0 {
                let left = if x >= j { x - j } else { 0u32 };
                let right = u32::min(x + j, width - 1);
                let before = input[base + (y * width + left) as usize];
                let after = input[base + (y * width + right) as usize];
                sum += weight * (before + after);
            } else {
                let up = if y >= j { y - j } else { 0u32 };
                let down = u32::min(y + j, height - 1);
                let before = input[base + (up * width + x) as usize];
                let after = input[base + (down * width + x) as usize];
                sum += weight * (before + after);
            }
        }
        out[i] = sum;
    }
}

/// Maps an `f32` to a `u32` whose unsigned order is the float order (NaN excluded).
#[cube]
fn ordered_bits(v: f32) -> u32 {
    let bits = u32::reinterpret(v);
    let mut key = bits | 0x8000_0000u32;
    if (bits & 0x8000_0000u32) != 0u32 {
        key = bits ^ 0xFFFF_FFFFu32;
    }
    key
}

/// Grid-stride minimum and maximum: each unit folds its share, then one atomic per unit. NaN
/// values are skipped. `range[0]` must start at `u32::MAX` and `range[1]` at 0.
#[cube(launch)]
fn min_max_kernel(input: &[f32], range: &[Atomic<u32>], n: u32) {
    let stride = CUBE_COUNT * CUBE_DIM as usize;
    let mut i = ABSOLUTE_POS;
    let mut low = 0xFFFF_FFFFu32;
    let mut high = 0u32;
    while i < n as usize {
        let v = input[i];
        if v == v {
            let key = ordered_bits(v);
            low = u32::min(low, key);
            high = u32::max(high, key);
        }
        i += stride;
    }
    range[0].fetch_min(low);
    range[1].fetch_max(high);
}

/// 256-bin histogram over `[min, max]` with numpy's bin edges (`edges`, 257 values rounded up to
/// `f32` on the host as the SDK does): a first guess from the scaled value, corrected against
/// the edges.
#[cube(launch)]
fn histogram_kernel(
    input: &[f32],
    edges: &[f32],
    counts: &[Atomic<u32>],
    n: u32,
    min: f32,
    max: f32,
    scale: f32,
) {
    let i = ABSOLUTE_POS;
    if i < n as usize {
        let v = input[i];
        if v >= min && v <= max {
            let guess = (v - min) * scale;
            let mut bin = u32::min(guess as u32, 255u32);
            while bin > 0u32 && v < edges[bin as usize] {
                bin -= 1u32;
            }
            while bin < 255u32 && v >= edges[(bin + 1u32) as usize] {
                bin += 1u32;
            }
            counts[bin as usize].fetch_add(1u32);
        }
    }
}

/// All values equal to `value` (the histogram of a plane without range).
#[cube(launch)]
fn count_equal_kernel(input: &[f32], count: &[Atomic<u32>], n: u32, value: f32) {
    let i = ABSOLUTE_POS;
    if i < n as usize && input[i] == value {
        count[0].fetch_add(1u32);
    }
}

#[cube(launch)]
fn threshold_kernel(input: &[f32], out: &mut [u32], n: u32, level: f32, above: u32) {
    let i = ABSOLUTE_POS;
    if i < n as usize {
        let v = input[i];
        let mut set = v <= level;
        if above != 0u32 {
            set = v > level;
        }
        out[i] = if set { 1u32 } else { 0u32 };
    }
}

/// One pass of square binary morphology along rows or columns: with `dilate == 0`, a pixel stays
/// set when every in-plane pixel within `radius` is set; otherwise it is set when any is.
#[cube(launch)]
fn morphology_kernel(
    input: &[u32],
    out: &mut [u32],
    width: u32,
    height: u32,
    radius: u32,
    vertical: u32,
    dilate: u32,
) {
    let i = ABSOLUTE_POS;
    if i < (width * height) as usize {
        let y = (i / width as usize) as u32;
        let x = (i - (y * width) as usize) as u32;
        let mut pos = x;
        let mut len = width;
        if vertical != 0 {
            pos = y;
            len = height;
        }
        let first = if pos >= radius { pos - radius } else { 0u32 };
        let last = u32::min(pos + radius, len - 1);
        let mut any = 0u32;
        let mut all = 1u32;
        for k in first..last + 1 {
            let index = if vertical == 0 {
                y * width + k
            } else {
                k * width + x
            };
            let v = u32::min(input[index as usize], 1u32);
            any = any | v;
            all = all & v;
        }
        out[i] = if dilate != 0u32 { any } else { all };
    }
}

/// Every set pixel starts as its own object: label = index + 1.
#[cube(launch)]
fn label_init_kernel(mask: &[u32], labels: &mut [u32], n: u32) {
    let i = ABSOLUTE_POS;
    if i < n as usize {
        labels[i] = if mask[i] != 0u32 {
            (i + 1) as u32
        } else {
            0u32
        };
    }
}

/// One round of minimum-label propagation with hooking: each set pixel takes the smallest label
/// among itself and its set neighbours, and also lowers the label of its old representative.
/// `changed[0]` is raised when anything moved.
#[cube(launch)]
fn label_propagate_kernel(
    labels: &[Atomic<u32>],
    changed: &[Atomic<u32>],
    width: u32,
    height: u32,
    eight: u32,
) {
    let i = ABSOLUTE_POS;
    if i < (width * height) as usize {
        let own = labels[i].load();
        if own != 0u32 {
            let y = (i / width as usize) as u32;
            let x = (i - (y * width) as usize) as u32;
            let mut best = own;
            let y0 = if y > 0u32 { y - 1 } else { 0u32 };
            let y1 = u32::min(y + 1, height - 1);
            let x0 = if x > 0u32 { x - 1 } else { 0u32 };
            let x1 = u32::min(x + 1, width - 1);
            for ny in y0..y1 + 1 {
                for nx in x0..x1 + 1 {
                    let diagonal = nx != x && ny != y;
                    if eight != 0u32 || !diagonal {
                        let other = labels[(ny * width + nx) as usize].load();
                        if other != 0u32 && other < best {
                            best = other;
                        }
                    }
                }
            }
            if best < own {
                labels[i].fetch_min(best);
                labels[(own - 1) as usize].fetch_min(best);
                changed[0].store(1u32);
            }
        }
    }
}

/// Pointer jumping: a label becomes its representative's label.
#[cube(launch)]
fn label_jump_kernel(labels: &mut [u32], n: u32) {
    let i = ABSOLUTE_POS;
    if i < n as usize {
        let own = labels[i];
        if own != 0u32 {
            let mut current = own;
            let mut next = labels[(current - 1) as usize];
            while next < current {
                current = next;
                next = labels[(current - 1) as usize];
            }
            labels[i] = current;
        }
    }
}

/// Collects the roots (pixels whose label is their own index + 1) in any order.
#[cube(launch)]
fn label_roots_kernel(labels: &[u32], count: &[Atomic<u32>], roots: &mut [u32], n: u32) {
    let i = ABSOLUTE_POS;
    if i < n as usize && labels[i] == (i + 1) as u32 {
        let slot = count[0].fetch_add(1u32);
        roots[slot as usize] = i as u32;
    }
}

/// `out[k] = input[k]` for `k < n`.
#[cube(launch)]
fn copy_kernel(input: &[u32], out: &mut [u32], n: u32) {
    let k = ABSOLUTE_POS;
    if k < n as usize {
        out[k] = input[k];
    }
}

/// `remap[root] = k + 1` for the k-th root in raster order.
#[cube(launch)]
fn label_scatter_kernel(sorted_roots: &[u32], remap: &mut [u32], count: u32) {
    let k = ABSOLUTE_POS;
    if k < count as usize {
        remap[sorted_roots[k] as usize] = (k + 1) as u32;
    }
}

#[cube(launch)]
fn label_relabel_kernel(labels: &mut [u32], remap: &[u32], n: u32) {
    let i = ABSOLUTE_POS;
    if i < n as usize {
        let own = labels[i];
        if own != 0u32 {
            labels[i] = remap[(own - 1) as usize];
        }
    }
}

/// Per-label sums: 8 words per label (area, x sum low/high, y sum low/high, min x, min y,
/// max x, max y); the 64-bit sums carry into the high word on overflow of the low one.
#[cube(launch)]
fn region_stats_kernel(labels: &[u32], stats: &[Atomic<u32>], width: u32, height: u32, count: u32) {
    let i = ABSOLUTE_POS;
    if i < (width * height) as usize {
        let label = labels[i];
        if label != 0u32 && label <= count {
            let y = (i / width as usize) as u32;
            let x = (i - (y * width) as usize) as u32;
            let base = ((label - 1) * 9) as usize;
            stats[base].fetch_add(1u32);
            let old_x = stats[base + 1].fetch_add(x);
            if old_x > 0xFFFF_FFFFu32 - x {
                stats[base + 2].fetch_add(1u32);
            }
            let old_y = stats[base + 3].fetch_add(y);
            if old_y > 0xFFFF_FFFFu32 - y {
                stats[base + 4].fetch_add(1u32);
            }
            stats[base + 5].fetch_min(x);
            stats[base + 6].fetch_min(y);
            stats[base + 7].fetch_max(x);
            stats[base + 8].fetch_max(y);
        }
    }
}

/// Keeps the set pixels whose object (by `labels`) has at least `min_area` pixels (`areas` is
/// the 9-word stats of `region_stats_kernel`).
#[cube(launch)]
fn keep_large_kernel(labels: &[u32], stats: &[u32], out: &mut [u32], n: u32, min_area: u32) {
    let i = ABSOLUTE_POS;
    if i < n as usize {
        let label = labels[i];
        let mut keep = 0u32;
        if label != 0u32 && stats[((label - 1) * 9) as usize] >= min_area {
            keep = 1u32;
        }
        out[i] = keep;
    }
}

// ---------------------------------------------------------------------------------------------
// Launch helpers.

fn dim() -> CubeDim {
    CubeDim::new_1d(CUBE)
}

fn count(client: &Client, n: usize) -> CubeCount {
    cubecl::calculate_cube_count_elemwise(client, n.max(1), dim())
}

fn buf(handle: &Handle, len: usize) -> BufferArg {
    // SAFETY: every handle passed here was allocated by the caller with at least `len` elements
    // of the kernel parameter's type (checked by `Tensor` shapes and the session's sizes).
    unsafe { BufferArg::from_raw_parts(handle.clone(), len.max(1)) }
}

fn as_u32(n: usize) -> Result<u32, GpuError> {
    u32::try_from(n).map_err(|_| GpuError::TooLarge(n as u64 * 4))
}

/// Reads a handle back, turning a launch or compile failure into an error.
pub fn read_u32(client: &Client, handle: &Handle) -> Result<Vec<u32>, GpuError> {
    let bytes = client
        .read_one(handle.clone())
        .map_err(|e| GpuError::Device(format!("{e:?}")))?;
    Ok(bytemuck::pod_collect_to_vec(&bytes[..]))
}

/// Reads a handle of `f32` back.
pub fn read_f32(client: &Client, handle: &Handle) -> Result<Vec<f32>, GpuError> {
    let bytes = client
        .read_one(handle.clone())
        .map_err(|e| GpuError::Device(format!("{e:?}")))?;
    Ok(bytemuck::pod_collect_to_vec(&bytes[..]))
}

/// Waits for the queued work, surfacing any launch error of the kernels that wrote `handle`.
pub fn finish(client: &Client, handle: &Handle) -> Result<(), GpuError> {
    let device = |e| GpuError::Device(format!("{e:?}"));
    client.check([handle]).map_err(device)?;
    // A read waits for everything queued before it on the stream; one word is the cheapest.
    // (Reads of part of a buffer are avoided: cubecl-wgpu 0.11 mis-sizes some of them.)
    let marker = client.create_from_slice(bytemuck::cast_slice(&[0u32; 2]));
    client.read_one(marker).map(|_| ()).map_err(device)
}

pub fn optical_density(
    client: &Client,
    rgb: &Handle,
    out: &Handle,
    n: usize,
) -> Result<(), GpuError> {
    let n32 = as_u32(n)?;
    optical_density_kernel::launch(
        client,
        count(client, n),
        dim(),
        buf(rgb, n),
        buf(out, 3 * n),
        n32,
    );
    Ok(())
}

pub fn deconvolution(
    client: &Client,
    rgb: &Handle,
    density: &Handle,
    out: &Handle,
    n: usize,
    weights: [f32; 3],
) -> Result<(), GpuError> {
    let n32 = as_u32(n)?;
    deconvolution_kernel::launch(
        client,
        count(client, n),
        dim(),
        buf(rgb, n),
        buf(density, 256),
        buf(out, n),
        n32,
        weights[0],
        weights[1],
        weights[2],
    );
    Ok(())
}

pub fn gray(
    client: &Client,
    rgb: &Handle,
    tables: &Handle,
    out: &Handle,
    n: usize,
) -> Result<(), GpuError> {
    let n32 = as_u32(n)?;
    gray_kernel::launch(
        client,
        count(client, n),
        dim(),
        buf(rgb, n),
        buf(tables, 768),
        buf(out, n),
        n32,
    );
    Ok(())
}

/// Blurs `planes` planes of `width` x `height` from `input` into `out`, through `temp` (same
/// size). `kernel` holds `radius + 1` weights.
#[allow(clippy::too_many_arguments, reason = "one launch's geometry")]
pub fn blur(
    client: &Client,
    input: &Handle,
    kernel: &Handle,
    temp: &Handle,
    out: &Handle,
    (width, height, planes): (usize, usize, usize),
    radius: usize,
) -> Result<(), GpuError> {
    let n = width * height * planes;
    let (w, h, p, r) = (
        as_u32(width)?,
        as_u32(height)?,
        as_u32(planes)?,
        as_u32(radius)?,
    );
    as_u32(n)?;
    for (from, to, vertical) in [(input, temp, 0u32), (temp, out, 1u32)] {
        convolve_kernel::launch(
            client,
            count(client, n),
            dim(),
            buf(from, n),
            buf(kernel, radius + 1),
            buf(to, n),
            w,
            h,
            p,
            r,
            vertical,
        );
    }
    Ok(())
}

/// Smallest and largest non-NaN value, `None` when there is none.
pub fn min_max(client: &Client, input: &Handle, n: usize) -> Result<Option<(f32, f32)>, GpuError> {
    let n32 = as_u32(n)?;
    let range = client.create_from_slice(bytemuck::cast_slice(&[u32::MAX, 0u32]));
    // A grid-stride loop: enough units to fill a device, few enough atomics to stay cheap.
    let units = n.div_ceil(16).clamp(1, 1 << 16);
    min_max_kernel::launch(
        client,
        count(client, units),
        dim(),
        buf(input, n),
        buf(&range, 2),
        n32,
    );
    let range = read_u32(client, &range)?;
    if range[0] > range[1] {
        return Ok(None);
    }
    let value = |key: u32| {
        let bits = if key & 0x8000_0000 != 0 {
            key & 0x7fff_ffff
        } else {
            !key
        };
        f32::from_bits(bits)
    };
    Ok(Some((value(range[0]), value(range[1]))))
}

/// 256-bin histogram over `[min, max]`; `edges` are the 257 edges as `f32`.
pub fn histogram(
    client: &Client,
    input: &Handle,
    n: usize,
    (min, max): (f32, f32),
    edges: &[f32],
) -> Result<Vec<u32>, GpuError> {
    let n32 = as_u32(n)?;
    if min == max {
        let counter = client.create_from_slice(bytemuck::cast_slice(&[0u32]));
        count_equal_kernel::launch(
            client,
            count(client, n),
            dim(),
            buf(input, n),
            buf(&counter, 1),
            n32,
            min,
        );
        let mut counts = vec![0u32; 256];
        counts[0] = read_u32(client, &counter)?[0];
        return Ok(counts);
    }
    let edges = client.create_from_slice(bytemuck::cast_slice(edges));
    let counts = client.create_from_slice(bytemuck::cast_slice(&[0u32; 256]));
    let scale = (256.0 / (f64::from(max) - f64::from(min))) as f32;
    histogram_kernel::launch(
        client,
        count(client, n),
        dim(),
        buf(input, n),
        buf(&edges, 257),
        buf(&counts, 256),
        n32,
        min,
        max,
        scale,
    );
    read_u32(client, &counts)
}

pub fn threshold(
    client: &Client,
    input: &Handle,
    out: &Handle,
    n: usize,
    level: f32,
    above: bool,
) -> Result<(), GpuError> {
    let n32 = as_u32(n)?;
    threshold_kernel::launch(
        client,
        count(client, n),
        dim(),
        buf(input, n),
        buf(out, n),
        n32,
        level,
        u32::from(above),
    );
    Ok(())
}

/// Erosion (`dilate == false`) or dilation of `input` into `out` through `temp`.
pub fn morphology(
    client: &Client,
    input: &Handle,
    temp: &Handle,
    out: &Handle,
    (width, height): (usize, usize),
    radius: u32,
    dilate: bool,
) -> Result<(), GpuError> {
    let n = width * height;
    let (w, h) = (as_u32(width)?, as_u32(height)?);
    for (from, to, vertical) in [(input, temp, 0u32), (temp, out, 1u32)] {
        morphology_kernel::launch(
            client,
            count(client, n),
            dim(),
            buf(from, n),
            buf(to, n),
            w,
            h,
            radius,
            vertical,
            u32::from(dilate),
        );
    }
    Ok(())
}

/// Labels `mask` into `labels` (raster-ordered, `1..=count`) using `scratch` (`n` words) for
/// the root list and the remap table. Returns the count.
pub fn label(
    client: &Client,
    mask: &Handle,
    labels: &Handle,
    scratch: &Handle,
    (width, height): (usize, usize),
    eight: bool,
) -> Result<u32, GpuError> {
    let n = width * height;
    let (n32, w, h) = (as_u32(n)?, as_u32(width)?, as_u32(height)?);
    if n == 0 {
        return Ok(0);
    }
    label_init_kernel::launch(
        client,
        count(client, n),
        dim(),
        buf(mask, n),
        buf(labels, n),
        n32,
    );
    // Propagate until nothing changes; a few rounds per read-back keep the round trips down.
    const ROUNDS_PER_CHECK: usize = 4;
    loop {
        let changed = client.create_from_slice(bytemuck::cast_slice(&[0u32]));
        for _ in 0..ROUNDS_PER_CHECK {
            label_propagate_kernel::launch(
                client,
                count(client, n),
                dim(),
                buf(labels, n),
                buf(&changed, 1),
                w,
                h,
                u32::from(eight),
            );
            label_jump_kernel::launch(client, count(client, n), dim(), buf(labels, n), n32);
        }
        if read_u32(client, &changed)?[0] == 0 {
            break;
        }
    }
    // Roots in raster order get labels 1, 2, ...
    let root_count = client.create_from_slice(bytemuck::cast_slice(&[0u32]));
    label_roots_kernel::launch(
        client,
        count(client, n),
        dim(),
        buf(labels, n),
        buf(&root_count, 1),
        buf(scratch, n),
        n32,
    );
    let objects = read_u32(client, &root_count)?[0] as usize;
    if objects == 0 {
        return Ok(0);
    }
    // Only the first `objects` words: copied into a buffer of their own, then read whole.
    let padded = objects.next_multiple_of(64);
    let list = client.empty(padded * 4);
    copy_kernel::launch(
        client,
        count(client, objects),
        dim(),
        buf(scratch, n),
        buf(&list, padded),
        objects as u32,
    );
    let mut roots = read_u32(client, &list)?;
    roots.truncate(objects);
    roots.sort_unstable();
    let sorted = client.create_from_slice(bytemuck::cast_slice(&roots));
    label_scatter_kernel::launch(
        client,
        count(client, objects),
        dim(),
        buf(&sorted, objects),
        buf(scratch, n),
        objects as u32,
    );
    label_relabel_kernel::launch(
        client,
        count(client, n),
        dim(),
        buf(labels, n),
        buf(scratch, n),
        n32,
    );
    Ok(objects as u32)
}

/// Per-label sums of `region_stats_kernel` for labels `1..=count`, as 9 words per label, left on
/// the device.
pub fn region_sums(
    client: &Client,
    labels: &Handle,
    (width, height): (usize, usize),
    count_labels: u32,
) -> Result<Handle, GpuError> {
    let n = width * height;
    let (w, h) = (as_u32(width)?, as_u32(height)?);
    let mut init = vec![0u32; count_labels as usize * 9];
    for sums in init.chunks_exact_mut(9) {
        sums[5] = u32::MAX;
        sums[6] = u32::MAX;
    }
    let stats = client.create_from_slice(bytemuck::cast_slice(&init));
    region_stats_kernel::launch(
        client,
        count(client, n),
        dim(),
        buf(labels, n),
        buf(&stats, init.len()),
        w,
        h,
        count_labels,
    );
    Ok(stats)
}

pub fn keep_large(
    client: &Client,
    labels: &Handle,
    stats: &Handle,
    out: &Handle,
    n: usize,
    stats_len: usize,
    min_area: u32,
) -> Result<(), GpuError> {
    let n32 = as_u32(n)?;
    keep_large_kernel::launch(
        client,
        count(client, n),
        dim(),
        buf(labels, n),
        buf(stats, stats_len),
        buf(out, n),
        n32,
        min_area,
    );
    Ok(())
}
