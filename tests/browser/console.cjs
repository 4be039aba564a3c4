// Drives the web console in headless Chromium the way an operator would: a
// wrong token is refused, the right one logs in, the module table, charts and
// log tail fill in, a canary is started from the deploy form and rolled back
// from its row. Each step is checked in the page and against the admin API.
// Prints one JSON line of findings; exits non-zero naming the step that failed.
// Run by tests/e2e/console.rs through target/toolchains/browser/run.
"use strict";
const { open, until } = require("./chromium.cjs");
const path = require("path");

const { ANTHILL_URL: url, ANTHILL_TOKEN: token, COMPONENT: component, SHOTS: shots } = process.env;

async function api(p) {
  const r = await fetch(url + p, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`GET ${p}: ${r.status} ${await r.text()}`);
  return r.json();
}

(async () => {
  const findings = { shots: [] };
  const { browser, page, problems } = await open({ width: 1280, height: 1000 });
  const shot = async (name) => {
    const file = path.join(shots, `console-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    findings.shots.push(file);
  };
  let step = "open /console";
  try {
    await page.goto(`${url}/console`);

    step = "a wrong token is refused";
    await page.fill("#token", "not-the-token");
    await page.click("#login-form button");
    await page.waitForSelector("#login-error:has-text('not accepted')");
    // The browser logs the refused request itself; that one is expected.
    problems.splice(0, problems.length, ...problems.filter((p) => !p.includes("status of 401")));

    step = "log in";
    await page.fill("#token", token);
    await page.click("#login-form button");
    await page.waitForSelector("#app:not([hidden])");
    await page.waitForSelector("#modules tr[data-module='counter']");

    step = "charts and the log tail fill in";
    await until("three refreshes", () => page.evaluate(() => window.anthillConsole.refreshes >= 3));
    findings.calls = await page.textContent("#v-calls");
    await page.waitForSelector("#log:has-text('hello-console')");
    findings.summary = await page.textContent("#summary");
    await shot("modules");

    step = "start a canary from the deploy form";
    await page.fill("#deploy-name", "counter");
    await page.setInputFiles("#deploy-file", component);
    await page.fill("#deploy-canary", "30");
    await page.click("#deploy-form button");
    await page.waitForSelector("#deploy-result:has-text('canary on 30% of keys')");
    const during = await until("the canary in the API", async () => (await api("/v1/modules/counter")).canary);
    findings.canary = during;
    await page.waitForSelector("#modules tr[data-module='counter'] .canary:has-text('30% of keys')");
    await shot("canary");

    step = "roll the canary back from its row";
    await page.click("#modules tr[data-module='counter'] button[data-action='rollback']");
    await until("the canary gone from the API", async () => (await api("/v1/modules/counter")).canary === null);
    await until("the row without a canary", async () =>
      (await page.$("#modules tr[data-module='counter'] .canary")) === null);
    findings.rolledBack = true;
    await shot("rolled-back");

    step = "no page errors";
    if (problems.length) throw new Error(problems.join("; "));
    console.log(JSON.stringify(findings));
    await browser.close();
  } catch (e) {
    try { await shot("failure"); } catch (_) { /* the page may be gone */ }
    console.error(`console test failed at "${step}": ${e.message}${problems.length ? ` (${problems.join("; ")})` : ""}`);
    await browser.close();
    process.exit(1);
  }
})();
