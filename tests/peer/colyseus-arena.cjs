// The arena of docs/perf.md as a Colyseus 0.18 room, the peer `anthill-bench
// peer` measures Anthill against. It plays what sample-modules/arena plays:
// rooms of 50 (matchmaking fills a room before it opens the next), 20 ticks a
// second, 64 pickups that respawn when a player reaches them, entities keyed
// by small ids (slots 0–49, pickups 100+) with x, y as int16 tenths of a unit
// on a 1000×1000 field; `move` sets a velocity (clamped to 100), `stop`
// clears it, and both answer (Colyseus's request → reply) as Anthill's room
// answers a request.
//
// A tick is the step plus the patch sent to the room's members, timed
// together as Anthill's `anthill_tick_seconds` times `on-tick` plus sending
// the state (patchRate = null, the patch sent from the simulation interval).
//
// Env: PORT (0: any; the chosen port is printed as `listening PORT`), TLS_CERT
// and TLS_KEY (PEM files: wss instead of ws). On SIGTERM it prints one JSON
// line of tick statistics and exits. Run through target/toolchains/colyseus/run.
"use strict";
const http = require("node:http");
const https = require("node:https");
const fs = require("node:fs");
const { Server, Room } = require("@colyseus/core");
const { WebSocketTransport } = require("@colyseus/ws-transport");
const { schema, t, MapSchema } = require("@colyseus/schema");

const FIELD = 1000, MAX_SPEED = 100, PICKUPS = 64, PICKUP_ID = 100, MAX_PLAYERS = 50;

const Entity = schema({ x: t.int16(), y: t.int16() }, "Entity");
const ArenaState = schema({ entities: t.map(Entity) }, "ArenaState");

const tenths = (v) => Math.round(v * 10);
const ticksUs = [];
let rooms = 0;

function scatter(seed, i) {
  // Any spread will do; the Rust arena's hash is not what is measured.
  const h = Math.imul(seed ^ Math.imul(i, 0x9e3779b9), 0x85ebca6b) >>> 0;
  return (h % 10000) / 10;
}

class Arena extends Room {
  maxClients = MAX_PLAYERS;
  patchRate = null;
  messages = {
    move: (client, m) => {
      const b = this.bodies.get(client.sessionId);
      if (!b) return "not in this arena";
      b.vx = Math.max(-MAX_SPEED, Math.min(MAX_SPEED, Number(m?.x) || 0));
      b.vy = Math.max(-MAX_SPEED, Math.min(MAX_SPEED, Number(m?.y) || 0));
      return "";
    },
    stop: (client) => {
      const b = this.bodies.get(client.sessionId);
      if (b) b.vx = b.vy = 0;
      return "";
    },
  };

  onCreate() {
    rooms += 1;
    this.seed = rooms * 7919;
    this.collected = 0;
    this.bodies = new Map();
    this.state = new ArenaState();
    this.state.entities = new MapSchema();
    this.pickups = [];
    for (let i = 0; i < PICKUPS; i++) {
      const p = { id: String(PICKUP_ID + i), x: scatter(this.seed, 2 * i), y: scatter(this.seed, 2 * i + 1) };
      this.pickups.push(p);
      this.state.entities.set(p.id, new Entity({ x: tenths(p.x), y: tenths(p.y) }));
    }
    this.last = Date.now();
    this.setSimulationInterval(() => this.tick(), 50);
  }

  onJoin(client) {
    const used = new Set([...this.bodies.values()].map((b) => b.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    const b = { slot, x: scatter(this.seed + slot, 1), y: scatter(this.seed + slot, 2), vx: 0, vy: 0 };
    this.bodies.set(client.sessionId, b);
    this.state.entities.set(String(slot), new Entity({ x: tenths(b.x), y: tenths(b.y) }));
    client.send("slot", slot);
  }

  onLeave(client) {
    const b = this.bodies.get(client.sessionId);
    if (!b) return;
    this.bodies.delete(client.sessionId);
    this.state.entities.delete(String(b.slot));
  }

  tick() {
    const started = process.hrtime.bigint();
    const now = Date.now();
    const dt = Math.min((now - this.last) / 1000, 0.25);
    this.last = now;
    for (const b of this.bodies.values()) {
      if (b.vx === 0 && b.vy === 0) continue;
      b.x = Math.max(0, Math.min(FIELD - 0.1, b.x + b.vx * dt));
      b.y = Math.max(0, Math.min(FIELD - 0.1, b.y + b.vy * dt));
      const e = this.state.entities.get(String(b.slot));
      e.x = tenths(b.x);
      e.y = tenths(b.y);
    }
    for (const p of this.pickups) {
      for (const b of this.bodies.values()) {
        if (Math.abs(b.x - p.x) < 2 && Math.abs(b.y - p.y) < 2) {
          this.collected += 1;
          p.x = scatter(this.seed + this.collected, 1);
          p.y = scatter(this.seed + this.collected, 2);
          const e = this.state.entities.get(p.id);
          e.x = tenths(p.x);
          e.y = tenths(p.y);
          break;
        }
      }
    }
    this.broadcastPatch();
    ticksUs.push(Number(process.hrtime.bigint() - started) / 1000);
  }
}

function quantile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
}

(async () => {
  const { PORT = "0", TLS_CERT, TLS_KEY } = process.env;
  const server = TLS_CERT
    ? https.createServer({ cert: fs.readFileSync(TLS_CERT), key: fs.readFileSync(TLS_KEY) })
    : http.createServer();
  const game = new Server({ transport: new WebSocketTransport({ server }), greet: false });
  game.define("arena", Arena);
  await game.listen(Number(PORT), "127.0.0.1");
  console.log(`listening ${server.address().port}`);
  process.on("SIGTERM", () => {
    const sorted = ticksUs.slice().sort((a, b) => a - b);
    console.log(JSON.stringify({
      rooms,
      ticks: sorted.length,
      tick_p50_ms: quantile(sorted, 0.5) / 1000,
      tick_p99_ms: quantile(sorted, 0.99) / 1000,
    }));
    process.exit(0);
  });
})().catch((e) => {
  console.error(`colyseus-arena: ${e.stack || e}`);
  process.exit(1);
});
