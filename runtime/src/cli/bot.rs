//! `anthill bot`: simulated players over QUIC (or the browsers' WebTransport
//! and WebSocket, `--transport`), with live progress and a closing
//! summary (requests/s, latency percentiles, datagrams/s, bytes per player per
//! second, errors). Scenarios: `echo` (request/reply as fast as each player
//! can) and `arena` (ask the lobby for a room, join it, move now and then,
//! mirror the room's state).

use anthill_client::{Client, ClientError, Transport, Trust};
use anyhow::Context;
use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    /// Requests to `echo` as fast as each player gets replies.
    Echo,
    /// Join a room through `lobby` and play `arena`.
    Arena,
    /// Connect, log in, and stay (keep-alives only): how many a node holds.
    Idle,
}

impl Scenario {
    /// The modules the scenario plays against, for its error message.
    fn needs(self) -> &'static str {
        match self {
            Scenario::Echo => {
                "; the echo scenario needs `echo` deployed (anthill deploy echo echo.wasm)"
            }
            Scenario::Arena => {
                "; the arena scenario needs `lobby` and `arena` deployed (anthill deploy lobby lobby.wasm; anthill deploy arena arena.wasm --keyed)"
            }
            Scenario::Idle => "",
        }
    }
}

/// How the bots reach the node.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum Via {
    /// QUIC with ALPN anthill/1 on the player port.
    Quic,
    /// WebTransport (HTTP/3) on the player port, as browsers play.
    Webtransport,
    /// WebSocket on the web port's /ws.
    Websocket,
}

#[derive(Args, Debug)]
pub(super) struct BotArgs {
    /// The node's QUIC address [default: from DATA/quic.addr]
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// The node certificate's SHA-256 [default: from DATA/gateway.fingerprint]
    #[arg(long)]
    fingerprint: Option<String>,
    /// Another node of the same cluster, `ADDR=FINGERPRINT` (repeatable): a
    /// QUIC bot whose node stops answering resumes its session there, as a
    /// real client would (bots spread over the fallbacks).
    #[arg(long, value_name = "ADDR=FINGERPRINT", value_parser = parse_fallback)]
    fallback: Vec<Fallback>,
    /// The transport the bots play over.
    #[arg(long, value_enum, default_value_t = Via::Quic)]
    transport: Via,
    /// The node's web port, for `--transport websocket` [default: from DATA/web.addr]
    #[arg(long)]
    web: Option<SocketAddr>,
    /// Simulated players.
    #[arg(long, default_value_t = 10)]
    players: usize,
    /// Seconds to run (0: until Ctrl-C).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, value_enum, default_value_t = Scenario::Echo)]
    scenario: Scenario,
    /// Arena: share of the time a player is moving (the rest it stands still).
    #[arg(long, default_value_t = 0.1)]
    move_share: f64,
    /// Echo: requests per second per player (0: as fast as replies come; the
    /// node limits each player to `gateway.requests_per_sec`).
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Arena: acknowledge one room state in this many (see docs/protocol.md).
    #[arg(long, default_value_t = anthill_client::DEFAULT_ACK_EVERY)]
    ack_every: u32,
    /// Arena: hold each state's ack this many milliseconds, so it shares a
    /// packet with QUIC's own ACK (0: send it with the state; see
    /// docs/protocol.md).
    #[arg(long, default_value_t = anthill_protocol::session::ACK_DELAY.as_millis() as u64)]
    ack_delay_ms: u64,
    /// Echo: payload bytes per request.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 500)]
    connect_rate: u64,
    /// The node's data dir, to find its address and fingerprint [default:
    /// the nearest `anthill-data` here or in a parent]
    #[arg(long, env = "ANTHILL_DATA")]
    data: Option<PathBuf>,
    /// Exit 0 even when requests fail (for load tests past capacity: the
    /// summary still counts them).
    #[arg(long)]
    allow_errors: bool,
    /// Drive the players sans-IO, 256 to a task and a socket, instead of a
    /// client with its own tasks per player: a load generator cheaper than
    /// the node it loads (QUIC only, no --fallback).
    #[arg(long)]
    swarm: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// No progress lines, only the summary.
    #[arg(long)]
    quiet: bool,
}

/// A node to resume on when the bot's own stops answering.
#[derive(Clone, Debug)]
struct Fallback {
    addr: SocketAddr,
    fingerprint: String,
}

fn parse_fallback(s: &str) -> Result<Fallback, String> {
    let (addr, fingerprint) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not ADDR=FINGERPRINT"))?;
    Ok(Fallback {
        addr: addr
            .parse()
            .map_err(|e| format!("`{addr}` is not an address: {e}"))?,
        fingerprint: fingerprint.to_owned(),
    })
}

/// Counters shared by every bot.
#[derive(Default)]
pub(super) struct Totals {
    requests: AtomicU64,
    errors: AtomicU64,
    /// Players that resumed their session on a fallback node.
    moved: AtomicU64,
    /// The first few distinct errors, for the summary.
    samples: Mutex<Vec<String>>,
    pub(super) connected: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
    /// Arena: the lobby's answers, apart (they all come during the ramp,
    /// queued behind each other at one singleton; Colyseus's matchmaking is
    /// not timed either).
    find_us: Mutex<Vec<u32>>,
    window_us: Mutex<Vec<u32>>,
    /// What swarm players received (task-per-player clients keep their own
    /// counts): datagrams, payload bytes (datagrams and stream), UDP
    /// payload bytes with QUIC's headers, room states; and the UDP
    /// packets they received and sent (acks and requests included).
    pub(super) datagrams_in: AtomicU64,
    pub(super) bytes_in: AtomicU64,
    pub(super) wire_in: AtomicU64,
    pub(super) packets_in: AtomicU64,
    pub(super) packets_out: AtomicU64,
    pub(super) states: AtomicU64,
}

impl Totals {
    pub(super) fn error(&self, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let text = e.to_string();
        let mut samples = self.samples.lock().expect("stats poisoned");
        if samples.len() < 5 && !samples.contains(&text) {
            samples.push(text);
        }
    }

    /// A lobby `find` answered (counted as a request, timed apart).
    pub(super) fn record_find(&self, started: Instant) {
        let us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.find_us.lock().expect("stats poisoned").push(us);
    }

    pub(super) fn record(&self, started: Instant) {
        let us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.latencies_us.lock().expect("stats poisoned").push(us);
        self.window_us.lock().expect("stats poisoned").push(us);
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

fn read_trimmed(path: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

pub(super) async fn run(a: BotArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.fallback.is_empty() || a.transport == Via::Quic,
        "--fallback is for QUIC bots (browsers reconnect by URL)"
    );
    anyhow::ensure!(
        !a.swarm || (a.transport == Via::Quic && a.fallback.is_empty()),
        "--swarm plays over QUIC without --fallback (it does not resume sessions)"
    );
    let data = super::data_dir(a.data.as_deref());
    let addr = match a.addr {
        Some(x) => x,
        None => {
            let mut bound: std::net::SocketAddr = read_trimmed(&data.join("quic.addr"))
                .context("no --addr and no DATA/quic.addr: is a node running here?")?
                .parse()
                .context("DATA/quic.addr is not an address")?;
            // A node bound to every address (0.0.0.0, ::) is reached on
            // this host through loopback: no packet can be sent to 0.0.0.0.
            if bound.ip().is_unspecified() {
                bound.set_ip(match bound {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            bound
        }
    };
    let fingerprint = match &a.fingerprint {
        Some(f) => f.clone(),
        None => read_trimmed(&data.join("gateway.fingerprint"))
            .context("no --fingerprint and no DATA/gateway.fingerprint")?,
    };
    let web = match (a.transport, a.web) {
        (Via::Websocket, None) => Some(
            read_trimmed(&data.join("web.addr"))
                .context("no --web and no DATA/web.addr: is the node's web port on?")?
                .parse()
                .context("DATA/web.addr is not an address")?,
        ),
        (_, w) => w,
    };
    let totals = Arc::new(Totals::default());
    let clients: Arc<Mutex<Vec<Client>>> = Arc::new(Mutex::new(Vec::new()));
    let run_id: u32 = rand::random();
    let started = Instant::now();
    let stop_at = (a.duration > 0).then(|| started + Duration::from_secs(a.duration));
    let gap = Duration::from_micros(1_000_000 / a.connect_rate.max(1));
    // One UDP socket per 256 players: thousands of bots without thousands of fds.
    let sockets = a.players.div_ceil(256).max(1);
    let (stop_swarm, swarm_stopped) = tokio::sync::watch::channel(false);
    let mut swarm = None;
    if a.swarm {
        let plan = super::swarm::Plan {
            addr,
            config: anthill_client::quic_client_config(&Trust::Fingerprint(fingerprint.clone()))?,
            scenario: a.scenario,
            payload: a.payload,
            move_share: a.move_share,
            rate: a.rate,
            ack_every: a.ack_every,
            ack_delay: Duration::from_millis(a.ack_delay_ms),
            run_id,
            stop_at,
        };
        swarm = Some(tokio::spawn(super::swarm::run(
            plan,
            a.players,
            gap,
            totals.clone(),
            swarm_stopped,
        )));
    }
    let dialers: Vec<Dial> = match a.transport {
        Via::Quic => (0..sockets)
            .map(|_| anthill_client::endpoint().map(Dial::Quic))
            .collect::<Result<_, _>>()?,
        Via::Webtransport => (0..sockets)
            .map(|_| {
                anthill_client::webtransport_endpoint(&Trust::Fingerprint(fingerprint.clone()))
                    .map(Dial::WebTransport)
            })
            .collect::<Result<_, _>>()?,
        Via::Websocket => vec![Dial::WebSocket(web.expect("resolved above"))],
    };
    let mut tasks = Vec::new();
    for i in 0..if a.swarm { 0 } else { a.players } {
        let dial = dialers[i % dialers.len()].clone();
        let (totals, clients) = (totals.clone(), clients.clone());
        let trust = Trust::Fingerprint(fingerprint.clone());
        let (scenario, payload, move_share, rate) = (a.scenario, a.payload, a.move_share, a.rate);
        let (ack_every, ack_delay) = (a.ack_every, Duration::from_millis(a.ack_delay_ms));
        // Each bot tries the fallbacks from its own place in the list, so a
        // dead node's players spread over the others.
        let mut fallbacks = a.fallback.clone();
        let n = fallbacks.len();
        if n > 0 {
            fallbacks.rotate_left(i % n);
        }
        tasks.push(tokio::spawn(async move {
            let outcome = async {
                let client = dial.connect(addr, trust).await?;
                client.set_ack_every(ack_every);
                client.set_ack_delay(ack_delay);
                let bot = Bot {
                    i,
                    run_id,
                    client,
                    fallbacks,
                };
                bot.play(
                    scenario, payload, move_share, rate, stop_at, &totals, &clients,
                )
                .await
            }
            .await;
            if let Err(e) = outcome {
                totals.error(format!("bot {i}: {e:#}"));
            }
        }));
        tokio::time::sleep(gap).await;
    }

    // Live progress once a second until the end (or Ctrl-C).
    let mut last = (Instant::now(), 0u64, 0u64, 0u64);
    // The steady state begins once every player is in (or, if some never
    // get in, two seconds after the last was due to connect): from there on
    // the room-state rate is what a connected player sees.
    let ramp = started + gap * a.players as u32 + Duration::from_secs(2);
    let mut steady: Option<(Instant, u64)> = None;
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let (dgrams, bytes) = client_bytes(&clients, &totals);
        let reqs = totals.requests.load(Ordering::Relaxed);
        let secs = last.0.elapsed().as_secs_f64();
        let mut window = std::mem::take(&mut *totals.window_us.lock().expect("stats poisoned"));
        window.sort_unstable();
        if !a.quiet && !a.json {
            let players = totals.connected.load(Ordering::Relaxed);
            eprintln!(
                "[{:>3}s] players {}/{} · {:.0} req/s · p50 {:.2} ms p99 {:.2} ms · {:.0} datagrams/s · {:.0} B/player/s · errors {}",
                started.elapsed().as_secs(),
                players,
                a.players,
                (reqs - last.1) as f64 / secs,
                percentile(&window, 0.5),
                percentile(&window, 0.99),
                (dgrams - last.2) as f64 / secs,
                (bytes - last.3) as f64 / secs / players.max(1) as f64,
                totals.errors.load(Ordering::Relaxed),
            );
        }
        last = (Instant::now(), reqs, dgrams, bytes);
        if steady.is_none()
            && (totals.connected.load(Ordering::Relaxed) >= a.players as u64
                || Instant::now() >= ramp)
        {
            steady = Some((Instant::now(), states_so_far(&clients, &totals)));
        }
        let finished = match &swarm {
            Some(s) => s.is_finished(),
            None => tasks.iter().all(|t| t.is_finished()),
        };
        if stop_at.is_some_and(|s| Instant::now() >= s) || finished {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Before closing: a closed client's last connection is no longer live.
    let wire: u64 = clients
        .lock()
        .expect("clients poisoned")
        .iter()
        .map(Client::wire_bytes_in)
        .sum::<u64>()
        + totals.wire_in.load(Ordering::Relaxed);
    let _ = stop_swarm.send(true);
    if let Some(s) = swarm {
        match tokio::time::timeout(Duration::from_secs(5), s).await {
            Ok(Ok(Err(e))) => totals.error(format!("swarm: {e:#}")),
            Ok(Err(e)) => totals.error(format!("swarm task: {e}")),
            _ => {}
        }
    }
    for c in clients.lock().expect("clients poisoned").iter() {
        c.close();
    }
    for t in tasks {
        t.abort();
    }
    let (dgrams, bytes) = client_bytes(&clients, &totals);
    let states = states_so_far(&clients, &totals);
    let steady_states =
        steady.map(|(at, before)| (states - before) as f64 / at.elapsed().as_secs_f64().max(0.001));
    let mut all = std::mem::take(&mut *totals.latencies_us.lock().expect("stats poisoned"));
    let mut finds = std::mem::take(&mut *totals.find_us.lock().expect("stats poisoned"));
    finds.sort_unstable();
    all.sort_unstable();
    let reqs = totals.requests.load(Ordering::Relaxed);
    let players = totals.connected.load(Ordering::Relaxed).max(1);
    let summary = serde_json::json!({
        "scenario": format!("{:?}", a.scenario).to_lowercase(),
        "transport": transport_of(a.transport).name(),
        "players": a.players,
        "connected": totals.connected.load(Ordering::Relaxed),
        "seconds": elapsed,
        "requests": reqs,
        "requests_per_sec": reqs as f64 / elapsed,
        "p50_ms": percentile(&all, 0.5),
        "p99_ms": percentile(&all, 0.99),
        // Arena: the lobby's answers (p50/p99 above are in-room requests).
        "find_p50_ms": percentile(&finds, 0.5),
        "find_p99_ms": percentile(&finds, 0.99),
        "datagrams_per_sec": dgrams as f64 / elapsed,
        "bytes_per_player_per_sec": bytes as f64 / elapsed / players as f64,
        "wire_bytes_per_player_per_sec": wire as f64 / elapsed / players as f64,
        // Swarm only (0 otherwise): UDP packets each way, QUIC's ACKs included.
        "packets_in_per_player_per_sec": totals.packets_in.load(Ordering::Relaxed) as f64 / elapsed / players as f64,
        "packets_out_per_player_per_sec": totals.packets_out.load(Ordering::Relaxed) as f64 / elapsed / players as f64,
        "states_per_player_per_sec": states as f64 / elapsed / players as f64,
        // Once every player was in: what a connected player receives.
        "steady_states_per_player_per_sec": steady_states.map(|s| s / players as f64),
        "engine": if a.swarm { "swarm" } else { "client-per-task" },
        // What this load generator cost, to compare with the node it loaded.
        "cpu_seconds": own_cpu_seconds(),
        "errors": totals.errors.load(Ordering::Relaxed),
        "moved": totals.moved.load(Ordering::Relaxed),
        "error_samples": *totals.samples.lock().expect("stats poisoned"),
    });
    if a.json {
        println!("{summary}");
    } else {
        println!(
            "bot summary: {} players ({} connected) for {:.1} s: {} requests ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms, {:.0} datagrams/s, {:.0} B/player/s in, {} errors",
            a.players,
            summary["connected"],
            elapsed,
            reqs,
            reqs as f64 / elapsed,
            percentile(&all, 0.5),
            percentile(&all, 0.99),
            dgrams as f64 / elapsed,
            bytes as f64 / elapsed / players as f64,
            summary["errors"],
        );
        let moved = totals.moved.load(Ordering::Relaxed);
        if moved > 0 {
            println!("  {moved} players resumed their session on a fallback node");
        }
        for s in totals.samples.lock().expect("stats poisoned").iter() {
            println!("  e.g. {s}");
        }
    }
    let connected = totals.connected.load(Ordering::Relaxed);
    if connected < a.players as u64 {
        anyhow::bail!(
            "{} of {} players never connected to {addr} (is a node serving players there, with this certificate fingerprint?)",
            a.players as u64 - connected,
            a.players
        );
    }
    let errors = totals.errors.load(Ordering::Relaxed);
    if errors > 0 && !a.allow_errors {
        anyhow::bail!(
            "{errors} requests failed{} (--allow-errors to exit 0 anyway)",
            a.scenario.needs()
        );
    }
    Ok(())
}

/// This process's CPU time so far (user + system), from procfs.
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): utime, stime
    // are the 12th and 13th, in clock ticks of 1/100 s.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn transport_of(via: Via) -> Transport {
    match via {
        Via::Quic => Transport::Quic,
        Via::Webtransport => Transport::WebTransport,
        Via::Websocket => Transport::WebSocket,
    }
}

/// Room states (snapshots and deltas) every player applied so far.
fn states_so_far(clients: &Mutex<Vec<Client>>, totals: &Totals) -> u64 {
    totals.states.load(Ordering::Relaxed)
        + clients
            .lock()
            .expect("clients poisoned")
            .iter()
            .map(|c| c.stats().state_frames.load(Ordering::Relaxed))
            .sum::<u64>()
}

/// Datagrams and bytes (datagrams + stream) received by every player so far.
fn client_bytes(clients: &Mutex<Vec<Client>>, totals: &Totals) -> (u64, u64) {
    let clients = clients.lock().expect("clients poisoned");
    let swarm = (
        totals.datagrams_in.load(Ordering::Relaxed),
        totals.bytes_in.load(Ordering::Relaxed),
    );
    clients.iter().fold(swarm, |(d, b), c| {
        let s = c.stats();
        (
            d + s.datagrams_in.load(Ordering::Relaxed),
            b + s.datagram_bytes_in.load(Ordering::Relaxed)
                + s.stream_bytes_in.load(Ordering::Relaxed),
        )
    })
}

/// What a bot connects through: a shared endpoint, or the web port.
#[derive(Clone)]
enum Dial {
    Quic(quinn::Endpoint),
    WebTransport(Arc<wtransport::Endpoint<wtransport::endpoint::endpoint_side::Client>>),
    WebSocket(SocketAddr),
}

impl Dial {
    async fn connect(self, quic: SocketAddr, trust: Trust) -> anyhow::Result<Client> {
        Ok(match self {
            Dial::Quic(e) => Client::connect_via(e, quic, trust).await?,
            Dial::WebTransport(e) => Client::connect_webtransport(e, quic).await?,
            // The web port is plain HTTP with the node's own certificate.
            Dial::WebSocket(web) => Client::connect_websocket(web, None).await?,
        })
    }
}

/// One simulated player.
struct Bot {
    i: usize,
    run_id: u32,
    client: Client,
    fallbacks: Vec<Fallback>,
}

impl Bot {
    /// After a request failed: if the node stopped answering and there are
    /// fallbacks, resume the session on the first that takes it.
    async fn fail_over(&self, e: &ClientError, totals: &Totals) {
        if !matches!(e, ClientError::ConnectionLost | ClientError::Timeout(_)) {
            return;
        }
        for f in &self.fallbacks {
            let moved = self
                .client
                .move_to(f.addr, Trust::Fingerprint(f.fingerprint.clone()));
            if moved.is_ok() && matches!(self.client.resume().await, Ok(true)) {
                totals.moved.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn play(
        &self,
        scenario: Scenario,
        payload: usize,
        move_share: f64,
        rate: f64,
        stop_at: Option<Instant>,
        totals: &Totals,
        clients: &Mutex<Vec<Client>>,
    ) -> anyhow::Result<()> {
        let (i, run_id, client) = (self.i, self.run_id, &self.client);
        clients
            .lock()
            .expect("clients poisoned")
            .push(client.clone());
        client
            .login_device(&format!("bot-{run_id:08x}-{i}"))
            .await?;
        totals.connected.fetch_add(1, Ordering::Relaxed);
        let running = || stop_at.is_none_or(|s| Instant::now() < s);
        match scenario {
            Scenario::Echo => {
                let body = vec![b'x'; payload];
                let mut pace = (rate > 0.0).then(|| {
                    let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
                    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    i
                });
                while running() {
                    if let Some(p) = pace.as_mut() {
                        p.tick().await;
                    }
                    let t = Instant::now();
                    match client.request("echo", body.clone()).await {
                        Ok(_) => totals.record(t),
                        Err(e) => {
                            self.fail_over(&e, totals).await;
                            totals.error(e);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
            Scenario::Idle => {
                while running() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Scenario::Arena => {
                let t = Instant::now();
                let room = String::from_utf8(client.request("lobby", b"find".to_vec()).await?)?;
                totals.record_find(t);
                client.join(&room).await?;
                let mut rng = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let mut next = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    (rng % 10_000) as f64 / 10_000.0
                };
                let mut moving = false;
                while running() {
                    tokio::time::sleep(Duration::from_millis(500 + (next() * 1000.0) as u64)).await;
                    let want = next() < move_share;
                    let cmd = if want {
                        format!(
                            "move {:.0} {:.0}",
                            next() * 200.0 - 100.0,
                            next() * 200.0 - 100.0
                        )
                    } else if moving {
                        "stop".to_owned()
                    } else {
                        continue;
                    };
                    moving = want;
                    let t = Instant::now();
                    match client.request(&room, cmd.into_bytes()).await {
                        Ok(_) => totals.record(t),
                        Err(e) => {
                            self.fail_over(&e, totals).await;
                            totals.error(e);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
