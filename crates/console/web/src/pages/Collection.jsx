import { useEffect, useState } from "preact/hooks";
import { api, query, seg } from "../api.js";
import { confirmAction } from "../components/Confirm.jsx";
import { Field, Section } from "../components/Layout.jsx";
import { PageHeader } from "../components/PageHeader.jsx";
import { Empty, Status } from "../components/Status.jsx";
import { Table } from "../components/Table.jsx";
import { num, relative, when } from "../format.js";
import { useAction, useResource } from "../hooks.js";
import { href, navigate } from "../router.js";

const PAGE_SIZE = 50;

/** What a collection without a config starts from: every document private to its owner. */
const TEMPLATE = {
  rules: {
    list: "auth != null && doc.owner == auth.uid",
    get: "auth != null && doc.owner == auth.uid",
    create: "auth != null",
    update: "auth != null && doc.owner == auth.uid",
    delete: "auth != null && doc.owner == auth.uid",
  },
  indexes: [],
};

/** A collection: its rules and config, and its documents. */
export function Collection({ name }) {
  // From the listing: asking for an unconfigured collection by name answers 404. It also
  // holds the document count, so a document change reloads it.
  const list = useResource((signal) => api("/collections", { signal }), []);
  return (
    <>
      <PageHeader title={name} label={`${name} (collection)`}>
        <a class="button" href={href(["data"])}>
          All collections
        </a>
      </PageHeader>
      <ConfigEditor name={name} list={list} />
      <Documents name={name} onChanged={list.reload} />
    </>
  );
}

function ConfigEditor({ name, list }) {
  const entry = list.data?.find((collection) => collection.name === name);
  const [text, setText] = useState(null);
  const save = useAction();

  useEffect(() => {
    if (list.data !== undefined && text === null) setText(JSON.stringify(entry?.config ?? TEMPLATE, null, 2));
  }, [list.data]);

  const submit = async (event) => {
    event.preventDefault();
    try {
      JSON.parse(text);
    } catch (error) {
      save.setOutcome({ message: "", error: new Error(`The config is not valid JSON: ${error.message}`) });
      return;
    }
    const saved = await save.run(
      () => api(`/collections/${seg(name)}`, { method: "PUT", body: text, headers: { "content-type": "application/json" } }),
      "Saved: the new rules apply to the next request.",
    );
    if (saved) {
      setText(JSON.stringify(saved.config, null, 2));
      list.reload();
    }
  };

  const remove = async () => {
    const sure = await confirmAction({
      title: `Delete collection ${name}?`,
      body: "Its config, indexes, documents and files are removed. This cannot be undone.",
      confirm: "Delete collection",
    });
    if (!sure) return;
    const done = await save.run(() => api(`/collections/${seg(name)}`, { method: "DELETE" }));
    if (done) navigate(href(["data"]));
  };

  return (
    <Section id="config" title="Rules and config">
      <Status error={list.error} />
      {/* Shown once its text is set: typing into an editor the first load then
          overwrote would save the old config. */}
      {list.data !== undefined && text !== null && (
        <form class="stack" onSubmit={submit} data-testid="config-form">
          <p class="muted">
            {entry
              ? `${num(entry.documents)} documents.`
              : "This collection has no config yet: only the admin and functions can use it. Below is a starting point."}
          </p>
          <Field
            id="config-text"
            label="Config (JSON: rules in CEL, indexes, files)"
            hint={
              <>
                Rules see <code>auth</code>, <code>doc</code> and <code>data</code>; a missing rule denies users. Every problem is
                reported with its line and column.
              </>
            }
          >
            <textarea
              id="config-text"
              class="code"
              rows={14}
              spellcheck={false}
              value={text ?? ""}
              onInput={(event) => setText(event.currentTarget.value)}
              aria-describedby="config-errors config-text-hint"
              aria-invalid={save.error ? "true" : undefined}
            />
          </Field>
          <div id="config-errors" class="validation" role="status" aria-live="polite" data-testid="config-errors">
            {save.error && <pre class="notice error">{save.error.message}</pre>}
            {save.message && <p class="notice ok">{save.message}</p>}
          </div>
          <div class="actions">
            <button type="submit" class="primary" disabled={save.busy}>
              Save config
            </button>
            {entry && (
              <button type="button" class="danger" onClick={remove} disabled={save.busy}>
                Delete collection
              </button>
            )}
          </div>
        </form>
      )}
    </Section>
  );
}

function Documents({ name, onChanged }) {
  const base = `/data/collections/${seg(name)}/docs`;
  // Cursors of the pages seen so far, to page back as well as forward.
  const [cursors, setCursors] = useState([""]);
  const [where, setWhere] = useState("");
  const [filter, setFilter] = useState("");
  const [selected, setSelected] = useState(null);
  const cursor = cursors.at(-1);
  const page = useResource(
    (signal) => api(`${base}${query({ limit: PAGE_SIZE, sort: "-created", cursor, where: filter })}`, { signal }),
    [cursor, filter],
  );
  const docs = page.data?.docs ?? [];

  const applyFilter = (event) => {
    event.preventDefault();
    setCursors([""]);
    setFilter(where.trim());
  };
  const changed = (id) => {
    setSelected(id);
    page.reload();
    onChanged();
  };

  return (
    <Section
      id="docs"
      title="Documents"
      actions={
        <button type="button" onClick={() => setSelected("")} data-testid="new-document">
          New document
        </button>
      }
    >
      <form class="toolbar" onSubmit={applyFilter} role="search">
        <Field id="doc-where" label="Filter (where)" class="grow">
          <div class="joined">
            <input
              id="doc-where"
              type="text"
              spellcheck={false}
              placeholder="done = false"
              value={where}
              onInput={(event) => setWhere(event.currentTarget.value)}
            />
            <button type="submit">Apply</button>
          </div>
        </Field>
      </form>
      <Status error={page.error} />
      {selected !== null && (
        <DocumentEditor key={selected} base={base} id={selected} onChanged={changed} onClose={() => setSelected(null)} />
      )}
      {page.data === undefined ? (
        page.loading && <p class="muted">Loading…</p>
      ) : docs.length === 0 ? (
        <Empty>{filter ? "No documents match." : "No documents on this page."}</Empty>
      ) : (
        <Table
          label="Documents"
          testid="documents-table"
          rows={docs}
          rowKey={(doc) => doc.id}
          attrs={() => ({ "data-testid": "document-row" })}
          columns={[
            [
              "Id",
              (doc) => (
                <button type="button" class="link" onClick={() => setSelected(doc.id)} aria-label={`Open document ${doc.id}`}>
                  <code>{doc.id}</code>
                </button>
              ),
            ],
            ["Owner", (doc) => doc.owner ?? <span class="muted">admin</span>],
            ["Updated", (doc) => <span title={when(doc.updated)}>{relative(doc.updated)}</span>],
            ["Version", (doc) => doc.version, "num"],
            ["Data", (doc) => <code>{preview(doc.data)}</code>, "preview"],
          ]}
        />
      )}
      <div class="pager">
        <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <button
          type="button"
          disabled={!page.data?.next_cursor}
          onClick={() => setCursors([...cursors, page.data.next_cursor])}
        >
          Next page
        </button>
      </div>
    </Section>
  );
}

function preview(data) {
  const text = JSON.stringify(data);
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

/** View and edit one document (`id` "" creates one); writes are conditional on the version read. */
function DocumentEditor({ base, id, onChanged, onClose }) {
  const creating = id === "";
  const doc = useResource((signal) => (creating ? Promise.resolve(null) : api(`${base}/${seg(id)}`, { signal })), []);
  const [text, setText] = useState(creating ? "{\n  \n}" : null);
  const action = useAction();

  useEffect(() => {
    if (doc.data) setText(JSON.stringify(doc.data.data, null, 2));
  }, [doc.data]);

  const parse = () => {
    try {
      const value = JSON.parse(text);
      if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("a document is a JSON object");
      return value;
    } catch (error) {
      action.setOutcome({ message: "", error: new Error(`Not a JSON object: ${error.message}`) });
      return null;
    }
  };

  const save = async (event) => {
    event.preventDefault();
    const data = parse();
    if (data === null) return;
    const written = await action.run(
      () =>
        creating
          ? api(base, { method: "POST", body: data })
          : api(`${base}/${seg(id)}`, { method: "PUT", body: data, headers: { "if-match": `"${doc.data.version}"` } }),
      (saved) => `Saved version ${saved.version} of ${saved.id}.`,
    );
    if (!written) return;
    // A new document opens as itself; an edited one reloads for its new version.
    if (!creating) doc.reload();
    onChanged(written.id);
  };

  const remove = async () => {
    const sure = await confirmAction({ title: `Delete document ${id}?`, body: "This cannot be undone.", confirm: "Delete document" });
    if (!sure) return;
    const done = await action.run(
      () => api(`${base}/${seg(id)}`, { method: "DELETE", headers: { "if-match": `"${doc.data.version}"` } }).then(() => true),
    );
    if (done) onChanged(null);
  };

  return (
    <form class="editor stack card" onSubmit={save} data-testid="document-editor">
      <h3>{creating ? "New document" : <>Document <code>{id}</code></>}</h3>
      <Status error={doc.error} />
      {doc.data && (
        <p class="muted">
          Owner {doc.data.owner ?? "none (written by the admin)"}, version {doc.data.version}, created {when(doc.data.created)}, updated {relative(doc.data.updated)}.
        </p>
      )}
      {text !== null && (
        <Field id="doc-text" label="Data (JSON object)">
          <textarea
            id="doc-text"
            class="code"
            rows={12}
            spellcheck={false}
            value={text}
            onInput={(event) => setText(event.currentTarget.value)}
            aria-describedby="doc-status"
            aria-invalid={action.error ? "true" : undefined}
          />
        </Field>
      )}
      <div id="doc-status">
        <Status error={action.error} message={action.message} />
      </div>
      <div class="actions">
        <button type="submit" class="primary" disabled={action.busy || text === null}>
          {creating ? "Create" : "Save"}
        </button>
        {!creating && (
          <button type="button" class="danger" onClick={remove} disabled={action.busy || !doc.data}>
            Delete
          </button>
        )}
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </form>
  );
}
