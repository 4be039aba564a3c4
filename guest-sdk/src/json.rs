//! Typed messages as JSON (feature `json`).

use crate::{Error, Reply};
use serde::{Serialize, de::DeserializeOwned};

/// Decodes a JSON message, refusing malformed input with a clear error.
pub fn decode<T: DeserializeOwned>(message: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(message)
        .map_err(|e| Error::rejected(format!("malformed JSON message: {e}")))
}

/// Encodes a value as JSON.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data structures to a Vec cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Replies with a value encoded as JSON.
pub fn reply<T: Serialize>(value: &T) -> Reply {
    Ok(Some(encode(value)))
}
