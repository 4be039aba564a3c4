//! Persistence of pub/sub: subscriptions, the durable event log of topics with
//! at-least-once subscribers, each subscriber's cursor, and dead letters.
//!
//! Keys: `subscriptions` and `cursors` by `topic\0module\0key`; `events` by
//! `topic\0` + big-endian sequence number, so a prefix scan reads a topic in
//! publish order; `dead_letters` by big-endian id.

use super::{Store, StoreError, db_err, decode, encode, key_of, parts_of};
use serde::{Deserialize, Serialize};

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub topic: String,
    pub module: String,
    pub key: String,
    /// Whether events are logged and retried until acknowledged.
    pub at_least_once: bool,
}

/// Where an at-least-once subscriber is in its topic's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorRecord {
    /// The next sequence number to deliver.
    pub next: u64,
    /// Failed attempts at delivering `next` so far.
    pub attempts: u32,
}

/// An event that exhausted its delivery attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: u64,
    pub topic: String,
    pub module: String,
    pub key: String,
    pub seq: u64,
    pub event: Vec<u8>,
    pub attempts: u32,
    pub last_error: String,
    pub at_ms: u64,
}

impl Store {
    /// A fresh, never reused sequence number (persisted across restarts).
    fn next_sequence(&self) -> Result<u64, StoreError> {
        self.db
            .generate_id()
            .map_err(db_err("allocating an event sequence number"))
    }
}

fn event_key(topic: &str, seq: u64) -> Vec<u8> {
    let mut k = topic.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

impl crate::EventLog for Store {
    fn put_subscription(&self, s: &SubscriptionRecord) -> Result<(), StoreError> {
        self.subscriptions
            .insert(key_of(&[&s.topic, &s.module, &s.key]), encode(s))
            .map(|_| ())
            .map_err(db_err(format!(
                "saving subscription {} of {}/{}",
                s.topic, s.module, s.key
            )))
    }

    fn remove_subscription(&self, topic: &str, module: &str, key: &str) -> Result<(), StoreError> {
        let k = key_of(&[topic, module, key]);
        self.subscriptions.remove(&k).map_err(db_err(format!(
            "removing subscription {topic} of {module}/{key}"
        )))?;
        self.cursors.remove(&k).map_err(db_err(format!(
            "removing the cursor of {topic} for {module}/{key}"
        )))?;
        Ok(())
    }

    fn subscriptions(&self) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.subscriptions.iter() {
            let (k, v) = item.map_err(db_err("listing subscriptions"))?;
            out.push(decode(&v).map_err(|detail| StoreError::Corrupt {
                tree: "subscriptions",
                key: parts_of(&k).join("/"),
                detail,
            })?);
        }
        Ok(out)
    }

    /// Sequences are node-wide and never reused, so the next fresh one is
    /// past every event already appended to any topic.
    fn log_end(&self, _topic: &str) -> Result<u64, StoreError> {
        self.next_sequence()
    }

    fn append_event(&self, topic: &str, event: &[u8]) -> Result<(), StoreError> {
        let seq = self.next_sequence()?;
        self.events
            .insert(event_key(topic, seq), event)
            .map(|_| ())
            .map_err(db_err(format!("logging an event on {topic}")))
            .map_err(|e| self.noted(e))
    }

    fn events_from(
        &self,
        topic: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let end = {
            let mut e = topic.as_bytes().to_vec();
            e.push(1);
            e
        };
        for item in self.events.range(event_key(topic, from)..end).take(limit) {
            let (k, v) = item.map_err(db_err(format!("reading events of {topic}")))?;
            let seq = u64::from_be_bytes(k[k.len() - 8..].try_into().expect("8-byte suffix"));
            out.push((seq, v.to_vec()));
        }
        Ok(out)
    }

    fn trim_events(&self, topic: &str, below: u64) -> Result<usize, StoreError> {
        let mut n = 0;
        for item in self
            .events
            .range(event_key(topic, 0)..event_key(topic, below))
            .keys()
        {
            let k = item.map_err(db_err(format!("trimming events of {topic}")))?;
            self.events
                .remove(k)
                .map_err(db_err(format!("trimming events of {topic}")))?;
            n += 1;
        }
        Ok(n)
    }

    fn put_cursor(
        &self,
        topic: &str,
        module: &str,
        key: &str,
        c: CursorRecord,
    ) -> Result<(), StoreError> {
        self.cursors
            .insert(key_of(&[topic, module, key]), encode(&c))
            .map(|_| ())
            .map_err(db_err(format!(
                "saving the cursor of {topic} for {module}/{key}"
            )))
    }

    fn cursor(
        &self,
        topic: &str,
        module: &str,
        key: &str,
    ) -> Result<Option<CursorRecord>, StoreError> {
        let raw = self
            .cursors
            .get(key_of(&[topic, module, key]))
            .map_err(db_err(format!(
                "reading the cursor of {topic} for {module}/{key}"
            )))?;
        raw.map(|v| {
            decode(&v).map_err(|detail| StoreError::Corrupt {
                tree: "cursors",
                key: format!("{topic}/{module}/{key}"),
                detail,
            })
        })
        .transpose()
    }

    fn dead_letter_id(&self, _: &str, _: &str, _: &str, _: u64) -> Result<u64, StoreError> {
        self.next_sequence()
    }

    fn put_dead_letter(&self, d: &DeadLetter) -> Result<(), StoreError> {
        self.dead_letters
            .insert(d.id.to_be_bytes(), encode(d))
            .map(|_| ())
            .map_err(db_err(format!("saving dead letter {}", d.id)))
    }

    fn dead_letter(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        let raw = self
            .dead_letters
            .get(id.to_be_bytes())
            .map_err(db_err(format!("reading dead letter {id}")))?;
        raw.map(|v| {
            decode(&v).map_err(|detail| StoreError::Corrupt {
                tree: "dead_letters",
                key: id.to_string(),
                detail,
            })
        })
        .transpose()
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let mut out = Vec::new();
        for item in self.dead_letters.iter() {
            let (k, v) = item.map_err(db_err("listing dead letters"))?;
            out.push(decode(&v).map_err(|detail| StoreError::Corrupt {
                tree: "dead_letters",
                key: format!("{:?}", k.as_ref()),
                detail,
            })?);
        }
        Ok(out)
    }

    fn remove_dead_letter(&self, id: u64) -> Result<bool, StoreError> {
        self.dead_letters
            .remove(id.to_be_bytes())
            .map(|old| old.is_some())
            .map_err(db_err(format!("removing dead letter {id}")))
    }
}
