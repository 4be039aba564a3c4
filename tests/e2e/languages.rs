//! Modules in JavaScript and Python beside Rust: same contract, same behaviour,
//! state carried across languages, calls across languages, templates.

use anthill_tests::{Node, anthill_bin, toolchain};
use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Interpreted guests start slower than Rust ones: a roomier deadline keeps the
/// tests about behaviour, not about this machine's load.
const ROOMY: &str = "kind=keyed&deadline_ms=2000";

#[tokio::test]
async fn js_and_python_counters_keep_state_per_key() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    for module in ["counter-js", "counter-py"] {
        admin.deploy(module, module, ROOMY).await?;
        for _ in 0..3 {
            admin.call_text(&format!("{module}/a"), "incr").await?;
        }
        assert_eq!(admin.call_text(&format!("{module}/b"), "incr").await?, "1");
        assert_eq!(
            admin.call_text(&format!("{module}/a"), "get").await?,
            "3",
            "{module}"
        );
        let (status, body) = admin.call(&format!("{module}/a"), b"decr").await?;
        assert_eq!(status, 422, "{module}: {}", String::from_utf8_lossy(&body));
        assert!(
            String::from_utf8_lossy(&body).contains("`incr` and `get`"),
            "{module}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_python_module_calls_a_rust_module_and_errors_come_back_typed() -> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("counter", "counter", "kind=keyed").await?;
    admin
        .deploy("greeter", "greeter-py", "deadline_ms=2000")
        .await?;
    assert_eq!(
        admin.call_text("greeter", "hello bob").await?,
        "hello bob, visit #1"
    );
    assert_eq!(
        admin.call_text("greeter", "hello bob").await?,
        "hello bob, visit #2"
    );
    assert_eq!(
        admin.call_text("counter/bob", "get").await?,
        "2",
        "the Rust actor counted"
    );
    // A missing module: not-found, through Python, back to us.
    let (status, body) = admin.call("greeter", b"hello-from nosuch bob").await?;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    // The Rust module's refusal: rejected, with its words.
    admin.deploy("echo", "echo", "").await?;
    let (status, body) = admin.call("greeter", b"hello-from echo bob").await?;
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("singleton"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

#[tokio::test]
async fn swaps_between_every_pair_of_languages_under_load_keep_every_increment()
-> anyhow::Result<()> {
    let node = Node::start().await?;
    let admin = node.admin();
    // Compile every version first (the shared compile cache makes the swaps
    // themselves instant, as a precompiled deploy would be in production).
    for (name, module) in [("warm-js", "counter-js"), ("warm-py", "counter-py")] {
        admin.deploy(name, module, ROOMY).await?;
    }
    admin.deploy("counter", "counter", ROOMY).await?;
    const KEYS: usize = 50;
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|c| {
            let (admin, stop) = (admin.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tally: HashMap<usize, u64> = HashMap::new();
                let mut last: HashMap<usize, u64> = HashMap::new();
                let mut i = c * 13;
                while !stop.load(Ordering::Relaxed) {
                    let key = i % KEYS;
                    i += 1;
                    let (status, body) = admin.call(&format!("counter/k{key}"), b"incr").await?;
                    let body = String::from_utf8_lossy(&body).into_owned();
                    anyhow::ensure!(status == 200, "caller {c}: k{key}: {status} {body}");
                    let v: u64 = body.parse()?;
                    if let Some(prev) = last.insert(key, v) {
                        anyhow::ensure!(v > prev, "caller {c}: k{key} went {prev} → {v}");
                    }
                    *tally.entry(key).or_default() += 1;
                }
                Ok::<_, anyhow::Error>(tally)
            })
        })
        .collect();
    // Every directed pair: Rust→JS→Python→Rust→Python→JS→Rust.
    for module in [
        "counter-js",
        "counter-py",
        "counter",
        "counter-py",
        "counter-js",
        "counter",
    ] {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let bytes = std::fs::read(anthill_tests::guest(module))?;
        let (status, body) = admin.deploy_bytes("counter", bytes, "").await?;
        assert_eq!(status, 200, "swap to {module}: {body}");
        assert!(body["swap"]["actors"].as_u64().unwrap() > 0, "{body}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total: HashMap<usize, u64> = HashMap::new();
    for c in callers {
        for (k, n) in c.await?? {
            *total.entry(k).or_default() += n;
        }
    }
    for key in 0..KEYS {
        let value: u64 = admin
            .call_text(&format!("counter/k{key}"), "get")
            .await?
            .parse()?;
        assert_eq!(
            value,
            total.get(&key).copied().unwrap_or(0),
            "counter/k{key}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_restart_with_js_and_python_modules_loads_them_precompiled() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let args: [&str; 0] = [];
    let node = Node::start_in(dir.path(), &args).await?;
    let admin = node.admin();
    admin.deploy("counter-js", "counter-js", ROOMY).await?;
    admin.deploy("counter-py", "counter-py", ROOMY).await?;
    admin.call_text("counter-py/x", "incr").await?;
    node.stop()?;
    let node = Node::start_in(dir.path(), &args).await?;
    let admin = node.admin();
    assert_eq!(
        admin.metric("anthill_component_compiles_total", "").await?,
        0.0
    );
    assert_eq!(
        admin
            .metric("anthill_component_cache_hits_total", "")
            .await?,
        2.0
    );
    assert_eq!(admin.call_text("counter-py/x", "get").await?, "1");
    assert_eq!(admin.call_text("counter-js/x", "incr").await?, "1");
    Ok(())
}

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn templates_of_every_language_build_deploy_and_answer() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Node::start().await?;
    let admin = node.admin();
    for (lang, name) in [
        ("rust", "tmpl-rs"),
        ("js", "tmpl-js"),
        ("python", "tmpl-py"),
    ] {
        run(
            Command::new(anthill_bin())
                .args(["new", "--lang", lang, name, "--dir"])
                .arg(dir.path()),
            &format!("anthill new --lang {lang}"),
        )?;
        let project = dir.path().join(name);
        let wasm = match lang {
            "rust" => anthill_tests::build_rust_project(&project, "tmpl_rs")?,
            "js" => {
                run(
                    Command::new(project.join("build.sh"))
                        .env("COMPONENTIZE_JS", toolchain("componentize-js")),
                    "the JS template's build.sh",
                )?;
                project.join("tmpl-js.wasm")
            }
            _ => {
                run(
                    Command::new(project.join("build.sh"))
                        .env("COMPONENTIZE_PY", toolchain("componentize-py")),
                    "the Python template's build.sh",
                )?;
                project.join("tmpl-py.wasm")
            }
        };
        let (status, body) = admin
            .deploy_bytes(name, std::fs::read(&wasm)?, ROOMY)
            .await?;
        assert_eq!(status, 201, "{lang}: {body}");
        assert_eq!(
            admin.call_text(&format!("{name}/k"), "hello").await?,
            format!("hello from {name} (key `k`)")
        );
        assert_eq!(admin.call_text(&format!("{name}/k"), "count").await?, "1");
        assert_eq!(admin.call_text(&format!("{name}/k"), "count").await?, "2");
    }
    Ok(())
}
