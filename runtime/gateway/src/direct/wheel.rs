//! The direct endpoint's timers: a wheel of 1 ms slots. Every state a
//! connection sends moves its QUIC deadline (loss detection, then the ACK
//! delay, then idle), so a connection's timer is set and passed over tens
//! of times a second; a binary heap of a few thousand entries paid a
//! logarithmic, cache-missing pop for each (2.5% of a loaded node). Here a
//! timer costs a push onto its slot's list and is taken with the slot.
//! Entries are never removed: the caller checks, when one fires, whether it
//! is still the connection's deadline. A deadline fires in the first pass at
//! or after it, at most a slot late.

use std::time::{Duration, Instant};

/// Slots in the wheel: deadlines further out than this wait in a list and
/// enter the wheel as it turns.
const SLOTS: u64 = 4096;
const SLOT: Duration = Duration::from_millis(1);

pub(super) struct Wheel<T> {
    origin: Instant,
    /// Slots before this one have been taken.
    cursor: u64,
    slots: Vec<Vec<(Instant, T)>>,
    /// Deadlines beyond the wheel, and the earliest slot among them.
    later: Vec<(Instant, T)>,
    later_first: u64,
    /// Entries in the slots (not counting `later`).
    len: usize,
}

impl<T: Copy> Wheel<T> {
    pub(super) fn new(origin: Instant) -> Wheel<T> {
        Wheel {
            origin,
            cursor: 0,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            later: Vec::new(),
            later_first: u64::MAX,
            len: 0,
        }
    }

    /// The slot a deadline fires in: the first that starts at or after it.
    fn slot_of(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.origin);
        d.as_nanos().div_ceil(SLOT.as_nanos()) as u64
    }

    fn start_of(&self, slot: u64) -> Instant {
        self.origin + SLOT * slot as u32
    }

    pub(super) fn insert(&mut self, at: Instant, value: T) {
        let slot = self.slot_of(at).max(self.cursor);
        if slot >= self.cursor + SLOTS {
            self.later.push((at, value));
            self.later_first = self.later_first.min(slot);
        } else {
            self.slots[(slot % SLOTS) as usize].push((at, value));
            self.len += 1;
        }
    }

    /// Moves every entry due at `now` into `due`.
    pub(super) fn expire(&mut self, now: Instant, due: &mut Vec<(Instant, T)>) {
        let now_slot = now.saturating_duration_since(self.origin).as_nanos() / SLOT.as_nanos();
        let now_slot = now_slot as u64;
        while self.cursor <= now_slot {
            if self.len == 0 && self.later_first > now_slot {
                // Nothing can be due before now: skip the empty slots.
                self.cursor = now_slot + 1;
                break;
            }
            let slot = &mut self.slots[(self.cursor % SLOTS) as usize];
            self.len -= slot.len();
            due.append(slot);
            self.cursor += 1;
            if self.later_first < self.cursor + SLOTS {
                self.admit_later();
            }
        }
        if self.later_first < self.cursor + SLOTS {
            self.admit_later();
        }
    }

    /// Deadlines that the turning wheel now reaches leave the list.
    fn admit_later(&mut self) {
        let later = std::mem::take(&mut self.later);
        self.later_first = u64::MAX;
        for (at, value) in later {
            self.insert(at, value);
        }
    }

    /// When the earliest slot holding an entry starts (the driver sleeps
    /// until then).
    pub(super) fn next(&self) -> Option<Instant> {
        if self.len > 0 {
            for slot in self.cursor..self.cursor + SLOTS {
                if !self.slots[(slot % SLOTS) as usize].is_empty() {
                    return Some(self.start_of(slot));
                }
            }
        }
        (self.later_first != u64::MAX).then(|| self.start_of(self.later_first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn deadlines_fire_in_order_never_early_and_at_most_a_slot_late() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let at = |us: u64| t0 + Duration::from_micros(us);
        for (us, v) in [(25_300, 3), (1_000, 1), (1_500, 2), (9_000_000, 4)] {
            w.insert(at(us), v);
        }
        assert_eq!(w.next(), Some(t0 + ms(1)));
        let mut due = Vec::new();
        w.expire(t0 + Duration::from_micros(999), &mut due);
        assert!(due.is_empty(), "nothing fires before its deadline");
        // 1.2 ms: the 1 ms deadline is due, the 1.5 ms one is not.
        w.expire(t0 + Duration::from_micros(1_200), &mut due);
        assert_eq!(due.iter().map(|e| e.1).collect::<Vec<_>>(), vec![1]);
        w.expire(t0 + ms(2), &mut due);
        assert_eq!(due.iter().map(|e| e.1).collect::<Vec<_>>(), vec![1, 2]);
        assert!(due.iter().all(|(t, _)| *t <= t0 + ms(2)));
        due.clear();
        assert_eq!(w.next(), Some(t0 + ms(26)));
        w.expire(t0 + ms(26), &mut due);
        assert_eq!(due, vec![(at(25_300), 3)]);
        due.clear();
        // Beyond the wheel: waits in the list, fires on time after turns.
        assert_eq!(w.next(), Some(t0 + ms(9_000)));
        w.expire(t0 + ms(8_999), &mut due);
        assert!(due.is_empty());
        w.expire(t0 + ms(9_000), &mut due);
        assert_eq!(due, vec![(at(9_000_000), 4)]);
        assert_eq!(w.next(), None);
    }

    #[test]
    fn a_deadline_already_past_fires_at_the_next_expiry() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut due = Vec::new();
        w.expire(t0 + ms(100), &mut due);
        w.insert(t0 + ms(50), 7);
        assert_eq!(w.next(), Some(t0 + ms(101)));
        w.expire(t0 + ms(101), &mut due);
        assert_eq!(due, vec![(t0 + ms(50), 7)]);
    }

    #[test]
    fn many_turns_keep_every_entry() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut due = Vec::new();
        let mut expected = 0;
        // Deadlines spread over three turns of the wheel, expired in steps.
        for i in 0..3 * SLOTS {
            w.insert(t0 + ms(i * 3), i);
        }
        let mut now = t0;
        while now < t0 + ms(9 * SLOTS + 10) {
            now += ms(7);
            w.expire(now, &mut due);
            for (t, v) in due.drain(..) {
                assert!(t <= now);
                assert_eq!(v, expected);
                expected += 1;
            }
        }
        assert_eq!(expected, 3 * SLOTS);
        assert_eq!(w.next(), None);
    }
}
