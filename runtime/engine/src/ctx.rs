//! [`ActorCtx`], the data of one actor's wasmtime `Store`: its WASI context
//! (nothing granted), its memory cap, its deadline clock, who it is, and the
//! effects its last call asked for.

use super::clock::GuestClock;
use super::output::{LineStream, StderrTail, Writer};
use super::share::CpuShare;
use crate::ActorHost;
use anthill_core::{Address, CallChain, SyncedState};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Per-actor caps, from the module's settings.
#[derive(Debug, Clone)]
pub struct ActorLimits {
    /// Guest time one call may use.
    pub deadline: Duration,
    /// Linear memory the actor may grow to, in bytes.
    pub memory_bytes: usize,
    /// Largest payload the actor may hand to `send`, `call`, `publish`, `push`.
    pub max_message_bytes: usize,
    /// Longest timeout a guest `call` may ask for.
    pub max_call_timeout: Duration,
    /// Largest snapshot the actor may export.
    pub max_snapshot_bytes: usize,
    /// WASI resources the actor may hold at once (its resource table's size).
    pub max_host_handles: usize,
}

/// What a guest call asked the host to do once it returns.
#[derive(Debug, Default)]
pub struct Effects {
    /// `set-tick-rate` was called with this rate.
    pub tick_hz: Option<u32>,
    /// `set-synced-state` (or its packed form) was called: the room's new
    /// state (the last call wins).
    pub synced_state: Option<SyncedState>,
}

/// The store data of one actor.
pub struct ActorCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryCap,
    pub(crate) clock: Arc<GuestClock>,
    pub(crate) host: Arc<dyn ActorHost>,
    pub(crate) address: Address,
    /// The module version it runs.
    pub(crate) version: u32,
    /// The call chain of the message being handled (for cycle detection).
    pub(crate) chain: CallChain,
    pub(crate) effects: Effects,
    pub(crate) limits: ActorLimits,
    /// Permits to run guest code (see [`CpuShare`]).
    pub(crate) share: CpuShare,
}

impl ActorCtx {
    /// An actor's store data: `host` serves its imports and takes its output
    /// lines (tagged with `version`); `stderr` keeps the last bytes of stderr.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        host: Arc<dyn ActorHost>,
        address: Address,
        version: u32,
        limits: ActorLimits,
        clock: Arc<GuestClock>,
        stderr: StderrTail,
        share: CpuShare,
    ) -> ActorCtx {
        // Nothing preopened, no env, no args, no sockets, no name lookups:
        // everything a module does to the world goes through `host`.
        let writer = Writer::new(host.clone(), address.clone(), version);
        let wasi = WasiCtx::builder()
            .stdout(LineStream::stdout(writer.clone()))
            .stderr(LineStream::stderr(writer, stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        // Every WASI resource (pollable, stream, ...) lives in this table, in
        // host memory outside the guest's cap: its size is the bound.
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_host_handles);
        ActorCtx {
            wasi,
            table,
            memory: MemoryCap::new(limits.memory_bytes),
            clock,
            host,
            address,
            version,
            chain: CallChain::default(),
            effects: Effects::default(),
            limits,
            share,
        }
    }
}

impl ActorCtx {
    /// The guest enters a host import that may wait: its time and its CPU
    /// permits are not held while it waits.
    pub(crate) fn wait_begin(&mut self) {
        self.clock.host_wait_begin();
        self.share.release();
    }

    /// The wait is over. The permits are taken again only if the guest then
    /// runs past another tick (see the epoch callback).
    pub(crate) fn wait_end(&mut self) {
        self.clock.host_wait_end();
    }
}

impl WasiView for ActorCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps an actor's linear memory and tables, and remembers a refusal so the
/// resulting trap is reported as "out of memory", not as a mystery. What it
/// granted is added to its module's memory gauge, and taken off again when
/// the store (and so the instance) is dropped.
pub(crate) struct MemoryCap {
    cap: usize,
    denied: bool,
    held: usize,
    gauge: Option<prometheus::IntGauge>,
}

/// Table elements one actor may grow to: stops unbounded table growth.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryCap {
    fn new(cap: usize) -> MemoryCap {
        MemoryCap {
            cap,
            denied: false,
            held: 0,
            gauge: None,
        }
    }

    /// From now on, memory granted counts on `gauge`.
    pub(crate) fn report_to(&mut self, gauge: prometheus::IntGauge) {
        gauge.add(self.held as i64);
        self.gauge = Some(gauge);
    }

    /// Whether a growth was refused since the last reset.
    pub(crate) fn take_denied(&mut self) -> bool {
        std::mem::take(&mut self.denied)
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }
}

impl Drop for MemoryCap {
    fn drop(&mut self) {
        if let Some(g) = &self.gauge {
            g.sub(self.held as i64);
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.denied = true;
            return Ok(false);
        }
        let grown = desired.saturating_sub(current);
        self.held += grown;
        if let Some(g) = &self.gauge {
            g.add(grown as i64);
        }
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
