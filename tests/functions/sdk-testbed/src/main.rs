//! `sdk-testbed`: the end-to-end fixture of the Rust guest SDK (`gureum-sdk`).
//!
//! A `wasi:http` component built only on the SDK, with one route per SDK module. The
//! route is the path the function sees (`/fn/NAME` stripped):
//!
//! | route | behaviour |
//! |-------|-----------|
//! | `GET /hello[?name=N]` | `Hello, N!` (`world` without a name), text |
//! | `GET /fail` | the handler returns an `Err` (the platform answers 502) |
//! | `GET /config/get?key=K` | `config::get`: the value, or 404 `unset` |
//! | `GET /config/require?key=K` | `config::require::<u32>`: the number, or 400 with the error's text |
//! | `GET /config/or?key=K&default=D` | `config::get_or::<u32>`: the number, or 400 with the error's text |
//! | `GET /kv/get/B/K` | the value, or 404 `no such key` |
//! | `PUT /kv/set/B/K` | stores the body, 204 |
//! | `DELETE /kv/del/B/K` | 204 |
//! | `GET /kv/exists/B/K` | `true` / `false` |
//! | `POST /kv/incr/B/K?by=N` | the counter's new value (N default 1, may be negative) |
//! | `GET /kv/keys/B` | JSON array of every key (`Bucket::keys`) |
//! | `GET /kv/pages/B` | JSON array of pages (`list_keys` with the cursors), each a key array |
//! | `POST /kv/json/B/K` | `set_json` of the body's JSON, then `get_json` back, answered as JSON |
//! | `POST /kv/batch/B` | body `{"k": "v", …}` → `set_many`, then `get_many` of those keys plus `?get=K` → `{"k": "v" or null}`; `?delete=K1,K2` → `delete_many` first |
//! | `POST /docs/C` | creates a document from the JSON body → 201 and the document |
//! | (any `/docs` route) | with header `x-user-token: T`, calls as that user (`Collection::with_token`) |
//! | `GET /docs/C/ID` | the document, or 404 `{"missing": ID}` |
//! | `GET /docs/C[?field=F&op=O&value=JSON][&sort=S][&limit=N][&cursor=X]` | a page: `{"docs", "next_cursor"}` |
//! | `PUT /docs/C/ID[?if_version=N]` | replaces the data |
//! | `PATCH /docs/C/ID[?if_version=N]` | merge-patches the data |
//! | `DELETE /docs/C/ID[?if_version=N]` | 204 |
//! | `POST /typed/C` | body `{"text"}`: creates a typed `Note`, reads it back typed, answers `text|done|version|owner` |
//! | `POST /invoke-async/NAME[?path=P]` | `Invocation::queue` of the body to NAME → `{"invocation_id", "duplicate"}` |
//! | `POST /invoke/NAME[?path=P]` | `Invocation::send` → the other function's status and body |
//! | `POST /record?key=K` | stores the body in bucket `records` under K, and its invocation id under `K.id` (the target of the invoke tests) |
//! | `/.gureum/websocket` | WebSocket events, see [`websocket`] |
//!
//! An SDK error answers its platform status (or 500) with JSON `{"code", "message"}`.

use gureum_sdk::documents::{Collection, Document, Page, Query};
use gureum_sdk::http::{self, Body, Method, Request, Response, StatusCode};
use gureum_sdk::invoke::Invocation;
use gureum_sdk::kv::Bucket;
use gureum_sdk::serde_json::{self, Map, Value, json};
use gureum_sdk::websocket::{self, Event, EventKind};
use gureum_sdk::{Error, config};
use serde::{Deserialize, Serialize};

gureum_sdk::export_handler!(handle);

/// The handler's answer: SDK errors become responses, anything else fails the request.
type Answer = Result<Response<Body>, http::Error>;

async fn handle(request: Request<Body>) -> Answer {
    if websocket::is_event(&request) {
        return websocket(request).await;
    }
    let path = request.uri().path().to_owned();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(http::percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let result = match segments.as_slice() {
        ["hello"] => {
            let name = http::query_param(request.uri(), "name");
            Ok(http::text(StatusCode::OK, greeting(name.as_deref())))
        }
        ["fail"] => {
            return Err(Error::Api {
                status: 418,
                code: "sdk_testbed".into(),
                message: "failure requested".into(),
            }
            .into());
        }
        ["config", op] => Ok(config_route(op, request.uri())),
        ["kv", op, bucket, key @ ..] => {
            let (op, bucket, key) = (op.to_string(), bucket.to_string(), key.join("/"));
            kv(request, &op, &bucket, &key).await
        }
        ["docs", collection, rest @ ..] => {
            let collection = collection.to_string();
            let id = rest.first().map(|id| id.to_string());
            documents(request, &collection, id.as_deref()).await
        }
        ["typed", collection] => {
            let collection = collection.to_string();
            typed(request, &collection).await
        }
        ["invoke-async", function] | ["invoke", function] => {
            let queue = segments[0] == "invoke-async";
            let function = function.to_string();
            invoke(request, &function, queue).await
        }
        ["record"] => record(request).await,
        _ => Ok(http::text(
            StatusCode::NOT_FOUND,
            "no such sdk-testbed route\n",
        )),
    };
    Ok(result.unwrap_or_else(|error| failure(&error)))
}

/// `Hello, NAME!` with a newline; `world` for a missing or blank name.
fn greeting(name: Option<&str>) -> String {
    let name = name.map(str::trim).filter(|name| !name.is_empty());
    format!("Hello, {}!\n", name.unwrap_or("world"))
}

/// An SDK error as a response: the platform's status (else 500) and `{"code", "message"}`.
fn failure(error: &Error) -> Response<Body> {
    let status = error
        .status()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = match error {
        Error::Config(_) => "config",
        Error::Http(_) => "http",
        Error::Json(_) => "json",
        Error::KeyValue(_) => "kv",
        _ => error.code().unwrap_or("other"),
    };
    http::json(status, &json!({"code": code, "message": error.to_string()}))
        .unwrap_or_else(|_| http::text(status, error.to_string()))
}

fn query(uri: &http::Uri, name: &str) -> Option<String> {
    http::query_param(uri, name)
}

fn config_route(op: &str, uri: &http::Uri) -> Response<Body> {
    let key = query(uri, "key").unwrap_or_default();
    let parsed = match op {
        "get" => {
            return match config::get(&key) {
                Some(value) => http::text(StatusCode::OK, value),
                None => http::text(StatusCode::NOT_FOUND, "unset"),
            };
        }
        "require" => config::require::<u32>(&key),
        "or" => {
            let default = query(uri, "default")
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            config::get_or::<u32>(&key, default)
        }
        _ => return http::text(StatusCode::NOT_FOUND, "no such config op"),
    };
    match parsed {
        Ok(number) => http::text(StatusCode::OK, number.to_string()),
        Err(error) => http::text(StatusCode::BAD_REQUEST, error.to_string()),
    }
}

async fn body_bytes(request: Request<Body>) -> Result<Vec<u8>, Error> {
    let mut body = request.into_body();
    body.contents()
        .await
        .map(<[u8]>::to_vec)
        .map_err(|error| Error::Http(format!("reading the request body: {error:#}")))
}

async fn body_json(request: Request<Body>) -> Result<Value, Error> {
    let bytes = body_bytes(request).await?;
    serde_json::from_slice(&bytes).map_err(|error| Error::Json(format!("request body: {error}")))
}

async fn kv(
    request: Request<Body>,
    op: &str,
    bucket: &str,
    key: &str,
) -> Result<Response<Body>, Error> {
    let uri = request.uri().clone();
    let bucket = Bucket::open(bucket)?;
    Ok(match op {
        "get" => match bucket.get(key)? {
            Some(value) => {
                let mut response = Response::new(Body::from(value));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/octet-stream"),
                );
                response
            }
            None => http::text(StatusCode::NOT_FOUND, "no such key"),
        },
        "set" => {
            bucket.set(key, body_bytes(request).await?)?;
            http::empty(StatusCode::NO_CONTENT)
        }
        "del" => {
            bucket.delete(key)?;
            http::empty(StatusCode::NO_CONTENT)
        }
        "exists" => http::text(StatusCode::OK, bucket.exists(key)?.to_string()),
        "incr" => {
            let by = match query(&uri, "by").map(|by| by.parse::<i64>()) {
                None => 1,
                Some(Ok(by)) => by,
                Some(Err(_)) => {
                    return Ok(http::text(StatusCode::BAD_REQUEST, "by must be an i64"));
                }
            };
            http::text(StatusCode::OK, bucket.increment(key, by)?.to_string())
        }
        "keys" => http::json(StatusCode::OK, &bucket.keys()?)?,
        "pages" => {
            let mut pages = Vec::new();
            let mut cursor = None;
            loop {
                let page = bucket.list_keys(cursor)?;
                pages.push(page.keys);
                match page.cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            http::json(StatusCode::OK, &pages)?
        }
        "json" => {
            let value = body_json(request).await?;
            bucket.set_json(key, &value)?;
            let back: Option<Value> = bucket.get_json(key)?;
            http::json(StatusCode::OK, &back)?
        }
        "batch" => {
            if let Some(delete) = query(&uri, "delete") {
                let keys: Vec<&str> = delete.split(',').filter(|k| !k.is_empty()).collect();
                bucket.delete_many(&keys)?;
            }
            let Value::Object(entries) = body_json(request).await? else {
                return Ok(http::text(
                    StatusCode::BAD_REQUEST,
                    "batch needs a JSON object",
                ));
            };
            let pairs: Vec<(String, String)> = entries
                .into_iter()
                .map(|(key, value)| {
                    let value = match value {
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    (key, value)
                })
                .collect();
            bucket.set_many(pairs.iter().map(|(k, v)| (k.as_str(), v.as_bytes())))?;
            let mut keys: Vec<String> = pairs.into_iter().map(|(key, _)| key).collect();
            keys.extend(query(&uri, "get"));
            let values = bucket.get_many(&keys)?;
            let out: Map<String, Value> = keys
                .into_iter()
                .zip(values)
                .map(|(key, value)| {
                    let value = value
                        .map(|bytes| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
                        .unwrap_or(Value::Null);
                    (key, value)
                })
                .collect();
            http::json(StatusCode::OK, &out)?
        }
        _ => http::text(StatusCode::NOT_FOUND, "no such kv op"),
    })
}

async fn documents(
    request: Request<Body>,
    collection: &str,
    id: Option<&str>,
) -> Result<Response<Body>, Error> {
    let uri = request.uri().clone();
    let method = request.method().clone();
    let user_token = request
        .headers()
        .get("x-user-token")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let docs = match user_token {
        Some(token) => Collection::new(collection).with_token(token),
        None => Collection::new(collection),
    };
    let if_version = query(&uri, "if_version").and_then(|v| v.parse::<u64>().ok());
    match (method, id) {
        (Method::POST, None) => {
            let doc = docs.create(&body_json(request).await?).await?;
            http::json(StatusCode::CREATED, &doc)
        }
        (Method::GET, None) => {
            let mut list = Query::new();
            if let (Some(field), Some(op), Some(value)) = (
                query(&uri, "field"),
                query(&uri, "op"),
                query(&uri, "value"),
            ) {
                let value: Value = serde_json::from_str(&value).unwrap_or(Value::String(value));
                list = list.filter(&field, &op, value);
            }
            if let Some(sort) = query(&uri, "sort") {
                list = list.sort(sort);
            }
            if let Some(limit) = query(&uri, "limit").and_then(|l| l.parse().ok()) {
                list = list.limit(limit);
            }
            if let Some(cursor) = query(&uri, "cursor") {
                list = list.cursor(cursor);
            }
            let page: Page<Value> = docs.list(&list).await?;
            http::json(StatusCode::OK, &page)
        }
        (Method::GET, Some(id)) => match docs.get::<Value>(id).await? {
            Some(doc) => http::json(StatusCode::OK, &doc),
            None => http::json(StatusCode::NOT_FOUND, &json!({"missing": id})),
        },
        (Method::PUT, Some(id)) => {
            let data = body_json(request).await?;
            let doc = match if_version {
                Some(version) => docs.replace_if_version(id, &data, version).await?,
                None => docs.replace(id, &data).await?,
            };
            http::json(StatusCode::OK, &doc)
        }
        (Method::PATCH, Some(id)) => {
            let patch = body_json(request).await?;
            let doc: Document<Value> = match if_version {
                Some(version) => docs.patch_if_version(id, &patch, version).await?,
                None => docs.patch(id, &patch).await?,
            };
            http::json(StatusCode::OK, &doc)
        }
        (Method::DELETE, Some(id)) => {
            match if_version {
                Some(version) => docs.delete_if_version(id, version).await?,
                None => docs.delete(id).await?,
            }
            Ok(http::empty(StatusCode::NO_CONTENT))
        }
        _ => Ok(http::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "no such docs call",
        )),
    }
}

/// A typed document.
#[derive(Debug, Serialize, Deserialize)]
struct Note {
    text: String,
    done: bool,
}

async fn typed(request: Request<Body>, collection: &str) -> Result<Response<Body>, Error> {
    #[derive(Deserialize)]
    struct Input {
        text: String,
    }
    let bytes = body_bytes(request).await?;
    let input: Input =
        serde_json::from_slice(&bytes).map_err(|error| Error::Json(format!("body: {error}")))?;
    let notes = Collection::new(collection);
    let created = notes
        .create(&Note {
            text: input.text,
            done: false,
        })
        .await?;
    let Some(read): Option<Document<Note>> = notes.get(&created.id).await? else {
        return Ok(http::text(StatusCode::NOT_FOUND, "created but not found"));
    };
    Ok(http::text(
        StatusCode::OK,
        format!(
            "{}|{}|{}|{}",
            read.data.text, read.data.done, read.version, read.owner
        ),
    ))
}

async fn invoke(
    request: Request<Body>,
    function: &str,
    queue: bool,
) -> Result<Response<Body>, Error> {
    let path = query(request.uri(), "path").unwrap_or_else(|| "/".to_owned());
    let body = body_bytes(request).await?;
    let call = Invocation::new(function).path(path).body(body);
    if queue {
        let queued = call.queue().await?;
        return http::json(
            StatusCode::OK,
            &json!({"invocation_id": queued.invocation_id, "duplicate": queued.duplicate}),
        );
    }
    let response = call.send().await?;
    let status = response.status();
    let bytes = body_bytes_of(response).await?;
    Ok(http::text(
        StatusCode::OK,
        format!("{} {}", status.as_u16(), String::from_utf8_lossy(&bytes)),
    ))
}

async fn body_bytes_of(response: Response<Body>) -> Result<Vec<u8>, Error> {
    let mut body = response.into_body();
    body.contents()
        .await
        .map(<[u8]>::to_vec)
        .map_err(|error| Error::Http(format!("reading the response body: {error:#}")))
}

async fn record(request: Request<Body>) -> Result<Response<Body>, Error> {
    let key = query(request.uri(), "key").unwrap_or_else(|| "default".to_owned());
    let invocation = request
        .headers()
        .get(http::INVOCATION_ID_HEADER)
        .map(|value| value.as_bytes().to_vec())
        .unwrap_or_default();
    let body = body_bytes(request).await?;
    let records = Bucket::open("records")?;
    records.set(&format!("{key}.id"), invocation)?;
    records.set(&key, body)?;
    Ok(http::text(StatusCode::OK, "recorded"))
}

/// WebSocket events through the SDK:
///
/// - `$connect`: `?reject=1` answers 403 (refusing the upgrade), else 200. (The
///   connection is not addressable yet: channels are joined from messages.)
/// - `$default`, by the message text: `echo X` → X; `info` → the connection's info as
///   JSON; `join CH [NICK]` (with meta `{"nick": NICK}`) / `leave CH` → `joined` /
///   `left`; `members CH` → the members as JSON;
///   `broadcast CH X` → to every member but the sender, answers `delivered N`;
///   `broadcast-all CH X` → to every member, answers `delivered N`; `send ID X` → X to
///   connection ID, answers `sent` or the error's code; `binary` → sends the bytes
///   `[0, 255, 1]` to the sender, answers `sent binary`; `close` → closes the sender.
///   A binary message is answered with `binary N` (its length).
/// - `$disconnect`: prints `disconnect ID`.
async fn websocket(request: Request<Body>) -> Answer {
    let event = match Event::from_request(request).await {
        Ok(event) => event,
        Err(error) => return Ok(failure(&error)),
    };
    let id = event.connection_id.clone();
    let answer = match event.kind {
        EventKind::Connect => {
            if event.query_param("reject").is_some() {
                return Ok(http::text(StatusCode::FORBIDDEN, "rejected"));
            }
            return Ok(http::empty(StatusCode::OK));
        }
        EventKind::Disconnect => {
            println!("disconnect {id}");
            return Ok(http::empty(StatusCode::OK));
        }
        EventKind::Message if event.binary => Ok(format!("binary {}", event.body.len())),
        EventKind::Message => command(&id, event.text().unwrap_or_default()).await,
        _ => Ok("unknown event".to_owned()),
    };
    Ok(match answer {
        Ok(text) => http::text(StatusCode::OK, text),
        Err(error) => http::text(
            StatusCode::OK,
            format!("error {}", error.code().unwrap_or("sdk")),
        ),
    })
}

async fn command(id: &str, message: &str) -> Result<String, Error> {
    let (command, rest) = message.split_once(' ').unwrap_or((message, ""));
    Ok(match command {
        "echo" => rest.to_owned(),
        "info" => {
            let info = websocket::info(id).await?;
            serde_json::to_string(&info).unwrap_or_default()
        }
        "join" => {
            // `join CH` plain, `join CH NICK` with meta `{"nick": NICK}`.
            match rest.split_once(' ') {
                Some((channel, nick)) => {
                    websocket::join_with_meta(channel, id, &json!({"nick": nick})).await?
                }
                None => websocket::join(rest, id).await?,
            }
            "joined".to_owned()
        }
        "leave" => {
            websocket::leave(rest, id).await?;
            "left".to_owned()
        }
        "members" => serde_json::to_string(&websocket::members(rest).await?).unwrap_or_default(),
        "broadcast" | "broadcast-all" => {
            let (channel, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let delivered = if command == "broadcast" {
                websocket::broadcast_except(channel, text, id).await?
            } else {
                websocket::broadcast(channel, text).await?
            };
            format!("delivered {delivered}")
        }
        "send" => {
            let (to, text) = rest.split_once(' ').unwrap_or((rest, ""));
            match websocket::send(to, text).await {
                Ok(()) => "sent".to_owned(),
                Err(error) => format!("error {}", error.code().unwrap_or("sdk")),
            }
        }
        "binary" => {
            websocket::send(id, [0u8, 255, 1]).await?;
            "sent binary".to_owned()
        }
        "close" => {
            websocket::close(id).await?;
            String::new()
        }
        other => format!("unknown command {other:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets() {
        assert_eq!(greeting(Some("Ada")), "Hello, Ada!\n");
        assert_eq!(greeting(Some(" ")), "Hello, world!\n");
        assert_eq!(greeting(None), "Hello, world!\n");
    }
}
