//! One ordered outgoing queue per destination node: what is published to a
//! node's subject leaves in the order it was queued, on a task of its own,
//! so a caller never waits on NATS and order holds per destination
//! (forwarded sends; room states and pushes for players on other nodes).

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// The queues of one kind of traffic, one per destination node.
pub(crate) struct Outbox {
    client: async_nats::Client,
    /// The subject a node reads this traffic on.
    subject: Box<dyn Fn(&str) -> String + Send + Sync>,
    /// Frames queued for one node before more are refused.
    capacity: usize,
    /// What the traffic is, for the log.
    what: &'static str,
    queues: Mutex<HashMap<String, mpsc::Sender<Bytes>>>,
}

impl Outbox {
    pub(crate) fn new(
        client: async_nats::Client,
        subject: impl Fn(&str) -> String + Send + Sync + 'static,
        capacity: usize,
        what: &'static str,
    ) -> Outbox {
        Outbox {
            client,
            subject: Box::new(subject),
            capacity,
            what,
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// Queues `frame` for `node`; false (and nothing queued) when that
    /// node's queue is full.
    pub(crate) fn send(&self, node: &str, frame: Bytes) -> bool {
        self.queue(node).try_send(frame).is_ok()
    }

    fn queue(&self, node: &str) -> mpsc::Sender<Bytes> {
        let mut queues = self.queues.lock().expect("outgoing queues");
        queues
            .entry(node.to_owned())
            .or_insert_with(|| {
                let (tx, mut rx) = mpsc::channel::<Bytes>(self.capacity);
                let client = self.client.clone();
                let subject = (self.subject)(node);
                let what = self.what;
                tokio::spawn(async move {
                    while let Some(frame) = rx.recv().await {
                        if let Err(e) = client.publish(subject.clone(), frame).await {
                            tracing::debug!(error = %e, "{what} to another node was not published");
                        }
                    }
                });
                tx
            })
            .clone()
    }
}
