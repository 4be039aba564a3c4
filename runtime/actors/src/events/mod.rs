//! Pub/sub between actors, with the delivery guarantee chosen per subscription:
//!
//! - **at-most-once**: `publish` hands the event to each subscriber's mailbox and
//!   returns; a failed delivery (full mailbox, `on-event` error, trap) is logged
//!   and counted, never retried.
//! - **at-least-once**: `publish` appends the event to the topic's durable log
//!   (the store's: sled alone, the cluster's replicated stream in a cluster)
//!   before returning. A worker per subscription delivers the
//!   log in order, waits for `on-event` to succeed, retries with exponential
//!   backoff, and after `max_attempts` moves the event to the dead letters. Its
//!   cursor is stored, so delivery resumes where it stopped after a restart.
//!
//! Subscriptions belong to an actor address and are stored: a passivated
//! subscriber is activated by the next event.

mod worker;

use crate::Runtime;
use crate::actor::Envelope;
use anthill_core::Address;
use anthill_core::CallError;
use anthill_core::metrics::{counter, counter_vec};
use anthill_core::now_ms;
use anthill_core::trace::TraceParent;
use anthill_store::{CursorRecord, DeadLetter, StoreError, SubscriptionRecord};
use arc_swap::ArcSwap;
use prometheus::{IntCounter, IntCounterVec};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Retry policy of at-least-once delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSettings {
    /// Delivery attempts before an event goes to the dead letters.
    pub max_attempts: u32,
    /// First retry delay; doubles on each further failure.
    pub retry_base_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// How long a delivery may wait for `on-event` to finish.
    pub ack_timeout_ms: u64,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            max_attempts: 5,
            retry_base_ms: 200,
            retry_max_ms: 30_000,
            ack_timeout_ms: 30_000,
        }
    }
}

/// Longest topic name; topics may not contain NUL.
const MAX_TOPIC: usize = 256;

#[derive(Clone)]
struct Subscriber {
    address: Address,
    /// Present for at-least-once subscriptions: wakes the delivery worker.
    wake: Option<Arc<Notify>>,
}

struct Worker {
    wake: Arc<Notify>,
    task: tokio::task::AbortHandle,
}

/// The node's pub/sub.
pub struct Events {
    topics: ArcSwap<HashMap<String, Arc<[Subscriber]>>>,
    /// Serializes sequence allocation + append so a topic's log is written in
    /// sequence order (a worker never reads past an event still being written).
    append: Mutex<()>,
    workers: Mutex<HashMap<(String, Address), Worker>>,
    settings: EventSettings,
    published: IntCounter,
    deliveries: IntCounterVec,
    dead_lettered: IntCounter,
}

impl Events {
    /// No topics yet, reporting to `registry`.
    pub fn new(settings: EventSettings, registry: &prometheus::Registry) -> Events {
        let published = counter(
            registry,
            "anthill_events_published_total",
            "Events published.",
        );
        let deliveries = counter_vec(
            registry,
            "anthill_event_deliveries_total",
            "Event deliveries by guarantee and outcome.",
            &["delivery", "outcome"],
        );
        let dead_lettered = counter(
            registry,
            "anthill_dead_letters_total",
            "Events moved to the dead letters.",
        );
        Events {
            topics: ArcSwap::default(),
            append: Mutex::new(()),
            workers: Mutex::new(HashMap::new()),
            settings,
            published,
            deliveries,
            dead_lettered,
        }
    }

    /// Loads the stored subscriptions and starts the delivery workers.
    pub fn start(node: &Arc<Runtime>) -> Result<usize, StoreError> {
        let subs = node.store.subscriptions()?;
        let n = subs.len();
        for s in subs {
            node.events.attach(
                node,
                &s.topic,
                Address::new(s.module, s.key),
                s.at_least_once,
            );
        }
        Ok(n)
    }

    /// Serves subscriptions read from elsewhere (a cluster node taking over a
    /// partition adopts its actors' subscriptions); an at-least-once one
    /// starts with the next event published here.
    pub fn adopt(&self, node: &Arc<Runtime>, records: Vec<SubscriptionRecord>) -> usize {
        let mut n = 0;
        for s in records {
            let address = Address::new(s.module.as_str(), s.key.as_str());
            if s.at_least_once {
                let _append = self.append.lock().expect("events poisoned");
                let fresh = match node.store.cursor(&s.topic, &s.module, &s.key) {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => node.store.log_end(&s.topic).and_then(|next| {
                        node.store.put_cursor(
                            &s.topic,
                            &s.module,
                            &s.key,
                            CursorRecord { next, attempts: 0 },
                        )
                    }),
                    Err(e) => Err(e),
                };
                if let Err(e) = fresh {
                    tracing::error!(topic = %s.topic, subscriber = %address, error = %e, "cannot adopt a subscription");
                    continue;
                }
            }
            self.attach(node, &s.topic, address, s.at_least_once);
            n += 1;
        }
        n
    }

    /// Stops serving the subscriptions of the actors `which` selects, leaving
    /// them stored (their partition moved to another node, which serves them).
    pub fn forget(&self, which: &(dyn Fn(&Address) -> bool + Sync)) -> usize {
        let topics = self.topics.load_full();
        let mut n = 0;
        for (topic, subs) in topics.iter() {
            for s in subs.iter().filter(|s| which(&s.address)) {
                self.detach(topic, &s.address);
                n += 1;
            }
        }
        n
    }

    /// Stops every delivery worker (at shutdown).
    pub fn stop(&self) {
        for (_, w) in self.workers.lock().expect("events poisoned").drain() {
            w.task.abort();
        }
    }

    fn check_topic(topic: &str) -> Result<(), CallError> {
        if topic.is_empty() || topic.len() > MAX_TOPIC || topic.contains('\0') {
            return Err(CallError::BadRequest(format!(
                "topic names are 1 to {MAX_TOPIC} bytes without NUL (got {} bytes)",
                topic.len()
            )));
        }
        Ok(())
    }

    /// Adds a subscriber to the in-memory table (and its worker if durable).
    fn attach(&self, node: &Arc<Runtime>, topic: &str, address: Address, at_least_once: bool) {
        let wake = at_least_once.then(|| {
            let mut workers = self.workers.lock().expect("events poisoned");
            let entry = workers
                .entry((topic.to_owned(), address.clone()))
                .or_insert_with(|| {
                    let wake = Arc::new(Notify::new());
                    let task = tokio::spawn(worker::run(
                        node.clone(),
                        topic.to_owned(),
                        address.clone(),
                        wake.clone(),
                    ));
                    Worker {
                        wake,
                        task: task.abort_handle(),
                    }
                });
            entry.wake.clone()
        });
        self.topics.rcu(|topics| {
            let mut next = (**topics).clone();
            let mut subs: Vec<Subscriber> = next
                .get(topic)
                .map(|s| s.iter().filter(|s| s.address != address).cloned().collect())
                .unwrap_or_default();
            subs.push(Subscriber {
                address: address.clone(),
                wake: wake.clone(),
            });
            next.insert(topic.to_owned(), subs.into());
            next
        });
    }

    fn detach(&self, topic: &str, address: &Address) {
        if let Some(w) = self
            .workers
            .lock()
            .expect("events poisoned")
            .remove(&(topic.to_owned(), address.clone()))
        {
            w.task.abort();
        }
        self.topics.rcu(|topics| {
            let mut next = (**topics).clone();
            if let Some(subs) = next.get(topic) {
                let rest: Vec<Subscriber> = subs
                    .iter()
                    .filter(|s| &s.address != address)
                    .cloned()
                    .collect();
                if rest.is_empty() {
                    next.remove(topic);
                } else {
                    next.insert(topic.to_owned(), rest.into());
                }
            }
            next
        });
    }

    /// Subscribes `address`. Idempotent: subscribing again with the same
    /// guarantee keeps the cursor; a new at-least-once subscription starts with
    /// the next event published.
    /// Topics `address` subscribes to (subscribing is rare: a scan is fine).
    fn subscriptions_of(&self, address: &Address) -> usize {
        self.topics
            .load()
            .values()
            .filter(|subs| subs.iter().any(|s| &s.address == address))
            .count()
    }

    /// Subscribes `address` to `topic` (scoped); `durable` is at-least-once, with a cursor in the store.
    pub fn subscribe(
        &self,
        node: &Arc<Runtime>,
        address: &Address,
        topic: &str,
        at_least_once: bool,
    ) -> Result<(), CallError> {
        Self::check_topic(topic)?;
        let existing = self.topics.load().get(topic).and_then(|subs| {
            subs.iter()
                .find(|s| &s.address == address)
                .map(|s| s.wake.is_some())
        });
        if existing == Some(at_least_once) {
            return Ok(());
        }
        let limit = node.config.limits.max_subscriptions_per_actor;
        if existing.is_none() && self.subscriptions_of(address) >= limit {
            return Err(CallError::LimitReached {
                actor: address.to_string(),
                limit: "limits.max_subscriptions_per_actor",
                detail: format!(
                    "it already subscribes to {limit} topics; unsubscribe from one first"
                ),
            });
        }
        if at_least_once {
            let _append = self.append.lock().expect("events poisoned");
            let next = node.store.log_end(topic).map_err(crate::runtime::stored)?;
            node.store
                .put_cursor(
                    topic,
                    &address.module,
                    &address.key,
                    CursorRecord { next, attempts: 0 },
                )
                .map_err(crate::runtime::stored)?;
        }
        if existing.is_some() {
            self.detach(topic, address);
        }
        node.store
            .put_subscription(&SubscriptionRecord {
                topic: topic.to_owned(),
                module: address.module.clone(),
                key: address.key.clone(),
                at_least_once,
            })
            .map_err(crate::runtime::stored)?;
        self.attach(node, topic, address.clone(), at_least_once);
        Ok(())
    }

    /// Ends `address`'s subscription to `topic` (scoped) and forgets its cursor.
    pub fn unsubscribe(
        &self,
        node: &Arc<Runtime>,
        address: &Address,
        topic: &str,
    ) -> Result<(), CallError> {
        Self::check_topic(topic)?;
        self.detach(topic, address);
        node.store
            .remove_subscription(topic, &address.module, &address.key)
            .map_err(crate::runtime::stored)
    }

    /// Drops every subscription of a module (on undeploy).
    pub fn remove_module(&self, module: &str) {
        let topics = self.topics.load_full();
        for (topic, subs) in topics.iter() {
            for s in subs.iter().filter(|s| s.address.module == module) {
                self.detach(topic, &s.address);
            }
        }
    }

    /// Publishes an event. Returns once at-least-once subscribers' copy is on
    /// disk and at-most-once subscribers' copies are in their mailboxes; in a
    /// cluster, also once the event is durable for the other nodes.
    pub async fn publish(
        &self,
        node: &Arc<Runtime>,
        topic: &str,
        event: Vec<u8>,
    ) -> Result<(), CallError> {
        Self::check_topic(topic)?;
        self.published.inc();
        // In a cluster the bus's stream is the at-least-once log: the event
        // is in it before this node's workers are woken to read it.
        if let Some(bus) = node.event_bus() {
            bus.broadcast(topic, &event).await?;
        }
        self.publish_here(node, topic, event).await
    }

    /// Delivers an event to this node's subscribers only: what an event
    /// published on another node of the cluster arrives through.
    pub async fn publish_here(
        &self,
        node: &Arc<Runtime>,
        topic: &str,
        event: Vec<u8>,
    ) -> Result<(), CallError> {
        Self::check_topic(topic)?;
        let Some(subs) = self.topics.load().get(topic).cloned() else {
            return Ok(());
        };
        if subs.iter().any(|s| s.wake.is_some()) {
            {
                let _append = self.append.lock().expect("events poisoned");
                node.store
                    .append_event(topic, &event)
                    .map_err(crate::runtime::stored)?;
            }
            node.store.flush().await.map_err(crate::runtime::stored)?;
        }
        for s in subs.iter() {
            match &s.wake {
                Some(wake) => wake.notify_one(),
                None => {
                    let envelope = Envelope::Event {
                        topic: topic.to_owned(),
                        event: event.clone(),
                        ack: None,
                        trace: TraceParent::current(),
                    };
                    let outcome = match node.router.deliver(node, &s.address, envelope) {
                        Ok(()) => "delivered",
                        Err(e) => {
                            tracing::warn!(topic, subscriber = %s.address, error = %e, "at-most-once event dropped");
                            "dropped"
                        }
                    };
                    self.deliveries
                        .with_label_values(&["at-most-once", outcome])
                        .inc();
                }
            }
        }
        Ok(())
    }

    /// Events that failed every delivery attempt.
    pub fn dead_letters(&self, node: &Runtime) -> Result<Vec<DeadLetter>, StoreError> {
        node.store.dead_letters()
    }

    /// Delivers a dead letter once more; on success it leaves the list.
    pub async fn replay(&self, node: &Arc<Runtime>, id: u64) -> Result<(), CallError> {
        let mut d = node
            .store
            .dead_letter(id)
            .map_err(crate::runtime::stored)?
            .ok_or_else(|| CallError::NotFound(format!("dead letter {id}")))?;
        let address = Address::new(d.module.clone(), d.key.clone());
        // In a cluster the subscriber's owner replays (events do not cross
        // nodes): this node, if nobody else holds the actor.
        if let Some(placement) = node.placement()
            && !placement.locate(&address).await?
        {
            let owner = placement
                .owner(&address)
                .map_or_else(|| "another node".to_owned(), |(n, _)| format!("node {n}"));
            return Err(CallError::Unavailable(format!(
                "dead letter {id} is for {address}, which lives on {owner}: replay it through that node's admin API"
            )));
        }
        match worker::deliver_once(
            node,
            &d.topic,
            &address,
            d.event.clone(),
            self.ack_timeout(),
        )
        .await
        {
            Ok(()) => {
                node.store
                    .remove_dead_letter(id)
                    .map_err(crate::runtime::stored)?;
                self.deliveries
                    .with_label_values(&["replay", "delivered"])
                    .inc();
                Ok(())
            }
            Err(e) => {
                d.attempts += 1;
                d.last_error = e.to_string();
                d.at_ms = now_ms();
                let _ = node.store.put_dead_letter(&d);
                Err(e)
            }
        }
    }

    /// Drops a dead letter; false if there was none.
    pub fn discard(&self, node: &Runtime, id: u64) -> Result<bool, StoreError> {
        node.store.remove_dead_letter(id)
    }

    fn ack_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.ack_timeout_ms)
    }

    /// The topics and their subscribers, for operators.
    pub fn subscriptions(&self) -> Vec<(String, Address, bool)> {
        let mut out: Vec<_> = self
            .topics
            .load()
            .iter()
            .flat_map(|(t, subs)| {
                subs.iter()
                    .map(|s| (t.clone(), s.address.clone(), s.wake.is_some()))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    }
}
