//! Starting and stopping a real `gureum up`, running the CLI, deploying fixtures.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::OnceCell;

/// A running `gureum up`.
pub struct Server {
    child: Child,
    /// Base URL of the public listener.
    pub public_url: String,
    /// Base URL of the admin listener.
    pub admin_url: String,
    /// The admin token.
    pub token: String,
    /// The data directory.
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on a fresh temp data dir with SQLite.
    pub fn start() -> Server {
        Server::start_with(&["--no-examples"])
    }

    /// Starts a server on `data_dir` (kept by the caller), optionally on another store.
    pub fn start_in(data_dir: &Path, store: Option<&str>) -> Server {
        let mut args = vec!["--no-examples"];
        if let Some(store) = store {
            args.extend(["--store", store]);
        }
        Server::start_in_with(data_dir, &args)
    }

    /// Starts a server on a fresh temp data dir with SQLite and exactly these extra
    /// `gureum up` arguments: unlike [`Server::start`], without `--no-examples` unless
    /// `args` has it.
    pub fn start_with(args: &[&str]) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let mut server = Server::start_in_with(&data_dir, args);
        server._temp = Some(temp);
        server
    }

    /// Starts a server on `data_dir` (kept by the caller) with these extra `gureum up`
    /// arguments (ports, grace period and stdin handling are set here).
    pub fn start_in_with(data_dir: &Path, args: &[&str]) -> Server {
        Server::spawn(data_dir, args, None)
    }

    /// Starts a server on a fresh temp dir whose whole debug log (`RUST_LOG=debug`) goes
    /// to `log`, for tests that assert on what the server logs.
    pub fn start_logged(log: &Path) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let mut server = Server::spawn(&data_dir, &["--no-examples"], Some(log));
        server._temp = Some(temp);
        server
    }

    /// Starts a server on `data_dir` with these arguments, its log (`RUST_LOG=info`) going
    /// to `log` (appended, so one file can hold several runs).
    pub fn start_in_logged(data_dir: &Path, args: &[&str], log: &Path) -> Server {
        Server::spawn_with_level(data_dir, args, Some(log), "info")
    }

    fn spawn(data_dir: &Path, args: &[&str], log: Option<&Path>) -> Server {
        Server::spawn_with_level(data_dir, args, log, "debug")
    }

    /// Starts a server as the system user `user` (through `setpriv`; the caller is root)
    /// on `data_dir`, which that user must be able to create.
    pub fn start_as(user: &str, data_dir: &Path, args: &[&str]) -> Server {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid", user, "--regid", user, "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_gureum"));
        Server::spawn_command(command, data_dir, args, None, "debug")
    }

    /// Starts a server on a fresh temp data dir with these arguments and its open-file
    /// limit (soft and hard) set to `limit` through `prlimit`, as a small machine or a
    /// service manager would have it.
    pub fn start_with_open_file_limit(limit: u64, args: &[&str]) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={limit}:{limit}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_gureum"));
        let mut server =
            Server::spawn_command(command, &temp.path().join("data"), args, None, "warn");
        server._temp = Some(temp);
        server
    }

    /// Starts a server on `data_dir` with these arguments and extra environment.
    pub fn start_in_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gureum"));
        command.envs(env.iter().copied());
        Server::spawn_command(command, data_dir, args, None, "warn")
    }

    fn spawn_with_level(data_dir: &Path, args: &[&str], log: Option<&Path>, level: &str) -> Server {
        Server::spawn_command(
            Command::new(env!("CARGO_BIN_EXE_gureum")),
            data_dir,
            args,
            log,
            level,
        )
    }

    fn spawn_command(
        mut command: Command,
        data_dir: &Path,
        args: &[&str],
        log: Option<&Path>,
        level: &str,
    ) -> Server {
        command
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--shutdown-grace", "5s", "--exit-on-stdin-close"])
            .args(args)
            .stdin(Stdio::piped())
            .env("RUST_LOG", if log.is_some() { level } else { "warn" })
            .stdout(Stdio::piped())
            .stderr(match log {
                Some(path) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .expect("log file"),
                ),
                None => Stdio::inherit(),
            });
        let mut child = command.spawn().expect("spawning gureum up");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut public_url = None;
        let mut admin_url = None;
        while public_url.is_none() || admin_url.is_none() {
            let line = receiver
                .recv_timeout(Duration::from_secs(60))
                .expect("gureum up did not print its URLs within 60 s");
            if let Some(rest) = line.trim().strip_prefix("functions:") {
                public_url = rest.split_whitespace().next().map(str::to_string);
            }
            if let Some(rest) = line.trim().strip_prefix("control API:") {
                admin_url = rest
                    .split_whitespace()
                    .next()
                    .map(|url| url.trim_end_matches("/api/v1").to_string());
            }
        }
        // A relative data directory is the server's, under its working directory.
        let data_dir = match command.get_current_dir() {
            Some(cwd) => cwd.join(data_dir),
            None => data_dir.to_path_buf(),
        };
        let token = std::fs::read_to_string(data_dir.join("admin.token"))
            .expect("admin token")
            .trim()
            .to_string();
        Server {
            child,
            public_url: public_url.unwrap(),
            admin_url: admin_url.unwrap(),
            token,
            data_dir,
            _temp: None,
        }
    }

    /// Starts a server in `cwd` with the data directory given relative to it
    /// (`./.gureum`, as `gureum up` does by default).
    pub fn start_in_cwd(cwd: &Path) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gureum"));
        command.current_dir(cwd);
        Server::spawn_command(
            command,
            Path::new(".gureum"),
            &["--no-examples"],
            None,
            "warn",
        )
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status code.
    pub fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        None
    }

    /// Kills the server outright (SIGKILL: no graceful shutdown, nothing flushed).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The local CA of a `--tls self-signed` server (its listeners speak HTTPS).
    pub fn ca_path(&self) -> Option<PathBuf> {
        let path = self.data_dir.join("tls").join("ca.pem");
        (self.admin_url.starts_with("https://") && path.exists()).then_some(path)
    }

    /// The CLI with this server's `--url`, `--token` (and `--ca-cert` for HTTPS) and then
    /// `args`, not yet run (for commands that keep running, such as `logs -f`).
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gureum"));
        command.args(["--url", &self.admin_url, "--token", &self.token]);
        if let Some(ca) = self.ca_path() {
            command.arg("--ca-cert").arg(ca);
        }
        command.args(args);
        command
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        let output = self
            .cli_command(args)
            .output()
            .expect("running the gureum CLI");
        CliOutput {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// A control API client.
    pub fn client(&self) -> gureum_client::Client {
        match self.ca_path() {
            Some(ca) => gureum_client::Client::with_ca(
                &self.admin_url,
                &self.token,
                &std::fs::read(ca).expect("the local CA"),
            )
            .expect("a client trusting the local CA"),
            None => gureum_client::Client::new(&self.admin_url, &self.token),
        }
    }

    /// An HTTP client for this server's listeners (trusting its local CA, if any).
    pub fn http(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(ca) = self.ca_path() {
            let pem = std::fs::read(ca).expect("the local CA");
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        builder.build().unwrap()
    }

    /// GET on the public listener.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http()
            .get(format!("{}{path}", self.public_url))
            .send()
            .await
            .expect("public request")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gureum up` arguments for a test server without examples, its process functions in
/// their sandbox or (`sandboxed = false`) run with `--unsandboxed-processes`.
pub fn isolation_args(sandboxed: bool) -> &'static [&'static str] {
    if sandboxed {
        &["--no-examples"]
    } else {
        &["--no-examples", "--unsandboxed-processes"]
    }
}

/// What a CLI run printed.
#[derive(Debug)]
pub struct CliOutput {
    /// Whether it exited 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// One HTTP client for the tests.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The server shared by tests that only need isolation by name.
pub async fn shared() -> &'static Server {
    static SERVER: OnceCell<Server> = OnceCell::const_new();
    SERVER.get_or_init(|| async { Server::start() }).await
}

/// Path of a guest built by `cargo xtask build-fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = target.join("fixtures").join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask build-fixtures` first",
        path.display()
    );
    path
}

/// Writes a function directory: `gureum.toml` (with `extra` appended) and the testbed
/// component as `fn.wasm`. Returns the directory (kept alive by the returned guard).
pub fn function_dir(name: &str, extra: &str) -> tempfile::TempDir {
    function_dir_with(name, extra, &fixture("testbed"))
}

/// Like [`function_dir`] with another artifact.
pub fn function_dir_with(name: &str, extra: &str, artifact: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(artifact, dir.path().join("fn.wasm")).unwrap();
    std::fs::write(
        dir.path().join("gureum.toml"),
        format!("name = \"{name}\"\nruntime = \"wasm\"\nartifact = \"fn.wasm\"\n{extra}\n"),
    )
    .unwrap();
    dir
}

/// Deploys with the CLI and asserts success.
pub fn deploy(server: &Server, name: &str, extra: &str) -> tempfile::TempDir {
    let dir = function_dir(name, extra);
    let output = server.cli(&["deploy", dir.path().to_str().unwrap()]);
    assert!(output.success, "deploy {name} failed: {output:?}");
    dir
}

/// A rustls client config (ring) trusting exactly the certificates in the `roots` PEM
/// bundles, offering HTTP/2 and HTTP/1.1, with session resumption off: a resumed TLS 1.3
/// session sends no certificate, so a test could not see a new one.
pub fn tls_client_config(roots: &[&[u8]]) -> rustls::ClientConfig {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        for root in CertificateDer::pem_slice_iter(pem) {
            store.add(root.expect("a PEM certificate")).unwrap();
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}
