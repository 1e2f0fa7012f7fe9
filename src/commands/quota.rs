//! `gureum quota` (monthly caps on requests, GB-seconds or cost, for the installation or
//! one function) and `gureum prices` (the price list and free tier).

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, bail};
use gureum_api_types::{PricesView, QuotaBody, QuotaView};
use gureum_metering::{Decimal, count, number, usd};

use super::usage::price_summary;

/// Arguments of `gureum quota`.
#[derive(Debug, clap::Args)]
pub struct QuotaArgs {
    #[command(subcommand)]
    command: Option<QuotaCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum QuotaCommand {
    /// List the quotas with this month's usage (the default).
    Ls,
    /// Set (replace) the monthly quota of function NAME, or of the whole installation
    /// without NAME. A request past a cap is refused with 429 until the month ends.
    Set {
        /// Function name; leave out for the installation-wide quota.
        name: Option<String>,
        /// Cap on requests a month.
        #[arg(long, value_name = "N")]
        requests: Option<u64>,
        /// Cap on GB-seconds a month, e.g. 5000 or 12.5.
        #[arg(long, value_name = "GB_S")]
        gb_seconds: Option<String>,
        /// Cap on cost a month in USD, e.g. 5.00 (installation: after the free tier;
        /// function: at list price).
        #[arg(long, value_name = "USD")]
        cost: Option<String>,
        /// Log a warning once a cap is this percent used (1 to 100; default 80).
        #[arg(long, value_name = "PERCENT")]
        warn_percent: Option<u8>,
    },
    /// Remove the quota of function NAME, or the installation's without NAME.
    Rm {
        /// Function name; leave out for the installation-wide quota.
        name: Option<String>,
    },
}

/// Arguments of `gureum prices`.
#[derive(Debug, clap::Args)]
pub struct PricesArgs {
    #[command(subcommand)]
    command: Option<PricesCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum PricesCommand {
    /// Replace the price list with a price file (TOML with the keys
    /// requests_per_million, gb_second, free_requests_per_month and
    /// free_gb_seconds_per_month; keys left out take their defaults).
    Set {
        /// The price file.
        file: PathBuf,
    },
}

pub async fn quota(
    client: &gureum_client::Client,
    args: QuotaArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match args.command.unwrap_or(QuotaCommand::Ls) {
        QuotaCommand::Ls => list(client, json).await,
        QuotaCommand::Set {
            name,
            requests,
            gb_seconds,
            cost,
            warn_percent,
        } => {
            if requests.is_none() && gb_seconds.is_none() && cost.is_none() {
                bail!(
                    "give at least one cap: --requests N, --gb-seconds GB_S or --cost USD \
                     (a month's requests, GB-seconds or cost)"
                );
            }
            let body = QuotaBody {
                requests,
                gb_seconds: gb_seconds.map(|text| text.trim().to_string()),
                cost: cost.map(|text| text.trim().trim_start_matches('$').to_string()),
                warn_percent,
            };
            let set = client.set_quota(name.as_deref(), &body).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&set)?);
            } else {
                println!(
                    "monthly quota of {} set: {}; warning at {}%",
                    who(&set.scope),
                    caps(&set)?,
                    set.warn_percent
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        QuotaCommand::Rm { name } => {
            let scope = name.as_deref().unwrap_or("global");
            if !client.remove_quota(name.as_deref()).await? {
                bail!(
                    "no quota is set for {}; `gureum quota ls` lists the quotas",
                    who(scope)
                );
            }
            if json {
                println!("{}", serde_json::json!({ "removed": scope }));
            } else {
                println!("removed the monthly quota of {}", who(scope));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn list(client: &gureum_client::Client, json: bool) -> anyhow::Result<ExitCode> {
    let quotas = client.quotas().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&quotas)?);
        return Ok(ExitCode::SUCCESS);
    }
    if quotas.is_empty() {
        println!(
            "no quotas set; `gureum quota set [NAME] --requests N` caps a function or, without NAME, the installation"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![[
        "SCOPE".to_string(),
        "REQUESTS".into(),
        "GB-SECONDS".into(),
        "COST".into(),
        "WARN".into(),
    ]];
    for quota in &quotas {
        let used_gb = decimal(&quota.used.gb_seconds)?;
        let used_cost = decimal(&quota.used.cost)?;
        rows.push([
            quota.scope.clone(),
            cell(
                quota.requests.map(Decimal::from),
                Decimal::from(quota.used.requests),
                |d| number(d, 0),
            ),
            cell(
                quota.gb_seconds.as_deref().map(decimal).transpose()?,
                used_gb,
                |d| number(d, 3),
            ),
            cell(
                quota.cost.as_deref().map(decimal).transpose()?,
                used_cost,
                usd,
            ),
            format!("{}%", quota.warn_percent),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    println!(
        "(cost: after the free tier for global, at list price for a function; usage is this month's, UTC)"
    );
    Ok(ExitCode::SUCCESS)
}

/// "3 of 1,000 (0%)" for a cap, "-" without one.
fn cell(cap: Option<Decimal>, used: Decimal, show: impl Fn(Decimal) -> String) -> String {
    match cap {
        None => "-".to_string(),
        Some(cap) => {
            let percent = if cap > Decimal::ZERO {
                (used * Decimal::ONE_HUNDRED / cap).floor()
            } else {
                Decimal::ONE_HUNDRED
            };
            format!("{} of {} ({percent}%)", show(used), show(cap))
        }
    }
}

/// The caps of a quota in words: "1,000 requests, $5.00".
fn caps(quota: &QuotaView) -> anyhow::Result<String> {
    let mut caps = Vec::new();
    if let Some(requests) = quota.requests {
        caps.push(format!("{} requests", count(requests)));
    }
    if let Some(gb_seconds) = &quota.gb_seconds {
        caps.push(format!("{} GB-seconds", number(decimal(gb_seconds)?, 28)));
    }
    if let Some(cost) = &quota.cost {
        caps.push(usd(decimal(cost)?));
    }
    Ok(caps.join(", "))
}

fn who(scope: &str) -> String {
    if scope == "global" {
        "the installation".to_string()
    } else {
        format!("function {scope:?}")
    }
}

pub async fn prices(
    client: &gureum_client::Client,
    args: PricesArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (prices, verb) = match args.command {
        None => (client.prices().await?, "prices"),
        Some(PricesCommand::Set { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading the price file {}", file.display()))?;
            (client.set_prices_toml(text).await?, "prices set")
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&prices)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{verb}: {}", price_summary(&prices)?);
    if verb == "prices" {
        println!();
        println!("# As a price file for `gureum prices set FILE` or `gureum up --prices FILE`:");
        print!("{}", price_file(&prices)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// The prices as the TOML file `gureum prices set` reads.
fn price_file(prices: &PricesView) -> anyhow::Result<String> {
    // PricesView's JSON is the price list's own wire form.
    let prices: gureum_metering::Prices = serde_json::from_value(serde_json::to_value(prices)?)
        .context("the server sent a price list that does not parse")?;
    Ok(prices.to_toml())
}

fn decimal(text: &str) -> anyhow::Result<Decimal> {
    Decimal::from_str(text).with_context(|| format!("the server sent {text:?} as a decimal"))
}
