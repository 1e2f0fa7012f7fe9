//! `gureum logs`: print (and follow) a function's invocation logs.

use std::process::ExitCode;

use futures::StreamExt;
use gureum_api_types::LogLineView;
use gureum_client::LogParams;

use super::format_time;

/// Lines per page of the control API's logs endpoint.
const PAGE_SIZE: usize = 1_000;

/// How far back `gureum logs` looks by default.
const DEFAULT_SINCE: std::time::Duration = std::time::Duration::from_secs(600);

/// Arguments of `gureum logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Function name.
    name: String,
    /// Keep printing new lines as they arrive.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only lines newer than this, e.g. 30s, 2h, 1d; default 10m unless --invocation is
    /// given (like `aws logs tail`).
    #[arg(long)]
    since: Option<humantime::Duration>,
    /// Only lines of this invocation id.
    #[arg(long)]
    invocation: Option<String>,
    /// Only lines containing this text (case-sensitive substring, no wildcards).
    #[arg(long)]
    grep: Option<String>,
}

pub async fn run(
    client: &gureum_client::Client,
    args: LogsArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let since = match (args.since, &args.invocation) {
        (Some(since), _) => Some(since.as_millis() as i64),
        (None, None) => Some(DEFAULT_SINCE.as_millis() as i64),
        (None, Some(_)) => None,
    };
    let params = LogParams {
        since_ms: since.map(|since| gureum_model::now_ms() - since),
        invocation: args.invocation,
        after: None,
        grep: args.grep,
    };
    if args.follow {
        let mut lines = Box::pin(client.follow_logs(&args.name, &params).await?);
        while let Some(line) = lines.next().await {
            print_line(&line?, json)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Page through the window: the API returns at most 1000 lines per call.
    let mut params = params;
    loop {
        let lines = client.logs(&args.name, &params).await?;
        for line in &lines {
            print_line(line, json)?;
        }
        match lines.last() {
            Some(last) if lines.len() >= PAGE_SIZE => params.after = Some(last.seq),
            _ => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_line(line: &LogLineView, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(line)?);
    } else {
        println!(
            "{} {} v{} {:<8} {}",
            format_time(line.ts_ms),
            line.invocation_id,
            line.version,
            line.stream,
            // A record of several lines (a traceback) keeps its later lines indented
            // under the first, so the next record still starts at the margin.
            line.message.replace('\n', "\n    ")
        );
    }
    Ok(())
}
