// gureum notes (examples/notes): private notes with live updates, on gureum's built-in
// services only. Plain JavaScript, no build step; every call is a same-origin absolute
// path, so the page works wherever it is served (/notes/, /fn/notes/notes/).
//
//   POST /auth/v1/signup                          {email, password} → session
//   POST /auth/v1/token?grant_type=password       {email, password} → session
//   POST /auth/v1/token?grant_type=refresh_token  {refresh_token}   → session (rotated)
//   POST /auth/v1/logout                          {refresh_token}   → 204
//   GET  /auth/v1/user                            (checks the token after a refused stream)
//   GET  /data/v1/collections/notes/docs?where=owner = "<uid>"&sort=-created&limit=100
//   POST /data/v1/collections/notes/docs          {text} → doc
//   DELETE /data/v1/collections/notes/docs/<id>   → 204
//   EventSource /data/v1/collections/notes/stream?where=owner = "<uid>"&access_token=<jwt>
//     events: ready, created, updated, deleted (doc JSON), reset (re-read the list)
//
// The session (access + refresh token) lives in this page's memory only, never in
// localStorage, sessionStorage, IndexedDB or a cookie: any page served from the same origin
// (another function's, say) could read those. The tabs of one browser profile share it over
// a BroadcastChannel: a new (or reloaded) tab asks the open ones, and every sign-in,
// sign-out and token refresh is announced to the others. Closing the last tab ends the
// session on this machine (sign in again). Refreshes run one tab at a time (Web Locks)
// because every refresh rotates the refresh token it used. For real isolation serve the
// page from an origin of its own (README, "Origins").
"use strict";

const CHANNEL = "gureum.notes.session";
/** How long a new tab waits for an open one to hand over the session. */
const ASK_MS = 300;
const REFRESH_LOCK = "gureum.notes.refresh";
const COLLECTION = "/data/v1/collections/notes";
/** Refresh this long before the access token expires (at most a quarter of its life). */
const REFRESH_MARGIN_MS = 60_000;
/** Longest wait before reopening a stream the server refused. */
const MAX_RETRY_MS = 30_000;

const $ = (id) => document.getElementById(id);
const ui = {
  error: $("error"),
  account: $("account"),
  who: $("who"),
  signout: $("signout"),
  auth: $("auth"),
  authForm: $("auth-form"),
  email: $("email"),
  password: $("password"),
  signin: $("signin"),
  signup: $("signup"),
  app: $("app"),
  noteForm: $("note-form"),
  noteText: $("note-text"),
  addNote: $("add-note"),
  live: $("live"),
  notes: $("notes"),
  empty: $("empty"),
};

/** The current session: the server's session JSON plus `expires_local` (ms, this clock). */
let session = null;
/** The user whose notes are shown (and streamed), or null. */
let shownUid = null;
let refreshTimer = 0;
let refreshing = null;
let stream = null;
let streamTimer = 0;
let streamFailures = 0;
/** id → {doc, seen}: the notes shown; `seen` is when this page last got the doc. */
let notes = new Map();
/** Ids deleted while shown: late or duplicate events must not bring them back. */
const gone = new Set();
let syncWanted = false;
let syncRunning = false;
let adding = false;

/** An error to show: `message` is the server's `error.message` or says what failed. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---------------------------------------------------------------- the shared session

const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(CHANNEL) : null;
/** The newest session of this browser profile: this tab's, or one another tab announced. */
let shared = null;

function isSession(value) {
  return (
    value !== null &&
    typeof value === "object" &&
    typeof value.access_token === "string" &&
    typeof value.refresh_token === "string" &&
    value.user !== null &&
    typeof value.user === "object" &&
    typeof value.user.id === "string"
  );
}

function readStored() {
  return shared;
}

/** Makes `value` (a session, or null: signed out) the profile's and tells the other tabs. */
function writeStored(value) {
  shared = value;
  channel?.postMessage({ type: "session", session: value });
}

/** Whether a session another tab announced should replace `mine`: another user's, or a
 *  later one of the same user (an answer to a new tab's question can cross a refresh). */
function newer(theirs, mine) {
  return !mine || theirs.user.id !== mine.user.id || expiryOf(theirs) > expiryOf(mine);
}

/** A session as the server sent it, stamped with its expiry on this machine's clock. */
function fromServer(json) {
  if (!isSession(json)) throw new ApiError(0, "bad_response", "The server sent an unexpected answer; try again.");
  const lifetime = Number(json.expires_in) > 0 ? Number(json.expires_in) * 1000 : 900_000;
  return { ...json, expires_local: Date.now() + lifetime };
}

function expiryOf(value) {
  return value.expires_local ?? (Number(value.expires_at) || 0) * 1000;
}

function marginOf(value) {
  const lifetime = Number(value.expires_in) > 0 ? Number(value.expires_in) * 1000 : 900_000;
  return Math.min(REFRESH_MARGIN_MS, lifetime / 4);
}

/** Whether the access token is (nearly) expired: refresh before using it. */
function isStale(value) {
  return expiryOf(value) - Date.now() < marginOf(value) / 2;
}

// ---------------------------------------------------------------- signed in / out

/** Makes `next` the session (saved for the other tabs unless it came from them). */
function enter(next, save = true) {
  const previousToken = session?.access_token;
  session = next;
  if (save) writeStored(next);
  scheduleRefresh(!save);
  ui.who.textContent = next.user.email ?? next.user.id;
  showSignedIn(true);
  if (shownUid !== next.user.id) {
    shownUid = next.user.id;
    clearNotes();
    connect();
    sync();
  } else if (previousToken !== next.access_token || !stream) {
    connect(); // a stream reconnects by itself with its URL: give it the fresh token
  }
}

/** Forgets the session here and (unless told by them) in the other tabs; `message` says
 *  why, if anything. */
function leave(message, tell = true) {
  session = null;
  shownUid = null;
  if (tell) writeStored(null);
  else shared = null;
  clearTimeout(refreshTimer);
  closeStream();
  clearNotes();
  showSignedIn(false);
  showError(message ?? "");
}

function showSignedIn(signedIn) {
  ui.auth.hidden = signedIn;
  ui.app.hidden = !signedIn;
  ui.account.hidden = !signedIn;
  if (!signedIn) ui.who.textContent = "";
}

function signedOutError() {
  return new ApiError(401, "signed_out", "You are signed out; sign in again.");
}

// ---------------------------------------------------------------- tokens

/** Refreshes ahead of expiry; a tab that took the session from another one waits a bit
 *  longer, so that the tabs do not all refresh at once. */
function scheduleRefresh(adopted = false) {
  clearTimeout(refreshTimer);
  if (!session) return;
  const margin = marginOf(session) * (adopted ? 0.6 + Math.random() * 0.2 : 1);
  const delay = Math.max(1000, expiryOf(session) - margin - Date.now());
  refreshTimer = setTimeout(timedRefresh, delay);
}

async function timedRefresh() {
  try {
    await refresh();
  } catch (error) {
    if (!session) return;
    showError(error);
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(timedRefresh, 15_000); // offline or server trouble: try again
  }
}

/** Replaces the access token `used` (stale, or refused with a 401) with a new one; one
 *  refresh at a time, across the tabs when Web Locks exist (each refresh revokes the
 *  refresh token it used, so two tabs must not both use it). */
function refresh(used = session?.access_token) {
  refreshing ??= withLock((contended) => refreshNow(used, contended)).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** Runs `task(contended)` holding the refresh lock; `contended`: another tab held it. */
async function withLock(task) {
  if (!navigator.locks?.request) return task(false);
  const first = await navigator.locks.request(REFRESH_LOCK, { ifAvailable: true }, async (lock) =>
    lock ? { value: await task(false) } : null,
  );
  return first ? first.value : navigator.locks.request(REFRESH_LOCK, () => task(true));
}

async function refreshNow(used, contended) {
  if (contended) await storageSettles(used);
  const mine = session;
  if (!mine) throw signedOutError();
  // Another tab refreshed while this one waited: take its session.
  const stored = readStored();
  const sameUser = stored !== null && stored.user.id === mine.user.id;
  if (sameUser && stored.access_token !== used && !isStale(stored)) {
    if (stored.access_token !== mine.access_token) enter(stored, false);
    return;
  }
  if (mine.access_token !== used && !isStale(mine)) return;
  const refreshToken = sameUser ? stored.refresh_token : mine.refresh_token;
  const response = await request("POST", "/auth/v1/token?grant_type=refresh_token", {
    body: { refresh_token: refreshToken },
  });
  if (session?.user.id !== mine.user.id) throw signedOutError(); // signed out meanwhile
  if (response.ok) {
    enter(fromServer(await response.json()));
    return;
  }
  const error = await errorOf(response);
  if (response.status === 400 || response.status === 401 || response.status === 403) {
    // Revoked or expired: unless another tab just rotated it, the session is over.
    const again = readStored();
    if (again && again.user.id === mine.user.id && again.refresh_token !== refreshToken) {
      enter(again, false);
      return;
    }
    const message = `Your session has ended: ${sentence(error.message)} Sign in again.`;
    leave(message);
    throw new ApiError(401, "signed_out", message);
  }
  throw error; // rate limited, server trouble: keep the session, try later
}

/** After waiting for another tab's refresh: its announcement of the new session reaches
 *  this tab a moment later (channel messages cross processes asynchronously). */
async function storageSettles(used) {
  for (let tries = 0; tries < 20; tries += 1) {
    const stored = readStored();
    if (!stored || stored.access_token !== used) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// ---------------------------------------------------------------- HTTP

/** fetch with JSON in and out; a network failure becomes an ApiError. */
async function request(method, path, { body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    return await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, "network", `Cannot reach the server (${error.message}); check your connection and try again.`);
  }
}

/** The error of a failed response: the server's `{"error": {"code", "message"}}`. */
async function errorOf(response) {
  let text = "";
  try {
    text = await response.text();
    const { error } = JSON.parse(text);
    if (error && typeof error.message === "string") {
      return new ApiError(response.status, String(error.code ?? "error"), error.message);
    }
  } catch {
    // not JSON: fall through
  }
  const detail = text.trim().slice(0, 200) || response.statusText;
  return new ApiError(response.status, "http_error", `The server answered ${response.status}${detail ? `: ${detail}` : ""}.`);
}

/** An authenticated call: refreshes a stale token first, and once on a 401. `body` may be
 *  a function, evaluated per attempt (so it sees the session after a refresh). */
async function api(method, path, body) {
  if (!session) throw signedOutError();
  if (isStale(session)) await refresh();
  let token;
  const send = () => {
    token = session?.access_token;
    return request(method, path, { body: typeof body === "function" ? body() : body, token });
  };
  let response = await send();
  if (response.status === 401 && session) {
    await refresh(token);
    response = await send();
    if (response.status === 401) {
      const error = await errorOf(response);
      leave(`${sentence(error.message)} Sign in again.`);
      throw error;
    }
  }
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    throw new ApiError(response.status, "bad_response", "The server sent an unexpected answer; try again.");
  }
}

// ---------------------------------------------------------------- notes

function clearNotes() {
  notes = new Map();
  gone.clear();
  ui.notes.replaceChildren();
  ui.notes.dataset.loaded = "false";
  ui.empty.hidden = true;
}

/** Re-reads the list (at sign-in, whenever the stream (re)opens, and on `reset`). */
async function sync() {
  syncWanted = true;
  if (syncRunning) return;
  syncRunning = true;
  try {
    while (syncWanted && session) {
      syncWanted = false;
      await syncOnce();
    }
  } catch (error) {
    showError(error);
  } finally {
    syncRunning = false;
  }
}

async function syncOnce() {
  const uid = session.user.id;
  const started = performance.now();
  const query = new URLSearchParams({
    where: `owner = ${JSON.stringify(uid)}`,
    sort: "-created",
    limit: "100",
  });
  const page = await api("GET", `${COLLECTION}/docs?${query}`);
  if (shownUid !== uid) return;
  const next = new Map();
  for (const doc of Array.isArray(page?.docs) ? page.docs : []) {
    if (isDoc(doc) && !gone.has(doc.id)) next.set(doc.id, { doc, seen: started });
  }
  // Events that arrived while the list was on its way are newer than the list.
  for (const [id, entry] of notes) {
    const listed = next.get(id);
    if (entry.seen >= started && (!listed || version(entry.doc) >= version(listed.doc))) next.set(id, entry);
  }
  notes = next;
  ui.notes.dataset.loaded = "true";
  render();
}

function isDoc(doc) {
  return doc !== null && typeof doc === "object" && typeof doc.id === "string";
}

function version(doc) {
  return Number(doc.version) || 0;
}

/** Applies a change (from the stream or from this page's own request); idempotent. */
function apply(kind, doc) {
  if (!isDoc(doc)) return;
  if (kind === "deleted") {
    gone.add(doc.id);
    if (notes.delete(doc.id)) render();
    return;
  }
  if (gone.has(doc.id) || (shownUid !== null && doc.owner !== shownUid)) return;
  const have = notes.get(doc.id);
  if (have && version(have.doc) > version(doc)) return;
  notes.set(doc.id, { doc, seen: performance.now() });
  render();
}

function textOf(doc) {
  const text = doc.data?.text;
  return typeof text === "string" ? text : JSON.stringify(text ?? "");
}

/** Updates the list in place (newest first), keeping focus on the nodes that stay. */
function render() {
  const order = [...notes.values()]
    .map((entry) => entry.doc)
    .sort((a, b) => (Number(b.created) || 0) - (Number(a.created) || 0) || (a.id < b.id ? 1 : -1));
  const existing = new Map([...ui.notes.children].map((li) => [li.dataset.id, li]));
  let cursor = ui.notes.firstElementChild;
  for (const doc of order) {
    let li = existing.get(doc.id);
    if (!li) li = noteItem(doc);
    else if (li.dataset.version !== String(version(doc))) fillItem(li, doc);
    if (li === cursor) cursor = cursor.nextElementSibling;
    else ui.notes.insertBefore(li, cursor);
  }
  while (cursor) {
    const stale = cursor;
    cursor = cursor.nextElementSibling;
    stale.remove();
  }
  ui.empty.hidden = !(order.length === 0 && ui.notes.dataset.loaded === "true");
}

function noteItem(doc) {
  const li = document.createElement("li");
  li.dataset.id = doc.id;
  li.dataset.testid = "note";
  const body = document.createElement("div");
  body.className = "note";
  body.append(document.createElement("p"), document.createElement("time"));
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "delete";
  remove.dataset.testid = "delete-note";
  remove.textContent = "Delete";
  li.append(body, remove);
  fillItem(li, doc);
  return li;
}

function fillItem(li, doc) {
  const text = textOf(doc);
  li.dataset.version = String(version(doc));
  li.querySelector("p").textContent = text;
  const time = li.querySelector("time");
  const created = Number(doc.created);
  if (created > 0) {
    time.dateTime = new Date(created).toISOString();
    time.textContent = new Date(created).toLocaleString();
  } else {
    time.textContent = "";
  }
  const short = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  li.querySelector("button").setAttribute("aria-label", `Delete note: ${short}`);
}

// ---------------------------------------------------------------- realtime

function setLive(state, label = state) {
  ui.live.dataset.state = state;
  ui.live.textContent = label;
}

function closeStream() {
  clearTimeout(streamTimer);
  stream?.close();
  stream = null;
  setLive("offline");
}

/** Opens the stream of this user's notes with the current access token. */
function connect() {
  closeStream();
  if (!session) return;
  const query = new URLSearchParams({
    where: `owner = ${JSON.stringify(session.user.id)}`,
    access_token: session.access_token,
  });
  const source = new EventSource(`${COLLECTION}/stream?${query}`);
  stream = source;
  setLive("connecting", "connecting…");
  source.addEventListener("ready", () => {
    if (stream !== source) return;
    streamFailures = 0;
    setLive("live");
    sync(); // whatever happened while the stream was down
  });
  for (const kind of ["created", "updated", "deleted"]) {
    source.addEventListener(kind, (event) => {
      if (stream !== source) return;
      let doc;
      try {
        doc = JSON.parse(event.data);
      } catch {
        return;
      }
      apply(kind, doc);
    });
  }
  source.addEventListener("reset", () => {
    if (stream === source) sync(); // fell behind: changes were dropped
  });
  source.addEventListener("error", () => {
    if (stream !== source) return;
    if (source.readyState === EventSource.CONNECTING) {
      setLive("connecting", "reconnecting…"); // the browser retries by itself
      return;
    }
    // Closed: the server refused the stream (an expired token, most likely). Check the
    // token, which refreshes it on a 401 (and reconnects), then open a new stream.
    stream = null;
    setLive("offline");
    const delay = Math.min(MAX_RETRY_MS, 1000 * 2 ** streamFailures++);
    streamTimer = setTimeout(async () => {
      if (!session) return;
      try {
        await api("GET", "/auth/v1/user");
      } catch (error) {
        if (!session) return;
        showError(error);
      }
      if (session && !stream) connect();
    }, delay);
  });
}

// ---------------------------------------------------------------- UI

/** `text` ending with a full stop (server messages may not). */
function sentence(text) {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

function showError(error) {
  ui.error.textContent = typeof error === "string" ? error : (error?.message ?? String(error));
}

function setBusy(form, busy) {
  form.setAttribute("aria-busy", String(busy));
  for (const button of form.querySelectorAll("button")) button.disabled = busy;
}

ui.authForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const signup = event.submitter?.value === "signup";
  const email = ui.email.value.trim();
  const password = ui.password.value;
  if (!email || !password) {
    showError("Enter your email address and a password.");
    (email ? ui.password : ui.email).focus();
    return;
  }
  setBusy(ui.authForm, true);
  try {
    const path = signup ? "/auth/v1/signup" : "/auth/v1/token?grant_type=password";
    const response = await request("POST", path, { body: { email, password } });
    if (!response.ok) throw await errorOf(response);
    const next = fromServer(await response.json());
    showError("");
    ui.password.value = "";
    enter(next);
    ui.noteText.focus();
  } catch (error) {
    showError(error);
    ui.password.focus();
  } finally {
    setBusy(ui.authForm, false);
  }
});

ui.signout.addEventListener("click", async () => {
  if (!session) return;
  ui.signout.disabled = true;
  let message = "";
  try {
    await api("POST", "/auth/v1/logout", () => ({ refresh_token: session?.refresh_token }));
  } catch (error) {
    if (error.code !== "signed_out") {
      message = `Signed out on this device, but the server was not told: ${sentence(error.message)}`;
    }
  } finally {
    ui.signout.disabled = false;
  }
  leave(message);
  ui.email.focus();
});

ui.noteForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (adding) return;
  const text = ui.noteText.value.trim();
  if (!text) {
    showError("Write something first.");
    ui.noteText.focus();
    return;
  }
  adding = true;
  ui.addNote.disabled = true;
  try {
    const doc = await api("POST", `${COLLECTION}/docs`, { text });
    apply("created", doc);
    ui.noteText.value = "";
    showError("");
  } catch (error) {
    showError(error);
  } finally {
    adding = false;
    ui.addNote.disabled = false;
    ui.noteText.focus();
  }
});

ui.noteText.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    ui.noteForm.requestSubmit();
  }
});

ui.notes.addEventListener("click", async (event) => {
  const button = event.target.closest("button.delete");
  if (!button) return;
  const li = button.closest("li");
  const id = li.dataset.id;
  const hadFocus = li.contains(document.activeElement);
  button.disabled = true;
  try {
    await api("DELETE", `${COLLECTION}/docs/${encodeURIComponent(id)}`);
    showError("");
  } catch (error) {
    if (error.status !== 404) {
      // 404: already gone (deleted in another tab)
      showError(error);
      button.disabled = false;
      if (hadFocus) button.focus();
      return;
    }
  }
  const neighbour = li.nextElementSibling ?? li.previousElementSibling;
  apply("deleted", { id });
  if (hadFocus) (neighbour?.querySelector("button") ?? ui.noteText).focus();
});

// Other tabs of this browser profile signed in, out, or refreshed the tokens, or a new
// tab asks for the session.
channel?.addEventListener("message", (event) => {
  const message = event.data;
  if (message?.type === "ask") {
    if (session) channel.postMessage({ type: "session", session });
    return;
  }
  if (message?.type !== "session") return;
  if (message.session === null) {
    shared = null;
    if (session) leave(undefined, false);
  } else if (isSession(message.session) && newer(message.session, shared)) {
    shared = message.session;
    if (!session || newer(shared, session)) enter(shared, false);
  }
});

// Timers sleep in background tabs: check the token when the tab comes back.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible" || !session) return;
  if (isStale(session)) refresh().catch(showError);
  else if (!stream) connect();
});

window.addEventListener("online", () => {
  if (session && !stream) connect();
});

/** The session of the profile's open tabs, if any answers within ASK_MS. */
async function askOtherTabs() {
  if (!channel) return null;
  channel.postMessage({ type: "ask" });
  const deadline = Date.now() + ASK_MS;
  while (!shared && !session && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return shared;
}

async function boot() {
  const stored = await askOtherTabs();
  if (session) return; // an answer already signed this tab in
  if (!stored) {
    showSignedIn(false);
    return;
  }
  if (isStale(stored)) {
    // Signed in earlier but the access token expired: refresh before using it.
    session = stored;
    ui.who.textContent = stored.user.email ?? stored.user.id;
    showSignedIn(true);
    try {
      await refresh();
      return;
    } catch (error) {
      if (!session) return; // the session was over; the form shows why
      showError(error);
    }
  }
  enter(stored, false);
}

boot();
