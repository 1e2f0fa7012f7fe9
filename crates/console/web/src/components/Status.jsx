/**
 * A page's status line: always in the DOM, so screen readers announce what appears in it
 * (a message after an action, or the server's error verbatim).
 */
export function Status({ error, message, class: extra = "" }) {
  return (
    <div class={`status ${extra}`} role="status" aria-live="polite">
      {error ? <ErrorNote error={error} /> : message ? <p class="notice ok">{message}</p> : null}
    </div>
  );
}

function ErrorNote({ error }) {
  return (
    <div class="notice error" data-testid="error">
      <p>{error.message ?? String(error)}</p>
      {error.problems?.length > 0 && (
        <ul>
          {error.problems.map((problem) => (
            <li key={problem.field + problem.message}>
              <code>{problem.field}</code>: {problem.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** What to do when a list is empty. */
export function Empty({ children }) {
  return <div class="empty">{children}</div>;
}
