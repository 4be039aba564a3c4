// Plays the browser arena (/play) in headless Chromium as a player would, and
// tries the SDK from a page of another origin. Modes (MODE):
//   webtransport — the page's default transport; holds ArrowRight and checks
//                  its own entity moves, sees a bot move, then hot-swaps
//                  `arena` through the admin API while playing and checks
//                  the page stays connected and its state keeps coming;
//   websocket    — the same play with /play?transport=websocket;
//   foreign      — a page served from another port (a disallowed origin)
//                  imports the SDK from the node and tries both transports.
// Prints one JSON line of findings; exits non-zero naming the failed step.
// Run by tests/e2e/play.rs through target/toolchains/browser/run.
"use strict";
const { open, until: wait } = require("./chromium.cjs");
const fs = require("fs");
const http = require("http");
const path = require("path");

const { MODE: mode, ANTHILL_WEB: web, ANTHILL_ADMIN: admin, ANTHILL_TOKEN: token, COMPONENT: component, SHOTS: shots } = process.env;
const until = (what, check) => wait(what, check, 20000);

async function hotSwap() {
  const r = await fetch(`${admin}/v1/modules/arena?kind=keyed&force=true`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${token}` },
    body: fs.readFileSync(component),
  });
  const body = await r.text();
  if (!r.ok) throw new Error(`hot swap of arena: ${r.status} ${body}`);
  return JSON.parse(body);
}

async function play(page, findings, shot) {
  const url = mode === "websocket" ? `${web}/play?transport=websocket` : `${web}/play`;
  const demo = () => page.evaluate(() => ({ ...window.anthillDemo, slot: String(window.anthillDemo.slot), me: window.anthillDemo.me }));
  const step = (s) => (findings.step = s);

  step(`open ${url}`);
  await page.goto(url);
  step("connect, log in, join a room");
  await until("the page connected", async () => {
    const d = await demo();
    if (d.error) throw new Error(`the page failed: ${d.error}`);
    return d.connected;
  });
  step("20 state updates");
  await until("20 state updates", async () => (await demo()).ticks >= 20);
  const start = await demo();
  findings.transport = start.transport;
  findings.playerId = start.playerId;
  findings.room = start.room;
  findings.entities = start.entities;
  findings.rtt = start.rtt;

  // Spawn points are scattered over the whole 1000x1000 field, so a player
  // born at the right edge cannot move right: head for the open side.
  const right = !(start.me && start.me.x > 500);
  const [key, dir] = right ? ["ArrowRight", "right"] : ["ArrowLeft", "left"];
  step(`move ${dir} with the keyboard`);
  await page.keyboard.down(key);
  const moved = await until(`my own position moving ${dir}`, async () => {
    const d = await demo();
    if (!d.me || !start.me) return null;
    return (right ? d.me.x > start.me.x + 10 : d.me.x < start.me.x - 10) ? d : null;
  });
  await page.keyboard.up(key);
  findings.moved = { from: start.me, to: moved.me, dir };
  step("see a bot move");
  await until("another player moving", async () => (await demo()).othersMoved > 0);
  await shot(`play-${mode}`);

  if (mode === "webtransport") {
    step("hot swap arena while playing");
    const before = await demo();
    findings.swap = await hotSwap();
    await until("30 state updates after the swap", async () => (await demo()).ticks >= before.ticks + 30);
    const after = await demo();
    const down = !(after.me && after.me.y > 500);
    const vkey = down ? "ArrowDown" : "ArrowUp";
    step(`move ${down ? "down" : "up"} after the swap`);
    await page.keyboard.down(vkey);
    await until(`moving ${down ? "down" : "up"} after the swap`, async () => {
      const d = await demo();
      return down ? d.me.y > after.me.y + 5 : d.me.y < after.me.y - 5;
    });
    await page.keyboard.up(vkey);
    const end = await demo();
    findings.afterSwap = { connected: end.connected, disconnects: end.disconnects, ticks: end.ticks - before.ticks, transport: end.transport };
    await shot("play-after-swap");
  }
  const last = await demo();
  findings.ticks = last.ticks;
  findings.disconnects = last.disconnects;
  findings.hud = { transport: await page.textContent("#transport"), rtt: await page.textContent("#rtt"), status: await page.textContent("#status") };
}

async function foreign(browser, findings) {
  // Another origin: a page on a port of our own, importing the SDK from the node.
  const server = http.createServer((_, res) => {
    res.setHeader("content-type", "text/html");
    res.end("<!doctype html><title>not the node</title><p>another site</p>");
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  findings.origin = origin;
  const page = await browser.newPage();
  try {
    findings.step = "open a page of another origin";
    await page.goto(origin);
    findings.step = "connect from it over both transports";
    findings.attempts = await page.evaluate(async (web) => {
      const { Client } = await import(`${web}/play/sdk/index.js`);
      const out = {};
      for (const transport of ["webtransport", "websocket"]) {
        try {
          const c = await Client.connect(web, { transport, timeoutMs: 5000 });
          out[transport] = { connected: true, transport: c.transport };
          c.close();
        } catch (e) {
          out[transport] = { connected: false, kind: e.kind, message: e.message };
        }
      }
      return out;
    }, web);
  } finally {
    await page.close();
    server.close();
  }
}

(async () => {
  const findings = { mode, shots: [] };
  const { browser, page, problems } = await open({ width: 900, height: 1000 });
  const shot = async (name) => {
    const file = path.join(shots, `${name}.png`);
    await page.screenshot({ path: file });
    findings.shots.push(file);
  };
  try {
    if (mode === "foreign") await foreign(browser, findings);
    else await play(page, findings, shot);
    findings.step = "no page errors";
    if (problems.length) throw new Error(problems.join("; "));
    delete findings.step;
    console.log(JSON.stringify(findings));
    await browser.close();
  } catch (e) {
    try {
      await shot(`play-${mode}-failure`);
    } catch (_) {
      /* the page may be gone */
    }
    console.error(`play test (${mode}) failed at "${findings.step}": ${e.message}${problems.length ? ` (${problems.join("; ")})` : ""}`);
    console.error(JSON.stringify(findings));
    await browser.close();
    process.exit(1);
  }
})();
