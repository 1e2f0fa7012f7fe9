//! `chat`: a multi-room WebSocket chat on gureum's WebSocket gateway.
//!
//! One `wasi:http/incoming-handler` component (WASI 0.2) that serves both
//! halves of the chat:
//!
//! * **Any GET** (`/chat`, `/chat/…`, `/fn/chat`, …) answers the chat page,
//!   `index.html` embedded at build time. The page opens
//!   `ws(s)://HOST/ws/NAME`, NAME being `X` when the page is under `/fn/X`
//!   and `chat` (this function's name) otherwise.
//! * **`POST /.gureum/websocket`** is how the gateway hands this function the
//!   events of the connections it holds on `/ws/chat`: header
//!   `x-gureum-route-key` is `$connect`, `$default` (a message) or
//!   `$disconnect`, header `x-gureum-connection-id` names the connection, and
//!   the body is an API Gateway–shaped event whose `body` is the client's
//!   text frame.
//!
//! The function keeps no state of its own: instances may be recycled at any
//! time and several may run at once, so who is in which room lives in the
//! platform's channels. A member of room `R` is a member of channel `room:R`
//! whose meta is `{"nick": …, "room": R}`; it is read back with
//! `GET $GUREUM_API/@connections/{id}` (its `channels`) and
//! `GET $GUREUM_API/channels/room:R/members`. Everything goes through the
//! platform API at `GUREUM_API` with `Authorization: Bearer
//! $GUREUM_FUNCTION_TOKEN`.
//!
//! # Protocol (JSON text frames)
//!
//! Page → function (`$default`):
//!
//! * `{"action":"join","room":"lobby","nick":"ann"}` — leave the current room
//!   (if any; the others there get `left`), enter `room`, tell the others
//!   (`joined`) and answer `welcome`. Joining the room one is in under the
//!   same nick only answers `welcome` again; under another nick the room sees
//!   the old nick leave and the new one join.
//! * `{"action":"say","text":"hi"}` — broadcast `message` to the whole room,
//!   sender included (that echo is the sender's confirmation); no reply.
//!
//! Function → page:
//!
//! * `{"type":"welcome","room":"lobby","nick":"ann","members":["ann","bob"]}` —
//!   the reply to `join`; `members` are the nicks in the room, sorted, the
//!   joiner included.
//! * `{"type":"joined","room":"lobby","nick":"bob"}` — someone else entered.
//!   Not sent to the joiner, who gets `welcome` instead: a broadcast is
//!   delivered during the invocation, before the reply, so the joiner would
//!   otherwise see its own arrival before its welcome.
//! * `{"type":"left","room":"lobby","nick":"bob"}` — someone left the room
//!   (joined another one, or disconnected).
//! * `{"type":"message","room":"lobby","nick":"ann","text":"hi"}`.
//! * `{"type":"error","message":"join a room first"}` — the reply to a frame
//!   that could not be acted on (not JSON, unknown action, bad nick or room,
//!   `say` before `join`, binary frame, platform API failure).
//!
//! A nick is 1–32 characters without control characters, surrounding
//! whitespace trimmed; a room 1–32 characters of `[A-Za-z0-9_-]`; a text 1 to
//! 2000 characters, not only whitespace.

use serde_json::{Value, json};
use wstd::http::body::Body;
use wstd::http::{Client, Error, Method, Request, Response, StatusCode};

/// The chat page, served on every GET.
const PAGE: &str = include_str!("../index.html");

/// The path the gateway POSTs WebSocket events to.
const EVENT_PATH: &str = "/.gureum/websocket";

/// Channel name prefix of a room. The prefix keeps rooms apart from any
/// other channel the function might use later, and `:` cannot appear in a
/// room name, so `room:` + room is unambiguous.
const ROOM_CHANNEL: &str = "room:";

/// Longest nick and room name, in characters.
const MAX_NAME: usize = 32;

/// Longest message text, in characters: a chat line, not a file transfer.
/// Well under the gateway's 128 KiB frame limit even when JSON-escaped.
const MAX_TEXT: usize = 2000;

/// Longest connection id accepted. Ids are 22 characters today; the bound
/// only keeps a garbage header from becoming a huge URL.
const MAX_CONNECTION_ID: usize = 64;

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let method = request.method().clone();
    if request.uri().path() == EVENT_PATH {
        if method != Method::POST {
            return plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "websocket events are POSTed\n",
            );
        }
        return event(request).await;
    }
    match method {
        Method::GET | Method::HEAD => Ok(Response::builder()
            .header("content-type", "text/html; charset=utf-8")
            // The page is embedded in the component: a new version is a new
            // deploy, so revalidate rather than keep a stale copy.
            .header("cache-control", "no-cache")
            .body(Body::from(PAGE))?),
        _ => Ok(Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header("allow", "GET, HEAD")
            .header("content-type", "text/plain; charset=utf-8")
            .body(Body::from("the chat page answers GET\n"))?),
    }
}

/// One WebSocket event from the gateway.
async fn event(mut request: Request<Body>) -> Result<Response<Body>, Error> {
    let route_key = header(&request, "x-gureum-route-key");
    let connection_id = header(&request, "x-gureum-connection-id");
    let raw = request.body_mut().contents().await?;
    // An unparsable event still has its route key and id in the headers, so
    // a `$disconnect` is handled even then; the message body is just absent.
    let event: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let context = |field: &str| {
        event
            .get("requestContext")
            .and_then(|c| c.get(field))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let route_key = route_key
        .or_else(|| context("routeKey"))
        .unwrap_or_default();
    let Some(id) = connection_id
        .or_else(|| context("connectionId"))
        .filter(|id| valid_connection_id(id))
    else {
        return plain(
            StatusCode::BAD_REQUEST,
            "missing or invalid connection id\n",
        );
    };

    match route_key.as_str() {
        // Anyone may connect; a nick is chosen with `join`.
        "$connect" => empty(StatusCode::OK),
        "$default" => {
            let reply = match Api::from_env() {
                Ok(api) => on_message(&api, &id, &event).await,
                Err(failure) => Err(failure),
            };
            // Always 200: the reply body is what reaches the client, and an
            // error the client can read is more useful than a status it
            // never sees.
            match reply {
                Ok(None) => empty(StatusCode::OK),
                Ok(Some(reply)) => json_reply(&reply),
                Err(failure) => json_reply(&failure.reply(&id)),
            }
        }
        "$disconnect" => {
            // Nothing to answer to: the socket is gone. Failures go to the
            // function's logs.
            let done = match Api::from_env() {
                Ok(api) => on_disconnect(&api, &id).await,
                Err(failure) => Err(failure),
            };
            if let Err(failure) = done {
                failure.log(&id);
            }
            empty(StatusCode::OK)
        }
        other => plain(
            StatusCode::BAD_REQUEST,
            &format!("unknown route key {other:?}\n"),
        ),
    }
}

/// `$default`: one frame from the client. `Ok(None)` = no reply.
async fn on_message(api: &Api, id: &str, event: &Value) -> Result<Option<Value>, Failure> {
    if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        return Err(Failure::client("send JSON text frames, not binary ones"));
    }
    let text = event.get("body").and_then(Value::as_str).unwrap_or("");
    let message: Value =
        serde_json::from_str(text).map_err(|e| Failure::client(format!("not valid JSON: {e}")))?;
    let Some(message) = message.as_object() else {
        return Err(Failure::client("expected a JSON object with an \"action\""));
    };
    let field = |name: &str| message.get(name).unwrap_or(&Value::Null);
    match field("action").as_str() {
        Some("join") => {
            let nick = nick(field("nick"))?;
            let room = room(field("room"))?;
            join(api, id, &nick, &room).await.map(Some)
        }
        Some("say") => say(api, id, field("text")).await.map(|()| None),
        Some(other) => Err(Failure::client(format!(
            "unknown action {:?} (expected \"join\" or \"say\")",
            truncate(other, MAX_NAME)
        ))),
        None => Err(Failure::client(
            "missing \"action\" (expected \"join\" or \"say\")",
        )),
    }
}

/// `join`: leave the current room, enter `room` as `nick`, answer `welcome`.
async fn join(api: &Api, id: &str, nick: &str, room: &str) -> Result<Value, Failure> {
    let channel = room_channel(room);
    let mut already_there = false;
    for seat in api.seats(id).await? {
        if seat.channel == channel {
            if seat.nick == nick {
                already_there = true;
            } else {
                // A new nick in the same room: the membership itself is kept
                // (joining again below replaces its meta), but the room sees
                // the old nick go before the new one arrives.
                api.broadcast(&channel, &left(&seat), Some(id)).await?;
            }
            continue;
        }
        api.leave(&seat.channel, id).await?;
        api.broadcast(&seat.channel, &left(&seat), Some(id)).await?;
    }
    api.join(&channel, id, &json!({"nick": nick, "room": room}))
        .await?;
    if !already_there {
        let joined = json!({"type": "joined", "room": room, "nick": nick});
        api.broadcast(&channel, &joined, Some(id)).await?;
    }
    let mut members: Vec<String> = api
        .members(&channel)
        .await?
        .iter()
        .filter_map(|meta| meta.get("nick").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    members.sort_by_key(|nick| nick.to_lowercase());
    Ok(json!({"type": "welcome", "room": room, "nick": nick, "members": members}))
}

/// `say`: broadcast `text` to the sender's room, the sender included.
async fn say(api: &Api, id: &str, text: &Value) -> Result<(), Failure> {
    let Some(text) = text.as_str() else {
        return Err(Failure::client("\"text\" must be a string"));
    };
    if text.trim().is_empty() {
        return Err(Failure::client("empty message"));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(Failure::client(format!(
            "message too long (at most {MAX_TEXT} characters)"
        )));
    }
    let Some(seat) = api.seats(id).await?.into_iter().next() else {
        return Err(Failure::client("join a room first"));
    };
    let message = json!({"type": "message", "room": seat.room, "nick": seat.nick, "text": text});
    api.broadcast(&seat.channel, &message, None).await
}

/// `$disconnect`: tell each room the connection was in that its nick left.
/// The platform removes the memberships itself once this returns.
async fn on_disconnect(api: &Api, id: &str) -> Result<(), Failure> {
    let mut first_failure = None;
    for seat in api.seats(id).await? {
        // One room failing must not keep the others from hearing about it.
        if let Err(failure) = api.broadcast(&seat.channel, &left(&seat), Some(id)).await {
            first_failure.get_or_insert(failure);
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// The `left` notice for a membership.
fn left(seat: &Seat) -> Value {
    json!({"type": "left", "room": seat.room, "nick": seat.nick})
}

/// A connection's membership of a room, as kept in the channel meta.
struct Seat {
    /// `room:` + room.
    channel: String,
    /// The room name.
    room: String,
    /// The nick the connection joined with.
    nick: String,
}

/// The platform API, as this function's identity.
struct Api {
    /// `GUREUM_API` without a trailing slash.
    base: String,
    /// `GUREUM_FUNCTION_TOKEN`.
    token: String,
    /// The outbound HTTP client.
    client: Client,
}

impl Api {
    /// Reads the API's location and the function's token from the
    /// environment (the platform sets both for every function).
    fn from_env() -> Result<Self, Failure> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Failure::platform(format!("environment variable {name} is not set")))
        };
        Ok(Self {
            base: var("GUREUM_API")?.trim_end_matches('/').to_owned(),
            token: var("GUREUM_FUNCTION_TOKEN")?,
            client: Client::new(),
        })
    }

    /// The rooms connection `id` is in (normally at most one), from its
    /// channel memberships. A connection that is already gone is in none.
    async fn seats(&self, id: &str) -> Result<Vec<Seat>, Failure> {
        let path = format!("/@connections/{id}");
        let (status, body) = self.call(Method::GET, &path, None).await?;
        // 410 Gone: closed meanwhile (the spec's GoneException). Anything
        // else that is not 2xx, a 404 included, is a failure to report.
        if status == StatusCode::GONE {
            return Ok(Vec::new());
        }
        let info = expect_json(Method::GET, &path, status, &body)?;
        let channels = info
            .get("channels")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(channels.iter().filter_map(seat).collect())
    }

    /// Makes `id` a member of `channel` with `meta` (replacing any earlier
    /// meta of that membership).
    async fn join(&self, channel: &str, id: &str, meta: &Value) -> Result<(), Failure> {
        let path = format!("/channels/{channel}/members/{id}");
        let (status, body) = self
            .call(Method::POST, &path, Some(meta.to_string()))
            .await?;
        expect_success(Method::POST, &path, status, &body)
    }

    /// Ends the membership of `id` in `channel`.
    async fn leave(&self, channel: &str, id: &str) -> Result<(), Failure> {
        let path = format!("/channels/{channel}/members/{id}");
        let (status, body) = self.call(Method::DELETE, &path, None).await?;
        expect_success(Method::DELETE, &path, status, &body)
    }

    /// The metas of the members of `channel`.
    async fn members(&self, channel: &str) -> Result<Vec<Value>, Failure> {
        let path = format!("/channels/{channel}/members");
        let (status, body) = self.call(Method::GET, &path, None).await?;
        let mut list = expect_json(Method::GET, &path, status, &body)?;
        let members = match list.get_mut("members").map(Value::take) {
            Some(Value::Array(members)) => members,
            _ => Vec::new(),
        };
        Ok(members
            .into_iter()
            .map(|mut member| member.get_mut("meta").map(Value::take).unwrap_or_default())
            .collect())
    }

    /// Sends `message` as one text frame to every member of `channel` but
    /// `exclude`.
    async fn broadcast(
        &self,
        channel: &str,
        message: &Value,
        exclude: Option<&str>,
    ) -> Result<(), Failure> {
        let mut path = format!("/channels/{channel}/messages");
        if let Some(id) = exclude {
            path.push_str("?exclude=");
            path.push_str(id);
        }
        let (status, body) = self
            .call(Method::POST, &path, Some(message.to_string()))
            .await?;
        expect_success(Method::POST, &path, status, &body)
    }

    /// One authenticated request to the platform API; `path` starts with `/`
    /// and holds only validated names (connection ids, room channels), so it
    /// needs no escaping.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(StatusCode, Vec<u8>), Failure> {
        let what = |e: &dyn std::fmt::Display| Failure::platform(format!("{method} {path}: {e}"));
        let builder = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token));
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body)),
            None => builder.body(Body::empty()),
        }
        .map_err(|e| what(&e))?;
        let response = self.client.send(request).await.map_err(|e| what(&e))?;
        let status = response.status();
        let mut body = response.into_body();
        let bytes = body.contents().await.map_err(|e| what(&e))?.to_vec();
        Ok((status, bytes))
    }
}

/// A membership entry of `GET /@connections/{id}` (`{"channel": …, "meta":
/// …}`) as a seat, when it is a room's channel. The room is taken from the
/// channel name (the meta could be anything another version of this function
/// wrote); a missing nick shows as `someone`.
fn seat(entry: &Value) -> Option<Seat> {
    let channel = entry.get("channel")?.as_str()?;
    let room = channel.strip_prefix(ROOM_CHANNEL)?;
    let nick = entry
        .get("meta")
        .and_then(|meta| meta.get("nick"))
        .and_then(Value::as_str)
        .unwrap_or("someone");
    Some(Seat {
        channel: channel.to_owned(),
        room: room.to_owned(),
        nick: nick.to_owned(),
    })
}

/// Fails unless the platform API answered 2xx.
fn expect_success(
    method: Method,
    path: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<(), Failure> {
    if status.is_success() {
        return Ok(());
    }
    Err(Failure::platform(format!(
        "{method} {path}: {status}: {}",
        truncate(&String::from_utf8_lossy(body), 200)
    )))
}

/// The JSON of a 2xx answer of the platform API.
fn expect_json(
    method: Method,
    path: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<Value, Failure> {
    expect_success(method.clone(), path, status, body)?;
    serde_json::from_slice(body)
        .map_err(|e| Failure::platform(format!("{method} {path}: answer is not JSON: {e}")))
}

/// A validated nick: 1–32 characters after trimming, no control characters
/// (they would garble the page's message list).
fn nick(value: &Value) -> Result<String, Failure> {
    let nick = value.as_str().map(str::trim).unwrap_or("");
    let len = nick.chars().count();
    if len == 0 || len > MAX_NAME || nick.chars().any(char::is_control) {
        return Err(Failure::client(format!(
            "\"nick\" must be 1 to {MAX_NAME} characters, without control characters"
        )));
    }
    Ok(nick.to_owned())
}

/// A validated room name: 1–32 characters of `[A-Za-z0-9_-]`, so that
/// `room:NAME` is a valid channel name and needs no escaping in a URL.
fn room(value: &Value) -> Result<String, Failure> {
    let room = value.as_str().unwrap_or("");
    let ok = (1..=MAX_NAME).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(Failure::client(format!(
            "\"room\" must be 1 to {MAX_NAME} characters of A-Z a-z 0-9 _ -"
        )));
    }
    Ok(room.to_owned())
}

/// The channel of a room.
fn room_channel(room: &str) -> String {
    format!("{ROOM_CHANNEL}{room}")
}

/// Whether `id` looks like a connection id (URL-safe base64), so it can go
/// into a URL path and query unescaped.
fn valid_connection_id(id: &str) -> bool {
    (1..=MAX_CONNECTION_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// At most `max` characters of `s`, with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// A header's value as a string, when present and valid.
fn header(request: &Request<Body>, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Why a frame could not be acted on.
enum Failure {
    /// The client's fault; told to it as is.
    Client(String),
    /// The platform API (or its configuration) failed; logged, and the
    /// client gets a generic error.
    Platform(String),
}

impl Failure {
    /// A failure the client caused.
    fn client(message: impl Into<String>) -> Self {
        Self::Client(message.into())
    }

    /// A failure of the platform API.
    fn platform(message: impl Into<String>) -> Self {
        Self::Platform(message.into())
    }

    /// Writes a platform failure to the function's logs (stderr).
    fn log(&self, id: &str) {
        if let Self::Platform(detail) = self {
            eprintln!("connection {id}: {detail}");
        }
    }

    /// The `error` frame for the client (platform failures are logged).
    fn reply(&self, id: &str) -> Value {
        self.log(id);
        let message = match self {
            Self::Client(message) => message.as_str(),
            Self::Platform(_) => "the chat service failed; try again",
        };
        json!({"type": "error", "message": message})
    }
}

/// A JSON reply: becomes a text frame to the client.
fn json_reply(value: &Value) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(value.to_string()))?)
}

/// A response without a body (for `$default`: no frame is sent back).
fn empty(status: StatusCode) -> Result<Response<Body>, Error> {
    Ok(Response::builder().status(status).body(Body::empty())?)
}

/// A plain-text response.
fn plain(status: StatusCode, text: &str) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from(text.to_owned()))?)
}
