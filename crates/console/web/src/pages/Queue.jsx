import { api } from "../api.js";
import { PageHeader } from "../components/PageHeader.jsx";
import { ScheduleResult } from "../components/ScheduleResult.jsx";
import { Empty, Status } from "../components/Status.jsx";
import { Table } from "../components/Table.jsx";
import { num, relative, when } from "../format.js";
import { useResource } from "../hooks.js";
import { href } from "../router.js";

/** Asynchronous queues (depth, oldest event, dead letters) and cron schedules. */
export function Queue() {
  const queue = useResource((signal) => api("/queue", { signal }), [], { every: 5_000 });
  const schedules = useResource((signal) => api("/schedules", { signal }), [], { every: 15_000 });
  const rows = queue.data ?? [];
  const dead = rows.reduce((sum, row) => sum + row.dead_letters, 0);
  const waiting = rows.reduce((sum, row) => sum + row.depth, 0);

  return (
    <>
      <PageHeader title="Queue" />
      <p>
        Asynchronous invocations (<code>x-gureum-invocation-type: event</code>) and cron ticks wait here; events that fail
        every retry become dead letters.
      </p>
      <Status error={queue.error ?? schedules.error} />
      {queue.data === undefined ? (
        queue.loading && <p class="muted">Loading…</p>
      ) : rows.length === 0 ? (
        <Empty>No function is deployed.</Empty>
      ) : (
        <>
          <ul class="tiles">
            <li>
              <span class="tile-label">Waiting or running</span>
              <strong class="tile-value">{num(waiting)}</strong>
            </li>
            <li>
              <span class="tile-label">Dead letters</span>
              <strong class="tile-value">{num(dead)}</strong>
            </li>
          </ul>
          <Table
            label="Queues per function"
            testid="queue-table"
            rows={rows}
            rowKey={(row) => row.function}
            attrs={(row) => ({ "data-testid": "queue-row", "data-name": row.function })}
            columns={[
              ["Function", (row) => <a href={href(["functions", row.function])}>{row.function}</a>],
              ["Depth", (row) => num(row.depth), "num"],
              ["Oldest waiting", (row) => <span title={when(row.oldest_enqueued_at_ms)}>{relative(row.oldest_enqueued_at_ms)}</span>],
              [
                "Dead letters",
                (row) => (
                  <a
                    href={href(["functions", row.function], { tab: "dead-letters" })}
                    aria-label={`${num(row.dead_letters)} dead letters of ${row.function}`}
                  >
                    {num(row.dead_letters)}
                  </a>
                ),
                "num",
              ],
            ]}
          />
        </>
      )}
      <h2>Schedules</h2>
      {schedules.data?.length === 0 ? (
        <p class="muted">
          No cron schedules. Add <code>[[schedule]]</code> entries to a function's gureum.toml.
        </p>
      ) : (
        schedules.data && (
          <Table
            label="Schedules"
            testid="schedules-table"
            rows={schedules.data}
            rowKey={(schedule) => `${schedule.function}/${schedule.name}`}
            columns={[
              ["Function", (schedule) => <a href={href(["functions", schedule.function], { tab: "config" })}>{schedule.function}</a>],
              ["Schedule", (schedule) => schedule.name],
              [
                "Cron",
                (schedule) => (
                  <>
                    <code>{schedule.cron}</code> <span class="muted">{schedule.tz}</span>
                  </>
                ),
              ],
              ["Next run", (schedule) => <span title={when(schedule.next_run)}>{relative(schedule.next_run)}</span>],
              ["Last run", (schedule) => <span title={when(schedule.last_run)}>{relative(schedule.last_run)}</span>],
              ["Result", (schedule) => <ScheduleResult schedule={schedule} />],
            ]}
          />
        )
      )}
    </>
  );
}
