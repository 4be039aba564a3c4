//! Who sent a message, and how a push reaches a player: the host's own copies
//! of the WIT `sender` and `channel`, so that parts without the engine (the
//! gateway, the router) can name them.

use crate::Address;

/// Who sent a message to an actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// A player connected through the gateway.
    Player(u64),
    /// Another actor, through `send` or `call`.
    Actor(Address),
    /// An operator, through the admin API or `anthill call`.
    Admin,
    /// The node itself (a login through a module, a timer).
    System,
}

/// How a push reaches a player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// On the player's control stream: ordered, retransmitted, queued while
    /// the player reconnects.
    Reliable,
    /// As a datagram: may be lost, never delays anything else.
    Unreliable,
}
