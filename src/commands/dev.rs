//! `gureum dev`: the inner loop. Starts a local gureum when none answers, builds and
//! deploys the project, prints its URL, streams its logs, and on every save (debounced)
//! rebuilds and redeploys. A failed build prints the compiler's output and leaves the
//! last good version serving: a deploy only happens after a successful build.
//!
//! The server: it probes `--url`'s `/healthz`; when a gureum answers, it uses the first
//! `.gureum/admin.token` that gureum accepts (the working directory's, then the project's
//! and its parents'), unless `--token` gives one. When nothing answers at a loopback
//! `--url`, it spawns `gureum up --data-dir PROJECT/.gureum --exit-on-stdin-close` in its
//! own process group: Ctrl-C reaches `gureum dev`, which stops the server gracefully, and
//! the server dies with `gureum dev` through its stdin.
//!
//! What starts a round: a notify debouncer watches the `[build] watch` entries (by
//! default the whole project) and the manifest, directories recursively and files through
//! their parent directory (editors save by renaming a new file over the old one). Events
//! are filtered by path (never the artifact, an unlisted `[static] dir`, `target/`,
//! `node_modules/`, `.gureum/`, `.git/`, `__pycache__/`) and by a modification time later
//! than the round's start, since the build's own reads are events too. A round builds
//! (`build.rs`) and deploys only on success; logs are followed with `after=seq` across
//! reconnects.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use notify_debouncer_mini::notify::RecursiveMode;

use super::build::{self, Built};
use super::output::Output;

/// Directories never watched: build output, dependencies, the local gureum's data.
const IGNORED_DIRS: &[&str] = &["target", ".gureum", "node_modules", ".git", "__pycache__"];

/// Arguments of `gureum dev`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  gureum dev                      # in a project made by `gureum new`
  gureum dev services/api         # another directory
  gureum dev --listen 127.0.0.1:9000 --url http://127.0.0.1:9001

When nothing answers at --url (a loopback address), gureum dev starts `gureum up` with its
data in PROJECT/.gureum, public listener at --listen, and stops it on exit (Ctrl-C).")]
pub struct DevArgs {
    /// Directory containing gureum.toml, or the toml file itself.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Public address of the gureum this starts when none answers at --url.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Do not stream the function's logs.
    #[arg(long)]
    no_logs: bool,
    /// Quiet time after the last change before rebuilding.
    #[arg(long, default_value = "200ms")]
    debounce: humantime::Duration,
}

pub async fn run(
    url: &str,
    token: Option<String>,
    args: DevArgs,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let project = gureum_manifest::read_project(&args.path)?;
    let dir = std::path::absolute(&project.dir)
        .with_context(|| format!("resolving {}", project.dir.display()))?;
    // Every round re-reads this very file (it may be named other than gureum.toml).
    let manifest = dir.join(
        project
            .manifest_path
            .file_name()
            .unwrap_or(gureum_manifest::MANIFEST_FILE.as_ref()),
    );
    let name = project.spec.name.to_string();
    let (client, server) = connect_or_start(url, token, &dir, &args, output).await?;

    // Watch before the first build, so a save during it is not missed.
    let (events, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let mut debouncer = notify_debouncer_mini::new_debouncer(
        args.debounce.into(),
        move |result: notify_debouncer_mini::DebounceEventResult| {
            let _ = events.send(result);
        },
    )
    .context("starting the file watcher")?;
    let watch = Watch::new(&dir, &manifest, &project);
    watch.install(debouncer.watcher(), output);
    if project.build.is_none() {
        output.warn(
            "no [build] in gureum.toml: watching the whole project and redeploying as is (add [build] command and watch)",
        );
    }
    output.info(&format!("watching {} (Ctrl-C to stop)", watch.describe()));

    let mut live: Option<u32> = None;
    let mut logs: Option<tokio::task::JoinHandle<()>> = None;
    let mut trigger = Some(Instant::now());
    // When the latest round started: a file last written before it was in that build.
    let mut last_round = std::time::SystemTime::UNIX_EPOCH;
    // One Ctrl-C future for the whole session, also watched while a round runs.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    'session: loop {
        if let Some(changed_at) = trigger.take() {
            last_round = std::time::SystemTime::now();
            tokio::select! {
                _ = &mut ctrl_c => break 'session,
                () = cycle(&client, &manifest, output, changed_at, &mut live) => {}
            }
            if live.is_some() && logs.is_none() && !args.no_logs {
                logs = Some(tokio::spawn(stream_logs(
                    client.clone(),
                    name.clone(),
                    output,
                )));
            }
        }
        tokio::select! {
            _ = &mut ctrl_c => break,
            batch = changes.recv() => {
                let Some(batch) = batch else { break };
                let relevant = match batch {
                    Ok(events) => events.iter().any(|event| {
                        watch.covers(&event.path) && changed_since(&event.path, last_round)
                    }),
                    Err(error) => {
                        output.warn(&format!("file watcher: {error}"));
                        false
                    }
                };
                if relevant {
                    trigger = Some(Instant::now());
                    // Saves that land while this one builds are folded into the next round.
                    while let Ok(more) = changes.try_recv() {
                        drop(more);
                    }
                }
            }
        }
    }
    if let Some(logs) = logs {
        logs.abort();
    }
    if let Some(server) = server {
        output.info("stopping the local gureum");
        server.stop().await;
    }
    output.info("stopped");
    Ok(ExitCode::SUCCESS)
}

/// One round: build, then deploy if the build succeeded.
async fn cycle(
    client: &gureum_client::Client,
    manifest: &Path,
    output: Output,
    changed_at: Instant,
    live: &mut Option<u32>,
) {
    let keeps_serving = |live: &Option<u32>| match live {
        Some(version) => format!("version {version} keeps serving"),
        None => "nothing deployed yet".to_string(),
    };
    // Re-read every round: the manifest itself may have been edited.
    let project = match gureum_manifest::read_project(manifest) {
        Ok(project) => project,
        Err(error) => {
            output.error(&format!("{error}"));
            output.warn(&format!(
                "{}; fix gureum.toml and save",
                keeps_serving(live)
            ));
            return;
        }
    };
    let name = project.spec.name.to_string();
    match build::build(&project, output).await {
        Ok(Built::Ok | Built::Nothing) => {}
        Ok(Built::Failed { status, log }) => {
            build::report_failure(output, &name, &status, &log);
            output.warn(&format!("{}; fix the error and save", keeps_serving(live)));
            return;
        }
        Err(error) => {
            output.error(&format!("{error:#}"));
            return;
        }
    }
    match super::deploy::upload(client, &project.manifest_path, output).await {
        Ok(deployed) => {
            *live = Some(deployed.version);
            let mut line = format!(
                "{} version {} live at {}",
                output.bold(&name),
                deployed.version,
                output.bold(&deployed.url)
            );
            for route in &deployed.routes {
                line.push_str(&format!(", {route}"));
            }
            line.push_str(&output.dim(&format!(
                " ({:.1} s after the change)",
                changed_at.elapsed().as_secs_f64()
            )));
            // Not `success`: this line is the loop's heartbeat and is shown even when quiet.
            if !output.json {
                eprintln!("{line}");
            }
        }
        Err(error) => {
            output.error(&format!("{error:#}"));
            output.warn(&keeps_serving(live));
        }
    }
}

/// What `gureum dev` watches: `[build] watch` (default the whole project) and the
/// manifest, minus build output.
struct Watch {
    dir: PathBuf,
    /// Watched recursively.
    dirs: Vec<PathBuf>,
    /// Watched through their parent directory: editors that save by writing a new file
    /// and renaming it over the old one would otherwise leave a watch on a deleted file.
    files: Vec<PathBuf>,
    /// Never a reason to rebuild: the artifact and `[static] dir` (both often written by
    /// the build itself, which would otherwise loop).
    outputs: Vec<PathBuf>,
}

impl Watch {
    fn new(dir: &Path, manifest: &Path, project: &gureum_manifest::Project) -> Watch {
        let entries: Vec<PathBuf> = match &project.build {
            Some(build) => build.watch.iter().map(|path| dir.join(path)).collect(),
            None => vec![dir.to_path_buf()],
        };
        let (dirs, mut files): (Vec<PathBuf>, Vec<PathBuf>) =
            entries.into_iter().partition(|path| path.is_dir());
        files.push(manifest.to_path_buf());
        let mut outputs = Vec::new();
        // A static-only site has no artifact (an empty path would cover the project).
        if !project.spec.artifact.is_empty() {
            outputs.push(dir.join(&project.spec.artifact));
        }
        // `[static] dir` often is the build's output; it triggers only when listed in watch.
        if let Some(site) = &project.spec.static_site {
            let static_dir = dir.join(&site.dir);
            let listed = project
                .build
                .as_ref()
                .is_some_and(|build| build.watch.iter().any(|w| dir.join(w) == static_dir));
            if !listed {
                outputs.push(static_dir);
            }
        }
        Watch {
            dir: dir.to_path_buf(),
            dirs,
            files,
            outputs,
        }
    }

    fn install(&self, watcher: &mut dyn notify_debouncer_mini::notify::Watcher, output: Output) {
        let parents: std::collections::BTreeSet<&Path> =
            self.files.iter().filter_map(|file| file.parent()).collect();
        let plan = self
            .dirs
            .iter()
            .map(|dir| (dir.as_path(), RecursiveMode::Recursive))
            .chain(
                parents
                    .into_iter()
                    .map(|dir| (dir, RecursiveMode::NonRecursive)),
            );
        for (path, mode) in plan {
            if let Err(error) = watcher.watch(path, mode) {
                output.warn(&format!("not watching {}: {error}", path.display()));
            }
        }
    }

    /// Whether a change at `path` should rebuild.
    fn covers(&self, path: &Path) -> bool {
        let watched = self.files.iter().any(|file| file == path)
            || self.dirs.iter().any(|dir| path.starts_with(dir));
        watched
            && !self.outputs.iter().any(|output| path.starts_with(output))
            && !path
                .strip_prefix(&self.dir)
                .unwrap_or(path)
                .components()
                .any(|part| {
                    IGNORED_DIRS
                        .iter()
                        .any(|ignored| part.as_os_str() == *ignored)
                })
    }

    fn describe(&self) -> String {
        self.dirs
            .iter()
            .chain(&self.files)
            .map(|path| match path.strip_prefix(&self.dir) {
                Ok(relative) if relative.as_os_str().is_empty() => ".".to_string(),
                Ok(relative) => relative.display().to_string(),
                Err(_) => path.display().to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether `path` changed after `since`: the watcher reports more than writes (a build
/// reading its sources shows up too, and the debouncer does not say which kind), and may
/// report a save once more after the round that already built it; the modification time
/// tells. Strictly later, no slack: a slack would turn a build's own reads of a file saved
/// moments before into a rebuild loop. A path that is gone (deleted, renamed) counts as
/// changed.
fn changed_since(path: &Path, since: std::time::SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .map_or(true, |modified| modified > since)
}

/// Follows the function's logs until aborted, reconnecting after errors without repeating
/// lines.
async fn stream_logs(client: gureum_client::Client, name: String, output: Output) {
    let mut params = gureum_client::LogParams {
        since_ms: Some(gureum_model::now_ms()),
        ..Default::default()
    };
    loop {
        if let Ok(lines) = client.follow_logs(&name, &params).await {
            let mut lines = Box::pin(lines);
            while let Some(Ok(line)) = lines.next().await {
                params.after = Some(line.seq);
                // The same line as `gureum logs -f` (JSON with --json).
                let _ = super::logs::print_line(&line, output.json);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A gureum started by `gureum dev`; stopped when dropped (and, through its stdin, if this
/// process dies first).
struct LocalServer {
    child: tokio::process::Child,
}

impl LocalServer {
    /// Closes its stdin (`--exit-on-stdin-close`: a graceful shutdown) and waits for it,
    /// killing it only if it outlives the grace.
    async fn stop(mut self) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// A client for the gureum at `url`, starting one on loopback when nothing answers.
async fn connect_or_start(
    url: &str,
    token: Option<String>,
    dir: &Path,
    args: &DevArgs,
    output: Output,
) -> anyhow::Result<(gureum_client::Client, Option<LocalServer>)> {
    let data_dir = dir.join(super::up::DEFAULT_DATA_DIR);
    if healthy(url).await {
        let client = match token {
            Some(token) => gureum_client::Client::new(url, &token),
            // ./.gureum, then the project's and each parent's: a project made inside the
            // directory where `gureum up` (or `cargo xtask up`) runs finds its token.
            None => {
                let candidates: Vec<PathBuf> =
                    std::iter::once(PathBuf::from(super::up::DEFAULT_DATA_DIR))
                        .chain(dir.ancestors().map(|d| d.join(super::up::DEFAULT_DATA_DIR)))
                        .collect();
                accepted_token(url, &candidates, output).await?
            }
        };
        output.info(&format!("using the gureum at {url}"));
        return Ok((client, None));
    }
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--url {url} is not a URL"))?;
    // `gureum up` listens on an IP address: localhost is spelled out.
    let host = match parsed.host_str().unwrap_or_default() {
        "localhost" => "127.0.0.1",
        host => host,
    };
    let loopback = matches!(host, "127.0.0.1" | "[::1]" | "::1");
    if !loopback {
        bail!(
            "nothing answers at {url}; gureum dev starts a local gureum only for a loopback --url (e.g. http://127.0.0.1:8081)"
        );
    }
    let admin = format!("{host}:{}", parsed.port_or_known_default().unwrap_or(8081));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let log_path = data_dir.join("server.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let exe = std::env::current_exe().context("locating the gureum binary")?;
    let mut child = tokio::process::Command::new(exe)
        .arg("up")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--listen", &args.listen, "--admin-listen", &admin])
        .arg("--no-examples")
        .arg("--exit-on-stdin-close")
        // A developer's exported store URL must not make the "local" gureum a cluster node.
        .env_remove("GUREUM_STORE")
        // Its own process group: Ctrl-C in the terminal reaches gureum dev, which then
        // stops it gracefully, instead of killing it mid-round.
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting gureum up")?;
    let spinner = output.spinner("starting a local gureum");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait()? {
            spinner.fail();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!(
                "the local gureum exited ({status}) before answering at {url}:\n{}",
                log.trim_end()
            );
        }
        if healthy(url).await {
            break;
        }
        if Instant::now() > deadline {
            spinner.fail();
            bail!(
                "the local gureum did not answer at {url} within 30 s; see {}",
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    spinner.done(&format!(
        "started a local gureum: functions at http://{}, data in {} (log: {})",
        args.listen,
        data_dir.display(),
        log_path.display()
    ));
    let token = read_token(&data_dir)?;
    Ok((
        gureum_client::Client::new(url, &token),
        Some(LocalServer { child }),
    ))
}

/// Whether a gureum control API answers `/healthz` at `url`.
async fn healthy(url: &str) -> bool {
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .map(|client| client.get(format!("{}/healthz", url.trim_end_matches('/'))));
    match probe {
        Ok(request) => request
            .send()
            .await
            .is_ok_and(|response| response.status().is_success()),
        Err(_) => false,
    }
}

/// A client with the first admin token among `dirs` that the gureum at `url` accepts (a
/// stale token left by an earlier local gureum is skipped, not used until every deploy
/// fails with 401).
async fn accepted_token(
    url: &str,
    dirs: &[PathBuf],
    output: Output,
) -> anyhow::Result<gureum_client::Client> {
    let mut tried = Vec::new();
    for dir in dirs {
        let path = dir.join(super::up::TOKEN_FILE);
        let Ok(token) = std::fs::read_to_string(&path) else {
            continue;
        };
        let client = gureum_client::Client::new(url, token.trim());
        match client.list().await {
            Ok(_) => {
                output.info(&format!("admin token from {}", path.display()));
                return Ok(client);
            }
            Err(error) => tried.push(format!("{} ({error})", path.display())),
        }
    }
    if tried.is_empty() {
        bail!(
            "a gureum answers at {url} but no .gureum/admin.token was found here or in a parent directory; pass its admin token with --token or GUREUM_TOKEN"
        );
    }
    bail!(
        "a gureum answers at {url} but refused the admin tokens found: {}; pass its token with --token or GUREUM_TOKEN",
        tried.join("; ")
    )
}

/// The admin token of the gureum `gureum dev` started.
fn read_token(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join(super::up::TOKEN_FILE);
    std::fs::read_to_string(&path)
        .map(|token| token.trim().to_string())
        .with_context(|| format!("reading the local gureum's admin token {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_output_and_data_do_not_trigger_rebuilds() {
        let watch = Watch {
            dir: "/p".into(),
            dirs: vec!["/p".into()],
            files: vec!["/p/gureum.toml".into()],
            outputs: vec!["/p/build".into(), "/p/dist".into()],
        };
        assert!(watch.covers(Path::new("/p/src/main.rs")));
        assert!(watch.covers(Path::new("/p/gureum.toml")));
        assert!(!watch.covers(Path::new("/p/target/release/x")));
        assert!(!watch.covers(Path::new("/p/build/app.py")));
        assert!(!watch.covers(Path::new("/p/dist/index.html")));
        assert!(!watch.covers(Path::new("/p/.gureum/store.db")));
        assert!(!watch.covers(Path::new("/p/node_modules/a/b.js")));
        let files = Watch {
            dir: "/p".into(),
            dirs: vec!["/p/src".into()],
            files: vec!["/p/app.py".into(), "/p/gureum.toml".into()],
            outputs: vec![],
        };
        assert!(files.covers(Path::new("/p/app.py")));
        assert!(files.covers(Path::new("/p/src/lib.rs")));
        assert!(
            !files.covers(Path::new("/p/notes.txt")),
            "a sibling of a watched file"
        );
    }
}
