"""{{name}}: an AWS Lambda function in Python, run by gureum.

gureum starts ``python3 -m awslambdaric app.handler`` (the official runtime interface
client, the same one AWS uses in its container images) and serves it the Lambda Runtime
API: every HTTP request to ``/fn/{{name}}/...`` (or to the routes in gureum.toml) arrives
as an API Gateway HTTP API (payload v2.0) event, and the dict ``handler`` returns becomes
the HTTP response. The same file runs unchanged on AWS Lambda.
"""


def greeting(name):
    """``Hello, NAME!`` with a newline; ``world`` when the name is missing or blank."""
    name = (name or "").strip()
    return "Hello, %s!\n" % (name or "world")


def handler(event, context):
    """Answers one request.

    ``event`` (the request, API Gateway HTTP API v2.0):
      - ``event["requestContext"]["http"]["method"]``: GET, POST, ...
      - ``event["rawPath"]``: the path, e.g. ``/fn/{{name}}/hello``;
        ``event["rawQueryString"]``: the query as sent, e.g. ``name=Ada``
      - ``event.get("queryStringParameters")``: the decoded query as a dict (absent when
        there is none), e.g. ``{"name": "Ada"}``
      - ``event["headers"]``: the client's headers, lower-case names; gureum adds
        ``x-gureum-invocation-id`` (also in every log line)
      - ``event.get("body")`` with ``event["isBase64Encoded"]``: the body, base64 when
        binary
      - ``event["requestContext"].get("authorizer")``: the caller's verified claims, for
        functions with ``auth`` in gureum.toml

    ``context``: ``context.aws_request_id`` (the invocation id), ``context.function_name``,
    ``context.get_remaining_time_in_millis()``.

    The return value (the response): ``statusCode`` (default 200), ``headers`` (a dict),
    ``body`` (a string; set ``isBase64Encoded`` for binary). A plain string or dict is sent
    as the body, like on AWS. An exception becomes a 502 and its traceback is logged.

    ``print()`` output lands in ``gureum logs {{name}}``. The platform API (key-value,
    documents, WebSocket connections) is at ``os.environ["GUREUM_API"]`` with the header
    ``Authorization: Bearer <os.environ["GUREUM_FUNCTION_TOKEN"]>``.
    """
    query = event.get("queryStringParameters") or {}
    return {
        "statusCode": 200,
        "headers": {"content-type": "text/plain; charset=utf-8"},
        "body": greeting(query.get("name")),
    }

