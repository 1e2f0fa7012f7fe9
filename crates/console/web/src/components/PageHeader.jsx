import { useEffect } from "preact/hooks";

/**
 * A page's `<h1>` (focused by the app on navigation, hence tabindex -1) with its actions,
 * and the document title.
 */
export function PageHeader({ title, label = title, children }) {
  useEffect(() => {
    document.title = `${label} · gureum console`;
  }, [label]);
  return (
    <div class="page-head">
      <h1 tabindex="-1">{title}</h1>
      {children && <div class="actions">{children}</div>}
    </div>
  );
}
