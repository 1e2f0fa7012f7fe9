//! The backend services on the public listener (`/auth/v1`, `/data/v1`, `/kv/v1`) and the
//! `auth` policy of functions.
//!
//! `/auth/v1/…` goes to `AuthService::router`. For `/data/v1/…` and `/kv/v1/…` the caller
//! is resolved once ([`AuthService::caller`]: a function token `gft.…`, a user JWT
//! verified with the installation's Ed25519 key, or anonymous) and `DataService::router`
//! gets the [`Caller`] as a request extension. A token that is present but invalid is a
//! 401, never an anonymous request; so is the admin token, which belongs to the admin
//! listener.
//!
//! The services answer CORS preflights and add `access-control-allow-origin: *`: their
//! credentials are bearer tokens, never cookies, so any origin may call them, as with
//! Firebase's REST APIs.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use gureum_auth::{AuthService, Caller, ClientAddr};
use gureum_data::DataService;
use gureum_model::AuthPolicy;
use gureum_rules::{Context, Rule};
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, HeaderValue,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::server::{ResponseBody, error_response};

use gureum_model::AUTH_CLAIMS_HEADER;

/// The services a public listener serves besides functions.
pub struct Services {
    auth: Arc<AuthService>,
    auth_router: axum::Router,
    data_router: axum::Router,
    /// Compiled `auth = "<CEL>"` policies by their text.
    policies: RwLock<HashMap<String, Arc<Rule>>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

/// Whether `path` belongs to the backend services.
pub(crate) fn is_service_path(path: &str) -> bool {
    path.starts_with("/auth/v1/") || path.starts_with("/data/v1/") || path.starts_with("/kv/v1/")
}

/// An axum answer with the gateway's body type.
fn gateway_body(response: axum::response::Response) -> Response<ResponseBody> {
    response.map(|body| {
        body.map_err(|e| -> gureum_invoke::BoxError { e.into() })
            .boxed_unsync()
    })
}

fn cors(response: &mut Response<ResponseBody>) {
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("etag, location, retry-after, content-range"),
    );
}

impl Services {
    /// Services over `auth` and `data`.
    pub fn new(auth: Arc<AuthService>, data: &Arc<DataService>) -> Arc<Services> {
        Arc::new(Services {
            auth_router: auth.router(),
            data_router: data.router(),
            auth,
            policies: RwLock::new(HashMap::new()),
        })
    }

    /// The auth service (the control API lists and disables users through it).
    pub fn auth(&self) -> &Arc<AuthService> {
        &self.auth
    }

    /// Answers a service request.
    pub(crate) async fn route<B>(
        &self,
        request: Request<B>,
        client: Option<std::net::IpAddr>,
    ) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if request.method() == Method::OPTIONS {
            let mut response = Response::new(ResponseBody::default());
            *response.status_mut() = StatusCode::NO_CONTENT;
            let headers = response.headers_mut();
            headers.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
            );
            headers.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(
                    "authorization, content-type, if-match, if-none-match, range",
                ),
            );
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
            cors(&mut response);
            return response;
        }
        let (mut parts, body) = request.into_parts();
        let router = if parts.uri.path().starts_with("/auth/v1/") {
            self.auth_router.clone()
        } else {
            match self.auth.caller(&parts.headers, &parts.uri) {
                Ok(caller) => {
                    parts.extensions.insert(caller);
                }
                Err(error) => {
                    let mut response = gateway_body(error.response());
                    cors(&mut response);
                    return response;
                }
            }
            self.data_router.clone()
        };
        parts.extensions.insert(ClientAddr(client));
        let request = Request::from_parts(parts, axum::body::Body::new(body));
        let response = match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let mut response = gateway_body(response);
        cors(&mut response);
        response
    }

    /// Who may queue an event for `function` from the public listener: anyone when its
    /// `[async] public = true`, else a signed-in user or a function granted
    /// `invoke = [NAME]` (its token in `Authorization`), so that nobody anonymous can fill
    /// the store (audit findings 10 and 2).
    /// A function's token is removed from what is stored: it is not the callee's to see.
    /// The answer is the caller's idempotency scope (`user:UID`, `function:NAME`).
    pub(crate) fn async_caller(
        &self,
        public: bool,
        function: &str,
        parts: &mut http::request::Parts,
    ) -> Result<Option<String>, Box<Response<ResponseBody>>> {
        match self.auth.caller(&parts.headers, &parts.uri) {
            Ok(Caller::User(user)) => Ok(Some(format!("user:{}", user.uid))),
            Ok(Caller::Function(caller)) => {
                parts.headers.remove(http::header::AUTHORIZATION);
                if public || caller.permissions().may_invoke(&caller.name, function) {
                    Ok(Some(format!("function:{}", caller.name)))
                } else {
                    Err(Box::new(error_response(
                        StatusCode::FORBIDDEN,
                        "permission_denied",
                        &format!(
                            "function {:?} may not queue events for {function:?}: add invoke = [{function:?}] to [permissions] in {:?}'s gureum.toml and deploy it (or set [async] public = true in {function:?}'s)",
                            caller.name, caller.name
                        ),
                    )))
                }
            }
            Ok(_) | Err(_) if public => Ok(None),
            Err(error) => Err(Box::new(gateway_body(error.response()))),
            Ok(_) => Err(Box::new(error_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &format!(
                    "queueing events for {function:?} needs a signed-in user (Authorization: Bearer <access token>) or a function's token; to let anyone queue them, set [async] public = true in its gureum.toml"
                ),
            ))),
        }
    }

    /// Applies a function's `auth` policy to an incoming request: removes any claims
    /// header it brought, then (unless the policy is `none`) verifies the caller's JWT,
    /// evaluates an expression policy and passes the claims on. The error is the answer
    /// (401 without a valid user token, 403 when the expression is false).
    pub(crate) fn authorize_function(
        &self,
        policy: &AuthPolicy,
        parts: &mut http::request::Parts,
    ) -> Result<(), Box<Response<ResponseBody>>> {
        parts.headers.remove(AUTH_CLAIMS_HEADER);
        if *policy == AuthPolicy::None {
            return Ok(());
        }
        let user = match self.auth.caller(&parts.headers, &parts.uri) {
            Ok(Caller::User(user)) => user,
            Ok(_) => {
                return Err(Box::new(error_response(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this function needs a signed-in user: send Authorization: Bearer <access token from POST /auth/v1/token>",
                )));
            }
            Err(error) => return Err(Box::new(gateway_body(error.response()))),
        };
        if let AuthPolicy::Expression(source) = policy {
            let rule = self.policy(source)?;
            let auth = Caller::User(user.clone()).rule_auth();
            let allowed = rule
                .allows(&Context {
                    auth: auth.as_ref(),
                    doc: None,
                    data: None,
                })
                .unwrap_or(false);
            if !allowed {
                return Err(Box::new(error_response(
                    StatusCode::FORBIDDEN,
                    "permission_denied",
                    "the function's auth expression denies this user",
                )));
            }
        }
        let claims = ascii_json(&serde_json::Value::Object(user.claims).to_string());
        let value = HeaderValue::from_str(&claims).expect("escaped JSON is visible ASCII");
        parts.headers.insert(AUTH_CLAIMS_HEADER, value);
        Ok(())
    }

    fn policy(&self, source: &str) -> Result<Arc<Rule>, Box<Response<ResponseBody>>> {
        if let Some(rule) = self.policies.read().expect("policy cache").get(source) {
            return Ok(rule.clone());
        }
        // Deploy validated it; a failure here means the manifest predates the check.
        let rule = Rule::compile(source).map(Arc::new).map_err(|error| {
            Box::new(error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "bad_auth_policy",
                &format!("the function's auth expression does not compile: {error}"),
            ))
        })?;
        self.policies
            .write()
            .expect("policy cache")
            .insert(source.to_string(), rule.clone());
        Ok(rule)
    }
}

/// JSON text with every non-ASCII character as `\uXXXX` (still the same JSON), so it fits
/// an HTTP header whatever the claims hold (an internationalised email, say).
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut units = [0_u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn claims_fit_a_header_and_stay_the_same_json() {
        let json = "{\"email\":\"jos\u{e9}@b\u{fc}cher.de\",\"note\":\"\u{1f600}\"}";
        let escaped = super::ascii_json(json);
        assert!(escaped.is_ascii());
        assert!(http::HeaderValue::from_str(&escaped).is_ok());
        let a: serde_json::Value = serde_json::from_str(json).unwrap();
        let b: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(a, b);
    }
}
