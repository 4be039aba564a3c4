//! Per-actor records that follow their actor's partition: durable timers
//! (`NAME-timers`) and subscriptions (`NAME-subscriptions`), each a JetStream
//! KV bucket keyed by partition first (`pP.MODULE.kKEY.tNAME`, key and name
//! in hex), so the node that claims a partition adopts exactly its actors'
//! records, and a timer fires (or a subscription is served) on one node: the
//! partition's owner. A node that loses a partition drops its records there
//! and leaves them in the bucket for the new owner.
//!
//! A one-shot timer that fired on a node which died before its removal
//! reached NATS fires again on the next owner: around a death, timers are
//! at-least-once.

use crate::join::keys_where;
use crate::placement::partition;
use anthill_core::Address;
use anthill_store::StoreError;
use async_nats::jetstream::kv;
use futures::StreamExt;
use serde::{Serialize, de::DeserializeOwned};
use std::collections::HashMap;
use tokio::sync::mpsc;

/// The bucket key of an actor's record `name` (a timer's tag, a topic).
fn record_key(module: &str, key: &str, name: &str) -> String {
    let p = partition(&Address::new(module, key));
    format!(
        "p{p}.{module}.k{}.t{}",
        hex::encode(key.as_bytes()),
        hex::encode(name.as_bytes())
    )
}

enum Op {
    Put(bytes::Bytes),
    Delete,
}

/// The cluster's copy of one kind of record, written in the background in
/// the order the node made its changes (the last change of each wins).
pub(crate) struct PartitionedRecords {
    kv: kv::Store,
    writes: mpsc::UnboundedSender<(String, Op)>,
}

impl PartitionedRecords {
    pub(crate) fn new(kv: kv::Store) -> PartitionedRecords {
        let (writes, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_all(kv.clone(), queue));
        PartitionedRecords { kv, writes }
    }

    /// Stores `record` as `name` of the actor `module`/`key`.
    pub(crate) fn put<T: Serialize>(
        &self,
        module: &str,
        key: &str,
        name: &str,
        record: &T,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_vec(record).expect("records are plain data");
        self.send(record_key(module, key, name), Op::Put(body.into()))
    }

    pub(crate) fn remove(&self, module: &str, key: &str, name: &str) -> Result<(), StoreError> {
        self.send(record_key(module, key, name), Op::Delete)
    }

    fn send(&self, key: String, op: Op) -> Result<(), StoreError> {
        self.writes
            .send((key, op))
            .map_err(|refused| StoreError::Replicated {
                doing: format!("saving {} in {}", refused.0.0, self.kv.name),
                detail: "the node is stopping".into(),
            })
    }

    /// Purges every record of `module` (on undeploy).
    pub(crate) async fn remove_module(&self, module: &str) -> Result<(), String> {
        let doomed = keys_where(&self.kv, |k| k.split('.').nth(1) == Some(module)).await?;
        for k in doomed {
            self.kv.purge(&k).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Every record of partition `p` the bucket holds.
    pub(crate) async fn of_partition<T: DeserializeOwned>(&self, p: u32) -> Result<Vec<T>, String> {
        let prefix = format!("p{p}.");
        let mine = keys_where(&self.kv, |k| k.starts_with(&prefix)).await?;
        let mut out = Vec::with_capacity(mine.len());
        for k in mine {
            // From the leader: a node taking a partition over must not miss
            // a record a lagging follower has not seen yet.
            let latest = crate::latest::latest(&self.kv, &k).await?;
            if let Some(v) = latest.as_ref().and_then(|l| l.present()) {
                match serde_json::from_slice::<T>(v) {
                    Ok(t) => out.push(t),
                    Err(e) => {
                        tracing::warn!(record = %k, error = %e, "a replicated record that does not decode; skipped")
                    }
                }
            }
        }
        Ok(out)
    }
}

async fn write_all(kv: kv::Store, mut queue: mpsc::UnboundedReceiver<(String, Op)>) {
    while let Some(first) = queue.recv().await {
        let mut batch: HashMap<String, Op> = HashMap::from([first]);
        while let Ok((k, op)) = queue.try_recv() {
            batch.insert(k, op);
        }
        futures::stream::iter(batch)
            .for_each_concurrent(64, |(k, op)| {
                let kv = kv.clone();
                async move {
                    let outcome = match op {
                        Op::Put(body) => kv.put(&k, body).await.map(|_| ()).map_err(|e| e.to_string()),
                        Op::Delete => kv.delete(&k).await.map_err(|e| e.to_string()),
                    };
                    if let Err(e) = outcome {
                        tracing::error!(record = %k, error = %e, "a change did not reach NATS; another node taking this actor over may not see it");
                    }
                }
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_lead_with_the_partition_and_are_valid_kv_keys() {
        let k = record_key("probe", "a b", "wake");
        let p = partition(&Address::new("probe", "a b"));
        assert_eq!(k, format!("p{p}.probe.k612062.t77616b65"));
        assert!(
            k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        );
    }
}
