//! WebSocket benchmark: N connections held by one `gureum up` (release build under
//! `cargo bench`), all members of one channel, then broadcasts through a function.
//! Prints a table: resident memory per connection, and per-member delivery latency of a
//! broadcast (p50/p99/max), against the goals (10,000 connections under 1 GB; p99 under
//! 50 ms at 10,000 members). No benchmark peer (`benches/peers`, `wasmtime serve`)
//! speaks WebSocket, so the numbers are absolute; the clients run on the same 2 cores as
//! the server.
//!
//! `cargo bench --bench websocket [-- --connections 10000 --broadcasts 20]`; without
//! `--bench` (as `cargo test --all-targets` runs it) it is a smoke run with 200
//! connections that checks every member gets every broadcast.
//! Needs `target/fixtures/testbed.wasm` (`cargo xtask build-fixtures`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const WAIT: Duration = Duration::from_secs(60);

struct Args {
    connections: usize,
    broadcasts: usize,
    measuring: bool,
}

fn args() -> Args {
    let all: Vec<String> = std::env::args().collect();
    let measuring = all.iter().any(|arg| arg == "--bench");
    let value = |name: &str| {
        all.iter()
            .position(|arg| arg == name)
            .and_then(|index| all.get(index + 1))
            .and_then(|value| value.parse().ok())
    };
    Args {
        connections: value("--connections").unwrap_or(if measuring { 10_000 } else { 200 }),
        broadcasts: value("--broadcasts").unwrap_or(if measuring { 20 } else { 3 }),
        measuring,
    }
}

struct Server {
    child: Child,
    public: String,
    admin: String,
    data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(connections: usize) -> Server {
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gureum"))
        .arg("up")
        .arg("--data-dir")
        .arg(data.path())
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--no-examples", "--exit-on-stdin-close"])
        .args(["--ws-max-connections", &(connections + 10).to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting gureum up");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut public, mut admin) = (None, None);
    while let Some(Ok(line)) = stdout.next() {
        if let Some(rest) = line.trim().strip_prefix("functions:") {
            public = rest.split_whitespace().next().map(str::to_string);
        }
        if let Some(rest) = line.trim().strip_prefix("control API:") {
            admin = rest.split_whitespace().next().map(str::to_string);
        }
        if public.is_some() && admin.is_some() {
            break;
        }
    }
    // Keep reading: a closed pipe would make the server's next line fail.
    std::thread::spawn(move || stdout.for_each(drop));
    Server {
        child,
        public: public.expect("the public URL"),
        admin: admin
            .expect("the admin URL")
            .trim_end_matches("/api/v1")
            .to_string(),
        data,
    }
}

fn deploy_testbed(server: &Server) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let testbed = target.join("fixtures").join("testbed.wasm");
    assert!(
        testbed.exists(),
        "{} is missing: run `cargo xtask build-fixtures`",
        testbed.display()
    );
    let dir = server.data.path().join("room-function");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&testbed, dir.join("testbed.wasm")).unwrap();
    std::fs::write(
        dir.join("gureum.toml"),
        "name = \"room\"\nartifact = \"testbed.wasm\"\nmax_instances = 64\n",
    )
    .unwrap();
    let token = std::fs::read_to_string(server.data.path().join("admin.token")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_gureum"))
        .args(["--url", &server.admin, "--token", token.trim(), "deploy"])
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "deploying the testbed failed");
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("the connection stayed open")
            .expect("no WebSocket error");
        if let Message::Text(text) = message {
            return text.to_string();
        }
    }
}

async fn join(url: String) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connecting");
    ws.send(Message::text("join room")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "200", "joining the channel");
    ws
}

/// CPU time (user + system) the process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| fields.get(index).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the name.
    let ticks_per_second = 100.0;
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / ticks_per_second
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args = args();
    let server = start(args.connections);
    deploy_testbed(&server);
    let pid = server.child.id();
    let url = format!("{}/ws/room", server.public.replacen("http://", "ws://", 1));
    // One connection first: loads the code, so the baseline includes the function.
    let mut first = join(url.clone()).await;
    let baseline = rss_bytes(pid);

    let started = Instant::now();
    let mut members = vec![];
    while members.len() + 1 < args.connections {
        let batch = (args.connections - 1 - members.len()).min(100);
        let joins = (0..batch).map(|_| tokio::spawn(join(url.clone())));
        for joined in futures::future::join_all(joins).await {
            members.push(joined.expect("a joining task"));
        }
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    let held = rss_bytes(pid);

    // Each member reads in its own task and reports when the broadcast arrived.
    let (arrivals, mut arrived) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let mut readers = Vec::new();
    for mut ws in members {
        let arrivals = arrivals.clone();
        readers.push(tokio::spawn(async move {
            for round in 0..usize::MAX {
                let text = tokio::time::timeout(WAIT, ws.next()).await;
                match text {
                    Ok(Some(Ok(Message::Text(_)))) => {
                        if arrivals.send((round, Instant::now())).is_err() {
                            break;
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            ws
        }));
    }
    drop(arrivals);
    let receivers = args.connections - 1;
    let mut latencies = Vec::with_capacity(receivers * args.broadcasts);
    let mut last_member = Vec::with_capacity(args.broadcasts);
    let cpu_before = cpu_seconds(pid);
    for round in 0..args.broadcasts {
        let sent = Instant::now();
        first
            .send(Message::text(format!("broadcast room round {round}")))
            .await
            .unwrap();
        let mut got = 0;
        let mut slowest = 0.0f64;
        while got < receivers {
            let (_, at) = tokio::time::timeout(WAIT, arrived.recv())
                .await
                .expect("every member got the broadcast in time")
                .expect("readers running");
            let ms = at.duration_since(sent).as_secs_f64() * 1000.0;
            latencies.push(ms);
            slowest = slowest.max(ms);
            got += 1;
        }
        let answer = next_text(&mut first).await;
        assert_eq!(answer, format!("{{\"delivered\":{receivers}}}"));
        last_member.push(slowest);
    }
    let server_cpu = cpu_seconds(pid) - cpu_before;
    latencies.sort_by(f64::total_cmp);
    last_member.sort_by(f64::total_cmp);
    let per_connection = held.saturating_sub(baseline) as f64 / (args.connections - 1) as f64;

    println!(
        "\nWebSocket benchmark: {} connections in one channel, {} broadcasts ({} build)\n",
        args.connections,
        args.broadcasts,
        if args.measuring { "release" } else { "smoke" }
    );
    println!("| measure | value | goal |\n|---|---:|---|");
    println!(
        "| resident memory holding {} connections | {:.0} MiB | < 1024 MiB at 10,000 |",
        args.connections,
        held as f64 / 1048576.0
    );
    println!(
        "| memory per connection (over the 1-connection baseline of {:.0} MiB) | {:.1} KiB | |",
        baseline as f64 / 1048576.0,
        per_connection / 1024.0
    );
    println!(
        "| connect + join rate | {:.0} /s | |",
        (args.connections - 1) as f64 / connect_seconds
    );
    println!(
        "| broadcast delivery per member, p50 | {:.1} ms | |",
        percentile(&latencies, 0.5)
    );
    println!(
        "| broadcast delivery per member, p99 | {:.1} ms | < 50 ms at 10,000 members |",
        percentile(&latencies, 0.99)
    );
    println!(
        "| broadcast until the last member, median of rounds | {:.1} ms | |",
        percentile(&last_member, 0.5)
    );
    println!(
        "| broadcast until the last member, worst round | {:.1} ms | |",
        last_member.last().copied().unwrap_or(0.0)
    );
    println!(
        "| server CPU per delivered message (user + system) | {:.1} µs | |",
        server_cpu * 1e6 / (receivers * args.broadcasts) as f64
    );
    for reader in readers {
        reader.abort();
    }
}
