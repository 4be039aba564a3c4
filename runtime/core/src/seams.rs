//! The seams between the runtime's parts. The actors reach players and rooms
//! only through [`Players`] and [`RoomSink`] (the gateway implements them);
//! the gateway reaches actors only through [`Dispatch`] (the actors implement
//! it). A cluster, or another transport, is a new implementation of one of
//! these, not a new path through the node.

use crate::{Address, CallChain, CallError, Channel, Sender, SyncedState};
use futures::future::BoxFuture;
use std::time::Duration;

/// Where a room's synced state goes, and what the actors need to know about
/// who is in a room.
pub trait RoomSink: Send + Sync {
    /// The room's state after a guest call set it: diffed and sent to its
    /// members at the room's next tick.
    fn publish(&self, room: &Address, state: SyncedState);
    /// Whether any player is in the room (a room with players is not
    /// passivated when idle).
    fn has_members(&self, room: &Address) -> bool;
    /// Players in rooms of `module`, for tenants' player quotas.
    fn members_in_module(&self, module: &str) -> usize;
    /// The module is gone: forget its rooms.
    fn remove_module(&self, module: &str);
}

/// How actors reach players.
pub trait Players: Send + Sync {
    /// Queues `message` for `player` on `channel`; `NotFound` when the player
    /// has no session.
    fn push(&self, player: u64, channel: Channel, message: Vec<u8>) -> Result<(), CallError>;
}

/// How a transport (the QUIC gateway, later a browser transport) reaches
/// actors on behalf of players.
pub trait Dispatch: Send + Sync {
    /// A request to an actor, answered or refused within the node's call
    /// timeout. Size and player-access rules are checked here.
    fn request(
        &self,
        to: Address,
        from: Sender,
        payload: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, CallError>>;
    /// `player` asks to join `room`: the room's `on-join` decides, within the
    /// node's call timeout.
    fn join(&self, room: Address, player: u64) -> BoxFuture<'static, Result<(), CallError>>;
    /// `player` left `room` (or its session ended).
    fn leave(&self, room: &Address, player: u64);
}

/// How an event published on this node reaches the subscribers on the
/// others. A lone node has none: every subscriber is here.
pub trait EventBus: Send + Sync {
    /// Hands `event` of `topic` to the other nodes; resolves once it is
    /// durable (each node then delivers it to its own subscribers).
    fn broadcast(&self, topic: &str, event: &[u8]) -> BoxFuture<'static, Result<(), CallError>>;
}

/// Where actors live when there is more than one node. The router asks
/// [`Placement::is_here`] before every delivery; a message for an actor that
/// lives elsewhere (or whose owner is not known yet) goes to
/// [`Placement::forward`]. A lone node has no placement: every actor is here.
pub trait Placement: Send + Sync {
    /// Whether this node holds the claim on the actor at `to` now. Fast: a
    /// table read, never a network round trip.
    fn is_here(&self, to: &Address) -> bool;

    /// Whether the actor at `to` lives here, claiming it for this node if
    /// nobody holds it: for what does not cross nodes (timers, events, joins).
    fn locate(&self, to: &Address) -> BoxFuture<'static, Result<bool, CallError>>;

    /// Which node owns `to` now, as far as this node knows, and where its
    /// players connect: for errors that tell a player or operator where an
    /// actor lives. `None` when unknown (or here).
    fn owner(&self, to: &Address) -> Option<(String, Option<String>)>;

    /// `player`, connected to this node, joins the room at `to` wherever it
    /// lives: the owner's `on-join` decides (within `timeout`), and from then
    /// on the room's state and its pushes to the player reach this node.
    fn join(
        &self,
        to: Address,
        player: u64,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<(), CallError>>;

    /// `player`, connected to this node, left the room at `to` (or its
    /// session ended): the owner's `on-leave` runs, and the room's state
    /// stops coming here for that player.
    fn leave(&self, to: Address, player: u64);

    /// Delivers a message to the node that owns `to` (claiming it for this
    /// node if nobody does) and, for a call (`wants_reply`), returns the
    /// reply; a send resolves once it is on its way.
    fn forward(
        &self,
        to: Address,
        from: Sender,
        payload: Vec<u8>,
        chain: CallChain,
        wants_reply: bool,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, CallError>>;
}

/// A session's rooms: the handle the player knows each by, and its address.
pub type SessionRooms = Vec<(u32, Address)>;

/// Reliable pushes a session kept for its client: (sequence, the encoded
/// frame as sent), in order.
pub type KeptPushes = Vec<(u64, Vec<u8>)>;

/// What a node hands over when a session it held resumes on another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandedOver {
    /// The session's rooms.
    pub rooms: SessionRooms,
    /// The reliable pushes it kept that the client has not acknowledged
    /// seeing, numbered as they were sent.
    pub pushes: KeptPushes,
}

/// Where players' sessions are known when there is more than one node, so a
/// player can resume on any node. A lone node has none: a session lives and
/// ends on the node that made it.
pub trait SessionDirectory: Send + Sync {
    /// `player`'s session `session` is held by this node, in these rooms
    /// (handle, room).
    fn hold(&self, player: u64, session: u64, rooms: SessionRooms);
    /// [`SessionDirectory::hold`], resolving once the record is written: a
    /// node welcomes a player only then, so that a push another node sends
    /// the moment the player is in finds where the player is.
    fn hold_now(&self, player: u64, session: u64, rooms: SessionRooms) -> BoxFuture<'static, ()> {
        self.hold(player, session, rooms);
        Box::pin(async {})
    }
    /// The session ended here (its resume grace passed, or a new login
    /// replaced it).
    fn end(&self, player: u64, session: u64);
    /// A resume of a session this node does not hold, whose client has seen
    /// reliable pushes up to `last_push`: its rooms and the pushes kept
    /// after that one, if the session still exists on some node (which then
    /// lets go of it without leaving its rooms); `None` if it ended.
    fn take_over(
        &self,
        player: u64,
        session: u64,
        last_push: u64,
    ) -> BoxFuture<'static, Result<Option<HandedOver>, CallError>>;
    /// `player` logged in here with the new session `session`: a session of
    /// the player that another node holds ends there, as an older session
    /// on this node would (its connection closed, its rooms left). Resolves
    /// once that node has been told.
    fn login(&self, player: u64, session: u64) -> BoxFuture<'static, ()>;
}

/// What holds sessions on a node (the gateway), as the cluster reaches it.
pub trait SessionHost: Send + Sync {
    /// The player resumed `session` on another node, having seen reliable
    /// pushes up to `last_push`: drop it here without leaving its rooms,
    /// closing its connection if one is still open; returns the rooms it was
    /// in and the reliable pushes kept after `last_push`.
    fn release(&self, player: u64, session: u64, last_push: u64) -> (Vec<Address>, KeptPushes);
    /// The player logged in again on another node: end `session` here (its
    /// connection closed, its rooms left), as a new login here would.
    fn end(&self, player: u64, session: u64);
    /// Whether `player`'s session here is in `room`.
    fn in_room(&self, player: u64, room: &Address) -> bool;
}
