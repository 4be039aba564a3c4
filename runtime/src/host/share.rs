//! [`CpuShare`]: the permits an actor must hold while its guest code runs. Each
//! module (and each tenant with a CPU quota) has a fixed number of them, so
//! however many of a module's actors loop at once, at most that many hold a
//! worker thread; the others wait in a fair queue, off the CPU and outside
//! their deadline. A guest waiting in a host import (`call`, `publish`) gives
//! its permits back, so actors of one module calling each other never
//! deadlock on their own share.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The gates an actor passes to run guest code, narrowest last, and the
/// permits it holds now.
pub struct CpuShare {
    gates: Vec<Arc<Semaphore>>,
    held: Vec<OwnedSemaphorePermit>,
}

impl CpuShare {
    /// An actor's share: one permit from each gate (taken in this order, the
    /// same for every actor, so two actors never wait on each other's gates).
    pub fn new(gates: Vec<Arc<Semaphore>>) -> CpuShare {
        CpuShare {
            held: Vec::with_capacity(gates.len()),
            gates,
        }
    }

    /// Waits for a permit from every gate (a no-op when already held).
    pub async fn acquire(&mut self) {
        if !self.held.is_empty() {
            return;
        }
        for gate in &self.gates {
            // The gates are never closed: acquiring cannot fail.
            if let Ok(p) = gate.clone().acquire_owned().await {
                self.held.push(p);
            }
        }
    }

    /// Gives the permits back (the guest stopped running or is waiting).
    pub fn release(&mut self) {
        self.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gate_admits_only_its_permits_and_release_lets_the_next_in() {
        let gate = Arc::new(Semaphore::new(1));
        let mut a = CpuShare::new(vec![gate.clone()]);
        let mut b = CpuShare::new(vec![gate.clone()]);
        a.acquire().await;
        let blocked = tokio::time::timeout(std::time::Duration::from_millis(20), b.acquire()).await;
        assert!(
            blocked.is_err(),
            "a second actor got in past a 1-permit gate"
        );
        a.release();
        tokio::time::timeout(std::time::Duration::from_millis(200), b.acquire())
            .await
            .expect("the released permit goes to the waiting actor");
        assert_eq!(gate.available_permits(), 0);
        b.release();
        assert_eq!(gate.available_permits(), 1);
    }
}
