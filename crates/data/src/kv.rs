//! `/kv/v1/buckets/{bucket}/keys[/{key}]`: the functions' key-value store over HTTP, for
//! lambda functions (wasm functions use `wasi:keyvalue` on the same tables). Only a
//! function token may call it, and the function's name scopes every bucket.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use gureum_auth::Caller;
use http::{StatusCode, Uri};
use serde_json::{Value, json};

use crate::{DataError, DataService, query_pairs};

/// Largest value (matches a document's limit).
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

pub(crate) fn routes() -> Router<Arc<DataService>> {
    Router::new()
        .route("/kv/v1/buckets/{bucket}/keys", get(list))
        .route(
            "/kv/v1/buckets/{bucket}/keys/{key}",
            get(read).put(write).delete(remove),
        )
        .route(
            "/kv/v1/buckets/{bucket}/keys/{key}/increment",
            post(increment),
        )
        .layer(DefaultBodyLimit::max(MAX_VALUE_BYTES))
}

/// The function whose buckets these are; 401 for anyone else.
fn scope(caller: &Caller, bucket: &str) -> Result<String, DataError> {
    let ok = !bucket.is_empty()
        && bucket.len() <= 64
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        return Err(DataError::BadRequest(format!(
            "bucket name {bucket:?}: use 1-64 of A-Z a-z 0-9 _ . -"
        )));
    }
    match caller {
        Caller::Function(function) => Ok(function.name.clone()),
        _ => Err(DataError::Unauthorized(
            "the key-value API is for functions: send Authorization: Bearer $GUREUM_FUNCTION_TOKEN"
                .into(),
        )),
    }
}

async fn read(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    Path((bucket, key)): Path<(String, String)>,
) -> Result<Response, DataError> {
    let scope = scope(&caller, &bucket)?;
    match service.store.kv_get(&scope, &bucket, &key).await? {
        Some(value) => Ok((
            [(http::header::CONTENT_TYPE, "application/octet-stream")],
            value,
        )
            .into_response()),
        None => Err(DataError::NotFound(format!(
            "no key {key:?} in bucket {bucket:?}"
        ))),
    }
}

async fn write(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    Path((bucket, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, DataError> {
    let scope = scope(&caller, &bucket)?;
    service
        .store
        .kv_set_many(&scope, &bucket, &[(key, body.to_vec())])
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    Path((bucket, key)): Path<(String, String)>,
) -> Result<Response, DataError> {
    let scope = scope(&caller, &bucket)?;
    service
        .store
        .kv_delete_many(&scope, &bucket, &[key])
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn increment(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    Path((bucket, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, DataError> {
    let scope = scope(&caller, &bucket)?;
    let delta = if body.is_empty() {
        1
    } else {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("delta").and_then(Value::as_i64))
            .ok_or_else(|| {
                DataError::BadRequest(
                    "the body must be {\"delta\": <integer>} (or empty for 1)".into(),
                )
            })?
    };
    let value = service
        .store
        .kv_increment(&scope, &bucket, &key, delta)
        .await?;
    Ok(Json(json!({"value": value})).into_response())
}

async fn list(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    Path(bucket): Path<String>,
    uri: Uri,
) -> Result<Response, DataError> {
    let scope = scope(&caller, &bucket)?;
    let cursor = query_pairs(&uri)
        .into_iter()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v);
    let (keys, next) = service
        .store
        .kv_list(&scope, &bucket, cursor.as_deref())
        .await?;
    Ok(Json(json!({"keys": keys, "cursor": next})).into_response())
}
