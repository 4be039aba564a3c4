//! Group commit: many writers waiting for durability share one fsync.
//!
//! Every caller of [`GroupCommit::commit`] takes a ticket after its writes.
//! Callers queue on one lock; whoever holds it flushes everything written up to
//! the newest ticket handed out when its flush started, so the callers queued
//! behind it (whose tickets are at most that) return without flushing again.
//! Under load, one fsync makes a whole batch of snapshots or events durable.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;

#[derive(Default)]
pub(crate) struct GroupCommit {
    /// Tickets handed out (each after its holder's writes).
    issued: AtomicU64,
    /// The highest ticket known durable; held while a flush runs.
    durable: Mutex<u64>,
    /// Flushes actually run (for the benchmark and metrics).
    flushes: AtomicU64,
}

impl GroupCommit {
    /// Returns once every write made before this call is durable, running
    /// `flush` only if no flush that started after those writes has covered them.
    pub(crate) async fn commit<F, Fut, E>(&self, flush: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let ticket = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut durable = self.durable.lock().await;
        if *durable >= ticket {
            return Ok(());
        }
        // Every ticket up to `upto` was taken after its writes, and the flush
        // starts after this load, so it covers them all.
        let upto = self.issued.load(Ordering::SeqCst);
        flush().await?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        *durable = upto;
        Ok(())
    }

    pub(crate) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn concurrent_commits_share_flushes_and_each_waits_for_one() {
        let commit = Arc::new(GroupCommit::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (commit, runs) = (commit.clone(), runs.clone());
                tokio::spawn(async move {
                    commit
                        .commit(|| async {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                            Ok::<_, ()>(())
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let runs = runs.load(Ordering::SeqCst);
        assert!((1..64).contains(&runs), "64 committers ran {runs} flushes");
        assert_eq!(commit.flushes(), runs as u64);
    }

    #[tokio::test]
    async fn a_commit_after_a_flush_flushes_again() {
        let commit = GroupCommit::default();
        let runs = AtomicUsize::new(0);
        for _ in 0..3 {
            commit
                .commit(|| async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, ()>(())
                })
                .await
                .unwrap();
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "sequential commits each need their own flush"
        );
    }

    #[tokio::test]
    async fn a_failed_flush_is_reported_and_not_counted_durable() {
        let commit = GroupCommit::default();
        assert_eq!(
            commit.commit(|| async { Err::<(), _>("disk full") }).await,
            Err("disk full")
        );
        let runs = AtomicUsize::new(0);
        commit
            .commit(|| async {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, &str>(())
            })
            .await
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
