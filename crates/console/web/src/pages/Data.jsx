import { useState } from "preact/hooks";
import { api } from "../api.js";
import { Field } from "../components/Layout.jsx";
import { PageHeader } from "../components/PageHeader.jsx";
import { Empty, Status } from "../components/Status.jsx";
import { Table } from "../components/Table.jsx";
import { num } from "../format.js";
import { useResource } from "../hooks.js";
import { href, navigate } from "../router.js";

const OPERATIONS = ["list", "get", "create", "update", "delete"];

/** Configured collections with their rules, indexes and document counts. */
export function Data() {
  const list = useResource((signal) => api("/collections", { signal }), [], { every: 30_000 });
  const [name, setName] = useState("");
  const open = (event) => {
    event.preventDefault();
    if (name.trim()) navigate(href(["data", name.trim()]));
  };

  return (
    <>
      <PageHeader title="Data" />
      <p>
        Document collections of the backend services (<code>/data/v1</code>). Their rules decide what users may read and
        write; the console acts as the administrator and skips them.
      </p>
      <Status error={list.error} />
      {list.data === undefined ? (
        list.loading && <p class="muted">Loading…</p>
      ) : list.data.length === 0 ? (
        <Empty>
          <p>No collection has a config yet, so users and anonymous callers are refused everywhere.</p>
          <p>Open a collection by name below to write its rules.</p>
        </Empty>
      ) : (
        <Table
          label="Collections"
          testid="collections-table"
          rows={list.data}
          rowKey={(collection) => collection.name}
          attrs={(collection) => ({ "data-testid": "collection-row", "data-name": collection.name })}
          columns={[
            ["Collection", (collection) => <a href={href(["data", collection.name])}>{collection.name}</a>],
            ["Documents", (collection) => num(collection.documents), "num"],
            [
              "Rules",
              (collection) =>
                OPERATIONS.filter((op) => collection.config?.rules?.[op]).join(", ") || (
                  <span class="muted">none (admin and functions only)</span>
                ),
            ],
            ["Indexes", (collection) => (collection.config?.indexes ?? []).join(", ") || <span class="muted">none</span>],
          ]}
        />
      )}
      <form class="toolbar" onSubmit={open}>
        <Field id="open-collection" label="Open or create a collection">
          <div class="joined">
            <input
              id="open-collection"
              type="text"
              value={name}
              spellcheck={false}
              placeholder="notes"
              onInput={(event) => setName(event.currentTarget.value)}
            />
            <button type="submit">Open</button>
          </div>
        </Field>
      </form>
    </>
  );
}
