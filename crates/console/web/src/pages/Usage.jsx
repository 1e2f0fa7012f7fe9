import { useState } from "preact/hooks";
import { api, query } from "../api.js";
import { Chart } from "../components/Chart.jsx";
import { Facts } from "../components/Facts.jsx";
import { Field, Section } from "../components/Layout.jsx";
import { PageHeader } from "../components/PageHeader.jsx";
import { Empty, Status } from "../components/Status.jsx";
import { Table } from "../components/Table.jsx";
import { bytes, decimal, float, num, percent, usd, usdFloat, when } from "../format.js";
import { useResource } from "../hooks.js";
import { href } from "../router.js";

const PERIODS = [
  ["7d", "7 days"],
  ["30d", "30 days"],
  ["90d", "90 days"],
];
const DAY_MS = 86_400_000;

/** One point per UTC day of a `by=day` report, zero on days without usage. */
function dailySeries(report) {
  const byDay = new Map(report.groups.map((group) => [group.day ?? group.key, group.totals]));
  const start = Date.parse(`${report.since_day}T00:00:00Z`);
  const end = Date.parse(`${report.until_day}T00:00:00Z`);
  const days = [];
  for (let at = start; at <= end; at += DAY_MS) days.push(at);
  const totals = days.map((at) => byDay.get(new Date(at).toISOString().slice(0, 10)));
  return {
    x: days.map((at) => at / 1000),
    requests: totals.map((t) => t?.requests ?? 0),
    errors: totals.map((t) => t?.errors ?? 0),
    cost: totals.map((t) => float(t?.cost ?? "0")),
    costList: totals.map((t) => float(t?.cost_list ?? "0")),
  };
}

/** Requests, GB-seconds and cost: the free tier, this month's projection, per function and per day. */
export function Usage() {
  const [since, setSince] = useState("30d");
  const [vmMonthly, setVmMonthly] = useState("24");
  const [vmApplied, setVmApplied] = useState("24");
  const report = useResource(
    (signal) => api(`/usage${query({ since, by: "function", compare_vm: true, vm_monthly: vmApplied })}`, { signal }),
    [since, vmApplied],
    { every: 60_000 },
  );
  const daily = useResource((signal) => api(`/usage${query({ since, by: "day" })}`, { signal }), [since], { every: 60_000 });
  const quotas = useResource((signal) => api("/quotas", { signal }), []);
  const data = report.data;

  return (
    <>
      <PageHeader title="Usage and cost" />
      <div class="toolbar">
        <fieldset class="segmented">
          <legend>Period</legend>
          {PERIODS.map(([value, label]) => (
            <label key={value}>
              <input type="radio" name="usage-period" value={value} checked={since === value} onChange={() => setSince(value)} />
              <span>{label}</span>
            </label>
          ))}
        </fieldset>
      </div>
      <Status error={report.error ?? daily.error} />
      {data === undefined ? (
        report.loading && <p class="muted">Loading…</p>
      ) : (
        <>
          <p class="muted">
            {data.since_day} to {data.until_day} (whole UTC days), {num(data.total.requests)} requests,{" "}
            {decimal(data.total.gb_seconds)} GB-s: <strong>{usd(data.total.cost)}</strong> after the free tier ({usd(data.total.cost_list)} at
            list price).
          </p>
          <FreeTier data={data} />
          <Section id="projection" title="This month, projected">
            <Facts
              class="tiles-like"
              items={[
                ["Requests", num(data.projected_month.requests)],
                ["GB-seconds", decimal(data.projected_month.gb_seconds)],
                ["Cost at list price", usd(data.projected_month.cost_list)],
                ["Cost after the free tier", usd(data.projected_month.cost)],
              ]}
            />
          </Section>
          <Section id="daily" title="Per day">
            {daily.data && <DailyCharts report={daily.data} />}
          </Section>
          <ByFunction data={data} />
          <VmComparison
            comparison={data.compare_vm}
            value={vmMonthly}
            onInput={setVmMonthly}
            onApply={() => setVmApplied(vmMonthly.trim() || "24")}
          />
          <Section id="prices" title="Price list">
            <Facts
              items={[
                // Prices exactly as the operator set them.
                ["Per million requests", `$${data.prices.requests_per_million}`],
                ["Per GB-second", `$${data.prices.gb_second}`],
                ["Free requests a month", num(data.prices.free_requests_per_month)],
                ["Free GB-seconds a month", data.prices.free_gb_seconds_per_month],
              ]}
            />
            <p class="hint">{data.free_tier_rule}</p>
            <p class="hint">
              Change it with <code>gureum prices set prices.toml</code> (or <code>PUT /api/v1/prices</code>).
            </p>
          </Section>
          <Quotas quotas={quotas} />
        </>
      )}
    </>
  );
}

function Gauge({ id, label, used, left, usedText, totalText }) {
  const total = used + left;
  const share = total > 0 ? used / total : 0;
  return (
    <div class="gauge">
      <label for={id}>{label}</label>
      <meter id={id} min="0" max={total || 1} value={used} high={(total || 1) * 0.8} optimum="0" />
      <p>
        {usedText} of {totalText} used ({percent(share)})
      </p>
    </div>
  );
}

function FreeTier({ data }) {
  const tier = data.free_tier;
  const gbUsed = float(tier.gb_seconds_used);
  const gbLeft = float(tier.gb_seconds_left);
  return (
    <Section id="free" title={`Free tier, ${tier.month}`} data-testid="free-tier">
      <div class="gauges">
        <Gauge
          id="free-requests"
          label="Free requests"
          used={tier.requests_used}
          left={tier.requests_left}
          usedText={num(tier.requests_used)}
          totalText={num(tier.requests_used + tier.requests_left)}
        />
        <Gauge
          id="free-gb"
          label="Free GB-seconds"
          used={gbUsed}
          left={gbLeft}
          usedText={decimal(tier.gb_seconds_used)}
          totalText={data.prices.free_gb_seconds_per_month}
        />
      </div>
      <p class="hint">Starts again {when(tier.resets_at)}.</p>
    </Section>
  );
}

function DailyCharts({ report }) {
  const series = dailySeries(report);
  return (
    <div class="charts">
      <Chart
        testid="chart-usage-requests"
        title="Requests per day (UTC)"
        x={series.x}
        utc
        format={num}
        series={[
          { label: "Requests", values: series.requests, color: "#1d4ed8", sum: true },
          { label: "Errors", values: series.errors, color: "#b91c1c", sum: true },
        ]}
      />
      <Chart
        testid="chart-usage-cost"
        title="Cost per day (UTC)"
        x={series.x}
        utc
        format={usdFloat}
        series={[
          { label: "After free tier", values: series.cost, color: "#047857", sum: true },
          { label: "List price", values: series.costList, color: "#6b7280", dash: [4, 3], sum: true },
        ]}
      />
    </div>
  );
}

function ByFunction({ data }) {
  return (
    <Section id="by-function" title="Per function">
      {data.groups.length === 0 ? (
        <Empty>No usage in this period.</Empty>
      ) : (
        <Table
          label="Usage per function"
          testid="usage-table"
          rows={data.groups.map((group) => ({ ...group.totals, key: group.key, function: group.function ?? group.key }))}
          rowKey={(row) => row.key}
          foot={{ label: "Total", row: data.total }}
          columns={[
            ["Function", (row) => <a href={href(["functions", row.function])}>{row.key}</a>],
            ["Requests", (row) => num(row.requests), "num"],
            ["Errors", (row) => num(row.errors), "num"],
            ["Throttled", (row) => num(row.throttled), "num"],
            ["Cold starts", (row) => num(row.cold_starts), "num"],
            ["GB-seconds", (row) => decimal(row.gb_seconds), "num"],
            ["In / out", (row) => `${bytes(row.bytes_in)} / ${bytes(row.bytes_out)}`, "num"],
            ["List price", (row) => usd(row.cost_list), "num"],
            ["Cost", (row) => usd(row.cost), "num"],
          ]}
        />
      )}
    </Section>
  );
}

function VmComparison({ comparison, value, onInput, onApply }) {
  return (
    <Section id="vm" title="Compared with an always-on VM" data-testid="vm-comparison">
      <form
        class="toolbar"
        onSubmit={(event) => {
          event.preventDefault();
          onApply();
        }}
      >
        <Field id="vm-monthly" label="VM cost per month (USD)">
          <div class="joined">
            <input id="vm-monthly" type="text" inputmode="decimal" value={value} onInput={(event) => onInput(event.currentTarget.value)} />
            <button type="submit">Compare</button>
          </div>
        </Field>
      </form>
      {comparison && (
        <>
          <p>{comparison.sentence}</p>
          <Table
            label="Monthly cost by request rate"
            rows={comparison.table}
            rowKey={(row) => row.requests_per_second + String(row.observed)}
            attrs={(row) => ({ class: row.observed ? "observed" : undefined })}
            columns={[
              [
                "Requests/s",
                (row) => (
                  <>
                    {decimal(row.requests_per_second)}
                    {row.observed && <span class="badge">yours</span>}
                  </>
                ),
                "num",
              ],
              ["Requests a month", (row) => row.requests_per_month, "num"],
              ["gureum", (row) => usd(row.serverless_monthly), "num"],
              ["VM", (row) => usd(row.vm_monthly), "num"],
              ["Cheaper", (row) => (row.cheaper === "vm" ? "VM" : "gureum")],
            ]}
          />
        </>
      )}
    </Section>
  );
}

function Quotas({ quotas }) {
  return (
    <Section id="quotas" title="Quotas">
      <Status error={quotas.error} />
      {quotas.data?.length === 0 ? (
        <p class="muted">
          No monthly caps. Set one with <code>gureum quota set NAME --requests 100000</code>.
        </p>
      ) : (
        quotas.data && (
          <Table
            label="Quotas"
            rows={quotas.data}
            rowKey={(quota) => quota.scope}
            columns={[
              ["Scope", (quota) => quota.scope],
              ["Requests", (quota) => capped(num(quota.used.requests), quota.requests === null ? null : num(quota.requests)), "num"],
              ["GB-seconds", (quota) => capped(quota.used.gb_seconds, quota.gb_seconds), "num"],
              ["Cost", (quota) => capped(usd(quota.used.cost), quota.cost === null ? null : usd(quota.cost)), "num"],
              ["Warn at", (quota) => `${quota.warn_percent}%`, "num"],
            ]}
          />
        )
      )}
    </Section>
  );
}

const capped = (used, cap) => (cap === null || cap === undefined ? `${used} (no cap)` : `${used} of ${cap}`);
