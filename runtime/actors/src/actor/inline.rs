//! Running a call on the caller's task. A trip through the mailbox costs two
//! task wake-ups (the actor's, then the caller's for the reply), and on a
//! multi-threaded runtime often a sleeping worker thread woken to steal one
//! of them: most of what a routed call cost beyond the guest itself. When the
//! actor is idle (no work in flight, its core not held), a caller that is not
//! itself inside a guest runs the call itself, under the same lock and
//! bookkeeping as the actor's task.
//!
//! A guest call must never be dropped half-run (the instance would be left
//! mid-call), and a caller may give up on a call (its timeout) or be dropped.
//! So the call is polled once here; if it must wait (a host call, a yield of
//! a long call, a durable snapshot's commit), what is left of it becomes a
//! task of its own, and the caller waits for the reply as it would for the
//! actor's task.

use super::ActorHandle;
use super::mailbox::{Envelope, Message};
use anthill_core::Sender;
use std::sync::atomic::Ordering;
use std::task::{Context, Waker};

/// Whether `envelope` may run on the caller's task: a call or a join whose
/// caller waits for the answer and is not a guest (a guest's call runs on its
/// own actor's stack, which must not host another actor's call).
fn may_run_inline(envelope: &Envelope) -> bool {
    match envelope {
        Envelope::Message(Message {
            reply: Some(_),
            from,
            ..
        }) => matches!(from, Sender::Player(_) | Sender::Admin | Sender::System),
        Envelope::Join { .. } => true,
        _ => false,
    }
}

/// Runs `envelope` now if the actor at `handle` is idle; gives it back if it
/// must go through the mailbox. The answer goes out on the envelope's reply
/// channel either way.
pub(crate) fn run_inline(handle: &ActorHandle, envelope: Envelope) -> Result<(), Envelope> {
    if !may_run_inline(&envelope) {
        return Err(envelope);
    }
    let status = handle.status.clone();
    if status
        .in_flight
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return Err(envelope);
    }
    let core = match handle.core.clone().try_lock_owned() {
        Ok(core) if !core.closed => core,
        _ => {
            status.finished_one();
            return Err(envelope);
        }
    };
    let run = async move {
        let mut core = core;
        core.handle(envelope).await;
        if core.tick_change.is_some() {
            status.retick.notify_one();
        }
        drop(core);
        status.finished_one();
    };
    // Most calls finish in this first poll. The waker is a no-op: a call that
    // has to wait is polled again at once by its own task, which registers
    // that task's waker with whatever it waits on.
    let mut run = Box::pin(run);
    if run
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending()
    {
        tokio::spawn(run);
    }
    Ok(())
}
