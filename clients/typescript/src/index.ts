/**
 * The Anthill TypeScript client SDK: connect to a node over WebTransport or
 * WebSocket, log in, send requests, join rooms and read their mirrored state.
 * See clients/typescript/README.md.
 */

export { AnthillError, Client } from "./client.js";
export type { ClientEvents, ConnectInfo, ConnectOptions, ErrorKind, Push, RoomState, Stats } from "./client.js";
export type { Transport, WebSocketConstructor } from "./link.js";
export { HISTORY, Mirror } from "./mirror.js";
export type { Applied, EntityMap } from "./mirror.js";
export { DecodeError, ERROR_CODES, FrameReader, MAX_FRAME, VERSION, decode, encode, encodePrefixed } from "./wire.js";
export type { Auth, Entity, ErrorCode, Frame } from "./wire.js";
