//! Actors: one live instance of a module for one key, owning a bounded mailbox and
//! a wasmtime store, handling one message at a time. This folder owns the actor's
//! lifecycle: activation (instantiate, `init`, restore the last snapshot),
//! passivation when idle, snapshots, replacement after a trap, and swap.

mod core;
mod inline;
mod mailbox;
mod reaper;
mod task;

pub(crate) use inline::run_inline;

pub use reaper::run as run_reaper;

pub use mailbox::{AckTo, Control, Envelope, Message, ReplyTo, SwapReport};

use crate::Runtime;
use crate::module::Module;
use crate::router::{Admission, Retiring};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use tokio::sync::{Mutex, Notify, mpsc};

/// What the rest of the node holds of an actor: its mailbox, its control channel
/// and its status. Cloning is cheap.
#[derive(Clone)]
pub struct ActorHandle {
    /// Unique per activation on this node (a reactivated key gets a new one).
    pub id: u64,
    pub(crate) mailbox: mpsc::Sender<Envelope>,
    pub(crate) control: mpsc::UnboundedSender<Control>,
    /// Live facts, readable without disturbing the actor.
    pub status: Arc<ActorStatus>,
    /// Rate limit and circuit breaker, checked by the router before delivery.
    pub admission: Arc<Admission>,
    /// The actor's state, under the lock its task and inline callers share.
    pub(crate) core: Arc<Mutex<core::ActorCore>>,
}

/// Live facts about an actor, readable without disturbing it.
#[derive(Debug)]
pub struct ActorStatus {
    /// The actor's key ("" for a singleton).
    pub key: String,
    /// The module version it runs.
    pub version: AtomicU32,
    /// When it was activated.
    pub activated_at_ms: u64,
    /// When it last wrote a snapshot (0: not since activation).
    pub last_snapshot_ms: AtomicU64,
    /// Envelopes handled since activation.
    pub handled: AtomicU64,
    /// When the actor last handled an envelope (for least-recently-used
    /// passivation under pressure).
    pub last_active_ms: AtomicU64,
    /// Work delivered and not yet finished: envelopes in the mailbox or being
    /// handled, a call running inline, the activation. A call runs inline
    /// only when this is 0, so it never overtakes a message sent before it.
    pub(crate) in_flight: AtomicU64,
    /// Tells the actor's task that a call run inline changed the tick rate.
    pub(crate) retick: Notify,
}

impl ActorStatus {
    /// One unit of work counted in `in_flight` is done.
    pub(crate) fn finished_one(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A row of `GET /v1/actors`.
#[derive(Debug, Clone, Serialize)]
pub struct ActorInfo {
    /// The actor's key.
    pub key: String,
    /// The module version it runs.
    pub version: u32,
    /// Envelopes waiting in its mailbox.
    pub mailbox_depth: usize,
    /// Envelopes handled since activation.
    pub handled: u64,
    /// When it was activated.
    pub activated_at_ms: u64,
    /// 0 when never snapshotted since activation.
    pub last_snapshot_ms: u64,
    /// The circuit breaker is open: messages are refused until the next probe.
    pub circuit_open: bool,
}

impl ActorHandle {
    /// Its row of `GET /v1/actors`.
    pub fn info(&self) -> ActorInfo {
        ActorInfo {
            key: self.status.key.clone(),
            version: self.status.version.load(Ordering::Relaxed),
            mailbox_depth: self.mailbox.max_capacity() - self.mailbox.capacity(),
            handled: self.status.handled.load(Ordering::Relaxed),
            activated_at_ms: self.status.activated_at_ms,
            last_snapshot_ms: self.status.last_snapshot_ms.load(Ordering::Relaxed),
            circuit_open: self.admission.is_open(),
        }
    }

    /// Asks the actor to stop after the message in progress; resolves when it has.
    pub async fn stop(&self, snapshot: bool) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Stop { snapshot, done }).is_ok() {
            let _ = wait.await;
        }
    }
}

impl ActorHandle {
    /// Drops this copy without a snapshot (see [`Control::Evict`]); resolves
    /// when it has exited.
    pub async fn evict(&self, reason: &str) {
        let (done, wait) = tokio::sync::oneshot::channel();
        let reason = reason.to_owned();
        if self.control.send(Control::Evict { reason, done }).is_ok() {
            let _ = wait.await;
        }
    }
}

/// Starts an actor task for `key` of `module`. The instance is created inside the
/// task (after `predecessor`, if any, has written its last snapshot), so
/// activation never blocks the caller; messages queue meanwhile.
pub(crate) fn spawn(
    node: &Arc<Runtime>,
    module: &Arc<Module>,
    key: &str,
    predecessor: Option<Retiring>,
    reservation: Option<crate::tenants::ActorReservation>,
) -> ActorHandle {
    let settings = module.settings();
    let (tx, rx) = mpsc::channel(settings.mailbox);
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let version = module.version_for(key);
    let status = Arc::new(ActorStatus {
        key: key.to_owned(),
        version: AtomicU32::new(version.version),
        activated_at_ms: anthill_core::now_ms(),
        last_snapshot_ms: AtomicU64::new(0),
        handled: AtomicU64::new(0),
        last_active_ms: AtomicU64::new(anthill_core::now_ms()),
        // The activation is the first unit of work.
        in_flight: AtomicU64::new(1),
        retick: Notify::new(),
    });
    let admission = Arc::new(Admission::new(node.config.admission.clone()));
    let core = core::ActorCore::new(
        node.clone(),
        module.clone(),
        status.clone(),
        admission.clone(),
        reservation,
    );
    let handle = ActorHandle {
        id: node.next_actor_id(),
        mailbox: tx,
        control: ctl_tx,
        status: status.clone(),
        admission: admission.clone(),
        core: Arc::new(Mutex::new(core)),
    };
    let task = task::ActorTask::new(node.clone(), module.clone(), &handle, rx, ctl_rx);
    tokio::spawn(task.run(predecessor));
    handle
}
