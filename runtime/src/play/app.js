// The browser arena: the TypeScript SDK (served beside this file from the
// node, no CDN) connects over WebTransport, or WebSocket when forced or
// missing; the lobby places the player in an `arena` room with the bots; the
// canvas draws the room's mirror; keys and touches become `move DX DY`.
// window.anthillDemo tells tests (and the curious) what the page sees.
import { Client } from "/play/sdk/index.js";

const SPEED = 100; // the arena's top speed, units/s
const FIELD = 1000;
const PICKUP = 100n; // entity ids from 100 are pickups, below are player slots

const params = new URLSearchParams(location.search);
const demo = (window.anthillDemo = {
  connected: false,
  transport: null,
  playerId: null,
  room: null,
  slot: null,
  entities: 0,
  ticks: 0,
  me: null,
  othersMoved: 0,
  disconnects: 0,
  resumes: 0,
  rtt: null,
  error: null,
});
const $ = (id) => document.getElementById(id);
const canvas = $("arena");
const ctx = canvas.getContext("2d");
const pos = (state) => {
  const v = new DataView(state.buffer, state.byteOffset, state.byteLength);
  return { x: v.getInt16(0, true) / 10, y: v.getInt16(2, true) / 10 };
};

function status(text, state) {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

let client;
let roomName;
let handle;
let previous = new Map();

function onState(s) {
  demo.ticks++;
  demo.entities = s.entities.size;
  let players = 0;
  let moved = false;
  for (const [id, bytes] of s.entities) {
    if (id >= PICKUP) continue;
    players++;
    const p = pos(bytes);
    if (id === demo.slot) demo.me = p;
    else {
      const before = previous.get(id);
      if (before && (before.x !== p.x || before.y !== p.y)) moved = true;
      previous.set(id, p);
    }
  }
  if (moved) demo.othersMoved++;
  $("players").textContent = players;
  $("ticks").textContent = demo.ticks;
}

function draw() {
  const s = handle !== undefined && client?.roomState(handle);
  const k = canvas.width / FIELD;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (s) {
    for (const [id, bytes] of s.entities) {
      const p = pos(bytes);
      const mine = id === demo.slot;
      ctx.beginPath();
      ctx.arc(p.x * k, p.y * k, id >= PICKUP ? 3 : mine ? 9 : 6, 0, 2 * Math.PI);
      ctx.fillStyle = id >= PICKUP ? "#ebcb8b" : mine ? "#a3be8c" : "#5e81ac";
      ctx.fill();
      if (mine) {
        ctx.strokeStyle = "#eceff4";
        ctx.stroke();
      }
    }
  }
  requestAnimationFrame(draw);
}

// Movement: the keys held (or the touch) give a direction; a change is one request.
const held = new Set();
const KEYS = { ArrowLeft: [-1, 0], a: [-1, 0], ArrowRight: [1, 0], d: [1, 0], ArrowUp: [0, -1], w: [0, -1], ArrowDown: [0, 1], s: [0, 1] };
let sent = "stop";
function steer(dx, dy) {
  const len = Math.hypot(dx, dy);
  const cmd = len === 0 ? "stop" : `move ${Math.round((dx / len) * SPEED)} ${Math.round((dy / len) * SPEED)}`;
  if (cmd === sent || !client?.isConnected || !roomName) return;
  sent = cmd;
  client.requestText(roomName, cmd).catch((e) => console.warn("move not sent:", e.message));
}
function steerByKeys() {
  let dx = 0;
  let dy = 0;
  for (const k of held) [dx, dy] = [dx + KEYS[k][0], dy + KEYS[k][1]];
  steer(dx, dy);
}
addEventListener("keydown", (e) => {
  if (KEYS[e.key] && !held.has(e.key)) {
    held.add(e.key);
    steerByKeys();
    e.preventDefault();
  }
});
addEventListener("keyup", (e) => {
  if (held.delete(e.key)) steerByKeys();
});
addEventListener("blur", () => {
  held.clear();
  steerByKeys();
});
function touch(e) {
  const t = e.touches[0] ?? e.changedTouches[0];
  if (!t || !demo.me) return;
  const r = canvas.getBoundingClientRect();
  const x = ((t.clientX - r.left) / r.width) * FIELD;
  const y = ((t.clientY - r.top) / r.height) * FIELD;
  steer(x - demo.me.x, y - demo.me.y);
  e.preventDefault();
}
canvas.addEventListener("touchstart", touch, { passive: false });
canvas.addEventListener("touchmove", touch, { passive: false });
canvas.addEventListener("touchend", () => steer(0, 0));

async function main() {
  const transport = params.get("transport") ?? "auto";
  client = await Client.connect(location.origin, { transport });
  demo.transport = client.transport;
  $("transport").textContent = client.transport;
  client.on("rtt", (ms) => {
    demo.rtt = ms;
    $("rtt").textContent = `${ms.toFixed(1)} ms`;
  });
  client.on("disconnected", ({ reason, resuming }) => {
    demo.connected = false;
    demo.disconnects++;
    status(resuming ? `reconnecting (${reason})` : `disconnected: ${reason}`, "disconnected");
  });
  client.on("resumed", ({ transport }) => {
    demo.connected = true;
    demo.resumes++;
    demo.transport = transport;
    $("transport").textContent = transport;
    status("connected", "connected");
  });
  client.on("closed", (e) => {
    demo.error = e.message;
    status(e.message, "error");
  });
  client.on("push", (p) => {
    const text = new TextDecoder().decode(p.payload);
    const slot = /^slot (\d+)$/.exec(text);
    if (slot) demo.slot = BigInt(slot[1]);
  });
  client.on("state", onState);

  // One player per tab, the same across reloads of that tab.
  let device = sessionStorage.getItem("anthill-device");
  if (!device) sessionStorage.setItem("anthill-device", (device = `browser-${crypto.randomUUID()}`));
  demo.playerId = String(await client.loginDevice(device));
  roomName = await client.requestText("lobby", "find");
  handle = await client.join(roomName);
  demo.room = roomName;
  $("room").textContent = roomName;
  demo.connected = true;
  status("connected", "connected");
  client.ping().catch(() => {});
  requestAnimationFrame(draw);
}

main().catch((e) => {
  demo.error = e.message;
  status(e.message, "error");
  console.error("the arena could not start:", e);
});
