//! Every limit the runtime puts on a plugin, each a named constant.
//!
//! A plugin's manifest asks for memory and time; the host clamps both to the host-wide maxima
//! below. The remaining constants bound what a guest can make the host allocate or hold.

use std::time::Duration;

/// How often the epoch ticker advances the engine's epoch. Deadlines are counted in ticks, so
/// a plugin's time budget is enforced to within one tick. Lower it for finer deadlines at the
/// cost of a thread waking more often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Largest linear memory any plugin may grow to, whatever its manifest asks. It also sizes the
/// pooling allocator's slots (virtual address space only, committed on use). Raise it together
/// with the machine's memory.
pub const MAX_PLUGIN_MEMORY_BYTES: u64 = 4 << 30;

/// Most device (GPU) memory one plugin may hold at once, whatever its grant asks.
pub const MAX_GPU_MEMORY_BYTES: u64 = 16 << 30;

/// Memory a plugin gets when its manifest names none.
pub const DEFAULT_PLUGIN_MEMORY_BYTES: u64 = 256 << 20;

/// Longest time one call into a plugin may run, whatever its manifest asks.
pub const MAX_CALL_TIME: Duration = Duration::from_secs(3600);

/// Time a call gets when the manifest names none.
pub const DEFAULT_CALL_TIME: Duration = Duration::from_secs(60);

/// Time `describe` and the trial instantiation at install get: they do no analysis.
pub const DESCRIBE_TIME: Duration = Duration::from_secs(5);

/// Table elements one plugin may hold (function tables of the guest).
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Component instances alive at once across the host (the pooling allocator's slots). Each job
/// worker holds one while a call runs.
pub const POOL_COMPONENT_INSTANCES: u32 = 64;

/// Core instances one component may create (a Rust guest uses a few for its adapter shims).
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 32;

/// Linear memories one component may create.
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 4;

/// Tables one component may create.
pub const MAX_TABLES_PER_COMPONENT: u32 = 8;

/// Host resources (open images) one call may hold at once. A guest that opens images in a loop
/// without dropping them gets `denied` instead of growing the host's table without bound.
pub const MAX_OPEN_IMAGES: usize = 64;

/// Tensors one call may hold at once. Their bytes are bounded by the GPU grant; this bounds
/// the host's table when a guest makes many empty ones.
pub const MAX_TENSORS: usize = 4096;

/// Largest region, in pixels, one `read-region` call may ask for. The host decodes the region
/// into its own buffer before copying it into the guest, so this bounds host memory per call
/// (3 bytes a pixel: 64 Mpx = 192 MiB). Plugins read large images region by region.
pub const MAX_REGION_PIXELS: u64 = 64 << 20;

/// Bytes of stdout and stderr kept per call and forwarded to the log; the rest is counted and
/// dropped so a chatty or hostile guest cannot grow host memory.
pub const MAX_CAPTURED_OUTPUT: usize = 64 << 10;

/// Longest log message accepted from `host.log`; longer ones are cut.
pub const MAX_LOG_MESSAGE: usize = 4 << 10;

/// `host.log` messages forwarded per call; later ones are counted and dropped, with one warning
/// at the end of the call, so a plugin cannot flood the host's log.
pub const MAX_LOG_MESSAGES: usize = 10_000;

/// Longest plugin-supplied text (an error value, a panic message) kept in an error shown to
/// users.
pub const MAX_ERROR_TEXT: usize = 2 << 10;

/// Largest component file accepted at install.
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;
