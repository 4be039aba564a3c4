//! Inbound admission per actor, checked before a message enters a mailbox:
//!
//! - an adaptive **rate limit**: a token bucket whose refill rate falls as the
//!   mailbox fills, so a flooded actor sheds load before its mailbox is full;
//! - a **circuit breaker**: after N consecutive faults (traps, deadlines,
//!   out-of-memory, failed activations) the actor refuses messages for a backoff,
//!   then lets one probe through; its success closes the circuit, its failure
//!   reopens it with the backoff doubled.
//!
//! A refusal is immediate: senders get `overloaded`, never a wait.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits of admission, from `[actors]` in the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionSettings {
    /// Messages per second an actor with an empty mailbox accepts.
    pub rate_limit_per_sec: f64,
    /// Burst above the rate.
    pub rate_limit_burst: f64,
    /// Consecutive faults that open an actor's circuit.
    pub breaker_failures: u32,
    /// First open period; doubles while probes keep failing.
    pub breaker_backoff_ms: u64,
    /// Longest open period of the breaker.
    pub breaker_backoff_max_ms: u64,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        AdmissionSettings {
            // High enough never to cap a healthy actor (a Rust actor handles a
            // few hundred thousand small messages a second); it bites as the
            // mailbox fills.
            rate_limit_per_sec: 500_000.0,
            rate_limit_burst: 50_000.0,
            breaker_failures: 5,
            breaker_backoff_ms: 1_000,
            breaker_backoff_max_ms: 30_000,
        }
    }
}

/// Why a message was not admitted.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Over the actor's adaptive rate limit.
    RateLimited {
        /// The rate it is limited to, per second.
        rate: f64,
    },
    /// The actor's circuit breaker is open.
    CircuitOpen {
        /// Consecutive failures that opened it.
        failures: u32,
        /// When the next probe is let through.
        retry_in: Duration,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::RateLimited { rate } => write!(
                f,
                "rate limited (accepting {rate:.0} messages/s at this backlog)"
            ),
            Refusal::CircuitOpen { failures, retry_in } => write!(
                f,
                "circuit open after {failures} consecutive failures; next probe in {} ms",
                retry_in.as_millis()
            ),
        }
    }
}

struct State {
    tokens: f64,
    refilled: Instant,
    failures: u32,
    open_until: Option<Instant>,
    backoff: Duration,
    probe_since: Option<Instant>,
}

/// One actor's admission state.
pub struct Admission {
    settings: AdmissionSettings,
    state: Mutex<State>,
}

/// A half-open probe that never reports back (dropped message) stops blocking
/// after this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

impl Admission {
    /// A closed breaker and a full bucket.
    pub fn new(settings: AdmissionSettings) -> Admission {
        let backoff = Duration::from_millis(settings.breaker_backoff_ms);
        Admission {
            state: Mutex::new(State {
                tokens: settings.rate_limit_burst,
                refilled: Instant::now(),
                failures: 0,
                open_until: None,
                backoff,
                probe_since: None,
            }),
            settings,
        }
    }

    /// Whether one more message may enter a mailbox holding `depth` of
    /// `capacity`.
    pub fn admit(&self, depth: usize, capacity: usize) -> Result<(), Refusal> {
        self.admit_at(Instant::now(), depth, capacity)
    }

    fn admit_at(&self, now: Instant, depth: usize, capacity: usize) -> Result<(), Refusal> {
        let mut st = self.state.lock().expect("admission poisoned");
        if let Some(until) = st.open_until {
            if now < until {
                return Err(Refusal::CircuitOpen {
                    failures: st.failures,
                    retry_in: until - now,
                });
            }
            if st
                .probe_since
                .is_some_and(|p| now.duration_since(p) < PROBE_TIMEOUT)
            {
                return Err(Refusal::CircuitOpen {
                    failures: st.failures,
                    retry_in: Duration::ZERO,
                });
            }
            st.probe_since = Some(now);
        }
        // The rate falls with the cube of the free share: half full, an eighth
        // of the rate; 90% full, a thousandth.
        let free = 1.0 - depth as f64 / capacity.max(1) as f64;
        let rate = self.settings.rate_limit_per_sec * free.clamp(0.0, 1.0).powi(3).max(0.001);
        let elapsed = now.saturating_duration_since(st.refilled).as_secs_f64();
        st.tokens = (st.tokens + rate * elapsed).min(self.settings.rate_limit_burst);
        st.refilled = now;
        if st.tokens < 1.0 {
            if st.probe_since == Some(now) {
                st.probe_since = None;
            }
            return Err(Refusal::RateLimited { rate });
        }
        st.tokens -= 1.0;
        Ok(())
    }

    /// Reports how a handled message ended; returns true if this opened the
    /// circuit.
    pub fn record(&self, fault: bool) -> bool {
        self.record_at(Instant::now(), fault)
    }

    fn record_at(&self, now: Instant, fault: bool) -> bool {
        let mut st = self.state.lock().expect("admission poisoned");
        if !fault {
            st.failures = 0;
            st.open_until = None;
            st.probe_since = None;
            st.backoff = Duration::from_millis(self.settings.breaker_backoff_ms);
            return false;
        }
        st.failures += 1;
        let probing = st.probe_since.take().is_some();
        if probing || st.failures >= self.settings.breaker_failures {
            st.open_until = Some(now + st.backoff);
            let max = Duration::from_millis(self.settings.breaker_backoff_max_ms);
            st.backoff = (st.backoff * 2).min(max);
            return true;
        }
        false
    }

    /// Whether the circuit is open now.
    pub fn is_open(&self) -> bool {
        let st = self.state.lock().expect("admission poisoned");
        st.open_until.is_some_and(|u| Instant::now() < u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AdmissionSettings {
        AdmissionSettings {
            rate_limit_per_sec: 100.0,
            rate_limit_burst: 10.0,
            breaker_failures: 3,
            breaker_backoff_ms: 1000,
            breaker_backoff_max_ms: 4000,
        }
    }

    #[test]
    fn the_rate_falls_as_the_backlog_rises() {
        let a = Admission::new(settings());
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(a.admit_at(t0, 0, 100).is_ok());
        }
        assert!(matches!(
            a.admit_at(t0, 0, 100),
            Err(Refusal::RateLimited { .. })
        ));
        // 150 ms refill: at an empty mailbox 15 tokens (capped at 10); half full,
        // an eighth of that rate (1.9 tokens); 90% full, nothing.
        let t1 = t0 + Duration::from_millis(150);
        let mut admitted = 0;
        while a.admit_at(t1, 50, 100).is_ok() {
            admitted += 1;
        }
        assert_eq!(admitted, 1);
        let t1b = t1 + Duration::from_millis(150);
        assert!(
            a.admit_at(t1b, 90, 100).is_err(),
            "a 90% full mailbox refills almost nothing"
        );
        let t2 = t1b + Duration::from_millis(100);
        let mut admitted = 0;
        while a.admit_at(t2, 0, 100).is_ok() {
            admitted += 1;
        }
        assert_eq!(admitted, 10);
    }

    #[test]
    fn the_breaker_opens_probes_and_closes() {
        let a = Admission::new(settings());
        let t0 = Instant::now();
        assert!(!a.record_at(t0, true));
        assert!(!a.record_at(t0, true));
        assert!(a.record_at(t0, true), "third consecutive fault opens");
        assert!(matches!(
            a.admit_at(t0, 0, 100),
            Err(Refusal::CircuitOpen { .. })
        ));
        // After the backoff one probe goes through, and only one.
        let t1 = t0 + Duration::from_millis(1001);
        assert!(a.admit_at(t1, 0, 100).is_ok());
        assert!(a.admit_at(t1, 0, 100).is_err());
        // The probe fails: open again, for twice as long.
        assert!(a.record_at(t1, true));
        assert!(
            a.admit_at(t1 + Duration::from_millis(1500), 0, 100)
                .is_err()
        );
        let t2 = t1 + Duration::from_millis(2001);
        assert!(a.admit_at(t2, 0, 100).is_ok());
        // The probe succeeds: closed.
        assert!(!a.record_at(t2, false));
        assert!(a.admit_at(t2, 0, 100).is_ok());
        assert!(a.admit_at(t2, 0, 100).is_ok());
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let a = Admission::new(settings());
        let t = Instant::now();
        a.record_at(t, true);
        a.record_at(t, true);
        a.record_at(t, false);
        a.record_at(t, true);
        a.record_at(t, true);
        assert!(a.admit_at(t, 0, 100).is_ok());
    }
}
