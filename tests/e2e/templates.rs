//! Developer experience end to end: `gureum new` for each template with its real toolchain
//! → `gureum build` / `deploy --build` → the function answers; `gureum dev` starting its
//! own gureum, redeploying on save and keeping the last good version through a compile
//! error; `gureum schema`, completions, `--json`, `--quiet` and `NO_COLOR`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Server, http, shared};

/// The gureum binary.
fn gureum() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gureum"))
}

/// Runs `command`, asserting success; returns stdout.
fn ok(command: &mut Command) -> String {
    let output = command.output().expect("running a command");
    assert!(
        output.status.success(),
        "{command:?} failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `gureum new TEMPLATE NAME --dir PARENT/NAME --json`, checked; returns the project dir.
fn new_project(parent: &Path, template: &str, name: &str) -> PathBuf {
    let dir = parent.join(name);
    let out = ok(gureum()
        .args(["new", template, name, "--json", "--dir"])
        .arg(&dir));
    let created: serde_json::Value = serde_json::from_str(&out).expect("--json output parses");
    assert_eq!(created["template"], template);
    let files: Vec<&str> = created["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for expected in ["gureum.toml", "README.md", "gureum.schema.json"] {
        assert!(
            files.contains(&expected),
            "{template}: no {expected} in {files:?}"
        );
    }
    let manifest = std::fs::read_to_string(dir.join("gureum.toml")).unwrap();
    assert!(manifest.starts_with("#:schema ./gureum.schema.json"));
    assert!(manifest.contains(&format!("name = \"{name}\"")));
    dir
}

/// GETs `url` until it answers 200 with `body`, or panics after `limit`.
async fn wait_for_body(url: &str, body: &str, limit: Duration, what: &str) -> Duration {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < limit {
        if let Ok(response) = http().get(url).send().await {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if status == 200 && text == body {
                return started.elapsed();
            }
            last = format!("{status} {text:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {url} did not answer {body:?} within {limit:?}; last: {last}");
}

/// `TARGET/tools`, where `cargo xtask build-fixtures` installs componentize-py, jco and
/// componentize-js.
fn tools_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("tools")
}

/// `PATH` with the templates' tools in front; `tool` (relative to the tools dir) must be
/// there.
fn path_with_tools(tool: &str) -> std::ffi::OsString {
    let tools = tools_dir();
    assert!(
        tools.join(tool).exists(),
        "{} is missing: run `cargo xtask build-fixtures` first (it needs pip for python-wasm, node and npm for js-wasm)",
        tools.join(tool).display()
    );
    let current = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(
        [tools.join("bin"), tools.join("node/node_modules/.bin")]
            .into_iter()
            .chain(std::env::split_paths(&current)),
    )
    .unwrap()
}

/// A `gureum new` project built and deployed with `deploy --build` answers as the template
/// promises, and its own unit test passes where that is cheap (Python, JavaScript).
async fn check_template(server: &Server, template: &str, name: &str) {
    let temp = tempfile::tempdir().unwrap();
    let dir = new_project(temp.path(), template, name);
    let mut deploy = server.cli_command(&["deploy", "--build", "--json"]);
    deploy.arg(&dir).env("CARGO_TERM_PROGRESS_WHEN", "never");
    match template {
        "python-wasm" => {
            deploy.env("PATH", path_with_tools("bin/componentize-py"));
        }
        "js-wasm" => {
            deploy.env("PATH", path_with_tools("node/node_modules/.bin/jco"));
        }
        _ => {}
    }
    if template == "js-wasm" {
        // The same pinned packages `npm install` would fetch, installed once by xtask.
        std::os::unix::fs::symlink(
            tools_dir().join("node/node_modules"),
            dir.join("node_modules"),
        )
        .unwrap();
    }
    let deployed = ok(&mut deploy);
    let deployed: serde_json::Value =
        serde_json::from_str(&deployed).expect("deploy --json prints only JSON on stdout");
    assert_eq!(deployed["name"], name);
    let url = format!("{}/fn/{name}/?name=Ada", server.public_url);
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{template}");
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8",
        "{template}"
    );
    assert_eq!(
        response.text().await.unwrap(),
        "Hello, Ada!\n",
        "{template}"
    );
    let plain = http()
        .get(format!("{}/{name}", server.public_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        plain.text().await.unwrap(),
        "Hello, world!\n",
        "{template} route"
    );
    if template.starts_with("python") {
        ok(Command::new("python3")
            .args(["-m", "unittest", "-q"])
            .current_dir(&dir));
    }
    if template == "js-wasm" {
        ok(Command::new("node").arg("--test").current_dir(&dir));
    }
}

#[tokio::test]
async fn python_wasm_template_builds_deploys_and_answers() {
    check_template(shared().await, "python-wasm", "tpl-python-wasm").await;
}

#[tokio::test]
async fn js_wasm_template_builds_deploys_and_answers() {
    check_template(shared().await, "js-wasm", "tpl-js-wasm").await;
}

#[tokio::test]
async fn rust_lambda_template_builds_deploys_and_answers() {
    check_template(shared().await, "rust-lambda", "tpl-rust-lambda").await;
}

#[tokio::test]
async fn python_lambda_template_builds_deploys_and_answers() {
    check_template(shared().await, "python-lambda", "tpl-python-lambda").await;
}

/// Two distinct free loopback ports (both held while choosing, then released).
fn free_ports() -> (u16, u16) {
    let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let second = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (
        first.local_addr().unwrap().port(),
        second.local_addr().unwrap().port(),
    )
}

/// A running `gureum dev` whose stderr (status) and stdout (the function's logs) are
/// collected.
struct Dev {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

/// Collects `pipe`'s lines into a shared string.
fn collect(pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    text
}

impl Dev {
    fn start(dir: &Path, admin_port: u16, public_port: u16) -> Dev {
        Dev::start_with(
            dir,
            &[
                "--url",
                &format!("http://127.0.0.1:{admin_port}"),
                "dev",
                "--listen",
                &format!("127.0.0.1:{public_port}"),
            ],
        )
    }

    /// `gureum ARGS PATH`, run in `dir`.
    fn start_with(dir: &Path, args: &[&str]) -> Dev {
        let mut child = gureum()
            .args(args)
            .arg(dir)
            .current_dir(dir)
            .env("CARGO_TERM_PROGRESS_WHEN", "never")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting gureum dev");
        let stderr = collect(child.stderr.take().unwrap());
        let stdout = collect(child.stdout.take().unwrap());
        Dev {
            child,
            stderr,
            stdout,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits until stderr, after byte `from`, contains `text`.
    async fn wait_for_output(&self, from: usize, text: &str, limit: Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.stderr().get(from..).is_some_and(|s| s.contains(text)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "gureum dev did not print {text:?} within {limit:?}:\n{}",
            self.stderr()
        );
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The acceptance path of the README: `gureum new rust-wasm` → `gureum dev` (which starts
/// its own gureum) → edit → the new version serves; a compile error is shown and the old
/// version keeps serving; fixing it serves again; stopping dev stops its gureum.
#[tokio::test]
async fn rust_wasm_template_with_gureum_dev_redeploys_on_save() {
    let temp = tempfile::tempdir().unwrap();
    let dir = new_project(temp.path(), "rust-wasm", "hi");
    assert!(dir.join("vendor/gureum-sdk/Cargo.toml").is_file());
    let (admin_port, public_port) = free_ports();
    let dev = Dev::start(&dir, admin_port, public_port);
    let url = format!("http://127.0.0.1:{public_port}/fn/hi/?name=Ada");
    // The first build compiles the SDK and its dependencies for wasm32-wasip2.
    wait_for_body(
        &url,
        "Hello, Ada!\n",
        Duration::from_secs(600),
        "first deploy",
    )
    .await;
    assert!(
        dev.stderr().contains("started a local gureum"),
        "{}",
        dev.stderr()
    );
    assert!(
        dir.join(".gureum/admin.token").is_file(),
        "the local gureum keeps its data in the project"
    );

    // Edit → a new version serves.
    let main = dir.join("src/main.rs");
    let source = std::fs::read_to_string(&main).unwrap();
    // The salutation comes from [env] GREETING = "Hello"; the punctuation from the code.
    let format = "\"{salutation}, {}!\\n\"";
    assert!(
        source.contains(format),
        "the template formats the greeting with {format}"
    );
    let handler = "async fn handle(request: Request<Body>) -> Result<Response<Body>, Error> {";
    assert!(source.contains(handler));
    // Each edit also logs a line per request, which gureum dev streams to its stdout.
    let edit = |with: &str| {
        source
            .replace(format, &format!("\"{{salutation}}{with}, {{}}!\\n\""))
            .replace(
                handler,
                &format!("{handler}\n    println!(\"dev-log{with}\");"),
            )
    };
    let mark = dev.stderr().len();
    let edited_at = Instant::now();
    std::fs::write(&main, edit(" there")).unwrap();
    wait_for_body(
        &url,
        "Hello there, Ada!\n",
        Duration::from_secs(180),
        "after an edit",
    )
    .await;
    let edit_to_live = edited_at.elapsed();
    eprintln!("gureum dev: edit → new version serving in {edit_to_live:.2?}");
    let started = Instant::now();
    // `gureum logs -f`'s line: time, invocation id, version, stream, message.
    while !dev
        .stdout()
        .lines()
        .any(|line| line.contains(" v2 stdout ") && line.ends_with(" dev-log there"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the function's log line was not streamed: {}",
            dev.stdout()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dev.wait_for_output(mark, "version 2 live", Duration::from_secs(10))
        .await;

    // A compile error: rustc's message is shown, version 2 keeps serving.
    let mark = dev.stderr().len();
    std::fs::write(&main, edit(" there") + "\nfn broken( {\n").unwrap();
    dev.wait_for_output(mark, "version 2 keeps serving", Duration::from_secs(180))
        .await;
    let shown = dev.stderr()[mark..].to_string();
    assert!(
        shown.contains("unclosed delimiter") && shown.contains("src/main.rs"),
        "the compiler's message with its location: {shown}"
    );
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "Hello there, Ada!\n");

    // Fixed → serves again, as version 3.
    std::fs::write(&main, edit(" again")).unwrap();
    wait_for_body(
        &url,
        "Hello again, Ada!\n",
        Duration::from_secs(180),
        "after the fix",
    )
    .await;
    let versions = ok(gureum()
        .args(["--url", &format!("http://127.0.0.1:{admin_port}")])
        .args([
            "--token",
            std::fs::read_to_string(dir.join(".gureum/admin.token"))
                .unwrap()
                .trim(),
        ])
        .args(["versions", "hi", "--json"]));
    let versions: serde_json::Value = serde_json::from_str(&versions).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 3, "{versions}");

    // Ctrl-C (SIGINT to gureum dev alone: the local gureum has its own process group)
    // stops dev and, gracefully, the gureum it started.
    let mut dev = dev;
    let _ = Command::new("kill")
        .args(["-INT", &dev.child.id().to_string()])
        .status();
    let status = dev.child.wait().unwrap();
    assert!(status.success(), "gureum dev exits 0 on Ctrl-C: {status}");
    assert!(
        dev.stderr().contains("stopping the local gureum"),
        "{}",
        dev.stderr()
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", admin_port)).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the local gureum outlived gureum dev"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// With a gureum already running, `gureum dev` deploys into it, finding the admin token in
/// the `.gureum` of a parent directory (a project made where `gureum up` runs).
#[tokio::test]
async fn dev_deploys_into_a_running_gureum_with_a_parents_token() {
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_in(&temp.path().join(".gureum"), None);
    let site = temp.path().join("site");
    std::fs::create_dir_all(site.join("public")).unwrap();
    std::fs::write(site.join("page.html"), "<p>one</p>").unwrap();
    std::fs::write(
        site.join("gureum.toml"),
        "name = \"dev-site\"\n[static]\ndir = \"public\"\n[build]\ncommand = \"cp page.html public/index.html\"\nwatch = [\"page.html\"]\n",
    )
    .unwrap();
    // A stale token nearer the project (an earlier local gureum's) is tried and skipped.
    std::fs::create_dir_all(site.join(".gureum")).unwrap();
    std::fs::write(site.join(".gureum/admin.token"), "stale-token").unwrap();
    let dev = Dev::start_with(&site, &["--url", &server.admin_url, "dev"]);
    let url = format!("{}/fn/dev-site/", server.public_url);
    wait_for_body(&url, "<p>one</p>", Duration::from_secs(60), "first deploy").await;
    assert!(
        dev.stderr()
            .contains(&format!("using the gureum at {}", server.admin_url))
    );
    let parent_token = temp.path().join(".gureum/admin.token");
    assert!(
        dev.stderr()
            .contains(&format!("admin token from {}", parent_token.display())),
        "{}",
        dev.stderr()
    );
    std::fs::write(site.join("page.html"), "<p>two</p>").unwrap();
    wait_for_body(&url, "<p>two</p>", Duration::from_secs(30), "after an edit").await;
    // Editors that save by writing a new file and renaming it over the old one (vim,
    // JetBrains) keep triggering.
    for text in ["<p>three</p>", "<p>four</p>"] {
        std::fs::write(site.join(".page.html.swp"), text).unwrap();
        std::fs::rename(site.join(".page.html.swp"), site.join("page.html")).unwrap();
        wait_for_body(&url, text, Duration::from_secs(30), "after a rename-save").await;
    }
    // An edit outside `watch` does not redeploy.
    std::fs::write(site.join("notes.txt"), "x").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let versions = server.cli(&["versions", "dev-site", "--json"]);
    let versions: serde_json::Value = serde_json::from_str(&versions.stdout).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 4, "{versions}");
}

#[test]
fn new_lists_templates_and_names_bad_input() {
    let list: serde_json::Value =
        serde_json::from_str(&ok(gureum().args(["new", "--list", "--json"]))).unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["template"].as_str().unwrap())
        .collect();
    for id in [
        "rust-wasm",
        "rust-lambda",
        "python-lambda",
        "python-wasm",
        "js-wasm",
    ] {
        assert!(ids.contains(&id), "{ids:?}");
    }
    let temp = tempfile::tempdir().unwrap();
    let fail = |args: &[&str]| {
        let output = gureum()
            .args(args)
            .current_dir(temp.path())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let err = fail(&["new", "go-wasm", "x"]);
    assert!(
        err.contains("unknown template `go-wasm`") && err.contains("rust-wasm"),
        "{err}"
    );
    let err = fail(&["new", "rust-wasm", "Bad_Name"]);
    assert!(
        err.contains("invalid name `Bad_Name`") && err.contains("a-z, 0-9"),
        "{err}"
    );
    std::fs::create_dir(temp.path().join("taken")).unwrap();
    std::fs::write(temp.path().join("taken/file"), "x").unwrap();
    let err = fail(&["new", "python-lambda", "taken"]);
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert!(!temp.path().join("x").exists() && !temp.path().join("Bad_Name").exists());
}

#[test]
fn schema_and_completions_print_what_editors_and_shells_read() {
    let schema: serde_json::Value =
        serde_json::from_str(&ok(gureum().arg("schema"))).expect("gureum schema is JSON");
    assert_eq!(schema["title"], "gureum.toml");
    assert!(schema["properties"]["build"].is_object());
    assert_eq!(schema["required"], serde_json::json!(["name"]));
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(gureum().args(["completions", shell]));
        assert!(
            script.contains("gureum") && script.contains("rollback") && script.contains("dev"),
            "{shell} completions"
        );
    }
    let err = gureum().args(["completions", "tcsh"]).output().unwrap();
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("bash"));
    // Every command's --help shows examples.
    let help = ok(gureum().arg("--help"));
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|command| *command != "help")
        .collect();
    assert!(commands.len() >= 20, "{commands:?}");
    for command in commands {
        let help = ok(gureum().args([command, "--help"]));
        assert!(
            help.contains("Examples:"),
            "`gureum {command} --help` has no examples"
        );
    }
}

/// Writes a project whose `[build] command` is `command` (a static site, so deploys need
/// no toolchain).
fn scripted_project(name: &str, command: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("public")).unwrap();
    std::fs::write(dir.path().join("public/index.html"), "<p>hi</p>").unwrap();
    std::fs::write(
        dir.path().join("gureum.toml"),
        format!("name = \"{name}\"\n[static]\ndir = \"public\"\n[build]\ncommand = {command:?}\n"),
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn build_failures_are_shown_and_output_respects_quiet_json_and_no_color() {
    let server = shared().await;
    let failing = scripted_project(
        "dx-fails",
        "echo compiling; echo 'app.c:3: boom' >&2; exit 3",
    );
    let output = gureum().arg("build").arg(failing.path()).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("compiling\napp.c:3: boom\n"),
        "in order: {stderr}"
    );
    assert!(
        stderr.contains("building dx-fails failed (exit status: 3)"),
        "{stderr}"
    );
    // deploy --build does not deploy after a failed build.
    let output = server.cli(&["deploy", "--build", failing.path().to_str().unwrap()]);
    assert!(!output.success);
    assert!(
        !server.cli(&["versions", "dx-fails"]).success,
        "nothing was deployed"
    );

    let good = scripted_project("dx-quiet", "echo built > public/built.txt");
    let output = server.cli(&[
        "--quiet",
        "deploy",
        "--build",
        good.path().to_str().unwrap(),
    ]);
    assert!(output.success, "{output:?}");
    assert_eq!(output.stderr, "", "--quiet prints nothing on stderr");
    assert!(output.stdout.contains("deployed dx-quiet version 1"));
    let built = server.get("/fn/dx-quiet/built.txt").await;
    assert_eq!(
        built.text().await.unwrap(),
        "built\n",
        "the build ran before the deploy"
    );

    // On a terminal (a pty from util-linux `script`): styles, unless NO_COLOR is set.
    let in_pty = |no_color: bool| {
        let command = format!(
            "{} build {}",
            env!("CARGO_BIN_EXE_gureum"),
            good.path().display()
        );
        let mut script = Command::new("script");
        script.args(["-qec", &command, "/dev/null"]);
        if no_color {
            script.env("NO_COLOR", "1");
        } else {
            script.env_remove("NO_COLOR");
        }
        ok(&mut script)
    };
    let colored = in_pty(false);
    assert!(
        colored.contains("\u{1b}[1mdx-quiet\u{1b}[0m in"),
        "the name in bold: {colored:?}"
    );
    assert!(
        colored.contains("\u{1b}["),
        "a terminal gets styles: {colored:?}"
    );
    let plain = in_pty(true);
    assert!(plain.contains("built dx-quiet"), "{plain:?}");
    assert!(
        !plain.contains("\u{1b}[3"),
        "NO_COLOR: no colors: {plain:?}"
    );
    // Without a terminal: no escape sequences at all.
    let piped = gureum().arg("build").arg(good.path()).output().unwrap();
    assert!(!String::from_utf8_lossy(&piped.stderr).contains('\u{1b}'));
}
