import { useState } from "preact/hooks";
import { api, seg } from "../../api.js";
import { Section } from "../../components/Layout.jsx";
import { Empty } from "../../components/Status.jsx";
import { Table } from "../../components/Table.jsx";
import { bytes, relative, when } from "../../format.js";

/** Every version, newest first; any of them can be made live again. */
export function Versions({ name, versions, liveVersion, onChanged, onFailed }) {
  const [busy, setBusy] = useState(false);
  if (versions === undefined) return <p class="muted">Loading…</p>;
  if (versions.length === 0) return <Empty>No versions.</Empty>;

  // The server's default rollback target: the newest version below live.
  const previous = versions
    .map((version) => version.version)
    .filter((version) => version < liveVersion)
    .reduce((a, b) => Math.max(a, b), 0);

  const moveLive = async (to) => {
    setBusy(true);
    try {
      const moved = await api(`/functions/${seg(name)}/rollback`, { method: "POST", body: to === undefined ? {} : { to } });
      onChanged(`${moved.name}: live moved from v${moved.from} to v${moved.to}.`);
    } catch (error) {
      onFailed(error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Section
      id="versions"
      title="Versions"
      actions={
        <button
          type="button"
          onClick={() => moveLive(previous)}
          disabled={busy || previous === 0}
          data-testid="rollback"
          title={previous === 0 ? "No version before the live one" : undefined}
        >
          {previous === 0 ? "Roll back" : `Roll back to v${previous}`}
        </button>
      }
    >
      <Table
        label="Versions"
        testid="versions-table"
        rows={[...versions].reverse()}
        rowKey={(version) => version.version}
        attrs={(version) => ({ "data-testid": "version-row", "data-version": version.version, "data-live": String(version.live) })}
        columns={[
          ["Version", (version) => `v${version.version}`],
          [
            "Deployed",
            (version) => (
              <>
                {when(version.created_at_ms)} <span class="muted">({relative(version.created_at_ms)})</span>
              </>
            ),
          ],
          ["Size", (version) => (version.size_bytes === null || version.size_bytes === undefined ? "—" : bytes(version.size_bytes)), "num"],
          ["Runtime", (version) => version.runtime || "—"],
          [
            "Artifact hash",
            (version) =>
              version.artifact_hash ? (
                <code title={version.artifact_hash}>{version.artifact_hash.slice(0, 12)}</code>
              ) : (
                <span class="muted">static only</span>
              ),
          ],
          [
            "Status",
            (version) =>
              version.live ? (
                <span class="badge live">Live</span>
              ) : (
                <button
                  type="button"
                  class="small"
                  disabled={busy}
                  onClick={() => moveLive(version.version)}
                  data-testid="promote"
                  data-version={version.version}
                  aria-label={`Promote v${version.version} to live`}
                >
                  Promote
                </button>
              ),
          ],
        ]}
      />
      <p class="hint">Promote and roll back move the live alias only; every version stays deployed and can be pinned as <code>/fn/{name}@N/</code>.</p>
    </Section>
  );
}
