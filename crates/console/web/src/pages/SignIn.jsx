import { useState } from "preact/hooks";
import { api } from "../api.js";
import { Field } from "../components/Layout.jsx";
import { PageHeader } from "../components/PageHeader.jsx";
import { Status } from "../components/Status.jsx";

/** The admin token, checked against the API before it is kept for this tab's session. */
export function SignIn({ notice, onSignedIn }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event) => {
    event.preventDefault();
    const value = token.trim();
    if (!value) {
      setError(new Error("Paste the admin token first."));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api("/functions", { token: value });
      onSignedIn(value);
    } catch (failure) {
      setError(
        failure.status === 401
          ? new Error("The server refused this token: it is not the admin token of this gureum. Copy it again from DATA_DIR/admin.token.")
          : failure,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="signin">
      <PageHeader title="Sign in" />
      <p>The console uses the control API with the admin token. It is kept only in this tab until you sign out or close it.</p>
      <form onSubmit={submit} data-testid="signin-form" class="stack">
        <Field
          id="token"
          label="Admin token"
          hint={
            <>
              Print it on the server with <code>cat DATA_DIR/admin.token</code> (by default <code>cat .gureum/admin.token</code>).
            </>
          }
        >
          <input
            id="token"
            name="token"
            type="password"
            autocomplete="off"
            spellcheck={false}
            value={token}
            onInput={(event) => setToken(event.currentTarget.value)}
            aria-describedby="token-hint"
            aria-invalid={error ? "true" : undefined}
          />
        </Field>
        <div>
          <button type="submit" class="primary" disabled={busy} data-testid="signin-submit">
            {busy ? "Signing in…" : "Sign in"}
          </button>
        </div>
      </form>
      <Status error={error} message={notice} />
    </section>
  );
}
