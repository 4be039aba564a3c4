//! Precompiled components on disk, keyed by the component's sha256 and the
//! engine's compatibility hash (wasmtime version, target, and every setting that
//! changes generated code), so a restart or a repeated deploy skips Cranelift.
//!
//! Only artifacts this node wrote are ever loaded: `Component::deserialize_file`
//! trusts its input, so the directory lives in the node's own data dir and a
//! failed load falls back to compiling.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;

pub(super) struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
}

impl ComponentCache {
    pub(super) fn new(dir: PathBuf, engine: &wasmtime::Engine) -> ComponentCache {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        ComponentCache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        }
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The precompiled component, if this engine wrote one for this sha256.
    pub(super) fn load(&self, engine: &wasmtime::Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was produced by `Component::serialize` of an engine
        // with the same compatibility hash (it is in the name), in this node's own
        // data dir; wasmtime additionally checks its header before using it.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable precompiled component; recompiling");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Deletes the precompiled artifacts of `sha256` (for every engine
    /// configuration: an artifact of an older wasmtime is of no use either).
    pub(super) fn forget(&self, sha256: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let prefix = format!("{sha256}-");
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix)
                && name.ends_with(".cwasm")
                && let Err(e) = std::fs::remove_file(entry.path())
            {
                tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove a precompiled component");
            }
        }
    }

    /// Writes the precompiled artifact; a failure only costs a recompile later.
    pub(super) fn store(&self, sha256: &str, component: &Component) {
        let path = self.path(sha256);
        let result = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|bytes| {
                // Another node sharing the cache sees all of it or nothing.
                let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
                std::io::Write::write_all(&mut tmp, &bytes)?;
                tmp.persist(&path).map(|_| ()).map_err(|e| e.error)
            });
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the compile cache");
        }
    }
}
