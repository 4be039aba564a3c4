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

impl Store {
    pub fn put_timer(&self, t: &TimerRecord) -> Result<(), StoreError> {
        self.timers
            .insert(key_of(&[&t.module, &t.key, &t.tag]), encode(t))
            .map(|_| ())
            .map_err(db_err(format!(
                "saving timer {} of {}/{}",
                t.tag, t.module, t.key
            )))
    }

    pub fn remove_timer(&self, module: &str, key: &str, tag: &str) -> Result<(), StoreError> {
        self.timers
            .remove(key_of(&[module, key, tag]))
            .map(|_| ())
            .map_err(db_err(format!("removing timer {tag} of {module}/{key}")))
    }

    pub fn timers(&self) -> Result<Vec<TimerRecord>, StoreError> {
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

    /// Deletes every timer and subscription of a module (on undeploy).
    pub fn remove_module_state(&self, module: &str) -> Result<(), StoreError> {
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
}
