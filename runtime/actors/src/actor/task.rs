//! The task that is an actor: it drains the mailbox, one envelope at a time,
//! with control requests (swap, stop) taken first at each message boundary,
//! and owns the actor's timers (its tick, periodic snapshots, idleness). The
//! state it works on is the actor's core (core.rs), taken under its lock for
//! each unit of work and never held while waiting.

use super::core::ActorCore;
use super::mailbox::{Control, Envelope, Message};
use super::{ActorHandle, ActorStatus};
use crate::Runtime;
use crate::module::{Kind, Module};
use crate::router::Retiring;
use anthill_core::Address;
use anthill_core::CallError;
use anthill_core::now_ms;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc};
use tokio::time::{Instant, Interval, MissedTickBehavior};

pub(crate) struct ActorTask {
    node: Arc<Runtime>,
    module: Arc<Module>,
    address: Address,
    id: u64,
    core: Arc<Mutex<ActorCore>>,
    mailbox: mpsc::Receiver<Envelope>,
    control: mpsc::UnboundedReceiver<Control>,
    status: Arc<ActorStatus>,
    tick: Option<Interval>,
}

/// How the actor loop ended.
enum Exit {
    Passivated,
    Stopped,
    Closed,
}

async fn next_tick(tick: &mut Option<Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl ActorTask {
    /// The task behind `handle`, draining the receiving ends of its channels.
    pub(crate) fn new(
        node: Arc<Runtime>,
        module: Arc<Module>,
        handle: &ActorHandle,
        mailbox: mpsc::Receiver<Envelope>,
        control: mpsc::UnboundedReceiver<Control>,
    ) -> ActorTask {
        ActorTask {
            address: Address::new(module.name.clone(), handle.status.key.clone()),
            node,
            module,
            id: handle.id,
            core: handle.core.clone(),
            mailbox,
            control,
            status: handle.status.clone(),
            tick: None,
        }
    }

    /// The core, for one unit of work (waiting for a caller running a call
    /// inline to finish).
    async fn lock(&self) -> OwnedMutexGuard<ActorCore> {
        self.core.clone().lock_owned().await
    }

    /// Applies the tick rate the last guest call asked for: the timer lives
    /// here, the request is made in the core.
    fn retick(&mut self, core: &mut ActorCore) {
        if let Some(hz) = core.tick_change.take() {
            self.tick = (hz > 0).then(|| {
                let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(hz)));
                t.set_missed_tick_behavior(MissedTickBehavior::Skip);
                t
            });
        }
    }

    /// Handles one envelope from the mailbox.
    async fn handle(&self, core: &mut ActorCore, env: Envelope) {
        core.handle(env).await;
        self.status.finished_one();
    }

    pub(crate) async fn run(mut self, predecessor: Option<Retiring>) {
        let metrics = self.module.metrics.clone();
        metrics.live_actors.inc();
        metrics.activations.inc();
        {
            // The core is held from the start: nothing runs on it inline
            // before the predecessor's last snapshot is written and restored.
            let mut core = self.lock().await;
            if let Some(p) = predecessor {
                p.wait().await;
            }
            core.activate().await;
            self.retick(&mut core);
        }
        // The activation was counted as work in flight (see `ActorStatus`).
        self.status.finished_one();

        let settings = self.module.settings();
        let idle = Duration::from_millis(settings.idle_timeout_ms);
        let passivates = settings.kind == Kind::Keyed;
        let mut snapshot_every =
            tokio::time::interval(Duration::from_millis(settings.snapshot_interval_ms.max(10)));
        snapshot_every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        snapshot_every.reset();
        // One timer for idleness, re-armed only when it fires early (messages
        // just move the status's `last_active_ms`): no timer churn per message.
        let idle_timer = tokio::time::sleep(idle);
        tokio::pin!(idle_timer);

        let exit = loop {
            tokio::select! {
                biased;
                ctl = self.control.recv() => match ctl {
                    Some(Control::Stop { snapshot, done }) => {
                        self.stop(snapshot).await;
                        let _ = done.send(());
                        break Exit::Stopped;
                    }
                    Some(Control::Evict { reason, done }) => {
                        self.evict(&reason).await;
                        let _ = done.send(());
                        break Exit::Stopped;
                    }
                    Some(Control::Swap { to, fallback, done }) => {
                        let mut core = self.lock().await;
                        let _ = done.send(core.swap(to, fallback).await);
                        self.retick(&mut core);
                    }
                    Some(Control::Passivate) => {
                        if passivates && self.passivate().await {
                            break Exit::Passivated;
                        }
                    }
                    None => break Exit::Closed,
                },
                env = self.mailbox.recv() => match env {
                    Some(env) => {
                        let mut core = self.lock().await;
                        self.handle(&mut core, env).await;
                        // Drain what is already queued without going back through
                        // the select, but stop at once for a control request.
                        for _ in 0..32 {
                            if !self.control.is_empty() {
                                break;
                            }
                            match self.mailbox.try_recv() {
                                Ok(env) => self.handle(&mut core, env).await,
                                Err(_) => break,
                            }
                        }
                        self.retick(&mut core);
                    }
                    None => break Exit::Closed,
                },
                _ = next_tick(&mut self.tick) => {
                    let mut core = self.lock().await;
                    core.tick().await;
                    self.retick(&mut core);
                }
                // A call run inline changed the tick rate.
                _ = self.status.retick.notified() => {
                    let mut core = self.lock().await;
                    self.retick(&mut core);
                }
                _ = snapshot_every.tick() => self.lock().await.persist_if_dirty("periodic").await,
                _ = &mut idle_timer, if passivates => {
                    let last = self.status.last_active_ms.load(Ordering::Relaxed);
                    let idle_for = Duration::from_millis(now_ms().saturating_sub(last));
                    // A room with players in it is not idle, whatever its mailbox.
                    if idle_for < idle || self.node.rooms().has_members(&self.address) {
                        let wait = if idle_for < idle { idle - idle_for } else { idle };
                        idle_timer.as_mut().reset(Instant::now() + wait);
                        continue;
                    }
                    if self.passivate().await {
                        break Exit::Passivated;
                    }
                    self.status.last_active_ms.store(now_ms(), Ordering::Relaxed);
                    idle_timer.as_mut().reset(Instant::now() + idle);
                }
            }
        };
        if !matches!(exit, Exit::Passivated) {
            self.module.actors.remove(&self.address.key, self.id);
        }
        self.lock().await.close();
        metrics.live_actors.dec();
        tracing::debug!(actor = %self.address, "actor task ended");
    }

    /// Idle: leave the routing table, finish what was already queued, snapshot,
    /// exit. Returns false if the table had already moved on.
    async fn passivate(&mut self) -> bool {
        let mut core = self.lock().await;
        let (retiring, done) = Retiring::new();
        if !self
            .module
            .actors
            .retire(&self.address.key, self.id, retiring)
        {
            return false;
        }
        self.mailbox.close();
        while let Some(env) = self.mailbox.recv().await {
            self.handle(&mut core, env).await;
        }
        core.persist_if_dirty("passivation").await;
        // Closed before the successor may activate: a caller holding this
        // handle must not run anything on it from now on.
        core.close();
        done.done();
        self.module.actors.retired(&self.address.key);
        self.module.metrics.passivations.inc();
        true
    }

    async fn stop(&mut self, snapshot: bool) {
        let mut core = self.lock().await;
        self.module.actors.remove(&self.address.key, self.id);
        self.mailbox.close();
        while let Ok(env) = self.mailbox.try_recv() {
            if snapshot {
                self.handle(&mut core, env).await;
            } else if let Envelope::Message(Message { reply: Some(r), .. }) = env {
                let _ = r.send(Err(CallError::ModuleNotFound(self.address.module.clone())));
            }
        }
        if snapshot {
            core.persist_if_dirty("shutdown").await;
        }
        core.close();
    }

    /// Leaves the table and drops the instance unsaved; what is queued is
    /// refused with `reason`.
    async fn evict(&mut self, reason: &str) {
        let mut core = self.lock().await;
        self.module.actors.remove(&self.address.key, self.id);
        self.mailbox.close();
        while let Ok(env) = self.mailbox.try_recv() {
            if let Envelope::Message(Message { reply: Some(r), .. }) = env {
                let _ = r.send(Err(CallError::Unavailable(format!(
                    "{}: {reason}",
                    self.address
                ))));
            }
        }
        core.discard();
        core.close();
        tracing::info!(actor = %self.address, reason, "evicted");
    }
}
