//! The stored form of an actor snapshot: the guest's bytes plus the module version
//! that wrote them and a checksum, so a damaged record is caught, not restored.

use serde::{Deserialize, Serialize};

/// An actor's state as its module exported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Module version that wrote it: passed to `restore` as `from-version`.
    pub version: u32,
    /// When it was taken (ms since the Unix epoch).
    pub taken_at_ms: u64,
    /// The guest's bytes.
    pub state: Vec<u8>,
}

/// Format tag of the envelope, bumped if the layout changes.
const FORMAT: u8 = 1;

impl Snapshot {
    /// `[FORMAT][crc32 of the rest, LE][bincode(Snapshot)]`
    pub fn encode(&self) -> Vec<u8> {
        let body = super::encode(self);
        let mut out = Vec::with_capacity(body.len() + 5);
        out.push(FORMAT);
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
        if bytes.len() < 5 {
            return Err(format!("{} bytes is too short for a snapshot", bytes.len()));
        }
        if bytes[0] != FORMAT {
            return Err(format!("unknown snapshot format {}", bytes[0]));
        }
        let want = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let body = &bytes[5..];
        let got = crc32fast::hash(body);
        if got != want {
            return Err(format!(
                "checksum mismatch (stored {want:08x}, computed {got:08x})"
            ));
        }
        super::decode(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_a_flipped_bit() {
        let s = Snapshot {
            version: 3,
            taken_at_ms: 42,
            state: b"17".to_vec(),
        };
        let mut bytes = s.encode();
        assert_eq!(Snapshot::decode(&bytes).unwrap(), s);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let err = Snapshot::decode(&bytes).unwrap_err();
        assert!(err.contains("checksum mismatch"), "{err}");
    }
}
