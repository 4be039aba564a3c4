// What the browser tests share: Debian's Chromium launched headless through
// playwright-core (CHROMIUM is its path, set by target/toolchains/browser/run),
// a page that collects its own errors, and waiting for a condition.
"use strict";
const { chromium } = require("playwright-core");

/** Headless Chromium and one page whose errors land in `problems`. */
async function open(viewport) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
  });
  const page = await browser.newPage({ viewport });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  return { browser, page, problems };
}

/** Polls `check` until it gives something truthy (returned), or fails after `ms`. */
async function until(what, check, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

module.exports = { open, until };
