//! `gureum usage`: requests, GB-seconds and cost under the price list, the free tier,
//! this month's projection and, with `--compare-vm`, the comparison with an always-on VM.

use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Context;
use gureum_api_types::{PricesView, UsageReportView, UsageTotalsView, VmComparisonView};
use gureum_client::UsageQuery;
use gureum_metering::{Decimal, count, number, usd};

/// Arguments of `gureum usage`.
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// Only this function (default: every function).
    name: Option<String>,
    /// How far back, e.g. 30d, 12h, 90m; the report covers whole UTC days.
    #[arg(long, default_value = "30d")]
    since: humantime::Duration,
    /// Group rows by day, function or version (default: function, or day for one
    /// function).
    #[arg(long, value_parser = ["day", "function", "version"])]
    by: Option<String>,
    /// Compare the cost with an always-on VM.
    #[arg(long)]
    compare_vm: bool,
    /// The VM's monthly cost in USD for the comparison (default 24.0; implies
    /// --compare-vm).
    #[arg(long, value_name = "USD")]
    vm_monthly: Option<String>,
}

pub async fn run(
    client: &gureum_client::Client,
    args: UsageArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let query = UsageQuery {
        function: args.name,
        since: Some(format!("{}ms", args.since.as_millis())),
        since_ms: None,
        by: args.by,
        compare_vm: args.compare_vm || args.vm_monthly.is_some(),
        vm_monthly: args
            .vm_monthly
            .map(|usd| usd.trim().trim_start_matches('$').to_string()),
    };
    let report = client.usage(&query).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_report(&report)?;
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &UsageReportView) -> anyhow::Result<()> {
    let whose = match &report.function {
        Some(name) => format!("Usage of {name}"),
        None => "Usage of all functions".to_string(),
    };
    println!(
        "{whose}, {} to {} (UTC), by {} · prices: {}",
        report.since_day,
        report.until_day,
        report.by,
        price_summary(&report.prices)?
    );
    println!();

    let header = match report.by.as_str() {
        "day" => "DAY",
        "version" => "VERSION",
        _ => "FUNCTION",
    };
    let mut rows = Vec::with_capacity(report.groups.len() + 1);
    for group in &report.groups {
        rows.push(table_row(&group.key, &group.totals)?);
    }
    if report.groups.is_empty() {
        println!("No invocations in this period.");
    } else {
        rows.push(table_row("TOTAL", &report.total)?);
        let head = [
            header.to_string(),
            "REQUESTS".into(),
            "ERRORS".into(),
            "GB-S".into(),
            "LIST COST".into(),
            "COST".into(),
        ];
        print_table(&head, &rows, &[false, true, true, true, true, true]);
    }
    println!();

    let free = &report.free_tier;
    let free_requests = free.requests_used.saturating_add(free.requests_left);
    let gb_used = decimal(&free.gb_seconds_used)?;
    let gb_free = gb_used + decimal(&free.gb_seconds_left)?;
    println!(
        "Free tier ({}): {} of {} requests and {} of {} GB-seconds used; resets {}",
        free.month,
        count(free.requests_used),
        count(free_requests),
        gb_seconds(gb_used),
        gb_seconds(gb_free),
        free.resets_at.get(..10).unwrap_or(&free.resets_at),
    );
    let projected = &report.projected_month;
    println!(
        "Projected for {}: ~{} requests, {} GB-s, {} ({} at list price)",
        month_name(&free.month),
        count(projected.requests),
        gb_seconds(decimal(&projected.gb_seconds)?),
        usd(decimal(&projected.cost)?),
        usd(decimal(&projected.cost_list)?),
    );
    if let Some(vm) = &report.compare_vm {
        println!();
        print_vm(vm)?;
    }
    Ok(())
}

fn table_row(key: &str, totals: &UsageTotalsView) -> anyhow::Result<Vec<String>> {
    Ok(vec![
        key.to_string(),
        count(totals.requests),
        count(totals.errors),
        gb_seconds(decimal(&totals.gb_seconds)?),
        usd(decimal(&totals.cost_list)?),
        usd(decimal(&totals.cost)?),
    ])
}

fn print_vm(vm: &VmComparisonView) -> anyhow::Result<()> {
    println!("{}", vm.sentence);
    println!();
    let head = [
        "REQ/S".to_string(),
        "REQUESTS/MONTH".into(),
        "SERVERLESS $/MONTH".into(),
        "VM $/MONTH".into(),
        "CHEAPER".into(),
        String::new(),
    ];
    let mut rows = Vec::with_capacity(vm.table.len());
    for row in &vm.table {
        rows.push(vec![
            significant(decimal(&row.requests_per_second)?),
            number(decimal(&row.requests_per_month)?, 0),
            usd(decimal(&row.serverless_monthly)?),
            usd(decimal(&row.vm_monthly)?),
            if row.cheaper == "vm" {
                "VM"
            } else {
                "serverless"
            }
            .to_string(),
            if row.observed { "← your rate" } else { "" }.to_string(),
        ]);
    }
    print_table(&head, &rows, &[true, true, true, true, false, false]);
    Ok(())
}

/// The price list in one line: "$0.20 per million requests, $0.0000166667 per GB-second;
/// free each month: 1,000,000 requests and 400,000 GB-seconds".
pub(super) fn price_summary(prices: &PricesView) -> anyhow::Result<String> {
    Ok(format!(
        "{} per million requests, {} per GB-second; free each month: {} requests and {} GB-seconds",
        exact_usd(decimal(&prices.requests_per_million)?),
        exact_usd(decimal(&prices.gb_second)?),
        count(prices.free_requests_per_month),
        number(decimal(&prices.free_gb_seconds_per_month)?, 28),
    ))
}

/// Prints rows under a header, each column as wide as its widest cell; `right` says
/// which columns are right-aligned (numbers). The last column is not padded.
pub(super) fn print_table(head: &[String], rows: &[Vec<String>], right: &[bool]) {
    let width = |column: usize| {
        rows.iter()
            .map(|row| row[column].chars().count())
            .chain([head[column].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..head.len()).map(width).collect();
    for row in std::iter::once(head).chain(rows.iter().map(Vec::as_slice)) {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column > 0 {
                line.push_str("  ");
            }
            let pad = widths[column].saturating_sub(cell.chars().count());
            if right[column] {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if column + 1 < row.len() {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        println!("{}", line.trim_end());
    }
}

/// A decimal from the report's text.
fn decimal(text: &str) -> anyhow::Result<Decimal> {
    Decimal::from_str(text).with_context(|| format!("the server sent {text:?} as a decimal"))
}

/// GB-seconds for people: two decimals from 1 up, up to six below ("0.000875").
fn gb_seconds(value: Decimal) -> String {
    number(value, if value.abs() >= Decimal::ONE { 2 } else { 6 })
}

/// Dollars with every digit of a price and at least cents ("$0.20", "$0.0000166667").
fn exact_usd(value: Decimal) -> String {
    let text = number(value, 28);
    match text.split_once('.') {
        None => format!("${text}.00"),
        Some((_, fraction)) if fraction.len() == 1 => format!("${text}0"),
        Some(_) => format!("${text}"),
    }
}

/// Three significant digits ("0.1", "0.0000027", "1,000").
fn significant(value: Decimal) -> String {
    if value.abs() >= Decimal::ONE_THOUSAND {
        return number(value, 0);
    }
    let rounded = value.round_sf(3).unwrap_or(value);
    number(rounded, 28)
}

/// "November" for "2026-11".
fn month_name(month: &str) -> String {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    month
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| NAMES.get(m.wrapping_sub(1)))
        .map_or_else(|| month.to_string(), |name| name.to_string())
}
