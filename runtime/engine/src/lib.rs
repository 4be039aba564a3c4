//! # anthill-engine: components compiled, validated and run under limits
//!
//! Owns the wasmtime engine every actor of a node runs on, the linker that
//! gives a component exactly the imports it may have (`anthill:module/host`
//! and WASI with nothing granted), the compile cache, upload validation, the
//! host imports, and [`Instance`]: one actor's store, whose every guest call
//! runs under its deadline, memory cap and CPU share.
//!
//! The host imports reach the rest of the node only through [`ActorHost`].
//! Must not know: the node, the router, sockets, sled. Its tests run the
//! sample and fixture components against a fake host.
//!
//! Every cap set here names the attack it stops:
//!
//! - epoch interruption ([`EPOCH_TICK`]) stops a guest that never returns;
//! - the pooling allocator's per-slot memory size bounds what one actor can map,
//!   and its slot counts bound how many actors the node holds at once;
//! - per-actor caps below those (deadline, memory) come from [`ActorLimits`].

#![warn(missing_docs, unreachable_pub)]

mod actor_host;
mod bindings;
mod cache;
mod clock;
mod ctx;
mod epoch;
mod imports;
mod instance;
mod metrics;
mod output;
mod share;
mod validate;
mod wit;

pub use actor_host::ActorHost;
pub use bindings::anthill::module::types;
pub use bindings::{Bindings, BindingsPre};
pub use clock::GuestClock;
pub use ctx::{ActorCtx, ActorLimits, Effects};
pub use instance::{Instance, LoadedVersion};
pub use metrics::GuestMetrics;
pub use output::{GuestLine, MAX_LINE, OutputStream, StderrTail};
pub use share::CpuShare;
pub use validate::{ACTOR_INTERFACE, ComponentError, component_header};

use anthill_core::Limits;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasmtime::component::HasSelf;
use wasmtime::component::{Component, Linker};
use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the engine's epoch advances: the resolution of guest deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Failure to build the engine from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime refused the configuration derived from the limits.
    #[error(
        "cannot configure the wasm engine: {0} (check limits.max_actors and limits.max_memory_mb)"
    )]
    Config(String),
}

/// A compiled component and how it was obtained.
pub struct Compiled {
    /// The compiled component.
    pub component: Component,
    /// Loaded from the precompiled cache rather than compiled now.
    pub cached: bool,
    /// How long compiling (or loading) took.
    pub elapsed: Duration,
}

/// The node's wasmtime engine, linker and compile cache.
pub struct Engine {
    wasm: wasmtime::Engine,
    linker: Linker<ActorCtx>,
    cache: cache::ComponentCache,
    ticker: epoch::EpochTicker,
}

impl Engine {
    /// Builds the engine: async support, epoch interruption, the pooling allocator
    /// sized from `limits`, and a linker with the host imports and locked-down WASI.
    pub fn new(limits: &Limits, cache_dir: PathBuf) -> Result<Engine, EngineError> {
        let slots = limits.max_actors;
        let max_memory = u64::from(limits.max_memory_mb) << 20;

        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_memories(slots)
            .total_tables(slots.saturating_mul(4))
            // A store keeps its async stack between calls: one per live actor.
            .total_stacks(slots)
            .total_core_instances(slots.saturating_mul(8))
            .max_memory_size(max_memory as usize)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_core_instances_per_component(64)
            .table_elements(100_000)
            .max_component_instance_size(4 << 20)
            .max_core_instance_size(4 << 20)
            // Keep a little of each freed slot mapped so reactivation is cheap,
            // but return the rest: a trapped 64 MiB actor must not pin 64 MiB.
            .linear_memory_keep_resident(256 << 10)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(64 << 10)
            // Reset only the pages a guest touched (Linux ≥ 6.7), so a reused
            // slot neither faults them in again nor pays a TLB shootdown.
            // Decommits are not batched: a trapped 64 MiB actor returns its
            // memory at once.
            .pagemap_scan(wasmtime::Enabled::Auto);

        let mut cfg = wasmtime::Config::new();
        cfg.wasm_component_model(true)
            .epoch_interruption(true)
            // Slots are as large as the largest cap: no guard-page tricks, so
            // 20k slots fit the address space; bounds checks are explicit.
            .memory_reservation(max_memory)
            .memory_guard_size(64 << 10)
            .memory_reservation_for_growth(0)
            // Copy initial data instead of mapping a copy-on-write image: two
            // fewer kernel mappings per actor (see limits.max_actors), at the
            // cost of a memcpy of the data segment (kilobytes for Rust guests).
            .memory_init_cow(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

        let wasm =
            wasmtime::Engine::new(&cfg).map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let mut linker = Linker::new(&wasm);
        add_to_linker(&mut linker).map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let cache = cache::ComponentCache::new(cache_dir, &wasm);
        let ticker = epoch::EpochTicker::start(&wasm);
        Ok(Engine {
            wasm,
            linker,
            cache,
            ticker,
        })
    }

    /// The thread that advances the epoch while guest calls are in flight.
    pub(crate) fn ticker(&self) -> &epoch::EpochTicker {
        &self.ticker
    }

    /// The wasmtime engine, for stores and components.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.wasm
    }

    /// Checks the header, then compiles `bytes` (or loads the precompiled artifact
    /// keyed by `sha256` + engine configuration). Blocking: call from
    /// `spawn_blocking`.
    pub fn compile(&self, sha256: &str, bytes: &[u8]) -> Result<Compiled, ComponentError> {
        component_header(bytes)?;
        let started = Instant::now();
        if let Some(component) = self.cache.load(&self.wasm, sha256) {
            return Ok(Compiled {
                component,
                cached: true,
                elapsed: started.elapsed(),
            });
        }
        let component = Component::new(&self.wasm, bytes)
            .map_err(|e| ComponentError::Invalid(format!("{e:#}")))?;
        self.cache.store(sha256, &component);
        Ok(Compiled {
            component,
            cached: false,
            elapsed: started.elapsed(),
        })
    }

    /// Checks that a compiled component targets the `anthill:module` world and that
    /// this host provides all its imports, and pre-links it for fast instantiation.
    pub fn prepare(&self, component: &Component) -> Result<BindingsPre<ActorCtx>, ComponentError> {
        validate::check_exports(&self.wasm, component)?;
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| ComponentError::WrongWorld(format!("{e:#}")))?;
        BindingsPre::new(pre).map_err(|e| ComponentError::WrongWorld(format!("{e:#}")))
    }

    /// Where precompiled components are kept.
    pub fn cache_dir(&self) -> &std::path::Path {
        self.cache.dir()
    }

    /// Deletes the precompiled artifacts of a component no module uses any more.
    pub fn forget_compiled(&self, sha256: &str) {
        self.cache.forget(sha256);
    }
}

/// Adds WASI (locked down) and the Anthill host interface to a linker.
fn add_to_linker(linker: &mut Linker<ActorCtx>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    Bindings::add_to_linker::<ActorCtx, HasSelf<ActorCtx>>(linker, |ctx| ctx)?;
    Ok(())
}
