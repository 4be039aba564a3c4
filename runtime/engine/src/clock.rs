//! Guest time of the call in progress: wall time since the call began minus the
//! time spent waiting in host imports (a guest waiting on another actor's reply
//! is not burning its own deadline). Shared, lock-free, between the store (the
//! epoch callback) and the actor task's watchdog.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Guest time of one actor's call in progress.
pub struct GuestClock {
    base: Instant,
    /// Nanoseconds since `base` when the current call began; 0 when idle.
    started: AtomicU64,
    /// Host-wait nanoseconds of the current call.
    paused: AtomicU64,
    /// When the current host wait began; 0 when not waiting.
    waiting_since: AtomicU64,
    deadline: AtomicU64,
    tripped: AtomicBool,
}

impl GuestClock {
    /// An idle clock.
    pub fn new() -> GuestClock {
        GuestClock {
            base: Instant::now(),
            started: AtomicU64::new(0),
            paused: AtomicU64::new(0),
            waiting_since: AtomicU64::new(0),
            deadline: AtomicU64::new(u64::MAX),
            tripped: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        // +1 so that 0 can mean "unset".
        self.base.elapsed().as_nanos() as u64 + 1
    }

    /// A guest call begins with this deadline.
    pub fn begin(&self, deadline: Duration) {
        self.paused.store(0, Ordering::Relaxed);
        self.waiting_since.store(0, Ordering::Relaxed);
        self.tripped.store(false, Ordering::Relaxed);
        self.deadline
            .store(deadline.as_nanos() as u64, Ordering::Relaxed);
        self.started.store(self.now(), Ordering::Release);
    }

    /// The guest call ended.
    pub fn end(&self) {
        self.started.store(0, Ordering::Release);
    }

    /// The guest entered a host import that may wait (e.g. `call`).
    pub fn host_wait_begin(&self) {
        self.waiting_since.store(self.now(), Ordering::Release);
    }

    /// The host import returned to the guest.
    pub fn host_wait_end(&self) {
        let since = self.waiting_since.swap(0, Ordering::AcqRel);
        if since != 0 {
            self.paused
                .fetch_add(self.now().saturating_sub(since), Ordering::AcqRel);
        }
    }

    /// Guest time used by the current call so far.
    pub fn used(&self) -> Duration {
        let started = self.started.load(Ordering::Acquire);
        if started == 0 {
            return Duration::ZERO;
        }
        let now = self.now();
        let mut paused = self.paused.load(Ordering::Acquire);
        let since = self.waiting_since.load(Ordering::Acquire);
        if since != 0 {
            paused += now.saturating_sub(since);
        }
        Duration::from_nanos(now.saturating_sub(started).saturating_sub(paused))
    }

    /// Time left before the deadline (zero when past it).
    pub fn remaining(&self) -> Duration {
        let deadline = Duration::from_nanos(self.deadline.load(Ordering::Relaxed));
        deadline.saturating_sub(self.used())
    }

    /// True (and remembered) once the current call has used up its deadline.
    pub fn check_expired(&self) -> bool {
        if self.started.load(Ordering::Acquire) != 0 && self.remaining().is_zero() {
            self.tripped.store(true, Ordering::Release);
        }
        self.tripped.load(Ordering::Acquire)
    }

    /// Whether the last call was stopped by its deadline.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Acquire)
    }

    /// Whether the guest is inside a host import right now.
    pub fn in_host_wait(&self) -> bool {
        self.waiting_since.load(Ordering::Acquire) != 0
    }
}

impl Default for GuestClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_waits_do_not_count_against_the_deadline() {
        let c = GuestClock::new();
        c.begin(Duration::from_millis(30));
        c.host_wait_begin();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!c.check_expired(), "waiting in the host must not expire");
        c.host_wait_end();
        assert!(c.used() < Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.check_expired());
        c.end();
        assert!(c.tripped());
    }
}
