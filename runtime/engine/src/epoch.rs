//! The engine's epoch, which interrupts guest calls: a plain thread advances
//! it every [`EPOCH_TICK`] (a tokio task could be starved by the very guest it
//! must interrupt) while any guest call is in flight. When it finds none in
//! flight it looks again [`QUIET_TICK`] later, and after [`IDLE`] with none
//! it parks, the next call to begin waking it: an idle node does not wake a
//! thousand times a second, and a busy one, whose calls follow each other
//! within that window, never pays for a wake-up on the call path.

use crate::EPOCH_TICK;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long the thread sleeps after finding no guest call in flight. A call
/// that begins meanwhile is first interrupted (to yield, or to check its
/// deadline) at most this late, then every [`EPOCH_TICK`]. Under load, where
/// calls are short and most looks find none in flight, this is what keeps
/// the thread from waking a thousand times a second: at 1,000 arena players
/// those wake-ups were ~40% of the node's context switches.
const QUIET_TICK: Duration = Duration::from_millis(4);

/// How long with no guest call in flight before the thread parks.
const IDLE: Duration = Duration::from_millis(100);

/// How often a parked thread looks whether its engine is gone.
const PARKED_CHECK: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Shared {
    /// Guest calls in flight (instantiations included).
    in_flight: AtomicUsize,
    /// The thread is parked, or about to: a call that begins must wake it.
    parked: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// The thread that advances an engine's epoch (see the module doc). It ends
/// once the engine is dropped.
#[derive(Clone)]
pub(crate) struct EpochTicker {
    shared: Arc<Shared>,
}

/// A guest call in flight: the epoch advances while it lives.
pub(crate) struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EpochTicker {
    pub(crate) fn start(engine: &wasmtime::Engine) -> EpochTicker {
        let shared = Arc::new(Shared::default());
        let weak = engine.weak();
        let ticking = shared.clone();
        std::thread::Builder::new()
            .name("anthill-epoch".into())
            .spawn(move || {
                let mut quiet_since: Option<Instant> = None;
                while let Some(engine) = weak.upgrade() {
                    if ticking.in_flight.load(Ordering::SeqCst) > 0 {
                        quiet_since = None;
                        engine.increment_epoch();
                        drop(engine);
                        std::thread::sleep(EPOCH_TICK);
                        continue;
                    }
                    drop(engine);
                    let since = *quiet_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= IDLE {
                        if !ticking.park_while_idle(|| weak.upgrade().is_some()) {
                            return;
                        }
                        quiet_since = None;
                    } else {
                        std::thread::sleep(QUIET_TICK);
                    }
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { shared }
    }

    /// Marks a guest call in flight until the guard drops, waking the thread
    /// if it parked.
    pub(crate) fn in_flight(&self) -> InFlight {
        let s = &self.shared;
        // SeqCst on both sides: either the thread sees this call before it
        // waits, or this call sees it parked and wakes it (under the lock,
        // so not before it waits).
        if s.in_flight.fetch_add(1, Ordering::SeqCst) == 0 && s.parked.load(Ordering::SeqCst) {
            let _held = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_one();
        }
        InFlight(s.clone())
    }

    /// Whether the thread is parked now (for tests).
    #[cfg(test)]
    fn is_parked(&self) -> bool {
        self.shared.parked.load(Ordering::SeqCst)
    }
}

impl Shared {
    /// Parks until a call is in flight; false if `alive` says the engine is
    /// gone.
    fn park_while_idle(&self, alive: impl Fn() -> bool) -> bool {
        let mut held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.parked.store(true, Ordering::SeqCst);
        while self.in_flight.load(Ordering::SeqCst) == 0 {
            held = self
                .wake
                .wait_timeout(held, PARKED_CHECK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if !alive() {
                return false;
            }
        }
        self.parked.store(false, Ordering::SeqCst);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> wasmtime::Engine {
        let mut cfg = wasmtime::Config::new();
        cfg.epoch_interruption(true);
        wasmtime::Engine::new(&cfg).expect("engine")
    }

    fn until(what: &str, f: impl Fn() -> bool) {
        let started = Instant::now();
        while !f() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{what}: not within 10 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `(module (func (export "spin") (loop (br 0))))`: never returns.
    const SPIN: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type () -> ()
        0x03, 0x02, 0x01, 0x00, // one function of that type
        0x07, 0x08, 0x01, 0x04, b's', b'p', b'i', b'n', 0x00, 0x00, // export "spin"
        0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0
    ];

    /// An engine with no call in flight parks its thread; a call wakes it,
    /// and the epoch advances while the call lasts: a guest spinning past
    /// its deadline is stopped.
    #[test]
    fn the_epoch_advances_only_while_a_call_is_in_flight() {
        let engine = engine();
        let ticker = EpochTicker::start(&engine);
        until("the idle thread parks", || ticker.is_parked());
        let call = ticker.in_flight();
        until("a call wakes it", || !ticker.is_parked());
        let module = wasmtime::Module::new(&engine, SPIN).expect("module");
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instance");
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .expect("spin");
        // Should the thread not tick, this one stops the spin after 10 s
        // (and the test fails) instead of hanging.
        let done = Arc::new(AtomicBool::new(false));
        let rescued = Arc::new(AtomicBool::new(false));
        let rescue = {
            let (engine, done, rescued) = (engine.clone(), done.clone(), rescued.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                while !done.load(Ordering::SeqCst) {
                    if started.elapsed() > Duration::from_secs(10) {
                        rescued.store(true, Ordering::SeqCst);
                        engine.increment_epoch();
                        engine.increment_epoch();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        store.set_epoch_deadline(2);
        let interrupted = spin.call(&mut store, ()).is_err();
        done.store(true, Ordering::SeqCst);
        rescue.join().expect("rescue thread");
        assert!(interrupted, "the spin was interrupted");
        assert!(
            !rescued.load(Ordering::SeqCst),
            "the epoch did not advance while a call was in flight"
        );
        drop(call);
        until("it parks again once the call ended", || ticker.is_parked());
    }

    /// The thread ends with its engine, parked or not.
    #[test]
    fn the_thread_ends_with_its_engine() {
        let engine = engine();
        let ticker = EpochTicker::start(&engine);
        until("the idle thread parks", || ticker.is_parked());
        let shared = Arc::downgrade(&ticker.shared);
        drop(ticker);
        drop(engine);
        until("the thread let go of its state", || {
            shared.upgrade().is_none()
        });
    }
}
