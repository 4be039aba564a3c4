//! Small helpers for the common shapes of messages and replies.

use crate::{ActorRef, Error};

/// What [`crate::Actor::on_message`] returns.
pub type Reply = Result<Option<Vec<u8>>, Error>;

/// Replies with these bytes.
pub fn reply(bytes: impl Into<Vec<u8>>) -> Reply {
    Ok(Some(bytes.into()))
}

/// Replies with text (UTF-8).
pub fn reply_text(text: impl Into<String>) -> Reply {
    Ok(Some(text.into().into_bytes()))
}

/// Handles the message without a reply (a `call` then receives an empty payload).
pub fn no_reply() -> Reply {
    Ok(None)
}

/// Reads a message as UTF-8 text, refusing anything else with a clear error.
pub fn text(message: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(message)
        .map_err(|e| Error::rejected(format!("expected a UTF-8 text message: {e}")))
}

impl Error {
    /// The receiver understood the message and refuses it.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Error::Rejected(reason.into())
    }

    /// Something is missing (an unknown room, an unknown player...).
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }

    /// The module failed in a way the sender cannot fix.
    pub fn internal(detail: impl Into<String>) -> Self {
        Error::Internal(detail.into())
    }
}

impl ActorRef {
    /// The address of a singleton module (`lobby`).
    pub fn singleton(module: impl Into<String>) -> Self {
        ActorRef {
            module: module.into(),
            key: String::new(),
        }
    }

    /// The address of one actor of a keyed module (`arena/room-17`).
    pub fn keyed(module: impl Into<String>, key: impl Into<String>) -> Self {
        ActorRef {
            module: module.into(),
            key: key.into(),
        }
    }
}

impl std::fmt::Display for ActorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.module)
        } else {
            write!(f, "{}/{}", self.module, self.key)
        }
    }
}
