//! Harness of the end-to-end tests: builds and starts the real `anthill` binary on
//! loopback ports with a temporary data dir, and talks to it over its admin API.

pub mod nats;

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A sample module: Rust ones are built by this crate's build script; the
/// JavaScript and Python ones by `just build-modules` (into target/modules).
pub fn guest(name: &str) -> PathBuf {
    let file = if name == "hello-command" {
        name.to_owned()
    } else {
        name.replace('-', "_")
    };
    let rust = PathBuf::from(env!("ANTHILL_GUESTS_DIR")).join(format!("{file}.wasm"));
    if rust.exists() {
        return rust;
    }
    let other = workspace_root()
        .join("target")
        .join("modules")
        .join(format!("{name}.wasm"));
    assert!(
        other.exists(),
        "{} is missing: the JavaScript and Python samples are built by `just build-modules` (part of `just test`)",
        other.display()
    );
    other
}

/// The installed componentize toolchains (by `just build-modules`).
pub fn toolchain(bin: &str) -> PathBuf {
    let path = match bin {
        "componentize-js" => "target/toolchains/js/componentize-js",
        "componentize-py" => "target/toolchains/py/bin/componentize-py",
        other => panic!("unknown toolchain {other}"),
    };
    let p = workspace_root().join(path);
    assert!(
        p.exists(),
        "{} is missing: run `just build-modules`",
        p.display()
    );
    p
}

/// Chromium and playwright-core for the browser tests (tests/browser/*.cjs),
/// installed by the script `just test` also runs (quick when they are there):
/// the node wrapper that runs a script with both at hand.
pub fn browser_runner() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let status = Command::new(root.join("scripts/browser-toolchain.sh"))
        .status()
        .context("running scripts/browser-toolchain.sh")?;
    anyhow::ensure!(
        status.success(),
        "scripts/browser-toolchain.sh failed ({status}): the browser tests need Chromium and playwright-core"
    );
    Ok(root.join("target/toolchains/browser/run"))
}

/// What a process printed, stdout then stderr.
pub fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

/// CPU seconds process `pid` used so far (user + system, from
/// `/proc/PID/stat`); `None` once it is gone.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15, in clock ticks (100 a second on Linux).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The `anthill` binary, built (incrementally) in the profile these tests use.
pub fn anthill_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let release = !cfg!(debug_assertions);
        let mut cmd = Command::new(env!("CARGO"));
        // Cargo hands the test process its own build variables (CARGO_MANIFEST_DIR,
        // OUT_DIR, ...); build scripts that watch them (ring's does) would rerun
        // and rebuild half the tree if the nested build inherited them.
        for (var, _) in std::env::vars_os() {
            let var = var.to_string_lossy();
            let keep = var == "CARGO_HOME" || var == "CARGO_TARGET_DIR";
            if !keep
                && (var.starts_with("CARGO_")
                    || var == "OUT_DIR"
                    || var.starts_with("RUSTC")
                    || var.starts_with("NEXTEST"))
            {
                cmd.env_remove(var.as_ref());
            }
        }
        cmd.current_dir(workspace_root())
            .args(["build", "--quiet", "-p", "anthill", "--bin", "anthill"]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .expect("running cargo build for the anthill binary");
        assert!(status.success(), "building the anthill binary failed");
        // target/<profile>/deps/e2e-… (tests) or target/<profile>/anthill-bench
        // → target/<profile>/anthill
        let exe = std::env::current_exe().expect("test binary path");
        let mut dir = exe.parent().expect("binary in a directory");
        if dir.file_name().is_some_and(|n| n == "deps") {
            dir = dir.parent().expect("deps is inside the profile dir");
        }
        dir.join("anthill")
    })
}

/// Builds the Rust module project at `project` for wasm32-wasip2 (release)
/// as a user would, with a target dir that outlives the test (wit-bindgen
/// builds once per machine), and returns the path of `crate_name`'s component.
pub fn build_rust_project(project: &Path, crate_name: &str) -> anyhow::Result<PathBuf> {
    let target = workspace_root().join("target").join("templates");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(project)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"]);
    // Not this workspace's build: none of the variables cargo gave the tests.
    for (var, _) in std::env::vars() {
        if var.starts_with("CARGO_") && var != "CARGO_HOME" || var == "RUSTFLAGS" {
            cargo.env_remove(var);
        }
    }
    cargo.env("CARGO_TARGET_DIR", &target);
    let out = cargo.output().context("running cargo build")?;
    anyhow::ensure!(
        out.status.success(),
        "cargo build of {} failed:\n{}",
        project.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(target.join(format!("wasm32-wasip2/release/{crate_name}.wasm")))
}

/// A running `anthill serve` process.
pub struct Node {
    child: Option<Child>,
    pub data: PathBuf,
    pub admin_url: String,
    pub token: String,
    /// The player (QUIC) address and certificate fingerprint.
    pub quic: Option<std::net::SocketAddr>,
    pub fingerprint: String,
    /// The web port (WebSocket at `/ws`).
    pub web: Option<std::net::SocketAddr>,
    output: Arc<Mutex<Vec<String>>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Node {
    /// Starts a node on a fresh temporary data dir.
    pub async fn start() -> anyhow::Result<Node> {
        Self::start_with(&[]).await
    }

    /// Starts a node on a fresh temporary data dir with extra `serve` flags.
    /// A node with `modules` deployed: (name, sample, deploy query).
    pub async fn start_deployed(modules: &[(&str, &str, &str)]) -> anyhow::Result<Node> {
        let node = Node::start().await?;
        let admin = node.admin();
        for (name, sample, query) in modules {
            admin.deploy(name, sample, query).await?;
        }
        Ok(node)
    }

    pub async fn start_with(extra: &[&str]) -> anyhow::Result<Node> {
        let tmp = tempfile::tempdir()?;
        let mut node = Self::start_in(tmp.path(), extra).await?;
        node._tmp = Some(tmp);
        Ok(node)
    }

    /// A node of the cluster on `nats`, named `name`, on a fresh data dir.
    pub async fn start_clustered(nats: &nats::NatsCluster, name: &str) -> anyhow::Result<Node> {
        Self::start_with(&["--cluster", &nats.urls(), "--node", name]).await
    }

    /// A node of the cluster on `nats`, named `name`, with this TOML config
    /// (for settings that have no flag).
    pub async fn start_clustered_with_config(
        nats: &nats::NatsCluster,
        name: &str,
        toml: &str,
    ) -> anyhow::Result<Node> {
        let tmp = tempfile::tempdir()?;
        let config = tmp.path().join("anthill.toml");
        std::fs::write(&config, toml)?;
        let config = config.to_str().expect("utf-8 path").to_owned();
        let data = tmp.path().join("data");
        let urls = nats.urls();
        let mut node = Self::start_in(
            &data,
            &["--config", &config, "--cluster", &urls, "--node", name],
        )
        .await?;
        node._tmp = Some(tmp);
        Ok(node)
    }

    /// Nodes `n1`…`nN` joined to `nats`, started one after the other.
    pub async fn start_cluster_of(nats: &nats::NatsCluster, n: usize) -> anyhow::Result<Vec<Node>> {
        let mut nodes = Vec::with_capacity(n);
        for i in 1..=n {
            nodes.push(Self::start_clustered(nats, &format!("n{i}")).await?);
        }
        Ok(nodes)
    }

    /// Starts a node on a fresh temporary data dir with this TOML config.
    pub async fn start_with_config(toml: &str) -> anyhow::Result<Node> {
        let tmp = tempfile::tempdir()?;
        let config = tmp.path().join("anthill.toml");
        std::fs::write(&config, toml)?;
        let data = tmp.path().join("data");
        let mut node =
            Self::start_in(&data, &["--config", config.to_str().expect("utf-8 path")]).await?;
        node._tmp = Some(tmp);
        Ok(node)
    }

    /// Starts a node on `data` (which may hold an earlier node's state).
    pub async fn start_in(data: &Path, extra: &[&str]) -> anyhow::Result<Node> {
        let mut cmd = Command::new(anthill_bin());
        cmd.args(["serve", "--data"]).arg(data);
        Self::serve_args(&mut cmd, extra);
        Self::launch(cmd, |_| data.to_owned())
    }

    /// Starts a node whose data dir is a tmpfs of `mb` MiB of its own, mounted
    /// in a user and mount namespace (`unshare -rm`, no privileges needed), so a
    /// test can fill its disk for real. The test reaches that data dir through
    /// `/proc/PID/root` (the `data` field).
    pub async fn start_on_small_disk(mb: u32) -> anyhow::Result<Node> {
        let mount = tempfile::tempdir()?;
        let inside = mount.path().join("data");
        let mut cmd = Command::new("unshare");
        cmd.args([
            "-rm",
            "sh",
            "-c",
            r#"mount -t tmpfs -o "size=$1m" tmpfs "$2" && shift 2 && exec "$@""#,
            "sh",
        ])
        .arg(mb.to_string())
        .arg(mount.path())
        .arg(anthill_bin())
        .args(["serve", "--data"])
        .arg(&inside);
        Self::serve_args(&mut cmd, &[]);
        let mut node = Self::launch(cmd, |pid| {
            PathBuf::from(format!("/proc/{pid}/root"))
                .join(inside.strip_prefix("/").expect("absolute"))
        })
        .context("starting a node on its own tmpfs (needs `unshare -rm`: user namespaces)")?;
        node._tmp = Some(mount);
        Ok(node)
    }

    fn serve_args(cmd: &mut Command, extra: &[&str]) {
        // One compile cache for every test node: a JS or Python component is
        // compiled once per suite, not once per test.
        if !extra.contains(&"--cache") {
            cmd.arg("--cache")
                .arg(workspace_root().join("target").join("test-compile-cache"));
        }
        cmd.args([
            "--admin",
            "127.0.0.1:0",
            "--quic",
            "127.0.0.1:0",
            "--web",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("RUST_LOG", "info")
        .env_remove("ANTHILL_TOKEN")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    }

    /// Spawns `cmd`, waits for the start banner, and reads the node's address
    /// files from the data dir (`data(pid)` as this process sees it).
    fn launch(mut cmd: Command, data: impl FnOnce(u32) -> PathBuf) -> anyhow::Result<Node> {
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        for stream in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let out = output.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    out.lock().expect("output lock").push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut admin_url = None;
        let admin_url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("admin api: ") {
                        admin_url = Some(url.trim().to_owned());
                    }
                    // `modules:` ends the start banner.
                    if line.starts_with("modules: ")
                        && let Some(url) = admin_url.take()
                    {
                        break url;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    bail!(
                        "the node did not report its admin address; output:\n{}",
                        output.lock().expect("output lock").join("\n")
                    );
                }
            }
        };
        let data = data(child.id());
        let quic = std::fs::read_to_string(data.join("quic.addr"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let web = std::fs::read_to_string(data.join("web.addr"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let fingerprint = std::fs::read_to_string(data.join("gateway.fingerprint"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let token = std::fs::read_to_string(data.join("admin.token"))
            .context("reading the generated admin token")?
            .trim()
            .to_owned();
        Ok(Node {
            child: Some(child),
            data,
            admin_url,
            token,
            quic,
            fingerprint,
            web,
            output,
            _tmp: None,
        })
    }

    pub fn admin(&self) -> Admin {
        Admin::new(&self.admin_url, &self.token)
    }

    /// A player client connected to this node (not yet logged in).
    pub async fn player(&self) -> anyhow::Result<anthill_client::Client> {
        let addr = self.quic.context("the node has no player gateway")?;
        Ok(anthill_client::Client::connect(
            addr,
            anthill_client::Trust::Fingerprint(self.fingerprint.clone()),
        )
        .await?)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Resident memory of the node process, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .context("no VmRSS line")?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("VmRSS value")?
            .parse()?)
    }

    /// Runs `anthill ARGS` against this node (its admin URL and token):
    /// (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
        let out = Command::new(anthill_bin())
            .args(args)
            .args(["--admin", &self.admin_url])
            .env("ANTHILL_TOKEN", &self.token)
            .output()
            .context("running the anthill CLI")?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// Runs `anthill bot --data <this node's data> ARGS --json` to the end
    /// and returns its summary; fails naming what it printed if it failed.
    pub fn bot_summary(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let out = Command::new(anthill_bin())
            .args(["bot", "--data"])
            .arg(&self.data)
            .args(args)
            .arg("--json")
            .output()
            .context("running anthill bot")?;
        let text = String::from_utf8_lossy(&out.stdout);
        anyhow::ensure!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(text.trim()).with_context(|| format!("the bot's summary: {text}"))
    }

    /// Everything the node printed so far.
    pub fn output(&self) -> String {
        self.output.lock().expect("output lock").join("\n")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGSTOP: the process stops where it is, sockets open, as a node
    /// stalled by the machine (a long GC pause, a frozen VM) would.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// SIGCONT after [`Node::pause`].
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill -{sig} {} failed", self.pid());
        Ok(())
    }

    /// SIGKILL: no chance to flush or snapshot.
    pub fn kill9(mut self) -> PathBuf {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.data.clone()
    }

    /// SIGTERM and wait for a graceful exit; returns the node's output.
    pub fn stop(mut self) -> anyhow::Result<String> {
        let mut child = self.child.take().expect("running");
        let signalled = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !signalled {
            let _ = child.kill();
            let _ = child.wait();
            bail!("kill -TERM failed");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                anyhow::ensure!(
                    status.success(),
                    "node exited with {status}:\n{}",
                    self.output()
                );
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("node did not stop within 30 s:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let the reader threads catch the last lines.
        std::thread::sleep(Duration::from_millis(50));
        Ok(self.output())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A failed assertion: what the node said last goes into the test's
        // captured output, which the harness prints for failures only.
        if std::thread::panicking()
            && let Ok(out) = self.output.lock()
        {
            let from = out.len().saturating_sub(40);
            eprintln!(
                "--- the last {} lines of node {}'s output ---\n{}",
                out.len() - from,
                self.data.display(),
                out[from..].join("\n")
            );
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A client of a node's admin API.
#[derive(Clone)]
pub struct Admin {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Admin {
    pub fn new(base: &str, token: &str) -> Admin {
        Admin {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `PUT /v1/modules/{name}?{query}` with `bytes`: (status, JSON body).
    pub async fn deploy_bytes(
        &self,
        name: &str,
        bytes: Vec<u8>,
        query: &str,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let resp = self
            .http
            .put(self.url(&format!("/v1/modules/{name}?{query}")))
            .bearer_auth(&self.token)
            .body(bytes)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        Ok((status, body))
    }

    /// Deploys a sample module and insists it worked.
    pub async fn deploy(
        &self,
        name: &str,
        module: &str,
        query: &str,
    ) -> anyhow::Result<serde_json::Value> {
        let bytes =
            std::fs::read(guest(module)).with_context(|| format!("reading the {module} sample"))?;
        let (status, body) = self.deploy_bytes(name, bytes, query).await?;
        anyhow::ensure!(
            status == 201 || status == 200,
            "deploy {name} failed: {status} {body}"
        );
        Ok(body)
    }

    /// `POST /v1/modules/{module}/call?key=` for `module[/key]`: (status, body).
    pub async fn call(&self, target: &str, payload: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        self.call_with(target, payload, &[]).await
    }

    /// [`Admin::call`] with the caller's own timeout (`?timeout_ms=`).
    pub async fn call_within(
        &self,
        target: &str,
        payload: &[u8],
        timeout_ms: u64,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let timeout = timeout_ms.to_string();
        self.call_with(target, payload, &[("timeout_ms", &timeout)])
            .await
    }

    async fn call_with(
        &self,
        target: &str,
        payload: &[u8],
        query: &[(&str, &str)],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let (module, key) = target.split_once('/').unwrap_or((target, ""));
        let resp = self
            .http
            .post(self.url(&format!("/v1/modules/{module}/call")))
            .query(&[("key", key)])
            .query(query)
            .bearer_auth(&self.token)
            .body(payload.to_vec())
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.bytes().await?.to_vec()))
    }

    /// A call that must succeed with a text reply.
    pub async fn call_text(&self, target: &str, payload: &str) -> anyhow::Result<String> {
        let (status, body) = self.call(target, payload.as_bytes()).await?;
        let text = String::from_utf8_lossy(&body).into_owned();
        anyhow::ensure!(
            status == 200,
            "call {target} {payload:?} failed: {status} {text}"
        );
        Ok(text)
    }

    /// Keys of the live actors of `module` on this node.
    pub async fn live_keys(&self, module: &str) -> anyhow::Result<Vec<String>> {
        let (_, actors) = self
            .get_json(&format!("/v1/actors?module={module}"))
            .await?;
        Ok(actors[0]["actors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["key"].as_str().map(str::to_owned))
            .collect())
    }

    /// The first `n` of the keys `PREFIX0`, `PREFIX1`… of `module` that,
    /// touched with `message` through this node, live here (in a cluster,
    /// their partitions are this node's): how a test puts actors on a
    /// chosen node.
    pub async fn keys_living_here(
        &self,
        module: &str,
        prefix: &str,
        message: &str,
        n: usize,
    ) -> anyhow::Result<Vec<String>> {
        let mut found = Vec::with_capacity(n);
        for i in 0..256 {
            let key = format!("{prefix}{i}");
            self.call_text(&format!("{module}/{key}"), message).await?;
            if self.live_keys(module).await?.contains(&key) {
                found.push(key);
                if found.len() == n {
                    return Ok(found);
                }
            }
        }
        bail!("only {} keys of {module} landed on this node", found.len())
    }

    /// `DELETE path` with the token: (status, JSON body or null).
    pub async fn delete(&self, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
        self.send_json(reqwest::Method::DELETE, path).await
    }

    /// `POST path` (no body) with the token: (status, JSON body or null).
    pub async fn post(&self, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
        self.send_json(reqwest::Method::POST, path).await
    }

    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let resp = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(serde_json::Value::Null)))
    }

    /// `GET path` with the token: (status, JSON body).
    pub async fn get_json(&self, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(serde_json::Value::Null)))
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let resp = self
            .http
            .get(self.url("/metrics"))
            .bearer_auth(&self.token)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "/metrics answered {}",
            resp.status()
        );
        Ok(resp.text().await?)
    }

    /// The value of one series in `/metrics` (0 when absent).
    pub async fn metric(&self, name: &str, labels: &str) -> anyhow::Result<f64> {
        let text = self.metrics().await?;
        let wanted = if labels.is_empty() {
            name.to_owned()
        } else {
            format!("{name}{{{labels}}}")
        };
        Ok(text
            .lines()
            .find_map(|l| {
                l.strip_prefix(&wanted)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0))
    }

    /// The probe fixture's observed state (`state` command).
    pub async fn probe_state(&self, target: &str) -> anyhow::Result<serde_json::Value> {
        let text = self.call_text(target, "state").await?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Names of the deployed modules.
    pub async fn module_names(&self) -> anyhow::Result<Vec<String>> {
        let (status, body) = self.get_json("/v1/modules").await?;
        anyhow::ensure!(status == 200, "listing modules: {status}");
        Ok(body
            .as_array()
            .context("module list is an array")?
            .iter()
            .filter_map(|m| m["name"].as_str().map(str::to_owned))
            .collect())
    }
}

/// A node with `echo` beside two hostile modules built from the `hoard`
/// fixture: `looper` (its `loop-*` keys loop in `init` to a 100 ms deadline)
/// and `trapper` (its `trap-*` keys trap in `init`). Used by the CPU-fairness
/// test and by `anthill-bench hostile`.
pub async fn node_with_hostile_neighbours() -> anyhow::Result<Node> {
    let node = Node::start().await?;
    let admin = node.admin();
    admin.deploy("echo", "echo", "").await?;
    admin
        .deploy("looper", "hoard", "kind=keyed&deadline_ms=100")
        .await?;
    admin.deploy("trapper", "hoard", "kind=keyed").await?;
    anyhow::ensure!(admin.call_text("echo", "warm").await? == "warm");
    Ok(node)
}

/// Retries `check` every 50 ms until it succeeds; after `within`, fails
/// with its last error (for conditions that pass through errors, like a
/// failover).
pub async fn until_ok<F, Fut>(within: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                bail!("timed out after {within:?} waiting for {what}: {e:#}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or fails after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
