//! `wasi:keyvalue` on the store: the [`KeyValueBackend`] the wasm engine calls, over the
//! same `kv` rows the platform API's `/kv/v1` serves lambda functions. Keys are scoped to
//! the instance's function name (its `GUREUM_FUNCTION_NAME`), as on `/kv/v1`, so a
//! function never sees another's buckets. Batch writes and deletes are one transaction
//! each; increments lock their row (see `gureum_store::kv`).

use futures::future::BoxFuture;
use gureum_runtime_wasm::{KeyPage, KeyValueBackend};
use gureum_store::Store;

/// Key-value storage for wasm functions, in the store.
#[derive(Debug, Clone)]
pub struct StoreKeyValue {
    store: Store,
}

impl StoreKeyValue {
    /// Buckets kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn message(error: gureum_store::StoreError) -> String {
    error.to_string()
}

impl KeyValueBackend for StoreKeyValue {
    fn get<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move { self.store.kv_get(scope, bucket, key).await.map_err(message) })
    }

    fn set<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.store
                .kv_set_many(scope, bucket, &[(key.to_string(), value)])
                .await
                .map_err(message)
        })
    }

    fn delete<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.store
                .kv_delete_many(scope, bucket, &[key.to_string()])
                .await
                .map(|_| ())
                .map_err(message)
        })
    }

    fn exists<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            self.store
                .kv_get(scope, bucket, key)
                .await
                .map(|value| value.is_some())
                .map_err(message)
        })
    }

    fn list_keys<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        cursor: Option<String>,
    ) -> BoxFuture<'a, Result<KeyPage, String>> {
        Box::pin(async move {
            self.store
                .kv_list(scope, bucket, cursor.as_deref())
                .await
                .map_err(message)
        })
    }

    fn increment<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
        delta: i64,
    ) -> BoxFuture<'a, Result<i64, String>> {
        Box::pin(async move {
            self.store
                .kv_increment(scope, bucket, key, delta)
                .await
                .map_err(message)
        })
    }

    fn get_many<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        keys: Vec<String>,
    ) -> BoxFuture<'a, Result<Vec<Option<Vec<u8>>>, String>> {
        Box::pin(async move {
            self.store
                .kv_get_many(scope, bucket, &keys)
                .await
                .map_err(message)
        })
    }

    fn set_many<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        entries: Vec<(String, Vec<u8>)>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.store
                .kv_set_many(scope, bucket, &entries)
                .await
                .map_err(message)
        })
    }

    fn delete_many<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        keys: Vec<String>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.store
                .kv_delete_many(scope, bucket, &keys)
                .await
                .map(|_| ())
                .map_err(message)
        })
    }
}
