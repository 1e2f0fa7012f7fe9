// The function's logic, kept free of WebAssembly so that plain Node.js can test it
// (`node --test`, see greeting.test.js). app.js imports it into the component.

/**
 * The `name` query parameter of a request URL (absolute, or a path such as `/?name=Ada`),
 * decoded (`Ada%20L` and `Ada+L` are `Ada L`); `""` when there is none.
 * @param {string | undefined} url
 * @returns {string}
 */
export function nameFrom(url) {
  return new URL(url ?? '/', 'http://localhost').searchParams.get('name') ?? '';
}

/**
 * `Hello, NAME!` with a newline; `world` when the name is missing or blank.
 * @param {string | null | undefined} name
 * @returns {string}
 */
export function greeting(name) {
  const trimmed = (name ?? '').trim();
  return `Hello, ${trimmed || 'world'}!\n`;
}
