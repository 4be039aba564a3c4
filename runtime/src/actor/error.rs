//! How delivering a message, or handling it, can fail. One type from the router
//! through the actor to the caller, mapped at the edges: to the WIT `error`
//! variant for guests, to an HTTP status for the admin API.

use crate::host::types::Error as WitError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("module `{0}` is not deployed")]
    ModuleNotFound(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Rejected(String),
    #[error("no reply from {to} within {ms} ms")]
    Timeout { to: String, ms: u64 },
    #[error("overloaded: {0}")]
    Overloaded(String),
    #[error(
        "call cycle: {0} (a call may not wait on an actor that is waiting on it; use send, or restructure)"
    )]
    Cycle(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{actor} exceeded its {ms} ms deadline and was stopped")]
    DeadlineExceeded { actor: String, ms: u64 },
    #[error("{actor} exceeded its {mb} MiB memory cap and was stopped")]
    OutOfMemory { actor: String, mb: u64 },
    #[error("{actor} trapped: {detail}")]
    Trapped { actor: String, detail: String },
    #[error("{what} of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    /// The actor reached one of its per-actor bounds (`limit` is the config
    /// key that sets it).
    #[error("{actor} reached {limit}: {detail}")]
    LimitReached {
        actor: String,
        limit: &'static str,
        detail: String,
    },
    /// A tenant's quota (or the operator's rule between tenants) refused it.
    #[error("{0}")]
    Quota(String),
    /// Players may not do this with the module (its `players` setting).
    #[error("{0}")]
    Forbidden(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The node could not make state durable (the reply is withheld: the
    /// message is not acknowledged).
    #[error("{detail}")]
    Storage { detail: String, disk_full: bool },
    #[error("internal error: {0}")]
    Internal(String),
}

/// How a cycle's text starts and where its hint begins (see [`CallError::Cycle`]).
const CYCLE_PREFIX: &str = "call cycle: ";
const CYCLE_HINT: &str = " (a call may not wait";

impl From<crate::store::StoreError> for CallError {
    fn from(e: crate::store::StoreError) -> CallError {
        CallError::Storage {
            disk_full: e.is_disk_full(),
            detail: e.to_string(),
        }
    }
}

impl CallError {
    /// A short stable name, used as the `error` field of API errors and as the
    /// `kind` label of metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::ModuleNotFound(_) | CallError::NotFound(_) => "not-found",
            CallError::Rejected(_) => "rejected",
            CallError::Timeout { .. } => "timeout",
            CallError::Overloaded(_) => "overloaded",
            CallError::Cycle(_) => "call-cycle",
            CallError::Unsupported(_) => "unsupported",
            CallError::DeadlineExceeded { .. } => "deadline-exceeded",
            CallError::OutOfMemory { .. } => "out-of-memory",
            CallError::Trapped { .. } => "trapped",
            CallError::TooLarge { .. } => "too-large",
            CallError::LimitReached { .. } => "limit-reached",
            CallError::Quota(_) => "quota",
            CallError::Forbidden(_) => "forbidden",
            CallError::BadRequest(_) => "bad-request",
            CallError::Storage {
                disk_full: true, ..
            } => "disk-full",
            CallError::Storage { .. } => "storage",
            CallError::Internal(_) => "internal",
        }
    }

    /// Whether this is the module's own failure (a trap, a deadline, memory, a
    /// per-actor limit, an internal error), which feeds the circuit breakers,
    /// rather than a refusal or the node's capacity.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            CallError::Trapped { .. }
                | CallError::DeadlineExceeded { .. }
                | CallError::OutOfMemory { .. }
                | CallError::LimitReached { .. }
                | CallError::Internal(_)
        )
    }

    /// The error a module's own `on-message` returned.
    pub fn from_guest(e: WitError) -> CallError {
        match e {
            // A cycle refused deep in a chain keeps its kind on the way back up,
            // so the first caller sees `call-cycle`, not a module's rejection.
            WitError::Rejected(s) if s.starts_with(CYCLE_PREFIX) => {
                let inner = s[CYCLE_PREFIX.len()..]
                    .split(CYCLE_HINT)
                    .next()
                    .unwrap_or_default();
                CallError::Cycle(inner.to_owned())
            }
            WitError::Rejected(s) => CallError::Rejected(s),
            WitError::Timeout => CallError::Timeout {
                to: "a downstream actor".into(),
                ms: 0,
            },
            WitError::NotFound(s) => CallError::NotFound(s),
            WitError::Overloaded(s) => CallError::Overloaded(s),
            WitError::Unsupported(s) => CallError::Unsupported(s),
            WitError::Internal(s) => CallError::Internal(s),
        }
    }

    /// The WIT error a guest sees for this failure.
    pub fn to_wit(&self) -> WitError {
        match self {
            CallError::ModuleNotFound(_) | CallError::NotFound(_) => {
                WitError::NotFound(self.to_string())
            }
            CallError::Rejected(s) => WitError::Rejected(s.clone()),
            CallError::Timeout { .. } => WitError::Timeout,
            CallError::Overloaded(_) => WitError::Overloaded(self.to_string()),
            CallError::Unsupported(s) => WitError::Unsupported(s.clone()),
            CallError::Cycle(_)
            | CallError::TooLarge { .. }
            | CallError::BadRequest(_)
            | CallError::Forbidden(_) => WitError::Rejected(self.to_string()),
            CallError::LimitReached { .. } | CallError::Quota(_) => {
                WitError::Overloaded(self.to_string())
            }
            CallError::DeadlineExceeded { .. }
            | CallError::OutOfMemory { .. }
            | CallError::Trapped { .. }
            | CallError::Storage { .. }
            | CallError::Internal(_) => WitError::Internal(self.to_string()),
        }
    }
}
