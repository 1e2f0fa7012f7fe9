// Two people chat through the gureum chat page (examples/chat) in a real browser:
// Debian's Chromium driven by playwright-core, one browser context per person
// (like two tabs in two profiles: separate localStorage).
//
//   node tests/browser/chat.mjs http://127.0.0.1:8080
//
// Exits 0 when ann and bob could join #lobby, talk both ways and see each other in
// the member list; otherwise prints which step failed and what both pages showed.
import { chromium } from "playwright-core";

const base = process.argv[2]?.replace(/\/+$/, "");
if (!base) {
  console.error("usage: node chat.mjs BASE_URL");
  process.exit(2);
}
const WAIT = 15_000; // bound for every wait
const ROOM = "lobby";

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox"],
  timeout: WAIT,
});
const pages = {};
try {
  const ann = await step("ann opens the page and joins", () => join("ann"));
  const bob = await step("bob opens the page and joins", () => join("bob"));

  await step("ann sends a message", () => say(ann, "hello from ann"));
  await step("bob sees ann's message", () => seeLine(bob, "ann", "hello from ann"));
  await step("bob answers", () => say(bob, "hi ann, bob here"));
  await step("ann sees bob's answer", () => seeLine(ann, "bob", "hi ann, bob here"));
  for (const [nick, page] of Object.entries(pages)) {
    await step(`${nick}'s member list shows ann and bob`, () => seeMembers(page, ["ann", "bob"]));
  }
  console.log(`ok: ann and bob chatted in #${ROOM} at ${base}/chat`);
} catch (error) {
  console.error(`FAILED: ${error.message}`);
  for (const [nick, page] of Object.entries(pages)) console.error(await describe(nick, page));
  process.exitCode = 1;
} finally {
  await browser.close();
}

/** Runs `action`, naming the step in its error. */
async function step(name, action) {
  try {
    return await action();
  } catch (error) {
    throw new Error(`${name}: ${error.message.split("\n")[0]}`);
  }
}

/** A new person (own context) opens BASE/chat, sets nick and room, joins. */
async function join(nick) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.errors = [];
  page.on("pageerror", (error) => page.errors.push(`page error: ${error.message}`));
  page.on("console", (m) => m.type() === "error" && page.errors.push(`console: ${m.text()} (${m.location().url})`));
  pages[nick] = page;

  const response = await page.goto(`${base}/chat`);
  if (!response.ok()) throw new Error(`GET ${base}/chat answered ${response.status()}`);
  await page.fill("#nick", nick);
  await page.fill("#room", ROOM);
  await page.click("#join-button");
  await page.locator("#log li.notice", { hasText: `you joined #${ROOM} as ${nick}` }).waitFor();
  await page.locator("#where", { hasText: `#${ROOM} as ${nick}` }).waitFor();
  return page;
}

/** Types `text` into the message box and sends it. */
async function say(page, text) {
  await page.fill("#text", text); // waits until the box is enabled (joined and open)
  await page.click("#send");
}

/** Waits for a chat line from `nick` saying `text` in the page's log. */
async function seeLine(page, nick, text) {
  await page
    .locator("#log li", { has: page.locator("b", { hasText: new RegExp(`^${nick}$`) }), hasText: text })
    .waitFor();
}

/** Waits until the member list is exactly `nicks` (in order). */
async function seeMembers(page, nicks) {
  await page.waitForFunction(
    (want) => [...document.querySelectorAll("#members li")].map((li) => li.textContent).join() === want,
    nicks.join(),
    { timeout: WAIT },
  );
}

/** What a page shows, for the failure report. */
async function describe(nick, page) {
  const shown = await page
    .evaluate(() => {
      const texts = (selector) =>
        [...document.querySelectorAll(selector)].map((e) => [...e.childNodes].map((n) => n.textContent).join(" "));
      return {
        state: document.getElementById("state").textContent,
        members: texts("#members li"),
        log: texts("#log li"),
      };
    })
    .catch((error) => ({ unavailable: error.message.split("\n")[0] }));
  return `--- ${nick} (${page.url()}) ---\n${JSON.stringify(shown, null, 2)}\n${page.errors.join("\n")}`;
}
