//! HTTPS for gureum's listeners, with rustls (no OpenSSL, no extra process).
//!
//! Three ways to get a certificate ([`TlsMode`]): a local CA made on first start
//! (`self-signed`), an ACME server such as Let's Encrypt (`acme`, shared by every node
//! through the store and renewed in the background), or files the user brings (`cert`,
//! reloaded when they change). Whatever the source, the certificate sits in one
//! [`CertSlot`] that every handshake reads, so a new one takes effect without a restart.
//! [`Listener`] is the accept side both listeners use, plain or TLS.

mod acme;
mod certs;
mod files;
mod listener;
mod self_signed;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use acme::{AcmeOptions, CHALLENGE_PATH, Challenges, LETS_ENCRYPT};
use certs::server_config;
pub use certs::{CertInfo, CertSlot, Loaded};
pub use listener::{ConnectionSlots, Listener, Stream};
pub use self_signed::{CA_FILE, LOCAL_NAMES, TLS_DIR, ca_path};

/// Errors of setting up HTTPS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key that does not load.
    #[error("{what}: {reason}")]
    Certificate {
        /// Which files or source.
        what: String,
        /// What is wrong with them.
        reason: String,
    },
    /// Reading or writing a file.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// Making a key or certificate.
    #[error("generating a certificate: {0}")]
    Generate(String),
    /// A setting that cannot work.
    #[error("{0}")]
    Config(String),
    /// The ACME exchange failed.
    #[error("ACME: {0}")]
    Acme(String),
    /// The store could not be read or written.
    #[error("store: {0}")]
    Store(gureum_store::StoreError),
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsMode {
    /// A local CA in the data directory signs a certificate for localhost and the domains.
    SelfSigned,
    /// An ACME server issues it.
    Acme(AcmeOptions),
    /// PEM files the user provides, reloaded on change.
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
        /// How often the files are checked for changes.
        reload_interval: Duration,
    },
}

/// Everything [`Tls::start`] needs.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// The certificate source.
    pub mode: TlsMode,
    /// Names to serve (`--domain`); for `acme` the names certified.
    pub domains: Vec<String>,
    /// The data directory (the local CA lives in `DATA_DIR/tls/`).
    pub data_dir: PathBuf,
    /// This node's id (holder of the ACME renewal lease).
    pub node_id: String,
}

/// HTTPS, running: the certificate slot, the rustls config both listeners share, and
/// the background task that renews or reloads the certificate.
#[allow(missing_debug_implementations)]
pub struct Tls {
    config: Arc<rustls::ServerConfig>,
    challenges: Option<Arc<Challenges>>,
    ca_path: Option<PathBuf>,
    self_signed: bool,
    summary: String,
    background: Option<tokio::task::JoinHandle<()>>,
    /// The ACME loop, until [`Tls::start_renewal`] runs it.
    pending: Option<(acme::Manager, Option<acme::Serving>)>,
}

impl Drop for Tls {
    fn drop(&mut self) {
        if let Some(task) = &self.background {
            task.abort();
        }
    }
}

impl Tls {
    /// Loads or makes the certificate and starts what keeps it current. Returns once a
    /// certificate is serving (for `acme` without a stored one: a placeholder until the
    /// first issuance, which runs in the background).
    pub async fn start(options: TlsOptions, store: &gureum_store::Store) -> Result<Tls, TlsError> {
        let domains = validate_domains(&options.domains)?;
        match options.mode {
            TlsMode::SelfSigned => {
                let mut names: Vec<String> =
                    LOCAL_NAMES.iter().map(|name| name.to_string()).collect();
                for domain in domains {
                    if !names.contains(&domain) {
                        names.push(domain);
                    }
                }
                let (loaded, made) = self_signed::ensure(&options.data_dir, &names)?;
                let ca = ca_path(&options.data_dir);
                let summary = format!(
                    "self-signed for {} by the local CA {} ({}; valid until {})",
                    names.join(", "),
                    ca.display(),
                    if made { "new certificate" } else { "reused" },
                    format_ms(loaded.info.not_after_ms)
                );
                let slot = Arc::new(CertSlot::new(loaded));
                Ok(Tls {
                    config: server_config(slot),
                    challenges: None,
                    ca_path: Some(ca),
                    self_signed: true,
                    summary,
                    background: None,
                    pending: None,
                })
            }
            TlsMode::Files {
                cert,
                key,
                reload_interval,
            } => {
                let loaded_at = files::stamp(&cert, &key);
                let loaded = files::load(&cert, &key)?;
                for domain in &domains {
                    if !loaded.info.covers(domain) {
                        tracing::warn!(
                            %domain,
                            names = ?loaded.info.names,
                            "--domain is not among the certificate's names; clients will refuse it for that name"
                        );
                    }
                }
                let summary = format!(
                    "certificate {} (names {}; valid until {}; reloaded when the files change){}",
                    cert.display(),
                    loaded.info.names.join(", "),
                    format_ms(loaded.info.not_after_ms),
                    LOCAL_FALLBACK
                );
                let (local, ca) = local_fallback(&options.data_dir)?;
                let slot = Arc::new(CertSlot::new(loaded).with_local(local));
                let background = files::spawn_reload(
                    slot.clone(),
                    cert.clone(),
                    key.clone(),
                    loaded_at,
                    reload_interval,
                );
                Ok(Tls {
                    config: server_config(slot),
                    challenges: None,
                    ca_path: Some(ca),
                    self_signed: false,
                    summary,
                    background: Some(background),
                    pending: None,
                })
            }
            TlsMode::Acme(mut acme_options) => {
                if domains.is_empty() {
                    return Err(TlsError::Config(
                        "--tls acme needs the names to certify: add --domain NAME (one per name)"
                            .into(),
                    ));
                }
                if let Some(wildcard) = domains.iter().find(|domain| domain.starts_with("*.")) {
                    return Err(TlsError::Config(format!(
                        "--domain {wildcard}: ACME HTTP-01 cannot certify wildcards; list each name"
                    )));
                }
                if let Some(ip) = domains
                    .iter()
                    .find(|domain| domain.parse::<std::net::IpAddr>().is_ok())
                {
                    return Err(TlsError::Config(format!(
                        "--domain {ip}: ACME certifies DNS names here, not IP addresses"
                    )));
                }
                acme_options.domains = domains.clone();
                let challenges = Arc::new(Challenges::new(store.clone()));
                let (local, ca) = local_fallback(&options.data_dir)?;
                let manager = acme::Manager {
                    store: store.clone(),
                    slot: Arc::new(
                        CertSlot::new(self_signed::placeholder(&domains)?).with_local(local),
                    ),
                    challenges: challenges.clone(),
                    http: acme::Manager::client(&acme_options)?,
                    options: acme_options.clone(),
                    node: options.node_id.clone(),
                };
                let serving = manager.adopt_stored(None).await;
                let summary = match &serving {
                    Some(serving) => format!(
                        "ACME certificate for {} from the store (valid until {}; renewed in the background from {}){LOCAL_FALLBACK}",
                        domains.join(", "),
                        format_ms(serving.info.not_after_ms),
                        acme_options.directory
                    ),
                    None => format!(
                        "ACME for {}: ordering from {} in the background; a temporary self-signed certificate serves until it arrives{LOCAL_FALLBACK}",
                        domains.join(", "),
                        acme_options.directory
                    ),
                };
                let slot = manager.slot.clone();
                Ok(Tls {
                    config: server_config(slot),
                    challenges: Some(challenges),
                    ca_path: Some(ca),
                    self_signed: false,
                    summary,
                    background: None,
                    pending: Some((manager, serving)),
                })
            }
        }
    }

    /// Starts ordering and renewing (acme): call once the listeners serve, so the CA's
    /// HTTP-01 requests find the challenge route answering.
    pub fn start_renewal(&mut self) {
        if let Some((manager, serving)) = self.pending.take() {
            self.background = Some(tokio::spawn(manager.run(serving)));
        }
    }

    /// The rustls settings for an HTTPS listener.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }

    /// The HTTP-01 answers, with `acme`.
    pub fn challenges(&self) -> Option<Arc<Challenges>> {
        self.challenges.clone()
    }

    /// The local CA to trust (for the listeners with `self-signed`; for localhost and
    /// IP-address clients in the other modes).
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca_path.as_deref()
    }

    /// Whether the listeners serve the local CA's certificate to everyone.
    pub fn is_self_signed(&self) -> bool {
        self.self_signed
    }

    /// One line for the start banner.
    pub fn summary(&self) -> &str {
        &self.summary
    }
}

const LOCAL_FALLBACK: &str =
    "; localhost and connections by IP address get the local CA's certificate (`gureum tls ca`)";

/// The local CA's certificate for localhost and loopback addresses, beside a public one.
fn local_fallback(data_dir: &Path) -> Result<(Loaded, PathBuf), TlsError> {
    let names: Vec<String> = LOCAL_NAMES.iter().map(|name| name.to_string()).collect();
    let (local, _) = self_signed::ensure(data_dir, &names)?;
    Ok((local, ca_path(data_dir)))
}

/// Lower-cased, de-duplicated names; a clear error for what cannot be a host name.
fn validate_domains(domains: &[String]) -> Result<Vec<String>, TlsError> {
    let mut out: Vec<String> = Vec::new();
    for domain in domains {
        let name = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        };
        let host = name.strip_prefix("*.").unwrap_or(&name);
        let ok = name.parse::<std::net::IpAddr>().is_ok()
            || (name.len() <= 253 && host.split('.').all(valid_label));
        if !ok {
            return Err(TlsError::Config(format!(
                "--domain {domain:?} is not a host name (letters, digits and '-' in dot-separated labels, e.g. api.example.org) or an IP address"
            )));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// RFC 3339 (UTC) for ms since the Unix epoch, in logs and messages.
pub(crate) fn format_ms(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalised_and_bad_ones_named() {
        assert_eq!(
            validate_domains(&[
                "Api.Example.org.".into(),
                "api.example.org".into(),
                "::1".into()
            ])
            .unwrap(),
            ["api.example.org", "::1"]
        );
        assert_eq!(
            validate_domains(&["*.apps.test".into()]).unwrap(),
            ["*.apps.test"]
        );
        for bad in ["exa mple.org", "-a.org", "a..org", "https://a.org", ""] {
            let error = validate_domains(&[bad.into()]).unwrap_err().to_string();
            assert!(error.contains("is not a host name"), "{bad}: {error}");
        }
    }

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(1_764_000_000_000), "2025-11-24T16:00:00Z");
    }
}
