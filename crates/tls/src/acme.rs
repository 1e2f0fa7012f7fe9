//! `--tls acme`: certificates from an RFC 8555 server (Let's Encrypt by default),
//! proven with HTTP-01 challenges that any node's public listener answers. The
//! certificate, its key and the ACME account live in the store, so every node of a
//! cluster serves the same certificate; a lease in the store makes one node renew while
//! the others pick the new certificate up. Renewal starts when two thirds of the
//! lifetime have passed; failures are retried with a doubling delay and the current
//! certificate keeps serving meanwhile.
//!
//! Each node runs one `Manager::run` loop: adopt what the store holds → sleep until two
//! thirds of the lifetime → take the `tls.acme.renewal` lease (the store's `leases` table)
//! → look at the store again (another node may have just renewed) → order → serve →
//! store → release, in that order, so whoever takes the lease next finds the new
//! certificate. A node without the lease never orders: the CA's rate limits are per
//! domain, not per node. On a failure the lease is kept until the retry (doubling from
//! `--acme-retry`, 30 s, up to an hour), so the whole cluster backs off as one. HTTP-01
//! answers are offered in memory and in the store ([`Challenges`]), so any node's gateway
//! can answer the CA. The loop starts only once the listeners serve
//! (`Tls::start_renewal`); until the first certificate a placeholder serves.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gureum_store::Store;
use http_body_util::BodyExt as _;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType,
    HttpClient, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use serde::{Deserialize, Serialize};

use crate::TlsError;
use crate::certs::{self, CertInfo, CertSlot};

/// Let's Encrypt's production directory, the default `--acme-directory`.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Where HTTP-01 challenges are fetched (RFC 8555 §8.3).
pub const CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

const CERT_SETTING: &str = "tls.acme.certificate";
const ACCOUNT_SETTING: &str = "tls.acme.account";
const CHALLENGE_SETTING: &str = "tls.acme.challenge.";
const RENEWAL_LEASE: &str = "tls.acme.renewal";
/// Longer than any issuance (each ACME poll below gives up after 90 s).
const RENEWAL_LEASE_MS: i64 = 10 * 60_000;
/// Longest sleep between looks at the stored certificate.
const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// How soon a node that lost the lease looks for the winner's certificate.
const FOLLOWER_POLL: Duration = Duration::from_secs(2);

/// Settings of `--tls acme`.
#[derive(Debug, Clone)]
pub struct AcmeOptions {
    /// The names to certify (DNS names resolving to this server).
    pub domains: Vec<String>,
    /// Contact address for the account (expiry notices).
    pub email: Option<String>,
    /// Directory URL of the ACME server.
    pub directory: String,
    /// Extra trusted roots (PEM) for reaching the ACME server (a test CA such as pebble's).
    pub ca_bundle: Option<PathBuf>,
    /// First retry delay after a failure (doubles up to an hour).
    pub retry_after_failure: Duration,
}

/// The HTTP-01 answers being offered, in memory and in the store (the ACME server may
/// ask any node of the cluster).
#[derive(Debug)]
pub struct Challenges {
    store: Store,
    local: Mutex<HashMap<String, String>>,
}

impl Challenges {
    /// No challenges yet.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            local: Mutex::new(HashMap::new()),
        }
    }

    /// The key authorization for `token`, if one is being offered (by any node).
    pub async fn answer(&self, token: &str) -> Option<String> {
        // Tokens are base64url (RFC 8555 §8.3); anything else is not ours to look up.
        if token.is_empty()
            || token.len() > 256
            || !token
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        {
            return None;
        }
        if let Some(answer) = self.lock().get(token) {
            return Some(answer.clone());
        }
        self.store
            .get_setting(&format!("{CHALLENGE_SETTING}{token}"))
            .await
            .ok()
            .flatten()
    }

    async fn offer(&self, token: &str, key_authorization: &str) -> Result<(), TlsError> {
        self.lock()
            .insert(token.to_string(), key_authorization.to_string());
        self.store
            .put_setting(&format!("{CHALLENGE_SETTING}{token}"), key_authorization)
            .await
            .map_err(TlsError::Store)
    }

    async fn withdraw(&self, token: &str) {
        self.lock().remove(token);
        if let Err(error) = self
            .store
            .delete_setting(&format!("{CHALLENGE_SETTING}{token}"))
            .await
        {
            tracing::warn!(%error, "removing a finished ACME challenge from the store");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.local
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[derive(Serialize, Deserialize)]
struct StoredCertificate {
    domains: Vec<String>,
    directory: String,
    cert_pem: String,
    key_pem: String,
    issued_at_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

/// Obtains, shares and renews the certificate; run by every node.
pub(crate) struct Manager {
    pub(crate) store: Store,
    pub(crate) slot: Arc<CertSlot>,
    pub(crate) challenges: Arc<Challenges>,
    pub(crate) options: AcmeOptions,
    pub(crate) node: String,
    pub(crate) http: reqwest::Client,
}

/// The ACME certificate being served and the directory it came from.
#[derive(Debug, Clone)]
pub(crate) struct Serving {
    pub(crate) info: CertInfo,
    directory: String,
}

enum Renewal {
    /// A new certificate is serving.
    Done,
    /// Another node holds the renewal lease.
    Elsewhere,
}

impl Manager {
    /// The HTTP client for the ACME server: system roots plus `--acme-ca-bundle`.
    pub(crate) fn client(options: &AcmeOptions) -> Result<reqwest::Client, TlsError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("gureum/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &options.ca_bundle {
            let pem = std::fs::read(path).map_err(|source| TlsError::Io {
                what: format!("reading --acme-ca-bundle {}", path.display()),
                source,
            })?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                TlsError::Config(format!(
                    "--acme-ca-bundle {} holds no usable PEM certificate: {error}",
                    path.display()
                ))
            })?;
            if roots.is_empty() {
                return Err(TlsError::Config(format!(
                    "--acme-ca-bundle {} holds no CERTIFICATE block",
                    path.display()
                )));
            }
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        builder
            .build()
            .map_err(|error| TlsError::Config(format!("building the ACME HTTP client: {error}")))
    }

    /// Serves the stored certificate when it is usable for our domains (unexpired);
    /// `None` otherwise. A certificate from another directory (say, staging before
    /// production) serves until one from ours replaces it.
    pub(crate) async fn adopt_stored(&self, serving: Option<&Serving>) -> Option<Serving> {
        let text = match self.store.get_setting(CERT_SETTING).await {
            Ok(Some(text)) => text,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%error, "reading the stored ACME certificate");
                return serving.cloned();
            }
        };
        let Ok(stored) = serde_json::from_str::<StoredCertificate>(&text) else {
            tracing::warn!("the stored ACME certificate does not parse; a new one will be ordered");
            return None;
        };
        if !same_names(&stored.domains, &self.options.domains) {
            return None;
        }
        let loaded = match certs::parse(
            stored.cert_pem.as_bytes(),
            stored.key_pem.as_bytes(),
            "the stored ACME certificate",
        ) {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::warn!(%error, "the stored ACME certificate does not load");
                return None;
            }
        };
        let adopted = Serving {
            info: loaded.info.clone(),
            directory: stored.directory,
        };
        if serving.is_some_and(|serving| serving.info.fingerprint == adopted.info.fingerprint) {
            return Some(adopted);
        }
        if loaded.info.not_after_ms <= gureum_model::now_ms() {
            return None;
        }
        tracing::info!(
            domains = ?stored.domains,
            serial = %adopted.info.serial,
            not_after = %crate::format_ms(adopted.info.not_after_ms),
            "serving the ACME certificate from the store"
        );
        self.slot.replace(loaded);
        Some(adopted)
    }

    /// The wait after the `failures`-th failure in a row: doubling up to an hour.
    fn backoff(&self, failures: u32) -> Duration {
        self.options
            .retry_after_failure
            .saturating_mul(1 << failures.saturating_sub(1).min(12))
            .min(MAX_SLEEP)
    }

    /// How long until the served certificate should be renewed (zero: now).
    fn renew_in(&self, serving: &Serving) -> Duration {
        if serving.directory != self.options.directory {
            return Duration::ZERO;
        }
        renew_in(&serving.info)
    }

    /// Runs for the life of the process.
    pub(crate) async fn run(self, mut serving: Option<Serving>) {
        let mut failures = 0u32;
        // A CA handing out certificates already due (very short lives, a skewed clock)
        // must not make this loop order back to back.
        let mut next_order = tokio::time::Instant::now();
        loop {
            serving = self.adopt_stored(serving.as_ref()).await.or(serving);
            let wait = match serving.as_ref().map(|serving| self.renew_in(serving)) {
                Some(wait) if !wait.is_zero() => {
                    failures = 0;
                    wait
                }
                _ if tokio::time::Instant::now() < next_order => {
                    next_order - tokio::time::Instant::now()
                }
                _ => match self
                    .renew(serving.as_ref(), self.backoff(failures + 1))
                    .await
                {
                    Ok(Renewal::Done) => {
                        failures = 0;
                        next_order = tokio::time::Instant::now() + self.options.retry_after_failure;
                        continue;
                    }
                    Ok(Renewal::Elsewhere) => FOLLOWER_POLL,
                    Err(error) => {
                        failures += 1;
                        let retry = self.backoff(failures);
                        match &serving {
                            Some(serving) => tracing::warn!(
                                %error,
                                attempt = failures,
                                retry_in = ?retry,
                                "ACME renewal failed; still serving the certificate valid until {}",
                                crate::format_ms(serving.info.not_after_ms)
                            ),
                            None => tracing::warn!(
                                %error,
                                attempt = failures,
                                retry_in = ?retry,
                                "getting the ACME certificate failed; still serving the placeholder"
                            ),
                        }
                        retry
                    }
                },
            };
            tokio::time::sleep(wait.min(MAX_SLEEP)).await;
        }
    }

    async fn renew(
        &self,
        serving: Option<&Serving>,
        retry_on_failure: Duration,
    ) -> Result<Renewal, TlsError> {
        let until = gureum_model::now_ms() + RENEWAL_LEASE_MS;
        if !self
            .store
            .acquire_lease(RENEWAL_LEASE, &self.node, until)
            .await
            .map_err(TlsError::Store)?
        {
            return Ok(Renewal::Elsewhere);
        }
        // Another node may have stored a fresh certificate just before we got the lease:
        // ordering again would only spend the CA's rate limit.
        if let Some(fresh) = self.adopt_stored(serving).await
            && !self.renew_in(&fresh).is_zero()
        {
            let _ = self.store.release_lease(RENEWAL_LEASE, &self.node).await;
            return Ok(Renewal::Done);
        }
        let serving = serving.map(|serving| &serving.info);
        let (cert_pem, key_pem) = match self.issue().await {
            Ok(issued) => issued,
            Err(error) => {
                // The lease is kept until the retry: no other node orders before then,
                // so a cluster backs off as one (the CA counts failures per domain).
                let until = gureum_model::now_ms()
                    + i64::try_from(retry_on_failure.as_millis()).unwrap_or(i64::MAX / 2);
                let _ = self
                    .store
                    .acquire_lease(RENEWAL_LEASE, &self.node, until)
                    .await;
                return Err(error);
            }
        };
        let loaded = certs::parse(
            cert_pem.as_bytes(),
            key_pem.as_bytes(),
            "the new ACME certificate",
        )?;
        tracing::info!(
            domains = ?self.options.domains,
            serial = %loaded.info.serial,
            not_after = %crate::format_ms(loaded.info.not_after_ms),
            replaced = serving.map(|info| info.serial.as_str()).unwrap_or("the placeholder"),
            "new ACME certificate issued; serving it"
        );
        // Served at once, then stored, and only then the lease released: a node taking
        // the lease next finds this certificate instead of ordering another.
        self.slot.replace(loaded);
        let stored = StoredCertificate {
            domains: self.options.domains.clone(),
            directory: self.options.directory.clone(),
            cert_pem,
            key_pem,
            issued_at_ms: gureum_model::now_ms(),
        };
        let text =
            serde_json::to_string(&stored).map_err(|error| TlsError::Acme(error.to_string()))?;
        let mut attempt = 0;
        while let Err(error) = self.store.put_setting(CERT_SETTING, &text).await {
            attempt += 1;
            if attempt == 10 {
                // Kept serving here; the lease runs out by itself and the next renewal
                // (or another node) orders again.
                tracing::error!(%error, "storing the new ACME certificate failed; other nodes will not see it");
                return Ok(Renewal::Done);
            }
            tracing::warn!(%error, attempt, "storing the new ACME certificate; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if let Err(error) = self.store.release_lease(RENEWAL_LEASE, &self.node).await {
            tracing::warn!(%error, "releasing the ACME renewal lease");
        }
        Ok(Renewal::Done)
    }

    /// One order, start to finish: (certificate chain PEM, private key PEM).
    async fn issue(&self) -> Result<(String, String), TlsError> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self
            .options
            .domains
            .iter()
            .map(|domain| Identifier::Dns(domain.clone()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|error| acme("creating the order", error))?;
        let mut offered = Vec::new();
        let prepared = self.answer_challenges(&mut order, &mut offered).await;
        let ready = match prepared {
            Ok(()) => order
                .poll_ready(&poll_policy())
                .await
                .map_err(|error| acme("waiting for the challenges to be validated", error)),
            Err(error) => Err(error),
        };
        for token in &offered {
            self.challenges.withdraw(token).await;
        }
        match ready? {
            OrderStatus::Ready => {}
            status => {
                return Err(TlsError::Acme(format!(
                    "the order became {status:?}: {}",
                    self.why_invalid(&mut order).await
                )));
            }
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|error| acme("finalizing the order", error))?;
        let chain = order
            .poll_certificate(&poll_policy())
            .await
            .map_err(|error| acme("downloading the certificate", error))?;
        Ok((chain, key_pem))
    }

    async fn answer_challenges(
        &self,
        order: &mut instant_acme::Order,
        offered: &mut Vec<String>,
    ) -> Result<(), TlsError> {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization =
                authorization.map_err(|error| acme("reading an authorization", error))?;
            let name = authorization.identifier().to_string();
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                status => {
                    return Err(TlsError::Acme(format!(
                        "the authorization for {name} is {status:?}"
                    )));
                }
            }
            let mut challenge = authorization
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| {
                    TlsError::Acme(format!(
                        "the ACME server offers no http-01 challenge for {name} (wildcards need dns-01, which gureum does not do)"
                    ))
                })?;
            let key_authorization = challenge.key_authorization();
            self.challenges
                .offer(&challenge.token, key_authorization.as_str())
                .await?;
            offered.push(challenge.token.clone());
            challenge.set_ready().await.map_err(|error| {
                acme(&format!("starting the http-01 validation of {name}"), error)
            })?;
        }
        Ok(())
    }

    /// The ACME server's reasons, per name, for failing an order.
    async fn why_invalid(&self, order: &mut instant_acme::Order) -> String {
        let mut reasons = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(Ok(authorization)) = authorizations.next().await {
            let name = authorization.identifier().to_string();
            for challenge in &authorization.challenges {
                if let Some(problem) = &challenge.error {
                    reasons.push(format!("{name}: {problem}"));
                }
            }
        }
        if reasons.is_empty() {
            "the ACME server gave no reason".into()
        } else {
            format!(
                "{} (HTTP-01 asks http://NAME/.well-known/acme-challenge/… on port 80: NAME must resolve to this server and port 80 reach --http-listen)",
                reasons.join("; ")
            )
        }
    }

    async fn account(&self) -> Result<Account, TlsError> {
        let builder = || Account::builder_with_http(Box::new(ReqwestHttp(self.http.clone())));
        if let Ok(Some(text)) = self.store.get_setting(ACCOUNT_SETTING).await
            && let Ok(stored) = serde_json::from_str::<StoredAccount>(&text)
            && stored.directory == self.options.directory
        {
            return builder()
                .from_credentials(stored.credentials)
                .await
                .map_err(|error| acme("loading the ACME account", error));
        }
        let contact = self
            .options
            .email
            .as_ref()
            .map(|email| format!("mailto:{email}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder()
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.options.directory.clone(),
                None,
            )
            .await
            .map_err(|error| {
                acme(
                    &format!("creating an account at {}", self.options.directory),
                    error,
                )
            })?;
        let stored = StoredAccount {
            directory: self.options.directory.clone(),
            credentials,
        };
        let text =
            serde_json::to_string(&stored).map_err(|error| TlsError::Acme(error.to_string()))?;
        self.store
            .put_setting(ACCOUNT_SETTING, &text)
            .await
            .map_err(TlsError::Store)?;
        tracing::info!(directory = %self.options.directory, id = %account.id(), "ACME account created");
        Ok(account)
    }
}

/// The same set of names, in any order (nodes may list `--domain`s differently).
fn same_names(a: &[String], b: &[String]) -> bool {
    let sorted = |names: &[String]| {
        let mut names = names.to_vec();
        names.sort();
        names.dedup();
        names
    };
    sorted(a) == sorted(b)
}

/// How long until `info` is due for renewal: when two thirds of its lifetime have
/// passed (30 days before the end of a 90-day certificate, as Let's Encrypt advises).
fn renew_in(info: &CertInfo) -> Duration {
    let lifetime = (info.not_after_ms - info.not_before_ms).max(0);
    let due = info.not_before_ms + lifetime * 2 / 3;
    Duration::from_millis(u64::try_from(due - gureum_model::now_ms()).unwrap_or(0))
}

fn poll_policy() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .timeout(Duration::from_secs(90))
}

fn acme(during: &str, error: instant_acme::Error) -> TlsError {
    let mut message = format!("{during}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    TlsError::Acme(message)
}

/// instant-acme's requests through reqwest (the client the rest of gureum uses), so the
/// ACME server is reached with the same TLS stack and roots.
struct ReqwestHttp(reqwest::Client);

impl HttpClient for ReqwestHttp {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let request = reqwest::Request::try_from(http::Request::from_parts(parts, body))
                .map_err(|error| instant_acme::Error::Other(Box::new(error)))?;
            let response = client
                .execute(request)
                .await
                .map_err(|error| instant_acme::Error::Other(Box::new(error)))?;
            Ok(BytesResponse::from(http::Response::<reqwest::Body>::from(
                response,
            )))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(not_before_ms: i64, not_after_ms: i64) -> CertInfo {
        CertInfo {
            not_before_ms,
            not_after_ms,
            serial: String::new(),
            names: Vec::new(),
            issuer: String::new(),
            fingerprint: String::new(),
        }
    }

    #[test]
    fn names_compare_as_sets() {
        let names = |list: &[&str]| list.iter().map(|name| name.to_string()).collect::<Vec<_>>();
        assert!(same_names(
            &names(&["a.test", "b.test"]),
            &names(&["b.test", "a.test"])
        ));
        assert!(!same_names(
            &names(&["a.test"]),
            &names(&["a.test", "b.test"])
        ));
    }

    #[test]
    fn renewal_is_due_after_two_thirds_of_the_lifetime() {
        let now = gureum_model::now_ms();
        let day = 86_400_000;
        // 90 days, issued 10 days ago: due in 50 days.
        let wait = renew_in(&info(now - 10 * day, now + 80 * day));
        assert!((wait.as_secs() as i64 - 50 * 86_400).abs() < 5, "{wait:?}");
        // 61 days in: due now.
        assert!(renew_in(&info(now - 61 * day, now + 29 * day)).is_zero());
        // Expired: due now.
        assert!(renew_in(&info(now - 100 * day, now - day)).is_zero());
    }
}
