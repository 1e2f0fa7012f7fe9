import { useState } from "preact/hooks";
import { api, query, seg } from "../api.js";
import { Field } from "../components/Layout.jsx";
import { PageHeader } from "../components/PageHeader.jsx";
import { Empty, Status } from "../components/Status.jsx";
import { Table } from "../components/Table.jsx";
import { relative, when } from "../format.js";
import { useAction, useResource } from "../hooks.js";

const PAGE_SIZE = 100;

/** The auth service's users, by email; disabling one signs it out everywhere. */
export function Users() {
  // Emails each page starts after, to page back as well as forward.
  const [afters, setAfters] = useState([""]);
  const [search, setSearch] = useState("");
  // The search that is applied: the start of an email (server-side `q`).
  const [q, setQ] = useState("");
  const [found, setFound] = useState(null);
  const after = afters.at(-1);
  const page = useResource((signal) => api(`/users${query({ after, q, limit: PAGE_SIZE })}`, { signal }), [after, q]);
  const action = useAction();

  const find = async (event) => {
    event.preventDefault();
    const wanted = search.trim();
    setFound(null);
    setAfters([""]);
    setQ(wanted);
    // Without an @ it may be a user id: look that up too (a miss is no error).
    if (wanted && !wanted.includes("@")) {
      const user = await api(`/users/${seg(wanted)}`, { passErrors: true }).catch(() => null);
      if (user?.id === wanted) setFound(user);
    }
  };

  const setDisabled = async (user, disabled) => {
    const updated = await action.run(
      () => api(`/users/${seg(user.id)}/${disabled ? "disable" : "enable"}`, { method: "POST" }),
      (changed) => `${changed.email} is ${changed.disabled ? "disabled: its sessions are revoked" : "enabled again"}.`,
    );
    if (updated) {
      if (found?.id === updated.id) setFound(updated);
      page.reload();
    }
  };

  const users = found ? [found] : (page.data?.users ?? []);
  return (
    <>
      <PageHeader title="Users" />
      <form class="toolbar" onSubmit={find} role="search">
        <Field id="user-search" label="Search by the start of an email, or an id" class="grow">
          <div class="joined">
            <input id="user-search" type="search" value={search} onInput={(event) => setSearch(event.currentTarget.value)} />
            <button type="submit">Find</button>
          </div>
        </Field>
        {(found || q) && (
          <button
            type="button"
            onClick={() => {
              setFound(null);
              setSearch("");
              setQ("");
              setAfters([""]);
            }}
          >
            Show all
          </button>
        )}
      </form>
      <Status error={action.error ?? page.error} message={action.message} />
      {page.data === undefined && !found ? (
        page.loading && <p class="muted">Loading…</p>
      ) : users.length === 0 ? (
        <Empty>
          {q ? (
            <>No user's email starts with “{q}”.</>
          ) : (
            <>
              No users yet. People sign up through <code>/auth/v1/signup</code> on the public listener.
            </>
          )}
        </Empty>
      ) : (
        <Table
          label="Users"
          testid="users-table"
          rows={users}
          rowKey={(user) => user.id}
          attrs={() => ({ "data-testid": "user-row" })}
          columns={[
            ["Email", (user) => user.email],
            ["Id", (user) => <code>{user.id}</code>],
            ["Created", (user) => <span title={when(user.created)}>{relative(user.created)}</span>],
            ["Last sign-in", (user) => (user.last_sign_in ? <span title={when(user.last_sign_in)}>{relative(user.last_sign_in)}</span> : "never")],
            ["State", (user) => (user.disabled ? <span class="badge bad">disabled</span> : <span class="badge">active</span>)],
            [
              <span class="visually-hidden">Actions</span>,
              (user) => (
                <button
                  type="button"
                  class={user.disabled ? "small" : "small danger"}
                  disabled={action.busy}
                  onClick={() => setDisabled(user, !user.disabled)}
                  aria-label={`${user.disabled ? "Enable" : "Disable"} ${user.email}`}
                >
                  {user.disabled ? "Enable" : "Disable"}
                </button>
              ),
            ],
          ]}
        />
      )}
      {!found && (
        <div class="pager">
          <button type="button" disabled={afters.length === 1} onClick={() => setAfters(afters.slice(0, -1))}>
            Previous page
          </button>
          <button type="button" disabled={!page.data?.next} onClick={() => setAfters([...afters, page.data.next])}>
            Next page
          </button>
        </div>
      )}
    </>
  );
}
