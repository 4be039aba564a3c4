//! The series one module's guest calls report to, resolved once per module
//! so the hot path does not look labels up.

use prometheus::{Counter, Histogram, IntCounter, IntCounterVec, IntGauge};

/// Handles of one module's guest-call series.
#[derive(Clone)]
pub struct GuestMetrics {
    /// Guest calls made.
    pub calls: IntCounter,
    /// Guest traps.
    pub traps: IntCounter,
    /// Calls stopped at their deadline.
    pub interrupts: IntCounter,
    /// Calls stopped at the memory cap.
    pub out_of_memory: IntCounter,
    /// Guest call latency.
    pub call_seconds: Histogram,
    /// Failed calls by kind, labelled `module, kind`.
    pub call_errors: IntCounterVec,
    /// Seconds guests ran: wall time of their calls minus the time they
    /// waited in host imports (another actor's reply, a flush).
    pub guest_seconds: Counter,
    /// Linear memory the module's live instances hold, in bytes.
    pub memory_bytes: IntGauge,
    /// The module these series belong to.
    pub module: String,
}

impl GuestMetrics {
    /// Series that count nowhere, for tests and benchmarks.
    pub fn detached(module: &str) -> GuestMetrics {
        let counter = |name: &str| IntCounter::new(name, "unregistered").expect("valid metric");
        GuestMetrics {
            calls: counter("calls"),
            traps: counter("traps"),
            interrupts: counter("interrupts"),
            out_of_memory: counter("out_of_memory"),
            call_seconds: Histogram::with_opts(prometheus::HistogramOpts::new(
                "call_seconds",
                "unregistered",
            ))
            .expect("valid metric"),
            call_errors: IntCounterVec::new(
                prometheus::Opts::new("call_errors", "unregistered"),
                &["module", "kind"],
            )
            .expect("valid metric"),
            guest_seconds: Counter::new("guest_seconds", "unregistered").expect("valid metric"),
            memory_bytes: IntGauge::new("memory_bytes", "unregistered").expect("valid metric"),
            module: module.to_owned(),
        }
    }

    /// Counts a failed call by the error kind it ended with.
    pub fn call_error(&self, kind: &str) {
        self.call_errors
            .with_label_values(&[self.module.as_str(), kind])
            .inc();
    }
}
