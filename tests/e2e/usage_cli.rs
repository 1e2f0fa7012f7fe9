//! Metering through the CLI: `gureum usage` (exact GB-seconds and cost, the free tier, the
//! VM comparison), `gureum prices` and `gureum quota` (429 past a cap, until removed). Each
//! test runs its own server: prices and quotas belong to the whole installation.

use std::str::FromStr;
use std::time::{Duration, Instant};

use gureum_metering::Decimal;

use crate::lambda::{Guest, deploy_lambda};
use crate::metering::{samples, sum_where};
use crate::{Server, deploy, http};

/// How long usage may take to reach the store (the telemetry writer flushes every
/// 200 ms; generous for a loaded machine).
const USAGE_DEADLINE: Duration = Duration::from_secs(10);

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_else(|_| panic!("{text:?} is not a decimal"))
}

/// A JSON field that holds a decimal string.
fn dj(value: &serde_json::Value) -> Decimal {
    d(value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a decimal string")))
}

/// Invokes `function` over the public listener `n` times, each answering 200.
async fn invoke_ok(server: &Server, function: &str, n: usize) {
    for _ in 0..n {
        let response = server.get(&format!("/fn/{function}/echo")).await;
        assert_eq!(response.status(), 200, "{function}");
    }
}

/// `gureum --json usage ARGS…`, polled until the total counts `requests`.
async fn usage_with(server: &Server, args: &[&str], requests: u64) -> serde_json::Value {
    let mut command = vec!["--json", "usage"];
    command.extend_from_slice(args);
    let deadline = Instant::now() + USAGE_DEADLINE;
    loop {
        let output = server.cli(&command);
        assert!(output.success, "{output:?}");
        let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
        if report["total"]["requests"] == requests {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "usage never counted {requests} requests: {report:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn usage_counts_requests_and_gb_seconds_exactly_and_prices_them() {
    let server = Server::start();
    let _dir = deploy(&server, "hello", "");
    invoke_ok(&server, "hello", 7).await;
    let report = usage_with(&server, &["hello"], 7).await;

    // Every record, as the invocation list shows it: Σ memory_mb × billed_ms / 1,024,000.
    let deadline = Instant::now() + USAGE_DEADLINE;
    let records = loop {
        let records = server.client().invocations("hello").await.unwrap();
        if records.len() >= 7 || Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(records.len(), 7, "{records:?}");
    let mb_ms: i64 = records
        .iter()
        .map(|record| {
            assert_eq!(record.trigger, "http");
            assert!(record.billed_ms >= 1, "{record:?}");
            assert!(
                record.billed_ms * 1000 >= record.duration_us,
                "billed time rounds up: {record:?}"
            );
            i64::from(record.memory_mb) * record.billed_ms
        })
        .sum();
    let billed_ms: i64 = records.iter().map(|record| record.billed_ms).sum();
    let gb_seconds = Decimal::from(mb_ms) / Decimal::from(1_024_000);
    let total = &report["total"];
    assert_eq!(dj(&total["gb_seconds"]), gb_seconds, "{report:#}");
    assert_eq!(total["billed_ms"], billed_ms, "{report:#}");
    assert_eq!(report["function"], "hello");
    assert_eq!(report["by"], "day", "one function is grouped by day");
    let grouped: u64 = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| group["totals"]["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(grouped, 7);

    // The default prices: $0.20 per million requests, $0.0000166667 per GB-second; seven
    // requests are far inside the free tier.
    let list =
        Decimal::from(7) * d("0.20") / Decimal::from(1_000_000) + gb_seconds * d("0.0000166667");
    assert_eq!(dj(&total["cost_list"]), list, "{report:#}");
    assert_eq!(dj(&total["cost"]), Decimal::ZERO, "{report:#}");
    assert_eq!(total["cost"], "0");
    assert_eq!(report["free_tier"]["requests_used"], 7);
    assert_eq!(report["free_tier"]["requests_left"], 1_000_000 - 7);
    assert_eq!(dj(&report["free_tier"]["gb_seconds_used"]), gb_seconds);
    assert_eq!(report["prices"]["gb_second"], "0.0000166667");
    assert!(report.get("compare_vm").is_none());

    let human = server.cli(&["usage"]);
    assert!(human.success, "{human:?}");
    for expected in [
        "TOTAL",
        "Free tier (",
        "hello",
        "Projected for",
        "$0.20 per million requests",
    ] {
        assert!(
            human.stdout.contains(expected),
            "{expected:?} in {}",
            human.stdout
        );
    }
    let compared = server.cli(&["usage", "hello", "--compare-vm", "--vm-monthly", "5"]);
    assert!(compared.success, "{compared:?}");
    assert!(compared.stdout.contains("VM"), "{}", compared.stdout);
    assert!(compared.stdout.contains("$5.00"), "{}", compared.stdout);
    assert!(
        compared.stdout.contains("← your rate"),
        "{}",
        compared.stdout
    );
    let compared = usage_with(&server, &["--compare-vm", "--by", "version"], 7).await;
    let vm = &compared["compare_vm"];
    assert!(vm["sentence"].as_str().unwrap().contains("VM"), "{vm:#}");
    assert_eq!(dj(&vm["vm_monthly"]), d("24"));
    assert!(
        vm["table"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["observed"] == true)
    );
    assert_eq!(compared["groups"][0]["key"], "hello v1");
    assert_eq!(compared["groups"][0]["version"], 1);

    // A name that is neither deployed nor metered, and a grouping that does not exist.
    let unknown = server.cli(&["usage", "nobody-here"]);
    assert!(!unknown.success, "{unknown:?}");
    assert!(unknown.stderr.contains("gureum ls"), "{}", unknown.stderr);
    let error = server
        .client()
        .usage(&gureum_client::UsageQuery {
            by: Some("week".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("by=day"), "{error}");
}

#[tokio::test]
async fn a_price_file_reprices_usage_and_a_bad_key_is_named() {
    let server = Server::start();
    let _dir = deploy(&server, "hello", "");
    invoke_ok(&server, "hello", 7).await;
    usage_with(&server, &[], 7).await;

    // $1 a request and no free requests: seven requests cost exactly $7 (GB-seconds stay
    // inside their free tier).
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("prices.toml");
    std::fs::write(
        &file,
        "free_requests_per_month = 0\nrequests_per_million = \"1000000\"\n",
    )
    .unwrap();
    let set = server.cli(&["prices", "set", file.to_str().unwrap()]);
    assert!(set.success, "{set:?}");
    assert!(
        set.stdout.contains("$1,000,000.00 per million requests"),
        "{}",
        set.stdout
    );
    let report = usage_with(&server, &[], 7).await;
    assert_eq!(dj(&report["total"]["cost"]), Decimal::from(7), "{report:#}");
    assert_eq!(report["total"]["cost"], "7");
    assert_eq!(report["groups"][0]["function"], "hello");
    assert_eq!(dj(&report["groups"][0]["totals"]["cost"]), Decimal::from(7));
    let shown = server.cli(&["--json", "prices"]);
    let prices: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(prices["requests_per_million"], "1000000");
    assert_eq!(prices["free_requests_per_month"], 0);
    assert_eq!(
        prices["gb_second"], "0.0000166667",
        "other keys take their defaults"
    );

    // JSON changes only the keys it names.
    let client = server.client();
    let mut changed = client.prices().await.unwrap();
    changed.gb_second = "0.00001".into();
    let answered = client.set_prices(&changed).await.unwrap();
    assert_eq!(answered.gb_second, "0.00001");
    assert_eq!(answered.requests_per_million, "1000000");

    std::fs::write(&file, "requests_per_million = \"0.20\"\ngb_secnd = \"1\"\n").unwrap();
    let bad = server.cli(&["prices", "set", file.to_str().unwrap()]);
    assert!(!bad.success, "{bad:?}");
    assert!(bad.stderr.contains("gb_secnd"), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("did you mean `gb_second`"),
        "{}",
        bad.stderr
    );
    let unchanged: serde_json::Value =
        serde_json::from_str(&server.cli(&["--json", "prices"]).stdout).unwrap();
    assert_eq!(
        unchanged["requests_per_million"], "1000000",
        "a bad file changes nothing"
    );

    let shown = server.cli(&["prices"]);
    assert!(
        shown.stdout.contains("requests_per_million = \"1000000\""),
        "{}",
        shown.stdout
    );
}

/// The first instant of next month (UTC) as RFC 3339, from the system clock.
fn next_month_rfc3339() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let year: u32 = now[..4].parse().unwrap();
    let month: u32 = now[5..7].parse().unwrap();
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    format!("{year:04}-{month:02}-01T00:00:00Z")
}

/// GET `/fn/{function}/echo`, asserting a 429 quota refusal; returns its `error` object.
async fn refused(server: &Server, function: &str) -> serde_json::Value {
    let response = server.get(&format!("/fn/{function}/echo")).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    let body: serde_json::Value = response.json().await.unwrap();
    let error = body["error"].clone();
    assert_eq!(error["code"], "quota_exceeded", "{body:#}");
    assert_eq!(
        error["quota"]["resets_at"],
        next_month_rfc3339(),
        "{body:#}"
    );
    error
}

#[tokio::test]
async fn a_function_quota_refuses_requests_past_its_cap_until_removed() {
    let server = Server::start();
    // A quota may be set before the function exists.
    let set = server.cli(&["quota", "set", "hello", "--requests", "3"]);
    assert!(set.success, "{set:?}");
    assert!(set.stdout.contains("3 requests"), "{}", set.stdout);
    let _dir = deploy(&server, "hello", "");
    invoke_ok(&server, "hello", 3).await;
    let error = refused(&server, "hello").await;
    assert_eq!(error["quota"]["scope"], "hello");
    assert_eq!(error["quota"]["kind"], "requests");
    assert!(
        error["quota"]["cap"].as_str().unwrap().contains('3'),
        "{error:#}"
    );
    assert!(
        error["message"].as_str().unwrap().contains("gureum quota"),
        "{error:#}"
    );

    let listed = server.cli(&["--json", "quota", "ls"]);
    assert!(listed.success, "{listed:?}");
    let quotas: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(quotas.as_array().unwrap().len(), 1, "{quotas:#}");
    assert_eq!(quotas[0]["scope"], "hello");
    assert_eq!(quotas[0]["requests"], 3);
    assert_eq!(quotas[0]["warn_percent"], 80);
    assert_eq!(quotas[0]["used"]["requests"], 3, "{quotas:#}");
    let human = server.cli(&["quota", "ls"]);
    assert!(human.stdout.contains("3 of 3 (100%)"), "{}", human.stdout);

    let removed = server.cli(&["quota", "rm", "hello"]);
    assert!(removed.success, "{removed:?}");
    invoke_ok(&server, "hello", 1).await;
    let again = server.cli(&["quota", "rm", "hello"]);
    assert!(!again.success, "{again:?}");
    assert!(again.stderr.contains("no quota is set"), "{}", again.stderr);

    let no_cap = server.cli(&["quota", "set", "hello"]);
    assert!(!no_cap.success, "{no_cap:?}");
    assert!(
        no_cap.stderr.contains("at least one cap"),
        "{}",
        no_cap.stderr
    );
    let bad = server.cli(&["quota", "set", "hello", "--cost", "lots"]);
    assert!(!bad.success, "{bad:?}");
    assert!(bad.stderr.contains("cost"), "{}", bad.stderr);
    let bad_name = server.cli(&["quota", "set", "Not_A_Name", "--requests", "1"]);
    assert!(!bad_name.success, "{bad_name:?}");
}

#[tokio::test]
async fn a_global_quota_caps_the_whole_installation() {
    let server = Server::start();
    let _one = deploy(&server, "one", "");
    let _two = deploy(&server, "two", "");
    let set = server.cli(&["quota", "set", "--requests", "2", "--warn-percent", "50"]);
    assert!(set.success, "{set:?}");
    assert!(set.stdout.contains("the installation"), "{}", set.stdout);
    invoke_ok(&server, "one", 1).await;
    invoke_ok(&server, "two", 1).await;
    let error = refused(&server, "one").await;
    assert_eq!(error["quota"]["scope"], "global", "{error:#}");
    let quotas = server.client().quotas().await.unwrap();
    assert_eq!(quotas.len(), 1);
    assert_eq!(quotas[0].scope, "global");
    assert_eq!(quotas[0].used.requests, 2);
    assert_eq!(quotas[0].warn_percent, 50);

    let removed = server.cli(&["quota", "rm"]);
    assert!(removed.success, "{removed:?}");
    invoke_ok(&server, "two", 1).await;
    assert!(server.client().quotas().await.unwrap().is_empty());
    let status = http()
        .get(format!("{}/fn/one/echo", server.public_url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_lambda_function_is_metered_warned_and_capped_like_a_wasm_one() {
    let server = Server::start_with(&["--no-examples", "--metrics-public"]);
    let set = server.cli(&[
        "quota",
        "set",
        "lam",
        "--requests",
        "4",
        "--warn-percent",
        "50",
    ]);
    assert!(set.success, "{set:?}");
    let _dir = deploy_lambda(&server, "lam", Guest::Rust, "memory_mb = 256");
    invoke_ok(&server, "lam", 4).await;
    let error = refused(&server, "lam").await;
    assert_eq!(error["quota"]["scope"], "lam", "{error:#}");

    // Usage of the process runtime follows the same rule: Σ memory_mb × billed_ms.
    let report = usage_with(&server, &["lam"], 4).await;
    let records = server.client().invocations("lam").await.unwrap();
    assert_eq!(records.len(), 4, "{records:?}");
    let mb_ms: i64 = records
        .iter()
        .map(|record| {
            assert_eq!(record.memory_mb, 256, "{record:?}");
            assert!(record.billed_ms * 1000 >= record.duration_us, "{record:?}");
            assert!(record.bytes_out > 0, "{record:?}");
            i64::from(record.memory_mb) * record.billed_ms
        })
        .sum();
    assert_eq!(
        dj(&report["total"]["gb_seconds"]),
        Decimal::from(mb_ms) / Decimal::from(1_024_000),
        "{report:#}"
    );

    // The warning level (50% = the second request) is announced once: in the
    // function's log and as a metric.
    let deadline = Instant::now() + USAGE_DEADLINE;
    loop {
        let output = server.cli(&["logs", "lam", "--since", "1h", "--grep", "quota warning"]);
        assert!(output.success, "{output:?}");
        let lines: Vec<&str> = output.stdout.lines().collect();
        if lines.len() == 1 {
            assert!(lines[0].contains("50%"), "{lines:?}");
            break;
        }
        assert!(
            lines.is_empty() && Instant::now() < deadline,
            "one warning line expected: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = http()
        .get(format!("{}/metrics", server.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let warnings = samples(&text, "gureum_quota_warnings_total");
    assert_eq!(
        sum_where(&warnings, &[("scope", "lam"), ("kind", "requests")]),
        1.0,
        "{text}"
    );
    let rejections = samples(&text, "gureum_rejections_total");
    assert_eq!(
        sum_where(&rejections, &[("function", "lam"), ("reason", "quota")]),
        1.0,
        "{text}"
    );
}
