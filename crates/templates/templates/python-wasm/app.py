"""{{name}}: an HTTP function in Python, compiled to a WebAssembly component.

`componentize-py` (see gureum.toml's [build]) packs this module, the modules it imports
(greeting.py, the standard library) and a CPython interpreter into {{name}}.wasm, a
component of the `wasi:http/proxy` world (wit/world.wit). gureum calls
``IncomingHandler.handle`` once per HTTP request to

- ``/fn/{{name}}/...`` (the handler sees the path without the ``/fn/{{name}}`` prefix,
  which is in the ``x-forwarded-prefix`` header), and
- the ``routes`` of gureum.toml (the handler sees the path unchanged).

A warm instance serves later requests too (``reuse_instances`` in gureum.toml), so module
globals live on between requests of one instance, as on AWS Lambda; never rely on it.

``print()`` (stdout) and stderr land in ``gureum logs {{name}}``, one line per line,
tagged with the invocation id.

Calling the platform: ``os.environ["GUREUM_API"]`` is the base URL of gureum's platform
API and ``os.environ["GUREUM_FUNCTION_TOKEN"]`` this function's token, sent as
``Authorization: Bearer <token>``: documents under ``$GUREUM_API/data/v1/...`` (the
collections ``[permissions] data`` grants in gureum.toml), WebSocket
connections and channels. Key-value buckets are the ``wasi:keyvalue`` imports, once
added to wit/world.wit (see README.md). Outbound HTTP goes through ``wasi:http/outgoing-handler``
(``wit_world.imports.outgoing_handler``), to the hosts in ``allowed_outbound_hosts``.
The generated API (``wit_world``) can be written out for your editor with
``componentize-py -d wit -w function bindings .``.
"""

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingBody,
    IncomingRequest,
    Method_Other,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

from greeting import greeting, name_from


class IncomingHandler(exports.IncomingHandler):
    """The export gureum calls: `wasi:http/incoming-handler`."""

    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        """Answers one request.

        ``request`` (the HTTP request):
          - ``request.method()``: ``Method_Get()``, ``Method_Post()``, ... or
            ``Method_Other(value)``; ``method_name`` below turns it into "GET", "POST", ...
          - ``request.path_with_query()``: the path and query as sent, e.g.
            ``/hello?name=Ada`` (``/`` when called as ``/fn/{{name}}``)
          - ``request.headers()``: a ``Fields``; ``.get("accept")`` lists the values of a
            header as bytes, ``.entries()`` all (name, value) pairs, names lower-case.
            gureum adds ``x-gureum-invocation-id`` and, for functions with ``auth`` in
            gureum.toml, the caller's verified claims as JSON in ``x-gureum-auth-claims``
          - ``request.scheme()``, ``request.authority()``: how the client reached gureum
          - ``request.consume()``: the body, read once (``read_body`` below)

        ``response_out`` takes the response, once: ``ResponseOutparam.set`` sends its
        status and headers; the body streams after them:
          - ``OutgoingResponse(headers)``: status 200 unless ``set_status_code(404)``
          - headers: ``Fields.from_list([(name, value_bytes), ...])``
          - body: ``response.body()``, written with ``write_body`` below and closed with
            ``OutgoingBody.finish`` (a body left unfinished is cut off)

        An exception fails the invocation: the client gets a 502 and the traceback is in
        ``gureum logs {{name}}``.
        """
        path = request.path_with_query() or "/"
        body = read_body(request)
        print(f"{method_name(request.method())} {path} ({len(body)} bytes of body)")

        text = greeting(name_from(path))

        response = OutgoingResponse(
            Fields.from_list([("content-type", b"text/plain; charset=utf-8")])
        )
        response.set_status_code(200)
        response_body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        write_body(response_body, text.encode("utf-8"))
        OutgoingBody.finish(response_body, None)


def method_name(method) -> str:
    """"GET", "POST", ... for a ``wit_world.imports.types.Method`` value."""
    if isinstance(method, Method_Other):
        return method.value
    return type(method).__name__.removeprefix("Method_").upper()


def read_body(request: IncomingRequest) -> bytes:
    """The whole request body (limited by gureum's body size limit)."""
    incoming = request.consume()
    chunks = []
    with incoming.stream() as stream:
        while True:
            try:
                chunks.append(stream.blocking_read(65536))
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    break  # the end of the body
                raise
    # Dropping the trailers we do not read.
    with IncomingBody.finish(incoming):
        pass
    return b"".join(chunks)


def write_body(body: OutgoingBody, data: bytes) -> None:
    """Writes ``data`` to a response body (4096 bytes per write is what WASI allows)."""
    with body.write() as stream:
        for start in range(0, len(data), 4096):
            stream.blocking_write_and_flush(data[start : start + 4096])
