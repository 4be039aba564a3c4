//! Pub/sub across nodes: an event published on one node is appended to the
//! cluster's JetStream stream (`NAME-events`, replicated), on its topic's
//! subject, before any subscriber sees it. The stream is the at-least-once
//! log (see [`crate::event_log`]): each node's at-least-once subscribers
//! read it from their cursors. Every other node also reads the stream
//! through a durable consumer of its own, handing each event to its
//! at-most-once subscribers and waking its at-least-once ones, and
//! acknowledges only then. A node that is down finds what it missed when it
//! comes back (the stream keeps events a day).
//!
//! Subscriptions are served by the owner of their actor's partition.

use crate::event_log::{decode, encode, topic_subject};
use crate::join::Nats;
use anthill_actors::Runtime;
use anthill_core::{CallError, EventBus};
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{self, DeliverPolicy, pull};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The header naming the node an event was published on.
const NODE_HEADER: &str = "Anthill-Node";

/// This node's side of cluster pub/sub.
pub(crate) struct EventFanout {
    nats: Nats,
    prefix: String,
    node: String,
}

impl EventFanout {
    pub(crate) fn new(nats: Nats, prefix: &str, node: &str) -> EventFanout {
        EventFanout {
            nats,
            prefix: prefix.to_owned(),
            node: node.to_owned(),
        }
    }

    /// This node's durable consumer of the stream (created at its first
    /// start, from then on it keeps its place). Opened before the node
    /// serves, so nothing published once it is up is missed.
    pub(crate) async fn open(&self) -> Result<consumer::Consumer<pull::Config>, String> {
        self.nats
            .events
            .get_or_create_consumer::<pull::Config>(
                &format!("events-{}", self.node),
                pull::Config {
                    durable_name: Some(format!("events-{}", self.node)),
                    description: Some(format!("anthill: events for node {}", self.node)),
                    // A node's first start begins with what comes next.
                    deliver_policy: DeliverPolicy::New,
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    // Forgotten a week after the node was last seen.
                    inactive_threshold: Duration::from_secs(7 * 24 * 3600),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// Reads what the other nodes publish, for as long as the node runs.
    pub(crate) async fn follow(self: Arc<Self>, runtime: Weak<Runtime>) {
        loop {
            let messages = match self.open().await {
                Ok(c) => c.messages().await,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open this node's event consumer; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the cluster's events; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            while let Some(msg) = messages.next().await {
                let Ok(msg) = msg else { break };
                let Some(runtime) = runtime.upgrade() else {
                    return;
                };
                let from_here = msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(NODE_HEADER))
                    .is_some_and(|n| n.as_str() == self.node);
                if from_here {
                    let _ = msg.ack().await;
                    continue;
                }
                let Some((topic, event)) = decode(&msg.payload) else {
                    tracing::warn!(subject = %msg.subject, "an event that does not decode; dropped");
                    let _ = msg.ack().await;
                    continue;
                };
                match runtime
                    .events
                    .publish_here(&runtime, topic, event.to_vec())
                    .await
                {
                    Ok(()) => {
                        let _ = msg.ack().await;
                    }
                    Err(e) => {
                        tracing::warn!(topic, error = %e, "an event from another node was not taken; it comes again");
                        let _ = msg
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                            .await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl EventBus for EventFanout {
    fn broadcast(&self, topic: &str, event: &[u8]) -> BoxFuture<'static, Result<(), CallError>> {
        let js = self.nats.js.clone();
        let subject = topic_subject(&self.prefix, topic);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(NODE_HEADER, self.node.as_str());
        let body = encode(topic, event);
        let topic = topic.to_owned();
        Box::pin(async move {
            let unavailable = |e: String| {
                CallError::Unavailable(format!(
                    "the event on `{topic}` reached this node's subscribers but not the cluster's: {e}"
                ))
            };
            js.publish_with_headers(subject, headers, body)
                .await
                .map_err(|e| unavailable(e.to_string()))?
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            Ok(())
        })
    }
}
