/**
 * Frames and their encoding: bincode 2, standard configuration, exactly as
 * docs/protocol.md describes (and `protocol/src/wire.rs` implements).
 * Integers of 16 bits and more are varints (< 251 in one byte, else a marker
 * 251/252/253 then the value little endian); byte and UTF-8 strings are a
 * varint length then the bytes; enums are a varint variant index. 64-bit
 * values (player ids, ticks, entity ids, push sequences) are `bigint`.
 *
 * Decoding is strict, like the node's: a frame must use exactly its bytes,
 * lengths may not exceed the limit, strings must be UTF-8.
 */
/** Protocol version spoken by this SDK (sent in `Hello`). */
export const VERSION = 1;
/** No frame is ever larger than this, in either direction. */
export const MAX_FRAME = 1 << 20;
/** Why something failed, in an `Error` frame (the protocol's names). */
export const ERROR_CODES = [
    "BadFrame",
    "UnsupportedVersion",
    "Unauthorized",
    "TokenExpired",
    "RateLimited",
    "NotFound",
    "Rejected",
    "Timeout",
    "Overloaded",
    "Internal",
    "TooLarge",
    "NotInRoom",
    "Forbidden",
];
const FRAME_TYPES = [
    "Hello", "Request", "Join", "Leave", "Ack", "Ping",
    "Welcome", "Reply", "Error", "Push", "Joined", "Left", "Snapshot", "Delta", "Pong",
];
/** Why bytes are not a frame. */
export class DecodeError extends Error {
    constructor(message) {
        super(message);
        this.name = "DecodeError";
    }
}
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });
class Writer {
    buf = new Uint8Array(64);
    len = 0;
    room(n) {
        if (this.len + n <= this.buf.length)
            return;
        let size = this.buf.length * 2;
        while (size < this.len + n)
            size *= 2;
        const next = new Uint8Array(size);
        next.set(this.buf.subarray(0, this.len));
        this.buf = next;
    }
    u8(v) {
        this.room(1);
        this.buf[this.len++] = v;
    }
    bool(v) {
        this.u8(v ? 1 : 0);
    }
    varint(v) {
        const n = BigInt(v);
        if (n < 0n || n >= 1n << 64n)
            throw new RangeError(`${n} is not a u64`);
        if (n < 251n)
            return this.u8(Number(n));
        const [marker, width] = n < 1n << 16n ? [251, 2] : n < 1n << 32n ? [252, 4] : [253, 8];
        this.room(1 + width);
        this.buf[this.len++] = marker;
        let rest = n;
        for (let i = 0; i < width; i++) {
            this.buf[this.len++] = Number(rest & 0xffn);
            rest >>= 8n;
        }
    }
    bytes(b) {
        this.varint(b.length);
        this.room(b.length);
        this.buf.set(b, this.len);
        this.len += b.length;
    }
    string(s) {
        this.bytes(utf8.encode(s));
    }
    finish() {
        return this.buf.slice(0, this.len);
    }
}
class Reader {
    buf;
    limit;
    at = 0;
    constructor(buf, limit) {
        this.buf = buf;
        this.limit = limit;
    }
    need(n) {
        if (this.at + n > this.buf.length)
            throw new DecodeError(`malformed frame: ends ${this.at + n - this.buf.length} bytes early`);
    }
    u8() {
        this.need(1);
        return this.buf[this.at++];
    }
    bool() {
        const b = this.u8();
        if (b > 1)
            throw new DecodeError(`malformed frame: ${b} is not a bool`);
        return b === 1;
    }
    /** A varint of at most `bits` bits. */
    varint(bits) {
        const first = this.u8();
        if (first < 251)
            return BigInt(first);
        const width = first === 251 ? 2 : first === 252 ? 4 : first === 253 ? 8 : 0;
        if (width === 0 || width * 8 > bits)
            throw new DecodeError(`malformed frame: varint marker ${first} for a u${bits}`);
        this.need(width);
        let v = 0n;
        for (let i = width - 1; i >= 0; i--)
            v = (v << 8n) | BigInt(this.buf[this.at + i]);
        this.at += width;
        return v;
    }
    u16() {
        return Number(this.varint(16));
    }
    u32() {
        return Number(this.varint(32));
    }
    u64() {
        return this.varint(64);
    }
    length() {
        const n = this.varint(64);
        if (n > BigInt(this.limit))
            throw new DecodeError(`malformed frame: a length of ${n} exceeds the ${this.limit}-byte limit`);
        return Number(n);
    }
    bytes() {
        const n = this.length();
        this.need(n);
        const out = this.buf.slice(this.at, this.at + n);
        this.at += n;
        return out;
    }
    string() {
        try {
            return utf8Strict.decode(this.bytes());
        }
        catch (e) {
            if (e instanceof DecodeError)
                throw e;
            throw new DecodeError("malformed frame: a string is not UTF-8");
        }
    }
    entities() {
        const n = this.length();
        const out = [];
        for (let i = 0; i < n; i++)
            out.push({ id: this.u64(), state: this.bytes() });
        return out;
    }
    rest() {
        return this.buf.length - this.at;
    }
}
function writeAuth(w, auth) {
    switch (auth.type) {
        case "Device":
            w.u8(0);
            return w.string(auth.id);
        case "Resume":
            w.u8(1);
            return w.string(auth.token);
        case "Custom":
            w.u8(2);
            return w.bytes(auth.payload);
    }
}
function readAuth(r) {
    const v = r.u32();
    switch (v) {
        case 0:
            return { type: "Device", id: r.string() };
        case 1:
            return { type: "Resume", token: r.string() };
        case 2:
            return { type: "Custom", payload: r.bytes() };
        default:
            throw new DecodeError(`malformed frame: unknown Auth variant ${v}`);
    }
}
function writeEntities(w, entities) {
    w.varint(entities.length);
    for (const e of entities) {
        w.varint(e.id);
        w.bytes(e.state);
    }
}
/** Encodes a frame without its length prefix (a datagram, or a stream frame body). */
export function encode(frame) {
    const w = new Writer();
    w.u8(FRAME_TYPES.indexOf(frame.type));
    switch (frame.type) {
        case "Hello":
            w.varint(frame.version);
            writeAuth(w, frame.auth);
            w.varint(frame.lastPush);
            break;
        case "Request":
            w.varint(frame.id);
            w.string(frame.target);
            w.bytes(frame.payload);
            break;
        case "Join":
            w.varint(frame.id);
            w.string(frame.room);
            break;
        case "Leave":
            w.varint(frame.id);
            w.varint(frame.room);
            break;
        case "Ack":
            w.varint(frame.room);
            w.varint(frame.tick);
            break;
        case "Ping":
        case "Pong":
            w.varint(frame.nonce);
            break;
        case "Welcome":
            w.varint(frame.version);
            w.varint(frame.player);
            w.string(frame.token);
            w.varint(frame.expiresAtMs);
            w.bool(frame.resumed);
            break;
        case "Reply":
            w.varint(frame.id);
            w.bytes(frame.payload);
            break;
        case "Error":
            w.varint(frame.id);
            w.u8(ERROR_CODES.indexOf(frame.code));
            w.string(frame.message);
            break;
        case "Push":
            w.varint(frame.seq);
            w.bytes(frame.payload);
            break;
        case "Joined":
            w.varint(frame.id);
            w.varint(frame.room);
            w.string(frame.name);
            break;
        case "Left":
            w.varint(frame.room);
            break;
        case "Snapshot":
            w.varint(frame.room);
            w.varint(frame.tick);
            writeEntities(w, frame.entities);
            break;
        case "Delta":
            w.varint(frame.room);
            w.varint(frame.tick);
            w.varint(frame.base);
            writeEntities(w, frame.changed);
            w.varint(frame.removed.length);
            for (const id of frame.removed)
                w.varint(id);
            break;
    }
    return w.finish();
}
/** Encodes a frame with its u32 little-endian length prefix, for the control stream. */
export function encodePrefixed(frame) {
    const body = encode(frame);
    const out = new Uint8Array(4 + body.length);
    new DataView(out.buffer).setUint32(0, body.length, true);
    out.set(body, 4);
    return out;
}
/** Decodes exactly one frame (a datagram, or a stream frame body). */
export function decode(bytes, limit = MAX_FRAME) {
    limit = Math.min(limit, MAX_FRAME);
    if (bytes.length > limit)
        throw new DecodeError(`frame of ${bytes.length} bytes exceeds the ${limit}-byte limit`);
    const r = new Reader(bytes, limit);
    const index = r.u32();
    let frame;
    switch (FRAME_TYPES[index]) {
        case "Hello":
            frame = { type: "Hello", version: r.u16(), auth: readAuth(r), lastPush: r.u64() };
            break;
        case "Request":
            frame = { type: "Request", id: r.u32(), target: r.string(), payload: r.bytes() };
            break;
        case "Join":
            frame = { type: "Join", id: r.u32(), room: r.string() };
            break;
        case "Leave":
            frame = { type: "Leave", id: r.u32(), room: r.u32() };
            break;
        case "Ack":
            frame = { type: "Ack", room: r.u32(), tick: r.u64() };
            break;
        case "Ping":
            frame = { type: "Ping", nonce: r.u64() };
            break;
        case "Welcome":
            frame = { type: "Welcome", version: r.u16(), player: r.u64(), token: r.string(), expiresAtMs: r.u64(), resumed: r.bool() };
            break;
        case "Reply":
            frame = { type: "Reply", id: r.u32(), payload: r.bytes() };
            break;
        case "Error": {
            const id = r.u32();
            const c = r.u32();
            const code = ERROR_CODES[c];
            if (code === undefined)
                throw new DecodeError(`malformed frame: unknown ErrorCode ${c}`);
            frame = { type: "Error", id, code, message: r.string() };
            break;
        }
        case "Push":
            frame = { type: "Push", seq: r.u64(), payload: r.bytes() };
            break;
        case "Joined":
            frame = { type: "Joined", id: r.u32(), room: r.u32(), name: r.string() };
            break;
        case "Left":
            frame = { type: "Left", room: r.u32() };
            break;
        case "Snapshot":
            frame = { type: "Snapshot", room: r.u32(), tick: r.u64(), entities: r.entities() };
            break;
        case "Delta": {
            const room = r.u32();
            const tick = r.u64();
            const base = r.u64();
            const changed = r.entities();
            const n = r.length();
            const removed = [];
            for (let i = 0; i < n; i++)
                removed.push(r.u64());
            frame = { type: "Delta", room, tick, base, changed, removed };
            break;
        }
        case "Pong":
            frame = { type: "Pong", nonce: r.u64() };
            break;
        default:
            throw new DecodeError(`malformed frame: unknown frame variant ${index}`);
    }
    if (r.rest() !== 0)
        throw new DecodeError(`malformed frame: ${r.rest()} trailing bytes`);
    return frame;
}
/** Reassembles length-prefixed frames from a byte stream, however it is cut. */
export class FrameReader {
    limit;
    buf = new Uint8Array(0);
    constructor(limit = MAX_FRAME) {
        this.limit = limit;
    }
    /** Appends bytes read from the stream. */
    push(bytes) {
        if (this.buf.length === 0) {
            this.buf = bytes.slice();
            return;
        }
        const next = new Uint8Array(this.buf.length + bytes.length);
        next.set(this.buf);
        next.set(bytes, this.buf.length);
        this.buf = next;
    }
    /** The next complete frame, or `undefined` when more bytes are needed. After an error the stream is unusable. */
    next() {
        if (this.buf.length < 4)
            return undefined;
        const len = new DataView(this.buf.buffer, this.buf.byteOffset, 4).getUint32(0, true);
        if (len > this.limit)
            throw new DecodeError(`frame of ${len} bytes exceeds the ${this.limit}-byte limit`);
        if (this.buf.length < 4 + len)
            return undefined;
        const body = this.buf.subarray(4, 4 + len);
        this.buf = this.buf.subarray(4 + len);
        return decode(body, this.limit);
    }
    /** Bytes buffered but not yet a whole frame. */
    get buffered() {
        return this.buf.length;
    }
}
