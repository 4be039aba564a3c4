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
export const HISTORY = 32;

/**
 * What applying a state frame did: `"now"` (the mirror is at `tick`;
 * acknowledge it), `"stale"` (older than what it has: a reordered datagram),
 * `"missingBase"` (a delta against a state it does not hold: the node sends a
 * snapshot once that base leaves its history).
 */
export type Applied = { kind: "now"; tick: bigint } | { kind: "stale" } | { kind: "missingBase" };

/** The recent states of one room, newest last. */
export class Mirror {
  private states: { tick: bigint; entities: EntityMap }[] = [];

  /** The newest state and its tick. */
  current(): { tick: bigint; entities: EntityMap } | undefined {
    return this.states[this.states.length - 1];
  }

  private record(tick: bigint, entities: EntityMap): Applied {
    this.states.push({ tick, entities });
    if (this.states.length > HISTORY) this.states.shift();
    return { kind: "now", tick };
  }

  private isStale(tick: bigint): boolean {
    const now = this.current();
    return now !== undefined && tick <= now.tick;
  }

  onSnapshot(tick: bigint, entities: Entity[]): Applied {
    if (this.isStale(tick)) return { kind: "stale" };
    return this.record(tick, new Map(entities.map((e) => [e.id, e.state])));
  }

  onDelta(tick: bigint, base: bigint, changed: Entity[], removed: bigint[]): Applied {
    if (this.isStale(tick)) return { kind: "stale" };
    const from = this.states.find((s) => s.tick === base);
    if (from === undefined) return { kind: "missingBase" };
    const next = new Map(from.entities);
    for (const id of removed) next.delete(id);
    for (const e of changed) next.set(e.id, e.state);
    return this.record(tick, next);
  }
}
