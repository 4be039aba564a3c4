//! # anthill-store: persistence behind traits
//!
//! Owns what a node keeps: modules and components, snapshots, the event log,
//! timers and tenants, each behind a trait of [`traits`] ([`Registry`],
//! [`SnapshotStore`], [`EventLog`], [`TimerStore`], [`Durability`];
//! [`Persistence`] is all of them). [`Store`] implements them on one sled
//! database per node plus a directory of uploaded components, with group
//! commit and the disk-full behaviour (the first I/O error that stops the
//! database is kept for `/healthz`). Must not know any other Anthill crate:
//! records are plain data, and modules and tenants are JSON it does not read.
//!
//! Layout of the data directory:
//!
//! ```text
//! DATA/db/            sled: trees `modules`, `snapshots`, `subscriptions`,
//!                     `events`, `cursors`, `dead_letters`, `timers`
//! DATA/components/    uploaded components, named by sha256
//! DATA/cache/         precompiled components (owned by anthill-engine)
//! DATA/admin.token    the admin token (0600)
//! ```

mod commit;
mod events;
mod snapshot;
mod timers;
pub mod traits;

pub use events::{CursorRecord, DeadLetter, SubscriptionRecord};
pub use snapshot::Snapshot;
pub use timers::TimerRecord;
pub use traits::{
    Durability, EventLog, Persistence, Registry, SnapshotPut, SnapshotStore, TimerStore,
};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};

/// A persistence failure, naming what was being read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database in {path}: {source} (is another node using this data dir?)")]
    Open { path: PathBuf, source: sled::Error },
    #[error("database error while {doing}: {source}{hint}", hint = db_hint(source))]
    Db { doing: String, source: sled::Error },
    #[error("i/o error while {doing}: {source}{hint}", hint = disk_hint(source))]
    Io {
        doing: String,
        source: std::io::Error,
    },
    /// The cluster's replicated store (JetStream) refused or did not answer.
    #[error("replicated store: {doing}: {detail}")]
    Replicated { doing: String, detail: String },
    #[error("record {key} in {tree} is unreadable: {detail}")]
    Corrupt {
        tree: &'static str,
        key: String,
        detail: String,
    },
}

fn disk_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::StorageFull {
        " (the disk is full: free space in the data dir, nothing was changed)"
    } else {
        ""
    }
}

fn db_hint(e: &sled::Error) -> &'static str {
    match e {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
            " (the disk is full: free space in the data dir, then restart the node; after an I/O error the database refuses writes until it is reopened)"
        }
        sled::Error::Io(_) => {
            " (after an I/O error the database refuses writes until the node restarts)"
        }
        _ => "",
    }
}

impl StoreError {
    /// Whether this failure is the disk being full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Io { source, .. } => source.kind() == std::io::ErrorKind::StorageFull,
            StoreError::Db {
                source: sled::Error::Io(io),
                ..
            } => io.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }

    /// Whether the database hit an I/O error, after which it refuses every
    /// write until it is reopened.
    fn stops_the_database(&self) -> bool {
        matches!(
            self,
            StoreError::Db {
                source: sled::Error::Io(_),
                ..
            }
        )
    }
}

/// The node's persistent state.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    modules: sled::Tree,
    snapshots: sled::Tree,
    subscriptions: sled::Tree,
    events: sled::Tree,
    cursors: sled::Tree,
    dead_letters: sled::Tree,
    timers: sled::Tree,
    tenants: sled::Tree,
    commit: std::sync::Arc<commit::GroupCommit>,
    /// The first I/O error that stopped the database, for `/healthz`.
    failure: std::sync::Arc<std::sync::OnceLock<String>>,
    dir: PathBuf,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // bincode cannot fail on our plain records written to a Vec.
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .expect("records are plain data")
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - used));
    }
    Ok(value)
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        for sub in ["components", "cache"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|source| StoreError::Io {
                doing: format!("creating {}", dir.join(sub).display()),
                source,
            })?;
        }
        let path = dir.join("db");
        let db = sled::Config::new()
            .path(&path)
            .flush_every_ms(Some(200))
            .open()
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        let tree = |name: &str| {
            db.open_tree(name).map_err(|source| StoreError::Db {
                doing: format!("opening tree {name}"),
                source,
            })
        };
        Ok(Store {
            modules: tree("modules")?,
            snapshots: tree("snapshots")?,
            subscriptions: tree("subscriptions")?,
            events: tree("events")?,
            cursors: tree("cursors")?,
            dead_letters: tree("dead_letters")?,
            timers: tree("timers")?,
            tenants: tree("tenants")?,
            db,
            commit: Default::default(),
            failure: Default::default(),
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records an error that stopped the database (the first one wins).
    pub(crate) fn noted(&self, e: StoreError) -> StoreError {
        if e.stops_the_database() {
            let first = self.failure.get_or_init(|| e.to_string());
            if *first == e.to_string() {
                tracing::error!(error = %e, "the database stopped after an I/O error; durable writes fail until the node restarts");
            }
        }
        e
    }

    fn snapshot_key(module: &str, key: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(module.len() + key.len() + 1);
        k.extend_from_slice(module.as_bytes());
        k.push(0);
        k.extend_from_slice(key.as_bytes());
        k
    }
}

/// `a \0 b \0 c`: keys of records owned by an actor, prefix-scannable by module.
pub(crate) fn key_of(parts: &[&str]) -> Vec<u8> {
    let mut k = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

/// Splits a key made by [`key_of`].
pub(crate) fn parts_of(key: &[u8]) -> Vec<String> {
    key.split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

fn db_err(doing: impl Into<String>) -> impl FnOnce(sled::Error) -> StoreError {
    let doing = doing.into();
    move |source| StoreError::Db { doing, source }
}

/// Writes a file so that readers see either nothing or all of it: written to
/// `NAME.tmp-PID` beside it, synced, renamed.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl crate::Durability for Store {
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(
            self.commit
                .commit(|| async {
                    self.db
                        .flush_async()
                        .await
                        .map(|_| ())
                        .map_err(|source| StoreError::Db {
                            doing: "flushing to disk".into(),
                            source,
                        })
                })
                .map(|r| r.map_err(|e| self.noted(e))),
        )
    }

    fn health(&self) -> Result<(), String> {
        match self.failure.get() {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    fn flushes(&self) -> u64 {
        self.commit.flushes()
    }

    fn disk_bytes(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    // --- module registry -------------------------------------------------
}

impl crate::Registry for Store {
    fn put_module_json(&self, name: &str, record: Vec<u8>) -> Result<(), StoreError> {
        self.modules
            .insert(name.as_bytes(), record)
            .map(|_| ())
            .map_err(|source| StoreError::Db {
                doing: format!("saving module {name}"),
                source,
            })
    }

    fn remove_module(&self, name: &str) -> Result<(), StoreError> {
        self.modules
            .remove(name.as_bytes())
            .map(|_| ())
            .map_err(|source| StoreError::Db {
                doing: format!("removing module {name}"),
                source,
            })
    }

    fn modules_json(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.modules.iter() {
            let (k, v) = item.map_err(|source| StoreError::Db {
                doing: "listing modules".into(),
                source,
            })?;
            out.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        Ok(out)
    }

    // --- components --------------------------------------------------------

    fn component_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("components").join(format!("{sha256}.wasm"))
    }

    fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.component_path(sha256);
        if path.exists() {
            return Ok(());
        }
        write_atomically(&path, bytes).map_err(|source| StoreError::Io {
            doing: format!("saving component {sha256}"),
            source,
        })
    }

    fn read_component(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.component_path(sha256);
        std::fs::read(&path).map_err(|source| StoreError::Io {
            doing: format!("reading component {}", path.display()),
            source,
        })
    }

    fn prune_components(
        &self,
        keep: &std::collections::HashSet<String>,
    ) -> Result<Vec<String>, StoreError> {
        let dir = self.dir.join("components");
        let entries = std::fs::read_dir(&dir).map_err(|source| StoreError::Io {
            doing: format!("listing {}", dir.display()),
            source,
        })?;
        let mut removed = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(sha) = name.strip_suffix(".wasm") else {
                continue;
            };
            if sha.len() != 64 || keep.contains(sha) {
                continue;
            }
            std::fs::remove_file(entry.path()).map_err(|source| StoreError::Io {
                doing: format!("removing {}", entry.path().display()),
                source,
            })?;
            removed.push(sha.to_owned());
        }
        Ok(removed)
    }

    // --- snapshots ---------------------------------------------------------

    fn remove_module_state(&self, module: &str) -> Result<(), StoreError> {
        let mut prefix = module.as_bytes().to_vec();
        prefix.push(0);
        for item in self.timers.scan_prefix(&prefix).keys() {
            let k = item.map_err(db_err(format!("listing timers of {module}")))?;
            self.timers
                .remove(k)
                .map_err(db_err(format!("removing timers of {module}")))?;
        }
        for s in self.subscriptions()? {
            if s.module == module {
                self.remove_subscription(&s.topic, &s.module, &s.key)?;
            }
        }
        Ok(())
    }

    fn put_tenant_json(&self, name: &str, record: Vec<u8>) -> Result<(), StoreError> {
        self.tenants
            .insert(name.as_bytes(), record)
            .map(|_| ())
            .map_err(|source| self.noted(db_err(format!("saving tenant {name}"))(source)))
    }

    fn remove_tenant(&self, name: &str) -> Result<(), StoreError> {
        self.tenants
            .remove(name.as_bytes())
            .map(|_| ())
            .map_err(db_err(format!("removing tenant {name}")))
    }

    fn tenants_json(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tenants.iter() {
            let (k, v) = item.map_err(db_err("listing tenants"))?;
            out.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        Ok(out)
    }
}

impl crate::SnapshotStore for Store {
    fn commit_snapshot<'a>(
        &'a self,
        _module: &'a str,
        _key: &'a str,
        _ticket: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        crate::Durability::flush(self)
    }

    fn put_snapshot(
        &self,
        module: &str,
        key: &str,
        snap: &Snapshot,
    ) -> Result<crate::SnapshotPut, StoreError> {
        let k = Self::snapshot_key(module, key);
        let klen = k.len() as i64;
        let bytes = snap.encode();
        let new = klen + bytes.len() as i64;
        self.snapshots
            .insert(k, bytes)
            .map(|old| crate::SnapshotPut {
                grew: new - old.map_or(0, |o| klen + o.len() as i64),
                // A flush commits every write before it.
                ticket: 0,
            })
            .map_err(|source| {
                self.noted(StoreError::Db {
                    doing: format!("saving the snapshot of {module}/{key}"),
                    source,
                })
            })
    }

    fn get_snapshot(&self, module: &str, key: &str) -> Result<Option<Snapshot>, StoreError> {
        let raw = self
            .snapshots
            .get(Self::snapshot_key(module, key))
            .map_err(|source| StoreError::Db {
                doing: format!("reading the snapshot of {module}/{key}"),
                source,
            })?;
        match raw {
            None => Ok(None),
            Some(bytes) => {
                Snapshot::decode(&bytes)
                    .map(Some)
                    .map_err(|detail| StoreError::Corrupt {
                        tree: "snapshots",
                        key: format!("{module}/{key}"),
                        detail,
                    })
            }
        }
    }

    fn has_snapshot(&self, module: &str, key: &str) -> Result<bool, StoreError> {
        self.snapshots
            .contains_key(Self::snapshot_key(module, key))
            .map_err(|source| StoreError::Db {
                doing: format!("reading the snapshot of {module}/{key}"),
                source,
            })
    }

    fn remove_snapshot(&self, module: &str, key: &str) -> Result<(), StoreError> {
        self.snapshots
            .remove(Self::snapshot_key(module, key))
            .map(|_| ())
            .map_err(|source| StoreError::Db {
                doing: format!("removing the snapshot of {module}/{key}"),
                source,
            })
    }

    fn remove_snapshots(&self, module: &str) -> Result<usize, StoreError> {
        let mut prefix = module.as_bytes().to_vec();
        prefix.push(0);
        let mut n = 0;
        for item in self.snapshots.scan_prefix(&prefix).keys() {
            let k = item.map_err(|source| StoreError::Db {
                doing: format!("listing snapshots of {module}"),
                source,
            })?;
            self.snapshots.remove(k).map_err(|source| StoreError::Db {
                doing: format!("removing snapshots of {module}"),
                source,
            })?;
            n += 1;
        }
        Ok(n)
    }

    fn snapshot_keys(&self, module: &str) -> Result<Vec<String>, StoreError> {
        let mut prefix = module.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.snapshots.scan_prefix(&prefix).keys() {
            let k = item.map_err(|source| StoreError::Db {
                doing: format!("listing snapshots of {module}"),
                source,
            })?;
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        Ok(out)
    }

    fn snapshot_bytes(&self, module: &str) -> Result<u64, StoreError> {
        let mut prefix = module.as_bytes().to_vec();
        prefix.push(0);
        let mut total = 0;
        for item in self.snapshots.scan_prefix(&prefix) {
            let (k, v) = item.map_err(db_err(format!("listing snapshots of {module}")))?;
            total += (k.len() + v.len()) as u64;
        }
        Ok(total)
    }
}
