//! The node's Prometheus registry. One registry per node (not a process global),
//! so two nodes in one test process do not mix their numbers. Hot paths hold
//! pre-resolved per-module handles ([`ModuleMetrics`]) instead of looking labels
//! up per call.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the node exports.
pub struct Metrics {
    registry: Registry,
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
    pub compiles: IntCounter,
    pub compile_cache_hits: IntCounter,
    pub compile_seconds: Histogram,
    pub deploys: IntCounterVec,
}

/// Handles of one module's series, resolved once.
#[derive(Clone)]
pub struct ModuleMetrics {
    pub calls: IntCounter,
    pub traps: IntCounter,
    pub interrupts: IntCounter,
    pub out_of_memory: IntCounter,
    pub call_seconds: Histogram,
    pub live_actors: IntGauge,
    pub activations: IntCounter,
    pub passivations: IntCounter,
    pub snapshots: IntCounter,
    pub overloads: IntCounter,
    pub rate_limited: IntCounter,
    pub circuit_opens: IntCounter,
    pub swap_seconds: Histogram,
    pub swap_stall_seconds: Histogram,
    pub tick_seconds: Histogram,
    call_errors: IntCounterVec,
    module: String,
}

impl ModuleMetrics {
    /// Counts a failed call by the error kind it ended with.
    pub fn call_error(&self, kind: &str) {
        self.call_errors
            .with_label_values(&[self.module.as_str(), kind])
            .inc();
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let m = &["module"];
        let calls = counter(
            &registry,
            "anthill_calls_total",
            "Guest calls made (messages, events, ticks, timers).",
            m,
        );
        let call_errors = counter(
            &registry,
            "anthill_call_errors_total",
            "Calls that ended in an error, by kind.",
            &["module", "kind"],
        );
        let traps = counter(
            &registry,
            "anthill_traps_total",
            "Guest traps (the instance is replaced).",
            m,
        );
        let interrupts = counter(
            &registry,
            "anthill_interrupts_total",
            "Guest calls stopped at their deadline.",
            m,
        );
        let out_of_memory = counter(
            &registry,
            "anthill_out_of_memory_total",
            "Guest calls stopped at the actor's memory cap.",
            m,
        );
        let call_seconds = HistogramVec::new(
            HistogramOpts::new("anthill_call_duration_seconds", "Guest call latency.").buckets(
                vec![
                    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5,
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ],
            ),
            m,
        )
        .expect("valid metric");
        registry
            .register(Box::new(call_seconds.clone()))
            .expect("unique metric");
        let live_actors = IntGaugeVec::new(
            Opts::new("anthill_live_actors", "Actors currently instantiated."),
            m,
        )
        .expect("valid metric");
        registry
            .register(Box::new(live_actors.clone()))
            .expect("unique metric");
        let activations = counter(
            &registry,
            "anthill_activations_total",
            "Actor activations.",
            m,
        );
        let passivations = counter(
            &registry,
            "anthill_passivations_total",
            "Actors passivated when idle.",
            m,
        );
        let snapshots = counter(
            &registry,
            "anthill_snapshots_total",
            "Actor snapshots written.",
            m,
        );
        let overloads = counter(
            &registry,
            "anthill_overloads_total",
            "Messages refused because a mailbox was full.",
            m,
        );
        let rate_limited = counter(
            &registry,
            "anthill_rate_limited_total",
            "Messages refused by an actor's adaptive rate limit.",
            m,
        );
        let circuit_opens = counter(
            &registry,
            "anthill_circuit_opens_total",
            "Times an actor's circuit breaker opened.",
            m,
        );
        let swap_seconds = HistogramVec::new(
            HistogramOpts::new(
                "anthill_swap_duration_seconds",
                "Whole-module swap duration.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            m,
        )
        .expect("valid metric");
        registry
            .register(Box::new(swap_seconds.clone()))
            .expect("unique metric");
        let swap_stall_seconds = HistogramVec::new(
            HistogramOpts::new(
                "anthill_swap_stall_seconds",
                "How long each actor stopped taking messages during a swap.",
            )
            .buckets(vec![
                0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05,
                0.1,
            ]),
            m,
        )
        .expect("valid metric");
        registry
            .register(Box::new(swap_stall_seconds.clone()))
            .expect("unique metric");
        let tick_seconds = HistogramVec::new(
            HistogramOpts::new(
                "anthill_tick_seconds",
                "A room tick: on-tick plus sending the state to every member.",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025,
                0.05, 0.1, 0.25, 1.0,
            ]),
            m,
        )
        .expect("valid metric");
        registry
            .register(Box::new(tick_seconds.clone()))
            .expect("unique metric");
        let compiles = IntCounter::new(
            "anthill_component_compiles_total",
            "Components compiled (cache misses).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(compiles.clone()))
            .expect("unique metric");
        let compile_cache_hits = IntCounter::new(
            "anthill_component_cache_hits_total",
            "Components loaded precompiled from the cache.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(compile_cache_hits.clone()))
            .expect("unique metric");
        let compile_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "anthill_component_compile_seconds",
                "Time to compile a component.",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(compile_seconds.clone()))
            .expect("unique metric");
        let deploys = counter(
            &registry,
            "anthill_deploys_total",
            "Deploys by outcome.",
            &["outcome"],
        );
        Metrics {
            registry,
            calls,
            call_errors,
            traps,
            interrupts,
            out_of_memory,
            call_seconds,
            live_actors,
            activations,
            passivations,
            snapshots,
            overloads,
            rate_limited,
            circuit_opens,
            swap_seconds,
            swap_stall_seconds,
            tick_seconds,
            compiles,
            compile_cache_hits,
            compile_seconds,
            deploys,
        }
    }

    /// The registry, for parts that register their own metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Resolves one module's series.
    pub fn module(&self, module: &str) -> ModuleMetrics {
        let l = &[module];
        ModuleMetrics {
            calls: self.calls.with_label_values(l),
            traps: self.traps.with_label_values(l),
            interrupts: self.interrupts.with_label_values(l),
            out_of_memory: self.out_of_memory.with_label_values(l),
            call_seconds: self.call_seconds.with_label_values(l),
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
            call_errors: self.call_errors.clone(),
            module: module.to_owned(),
        }
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}
