/**
 * One connection to a node, over either browser transport, reduced to what a
 * session needs: send a frame reliably (the control stream, or a WebSocket
 * message), send one unreliably (a WebTransport datagram, or a message), and
 * hear frames and the end of the connection. Docs/protocol.md says what maps
 * to what; the client above does not know which transport it has.
 */
import { FrameReader, MAX_FRAME, decode, encode, encodePrefixed } from "./wire.js";
/** Opens a WebSocket to `url` (`ws://HOST:WEBPORT/ws`). */
export function openWebSocket(url, handlers, Ctor, timeoutMs) {
    return new Promise((resolve, reject) => {
        const ws = new Ctor(url);
        ws.binaryType = "arraybuffer";
        let open = false;
        let ended = false;
        const timer = setTimeout(() => {
            if (!open) {
                ended = true;
                ws.close();
                reject(new Error(`no WebSocket connection to ${url} within ${timeoutMs} ms`));
            }
        }, timeoutMs);
        const end = (reason) => {
            if (ended)
                return;
            ended = true;
            clearTimeout(timer);
            if (open)
                handlers.closed(reason);
            else
                reject(new Error(`WebSocket ${url}: ${reason}`));
        };
        const link = {
            transport: "websocket",
            send(frame) {
                if (ws.readyState === 1)
                    ws.send(encodePrefixed(frame));
            },
            sendUnreliable(frame) {
                // Nothing is unreliable on a WebSocket; a client behind on its own
                // writes would rather lose an ack than queue it, as a datagram would.
                if (ws.readyState === 1 && ws.bufferedAmount < 64 * 1024)
                    ws.send(encodePrefixed(frame));
            },
            close(reason = "closed by the client") {
                end(reason);
                ws.close(1000);
            },
        };
        ws.onopen = () => {
            open = true;
            clearTimeout(timer);
            resolve(link);
        };
        ws.onmessage = (ev) => {
            if (typeof ev.data === "string")
                return link.close("the node sent a text message");
            // One message holds one or more whole frames, each length-prefixed.
            const bytes = new Uint8Array(ev.data);
            const reader = new FrameReader(MAX_FRAME);
            reader.push(bytes);
            try {
                for (let f = reader.next(); f !== undefined; f = reader.next())
                    handlers.frame(f, false, bytes.length);
                if (reader.buffered !== 0)
                    throw new Error(`${reader.buffered} bytes of a cut frame`);
            }
            catch (e) {
                link.close(`bad frame from the node: ${e.message}`);
            }
        };
        ws.onerror = () => end("WebSocket error");
        ws.onclose = (ev) => {
            const why = ev.code >= 4000 && ev.code < 5000 ? `closed by the node (application code ${ev.code - 4000}${ev.reason ? `: ${ev.reason}` : ""})` : `closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ""})`;
            end(why);
        };
    });
}
/** Hex to bytes (a certificate hash from `connect.json`). */
function hexBytes(hex) {
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++)
        out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    return out;
}
/**
 * Opens a WebTransport session to `url` (`https://HOST:QUICPORT/`), pinning
 * the node's self-signed certificate by `certificateSha256` when given, and
 * the control stream on it.
 */
export async function openWebTransport(url, certificateSha256, handlers, timeoutMs) {
    const options = {};
    if (certificateSha256)
        options.serverCertificateHashes = [{ algorithm: "sha-256", value: hexBytes(certificateSha256) }];
    const wt = new WebTransport(url, options);
    let timer;
    try {
        await Promise.race([
            wt.ready,
            new Promise((_, reject) => {
                timer = setTimeout(() => reject(new Error(`no WebTransport session with ${url} within ${timeoutMs} ms`)), timeoutMs);
            }),
        ]);
    }
    catch (e) {
        try {
            wt.close();
        }
        catch {
            /* never opened */
        }
        throw e;
    }
    finally {
        clearTimeout(timer);
    }
    const stream = await wt.createBidirectionalStream();
    const writer = stream.writable.getWriter();
    // Newer browsers create datagram writers on demand; older ones have one.
    const datagrams = wt.datagrams;
    const dgramWriter = (datagrams.createWritable ? datagrams.createWritable() : datagrams.writable).getWriter();
    let ended = false;
    const end = (reason) => {
        if (ended)
            return;
        ended = true;
        handlers.closed(reason);
    };
    const link = {
        transport: "webtransport",
        send(frame) {
            if (!ended)
                writer.write(encodePrefixed(frame)).catch(() => end("the control stream failed"));
        },
        sendUnreliable(frame) {
            if (!ended)
                dgramWriter.write(encode(frame)).catch(() => { });
        },
        close(reason = "closed by the client") {
            end(reason);
            try {
                wt.close({ closeCode: 0, reason: "bye" });
            }
            catch {
                /* already closed */
            }
        },
    };
    (async () => {
        const reader = stream.readable.getReader();
        const frames = new FrameReader(MAX_FRAME);
        try {
            for (;;) {
                const { value, done } = await reader.read();
                if (done)
                    break;
                frames.push(value);
                for (let f = frames.next(); f !== undefined; f = frames.next())
                    handlers.frame(f, false, value.length);
            }
            end("the node closed the control stream");
        }
        catch (e) {
            end(e instanceof Error && e.name === "DecodeError" ? `bad frame from the node: ${e.message}` : "the control stream ended");
            if (e instanceof Error && e.name === "DecodeError")
                link.close(e.message);
        }
    })();
    (async () => {
        const reader = wt.datagrams.readable.getReader();
        try {
            for (;;) {
                const { value, done } = await reader.read();
                if (done)
                    break;
                let frame;
                try {
                    frame = decode(value);
                }
                catch {
                    continue; // a datagram is on its own: a bad one is just lost
                }
                handlers.frame(frame, true, value.length);
            }
        }
        catch {
            /* the session ended; the stream reader reports it */
        }
    })();
    wt.closed.then((info) => end(`the session closed (code ${info.closeCode ?? 0}${info.reason ? `: ${info.reason}` : ""})`), (e) => end(`the session failed: ${e.message ?? e}`));
    return link;
}
