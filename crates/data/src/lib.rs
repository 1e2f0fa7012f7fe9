//! Backend data services of the public listener — what Firebase gives a web app without a
//! server: document collections (`/data/v1/collections/{col}/docs`) guarded by
//! per-collection CEL rules, realtime change streams over Server-Sent Events, files
//! attached to collections, and the functions' key-value API (`/kv/v1`).
//!
//! The gateway resolves the [`Caller`] (anonymous, user JWT, function token, admin token)
//! and passes it as a request extension; this crate decides what each may do. Collection
//! configs are cached in memory and re-read from the store at most every [`CONFIG_TTL`],
//! so a rule change made through another node applies within that time.
//!
//! A handler reads the collection's config, checks the operation's CEL rule, runs the
//! store call and, for a write, publishes the change to this node's realtime subscribers
//! (a tokio broadcast per collection; each subscriber filters by its `where` and its
//! rules, see `realtime.rs`). The admin, and a function whose `[permissions] data` covers
//! the operation, skip the rule (`granted`); a function without that grant is refused,
//! since rules written for users say nothing about it. An update or a delete reads the
//! document first, for the rule, and then writes only if its version is unchanged.
//!
//! Listings follow "rules are not filters" (Firestore's way): a listing is allowed or
//! refused from its query alone, before anything is read. This was chosen over an
//! RLS-style translation of rules to SQL because CEL has no general SQL form, and a
//! refusal can name the `where` the query lacks.
//!
//! Errors are [`DataError`], answered through [`gureum_api_types::render`].

mod config;
mod documents;
mod files;
mod kv;
mod query;
mod realtime;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use axum::Router;
use axum::response::{IntoResponse, Response};
use gureum_auth::Caller;
use gureum_rules::{Context, Operation};
use gureum_store::{Store, StoreError};
use http::StatusCode;
use serde_json::Value;

pub use config::{
    CollectionConfig, CollectionConfigInput, DEFAULT_MAX_FILE_BYTES, FileLimitsInput,
};
pub use query::{matches, parse_condition, parse_listing};

/// How long a cached collection config is trusted before the store is asked again.
pub const CONFIG_TTL: Duration = Duration::from_secs(2);

/// Errors of the data services, each with its HTTP status and code.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The request is malformed; the message says how to fix it.
    #[error("{0}")]
    BadRequest(String),
    /// Credentials are needed.
    #[error("{0}")]
    Unauthorized(String),
    /// The rules deny it.
    #[error("{0}")]
    Forbidden(String),
    /// No such document, file or key.
    #[error("{0}")]
    NotFound(String),
    /// `If-Match` named another version.
    #[error("the document is at version {current}; re-read it and retry (If-Match: \"{current}\")")]
    VersionMismatch {
        /// The stored version.
        current: i64,
    },
    /// Other writers kept winning.
    #[error("{0}")]
    Conflict(String),
    /// The body is over the collection's limit.
    #[error("{0}")]
    TooLarge(String),
    /// The media type is not accepted.
    #[error("{0}")]
    UnsupportedType(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A local file step failed.
    #[error("{0}")]
    Io(String),
    /// The caller holds as many streams as one may.
    #[error("{0}")]
    TooManyStreams(String),
}

impl gureum_api_types::PublicError for DataError {
    fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn code(&self) -> &str {
        self.status_and_code().1
    }
}

impl DataError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            DataError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            DataError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            DataError::Forbidden(_) => (StatusCode::FORBIDDEN, "permission_denied"),
            DataError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            DataError::VersionMismatch { .. } => {
                (StatusCode::PRECONDITION_FAILED, "version_mismatch")
            }
            DataError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            DataError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            DataError::UnsupportedType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            DataError::TooManyStreams(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_streams"),
            DataError::Store(StoreError::Invalid(_)) => (StatusCode::BAD_REQUEST, "bad_request"),
            DataError::Store(_) | DataError::Io(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl IntoResponse for DataError {
    fn into_response(self) -> Response {
        if self.status_and_code().0 == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "data service failed");
        }
        gureum_api_types::render(&self).map(axum::body::Body::from)
    }
}

/// The platform's error answer for a message composed on the spot.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    gureum_api_types::render(&gureum_api_types::Failure::new(status, code, message))
        .map(axum::body::Body::from)
}

/// The data services of one node.
pub struct DataService {
    store: Store,
    configs: RwLock<HashMap<String, (Instant, Arc<CollectionConfig>)>>,
    changes: realtime::Changes,
    /// Where uploads are spooled while they are hashed (under the data dir).
    upload_dir: PathBuf,
    /// Key of signed download URLs (shared by every node through the store).
    url_key: Vec<u8>,
    /// Serializes config writes on this node (index changes diff against the old config).
    config_write: tokio::sync::Mutex<()>,
    uploads: Mutex<u64>,
    /// This node's id in cross-node change notices.
    origin: String,
    /// Seals listing cursors: a cursor holds a sort value of a document the rules may
    /// hide from the caller, so it travels encrypted (ChaCha20-Poly1305), not as base64.
    cursor_key: ring::aead::LessSafeKey,
    /// Streams open on this node, per user and per client address (see `realtime.rs`).
    streams: realtime::StreamCounts,
    /// Users whose sessions were all revoked, as this node learns of it (any node may
    /// have revoked them): `(uid, revoked_before_ms)`.
    revocations: broadcast::Sender<Arc<(String, i64)>>,
}

impl std::fmt::Debug for DataService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataService").finish_non_exhaustive()
    }
}

/// Setting that holds the key of signed file URLs.
pub const FILE_URL_KEY_SETTING: &str = "file_url_key";

impl DataService {
    /// The services over `store`; uploads are spooled under `data_dir/uploads`.
    pub async fn new(
        store: Store,
        data_dir: &std::path::Path,
    ) -> Result<Arc<DataService>, DataError> {
        let fresh: [u8; 32] = rand::random();
        let key = store
            .setting_or_insert(FILE_URL_KEY_SETTING, &hex::encode(fresh))
            .await?;
        let url_key = hex::decode(key.trim())
            .map_err(|_| DataError::Io(format!("setting {FILE_URL_KEY_SETTING} is not hex")))?;
        let upload_dir = data_dir.join("uploads");
        tokio::fs::create_dir_all(&upload_dir)
            .await
            .map_err(|e| DataError::Io(format!("creating {}: {e}", upload_dir.display())))?;
        // Spool files of uploads a crash interrupted (never acknowledged) are garbage.
        if let Ok(mut entries) = tokio::fs::read_dir(&upload_dir).await {
            while let Ok(Some(entry)) = entries.next_entry().await {
                if entry.path().extension().is_some_and(|e| e == "part") {
                    let _ = tokio::fs::remove_file(entry.path()).await;
                }
            }
        }
        let notifications = store.listen(realtime::NOTIFY_CHANNEL).await?;
        let service = Arc::new(DataService {
            store,
            configs: RwLock::new(HashMap::new()),
            changes: realtime::Changes::default(),
            upload_dir,
            url_key: url_key.clone(),
            config_write: tokio::sync::Mutex::new(()),
            uploads: Mutex::new(0),
            origin: new_id(),
            cursor_key: cursor_key(&url_key),
            streams: realtime::StreamCounts::default(),
            revocations: broadcast::channel(1024).0,
        });
        if let Some(notifications) = notifications {
            tokio::spawn(DataService::relay(Arc::downgrade(&service), notifications));
        }
        tokio::spawn(realtime::watch_revocations(Arc::downgrade(&service)));
        Ok(service)
    }

    /// The routes under `/data/v1` and `/kv/v1`; handlers expect a [`Caller`] extension.
    pub fn router(self: &Arc<Self>) -> Router {
        documents::routes()
            .merge(realtime::routes())
            .merge(files::routes())
            .merge(kv::routes())
            .with_state(self.clone())
    }

    /// The store the services write to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A collection's config (cached for [`CONFIG_TTL`]); an unconfigured collection
    /// gets [`CollectionConfig::unconfigured`].
    pub async fn config(&self, collection: &str) -> Result<Arc<CollectionConfig>, DataError> {
        if let Some((at, config)) = self.configs.read().expect("config cache").get(collection)
            && at.elapsed() < CONFIG_TTL
        {
            return Ok(config.clone());
        }
        let config = self
            .stored_config(collection)
            .await?
            .unwrap_or_else(CollectionConfig::unconfigured);
        Ok(self.cache(collection, config))
    }

    /// Validates and stores a collection's config, building or dropping its indexes.
    pub async fn set_config(
        &self,
        collection: &str,
        input: CollectionConfigInput,
    ) -> Result<Arc<CollectionConfig>, DataError> {
        check_collection(collection)?;
        let config = CollectionConfig::compile(input).map_err(DataError::BadRequest)?;
        let _guard = self.config_write.lock().await;
        // A stored config that no longer compiles must not block its replacement.
        let old = self.stored_config(collection).await.ok().flatten();
        let text = serde_json::to_string(&config.input).expect("config serializes");
        self.store
            .put_collection(
                collection,
                &text,
                &config.indexes,
                &old.map(|c| c.indexes).unwrap_or_default(),
            )
            .await?;
        Ok(self.cache(collection, config))
    }

    fn cache(&self, collection: &str, config: CollectionConfig) -> Arc<CollectionConfig> {
        let config = Arc::new(config);
        self.configs
            .write()
            .expect("config cache")
            .insert(collection.to_string(), (Instant::now(), config.clone()));
        config
    }

    /// The stored config, compiled; one that no longer compiles (stored by another
    /// version of gureum) is an error naming the collection.
    async fn stored_config(&self, collection: &str) -> Result<Option<CollectionConfig>, DataError> {
        let Some(text) = self.store.collection_config(collection).await? else {
            return Ok(None);
        };
        let input: CollectionConfigInput = serde_json::from_str(&text)
            .map_err(|e| DataError::Io(format!("stored config of {collection}: {e}")))?;
        CollectionConfig::compile(input).map(Some).map_err(|e| {
            DataError::Io(format!(
                "stored config of {collection} no longer compiles: {e}"
            ))
        })
    }

    /// Every configured collection with its config as written and document count.
    pub async fn list_configs(&self) -> Result<Vec<(String, Value, u64)>, DataError> {
        let mut out = Vec::new();
        for (name, text) in self.store.list_collections().await? {
            let config: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let count = self.store.count_documents(&name).await?;
            out.push((name, config, count));
        }
        Ok(out)
    }

    /// Removes a collection: config, indexes, documents, files.
    pub async fn delete_collection(&self, collection: &str) -> Result<bool, DataError> {
        check_collection(collection)?;
        let _guard = self.config_write.lock().await;
        // A stored config that no longer compiles must not block its replacement.
        let old = self.stored_config(collection).await.ok().flatten();
        let deleted = self
            .store
            .delete_collection(collection, &old.map(|c| c.indexes).unwrap_or_default())
            .await?;
        self.configs
            .write()
            .expect("config cache")
            .remove(collection);
        Ok(deleted)
    }

    /// Checks `op` on `collection` for `caller`: the admin and functions granted `op`
    /// pass; functions without the grant are refused; users and anonymous callers need a
    /// rule that evaluates to true (an evaluation error denies).
    #[allow(clippy::too_many_arguments)]
    fn authorize(
        &self,
        collection: &str,
        config: &CollectionConfig,
        caller: &Caller,
        op: Operation,
        doc: Option<&Value>,
        data: Option<&Value>,
    ) -> Result<(), DataError> {
        if granted(collection, caller, op)? {
            return Ok(());
        }
        let Some(rule) = config.rules.get(op) else {
            return Err(DataError::Forbidden(format!(
                "no {op} rule allows this; the collection's rules are set with `gureum collections set` (missing rules deny)"
            )));
        };
        let auth = caller.rule_auth();
        let context = Context {
            auth: auth.as_ref(),
            doc,
            data,
        };
        match rule.allows(&context) {
            Ok(true) => Ok(()),
            Ok(false) => Err(denied(caller, op)),
            Err(error) => {
                tracing::debug!(%error, %op, "rule evaluation failed; denied");
                Err(denied(caller, op))
            }
        }
    }

    /// Whether `caller` may run a listing: the `list` rule must hold for every document
    /// a query with `filters` can return, decided from them alone (`where … =` and `in`
    /// fix fields; see [`gureum_rules::Rule::holds_for_query`]). Nothing stored is read, so
    /// no answer, cursor, status or timing depends on documents the rule hides. A query the
    /// rule does not bound is refused with the `where` it lacks, as Firestore refuses them.
    fn authorize_listing(
        &self,
        collection: &str,
        config: &CollectionConfig,
        caller: &Caller,
        filters: &[gureum_store::Filter],
    ) -> Result<(), DataError> {
        use gureum_rules::QueryVerdict;
        if granted(collection, caller, Operation::List)? {
            return Ok(());
        }
        let Some(rule) = config.rules.get(Operation::List) else {
            return self.authorize(collection, config, caller, Operation::List, None, None);
        };
        let auth = caller.rule_auth();
        let verdict = query::pinned_alternatives(filters)
            .iter()
            .map(|pinned| rule.holds_for_query(auth.as_ref(), pinned))
            .fold(QueryVerdict::Holds, |all, one| match (all, one) {
                (QueryVerdict::Denied, _) | (_, QueryVerdict::Denied) => QueryVerdict::Denied,
                (QueryVerdict::Unbounded(read), _) | (_, QueryVerdict::Unbounded(read)) => {
                    QueryVerdict::Unbounded(read)
                }
                _ => QueryVerdict::Holds,
            });
        match verdict {
            QueryVerdict::Holds => Ok(()),
            QueryVerdict::Denied => Err(denied(caller, Operation::List)),
            QueryVerdict::Unbounded(read) => Err(DataError::Forbidden(unbounded_listing(&read))),
        }
    }
}

/// Whether `caller` skips the rules for `op` on `collection`: the admin does, and a
/// function whose `[permissions] data` covers `op`. A function without that grant is
/// refused with the grant to add (its token is not a user's: rules written for users say
/// nothing about it); users and anonymous callers are left to the rules (`Ok(false)`).
fn granted(collection: &str, caller: &Caller, op: Operation) -> Result<bool, DataError> {
    use gureum_model::DataAccess;
    let needed = match op {
        Operation::List | Operation::Get => DataAccess::Read,
        Operation::Create | Operation::Update | Operation::Delete => DataAccess::Write,
    };
    match (caller.data_grant(collection), caller) {
        (Some(level), _) if level >= needed => Ok(true),
        (_, Caller::Function(function)) => Err(DataError::Forbidden(format!(
            "function {:?} (version {}) may not {op} in collection {collection:?}: add data = [\"{collection}:{needed}\"] to [permissions] in its gureum.toml and deploy it, or forward the signed-in user's access token to act under the collection's rules",
            function.name, function.version
        ))),
        _ => Ok(false),
    }
}

/// The refusal of a listing whose `where` clauses do not bound the `list` rule, naming the
/// clause to add for each field the rule read.
fn unbounded_listing(read: &[String]) -> String {
    let fields: Vec<String> = read
        .iter()
        .filter_map(|path| {
            let field = path.strip_prefix("doc.")?;
            let field = field.strip_prefix("data.").unwrap_or(field);
            (field != "data").then(|| format!("where={field} = VALUE"))
        })
        .collect();
    if fields.is_empty() {
        return "the collection's list rule reads the whole document, so no query can show that it holds for every document returned; list through a function, or write the rule over single fields (rules are not filters)".into();
    }
    format!(
        "the collection's list rule reads {}, which this query leaves open, so it cannot hold for every document returned (rules are not filters); add {} with the value the rule needs, e.g. where=owner = \"<your uid>\" for an owner rule",
        read.join(", "),
        fields.join(" and ")
    )
}

fn denied(caller: &Caller, op: Operation) -> DataError {
    if matches!(caller, Caller::Anonymous) {
        DataError::Unauthorized(format!(
            "the {op} rule denies anonymous callers; sign in and send Authorization: Bearer <access token>"
        ))
    } else {
        DataError::Forbidden(format!("the collection's {op} rule denies this"))
    }
}

/// The cursor key: HMAC-SHA256 of a label under the installation's URL-signing key, so
/// every node seals and opens the same cursors without another stored secret.
fn cursor_key(url_key: &[u8]) -> ring::aead::LessSafeKey {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(url_key).expect("HMAC takes any key");
    mac.update(b"gureum listing cursor v1");
    let bytes = mac.finalize().into_bytes();
    let key =
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &bytes).expect("a 32-byte key");
    ring::aead::LessSafeKey::new(key)
}

impl DataService {
    /// An opaque, authenticated, encrypted form of `cursor`.
    fn seal_cursor(&self, cursor: &str) -> String {
        use base64::Engine;
        let nonce_bytes: [u8; 12] = rand::random();
        let mut sealed = cursor.as_bytes().to_vec();
        self.cursor_key
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce_bytes),
                ring::aead::Aad::empty(),
                &mut sealed,
            )
            .expect("sealing a short buffer");
        let mut out = nonce_bytes.to_vec();
        out.extend(sealed);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
    }

    /// The cursor a [`seal_cursor`](Self::seal_cursor) made, if `text` is one.
    fn open_cursor(&self, text: &str) -> Option<String> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let mut sealed = sealed.to_vec();
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self
            .cursor_key
            .open_in_place(nonce, ring::aead::Aad::empty(), &mut sealed)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

/// Refuses collection names that are not `[a-z0-9_-]{1,63}`.
fn check_collection(name: &str) -> Result<(), DataError> {
    if gureum_store::valid_collection(name) {
        Ok(())
    } else {
        Err(DataError::BadRequest(format!(
            "collection name {name:?}: use 1-63 of a-z 0-9 _ - starting with a letter or digit"
        )))
    }
}

/// A fresh id: UUIDv7 (time-ordered) in simple hex.
fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The request's query string as pairs, percent-decoded (`+` is a space).
fn query_pairs(uri: &http::Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|query| {
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}
