/** Sections of a page as links (each has its own URL), the current one marked. */
export function Tabs({ label, items, current }) {
  return (
    <nav class="tabs" aria-label={label}>
      <ul>
        {items.map((item) => (
          <li key={item.id}>
            <a href={item.href} aria-current={item.id === current ? "page" : undefined} data-testid={`tab-${item.id}`}>
              {item.label}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}
