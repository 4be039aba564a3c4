//! Gauges read from the live node when `/metrics` is scraped rather than kept
//! up to date on the hot path: mailbox depths, event backlogs, dead letters and
//! the store's size. Each family is rebuilt from scratch, so a module that is
//! gone has no series.

use crate::Runtime;
use std::collections::BTreeMap;

/// A backlog is counted up to this many events per subscription: a scrape
/// must stay cheap however far behind a subscriber is.
const BACKLOG_CAP: usize = 10_000;

/// Sets the scrape-time gauges (and the tenants' gauges) from the node as it is now.
pub(crate) fn publish(node: &Runtime) {
    node.tenants.publish_gauges();
    let m = &node.metrics;

    m.mailbox_depth.reset();
    for module in node.router.modules() {
        let depth: usize = module
            .actors
            .handles()
            .iter()
            .map(|h| h.info().mailbox_depth)
            .sum();
        m.mailbox_depth
            .with_label_values(&[module.name.as_str()])
            .set(depth as i64);
    }

    let mut backlog: BTreeMap<String, usize> = BTreeMap::new();
    for (topic, address, at_least_once) in node.events.subscriptions() {
        if !at_least_once {
            continue;
        }
        let waiting = match node.store.cursor(&topic, &address.module, &address.key) {
            Ok(Some(c)) => node.store.backlog(&topic, c.next, BACKLOG_CAP).unwrap_or(0),
            _ => 0,
        };
        *backlog.entry(address.module).or_default() += waiting;
    }
    m.event_backlog.reset();
    for module in node.router.modules() {
        let n = backlog.get(module.name.as_str()).copied().unwrap_or(0);
        m.event_backlog
            .with_label_values(&[module.name.as_str()])
            .set(n as i64);
    }

    m.dead_letters.reset();
    let mut dead: BTreeMap<String, i64> = BTreeMap::new();
    match node.store.dead_letters() {
        Ok(letters) => {
            for d in letters {
                *dead.entry(d.module).or_default() += 1;
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot count the dead letters for /metrics"),
    }
    // Every deployed module has a series (0 included), so a dashboard can
    // tell "none" from "not reported"; letters of an undeployed module are
    // still listed by the API but have no module to be shown under.
    for module in node.router.modules() {
        let n = dead.get(module.name.as_str()).copied().unwrap_or(0);
        m.dead_letters
            .with_label_values(&[module.name.as_str()])
            .set(n);
    }

    m.store_bytes.set(node.store.disk_bytes() as i64);
}
