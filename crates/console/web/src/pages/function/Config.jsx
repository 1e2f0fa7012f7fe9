import { api } from "../../api.js";
import { Facts } from "../../components/Facts.jsx";
import { Section } from "../../components/Layout.jsx";
import { ScheduleResult } from "../../components/ScheduleResult.jsx";
import { Empty, Status } from "../../components/Status.jsx";
import { Table } from "../../components/Table.jsx";
import { bytes, ms, num, relative, when } from "../../format.js";
import { useResource } from "../../hooks.js";
import { href } from "../../router.js";

// Keys shown in their own sections; anything else the server adds is listed under "Other".
const KNOWN = new Set([
  "runtime",
  "command",
  "memory_mb",
  "timeout_ms",
  "max_instances",
  "idle_ttl_s",
  "reuse_instances",
  "routes",
  "schedules",
  "auth",
  "env",
  "allowed_outbound_hosts",
  "static",
  "async",
]);

/** The live version's effective configuration and its manifest as deployed. */
export function FunctionConfig({ name, fn, version }) {
  const schedules = useResource((signal) => api("/schedules", { signal }), []);
  if (version === undefined) return <p class="muted">Loading…</p>;
  const config = version.config ?? {};
  const origin = fn ? new URL(fn.url).origin : location.origin;
  const states = (schedules.data ?? []).filter((schedule) => schedule.function === name);
  const other = Object.entries(config).filter(([key]) => !KNOWN.has(key));

  return (
    <div class="config" data-testid="config">
      <p class="muted">
        Live version v{version.version}, deployed {when(version.created_at_ms)}. Defaults are filled in.
      </p>
      {version.config === null || version.config === undefined ? (
        <Status error={new Error("The server could not read this version's manifest; only its text is shown below.")} />
      ) : (
        <>
          <Section id="limits" title="Runtime and limits">
            <Facts
              items={[
                ["Runtime", config.runtime ?? version.runtime ?? "—"],
                config.command?.length > 0 && ["Command", <code>{config.command.join(" ")}</code>],
                ["Memory", config.memory_mb === undefined ? "—" : `${num(config.memory_mb)} MB`],
                ["Timeout", config.timeout_ms === undefined ? "—" : ms(config.timeout_ms)],
                ["Max instances", num(config.max_instances)],
                ["Idle instance kept", config.idle_ttl_s === undefined ? "—" : `${num(config.idle_ttl_s)} s`],
                config.reuse_instances !== undefined && ["Reuse instances", config.reuse_instances ? "yes" : "no"],
                ["Auth", <code>{config.auth ?? "public"}</code>],
                version.size_bytes !== null && version.size_bytes !== undefined && ["Artifact size", bytes(version.size_bytes)],
              ]}
            />
          </Section>

          <Section id="routes" title="Routes">
            <ul class="plain">
              {fn && (
                <li>
                  <a href={fn.url} target="_blank" rel="noopener noreferrer" class="url">
                    {fn.url}
                  </a>{" "}
                  <span class="muted">(always)</span>
                </li>
              )}
              {(config.routes ?? []).map((route) => (
                <li key={route}>
                  <a href={origin + route.replace(/\*$/, "")} target="_blank" rel="noopener noreferrer" class="url">
                    {origin + route}
                  </a>
                </li>
              ))}
            </ul>
          </Section>

          <Section id="schedules" title="Schedules">
            <Status error={schedules.error} />
            {(config.schedules ?? []).length === 0 ? (
              <p class="muted">No schedules.</p>
            ) : (
              <Table
                label="Schedules"
                rows={config.schedules.map((schedule) => ({
                  ...schedule,
                  state: states.find((candidate) => candidate.name === schedule.name),
                }))}
                rowKey={(schedule) => schedule.name}
                columns={[
                  ["Name", (schedule) => schedule.name],
                  ["Cron", (schedule) => <code>{schedule.cron}</code>],
                  ["Time zone", (schedule) => schedule.tz],
                  ["Missed ticks", (schedule) => (schedule.catch_up ? "run once" : "skip")],
                  ["Next run", (schedule) => <span title={when(schedule.state?.next_run)}>{relative(schedule.state?.next_run)}</span>],
                  ["Last run", (schedule) => <span title={when(schedule.state?.last_run)}>{relative(schedule.state?.last_run)}</span>],
                  ["Last result", (schedule) => (schedule.state ? <ScheduleResult schedule={schedule.state} /> : "—")],
                ]}
              />
            )}
          </Section>

          <Section id="env" title="Environment">
            {Object.keys(config.env ?? {}).length === 0 ? (
              <p class="muted">No environment values.</p>
            ) : (
              <Facts class="mono" items={Object.entries(config.env).map(([key, value]) => [key, value])} />
            )}
            <h3>Outbound HTTP allowed to</h3>
            {(config.allowed_outbound_hosts ?? []).length === 0 ? (
              <p class="muted">No outbound hosts.</p>
            ) : (
              <ul class="plain mono">
                {config.allowed_outbound_hosts.map((host) => (
                  <li key={host}>{host}</li>
                ))}
              </ul>
            )}
          </Section>

          <Section id="static" title="Static files and async">
            <Facts
              items={[
                ["Static files", config.static ? `${config.static.dir}${config.static.spa ? " (single-page app)" : ""}` : "none"],
                ...Object.entries(config.async ?? {}).map(([key, value]) => [`async.${key}`, show(value)]),
              ]}
            />
          </Section>

          {other.length > 0 && (
            <Section id="other" title="Other settings">
              <Facts class="mono" items={other.map(([key, value]) => [key, show(value)])} />
            </Section>
          )}
        </>
      )}

      <Section id="manifest" title={`Manifest (gureum.toml of v${version.version})`}>
        {version.manifest ? <pre data-testid="manifest">{version.manifest}</pre> : <Empty>No manifest text.</Empty>}
      </Section>
    </div>
  );
}

function show(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return <code>{JSON.stringify(value)}</code>;
  return String(value);
}
