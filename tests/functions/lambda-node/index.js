// End-to-end test fixture for `runtime = "lambda"`: a Node.js function run by
// the official AWS Lambda runtime interface client (npm `aws-lambda-ric`),
// handling raw API Gateway HTTP API (payload v2.0) events. A subset of the
// Rust `lambda-testbed` paths, with the same JSON shapes:
//
// * `/echo` -- 200 JSON {"method", "path", "query", "headers", "cookie", "body_base64"}.
// * `/binary` -- 200 application/octet-stream, the request body verbatim (base64 both ways).
// * `/status?code=N` -- status N, body `status N`, header `x-testbed: yes`, cookies a=1, b=2.
// * `/error` -- throws a `TestbedError` (errorType `TestbedError`, message `boom`).
// * `/crash` -- the process exits at once with code 3.
// * `/sleep?ms=N` -- 200 `slept N` after N ms.
// * `/pid` -- 200 JSON {"pid": N, "stream": S} (its pid, and its log stream name, which
//   names the instance: in the sandbox every function's pid is the same).
// * anything else -- 200 text `lambda-node`.
"use strict";

class TestbedError extends Error {
  constructor(message) {
    super(message);
    this.name = "TestbedError";
  }
}

function text(body) {
  return { statusCode: 200, headers: { "content-type": "text/plain" }, body };
}

function json(value) {
  return {
    statusCode: 200,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(value),
  };
}

exports.handler = async (event) => {
  const path = event.rawPath || "/";
  const query = new URLSearchParams(event.rawQueryString || "");
  switch (path) {
    case "/echo": {
      const body = Buffer.from(event.body || "", event.isBase64Encoded ? "base64" : "utf8");
      return json({
        method: event.requestContext.http.method,
        path,
        query: event.rawQueryString || "",
        headers: event.headers || {},
        cookie: (event.cookies || []).join("; "),
        body_base64: body.toString("base64"),
      });
    }
    case "/binary": {
      const body = Buffer.from(event.body || "", event.isBase64Encoded ? "base64" : "utf8");
      return {
        statusCode: 200,
        headers: { "content-type": "application/octet-stream" },
        body: body.toString("base64"),
        isBase64Encoded: true,
      };
    }
    case "/status": {
      const code = parseInt(query.get("code") || "200", 10) || 200;
      return {
        statusCode: code,
        headers: { "content-type": "text/plain", "x-testbed": "yes" },
        cookies: ["a=1", "b=2"],
        body: `status ${code}`,
      };
    }
    case "/error":
      throw new TestbedError("boom");
    case "/crash":
      process.exit(3);
      break;
    case "/sleep": {
      const ms = parseInt(query.get("ms") || "0", 10) || 0;
      await new Promise((resolve) => setTimeout(resolve, ms));
      return text(`slept ${ms}`);
    }
    case "/pid":
      return json({
        pid: process.pid,
        stream: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      });
    default:
      return text("lambda-node");
  }
};
