//! Between the host's types (anthill-core) and the generated WIT types: the
//! one place that knows both.

use crate::types::{ActorRef, Channel as WitChannel, Error as WitError, Sender as WitSender};
use anthill_core::{Address, CallError, Channel, Sender};

pub(crate) fn actor_ref(a: &Address) -> ActorRef {
    ActorRef {
        module: a.module.clone(),
        key: a.key.clone(),
    }
}

pub(crate) fn address(r: ActorRef) -> Address {
    Address::new(r.module, r.key)
}

pub(crate) fn sender(s: &Sender) -> WitSender {
    match s {
        Sender::Player(p) => WitSender::Player(*p),
        Sender::Actor(a) => WitSender::Actor(actor_ref(a)),
        Sender::Admin => WitSender::Admin,
        Sender::System => WitSender::System,
    }
}

pub(crate) fn channel(c: WitChannel) -> Channel {
    match c {
        WitChannel::Reliable => Channel::Reliable,
        WitChannel::Unreliable => Channel::Unreliable,
    }
}

/// The error a module's own export returned.
pub(crate) fn from_guest(e: WitError) -> CallError {
    match e {
        // A cycle refused deep in a chain keeps its kind on the way back up,
        // so the first caller sees `call-cycle`, not a module's rejection.
        WitError::Rejected(s) => CallError::cycle_in(&s).unwrap_or(CallError::Rejected(s)),
        WitError::Timeout => CallError::Timeout {
            to: "a downstream actor".into(),
            ms: 0,
        },
        WitError::NotFound(s) => CallError::NotFound(s),
        WitError::Overloaded(s) => CallError::Overloaded(s),
        WitError::Unsupported(s) => CallError::Unsupported(s),
        WitError::Internal(s) => CallError::from_guest_text(&s).unwrap_or(CallError::Internal(s)),
    }
}

/// A host failure as the guest sees it.
pub(crate) trait IntoGuest {
    fn into_guest(self) -> WitError;
}

impl IntoGuest for CallError {
    fn into_guest(self) -> WitError {
        to_guest(&self)
    }
}

/// The WIT error a guest sees for a failure.
pub(crate) fn to_guest(e: &CallError) -> WitError {
    match e {
        CallError::ModuleNotFound(_) | CallError::NotFound(_) => WitError::NotFound(e.to_string()),
        CallError::Rejected(s) => WitError::Rejected(s.clone()),
        CallError::Timeout { .. } => WitError::Timeout,
        CallError::Overloaded(_) => WitError::Overloaded(e.to_string()),
        CallError::Unsupported(s) => WitError::Unsupported(s.clone()),
        CallError::Cycle(_)
        | CallError::TooLarge { .. }
        | CallError::BadRequest(_)
        | CallError::Forbidden(_) => WitError::Rejected(e.to_string()),
        CallError::LimitReached { .. } | CallError::Quota(_) | CallError::Unavailable(_) => {
            WitError::Overloaded(e.to_string())
        }
        CallError::DeadlineExceeded { .. }
        | CallError::OutOfMemory { .. }
        | CallError::Trapped { .. }
        | CallError::Storage { .. }
        | CallError::Internal(_) => WitError::Internal(e.guest_text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_keeps_its_kind_through_a_guest() {
        let cycle = CallError::Cycle("a → b → a".into());
        let back = from_guest(to_guest(&cycle));
        assert_eq!(back, cycle);
        assert_eq!(
            from_guest(WitError::Rejected("no".into())),
            CallError::Rejected("no".into())
        );
        // A full disk keeps its kind too (it has no WIT variant of its own).
        let full = CallError::storage("no space left", true);
        assert_eq!(from_guest(to_guest(&full)).kind(), "disk-full");
        let other = CallError::storage("checksum mismatch", false);
        assert_eq!(from_guest(to_guest(&other)).kind(), "internal");
    }
}
