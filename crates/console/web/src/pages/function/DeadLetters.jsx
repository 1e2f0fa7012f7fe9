import { useState } from "preact/hooks";
import { api, seg } from "../../api.js";
import { confirmAction } from "../../components/Confirm.jsx";
import { Facts } from "../../components/Facts.jsx";
import { Loaded, Section } from "../../components/Layout.jsx";
import { Empty } from "../../components/Status.jsx";
import { num, relative, when } from "../../format.js";
import { useResource } from "../../hooks.js";
import { href } from "../../router.js";

/** Asynchronous events that failed every attempt: inspect, queue again or drop. */
export function DeadLetters({ name, onDone, onFailed }) {
  const base = `/functions/${seg(name)}/dead-letters`;
  const list = useResource((signal) => api(base, { signal }), [], { every: 10_000 });
  const [busy, setBusy] = useState(false);

  const act = async (action, message) => {
    setBusy(true);
    try {
      const answer = await action();
      onDone(message(answer?.count ?? 0));
    } catch (error) {
      onFailed(error);
    } finally {
      setBusy(false);
      list.reload();
    }
  };
  const redrive = (id) =>
    act(
      () => api(`${base}/${seg(id)}/redrive`, { method: "POST" }),
      () => `Dead letter ${id} is queued again.`,
    );
  const remove = async (id) => {
    if (!(await confirmAction({ title: "Delete this dead letter?", body: `Event ${id} is dropped for good.` }))) return;
    act(
      () => api(`${base}/${seg(id)}`, { method: "DELETE" }),
      () => `Dead letter ${id} deleted.`,
    );
  };
  const redriveAll = () =>
    act(
      () => api(`${base}/redrive`, { method: "POST" }),
      (count) => `${num(count)} dead letters queued again.`,
    );
  const removeAll = async () => {
    const sure = await confirmAction({
      title: `Delete every dead letter of ${name}?`,
      body: "The failed events are dropped for good.",
      confirm: "Delete all",
    });
    if (!sure) return;
    act(
      () => api(base, { method: "DELETE" }),
      (count) => `${num(count)} dead letters deleted.`,
    );
  };

  const letters = list.data ?? [];
  return (
    <Section
      id="dead"
      title="Dead letters"
      actions={
        <>
          <button type="button" onClick={redriveAll} disabled={busy || letters.length === 0} data-testid="redrive-all">
            Redrive all
          </button>
          <button type="button" class="danger" onClick={removeAll} disabled={busy || letters.length === 0}>
            Delete all
          </button>
        </>
      }
    >
      <Loaded resource={list}>
        {() =>
          letters.length === 0 ? (
            <Empty>No dead letters: every asynchronous event of {name} succeeded or is still being retried.</Empty>
          ) : (
        <ul class="cards">
          {letters.map((letter) => {
            const last = letter.errors.at(-1);
            return (
              <li key={letter.id} class="card" data-testid="dead-letter">
                <div class="card-head">
                  <code>
                    {letter.method} {letter.path}
                  </code>
                  <span class="muted">
                    failed <span title={when(letter.failed)}>{relative(letter.failed)}</span> after {letter.attempts} attempt
                    {letter.attempts === 1 ? "" : "s"} ({letter.reason.replaceAll("_", " ")})
                  </span>
                </div>
                {last && (
                  <p class="bad">
                    Last error: {last.status} {last.error}
                  </p>
                )}
                <details>
                  <summary>Request and attempts</summary>
                  <Facts
                    items={[
                      ["Invocation", <a href={href(["functions", name, "invocations", letter.id])}>{letter.id}</a>],
                      ["Trigger", letter.trigger + (letter.source ? ` (${letter.source})` : "")],
                      ["Version", letter.version === null ? "live" : `v${letter.version}`],
                      ["Enqueued", when(letter.enqueued)],
                      ["Failed", when(letter.failed)],
                    ]}
                  />
                  <h4>Headers</h4>
                  <pre>{letter.headers.map(([key, value]) => `${key}: ${value}`).join("\n") || "(none)"}</pre>
                  <h4>Body{letter.body_base64 ? " (base64)" : ""}</h4>
                  <pre>{letter.body || "(empty)"}</pre>
                  <h4>Attempts</h4>
                  <ol>
                    {letter.errors.map((attempt) => (
                      <li key={attempt.attempt}>
                        {when(attempt.at)}: {attempt.status} {attempt.error}
                      </li>
                    ))}
                  </ol>
                </details>
                <div class="actions">
                  <button type="button" onClick={() => redrive(letter.id)} disabled={busy} aria-label={`Redrive ${letter.id}`}>
                    Redrive
                  </button>
                  <button
                    type="button"
                    class="danger"
                    onClick={() => remove(letter.id)}
                    disabled={busy}
                    aria-label={`Delete dead letter ${letter.id}`}
                  >
                    Delete
                  </button>
                </div>
              </li>
            );
          })}
        </ul>
          )
        }
      </Loaded>
    </Section>
  );
}
