//! `--tls self-signed`: a local certificate authority made on first start and a server
//! certificate it signs, kept in `DATA_DIR/tls/` and reused on restart. Trusting the CA
//! once (`gureum tls ca`) makes every later certificate trusted too; the server
//! certificate is remade when the names asked for change or it nears its end. Files are
//! written through a temporary file and a rename, keys with mode 0600. Also the
//! placeholder `--tls acme` serves until its first certificate ([`placeholder`]).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::TlsError;
use crate::certs::{self, Loaded};

/// Directory inside the data directory holding the local CA and the certificate.
pub const TLS_DIR: &str = "tls";
/// The CA certificate (public: this is what a browser or curl is told to trust).
pub const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca.key";
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

/// How long the CA is valid.
const CA_DAYS: i64 = 3650;
/// How long a server certificate is valid (browsers accept up to 398 days).
const CERT_DAYS: i64 = 397;
/// A server certificate with less left than this is remade at start.
const RENEW_DAYS: i64 = 30;

/// Names every local certificate covers, besides the `--domain`s.
pub const LOCAL_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// The local CA's certificate path in `data_dir`.
pub fn ca_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TLS_DIR).join(CA_FILE)
}

/// Loads the server certificate for `names` from `data_dir`, making the CA and the
/// certificate when missing, expiring or not covering every name. Returns it with
/// whether it was (re)made.
pub fn ensure(data_dir: &Path, names: &[String]) -> Result<(Loaded, bool), TlsError> {
    let dir = data_dir.join(TLS_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| TlsError::Io {
        what: format!("creating {}", dir.display()),
        source,
    })?;
    let (ca_pem, ca_key, ca_made) = ensure_ca(&dir)?;
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    if !ca_made
        && let (Ok(cert), Ok(key)) = (std::fs::read(&cert_path), std::fs::read(&key_path))
        && let Ok(loaded) = certs::parse(&cert, &key, &cert_path.display().to_string())
        && names.iter().all(|name| loaded.info.covers(name))
        && loaded.info.not_after_ms - gureum_model::now_ms() > RENEW_DAYS * 86_400_000
    {
        return Ok((loaded, false));
    }
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(|error| {
        generation(format!(
            "reading the local CA {}: {error}",
            dir.join(CA_FILE).display()
        ))
    })?;
    let (key, mut params) = server_params(
        names,
        names.first().map_or("", String::as_str),
        Duration::days(1),
        Duration::days(CERT_DAYS),
    )?;
    params
        .distinguished_name
        .push(DnType::OrganizationName, "gureum");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|error| generation(error.to_string()))?;
    // The chain sent to clients: the certificate, then the CA (harmless for clients that
    // trust the CA, and lets tools show the whole path).
    let chain = format!("{}{}", cert.pem(), ca_pem);
    write_file(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_file(&cert_path, chain.as_bytes(), false)?;
    let loaded = certs::parse(
        chain.as_bytes(),
        key.serialize_pem().as_bytes(),
        &cert_path.display().to_string(),
    )?;
    Ok((loaded, true))
}

/// The CA's PEM and key, made when missing. Returns whether it was made.
fn ensure_ca(dir: &Path) -> Result<(String, KeyPair, bool), TlsError> {
    let ca_path = dir.join(CA_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    if let (Ok(pem), Ok(key)) = (
        std::fs::read_to_string(&ca_path),
        std::fs::read_to_string(&key_path),
    ) {
        let key = KeyPair::from_pem(&key).map_err(|error| {
            generation(format!(
                "the local CA key {} does not parse ({error}); delete {} to make a new CA",
                key_path.display(),
                dir.display()
            ))
        })?;
        return Ok((pem, key, false));
    }
    let key = KeyPair::generate().map_err(|error| generation(error.to_string()))?;
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default();
    subject.push(
        DnType::CommonName,
        if host.is_empty() {
            "gureum local CA".to_string()
        } else {
            format!("gureum local CA ({host})")
        },
    );
    subject.push(DnType::OrganizationName, "gureum");
    params.distinguished_name = subject;
    // It signs server certificates only: no intermediate below it.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial());
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(CA_DAYS);
    let cert = params
        .self_signed(&key)
        .map_err(|error| generation(error.to_string()))?;
    write_file(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_file(&ca_path, cert.pem().as_bytes(), false)?;
    Ok((cert.pem(), key, true))
}

/// A short-lived certificate for `names` signed by itself: what an HTTPS listener serves
/// until its real certificate (ACME) arrives, so it can start at once.
pub fn placeholder(names: &[String]) -> Result<Loaded, TlsError> {
    let (key, params) = server_params(
        names,
        "gureum placeholder (waiting for the ACME certificate)",
        Duration::hours(1),
        Duration::days(7),
    )?;
    let cert = params
        .self_signed(&key)
        .map_err(|error| generation(error.to_string()))?;
    certs::parse(
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
        "placeholder",
    )
}

/// A new key and the parameters of a certificate for `names` with this common name, a
/// random serial, valid from `backdate` ago for `lifetime`.
fn server_params(
    names: &[String],
    common_name: &str,
    backdate: Duration,
    lifetime: Duration,
) -> Result<(KeyPair, CertificateParams), TlsError> {
    let key = KeyPair::generate().map_err(|error| generation(error.to_string()))?;
    let mut params =
        CertificateParams::new(names.to_vec()).map_err(|error| generation(error.to_string()))?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.serial_number = Some(random_serial());
    let now = OffsetDateTime::now_utc();
    params.not_before = now - backdate;
    params.not_after = now + lifetime;
    Ok((key, params))
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive and without a leading zero byte, as X.509 wants.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn generation(reason: String) -> TlsError {
    TlsError::Generate(reason)
}

/// Writes via a temporary file and a rename, so a crash never leaves half a key; keys
/// are created readable by the owner only.
fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt as _;
    // Named after the file (ca.key.tmp, ca.pem.tmp): never shared between two files,
    // and made anew so a leftover cannot lend its mode to a key.
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let io = |source| TlsError::Io {
        what: format!("writing {}", path.display()),
        source,
    };
    let _ = std::fs::remove_file(&temporary);
    let mode = if private { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(io)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls_pki_types::pem::PemObject as _;
    use std::os::unix::fs::PermissionsExt as _;

    fn names(extra: &[&str]) -> Vec<String> {
        LOCAL_NAMES
            .iter()
            .chain(extra)
            .map(|name| name.to_string())
            .collect()
    }

    #[test]
    fn the_ca_and_certificate_are_made_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, made) = ensure(dir.path(), &names(&[])).unwrap();
        assert!(made);
        for name in LOCAL_NAMES {
            assert!(first.info.covers(name), "{name}");
        }
        for file in ["ca.key", "key.pem"] {
            let meta = std::fs::metadata(dir.path().join(TLS_DIR).join(file)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
        }
        let meta = std::fs::metadata(ca_path(dir.path())).unwrap();
        assert_eq!(meta.permissions().mode() & 0o400, 0o400, "ca.pem readable");
        assert!(!dir.path().join(TLS_DIR).join("ca.key.tmp").exists());
        let ca = std::fs::read_to_string(ca_path(dir.path())).unwrap();
        let (again, made) = ensure(dir.path(), &names(&[])).unwrap();
        assert!(!made);
        assert_eq!(again.info.fingerprint, first.info.fingerprint);

        // A new name: a new certificate from the same CA.
        let (wider, made) = ensure(dir.path(), &names(&["dev.example.test"])).unwrap();
        assert!(made);
        assert!(wider.info.covers("dev.example.test"));
        assert_ne!(wider.info.fingerprint, first.info.fingerprint);
        assert_eq!(wider.info.issuer, first.info.issuer);
        assert_eq!(std::fs::read_to_string(ca_path(dir.path())).unwrap(), ca);
    }

    #[test]
    fn the_certificate_verifies_against_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let (loaded, _) = ensure(dir.path(), &names(&[])).unwrap();
        let ca = std::fs::read(ca_path(dir.path())).unwrap();
        let ca = rustls_pki_types::CertificateDer::from_pem_slice(&ca).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            certs::provider(),
        )
        .build()
        .unwrap();
        let chain = &loaded.key.cert;
        for name in ["localhost", "127.0.0.1"] {
            verifier
                .verify_server_cert(
                    &chain[0],
                    &chain[1..],
                    &rustls_pki_types::ServerName::try_from(name).unwrap(),
                    &[],
                    rustls_pki_types::UnixTime::now(),
                )
                .unwrap_or_else(|error| panic!("{name}: {error}"));
        }
    }
}
