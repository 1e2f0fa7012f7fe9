//! `gureum logs`: print (and follow) a function's invocation logs.

use std::process::ExitCode;

use futures::StreamExt;
use gureum_api_types::LogLineView;
use gureum_client::LogParams;

use super::format_time;

/// Arguments of `gureum logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Function name.
    name: String,
    /// Keep printing new lines as they arrive.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only lines newer than this, e.g. 10m, 2h, 1d.
    #[arg(long)]
    since: Option<humantime::Duration>,
    /// Only lines of this invocation id.
    #[arg(long)]
    invocation: Option<String>,
}

pub async fn run(
    client: &gureum_client::Client,
    args: LogsArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let params = LogParams {
        since_ms: args
            .since
            .map(|since| gureum_model::now_ms() - since.as_millis() as i64),
        invocation: args.invocation,
        after: None,
    };
    if args.follow {
        let mut lines = Box::pin(client.follow_logs(&args.name, &params).await?);
        while let Some(line) = lines.next().await {
            print_line(&line?, json)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    for line in client.logs(&args.name, &params).await? {
        print_line(&line, json)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_line(line: &LogLineView, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(line)?);
    } else {
        println!(
            "{} {} v{} {:<8} {}",
            format_time(line.ts_ms),
            line.invocation_id,
            line.version,
            line.stream,
            line.message
        );
    }
    Ok(())
}
