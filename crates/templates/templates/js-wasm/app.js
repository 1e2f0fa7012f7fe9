// {{name}}: an HTTP function in JavaScript, compiled to a WebAssembly component.
//
// `jco componentize` (see gureum.toml's [build]) packs this module, the modules it imports
// (greeting.js) and a JavaScript engine (SpiderMonkey, through ComponentizeJS) into
// {{name}}.wasm, a component of the `wasi:http/proxy` world (wit/world.wit). gureum calls
// it once per HTTP request to
//
// - /fn/{{name}}/... (the handler sees the path without the /fn/{{name}} prefix, which is
//   in the `x-forwarded-prefix` header), and
// - the `routes` of gureum.toml (the handler sees the path unchanged).
//
// The component speaks the Service Worker API: a `fetch` event listener gets a standard
// `Request` and answers a standard `Response`, as on Cloudflare Workers or Deno Deploy.
// `fetch()`, `URL`, `TextEncoder`, `crypto.randomUUID()`, timers and `console` work; Node.js
// modules (`node:fs`, `process`, ...) do not exist here.
//
// The module's top level runs once, when the component is built (its state is snapshotted
// into {{name}}.wasm); do per-request work in the handler. Every request gets a fresh
// instance (`reuse_instances = false` in gureum.toml), so module-level variables start
// from their build-time values each time: keep state in the platform, not in globals.
//
// console.log / console.error land in `gureum logs {{name}}`, tagged with the invocation id.

import { getEnvironment } from 'wasi:cli/environment@0.2.10';

import { greeting, nameFrom } from './greeting.js';

addEventListener('fetch', (event) => event.respondWith(handle(event.request)));

/**
 * Answers one request.
 *
 * `request` (a standard Request):
 * - `request.method`: "GET", "POST", ...
 * - `request.url`: the full URL, e.g. `http://127.0.0.1:8080/hello?name=Ada`;
 *   `new URL(request.url)` gives `.pathname` (`/` when called as /fn/{{name}}),
 *   `.search` and `.searchParams`
 * - `request.headers`: a Headers; `.get('accept')`, iterate for all (names lower-case).
 *   gureum adds `x-gureum-invocation-id` and, for functions with `auth` in gureum.toml,
 *   the caller's verified claims as JSON in `x-gureum-auth-claims`
 * - the body, read once: `await request.arrayBuffer()`, `.text()`, `.json()` (`.text()`
 *   throws on bytes that are not UTF-8)
 *
 * The returned Response (or a promise of one): `new Response(body, { status, headers })`,
 * body a string, Uint8Array, ReadableStream or null; status 200 unless given. A thrown
 * error (or rejected promise) answers 500 and the error with its stack is in
 * `gureum logs {{name}}`.
 *
 * @param {Request} request
 * @returns {Promise<Response>}
 */
async function handle(request) {
  const url = new URL(request.url);
  const body = new Uint8Array(await request.arrayBuffer());
  console.log(`${request.method} ${url.pathname}${url.search} (${body.length} bytes of body)`);

  return new Response(greeting(nameFrom(request.url)), {
    status: 200,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  });
}

/**
 * An environment variable of the function (read per request, never at the top level,
 * which runs at build time): the [env] of gureum.toml, and the platform's
 * `GUREUM_API` (the base URL of gureum's platform API) and `GUREUM_FUNCTION_TOKEN` (this
 * function's token). For example, documents through the platform API (granted in
 * gureum.toml: `[permissions]` with `data = ["notes:read"]`):
 *
 *   const res = await fetch(`${env('GUREUM_API')}/data/v1/collections/notes/docs`, {
 *     headers: { authorization: `Bearer ${env('GUREUM_FUNCTION_TOKEN')}` },
 *   });
 *
 * (WebSocket connections and channels are there too; key-value buckets are the
 * `wasi:keyvalue` imports, once added to wit/world.wit: see README.md). fetch() reaches $GUREUM_API and the hosts
 * in `allowed_outbound_hosts`.
 *
 * @param {string} name
 * @returns {string | undefined}
 */
function env(name) {
  return getEnvironment().find(([key]) => key === name)?.[1];
}
