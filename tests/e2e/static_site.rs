//! Static hosting (`[static]`): a static-only site deployed with the CLI, served from
//! memory with content types, ETags, directory indexes and SPA fallback, versioned and
//! rolled back with the function; files served before a function beside them.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Server, function_dir, shared};

/// Writes `files` (path, content) under `dir`.
fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// A site directory: `gureum.toml` with `manifest` and `public/` with `files`.
fn site_dir(manifest: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gureum.toml"), manifest).unwrap();
    std::fs::create_dir_all(dir.path().join("public")).unwrap();
    write_files(&dir.path().join("public"), files);
    dir
}

fn deploy_dir(server: &Server, dir: &Path) -> String {
    let output = server.cli(&["deploy", dir.to_str().unwrap()]);
    assert!(output.success, "deploy failed: {output:?}");
    output.stdout
}

/// A client that does not follow redirects, to see them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The status line and body of a request sent byte for byte (clients normalise `..`).
async fn raw_get(server: &Server, path: &str) -> (u16, String) {
    let address = server.public_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[tokio::test]
async fn a_static_only_site_is_served_from_memory_versioned_and_rolled_back() {
    let server = shared().await;
    let url = |path: &str| format!("{}{path}", server.public_url);
    let client = no_redirects();
    let dir = site_dir(
        "name = \"site\"\n[static]\ndir = \"public\"\n",
        &[
            ("index.html", "<h1>home v1</h1>"),
            ("css/app.css", "body { color: red }"),
            ("docs/index.html", "<h1>docs</h1>"),
            (".env", "SECRET=1"),
        ],
    );
    let stdout = deploy_dir(server, dir.path());
    assert!(stdout.contains("deployed site version 1"), "{stdout}");
    assert!(
        stdout.contains(&format!("url:    {}/fn/site/", server.public_url)),
        "{stdout}"
    );
    assert!(stdout.contains("static: 3 files"), "{stdout}");

    // The index, from memory, with the platform's version header and no invocation.
    let index = client.get(url("/fn/site/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    let headers = index.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=0, must-revalidate"
    );
    assert_eq!(headers["x-gureum-version"], "1");
    assert!(headers.get("x-gureum-invocation-id").is_none());
    assert_eq!(index.text().await.unwrap(), "<h1>home v1</h1>");
    // Without the slash: a redirect to it, so relative links resolve inside the site.
    let bare = client.get(url("/fn/site")).send().await.unwrap();
    assert_eq!(bare.status(), 301);
    assert_eq!(bare.headers()["location"], "./site/");
    let docs = client.get(url("/fn/site/docs?x=1")).send().await.unwrap();
    assert_eq!(docs.status(), 301);
    assert_eq!(docs.headers()["location"], "./docs/?x=1");
    let docs = client.get(url("/fn/site/docs/")).send().await.unwrap();
    assert_eq!(docs.text().await.unwrap(), "<h1>docs</h1>");

    // A nested asset: its type, a longer cache, a strong ETag honoured by If-None-Match.
    let css = client
        .get(url("/fn/site/css/app.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(css.headers()["cache-control"], "public, max-age=3600");
    let etag = css.headers()["etag"].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    assert_eq!(css.text().await.unwrap(), "body { color: red }");
    let cached = client
        .get(url("/fn/site/css/app.css"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(cached.headers()["etag"], etag.as_str());
    assert_eq!(cached.text().await.unwrap(), "");
    let head = client
        .head(url("/fn/site/css/app.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "19");
    assert_eq!(head.text().await.unwrap(), "");

    // Unknown paths (spa is off), dot files, other methods, traversal.
    for missing in ["/fn/site/users/7", "/fn/site/nope.js", "/fn/site/.env"] {
        let response = client.get(url(missing)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{missing}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "file_not_found", "{missing}");
    }
    let post = client.post(url("/fn/site/")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    for traversal in [
        "/fn/site/../site/index.html",
        "/fn/site/css/../../gureum.toml",
        "/fn/site/css/%2e%2e/%2E%2E/gureum.toml",
        "/fn/site/..%2fgureum.toml",
    ] {
        let (status, response) = raw_get(server, traversal).await;
        assert_eq!(status, 400, "{traversal}: {response}");
        assert!(response.contains("bad_path"), "{traversal}: {response}");
    }

    // A redeploy with a changed file serves the new content (new version, new ETag).
    write_files(
        &dir.path().join("public"),
        &[("index.html", "<h1>home v2</h1>")],
    );
    let stdout = deploy_dir(server, dir.path());
    assert!(stdout.contains("deployed site version 2"), "{stdout}");
    let index = client.get(url("/fn/site/")).send().await.unwrap();
    assert_eq!(index.headers()["x-gureum-version"], "2");
    assert_eq!(index.text().await.unwrap(), "<h1>home v2</h1>");
    let unchanged = client
        .get(url("/fn/site/css/app.css"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304, "same file, same ETag");

    // Rollback brings the old files back; a pinned version still serves its own.
    let rolled = server.cli(&["rollback", "site"]);
    assert!(rolled.success, "{rolled:?}");
    let index = client.get(url("/fn/site/")).send().await.unwrap();
    assert_eq!(index.headers()["x-gureum-version"], "1");
    assert_eq!(index.text().await.unwrap(), "<h1>home v1</h1>");
    let pinned = client.get(url("/fn/site@2/")).send().await.unwrap();
    assert_eq!(pinned.headers()["x-gureum-version"], "2");
    assert_eq!(pinned.text().await.unwrap(), "<h1>home v2</h1>");
    let pinned_post = client.post(url("/fn/site@2/")).send().await.unwrap();
    assert_eq!(pinned_post.status(), 405);

    // The listing and the version list show the site like any function.
    let listed = server.cli(&["ls"]);
    assert!(
        listed.success && listed.stdout.contains("site"),
        "{listed:?}"
    );
    let versions = server.cli(&["versions", "site"]);
    assert!(versions.success, "{versions:?}");
}

#[tokio::test]
async fn spa_fallback_manifest_routes_and_refused_sites() {
    let server = shared().await;
    let url = |path: &str| format!("{}{path}", server.public_url);
    let dir = site_dir(
        "name = \"spa-site\"\nroutes = [\"/spa-e2e/*\"]\n[static]\ndir = \"public\"\nspa = true\n",
        &[
            ("index.html", "<div id=app></div>"),
            ("spa-e2e/hello.txt", "hello"),
        ],
    );
    deploy_dir(server, dir.path());
    for path in [
        "/fn/spa-site/users/7",
        "/fn/spa-site/",
        "/spa-e2e/settings/profile",
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.text().await.unwrap(),
            "<div id=app></div>",
            "{path}"
        );
    }
    // A path that looks like a file is a missing file, not the app.
    assert_eq!(server.get("/fn/spa-site/missing.js").await.status(), 404);
    // Manifest routes pass the path unchanged: the files live under the route's path.
    let routed = server.get("/spa-e2e/hello.txt").await;
    assert_eq!(routed.status(), 200);
    assert_eq!(
        routed.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(routed.text().await.unwrap(), "hello");
    let head = crate::http().head(url("/spa-e2e/x")).send().await.unwrap();
    assert_eq!(head.status(), 200);

    // A missing directory is named, before anything is uploaded.
    let missing = tempfile::tempdir().unwrap();
    std::fs::write(
        missing.path().join("gureum.toml"),
        "name = \"no-dir\"\n[static]\ndir = \"public\"\n",
    )
    .unwrap();
    let output = server.cli(&["deploy", missing.path().to_str().unwrap()]);
    assert!(!output.success, "{output:?}");
    assert!(
        output.stderr.contains("static.dir") && output.stderr.contains("does not exist"),
        "{output:?}"
    );
    // Over the size limit: named with the limit (a sparse file, nothing is written).
    let big = site_dir("name = \"too-big\"\n[static]\ndir = \"public\"\n", &[]);
    std::fs::File::create(big.path().join("public/video.mp4"))
        .unwrap()
        .set_len(65 * 1024 * 1024)
        .unwrap();
    let output = server.cli(&["deploy", big.path().to_str().unwrap()]);
    assert!(!output.success, "{output:?}");
    assert!(output.stderr.contains("64 MiB"), "{output:?}");
    assert_eq!(server.get("/fn/too-big/").await.status(), 404);
}

#[tokio::test]
async fn files_are_served_before_the_function_beside_them() {
    let server = shared().await;
    let url = |path: &str| format!("{}{path}", server.public_url);
    let dir = function_dir("static-fn", "[static]\ndir = \"public\"");
    write_files(
        &dir.path().join("public"),
        &[("index.html", "<h1>app</h1>"), ("app.js", "console.log(1)")],
    );
    let stdout = deploy_dir(server, dir.path());
    assert!(stdout.contains("static: 2 files"), "{stdout}");

    let script = server.get("/fn/static-fn/app.js").await;
    assert_eq!(script.status(), 200);
    assert!(script.headers().get("x-gureum-invocation-id").is_none());
    let content_type = script.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.contains("javascript"), "{content_type}");
    assert_eq!(script.text().await.unwrap(), "console.log(1)");
    let index = server.get("/fn/static-fn/").await;
    assert_eq!(index.text().await.unwrap(), "<h1>app</h1>");

    // No file there: the function runs.
    let echoed = server.get("/fn/static-fn/echo?a=1").await;
    assert_eq!(echoed.status(), 200);
    assert!(echoed.headers().get("x-gureum-invocation-id").is_some());
    let echoed: serde_json::Value = echoed.json().await.unwrap();
    assert_eq!(echoed["path"], "/echo?a=1");
    // Other methods go to the function, even on a file's path.
    let posted = crate::http()
        .post(url("/fn/static-fn/app.js"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(posted.headers().get("x-gureum-invocation-id").is_some());
    assert_eq!(posted.text().await.unwrap(), "no such testbed route");
    // `..` is not a file; the function gets it as it came.
    let (status, response) = raw_get(server, "/fn/static-fn/x/../echo").await;
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("\"path\":\"/x/../echo\""), "{response}");
}

#[tokio::test]
async fn a_site_is_loaded_from_the_store_after_a_restart() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let server = Server::start_in(&data_dir, None);
    let dir = site_dir(
        "name = \"durable-site\"\n[static]\ndir = \"public\"\n",
        &[("index.html", "one")],
    );
    deploy_dir(&server, dir.path());
    write_files(&dir.path().join("public"), &[("index.html", "two")]);
    deploy_dir(&server, dir.path());
    assert!(server.cli(&["rollback", "durable-site"]).success);
    assert_eq!(server.stop(), Some(0));

    let server = Server::start_in(&data_dir, None);
    let live = server.get("/fn/durable-site/").await;
    assert_eq!(live.headers()["x-gureum-version"], "1");
    assert_eq!(live.text().await.unwrap(), "one");
    let pinned = server.get("/fn/durable-site@2/").await;
    assert_eq!(pinned.text().await.unwrap(), "two");
    assert_eq!(server.stop(), Some(0));
}
