import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { api, query, seg, sleep, streamEvents } from "../api.js";
import { Field } from "../components/Layout.jsx";
import { LogLines } from "../components/LogLines.jsx";
import { PageHeader } from "../components/PageHeader.jsx";
import { Empty, Status } from "../components/Status.jsx";
import { num } from "../format.js";
import { useResource } from "../hooks.js";
import { href, navigate } from "../router.js";

/** Lines kept in memory; older ones are dropped from the top. */
const MAX_LINES = 2000;
/** How far back a new tail starts. */
const BACKLOG_MS = 10 * 60_000;
const RETRY_MS = 2000;
const STREAMS = ["stdout", "stderr", "platform"];

const STATE_TEXT = {
  idle: "Pick a function",
  connecting: "Connecting…",
  live: "Live",
  paused: "Paused",
  reconnecting: "Reconnecting…",
  stopped: "Stopped",
};

/** A function's log lines as they are written, filtered on the server by `grep`. */
export function Logs({ function: chosen, grep }) {
  const functions = useResource((signal) => api("/functions", { signal }), [], { every: 30_000 });
  const name = chosen || functions.data?.[0]?.name || "";
  const [search, setSearch] = useState(grep);
  const [shown, setShown] = useState({ stdout: true, stderr: true, platform: true });
  const [paused, setPaused] = useState(false);
  const [lines, setLines] = useState([]);
  const [state, setState] = useState("connecting");
  const [error, setError] = useState(null);
  const lastSeq = useRef(null);

  // Another function or search starts a new tail from the recent past.
  useEffect(() => {
    lastSeq.current = null;
    setLines([]);
    setSearch(grep);
  }, [name, grep]);

  useEffect(() => {
    if (!name || paused) {
      setState(paused ? "paused" : "idle");
      return undefined;
    }
    const controller = new AbortController();
    const { signal } = controller;
    // Lines are applied once per frame: a backlog arrives as hundreds of events at once.
    let batch = [];
    let frame = 0;
    const flush = () => {
      frame = 0;
      const added = batch;
      batch = [];
      setLines((old) => {
        const next = old.concat(added);
        return next.length > MAX_LINES ? next.slice(next.length - MAX_LINES) : next;
      });
    };
    (async () => {
      setState("connecting");
      while (!signal.aborted) {
        const params =
          lastSeq.current === null
            ? { since_ms: Date.now() - BACKLOG_MS, grep, follow: true }
            : { after: lastSeq.current, grep, follow: true };
        try {
          await streamEvents(`/functions/${seg(name)}/logs${query(params)}`, {
            signal,
            onOpen: () => {
              setState("live");
              setError(null);
            },
            onEvent: (event) => {
              const line = JSON.parse(event.data);
              lastSeq.current = line.seq;
              batch.push(line);
              frame ||= requestAnimationFrame(flush);
            },
          });
        } catch (failure) {
          if (failure.name === "AbortError" || signal.aborted) return;
          setError(failure);
          // A refused request will be refused again; a dropped connection is retried.
          if (failure.status >= 400 && failure.status < 500) {
            setState("stopped");
            return;
          }
        }
        if (signal.aborted) return;
        setState("reconnecting");
        await sleep(RETRY_MS, signal).catch(() => {});
      }
    })();
    return () => {
      controller.abort();
      cancelAnimationFrame(frame);
      // `lastSeq` already counts them: a resume asks for lines after it.
      if (batch.length > 0) flush();
    };
  }, [name, grep, paused]);

  // Follow the newest line unless the reader scrolled up to look at older ones.
  const box = useRef(null);
  const [following, setFollowing] = useState(true);
  const visible = lines.filter((line) => shown[line.stream] ?? true);
  useLayoutEffect(() => {
    if (following && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [visible.length, following]);
  const onScroll = () => {
    const element = box.current;
    setFollowing(element.scrollTop + element.clientHeight >= element.scrollHeight - 8);
  };

  const applySearch = (event) => {
    event.preventDefault();
    navigate(href(["logs"], { function: name, grep: search.trim() }));
  };

  return (
    <>
      <PageHeader title="Logs" label={name ? `Logs of ${name}` : "Logs"}>
        {name && (
          <a class="button" href={href(["functions", name])}>
            Function {name}
          </a>
        )}
      </PageHeader>
      <form class="toolbar log-controls" onSubmit={applySearch} role="search">
        <Field id="log-function" label="Function">
          <select
            id="log-function"
            value={name}
            onChange={(event) => navigate(href(["logs"], { function: event.currentTarget.value, grep }))}
            data-testid="log-function"
          >
            {!functions.data?.some((fn) => fn.name === name) && name && <option value={name}>{name}</option>}
            {(functions.data ?? []).map((fn) => (
              <option key={fn.name} value={fn.name}>
                {fn.name}
              </option>
            ))}
          </select>
        </Field>
        <Field id="log-search" label="Search (case-sensitive)" class="grow">
          <div class="joined">
            <input
              id="log-search"
              type="search"
              value={search}
              onInput={(event) => setSearch(event.currentTarget.value)}
              data-testid="log-search"
            />
            <button type="submit">Search</button>
          </div>
        </Field>
        <fieldset class="checks">
          <legend>Streams</legend>
          {STREAMS.map((stream) => (
            <label key={stream}>
              <input
                type="checkbox"
                checked={shown[stream]}
                onChange={(event) => setShown({ ...shown, [stream]: event.currentTarget.checked })}
              />{" "}
              {stream}
            </label>
          ))}
        </fieldset>
        <div class="actions">
          <button type="button" onClick={() => setPaused(!paused)} aria-pressed={paused ? "true" : "false"} data-testid="log-pause">
            {paused ? "Resume" : "Pause"}
          </button>
          <button type="button" onClick={() => setLines([])}>
            Clear
          </button>
        </div>
      </form>
      <p class="tail-state">
        <span class={`dot ${state}`} aria-hidden="true" />
        <span data-testid="log-state" data-state={state}>
          {STATE_TEXT[state]}
        </span>
        {grep && (
          <>
            {" "}
            · lines containing <code>{grep}</code>
          </>
        )}{" "}
        · {num(visible.length)} of {num(lines.length)} lines shown
      </p>
      <Status error={error ?? functions.error} />
      {functions.data?.length === 0 && !chosen ? (
        <Empty>No function is deployed, so there are no logs yet.</Empty>
      ) : (
        <div class="tail-wrap">
          <div
            ref={box}
            class="log-tail"
            data-testid="log-tail"
            role="region"
            aria-label={`Log lines of ${name}`}
            tabindex="0"
            onScroll={onScroll}
          >
            {visible.length === 0 ? (
              <p class="muted">{state === "live" || state === "connecting" ? "Waiting for log lines…" : "No lines."}</p>
            ) : (
              <LogLines lines={visible} />
            )}
          </div>
          {!following && (
            <button type="button" class="jump" onClick={() => setFollowing(true)}>
              Jump to the newest line
            </button>
          )}
        </div>
      )}
    </>
  );
}
