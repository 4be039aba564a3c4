//! The node's own series, beside the parts' ones: what the process costs
//! (prometheus' process collector: CPU, resident memory, open fds, threads)
//! and which build this is.

use prometheus::Registry;

/// Registers the process collector and `anthill_build_info` on `registry`.
pub(crate) fn register(registry: &Registry) {
    // Linux only (procfs); elsewhere there is nothing to collect.
    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("process series are registered once per registry");
    let info = anthill_core::metrics::gauge_vec(
        registry,
        "anthill_build_info",
        "Always 1; the labels say which build runs.",
        &["version", "target", "profile"],
    );
    let target = format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    info.with_label_values(&[env!("CARGO_PKG_VERSION"), &target, profile])
        .set(1);
}
