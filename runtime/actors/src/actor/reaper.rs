//! Passivation under pressure: when live actors near `limits.max_actors`, the
//! least recently active keyed actors are passivated (snapshotted and dropped)
//! before the idle timeout would, so activation of new keys keeps working.

use super::Control;
use crate::Runtime;
use crate::module::Kind;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Start reclaiming above this share of the capacity…
const HIGH_WATER: f64 = 0.90;
/// …down to this share.
const LOW_WATER: f64 = 0.75;

/// Passivates idle actors early when the instance pool nears `limits.max_actors`; runs until the runtime stops.
pub async fn run(node: Arc<Runtime>) {
    let max = f64::from(node.config.limits.max_actors);
    let (high, low) = ((max * HIGH_WATER) as usize, (max * LOW_WATER) as usize);
    let mut every = tokio::time::interval(Duration::from_millis(100));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = node.capacity_wanted.notified() => {}
        }
        let modules = node.router.modules();
        let live: usize = modules.iter().map(|m| m.actors.len()).sum();
        if live <= high {
            continue;
        }
        let mut candidates: Vec<_> = modules
            .iter()
            .filter(|m| m.settings().kind == Kind::Keyed)
            .flat_map(|m| m.actors.handles())
            .map(|h| (h.status.last_active_ms.load(Ordering::Relaxed), h))
            .collect();
        candidates.sort_by_key(|(at, _)| *at);
        let excess = live - low;
        for (_, h) in candidates.into_iter().take(excess) {
            let _ = h.control.send(Control::Passivate);
        }
        tracing::info!(
            live,
            max_actors = max as u64,
            passivating = excess,
            "near actor capacity: passivating the least recently active"
        );
    }
}
