//! Reads of one key of a KV bucket from its stream's leader.
//!
//! A KV `get`/`entry` is a JetStream direct get, which any replica may answer,
//! and a lagging replica answers with what it has: an older record, or none
//! (nats-server #6557, #4162, #4710). Every read whose answer
//! the node acts on (a module record it converges to, a session it takes
//! over, a claim it replaces) goes to the leader through a message get
//! instead. A leader change can still serve an old value for a moment; the
//! callers that write back do so by compare-and-set, so that costs a retry,
//! not a lost write.

use async_nats::jetstream::kv;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;

/// A key's newest record as the stream's leader holds it.
#[derive(Debug, Clone)]
pub(crate) struct Latest {
    /// The record's value (empty for a delete or purge marker).
    pub(crate) value: Bytes,
    /// Its revision: the stream sequence a compare-and-set expects.
    pub(crate) revision: u64,
    /// False for a delete or purge marker.
    pub(crate) put: bool,
}

impl Latest {
    /// The value, unless the record is a delete or purge marker.
    pub(crate) fn present(&self) -> Option<&Bytes> {
        self.put.then_some(&self.value)
    }
}

/// The newest record of `key` in `kv`, read from the leader; `None` when the
/// bucket never held the key (or its history was purged).
pub(crate) async fn latest(kv: &kv::Store, key: &str) -> Result<Option<Latest>, String> {
    let subject = format!("$KV.{}.{key}", kv.name);
    match kv.stream.get_last_raw_message_by_subject(&subject).await {
        Ok(m) => {
            let put = m
                .headers
                .get("KV-Operation")
                .is_none_or(|op| op.as_str() == "PUT");
            Ok(Some(Latest {
                value: if put { m.payload } else { Bytes::new() },
                revision: m.sequence,
                put,
            }))
        }
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}
