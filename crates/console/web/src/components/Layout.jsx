import { Status } from "./Status.jsx";

/** A labelled form control with an optional hint (the control names `${id}-hint` itself). */
export function Field({ id, label, hint, class: extra = "", children }) {
  return (
    <div class={`field ${extra}`}>
      <label for={id}>{label}</label>
      {children}
      {hint && (
        <p id={`${id}-hint`} class="hint">
          {hint}
        </p>
      )}
    </div>
  );
}

/** A page section under an `<h2>`, with actions beside the heading. */
export function Section({ id, title, actions, children, ...attrs }) {
  const heading = <h2 id={`${id}-title`}>{title}</h2>;
  return (
    <section aria-labelledby={`${id}-title`} {...attrs}>
      {actions ? (
        <div class="section-head">
          {heading}
          <div class="actions">{actions}</div>
        </div>
      ) : (
        heading
      )}
      {children}
    </section>
  );
}

/** A resource's error and loading note, then `children(data)` once it has data. */
export function Loaded({ resource, children }) {
  return (
    <>
      <Status error={resource.error} />
      {resource.data === undefined ? resource.loading && <p class="muted">Loading…</p> : children(resource.data)}
    </>
  );
}
