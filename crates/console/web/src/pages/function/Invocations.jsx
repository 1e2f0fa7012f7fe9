import { api, query, seg } from "../../api.js";
import { Loaded, Section } from "../../components/Layout.jsx";
import { Empty } from "../../components/Status.jsx";
import { Table } from "../../components/Table.jsx";
import { bytes, num, relative, us, when } from "../../format.js";
import { useResource } from "../../hooks.js";
import { href } from "../../router.js";

/** The function's latest invocations, newest first. */
export function Invocations({ name }) {
  const list = useResource((signal) => api(`/functions/${seg(name)}/invocations${query({ limit: 100 })}`, { signal }), [], {
    every: 10_000,
  });
  return (
    <Section
      id="invocations"
      title="Recent invocations"
      actions={
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      }
    >
      <Loaded resource={list}>
        {(records) =>
          records.length === 0 ? (
        <Empty>No invocations are recorded yet. Call the function or use Test invoke.</Empty>
      ) : (
        <Table
          label="Recent invocations"
          testid="invocations-table"
          rows={records}
          rowKey={(record) => record.id}
          attrs={() => ({ "data-testid": "invocation-row" })}
          columns={[
            [
              "Invocation",
              (record) => (
                <a href={href(["functions", name, "invocations", record.id])} title={record.id}>
                  <code>{record.id.slice(0, 8)}</code>
                </a>
              ),
            ],
            ["Started", (record) => <span title={when(record.started_at_ms)}>{relative(record.started_at_ms)}</span>],
            ["Version", (record) => `v${record.version}`],
            ["Trigger", (record) => record.trigger],
            ["Status", (record) => <span class={record.status >= 400 ? "bad" : undefined}>{record.status}</span>, "num"],
            ["Outcome", (record) => <span class={`outcome ${record.outcome}`}>{record.outcome}</span>],
            ["Duration", (record) => us(record.duration_us), "num"],
            ["Billed", (record) => `${num(record.billed_ms)} ms`, "num"],
            ["Start", (record) => (record.cold_start ? "cold" : "warm")],
            ["In", (record) => bytes(record.bytes_in), "num"],
            ["Out", (record) => bytes(record.bytes_out), "num"],
          ]}
        />
          )
        }
      </Loaded>
    </Section>
  );
}
