/** Label/value pairs; `null` entries are left out. */
export function Facts({ items, class: extra = "" }) {
  return (
    <dl class={`facts ${extra}`}>
      {items.filter(Boolean).map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
