//! Engine set-up, compilation, validation and the compiled-code cache.
//!
//! The engine uses the pooling allocator and epoch interruption, with a ticker thread
//! advancing the epoch every [`EPOCH_TICK`] (1 ms). A released instance's memory and tables
//! are reset in place, a memset of the pages it dirtied (found with Linux's PAGEMAP_SCAN)
//! up to [`MEMORY_KEEP_RESIDENT`] (2 MiB) and [`TABLE_KEEP_RESIDENT`] (64 KiB), instead of
//! madvise, whose TLB-shootdown IPIs took a third of the CPU with a fresh instance per
//! request. Compiled code is cached as `<cache dir>/<sha256>-<engine fingerprint>.cwasm`
//! (the node uses `DATA_DIR/cache`), written atomically through a rename, and loaded back
//! file-backed (mapped, not read), so a restart skips compilation.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::WasmError;
use crate::host::HostState;
use crate::keyvalue::{self, KeyValueBackend};

/// How often the epoch advances: a running guest yields to the executor this often
/// and timeouts are enforced at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Bytes of a linear memory reset in place rather than decommitted when its instance is
/// released (typical small functions dirty far less: stack top, data, a little heap).
pub const MEMORY_KEEP_RESIDENT: usize = 2 * 1024 * 1024;
/// The same for tables.
pub const TABLE_KEEP_RESIDENT: usize = 64 * 1024;
/// Component instances the pooling allocator keeps slots for, across all functions.
pub const DEFAULT_POOL_INSTANCES: u32 = 1_000;

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct WasmEngineConfig {
    /// Directory of compiled `.cwasm` files.
    pub cache_dir: PathBuf,
    /// Concurrent component instances the pooling allocator provides.
    pub pool_instances: u32,
}

/// Where a component's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// Compiled now from the artifact.
    Compiled,
    /// Mapped from the compiled-code cache.
    Cache,
}

/// A compiled, linked component ready to instantiate.
#[derive(Clone)]
pub struct CompiledComponent {
    pub(crate) pre: ProxyPre<HostState>,
}

/// The shared wasmtime engine, linker and compiled-code cache.
#[derive(Clone)]
pub struct WasmEngine {
    pub(crate) engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache_dir: PathBuf,
    engine_fingerprint: String,
    ticker_stop: Arc<AtomicBool>,
    /// Storage behind `wasi:keyvalue`; `None`: every call fails as not configured.
    pub(crate) key_value: Option<Arc<dyn KeyValueBackend>>,
}

impl WasmEngine {
    /// Builds the engine (pooling allocator, epoch interruption, async) and starts the
    /// epoch ticker thread.
    pub fn new(config: &WasmEngineConfig) -> Result<Self, WasmError> {
        let mut wasm_config = Config::new();
        wasm_config.epoch_interruption(true);
        let mut pooling = PoolingAllocationConfig::default();
        pooling.total_component_instances(config.pool_instances);
        pooling.total_core_instances(config.pool_instances * 4);
        pooling.total_memories(config.pool_instances * 2);
        pooling.total_tables(config.pool_instances * 4);
        pooling.max_memory_size(gureum_model::MAX_MEMORY_MB as usize * 1024 * 1024);
        pooling.total_stacks(config.pool_instances);
        // A released instance's memory and tables are reset in place (memset of the
        // pages it dirtied, found with Linux's PAGEMAP_SCAN where the kernel has it)
        // instead of madvise(DONTNEED): on a multi-threaded process every madvise
        // flushes the other cores' TLBs by IPI, which took a third of the CPU with a
        // fresh instance per request; the pages also stay mapped for the next one.
        pooling.linear_memory_keep_resident(MEMORY_KEEP_RESIDENT);
        pooling.table_keep_resident(TABLE_KEEP_RESIDENT);
        pooling.pagemap_scan(wasmtime::Enabled::Auto);
        wasm_config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&wasm_config).map_err(|e| WasmError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| {
                wasmtime_wasi_config::add_to_linker(&mut linker, |state: &mut HostState| {
                    wasmtime_wasi_config::WasiConfig::from(&state.config)
                })
            })
            .and_then(|()| keyvalue::add_to_linker(&mut linker))
            .map_err(|e| WasmError::Engine(format!("{e:#}")))?;

        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_fingerprint = format!("{:016x}", hasher.finish());

        std::fs::create_dir_all(&config.cache_dir).map_err(|e| WasmError::Cache {
            path: config.cache_dir.display().to_string(),
            message: e.to_string(),
        })?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), ticker_stop.clone());

        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache_dir: config.cache_dir.clone(),
            engine_fingerprint,
            ticker_stop,
            key_value: None,
        })
    }

    /// This engine with `backend` behind `wasi:keyvalue` for the instances it creates
    /// from now on (clones made earlier keep their setting).
    pub fn with_key_value(mut self, backend: Arc<dyn KeyValueBackend>) -> Self {
        self.key_value = Some(backend);
        self
    }

    /// Sets (or, with `None`, removes) the storage behind `wasi:keyvalue` for the
    /// instances this engine value creates from now on.
    pub fn set_key_value(&mut self, backend: Option<Arc<dyn KeyValueBackend>>) {
        self.key_value = backend;
    }

    /// Checks that `bytes` are a component exporting the HTTP handler with imports the
    /// platform provides, compiles it and stores its machine code in the cache.
    /// Blocking (compilation): call it from a blocking thread.
    pub fn compile(&self, hash: &str, bytes: &[u8]) -> Result<CompiledComponent, WasmError> {
        check_header(bytes)?;
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| WasmError::Invalid(format!("{:#}", e)))?;
        let compiled = self.link(&component)?;
        let serialized = component
            .serialize()
            .map_err(|e| WasmError::Invalid(format!("{e:#}")))?;
        let path = self.cache_path(hash);
        write_atomically(&path, &serialized)?;
        Ok(compiled)
    }

    /// Loads the component's machine code from the cache, or compiles `bytes()` when the
    /// cache has no entry for this engine. Blocking: call it from a blocking thread.
    pub fn load(
        &self,
        hash: &str,
        bytes: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Result<(CompiledComponent, LoadSource), WasmError> {
        let path = self.cache_path(hash);
        if path.exists() {
            // SAFETY: the file was written by `compile` through an atomic rename into the
            // platform's private data directory, for this exact engine configuration
            // (the engine fingerprint is part of the name).
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize_file(&self.engine, &path) };
            match loaded {
                Ok(component) => return Ok((self.link(&component)?, LoadSource::Cache)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "unusable compiled-code cache entry; recompiling");
                }
            }
        }
        let bytes = bytes().ok_or_else(|| WasmError::Cache {
            path: path.display().to_string(),
            message: "no cached code and the artifact is missing from the store".into(),
        })?;
        Ok((self.compile(hash, &bytes)?, LoadSource::Compiled))
    }

    /// Whether compiled code for `hash` is in the cache.
    pub fn is_cached(&self, hash: &str) -> bool {
        self.cache_path(hash).exists()
    }

    fn link(&self, component: &Component) -> Result<CompiledComponent, WasmError> {
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| WasmError::UnsatisfiedImport(format!("{e:#}")))?;
        let pre = ProxyPre::new(instance_pre).map_err(|_| WasmError::NoHandler {
            exports: export_names(&self.engine, component),
        })?;
        Ok(CompiledComponent { pre })
    }

    fn cache_path(&self, hash: &str) -> PathBuf {
        self.cache_dir
            .join(format!("{hash}-{}.cwasm", self.engine_fingerprint))
    }
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        // Only the last clone stops the ticker: the engine is shared by the clones.
        if Arc::strong_count(&self.ticker_stop) == 2 {
            self.ticker_stop.store(true, Ordering::Relaxed);
        }
    }
}

fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    // A plain thread: ticking must go on even when every tokio worker is busy
    // running guest code, which is exactly when the ticks are needed.
    std::thread::Builder::new()
        .name("gureum-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .expect("spawning the epoch thread");
}

fn check_header(bytes: &[u8]) -> Result<(), WasmError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(WasmError::NotWasm);
    }
    // Core modules carry version 1 in the layer/version word; components carry 0x0d.
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(WasmError::CoreModule);
    }
    Ok(())
}

fn export_names(engine: &Engine, component: &Component) -> String {
    let names: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WasmError> {
    let cache_error = |e: std::io::Error| WasmError::Cache {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    // Unique per process and call: two deploys of the same artifact may compile at once.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, Ordering::Relaxed);
    let temporary = path.with_extension(format!("tmp{}-{unique}", std::process::id()));
    std::fs::write(&temporary, bytes).map_err(cache_error)?;
    std::fs::rename(&temporary, path).map_err(cache_error)
}
