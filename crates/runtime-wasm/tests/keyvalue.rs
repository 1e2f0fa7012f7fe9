//! `wasi:keyvalue` end to end: the testbed fixture's `/kv/...` routes on instances of a
//! real engine, backed by [`MemoryKeyValue`].
//!
//! Needs `target/fixtures/testbed.wasm` and `examples/hello/hello.wasm`
//! (`cargo xtask build-fixtures`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use gureum_runtime_wasm::{
    CompiledComponent, InstanceSettings, KeyPage, KeyValueBackend, MemoryKeyValue, WasmEngine,
    WasmEngineConfig,
};
use http_body_util::{BodyExt, Full};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace's target directory (or `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_fixture(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run `cargo xtask build-fixtures` first",
            path.display()
        )
    })
}

/// One engine and the compiled testbed for the whole test binary (compiling is the
/// slow part); each test takes a clone with its own backend.
struct Shared {
    engine: WasmEngine,
    testbed: CompiledComponent,
    _cache: tempfile::TempDir,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let cache = tempfile::tempdir().expect("temporary cache directory");
        let engine = WasmEngine::new(&WasmEngineConfig {
            cache_dir: cache.path().to_path_buf(),
            pool_instances: 256,
        })
        .expect("engine");
        let bytes = read_fixture(&target_dir().join("fixtures").join("testbed.wasm"));
        let testbed = engine.compile("testbed", &bytes).expect("testbed compiles");
        Shared {
            engine,
            testbed,
            _cache: cache,
        }
    })
}

/// A function `name` running the testbed on `engine`.
struct Function {
    engine: WasmEngine,
    component: CompiledComponent,
    settings: InstanceSettings,
}

impl Function {
    fn testbed(name: &str, backend: Option<Arc<dyn KeyValueBackend>>) -> Self {
        let shared = shared();
        let mut engine = shared.engine.clone();
        engine.set_key_value(backend);
        Self::new(engine, shared.testbed.clone(), name)
    }

    fn new(engine: WasmEngine, component: CompiledComponent, name: &str) -> Self {
        Self {
            engine,
            component,
            settings: InstanceSettings {
                env: vec![
                    ("GUREUM_FUNCTION_NAME".into(), name.into()),
                    ("GUREUM_FUNCTION_VERSION".into(), "1".into()),
                ],
                memory_mb: 128,
                allowed_outbound_hosts: Arc::new(Vec::new()),
                outbound_private: gureum_manifest::PrivateDestinations::Deny,
            },
        }
    }

    /// One request on a fresh instance: (status, x-kv-pages header, body).
    async fn call(&self, method: &str, path: &str, body: &str) -> (u16, Option<String>, String) {
        let instance = self
            .engine
            .instantiate(&self.component, &self.settings, TIMEOUT)
            .await
            .expect("instantiate");
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://localhost{path}"))
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request");
        let invocation = instance.handle(request, TIMEOUT, |_| {}).await;
        let response = invocation
            .response
            .unwrap_or_else(|failure| panic!("{method} {path}: {failure:?}"));
        let status = response.status().as_u16();
        let pages = response
            .headers()
            .get("x-kv-pages")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_else(|e| panic!("{method} {path}: body: {e:?}"));
        let done = invocation.completion.wait().await;
        assert_eq!(done.failure, None, "{method} {path}");
        (status, pages, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn ok(&self, method: &str, path: &str, body: &str) -> String {
        let (status, _, text) = self.call(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {text}"
        );
        text
    }
}

fn memory() -> Arc<MemoryKeyValue> {
    Arc::new(MemoryKeyValue::new())
}

/// A backend whose every call first waits a little, like a database round trip: the
/// guest is suspended on a pending host future, and concurrent invocations interleave.
struct Delayed(MemoryKeyValue);

impl Delayed {
    async fn pause() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

impl KeyValueBackend for Delayed {
    fn get<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move {
            Self::pause().await;
            self.0.get(scope, bucket, key).await
        })
    }
    fn set<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            Self::pause().await;
            self.0.set(scope, bucket, key, value).await
        })
    }
    fn delete<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            Self::pause().await;
            self.0.delete(scope, bucket, key).await
        })
    }
    fn exists<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            Self::pause().await;
            self.0.exists(scope, bucket, key).await
        })
    }
    fn list_keys<'a>(
        &'a self,
        scope: &'a str,
        bucket: &'a str,
        cursor: Option<String>,
    ) -> BoxFuture<'a, Result<KeyPage, String>> {
        Box::pin(async move {
            Self::pause().await;
            self.0.list_keys(scope, bucket, cursor).await
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
            Self::pause().await;
            self.0.increment(scope, bucket, key, delta).await
        })
    }
    // get_many / set_many / delete_many: the trait's provided methods (one call per
    // key, each delayed).
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_get_delete_exists() {
    let kv = Arc::new(Delayed(MemoryKeyValue::new()));
    let f = Function::testbed("crud", Some(kv.clone()));

    assert_eq!(f.call("PUT", "/kv/set/b/greeting", "hello").await.0, 204);
    assert_eq!(f.ok("GET", "/kv/get/b/greeting", "").await, "hello");
    assert_eq!(f.ok("GET", "/kv/exists/b/greeting", "").await, "true");
    // What the guest stored is what the backend holds, under the function's scope.
    assert_eq!(
        kv.get("crud", "b", "greeting").await,
        Ok(Some(b"hello".to_vec()))
    );
    // Overwrite; keys may hold '/' and escapes.
    f.ok("PUT", "/kv/set/b/greeting", "bye").await;
    assert_eq!(f.ok("GET", "/kv/get/b/greeting", "").await, "bye");
    f.ok("PUT", "/kv/set/b/dir/x%20y", "nested").await;
    assert_eq!(
        kv.get("crud", "b", "dir/x y").await,
        Ok(Some(b"nested".to_vec()))
    );

    assert_eq!(f.call("DELETE", "/kv/del/b/greeting", "").await.0, 204);
    let (status, _, body) = f.call("GET", "/kv/get/b/greeting", "").await;
    assert_eq!((status, body.as_str()), (404, "no such key"));
    assert_eq!(f.ok("GET", "/kv/exists/b/greeting", "").await, "false");
    // Deleting a missing key is fine.
    assert_eq!(f.call("DELETE", "/kv/del/b/greeting", "").await.0, 204);

    // `open("")` is the bucket "default".
    f.ok("PUT", "/kv/set//k", "in default").await;
    assert_eq!(
        kv.get("crud", "default", "k").await,
        Ok(Some(b"in default".to_vec()))
    );
    assert_eq!(f.ok("GET", "/kv/get/default/k", "").await, "in default");

    // Buckets of one function are separate too.
    let (status, _, _) = f.call("GET", "/kv/get/other/k", "").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_keys_follows_cursors() {
    let kv = Arc::new(Delayed(MemoryKeyValue::with_page_size(3)));
    let f = Function::testbed("lister", Some(kv.clone()));

    let (status, pages, body) = f.call("GET", "/kv/keys/b", "").await;
    assert_eq!(
        (status, pages.as_deref(), body.as_str()),
        (200, Some("1"), "[]")
    );

    for i in 0..10 {
        f.ok("PUT", &format!("/kv/set/b/key{i:02}"), "v").await;
    }
    f.ok("PUT", "/kv/set/elsewhere/zzz", "v").await;
    let (status, pages, body) = f.call("GET", "/kv/keys/b", "").await;
    assert_eq!(status, 200);
    // 10 keys in pages of 3: 4 pages, each cursor handed back by the host.
    assert_eq!(pages.as_deref(), Some("4"));
    let keys: Vec<String> = serde_json::from_str(&body).unwrap();
    let expected: Vec<String> = (0..10).map(|i| format!("key{i:02}")).collect();
    assert_eq!(keys, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_set_get_delete() {
    let kv = Arc::new(Delayed(MemoryKeyValue::new()));
    let f = Function::testbed("batcher", Some(kv.clone()));

    let body = f
        .ok(
            "POST",
            "/kv/batch/b?get=missing",
            r#"{"a":"1","b":"two","c":{"x":1}}"#,
        )
        .await;
    let got: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"a": "1", "b": "two", "c": "{\"x\":1}", "missing": null})
    );
    assert_eq!(kv.get("batcher", "b", "b").await, Ok(Some(b"two".to_vec())));

    assert_eq!(
        f.call("POST", "/kv/delmany/b", r#"["a","b","never"]"#)
            .await
            .0,
        204
    );
    let keys: Vec<String> = serde_json::from_str(&f.ok("GET", "/kv/keys/b", "").await).unwrap();
    assert_eq!(keys, ["c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_are_atomic() {
    let kv = Arc::new(Delayed(MemoryKeyValue::new()));
    let f = Arc::new(Function::testbed("counter", Some(kv.clone())));

    // 100 invocations at once, each on an instance of its own.
    let calls = (0..100).map(|_| {
        let f = f.clone();
        tokio::spawn(async move { f.ok("POST", "/kv/incr/c/hits", "").await })
    });
    let mut seen: Vec<i64> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|answer| answer.unwrap().parse().unwrap())
        .collect();
    seen.sort_unstable();
    // Every increment saw a different value: 1..=100.
    assert_eq!(seen, (1..=100).collect::<Vec<i64>>());
    assert_eq!(f.ok("GET", "/kv/get/c/hits", "").await, "100");

    // Deltas other than 1, negative ones in two's complement through the u64 WIT.
    assert_eq!(f.ok("POST", "/kv/incr/c/hits?by=-105", "").await, "-5");
    assert_eq!(f.ok("POST", "/kv/incr/c/hits?by=7", "").await, "2");
    assert_eq!(f.ok("POST", "/kv/incr/c/fresh?by=0", "").await, "0");

    // A value that is not a number is a kv error, as text.
    f.ok("PUT", "/kv/set/c/word", "hello").await;
    let (status, _, body) = f.call("POST", "/kv/incr/c/word", "").await;
    assert_eq!(status, 500);
    assert!(body.contains("not a decimal integer"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_do_not_see_each_others_buckets() {
    let kv = memory();
    let alpha = Function::testbed("alpha", Some(kv.clone()));
    let beta = Function::testbed("beta", Some(kv.clone()));

    alpha.ok("PUT", "/kv/set/shared/k", "alpha's").await;
    alpha.ok("POST", "/kv/incr/shared/n?by=3", "").await;
    assert_eq!(beta.call("GET", "/kv/get/shared/k", "").await.0, 404);
    assert_eq!(beta.ok("GET", "/kv/exists/shared/k", "").await, "false");
    assert_eq!(beta.ok("GET", "/kv/keys/shared", "").await, "[]");
    assert_eq!(beta.ok("POST", "/kv/incr/shared/n", "").await, "1");
    beta.ok("PUT", "/kv/set/shared/k", "beta's").await;
    assert_eq!(alpha.ok("GET", "/kv/get/shared/k", "").await, "alpha's");
    assert_eq!(beta.ok("GET", "/kv/get/shared/k", "").await, "beta's");
    assert_eq!(alpha.ok("POST", "/kv/incr/shared/n", "").await, "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bucket_names_are_errors() {
    let f = Function::testbed("names", Some(memory()));
    let long = "x".repeat(65);
    for (path, shown) in [
        ("/kv/get/bad%20name/k".to_owned(), "\"bad name\""),
        (format!("/kv/get/{long}/k"), long.as_str()),
        ("/kv/set/caf%C3%A9/k".to_owned(), "\"café\""),
    ] {
        let (status, _, body) = f.call("GET", &path, "").await;
        assert_eq!(status, 500, "{path}: {body}");
        assert!(body.starts_with("bucket name "), "{body}");
        assert!(body.contains(shown), "{body}");
        assert!(
            body.contains("use 1-64 characters of A-Z, a-z, 0-9, '_', '.' and '-'"),
            "{body}"
        );
    }
    // 64 characters of every allowed kind are fine.
    let ok = format!("{}.-_9", "A".repeat(60));
    assert_eq!(f.call("GET", &format!("/kv/get/{ok}/k"), "").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_backend_every_call_fails_cleanly() {
    let f = Function::testbed("nokv", None);
    for (method, path) in [
        ("GET", "/kv/get/b/k"),
        ("PUT", "/kv/set/b/k"),
        ("POST", "/kv/incr/b/k"),
        ("GET", "/kv/keys/b"),
    ] {
        let (status, _, body) = f.call(method, path, "").await;
        assert_eq!(
            (status, body.as_str()),
            (500, "key-value storage is not configured"),
            "{method} {path}"
        );
    }
    // The component is still a working wasi:http proxy.
    let echo: serde_json::Value = serde_json::from_str(&f.ok("POST", "/echo", "hi").await).unwrap();
    assert_eq!(echo["body"], "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_without_keyvalue_imports_still_run() {
    let shared = shared();
    let bytes = read_fixture(&workspace_root().join("examples/hello/hello.wasm"));
    let hello = shared
        .engine
        .compile("hello", &bytes)
        .expect("hello compiles and links");
    let mut engine = shared.engine.clone();
    engine.set_key_value(Some(memory()));
    let f = Function::new(engine, hello, "hello");
    let (status, _, body) = f.call("GET", "/", "").await;
    assert_eq!(status, 200, "{body}");
}
