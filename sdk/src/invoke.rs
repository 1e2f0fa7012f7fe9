//! Calling other functions through the gateway at `$GUREUM_API/fn/NAME/…`.
//!
//! [`invoke`] waits for the other function's response; [`invoke_async`] queues the call
//! (header `x-gureum-invocation-type: event`): gureum stores it durably, answers with its
//! invocation id at once, and runs it with retries — at least once — moving it to the
//! function's dead-letter list if every attempt fails. [`Invocation`] sets the method,
//! path, headers and an idempotency key.
//!
//! Calls go to the public gateway like any client's. A call sent now carries no token
//! of the calling function's (it would reach the called function): a function behind
//! `auth` needs a user's access token, passed with [`Invocation::header`]. A queued call
//! carries the calling function's token unless it has an `Authorization` of its own:
//! the gateway takes queued events only from signed-in users and functions (unless the
//! called function's `[async] public = true`), and removes a function's token before it
//! stores the event.
//!
//! ```no_run
//! # async fn example() -> Result<(), gureum_sdk::http::Error> {
//! let id = gureum_sdk::invoke::invoke_async("send-email", r#"{"to":"ada@example.org"}"#).await?;
//! println!("queued as {id}");
//!
//! let mut response = gureum_sdk::invoke::invoke("price", "{}").await?;
//! let price = response.body_mut().str_contents().await?;
//! # Ok(())
//! # }
//! ```

use serde::Deserialize;
use wstd::http::{Body, Method, Request, Response};

use crate::Error;
use crate::api::{api_error, base_url, send};

/// A call of another function, to send now ([`Invocation::send`]) or to queue
/// ([`Invocation::queue`]).
///
/// ```no_run
/// use gureum_sdk::invoke::Invocation;
/// use gureum_sdk::http::Method;
///
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// let queued = Invocation::new("report")
///     .method(Method::PUT)
///     .path("/monthly?month=11")
///     .header("content-type", "application/json")
///     .body(r#"{"format":"pdf"}"#)
///     .idempotency_key("report-2026-11")
///     .queue()
///     .await?;
/// println!("{} (repeat: {})", queued.invocation_id, queued.duplicate);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    function: String,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// What [`Invocation::queue`] answers.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// let queued = gureum_sdk::invoke::Invocation::new("job").queue().await?;
/// assert!(!queued.invocation_id.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Queued {
    /// The id every attempt carries (`x-gureum-invocation-id`), also in the logs.
    pub invocation_id: String,
    /// True when the idempotency key was seen within 24 h: nothing new was queued and the
    /// id is the first call's.
    #[serde(default)]
    pub duplicate: bool,
}

impl Invocation {
    /// A `POST /` with an empty body to `function` (`NAME`, or `NAME@VERSION` for a
    /// pinned version).
    ///
    /// ```
    /// let call = gureum_sdk::invoke::Invocation::new("resize@3");
    /// assert_eq!(call.url("http://127.0.0.1:8080"), "http://127.0.0.1:8080/fn/resize@3/");
    /// ```
    pub fn new(function: impl Into<String>) -> Self {
        Invocation {
            function: function.into(),
            method: Method::POST,
            path: "/".to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The method (default `POST`).
    ///
    /// ```
    /// let call = gureum_sdk::invoke::Invocation::new("f").method(gureum_sdk::http::Method::GET);
    /// ```
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// The path (and query) the called function sees, e.g. `/items/7?full=1` (default
    /// `/`; a missing leading `/` is added).
    ///
    /// ```
    /// let call = gureum_sdk::invoke::Invocation::new("f").path("items/7?full=1");
    /// assert_eq!(call.url("http://h"), "http://h/fn/f/items/7?full=1");
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        self
    }

    /// Adds a header.
    ///
    /// ```
    /// let call = gureum_sdk::invoke::Invocation::new("f").header("content-type", "application/json");
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The body (default empty).
    ///
    /// ```
    /// let call = gureum_sdk::invoke::Invocation::new("f").body("{}");
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// For [`Invocation::queue`]: a repeat with the same key within 24 h queues nothing
    /// and answers the first call's id.
    ///
    /// ```
    /// let call = gureum_sdk::invoke::Invocation::new("f").idempotency_key("order-42");
    /// ```
    pub fn idempotency_key(self, key: impl Into<String>) -> Self {
        self.header("idempotency-key", key)
    }

    /// The URL this call goes to, under the platform's base URL `base`.
    ///
    /// ```
    /// let call = gureum_sdk::invoke::Invocation::new("f").path("/x");
    /// assert_eq!(call.url("http://h/"), "http://h/fn/f/x");
    /// ```
    pub fn url(&self, base: &str) -> String {
        format!(
            "{}/fn/{}{}",
            base.trim_end_matches('/'),
            self.function,
            self.path
        )
    }

    fn request(self, queued: bool) -> Result<(Request<Body>, String), Error> {
        let url = self.url(&base_url()?);
        let mut builder = Request::builder().method(self.method).uri(url.as_str());
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if queued {
            builder = builder.header("x-gureum-invocation-type", "event");
            let authorized = self
                .headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
            if !authorized && let Ok(token) = crate::api::function_token() {
                builder = builder.header("authorization", format!("Bearer {token}"));
            }
        }
        let request = builder
            .body(Body::from(self.body))
            .map_err(|error| Error::Http(format!("building the request to {url}: {error}")))?;
        Ok((request, url))
    }

    /// Calls the function and returns its response, whatever its status: a 404
    /// `function_not_found` or a 502 of the gateway is a response too (its body is
    /// `{"error": {"code", "message"}}`).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), gureum_sdk::Error> {
    /// let response = gureum_sdk::invoke::Invocation::new("price").path("/apples").send().await?;
    /// if !response.status().is_success() {
    ///     println!("price answered {}", response.status());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send(self) -> Result<Response<Body>, Error> {
        let (request, url) = self.request(false)?;
        send(request, &url).await
    }

    /// Queues the call; answers once it is stored. An unknown function is an
    /// [`Error::Api`] with status 404, a full queue 429 `queue_full`.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), gureum_sdk::Error> {
    /// let queued = gureum_sdk::invoke::Invocation::new("cleanup").queue().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn queue(self) -> Result<Queued, Error> {
        let (request, url) = self.request(true)?;
        let response = send(request, &url).await?;
        let (parts, mut body) = response.into_parts();
        let bytes = body
            .contents()
            .await
            .map_err(|error| Error::Http(format!("reading the answer of {url}: {error:#}")))?;
        if parts.status.as_u16() != 202 {
            return Err(api_error(parts.status.as_u16(), &parts.headers, bytes));
        }
        serde_json::from_slice(bytes)
            .map_err(|error| Error::Json(format!("decoding the answer of {url}: {error}")))
    }
}

/// `POST /` to `function` with `body`; returns its response.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// let response = gureum_sdk::invoke::invoke("price", r#"{"item":"apples"}"#).await?;
/// # Ok(())
/// # }
/// ```
pub async fn invoke(function: &str, body: impl Into<Vec<u8>>) -> Result<Response<Body>, Error> {
    Invocation::new(function).body(body).send().await
}

/// Queues `POST /` to `function` with `body`; returns the invocation id.
///
/// ```no_run
/// # async fn example() -> Result<(), gureum_sdk::Error> {
/// let id = gureum_sdk::invoke::invoke_async("thumbnail", r#"{"file":"f1"}"#).await?;
/// # Ok(())
/// # }
/// ```
pub async fn invoke_async(function: &str, body: impl Into<Vec<u8>>) -> Result<String, Error> {
    Ok(Invocation::new(function)
        .body(body)
        .queue()
        .await?
        .invocation_id)
}
