// The web page in a real browser: headless Chromium (Debian's `chromium`) driven by
// playwright-core, against the real taskmaster binary on a TCP listener with basic auth.
//
//   cargo build -p taskmaster --bins && (cd tests/browser && npm ci && node --test)
//
// TASKMASTER_BIN names the binary (default target/debug/taskmaster), CHROMIUM the browser
// (default /usr/bin/chromium), SCREENSHOT_DIR where the screenshots go (default
// target/browser-screenshots; the README's are made with SCREENSHOT_DIR=docs/images).
//
// Every process this starts is ended by its pid; every wait is for a condition, with a
// deadline: no fixed sleep decides a pass or a fail.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = process.env.TASKMASTER_BIN || path.join(root, "target/debug/taskmaster");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = path.resolve(root, process.env.SCREENSHOT_DIR || "target/browser-screenshots");
const TIMEOUT = 20_000;
const USER = "admin";
const PASSWORD = "s3cret";
const AUTH = "Basic " + Buffer.from(`${USER}:${PASSWORD}`).toString("base64");

let dir;
let daemon;
let daemonOutput = "";
let port;
let base;
let browser;
let context;
let page;
let evil;

/// A free TCP port on the loopback address.
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/// Calls `f` until it gives something other than undefined/false, for at most `timeout` ms.
async function waitFor(what, f, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await f();
      if (value !== undefined && value !== false && value !== null) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`no ${what} within ${timeout} ms${last ? `: ${last.message}` : ""}\n${daemonOutput}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/// The JSON API from outside the browser (no Origin: as curl or `taskmaster ctl`).
async function api(route, init = {}) {
  const answer = await fetch(base + route, { ...init, headers: { Authorization: AUTH, ...init.headers } });
  return { status: answer.status, body: await answer.json() };
}

async function processInfo(name) {
  const { status, body } = await api(`/v1/processes/${encodeURIComponent(name)}`);
  assert.equal(status, 200, JSON.stringify(body));
  return body;
}

const yaml = (s) => JSON.stringify(s);

function writeConfig(extra = "") {
  const sleep = yaml("sleep 100000");
  fs.writeFileSync(
    path.join(dir, "taskmaster.yaml"),
    `http:
  listen: 127.0.0.1:${port}
  username: ${USER}
  password: ${PASSWORD}
programs:
  web:
    cmd: ${yaml(`sh -c 'echo "web: listening, pid $$"; exec sleep 100000'`)}
    starttime: 0
    stoptime: 2
    stdout: web.out
  api:
    cmd: ${sleep}
    starttime: 0
    healthcheck: {cmd: "true", interval: 1s}
  worker:
    cmd: ${sleep}
    numprocs: 3
    starttime: 0
  sleeper:
    cmd: ${sleep}
    starttime: 0
    autorestart: never
  batch:
    cmd: ${sleep}
    starttime: 0
  crasher:
    cmd: ${yaml("sh -c 'exit 3'")}
    starttime: 0
    autorestart: never
  broken:
    cmd: /nonexistent/server
    startretries: 0
  idle:
    cmd: ${sleep}
    autostart: false
${extra}`,
  );
}

/// The row of `name` on `p`, and what its cells show.
function row(p, name) {
  return p.locator(`tr[data-name="${name}"]`);
}
async function cell(p, name, column) {
  return (await row(p, name).locator(`td.${column}`).textContent()).trim();
}
async function waitForRow(p, name, what, pred) {
  return waitFor(`${name}: ${what} on the page`, async () => {
    const shown = {
      state: await row(p, name).getAttribute("data-state", { timeout: 1000 }),
      pid: await cell(p, name, "pid"),
      cause: await cell(p, name, "cause"),
      paused: await cell(p, name, "paused"),
    };
    return pred(shown) ? shown : undefined;
  });
}

before(async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} is not built: cargo build -p taskmaster --bins`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "taskmaster-browser-"));
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  writeConfig();
  daemon = spawn(BIN, ["run", "-c", path.join(dir, "taskmaster.yaml"), "--no-shell"], {
    cwd: dir,
    env: { ...process.env, HOME: dir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  daemon.stdout.on("data", (d) => { daemonOutput += d; });
  daemon.stderr.on("data", (d) => { daemonOutput += d; });
  await waitFor("taskmaster on its TCP port", async () => (await api("/v1/processes")).status === 200);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  context = await browser.newContext({
    httpCredentials: { username: USER, password: PASSWORD },
    viewport: { width: 1440, height: 900 },
  });
  context.setDefaultTimeout(TIMEOUT);
  page = await context.newPage();
  page.on("pageerror", (error) => { daemonOutput += `page error: ${error.message}\n`; });
  page.on("console", (m) => { if (m.type() === "error") daemonOutput += `console: ${m.text()}\n`; });
  fs.mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (evil ? evil.close(resolve) : resolve()));
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
    const exited = new Promise((resolve) => daemon.once("exit", resolve));
    daemon.kill("SIGTERM");
    const late = setTimeout(() => daemon.kill("SIGKILL"), TIMEOUT);
    await exited;
    clearTimeout(late);
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("the page asks for the password, like the API", async () => {
  const answer = await fetch(base + "/");
  assert.equal(answer.status, 401);
});

test("the page lists every process, live", async () => {
  await page.goto(base + "/");
  assert.match(await page.title(), /taskmaster/);
  const { body } = await api("/v1/processes");
  const names = body.processes.map((p) => p.name).sort();
  await waitFor("every process listed", async () =>
    (await page.locator("#rows tr").count()) === names.length);
  const shown = (await page.locator("#rows tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.name))).sort();
  assert.deepEqual(shown, names);
  await waitFor("the live marker", async () => (await page.locator("#live").textContent()) === "live");
  const web = await waitForRow(page, "web", "RUNNING", (r) => r.state === "RUNNING");
  assert.equal(Number(web.pid), (await processInfo("web")).pid);
  await waitForRow(page, "broken", "FATAL", (r) => r.state === "FATAL" && r.cause === "spawn_failed");
  await waitForRow(page, "crasher", "EXITED", (r) => r.state === "EXITED" && r.cause === "exited");
  await waitFor("api healthy", async () => (await cell(page, "api", "health")) === "healthy");
  assert.equal(await row(page, "idle").getAttribute("data-state"), "STOPPED");
});

test("a state change appears without a reload", async () => {
  await page.evaluate(() => { window.sameDocument = true; });
  const sleeper = await waitForRow(page, "sleeper", "RUNNING", (r) => r.state === "RUNNING" && r.pid);
  process.kill(Number(sleeper.pid), "SIGKILL");
  const after = await waitForRow(page, "sleeper", "its death", (r) => r.state === "EXITED" && r.cause);
  assert.equal(after.cause, "killed");
  assert.equal(after.pid, "");

  const batch = await waitForRow(page, "batch", "RUNNING", (r) => r.state === "RUNNING" && r.pid);
  process.kill(Number(batch.pid), "SIGSTOP");
  await waitForRow(page, "batch", "paused", (r) => r.paused === "SIGSTOP");
  assert.equal(await page.evaluate(() => window.sameDocument), true, "the page was reloaded");
  // The event log follows too: the kill is in it.
  await waitFor("the exit in the event log", async () =>
    /sleeper: .*(SIGKILL|killed)/.test(await page.locator("#eventlog").textContent()));
});

test("the output panel follows, and the restart button restarts", async () => {
  const before = await waitForRow(page, "web", "RUNNING", (r) => r.state === "RUNNING" && r.pid);
  await row(page, "web").locator("button.link").click();
  const out = page.locator("#tail-out");
  await waitFor("web's output", async () =>
    (await out.textContent()).includes(`web: listening, pid ${before.pid}`));

  await row(page, "web").locator("button.restart").click();
  const restarted = await waitForRow(page, "web", "a new pid", (r) =>
    r.state === "RUNNING" && r.pid !== "" && r.pid !== before.pid);
  assert.equal(Number(restarted.pid), (await processInfo("web")).pid);
  // The panel goes on following the same file: the new process's first line comes in.
  await waitFor("the new process's output", async () =>
    (await out.textContent()).includes(`web: listening, pid ${restarted.pid}`));
  await waitFor("the answer said", async () =>
    /restart web: web: stopped, web: started/.test(await page.locator("#notice").textContent()));
  assert.equal(await page.evaluate(() => window.sameDocument), true, "the page was reloaded");

  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SHOTS, "web-page-desktop.png") });
  await page.locator("#tail-close").click();
  await waitFor("the panel closed", async () => await page.locator("#tail").isHidden());
});

test("on a phone the processes are cards", async () => {
  const phone = await browser.newContext({
    httpCredentials: { username: USER, password: PASSWORD },
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  try {
    const p = await phone.newPage();
    await p.goto(base + "/");
    await waitForRow(p, "web", "RUNNING", (r) => r.state === "RUNNING");
    await waitFor("the live marker", async () => (await p.locator("#live").textContent()) === "live");
    // No sideways scrolling: the page is as wide as the screen.
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `the page is ${width}px wide on a 390px screen`);
    const button = await row(p, "web").locator("button.restart").boundingBox();
    assert.ok(button.height >= 32, `a ${button.height}px button is small for a finger`);
    await p.screenshot({ path: path.join(SHOTS, "web-page-phone.png") });
  } finally {
    await phone.close();
  }
});

test("another site's page cannot act", async () => {
  // A page on another site (localhost, not 127.0.0.1) with a form that posts to taskmaster:
  // the browser sends the credentials it has, and taskmaster refuses.
  const target = `${base}/v1/processes/idle/start`;
  evil = http.createServer((request, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end(`<!doctype html><form method="post" action="${target}"></form>
      <script>document.forms[0].submit()</script>`);
  });
  const evilPort = await new Promise((resolve) => evil.listen(0, "127.0.0.1", () => resolve(evil.address().port)));
  const p = await context.newPage();
  try {
    const refused = p.waitForResponse((r) => r.url() === target && r.status() !== 401);
    await p.goto(`http://localhost:${evilPort}/`);
    const answer = await refused;
    assert.equal(answer.status(), 403);
    assert.match((await answer.json()).error, /cross-site request refused/);
  } finally {
    await p.close();
  }
  // The request API of the browser's context, with another Origin: refused too.
  const direct = await context.request.post(target, { headers: { Origin: "http://evil.example" } });
  assert.equal(direct.status(), 403);
  assert.equal((await processInfo("idle")).state, "STOPPED");
  // The page's own button works.
  await row(page, "idle").locator("button.start").click();
  await waitForRow(page, "idle", "RUNNING", (r) => r.state === "RUNNING");
});

test("500 more processes come in live and the page keeps up", async () => {
  process.kill((await processInfo("batch")).pid, "SIGCONT");
  await waitForRow(page, "batch", "resumed", (r) => r.paused === "");
  writeConfig(`  crowd:
    cmd: ${yaml("sleep 100000")}
    numprocs: 500
    starttime: 0
`);
  const started = Date.now();
  const { status, body } = await api("/v1/reload", { method: "POST" });
  assert.equal(status, 200, JSON.stringify(body));
  // web, api, three workers, batch and idle were RUNNING already.
  await waitFor("500 more rows, all RUNNING", async () =>
    (await page.locator('#rows tr[data-state="RUNNING"]').count()) === 500 + 7, 40_000);
  const seconds = (Date.now() - started) / 1000;
  // Still responsive: a button answers and its row changes.
  const clicked = Date.now();
  await row(page, "sleeper").locator("button.start").click();
  await waitForRow(page, "sleeper", "RUNNING", (r) => r.state === "RUNNING");
  const filter = page.locator("#filter");
  await filter.fill("crowd_49");
  await waitFor("the filter", async () => (await page.locator("#rows tr:not([hidden])").count()) === 11);
  await filter.fill("");
  const shown = (Date.now() - clicked) / 1000;
  // A fresh page with all 510: how long until every row is there.
  const opened = Date.now();
  await page.reload();
  await waitFor("510 rows", async () => (await page.locator("#rows tr").count()) === 510);
  const listed = (Date.now() - opened) / 1000;
  console.log(`500 processes came in ${seconds.toFixed(1)} s after the reload; a start was shown ` +
    `${shown.toFixed(2)} s after its click; a fresh page listed all 510 in ${listed.toFixed(2)} s`);
});
