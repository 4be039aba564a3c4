//! A tenant's quotas and the live counters they are checked against. Each check
//! is made where the work would start (activation, delivery, snapshot write,
//! join) and refuses it at once with a [`CallError::Quota`] naming the quota;
//! nothing already running is stopped.

use super::Tenant;
use anthill_core::CallError;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Semaphore;

/// What a tenant may use; an unset quota is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    /// Live actors across the tenant's modules.
    pub max_actors: Option<u64>,
    /// Memory caps of the tenant's live actors, summed (MiB): what its actors
    /// may grow to, reserved at activation.
    pub max_memory_mb: Option<u64>,
    /// Guest calls of the tenant's modules that execute at once (its share of
    /// the node's cores; each module also has `limits.module_concurrency`).
    pub cpu_share: Option<u32>,
    /// Stored snapshots and components of the tenant's modules (MiB).
    pub max_storage_mb: Option<u64>,
    /// Messages delivered to the tenant's actors per second (burst: one
    /// second's worth).
    pub messages_per_sec: Option<u32>,
    /// Players in the tenant's rooms at once.
    pub max_players: Option<u64>,
}

impl Quotas {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.cpu_share == Some(0) {
            return Err("cpu_share must be at least 1".into());
        }
        if self.messages_per_sec == Some(0) {
            return Err("messages_per_sec must be at least 1".into());
        }
        Ok(())
    }
}

/// What a tenant uses now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Live actors across its modules.
    pub live_actors: u64,
    /// Memory caps of its live actors, summed (MiB).
    pub reserved_memory_mb: u64,
    /// Stored snapshot and component bytes.
    pub storage_bytes: u64,
    /// Players in its rooms.
    pub players: u64,
}

/// The gate width of a tenant without a CPU share: more than any node runs.
const UNLIMITED_CPU: u32 = 1 << 20;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub(super) struct Counters {
    live_actors: AtomicU64,
    memory_mb: AtomicU64,
    storage: AtomicI64,
    rate: Mutex<Bucket>,
    /// Sized to the largest share ever set; lowering the share forgets permits.
    cpu: Option<Arc<Semaphore>>,
    cpu_permits: Mutex<u32>,
}

impl Counters {
    pub(super) fn new(quotas: &Quotas) -> Counters {
        Counters {
            live_actors: AtomicU64::new(0),
            memory_mb: AtomicU64::new(0),
            storage: AtomicI64::new(0),
            rate: Mutex::new(Bucket {
                tokens: f64::from(quotas.messages_per_sec.unwrap_or(0)),
                at: Instant::now(),
            }),
            // Every tenant has its gate, wide open without a CPU share, so a
            // share set later applies to actors already live.
            cpu: Some(Arc::new(Semaphore::new(
                quotas.cpu_share.unwrap_or(UNLIMITED_CPU) as usize,
            ))),
            cpu_permits: Mutex::new(quotas.cpu_share.unwrap_or(UNLIMITED_CPU)),
        }
    }

    /// Follows a change of quotas (the CPU gate grows or shrinks in place).
    pub(super) fn resize(&self, quotas: &Quotas) {
        let Some(gate) = &self.cpu else { return };
        let want = quotas.cpu_share.unwrap_or(UNLIMITED_CPU);
        let mut have = self.cpu_permits.lock().expect("quota poisoned");
        if want > *have {
            gate.add_permits((want - *have) as usize);
        } else if want < *have {
            // Only free permits can be forgotten: a share lowered while its
            // guests run narrows as far as it can now.
            gate.forget_permits((*have - want) as usize);
        }
        *have = want;
    }

    pub(super) fn snapshot(&self) -> Usage {
        Usage {
            live_actors: self.live_actors.load(Ordering::Relaxed),
            reserved_memory_mb: self.memory_mb.load(Ordering::Relaxed),
            storage_bytes: self.storage.load(Ordering::Relaxed).max(0) as u64,
            players: 0,
        }
    }
}

/// A live actor counted against its tenant; released when dropped (when the
/// actor's task ends, or when the activation it was taken for did not happen).
#[derive(Debug)]
pub struct ActorReservation {
    tenant: Arc<Tenant>,
    memory_mb: u64,
}

impl Drop for ActorReservation {
    fn drop(&mut self) {
        let c = &self.tenant.usage;
        c.live_actors.fetch_sub(1, Ordering::Relaxed);
        c.memory_mb.fetch_sub(self.memory_mb, Ordering::Relaxed);
    }
}

impl Tenant {
    /// Counts a new actor (with its memory cap) against the tenant, or refuses.
    pub fn reserve_actor(
        self: &Arc<Tenant>,
        memory_mb: u64,
    ) -> Result<ActorReservation, CallError> {
        let q = self.quotas();
        let c = &self.usage;
        let actors = c.live_actors.fetch_add(1, Ordering::AcqRel) + 1;
        let memory = c.memory_mb.fetch_add(memory_mb, Ordering::AcqRel) + memory_mb;
        // From here on, dropping the reservation undoes the counts.
        let reservation = ActorReservation {
            tenant: self.clone(),
            memory_mb,
        };
        if let Some(max) = q.max_actors.filter(|&max| actors > max) {
            return Err(self.refused(
                "max_actors",
                format!("{max} live actors is its quota (max_actors); wait for idle ones to passivate, or ask the operator for more"),
            ));
        }
        if let Some(max) = q.max_memory_mb.filter(|&max| memory > max) {
            return Err(self.refused(
                "max_memory_mb",
                format!("another actor with a {memory_mb} MiB cap would reserve {memory} MiB, over its {max} MiB quota (max_memory_mb)"),
            ));
        }
        Ok(reservation)
    }

    /// Takes one message from the tenant's rate, or refuses.
    pub fn admit_message(&self) -> Result<(), CallError> {
        let Some(rate) = self.record.load().quotas.messages_per_sec else {
            return Ok(());
        };
        let rate = f64::from(rate);
        let mut b = self.usage.rate.lock().expect("quota poisoned");
        let now = Instant::now();
        b.tokens = (b.tokens + rate * now.duration_since(b.at).as_secs_f64()).min(rate);
        b.at = now;
        if b.tokens < 1.0 {
            drop(b);
            return Err(self.refused(
                "messages_per_sec",
                format!("over its quota of {rate:.0} messages per second (messages_per_sec)"),
            ));
        }
        b.tokens -= 1.0;
        Ok(())
    }

    /// Whether `grow` more stored bytes fit the storage quota.
    pub fn check_storage(&self, grow: i64) -> Result<(), CallError> {
        let Some(max_mb) = self.record.load().quotas.max_storage_mb else {
            return Ok(());
        };
        let used = self.usage.storage.load(Ordering::Relaxed);
        let max = (max_mb << 20) as i64;
        if grow > 0 && used + grow > max {
            return Err(self.refused(
                "max_storage_mb",
                format!("storing {grow} more bytes would use {} of its {max_mb} MiB storage quota (max_storage_mb); the previous state stays", used + grow),
            ));
        }
        Ok(())
    }

    /// Counts stored bytes (negative: freed).
    pub fn charge_storage(&self, delta: i64) {
        if delta != 0 {
            self.usage.storage.fetch_add(delta, Ordering::Relaxed);
        }
    }

    /// Whether one more player fits in the tenant's rooms, given how many are
    /// in them now.
    pub fn admit_player(&self, players_now: u64) -> Result<(), CallError> {
        match self.record.load().quotas.max_players {
            Some(max) if players_now >= max => Err(self.refused(
                "max_players",
                format!("its rooms hold {players_now} players, its quota (max_players)"),
            )),
            _ => Ok(()),
        }
    }

    /// The gate of the tenant's CPU share (none for the default tenant, which
    /// has no quotas: its guests pass only their module's gate).
    pub fn cpu_gate(&self) -> Option<Arc<Semaphore>> {
        if self.is_default() {
            return None;
        }
        self.usage.cpu.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DEFAULT_TENANT, Tenants};
    use super::*;

    fn tenants() -> (tempfile::TempDir, anthill_store::Store, Tenants) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = anthill_store::Store::open(dir.path()).expect("store");
        let t = Tenants::load(&store, &prometheus::Registry::new()).expect("tenants");
        (dir, store, t)
    }

    #[test]
    fn actor_and_memory_quotas_refuse_past_the_limit_and_free_on_drop() {
        let (_d, store, t) = tenants();
        let quotas = Quotas {
            max_actors: Some(2),
            max_memory_mb: Some(100),
            ..Quotas::default()
        };
        let (acme, token) = t.create(&store, "acme", quotas, 0).expect("create");
        assert!(t.by_token(&token).is_some_and(|x| x.name == "acme"));
        let a = acme.reserve_actor(40).expect("first");
        let b = acme.reserve_actor(40).expect("second");
        let err = acme.reserve_actor(1).unwrap_err();
        assert!(err.to_string().contains("max_actors"), "{err}");
        drop(b);
        let err = acme.reserve_actor(64).unwrap_err();
        assert!(err.to_string().contains("max_memory_mb"), "{err}");
        let _c = acme.reserve_actor(60).expect("fits again");
        drop(a);
        assert_eq!(acme.usage.snapshot().live_actors, 1);
        // The default tenant is unlimited.
        let d = t.default_tenant();
        let held: Vec<_> = (0..100)
            .map(|_| d.reserve_actor(256).expect("default"))
            .collect();
        assert_eq!(held.len(), 100);
        assert_eq!(d.name, DEFAULT_TENANT);
    }

    #[test]
    fn the_message_rate_is_enforced_and_storage_is_counted() {
        let (_d, store, t) = tenants();
        let quotas = Quotas {
            messages_per_sec: Some(10),
            max_storage_mb: Some(1),
            ..Quotas::default()
        };
        let (acme, _) = t.create(&store, "acme", quotas, 0).expect("create");
        let admitted = (0..50).filter(|_| acme.admit_message().is_ok()).count();
        assert!((10..=11).contains(&admitted), "{admitted} admitted at 10/s");
        acme.check_storage(1 << 19).expect("half a MiB fits");
        acme.charge_storage(1 << 19);
        assert!(acme.check_storage(1 << 20).is_err());
        acme.charge_storage(-(1 << 19));
        acme.check_storage(1 << 20).expect("fits after freeing");
    }

    #[test]
    fn tenants_and_their_rules_survive_a_reload() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = anthill_store::Store::open(dir.path()).expect("store");
        let t = Tenants::load(&store, &prometheus::Registry::new()).expect("tenants");
        let (_, token) = t
            .create(&store, "acme", Quotas::default(), 0)
            .expect("create");
        t.create(&store, "blue", Quotas::default(), 0)
            .expect("create");
        t.allow(&store, "acme", "blue", true).expect("allow");
        drop(t);
        let t = Tenants::load(&store, &prometheus::Registry::new()).expect("reload");
        let acme = t.by_token(&token).expect("token still works");
        let blue = t.get("blue").expect("blue");
        assert!(acme.may_reach(&blue));
        assert!(!blue.may_reach(&acme));
        assert!(t.remove(&store, "acme", vec!["m".into()]).is_err());
        t.allow(&store, "blue", "acme", true).expect("allow");
        t.remove(&store, "acme", vec![]).expect("remove");
        assert!(t.by_token(&token).is_none());
        let (acme2, _) = t
            .create(&store, "acme", Quotas::default(), 0)
            .expect("again");
        assert!(
            !t.get("blue").expect("blue").may_reach(&acme2),
            "a new tenant inherited the rules of a removed one"
        );
    }
}
