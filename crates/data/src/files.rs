//! Files attached to a collection: `POST /data/v1/collections/{col}/files` (raw body with
//! its Content-Type, or multipart/form-data's first file part), `GET …/files/{id}`
//! (Range requests; `?exp=…&sig=…` from `POST …/files/{id}/sign` needs no token),
//! `GET …/files/{id}/meta`, `DELETE …/files/{id}`, `GET …/files` (list).
//!
//! An upload streams to a spool file under the data dir while its SHA-256 and size are
//! counted (the collection's size limit ends it early with 413), then moves into the
//! store in 1 MiB chunks under its content address. The collection's rules apply with
//! `doc` = the file's metadata (`create` sees it as `data`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use futures::StreamExt;
use gureum_auth::Caller;
use gureum_rules::Operation;
use gureum_store::{BLOB_CHUNK, FileRow};
use hmac::{Hmac, Mac};
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::{CollectionConfig, DataError, DataService, check_collection, new_id, query_pairs};

/// Default and longest lifetime of a signed URL.
const DEFAULT_SIGNED_TTL_S: u64 = 300;
const MAX_SIGNED_TTL_S: u64 = 7 * 24 * 3600;

pub(crate) fn routes() -> Router<Arc<DataService>> {
    Router::new()
        .route("/data/v1/collections/{col}/files", post(upload).get(list))
        .route(
            "/data/v1/collections/{col}/files/{id}",
            get(download).delete(remove),
        )
        .route("/data/v1/collections/{col}/files/{id}/meta", get(meta))
        .route("/data/v1/collections/{col}/files/{id}/sign", post(sign))
        .layer(DefaultBodyLimit::disable())
}

fn file_json(col: &str, file: &FileRow) -> Value {
    json!({
        "id": file.id,
        "collection": col,
        "name": file.name,
        "size": file.size,
        "content_type": file.content_type,
        "sha256": file.sha256,
        "owner": file.owner,
        "created": file.created_at_ms,
    })
}

/// A spooled upload: removed from disk when dropped.
struct Spool {
    path: std::path::PathBuf,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Streams `chunks` to a spool file, hashing and counting; stops at `limit`.
async fn spool<S, E>(
    service: &DataService,
    mut chunks: S,
    limit: u64,
) -> Result<(Spool, String, u64), DataError>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let number = {
        let mut uploads = service.uploads.lock().expect("upload counter");
        *uploads += 1;
        *uploads
    };
    let path = service
        .upload_dir
        .join(format!("{}-{number}.part", std::process::id()));
    let spool = Spool { path: path.clone() };
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| DataError::Io(format!("creating {}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut size = 0_u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| DataError::BadRequest(format!("reading the upload: {e}")))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(DataError::TooLarge(format!(
                "the file is over this collection's limit of {limit} bytes (files.max_bytes)"
            )));
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| DataError::Io(format!("writing {}: {e}", path.display())))?;
    }
    file.flush()
        .await
        .map_err(|e| DataError::Io(format!("writing {}: {e}", path.display())))?;
    Ok((spool, hex::encode(hasher.finalize()), size))
}

fn check_type(config: &CollectionConfig, content_type: &str) -> Result<(), DataError> {
    if config.accepts_type(content_type) {
        Ok(())
    } else {
        Err(DataError::UnsupportedType(format!(
            "{content_type:?} is not accepted here; this collection takes {} (files.types)",
            config.input.files.types.join(", ")
        )))
    }
}

async fn upload(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    Path(col): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let config = service.config(&col).await?;
    let header_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let query_name = query_pairs(&uri)
        .into_iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v);
    let declared_size = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(size) = declared_size
        && size > config.max_file_bytes
        && !header_type.starts_with("multipart/")
    {
        return Err(DataError::TooLarge(format!(
            "the file ({size} bytes) is over this collection's limit of {} bytes (files.max_bytes)",
            config.max_file_bytes
        )));
    }
    // Rules see the metadata before any byte is stored; the size is the declared one.
    let (name, content_type, spooled) = if header_type.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(&header_type)
            .map_err(|e| DataError::BadRequest(format!("multipart body: {e}")))?;
        let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);
        loop {
            let field = multipart
                .next_field()
                .await
                .map_err(|e| DataError::BadRequest(format!("multipart body: {e}")))?
                .ok_or_else(|| {
                    DataError::BadRequest("the multipart body has no file part".into())
                })?;
            let Some(file_name) = field.file_name().map(str::to_string) else {
                continue;
            };
            let part_type = field
                .content_type()
                .map(|m| m.essence_str().to_string())
                .unwrap_or_else(|| "application/octet-stream".into());
            let name = query_name.clone().unwrap_or(file_name);
            check_type(&config, &part_type)?;
            authorize_create(
                &service,
                &col,
                &config,
                &caller,
                &name,
                &part_type,
                declared_size,
            )?;
            let spooled = spool(&service, field, config.max_file_bytes).await?;
            break (name, part_type, spooled);
        }
    } else {
        let name = query_name.unwrap_or_else(|| "file".into());
        check_type(&config, &header_type)?;
        authorize_create(
            &service,
            &col,
            &config,
            &caller,
            &name,
            &header_type,
            declared_size,
        )?;
        let spooled = spool(&service, body.into_data_stream(), config.max_file_bytes).await?;
        (name, header_type, spooled)
    };
    let (spool_file, sha256, size) = spooled;
    let row = FileRow {
        id: new_id(),
        name,
        content_type,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        sha256,
        owner: caller.owner(),
        created_at_ms: gureum_model::now_ms(),
    };
    let mut reader = tokio::fs::File::open(&spool_file.path)
        .await
        .map_err(|e| DataError::Io(format!("reading the spooled upload: {e}")))?;
    service.store.put_file(&col, &row, &mut reader).await?;
    drop(spool_file);
    Ok((StatusCode::CREATED, Json(file_json(&col, &row))).into_response())
}

fn authorize_create(
    service: &DataService,
    col: &str,
    config: &CollectionConfig,
    caller: &Caller,
    name: &str,
    content_type: &str,
    size: Option<u64>,
) -> Result<(), DataError> {
    let data = json!({"name": name, "content_type": content_type, "size": size, "file": true});
    service.authorize(col, config, caller, Operation::Create, None, Some(&data))
}

async fn stored(service: &DataService, col: &str, id: &str) -> Result<FileRow, DataError> {
    service
        .store
        .get_file(col, id)
        .await?
        .ok_or_else(|| DataError::NotFound(format!("no file {id:?} in collection {col:?}")))
}

/// The file, or for a missing one the answer the rule gives without a file (so a caller
/// the rule would refuse learns nothing from 404 vs 403, as with documents).
async fn permitted(
    service: &DataService,
    config: &CollectionConfig,
    caller: &Caller,
    op: Operation,
    col: &str,
    id: &str,
) -> Result<FileRow, DataError> {
    let file = match stored(service, col, id).await {
        Ok(file) => file,
        Err(not_found) => {
            service.authorize(col, config, caller, op, None, None)?;
            return Err(not_found);
        }
    };
    service.authorize(col, config, caller, op, Some(&file_json(col, &file)), None)?;
    Ok(file)
}

/// The MAC a signed URL of this file, valid until `expires`, carries.
fn url_mac(key: &[u8], col: &str, id: &str, expires: u64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(format!("{col}/{id}/{expires}").as_bytes());
    mac
}

fn now_s() -> u64 {
    u64::try_from(gureum_model::now_ms() / 1000).unwrap_or(0)
}

/// Whether the query carries a valid, unexpired signature for this file.
fn signed(service: &DataService, col: &str, id: &str, uri: &Uri) -> Result<bool, DataError> {
    let pairs = query_pairs(uri);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let (Some(sig), Some(exp)) = (get("sig"), get("exp")) else {
        return Ok(false);
    };
    let expires: u64 = exp
        .parse()
        .map_err(|_| DataError::BadRequest("exp is not a time".into()))?;
    // Compared in constant time by the MAC's own verify.
    let valid = hex::decode(&sig).is_ok_and(|bytes| {
        url_mac(&service.url_key, col, id, expires)
            .verify_slice(&bytes)
            .is_ok()
    });
    if !valid {
        return Err(DataError::Forbidden(
            "the signed URL's signature is wrong".into(),
        ));
    }
    if expires < now_s() {
        return Err(DataError::Forbidden(
            "the signed URL has expired; ask for a new one (POST …/files/{id}/sign)".into(),
        ));
    }
    Ok(true)
}

async fn readable(
    service: &DataService,
    caller: &Caller,
    col: &str,
    id: &str,
) -> Result<FileRow, DataError> {
    let config = service.config(col).await?;
    permitted(service, &config, caller, Operation::Get, col, id).await
}

async fn meta(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    Path((col, id)): Path<(String, String)>,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let file = readable(&service, &caller, &col, &id).await?;
    Ok(Json(file_json(&col, &file)).into_response())
}

/// Default and largest page of a file listing.
const FILE_PAGE: (u32, u32) = (100, 1000);

/// `GET …/files?where=owner = "UID"&limit=N&cursor=C`: newest first, keyset-paged, under
/// the `list` rule decided from the query alone, as for documents.
async fn list(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    Path(col): Path<String>,
    uri: Uri,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let mut filters = Vec::new();
    let mut limit = FILE_PAGE.0;
    let mut after: Option<(i64, String)> = None;
    for (key, value) in query_pairs(&uri) {
        match key.as_str() {
            "where" => {
                let filter =
                    crate::query::parse_condition(&value).map_err(DataError::BadRequest)?;
                if filter.field != gureum_store::FieldPath::Owner
                    || filter.op != gureum_store::FilterOp::Eq
                    || !filter.value.is_string()
                {
                    return Err(DataError::BadRequest(format!(
                        "where={value:?}: files are filtered by owner only, e.g. where=owner = \"<uid>\""
                    )));
                }
                filters.push(filter);
            }
            "limit" => {
                limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=FILE_PAGE.1).contains(n))
                    .ok_or_else(|| {
                        DataError::BadRequest(format!(
                            "limit={value:?}: a number from 1 to {}",
                            FILE_PAGE.1
                        ))
                    })?;
            }
            "cursor" => {
                after = service
                    .open_cursor(&value)
                    .and_then(|text| {
                        let (created, id) = text.strip_prefix("file:")?.split_once(':')?;
                        Some((created.parse().ok()?, id.to_string()))
                    })
                    .map(Some)
                    .ok_or_else(|| {
                        DataError::BadRequest(
                            "cursor: not a cursor this listing returned; start again without it"
                                .into(),
                        )
                    })?;
            }
            "access_token" => {}
            other => {
                return Err(DataError::BadRequest(format!(
                    "unknown query parameter {other:?}; a file listing takes where, limit and cursor"
                )));
            }
        }
    }
    let config = service.config(&col).await?;
    service.authorize_listing(&col, &config, &caller, &filters)?;
    let owner = filters.first().and_then(|f| f.value.as_str());
    let page = gureum_store::FilePage {
        owner,
        after: after.as_ref().map(|(created, id)| (*created, id.as_str())),
        limit,
    };
    let files = service.store.list_files(&col, &page).await?;
    let next_cursor = (files.len() == limit as usize)
        .then(|| files.last())
        .flatten()
        .map(|last| service.seal_cursor(&format!("file:{}:{}", last.created_at_ms, last.id)));
    let files: Vec<Value> = files.iter().map(|f| file_json(&col, f)).collect();
    Ok(Json(json!({"files": files, "next_cursor": next_cursor})).into_response())
}

async fn sign(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    Path((col, id)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    readable(&service, &caller, &col, &id).await?;
    let ttl = match query_pairs(&uri).into_iter().find(|(k, _)| k == "ttl") {
        Some((_, v)) => v
            .parse::<u64>()
            .ok()
            .filter(|t| (1..=MAX_SIGNED_TTL_S).contains(t))
            .ok_or_else(|| {
                DataError::BadRequest(format!("ttl={v:?}: seconds from 1 to {MAX_SIGNED_TTL_S}"))
            })?,
        None => DEFAULT_SIGNED_TTL_S,
    };
    let expires = now_s() + ttl;
    let sig = hex::encode(
        url_mac(&service.url_key, &col, &id, expires)
            .finalize()
            .into_bytes(),
    );
    let url = format!("/data/v1/collections/{col}/files/{id}?exp={expires}&sig={sig}");
    Ok(Json(json!({"url": url, "expires": expires})).into_response())
}

/// Parses a single `bytes=a-b` / `bytes=a-` / `bytes=-n` range against `size`.
fn parse_range(header: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // several ranges: answer the whole file, as RFC 9110 allows
    }
    let (start, end) = spec.split_once('-')?;
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            if n == 0 {
                return Some(Err(()));
            }
            (size.saturating_sub(n), size.checked_sub(1)?)
        }
        (start, "") => (start.parse().ok()?, size.checked_sub(1)?),
        (start, end) => {
            let end: u64 = end.parse().ok()?;
            (start.parse().ok()?, end.min(size.checked_sub(1)?))
        }
    };
    if range.0 > range.1 || range.0 >= size {
        return Some(Err(()));
    }
    Some(Ok(range))
}

async fn download(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    Path((col, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let file = if signed(&service, &col, &id, &uri)? {
        stored(&service, &col, &id).await?
    } else {
        readable(&service, &caller, &col, &id).await?
    };
    let size = u64::try_from(file.size).unwrap_or(0);
    let range = headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_range(v, size));
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, size),
        Some(Ok((start, last))) => (StatusCode::PARTIAL_CONTENT, start, last + 1),
        Some(Err(())) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            response.headers_mut().insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
            );
            return Ok(response);
        }
    };
    let chunk = BLOB_CHUNK as u64;
    let store = service.store.clone();
    let sha = file.sha256.clone();
    let chunks = futures::stream::unfold(start, move |at| {
        let store = store.clone();
        let sha = sha.clone();
        async move {
            if at >= end {
                return None;
            }
            let seq = at / chunk;
            let piece = match store
                .blob_chunk(&sha, i64::try_from(seq).unwrap_or(0))
                .await
            {
                Ok(Some(bytes)) => bytes,
                Ok(None) => return Some((Err(std::io::Error::other("file content missing")), end)),
                Err(error) => return Some((Err(std::io::Error::other(error.to_string())), end)),
            };
            let from = usize::try_from(at - seq * chunk).unwrap_or(0);
            let to = usize::try_from((end - seq * chunk).min(piece.len() as u64)).unwrap_or(0);
            if from >= to {
                return Some((Err(std::io::Error::other("file content is short")), end));
            }
            let next = seq * chunk + to as u64;
            Some((Ok(Bytes::copy_from_slice(&piece[from..to])), next))
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&file.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Uploaded bytes are served from the platform's own origin: never let a browser run
    // them as a page there (no sniffing, a sandbox without scripts), and download what a
    // browser would otherwise render as active content.
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self'; media-src 'self'"),
    );
    if !inline_safe(&file.content_type) {
        h.insert(
            http::header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    h.insert(
        ETAG,
        HeaderValue::from_str(&format!("\"{}\"", file.sha256)).expect("hex"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1)).expect("ascii"),
        );
    }
    Ok(response)
}

/// Types a browser may show inline without running anything.
fn inline_safe(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/pdf"
        || essence == "text/plain"
        || (essence.starts_with("image/") && essence != "image/svg+xml")
        || essence.starts_with("audio/")
        || essence.starts_with("video/")
}

async fn remove(
    State(service): State<Arc<DataService>>,
    Extension(caller): Extension<Caller>,
    Path((col, id)): Path<(String, String)>,
) -> Result<Response, DataError> {
    check_collection(&col)?;
    let config = service.config(&col).await?;
    permitted(&service, &config, &caller, Operation::Delete, &col, &id).await?;
    service.store.delete_file(&col, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Some(Ok((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
