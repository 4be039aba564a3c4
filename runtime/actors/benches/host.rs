//! Host benchmarks (criterion): the cost the actor layer adds to a guest call,
//! and actor activation. Needs `target/modules/echo.wasm` (`just build-modules`;
//! `just bench` does it). Numbers go to docs/perf.md; nothing is asserted.
//!
//! - `call/bare`: `on-message` straight into an `echo` instance (wasmtime async
//!   call with an epoch deadline) on the engine alone, with a host that serves
//!   no import: no runtime, no store, the floor;
//! - `call/routed`: the same message from an operator through the router:
//!   admission, the actor's lock, deadline bookkeeping, reply channel; the
//!   actor is idle, so the call runs on the caller's task. Goal: routed ≤ 2 ×
//!   bare.
//! - `call/routed_queued`: the same call from another actor, which always
//!   goes through the mailbox and the actor's task (two task wake-ups);
//! - `call/routed_one_worker`: the routed call on a current-thread runtime;
//! - `activate`: a new store from the pooling allocator, instantiate the
//!   precompiled component, `init`. Goal: p50 ≤ 10 µs.
//! - `call/routed_with_node_log`: `call/routed` with the node's log
//!   subscriber installed (INFO): what logging and disabled trace spans add.

use anthill_actors::module::{DeployRequest, SettingsRequest};
use anthill_actors::{Runtime, RuntimeConfig};
use anthill_core::{Address, CallChain, CallError, Channel, Sender};
use anthill_engine::{
    ActorCtx, ActorHost, ActorLimits, CpuShare, Engine, GuestClock, LoadedVersion, StderrTail,
};
use anthill_store::Store;
use criterion::{Criterion, criterion_group, criterion_main};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn echo_wasm() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/modules/echo.wasm"
    );
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

/// `echo` imports nothing: a host that refuses everything is enough for
/// the engine-only benchmarks.
struct NoHost;

fn refused<T: Send + 'static>() -> BoxFuture<'static, Result<T, CallError>> {
    Box::pin(async { Err(CallError::Unsupported("benchmark host".into())) })
}

impl ActorHost for NoHost {
    fn send(
        &self,
        _: &Address,
        _: Address,
        _: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), CallError>> {
        refused()
    }
    fn call(
        &self,
        _: &Address,
        _: Address,
        _: Vec<u8>,
        _: Duration,
        _: CallChain,
    ) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
        refused()
    }
    fn publish(
        &self,
        _: &Address,
        _: String,
        _: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), CallError>> {
        refused()
    }
    fn subscribe(&self, _: &Address, _: &str, _: bool) -> Result<(), CallError> {
        Err(CallError::Unsupported("benchmark host".into()))
    }
    fn unsubscribe(&self, _: &Address, _: &str) -> Result<(), CallError> {
        Err(CallError::Unsupported("benchmark host".into()))
    }
    fn push(&self, _: u64, _: Channel, _: Vec<u8>) -> Result<(), CallError> {
        Err(CallError::Unsupported("benchmark host".into()))
    }
    fn set_timer(&self, _: &Address, _: &str, _: u64, _: bool) -> Result<(), CallError> {
        Err(CallError::Unsupported("benchmark host".into()))
    }
    fn cancel_timer(&self, _: &Address, _: &str) -> Result<(), CallError> {
        Err(CallError::Unsupported("benchmark host".into()))
    }
    fn output(&self, _: anthill_engine::GuestLine) {}
}

/// Node limits with a small instance pool: the bench holds three engines
/// (two runtimes and the engine alone), and each pool slot costs kernel
/// mappings.
fn bench_limits() -> anthill_core::Limits {
    anthill_core::Limits {
        max_actors: 256,
        ..anthill_core::Limits::default()
    }
}

/// The engine alone: `echo` compiled and linked, no runtime, no store.
fn engine_with_echo(cache: &std::path::Path) -> (Engine, Arc<LoadedVersion>) {
    let engine = Engine::new(&bench_limits(), cache.to_owned()).expect("engine");
    let bytes = echo_wasm();
    let compiled = engine.compile("bench-echo", &bytes).expect("compile echo");
    let pre = engine.prepare(&compiled.component).expect("link echo");
    let version = Arc::new(LoadedVersion {
        version: 1,
        sha256: "bench-echo".into(),
        pre,
    });
    (engine, version)
}

/// An actor runtime (no gateway, no admin API) with `echo` deployed, on `rt`.
fn runtime_on(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> Arc<Runtime> {
    rt.block_on(async {
        let config = RuntimeConfig {
            limits: bench_limits(),
            ..RuntimeConfig::default()
        };
        let engine = Engine::new(&config.limits, dir.join("cache")).expect("engine");
        let store = Arc::new(Store::open(dir).expect("store"));
        let registry = prometheus::Registry::new();
        let runtime = Runtime::new(config, engine, store, &registry).expect("runtime");
        runtime.start().await.expect("start");
        anthill_actors::module::deploy(
            &runtime,
            DeployRequest {
                name: "echo".into(),
                settings: SettingsRequest::default(),
                bytes: echo_wasm().into(),
            },
        )
        .await
        .expect("deploy echo");
        runtime
    })
}

/// One admin call to `echo` through the router: mailbox, actor task, reply.
async fn routed_call(
    node: &Arc<Runtime>,
    address: &Address,
    from: &Sender,
    payload: &[u8],
) -> Vec<u8> {
    node.router
        .call(
            node,
            address,
            from.clone(),
            payload.to_vec(),
            Duration::from_secs(5),
            CallChain::default(),
        )
        .await
        .expect("routed call")
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let node = runtime_on(&rt, dir.path());
    let engine_dir = tempfile::tempdir().expect("temp dir");
    let (engine, version) = engine_with_echo(engine_dir.path());
    let host: Arc<dyn ActorHost> = Arc::new(NoHost);
    let payload = vec![7u8; 64];
    let address = Address::new("echo", "");

    let new_store = || {
        let ctx = ActorCtx::new(
            host.clone(),
            address.clone(),
            1,
            limits(),
            Arc::new(GuestClock::new()),
            StderrTail::default(),
            CpuShare::new(Vec::new()),
        );
        let mut store = wasmtime::Store::new(engine.wasmtime(), ctx);
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
                        .call_on_message(
                            &mut store,
                            &anthill_engine::types::Sender::Admin,
                            &payload,
                        )
                        .await
                        .expect("call");
                    std::hint::black_box(r.expect("reply"));
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("routed", |b| {
        b.iter_custom(|iters| routed_calls(&rt, &node, &address, &Sender::Admin, &payload, iters))
    });
    // A guest's call never runs on its caller's stack: this is the mailbox path.
    let from_actor = Sender::Actor(Address::new("caller", ""));
    group.bench_function("routed_queued", |b| {
        b.iter_custom(|iters| routed_calls(&rt, &node, &address, &from_actor, &payload, iters))
    });
    let one = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir1 = tempfile::tempdir().expect("temp dir");
    let node1 = runtime_on(&one, dir1.path());
    group.bench_function("routed_one_worker", |b| {
        b.iter_custom(|iters| {
            one.block_on(async {
                let call = || routed_call(&node1, &address, &Sender::Admin, &payload);
                call().await;
                let started = Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(call().await);
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

    // Last, because a global subscriber stays: the routed call again with
    // the node's log installed (INFO, to nowhere), which is what turns the
    // runtime's TRACE spans and trace context into a level check each. The
    // ratio to `call/routed` is what logging and tracing-off cost a message.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .init();
    c.bench_function("call/routed_with_node_log", |b| {
        b.iter_custom(|iters| routed_calls(&rt, &node, &address, &Sender::Admin, &payload, iters))
    });
    drop(rt);
}

/// `iters` routed calls from a task on the runtime, like the admin API or
/// the gateway, after one that makes the actor live.
fn routed_calls(
    rt: &tokio::runtime::Runtime,
    node: &Arc<Runtime>,
    address: &Address,
    from: &Sender,
    payload: &[u8],
    iters: u64,
) -> Duration {
    let node = node.clone();
    let (address, from, payload) = (address.clone(), from.clone(), payload.to_vec());
    rt.block_on(rt.spawn(async move {
        let call = || routed_call(&node, &address, &from, &payload);
        call().await;
        let started = Instant::now();
        for _ in 0..iters {
            std::hint::black_box(call().await);
        }
        started.elapsed()
    }))
    .expect("bench task")
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
