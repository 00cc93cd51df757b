//! Runs plugins: one shared wasmtime `Engine`, pre-linked components, a fresh `Store` per call.
//!
//! The steps of a call are:
//!
//! 1. At load, the component is compiled once (or read from the on-disk cache, see [`cache`]),
//!    linked against the host's interfaces and pre-instantiated (`AlgorithmPre`). A component
//!    that imports something the host does not provide fails here, naming the import.
//! 2. Each call builds a new `Store` with the plugin's memory cap and an epoch deadline from its
//!    time budget, instantiates from the pooling allocator (microseconds), and calls one export.
//! 3. A trap poisons its whole `Store`, so the store is dropped after every call, successful or
//!    not. The engine, the compiled component and the `InstancePre` are untouched and serve the
//!    next call.
//!
//! The sandbox: WASI with no preopened directories, no sockets, no environment, no arguments,
//! stdin closed, and stdout/stderr captured into the log. Only the `cli`, `io` and `random` WASI
//! interfaces are linked, so a component importing the filesystem, sockets or clocks is refused
//! at load. Everything else a plugin sees comes through `tessera:plugin/data`,
//! `tessera:plugin/host` (both in `bindings.rs`) and `tessera:plugin/gpu` (`gpu_api.rs`).
//!
//! API versions: the linker holds the interfaces of every supported minor (0.1.0 and 0.2.0).
//! Which world a component is instantiated as is decided at load from its imports: a component
//! importing `tessera:plugin/*@0.1.0` runs through the 0.1.0 bindings, adapted in `compat.rs`;
//! every other one through the current bindings.

mod bindings;
pub mod cache;
mod compat;
mod gpu_api;
pub mod limits;
mod output;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    Trap,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub use bindings::{
    Annotation, Geometry, Measurement, Param, ParamKind, ParamSpec, ParamValue, PluginError,
    PluginInfo, Point, Rect, RunRequest, RunResult,
};
use bindings::{v1, v2};
use cache::ComponentCache;
pub use gpu_api::GpuSource;
use limits::*;
use output::CapturedOutput;

use crate::imaging::Slide;

/// Why a plugin call or load failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The bytes are not a valid WebAssembly component.
    #[error("plugin `{plugin}` is not a valid component: {reason}")]
    Compile { plugin: String, reason: String },
    /// The component needs something the host does not provide.
    #[error("plugin `{plugin}` cannot be linked: {reason}")]
    Link { plugin: String, reason: String },
    /// The call ran past the plugin's time budget.
    #[error("plugin `{plugin}` exceeded its time limit of {limit_ms} ms in `{export}`")]
    Timeout {
        plugin: String,
        export: &'static str,
        limit_ms: u128,
    },
    /// The plugin tried to grow its memory past its cap.
    #[error(
        "plugin `{plugin}` exceeded its memory limit of {limit_mib} MiB in `{export}` \
         (it asked for {requested_mib} MiB)"
    )]
    Memory {
        plugin: String,
        export: &'static str,
        limit_mib: u64,
        requested_mib: u64,
    },
    /// The plugin trapped (a panic, an `unreachable`, an out-of-bounds access...).
    #[error("plugin `{plugin}` crashed in `{export}`: {reason}")]
    Trap {
        plugin: String,
        export: &'static str,
        reason: String,
    },
    /// The plugin returned an error value.
    #[error("plugin `{plugin}` failed in `{export}`: {message}")]
    Plugin {
        plugin: String,
        export: &'static str,
        error: PluginError,
        message: String,
    },
    /// The compile cache could not be used.
    #[error("compile cache at {path}: {reason}")]
    Cache { path: String, reason: String },
}

/// Memory and time one plugin gets, already clamped to the host-wide maxima.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginLimits {
    /// Largest linear memory, in bytes.
    pub memory_bytes: u64,
    /// Longest time one `run` call may take.
    pub call_time: Duration,
    /// Device memory its tensors may hold at once; 0 means no GPU access.
    pub gpu_memory_bytes: u64,
}

impl PluginLimits {
    /// Clamps what a manifest asks for to the host-wide maxima, filling in defaults.
    pub fn clamped(memory_bytes: Option<u64>, call_time: Option<Duration>) -> Self {
        PluginLimits {
            memory_bytes: memory_bytes
                .unwrap_or(DEFAULT_PLUGIN_MEMORY_BYTES)
                .min(MAX_PLUGIN_MEMORY_BYTES),
            call_time: call_time.unwrap_or(DEFAULT_CALL_TIME).min(MAX_CALL_TIME),
            gpu_memory_bytes: 0,
        }
    }

    /// The same limits with a device memory grant, clamped to [`MAX_GPU_MEMORY_BYTES`].
    pub fn with_gpu_memory(self, bytes: u64) -> Self {
        PluginLimits {
            gpu_memory_bytes: bytes.min(MAX_GPU_MEMORY_BYTES),
            ..self
        }
    }
}

/// Why the data scope refused to open an image.
#[derive(Debug)]
pub enum ScopeError {
    /// No such image.
    NotFound,
    /// The image exists but is outside the job's scope.
    Denied,
    /// The image exists but cannot be decoded.
    Unreadable(String),
}

/// Which images a call may open: the job's scope.
pub trait DataScope: Send + Sync {
    /// Opens `id` if the scope allows it.
    fn open_image(&self, id: &str) -> Result<Arc<Slide>, ScopeError>;
}

/// Progress callback: (done, total).
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// What a call may reach and report to.
#[derive(Clone)]
pub struct CallContext {
    /// The images the plugin may open.
    pub scope: Arc<dyn DataScope>,
    /// Where `host.progress` goes.
    pub progress: Option<ProgressFn>,
    /// Set to ask the plugin to stop; it sees it through `host.is-cancelled`.
    pub cancelled: Arc<AtomicBool>,
}

impl CallContext {
    /// A context that can open nothing, for `describe` and trial instantiation.
    pub fn closed() -> Self {
        CallContext {
            scope: Arc::new(NoData),
            progress: None,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }
}

struct NoData;

impl DataScope for NoData {
    fn open_image(&self, _id: &str) -> Result<Arc<Slide>, ScopeError> {
        Err(ScopeError::Denied)
    }
}

/// Caps a store's memories (all of them together) and tables; remembers what it refused so the
/// error can say so.
struct Limiter {
    memory_cap: usize,
    memory_total: usize,
    refused_memory: Option<usize>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A component may hold several linear memories: the cap is on their sum.
        let total = (self.memory_total - current.min(self.memory_total)).saturating_add(desired);
        if total > self.memory_cap {
            self.refused_memory = Some(total);
            wasmtime::bail!("memory limit of {} bytes reached", self.memory_cap);
        }
        self.memory_total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Everything one call's `Store` holds.
pub struct PluginState {
    plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    call: CallContext,
    open_images: usize,
    log_messages: usize,
    gpu_source: Arc<GpuSource>,
    gpu_grant: u64,
    gpu_session: Option<crate::gpu::Session>,
    tensors: usize,
}

impl v2::tessera::plugin::algorithm_types::Host for PluginState {}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The shared engine, linker and compile cache. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    cache: ComponentCache,
    stop_ticker: Arc<AtomicBool>,
    gpu: Arc<GpuSource>,
}

impl Runtime {
    /// Builds the engine (pooling allocator, epoch interruption) and starts the epoch ticker.
    /// Compiled components are cached under `cache_dir`.
    pub fn new(cache_dir: &Path) -> anyhow::Result<Runtime> {
        Self::with_pooling(cache_dir, true)
    }

    /// Like [`Runtime::new`], choosing the instance allocator (the benchmark compares both).
    pub fn with_pooling(cache_dir: &Path, pooling: bool) -> anyhow::Result<Runtime> {
        let config = engine_config(pooling);
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;

        let mut linker = Linker::new(&engine);
        link_wasi(&mut linker).map_err(anyhow::Error::from)?;
        v2::Algorithm::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |s| s)
            .map_err(anyhow::Error::from)?;
        v1::Algorithm::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |s| s)
            .map_err(anyhow::Error::from)?;

        let cache = ComponentCache::new(cache_dir, &engine)?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), stop_ticker.clone())?;
        Ok(Runtime {
            engine,
            linker,
            cache,
            stop_ticker,
            gpu: Arc::new(GpuSource::new(crate::gpu::BackendChoice::from_env())),
        })
    }

    /// The same runtime with the kernels on `choice` instead of the [`crate::gpu::BACKEND_ENV`]
    /// setting. Call it before loading plugins: they share the runtime's device.
    pub fn with_gpu_backend(mut self, choice: crate::gpu::BackendChoice) -> Runtime {
        self.gpu = Arc::new(GpuSource::new(Ok(choice)));
        self
    }

    /// The device plugins' kernels run on, opened on first use.
    pub fn gpu(&self) -> Result<Arc<crate::gpu::Gpu>, String> {
        self.gpu.get()
    }

    /// The shared engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compile cache.
    pub fn cache(&self) -> &ComponentCache {
        &self.cache
    }

    /// Compiles (or loads from cache) and pre-links a plugin. `digest` is the sha256 of `bytes`.
    pub fn load(
        &self,
        plugin_id: &str,
        version: &str,
        bytes: &[u8],
        digest: &str,
        limits: PluginLimits,
    ) -> Result<LoadedPlugin, RuntimeError> {
        let component = self
            .cache
            .load_or_compile(&self.engine, bytes, digest, plugin_id)?;
        self.prelink(plugin_id, version, digest, &component, limits)
    }

    /// Pre-links an already compiled component.
    pub fn prelink(
        &self,
        plugin_id: &str,
        version: &str,
        digest: &str,
        component: &Component,
        limits: PluginLimits,
    ) -> Result<LoadedPlugin, RuntimeError> {
        let link_error = |e: wasmtime::Error| RuntimeError::Link {
            plugin: plugin_id.to_string(),
            reason: format!("{e:#}"),
        };
        let pre = self.linker.instantiate_pre(component).map_err(link_error)?;
        let pre = if imports_api_0_1(component, &self.engine) {
            Pre::V1(v1::AlgorithmPre::new(pre).map_err(link_error)?)
        } else {
            Pre::V2(v2::AlgorithmPre::new(pre).map_err(link_error)?)
        };
        Ok(LoadedPlugin {
            id: Arc::from(plugin_id),
            version: version.to_string(),
            digest: digest.to_string(),
            limits,
            pre,
            gpu: self.gpu.clone(),
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// The engine settings every plugin runs under: component model, epoch interruption, no
/// async support (calls are about three times cheaper without it), and optionally the pooling
/// allocator sized by the constants in [`limits`].
pub fn engine_config(pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.concurrency_support(false);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_COMPONENT_INSTANCES);
        pool.max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT);
        pool.max_memories_per_component(MAX_MEMORIES_PER_COMPONENT);
        pool.max_tables_per_component(MAX_TABLES_PER_COMPONENT);
        pool.total_core_instances(POOL_COMPONENT_INSTANCES * MAX_CORE_INSTANCES_PER_COMPONENT);
        pool.total_memories(POOL_COMPONENT_INSTANCES * MAX_MEMORIES_PER_COMPONENT);
        pool.total_tables(POOL_COMPONENT_INSTANCES * MAX_TABLES_PER_COMPONENT);
        pool.max_memory_size(MAX_PLUGIN_MEMORY_BYTES as usize);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Plugin-supplied text made safe for a terminal and a log line: control characters (escape
/// sequences, newlines) become spaces or `?`, and the text is cut at `max` bytes.
pub fn printable(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        });
    }
    out
}

fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    thread::Builder::new()
        .name("tessera-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })?;
    Ok(())
}

/// Links the WASI interfaces a std Rust guest needs and nothing more: cli, io and random.
fn link_wasi(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::p2::bindings::{cli, random, sync};
    use wasmtime_wasi::random::WasiRandom;

    struct Io;
    impl wasmtime::component::HasData for Io {
        type Data<'a> = &'a mut ResourceTable;
    }

    let l = linker;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<_, Io>(l, |s| &mut s.table)?;
    sync::io::poll::add_to_linker::<_, Io>(l, |s| &mut s.table)?;
    sync::io::streams::add_to_linker::<_, Io>(l, |s| &mut s.table)?;
    cli::exit::add_to_linker::<_, WasiCli>(l, PluginState::cli)?;
    cli::environment::add_to_linker::<_, WasiCli>(l, PluginState::cli)?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, PluginState::cli)?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, PluginState::cli)?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, PluginState::cli)?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, PluginState::cli)?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, PluginState::cli)?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, PluginState::cli)?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, PluginState::cli)?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, PluginState::cli)?;
    random::random::add_to_linker::<_, WasiRandom>(l, |s| s.wasi.random())?;
    random::insecure::add_to_linker::<_, WasiRandom>(l, |s| s.wasi.random())?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, |s| s.wasi.random())?;
    Ok(())
}

/// Whether a component was built against plugin API 0.1.0: it imports an interface of
/// `tessera:plugin@0.1.0`.
fn imports_api_0_1(component: &Component, engine: &Engine) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, _)| name.starts_with("tessera:plugin/") && name.ends_with("@0.1.0"))
}

/// A component pre-linked as the world of the API version it was built against.
enum Pre {
    V1(v1::AlgorithmPre<PluginState>),
    V2(v2::AlgorithmPre<PluginState>),
}

/// An instance of either world, answering in the current API's types.
enum Instance {
    V1(v1::Algorithm),
    V2(v2::Algorithm),
}

impl Instance {
    fn describe(&self, store: &mut Store<PluginState>) -> wasmtime::Result<PluginInfo> {
        match self {
            Instance::V1(a) => a.call_describe(store).map(compat::plugin_info),
            Instance::V2(a) => a.call_describe(store),
        }
    }

    fn run(
        &self,
        store: &mut Store<PluginState>,
        request: &RunRequest,
    ) -> wasmtime::Result<Result<RunResult, PluginError>> {
        match self {
            Instance::V1(a) => a
                .call_run(store, &compat::run_request(request))
                .map(compat::run_result),
            Instance::V2(a) => a.call_run(store, request),
        }
    }
}

/// A compiled, pre-linked plugin, ready to instantiate per call.
pub struct LoadedPlugin {
    id: Arc<str>,
    version: String,
    digest: String,
    limits: PluginLimits,
    pre: Pre,
    gpu: Arc<GpuSource>,
}

impl LoadedPlugin {
    /// The plugin id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The plugin version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// sha256 of the component.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The limits each call runs under.
    pub fn limits(&self) -> PluginLimits {
        self.limits
    }

    /// The plugin API version the component was built against, from its imports.
    pub fn api(&self) -> &'static str {
        match self.pre {
            Pre::V1(_) => "0.1.0",
            Pre::V2(_) => "0.2.0",
        }
    }

    /// Instantiates the plugin and asks for its name, version and parameters.
    pub fn describe(&self) -> Result<PluginInfo, RuntimeError> {
        self.call(
            CallContext::closed(),
            "describe",
            DESCRIBE_TIME,
            |store, alg| alg.describe(store),
        )
    }

    /// Runs the algorithm on one image.
    pub fn run(&self, ctx: CallContext, request: &RunRequest) -> Result<RunResult, RuntimeError> {
        self.run_measured(ctx, request).0
    }

    /// Like [`LoadedPlugin::run`], also returning the peak linear memory of the call in bytes
    /// (what `tessera plugin test` reports).
    pub fn run_measured(
        &self,
        ctx: CallContext,
        request: &RunRequest,
    ) -> (Result<RunResult, RuntimeError>, u64) {
        let mut peak = 0;
        let result = self.call_measured(
            ctx,
            "run",
            self.limits.call_time,
            &mut peak,
            |store, alg| alg.run(store, request),
        );
        (result.and_then(|r| self.plugin_error(r)), peak)
    }

    fn plugin_error(
        &self,
        result: Result<RunResult, bindings::PluginError>,
    ) -> Result<RunResult, RuntimeError> {
        result.map_err(|error| RuntimeError::Plugin {
            plugin: self.id.to_string(),
            export: "run",
            message: printable(&bindings::describe_error(&error), MAX_ERROR_TEXT),
            error,
        })
    }

    /// Builds a fresh store and instantiates, calling nothing: the benchmark's instantiation
    /// figure.
    pub fn instantiate_only(&self) -> Result<(), RuntimeError> {
        self.call(
            CallContext::closed(),
            "instantiate",
            DESCRIBE_TIME,
            |_, _| Ok(()),
        )
    }

    /// One call: fresh store, limits, instantiate, call `f`, classify any failure.
    fn call<R>(
        &self,
        ctx: CallContext,
        export: &'static str,
        time: Duration,
        f: impl FnOnce(&mut Store<PluginState>, &Instance) -> wasmtime::Result<R>,
    ) -> Result<R, RuntimeError> {
        self.call_measured(ctx, export, time, &mut 0, f)
    }

    /// [`LoadedPlugin::call`], writing the peak linear memory of the call to `peak`.
    fn call_measured<R>(
        &self,
        ctx: CallContext,
        export: &'static str,
        time: Duration,
        peak: &mut u64,
        f: impl FnOnce(&mut Store<PluginState>, &Instance) -> wasmtime::Result<R>,
    ) -> Result<R, RuntimeError> {
        let span =
            tracing::debug_span!("plugin_call", plugin = %self.id, version = %self.version, export);
        let _enter = span.enter();

        // 1. A closed WASI context whose output lands in capped buffers.
        let stdout = CapturedOutput::default();
        let stderr = CapturedOutput::default();
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        let state = PluginState {
            plugin: self.id.clone(),
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_cap: self.limits.memory_bytes as usize,
                memory_total: 0,
                refused_memory: None,
            },
            call: ctx,
            open_images: 0,
            log_messages: 0,
            gpu_source: self.gpu.clone(),
            gpu_grant: self.limits.gpu_memory_bytes,
            gpu_session: None,
            tensors: 0,
        };

        // 2. A fresh store with the memory cap and the deadline set before instantiation.
        let engine = match &self.pre {
            Pre::V1(pre) => pre.engine(),
            Pre::V2(pre) => pre.engine(),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        let ticks = (time.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();

        // 3. Instantiate and call; the store is dropped whatever happens.
        let outcome = match &self.pre {
            Pre::V1(pre) => pre.instantiate(&mut store).map(Instance::V1),
            Pre::V2(pre) => pre.instantiate(&mut store).map(Instance::V2),
        }
        .and_then(|alg| f(&mut store, &alg));
        // Memories only grow, so their total at the end is the call's peak.
        *peak = store.data().limiter.memory_total as u64;
        output::forward_to_log(&self.id, "stdout", &stdout);
        let stderr_text = output::forward_to_log(&self.id, "stderr", &stderr);

        outcome.map_err(|e| self.classify(e, export, time, &store, &stderr_text))
    }

    fn classify(
        &self,
        error: wasmtime::Error,
        export: &'static str,
        time: Duration,
        store: &Store<PluginState>,
        stderr: &str,
    ) -> RuntimeError {
        let plugin = self.id.to_string();
        if let Some(requested) = store.data().limiter.refused_memory {
            tracing::warn!(plugin, export, "plugin hit its memory limit");
            return RuntimeError::Memory {
                plugin,
                export,
                limit_mib: self.limits.memory_bytes >> 20,
                requested_mib: (requested as u64).div_ceil(1 << 20),
            };
        }
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            tracing::warn!(plugin, export, "plugin hit its time limit");
            return RuntimeError::Timeout {
                plugin,
                export,
                limit_ms: time.as_millis(),
            };
        }
        // A Rust guest prints its panic message to stderr before trapping: it is the most
        // useful part of the report.
        let panic = stderr
            .lines()
            .find(|l| l.contains("panicked at"))
            .map(|l| l.trim().to_string());
        let trap = match error.downcast_ref::<Trap>() {
            Some(t) => t.to_string(),
            None => format!("{error:#}"),
        };
        let reason = match panic {
            Some(p) => {
                let detail = stderr
                    .lines()
                    .skip_while(|l| !l.contains("panicked at"))
                    .nth(1)
                    .map(str::trim)
                    .unwrap_or("");
                format!("{p} {detail} ({trap})")
            }
            None => trap,
        };
        let reason = printable(&reason, MAX_ERROR_TEXT);
        tracing::warn!(plugin, export, %reason, "plugin trapped");
        RuntimeError::Trap {
            plugin,
            export,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_text_loses_control_characters_and_is_cut() {
        assert_eq!(printable("a\x1b[31mred\nline", 100), "a?[31mred line");
        assert_eq!(printable("ééé", 4), "éé…");
    }

    #[test]
    fn the_memory_cap_counts_every_memory_of_a_plugin() {
        let mut limiter = Limiter {
            memory_cap: 100,
            memory_total: 0,
            refused_memory: None,
        };
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_growing(0, 40, None).unwrap());
        assert!(limiter.memory_growing(0, 1, None).is_err());
        assert_eq!(limiter.refused_memory, Some(101));
    }
}
