// The web console on the admin listener in a real browser: Debian's Chromium driven by
// playwright-core. Signs in with the admin token, sees functions deployed with the CLI,
// test-invokes, rolls back and promotes from the UI (checked on the public URL), follows
// the live log tail to an invocation, waits for chart data, opens every page, checks the
// phone layout and keyboard use, and signs out. Any console error or warning, page error,
// failed request or HTTP error the app did not mean to cause fails the run.
//
//   PUBLIC_URL=… ADMIN_TOKEN=… GUREUM_BIN=… GREETER_V1=… GREETER_V2=… TESTBED_DIR=… \
//     node tests/browser/console.mjs http://127.0.0.1:8081
//
// GREETER_V1/V2: project directories of a wasm function `greeter` whose `/` answers
// "version one, world!" / "version two, world!"; TESTBED_DIR: a wasm function `testbed`
// whose `/log?n=1` prints "stdout line 0" and "stderr line 0" and answers "logged 1".
// Prints one line per step and exits 0 when all passed. With SCREENSHOT_DIR set, saves
// console-<page>.png of the main pages there (console-failed-<page>.png on a failure).
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const admin = (process.argv[2] ?? process.env.ADMIN_URL)?.replace(/\/+$/, "");
if (!admin) {
  console.error("usage: node console.mjs ADMIN_URL   (with PUBLIC_URL, ADMIN_TOKEN, GUREUM_BIN, GREETER_V1, GREETER_V2, TESTBED_DIR)");
  process.exit(2);
}
const need = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`console.mjs needs the environment variable ${name}`);
    process.exit(2);
  }
  return value;
};
const publicUrl = need("PUBLIC_URL").replace(/\/+$/, "");
const token = need("ADMIN_TOKEN").trim();
const gureum = need("GUREUM_BIN");
const greeterV1 = need("GREETER_V1");
const greeterV2 = need("GREETER_V2");
const testbedDir = need("TESTBED_DIR");
const screenshots = process.env.SCREENSHOT_DIR;

const WAIT = 15_000; // bound for every wait
const LIVE = 5_000; // bound for a new log line to reach the live tail
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

/** Every page opened, by name, for the checks and the failure report. */
const pages = {};
/** What the pages logged or failed at that the app did not mean to cause. */
const problems = [];
/** HTTP errors a step causes on purpose: {status, path}. */
const expected = [];
let current = "start";
let failed = false;

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"], timeout: WAIT });
try {
  const context = await browser.newContext({ viewport: DESKTOP });
  const desk = await open(context, "desktop");

  await step("the sign-in form refuses a wrong token and accepts the right one", async () => {
    await desk.goto(`${admin}/`);
    await desk.getByTestId("signin-form").waitFor();
    await shot(desk, "signin");
    expected.push({ status: 401, path: "/api/v1/functions" });
    await desk.getByLabel("Admin token").fill(`wrong-${token}`);
    await desk.getByTestId("signin-submit").click();
    await desk.getByTestId("error").filter({ hasText: /refused/ }).waitFor();
    console.log(`     refused with: ${(await desk.getByTestId("error").innerText()).trim()}`);
    expected.pop();
    await desk.getByLabel("Admin token").fill(token);
    await desk.getByLabel("Admin token").press("Enter");
    await heading(desk, "Overview");
    if ((await desk.evaluate(() => sessionStorage.getItem("gureum.adminToken"))) !== token) {
      throw new Error("the token is not kept in sessionStorage under gureum.adminToken");
    }
  });

  await step("greeter and testbed deployed with the CLI appear on the open functions page", async () => {
    await desk.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Functions" }).click();
    await heading(desk, "Functions");
    deploy(greeterV1);
    deploy(testbedDir);
    await functionRow(desk, "greeter").waitFor();
    await functionRow(desk, "testbed").waitFor();
    await shot(desk, "functions");
  });

  await step("after deploying v2, greeter's versions table shows two versions with v2 live", async () => {
    deploy(greeterV2);
    await functionRow(desk, "greeter").getByRole("link", { name: "greeter", exact: true }).click();
    await heading(desk, "greeter");
    await desk.getByTestId("tab-versions").click();
    await versionLive(desk, 2);
    const count = await desk.getByTestId("version-row").count();
    if (count !== 2) throw new Error(`the versions table has ${count} rows`);
    await shot(desk, "function");
  });

  await step('test invoke GET / on greeter answers 200 "version two, world!" with timing and invocation id', async () => {
    await desk.getByTestId("tab-invoke").click();
    const id = await invoke(desk, "GET", "/", "version two, world!");
    console.log(`     invocation ${id}, ${await desk.getByTestId("invoke-time").innerText()}`);
    await shot(desk, "invoke");
  });

  await step('a test-invoke path with ".." is refused in the form (it would leave the function\'s route)', async () => {
    const form = desk.getByTestId("invoke-form");
    await form.getByLabel("Method").selectOption("DELETE");
    await form.getByLabel("Path and query").fill("/../..");
    await form.getByRole("button", { name: "Send" }).click();
    await desk.getByText('has a "." or ".." segment').waitFor();
    await form.getByLabel("Method").selectOption("GET");
    await served("/fn/greeter/", "version two, world!");
  });

  await step("Roll back in the UI makes v1 live and /fn/greeter/ serve it; Promote v2 brings v2 back", async () => {
    await desk.getByTestId("tab-versions").click();
    await desk.getByTestId("rollback").click();
    await versionLive(desk, 1);
    await served("/fn/greeter/", "version one, world!");
    await desk.locator('[data-testid="promote"][data-version="2"]').click();
    await versionLive(desk, 2);
    await served("/fn/greeter/", "version two, world!");
  });

  await step(`a new testbed invocation reaches the live log tail within ${LIVE / 1000} s and links to its page`, async () => {
    await desk.getByTestId("function-logs").click();
    await heading(desk, "Logs");
    await desk.getByLabel("Function").selectOption("testbed");
    // The tail's request is out (its first event may be the line itself: lines from
    // before the request are in its backlog, so there is no race either way).
    await desk.locator('[data-testid="log-state"]:is([data-state="connecting"], [data-state="live"])').waitFor();
    const response = await fetch(`${publicUrl}/fn/testbed/log?n=1`);
    const body = await response.text();
    if (response.status !== 200 || body.trim() !== "logged 1") throw new Error(`/fn/testbed/log?n=1 answered ${response.status}: ${body}`);
    const id = response.headers.get("x-gureum-invocation-id");
    const line = desk.getByTestId("log-tail").getByTestId("log-line").filter({ hasText: "stdout line 0" }).last();
    await line.waitFor({ timeout: LIVE });
    await shot(desk, "logs");
    const link = line.getByTestId("log-invocation");
    const linked = (await link.getAttribute("href")) ?? "";
    if (id && !linked.endsWith(`/invocations/${id}`)) throw new Error(`the line links to ${linked}, not invocation ${id}`);
    await link.click();
    await heading(desk, "Invocation");
    await desk.getByTestId("invocation-record").waitFor();
    await desk.getByTestId("invocation-logs").getByText("stdout line 0").waitFor();
    await shot(desk, "invocation");
  });

  await step("test invoke GET /log?n=1 on testbed shows its body and its log lines", async () => {
    await go(desk, "#/functions/testbed?tab=invoke", "testbed");
    await invoke(desk, "GET", "/log?n=1", "logged 1");
    await desk.getByTestId("invoke-logs").getByTestId("log-line").filter({ hasText: "stdout line 0" }).waitFor();
  });

  await step("20 requests to greeter give the request charts data points", async () => {
    for (let i = 0; i < 20; i++) await served("/fn/greeter/", "version two, world!");
    await go(desk, "#/", "Overview");
    await chartHasData(desk, "chart-requests");
    await shot(desk, "overview");
    await go(desk, "#/functions/greeter", "greeter");
    await chartHasData(desk, "chart-requests");
  });

  await step("the usage, queue, WebSockets, data and users pages render without an error", async () => {
    const visits = [
      ["#/usage", "Usage and cost", '[data-testid="free-tier"]', "usage"],
      ["#/queue", "Queue", '[data-testid="queue-table"]', "queue"],
      ["#/websockets", "WebSockets", '[data-testid="websockets-open"]'],
      ["#/data", "Data", '[data-testid="collections-table"], main .empty', "data"],
      ["#/users", "Users", '[data-testid="users-table"], main .empty'],
    ];
    for (const [hash, title, loaded, name] of visits) {
      await go(desk, hash, title);
      await desk.locator(loaded).first().waitFor();
      const errors = await desk.getByTestId("error").allInnerTexts();
      if (errors.length > 0) throw new Error(`${hash} shows an error: ${errors.join(" | ")}`);
      if (name) await shot(desk, name);
    }
  });

  await step("a collection's rules editor shows the validation error, saves a fix, and a document is created and edited", async () => {
    await go(desk, "#/data/console-notes", "console-notes");
    const config = desk.getByTestId("config-form");
    const editor = config.getByLabel("Config (JSON: rules in CEL, indexes, files)");
    expected.push({ status: 400, path: "/api/v1/collections/console-notes" });
    await editor.fill(JSON.stringify({ rules: { list: "auth.uid ==" } }));
    await config.getByRole("button", { name: "Save config" }).click();
    await desk.getByTestId("config-errors").locator(".error", { hasText: "rules.list" }).waitFor();
    await editor.fill(JSON.stringify({ rules: { list: "auth != null", get: "auth != null" } }));
    await config.getByRole("button", { name: "Save config" }).click();
    await desk.getByTestId("config-errors").locator(".ok").waitFor();
    await desk.getByTestId("new-document").click();
    const doc = desk.getByTestId("document-editor");
    await doc.getByLabel("Data (JSON object)").fill('{"title": "from the browser"}');
    await doc.getByRole("button", { name: "Create" }).click();
    await desk.getByTestId("document-row").filter({ hasText: "from the browser" }).waitFor();
    await desk.getByTestId("document-row").filter({ hasText: "from the browser" }).getByRole("button").first().click();
    const opened = desk.getByTestId("document-editor");
    await opened.getByLabel("Data (JSON object)").fill('{"title": "edited in the browser"}');
    await opened.getByRole("button", { name: "Save" }).click();
    await desk.getByTestId("document-row").filter({ hasText: "edited in the browser" }).waitFor();
    // The change is in the store, not only on the page.
    const listed = await fetch(`${admin}/api/v1/data/collections/console-notes/docs`, {
      headers: { authorization: `Bearer ${token}` },
    }).then((response) => response.json());
    if (!JSON.stringify(listed).includes("edited in the browser")) {
      throw new Error(`the data API lists ${JSON.stringify(listed)}`);
    }
    await shot(desk, "collection");
  });

  await step("at 390 px the overview and functions pages fit, and the menu opens by keyboard", async () => {
    const phone = await open(context, "phone", PHONE);
    await phone.goto(`${admin}/#/`);
    await signIn(phone);
    await heading(phone, "Overview");
    await phone.getByTestId("chart-requests").waitFor();
    await fits(phone);
    await shot(phone, "phone-overview");
    await go(phone, "#/functions", "Functions");
    await functionRow(phone, "greeter").waitFor();
    await fits(phone);

    const nav = phone.locator("#site-nav");
    if (await nav.isVisible()) throw new Error("the navigation is not collapsed behind the menu button");
    const menu = phone.getByTestId("menu-button");
    await menu.focus();
    await phone.keyboard.press("Enter");
    await nav.waitFor();
    if ((await menu.getAttribute("aria-expanded")) !== "true") throw new Error("the menu button does not say it is expanded");
    let reached = "";
    for (let i = 0; i < 3 && !reached; i++) {
      await phone.keyboard.press("Tab");
      reached = await phone.evaluate(() => (document.activeElement?.closest("#site-nav") ? document.activeElement.textContent : ""));
    }
    if (!reached) throw new Error("Tab from the menu button does not reach a navigation link");
    console.log(`     Tab reached the "${reached.trim()}" link`);
    await shot(phone, "phone-menu");
    await phone.keyboard.press("Enter");
    await phone.getByRole("heading", { level: 1 }).waitFor();
    await fits(phone);
  });

  await step("on the sign-in page Tab reaches the token input, then the submit button", async () => {
    const fresh = await open(await browser.newContext({ viewport: DESKTOP }), "keyboard");
    await fresh.goto(`${admin}/`);
    await fresh.getByTestId("signin-form").waitFor();
    await tabTo(fresh, "token", 6);
    await tabTo(fresh, "signin-submit", 3);
  });

  await step("Sign out shows the sign-in form and forgets the token", async () => {
    await desk.bringToFront();
    await desk.getByTestId("signout").click();
    await desk.getByTestId("signin-form").waitFor();
    const kept = await desk.evaluate(() => sessionStorage.getItem("gureum.adminToken"));
    if (kept !== null) throw new Error("sessionStorage still holds the token");
    const nav = await desk.locator("#site-nav").count();
    if (nav !== 0) throw new Error("the navigation is still shown after signing out");
  });

  await step("no page logged an error or warning, failed a request or got an unexpected HTTP error", async () => {
    if (problems.length > 0) throw new Error(`${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  });
  console.log(`ok: the console at ${admin}/ works`);
} catch (error) {
  failed = true;
  console.error(`FAILED: ${error.message}`);
  for (const [name, page] of Object.entries(pages)) console.error(await describe(name, page));
  process.exitCode = 1;
} finally {
  if (failed) for (const [name, page] of Object.entries(pages)) await shot(page, `failed-${name}`);
  await browser.close();
}

/** Runs `action`; one line per step. */
async function step(name, action) {
  current = name;
  const started = Date.now();
  let result;
  try {
    result = await action();
  } catch (error) {
    throw new Error(`${name}: ${error.message.split("\n").slice(0, 6).join("\n")}`);
  }
  console.log(`ok   ${name} (${Date.now() - started} ms)`);
  return result;
}

/** A new page in `context`, recording what it logs and every request that went wrong. */
async function open(context, name, viewport) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  if (viewport) await page.setViewportSize(viewport);
  page.on("pageerror", (error) => problems.push(`${name} page error during "${current}": ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error" && message.type() !== "warning") return;
    const url = message.location().url ?? "";
    const status = /status of (\d+)/.exec(message.text())?.[1];
    if (status && isExpected(Number(status), url)) return;
    problems.push(`${name} console ${message.type()} during "${current}": ${message.text()} (${url})`);
  });
  page.on("requestfailed", (request) => {
    // Aborted on purpose: a page left, a tail stopped, a refresh replaced.
    if (request.failure()?.errorText === "net::ERR_ABORTED") return;
    problems.push(`${name} request failed during "${current}": ${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
  });
  page.on("response", (response) => {
    if (response.status() < 400 || isExpected(response.status(), response.url())) return;
    problems.push(`${name} got ${response.status()} during "${current}": ${response.request().method()} ${response.url()}`);
  });
  pages[name] = page;
  return page;
}

function isExpected(status, url) {
  const path = url ? new URL(url).pathname : "";
  return expected.some((e) => e.status === status && path === e.path);
}

async function signIn(page) {
  await page.getByTestId("signin-form").waitFor();
  await page.getByLabel("Admin token").fill(token);
  await page.getByTestId("signin-submit").click();
  await page.getByTestId("signout").waitFor();
}

function deploy(dir) {
  try {
    execFileSync(gureum, ["deploy", dir, "--url", admin, "--token", token], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 120_000,
    });
  } catch (error) {
    throw new Error(`gureum deploy ${dir} failed: ${(error.stderr || error.stdout || error.message).trim()}`);
  }
}

/** Waits for the page's `<h1>` to read `title`. */
async function heading(page, title) {
  await page.getByRole("heading", { level: 1, name: title, exact: true }).waitFor();
}

/** Goes to a console route (`#/…`) and waits for its heading. */
async function go(page, hash, title) {
  await page.evaluate((target) => {
    location.hash = target;
  }, hash);
  await heading(page, title);
}

function functionRow(page, name) {
  return page.locator(`[data-testid="function-row"][data-name="${name}"]`);
}

async function versionLive(page, version) {
  await page.locator(`[data-testid="version-row"][data-version="${version}"][data-live="true"]`).waitFor();
  const live = await page.locator('[data-testid="version-row"][data-live="true"]').count();
  if (live !== 1) throw new Error(`${live} versions are marked live`);
}

/** Sends a request with the test-invoke form; checks status 200 and the body; returns the invocation id. */
async function invoke(page, method, path, body) {
  const form = page.getByTestId("invoke-form");
  await form.getByLabel("Method").selectOption(method);
  await form.getByLabel("Path and query").fill(path);
  await form.getByRole("button", { name: "Send" }).click();
  await page.getByTestId("invoke-status").filter({ hasText: /^200\b/ }).waitFor();
  const shown = (await page.getByTestId("invoke-body").innerText()).trim();
  if (shown !== body) throw new Error(`the response body shows ${JSON.stringify(shown)}, not ${JSON.stringify(body)}`);
  const time = await page.getByTestId("invoke-time").innerText();
  if (!/\d/.test(time)) throw new Error(`no timing shown (${JSON.stringify(time)})`);
  const id = (await page.getByTestId("invoke-id").innerText()).trim();
  if (!id) throw new Error("no x-gureum-invocation-id shown");
  return id;
}

/** Polls the public URL until it answers `text` (a rollback reaches the gateway at once, but bounded anyway). */
async function served(path, text) {
  const deadline = Date.now() + WAIT;
  let last = "";
  for (;;) {
    const response = await fetch(publicUrl + path);
    last = `${response.status}: ${(await response.text()).trim()}`;
    if (last === `200: ${text}`) return;
    if (Date.now() > deadline) throw new Error(`${publicUrl}${path} answers ${last}, not "${text}"`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Waits until the chart has a data point, pressing Refresh meanwhile (stats trail requests a little). */
async function chartHasData(page, testid) {
  const deadline = Date.now() + WAIT;
  const chart = page.getByTestId(testid);
  await chart.waitFor();
  for (;;) {
    const points = Number(await chart.getAttribute("data-points"));
    if (points >= 1) return;
    if (Date.now() > deadline) throw new Error(`${testid} has ${points} data points after ${WAIT / 1000} s`);
    await page.getByTestId("refresh").click();
    await page.waitForTimeout(1000);
  }
}

/** The page must not scroll sideways. */
async function fits(page) {
  const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
  if (scroll > width) throw new Error(`${page.url()} is ${scroll} px wide in a ${width} px window`);
}

/** Presses Tab (at most `presses` times) until the element with id or test id `target` has focus. */
async function tabTo(page, target, presses) {
  for (let i = 0; i < presses; i++) {
    await page.keyboard.press("Tab");
    const at = await page.evaluate(() => document.activeElement?.id || document.activeElement?.dataset?.testid || document.activeElement?.tagName);
    if (at === target) return;
  }
  throw new Error(`${presses} presses of Tab did not reach ${target}`);
}

async function shot(page, name) {
  if (!screenshots) return;
  try {
    mkdirSync(screenshots, { recursive: true });
    const path = join(screenshots, `console-${name}.png`);
    await page.screenshot({ path, fullPage: true, timeout: WAIT });
    console.log(`     screenshot: ${path}`);
  } catch (error) {
    console.error(`     saving screenshot console-${name}.png: ${error.message.split("\n")[0]}`);
  }
}

/** What a page shows, for the failure report. */
async function describe(name, page) {
  const shown = await page
    .evaluate(() => ({
      h1: document.querySelector("main h1")?.textContent,
      errors: [...document.querySelectorAll('[data-testid="error"]')].map((e) => e.textContent),
      status: [...document.querySelectorAll(".status")].map((e) => e.textContent).filter(Boolean),
      main: document.querySelector("main")?.innerText.slice(0, 1500),
    }))
    .catch((error) => ({ unavailable: error.message.split("\n")[0] }));
  const own = problems.filter((p) => p.startsWith(`${name} `));
  return `--- ${name} (${page.url()}) ---\n${JSON.stringify(shown, null, 2)}\n${own.join("\n")}`;
}
