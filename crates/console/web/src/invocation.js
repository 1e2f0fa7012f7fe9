// An invocation's log lines and record are written a moment after its response; these
// poll for them briefly instead of answering "nothing" too early.
import { api, query, seg, sleep } from "./api.js";

const POLL_MS = 300;

/** The invocation's log lines once they stop growing, or whatever is there after `within` ms. */
export async function pollLogs(name, id, { signal, within = 3000 }) {
  const deadline = Date.now() + within;
  let previous = -1;
  for (;;) {
    const lines = await api(`/functions/${seg(name)}/logs${query({ invocation: id })}`, { signal });
    if (lines.length > 0 && lines.length === previous) return lines;
    previous = lines.length;
    if (Date.now() >= deadline) return lines;
    await sleep(POLL_MS, signal);
  }
}

/**
 * The invocation's record from the recent-invocations list (a missing record is an empty
 * list there, not a 404 logged by the browser), or null after `within` ms.
 */
export async function pollRecord(name, id, sinceMs, { signal, within = 3000 }) {
  const deadline = Date.now() + within;
  for (;;) {
    const records = await api(`/functions/${seg(name)}/invocations${query({ since_ms: sinceMs, limit: 1000 })}`, { signal });
    const record = records.find((candidate) => candidate.id === id);
    if (record) return record;
    if (Date.now() >= deadline) return null;
    await sleep(POLL_MS, signal);
  }
}
