//! Message routing: from an address (`module` or `module/key`) to the actor's
//! mailbox, activating the actor if it is not live. The message path reads two
//! lock-free tables (modules, then the module's actors); deploys and activations
//! replace those tables whole and never block a reader.

mod admission;
mod table;

pub use admission::{Admission, AdmissionSettings, Refusal};
pub use table::{ActorTable, Retiring, RetiringDone, Routed};

use crate::Runtime;
use crate::actor::{self, Envelope, Message};
use crate::module::{Kind, Module, PlayerAccess};
use anthill_core::CallError;
use anthill_core::Sender;
use anthill_core::trace::TraceParent;
use anthill_core::{Address, CallChain};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::oneshot;

/// Whether a player asked for this (a request or a join; leaving is always
/// allowed).
fn is_from_player(envelope: &Envelope) -> bool {
    match envelope {
        Envelope::Message(m) => matches!(m.from, Sender::Player(_)),
        Envelope::Join { .. } => true,
        _ => false,
    }
}

/// Refuses a player what the module's `players` setting does not open.
fn check_player_access(
    node: &Runtime,
    module: &Module,
    to: &Address,
    live: bool,
) -> Result<(), CallError> {
    match module.settings().players {
        PlayerAccess::Open => Ok(()),
        PlayerAccess::None => Err(CallError::Forbidden(format!(
            "`{}` is not open to players (deployed with players=none)",
            to.module
        ))),
        PlayerAccess::Existing => {
            let exists = live
                || to.key.is_empty()
                || node
                    .store
                    .has_snapshot(&to.module, &to.key)
                    .map_err(crate::runtime::stored)?;
            if exists {
                Ok(())
            } else {
                Err(CallError::Forbidden(format!(
                    "{to} does not exist, and players may not create actors of `{}` \
                     (another actor opens it first, or deploy with players=open)",
                    to.module
                )))
            }
        }
    }
}

/// The node's routing table.
#[derive(Default)]
pub struct Router {
    modules: ArcSwap<HashMap<String, Arc<Module>>>,
    writer: Mutex<()>,
}

impl Router {
    /// No modules yet.
    pub fn new() -> Router {
        Router::default()
    }

    /// The deployed module called `name`.
    pub fn module(&self, name: &str) -> Option<Arc<Module>> {
        self.modules.load().get(name).cloned()
    }

    /// Every deployed module, by name.
    pub fn modules(&self) -> Vec<Arc<Module>> {
        let mut all: Vec<_> = self.modules.load().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Adds or replaces a module in the table.
    pub(crate) fn install(&self, module: Arc<Module>) {
        let _w = self.writer.lock().expect("router poisoned");
        let mut next = (**self.modules.load()).clone();
        next.insert(module.name.clone(), module);
        self.modules.store(Arc::new(next));
    }

    /// Removes a module from the table; new messages to it fail with not-found.
    pub(crate) fn uninstall(&self, name: &str) -> Option<Arc<Module>> {
        let _w = self.writer.lock().expect("router poisoned");
        let mut next = (**self.modules.load()).clone();
        let removed = next.remove(name);
        self.modules.store(Arc::new(next));
        removed
    }

    fn resolve(&self, to: &Address) -> Result<Arc<Module>, CallError> {
        let module = self
            .module(&to.module)
            .ok_or_else(|| CallError::ModuleNotFound(to.module.clone()))?;
        match (module.settings().kind, to.key.is_empty()) {
            (Kind::Singleton, false) => Err(CallError::BadRequest(format!(
                "`{}` is a singleton: address it as `{}`, without a key",
                to.module, to.module
            ))),
            (Kind::Keyed, true) => Err(CallError::BadRequest(format!(
                "`{}` is keyed: address one actor as `{}/KEY`",
                to.module, to.module
            ))),
            _ => Ok(module),
        }
    }

    /// Refuses a message from one tenant's actor to another's unless the
    /// operator allowed that pair.
    fn check_tenants(&self, from_module: &str, to: &Module) -> Result<(), CallError> {
        let Some(from) = self.module(from_module) else {
            return Ok(());
        };
        if Arc::ptr_eq(&from.tenant, &to.tenant) || from.tenant.may_reach(&to.tenant) {
            return Ok(());
        }
        Err(CallError::Forbidden(format!(
            "`{from_module}` (tenant `{}`) may not reach `{}` (tenant `{}`): the operator allows it with \
             `anthill tenants allow {} {}`",
            from.tenant.name, to.name, to.tenant.name, from.tenant.name, to.tenant.name
        )))
    }

    /// Puts an envelope in the mailbox of the actor at `to`, activating it if
    /// needed. Never waits: a full mailbox is an immediate overload error.
    pub fn deliver(
        &self,
        node: &Arc<Runtime>,
        to: &Address,
        envelope: Envelope,
    ) -> Result<(), CallError> {
        if let Some(placement) = node.placement()
            && !placement.is_here(to)
        {
            return forward(placement, node, to, envelope);
        }
        self.deliver_here(node, to, envelope)
    }

    /// [`Router::deliver`] to an actor of this node, whoever owns it in a
    /// cluster: what a message forwarded by another node arrives through.
    pub fn deliver_here(
        &self,
        node: &Arc<Runtime>,
        to: &Address,
        envelope: Envelope,
    ) -> Result<(), CallError> {
        let module = self.resolve(to)?;
        let live = module.actors.get(&to.key).is_some();
        if is_from_player(&envelope) {
            check_player_access(node, &module, to, live)?;
        }
        if let Envelope::Message(Message {
            from: Sender::Actor(from),
            ..
        }) = &envelope
            && from.module != to.module
        {
            self.check_tenants(&from.module, &module)?;
        }
        if !matches!(envelope, Envelope::Timer { .. }) {
            module.tenant.admit_message()?;
        }
        // A new actor is counted against its tenant before it exists; the
        // reservation travels with it (and is released if it was not needed).
        let mut reservation = None;
        if !live {
            module.admit_activation()?;
            let memory_mb = u64::from(module.settings().memory_mb);
            reservation = Some(module.tenant.reserve_actor(memory_mb)?);
        }
        let mut envelope = envelope;
        // A mailbox closes only while its actor passivates; the retry then
        // activates a successor. A few rounds cover any interleaving.
        for _ in 0..16 {
            let handle = module.actors.get_or_activate(&to.key, |retiring| {
                actor::spawn(node, &module, &to.key, retiring, reservation.take())
            });
            // The actor's own timers are not subject to its inbound limits.
            if !matches!(envelope, Envelope::Timer { .. }) {
                let depth = handle.mailbox.max_capacity() - handle.mailbox.capacity();
                if let Err(refusal) = handle.admission.admit(depth, handle.mailbox.max_capacity()) {
                    if let Refusal::RateLimited { .. } = refusal {
                        module.metrics.rate_limited.inc();
                    }
                    return Err(CallError::Overloaded(format!("{to}: {refusal}")));
                }
            }
            // An idle actor runs a call on the caller's task (actor/inline.rs).
            envelope = match actor::run_inline(&handle, envelope) {
                Ok(()) => return Ok(()),
                Err(back) => back,
            };
            handle.status.in_flight.fetch_add(1, Ordering::AcqRel);
            match handle.mailbox.try_send(envelope) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(_)) => {
                    handle.status.finished_one();
                    module.metrics.overloads.inc();
                    return Err(CallError::Overloaded(format!(
                        "the mailbox of {to} is full ({} messages waiting)",
                        handle.mailbox.max_capacity()
                    )));
                }
                Err(TrySendError::Closed(back)) => {
                    handle.status.finished_one();
                    envelope = back;
                    module.actors.remove(&to.key, handle.id);
                    std::thread::yield_now();
                }
            }
        }
        Err(CallError::Internal(format!(
            "{to} kept stopping while a message was delivered"
        )))
    }

    /// Request/response: delivers a message and waits up to `timeout` for the
    /// reply. A call to an actor already waiting in this chain fails at once with
    /// [`CallError::Cycle`] instead of deadlocking.
    pub async fn call(
        &self,
        node: &Arc<Runtime>,
        to: &Address,
        from: Sender,
        payload: Vec<u8>,
        timeout: Duration,
        chain: CallChain,
    ) -> Result<Vec<u8>, CallError> {
        self.call_via(node, to, from, payload, timeout, chain, false)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn call_via(
        &self,
        node: &Arc<Runtime>,
        to: &Address,
        from: Sender,
        payload: Vec<u8>,
        timeout: Duration,
        chain: CallChain,
        here: bool,
    ) -> Result<Vec<u8>, CallError> {
        if chain.contains(to) {
            return Err(CallError::Cycle(chain.describe(to)));
        }
        let make = |reply| {
            Envelope::Message(Message {
                from,
                payload,
                reply: Some(reply),
                chain,
                trace: TraceParent::current(),
            })
        };
        self.ask_via(node, to, timeout, make, here).await
    }

    /// Delivers the envelope `make` builds around a reply channel and waits
    /// for the answer, at most `timeout`: the one request/reply path (calls,
    /// joins).
    pub async fn ask<T>(
        &self,
        node: &Arc<Runtime>,
        to: &Address,
        timeout: Duration,
        make: impl FnOnce(oneshot::Sender<Result<T, CallError>>) -> Envelope,
    ) -> Result<T, CallError> {
        self.ask_via(node, to, timeout, make, false).await
    }

    /// [`Router::ask`] to an actor of this node, whoever owns it in a
    /// cluster (a join another node forwarded).
    pub async fn ask_here<T>(
        &self,
        node: &Arc<Runtime>,
        to: &Address,
        timeout: Duration,
        make: impl FnOnce(oneshot::Sender<Result<T, CallError>>) -> Envelope,
    ) -> Result<T, CallError> {
        self.ask_via(node, to, timeout, make, true).await
    }

    async fn ask_via<T>(
        &self,
        node: &Arc<Runtime>,
        to: &Address,
        timeout: Duration,
        make: impl FnOnce(oneshot::Sender<Result<T, CallError>>) -> Envelope,
        here: bool,
    ) -> Result<T, CallError> {
        let (tx, rx) = oneshot::channel();
        if here {
            self.deliver_here(node, to, make(tx))?;
        } else {
            self.deliver(node, to, make(tx))?;
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(CallError::Internal(format!(
                "{to} stopped before answering"
            ))),
            Err(_) => Err(CallError::Timeout {
                to: to.to_string(),
                ms: timeout.as_millis() as u64,
            }),
        }
    }

    /// A call another node forwarded: delivered to the actor here, with the
    /// caller's chain (so cycles across nodes are caught too).
    pub async fn call_here(
        &self,
        node: &Arc<Runtime>,
        to: &Address,
        from: Sender,
        payload: Vec<u8>,
        timeout: Duration,
        chain: CallChain,
    ) -> Result<Vec<u8>, CallError> {
        self.call_via(node, to, from, payload, timeout, chain, true)
            .await
    }

    /// A send another node forwarded, delivered to the actor here.
    pub fn send_here(
        &self,
        node: &Arc<Runtime>,
        to: &Address,
        from: Sender,
        payload: Vec<u8>,
    ) -> Result<(), CallError> {
        self.deliver_here(node, to, one_way(from, payload))
    }

    /// Fire and forget; order is kept per sender and receiver.
    pub async fn send(
        &self,
        node: &Arc<Runtime>,
        to: &Address,
        from: Sender,
        payload: Vec<u8>,
    ) -> Result<(), CallError> {
        self.deliver(node, to, one_way(from, payload))
    }
}

/// A send's envelope: no reply, no chain.
fn one_way(from: Sender, payload: Vec<u8>) -> Envelope {
    Envelope::Message(Message {
        from,
        payload,
        reply: None,
        chain: CallChain::default(),
        trace: TraceParent::current(),
    })
}

/// Hands a message for an actor another node owns to the placement; the
/// reply, if one is wanted, comes back on the envelope's channel.
fn forward(
    placement: &Arc<dyn anthill_core::Placement>,
    node: &Arc<Runtime>,
    to: &Address,
    envelope: Envelope,
) -> Result<(), CallError> {
    let m = match envelope {
        Envelope::Message(m) => m,
        // A player connected here joins a room another node owns: that
        // node's `on-join` decides, and from then on sends the room's state
        // and pushes here.
        Envelope::Join { player, reply } => {
            let joined = placement.join(to.clone(), player, node.config.call_timeout());
            tokio::spawn(async move {
                let _ = reply.send(joined.await);
            });
            return Ok(());
        }
        Envelope::Leave { player } => {
            placement.leave(to.clone(), player);
            return Ok(());
        }
        // Timers, events and wake-ups do not cross nodes: they are
        // delivered here once this node holds the actor's claim.
        other => {
            let located = placement.locate(to);
            let (node, to, placement) = (node.clone(), to.clone(), placement.clone());
            tokio::spawn(async move {
                match located.await {
                    Ok(true) => {
                        if let Err(e) = node.router.deliver_here(&node, &to, other) {
                            tracing::debug!(%to, error = %e, "not delivered");
                        }
                    }
                    Ok(false) => {
                        let owner = placement
                            .owner(&to)
                            .map_or_else(|| "another node".into(), |(owner, _)| owner);
                        tracing::warn!(
                            %to,
                            owner,
                            "a timer or event for an actor another node owns: dropped here (the owner fires its own)"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(%to, error = %e, "cannot tell which node owns the actor")
                    }
                }
            });
            return Ok(());
        }
    };
    let timeout = node.config.call_timeout();
    let sent = placement.forward(
        to.clone(),
        m.from,
        m.payload,
        m.chain,
        m.reply.is_some(),
        timeout,
    );
    let to = to.clone();
    tokio::spawn(async move {
        let outcome = sent.await;
        match m.reply {
            Some(reply) => {
                let _ = reply.send(outcome);
            }
            None => {
                if let Err(e) = outcome {
                    tracing::debug!(%to, error = %e, "a send to another node was lost");
                }
            }
        }
    });
    Ok(())
}
