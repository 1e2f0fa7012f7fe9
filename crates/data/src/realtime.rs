//! Realtime: `GET /data/v1/collections/{col}/stream?where=…` and `GET
//! /data/v1/collections/{col}/docs/{id}/stream` answer Server-Sent Events (`created`,
//! `updated`, `deleted`, each with the document as JSON) for every write this node makes,
//! filtered per subscriber by the same `where` conditions and by the rules (`list` for a
//! collection stream, `get` for a document stream) as the subscriber.
//!
//! On PostgreSQL every change is also sent to the other nodes with NOTIFY on
//! `gureum_document_changes` (see [`DataService::published`]), whose subscribers get it
//! the same way. The notice carries the document when it fits the payload limit;
//! otherwise the receiving node reads it back from the store. `Store::listen` keeps one
//! dedicated connection per node, and notices sent while it reconnects are lost.
//!
//! Each collection has a broadcast channel; a subscriber that falls more than
//! [`CHANNEL_CAPACITY`] changes behind gets `event: reset` (re-read, then keep listening)
//! instead of silently missing changes.
//!
//! A stream ends at its token's `exp` (`event: token_expired`) or when the user's
//! sessions are revoked (`event: revoked`), which each node learns by polling
//! `users.revoked_before_ms` every `REVOCATION_POLL` (2 s). On one node a user holds at
//! most [`MAX_STREAMS_PER_USER`] streams and a client address (IPv6: its /64) at most
//! [`MAX_STREAMS_PER_ADDRESS`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use gureum_auth::{Caller, ClientAddr};
use gureum_rules::Operation;
use gureum_store::{DocumentRow, Filter};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Uri};
use tokio::sync::broadcast;

use crate::documents::doc_json;
use crate::query::{matches, parse_condition};
use crate::{DataError, DataService, check_collection, query_pairs};

/// Changes a subscriber may fall behind before it gets `reset`.
pub const CHANNEL_CAPACITY: usize = 1024;
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What happened to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

impl ChangeKind {
    fn event(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Change {
    kind: ChangeKind,
    row: DocumentRow,
}

/// The per-collection channels of this node.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<Change>>>>,
}

/// The PostgreSQL notification channel that carries changes between nodes.
pub(crate) const NOTIFY_CHANNEL: &str = "gureum_document_changes";

/// A change as it travels to the other nodes.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Notice {
    /// The node that made it (it already told its own subscribers).
    origin: String,
    collection: String,
    kind: String,
    id: String,
    owner: Option<String>,
    version: i64,
    created: i64,
    updated: i64,
    /// The data, when the notice fits PostgreSQL's payload limit with it; else the
    /// receivers read the document from the store (or, for a deletion, go without).
    data: Option<String>,
}

impl ChangeKind {
    fn parse(text: &str) -> Option<ChangeKind> {
        match text {
            "created" => Some(ChangeKind::Created),
            "updated" => Some(ChangeKind::Updated),
            "deleted" => Some(ChangeKind::Deleted),
            _ => None,
        }
    }
}

impl DataService {
    /// Tells this node's subscribers of a committed change, and the other nodes' through
    /// the store (PostgreSQL); a failure to notify is logged, never the request's error
    /// (the write is committed).
    pub(crate) async fn published(&self, collection: &str, kind: ChangeKind, row: &DocumentRow) {
        self.changes.publish(collection, kind, row);
        if self.store.backend() != gureum_store::Backend::Postgres {
            return;
        }
        let mut notice = Notice {
            origin: self.origin.clone(),
            collection: collection.to_string(),
            kind: kind.event().to_string(),
            id: row.id.clone(),
            owner: row.owner.clone(),
            version: row.version,
            created: row.created_at_ms,
            updated: row.updated_at_ms,
            data: Some(row.data.clone()),
        };
        let mut payload = serde_json::to_string(&notice).expect("notices serialize");
        if payload.len() > gureum_store::MAX_NOTIFY_BYTES {
            notice.data = None;
            payload = serde_json::to_string(&notice).expect("notices serialize");
        }
        if let Err(error) = self.store.notify(NOTIFY_CHANNEL, &payload).await {
            tracing::warn!(%error, collection, "telling other nodes of a change failed");
        }
    }

    /// Relays other nodes' changes to this node's subscribers until the service is gone.
    pub(crate) async fn relay(
        service: std::sync::Weak<DataService>,
        mut notifications: gureum_store::Notifications,
    ) {
        while let Some(payload) = notifications.next().await {
            let Some(service) = service.upgrade() else {
                return;
            };
            let Ok(notice) = serde_json::from_str::<Notice>(&payload) else {
                continue;
            };
            if notice.origin == service.origin {
                continue;
            }
            let Some(kind) = ChangeKind::parse(&notice.kind) else {
                continue;
            };
            let row = match (notice.data, kind) {
                (Some(data), _) => DocumentRow {
                    id: notice.id,
                    owner: notice.owner,
                    created_at_ms: notice.created,
                    updated_at_ms: notice.updated,
                    version: notice.version,
                    data,
                },
                (None, ChangeKind::Deleted) => DocumentRow {
                    id: notice.id,
                    owner: notice.owner,
                    created_at_ms: notice.created,
                    updated_at_ms: notice.updated,
                    version: notice.version,
                    data: "{}".into(),
                },
                (None, _) => match service
                    .store
                    .get_document(&notice.collection, &notice.id)
                    .await
                {
                    Ok(Some(row)) => row,
                    _ => continue,
                },
            };
            service.changes.publish(&notice.collection, kind, &row);
        }
    }
}

impl Changes {
    /// Tells this node's subscribers of the collection (nothing to do when there are none).
    pub(crate) fn publish(&self, collection: &str, kind: ChangeKind, row: &DocumentRow) {
        let channels = self.channels.lock().expect("realtime channels");
        if let Some(sender) = channels.get(collection)
            && sender.receiver_count() > 0
        {
            let _ = sender.send(Arc::new(Change {
                kind,
                row: row.clone(),
            }));
        }
    }

    fn subscribe(&self, collection: &str) -> broadcast::Receiver<Arc<Change>> {
        let mut channels = self.channels.lock().expect("realtime channels");
        // Drop channels nobody listens to any more, so the map stays small.
        channels.retain(|_, sender| sender.receiver_count() > 0);
        channels
            .entry(collection.to_string())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe()
    }
}

pub(crate) fn routes() -> Router<Arc<DataService>> {
    Router::new()
        .route("/data/v1/collections/{col}/stream", get(collection_stream))
        .route(
            "/data/v1/collections/{col}/docs/{id}/stream",
            get(document_stream),
        )
}

enum Scope {
    Filters(Vec<Filter>),
    Document(String),
}

async fn collection_stream(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ClientAddr>>,
    Path(col): Path<String>,
    uri: Uri,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let mut filters = Vec::new();
    for (key, value) in query_pairs(&uri) {
        match key.as_str() {
            "where" => filters.push(parse_condition(&value).map_err(DataError::BadRequest)?),
            "access_token" => {}
            other => {
                return Err(DataError::BadRequest(format!(
                    "unknown query parameter {other:?}; a stream takes where (and access_token)"
                )));
            }
        }
    }
    let config = service.config(&col).await?;
    refuse_hopeless(&service, &col, &config, &caller, Operation::List)?;
    refuse_revoked(&service, &caller).await?;
    let slot = StreamSlot::take(&service, &caller, client.and_then(|c| c.0.0))?;
    Ok(stream(service, caller, slot, col, Scope::Filters(filters)))
}

async fn document_stream(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ClientAddr>>,
    Path((col, id)): Path<(String, String)>,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let config = service.config(&col).await?;
    refuse_hopeless(&service, &col, &config, &caller, Operation::Get)?;
    refuse_revoked(&service, &caller).await?;
    let slot = StreamSlot::take(&service, &caller, client.and_then(|c| c.0.0))?;
    Ok(stream(service, caller, slot, col, Scope::Document(id)))
}

/// Refuses a subscription up front when no document could ever pass: there is no rule,
/// or the rule is false whatever the document (evaluated with `doc` = null, e.g.
/// `auth != null && …` for an anonymous caller). A rule that needs a document to decide
/// is left to filter each event.
fn refuse_hopeless(
    service: &DataService,
    col: &str,
    config: &crate::CollectionConfig,
    caller: &Caller,
    op: Operation,
) -> Result<(), DataError> {
    if crate::granted(col, caller, op)? {
        return Ok(());
    }
    let Some(rule) = config.rules.get(op) else {
        return service.authorize(col, config, caller, op, None, None);
    };
    let auth = caller.rule_auth();
    let context = gureum_rules::Context {
        auth: auth.as_ref(),
        doc: None,
        data: None,
    };
    match rule.allows(&context) {
        Ok(false) => Err(crate::denied(caller, op)),
        _ => Ok(()),
    }
}

/// What one subscriber's stream carries between events.
struct Subscriber {
    service: Arc<DataService>,
    caller: Caller,
    col: String,
    scope: Scope,
    changes: broadcast::Receiver<Arc<Change>>,
    revocations: broadcast::Receiver<Arc<(String, i64)>>,
    /// When the caller's access token expires; the stream ends then (as Supabase
    /// Realtime closes a channel at the JWT's `exp`): the client reconnects with a fresh
    /// token, so a disabled or signed-out user's stream cannot outlive their token.
    expires: Option<tokio::time::Instant>,
    /// The token's issue time (ms): a revocation of all sessions at or after it ends
    /// the stream at once.
    issued_ms: i64,
    /// Sent `ready` yet.
    ready: bool,
    /// The last event was sent; end after it.
    closing: bool,
    seq: u64,
    _slot: StreamSlot,
}

impl Subscriber {
    /// The next bytes of the stream, or `None` to end it.
    async fn next(&mut self) -> Option<Bytes> {
        if self.closing {
            return None;
        }
        if !self.ready {
            self.ready = true;
            return Some(Bytes::from_static(b"event: ready\ndata: {}\n\n"));
        }
        let op = match self.scope {
            Scope::Filters(_) => Operation::List,
            Scope::Document(_) => Operation::Get,
        };
        loop {
            let keep_alive = tokio::time::Instant::now() + KEEP_ALIVE;
            let wake = self.expires.map_or(keep_alive, |at| at.min(keep_alive));
            let change = tokio::select! {
                received = self.changes.recv() => match received {
                    Err(broadcast::error::RecvError::Closed) => return None,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        return Some(Bytes::from(format!(
                            "event: reset\ndata: {{\"missed\":{missed}}}\n\n"
                        )));
                    }
                    Ok(change) => change,
                },
                revoked = self.revocations.recv() => {
                    if let Ok(revoked) = revoked
                        && self.caller.user_id() == Some(revoked.0.as_str())
                        && self.issued_ms <= revoked.1
                    {
                        self.closing = true;
                        return Some(Bytes::from_static(
                            b"event: revoked\ndata: {\"reason\":\"the user's sessions were revoked (signed out everywhere or disabled); sign in again\"}\n\n",
                        ));
                    }
                    continue;
                }
                () = tokio::time::sleep_until(wake) => {
                    if self.expires.is_some_and(|at| at <= tokio::time::Instant::now()) {
                        self.closing = true;
                        return Some(Bytes::from_static(
                            b"event: token_expired\ndata: {\"reason\":\"the access token expired; reconnect with a fresh one\"}\n\n",
                        ));
                    }
                    return Some(Bytes::from_static(b": keep-alive\n\n"));
                }
            };
            let wanted = match &self.scope {
                Scope::Filters(filters) => matches(filters, &change.row),
                Scope::Document(id) => &change.row.id == id,
            };
            if !wanted {
                continue;
            }
            let doc = doc_json(&change.row);
            let Ok(config) = self.service.config(&self.col).await else {
                continue;
            };
            if self
                .service
                .authorize(&self.col, &config, &self.caller, op, Some(&doc), None)
                .is_err()
            {
                continue;
            }
            self.seq += 1;
            return Some(Bytes::from(format!(
                "id: {}\nevent: {}\ndata: {doc}\n\n",
                self.seq,
                change.kind.event()
            )));
        }
    }
}

/// Refuses a user whose token was issued before all their sessions were revoked, or who
/// is disabled: an access token stays valid for its 15 minutes, but opens no new stream
/// (one that is open ends through [`watch_revocations`]).
async fn refuse_revoked(service: &DataService, caller: &Caller) -> Result<(), DataError> {
    let Caller::User(user) = caller else {
        return Ok(());
    };
    let issued_ms = user
        .claims
        .get("iat")
        .and_then(serde_json::Value::as_i64)
        .map_or(i64::MIN, |iat| iat.saturating_mul(1000));
    match service.store.session_state(&user.uid).await? {
        Some((false, revoked)) if revoked.is_none_or(|at| issued_ms > at) => Ok(()),
        _ => Err(DataError::Unauthorized(
            "this access token's sessions were revoked (signed out everywhere, or the user is disabled); sign in again".into(),
        )),
    }
}

fn stream(
    service: Arc<DataService>,
    caller: Caller,
    slot: StreamSlot,
    col: String,
    scope: Scope,
) -> Response {
    let claim = |name: &str| match &caller {
        Caller::User(user) => user.claims.get(name).and_then(serde_json::Value::as_i64),
        _ => None,
    };
    let now_s = gureum_model::now_ms() / 1000;
    let expires = claim("exp").map(|exp| {
        tokio::time::Instant::now() + Duration::from_secs(u64::try_from(exp - now_s).unwrap_or(0))
    });
    let issued_ms = claim("iat").map_or(i64::MIN, |iat| iat.saturating_mul(1000));
    let subscriber = Subscriber {
        changes: service.changes.subscribe(&col),
        revocations: service.revocations.subscribe(),
        service,
        caller,
        col,
        scope,
        expires,
        issued_ms,
        ready: false,
        closing: false,
        seq: 0,
        _slot: slot,
    };
    let body = futures::stream::unfold(subscriber, |mut subscriber| async move {
        let bytes = subscriber.next().await?;
        Some((Ok::<_, Infallible>(bytes), subscriber))
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Most streams one user holds on a node (every tab of every device), and most one client
/// address holds (IPv6: per /64), signed in or not.
pub const MAX_STREAMS_PER_USER: usize = 32;
/// See [`MAX_STREAMS_PER_USER`].
pub const MAX_STREAMS_PER_ADDRESS: usize = 256;
/// How often a node looks for users whose sessions were all revoked (by any node).
const REVOCATION_POLL: Duration = Duration::from_secs(2);

/// Open streams per key (`user:UID`, `addr:SCOPE`) on this node.
#[derive(Default)]
pub(crate) struct StreamCounts(Mutex<HashMap<String, usize>>);

/// One stream's place in [`StreamCounts`], given back when the stream ends.
pub(crate) struct StreamSlot {
    service: std::sync::Weak<DataService>,
    keys: Vec<String>,
}

impl StreamSlot {
    /// Counts a new stream of `caller` from `client`, or refuses it over a limit.
    fn take(
        service: &Arc<DataService>,
        caller: &Caller,
        client: Option<std::net::IpAddr>,
    ) -> Result<StreamSlot, DataError> {
        let mut limits = Vec::new();
        if let Some(uid) = caller.user_id() {
            limits.push((format!("user:{uid}"), MAX_STREAMS_PER_USER, "this user"));
        }
        if let Some(ip) = client
            && !caller.is_server()
        {
            let scope = gureum_auth::ratelimit::client_scope(ip);
            limits.push((
                format!("addr:{scope}"),
                MAX_STREAMS_PER_ADDRESS,
                "this address",
            ));
        }
        let mut counts = service.streams.0.lock().unwrap_or_else(|e| e.into_inner());
        for (key, limit, whom) in &limits {
            if counts.get(key).copied().unwrap_or(0) >= *limit {
                return Err(DataError::TooManyStreams(format!(
                    "{whom} already holds {limit} realtime streams on this server; close one (an EventSource per page is enough: one stream can carry a whole collection)"
                )));
            }
        }
        for (key, _, _) in &limits {
            *counts.entry(key.clone()).or_insert(0) += 1;
        }
        Ok(StreamSlot {
            service: Arc::downgrade(service),
            keys: limits.into_iter().map(|(key, _, _)| key).collect(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let Some(service) = self.service.upgrade() else {
            return;
        };
        let mut counts = service.streams.0.lock().unwrap_or_else(|e| e.into_inner());
        for key in &self.keys {
            if let Some(count) = counts.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(key);
                }
            }
        }
    }
}

/// Polls the store for users whose sessions were all revoked and tells this node's
/// streams; one indexed query per node every [`REVOCATION_POLL`], whatever the number
/// of streams, and it sees revocations made on every node.
pub(crate) async fn watch_revocations(service: std::sync::Weak<DataService>) {
    // Each poll looks back a little before the newest time seen, so a revocation whose
    // transaction committed late is not skipped; `sent` keeps repeats from going out twice.
    const OVERLAP_MS: i64 = 10_000;
    let mut newest = gureum_model::now_ms();
    let mut sent: HashMap<String, i64> = HashMap::new();
    let mut tick = tokio::time::interval(REVOCATION_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(service) = service.upgrade() else {
            return;
        };
        let found = match service.store.users_revoked_since(newest - OVERLAP_MS).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "looking for revoked sessions failed; retrying");
                continue;
            }
        };
        for (uid, at) in found {
            newest = newest.max(at);
            if sent.get(&uid) == Some(&at) {
                continue;
            }
            sent.insert(uid.clone(), at);
            let _ = service.revocations.send(Arc::new((uid, at)));
        }
        sent.retain(|_, at| *at > newest - 2 * OVERLAP_MS);
    }
}
