"""End-to-end test fixture for ``runtime = "lambda"``: a Python function run
by the official AWS Lambda runtime interface client (``awslambdaric``),
handling raw API Gateway HTTP API (payload v2.0) events. Same paths and JSON
shapes as the Rust ``lambda-testbed``:

* ``/echo`` -- 200 JSON ``{"method", "path", "query", "headers", "cookie", "body_base64"}``.
* ``/binary`` -- 200 ``application/octet-stream``, the request body verbatim (base64).
* ``/status?code=N`` -- status N, body ``status N``, ``x-testbed: yes``, cookies ``a=1``, ``b=2``.
* ``/error`` -- raises ``ValueError("boom")``.
* ``/crash`` -- the process exits at once with code 3.
* ``/sleep?ms=N`` -- 200 ``slept N`` after N ms.
* ``/env`` -- 200 JSON object of the environment.
* ``/pid`` -- 200 JSON ``{"pid": N, "stream": S}`` (its pid, and its log stream name,
  which names the instance: in the sandbox every function's pid is the same).
* ``/log?n=N`` -- ``line i`` to stdout, ``err i`` to stderr for i in 0..N; 200 ``logged N``.
* ``/hog?mb=N`` -- allocates and touches N MiB, held until the next invocation; 200 ``held N``.
* ``/steal?api=HOST:PORT`` -- tries ``GET /2018-06-01/runtime/invocation/next`` itself
  (1 s timeout); 200 JSON ``{"status": N|null, "error": "..."|null}``.
* ``/json`` -- returns the plain dict ``{"hello": "world"}`` (no statusCode).
* ``/context`` -- 200 JSON of the Lambda context object's fields.
* an EventBridge event (``source: aws.events``, cron) -- prints ``eventbridge <event JSON>``,
  returns ``{"ok": true}``.
* ``/authorizer`` -- 200 JSON of ``requestContext.authorizer`` (null when absent).
* ``/kv-incr?key=K`` -- ``POST $GUREUM_API/kv/v1/buckets/py/keys/K/increment`` with the
  function token; 200 with that answer's JSON.
* anything else -- 200 text ``lambda-python``.
"""

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs

# Memory held by /hog until the next invocation starts.
_held = None


def _text(body, status=200, content_type="text/plain"):
    return {"statusCode": status, "headers": {"content-type": content_type}, "body": body}


def _json(value):
    return _text(json.dumps(value), content_type="application/json")


def _query(event, name, default=""):
    values = parse_qs(event.get("rawQueryString", ""), keep_blank_values=True).get(name)
    return values[0] if values else default


def _num(event, name):
    try:
        return int(_query(event, name, "0"))
    except ValueError:
        return 0


def _body(event):
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8")


def _steal(api):
    url = "http://%s/2018-06-01/runtime/invocation/next" % api
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return {"status": response.status, "error": None}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "error": None}
    except Exception as e:  # timeouts, refused connections, bad addresses
        return {"status": None, "error": str(e) or type(e).__name__}


def handler(event, context):
    global _held
    _held = None

    if event.get("source") == "aws.events":
        print("eventbridge " + json.dumps(event, sort_keys=True), flush=True)
        return {"ok": True}
    path = event.get("rawPath", "/")
    if path == "/echo":
        return _json(
            {
                "method": event["requestContext"]["http"]["method"],
                "path": path,
                "query": event.get("rawQueryString", ""),
                "headers": event.get("headers", {}),
                "cookie": "; ".join(event.get("cookies", [])),
                "body_base64": base64.b64encode(_body(event)).decode("ascii"),
            }
        )
    if path == "/authorizer":
        return _json(event["requestContext"].get("authorizer"))
    if path == "/kv-incr":
        key = _query(event, "key", "hits")
        request = urllib.request.Request(
            os.environ["GUREUM_API"] + "/kv/v1/buckets/py/keys/" + key + "/increment",
            data=b'{"delta": 1}',
            method="POST",
            headers={"authorization": "Bearer " + os.environ["GUREUM_FUNCTION_TOKEN"]},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return _json(json.loads(answer.read()))
    if path == "/binary":
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": base64.b64encode(_body(event)).decode("ascii"),
            "isBase64Encoded": True,
        }
    if path == "/status":
        code = _num(event, "code")
        return {
            "statusCode": code,
            "headers": {"content-type": "text/plain", "x-testbed": "yes"},
            "cookies": ["a=1", "b=2"],
            "body": "status %d" % code,
        }
    if path == "/error":
        raise ValueError("boom")
    if path == "/crash":
        os._exit(3)
    if path == "/sleep":
        ms = _num(event, "ms")
        time.sleep(ms / 1000)
        return _text("slept %d" % ms)
    if path == "/env":
        return _json(dict(os.environ))
    if path == "/pid":
        return _json(
            {"pid": os.getpid(), "stream": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")}
        )
    if path == "/log":
        n = _num(event, "n")
        for i in range(n):
            print("line %d" % i, file=sys.stdout)
            print("err %d" % i, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        return _text("logged %d" % n)
    if path == "/hog":
        mb = _num(event, "mb")
        memory = bytearray(mb << 20)
        for i in range(0, len(memory), 4096):
            memory[i] = 1
        _held = memory
        return _text("held %d" % mb)
    if path == "/steal":
        return _json(_steal(_query(event, "api")))
    if path == "/json":
        return {"hello": "world"}
    if path == "/context":
        return _json(
            {
                "aws_request_id": context.aws_request_id,
                "function_name": context.function_name,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "invoked_function_arn": context.invoked_function_arn,
                "remaining_time_in_millis": context.get_remaining_time_in_millis(),
            }
        )
    return _text("lambda-python")
