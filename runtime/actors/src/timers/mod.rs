//! Durable actor timers. `set-timer` writes the timer to the store and to an
//! in-memory schedule; one task sleeps until the earliest is due and delivers
//! `on-timer` through the router, which activates a passivated actor. Timers are
//! reloaded at start, so they survive passivation and restarts.

use crate::Runtime;
use crate::actor::Envelope;
use anthill_core::Address;
use anthill_core::CallError;
use anthill_core::now_ms;
use anthill_store::{StoreError, TimerRecord};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Shortest timer delay and repeat period: bounds the work one actor can ask for.
const MIN_PERIOD_MS: u64 = 1;

type Owner = (Address, String);

#[derive(Default)]
struct Schedule {
    /// (due, owner) in due order.
    due: BTreeSet<(u64, Owner)>,
    timers: HashMap<Owner, TimerRecord>,
    per_actor: HashMap<Address, usize>,
}

impl Schedule {
    fn insert(&mut self, t: TimerRecord) {
        let owner = (Address::new(t.module.clone(), t.key.clone()), t.tag.clone());
        self.remove(&owner);
        *self.per_actor.entry(owner.0.clone()).or_default() += 1;
        self.due.insert((t.due_ms, owner.clone()));
        self.timers.insert(owner, t);
    }

    fn remove(&mut self, owner: &Owner) -> Option<TimerRecord> {
        let t = self.timers.remove(owner)?;
        self.due.remove(&(t.due_ms, owner.clone()));
        if let Some(n) = self.per_actor.get_mut(&owner.0) {
            *n -= 1;
            if *n == 0 {
                self.per_actor.remove(&owner.0);
            }
        }
        Some(t)
    }
}

/// The node's timers.
#[derive(Default)]
pub struct Timers {
    schedule: Mutex<Schedule>,
    changed: Notify,
}

impl Timers {
    /// No timers yet.
    pub fn new() -> Timers {
        Timers::default()
    }

    /// Loads the stored timers; returns how many.
    pub fn load(&self, node: &Runtime) -> Result<usize, StoreError> {
        let all = node.store.timers()?;
        let n = all.len();
        let mut s = self.schedule.lock().expect("timers poisoned");
        for t in all {
            s.insert(t);
        }
        Ok(n)
    }

    /// Schedules timers read from elsewhere (a cluster node taking over a
    /// partition adopts its actors' timers); the store already has them.
    pub fn adopt(&self, records: Vec<TimerRecord>) -> usize {
        let n = records.len();
        let mut s = self.schedule.lock().expect("timers poisoned");
        for t in records {
            // What the actor set since is newer than what was read.
            let owner = (Address::new(t.module.clone(), t.key.clone()), t.tag.clone());
            if !s.timers.contains_key(&owner) {
                s.insert(t);
            }
        }
        drop(s);
        self.changed.notify_one();
        n
    }

    /// Unschedules the timers of the actors `which` selects, leaving them in
    /// the store (their partition moved to another node, which fires them).
    pub fn forget(&self, which: &(dyn Fn(&Address) -> bool + Sync)) -> usize {
        let mut s = self.schedule.lock().expect("timers poisoned");
        let owners: Vec<Owner> = s.timers.keys().filter(|(a, _)| which(a)).cloned().collect();
        for o in &owners {
            s.remove(o);
        }
        owners.len()
    }

    /// Sets (or replaces) `tag` for `address`.
    pub fn set(
        &self,
        node: &Runtime,
        address: &Address,
        tag: &str,
        delay_ms: u64,
        repeat: bool,
    ) -> Result<(), CallError> {
        if tag.is_empty() || tag.len() > 128 || tag.contains('\0') {
            return Err(CallError::BadRequest(
                "timer tags are 1 to 128 bytes without NUL".into(),
            ));
        }
        let delay_ms = delay_ms.max(MIN_PERIOD_MS);
        let record = TimerRecord {
            module: address.module.clone(),
            key: address.key.clone(),
            tag: tag.to_owned(),
            due_ms: now_ms() + delay_ms,
            repeat_ms: repeat.then_some(delay_ms),
        };
        {
            let s = self.schedule.lock().expect("timers poisoned");
            let owner = (address.clone(), tag.to_owned());
            let limit = node.config.limits.max_timers_per_actor;
            if !s.timers.contains_key(&owner)
                && s.per_actor.get(address).copied().unwrap_or(0) >= limit
            {
                return Err(CallError::LimitReached {
                    actor: address.to_string(),
                    limit: "limits.max_timers_per_actor",
                    detail: format!("it already has {limit} timers; cancel one first"),
                });
            }
        }
        node.store
            .put_timer(&record)
            .map_err(crate::runtime::stored)?;
        self.schedule
            .lock()
            .expect("timers poisoned")
            .insert(record);
        self.changed.notify_one();
        Ok(())
    }

    /// Cancels `address`'s timer `tag` (no error if there is none).
    pub fn cancel(&self, node: &Runtime, address: &Address, tag: &str) -> Result<(), CallError> {
        let removed = self
            .schedule
            .lock()
            .expect("timers poisoned")
            .remove(&(address.clone(), tag.to_owned()));
        if removed.is_some() {
            node.store
                .remove_timer(&address.module, &address.key, tag)
                .map_err(crate::runtime::stored)?;
        }
        Ok(())
    }

    /// Forgets every timer of a module (on undeploy; the store is cleared by the
    /// caller).
    pub fn remove_module(&self, module: &str) {
        let mut s = self.schedule.lock().expect("timers poisoned");
        let owners: Vec<Owner> = s
            .timers
            .keys()
            .filter(|(a, _)| a.module == module)
            .cloned()
            .collect();
        for o in owners {
            s.remove(&o);
        }
    }

    /// Number of scheduled timers.
    pub fn len(&self) -> usize {
        self.schedule.lock().expect("timers poisoned").timers.len()
    }

    /// No timer is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the timers due at `now`, rescheduling repeating ones.
    fn take_due(&self, node: &Runtime, now: u64) -> Vec<TimerRecord> {
        let mut s = self.schedule.lock().expect("timers poisoned");
        let mut fired = Vec::new();
        while let Some((due, owner)) = s.due.first().cloned() {
            if due > now {
                break;
            }
            let Some(t) = s.remove(&owner) else { continue };
            if let Some(period) = t.repeat_ms {
                // Missed periods (a restart, a slow node) are skipped, not replayed.
                let mut next = t.clone();
                next.due_ms = t.due_ms + period;
                if next.due_ms <= now {
                    next.due_ms = now + period;
                }
                if let Err(e) = node.store.put_timer(&next) {
                    tracing::error!(actor = %owner.0, tag = %owner.1, error = %e, "cannot save a repeating timer");
                }
                s.insert(next);
            } else if let Err(e) = node.store.remove_timer(&t.module, &t.key, &t.tag) {
                tracing::error!(actor = %owner.0, tag = %owner.1, error = %e, "cannot remove a fired timer; it may fire again after a restart");
            }
            fired.push(t);
        }
        fired
    }

    fn next_due(&self) -> Option<u64> {
        self.schedule
            .lock()
            .expect("timers poisoned")
            .due
            .first()
            .map(|(d, _)| *d)
    }

    /// Delivers due timers until the node stops.
    pub async fn run(node: Arc<Runtime>) {
        loop {
            let now = now_ms();
            for t in node.timers.take_due(&node, now) {
                let to = Address::new(t.module.clone(), t.key.clone());
                let envelope = Envelope::Timer { tag: t.tag.clone() };
                if let Err(e) = node.router.deliver(&node, &to, envelope) {
                    match e {
                        CallError::Overloaded(_) if t.repeat_ms.is_none() => {
                            // A one-shot timer must not be lost to a busy mailbox:
                            // try again shortly.
                            let mut retry = t.clone();
                            retry.due_ms = now + 50;
                            let _ = node.store.put_timer(&retry);
                            node.timers
                                .schedule
                                .lock()
                                .expect("timers poisoned")
                                .insert(retry);
                        }
                        _ => {
                            tracing::warn!(actor = %to, tag = %t.tag, error = %e, "timer not delivered")
                        }
                    }
                }
            }
            let wait = match node.timers.next_due() {
                Some(due) => Duration::from_millis(due.saturating_sub(now_ms())),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = node.timers.changed.notified() => {}
            }
        }
    }
}
