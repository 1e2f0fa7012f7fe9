// Private notes with live updates through the gureum notes site (examples/notes) in a
// real browser: Debian's Chromium driven by playwright-core. Two tabs of one browser
// profile (one context: the tabs share the session over a BroadcastChannel, so one
// signed-in user) see each other's changes live; other profiles (new contexts) are other
// users and see none of them. The tokens are never in any storage another page of the
// origin could read.
//
//   node tests/browser/notes.mjs http://127.0.0.1:8080      (or BASE_URL=… node notes.mjs)
//
// Needs the site deployed (`gureum deploy examples/notes`) and the collection configured
// (`gureum collections set notes examples/notes/collection.toml`). Prints one line per
// step and exits 0 when all passed; otherwise prints which step failed and what every
// page showed. With SCREENSHOT_DIR set, saves a screenshot of every page there at the
// end (notes-<page>-ok.png or notes-<page>-failed.png).
import { mkdirSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = (process.argv[2] ?? process.env.BASE_URL)?.replace(/\/+$/, "");
if (!base) {
  console.error("usage: node notes.mjs BASE_URL   (or set BASE_URL)");
  process.exit(2);
}
const site = `${base}/notes/`;
const WAIT = 15_000; // bound for every wait
const LIVE = 5_000; // bound for a change to show up in another tab without reload
const screenshots = process.env.SCREENSHOT_DIR;

const tag = randomBytes(4).toString("hex");
const owner = { email: `notes-a-${tag}@example.com`, password: `Correct-Horse-${tag}-42` };
const other = { email: `notes-c-${tag}@example.com`, password: `Battery-Staple-${tag}-17` };
const first = `first note ${tag}`;
const second = `second note ${tag}`;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox"],
  timeout: WAIT,
});
/** Every page opened, by name, for the checks and the failure report. */
const pages = {};
let failed = false;
try {
  const shared = await browser.newContext();
  const a = await step("A opens /notes/ and sees the sign-in form", () => open(shared, "A"));
  await step(`A signs up as ${owner.email}`, () => signUp(a, owner));
  const firstId = await step(`A adds "${first}" and sees it in the list`, () => addNote(a, first));

  const b = await step("B (second tab, same profile) opens /notes/ at phone width, signed in", async () => {
    const page = await open(shared, "B", { width: 390, height: 844 });
    await page.locator("#who", { hasText: owner.email }).waitFor();
    return page;
  });
  await step("B sees the first note", () => note(b, firstId, first).waitFor());
  await step("A's and B's live streams are open", async () => {
    await live(a);
    await live(b);
  });

  await markNoReload(a);
  await markNoReload(b);
  const secondId = await step(`A adds "${second}"`, () => addNote(a, second));
  await step(`B shows "${second}" live within ${LIVE / 1000} s, without reload`, async () => {
    await note(b, secondId, second).waitFor({ timeout: LIVE });
    await checkNoReload(b);
  });
  await step("B lists the notes newest first", () => order(b, [secondId, firstId]));

  await step("B deletes the first note", async () => {
    await note(b, firstId).getByRole("button", { name: /^Delete note/ }).click();
    await note(b, firstId).waitFor({ state: "detached" });
  });
  await step(`the first note disappears from A live within ${LIVE / 1000} s, without reload`, async () => {
    await note(a, firstId).waitFor({ state: "detached", timeout: LIVE });
    await note(a, secondId, second).waitFor();
    await checkNoReload(a);
  });

  const c = await step(`C (new profile) signs up as ${other.email}`, async () => {
    const page = await open(await browser.newContext(), "C");
    await signUp(page, other);
    return page;
  });
  await step("C sees no notes (notes are private)", async () => {
    await c.locator('#notes[data-loaded="true"]').waitFor({ state: "attached" });
    await live(c);
    await c.locator("#empty").waitFor();
    const count = await c.locator("#notes li").count();
    if (count !== 0) throw new Error(`C's list has ${count} notes: ${await c.locator("#notes").innerText()}`);
  });
  // The page only asks for C's own notes; the rules must also refuse A's to C directly.
  // The page's own memory (its `session` binding) is the only place the tokens live.
  const ownerUid = await a.evaluate(() => session.user.id);
  c.expectedFailures.push({ status: [403, 404], path: `/data/v1/collections/notes/docs/${secondId}` });
  // A listing the rule cannot allow for every document is refused outright (rules are not filters).
  c.expectedFailures.push({ status: 403, path: "/data/v1/collections/notes/docs?where=" });
  await step("C's token cannot list or read A's notes through the API", async () => {
    const seen = await c.evaluate(
      async ({ id, uid }) => {
        const { access_token } = session;
        const headers = { authorization: `Bearer ${access_token}` };
        const where = new URLSearchParams({ where: `owner = ${JSON.stringify(uid)}` });
        const list = await fetch(`/data/v1/collections/notes/docs?${where}`, { headers });
        const one = await fetch(`/data/v1/collections/notes/docs/${id}`, { headers });
        return { list: list.status, docs: (await list.json()).docs, one: one.status };
      },
      { id: secondId, uid: ownerUid },
    );
    if (seen.list !== 403 || seen.docs !== undefined) {
      throw new Error(`listing A's notes with C's token answered ${seen.list} ${JSON.stringify(seen.docs)}`);
    }
    if (seen.one !== 403 && seen.one !== 404) throw new Error(`reading A's note with C's token answered ${seen.one}`);
  });

  const d = await step("D (new profile) opens /notes/", async () => open(await browser.newContext(), "D"));
  // The refused sign-in is a 400 response, which Chromium logs as a console error.
  d.expectedFailures.push({ status: 400, path: "/auth/v1/token?grant_type=password" });
  await step("D signs in with a wrong password and sees the server's error", async () => {
    await d.fill("#email", owner.email);
    await d.fill("#password", `wrong-${owner.password}`);
    await d.click("#signin");
    await d.locator("#error").filter({ hasText: /\S/ }).waitFor();
    if (await d.locator("#app").isVisible()) throw new Error("the notes are shown after a wrong password");
    if (!(await d.locator("#signin").isVisible())) throw new Error("the sign-in form is gone after a wrong password");
    console.log(`     error shown: ${await d.locator("#error").innerText()}`);
  });
  await step("D signs in with the right password and sees only the second note", async () => {
    await d.fill("#password", owner.password);
    await d.press("#password", "Enter"); // Enter signs in
    await d.locator("#who", { hasText: owner.email }).waitFor();
    await d.locator('#notes[data-loaded="true"]').waitFor({ state: "attached" });
    await note(d, secondId, second).waitFor();
    await order(d, [secondId]);
    const stale = (await d.locator("#error").textContent()).trim();
    if (stale) throw new Error(`the error of the failed sign-in is still shown: ${stale}`);
  });

  await step("no storage of the origin holds a token, for the notes page or any other page", async () => {
    const held = async (page) =>
      page.evaluate(async () => ({
        local: localStorage.length,
        session: sessionStorage.length,
        cookie: document.cookie,
        databases: (await indexedDB.databases()).length,
      }));
    const nothing = JSON.stringify({ local: 0, session: 0, cookie: "", databases: 0 });
    const mine = JSON.stringify(await held(a));
    if (mine !== nothing) throw new Error(`A's storage holds ${mine}`);
    // Another page on the same origin, as another function's page would be.
    const elsewhere = await shared.newPage();
    try {
      const response = await elsewhere.goto(`${base}/auth/v1/jwks.json`);
      if (!response?.ok()) throw new Error(`GET /auth/v1/jwks.json answered ${response?.status()}`);
      const theirs = JSON.stringify(await held(elsewhere));
      if (theirs !== nothing) throw new Error(`another page of the origin finds ${theirs}`);
    } finally {
      await elsewhere.close();
    }
  });

  await step("A reloads and takes the session from B (an open tab of the profile)", async () => {
    await a.reload();
    await a.locator("#who", { hasText: owner.email }).waitFor();
    await note(a, secondId, second).waitFor();
    await live(a);
  });

  await step("A signs out; B (same profile) follows", async () => {
    await a.bringToFront();
    await a.click("#signout");
    await a.locator("#signin").waitFor();
    await b.locator("#signin").waitFor();
    if (await a.locator("#who").isVisible()) throw new Error("A still shows who is signed in");
    const stored = await a.evaluate(() => Object.keys(localStorage).length);
    if (stored !== 0) throw new Error(`A's localStorage still holds ${stored} item(s)`);
  });

  console.log(`ok: notes are private and live at ${site}`);
} catch (error) {
  failed = true;
  console.error(`FAILED: ${error.message}`);
  for (const [name, page] of Object.entries(pages)) console.error(await describe(name, page));
  process.exitCode = 1;
} finally {
  await saveScreenshots(failed ? "failed" : "ok");
  await browser.close();
}

/** Runs `action` and checks that no page logged an error; one line per step. */
async function step(name, action) {
  const started = Date.now();
  let result;
  try {
    result = await action();
  } catch (error) {
    throw new Error(`${name}: ${error.message.split("\n")[0]}`);
  }
  const errors = Object.entries(pages).flatMap(([page, { errors }]) => errors.map((e) => `${page}: ${e}`));
  if (errors.length > 0) throw new Error(`${name}: the pages logged errors:\n  ${errors.join("\n  ")}`);
  console.log(`ok   ${name} (${Date.now() - started} ms)`);
  return result;
}

/** Opens BASE/notes/ in `context` as page `name`, recording its console errors. */
async function open(context, name, viewport) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  if (viewport) await page.setViewportSize(viewport);
  page.errors = [];
  page.expectedFailures = []; // {status (or a list), path}: HTTP errors this page is meant to get
  page.on("pageerror", (error) => page.errors.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const text = message.text();
    const url = message.location().url ?? "";
    const status = /^Failed to load resource: the server responded with a status of (\d+)/.exec(text)?.[1];
    const expected = page.expectedFailures.some(
      (f) => [f.status].flat().includes(Number(status)) && url.includes(f.path),
    );
    if (!expected) page.errors.push(`console: ${text} (${url})`);
  });
  pages[name] = page;

  const response = await page.goto(site);
  if (!response?.ok()) throw new Error(`GET ${site} answered ${response?.status()}`);
  // Signed out: the form; signed in (a tab of the same profile): the notes.
  await page.locator("#signin, #note-text").filter({ visible: true }).first().waitFor();
  return page;
}

async function signUp(page, user) {
  await page.fill("#email", user.email);
  await page.fill("#password", user.password);
  await page.click("#signup");
  await page.locator("#who", { hasText: user.email }).waitFor();
  await page.locator('#notes[data-loaded="true"]').waitFor({ state: "attached" });
}

/** Adds a note through the form; returns its id once the list shows it. */
async function addNote(page, text) {
  await page.fill("#note-text", text);
  await page.click("#add-note");
  const item = page.locator("#notes li", { hasText: text });
  await item.waitFor();
  const id = await item.getAttribute("data-id");
  if (!id) throw new Error(`the list item of "${text}" has no data-id`);
  if ((await page.inputValue("#note-text")) !== "") throw new Error("the text box was not cleared");
  return id;
}

/** The list item of note `id` (showing `text`, when given). */
function note(page, id, text) {
  const item = page.locator(`#notes li[data-id="${id}"]`);
  return text === undefined ? item : item.filter({ hasText: text });
}

async function live(page) {
  await page.locator('#live[data-state="live"]').waitFor();
}

/** Waits until the list holds exactly the notes `ids`, in that order. */
async function order(page, ids) {
  await page.waitForFunction(
    (want) => [...document.querySelectorAll("#notes li")].map((li) => li.dataset.id).join() === want,
    ids.join(),
    { timeout: WAIT },
  );
}

/** A reload (or navigation) would drop this marker: live means without one. */
async function markNoReload(page) {
  await page.evaluate(() => {
    window.notesTestMarker = true;
  });
}

async function checkNoReload(page) {
  if (!(await page.evaluate(() => window.notesTestMarker === true))) throw new Error("the page was reloaded");
}

async function saveScreenshots(outcome) {
  if (!screenshots) return;
  try {
    mkdirSync(screenshots, { recursive: true });
    for (const [name, page] of Object.entries(pages)) {
      const path = join(screenshots, `notes-${name}-${outcome}.png`);
      await page.screenshot({ path, fullPage: true, timeout: WAIT });
      console.log(`screenshot: ${path}`);
    }
  } catch (error) {
    console.error(`saving screenshots in ${screenshots}: ${error.message.split("\n")[0]}`);
  }
}

/** What a page shows, for the failure report. */
async function describe(name, page) {
  const shown = await page
    .evaluate(() => ({
      who: document.getElementById("who")?.textContent,
      error: document.getElementById("error")?.textContent,
      live: document.getElementById("live")?.textContent,
      loaded: document.getElementById("notes")?.dataset.loaded,
      notes: [...document.querySelectorAll("#notes li")].map((li) => ({
        id: li.dataset.id,
        text: li.querySelector("p")?.textContent,
      })),
      signedIn: !document.getElementById("app")?.hidden,
    }))
    .catch((error) => ({ unavailable: error.message.split("\n")[0] }));
  return `--- ${name} (${page.url()}) ---\n${JSON.stringify(shown, null, 2)}\n${page.errors.join("\n")}`;
}
