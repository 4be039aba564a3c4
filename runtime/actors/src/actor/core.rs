//! An actor's state and what a unit of work does to it: the instance and
//! its version, handling an envelope, a tick, a snapshot, a swap. It sits
//! behind a lock that two kinds of task take: the actor's own task (task.rs),
//! which drains the mailbox and runs its timers, and a caller outside any
//! guest that finds the actor idle and runs its call itself (inline.rs),
//! saving the two task wake-ups of a trip through the mailbox.

use super::ActorStatus;
use super::mailbox::{Envelope, Message, SwapReport};
use crate::Runtime;
use crate::module::{Durability, LoadedVersion, Module};
use crate::router::Admission;
use crate::runtime::stored;
use crate::tenants::ActorReservation;
use anthill_core::Address;
use anthill_core::CallError;
use anthill_core::now_ms;
use anthill_engine::ActorLimits;
use anthill_engine::Instance;
use anthill_store::Snapshot;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub(crate) struct ActorCore {
    node: Arc<Runtime>,
    module: Arc<Module>,
    pub(crate) address: Address,
    status: Arc<ActorStatus>,
    instance: Option<Instance>,
    version: Arc<LoadedVersion>,
    /// State changed since the last snapshot.
    dirty: bool,
    admission: Arc<Admission>,
    /// This actor counted against its tenant, until the task ends.
    _reservation: Option<ActorReservation>,
    /// Size of the snapshot last stored (or restored): what a new one grows
    /// the tenant's storage by is the difference.
    stored_len: usize,
    /// The eager activation failed by the module's fault: the first message
    /// is answered with this instead of a second `init`.
    failed_activation: Option<CallError>,
    /// A tick rate a guest call asked for (0: stop ticking), not yet applied
    /// by the actor's task, which owns the timer.
    pub(crate) tick_change: Option<u32>,
    /// The actor's task has ended (passivated, stopped, evicted): nothing
    /// runs here any more, and a caller holding an old handle goes through
    /// the router again.
    pub(crate) closed: bool,
}

impl ActorCore {
    pub(crate) fn new(
        node: Arc<Runtime>,
        module: Arc<Module>,
        status: Arc<ActorStatus>,
        admission: Arc<Admission>,
        reservation: Option<ActorReservation>,
    ) -> ActorCore {
        let version = module.version_for(&status.key);
        ActorCore {
            address: Address::new(module.name.clone(), status.key.clone()),
            node,
            module,
            status,
            instance: None,
            version,
            dirty: false,
            admission,
            _reservation: reservation,
            stored_len: 0,
            failed_activation: None,
            tick_change: None,
            closed: false,
        }
    }

    /// The eager activation: instantiated before the first message, so that
    /// message does not pay for it. This activation is the first message's:
    /// if the module failed it (a trap, a loop to the deadline), that message
    /// gets this error rather than running `init` a second time; an overload
    /// is retried.
    pub(crate) async fn activate(&mut self) {
        if let Err(e) = self.ensure_instance().await
            && e.is_fault()
        {
            self.failed_activation = Some(e);
        }
    }

    /// Ends the actor here: no more work runs on this core, and the instance
    /// (with its pool slot) is released.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        drop(self.instance.take());
    }

    /// Forgets the live state without a snapshot (an eviction).
    pub(crate) fn discard(&mut self) {
        self.dirty = false;
        self.instance = None;
    }

    /// Feeds the circuit breaker: faults are the module's failures (traps,
    /// deadlines, memory, failed activation), not its deliberate refusals.
    fn record_outcome<T>(&self, outcome: &Result<T, CallError>) {
        let fault = outcome.as_ref().err().is_some_and(CallError::is_fault);
        if self.admission.record(fault) {
            self.module.metrics.circuit_opens.inc();
            tracing::warn!(actor = %self.address, "circuit opened: refusing messages until a probe succeeds");
        }
    }

    fn limits(&self) -> ActorLimits {
        let s = self.module.settings();
        ActorLimits {
            deadline: Duration::from_millis(s.deadline_ms),
            memory_bytes: (s.memory_mb as usize) << 20,
            max_message_bytes: self.node.config.limits.max_message_bytes,
            max_call_timeout: Duration::from_millis(self.node.config.limits.max_call_timeout_ms),
            max_snapshot_bytes: self.node.config.limits.max_snapshot_bytes,
            max_host_handles: self.node.config.limits.max_host_handles,
        }
    }

    /// The live instance, (re)creating it after a trap or on first use, restored
    /// from the last stored snapshot.
    async fn ensure_instance(&mut self) -> Result<&mut Instance, CallError> {
        if self.instance.as_ref().is_some_and(|i| !i.is_poisoned()) {
            return Ok(self.instance.as_mut().expect("checked above"));
        }
        if let Some(e) = self.failed_activation.take() {
            return Err(e);
        }
        // Free the poisoned store's pool slot before taking another.
        self.instance = None;
        let version = self.version.clone();
        let started = self.start_instance(version.clone()).await;
        // Failing activations feed the module's breaker too: fresh keys must
        // not get around the per-actor one.
        self.module.record_activation(&started);
        let mut inst = started?;
        let snap = self
            .node
            .store
            .get_snapshot(&self.address.module, &self.address.key)
            .map_err(|e| {
                CallError::Internal(format!(
                    "{e}; refusing to activate {} on damaged state (inspect or delete the snapshot to start fresh)",
                    self.address
                ))
            })?;
        if let Some(snap) = snap {
            self.stored_len = snap.state.len();
            inst.restore(snap.state, snap.version).await?;
        }
        self.status
            .version
            .store(version.version, Ordering::Relaxed);
        self.dirty = false;
        self.apply_effects_of(&mut inst);
        self.instance = Some(inst);
        Ok(self.instance.as_mut().expect("just set"))
    }

    /// Instantiates `version`. When the pool is full, asks the reaper for room
    /// and tries again for up to half a second before giving up (overloaded).
    fn start_instance(
        &self,
        version: Arc<LoadedVersion>,
    ) -> impl Future<Output = Result<Instance, CallError>> + Send + 'static {
        // Owned copies: the future must not borrow the (non-Sync) task.
        let (node, address) = (self.node.clone(), self.address.clone());
        let (limits, metrics) = (self.limits(), self.module.metrics.clone());
        let module = self.module.clone();
        async move {
            let mut tries = 0;
            loop {
                let started = Instance::start(
                    &node.engine,
                    node.host.clone(),
                    version.clone(),
                    &address,
                    limits.clone(),
                    metrics.guest.clone(),
                    module.cpu_share(),
                )
                .await;
                match started {
                    Err(CallError::Overloaded(_)) if tries < 10 => {
                        tries += 1;
                        node.capacity_wanted.notify_one();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    other => return other,
                }
            }
        }
    }

    fn apply_effects_of(&mut self, inst: &mut Instance) {
        let effects = inst.take_effects();
        if let Some(state) = effects.synced_state {
            self.node.rooms().publish(&self.address, state);
        }
        if let Some(hz) = effects.tick_hz {
            self.tick_change = Some(hz);
        }
    }

    fn apply_effects(&mut self) {
        if let Some(mut inst) = self.instance.take() {
            self.apply_effects_of(&mut inst);
            self.instance = Some(inst);
        }
    }

    pub(crate) async fn handle(&mut self, env: Envelope) {
        self.status.handled.fetch_add(1, Ordering::Relaxed);
        self.status
            .last_active_ms
            .store(now_ms(), Ordering::Relaxed);
        let span = self.span_for(&env);
        self.handle_inner(env).instrument(span).await;
        self.drop_poisoned();
    }

    /// The span of handling `env`: a child of the span it was sent from.
    fn span_for(&self, env: &Envelope) -> tracing::Span {
        use anthill_core::trace::TARGET;
        match env {
            Envelope::Message(m) => {
                let span = tracing::trace_span!(
                    target: TARGET,
                    "actor.message",
                    actor = %self.address,
                    from = ?m.from,
                    call = m.reply.is_some(),
                    version = self.status.version.load(Ordering::Relaxed),
                );
                m.trace.adopt(&span);
                span
            }
            Envelope::Event { topic, trace, .. } => {
                let span = tracing::trace_span!(
                    target: TARGET,
                    "actor.event",
                    actor = %self.address,
                    topic = %topic,
                );
                trace.adopt(&span);
                span
            }
            Envelope::Join { player, .. } => {
                tracing::trace_span!(target: TARGET, "actor.join", actor = %self.address, player)
            }
            Envelope::Leave { player } => {
                tracing::trace_span!(target: TARGET, "actor.leave", actor = %self.address, player)
            }
            Envelope::Timer { tag } => {
                tracing::trace_span!(target: TARGET, "actor.timer", actor = %self.address, tag = %tag)
            }
            Envelope::Wake => {
                tracing::trace_span!(target: TARGET, "actor.wake", actor = %self.address)
            }
        }
    }

    /// A trapped instance cannot be entered again: free its memory (up to the
    /// cap) now rather than at the next message.
    fn drop_poisoned(&mut self) {
        if self.instance.as_ref().is_some_and(|i| i.is_poisoned()) {
            self.instance = None;
        }
    }

    async fn handle_inner(&mut self, env: Envelope) {
        match env {
            Envelope::Message(m) => self.handle_message(m).await,
            Envelope::Event {
                topic, event, ack, ..
            } => {
                let outcome = match self.ensure_instance().await {
                    Ok(inst) => inst.on_event(&topic, event).await,
                    Err(e) => Err(e),
                };
                let outcome = self.after_call(outcome).await;
                self.record_outcome(&outcome);
                self.drop_poisoned();
                match ack {
                    Some(ack) => {
                        let _ = ack.send(outcome);
                    }
                    None => {
                        if let Err(e) = outcome {
                            tracing::warn!(actor = %self.address, %topic, error = %e, "at-most-once event failed");
                        }
                    }
                }
            }
            Envelope::Join { player, reply } => {
                let outcome = match self.ensure_instance().await {
                    Ok(inst) => inst.on_join(player).await,
                    Err(e) => Err(e),
                };
                let outcome = self.after_call(outcome).await;
                self.record_outcome(&outcome);
                self.drop_poisoned();
                let _ = reply.send(outcome);
            }
            Envelope::Leave { player } => {
                let outcome = match self.ensure_instance().await {
                    Ok(inst) => inst.on_leave(player).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = self.after_call(outcome).await {
                    tracing::warn!(actor = %self.address, player, error = %e, "on-leave failed");
                }
            }
            Envelope::Timer { tag } => {
                let outcome = match self.ensure_instance().await {
                    Ok(inst) => inst.on_timer(&tag).await,
                    Err(e) => Err(e),
                };
                self.after_call(outcome.map(|_| ())).await.ok();
            }
            // Activation already instantiated it (or recorded why not).
            Envelope::Wake => {}
        }
    }

    async fn handle_message(&mut self, m: Message) {
        let Message {
            from,
            payload,
            reply,
            chain,
            trace: _,
        } = m;
        let outcome = match self.ensure_instance().await {
            Ok(inst) => inst.on_message(&from, payload, chain).await,
            Err(e) => Err(e),
        };
        let outcome = match self.after_call(outcome).await {
            Ok(r) => Ok(r.unwrap_or_default()),
            Err(e) => Err(e),
        };
        self.record_outcome(&outcome);
        // Before the caller hears of a trap, its memory is already released.
        self.drop_poisoned();
        match reply {
            Some(reply) => {
                let _ = reply.send(outcome);
            }
            None => {
                if let Err(e) = outcome {
                    tracing::debug!(actor = %self.address, error = %e, "a sent message failed");
                }
            }
        }
    }

    /// Bookkeeping after a guest call: effects, dirtiness, and for
    /// `every-message` durability the snapshot, committed before the outcome is
    /// released.
    async fn after_call<T>(&mut self, outcome: Result<T, CallError>) -> Result<T, CallError> {
        let trapped = matches!(
            outcome,
            Err(CallError::Trapped { .. }
                | CallError::DeadlineExceeded { .. }
                | CallError::OutOfMemory { .. })
        );
        if trapped || self.instance.is_none() {
            return outcome;
        }
        self.apply_effects();
        self.dirty = true;
        if self.module.settings().durability == Durability::EveryMessage {
            self.persist().await?;
        }
        outcome
    }

    pub(crate) async fn tick(&mut self) {
        let Some(inst) = self.instance.as_mut().filter(|i| !i.is_poisoned()) else {
            return;
        };
        let started = Instant::now();
        let outcome = inst.on_tick(now_ms()).await;
        let _ = self.after_call(outcome).await;
        self.module
            .metrics
            .tick_seconds
            .observe(started.elapsed().as_secs_f64());
        self.drop_poisoned();
    }

    /// Writes the actor's snapshot to the store (and, for `every-message`
    /// durability, to disk before returning).
    async fn persist(&mut self) -> Result<(), CallError> {
        let Some(inst) = self.instance.as_mut().filter(|i| !i.is_poisoned()) else {
            return Ok(());
        };
        let state = match inst.snapshot().await {
            Ok(state) => state,
            Err(e @ CallError::LimitReached { .. }) => {
                // Every message is acknowledged only once its state is stored:
                // this one was not, so the actor goes back to the last stored
                // snapshot rather than run ahead of it.
                if self.module.settings().durability == Durability::EveryMessage {
                    self.instance = None;
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let snap = Snapshot {
            version: inst.version.version,
            taken_at_ms: now_ms(),
            state,
        };
        let grow = snap.state.len() as i64 - self.stored_len as i64;
        if let Err(e) = self.module.tenant.check_storage(grow) {
            if self.module.settings().durability == Durability::EveryMessage {
                self.instance = None;
            }
            return Err(e);
        }
        let store = &self.node.store;
        let put = store
            .put_snapshot(&self.address.module, &self.address.key, &snap)
            .map_err(stored)?;
        self.module.charge_storage(put.grew);
        self.stored_len = snap.state.len();
        if self.module.settings().durability == Durability::EveryMessage {
            store
                .commit_snapshot(&self.address.module, &self.address.key, put.ticket)
                .await
                .map_err(stored)?;
        }
        self.dirty = false;
        self.status
            .last_snapshot_ms
            .store(snap.taken_at_ms, Ordering::Relaxed);
        self.module.metrics.snapshots.inc();
        Ok(())
    }

    /// Snapshots if anything changed; a failure is logged and the last stored
    /// snapshot stays.
    pub(crate) async fn persist_if_dirty(&mut self, when: &str) {
        if self.dirty
            && let Err(e) = self.persist().await
        {
            tracing::error!(actor = %self.address, error = %e, "{when} snapshot failed; the last stored snapshot stays");
        }
    }

    /// Moves this actor to `to`, carrying state through snapshot/restore. If
    /// `to` refuses the state and a `fallback` is given, a fresh instance
    /// restores that instead. On failure the old instance stays, untouched.
    pub(crate) async fn swap(
        &mut self,
        to: Arc<LoadedVersion>,
        fallback: Option<(Vec<u8>, u32)>,
    ) -> Result<SwapReport, CallError> {
        let started = Instant::now();
        let live = self.instance.as_ref().is_some_and(|i| !i.is_poisoned());
        if !live {
            // Nothing in memory: the next activation restores the stored
            // snapshot into the new version.
            self.instance = None;
            self.version = to.clone();
            self.status.version.store(to.version, Ordering::Relaxed);
            return Ok(SwapReport {
                stall: started.elapsed(),
                carried: None,
            });
        }
        let old = self.instance.as_mut().expect("live");
        let from_version = old.version.version;
        let state = old.snapshot().await?;
        let mut next = self.start_instance(to.clone()).await?;
        if let Err(refused) = next.restore(state.clone(), from_version).await {
            let Some((fallback_state, fallback_version)) = fallback else {
                return Err(refused);
            };
            tracing::warn!(actor = %self.address, to = to.version, error = %refused, "the target version refused the current state; restoring the pre-swap snapshot instead");
            next = self.start_instance(to.clone()).await?;
            next.restore(fallback_state, fallback_version).await?;
        }
        self.apply_effects_of(&mut next);
        self.instance = Some(next);
        self.version = to.clone();
        self.status.version.store(to.version, Ordering::Relaxed);
        self.dirty = true;
        Ok(SwapReport {
            stall: started.elapsed(),
            carried: Some((state, from_version)),
        })
    }
}
