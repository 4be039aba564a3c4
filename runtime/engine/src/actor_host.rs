//! [`ActorHost`]: everything a guest's host imports ask of the rest of the
//! node. The engine checks sizes and shapes; the implementation (the actors
//! crate, or a fake in tests) routes, schedules and stores. `set-synced-state`
//! and `set-tick-rate` are not here: they are [`crate::Effects`] of a call,
//! applied by whoever made the call once it returns.

use crate::GuestLine;
use anthill_core::{Address, CallChain, CallError, Channel};
use futures::future::BoxFuture;
use std::time::Duration;

/// The node as one actor's imports see it. `actor` is always the calling
/// actor's own address.
pub trait ActorHost: Send + Sync {
    /// `send`: queue `message` for `to`; never waits on the receiver.
    fn send(
        &self,
        actor: &Address,
        to: Address,
        message: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), CallError>>;

    /// `call`: deliver `message` to `to` and wait for its reply. `chain` is
    /// the call chain including `actor`, for cycle detection.
    fn call(
        &self,
        actor: &Address,
        to: Address,
        message: Vec<u8>,
        timeout: Duration,
        chain: CallChain,
    ) -> BoxFuture<'static, Result<Vec<u8>, CallError>>;

    /// `publish`: hand `event` to the subscribers of `topic` (as the guest
    /// named it: scoping it to a tenant is the host's business).
    fn publish(
        &self,
        actor: &Address,
        topic: String,
        event: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), CallError>>;

    /// `subscribe`: `durable` is at-least-once delivery.
    fn subscribe(&self, actor: &Address, topic: &str, durable: bool) -> Result<(), CallError>;

    /// `unsubscribe`.
    fn unsubscribe(&self, actor: &Address, topic: &str) -> Result<(), CallError>;

    /// `push`: a message to a player.
    fn push(&self, player: u64, channel: Channel, message: Vec<u8>) -> Result<(), CallError>;

    /// `set-timer`: a durable timer `tag` of `actor`.
    fn set_timer(
        &self,
        actor: &Address,
        tag: &str,
        delay_ms: u64,
        repeat: bool,
    ) -> Result<(), CallError>;

    /// `cancel-timer`.
    fn cancel_timer(&self, actor: &Address, tag: &str) -> Result<(), CallError>;

    /// A line the actor wrote to stdout or stderr, or through `host.log`.
    /// Never fails and never waits: a flood is the host's to drop and count.
    fn output(&self, line: GuestLine);
}
