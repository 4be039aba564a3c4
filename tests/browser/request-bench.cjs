// Request → reply as a page sees it: headless Chromium loads a document from
// the node's web port (an allowed origin), imports the TypeScript SDK the
// node serves, and times REQUESTS sequential `echo` requests over
// WebTransport, then over WebSocket: paced (one every 12 ms, as a game sends
// inputs, so both ends are idle between requests), then back to back (the
// node runs with its per-player rate limit raised). Beside each, the same
// number of pings (answered by the gateway, no actor): the floor of browser +
// transport. Prints one JSON line per transport and pace.
// Run by `anthill-bench transports` through target/toolchains/browser/run.
"use strict";
const { open } = require("./chromium.cjs");

const { ANTHILL_WEB: web, REQUESTS: requests = "1000" } = process.env;

(async () => {
  const { browser, page, problems } = await open({ width: 400, height: 300 });
  try {
    // A JSON document has no favicon link: Chromium would ask and log the 404.
    await page.route("**/favicon.ico", (r) => r.fulfill({ status: 204 }));
    await page.goto(`${web}/play/connect.json`);
    for (const [transport, paceMs] of [["webtransport", 12], ["websocket", 12], ["webtransport", 0], ["websocket", 0]]) {
      const r = await page.evaluate(
        async ({ transport, n, paceMs }) => {
          const { Client } = await import("/play/sdk/index.js");
          const client = await Client.connect(location.origin, { transport });
          await client.loginDevice(`bench-${transport}-${Date.now()}`);
          const body = new Uint8Array(64);
          const pause = () => (paceMs ? new Promise((r) => setTimeout(r, paceMs)) : undefined);
          for (let i = 0; i < 50; i++) {
            await client.request("echo", body); // warm-up
            await pause();
          }
          const ms = [];
          for (let i = 0; i < n; i++) {
            const t = performance.now();
            await client.request("echo", body);
            ms.push(performance.now() - t);
            await pause();
          }
          const pings = [];
          for (let i = 0; i < n; i++) {
            pings.push(await client.ping());
            await pause();
          }
          const used = client.transport;
          client.close();
          const at = (v, q) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(v.length * q))];
          return {
            used,
            p50: at(ms, 0.5),
            p99: at(ms, 0.99),
            mean: ms.reduce((a, b) => a + b, 0) / ms.length,
            pingP50: at(pings, 0.5),
            pingP99: at(pings, 0.99),
          };
        },
        { transport, n: Number(requests), paceMs },
      );
      if (r.used !== transport) throw new Error(`asked for ${transport}, the SDK used ${r.used}`);
      console.log(
        JSON.stringify({ bench: "browser-request", transport, pace_ms: paceMs, requests: Number(requests), p50_ms: r.p50, p99_ms: r.p99, mean_ms: r.mean,
          ping_p50_ms: r.pingP50, ping_p99_ms: r.pingP99 }),
      );
    }
    if (problems.length) throw new Error(problems.join("; "));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(`request bench: ${e.message}`);
  process.exit(1);
});
