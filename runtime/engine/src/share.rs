//! [`CpuShare`]: the permits a guest call must hold once it has run longer than
//! one epoch tick. Each module (and each tenant with a CPU quota) has a fixed
//! number of them, so however many of a module's actors loop at once, at most
//! that many hold a worker thread; the others wait in a fair queue, off the CPU
//! and outside their deadline. Short calls — nearly all of them — never touch
//! the gates. A guest waiting in a host import (`call`, `publish`) gives its
//! permits back, so actors of one module calling each other never deadlock on
//! their own share.

use super::clock::GuestClock;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The gates an actor passes to keep running guest code, widest first, and
/// the permits it holds now.
pub struct CpuShare {
    gates: Arc<[Arc<Semaphore>]>,
    held: Arc<Mutex<Vec<OwnedSemaphorePermit>>>,
}

impl CpuShare {
    /// An actor's share: one permit from each gate, taken in this order (the
    /// same for every actor, so two actors never wait on each other's gates).
    pub fn new(gates: Vec<Arc<Semaphore>>) -> CpuShare {
        CpuShare {
            gates: gates.into(),
            held: Arc::default(),
        }
    }

    /// Whether the permits are held (or there is nothing to hold).
    pub fn held(&self) -> bool {
        self.gates.is_empty() || !self.lock().is_empty()
    }

    /// A future that waits for a permit from every gate and keeps them for
    /// this actor; the wait counts as host time on `clock`, not guest time.
    pub fn acquire(&self, clock: Arc<GuestClock>) -> impl Future<Output = ()> + Send + 'static {
        let (gates, held) = (self.gates.clone(), self.held.clone());
        async move {
            clock.host_wait_begin();
            let mut permits = Vec::with_capacity(gates.len());
            for gate in gates.iter() {
                // The gates are never closed: acquiring cannot fail.
                if let Ok(p) = gate.clone().acquire_owned().await {
                    permits.push(p);
                }
            }
            *held.lock().expect("share poisoned") = permits;
            clock.host_wait_end();
        }
    }

    /// Gives the permits back (the call ended, or waits in the host).
    pub fn release(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<OwnedSemaphorePermit>> {
        self.held.lock().expect("share poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_gate_admits_only_its_permits_and_release_lets_the_next_in() {
        let gate = Arc::new(Semaphore::new(1));
        let clock = Arc::new(GuestClock::new());
        let a = CpuShare::new(vec![gate.clone()]);
        let b = CpuShare::new(vec![gate.clone()]);
        a.acquire(clock.clone()).await;
        assert!(a.held());
        let blocked =
            tokio::time::timeout(Duration::from_millis(20), b.acquire(clock.clone())).await;
        assert!(
            blocked.is_err(),
            "a second actor got in past a 1-permit gate"
        );
        a.release();
        assert!(!a.held());
        tokio::time::timeout(Duration::from_millis(200), b.acquire(clock.clone()))
            .await
            .expect("the released permit goes to the waiting actor");
        assert_eq!(gate.available_permits(), 0);
        b.release();
        assert_eq!(gate.available_permits(), 1);
        assert!(
            CpuShare::new(Vec::new()).held(),
            "no gates: nothing to wait for"
        );
    }

    #[tokio::test]
    async fn waiting_for_a_permit_is_not_guest_time() {
        let gate = Arc::new(Semaphore::new(0));
        let clock = Arc::new(GuestClock::new());
        clock.begin(Duration::from_millis(30));
        let share = CpuShare::new(vec![gate.clone()]);
        let waiting = tokio::spawn(share.acquire(clock.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !clock.check_expired(),
            "queueing for the share used guest time"
        );
        gate.add_permits(1);
        waiting.await.expect("acquired");
        assert!(share.held());
    }
}
