import { api, query } from "../api.js";
import { PageHeader } from "../components/PageHeader.jsx";
import { RangePicker } from "../components/RangePicker.jsx";
import { Empty, Status } from "../components/Status.jsx";
import { Table } from "../components/Table.jsx";
import { ms, monthStartMs, num, percent, usd } from "../format.js";
import { useRange, useResource } from "../hooks.js";
import { href } from "../router.js";

/** Deployed functions with their traffic in the chosen window and their cost this month. */
export function Functions() {
  const [range, setRange] = useRange();
  // The list refreshes often: a deploy from the CLI should show up without a reload.
  const list = useResource((signal) => api("/functions", { signal }), [], { every: 5_000 });
  const stats = useResource((signal) => api(`/stats${query({ since: range })}`, { signal }), [range], { every: 10_000 });
  const usage = useResource(
    (signal) => api(`/usage${query({ since_ms: monthStartMs(), by: "function" })}`, { signal }),
    [],
    { every: 60_000 },
  );
  const refresh = () => {
    list.reload();
    stats.reload();
    usage.reload();
  };

  const traffic = new Map((stats.data?.functions ?? []).map((row) => [row.function, row]));
  const costs = new Map((usage.data?.groups ?? []).map((group) => [group.function ?? group.key, group.totals]));
  const functions = (list.data ?? []).map((fn) => ({ ...fn, stats: traffic.get(fn.name) ?? {}, month: costs.get(fn.name) }));

  return (
    <>
      <PageHeader title="Functions" />
      <RangePicker value={range} onChange={setRange} onRefresh={refresh} />
      <Status error={list.error ?? stats.error ?? usage.error} />
      {list.data === undefined ? (
        list.loading && <p class="muted">Loading…</p>
      ) : functions.length === 0 ? (
        <Empty>
          <p>No function is deployed yet. Deploy one from a project directory with the CLI:</p>
          <pre>
            <code>{"gureum new rust-wasm hello\ngureum deploy hello --url " + location.origin}</code>
          </pre>
          <p>It appears here within a few seconds.</p>
        </Empty>
      ) : (
        <Table
          label="Functions"
          testid="functions-table"
          rows={functions}
          rowKey={(fn) => fn.name}
          attrs={(fn) => ({ "data-testid": "function-row", "data-name": fn.name })}
          columns={[
            ["Name", (fn) => <a href={href(["functions", fn.name])}>{fn.name}</a>],
            ["Runtime", (fn) => fn.runtime || "—"],
            [
              "Live",
              (fn) => (
                <>
                  v{fn.live_version}
                  {fn.latest_version !== fn.live_version && <span class="muted"> of {fn.latest_version}</span>}
                </>
              ),
              "num",
            ],
            [`Requests (${range})`, (fn) => num(fn.stats.requests ?? 0), "num"],
            ["Errors", (fn) => num(fn.stats.errors ?? 0), "num"],
            ["p50", (fn) => ms(fn.stats.p50_ms), "num"],
            ["p99", (fn) => ms(fn.stats.p99_ms), "num"],
            ["Cold starts", (fn) => (fn.stats.requests ? percent(fn.stats.cold_start_share) : "—"), "num"],
            ["Cost this month", (fn) => (usage.data === undefined ? "—" : usd(fn.month?.cost ?? "0")), "num"],
            [
              "Public URL",
              (fn) => (
                <a href={fn.url} target="_blank" rel="noopener noreferrer" class="url">
                  {fn.url}
                </a>
              ),
            ],
          ]}
        />
      )}
      <p class="hint">
        Cost this month is after the free tier, from the 1st (UTC); see <a href="#/usage">Usage</a> for the breakdown.
      </p>
    </>
  );
}
