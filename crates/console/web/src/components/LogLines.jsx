import { clockMs } from "../format.js";
import { href } from "../router.js";

/** Log lines, oldest first; each links to its invocation unless `linked` is false. */
export function LogLines({ lines, linked = true, testid = "log-lines" }) {
  return (
    <ol class="log-lines" data-testid={testid}>
      {lines.map((line) => (
        <li key={line.seq} class={`log-line ${line.stream}`} data-testid="log-line" data-stream={line.stream}>
          <time datetime={new Date(line.ts_ms).toISOString()}>{clockMs(line.ts_ms)}</time>
          {line.version > 0 && <span class="version">v{line.version}</span>}
          <span class="stream">{line.stream}</span>
          {/* Platform lines about no one invocation (quota warnings, WebSocket events) have no id. */}
          {linked && line.invocation_id && (
            <a
              class="invocation"
              href={href(["functions", line.function, "invocations", line.invocation_id])}
              title={`Invocation ${line.invocation_id}`}
              aria-label={`Invocation ${line.invocation_id}`}
              data-testid="log-invocation"
            >
              {line.invocation_id.slice(0, 8)}
            </a>
          )}
          <span class="message">{line.message}</span>
        </li>
      ))}
    </ol>
  );
}
