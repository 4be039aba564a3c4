/**
 * The client side of room state sync: the last few states of one room as
 * received, so that any delta the node builds (against a tick this client
 * acknowledged) has a base to apply to. The rules are docs/protocol.md's
 * "Rooms and state sync"; `protocol/src/sync.rs` is the Rust twin.
 */
/** States kept per room (the node keeps as many). */
export const HISTORY = 32;
/** The recent states of one room, newest last. */
export class Mirror {
    states = [];
    /** The newest state and its tick. */
    current() {
        return this.states[this.states.length - 1];
    }
    record(tick, entities) {
        this.states.push({ tick, entities });
        if (this.states.length > HISTORY)
            this.states.shift();
        return { kind: "now", tick };
    }
    isStale(tick) {
        const now = this.current();
        return now !== undefined && tick <= now.tick;
    }
    onSnapshot(tick, entities) {
        if (this.isStale(tick))
            return { kind: "stale" };
        return this.record(tick, new Map(entities.map((e) => [e.id, e.state])));
    }
    onDelta(tick, base, changed, removed) {
        if (this.isStale(tick))
            return { kind: "stale" };
        const from = this.states.find((s) => s.tick === base);
        if (from === undefined)
            return { kind: "missingBase" };
        const next = new Map(from.entities);
        for (const id of removed)
            next.delete(id);
        for (const e of changed)
            next.set(e.id, e.state);
        return this.record(tick, next);
    }
}
