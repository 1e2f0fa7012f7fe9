import { api, query } from "../api.js";
import { Loaded } from "../components/Layout.jsx";
import { PageHeader } from "../components/PageHeader.jsx";
import { RangePicker } from "../components/RangePicker.jsx";
import { StatCharts, StatTiles } from "../components/StatsPanel.jsx";
import { Table } from "../components/Table.jsx";
import { ms, num, percent, usd } from "../format.js";
import { useRange, useResource } from "../hooks.js";
import { href } from "../router.js";

/** Every function's traffic over the chosen window, refreshed every 10 s. */
export function Overview() {
  const [range, setRange] = useRange();
  const stats = useResource((signal) => api(`/stats${query({ since: range })}`, { signal }), [range], { every: 10_000 });
  return (
    <>
      <PageHeader title="Overview" />
      <RangePicker value={range} onChange={setRange} onRefresh={stats.reload} />
      <Loaded resource={stats}>
        {(data) => (
          <>
            <StatTiles total={data.total} />
            <StatCharts stats={data} />
            <h2>By function</h2>
            {data.functions.length === 0 ? (
              <p class="muted">No function ran in this period.</p>
            ) : (
              <Table
                label="Functions by requests"
                rows={data.functions}
                rowKey={(row) => row.function}
                columns={[
                  ["Function", (row) => <a href={href(["functions", row.function])}>{row.function}</a>],
                  ["Requests", (row) => num(row.requests), "num"],
                  ["Errors", (row) => num(row.errors), "num"],
                  ["p50", (row) => ms(row.p50_ms), "num"],
                  ["p99", (row) => ms(row.p99_ms), "num"],
                  ["Cold starts", (row) => percent(row.cold_start_share), "num"],
                  ["Cost (list)", (row) => usd(row.cost), "num"],
                ]}
              />
            )}
          </>
        )}
      </Loaded>
    </>
  );
}
