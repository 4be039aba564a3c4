//! The runtime as a transport sees it ([`Dispatch`]): player requests and
//! logins through the router under the node's call timeout, joins decided by
//! the room's `on-join` and bounded by the tenant's player quota, leaves.

use crate::Runtime;
use crate::actor::Envelope;
use crate::module::Kind;
use anthill_core::{Address, CallChain, CallError, Dispatch, Sender};
use futures::future::BoxFuture;
use std::sync::{Arc, Weak};

/// The dispatch seam over a runtime (weak: a transport does not keep a
/// stopped runtime alive).
pub struct RuntimeDispatch(Weak<Runtime>);

impl RuntimeDispatch {
    /// Dispatches to `runtime`.
    pub fn new(runtime: &Arc<Runtime>) -> Arc<RuntimeDispatch> {
        Arc::new(RuntimeDispatch(Arc::downgrade(runtime)))
    }

    fn runtime(&self) -> Result<Arc<Runtime>, CallError> {
        self.0
            .upgrade()
            .ok_or_else(|| CallError::Internal("the node is stopping".into()))
    }
}

/// Refuses a join that would take the room's tenant past `max_players`.
fn players_fit(node: &Runtime, room: &Address) -> Result<(), CallError> {
    let Some(module) = node.router.module(&room.module) else {
        return Ok(());
    };
    if module.tenant.quotas().max_players.is_none() {
        return Ok(());
    }
    let players: usize = node
        .router
        .modules()
        .iter()
        .filter(|m| Arc::ptr_eq(&m.tenant, &module.tenant))
        .map(|m| node.rooms().members_in_module(&m.name))
        .sum();
    module.tenant.admit_player(players as u64)
}

impl Dispatch for RuntimeDispatch {
    fn request(
        &self,
        to: Address,
        from: Sender,
        payload: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
        let span = tracing::trace_span!(
            target: anthill_core::trace::TARGET,
            "player.request",
            from = ?from,
            to = %to,
        );
        let node = self.runtime();
        Box::pin(tracing::Instrument::instrument(
            async move {
                let node = node?;
                let limit = node.config.limits.max_message_bytes;
                if payload.len() > limit {
                    return Err(CallError::TooLarge {
                        what: "request".into(),
                        size: payload.len(),
                        limit,
                    });
                }
                let timeout = node.config.call_timeout();
                node.router
                    .call(&node, &to, from, payload, timeout, CallChain::default())
                    .await
            },
            span,
        ))
    }

    fn join(&self, room: Address, player: u64) -> BoxFuture<'static, Result<(), CallError>> {
        let node = self.runtime();
        Box::pin(async move {
            let node = node?;
            let keyed = node
                .router
                .module(&room.module)
                .map(|m| m.settings().kind == Kind::Keyed);
            if keyed == Some(false) || room.key.is_empty() {
                return Err(CallError::Rejected(format!(
                    "a room is an actor of a keyed module (`module/key`), not `{room}`"
                )));
            }
            players_fit(&node, &room)?;
            let timeout = node.config.call_timeout();
            node.router
                .ask(&node, &room, timeout, |reply| Envelope::Join {
                    player,
                    reply,
                })
                .await
        })
    }

    fn leave(&self, room: &Address, player: u64) {
        let Ok(node) = self.runtime() else { return };
        if let Err(e) = node.router.deliver(&node, room, Envelope::Leave { player }) {
            tracing::warn!(%room, player, error = %e, "on-leave not delivered");
        }
    }
}
