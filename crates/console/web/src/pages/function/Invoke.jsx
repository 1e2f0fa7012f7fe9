import { useEffect, useRef, useState } from "preact/hooks";
import { api, seg } from "../../api.js";
import { InvocationFacts } from "../../components/InvocationFacts.jsx";
import { Field, Section } from "../../components/Layout.jsx";
import { LogLines } from "../../components/LogLines.jsx";
import { Status } from "../../components/Status.jsx";
import { TableWrap } from "../../components/Table.jsx";
import { ms } from "../../format.js";
import { pollLogs, pollRecord } from "../../invocation.js";
import { href } from "../../router.js";

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const BODYLESS = new Set(["GET", "HEAD"]);
/** Largest response body shown; the rest is cut. */
const SHOWN_BYTES = 256 * 1024;

/** `Name: value` lines as header pairs, or an error naming the bad line. */
function parseHeaders(text) {
  const headers = [];
  text.split("\n").forEach((line, index) => {
    if (!line.trim()) return;
    const match = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*:\s?(.*)$/.exec(line);
    if (!match) throw new Error(`Header line ${index + 1} is not "Name: value": ${line}`);
    headers.push([match[1], match[2].trim()]);
  });
  return headers;
}

/** The control API path that passes `path` (with its query) to the function. */
function invokePath(name, path) {
  const text = path.trim() || "/";
  // The browser resolves `.` and `..` (also encoded) before sending: `/../..` would reach
  // other control API routes with the admin token instead of the function.
  const pathOnly = text.split(/[?#]/)[0];
  if (pathOnly.split("/").some((part) => /^(\.|%2e){1,2}$/i.test(part))) {
    throw new Error(`The path ${text} has a "." or ".." segment; give the path the function should see, without them.`);
  }
  const absolute = text.startsWith("/") ? text : `/${text}`;
  // `/` and `/?q` go to `/invoke` itself; the wildcard route needs a non-empty rest.
  const rest = absolute === "/" || absolute.startsWith("/?") ? absolute.slice(1) : absolute;
  return `/functions/${seg(name)}/invoke${rest}`;
}

function prettyBody(text, type) {
  if (!type.includes("json")) return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** Sends one request to the function through the control API and shows what came back. */
export function InvokeForm({ name }) {
  const [method, setMethod] = useState("GET");
  const [path, setPath] = useState("/");
  const [headerText, setHeaderText] = useState("");
  const [body, setBody] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [result, setResult] = useState(null);
  const [trace, setTrace] = useState(null);
  const pending = useRef(null);

  useEffect(() => () => pending.current?.abort(), []);

  const send = async (event) => {
    event.preventDefault();
    pending.current?.abort();
    const controller = new AbortController();
    pending.current = controller;
    setError(null);
    setResult(null);
    setTrace(null);
    let headers;
    try {
      headers = parseHeaders(headerText);
    } catch (problem) {
      setError(problem);
      return;
    }
    setBusy(true);
    try {
      const started = performance.now();
      // The function's own answer, errors included: they are the result, not a failure.
      // A header the browser may not send (Host, Content-Length…) is dropped by fetch.
      const response = await api(invokePath(name, path), {
        method,
        headers: Object.fromEntries(headers.filter(([key]) => key.toLowerCase() !== "authorization")),
        body: BODYLESS.has(method) ? undefined : body,
        signal: controller.signal,
        raw: true,
        passErrors: true,
      });
      const text = await response.text();
      const elapsed = performance.now() - started;
      const type = response.headers.get("content-type") ?? "";
      const id = response.headers.get("x-gureum-invocation-id");
      const shown = text.length > SHOWN_BYTES ? text.slice(0, SHOWN_BYTES) : text;
      setResult({
        status: response.status,
        statusText: response.statusText,
        headers: [...response.headers.entries()],
        body: prettyBody(shown, type),
        cut: text.length > SHOWN_BYTES,
        elapsed,
        id,
        version: response.headers.get("x-gureum-version"),
        cold: response.headers.get("x-gureum-cold-start"),
      });
      if (id) {
        setTrace({ lines: null, record: undefined });
        // The server's clock bounds the record search; the browser's may be off.
        const serverNow = Date.parse(response.headers.get("date") ?? "") || Date.now();
        const [lines, record] = await Promise.all([
          pollLogs(name, id, { signal: controller.signal }),
          pollRecord(name, id, serverNow - 60_000, { signal: controller.signal }),
        ]);
        setTrace({ lines, record });
      }
    } catch (failure) {
      if (failure.name !== "AbortError") setError(failure);
    } finally {
      if (pending.current === controller) setBusy(false);
    }
  };

  return (
    <Section id="invoke" title="Test invoke">
      <form class="invoke-form stack" onSubmit={send} data-testid="invoke-form">
        <div class="row">
          <Field id="invoke-method" label="Method">
            <select id="invoke-method" value={method} onChange={(event) => setMethod(event.currentTarget.value)}>
              {METHODS.map((option) => (
                <option key={option} value={option}>
                  {option}
                </option>
              ))}
            </select>
          </Field>
          <Field
            id="invoke-path"
            label="Path and query"
            class="grow"
            hint={
              <>
                The function sees this path, as if called at <code>/fn/{name}</code>.
              </>
            }
          >
            <input
              id="invoke-path"
              type="text"
              value={path}
              spellcheck={false}
              onInput={(event) => setPath(event.currentTarget.value)}
              aria-describedby="invoke-path-hint"
            />
          </Field>
        </div>
        <Field
          id="invoke-headers"
          label="Headers"
          hint={
            <>
              One <code>Name: value</code> per line. Authorization carries the admin token and is not passed on.
            </>
          }
        >
          <textarea
            id="invoke-headers"
            rows={3}
            spellcheck={false}
            placeholder="content-type: application/json"
            value={headerText}
            onInput={(event) => setHeaderText(event.currentTarget.value)}
            aria-describedby="invoke-headers-hint"
          />
        </Field>
        <Field id="invoke-body" label="Body" hint={BODYLESS.has(method) ? `A ${method} request has no body.` : "Sent as typed."}>
          <textarea
            id="invoke-body"
            rows={5}
            spellcheck={false}
            value={body}
            disabled={BODYLESS.has(method)}
            onInput={(event) => setBody(event.currentTarget.value)}
            aria-describedby="invoke-body-hint"
          />
        </Field>
        <div>
          <button type="submit" class="primary" disabled={busy} data-testid="invoke-send">
            {busy && !result ? "Sending…" : "Send"}
          </button>
        </div>
      </form>
      <Status error={error} message={result ? `Answered ${result.status} in ${ms(result.elapsed)}.` : ""} />
      {result && (
        <div class="invoke-result" data-testid="invoke-result">
          <h3>Response</h3>
          <p class="response-line">
            <strong data-testid="invoke-status" class={result.status >= 400 ? "bad" : "good"}>
              {result.status} {result.statusText}
            </strong>{" "}
            in <span data-testid="invoke-time">{ms(result.elapsed)}</span> (measured in the browser)
            {result.version && <> · v{result.version}</>}
            {result.cold !== null && <> · {result.cold === "1" ? "cold start" : "warm"}</>}
          </p>
          {result.id && (
            <p>
              Invocation{" "}
              <a href={href(["functions", name, "invocations", result.id])} data-testid="invoke-id">
                <code>{result.id}</code>
              </a>
            </p>
          )}
          <details>
            <summary>Headers ({result.headers.length})</summary>
            <TableWrap label="Response headers">
              <table class="compact">
                <tbody>
                  {result.headers.map(([key, value], index) => (
                    <tr key={`${key}-${index}`}>
                      <th scope="row">{key}</th>
                      <td>{value}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          </details>
          <h4>Body</h4>
          <pre class="body" data-testid="invoke-body">
            {result.body}
          </pre>
          {result.cut && <p class="hint">Only the first {SHOWN_BYTES / 1024} KB are shown.</p>}
          {trace && (
            <div data-testid="invoke-logs">
              <h3>Logs of this invocation</h3>
              {trace.lines === null ? (
                <p class="muted">Waiting for log lines…</p>
              ) : trace.lines.length === 0 ? (
                <p class="muted">This invocation wrote no log lines.</p>
              ) : (
                <LogLines lines={trace.lines} linked={false} />
              )}
              {trace.record && (
                <>
                  <h3>Record</h3>
                  <InvocationFacts record={trace.record} />
                </>
              )}
            </div>
          )}
        </div>
      )}
    </Section>
  );
}
