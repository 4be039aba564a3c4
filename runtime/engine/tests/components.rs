//! The engine alone, with real components: the sample `echo` and the
//! `probe` and `misbehave` fixtures run against a fake [`ActorHost`] that
//! records what the guest asked for. No node, no router, no sled, no
//! sockets: what these tests prove is the engine's own contract (imports
//! reach the host with their arguments, host errors reach the guest with
//! their kind, every failure of guest code is a typed [`CallError`]).

use anthill_core::{Address, CallChain, CallError, Channel, Limits, Sender};
use anthill_engine::{
    ActorHost, ActorLimits, CpuShare, Engine, GuestLine, GuestMetrics, Instance, LoadedVersion,
    MAX_LINE,
};
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// What the guest asked of the host, in order.
#[derive(Debug, Clone, PartialEq)]
enum Asked {
    Send(String, Vec<u8>),
    Call(String, Vec<u8>, bool),
    Publish(String, Vec<u8>),
    Subscribe(String, bool),
    Push(u64, Channel, Vec<u8>),
    Timer(String, u64, bool),
    Output(&'static str, String, u32),
}

/// Records every import and answers `call` with `reply` (or `error`).
#[derive(Default)]
struct FakeHost {
    asked: Mutex<Vec<Asked>>,
    call_error: Mutex<Option<CallError>>,
}

impl FakeHost {
    fn note(&self, a: Asked) {
        self.asked.lock().unwrap().push(a);
    }

    fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }
}

impl ActorHost for FakeHost {
    fn send(
        &self,
        _actor: &Address,
        to: Address,
        message: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), CallError>> {
        self.note(Asked::Send(to.to_string(), message));
        Box::pin(async { Ok(()) })
    }

    fn call(
        &self,
        actor: &Address,
        to: Address,
        message: Vec<u8>,
        _timeout: Duration,
        chain: CallChain,
    ) -> BoxFuture<'static, Result<Vec<u8>, CallError>> {
        self.note(Asked::Call(to.to_string(), message, chain.contains(actor)));
        let outcome = match self.call_error.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(b"from the fake host".to_vec()),
        };
        Box::pin(async move { outcome })
    }

    fn publish(
        &self,
        _actor: &Address,
        topic: String,
        event: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), CallError>> {
        self.note(Asked::Publish(topic, event));
        Box::pin(async { Ok(()) })
    }

    fn subscribe(&self, _actor: &Address, topic: &str, durable: bool) -> Result<(), CallError> {
        self.note(Asked::Subscribe(topic.into(), durable));
        Ok(())
    }

    fn unsubscribe(&self, _actor: &Address, _topic: &str) -> Result<(), CallError> {
        Ok(())
    }

    fn push(&self, player: u64, channel: Channel, message: Vec<u8>) -> Result<(), CallError> {
        self.note(Asked::Push(player, channel, message));
        Ok(())
    }

    fn set_timer(
        &self,
        _actor: &Address,
        tag: &str,
        delay_ms: u64,
        repeat: bool,
    ) -> Result<(), CallError> {
        self.note(Asked::Timer(tag.into(), delay_ms, repeat));
        // A full disk while storing the timer: the guest must see it.
        if tag == "disk-full" {
            return Err(CallError::storage("no space left on device", true));
        }
        Ok(())
    }

    fn output(&self, line: GuestLine) {
        self.note(Asked::Output(line.stream.as_str(), line.text, line.version));
    }

    fn cancel_timer(&self, _actor: &Address, _tag: &str) -> Result<(), CallError> {
        Ok(())
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The guests these tests use, built once (wasm32-wasip2, in their own
/// target dir, as the tests crate's build script does).
fn guest(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let target = workspace().join("target/guests");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(workspace())
            .args(["build", "--quiet", "--profile", "guest", "--target", "wasm32-wasip2"])
            .arg("--target-dir")
            .arg(&target)
            .args(["-p", "echo", "-p", "probe", "-p", "misbehave"])
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .status()
            .expect("running cargo to build the test guests");
        assert!(
            status.success(),
            "building echo, probe and misbehave failed (is the wasm32-wasip2 target installed? `just setup`)"
        );
        target.join("wasm32-wasip2/guest")
    });
    std::fs::read(dir.join(format!("{name}.wasm"))).expect("a built guest")
}

struct Rig {
    engine: Engine,
    _cache: tempfile::TempDir,
}

fn rig() -> Rig {
    let cache = tempfile::tempdir().expect("temp dir");
    let limits = Limits {
        max_actors: 16,
        ..Limits::default()
    };
    let engine = Engine::new(&limits, cache.path().to_owned()).expect("engine");
    Rig {
        engine,
        _cache: cache,
    }
}

fn actor_limits() -> ActorLimits {
    ActorLimits {
        deadline: Duration::from_millis(500),
        memory_bytes: 64 << 20,
        max_message_bytes: 1 << 20,
        max_call_timeout: Duration::from_secs(1),
        max_snapshot_bytes: 1 << 20,
        max_host_handles: 64,
    }
}

impl Rig {
    fn load(&self, name: &str) -> Arc<LoadedVersion> {
        let bytes = guest(name);
        let compiled = self.engine.compile(name, &bytes).expect("compiles");
        let pre = self.engine.prepare(&compiled.component).expect("links");
        Arc::new(LoadedVersion {
            version: 1,
            sha256: name.into(),
            pre,
        })
    }

    async fn start(&self, name: &str, key: &str, host: Arc<FakeHost>) -> Instance {
        Instance::start(
            &self.engine,
            host,
            self.load(name),
            &Address::new(name, key),
            actor_limits(),
            GuestMetrics::detached(name),
            CpuShare::new(Vec::new()),
        )
        .await
        .expect("instantiates and inits")
    }
}

async fn ask(inst: &mut Instance, text: &str) -> Result<Vec<u8>, CallError> {
    inst.on_message(
        &Sender::Admin,
        text.as_bytes().to_vec(),
        CallChain::default(),
    )
    .await
    .map(|r| r.unwrap_or_default())
}

#[tokio::test]
async fn echo_replies_through_the_engine_alone() {
    let rig = rig();
    let mut echo = rig.start("echo", "", Arc::default()).await;
    let reply = ask(&mut echo, "hello").await.expect("echo replies");
    assert_eq!(reply, b"hello");
    assert!(!echo.is_poisoned());
}

#[tokio::test]
async fn imports_reach_the_host_with_their_arguments() {
    let rig = rig();
    let host = Arc::new(FakeHost::default());
    let mut probe = rig.start("probe", "p1", host.clone()).await;

    let reply = ask(&mut probe, "call echo 500 hi").await.expect("call");
    assert_eq!(reply, b"from the fake host");
    ask(&mut probe, "send counter/a one").await.expect("send");
    ask(&mut probe, "publish news extra")
        .await
        .expect("publish");
    ask(&mut probe, "subscribe news alo")
        .await
        .expect("subscribe");
    ask(&mut probe, "push 42 unreliable ping")
        .await
        .expect("push");
    ask(&mut probe, "timer t 250 repeat").await.expect("timer");

    assert_eq!(
        host.asked(),
        vec![
            // The call chain names the caller (cycle detection needs it).
            Asked::Call("echo".into(), b"hi".to_vec(), true),
            Asked::Send("counter/a".into(), b"one".to_vec()),
            Asked::Publish("news".into(), b"extra".to_vec()),
            Asked::Subscribe("news".into(), true),
            Asked::Push(42, Channel::Unreliable, b"ping".to_vec()),
            Asked::Timer("t".into(), 250, true),
        ]
    );
}

#[tokio::test]
async fn effects_are_collected_for_the_caller() {
    let rig = rig();
    let mut probe = rig.start("probe", "room", Arc::default()).await;
    ask(&mut probe, "tick 20").await.expect("tick");
    ask(&mut probe, "churn 3").await.expect("churn");
    let effects = probe.take_effects();
    assert_eq!(effects.tick_hz, Some(20));
    let state = effects.synced_state.expect("set-synced-state was called");
    assert_eq!(state.len(), 200);
    assert!(probe.take_effects().synced_state.is_none(), "taken once");
}

#[tokio::test]
async fn host_errors_reach_the_guest_with_their_kind() {
    let rig = rig();
    let host = Arc::new(FakeHost::default());
    let mut probe = rig.start("probe", "p2", host.clone()).await;

    *host.call_error.lock().unwrap() = Some(CallError::Cycle("probe/p2 → echo → probe/p2".into()));
    let e = ask(&mut probe, "call echo 500 hi").await.unwrap_err();
    assert_eq!(e.kind(), "call-cycle", "{e}");

    // A full disk under set-timer stays a full disk, not an internal error.
    let e = ask(&mut probe, "timer disk-full 10 once")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("no space left on device"),
        "the guest saw: {e}"
    );
    assert!(!probe.is_poisoned(), "a refused import is not a trap");
}

#[tokio::test]
async fn oversized_payloads_never_reach_the_host() {
    let rig = rig();
    let host = Arc::new(FakeHost::default());
    let mut misbehave = rig.start("misbehave", "", host.clone()).await;
    let e = ask(&mut misbehave, "bigcall").await.unwrap_err();
    assert!(
        e.to_string().contains("exceeds the 1048576-byte limit"),
        "{e}"
    );
    let asked: Vec<_> = host
        .asked()
        .into_iter()
        .filter(|a| !matches!(a, Asked::Output(..)))
        .collect();
    assert!(asked.is_empty(), "the host saw {asked:?}");
}

#[tokio::test]
async fn guest_failures_are_typed_and_poison_the_instance() {
    let rig = rig();
    for (attack, kind) in [
        ("loop", "deadline-exceeded"),
        ("trap", "trapped"),
        ("oom", "out-of-memory"),
    ] {
        let mut inst = rig.start("misbehave", attack, Arc::default()).await;
        let e = ask(&mut inst, attack).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{attack}: {e}");
        assert!(inst.is_poisoned(), "{attack} must poison the instance");
        if attack == "trap" {
            assert!(
                e.to_string().contains("misbehave was asked to trap"),
                "the panic message is kept: {e}"
            );
        }
    }
}

#[tokio::test]
async fn stdout_and_stderr_reach_the_host_line_by_line() {
    let rig = rig();
    let host = Arc::new(FakeHost::default());
    let mut inst = rig.start("probe", "p", host.clone()).await;
    ask(&mut inst, "print hello from stdout").await.unwrap();
    ask(&mut inst, "eprint hello from stderr").await.unwrap();
    ask(&mut inst, "spew 3").await.unwrap();
    let long = "x".repeat(MAX_LINE + 10);
    ask(&mut inst, &format!("print {long}")).await.unwrap();
    let lines: Vec<_> = host
        .asked()
        .into_iter()
        .filter_map(|a| match a {
            Asked::Output(stream, text, version) => Some((stream, text, version)),
            _ => None,
        })
        .collect();
    assert_eq!(lines[0], ("stdout", "hello from stdout".to_owned(), 1));
    assert_eq!(lines[1], ("stderr", "hello from stderr".to_owned(), 1));
    let spewed: Vec<_> = lines[2..5].iter().map(|l| l.1.as_str()).collect();
    assert_eq!(spewed, ["spew 0", "spew 1", "spew 2"]);
    // A line past the cap arrives cut, saying by how much.
    assert!(
        lines[5].1.ends_with("(10 more bytes cut)"),
        "{}",
        &lines[5].1[MAX_LINE..]
    );
    assert_eq!(lines.len(), 6, "{lines:?}");
}
