//! Modules as the rest of the runtime names them: placement kind, durability,
//! who players may reach, the settings chosen at deploy, and the registry
//! records (persisted as JSON, so old data dirs keep loading).

use serde::{Deserialize, Serialize};

/// Placement of a module's actors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Exactly one actor (key ""): a global service.
    Singleton,
    /// One actor per key, created on its first message, passivated when idle.
    Keyed,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Singleton => "singleton",
            Kind::Keyed => "keyed",
        })
    }
}

/// When an actor's state reaches the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// On an interval, at passivation and at graceful shutdown.
    #[default]
    Interval,
    /// After every message, committed to disk before the reply is released: an
    /// acknowledged message is never lost.
    EveryMessage,
}

/// What players may do with a module's actors (requests and joins from the
/// gateway; actors, the admin API and the node itself are not limited by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PlayerAccess {
    /// Players cannot reach the module at all: an internal service.
    None,
    /// Players reach actors that exist already (live, or stored): a singleton,
    /// or a room another actor opened. They cannot create actors at will.
    #[default]
    Existing,
    /// Players may also activate new keys (`counter/<anything>`).
    Open,
}

impl std::fmt::Display for PlayerAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PlayerAccess::None => "none",
            PlayerAccess::Existing => "existing",
            PlayerAccess::Open => "open",
        })
    }
}

/// A module's settings, chosen at deploy (defaults from the node config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleSettings {
    /// Singleton or keyed.
    pub kind: Kind,
    /// Guest time one call may use.
    pub deadline_ms: u64,
    /// Linear memory cap per actor.
    pub memory_mb: u32,
    /// When state reaches the store.
    #[serde(default)]
    pub durability: Durability,
    /// A keyed actor idle this long is passivated.
    pub idle_timeout_ms: u64,
    /// A live actor with unsaved changes is snapshotted this often.
    pub snapshot_interval_ms: u64,
    /// Messages a mailbox holds.
    pub mailbox: usize,
    /// What players may do with it (records written before this setting
    /// existed read as the default, `existing`).
    #[serde(default)]
    pub players: PlayerAccess,
}

/// Settings asked for in a deploy; unset fields keep the module's current value
/// (or the node default for a new module).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SettingsRequest {
    /// See [`ModuleSettings::kind`].
    pub kind: Option<Kind>,
    /// See [`ModuleSettings::deadline_ms`].
    pub deadline_ms: Option<u64>,
    /// See [`ModuleSettings::memory_mb`].
    pub memory_mb: Option<u32>,
    /// See [`ModuleSettings::durability`].
    pub durability: Option<Durability>,
    /// See [`ModuleSettings::idle_timeout_ms`].
    pub idle_timeout_ms: Option<u64>,
    /// See [`ModuleSettings::snapshot_interval_ms`].
    pub snapshot_interval_ms: Option<u64>,
    /// See [`ModuleSettings::mailbox`].
    pub mailbox: Option<usize>,
    /// See [`ModuleSettings::players`].
    pub players: Option<PlayerAccess>,
    /// Placement, not a setting: the tenant a new module belongs to (the
    /// operator's choice; a tenant's own token always deploys into itself).
    pub tenant: Option<String>,
    /// Deploy strategy, not a setting: route only this percentage of keys (by a
    /// stable hash) to the new version, until `promote` or `rollback`.
    pub canary: Option<u8>,
    /// Deploy strategy, not a setting: make a new version (and swap every
    /// live actor to it) even when the component and settings are those of
    /// the running version, which is otherwise a no-op.
    pub force: Option<bool>,
}

/// One deployed version, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// The version number (1, 2, ...).
    pub version: u32,
    /// The component's sha256, hex.
    pub sha256: String,
    /// The component's size in bytes.
    pub size: u64,
    /// When it was deployed.
    pub deployed_at_ms: u64,
}

/// A canary in progress, as persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryRecord {
    /// The canary's version.
    pub version: u32,
    /// The share of keys it serves.
    pub percent: u8,
}

/// A module's registry entry, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRecord {
    /// Its settings.
    pub settings: ModuleSettings,
    /// Oldest first; the last few are kept for rollback.
    pub versions: Vec<VersionRecord>,
    /// The version actors run (outside the canary).
    pub active: u32,
    /// The canary in progress, if any.
    #[serde(default)]
    pub canary: Option<CanaryRecord>,
    /// The tenant that owns it (records from before tenants: `default`).
    #[serde(default = "default_tenant")]
    pub tenant: String,
}

fn default_tenant() -> String {
    crate::DEFAULT_TENANT.to_owned()
}

impl ModuleRecord {
    /// The record of version `v`, if kept.
    pub fn version(&self, v: u32) -> Option<&VersionRecord> {
        self.versions.iter().find(|r| r.version == v)
    }

    /// The newest version number (0 if none).
    pub fn latest(&self) -> u32 {
        self.versions.iter().map(|v| v.version).max().unwrap_or(0)
    }
}

/// The rule module names follow, as error messages state it.
pub const MODULE_NAME_RULE: &str =
    "1 to 64 characters from a-z, 0-9, `-` and `_`, starting with a letter or digit";

/// Whether `name` follows [`MODULE_NAME_RULE`] (deploy and `anthill new` agree on it).
pub fn is_module_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

/// The canary bucket of a key, 0..100: a stable hash (FNV-1a), so a key stays on
/// the same side of a canary split across restarts and nodes.
pub fn canary_bucket(key: &str) -> u8 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % 100) as u8
}
