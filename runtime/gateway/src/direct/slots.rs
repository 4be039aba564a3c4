//! Connections by their `quinn-proto` handle. The endpoint hands out handles
//! as indices of its own slab (dense, reused once a connection is drained),
//! so a vector indexed by handle finds a connection without hashing, on a
//! path taken several times per packet.

use quinn_proto::ConnectionHandle;

pub(super) struct Slots<T> {
    slots: Vec<Option<T>>,
    len: usize,
}

impl<T> Slots<T> {
    pub(super) fn new() -> Self {
        Slots {
            slots: Vec::new(),
            len: 0,
        }
    }

    pub(super) fn get_mut(&mut self, ch: ConnectionHandle) -> Option<&mut T> {
        self.slots.get_mut(ch.0).and_then(Option::as_mut)
    }

    /// Puts `value` at `ch`, returning what was there.
    pub(super) fn insert(&mut self, ch: ConnectionHandle, value: T) -> Option<T> {
        if self.slots.len() <= ch.0 {
            self.slots.resize_with(ch.0 + 1, || None);
        }
        let old = self.slots[ch.0].replace(value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(super) fn remove(&mut self, ch: ConnectionHandle) -> Option<T> {
        let old = self.slots.get_mut(ch.0).and_then(Option::take);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn handles(&self) -> Vec<ConnectionHandle> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| ConnectionHandle(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_find_insert_and_forget_by_handle() {
        let mut s = Slots::new();
        assert!(s.is_empty());
        assert!(s.insert(ConnectionHandle(3), "c").is_none());
        assert!(s.insert(ConnectionHandle(0), "a").is_none());
        assert_eq!(s.get_mut(ConnectionHandle(3)), Some(&mut "c"));
        assert_eq!(s.get_mut(ConnectionHandle(1)), None);
        assert_eq!(s.get_mut(ConnectionHandle(9)), None);
        assert_eq!(s.handles(), vec![ConnectionHandle(0), ConnectionHandle(3)]);
        // A reused handle replaces what was there; the count stays right.
        assert_eq!(s.insert(ConnectionHandle(3), "d"), Some("c"));
        assert_eq!(s.remove(ConnectionHandle(0)), Some("a"));
        assert_eq!(s.remove(ConnectionHandle(0)), None);
        assert!(!s.is_empty());
        assert_eq!(s.remove(ConnectionHandle(3)), Some("d"));
        assert!(s.is_empty());
        assert!(s.handles().is_empty());
    }
}
