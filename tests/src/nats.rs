//! Real nats-server processes on loopback for the cluster tests: the pinned
//! binary (scripts/nats-toolchain.sh), JetStream on, each server with its own
//! store dir, clustered by routes when there are several.

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned nats-server, installed on first use (quick when it is there).
pub fn nats_server_bin() -> anyhow::Result<PathBuf> {
    let root = crate::workspace_root();
    let status = Command::new(root.join("scripts/nats-toolchain.sh"))
        .status()
        .context("running scripts/nats-toolchain.sh")?;
    anyhow::ensure!(
        status.success(),
        "scripts/nats-toolchain.sh failed ({status}): the cluster tests need nats-server >= 2.12"
    );
    Ok(root.join("target/toolchains/nats/nats-server"))
}

/// A free loopback TCP port (bound and released: nats-server routes must
/// name each other's ports before they start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

struct Server {
    child: Option<Child>,
    port: u16,
    monitor: u16,
    config: PathBuf,
    log: PathBuf,
}

/// NATS servers with JetStream, clustered when there are several.
pub struct NatsCluster {
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// `n` servers with JetStream (file storage), routed to each other.
    pub async fn start(n: usize) -> anyhow::Result<NatsCluster> {
        Self::start_with(n, true).await
    }

    /// One server without JetStream (nodes must refuse it).
    pub async fn without_jetstream() -> anyhow::Result<NatsCluster> {
        Self::start_with(1, false).await
    }

    /// Starts the servers, on fresh ports again when one lost its port: a
    /// port found free is closed before nats-server binds it, and another
    /// process (any outbound connection) may take it in between.
    async fn start_with(n: usize, jetstream: bool) -> anyhow::Result<NatsCluster> {
        let mut lost = 0;
        loop {
            match Self::try_start(n, jetstream).await {
                Err(e) if lost < 3 && format!("{e:#}").contains("address already in use") => {
                    lost += 1;
                    eprintln!(
                        "a nats-server lost its port to another process; starting again on fresh ports"
                    );
                }
                started => return started,
            }
        }
    }

    async fn try_start(n: usize, jetstream: bool) -> anyhow::Result<NatsCluster> {
        let bin = nats_server_bin()?;
        let dir = tempfile::tempdir()?;
        let routes: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut servers = Vec::new();
        for i in 0..n {
            let (port, monitor) = (free_port(), free_port());
            let store = dir.path().join(format!("js{i}"));
            let mut conf =
                format!("server_name: n{i}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\n");
            if jetstream {
                conf += &format!(
                    "jetstream {{ store_dir: {:?}, max_memory_store: 64MB, max_file_store: 1GB }}\n",
                    store.display().to_string()
                );
            }
            if n > 1 {
                let others: Vec<String> = routes
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| format!("nats-route://127.0.0.1:{p}"))
                    .collect();
                conf += &format!(
                    "cluster {{ name: anthill-test, listen: 127.0.0.1:{}, routes: [{}] }}\n",
                    routes[i],
                    others.join(", ")
                );
            }
            let config = dir.path().join(format!("n{i}.conf"));
            std::fs::write(&config, conf)?;
            let log = dir.path().join(format!("n{i}.log"));
            let mut server = Server {
                child: None,
                port,
                monitor,
                config,
                log,
            };
            server.spawn(&bin)?;
            servers.push(server);
        }
        let cluster = NatsCluster { servers, _dir: dir };
        for i in 0..n {
            cluster.wait_healthy(i, jetstream).await?;
        }
        Ok(cluster)
    }

    /// Every server's client URL, comma-separated, for `--cluster`.
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Server `i`'s client URL.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.servers[i].port)
    }

    /// CPU seconds the running servers used so far (user + system, from
    /// `/proc/PID/stat`): what the cluster's traffic costs NATS.
    pub fn cpu_seconds(&self) -> f64 {
        self.servers
            .iter()
            .filter_map(|s| s.child.as_ref())
            .filter_map(|c| crate::process_cpu_seconds(c.id()))
            .sum()
    }

    /// SIGKILL of server `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts server `i` again on its store (after [`NatsCluster::kill9`]).
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let bin = nats_server_bin()?;
        self.servers[i].spawn(&bin)?;
        self.wait_healthy(i, true).await
    }

    /// Server `i`'s log, for failure messages.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.servers[i].log).unwrap_or_default()
    }

    /// Waits for `/healthz` of server `i` (with JetStream: its meta leader
    /// known and its streams current).
    async fn wait_healthy(&self, i: usize, jetstream: bool) -> anyhow::Result<()> {
        let url = format!(
            "http://127.0.0.1:{}/healthz{}",
            self.servers[i].monitor,
            if jetstream {
                ""
            } else {
                "?js-enabled-only=false"
            }
        );
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            // A fatal error (a port taken) ends the server: no use waiting.
            let log = self.log(i);
            if log.contains("[FTL]") {
                bail!("nats-server n{i} exited; its log:\n{log}");
            }
            if Instant::now() > deadline {
                bail!("nats-server n{i} did not become healthy within 30 s; its log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Server {
    fn spawn(&mut self, bin: &PathBuf) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for s in &mut self.servers {
            if let Some(mut c) = s.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
