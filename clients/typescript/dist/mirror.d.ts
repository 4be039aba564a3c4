/**
 * The client side of room state sync: the last few states of one room as
 * received, so that any delta the node builds (against a tick this client
 * acknowledged) has a base to apply to. The rules are docs/protocol.md's
 * "Rooms and state sync"; `protocol/src/sync.rs` is the Rust twin.
 */
import type { Entity } from "./wire.js";
/** A room's state: entity id → encoded entity (meaning up to the module). */
export type EntityMap = Map<bigint, Uint8Array>;
/** States kept per room (the node keeps as many). */
export declare const HISTORY = 32;
/**
 * What applying a state frame did: `"now"` (the mirror is at `tick`;
 * acknowledge it), `"stale"` (older than what it has: a reordered datagram),
 * `"missingBase"` (a delta against a state it does not hold: the node sends a
 * snapshot once that base leaves its history).
 */
export type Applied = {
    kind: "now";
    tick: bigint;
} | {
    kind: "stale";
} | {
    kind: "missingBase";
};
/** The recent states of one room, newest last. */
export declare class Mirror {
    private states;
    /** The newest state and its tick. */
    current(): {
        tick: bigint;
        entities: EntityMap;
    } | undefined;
    private record;
    private isStale;
    onSnapshot(tick: bigint, entities: Entity[]): Applied;
    onDelta(tick: bigint, base: bigint, changed: Entity[], removed: bigint[]): Applied;
}
