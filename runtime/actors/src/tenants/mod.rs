//! Tenants: who owns which modules, what each may use, and whom each may
//! reach. A node always has the tenant `default` (the operator's own, without
//! quotas): a single-owner node needs no configuration. The operator creates
//! more with quotas and a token of their own; a tenant's token sees and changes
//! only that tenant's modules (the admin API enforces it), its actors reach
//! other tenants' actors only where the operator allowed that pair (the router
//! enforces it), and its topics are its own (events never cross unless allowed).

mod quota;

pub use quota::{ActorReservation, Quotas, Usage};

use anthill_core::CallError;
use anthill_core::metrics::{counter_vec, gauge_vec};
use anthill_store::{Persistence, StoreError};
use arc_swap::ArcSwap;
use prometheus::{IntCounterVec, IntGaugeVec, Registry};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The tenant of every module deployed without one, and of every module a data
/// dir held before tenants existed.
pub const DEFAULT_TENANT: &str = "default";

/// What the store keeps of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// Its name.
    pub name: String,
    /// SHA-256 (hex) of the tenant's admin token: the token itself is shown
    /// once, at creation, and never stored.
    pub token_sha256: String,
    /// Its quotas.
    #[serde(default)]
    pub quotas: Quotas,
    /// Tenants whose actors (and topics) this one's actors may reach.
    #[serde(default)]
    pub may_reach: BTreeSet<String>,
    /// When it was created.
    pub created_at_ms: u64,
}

/// What the API shows of a tenant (never its token or hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantInfo {
    /// Its name.
    pub name: String,
    /// Its quotas.
    pub quotas: Quotas,
    /// What it uses now.
    pub usage: Usage,
    /// Tenants its actors may reach.
    pub may_reach: BTreeSet<String>,
    /// The modules it owns.
    pub modules: Vec<String>,
}

/// A tenant could not be created, changed or removed.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// No such tenant.
    #[error("tenant `{0}` does not exist (list them with `anthill tenants`)")]
    NotFound(String),
    /// A tenant of that name exists.
    #[error("tenant `{0}` exists already")]
    Exists(String),
    /// Not a valid tenant name.
    #[error("invalid tenant name `{0}`: use 1-64 of a-z, 0-9, `-`, `_`")]
    InvalidName(String),
    #[error("tenant `{name}` still owns modules {modules:?}: undeploy them first")]
    /// The tenant still owns modules.
    InUse {
        /// The tenant.
        name: String,
        /// The modules it still owns.
        modules: Vec<String>,
    },
    /// The `default` tenant cannot be changed this way.
    #[error("the `default` tenant is the operator's own: it has no quotas and cannot be removed")]
    Default,
    /// A quota value is out of range.
    #[error("invalid quota: {0}")]
    Quota(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// In a cluster: NATS did not take the change (made on this node only;
    /// the node goes back to the cluster's record).
    #[error(
        "the cluster did not take the change ({0}): check that NATS is reachable (/healthz) and retry"
    )]
    ClusterUnavailable(String),
}

/// One tenant at run time: its record, its live usage and its CPU gate.
pub struct Tenant {
    /// Its name.
    pub name: String,
    record: ArcSwap<TenantRecord>,
    usage: quota::Counters,
    metrics: TenantMetrics,
}

#[derive(Clone)]
struct TenantMetrics {
    refusals: IntCounterVec,
    /// `anthill_module_tenant{module, tenant} 1`: joins module series to
    /// their tenant in queries.
    modules: IntGaugeVec,
    live_actors: IntGaugeVec,
    storage: IntGaugeVec,
    memory: IntGaugeVec,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant").field("name", &self.name).finish()
    }
}

impl Tenant {
    fn new(record: TenantRecord, metrics: TenantMetrics) -> Tenant {
        Tenant {
            name: record.name.clone(),
            usage: quota::Counters::new(&record.quotas),
            record: ArcSwap::from_pointee(record),
            metrics,
        }
    }

    /// Whether it is the operator's `default` tenant.
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_TENANT
    }

    /// Its quotas now.
    pub fn quotas(&self) -> Quotas {
        self.record.load().quotas.clone()
    }

    /// Whether this tenant's actors may reach `other`'s (always their own).
    pub fn may_reach(&self, other: &Tenant) -> bool {
        self.name == other.name || self.record.load().may_reach.contains(&other.name)
    }

    /// The names this tenant's publishes reach besides its own.
    pub fn reached(&self) -> Vec<String> {
        self.record.load().may_reach.iter().cloned().collect()
    }

    /// The topic as stored for this tenant: the default tenant's topics are
    /// the bare names (as before tenants existed); another tenant's carry its
    /// name and a separator guests cannot write (a control character).
    pub fn scoped_topic(tenant: &str, topic: &str) -> String {
        if tenant == DEFAULT_TENANT {
            topic.to_owned()
        } else {
            format!("{tenant}{TOPIC_SEPARATOR}{topic}")
        }
    }

    /// Splits a stored topic into (tenant, topic).
    pub fn unscope_topic(stored: &str) -> (&str, &str) {
        stored
            .split_once(TOPIC_SEPARATOR)
            .unwrap_or((DEFAULT_TENANT, stored))
    }

    /// A module of this tenant is deployed (or reloaded) as `module`.
    pub fn adopt(&self, module: &str) {
        self.metrics
            .modules
            .with_label_values(&[module, self.name.as_str()])
            .set(1);
    }

    /// The module `module` is gone.
    pub fn release(&self, module: &str) {
        let _ = self
            .metrics
            .modules
            .remove_label_values(&[module, self.name.as_str()]);
    }

    /// Counts a refusal by the quota that caused it, and builds its error.
    fn refused(&self, quota: &str, detail: String) -> CallError {
        self.metrics
            .refusals
            .with_label_values(&[self.name.as_str(), quota])
            .inc();
        CallError::Quota(format!("tenant `{}`: {detail}", self.name))
    }

    /// Sets the tenant's gauges from its counters (at scrape time: the
    /// counters change on every activation, the gauges need not).
    fn publish_gauges(&self) {
        let u = self.usage.snapshot();
        let l = &[self.name.as_str()];
        self.metrics
            .live_actors
            .with_label_values(l)
            .set(u.live_actors as i64);
        self.metrics
            .storage
            .with_label_values(l)
            .set(u.storage_bytes as i64);
        self.metrics
            .memory
            .with_label_values(l)
            .set((u.reserved_memory_mb << 20) as i64);
    }
}

/// Separates a tenant's name from its topic names in the event tables.
const TOPIC_SEPARATOR: char = '\u{1f}';

/// The node's tenants.
pub struct Tenants {
    all: ArcSwap<HashMap<String, Arc<Tenant>>>,
    by_token: ArcSwap<HashMap<String, String>>,
    writer: Mutex<()>,
    metrics: TenantMetrics,
}

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Tenants {
    /// The default tenant, and the stored ones.
    pub fn load(store: &dyn Persistence, registry: &Registry) -> Result<Tenants, StoreError> {
        let gauge = |name: &str, help: &str| gauge_vec(registry, name, help, &["tenant"]);
        let refusals = counter_vec(
            registry,
            "anthill_tenant_refusals_total",
            "Operations refused by a tenant's quota, by quota.",
            &["tenant", "quota"],
        );
        let modules = gauge_vec(
            registry,
            "anthill_module_tenant",
            "1 for each deployed module, labelled with its tenant.",
            &["module", "tenant"],
        );
        let metrics = TenantMetrics {
            refusals,
            modules,
            live_actors: gauge(
                "anthill_tenant_live_actors",
                "Live actors of a tenant's modules.",
            ),
            storage: gauge(
                "anthill_tenant_storage_bytes",
                "Stored snapshot and component bytes of a tenant's modules.",
            ),
            memory: gauge(
                "anthill_tenant_memory_reserved_bytes",
                "Memory caps of a tenant's live actors, summed.",
            ),
        };
        let tenants = Tenants {
            all: ArcSwap::default(),
            by_token: ArcSwap::default(),
            writer: Mutex::new(()),
            metrics,
        };
        let mut all = HashMap::new();
        all.insert(
            DEFAULT_TENANT.to_owned(),
            Arc::new(Tenant::new(
                TenantRecord {
                    name: DEFAULT_TENANT.into(),
                    token_sha256: String::new(),
                    quotas: Quotas::default(),
                    may_reach: BTreeSet::new(),
                    created_at_ms: 0,
                },
                tenants.metrics.clone(),
            )),
        );
        let mut tokens = HashMap::new();
        for record in store.tenants::<TenantRecord>()? {
            if !record.token_sha256.is_empty() {
                tokens.insert(record.token_sha256.clone(), record.name.clone());
            }
            all.insert(
                record.name.clone(),
                Arc::new(Tenant::new(record, tenants.metrics.clone())),
            );
        }
        tenants.all.store(Arc::new(all));
        tenants.by_token.store(Arc::new(tokens));
        Ok(tenants)
    }

    /// The tenant of that name.
    pub fn get(&self, name: &str) -> Option<Arc<Tenant>> {
        self.all.load().get(name).cloned()
    }

    /// The `default` tenant.
    pub fn default_tenant(&self) -> Arc<Tenant> {
        self.get(DEFAULT_TENANT)
            .expect("the default tenant always exists")
    }

    /// The tenant whose token this is.
    pub fn by_token(&self, token: &str) -> Option<Arc<Tenant>> {
        let name = self.by_token.load().get(&sha256_hex(token)).cloned()?;
        self.get(&name)
    }

    /// Every tenant, by name.
    pub fn list(&self) -> Vec<Arc<Tenant>> {
        let mut v: Vec<_> = self.all.load().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Creates a tenant; returns its token (shown once).
    pub fn create(
        &self,
        store: &dyn Persistence,
        name: &str,
        quotas: Quotas,
        now_ms: u64,
    ) -> Result<(Arc<Tenant>, String), TenantError> {
        if !valid_name(name) {
            return Err(TenantError::InvalidName(name.to_owned()));
        }
        quotas.validate().map_err(TenantError::Quota)?;
        let _w = self.writer.lock().expect("tenants poisoned");
        if self.get(name).is_some() {
            return Err(TenantError::Exists(name.to_owned()));
        }
        let token = format!("tenant-{name}-{}", hex::encode(rand::random::<[u8; 24]>()));
        let record = TenantRecord {
            name: name.to_owned(),
            token_sha256: sha256_hex(&token),
            quotas,
            may_reach: BTreeSet::new(),
            created_at_ms: now_ms,
        };
        store.put_tenant(name, &record)?;
        let tenant = Arc::new(Tenant::new(record.clone(), self.metrics.clone()));
        let mut all = (**self.all.load()).clone();
        all.insert(name.to_owned(), tenant.clone());
        self.all.store(Arc::new(all));
        let mut tokens = (**self.by_token.load()).clone();
        tokens.insert(record.token_sha256, name.to_owned());
        self.by_token.store(Arc::new(tokens));
        Ok((tenant, token))
    }

    /// Changes a tenant's record with `change` and stores it.
    fn update(
        &self,
        store: &dyn Persistence,
        name: &str,
        change: impl FnOnce(&mut TenantRecord) -> Result<(), TenantError>,
    ) -> Result<Arc<Tenant>, TenantError> {
        let _w = self.writer.lock().expect("tenants poisoned");
        let tenant = self
            .get(name)
            .ok_or_else(|| TenantError::NotFound(name.to_owned()))?;
        if tenant.is_default() {
            return Err(TenantError::Default);
        }
        let mut record = (**tenant.record.load()).clone();
        change(&mut record)?;
        store.put_tenant(name, &record)?;
        tenant.usage.resize(&record.quotas);
        tenant.record.store(Arc::new(record));
        Ok(tenant)
    }

    /// Replaces a tenant's quotas (live usage above a lowered quota stays; new
    /// work is refused until it falls below).
    pub fn set_quotas(
        &self,
        store: &dyn Persistence,
        name: &str,
        quotas: Quotas,
    ) -> Result<Arc<Tenant>, TenantError> {
        quotas.validate().map_err(TenantError::Quota)?;
        self.update(store, name, |r| {
            r.quotas = quotas;
            Ok(())
        })
    }

    /// Lets `from`'s actors reach `to`'s (calls, sends, events), or stops it.
    pub fn allow(
        &self,
        store: &dyn Persistence,
        from: &str,
        to: &str,
        allowed: bool,
    ) -> Result<Arc<Tenant>, TenantError> {
        if self.get(to).is_none() {
            return Err(TenantError::NotFound(to.to_owned()));
        }
        if from == DEFAULT_TENANT {
            // The default tenant has no stored record of its own: keep its
            // rules in a record under its name like any other.
            return self.allow_from_default(store, to, allowed);
        }
        self.update(store, from, |r| {
            if allowed {
                r.may_reach.insert(to.to_owned());
            } else {
                r.may_reach.remove(to);
            }
            Ok(())
        })
    }

    fn allow_from_default(
        &self,
        store: &dyn Persistence,
        to: &str,
        allowed: bool,
    ) -> Result<Arc<Tenant>, TenantError> {
        let _w = self.writer.lock().expect("tenants poisoned");
        let tenant = self.default_tenant();
        let mut record = (**tenant.record.load()).clone();
        if allowed {
            record.may_reach.insert(to.to_owned());
        } else {
            record.may_reach.remove(to);
        }
        store.put_tenant(DEFAULT_TENANT, &record)?;
        tenant.record.store(Arc::new(record));
        Ok(tenant)
    }

    /// Removes a tenant that owns no modules; its token stops working.
    pub fn remove(
        &self,
        store: &dyn Persistence,
        name: &str,
        modules: Vec<String>,
    ) -> Result<(), TenantError> {
        if name == DEFAULT_TENANT {
            return Err(TenantError::Default);
        }
        let _w = self.writer.lock().expect("tenants poisoned");
        let tenant = self
            .get(name)
            .ok_or_else(|| TenantError::NotFound(name.to_owned()))?;
        if !modules.is_empty() {
            return Err(TenantError::InUse {
                name: name.to_owned(),
                modules,
            });
        }
        store.remove_tenant(name)?;
        let mut all = (**self.all.load()).clone();
        all.remove(name);
        // Others may no longer name it as reachable: a tenant created later
        // under the same name must not inherit what this one was allowed.
        for other in all.values() {
            let mut record = (**other.record.load()).clone();
            if record.may_reach.remove(name) {
                store.put_tenant(&other.name, &record)?;
                other.record.store(Arc::new(record));
            }
        }
        self.all.store(Arc::new(all));
        let mut tokens = (**self.by_token.load()).clone();
        tokens.retain(|_, n| n != name);
        self.by_token.store(Arc::new(tokens));
        let l = &[tenant.name.as_str()];
        let _ = self.metrics.live_actors.remove_label_values(l);
        let _ = self.metrics.storage.remove_label_values(l);
        let _ = self.metrics.memory.remove_label_values(l);
        Ok(())
    }

    /// Every tenant's record, as stored (what a cluster publishes).
    pub fn records(&self) -> Vec<TenantRecord> {
        self.list()
            .iter()
            .map(|t| (**t.record.load()).clone())
            .collect()
    }

    /// Makes this node's tenant `name` match `want` (`None`: removed), as
    /// another node of a cluster changed it; `true` when something changed.
    pub fn converge(
        &self,
        store: &dyn Persistence,
        name: &str,
        want: Option<TenantRecord>,
    ) -> Result<bool, TenantError> {
        let Some(want) = want else {
            if name == DEFAULT_TENANT || self.get(name).is_none() {
                return Ok(false);
            }
            return self.remove(store, name, Vec::new()).map(|()| true);
        };
        let _w = self.writer.lock().expect("tenants poisoned");
        let mut tokens = (**self.by_token.load()).clone();
        match self.get(name) {
            Some(t) if **t.record.load() == want => return Ok(false),
            Some(t) => {
                store.put_tenant(name, &want)?;
                tokens.retain(|_, n| n != name);
                t.usage.resize(&want.quotas);
                t.record.store(Arc::new(want.clone()));
            }
            None => {
                store.put_tenant(name, &want)?;
                let tenant = Arc::new(Tenant::new(want.clone(), self.metrics.clone()));
                let mut all = (**self.all.load()).clone();
                all.insert(name.to_owned(), tenant);
                self.all.store(Arc::new(all));
            }
        }
        if !want.token_sha256.is_empty() {
            tokens.insert(want.token_sha256.clone(), name.to_owned());
        }
        self.by_token.store(Arc::new(tokens));
        Ok(true)
    }

    /// Brings every tenant's gauges up to date (before `/metrics` renders).
    pub fn publish_gauges(&self) {
        for t in self.all.load().values() {
            t.publish_gauges();
        }
    }

    /// What the API shows of `tenant`, given its modules and players.
    pub fn info(tenant: &Tenant, modules: Vec<String>, players: u64) -> TenantInfo {
        let record = tenant.record.load();
        let mut usage = tenant.usage.snapshot();
        usage.players = players;
        TenantInfo {
            name: tenant.name.clone(),
            quotas: record.quotas.clone(),
            usage,
            may_reach: record.may_reach.clone(),
            modules,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_of_the_default_tenant_are_unchanged_and_others_are_scoped() {
        assert_eq!(Tenant::scoped_topic(DEFAULT_TENANT, "scores"), "scores");
        let acme = Tenant::scoped_topic("acme", "scores");
        assert_ne!(acme, "scores");
        assert_eq!(Tenant::unscope_topic(&acme), ("acme", "scores"));
        assert_eq!(Tenant::unscope_topic("scores"), (DEFAULT_TENANT, "scores"));
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("team-a_1"));
        assert!(!valid_name(""));
        assert!(!valid_name("Team"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"x".repeat(65)));
    }
}
