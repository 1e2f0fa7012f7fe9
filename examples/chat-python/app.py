"""chat-python: the gureum WebSocket chat as an ordinary AWS Lambda function.

This is the Python version of ``examples/chat`` (a wasm component). It speaks
the same protocol and serves the same page. It is written the way a chat
runs on API Gateway WebSocket APIs, with boto3's ``apigatewaymanagementapi``
client, so the AWS code can be moved to gureum unchanged.

The function gets two kinds of events:

* **WebSocket events** from the connections gureum holds on ``/ws/chat-python``:
  ``requestContext.routeKey`` is ``$connect``, ``$default`` (one message,
  ``body`` = the client's text frame) or ``$disconnect``, and
  ``requestContext.connectionId`` names the connection. A ``$default`` answer
  ``{"statusCode": 200, "body": ...}`` is sent back to that client as a frame.
* **HTTP events** (API Gateway HTTP API payload v2.0, with ``rawPath`` and
  ``requestContext.http``): every GET answers the chat page, ``index.html``,
  which ``cargo xtask build-fixtures`` copies here from ``examples/chat``.

The function keeps no state of its own. Processes come and go, and several
may run at once, so room membership lives in the platform's channels. A
member of room ``R`` is a member of channel ``room:R`` with meta
``{"nick": ..., "room": R}``. The platform API is at ``GUREUM_API``:

* boto3 (SigV4, with the credentials gureum puts in the environment:
  ``AWS_ACCESS_KEY_ID`` = the function token, ``AWS_SECRET_ACCESS_KEY``)
  sends frames with ``post_to_connection``.
* urllib with ``Authorization: Bearer $GUREUM_FUNCTION_TOKEN`` does what boto3
  has no call for: join, leave and list a channel's members, and read a
  connection's ``channels``. That field is a gureum extension to
  GetConnection, and boto3 drops fields its model does not know.

A broadcast lists the room's members and posts to each one. A member that
has just gone (``GoneException``) is skipped.

Protocol (JSON text frames):

Page → function:

* ``{"action": "join", "room": "lobby", "nick": "ann"}``: leave the current
  room (the others there get ``left``), enter ``room``, tell the others
  (``joined``) and answer ``welcome``.
* ``{"action": "say", "text": "hi"}``: broadcast ``message`` to the whole
  room, sender included; no reply.

Function → page:

* ``{"type": "welcome", "room", "nick", "members": [nicks, sorted]}``
* ``{"type": "joined", "room", "nick"}`` (to the others)
* ``{"type": "left", "room", "nick"}`` (to the others)
* ``{"type": "message", "room", "nick", "text"}``
* ``{"type": "error", "message"}``: the reply to a frame that could not be
  acted on.
"""

import json
import os
import re
import sys
import unicodedata
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# Channel name prefix of a room. It keeps rooms apart from any other channel
# the function might use later, and rooms cannot contain ":".
ROOM_CHANNEL = "room:"

# Longest nick and room name, in characters.
MAX_NAME = 32

# Longest message text, in characters: a chat line, not a file transfer.
# It stays far below the gateway's 128 KiB message limit even when
# JSON-escaped.
MAX_TEXT = 2000

# Connection ids are URL-safe base64 (22 characters today). The bound only
# keeps a garbage id from becoming a huge URL.
CONNECTION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Room names end up in URL paths as "room:NAME". Keeping them to these
# characters means they never need escaping, and they are always valid
# channel names.
ROOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,%d}" % MAX_NAME)

# Timeout for each platform API call, in seconds. The API runs on the same
# server, so anything slower than this is a failure, not a slow network.
API_TIMEOUT = 10

PLATFORM_FAILURE = "the chat service failed; try again"


class ClientFailure(Exception):
    """A frame the function cannot act on. The message goes to the client as is."""


class PlatformFailure(Exception):
    """The platform API failed. The detail goes to the logs; the client gets a
    generic error."""


def _load_page():
    """Reads the chat page and points it at this function's socket.

    The page opens ``/ws/X`` when it is served under ``/fn/X``. Under any
    other path it opens ``/ws/chat``, the wasm example. Served at
    ``/chat-python``, it would then talk to the wrong function, so the
    default is swapped for this function's name. If the page changes and the
    text is not found, a warning is logged and the page is served unchanged:
    it still works under ``/fn/chat-python``.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "index.html")
    with open(path, encoding="utf-8") as f:
        page = f.read()
    name = os.environ.get("GUREUM_FUNCTION_NAME") or os.environ.get(
        "AWS_LAMBDA_FUNCTION_NAME", "chat-python"
    )
    pattern = re.compile(r'(decodeURIComponent\(match\[1\]\)\s*:\s*)"chat"')
    # The name goes in as a JSON string, so it is also a valid JS string literal.
    page, found = pattern.subn(lambda m: m.group(1) + json.dumps(name), page, count=1)
    if not found:
        print("warning: index.html: default socket name not found; "
              "the page may connect to /ws/chat", file=sys.stderr)
    return page


# Loaded once per process: a warm process serves many requests, and the page
# only changes with a new deploy.
PAGE = _load_page()

# Created on first use, then reused while the process stays warm (as on
# Lambda). Its HTTP connections stay open between events.
_management = None


def _management_client():
    """The boto3 API Gateway management client, aimed at gureum's platform API."""
    global _management
    if _management is None:
        _management = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=os.environ["GUREUM_API"],
            # gureum ignores the region (the signature is not checked), but
            # botocore refuses to build a client without one. It reads
            # AWS_DEFAULT_REGION, which gureum sets; us-east-1 covers running
            # elsewhere.
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            config=Config(
                # No retries. A failed send means that member is gone or too
                # slow (the gateway closes slow consumers anyway), and
                # botocore's backoff would hold up the whole room's broadcast.
                retries={"total_max_attempts": 1},
                connect_timeout=API_TIMEOUT,
                read_timeout=API_TIMEOUT,
            ),
        )
    return _management


def handler(event, context):
    """The Lambda entry point (``app.handler``): routes HTTP and WebSocket events."""
    request_context = (event or {}).get("requestContext") or {}
    # API Gateway HTTP API events have "http" in their request context;
    # WebSocket events have "eventType" instead. Both have a routeKey, so
    # that cannot tell them apart.
    if "http" in request_context:
        return http_request(request_context["http"].get("method", "GET"))
    if "eventType" in request_context:
        return websocket_event(event, request_context)
    return {"statusCode": 400, "body": "not an HTTP or WebSocket event\n"}


def http_request(method):
    """Any GET or HEAD answers the chat page."""
    if method not in ("GET", "HEAD"):
        return {
            "statusCode": 405,
            "headers": {"allow": "GET, HEAD", "content-type": "text/plain; charset=utf-8"},
            "body": "the chat page answers GET\n",
        }
    return {
        "statusCode": 200,
        "headers": {
            "content-type": "text/html; charset=utf-8",
            # The page ships inside the function, so a new version means a
            # new deploy. Browsers should revalidate instead of keeping a
            # stale copy.
            "cache-control": "no-cache",
        },
        "body": PAGE if method == "GET" else "",
    }


def websocket_event(event, request_context):
    route_key = request_context.get("routeKey")
    connection_id = request_context.get("connectionId") or ""
    if not CONNECTION_ID.fullmatch(connection_id):
        return {"statusCode": 400, "body": "missing or invalid connection id"}

    if route_key == "$connect":
        # Anyone may connect; a nick is chosen with "join".
        return {"statusCode": 200}

    if route_key == "$default":
        # The answer is always 200. Its body is what reaches the client, and
        # a readable error is more useful than a status the client never sees.
        try:
            reply = on_message(connection_id, event)
        except ClientFailure as failure:
            reply = {"type": "error", "message": str(failure)}
        except PlatformFailure as failure:
            print("connection %s: %s" % (connection_id, failure), file=sys.stderr)
            reply = {"type": "error", "message": PLATFORM_FAILURE}
        if reply is None:
            return {"statusCode": 200}
        return {"statusCode": 200, "body": json.dumps(reply)}

    if route_key == "$disconnect":
        # The socket is already gone, so nobody can read an answer. Failures
        # go to the function's logs.
        try:
            on_disconnect(connection_id)
        except PlatformFailure as failure:
            print("connection %s: %s" % (connection_id, failure), file=sys.stderr)
        return {"statusCode": 200}

    return {"statusCode": 400, "body": "unknown route key %r" % route_key}


def on_message(connection_id, event):
    """``$default``: one frame from the client. Returns the reply, or None for none."""
    if event.get("isBase64Encoded"):
        raise ClientFailure("send JSON text frames, not binary ones")
    try:
        message = json.loads(event.get("body") or "")
    except ValueError as e:
        raise ClientFailure("not valid JSON: %s" % e)
    if not isinstance(message, dict):
        raise ClientFailure('expected a JSON object with an "action"')
    action = message.get("action")
    if action == "join":
        nick = valid_nick(message.get("nick"))
        room = valid_room(message.get("room"))
        return join(connection_id, nick, room)
    if action == "say":
        say(connection_id, message.get("text"))
        return None
    if isinstance(action, str):
        raise ClientFailure('unknown action %s (expected "join" or "say")'
                            % json.dumps(action[:MAX_NAME]))
    raise ClientFailure('missing "action" (expected "join" or "say")')


def join(connection_id, nick, room):
    """Leaves the current room, enters ``room`` as ``nick``, answers ``welcome``."""
    channel = ROOM_CHANNEL + room
    already_there = False
    for seat in seats(connection_id):
        if seat["channel"] == channel:
            if seat["nick"] == nick:
                already_there = True
            else:
                # Same room, new nick. Joining again below replaces the
                # membership's meta, but the room should still see the old
                # nick leave before the new one arrives.
                broadcast(channel, left(seat), exclude=connection_id)
            continue
        leave_channel(seat["channel"], connection_id)
        broadcast(seat["channel"], left(seat), exclude=connection_id)

    join_channel(channel, connection_id, {"nick": nick, "room": room})
    members = channel_members(channel)
    if not already_there:
        # The joiner is left out on purpose. A broadcast is delivered while
        # this invocation runs, before the reply, so the joiner would see its
        # own arrival before its welcome.
        send_all(members, {"type": "joined", "room": room, "nick": nick},
                 exclude=connection_id)
    nicks = sorted(
        (m["meta"]["nick"] for m in members if isinstance(m["meta"].get("nick"), str)),
        key=str.lower,
    )
    return {"type": "welcome", "room": room, "nick": nick, "members": nicks}


def say(connection_id, text):
    """Broadcasts ``text`` to the sender's room. The sender's own copy is its
    confirmation."""
    if not isinstance(text, str):
        raise ClientFailure('"text" must be a string')
    if not text.strip():
        raise ClientFailure("empty message")
    if len(text) > MAX_TEXT:
        raise ClientFailure("message too long (at most %d characters)" % MAX_TEXT)
    rooms = seats(connection_id)
    if not rooms:
        raise ClientFailure("join a room first")
    seat = rooms[0]
    broadcast(seat["channel"], {"type": "message", "room": seat["room"],
                                "nick": seat["nick"], "text": text})


def on_disconnect(connection_id):
    """``$disconnect``: tells each room the connection was in that its nick left.

    The memberships are still readable here, because the platform removes
    them only after this invocation returns.
    """
    first_failure = None
    for seat in seats(connection_id):
        # If one room fails, the other rooms must still hear about it.
        try:
            broadcast(seat["channel"], left(seat), exclude=connection_id)
        except PlatformFailure as failure:
            first_failure = first_failure or failure
    if first_failure:
        raise first_failure


def left(seat):
    return {"type": "left", "room": seat["room"], "nick": seat["nick"]}


def valid_nick(value):
    """1–32 characters after trimming, with no control characters (they would
    garble the page's message list)."""
    nick = value.strip() if isinstance(value, str) else ""
    if not 1 <= len(nick) <= MAX_NAME or any(unicodedata.category(c) == "Cc" for c in nick):
        raise ClientFailure('"nick" must be 1 to %d characters, without control characters'
                            % MAX_NAME)
    return nick


def valid_room(value):
    if not isinstance(value, str) or not ROOM_NAME.fullmatch(value):
        raise ClientFailure('"room" must be 1 to %d characters of A-Z a-z 0-9 _ -' % MAX_NAME)
    return value


# --- Sending frames: boto3, exactly as on API Gateway -----------------------

def broadcast(channel, message, exclude=None):
    """Sends ``message`` to every member of ``channel`` except ``exclude``."""
    send_all(channel_members(channel), message, exclude)


def send_all(members, message, exclude=None):
    """Posts ``message`` to each member, one at a time. A member that is
    gone is skipped. Its membership disappears when its ``$disconnect``
    has run, so there is nothing to clean up here."""
    data = json.dumps(message).encode()
    client = _management_client()
    for member in members:
        connection_id = member["connectionId"]
        if connection_id == exclude:
            continue
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=data)
        except client.exceptions.GoneException:
            continue
        except ClientError as e:
            # botocore names the exception after the x-amzn-ErrorType header
            # (or the __type/code body field). A bare 410 without one of
            # those still means gone.
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 410:
                continue
            # One member failing (for example a full send queue) must not
            # keep the message from the rest of the room.
            print("post_to_connection %s: %s" % (connection_id, e), file=sys.stderr)
        except BotoCoreError as e:
            raise PlatformFailure("post_to_connection %s: %s" % (connection_id, e))


# --- Channels and connection info: gureum's own API, over urllib ------------

def seats(connection_id):
    """The rooms the connection is in (normally at most one).

    They come from the ``channels`` of ``GET /@connections/{id}``. boto3's
    ``get_connection`` would drop that field. A connection that is already
    gone is in no room.
    """
    status, info = api("GET", "/@connections/" + connection_id, missing_ok=True)
    if status in (404, 410):
        return []
    found = []
    for entry in (info or {}).get("channels") or []:
        channel = entry.get("channel") if isinstance(entry, dict) else None
        if not isinstance(channel, str) or not channel.startswith(ROOM_CHANNEL):
            continue
        meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
        nick = meta.get("nick")
        # The room comes from the channel name, because the meta could be
        # anything an older version of this function wrote.
        found.append({
            "channel": channel,
            "room": channel[len(ROOM_CHANNEL):],
            "nick": nick if isinstance(nick, str) else "someone",
        })
    return found


def join_channel(channel, connection_id, meta):
    api("POST", "/channels/%s/members/%s" % (channel, connection_id), meta)


def leave_channel(channel, connection_id):
    api("DELETE", "/channels/%s/members/%s" % (channel, connection_id))


def channel_members(channel):
    """``[{"connectionId": ..., "meta": {...}}, ...]`` of ``channel``."""
    _, listing = api("GET", "/channels/%s/members" % channel)
    members = []
    for member in (listing or {}).get("members") or []:
        if isinstance(member, dict) and isinstance(member.get("connectionId"), str):
            meta = member.get("meta")
            members.append({"connectionId": member["connectionId"],
                            "meta": meta if isinstance(meta, dict) else {}})
    return members


def api(method, path, body=None, missing_ok=False):
    """One call to the platform API, authenticated with the function token.

    ``path`` holds only validated connection ids and room channels, so it
    needs no escaping. Returns (status, parsed JSON or None). Raises
    PlatformFailure on any failure, except a 404 or 410 when ``missing_ok``.
    """
    url = os.environ.get("GUREUM_API", "").rstrip("/")
    token = os.environ.get("GUREUM_FUNCTION_TOKEN", "")
    if not url or not token:
        raise PlatformFailure("GUREUM_API or GUREUM_FUNCTION_TOKEN is not set")
    request = urllib.request.Request(url + path, method=method)
    request.add_header("authorization", "Bearer " + token)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, data, timeout=API_TIMEOUT) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        if missing_ok and e.code in (404, 410):
            return e.code, None
        detail = e.read()[:200].decode("utf-8", "replace")
        raise PlatformFailure("%s %s: %d: %s" % (method, path, e.code, detail))
    except (urllib.error.URLError, OSError) as e:
        raise PlatformFailure("%s %s: %s" % (method, path, e))
    if not raw:
        return status, None
    try:
        return status, json.loads(raw)
    except ValueError as e:
        raise PlatformFailure("%s %s: answer is not JSON: %s" % (method, path, e))
