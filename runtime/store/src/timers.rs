//! Persistence of actor timers, keyed `module\0key\0tag`, so a module's timers can
//! be found (and dropped) by prefix.

use super::{Store, StoreError, db_err, decode, encode, key_of, parts_of};
use serde::{Deserialize, Serialize};

/// A timer as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerRecord {
    pub module: String,
    pub key: String,
    pub tag: String,
    /// When it is next due (ms since the Unix epoch).
    pub due_ms: u64,
    /// Period of a repeating timer.
    pub repeat_ms: Option<u64>,
}

impl crate::TimerStore for Store {
    fn put_timer(&self, t: &TimerRecord) -> Result<(), StoreError> {
        self.timers
            .insert(key_of(&[&t.module, &t.key, &t.tag]), encode(t))
            .map(|_| ())
            .map_err(db_err(format!(
                "saving timer {} of {}/{}",
                t.tag, t.module, t.key
            )))
    }

    fn remove_timer(&self, module: &str, key: &str, tag: &str) -> Result<(), StoreError> {
        self.timers
            .remove(key_of(&[module, key, tag]))
            .map(|_| ())
            .map_err(db_err(format!("removing timer {tag} of {module}/{key}")))
    }

    fn timers(&self) -> Result<Vec<TimerRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.timers.iter() {
            let (k, v) = item.map_err(db_err("listing timers"))?;
            out.push(decode(&v).map_err(|detail| StoreError::Corrupt {
                tree: "timers",
                key: parts_of(&k).join("/"),
                detail,
            })?);
        }
        Ok(out)
    }
}
