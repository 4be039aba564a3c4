//! The live actors of one module. Lookups on the message path are lock-free: the
//! table is an immutable persistent map behind an `ArcSwap`, replaced whole on
//! every change (a persistent map makes the copy O(log n), not O(n)). Writers
//! (activation, passivation) serialize on a mutex the message path never takes.

use crate::actor::ActorHandle;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Resolves when a retiring actor has written its last snapshot, so its successor
/// restores the newest state.
#[derive(Clone)]
pub struct Retiring(watch::Receiver<bool>);

/// The retiring actor's side of [`Retiring`].
pub struct RetiringDone(watch::Sender<bool>);

impl Retiring {
    /// A retirement in progress, and the handle that ends it.
    pub fn new() -> (Retiring, RetiringDone) {
        let (tx, rx) = watch::channel(false);
        (Retiring(rx), RetiringDone(tx))
    }

    /// Waits until the predecessor is done (or gone).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|done| *done).await;
    }
}

impl RetiringDone {
    /// The predecessor has written its last snapshot.
    pub fn done(self) {
        let _ = self.0.send(true);
    }
}

/// What the table routes to: anything cheap to clone that names one actor
/// incarnation (an [`ActorHandle`] in the node; a bare id in the route
/// benchmark, which measures this table against a locked map).
pub trait Routed: Clone {
    /// Unique per activation.
    fn actor_id(&self) -> u64;
}

impl Routed for ActorHandle {
    fn actor_id(&self) -> u64 {
        self.id
    }
}

impl Routed for u64 {
    fn actor_id(&self) -> u64 {
        *self
    }
}

/// One module's live actors by key: a persistent map behind `arc-swap`, read without locks.
pub struct ActorTable<H: Routed = ActorHandle> {
    live: ArcSwap<imbl::HashMap<String, H>>,
    writer: Mutex<HashMap<String, Retiring>>,
}

impl<H: Routed> Default for ActorTable<H> {
    fn default() -> Self {
        ActorTable {
            live: ArcSwap::default(),
            writer: Mutex::default(),
        }
    }
}

impl<H: Routed> ActorTable<H> {
    /// The live actor for `key`, without taking any lock.
    pub fn get(&self, key: &str) -> Option<H> {
        self.live.load().get(key).cloned()
    }

    /// The live actor for `key`, or a new one made by `spawn` (given the retiring
    /// predecessor to wait for, if any).
    pub fn get_or_activate(&self, key: &str, spawn: impl FnOnce(Option<Retiring>) -> H) -> H {
        if let Some(h) = self.get(key) {
            return h;
        }
        let retiring = self.writer.lock().expect("actor table poisoned");
        if let Some(h) = self.get(key) {
            return h;
        }
        let handle = spawn(retiring.get(key).cloned());
        let mut next = (**self.live.load()).clone();
        next.insert(key.to_owned(), handle.clone());
        self.live.store(Arc::new(next));
        handle
    }

    /// Takes the actor `id` out of the table because it is passivating; later
    /// messages activate a successor that waits on `retiring`. False if the
    /// table already moved on (another actor holds the key).
    pub fn retire(&self, key: &str, id: u64, retiring: Retiring) -> bool {
        let mut writer = self.writer.lock().expect("actor table poisoned");
        if self.get(key).map(|h| h.actor_id()) != Some(id) {
            return false;
        }
        let mut next = (**self.live.load()).clone();
        next.remove(key);
        self.live.store(Arc::new(next));
        writer.insert(key.to_owned(), retiring);
        true
    }

    /// The passivation of `key` finished.
    pub fn retired(&self, key: &str) {
        let mut writer = self.writer.lock().expect("actor table poisoned");
        writer.remove(key);
    }

    /// Removes actor `id` if it is still the live one for `key`.
    pub fn remove(&self, key: &str, id: u64) {
        let _writer = self.writer.lock().expect("actor table poisoned");
        if self.get(key).map(|h| h.actor_id()) != Some(id) {
            return;
        }
        let mut next = (**self.live.load()).clone();
        next.remove(key);
        self.live.store(Arc::new(next));
    }

    /// Every live actor.
    pub fn handles(&self) -> Vec<H> {
        self.live.load().values().cloned().collect()
    }

    /// Live actors.
    pub fn len(&self) -> usize {
        self.live.load().len()
    }

    /// No live actor.
    pub fn is_empty(&self) -> bool {
        self.live.load().is_empty()
    }
}

impl<H: Routed> ActorTable<H> {
    /// Runs `f` while no actor can be activated, then lists the live actors: an
    /// actor activated before `f` is in the list, one activated after sees what
    /// `f` changed (used to switch a module's version without missing anyone).
    pub fn handles_after(&self, f: impl FnOnce()) -> Vec<H> {
        let _writer = self.writer.lock().expect("actor table poisoned");
        f();
        self.live.load().values().cloned().collect()
    }
}
