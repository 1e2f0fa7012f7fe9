//! `gureum schedules` (cron schedules with their next and last runs) and `gureum dlq`
//! (a function's dead-letter list: list, show, rm, redrive).

use std::process::ExitCode;

use anyhow::bail;
use gureum_api_types::DeadLetterInfo;

use super::usage::print_table;

/// Arguments of `gureum dlq`.
#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    /// Function name.
    name: String,
    #[command(subcommand)]
    command: Option<DlqCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum DlqCommand {
    /// List the dead letters, newest first (the default).
    Ls {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one dead letter: its request and every attempt's error.
    Show {
        /// Invocation id.
        id: String,
    },
    /// Delete one dead letter, or all with --all.
    Rm {
        /// Invocation id.
        id: Option<String>,
        /// Delete the whole list.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Queue one dead letter again (same invocation id, attempts from zero), or all with
    /// --all — after fixing the function.
    Redrive {
        /// Invocation id.
        id: Option<String>,
        /// Redrive the whole list.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

pub async fn schedules(client: &gureum_client::Client, json: bool) -> anyhow::Result<ExitCode> {
    let schedules = client.schedules().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&schedules)?);
        return Ok(ExitCode::SUCCESS);
    }
    if schedules.is_empty() {
        println!(
            "no schedules; add [[schedule]] entries with a cron line to a gureum.toml and deploy it"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let head: Vec<String> = [
        "FUNCTION",
        "NAME",
        "CRON",
        "TZ",
        "NEXT RUN",
        "LAST RUN",
        "RESULT",
        "INVOCATION",
    ]
    .map(String::from)
    .to_vec();
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = schedules
        .into_iter()
        .map(|s| {
            vec![
                s.function,
                s.name,
                s.cron,
                s.tz,
                s.next_run.unwrap_or_else(dash),
                s.last_run.unwrap_or_else(dash),
                s.last_result.unwrap_or_else(dash),
                s.last_invocation_id.unwrap_or_else(dash),
            ]
        })
        .collect();
    print_table(&head, &rows, &[false; 8]);
    Ok(ExitCode::SUCCESS)
}

pub async fn dlq(
    client: &gureum_client::Client,
    args: DlqArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let name = args.name.as_str();
    match args.command.unwrap_or(DlqCommand::Ls { limit: 100 }) {
        DlqCommand::Ls { limit } => {
            let letters = client.dead_letters(name, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&letters)?);
            } else if letters.is_empty() {
                println!("the dead-letter list of {name} is empty");
            } else {
                let head: Vec<String> = [
                    "ID",
                    "FAILED",
                    "ATTEMPTS",
                    "REASON",
                    "TRIGGER",
                    "LAST ERROR",
                ]
                .map(String::from)
                .to_vec();
                let rows: Vec<Vec<String>> = letters
                    .iter()
                    .map(|letter| {
                        vec![
                            letter.id.clone(),
                            letter.failed.clone(),
                            letter.attempts.to_string(),
                            letter.reason.clone(),
                            letter.trigger.clone(),
                            last_error(letter),
                        ]
                    })
                    .collect();
                print_table(&head, &rows, &[false, false, true, false, false, false]);
            }
        }
        DlqCommand::Show { id } => {
            let letter = client.dead_letter(name, &id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&letter)?);
            } else {
                show(&letter);
            }
        }
        DlqCommand::Rm { id, all } => {
            let id = target(id, all, "rm")?;
            let count = client.delete_dead_letters(name, id.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&count)?);
            } else {
                println!("deleted {} dead letter(s) of {name}", count.count);
            }
        }
        DlqCommand::Redrive { id, all } => {
            let id = target(id, all, "redrive")?;
            let count = client.redrive_dead_letters(name, id.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&count)?);
            } else {
                println!(
                    "queued {} dead letter(s) of {name} again; `gureum logs {name}` shows their runs",
                    count.count
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn target(id: Option<String>, all: bool, verb: &str) -> anyhow::Result<Option<String>> {
    match (id, all) {
        (Some(id), false) => Ok(Some(id)),
        (None, true) => Ok(None),
        _ => bail!("name one dead letter (`gureum dlq NAME {verb} ID`) or all of them (`--all`)"),
    }
}

fn last_error(letter: &DeadLetterInfo) -> String {
    letter.errors.last().map_or_else(
        || "-".to_string(),
        |error| {
            let line = error.error.lines().next().unwrap_or_default();
            let short: String = line.chars().take(80).collect();
            format!("{} {short}", error.status)
        },
    )
}

fn show(letter: &DeadLetterInfo) {
    println!("id:        {}", letter.id);
    println!(
        "function:  {}{}",
        letter.function,
        letter.version.map(|v| format!("@{v}")).unwrap_or_default()
    );
    println!(
        "trigger:   {}{}",
        letter.trigger,
        letter
            .source
            .as_ref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default()
    );
    println!("request:   {} {}", letter.method, letter.path);
    for (key, value) in &letter.headers {
        println!("           {key}: {value}");
    }
    let body = if letter.body_base64 {
        format!("(base64) {}", letter.body)
    } else {
        letter.body.clone()
    };
    println!("body:      {body}");
    println!("enqueued:  {}", letter.enqueued);
    println!(
        "failed:    {} after {} attempt(s): {}",
        letter.failed, letter.attempts, letter.reason
    );
    for error in &letter.errors {
        println!(
            "attempt {} at {}: {} {}",
            error.attempt, error.at, error.status, error.error
        );
    }
}
