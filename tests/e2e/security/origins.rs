//! Finding 11 (design): every function, static site and the platform's `/auth/v1` and
//! `/data/v1` shared one origin, so any function (a wasm one too) could serve a page that
//! reads another app's tokens from `localStorage`. Functions can now have origins of
//! their own: `--functions-domain D` serves function NAME at every path of `NAME.D`
//! (nothing of the platform on that origin), and a route may name its host
//! (`routes = ["notes.example.org/*"]`), matched only there.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{Server, deploy, function_dir};

fn get(host: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n")
}

/// Sends `request` as is and reads the whole answer (the request says `connection:
/// close`, so the server ends it): the Host header is ours to choose.
async fn raw_exchange(base: &str, request: &str) -> String {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the answer within 10 s")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn each_function_answers_on_a_host_of_its_own() {
    let server = Server::start_with(&["--functions-domain", "fn.test"]);
    let _tb = deploy(&server, "tb", "");
    // The whole host is the function's: its paths unprefixed, the platform's paths too.
    let echo = raw_exchange(&server.public_url, &get("tb.fn.test", "/echo")).await;
    assert!(echo.starts_with("HTTP/1.1 200"), "{echo}");
    assert!(echo.contains("\"path\":\"/echo\""), "{echo}");
    let port = server.public_url.rsplit(':').next().unwrap().to_string();
    let with_port = raw_exchange(
        &server.public_url,
        &get(&format!("TB.fn.test:{port}"), "/echo"),
    )
    .await;
    assert!(with_port.starts_with("HTTP/1.1 200"), "{with_port}");
    let auth = raw_exchange(&server.public_url, &get("tb.fn.test", "/auth/v1/user")).await;
    assert!(
        auth.contains("no such testbed route"),
        "the function's, not the platform's: {auth}"
    );
    let missing = raw_exchange(&server.public_url, &get("nosuch.fn.test", "/echo")).await;
    assert!(
        missing.starts_with("HTTP/1.1 404") && missing.contains("function_not_found"),
        "{missing}"
    );
    // The main origin is unchanged.
    let main = raw_exchange(&server.public_url, &get("127.0.0.1", "/fn/tb/echo")).await;
    assert!(main.starts_with("HTTP/1.1 200"), "{main}");
}

#[tokio::test]
async fn a_route_that_names_a_host_answers_only_there() {
    let server = Server::start();
    let _app = deploy(&server, "app", "routes = [\"app.test/*\"]\n");
    let there = raw_exchange(&server.public_url, &get("app.test", "/echo")).await;
    assert!(there.starts_with("HTTP/1.1 200"), "{there}");
    let elsewhere = raw_exchange(&server.public_url, &get("other.test", "/echo")).await;
    assert!(
        elsewhere.starts_with("HTTP/1.1 404") && elsewhere.contains("route_not_found"),
        "{elsewhere}"
    );
    // The platform's API stays on every host, the app's own origin included.
    let api = raw_exchange(&server.public_url, &get("app.test", "/auth/v1/jwks.json")).await;
    assert!(api.starts_with("HTTP/1.1 200"), "{api}");
    // Hosts are plain lowercase names.
    let dir = function_dir("bad", "routes = [\"App.Test/*\"]\n");
    let refused = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(
        !refused.success
            && refused.stderr.contains("lowercase DNS name")
            && refused.stderr.contains("routes[0]"),
        "{refused:?}"
    );
}
