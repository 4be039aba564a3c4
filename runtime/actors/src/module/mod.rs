//! Modules: named, versioned deployments of components, with their placement kind
//! and settings. This folder owns the registry (persisted in the store), deploy,
//! swap and undeploy.

mod converge;
mod deploy;
mod swap;

pub use converge::{ComponentSource, Converged, converge};

pub use deploy::{DeployError, DeployRequest, Deployed, deploy, load_all, undeploy};
pub use swap::{SwapSummary, promote, rollback};

pub use anthill_core::module::{
    CanaryRecord, Durability, Kind, ModuleRecord, ModuleSettings, PlayerAccess, SettingsRequest,
    VersionRecord, canary_bucket,
};
pub use anthill_engine::LoadedVersion;

use crate::metrics::ModuleMetrics;
use crate::router::ActorTable;
use crate::router::{Admission, AdmissionSettings};
use crate::tenants::Tenant;
use anthill_core::CallError;
use anthill_engine::CpuShare;
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Which version serves which key.
#[derive(Clone)]
pub struct Routing {
    /// The version every key runs outside the canary.
    pub stable: Arc<LoadedVersion>,
    /// The canary version and the share of keys it serves.
    pub canary: Option<(Arc<LoadedVersion>, u8)>,
}

impl Routing {
    /// The version `key` runs.
    pub fn version_for(&self, key: &str) -> &Arc<LoadedVersion> {
        match &self.canary {
            Some((v, pct)) if canary_bucket(key) < *pct => v,
            _ => &self.stable,
        }
    }
}

/// Progress of a swap in flight, for `GET /v1/modules/{name}` and the CLI.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SwapProgress {
    /// The version the swap moves to.
    pub to_version: u32,
    /// Live actors to move.
    pub total: usize,
    /// Moved so far.
    pub done: usize,
    /// Refused so far.
    pub failed: usize,
}

/// A deployed module at run time.
pub struct Module {
    /// Its name.
    pub name: String,
    settings: ArcSwap<ModuleSettings>,
    routing: ArcSwap<Routing>,
    pub(crate) actors: ActorTable,
    /// Its series.
    pub metrics: ModuleMetrics,
    record: Mutex<ModuleRecord>,
    pub(crate) progress: Mutex<Option<SwapProgress>>,
    /// Guest calls of this module that may run at once (`limits.module_concurrency`).
    cpu: Arc<Semaphore>,
    /// The module-wide breaker on failing activations.
    activations: Admission,
    /// The tenant that owns it, whose quotas its actors count against.
    pub tenant: Arc<Tenant>,
    /// Bytes of its stored snapshots (counted for tenants other than `default`).
    stored_bytes: AtomicI64,
}

/// What a module shares with the rest of the node at run time: how much CPU
/// its guests may hold at once, how its activation breaker behaves, and whose
/// quotas it counts against.
pub struct ModuleGates {
    /// Guest calls of the module that may run at once.
    pub concurrency: usize,
    /// Per-actor rate limit and breaker settings.
    pub admission: AdmissionSettings,
    /// The module's tenant.
    pub tenant: Arc<Tenant>,
    /// Bytes its snapshots take in the store already.
    pub stored_bytes: i64,
}

/// What `GET /v1/modules/{name}` shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// Its name.
    pub name: String,
    /// Its placement kind.
    pub kind: Kind,
    /// The stable version (what every key runs outside a canary).
    pub version: u32,
    /// The stable version's component sha256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was deployed.
    pub deployed_at_ms: u64,
    /// Live actors now.
    pub live_actors: usize,
    /// Live actors by the version they run.
    pub actors_per_version: BTreeMap<u32, usize>,
    /// The canary in progress, if any.
    pub canary: Option<CanaryRecord>,
    /// The swap in progress, if any.
    pub swap_in_progress: Option<SwapProgress>,
    /// Its settings.
    pub settings: ModuleSettings,
    /// The versions kept, oldest first.
    pub versions: Vec<VersionRecord>,
    /// The tenant that owns it.
    pub tenant: String,
}

impl Module {
    pub(crate) fn new(
        name: String,
        record: ModuleRecord,
        routing: Routing,
        metrics: ModuleMetrics,
        gates: ModuleGates,
    ) -> Module {
        gates.tenant.charge_storage(gates.stored_bytes);
        gates.tenant.adopt(&name);
        Module {
            cpu: Arc::new(Semaphore::new(gates.concurrency.max(1))),
            activations: Admission::new(gates.admission),
            tenant: gates.tenant,
            stored_bytes: AtomicI64::new(gates.stored_bytes),
            name,
            settings: ArcSwap::from_pointee(record.settings.clone()),
            routing: ArcSwap::from_pointee(routing),
            actors: ActorTable::default(),
            metrics,
            record: Mutex::new(record),
            progress: Mutex::new(None),
        }
    }

    /// Its settings now.
    pub fn settings(&self) -> Arc<ModuleSettings> {
        self.settings.load_full()
    }

    /// The permits one of this module's actors needs to run guest code: its
    /// tenant's share first, then the module's (always in this order).
    pub(crate) fn cpu_share(&self) -> CpuShare {
        let gates = self.tenant.cpu_gate().into_iter();
        CpuShare::new(gates.chain([self.cpu.clone()]).collect())
    }

    /// Counts a change of the module's stored bytes against its tenant.
    pub(crate) fn charge_storage(&self, delta: i64) {
        if self.tenant.is_default() {
            return;
        }
        self.stored_bytes.fetch_add(delta, Ordering::Relaxed);
        self.tenant.charge_storage(delta);
    }

    /// Gives the module's stored bytes back to its tenant, and leaves its
    /// metrics (undeploy).
    pub(crate) fn leave_tenant(&self) {
        let bytes = self.stored_bytes.swap(0, Ordering::Relaxed);
        self.tenant.charge_storage(-bytes);
        self.tenant.release(&self.name);
    }

    /// Whether a new actor of this module may be activated now: refused while
    /// activations keep failing (then one probe at a time).
    pub(crate) fn admit_activation(&self) -> Result<(), CallError> {
        self.activations.admit(0, 1).map_err(|refusal| {
            CallError::Overloaded(format!(
                "activations of `{}` keep failing: {refusal}",
                self.name
            ))
        })
    }

    /// Feeds the activation breaker with the outcome of an activation.
    pub(crate) fn record_activation<T>(&self, outcome: &Result<T, CallError>) {
        let fault = outcome.as_ref().err().is_some_and(CallError::is_fault);
        if self.activations.record(fault) {
            self.metrics.circuit_opens.inc();
            tracing::warn!(module = %self.name, "activation circuit opened: new actors are refused until a probe activates");
        }
    }

    /// Which version serves which key now.
    pub fn routing(&self) -> Arc<Routing> {
        self.routing.load_full()
    }

    /// The version a new activation of `key` runs.
    pub fn version_for(&self, key: &str) -> Arc<LoadedVersion> {
        self.routing.load().version_for(key).clone()
    }

    pub(crate) fn set_routing(&self, r: Routing) {
        self.routing.store(Arc::new(r));
    }

    /// Its registry record now.
    pub fn record(&self) -> ModuleRecord {
        self.record.lock().expect("module record poisoned").clone()
    }

    pub(crate) fn set_record(&self, record: ModuleRecord) {
        self.settings.store(Arc::new(record.settings.clone()));
        *self.record.lock().expect("module record poisoned") = record;
    }

    /// Its row of `GET /v1/modules`.
    pub fn info(&self) -> ModuleInfo {
        let record = self.record();
        let routing = self.routing();
        let stable = &routing.stable;
        let vr = record.version(stable.version).cloned();
        let mut per_version = BTreeMap::new();
        for h in self.actors.handles() {
            *per_version
                .entry(h.status.version.load(std::sync::atomic::Ordering::Relaxed))
                .or_insert(0) += 1;
        }
        ModuleInfo {
            name: self.name.clone(),
            kind: record.settings.kind,
            version: stable.version,
            sha256: stable.sha256.clone(),
            size: vr.as_ref().map(|v| v.size).unwrap_or(0),
            deployed_at_ms: vr.as_ref().map(|v| v.deployed_at_ms).unwrap_or(0),
            live_actors: self.actors.len(),
            actors_per_version: per_version,
            canary: routing.canary.as_ref().map(|(v, p)| CanaryRecord {
                version: v.version,
                percent: *p,
            }),
            swap_in_progress: self.progress.lock().expect("progress poisoned").clone(),
            settings: record.settings.clone(),
            versions: record.versions.clone(),
            tenant: record.tenant.clone(),
        }
    }

    /// Live actors of this module.
    /// How many of its actors are live.
    pub fn live_actors(&self) -> usize {
        self.actors.len()
    }

    /// Its live actors, by key.
    pub fn actors(&self) -> Vec<crate::actor::ActorInfo> {
        let mut v: Vec<_> = self.actors.handles().iter().map(|h| h.info()).collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::canary_bucket;

    #[test]
    fn canary_buckets_are_stable_and_spread() {
        assert_eq!(canary_bucket("room-1"), canary_bucket("room-1"));
        let in_quarter = (0..10_000)
            .filter(|i| canary_bucket(&format!("k{i}")) < 25)
            .count();
        assert!(
            (2_300..=2_700).contains(&in_quarter),
            "{in_quarter} of 10000 keys under 25%"
        );
    }
}
