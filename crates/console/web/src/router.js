// Hash routing: the admin listener serves only `/`, so every page lives after the `#`:
// `#/functions/NAME?tab=versions`.
import { useEffect, useState } from "preact/hooks";

/** `{segments, params, path}` of a hash like `#/functions/hello?tab=versions`. */
function parseHash(hash) {
  const text = hash.replace(/^#/, "");
  const mark = text.indexOf("?");
  const pathText = mark < 0 ? text : text.slice(0, mark);
  const segments = pathText
    .split("/")
    .filter(Boolean)
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    });
  const params = new URLSearchParams(mark < 0 ? "" : text.slice(mark + 1));
  return { segments, params, path: `/${segments.join("/")}` };
}

/** The href of a console page: `href(["functions", name], {tab: "versions"})`. */
export function href(segments = [], params = {}) {
  const path = segments.map((part) => encodeURIComponent(part)).join("/");
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return `#/${path}${text ? `?${text}` : ""}`;
}

export function navigate(target) {
  location.hash = target.replace(/^#/, "");
}

/** The current route; re-renders on every hash change. */
export function useRoute() {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseHash(location.hash));
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}
