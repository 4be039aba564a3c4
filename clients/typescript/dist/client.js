/**
 * A player's connection to an Anthill node from a browser or Node.js: the
 * TypeScript twin of the Rust client (`client/src/lib.rs`), same concepts and
 * names. It connects over WebTransport (the node's UDP port, certificate
 * pinned by the hash the node publishes) or WebSocket (the web port's `/ws`),
 * matches requests to replies, mirrors each joined room from snapshots and
 * deltas (acknowledging each applied tick), delivers pushes, and resumes the
 * session by itself when the connection drops.
 *
 *     const client = await Client.connect("http://127.0.0.1:7352");
 *     await client.loginDevice("my-device");
 *     const room = await client.join("arena/r1");
 *     client.on("state", ({ entities }) => draw(entities));
 */
import { Mirror } from "./mirror.js";
import { openWebSocket, openWebTransport } from "./link.js";
import { VERSION } from "./wire.js";
export class AnthillError extends Error {
    kind;
    code;
    constructor(kind, message, code) {
        super(message);
        this.kind = kind;
        this.code = code;
        this.name = "AnthillError";
    }
}
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
const bytesOf = (p) => (typeof p === "string" ? textEncoder.encode(p) : p);
export class Client {
    url;
    options;
    link;
    generation = 0;
    nextId = 0;
    playerId;
    session;
    lastPush = 0n;
    rooms = new Map();
    replies = new Map();
    joins = new Map();
    leaves = new Map();
    welcome;
    pings = new Map();
    nonce = 0n;
    pingTimer;
    pushes = [];
    pushWaiters = [];
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- one map for listeners of every event type
    listeners = new Map();
    autoResume = true;
    closedWith;
    lastRtt;
    timeoutMs;
    /** What the client received. */
    stats = { framesIn: 0, bytesIn: 0, datagramsIn: 0, stateFrames: 0, snapshots: 0, deltas: 0, acksSent: 0, resumes: 0 };
    constructor(
    /** The node's web address, e.g. `http://127.0.0.1:7352`. */
    url, options) {
        this.url = url;
        this.options = options;
        this.timeoutMs = options.timeoutMs ?? 10_000;
    }
    /**
     * Connects to the node whose web port is at `url` (`http://HOST:PORT`):
     * reads `/play/connect.json`, then opens WebTransport (pinned) or WebSocket.
     */
    static async connect(url, options = {}) {
        const client = new Client(url.replace(/\/+$/, ""), options);
        await client.open();
        const every = options.pingIntervalMs ?? 2000;
        client.pingTimer = setInterval(() => client.sendPing(), every);
        client.pingTimer.unref?.();
        return client;
    }
    /** Fetches what a page needs to reach the node (port, certificate hash). */
    static async connectInfo(url) {
        let r;
        try {
            r = await fetch(`${url.replace(/\/+$/, "")}/play/connect.json`, { cache: "no-store" });
        }
        catch (e) {
            throw new AnthillError("Connect", `cannot reach the node's web port at ${url}: ${e.message}`);
        }
        if (!r.ok)
            throw new AnthillError("Connect", `${url}/play/connect.json answered ${r.status}: is this an Anthill node's web port (anthill serve --web)?`);
        return (await r.json());
    }
    /** The transport of the live connection (or of the last one). */
    get transport() {
        return this.lastTransport;
    }
    lastTransport;
    async open() {
        const info = await Client.connectInfo(this.url);
        const want = this.options.transport ?? "auto";
        const generation = ++this.generation;
        const handlers = {
            frame: (f, unreliable, bytes) => {
                if (generation === this.generation)
                    this.onFrame(f, unreliable, bytes);
            },
            closed: (reason) => this.onDisconnect(generation, reason),
        };
        const base = new URL(this.url);
        const tryWebTransport = want === "webtransport" || (want === "auto" && typeof WebTransport !== "undefined");
        let link;
        let wtError;
        if (tryWebTransport) {
            if (typeof WebTransport === "undefined")
                throw new AnthillError("Connect", "this platform has no WebTransport (use transport: \"websocket\")");
            try {
                link = await openWebTransport(`https://${base.hostname}:${info.quic_port}/`, info.certificate_sha256, handlers, this.timeoutMs);
            }
            catch (e) {
                wtError = e.message ?? String(e);
                if (want === "webtransport")
                    throw new AnthillError("Connect", `WebTransport to ${base.hostname}:${info.quic_port}: ${wtError}`);
            }
        }
        if (link === undefined) {
            const Ctor = this.options.WebSocket ?? globalThis.WebSocket;
            if (Ctor === undefined)
                throw new AnthillError("Connect", "this platform has no WebSocket (Node.js 20: run with --experimental-websocket, or pass options.WebSocket)");
            const ws = `${base.protocol === "https:" ? "wss" : "ws"}://${base.host}${info.websocket_path}`;
            try {
                link = await openWebSocket(ws, handlers, Ctor, this.timeoutMs);
            }
            catch (e) {
                throw new AnthillError("Connect", `${e.message}${wtError ? ` (and WebTransport: ${wtError})` : ""}`);
            }
        }
        if (generation !== this.generation) {
            link.close("superseded");
            throw new AnthillError("ConnectionLost", "a newer connection replaced this one");
        }
        this.link = link;
        this.lastTransport = link.transport;
        return link;
    }
    // ---- listening ----------------------------------------------------------
    /** Calls `listener` on each `event`; returns what stops it. */
    on(event, listener) {
        let set = this.listeners.get(event);
        if (set === undefined)
            this.listeners.set(event, (set = new Set()));
        set.add(listener);
        return () => set.delete(listener);
    }
    emit(event, ...args) {
        for (const l of this.listeners.get(event) ?? []) {
            try {
                l(...args);
            }
            catch (e) {
                console.error(`anthill: a "${event}" listener threw`, e);
            }
        }
    }
    // ---- session --------------------------------------------------------------
    /** Logs in with a device id (the node derives a stable player id from it). */
    async loginDevice(device) {
        return (await this.hello({ type: "Device", id: device })).player;
    }
    /** Logs in through the node's login module (the payload is the module's to read). */
    async loginCustom(payload) {
        return (await this.hello({ type: "Custom", payload: bytesOf(payload) })).player;
    }
    /** Resumes a session with a token saved earlier (another tab, a reload) within the node's resume grace. */
    async loginResume(token) {
        return this.hello({ type: "Resume", token });
    }
    hello(auth) {
        const link = this.link;
        if (link === undefined)
            return Promise.reject(this.lost());
        this.closedWith = undefined;
        this.autoResume = this.autoResumeWanted;
        return new Promise((resolve, reject) => {
            this.welcome?.reject(new AnthillError("Failed", "another login replaced this one"));
            this.welcome = this.pending(resolve, reject, "the login", () => (this.welcome = undefined));
            link.send({ type: "Hello", version: VERSION, auth, lastPush: this.lastPush });
        });
    }
    /** The player id, once logged in. */
    get player() {
        return this.playerId;
    }
    /** The session token (to resume from another page) and its expiry (ms since the epoch). */
    get token() {
        return this.session;
    }
    // ---- requests and rooms -------------------------------------------------
    /** Sends `payload` to `module` or `module/key` and waits for the reply. */
    request(target, payload, options = {}) {
        if (this.playerId === undefined)
            return Promise.reject(new AnthillError("NotLoggedIn", "log in before sending requests"));
        const link = this.link;
        if (link === undefined)
            return Promise.reject(this.lost());
        const id = this.id();
        return new Promise((resolve, reject) => {
            this.replies.set(id, this.pending(resolve, reject, `request ${id} to ${target}`, () => this.replies.delete(id), options.timeoutMs));
            link.send({ type: "Request", id, target, payload: bytesOf(payload) });
        });
    }
    /** `request` with text in and out. */
    async requestText(target, text, options = {}) {
        return textDecoder.decode(await this.request(target, text, options));
    }
    /** Joins a room (`module/key`); resolves to its handle, used by every later call about it. */
    join(room, options = {}) {
        const link = this.link;
        if (link === undefined)
            return Promise.reject(this.lost());
        const id = this.id();
        return new Promise((resolve, reject) => {
            this.joins.set(id, this.pending(resolve, reject, `joining ${room}`, () => this.joins.delete(id), options.timeoutMs));
            link.send({ type: "Join", id, room });
        });
    }
    /** Leaves a room; resolves when the node says it is left. */
    leave(room) {
        const link = this.link;
        if (link === undefined)
            return Promise.reject(this.lost());
        return new Promise((resolve, reject) => {
            this.leaves.get(room)?.reject(new AnthillError("Failed", "left twice"));
            this.leaves.set(room, this.pending(resolve, reject, `leaving room ${room}`, () => this.leaves.delete(room)));
            link.send({ type: "Leave", id: this.id(), room });
        });
    }
    /** The mirrored state of a joined room. */
    roomState(room) {
        const r = this.rooms.get(room);
        const now = r?.mirror.current();
        return r && now ? { room, name: r.name, tick: now.tick, entities: now.entities } : undefined;
    }
    /** The handles of the rooms this session is in. */
    get roomHandles() {
        return [...this.rooms.keys()];
    }
    /** Resolves true at the next state change of any room, false after `timeoutMs`. */
    stateChanged(timeoutMs) {
        return new Promise((resolve) => {
            const timer = setTimeout(() => {
                stop();
                resolve(false);
            }, timeoutMs);
            const stop = this.on("state", () => {
                stop();
                clearTimeout(timer);
                resolve(true);
            });
        });
    }
    /** The next push (queued ones first), or undefined after `timeoutMs`. */
    nextPush(timeoutMs) {
        const queued = this.pushes.shift();
        if (queued)
            return Promise.resolve(queued);
        return new Promise((resolve) => {
            const waiter = (p) => {
                clearTimeout(timer);
                resolve(p);
            };
            const timer = setTimeout(() => {
                this.pushWaiters = this.pushWaiters.filter((w) => w !== waiter);
                resolve(undefined);
            }, timeoutMs);
            this.pushWaiters.push(waiter);
        });
    }
    /** Measures a round trip now (ms). */
    ping() {
        const link = this.link;
        if (link === undefined)
            return Promise.reject(this.lost());
        return new Promise((resolve) => {
            const nonce = ++this.nonce;
            this.pings.set(nonce, { sent: now(), resolve });
            link.send({ type: "Ping", nonce });
        });
    }
    /** The last measured round-trip time (ms). */
    get rtt() {
        return this.lastRtt;
    }
    sendPing() {
        if (this.link === undefined)
            return;
        const nonce = ++this.nonce;
        this.pings.set(nonce, { sent: now() });
        if (this.pings.size > 16)
            this.pings.delete(this.pings.keys().next().value);
        this.link.send({ type: "Ping", nonce });
    }
    // ---- connection ---------------------------------------------------------
    autoResumeWanted = true;
    /** Resume automatically after a lost connection (default: on). */
    setAutoResume(on) {
        this.autoResumeWanted = on;
        this.autoResume = on;
    }
    /** Drops the connection as a network failure would; with auto-resume on, the client comes back. */
    simulateNetworkLoss() {
        this.link?.close("simulated network loss");
    }
    /** Reconnects and resumes the session now; resolves whether the node still had it. */
    async resume() {
        if (this.session === undefined)
            throw new AnthillError("NotLoggedIn", "nothing to resume: log in first");
        const token = this.session.token;
        this.detach("resuming");
        await this.open();
        const { resumed } = await this.hello({ type: "Resume", token });
        this.stats.resumes++;
        this.emit("resumed", { transport: this.lastTransport, resumed });
        return resumed;
    }
    /** Closes the connection for good. */
    close() {
        this.autoResume = false;
        this.autoResumeWanted = false;
        clearInterval(this.pingTimer);
        for (const r of this.rooms.values())
            this.dropHeldAck(r);
        const link = this.link;
        this.link = undefined;
        link?.close();
    }
    /** Whether the client has a live connection now. */
    get isConnected() {
        return this.link !== undefined;
    }
    /** Why the node ended the session, if it did. */
    get closedReason() {
        return this.closedWith;
    }
    // ---- frames -------------------------------------------------------------
    sendAck(room, tick) {
        this.link?.sendUnreliable({ type: "Ack", room, tick });
        this.stats.acksSent++;
    }
    dropHeldAck(r) {
        if (r.held)
            clearTimeout(r.held.timer);
        r.held = undefined;
    }
    onFrame(f, unreliable, bytes) {
        this.stats.framesIn++;
        this.stats.bytesIn += unreliable ? bytes : 0;
        if (unreliable)
            this.stats.datagramsIn++;
        switch (f.type) {
            case "Welcome": {
                this.playerId = f.player;
                this.session = { token: f.token, expiresAtMs: f.expiresAtMs };
                if (!f.resumed) {
                    for (const r of this.rooms.values())
                        this.dropHeldAck(r);
                    this.rooms.clear();
                    this.lastPush = 0n;
                }
                const w = this.welcome;
                this.welcome = undefined;
                w?.resolve({ player: f.player, resumed: f.resumed });
                return;
            }
            case "Reply":
                return this.replies.get(f.id)?.resolve(f.payload);
            case "Error": {
                const e = new AnthillError(f.id === 0 ? "Closed" : "Failed", `${f.code}: ${f.message}`, f.code);
                if (f.id !== 0) {
                    (this.replies.get(f.id) ?? this.joins.get(f.id))?.reject(e);
                    return;
                }
                this.closedWith = e;
                this.autoResume = false;
                this.failAll(e);
                this.emit("closed", e);
                return;
            }
            case "Push": {
                if (f.seq !== 0n) {
                    if (f.seq <= this.lastPush)
                        return; // replayed after a resume: seen
                    this.lastPush = f.seq;
                }
                const push = { payload: f.payload, reliable: f.seq !== 0n };
                const waiter = this.pushWaiters.shift();
                if (waiter)
                    waiter(push);
                else {
                    this.pushes.push(push);
                    if (this.pushes.length > 1024)
                        this.pushes.shift();
                }
                this.emit("push", push);
                return;
            }
            case "Joined":
                this.rooms.set(f.room, { name: f.name, mirror: new Mirror(), unacked: 0 });
                this.joins.get(f.id)?.resolve(f.room);
                this.emit("joined", { room: f.room, name: f.name });
                return;
            case "Left": {
                const left = this.rooms.get(f.room);
                const name = left?.name ?? "";
                if (left)
                    this.dropHeldAck(left);
                this.rooms.delete(f.room);
                this.leaves.get(f.room)?.resolve();
                this.emit("left", { room: f.room, name });
                return;
            }
            case "Snapshot":
            case "Delta": {
                this.stats.stateFrames++;
                const r = this.rooms.get(f.room);
                if (r === undefined)
                    return;
                const applied = f.type === "Snapshot" ? r.mirror.onSnapshot(f.tick, f.entities) : r.mirror.onDelta(f.tick, f.base, f.changed, f.removed);
                if (applied.kind !== "now")
                    return;
                if (f.type === "Snapshot")
                    this.stats.snapshots++;
                else
                    this.stats.deltas++;
                // A snapshot is acked at once: until then every frame is one.
                if (++r.unacked >= (f.type === "Snapshot" ? 1 : Math.max(1, this.options.ackEvery ?? 2))) {
                    r.unacked = 0;
                    const delay = this.options.ackDelayMs ?? 25;
                    if (f.type === "Snapshot" || delay <= 0) {
                        // This ack covers any held one.
                        this.dropHeldAck(r);
                        this.sendAck(f.room, applied.tick);
                    }
                    else if (r.held) {
                        r.held.tick = applied.tick;
                    }
                    else {
                        const room = f.room;
                        const timer = setTimeout(() => {
                            const h = r.held;
                            r.held = undefined;
                            if (h)
                                this.sendAck(room, h.tick);
                        }, delay);
                        r.held = { tick: applied.tick, timer };
                    }
                }
                const state = this.roomState(f.room);
                if (state)
                    this.emit("state", state);
                return;
            }
            case "Pong": {
                const p = this.pings.get(f.nonce);
                if (p === undefined)
                    return;
                this.pings.delete(f.nonce);
                this.lastRtt = now() - p.sent;
                p.resolve?.(this.lastRtt);
                this.emit("rtt", this.lastRtt);
                return;
            }
            default:
                return; // client frames never come from a node
        }
    }
    onDisconnect(generation, reason) {
        if (generation !== this.generation)
            return; // an older connection
        this.link = undefined;
        this.failAll(this.lost(reason));
        const resuming = this.autoResume && this.session !== undefined && this.closedWith === undefined;
        this.emit("disconnected", { reason, resuming });
        if (resuming)
            void this.resumeLoop();
    }
    async resumeLoop() {
        let delay = 50;
        for (let attempt = 0; attempt < 40; attempt++) {
            await new Promise((r) => setTimeout(r, delay));
            if (!this.autoResume || this.link !== undefined)
                return;
            try {
                await this.resume();
                return;
            }
            catch (e) {
                if (e instanceof AnthillError && e.kind === "Closed")
                    return;
                this.detach("resume failed");
                delay = Math.min(delay * 2, 2000);
            }
        }
    }
    // ---- plumbing -------------------------------------------------------------
    /** Drops the current connection without treating it as lost (no resume starts). */
    detach(reason) {
        const link = this.link;
        this.link = undefined;
        this.generation++;
        link?.close(reason);
    }
    id() {
        this.nextId = this.nextId >= 0xffff_ffff ? 1 : this.nextId + 1;
        return this.nextId;
    }
    lost(reason = "no connection") {
        return new AnthillError("ConnectionLost", `the connection was lost (${reason})`);
    }
    pending(resolve, reject, what, forget, timeoutMs = this.timeoutMs) {
        const timer = setTimeout(() => {
            forget();
            reject(new AnthillError("Timeout", `no answer to ${what} within ${timeoutMs} ms`));
        }, timeoutMs);
        return {
            resolve: (v) => {
                clearTimeout(timer);
                forget();
                resolve(v);
            },
            reject: (e) => {
                clearTimeout(timer);
                forget();
                reject(e);
            },
            timer,
        };
    }
    failAll(e) {
        const all = [...this.replies.values(), ...this.joins.values(), ...this.leaves.values()];
        if (this.welcome)
            all.push(this.welcome);
        for (const p of all)
            p.reject(e);
    }
}
const now = () => (typeof performance !== "undefined" ? performance.now() : Date.now());
