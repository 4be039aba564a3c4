//! The delivery worker of one at-least-once subscription: reads the topic's log
//! from the stored cursor, delivers one event at a time, and moves on only when
//! `on-event` succeeded or the event was dead-lettered.

use crate::Runtime;
use crate::actor::Envelope;
use anthill_core::Address;
use anthill_core::CallError;
use anthill_core::now_ms;
use anthill_core::trace::TraceParent;
use anthill_store::{CursorRecord, DeadLetter};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use tracing::Instrument;

/// Delivers one event and waits for the subscriber's verdict.
pub(super) async fn deliver_once(
    node: &Arc<Runtime>,
    topic: &str,
    to: &Address,
    event: Vec<u8>,
    timeout: Duration,
) -> Result<(), CallError> {
    let (ack, verdict) = oneshot::channel();
    // The durable log keeps no trace context: each delivery starts a trace.
    let span = tracing::trace_span!(
        target: anthill_core::trace::TARGET,
        "event.deliver",
        topic = %topic,
        to = %to,
    );
    let trace = span.in_scope(TraceParent::current);
    node.router.deliver(
        node,
        to,
        Envelope::Event {
            topic: topic.to_owned(),
            event,
            ack: Some(ack),
            trace,
        },
    )?;
    match tokio::time::timeout(timeout, verdict)
        .instrument(span)
        .await
    {
        Ok(Ok(v)) => v,
        Ok(Err(_)) => Err(CallError::Internal(format!(
            "{to} stopped before acknowledging"
        ))),
        Err(_) => Err(CallError::Timeout {
            to: to.to_string(),
            ms: timeout.as_millis() as u64,
        }),
    }
}

fn backoff(base_ms: u64, max_ms: u64, attempts: u32) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << attempts.saturating_sub(1).min(20));
    Duration::from_millis(exp.min(max_ms))
}

pub(super) async fn run(node: Arc<Runtime>, topic: String, to: Address, wake: Arc<Notify>) {
    let settings = node.events.settings.clone();
    let timeout = Duration::from_millis(settings.ack_timeout_ms);
    loop {
        let cursor = match node.store.cursor(&topic, &to.module, &to.key) {
            Ok(Some(c)) => c,
            Ok(None) => return, // unsubscribed
            Err(e) => {
                tracing::error!(%topic, subscriber = %to, error = %e, "cannot read the delivery cursor; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let batch = match node.store.events_from(&topic, cursor.next, 64) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(%topic, error = %e, "cannot read the event log; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            // A publish wakes us; the timeout is a safety net only.
            let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
            continue;
        }
        let mut attempts = cursor.attempts;
        for (seq, event) in batch {
            loop {
                match deliver_once(&node, &topic, &to, event.clone(), timeout).await {
                    Ok(()) => {
                        node.events
                            .deliveries
                            .with_label_values(&["at-least-once", "delivered"])
                            .inc();
                        attempts = 0;
                        save(&node, &topic, &to, seq + 1, attempts);
                        break;
                    }
                    Err(e) => {
                        attempts += 1;
                        node.events
                            .deliveries
                            .with_label_values(&["at-least-once", "failed"])
                            .inc();
                        if attempts >= settings.max_attempts {
                            let id = match node
                                .store
                                .dead_letter_id(&topic, &to.module, &to.key, seq)
                            {
                                Ok(id) => id,
                                Err(se) => {
                                    tracing::error!(%topic, subscriber = %to, error = %se, "cannot dead-letter an event; retrying it");
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                    continue;
                                }
                            };
                            let letter = DeadLetter {
                                id,
                                topic: topic.clone(),
                                module: to.module.clone(),
                                key: to.key.clone(),
                                seq,
                                event: event.clone(),
                                attempts,
                                last_error: e.to_string(),
                                at_ms: now_ms(),
                            };
                            if let Err(se) = node.store.put_dead_letter(&letter) {
                                tracing::error!(%topic, subscriber = %to, error = %se, "cannot dead-letter an event; retrying it");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                continue;
                            }
                            node.events.dead_lettered.inc();
                            tracing::warn!(%topic, subscriber = %to, seq, attempts, error = %e, dead_letter = id, "event dead-lettered");
                            attempts = 0;
                            save(&node, &topic, &to, seq + 1, attempts);
                            break;
                        }
                        tracing::info!(%topic, subscriber = %to, seq, attempts, error = %e, "event delivery failed; retrying");
                        save(&node, &topic, &to, seq, attempts);
                        tokio::time::sleep(backoff(
                            settings.retry_base_ms,
                            settings.retry_max_ms,
                            attempts,
                        ))
                        .await;
                    }
                }
            }
        }
        trim(&node, &topic);
    }
}

/// Saves where `to` is in `topic`'s log: the next sequence and the attempts
/// made on it.
fn save(node: &Runtime, topic: &str, to: &Address, next: u64, attempts: u32) {
    let cursor = CursorRecord { next, attempts };
    if let Err(e) = node.store.put_cursor(topic, &to.module, &to.key, cursor) {
        tracing::error!(%topic, subscriber = %to, error = %e, "cannot save the delivery cursor; events may be delivered again after a restart");
    }
}

/// Drops log entries every at-least-once subscriber of the topic is past.
fn trim(node: &Runtime, topic: &str) {
    let mut min = u64::MAX;
    for (t, address, durable) in node.events.subscriptions() {
        if t == topic && durable {
            match node.store.cursor(topic, &address.module, &address.key) {
                Ok(Some(c)) => min = min.min(c.next),
                _ => return,
            }
        }
    }
    if min != u64::MAX {
        let _ = node.store.trim_events(topic, min);
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(100, 1000, 1), Duration::from_millis(100));
        assert_eq!(backoff(100, 1000, 2), Duration::from_millis(200));
        assert_eq!(backoff(100, 1000, 3), Duration::from_millis(400));
        assert_eq!(backoff(100, 1000, 9), Duration::from_millis(1000));
        assert_eq!(backoff(100, 1000, 200), Duration::from_millis(1000));
    }
}
