//! Realtime: `GET /data/v1/collections/{col}/stream?where=…` and
//! `GET /data/v1/collections/{col}/docs/{id}/stream` answer Server-Sent Events
//! (`created`, `updated`, `deleted`, each with the document as JSON) for every write this
//! node makes, filtered per subscriber by the same `where` conditions and by the rules
//! (`list` for a collection stream, `get` for a document stream) as the subscriber.
//!
//! On PostgreSQL every change is also sent to the other nodes (LISTEN/NOTIFY, see
//! [`DataService::published`]), whose subscribers get it the same way.
//!
//! Each collection has a broadcast channel; a subscriber that falls more than
//! [`CHANNEL_CAPACITY`] changes behind gets `event: reset` (re-read, then keep
//! listening) instead of silently missing changes.

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
use gureum_auth::Caller;
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
    refuse_hopeless(&service, &config, &caller, Operation::List)?;
    Ok(stream(service, caller, col, Scope::Filters(filters)))
}

async fn document_stream(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    Path((col, id)): Path<(String, String)>,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let config = service.config(&col).await?;
    refuse_hopeless(&service, &config, &caller, Operation::Get)?;
    Ok(stream(service, caller, col, Scope::Document(id)))
}

/// Refuses a subscription up front when no document could ever pass: there is no rule,
/// or the rule is false whatever the document (evaluated with `doc` = null, e.g.
/// `auth != null && …` for an anonymous caller). A rule that needs a document to decide
/// is left to filter each event.
fn refuse_hopeless(
    service: &DataService,
    config: &crate::CollectionConfig,
    caller: &Caller,
    op: Operation,
) -> Result<(), DataError> {
    if caller.is_trusted() {
        return Ok(());
    }
    let Some(rule) = config.rules.get(op) else {
        return service.authorize(config, caller, op, None, None);
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

fn stream(service: Arc<DataService>, caller: Caller, col: String, scope: Scope) -> Response {
    let receiver = service.changes.subscribe(&col);
    let op = match scope {
        Scope::Filters(_) => Operation::List,
        Scope::Document(_) => Operation::Get,
    };
    let first = Bytes::from_static(b"event: ready\ndata: {}\n\n");
    let state = (Some(first), receiver, service, caller, col, scope, 0_u64);
    let body = futures::stream::unfold(state, move |state| async move {
        let (first, mut receiver, service, caller, col, scope, mut seq) = state;
        if let Some(first) = first {
            return Some((
                Ok::<_, Infallible>(first),
                (None, receiver, service, caller, col, scope, seq),
            ));
        }
        loop {
            let received = tokio::time::timeout(KEEP_ALIVE, receiver.recv()).await;
            let change = match received {
                Err(_) => {
                    let ping = Bytes::from_static(b": keep-alive\n\n");
                    return Some((Ok(ping), (None, receiver, service, caller, col, scope, seq)));
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                Ok(Err(broadcast::error::RecvError::Lagged(missed))) => {
                    let reset = format!("event: reset\ndata: {{\"missed\":{missed}}}\n\n");
                    return Some((
                        Ok(Bytes::from(reset)),
                        (None, receiver, service, caller, col, scope, seq),
                    ));
                }
                Ok(Ok(change)) => change,
            };
            let wanted = match &scope {
                Scope::Filters(filters) => matches(filters, &change.row),
                Scope::Document(id) => &change.row.id == id,
            };
            if !wanted {
                continue;
            }
            let doc = doc_json(&change.row);
            let Ok(config) = service.config(&col).await else {
                continue;
            };
            if service
                .authorize(&config, &caller, op, Some(&doc), None)
                .is_err()
            {
                continue;
            }
            seq += 1;
            let event = format!("id: {seq}\nevent: {}\ndata: {doc}\n\n", change.kind.event());
            return Some((
                Ok(Bytes::from(event)),
                (None, receiver, service, caller, col, scope, seq),
            ));
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
