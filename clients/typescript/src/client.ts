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

import { Mirror, type EntityMap } from "./mirror.js";
import { type Link, type LinkHandlers, type Transport, type WebSocketConstructor, openWebSocket, openWebTransport } from "./link.js";
import { type Auth, type ErrorCode, type Frame, VERSION } from "./wire.js";

/** What `GET /play/connect.json` on the web port answers. */
export interface ConnectInfo {
  quic_port: number;
  certificate_sha256: string | null;
  certificate_expires_at_ms: number | null;
  websocket_path: string;
}

export interface ConnectOptions {
  /** `"auto"` (default): WebTransport when the platform has it, else WebSocket. */
  transport?: "auto" | Transport;
  /** The WebSocket constructor (default: the platform's). */
  WebSocket?: WebSocketConstructor;
  /** How long a connect, request, join or leave waits (default 10 s, as the Rust client). */
  timeoutMs?: number;
  /** Keep-alive and round-trip time: a `Ping` this often (default 2 s; the node closes idle connections after 30 s). */
  pingIntervalMs?: number;
  /**
   * Acknowledge one room state in this many (default 2, as the Rust client;
   * snapshots always). Each ack costs the node a datagram and an ACK of its
   * own; deltas build on the newest acknowledged state either way.
   */
  ackEvery?: number;
  /**
   * Hold a delta's ack this long (default 25, QUIC's own ACK delay; 0 sends
   * it with the state). Held, it reaches the node in the second half of a
   * 20 Hz tick, so the node's QUIC ACK of it rides on the next state instead
   * of a packet of its own (docs/protocol.md). Snapshots are acked at once.
   */
  ackDelayMs?: number;
}

/** Why something failed: `kind` as the Rust client's `ClientError` variants, `code` when the node sent one. */
export type ErrorKind = "Connect" | "Closed" | "Failed" | "ConnectionLost" | "Timeout" | "NotLoggedIn";

export class AnthillError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly code?: ErrorCode,
  ) {
    super(message);
    this.name = "AnthillError";
  }
}

/** A push from a module (`reliable`: in order, replayed after a resume). */
export interface Push {
  payload: Uint8Array;
  reliable: boolean;
}

/** A room's mirrored state. */
export interface RoomState {
  room: number;
  name: string;
  tick: bigint;
  entities: EntityMap;
}

/** The events a client emits, with what each listener gets. */
export interface ClientEvents {
  /** A room's mirror moved to a newer tick. */
  state: (state: RoomState) => void;
  push: (push: Push) => void;
  joined: (room: { room: number; name: string }) => void;
  left: (room: { room: number; name: string }) => void;
  /** The connection dropped; `resuming` says whether the client will resume by itself. */
  disconnected: (info: { reason: string; resuming: boolean }) => void;
  /** A new connection continues the session (`resumed` false: the node had let it go). */
  resumed: (info: { transport: Transport; resumed: boolean }) => void;
  /** The node ended the session (its error says why); no resume follows. */
  closed: (error: AnthillError) => void;
  /** A round-trip time measured by `Ping`/`Pong`, in milliseconds. */
  rtt: (ms: number) => void;
}

/** What the client received, for pages and tests. */
export interface Stats {
  framesIn: number;
  bytesIn: number;
  datagramsIn: number;
  stateFrames: number;
  snapshots: number;
  deltas: number;
  acksSent: number;
  resumes: number;
}

interface Pending<T> {
  resolve: (v: T) => void;
  reject: (e: AnthillError) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface RoomMirror {
  name: string;
  mirror: Mirror;
  unacked: number;
  /** A held ack: the newest tick to acknowledge, and the timer that sends it. */
  held?: { tick: bigint; timer: ReturnType<typeof setTimeout> };
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
const bytesOf = (p: Uint8Array | string): Uint8Array => (typeof p === "string" ? textEncoder.encode(p) : p);

export class Client {
  private link: Link | undefined;
  private generation = 0;
  private nextId = 0;
  private playerId: bigint | undefined;
  private session: { token: string; expiresAtMs: bigint } | undefined;
  private lastPush = 0n;
  private rooms = new Map<number, RoomMirror>();
  private replies = new Map<number, Pending<Uint8Array>>();
  private joins = new Map<number, Pending<number>>();
  private leaves = new Map<number, Pending<void>>();
  private welcome: Pending<{ player: bigint; resumed: boolean }> | undefined;
  private pings = new Map<bigint, { sent: number; resolve?: (ms: number) => void }>();
  private nonce = 0n;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pushes: Push[] = [];
  private pushWaiters: ((p: Push) => void)[] = [];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- one map for listeners of every event type
  private listeners = new Map<keyof ClientEvents, Set<(...args: any[]) => void>>();
  private autoResume = true;
  private closedWith: AnthillError | undefined;
  private lastRtt: number | undefined;
  private readonly timeoutMs: number;
  /** What the client received. */
  readonly stats: Stats = { framesIn: 0, bytesIn: 0, datagramsIn: 0, stateFrames: 0, snapshots: 0, deltas: 0, acksSent: 0, resumes: 0 };

  private constructor(
    /** The node's web address, e.g. `http://127.0.0.1:7352`. */
    readonly url: string,
    private readonly options: ConnectOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /**
   * Connects to the node whose web port is at `url` (`http://HOST:PORT`):
   * reads `/play/connect.json`, then opens WebTransport (pinned) or WebSocket.
   */
  static async connect(url: string, options: ConnectOptions = {}): Promise<Client> {
    const client = new Client(url.replace(/\/+$/, ""), options);
    await client.open();
    const every = options.pingIntervalMs ?? 2000;
    client.pingTimer = setInterval(() => client.sendPing(), every);
    (client.pingTimer as { unref?: () => void }).unref?.();
    return client;
  }

  /** Fetches what a page needs to reach the node (port, certificate hash). */
  static async connectInfo(url: string): Promise<ConnectInfo> {
    let r: Response;
    try {
      r = await fetch(`${url.replace(/\/+$/, "")}/play/connect.json`, { cache: "no-store" });
    } catch (e) {
      throw new AnthillError("Connect", `cannot reach the node's web port at ${url}: ${(e as Error).message}`);
    }
    if (!r.ok) throw new AnthillError("Connect", `${url}/play/connect.json answered ${r.status}: is this an Anthill node's web port (anthill serve --web)?`);
    return (await r.json()) as ConnectInfo;
  }

  /** The transport of the live connection (or of the last one). */
  get transport(): Transport | undefined {
    return this.lastTransport;
  }
  private lastTransport: Transport | undefined;

  private async open(): Promise<Link> {
    const info = await Client.connectInfo(this.url);
    const want = this.options.transport ?? "auto";
    const generation = ++this.generation;
    const handlers: LinkHandlers = {
      frame: (f, unreliable, bytes) => {
        if (generation === this.generation) this.onFrame(f, unreliable, bytes);
      },
      closed: (reason) => this.onDisconnect(generation, reason),
    };
    const base = new URL(this.url);
    const tryWebTransport = want === "webtransport" || (want === "auto" && typeof WebTransport !== "undefined");
    let link: Link | undefined;
    let wtError: string | undefined;
    if (tryWebTransport) {
      if (typeof WebTransport === "undefined") throw new AnthillError("Connect", "this platform has no WebTransport (use transport: \"websocket\")");
      try {
        link = await openWebTransport(`https://${base.hostname}:${info.quic_port}/`, info.certificate_sha256, handlers, this.timeoutMs);
      } catch (e) {
        wtError = (e as Error).message ?? String(e);
        if (want === "webtransport") throw new AnthillError("Connect", `WebTransport to ${base.hostname}:${info.quic_port}: ${wtError}`);
      }
    }
    if (link === undefined) {
      const Ctor = this.options.WebSocket ?? (globalThis.WebSocket as WebSocketConstructor | undefined);
      if (Ctor === undefined) throw new AnthillError("Connect", "this platform has no WebSocket (Node.js 20: run with --experimental-websocket, or pass options.WebSocket)");
      const ws = `${base.protocol === "https:" ? "wss" : "ws"}://${base.host}${info.websocket_path}`;
      try {
        link = await openWebSocket(ws, handlers, Ctor, this.timeoutMs);
      } catch (e) {
        throw new AnthillError("Connect", `${(e as Error).message}${wtError ? ` (and WebTransport: ${wtError})` : ""}`);
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
  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  private emit<K extends keyof ClientEvents>(event: K, ...args: Parameters<ClientEvents[K]>): void {
    for (const l of this.listeners.get(event) ?? []) {
      try {
        (l as (...a: Parameters<ClientEvents[K]>) => void)(...args);
      } catch (e) {
        console.error(`anthill: a "${event}" listener threw`, e);
      }
    }
  }

  // ---- session --------------------------------------------------------------

  /** Logs in with a device id (the node derives a stable player id from it). */
  async loginDevice(device: string): Promise<bigint> {
    return (await this.hello({ type: "Device", id: device })).player;
  }

  /** Logs in through the node's login module (the payload is the module's to read). */
  async loginCustom(payload: Uint8Array | string): Promise<bigint> {
    return (await this.hello({ type: "Custom", payload: bytesOf(payload) })).player;
  }

  /** Resumes a session with a token saved earlier (another tab, a reload) within the node's resume grace. */
  async loginResume(token: string): Promise<{ player: bigint; resumed: boolean }> {
    return this.hello({ type: "Resume", token });
  }

  private hello(auth: Auth): Promise<{ player: bigint; resumed: boolean }> {
    const link = this.link;
    if (link === undefined) return Promise.reject(this.lost());
    this.closedWith = undefined;
    this.autoResume = this.autoResumeWanted;
    return new Promise((resolve, reject) => {
      this.welcome?.reject(new AnthillError("Failed", "another login replaced this one"));
      this.welcome = this.pending(resolve, reject, "the login", () => (this.welcome = undefined));
      link.send({ type: "Hello", version: VERSION, auth, lastPush: this.lastPush });
    });
  }

  /** The player id, once logged in. */
  get player(): bigint | undefined {
    return this.playerId;
  }

  /** The session token (to resume from another page) and its expiry (ms since the epoch). */
  get token(): { token: string; expiresAtMs: bigint } | undefined {
    return this.session;
  }

  // ---- requests and rooms -------------------------------------------------

  /** Sends `payload` to `module` or `module/key` and waits for the reply. */
  request(target: string, payload: Uint8Array | string, options: { timeoutMs?: number } = {}): Promise<Uint8Array> {
    if (this.playerId === undefined) return Promise.reject(new AnthillError("NotLoggedIn", "log in before sending requests"));
    const link = this.link;
    if (link === undefined) return Promise.reject(this.lost());
    const id = this.id();
    return new Promise((resolve, reject) => {
      this.replies.set(id, this.pending(resolve, reject, `request ${id} to ${target}`, () => this.replies.delete(id), options.timeoutMs));
      link.send({ type: "Request", id, target, payload: bytesOf(payload) });
    });
  }

  /** `request` with text in and out. */
  async requestText(target: string, text: string, options: { timeoutMs?: number } = {}): Promise<string> {
    return textDecoder.decode(await this.request(target, text, options));
  }

  /** Joins a room (`module/key`); resolves to its handle, used by every later call about it. */
  join(room: string, options: { timeoutMs?: number } = {}): Promise<number> {
    const link = this.link;
    if (link === undefined) return Promise.reject(this.lost());
    const id = this.id();
    return new Promise((resolve, reject) => {
      this.joins.set(id, this.pending(resolve, reject, `joining ${room}`, () => this.joins.delete(id), options.timeoutMs));
      link.send({ type: "Join", id, room });
    });
  }

  /** Leaves a room; resolves when the node says it is left. */
  leave(room: number): Promise<void> {
    const link = this.link;
    if (link === undefined) return Promise.reject(this.lost());
    return new Promise((resolve, reject) => {
      this.leaves.get(room)?.reject(new AnthillError("Failed", "left twice"));
      this.leaves.set(room, this.pending(resolve, reject, `leaving room ${room}`, () => this.leaves.delete(room)));
      link.send({ type: "Leave", id: this.id(), room });
    });
  }

  /** The mirrored state of a joined room. */
  roomState(room: number): RoomState | undefined {
    const r = this.rooms.get(room);
    const now = r?.mirror.current();
    return r && now ? { room, name: r.name, tick: now.tick, entities: now.entities } : undefined;
  }

  /** The handles of the rooms this session is in. */
  get roomHandles(): number[] {
    return [...this.rooms.keys()];
  }

  /** Resolves true at the next state change of any room, false after `timeoutMs`. */
  stateChanged(timeoutMs: number): Promise<boolean> {
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
  nextPush(timeoutMs: number): Promise<Push | undefined> {
    const queued = this.pushes.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const waiter = (p: Push) => {
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
  ping(): Promise<number> {
    const link = this.link;
    if (link === undefined) return Promise.reject(this.lost());
    return new Promise((resolve) => {
      const nonce = ++this.nonce;
      this.pings.set(nonce, { sent: now(), resolve });
      link.send({ type: "Ping", nonce });
    });
  }

  /** The last measured round-trip time (ms). */
  get rtt(): number | undefined {
    return this.lastRtt;
  }

  private sendPing(): void {
    if (this.link === undefined) return;
    const nonce = ++this.nonce;
    this.pings.set(nonce, { sent: now() });
    if (this.pings.size > 16) this.pings.delete(this.pings.keys().next().value as bigint);
    this.link.send({ type: "Ping", nonce });
  }

  // ---- connection ---------------------------------------------------------

  private autoResumeWanted = true;

  /** Resume automatically after a lost connection (default: on). */
  setAutoResume(on: boolean): void {
    this.autoResumeWanted = on;
    this.autoResume = on;
  }

  /** Drops the connection as a network failure would; with auto-resume on, the client comes back. */
  simulateNetworkLoss(): void {
    this.link?.close("simulated network loss");
  }

  /** Reconnects and resumes the session now; resolves whether the node still had it. */
  async resume(): Promise<boolean> {
    if (this.session === undefined) throw new AnthillError("NotLoggedIn", "nothing to resume: log in first");
    const token = this.session.token;
    this.detach("resuming");
    await this.open();
    const { resumed } = await this.hello({ type: "Resume", token });
    this.stats.resumes++;
    this.emit("resumed", { transport: this.lastTransport as Transport, resumed });
    return resumed;
  }

  /** Closes the connection for good. */
  close(): void {
    this.autoResume = false;
    this.autoResumeWanted = false;
    clearInterval(this.pingTimer);
    for (const r of this.rooms.values()) this.dropHeldAck(r);
    const link = this.link;
    this.link = undefined;
    link?.close();
  }

  /** Whether the client has a live connection now. */
  get isConnected(): boolean {
    return this.link !== undefined;
  }

  /** Why the node ended the session, if it did. */
  get closedReason(): AnthillError | undefined {
    return this.closedWith;
  }

  // ---- frames -------------------------------------------------------------

  private sendAck(room: number, tick: bigint): void {
    this.link?.sendUnreliable({ type: "Ack", room, tick });
    this.stats.acksSent++;
  }

  private dropHeldAck(r: RoomMirror): void {
    if (r.held) clearTimeout(r.held.timer);
    r.held = undefined;
  }

  private onFrame(f: Frame, unreliable: boolean, bytes: number): void {
    this.stats.framesIn++;
    this.stats.bytesIn += unreliable ? bytes : 0;
    if (unreliable) this.stats.datagramsIn++;
    switch (f.type) {
      case "Welcome": {
        this.playerId = f.player;
        this.session = { token: f.token, expiresAtMs: f.expiresAtMs };
        if (!f.resumed) {
          for (const r of this.rooms.values()) this.dropHeldAck(r);
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
          if (f.seq <= this.lastPush) return; // replayed after a resume: seen
          this.lastPush = f.seq;
        }
        const push = { payload: f.payload, reliable: f.seq !== 0n };
        const waiter = this.pushWaiters.shift();
        if (waiter) waiter(push);
        else {
          this.pushes.push(push);
          if (this.pushes.length > 1024) this.pushes.shift();
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
        if (left) this.dropHeldAck(left);
        this.rooms.delete(f.room);
        this.leaves.get(f.room)?.resolve();
        this.emit("left", { room: f.room, name });
        return;
      }
      case "Snapshot":
      case "Delta": {
        this.stats.stateFrames++;
        const r = this.rooms.get(f.room);
        if (r === undefined) return;
        const applied = f.type === "Snapshot" ? r.mirror.onSnapshot(f.tick, f.entities) : r.mirror.onDelta(f.tick, f.base, f.changed, f.removed);
        if (applied.kind !== "now") return;
        if (f.type === "Snapshot") this.stats.snapshots++;
        else this.stats.deltas++;
        // A snapshot is acked at once: until then every frame is one.
        if (++r.unacked >= (f.type === "Snapshot" ? 1 : Math.max(1, this.options.ackEvery ?? 2))) {
          r.unacked = 0;
          const delay = this.options.ackDelayMs ?? 25;
          if (f.type === "Snapshot" || delay <= 0) {
            // This ack covers any held one.
            this.dropHeldAck(r);
            this.sendAck(f.room, applied.tick);
          } else if (r.held) {
            r.held.tick = applied.tick;
          } else {
            const room = f.room;
            const timer = setTimeout(() => {
              const h = r.held;
              r.held = undefined;
              if (h) this.sendAck(room, h.tick);
            }, delay);
            r.held = { tick: applied.tick, timer };
          }
        }
        const state = this.roomState(f.room);
        if (state) this.emit("state", state);
        return;
      }
      case "Pong": {
        const p = this.pings.get(f.nonce);
        if (p === undefined) return;
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

  private onDisconnect(generation: number, reason: string): void {
    if (generation !== this.generation) return; // an older connection
    this.link = undefined;
    this.failAll(this.lost(reason));
    const resuming = this.autoResume && this.session !== undefined && this.closedWith === undefined;
    this.emit("disconnected", { reason, resuming });
    if (resuming) void this.resumeLoop();
  }

  private async resumeLoop(): Promise<void> {
    let delay = 50;
    for (let attempt = 0; attempt < 40; attempt++) {
      await new Promise((r) => setTimeout(r, delay));
      if (!this.autoResume || this.link !== undefined) return;
      try {
        await this.resume();
        return;
      } catch (e) {
        if (e instanceof AnthillError && e.kind === "Closed") return;
        this.detach("resume failed");
        delay = Math.min(delay * 2, 2000);
      }
    }
  }

  // ---- plumbing -------------------------------------------------------------

  /** Drops the current connection without treating it as lost (no resume starts). */
  private detach(reason: string): void {
    const link = this.link;
    this.link = undefined;
    this.generation++;
    link?.close(reason);
  }

  private id(): number {
    this.nextId = this.nextId >= 0xffff_ffff ? 1 : this.nextId + 1;
    return this.nextId;
  }

  private lost(reason = "no connection"): AnthillError {
    return new AnthillError("ConnectionLost", `the connection was lost (${reason})`);
  }

  private pending<T>(resolve: (v: T) => void, reject: (e: AnthillError) => void, what: string, forget: () => void, timeoutMs = this.timeoutMs): Pending<T> {
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

  private failAll(e: AnthillError): void {
    const all: Pending<never>[] = [...this.replies.values(), ...this.joins.values(), ...this.leaves.values()] as Pending<never>[];
    if (this.welcome) all.push(this.welcome as Pending<never>);
    for (const p of all) p.reject(e);
  }
}

const now = (): number => (typeof performance !== "undefined" ? performance.now() : Date.now());
