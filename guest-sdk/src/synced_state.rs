//! A room's synced state built entity by entity into one buffer, for
//! [`host::set_synced_state_packed`](crate::host::set_synced_state_packed):
//! the cheap way for a room that publishes every tick. Keep one in the
//! actor and [`clear`](SyncedState::clear) it each tick, and publishing
//! allocates nothing.

/// Entities packed as the host takes them (see the WIT's
/// `set-synced-state-packed`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncedState {
    pub(crate) ids: Vec<u64>,
    pub(crate) ends: Vec<u32>,
    pub(crate) bytes: Vec<u8>,
}

impl SyncedState {
    /// Empty, with room for `entities` of `bytes` in all.
    pub fn with_capacity(entities: usize, bytes: usize) -> SyncedState {
        SyncedState {
            ids: Vec::with_capacity(entities),
            ends: Vec::with_capacity(entities),
            bytes: Vec::with_capacity(bytes),
        }
    }

    /// Forgets the entities, keeping the buffers.
    pub fn clear(&mut self) {
        self.ids.clear();
        self.ends.clear();
        self.bytes.clear();
    }

    /// Adds an entity. Adding them in ascending id order spares the host a
    /// sort; a repeated id replaces the earlier one.
    pub fn push(&mut self, id: u64, state: &[u8]) {
        self.push_with(id, |bytes| bytes.extend_from_slice(state));
    }

    /// Adds an entity whose state `write` appends to the buffer (no
    /// temporary `Vec` per entity).
    pub fn push_with(&mut self, id: u64, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.bytes);
        self.ids.push(id);
        self.ends.push(self.bytes.len() as u32);
    }

    /// How many entities were added.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// None was added.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_are_cut_where_each_ends() {
        let mut s = SyncedState::with_capacity(3, 8);
        s.push(1, b"ab");
        s.push_with(2, |b| b.extend_from_slice(&7i16.to_le_bytes()));
        s.push(9, b"");
        assert_eq!(s.ids, vec![1, 2, 9]);
        assert_eq!(s.ends, vec![2, 4, 4]);
        assert_eq!(s.bytes, vec![b'a', b'b', 7, 0]);
        assert_eq!(s.len(), 3);
        s.clear();
        assert!(s.is_empty() && s.bytes.is_empty() && s.bytes.capacity() >= 4);
    }
}
