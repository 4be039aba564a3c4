//! A room's synced state as a guest set it, on its way from the engine to
//! whoever sends it to players (the gateway, or a cluster's room node):
//! packed into one buffer, so that a room publishing every tick costs three
//! allocations, not one per entity.

use thiserror::Error;

/// One entity of a room's synced state, unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// Stable within the room.
    pub id: u64,
    /// The module's encoding; the host diffs it byte for byte.
    pub state: Vec<u8>,
}

/// A room's entities, packed: entity `i` has the id `ids[i]` and the bytes
/// `bytes[ends[i - 1]..ends[i]]` (from 0 for the first). In the order the
/// guest gave them; ids may repeat (the later one wins, as the sync applies
/// them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncedState {
    ids: Vec<u64>,
    ends: Vec<u32>,
    bytes: Vec<u8>,
}

/// A packed state whose parts do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SyncedStateError {
    /// Not one end per id.
    #[error("{ids} ids but {ends} ends: a packed synced state needs one end per entity")]
    Counts {
        /// Ids given.
        ids: usize,
        /// Ends given.
        ends: usize,
    },
    /// An end before the one of the entity before it.
    #[error(
        "entity {index} ends at byte {end}, before entity {previous_index} (at {previous}): ends must not decrease"
    )]
    Decreasing {
        /// The entity whose end is out of order.
        index: usize,
        /// Its end.
        end: u32,
        /// The entity before it.
        previous_index: usize,
        /// That entity's end.
        previous: u32,
    },
    /// The last end is not the length of the bytes.
    #[error(
        "the last entity ends at byte {end} but the states are {len} bytes: the last end must be their length"
    )]
    Length {
        /// The last end (0 with no entity).
        end: u64,
        /// The length of the bytes.
        len: usize,
    },
}

impl SyncedState {
    /// Checks that `ends` cut `bytes` into one state per id.
    pub fn from_parts(
        ids: Vec<u64>,
        ends: Vec<u32>,
        bytes: Vec<u8>,
    ) -> Result<SyncedState, SyncedStateError> {
        if ids.len() != ends.len() {
            return Err(SyncedStateError::Counts {
                ids: ids.len(),
                ends: ends.len(),
            });
        }
        if let Some(i) = ends.windows(2).position(|w| w[1] < w[0]) {
            return Err(SyncedStateError::Decreasing {
                index: i + 1,
                end: ends[i + 1],
                previous_index: i,
                previous: ends[i],
            });
        }
        let end = ends.last().map_or(0, |&e| u64::from(e));
        if end != bytes.len() as u64 {
            return Err(SyncedStateError::Length {
                end,
                len: bytes.len(),
            });
        }
        Ok(SyncedState { ids, ends, bytes })
    }

    /// Packs `entities`, in their order.
    pub fn from_entities(entities: Vec<Entity>) -> SyncedState {
        let mut packed = SyncedState {
            ids: Vec::with_capacity(entities.len()),
            ends: Vec::with_capacity(entities.len()),
            bytes: Vec::with_capacity(entities.iter().map(|e| e.state.len()).sum()),
        };
        for e in entities {
            packed.push(e.id, &e.state);
        }
        packed
    }

    /// Appends an entity.
    ///
    /// # Panics
    ///
    /// If the states outgrow 4 GiB (a guest's size limit is far below).
    pub fn push(&mut self, id: u64, state: &[u8]) {
        self.bytes.extend_from_slice(state);
        self.ids.push(id);
        self.ends
            .push(u32::try_from(self.bytes.len()).expect("synced state under 4 GiB"));
    }

    /// How many entities (repeated ids counted).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// No entity.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The bytes of every state together.
    pub fn state_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Each entity's id and state, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u64, &[u8])> + '_ {
        self.ids.iter().enumerate().map(|(i, &id)| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
            (id, &self.bytes[start..self.ends[i] as usize])
        })
    }

    /// The ids, the ends and the bytes (see the type's doc).
    pub fn into_parts(self) -> (Vec<u64>, Vec<u32>, Vec<u8>) {
        (self.ids, self.ends, self.bytes)
    }
}

impl FromIterator<Entity> for SyncedState {
    fn from_iter<I: IntoIterator<Item = Entity>>(entities: I) -> SyncedState {
        SyncedState::from_entities(entities.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_that_fit_give_the_entities_back_in_order() {
        let s = SyncedState::from_parts(vec![7, 3, 7], vec![2, 2, 5], b"abcde".to_vec()).unwrap();
        let got: Vec<(u64, &[u8])> = s.iter().collect();
        assert_eq!(got, vec![(7, &b"ab"[..]), (3, &b""[..]), (7, &b"cde"[..])]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.state_bytes(), 5);
        let e = SyncedState::from_entities(vec![
            Entity {
                id: 7,
                state: b"ab".to_vec(),
            },
            Entity {
                id: 3,
                state: vec![],
            },
            Entity {
                id: 7,
                state: b"cde".to_vec(),
            },
        ]);
        assert_eq!(e, s);
        assert!(
            SyncedState::from_parts(vec![], vec![], vec![])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn parts_that_do_not_fit_are_refused_naming_the_cause() {
        let counts = SyncedState::from_parts(vec![1, 2], vec![1], b"a".to_vec()).unwrap_err();
        assert_eq!(counts, SyncedStateError::Counts { ids: 2, ends: 1 });
        assert!(
            counts.to_string().contains("one end per entity"),
            "{counts}"
        );

        let down =
            SyncedState::from_parts(vec![1, 2, 3], vec![2, 1, 3], b"abc".to_vec()).unwrap_err();
        assert_eq!(
            down,
            SyncedStateError::Decreasing {
                index: 1,
                end: 1,
                previous_index: 0,
                previous: 2
            }
        );
        assert!(down.to_string().contains("must not decrease"), "{down}");

        let short = SyncedState::from_parts(vec![1], vec![2], b"abc".to_vec()).unwrap_err();
        assert_eq!(short, SyncedStateError::Length { end: 2, len: 3 });
        let long = SyncedState::from_parts(vec![1], vec![9], b"abc".to_vec()).unwrap_err();
        assert!(long.to_string().contains("must be their length"), "{long}");
        let none = SyncedState::from_parts(vec![], vec![], b"x".to_vec()).unwrap_err();
        assert_eq!(none, SyncedStateError::Length { end: 0, len: 1 });
    }
}
