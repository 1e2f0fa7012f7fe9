//! Typed client for the control API (`/api/v1`), used by the CLI and the end-to-end
//! tests. Errors from the server keep their code, message and manifest problems.

use futures::{Stream, StreamExt};
use gureum_api_types::{
    DeadLetterCount, DeadLetterInfo, DeployResponse, ErrorBody, FunctionInfo, InvocationView,
    LogLineView, PricesView, Problem, QuotaBody, QuotaView, RollbackRequest, RollbackResponse,
    ScheduleInfo, UsageReportView, VersionInfo,
};
use serde::de::DeserializeOwned;

/// What went wrong talking to the control API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{message}{}", format_problems(problems))]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// The server's message.
        message: String,
        /// Manifest problems, if any.
        problems: Vec<Problem>,
    },
    /// The server could not be reached.
    #[error("cannot reach the gureum control API at {url}: {}", connect_reason(.error))]
    Connect {
        /// The URL tried.
        url: String,
        /// The transport error (its causes are in the message, so it is not a `source`).
        error: reqwest::Error,
    },
    /// The CA file given to trust holds no certificate.
    #[error("{0}")]
    BadCa(String),
    /// Another transport or decoding failure.
    #[error("control API request failed: {0}")]
    Http(#[from] reqwest::Error),
}

/// The transport error with its causes (reqwest's own message hides them, e.g. which
/// certificate check failed) and what to do about it.
fn connect_reason(error: &reqwest::Error) -> String {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = cause.source();
    }
    let hint = if reason.contains("NotValidForName") || reason.contains("not valid for name") {
        "; the server's certificate does not name this host: use a name it covers in --url (https://127.0.0.1 and localhost get the local CA's certificate)"
    } else if reason.contains("Expired") || reason.contains("certificate expired") {
        "; the server's certificate has expired (see the server's log for its renewal)"
    } else if reason.contains("certificate") || reason.contains("UnknownIssuer") {
        "; the server's certificate is not trusted here: pass --ca-cert FILE (GUREUM_CA_CERT), e.g. the CA of `gureum up --tls self-signed`, which `gureum tls ca` prints"
    } else if reason.contains("InvalidContentType") || reason.contains("corrupt message") {
        "; the server does not speak HTTPS there: use an http:// URL (--url / GUREUM_URL)"
    } else {
        "; is `gureum up` running? (--url / GUREUM_URL)"
    };
    reason.push_str(hint);
    reason
}

fn format_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|problem| format!("\n  - {}: {}", problem.field, problem.message))
        .collect()
}

/// Parameters of a log query.
#[derive(Debug, Clone, Default)]
pub struct LogParams {
    /// Only lines at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Only lines of this invocation.
    pub invocation: Option<String>,
    /// Only lines after this sequence number.
    pub after: Option<i64>,
    /// Only lines containing this text (case-sensitive).
    pub grep: Option<String>,
}

/// Parameters of a usage report (`GET /api/v1/usage`); `None` takes the server's default.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    /// Only this function.
    pub function: Option<String>,
    /// How far back, as a duration: `30d`, `12h`, `90m` (server default 30d).
    pub since: Option<String>,
    /// Start of the period (ms since the Unix epoch); wins over `since`.
    pub since_ms: Option<i64>,
    /// `day`, `function` or `version`.
    pub by: Option<String>,
    /// Add the comparison with an always-on VM.
    pub compare_vm: bool,
    /// The VM's monthly cost in USD, as decimal text (server default 24.0).
    pub vm_monthly: Option<String>,
}

/// A control API client.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// A client for the admin listener at `base` (e.g. `http://127.0.0.1:8081`); for
    /// `https://`, the system's roots are trusted.
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    /// [`Client::new`] also trusting the certificates in `ca_pem` (a PEM bundle, e.g.
    /// the local CA of `gureum up --tls self-signed`).
    pub fn with_ca(base: &str, token: &str, ca_pem: &[u8]) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder().use_rustls_tls();
        let roots = reqwest::Certificate::from_pem_bundle(ca_pem).map_err(|error| {
            ClientError::BadCa(format!(
                "the CA file (--ca-cert) does not parse as PEM: {error}"
            ))
        })?;
        if roots.is_empty() {
            return Err(ClientError::BadCa(
                "the CA file (--ca-cert) holds no PEM CERTIFICATE block (a key or a DER file?)"
                    .into(),
            ));
        }
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
        Ok(Self {
            http: builder.build()?,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// Uploads a manifest and its artifact as a new version.
    pub async fn deploy(
        &self,
        manifest: String,
        artifact: Vec<u8>,
    ) -> Result<DeployResponse, ClientError> {
        self.deploy_with_static(manifest, artifact, None).await
    }

    /// [`Client::deploy`] with the bundle of the manifest's `[static]` files (the zip
    /// `gureum_invoke::static_site::pack` makes) as part `static`.
    pub async fn deploy_with_static(
        &self,
        manifest: String,
        artifact: Vec<u8>,
        static_bundle: Option<Vec<u8>>,
    ) -> Result<DeployResponse, ClientError> {
        let mut form = reqwest::multipart::Form::new()
            .text("manifest", manifest)
            .part(
                "artifact",
                reqwest::multipart::Part::bytes(artifact).file_name("artifact"),
            );
        if let Some(bundle) = static_bundle {
            form = form.part(
                "static",
                reqwest::multipart::Part::bytes(bundle).file_name("static.zip"),
            );
        }
        let request = self
            .http
            .post(self.url("/api/v1/functions"))
            .multipart(form);
        self.json(request).await
    }

    /// Lists deployed functions.
    pub async fn list(&self) -> Result<Vec<FunctionInfo>, ClientError> {
        self.json(self.http.get(self.url("/api/v1/functions")))
            .await
    }

    /// Lists a function's versions.
    pub async fn versions(&self, name: &str) -> Result<Vec<VersionInfo>, ClientError> {
        self.json(
            self.http
                .get(self.url(&format!("/api/v1/functions/{name}/versions"))),
        )
        .await
    }

    /// Rolls `live` back (or forward) to a version.
    pub async fn rollback(
        &self,
        name: &str,
        to: Option<u32>,
    ) -> Result<RollbackResponse, ClientError> {
        self.json(
            self.http
                .post(self.url(&format!("/api/v1/functions/{name}/rollback")))
                .json(&RollbackRequest { to }),
        )
        .await
    }

    /// Removes a function.
    pub async fn remove(&self, name: &str) -> Result<(), ClientError> {
        let request = self
            .http
            .delete(self.url(&format!("/api/v1/functions/{name}")));
        self.send(request).await.map(drop)
    }

    /// Invokes a function through the control API; `path` starts with `/`.
    pub async fn invoke(
        &self,
        name: &str,
        method: reqwest::Method,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<reqwest::Response, ClientError> {
        let path = if path == "/" { "" } else { path };
        let mut request = self
            .http
            .request(
                method,
                self.url(&format!("/api/v1/functions/{name}/invoke{path}")),
            )
            .body(body);
        for (key, value) in headers {
            request = request.header(key, value);
        }
        request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|source| self.connect_error(source))
    }

    /// Every live function's cron schedules.
    pub async fn schedules(&self) -> Result<Vec<ScheduleInfo>, ClientError> {
        self.json(self.http.get(self.url("/api/v1/schedules")))
            .await
    }

    /// A function's dead letters, newest first.
    pub async fn dead_letters(
        &self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<DeadLetterInfo>, ClientError> {
        let request = self
            .http
            .get(self.url(&format!("/api/v1/functions/{name}/dead-letters")))
            .query(&[("limit", limit)]);
        self.json(request).await
    }

    /// One dead letter.
    pub async fn dead_letter(&self, name: &str, id: &str) -> Result<DeadLetterInfo, ClientError> {
        self.json(
            self.http
                .get(self.url(&format!("/api/v1/functions/{name}/dead-letters/{id}"))),
        )
        .await
    }

    /// Deletes one dead letter, or all of the function's with `None`.
    pub async fn delete_dead_letters(
        &self,
        name: &str,
        id: Option<&str>,
    ) -> Result<DeadLetterCount, ClientError> {
        let path = match id {
            Some(id) => format!("/api/v1/functions/{name}/dead-letters/{id}"),
            None => format!("/api/v1/functions/{name}/dead-letters"),
        };
        self.json(self.http.delete(self.url(&path))).await
    }

    /// Queues one dead letter again, or all of the function's with `None`.
    pub async fn redrive_dead_letters(
        &self,
        name: &str,
        id: Option<&str>,
    ) -> Result<DeadLetterCount, ClientError> {
        let path = match id {
            Some(id) => format!("/api/v1/functions/{name}/dead-letters/{id}/redrive"),
            None => format!("/api/v1/functions/{name}/dead-letters/redrive"),
        };
        self.json(self.http.post(self.url(&path))).await
    }

    /// Log lines of a function, oldest first.
    pub async fn logs(
        &self,
        name: &str,
        params: &LogParams,
    ) -> Result<Vec<LogLineView>, ClientError> {
        let request = self
            .http
            .get(self.url(&format!("/api/v1/functions/{name}/logs")))
            .query(&query_pairs(params, false));
        self.json(request).await
    }

    /// Recent invocations, newest first.
    pub async fn invocations(&self, name: &str) -> Result<Vec<InvocationView>, ClientError> {
        self.json(
            self.http
                .get(self.url(&format!("/api/v1/functions/{name}/invocations"))),
        )
        .await
    }

    /// Follows a function's logs: existing lines matching `params`, then new ones.
    pub async fn follow_logs(
        &self,
        name: &str,
        params: &LogParams,
    ) -> Result<impl Stream<Item = Result<LogLineView, ClientError>> + use<>, ClientError> {
        let request = self
            .http
            .get(self.url(&format!("/api/v1/functions/{name}/logs")))
            .query(&query_pairs(params, true));
        let response = self.send(request).await?;
        let mut buffer = Vec::<u8>::new();
        Ok(response
            .bytes_stream()
            .map(move |chunk| {
                let chunk = chunk.map_err(ClientError::Http)?;
                buffer.extend_from_slice(&chunk);
                let mut lines = Vec::new();
                // Server-sent events end with a blank line; `data:` carries one JSON line.
                while let Some(end) = find(&buffer, b"\n\n") {
                    let event: Vec<u8> = buffer.drain(..end + 2).collect();
                    for field in String::from_utf8_lossy(&event).lines() {
                        if let Some(data) = field.strip_prefix("data:")
                            && let Ok(line) = serde_json::from_str(data.trim_start())
                        {
                            lines.push(Ok(line));
                        }
                    }
                }
                Ok::<_, ClientError>(futures::stream::iter(lines))
            })
            .flat_map(|batch| match batch {
                Ok(lines) => lines.left_stream(),
                Err(error) => futures::stream::iter(vec![Err(error)]).right_stream(),
            }))
    }

    /// A usage report: requests, GB-seconds and cost under the price list.
    pub async fn usage(&self, query: &UsageQuery) -> Result<UsageReportView, ClientError> {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(function) = &query.function {
            pairs.push(("function", function.clone()));
        }
        if let Some(since) = &query.since {
            pairs.push(("since", since.clone()));
        }
        if let Some(since_ms) = query.since_ms {
            pairs.push(("since_ms", since_ms.to_string()));
        }
        if let Some(by) = &query.by {
            pairs.push(("by", by.clone()));
        }
        if query.compare_vm {
            pairs.push(("compare_vm", "true".into()));
        }
        if let Some(vm_monthly) = &query.vm_monthly {
            pairs.push(("vm_monthly", vm_monthly.clone()));
        }
        self.json(self.http.get(self.url("/api/v1/usage")).query(&pairs))
            .await
    }

    /// The price list in force.
    pub async fn prices(&self) -> Result<PricesView, ClientError> {
        self.json(self.http.get(self.url("/api/v1/prices"))).await
    }

    /// Replaces the price list with a price file (TOML; keys left out take their
    /// defaults); answers the prices now in force.
    pub async fn set_prices_toml(&self, toml: String) -> Result<PricesView, ClientError> {
        let request = self
            .http
            .put(self.url("/api/v1/prices"))
            .header(reqwest::header::CONTENT_TYPE, "application/toml")
            .body(toml);
        self.json(request).await
    }

    /// Replaces the price list; answers the prices now in force.
    pub async fn set_prices(&self, prices: &PricesView) -> Result<PricesView, ClientError> {
        self.json(self.http.put(self.url("/api/v1/prices")).json(prices))
            .await
    }

    /// Every quota set, with this month's usage.
    pub async fn quotas(&self) -> Result<Vec<QuotaView>, ClientError> {
        self.json(self.http.get(self.url("/api/v1/quotas"))).await
    }

    /// Sets (replaces) the quota of function `scope`, or the installation's when `None`.
    pub async fn set_quota(
        &self,
        scope: Option<&str>,
        quota: &QuotaBody,
    ) -> Result<QuotaView, ClientError> {
        self.json(self.http.put(self.quota_url(scope)).json(quota))
            .await
    }

    /// Removes the quota of function `scope`, or the installation's when `None`; `false`
    /// when none was set.
    pub async fn remove_quota(&self, scope: Option<&str>) -> Result<bool, ClientError> {
        match self.send(self.http.delete(self.quota_url(scope))).await {
            Ok(_) => Ok(true),
            Err(ClientError::Api { status: 404, .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn quota_url(&self, scope: Option<&str>) -> String {
        self.url(&format!("/api/v1/quotas/{}", scope.unwrap_or("global")))
    }

    /// Users (JSON `{users, next}`), ordered by email, after `after`.
    pub async fn users(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<serde_json::Value, ClientError> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(after) = after {
            query.push(("after", after.to_string()));
        }
        self.json(self.http.get(self.url("/api/v1/users")).query(&query))
            .await
    }

    /// One user by id or email.
    pub async fn user(&self, user: &str) -> Result<serde_json::Value, ClientError> {
        self.json(
            self.http
                .get(self.url(&format!("/api/v1/users/{}", segment(user)))),
        )
        .await
    }

    /// Disables (`true`) or enables a user by id or email; answers the user.
    pub async fn set_user_disabled(
        &self,
        user: &str,
        disabled: bool,
    ) -> Result<serde_json::Value, ClientError> {
        let verb = if disabled { "disable" } else { "enable" };
        self.json(
            self.http
                .post(self.url(&format!("/api/v1/users/{}/{verb}", segment(user)))),
        )
        .await
    }

    /// Every configured collection (`[{name, config, documents}]`).
    pub async fn collections(&self) -> Result<serde_json::Value, ClientError> {
        self.json(self.http.get(self.url("/api/v1/collections")))
            .await
    }

    /// One collection's config and document count.
    pub async fn collection(&self, name: &str) -> Result<serde_json::Value, ClientError> {
        self.json(
            self.http
                .get(self.url(&format!("/api/v1/collections/{}", segment(name)))),
        )
        .await
    }

    /// Sets a collection's config (`{rules, indexes, files}`).
    pub async fn set_collection(
        &self,
        name: &str,
        config: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        self.json(
            self.http
                .put(self.url(&format!("/api/v1/collections/{}", segment(name))))
                .json(config),
        )
        .await
    }

    /// Removes a collection with its documents and files; `false` when there was none.
    pub async fn delete_collection(&self, name: &str) -> Result<bool, ClientError> {
        match self
            .send(
                self.http
                    .delete(self.url(&format!("/api/v1/collections/{}", segment(name)))),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(ClientError::Api { status: 404, .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The OpenAPI document.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        self.json(self.http.get(self.url("/api/v1/openapi.json")))
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        Ok(self.send(request).await?.json().await?)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|source| self.connect_error(source))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status,
                code: body.error.code,
                message: body.error.message,
                problems: body.error.problems,
            },
            Err(_) => ClientError::Api {
                status,
                code: "unexpected_response".into(),
                message: format!("HTTP {status}: {text}"),
                problems: Vec::new(),
            },
        })
    }

    fn connect_error(&self, source: reqwest::Error) -> ClientError {
        if source.is_connect() {
            ClientError::Connect {
                url: self.base.clone(),
                error: source,
            }
        } else {
            ClientError::Http(source)
        }
    }
}

fn query_pairs(params: &LogParams, follow: bool) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    if let Some(since) = params.since_ms {
        pairs.push(("since_ms", since.to_string()));
    }
    if let Some(invocation) = &params.invocation {
        pairs.push(("invocation", invocation.clone()));
    }
    if let Some(after) = params.after {
        pairs.push(("after", after.to_string()));
    }
    if let Some(grep) = &params.grep {
        pairs.push(("grep", grep.clone()));
    }
    if follow {
        pairs.push(("follow", "true".into()));
    }
    pairs
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A path segment with the characters that would change the path percent-encoded.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@+".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
