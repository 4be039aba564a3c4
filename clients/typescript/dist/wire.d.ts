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
export declare const VERSION = 1;
/** No frame is ever larger than this, in either direction. */
export declare const MAX_FRAME: number;
/** One entity of a room's synced state. */
export interface Entity {
    id: bigint;
    state: Uint8Array;
}
/** How a player proves who it is in `Hello`. */
export type Auth = {
    type: "Device";
    id: string;
} | {
    type: "Resume";
    token: string;
} | {
    type: "Custom";
    payload: Uint8Array;
};
/** Why something failed, in an `Error` frame (the protocol's names). */
export declare const ERROR_CODES: readonly ["BadFrame", "UnsupportedVersion", "Unauthorized", "TokenExpired", "RateLimited", "NotFound", "Rejected", "Timeout", "Overloaded", "Internal", "TooLarge", "NotInRoom", "Forbidden"];
export type ErrorCode = (typeof ERROR_CODES)[number];
/** Everything that travels between a player and a node. */
export type Frame = {
    type: "Hello";
    version: number;
    auth: Auth;
    lastPush: bigint;
} | {
    type: "Request";
    id: number;
    target: string;
    payload: Uint8Array;
} | {
    type: "Join";
    id: number;
    room: string;
} | {
    type: "Leave";
    id: number;
    room: number;
} | {
    type: "Ack";
    room: number;
    tick: bigint;
} | {
    type: "Ping";
    nonce: bigint;
} | {
    type: "Welcome";
    version: number;
    player: bigint;
    token: string;
    expiresAtMs: bigint;
    resumed: boolean;
} | {
    type: "Reply";
    id: number;
    payload: Uint8Array;
} | {
    type: "Error";
    id: number;
    code: ErrorCode;
    message: string;
} | {
    type: "Push";
    seq: bigint;
    payload: Uint8Array;
} | {
    type: "Joined";
    id: number;
    room: number;
    name: string;
} | {
    type: "Left";
    room: number;
} | {
    type: "Snapshot";
    room: number;
    tick: bigint;
    entities: Entity[];
} | {
    type: "Delta";
    room: number;
    tick: bigint;
    base: bigint;
    changed: Entity[];
    removed: bigint[];
} | {
    type: "Pong";
    nonce: bigint;
};
/** Why bytes are not a frame. */
export declare class DecodeError extends Error {
    constructor(message: string);
}
/** Encodes a frame without its length prefix (a datagram, or a stream frame body). */
export declare function encode(frame: Frame): Uint8Array;
/** Encodes a frame with its u32 little-endian length prefix, for the control stream. */
export declare function encodePrefixed(frame: Frame): Uint8Array;
/** Decodes exactly one frame (a datagram, or a stream frame body). */
export declare function decode(bytes: Uint8Array, limit?: number): Frame;
/** Reassembles length-prefixed frames from a byte stream, however it is cut. */
export declare class FrameReader {
    private readonly limit;
    private buf;
    constructor(limit?: number);
    /** Appends bytes read from the stream. */
    push(bytes: Uint8Array): void;
    /** The next complete frame, or `undefined` when more bytes are needed. After an error the stream is unusable. */
    next(): Frame | undefined;
    /** Bytes buffered but not yet a whole frame. */
    get buffered(): number;
}
