// The load generator for the Colyseus peer (colyseus-arena.cjs): PLAYERS
// clients of the Colyseus SDK in this one process, each joining an arena
// through matchmaking, moving now and then exactly as `anthill bot
// --scenario arena` does (every 0.5–1.5 s, a move in MOVE_SHARE of the
// decisions, else a stop if it was moving), timing each move/stop request to
// its reply, and counting the state patches and bytes it receives (patches
// are counted, not decoded: see below).
//
// Env: URL (ws://… or wss://…; trust a self-signed certificate with
// NODE_EXTRA_CA_CERTS), PLAYERS, SECONDS, CONNECT_RATE (joins per second),
// MOVE_SHARE, WORKERS (threads the players are spread over, default 2). Prints one JSON summary line, shaped like `anthill bot --json`.
// Run through target/toolchains/colyseus/run.
"use strict";
const { Worker, isMainThread, workerData, parentPort } = require("node:worker_threads");
const { Client } = require("@colyseus/sdk");

// Colyseus's protocol code of a state patch (@colyseus/shared-types).
const ROOM_STATE_PATCH = 15;

const env = process.env;
const url = env.URL;
const players = Number(env.PLAYERS || 10);
const seconds = Number(env.SECONDS || 10);
const connectRate = Number(env.CONNECT_RATE || 1000);
const moveShare = Number(env.MOVE_SHARE || 0.1);
// One event loop saturates near 1,000 players: the players are spread over
// worker threads (the process's CPU counts them all).
const workers = Number(env.WORKERS || 2);

// Counters every thread adds to: connected, states, bytes, errors.
const [CONNECTED, STATES, BYTES, ERRORS] = [0, 1, 2, 3];
const shared = isMainThread ? new SharedArrayBuffer(16) : workerData.shared;
const counters = new Int32Array(shared);
const count = (slot, n = 1) => Atomics.add(counters, slot, n);
const read = (slot) => Atomics.load(counters, slot);

const latenciesUs = [];
const samples = [];
const rooms = [];
const started = isMainThread ? Date.now() : workerData.started;
const stopAt = started + seconds * 1000;
const gap = 1000 / connectRate;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function error(e) {
  count(ERRORS);
  const text = String(e && e.message ? e.message : e);
  if (samples.length < 5 && !samples.includes(text)) samples.push(text);
}

async function play(i) {
  const client = new Client(url);
  const room = await client.joinOrCreate("arena");
  rooms.push(room);
  count(CONNECTED);
  // State patches are counted, not decoded: over a reliable stream nothing
  // the client does with them reaches the server (Anthill's bots must apply
  // each state: their acks name the states they hold). Everything else goes
  // to the SDK (request replies, the first full state).
  const ws = room.connection.transport.ws;
  const sdk = ws.onmessage;
  ws.onmessage = (e) => {
    const data = e.data;
    count(BYTES, data.byteLength);
    if (new Uint8Array(data, 0, 1)[0] === ROOM_STATE_PATCH) {
      count(STATES);
      return;
    }
    sdk(e);
  };
  room.onMessage("slot", () => {});
  // The same xorshift and pattern as the Rust bot.
  let rng = BigInt(i + 1) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn;
  const next = () => {
    rng ^= (rng << 13n) & 0xffffffffffffffffn;
    rng ^= rng >> 7n;
    rng ^= (rng << 17n) & 0xffffffffffffffffn;
    return Number(rng % 10000n) / 10000;
  };
  let moving = false;
  while (Date.now() < stopAt) {
    await sleep(500 + next() * 1000);
    const want = next() < moveShare;
    let type, payload;
    if (want) {
      type = "move";
      payload = { x: Math.round(next() * 200 - 100), y: Math.round(next() * 200 - 100) };
    } else if (moving) {
      type = "stop";
    } else {
      continue;
    }
    moving = want;
    const t = process.hrtime.bigint();
    try {
      await room.request(type, payload);
      latenciesUs.push(Number(process.hrtime.bigint() - t) / 1000);
    } catch (e) {
      error(e);
    }
  }
}

function quantile(sorted, q) {
  return sorted.length ? sorted[Math.round((sorted.length - 1) * q)] / 1000 : 0;
}

/// A worker: players first, first + workers, … on the shared schedule.
async function worker({ first }) {
  // Joins are started on a schedule, a few per timer turn: a timer per join
  // (1 ms apart) runs at ~100 a second once the event loop is busy.
  let next = first;
  while (next < players) {
    const due = Math.min(players, Math.floor((Date.now() - started) / gap) + 1);
    for (; next < due; next += workers) {
      const i = next;
      play(i).catch((e) => error(`bot ${i}: ${e.message || e}`));
    }
    await sleep(5);
  }
  while (Date.now() < stopAt) await sleep(100);
  parentPort.postMessage({ latenciesUs, samples });
  for (const r of rooms) r.connection.transport.ws.terminate?.();
  process.exit(0);
}

async function main() {
  const done = [];
  for (let w = 0; w < workers; w++) {
    const t = new Worker(__filename, { workerData: { first: w, shared, started } });
    done.push(new Promise((resolve, reject) => {
      t.once("message", resolve);
      t.once("error", reject);
    }));
  }
  // The steady state begins once every player is in (or two seconds after
  // the last was due): from there on the state rate is what a player sees.
  const ramp = started + players * gap + 2000;
  let steady = null;
  let progress = Date.now();
  while (Date.now() < stopAt) {
    await sleep(100);
    if (!steady && (read(CONNECTED) >= players || Date.now() >= ramp)) {
      steady = { at: Date.now(), states: read(STATES) };
    }
    if (Date.now() - progress >= 1000) {
      progress = Date.now();
      console.error(`[colyseus bots] ${read(CONNECTED)}/${players} joined`);
    }
  }
  const results = await Promise.all(done);
  const elapsed = (Date.now() - started) / 1000;
  const sorted = results.flatMap((r) => r.latenciesUs).sort((a, b) => a - b);
  const connected = read(CONNECTED);
  const summary = {
    scenario: "arena",
    transport: url.startsWith("wss") ? "colyseus-wss" : "colyseus-ws",
    players,
    connected,
    seconds: elapsed,
    requests: sorted.length,
    requests_per_sec: sorted.length / elapsed,
    p50_ms: quantile(sorted, 0.5),
    p99_ms: quantile(sorted, 0.99),
    states_per_player_per_sec: read(STATES) / elapsed / Math.max(connected, 1),
    steady_states_per_player_per_sec: steady
      ? (read(STATES) - steady.states) / Math.max((Date.now() - steady.at) / 1000, 0.001) / Math.max(connected, 1)
      : null,
    bytes_per_player_per_sec: read(BYTES) / elapsed / Math.max(connected, 1),
    errors: read(ERRORS),
    error_samples: [...new Set(results.flatMap((r) => r.samples))].slice(0, 5),
    // What this load generator cost, to compare with the server it loaded.
    cpu_seconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  };
  console.log(JSON.stringify(summary));
  process.exit(0);
}

(isMainThread ? main() : worker(workerData)).catch((e) => {
  console.error(`colyseus-bots: ${e.stack || e}`);
  process.exit(1);
});
