//! A certificate chain and its key, parsed once, and the slot the TLS acceptor reads on
//! every handshake: replacing the slot's content is how a renewed or reloaded
//! certificate takes effect without a restart (connections already open keep theirs).
//! A handshake holds the slot's `RwLock` only for a pointer clone, so nothing here blocks
//! a request. With `acme` or `cert` the slot also holds the local CA's certificate, served
//! for `localhost` and for handshakes without a name (an IP address), so the CLI on the
//! machine reaches `https://127.0.0.1`. Both listeners share one rustls `ServerConfig`
//! ([`server_config`]: ring provider, TLS 1.2 and 1.3, ALPN h2 then http/1.1).

use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::TlsError;

/// What a served certificate says about itself (for logs, renewal and the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Start of validity, ms since the Unix epoch.
    pub not_before_ms: i64,
    /// End of validity, ms since the Unix epoch.
    pub not_after_ms: i64,
    /// Serial number, hex.
    pub serial: String,
    /// DNS names and IP addresses it is valid for.
    pub names: Vec<String>,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// SHA-256 of the leaf certificate's DER, hex.
    pub fingerprint: String,
}

impl CertInfo {
    /// Whether the certificate covers `name` (exactly, or by a `*.` wildcard one label deep).
    pub fn covers(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.names.iter().any(|have| {
            let have = have.to_ascii_lowercase();
            have == name
                || have.strip_prefix("*.").is_some_and(|suffix| {
                    name.split_once('.').is_some_and(|(_, rest)| rest == suffix)
                })
        })
    }
}

/// A parsed certificate chain with its signing key, ready for rustls.
#[derive(Debug)]
pub struct Loaded {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// What the leaf says.
    pub info: CertInfo,
}

/// The crypto provider of every TLS config gureum builds (ring: no C toolchain beyond
/// what ring needs, and already in the tree).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or SEC1) and
/// checks that they belong together. `what` names the source in errors.
pub fn parse(cert_pem: &[u8], key_pem: &[u8], what: &str) -> Result<Loaded, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Certificate {
            what: what.to_string(),
            reason: format!("the certificate PEM does not parse: {error}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            what: what.to_string(),
            reason: "no CERTIFICATE block found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|error| TlsError::Certificate {
        what: what.to_string(),
        reason: format!("no usable private key (PKCS#8, RSA or EC PEM): {error}"),
    })?;
    let info = inspect(&chain[0]).map_err(|reason| TlsError::Certificate {
        what: what.to_string(),
        reason,
    })?;
    let certified =
        CertifiedKey::from_der(chain, key, &provider()).map_err(|error| TlsError::Certificate {
            what: what.to_string(),
            reason: format!("the key does not match the certificate or is unsupported: {error}"),
        })?;
    Ok(Loaded {
        key: Arc::new(certified),
        info,
    })
}

/// Reads validity, serial, names and issuer of a DER certificate.
pub fn inspect(der: &CertificateDer<'_>) -> Result<CertInfo, String> {
    let (_, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|error| format!("the certificate is not valid X.509: {error}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push((*dns).to_string()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => names.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).unwrap_or_default())
                            .to_string(),
                    ),
                    16 => names.push(
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).unwrap_or_default())
                            .to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let validity = cert.validity();
    Ok(CertInfo {
        not_before_ms: validity.not_before.timestamp() * 1000,
        not_after_ms: validity.not_after.timestamp() * 1000,
        serial: hex::encode(cert.raw_serial()),
        names,
        issuer: cert.issuer().to_string(),
        fingerprint: hex::encode(Sha256::digest(der.as_ref())),
    })
}

/// The certificate every new handshake gets; swapped whole when a newer one arrives.
#[derive(Debug)]
pub struct CertSlot {
    current: RwLock<Arc<Loaded>>,
    /// The local CA's certificate for names the current one does not cover (localhost,
    /// and connections by IP address, which send no name): the CLI on the machine can
    /// reach an ACME or user-certified admin listener at 127.0.0.1.
    local: Option<Loaded>,
}

impl CertSlot {
    /// A slot serving `loaded`.
    pub fn new(loaded: Loaded) -> Self {
        Self {
            current: RwLock::new(Arc::new(loaded)),
            local: None,
        }
    }

    /// Serves `local` to clients asking for a name it covers and `current` does not, and
    /// to clients that name no host (IP addresses) unless `current` has IP addresses.
    pub fn with_local(mut self, local: Loaded) -> Self {
        self.local = Some(local);
        self
    }

    fn pick(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let current = self.current();
        if let Some(local) = &self.local {
            let use_local = match server_name {
                None => !current
                    .info
                    .names
                    .iter()
                    .any(|name| name.parse::<std::net::IpAddr>().is_ok()),
                Some(name) => !current.info.covers(name) && local.info.covers(name),
            };
            if use_local {
                return local.key.clone();
            }
        }
        current.key.clone()
    }

    /// Serves `loaded` from the next handshake on.
    pub fn replace(&self, loaded: Loaded) {
        *self
            .current
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(loaded);
    }

    /// What is served now.
    pub fn current(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pick(hello.server_name()))
    }
}

/// rustls settings of both HTTPS listeners: TLS 1.2 and 1.3 with rustls's default
/// (safe) suites, HTTP/2 preferred over HTTP/1.1 by ALPN, the slot's certificate.
pub fn server_config(slot: Arc<CertSlot>) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_cert_resolver(slot);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(
            names
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_pair_parses_with_its_names_and_validity() {
        let (cert, key) = pair(&["example.test", "127.0.0.1", "::1", "*.apps.example.test"]);
        let loaded = parse(cert.as_bytes(), key.as_bytes(), "test").unwrap();
        assert_eq!(
            loaded.info.names,
            ["example.test", "127.0.0.1", "::1", "*.apps.example.test"]
        );
        assert!(loaded.info.not_after_ms > loaded.info.not_before_ms);
        assert_eq!(loaded.info.fingerprint.len(), 64);
        assert!(loaded.info.covers("EXAMPLE.test"));
        assert!(loaded.info.covers("a.apps.example.test"));
        assert!(!loaded.info.covers("a.b.apps.example.test"));
        assert!(!loaded.info.covers("other.test"));
    }

    #[test]
    fn local_names_and_bare_addresses_get_the_local_certificate() {
        let (public_cert, public_key) = pair(&["example.test"]);
        let (local_cert, local_key) = pair(&["localhost", "127.0.0.1"]);
        let public = parse(public_cert.as_bytes(), public_key.as_bytes(), "public").unwrap();
        let local = parse(local_cert.as_bytes(), local_key.as_bytes(), "local").unwrap();
        let (public_fp, local_fp) = (
            public.info.fingerprint.clone(),
            local.info.fingerprint.clone(),
        );
        let slot = CertSlot::new(public).with_local(local);
        let served = |name: Option<&str>| {
            let key = slot.pick(name);
            hex::encode(Sha256::digest(key.cert[0].as_ref()))
        };
        assert_eq!(served(Some("example.test")), public_fp);
        assert_eq!(served(Some("other.test")), public_fp);
        assert_eq!(served(Some("localhost")), local_fp);
        assert_eq!(served(None), local_fp);
        // A public certificate with an address keeps bare-address clients.
        let (with_ip, with_ip_key) = pair(&["example.test", "203.0.113.7"]);
        let slot = CertSlot::new(parse(with_ip.as_bytes(), with_ip_key.as_bytes(), "p").unwrap())
            .with_local(parse(local_cert.as_bytes(), local_key.as_bytes(), "l").unwrap());
        assert_ne!(
            hex::encode(Sha256::digest(slot.pick(None).cert[0].as_ref())),
            local_fp
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_with_the_reason() {
        let (cert, _) = pair(&["a.test"]);
        let (_, other_key) = pair(&["a.test"]);
        let error = parse(cert.as_bytes(), other_key.as_bytes(), "cert.pem")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("cert.pem") && error.contains("does not match"),
            "{error}"
        );
        let error = parse(b"not pem", other_key.as_bytes(), "cert.pem")
            .unwrap_err()
            .to_string();
        assert!(error.contains("no CERTIFICATE"), "{error}");
        let error = parse(cert.as_bytes(), b"", "cert.pem")
            .unwrap_err()
            .to_string();
        assert!(error.contains("private key"), "{error}");
    }
}
