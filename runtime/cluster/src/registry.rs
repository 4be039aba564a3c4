//! The cluster's module registry: module records in the `modules` bucket
//! (the truth), components in the `components` object store by sha256. Every
//! node watches the bucket, and re-lists it on a timer because a watch can
//! silently stop after reconnects (nats.rs #1596), and converges its own
//! modules to each record: fetch, precompile, swap its live actors.

use crate::ClusterError;
use crate::join::Nats;
use crate::membership::{Failure, Served};
use anthill_actors::Runtime;
use anthill_actors::module::{ComponentSource, Converged, DeployError, ModuleRecord, converge};
use anthill_core::cluster::ServedVersions;
use async_nats::jetstream::kv::{CreateErrorKind, UpdateErrorKind};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How often the whole registry is listed again, whatever the watch says.
const RELIST: Duration = Duration::from_secs(5);

/// The registry's record of a module: present, removed (a delete marker),
/// or never seen.
#[derive(Debug, Clone, PartialEq)]
pub enum Listed {
    /// Deployed at this revision.
    Present(ModuleRecord, u64),
    /// Undeployed at this revision.
    Removed(u64),
    /// The cluster never had it.
    Unknown,
}

impl Listed {
    fn revision(&self) -> Option<u64> {
        match self {
            Listed::Present(_, r) | Listed::Removed(r) => Some(*r),
            Listed::Unknown => None,
        }
    }
}

/// What this node serves and what it could not, for its heartbeat.
#[derive(Default, Clone)]
pub(crate) struct Report {
    pub(crate) applied: BTreeMap<String, u64>,
    pub(crate) failed: BTreeMap<String, Failure>,
}

/// This node's side of the registry.
pub struct RegistrySync {
    nats: Nats,
    runtime: Arc<Runtime>,
    tenants: Arc<crate::tenants::TenantSync>,
    report: Mutex<Report>,
    /// Held by an operator's change (read the record, change this node,
    /// publish) and by each convergence, so neither undoes the other midway.
    change: tokio::sync::Mutex<()>,
}

impl ComponentSource for Nats {
    fn fetch<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let mut object = self
                .components
                .get(sha256)
                .await
                .map_err(|e| format!("the cluster's object store: {e}"))?;
            let mut bytes = Vec::new();
            object
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| format!("reading it from the object store: {e}"))?;
            Ok(bytes)
        })
    }
}

impl RegistrySync {
    pub(crate) fn new(
        nats: Nats,
        runtime: Arc<Runtime>,
        tenants: Arc<crate::tenants::TenantSync>,
    ) -> RegistrySync {
        RegistrySync {
            nats,
            runtime,
            tenants,
            report: Mutex::new(Report::default()),
            change: tokio::sync::Mutex::new(()),
        }
    }

    /// The lock an operator's change holds from reading the record to
    /// publishing the new one.
    pub(crate) async fn change_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.change.lock().await
    }

    /// What this node serves, for its heartbeat.
    pub(crate) fn served(
        &self,
    ) -> (
        BTreeMap<String, u64>,
        BTreeMap<String, Served>,
        BTreeMap<String, Failure>,
    ) {
        let report = self.report.lock().expect("registry report").clone();
        let modules = self
            .runtime
            .router
            .modules()
            .into_iter()
            .map(|m| {
                let r = m.record();
                let served = Served {
                    versions: ServedVersions {
                        active: r.active,
                        canary: r.canary.map(|c| c.version),
                    },
                    revision: report.applied.get(&m.name).copied().unwrap_or(0),
                };
                (m.name.clone(), served)
            })
            .collect();
        (report.applied, modules, report.failed)
    }

    /// The registry's record of `name`, read from the stream's leader: a
    /// follower's stale answer would make this node undo a deploy it already
    /// follows (a module it serves, read as never deployed, is removed).
    pub async fn listed(&self, name: &str) -> Result<Listed, ClusterError> {
        let latest = crate::latest::latest(&self.nats.modules, name)
            .await
            .map_err(|e| ClusterError::Unavailable(format!("reading module `{name}`: {e}")))?;
        Ok(match latest {
            None => Listed::Unknown,
            Some(l) => match l.present() {
                None => Listed::Removed(l.revision),
                Some(value) => match serde_json::from_slice::<ModuleRecord>(value) {
                    Ok(r) => Listed::Present(r, l.revision),
                    Err(err) => {
                        return Err(ClusterError::Unavailable(format!(
                            "module `{name}`'s record in the cluster does not decode: {err}"
                        )));
                    }
                },
            },
        })
    }

    /// Makes this node match `listed` and records the outcome. Call with the
    /// change lock held.
    pub(crate) async fn apply(
        &self,
        name: &str,
        listed: &Listed,
    ) -> Result<Converged, DeployError> {
        let want = match listed {
            Listed::Present(r, _) => Some(r.clone()),
            Listed::Removed(_) | Listed::Unknown => None,
        };
        // A tenant created on another node a moment ago: fetch it first.
        if let Some(r) = &want
            && self.runtime.tenants.get(&r.tenant).is_none()
            && let Err(e) = self.tenants.follow(&r.tenant).await
        {
            tracing::warn!(tenant = %r.tenant, error = %e, "cannot fetch a module's tenant");
        }
        let outcome = converge(&self.runtime, name, want, &self.nats).await;
        let mut report = self.report.lock().expect("registry report");
        match (&outcome, listed.revision()) {
            (Ok(_), Some(rev)) => {
                report.applied.insert(name.to_owned(), rev);
                report.failed.remove(name);
            }
            (Ok(_), None) => {
                report.applied.remove(name);
                report.failed.remove(name);
            }
            (Err(e), rev) => {
                tracing::error!(module = name, error = %e, "cannot follow the cluster's record of this module");
                report.failed.insert(
                    name.to_owned(),
                    Failure {
                        revision: rev.unwrap_or(0),
                        error: e.to_string(),
                    },
                );
            }
        }
        outcome
    }

    /// Keeps the component where every node can fetch it (once per sha256).
    pub(crate) async fn put_component(&self, sha256: &str) -> Result<(), DeployError> {
        if self.nats.components.info(sha256).await.is_ok() {
            return Ok(());
        }
        let bytes = self.runtime.store.read_component(sha256)?;
        self.nats
            .components
            .put(sha256, &mut bytes.as_slice())
            .await
            .map_err(|e| {
                DeployError::ClusterUnavailable(format!("storing component {sha256}: {e}"))
            })?;
        Ok(())
    }

    /// Publishes `record` (or its removal) if the registry is still at
    /// `expected`; returns the new revision.
    pub(crate) async fn publish(
        &self,
        name: &str,
        record: Option<&ModuleRecord>,
        expected: &Listed,
    ) -> Result<u64, DeployError> {
        let unavailable = |e: String| DeployError::ClusterUnavailable(e);
        let conflict = |detail: String| DeployError::ClusterConflict {
            name: name.to_owned(),
            detail,
        };
        let kv = &self.nats.modules;
        let revision = match (record, expected) {
            (Some(r), expected) => {
                let body = serde_json::to_vec(r).expect("a module record serializes");
                let moved = || {
                    conflict(format!(
                        "the cluster's record moved past revision {}",
                        expected.revision().unwrap_or(0)
                    ))
                };
                match expected {
                    Listed::Present(_, rev) | Listed::Removed(rev) => {
                        match kv.update(name, body.into(), *rev).await {
                            Ok(rev) => rev,
                            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                                return Err(moved());
                            }
                            Err(e) => return Err(unavailable(format!("publishing `{name}`: {e}"))),
                        }
                    }
                    Listed::Unknown => match kv.create(name, body.into()).await {
                        Ok(rev) => rev,
                        Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                            return Err(moved());
                        }
                        Err(e) => return Err(unavailable(format!("publishing `{name}`: {e}"))),
                    },
                }
            }
            (None, Listed::Present(_, rev)) => {
                kv.delete_expect_revision(name, Some(*rev))
                    .await
                    .map_err(|e| conflict(format!("removing it at revision {rev}: {e}")))?;
                match self.listed(name).await {
                    Ok(l) => l.revision().unwrap_or(*rev),
                    Err(_) => *rev,
                }
            }
            (None, other) => other.revision().unwrap_or(0),
        };
        let mut report = self.report.lock().expect("registry report");
        report.applied.insert(name.to_owned(), revision);
        report.failed.remove(name);
        Ok(revision)
    }

    /// Converges every module once: each listed record, and each local
    /// module the registry does not list. A local module the cluster never
    /// saw is published (the first node of a cluster brings its modules); one
    /// the cluster removed is removed here.
    pub(crate) async fn sync_all(&self) -> Result<(), ClusterError> {
        let mut keys = self
            .nats
            .modules
            .keys()
            .await
            .map_err(|e| ClusterError::Unavailable(format!("listing modules: {e}")))?;
        let mut names = std::collections::BTreeSet::new();
        while let Some(k) = keys.next().await {
            names
                .insert(k.map_err(|e| ClusterError::Unavailable(format!("listing modules: {e}")))?);
        }
        for m in self.runtime.router.modules() {
            names.insert(m.name.clone());
        }
        for name in names {
            let _change = self.change.lock().await;
            let listed = self.listed(&name).await?;
            if listed == Listed::Unknown
                && let Some(m) = self.runtime.router.module(&name)
            {
                self.seed(&name, &m.record()).await;
                continue;
            }
            let _ = self.apply(&name, &listed).await;
        }
        Ok(())
    }

    /// Publishes a module only this node has.
    async fn seed(&self, name: &str, record: &ModuleRecord) {
        let mut shas: Vec<_> = vec![record.active];
        shas.extend(record.canary.map(|c| c.version));
        for v in shas.iter().filter_map(|v| record.version(*v)) {
            if let Err(e) = self.put_component(&v.sha256).await {
                tracing::warn!(module = name, error = %e, "cannot bring this node's module to the cluster");
                return;
            }
        }
        match self.publish(name, Some(record), &Listed::Unknown).await {
            Ok(rev) => tracing::info!(
                module = name,
                revision = rev,
                "brought this node's module to the cluster"
            ),
            Err(e) => {
                tracing::warn!(module = name, error = %e, "cannot bring this node's module to the cluster")
            }
        }
    }

    /// Follows the registry until the task is aborted: every change the watch
    /// reports, and a full pass every few seconds.
    pub(crate) async fn run(self: Arc<Self>) {
        loop {
            let watch = self.nats.modules.watch_all().await;
            let mut relist = tokio::time::interval(RELIST);
            relist.tick().await;
            match watch {
                Ok(mut watch) => loop {
                    tokio::select! {
                        change = watch.next() => match change {
                            Some(Ok(entry)) => {
                                let _change = self.change.lock().await;
                                // Read back: the watch's value may be older
                                // than what another change already wrote.
                                match self.listed(&entry.key).await {
                                    Ok(listed) => { let _ = self.apply(&entry.key, &listed).await; }
                                    Err(e) => tracing::warn!(error = %e, "cannot read a changed module record"),
                                }
                            }
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "the registry watch failed; watching again");
                                break;
                            }
                            None => break,
                        },
                        _ = relist.tick() => {
                            if let Err(e) = self.sync_all().await {
                                tracing::warn!(error = %e, "cannot list the cluster's registry");
                            }
                        }
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the cluster's registry; listing it instead");
                    relist.tick().await;
                    if let Err(e) = self.sync_all().await {
                        tracing::warn!(error = %e, "cannot list the cluster's registry");
                    }
                }
            }
        }
    }
}
