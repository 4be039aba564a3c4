//! The actors' Prometheus series, registered on the node's registry (passed
//! in: one registry per node). Hot paths hold pre-resolved per-module handles
//! ([`ModuleMetrics`]) instead of looking labels up per call.

mod gauges;

pub(crate) use gauges::publish;

use anthill_core::CallError;
use anthill_core::metrics::{
    counter, counter_vec, gauge, gauge_vec, histogram, histogram_vec, seconds_counter_vec,
};
use anthill_engine::GuestMetrics;
use prometheus::{
    CounterVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
};

/// Every series of the actor runtime.
pub struct Metrics {
    calls: IntCounterVec,
    call_errors: IntCounterVec,
    traps: IntCounterVec,
    interrupts: IntCounterVec,
    out_of_memory: IntCounterVec,
    call_seconds: HistogramVec,
    live_actors: IntGaugeVec,
    activations: IntCounterVec,
    passivations: IntCounterVec,
    snapshots: IntCounterVec,
    overloads: IntCounterVec,
    rate_limited: IntCounterVec,
    circuit_opens: IntCounterVec,
    swap_seconds: HistogramVec,
    swap_stall_seconds: HistogramVec,
    tick_seconds: HistogramVec,
    guest_seconds: CounterVec,
    guest_memory: IntGaugeVec,
    /// Envelopes waiting in the module's mailboxes (set when scraped).
    pub(crate) mailbox_depth: IntGaugeVec,
    /// At-least-once events not yet delivered to the module's subscribers.
    pub(crate) event_backlog: IntGaugeVec,
    /// Dead letters kept for the module's subscribers.
    pub(crate) dead_letters: IntGaugeVec,
    /// The store's size on disk.
    pub(crate) store_bytes: IntGauge,
    /// Components compiled (cache misses).
    pub compiles: IntCounter,
    /// Components loaded precompiled.
    pub compile_cache_hits: IntCounter,
    /// Time to compile a component.
    pub compile_seconds: Histogram,
    /// Deploys by outcome.
    pub deploys: IntCounterVec,
}

/// Handles of one module's series, resolved once.
#[derive(Clone)]
pub struct ModuleMetrics {
    /// What its guest calls report (owned by the engine's instance).
    pub guest: GuestMetrics,
    /// Actors currently instantiated.
    pub live_actors: IntGauge,
    /// Actor activations.
    pub activations: IntCounter,
    /// Actors passivated when idle.
    pub passivations: IntCounter,
    /// Snapshots written.
    pub snapshots: IntCounter,
    /// Messages refused because a mailbox was full.
    pub overloads: IntCounter,
    /// Messages refused by an actor's rate limit.
    pub rate_limited: IntCounter,
    /// Times an actor's circuit breaker opened.
    pub circuit_opens: IntCounter,
    /// Whole-module swap duration.
    pub swap_seconds: Histogram,
    /// How long each actor stopped taking messages during a swap.
    pub swap_stall_seconds: Histogram,
    /// Room ticks.
    pub tick_seconds: Histogram,
}

impl ModuleMetrics {
    /// Counts a failed call by the error kind it ended with.
    pub fn call_error(&self, kind: &str) {
        self.guest.call_error(kind);
    }
}

impl Metrics {
    /// Registers the series on `registry`.
    pub fn new(registry: &Registry) -> Metrics {
        let r = registry;
        let m = &["module"];
        Metrics {
            calls: counter_vec(
                r,
                "anthill_calls_total",
                "Guest calls made (messages, events, ticks, timers).",
                m,
            ),
            call_errors: counter_vec(
                r,
                "anthill_call_errors_total",
                "Calls that ended in an error, by kind.",
                &["module", "kind"],
            ),
            traps: counter_vec(
                r,
                "anthill_traps_total",
                "Guest traps (the instance is replaced).",
                m,
            ),
            interrupts: counter_vec(
                r,
                "anthill_interrupts_total",
                "Guest calls stopped at their deadline.",
                m,
            ),
            out_of_memory: counter_vec(
                r,
                "anthill_out_of_memory_total",
                "Guest calls stopped at the actor's memory cap.",
                m,
            ),
            call_seconds: histogram_vec(
                r,
                "anthill_call_duration_seconds",
                "Guest call latency.",
                m,
                vec![
                    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5,
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ],
            ),
            live_actors: gauge_vec(
                r,
                "anthill_live_actors",
                "Actors currently instantiated.",
                m,
            ),
            activations: counter_vec(r, "anthill_activations_total", "Actor activations.", m),
            passivations: counter_vec(
                r,
                "anthill_passivations_total",
                "Actors passivated when idle.",
                m,
            ),
            snapshots: counter_vec(r, "anthill_snapshots_total", "Actor snapshots written.", m),
            overloads: counter_vec(
                r,
                "anthill_overloads_total",
                "Messages refused because a mailbox was full.",
                m,
            ),
            rate_limited: counter_vec(
                r,
                "anthill_rate_limited_total",
                "Messages refused by an actor's adaptive rate limit.",
                m,
            ),
            circuit_opens: counter_vec(
                r,
                "anthill_circuit_opens_total",
                "Times an actor's circuit breaker opened.",
                m,
            ),
            swap_seconds: histogram_vec(
                r,
                "anthill_swap_duration_seconds",
                "Whole-module swap duration.",
                m,
                vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            ),
            swap_stall_seconds: histogram_vec(
                r,
                "anthill_swap_stall_seconds",
                "How long each actor stopped taking messages during a swap.",
                m,
                vec![
                    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
                    0.05, 0.1,
                ],
            ),
            tick_seconds: histogram_vec(
                r,
                "anthill_tick_seconds",
                "A room tick: on-tick plus sending the state to every member.",
                m,
                vec![
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025,
                    0.05, 0.1, 0.25, 1.0,
                ],
            ),
            guest_seconds: seconds_counter_vec(
                r,
                "anthill_guest_cpu_seconds_total",
                "Seconds guests ran: call time minus time waiting in host imports.",
                m,
            ),
            guest_memory: gauge_vec(
                r,
                "anthill_guest_memory_bytes",
                "Linear memory held by the module's live instances.",
                m,
            ),
            mailbox_depth: gauge_vec(
                r,
                "anthill_mailbox_depth",
                "Envelopes waiting in the module's mailboxes.",
                m,
            ),
            event_backlog: gauge_vec(
                r,
                "anthill_event_backlog",
                "At-least-once events not yet delivered to the module's subscribers \
                 (counted up to 10000 per subscription).",
                m,
            ),
            dead_letters: gauge_vec(
                r,
                "anthill_dead_letters",
                "Dead letters kept for the module's subscribers.",
                m,
            ),
            store_bytes: gauge(
                r,
                "anthill_store_bytes",
                "Size on disk of the node's database (snapshots, events, timers, registry).",
            ),
            compiles: counter(
                r,
                "anthill_component_compiles_total",
                "Components compiled (cache misses).",
            ),
            compile_cache_hits: counter(
                r,
                "anthill_component_cache_hits_total",
                "Components loaded precompiled from the cache.",
            ),
            compile_seconds: histogram(
                r,
                "anthill_component_compile_seconds",
                "Time to compile a component.",
                vec![0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            ),
            deploys: counter_vec(
                r,
                "anthill_deploys_total",
                "Deploys by outcome.",
                &["outcome"],
            ),
        }
    }

    /// Resolves one module's series.
    pub fn module(&self, module: &str) -> ModuleMetrics {
        let l = &[module];
        ModuleMetrics {
            guest: GuestMetrics {
                calls: self.calls.with_label_values(l),
                traps: self.traps.with_label_values(l),
                interrupts: self.interrupts.with_label_values(l),
                out_of_memory: self.out_of_memory.with_label_values(l),
                call_seconds: self.call_seconds.with_label_values(l),
                call_errors: self.call_errors.clone(),
                guest_seconds: self.guest_seconds.with_label_values(l),
                memory_bytes: self.guest_memory.with_label_values(l),
                module: module.to_owned(),
            },
            live_actors: self.live_actors.with_label_values(l),
            activations: self.activations.with_label_values(l),
            passivations: self.passivations.with_label_values(l),
            snapshots: self.snapshots.with_label_values(l),
            overloads: self.overloads.with_label_values(l),
            rate_limited: self.rate_limited.with_label_values(l),
            circuit_opens: self.circuit_opens.with_label_values(l),
            swap_seconds: self.swap_seconds.with_label_values(l),
            swap_stall_seconds: self.swap_stall_seconds.with_label_values(l),
            tick_seconds: self.tick_seconds.with_label_values(l),
        }
    }

    /// Removes every series of `module` (on undeploy): a dashboard should not
    /// show a module that is gone.
    pub fn forget(&self, module: &str) {
        let l = &[module];
        for v in [
            &self.calls,
            &self.traps,
            &self.interrupts,
            &self.out_of_memory,
            &self.activations,
            &self.passivations,
            &self.snapshots,
            &self.overloads,
            &self.rate_limited,
            &self.circuit_opens,
        ] {
            let _ = v.remove_label_values(l);
        }
        for v in [
            &self.call_seconds,
            &self.swap_seconds,
            &self.swap_stall_seconds,
            &self.tick_seconds,
        ] {
            let _ = v.remove_label_values(l);
        }
        for v in [
            &self.live_actors,
            &self.guest_memory,
            &self.mailbox_depth,
            &self.event_backlog,
            &self.dead_letters,
        ] {
            let _ = v.remove_label_values(l);
        }
        let _ = self.guest_seconds.remove_label_values(l);
        for kind in CallError::KINDS {
            let _ = self.call_errors.remove_label_values(&[module, kind]);
        }
    }
}
