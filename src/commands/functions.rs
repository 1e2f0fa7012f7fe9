//! `gureum ls`, `versions`, `rollback` and `rm`.

use std::process::ExitCode;

use super::format_time;

pub async fn list(client: &gureum_client::Client, json: bool) -> anyhow::Result<ExitCode> {
    let functions = client.list().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&functions)?);
        return Ok(ExitCode::SUCCESS);
    }
    if functions.is_empty() {
        println!("no functions deployed; `gureum deploy DIR` deploys one");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<24} {:>5} {:>7}  URL", "NAME", "LIVE", "LATEST");
    for function in functions {
        println!(
            "{:<24} {:>5} {:>7}  {}",
            function.name, function.live_version, function.latest_version, function.url
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn versions(
    client: &gureum_client::Client,
    name: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let versions = client.versions(name).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&versions)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>7}  {:<4} {:<24}  ARTIFACT",
        "VERSION", "LIVE", "CREATED"
    );
    for version in versions {
        println!(
            "{:>7}  {:<4} {:<24}  {}",
            version.version,
            if version.live { "*" } else { "" },
            format_time(version.created_at_ms),
            &version.artifact_hash[..12.min(version.artifact_hash.len())]
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(
    client: &gureum_client::Client,
    name: &str,
    to: Option<u32>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let rolled = client.rollback(name, to).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rolled)?);
    } else {
        println!(
            "{}: live moved from version {} to {}",
            rolled.name, rolled.from, rolled.to
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn remove(
    client: &gureum_client::Client,
    name: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    client.remove(name).await?;
    if json {
        println!("{}", serde_json::json!({ "removed": name }));
    } else {
        println!("removed {name}");
    }
    Ok(ExitCode::SUCCESS)
}
