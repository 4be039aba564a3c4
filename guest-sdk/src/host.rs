//! What a module may ask of the host, with Rust types. Nothing else reaches the
//! world outside the component.

use crate::bindings::anthill::module::host as raw;
use crate::{ActorRef, Channel, Delivery, Entity, Error, LogLevel, SyncedState};
use std::time::Duration;

/// Writes a line to the node's log, tagged with this actor's module and key.
pub fn log(level: LogLevel, message: &str) {
    raw::log(level, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    raw::log(LogLevel::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    raw::log(LogLevel::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    raw::log(LogLevel::Error, message);
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    raw::now_ms()
}

/// This actor's own address.
pub fn self_ref() -> ActorRef {
    raw::self_ref()
}

/// Fire and forget: order is kept per (sender, receiver). Fails fast with
/// [`Error::Overloaded`] when the receiver's mailbox is full.
pub fn send(to: &ActorRef, message: &[u8]) -> Result<(), Error> {
    raw::send(to, message)
}

/// Request/response: returns the receiver's reply, or an error (`Timeout`,
/// `NotFound`, `Rejected`, `Overloaded`, `Internal`). A call that would form a
/// cycle (A calls B which calls A while A waits) fails at once with
/// `Rejected("call cycle: ...")`.
pub fn call(to: &ActorRef, message: &[u8], timeout: Duration) -> Result<Vec<u8>, Error> {
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    raw::call(to, message, ms)
}

/// Publishes an event on `topic`.
pub fn publish(topic: &str, event: &[u8]) -> Result<(), Error> {
    raw::publish(topic, event)
}

/// Subscribes this actor to `topic`; events arrive at `Actor::on_event`.
pub fn subscribe(topic: &str, delivery: Delivery) -> Result<(), Error> {
    raw::subscribe(topic, delivery)
}

/// Ends this actor's subscription to `topic`.
pub fn unsubscribe(topic: &str) -> Result<(), Error> {
    raw::unsubscribe(topic)
}

/// Sends a message to a connected player.
pub fn push(player: u64, channel: Channel, message: &[u8]) -> Result<(), Error> {
    raw::push(player, channel, message)
}

/// Replaces this room's synced state; members get deltas at each tick.
pub fn set_synced_state(entities: &[Entity]) -> Result<(), Error> {
    raw::set_synced_state(entities)
}

/// The same as [`set_synced_state`] for a state packed into one buffer:
/// cheaper for a room that publishes every tick (no list per entity, for
/// the guest or the host).
pub fn set_synced_state_packed(state: &SyncedState) -> Result<(), Error> {
    raw::set_synced_state_packed(&state.ids, &state.ends, &state.bytes)
}

/// Calls `Actor::on_timer(tag)` after `delay`, once or every `delay`.
pub fn set_timer(tag: &str, delay: Duration, repeat: bool) -> Result<(), Error> {
    let ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
    raw::set_timer(tag, ms, repeat)
}

/// Cancels a timer; unknown tags are ignored.
pub fn cancel_timer(tag: &str) -> Result<(), Error> {
    raw::cancel_timer(tag)
}

/// Calls `Actor::on_tick` `hz` times a second while this actor is live (0 stops).
pub fn set_tick_rate(hz: u32) -> Result<(), Error> {
    raw::set_tick_rate(hz)
}
