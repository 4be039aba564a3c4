//! What travels to an actor: [`Envelope`]s through its bounded mailbox (handled in
//! order, one at a time) and [`Control`] requests from the node (swap, stop,
//! snapshot), which jump the queue at the next message boundary.

use crate::module::LoadedVersion;
use anthill_core::CallChain;
use anthill_core::CallError;
use anthill_core::Sender;
use anthill_core::trace::TraceParent;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Where a `call`'s reply goes.
pub type ReplyTo = oneshot::Sender<Result<Vec<u8>, CallError>>;

/// Where an at-least-once delivery learns whether `on-event` succeeded.
pub type AckTo = oneshot::Sender<Result<(), CallError>>;

/// A message for `on-message`.
pub struct Message {
    /// Who sent it.
    pub from: Sender,
    /// The message as the sender encoded it.
    pub payload: Vec<u8>,
    /// Present for `call`: where the reply goes.
    pub reply: Option<ReplyTo>,
    /// Actors waiting on this message (cycle detection for nested calls).
    pub chain: CallChain,
    /// The span it was sent or called from.
    pub trace: TraceParent,
}

/// One unit of work for an actor.
pub enum Envelope {
    /// A message for `on-message` (a send or a call).
    Message(Message),
    /// An event for `on-event`.
    Event {
        /// The topic as stored (tenant-scoped).
        topic: String,
        /// The event payload.
        event: Vec<u8>,
        /// For at-least-once delivery: where the verdict goes.
        ack: Option<AckTo>,
        /// The span it was published (or delivered) from.
        trace: TraceParent,
    },
    /// A timer fired.
    Timer {
        /// The timer's tag.
        tag: String,
    },
    /// A player asks to join this room; the reply says whether `on-join` agreed.
    Join {
        /// The player asking to join.
        player: u64,
        /// Whether `on-join` agreed.
        reply: oneshot::Sender<Result<(), CallError>>,
    },
    /// A player left this room (or its session ended).
    Leave {
        /// The player who left.
        player: u64,
    },
    /// Be live, nothing more: a room whose members are on other nodes is
    /// activated here (after its owner died) so that it ticks again.
    Wake,
}

/// What one actor's swap did, for the module's swap report.
#[derive(Debug, Clone)]
pub struct SwapReport {
    /// How long the actor stopped taking messages.
    pub stall: Duration,
    /// The state handed over and the version that wrote it (None if the actor
    /// had no live instance: it restores its stored snapshot when it next
    /// activates). A rollback uses it if the old version refuses newer state.
    pub carried: Option<(Vec<u8>, u32)>,
}

/// Requests from the node, handled between messages.
pub enum Control {
    /// Move to another version, carrying state: snapshot, instantiate, restore.
    Swap {
        /// The version to run.
        to: Arc<LoadedVersion>,
        /// State to restore instead if `to` refuses the carried state (a rollback
        /// passes the pre-swap snapshot).
        fallback: Option<(Vec<u8>, u32)>,
        /// What the swap did, or why it failed.
        done: oneshot::Sender<Result<SwapReport, CallError>>,
    },
    /// Passivate now (the node needs the room): as if idle.
    Passivate,
    /// Stop: drain, optionally snapshot, exit.
    Stop {
        /// Write a last snapshot before exiting.
        snapshot: bool,
        /// Resolved once the actor has exited.
        done: oneshot::Sender<()>,
    },
    /// Exit at once without a snapshot: this copy is no longer the actor (in
    /// a cluster, another node owns it now). What is queued is refused with
    /// `reason` (unavailable), so callers retry where it lives.
    Evict {
        /// Why, for the refused callers.
        reason: String,
        /// Resolved once the actor has exited.
        done: oneshot::Sender<()>,
    },
}
