//! [`Runtime`]: the actor side of a node, its parts started together. It
//! reaches players and rooms only through the [`Players`] and [`RoomSink`]
//! seams, attached by whoever wires the node (the gateway implements them);
//! until then pushes find no player and room state goes nowhere.

use crate::config::RuntimeConfig;
use crate::events::Events;
use crate::host::RuntimeHost;
use crate::logs::ModuleLogs;
use crate::metrics::Metrics;
use crate::router::Router;
use crate::tenants::Tenants;
use crate::timers::Timers;
use crate::{actor, module};
use anthill_core::{
    Address, CallError, Channel, EventBus, Placement, Players, RoomSink, SyncedState,
};
use anthill_engine::{ActorHost, Engine};
use anthill_store::{Persistence, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The parts of the actor runtime. Everything that needs to reach another
/// part holds an `Arc<Runtime>`.
pub struct Runtime {
    /// Its config sections.
    pub config: RuntimeConfig,
    /// The wasm engine actors run on.
    pub engine: Engine,
    /// Where state persists.
    pub store: Arc<dyn Persistence>,
    /// The series every part reports to.
    pub metrics: Metrics,
    /// Modules and their live actors.
    pub router: Router,
    /// Pub/sub.
    pub events: Events,
    /// Durable timers.
    pub timers: Timers,
    /// Tenants and their quotas.
    pub tenants: Tenants,
    /// What guests print.
    pub logs: ModuleLogs,
    /// What actors' host imports reach (the runtime itself, weakly).
    pub(crate) host: Arc<dyn ActorHost>,
    rooms: OnceLock<Arc<dyn RoomSink>>,
    players: OnceLock<Arc<dyn Players>>,
    placement: OnceLock<Arc<dyn Placement>>,
    event_bus: OnceLock<Arc<dyn EventBus>>,
    pub(crate) deploy_lock: tokio::sync::Mutex<()>,
    /// Wakes the reaper when an activation found the pool full.
    pub(crate) capacity_wanted: tokio::sync::Notify,
    next_actor: AtomicU64,
}

/// What [`Runtime::start`] reloaded and the tasks it started.
pub struct Started {
    /// The runtime.
    pub runtime: Arc<Runtime>,
    /// Modules reloaded from the store.
    pub reloaded: Vec<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Started {
    /// Stops the background tasks (timers, the reaper, event deliveries):
    /// no new work starts while actors stop.
    pub fn stop_background(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.runtime.events.stop();
    }
}

/// Room state and pushes with no gateway attached.
struct Detached;

impl RoomSink for Detached {
    fn publish(&self, _room: &Address, _state: SyncedState) {}
    fn has_members(&self, _room: &Address) -> bool {
        false
    }
    fn members_in_module(&self, _module: &str) -> usize {
        0
    }
    fn remove_module(&self, _module: &str) {}
}

impl Players for Detached {
    fn push(&self, player: u64, _channel: Channel, _message: Vec<u8>) -> Result<(), CallError> {
        Err(CallError::NotFound(format!(
            "player {player} has no session (this node has no gateway)"
        )))
    }
}

impl Runtime {
    /// Builds the runtime on `store` and `engine`, reporting to `registry`.
    pub fn new(
        config: RuntimeConfig,
        engine: Engine,
        store: Arc<dyn Persistence>,
        registry: &prometheus::Registry,
    ) -> Result<Arc<Runtime>, StoreError> {
        let metrics = Metrics::new(registry);
        let events = Events::new(config.events.clone(), registry);
        let tenants = Tenants::load(store.as_ref(), registry)?;
        let logs = ModuleLogs::new(config.logs.clone(), registry);
        Ok(Arc::new_cyclic(|weak| Runtime {
            host: Arc::new(RuntimeHost(weak.clone())),
            config,
            engine,
            store,
            metrics,
            router: Router::new(),
            events,
            timers: Timers::new(),
            tenants,
            logs,
            rooms: OnceLock::new(),
            players: OnceLock::new(),
            placement: OnceLock::new(),
            event_bus: OnceLock::new(),
            deploy_lock: tokio::sync::Mutex::new(()),
            capacity_wanted: tokio::sync::Notify::new(),
            next_actor: AtomicU64::new(1),
        }))
    }

    /// Brings the gauges read at scrape time up to date (mailbox depths,
    /// event backlogs, dead letters, store size, tenants): call before
    /// rendering the registry.
    pub fn publish_gauges(&self) {
        crate::metrics::publish(self);
    }

    /// Attaches the player side (once, before [`Runtime::start`]).
    pub fn attach(&self, rooms: Arc<dyn RoomSink>, players: Arc<dyn Players>) {
        let _ = self.rooms.set(rooms);
        let _ = self.players.set(players);
    }

    /// Places actors across nodes (a cluster): from now on a message for an
    /// actor another node owns goes there. Set once, before traffic.
    pub fn attach_placement(&self, placement: Arc<dyn Placement>) {
        let _ = self.placement.set(placement);
    }

    /// Where actors live, when this node is one of several.
    pub fn placement(&self) -> Option<&Arc<dyn Placement>> {
        self.placement.get()
    }

    /// From now on events published here also go to the other nodes'
    /// subscribers through `bus`. Call before any traffic.
    pub fn attach_event_bus(&self, bus: Arc<dyn EventBus>) {
        let _ = self.event_bus.set(bus);
    }

    /// How events reach the other nodes, when this node is one of several.
    pub fn event_bus(&self) -> Option<&Arc<dyn EventBus>> {
        self.event_bus.get()
    }

    /// Reloads the deployed modules, subscriptions and timers from the store,
    /// and starts the background tasks.
    pub async fn start(self: &Arc<Runtime>) -> Result<Started, StoreError> {
        let reloaded = module::load_all(self).await?;
        let subscriptions = Events::start(self)?;
        let timers = self.timers.load(self)?;
        let tasks = vec![
            tokio::spawn(Timers::run(self.clone())),
            tokio::spawn(actor::run_reaper(self.clone())),
        ];
        tracing::info!(
            modules = reloaded.len(),
            subscriptions,
            timers,
            "state reloaded"
        );
        Ok(Started {
            runtime: self.clone(),
            reloaded,
            tasks,
        })
    }

    /// Graceful stop of every live actor: each finishes its queue and writes
    /// its snapshot; then the store is flushed. Returns how many stopped.
    pub async fn stop_actors(&self) -> Result<usize, StoreError> {
        let mut stopped = 0;
        for module in self.router.modules() {
            let handles = module.actors.handles();
            stopped += handles.len();
            futures::future::join_all(handles.iter().map(|h| h.stop(true))).await;
        }
        self.store.flush().await?;
        Ok(stopped)
    }

    /// Drops the live actors `which` selects, unsaved (see
    /// [`crate::actor::Control::Evict`]): the cluster calls this for the
    /// actors of a partition another node took over. Returns how many.
    pub async fn evict_actors(
        &self,
        which: &(dyn Fn(&Address) -> bool + Sync),
        reason: &str,
    ) -> usize {
        let mut evicted = Vec::new();
        for module in self.router.modules() {
            for h in module.actors.handles() {
                if which(&Address::new(module.name.as_str(), h.status.key.as_str())) {
                    evicted.push(h);
                }
            }
        }
        futures::future::join_all(evicted.iter().map(|h| h.evict(reason))).await;
        evicted.len()
    }

    /// Where room state goes.
    pub fn rooms(&self) -> &dyn RoomSink {
        self.rooms.get().map_or(&Detached, |r| r.as_ref())
    }

    /// How actors reach players.
    pub fn players(&self) -> &dyn Players {
        self.players.get().map_or(&Detached, |p| p.as_ref())
    }

    pub(crate) fn next_actor_id(&self) -> u64 {
        self.next_actor.fetch_add(1, Ordering::Relaxed)
    }
}

/// A store failure as callers see it: `disk-full` keeps its own kind, so a
/// full disk during `subscribe` or `set-timer` says so.
pub(crate) fn stored(e: StoreError) -> CallError {
    match e {
        // Not this node's disk: the actor moved, or NATS is away for now.
        // Retryable, so a client hears 503, not an internal error.
        StoreError::Replicated { .. } => CallError::Unavailable(e.to_string()),
        e => CallError::storage(&e, e.is_disk_full()),
    }
}
