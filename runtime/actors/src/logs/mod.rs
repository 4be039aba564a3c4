//! [`ModuleLogs`]: what guests print. Every line an actor writes to stdout or
//! stderr, or through `host.log`, arrives here: it is rate-limited per module
//! (a flood is dropped and counted, never queued), written to the node's log
//! with module, key and version, and kept in the module's ring buffer, which
//! the admin API serves to `anthill logs` (and follows, by waiting for the
//! next sequence number).

use anthill_core::metrics::{counter_vec, gauge};
use anthill_engine::{GuestLine, OutputStream};
use governor::{DefaultDirectRateLimiter, Quota};
use prometheus::{IntCounterVec, IntGauge, Registry};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

/// The `[logs]` section: how much guest output is kept and let through.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Lines kept per module for `anthill logs`.
    pub ring_lines: usize,
    /// Lines per second one module may write (all its actors together).
    pub lines_per_second: u32,
    /// Lines a module may write at once above that rate.
    pub burst: u32,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            ring_lines: 1000,
            lines_per_second: 100,
            burst: 200,
        }
    }
}

impl LogSettings {
    /// Checks the fields, naming the key to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.ring_lines == 0 {
            return Err("logs.ring_lines must be > 0".into());
        }
        if self.lines_per_second == 0 || self.burst == 0 {
            return Err("logs.lines_per_second and logs.burst must be > 0".into());
        }
        Ok(())
    }
}

/// One kept line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogLine {
    /// Position in the node's sequence of kept lines (for following).
    pub seq: u64,
    /// When it was written, ms since the epoch.
    pub ts_ms: u64,
    /// The module.
    pub module: String,
    /// The actor's key (`""` for a singleton).
    pub key: String,
    /// The module version the actor ran.
    pub version: u32,
    /// `stdout`, `stderr`, a log level (`info`, …) or `dropped`.
    pub stream: String,
    /// The line.
    pub text: String,
}

/// Which lines a reader wants.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LogQuery {
    /// Only this module's lines.
    pub module: Option<String>,
    /// Only this key's lines (with `module`).
    pub key: Option<String>,
    /// Only lines written at or after this time, ms since the epoch.
    pub since_ms: Option<u64>,
    /// Only lines after this sequence number (what the last page ended at).
    pub after: Option<u64>,
    /// At most this many lines, the newest (default and cap 1000).
    pub limit: Option<usize>,
}

/// An answer to a [`LogQuery`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogPage {
    /// The lines, oldest first.
    pub lines: Vec<LogLine>,
    /// The sequence number to pass as `after` to get only newer lines.
    pub next: u64,
}

/// Lines of one page at most.
const MAX_PAGE: usize = 1000;

struct ModuleLog {
    lines: VecDeque<LogLine>,
    limiter: DefaultDirectRateLimiter,
    /// Lines dropped since the last kept one: reported in a marker line.
    dropped: u64,
}

/// Every module's kept output.
pub struct ModuleLogs {
    settings: LogSettings,
    modules: Mutex<HashMap<String, ModuleLog>>,
    /// The last sequence number given out; followers wait on it.
    last: tokio::sync::watch::Sender<u64>,
    lines_total: IntCounterVec,
    dropped_total: IntCounterVec,
    kept: IntGauge,
}

impl ModuleLogs {
    /// Empty rings, reporting to `registry`.
    pub fn new(settings: LogSettings, registry: &Registry) -> ModuleLogs {
        ModuleLogs {
            settings,
            modules: Mutex::new(HashMap::new()),
            last: tokio::sync::watch::channel(0).0,
            lines_total: counter_vec(
                registry,
                "anthill_guest_log_lines_total",
                "Lines guests wrote (stdout, stderr, host.log) that were kept",
                &["module", "stream"],
            ),
            dropped_total: counter_vec(
                registry,
                "anthill_guest_log_lines_dropped_total",
                "Guest lines dropped by the per-module rate limit (logs.lines_per_second)",
                &["module"],
            ),
            kept: gauge(
                registry,
                "anthill_guest_log_lines_kept",
                "Guest lines held in the per-module ring buffers",
            ),
        }
    }

    fn quota(&self) -> Quota {
        let rate = NonZeroU32::new(self.settings.lines_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.settings.burst).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(rate).allow_burst(burst)
    }

    /// Takes one line a guest wrote: kept and logged, or dropped and counted.
    /// The node log is written after the ring's lock is released: actors of
    /// every module pass through here.
    pub fn record(&self, line: GuestLine) {
        let module = line.actor.module.as_str();
        let key = line.actor.key.as_str();
        let version = line.version;
        let text = line.text;
        let dropped = {
            let mut modules = self.modules.lock().expect("module logs poisoned");
            let log = modules
                .entry(module.to_owned())
                .or_insert_with(|| ModuleLog {
                    lines: VecDeque::new(),
                    limiter: DefaultDirectRateLimiter::direct(self.quota()),
                    dropped: 0,
                });
            if log.limiter.check().is_err() {
                log.dropped += 1;
                self.dropped_total.with_label_values(&[module]).inc();
                return;
            }
            let now = anthill_core::now_ms();
            let dropped = std::mem::take(&mut log.dropped);
            if dropped > 0 {
                let note = format!(
                    "{dropped} lines dropped (over logs.lines_per_second = {})",
                    self.settings.lines_per_second
                );
                self.keep(log, module, key, version, "dropped", note, now);
            }
            self.keep(
                log,
                module,
                key,
                version,
                line.stream.as_str(),
                text.clone(),
                now,
            );
            dropped
        };
        if dropped > 0 {
            tracing::warn!(target: "anthill::guest", module, dropped, "guest lines dropped (logs.lines_per_second)");
        }
        match line.stream {
            OutputStream::Stdout => {
                tracing::info!(target: "anthill::guest", module, key, version, stream = "stdout", "{text}")
            }
            OutputStream::Stderr => {
                tracing::warn!(target: "anthill::guest", module, key, version, stream = "stderr", "{text}")
            }
            OutputStream::Log(level) => match level {
                tracing::Level::TRACE => {
                    tracing::trace!(target: "anthill::guest", module, key, version, "{text}")
                }
                tracing::Level::DEBUG => {
                    tracing::debug!(target: "anthill::guest", module, key, version, "{text}")
                }
                tracing::Level::INFO => {
                    tracing::info!(target: "anthill::guest", module, key, version, "{text}")
                }
                tracing::Level::WARN => {
                    tracing::warn!(target: "anthill::guest", module, key, version, "{text}")
                }
                tracing::Level::ERROR => {
                    tracing::error!(target: "anthill::guest", module, key, version, "{text}")
                }
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn keep(
        &self,
        log: &mut ModuleLog,
        module: &str,
        key: &str,
        version: u32,
        stream: &str,
        text: String,
        ts_ms: u64,
    ) {
        let mut seq = 0;
        self.last.send_modify(|last| {
            *last += 1;
            seq = *last;
        });
        if log.lines.len() == self.settings.ring_lines {
            log.lines.pop_front();
        } else {
            self.kept.inc();
        }
        self.lines_total.with_label_values(&[module, stream]).inc();
        log.lines.push_back(LogLine {
            seq,
            ts_ms,
            module: module.to_owned(),
            key: key.to_owned(),
            version,
            stream: stream.to_owned(),
            text,
        });
    }

    /// The kept lines `query` selects, of the modules `visible` allows.
    pub fn read(&self, query: &LogQuery, visible: &(dyn Fn(&str) -> bool + Sync)) -> LogPage {
        let modules = self.modules.lock().expect("module logs poisoned");
        // Read under the lock `keep` numbers lines under: no line past `next`
        // is in this page, so following from `next` never repeats one.
        let next = *self.last.borrow();
        let limit = query.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        let mut lines: Vec<LogLine> = modules
            .iter()
            .filter(|(name, _)| query.module.as_deref().is_none_or(|m| m == name.as_str()))
            .filter(|(name, _)| visible(name))
            .flat_map(|(_, log)| log.lines.iter())
            .filter(|l| query.key.as_deref().is_none_or(|k| k == l.key))
            .filter(|l| query.after.is_none_or(|after| l.seq > after))
            .filter(|l| query.since_ms.is_none_or(|since| l.ts_ms >= since))
            .cloned()
            .collect();
        lines.sort_by_key(|l| l.seq);
        if lines.len() > limit {
            lines.drain(..lines.len() - limit);
        }
        LogPage { lines, next }
    }

    /// Like [`ModuleLogs::read`], but when nothing matches yet, waits up to
    /// `wait` for new lines (how `anthill logs -f` follows).
    pub async fn follow(
        &self,
        query: &LogQuery,
        visible: &(dyn Fn(&str) -> bool + Sync),
        wait: Duration,
    ) -> LogPage {
        let mut changed = self.last.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let page = self.read(query, visible);
            if !page.lines.is_empty() {
                return page;
            }
            let query_after = LogQuery {
                after: Some(page.next.max(query.after.unwrap_or(0))),
                ..query.clone()
            };
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {
                    let page = self.read(&query_after, visible);
                    if !page.lines.is_empty() {
                        return page;
                    }
                }
                _ => return page,
            }
        }
    }

    /// Forgets an undeployed module's lines and series.
    pub fn remove_module(&self, module: &str) {
        let removed = self
            .modules
            .lock()
            .expect("module logs poisoned")
            .remove(module);
        if let Some(log) = removed {
            self.kept.sub(log.lines.len() as i64);
        }
        let _ = self.dropped_total.remove_label_values(&[module]);
        for stream in [
            "stdout", "stderr", "trace", "debug", "info", "warn", "error", "dropped",
        ] {
            let _ = self.lines_total.remove_label_values(&[module, stream]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anthill_core::Address;

    fn line(module: &str, key: &str, text: &str) -> GuestLine {
        GuestLine {
            actor: Address::new(module, key),
            version: 1,
            stream: OutputStream::Stdout,
            text: text.into(),
        }
    }

    #[test]
    fn keeps_filters_and_bounds_lines() {
        let logs = ModuleLogs::new(
            LogSettings {
                ring_lines: 3,
                lines_per_second: 1000,
                burst: 1000,
            },
            &Registry::new(),
        );
        for i in 0..5 {
            logs.record(line("a", "k1", &format!("a{i}")));
        }
        logs.record(line("b", "k2", "b0"));
        let all = logs.read(&LogQuery::default(), &|_| true);
        let texts: Vec<_> = all.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a2", "a3", "a4", "b0"]);
        let only_b = logs.read(
            &LogQuery {
                module: Some("b".into()),
                ..LogQuery::default()
            },
            &|_| true,
        );
        assert_eq!(only_b.lines.len(), 1);
        let hidden = logs.read(&LogQuery::default(), &|m| m != "a");
        assert_eq!(hidden.lines.len(), 1);
        let after = logs.read(
            &LogQuery {
                after: Some(all.lines[2].seq),
                ..LogQuery::default()
            },
            &|_| true,
        );
        assert_eq!(after.lines.len(), 1);
        logs.remove_module("a");
        assert_eq!(logs.read(&LogQuery::default(), &|_| true).lines.len(), 1);
    }

    #[test]
    fn a_flood_is_dropped_counted_and_reported() {
        let registry = Registry::new();
        let logs = ModuleLogs::new(
            LogSettings {
                ring_lines: 100,
                lines_per_second: 1,
                burst: 5,
            },
            &registry,
        );
        for i in 0..50 {
            logs.record(line("a", "", &format!("line {i}")));
        }
        let page = logs.read(&LogQuery::default(), &|_| true);
        assert_eq!(page.lines.len(), 5, "only the burst is kept");
        assert_eq!(
            logs.dropped_total.with_label_values(&["a"]).get(),
            45,
            "every other line is counted"
        );
        std::thread::sleep(Duration::from_millis(1100));
        logs.record(line("a", "", "after"));
        let page = logs.read(&LogQuery::default(), &|_| true);
        let tail: Vec<_> = page.lines.iter().rev().take(2).collect();
        assert_eq!(tail[0].text, "after");
        assert_eq!(tail[1].stream, "dropped");
        assert!(
            tail[1].text.starts_with("45 lines dropped"),
            "{}",
            tail[1].text
        );
    }

    #[tokio::test]
    async fn follow_waits_for_the_next_line() {
        let logs = std::sync::Arc::new(ModuleLogs::new(LogSettings::default(), &Registry::new()));
        let first = logs.read(&LogQuery::default(), &|_| true);
        let writer = logs.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writer.record(line("a", "", "late"));
        });
        let page = logs
            .follow(
                &LogQuery {
                    after: Some(first.next),
                    ..LogQuery::default()
                },
                &|_| true,
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(page.lines[0].text, "late");
    }
}
