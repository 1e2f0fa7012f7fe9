//! WebSockets: the events of connections to `/ws/NAME`, and pushing to them.
//!
//! gureum holds the connections; the function only handles events. Each arrives as a
//! `POST /.gureum/websocket` request ([`is_event`], [`Event::from_request`]) whose answer
//! matters: to `$connect`, a non-2xx status refuses the upgrade; to a message, a non-empty
//! body is sent back to that connection. Everything else goes through the platform API
//! with the function's token: [`send`], [`close`], [`info`], and channels ([`join`],
//! [`leave`], [`members`], [`broadcast`]) that reach connections on every node. A
//! function addresses only connections of its own `/ws/NAME`.
//!
//! ```no_run
//! use gureum_sdk::http::{self, Body, Error, Request, Response, StatusCode};
//! use gureum_sdk::websocket::{self, Event, EventKind};
//!
//! async fn handle(request: Request<Body>) -> Result<Response<Body>, Error> {
//!     if !websocket::is_event(&request) {
//!         return Ok(http::text(StatusCode::OK, "connect to /ws/chat\n"));
//!     }
//!     let event = Event::from_request(request).await?;
//!     match event.kind {
//!         EventKind::Connect => websocket::join("lobby", &event.connection_id).await?,
//!         EventKind::Message => {
//!             let text = event.text().unwrap_or_default();
//!             websocket::broadcast_except("lobby", text, &event.connection_id).await?;
//!         }
//!         _ => {}
//!     }
//!     Ok(http::empty(StatusCode::OK))
//! }
//! # gureum_sdk::export_handler!(handle);
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wstd::http::{Body, Method, Request};

use crate::Error;
use crate::api::Call;
use crate::http::percent_encode;

/// The path gureum POSTs WebSocket events to ([`is_event`] checks it).
///
/// ```
/// assert_eq!(gureum_sdk::websocket::EVENT_PATH, "/.gureum/websocket");
/// ```
pub const EVENT_PATH: &str = "/.gureum/websocket";

/// Whether `request` is a WebSocket event from gureum (`POST /.gureum/websocket`; clients
/// cannot reach that path).
///
/// ```
/// use gureum_sdk::http::{Body, Request};
///
/// let request = Request::post("/.gureum/websocket").body(Body::empty()).unwrap();
/// assert!(gureum_sdk::websocket::is_event(&request));
/// ```
pub fn is_event<B>(request: &Request<B>) -> bool {
    request.method() == Method::POST && request.uri().path() == EVENT_PATH
}

/// Which event it is.
///
/// ```
/// use gureum_sdk::websocket::EventKind;
/// assert_eq!(EventKind::from_route_key("$default"), EventKind::Message);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// `$connect`: a client is upgrading; answer 2xx to accept.
    Connect,
    /// `$default`: a message from the client.
    Message,
    /// `$disconnect`: the connection ended (it is still readable with [`info`]).
    Disconnect,
    /// Another route key.
    Other(String),
}

impl EventKind {
    /// The kind of an API Gateway route key.
    ///
    /// ```
    /// use gureum_sdk::websocket::EventKind;
    /// assert_eq!(EventKind::from_route_key("$connect"), EventKind::Connect);
    /// ```
    pub fn from_route_key(route_key: &str) -> Self {
        match route_key {
            "$connect" => EventKind::Connect,
            "$default" => EventKind::Message,
            "$disconnect" => EventKind::Disconnect,
            other => EventKind::Other(other.to_owned()),
        }
    }
}

/// One WebSocket event, shaped like API Gateway's.
///
/// ```
/// use gureum_sdk::websocket::{Event, EventKind};
///
/// let event = Event::parse(br#"{"requestContext":{"routeKey":"$default","connectionId":"c1"},"body":"hi","isBase64Encoded":false}"#).unwrap();
/// assert_eq!(event.kind, EventKind::Message);
/// assert_eq!(event.connection_id, "c1");
/// assert_eq!(event.text(), Some("hi"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Which event.
    pub kind: EventKind,
    /// The connection's id: what [`send`], [`join`], … take.
    pub connection_id: String,
    /// The message (for [`EventKind::Message`]; binary frames decoded from base64), else
    /// empty.
    pub body: Vec<u8>,
    /// Whether the message came as a binary frame.
    pub binary: bool,
    /// The whole event (`requestContext`, `headers` and `queryStringParameters` of
    /// `$connect`, `disconnectStatusCode`, …).
    pub raw: Value,
}

impl Event {
    /// Reads the event from the request [`is_event`] accepted.
    ///
    /// ```no_run
    /// # async fn example(request: gureum_sdk::http::Request<gureum_sdk::http::Body>) -> Result<(), gureum_sdk::Error> {
    /// let event = gureum_sdk::websocket::Event::from_request(request).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn from_request(request: Request<Body>) -> Result<Event, Error> {
        let mut body = request.into_body();
        let bytes = body
            .contents()
            .await
            .map_err(|error| Error::Http(format!("reading the WebSocket event: {error:#}")))?;
        Event::parse(bytes)
    }

    /// Parses an event body.
    ///
    /// ```
    /// let event = gureum_sdk::websocket::Event::parse(
    ///     br#"{"requestContext":{"routeKey":"$connect","connectionId":"c1"},"queryStringParameters":{"room":"a"}}"#,
    /// ).unwrap();
    /// assert_eq!(event.query_param("room"), Some("a"));
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Event, Error> {
        let raw: Value = serde_json::from_slice(bytes)
            .map_err(|error| Error::Json(format!("decoding the WebSocket event: {error}")))?;
        let context = &raw["requestContext"];
        let kind = EventKind::from_route_key(context["routeKey"].as_str().unwrap_or_default());
        let connection_id = context["connectionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let binary = raw["isBase64Encoded"].as_bool().unwrap_or(false);
        let text = raw["body"].as_str().unwrap_or_default();
        let body = if binary {
            base64_decode(text).ok_or_else(|| {
                Error::Json("the WebSocket event's base64 body does not decode".to_owned())
            })?
        } else {
            text.as_bytes().to_vec()
        };
        Ok(Event {
            kind,
            connection_id,
            body,
            binary,
            raw,
        })
    }

    /// The message as text: `None` for a binary frame (or invalid UTF-8).
    ///
    /// ```
    /// let event = gureum_sdk::websocket::Event::parse(br#"{"requestContext":{"routeKey":"$default","connectionId":"c"},"body":"aGk=","isBase64Encoded":true}"#).unwrap();
    /// assert_eq!(event.text(), None);
    /// assert_eq!(event.body, b"hi");
    /// ```
    pub fn text(&self) -> Option<&str> {
        if self.binary {
            return None;
        }
        std::str::from_utf8(&self.body).ok()
    }

    /// A query parameter of the `$connect` URL (`/ws/NAME?room=a`), decoded.
    ///
    /// ```
    /// let event = gureum_sdk::websocket::Event::parse(br#"{"requestContext":{"routeKey":"$connect","connectionId":"c"},"queryStringParameters":{"token":"t"}}"#).unwrap();
    /// assert_eq!(event.query_param("token"), Some("t"));
    /// ```
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.raw["queryStringParameters"][name].as_str()
    }

    /// A header of the `$connect` request (lower-case name).
    ///
    /// ```
    /// let event = gureum_sdk::websocket::Event::parse(br#"{"requestContext":{"routeKey":"$connect","connectionId":"c"},"headers":{"origin":"https://a.example"}}"#).unwrap();
    /// assert_eq!(event.header("origin"), Some("https://a.example"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.raw["headers"][name].as_str()
    }
}

/// Standard base64 (with or without padding); `None` when it is not base64.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(byte: u8) -> Option<u32> {
        Some(match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let digits = text.trim_end_matches('=').as_bytes();
    if digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut bits = 0u32;
        for (i, byte) in chunk.iter().enumerate() {
            bits |= value(*byte)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// A connection as [`info`] describes it.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// let info = gureum_sdk::websocket::info("c1").await?;
/// println!("{} since {}", info.connection_id, info.connected_at);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInfo {
    /// The connection's id.
    pub connection_id: String,
    /// When it connected (RFC 3339, e.g. `2026-11-28T04:00:00.000Z`).
    pub connected_at: String,
    /// When a message last went either way (RFC 3339).
    pub last_active_at: String,
    /// Who connected.
    #[serde(default)]
    pub identity: Identity,
    /// The channels it is a member of, with the meta it joined with.
    #[serde(default)]
    pub channels: Vec<Membership>,
}

/// The client of a connection.
///
/// ```
/// let identity = gureum_sdk::websocket::Identity::default();
/// assert!(identity.source_ip.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The client's address.
    pub source_ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
}

/// A channel a connection is in.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// for membership in gureum_sdk::websocket::info("c1").await?.channels {
///     println!("{}: {}", membership.channel, membership.meta);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    /// The channel's name.
    pub channel: String,
    /// The meta given at [`join_with_meta`] (`null` without).
    #[serde(default)]
    pub meta: Value,
}

/// A member of a channel.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// for member in gureum_sdk::websocket::members("lobby").await? {
///     println!("{} {}", member.connection_id, member.meta);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The member connection's id.
    pub connection_id: String,
    /// The meta it joined with (`null` without).
    #[serde(default)]
    pub meta: Value,
}

fn connection_path(connection_id: &str) -> String {
    format!("/@connections/{}", percent_encode(connection_id))
}

fn channel_path(channel: &str) -> String {
    format!("/channels/{}", percent_encode(channel))
}

/// Sends `message` to connection `connection_id`: a text frame when it is UTF-8, else a
/// binary frame. A closed connection is an [`Error::Api`] with status 410
/// (`GoneException`; [`Error::is_not_found`] is true).
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// gureum_sdk::websocket::send("c1", "hello").await?;
/// gureum_sdk::websocket::send("c1", vec![0u8, 159, 146, 150]).await?;
/// # Ok(())
/// # }
/// ```
pub async fn send(connection_id: &str, message: impl AsRef<[u8]>) -> Result<(), Error> {
    Call::new(Method::POST, connection_path(connection_id))
        .bytes(message.as_ref().to_vec(), "application/octet-stream")
        .send()
        .await?;
    Ok(())
}

/// Closes connection `connection_id` (close code 1000); its `$disconnect` event follows.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// gureum_sdk::websocket::close("c1").await?;
/// # Ok(())
/// # }
/// ```
pub async fn close(connection_id: &str) -> Result<(), Error> {
    Call::new(Method::DELETE, connection_path(connection_id))
        .send()
        .await?;
    Ok(())
}

/// Describes connection `connection_id`; status 410 when it is gone.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// let info = gureum_sdk::websocket::info("c1").await?;
/// # Ok(())
/// # }
/// ```
pub async fn info(connection_id: &str) -> Result<ConnectionInfo, Error> {
    Call::new(Method::GET, connection_path(connection_id))
        .send()
        .await?
        .json("the connection's info")
}

/// Adds connection `connection_id` to `channel` (1–128 of `A-Z a-z 0-9 . _ : -`). The
/// membership ends with the connection.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// gureum_sdk::websocket::join("room:lobby", "c1").await?;
/// # Ok(())
/// # }
/// ```
pub async fn join(channel: &str, connection_id: &str) -> Result<(), Error> {
    Call::new(Method::POST, member_path(channel, connection_id))
        .send()
        .await?;
    Ok(())
}

/// Like [`join`], keeping `meta` (any JSON, e.g. a nickname) with the membership; it shows
/// in [`members`] and [`info`].
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// gureum_sdk::websocket::join_with_meta("room:lobby", "c1", &serde_json::json!({"nick": "ada"})).await?;
/// # Ok(())
/// # }
/// ```
pub async fn join_with_meta<M: Serialize + ?Sized>(
    channel: &str,
    connection_id: &str,
    meta: &M,
) -> Result<(), Error> {
    Call::new(Method::POST, member_path(channel, connection_id))
        .json(meta)?
        .send()
        .await?;
    Ok(())
}

fn member_path(channel: &str, connection_id: &str) -> String {
    format!(
        "{}/members/{}",
        channel_path(channel),
        percent_encode(connection_id)
    )
}

/// Removes connection `connection_id` from `channel` (nothing happens if it is not in it).
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// gureum_sdk::websocket::leave("room:lobby", "c1").await?;
/// # Ok(())
/// # }
/// ```
pub async fn leave(channel: &str, connection_id: &str) -> Result<(), Error> {
    Call::new(Method::DELETE, member_path(channel, connection_id))
        .send()
        .await?;
    Ok(())
}

/// The members of `channel`, on every node.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// let count = gureum_sdk::websocket::members("room:lobby").await?.len();
/// # Ok(())
/// # }
/// ```
pub async fn members(channel: &str) -> Result<Vec<Member>, Error> {
    #[derive(Deserialize)]
    struct Members {
        members: Vec<Member>,
    }
    let answer: Members = Call::new(Method::GET, format!("{}/members", channel_path(channel)))
        .send()
        .await?
        .json("the channel's members")?;
    Ok(answer.members)
}

/// Sends `message` to every member of `channel` (text when UTF-8, else binary); returns
/// how many connections it was delivered to.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// let delivered = gureum_sdk::websocket::broadcast("room:lobby", "hi all").await?;
/// # Ok(())
/// # }
/// ```
pub async fn broadcast(channel: &str, message: impl AsRef<[u8]>) -> Result<u64, Error> {
    publish(channel, message.as_ref(), None).await
}

/// Like [`broadcast`], leaving out connection `exclude` (typically the sender).
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// let delivered = gureum_sdk::websocket::broadcast_except("room:lobby", "ada joined", "c1").await?;
/// # Ok(())
/// # }
/// ```
pub async fn broadcast_except(
    channel: &str,
    message: impl AsRef<[u8]>,
    exclude: &str,
) -> Result<u64, Error> {
    publish(channel, message.as_ref(), Some(exclude)).await
}

async fn publish(channel: &str, message: &[u8], exclude: Option<&str>) -> Result<u64, Error> {
    #[derive(Deserialize)]
    struct Delivered {
        delivered: u64,
    }
    let mut path = format!("{}/messages", channel_path(channel));
    if let Some(exclude) = exclude {
        path = format!("{path}?exclude={}", percent_encode(exclude));
    }
    let answer: Delivered = Call::new(Method::POST, path)
        .bytes(message.to_vec(), "application/octet-stream")
        .send()
        .await?
        .json("the broadcast's answer")?;
    Ok(answer.delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64_decode("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64_decode("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64_decode("AP+A").as_deref(), Some(&[0u8, 255, 128][..]));
        assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
        assert_eq!(base64_decode("a"), None);
        assert_eq!(base64_decode("a*b="), None);
    }

    #[test]
    fn events_parse_every_kind() {
        let event = Event::parse(
            br#"{"requestContext":{"routeKey":"$disconnect","connectionId":"c9","disconnectStatusCode":1001}}"#,
        )
        .unwrap();
        assert_eq!(event.kind, EventKind::Disconnect);
        assert_eq!(event.raw["requestContext"]["disconnectStatusCode"], 1001);
        assert!(event.body.is_empty());
        assert!(Event::parse(b"not json").is_err());
    }

    #[test]
    fn paths_are_encoded() {
        assert_eq!(
            member_path("room:a", "c/1"),
            "/channels/room%3Aa/members/c%2F1"
        );
        assert_eq!(connection_path("abc"), "/@connections/abc");
    }
}
