//! `/data/v1/collections/{col}/docs[/{id}]`: create, list, get, replace, merge-patch and
//! delete documents, each checked against the collection's rules. Writes use the
//! document's version for optimistic concurrency (`ETag` / `If-Match`) and publish a
//! change to this node's realtime subscribers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use gureum_auth::Caller;
use gureum_rules::Operation;
use gureum_store::{DocumentRow, WriteOutcome};
use http::header::{ETAG, IF_MATCH, LOCATION};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::{Map, Value, json};

use crate::query::{encode_cursor, parse_listing};
use crate::realtime::ChangeKind;
use crate::{DataError, DataService, check_collection, new_id, query_pairs};

/// Largest document (Firestore's limit too).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Attempts of a merge patch racing other writers before giving up with 409.
const PATCH_ATTEMPTS: usize = 5;

type Service = State<Arc<DataService>>;

pub(crate) fn routes() -> Router<Arc<DataService>> {
    Router::new()
        .route("/data/v1/collections/{col}/docs", post(create).get(list))
        .route(
            "/data/v1/collections/{col}/docs/{id}",
            get(read).put(replace).patch(patch).delete(remove),
        )
        .layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES))
}

/// A document as the API shows it.
pub(crate) fn doc_json(row: &DocumentRow) -> Value {
    json!({
        "id": row.id,
        "owner": row.owner,
        "created": row.created_at_ms,
        "updated": row.updated_at_ms,
        "version": row.version,
        "data": serde_json::from_str::<Value>(&row.data).unwrap_or(Value::Null),
    })
}

fn with_etag(status: StatusCode, row: &DocumentRow) -> Response {
    let mut response = (status, Json(doc_json(row))).into_response();
    response.headers_mut().insert(
        ETAG,
        HeaderValue::from_str(&format!("\"{}\"", row.version)).expect("digits"),
    );
    response
}

/// The object a write sends.
fn body_object(body: &Bytes) -> Result<Map<String, Value>, DataError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(DataError::BadRequest(format!(
            "the body must be a JSON object (the document's fields); got {}",
            kind(&other)
        ))),
        Err(error) => Err(DataError::BadRequest(format!(
            "the body is not JSON: {error}"
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The version `If-Match` requires, if any (`*` requires none).
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, DataError> {
    let Some(value) = headers.get(IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| {
            DataError::BadRequest(format!(
                "If-Match: {text:?} is not a document version; send the ETag you read, e.g. \"3\""
            ))
        })
}

async fn create(
    State(service): Service,
    Extension(caller): Extension<Caller>,
    Path(col): Path<String>,
    body: Bytes,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let data = Value::Object(body_object(&body)?);
    let config = service.config(&col).await?;
    service.authorize(&col, &config, &caller, Operation::Create, None, Some(&data))?;
    let now = gureum_model::now_ms();
    let row = DocumentRow {
        id: new_id(),
        owner: caller.owner(),
        created_at_ms: now,
        updated_at_ms: now,
        version: 1,
        data: data.to_string(),
    };
    service.store.insert_document(&col, &row).await?;
    service.published(&col, ChangeKind::Created, &row).await;
    let mut response = with_etag(StatusCode::CREATED, &row);
    if let Ok(location) =
        HeaderValue::from_str(&format!("/data/v1/collections/{col}/docs/{}", row.id))
    {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

async fn list(
    State(service): Service,
    Extension(caller): Extension<Caller>,
    Path(col): Path<String>,
    uri: Uri,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let mut pairs = query_pairs(&uri);
    for (key, value) in &mut pairs {
        if key == "cursor" {
            *value = service.open_cursor(value).ok_or_else(|| {
                DataError::BadRequest(
                    "cursor: not a cursor this listing returned; start again without it".into(),
                )
            })?;
        }
    }
    let listing = parse_listing(&pairs).map_err(DataError::BadRequest)?;
    let config = service.config(&col).await?;
    service.authorize_listing(&col, &config, &caller, &listing.query.filters)?;
    let rows = service.store.query_documents(&col, &listing.query).await?;
    let next_cursor = (rows.len() == listing.query.limit as usize)
        .then(|| {
            rows.last()
                .map(|row| service.seal_cursor(&encode_cursor(&listing.query, row)))
        })
        .flatten();
    let docs: Vec<Value> = rows.iter().map(doc_json).collect();
    Ok(Json(json!({"docs": docs, "next_cursor": next_cursor})).into_response())
}

async fn stored(service: &DataService, col: &str, id: &str) -> Result<DocumentRow, DataError> {
    service
        .store
        .get_document(col, id)
        .await?
        .ok_or_else(|| DataError::NotFound(format!("no document {id:?} in collection {col:?}")))
}

/// The stored document, or the answer for a missing one: 404 only for a caller whose
/// rule could allow the operation without a document (trusted callers, rules that do not
/// read `doc`); everyone else gets the same denial as for an existing document they may
/// not touch, so whether a document exists does not leak (as in Firestore).
async fn existing(
    service: &DataService,
    config: &crate::CollectionConfig,
    caller: &Caller,
    op: Operation,
    col: &str,
    id: &str,
) -> Result<DocumentRow, DataError> {
    match stored(service, col, id).await {
        Ok(row) => Ok(row),
        Err(not_found) => {
            service.authorize(col, config, caller, op, None, None)?;
            Err(not_found)
        }
    }
}

async fn readable(
    service: &DataService,
    caller: &Caller,
    col: &str,
    id: &str,
) -> Result<(DocumentRow, Value), DataError> {
    let config = service.config(col).await?;
    let row = existing(service, &config, caller, Operation::Get, col, id).await?;
    let doc = doc_json(&row);
    service.authorize(col, &config, caller, Operation::Get, Some(&doc), None)?;
    Ok((row, doc))
}

async fn read(
    State(service): Service,
    Extension(caller): Extension<Caller>,
    Path((col, id)): Path<(String, String)>,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let (row, _) = readable(&service, &caller, &col, &id).await?;
    Ok(with_etag(StatusCode::OK, &row))
}

async fn write(
    service: &DataService,
    caller: &Caller,
    col: &str,
    id: &str,
    expected: Option<i64>,
    new_data: impl Fn(&Value) -> Value,
) -> Result<Response, DataError> {
    let config = service.config(col).await?;
    for _ in 0..PATCH_ATTEMPTS {
        let row = existing(service, &config, caller, Operation::Update, col, id).await?;
        let doc = doc_json(&row);
        let data = new_data(&doc["data"]);
        service.authorize(
            col,
            &config,
            caller,
            Operation::Update,
            Some(&doc),
            Some(&data),
        )?;
        // Only after the rule: a denied caller learns nothing of the version.
        if let Some(expected) = expected
            && expected != row.version
        {
            return Err(DataError::VersionMismatch {
                current: row.version,
            });
        }
        if data.to_string().len() > MAX_DOCUMENT_BYTES {
            return Err(DataError::TooLarge(format!(
                "the document would be over {MAX_DOCUMENT_BYTES} bytes"
            )));
        }
        // The write is conditional on the version read, so a racing writer is never
        // overwritten blindly: with If-Match the caller hears of it, without it the
        // change is applied again on the newer document.
        match service
            .store
            .update_document(
                col,
                id,
                Some(row.version),
                &data.to_string(),
                gureum_model::now_ms(),
            )
            .await?
        {
            WriteOutcome::Done(updated) => {
                service.published(col, ChangeKind::Updated, &updated).await;
                return Ok(with_etag(StatusCode::OK, &updated));
            }
            WriteOutcome::NotFound => {
                return Err(DataError::NotFound(format!(
                    "no document {id:?} in collection {col:?}"
                )));
            }
            WriteOutcome::VersionMismatch(current) if expected.is_some() => {
                return Err(DataError::VersionMismatch { current });
            }
            WriteOutcome::VersionMismatch(_) => continue,
        }
    }
    Err(DataError::Conflict(format!(
        "document {id:?} kept changing during {PATCH_ATTEMPTS} attempts; retry"
    )))
}

async fn replace(
    State(service): Service,
    Extension(caller): Extension<Caller>,
    Path((col, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let expected = if_match(&headers)?;
    let data = Value::Object(body_object(&body)?);
    write(&service, &caller, &col, &id, expected, |_| data.clone()).await
}

async fn patch(
    State(service): Service,
    Extension(caller): Extension<Caller>,
    Path((col, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let expected = if_match(&headers)?;
    let patch = Value::Object(body_object(&body)?);
    write(&service, &caller, &col, &id, expected, |current| {
        let mut merged = current.clone();
        merge_patch(&mut merged, &patch);
        merged
    })
    .await
}

async fn remove(
    State(service): Service,
    Extension(caller): Extension<Caller>,
    Path((col, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let expected = if_match(&headers)?;
    let config = service.config(&col).await?;
    let row = existing(&service, &config, &caller, Operation::Delete, &col, &id).await?;
    service.authorize(
        &col,
        &config,
        &caller,
        Operation::Delete,
        Some(&doc_json(&row)),
        None,
    )?;
    // The rule saw this version: delete exactly it (a stale If-Match is 412, never a
    // delete of a version the rule did not see).
    if let Some(expected) = expected
        && expected != row.version
    {
        return Err(DataError::VersionMismatch {
            current: row.version,
        });
    }
    match service
        .store
        .delete_document(&col, &id, Some(row.version))
        .await?
    {
        WriteOutcome::Done(deleted) => {
            service.published(&col, ChangeKind::Deleted, &deleted).await;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        WriteOutcome::NotFound => Err(DataError::NotFound(format!(
            "no document {id:?} in collection {col:?}"
        ))),
        WriteOutcome::VersionMismatch(current) => Err(DataError::VersionMismatch { current }),
    }
}

/// RFC 7396 JSON merge patch: objects merge key by key, `null` removes, anything else
/// replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("made an object above");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The RFC's own example (appendix A).
        let mut doc = json!({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}, "tags": ["example", "sample"], "content": "This will be unchanged"});
        let patch = json!({"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": null}, "tags": ["example"]});
        merge_patch(&mut doc, &patch);
        assert_eq!(
            doc,
            json!({"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"], "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"})
        );
    }
}
