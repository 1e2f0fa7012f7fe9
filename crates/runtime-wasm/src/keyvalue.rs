//! `wasi:keyvalue@0.2.0-draft` (`store`, `atomics`, `batch`) for functions, on a
//! pluggable asynchronous [`KeyValueBackend`]. The host bindings are generated from the
//! WIT in this crate's `wit/`.
//!
//! Buckets belong to a function: every backend call carries a `scope`, the function's
//! name (the platform-set `GUREUM_FUNCTION_NAME` of the instance's environment, which
//! manifests cannot set), so two functions opening the same bucket name see different
//! data. `open(identifier)` accepts 1–64 characters of `[A-Za-z0-9_.-]`; `""` is the
//! bucket `default`.
//!
//! Mapping of the WIT onto the backend:
//! - `atomics.increment` takes and returns `u64`; the backend counts in `i64`. The
//!   delta and the result are reinterpreted in two's complement (`u64::MAX` is -1), so a
//!   guest decrements by passing `(-n as i64) as u64` and reads a negative counter back
//!   with `as i64`. A missing key counts from 0.
//! - `store.list-keys` pages with an `option<u64>` cursor; backends page with an opaque
//!   `String`. The host hands the guest a number standing for the backend's cursor,
//!   valid on the same instance for the next [`MAX_CURSORS`] pages it lists.
//! - Backend errors reach the guest as `error::other(message)`; with no backend every
//!   call fails with `other("key-value storage is not configured")`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::host::HostState;

/// The environment variable naming the function an instance runs: its key-value scope.
pub const FUNCTION_NAME_ENV: &str = "GUREUM_FUNCTION_NAME";
/// The bucket `open("")` opens.
pub const DEFAULT_BUCKET: &str = "default";
/// Longest bucket name.
pub const MAX_BUCKET_NAME: usize = 64;
/// `list-keys` cursors an instance remembers (the oldest is forgotten first).
pub const MAX_CURSORS: usize = 64;
/// The error of every call when the engine has no backend.
pub const NOT_CONFIGURED: &str = "key-value storage is not configured";

/// One page of `list_keys`: the keys, and the cursor of the next page (`None`: last).
pub type KeyPage = (Vec<String>, Option<String>);

/// Key-value storage for functions; the platform implements it on its store.
///
/// `scope` is the function's name and `bucket` a validated bucket name; together they
/// name one independent map of string keys to byte values. Errors are messages the
/// guest receives as `error::other(message)`.
pub trait KeyValueBackend: Send + Sync + 'static {
    /// The value of `key`, `None` when it is missing.
    fn get<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>>;

    /// Sets `key` to `value`, creating or overwriting it.
    fn set<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Removes `key`; a missing key is not an error.
    fn delete<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Whether `key` exists.
    fn exists<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, String>>;

    /// One page of the bucket's keys, starting after `cursor` (`None`: from the start),
    /// and the cursor of the next page (`None`: this was the last page). The cursor is
    /// opaque to the guest (e.g. the page's last key, in key order).
    fn list_keys<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        cursor: Option<String>,
    ) -> BoxFuture<'a, Result<KeyPage, String>>;

    /// Atomically adds `delta` to the integer stored at `key` and returns the new value.
    /// A missing key counts from 0. How the integer is stored is the backend's choice;
    /// [`MemoryKeyValue`] keeps it as decimal text, so `get` reads e.g. `b"42"`.
    fn increment<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
        delta: i64,
    ) -> BoxFuture<'a, Result<i64, String>>;

    /// The values of `keys`, in the same order (`None` for a missing key). Not atomic.
    /// The provided method calls [`get`](Self::get) once per key.
    fn get_many<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        keys: Vec<String>,
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, String>> {
        Box::pin(async move {
            let mut values = Vec::with_capacity(keys.len());
            for key in &keys {
                values.push(self.get(scope, bucket, key).await?);
            }
            Ok(values)
        })
    }

    /// Sets every `(key, value)`. Not atomic: on an error some may be set. The provided
    /// method calls [`set`](Self::set) once per entry.
    fn set_many<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        entries: Vec<(String, Vec<u8>)>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            for (key, value) in entries {
                self.set(scope, bucket, &key, value).await?;
            }
            Ok(())
        })
    }

    /// Removes every key of `keys` (missing ones are skipped). Not atomic. The provided
    /// method calls [`delete`](Self::delete) once per key.
    fn delete_many<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        keys: Vec<String>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            for key in &keys {
                self.delete(scope, bucket, key).await?;
            }
            Ok(())
        })
    }
}

/// An in-memory [`KeyValueBackend`] (a map behind a mutex): for tests, and a fallback
/// where no store is wanted. Nothing survives the process; nothing is bounded.
pub struct MemoryKeyValue {
    /// (scope, bucket) → its keys in order.
    buckets: Mutex<HashMap<(String, String), MemoryBucket>>,
    page_size: usize,
}

/// One bucket of [`MemoryKeyValue`].
type MemoryBucket = BTreeMap<String, Vec<u8>>;

impl MemoryKeyValue {
    /// Keys per `list_keys` page by default.
    pub const DEFAULT_PAGE_SIZE: usize = 1000;

    /// An empty store.
    pub fn new() -> Self {
        Self::with_page_size(Self::DEFAULT_PAGE_SIZE)
    }

    /// An empty store listing at most `page_size` (≥ 1) keys per page.
    pub fn with_page_size(page_size: usize) -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
            page_size: page_size.max(1),
        }
    }

    fn with_bucket<R>(
        &self,
        scope: &str,
        bucket: &str,
        f: impl FnOnce(&mut BTreeMap<String, Vec<u8>>) -> R,
    ) -> R {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let id = (scope.to_owned(), bucket.to_owned());
        let map = buckets.entry(id.clone()).or_default();
        let result = f(map);
        if map.is_empty() {
            buckets.remove(&id);
        }
        result
    }
}

impl Default for MemoryKeyValue {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryKeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKeyValue")
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl KeyValueBackend for MemoryKeyValue {
    fn get<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
        let value = self.with_bucket(scope, bucket, |map| map.get(key).cloned());
        Box::pin(std::future::ready(Ok(value)))
    }

    fn set<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.with_bucket(scope, bucket, |map| map.insert(key.to_owned(), value));
        Box::pin(std::future::ready(Ok(())))
    }

    fn delete<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.with_bucket(scope, bucket, |map| map.remove(key));
        Box::pin(std::future::ready(Ok(())))
    }

    fn exists<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, String>> {
        let found = self.with_bucket(scope, bucket, |map| map.contains_key(key));
        Box::pin(std::future::ready(Ok(found)))
    }

    fn list_keys<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        cursor: Option<String>,
    ) -> BoxFuture<'a, Result<KeyPage, String>> {
        let page_size = self.page_size;
        let page = self.with_bucket(scope, bucket, |map| {
            let start = match cursor {
                Some(after) => Bound::Excluded(after),
                None => Bound::Unbounded,
            };
            let mut keys: Vec<String> = map
                .range((start, Bound::Unbounded))
                .take(page_size + 1)
                .map(|(key, _)| key.clone())
                .collect();
            let next = if keys.len() > page_size {
                keys.truncate(page_size);
                keys.last().cloned()
            } else {
                None
            };
            (keys, next)
        });
        Box::pin(std::future::ready(Ok(page)))
    }

    fn increment<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
        delta: i64,
    ) -> BoxFuture<'a, Result<i64, String>> {
        let result = self.with_bucket(scope, bucket, |map| {
            let current = match map.get(key) {
                None => 0,
                Some(bytes) => std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|text| text.trim().parse::<i64>().ok())
                    .ok_or_else(|| {
                        format!("cannot increment key {key:?}: its value is not a decimal integer")
                    })?,
            };
            let next = current
                .checked_add(delta)
                .ok_or_else(|| format!("incrementing key {key:?} overflows a 64-bit integer"))?;
            map.insert(key.to_owned(), next.to_string().into_bytes());
            Ok(next)
        });
        Box::pin(std::future::ready(result))
    }
}

/// Checks a guest's bucket identifier and returns the bucket name (`""` → `default`).
pub fn bucket_name(identifier: &str) -> Result<&str, String> {
    if identifier.is_empty() {
        return Ok(DEFAULT_BUCKET);
    }
    let valid = identifier.len() <= MAX_BUCKET_NAME
        && identifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(identifier)
    } else {
        Err(format!(
            "bucket name {identifier:?} is invalid: use 1-{MAX_BUCKET_NAME} characters of A-Z, a-z, 0-9, '_', '.' and '-' (or \"\" for the bucket \"{DEFAULT_BUCKET}\")"
        ))
    }
}

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// An open bucket: the guest's `bucket` resource.
#[derive(Clone)]
pub struct Bucket {
    backend: Arc<dyn KeyValueBackend>,
    scope: Arc<str>,
    name: Arc<str>,
}

/// The key-value part of an instance's host state.
pub(crate) struct KeyValueCtx {
    backend: Option<Arc<dyn KeyValueBackend>>,
    /// The function's name; `None` when the environment does not say.
    scope: Option<Arc<str>>,
    /// Backend cursors handed to the guest as numbers: number → (bucket, cursor).
    cursors: BTreeMap<u64, (Arc<str>, String)>,
    next_cursor: u64,
}

impl KeyValueCtx {
    /// The state of an instance running with environment `env`.
    pub(crate) fn new(backend: Option<Arc<dyn KeyValueBackend>>, env: &[(String, String)]) -> Self {
        // The platform puts the name first; manifests cannot set GUREUM_* variables.
        let scope = env
            .iter()
            .find(|(key, _)| key == FUNCTION_NAME_ENV)
            .map(|(_, name)| Arc::from(name.as_str()));
        Self {
            backend,
            scope,
            cursors: BTreeMap::new(),
            next_cursor: 1,
        }
    }

    fn remember_cursor(&mut self, bucket: Arc<str>, cursor: String) -> u64 {
        let number = self.next_cursor;
        self.next_cursor += 1;
        self.cursors.insert(number, (bucket, cursor));
        while self.cursors.len() > MAX_CURSORS {
            self.cursors.pop_first();
        }
        number
    }
}

/// What the generated host traits are implemented on.
pub(crate) struct KeyValueView<'a> {
    ctx: &'a mut KeyValueCtx,
    table: &'a mut ResourceTable,
}

impl HostState {
    fn key_value(&mut self) -> KeyValueView<'_> {
        KeyValueView {
            ctx: &mut self.key_value,
            table: &mut self.table,
        }
    }
}

struct HasKeyValue;

impl HasData for HasKeyValue {
    type Data<'a> = KeyValueView<'a>;
}

/// Adds `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft` to the linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    store::add_to_linker::<_, HasKeyValue>(linker, HostState::key_value)?;
    atomics::add_to_linker::<_, HasKeyValue>(linker, HostState::key_value)?;
    batch::add_to_linker::<_, HasKeyValue>(linker, HostState::key_value)?;
    Ok(())
}

type KvResult<T> = wasmtime::Result<Result<T, store::Error>>;

impl KeyValueView<'_> {
    fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<Bucket> {
        Ok(self.table.get(bucket)?.clone())
    }
}

fn other(message: String) -> store::Error {
    store::Error::Other(message)
}

impl store::Host for KeyValueView<'_> {
    async fn open(&mut self, identifier: String) -> KvResult<Resource<Bucket>> {
        let Some(backend) = self.ctx.backend.clone() else {
            return Ok(Err(other(NOT_CONFIGURED.into())));
        };
        let Some(scope) = self.ctx.scope.clone() else {
            return Ok(Err(other(format!(
                "key-value storage is unavailable: the instance does not know its function's name ({FUNCTION_NAME_ENV})"
            ))));
        };
        let name = match bucket_name(&identifier) {
            Ok(name) => Arc::from(name),
            Err(message) => return Ok(Err(other(message))),
        };
        let bucket = Bucket {
            backend,
            scope,
            name,
        };
        Ok(Ok(self.table.push(bucket)?))
    }
}

impl store::HostBucket for KeyValueView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<Option<Vec<u8>>> {
        let b = self.bucket(&bucket)?;
        Ok(b.backend.get(&b.scope, &b.name, &key).await.map_err(other))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> KvResult<()> {
        let b = self.bucket(&bucket)?;
        Ok(b.backend
            .set(&b.scope, &b.name, &key, value)
            .await
            .map_err(other))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<()> {
        let b = self.bucket(&bucket)?;
        Ok(b.backend
            .delete(&b.scope, &b.name, &key)
            .await
            .map_err(other))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<bool> {
        let b = self.bucket(&bucket)?;
        Ok(b.backend
            .exists(&b.scope, &b.name, &key)
            .await
            .map_err(other))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> KvResult<store::KeyResponse> {
        let b = self.bucket(&bucket)?;
        let after = match cursor {
            None => None,
            Some(number) => match self.ctx.cursors.get(&number) {
                Some((of, after)) if *of == b.name => Some(after.clone()),
                _ => {
                    return Ok(Err(other(format!(
                        "list-keys cursor {number} is unknown or expired for bucket {:?}: list again without a cursor",
                        &*b.name
                    ))));
                }
            },
        };
        let (keys, next) = match b.backend.list_keys(&b.scope, &b.name, after).await {
            Ok(page) => page,
            Err(message) => return Ok(Err(other(message))),
        };
        let cursor = next.map(|next| self.ctx.remember_cursor(b.name.clone(), next));
        Ok(Ok(store::KeyResponse { keys, cursor }))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> KvResult<u64> {
        let b = self.bucket(&bucket)?;
        Ok(b.backend
            .increment(&b.scope, &b.name, &key, delta.cast_signed())
            .await
            .map(i64::cast_unsigned)
            .map_err(other))
    }
}

impl batch::Host for KeyValueView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> KvResult<Vec<Option<(String, Vec<u8>)>>> {
        let b = self.bucket(&bucket)?;
        let values = match b.backend.get_many(&b.scope, &b.name, keys.clone()).await {
            Ok(values) => values,
            Err(message) => return Ok(Err(other(message))),
        };
        if values.len() != keys.len() {
            return Ok(Err(other(format!(
                "the key-value backend returned {} values for {} keys",
                values.len(),
                keys.len()
            ))));
        }
        Ok(Ok(keys
            .into_iter()
            .zip(values)
            .map(|(key, value)| value.map(|value| (key, value)))
            .collect()))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> KvResult<()> {
        let b = self.bucket(&bucket)?;
        Ok(b.backend
            .set_many(&b.scope, &b.name, key_values)
            .await
            .map_err(other))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> KvResult<()> {
        let b = self.bucket(&bucket)?;
        Ok(b.backend
            .delete_many(&b.scope, &b.name, keys)
            .await
            .map_err(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        assert_eq!(bucket_name(""), Ok("default"));
        assert_eq!(bucket_name("a.b-c_D9"), Ok("a.b-c_D9"));
        assert_eq!(bucket_name(&"x".repeat(64)), Ok(&*"x".repeat(64)));
        for bad in ["x".repeat(65), "a b".into(), "a/b".into(), "é".into()] {
            let error = bucket_name(&bad).unwrap_err();
            assert!(error.starts_with("bucket name "), "{error}");
            assert!(error.contains(": use 1-64 characters"), "{error}");
        }
    }

    #[test]
    fn scope_and_cursors() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        // The first GUREUM_FUNCTION_NAME (the platform's) is the scope.
        let ctx = KeyValueCtx::new(
            None,
            &env(&[
                ("A", "1"),
                (FUNCTION_NAME_ENV, "f"),
                (FUNCTION_NAME_ENV, "g"),
            ]),
        );
        assert_eq!(ctx.scope.as_deref(), Some("f"));
        assert!(KeyValueCtx::new(None, &env(&[("A", "1")])).scope.is_none());

        let mut ctx = KeyValueCtx::new(None, &[]);
        let bucket: Arc<str> = Arc::from("b");
        let numbers: Vec<u64> = (0..MAX_CURSORS + 3)
            .map(|i| ctx.remember_cursor(bucket.clone(), format!("c{i}")))
            .collect();
        assert_eq!(ctx.cursors.len(), MAX_CURSORS);
        // The oldest are forgotten, the newest kept, numbers never reused.
        assert!(!ctx.cursors.contains_key(&numbers[2]));
        assert_eq!(ctx.cursors[&numbers[3]].1, "c3");
        let last = *numbers.last().unwrap();
        assert_eq!(ctx.cursors[&last].1, format!("c{}", MAX_CURSORS + 2));
        assert_eq!(ctx.remember_cursor(bucket, "x".into()), last + 1);
    }

    #[tokio::test]
    async fn memory_pages_and_counts() {
        let kv = MemoryKeyValue::with_page_size(2);
        for key in ["c", "a", "b", "d", "e"] {
            kv.set("f", "b", key, key.into()).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let (keys, next) = kv.list_keys("f", "b", cursor).await.unwrap();
            assert!(keys.len() <= 2);
            seen.extend(keys);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);
        assert_eq!(kv.list_keys("g", "b", None).await.unwrap(), (vec![], None));

        assert_eq!(kv.increment("f", "n", "x", 5).await, Ok(5));
        assert_eq!(kv.increment("f", "n", "x", -7).await, Ok(-2));
        assert_eq!(kv.get("f", "n", "x").await, Ok(Some(b"-2".to_vec())));
        kv.set("f", "n", "y", i64::MAX.to_string().into_bytes())
            .await
            .unwrap();
        assert!(
            kv.increment("f", "n", "y", 1)
                .await
                .unwrap_err()
                .contains("overflows")
        );
        assert!(
            kv.increment("f", "b", "a", 1)
                .await
                .unwrap_err()
                .contains("not a decimal integer")
        );

        let keys = vec!["a".to_owned(), "zz".to_owned()];
        assert_eq!(
            kv.get_many("f", "b", keys.clone()).await,
            Ok(vec![Some(b"a".to_vec()), None])
        );
        kv.delete_many("f", "b", keys).await.unwrap();
        assert_eq!(kv.exists("f", "b", "a").await, Ok(false));
        assert_eq!(kv.exists("f", "b", "b").await, Ok(true));
    }
}
