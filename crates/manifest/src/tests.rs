//! Data-driven tests: one row per rule with the field and message fragment it must produce,
//! good manifests, `outbound_allowed` matching and `load` on temporary directories.

use std::fs;

use gureum_model::{AsyncConfig, AuthPolicy, Limits, Runtime, Schedule, StaticSite};

use super::*;

const BASE: &str = "name = \"hello\"\nartifact = \"hello.wasm\"\n";

fn with_base(extra: &str) -> String {
    format!("{BASE}{extra}\n")
}

fn problems_of(text: &str) -> Vec<Problem> {
    match parse(text) {
        Err(ManifestError::Invalid(problems)) => problems,
        other => panic!("expected problems for\n{text}\ngot {other:?}"),
    }
}

#[test]
fn each_rule_reports_its_field_and_what_is_valid() {
    let lambda = "name = \"hello\"\nartifact = \"code\"\nruntime = \"lambda\"\n";
    let cases: Vec<(String, &str, &str)> = vec![
        // Unknown keys, at every level.
        (
            with_base("memroy_mb = 256"),
            "memroy_mb",
            "unknown key `memroy_mb`: did you mean `memory_mb`?",
        ),
        (
            with_base("memroy_mb = 256"),
            "memroy_mb",
            "valid keys: allowed_outbound_hosts, artifact, async, auth, build",
        ),
        (
            with_base("timeout = 30"),
            "timeout",
            "did you mean `timeout_ms`?",
        ),
        (
            with_base("[[schedules]]\ncron = \"@daily\""),
            "schedules",
            "did you mean `schedule`?",
        ),
        (
            with_base("[permissions]\ndata = [\"notes\"]"),
            "permissions.data[0]",
            "expected COLLECTION:LEVEL",
        ),
        (
            with_base("[permissions]\ndata = [\"notes:delete\"]"),
            "permissions.data[0]",
            "use read (get, list, stream), write",
        ),
        (
            with_base("[permissions]\ndata = [\"Notes:read\"]"),
            "permissions.data[0]",
            "is not a collection name",
        ),
        (
            with_base("[permissions]\ndata = \"*:admin\""),
            "permissions.data",
            "a list of COLLECTION:LEVEL grants",
        ),
        (
            with_base("[permissions]\ninvoke = [\"Mailer\"]"),
            "permissions.invoke[0]",
            "expected a function name",
        ),
        (
            with_base("[permissions]\nkv = [\"shared\"]"),
            "permissions.kv",
            "always its own",
        ),
        (
            with_base("[permissions]\ndatas = []"),
            "permissions.datas",
            "did you mean `data`?",
        ),
        (
            with_base("colour = 1"),
            "colour",
            "unknown key `colour` (valid keys:",
        ),
        (
            with_base("GREETING = \"hi\""),
            "GREETING",
            "environment variables go under [env]",
        ),
        (
            with_base("[[schedule]]\ncron = \"@daily\"\nbdy = \"x\""),
            "schedule[0].bdy",
            "did you mean `body`?",
        ),
        (
            with_base("[static]\ndir = \"public\"\nspaa = true"),
            "static.spaa",
            "did you mean `spa`?",
        ),
        (
            with_base("[static]\ndir = \"public\"\nmemory_mb = 5"),
            "static.memory_mb",
            "move it above",
        ),
        // name
        (
            "artifact = \"a.wasm\"".to_string(),
            "name",
            "missing required key",
        ),
        (
            "name = \"Hello\"\nartifact = \"a.wasm\"".to_string(),
            "name",
            "1 to 63 characters of a-z, 0-9 and '-'",
        ),
        (
            "name = \"-a\"\nartifact = \"a.wasm\"".to_string(),
            "name",
            "got \"-a\"",
        ),
        (
            "name = 5\nartifact = \"a.wasm\"".to_string(),
            "name",
            "got an integer 5",
        ),
        // runtime
        (
            with_base("runtime = \"node\""),
            "runtime",
            "expected \"wasm\" or \"lambda\", got \"node\"",
        ),
        (with_base("runtime = true"), "runtime", "got a boolean true"),
        // artifact
        (
            "name = \"a\"".to_string(),
            "artifact",
            "missing required key",
        ),
        (
            "name = \"a\"\nartifact = \"\"".to_string(),
            "artifact",
            "got an empty string",
        ),
        (
            "name = \"a\"\nartifact = [\"x\"]".to_string(),
            "artifact",
            "got an array",
        ),
        // command
        (
            with_base("command = [\"./run\"]"),
            "command",
            "only allowed with runtime = \"lambda\"",
        ),
        (
            format!("{lambda}command = []"),
            "command",
            "got an empty list",
        ),
        (
            format!("{lambda}command = [\"python3\", \"\"]"),
            "command[1]",
            "expected a non-empty string",
        ),
        (
            format!("{lambda}command = [\"python3\", 3]"),
            "command[1]",
            "expected a string, got an integer 3",
        ),
        (
            format!("{lambda}command = \"./bootstrap\""),
            "command",
            "expected a list of non-empty strings",
        ),
        // routes
        (
            with_base("routes = [\"hello\"]"),
            "routes[0]",
            "starting with '/'",
        ),
        (
            with_base("routes = [\"/a b\"]"),
            "routes[0]",
            "without spaces",
        ),
        (
            with_base("routes = [\"/a?b=1\"]"),
            "routes[0]",
            "without a query",
        ),
        (
            with_base("routes = [\"/a#top\"]"),
            "routes[0]",
            "without a query or fragment",
        ),
        (
            with_base("routes = [\"/a*\"]"),
            "routes[0]",
            "'*' only as a final \"/*\" segment",
        ),
        (
            with_base("routes = [\"/*/a\"]"),
            "routes[0]",
            "'*' only as a final",
        ),
        (
            with_base("routes = [\"/a/*/*\"]"),
            "routes[0]",
            "'*' only as a final",
        ),
        (
            with_base("routes = [\"/a\", \"/b\", \"/a\"]"),
            "routes[2]",
            "duplicate of routes[0]",
        ),
        (
            with_base("routes = [\"/fn/x\"]"),
            "routes[0]",
            "reserved by the platform",
        ),
        (with_base("routes = [\"/ws/*\"]"), "routes[0]", "reserved"),
        (
            with_base("routes = [\"/auth/v1/x\"]"),
            "routes[0]",
            "reserved",
        ),
        (
            with_base("routes = [\"/data/v1\"]"),
            "routes[0]",
            "reserved",
        ),
        (with_base("routes = [\"/api/v1\"]"), "routes[0]", "reserved"),
        (
            with_base("routes = [\"/healthz\"]"),
            "routes[0]",
            "reserved",
        ),
        (
            with_base("routes = [\"/healthz/*\"]"),
            "routes[0]",
            "reserved",
        ),
        (with_base("routes = [\"/fn\"]"), "routes[0]", "reserved"),
        (with_base("routes = [\"/kv/x\"]"), "routes[0]", "reserved"),
        (
            with_base("routes = [\"/ok\", \"/@connections/*\"]"),
            "routes[1]",
            "reserved",
        ),
        (
            with_base("routes = [\"/channels/x\"]"),
            "routes[0]",
            "reserved",
        ),
        (
            with_base("routes = [\"/.gureum/x\"]"),
            "routes[0]",
            "reserved",
        ),
        (
            with_base("routes = [\"/.well-known/acme-challenge/*\"]"),
            "routes[0]",
            "reserved",
        ),
        (with_base("routes = [\"/ws\"]"), "routes[0]", "reserved"),
        (
            with_base("routes = \"/hello\""),
            "routes",
            "expected a list of paths",
        ),
        (with_base("routes = [1]"), "routes[0]", "expected a string"),
        // Limits: ranges, types, signs.
        (
            with_base("memory_mb = 0"),
            "memory_mb",
            "expected an integer from 1 to 4096 (MiB), got 0",
        ),
        (
            with_base("memory_mb = 4097"),
            "memory_mb",
            "from 1 to 4096 (MiB), got 4097",
        ),
        (with_base("memory_mb = -1"), "memory_mb", "got -1"),
        (
            with_base("memory_mb = 1.5"),
            "memory_mb",
            "expected an integer (MiB), got a float 1.5",
        ),
        (
            with_base("memory_mb = 128.0"),
            "memory_mb",
            "got a float 128.0",
        ),
        (
            with_base("timeout_ms = \"3s\""),
            "timeout_ms",
            "expected an integer (milliseconds), got a string",
        ),
        (
            with_base("timeout_ms = 0"),
            "timeout_ms",
            "from 1 to 900000 (milliseconds)",
        ),
        (with_base("timeout_ms = 900001"), "timeout_ms", "got 900001"),
        (
            with_base("max_instances = 0"),
            "max_instances",
            "from 1 to 1000",
        ),
        (
            with_base("max_instances = 1001"),
            "max_instances",
            "got 1001",
        ),
        (
            with_base("idle_ttl_s = -5"),
            "idle_ttl_s",
            "from 0 to 86400 (seconds), got -5",
        ),
        (
            with_base("idle_ttl_s = 86401"),
            "idle_ttl_s",
            "from 0 to 86400",
        ),
        (
            with_base("idle_ttl_s = true"),
            "idle_ttl_s",
            "expected an integer (seconds), got a boolean",
        ),
        // reuse_instances
        (
            with_base("reuse_instances = \"yes\""),
            "reuse_instances",
            "expected true or false, got a string \"yes\"",
        ),
        (
            with_base("reuse_instances = 1"),
            "reuse_instances",
            "expected true or false",
        ),
        // allowed_outbound_hosts
        (
            with_base("allowed_outbound_hosts = \"*\""),
            "allowed_outbound_hosts",
            "expected a list of origins",
        ),
        (
            with_base("allowed_outbound_hosts = [\"api.example.com\"]"),
            "allowed_outbound_hosts[0]",
            "missing scheme: write e.g. \"https://api.example.com\"",
        ),
        (
            with_base("allowed_outbound_hosts = [\"https://a.com\", \"ftp://a.com\"]"),
            "allowed_outbound_hosts[1]",
            "unsupported scheme \"ftp\"",
        ),
        (
            with_base("allowed_outbound_hosts = [\"https://a.com/v1\"]"),
            "allowed_outbound_hosts[0]",
            "remove \"/v1\"",
        ),
        (
            with_base("allowed_outbound_hosts = [\"https://a.com/\"]"),
            "allowed_outbound_hosts[0]",
            "path",
        ),
        (
            with_base("allowed_outbound_hosts = [\"https://a.com:0\"]"),
            "allowed_outbound_hosts[0]",
            "invalid port \"0\"",
        ),
        (
            with_base("allowed_outbound_hosts = [\"https://a.com:99999\"]"),
            "allowed_outbound_hosts[0]",
            "from 1 to 65535",
        ),
        (
            with_base("allowed_outbound_hosts = [\"https://a.com:\"]"),
            "allowed_outbound_hosts[0]",
            "invalid port",
        ),
        (
            with_base("allowed_outbound_hosts = [\"https://a.*.com\"]"),
            "allowed_outbound_hosts[0]",
            "leading \"*.\"",
        ),
        (
            with_base("allowed_outbound_hosts = [\"https://\"]"),
            "allowed_outbound_hosts[0]",
            "missing host",
        ),
        (
            with_base("allowed_outbound_hosts = [\"https://a b.com\"]"),
            "allowed_outbound_hosts[0]",
            "invalid host",
        ),
        (
            with_base("allowed_outbound_hosts = [\"https://u@a.com\"]"),
            "allowed_outbound_hosts[0]",
            "user info",
        ),
        (
            with_base("allowed_outbound_hosts = [\"http://::1\"]"),
            "allowed_outbound_hosts[0]",
            "brackets",
        ),
        (
            with_base("allowed_outbound_hosts = [\"http://[::1\"]"),
            "allowed_outbound_hosts[0]",
            "unclosed",
        ),
        (
            with_base(
                "allowed_outbound_hosts = [\"https://a.com\"]\n#\nallowed_outbound_hosts2 = 1",
            ),
            "allowed_outbound_hosts2",
            "did you mean `allowed_outbound_hosts`?",
        ),
        (
            with_base("allowed_outbound_hosts = [\"x\"]"),
            "allowed_outbound_hosts[0]",
            "expected \"scheme://host[:port]\"",
        ),
        // auth
        (
            with_base("auth = \"\""),
            "auth",
            "expected \"none\", \"user\" or a CEL expression",
        ),
        (with_base("auth = false"), "auth", "got a boolean false"),
        // env
        (
            with_base("[env]\n1X = \"a\""),
            "env.1X",
            "not starting with a digit",
        ),
        (
            with_base("[env]\n\"MY KEY\" = \"a\""),
            "env.\"MY KEY\"",
            "invalid variable name",
        ),
        (
            with_base("[env]\nA-B = \"a\""),
            "env.A-B",
            "letters, digits and '_'",
        ),
        (
            with_base("[env]\nGUREUM_API = \"x\""),
            "env.GUREUM_API",
            "reserved by the platform",
        ),
        (
            with_base("[env]\nAWS_LAMBDA_FUNCTION_NAME = \"x\""),
            "env.AWS_LAMBDA_FUNCTION_NAME",
            "reserved",
        ),
        (
            with_base("[env]\n_HANDLER = \"x\""),
            "env._HANDLER",
            "reserved",
        ),
        (
            with_base("[env]\nPORT = 8080"),
            "env.PORT",
            "got an integer 8080: quote it, e.g. PORT = \"8080\"",
        ),
        (
            with_base("[env]\nDEBUG = true"),
            "env.DEBUG",
            "quote it, e.g. DEBUG = \"true\"",
        ),
        (
            with_base("[env]\nLIST = [\"a\"]"),
            "env.LIST",
            "expected a string, got an array",
        ),
        (
            with_base("[env]\nmemory_mb = 256"),
            "env.memory_mb",
            "move it above [env]",
        ),
        (with_base("env = \"A=1\""), "env", "expected a table ([env]"),
        // schedule
        (
            with_base("[schedule]\ncron = \"@daily\""),
            "schedule",
            "write [[schedule]] (double brackets)",
        ),
        (
            with_base("schedule = [\"@daily\"]"),
            "schedule[0]",
            "expected a table with cron and body",
        ),
        (
            with_base("[[schedule]]\nbody = \"x\""),
            "schedule[0].cron",
            "missing required key",
        ),
        (
            with_base("[[schedule]]\ncron = 5"),
            "schedule[0].cron",
            "expected a string, got an integer",
        ),
        (
            with_base("[[schedule]]\ncron = \"@daily\"\nbody = {a = 1}"),
            "schedule[0].body",
            "expected a string",
        ),
        (
            with_base("[[schedule]]\ncron = \"@daily\"\n[[schedule]]\ncron = \"every day\""),
            "schedule[1].cron",
            "wrong number of fields (2)",
        ),
        (
            with_base("[[schedule]]\ncron = \"* * * *\""),
            "schedule[0].cron",
            "expected \"@every <duration>\"",
        ),
        (
            with_base("[[schedule]]\ncron = \"* * * * * * *\""),
            "schedule[0].cron",
            "wrong number of fields (7)",
        ),
        (
            with_base("[[schedule]]\ncron = \"61 * * * *\""),
            "schedule[0].cron",
            "minute 61 is out of range 0-59",
        ),
        (
            with_base("[[schedule]]\ncron = \"0 0 30 2 *\""),
            "schedule[0].cron",
            "never matches a real date",
        ),
        (
            with_base("[[schedule]]\ncron = \"@daily\"\ntz = \"Mars/Base\""),
            "schedule[0].tz",
            "unknown time zone \"Mars/Base\"",
        ),
        (
            with_base("[[schedule]]\ncron = \"@daily\"\nmissed = \"later\""),
            "schedule[0].missed",
            "expected \"run-once\"",
        ),
        (
            with_base(
                "[[schedule]]\nname = \"a\"\ncron = \"@daily\"\n[[schedule]]\nname = \"a\"\ncron = \"@hourly\"",
            ),
            "schedule[1].name",
            "names must be unique",
        ),
        (
            with_base("[[schedule]]\nname = \"Nightly Job\"\ncron = \"@daily\""),
            "schedule[0].name",
            "expected 1 to 63 characters",
        ),
        (
            with_base("[async]\nretries = 11"),
            "async.retries",
            "expected an integer from 0 to 10",
        ),
        (
            with_base("[async]\nmax_event_age_s = \"6h\""),
            "async.max_event_age_s",
            "expected an integer (seconds)",
        ),
        (
            with_base("[async]\non_failure = \"Bad Name\""),
            "async.on_failure",
            "expected a function name",
        ),
        (
            with_base("[async]\nretires = 1"),
            "async.retires",
            "did you mean `retries`?",
        ),
        (with_base("async = 1"), "async", "expected a table ([async]"),
        (
            with_base("[[schedule]]\ncron = \"0 24 * * *\""),
            "schedule[0].cron",
            "hour 24 is out of range 0-23",
        ),
        (
            with_base("[[schedule]]\ncron = \"60 * * * * *\""),
            "schedule[0].cron",
            "second 60 is out of range",
        ),
        (
            with_base("[[schedule]]\ncron = \"0 0 0 * *\""),
            "schedule[0].cron",
            "day-of-month 0 is out of range 1-31",
        ),
        (
            with_base("[[schedule]]\ncron = \"0 0 1 13 *\""),
            "schedule[0].cron",
            "month 13 is out of range 1-12",
        ),
        (
            with_base("[[schedule]]\ncron = \"0 0 * * 8\""),
            "schedule[0].cron",
            "day-of-week 8 is out of range 0-7",
        ),
        (
            with_base("[[schedule]]\ncron = \"0 0 * FOO *\""),
            "schedule[0].cron",
            "month \"FOO\" is not valid (use 1-12 or JAN-DEC",
        ),
        (
            with_base("[[schedule]]\ncron = \"0 0 * * MON-XYZ\""),
            "schedule[0].cron",
            "use 0-7 or SUN-SAT",
        ),
        (
            with_base("[[schedule]]\ncron = \"0 MON * * *\""),
            "schedule[0].cron",
            "hour \"MON\" is not valid",
        ),
        (
            with_base("[[schedule]]\ncron = \"*/0 * * * *\""),
            "schedule[0].cron",
            "step \"0\"",
        ),
        (
            with_base("[[schedule]]\ncron = \"1,,2 * * * *\""),
            "schedule[0].cron",
            "minute \"\" is not valid",
        ),
        (
            with_base("[[schedule]]\ncron = \"30-10 * * * *\""),
            "schedule[0].cron",
            "goes backwards",
        ),
        (
            with_base("[[schedule]]\ncron = \"0 0 ? * *\""),
            "schedule[0].cron",
            "\"?\" is not valid",
        ),
        (
            with_base("[[schedule]]\ncron = \"@every\""),
            "schedule[0].cron",
            "@every needs a duration",
        ),
        (
            with_base("[[schedule]]\ncron = \"@every 10\""),
            "schedule[0].cron",
            "invalid duration \"10\"",
        ),
        (
            with_base("[[schedule]]\ncron = \"@every 500ms\""),
            "schedule[0].cron",
            "shorter than 1s",
        ),
        (
            with_base("[[schedule]]\ncron = \"@every 0s\""),
            "schedule[0].cron",
            "shorter than 1s",
        ),
        (
            with_base("[[schedule]]\ncron = \"@often\""),
            "schedule[0].cron",
            "unknown macro \"@often\"",
        ),
        // static and description
        (
            with_base("[static]\nspa = true"),
            "static.dir",
            "missing required key",
        ),
        (
            with_base("[static]\ndir = \"\""),
            "static.dir",
            "got an empty string",
        ),
        (
            with_base("[static]\ndir = \"public\"\nspa = \"yes\""),
            "static.spa",
            "expected true or false",
        ),
        (
            with_base("static = \"public\""),
            "static",
            "expected a table ([static]",
        ),
        (
            with_base("description = 1"),
            "description",
            "expected a string, got an integer 1",
        ),
    ];
    for (text, field, fragment) in &cases {
        let problems = problems_of(text);
        assert!(
            problems
                .iter()
                .any(|p| p.field == *field && p.message.contains(fragment)),
            "manifest:\n{text}\nwanted {field}: …{fragment}…\ngot {problems:#?}"
        );
        for problem in &problems {
            let first = problem.message.chars().next().unwrap_or('a');
            assert!(
                !first.is_uppercase() && !problem.message.ends_with('.'),
                "style: {problem}"
            );
        }
    }
}

#[test]
fn minimal_manifest_gets_every_default() {
    let spec = parse(BASE).expect("valid");
    assert_eq!(spec.name.as_str(), "hello");
    assert_eq!(spec.runtime, Runtime::Wasm);
    assert_eq!(spec.artifact, "hello.wasm");
    assert!(spec.command.is_empty());
    assert!(spec.routes.is_empty());
    assert_eq!(spec.limits, Limits::default());
    assert!(spec.reuse_instances);
    assert!(spec.allowed_outbound_hosts.is_empty());
    assert_eq!(spec.auth, AuthPolicy::None);
    assert!(spec.env.is_empty());
    assert!(spec.schedules.is_empty());
    assert_eq!(spec.async_config, AsyncConfig::default());
}

#[test]
fn permissions_are_least_privilege_by_default() {
    let spec = parse(BASE).expect("valid");
    assert_eq!(spec.permissions, gureum_model::Permissions::default());
    let spec = parse(&with_base(
        "[permissions]\ndata = [\"notes:read\", \"orders:write\", \"*:read\"]\ninvoke = [\"mailer\"]\nwebsocket = [\"*\"]",
    ))
    .expect("valid");
    let p = &spec.permissions;
    assert_eq!(p.data.len(), 3);
    assert_eq!(
        p.data_access("orders"),
        Some(gureum_model::DataAccess::Write)
    );
    assert_eq!(p.data_access("else"), Some(gureum_model::DataAccess::Read));
    assert!(p.may_invoke("hello", "mailer") && !p.may_invoke("hello", "billing"));
    assert!(p.may_manage_connections("hello", "chat"));
    // A static-only site runs no code, so it has no token to grant anything to.
    let problems =
        problems_of("name = \"site\"\n[static]\ndir = \"public\"\n[permissions]\ndata = []\n");
    assert!(
        problems.iter().any(|p| p.field == "permissions"),
        "{problems:?}"
    );
}

#[test]
fn schedules_and_async_settings() {
    let spec = parse(&with_base(
        "[async]\nretries = 0\nmax_event_age_s = 60\nretry_delay_ms = 100\nmax_queued = 5\non_failure = \"alert\"\n\
         [[schedule]]\ncron = \"@every 1s\"\n\
         [[schedule]]\nname = \"nightly\"\ncron = \"0 3 * * *\"\ntz = \"Asia/Seoul\"\nmissed = \"skip\"",
    ))
    .expect("valid");
    assert_eq!(spec.schedules[0].name, "schedule-1");
    assert_eq!(spec.schedules[0].tz, "UTC");
    assert!(spec.schedules[0].catch_up);
    assert_eq!(spec.schedules[1].name, "nightly");
    assert_eq!(spec.schedules[1].tz, "Asia/Seoul");
    assert!(!spec.schedules[1].catch_up);
    assert_eq!(spec.async_config.retries, 0);
    assert_eq!(spec.async_config.max_event_age_ms, 60_000);
    assert_eq!(spec.async_config.retry_delay_ms, 100);
    assert_eq!(spec.async_config.max_queued, 5);
    assert_eq!(
        spec.async_config.on_failure.as_ref().map(|n| n.as_str()),
        Some("alert")
    );
    assert_eq!(spec.async_config.on_success, None);
}

#[test]
fn example_parses_with_its_stated_defaults() {
    let spec = parse(EXAMPLE).expect("EXAMPLE is valid");
    assert_eq!(spec.name.as_str(), "hello");
    assert_eq!(spec.limits, Limits::default());
    assert!(spec.reuse_instances);
    assert_eq!(spec.auth, AuthPolicy::None);
    assert_eq!(spec.routes, ["/hello", "/hello/*"]);
    assert_eq!(spec.env.get("GREETING").map(String::as_str), Some("hi"));
    assert_eq!(
        spec.schedules,
        [Schedule {
            name: "report".into(),
            cron: "0 */5 * * * *".into(),
            tz: "UTC".into(),
            body: "{}".into(),
            catch_up: true,
        }]
    );
    assert_eq!(spec.async_config, AsyncConfig::default());
    // The commented-out sections must stay valid when a user uncomments them.
    let uncommented = EXAMPLE
        .replace("# on_", "on_")
        .replace("# [static]", "[static]")
        .replace("# dir", "dir")
        .replace("# spa", "spa");
    let uncommented = uncommented
        .replace("runtime = \"wasm\"", "runtime = \"lambda\"")
        .replace("# command", "command");
    parse(&uncommented).expect("EXAMPLE with its optional lines is valid");
}

#[test]
fn full_lambda_manifest_is_accepted() {
    let text = r#"
name = "api-2"
description = "orders"
runtime = "lambda"
artifact = "../../target/lambda/api"
command = ["python3", "-m", "awslambdaric", "app.handler"]
routes = ["/", "/orders", "/orders/*", "/*", "/fnord", "/api", "/wsx"]
memory_mb = 4096
timeout_ms = 900000
max_instances = 1000
idle_ttl_s = 0
ephemeral_storage_mb = 10240
reuse_instances = false
allowed_outbound_hosts = ["*", "https://*.example.com", "http://localhost:8080", "*://db:*", "http://[::1]:5432", "HTTPS://API.Example.com"]
auth = "auth.claims.role == 'admin'"

[static]
dir = "public"
spa = true

[env]
GREETING = "hi"
_private = ""
LAMBDA = "ok"

[[schedule]]
cron = "@every 1h30m"

[[schedule]]
cron = "0 0 9 * * MON-FRI"
body = '{"kind":"digest"}'

[[schedule]]
cron = "*/15 0-6,22-23 1,15 jan-Jun 0,7"

[[schedule]]
cron = "@hourly"
"#;
    let spec = parse(text).expect("valid");
    assert_eq!(spec.runtime, Runtime::Lambda);
    assert_eq!(spec.command[3], "app.handler");
    assert_eq!(
        spec.limits,
        Limits {
            memory_mb: 4096,
            timeout_ms: 900_000,
            max_instances: 1000,
            idle_ttl_s: 0,
            ephemeral_storage_mb: 10_240,
        }
    );
    assert!(!spec.reuse_instances);
    assert_eq!(spec.allowed_outbound_hosts.len(), 6);
    assert_eq!(
        spec.auth,
        AuthPolicy::Expression("auth.claims.role == 'admin'".into())
    );
    assert_eq!(spec.env.len(), 3);
    assert_eq!(spec.schedules.len(), 4);
    assert_eq!(spec.schedules[0].body, "");
}

#[test]
fn lambda_defaults_to_bootstrap_and_user_auth_parses() {
    let spec = parse("name = \"l\"\nartifact = \"code\"\nruntime = \"lambda\"\nauth = \"user\"")
        .expect("valid");
    assert_eq!(spec.command, ["./bootstrap"]);
    assert_eq!(spec.auth, AuthPolicy::User);
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
name = "Bad_Name"
memroy_mb = 1
timeout_ms = "3s"
routes = ["nope", "/fn/x"]
[env]
GUREUM_X = "1"
[[schedule]]
cron = "0 24 * * *"
"#;
    let problems = problems_of(text);
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    for expected in [
        "memroy_mb",
        "name",
        "artifact",
        "routes[0]",
        "routes[1]",
        "timeout_ms",
        "env.GUREUM_X",
        "schedule[0].cron",
    ] {
        assert!(
            fields.contains(&expected),
            "{expected} missing in {fields:?}"
        );
    }
    let error = ManifestError::Invalid(problems);
    let shown = error.to_string();
    assert!(
        shown.starts_with("invalid gureum.toml (8 problems):\n  - "),
        "{shown}"
    );
    assert!(
        shown.contains("\n  - timeout_ms: expected an integer (milliseconds), got a string \"3s\"")
    );
    assert_eq!(error.problems().len(), 8);
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let error = parse("name = \"a\"\nartifact = \"b\"\nmemory_mb = = 3\n").expect_err("bad toml");
    let ManifestError::Syntax {
        line,
        column,
        message,
        source_line,
    } = &error
    else {
        panic!("expected a syntax error, got {error:?}");
    };
    assert_eq!((*line, *column), (3, 13), "{message}");
    assert_eq!(source_line, "memory_mb = = 3");
    let shown = error.to_string();
    assert!(shown.contains("line 3, column 13: "), "{shown}");
    assert!(
        shown.ends_with("\n  | memory_mb = = 3\n  |             ^"),
        "{shown}"
    );
    assert!(error.problems().is_empty());

    let error = parse("name = \"a\"\nname = \"b\"\n").expect_err("duplicate key");
    assert!(
        matches!(error, ManifestError::Syntax { line: 2, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("| name = \"b\""), "{error}");
    let error = parse("name = \"héllo").expect_err("unterminated string");
    assert!(
        matches!(error, ManifestError::Syntax { line: 1, .. }),
        "{error:?}"
    );
}

#[test]
fn outbound_patterns_match_like_spin() {
    let cases: &[(&str, &str, &str, Option<u16>, bool)] = &[
        (
            "https://api.example.com",
            "https",
            "api.example.com",
            None,
            true,
        ),
        (
            "https://api.example.com",
            "https",
            "api.example.com",
            Some(443),
            true,
        ),
        (
            "https://api.example.com",
            "https",
            "API.Example.COM.",
            None,
            true,
        ),
        (
            "https://api.example.com",
            "HTTPS:",
            "api.example.com",
            None,
            true,
        ),
        (
            "https://api.example.com",
            "https",
            "api.example.com",
            Some(8443),
            false,
        ),
        (
            "https://api.example.com",
            "http",
            "api.example.com",
            None,
            false,
        ),
        (
            "https://api.example.com",
            "https",
            "example.com",
            None,
            false,
        ),
        (
            "https://api.example.com",
            "https",
            "x.api.example.com",
            None,
            false,
        ),
        (
            "https://api.example.com:8443",
            "https",
            "api.example.com",
            Some(8443),
            true,
        ),
        (
            "https://api.example.com:8443",
            "https",
            "api.example.com",
            None,
            false,
        ),
        (
            "http://localhost:8080",
            "http",
            "localhost",
            Some(8080),
            true,
        ),
        ("http://localhost:8080", "http", "localhost", None, false),
        ("http://localhost", "http", "localhost", Some(80), true),
        ("http://localhost", "http", "localhost", Some(8080), false),
        (
            "https://*.example.com",
            "https",
            "a.example.com",
            None,
            true,
        ),
        (
            "https://*.example.com",
            "https",
            "a.b.example.com",
            None,
            true,
        ),
        ("https://*.example.com", "https", "example.com", None, false),
        (
            "https://*.example.com",
            "https",
            "badexample.com",
            None,
            false,
        ),
        (
            "https://*.example.com",
            "https",
            "a.example.com.evil.io",
            None,
            false,
        ),
        (
            "https://*.example.com",
            "http",
            "a.example.com",
            None,
            false,
        ),
        ("*://db.internal:*", "http", "db.internal", Some(5432), true),
        ("*://db.internal:*", "https", "db.internal", None, true),
        ("*://db.internal:*", "https", "other.internal", None, false),
        ("*://db.internal", "http", "db.internal", None, true),
        ("*://db.internal", "https", "db.internal", Some(443), true),
        ("*://db.internal", "http", "db.internal", Some(443), false),
        ("http://*", "http", "anything.at.all", None, true),
        ("http://*", "http", "anything.at.all", Some(81), false),
        ("http://*:*", "http", "10.0.0.1", Some(81), true),
        ("https://*:8443", "https", "x.y", Some(8443), true),
        ("*", "ftp", "anything", Some(21), true),
        ("http://[::1]:8080", "http", "[::1]", Some(8080), true),
        ("http://[::1]:8080", "http", "::1", Some(8080), true),
        (
            "http://127.0.0.1:3000",
            "http",
            "127.0.0.1",
            Some(3000),
            true,
        ),
        // Invalid entries allow nothing rather than guessing.
        ("api.example.com", "https", "api.example.com", None, false),
        (
            "https://api.example.com/v1",
            "https",
            "api.example.com",
            None,
            false,
        ),
    ];
    for &(entry, scheme, host, port, expected) in cases {
        assert_eq!(
            outbound_allowed(&[entry.to_string()], scheme, host, port),
            expected,
            "{entry} vs {scheme}://{host} port {port:?}"
        );
    }
    assert!(!outbound_allowed(&[], "https", "a.com", None));
    let several = ["https://a.com".to_string(), "http://b.com:81".to_string()];
    assert!(outbound_allowed(&several, "http", "b.com", Some(81)));
    assert!(!outbound_allowed(&several, "http", "a.com", None));
}

#[test]
fn only_an_entry_naming_the_address_or_localhost_allows_a_private_destination() {
    let entries = |list: &[&str]| {
        list.iter()
            .map(|entry| entry.to_string())
            .collect::<Vec<_>>()
    };
    // (entries, request host, request port, expected allowance)
    type Case<'a> = (&'a [&'a str], &'a str, Option<u16>, Option<Allowance>);
    let cases: &[Case] = &[
        (
            &["http://127.0.0.1:8081"],
            "127.0.0.1",
            Some(8081),
            Some(Allowance::Literally),
        ),
        (
            &["http://localhost:8081"],
            "localhost",
            Some(8081),
            Some(Allowance::Literally),
        ),
        (
            &["http://[::1]:8081"],
            "[::1]",
            Some(8081),
            Some(Allowance::Literally),
        ),
        (
            &["http://127.0.0.1:*"],
            "127.0.0.1",
            Some(9),
            Some(Allowance::Literally),
        ),
        // A name, or a wildcard that happens to cover the address: the resolved
        // addresses are checked.
        (
            &["http://vm:8081"],
            "vm",
            Some(8081),
            Some(Allowance::ByName),
        ),
        (&["*"], "127.0.0.1", Some(8081), Some(Allowance::ByName)),
        (
            &["http://*:*"],
            "169.254.169.254",
            None,
            Some(Allowance::ByName),
        ),
        (
            &["http://*.internal"],
            "db.internal",
            None,
            Some(Allowance::ByName),
        ),
        // The literal entry wins over a wildcard that also matches.
        (
            &["*", "http://10.0.0.5:80"],
            "10.0.0.5",
            None,
            Some(Allowance::Literally),
        ),
        (&["http://127.0.0.1:8081"], "127.0.0.1", Some(8082), None),
    ];
    for &(list, host, port, expected) in cases {
        assert_eq!(
            outbound_allowance(&entries(list), "http", host, port),
            expected,
            "{list:?} vs http://{host} port {port:?}"
        );
    }
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, text).expect("write");
}

#[test]
fn load_accepts_a_directory_or_the_toml_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "gureum.toml", BASE);
    write(dir.path(), "hello.wasm", "\0asm");

    let from_dir = load(dir.path()).expect("load dir");
    assert_eq!(from_dir.manifest_path, dir.path().join("gureum.toml"));
    assert_eq!(from_dir.artifact_path, dir.path().join("hello.wasm"));
    assert_eq!(from_dir.text, BASE);
    assert_eq!(from_dir.spec.name.as_str(), "hello");

    let from_file = load(&dir.path().join("gureum.toml")).expect("load file");
    assert_eq!(from_file.artifact_path, from_dir.artifact_path);

    // Any file name works when the toml is named explicitly, and paths resolve from its dir.
    write(
        dir.path(),
        "sub/other.toml",
        "name = \"o\"\nartifact = \"../hello.wasm\"",
    );
    let other = load(&dir.path().join("sub/other.toml")).expect("load other");
    assert_eq!(other.artifact_path, dir.path().join("sub/../hello.wasm"));
}

#[test]
fn load_reports_missing_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let error = load(dir.path()).expect_err("no toml");
    let shown = error.to_string();
    assert!(matches!(error, ManifestError::Io { .. }));
    assert!(
        shown.contains(&dir.path().join("gureum.toml").display().to_string()),
        "{shown}"
    );
    assert!(shown.contains("expected a gureum.toml there"), "{shown}");

    let error = load(&dir.path().join("nope.toml")).expect_err("no file");
    assert!(error.to_string().contains("nope.toml"), "{error}");

    write(dir.path(), "gureum.toml", BASE);
    let error = load(dir.path()).expect_err("no artifact");
    let [problem] = error.problems() else {
        panic!("one problem expected: {error}");
    };
    assert_eq!(problem.field, "artifact");
    assert!(
        problem.message.contains("hello.wasm does not exist"),
        "{problem}"
    );

    // A wasm artifact must be a file, a lambda artifact may be a directory.
    fs::create_dir(dir.path().join("hello.wasm")).expect("mkdir");
    let error = load(dir.path()).expect_err("directory artifact");
    assert!(
        error.problems()[0].message.contains("is not a file"),
        "{error}"
    );

    write(
        dir.path(),
        "gureum.toml",
        "name = \"l\"\nruntime = \"lambda\"\nartifact = \"hello.wasm\"",
    );
    load(dir.path()).expect("lambda directory artifact");

    write(
        dir.path(),
        "gureum.toml",
        "name = \"l\"\nruntime = \"lambda\"\nartifact = \"hello.wasm\"\n[static]\ndir = \"public\"",
    );
    let error = load(dir.path()).expect_err("missing static dir");
    assert_eq!(error.problems()[0].field, "static.dir");
    fs::create_dir(dir.path().join("public")).expect("mkdir");
    load(dir.path()).expect("static dir present");
}

#[test]
fn invalid_manifest_fails_before_artifact_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "gureum.toml",
        "name = \"x\"\nartifact = \"a.wasm\"\nmemory_mb = 0",
    );
    let error = load(dir.path()).expect_err("invalid");
    assert_eq!(error.problems()[0].field, "memory_mb");
}

#[test]
fn a_static_only_site_needs_no_runtime_or_artifact() {
    let spec =
        parse("name = \"site\"\nroutes = [\"/*\"]\nauth = \"user\"\n[static]\ndir = \"public\"")
            .expect("static-only site");
    assert_eq!(spec.runtime, Runtime::Static);
    assert_eq!(spec.artifact, "");
    assert_eq!(spec.routes, ["/*"]);
    assert_eq!(
        spec.static_site,
        Some(StaticSite {
            dir: "public".into(),
            spa: false
        })
    );

    // Keys about running code make no sense without code; each is named.
    let problems = problems_of(
        "name = \"site\"\ncommand = [\"./x\"]\nmemory_mb = 256\n[env]\nA = \"b\"\n[static]\ndir = \"public\"",
    );
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["command", "memory_mb", "env"], "{problems:?}");
    assert!(
        problems
            .iter()
            .all(|p| p.message.contains("static-only site")),
        "{problems:?}"
    );
    let problems =
        problems_of("name = \"site\"\n[[schedule]]\ncron = \"@daily\"\n[static]\ndir = \"p\"");
    assert_eq!(problems[0].field, "schedule");

    // Unknown keys in [static] get a hint, static-only or not.
    let problems = problems_of("name = \"site\"\n[static]\ndirr = \"public\"");
    assert!(
        problems
            .iter()
            .any(|p| p.field == "static.dirr" && p.message.contains("did you mean `dir`?")),
        "{problems:?}"
    );

    // A runtime without an artifact is not static-only: the artifact is missing.
    let problems = problems_of("name = \"site\"\nruntime = \"wasm\"\n[static]\ndir = \"public\"");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "artifact");
    assert!(
        problems[0]
            .message
            .contains("static-only site leaves runtime and artifact out"),
        "{problems:?}"
    );
}

#[test]
fn static_files_beside_a_function() {
    let spec = parse(&with_base("[static]\ndir = \"dist\"\nspa = true")).expect("valid");
    assert_eq!(spec.runtime, Runtime::Wasm);
    assert_eq!(spec.artifact, "hello.wasm");
    assert_eq!(
        spec.static_site,
        Some(StaticSite {
            dir: "dist".into(),
            spa: true
        })
    );
    assert_eq!(parse(BASE).expect("valid").static_site, None);
}

#[test]
fn load_names_a_missing_static_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "gureum.toml",
        "name = \"site\"\n[static]\ndir = \"public\"",
    );
    let error = load(dir.path()).expect_err("no public dir");
    let [problem] = error.problems() else {
        panic!("one problem expected: {error}");
    };
    assert_eq!(problem.field, "static.dir");
    assert!(
        problem.message.contains("public does not exist")
            && problem.message.contains("a directory of static files"),
        "{problem}"
    );
    write(dir.path(), "public", "a file, not a directory");
    let error = load(dir.path()).expect_err("public is a file");
    assert!(
        error.problems()[0].message.contains("is not a directory"),
        "{error}"
    );
    fs::remove_file(dir.path().join("public")).expect("rm");
    write(dir.path(), "public/index.html", "<h1>hi</h1>");
    let loaded = load(dir.path()).expect("static-only site loads");
    assert_eq!(loaded.static_dir, Some(dir.path().join("public")));
    assert_eq!(loaded.spec.runtime, Runtime::Static);
}

#[test]
fn build_section_is_validated_and_defaults_watch_to_the_project() {
    let project = parse_full(&with_base("[build]\ncommand = \"make\"")).expect("valid");
    assert_eq!(
        project.build,
        Some(Build {
            command: "make".into(),
            watch: vec![".".into()],
        })
    );
    let cases = [
        (
            "[build]\nwatch = [\"src\"]",
            "build.command",
            "missing required key",
        ),
        (
            "[build]\ncommand = \"  \"",
            "build.command",
            "got an empty string",
        ),
        (
            "[build]\ncommand = \"make\"\nwach = []",
            "build.wach",
            "did you mean `watch`?",
        ),
        (
            "[build]\ncommand = \"make\"\nwatch = [\"../x\"]",
            "build.watch[0]",
            "inside the project",
        ),
        (
            "[build]\ncommand = \"make\"\nwatch = [\"/etc\"]",
            "build.watch[0]",
            "inside the project",
        ),
        (
            "[build]\ncommand = \"make\"\nwatch = [1]",
            "build.watch[0]",
            "expected a string",
        ),
        ("build = \"make\"", "build", "expected a table"),
    ];
    for (extra, field, fragment) in cases {
        let problems = problems_of(&with_base(extra));
        assert!(
            problems
                .iter()
                .any(|p| p.field == field && p.message.contains(fragment)),
            "{extra:?}: expected {field}: …{fragment}…, got {problems:?}"
        );
    }
}

#[test]
fn read_project_needs_no_artifact_yet() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        MANIFEST_FILE,
        &with_base("[build]\ncommand = \"cargo build\"\nwatch = [\"src\", \"Cargo.toml\"]"),
    );
    let project = read_project(dir.path()).expect("valid without the artifact");
    assert_eq!(project.dir, dir.path());
    assert_eq!(project.build.unwrap().watch, ["src", "Cargo.toml"]);
    assert!(matches!(load(dir.path()), Err(ManifestError::Invalid(_))));
}

/// `value` as JSON, the way an editor's TOML language server checks it against the schema.
fn toml_as_json(text: &str) -> serde_json::Value {
    let table: toml::Table = text.parse().expect("valid TOML");
    serde_json::to_value(table).expect("TOML converts to JSON")
}

#[test]
fn every_key_is_documented_and_the_schema_defaults_are_the_validators() {
    let schema = json_schema();
    // The validator's key lists are read from the schema: each key an editor offers has
    // hover text.
    let mut tables = vec![("", schema.clone())];
    for (name, definition) in schema["definitions"].as_object().unwrap() {
        tables.push((name.as_str(), definition.clone()));
    }
    let mut keys = 0;
    for (table, definition) in &tables {
        let Some(properties) = definition["properties"].as_object() else {
            continue;
        };
        for (key, property) in properties {
            keys += 1;
            assert!(
                property["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{table}.{key} has no description"
            );
        }
    }
    assert!(keys >= 35, "only {keys} keys found");
    assert!(validate_keys_include(&[
        "name",
        "permissions",
        "async",
        "static"
    ]));
    // What the schema tells an editor is the default is what a manifest without the key
    // gets.
    let spec = parse(BASE).unwrap();
    let default = |key: &str| schema["properties"][key]["default"].as_u64().unwrap();
    assert_eq!(default("memory_mb"), u64::from(spec.limits.memory_mb));
    assert_eq!(default("timeout_ms"), spec.limits.timeout_ms);
    assert_eq!(
        default("max_instances"),
        u64::from(spec.limits.max_instances)
    );
    assert_eq!(default("idle_ttl_s"), spec.limits.idle_ttl_s);
    assert_eq!(
        default("ephemeral_storage_mb"),
        u64::from(spec.limits.ephemeral_storage_mb)
    );
    let async_default = |key: &str| {
        schema["definitions"]["AsyncTable"]["properties"][key]["default"]
            .as_u64()
            .unwrap()
    };
    let config = &spec.async_config;
    assert_eq!(async_default("retries"), u64::from(config.retries));
    assert_eq!(
        async_default("max_event_age_s") * 1000,
        config.max_event_age_ms
    );
    assert_eq!(async_default("retry_delay_ms"), config.retry_delay_ms);
    assert_eq!(async_default("max_queued"), u64::from(config.max_queued));
    assert_eq!(async_default("max_queued_bytes"), config.max_queued_bytes);
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["additionalProperties"], false);
}

fn validate_keys_include(keys: &[&str]) -> bool {
    keys.iter().all(|key| crate::schema::TOP_KEYS.contains(key))
}

#[test]
fn schema_accepts_the_examples_and_rejects_bad_manifests() {
    let validator = jsonschema::validator_for(&json_schema()).expect("the schema compiles");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for entry in fs::read_dir(&examples).expect("examples dir") {
        let path = entry.unwrap().path().join(MANIFEST_FILE);
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let errors: Vec<String> = validator
            .iter_errors(&toml_as_json(&text))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        checked += 1;
    }
    assert!(
        checked >= 5,
        "only {checked} examples found in {}",
        examples.display()
    );
    assert!(validator.is_valid(&toml_as_json(EXAMPLE)), "EXAMPLE");

    let bad = [
        "memroy_mb = 256",
        "runtime = \"python\"",
        "memory_mb = 0",
        "memory_mb = \"128\"",
        "routes = [\"hello\"]",
        "[build]\nwatch = [\"src\"]",
        "[static]\nspa = true",
        "[[schedule]]\ncron = \"@daily\"\nmissed = \"later\"",
        "[env]\n\"BAD-NAME\" = \"x\"",
        "[env]\nGUREUM_API = \"x\"",
        "[async]\nretry_delay_ms = 0",
        "[async]\nmax_queued = 20000000",
        "[build]\ncommand = \" \"",
        "[build]\ncommand = \"make\"\nwatch = [\"../x\"]",
        "[build]\ncommand = \"make\"\nwatch = [\"/etc\"]",
        "[build]\ncommand = \"make\"\nwatch = [\"src/../../x\"]",
    ];
    for extra in bad {
        assert!(
            !validator.is_valid(&toml_as_json(&with_base(extra))),
            "the schema accepted {extra:?}"
        );
        assert!(
            parse(&with_base(extra)).is_err(),
            "parse accepted {extra:?}"
        );
    }
    assert!(
        !validator.is_valid(&toml_as_json("artifact = \"x.wasm\"")),
        "no name"
    );
}
