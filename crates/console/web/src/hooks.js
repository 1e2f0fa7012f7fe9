import { useCallback, useEffect, useRef, useState } from "preact/hooks";

/**
 * Loads `load(signal)` now and whenever `deps` change; with `every` (ms) again on that
 * period while the tab is visible (a hidden tab polls nothing and catches up when shown).
 * Keeps the last data through a failed refresh, so a blip shows an error beside it.
 */
export function useResource(load, deps, { every = 0 } = {}) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const [nonce, setNonce] = useState(0);
  const latest = useRef(load);
  latest.current = load;
  // Data of other deps (another range, page or function) must not stand under new ones.
  const key = JSON.stringify(deps);
  const shownKey = useRef(key);

  useEffect(() => {
    if (shownKey.current !== key) {
      shownKey.current = key;
      setState({ data: undefined, error: null, loading: true });
    }
    const controller = new AbortController();
    let timer = 0;
    let running = false;
    let stopped = false;
    const run = async () => {
      clearTimeout(timer);
      if (running) return;
      running = true;
      try {
        const data = await latest.current(controller.signal);
        if (!stopped) setState({ data, error: null, loading: false });
      } catch (error) {
        if (!stopped && error.name !== "AbortError") setState((old) => ({ ...old, error, loading: false }));
      } finally {
        running = false;
      }
      if (!stopped && every > 0 && !document.hidden) timer = setTimeout(run, every);
    };
    const wake = () => {
      if (!document.hidden) run();
    };
    run();
    if (every > 0) document.addEventListener("visibilitychange", wake);
    return () => {
      stopped = true;
      controller.abort();
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", wake);
    };
    // `deps` are the caller's; the loader itself may be a fresh closure on each render.
  }, [...deps, nonce, every]);

  const reload = useCallback(() => setNonce((n) => n + 1), []);
  return { ...state, reload };
}

const RANGE_KEY = "gureum.range";
export const RANGES = ["15m", "1h", "6h", "24h", "7d"];

/** The chart window shared by the overview and function pages, kept for the session. */
export function useRange() {
  const [range, setRange] = useState(() => {
    const saved = sessionStorage.getItem(RANGE_KEY);
    return RANGES.includes(saved) ? saved : "1h";
  });
  const choose = useCallback((next) => {
    sessionStorage.setItem(RANGE_KEY, next);
    setRange(next);
  }, []);
  return [range, choose];
}

/** Runs an action that changes something, with `busy` while it runs and its outcome. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState({ message: "", error: null });
  const run = useCallback(async (action, success) => {
    setBusy(true);
    setOutcome({ message: "", error: null });
    try {
      const result = await action();
      setOutcome({ message: typeof success === "function" ? success(result) : (success ?? ""), error: null });
      return result;
    } catch (error) {
      setOutcome({ message: "", error });
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, ...outcome, run, setOutcome };
}
