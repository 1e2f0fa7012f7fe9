//! HTTPS end to end with real TLS clients (rustls through reqwest, OpenSSL through curl)
//! and a real ACME server (Debian's `pebble`, with `pebble-challtestsrv` as its DNS so
//! the test domain resolves to 127.0.0.1): the local CA, HTTP/2, restart reuse, the
//! CLI's trust, `wss://` chat; a user's certificate reloaded on change with HSTS and the
//! HTTP→HTTPS redirect; ACME issuance, sharing between two nodes on PostgreSQL, renewal
//! with requests served throughout, and a broken directory leaving the old certificate.
//!
//! The rustls clients open a new connection with a full handshake for every request:
//! a resumed TLS 1.3 session shows the old certificate. `cargo xtask ci` installs
//! pebble and pebble-challtestsrv (the DNS answers 127.0.0.1 for every name).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use sha2::{Digest as _, Sha256};

use crate::Server;

const BIN: &str = env!("CARGO_BIN_EXE_gureum");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// A client trusting exactly `roots` (PEM bundles), resolving `names` to addresses,
/// opening a new connection with a full handshake for every request (no session
/// resumption, which would skip the certificate) and reporting the peer certificate.
fn client_trusting(roots: &[&[u8]], names: &[(&str, SocketAddr)]) -> reqwest::Client {
    let tls = crate::tls_client_config(roots);
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    for (name, address) in names {
        builder = builder.resolve(name, *address);
    }
    builder.build().unwrap()
}

/// SHA-256 (hex) of the leaf certificate served to a new connection for `url`.
async fn served(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| format!("{error:?}"))?;
    if response.status() != 200 {
        return Err(format!("{url}: status {}", response.status()));
    }
    let info = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info");
    Ok(hex::encode(Sha256::digest(
        info.peer_certificate().expect("a peer certificate"),
    )))
}

fn fingerprint_of_pem(pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    hex::encode(Sha256::digest(der.as_ref()))
}

fn run(command: &mut Command) -> (bool, String, String) {
    let output = command.output().expect("running a command");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_https_speaks_http2_reuses_its_certificate_and_carries_wss_chat() {
    let temp = tempfile::tempdir().unwrap();
    // Named like the default, so the CLI run from `temp` finds token and CA by itself.
    let data = temp.path().join(".gureum");
    let args = [
        "--no-examples",
        "--tls",
        "self-signed",
        "--domain",
        "gureum.test",
    ];
    let server = Server::start_in_with(&data, &args);
    assert!(
        server.public_url.starts_with("https://"),
        "{}",
        server.public_url
    );
    assert!(
        server.admin_url.starts_with("https://"),
        "{}",
        server.admin_url
    );
    let ca_path = data.join("tls").join("ca.pem");
    let ca = std::fs::read(&ca_path).unwrap();
    let port = port_of(&server.public_url);
    let client = client_trusting(&[&ca], &[("gureum.test", ([127, 0, 0, 1], port).into())]);

    // HTTP/2 by ALPN, for every name the certificate covers.
    for url in [
        format!("https://localhost:{port}/healthz"),
        format!("https://127.0.0.1:{port}/healthz"),
        format!("https://gureum.test:{port}/healthz"),
    ] {
        let response = client
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|error| panic!("{url}: {error:?}"));
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.version(), reqwest::Version::HTTP_2, "{url}");
    }
    let healthz = format!("https://localhost:{port}/healthz");
    let first = served(&client, &healthz).await.unwrap();
    // OpenSSL's view (curl): trusts the CA file, negotiates HTTP/2.
    let (ok, version, stderr) = run(Command::new("curl").args([
        "-sS",
        "--cacert",
        ca_path.to_str().unwrap(),
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &healthz,
    ]));
    assert!(ok && version == "2", "curl: {version} {stderr}");
    // Verification is real: without the CA the certificate is refused.
    let error = client_trusting(&[], &[])
        .get(&healthz)
        .send()
        .await
        .unwrap_err();
    assert!(format!("{error:?}").contains("UnknownIssuer"), "{error:?}");
    // Plain HTTP on the HTTPS port gets a readable answer naming the URL to use.
    let plain = crate::http()
        .get(format!("http://127.0.0.1:{port}/fn/x?y=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    assert_eq!(plain.headers()["x-gureum-error"], "https_required");
    let text = plain.text().await.unwrap();
    assert!(
        text.contains(&format!("use https://127.0.0.1:{port}/fn/x?y=1")),
        "{text}"
    );

    // The CLI beside the data directory finds the token and trusts the local CA.
    let (ok, stdout, stderr) = run(Command::new(BIN).current_dir(temp.path()).args([
        "--url",
        &server.admin_url,
        "ls",
        "--json",
    ]));
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "[]");
    // http:// to the HTTPS admin port: the error says what to use.
    let (ok, _, stderr) = run(Command::new(BIN).current_dir(temp.path()).args([
        "--url",
        &server.admin_url.replacen("https://", "http://", 1),
        "ls",
    ]));
    assert!(!ok && stderr.contains("this port speaks HTTPS"), "{stderr}");
    // Elsewhere (no local CA) the certificate is refused with the flag to pass.
    let elsewhere = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(Command::new(BIN).current_dir(elsewhere.path()).args([
        "--url",
        &server.admin_url,
        "--token",
        &server.token,
        "ls",
    ]));
    assert!(!ok && stderr.contains("--ca-cert"), "{stderr}");
    let (ok, _, stderr) = run(Command::new(BIN).current_dir(elsewhere.path()).args([
        "--url",
        &server.admin_url,
        "--token",
        &server.token,
        "--ca-cert",
        ca_path.to_str().unwrap(),
        "ls",
    ]));
    assert!(ok, "{stderr}");
    // `gureum tls ca` prints exactly the CA.
    let (ok, printed, stderr) =
        run(Command::new(BIN).args(["tls", "ca", "--data-dir", data.to_str().unwrap()]));
    assert!(ok, "{stderr}");
    assert_eq!(printed.as_bytes(), ca.as_slice());
    let (ok, _, stderr) = run(Command::new(BIN).args([
        "tls",
        "ca",
        "--data-dir",
        elsewhere.path().to_str().unwrap(),
    ]));
    assert!(!ok && stderr.contains("--tls self-signed"), "{stderr}");

    // wss:// chat through the example (its broadcasts go back through GUREUM_API, which
    // the function reaches without trusting the local CA).
    crate::websocket::two_clients_chat(&server, "chat").await;

    // A restart reuses the CA and the certificate.
    assert_eq!(server.stop(), Some(0));
    let server = Server::start_in_with(&data, &args);
    let port = port_of(&server.public_url);
    let again = served(&client, &format!("https://localhost:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(again, first, "the certificate changed across a restart");
    assert_eq!(std::fs::read(&ca_path).unwrap(), ca);
}

/// A CA "of the user's" and certificates for localhost it signs.
struct UserCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl UserCa {
    fn new(name: &str) -> UserCa {
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        UserCa { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// (certificate PEM, key PEM) for `names`.
    fn sign(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(
            names
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_certificate_is_reloaded_when_its_files_change() {
    let temp = tempfile::tempdir().unwrap();
    let ca = UserCa::new("user CA");
    // Without 127.0.0.1 in it: connections by address get the local CA's certificate.
    let (cert_a, key_a) = ca.sign(&["localhost"]);
    let cert_path = temp.path().join("cert.pem");
    let key_path = temp.path().join("key.pem");
    std::fs::write(&cert_path, &cert_a).unwrap();
    std::fs::write(&key_path, &key_a).unwrap();
    let http_port = free_port();
    let http_listen = format!("127.0.0.1:{http_port}");
    let server = Server::start_in_with(
        &temp.path().join("data"),
        &[
            "--no-examples",
            "--tls",
            "cert",
            "--cert",
            cert_path.to_str().unwrap(),
            "--key",
            key_path.to_str().unwrap(),
            "--cert-reload-interval",
            "200ms",
            "--http-listen",
            &http_listen,
            "--http-redirect",
            "--hsts",
            "1day",
        ],
    );
    let port = port_of(&server.public_url);
    let client = client_trusting(&[ca.pem().as_bytes()], &[]);
    let healthz = format!("https://localhost:{port}/healthz");
    assert_eq!(
        served(&client, &healthz).await.unwrap(),
        fingerprint_of_pem(&cert_a)
    );

    // HSTS on both HTTPS listeners; the plain listener redirects to HTTPS.
    let response = client.get(&healthz).send().await.unwrap();
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=86400"
    );
    let admin = client
        .get(format!(
            "{}/api/v1/functions",
            server.admin_url.replace("127.0.0.1", "localhost")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 401);
    assert_eq!(
        admin.headers()["strict-transport-security"],
        "max-age=86400"
    );
    let redirect = client
        .post(format!("http://localhost:{http_port}/fn/x?y=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(
        redirect.headers()["location"],
        format!("https://localhost:{port}/fn/x?y=1").as_str()
    );
    assert!(!redirect.headers().contains_key("strict-transport-security"));
    // By IP address (no name sent) the admin listener shows the local CA's certificate:
    // the CLI on the machine needs no copy of the user's chain.
    let listed = server.cli(&["ls", "--json"]);
    assert!(listed.success, "{listed:?}");

    // New files (key first, as a renewal tool might write them): served once they load.
    let (cert_b, key_b) = ca.sign(&["localhost"]);
    std::fs::write(&key_path, &key_b).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Meanwhile (new key, old certificate) the old pair keeps serving.
    assert_eq!(
        served(&client, &healthz).await.unwrap(),
        fingerprint_of_pem(&cert_a)
    );
    std::fs::write(&cert_path, &cert_b).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = served(&client, &healthz).await.unwrap();
        if now == fingerprint_of_pem(&cert_b) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken file is ignored: the last good certificate keeps serving.
    std::fs::write(&cert_path, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        served(&client, &healthz).await.unwrap(),
        fingerprint_of_pem(&cert_b)
    );
    drop(server);

    // Bad flags fail at start with what to do.
    for (args, expected) in [
        (
            vec!["--tls", "cert", "--cert", "cert.pem"],
            "--tls cert needs --cert FILE",
        ),
        (
            vec![
                "--tls",
                "cert",
                "--cert",
                "missing.pem",
                "--key",
                "missing.key",
            ],
            "missing.pem",
        ),
        (vec!["--tls", "acme"], "add --http-listen"),
        (
            vec!["--tls", "acme", "--http-listen", "127.0.0.1:0"],
            "add --domain NAME",
        ),
        (vec!["--hsts", "1d"], "only applies to HTTPS"),
        (
            vec!["--tls", "self-signed", "--domain", "bad name"],
            "is not a host name",
        ),
    ] {
        let (ok, _, stderr) = run(Command::new(BIN)
            .current_dir(temp.path())
            .args(["up", "--no-examples", "--listen", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0", "--data-dir", "bad-flags"])
            .args(&args));
        assert!(!ok && stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// Debian's pebble on loopback, with pebble-challtestsrv answering every name with
/// 127.0.0.1, validating HTTP-01 on `http_port`.
struct Pebble {
    children: Vec<Child>,
    directory: String,
    management: String,
    /// The CA of pebble's own HTTPS listener (made here): what `--acme-ca-bundle` trusts.
    listener_ca: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Pebble {
    fn start(http_port: u16, validity_s: u64) -> Pebble {
        assert!(
            Path::new("/usr/bin/pebble").exists(),
            "/usr/bin/pebble is missing: `cargo xtask ci` installs it (apt-get install pebble)"
        );
        let dir = tempfile::tempdir().unwrap();
        let ca = UserCa::new("pebble listener CA");
        let (cert, key) = ca.sign(&["127.0.0.1", "localhost"]);
        let listener_ca = dir.path().join("listener-ca.pem");
        std::fs::write(&listener_ca, ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let (wfe, management, dns) = (free_port(), free_port(), free_port());
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{wfe}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": validity_s,
        }});
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = |name: &str| Stdio::from(std::fs::File::create(dir.path().join(name)).unwrap());
        let challtestsrv = Command::new("/usr/bin/pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .stdout(log("dns.log"))
            .stderr(log("dns.err"))
            .spawn()
            .expect("starting pebble-challtestsrv");
        let pebble = Command::new("/usr/bin/pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            // No random validation delays, no deliberate bad-nonce rejections, and a
            // fresh validation for every order (renewals included).
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("starting pebble");
        Pebble {
            children: vec![challtestsrv, pebble],
            directory: format!("https://127.0.0.1:{wfe}/dir"),
            management: format!("https://127.0.0.1:{management}"),
            listener_ca,
            dir,
        }
    }

    fn client(&self) -> reqwest::Client {
        client_trusting(&[&std::fs::read(&self.listener_ca).unwrap()], &[])
    }

    /// Waits for the directory, then returns pebble's issuing root (made at its start).
    async fn root(&self) -> Vec<u8> {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(&self.directory).send().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "pebble did not start: {}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let root = client
            .get(format!("{}/roots/0", self.management))
            .send()
            .await
            .unwrap();
        assert_eq!(root.status(), 200);
        root.bytes().await.unwrap().to_vec()
    }

    fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let tail = |text: String| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        };
        format!(
            "pebble:\n{}\n{}",
            tail(read("pebble.log")),
            tail(read("pebble.err"))
        )
    }
}

/// Waits until `url` serves a certificate that `client` trusts and that is not `old`.
async fn wait_for_new_certificate(
    client: &reqwest::Client,
    url: &str,
    old: Option<&str>,
    within: Duration,
    context: &dyn Fn() -> String,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let last = match served(client, url).await {
            Ok(fingerprint) if Some(fingerprint.as_str()) != old => return fingerprint,
            Ok(_) => "still the old certificate".to_string(),
            Err(error) => error,
        };
        assert!(
            Instant::now() < deadline,
            "{url}: no new trusted certificate within {within:?} (last: {last})\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An ACME "directory" that answers everything with a 500.
async fn broken_directory() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 16\r\nconnection: close\r\n\r\ndirectory broken")
                    .await;
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_certificates_are_issued_shared_renewed_and_kept_when_the_directory_breaks() {
    const DOMAIN: &str = "acme.gureum.test";
    let store = gureum_store::testing::fresh_postgres_url().await;
    let http_a = free_port();
    // Short lives so that renewal (at two thirds) comes within the test.
    let pebble = Pebble::start(http_a, 60);
    let pebble_root = pebble.root().await;
    let temp = tempfile::tempdir().unwrap();
    let listener_ca = pebble.listener_ca.to_str().unwrap().to_string();
    let node_args = |http_port: u16, directory: &str| -> Vec<String> {
        [
            "--no-examples",
            "--store",
            &store,
            "--tls",
            "acme",
            "--domain",
            DOMAIN,
            "--acme-email",
            "ops@gureum.test",
            "--acme-directory",
            directory,
            "--acme-ca-bundle",
            &listener_ca,
            "--acme-retry",
            "1s",
            "--http-listen",
            &format!("127.0.0.1:{http_port}"),
        ]
        .map(str::to_string)
        .to_vec()
    };
    let start = |name: &str, http_port: u16, directory: &str| {
        let args = node_args(http_port, directory);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start_in_logged(
            &temp.path().join(name),
            &args,
            &temp.path().join(format!("{name}.log")),
        )
    };
    let log = |name: &str| {
        std::fs::read_to_string(temp.path().join(format!("{name}.log"))).unwrap_or_default()
    };

    // Node A orders the certificate; pebble validates HTTP-01 on A's plain listener.
    let node_a = start("a", http_a, &pebble.directory);
    let port_a = port_of(&node_a.public_url);
    let url_a = format!("https://{DOMAIN}:{port_a}/healthz");
    let trusting =
        |port: u16| client_trusting(&[&pebble_root], &[(DOMAIN, ([127, 0, 0, 1], port).into())]);
    let context = || format!("{}\nnode a:\n{}", pebble.logs(), log("a"));
    let first = wait_for_new_certificate(
        &trusting(port_a),
        &url_a,
        None,
        Duration::from_secs(60),
        &context,
    )
    .await;
    assert!(
        log("a").contains("new ACME certificate issued"),
        "{}",
        log("a")
    );

    // Node B (same store) serves the same certificate at once, without ordering.
    let node_b = start("b", free_port(), &pebble.directory);
    let port_b = port_of(&node_b.public_url);
    let url_b = format!("https://{DOMAIN}:{port_b}/healthz");
    assert_eq!(served(&trusting(port_b), &url_b).await.unwrap(), first);
    assert!(
        !log("b").contains("new ACME certificate issued"),
        "{}",
        log("b")
    );
    // The CLI reaches the admin listener by IP address with the local CA.
    let listed = node_b.cli(&["ls", "--json"]);
    assert!(listed.success, "{listed:?}");
    // A challenge another node offered (written to the store) is answered by node A's
    // plain listener, as the CA may ask any node; unknown or malformed tokens are not.
    let shared_store = gureum_store::Store::open(&store).await.unwrap();
    shared_store
        .put_setting(
            "tls.acme.challenge.offered-by-b_1",
            "offered-by-b_1.thumbprint",
        )
        .await
        .unwrap();
    let challenge = |token: &str| {
        crate::http()
            .get(format!(
                "http://127.0.0.1:{http_a}/.well-known/acme-challenge/{token}"
            ))
            .send()
    };
    let answer = challenge("offered-by-b_1").await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "offered-by-b_1.thumbprint");
    assert_eq!(challenge("unknown").await.unwrap().status(), 404);
    assert_eq!(
        challenge("tls.acme.certificate").await.unwrap().status(),
        404
    );
    shared_store.close().await;

    // Renewal (two thirds of 60 s) with new connections to both nodes all along.
    let stop = Arc::new(AtomicBool::new(false));
    let (served_ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut traffic = Vec::new();
    for (port, url) in [(port_a, url_a.clone()), (port_b, url_b.clone())] {
        let (stop, served_ok, failed, client) = (
            stop.clone(),
            served_ok.clone(),
            failed.clone(),
            trusting(port),
        );
        traffic.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match served(&client, &url).await {
                    Ok(_) => served_ok.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        errors.push(error);
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            errors
        }));
    }
    let renewed = wait_for_new_certificate(
        &trusting(port_a),
        &url_a,
        Some(&first),
        Duration::from_secs(60),
        &context,
    )
    .await;
    // B takes the renewed certificate from the store (one node orders per renewal).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let on_b = served(&trusting(port_b), &url_b).await.unwrap();
        if on_b == renewed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node b never served the renewed certificate\n{}",
            log("b")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for task in traffic {
        errors.extend(task.await.unwrap());
    }
    assert!(
        served_ok.load(Ordering::Relaxed) > 50,
        "too few requests: {}",
        served_ok.load(Ordering::Relaxed)
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during renewal: {errors:?}"
    );

    // A broken directory: node A restarts pointed at it; the stored certificate keeps
    // serving, the failure is logged with its reason and retried.
    drop(node_b);
    assert_eq!(node_a.stop(), Some(0));
    let broken = broken_directory().await;
    let broken_url = format!("http://{broken}/dir");
    let node_a = start("a", http_a, &broken_url);
    let port_a = port_of(&node_a.public_url);
    let url_a = format!("https://{DOMAIN}:{port_a}/healthz");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log("a").contains("ACME renewal failed; still serving the certificate valid until") {
        assert!(
            Instant::now() < deadline,
            "no renewal failure logged:\n{}",
            log("a")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let failure = log("a")
        .lines()
        .find(|line| line.contains("ACME renewal failed"))
        .unwrap()
        .to_string();
    assert!(failure.contains(&broken_url), "{failure}");
    // Trusted through pebble's root: the stored certificate, not a placeholder.
    served(&trusting(port_a), &url_a)
        .await
        .unwrap_or_else(|error| panic!("after the failure: {error}\n{}", log("a")));
}
