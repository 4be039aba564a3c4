//! A connection's control-stream queue: the frames sessions and room sync
//! hand to one connection's writer task, bounded, in order. It holds no
//! buffer while empty. tokio's `mpsc` allocates a block of 32 slots when the
//! channel is made and keeps it, so every idle player kept ~1.5 KiB for a
//! queue it hardly uses; here an empty queue is a few words, a burst grows a
//! `VecDeque`, and the buffer is given back once a burst has drained.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A buffer bigger than this many frames is freed when the queue empties
/// (a steady trickle keeps its small one).
const KEEP_WHEN_EMPTY: usize = 8;

struct State {
    frames: VecDeque<Bytes>,
    senders: usize,
    receiver_gone: bool,
}

struct Shared {
    capacity: usize,
    state: Mutex<State>,
    /// Wakes the receiver: a frame came, or the last sender left.
    ready: Notify,
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds `capacity` frames: the player is not reading.
    Full,
    /// The writer is gone (the connection is closing).
    Closed,
}

/// Queues frames (cheap to clone; the queue ends when every copy is gone).
pub(crate) struct OutboxSender {
    shared: Arc<Shared>,
}

/// The writer's end.
pub(crate) struct OutboxReceiver {
    shared: Arc<Shared>,
}

/// A queue of at most `capacity` frames.
pub(crate) fn outbox(capacity: usize) -> (OutboxSender, OutboxReceiver) {
    let shared = Arc::new(Shared {
        capacity,
        state: Mutex::new(State {
            frames: VecDeque::new(),
            senders: 1,
            receiver_gone: false,
        }),
        ready: Notify::new(),
    });
    (
        OutboxSender {
            shared: shared.clone(),
        },
        OutboxReceiver { shared },
    )
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves a valid queue behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl OutboxSender {
    /// Queues `frame` without waiting.
    pub(crate) fn try_send(&self, frame: Bytes) -> Result<(), Refused> {
        let mut state = self.shared.state();
        if state.receiver_gone {
            return Err(Refused::Closed);
        }
        if state.frames.len() >= self.shared.capacity {
            return Err(Refused::Full);
        }
        state.frames.push_back(frame);
        drop(state);
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl Clone for OutboxSender {
    fn clone(&self) -> OutboxSender {
        self.shared.state().senders += 1;
        OutboxSender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for OutboxSender {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.state();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.shared.ready.notify_one();
        }
    }
}

impl OutboxReceiver {
    /// The next frame; `None` once every sender is gone and the queue is
    /// drained. Cancel-safe: a frame is taken only when it is returned.
    pub(crate) async fn recv(&mut self) -> Option<Bytes> {
        loop {
            {
                let mut state = self.shared.state();
                if let Some(frame) = Self::pop(&mut state) {
                    return Some(frame);
                }
                if state.senders == 0 {
                    return None;
                }
            }
            // A notification sent since the check above is kept as a permit.
            self.shared.ready.notified().await;
        }
    }

    /// The next frame if one is queued now.
    pub(crate) fn try_recv(&mut self) -> Option<Bytes> {
        Self::pop(&mut self.shared.state())
    }

    fn pop(state: &mut State) -> Option<Bytes> {
        let frame = state.frames.pop_front()?;
        if state.frames.is_empty() && state.frames.capacity() > KEEP_WHEN_EMPTY {
            state.frames = VecDeque::new();
        }
        Some(frame)
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.receiver_gone = true;
        state.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[tokio::test]
    async fn frames_come_out_in_order_and_a_full_queue_refuses_the_next() {
        let (tx, mut rx) = outbox(3);
        for n in 0..3 {
            tx.try_send(frame(n)).unwrap();
        }
        assert_eq!(tx.try_send(frame(9)), Err(Refused::Full));
        for n in 0..3 {
            assert_eq!(rx.recv().await, Some(frame(n)));
        }
        assert_eq!(rx.try_recv(), None);
        tx.try_send(frame(3)).unwrap();
        assert_eq!(rx.try_recv(), Some(frame(3)));
    }

    #[tokio::test]
    async fn the_queue_ends_when_every_sender_is_gone_after_it_drains() {
        let (tx, mut rx) = outbox(8);
        let other = tx.clone();
        tx.try_send(frame(1)).unwrap();
        drop(tx);
        other.try_send(frame(2)).unwrap();
        drop(other);
        assert_eq!(rx.recv().await, Some(frame(1)));
        assert_eq!(rx.recv().await, Some(frame(2)));
        let end = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(end, Ok(None), "the queue must end, not wait for a sender");
    }

    #[tokio::test]
    async fn a_waiting_writer_wakes_for_a_frame_and_for_the_last_sender_leaving() {
        let (tx, mut rx) = outbox(8);
        let writer = tokio::spawn(async move {
            let first = rx.recv().await;
            let end = rx.recv().await;
            (first, end)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.try_send(frame(7)).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(tx);
        let (first, end) = tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .expect("the writer woke")
            .unwrap();
        assert_eq!(first, Some(frame(7)));
        assert_eq!(end, None);
    }

    #[tokio::test]
    async fn senders_learn_the_writer_is_gone() {
        let (tx, rx) = outbox(8);
        tx.try_send(frame(1)).unwrap();
        drop(rx);
        assert_eq!(tx.try_send(frame(2)), Err(Refused::Closed));
    }

    #[test]
    fn a_drained_burst_gives_its_buffer_back() {
        let (tx, mut rx) = outbox(1024);
        for n in 0..100 {
            tx.try_send(frame(n)).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert_eq!(rx.shared.state().frames.capacity(), 0);
        tx.try_send(frame(1)).unwrap();
        rx.try_recv();
        // A trickle keeps its small buffer instead of reallocating per frame.
        let kept = rx.shared.state().frames.capacity();
        assert!(kept > 0 && kept <= KEEP_WHEN_EMPTY, "{kept}");
    }
}
