//! What the direct endpoint's driver hands one connection's task: control
//! stream bytes and datagrams read from the player, and the stream events
//! its writer waits for. Bounded: the driver stops reading the stream while
//! the task is behind (QUIC flow control then holds the player back) and
//! drops datagrams beyond a limit, as a full socket would.

use crate::connection::Input;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Control-stream bytes read ahead of the connection's task.
pub(super) const STREAM_AHEAD: usize = 64 << 10;
/// Datagrams queued for the connection's task; more are dropped.
const DATAGRAMS_AHEAD: usize = 256;

#[derive(Default)]
struct State {
    inputs: VecDeque<Input>,
    stream_bytes: usize,
    datagrams: usize,
    /// The client opened its control stream.
    control: bool,
    /// The connection is gone (lost, closed, drained).
    closed: bool,
    /// The client finished its side of the control stream: no more input,
    /// though the node may still write.
    input_ended: bool,
    /// The control stream's last byte reached the client, or it stopped it.
    finished: bool,
    /// The driver left stream bytes unread because this queue was full.
    read_paused: bool,
}

/// One connection's queue from the driver (see the module doc).
#[derive(Default)]
pub(super) struct Inbox {
    state: Mutex<State>,
    /// Wakes the reader: input, the control stream, the end.
    ready: Notify,
    /// Wakes the writer: the stream can take more, or it is finished.
    writable: Notify,
}

impl Inbox {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many stream bytes the driver may read for this connection now.
    pub(super) fn stream_room(&self) -> usize {
        let mut s = self.state();
        let room = STREAM_AHEAD.saturating_sub(s.stream_bytes);
        if room == 0 {
            s.read_paused = true;
        }
        room
    }

    pub(super) fn push_stream(&self, bytes: bytes::Bytes) {
        let mut s = self.state();
        s.stream_bytes += bytes.len();
        s.inputs.push_back(Input::Stream(bytes));
        drop(s);
        self.ready.notify_one();
    }

    /// Queues a datagram; false if it was dropped.
    pub(super) fn push_datagram(&self, d: bytes::Bytes) -> bool {
        let mut s = self.state();
        if s.datagrams >= DATAGRAMS_AHEAD {
            return false;
        }
        s.datagrams += 1;
        s.inputs.push_back(Input::Datagram(d));
        drop(s);
        self.ready.notify_one();
        true
    }

    pub(super) fn control_opened(&self) {
        self.state().control = true;
        self.ready.notify_one();
    }

    pub(super) fn stream_writable(&self) {
        self.writable.notify_one();
    }

    pub(super) fn stream_finished(&self) {
        self.state().finished = true;
        self.writable.notify_one();
    }

    pub(super) fn close(&self) {
        let mut s = self.state();
        s.closed = true;
        s.finished = true;
        drop(s);
        self.ready.notify_one();
        self.writable.notify_one();
    }

    pub(super) fn end_input(&self) {
        self.state().input_ended = true;
        self.ready.notify_one();
    }

    pub(super) fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Waits for the control stream; false if the connection ended first.
    pub(super) async fn control(&self) -> bool {
        loop {
            {
                let s = self.state();
                if s.control {
                    return true;
                }
                if s.closed {
                    return false;
                }
            }
            self.ready.notified().await;
        }
    }

    /// The next input, and whether the driver should read the stream again
    /// (it paused and there is room now); `None` once the connection is
    /// gone and the queue drained. Cancel-safe.
    pub(super) async fn next(&self) -> Option<(Input, bool)> {
        loop {
            {
                let mut s = self.state();
                if let Some(input) = s.inputs.pop_front() {
                    match &input {
                        Input::Stream(b) => s.stream_bytes -= b.len(),
                        Input::Datagram(_) => s.datagrams -= 1,
                    }
                    let resume = s.read_paused && s.stream_bytes <= STREAM_AHEAD / 2;
                    if resume {
                        s.read_paused = false;
                    }
                    return Some((input, resume));
                }
                if s.closed || s.input_ended {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }

    /// Waits until the stream can take more (or is finished or gone).
    pub(super) async fn writable(&self) {
        self.writable.notified().await;
    }

    /// Waits until the control stream is finished or the connection gone.
    pub(super) async fn finished(&self) {
        loop {
            if self.state().finished {
                return;
            }
            self.writable.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn stream_len(i: &Input) -> usize {
        match i {
            Input::Stream(b) => b.len(),
            Input::Datagram(_) => panic!("a datagram where stream bytes were due"),
        }
    }

    #[tokio::test]
    async fn a_full_queue_pauses_reading_until_half_drained() {
        let inbox = Inbox::default();
        let chunk = STREAM_AHEAD / 4;
        for _ in 0..4 {
            assert!(inbox.stream_room() >= chunk);
            inbox.push_stream(Bytes::from(vec![0u8; chunk]));
        }
        // Full: the driver must stop reading, and is told when to resume.
        assert_eq!(inbox.stream_room(), 0);
        let (first, resume) = inbox.next().await.unwrap();
        assert_eq!(stream_len(&first), chunk);
        assert!(!resume, "3/4 full is not room enough to resume");
        let (_, resume) = inbox.next().await.unwrap();
        assert!(resume, "half drained: the driver reads again");
        let (_, resume) = inbox.next().await.unwrap();
        assert!(!resume, "resumed once, not at every input");
    }

    #[tokio::test]
    async fn datagrams_beyond_the_limit_are_dropped_in_order() {
        let inbox = Inbox::default();
        for i in 0..DATAGRAMS_AHEAD {
            assert!(inbox.push_datagram(Bytes::from(vec![i as u8])));
        }
        assert!(!inbox.push_datagram(Bytes::from_static(b"late")));
        let (first, _) = inbox.next().await.unwrap();
        assert!(matches!(first, Input::Datagram(d) if d[..] == [0]));
        // One taken, one more fits.
        assert!(inbox.push_datagram(Bytes::from_static(b"fits")));
    }

    #[tokio::test]
    async fn the_end_of_input_comes_after_what_was_queued_and_keeps_the_writer() {
        let inbox = Inbox::default();
        inbox.push_stream(Bytes::from_static(b"last"));
        inbox.end_input();
        assert!(inbox.next().await.is_some());
        assert!(inbox.next().await.is_none());
        // The client only finished its side: the node may still write.
        assert!(!inbox.is_closed());
        inbox.close();
        assert!(inbox.is_closed());
        inbox.finished().await;
        assert!(
            !inbox.control().await,
            "a closed connection opens no stream"
        );
    }
}
