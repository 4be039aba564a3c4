//! How delivering a message, or handling it, can fail. One type from the router
//! through the actor to the caller, mapped at the edges: to the WIT `error`
//! variant for guests (in the engine), to an HTTP status for the admin API,
//! to a protocol error code for players.

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

    /// The chain of a cycle error that travelled through a guest as text
    /// (`call cycle: a → b → a (a call may not wait…`), so it keeps its kind
    /// on the way back up to the first caller.
    pub fn cycle_in(text: &str) -> Option<CallError> {
        let rest = text.strip_prefix(CYCLE_PREFIX)?;
        let inner = rest.split(CYCLE_HINT).next().unwrap_or_default();
        Some(CallError::Cycle(inner.to_owned()))
    }

    /// A failure to make state durable; `disk_full` keeps its own kind
    /// (`disk-full`) so callers can tell it from other storage faults.
    pub fn storage(detail: impl std::fmt::Display, disk_full: bool) -> CallError {
        CallError::Storage {
            detail: detail.to_string(),
            disk_full,
        }
    }
}
