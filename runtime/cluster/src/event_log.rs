//! The cluster's at-least-once log, its cursors and its dead letters, all in
//! replicated JetStream storage, so that the node taking over a subscriber's
//! partition delivers what the dead owner had not:
//!
//! - the log of topic `T` is the subject `NAME.events.HEX(T)` of the
//!   `NAME-events` stream, which every node publishes to before delivering
//!   (see [`crate::events`]); a position in it is a stream sequence, and it
//!   keeps a day of events;
//! - each at-least-once subscriber's cursor is in `NAME-cursors`, keyed by
//!   partition like its subscription (see [`crate::partitioned`]), adopted
//!   with it; the node's sled keeps the copy its delivery worker reads;
//! - dead letters are in `NAME-dead-letters`, by an id made of the event
//!   and its subscriber, so any node lists them and an event dead-lettered
//!   twice around a takeover is one letter.
//!
//! Reads go to the stream's leader: a worker woken by a publish finds the
//! event that woke it.

use crate::partitioned::PartitionedRecords;
use anthill_store::{CursorRecord, DeadLetter};
use async_nats::jetstream::{self, kv, stream::LastRawMessageErrorKind};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The stream subject topic `topic`'s events are published on: hex, as
/// topics are free text and subjects are not.
pub(crate) fn topic_subject(prefix: &str, topic: &str) -> String {
    format!("{prefix}.events.{}", hex::encode(topic.as_bytes()))
}

/// `[topic length, u16 LE][topic][event]`
pub(crate) fn encode(topic: &str, event: &[u8]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(2 + topic.len() + event.len());
    out.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(event);
    out.into()
}

pub(crate) fn decode(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let len = u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]) as usize;
    let topic = std::str::from_utf8(bytes.get(2..2 + len)?).ok()?;
    Some((topic, &bytes[2 + len..]))
}

/// A subscriber's cursor as the cluster keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReplicatedCursor {
    pub(crate) topic: String,
    pub(crate) module: String,
    pub(crate) key: String,
    pub(crate) next: u64,
    pub(crate) attempts: u32,
}

impl ReplicatedCursor {
    pub(crate) fn record(&self) -> CursorRecord {
        CursorRecord {
            next: self.next,
            attempts: self.attempts,
        }
    }
}

/// The id of the dead letter of `topic`'s event at `seq` for `module`/`key`:
/// the same on every node, and below 2^53 so JSON clients read it exactly.
pub(crate) fn dead_letter_id(topic: &str, module: &str, key: &str, seq: u64) -> u64 {
    let mut h = Sha256::new();
    for part in [topic, module, key] {
        h.update((part.len() as u32).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(seq.to_le_bytes());
    let digest = h.finalize();
    let id = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) & ((1 << 53) - 1);
    id.max(1)
}

/// The replicated side of pub/sub's durable state.
pub(crate) struct StreamLog {
    prefix: String,
    stream: jetstream::stream::Stream,
    pub(crate) cursors: Arc<PartitionedRecords>,
    dead: kv::Store,
}

impl StreamLog {
    pub(crate) fn new(
        prefix: &str,
        stream: jetstream::stream::Stream,
        cursors: Arc<PartitionedRecords>,
        dead: kv::Store,
    ) -> StreamLog {
        StreamLog {
            prefix: prefix.to_owned(),
            stream,
            cursors,
            dead,
        }
    }

    /// The sequence the next event of any topic will have.
    pub(crate) async fn end(&self) -> Result<u64, String> {
        let info = self.stream.get_info().await.map_err(|e| e.to_string())?;
        Ok(info.state.last_sequence + 1)
    }

    /// Up to `limit` events of `topic` from sequence `from` on, in order.
    pub(crate) async fn read(
        &self,
        topic: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, String> {
        let subject = topic_subject(&self.prefix, topic);
        let mut out = Vec::new();
        let mut at = from.max(1);
        while out.len() < limit {
            match self
                .stream
                .get_first_raw_message_by_subject(&subject, at)
                .await
            {
                Ok(m) => {
                    at = m.sequence + 1;
                    match decode(&m.payload) {
                        Some((t, event)) if t == topic => out.push((m.sequence, event.to_vec())),
                        _ => {
                            tracing::warn!(%subject, seq = m.sequence, "an event that does not decode; skipped")
                        }
                    }
                }
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(out)
    }

    /// Whether `topic` has an event at `from` or later.
    pub(crate) async fn waiting(&self, topic: &str, from: u64) -> Result<bool, String> {
        match self
            .stream
            .get_last_raw_message_by_subject(&topic_subject(&self.prefix, topic))
            .await
        {
            Ok(m) => Ok(m.sequence >= from),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }

    pub(crate) async fn put_dead_letter(&self, d: &DeadLetter) -> Result<(), String> {
        let body = serde_json::to_vec(d).expect("dead letters are plain data");
        self.dead
            .put(d.id.to_string(), body.into())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub(crate) async fn dead_letter(&self, id: u64) -> Result<Option<DeadLetter>, String> {
        let Some(body) = self
            .dead
            .get(id.to_string())
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| format!("dead letter {id} does not decode: {e}"))
    }

    pub(crate) async fn dead_letters(&self) -> Result<Vec<DeadLetter>, String> {
        let mut keys = match self.dead.keys().await {
            Ok(k) => k.boxed(),
            Err(e) => return Err(e.to_string()),
        };
        let mut out = Vec::new();
        while let Some(k) = keys.next().await {
            let k = k.map_err(|e| e.to_string())?;
            let Ok(id) = k.parse::<u64>() else { continue };
            if let Some(d) = self.dead_letter(id).await? {
                out.push(d);
            }
        }
        out.sort_by_key(|d| (d.at_ms, d.id));
        Ok(out)
    }

    pub(crate) async fn remove_dead_letter(&self, id: u64) -> Result<bool, String> {
        let present = self.dead_letter(id).await?.is_some();
        if present {
            self.dead
                .purge(id.to_string())
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(present)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_topic() {
        let b = encode("acme/news", b"hello");
        assert_eq!(decode(&b), Some(("acme/news", &b"hello"[..])));
        assert_eq!(decode(&b[..3]), None);
    }

    #[test]
    fn topic_subjects_are_one_token_per_topic() {
        assert_eq!(topic_subject("game", "a.b c"), "game.events.612e622063");
        assert_ne!(topic_subject("game", "ab"), topic_subject("game", "a.b"));
    }

    #[test]
    fn dead_letter_ids_name_the_event_and_subscriber_and_fit_json() {
        let id = dead_letter_id("news", "probe", "a", 7);
        assert_eq!(id, dead_letter_id("news", "probe", "a", 7));
        assert_ne!(id, dead_letter_id("news", "probe", "a", 8));
        assert_ne!(id, dead_letter_id("news", "probe", "b", 7));
        assert_ne!(
            dead_letter_id("ab", "c", "k", 1),
            dead_letter_id("a", "bc", "k", 1)
        );
        assert!(id < 1 << 53 && id > 0);
    }
}
