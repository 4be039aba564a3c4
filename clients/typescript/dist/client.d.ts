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
import { type EntityMap } from "./mirror.js";
import { type Transport, type WebSocketConstructor } from "./link.js";
import { type ErrorCode } from "./wire.js";
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
export declare class AnthillError extends Error {
    readonly kind: ErrorKind;
    readonly code?: ErrorCode | undefined;
    constructor(kind: ErrorKind, message: string, code?: ErrorCode | undefined);
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
    joined: (room: {
        room: number;
        name: string;
    }) => void;
    left: (room: {
        room: number;
        name: string;
    }) => void;
    /** The connection dropped; `resuming` says whether the client will resume by itself. */
    disconnected: (info: {
        reason: string;
        resuming: boolean;
    }) => void;
    /** A new connection continues the session (`resumed` false: the node had let it go). */
    resumed: (info: {
        transport: Transport;
        resumed: boolean;
    }) => void;
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
export declare class Client {
    /** The node's web address, e.g. `http://127.0.0.1:7352`. */
    readonly url: string;
    private readonly options;
    private link;
    private generation;
    private nextId;
    private playerId;
    private session;
    private lastPush;
    private rooms;
    private replies;
    private joins;
    private leaves;
    private welcome;
    private pings;
    private nonce;
    private pingTimer;
    private pushes;
    private pushWaiters;
    private listeners;
    private autoResume;
    private closedWith;
    private lastRtt;
    private readonly timeoutMs;
    /** What the client received. */
    readonly stats: Stats;
    private constructor();
    /**
     * Connects to the node whose web port is at `url` (`http://HOST:PORT`):
     * reads `/play/connect.json`, then opens WebTransport (pinned) or WebSocket.
     */
    static connect(url: string, options?: ConnectOptions): Promise<Client>;
    /** Fetches what a page needs to reach the node (port, certificate hash). */
    static connectInfo(url: string): Promise<ConnectInfo>;
    /** The transport of the live connection (or of the last one). */
    get transport(): Transport | undefined;
    private lastTransport;
    private open;
    /** Calls `listener` on each `event`; returns what stops it. */
    on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void;
    private emit;
    /** Logs in with a device id (the node derives a stable player id from it). */
    loginDevice(device: string): Promise<bigint>;
    /** Logs in through the node's login module (the payload is the module's to read). */
    loginCustom(payload: Uint8Array | string): Promise<bigint>;
    /** Resumes a session with a token saved earlier (another tab, a reload) within the node's resume grace. */
    loginResume(token: string): Promise<{
        player: bigint;
        resumed: boolean;
    }>;
    private hello;
    /** The player id, once logged in. */
    get player(): bigint | undefined;
    /** The session token (to resume from another page) and its expiry (ms since the epoch). */
    get token(): {
        token: string;
        expiresAtMs: bigint;
    } | undefined;
    /** Sends `payload` to `module` or `module/key` and waits for the reply. */
    request(target: string, payload: Uint8Array | string, options?: {
        timeoutMs?: number;
    }): Promise<Uint8Array>;
    /** `request` with text in and out. */
    requestText(target: string, text: string, options?: {
        timeoutMs?: number;
    }): Promise<string>;
    /** Joins a room (`module/key`); resolves to its handle, used by every later call about it. */
    join(room: string, options?: {
        timeoutMs?: number;
    }): Promise<number>;
    /** Leaves a room; resolves when the node says it is left. */
    leave(room: number): Promise<void>;
    /** The mirrored state of a joined room. */
    roomState(room: number): RoomState | undefined;
    /** The handles of the rooms this session is in. */
    get roomHandles(): number[];
    /** Resolves true at the next state change of any room, false after `timeoutMs`. */
    stateChanged(timeoutMs: number): Promise<boolean>;
    /** The next push (queued ones first), or undefined after `timeoutMs`. */
    nextPush(timeoutMs: number): Promise<Push | undefined>;
    /** Measures a round trip now (ms). */
    ping(): Promise<number>;
    /** The last measured round-trip time (ms). */
    get rtt(): number | undefined;
    private sendPing;
    private autoResumeWanted;
    /** Resume automatically after a lost connection (default: on). */
    setAutoResume(on: boolean): void;
    /** Drops the connection as a network failure would; with auto-resume on, the client comes back. */
    simulateNetworkLoss(): void;
    /** Reconnects and resumes the session now; resolves whether the node still had it. */
    resume(): Promise<boolean>;
    /** Closes the connection for good. */
    close(): void;
    /** Whether the client has a live connection now. */
    get isConnected(): boolean;
    /** Why the node ended the session, if it did. */
    get closedReason(): AnthillError | undefined;
    private sendAck;
    private dropHeldAck;
    private onFrame;
    private onDisconnect;
    private resumeLoop;
    /** Drops the current connection without treating it as lost (no resume starts). */
    private detach;
    private id;
    private lost;
    private pending;
    private failAll;
}
