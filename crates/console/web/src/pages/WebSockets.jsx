import { api } from "../api.js";
import { PageHeader } from "../components/PageHeader.jsx";
import { Empty, Status } from "../components/Status.jsx";
import { Table } from "../components/Table.jsx";
import { num } from "../format.js";
import { useResource } from "../hooks.js";
import { href } from "../router.js";

/** Open WebSocket connections on this node, per function. */
export function WebSockets() {
  const sockets = useResource((signal) => api("/websockets", { signal }), [], { every: 5_000 });
  const data = sockets.data;
  return (
    <>
      <PageHeader title="WebSockets" />
      <p>
        Connections clients hold open at <code>/ws/NAME</code> on this node (another node of the same store counts its own).
      </p>
      <Status error={sockets.error} />
      {data === undefined ? (
        sockets.loading && <p class="muted">Loading…</p>
      ) : (
        <>
          <ul class="tiles">
            <li>
              <span class="tile-label">Open connections</span>
              <strong class="tile-value" data-testid="websockets-open">
                {num(data.open)}
              </strong>
            </li>
          </ul>
          {data.functions.length === 0 ? (
            <Empty>No connection is open.</Empty>
          ) : (
            <Table
              label="Open connections per function"
              testid="websockets-table"
              rows={data.functions}
              rowKey={(row) => row.function}
              columns={[
                ["Function", (row) => <a href={href(["functions", row.function])}>{row.function}</a>],
                ["Open", (row) => num(row.open), "num"],
              ]}
            />
          )}
        </>
      )}
    </>
  );
}
