//! Host benchmarks (criterion): the cost the actor layer adds to a guest call,
//! and actor activation. Needs `target/modules/echo.wasm` (`just build-modules`;
//! `just bench` does it). Numbers go to docs/perf.md; nothing is asserted.
//!
//! - `call/bare`: `on-message` straight into an `echo` instance (wasmtime async
//!   call with an epoch deadline), the floor;
//! - `call/routed`: the same message through the router: mailbox, actor task,
//!   deadline bookkeeping, reply channel. Goal: routed ≤ 2 × bare.
//! - `call/routed_one_worker`: the routed call on a current-thread runtime: the
//!   mailbox path without tokio waking a sibling worker on every hop;
//! - `activate`: a new store from the pooling allocator, instantiate the
//!   precompiled component, `init`. Goal: p50 ≤ 10 µs.

use anthill::host::types::Sender;
use anthill::host::{ActorCtx, ActorLimits, CpuShare, GuestClock, StderrTail};
use anthill::module::{DeployRequest, SettingsRequest};
use anthill::router::{Address, CallChain};
use anthill::{Config, RunningNode};
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn echo_wasm() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/modules/echo.wasm");
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (run `just build-modules`)"))
}

fn limits() -> ActorLimits {
    ActorLimits {
        deadline: Duration::from_secs(1),
        memory_bytes: 64 << 20,
        max_message_bytes: 1 << 20,
        max_call_timeout: Duration::from_secs(1),
        max_snapshot_bytes: 4 << 20,
        max_host_handles: 256,
    }
}

/// A node with `echo` deployed, on `rt`.
fn node_on(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> RunningNode {
    let mut config = Config {
        data: dir.to_owned(),
        admin: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    config.gateway.enabled = false;
    let running = rt.block_on(RunningNode::start(config)).expect("node");
    rt.block_on(anthill::module::deploy(
        &running.node,
        DeployRequest {
            name: "echo".into(),
            settings: SettingsRequest::default(),
            bytes: echo_wasm().into(),
        },
    ))
    .expect("deploy echo");
    running
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let running = node_on(&rt, dir.path());
    let node = running.node.clone();
    let version = node.router.module("echo").expect("echo").version_for("");
    let payload = vec![7u8; 64];
    let address = Address::new("echo", "");

    let new_store = || {
        let ctx = ActorCtx::new(
            node.clone(),
            address.clone(),
            limits(),
            Arc::new(GuestClock::new()),
            StderrTail::default(),
            CpuShare::new(Vec::new()),
        );
        let mut store = wasmtime::Store::new(node.engine.wasmtime(), ctx);
        store.set_epoch_deadline(1_000_000);
        store
    };

    let mut group = c.benchmark_group("call");
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut store = new_store();
                let bindings = version
                    .pre
                    .instantiate_async(&mut store)
                    .await
                    .expect("instantiate");
                let actor = bindings.anthill_module_actor();
                actor
                    .call_init(&mut store, "")
                    .await
                    .expect("init")
                    .expect("init ok");
                let started = Instant::now();
                for _ in 0..iters {
                    let r = actor
                        .call_on_message(&mut store, &Sender::Admin, &payload)
                        .await
                        .expect("call");
                    std::hint::black_box(r.expect("reply"));
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("routed", |b| {
        b.iter_custom(|iters| {
            // From a task on the runtime, like the admin API or the gateway.
            let node = node.clone();
            let (address, payload) = (address.clone(), payload.clone());
            rt.block_on(rt.spawn(async move {
                // Warm: the actor is live.
                node.router
                    .call(
                        &node,
                        &address,
                        Sender::Admin,
                        payload.clone(),
                        Duration::from_secs(5),
                        CallChain::default(),
                    )
                    .await
                    .expect("warm call");
                let started = Instant::now();
                for _ in 0..iters {
                    let r = node
                        .router
                        .call(
                            &node,
                            &address,
                            Sender::Admin,
                            payload.clone(),
                            Duration::from_secs(5),
                            CallChain::default(),
                        )
                        .await
                        .expect("routed call");
                    std::hint::black_box(r);
                }
                started.elapsed()
            }))
            .expect("bench task")
        })
    });
    let one = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir1 = tempfile::tempdir().expect("temp dir");
    let node1 = node_on(&one, dir1.path()).node.clone();
    group.bench_function("routed_one_worker", |b| {
        b.iter_custom(|iters| {
            one.block_on(async {
                let call = || {
                    node1.router.call(
                        &node1,
                        &address,
                        Sender::Admin,
                        payload.clone(),
                        Duration::from_secs(5),
                        CallChain::default(),
                    )
                };
                call().await.expect("warm call");
                let started = Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(call().await.expect("routed call"));
                }
                started.elapsed()
            })
        })
    });
    group.finish();

    c.bench_function("activate", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let mut store = new_store();
                    let bindings = version
                        .pre
                        .instantiate_async(&mut store)
                        .await
                        .expect("instantiate");
                    bindings
                        .anthill_module_actor()
                        .call_init(&mut store, "k")
                        .await
                        .expect("init")
                        .expect("init ok");
                    std::hint::black_box(&store);
                }
                started.elapsed()
            })
        })
    });
    drop(rt);
}

fn main_config() -> Criterion {
    // Error values must not capture backtraces on the hot path, whatever
    // RUST_BACKTRACE says (the anthill binary does the same).
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: single-threaded here, before any runtime exists.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0")
        };
    }
    Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = host;
    config = main_config();
    targets = benches
}
criterion_main!(host);
