//! The `/auth/v1` HTTP service on the public listener (sign-up, password and refresh
//! grants, the current user, logout, JWKS) and the resolution of a request's [`Caller`]
//! from its bearer token. Users and refresh-token hashes live in the store; the signing
//! key is created on first start, kept in the store's settings so every node of a cluster
//! verifies every other's tokens, and mirrored to `DATA_DIR/jwt.key` (PKCS#8 PEM, mode
//! 0600) for operators who verify tokens elsewhere (the public half is at
//! `/auth/v1/jwks.json`).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gureum_store::{Rotation, Store, StoreError, UserRow};
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use serde_json::{Value, json};

use crate::caller::{Caller, UserIdentity};
use crate::jwt::{ACCESS_TOKEN_TTL_SECS, Claims, SigningKey};
use crate::ratelimit::{LoginLimiter, account_key, address_key};
use crate::refresh::{hash_refresh_token, looks_like_refresh_token, new_refresh_token};
use crate::{TokenError, password};

/// Setting holding the installation's JWT signing key (base64 PKCS#8).
pub const SIGNING_KEY_SETTING: &str = "jwt_signing_key";
/// The file in the data directory mirroring the signing key (PEM, 0600).
pub const KEY_FILE: &str = "jwt.key";
/// Setting holding the key refresh tokens' successors are derived with.
pub const SUCCESSOR_KEY_SETTING: &str = "refresh_successor_key";
/// How long a refresh token lives (30 days, renewed by each use).
pub const REFRESH_TOKEN_TTL_MS: i64 = 30 * 24 * 3_600_000;

/// Checks a function's token: the version it belongs to, or why it is refused.
pub type FunctionTokenCheck =
    Box<dyn Fn(&str) -> Result<gureum_model::FunctionIdentity, String> + Send + Sync>;

/// The caller's network address, set by the gateway as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

/// Why a presented credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallerError {
    /// The access token's time is up.
    #[error(
        "the access token has expired; get a new one with the refresh grant (POST /auth/v1/token?grant_type=refresh_token)"
    )]
    Expired,
    /// Not a token this installation issued.
    #[error("the bearer token is not valid here: {0}")]
    Invalid(String),
}

impl CallerError {
    /// The 401 answer.
    pub fn response(&self) -> Response {
        let code = match self {
            CallerError::Expired => "token_expired",
            CallerError::Invalid(_) => "invalid_token",
        };
        let mut response = error(StatusCode::UNAUTHORIZED, code, &self.to_string());
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"gureum\""),
        );
        response
    }
}

/// Whether a request may carry its token as `?access_token=`: only those a browser
/// cannot give an `Authorization` header: an `EventSource` (a data stream, `…/stream`,
/// or any request asking for `text/event-stream`) and a WebSocket (`/ws/…`, or any
/// upgrade to one).
fn query_token_allowed(headers: &HeaderMap, path: &str) -> bool {
    let has = |name: http::header::HeaderName, want: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains(want))
        })
    };
    path.ends_with("/stream")
        || path.starts_with("/ws/")
        || has(http::header::ACCEPT, "text/event-stream")
        || has(http::header::UPGRADE, "websocket")
}

/// Errors opening the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The stored key is unusable, or its file could not be written.
    #[error("{0}")]
    Key(String),
}

/// The auth service of one node.
pub struct AuthService {
    store: Store,
    key: SigningKey,
    /// Derives a refresh token's successor from it (`refresh::successor_token`).
    successor_key: Vec<u8>,
    /// See [`AuthService::open`].
    refresh_reuse_ms: i64,
    limiter: LoginLimiter,
    /// Where password hashes run (argon2id takes 19 MiB and a core each).
    hashing: crate::hashing::HashingPool,
    admin_token: String,
    function_tokens: FunctionTokenCheck,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("kid", &self.key.kid())
            .finish_non_exhaustive()
    }
}

/// The platform's error answer ([`gureum_api_types::render`]).
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    gureum_api_types::render(&gureum_api_types::Failure::new(status, code, message))
        .map(axum::body::Body::from)
}

fn internal(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "auth service failed");
    self::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        &error.to_string(),
    )
}

fn now_s() -> u64 {
    u64::try_from(gureum_model::now_ms() / 1000).unwrap_or(0)
}

/// A user as the API shows it (never the hash).
pub fn user_json(user: &UserRow) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "created": user.created_at_ms,
        "disabled": user.disabled,
        "last_sign_in": user.last_sign_in_ms,
    })
}

impl AuthService {
    /// Loads (or creates, on first start) the signing key and mirrors it to
    /// `data_dir/jwt.key`.
    /// `refresh_reuse` is how long a rotated refresh token presented again still gets
    /// its successor (two tabs refreshing at once) rather than counting as theft.
    pub async fn open(
        store: Store,
        data_dir: &Path,
        admin_token: String,
        function_tokens: FunctionTokenCheck,
        refresh_reuse: std::time::Duration,
    ) -> Result<Arc<AuthService>, ServiceError> {
        let (_, fresh) = SigningKey::generate();
        let stored = store
            .setting_or_insert(SIGNING_KEY_SETTING, &STANDARD.encode(&fresh))
            .await?;
        let der = STANDARD
            .decode(stored.trim())
            .map_err(|e| ServiceError::Key(format!("setting {SIGNING_KEY_SETTING}: {e}")))?;
        let key = SigningKey::from_pkcs8(&der)
            .map_err(|e| ServiceError::Key(format!("setting {SIGNING_KEY_SETTING}: {e}")))?;
        write_key_file(&data_dir.join(KEY_FILE), &der)?;
        let fresh: [u8; 32] = rand::random();
        let successor_key = STANDARD
            .decode(
                store
                    .setting_or_insert(SUCCESSOR_KEY_SETTING, &STANDARD.encode(fresh))
                    .await?
                    .trim(),
            )
            .map_err(|e| ServiceError::Key(format!("setting {SUCCESSOR_KEY_SETTING}: {e}")))?;
        Ok(Arc::new(AuthService {
            store,
            key,
            successor_key,
            refresh_reuse_ms: i64::try_from(refresh_reuse.as_millis()).unwrap_or(i64::MAX),
            limiter: LoginLimiter::default(),
            hashing: crate::hashing::HashingPool::new(
                2 * std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            ),
            admin_token,
            function_tokens,
        }))
    }

    /// The `/auth/v1` routes; handlers read a [`ClientAddr`] extension when present.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/auth/v1/signup", post(signup))
            .route("/auth/v1/token", post(token))
            .route("/auth/v1/user", get(current_user))
            .route("/auth/v1/logout", post(logout))
            .route("/auth/v1/jwks.json", get(jwks))
            .with_state(self.clone())
    }

    /// Who sent a request to the public listener: the bearer token of `Authorization`,
    /// else `?access_token=` where a browser cannot set headers (an `EventSource`, which
    /// asks for `text/event-stream`, and a WebSocket upgrade), else anonymous. A token that
    /// is present but not valid is an error, never silently anonymous; so is the admin
    /// token, which belongs to the admin listener (a token in a public URL ends up in
    /// logs and histories, and the public origin runs functions' pages).
    pub fn caller(&self, headers: &HeaderMap, uri: &Uri) -> Result<Caller, CallerError> {
        let header = crate::bearer_token(headers).map(str::to_string);
        let token = header.or_else(|| {
            query_token_allowed(headers, uri.path())
                .then(|| {
                    uri.query().and_then(|q| {
                        form_urlencoded::parse(q.as_bytes())
                            .find(|(k, _)| k == "access_token")
                            .map(|(_, v)| v.into_owned())
                    })
                })
                .flatten()
        });
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(Caller::Anonymous);
        };
        if constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            return Err(CallerError::Invalid(
                "the admin token is accepted only on the admin listener; call its /api/v1/data/… (same paths after /data/v1/) instead".into(),
            ));
        }
        if token.starts_with("gft.") {
            return (self.function_tokens)(&token)
                .map(Caller::Function)
                .map_err(CallerError::Invalid);
        }
        self.verify_user(&token).map(Caller::User)
    }

    /// A user's identity from an access token.
    pub fn verify_user(&self, token: &str) -> Result<UserIdentity, CallerError> {
        match self.key.verify(token, now_s()) {
            Ok(claims) => {
                let all = serde_json::to_value(&claims)
                    .ok()
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                Ok(UserIdentity {
                    uid: claims.sub,
                    email: claims.email,
                    claims: all,
                })
            }
            Err(TokenError::Expired) => Err(CallerError::Expired),
            Err(other) => Err(CallerError::Invalid(other.to_string())),
        }
    }

    /// The JWKS with the installation's public key.
    pub fn jwks(&self) -> Value {
        self.key.jwks()
    }

    /// Users by email, after `after` (paging), whose email starts with `prefix`.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        prefix: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRow>, StoreError> {
        self.store.list_users(after, prefix, limit).await
    }

    /// Disables (revoking every refresh token) or enables a user; `None` when unknown.
    /// Access tokens already issued stay valid until they expire (at most 15 minutes).
    pub async fn set_disabled(
        &self,
        id: &str,
        disabled: bool,
    ) -> Result<Option<UserRow>, StoreError> {
        if !self
            .store
            .set_user_disabled(id, disabled, gureum_model::now_ms())
            .await?
        {
            return Ok(None);
        }
        self.store.user_by_id(id).await
    }

    /// A user by id or email.
    pub async fn find_user(&self, id_or_email: &str) -> Result<Option<UserRow>, StoreError> {
        match self.store.user_by_id(id_or_email).await? {
            Some(user) => Ok(Some(user)),
            None => {
                self.store
                    .user_by_email(&id_or_email.trim().to_lowercase())
                    .await
            }
        }
    }

    async fn session(&self, user: &UserRow, status: StatusCode) -> Result<Response, StoreError> {
        let now = now_s();
        let claims = Claims::new(&user.id, &user.email, now);
        let access = self.key.sign(&claims);
        let (refresh, hash) = new_refresh_token();
        let now_ms = gureum_model::now_ms();
        self.store
            .insert_refresh_token(&hash, &user.id, now_ms, now_ms + REFRESH_TOKEN_TTL_MS)
            .await?;
        Ok(self.session_response(user, access, refresh, claims.exp, status))
    }

    fn session_response(
        &self,
        user: &UserRow,
        access: String,
        refresh: String,
        exp: u64,
        status: StatusCode,
    ) -> Response {
        (
            status,
            Json(json!({
                "access_token": access,
                "token_type": "bearer",
                "expires_in": ACCESS_TOKEN_TTL_SECS,
                "expires_at": exp,
                "refresh_token": refresh,
                "user": user_json(user),
            })),
        )
            .into_response()
    }
}

/// Compares without an early exit, so response time does not reveal a token prefix.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn write_key_file(path: &Path, der: &[u8]) -> Result<(), ServiceError> {
    let body = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    if std::fs::read_to_string(path).is_ok_and(|existing| existing == pem) {
        return Ok(());
    }
    let failed = |e: std::io::Error| ServiceError::Key(format!("writing {}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path).map_err(failed)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(failed)?;
        drop(file);
    }
    std::fs::write(path, pem).map_err(failed)
}

/// `{"email", "password"}` from a JSON body.
fn credentials(body: &Bytes) -> Result<(String, String), Box<Response>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("the body must be JSON {{\"email\", \"password\"}}: {e}"),
        ))
    })?;
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    match (field("email"), field("password")) {
        (Some(email), Some(password)) => Ok((email, password)),
        _ => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body must be JSON with string fields \"email\" and \"password\"",
        ))),
    }
}

async fn signup(
    State(service): State<Arc<AuthService>>,
    client: Option<Extension<ClientAddr>>,
    body: Bytes,
) -> Response {
    // Sign-ups count against the caller's address like failed sign-ins (20 per 15 min
    // per node), so one address cannot mint accounts (and argon2 work) without bound.
    let address = client
        .and_then(|c| c.0.0)
        .map(|ip| address_key(format!("signup:{}", crate::ratelimit::client_scope(ip))));
    let now = Instant::now();
    let (email, secret) = match credentials(&body) {
        Ok(c) => c,
        Err(response) => return *response,
    };
    let email = match password::validate_email(&email) {
        Ok(email) => email,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_email", &e.to_string()),
    };
    if let Err(e) = password::check_strength(&secret, &email) {
        return error(StatusCode::BAD_REQUEST, "weak_password", &e.to_string());
    }
    // Counted before the hash runs, so a burst cannot pass the check all at once.
    if let Some(key) = &address
        && let Err(retry) = service.limiter.reserve(key, now)
    {
        return rate_limited(retry);
    }
    let hash = match service
        .hashing
        .run(move || password::hash_password(&secret))
        .await
    {
        Some(Ok(hash)) => hash,
        Some(Err(e)) => return internal(e),
        None => {
            if let Some(key) = &address {
                service.limiter.release(key);
            }
            return busy();
        }
    };
    let user = UserRow {
        id: uuid::Uuid::now_v7().simple().to_string(),
        email,
        password_hash: hash,
        created_at_ms: gureum_model::now_ms(),
        disabled: false,
        last_sign_in_ms: None,
    };
    match service.store.create_user(&user).await {
        Ok(true) => {}
        Ok(false) => {
            return error(
                StatusCode::CONFLICT,
                "email_taken",
                "an account with this email exists; sign in instead (POST /auth/v1/token?grant_type=password)",
            );
        }
        Err(e) => return internal(e),
    }
    service
        .session(&user, StatusCode::CREATED)
        .await
        .unwrap_or_else(internal)
}

async fn token(
    State(service): State<Arc<AuthService>>,
    client: Option<Extension<ClientAddr>>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let from_query = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "grant_type")
            .map(|(_, v)| v.into_owned())
    });
    let from_body = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("grant_type")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    // INTERFACE.md's `POST /auth/v1/token {"email","password"}` names no grant: that is
    // the password grant.
    match from_query.or(from_body).as_deref() {
        Some("password") | None => {
            password_grant(&service, client.and_then(|c| c.0.0), &body).await
        }
        Some("refresh_token") => refresh_grant(&service, &body).await,
        other => error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!(
                "grant_type {other:?} is not supported; use ?grant_type=password with {{\"email\",\"password\"}} or ?grant_type=refresh_token with {{\"refresh_token\"}}"
            ),
        ),
    }
}

/// Every password-hashing place is taken and stayed so for a while: the server is
/// overloaded; the attempt was not tried (and not counted).
fn busy() -> Response {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "too many sign-ins are being checked right now; try again in a second",
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn rate_limited(retry: crate::RetryAfter) -> Response {
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        &format!(
            "too many attempts from here; try again in {} s",
            retry.secs()
        ),
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry.secs()));
    response
}

async fn password_grant(service: &AuthService, client: Option<IpAddr>, body: &Bytes) -> Response {
    let (email, secret) = match credentials(body) {
        Ok(c) => c,
        Err(response) => return *response,
    };
    let email = email.trim().to_lowercase();
    let account = account_key(&email);
    let address = client.map(|ip| address_key(crate::ratelimit::client_scope(ip)));
    let now = Instant::now();
    // Each attempt is counted as it starts (as a failure until it succeeds), so a burst
    // of concurrent attempts gets exactly the limit through.
    if let Err(retry) = service.limiter.reserve(&account, now) {
        return rate_limited(retry);
    }
    if let Some(key) = &address
        && let Err(retry) = service.limiter.reserve(key, now)
    {
        service.limiter.release(&account);
        return rate_limited(retry);
    }
    let give_back = || {
        service.limiter.release(&account);
        if let Some(key) = &address {
            service.limiter.release(key);
        }
    };
    let user = match service.store.user_by_email(&email).await {
        Ok(user) => user,
        Err(e) => {
            give_back();
            return internal(e);
        }
    };
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = service
        .hashing
        .run(move || match stored_hash {
            Some(hash) => password::verify_password(&secret, &hash),
            None => {
                // Same work whether or not the account exists.
                password::verify_dummy(&secret);
                false
            }
        })
        .await;
    let Some(verified) = verified else {
        give_back();
        return busy();
    };
    let Some(user) = user.filter(|_| verified) else {
        // The reservations stay: they were failures.
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_credentials",
            "wrong email or password",
        );
    };
    service.limiter.record_success(&account);
    if let Some(key) = &address {
        service.limiter.release(key);
    }
    if user.disabled {
        return error(
            StatusCode::FORBIDDEN,
            "user_disabled",
            "this account is disabled; ask the administrator",
        );
    }
    if let Err(e) = service
        .store
        .record_sign_in(&user.id, gureum_model::now_ms())
        .await
    {
        return internal(e);
    }
    let user = UserRow {
        last_sign_in_ms: Some(gureum_model::now_ms()),
        ..user
    };
    service
        .session(&user, StatusCode::OK)
        .await
        .unwrap_or_else(internal)
}

fn invalid_grant(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_grant", message)
}

async fn refresh_grant(service: &AuthService, body: &Bytes) -> Response {
    let token = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let Some(token) = token.filter(|t| looks_like_refresh_token(t)) else {
        return invalid_grant("send {\"refresh_token\": \"grt_…\"} from your last session");
    };
    let (next, next_hash) = crate::refresh::successor_token(&service.successor_key, &token);
    let now_ms = gureum_model::now_ms();
    let rotation = service
        .store
        .rotate_refresh_token(
            &hash_refresh_token(&token),
            &next_hash,
            now_ms,
            now_ms + REFRESH_TOKEN_TTL_MS,
            service.refresh_reuse_ms,
        )
        .await;
    match rotation {
        Ok(Rotation::Rotated(uid)) => {
            let user = match service.store.user_by_id(&uid).await {
                Ok(Some(user)) => user,
                Ok(None) => return invalid_grant("the refresh token's user no longer exists"),
                Err(e) => return internal(e),
            };
            let claims = Claims::new(&user.id, &user.email, now_s());
            let access = service.key.sign(&claims);
            service.session_response(&user, access, next, claims.exp, StatusCode::OK)
        }
        Ok(Rotation::Reused(_)) => invalid_grant(
            "this refresh token was already used; as a precaution every session of the account is signed out — sign in again",
        ),
        Ok(Rotation::Invalid) => {
            invalid_grant("the refresh token is unknown, expired or revoked; sign in again")
        }
        Err(e) => internal(e),
    }
}

fn bearer_user(
    service: &AuthService,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<UserIdentity, Box<Response>> {
    match service.caller(headers, uri) {
        Ok(Caller::User(user)) => Ok(user),
        Ok(_) => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "send a user's access token: Authorization: Bearer <access_token>",
        ))),
        Err(e) => Err(Box::new(e.response())),
    }
}

async fn current_user(
    State(service): State<Arc<AuthService>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let identity = match bearer_user(&service, &headers, &uri) {
        Ok(identity) => identity,
        Err(response) => return *response,
    };
    match service.store.user_by_id(&identity.uid).await {
        Ok(Some(user)) => Json(user_json(&user)).into_response(),
        Ok(None) => error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the token's user no longer exists",
        ),
        Err(e) => internal(e),
    }
}

async fn logout(
    State(service): State<Arc<AuthService>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let identity = match bearer_user(&service, &headers, &uri) {
        Ok(identity) => identity,
        Err(response) => return *response,
    };
    // No body (or `{}`) signs out everywhere; a body must be JSON naming one token, and
    // a malformed one is refused rather than taken as "everywhere".
    let refresh = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => match map.get("refresh_token") {
                None => None,
                Some(Value::String(token)) => Some(token.clone()),
                Some(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "refresh_token must be a string",
                    );
                }
            },
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "the body must be {\"refresh_token\": \"grt_…\"}, {} or empty",
                );
            }
        }
    };
    let now = gureum_model::now_ms();
    let done = match refresh {
        Some(token) => service
            .store
            .revoke_refresh_token(&hash_refresh_token(&token), &identity.uid, now)
            .await
            .map(|_| ()),
        None => service
            .store
            .revoke_user_refresh_tokens(&identity.uid, now)
            .await
            .map(|_| ()),
    };
    match done {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => internal(e),
    }
}

async fn jwks(State(service): State<Arc<AuthService>>) -> Response {
    Json(service.jwks()).into_response()
}
