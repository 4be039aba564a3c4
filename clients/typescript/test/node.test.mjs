// The SDK against a real node over WebSocket (started by
// tests/e2e/typescript_sdk.rs, which passes its web address in ANTHILL_WEB):
// logins, requests and their errors, a room mirrored from deltas, and resume
// after a dropped connection.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AnthillError, Client } from "../dist/index.js";

const web = process.env.ANTHILL_WEB;
if (!web) throw new Error("ANTHILL_WEB (the node's web address, http://HOST:PORT) is not set: run through tests/e2e/typescript_sdk.rs");

const connect = () => Client.connect(web, { transport: "websocket" });
const text = (b) => new TextDecoder().decode(b);

async function until(what, check, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const x = (state) => new DataView(state.buffer, state.byteOffset).getInt16(0, true) / 10;

test("a device login gives a stable player; requests answer; errors name their code", async () => {
  const a = await connect();
  const b = await connect();
  try {
    assert.equal(a.transport, "websocket");
    await assert.rejects(a.request("echo", "early"), (e) => e instanceof AnthillError && e.kind === "NotLoggedIn");
    const player = await a.loginDevice("sdk-device-1");
    assert.equal(typeof player, "bigint");
    assert.equal(a.player, player);
    assert.ok(a.token.token.length > 10 && a.token.expiresAtMs > BigInt(Date.now()));
    assert.equal(await b.loginDevice("sdk-device-2") === player, false, "another device is another player");

    assert.equal(await a.requestText("echo", "over websocket"), "over websocket");
    assert.equal(await a.requestText("counter/sdk", "incr"), "1");
    assert.equal(await b.requestText("counter/sdk", "incr"), "2");
    const big = new Uint8Array(20000).map((_, i) => i % 251);
    assert.deepEqual(await a.request("echo", big), big);

    await assert.rejects(a.request("no-such-module", "x"), (e) => e.kind === "Failed" && e.code === "NotFound" && /no-such-module/.test(e.message));
    await assert.rejects(a.request("misbehave", "trap"), (e) => e.kind === "Failed" && e.code === "Internal");
    await assert.rejects(a.request("misbehave", "loop", { timeoutMs: 30 }), (e) => e.kind === "Timeout" && /within 30 ms/.test(e.message));
    assert.equal(await a.requestText("echo", "still fine"), "still fine", "a timed-out request leaves the session usable");
    const rtt = await a.ping();
    assert.ok(rtt >= 0 && rtt < 1000, `rtt ${rtt}`);
  } finally {
    a.close();
    b.close();
  }
});

test("a login through the node's login module", async () => {
  const c = await connect();
  try {
    assert.equal(await c.loginCustom("4242"), 4242n);
    assert.equal(await c.requestText("echo", "hi"), "hi");
  } finally {
    c.close();
  }
  const refused = await connect();
  const closed = new Promise((r) => refused.on("closed", r));
  // echo answers "not-a-player", which is no player id: the node refuses the login.
  await assert.rejects(refused.loginCustom("not-a-player"), (e) => e.kind === "Closed" && e.code !== undefined && /player id/.test(e.message));
  assert.equal((await closed).kind, "Closed");
  assert.equal(refused.closedReason.code, (await closed).code);
  refused.close();
});

test("a room is mirrored from snapshots and deltas, acknowledged, and moves", async () => {
  const c = await connect();
  try {
    await c.loginDevice("sdk-room-player");
    const slot = c.nextPush(10000);
    const room = await c.join("arena/sdk-room");
    assert.equal(typeof room, "number");
    const push = await slot;
    assert.ok(push && /^slot \d+$/.test(text(push.payload)), `the arena pushes the slot: ${push && text(push.payload)}`);
    const me = BigInt(text(push.payload).split(" ")[1]);
    let updates = 0;
    c.on("state", (s) => {
      assert.equal(s.room, room);
      assert.equal(s.name, "arena/sdk-room");
      updates++;
    });
    await until("20 state updates", () => updates >= 20);
    const state = c.roomState(room);
    assert.ok(state.entities.size >= 65, `64 pickups and me: ${state.entities.size}`);
    assert.ok(state.entities.has(me));
    assert.ok(c.stats.deltas > c.stats.snapshots, `acks make the node send deltas: ${JSON.stringify(c.stats)}`);
    // One state in two is acknowledged (ackEvery 2), the snapshot at once.
    const applied = c.stats.snapshots + c.stats.deltas;
    assert.ok(c.stats.acksSent >= applied / 2 - 1 && c.stats.acksSent < applied, `acks ${JSON.stringify(c.stats)}`);

    const before = x(c.roomState(room).entities.get(me));
    await c.requestText("arena/sdk-room", "move 100 0");
    await until("my entity moving right", () => x(c.roomState(room).entities.get(me)) > before + 5);
    await c.requestText("arena/sdk-room", "stop");

    const left = new Promise((r) => c.on("left", r));
    await c.leave(room);
    assert.equal((await left).room, room);
    assert.equal(c.roomState(room), undefined);
  } finally {
    c.close();
  }
});

test("a dropped connection resumes by itself: rooms, pushes and requests continue", async () => {
  const c = await connect();
  try {
    await c.loginDevice("sdk-resume-player");
    const room = await c.join("arena/sdk-resume");
    await c.stateChanged(5000);
    await until("a state", () => c.roomState(room));
    const tickBefore = c.roomState(room).tick;
    const count = Number(await c.requestText("counter/resume", "incr"));

    const events = [];
    c.on("disconnected", (d) => events.push(["disconnected", d.resuming]));
    const resumed = new Promise((r) => c.on("resumed", r));
    c.simulateNetworkLoss();
    const info = await resumed;
    assert.equal(info.resumed, true, "the node still had the session");
    assert.equal(info.transport, "websocket");
    assert.deepEqual(events, [["disconnected", true]]);
    assert.ok(c.isConnected);
    assert.equal(c.stats.resumes, 1);

    assert.deepEqual(c.roomHandles, [room], "still in the room");
    await until("state after the resume", () => c.roomState(room)?.tick > tickBefore + 5n);
    assert.equal(await c.requestText("counter/resume", "incr"), String(count + 1));
  } finally {
    c.close();
  }
  assert.equal(c.isConnected, false);
});

test("a node that is not there is a Connect error naming the address", async () => {
  await assert.rejects(Client.connect("http://127.0.0.1:9", { transport: "websocket" }), (e) => e.kind === "Connect" && /127\.0\.0\.1:9/.test(e.message));
});
