import { api, query } from "../../api.js";
import { RangePicker } from "../../components/RangePicker.jsx";
import { StatCharts, StatTiles } from "../../components/StatsPanel.jsx";
import { Loaded } from "../../components/Layout.jsx";
import { Status } from "../../components/Status.jsx";
import { num } from "../../format.js";
import { useRange, useResource } from "../../hooks.js";
import { href } from "../../router.js";

/** The function's traffic over the chosen window, its open WebSockets and its queue. */
export function FunctionOverview({ name }) {
  const [range, setRange] = useRange();
  const stats = useResource((signal) => api(`/stats${query({ since: range, function: name })}`, { signal }), [range], {
    every: 10_000,
  });
  const sockets = useResource((signal) => api("/websockets", { signal }), [], { every: 10_000 });
  const queue = useResource((signal) => api("/queue", { signal }), [], { every: 10_000 });
  const refresh = () => {
    stats.reload();
    sockets.reload();
    queue.reload();
  };

  const open = sockets.data?.functions.find((row) => row.function === name)?.open ?? 0;
  const waiting = queue.data?.find((row) => row.function === name);
  const extra = [
    ["WebSockets open", sockets.data ? num(open) : "—"],
    ["Queue depth", waiting ? num(waiting.depth) : "—"],
    [
      "Dead letters",
      waiting ? <a href={href(["functions", name], { tab: "dead-letters" })}>{num(waiting.dead_letters)}</a> : "—",
    ],
  ];

  return (
    <section aria-label="Traffic">
      <RangePicker value={range} onChange={setRange} onRefresh={refresh} />
      <Status error={sockets.error ?? queue.error} />
      <Loaded resource={stats}>
        {(data) => (
          <>
            <StatTiles total={data.total} extra={extra} />
            <StatCharts stats={data} />
          </>
        )}
      </Loaded>
    </section>
  );
}
