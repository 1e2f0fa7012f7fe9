// The control API client: every call goes to /api/v1 on this origin with the admin token.
// Errors become ApiError with the server's message, so pages can show it verbatim.

const TOKEN_KEY = "gureum.adminToken";
const BASE = "/api/v1";

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  save: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

class ApiError extends Error {
  constructor(status, code, message, problems = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.problems = problems;
  }
}

let refused = () => {};

/** Called when the server refuses the stored token (it was rotated, or the server changed). */
export function onTokenRefused(handler) {
  refused = handler;
}

/** Encodes one path segment (function, collection and document names). */
export const seg = encodeURIComponent;

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * Calls `path` under /api/v1. Objects are sent as JSON; JSON answers are parsed, others
 * returned as text. `raw: true` returns the Response itself (still throwing on errors
 * unless `passErrors`). `token` signs the call with another token (the sign-in check), and
 * then a 401 is the caller's to handle.
 */
export async function api(path, { method = "GET", body, headers = {}, signal, token, raw = false, passErrors = false } = {}) {
  const init = { method, signal, headers: { ...headers } };
  init.headers.authorization = `Bearer ${token ?? session.token() ?? ""}`;
  if (body !== undefined) {
    if (typeof body === "string" || body instanceof Blob) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
      init.headers["content-type"] ??= "application/json";
    }
  }
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network", `The server did not answer (${error.message}). Is gureum running?`);
  }
  if (!response.ok && !passErrors) {
    const error = await errorOf(response);
    if (response.status === 401 && token === undefined) refused(error);
    throw error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") ?? "";
  return type.includes("json") ? response.json() : response.text();
}

/** The ApiError of a failed response, from its `{"error": {code, message}}` body. */
async function errorOf(response) {
  const text = await response.text().catch(() => "");
  try {
    const { error } = JSON.parse(text);
    if (error?.message) return new ApiError(response.status, error.code ?? "", error.message, error.problems ?? []);
  } catch {
    // Not the platform's JSON error body (a proxy's page, an empty body): use the text.
  }
  const detail = text.trim().slice(0, 300) || response.statusText;
  return new ApiError(response.status, "http", `HTTP ${response.status}${detail ? `: ${detail}` : ""}`);
}

/**
 * Reads a server-sent event stream from `path` (EventSource cannot send the token) and
 * calls `onEvent({id, event, data})` for each event until the stream ends or `signal`
 * aborts. Resolves when the server closes the stream.
 */
export async function streamEvents(path, { signal, onOpen, onEvent }) {
  const response = await api(path, { signal, raw: true, headers: { accept: "text/event-stream" } });
  onOpen?.();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { id: null, event: "message", data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (const received of lines) {
      const line = received.endsWith("\r") ? received.slice(0, -1) : received;
      if (line === "") {
        if (event.data.length > 0) onEvent({ id: event.id, event: event.event, data: event.data.join("\n") });
        event = { id: event.id, event: "message", data: [] };
        continue;
      }
      if (line.startsWith(":")) continue; // keep-alive comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") event.data.push(text);
      else if (field === "id") event.id = text;
      else if (field === "event") event.event = text;
    }
  }
}

/** Resolves after `ms`, or rejects with an AbortError when `signal` aborts first. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new DOMException("Aborted", "AbortError"));
      },
      { once: true },
    );
  });
}
