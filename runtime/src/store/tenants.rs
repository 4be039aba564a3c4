//! Persistence of tenant records (JSON, keyed by tenant name), so tenants,
//! their quotas and their token hashes survive restarts.

use super::{Store, StoreError, db_err};
use serde::Serialize;
use serde::de::DeserializeOwned;

impl Store {
    /// Writes a tenant's record.
    pub fn put_tenant<T: Serialize>(&self, name: &str, record: &T) -> Result<(), StoreError> {
        self.tenants
            .insert(
                name.as_bytes(),
                serde_json::to_vec(record).expect("records are plain data"),
            )
            .map(|_| ())
            .map_err(|source| self.noted(db_err(format!("saving tenant {name}"))(source)))
    }

    /// Removes a tenant's record.
    pub fn remove_tenant(&self, name: &str) -> Result<(), StoreError> {
        self.tenants
            .remove(name.as_bytes())
            .map(|_| ())
            .map_err(db_err(format!("removing tenant {name}")))
    }

    /// Every tenant record, in name order.
    pub fn tenants<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for item in self.tenants.iter() {
            let (k, v) = item.map_err(db_err("listing tenants"))?;
            out.push(serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                tree: "tenants",
                key: String::from_utf8_lossy(&k).into_owned(),
                detail: e.to_string(),
            })?);
        }
        Ok(out)
    }

    /// Bytes of every stored snapshot of a module (their encoded size).
    pub fn snapshot_bytes(&self, module: &str) -> Result<u64, StoreError> {
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
