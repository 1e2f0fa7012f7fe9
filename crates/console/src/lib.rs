//! The web console: the single-page app built from `web/` (`cargo xtask console`, run by
//! `cargo xtask up` and `cargo xtask ci`) into `web/dist/`, embedded in the binary and
//! served by the admin listener at `/`. The app talks only to the control API
//! (`/api/v1`, same origin, the admin token as a bearer token), so these files need no
//! token and reveal nothing: the page asks for the token.
//!
//! A binary built before the assets were gives a page that says how to build them.
//!
//! The app is Vite 7 + Preact 10 + uPlot with its own CSS and hash routing, so the server
//! serves only `/`, `/assets/…` and the root files (`/favicon.svg`). The page keeps the
//! token in `sessionStorage`; it tails logs with `fetch` and a stream reader over the SSE
//! endpoint, because `EventSource` cannot send the bearer header. The files are embedded
//! with rust-embed: `debug-embed` (debug builds embed too, so tests run what users get),
//! `allow_missing` (without the assets gureum still builds and `/` answers 503), and
//! `build.rs` reruns when `web/dist` changes. The built files are not committed: the build
//! needs npm's registry, which every build from source here reaches. Every answer carries
//! [`CONTENT_SECURITY_POLICY_VALUE`] (`default-src 'self'`, no inline script,
//! `connect-src 'self'`), `X-Frame-Options: DENY`, `nosniff` and `no-referrer`; hashed
//! assets are `immutable`, the rest `no-cache`, all with an ETag.

use axum::body::Body;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "web/dist/"]
#[allow_missing = true]
struct Assets;

/// The console may load only its own files and call only its own origin.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// Shown when the binary was built without the console's assets.
const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
<title>gureum console not built</title><h1>The console was not built into this binary</h1>\
<p>Build its assets with <code>cargo xtask console</code> (needs Node.js and npm), then \
rebuild gureum; <code>cargo xtask up</code> does both. The control API at \
<code>/api/v1</code> works without it.</p></html>";

/// Answers a GET for a console path: `/` (the app), `/assets/…` (hashed, cached for a
/// year) and the other files at the root (`/favicon.svg`).
pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let Some(file) = Assets::get(path) else {
        if path == "index.html" {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/html; charset=utf-8",
                NOT_BUILT,
            );
        }
        return page(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "no such console file; the console is at /\n",
        );
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let cache = if path.starts_with("assets/") {
        // Vite puts a content hash in these names: a new build gets new names.
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = if headers
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(file.data.into_owned()));
        if let Ok(value) = HeaderValue::from_str(file.metadata.mimetype()) {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    secure(headers);
    response
}

fn page(status: StatusCode, content_type: &'static str, body: &'static str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(headers);
    response
}

/// Headers every console answer carries: no framing, no sniffing, no referrer, and a
/// policy that keeps the page to its own origin.
fn secure(headers: &mut HeaderMap) {
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_files_are_404_and_carry_the_policy() {
        let response = serve(Uri::from_static("/nope.js"), HeaderMap::new()).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers()[CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY_VALUE
        );
        assert_eq!(response.headers()[X_FRAME_OPTIONS], "DENY");
    }

    #[tokio::test]
    async fn the_index_is_the_app_or_says_how_to_build_it() {
        let response = serve(Uri::from_static("/"), HeaderMap::new()).await;
        let built = Assets::get("index.html").is_some();
        let expected = if built {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        assert_eq!(response.status(), expected);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
        if built {
            let etag = response.headers()[ETAG].clone();
            let mut headers = HeaderMap::new();
            headers.insert(IF_NONE_MATCH, etag);
            let again = serve(Uri::from_static("/"), headers).await;
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        }
    }
}
