//! How delivering a message, or handling it, can fail. One type from the router
//! through the actor to the caller, mapped at the edges: to the WIT `error`
//! variant for guests (in the engine), to an HTTP status for the admin API,
//! to a protocol error code for players.

/// Why a message could not be delivered or handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No module of that name is deployed.
    #[error("module `{0}` is not deployed")]
    ModuleNotFound(String),
    /// No such actor, player or thing.
    #[error("not found: {0}")]
    NotFound(String),
    /// The receiver refused (a module's own error).
    #[error("{0}")]
    Rejected(String),
    #[error("no reply from {to} within {ms} ms")]
    /// No reply within the timeout.
    Timeout {
        /// Who did not answer.
        to: String,
        /// The timeout.
        ms: u64,
    },
    /// No room now (a full mailbox, the pool, a rate limit): retry later.
    #[error("overloaded: {0}")]
    Overloaded(String),
    #[error(
        "call cycle: {0} (a call may not wait on an actor that is waiting on it; use send, or restructure)"
    )]
    /// A call would wait on an actor that waits on the caller.
    Cycle(String),
    /// The operation is not supported.
    #[error("{0}")]
    Unsupported(String),
    #[error("{actor} exceeded its {ms} ms deadline and was stopped")]
    /// Guest code ran past its deadline and was stopped.
    DeadlineExceeded {
        /// The actor.
        actor: String,
        /// Its deadline.
        ms: u64,
    },
    #[error("{actor} exceeded its {mb} MiB memory cap and was stopped")]
    /// Guest code reached its memory cap and was stopped.
    OutOfMemory {
        /// The actor.
        actor: String,
        /// Its memory cap.
        mb: u64,
    },
    #[error("{actor} trapped: {detail}")]
    /// Guest code trapped (a panic, an unreachable).
    Trapped {
        /// The actor.
        actor: String,
        /// The trap, and what the guest printed before it.
        detail: String,
    },
    /// A payload over its size limit.
    #[error("{what} of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// What it was (message, reply, request, ...).
        what: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The actor reached one of its per-actor bounds (`limit` is the config
    /// key that sets it).
    #[error("{actor} reached {limit}: {detail}")]
    LimitReached {
        /// The actor.
        actor: String,
        /// The config key of the limit.
        limit: &'static str,
        /// What reached it.
        detail: String,
    },
    /// A tenant's quota (or the operator's rule between tenants) refused it.
    #[error("{0}")]
    Quota(String),
    /// Players may not do this with the module (its `players` setting).
    #[error("{0}")]
    Forbidden(String),
    /// The request itself is wrong.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The node could not make state durable (the reply is withheld: the
    /// message is not acknowledged).
    #[error("{detail}")]
    Storage {
        /// What failed.
        detail: String,
        /// The disk is full (kind `disk-full`).
        disk_full: bool,
    },
    /// The node that holds the actor cannot be reached now (in a cluster):
    /// retry later, or bring that node back.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A fault of the node.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How a cycle's text starts and where its hint begins (see [`CallError::Cycle`]).
const CYCLE_PREFIX: &str = "call cycle: ";
const CYCLE_HINT: &str = " (a call may not wait";

/// How a full disk's text starts when it travels through a guest (the WIT
/// `error` has no variant for it).
const DISK_FULL_PREFIX: &str = "disk-full: ";

impl CallError {
    /// Every value [`CallError::kind`] returns (metric labels are removed by it).
    pub const KINDS: &'static [&'static str] = &[
        "not-found",
        "rejected",
        "timeout",
        "overloaded",
        "call-cycle",
        "unsupported",
        "deadline-exceeded",
        "out-of-memory",
        "trapped",
        "too-large",
        "limit-reached",
        "quota",
        "forbidden",
        "bad-request",
        "disk-full",
        "storage",
        "unavailable",
        "internal",
    ];

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
            CallError::Unavailable(_) => "unavailable",
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

    /// The text a guest sees for this error when its kind has no WIT
    /// variant of its own and must survive the guest handing it back
    /// (a full disk under `subscribe` or `set-timer`).
    pub fn guest_text(&self) -> String {
        match self {
            CallError::Storage {
                disk_full: true,
                detail,
            } => format!("{DISK_FULL_PREFIX}{detail}"),
            other => other.to_string(),
        }
    }

    /// The error that [`CallError::guest_text`] wrote, read back when a guest
    /// returns it as its own.
    pub fn from_guest_text(text: &str) -> Option<CallError> {
        if let Some(detail) = text.strip_prefix(DISK_FULL_PREFIX) {
            return Some(CallError::storage(detail, true));
        }
        None
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

#[cfg(test)]
mod kinds {
    use super::CallError;

    /// One of every variant: `kind` must be among `KINDS` (metric series of
    /// an undeployed module are removed by that list), and every listed kind
    /// must be reachable.
    #[test]
    fn kinds_lists_every_kind_and_nothing_else() {
        let s = || "x".to_owned();
        let all = [
            CallError::ModuleNotFound(s()),
            CallError::NotFound(s()),
            CallError::Rejected(s()),
            CallError::Timeout { to: s(), ms: 1 },
            CallError::Overloaded(s()),
            CallError::Cycle(s()),
            CallError::Unsupported(s()),
            CallError::DeadlineExceeded { actor: s(), ms: 1 },
            CallError::OutOfMemory { actor: s(), mb: 1 },
            CallError::Trapped {
                actor: s(),
                detail: s(),
            },
            CallError::TooLarge {
                what: s(),
                size: 2,
                limit: 1,
            },
            CallError::LimitReached {
                actor: s(),
                limit: "l",
                detail: s(),
            },
            CallError::Quota(s()),
            CallError::Forbidden(s()),
            CallError::BadRequest(s()),
            CallError::Storage {
                detail: s(),
                disk_full: true,
            },
            CallError::Storage {
                detail: s(),
                disk_full: false,
            },
            CallError::Unavailable(s()),
            CallError::Internal(s()),
        ];
        // A new variant breaks this match: add it to `all` (and its kind to KINDS).
        for e in &all {
            match e {
                CallError::ModuleNotFound(_)
                | CallError::NotFound(_)
                | CallError::Rejected(_)
                | CallError::Timeout { .. }
                | CallError::Overloaded(_)
                | CallError::Cycle(_)
                | CallError::Unsupported(_)
                | CallError::DeadlineExceeded { .. }
                | CallError::OutOfMemory { .. }
                | CallError::Trapped { .. }
                | CallError::TooLarge { .. }
                | CallError::LimitReached { .. }
                | CallError::Quota(_)
                | CallError::Forbidden(_)
                | CallError::BadRequest(_)
                | CallError::Storage { .. }
                | CallError::Unavailable(_)
                | CallError::Internal(_) => {}
            }
        }
        let mut seen: Vec<&str> = all.iter().map(CallError::kind).collect();
        for k in &seen {
            assert!(CallError::KINDS.contains(k), "{k} is missing from KINDS");
        }
        seen.sort_unstable();
        seen.dedup();
        let mut listed = CallError::KINDS.to_vec();
        listed.sort_unstable();
        assert_eq!(seen, listed);
    }
}
