// The SDK's encoding against the bytes docs/protocol.md shows, and every
// frame through encode → decode. No node needed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DecodeError, FrameReader, Mirror, decode, encode, encodePrefixed } from "../dist/index.js";

test("a Hello is the bytes the protocol page documents", () => {
  const hello = { type: "Hello", version: 1, auth: { type: "Device", id: "ab" }, lastPush: 0n };
  assert.deepEqual([...encode(hello)], [0, 1, 0, 2, 0x61, 0x62, 0]);
  assert.deepEqual([...encodePrefixed(hello)], [7, 0, 0, 0, 0, 1, 0, 2, 0x61, 0x62, 0]);
});

test("varints use the documented markers", () => {
  assert.deepEqual([...encode({ type: "Ping", nonce: 300n })], [5, 251, 0x2c, 0x01]);
  assert.deepEqual([...encode({ type: "Ping", nonce: 70000n })], [5, 252, 0x70, 0x11, 0x01, 0x00]);
  assert.deepEqual([...encode({ type: "Ping", nonce: 1n << 40n })], [5, 253, 0, 0, 0, 0, 0, 1, 0, 0]);
});

test("every frame decodes to itself", () => {
  const s = (t) => new TextEncoder().encode(t);
  const frames = [
    { type: "Request", id: 70000, target: "counter/a", payload: s("incr") },
    { type: "Join", id: 2, room: "arena/r1" },
    { type: "Leave", id: 3, room: 1 },
    { type: "Ack", room: 1, tick: 123456789012n },
    { type: "Welcome", version: 1, player: 18446744073709551615n, token: "t", expiresAtMs: 1700000000000n, resumed: true },
    { type: "Reply", id: 9, payload: s("ok") },
    { type: "Error", id: 4, code: "RateLimited", message: "slow down" },
    { type: "Push", seq: 0n, payload: new Uint8Array(300) },
    { type: "Joined", id: 2, room: 7, name: "arena/r1" },
    { type: "Left", room: 7 },
    { type: "Snapshot", room: 7, tick: 5n, entities: [{ id: 1n, state: s("xy") }] },
    { type: "Delta", room: 7, tick: 6n, base: 5n, changed: [{ id: 2n, state: s("zz") }], removed: [1n, 300n] },
    { type: "Pong", nonce: 1n },
  ];
  for (const f of frames) assert.deepEqual(decode(encode(f)), f, f.type);
});

test("decoding is strict", () => {
  const ping = encode({ type: "Ping", nonce: 1n });
  assert.throws(() => decode(Uint8Array.from([...ping, 0])), DecodeError, "trailing bytes");
  assert.throws(() => decode(Uint8Array.from([99])), /unknown frame variant 99/);
  assert.throws(() => decode(Uint8Array.from([7, 1, 253, 0, 0, 0, 0, 0, 0, 0, 1])), /exceeds/, "a hostile length");
  assert.throws(() => decode(Uint8Array.from([8, 1, 0, 2, 0xff, 0xfe])), /not UTF-8/);
  assert.throws(() => decode(new Uint8Array(100), 50), /exceeds the 50-byte limit/);
});

test("the frame reader reassembles frames cut anywhere", () => {
  const frames = [{ type: "Pong", nonce: 7n }, { type: "Reply", id: 3, payload: Uint8Array.of(1, 2, 3) }, { type: "Left", room: 9 }];
  const bytes = Uint8Array.from(frames.flatMap((f) => [...encodePrefixed(f)]));
  for (let cut = 1; cut < bytes.length; cut++) {
    const r = new FrameReader(1024);
    const got = [];
    for (let i = 0; i < bytes.length; i += cut) {
      r.push(bytes.subarray(i, i + cut));
      for (let f = r.next(); f !== undefined; f = r.next()) got.push(f);
    }
    assert.deepEqual(got, frames, `cut every ${cut} bytes`);
    assert.equal(r.buffered, 0);
  }
});

test("the mirror ignores stale frames and unknown bases", () => {
  const m = new Mirror();
  const e = (id, t) => ({ id, state: new TextEncoder().encode(t) });
  assert.deepEqual(m.onSnapshot(5n, [e(1n, "a")]), { kind: "now", tick: 5n });
  assert.deepEqual(m.onDelta(7n, 6n, [e(1n, "x")], []), { kind: "missingBase" });
  assert.deepEqual(m.onDelta(7n, 5n, [e(2n, "b")], []), { kind: "now", tick: 7n });
  assert.deepEqual(m.onDelta(6n, 5n, [], [1n]), { kind: "stale" });
  assert.deepEqual([...m.current().entities.keys()], [1n, 2n]);
});
