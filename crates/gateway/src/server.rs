//! The accept loop and the request handler of the public listener.
//!
//! [`serve_connections`] runs every public listener (public, `--http-listen`, loopback).
//! It wraps HTTP/1 request bodies in `DrainOnDrop`; takes the client's address from the
//! TCP peer unless the peer is a `--trusted-proxy` (then [`client_address`]: the
//! right-most forwarded address that is not a proxy), and drops `x-forwarded-proto` from
//! anyone else; sets `x-forwarded-proto: https` over TLS; and adds HSTS (`--hsts`). On
//! the `--http-listen` listener with `--http-redirect`, everything but ACME challenges
//! gets a 308 to HTTPS.
//!
//! `route_public` first strips every `x-gureum-*` header but `x-gureum-invocation-type`,
//! then routes: ACME challenges; with `--functions-domain D`, a Host `NAME.D` sends every
//! path to NAME, unprefixed; `/ws/NAME` → `Hub::accept` (after the function's `auth`
//! policy); `/@connections/…` and `/channels/…` → `Hub::platform_api`; `/auth/v1`,
//! `/data/v1`, `/kv/v1` → `Services::route`; anything else → [`handle`].
//!
//! [`handle`] finds the function: `/healthz` | `/fn/NAME[@V]/rest` (prefix stripped,
//! `x-forwarded-prefix` set; a bare `/fn/NAME` is marked [`gureum_invoke::MountRoot`]) |
//! a manifest route (`Invoker::route`: the host's own routes, then host-less ones) | a
//! JSON 404. A `content-length` over the limit is a 413 (with `connection: close` past
//! the drain bound, [`MAX_DRAIN_BYTES`]); any other body is wrapped in `LimitedBody`.
//! Paths reaching `/.gureum/` in any spelling are refused. The function's `auth` policy
//! is checked before it is invoked or queued (401 or 403: the function never runs), and
//! the claims are passed in `x-gureum-auth-claims`, an incoming one always dropped; the
//! lambda runtime moves them into `requestContext.authorizer.jwt.claims`.
//!
//! With `x-gureum-invocation-type: event` (or `X-Amz-Invocation-Type: Event`) the request
//! is queued after routing: the caller must be allowed to queue (`[async] public`, a
//! user, or a function granted `invoke`), the body is read under the async limit
//! (`--max-async-body-bytes`), the `idempotency-key` is hashed with the caller's scope,
//! then `Queue::enqueue` → 202 with the invocation id.
//!
//! Every error answer goes through [`public_error`], that is
//! [`gureum_api_types::render`].

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gureum_api_types::{Failure, PublicError, render};
use gureum_invoke::{InvokeError, Invoker, VersionSelector};
use gureum_model::Trigger;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;

use gureum_queue::{AsyncRequest, Queue, QueueError};
use gureum_websocket::{AcceptError, Hub};

use crate::body::{DrainOnDrop, LimitedBody, MAX_DRAIN_BYTES};
use crate::services::{Services, is_service_path};

/// Default request body limit (API Gateway's payload limit for Lambda is 6 MiB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 6 * 1024 * 1024;

/// Paths the platform uses to deliver events to functions (never reachable from outside).
pub const PLATFORM_PATH: &str = "/.gureum/";

/// Body type of every gateway response.
pub type ResponseBody = gureum_invoke::ResponseBody;

/// Settings of the public listener.
#[derive(Debug, Clone, Copy)]
pub struct GatewaySettings {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: u64,
    /// Largest body of an asynchronous invocation (it is stored until it runs).
    pub max_async_body_bytes: u64,
}

/// Default largest body of an asynchronous invocation: 1 MiB, as Lambda's (since 2025).
pub const DEFAULT_MAX_ASYNC_BODY_BYTES: u64 = 1024 * 1024;

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_async_body_bytes: DEFAULT_MAX_ASYNC_BODY_BYTES,
        }
    }
}

/// Everything the public listener dispatches to.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct PublicPlane {
    /// Function invocations.
    pub invoker: Arc<Invoker>,
    /// WebSocket connections and the platform API.
    pub hub: Arc<Hub>,
    /// Asynchronous invocations.
    pub queue: Arc<Queue>,
    /// Auth, data and key-value services.
    pub services: Arc<Services>,
    /// HTTP-01 answers for `--tls acme` (`/.well-known/acme-challenge/TOKEN`).
    pub acme: Option<Arc<gureum_tls::Challenges>>,
    /// `--functions-domain`: every path of `NAME.DOMAIN` goes to function NAME, each
    /// function on an origin of its own (lowercase, without a port).
    pub functions_domain: Option<Arc<str>>,
}

/// How one listener of the public plane behaves.
#[derive(Debug, Clone, Default)]
pub struct ListenerOptions {
    /// `Strict-Transport-Security` added to every response (HTTPS listeners).
    pub hsts: Option<HeaderValue>,
    /// The plain-HTTP listener beside an HTTPS one: everything but ACME challenges is
    /// redirected (308) to HTTPS on this port.
    pub redirect_to_https: Option<u16>,
    /// Proxies (`--trusted-proxy`) whose `X-Forwarded-For` / `Forwarded` name the client
    /// and whose `X-Forwarded-Proto` is believed; from anyone else these are not.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// Header and idle timeouts of its connections.
    pub connections: crate::ConnectionSettings,
}

/// The client of a request from `peer`: the peer itself, unless it is a trusted proxy;
/// then the right-most address of `X-Forwarded-For` (or RFC 7239 `Forwarded: for=`) that
/// is not a trusted proxy itself (each proxy appends the address it saw, so the ones on
/// the left are whatever the client claimed).
pub fn client_address(
    peer: std::net::IpAddr,
    headers: &http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| is_trusted_proxy(*ip, trusted);
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|hop| parse_hop(hop.trim()))
        .collect();
    if hops.is_empty() {
        hops = headers
            .get_all(http::header::FORWARDED)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.eq_ignore_ascii_case("for")
                        .then(|| parse_hop(value.trim().trim_matches('"')))
                        .flatten()
                })
            })
            .collect();
    }
    hops.iter()
        .rev()
        .find(|hop| !is_trusted(hop))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

fn is_trusted_proxy(ip: std::net::IpAddr, trusted: &[ipnet::IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// One address of a forwarding header: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or
/// `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<std::net::IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')?.split(']').next()?.parse().ok()
}

/// Serves one public listener (plain or HTTPS) until `shutdown` resolves, then stops
/// accepting and waits up to `grace` for in-flight requests.
pub async fn serve_connections(
    listener: gureum_tls::Listener,
    plane: PublicPlane,
    settings: GatewaySettings,
    options: ListenerOptions,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let plane = Arc::new(plane);
    let options = Arc::new(options);
    let connections = options.connections;
    let make_service = move |peer: std::net::SocketAddr, secure: bool| {
        let plane = plane.clone();
        let options = options.clone();
        service_fn(move |request: Request<hyper::body::Incoming>| {
            // A body the answer did not need is still read, so the client gets
            // the answer and the connection stays usable (see DrainOnDrop).
            let version = request.version();
            let mut request = request.map(|body| DrainOnDrop::new(body, version));
            let plane = plane.clone();
            let options = options.clone();
            let client = if is_trusted_proxy(peer.ip(), &options.trusted_proxies) {
                client_address(peer.ip(), request.headers(), &options.trusted_proxies)
            } else {
                // Only a trusted proxy says which scheme the client used.
                request.headers_mut().remove("x-forwarded-proto");
                peer.ip()
            };
            let client = Some(client);
            if secure {
                // Functions build their own absolute URLs from this (as behind a
                // proxy that terminates TLS).
                request
                    .headers_mut()
                    .insert("x-forwarded-proto", HeaderValue::from_static("https"));
            }
            async move {
                let mut response = match options.redirect_to_https {
                    Some(port) if !is_acme_challenge(&plane, request.uri().path()) => {
                        redirect_to_https(&request, port)
                    }
                    _ => route_public(&plane, settings, request, client).await,
                };
                if let Some(hsts) = &options.hsts {
                    response
                        .headers_mut()
                        .insert(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone());
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    crate::connections::serve(listener, connections, make_service, shutdown, grace).await;
}

fn is_acme_challenge(plane: &PublicPlane, path: &str) -> bool {
    plane.acme.is_some() && path.starts_with(gureum_tls::CHALLENGE_PATH)
}

/// 308 to the same host and path on HTTPS at `port` (308 keeps the method and body).
fn redirect_to_https<B>(request: &Request<B>, port: u16) -> Response<ResponseBody> {
    let host = request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str())
        });
    // Only a host (and port): no user info that would make the Location point elsewhere.
    let Some(authority) = host
        .and_then(|host| host.parse::<http::uri::Authority>().ok())
        .filter(|authority| !authority.as_str().contains('@'))
    else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "bad_host",
            "this listener redirects to HTTPS and needs a Host header naming the server, e.g. Host: example.org",
        );
    };
    let name = authority.host();
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let location = if port == 443 {
        format!("https://{name}{target}")
    } else {
        format!("https://{name}:{port}{target}")
    };
    let Ok(value) = HeaderValue::from_str(&location) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "bad_host",
            "the Host header cannot form an https:// URL; send Host: NAME[:PORT]",
        );
    };
    let mut response = Response::new(full(format!("use {location}\n")));
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    let headers = response.headers_mut();
    headers.insert(http::header::LOCATION, value);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// The public listener's paths: `/ws/NAME` (WebSocket), the platform API
/// (`/@connections/…`, `/channels/…`), the backend services (`/auth/v1`, `/data/v1`,
/// `/kv/v1`), else a function invocation.
async fn route_public(
    plane: &PublicPlane,
    settings: GatewaySettings,
    request: Request<DrainOnDrop<hyper::body::Incoming>>,
    client: Option<std::net::IpAddr>,
) -> Response<ResponseBody> {
    let PublicPlane {
        invoker,
        hub,
        queue,
        services,
        acme,
        functions_domain,
    } = plane;
    let mut request = request;
    strip_platform_headers(request.headers_mut());
    let path = request.uri().path();
    if let Some(challenges) = acme
        && let Some(token) = path.strip_prefix(gureum_tls::CHALLENGE_PATH)
    {
        return match challenges.answer(token).await {
            Some(answer) => {
                let mut response = Response::new(full(answer));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                response
            }
            None => error_response(
                StatusCode::NOT_FOUND,
                "acme_challenge_not_found",
                "no ACME challenge with this token is pending",
            ),
        };
    }
    // A function's own host serves that function alone, at every path (as a Lambda
    // function URL does): nothing of the platform's shares its origin.
    if let Some(domain) = functions_domain
        && let Some(host) = request_host(&request)
        && let Some(name) = host
            .strip_suffix(&**domain)
            .and_then(|rest| rest.strip_suffix('.'))
            .filter(|name| !name.is_empty() && !name.contains('.'))
    {
        let name = name.to_string();
        return handle_on(
            invoker,
            queue,
            Some(services),
            settings,
            request,
            client,
            Trigger::Http,
            Some(name),
        )
        .await;
    }
    if let Some(name) = path.strip_prefix("/ws/") {
        let name = name.trim_end_matches('/').to_string();
        if name.is_empty() || name.contains('/') {
            return error_response(
                StatusCode::NOT_FOUND,
                "route_not_found",
                "WebSocket endpoints are /ws/NAME, NAME a deployed function",
            );
        }
        // A function behind `auth` takes WebSocket connections only from users its
        // policy allows (the token in `?access_token=`, as browsers cannot set headers).
        let request = match invoker.live_function(&name) {
            Some((_, spec)) if spec.auth != gureum_model::AuthPolicy::None => {
                let (mut parts, body) = request.into_parts();
                if let Err(response) = services.authorize_function(&spec.auth, &mut parts) {
                    return *response;
                }
                Request::from_parts(parts, body)
            }
            _ => request,
        };
        return match hub.accept(&name, request, client).await {
            Ok(response) => response,
            Err(AcceptError::Invoke(error)) => invoke_error_response(&error),
            Err(error @ AcceptError::NotWebSocket(_)) => error_response(
                StatusCode::UPGRADE_REQUIRED,
                "websocket_upgrade_required",
                &error.to_string(),
            ),
            Err(error @ AcceptError::TooManyConnections { .. }) => public_error(
                &Failure::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_connections",
                    error.to_string(),
                )
                .retry_after(1),
            ),
            Err(error @ AcceptError::ShuttingDown) => error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                &error.to_string(),
            ),
        };
    }
    if path.starts_with("/@connections/") || path.starts_with("/channels/") {
        let request = request.map(|body| body.map_err(|error| error.to_string()));
        if let Some(response) = hub.platform_api(request).await {
            return response;
        }
        return error_response(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "no such platform API path",
        );
    }
    if is_service_path(path) {
        return services.route(request, client).await;
    }
    handle(
        invoker,
        queue,
        Some(services),
        settings,
        request,
        client,
        Trigger::Http,
    )
    .await
}

/// Answers one public request; `client` is the caller's address, when known. With
/// `x-gureum-invocation-type: event` (or `X-Amz-Invocation-Type: Event`) the request is
/// queued durably instead and answered 202 with its invocation id.
pub async fn handle<B>(
    invoker: &Invoker,
    queue: &Queue,
    services: Option<&Services>,
    settings: GatewaySettings,
    request: Request<B>,
    client: Option<std::net::IpAddr>,
    trigger: Trigger,
) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display,
{
    handle_on(
        invoker, queue, services, settings, request, client, trigger, None,
    )
    .await
}

/// The request's host as routes name it: lowercase, without a port (from the URI's
/// authority, as HTTP/2 sends it, else `Host`).
fn request_host<B>(request: &Request<B>) -> Option<String> {
    let authority = match request.uri().authority() {
        Some(authority) => authority.clone(),
        None => request
            .headers()
            .get(HOST)?
            .to_str()
            .ok()?
            .parse::<http::uri::Authority>()
            .ok()?,
    };
    Some(authority.host().trim_end_matches('.').to_ascii_lowercase())
}

/// [`handle`], with `host_function` the function the request's host names
/// (`--functions-domain`): it gets every path, unprefixed.
#[allow(clippy::too_many_arguments)]
async fn handle_on<B>(
    invoker: &Invoker,
    queue: &Queue,
    services: Option<&Services>,
    settings: GatewaySettings,
    request: Request<B>,
    client: Option<std::net::IpAddr>,
    trigger: Trigger,
    host_function: Option<String>,
) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display,
{
    let path = request.uri().path();
    if path == "/healthz" && host_function.is_none() {
        return text_response(StatusCode::OK, "ok\n");
    }
    let (function, selector, prefix) = match (host_function, path.strip_prefix("/fn/")) {
        (Some(name), _) => {
            if invoker.live_function(&name).is_none() {
                return error_response(
                    StatusCode::NOT_FOUND,
                    "function_not_found",
                    &format!(
                        "no function named {name:?} is deployed; `gureum ls` lists the deployed functions"
                    ),
                );
            }
            (name, VersionSelector::Live, None)
        }
        (None, Some(rest)) => {
            let (target, _) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = format!("/fn/{target}");
            let (name, selector) = match target.split_once('@') {
                Some((name, version)) => match version.parse() {
                    Ok(version) => (name.to_string(), VersionSelector::Pinned(version)),
                    Err(_) => {
                        return error_response(
                            StatusCode::BAD_REQUEST,
                            "bad_version",
                            &format!(
                                "{version:?} is not a version number; use /fn/NAME@VERSION, e.g. /fn/{name}@1"
                            ),
                        );
                    }
                },
                None => (target.to_string(), VersionSelector::Live),
            };
            (name, selector, Some(prefix))
        }
        (None, None) => match invoker.route(request_host(&request).as_deref(), path) {
            Some(function) => (function, VersionSelector::Live, None),
            None => {
                return error_response(
                    StatusCode::NOT_FOUND,
                    "route_not_found",
                    &format!(
                        "no function serves {path}; functions answer at /fn/NAME/… and at the routes in their gureum.toml"
                    ),
                );
            }
        },
    };

    if let Some(length) = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        && length > settings.max_body_bytes
    {
        // The body is read in the background (DrainOnDrop) up to a bound; a longer one
        // ends the connection, which the client is told.
        let mut response = too_large(settings.max_body_bytes);
        if length > MAX_DRAIN_BYTES {
            response
                .headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        return response;
    }

    let (mut parts, body) = request.into_parts();
    if let Some(prefix) = &prefix {
        if parts.uri.path() == prefix {
            // `/fn/NAME` without its slash: a static site redirects to `/fn/NAME/`.
            parts.extensions.insert(gureum_invoke::MountRoot);
        }
        parts.uri = strip_prefix(&parts.uri, prefix, &parts.headers);
    }
    // `/.gureum/…` is how the platform itself calls a function (WebSocket events); a
    // caller from outside must not be able to forge those, however it spells the path.
    if is_platform_path(parts.uri.path()) {
        return error_response(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "paths under /.gureum/ are reserved for the platform's own events",
        );
    }
    if let Some(prefix) = &prefix {
        if let Ok(value) = HeaderValue::from_str(prefix) {
            parts.headers.insert("x-forwarded-prefix", value);
        }
    } else if parts.uri.authority().is_none() {
        parts.uri = with_authority(&parts.uri, &parts.headers);
    }
    // The function's `auth` policy (its live version's): checked before anything runs
    // or is queued. Without `services` (the control API, admin-only) it does not apply,
    // but a forged claims header is still dropped.
    parts.headers.remove(gureum_model::AUTH_CLAIMS_HEADER);
    if let Some(services) = services
        && let Some((_, spec)) = invoker.live_function(&function)
        && let Err(response) = services.authorize_function(&spec.auth, &mut parts)
    {
        return *response;
    }
    let exceeded = Arc::new(AtomicBool::new(false));
    if is_async(&parts.headers) {
        // Public callers queue events only where the function allows anyone to; else
        // they must be a signed-in user or a function (audit finding 10).
        let mut scope = None;
        if let Some(services) = services {
            // A function that is not deployed is answered 404 by the queue, as before.
            let public = invoker
                .live_function(&function)
                .is_none_or(|(_, spec)| spec.async_config.public);
            match services.async_caller(public, &function, &mut parts) {
                Ok(caller) => scope = caller,
                Err(response) => return *response,
            }
        }
        let limit = settings.max_async_body_bytes.min(settings.max_body_bytes);
        if parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|length| length > limit)
        {
            return too_large_async(limit);
        }
        let body = LimitedBody::new(body, limit, exceeded.clone());
        let version = match selector {
            VersionSelector::Live => None,
            VersionSelector::Pinned(version) => Some(version),
        };
        scope_idempotency_key(&mut parts.headers, services.is_none(), scope, client);
        return enqueue(queue, function, version, parts, body, &exceeded, limit).await;
    }
    let body = LimitedBody::new(body, settings.max_body_bytes, exceeded.clone());
    let request = Request::from_parts(parts, body);

    let answer = invoker
        .invoke(&function, selector, request, client, trigger)
        .await;
    let mut response = match answer.response {
        _ if exceeded.load(Ordering::Acquire) => too_large(settings.max_body_bytes),
        Ok(response) => response,
        Err(error) => invoke_error_response(&error),
    };
    let headers = response.headers_mut();
    // Empty for a static file: no invocation ran.
    if !answer.invocation_id.is_empty()
        && let Ok(value) = HeaderValue::from_str(&answer.invocation_id)
    {
        headers.insert("x-gureum-invocation-id", value);
    }
    if answer.version > 0 {
        headers.insert("x-gureum-version", HeaderValue::from(answer.version));
    }
    headers.insert(
        "x-gureum-cold-start",
        HeaderValue::from_static(if answer.cold_start { "1" } else { "0" }),
    );
    response
}

/// Removes the headers only the platform sets (every `x-gureum-*` but
/// `x-gureum-invocation-type`, which asks for the queue) from a request from outside,
/// before anything routes it: a caller cannot pose as a cron tick, a retry, a
/// destination record, a WebSocket event or a verified user.
pub fn strip_platform_headers(headers: &mut http::HeaderMap) {
    let forged: Vec<http::HeaderName> = headers
        .keys()
        .filter(|name| {
            name.as_str().starts_with("x-gureum-") && name.as_str() != "x-gureum-invocation-type"
        })
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
}

/// Whether `path` reaches the platform's own `/.gureum/` paths in any spelling: any
/// case, percent-encoded (also twice), with encoded slashes.
fn is_platform_path(path: &str) -> bool {
    let mut decoded = path.to_ascii_lowercase();
    for _ in 0..3 {
        if decoded.contains(PLATFORM_PATH) || decoded.ends_with("/.gureum") {
            return true;
        }
        let next = percent_encoding::percent_decode_str(&decoded)
            .decode_utf8_lossy()
            .to_ascii_lowercase();
        if next == decoded {
            return false;
        }
        decoded = next;
    }
    decoded.contains(PLATFORM_PATH) || decoded.ends_with("/.gureum")
}

/// Makes an `idempotency-key` the caller's own (as Stripe's keys are per account): the
/// stored key is a hash of who sent it and the key, so nobody can use up, or learn the
/// invocation of, another caller's key. Who: the admin (control API), the caller the
/// token named (`caller`: `user:UID` or `function:NAME`), a verified user (the claims
/// `authorize_function` set), else the client's address (IPv6 by its /64).
fn scope_idempotency_key(
    headers: &mut http::HeaderMap,
    admin: bool,
    caller: Option<String>,
    client: Option<std::net::IpAddr>,
) {
    let Some(key) = headers.get("idempotency-key").cloned() else {
        return;
    };
    let user = headers
        .get(gureum_model::AUTH_CLAIMS_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|claims| claims["sub"].as_str().map(|sub| format!("user:{sub}")));
    let scope = match (admin, caller.or(user), client) {
        (true, _, _) => "admin".to_string(),
        (false, Some(caller), _) => caller,
        (false, None, Some(ip)) => format!("address:{}", gureum_auth::ratelimit::client_scope(ip)),
        (false, None, None) => "anonymous".to_string(),
    };
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(scope.as_bytes());
    hasher.update([0]);
    hasher.update(key.as_bytes());
    let scoped = hex::encode(hasher.finalize());
    if let Ok(value) = HeaderValue::from_str(&scoped) {
        headers.insert("idempotency-key", value);
    }
}

/// Whether the caller asked for an asynchronous invocation.
fn is_async(headers: &http::HeaderMap) -> bool {
    ["x-gureum-invocation-type", "x-amz-invocation-type"]
        .iter()
        .filter_map(|name| headers.get(*name))
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"event"))
}

/// Headers not stored with a queued request: hop-by-hop ones, lengths the replay
/// recomputes, and the ones that asked for the queue.
const UNSTORED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "content-length",
    "x-gureum-invocation-type",
    "x-amz-invocation-type",
    "idempotency-key",
    "x-amz-client-context",
];

async fn enqueue<B>(
    queue: &Queue,
    function: String,
    version: Option<gureum_model::VersionNumber>,
    parts: http::request::Parts,
    body: LimitedBody<B>,
    exceeded: &AtomicBool,
    limit: u64,
) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display,
{
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) if exceeded.load(Ordering::Acquire) => return too_large_async(limit),
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "bad_request_body",
                &format!("reading the request body failed: {error}"),
            );
        }
    };
    let idempotency_key = parts
        .headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| !UNSTORED_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_string(), |path| path.as_str().to_string());
    let request = AsyncRequest {
        function,
        version,
        method: parts.method.to_string(),
        path,
        headers,
        body,
        idempotency_key,
    };
    match queue.enqueue(request).await {
        Ok(accepted) => {
            let body = serde_json::json!({
                "invocation_id": accepted.invocation_id,
                "status": "queued",
                "duplicate": accepted.duplicate,
            })
            .to_string();
            let mut response = Response::new(full(body));
            *response.status_mut() = StatusCode::ACCEPTED;
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Ok(value) = HeaderValue::from_str(&accepted.invocation_id) {
                headers.insert("x-gureum-invocation-id", value);
            }
            if accepted.duplicate {
                headers.insert("x-gureum-idempotent-replay", HeaderValue::from_static("1"));
            }
            response
        }
        Err(error @ QueueError::NotFound(_)) => error_response(
            StatusCode::NOT_FOUND,
            "function_not_found",
            &error.to_string(),
        ),
        Err(error @ (QueueError::QueueFull { .. } | QueueError::QueueBytesFull { .. })) => {
            public_error(
                &Failure::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "queue_full",
                    error.to_string(),
                )
                .retry_after(1),
            )
        }
        Err(error @ QueueError::ShuttingDown) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            &error.to_string(),
        ),
        Err(error @ QueueError::Store(_)) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            &error.to_string(),
        ),
    }
}

/// A JSON error `{"error": {"code", "message"}}` with the code also in `x-gureum-error`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response<ResponseBody> {
    public_error(&Failure::new(status, code, message))
}

/// Any error as the public listener answers it ([`gureum_api_types::render`]).
pub fn public_error(error: &(impl PublicError + ?Sized)) -> Response<ResponseBody> {
    render(error).map(full)
}

fn invoke_error_response(error: &InvokeError) -> Response<ResponseBody> {
    public_error(error)
}

fn too_large(limit: u64) -> Response<ResponseBody> {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!(
            "request body is larger than the limit of {limit} bytes; send less or raise --max-body-bytes"
        ),
    )
}

fn too_large_async(limit: u64) -> Response<ResponseBody> {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!(
            "an asynchronous invocation's body is stored until it runs and may be at most {limit} bytes; send less (e.g. a reference to a file uploaded to /data/v1/collections/COL/files), call it synchronously, or raise --max-async-body-bytes"
        ),
    )
}

fn text_response(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn full(body: impl Into<Bytes>) -> ResponseBody {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// `/fn/NAME/rest?query` → `/rest?query` (with an authority for wasi:http).
fn strip_prefix(uri: &Uri, prefix: &str, headers: &http::HeaderMap) -> Uri {
    let rest = uri.path().strip_prefix(prefix).unwrap_or("");
    let path = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    build_uri(&path_and_query, uri, headers)
}

fn with_authority(uri: &Uri, headers: &http::HeaderMap) -> Uri {
    let path_and_query = uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    build_uri(&path_and_query, uri, headers)
}

/// An absolute URI for the function: the request's authority (else its Host) and
/// `https` when the request came over TLS (or a proxy in front says it did).
fn build_uri(path_and_query: &str, original: &Uri, headers: &http::HeaderMap) -> Uri {
    let host = headers.get(HOST);
    let scheme = match headers.get("x-forwarded-proto") {
        Some(proto) if proto.as_bytes().eq_ignore_ascii_case(b"https") => "https",
        _ => "http",
    };
    let authority = original
        .authority()
        .map(|authority| authority.as_str().to_string())
        .or_else(|| host.and_then(|host| host.to_str().ok()).map(str::to_string))
        .unwrap_or_else(|| "localhost".into());
    Uri::builder()
        .scheme(scheme)
        .authority(authority.as_str())
        .path_and_query(path_and_query)
        .build()
        .or_else(|_| Uri::builder().path_and_query(path_and_query).build())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_read_from_trusted_proxies_only() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = http::HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                );
            }
            map
        };
        let ip = |text: &str| text.parse::<std::net::IpAddr>().unwrap();
        let xff = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.1.1")]);
        // From a stranger, the header is the stranger's claim.
        assert_eq!(
            client_address(ip("198.51.100.1"), &xff, &trusted),
            ip("198.51.100.1")
        );
        // From the proxy: the right-most address that is not a proxy.
        assert_eq!(
            client_address(ip("10.2.2.2"), &xff, &trusted),
            ip("203.0.113.7")
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"",
        )]);
        assert_eq!(
            client_address(ip("10.2.2.2"), &forwarded, &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_address(ip("10.2.2.2"), &headers(&[]), &trusted),
            ip("10.2.2.2")
        );
        let garbage = headers(&[("x-forwarded-for", "not an address")]);
        assert_eq!(
            client_address(ip("10.2.2.2"), &garbage, &trusted),
            ip("10.2.2.2")
        );
    }

    #[test]
    fn the_platform_path_is_found_in_every_spelling() {
        for path in [
            "/.gureum/websocket",
            "/x/.GUREUM/websocket",
            "/%2Egureum/websocket",
            "/%2egureum/websocket",
            "/%252Egureum/websocket",
            "/.gureum%2Fwebsocket",
            "/x/..%2F.gureum/websocket",
            "/.gureum",
        ] {
            assert!(is_platform_path(path), "{path}");
        }
        for path in [
            "/gureum/websocket",
            "/x.gureum/y",
            "/.gureumx/y",
            "/websocket",
        ] {
            assert!(!is_platform_path(path), "{path}");
        }
    }

    #[test]
    fn platform_headers_from_outside_are_dropped_but_the_queue_request_kept() {
        let mut headers = http::HeaderMap::new();
        for name in [
            "x-gureum-trigger",
            "x-gureum-auth-claims",
            "X-Gureum-Schedule",
            "x-gureum-invocation-type",
            "x-request-id",
        ] {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_static("v"),
            );
        }
        strip_platform_headers(&mut headers);
        let mut left: Vec<_> = headers
            .keys()
            .map(|name| name.as_str().to_string())
            .collect();
        left.sort();
        assert_eq!(left, ["x-gureum-invocation-type", "x-request-id"]);
    }

    #[test]
    fn the_mount_prefix_is_stripped_and_the_query_kept() {
        let uri: Uri = "/fn/hello/a/b?x=1".parse().unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("example.test:8080"));
        let stripped = strip_prefix(&uri, "/fn/hello", &headers);
        assert_eq!(stripped.path_and_query().unwrap().as_str(), "/a/b?x=1");
        assert_eq!(stripped.authority().unwrap().as_str(), "example.test:8080");
        assert_eq!(stripped.scheme_str(), Some("http"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let secure = strip_prefix(&uri, "/fn/hello", &headers);
        assert_eq!(secure.scheme_str(), Some("https"));
        let root = strip_prefix(
            &"/fn/hello".parse().unwrap(),
            "/fn/hello",
            &http::HeaderMap::new(),
        );
        assert_eq!(root.path(), "/");
    }

    #[test]
    fn plain_http_is_redirected_to_the_https_port() {
        let request = |host: &str, target: &str| {
            Request::builder()
                .uri(target)
                .header(HOST, host)
                .body(())
                .unwrap()
        };
        let location = |response: Response<ResponseBody>| {
            assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
            response.headers()[http::header::LOCATION]
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            location(redirect_to_https(&request("example.org", "/fn/a?x=1"), 443)),
            "https://example.org/fn/a?x=1"
        );
        assert_eq!(
            location(redirect_to_https(&request("example.org:8080", "/"), 8443)),
            "https://example.org:8443/"
        );
        assert_eq!(
            location(redirect_to_https(&request("[::1]:8080", "/p"), 8443)),
            "https://[::1]:8443/p"
        );
        assert_eq!(
            location(redirect_to_https(&request("[::1]", "/p"), 443)),
            "https://[::1]/p"
        );
        // User info in Host would send the client elsewhere: refused.
        let refused = redirect_to_https(&request("a.example@evil.test", "/"), 443);
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(!refused.headers().contains_key(http::header::LOCATION));
    }
}
