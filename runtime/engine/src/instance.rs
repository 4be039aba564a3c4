//! One instantiation of a module version for one actor: a wasmtime `Store` and the
//! component's exports. Every guest call goes through [`guest_call!`], which runs
//! it under the actor's deadline and memory cap and turns a trap into a typed
//! [`CallError`]. After any trap the instance is poisoned and must be replaced.

use crate::epoch::EpochTicker;
use crate::wit;
use crate::{
    ActorCtx, ActorHost, ActorLimits, Bindings, BindingsPre, CpuShare, EPOCH_TICK, Effects, Engine,
    GuestClock, GuestMetrics, StderrTail,
};
use anthill_core::{Address, CallChain, CallError, Sender};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Store, UpdateDeadline};

/// A version compiled and linked, ready to instantiate.
pub struct LoadedVersion {
    /// The module version number (1, 2, ...).
    pub version: u32,
    /// The component's sha256, hex.
    pub sha256: String,
    /// The pre-linked component.
    pub pre: BindingsPre<ActorCtx>,
}

/// One actor's live instance.
pub struct Instance {
    store: Store<ActorCtx>,
    bindings: Bindings,
    /// The version it runs.
    pub version: Arc<LoadedVersion>,
    clock: Arc<GuestClock>,
    stderr: StderrTail,
    metrics: GuestMetrics,
    address: Address,
    deadline: Duration,
    poisoned: bool,
    /// Keeps the epoch advancing while a call of this instance is in flight.
    ticker: EpochTicker,
}

/// The guest ran past its deadline while outside wasm (e.g. in a WASI sleep).
struct Expired;

/// Runs a guest future, also stopping it if guest time runs out while no wasm
/// is executing (epoch interruption only fires inside wasm).
async fn watched<R>(
    clock: &GuestClock,
    fut: impl Future<Output = wasmtime::Result<R>>,
) -> Result<wasmtime::Result<R>, Expired> {
    tokio::pin!(fut);
    // Most guest calls finish in their first poll (no host wait, no yield): no
    // need to arm a timer for them.
    if let std::task::Poll::Ready(r) = futures::poll!(&mut fut) {
        return Ok(r);
    }
    loop {
        let wait = clock.remaining().max(Duration::from_millis(5)) + EPOCH_TICK;
        tokio::select! {
            biased;
            r = &mut fut => return Ok(r),
            _ = tokio::time::sleep(wait) => {
                if clock.check_expired() {
                    return Err(Expired);
                }
            }
        }
    }
}

/// Calls a guest export under the deadline; evaluates to `Result<T, CallError>`.
macro_rules! guest_call {
    ($inst:ident, |$bindings:ident, $store:ident| $call:expr) => {{
        $inst.begin();
        let _in_flight = $inst.ticker.in_flight();
        let started = Instant::now();
        let clock = $inst.clock.clone();
        let $bindings = &$inst.bindings;
        let $store = &mut $inst.store;
        let outcome = watched(&clock, $call).await;
        $inst.finish(outcome, started)
    }};
}

/// The resource-table size, if `error` is a guest's WASI call refused because
/// its table is full (wasmtime reports it as a trap whose text lost the cause).
fn handles_exhausted(error: &wasmtime::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<wasmtime::component::ResourceTableError>(),
            Some(wasmtime::component::ResourceTableError::Full)
        ) || cause
            .to_string()
            .contains("resource table has no free keys")
    })
}

impl Instance {
    /// Instantiates `version` for `address` (its imports served by `host`)
    /// and calls `init(key)`.
    pub async fn start(
        engine: &Engine,
        host: Arc<dyn ActorHost>,
        version: Arc<LoadedVersion>,
        address: &Address,
        limits: ActorLimits,
        metrics: GuestMetrics,
        share: CpuShare,
    ) -> Result<Instance, CallError> {
        let clock = Arc::new(GuestClock::new());
        let stderr = StderrTail::default();
        let deadline = limits.deadline;
        let ctx = ActorCtx::new(
            host,
            address.clone(),
            version.version,
            limits,
            clock.clone(),
            stderr.clone(),
            share,
        );
        let mut store = Store::new(engine.wasmtime(), ctx);
        store
            .data_mut()
            .memory
            .report_to(metrics.memory_bytes.clone());
        store.limiter(|ctx| &mut ctx.memory);
        store.epoch_deadline_callback(|cx| {
            let data = cx.data();
            if data.clock.check_expired() {
                Ok(UpdateDeadline::Interrupt)
            } else if !data.share.held() && data.clock.used() >= EPOCH_TICK {
                // A long call: from here on it runs only while it holds its
                // module's (and tenant's) share, waiting for it off the CPU.
                let acquire = data.share.acquire(data.clock.clone());
                Ok(UpdateDeadline::YieldCustom(1, Box::pin(acquire)))
            } else {
                // Let other tasks run while a long guest call is in progress,
                // through tokio's own yield: it defers this task until the
                // worker has polled the I/O driver, so sockets (admin API,
                // players) are served every tick instead of every 61 polls of
                // 10 ms guest slices.
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        let ticker = engine.ticker().clone();
        let in_flight = ticker.in_flight();
        clock.begin(deadline);
        store.set_epoch_deadline(1);
        let instantiated = watched(&clock, version.pre.instantiate_async(&mut store)).await;
        metrics.guest_seconds.inc_by(clock.used().as_secs_f64());
        clock.end();
        drop(in_flight);
        store.data_mut().share.release();
        let bindings = match instantiated {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                let text = format!("{e:#}");
                // Capacity, not a bug: the pool is full or the kernel refused
                // more mappings. The sender may retry later.
                if text.contains("Cannot allocate memory")
                    || text.contains("maximum concurrent")
                    || text.contains("limit of")
                {
                    return Err(CallError::Overloaded(format!(
                        "no capacity to activate {address}: {text} (raise limits.max_actors, \
                         or vm.max_map_count, or shorten idle timeouts)"
                    )));
                }
                return Err(CallError::Internal(format!(
                    "cannot instantiate {address} (version {}): {text}",
                    version.version
                )));
            }
            Err(Expired) => {
                return Err(CallError::DeadlineExceeded {
                    actor: address.to_string(),
                    ms: deadline.as_millis() as u64,
                });
            }
        };
        let mut inst = Instance {
            store,
            bindings,
            version,
            clock,
            stderr,
            metrics,
            address: address.clone(),
            deadline,
            poisoned: false,
            ticker,
        };
        let key = address.key.clone();
        guest_call!(inst, |b, s| b.anthill_module_actor().call_init(s, &key))?
            .map_err(|e| CallError::Rejected(format!("init of {address} failed: {e}")))?;
        Ok(inst)
    }

    /// Whether a trap left it unusable: it must be replaced.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    fn begin(&mut self) {
        self.store.data_mut().memory.take_denied();
        self.clock.begin(self.deadline);
        // The first epoch tick runs the callback, which checks the clock.
        self.store.set_epoch_deadline(1);
    }

    fn finish<T>(
        &mut self,
        outcome: Result<wasmtime::Result<T>, Expired>,
        started: Instant,
    ) -> Result<T, CallError> {
        self.metrics
            .guest_seconds
            .inc_by(self.clock.used().as_secs_f64());
        self.clock.end();
        self.store.data_mut().share.release();
        self.metrics.calls.inc();
        self.metrics
            .call_seconds
            .observe(started.elapsed().as_secs_f64());
        match outcome {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.classify(Some(e))),
            Err(Expired) => Err(self.classify(None)),
        }
    }

    /// Turns a failed guest call into the error the caller sees, and poisons the
    /// instance: wasmtime refuses to re-enter a component after a trap.
    fn classify(&mut self, error: Option<wasmtime::Error>) -> CallError {
        self.poisoned = true;
        let actor = self.address.to_string();
        let err = if self.clock.tripped() {
            self.metrics.interrupts.inc();
            CallError::DeadlineExceeded {
                actor,
                ms: self.deadline.as_millis() as u64,
            }
        } else if error.as_ref().is_some_and(handles_exhausted) {
            let limit = self.store.data().limits.max_host_handles;
            CallError::LimitReached {
                actor,
                limit: "limits.max_host_handles",
                detail: format!(
                    "it holds {limit} WASI resources (pollables, streams…) and asked for another; \
                     drop the ones it no longer needs"
                ),
            }
        } else if self.store.data_mut().memory.take_denied() {
            self.metrics.out_of_memory.inc();
            CallError::OutOfMemory {
                actor,
                mb: (self.store.data().memory.cap() >> 20) as u64,
            }
        } else {
            self.metrics.traps.inc();
            let trap = match &error {
                Some(e) => match e.downcast_ref::<wasmtime::Trap>() {
                    Some(t) => t.to_string(),
                    None => format!("{e}"),
                },
                None => "stopped".to_owned(),
            };
            let printed = self.stderr.take();
            let printed = printed.trim();
            let detail = if printed.is_empty() {
                trap
            } else {
                format!("{trap}; the module printed: {printed}")
            };
            CallError::Trapped { actor, detail }
        };
        self.metrics.call_error(err.kind());
        tracing::warn!(actor = %self.address, version = self.version.version, error = %err, "guest call failed; the instance will be replaced");
        err
    }

    /// Effects the last call asked for (`set-tick-rate`, ...).
    pub fn take_effects(&mut self) -> Effects {
        std::mem::take(&mut self.store.data_mut().effects)
    }

    /// `on-message`; `chain` is who waits on this message.
    pub async fn on_message(
        &mut self,
        from: &Sender,
        payload: Vec<u8>,
        chain: CallChain,
    ) -> Result<Option<Vec<u8>>, CallError> {
        self.store.data_mut().chain = chain;
        let from = wit::sender(from);
        let from = &from;
        let r = guest_call!(self, |b, s| b
            .anthill_module_actor()
            .call_on_message(s, from, &payload));
        self.store.data_mut().chain = CallChain::default();
        let reply = r?.map_err(wit::from_guest)?;
        // A reply travels to the caller (an actor, a player, an HTTP client):
        // the same bound as what a guest may send.
        let limit = self.store.data().limits.max_message_bytes;
        if let Some(len) = reply.as_ref().map(Vec::len).filter(|&len| len > limit) {
            return Err(CallError::LimitReached {
                actor: self.address.to_string(),
                limit: "limits.max_message_bytes",
                detail: format!("its reply of {len} bytes exceeds the {limit}-byte limit"),
            });
        }
        Ok(reply)
    }

    /// `on-event`.
    pub async fn on_event(&mut self, topic: &str, event: Vec<u8>) -> Result<(), CallError> {
        guest_call!(self, |b, s| b
            .anthill_module_actor()
            .call_on_event(s, topic, &event))?
        .map_err(wit::from_guest)
    }

    /// `on-join`: an error refuses the player.
    pub async fn on_join(&mut self, player: u64) -> Result<(), CallError> {
        guest_call!(self, |b, s| b
            .anthill_module_actor()
            .call_on_join(s, player))?
        .map_err(wit::from_guest)
    }

    /// `on-leave`.
    pub async fn on_leave(&mut self, player: u64) -> Result<(), CallError> {
        guest_call!(self, |b, s| b
            .anthill_module_actor()
            .call_on_leave(s, player))
    }

    /// `on-timer`.
    pub async fn on_timer(&mut self, tag: &str) -> Result<(), CallError> {
        guest_call!(self, |b, s| b.anthill_module_actor().call_on_timer(s, tag))
    }

    /// `on-tick`.
    pub async fn on_tick(&mut self, now_ms: u64) -> Result<(), CallError> {
        guest_call!(self, |b, s| b
            .anthill_module_actor()
            .call_on_tick(s, now_ms))
    }

    /// The actor's state, refused when over `limits.max_snapshot_bytes` (the
    /// instance stays usable: the guest did nothing wrong by its own rules,
    /// and the previous stored snapshot stays).
    pub async fn snapshot(&mut self) -> Result<Vec<u8>, CallError> {
        let state = guest_call!(self, |b, s| b.anthill_module_actor().call_snapshot(s))?;
        let limit = self.store.data().limits.max_snapshot_bytes;
        if state.len() > limit {
            self.metrics.call_error("limit-reached");
            return Err(CallError::LimitReached {
                actor: self.address.to_string(),
                limit: "limits.max_snapshot_bytes",
                detail: format!(
                    "its snapshot of {} bytes exceeds the {limit}-byte limit; the previous snapshot stays",
                    state.len()
                ),
            });
        }
        Ok(state)
    }

    /// `restore`: state written by `from_version`.
    pub async fn restore(&mut self, state: Vec<u8>, from_version: u32) -> Result<(), CallError> {
        let address = self.address.clone();
        guest_call!(self, |b, s| b.anthill_module_actor().call_restore(
            s,
            &state,
            from_version
        ))?
        .map_err(|e| {
            CallError::Rejected(format!(
                "restore of {address} from version {from_version} failed: {e}"
            ))
        })
    }
}
