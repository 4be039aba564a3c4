/**
 * One connection to a node, over either browser transport, reduced to what a
 * session needs: send a frame reliably (the control stream, or a WebSocket
 * message), send one unreliably (a WebTransport datagram, or a message), and
 * hear frames and the end of the connection. Docs/protocol.md says what maps
 * to what; the client above does not know which transport it has.
 */
import { type Frame } from "./wire.js";
/** The transports a browser (or Node.js) can reach a node with. */
export type Transport = "webtransport" | "websocket";
/** What a link tells its owner. */
export interface LinkHandlers {
    /** A frame from the node (`unreliable`: it came as a datagram). */
    frame(frame: Frame, unreliable: boolean, bytes: number): void;
    /** The connection ended; `reason` says how, as the transport reported it. */
    closed(reason: string): void;
}
export interface Link {
    readonly transport: Transport;
    send(frame: Frame): void;
    sendUnreliable(frame: Frame): void;
    /** Ends the connection (the node sees a normal close). */
    close(reason?: string): void;
}
/** A WebSocket constructor: the platform's, or one given (Node.js 20 without --experimental-websocket). */
export type WebSocketConstructor = new (url: string) => WebSocket;
/** Opens a WebSocket to `url` (`ws://HOST:WEBPORT/ws`). */
export declare function openWebSocket(url: string, handlers: LinkHandlers, Ctor: WebSocketConstructor, timeoutMs: number): Promise<Link>;
/**
 * Opens a WebTransport session to `url` (`https://HOST:QUICPORT/`), pinning
 * the node's self-signed certificate by `certificateSha256` when given, and
 * the control stream on it.
 */
export declare function openWebTransport(url: string, certificateSha256: string | null, handlers: LinkHandlers, timeoutMs: number): Promise<Link>;
