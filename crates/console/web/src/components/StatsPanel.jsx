import { float, ms, num, percent, span, usd, usdFloat } from "../format.js";
import { Chart } from "./Chart.jsx";

const BLUE = "#1d4ed8";
const RED = "#b91c1c";
const AMBER = "#b45309";
const GREEN = "#047857";
const PURPLE = "#6d28d9";

const decimal2 = (value) => (Number.isInteger(value) ? num(value) : value.toFixed(2));

/** Headline numbers of a `/stats` answer. */
export function StatTiles({ total, extra = [] }) {
  const tiles = [
    ["Requests", num(total.requests)],
    ["Errors", `${num(total.errors)}${total.requests > 0 ? ` (${percent(total.errors / total.requests)})` : ""}`],
    ["p50 duration", ms(total.p50_ms)],
    ["p99 duration", ms(total.p99_ms)],
    ["Cold starts", percent(total.requests > 0 ? total.cold_start_share : null)],
    ["Peak concurrency", num(total.peak_concurrency)],
    ["Cost (list price)", usd(total.cost)],
    ...extra,
  ];
  return (
    <ul class="tiles" data-testid="tiles">
      {tiles.map(([label, value]) => (
        <li key={label}>
          <span class="tile-label">{label}</span>
          <strong class={typeof value === "string" && value.length > 9 ? "tile-value long" : "tile-value"}>{value}</strong>
        </li>
      ))}
    </ul>
  );
}

/** The five charts of a `/stats` answer: traffic, latency, cold starts, concurrency, cost. */
export function StatCharts({ stats }) {
  const points = stats.series;
  const x = points.map((point) => point.t_ms / 1000);
  const step = span(stats.step_ms);
  const pick = (key) => points.map((point) => point[key]);
  return (
    <div class="charts">
      <Chart
        testid="chart-requests"
        title={`Requests and errors (per ${step})`}
        x={x}
        format={num}
        series={[
          { label: "Requests", values: pick("requests"), color: BLUE, sum: true },
          { label: "Errors", values: pick("errors"), color: RED, sum: true },
          { label: "Throttled", values: pick("throttled"), color: AMBER, dash: [4, 3], sum: true },
        ]}
      />
      <Chart
        testid="chart-duration"
        title="Duration percentiles"
        x={x}
        format={ms}
        series={[
          { label: "p50", values: pick("p50_ms"), color: GREEN, points: true },
          { label: "p95", values: pick("p95_ms"), color: AMBER, points: true },
          { label: "p99", values: pick("p99_ms"), color: RED, points: true },
        ]}
      />
      <Chart
        testid="chart-cold-starts"
        title={`Cold starts (per ${step})`}
        x={x}
        format={num}
        series={[{ label: "Cold starts", values: pick("cold_starts"), color: PURPLE, sum: true }]}
      />
      <Chart
        testid="chart-concurrency"
        title="Concurrency"
        x={x}
        format={decimal2}
        series={[
          { label: "Average", values: pick("avg_concurrency"), color: BLUE },
          { label: "Peak", values: pick("peak_concurrency"), color: PURPLE, dash: [4, 3] },
        ]}
      />
      <Chart
        testid="chart-cost"
        title={`Cost at list price (per ${step})`}
        x={x}
        format={usdFloat}
        series={[{ label: "Cost", values: points.map((point) => float(point.cost)), color: GREEN, sum: true }]}
      />
    </div>
  );
}
