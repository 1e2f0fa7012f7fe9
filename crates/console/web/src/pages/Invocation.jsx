import { api, seg } from "../api.js";
import { InvocationFacts } from "../components/InvocationFacts.jsx";
import { Section } from "../components/Layout.jsx";
import { LogLines } from "../components/LogLines.jsx";
import { PageHeader } from "../components/PageHeader.jsx";
import { Empty, Status } from "../components/Status.jsx";
import { pollLogs, pollRecord } from "../invocation.js";
import { useResource } from "../hooks.js";
import { href } from "../router.js";

/** How recent a log line must be for its invocation's record to be still on its way. */
const FRESH_MS = 15_000;

async function load(name, id, signal) {
  const lines = await pollLogs(name, id, { signal, within: 1500 });
  // A record is written a moment after the response, so a just-logged invocation may not
  // have one yet: look in the recent list (for a few seconds when the lines are fresh)
  // before asking for it by id, which answers 404 until it exists.
  const fresh = lines.length > 0 && Date.now() - lines.at(-1).ts_ms < FRESH_MS;
  const since = lines.length > 0 ? lines[0].ts_ms - 60_000 : Date.now() - 300_000;
  let record = await pollRecord(name, id, since, { signal, within: fresh ? 3000 : 0 });
  let recordError = null;
  if (record === null) {
    try {
      record = await api(`/functions/${seg(name)}/invocations/${seg(id)}`, { signal });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      recordError = error;
    }
  }
  return { lines, record, recordError };
}

/** One invocation: its record and every line it logged. */
export function Invocation({ name, id }) {
  const data = useResource((signal) => load(name, id, signal), []);
  const found = data.data;
  return (
    <>
      <PageHeader title="Invocation" label={`Invocation ${id}`}>
        <a class="button" href={href(["functions", name], { tab: "invocations" })}>
          All invocations of {name}
        </a>
      </PageHeader>
      <p class="subtitle">
        <code class="wrap" data-testid="invocation-id">{id}</code> of <a href={href(["functions", name])}>{name}</a>
      </p>
      <Status error={data.error} />
      {found === undefined ? (
        data.loading && <p class="muted">Loading…</p>
      ) : (
        <>
          <Section id="record" title="Record">
            {found.record ? (
              <div data-testid="invocation-record">
                <InvocationFacts record={found.record} />
              </div>
            ) : (
              <Status error={found.recordError} />
            )}
          </Section>
          <Section id="lines" title="Log lines">
            {found.lines.length === 0 ? (
              <Empty>This invocation wrote no log lines (or they are past the log retention).</Empty>
            ) : (
              <LogLines lines={found.lines} linked={false} testid="invocation-logs" />
            )}
          </Section>
        </>
      )}
    </>
  );
}
